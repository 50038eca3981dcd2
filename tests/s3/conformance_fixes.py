"""S3 behaviours ceph's s3-tests found wrong, each pinned with boto3 against a real gatewayd.

Run by tests/tests/s3_conformance_fixes.rs: S3_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
name the endpoint and a key made with gwctl; MNT is the volume's FUSE mount, so what S3 does is
checked against the files it claims to be. The argument names the group of checks to run; the
script exits non-zero on the first failed check, naming it, and prints "all <group> checks
passed" at the end.
"""

import base64
import hashlib
import os
import sys
import time
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

URL = os.environ["S3_URL"]
MNT = os.environ["MNT"]

cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"total_max_attempts": 1})
s3 = boto3.client("s3", endpoint_url=URL, region_name="us-east-1", config=cfg)
EMPTY_MD5 = hashlib.md5(b"").hexdigest()


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok -", what, flush=True)


def error(fn, *a, **kw):
    """The error of a call that must fail: (code, HTTP status, response)."""
    try:
        fn(*a, **kw)
    except ClientError as e:
        r = e.response
        return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r
    raise AssertionError(f"{fn.__name__}{a}{kw} succeeded but should have failed")


def bucket():
    b = "fix-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=b)
    return b


def keys(b, **kw):
    r = s3.list_objects_v2(Bucket=b, **kw)
    return [o["Key"] for o in r.get("Contents", [])], [p["Prefix"] for p in r.get("CommonPrefixes", [])]


def body(b, k, **kw):
    return s3.get_object(Bucket=b, Key=k, **kw)["Body"].read()


def fuse(*p):
    return os.path.join(MNT, *p)


def gone(path):
    """Whether a name S3 removed leaves the mount (the kernel may keep it for the entry timeout)."""
    for _ in range(50):
        if not os.path.exists(path):
            return True
        time.sleep(0.1)
    return False


# ---- folders: `dir/` objects as s3fs, the AWS console and Cyberduck make them ----

def folders():
    b = bucket()
    # s3fs makes a directory as an empty `dir/` object carrying its mode and times.
    s3.put_object(Bucket=b, Key="photos/", Body=b"", Metadata={"mode": "16877", "mtime": "1700000000"})
    check(os.path.isdir(fuse(b, "photos")), "PUT dir/ makes the directory")
    h = s3.head_object(Bucket=b, Key="photos/")
    check(h["ContentLength"] == 0 and h["ETag"].strip('"') == EMPTY_MD5, "HEAD dir/: an empty object")
    check(h["Metadata"] == {"mode": "16877", "mtime": "1700000000"}, "HEAD dir/: the metadata it was PUT with")
    check(body(b, "photos/") == b"", "GET dir/: an empty body")
    check(keys(b) == (["photos/"], []), "an empty folder lists as its key")
    check(keys(b, Delimiter="/") == ([], ["photos/"]), "…and as a common prefix with /")
    check(keys(b, Prefix="photos/", Delimiter="/") == (["photos/"], []), "…and as itself under its own prefix")
    s3.put_object(Bucket=b, Key="photos/cat.jpg", Body=b"meow")
    check(keys(b) == (["photos/", "photos/cat.jpg"], []), "a folder key sorts before the keys in it")
    s3.delete_object(Bucket=b, Key="photos/cat.jpg")
    check(s3.head_object(Bucket=b, Key="photos/")["ContentLength"] == 0, "deleting the last key in a PUT folder keeps the folder")
    check(os.path.isdir(fuse(b, "photos")), "…and its directory")
    s3.delete_object(Bucket=b, Key="photos/")
    check(error(s3.head_object, Bucket=b, Key="photos/")[1] == 404, "DELETE dir/: gone")
    check(gone(fuse(b, "photos")), "…and its empty directory too")
    # A directory made some other way (a deeper key, or mkdir through FUSE).
    s3.put_object(Bucket=b, Key="implicit/x", Body=b"x")
    check(s3.head_object(Bucket=b, Key="implicit/")["ContentLength"] == 0, "HEAD of a directory made by a deeper key: an empty object")
    os.mkdir(fuse(b, "madebyfuse"))
    check(s3.head_object(Bucket=b, Key="madebyfuse/")["ContentLength"] == 0, "HEAD of a directory made through FUSE: an empty object")
    check(keys(b) == (["implicit/x"], []), "directories nobody PUT are not listed as keys")
    s3.delete_object(Bucket=b, Key="implicit/x")
    check(gone(fuse(b, "implicit")), "an implicit directory goes with its last key")
    # A folder key with data (S3 allows it; s3-tests writes one).
    s3.put_object(Bucket=b, Key="asdf/", Body=b"asdf/")
    check(body(b, "asdf/") == b"asdf/", "a folder key can hold data")
    check(keys(b, Prefix="asdf/", Delimiter="/") == (["asdf/"], []), "…and lists as itself")
    s3.delete_object(Bucket=b, Key="asdf/")
    check(error(s3.head_object, Bucket=b, Key="asdf/")[1] == 404 and gone(fuse(b, "asdf")), "…and goes with DELETE")


