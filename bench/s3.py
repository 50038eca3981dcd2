#!/usr/bin/env python3
"""S3 throughput of the gateway, next to the same data written and read through its FUSE mount.

One `gatewayd up` (release build, 2 x 2 distributed-replicate volume); boto3 with a pool of client
threads drives S3, and the same number of Python threads drives the FUSE mount:

  small objects  N x 4 KiB: PUT, GET, LIST (ListObjectsV2, 1000 a page), DELETE
                 FUSE: create+write, read, listdir+stat, unlink of the same files
  large object   one SIZE MiB object: PUT (multipart, 8 MiB parts, 8 in flight), GET
                 FUSE: sequential write and read of a file of the same size (1 MiB writes)

Prints ops/s (MB/s for the large object) and S3 / FUSE. The client runs on the same 2 cores as
the gateway, so both columns include the client's cost; Python's per-request overhead makes
small-object S3 figures a floor, not a ceiling.

Usage (as root, from the repository, after `cargo build --release`):
  bench/s3.py [--objects 2000] [--size-mib 512] [--threads 16]
Not part of the test command.
"""

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as common  # noqa: E402  (the FUSE benchmark's gatewayd launcher)

import boto3  # noqa: E402
from boto3.s3.transfer import TransferConfig  # noqa: E402
from botocore.config import Config  # noqa: E402


def key_for(gw):
    import json
    import subprocess
    out = subprocess.run(
        [os.path.join(common.REPO, "target", "release", "gwctl"), "--data", gw.data,
         "s3", "key", "create", "bench", "--json"], check=True, capture_output=True, text=True).stdout
    k = json.loads(out)
    url = open(os.path.join(gw.data, "s3.url")).read().strip()
    return url, k["access_key"], k["secret_key"]


CPU = {}


def server_cpu(gw):
    """CPU seconds used so far by gatewayd and its brickd processes."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
            if gw.data not in cmd:
                continue
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / tick
        except OSError:
            continue
    return total


def rate(n, fn, gw=None, name=None):
    c0 = server_cpu(gw) if gw else 0
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    if gw:
        CPU[name] = (server_cpu(gw) - c0) / dt
    return n / dt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=2000)
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--threads", type=int, default=16)
    a = ap.parse_args()
    base = tempfile.mkdtemp(prefix="bench-s3-")
    gw = common.Ours(base)
    try:
        url, ak, sk = key_for(gw)
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=ak,
                          aws_secret_access_key=sk,
                          config=Config(signature_version="s3v4", max_pool_connections=a.threads * 2,
                                        s3={"addressing_style": "path"}))
        s3.create_bucket(Bucket="bench")
        body = os.urandom(4096)
        keys = [f"small/{i:06d}" for i in range(a.objects)]
        pool = ThreadPoolExecutor(a.threads)
        res = {}

        res["small PUT"] = rate(a.objects, gw=gw, name="small PUT", fn=lambda: list(pool.map(lambda k: s3.put_object(Bucket="bench", Key=k, Body=body), keys)))
        common.drop_caches()
        res["small GET"] = rate(a.objects, gw=gw, name="small GET", fn=lambda: list(pool.map(lambda k: s3.get_object(Bucket="bench", Key=k)["Body"].read(), keys)))

        def list_all():
            tok = None
            while True:
                kw = {"Bucket": "bench", "Prefix": "small/"}
                if tok:
                    kw["ContinuationToken"] = tok
                r = s3.list_objects_v2(**kw)
                if not r["IsTruncated"]:
                    return
                tok = r["NextContinuationToken"]
        common.drop_caches()
        res["small LIST"] = rate(a.objects, list_all, gw, "small LIST")
        res["small DELETE"] = rate(a.objects, gw=gw, name="small DELETE", fn=lambda: list(pool.map(lambda k: s3.delete_object(Bucket="bench", Key=k), keys)))

        d = os.path.join(gw.mnt, "bench", "fuse-small")
        os.makedirs(d)
        paths = [os.path.join(d, f"{i:06d}") for i in range(a.objects)]

        def fwrite(p):
            with open(p, "wb") as f:
                f.write(body)

        def fread(p):
            with open(p, "rb") as f:
                return f.read()
        res["fuse small write"] = rate(a.objects, lambda: list(pool.map(fwrite, paths)))
        common.drop_caches()
        res["fuse small read"] = rate(a.objects, lambda: list(pool.map(fread, paths)))
        common.drop_caches()
        res["fuse small list"] = rate(a.objects, lambda: [os.stat(os.path.join(d, n)) for n in os.listdir(d)])
        res["fuse small delete"] = rate(a.objects, lambda: list(pool.map(os.unlink, paths)))

        size = a.size_mib << 20
        src = os.path.join(base, "large.src")
        with open(src, "wb") as f:
            for _ in range(a.size_mib):
                f.write(os.urandom(1 << 20))
        tc = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20, max_concurrency=8)
        res["large PUT MB/s"] = rate(size / 1e6, gw=gw, name="large PUT MB/s", fn=lambda: s3.upload_file(src, "bench", "large.bin", Config=tc))
        common.drop_caches()
        dst = os.path.join(base, "large.dst")
        res["large GET MB/s"] = rate(size / 1e6, gw=gw, name="large GET MB/s", fn=lambda: s3.download_file("bench", "large.bin", dst, Config=tc))
        os.unlink(dst)

        fpath = os.path.join(gw.mnt, "bench", "fuse-large.bin")

        def fuse_large_write():
            with open(src, "rb") as i, open(fpath, "wb") as o:
                while True:
                    b = i.read(1 << 20)
                    if not b:
                        break
                    o.write(b)
                o.flush()
                os.fsync(o.fileno())
        res["fuse large write MB/s"] = rate(size / 1e6, fuse_large_write)
        common.drop_caches()

        def fuse_large_read():
            with open(fpath, "rb") as i:
                while i.read(1 << 20):
                    pass
        res["fuse large read MB/s"] = rate(size / 1e6, fuse_large_read)

        pairs = [("small PUT", "fuse small write"), ("small GET", "fuse small read"),
                 ("small LIST", "fuse small list"), ("small DELETE", "fuse small delete"),
                 ("large PUT MB/s", "fuse large write MB/s"), ("large GET MB/s", "fuse large read MB/s")]
        print(f"{a.objects} x 4 KiB objects, one {a.size_mib} MiB object, {a.threads} client threads")
        print("server CPU = cores busy in gatewayd + brickd during the S3 phase (of 2); the rest is the client")
        print(f"{'workload':<16} {'S3':>10} {'FUSE':>10} {'S3/FUSE':>8} {'server CPU':>11}")
        for s3k, fk in pairs:
            print(f"{s3k:<16} {res[s3k]:>10.0f} {res[fk]:>10.0f} {res[s3k] / res[fk]:>8.2f} {CPU.get(s3k, 0):>11.2f}")
    finally:
        gw.close()


if __name__ == "__main__":
    main()
