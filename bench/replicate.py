#!/usr/bin/env python3
"""Replicated volumes side by side: ours vs GlusterFS 10, same machine, same run.

Both systems get a 2 x 2 distributed-replicate volume (4 bricks, consecutive pairs form a
replica set: bricks 1+2 are set 0, 3+4 set 1) on the same file system. Ours is
`gatewayd up --replica 2 --ping-timeout 3`; GlusterFS's is
`gluster volume create gvbench replica 2 b1 b2 b3 b4 force`.

  I/O    the small-file and large-file phases of bench/run.py through each FUSE mount:
         N x 4 KiB create, stat, read, `ls -l`, delete; SIZE MiB sequential write (conv=fsync)
         and read, kernel caches dropped before every phase. Prints ops/s (MB/s) and ours/GlusterFS.
  heal   the 2nd brick (replica set 0) goes down, H x 4 KiB files are written through the mount
         in a few new directories, the brick comes back, and the time until heal info shows
         nothing pending (and every brick connected) is measured.
           ours:      SIGSTOP the brick's brickd, wait until `gwctl volume heal vol info` shows it
                      disconnected (ping timeout 3 s), write, SIGCONT; timed from SIGCONT.
           GlusterFS: kill -9 the brick's glusterfsd, wait until heal info shows it disconnected,
                      write, `gluster volume start gvbench force` followed at once by
                      `gluster volume heal gvbench` (so glustershd crawls now rather than at its
                      10-minute timer); timed from `start force`.
         Both then check that bricks 1 and 2 hold the same names (ignoring .glusterfs).
         `heal info` is polled back to back for GlusterFS (each call runs glfsheal, which costs
         CPU glustershd could use); --gluster-watch index watches the bricks' index directories
         instead and runs `heal info` only to confirm the end.

Usage (as root, from the repository):
  bench/replicate.py [--files 2000] [--size-mib 512] [--heal-files 10000] [--skip-io]
                     [--skip-heal] [--gluster-watch heal-info|index] [--no-build] [--keep]
                     [--json PATH]
Not part of the test command.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as common  # noqa: E402  (workloads, gatewayd and glusterd launchers)

PING_TIMEOUT = 3
HEAL_DIRS = 10
PHASES = ["create", "stat", "read", "ls -l", "delete", "seq write", "seq read"]
log = common.log


def pids_with(flag, value):
    """Processes whose argv holds FLAG followed by VALUE."""
    want = [flag.encode(), value.encode()]
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if any(argv[i:i + 2] == want for i in range(len(argv) - 1)):
            out.append(int(pid))
    return out


def write_heal_files(root, n):
    """N x 4 KiB files spread over HEAL_DIRS new directories; returns files/s."""
    top = os.path.join(root, "heal")
    data = os.urandom(4096)
    t = time.perf_counter()
    os.mkdir(top)
    dirs = [os.path.join(top, f"d{i:02d}") for i in range(HEAL_DIRS)]
    for d in dirs:
        os.mkdir(d)
    for i in range(n):
        fd = os.open(os.path.join(dirs[i % HEAL_DIRS], f"f{i:06d}"),
                     os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.close(fd)
    return n / (time.perf_counter() - t)


def tree(brick):
    """{relative path: size (None for directories)} of a brick, without .glusterfs."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(brick):
        if dirpath == brick:
            dirnames[:] = [d for d in dirnames if d != ".glusterfs"]
        rel = os.path.relpath(dirpath, brick)
        for d in dirnames:
            out[os.path.normpath(os.path.join(rel, d))] = None
        for f in filenames:
            p = os.path.join(dirpath, f)
            try:
                out[os.path.normpath(os.path.join(rel, f))] = os.lstat(p).st_size
            except OSError:
                pass
    return out


