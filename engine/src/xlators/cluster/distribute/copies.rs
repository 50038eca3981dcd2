//! A directory's copies, one per subvolume: looking them all up, merging their attributes,
//! and checking them empty.

use super::common::{Distribute, is_linkto, with_dht_keys};
use crate::fop::*;
use futures::future::join_all;

pub(super) type Lookups = Vec<Result<(Iatt, Xattrs)>>;

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

/// A directory's attributes after a change of its names on some of its copies, as `stat_dir`
/// would merge them; None unless every copy changed said.
pub(super) fn merge_post_parents(parents: &[PostParent]) -> PostParent {
    let known: Vec<&Iatt> = parents.iter().flatten().collect();
    if known.len() < parents.len() {
        return None;
    }
    known
        .first()
        .map(|f| merge_dir_iatt(f, known.iter().copied()))
}

impl Distribute {
    pub(super) async fn lookup_copies(&self, ctx: &Ctx, loc: &Loc, w: &Xattrs) -> Lookups {
        join_all((0..self.n()).map(|i| async move {
            if !self.is_up(i) {
                return Err(Errno::ENOTCONN);
            }
            self.sub(i).lookup(ctx, loc, w).await
        }))
        .await
    }

    /// Which subvolumes hold directory `g` under `loc`'s name.
    pub(super) async fn copies_of(&self, ctx: &Ctx, loc: &Loc, g: Gfid) -> Vec<bool> {
        self.lookup_copies(ctx, loc, &Xattrs::new())
            .await
            .iter()
            .map(|r| r.as_ref().is_ok_and(|(ia, _)| ia.is_dir() && ia.gfid == g))
            .collect()
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
}
