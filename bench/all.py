#!/usr/bin/env python3
"""The whole DESIGN.md §12 "must show" table in ONE run: ours next to GlusterFS 10 (FUSE),
NFS-Ganesha 4 with FSAL_GLUSTER (NFSv3) and Garage 2.x (S3), with the raw disk as the limit.

Same machine, same run, same volume shape: a 2 x 2 distributed-replicate volume for both
GlusterFS (`gluster volume create gvbench replica 2 gb1..gb4 force`) and ours (`gatewayd up`,
release build, whose default volume is 2 x 2), bricks on the same file system as the raw
directory. Each system is started once and every workload runs against it:

  FUSE small files   N x 4 KiB create (open+write+close), stat, read (open+read+close), delete,
                     with 1 thread and with 8 (client processes that split the files); ops/s
  FUSE ls -l         `ls -l` (GNU ls: getdents + lstat + getxattr of every entry) of a directory
                     of 10,000 entries; entries/s
  FUSE seq           SIZE MiB sequential write (dd bs=1M conv=fsync) and read back (dd); MB/s;
                     read also as a share of the raw disk's read
  Linux source       `tar x` of Debian's linux-source tarball (decompressed once into
                     /var/tmp so xz is not measured, read into the page cache before timing),
                     then `du -s`, then `rm -rf`; seconds, ratio = GlusterFS time / ours
  NFSv3              bench/nfs.py's phases with the same userspace client (nfs-rs) against our
                     NFS server and against NFS-Ganesha + FSAL_GLUSTER on the GlusterFS volume
  S3                 4 KiB PUT / GET / LIST / DELETE with 16 connections (4 processes x 4 threads
                     of a light SigV4 client, bench/s3load.py, so the client is not the limit;
                     its CPU use is printed) and one SIZE MiB object PUT / GET (boto3, multipart
                     8 MiB parts, 8 in flight), against ours and a single-node Garage
  coherence          two mounts of one volume, caches on: a file created, overwritten (same
                     size), appended to and deleted on mount A, mount B polled (every 5 ms) until
                     it sees the change; the worst and the median delay. Ours: `gatewayd up`'s
                     mount + `gatewayd mount vol`; GlusterFS: two `mount -t glusterfs`.

Kernel caches are dropped before each phase (root), so each phase makes the file system answer.
The raw column runs the FUSE workloads on a plain directory of the same disk; it is the limit.
The soak (gatewayd RSS flat over an hour of mixed load) is bench/soak.py.

Peers that are not installed are skipped with a line saying so: GlusterFS (glusterfs-server),
NFS-Ganesha (apt-get install nfs-ganesha nfs-ganesha-gluster rpcbind), Garage (not installed by
this script: `cargo install garage --locked` takes ~20 min). Under CI=true a missing GlusterFS or
Ganesha fails the run instead. linux-source is installed with apt-get when missing.

Usage (as root, from the repository):
  bench/all.py                      # the full run: 2,000 files, 10,000-entry ls, 1 GiB, whole tree
  bench/all.py --quick              # smoke: 200 files, 1,000 entries, 64 MiB, kernel/ subtree
  bench/all.py --json out.json      # also the figures as JSON
Options: --files N --threads-mt 8 --ls-entries N --size-mib N --s3-objects N --s3-size-mib N
  --nfs-threads 4 --coherence-rounds 5 --tar-subset DIR (a top-level directory of the tree)
  --only fuse,tar,nfs,s3,coherence  --build (cargo build --release first; default: only when the
  binaries are missing) --keep (keep the temp dir).
Not part of the test command. On 2 cores the full run takes one to two hours, most of it the
Linux tree (~80,000 entries) through GlusterFS's and our FUSE mounts; --quick takes ~4 min.
Other work on the machine (a cargo build) shows in every column: run it on an idle machine.
"""

import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as common  # noqa: E402  (launchers: Ours, Gluster; drop_caches, dd_rate, ...)
import s3load  # noqa: E402

log = common.log
REPO = common.REPO
BIN = os.path.join(REPO, "target", "release")
SECTIONS = ["fuse", "tar", "coherence", "nfs", "s3"]


# ------------------------------------------------------------------------------------------------
# FUSE workloads (also run on the raw directory)
# ------------------------------------------------------------------------------------------------

