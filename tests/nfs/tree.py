"""Copies a local tree into the export (`in SRC DEST`) or out of it (`out SRC DEST`) with nfs-rs:
directories, files (in 1 MiB pieces) and symlinks, keeping modes."""

import os
import stat
import sys

from common import connect


def copy_in(c, src, dest):
    c.mkdir(dest, 0o755, parents=True, exist_ok=True)
    for e in sorted(os.scandir(src), key=lambda e: e.name):
        d = f"{dest}/{e.name}"
        st = e.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            c.symlink(os.readlink(e.path), d)
        elif stat.S_ISDIR(st.st_mode):
            c.mkdir(d, stat.S_IMODE(st.st_mode))
            copy_in(c, e.path, d)
        else:
            with open(e.path, "rb") as f, c.open(d, "wb") as out:
                while chunk := f.read(1 << 20):
                    out.write(chunk)
            c.chmod(d, stat.S_IMODE(st.st_mode))


def copy_out(c, src, dest):
    os.makedirs(dest, exist_ok=True)
    for e in c.scandir(src):
        s, d = f"{src}/{e.name}", os.path.join(dest, e.name)
        info = c.stat(s)
        kind = info.type.value
        if kind == "symlink":
            os.symlink(c.readlink(s), d)
        elif kind == "directory":
            os.mkdir(d)
            copy_out(c, s, d)
            os.chmod(d, info.mode & 0o7777)
        else:
            with c.open(s, "rb") as f, open(d, "wb") as out:
                while chunk := f.read(1 << 20):
                    out.write(chunk)
            os.chmod(d, info.mode & 0o7777)


if __name__ == "__main__":
    direction, src, dest = sys.argv[1:4]
    with connect() as c:
        (copy_in if direction == "in" else copy_out)(c, src, dest)
    print("copied", direction)
