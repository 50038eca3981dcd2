//! Following a file that a rebalance moves (GlusterFS's dht-helper.c rebalance checks), by the
//! marks the migrator leaves on the source (see `rebalance::migrate`):
//! - phase 1, the source's mode has sticky + setgid while its data is copied: a change that
//!   reached it then waits for the move to end (the migrator's lock in
//!   [`MIGRATE_DOMAIN`]) and is made again where the file went;
//! - phase 2, the source is a linkto file (sticky only) or gone: the fop goes again to
//!   where the file is now.
//!
//! So a write acknowledged during a move is on the destination, and nothing an application
//! sees fails: every answer it gets is from the copy that stays.

use super::common::{DhtFd, Distribute};
use crate::fop::keys;
use crate::fop::*;
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// GlusterFS's DHT_FILE_MIGRATE_DOMAIN: the migrator holds a write inodelk on the source
/// in it from the start of the move to its end.
pub const MIGRATE_DOMAIN: &str = "dht.file.migrate";

/// Sticky + setgid on a regular file: data being copied off it (IS_DHT_MIGRATION_PHASE1).
pub const PHASE1_BITS: u32 = libc::S_ISVTX | libc::S_ISGID;

pub fn in_phase1(ia: &Iatt) -> bool {
    ia.is_reg() && ia.mode & PHASE1_BITS == PHASE1_BITS
}

/// The source after its data was moved: a linkto file's mode (IS_DHT_MIGRATION_PHASE2).
pub fn in_phase2(ia: &Iatt) -> bool {
    ia.mode == keys::DHT_LINKFILE_MODE
}

/// What callers see of a file mid-move: its own mode (DHT_STRIP_PHASE1_FLAGS).
pub fn strip_phase1(mut ia: Iatt) -> Iatt {
    if in_phase1(&ia) {
        ia.mode &= !PHASE1_BITS;
    }
    ia
}

/// What an answer from the file's subvolume says about a move.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Nothing: the answer stands.
    Settled,
    /// The fop reached the source while it was being copied.
    Copying,
    /// The file is no longer there.
    Moved,
}

fn judge_iatt(r: &Result<Iatt>) -> Seen {
    match r {
        Ok(ia) if in_phase1(ia) => Seen::Copying,
        Ok(ia) if in_phase2(ia) => Seen::Moved,
        Err(Errno::ENOENT) | Err(Errno::ESTALE) => Seen::Moved,
        _ => Seen::Settled,
    }
}

fn judge_unit(r: &Result<()>) -> Seen {
    match r {
        Err(Errno::ENOENT) | Err(Errno::ESTALE) => Seen::Moved,
        _ => Seen::Settled,
    }
}

/// How often one fop follows a file before it takes the answer it has.
const FOLLOWS: usize = 3;

impl Distribute {
    /// Waits until no migrator holds file `gfid` at subvolume `i`.
    pub(super) async fn wait_migration(&self, gfid: Gfid, i: usize) {
        let owner = self.new_owner();
        if self
            .whole_inodelk(i, MIGRATE_DOMAIN, gfid, owner, LockType::Read)
            .await
            .is_ok()
        {
            let _ = self
                .whole_inodelk(i, MIGRATE_DOMAIN, gfid, owner, LockType::Unlock)
                .await;
        }
    }

    /// Where file `gfid` is now, whatever was cached.
    pub(super) async fn refind(&self, ctx: &Ctx, gfid: Gfid) -> Result<usize> {
        self.cached.remove(&gfid);
        self.cached_subvol(ctx, gfid).await
    }