def split_run(threads, items, fn):
    """FN on every item, the items split over THREADS client processes; returns seconds.

    Processes, not Python threads: with threads, every call that returns from the kernel waits
    for the GIL, and for a call of ~40 us (a cached stat) that hand-off is the measure, not
    the file system (8 threads ran 5x slower than one)."""
    if threads == 1:
        t = time.perf_counter()
        for x in items:
            fn(x)
        return time.perf_counter() - t
    parts = [items[i::threads] for i in range(threads)]
    t = time.perf_counter()
    pids = []
    for part in parts:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                for x in part:
                    fn(x)
            except BaseException as e:  # noqa: BLE001 - reported by the parent's exit check
                sys.stderr.write(f"bench worker: {e!r}\n")
                code = 1
            finally:
                os._exit(code)
        pids.append(pid)
    failed = sum(1 for pid in pids if os.waitpid(pid, 0)[1] != 0)
    dt = time.perf_counter() - t
    if failed:
        raise RuntimeError(f"{failed} of {threads} bench workers failed")
    return dt


def small_files(root, n, threads):
    """create / stat / read / delete of N x 4 KiB files with THREADS threads; ops/s."""
    d = os.path.join(root, f"small-{threads}t")
    os.makedirs(d)
    names = [os.path.join(d, f"f{i:06d}") for i in range(n)]
    data = os.urandom(4096)

    def create(p):
        fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def read(p):
        fd = os.open(p, os.O_RDONLY)
        try:
            got = os.read(fd, 8192)
        finally:
            os.close(fd)
        if len(got) != 4096:
            raise RuntimeError(f"read {p}: {len(got)} bytes, wanted 4096")

    res = {}
    for name, fn in [("create", create), ("stat", os.stat), ("read", read), ("delete", os.unlink)]:
        common.drop_caches()
        res[name] = n / split_run(threads, names, fn)
    os.rmdir(d)
    return res


def ls_l(root, entries, threads):
    """`ls -l` of a directory of ENTRIES empty files (made with THREADS threads, not timed)."""
    d = os.path.join(root, "lsdir")
    os.makedirs(d)
    names = [os.path.join(d, f"entry-{i:06d}") for i in range(entries)]
    split_run(threads, names, lambda p: os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)))
    common.drop_caches()
    t = time.perf_counter()
    p = subprocess.run(["ls", "-l", d], capture_output=True, text=True,
                       env=dict(os.environ, LC_ALL="C"))
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"ls -l {d}: {p.stderr}")
    lines = p.stdout.count("\n") - 1  # "total N"
    if lines != entries:
        raise RuntimeError(f"ls -l {d} listed {lines} entries of {entries}")
    split_run(threads, names, os.unlink)
    os.rmdir(d)
    return {"ls -l": entries / dt}


def seq(root, size_mib):
    return common.large_file(root, size_mib)


def tar_du_rm(root, tarball):
    """tar x, du -s, rm -rf of TARBALL under ROOT; seconds each."""
    d = os.path.join(root, "linux")
    os.makedirs(d)
    common.drop_caches()
    subprocess.run(["cat", tarball], stdout=subprocess.DEVNULL, check=True)  # source in cache
    res = {}

    def timed(name, argv):
        t = time.perf_counter()
        p = subprocess.run(argv, capture_output=True, text=True)
        res[name] = time.perf_counter() - t
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr[-2000:]}")
        return p.stdout

    timed("tar x", ["tar", "-xf", tarball, "-C", d])
    common.drop_caches()
    out = timed("du -s", ["du", "-s", d])
    res["du_kib"] = int(out.split()[0])
    common.drop_caches()
    timed("rm -rf", ["rm", "-rf", d])
    return res


def fuse_suite(root, a, tarball, sections):
    """Every FUSE workload on ROOT; {key: value}. Keys: '<op> 1t', '<op> 8t', 'ls -l',
    'seq write', 'seq read', 'tar x', 'du -s', 'rm -rf'."""
    res = {}
    if "fuse" in sections:
        for threads in (1, a.threads_mt):
            log(f"  small files, {threads} thread(s) ...")
            for k, v in small_files(root, a.files, threads).items():
                res[f"{k} {threads}t"] = v
        log(f"  ls -l of {a.ls_entries} entries ...")
        res.update(ls_l(root, a.ls_entries, a.threads_mt))
        log(f"  seq write/read {a.size_mib} MiB ...")
        res.update(seq(root, a.size_mib))
    if "tar" in sections and tarball:
        log(f"  tar x / du -s / rm -rf of {os.path.basename(tarball)} ...")
        res.update(tar_du_rm(root, tarball))
    log("  " + ", ".join(f"{k} {v:.1f}" for k, v in res.items()))
    return res


# ------------------------------------------------------------------------------------------------
# The Linux source tarball
# ------------------------------------------------------------------------------------------------

