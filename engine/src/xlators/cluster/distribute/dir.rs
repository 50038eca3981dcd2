//! Directories: a copy on every subvolume, each with its hash range.
//!
//! A directory's name is changed (mkdir, rmdir, rename, and a lookup healing a missing copy)
//! only under an entry lock on (parent, name) at the name's hashed subvolume, in GlusterFS's
//! domain `dht.entry.sync` (its `dht_protect_namespace`). Without it, a lookup could see a
//! directory half way through an rmdir and make the missing copies again, leaving it on some
//! subvolumes only: invisible to listings and yet not empty. Under the lock, a lookup that
//! finds copies missing looks again, and heals only what the hashed subvolume still holds.

use super::layout::{self, Layout};
use super::{Distribute, child_path, is_linkto, strip_dht_keys, with_dht_keys};
use crate::fop::keys;
use crate::fop::*;
use crate::mdata;
use bytes::Bytes;
use futures::future::join_all;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// GlusterFS's DHT_ENTRY_SYNC_DOMAIN.
pub(super) const ENTRY_SYNC_DOMAIN: &str = "dht.entry.sync";

/// A directory's attributes over its copies on every subvolume, as GlusterFS's
/// `dht_iatt_merge`: the newest of each time (a create or unlink moves only the copy on the
/// subvolume it happened on), the highest owner ids, and a fixed size, since each copy's own
/// size says nothing of the whole directory.
pub(super) fn merge_dir_iatt<'a>(first: &Iatt, rest: impl IntoIterator<Item = &'a Iatt>) -> Iatt {
    let mut out = first.clone();
    for ia in rest {
        out.uid = out.uid.max(ia.uid);
        out.gid = out.gid.max(ia.gid);
        for (to, from) in [
            (&mut out.atime, ia.atime),
            (&mut out.mtime, ia.mtime),
            (&mut out.ctime, ia.ctime),
        ] {
            if (from.sec, from.nsec) > (to.sec, to.nsec) {
                *to = from;
            }
        }
    }
    // GlusterFS's DHT_DIR_STAT_SIZE and DHT_DIR_STAT_BLOCKS.
    out.size = 4096;
    out.blocks = 8;
    out
}

/// An entry lock held on (parent, name) at one subvolume.
pub(super) struct NameLock {
    subvol: usize,
    parent: Gfid,
    name: String,
    ctx: Ctx,
}

type Lookups = Vec<Result<(Iatt, Xattrs)>>;

impl Distribute {
    /// Takes the namespace lock of `loc`'s name, waiting for whoever holds it.
    pub(super) async fn lock_name(&self, loc: &Loc, subvol: usize) -> Result<NameLock> {
        let (parent, name) = (loc.parent()?, loc.name()?.to_string());
        // Bit 62 set: never a frontend's POSIX lock owner, nor replicate's (bit 63).
        let ctx = Ctx {
            lk_owner: (1 << 62) | self.lk_owners.fetch_add(1, Ordering::Relaxed),
            ..Ctx::root()
        };
        self.sub(subvol)
            .entrylk(
                &ctx,
                ENTRY_SYNC_DOMAIN,
                &Loc::gfid(parent),
                Some(&name),
                EntrylkCmd::Lock,
                EntrylkType::Write,
            )
            .await?;
        Ok(NameLock {
            subvol,
            parent,
            name,
            ctx,
        })
    }

    pub(super) async fn unlock_name(&self, l: NameLock) {
        if let Err(e) = self
            .sub(l.subvol)
            .entrylk(
                &l.ctx,
                ENTRY_SYNC_DOMAIN,
                &Loc::gfid(l.parent),
                Some(&l.name),
                EntrylkCmd::Unlock,
                EntrylkType::Write,
            )
            .await
        {
            tracing::warn!(xlator = %self.base.name, parent = %l.parent, name = %l.name, "releasing a namespace lock: {e}");
        }
    }

