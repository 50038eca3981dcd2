"""Holds handles across a `kill -9` and restart of gatewayd: opens files, writes part of one,
prints `holding` and waits for a line on stdin; then goes on with the same open files (the
same handles) and checks every byte. Any NFS3ERR_STALE fails it."""

import hashlib
import sys

from common import check, connect

c = connect()
c.mkdir("/hold", 0o755, exist_ok=True)
first = bytes(range(256)) * 4096 * 3  # 3 MiB
with c.open("/hold/before.bin", "wb") as f:
    f.write(first)
r = c.open("/hold/before.bin", "rb")
w = c.open("/hold/during.bin", "wb")
w.write(first)
head = r.read(1 << 20)
print("holding", flush=True)
sys.stdin.readline()

rest = r.read()
check(head + rest == first, "a file opened before the restart reads on through the same handle")
second = hashlib.sha256(b"after").digest() * (1 << 16)  # 2 MiB
w.write(second)
w.close()
r.close()
with c.open("/hold/during.bin", "rb") as f:
    got = f.read()
check(got == first + second, f"a file written across the restart holds every byte ({len(got)})")
st = c.stat("/hold/during.bin")
check(st.size == len(first) + len(second), "…and its size says so")
events = [e for e in c.recovery_events()]
print("recovery events:", len(events), flush=True)
print("all hold checks passed")