# ---- a key that is also a prefix: foo/bar next to foo/bar/xyzzy ----

def prefix_keys():
    b = bucket()
    # The object first, then a key below it.
    s3.put_object(Bucket=b, Key="foo/bar", Body=b"bar")
    s3.put_object(Bucket=b, Key="foo/bar/xyzzy", Body=b"xyzzy")
    check(body(b, "foo/bar") == b"bar" and body(b, "foo/bar/xyzzy") == b"xyzzy", "foo/bar and foo/bar/xyzzy both readable")
    check(os.path.isdir(fuse(b, "foo/bar")), "FUSE: foo/bar became a directory")
    with open(fuse(b, "foo/bar/.s3-object"), "rb") as f:
        check(f.read() == b"bar", "FUSE: the object foo/bar is foo/bar/.s3-object")
    s3.put_object(Bucket=b, Key="foo/bar.txt", Body=b"t")
    s3.put_object(Bucket=b, Key="foo/bar-x", Body=b"x")
    check(keys(b) == (["foo/bar", "foo/bar-x", "foo/bar.txt", "foo/bar/xyzzy"], []), "the listing has both, in key order")
    check(keys(b, Prefix="foo/", Delimiter="/") == (["foo/bar", "foo/bar-x", "foo/bar.txt"], ["foo/bar/"]), "…and with a delimiter")
    h = s3.head_object(Bucket=b, Key="foo/bar")
    check(h["ContentLength"] == 3 and h["ETag"].strip('"') == hashlib.md5(b"bar").hexdigest(), "HEAD foo/bar")
    s3.put_object(Bucket=b, Key="foo/bar", Body=b"bar2")
    check(body(b, "foo/bar") == b"bar2", "overwriting foo/bar")
    s3.delete_object(Bucket=b, Key="foo/bar")
    check(error(s3.head_object, Bucket=b, Key="foo/bar")[1] == 404, "DELETE foo/bar")
    check(body(b, "foo/bar/xyzzy") == b"xyzzy", "…leaves foo/bar/xyzzy")
    # The key below first, then the object.
    s3.put_object(Bucket=b, Key="a/b/c", Body=b"c")
    s3.put_object(Bucket=b, Key="a/b", Body=b"b")
    check(body(b, "a/b") == b"b" and body(b, "a/b/c") == b"c", "a/b/c then a/b: both readable")
    s3.delete_object(Bucket=b, Key="a/b/c")
    check(body(b, "a/b") == b"b", "DELETE a/b/c leaves a/b")
    check(keys(b, Prefix="a/") == (["a/b"], []), "…which lists alone")
    # CopyObject onto, and from, such a key.
    s3.copy_object(Bucket=b, Key="a/b/copy", CopySource={"Bucket": b, "Key": "a/b"})
    check(body(b, "a/b/copy") == b"b" and body(b, "a/b") == b"b", "copy of a/b into a/b/copy")
    check(error(s3.put_object, Bucket=b, Key="x/.s3-object", Body=b"no")[0] == "InvalidArgument", "a key naming the hidden file is refused")


