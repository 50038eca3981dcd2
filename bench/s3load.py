"""S3 load helpers for bench/all.py and bench/soak.py: a light small-object client that is not the
bottleneck, and a single-node Garage 2.x launcher (the S3 peer).

The small-object client signs AWS SigV4 itself (hashlib + hmac, the signing key computed once a
day) and keeps one persistent http.client connection per thread; PROCS processes x THREADS
threads share the keys. boto3 spends ~1-2 ms of CPU a request building and signing it; this spends
a tenth of that, so on a 2-core machine most of the CPU is left to the server. The client CPU used
is reported next to each figure so a reader can see whether it was the limit.
"""

import datetime
import hashlib
import hmac
import http.client
import multiprocessing
import os
import re
import resource
import secrets
import shutil
import subprocess
import threading
import time
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as common  # noqa: E402  (shared process helpers)

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class Signer:
    """AWS SigV4 for path-style requests to one endpoint (no query strings)."""

    def __init__(self, url, access_key, secret_key, region):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http":
            raise ValueError(f"only http endpoints: {url}")
        self.host, self.port = u.hostname, u.port or 80
        self.host_header = u.netloc
        self.ak, self.sk, self.region = access_key, secret_key, region
        self._day, self._key = None, None

    def _signing_key(self, day):
        if day != self._day:
            k = hmac.new(("AWS4" + self.sk).encode(), day.encode(), hashlib.sha256).digest()
            for part in (self.region, "s3", "aws4_request"):
                k = hmac.new(k, part.encode(), hashlib.sha256).digest()
            self._day, self._key = day, k
        return self._key

    def headers(self, method, path, payload_sha256):
        now = datetime.datetime.now(datetime.timezone.utc)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        signed = "host;x-amz-content-sha256;x-amz-date"
        canonical = (f"{method}\n{path}\n\nhost:{self.host_header}\n"
                     f"x-amz-content-sha256:{payload_sha256}\nx-amz-date:{amz_date}\n\n"
                     f"{signed}\n{payload_sha256}")
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = (f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n"
                   f"{hashlib.sha256(canonical.encode()).hexdigest()}")
        sig = hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        return {
            "Host": self.host_header,
            "x-amz-date": amz_date,
            "x-amz-content-sha256": payload_sha256,
            "Authorization": (f"AWS4-HMAC-SHA256 Credential={self.ak}/{scope}, "
                              f"SignedHeaders={signed}, Signature={sig}"),
        }


def object_path(bucket, key):
    return "/" + urllib.parse.quote(bucket, safe="") + "/" + urllib.parse.quote(key, safe="/")


class Conn:
    """One keep-alive connection; request() reconnects once if the server closed it."""

    def __init__(self, signer):
        self.s = signer
        self.c = http.client.HTTPConnection(signer.host, signer.port, timeout=60)

    def request(self, method, bucket, key, body=b""):
        path = object_path(bucket, key)
        h = self.s.headers(method, path, hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256)
        if body or method == "PUT":
            h["Content-Length"] = str(len(body))
        for attempt in (0, 1):
            try:
                self.c.request(method, path, body=body or None, headers=h)
                r = self.c.getresponse()
                data = r.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if attempt:
                    raise
                self.c.close()
                self.c = http.client.HTTPConnection(self.s.host, self.s.port, timeout=60)
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {r.status}: {data[:300]!r}")
        return data

    def close(self):
        self.c.close()


def _worker(cfg, bucket, op, keys, threads, body, start_evt, out):
    signer = Signer(*cfg)
    conns = [Conn(signer) for _ in range(threads)]
    parts = [keys[i::threads] for i in range(threads)]
    errors = []

    def run(i):
        c = conns[i]
        try:
            for k in parts[i]:
                if op == "PUT":
                    c.request("PUT", bucket, k, body)
                elif op == "GET":
                    if len(c.request("GET", bucket, k)) != len(body):
                        raise RuntimeError(f"GET {k}: short body")
                elif op == "DELETE":
                    c.request("DELETE", bucket, k)
                else:
                    raise ValueError(op)
        except Exception as e:  # noqa: BLE001 - sent to the parent, which raises it
            errors.append(f"{type(e).__name__}: {e}")

    start_evt.wait()
    t0 = time.time()
    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    t1 = time.time()
    for c in conns:
        c.close()
    out.put((t0, t1, errors))


