//! Entry fops on files: a new name goes to its hashed subvolume; a hard link or an unlink
//! keeps the linkto file at the hashed subvolume in step with the data.

use super::common::Distribute;
use super::copies::merge_post_parents;
use crate::fop::*;

impl Distribute {
    pub(super) async fn do_create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt, PostParent)> {
        let hashed = self.hashed(ctx, loc).await?;
        if !self.is_up(hashed) {
            return Err(Errno::ENOTCONN);
        }
        let i = self.avail_subvol(ctx, hashed).await;
        if i == hashed {
            let (child, ia, parent) = self.sub(i).create(ctx, loc, flags, entry).await?;
            self.cached.insert(ia.gfid, i);
            // A file made is often soon removed (a build's temporaries, a bench): its unlink
            // then needs no lookup first.
            self.remember_name(loc, ia.gfid, i);
            let parent = merge_post_parents(&[parent]);
            return Ok((self.wrap_file(ia.gfid, flags, i, child), ia, parent));
        }
        // GlusterFS's dht_create_wind_to_avail_subvol: the linkto first, so the name is
        // found through its hashed subvolume as soon as the file exists.
        let gfid = if entry.gfid.is_null() {
            Gfid::random()
        } else {
            entry.gfid
        };
        // The linkto changed the parent's copy on `hashed` too; not said here.
        self.make_linkto(ctx, hashed, i, loc, gfid).await?;
        let e = NewEntry {
            gfid,
            ..entry.clone()
        };
        match self.sub(i).create(ctx, loc, flags, &e).await {
            Ok((child, ia, _)) => {
                self.cached.insert(ia.gfid, i);
                self.remember_name(loc, ia.gfid, i);
                Ok((self.wrap_file(ia.gfid, flags, i, child), ia, None))
            }
            Err(err) => {
                let linkto = Loc {
                    gfid: Some(gfid),
                    ..loc.clone()
                };
                let _ = self.sub(hashed).unlink(ctx, &linkto).await;
                Err(err)
            }
        }
    }

    /// Where a new file hashed to `hashed` goes: there, unless it has less room than
    /// `min-free-disk`; then the subvolume with the most room that is not filled (GlusterFS's
    /// dht_free_disk_available_subvol), or still `hashed` if every one is.
    async fn avail_subvol(&self, ctx: &Ctx, hashed: usize) -> usize {
        let Some(min) = self.min_free else {
            return hashed;
        };
        let reading = self.room(ctx).await;
        let room = &reading.subvols;
        let (avail, total) = room[hashed];
        if total == 0 || !min.filled(avail, total) {
            return hashed;
        }
        (0..self.n())
            .filter(|j| {
                *j != hashed
                    && self.is_up(*j)
                    && !self.decommissioned[*j]
                    && room[*j].1 > 0
                    && !min.filled(room[*j].0, room[*j].1)
            })
            .max_by_key(|j| room[*j].0)
            .unwrap_or(hashed)
    }

    pub(super) async fn do_mknod(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        let i = self.hashed(ctx, loc).await?;
        if !self.is_up(i) {
            return Err(Errno::ENOTCONN);
        }
        let (ia, parent) = self.sub(i).mknod(ctx, loc, entry).await?;
        self.cached.insert(ia.gfid, i);
        // An NFS CREATE is a mknod: see do_create.
        self.remember_name(loc, ia.gfid, i);
        Ok((ia, merge_post_parents(&[parent])))
    }

    pub(super) async fn do_symlink(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        target: &str,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        let i = self.hashed(ctx, loc).await?;
        if !self.is_up(i) {
            return Err(Errno::ENOTCONN);
        }
        let (ia, parent) = self.sub(i).symlink(ctx, loc, target, entry).await?;
        self.cached.insert(ia.gfid, i);
        self.remember_name(loc, ia.gfid, i);
        Ok((ia, merge_post_parents(&[parent])))
    }

    pub(super) async fn do_link(&self, ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        let src = self.target(ctx, oldloc).await?.ok_or(Errno::EPERM)?;
        let hashed = self.hashed(ctx, newloc).await?;
        if !self.is_up(src) || !self.is_up(hashed) {
            return Err(Errno::ENOTCONN);
        }
        let ia = self.sub(src).link(ctx, oldloc, newloc).await?;
        if hashed != src {
            self.make_linkto(ctx, hashed, src, newloc, ia.gfid).await?;
        }
        Ok(ia)
    }

    pub(super) async fn do_unlink(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        let hint = match (loc.parent, &loc.name) {
            (Some(p), Some(n)) => self.name_hints.remove(&(p, n.clone())).map(|(_, v)| v),
            _ => None,
        };
        if let Some((gfid, data)) = hint
            && self.is_up(data)
        {
            let hashed = self.hashed(ctx, loc).await?;
            // The brick refuses (ESTALE) if the name now holds another inode, or a linkto
            // file (a rebalance moved the data since).
            let only_data = Ctx {
                refuse_linkto: true,
                ..ctx.clone()
            };
            match self
                .sub(data)
                .unlink(
                    &only_data,
                    &Loc {
                        gfid: Some(gfid),
                        ..loc.clone()
                    },
                )
                .await
            {
                Ok(parent) => {
                    return Ok(self.unlink_linkto(ctx, loc, hashed, data, parent).await);
                }
                Err(Errno::ESTALE) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        let (ia, _) = self.lookup_named(ctx, loc, &Xattrs::new(), true).await?;
        if ia.is_dir() {
            return Err(Errno::EISDIR);
        }
        // Gone from every subvolume since the lookup: another client removed it first, and
        // for this caller the name no longer exists (not a stale handle it holds).
        let data = self
            .cached_subvol(ctx, ia.gfid)
            .await
            .map_err(|e| if e == Errno::ESTALE { Errno::ENOENT } else { e })?;
        let hashed = self.hashed(ctx, loc).await?;
        let parent = self.sub(data).unlink(ctx, loc).await?;
        Ok(self.unlink_linkto(ctx, loc, hashed, data, parent).await)
    }

    /// After the data file's name went: the linkto at the hashed subvolume goes too. Returns
    /// the parent's attributes when every copy that changed said them.
    async fn unlink_linkto(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        hashed: usize,
        data: usize,
        parent: PostParent,
    ) -> PostParent {
        if hashed == data {
            return merge_post_parents(&[parent]);
        }
        if !self.is_up(hashed) {
            return None;
        }
        match self.sub(hashed).unlink(ctx, loc).await {
            Ok(linkto) => merge_post_parents(&[parent, linkto]),
            Err(Errno::ENOENT) => None,
            Err(e) => {
                tracing::warn!(xlator = %self.base.name, "could not remove a linkto file: {e}");
                None
            }
        }
    }
}
