//! `storage/posix`: files as real files on a brick directory, in GlusterFS 10's on-disk format
//! (DESIGN §5), so a brick written here is served by GlusterFS and the reverse.
//!
//! Every inode carries `trusted.gfid` and has a handle under `.glusterfs/ab/cd/<gfid>`: a hard
//! link for files, symlinks and special files, a symlink `../../xy/zw/<pgfid>/<name>` for
//! directories. Fops address inodes by gfid through these handles (`handle`), so no request
//! needs a path; times come from `trusted.glusterfs.mdata` (`times`). GlusterFS splits its
//! posix the same way: handles, entry fops (`entry`), inode and fd fops (`inode`), xattrop.

mod common;
mod entry;
mod handle;
mod inode;
mod times;
mod xattrop;

pub use common::Posix;
pub(crate) use common::metadata;
pub use handle::gfid2path_key;
pub use times::iatt_from;

use async_trait::async_trait;
use bytes::Bytes;
use common::blocking;
use engine::options::{OptKind, OptionSpec, Options};
use engine::registry::XlatorType;
use engine::*;
use std::path::PathBuf;
use std::sync::Arc;

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("directory", OptKind::Str, None, "the brick directory"),
    OptionSpec::new(
        "volume-id",
        OptKind::Str,
        None,
        "the volume's id; a brick holding another id is refused",
    ),
];

pub fn xlator_type() -> XlatorType {
    XlatorType {
        type_name: "storage/posix",
        options: OPTIONS,
        min_children: 0,
        max_children: 0,
        build: Arc::new(|base, o: &Options| {
            let dir = o.get("directory").ok_or("option directory is required")?;
            let vid = o.get("volume-id").ok_or("option volume-id is required")?;
            let vid = Gfid::parse(vid).ok_or_else(|| format!("volume-id {vid:?} is not a uuid"))?;
            Ok(Arc::new(Posix::new(base, PathBuf::from(dir), vid)))
        }),
    }
}

#[async_trait]
impl Xlator for Posix {
    fn base(&self) -> &XlatorBase {
        &self.base
    }

    async fn init(&self) -> Result<()> {
        let (root, vid) = (self.h.root.clone(), self.volume_id);
        blocking(move || {
            Posix::prepare_brick(&root, &vid).map_err(|m| {
                tracing::error!(brick = %root.display(), "{m}");
                Errno::EINVAL
            })
        })
        .await?;
        self.base.notify_parents(Event::ChildUp).await;
        Ok(())
    }

    async fn lookup(&self, _ctx: &Ctx, loc: &Loc, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        self.do_lookup(loc, want).await
    }

    async fn stat(&self, _ctx: &Ctx, loc: &Loc) -> Result<Iatt> {
        self.do_stat(loc).await
    }

    async fn fstat(&self, _ctx: &Ctx, fd: &FdRef) -> Result<Iatt> {
        self.do_fstat(fd).await
    }

    async fn setattr(&self, ctx: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
        self.do_setattr(ctx, loc, attr).await
    }

    async fn access(&self, _ctx: &Ctx, loc: &Loc, _mask: u32) -> Result<()> {
        self.do_access(loc).await
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
        self.do_open(ctx, loc, flags).await
    }

    async fn rchecksum(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        len: u32,
    ) -> Result<(u32, [u8; 32])> {
        use sha2::Digest;
        let data = self.read(ctx, fd, offset, len).await?;
        blocking(move || Ok((data.len() as u32, sha2::Sha256::digest(&data).into()))).await
    }