def linux_tarball(subset):
    """/var/tmp/linux-source-X.tar (decompressed once), or a tar of its SUBSET directory."""
    xzs = sorted(glob.glob("/usr/src/linux-source-*.tar.xz"))
    if not xzs:
        log("linux-source missing: apt-get install -y linux-source ...")
        p = subprocess.run(["apt-get", "install", "-y", "linux-source"], capture_output=True,
                           text=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if p.returncode != 0:
            raise RuntimeError(f"apt-get install linux-source: {p.stdout[-1000:]}{p.stderr}")
        xzs = sorted(glob.glob("/usr/src/linux-source-*.tar.xz"))
        if not xzs:
            raise RuntimeError("linux-source installed no /usr/src/linux-source-*.tar.xz")
    xz = xzs[-1]
    stem = os.path.basename(xz)[:-len(".tar.xz")]
    full = os.path.join("/var/tmp", stem + ".tar")
    if not os.path.exists(full):
        log(f"decompressing {xz} to {full} (once) ...")
        with open(full + ".partial", "wb") as out:
            subprocess.run(["xz", "-dc", "-T0", xz], stdout=out, check=True)
        os.rename(full + ".partial", full)
    if not subset:
        return full
    sub = os.path.join("/var/tmp", f"{stem}-{subset.replace('/', '_')}.tar")
    if not os.path.exists(sub):
        log(f"making {sub} (once) ...")
        tmp = tempfile.mkdtemp(dir="/var/tmp", prefix="linux-subset-")
        try:
            subprocess.run(["tar", "-xf", full, "-C", tmp, f"{stem}/{subset}"], check=True)
            subprocess.run(["tar", "-cf", sub + ".partial", "-C", tmp, stem], check=True)
            os.rename(sub + ".partial", sub)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return sub


def tar_members(tarball):
    cache = tarball + ".count"
    if os.path.exists(cache):
        return int(open(cache).read())
    p = subprocess.run(["tar", "-tf", tarball], capture_output=True, text=True, check=True)
    n = p.stdout.count("\n")
    with open(cache, "w") as f:
        f.write(str(n))
    return n


# ------------------------------------------------------------------------------------------------
# Two mounts of one volume: the delay until B sees what A did
# ------------------------------------------------------------------------------------------------

def poll(cond, timeout=10.0, every=0.005):
    """Seconds until COND() is true (None after TIMEOUT)."""
    t0 = time.perf_counter()
    while True:
        try:
            if cond():
                return time.perf_counter() - t0
        except OSError:
            pass
        if time.perf_counter() - t0 > timeout:
            return None
        time.sleep(every)


def coherence(mnt_a, mnt_b, rounds):
    """Delays (s) for create, overwrite, append, delete seen on B; B looked first each time, so
    what its kernel and client caches hold is in play."""
    da, db = os.path.join(mnt_a, "coherence"), os.path.join(mnt_b, "coherence")
    os.makedirs(da)
    if poll(lambda: os.path.isdir(db), timeout=30) is None:
        raise RuntimeError(f"{db} never appeared on the second mount")
    res = {"create": [], "overwrite": [], "append": [], "delete": []}

    def read_b(p):
        with open(p, "rb") as f:
            return f.read()

    for r in range(rounds):
        pa, pb = os.path.join(da, f"f{r}"), os.path.join(db, f"f{r}")
        if os.path.exists(pb):  # B looks up the name now: a negative entry may be cached
            raise RuntimeError(f"{pb} exists before it was made")
        one, two = os.urandom(4096), os.urandom(4096)
        with open(pa, "wb") as f:
            f.write(one)
        res["create"].append(poll(lambda: read_b(pb) == one))
        read_b(pb)  # B has the old content cached
        with open(pa, "r+b") as f:
            f.write(two)
        res["overwrite"].append(poll(lambda: read_b(pb) == two))
        os.stat(pb)
        with open(pa, "ab") as f:
            f.write(one)
        res["append"].append(poll(lambda: os.stat(pb).st_size == 8192
                                  and read_b(pb) == two + one))
        os.unlink(pa)
        res["delete"].append(poll(lambda: not os.path.exists(pb)))
    shutil.rmtree(da)
    out = {}
    for k, v in res.items():
        ok = sorted(x for x in v if x is not None)
        out[f"{k} max"] = None if len(ok) < len(v) else ok[-1]
        out[f"{k} median"] = ok[len(ok) // 2] if ok else None
    out["all max"] = None if any(out[f"{k} max"] is None for k in res) else \
        max(out[f"{k} max"] for k in res)
    log("  " + ", ".join(f"{k} {fmt_s(v)}" for k, v in out.items()))
    return out


def fmt_s(v):
    return ">10s" if v is None else f"{v * 1000:.0f}ms"


class SecondGlusterMount:
    def __init__(self, g, path):
        self.path = path
        os.makedirs(path)
        subprocess.run(["mount", "-t", "glusterfs", f"{g.host}:/gvbench", path], check=True)
        common.wait_for("second GlusterFS mount", 30, lambda: common.is_mounted(path))

    def close(self):
        if common.is_mounted(self.path):
            subprocess.run(["umount", self.path], stderr=subprocess.DEVNULL)
            if common.is_mounted(self.path):
                subprocess.run(["umount", "-l", self.path], stderr=subprocess.DEVNULL)


class SecondOursMount:
    """`gatewayd mount vol DIR --data DATA`: the native client, a second FUSE mount."""

    def __init__(self, o, path, logpath):
        self.path = path
        os.makedirs(path)
        self.log = open(logpath, "w")
        self.proc = subprocess.Popen([os.path.join(BIN, "gatewayd"), "mount", "vol", path,
                                      "--data", o.data], stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"gatewayd mount exited ({self.proc.returncode}); see {logpath}")
            return common.is_mounted(path)
        common.wait_for("gatewayd mount", 60, up)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()  # it unmounts on SIGTERM
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if common.is_mounted(self.path):
            subprocess.run(["fusermount3", "-uz", self.path], stderr=subprocess.DEVNULL)
        self.log.close()


# ------------------------------------------------------------------------------------------------
# S3
# ------------------------------------------------------------------------------------------------

def proc_cpu(pids):
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(f[11]) + int(f[12])) / tick
    return total


def pids_matching(text):
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if text in open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace"):
                    out.append(int(pid))
            except OSError:
                pass
    return out


def s3_suite(url, ak, sk, region, bucket, server_pids, a, base, make_bucket):
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    s3 = boto3.client("s3", endpoint_url=url, region_name=region, aws_access_key_id=ak,
                      aws_secret_access_key=sk,
                      config=Config(signature_version="s3v4", max_pool_connections=32,
                                    s3={"addressing_style": "path"}))
    if make_bucket:
        s3.create_bucket(Bucket=bucket)
    res, cpu = {}, {}
    body = os.urandom(4096)
    keys = [f"small/{i:06d}" for i in range(a.s3_objects)]
    procs, threads = a.s3_procs, a.s3_threads // a.s3_procs

    def measured(name, fn, n):
        pids = server_pids()
        c0 = proc_cpu(pids)
        t = time.perf_counter()
        r = fn()
        dt = time.perf_counter() - t
        server = (proc_cpu(pids) - c0) / dt
        if isinstance(r, tuple):  # (ops/s, client cores) from s3load
            res[name], cpu[name] = r[0], {"client": r[1], "server": server}
        else:
            res[name], cpu[name] = n / dt, {"server": server}

    for op in ("PUT", "GET"):
        if op == "GET":
            common.drop_caches()
        measured(f"s3 small {op}", lambda: s3load.small_objects(
            url, ak, sk, region, bucket, op, keys, procs, threads, body), len(keys))

    def list_all():
        n, tok = 0, None
        while True:
            kw = {"Bucket": bucket, "Prefix": "small/", "MaxKeys": 1000}
            if tok:
                kw["ContinuationToken"] = tok
            r = s3.list_objects_v2(**kw)
            n += r.get("KeyCount", 0)
            if not r["IsTruncated"]:
                break
            tok = r["NextContinuationToken"]
        if n != len(keys):
            raise RuntimeError(f"LIST saw {n} keys of {len(keys)}")
    common.drop_caches()
    measured("s3 small LIST", list_all, len(keys))
    measured("s3 small DELETE", lambda: s3load.small_objects(
        url, ak, sk, region, bucket, "DELETE", keys, procs, threads, body), len(keys))

    size = a.s3_size_mib << 20
    src = os.path.join(base, "s3-large.src")
    with open(src, "wb") as f:
        for _ in range(a.s3_size_mib):
            f.write(os.urandom(1 << 20))
    tc = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20,
                        max_concurrency=8)
    common.drop_caches()
    measured("s3 large PUT", lambda: s3.upload_file(src, bucket, "large.bin", Config=tc),
             size / 1e6)
    common.drop_caches()
    dst = os.path.join(base, "s3-large.dst")
    measured("s3 large GET", lambda: s3.download_file(bucket, "large.bin", dst, Config=tc),
             size / 1e6)
    if os.path.getsize(dst) != size:
        raise RuntimeError(f"GET large.bin: {os.path.getsize(dst)} bytes, wanted {size}")
    os.unlink(dst)
    os.unlink(src)
    s3.delete_object(Bucket=bucket, Key="large.bin")
    log("  " + ", ".join(f"{k} {v:.0f}" for k, v in res.items()))
    log("  CPU cores busy: " + ", ".join(
        f"{k}: " + "/".join(f"{w} {c:.2f}" for w, c in v.items()) for k, v in cpu.items()))
    return res, cpu