def compare_bricks(b1, b2, n):
    """Names (and sizes) on the two bricks of replica set 0, and how many heal files they hold."""
    t1, t2 = tree(b1), tree(b2)
    only1 = sorted(set(t1) - set(t2))
    only2 = sorted(set(t2) - set(t1))
    size_diff = sorted(p for p in set(t1) & set(t2) if t1[p] != t2[p])
    files = sum(1 for p, s in t1.items() if p.startswith("heal/") and s is not None)
    res = {"names_match": not only1 and not only2, "only_on_1": len(only1),
           "only_on_2": len(only2), "size_mismatch": len(size_diff), "heal_files_on_set0": files}
    if only1 or only2 or size_diff:
        log(f"  bricks differ: only on 1: {only1[:5]}{'...' if len(only1) > 5 else ''}; "
            f"only on 2: {only2[:5]}{'...' if len(only2) > 5 else ''}; "
            f"size differs: {size_diff[:5]}{'...' if len(size_diff) > 5 else ''}")
    log(f"  set 0 holds {files} of the {n} files; names match: {res['names_match']}, "
        f"sizes differ: {len(size_diff)}")
    return res


def count_through_mount(mnt):
    top = os.path.join(mnt, "heal")
    return sum(len(os.listdir(os.path.join(top, d))) for d in os.listdir(top))


# ------------------------------------------------------------------------------------------------
# Ours
# ------------------------------------------------------------------------------------------------

def ours_heal_info(o):
    p = subprocess.run([os.path.join(common.REPO, "target", "release", "gwctl"), "--data", o.data,
                        "volume", "heal", "vol", "info", "--json"],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"gwctl volume heal vol info: {p.stdout}{p.stderr}")
    return json.loads(p.stdout)


def ours_state(o, brick):
    """(pending, split_brain, connected of BRICK's path, all connected)."""
    v = ours_heal_info(o)
    bricks = [b for s in v["replica_sets"] for b in s["bricks"]]
    mine = [b["connected"] for b in bricks if b["brick"].endswith(":" + brick)]
    if not mine:
        raise RuntimeError(f"heal info does not list {brick}: {[b['brick'] for b in bricks]}")
    return v["pending"], v["split_brain"], mine[0], all(b["connected"] for b in bricks)


def heal_ours(o, n, timeout):
    bricks = [os.path.join(os.path.realpath(o.data), "bricks", f"b{i}") for i in range(1, 5)]
    b2 = bricks[1]
    res = {}
    wait_quiet("ours", lambda: ours_state(o, b2), timeout=120)
    pids = pids_with("--brick", b2)
    if len(pids) != 1:
        raise RuntimeError(f"brickd of {b2}: found pids {pids}")
    pid = pids[0]
    log(f"  SIGSTOP brickd {pid} ({b2})")
    t = time.perf_counter()
    os.kill(pid, signal.SIGSTOP)
    stopped = True
    try:
        common.wait_for("heal info to show the stopped brick disconnected", 60,
                        lambda: not ours_state(o, b2)[2])
        res["down_detected_s"] = time.perf_counter() - t
        log(f"  seen disconnected after {res['down_detected_s']:.1f}s; writing {n} files ...")
        res["write_files_per_s"] = write_heal_files(o.mnt, n)
        pending, split, _, _ = ours_state(o, b2)
        res["pending_before"] = pending
        log(f"  {res['write_files_per_s']:.0f} files/s; heal info pending {pending}; SIGCONT")
        t0 = time.perf_counter()
        os.kill(pid, signal.SIGCONT)
        stopped = False
        res.update(poll_heal("ours", lambda: ours_state(o, b2), t0, timeout))
    finally:
        if stopped:
            os.kill(pid, signal.SIGCONT)
    res["through_mount"] = count_through_mount(o.mnt)
    res.update(compare_bricks(bricks[0], b2, n))
    return res


# ------------------------------------------------------------------------------------------------
# GlusterFS
# ------------------------------------------------------------------------------------------------

