#!/usr/bin/env python3
"""Soak: gatewayd's memory under a long mixed FUSE / NFS / S3 / SMB load (DESIGN.md §12: flat,
< 2 % RSS growth after warm-up over an hour).

One `gatewayd up` (release build, 2 x 2 volume, FUSE mount, NFS, S3 and SMB on free ports).
Four load loops run at once until the time is up, each touching its own directory:

  FUSE  write 20 files of 4 KiB..1 MiB through the mount, read and check them, list, rename, delete
  NFS   the same with the nfs-rs userspace client (what bench/nfs.py uses) against /vol
  S3    boto3: 20 x 4 KiB..256 KiB PUT, GET (checked), LIST, DELETE; every 10th round a 24 MiB
        multipart upload and download
  SMB   smbclient (SMB3, a share made with gwctl): put a 1 MiB file, get it back, check, delete

Every INTERVAL seconds the VmRSS of gatewayd and of every brickd (from /proc/PID/status) goes to
a CSV, with each loop's round count. At the end the script writes a PNG plot (matplotlib) and
prints the growth: the mean RSS of the first 10 % of the samples after the warm-up against the
mean of the last 10 %, for gatewayd (the target, < 2 %) and for each brickd.

Usage (as root, from the repository, after `cargo build --release`):
  bench/soak.py                          # 60 minutes, samples every 10 s, 10 min warm-up
  bench/soak.py --minutes 2 --interval 2 # a smoke run
Options: --minutes M --interval S --warmup-minutes W (default: 1/6 of the run) --out DIR (CSV
and PNG; default /tmp/soak-<time>) --pause S (sleep between rounds of each loop) --keep.
Exit status 1 when a load loop failed or gatewayd died; the RSS verdict is printed.
Not part of the test command.
"""

import argparse
import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as common  # noqa: E402  (the gatewayd launcher)