def s3_key_ours(o):
    out = subprocess.run([os.path.join(BIN, "gwctl"), "--data", o.data, "s3", "key", "create",
                          "bench", "--json"], check=True, capture_output=True, text=True).stdout
    k = json.loads(out)
    url = open(os.path.join(o.data, "s3.url")).read().strip()
    return url, k["access_key"], k["secret_key"]


# ------------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------------

class Run:
    def __init__(self, a, base):
        self.a, self.base = a, base
        self.results = {"raw": {}, "glusterfs": {}, "ganesha": {}, "garage": {}, "ours": {}}
        self.cpu = {}
        self.notes, self.errors = [], []
        self.open = []

    def section(self, what, fn):
        """FN(); an exception is logged with its traceback and listed under the table, and
        the run goes on with the next section."""
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - reported (traceback + table), not hidden
            log(f"FAILED: {what}: {e}")
            traceback.print_exc()
            self.errors.append(f"{what}: {type(e).__name__}: {e}")
            return None

    def start(self, make):
        s = make()
        self.open.append(s)
        return s

    def stop(self, s):
        self.open.remove(s)
        s.close()

    def close_all(self):
        for s in reversed(self.open):
            try:
                s.close()
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                log(f"cleanup: {type(e).__name__}: {e}")
        self.open = []


