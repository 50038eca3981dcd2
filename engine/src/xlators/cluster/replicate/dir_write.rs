//! Entry writes (GlusterFS's afr-dir-write.c): names made, removed and renamed as transactions
//! on their parent directories.

use super::common::{Afr, InodeInfo, NAMES_MAX};
use crate::fop::*;
use parking_lot::Mutex;
use std::sync::Arc;

impl Afr {
    pub(super) async fn create(
        self: &Arc<Self>,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt, PostParent)> {
        let a = self;
        let mut e = Afr::new_gfid(entry);
        // A file opened for writing is written next, most often: its data transaction's lock
        // and dirty mark come with the create (see `eager_adopt`) instead of costing the
        // first write a round trip of its own. A create that carries the data has none.
        let eager_owner =
            (a.eager_lock && flags & libc::O_ACCMODE != libc::O_RDONLY && entry.data.is_empty())
                .then(|| a.next_owner());
        if let Some(owner) = eager_owner {
            let (x, lock) = a.data_lock_at_create(owner);
            e.xattrs.extend(x);
            e.lock = Some(lock);
        }
        // What a brick that cannot grant the lock is asked for instead (a copy made only
        // then: every create passes here).
        let plain = || NewEntry {
            gfid: e.gfid,
            lock: None,
            ..entry.clone()
        };
        let l = Loc {
            gfid: None,
            ..loc.clone()
        };
        // The arbiter keeps names and metadata, never data.
        let no_data = NewEntry {
            data: bytes::Bytes::new(),
            ..e.clone()
        };
        // Each replica's fd, and whether its brick granted the lock asked for.
        let fds: Vec<Mutex<Option<(FdRef, bool)>>> = (0..a.n()).map(|_| Mutex::new(None)).collect();
        let (ia, parent) = a
            .entry_txn(loc, None, |i| {
                let (l, fds, plain) = (&l, &fds, &plain);
                let e = if a.is_arbiter(i) { &no_data } else { &e };
                async move {
                    let (fd, ia, parent, locked) = match a.sub(i).create(ctx, l, flags, e).await {
                        // The brick made nothing: nobody should hold a lock on a new inode,
                        // but whoever does, the file is made without it.
                        Err(Errno::EAGAIN) if e.lock.is_some() => {
                            let (fd, ia, parent) = a.sub(i).create(ctx, l, flags, &plain()).await?;
                            (fd, ia, parent, false)
                        }
                        r => {
                            let (fd, ia, parent) = r?;
                            (fd, ia, parent, e.lock.is_some())
                        }
                    };
                    *fds[i].lock() = Some((fd, locked));
                    Ok((ia, parent))
                }
            })
            .await?;
        let fds: Vec<Option<(FdRef, bool)>> = fds.into_iter().map(|m| m.into_inner()).collect();
        if let Some(owner) = eager_owner {
            let locked = fds
                .iter()
                .map(|f| f.as_ref().is_some_and(|f| f.1))
                .collect();
            a.eager_adopt(ia.gfid, owner, locked);
        }
        let fds: Vec<Option<FdRef>> = fds.into_iter().map(|f| f.map(|f| f.0)).collect();
        a.saw_name(ia.gfid, loc);
        // Made on every replica in one transaction: the copies are equal, which is all the
        // lookup that the next read (the kernel's getxattr before a write) would make to
        // learn it. A replica that missed the create is left for that lookup to find.
        if fds.iter().all(|f| f.is_some()) {
            if a.inodes.len() >= NAMES_MAX {
                a.inodes.clear();
            }
            a.inodes.entry(ia.gfid).or_insert_with(|| InodeInfo {
                good: (0..a.n()).map(|i| !a.is_arbiter(i)).collect(),
                split_brain: false,
                name: loc.parent.zip(loc.name.clone()),
                path: loc.path.clone(),
            });
        }
        Ok((a.wrap(ia.gfid, flags, false, fds), ia, parent))
    }

    pub(super) async fn mkdir(
        self: &Arc<Self>,
        ctx: &Ctx,
        loc: &Loc,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        let a = self;
        let e = Afr::new_gfid(entry);
        let (ia, parent) = a
            .entry_txn(loc, None, |i| a.sub(i).mkdir(ctx, loc, &e))
            .await?;
        a.saw_name(ia.gfid, loc);
        Ok((ia, parent))
    }

    pub(super) async fn mknod(
        self: &Arc<Self>,
        ctx: &Ctx,
        loc: &Loc,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        let a = self;
        let e = Afr::new_gfid(entry);
        let (ia, parent) = a
            .entry_txn(loc, None, |i| a.sub(i).mknod(ctx, loc, &e))
            .await?;
        a.saw_name(ia.gfid, loc);
        Ok((ia, parent))
    }

    pub(super) async fn symlink(
        self: &Arc<Self>,
        ctx: &Ctx,
        loc: &Loc,
        target: &str,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        let a = self;
        let e = Afr::new_gfid(entry);
        let (ia, parent) = a
            .entry_txn(loc, None, |i| a.sub(i).symlink(ctx, loc, target, &e))
            .await?;
        a.saw_name(ia.gfid, loc);
        Ok((ia, parent))
    }

    pub(super) async fn link(
        self: &Arc<Self>,
        ctx: &Ctx,
        oldloc: &Loc,
        newloc: &Loc,
    ) -> Result<Iatt> {
        let a = self;
        let ia = a
            .entry_txn(newloc, None, |i| a.sub(i).link(ctx, oldloc, newloc))
            .await?;
        a.saw_name(ia.gfid, newloc);
        Ok(ia)
    }

    pub(super) async fn unlink(self: &Arc<Self>, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        let a = self;
        let r = a.entry_txn(loc, None, |i| a.sub(i).unlink(ctx, loc)).await;
        if r.is_ok()
            && let Some(g) = loc.gfid
        {
            a.inodes.remove(&g);
            a.split_brain.remove(&g);
        }
        r
    }

    pub(super) async fn rmdir(self: &Arc<Self>, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        let a = self;
        let r = a.entry_txn(loc, None, |i| a.sub(i).rmdir(ctx, loc)).await;
        if r.is_ok()
            && let Some(g) = loc.gfid
        {
            a.inodes.remove(&g);
        }
        r
    }

    pub(super) async fn rename(
        self: &Arc<Self>,
        ctx: &Ctx,
        oldloc: &Loc,
        newloc: &Loc,
    ) -> Result<(Iatt, PostParent, PostParent)> {
        let a = self;
        let r = a
            .entry_txn(oldloc, Some(newloc), |i| {
                a.sub(i).rename(ctx, oldloc, newloc)
            })
            .await?;
        a.saw_name(r.0.gfid, newloc);
        Ok(r)
    }
}
