"""PUTs with `aws-chunked` bodies, as the Java/Go SDKs and aws-cli 2 send them, built by hand here
because botocore only sends them over TLS:

  - STREAMING-AWS4-HMAC-SHA256-PAYLOAD: every chunk carries a signature chained from the
    request's (a wrong one must be refused and write nothing);
  - STREAMING-UNSIGNED-PAYLOAD-TRAILER: unsigned chunks, then a CRC32 checksum in a trailer.

SigV4 is written out from the AWS documentation (canonical request, string to sign, derived
key). Env: S3_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, MNT. Exits non-zero on failure.
"""

import base64
import datetime
import hashlib
import hmac
import http.client
import os
import sys
import time
import urllib.parse
import zlib

URL = urllib.parse.urlparse(os.environ["S3_URL"])
AK, SK = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
MNT = os.environ["MNT"]
REGION = "us-east-1"
EMPTY = hashlib.sha256(b"").hexdigest()


def h(b):
    return hashlib.sha256(b).hexdigest()


def mac(k, m):
    return hmac.new(k, m.encode(), hashlib.sha256).digest()


def key(date):
    k = mac(("AWS4" + SK).encode(), date)
    for p in (REGION, "s3", "aws4_request"):
        k = mac(k, p)
    return k


def request(method, path, headers, body, content_sha):
    now = datetime.datetime.now(datetime.timezone.utc)
    amz, date = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = {k.lower(): v for k, v in headers.items()}
    headers.update({"host": URL.netloc, "x-amz-date": amz, "x-amz-content-sha256": content_sha})
    names = sorted(headers)
    canonical = "\n".join([method, urllib.parse.quote(path), "", *(f"{n}:{headers[n]}" for n in names), "",
                           ";".join(names), content_sha])
    scope = f"{date}/{REGION}/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, h(canonical.encode())])
    k = key(date)
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={AK}/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={sig}")
    return headers, sig, k, amz, scope


def send(method, path, headers, body):
    c = http.client.HTTPConnection(URL.hostname, URL.port, timeout=60)
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    return r.status, r.read()


def signed_chunked(path, data, chunk=64 * 1024, tamper=False):
    headers = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))}
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
    # Content-Length is that of the encoded body, which depends on the signatures' fixed size.
    enc_len = sum(len(f"{len(p):x};chunk-signature=") + 64 + 4 + len(p) for p in pieces)
    headers["content-length"] = str(enc_len)
    headers, prev, k, amz, scope = request("PUT", path, headers, None, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    body = b""
    for i, p in enumerate(pieces):
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz, scope, prev, EMPTY, h(p)])
        prev = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        sig = prev
        if tamper and i == 1:
            sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        body += f"{len(p):x};chunk-signature={sig}\r\n".encode() + p + b"\r\n"
    assert len(body) == enc_len
    return send("PUT", path, headers, body)


def unsigned_trailer(path, data, chunk=50_000, bad_crc=False):
    crc = zlib.crc32(data) ^ (1 if bad_crc else 0)
    crc_b64 = base64.b64encode(crc.to_bytes(4, "big")).decode()
    body = b""
    for i in range(0, len(data), chunk):
        p = data[i:i + chunk]
        body += f"{len(p):x}\r\n".encode() + p + b"\r\n"
    body += b"0\r\n" + f"x-amz-checksum-crc32:{crc_b64}\r\n\r\n".encode()
    headers = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
               "x-amz-trailer": "x-amz-checksum-crc32", "content-length": str(len(body))}
    headers, *_ = request("PUT", path, headers, None, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    return send("PUT", path, headers, body)


def plain_put(path, data, extra):
    headers, *_ = request("PUT", path, dict(extra, **{"content-length": str(len(data))}), None, h(data))
    c = http.client.HTTPConnection(URL.hostname, URL.port, timeout=60)
    c.request("PUT", path, body=data, headers=headers)
    r = c.getresponse()
    return r.status, r.read(), dict((k.lower(), v) for k, v in r.getheaders())


def get(path):
    headers, *_ = request("GET", path, {}, None, EMPTY)
    return send("GET", path, headers, None)


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok -", what, flush=True)


def exists(rel):
    return os.path.exists(os.path.join(MNT, rel))


def main():
    headers, *_ = request("PUT", "/chunks", {}, None, EMPTY)
    status, body = send("PUT", "/chunks", headers, None)
    check(status == 200, f"bucket made with a hand-signed request ({status} {body[:200]!r})")
    data = os.urandom(300_000)
    status, body = signed_chunked("/chunks/signed.bin", data)
    check(status == 200, f"signed aws-chunked PUT ({status} {body[:300]!r})")
    status, got = get("/chunks/signed.bin")
    check(status == 200 and got == data, "…reads back whole")
    with open(os.path.join(MNT, "chunks", "signed.bin"), "rb") as f:
        check(f.read() == data, "…and through FUSE, without chunk framing")
    status, body = signed_chunked("/chunks/tampered.bin", data, tamper=True)
    check(status == 403 and b"SignatureDoesNotMatch" in body, f"a chunk with a wrong signature is refused ({status})")
    time.sleep(0.2)
    check(not exists("chunks/tampered.bin"), "…and nothing was written")

    status, body = unsigned_trailer("/chunks/trailer.bin", data)
    check(status == 200, f"unsigned aws-chunked PUT with a CRC32 trailer ({status} {body[:300]!r})")
    status, got = get("/chunks/trailer.bin")
    check(status == 200 and got == data, "…reads back whole")
    status, body = unsigned_trailer("/chunks/badcrc.bin", data, bad_crc=True)
    check(status == 400 and b"BadDigest" in body,
          f"a trailer checksum that does not match is refused as BadDigest ({status} {body[:200]!r})")
    check(not exists("chunks/badcrc.bin"), "…and nothing was written")

    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    status, body, hdrs = plain_put("/chunks/sha.bin", data, {"x-amz-checksum-sha256": sha})
    check(status == 200 and hdrs.get("x-amz-checksum-sha256") == sha,
          f"a SHA256 checksum header is checked and echoed ({status} {body[:200]!r})")
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    status, body, _ = plain_put("/chunks/badsha.bin", data, {"x-amz-checksum-sha256": wrong})
    check(status == 400 and b"BadDigest" in body, f"a wrong SHA256 header is refused as BadDigest ({status})")
    check(not exists("chunks/badsha.bin"), "…and nothing was written")
    print("all chunked checks passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAILED:", e)
        sys.exit(1)
