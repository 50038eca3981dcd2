"""Every S3 operation the gateway serves, and its error cases, driven by boto3.

Run by tests/tests/s3.rs against a real gatewayd: S3_URL, AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY name the endpoint and a key made with gwctl; MNT is the volume's FUSE mount,
so what S3 does is checked against the file system it claims to be. Exits non-zero on the first
failed check, naming it.
"""

import base64
import datetime
import hashlib
import os
import socket
import sys
import time

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import ClientError

URL = os.environ["S3_URL"]
MNT = os.environ["MNT"]
PORT = int(URL.rsplit(":", 1)[1])

# Virtual-host-style requests go to BUCKET.localhost; resolve those to loopback here rather
# than depending on the machine's resolver.
_real_getaddrinfo = socket.getaddrinfo


def _getaddrinfo(host, *a, **kw):
    if isinstance(host, str) and host.endswith(".localhost"):
        host = "127.0.0.1"
    return _real_getaddrinfo(host, *a, **kw)


socket.getaddrinfo = _getaddrinfo

cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1})
s3 = boto3.client("s3", endpoint_url=URL, region_name="us-east-1", config=cfg)


def code(fn, *a, **kw):
    """The S3 error code of a call that must fail (and its HTTP status)."""
    try:
        fn(*a, **kw)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError(f"{fn.__name__}{a}{kw} succeeded but should have failed")


def md5(b):
    return hashlib.md5(b).hexdigest()


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok -", what, flush=True)


def gone(path):
    """True once `path` is gone from the mount: the kernel may keep a name it looked up for the
    FUSE entry timeout (1 s) after another protocol removed it."""
    deadline = time.time() + 3
    while os.path.exists(path):
        if time.time() > deadline:
            return False
        time.sleep(0.1)
    return True


def buckets():
    b = "ops"
    s3.create_bucket(Bucket=b)
    check(os.path.isdir(os.path.join(MNT, b)), "a bucket is a top-level directory of the mount")
    # us-east-1 answers its owner's repeated CreateBucket 200 (other regions BucketAlreadyOwnedByYou).
    check(s3.create_bucket(Bucket=b)["ResponseMetadata"]["HTTPStatusCode"] == 200, "creating it again: 200, as in us-east-1")
    s3.head_bucket(Bucket=b)
    check(code(s3.head_bucket, Bucket="nosuch")[1] == 404, "head of a missing bucket: 404")
    os.mkdir(os.path.join(MNT, "madebyfuse"))
    names = [x["Name"] for x in s3.list_buckets()["Buckets"]]
    check(b in names and "madebyfuse" in names, "directories made through FUSE are buckets")
    check(".s3-staging" not in names, "the staging area is not a bucket")
    loc = s3.get_bucket_location(Bucket=b)
    check(loc.get("LocationConstraint") in (None, ""), "location of a us-east-1 bucket is empty")
    s3.put_object(Bucket="madebyfuse", Key="x", Body=b"1")
    check(code(s3.delete_bucket, Bucket="madebyfuse")[0] == "BucketNotEmpty", "deleting a non-empty bucket: BucketNotEmpty")
    s3.delete_object(Bucket="madebyfuse", Key="x")
    s3.delete_bucket(Bucket="madebyfuse")
    check(gone(os.path.join(MNT, "madebyfuse")), "delete bucket removes the directory")
    check(code(s3.delete_bucket, Bucket="madebyfuse")[0] == "NoSuchBucket", "deleting it again: NoSuchBucket")
    check(code(s3.get_object, Bucket="nosuch", Key="k")[0] == "NoSuchBucket", "get from a missing bucket: NoSuchBucket")
    versioning = s3.get_bucket_versioning(Bucket=b)
    check("Status" not in versioning, "buckets are unversioned")


