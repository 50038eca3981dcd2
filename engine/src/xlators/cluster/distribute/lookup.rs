//! Lookups (GlusterFS's dht-common.c lookup and revalidate): a name at its hashed subvolume,
//! through a linkto file, or everywhere; a nameless lookup by gfid; a directory on every
//! subvolume, healing missing copies and layouts (dht-selfheal.c); and where a fop on an
//! inode or fd goes.

use super::common::{Distribute, is_linkto, strip_dht_keys, with_dht_keys};
use super::copies::{Lookups, merge_dir_iatt, merge_post_parents};
use super::layout::{self, Layout};
use crate::fop::keys;
use crate::fop::*;
use crate::mdata;
use bytes::Bytes;
use futures::future::join_all;
use std::sync::Arc;

impl Distribute {
    /// The layout of directory `dir`, looked up when not cached.
    pub(super) async fn layout(&self, ctx: &Ctx, dir: Gfid) -> Result<Arc<Layout>> {
        if let Some(l) = self.layouts.get(&dir) {
            return Ok(l.clone());
        }
        let loc = if dir.is_root() {
            Loc::root()
        } else {
            Loc::gfid(dir)
        };
        self.lookup_dir(ctx, &loc, &Xattrs::new(), true).await?;
        self.layouts.get(&dir).map(|l| l.clone()).ok_or(Errno::EIO)
    }

    /// The subvolume a new name in `parent` belongs to.
    pub(super) async fn hashed(&self, ctx: &Ctx, loc: &Loc) -> Result<usize> {
        let parent = loc.parent()?;
        let name = loc.name()?;
        if let Some(i) = self.layout(ctx, parent).await?.for_name(name) {
            return Ok(i);
        }
        // A hole: the layout was read while a concurrent mkdir of the directory was still
        // writing it. Read it again (the lookup completes an unfinished layout) before failing.
        self.layouts.remove(&parent);
        self.layout(ctx, parent).await?.for_name(name).ok_or_else(|| {
            tracing::warn!(xlator = %self.base.name, parent = ?loc.parent, "layout has a hole for this name");
            Errno::EIO
        })
    }

