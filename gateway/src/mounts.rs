//! The top of gatewayd's own FUSE mounts (`gatewayd up --mount`, the mounts Samba serves):
//! a translator that sends every fop to the volume's *current* graph, as NFS and S3 do per
//! request. A volume stopped and started again gets a new graph; the kernel mount stays and
//! follows it, as a GlusterFS client's mount survives `volume stop` + `volume start`: while the
//! volume is stopped its fops fail with ENOTCONN ("Transport endpoint is not connected"), and
//! once it is started they work again, with the same inodes (gfids) and the files left open
//! (the new graph serves their fds as anonymous ones, by gfid). A stale mount a killed
//! gatewayd left is detached before its mount point is used again.

use crate::manager::Manager;
use async_trait::async_trait;
use bytes::Bytes;
use engine::*;
use std::path::Path;
use std::sync::{Arc, Weak};

pub struct VolumeTop {
    base: XlatorBase,
    manager: Weak<Manager>,
    volume: String,
}

impl VolumeTop {
    pub fn top_of(manager: &Arc<Manager>, volume: &str) -> XlatorRef {
        Arc::new(VolumeTop {
            base: XlatorBase::new(format!("{volume}-mount"), "meta/volume-top", Vec::new()),
            manager: Arc::downgrade(manager),
            volume: volume.to_string(),
        })
    }

    /// The top of the volume's graph now; ENOTCONN while it is stopped.
    fn top(&self) -> Result<XlatorRef> {
        self.manager
            .upgrade()
            .and_then(|m| m.graph(&self.volume))
            .map(|g| g.top())
            .ok_or(Errno::ENOTCONN)
    }
}

#[async_trait]
impl Xlator for VolumeTop {
    fn base(&self) -> &XlatorBase {
        &self.base
    }

    async fn lookup(&self, ctx: &Ctx, loc: &Loc, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        self.top()?.lookup(ctx, loc, want).await
    }

    async fn stat(&self, ctx: &Ctx, loc: &Loc) -> Result<Iatt> {
        self.top()?.stat(ctx, loc).await
    }

    async fn fstat(&self, ctx: &Ctx, fd: &FdRef) -> Result<Iatt> {
        self.top()?.fstat(ctx, fd).await
    }

    async fn setattr(&self, ctx: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
        self.top()?.setattr(ctx, loc, attr).await
    }

    async fn access(&self, ctx: &Ctx, loc: &Loc, mask: u32) -> Result<()> {
        self.top()?.access(ctx, loc, mask).await
    }