def objects():
    b = "ops"
    body = b"hello, gateway\n" * 100
    r = s3.put_object(
        Bucket=b,
        Key="docs/readme.txt",
        Body=body,
        ContentType="text/plain",
        CacheControl="max-age=60",
        ContentDisposition="inline",
        ContentLanguage="en",
        Metadata={"Color": "blue", "owner": "ops"},
    )
    check(r["ETag"].strip('"') == md5(body), "PUT returns ETag = MD5")
    with open(os.path.join(MNT, b, "docs", "readme.txt"), "rb") as f:
        check(f.read() == body, "the object is a file at bucket/key on the mount")
    h = s3.head_object(Bucket=b, Key="docs/readme.txt")
    check(h["ContentLength"] == len(body), "HEAD: length")
    check(h["ContentType"] == "text/plain", "HEAD: content type")
    check(h["CacheControl"] == "max-age=60" and h["ContentDisposition"] == "inline", "HEAD: content headers")
    check(h["Metadata"] == {"color": "blue", "owner": "ops"}, "HEAD: user metadata")
    g = s3.get_object(Bucket=b, Key="docs/readme.txt")
    check(g["Body"].read() == body, "GET: body")
    check(g["ETag"] == h["ETag"], "GET and HEAD agree on the ETag")

    r = s3.get_object(Bucket=b, Key="docs/readme.txt", Range="bytes=2-5")
    check(r["Body"].read() == body[2:6] and r["ContentRange"] == f"bytes 2-5/{len(body)}", "GET: a byte range")
    check(s3.get_object(Bucket=b, Key="docs/readme.txt", Range="bytes=-3")["Body"].read() == body[-3:], "GET: a suffix range")
    check(code(s3.get_object, Bucket=b, Key="docs/readme.txt", Range=f"bytes={len(body)}-")[0] == "InvalidRange", "GET: range past the end: InvalidRange")

    etag = h["ETag"]
    check(code(s3.get_object, Bucket=b, Key="docs/readme.txt", IfMatch='"0000"')[1] == 412, "If-Match another ETag: 412")
    check(code(s3.get_object, Bucket=b, Key="docs/readme.txt", IfNoneMatch=etag)[1] == 304, "If-None-Match same ETag: 304")
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    check(code(s3.get_object, Bucket=b, Key="docs/readme.txt", IfModifiedSince=future)[1] == 304, "If-Modified-Since the future: 304")
    check(code(s3.get_object, Bucket=b, Key="docs/readme.txt", IfUnmodifiedSince=past)[1] == 412, "If-Unmodified-Since 2000: 412")
    check(s3.get_object(Bucket=b, Key="docs/readme.txt", IfMatch=etag)["Body"].read() == body, "If-Match the ETag: 200")

    bad_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    check(code(s3.put_object, Bucket=b, Key="baddigest", Body=b"data", ContentMD5=bad_md5)[0] == "BadDigest", "wrong Content-MD5: BadDigest")
    check(code(s3.head_object, Bucket=b, Key="baddigest")[1] == 404, "…and nothing was written")
    check(not os.path.exists(os.path.join(MNT, b, "baddigest")), "…not even on the mount")
    good_md5 = base64.b64encode(hashlib.md5(b"data").digest()).decode()
    s3.put_object(Bucket=b, Key="gooddigest", Body=b"data", ContentMD5=good_md5)

    check(code(s3.put_object, Bucket=b, Key="gooddigest", Body=b"x", IfNoneMatch="*")[1] == 412, "PUT If-None-Match * on an existing key: 412")
    s3.put_object(Bucket=b, Key="empty", Body=b"")
    check(s3.get_object(Bucket=b, Key="empty")["Body"].read() == b"", "an empty object")
    check(s3.head_object(Bucket=b, Key="empty")["ETag"].strip('"') == md5(b""), "…with the MD5 of nothing")

    check(code(s3.get_object, Bucket=b, Key="missing")[0] == "NoSuchKey", "GET of a missing key: NoSuchKey")
    check(code(s3.get_object, Bucket=b, Key="docs")[0] == "NoSuchKey", "GET of a directory: NoSuchKey")
    s3.delete_object(Bucket=b, Key="missing")
    print("ok - DELETE of a missing key succeeds", flush=True)
    s3.delete_object(Bucket=b, Key="gooddigest")
    check(gone(os.path.join(MNT, b, "gooddigest")), "DELETE removes the file")

    for k in ("del/1", "del/2", "del/3"):
        s3.put_object(Bucket=b, Key=k, Body=k.encode())
    r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "del/1"}, {"Key": "del/2"}, {"Key": "del/3"}, {"Key": "del/none"}]})
    check(sorted(d["Key"] for d in r["Deleted"]) == ["del/1", "del/2", "del/3", "del/none"], "DeleteObjects deletes every key")
    check(gone(os.path.join(MNT, b, "del")), "…and the directory they emptied")

    # Copies.
    s3.copy_object(Bucket=b, Key="copies/same-meta", CopySource={"Bucket": b, "Key": "docs/readme.txt"})
    h2 = s3.head_object(Bucket=b, Key="copies/same-meta")
    check(h2["Metadata"] == {"color": "blue", "owner": "ops"} and h2["ETag"] == etag, "CopyObject COPY keeps metadata and ETag")
    s3.copy_object(
        Bucket=b, Key="copies/new-meta", CopySource={"Bucket": b, "Key": "docs/readme.txt"},
        MetadataDirective="REPLACE", Metadata={"new": "yes"}, ContentType="application/x-test",
    )
    h3 = s3.head_object(Bucket=b, Key="copies/new-meta")
    check(h3["Metadata"] == {"new": "yes"} and h3["ContentType"] == "application/x-test", "CopyObject REPLACE sets new metadata")
    check(s3.get_object(Bucket=b, Key="copies/new-meta")["Body"].read() == body, "…and copies the data")
    check(code(s3.copy_object, Bucket=b, Key="docs/readme.txt", CopySource={"Bucket": b, "Key": "docs/readme.txt"})[0] == "InvalidRequest", "copy onto itself without changes: InvalidRequest")
    s3.copy_object(Bucket=b, Key="docs/readme.txt", CopySource={"Bucket": b, "Key": "docs/readme.txt"}, MetadataDirective="REPLACE", Metadata={"v": "2"})
    h4 = s3.head_object(Bucket=b, Key="docs/readme.txt")
    check(h4["Metadata"] == {"v": "2"} and h4["ETag"] == etag and "CacheControl" not in h4, "copy onto itself with REPLACE changes only metadata")
    check(code(s3.copy_object, Bucket=b, Key="c", CopySource={"Bucket": b, "Key": "missing"})[0] == "NoSuchKey", "copy of a missing source: NoSuchKey")

    # Tagging.
    s3.put_object(Bucket=b, Key="tagged", Body=b"t", Tagging="project=gw&tier=gold")
    t = s3.get_object_tagging(Bucket=b, Key="tagged")["TagSet"]
    check(sorted((x["Key"], x["Value"]) for x in t) == [("project", "gw"), ("tier", "gold")], "tags from the x-amz-tagging header")
    check(s3.get_object(Bucket=b, Key="tagged")["TagCount"] == 2, "GET reports the tag count")
    s3.put_object_tagging(Bucket=b, Key="tagged", Tagging={"TagSet": [{"Key": "a b", "Value": "c&d"}]})
    t = s3.get_object_tagging(Bucket=b, Key="tagged")["TagSet"]
    check(t == [{"Key": "a b", "Value": "c&d"}], "PutObjectTagging replaces the set (with awkward characters)")
    s3.delete_object_tagging(Bucket=b, Key="tagged")
    check(s3.get_object_tagging(Bucket=b, Key="tagged")["TagSet"] == [], "DeleteObjectTagging empties it")
    too_many = {"TagSet": [{"Key": f"k{i}", "Value": "v"} for i in range(11)]}
    check(code(s3.put_object_tagging, Bucket=b, Key="tagged", Tagging=too_many)[0] in ("InvalidTag", "BadRequest"), "more than 10 tags are refused")

    # Folder markers, as consoles make them.
    s3.put_object(Bucket=b, Key="folder/", Body=b"")
    check(os.path.isdir(os.path.join(MNT, b, "folder")), "a key ending in / makes a directory")


