"""Export options seen by clients. Phases (env NFS_PORT):
  squash         as root on /vol/proj (root_squash): new files belong to the anonymous ids
  ro             on /vol/ro (read-only): reads work, every change is refused
  refused PATH   mounting PATH is refused
  handle PATH    prints the root handle MOUNT gives for PATH (hex)
  getattr HEX    prints the NFS status of a GETATTR of that handle
"""

import struct
import sys

import nfs_rs

import raw
from common import check, connect

phase = sys.argv[1]
if phase == "squash":
    c = connect(export="/vol/proj")
    with c.open("/squashed.txt", "wb") as f:
        f.write(b"made by root, squashed")
    info = c.stat("/squashed.txt")
    check((info.uid, info.gid) == (65534, 65534), f"root's new file is owned by the anonymous ids ({info.uid}:{info.gid})")
    print("squash checks passed")
elif phase == "ro":
    c = connect(export="/vol/ro")
    with c.open("/kept.txt", "rb") as f:
        check(f.read() == b"read me", "a read-only export reads")
    for what, op in [("create", lambda: c.open("/new.txt", "wb")),
                     ("mkdir", lambda: c.mkdir("/newdir")),
                     ("remove", lambda: c.remove("/kept.txt")),
                     ("chmod", lambda: c.chmod("/kept.txt", 0o600))]:
        try:
            op()
        except nfs_rs.NfsError as e:
            check("read-only" in str(e).lower() or "rofs" in str(e).lower() or isinstance(e, (nfs_rs.NfsPermissionError, nfs_rs.NfsOSError)),
                  f"{what} on a read-only export is refused ({type(e).__name__}: {e})")
        else:
            check(False, f"{what} on a read-only export was allowed")
    print("ro checks passed")
elif phase == "refused":
    try:
        connect(export=sys.argv[2])
    except nfs_rs.NfsError as e:
        check(True, f"mounting {sys.argv[2]} is refused ({type(e).__name__}: {e})")
    else:
        check(False, f"mounting {sys.argv[2]} was allowed")
    c = raw.Conn()
    _, accept, body = c.call(raw.MOUNT, 3, 1, raw.opaque(sys.argv[2].encode()))
    check(struct.unpack(">I", body[:4])[0] == 13, "…with MNT3ERR_ACCES")
    print("refused checks passed")
elif phase == "handle":
    c = raw.Conn()
    _, accept, body = c.call(raw.MOUNT, 3, 1, raw.opaque(sys.argv[2].encode()))
    (status,) = struct.unpack(">I", body[:4])
    assert status == 0, f"MNT {sys.argv[2]}: {status}"
    (n,) = struct.unpack(">I", body[4:8])
    print(body[8:8 + n].hex())
elif phase == "getattr":
    c = raw.Conn()
    _, accept, body = c.call(raw.NFS, 3, 1, raw.opaque(bytes.fromhex(sys.argv[2])))
    print("status", struct.unpack(">I", body[:4])[0])
