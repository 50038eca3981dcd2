"""A hand-built ONC RPC client for what the NFS client libraries do not send: MKNOD, UNSTABLE
WRITE + COMMIT with its verifier, and hostile input (garbage, oversized record marks,
truncated arguments, unknown programs). RFC 5531 (RPC), RFC 1813 (NFSv3, MOUNT v3).

Usage: raw.py ops | raw.py hostile | raw.py create-file NAME | raw.py write-file-sync FH
(env NFS_PORT). Exits non-zero on failure.
"""

import os
import socket
import struct
import sys

from onc import AUTH_NONE, auth_sys, opaque, pad

from common import check

PORT = int(os.environ["NFS_PORT"])
NFS, MOUNT = 100003, 100005




class Conn:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        self.xid = 1

    def send_record(self, payload, mark=None):
        m = mark if mark is not None else (0x80000000 | len(payload))
        self.s.sendall(struct.pack(">I", m) + payload)

    def recv_record(self):
        out = b""
        while True:
            hdr = self._exact(4)
            if hdr is None:
                return None
            (m,) = struct.unpack(">I", hdr)
            out += self._exact(m & 0x7FFFFFFF)
            if m & 0x80000000:
                return out

    def _exact(self, n):
        b = b""
        while len(b) < n:
            try:
                chunk = self.s.recv(n - len(b))
            except (ConnectionResetError, socket.timeout):
                return None
            if not chunk:
                return None
            b += chunk
        return b

    def call(self, prog, vers, proc, args=b"", cred=None):
        self.xid += 1
        cred = cred if cred is not None else auth_sys()
        msg = struct.pack(">IIIIII", self.xid, 0, 2, prog, vers, proc) + cred + AUTH_NONE + args
        self.send_record(msg)
        return self.reply()

    def reply(self):
        r = self.recv_record()
        if r is None:
            return None
        xid, mtype, stat = struct.unpack(">III", r[:12])
        if stat == 1:  # MSG_DENIED
            return ("denied", struct.unpack(">II", r[12:20]))
        # verifier flavor + opaque
        (vlen,) = struct.unpack(">I", r[16:20])
        off = 20 + vlen + (4 - vlen % 4) % 4
        (accept,) = struct.unpack(">I", r[off:off + 4])
        return ("accepted", accept, r[off + 4:])


def mount_root(c):
    kind, accept, body = c.call(MOUNT, 3, 1, opaque(b"/vol"))
    (status,) = struct.unpack(">I", body[:4])
    assert status == 0, f"MNT status {status}"
    (n,) = struct.unpack(">I", body[4:8])
    return body[8:8 + n]


def status(body):
    return struct.unpack(">I", body[:4])[0]


def fh_after_status(body):
    # post_op_fh3: bool, then opaque
    (follows,) = struct.unpack(">I", body[4:8])
    assert follows == 1
    (n,) = struct.unpack(">I", body[8:12])
    return body[12:12 + n]


SATTR_MODE_644 = struct.pack(">II", 1, 0o644) + struct.pack(">IIIII", 0, 0, 0, 0, 0)


