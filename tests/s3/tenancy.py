"""Two tenants on one S3 endpoint: what each sees and touches of the other's, before and after
grants by policy, ACL and key grant. Run by tests/tests/s3_tenancy.rs against a real gatewayd.

Environment: S3_URL; ALICE_KEY/ALICE_SECRET/ALICE_ID, BOB_KEY/BOB_SECRET/BOB_ID (two plain keys),
ADMIN_KEY/ADMIN_SECRET (an admin key), GRANT_CMD (a shell command that gives bob --read on
alice's bucket with gwctl), MNT (the volume's FUSE mount).
Exits non-zero at the first failed check, naming it.
"""

import json
import os
import subprocess
import sys
import urllib.request

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

URL = os.environ["S3_URL"]
MNT = os.environ["MNT"]
cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"total_max_attempts": 1})


def client(k, s):
    return boto3.client("s3", endpoint_url=URL, region_name="us-east-1", config=cfg,
                        aws_access_key_id=k, aws_secret_access_key=s)


alice = client(os.environ["ALICE_KEY"], os.environ["ALICE_SECRET"])
bob = client(os.environ["BOB_KEY"], os.environ["BOB_SECRET"])
admin = client(os.environ["ADMIN_KEY"], os.environ["ADMIN_SECRET"])
anon = boto3.client("s3", endpoint_url=URL, region_name="us-east-1",
                    config=Config(signature_version=UNSIGNED, s3={"addressing_style": "path"},
                                  retries={"total_max_attempts": 1}))
BOB_ID = os.environ["BOB_ID"]
ALICE_ID = os.environ["ALICE_ID"]


def check(cond, what):
    if not cond:
        print("FAILED:", what, flush=True)
        sys.exit(1)
    print("ok -", what, flush=True)


def code(f, *a, **kw):
    try:
        f(*a, **kw)
        return "OK"
    except ClientError as e:
        return e.response["Error"]["Code"]


def denied(f, what, *a, **kw):
    c = code(f, *a, **kw)
    # A HEAD answer has no body, so boto3 knows only its status.
    want = ("AccessDenied", "403") if f.__name__ in ("head_bucket", "head_object") else ("AccessDenied",)
    check(c in want, f"{what}: AccessDenied (got {c})")


def allowed(f, what, *a, **kw):
    c = code(f, *a, **kw)
    check(c == "OK", f"{what}: allowed (got {c})")


B = "alice-data"
alice.create_bucket(Bucket=B)
for k in ["private/a.txt", "public/b.txt", "inbox/c.txt"]:
    alice.put_object(Bucket=B, Key=k, Body=k.encode())
bob.create_bucket(Bucket="bob-data")

# Nothing of alice's is bob's, nor anyone's.
names = [b["Name"] for b in bob.list_buckets()["Buckets"]]
check(B not in names and "bob-data" in names, f"bob lists only his own buckets ({names})")
names = [b["Name"] for b in alice.list_buckets()["Buckets"]]
check("bob-data" not in names and B in names, f"alice lists only her own buckets ({names})")
names = [b["Name"] for b in admin.list_buckets()["Buckets"]]
check(B in names and "bob-data" in names, "the admin key lists every bucket")
check(alice.list_buckets()["Owner"]["ID"] == ALICE_ID, "ListBuckets names alice as owner")
denied(bob.head_bucket, "bob HEAD alice's bucket", Bucket=B)
denied(bob.list_objects_v2, "bob lists alice's bucket", Bucket=B)
denied(bob.get_object, "bob reads alice's object", Bucket=B, Key="private/a.txt")
denied(bob.head_object, "bob HEADs alice's object", Bucket=B, Key="private/a.txt")
denied(bob.put_object, "bob writes into alice's bucket", Bucket=B, Key="x", Body=b"x")
denied(bob.delete_object, "bob deletes alice's object", Bucket=B, Key="private/a.txt")
denied(bob.delete_bucket, "bob deletes alice's bucket", Bucket=B)
denied(bob.get_bucket_acl, "bob reads alice's bucket ACL", Bucket=B)
denied(bob.put_bucket_acl, "bob sets alice's bucket ACL", Bucket=B, ACL="public-read")
denied(bob.put_bucket_policy, "bob sets alice's bucket policy", Bucket=B, Policy="{}")
denied(bob.copy_object, "bob copies alice's object into his bucket", Bucket="bob-data", Key="stolen",
       CopySource={"Bucket": B, "Key": "private/a.txt"})