# ---- conditional requests ----

def conditions():
    b = bucket()
    etag = s3.put_object(Bucket=b, Key="obj", Body=b"1", IfNoneMatch="*")["ETag"]
    check(error(s3.put_object, Bucket=b, Key="obj", Body=b"2", IfNoneMatch="*")[1] == 412, "PUT If-None-Match * on an existing key: 412")
    check(error(s3.put_object, Bucket=b, Key="obj", Body=b"2", IfNoneMatch=etag)[1] == 412, "PUT If-None-Match its ETag: 412")
    s3.put_object(Bucket=b, Key="obj", Body=b"2", IfNoneMatch='"badetag"')
    check(body(b, "obj") == b"2", "PUT If-None-Match another ETag: stored")
    etag = s3.head_object(Bucket=b, Key="obj")["ETag"]
    check(error(s3.put_object, Bucket=b, Key="obj", Body=b"3", IfMatch='"badetag"')[1] == 412, "PUT If-Match another ETag: 412")
    s3.put_object(Bucket=b, Key="obj", Body=b"3", IfMatch=etag)
    check(error(s3.put_object, Bucket=b, Key="none", Body=b"3", IfMatch="*")[:2] == ("NoSuchKey", 404), "PUT If-Match on a missing key: 404")
    # A 304 is headers only: ETag and Last-Modified, no XML body (botocore then takes the reason).
    etag = s3.head_object(Bucket=b, Key="obj")["ETag"]
    c, status, r = error(s3.get_object, Bucket=b, Key="obj", IfNoneMatch=etag)
    hdrs = r["ResponseMetadata"]["HTTPHeaders"]
    check(status == 304 and hdrs.get("etag") == etag and "last-modified" in hdrs, "GET 304: with ETag and Last-Modified")
    check(r["Error"]["Message"] == "Not Modified" and "content-type" not in hdrs, "GET 304: no body")
    c, status, r = error(s3.head_object, Bucket=b, Key="obj", IfNoneMatch=etag)
    check(status == 304 and r["ResponseMetadata"]["HTTPHeaders"].get("etag") == etag, "HEAD 304: with ETag")


# ---- parts of multipart objects ----

def upload(b, k, parts, **create):
    up = s3.create_multipart_upload(Bucket=b, Key=k, **create)
    done = []
    for n, data in enumerate(parts, 1):
        r = s3.upload_part(Bucket=b, Key=k, UploadId=up["UploadId"], PartNumber=n, Body=data)
        done.append({"ETag": r["ETag"], "PartNumber": n})
    return up, done