def ops():
    c = Conn()
    root = mount_root(c)
    # MKNOD a FIFO (type 7) and a character device (type 4, 1:3).
    _, a, body = c.call(NFS, 3, 11, opaque(root) + opaque(b"fifo1") + struct.pack(">I", 7) + SATTR_MODE_644)
    check(a == 0 and status(body) == 0, f"MKNOD of a FIFO (status {status(body)})")
    _, a, body = c.call(NFS, 3, 11, opaque(root) + opaque(b"null1") + struct.pack(">I", 4) + SATTR_MODE_644
                        + struct.pack(">II", 1, 3))
    check(a == 0 and status(body) == 0, f"MKNOD of a character device as root (status {status(body)})")
    _, a, body = c.call(NFS, 3, 11, opaque(root) + opaque(b"null2") + struct.pack(">I", 4) + SATTR_MODE_644
                        + struct.pack(">II", 1, 3), cred=auth_sys(1000, 1000))
    check(status(body) in (1, 13), f"…but not as uid 1000 (status {status(body)})")
    _, a, body = c.call(NFS, 3, 11, opaque(root) + opaque(b"reg") + struct.pack(">I", 1) + SATTR_MODE_644)
    check(status(body) == 10007, "MKNOD of a regular file is NFS3ERR_BADTYPE")

    # CREATE (UNCHECKED) a file, WRITE UNSTABLE, COMMIT: same verifier.
    _, a, body = c.call(NFS, 3, 8, opaque(root) + opaque(b"unstable.bin") + struct.pack(">I", 0) + SATTR_MODE_644)
    check(status(body) == 0, "CREATE")
    fh = fh_after_status(body)
    data = b"x" * 100_000
    _, a, body = c.call(NFS, 3, 7, opaque(fh) + struct.pack(">QII", 0, len(data), 0) + opaque(data))
    check(status(body) == 0, "WRITE UNSTABLE")
    count, committed = struct.unpack(">II", body[-16:-8])
    verf = body[-8:]
    check(count == len(data) and committed == 0, f"…answered UNSTABLE for all bytes ({count}, {committed})")
    _, a, body = c.call(NFS, 3, 21, opaque(fh) + struct.pack(">QI", 0, 0))
    check(status(body) == 0 and body[-8:] == verf, "COMMIT returns the same write verifier")
    _, a, body = c.call(NFS, 3, 7, opaque(fh) + struct.pack(">QII", len(data), 5, 2) + opaque(b"hello"))
    check(status(body) == 0 and struct.unpack(">I", body[-12:-8])[0] == 2, "WRITE FILE_SYNC answered FILE_SYNC")
    # A WRITE whose count disagrees with its data is garbage, not a short write.
    _, a, body = c.call(NFS, 3, 7, opaque(fh) + struct.pack(">QII", 0, 10, 0) + opaque(b"abc"))
    check(a == 4, "WRITE with count != data length is GARBAGE_ARGS")
    # EXCLUSIVE create twice with the same verifier succeeds (a retransmission); another is EXIST.
    ex = opaque(root) + opaque(b"excl") + struct.pack(">I", 2) + b"12345678"
    _, a, body1 = c.call(NFS, 3, 8, ex)
    _, a, body2 = c.call(NFS, 3, 8, ex)
    check(status(body1) == 0 and status(body2) == 0, "EXCLUSIVE CREATE retransmitted succeeds")
    _, a, body3 = c.call(NFS, 3, 8, opaque(root) + opaque(b"excl") + struct.pack(">I", 2) + b"87654321")
    check(status(body3) == 17, "…and with another verifier is NFS3ERR_EXIST")
    # GUARDED create of an existing name is EXIST.
    _, a, body = c.call(NFS, 3, 8, opaque(root) + opaque(b"unstable.bin") + struct.pack(">I", 1) + SATTR_MODE_644)
    check(status(body) == 17, "GUARDED CREATE of an existing name is NFS3ERR_EXIST")
    # A handle that is not ours, and one of a file that does not exist.
    _, a, body = c.call(NFS, 3, 1, opaque(b"\1" * 8))
    check(status(body) == 10001, "a foreign handle is NFS3ERR_BADHANDLE")
    gone = root[:16] + os.urandom(16) + root[32:]
    _, a, body = c.call(NFS, 3, 1, opaque(gone))
    check(status(body) == 70, f"a handle of no file is NFS3ERR_STALE ({status(body)})")
    # LOOKUP "..": a directory's parent; the export's root is its own; a file has none.
    def lookup(dirfh, name):
        _, a, body = c.call(NFS, 3, 3, opaque(dirfh) + opaque(name))
        if status(body) != 0:
            return status(body), None
        (n,) = struct.unpack(">I", body[4:8])
        return 0, body[8:8 + n]
    _, a, body = c.call(NFS, 3, 9, opaque(root) + opaque(b"up1") + SATTR_MODE_644)
    d1 = fh_after_status(body)
    _, a, body = c.call(NFS, 3, 9, opaque(d1) + opaque(b"up2") + SATTR_MODE_644)
    d2 = fh_after_status(body)
    check(lookup(d2, b"..") == (0, d1), "LOOKUP .. of a directory is its parent")
    check(lookup(root, b"..") == (0, root), "LOOKUP .. of the export root is the root")
    check(lookup(fh, b"..")[0] == 20, "LOOKUP .. of a file is NFS3ERR_NOTDIR")
    print("verifier", verf.hex(), flush=True)
    print("all raw checks passed")


