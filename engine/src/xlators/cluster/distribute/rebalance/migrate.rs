//! Moving one file to another subvolume, by GlusterFS's protocol (dht-rebalance.c's
//! `dht_migrate_file`), so a GlusterFS client on the same bricks follows it too:
//! 1. a write inodelk on the source in `dht.file.migrate`, held to the end;
//! 2. the destination made with the file's gfid as a linkto file pointing back (or the
//!    linkto a lookup left there reused);
//! 3. phase 1: the source gets sticky + setgid and a linkto to the destination, so a client
//!    whose change reaches it now makes it again at the destination once the move ends;
//! 4. the data copied, holes left as holes, then fsync; the xattrs, owner, mode and times;
//! 5. phase 2: the source becomes a linkto file (mode sticky only, truncated), then its name
//!    is removed unless it is the hashed subvolume's (which keeps it as the linkto).
//!
//! A move given up before the destination holds the file is undone, so the file stays whole
//! where it was; one cut short by a crash is finished by the next run (the marks say where).

use super::super::common::{Distribute, is_linkto, with_dht_keys};
use super::super::follow::{MIGRATE_DOMAIN, PHASE1_BITS, in_phase1};
use crate::fop::keys;
use crate::fop::*;
use crate::mdata;
use bytes::Bytes;
use std::sync::atomic::Ordering;

/// The most bytes one read or write of a move carries.
const CHUNK: u64 = 1 << 20;

/// What became of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Moved, with this many bytes of data.
    Moved(u64),
    /// Left where it is, for the reason given.
    Skipped(&'static str),
    /// Removed or renamed by a client meanwhile: nothing to move.
    Gone,
}

/// xattrs a move never copies: the destination's own bookkeeping, or handled apart.
fn copied(key: &str) -> bool {
    ![
        "trusted.afr.",
        keys::DHT_LAYOUT, // also covers the linkto key
        "trusted.gfid",
        keys::GFID2PATH_PREFIX,
        keys::MDATA,
        "trusted.glusterfs.volume-id",
        "trusted.pgfid.",
        "glusterfs.",
    ]
    .iter()
    .any(|p| key.starts_with(p))
}

fn linkto_value(name: &str) -> Bytes {
    let mut v = name.as_bytes().to_vec();
    v.push(0);
    Bytes::from(v)
}

/// A file to move: its name in directory `dir` and the gfid the crawl saw.
pub struct Candidate<'a> {
    pub dir: Gfid,
    pub name: &'a str,
    pub gfid: Gfid,
    pub from: usize,
    pub to: usize,
    pub hashed: usize,
}

impl Distribute {
    fn migrator_ctx(&self) -> Ctx {
        Ctx {
            pid: INTERNAL_PID,
            lk_owner: self.new_owner(),
            ..Ctx::root()
        }
    }

    pub(in super::super) async fn migrate_file(&self, c: &Candidate<'_>) -> Result<Outcome> {
        let ctx = self.migrator_ctx();
        let owner = ctx.lk_owner;
        let lock = |typ| self.whole_inodelk(c.from, MIGRATE_DOMAIN, c.gfid, owner, typ);
        match lock(LockType::Write).await {
            Ok(()) => {}
            Err(Errno::ENOENT) | Err(Errno::ESTALE) => return Ok(Outcome::Gone),
            Err(e) => return Err(e),
        }
        self.migrating.store(true, Ordering::Relaxed);
        let r = self.migrate_locked(&ctx, c).await;
        let _ = lock(LockType::Unlock).await;
        match r {
            Err(Errno::ENOENT) | Err(Errno::ESTALE) => Ok(Outcome::Gone),
            r => r,
        }
    }