def run_all(r, tarball):
    a, base, res = r.a, r.base, r.results
    fs_sections = [s for s in ("fuse", "tar") if s in a.only]
    in_ci = os.environ.get("CI") == "true"
    nfsbench = None
    if "nfs" in a.only:
        try:
            import nfs as nfsbench  # bench/nfs.py (needs `pip install nfs-rs`)
        except ImportError as e:
            r.errors.append(f"NFS column: {e} (pip install nfs-rs)")
            a.only = [s for s in a.only if s != "nfs"]

    if fs_sections:
        raw = os.path.join(base, "raw")
        os.makedirs(raw)
        log(f"raw disk ({raw}) ...")
        r.section("raw disk", lambda: res["raw"].update(fuse_suite(raw, a, tarball, fs_sections)))

    # ---- GlusterFS 10: FUSE, coherence, NFS-Ganesha ----------------------------------------
    if not shutil.which("glusterd"):
        msg = "glusterd not installed (apt-get install glusterfs-server glusterfs-client)"
        if in_ci:
            raise RuntimeError(msg)
        r.notes.append(msg + ": GlusterFS and NFS-Ganesha columns skipped")
    elif set(a.only) & {"fuse", "tar", "coherence", "nfs"}:
        log("GlusterFS 10, 2 x 2 distributed-replicate ...")
        g = r.start(lambda: common.Gluster(base, replica=2))
        if fs_sections:
            r.section("GlusterFS FUSE", lambda: res["glusterfs"].update(
                fuse_suite(g.mnt, a, tarball, fs_sections)))
        if "coherence" in a.only:
            def gcoh():
                log("  two GlusterFS mounts: coherence ...")
                m2 = r.start(lambda: SecondGlusterMount(g, os.path.join(base, "gluster2")))
                try:
                    res["glusterfs"].update(
                        {"coh " + k: v for k, v in coherence(g.mnt, m2.path,
                                                             a.coherence_rounds).items()})
                finally:
                    r.stop(m2)
            r.section("GlusterFS coherence", gcoh)
        if "nfs" in a.only:
            if not shutil.which("ganesha.nfsd"):
                msg = ("NFS-Ganesha not installed (apt-get install nfs-ganesha "
                       "nfs-ganesha-gluster rpcbind)")
                if in_ci:
                    raise RuntimeError(msg)
                r.notes.append(msg + ": Ganesha column skipped")
            else:
                def gan():
                    log(f"  NFS-Ganesha (FSAL_GLUSTER), nfs-rs, {a.nfs_threads} threads ...")
                    n = r.start(lambda: nfsbench.Ganesha(base))
                    try:
                        out = nfsbench.workload(n.port, n.mnt_port, "/gvbench", a.files,
                                                a.size_mib, a.nfs_threads)
                        res["ganesha"].update({"nfs " + k: v for k, v in out.items()})
                    finally:
                        r.stop(n)
                r.section("NFS-Ganesha", gan)
        r.stop(g)

    # ---- ours ---------------------------------------------------------------------------------
    log("ours: gatewayd up (2 x 2 distributed-replicate) ...")
    o = r.start(lambda: common.Ours(base, replica=2, extra=["--smb", "off"]))
    if fs_sections:
        r.section("ours FUSE", lambda: res["ours"].update(
            fuse_suite(o.mnt, a, tarball, fs_sections)))
    if "coherence" in a.only:
        def ocoh():
            log("  two mounts (gatewayd up's + gatewayd mount): coherence ...")
            m2 = r.start(lambda: SecondOursMount(o, os.path.join(base, "ours2"),
                                                 os.path.join(base, "gatewayd-mount.log")))
            try:
                res["ours"].update({"coh " + k: v for k, v in coherence(
                    o.mnt, m2.path, a.coherence_rounds).items()})
            finally:
                r.stop(m2)
        r.section("ours coherence", ocoh)
    if "nfs" in a.only:
        def onfs():
            log(f"  our NFSv3, nfs-rs, {a.nfs_threads} threads ...")
            port = int(open(os.path.join(o.data, "nfs.addr")).read().strip().rsplit(":", 1)[1])
            out = nfsbench.workload(port, port, "/vol", a.files, a.size_mib, a.nfs_threads)
            res["ours"].update({"nfs " + k: v for k, v in out.items()})
        r.section("ours NFS", onfs)
    if "s3" in a.only:
        def os3():
            log(f"  our S3: {a.s3_objects} x 4 KiB at {a.s3_threads} connections, "
                f"{a.s3_size_mib} MiB object ...")
            url, ak, sk = s3_key_ours(o)
            out, cpu = s3_suite(url, ak, sk, "us-east-1", "s3bench",
                                lambda: pids_matching(o.data), a, base, make_bucket=True)
            res["ours"].update(out)
            r.cpu["ours"] = cpu
        r.section("ours S3", os3)
    r.stop(o)

    # ---- Garage -------------------------------------------------------------------------------
    if "s3" in a.only:
        if not shutil.which("garage"):
            r.notes.append("garage not installed: cargo install garage --locked "
                           "(then put it on PATH); Garage column skipped")
        else:
            def gar():
                log("Garage, single node ...")
                gs = r.start(lambda: s3load.Garage(base, common.wait_for, log))
                try:
                    out, cpu = s3_suite(gs.url, gs.access_key, gs.secret_key, gs.region,
                                        "s3bench", lambda: [gs.pid], a, base, make_bucket=False)
                    res["garage"].update(out)
                    r.cpu["garage"] = cpu
                finally:
                    r.stop(gs)
            r.section("Garage S3", gar)


