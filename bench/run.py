#!/usr/bin/env python3
"""Side-by-side benchmark: our FUSE mount vs GlusterFS 10's FUSE mount, same machine, same run.

Both systems get a 2 x 2 distributed-replicate volume (four bricks, consecutive pairs form a
replica set) on the same file system. The same workload runs through each mount (and through a
plain directory, the raw-disk baseline):

  small files  N x 4 KiB: create (open+write+close), stat, read (open+read+close),
               `ls -l` (readdir + lstat of every entry), delete
  large file   sequential write of SIZE MiB (dd, conv=fsync) and read back (dd), page cache
               dropped before every read phase

Kernel caches are dropped between phases (root only) so each phase makes the file system answer.
Prints ops/s (MB/s for large files) and the ratio ours/GlusterFS next to the DESIGN.md §12 target.

Usage (as root, from the repository):  bench/run.py [--files 2000] [--size-mib 1024] [--keep]
bench/all.py runs the whole DESIGN.md §12 table (FUSE at 1 and 8 threads, `ls -l` of 10,000
entries, tar/du/rm of the Linux source, NFS, S3, two-mount coherence) in one run; this script is
the FUSE-only subset, and the module the others import (launchers, workloads).
Not part of the test command.
"""

import argparse
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# DESIGN.md §12 targets, as ours / GlusterFS.
TARGETS = {
    "create": 10.0,
    "stat": 10.0,
    "read": 10.0,
    "delete": 10.0,
    "ls -l": 3.0,
    "seq write": 1.5,
    "seq read": 1.5,
}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def drop_caches():
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" ")
            if len(fields) > 4 and fields[4].encode().decode("unicode_escape") == path:
                return True
    return False


