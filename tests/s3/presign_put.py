"""Prints a presigned (SigV4) PUT URL for BUCKET KEY: aws-cli presigns GET only."""

import os
import sys

import boto3
from botocore.config import Config

s3 = boto3.client("s3", endpoint_url=os.environ["S3_URL"], region_name="us-east-1",
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
print(s3.generate_presigned_url("put_object", Params={"Bucket": sys.argv[1], "Key": sys.argv[2]}, ExpiresIn=300))