denied(anon.get_object, "an anonymous GET", Bucket=B, Key="public/b.txt")
denied(anon.list_objects_v2, "an anonymous listing", Bucket=B)
c = code(bob.create_bucket, Bucket=B)
check(c == "BucketAlreadyExists", f"bob creating alice's bucket: BucketAlreadyExists (got {c})")
check(code(alice.create_bucket, Bucket=B) == "OK", "alice creating her own bucket again: OK (us-east-1)")
check(alice.get_object(Bucket=B, Key="private/a.txt")["Body"].read() == b"private/a.txt",
      "alice's objects are intact")

# A policy: bob may read public/*, and nothing else.
policy = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{BOB_ID}:root"]},
    "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{B}/public/*"}]}
alice.put_bucket_policy(Bucket=B, Policy=json.dumps(policy))
check(json.loads(alice.get_bucket_policy(Bucket=B)["Policy"]) == policy, "the policy reads back as set")
allowed(bob.get_object, "bob reads public/ by the policy", Bucket=B, Key="public/b.txt")
denied(bob.get_object, "bob still cannot read private/", Bucket=B, Key="private/a.txt")
denied(bob.list_objects_v2, "bob still cannot list", Bucket=B)
denied(bob.put_object, "bob still cannot write", Bucket=B, Key="public/new", Body=b"x")
denied(anon.get_object, "anonymous still cannot read public/", Bucket=B, Key="public/b.txt")
check(alice.get_bucket_policy_status(Bucket=B)["PolicyStatus"]["IsPublic"] is False,
      "a policy for one key is not public")

# A public-read ACL on one object: anyone reads that one.
alice.put_object_acl(Bucket=B, Key="public/b.txt", ACL="public-read")
allowed(anon.get_object, "anonymous reads the public-read object", Bucket=B, Key="public/b.txt")
denied(anon.get_object, "anonymous cannot read another object", Bucket=B, Key="inbox/c.txt")
req = urllib.request.Request(f"{URL}/{B}/public/b.txt")
check(urllib.request.urlopen(req).read() == b"public/b.txt", "curl-style unsigned GET of it works")

# A bucket ACL granting bob WRITE: he puts, and still reads nothing he was not given.
acl = alice.get_bucket_acl(Bucket=B)
grants = acl["Grants"] + [{"Grantee": {"ID": BOB_ID, "Type": "CanonicalUser"}, "Permission": "WRITE"}]
alice.put_bucket_acl(Bucket=B, AccessControlPolicy={"Grants": grants, "Owner": acl["Owner"]})
allowed(bob.put_object, "bob writes with a WRITE grant", Bucket=B, Key="inbox/from-bob", Body=b"hi")
denied(bob.get_object, "WRITE does not let bob read alice's objects", Bucket=B, Key="inbox/c.txt")
allowed(bob.get_object, "bob reads what he wrote", Bucket=B, Key="inbox/from-bob")
got = bob.get_object_acl(Bucket=B, Key="inbox/from-bob")
check(got["Owner"]["ID"] == BOB_ID, "the object bob wrote is his")
# As in S3 (ObjectWriter ownership): its ACL is bob's to show, not the bucket owner's.
denied(alice.get_object_acl, "alice reads the ACL of bob's object", Bucket=B, Key="inbox/from-bob")
alice.put_bucket_acl(Bucket=B, AccessControlPolicy={"Grants": acl["Grants"], "Owner": acl["Owner"]})
denied(bob.put_object, "with the WRITE grant taken back bob writes no more", Bucket=B, Key="inbox/again", Body=b"x")

# A key grant from the operator (gwctl s3 key allow bob --bucket B --read): bob lists.
subprocess.run(os.environ["GRANT_CMD"], shell=True, check=True)
allowed(bob.list_objects_v2, "bob lists with a --read key grant", Bucket=B)
allowed(bob.get_object, "bob reads with a --read key grant", Bucket=B, Key="private/a.txt")
denied(bob.delete_object, "a --read grant does not delete", Bucket=B, Key="private/a.txt")
denied(bob.put_bucket_policy, "a --read grant does not change settings", Bucket=B, Policy=json.dumps(policy))

# A Deny beats every grant.
deny = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{B}/private/*"}]}
alice.put_bucket_policy(Bucket=B, Policy=json.dumps(deny))
denied(bob.get_object, "a policy Deny beats the key grant", Bucket=B, Key="private/a.txt")
allowed(bob.list_objects_v2, "what the Deny does not name still works", Bucket=B)
alice.delete_bucket_policy(Bucket=B)
allowed(bob.get_object, "without the policy the grant reads again", Bucket=B, Key="private/a.txt")

# The admin key reaches everything.
allowed(admin.get_object, "admin reads alice's object", Bucket=B, Key="private/a.txt")
allowed(admin.list_objects_v2, "admin lists bob's bucket", Bucket="bob-data")
print("ok - tenancy")
