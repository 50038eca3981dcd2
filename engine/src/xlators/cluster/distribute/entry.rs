//! Entry fops on files: a new name goes to its hashed subvolume; a hard link or an unlink
//! keeps the linkto file at the hashed subvolume in step with the data.

use super::common::Distribute;
use crate::fop::*;

impl Distribute {
    pub(super) async fn do_create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt)> {
        let i = self.hashed(ctx, loc).await?;
        if !self.is_up(i) {
            return Err(Errno::ENOTCONN);
        }
        let (child, ia) = self.sub(i).create(ctx, loc, flags, entry).await?;
        self.cached.insert(ia.gfid, i);
        Ok((self.wrap_file(ia.gfid, flags, i, child), ia))
    }

    pub(super) async fn do_mknod(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<Iatt> {
        let i = self.hashed(ctx, loc).await?;
        if !self.is_up(i) {
            return Err(Errno::ENOTCONN);
        }
        let ia = self.sub(i).mknod(ctx, loc, entry).await?;
        self.cached.insert(ia.gfid, i);
        Ok(ia)
    }

    pub(super) async fn do_symlink(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        target: &str,
        entry: &NewEntry,
    ) -> Result<Iatt> {
        let i = self.hashed(ctx, loc).await?;
        if !self.is_up(i) {
            return Err(Errno::ENOTCONN);
        }
        let ia = self.sub(i).symlink(ctx, loc, target, entry).await?;
        self.cached.insert(ia.gfid, i);
        Ok(ia)
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

    pub(super) async fn do_unlink(&self, ctx: &Ctx, loc: &Loc) -> Result<()> {
        let hint = match (loc.parent, &loc.name) {
            (Some(p), Some(n)) => self.name_hints.remove(&(p, n.clone())).map(|(_, v)| v),
            _ => None,
        };
        if let Some((gfid, data)) = hint
            && self.is_up(data)
        {
            let hashed = self.hashed(ctx, loc).await?;
            // The brick refuses (ESTALE) if the name now holds another inode.
            match self
                .sub(data)
                .unlink(
                    ctx,
                    &Loc {
                        gfid: Some(gfid),
                        ..loc.clone()
                    },
                )
                .await
            {
                Ok(()) => {
                    if hashed != data && self.is_up(hashed) {
                        match self.sub(hashed).unlink(ctx, loc).await {
                            Ok(()) | Err(Errno::ENOENT) => {}
                            Err(e) => {
                                tracing::warn!(xlator = %self.base.name, "could not remove a linkto file: {e}")
                            }
                        }
                    }
                    return Ok(());
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
        self.sub(data).unlink(ctx, loc).await?;
        if hashed != data && self.is_up(hashed) {
            match self.sub(hashed).unlink(ctx, loc).await {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => {
                    tracing::warn!(xlator = %self.base.name, "could not remove a linkto file: {e}")
                }
            }
        }
        Ok(())
    }
}