log = common.log
BIN = os.path.join(common.REPO, "target", "release")
SMB_USER, SMB_PASS = "soak", "soak-secret-pw-1"


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def brickd_pids(data):
    """{brick path: pid} of the brickd processes of this gateway."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == "brickd" and any(data in x for x in argv):
            brick = next((argv[i + 1] for i in range(len(argv) - 1) if argv[i] == "--brick"),
                         f"pid{pid}")
            out[brick] = int(pid)
    return out


def gwctl(o, *args, stdin=None):
    p = subprocess.run([os.path.join(BIN, "gwctl"), "--data", o.data, *args], input=stdin,
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"gwctl {' '.join(args)}: {p.stdout}{p.stderr}")
    return p.stdout


def payloads(seed, n, lo, hi):
    """N deterministic payloads of LO..HI bytes (random content, cheap to make)."""
    block = os.urandom(hi)
    out = []
    for i in range(n):
        size = lo + (hash((seed, i)) % (hi - lo + 1))
        out.append(block[i % 64:i % 64 + size] if size + 64 <= hi else block[:size])
    return out


class Loop(threading.Thread):
    """Runs ROUND(i) until STOP; counts rounds; the first error ends the loop and is kept."""

    def __init__(self, name, round_fn, stop, pause):
        super().__init__(name=name, daemon=True)
        self.round_fn, self.stop, self.pause = round_fn, stop, pause
        self.rounds, self.error = 0, None

    def run(self):
        try:
            while not self.stop.is_set():
                self.round_fn(self.rounds)
                self.rounds += 1
                if self.pause:
                    self.stop.wait(self.pause)
        except Exception as e:  # noqa: BLE001 - kept, reported, and fails the run
            self.error = f"{type(e).__name__}: {e}"
            log(f"{self.name} loop failed in round {self.rounds}: {self.error}")
            traceback.print_exc()


def fuse_round(mnt):
    top = os.path.join(mnt, "soak-fuse")
    os.makedirs(top, exist_ok=True)
    data = payloads("fuse", 20, 4096, 1 << 20)

    def rnd(i):
        d = os.path.join(top, f"r{i % 4}")
        os.makedirs(d, exist_ok=True)
        for j, b in enumerate(data):
            with open(os.path.join(d, f"f{j}"), "wb") as f:
                f.write(b)
        for j, b in enumerate(data):
            with open(os.path.join(d, f"f{j}"), "rb") as f:
                if f.read() != b:
                    raise RuntimeError(f"FUSE: {d}/f{j} read back differs")
        if len(os.listdir(d)) != len(data):
            raise RuntimeError(f"FUSE: {d} lists {len(os.listdir(d))} entries")
        for j in range(len(data)):
            os.rename(os.path.join(d, f"f{j}"), os.path.join(d, f"g{j}"))
        for j in range(len(data)):
            os.unlink(os.path.join(d, f"g{j}"))
        os.rmdir(d)
    return rnd


def nfs_round(port):
    import nfs_rs
    c = nfs_rs.Client.connect("nfs://127.0.0.1/vol", versions=["3"], nfs_port=port,
                              mount_port=port, uid=0, gid=0)
    c.mkdir("/soak-nfs", 0o755, exist_ok=True)
    data = payloads("nfs", 20, 4096, 1 << 20)

    def rnd(i):
        for j, b in enumerate(data):
            with c.open(f"/soak-nfs/f{j}", "wb") as f:
                f.write(b)
        for j, b in enumerate(data):
            with c.open(f"/soak-nfs/f{j}", "rb") as f:
                if f.read() != b:
                    raise RuntimeError(f"NFS: /soak-nfs/f{j} read back differs")
        n = sum(1 for _ in c.scandir("/soak-nfs"))
        if n != len(data):
            raise RuntimeError(f"NFS: /soak-nfs lists {n} entries")
        for j in range(len(data)):
            c.remove(f"/soak-nfs/f{j}")
    return rnd


def s3_round(o, base):
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    k = json.loads(gwctl(o, "s3", "key", "create", "soak", "--json"))
    url = open(os.path.join(o.data, "s3.url")).read().strip()
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                      aws_access_key_id=k["access_key"], aws_secret_access_key=k["secret_key"],
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket="soak")
    data = payloads("s3", 20, 4096, 256 << 10)
    big = os.path.join(base, "s3-big.src")
    with open(big, "wb") as f:
        f.write(os.urandom(24 << 20))
    big_sum = hashlib.sha256(open(big, "rb").read()).hexdigest()
    back = os.path.join(base, "s3-big.dst")
    tc = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20,
                        max_concurrency=4)

    def rnd(i):
        for j, b in enumerate(data):
            s3.put_object(Bucket="soak", Key=f"o/{j}", Body=b)
        for j, b in enumerate(data):
            if s3.get_object(Bucket="soak", Key=f"o/{j}")["Body"].read() != b:
                raise RuntimeError(f"S3: o/{j} read back differs")
        n = s3.list_objects_v2(Bucket="soak", Prefix="o/").get("KeyCount", 0)
        if n != len(data):
            raise RuntimeError(f"S3: LIST saw {n} keys")
        s3.delete_objects(Bucket="soak", Delete={"Objects": [{"Key": f"o/{j}"}
                                                             for j in range(len(data))]})
        if i % 10 == 0:
            s3.upload_file(big, "soak", "big.bin", Config=tc)
            s3.download_file("soak", "big.bin", back, Config=tc)
            if hashlib.sha256(open(back, "rb").read()).hexdigest() != big_sum:
                raise RuntimeError("S3: big.bin read back differs")
            os.unlink(back)
            s3.delete_object(Bucket="soak", Key="big.bin")
    return rnd


def smb_round(o, base):
    gwctl(o, "smb", "user", "add", SMB_USER, stdin=SMB_PASS + "\n")
    gwctl(o, "smb", "share", "add", "soak", "--volume", "vol", "--path", "/soak-smb",
          "--user", SMB_USER)
    addr = common.wait_for("DATA/smb.addr", 30, lambda: os.path.exists(
        os.path.join(o.data, "smb.addr")) and open(os.path.join(o.data, "smb.addr")).read().strip())
    port = addr.rsplit(":", 1)[1]
    src = os.path.join(base, "smb.src")
    with open(src, "wb") as f:
        f.write(os.urandom(1 << 20))
    want = open(src, "rb").read()
    dst = os.path.join(base, "smb.dst")

    def smb(cmd):
        p = subprocess.run(["smbclient", "-p", port, "//127.0.0.1/soak", "-U",
                            f"{SMB_USER}%{SMB_PASS}", "-m", "SMB3", "-c", cmd],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0 or "NT_STATUS_" in p.stdout + p.stderr:
            raise RuntimeError(f"smbclient -c '{cmd}': {p.stdout}{p.stderr}")

    def rnd(i):
        smb(f"put {src} f{i % 3}.bin; get f{i % 3}.bin {dst}; del f{i % 3}.bin")
        if open(dst, "rb").read() != want:
            raise RuntimeError("SMB: the file read back differs")
        os.unlink(dst)
    # smbd starts when the first share exists: wait until it answers.
    common.wait_for("smbd answering", 60, lambda: subprocess.run(
        ["smbclient", "-p", port, "//127.0.0.1/soak", "-U", f"{SMB_USER}%{SMB_PASS}", "-m",
         "SMB3", "-c", "ls"], capture_output=True).returncode == 0)
    return rnd


def growth(values, warm_n):
    """(mean of the first 10 % after warm-up, mean of the last 10 %, growth %)."""
    v = [x for x in values[warm_n:] if x is not None]
    if len(v) < 2:
        return None, None, None
    k = max(1, len(v) // 10)
    first, last = sum(v[:k]) / k, sum(v[-k:]) / k
    return first, last, (last - first) / first * 100


def plot(png, times, series, warm_s, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing (pip install matplotlib): no PNG")
        return False
    fig, ax = plt.subplots(figsize=(10, 5.5))
    mins = [t / 60 for t in times]
    for name, vals in series.items():
        ax.plot(mins, [v / 1024 if v is not None else float("nan") for v in vals], label=name,
                linewidth=2.2 if name == "gatewayd" else 1.0)
    ax.axvspan(0, warm_s / 60, color="grey", alpha=0.15, label="warm-up")
    ax.set_xlabel("minutes")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 1)[1])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--interval", type=float, default=10, help="seconds between RSS samples")
    ap.add_argument("--warmup-minutes", type=float, help="default: a sixth of the run")
    ap.add_argument("--pause", type=float, default=0.0, help="seconds between rounds of a loop")
    ap.add_argument("--out", help="directory for the CSV and PNG (default /tmp/soak-<time>)")
    ap.add_argument("--keep", action="store_true", help="keep the gateway's temp dir")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/soak.py needs root (FUSE mount, dropping caches)")
    for tool in ("smbclient", "smbd"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (apt-get install samba smbclient)")
    for b in ("gatewayd", "brickd", "gwctl"):
        if not os.access(os.path.join(BIN, b), os.X_OK):
            sys.exit(f"target/release/{b} missing: cargo build --release --bins -p gateway "
                     "-p brickd")
    warm_s = (a.warmup_minutes if a.warmup_minutes is not None else a.minutes / 6) * 60
    out = a.out or f"/tmp/soak-{time.strftime('%Y%m%d-%H%M%S')}"
    os.makedirs(out, exist_ok=True)
    csv_path, png_path = os.path.join(out, "rss.csv"), os.path.join(out, "rss.png")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cleanup runs in `finally`

    base = tempfile.mkdtemp(prefix="bench-soak-", dir="/tmp")
    stop = threading.Event()
    loops, errors = [], []
    times, series, rows = [], {}, []
    o = None
    try:
        log("gatewayd up (2 x 2; FUSE, NFS, S3, SMB on free ports) ...")
        o = common.Ours(base, replica=2, extra=["--smb", "127.0.0.1:0"])
        nfs_port = int(open(os.path.join(o.data, "nfs.addr")).read().strip().rsplit(":", 1)[1])
        rounds = {"fuse": fuse_round(o.mnt), "nfs": nfs_round(nfs_port),
                  "s3": s3_round(o, base), "smb": smb_round(o, base)}
        bricks = brickd_pids(o.data)
        if not bricks:
            raise RuntimeError(f"no brickd processes found for {o.data}")
        names = ["gatewayd"] + [f"brickd {os.path.basename(b)}" for b in sorted(bricks)]
        pids = [o.proc.pid] + [bricks[b] for b in sorted(bricks)]
        series = {n: [] for n in names}
        for name, fn in rounds.items():
            loops.append(Loop(name, fn, stop, a.pause))
        t0 = time.monotonic()
        for lp in loops:
            lp.start()
        log(f"load running for {a.minutes:g} min; RSS every {a.interval:g}s to {csv_path}")
        with open(csv_path, "w", newline="") as fcsv:
            w = csv.writer(fcsv)
            w.writerow(["t_s"] + [f"{n} rss_kib" for n in names] +
                       [f"{lp.name} rounds" for lp in loops])
            next_sample = t0
            last_log = t0
            while True:
                now = time.monotonic()
                t = now - t0
                vals = [rss_kib(p) for p in pids]
                if vals[0] is None:
                    raise RuntimeError(f"gatewayd (pid {o.proc.pid}) is gone; see {base}")
                times.append(t)
                for n, v in zip(names, vals):
                    series[n].append(v)
                row = [f"{t:.1f}"] + [v if v is not None else "" for v in vals] + \
                    [lp.rounds for lp in loops]
                rows.append(row)
                w.writerow(row)
                fcsv.flush()
                if now - last_log >= 60 or len(times) == 1:
                    log(f"  {t / 60:5.1f} min: gatewayd {vals[0] / 1024:.1f} MiB; rounds " +
                        ", ".join(f"{lp.name} {lp.rounds}" for lp in loops))
                    last_log = now
                failed = [lp for lp in loops if lp.error]
                if failed or t >= a.minutes * 60:
                    break
                next_sample += a.interval
                time.sleep(max(0.0, next_sample - time.monotonic()))
        stop.set()
        for lp in loops:
            lp.join(300)
            if lp.is_alive():
                errors.append(f"{lp.name}: its round did not end within 300 s of the stop")
    finally:
        stop.set()
        if o is not None:
            try:
                o.close()
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                log(f"cleanup: {type(e).__name__}: {e}")
        if a.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    errors += [f"{lp.name}: {lp.error}" for lp in loops if lp.error]

    warm_n = sum(1 for t in times if t < warm_s)
    print(f"\nsoak: {times[-1] / 60:.1f} min of FUSE + NFS + S3 + SMB load on one gatewayd "
          f"(2 x 2), RSS every {a.interval:g}s, warm-up {warm_s / 60:.1f} min "
          f"({warm_n} samples), {len(times)} samples")
    print("rounds: " + ", ".join(f"{lp.name} {lp.rounds}" for lp in loops))
    print(f"\n{'process':<20} {'start MiB':>10} {'after warm-up':>14} {'end':>8} {'growth':>8}")
    verdict = None
    for n, vals in series.items():
        first, last, g = growth(vals, warm_n)
        start = next((v for v in vals if v is not None), None)
        if g is None:
            print(f"{n:<20} {'-':>10} {'-':>14} {'-':>8} {'-':>8}")
            continue
        print(f"{n:<20} {start / 1024:>10.1f} {first / 1024:>14.1f} {last / 1024:>8.1f} "
              f"{g:>7.2f}%")
        if n == "gatewayd":
            verdict = g
    title = "gatewayd RSS under mixed FUSE/NFS/S3/SMB load"
    if verdict is not None:
        title += f": {verdict:+.2f}% after warm-up (target < 2%)"
    if plot(png_path, times, series, warm_s, title):
        print(f"\nPNG: {png_path}")
    print(f"CSV: {csv_path}")
    if verdict is None:
        print("gatewayd growth: not enough samples after the warm-up")
    else:
        print(f"gatewayd growth after warm-up: {verdict:+.2f}% (target < 2 %): "
              f"{'met' if verdict < 2 else 'NOT met'}")
    for e in errors:
        print(f"FAILED: {e}")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
