//! `cluster/distribute` (GlusterFS DHT): spreads the files of every directory over its
//! subvolumes by the hash of their names. Directories exist on every subvolume, each copy
//! holding its hash range in `trusted.glusterfs.dht`; a file lives on the subvolume whose range
//! holds its name's hash, or elsewhere with a linkto file at the hashed subvolume naming where.

mod common;
mod copies;
mod dir;
mod entry;
mod follow;
pub mod hash;
pub mod layout;
mod lookup;
pub mod rebalance;
mod rename;

pub use common::Distribute;

use crate::fop::keys;
use crate::fop::*;
use crate::options::{OptKind, OptionSpec};
use crate::registry::XlatorType;
use crate::xlator::{Xlator, XlatorBase};
use async_trait::async_trait;
use bytes::Bytes;
use common::DhtFd;
use futures::future::join_all;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new(
        "min-free-disk",
        OptKind::Str,
        Some("10%"),
        "free space (a percentage, or bytes) below which a subvolume takes no new files: a create hashed to it lands on the subvolume with the most room, with a linkto on the hashed one",
    ),
    OptionSpec::new(
        "lookup-unhashed",
        OptKind::Enum(&["on", "off", "auto"]),
        Some("on"),
        "on: a name missing on its hashed subvolume is looked for everywhere; auto: not when the directory's layout is complete and every subvolume is up (GlusterFS's lookup-optimize)",
    ),
    OptionSpec::new(
        "lookup-optimize",
        OptKind::Bool,
        Some("off"),
        "accepted for GlusterFS volfiles",
    ),
    OptionSpec::new(
        "readdir-optimize",
        OptKind::Bool,
        Some("off"),
        "accepted for GlusterFS volfiles",
    ),
    OptionSpec::new(
        "commit-hash",
        OptKind::Int {
            min: 0,
            max: u32::MAX as i64,
        },
        None,
        "the volume's layout commit hash, changed when its subvolumes change: a directory layout written with it is trusted by lookup-unhashed auto (set by gatewayd)",
    ),
    OptionSpec::new(
        "decommissioned-bricks",
        OptKind::Str,
        None,
        "subvolumes being emptied by remove-brick, space-separated: new layouts leave them out (set by gatewayd)",
    ),
    OptionSpec::new(
        "weighted-rebalance",
        OptKind::Bool,
        Some("on"),
        "a rebalance sizes each subvolume's hash range by its size",
    ),
];

pub fn xlator_type(name: &'static str) -> XlatorType {
    XlatorType {
        type_name: name,
        options: OPTIONS,
        min_children: 1,
        max_children: usize::MAX,
        build: Arc::new(|base, o| {
            let mut d = Distribute::new(base);
            d.unhashed_always = o.get("lookup-unhashed") == Some("on");
            d.commit_hash = o.get("commit-hash").and_then(|v| v.parse().ok());
            d.min_free = o.get("min-free-disk").and_then(common::MinFree::parse);
            d.weighted = o
                .get("weighted-rebalance")
                .is_none_or(|v| crate::options::parse_bool(v).unwrap_or(true));
            for name in o
                .get("decommissioned-bricks")
                .unwrap_or("")
                .split_whitespace()
            {
                let i = d.subvol_named(name.as_bytes()).ok_or_else(|| {
                    format!("decommissioned-bricks: {name} is not a subvolume of this distribute")
                })?;
                d.decommissioned[i] = true;
            }
            Ok(Arc::new(d))
        }),
    }
}

#[async_trait]
impl Xlator for Distribute {
    fn base(&self) -> &XlatorBase {
        &self.base
    }

    fn as_any(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        Some(self)
    }

    async fn notify(&self, event: Event, from: usize) {
        // A brick's cache invalidation is about one inode, not about this child's health:
        // every cache above must hear it, whichever replica or subvolume sent it.
        if let Event::Upcall(_) = event {
            self.base.notify_parents(event).await;
            return;
        }
        let announce = {
            let _g = self.notify_lock.lock();
            match event {
                Event::ChildUp => {
                    self.up[from].store(true, Ordering::SeqCst);
                    self.reported[from].store(true, Ordering::SeqCst);
                }
                Event::ChildDown => {
                    self.up[from].store(false, Ordering::SeqCst);
                    self.reported[from].store(true, Ordering::SeqCst);
                }
                Event::ChildConnecting => return,
                Event::Upcall(_) => return,
            }
            let any_up = (0..self.n()).any(|i| self.is_up(i));
            let all_reported = self.reported.iter().all(|r| r.load(Ordering::SeqCst));
            // Up once every subvolume has answered (GlusterFS waits the same way, so the first
            // fops do not land on a subvolume that is still connecting); down when none is up.
            if any_up && all_reported && !self.announced.swap(true, Ordering::SeqCst) {
                Some(Event::ChildUp)
            } else if !any_up && self.announced.swap(false, Ordering::SeqCst) {
                Some(Event::ChildDown)
            } else {
                None
            }
        };
        if let Some(e) = announce {
            self.base.notify_parents(e).await;
        }
    }

