#!/usr/bin/env python3
"""NFSv3 throughput: our gateway's NFS server next to NFS-Ganesha (FSAL_GLUSTER) over GlusterFS
10, on the same machine in the same run, both driven by the same userspace client (nfs-rs).

Both serve a 2 x 2 distributed-replicate volume on the same file system. With THREADS client
threads (one connection each):

  small files  N x 4 KiB: create (open+write+close), stat, read, readdir+stat of every entry,
               remove
  large file   one SIZE MiB file written in 1 MiB WRITEs, then read in 1 MiB READs

Prints ops/s (MB/s for the large file) and ours / Ganesha next to the DESIGN.md §12 target
(>= 2x). The client runs on the same cores as the servers, so both columns include its cost.

Usage (as root, from the repository, after `cargo build --release`):
  bench/nfs.py [--files 2000] [--size-mib 512] [--threads 4]
Needs nfs-ganesha-gluster, glusterfs-server, rpcbind and `pip install nfs-rs`.
Not part of the test command.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as common  # noqa: E402  (gatewayd and glusterd launchers)

import nfs_rs  # noqa: E402

TARGET = 2.0


class Ganesha:
    """ganesha.nfsd exporting the GlusterFS volume `gvbench` over NFSv3 on its own ports."""

    def __init__(self, base):
        self.port, self.mnt_port = common.free_port(), common.free_port()
        self.rpcbind = None
        if subprocess.run(["rpcinfo", "-p", "127.0.0.1"], capture_output=True).returncode != 0:
            self.rpcbind = subprocess.Popen(["rpcbind", "-f", "-w"])
            common.wait_for("rpcbind", 10, lambda: subprocess.run(
                ["rpcinfo", "-p", "127.0.0.1"], capture_output=True).returncode == 0)
        conf = os.path.join(base, "ganesha.conf")
        with open(conf, "w") as f:
            f.write(f"""
NFS_CORE_PARAM {{ Protocols = 3; NFS_Port = {self.port}; MNT_Port = {self.mnt_port};
  Enable_NLM = false; Enable_RQUOTA = false; }}
EXPORT {{ Export_Id = 1; Path = "/gvbench"; Pseudo = "/gvbench"; Access_Type = RW;
  Squash = No_root_squash; Protocols = 3; Transports = TCP; SecType = sys;
  FSAL {{ Name = GLUSTER; Hostname = "localhost"; Volume = "gvbench"; }} }}