def keys_that_do_not_fit():
    b = "ops"
    for bad in ("../escape", "a/../../escape", "a//b", "./x"):
        c, status = code(s3.put_object, Bucket=b, Key=bad, Body=b"no")
        check(c == "InvalidArgument" and status == 400, f"key {bad!r}: InvalidArgument (got {c} {status})")
    check(not os.path.exists(os.path.join(MNT, "escape")), "nothing was written outside the bucket")
    # A key that is also another key's prefix is kept inside the directory, as `.s3-object`.
    s3.put_object(Bucket=b, Key="clash/inner", Body=b"1")
    s3.put_object(Bucket=b, Key="clash", Body=b"2")
    check(os.path.isdir(os.path.join(MNT, b, "clash")), "a key naming a directory: the directory stays")
    check(s3.get_object(Bucket=b, Key="clash")["Body"].read() == b"2", "…and the key reads back")
    check(s3.get_object(Bucket=b, Key="clash/inner")["Body"].read() == b"1", "…as does the key below it")
    s3.put_object(Bucket=b, Key="afile", Body=b"1")
    s3.put_object(Bucket=b, Key="afile/below", Body=b"2")
    check(s3.get_object(Bucket=b, Key="afile")["Body"].read() == b"1", "a key below an object: the object keeps its bytes")
    check(s3.get_object(Bucket=b, Key="afile/below")["Body"].read() == b"2", "…and the key below reads back")
    with open(os.path.join(MNT, b, "afile", ".s3-object"), "rb") as f:
        check(f.read() == b"1", "…from its directory's .s3-object")
    c, status = code(s3.put_object, Bucket=b, Key="x/.s3-object", Body=b"3")
    check(c == "InvalidArgument" and status == 400, f"a key naming the layout's own file: InvalidArgument (got {c} {status})")
    check(code(s3.put_object, Bucket=b, Key="k" * 1025, Body=b"1")[0] == "KeyTooLongError", "a 1025-byte key: KeyTooLongError")