    async fn lookup(&self, ctx: &Ctx, loc: &Loc, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        self.do_lookup(ctx, loc, want).await
    }

    async fn stat(&self, ctx: &Ctx, loc: &Loc) -> Result<Iatt> {
        match self.target(ctx, loc).await? {
            Some(i) => {
                self.on_file(ctx, loc, i, |i| self.sub(i).stat(ctx, loc))
                    .await
            }
            None => self.stat_dir(ctx, loc).await,
        }
    }

    async fn fstat(&self, ctx: &Ctx, fd: &FdRef) -> Result<Iatt> {
        if fd.is_dir {
            return self.stat(ctx, &Loc::gfid(fd.gfid)).await;
        }
        self.file_fstat(ctx, fd).await
    }

    async fn setattr(&self, ctx: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
        match self.target(ctx, loc).await? {
            Some(i) => self.file_setattr(ctx, loc, i, attr).await,
            None => {
                let ia = self.on_all(|i| self.sub(i).setattr(ctx, loc, attr)).await?;
                // The other copies' times may be newer than this one's.
                Ok(self.stat_dir(ctx, &Loc::gfid(ia.gfid)).await.unwrap_or(ia))
            }
        }
    }

    async fn access(&self, ctx: &Ctx, loc: &Loc, mask: u32) -> Result<()> {
        match self.target(ctx, loc).await? {
            Some(i) => {
                self.on_file(ctx, loc, i, |i| self.sub(i).access(ctx, loc, mask))
                    .await
            }
            None => self.sub(self.first_up()?).access(ctx, loc, mask).await,
        }
    }

