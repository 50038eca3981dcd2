//! `debug/io-stats`: counts every fop that enters a volume's graph (operations, errors,
//! latency, bytes read and written), labelled by the volume and by the protocol the caller's
//! `Ctx` names. The gateway puts it at the top of each client graph, named after the volume,
//! as glusterd does; its name is the volume label.

use crate::fop::*;
use crate::metrics::{ProtocolFops, VolumeFops};
use crate::registry::XlatorType;
use crate::xlator::{Xlator, XlatorBase, XlatorRef};
use async_trait::async_trait;
use bytes::Bytes;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

pub fn xlator_type() -> XlatorType {
    XlatorType {
        type_name: "debug/io-stats",
        options: &[],
        min_children: 1,
        max_children: 1,
        build: Arc::new(|base, _| {
            let fops = VolumeFops::new(&base.name, FOP_NAMES);
            Ok(Arc::new(IoStats { base, fops }))
        }),
    }
}

/// The fops counted, by their index in [`FOP_NAMES`].
#[derive(Clone, Copy)]
enum Fop {
    Lookup,
    Stat,
    Fstat,
    Setattr,
    Access,
    Create,
    Open,
    Read,
    Write,
    Truncate,
    Ftruncate,
    Flush,
    Fsync,
    Mkdir,
    Mknod,
    Symlink,
    Readlink,
    Link,
    Unlink,
    Rmdir,
    Rename,
    Opendir,
    Readdir,
    Readdirp,
    Statfs,
    Getxattr,
    Setxattr,
    Removexattr,
    Xattrop,
    Inodelk,
    Entrylk,
    Lk,
    Fallocate,
    Rchecksum,
    Discard,
}

/// The `fop` label of each [`Fop`], GlusterFS's names.
const FOP_NAMES: &[&str] = &[
    "lookup",
    "stat",
    "fstat",
    "setattr",
    "access",
    "create",
    "open",
    "read",
    "write",
    "truncate",
    "ftruncate",
    "flush",
    "fsync",
    "mkdir",
    "mknod",
    "symlink",
    "readlink",
    "link",
    "unlink",
    "rmdir",
    "rename",
    "opendir",
    "readdir",
    "readdirp",
    "statfs",
    "getxattr",
    "setxattr",
    "removexattr",
    "xattrop",
    "inodelk",
    "entrylk",
    "lk",
    "fallocate",
    "rchecksum",
    "discard",
];

pub struct IoStats {
    base: XlatorBase,
    fops: VolumeFops,
}

impl IoStats {
    fn child(&self) -> Result<&XlatorRef> {
        self.base.first_child()
    }

    /// Runs `fop` and counts it for the caller's protocol.
    async fn counted<T>(
        &self,
        ctx: &Ctx,
        fop: Fop,
        f: impl Future<Output = Result<T>>,
    ) -> (Result<T>, &ProtocolFops) {
        let start = Instant::now();
        let r = f.await;
        let p = self.fops.of(ctx.protocol);
        p.record(fop as usize, r.is_ok(), start.elapsed());
        (r, p)
    }

    async fn timed<T>(&self, ctx: &Ctx, fop: Fop, f: impl Future<Output = Result<T>>) -> Result<T> {
        self.counted(ctx, fop, f).await.0
    }
}

#[async_trait]
impl Xlator for IoStats {
    fn base(&self) -> &XlatorBase {
        &self.base
    }

    async fn lookup(&self, ctx: &Ctx, loc: &Loc, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        self.timed(ctx, Fop::Lookup, async {
            self.child()?.lookup(ctx, loc, want).await
        })
        .await
    }

    async fn stat(&self, ctx: &Ctx, loc: &Loc) -> Result<Iatt> {
        self.timed(ctx, Fop::Stat, async { self.child()?.stat(ctx, loc).await })
            .await
    }

    async fn fstat(&self, ctx: &Ctx, fd: &FdRef) -> Result<Iatt> {
        self.timed(ctx, Fop::Fstat, async {
            self.child()?.fstat(ctx, fd).await
        })
        .await
    }

