"""Shared by the NFS test scripts: a connection to the gateway's export with the `nfs-rs`
client (a userspace NFSv3 client), from NFS_PORT in the environment."""

import os
import sys

import nfs_rs


def connect(uid=0, gid=0, export="/vol"):
    port = int(os.environ["NFS_PORT"])
    return nfs_rs.Client.connect(f"nfs://127.0.0.1{export}", versions=["3"], nfs_port=port,
                                 mount_port=port, uid=uid, gid=gid)


def check(cond, what):
    if not cond:
        print("FAILED:", what, flush=True)
        sys.exit(1)
    print("ok -", what, flush=True)