def wait_for(what, timeout, fn):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def stop_process(proc, grace=30):
    """SIGTERM, then SIGKILL after `grace` seconds; reaps it either way."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# ------------------------------------------------------------------------------------------------
# Workloads
# ------------------------------------------------------------------------------------------------

def small_files(root, n):
    d = os.path.join(root, "small")
    os.makedirs(d, exist_ok=True)
    names = [os.path.join(d, f"f{i:06d}") for i in range(n)]
    data = os.urandom(4096)
    res = {}

    def create():
        for p in names:
            fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
            os.write(fd, data)
            os.close(fd)

    def stat():
        for p in names:
            os.stat(p)

    def read():
        for p in names:
            fd = os.open(p, os.O_RDONLY)
            assert len(os.read(fd, 8192)) == 4096
            os.close(fd)

    def ls_l():
        count = 0
        with os.scandir(d) as it:
            for e in it:
                e.stat(follow_symlinks=False)
                count += 1
        assert count == n, f"ls -l saw {count} of {n}"

    def delete():
        for p in names:
            os.unlink(p)

    for name, fn in [("create", create), ("stat", stat), ("read", read),
                     ("ls -l", ls_l), ("delete", delete)]:
        drop_caches()
        t = timed(fn)
        res[name] = n / t
    os.rmdir(d)
    return res


def dd_rate(args):
    p = subprocess.run(["dd"] + args, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"dd {' '.join(args)}: {p.stderr}")
    # "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 3.2 s, 335 MB/s"
    m = re.search(r"(\d+) bytes .* copied, ([\d.,]+) s", p.stderr)
    return int(m.group(1)) / float(m.group(2).replace(",", ".")) / 1e6


def large_file(root, size_mib):
    p = os.path.join(root, "large.bin")
    drop_caches()
    w = dd_rate(["if=/dev/zero", f"of={p}", "bs=1M", f"count={size_mib}", "conv=fsync"])
    drop_caches()
    r = dd_rate([f"if={p}", "of=/dev/null", "bs=1M"])
    os.unlink(p)
    return {"seq write": w, "seq read": r}


def workload(root, files, size_mib):
    res = small_files(root, files)
    res.update(large_file(root, size_mib))
    return res


# ------------------------------------------------------------------------------------------------
# Systems
# ------------------------------------------------------------------------------------------------

class Ours:
    """gatewayd up with its FUSE mount: 2 x 2 distributed-replicate by default (as `gatewayd up`
    makes it); replica=1 makes a 4-brick distribute volume. EXTRA: more `gatewayd up` flags."""

    def __init__(self, base, replica=2, ping_timeout=None, extra=()):
        self.data = os.path.join(base, "gw")
        self.mnt = os.path.join(base, "ours")
        os.makedirs(self.mnt)
        self.log = open(os.path.join(base, "gatewayd.log"), "w")
        out_path = os.path.join(base, "gatewayd.stdout")
        gatewayd = os.path.join(REPO, "target", "release", "gatewayd")
        with open(out_path, "w") as out:
            self.proc = subprocess.Popen(
                [gatewayd, "up", "--data", self.data, "--mount", self.mnt, "--api", "127.0.0.1:0",
                 "--s3", "127.0.0.1:0", "--nfs", "127.0.0.1:0", "--rpcbind", "off",
                 # the same shape as the GlusterFS volume it is compared with (gatewayd up
                 # defaults to 2 x 2 distributed-replicate)
                 "--replica", str(replica)]
                + (["--ping-timeout", str(ping_timeout)] if ping_timeout is not None else [])
                + list(extra),
                stdout=out, stderr=self.log, stdin=subprocess.DEVNULL)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"gatewayd exited ({self.proc.returncode}); see {base}")
            return "gatewayd: ready" in open(out_path).read().splitlines()
        wait_for("gatewayd: ready", 120, ready)
        wait_for("our mount", 30, lambda: is_mounted(self.mnt))

    def close(self):
        stop_process(self.proc)
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-uz", self.mnt], stderr=subprocess.DEVNULL)


class Gluster:
    """glusterd with its own working directory and the volume `gvbench` over bricks gb1..gb4 in
    BASE, FUSE-mounted. Default: 2 x 2 distributed-replicate (consecutive bricks form a replica
    set); replica=1 makes it a 4-brick distribute volume."""

    def __init__(self, base, replica=2):
        self.base = base
        # One glusterd per machine (port 24007): the end-to-end tests take the same lock.
        self.lock = open("/tmp/e2e-glusterd.lock", "w")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("waiting for /tmp/e2e-glusterd.lock (another glusterd user runs) ...")
            fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.mnt = os.path.join(base, "gluster")
        os.makedirs(self.mnt)
        wd = os.path.join(base, "glusterd")
        os.makedirs(wd)
        vol = open("/etc/glusterfs/glusterd.vol").read()
        vol = re.sub(r"option working-directory \S+", f"option working-directory {wd}", vol)
        volfile = os.path.join(base, "glusterd.vol")
        with open(volfile, "w") as f:
            f.write(vol)
        self.pidfile = os.path.join(base, "glusterd.pid")
        subprocess.run(["glusterd", "-f", volfile, "-p", self.pidfile,
                        "-l", os.path.join(base, "glusterd.log")], check=True)
        self.pid = int(wait_for("glusterd pid", 20, lambda: os.path.exists(self.pidfile)
                                and open(self.pidfile).read().strip()))
        wait_for("glusterd", 60, lambda: self.cli("volume", "list", check=False).returncode == 0)
        host = socket.gethostname()
        self.host = host
        self.bricks = []
        bricks = []
        for i in range(1, 5):
            b = os.path.join(base, f"gb{i}")
            os.makedirs(b)
            self.bricks.append(b)
            bricks.append(f"{host}:{b}")
        shape = ["replica", str(replica)] if replica > 1 else []
        self.cli("volume", "create", "gvbench", *shape, *bricks, "force")
        self.created = True
        self.cli("volume", "start", "gvbench")
        wait_for("GlusterFS mount", 60, lambda: subprocess.run(
            ["mount", "-t", "glusterfs", f"{host}:/gvbench", self.mnt],
            capture_output=True).returncode == 0 and is_mounted(self.mnt))

    def cli(self, *args, check=True):
        p = subprocess.run(["gluster", "--mode=script", *args], capture_output=True, text=True)
        if check and p.returncode != 0:
            raise RuntimeError(f"gluster {' '.join(args)}: {p.stdout}{p.stderr}")
        return p

    def close(self):
        if is_mounted(self.mnt):
            subprocess.run(["umount", self.mnt], stderr=subprocess.DEVNULL)
            if is_mounted(self.mnt):
                subprocess.run(["umount", "-l", self.mnt], stderr=subprocess.DEVNULL)
        if getattr(self, "created", False):
            self.cli("volume", "stop", "gvbench", "force", check=False)
            self.cli("volume", "delete", "gvbench", check=False)
        # Brick processes of our volume (they name the volfile id gvbench.<host>.<brick>).
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if argv and b"gluster" in argv[0] and any(
                    a.startswith(b"gvbench.") or self.base.encode() in a for a in argv):
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
        if getattr(self, "pid", None):
            try:
                os.kill(self.pid, signal.SIGTERM)
            except OSError:
                pass
            self.pid = None
        # Let the next glusterd (a later Gluster() in this process, or an e2e test) start.
        if not self.lock.closed:
            self.lock.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/run.py needs root (FUSE mounts, glusterd, dropping caches)")
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--bins", "-p", "gateway", "-p", "brickd"],
                       cwd=REPO, check=True)
    base = tempfile.mkdtemp(prefix="bench-", dir="/tmp")
    results = {}
    systems = []
    try:
        raw = os.path.join(base, "raw")
        os.makedirs(raw)
        log(f"raw disk ({raw}) ...")
        results["raw"] = workload(raw, a.files, a.size_mib)
        have_gluster = shutil.which("glusterd") is not None
        if have_gluster:
            log("GlusterFS 10, 2 x 2 distributed-replicate ...")
            g = Gluster(base)
            systems.append(g)
            results["glusterfs"] = workload(g.mnt, a.files, a.size_mib)
            g.close()
            systems.remove(g)
        else:
            log("glusterd not installed: GlusterFS column skipped")
        log("ours, gatewayd up (2 x 2 distributed-replicate) ...")
        o = Ours(base)
        systems.append(o)
        results["ours"] = workload(o.mnt, a.files, a.size_mib)
        o.close()
        systems.remove(o)
    finally:
        for s in systems:
            try:
                s.close()
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                log(f"cleanup: {e}")
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)

    print(f"\nworkload: {a.files} x 4 KiB files, {a.size_mib} MiB sequential; "
          f"units ops/s (MB/s for seq)\n")
    hdr = f"{'phase':<10} {'raw':>10} {'glusterfs':>10} {'ours':>10} {'ours/gfs':>9} {'target':>7}  met"
    print(hdr)
    print("-" * len(hdr))
    for k in ["create", "stat", "read", "ls -l", "delete", "seq write", "seq read"]:
        raw = results.get("raw", {}).get(k)
        gfs = results.get("glusterfs", {}).get(k)
        ours = results.get("ours", {}).get(k)
        ratio = ours / gfs if ours and gfs else None
        t = TARGETS[k]
        met = "-" if ratio is None else ("yes" if ratio >= t else "no")
        def fmt(v, w=10, prec=0):
            return f"{v:{w}.{prec}f}" if v is not None else "-".rjust(w)
        print(f"{k:<10} {fmt(raw)} {fmt(gfs)} {fmt(ours)} {fmt(ratio, 9, 2)} {t:>6.1f}x  {met}")
    if results.get("raw", {}).get("seq read") and results.get("ours", {}).get("seq read"):
        print(f"\nours seq read = {results['ours']['seq read'] / results['raw']['seq read']:.0%} "
              f"of raw disk (target >= 70%)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