def parts():
    b = bucket()
    p1, p2 = b"a" * (5 << 20), b"bc"
    up, done = upload(b, "mp", [p1, p2])
    # Part ETags as s3-tests sends them: without quotes.
    unquoted = [{"ETag": d["ETag"].strip('"'), "PartNumber": d["PartNumber"]} for d in done]
    r1 = s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up["UploadId"], MultipartUpload={"Parts": unquoted})
    check(r1["ETag"].endswith('-2"'), "CompleteMultipartUpload takes unquoted part ETags")
    r2 = s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up["UploadId"], MultipartUpload={"Parts": unquoted})
    check(r2["ETag"] == r1["ETag"], "a repeated CompleteMultipartUpload answers the same")
    g = s3.get_object(Bucket=b, Key="mp", PartNumber=1)
    check(g["Body"].read() == p1 and g["ContentLength"] == len(p1) and g["PartsCount"] == 2, "GET partNumber=1: that part, with the part count")
    check(g["ContentRange"] == f"bytes 0-{len(p1) - 1}/{len(p1) + 2}" and g["ETag"] == r1["ETag"], "…its Content-Range and the object's ETag")
    h = s3.head_object(Bucket=b, Key="mp", PartNumber=2)
    check(h["ContentLength"] == 2 and h["PartsCount"] == 2, "HEAD partNumber=2")
    check(error(s3.get_object, Bucket=b, Key="mp", PartNumber=3)[:2] == ("InvalidPart", 400), "partNumber past the count: InvalidPart")
    s3.put_object(Bucket=b, Key="single", Body=b"body")
    check(body(b, "single", PartNumber=1) == b"body", "a non-multipart object is its own part 1")
    check(error(s3.get_object, Bucket=b, Key="single", PartNumber=2)[:2] == ("InvalidPart", 400), "…and has no part 2")
    a = s3.get_object_attributes(Bucket=b, Key="mp", ObjectAttributes=["ObjectSize", "ObjectParts", "StorageClass", "ETag"])
    check(a["ObjectSize"] == len(p1) + 2 and a["StorageClass"] == "STANDARD", "GetObjectAttributes: size and storage class")
    op = a["ObjectParts"]
    check(op["TotalPartsCount"] == 2 and [(p["PartNumber"], p["Size"]) for p in op["Parts"]] == [(1, len(p1)), (2, 2)], "GetObjectAttributes: the parts and their sizes")
    a = s3.get_object_attributes(Bucket=b, Key="single", ObjectAttributes=["ObjectSize", "ObjectParts"])
    check(a["ObjectSize"] == 4 and "ObjectParts" not in a, "GetObjectAttributes of a non-multipart object: no parts")
    # A part uploaded twice: the last upload is the part; the list may name the number twice.
    up, done = upload(b, "again", [b"first"])
    r = s3.upload_part(Bucket=b, Key="again", UploadId=up["UploadId"], PartNumber=1, Body=b"second")
    listed = s3.list_parts(Bucket=b, Key="again", UploadId=up["UploadId"])["Parts"]
    check([p["ETag"] for p in listed] == [r["ETag"]], "ListParts shows the last upload of a part")
    twice = [done[0], {"ETag": r["ETag"], "PartNumber": 1}]
    s3.complete_multipart_upload(Bucket=b, Key="again", UploadId=up["UploadId"], MultipartUpload={"Parts": twice})
    check(body(b, "again") == b"second", "a part number listed twice: its last entry counts")