# ------------------------------------------------------------------------------------------------
# The table
# ------------------------------------------------------------------------------------------------

def rows(a, tar_label):
    """(label, key, unit, peer, target, kind, raw key). kind: 'rate' (ours/peer >= target),
    'time' (peer/ours >= target), 'delay' (ours <= target s)."""
    out = []
    for t in (1, a.threads_mt):
        for op in ("create", "stat", "read", "delete"):
            out.append((f"FUSE {op} 4 KiB, {t} thr", f"{op} {t}t", "ops/s", "glusterfs", 10.0,
                        "rate", f"{op} {t}t"))
    out.append((f"FUSE ls -l {a.ls_entries} entries", "ls -l", "ent/s", "glusterfs", 3.0,
                "rate", "ls -l"))
    out.append((f"FUSE seq write {a.size_mib} MiB", "seq write", "MB/s", "glusterfs", 1.5,
                "rate", "seq write"))
    out.append((f"FUSE seq read {a.size_mib} MiB", "seq read", "MB/s", "glusterfs", 1.5, "rate",
                "seq read"))
    out.append(("FUSE seq read / raw disk", "seq read", "MB/s", "raw", 0.70, "rate", "seq read"))
    for k in ("tar x", "du -s", "rm -rf"):
        out.append((f"{k} {tar_label}", k, "s", "glusterfs", 5.0, "time", k))
    for k in ("create", "stat", "read", "ls -l", "delete"):
        label = (f"NFSv3 ls -l {a.files} entries, 1 thr" if k == "ls -l"
                 else f"NFSv3 {k} 4 KiB, {a.nfs_threads} thr")
        out.append((label, f"nfs {k}", "ent/s" if k == "ls -l" else "ops/s", "ganesha", 2.0,
                    "rate", None))
    out.append((f"NFSv3 seq write {a.size_mib} MiB", "nfs seq write", "MB/s", "ganesha", 2.0,
                "rate", "seq write"))
    out.append((f"NFSv3 seq read {a.size_mib} MiB", "nfs seq read", "MB/s", "ganesha", 2.0,
                "rate", "seq read"))
    for op, t in (("PUT", 3.0), ("GET", 3.0), ("LIST", 5.0), ("DELETE", None)):
        conc = f"{a.s3_threads} conn" if op != "LIST" else "1 conn"
        out.append((f"S3 4 KiB {op}, {conc}", f"s3 small {op}", "ops/s", "garage", t, "rate",
                    None))
    out.append((f"S3 {a.s3_size_mib} MiB PUT", "s3 large PUT", "MB/s", "garage", 1.5, "rate",
                "seq write"))
    out.append((f"S3 {a.s3_size_mib} MiB GET", "s3 large GET", "MB/s", "garage", 1.5, "rate",
                "seq read"))
    for k in ("create", "overwrite", "append", "delete"):
        out.append((f"2 mounts: {k} seen, worst", f"coh {k} max", "s", "glusterfs", 1.0,
                    "delay", None))
    return out