    /// Points `fd` at the file where it is now: a real fd is opened there (and the old one
    /// released), an anonymous one just goes there.
    async fn reopen(&self, ctx: &Ctx, fd: &FdRef) -> Result<(usize, FdRef)> {
        let i = self.refind(ctx, fd.gfid).await?;
        let old = self.dht_fd(fd).and_then(|d| d.file.clone());
        let Some((was, old_fd)) = old else {
            return Ok((i, Fd::anonymous(fd.gfid)));
        };
        if was == i {
            return Ok((i, old_fd));
        }
        let flags = fd.flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC);
        let child = self.sub(i).open(ctx, &Loc::gfid(fd.gfid), flags).await?;
        fd.ctx_set(
            self.base.id,
            Arc::new(DhtFd {
                file: Some((i, child.clone())),
                dirs: vec![],
            }),
        );
        self.sub(was).release(&old_fd).await;
        Ok((i, child))
    }

    /// Runs an fd fop at the file's subvolume, following the file if a rebalance moves it.
    async fn follow_fd<T, F, Fut>(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        op: F,
        judge: fn(&Result<T>) -> Seen,
    ) -> Result<T>
    where
        F: Fn(usize, FdRef) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let (mut i, mut f) = self.file_fd(ctx, fd).await?;
        let mut n = 0;
        loop {
            let r = op(i, f.clone()).await;
            let seen = judge(&r);
            n += 1;
            if seen == Seen::Settled || n == FOLLOWS {
                return r;
            }
            self.migrating.store(true, Ordering::Relaxed);
            if seen == Seen::Copying {
                self.wait_migration(fd.gfid, i).await;
            }
            let Ok((ni, nf)) = self.reopen(ctx, fd).await else {
                return r;
            };
            // Still there after the move ended: it was given up, and the answer stands.
            if ni == i && seen == Seen::Copying {
                return r;
            }
            (i, f) = (ni, nf);
        }
    }

    /// As [`Self::follow_fd`] for a fop on a file by its location.
    async fn follow_loc<F, Fut>(&self, ctx: &Ctx, gfid: Gfid, first: usize, op: F) -> Result<Iatt>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<Iatt>>,
    {
        let mut i = first;
        let mut n = 0;
        loop {
            let r = op(i).await;
            let seen = judge_iatt(&r);
            n += 1;
            if seen == Seen::Settled || n == FOLLOWS {
                return r.map(strip_phase1);
            }
            self.migrating.store(true, Ordering::Relaxed);
            if seen == Seen::Copying {
                self.wait_migration(gfid, i).await;
            }
            let Ok(ni) = self.refind(ctx, gfid).await else {
                return r.map(strip_phase1);
            };
            if ni == i && seen == Seen::Copying {
                return r.map(strip_phase1);
            }
            i = ni;
        }
    }

    pub(super) async fn file_write(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        data: Bytes,
    ) -> Result<Iatt> {
        self.follow_fd(
            ctx,
            fd,
            |i, f| {
                let data = data.clone();
                async move { self.sub(i).write(ctx, &f, offset, data).await }
            },
            judge_iatt,
        )
        .await
        .map(strip_phase1)
    }

    pub(super) async fn file_ftruncate(&self, ctx: &Ctx, fd: &FdRef, size: u64) -> Result<Iatt> {
        self.follow_fd(
            ctx,
            fd,
            |i, f| async move { self.sub(i).ftruncate(ctx, &f, size).await },
            judge_iatt,
        )
        .await
        .map(strip_phase1)
    }

    pub(super) async fn file_fstat(&self, ctx: &Ctx, fd: &FdRef) -> Result<Iatt> {
        // A stat changes nothing, so a source being copied still answers right.
        fn judge(r: &Result<Iatt>) -> Seen {
            match judge_iatt(r) {
                Seen::Copying => Seen::Settled,
                s => s,
            }
        }
        self.follow_fd(
            ctx,
            fd,
            |i, f| async move { self.sub(i).fstat(ctx, &f).await },
            judge,
        )
        .await
        .map(strip_phase1)
    }

    /// A read; a short one, while files may be moving, is checked against a source the move
    /// emptied.
    pub(super) async fn file_read(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
    ) -> Result<Bytes> {
        let (mut i, mut f) = self.file_fd(ctx, fd).await?;
        for n in 1..=FOLLOWS {
            let r = self.sub(i).read(ctx, &f, offset, size).await;
            let moved = match &r {
                Err(Errno::ENOENT) | Err(Errno::ESTALE) => true,
                Ok(b) if b.len() < size as usize && self.migrating.load(Ordering::Relaxed) => {
                    match self.sub(i).fstat(ctx, &f).await {
                        Err(Errno::ENOENT) | Err(Errno::ESTALE) => true,
                        Ok(ia) => in_phase2(&ia) || ia.nlink == 0,
                        Err(_) => false,
                    }
                }
                _ => false,
            };
            if !moved || n == FOLLOWS {
                return r;
            }
            self.migrating.store(true, Ordering::Relaxed);
            match self.reopen(ctx, fd).await {
                Ok((ni, nf)) if ni != i => (i, f) = (ni, nf),
                _ => return r,
            }
        }
        unreachable!("the loop returns on its last round")
    }

    pub(super) async fn file_unit<F, Fut>(&self, ctx: &Ctx, fd: &FdRef, op: F) -> Result<()>
    where
        F: Fn(usize, FdRef) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        self.follow_fd(ctx, fd, op, judge_unit).await
    }

    pub(super) async fn file_setattr(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        i: usize,
        attr: &SetAttr,
    ) -> Result<Iatt> {
        let Some(g) = loc.gfid else {
            return self.sub(i).setattr(ctx, loc, attr).await;
        };
        let at = Loc::gfid(g);
        self.follow_loc(ctx, g, i, |i| self.sub(i).setattr(ctx, &at, attr))
            .await
    }

    pub(super) async fn file_truncate(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        i: usize,
        size: u64,
    ) -> Result<Iatt> {
        let Some(g) = loc.gfid else {
            return self.sub(i).truncate(ctx, loc, size).await;
        };
        let at = Loc::gfid(g);
        self.follow_loc(ctx, g, i, |i| self.sub(i).truncate(ctx, &at, size))
            .await
    }

    /// A fop on a file at subvolume `i` (from the cache); if the file is no longer there (a
    /// rebalance moved it), it goes again to where the file is now.
    pub(super) async fn on_file<T, F, Fut>(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        i: usize,
        op: F,
    ) -> Result<T>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        match op(i).await {
            Err(Errno::ENOENT) | Err(Errno::ESTALE) if loc.gfid.is_some() => {
                let g = loc.gfid.expect("checked");
                match self.refind(ctx, g).await {
                    Ok(j) if j != i => op(j).await,
                    _ => op(i).await,
                }
            }
            r => r,
        }
    }
}