def checksums():
    b = bucket()
    p1, p2 = b"A" * (5 << 20), b"B" * 1024
    sha = lambda d: base64.b64encode(hashlib.sha256(d).digest()).decode()
    up = s3.create_multipart_upload(Bucket=b, Key="ck", ChecksumAlgorithm="SHA256")
    check(up["ChecksumAlgorithm"] == "SHA256", "CreateMultipartUpload echoes ChecksumAlgorithm")
    done = []
    for n, d in enumerate([p1, p2], 1):
        r = s3.upload_part(Bucket=b, Key="ck", UploadId=up["UploadId"], PartNumber=n, Body=d, ChecksumAlgorithm="SHA256")
        check(r["ChecksumSHA256"] == sha(d), f"UploadPart {n} returns its SHA256")
        done.append({"ETag": r["ETag"], "PartNumber": n, "ChecksumSHA256": r["ChecksumSHA256"]})
    composite = base64.b64encode(hashlib.sha256(hashlib.sha256(p1).digest() + hashlib.sha256(p2).digest()).digest()).decode() + "-2"
    c, status, _ = error(s3.complete_multipart_upload, Bucket=b, Key="ck", UploadId=up["UploadId"], MultipartUpload={"Parts": done}, ChecksumSHA256="bad")
    check((c, status) == ("BadDigest", 400), "Complete with a wrong object checksum: BadDigest")
    r = s3.complete_multipart_upload(Bucket=b, Key="ck", UploadId=up["UploadId"], MultipartUpload={"Parts": done})
    check(r["ChecksumSHA256"] == composite and r["ChecksumType"] == "COMPOSITE", "Complete returns the composite checksum")
    check("ChecksumSHA256" not in s3.head_object(Bucket=b, Key="ck"), "HEAD without ChecksumMode: no checksum")
    h = s3.head_object(Bucket=b, Key="ck", ChecksumMode="ENABLED")
    check(h["ChecksumSHA256"] == composite, "HEAD with ChecksumMode: the stored composite checksum")
    g = s3.get_object(Bucket=b, Key="ck", PartNumber=2, ChecksumMode="ENABLED")
    check(g["ChecksumSHA256"] == sha(p2), "GET partNumber with ChecksumMode: the part's checksum")
    a = s3.get_object_attributes(Bucket=b, Key="ck", ObjectAttributes=["Checksum", "ObjectParts"])
    check(a["Checksum"]["ChecksumSHA256"] == composite, "GetObjectAttributes: the checksum")
    check([p.get("ChecksumSHA256") for p in a["ObjectParts"]["Parts"]] == [sha(p1), sha(p2)], "GetObjectAttributes: the parts' checksums")
    s3.put_object(Bucket=b, Key="single", Body=b"x" * 1024, ChecksumAlgorithm="SHA256")
    h = s3.head_object(Bucket=b, Key="single", ChecksumMode="ENABLED")
    check(h["ChecksumSHA256"] == sha(b"x" * 1024), "a PUT's checksum is stored and returned")


# ---- tags ----

def tags():
    b = bucket()
    s3.put_object(Bucket=b, Key="t", Body=b"x")
    big = [{"Key": f"{i}" + "k" * 127, "Value": "v" * 256} for i in range(10)]
    s3.put_object_tagging(Bucket=b, Key="t", Tagging={"TagSet": big})
    got = s3.get_object_tagging(Bucket=b, Key="t")["TagSet"]
    check(sorted(got, key=lambda t: t["Key"]) == big, "ten tags of the largest size AWS allows")
    h = s3.head_object(Bucket=b, Key="t")
    check(h["ResponseMetadata"]["HTTPHeaders"].get("x-amz-tagging-count") == "10", "HEAD: x-amz-tagging-count")
    g = s3.get_object(Bucket=b, Key="t")
    check(g["TagCount"] == 10, "GET: x-amz-tagging-count")
    s3.copy_object(Bucket=b, Key="t2", CopySource={"Bucket": b, "Key": "t"})
    check(len(s3.get_object_tagging(Bucket=b, Key="t2")["TagSet"]) == 10, "a copy keeps large tags")
    s3.put_object_tagging(Bucket=b, Key="t", Tagging={"TagSet": [{"Key": "a", "Value": "1"}]})
    check(s3.get_object_tagging(Bucket=b, Key="t")["TagSet"] == [{"Key": "a", "Value": "1"}], "small tags replace large ones")
    s3.put_object(Bucket=b, Key="h", Body=b"x", Tagging="foo=bar&bar")
    check(s3.get_object_tagging(Bucket=b, Key="h")["TagSet"] == [{"Key": "bar", "Value": ""}, {"Key": "foo", "Value": "bar"}], "tags come back in key order")
    check(error(s3.get_bucket_tagging, Bucket=b)[:2] == ("NoSuchTagSet", 404), "a bucket without tags: NoSuchTagSet")
    s3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": [{"Key": "team", "Value": "gw"}]})
    check(s3.get_bucket_tagging(Bucket=b)["TagSet"] == [{"Key": "team", "Value": "gw"}], "bucket tags")
    s3.delete_bucket_tagging(Bucket=b)
    check(error(s3.get_bucket_tagging, Bucket=b)[0] == "NoSuchTagSet", "bucket tags deleted")