def listings():
    b = "lists"
    s3.create_bucket(Bucket=b)
    keys = ["dir/a", "dir/b", "dir/sub/c", "dir/sub/d", "dir.txt", "e", "f g+h", "z/deep/deeper/x"]
    for k in keys:
        s3.put_object(Bucket=b, Key=k, Body=k.encode())
    r = s3.list_objects_v2(Bucket=b)
    check([o["Key"] for o in r["Contents"]] == sorted(keys), "ListObjectsV2: every key, in byte order")
    check(all(o["ETag"].strip('"') == md5(o["Key"].encode()) and o["Size"] == len(o["Key"]) for o in r["Contents"]), "…with ETag and size")
    r = s3.list_objects_v2(Bucket=b, Delimiter="/")
    check([o["Key"] for o in r["Contents"]] == ["dir.txt", "e", "f g+h"], "delimiter: objects at the top")
    check([p["Prefix"] for p in r["CommonPrefixes"]] == ["dir/", "z/"], "delimiter: common prefixes")
    r = s3.list_objects_v2(Bucket=b, Prefix="dir/", Delimiter="/")
    check([o["Key"] for o in r["Contents"]] == ["dir/a", "dir/b"] and [p["Prefix"] for p in r["CommonPrefixes"]] == ["dir/sub/"], "prefix dir/ with delimiter")
    r = s3.list_objects_v2(Bucket=b, Prefix="di")
    check([o["Key"] for o in r["Contents"]] == sorted(k for k in keys if k.startswith("di")), "a prefix that is not a directory")
    r = s3.list_objects_v2(Bucket=b, Prefix="dir/", Delimiter="b")
    check([o["Key"] for o in r["Contents"]] == ["dir/a"] and [p["Prefix"] for p in r["CommonPrefixes"]] == ["dir/b", "dir/sub"], "a delimiter other than /")
    r = s3.list_objects_v2(Bucket=b, StartAfter="dir/sub/c")
    check([o["Key"] for o in r["Contents"]] == sorted(k for k in keys if k > "dir/sub/c"), "start-after")
    seen, token, pages = [], None, 0
    while True:
        kw = {"Bucket": b, "MaxKeys": 3}
        if token:
            kw["ContinuationToken"] = token
        r = s3.list_objects_v2(**kw)
        pages += 1
        seen += [o["Key"] for o in r.get("Contents", [])]
        check(r["KeyCount"] <= 3, f"page {pages} holds at most max-keys")
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    check(seen == sorted(keys) and pages == 3, "continuation tokens page through everything once")
    seen, token = [], None
    while True:
        kw = {"Bucket": b, "MaxKeys": 1, "Delimiter": "/"}
        if token:
            kw["ContinuationToken"] = token
        r = s3.list_objects_v2(**kw)
        seen += [o["Key"] for o in r.get("Contents", [])] + [p["Prefix"] for p in r.get("CommonPrefixes", [])]
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    check(seen == ["dir.txt", "dir/", "e", "f g+h", "z/"], "paging with a delimiter returns each prefix once")
    r = s3.list_objects_v2(Bucket=b, MaxKeys=0)
    check(r["KeyCount"] == 0 and not r.get("Contents"), "max-keys 0")
    # v1
    r = s3.list_objects(Bucket=b, MaxKeys=4)
    check([o["Key"] for o in r["Contents"]] == sorted(keys)[:4] and r["IsTruncated"], "ListObjects v1 first page")
    r = s3.list_objects(Bucket=b, Marker=r["NextMarker"])
    check([o["Key"] for o in r["Contents"]] == sorted(keys)[4:], "ListObjects v1 from the marker")
    r = s3.list_objects_v2(Bucket=b, Prefix="f g", EncodingType="url")
    # Asked for explicitly, botocore leaves the wire form alone: S3's encoding, '/' kept.
    check([o["Key"] for o in r["Contents"]] == ["f%20g%2Bh"] and r["Prefix"] == "f%20g", "encoding-type=url encodes keys and prefix")
    r = s3.list_object_versions(Bucket=b, Prefix="dir/")
    check([v["Key"] for v in r["Versions"]] == ["dir/a", "dir/b", "dir/sub/c", "dir/sub/d"] and all(v["VersionId"] == "null" and v["IsLatest"] for v in r["Versions"]), "ListObjectVersions: one null version per object")
    check(code(s3.list_objects_v2, Bucket=b, ContinuationToken="zz-not-a-token")[0] == "InvalidArgument", "a forged continuation token: InvalidArgument")
    # Files made through FUSE are listed with their size and mtime.
    with open(os.path.join(MNT, b, "fromfuse.bin"), "wb") as f:
        f.write(b"x" * 1234)
    st = os.stat(os.path.join(MNT, b, "fromfuse.bin"))
    r = s3.list_objects_v2(Bucket=b, Prefix="fromfuse")
    o = r["Contents"][0]
    check(o["Size"] == 1234 and o["ETag"].strip('"') == md5(b"x" * 1234), "a FUSE file in a listing: size and ETag")
    check(abs(o["LastModified"].timestamp() - int(st.st_mtime)) < 1, "…and its mtime")


