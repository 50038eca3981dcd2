//! Directories: a copy on every subvolume, each with its hash range.
//!
//! A directory's name is changed (mkdir, rmdir, rename, and a lookup healing a missing copy)
//! only under an entry lock on (parent, name) at the name's hashed subvolume, in GlusterFS's
//! domain `dht.entry.sync` (its `dht_protect_namespace`). Without it, a lookup could see a
//! directory half way through an rmdir and make the missing copies again, leaving it on some
//! subvolumes only: invisible to listings and yet not empty. Under the lock, a lookup that
//! finds copies missing looks again, and heals only what the hashed subvolume still holds.

use super::common::{
    DhtFd, Distribute, OFF_BITS, OFF_MASK, child_path, is_linkto, strip_dht_keys, with_dht_keys,
};
use super::copies::{merge_dir_iatt, merge_post_parents};

use crate::fop::keys;
use crate::fop::*;

use futures::future::join_all;
use std::sync::Arc;

impl Distribute {
    pub(super) async fn do_mkdir(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        if !self.all_up() {
            // A layout must name every subvolume; refuse rather than leave a hole.
            return Err(Errno::ENOTCONN);
        }
        let hashed = self.hashed(ctx, loc).await?;
        let lock = self.lock_name(loc, hashed).await?;
        let r = self.mkdir_locked(ctx, loc, entry, hashed).await;
        self.unlock_name(lock).await;
        r
    }

    async fn mkdir_locked(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        entry: &NewEntry,
        hashed: usize,
    ) -> Result<(Iatt, PostParent)> {
        let gfid = if entry.gfid.is_null() {
            Gfid::random()
        } else {
            entry.gfid
        };
        let path = child_path(loc.path.as_deref(), loc.name()?)
            .or_else(|| loc.name.clone())
            .unwrap_or_default();
        let lay = self.new_layout(&path);
        let entry_for = |i: usize| {
            let mut e = entry.clone();
            e.gfid = gfid;
            e.xattrs
                .insert(keys::DHT_LAYOUT.to_string(), self.range_value(&lay, i));
            e
        };
        let (ia, first) = self.sub(hashed).mkdir(ctx, loc, &entry_for(hashed)).await?;
        let mut parents = vec![first];
        let rest = join_all((0..self.n()).filter(|i| *i != hashed).map(|i| {
            let e = entry_for(i);
            async move { (i, self.sub(i).mkdir(ctx, loc, &e).await) }
        }))
        .await;
        for (i, r) in rest {
            match r {
                Ok((_, p)) => parents.push(p),
                Err(e) => {
                    tracing::warn!(xlator = %self.base.name, subvol = %self.names[i], "mkdir failed on a subvolume ({e}); lookup will heal it");
                    // The parent's copy there did not change: the merge of the others is
                    // still the whole parent's.
                }
            }
        }
        self.layouts.insert(gfid, Arc::new(lay));
        Ok((ia, merge_post_parents(&parents)))
    }

    pub(super) async fn do_rmdir(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        if !self.all_up() {
            return Err(Errno::ENOTCONN);
        }
        let hashed = self.hashed(ctx, loc).await?;
        let lock = self.lock_name(loc, hashed).await?;
        let r = async {
            let (ia, _) = self.lookup_named(ctx, loc, &Xattrs::new(), false).await?;
            if !ia.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            let on = self.copies_of(ctx, loc, ia.gfid).await;
            let stale = self.check_empty(ctx, ia.gfid, &on).await?;
            self.remove_copies(ctx, loc, ia.gfid, &on, stale).await
        }
        .await;
        self.unlock_name(lock).await;
        r
    }

    /// A directory's attributes from every live subvolume, merged.
    pub(super) async fn stat_dir(&self, ctx: &Ctx, loc: &Loc) -> Result<Iatt> {
        let results = join_all((0..self.n()).map(|i| async move {
            if self.is_up(i) {
                self.sub(i).stat(ctx, loc).await
            } else {
                Err(Errno::ENOTCONN)
            }
        }))
        .await;
        let ok: Vec<&Iatt> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        match ok.first() {
            Some(first) => Ok(merge_dir_iatt(first, ok.iter().copied())),
            None => Err(results
                .into_iter()
                .find_map(|r| r.err().filter(|e| *e != Errno::ENOTCONN))
                .unwrap_or(Errno::ENOTCONN)),
        }
    }