# ---- listings ----

def listings():
    b = bucket()
    for k in ["bar", "baz", "foo/x"]:
        s3.put_object(Bucket=b, Key=k, Body=b"1")
    r = s3.list_objects_v2(Bucket=b, Delimiter="")
    check("Delimiter" not in r and [o["Key"] for o in r["Contents"]] == ["bar", "baz", "foo/x"], "an empty Delimiter is no delimiter and not echoed")
    r = s3.list_objects(Bucket=b, Delimiter="")
    check("Delimiter" not in r, "…in ListObjects v1 too")
    r = s3.list_objects_v2(Bucket=b, FetchOwner=True)
    check(all("Owner" in o for o in r["Contents"]), "FetchOwner: each object's owner")
    check(all("Owner" not in o for o in s3.list_objects_v2(Bucket=b)["Contents"]), "no owner unless asked")
    r = s3.list_objects(Bucket=b, Prefix="\n")
    check(r["Prefix"] == "\n", "ListObjects v1 does not URL-encode the prefix")
    b2 = bucket()
    names = sorted(x["Name"] for x in s3.list_buckets()["Buckets"])
    first = s3.list_buckets(MaxBuckets=1)
    check([x["Name"] for x in first["Buckets"]] == names[:1] and "ContinuationToken" in first, "ListBuckets MaxBuckets=1: one bucket and a token")
    seen = [x["Name"] for x in first["Buckets"]]
    token = first["ContinuationToken"]
    while token:
        page = s3.list_buckets(MaxBuckets=1, ContinuationToken=token)
        seen += [x["Name"] for x in page["Buckets"]]
        token = page.get("ContinuationToken")
    check(seen == names and b2 in seen, "…and the tokens walk every bucket once")
    loc = "b-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=loc, CreateBucketConfiguration={"LocationConstraint": "default"})
    check(s3.get_bucket_location(Bucket=loc)["LocationConstraint"] == "default", "GetBucketLocation: the constraint the bucket was made with")
    check(s3.get_bucket_location(Bucket=b)["LocationConstraint"] is None, "…and none for one made without (us-east-1)")


# ---- what a PUT carries ----

def headers():
    b = bucket()
    # botocore sends `Expect: 100-continue` with an empty body too, gets no continue, and then
    # misreads the next answer on that connection (boto/botocore#3755): a stall until its read
    # timeout, which with one attempt and a short timeout is an error here.
    quick = boto3.client("s3", endpoint_url=URL, region_name="us-east-1",
                         config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                       retries={"total_max_attempts": 1}, read_timeout=10))
    for i, n in enumerate([0, 1, 0, 0, 100]):
        quick.put_object(Bucket=b, Key=f"seq{i}", Body=b"e" * n)
    check([len(body(b, f"seq{i}")) for i in range(5)] == [0, 1, 0, 0, 100],
          "empty and non-empty PUTs one after another on one connection all answer")
    s3.put_object(Bucket=b, Key="enc", Body=b"x", ContentEncoding="gzip, aws-chunked")
    check(s3.head_object(Bucket=b, Key="enc")["ContentEncoding"] == "gzip", "aws-chunked is not a stored Content-Encoding")
    s3.put_object(Bucket=b, Key="enc", Body=b"x", ContentEncoding="aws-chunked")
    check("ContentEncoding" not in s3.head_object(Bucket=b, Key="enc"), "…and aws-chunked alone leaves none")

    def unicode_meta(params, **_):
        params["headers"]["x-amz-meta-meta1"] = "Hello World\xe9"

    s3.meta.events.register("before-call.s3.PutObject", unicode_meta)
    try:
        s3.put_object(Bucket=b, Key="uni", Body=b"x")
    finally:
        s3.meta.events.unregister("before-call.s3.PutObject", unicode_meta)
    check(s3.get_object(Bucket=b, Key="uni")["Metadata"]["meta1"] == "Hello World\xe9", "non-ASCII metadata comes back as sent")
    s3.put_object(Bucket=b, Key="word", Body=b"x", Metadata={"m": "=?UTF-8?B?w6k=?="})
    check(s3.head_object(Bucket=b, Key="word")["Metadata"]["m"] == "=?UTF-8?B?w6k=?=", "an RFC 2047 value comes back as sent")
    check(error(s3.get_object, Bucket=b, Key="\xae\x8a-")[:2] == ("InvalidURI", 400), "a key with C1 control characters: InvalidURI")