def fmt_ratio(r):
    if r is None:
        return "-"
    return f"{r:.2f}" if r < 10 else f"{r:.1f}"


def row_section(key):
    if key.startswith("nfs "):
        return "nfs"
    if key.startswith("s3 "):
        return "s3"
    if key.startswith("coh "):
        return "coherence"
    if key in ("tar x", "du -s", "rm -rf"):
        return "tar"
    return "fuse"


def coh_ran(sysres):
    return "coh create median" in sysres


def table(a, results, tar_label):
    lines, data = [], []
    hdr = (f"{'workload':<34} {'unit':>5} {'raw':>9} {'peer':>9} {'(peer)':<9} {'ours':>9} "
           f"{'ratio':>7} {'target':>8}  met")
    lines += [hdr, "-" * len(hdr)]
    all_met = True

    def f(v, unit):
        if v is None:
            return "-"
        if unit == "s":
            return f"{v:.3f}" if v < 10 else f"{v:.1f}"
        return f"{v:.0f}" if v >= 10 else f"{v:.2f}"

    for label, key, unit, peer, target, kind, raw_key in rows(a, tar_label):
        if row_section(key) not in a.only:
            continue
        ours = results["ours"].get(key)
        rawv = results["raw"].get(raw_key) if raw_key else None
        peerv = results[peer].get(key if peer != "raw" else raw_key)
        if kind == "rate":
            ratio = ours / peerv if ours and peerv else None
            met = None if ratio is None or target is None else ratio >= target
            tgt = "-" if target is None else (f">= {target:.0%}" if peer == "raw"
                                              else f">= {target:g}x")
        elif kind == "time":
            ratio = peerv / ours if ours and peerv else None
            met = None if ratio is None else ratio >= target
            tgt = f">= {target:g}x"
        else:  # delay: None means not seen within the poll timeout (when the test ran)
            ratio = None
            met = (ours is not None and ours <= target) if coh_ran(results["ours"]) else None
            tgt = f"<= {target:g} s"
        if met is False:
            all_met = False
        peer_name = {"glusterfs": "GlusterFS", "ganesha": "Ganesha", "garage": "Garage",
                     "raw": "raw"}[peer]
        ours_s, peer_s = f(ours, unit), f(peerv, unit)
        if kind == "delay":
            ours_s = ">10" if ours is None and coh_ran(results["ours"]) else ours_s
            peer_s = ">10" if peerv is None and coh_ran(results[peer]) else peer_s
        mets = "-" if met is None else ("yes" if met else "NO")
        lines.append(f"{label:<34} {unit:>5} {f(rawv, unit):>9} {peer_s:>9} {peer_name:<9} "
                     f"{ours_s:>9} {fmt_ratio(ratio):>7} "
                     f"{tgt:>8}  {mets}")
        data.append({"workload": label, "unit": unit, "raw": rawv, "peer": peer_name,
                     "peer_value": peerv, "ours": ours, "ratio": ratio, "target": tgt,
                     "met": met})
    return lines, data, all_met


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 1)[1])
    ap.add_argument("--quick", action="store_true",
                    help="small sizes for a smoke run (explicit size flags still win)")
    ap.add_argument("--files", type=int, help="small files per thread count (2000; quick 200)")
    ap.add_argument("--threads-mt", type=int, default=8, help="the multi-thread count (8)")
    ap.add_argument("--ls-entries", type=int, help="entries for ls -l (10000; quick 1000)")
    ap.add_argument("--size-mib", type=int, help="FUSE/NFS sequential size (1024; quick 64)")
    ap.add_argument("--s3-objects", type=int, help="4 KiB objects (2000; quick 300)")
    ap.add_argument("--s3-size-mib", type=int, help="large object (1024; quick 64)")
    ap.add_argument("--s3-threads", type=int, default=16, help="S3 connections (16)")
    ap.add_argument("--s3-procs", type=int, default=4, help="client processes sharing them (4)")
    ap.add_argument("--nfs-threads", type=int, default=4, help="nfs-rs client threads (4)")
    ap.add_argument("--coherence-rounds", type=int, default=5)
    ap.add_argument("--tar-subset", help="a directory of the Linux tree to use instead of all of "
                    "it (quick: kernel)")
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help=f"comma-separated sections ({','.join(SECTIONS)})")
    ap.add_argument("--build", action="store_true", help="cargo build --release first")
    ap.add_argument("--no-build", action="store_true",
                    help="never build (default: build only when a binary is missing)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    q = a.quick
    a.files = a.files or (200 if q else 2000)
    a.ls_entries = a.ls_entries or (1000 if q else 10000)
    a.size_mib = a.size_mib or (64 if q else 1024)
    a.s3_objects = a.s3_objects or (300 if q else 2000)
    a.s3_size_mib = a.s3_size_mib or (64 if q else 1024)
    if a.tar_subset is None and q:
        a.tar_subset = "kernel"
    a.only = [s.strip() for s in a.only.split(",") if s.strip()]
    bad = set(a.only) - set(SECTIONS)
    if bad:
        sys.exit(f"--only: unknown sections {sorted(bad)}; known: {SECTIONS}")
    if a.s3_threads % a.s3_procs:
        sys.exit("--s3-threads must be a multiple of --s3-procs")
    if os.geteuid() != 0:
        sys.exit("bench/all.py needs root (FUSE mounts, glusterd, dropping caches)")

    bins = [os.path.join(BIN, b) for b in ("gatewayd", "brickd", "gwctl")]
    missing = [b for b in bins if not os.access(b, os.X_OK)]
    if a.build or (missing and not a.no_build):
        log("cargo build --release --bins -p gateway -p brickd ...")
        subprocess.run(["cargo", "build", "--release", "--bins", "-p", "gateway", "-p", "brickd"],
                       cwd=REPO, check=True)
    elif missing:
        sys.exit(f"missing {missing}: run without --no-build, or cargo build --release")

    tarball = linux_tarball(a.tar_subset) if "tar" in a.only else None
    tar_label = ""
    if tarball:
        tar_label = (f"linux {a.tar_subset + '/' if a.tar_subset else ''}"
                     f" ({tar_members(tarball)} ent)")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cleanup runs in `finally`
    base = tempfile.mkdtemp(prefix="bench-all-", dir="/tmp")
    r = Run(a, base)
    began = time.time()
    try:
        run_all(r, tarball)
    except KeyboardInterrupt:
        r.errors.append("interrupted")
        raise
    finally:
        r.close_all()
        if a.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    elapsed = time.time() - began

    lines, data, all_met = table(a, r.results, tar_label)
    print()
    print(f"bench/all.py: 2 x 2 volumes; {a.files} x 4 KiB files at 1 and {a.threads_mt} threads; "
          f"ls -l of {a.ls_entries}; {a.size_mib} MiB sequential; S3 {a.s3_objects} x 4 KiB at "
          f"{a.s3_threads} connections ({a.s3_procs} processes), {a.s3_size_mib} MiB object; "
          f"{os.cpu_count()} CPUs; took {elapsed:.0f}s")
    print("ratio = ours / peer (for times: peer / ours); raw = the same workload on a plain "
          "directory of the same disk (for NFS/S3 large rows: the disk's dd MB/s, the limit)\n")
    print("\n".join(lines))
    judged = [d for d in data if d["met"] is not None]
    print(f"\ntargets met: {sum(1 for d in judged if d['met'])} of {len(judged)} judged "
          f"({'all met' if all_met and judged else 'not all met'})")
    for who, cpu in r.cpu.items():
        busy = ", ".join(f"{k.replace('s3 ', '')} client {v['client']:.2f} / server "
                         f"{v['server']:.2f}" for k, v in cpu.items() if "client" in v)
        print(f"\nS3 small-object CPU cores busy ({who}): {busy}")
    for k in ("coh create median", "coh overwrite median", "coh append median",
              "coh delete median"):
        if k in r.results["ours"] or k in r.results["glusterfs"]:
            print(f"{k[4:]}: GlusterFS {fmt_s(r.results['glusterfs'].get(k))}, ours "
                  f"{fmt_s(r.results['ours'].get(k))}"
                  if k in r.results["glusterfs"] else
                  f"{k[4:]}: ours {fmt_s(r.results['ours'].get(k))}")
    print("\ngatewayd RSS flat over a 1-hour mixed load (< 2 % growth after warm-up): "
          "bench/soak.py --minutes 60")
    for n in r.notes:
        print(f"note: {n}")
    for e in r.errors:
        print(f"FAILED: {e}")
    if a.json:
        with open(a.json, "w") as fjs:
            json.dump({"args": vars(a), "elapsed_s": elapsed, "results": r.results,
                       "cpu": r.cpu, "table": data, "notes": r.notes, "errors": r.errors},
                      fjs, indent=2)
        print(f"JSON: {a.json}")
    sys.exit(1 if r.errors else 0)


if __name__ == "__main__":
    main()