LOG {{ Default_Log_Level = WARN; }}
""")
        self.pidfile = os.path.join(base, "ganesha.pid")
        self.log = os.path.join(base, "ganesha.log")
        subprocess.run(["ganesha.nfsd", "-f", conf, "-L", self.log, "-N", "NIV_WARN",
                        "-p", self.pidfile], check=True)

        def up():
            try:
                connect(self.port, self.mnt_port, "/gvbench").close()
                return True
            except nfs_rs.NfsError:
                return False
        common.wait_for("ganesha serving /gvbench", 120, up)

    def close(self):
        try:
            os.kill(int(open(self.pidfile).read().strip()), signal.SIGTERM)
            time.sleep(1)
        except (OSError, ValueError):
            pass
        if self.rpcbind:
            self.rpcbind.kill()
            self.rpcbind.wait()


def connect(port, mnt_port, export):
    return nfs_rs.Client.connect(f"nfs://127.0.0.1{export}", versions=["3"], nfs_port=port,
                                 mount_port=mnt_port, uid=0, gid=0)


def workload(port, mnt_port, export, files, size_mib, threads):
    clients = [connect(port, mnt_port, export) for _ in range(threads)]
    c0 = clients[0]
    c0.mkdir("/bench", 0o755, exist_ok=True)
    names = [f"/bench/f{i:06d}" for i in range(files)]
    parts = [names[i::threads] for i in range(threads)]
    data = os.urandom(4096)
    res = {}

    def phase(name, fn):
        t = time.perf_counter()
        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(lambda i: [fn(clients[i], n) for n in parts[i]], range(threads)))
        res[name] = files / (time.perf_counter() - t)
        common.log(f"  {name}: {res[name]:.0f}/s")

    def create(c, n):
        with c.open(n, "wb") as f:
            f.write(data)

    def read(c, n):
        with c.open(n, "rb") as f:
            assert len(f.read()) == 4096

    phase("create", create)
    phase("stat", lambda c, n: c.stat(n))
    phase("read", read)
    t = time.perf_counter()
    seen = sum(1 for e in c0.scandir("/bench") if e.info.size == 4096)
    res["ls -l"] = seen / (time.perf_counter() - t)
    common.log(f"  ls -l: {res['ls -l']:.0f} entries/s")
    phase("delete", lambda c, n: c.remove(n))

    chunk = os.urandom(1 << 20)
    t = time.perf_counter()
    with c0.open("/bench/large.bin", "wb") as f:
        for _ in range(size_mib):
            f.write(chunk)
    res["seq write"] = size_mib * 1.048576 / (time.perf_counter() - t)
    t = time.perf_counter()
    got = 0
    with c0.open("/bench/large.bin", "rb") as f:
        while b := f.read(1 << 20):
            got += len(b)
    res["seq read"] = got / 1e6 / (time.perf_counter() - t)
    common.log(f"  seq write {res['seq write']:.0f} MB/s, seq read {res['seq read']:.0f} MB/s")
    c0.remove("/bench/large.bin")
    for c in clients:
        c.close()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/nfs.py needs root (FUSE mounts, glusterd, ganesha)")
    for tool in ("ganesha.nfsd", "glusterd", "rpcbind", "rpcinfo"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (apt-get install nfs-ganesha-gluster glusterfs-server rpcbind)")
    base = tempfile.mkdtemp(prefix="bench-nfs-", dir="/tmp")
    results, systems = {}, []
    try:
        common.log("ours, gatewayd up (2 x 2), NFSv3 ...")
        o = common.Ours(base)
        systems.append(o)
        port = int(open(os.path.join(o.data, "nfs.addr")).read().strip().rsplit(":", 1)[1])
        results["ours"] = workload(port, port, "/vol", a.files, a.size_mib, a.threads)
        o.close()
        systems.remove(o)
        common.log("NFS-Ganesha (FSAL_GLUSTER) over GlusterFS 10, 2 x 2 ...")
        g = common.Gluster(base)
        systems.append(g)
        n = Ganesha(base)
        systems.append(n)
        results["ganesha"] = workload(n.port, n.mnt_port, "/gvbench", a.files, a.size_mib, a.threads)
    finally:
        for s in reversed(systems):
            try:
                s.close()
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                common.log(f"cleanup: {e}")
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)

    print(f"\nNFSv3 via nfs-rs, {a.threads} client threads: {a.files} x 4 KiB files, "
          f"{a.size_mib} MiB sequential; ops/s (MB/s for seq)\n")
    hdr = f"{'phase':<10} {'ganesha':>10} {'ours':>10} {'ours/gan':>9} {'target':>7}  met"
    print(hdr)
    print("-" * len(hdr))
    for k in ["create", "stat", "read", "ls -l", "delete", "seq write", "seq read"]:
        gan, ours = results.get("ganesha", {}).get(k), results.get("ours", {}).get(k)
        ratio = ours / gan if ours and gan else None
        met = "-" if ratio is None else ("yes" if ratio >= TARGET else "no")
        f = lambda v, w=10, p=0: f"{v:{w}.{p}f}" if v is not None else "-".rjust(w)  # noqa: E731
        print(f"{k:<10} {f(gan)} {f(ours)} {f(ratio, 9, 2)} {TARGET:>6.1f}x  {met}")


if __name__ == "__main__":
    main()