    async fn lookup_copies(&self, ctx: &Ctx, loc: &Loc, w: &Xattrs) -> Lookups {
        join_all((0..self.n()).map(|i| async move {
            if !self.is_up(i) {
                return Err(Errno::ENOTCONN);
            }
            self.sub(i).lookup(ctx, loc, w).await
        }))
        .await
    }

    /// Looks a directory up on every subvolume; with `heal`, makes the copies missing on a
    /// live subvolume (under the namespace lock), and writes a layout where the stored one is
    /// missing or broken (only with every subvolume up, so a layout never leaves out a
    /// subvolume that is merely away).
    pub(super) async fn lookup_dir(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        want: &Xattrs,
        heal: bool,
    ) -> Result<(Iatt, Xattrs)> {
        let mut w = with_dht_keys(want);
        // The times, for a copy this lookup makes where one is missing.
        w.insert(mdata::KEY.to_string(), Bytes::new());
        let mut results = self.lookup_copies(ctx, loc, &w).await;
        let named = loc.parent.is_some() && loc.name.is_some();
        let missing = |r: &Lookups| r.iter().any(|r| matches!(r, Err(Errno::ENOENT)));
        let is_dir = |r: &Lookups| {
            r.iter()
                .any(|r| r.as_ref().is_ok_and(|(ia, _)| ia.is_dir()))
        };
        if heal && named && missing(&results) && is_dir(&results) {
            // Boxed: the heal finds the hashed subvolume through the parent's layout, which
            // may look the parent up with this very function.
            results = Box::pin(self.heal_dir_copies(ctx, loc, &w)).await?;
        }
        let Some(first) = results
            .iter()
            .position(|r| r.as_ref().is_ok_and(|(ia, _)| ia.is_dir()))
        else {
            // Not a directory anywhere: report what the first live subvolume said.
            return match results
                .into_iter()
                .find(|r| !matches!(r, Err(Errno::ENOTCONN)))
            {
                Some(Ok((ia, x))) => Ok((ia, strip_dht_keys(x, want))),
                Some(Err(e)) => Err(e),
                None => Err(Errno::ENOTCONN),
            };
        };
        let (ia, mut x) = results[first].clone().expect("checked");
        let gfid = ia.gfid;
        let present: Vec<bool> = results.iter().map(|r| r.is_ok()).collect();
        let mut lay = Layout::default();
        for (i, r) in results.iter().enumerate() {
            if let Ok((_, xs)) = r
                && let Some((start, stop)) =
                    xs.get(keys::DHT_LAYOUT).and_then(|v| layout::decode(v))
            {
                lay.ranges.push(layout::Range {
                    start,
                    stop,
                    subvol: i,
                });
            }
        }
        if heal && !lay.is_complete() && self.all_up() && present.iter().all(|p| *p) {
            lay = self.write_layout(loc, gfid).await.unwrap_or(lay);
        }
        if !lay.ranges.is_empty() {
            self.layouts.insert(gfid, Arc::new(lay));
        }
        if !want.contains_key(mdata::KEY) {
            x.remove(mdata::KEY);
        }
        let ia = merge_dir_iatt(
            &ia,
            results
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .filter(|(o, _)| o.is_dir() && o.gfid == gfid)
                .map(|(o, _)| o),
        );
        Ok((ia, strip_dht_keys(x, want)))
    }