def hostile():
    # Unknown program, version, procedure; AUTH_NONE on NFS; truncated arguments.
    c = Conn()
    r = c.call(100099, 1, 0)
    check(r[0] == "accepted" and r[1] == 1, "an unknown program is PROG_UNAVAIL")
    r = c.call(NFS, 2, 0)
    check(r[0] == "accepted" and r[1] == 2, "NFS version 2 is PROG_MISMATCH")
    r = c.call(NFS, 3, 99)
    check(r[0] == "accepted" and r[1] == 3, "procedure 99 is PROC_UNAVAIL")
    r = c.call(NFS, 3, 1, b"", cred=AUTH_NONE)
    check(r[0] == "denied", "AUTH_NONE on GETATTR is refused (AUTH_ERROR)")
    r = c.call(NFS, 3, 1, b"\0\0")
    check(r[0] == "accepted" and r[1] == 4, "GETATTR with truncated arguments is GARBAGE_ARGS")
    r = c.call(NFS, 3, 7, struct.pack(">I", 0x7FFFFFF0))
    check(r[0] == "accepted" and r[1] == 4, "a WRITE claiming a 2 GiB handle is GARBAGE_ARGS")
    r = c.call(MOUNT, 3, 1, struct.pack(">I", 0xFFFFFFFF))
    check(r[0] == "accepted" and r[1] == 4, "a MNT path of 4 GiB is GARBAGE_ARGS")
    r = c.call(NFS, 3, 0)
    check(r is not None and r[1] == 0, "…and the same connection still answers NULL")

    # A record mark announcing 2 GiB: the connection is closed, nothing allocated.
    c = Conn()
    c.send_record(b"", mark=0xFFFFFFF0)
    check(c.recv_record() is None, "a 2 GiB record mark closes the connection")
    # Garbage that is no RPC header at all.
    c = Conn()
    c.send_record(os.urandom(7))
    check(c.recv_record() is None, "7 random bytes close the connection")
    # Many random messages: each answered or the connection closed, never a hang or crash.
    for i in range(200):
        c = Conn()
        c.s.settimeout(5)
        n = int.from_bytes(os.urandom(2), "big") % 600
        c.send_record(struct.pack(">IIIIII", i, 0, 2, NFS, 3, i % 22) + auth_sys() + AUTH_NONE + os.urandom(n))
        c.recv_record()
        c.s.close()
    check(True, "200 calls with random arguments answered or closed")
    c = Conn()
    root = mount_root(c)
    r = c.call(NFS, 3, 1, opaque(root))
    check(r[1] == 0 and status(r[2]) == 0, "a new connection mounts and GETATTRs after all that")
    print("all hostile checks passed")


def unstable_before():
    """WRITE UNSTABLE without COMMIT; prints the handle and the verifier for `commit_after`."""
    c = Conn()
    root = mount_root(c)
    _, a, body = c.call(NFS, 3, 8, opaque(root) + opaque(b"uncommitted.bin") + struct.pack(">I", 0) + SATTR_MODE_644)
    fh = fh_after_status(body)
    data = b"not yet committed " * 1000
    _, a, body = c.call(NFS, 3, 7, opaque(fh) + struct.pack(">QII", 0, len(data), 0) + opaque(data))
    check(status(body) == 0 and struct.unpack(">I", body[-12:-8])[0] == 0, "WRITE UNSTABLE, no COMMIT")
    print("state", fh.hex(), body[-8:].hex(), flush=True)


def commit_after(fh_hex, verf_hex):
    """After a restart: COMMIT answers a new verifier, which tells a client to re-send."""
    c = Conn()
    _, a, body = c.call(NFS, 3, 21, opaque(bytes.fromhex(fh_hex)) + struct.pack(">QI", 0, 0))
    check(status(body) == 0, "COMMIT with the handle from before the restart")
    check(body[-8:].hex() != verf_hex, "…answers a new write verifier, so the client re-sends")
    print("all commit checks passed")


STABLE_DATA = b"file sync write " * 4096


def create_file(name):
    """CREATE NAME in the export's root; prints its handle for `write_file_sync`."""
    c = Conn()
    root = mount_root(c)
    _, a, body = c.call(NFS, 3, 8, opaque(root) + opaque(name.encode()) + struct.pack(">I", 0) + SATTR_MODE_644)
    check(status(body) == 0, f"CREATE {name}")
    print("fh", fh_after_status(body).hex(), flush=True)


def write_file_sync(fh_hex):
    """WRITE FILE_SYNC of STABLE_DATA at offset 0 of the file FH_HEX names."""
    c = Conn()
    fh = bytes.fromhex(fh_hex)
    data = STABLE_DATA
    _, a, body = c.call(NFS, 3, 7, opaque(fh) + struct.pack(">QII", 0, len(data), 2) + opaque(data))
    check(status(body) == 0 and struct.unpack(">I", body[-12:-8])[0] == 2, "WRITE FILE_SYNC answered FILE_SYNC")
    print("written", len(data), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "create-file":
        create_file(sys.argv[2])
    elif sys.argv[1] == "write-file-sync":
        write_file_sync(sys.argv[2])
    elif sys.argv[1] == "unstable-before":
        unstable_before()
    elif sys.argv[1] == "commit-after":
        commit_after(sys.argv[2], sys.argv[3])
    else:
        {"ops": ops, "hostile": hostile}[sys.argv[1]]()