def small_objects(url, ak, sk, region, bucket, op, keys, procs, threads, body):
    """Runs OP (PUT, GET, DELETE) on every key with PROCS x THREADS connections.
    Returns (ops/s, client CPU cores used on average)."""
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    parts = [keys[i::procs] for i in range(procs)]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ps = [ctx.Process(target=_worker, args=((url, ak, sk, region), bucket, op, parts[i], threads, body,
                                            start, out)) for i in range(procs)]
    for p in ps:
        p.start()
    time.sleep(0.3)  # every worker has forked and opened its connections' objects
    start.set()
    got = [out.get(timeout=3600) for _ in ps]
    for p in ps:
        p.join()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    errors = [e for _, _, errs in got for e in errs]
    if errors:
        raise RuntimeError(f"S3 {op}: {len(errors)} worker(s) failed; first: {errors[0]}")
    wall = max(t1 for _, t1, _ in got) - min(t0 for t0, _, _ in got)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return len(keys) / wall, cpu / wall


class Garage:
    """A single-node Garage 2.x (replication_factor 1, sqlite) in BASE/garage, with a key and the
    bucket `s3bench`. Attributes: url, access_key, secret_key, region, pid."""

    region = "us-east-1"

    def __init__(self, base, wait_for, log):
        self.garage = shutil.which("garage")
        if not self.garage:
            raise RuntimeError("garage not installed: cargo install garage --locked")
        d = os.path.join(base, "garage")
        os.makedirs(os.path.join(d, "meta"))
        os.makedirs(os.path.join(d, "data"))
        self.conf = os.path.join(d, "garage.toml")
        rpc, s3, admin = common.free_port(), common.free_port(), common.free_port()
        with open(self.conf, "w") as f:
            f.write(f"""metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secrets.token_hex(32)}"

[s3_api]
s3_region = "{self.region}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
""")
        self.logf = open(os.path.join(d, "garage.log"), "w")
        self.proc = subprocess.Popen([self.garage, "-c", self.conf, "server"], stdout=self.logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"garage server exited ({self.proc.returncode}); see {d}")
            return self.cli("status", check=False).returncode == 0
        wait_for("garage status", 60, up)
        node = self.cli("node", "id", "-q").stdout.strip().split("@")[0]
        self.cli("layout", "assign", "-z", "dc1", "-c", "10G", node)
        self.cli("layout", "apply", "--version", "1")
        out = self.cli("key", "create", "bench").stdout
        ak = re.search(r"Key ID:\s*(\S+)", out)
        sk = re.search(r"Secret key:\s*(\S+)", out)
        if not ak or not sk:
            raise RuntimeError(f"garage key create: cannot read the key from:\n{out}")
        self.access_key, self.secret_key = ak.group(1), sk.group(1)
        wait_for("garage bucket create", 60,
                 lambda: self.cli("bucket", "create", "s3bench", check=False).returncode == 0)
        self.cli("bucket", "allow", "--read", "--write", "--owner", "s3bench", "--key", "bench")
        self.url = f"http://127.0.0.1:{s3}"
        log(f"  garage {self.cli('--version', check=False).stdout.strip()} at {self.url}")

    def cli(self, *args, check=True):
        p = subprocess.run([self.garage, "-c", self.conf, *args], capture_output=True, text=True)
        if check and p.returncode != 0:
            raise RuntimeError(f"garage {' '.join(args)}: {p.stdout}{p.stderr}")
        return p

    def close(self):
        common.stop_process(self.proc)
        self.logf.close()
