//! `features/utime` (GlusterFS's ctime feature, client side): every fop that changes an inode
//! takes one time here, above the cluster translators, and carries it down in its `Ctx`, so
//! each replica and each subvolume stores the same `trusted.glusterfs.mdata` and stat gives
//! the same times whichever copy answers. Which times a fop moves follows GlusterFS's
//! `utime_update_attribute_flags`; the brick (storage/posix) applies them.
//!
//! Lookups find files that carry no times yet (written before this feature, or by hand) and
//! give them ones made from what stat said, as GlusterFS's utime lookup does.

use crate::fop::*;
use crate::mdata::{self, Mdata, Stamp, flags as f};
use crate::options::{OptKind, OptionSpec};
use crate::registry::XlatorType;
use crate::xlator::{Xlator, XlatorBase};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;

pub const OPTIONS: &[OptionSpec] = &[OptionSpec::new(
    "noatime",
    OptKind::Bool,
    Some("on"),
    "reads and opens leave the access time alone (GlusterFS's ctime.noatime)",
)];

pub fn xlator_type() -> XlatorType {
    XlatorType {
        type_name: "features/utime",
        options: OPTIONS,
        min_children: 1,
        max_children: 1,
        build: Arc::new(|base, o| {
            Ok(Arc::new(Utime {
                base,
                noatime: o.bool_or("noatime", true),
            }))
        }),
    }
}

pub struct Utime {
    base: XlatorBase,
    noatime: bool,
}

const NEW_ENTRY: u8 = f::ATIME | f::CTIME | f::MTIME | f::PAR_CTIME | f::PAR_MTIME;
const NAME_CHANGE: u8 = f::CTIME | f::PAR_CTIME | f::PAR_MTIME;
const DATA: u8 = f::CTIME | f::MTIME;

/// The fop's own time, or the one the caller chose ([`Ctx::at`]), with the times this fop
/// moves.
fn stamped(ctx: &Ctx, flags: u8) -> Ctx {
    let time = ctx.stamp.as_ref().map(|s| s.time);
    Ctx {
        stamp: (!ctx.is_internal()).then(|| Stamp {
            time: time.unwrap_or_else(Timespec::now),
            flags,
        }),
        ..ctx.clone()
    }
}

impl Utime {
    fn atime_flags(&self) -> u8 {
        if self.noatime { 0 } else { f::ATIME }
    }

    /// A read-side fop: stamped only when access times are kept.
    fn maybe_stamped(&self, ctx: &Ctx) -> Option<Ctx> {
        (!self.noatime).then(|| stamped(ctx, f::ATIME))
    }
}

#[async_trait]
impl Xlator for Utime {
    fn base(&self) -> &XlatorBase {
        &self.base
    }

    async fn lookup(&self, ctx: &Ctx, loc: &Loc, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        let child = self.base.first_child()?;
        let mut w = want.clone();
        w.insert(mdata::KEY.to_string(), Bytes::new());
        let (ia, mut x) = child.lookup(ctx, loc, &w).await?;
        let have = x.get(mdata::KEY).and_then(|v| Mdata::decode(v));
        if have.is_none() && !ia.gfid.is_null() {
            // Not fatal if it fails (a replica away, a read-only brick): stat still answers
            // from the brick's own times, and the next lookup tries again.
            let set = Xattrs::from([(
                mdata::KEY.to_string(),
                Bytes::copy_from_slice(&Mdata::of_iatt(&ia).encode()),
            )]);
            if let Err(e) = child
                .setxattr(&Ctx::root(), &Loc::gfid(ia.gfid), &set, 0)
                .await
            {
                tracing::debug!(xlator = %self.base.name, gfid = %ia.gfid, "could not give a file its times: {e}");
            }
        }
        if !want.contains_key(mdata::KEY) {
            x.remove(mdata::KEY);
        }
        Ok((ia, x))
    }

    async fn setattr(&self, ctx: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
        let c = stamped(ctx, f::CTIME);
        let now = c.stamp.map(|s| s.time).unwrap_or_else(Timespec::now);
        // "Now" is this stamp, not each brick's clock, so replicas agree.
        let fix = |t: Option<SetTime>| {
            t.map(|t| match t {
                SetTime::Now => SetTime::At(now),
                at => at,
            })
        };
        let attr = SetAttr {
            atime: fix(attr.atime),
            mtime: fix(attr.mtime),
            ..attr.clone()
        };
        self.base.first_child()?.setattr(&c, loc, &attr).await
    }