    /// A fresh layout for directory `gfid` on every subvolume; None if any write failed.
    async fn write_layout(&self, loc: &Loc, gfid: Gfid) -> Option<Layout> {
        let path = loc
            .path
            .clone()
            .unwrap_or_else(|| loc.name.clone().unwrap_or_else(|| "/".into()));
        let fresh = Layout::new_for(&path, &self.names);
        let setloc = Loc::gfid(gfid);
        let ok = join_all(fresh.ranges.iter().map(|r| {
            let xs = Xattrs::from([(
                keys::DHT_LAYOUT.to_string(),
                Bytes::from(layout::encode(r.start, r.stop)),
            )]);
            let sub = self.sub(r.subvol).clone();
            let setloc = setloc.clone();
            async move { sub.setxattr(&Ctx::root(), &setloc, &xs, 0).await }
        }))
        .await;
        if ok.iter().all(|r| r.is_ok()) {
            tracing::info!(xlator = %self.base.name, %gfid, path = %path, "wrote a directory layout");
            Some(fresh)
        } else {
            None
        }
    }

    /// A directory missing on some live subvolume, looked at again under its namespace lock.
    /// Where its hashed subvolume holds it, the missing copies are made (with its gfid, mode,
    /// owner and times). Where the hashed subvolume lacks it, it is the leftover of an rmdir
    /// that did not finish: empty copies are removed and the name is gone; a copy that still
    /// holds names is kept, and the directory made again everywhere.
    async fn heal_dir_copies(&self, ctx: &Ctx, loc: &Loc, w: &Xattrs) -> Result<Lookups> {
        let hashed = self.hashed(ctx, loc).await?;
        let lock = self.lock_name(loc, hashed).await?;
        let r = self.heal_dir_copies_locked(ctx, loc, w, hashed).await;
        self.unlock_name(lock).await;
        r
    }

    async fn heal_dir_copies_locked(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        w: &Xattrs,
        hashed: usize,
    ) -> Result<Lookups> {
        let results = self.lookup_copies(ctx, loc, w).await;
        let Some((ia, x)) = results
            .iter()
            .flatten()
            .find(|(ia, _)| ia.is_dir())
            .cloned()
        else {
            return Ok(results);
        };
        let present: Vec<bool> = results
            .iter()
            .map(|r| {
                r.as_ref()
                    .is_ok_and(|(o, _)| o.is_dir() && o.gfid == ia.gfid)
            })
            .collect();
        if !present[hashed] && self.is_up(hashed) {
            match self.check_empty(ctx, ia.gfid, &present).await {
                Ok(stale) => {
                    self.remove_copies(ctx, loc, ia.gfid, &present, stale)
                        .await?;
                    tracing::info!(xlator = %self.base.name, gfid = %ia.gfid, "removed the leftovers of an unfinished rmdir");
                    return Ok(self.lookup_copies(ctx, loc, w).await);
                }
                Err(Errno::ENOTEMPTY) => {}
                Err(e) => return Err(e),
            }
        }
        // The copy takes the directory's times, not the moment of this heal.
        let e = NewEntry {
            gfid: ia.gfid,
            mode: ia.mode & 0o7777,
            xattrs: x
                .get(mdata::KEY)
                .map(|v| Xattrs::from([(mdata::KEY.to_string(), v.clone())]))
                .unwrap_or_default(),
            ..Default::default()
        };
        let c = Ctx {
            uid: ia.uid,
            gid: ia.gid,
            ..ctx.clone()
        };
        let mkloc = Loc {
            gfid: None,
            ..loc.clone()
        };
        let lay = self.layouts.get(&ia.gfid).map(|l| l.clone());
        for (i, r) in results.iter().enumerate() {
            if !matches!(r, Err(Errno::ENOENT)) {
                continue;
            }
            let mut e = e.clone();
            if let Some(r) = lay.as_ref().and_then(|l| l.range_of(i)) {
                e.xattrs.insert(
                    keys::DHT_LAYOUT.to_string(),
                    Bytes::from(layout::encode(r.start, r.stop)),
                );
            }
            match self.sub(i).mkdir(&c, &mkloc, &e).await {
                Ok(_) => {
                    tracing::info!(xlator = %self.base.name, gfid = %ia.gfid, subvol = %self.names[i], "healed a missing directory")
                }
                Err(err) => {
                    tracing::warn!(xlator = %self.base.name, gfid = %ia.gfid, subvol = %self.names[i], "could not heal a missing directory: {err}")
                }
            }
        }
        Ok(self.lookup_copies(ctx, loc, w).await)
    }