    /// Merges into the directory entries of a listing batch (each read from one subvolume)
    /// the attributes of their copies on the other subvolumes.
    pub(super) async fn merge_listed_dirs(
        &self,
        ctx: &Ctx,
        parent: Gfid,
        from: usize,
        ents: &mut [Dirent],
    ) {
        let dirs: Vec<usize> = (0..ents.len())
            .filter(|i| ents[*i].iatt.as_ref().is_some_and(|ia| ia.is_dir()))
            .collect();
        if dirs.is_empty() || self.n() < 2 {
            return;
        }
        let others: Vec<usize> = (0..self.n())
            .filter(|i| *i != from && self.is_up(*i))
            .collect();
        let found = join_all(dirs.iter().map(|&k| {
            let loc = Loc::child(parent, ents[k].name.clone())
                .with_gfid(ents[k].iatt.as_ref().expect("dir").gfid);
            let others = &others;
            async move {
                join_all(others.iter().map(|&i| {
                    let loc = &loc;
                    async move { self.sub(i).stat(ctx, loc).await.ok() }
                }))
                .await
            }
        }))
        .await;
        for (&k, copies) in dirs.iter().zip(found) {
            let ia = ents[k].iatt.as_ref().expect("dir");
            let merged = merge_dir_iatt(ia, copies.iter().flatten().filter(|o| o.gfid == ia.gfid));
            ents[k].iatt = Some(merged);
        }
    }

    pub(super) async fn do_opendir(&self, ctx: &Ctx, loc: &Loc) -> Result<FdRef> {
        let g = match loc.gfid {
            Some(g) => g,
            None => self.do_lookup(ctx, loc, &Xattrs::new()).await?.0.gfid,
        };
        let dloc = Loc {
            gfid: Some(g),
            ..loc.clone()
        };
        let fds = join_all((0..self.n()).map(|i| {
            let dloc = &dloc;
            async move {
                if self.is_up(i) {
                    self.sub(i).opendir(ctx, dloc).await.ok()
                } else {
                    None
                }
            }
        }))
        .await;
        if fds.iter().all(|f| f.is_none()) {
            return Err(if self.first_up().is_err() {
                Errno::ENOTCONN
            } else {
                Errno::ENOENT
            });
        }
        let fd = Fd::new(g, libc::O_RDONLY, true);
        fd.ctx_set(
            self.base.id,
            Arc::new(DhtFd {
                file: None,
                dirs: fds,
            }),
        );
        Ok(fd)
    }

    pub(super) async fn readdir_any(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: &Xattrs,
        plus: bool,
    ) -> Result<Vec<Dirent>> {
        let d = self.dht_fd(fd).ok_or(Errno::EBADF)?;
        let mut idx = (offset >> OFF_BITS) as usize;
        let mut off = offset & OFF_MASK;
        let w = with_dht_keys(want);
        while idx < self.n() {
            let child_fd = match (&d.dirs.get(idx), self.is_up(idx)) {
                (Some(Some(f)), true) => f.clone(),
                _ => {
                    idx += 1;
                    off = 0;
                    continue;
                }
            };
            let ents = self
                .sub(idx)
                .readdirp(ctx, &child_fd, off, size, &w)
                .await?;
            if ents.is_empty() {
                idx += 1;
                off = 0;
                continue;
            }
            let first = (0..self.n())
                .find(|i| d.dirs.get(*i).is_some_and(|f| f.is_some()) && self.is_up(*i));
            let mut out = Vec::with_capacity(ents.len());
            for mut e in ents {
                let cookie = ((idx as u64) << OFF_BITS) | (e.d_off & OFF_MASK);
                let keep = match &e.iatt {
                    Some(ia) if ia.is_dir() => Some(idx) == first,
                    Some(ia) => !is_linkto(ia, &e.xattrs),
                    None => true,
                };
                if keep {
                    if let Some(ia) = &e.iatt
                        && !ia.is_dir()
                    {
                        self.cached.insert(ia.gfid, idx);
                    }
                    e.xattrs = strip_dht_keys(std::mem::take(&mut e.xattrs), want);
                    if !plus {
                        e.iatt = None;
                        e.xattrs.clear();
                    }
                    let child_off = e.d_off;
                    e.d_off = cookie;
                    out.push(e);
                    off = child_off & OFF_MASK;
                } else {
                    off = e.d_off & OFF_MASK;
                }
            }
            if out.is_empty() {
                // Only linkto files or directories seen elsewhere in this batch: keep reading.
                continue;
            }
            if plus {
                self.merge_listed_dirs(ctx, fd.gfid, idx, &mut out).await;
            }
            return Ok(out);
        }
        Ok(vec![])
    }
}