def gluster_heal_info(g):
    """[(brick path, connected, entries or None)] from `gluster volume heal gvbench info`."""
    p = g.cli("volume", "heal", "gvbench", "info", check=False)
    out = []
    cur = None
    for line in p.stdout.splitlines():
        if line.startswith("Brick "):
            cur = [line[len("Brick "):].split(":", 1)[-1], False, None]
            out.append(cur)
        elif cur and line.startswith("Status:"):
            cur[1] = line.split(":", 1)[1].strip() == "Connected"
        elif cur and line.startswith("Number of entries:"):
            v = line.split(":", 1)[1].strip()
            cur[2] = int(v) if v.isdigit() else None
    if len(out) != 4:
        raise RuntimeError(f"gluster volume heal gvbench info: {p.stdout}{p.stderr}")
    return [tuple(b) for b in out]


def gluster_state(g, brick):
    info = gluster_heal_info(g)
    mine = [c for b, c, _ in info if b == brick]
    pending = sum(e or 0 for _, _, e in info)
    return pending, 0, bool(mine and mine[0]), all(c and e is not None for _, c, e in info)


def gluster_index_entries(g):
    """Entries of the bricks' heal indices (xattrop, dirty, entry-changes), read off the disk."""
    count = 0
    for b in g.bricks:
        for ix in ("xattrop", "dirty", "entry-changes"):
            d = os.path.join(b, ".glusterfs", "indices", ix)
            try:
                count += sum(1 for e in os.listdir(d) if not e.startswith(ix + "-"))
            except OSError:
                pass
    return count


def heal_gluster(g, n, timeout, watch):
    b2 = g.bricks[1]
    res = {}
    wait_quiet("GlusterFS", lambda: gluster_state(g, b2), timeout=120)
    pids = pids_with("--brick-name", b2)
    if len(pids) != 1:
        raise RuntimeError(f"glusterfsd of {b2}: found pids {pids}")
    log(f"  kill -9 glusterfsd {pids[0]} ({b2})")
    t = time.perf_counter()
    os.kill(pids[0], signal.SIGKILL)
    common.wait_for("heal info to show the killed brick disconnected", 60,
                    lambda: not gluster_state(g, b2)[2])
    res["down_detected_s"] = time.perf_counter() - t
    log(f"  seen disconnected after {res['down_detected_s']:.1f}s; writing {n} files ...")
    res["write_files_per_s"] = write_heal_files(g.mnt, n)
    res["pending_before"] = gluster_state(g, b2)[0]
    log(f"  {res['write_files_per_s']:.0f} files/s; heal info entries {res['pending_before']}; "
        "volume start force + volume heal")
    t0 = time.perf_counter()
    g.cli("volume", "start", "gvbench", "force")
    # Index heal now: glustershd would otherwise also start on the brick's return, or after
    # cluster.heal-timeout (600 s). It fails until the brick is connected to glustershd.
    deadline = time.time() + 60
    while True:
        p = g.cli("volume", "heal", "gvbench", check=False)
        if p.returncode == 0 or time.time() > deadline:
            res["heal_cmd"] = (p.stdout + p.stderr).strip()
            break
        time.sleep(0.2)
    res["heal_cmd_after_s"] = time.perf_counter() - t0
    log(f"  `volume heal gvbench` after {res['heal_cmd_after_s']:.1f}s: {res['heal_cmd']}")
    if watch == "index":
        # Every `heal info` runs glfsheal, which looks up each pending entry: on a small machine
        # back-to-back polls take CPU from glustershd. Watch the index directories instead and
        # ask heal info only once they are empty.
        def state():
            left = gluster_index_entries(g)
            return (left, 0, True, None) if left else gluster_state(g, b2)
    else:
        def state():
            return gluster_state(g, b2)
    res["watch"] = watch
    res.update(poll_heal("GlusterFS", state, t0, timeout))
    if watch == "index":
        res["reconnected_s"] = None  # heal info ran only at the end
    res["through_mount"] = count_through_mount(g.mnt)
    res.update(compare_bricks(g.bricks[0], b2, n))
    return res


# ------------------------------------------------------------------------------------------------
# Both
# ------------------------------------------------------------------------------------------------

def wait_quiet(name, state, timeout):
    """Before taking a brick down: nothing pending, every brick connected."""
    deadline = time.time() + timeout
    while True:
        pending, split, _, all_conn = state()
        if pending == 0 and all_conn:
            return
        if time.time() > deadline:
            log(f"  {name}: still {pending} pending (all connected: {all_conn}) before the "
                "test; going on")
            return
        time.sleep(0.5)