    /// ENOTEMPTY unless directory `g` holds nothing on the subvolumes in `on` but stale
    /// linkto files, which it returns (they go with the directory).
    pub(super) async fn check_empty(
        &self,
        ctx: &Ctx,
        g: Gfid,
        on: &[bool],
    ) -> Result<Vec<(usize, String)>> {
        let dloc = Loc::gfid(g);
        let w = with_dht_keys(&Xattrs::new());
        let mut stale = Vec::new();
        for i in (0..self.n()).filter(|i| on[*i]) {
            let fd = self.sub(i).opendir(ctx, &dloc).await?;
            let mut off = 0;
            let r = loop {
                let ents = match self.sub(i).readdirp(ctx, &fd, off, 64 * 1024, &w).await {
                    Ok(e) => e,
                    Err(e) => break Err(e),
                };
                if ents.is_empty() {
                    break Ok(());
                }
                if let Some(e) = ents
                    .iter()
                    .find(|e| !e.iatt.as_ref().is_some_and(|ia| is_linkto(ia, &e.xattrs)))
                {
                    tracing::debug!(xlator = %self.base.name, dir = %g, name = %e.name, subvol = %self.names[i], "directory not empty");
                    break Err(Errno::ENOTEMPTY);
                }
                stale.extend(ents.iter().map(|e| (i, e.name.clone())));
                off = ents.last().expect("non-empty").d_off;
            };
            self.sub(i).release(&fd).await;
            r?;
        }
        Ok(stale)
    }