    async fn migrate_locked(&self, ctx: &Ctx, c: &Candidate<'_>) -> Result<Outcome> {
        let named = Loc::child(c.dir, c.name);
        let w = with_dht_keys(&Xattrs::new());
        let (sia, sx) = self.sub(c.from).lookup(ctx, &named, &w).await?;
        if sia.gfid != c.gfid || is_linkto(&sia, &sx) {
            return Ok(Outcome::Gone);
        }
        if sia.is_dir() {
            return Ok(Outcome::Skipped("a directory"));
        }
        if sia.nlink > 1 {
            return Ok(Outcome::Skipped("hard links"));
        }
        if !sia.is_reg() {
            return self.migrate_special(ctx, c, &sia).await;
        }
        let mode = sia.mode & 0o7777 & !PHASE1_BITS;
        let at = Loc::gfid(c.gfid);
        let (to, from) = (self.sub(c.to), self.sub(c.from));
        // A lookup may make the linkto at the destination between our look and our mknod:
        // then it is looked at again and reused.
        let mut tries = 0;
        loop {
            tries += 1;
            match to.lookup(ctx, &named, &w).await {
                Ok((tia, tx)) if tia.gfid == c.gfid && is_linkto(&tia, &tx) => {
                    let xs = Xattrs::from([(
                        keys::DHT_LINKTO.to_string(),
                        linkto_value(&self.names[c.from]),
                    )]);
                    to.setxattr(ctx, &at, &xs, 0).await?;
                    break;
                }
                // Copied by a run cut short after the destination took over: only the
                // source's phase 2 is left.
                Ok((tia, _)) if tia.gfid == c.gfid && in_phase1(&sia) => {
                    self.finish_source(ctx, c).await?;
                    return Ok(Outcome::Moved(tia.size));
                }
                Ok(_) => {
                    return Ok(Outcome::Skipped(
                        "another file has its name at the destination",
                    ));
                }
                Err(Errno::ENOENT) => {
                    let e = NewEntry {
                        gfid: c.gfid,
                        mode: keys::DHT_LINKFILE_MODE,
                        umask: 0,
                        rdev: 0,
                        xattrs: Xattrs::from([(
                            keys::DHT_LINKTO.to_string(),
                            linkto_value(&self.names[c.from]),
                        )]),
                        ..Default::default()
                    };
                    match to.mknod(ctx, &named, &e).await {
                        Ok(_) => break,
                        Err(Errno::EEXIST) if tries < 3 => continue,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        // Phase 1.
        let mark = Xattrs::from([(
            keys::DHT_LINKTO.to_string(),
            linkto_value(&self.names[c.to]),
        )]);
        let phase1 = SetAttr {
            mode: Some(mode | PHASE1_BITS),
            ..Default::default()
        };
        if let Err(e) = async {
            from.setxattr(ctx, &at, &mark, 0).await?;
            from.setattr(ctx, &at, &phase1).await
        }
        .await
        {
            self.undo(ctx, c, mode).await;
            return Err(e);
        }
        let bytes = match self.copy_over(ctx, c, &sia, mode).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(xlator = %self.base.name, gfid = %c.gfid, from = %self.names[c.from], to = %self.names[c.to], "moving a file failed, left where it was: {e}");
                self.undo(ctx, c, mode).await;
                return Err(e);
            }
        };
        self.finish_source(ctx, c).await?;
        Ok(Outcome::Moved(bytes))
    }

    /// The data, xattrs, owner, mode and times of the source onto the destination, which then
    /// stops being a linkto file.
    async fn copy_over(&self, ctx: &Ctx, c: &Candidate<'_>, sia: &Iatt, mode: u32) -> Result<u64> {
        let at = Loc::gfid(c.gfid);
        let (to, from) = (self.sub(c.to), self.sub(c.from));
        let sfd = from.open(ctx, &at, libc::O_RDONLY).await?;
        let tfd = match to.open(ctx, &at, libc::O_WRONLY).await {
            Ok(f) => f,
            Err(e) => {
                from.release(&sfd).await;
                return Err(e);
            }
        };
        let r = async {
            // Read after phase 1 began: whatever reaches the source from here on is made
            // again at the destination by the client that made it.
            let size = from.fstat(ctx, &sfd).await?.size;
            let mut off = 0u64;
            while off < size {
                let want = CHUNK.min(size - off) as u32;
                let data = from.read(ctx, &sfd, off, want).await?;
                if data.is_empty() {
                    break;
                }
                let n = data.len() as u64;
                // A block of zeros stays a hole, as GlusterFS's migration leaves it.
                if data.iter().any(|b| *b != 0) {
                    to.write(ctx, &tfd, off, data).await?;
                }
                off += n;
            }
            to.ftruncate(ctx, &tfd, size).await?;
            to.fsync(ctx, &tfd, false).await?;
            Ok::<u64, Errno>(size)
        }
        .await;
        from.release(&sfd).await;
        to.release(&tfd).await;
        let size = r?;
        let all = from.getxattr(ctx, &at, None).await.unwrap_or_default();
        let keep: Xattrs = all.into_iter().filter(|(k, _)| copied(k)).collect();
        if !keep.is_empty() {
            to.setxattr(ctx, &at, &keep, 0).await?;
        }
        let owner = SetAttr {
            mode: Some(mode),
            uid: Some(sia.uid),
            gid: Some(sia.gid),
            ..Default::default()
        };
        to.setattr(ctx, &at, &owner).await?;
        if let Ok(t) = from.getxattr(ctx, &at, Some(mdata::KEY)).await
            && let Some(v) = t.get(mdata::KEY)
        {
            let xs = Xattrs::from([(mdata::KEY.to_string(), v.clone())]);
            to.setxattr(ctx, &at, &xs, 0).await?;
        }
        to.removexattr(ctx, &at, keys::DHT_LINKTO).await?;
        Ok(size)
    }

    /// Phase 2: the source becomes a linkto file, then goes unless the hashed subvolume keeps
    /// it; the hashed subvolume's linkto names the destination.
    async fn finish_source(&self, ctx: &Ctx, c: &Candidate<'_>) -> Result<()> {
        let at = Loc::gfid(c.gfid);
        let from = self.sub(c.from);
        let linkto = SetAttr {
            mode: Some(keys::DHT_LINKFILE_MODE & 0o7777),
            ..Default::default()
        };
        from.setattr(ctx, &at, &linkto).await?;
        from.truncate(ctx, &at, 0).await?;
        self.cached.insert(c.gfid, c.to);
        let named = Loc {
            gfid: Some(c.gfid),
            ..Loc::child(c.dir, c.name)
        };
        self.name_hints.remove(&(c.dir, c.name.to_string()));
        if c.from != c.hashed {
            match from.unlink(ctx, &named).await {
                Ok(_) | Err(Errno::ENOENT) | Err(Errno::ESTALE) => {}
                Err(e) => return Err(e),
            }
        }
        if c.hashed != c.to && c.hashed != c.from {
            self.point_linkto(ctx, c).await?;
        }
        Ok(())
    }

    /// Makes the hashed subvolume's linkto for the file name its new place.
    async fn point_linkto(&self, ctx: &Ctx, c: &Candidate<'_>) -> Result<()> {
        let named = Loc::child(c.dir, c.name);
        let w = with_dht_keys(&Xattrs::new());
        let h = self.sub(c.hashed);
        match h.lookup(ctx, &named, &w).await {
            Ok((ia, x)) if ia.gfid == c.gfid && is_linkto(&ia, &x) => {
                let xs = Xattrs::from([(
                    keys::DHT_LINKTO.to_string(),
                    linkto_value(&self.names[c.to]),
                )]);
                h.setxattr(ctx, &Loc::gfid(c.gfid), &xs, 0).await
            }
            Ok(_) => Ok(()),
            Err(Errno::ENOENT) => {
                match self.make_linkto(ctx, c.hashed, c.to, &named, c.gfid).await {
                    Ok(()) | Err(Errno::EEXIST) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Gives a move up before the destination held the file: the destination's partial copy
    /// goes, the source loses its marks.
    async fn undo(&self, ctx: &Ctx, c: &Candidate<'_>, mode: u32) {
        let at = Loc::gfid(c.gfid);
        let to = self.sub(c.to);
        let w = with_dht_keys(&Xattrs::new());
        if let Ok((tia, tx)) = to.lookup(ctx, &Loc::child(c.dir, c.name), &w).await
            && tia.gfid == c.gfid
            && is_linkto(&tia, &tx)
            && c.to != c.hashed
        {
            let _ = to
                .unlink(
                    ctx,
                    &Loc {
                        gfid: Some(c.gfid),
                        ..Loc::child(c.dir, c.name)
                    },
                )
                .await;
        }
        let from = self.sub(c.from);
        let _ = from
            .setattr(
                ctx,
                &at,
                &SetAttr {
                    mode: Some(mode),
                    ..Default::default()
                },
            )
            .await;
        if c.from != c.hashed {
            let _ = from.removexattr(ctx, &at, keys::DHT_LINKTO).await;
        }
    }

    /// A symlink or device node: made again at the destination with its gfid, then removed
    /// at the source (there is no data to follow).
    async fn migrate_special(&self, ctx: &Ctx, c: &Candidate<'_>, sia: &Iatt) -> Result<Outcome> {
        let named = Loc::child(c.dir, c.name);
        let (to, from) = (self.sub(c.to), self.sub(c.from));
        let at = Loc::gfid(c.gfid);
        let mut xattrs = Xattrs::new();
        if let Ok(t) = from.getxattr(ctx, &at, Some(mdata::KEY)).await
            && let Some(v) = t.get(mdata::KEY)
        {
            xattrs.insert(mdata::KEY.to_string(), v.clone());
        }
        let e = NewEntry {
            gfid: c.gfid,
            mode: sia.mode,
            umask: 0,
            rdev: sia.rdev,
            xattrs,
            ..Default::default()
        };
        let owner = Ctx {
            uid: sia.uid,
            gid: sia.gid,
            ..ctx.clone()
        };
        // A linkto a lookup left at the destination is in the way.
        let w = with_dht_keys(&Xattrs::new());
        if let Ok((tia, tx)) = to.lookup(ctx, &named, &w).await {
            if tia.gfid != c.gfid || !is_linkto(&tia, &tx) {
                return Ok(Outcome::Skipped(
                    "another file has its name at the destination",
                ));
            }
            to.unlink(
                ctx,
                &Loc {
                    gfid: Some(c.gfid),
                    ..named.clone()
                },
            )
            .await?;
        }
        if sia.is_symlink() {
            let target = from.readlink(ctx, &at).await?;
            to.symlink(&owner, &named, &target, &e).await?;
        } else {
            to.mknod(&owner, &named, &e).await?;
        }
        self.cached.insert(c.gfid, c.to);
        let gone = Loc {
            gfid: Some(c.gfid),
            ..named.clone()
        };
        match from.unlink(ctx, &gone).await {
            Ok(_) | Err(Errno::ENOENT) | Err(Errno::ESTALE) => {}
            Err(e) => return Err(e),
        }
        if c.from == c.hashed {
            let _ = self.make_linkto(ctx, c.hashed, c.to, &named, c.gfid).await;
        } else if c.hashed != c.to {
            self.point_linkto(ctx, c).await?;
        }
        Ok(Outcome::Moved(0))
    }
}
