"""NFSv3 file handles across gateway nodes, with hand-built ONC RPC calls (RFC 5531, RFC 1813):
a handle one node gave out must work on another node of the same pool.

  handles.py lookup ADDR PORT PATH        MOUNT v3 MNT /vol, then LOOKUP each component of PATH;
                                          prints the file's handle in hex
  handles.py read ADDR PORT HANDLE OUT    GETATTR (a regular file) and READ to the end with that
                                          handle; writes the bytes to OUT and prints the size

ADDR is the node's NFS address (MOUNT is served on the same port). Exits non-zero on failure,
saying which call failed with which NFS status.
"""

import socket
import struct
import sys

from onc import AUTH_NONE, auth_sys, opaque, pad

NFS, MOUNT = 100003, 100005
NF3REG = 1




def fail(what):
    print("FAILED:", what, flush=True)
    sys.exit(1)


class Conn:
    def __init__(self, addr, port):
        self.s = socket.create_connection((addr, port), timeout=30)
        self.xid = 0x4000

    def _exact(self, n):
        b = b""
        while len(b) < n:
            chunk = self.s.recv(n - len(b))
            if not chunk:
                fail("the server closed the connection")
            b += chunk
        return b

    def call(self, prog, vers, proc, args):
        self.xid += 1
        msg = struct.pack(">IIIIII", self.xid, 0, 2, prog, vers, proc) + auth_sys() + AUTH_NONE + args
        self.s.sendall(struct.pack(">I", 0x80000000 | len(msg)) + msg)
        while True:
            r = b""
            while True:
                (m,) = struct.unpack(">I", self._exact(4))
                r += self._exact(m & 0x7FFFFFFF)
                if m & 0x80000000:
                    break
            (xid,) = struct.unpack(">I", r[:4])
            if xid == self.xid:
                break
        _, mtype, stat = struct.unpack(">III", r[:12])
        if stat != 0:
            fail(f"program {prog} procedure {proc}: RPC denied")
        (vlen,) = struct.unpack(">I", r[16:20])
        off = 20 + vlen + (4 - vlen % 4) % 4
        (accept,) = struct.unpack(">I", r[off:off + 4])
        if accept != 0:
            fail(f"program {prog} procedure {proc}: RPC accept status {accept}")
        return r[off + 4:]


def mount_root(c):
    body = c.call(MOUNT, 3, 1, opaque(b"/vol"))
    (status,) = struct.unpack(">I", body[:4])
    if status != 0:
        fail(f"MNT /vol: status {status}")
    (n,) = struct.unpack(">I", body[4:8])
    return body[8:8 + n]


FATTR3 = 84  # type mode nlink uid gid (5 x u32) size used (2 x u64) rdev (2 x u32) fsid fileid
#            atime mtime ctime (u64 + 3 x (u32, u32))


def lookup(c, dirfh, name):
    body = c.call(NFS, 3, 3, opaque(dirfh) + opaque(name.encode()))
    (status,) = struct.unpack(">I", body[:4])
    if status != 0:
        fail(f"LOOKUP {name}: NFS status {status}")
    (n,) = struct.unpack(">I", body[4:8])
    return body[8:8 + n]


def getattr_(c, fh):
    body = c.call(NFS, 3, 1, opaque(fh))
    (status,) = struct.unpack(">I", body[:4])
    if status != 0:
        fail(f"GETATTR: NFS status {status}")
    ftype = struct.unpack(">I", body[4:8])[0]
    (size,) = struct.unpack(">Q", body[24:32])
    return ftype, size


def read_all(c, fh):
    out = b""
    while True:
        body = c.call(NFS, 3, 6, opaque(fh) + struct.pack(">QI", len(out), 65536))
        (status,) = struct.unpack(">I", body[:4])
        (follows,) = struct.unpack(">I", body[4:8])
        off = 8 + (FATTR3 if follows else 0)
        if status != 0:
            fail(f"READ at {len(out)}: NFS status {status}")
        count, eof = struct.unpack(">II", body[off:off + 8])
        (n,) = struct.unpack(">I", body[off + 8:off + 12])
        data = body[off + 12:off + 12 + n]
        if n != count or len(data) != n:
            fail(f"READ at {len(out)}: count {count}, data {n}/{len(data)} bytes")
        out += data
        if eof or count == 0:
            return out


def main(argv):
    if len(argv) == 5 and argv[1] == "lookup":
        c = Conn(argv[2], int(argv[3]))
        fh = mount_root(c)
        for part in [p for p in argv[4].split("/") if p]:
            fh = lookup(c, fh, part)
        print(fh.hex())
        return 0
    if len(argv) == 6 and argv[1] == "read":
        c = Conn(argv[2], int(argv[3]))
        fh = bytes.fromhex(argv[4])
        ftype, size = getattr_(c, fh)
        if ftype != NF3REG:
            fail(f"GETATTR: type {ftype}, not a regular file")
        data = read_all(c, fh)
        if len(data) != size:
            fail(f"READ returned {len(data)} bytes, GETATTR said {size}")
        with open(argv[5], "wb") as f:
            f.write(data)
        print(f"size {size}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
