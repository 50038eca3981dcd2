"""XDR pieces of ONC RPC calls (RFC 4506, RFC 5531) shared by the hand-built NFS clients
(raw.py, handles.py)."""

import struct


def pad(b):
    return b + b"\0" * ((4 - len(b) % 4) % 4)


def opaque(b):
    return struct.pack(">I", len(b)) + pad(b)


def auth_sys(uid=0, gid=0, machine=b"e2e-test"):
    body = struct.pack(">I", 0) + opaque(machine) + struct.pack(">III", uid, gid, 0)
    return struct.pack(">I", 1) + opaque(body)


AUTH_NONE = struct.pack(">II", 0, 0)