    async fn create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt, PostParent)> {
        self.base
            .first_child()?
            .create(&stamped(ctx, NEW_ENTRY), loc, flags, entry)
            .await
    }

    async fn open(&self, ctx: &Ctx, loc: &Loc, flags: i32) -> Result<FdRef> {
        let truncates = flags & libc::O_TRUNC != 0 && flags & libc::O_ACCMODE != libc::O_RDONLY;
        let which = if truncates { DATA } else { self.atime_flags() };
        let c = if which != 0 {
            stamped(ctx, which)
        } else {
            ctx.clone()
        };
        self.base.first_child()?.open(&c, loc, flags).await
    }

    async fn read(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Bytes> {
        let c = self.maybe_stamped(ctx);
        self.base
            .first_child()?
            .read(c.as_ref().unwrap_or(ctx), fd, offset, size)
            .await
    }

    async fn write(&self, ctx: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
        self.base
            .first_child()?
            .write(&stamped(ctx, DATA), fd, offset, data)
            .await
    }

    async fn truncate(&self, ctx: &Ctx, loc: &Loc, size: u64) -> Result<Iatt> {
        self.base
            .first_child()?
            .truncate(&stamped(ctx, DATA), loc, size)
            .await
    }

    async fn ftruncate(&self, ctx: &Ctx, fd: &FdRef, size: u64) -> Result<Iatt> {
        self.base
            .first_child()?
            .ftruncate(&stamped(ctx, DATA), fd, size)
            .await
    }

    async fn mkdir(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        self.base
            .first_child()?
            .mkdir(&stamped(ctx, NEW_ENTRY), loc, entry)
            .await
    }

    async fn mknod(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        self.base
            .first_child()?
            .mknod(&stamped(ctx, NEW_ENTRY), loc, entry)
            .await
    }

    async fn symlink(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        target: &str,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        self.base
            .first_child()?
            .symlink(&stamped(ctx, NEW_ENTRY), loc, target, entry)
            .await
    }

    async fn link(&self, ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        self.base
            .first_child()?
            .link(&stamped(ctx, NAME_CHANGE), oldloc, newloc)
            .await
    }

    async fn unlink(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        self.base
            .first_child()?
            .unlink(&stamped(ctx, NAME_CHANGE), loc)
            .await
    }

    async fn rmdir(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        self.base
            .first_child()?
            .rmdir(&stamped(ctx, NAME_CHANGE), loc)
            .await
    }

    async fn rename(
        &self,
        ctx: &Ctx,
        oldloc: &Loc,
        newloc: &Loc,
    ) -> Result<(Iatt, PostParent, PostParent)> {
        self.base
            .first_child()?
            .rename(&stamped(ctx, NAME_CHANGE), oldloc, newloc)
            .await
    }

    async fn opendir(&self, ctx: &Ctx, loc: &Loc) -> Result<FdRef> {
        let c = self.maybe_stamped(ctx);
        self.base
            .first_child()?
            .opendir(c.as_ref().unwrap_or(ctx), loc)
            .await
    }

    async fn setxattr(&self, ctx: &Ctx, loc: &Loc, xattrs: &Xattrs, flags: i32) -> Result<()> {
        self.base
            .first_child()?
            .setxattr(&stamped(ctx, f::CTIME), loc, xattrs, flags)
            .await
    }

    async fn removexattr(&self, ctx: &Ctx, loc: &Loc, name: &str) -> Result<()> {
        self.base
            .first_child()?
            .removexattr(&stamped(ctx, f::CTIME), loc, name)
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
        self.base
            .first_child()?
            .fallocate(&stamped(ctx, DATA), fd, mode, offset, len)
            .await
    }

    async fn discard(&self, ctx: &Ctx, fd: &FdRef, offset: u64, len: u64) -> Result<()> {
        self.base
            .first_child()?
            .discard(&stamped(ctx, DATA), fd, offset, len)
            .await
    }
}
