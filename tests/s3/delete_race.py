"""Removes shared parent directories from three protocols at once, ROUNDS times.

Each round makes a small tree under r<N>/ in bucket BUCKET (S3 PUTs: keys under r<N>/a/ and
r<N>/b/, and r<N>/top), then at the same moment:
  - S3 DeleteObjects of every key (each delete prunes the directories it leaves empty),
  - `rm -rf`-style removal of r<N>/b and then r<N> through the FUSE mount at MNT,
  - NFS RMDIR of r<N>/a and r<N> (nfs-rs, on the export of the volume).
Every one of them races the others on the same parents; refusals (ENOTEMPTY, ENOENT) are the
normal outcome of losing a race. What must never happen is a directory left on only some of the
volume's subvolumes (tests/tests/dir_race.rs checks the bricks after the rounds).

Environment: S3_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, BUCKET, MNT, NFS_PORT, ROUNDS,
PARALLEL (rounds in flight at once).
"""

import concurrent.futures
import errno
import os
import shutil
import sys
import threading

import boto3
import nfs_rs
from botocore.config import Config

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "nfs"))
import common  # noqa: E402

URL = os.environ["S3_URL"]
BUCKET = os.environ["BUCKET"]
MNT = os.environ["MNT"]
ROUNDS = int(os.environ.get("ROUNDS", "1000"))
PARALLEL = int(os.environ.get("PARALLEL", "8"))

cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"},
             retries={"max_attempts": 3}, max_pool_connections=4 * PARALLEL)
s3 = boto3.client("s3", endpoint_url=URL, region_name="us-east-1", config=cfg)
local = threading.local()


def nfs():
    if not hasattr(local, "c"):
        local.c = common.connect()
    return local.c


def keys(n):
    return [f"r{n}/a/x", f"r{n}/a/y", f"r{n}/a/deep/z", f"r{n}/b/w", f"r{n}/b/v", f"r{n}/top"]


def s3_delete(n):
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys(n)], "Quiet": True})


def fuse_rm(n):
    for d in (f"r{n}/b", f"r{n}"):
        try:
            shutil.rmtree(os.path.join(MNT, BUCKET, d))
        except FileNotFoundError:
            pass
        except OSError as e:
            # Losing a race to the other removers.
            if e.errno not in (errno.ENOTEMPTY, errno.ENOENT):
                raise


def nfs_rmdir(n):
    c = nfs()
    for d in (f"/{BUCKET}/r{n}/a/deep", f"/{BUCKET}/r{n}/a", f"/{BUCKET}/r{n}"):
        try:
            c.rmdir(d)
        except nfs_rs.NfsNotFoundError:
            pass
        except nfs_rs.NfsStateLostError:
            # NFS3ERR_STALE: another remover took a parent between the client's LOOKUP of
            # it and this RMDIR in it (a local file system's knfsd answers the same).
            pass
        except nfs_rs.NfsOSError as e:
            # NFS3ERR_NOTEMPTY: another remover has not emptied it yet.
            if getattr(e, "errno", None) not in (errno.ENOTEMPTY, errno.ENOENT):
                raise


def one_round(n):
    for k in keys(n):
        s3.put_object(Bucket=BUCKET, Key=k, Body=b"x")
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        for f in [ex.submit(s3_delete, n), ex.submit(fuse_rm, n), ex.submit(nfs_rmdir, n)]:
            f.result()
    # Whatever survived the race goes now, so the bucket can be deleted at the end.
    shutil.rmtree(os.path.join(MNT, BUCKET, f"r{n}"), ignore_errors=True)


def main():
    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as ex:
        done = 0
        for f in concurrent.futures.as_completed([ex.submit(one_round, n) for n in range(ROUNDS)]):
            f.result()
            done += 1
            if done % 100 == 0:
                print(f"{done} rounds", flush=True)
    print(f"ok - {ROUNDS} rounds of DeleteObjects, FUSE rm -rf and NFS RMDIR on shared parents")


if __name__ == "__main__":
    main()
