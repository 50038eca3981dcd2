"""S3 clients for the pool tests (tests/tests/cluster.rs): objects written through one gateway
node are read back through another.

  cluster.py mkbucket BUCKET
  cluster.py put BUCKET PREFIX COUNT MANIFEST   PUT COUNT objects PREFIX<i> (sizes 1 .. 1 MiB),
                                                 write {key: sha256} to MANIFEST
  cluster.py check BUCKET MANIFEST              GET every key of MANIFEST (a {key: sha256} or a
                                                 load result's "acked") and compare
  cluster.py load BUCKET PREFIX STOP_FILE RESULT
      writers (WORKERS, default 2) until STOP_FILE exists: each PUTs objects of random sizes
      under PREFIX w<n>/, GETs each back and re-reads an earlier one. A PUT that raised was not
      acknowledged: it is recorded with its start and end times (the test decides whether it
      fell in a window where failures are allowed); a failed or different read of an
      acknowledged object is always a failure. At the end every acknowledged object is read
      again. RESULT gets {"acked": {key: sha256}, "acked_at": {key: start}, "put_failures":
      [{key, start, end, error}], "read_failures": [...]}. Exits 1 on read failures.

Environment: S3_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY. Every call is made once: no
retries hide a failure.
"""

import hashlib
import json
import os
import random
import sys
import threading
import time

import boto3
from botocore.config import Config

URL = os.environ["S3_URL"]
# total_max_attempts, not max_attempts: botocore's legacy retry mode counts max_attempts as
# retries, so {"max_attempts": 1} is two attempts.
cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"},
             retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=60)
s3 = boto3.client("s3", endpoint_url=URL, region_name="us-east-1", config=cfg)

# No empty object: a PUT right after an empty PUT on the same keep-alive connection stalls
# until the client's read timeout (a fault of the S3 frontend, not of the pool).
SIZES = [1, 100, 4096, 65536, 300_000, (1 << 20) + 7, 17]


def sha(b):
    return hashlib.sha256(b).hexdigest()


def mkbucket(bucket):
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass


def put(bucket, prefix, count, manifest):
    out = {}
    for i in range(count):
        key = f"{prefix}{i:03d}"
        rng = random.Random(f"{bucket}/{key}")
        body = rng.randbytes(SIZES[i % len(SIZES)])
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        out[key] = sha(body)
    with open(manifest, "w") as f:
        json.dump(out, f)
    print(f"put {len(out)} objects into {bucket} through {URL}")


def check(bucket, manifest):
    with open(manifest) as f:
        m = json.load(f)
    m = m.get("acked", m)
    bad = []
    for key, digest in sorted(m.items()):
        try:
            got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            if sha(got) != digest:
                bad.append(f"{key}: different ({len(got)} bytes)")
        except Exception as e:  # noqa: BLE001 - every failure is reported
            bad.append(f"{key}: {e!r}")
    print(f"checked {len(m)} objects of {bucket} through {URL}: {len(bad)} bad")
    for b in bad[:30]:
        print("  " + b)
    return 1 if bad else 0


def load(bucket, prefix, stop, result):
    workers = int(os.environ.get("WORKERS", "2"))
    lock = threading.Lock()
    acked, acked_at, put_failures, read_failures = {}, {}, [], []
    done = [0] * workers

    def go_on():
        # The stop file's directory is the test's: gone, the test is over whatever happened.
        return not os.path.exists(stop) and os.path.isdir(os.path.dirname(stop))

    def worker(w):
        rng = random.Random(f"{bucket}/{prefix}/{w}")
        mine = []
        n = 0
        while go_on():
            key = f"{prefix}w{w}/o{n}"
            body = rng.randbytes(rng.choice([100, 4096, 65536, 300_000]))
            start = time.time()
            to_read = []
            try:
                s3.put_object(Bucket=bucket, Key=key, Body=body)
                with lock:
                    acked[key] = sha(body)
                    acked_at[key] = start
                to_read.append(key)
                mine.append(key)
            except Exception as e:  # noqa: BLE001
                with lock:
                    put_failures.append({"key": key, "start": start, "end": time.time(),
                                         "error": repr(e)})
            if mine:
                to_read.append(rng.choice(mine))
            for k in to_read:
                try:
                    got = s3.get_object(Bucket=bucket, Key=k)["Body"].read()
                    if sha(got) != acked[k]:
                        with lock:
                            read_failures.append(f"{k} at {time.time():.1f}: read back different")
                except Exception as e:  # noqa: BLE001
                    with lock:
                        read_failures.append(f"{k} at {time.time():.1f}: {e!r}")
            n += 1
            done[w] = n
            time.sleep(0.01)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Everything acknowledged is still there at the end.
    for key, digest in sorted(acked.items()):
        try:
            got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            if sha(got) != digest:
                read_failures.append(f"{key}: different at the end")
        except Exception as e:  # noqa: BLE001
            read_failures.append(f"{key} at the end: {e!r}")
    with open(result, "w") as f:
        json.dump({"acked": acked, "acked_at": acked_at, "put_failures": put_failures,
                   "read_failures": read_failures}, f)
    print(f"s3 load on {bucket} through {URL}: {sum(done)} PUTs, {len(acked)} acknowledged, "
          f"{len(put_failures)} failed PUTs, {len(read_failures)} failed reads")
    for p in put_failures[:10]:
        print(f"  PUT {p['key']} {p['start']:.1f}..{p['end']:.1f}: {p['error']}")
    for r in read_failures[:20]:
        print("  READ " + r)
    return 1 if read_failures else 0


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "mkbucket" and len(argv) == 3:
        mkbucket(argv[2])
        return 0
    if cmd == "put" and len(argv) == 6:
        mkbucket(argv[2])
        put(argv[2], argv[3], int(argv[4]), argv[5])
        return 0
    if cmd == "check" and len(argv) == 4:
        return check(argv[2], argv[3])
    if cmd == "load" and len(argv) == 6:
        mkbucket(argv[2])
        return load(argv[2], argv[3], argv[4], argv[5])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