    async fn create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt, PostParent)> {
        self.top()?.create(ctx, loc, flags, entry).await
    }

    async fn open(&self, ctx: &Ctx, loc: &Loc, flags: i32) -> Result<FdRef> {
        self.top()?.open(ctx, loc, flags).await
    }

    async fn read(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Bytes> {
        self.top()?.read(ctx, fd, offset, size).await
    }

    async fn write(&self, ctx: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
        self.top()?.write(ctx, fd, offset, data).await
    }

    async fn truncate(&self, ctx: &Ctx, loc: &Loc, size: u64) -> Result<Iatt> {
        self.top()?.truncate(ctx, loc, size).await
    }

    async fn ftruncate(&self, ctx: &Ctx, fd: &FdRef, size: u64) -> Result<Iatt> {
        self.top()?.ftruncate(ctx, fd, size).await
    }

    async fn flush(&self, ctx: &Ctx, fd: &FdRef) -> Result<()> {
        self.top()?.flush(ctx, fd).await
    }

    async fn fsync(&self, ctx: &Ctx, fd: &FdRef, datasync: bool) -> Result<()> {
        self.top()?.fsync(ctx, fd, datasync).await
    }

    async fn release(&self, fd: &FdRef) {
        if let Ok(t) = self.top() {
            t.release(fd).await
        }
    }

    async fn mkdir(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        self.top()?.mkdir(ctx, loc, entry).await
    }

    async fn mknod(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        self.top()?.mknod(ctx, loc, entry).await
    }

    async fn symlink(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        target: &str,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        self.top()?.symlink(ctx, loc, target, entry).await
    }

    async fn readlink(&self, ctx: &Ctx, loc: &Loc) -> Result<String> {
        self.top()?.readlink(ctx, loc).await
    }

    async fn link(&self, ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        self.top()?.link(ctx, oldloc, newloc).await
    }

    async fn unlink(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        self.top()?.unlink(ctx, loc).await
    }

    async fn rmdir(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        self.top()?.rmdir(ctx, loc).await
    }

    async fn rename(
        &self,
        ctx: &Ctx,
        oldloc: &Loc,
        newloc: &Loc,
    ) -> Result<(Iatt, PostParent, PostParent)> {
        self.top()?.rename(ctx, oldloc, newloc).await
    }

    async fn opendir(&self, ctx: &Ctx, loc: &Loc) -> Result<FdRef> {
        self.top()?.opendir(ctx, loc).await
    }

    async fn readdir(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Vec<Dirent>> {
        self.top()?.readdir(ctx, fd, offset, size).await
    }

    async fn readdirp(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: &Xattrs,
    ) -> Result<Vec<Dirent>> {
        self.top()?.readdirp(ctx, fd, offset, size, want).await
    }

    async fn statfs(&self, ctx: &Ctx, loc: &Loc) -> Result<Statvfs> {
        self.top()?.statfs(ctx, loc).await
    }

    async fn getxattr(&self, ctx: &Ctx, loc: &Loc, name: Option<&str>) -> Result<Xattrs> {
        self.top()?.getxattr(ctx, loc, name).await
    }

    async fn setxattr(&self, ctx: &Ctx, loc: &Loc, xattrs: &Xattrs, flags: i32) -> Result<()> {
        self.top()?.setxattr(ctx, loc, xattrs, flags).await
    }

    async fn removexattr(&self, ctx: &Ctx, loc: &Loc, name: &str) -> Result<()> {
        self.top()?.removexattr(ctx, loc, name).await
    }

    async fn xattrop(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        op: XattropOp,
        xattrs: &Xattrs,
    ) -> Result<Xattrs> {
        self.top()?.xattrop(ctx, loc, op, xattrs).await
    }

    async fn inodelk(
        &self,
        ctx: &Ctx,
        domain: &str,
        loc: &Loc,
        cmd: LockCmd,
        lock: &Flock,
    ) -> Result<Flock> {
        self.top()?.inodelk(ctx, domain, loc, cmd, lock).await
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
        self.top()?
            .entrylk(ctx, domain, loc, basename, cmd, typ)
            .await
    }

    async fn lk(&self, ctx: &Ctx, fd: &FdRef, cmd: LockCmd, lock: &Flock) -> Result<Flock> {
        self.top()?.lk(ctx, fd, cmd, lock).await
    }

    async fn fallocate(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        self.top()?.fallocate(ctx, fd, mode, offset, len).await
    }

    async fn rchecksum(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        len: u32,
    ) -> Result<(u32, [u8; 32])> {
        self.top()?.rchecksum(ctx, fd, offset, len).await
    }

    async fn discard(&self, ctx: &Ctx, fd: &FdRef, offset: u64, len: u64) -> Result<()> {
        self.top()?.discard(ctx, fd, offset, len).await
    }
}

/// A gatewayd that was killed leaves its FUSE mount behind, answering ENOTCONN; detach it so
/// the mount point can be used again.
pub fn clear_stale_mount(mp: &Path) {
    if let Err(e) = std::fs::metadata(mp)
        && e.raw_os_error() == Some(libc::ENOTCONN)
    {
        tracing::warn!(mountpoint = %mp.display(), "detaching a stale mount left by a previous gatewayd");
        let _ = std::process::Command::new("fusermount3")
            .arg("-uz")
            .arg(mp)
            .status();
        if std::fs::metadata(mp).is_err() {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(mp)
                .status();
        }
    }
}

/// Tells the kernel of the FUSE mount `inv` belongs to what other clients change in `volume`
/// (the upcalls reaching the top of its graph), following the volume's graph as it is
/// replaced (stop and start, a change of bricks), as the mount's `VolumeTop` does.
pub fn follow_upcalls(manager: &Arc<Manager>, volume: &str, inv: protocols_fuse::Invalidator) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    inv.follow(rx);
    let manager = Arc::downgrade(manager);
    let volume = volume.to_string();
    tokio::spawn(async move {
        let mut current: Option<(
            Weak<engine::graph::Graph>,
            tokio::sync::mpsc::UnboundedReceiver<Upcall>,
        )> = None;
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
        loop {
            let next = async {
                match &mut current {
                    Some((_, rx)) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                u = next => match u {
                    Some(u) => if tx.send(u).is_err() { return },
                    None => current = None,
                },
                _ = tick.tick() => {
                    if tx.is_closed() {
                        return;
                    }
                    let Some(m) = manager.upgrade() else { return };
                    let now = m.graph(&volume);
                    let same = match (&current, &now) {
                        (Some((w, _)), Some(g)) => std::ptr::eq(w.as_ptr(), Arc::as_ptr(g)),
                        (None, None) => true,
                        _ => false,
                    };
                    if !same {
                        current = now.map(|g| (Arc::downgrade(&g), g.upcalls()));
                        // What the kernel holds came through the old graph, whose bricks'
                        // upcalls no longer reach us: it is all suspect.
                        if tx.send(Upcall::forget_all()).is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
}
