"""S3 writers and readers that run until STOP_FILE exists: each worker PUTs objects of random
sizes under its own prefix, GETs each back and compares, and re-reads earlier ones. Prints a
summary; exits 1 if any call failed or any object came back different.

Environment: S3_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, BUCKET, STOP_FILE, WORKERS.
"""

import hashlib
import os
import random
import sys
import threading
import time

import boto3
from botocore.config import Config

URL = os.environ["S3_URL"]
BUCKET = os.environ["BUCKET"]
STOP = os.environ["STOP_FILE"]
WORKERS = int(os.environ.get("WORKERS", "2"))

cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"},
             retries={"total_max_attempts": 1})
s3 = boto3.client("s3", endpoint_url=URL, region_name="us-east-1", config=cfg)
failures = []
done = [0] * WORKERS


def worker(w):
    rng = random.Random(w)
    written = {}
    n = 0
    # The stop file's directory is the test's: gone, the test is over whatever happened.
    while not os.path.exists(STOP) and os.path.isdir(os.path.dirname(STOP)):
        key = f"w{w}/o{n}"
        body = rng.randbytes(rng.choice([100, 4096, 65536, 300000]))
        try:
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
            written[key] = hashlib.sha256(body).hexdigest()
            got = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            if hashlib.sha256(got).hexdigest() != written[key]:
                failures.append(f"{key}: read back different")
            old = rng.choice(list(written))
            got = s3.get_object(Bucket=BUCKET, Key=old)["Body"].read()
            if hashlib.sha256(got).hexdigest() != written[old]:
                failures.append(f"{old}: re-read different")
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failures.append(f"{key} at {time.time():.1f}: {e!r}")
        n += 1
        done[w] = n
        time.sleep(0.01)
    # Everything written is still there at the end.
    for key, digest in written.items():
        try:
            got = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            if hashlib.sha256(got).hexdigest() != digest:
                failures.append(f"{key}: different at the end")
        except Exception as e:  # noqa: BLE001
            failures.append(f"{key} at the end: {e!r}")


threads = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"s3 load: {sum(done)} objects written and read, {len(failures)} failures")
for f in failures[:20]:
    print("  " + f)
sys.exit(1 if failures else 0)