    async fn read(&self, _ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Bytes> {
        self.do_read(fd, offset, size).await
    }

    async fn write(&self, ctx: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
        self.do_write(ctx, fd, offset, data).await
    }

    async fn truncate(&self, ctx: &Ctx, loc: &Loc, size: u64) -> Result<Iatt> {
        self.do_setattr(
            ctx,
            loc,
            &SetAttr {
                size: Some(size),
                ..Default::default()
            },
        )
        .await
    }

    async fn ftruncate(&self, ctx: &Ctx, fd: &FdRef, size: u64) -> Result<Iatt> {
        self.do_ftruncate(ctx, fd, size).await
    }

    async fn flush(&self, _ctx: &Ctx, _fd: &FdRef) -> Result<()> {
        Ok(())
    }

    async fn fsync(&self, _ctx: &Ctx, fd: &FdRef, datasync: bool) -> Result<()> {
        self.do_fsync(fd, datasync).await
    }

    async fn release(&self, fd: &FdRef) {
        if fd.ctx_del(self.base.id).is_some() && !fd.is_dir {
            let (h, g) = (self.h.clone(), fd.gfid);
            // Off the runtime: the last close of an unlinked file removes it from disk.
            let _ = blocking(move || {
                h.closed(g);
                Ok(())
            })
            .await;
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

    async fn readlink(&self, _ctx: &Ctx, loc: &Loc) -> Result<String> {
        self.do_readlink(loc).await
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

    async fn readdir(&self, _ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Vec<Dirent>> {
        self.readdirp_inner(fd, offset, size, None).await
    }

    async fn readdirp(
        &self,
        _ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: &Xattrs,
    ) -> Result<Vec<Dirent>> {
        self.readdirp_inner(fd, offset, size, Some(want.clone()))
            .await
    }

    async fn statfs(&self, _ctx: &Ctx, _loc: &Loc) -> Result<Statvfs> {
        let root = self.h.root.clone();
        blocking(move || {
            let c = handle::to_cstring(&root)?;
            let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
            if unsafe { libc::statvfs(c.as_ptr(), &mut s) } < 0 {
                return Err(Errno::from_io(&std::io::Error::last_os_error()));
            }
            Ok(Statvfs {
                bsize: s.f_bsize,
                frsize: s.f_frsize,
                blocks: s.f_blocks,
                bfree: s.f_bfree,
                bavail: s.f_bavail,
                files: s.f_files,
                ffree: s.f_ffree,
                favail: s.f_favail,
                namemax: s.f_namemax,
            })
        })
        .await
    }

    async fn getxattr(&self, _ctx: &Ctx, loc: &Loc, name: Option<&str>) -> Result<Xattrs> {
        self.do_getxattr(loc, name).await
    }

    async fn setxattr(&self, ctx: &Ctx, loc: &Loc, xattrs: &Xattrs, flags: i32) -> Result<()> {
        self.do_setxattr(ctx, loc, xattrs, flags).await
    }

    async fn removexattr(&self, ctx: &Ctx, loc: &Loc, name: &str) -> Result<()> {
        self.do_removexattr(ctx, loc, name).await
    }

    async fn xattrop(
        &self,
        _ctx: &Ctx,
        loc: &Loc,
        op: XattropOp,
        xattrs: &Xattrs,
    ) -> Result<Xattrs> {
        self.do_xattrop(loc, op, xattrs).await
    }

    async fn fallocate(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        self.do_fallocate(ctx, fd, mode, offset, len).await
    }

    async fn discard(&self, ctx: &Ctx, fd: &FdRef, offset: u64, len: u64) -> Result<()> {
        self.do_fallocate(
            ctx,
            fd,
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset,
            len,
        )
        .await
    }

    async fn inodelk(
        &self,
        _ctx: &Ctx,
        _d: &str,
        _loc: &Loc,
        _cmd: LockCmd,
        _lock: &Flock,
    ) -> Result<Flock> {
        // Locks live in features/locks above this translator.
        Err(Errno::ENOSYS)
    }

    async fn entrylk(
        &self,
        _ctx: &Ctx,
        _d: &str,
        _loc: &Loc,
        _b: Option<&str>,
        _cmd: EntrylkCmd,
        _t: EntrylkType,
    ) -> Result<()> {
        Err(Errno::ENOSYS)
    }

    async fn lk(&self, _ctx: &Ctx, _fd: &FdRef, _cmd: LockCmd, _lock: &Flock) -> Result<Flock> {
        Err(Errno::ENOSYS)
    }
}