    async fn setattr(&self, ctx: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
        self.timed(ctx, Fop::Setattr, async {
            self.child()?.setattr(ctx, loc, attr).await
        })
        .await
    }

    async fn access(&self, ctx: &Ctx, loc: &Loc, mask: u32) -> Result<()> {
        self.timed(ctx, Fop::Access, async {
            self.child()?.access(ctx, loc, mask).await
        })
        .await
    }

    async fn create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt, PostParent)> {
        let (r, p) = self
            .counted(ctx, Fop::Create, async {
                self.child()?.create(ctx, loc, flags, entry).await
            })
            .await;
        // A file created with its content wrote it, as a write would have.
        if r.is_ok() && !entry.data.is_empty() {
            p.written_bytes(entry.data.len() as u64);
        }
        r
    }

    async fn open(&self, ctx: &Ctx, loc: &Loc, flags: i32) -> Result<FdRef> {
        self.timed(ctx, Fop::Open, async {
            self.child()?.open(ctx, loc, flags).await
        })
        .await
    }

    async fn read(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Bytes> {
        let (r, p) = self
            .counted(ctx, Fop::Read, async {
                self.child()?.read(ctx, fd, offset, size).await
            })
            .await;
        if let Ok(b) = &r {
            p.read_bytes(b.len() as u64);
        }
        r
    }

    async fn write(&self, ctx: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
        let n = data.len() as u64;
        let (r, p) = self
            .counted(ctx, Fop::Write, async {
                self.child()?.write(ctx, fd, offset, data).await
            })
            .await;
        if r.is_ok() {
            p.written_bytes(n);
        }
        r
    }

    async fn truncate(&self, ctx: &Ctx, loc: &Loc, size: u64) -> Result<Iatt> {
        self.timed(ctx, Fop::Truncate, async {
            self.child()?.truncate(ctx, loc, size).await
        })
        .await
    }

    async fn ftruncate(&self, ctx: &Ctx, fd: &FdRef, size: u64) -> Result<Iatt> {
        self.timed(ctx, Fop::Ftruncate, async {
            self.child()?.ftruncate(ctx, fd, size).await
        })
        .await
    }

    async fn flush(&self, ctx: &Ctx, fd: &FdRef) -> Result<()> {
        self.timed(ctx, Fop::Flush, async {
            self.child()?.flush(ctx, fd).await
        })
        .await
    }

    async fn fsync(&self, ctx: &Ctx, fd: &FdRef, datasync: bool) -> Result<()> {
        self.timed(ctx, Fop::Fsync, async {
            self.child()?.fsync(ctx, fd, datasync).await
        })
        .await
    }

    async fn mkdir(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        self.timed(ctx, Fop::Mkdir, async {
            self.child()?.mkdir(ctx, loc, entry).await
        })
        .await
    }

    async fn mknod(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        self.timed(ctx, Fop::Mknod, async {
            self.child()?.mknod(ctx, loc, entry).await
        })
        .await
    }

    async fn symlink(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        target: &str,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        self.timed(ctx, Fop::Symlink, async {
            self.child()?.symlink(ctx, loc, target, entry).await
        })
        .await
    }

    async fn readlink(&self, ctx: &Ctx, loc: &Loc) -> Result<String> {
        self.timed(ctx, Fop::Readlink, async {
            self.child()?.readlink(ctx, loc).await
        })
        .await
    }

    async fn link(&self, ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        self.timed(ctx, Fop::Link, async {
            self.child()?.link(ctx, oldloc, newloc).await
        })
        .await
    }

    async fn unlink(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        self.timed(ctx, Fop::Unlink, async {
            self.child()?.unlink(ctx, loc).await
        })
        .await
    }

    async fn rmdir(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        self.timed(ctx, Fop::Rmdir, async {
            self.child()?.rmdir(ctx, loc).await
        })
        .await
    }

    async fn rename(
        &self,
        ctx: &Ctx,
        oldloc: &Loc,
        newloc: &Loc,
    ) -> Result<(Iatt, PostParent, PostParent)> {
        self.timed(ctx, Fop::Rename, async {
            self.child()?.rename(ctx, oldloc, newloc).await
        })
        .await
    }

    async fn opendir(&self, ctx: &Ctx, loc: &Loc) -> Result<FdRef> {
        self.timed(ctx, Fop::Opendir, async {
            self.child()?.opendir(ctx, loc).await
        })
        .await
    }

    async fn readdir(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Vec<Dirent>> {
        self.timed(ctx, Fop::Readdir, async {
            self.child()?.readdir(ctx, fd, offset, size).await
        })
        .await
    }

    async fn readdirp(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: &Xattrs,
    ) -> Result<Vec<Dirent>> {
        self.timed(ctx, Fop::Readdirp, async {
            self.child()?.readdirp(ctx, fd, offset, size, want).await
        })
        .await
    }

    async fn statfs(&self, ctx: &Ctx, loc: &Loc) -> Result<Statvfs> {
        self.timed(ctx, Fop::Statfs, async {
            self.child()?.statfs(ctx, loc).await
        })
        .await
    }

    async fn getxattr(&self, ctx: &Ctx, loc: &Loc, name: Option<&str>) -> Result<Xattrs> {
        self.timed(ctx, Fop::Getxattr, async {
            self.child()?.getxattr(ctx, loc, name).await
        })
        .await
    }

    async fn setxattr(&self, ctx: &Ctx, loc: &Loc, xattrs: &Xattrs, flags: i32) -> Result<()> {
        self.timed(ctx, Fop::Setxattr, async {
            self.child()?.setxattr(ctx, loc, xattrs, flags).await
        })
        .await
    }

    async fn removexattr(&self, ctx: &Ctx, loc: &Loc, name: &str) -> Result<()> {
        self.timed(ctx, Fop::Removexattr, async {
            self.child()?.removexattr(ctx, loc, name).await
        })
        .await
    }

    async fn xattrop(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        op: XattropOp,
        xattrs: &Xattrs,
    ) -> Result<Xattrs> {
        self.timed(ctx, Fop::Xattrop, async {
            self.child()?.xattrop(ctx, loc, op, xattrs).await
        })
        .await
    }

    async fn inodelk(
        &self,
        ctx: &Ctx,
        domain: &str,
        loc: &Loc,
        cmd: LockCmd,
        lock: &Flock,
    ) -> Result<Flock> {
        self.timed(ctx, Fop::Inodelk, async {
            self.child()?.inodelk(ctx, domain, loc, cmd, lock).await
        })
        .await
    }

    async fn entrylk(
        &self,
        ctx: &Ctx,
        domain: &str,
        loc: &Loc,
        basename: Option<&str>,
        cmd: EntrylkCmd,
        typ: EntrylkType,
    ) -> Result<()> {
        self.timed(ctx, Fop::Entrylk, async {
            self.child()?
                .entrylk(ctx, domain, loc, basename, cmd, typ)
                .await
        })
        .await
    }

    async fn lk(&self, ctx: &Ctx, fd: &FdRef, cmd: LockCmd, lock: &Flock) -> Result<Flock> {
        self.timed(ctx, Fop::Lk, async {
            self.child()?.lk(ctx, fd, cmd, lock).await
        })
        .await
    }

    async fn fallocate(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        self.timed(ctx, Fop::Fallocate, async {
            self.child()?.fallocate(ctx, fd, mode, offset, len).await
        })
        .await
    }

    async fn rchecksum(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        len: u32,
    ) -> Result<(u32, [u8; 32])> {
        self.timed(ctx, Fop::Rchecksum, async {
            self.child()?.rchecksum(ctx, fd, offset, len).await
        })
        .await
    }

    async fn discard(&self, ctx: &Ctx, fd: &FdRef, offset: u64, len: u64) -> Result<()> {
        self.timed(ctx, Fop::Discard, async {
            self.child()?.discard(ctx, fd, offset, len).await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fop_has_its_name() {
        assert_eq!(FOP_NAMES.len(), Fop::Discard as usize + 1);
        assert_eq!(FOP_NAMES[Fop::Readdirp as usize], "readdirp");
        assert_eq!(FOP_NAMES[Fop::Setxattr as usize], "setxattr");
    }
}
