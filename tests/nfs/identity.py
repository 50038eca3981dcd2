"""AUTH_SYS identities through nfs-rs: files are made as the caller, and permissions are
checked as a kernel would (owner/group/other bits, chown, sticky directories).
Prints `made /shared/PATH` lines for the test to check ownership through FUSE."""

import nfs_rs

from common import check, connect


def refused(f, what):
    try:
        f()
    except nfs_rs.NfsPermissionError:
        check(True, what)
        return
    except nfs_rs.NfsError as e:
        check(False, f"{what}: {type(e).__name__} {e}")
    check(False, f"{what}: it was allowed")


root = connect()
alice = connect(uid=1000, gid=1000)
bob = connect(uid=2000, gid=2000)

root.mkdir("/shared", 0o1777)
with root.open("/rootfile", "wb") as f:
    f.write(b"root's")
root.chmod("/rootfile", 0o644)

with alice.open("/shared/alice.txt", "wb") as f:
    f.write(b"alice's")
alice.mkdir("/shared/alicedir", 0o755)
info = alice.stat("/shared/alice.txt")
check((info.uid, info.gid) == (1000, 1000), f"a file made by uid 1000 is owned by it ({info.uid}:{info.gid})")
print("made /shared/alice.txt", flush=True)

refused(lambda: alice.open("/rootfile", "r+b").write(b"x"), "uid 1000 cannot write root's 0644 file")
refused(lambda: alice.open("/newfile", "wb"), "uid 1000 cannot create in root's 0755 directory")
refused(lambda: alice.chown("/shared/alice.txt", 2000, 2000), "uid 1000 cannot give its file away")
alice.chmod("/shared/alice.txt", 0o600)
refused(lambda: bob.open("/shared/alice.txt", "rb").read(), "uid 2000 cannot read alice's 0600 file")
refused(lambda: bob.remove("/shared/alice.txt"), "uid 2000 cannot remove alice's file from a sticky directory")
refused(lambda: bob.rename("/shared/alice.txt", "/shared/bob.txt"), "…nor rename it")
refused(lambda: bob.mkdir("/shared/alicedir/sub"), "uid 2000 cannot make entries in alice's 0755 directory")
with bob.open("/shared/bob.txt", "wb") as f:
    f.write(b"bob's")
check(root.open("/rootfile", "rb").read() == b"root's", "root's file is unchanged")
root.chown("/shared/bob.txt", 1000, 1000)
info = root.stat("/shared/bob.txt")
check((info.uid, info.gid) == (1000, 1000), "root may chown")
alice.remove("/shared/alice.txt")
check(not root.exists("/shared/alice.txt"), "the owner may remove its file from the sticky directory")
check(alice.access("/shared/bob.txt", 2), "ACCESS grants uid 1000 writing its (now) file")
check(not bob.access("/rootfile", 2), "ACCESS denies uid 2000 writing root's file")
print("all identity checks passed")
