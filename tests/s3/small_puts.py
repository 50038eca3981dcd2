"""Small objects through S3: `put` PUTs COUNT objects of 4 KiB, one of 1 MiB (the largest
stored in one create) and one of 1 MiB + 1 byte (the smallest that is streamed) into BUCKET;
`check` GETs and HEADs each back. The bodies come from a fixed seed, so `check` knows them.
`check` prints one JSON line: for each key, the md5 of the body, the ETags GET and HEAD
answered, and whether the bytes came back equal.

Usage: small_puts.py put|check BUCKET COUNT, with S3_URL, AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY in the environment (run by tests/tests/s3.rs against a real gatewayd).
"""

import hashlib
import json
import os
import random
import sys

import boto3
from botocore.config import Config

mode, bucket, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(20261201)
bodies = {f"small/{i:03d}": rng.randbytes(4096) for i in range(count)}
bodies["edge/whole"] = rng.randbytes(1 << 20)
bodies["edge/streamed"] = rng.randbytes((1 << 20) + 1)
s3 = boto3.client(
    "s3",
    endpoint_url=os.environ["S3_URL"],
    region_name="us-east-1",
    config=Config(retries={"max_attempts": 1}),
)
if mode == "put":
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    sys.exit(0)
out = {}
for key, body in bodies.items():
    got = s3.get_object(Bucket=bucket, Key=key)
    head = s3.head_object(Bucket=bucket, Key=key)
    out[key] = {
        "md5": hashlib.md5(body).hexdigest(),
        "get_etag": got["ETag"].strip('"'),
        "head_etag": head["ETag"].strip('"'),
        "same": got["Body"].read() == body,
    }
print(json.dumps(out))