    async fn create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt, PostParent)> {
        self.do_create(ctx, loc, flags, entry).await
    }

    async fn open(&self, ctx: &Ctx, loc: &Loc, flags: i32) -> Result<FdRef> {
        let i = self.target(ctx, loc).await?.ok_or(Errno::EISDIR)?;
        if !self.is_up(i) {
            return Err(Errno::ENOTCONN);
        }
        let opened = self
            .on_file(ctx, loc, i, |i| async move {
                self.sub(i).open(ctx, loc, flags).await.map(|c| (i, c))
            })
            .await;
        let (i, child) = opened?;
        Ok(self.wrap_file(child.gfid, flags, i, child))
    }

    async fn read(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Bytes> {
        self.file_read(ctx, fd, offset, size).await
    }

    async fn write(&self, ctx: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
        self.file_write(ctx, fd, offset, data).await
    }

    async fn truncate(&self, ctx: &Ctx, loc: &Loc, size: u64) -> Result<Iatt> {
        let i = self.target(ctx, loc).await?.ok_or(Errno::EISDIR)?;
        self.file_truncate(ctx, loc, i, size).await
    }

    async fn ftruncate(&self, ctx: &Ctx, fd: &FdRef, size: u64) -> Result<Iatt> {
        self.file_ftruncate(ctx, fd, size).await
    }

    async fn flush(&self, ctx: &Ctx, fd: &FdRef) -> Result<()> {
        if fd.is_dir {
            return Ok(());
        }
        self.file_unit(
            ctx,
            fd,
            |i, f| async move { self.sub(i).flush(ctx, &f).await },
        )
        .await
    }

    async fn fsync(&self, ctx: &Ctx, fd: &FdRef, datasync: bool) -> Result<()> {
        if fd.is_dir {
            let d = self.dht_fd(fd).ok_or(Errno::EBADF)?;
            for (i, f) in d.dirs.iter().enumerate() {
                if let Some(f) = f {
                    self.sub(i).fsync(ctx, f, datasync).await?;
                }
            }
            return Ok(());
        }
        self.file_unit(ctx, fd, |i, f| async move {
            self.sub(i).fsync(ctx, &f, datasync).await
        })
        .await
    }

    async fn release(&self, fd: &FdRef) {
        if let Some(d) = fd
            .ctx_del(self.base.id)
            .and_then(|a| a.downcast::<DhtFd>().ok())
        {
            if let Some((i, f)) = &d.file {
                self.sub(*i).release(f).await;
            }
            for (i, f) in d.dirs.iter().enumerate() {
                if let Some(f) = f {
                    self.sub(i).release(f).await;
                }
            }
        }
    }

    async fn mkdir(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        self.do_mkdir(ctx, loc, entry).await
    }

    async fn mknod(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        self.do_mknod(ctx, loc, entry).await
    }

    async fn symlink(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        target: &str,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        self.do_symlink(ctx, loc, target, entry).await
    }

    async fn readlink(&self, ctx: &Ctx, loc: &Loc) -> Result<String> {
        let i = self.target(ctx, loc).await?.ok_or(Errno::EINVAL)?;
        self.on_file(ctx, loc, i, |i| self.sub(i).readlink(ctx, loc))
            .await
    }

    async fn link(&self, ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        self.do_link(ctx, oldloc, newloc).await
    }

    async fn unlink(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        self.do_unlink(ctx, loc).await
    }

    async fn rmdir(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        self.do_rmdir(ctx, loc).await
    }

    async fn rename(
        &self,
        ctx: &Ctx,
        oldloc: &Loc,
        newloc: &Loc,
    ) -> Result<(Iatt, PostParent, PostParent)> {
        self.do_rename(ctx, oldloc, newloc).await
    }

    async fn opendir(&self, ctx: &Ctx, loc: &Loc) -> Result<FdRef> {
        self.do_opendir(ctx, loc).await
    }

    async fn readdir(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Vec<Dirent>> {
        self.readdir_any(ctx, fd, offset, size, &Xattrs::new(), false)
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
        self.readdir_any(ctx, fd, offset, size, want, true).await
    }

    async fn statfs(&self, ctx: &Ctx, loc: &Loc) -> Result<Statvfs> {
        let all = join_all((0..self.n()).map(|i| async move {
            if self.is_up(i) {
                self.sub(i).statfs(ctx, loc).await
            } else {
                Err(Errno::ENOTCONN)
            }
        }))
        .await;
        let ok: Vec<Statvfs> = all.into_iter().filter_map(|r| r.ok()).collect();
        let first = *ok.first().ok_or(Errno::ENOTCONN)?;
        let frsize = first.frsize.max(1);
        let mut s = Statvfs {
            blocks: 0,
            bfree: 0,
            bavail: 0,
            files: 0,
            ffree: 0,
            favail: 0,
            ..first
        };
        for x in &ok {
            let scale = |v: u64| (v as u128 * x.frsize.max(1) as u128 / frsize as u128) as u64;
            s.blocks += scale(x.blocks);
            s.bfree += scale(x.bfree);
            s.bavail += scale(x.bavail);
            s.files += x.files;
            s.ffree += x.ffree;
            s.favail += x.favail;
        }
        Ok(s)
    }

    async fn getxattr(&self, ctx: &Ctx, loc: &Loc, name: Option<&str>) -> Result<Xattrs> {
        match self.target(ctx, loc).await? {
            Some(i) => {
                self.on_file(ctx, loc, i, |i| self.sub(i).getxattr(ctx, loc, name))
                    .await
            }
            None => self.sub(self.first_up()?).getxattr(ctx, loc, name).await,
        }
    }

    async fn setxattr(&self, ctx: &Ctx, loc: &Loc, xattrs: &Xattrs, flags: i32) -> Result<()> {
        if xattrs.keys().any(|k| k.starts_with(keys::DHT_LAYOUT)) {
            return Err(Errno::EPERM);
        }
        match self.target(ctx, loc).await? {
            Some(i) => {
                self.on_file(ctx, loc, i, |i| {
                    self.sub(i).setxattr(ctx, loc, xattrs, flags)
                })
                .await
            }
            None => {
                self.on_all(|i| self.sub(i).setxattr(ctx, loc, xattrs, flags))
                    .await
            }
        }
    }

    async fn removexattr(&self, ctx: &Ctx, loc: &Loc, name: &str) -> Result<()> {
        match self.target(ctx, loc).await? {
            Some(i) => {
                self.on_file(ctx, loc, i, |i| self.sub(i).removexattr(ctx, loc, name))
                    .await
            }
            None => {
                self.on_all(|i| self.sub(i).removexattr(ctx, loc, name))
                    .await
            }
        }
    }

    async fn xattrop(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        op: XattropOp,
        xattrs: &Xattrs,
    ) -> Result<Xattrs> {
        match self.target(ctx, loc).await? {
            Some(i) => self.sub(i).xattrop(ctx, loc, op, xattrs).await,
            None => {
                self.sub(self.first_up()?)
                    .xattrop(ctx, loc, op, xattrs)
                    .await
            }
        }
    }

    async fn inodelk(
        &self,
        ctx: &Ctx,
        domain: &str,
        loc: &Loc,
        cmd: LockCmd,
        lock: &Flock,
    ) -> Result<Flock> {
        match self.target(ctx, loc).await? {
            Some(i) => self.sub(i).inodelk(ctx, domain, loc, cmd, lock).await,
            None => {
                self.sub(self.first_up()?)
                    .inodelk(ctx, domain, loc, cmd, lock)
                    .await
            }
        }
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
        self.sub(self.first_up()?)
            .entrylk(ctx, domain, loc, basename, cmd, typ)
            .await
    }

    async fn lk(&self, ctx: &Ctx, fd: &FdRef, cmd: LockCmd, lock: &Flock) -> Result<Flock> {
        let (i, f) = self.file_fd(ctx, fd).await?;
        self.sub(i).lk(ctx, &f, cmd, lock).await
    }

    async fn fallocate(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        self.file_unit(ctx, fd, |i, f| async move {
            self.sub(i).fallocate(ctx, &f, mode, offset, len).await
        })
        .await
    }

    async fn discard(&self, ctx: &Ctx, fd: &FdRef, offset: u64, len: u64) -> Result<()> {
        self.file_unit(ctx, fd, |i, f| async move {
            self.sub(i).discard(ctx, &f, offset, len).await
        })
        .await
    }
}