    /// Finds a named entry: at its hashed subvolume, through a linkto, or (for data put in
    /// place without one) on every subvolume, leaving a linkto behind.
    /// `heal`: a directory found missing on some subvolume is healed (never under a
    /// namespace lock of the same name, which the heal takes).
    pub(super) async fn lookup_named(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        want: &Xattrs,
        heal: bool,
    ) -> Result<(Iatt, Xattrs)> {
        let w = with_dht_keys(want);
        let hashed = self.hashed(ctx, loc).await?;
        let at_hashed = if self.is_up(hashed) {
            self.sub(hashed).lookup(ctx, loc, &w).await
        } else {
            Err(Errno::ENOTCONN)
        };
        match at_hashed {
            Ok((ia, _)) if ia.is_dir() => self.lookup_dir(ctx, loc, want, heal).await,
            Ok((ia, x)) if is_linkto(&ia, &x) => {
                if let Some(t) = self.subvol_named(&x[keys::DHT_LINKTO]) {
                    if !self.is_up(t) {
                        return Err(Errno::ENOTCONN);
                    }
                    match self.sub(t).lookup(ctx, loc, &w).await {
                        Ok((tia, tx)) if !is_linkto(&tia, &tx) && tia.gfid == ia.gfid => {
                            self.cached.insert(tia.gfid, t);
                            self.remember_name(loc, tia.gfid, t);
                            return Ok((tia, strip_dht_keys(tx, want)));
                        }
                        _ => {}
                    }
                }
                self.lookup_everywhere(ctx, loc, want, Some(hashed), heal)
                    .await
            }
            Ok((ia, x)) => {
                self.cached.insert(ia.gfid, hashed);
                self.remember_name(loc, ia.gfid, hashed);
                Ok((ia, strip_dht_keys(x, want)))
            }
            Err(Errno::ENOENT) => {
                // Every file this layout placed is at its hashed subvolume or has a linkto
                // there, so a miss is final unless the layout is broken or a subvolume away.
                if !self.unhashed_always
                    && self.all_up()
                    && self
                        .layouts
                        .get(&loc.parent()?)
                        .is_some_and(|l| self.layout_trusted(&l))
                {
                    return Err(Errno::ENOENT);
                }
                self.lookup_everywhere(ctx, loc, want, Some(hashed), heal)
                    .await
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn lookup_everywhere(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        want: &Xattrs,
        hashed: Option<usize>,
        heal: bool,
    ) -> Result<(Iatt, Xattrs)> {
        let w = with_dht_keys(want);
        let results = join_all((0..self.n()).map(|i| {
            let w = &w;
            async move {
                if Some(i) == hashed || !self.is_up(i) {
                    return Err(Errno::ENOENT);
                }
                self.sub(i).lookup(ctx, loc, w).await
            }
        }))
        .await;
        for (i, r) in results.into_iter().enumerate() {
            let Ok((ia, x)) = r else { continue };
            if ia.is_dir() {
                return self.lookup_dir(ctx, loc, want, heal).await;
            }
            if is_linkto(&ia, &x) {
                continue;
            }
            self.cached.insert(ia.gfid, i);
            self.remember_name(loc, ia.gfid, i);
            // A linkto of this file at the hashed subvolume naming where it no longer is (a
            // subvolume taken out, or renamed) is pointed right. By gfid, so another file's
            // stays.
            if let Some(h) = hashed
                && loc.name.is_some()
                && self.is_up(h)
                && let Err(Errno::EEXIST) = self.make_linkto(ctx, h, i, loc, ia.gfid).await
            {
                let mut v = self.names[i].clone().into_bytes();
                v.push(0);
                let xs = Xattrs::from([(keys::DHT_LINKTO.to_string(), Bytes::from(v))]);
                let _ = self.sub(h).setxattr(ctx, &Loc::gfid(ia.gfid), &xs, 0).await;
            }
            return Ok((ia, strip_dht_keys(x, want)));
        }
        // A rebalance may have finished moving the file to its hashed subvolume since that
        // was asked (a linkto then, the data now): ask it once more.
        if let Some(h) = hashed
            && self.is_up(h)
            && let Ok((ia, x)) = self.sub(h).lookup(ctx, loc, &w).await
            && !ia.is_dir()
            && !is_linkto(&ia, &x)
        {
            self.cached.insert(ia.gfid, h);
            self.remember_name(loc, ia.gfid, h);
            return Ok((ia, strip_dht_keys(x, want)));
        }
        if (0..self.n()).any(|i| !self.is_up(i)) {
            Err(Errno::ENOTCONN)
        } else {
            Err(Errno::ENOENT)
        }
    }

    pub(super) async fn make_linkto(
        &self,
        ctx: &Ctx,
        at: usize,
        target: usize,
        loc: &Loc,
        gfid: Gfid,
    ) -> Result<()> {
        let mut linkname = self.names[target].clone().into_bytes();
        linkname.push(0);
        let e = NewEntry {
            gfid,
            mode: keys::DHT_LINKFILE_MODE,
            umask: 0,
            rdev: 0,
            xattrs: Xattrs::from([(keys::DHT_LINKTO.to_string(), Bytes::from(linkname))]),
            ..Default::default()
        };
        let l = Loc {
            gfid: None,
            ..loc.clone()
        };
        self.sub(at).mknod(ctx, &l, &e).await.map(|_| ())
    }

    /// The subvolume holding file `gfid`'s data, found by a nameless lookup when unknown.
    pub(super) async fn cached_subvol(&self, ctx: &Ctx, gfid: Gfid) -> Result<usize> {
        if let Some(i) = self.cached.get(&gfid) {
            return Ok(*i);
        }
        let w = with_dht_keys(&Xattrs::new());
        let loc = Loc::gfid(gfid);
        let results = join_all((0..self.n()).map(|i| {
            let (w, loc) = (&w, &loc);
            async move {
                if self.is_up(i) {
                    self.sub(i).lookup(ctx, loc, w).await
                } else {
                    Err(Errno::ENOTCONN)
                }
            }
        }))
        .await;
        for (i, r) in results.iter().enumerate() {
            if let Ok((ia, x)) = r
                && !ia.is_dir()
                && !is_linkto(ia, x)
            {
                self.cached.insert(gfid, i);
                return Ok(i);
            }
        }
        if results.iter().any(|r| matches!(r, Err(Errno::ENOTCONN))) {
            Err(Errno::ENOTCONN)
        } else {
            Err(Errno::ESTALE)
        }
    }

    /// Where a loc-addressed fop goes: the data subvolume of a file, or None for a directory
    /// (which every subvolume has).
    pub(super) async fn target(&self, ctx: &Ctx, loc: &Loc) -> Result<Option<usize>> {
        let g = match loc.gfid {
            Some(g) => g,
            None => self.do_lookup(ctx, loc, &Xattrs::new()).await?.0.gfid,
        };
        if self.is_dir_gfid(&g) {
            return Ok(None);
        }
        if let Some(i) = self.cached.get(&g) {
            return Ok(Some(*i));
        }
        let (ia, _) = self.do_lookup(ctx, &Loc::gfid(g), &Xattrs::new()).await?;
        if ia.is_dir() {
            Ok(None)
        } else {
            Ok(Some(self.cached_subvol(ctx, g).await?))
        }
    }

    /// The subvolume and child fd for a file fd; anonymous fds resolve by gfid.
    pub(super) async fn file_fd(&self, ctx: &Ctx, fd: &FdRef) -> Result<(usize, FdRef)> {
        if let Some(d) = self.dht_fd(fd)
            && let Some((i, f)) = &d.file
        {
            if !self.is_up(*i) {
                return Err(Errno::ENOTCONN);
            }
            return Ok((*i, f.clone()));
        }
        let i = self.cached_subvol(ctx, fd.gfid).await?;
        Ok((i, Fd::anonymous(fd.gfid)))
    }

    pub(super) async fn do_lookup(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        want: &Xattrs,
    ) -> Result<(Iatt, Xattrs)> {
        if loc.parent.is_some() && loc.name.is_some() {
            return self.lookup_named(ctx, loc, want, true).await;
        }
        let g = loc.gfid.ok_or(Errno::EINVAL)?;
        if self.is_dir_gfid(&g) {
            return self.lookup_dir(ctx, loc, want, true).await;
        }
        if let Some(i) = self.cached.get(&g).map(|i| *i)
            && self.is_up(i)
            && let Ok((ia, x)) = self.sub(i).lookup(ctx, loc, &with_dht_keys(want)).await
            && !is_linkto(&ia, &x)
        {
            return Ok((ia, strip_dht_keys(x, want)));
        }
        self.cached.remove(&g);
        // Nameless: ask everyone; a directory answers everywhere, a file at its data subvolume.
        let w = with_dht_keys(want);
        let results = join_all((0..self.n()).map(|i| {
            let w = &w;
            async move {
                if self.is_up(i) {
                    self.sub(i).lookup(ctx, loc, w).await
                } else {
                    Err(Errno::ENOTCONN)
                }
            }
        }))
        .await;
        for (i, r) in results.iter().enumerate() {
            if let Ok((ia, x)) = r {
                if ia.is_dir() {
                    return self.lookup_dir(ctx, loc, want, true).await;
                }
                if !is_linkto(ia, x) {
                    self.cached.insert(ia.gfid, i);
                    return Ok((ia.clone(), strip_dht_keys(x.clone(), want)));
                }
            }
        }
        if results.iter().any(|r| matches!(r, Err(Errno::ENOTCONN))) {
            Err(Errno::ENOTCONN)
        } else {
            Err(Errno::ESTALE)
        }
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
        let lay = read_layout(&results);
        let lay = if heal && !lay.is_complete() && self.all_up() && present.iter().all(|p| *p) {
            self.heal_layout(ctx, loc, gfid, &w).await.unwrap_or(lay)
        } else {
            lay
        };
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

    /// Looks at a layout found incomplete again under the layout lock, and writes a fresh
    /// one only if it still is (it was not a fix-layout caught half way).
    async fn heal_layout(&self, ctx: &Ctx, loc: &Loc, gfid: Gfid, w: &Xattrs) -> Option<Layout> {
        let owner = self.lock_layout(gfid).await.ok()?;
        let lay = read_layout(&self.lookup_copies(ctx, loc, w).await);
        let out = if lay.is_complete() {
            Some(lay)
        } else {
            self.write_layout(loc, gfid).await
        };
        self.unlock_layout(gfid, owner).await;
        out
    }

    /// A fresh layout for directory `gfid` on every subvolume; None if any write failed. Its
    /// commit hash says nothing was moved for it: the directory may hold files placed by
    /// another layout.
    pub(super) async fn write_layout(&self, loc: &Loc, gfid: Gfid) -> Option<Layout> {
        let path = loc
            .path
            .clone()
            .unwrap_or_else(|| loc.name.clone().unwrap_or_else(|| "/".into()));
        let mut fresh = self.new_layout(&path);
        fresh.commit = Some(layout::COMMIT_HASH_NEW);
        let setloc = Loc::gfid(gfid);
        let ok = join_all((0..self.n()).map(|i| {
            let xs = Xattrs::from([(keys::DHT_LAYOUT.to_string(), self.range_value(&fresh, i))]);
            let sub = self.sub(i).clone();
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
    pub(super) async fn heal_dir_copies(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        w: &Xattrs,
    ) -> Result<Lookups> {
        let hashed = self.hashed(ctx, loc).await?;
        let lock = self.lock_name(loc, hashed).await?;
        let r = self.heal_dir_copies_locked(ctx, loc, w, hashed).await;
        self.unlock_name(lock).await;
        r
    }

    pub(super) async fn heal_dir_copies_locked(
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
        // Only a layout the directory was made under says where its copy must be: under a
        // layout a fix-layout just changed, the new hashed subvolume lacks it as a matter of
        // course, and the copies are made, not removed.
        let settled = loc
            .parent
            .and_then(|p| self.layouts.get(&p).map(|l| self.layout_trusted(&l)))
            .unwrap_or(false);
        if !present[hashed] && self.is_up(hashed) && settled {
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
            if let Some(l) = lay.as_ref().filter(|l| l.range_of(i).is_some()) {
                e.xattrs
                    .insert(keys::DHT_LAYOUT.to_string(), self.range_value(l, i));
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

    /// Removes an empty directory's copies (and its stale linkto files) where `on` says it is,
    /// the hashed subvolume's last, so a lookup in between still finds the name there.
    pub(super) async fn remove_copies(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        g: Gfid,
        on: &[bool],
        stale: Vec<(usize, String)>,
    ) -> Result<PostParent> {
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
        let mut parents = Vec::new();
        for r in rest {
            match r {
                Ok(p) => parents.push(p),
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        if on[hashed] {
            match self.sub(hashed).rmdir(ctx, loc).await {
                Ok(p) => parents.push(p),
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        self.layouts.remove(&g);
        // Copies already gone were removed by another client: what they say of the parent
        // is not known here.
        Ok(if parents.len() == on.iter().filter(|o| **o).count() {
            merge_post_parents(&parents)
        } else {
            None
        })
    }
}

/// The layout the copies of a directory store, one range per subvolume that has one.
pub(super) fn read_layout(results: &Lookups) -> Layout {
    let mut lay = Layout::default();
    let mut commits = Vec::new();
    for (i, r) in results.iter().enumerate() {
        if let Ok((_, xs)) = r
            && let Some((commit, start, stop)) = xs
                .get(keys::DHT_LAYOUT)
                .and_then(|v| layout::decode_with(v))
        {
            commits.push(commit);
            lay.ranges.push(layout::Range {
                start,
                stop,
                subvol: i,
            });
        }
    }
    lay.commit = commits
        .first()
        .copied()
        .filter(|c| commits.iter().all(|x| x == c));
    lay
}