    /// Removes an empty directory's copies (and its stale linkto files) where `on` says it is,
    /// the hashed subvolume's last, so a lookup in between still finds the name there.
    async fn remove_copies(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        g: Gfid,
        on: &[bool],
        stale: Vec<(usize, String)>,
    ) -> Result<()> {
        for (i, name) in stale {
            let _ = self.sub(i).unlink(ctx, &Loc::child(g, name)).await;
        }
        let hashed = self.hashed(ctx, loc).await?;
        let rest = join_all(
            (0..self.n())
                .filter(|i| *i != hashed && on[*i])
                .map(|i| self.sub(i).rmdir(ctx, loc)),
        )
        .await;
        for r in rest {
            match r {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        if on[hashed] {
            match self.sub(hashed).rmdir(ctx, loc).await {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        self.layouts.remove(&g);
        Ok(())
    }

    /// Which subvolumes hold directory `g` under `loc`'s name.
    async fn copies_of(&self, ctx: &Ctx, loc: &Loc, g: Gfid) -> Vec<bool> {
        self.lookup_copies(ctx, loc, &Xattrs::new())
            .await
            .iter()
            .map(|r| r.as_ref().is_ok_and(|(ia, _)| ia.is_dir() && ia.gfid == g))
            .collect()
    }

    pub(super) async fn do_mkdir(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<Iatt> {
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
    ) -> Result<Iatt> {
        let gfid = if entry.gfid.is_null() {
            Gfid::random()
        } else {
            entry.gfid
        };
        let path = child_path(loc.path.as_deref(), loc.name()?)
            .or_else(|| loc.name.clone())
            .unwrap_or_default();
        let lay = Layout::new_for(&path, &self.names);
        let entry_for = |i: usize| {
            let r = lay.range_of(i).expect("every subvolume has a range");
            let mut e = entry.clone();
            e.gfid = gfid;
            e.xattrs.insert(
                keys::DHT_LAYOUT.to_string(),
                Bytes::from(layout::encode(r.start, r.stop)),
            );
            e
        };
        let ia = self.sub(hashed).mkdir(ctx, loc, &entry_for(hashed)).await?;
        let rest = join_all((0..self.n()).filter(|i| *i != hashed).map(|i| {
            let e = entry_for(i);
            async move { (i, self.sub(i).mkdir(ctx, loc, &e).await) }
        }))
        .await;
        for (i, r) in rest {
            if let Err(e) = r {
                tracing::warn!(xlator = %self.base.name, subvol = %self.names[i], "mkdir failed on a subvolume ({e}); lookup will heal it");
            }
        }
        self.layouts.insert(gfid, Arc::new(lay));
        Ok(ia)
    }

    pub(super) async fn do_rmdir(&self, ctx: &Ctx, loc: &Loc) -> Result<()> {
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

    /// Renames a directory on every subvolume, the hashed subvolume of the new name first,
    /// under the namespace locks of both names. A directory replaced must be empty everywhere
    /// (checked first, as GlusterFS's `dht_rename_dir` does), and a rename that fails on some
    /// subvolume is undone on the others, so the directory never ends up under two names.
    pub(super) async fn rename_dir(
        &self,
        ctx: &Ctx,
        oldloc: &Loc,
        newloc: &Loc,
        src: &Iatt,
    ) -> Result<Iatt> {
        if !self.all_up() {
            return Err(Errno::ENOTCONN);
        }
        let (oh, nh) = (
            self.hashed(ctx, oldloc).await?,
            self.hashed(ctx, newloc).await?,
        );
        // Always in the same order, so two renames of the same pair cannot deadlock.
        let key = |h: usize, l: &Loc| (h, l.parent, l.name.clone());
        let (a, b) = if key(oh, oldloc) <= key(nh, newloc) {
            ((oldloc, oh), (newloc, nh))
        } else {
            ((newloc, nh), (oldloc, oh))
        };
        let la = self.lock_name(a.0, a.1).await?;
        let lb = match self.lock_name(b.0, b.1).await {
            Ok(l) => l,
            Err(e) => {
                self.unlock_name(la).await;
                return Err(e);
            }
        };
        let r = self.rename_dir_locked(ctx, oldloc, newloc, src, nh).await;
        self.unlock_name(lb).await;
        self.unlock_name(la).await;
        r
    }

    async fn rename_dir_locked(
        &self,
        ctx: &Ctx,
        oldloc: &Loc,
        newloc: &Loc,
        src: &Iatt,
        hashed: usize,
    ) -> Result<Iatt> {
        match self.lookup_named(ctx, newloc, &Xattrs::new(), false).await {
            Ok((dst, _)) if dst.gfid == src.gfid => return Ok(src.clone()),
            Ok((dst, _)) if !dst.is_dir() => return Err(Errno::ENOTDIR),
            Ok((dst, _)) => {
                let on = self.copies_of(ctx, newloc, dst.gfid).await;
                for (i, name) in self.check_empty(ctx, dst.gfid, &on).await? {
                    let _ = self.sub(i).unlink(ctx, &Loc::child(dst.gfid, name)).await;
                }
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let ia = self.sub(hashed).rename(ctx, oldloc, newloc).await?;
        let rest: Vec<usize> = (0..self.n()).filter(|i| *i != hashed).collect();
        let results = join_all(
            rest.iter()
                .map(|&i| self.sub(i).rename(ctx, oldloc, newloc)),
        )
        .await;
        let failed = rest
            .iter()
            .zip(&results)
            .find_map(|(i, r)| r.as_ref().err().map(|e| (*i, *e)));
        if let Some((i, e)) = failed {
            tracing::warn!(xlator = %self.base.name, subvol = %self.names[i], "directory rename failed on a subvolume ({e}); undoing it on the others");
            let back = |i: usize| async move { self.sub(i).rename(ctx, newloc, oldloc).await };
            let _ = back(hashed).await;
            for (j, r) in rest.iter().zip(&results) {
                if r.is_ok() {
                    let _ = back(*j).await;
                }
            }
            return Err(e);
        }
        Ok(ia)
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
}