def poll_heal(name, state, t0, timeout):
    """Polls heal info from T0 until nothing is pending and every brick is connected."""
    polls = 0
    last_report = t0
    seen = None
    while True:
        ps = time.perf_counter()
        try:
            pending, split, _, all_conn = state()
        except Exception as e:  # noqa: BLE001 - a failed poll is reported, then retried
            log(f"  {name}: heal info failed: {e}")
            pending, split, all_conn = None, 0, False
        pe = time.perf_counter()
        polls += 1
        if all_conn and seen is None:
            seen = pe - t0
        if pending == 0 and all_conn:
            log(f"  {name}: healed in {pe - t0:.1f}s ({polls} heal info polls, the last took "
                f"{pe - ps:.2f}s)")
            return {"heal_s": pe - t0, "last_poll_s": pe - ps, "polls": polls,
                    "reconnected_s": seen, "healed": True, "split_brain": split}
        if pe - t0 > timeout:
            log(f"  {name}: NOT healed after {timeout}s: pending {pending}, split-brain {split}, "
                f"all connected {all_conn}")
            return {"heal_s": None, "polls": polls, "reconnected_s": seen, "healed": False,
                    "pending_left": pending, "split_brain": split}
        if pe - last_report > 10:
            log(f"  {name}: {pe - t0:.0f}s: pending {pending}, all connected {all_conn}")
            last_report = pe
        time.sleep(max(0.0, 0.25 - (pe - ps)))


