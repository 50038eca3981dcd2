#!/usr/bin/env python3
"""Rebalance side by side: ours vs GlusterFS 10, same machine, same run.

Both systems get a 2 x 2 distributed-replicate volume (bricks 1+2 and 3+4 are the replica sets)
on the same file system, filled through their FUSE mounts (not timed) with

  small  N x 64 KiB files in 100 directories, and
  large  L x SIZE MiB files,

each in its own run. Then one more replica set joins (2 x 2 -> 3 x 2: ours
`gwctl volume add-brick vol b5 b6`, GlusterFS `gluster volume add-brick gvbench gb5 gb6 force`)
and the rebalance is timed from `rebalance start` until its status says completed. Prints the
files moved per second and MB moved per second of each, and ours/GlusterFS against the
targets of issue 13 (small files >= 5 x, large >= 2 x). Every file's checksum is verified
through each mount afterwards.

Usage (as root, from the repository, after `cargo build --release --bins`):
  bench/rebalance.py [--files 20000] [--large 8] [--size-mib 1024] [--keep] [--json PATH]
Not part of the test command.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as common  # noqa: E402  (gatewayd and glusterd launchers)

log = common.log
TARGETS = {"small": 5.0, "large": 2.0}


def fill(root, files, size):
    """FILES files of SIZE bytes under ROOT/d<k>/; returns path -> sha256."""
    sums = {}
    block = os.urandom(size)
    for i in range(files):
        d = os.path.join(root, f"d{i % 100}")
        os.makedirs(d, exist_ok=True)
        # Each file differs in its first bytes, so a misplaced block would show.
        data = i.to_bytes(8, "big") + block[8:]
        p = os.path.join(d, f"f{i}")
        with open(p, "wb") as f:
            f.write(data)
        sums[os.path.relpath(p, root)] = hashlib.sha256(data).hexdigest()
    return sums


def fill_large(root, files, size_mib):
    sums = {}
    os.makedirs(os.path.join(root, "big"), exist_ok=True)
    for i in range(files):
        p = os.path.join(root, "big", f"L{i}")
        h = hashlib.sha256()
        chunk = os.urandom(1 << 20)
        with open(p, "wb") as f:
            for k in range(size_mib):
                piece = k.to_bytes(8, "big") + i.to_bytes(8, "big") + chunk[16:]
                f.write(piece)
                h.update(piece)
        sums[os.path.relpath(p, root)] = h.hexdigest()
    return sums


def verify(root, sums):
    for rel, want in sums.items():
        h = hashlib.sha256()
        with open(os.path.join(root, rel), "rb") as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                h.update(b)
        if h.hexdigest() != want:
            raise RuntimeError(f"{rel} changed during the rebalance")


def gwctl(o, *args):
    p = subprocess.run([os.path.join(common.REPO, "target", "release", "gwctl"), "--data", o.data,
                        *args], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"gwctl {' '.join(args)}: {p.stdout}{p.stderr}")
    return p.stdout


def rebalance_ours(base, fill_fn):
    o = common.Ours(base, replica=2)
    try:
        sums = fill_fn(o.mnt)
        os.sync()
        bricks = os.path.join(os.path.realpath(o.data), "bricks")
        host = json.loads(gwctl(o, "volume", "info", "vol", "--json"))[0]["bricks"][0]["host"]
        new = [f"{host}:{os.path.join(bricks, b)}" for b in ("b5", "b6")]
        gwctl(o, "volume", "add-brick", "vol", *new)
        t0 = time.monotonic()
        gwctl(o, "volume", "rebalance", "vol", "start")
        while True:
            s = json.loads(gwctl(o, "volume", "rebalance", "vol", "status", "--json"))
            if s["state"] != "in progress":
                break
            time.sleep(0.2)
        took = time.monotonic() - t0
        if s["state"] != "completed" or s["totals"]["failed"]:
            raise RuntimeError(f"our rebalance: {s}")
        verify(o.mnt, sums)
        return {"files": s["totals"]["moved"], "bytes": s["totals"]["bytes_moved"],
                "seconds": took}
    finally:
        o.close()


def gluster_status(g):
    """(completed, rebalanced files, bytes, failures) from `rebalance status`."""
    out = g.cli("volume", "rebalance", "gvbench", "status").stdout
    units = {"Bytes": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
    for line in out.splitlines():
        m = re.match(r"\s*\S+\s+(\d+)\s+([\d.]+)(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(.+?)\s+\S+\s*$",
                     line)
        if m:
            files, size, unit, _scanned, failures = (int(m.group(1)), float(m.group(2)),
                                                     m.group(3), m.group(4), int(m.group(5)))
            state = m.group(7)
            if "failed" in state:
                raise RuntimeError(f"GlusterFS's rebalance failed: {out}")
            return "completed" in state, files, int(size * units.get(unit, 1)), failures
    return False, 0, 0, 0


def rebalance_gluster(base, fill_fn):
    g = common.Gluster(base, replica=2)
    try:
        sums = fill_fn(g.mnt)
        os.sync()
        new = []
        for i in (5, 6):
            b = os.path.join(base, f"gb{i}")
            os.makedirs(b)
            new.append(f"{g.host}:{b}")
        g.cli("volume", "add-brick", "gvbench", *new, "force")
        t0 = time.monotonic()
        g.cli("volume", "rebalance", "gvbench", "start")
        while True:
            done, files, size, failures = gluster_status(g)
            if done:
                break
            time.sleep(0.2)
        took = time.monotonic() - t0
        if failures:
            raise RuntimeError(f"GlusterFS's rebalance: {failures} failures")
        verify(g.mnt, sums)
        return {"files": files, "bytes": size, "seconds": took}
    finally:
        g.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--large", type=int, default=8)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    runs = {
        "small": lambda root: fill(root, a.files, 64 << 10),
        "large": lambda root: fill_large(root, a.large, a.size_mib),
    }
    results = {}
    for name, fill_fn in runs.items():
        for system, fn in (("ours", rebalance_ours), ("GlusterFS", rebalance_gluster)):
            base = tempfile.mkdtemp(prefix=f"bench-rebal-{name}-{system}-")
            log(f"{name}: {system} ...")
            try:
                results[(name, system)] = fn(base, fill_fn)
            finally:
                if not a.keep:
                    shutil.rmtree(base, ignore_errors=True)
            log(f"{name}: {system}: {results[(name, system)]}")
    print(f"{'rebalance 2x2 -> 3x2':<24}{'ours':>22}{'GlusterFS':>22}{'ratio':>8}{'target':>8}")
    out = {}
    for name in runs:
        o, g = results[(name, "ours")], results[(name, "GlusterFS")]
        for what, key, scale in (("files/s", "files", 1), ("MB/s", "bytes", 1e6)):
            ro = o[key] / scale / o["seconds"]
            rg = g[key] / scale / g["seconds"]
            ratio = ro / rg if rg else float("inf")
            print(f"{name + ' ' + what:<24}{ro:>16.1f} ({o['seconds']:.0f} s){rg:>14.1f} "
                  f"({g['seconds']:.0f} s){ratio:>8.2f}{TARGETS[name]:>8.1f}")
            out[f"{name} {what}"] = {"ours": ro, "GlusterFS": rg, "ratio": ratio}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
