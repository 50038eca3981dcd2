"""Pages through BUCKET under PREFIX with ListObjectsV2 (1000 keys a page) and prints, as JSON,
how many keys came back, whether they were in order and unique, and whether every ETag is the
MD5 of the object's content (the objects hold their index: img-000042.jpg holds "42")."""

import hashlib
import json
import os
import re
import sys

import boto3
from botocore.config import Config

bucket, prefix = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=os.environ["S3_URL"], region_name="us-east-1",
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
keys, pages, token, etags_ok = [], 0, None, True
while True:
    kw = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": 1000}
    if token:
        kw["ContinuationToken"] = token
    r = s3.list_objects_v2(**kw)
    pages += 1
    for o in r.get("Contents", []):
        keys.append(o["Key"])
        m = re.search(r"img-(\d+)\.jpg$", o["Key"])
        want = hashlib.md5(str(int(m.group(1))).encode()).hexdigest() if m else None
        etags_ok = etags_ok and o["ETag"].strip('"') == want
    if not r["IsTruncated"]:
        break
    token = r["NextContinuationToken"]
print(json.dumps({"count": len(keys), "pages": pages, "sorted": keys == sorted(keys),
                  "unique": len(set(keys)) == len(keys), "etags_ok": etags_ok}))