def multipart():
    b = "mpu"
    s3.create_bucket(Bucket=b)
    k = "big/object.bin"
    up = s3.create_multipart_upload(Bucket=b, Key=k, ContentType="application/x-big", Metadata={"m": "1"})
    uid = up["UploadId"]
    p1 = os.urandom(5 << 20)
    p2 = os.urandom(5 << 20)
    p3 = b"tail"
    e1 = s3.upload_part(Bucket=b, Key=k, UploadId=uid, PartNumber=1, Body=p1)["ETag"]
    e3 = s3.upload_part(Bucket=b, Key=k, UploadId=uid, PartNumber=3, Body=p3)["ETag"]
    e2 = s3.upload_part(Bucket=b, Key=k, UploadId=uid, PartNumber=2, Body=b"wrong")["ETag"]
    e2 = s3.upload_part(Bucket=b, Key=k, UploadId=uid, PartNumber=2, Body=p2)["ETag"]
    check(e1.strip('"') == md5(p1), "UploadPart returns the part's MD5")
    parts = s3.list_parts(Bucket=b, Key=k, UploadId=uid)["Parts"]
    check([(p["PartNumber"], p["Size"]) for p in parts] == [(1, 5 << 20), (2, 5 << 20), (3, 4)], "ListParts: the latest upload of each part")
    ups = s3.list_multipart_uploads(Bucket=b)["Uploads"]
    check([(u["Key"], u["UploadId"]) for u in ups] == [(k, uid)], "ListMultipartUploads")
    check(not s3.list_objects_v2(Bucket=b).get("Contents"), "staged parts are not objects")
    check(".s3-staging" not in os.listdir(MNT), "staged parts are not visible through FUSE")
    check(not os.path.exists(os.path.join(MNT, b, "big")), "…nor is the key before complete")
    full = [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}, {"PartNumber": 3, "ETag": e3}]
    check(code(s3.complete_multipart_upload, Bucket=b, Key=k, UploadId=uid, MultipartUpload={"Parts": [full[1], full[0], full[2]]})[0] == "InvalidPartOrder", "parts out of order: InvalidPartOrder")
    check(code(s3.complete_multipart_upload, Bucket=b, Key=k, UploadId=uid, MultipartUpload={"Parts": [full[0], {"PartNumber": 2, "ETag": '"00"'}]})[0] == "InvalidPart", "a wrong part ETag: InvalidPart")
    check(code(s3.complete_multipart_upload, Bucket=b, Key=k, UploadId=uid, MultipartUpload={"Parts": [full[0], {"PartNumber": 9, "ETag": e1}]})[0] == "InvalidPart", "a part never uploaded: InvalidPart")
    check(code(s3.complete_multipart_upload, Bucket=b, Key=k, UploadId=uid, MultipartUpload={"Parts": [full[2], {"PartNumber": 4, "ETag": e3}]})[0] in ("InvalidPart", "EntityTooSmall"), "small parts before the last are refused")
    r = s3.complete_multipart_upload(Bucket=b, Key=k, UploadId=uid, MultipartUpload={"Parts": full})
    want = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in (p1, p2, p3))).hexdigest() + "-3"
    check(r["ETag"].strip('"') == want, "CompleteMultipartUpload: ETag = MD5 of part MD5s, -3")
    with open(os.path.join(MNT, b, k), "rb") as f:
        check(f.read() == p1 + p2 + p3, "the assembled object on the mount")
    h = s3.head_object(Bucket=b, Key=k)
    check(h["ETag"].strip('"') == want and h["ContentType"] == "application/x-big" and h["Metadata"] == {"m": "1"}, "HEAD: multipart ETag and the metadata given at create")
    check(h.get("PartsCount", 3) == 3, "parts count")
    check(code(s3.list_parts, Bucket=b, Key=k, UploadId=uid)[0] == "NoSuchUpload", "a completed upload is gone")
    check(not s3.list_multipart_uploads(Bucket=b).get("Uploads"), "…from the upload list too")

    small = s3.create_multipart_upload(Bucket=b, Key="small")["UploadId"]
    ea = s3.upload_part(Bucket=b, Key="small", UploadId=small, PartNumber=1, Body=b"a" * 100)["ETag"]
    eb = s3.upload_part(Bucket=b, Key="small", UploadId=small, PartNumber=2, Body=b"b")["ETag"]
    check(code(s3.complete_multipart_upload, Bucket=b, Key="small", UploadId=small, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": ea}, {"PartNumber": 2, "ETag": eb}]})[0] == "EntityTooSmall", "a 100-byte first part: EntityTooSmall")
    s3.abort_multipart_upload(Bucket=b, Key="small", UploadId=small)
    check(code(s3.upload_part, Bucket=b, Key="small", UploadId=small, PartNumber=1, Body=b"x")[0] == "NoSuchUpload", "an aborted upload takes no parts")
    check(code(s3.abort_multipart_upload, Bucket=b, Key="small", UploadId="0" * 32)[0] == "NoSuchUpload", "aborting an unknown upload: NoSuchUpload")
    check(code(s3.upload_part, Bucket=b, Key="small", UploadId="../../etc", PartNumber=1, Body=b"x")[0] == "NoSuchUpload", "an upload id with a path in it: NoSuchUpload")
    check(code(s3.upload_part, Bucket=b, Key="other-key", UploadId=uid, PartNumber=1, Body=b"x")[0] == "NoSuchUpload", "an upload id used with another key: NoSuchUpload")

    # UploadPartCopy from an existing object, whole and by range.
    cp = s3.create_multipart_upload(Bucket=b, Key="copied")["UploadId"]
    c1 = s3.upload_part_copy(Bucket=b, Key="copied", UploadId=cp, PartNumber=1, CopySource={"Bucket": b, "Key": k}, CopySourceRange=f"bytes=0-{(5 << 20) - 1}")
    c2 = s3.upload_part_copy(Bucket=b, Key="copied", UploadId=cp, PartNumber=2, CopySource={"Bucket": b, "Key": k})
    s3.complete_multipart_upload(Bucket=b, Key="copied", UploadId=cp, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": c1["CopyPartResult"]["ETag"]}, {"PartNumber": 2, "ETag": c2["CopyPartResult"]["ETag"]}]})
    got = s3.get_object(Bucket=b, Key="copied")["Body"].read()
    check(got == p1 + p1 + p2 + p3, "UploadPartCopy: a range and a whole object")


def cross_protocol_etag():
    b = "ops"
    path = os.path.join(MNT, b, "written-by-fuse.txt")
    with open(path, "wb") as f:
        f.write(b"first version")
    h = s3.head_object(Bucket=b, Key="written-by-fuse.txt")
    check(h["ETag"].strip('"') == md5(b"first version"), "a file written through FUSE: ETag = MD5")
    time.sleep(0.01)
    with open(path, "ab") as f:
        f.write(b" and more")
    h = s3.head_object(Bucket=b, Key="written-by-fuse.txt")
    check(h["ETag"].strip('"') == md5(b"first version and more"), "after a FUSE append the ETag follows the content")
    with open(path, "r+b") as f:
        f.write(b"FIRST")
    g = s3.get_object(Bucket=b, Key="written-by-fuse.txt")
    check(g["ETag"].strip('"') == md5(b"FIRST version and more") and g["Body"].read() == b"FIRST version and more", "an overwrite in place (same size, same second) too")


def virtual_host():
    v = boto3.client(
        "s3", endpoint_url=f"http://localhost:{PORT}", region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}, retries={"max_attempts": 1}),
    )
    v.put_object(Bucket="ops", Key="vhost.txt", Body=b"virtual")
    check(s3.get_object(Bucket="ops", Key="vhost.txt")["Body"].read() == b"virtual", "virtual-host-style PUT, path-style GET")
    check([o["Key"] for o in v.list_objects_v2(Bucket="ops", Prefix="vhost")["Contents"]] == ["vhost.txt"], "virtual-host-style listing")


def auth():
    bad = boto3.client("s3", endpoint_url=URL, region_name="us-east-1", aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key="x" * 40, config=cfg)
    check(code(bad.list_buckets)[0] == "SignatureDoesNotMatch", "a wrong secret: SignatureDoesNotMatch")
    unknown = boto3.client("s3", endpoint_url=URL, region_name="us-east-1", aws_access_key_id="GKNOSUCHKEY000000000",
                           aws_secret_access_key="x" * 40, config=cfg)
    check(code(unknown.list_buckets)[0] == "InvalidAccessKeyId", "an unknown access key: InvalidAccessKeyId")
    import botocore.auth as signer
    real_now = signer.get_current_datetime
    signer.get_current_datetime = lambda *a, **kw: real_now(*a, **kw) + datetime.timedelta(minutes=20)
    try:
        check(code(s3.list_buckets)[0] == "RequestTimeTooSkewed", "a clock 20 minutes ahead: RequestTimeTooSkewed")
    finally:
        signer.get_current_datetime = real_now
    anon = boto3.client("s3", endpoint_url=URL, region_name="us-east-1",
                        config=Config(signature_version=botocore.UNSIGNED, retries={"max_attempts": 1}))
    check(code(anon.list_objects_v2, Bucket="ops")[0] == "AccessDenied", "an unsigned request: AccessDenied")
    try:
        s3.head_object(Bucket="ops", Key="missing")
    except ClientError as e:
        check(e.response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id"), "errors carry a request id")


def main():
    which = sys.argv[1:] or ["buckets", "objects", "keys_that_do_not_fit", "listings", "multipart", "cross_protocol_etag", "virtual_host", "auth"]
    for name in which:
        print(f"# {name}", flush=True)
        globals()[name]()
    print("all S3 checks passed", flush=True)


if __name__ == "__main__":
    main()
