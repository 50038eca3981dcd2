//! Lookup (GlusterFS's afr-common.c): every replica asked, the changelogs read to learn which
//! replicas may serve the inode, and a background heal started when they disagree.

use super::changelog::TxnType;
use super::common::{Afr, InodeInfo, NAMES_MAX, first_error};
use crate::fop::*;
use std::sync::Arc;

impl Afr {
    /// Records what a lookup's replies say about the inode they found (gfid `g`), and starts
    /// a background heal when they disagree. Returns the replica whose reply to pass up.
    pub(super) fn learn(
        self: &Arc<Self>,
        g: Gfid,
        results: &[Result<(Iatt, Xattrs)>],
        loc: &Loc,
    ) -> Option<usize> {
        let replies: Vec<Option<&Xattrs>> = results
            .iter()
            .map(|r| match r {
                Ok((ia, x)) if ia.gfid == g => Some(x),
                _ => None,
            })
            .collect();
        let is_dir = results
            .iter()
            .flatten()
            .find(|(ia, _)| ia.gfid == g)
            .is_some_and(|(ia, _)| ia.is_dir());
        let ty = if is_dir {
            TxnType::Entry
        } else {
            TxnType::Data
        };
        let (mut good, split, heal_main) = self.interpret(&replies, ty);
        let (_, meta_split, heal_meta) = self.interpret(&replies, TxnType::Metadata);
        if !is_dir && let Some(a) = self.arbiter {
            good[a] = false;
        }
        // A replica that is up but lacks the inode (or has another under this name) missed
        // its creation: the parent's entry heal makes it.
        let missing = results.iter().enumerate().any(|(i, r)| {
            self.is_up(i)
                && match r {
                    Err(Errno::ENOENT) | Err(Errno::ESTALE) => true,
                    Ok((ia, _)) => ia.gfid != g,
                    _ => false,
                }
        });
        self.saw_name(g, loc);
        let mut info = InodeInfo {
            good: good.clone(),
            split_brain: split && !is_dir,
            name: loc.parent.zip(loc.name.clone()),
            path: loc.path.clone(),
        };
        if let Some(old) = self.inodes.get(&g) {
            if info.name.is_none() {
                info.name = old.name.clone();
            }
            if info.path.is_none() {
                info.path = old.path.clone();
            }
        }
        if split && !is_dir || meta_split {
            self.split_brain.insert(
                g,
                info.path.clone().unwrap_or_else(|| format!("<gfid:{g}>")),
            );
        }
        // Only a cache (a miss means one more lookup): started over rather than grown forever.
        if self.inodes.len() >= NAMES_MAX {
            self.inodes.clear();
        }
        self.inodes.insert(g, info);
        if ((heal_main && self.self_heal[ty as usize]) || (heal_meta && self.self_heal[1]))
            && !self.changing(&g)
        {
            self.heal_in_background(g);
        }
        if missing && let Some((p, _)) = loc.parent.zip(loc.name.as_ref()) {
            self.heal_in_background(p);
        }
        // Pass up a good replica's reply (a file's size and times come from its data).
        (0..self.n())
            .find(|i| good[*i] && replies[*i].is_some())
            .or_else(|| (0..self.n()).find(|i| replies[*i].is_some() && !self.is_arbiter(*i)))
            .or_else(|| (0..self.n()).find(|i| replies[*i].is_some()))
    }

    /// The gfid `loc` names, looked up when it carries none.
    pub(super) async fn gfid_of(self: &Arc<Self>, ctx: &Ctx, loc: &Loc) -> Result<Gfid> {
        match loc.gfid {
            Some(g) if !g.is_null() => Ok(g),
            _ => Ok(self.lookup(ctx, loc, &Xattrs::new()).await?.0.gfid),
        }
    }

    pub(super) async fn lookup(
        self: &Arc<Self>,
        ctx: &Ctx,
        loc: &Loc,
        want: &Xattrs,
    ) -> Result<(Iatt, Xattrs)> {
        let results = self.lookup_all(ctx, loc, want).await;
        // For a name, the replicas to believe are those whose copy of the parent directory is
        // good: a name removed while a replica was away must not come back from it.
        let trusted: Vec<bool> = match loc.parent {
            Some(p) if loc.name.is_some() => match self.inodes.get(&p) {
                Some(pi) if pi.good.iter().any(|g| *g) => pi.good.clone(),
                _ => vec![true; self.n()],
            },
            _ => vec![true; self.n()],
        };
        let found = (0..self.n())
            .filter(|i| trusted[*i])
            .find_map(|i| results[i].as_ref().ok().map(|(ia, _)| ia.gfid))
            .or_else(|| {
                results
                    .iter()
                    .find_map(|r| r.as_ref().ok().map(|(ia, _)| ia.gfid))
            });
        let Some(g) = found else {
            return Err(first_error(&results));
        };
        if (0..self.n()).any(|i| trusted[i] && matches!(results[i], Err(Errno::ENOENT)))
            && !(0..self.n()).any(|i| trusted[i] && results[i].is_ok())
        {
            // Only replicas the parent's changelog calls stale still have it: gone.
            if let Some(p) = loc.parent {
                self.heal_in_background(p);
            }
            return Err(Errno::ENOENT);
        }
        let pick = self.learn(g, &results, loc).ok_or(Errno::EIO)?;
        let (ia, x) = results[pick].clone().map_err(|_| Errno::EIO)?;
        Ok((ia, self.strip_afr_keys(x, want)))
    }
}