# ---- what this gateway does not do: refused, never half done ----

def refused():
    b = bucket()
    c, status, _ = error(s3.put_object, Bucket=b, Key="sse", Body=b"secret", ServerSideEncryption="AES256")
    check((c, status) == ("NotImplemented", 501), "PUT asking for SSE-S3: 501")
    check(error(s3.head_object, Bucket=b, Key="sse")[1] == 404 and gone(fuse(b, "sse")), "…and nothing stored")
    key = b"k" * 32
    check(error(s3.put_object, Bucket=b, Key="ssec", Body=b"x", SSECustomerAlgorithm="AES256", SSECustomerKey=key)[1] == 501, "PUT with an SSE-C key: 501")
    s3.put_object(Bucket=b, Key="plain", Body=b"x")
    check(error(s3.get_object, Bucket=b, Key="plain", SSECustomerAlgorithm="AES256", SSECustomerKey=key)[1] == 501, "GET with an SSE-C key: 501")
    check(error(s3.copy_object, Bucket=b, Key="c", CopySource={"Bucket": b, "Key": "plain"}, ServerSideEncryption="aws:kms")[1] == 501, "CopyObject asking for SSE-KMS: 501")
    check(error(s3.create_multipart_upload, Bucket=b, Key="m", ServerSideEncryption="AES256")[1] == 501, "CreateMultipartUpload asking for SSE: 501")
    check(error(s3.put_object, Bucket=b, Key="held", Body=b"x", ObjectLockLegalHoldStatus="ON")[1] == 501, "PUT asking for an object lock: 501")
    check(error(s3.head_object, Bucket=b, Key="held")[1] == 404, "…and nothing stored")
    locked = "lock-" + uuid.uuid4().hex[:12]
    check(error(s3.create_bucket, Bucket=locked, ObjectLockEnabledForBucket=True)[1] == 501, "CreateBucket with object lock: 501")
    check(locked not in [x["Name"] for x in s3.list_buckets()["Buckets"]], "…and no bucket made")
    for name, call in [
        ("PutBucketVersioning", lambda: s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})),
        ("PutObjectLockConfiguration", lambda: s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})),
        ("PutBucketLifecycleConfiguration", lambda: s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [{"ID": "r", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}]})),
        ("PutBucketEncryption", lambda: s3.put_bucket_encryption(Bucket=b, ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})),
        ("PutBucketCors", lambda: s3.put_bucket_cors(Bucket=b, CORSConfiguration={"CORSRules": [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]})),
        ("PutBucketWebsite", lambda: s3.put_bucket_website(Bucket=b, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})),
        ("PutBucketLogging", lambda: s3.put_bucket_logging(Bucket=b, BucketLoggingStatus={})),
    ]:
        try:
            call()
            raise AssertionError(f"{name} succeeded")
        except ClientError as e:
            r = e.response
            check(r["Error"]["Code"] == "NotImplemented" and r["ResponseMetadata"]["HTTPStatusCode"] == 501 and r["Error"].get("Message"), f"{name}: 501 NotImplemented with a message")


GROUPS = {f.__name__: f for f in [folders, prefix_keys, conditions, parts, checksums, tags, listings, headers, refused]}

if __name__ == "__main__":
    group = sys.argv[1]
    GROUPS[group]()
    print(f"all {group} checks passed")
