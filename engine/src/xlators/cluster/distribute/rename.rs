//! Rename (GlusterFS's dht-rename.c): a file moves on its data subvolume with its linkto
//! files following; a directory is renamed on every subvolume under both names' locks.

use super::common::Distribute;
use super::copies::merge_post_parents;
use crate::fop::*;
use futures::future::join_all;

impl Distribute {
    /// Returns the parents' attributes only when the rename touched the subvolume it ran on
    /// alone (no linkto made or removed elsewhere).
    pub(super) async fn do_rename(
        &self,
        ctx: &Ctx,
        oldloc: &Loc,
        newloc: &Loc,
    ) -> Result<(Iatt, PostParent, PostParent)> {
        if let Some(r) = self.rename_remembered(ctx, oldloc, newloc).await? {
            return Ok(r);
        }
        self.forget_name(oldloc);
        self.forget_name(newloc);
        // Both names at once: the target's lookup needs nothing from the source's, and a
        // rename of a file waits one round trip for them instead of two.
        let none = Xattrs::new();
        let (src, dst) = futures::join!(
            self.lookup_named(ctx, oldloc, &none, true),
            self.lookup_named(ctx, newloc, &none, true)
        );
        let (src_ia, _) = src?;
        if src_ia.is_dir() {
            let ia = self.rename_dir(ctx, oldloc, newloc, &src_ia).await?;
            return Ok((ia, None, None));
        }
        // Gone since the lookup: another client removed or moved it first (ENOENT, as for a
        // name that is not there, not a stale handle the caller holds).
        let src = self
            .cached_subvol(ctx, src_ia.gfid)
            .await
            .map_err(|e| if e == Errno::ESTALE { Errno::ENOENT } else { e })?;
        let old_hashed = self.hashed(ctx, oldloc).await?;
        let new_hashed = self.hashed(ctx, newloc).await?;
        let target = match dst {
            Ok((ia, _)) if ia.gfid == src_ia.gfid => return Ok((src_ia, None, None)),
            Ok((ia, _)) if ia.is_dir() => return Err(Errno::EISDIR),
            Ok((ia, _)) => Some((ia.gfid, self.cached_subvol(ctx, ia.gfid).await?)),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(e),
        };
        for i in [src, old_hashed, new_hashed] {
            if !self.is_up(i) {
                return Err(Errno::ENOTCONN);
            }
        }
        let (ia, old_parent, new_parent) = self.sub(src).rename(ctx, oldloc, newloc).await?;
        let alone =
            old_hashed == src && new_hashed == src && target.is_none_or(|(_, tdata)| tdata == src);
        // The replaced file's data on another subvolume goes, as its name now means ours.
        if let Some((_, tdata)) = target
            && tdata != src
        {
            let _ = self.sub(tdata).unlink(ctx, newloc).await;
        }
        if new_hashed != src {
            let _ = self.sub(new_hashed).unlink(ctx, newloc).await;
            self.make_linkto(ctx, new_hashed, src, newloc, ia.gfid)
                .await?;
        }
        // The old name's linkto, if it had one, points nowhere now.
        if old_hashed != src {
            let _ = self.sub(old_hashed).unlink(ctx, oldloc).await;
        }
        self.cached.insert(ia.gfid, src);
        if !alone {
            return Ok((ia, None, None));
        }
        Ok((
            ia,
            merge_post_parents(&[old_parent]),
            merge_post_parents(&[new_parent]),
        ))
    }

    /// A file this client made or found at its name, renamed within the subvolume both
    /// names hash to (a frontend's staging file renamed over its final name): no lookup
    /// first. The brick refuses (ESTALE) when the source is no longer that file's data or
    /// the target is a linkto (data elsewhere), and the caller then takes the way with
    /// lookups; a name missing at its hashed subvolume is missing everywhere when the layout
    /// is trusted. None when this does not apply or was refused.
    async fn rename_remembered(
        &self,
        ctx: &Ctx,
        oldloc: &Loc,
        newloc: &Loc,
    ) -> Result<Option<(Iatt, PostParent, PostParent)>> {
        let Some((gfid, i)) = oldloc
            .parent
            .zip(oldloc.name.clone())
            .and_then(|k| self.name_hints.get(&k).map(|h| *h))
        else {
            return Ok(None);
        };
        let trusted = |l: &Loc| {
            l.parent
                .and_then(|p| self.layouts.get(&p).map(|lay| self.layout_trusted(&lay)))
                .unwrap_or(false)
        };
        if self.unhashed_always || !self.all_up() || !trusted(oldloc) || !trusted(newloc) {
            return Ok(None);
        }
        if self.hashed(ctx, oldloc).await? != i || self.hashed(ctx, newloc).await? != i {
            return Ok(None);
        }
        let checked = Ctx {
            refuse_linkto: true,
            ..ctx.clone()
        };
        let old = Loc {
            gfid: Some(gfid),
            ..oldloc.clone()
        };
        match self.sub(i).rename(&checked, &old, newloc).await {
            Ok((ia, old_parent, new_parent)) => {
                self.forget_name(oldloc);
                self.cached.insert(ia.gfid, i);
                self.remember_name(newloc, ia.gfid, i);
                Ok(Some((
                    ia,
                    merge_post_parents(&[old_parent]),
                    merge_post_parents(&[new_parent]),
                )))
            }
            Err(Errno::ESTALE) | Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
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
        let (ia, _, _) = self.sub(hashed).rename(ctx, oldloc, newloc).await?;
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
}
