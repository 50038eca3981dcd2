//! Metadata heal (GlusterFS's afr-self-heal-metadata.c): ownership, mode, times and xattrs.

use super::super::changelog::{self, TxnType};
use super::super::common::{Afr, SplitBrainChoice};
use super::common::{Outcome, private_xattr};
use crate::fop::*;
use std::sync::Arc;

impl Afr {
    pub(super) async fn heal_metadata_locked(
        self: &Arc<Self>,
        ctx: &Ctx,
        g: Gfid,
        choice: Option<SplitBrainChoice>,
        locked: &[bool],
    ) -> Result<Outcome> {
        let (replies, answered, c) = self
            .locked_changelog(ctx, g, TxnType::Metadata, locked, |_| true)
            .await?;
        if !c.needs_heal() {
            return Ok(Outcome::Clean);
        }
        let d = changelog::find_direction(&c, &answered).map_err(|_| Errno::ENOTCONN)?;
        let src = match (0..self.n()).find(|i| d.sources[*i]) {
            Some(s) => s,
            None => match choice
                .or(self.favorite)
                .and_then(|ch| self.choose(ch, &replies))
            {
                Some(s) => s,
                None => return Ok(Outcome::SplitBrain),
            },
        };
        let src_ia = replies[src].as_ref().expect("answered").0.clone();
        let src_x = self.sub(src).getxattr(ctx, &Loc::gfid(g), None).await?;
        for k in (0..self.n()).filter(|k| *k != src && answered[*k]) {
            let l = Loc::gfid(g);
            let attr = SetAttr {
                mode: (!src_ia.is_symlink()).then_some(src_ia.mode & 0o7777),
                uid: Some(src_ia.uid),
                gid: Some(src_ia.gid),
                atime: Some(SetTime::At(src_ia.atime)),
                mtime: Some(SetTime::At(src_ia.mtime)),
                size: None,
            };
            self.sub(k).setattr(ctx, &l, &attr).await?;
            let have = self.sub(k).getxattr(ctx, &l, None).await?;
            for name in have.keys().filter(|n| !private_xattr(n)) {
                if !src_x.contains_key(name) {
                    let _ = self.sub(k).removexattr(ctx, &l, name).await;
                }
            }
            let set: Xattrs = src_x
                .iter()
                .filter(|(n, v)| !private_xattr(n) && have.get(*n) != Some(v))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect();
            if !set.is_empty() {
                self.sub(k).setxattr(ctx, &l, &set, 0).await?;
            }
        }
        self.converge_times(ctx, g, &replies, &answered, Some(src))
            .await;
        self.clear_marks(ctx, g, TxnType::Metadata, &c, &answered)
            .await;
        Ok(Outcome::Healed)
    }
}
