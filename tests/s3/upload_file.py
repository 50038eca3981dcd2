"""boto3's managed transfer: `upload_file` with an 8 MiB multipart threshold and part size, then
`download_file` back. Prints one JSON line: HEAD's ETag and Content-Length, the multipart ETag
the parts make (md5 of the parts' md5s, `-N`), and the sha256 of the file and of the download.

Usage: upload_file.py BUCKET KEY FILE, with S3_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
in the environment (run by tests/tests/consistent_times.rs against a real gatewayd).
"""

import hashlib
import json
import os
import sys

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

MIB = 1 << 20
PART = 8 * MIB


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MIB):
            h.update(chunk)
    return h.hexdigest()


def multipart_etag(path, part):
    digests = []
    with open(path, "rb") as f:
        while chunk := f.read(part):
            digests.append(hashlib.md5(chunk).digest())
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def main():
    bucket, key, path = sys.argv[1:4]
    cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                 retries={"total_max_attempts": 1})
    s3 = boto3.client("s3", endpoint_url=os.environ["S3_URL"], region_name="us-east-1",
                      config=cfg)
    transfer = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART,
                              max_concurrency=4)
    s3.upload_file(path, bucket, key, Config=transfer)
    head = s3.head_object(Bucket=bucket, Key=key)
    down = path + ".down"
    s3.download_file(bucket, key, down, Config=transfer)
    try:
        result = {
            "etag": head["ETag"],
            "length": head["ContentLength"],
            "expected_etag": multipart_etag(path, PART),
            "sha256_up": sha256(path),
            "sha256_down": sha256(down),
        }
    finally:
        os.remove(down)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