def run_system(name, make, a, results, systems):
    log(f"{name}, 2 x 2 distributed-replicate ...")
    s = make()
    systems.append(s)
    r = results.setdefault(name, {})
    if not a.skip_io:
        r["io"] = common.workload(s.mnt, a.files, a.size_mib)
    if not a.skip_heal:
        log(f"{name}: heal of {a.heal_files} files ...")
        try:
            if name == "ours":
                r["heal"] = heal_ours(s, a.heal_files, a.heal_timeout)
            else:
                r["heal"] = heal_gluster(s, a.heal_files, a.heal_timeout, a.gluster_watch)
        except Exception as e:  # noqa: BLE001 - reported in the table, the other system still runs
            log(f"{name}: heal test failed: {e}")
            r["heal"] = {"error": str(e)}
    s.close()
    systems.remove(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--heal-files", type=int, default=10000)
    ap.add_argument("--heal-timeout", type=int, default=1800,
                    help="seconds to wait for a heal before calling it failed")
    ap.add_argument("--gluster-watch", choices=["heal-info", "index"], default="heal-info",
                    help="GlusterFS heal progress: `heal info` back to back (default), or its "
                    "bricks' index directories, with `heal info` only to confirm the end")
    ap.add_argument("--skip-io", action="store_true", help="only the heal test")
    ap.add_argument("--skip-heal", action="store_true", help="only the I/O phases")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/replicate.py needs root (FUSE mounts, glusterd, dropping caches)")
    if shutil.which("glusterd") is None:
        sys.exit("bench/replicate.py compares with GlusterFS 10: glusterd is not installed")
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "gateway", "-p", "brickd"],
                       cwd=common.REPO, check=True)
    base = tempfile.mkdtemp(prefix="bench-repl-", dir="/tmp")
    results = {}
    systems = []
    began = time.time()
    try:
        run_system("glusterfs", lambda: common.Gluster(base, replica=2), a, results, systems)
        run_system("ours", lambda: common.Ours(base, replica=2, ping_timeout=PING_TIMEOUT),
                   a, results, systems)
    finally:
        for s in systems:
            try:
                s.close()
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                log(f"cleanup: {e}")
        if a.keep:
            log(f"kept {base} (our log: {base}/gatewayd.log, bricks' logs under {base}/gw)")
        else:
            shutil.rmtree(base, ignore_errors=True)
    elapsed = time.time() - began

    def fmt(v, w=10, prec=0):
        return f"{v:{w}.{prec}f}" if v is not None else "-".rjust(w)

    gio = results.get("glusterfs", {}).get("io", {})
    oio = results.get("ours", {}).get("io", {})
    if gio or oio:
        print(f"\nI/O: {a.files} x 4 KiB files, {a.size_mib} MiB sequential, 2 x 2 "
              f"distributed-replicate on both; units ops/s (MB/s for seq)\n")
        hdr = f"{'phase':<10} {'glusterfs':>10} {'ours':>10} {'ours/gfs':>9} {'target':>7}  met"
        print(hdr)
        print("-" * len(hdr))
        for k in PHASES:
            gfs, ours = gio.get(k), oio.get(k)
            ratio = ours / gfs if ours and gfs else None
            t = common.TARGETS[k]
            met = "-" if ratio is None else ("yes" if ratio >= t else "no")
            print(f"{k:<10} {fmt(gfs)} {fmt(ours)} {fmt(ratio, 9, 2)} {t:>6.1f}x  {met}")
        print("(targets: DESIGN.md §12, as bench/run.py prints them for distribute)")

    gh = results.get("glusterfs", {}).get("heal")
    oh = results.get("ours", {}).get("heal")
    if gh or oh:
        gh, oh = gh or {}, oh or {}
        print(f"\nheal: the 2nd brick (replica set 0 of 2 x 2) misses {a.heal_files} x 4 KiB "
              f"files in {HEAL_DIRS} new directories\n")
        hdr = f"{'':<34} {'glusterfs':>10} {'ours':>10} {'ours/gfs':>9}"
        print(hdr)
        print("-" * len(hdr))

        def row(label, key, prec=1, ratio=True):
            g, o = gh.get(key), oh.get(key)
            r = o / g if ratio and isinstance(g, (int, float)) and isinstance(o, (int, float)) \
                and g else None
            def cell(v):
                if isinstance(v, bool) or isinstance(v, str):
                    return str(v).rjust(10)
                return fmt(v, 10, prec)
            print(f"{label:<34} {cell(g)} {cell(o)} {fmt(r, 9, 2) if ratio else ''}")

        row("brick down seen after (s)", "down_detected_s", ratio=False)
        row("writes while down (files/s)", "write_files_per_s", 0)
        row("heal info entries before (sum)", "pending_before", 0, ratio=False)
        row("back -> all connected (s)", "reconnected_s")
        row("back -> heal done (s)", "heal_s")
        row("heal progress polls", "polls", 0, ratio=False)
        row("files seen through the mount", "through_mount", 0, ratio=False)
        row("files on replica set 0", "heal_files_on_set0", 0, ratio=False)
        row("bricks 1 and 2: same names", "names_match", ratio=False)
        row("bricks 1 and 2: sizes differing", "size_mismatch", 0, ratio=False)
        for name, h in [("glusterfs", gh), ("ours", oh)]:
            if "error" in h:
                print(f"{name}: heal test failed: {h['error']}")
            elif h and not h.get("healed"):
                print(f"{name}: NOT healed within {a.heal_timeout}s: "
                      f"{h.get('pending_left')} pending, split-brain {h.get('split_brain')}")
        print("ours: brickd SIGSTOPped, ping-timeout 3 s; timed from SIGCONT.")
        print("GlusterFS: glusterfsd killed with -9; timed from `gluster volume start gvbench "
              "force`, with `gluster volume heal gvbench` issued right after it (glustershd "
              "crawls at once).")
        if a.gluster_watch == "index":
            how = ("GlusterFS: its bricks' index directories every 0.25 s, then `heal info` to "
                   "confirm")
        else:
            how = "GlusterFS: back to back, as each `heal info` returns"
        print("Heal done = first heal info poll showing 0 pending and every brick connected "
              f"(ours: every 0.25 s; {how}; the last `heal info` took "
              f"{fmt(gh.get('last_poll_s'), 0, 2).strip()} s).")
    print(f"\nrun took {elapsed:.0f}s (after the build)")
    if a.json:
        results["args"] = vars(a)
        results["elapsed_s"] = elapsed
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
