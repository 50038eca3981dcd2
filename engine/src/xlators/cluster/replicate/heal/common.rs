//! What every kind of heal shares (GlusterFS's afr-self-heal-common.c): the heal's locks, the
//! changelogs read and cleared under them, the source chosen, and times converged.

use super::super::changelog::{self, Changelog, TxnType};
use super::super::common::{Afr, SplitBrainChoice};
use super::super::lock::LockOn;
use crate::fop::keys;
use crate::fop::*;
use crate::mdata::{self, Mdata};
use bytes::Bytes;
use futures::future::join_all;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing differed.
    Clean,
    Healed,
    SplitBrain,
    /// No replica has it any more.
    Gone,
}

/// Bytes compared and copied at a time by data heal.
pub(super) const HEAL_BLOCK: u32 = 128 * 1024;

/// Xattrs a heal never copies: identity, and the changelogs themselves.
pub(super) fn private_xattr(k: &str) -> bool {
    // Times converge by their own rule (converge_times), not by copying one replica's.
    k == mdata::KEY
        || k.starts_with("trusted.afr.")
        || k == keys::GFID
        || k == keys::VOLUME_ID
        || k.starts_with(keys::GFID2PATH_PREFIX)
        || k.starts_with("glusterfs.")
}

pub(super) fn counters(ty: TxnType, v: i32) -> [i32; 3] {
    let mut c = [0; 3];
    c[ty as usize] = v;
    c
}

impl Afr {
    /// Locks (inodelk in the data or metadata range, or entrylk on the whole directory) on every
    /// up replica, as a transaction would; returns where it was got.
    pub(super) async fn heal_lock(&self, ctx: &Ctx, g: Gfid, ty: TxnType) -> Vec<bool> {
        self.lock_all(ctx, &LockOn::for_heal(g, ty)).await
    }

    pub(super) async fn heal_unlock(&self, ctx: &Ctx, g: Gfid, ty: TxnType, locked: &[bool]) {
        let lock = LockOn::for_heal(g, ty);
        join_all(
            (0..self.n())
                .filter(|i| locked[*i])
                .map(|i| self.unlock_on(ctx, i, &lock, usize::MAX)),
        )
        .await;
    }

    /// The changelog of type `ty` of `g`, read under its lock from the replicas in `locked`,
    /// with their replies and which answered; ENOTCONN with fewer than two.
    pub(super) async fn locked_changelog(
        &self,
        ctx: &Ctx,
        g: Gfid,
        ty: TxnType,
        locked: &[bool],
        answered_if: impl Fn(&Iatt) -> bool,
    ) -> Result<(Vec<Option<(Iatt, Xattrs)>>, Vec<bool>, Changelog)> {
        let replies = self.read_marks(ctx, g, locked).await;
        let answered: Vec<bool> = replies
            .iter()
            .map(|r| r.as_ref().is_some_and(|(ia, _)| answered_if(ia)))
            .collect();
        if answered.iter().filter(|a| **a).count() < 2 {
            return Err(Errno::ENOTCONN);
        }
        let xs: Vec<Option<&Xattrs>> = replies.iter().map(|r| r.as_ref().map(|r| &r.1)).collect();
        let c = Changelog::extract(&xs, &self.keys, ty);
        Ok((replies, answered, c))
    }

    /// Looks `g` up with its changelogs and times on the replicas in `on`.
    pub(super) async fn read_marks(
        &self,
        ctx: &Ctx,
        g: Gfid,
        on: &[bool],
    ) -> Vec<Option<(Iatt, Xattrs)>> {
        let w = self.with_afr_keys(&Xattrs::from([(mdata::KEY.to_string(), Bytes::new())]));
        join_all((0..self.n()).map(|i| {
            let w = &w;
            async move {
                if !on[i] {
                    return None;
                }
                match self.sub(i).lookup(ctx, &Loc::gfid(g), w).await {
                    Ok((ia, x)) if ia.gfid == g => Some((ia, x)),
                    _ => None,
                }
            }
        }))
        .await
    }

    /// Takes back, on every replica that answered, the marks of type `ty` read under the lock.
    pub(super) async fn clear_marks(
        &self,
        ctx: &Ctx,
        g: Gfid,
        ty: TxnType,
        c: &Changelog,
        on: &[bool],
    ) {
        join_all((0..self.n()).filter(|i| on[*i]).map(|i| async move {
            let mut x = Xattrs::new();
            x.insert(
                keys::AFR_DIRTY.to_string(),
                changelog::encode(counters(ty, -c.dirty[i])),
            );
            for (j, k) in self.keys.iter().enumerate() {
                x.insert(k.clone(), changelog::encode(counters(ty, -c.matrix[i][j])));
            }
            if c.dirty[i] == 0 && c.matrix[i].iter().all(|v| *v == 0) {
                return;
            }
            if let Err(e) = self
                .sub(i)
                .xattrop(ctx, &Loc::gfid(g), XattropOp::AddArray, &x)
                .await
            {
                tracing::warn!(xlator = %self.base.name, gfid = %g, replica = %self.names[i], "clearing the changelog after a heal: {e}");
            }
        }))
        .await;
    }

    /// Makes `g`'s times (`trusted.glusterfs.mdata`) the same on every replica that answered:
    /// the newest change time of any, and with a `source`, its access and modification times
    /// (which heal just copied to the sinks); without one (entry heal of a directory), the
    /// newest of each. Bricks keep the newer of what they hold and what is sent, so what is
    /// sent is at least every replica's own.
    pub(super) async fn converge_times(
        &self,
        ctx: &Ctx,
        g: Gfid,
        replies: &[Option<(Iatt, Xattrs)>],
        answered: &[bool],
        source: Option<usize>,
    ) {
        let times: Vec<Option<Mdata>> = replies
            .iter()
            .map(|r| {
                r.as_ref()
                    .and_then(|(_, x)| x.get(mdata::KEY))
                    .and_then(|v| Mdata::decode(v))
            })
            .collect();
        let Some(mut target) = times.iter().flatten().copied().reduce(|mut a, b| {
            a.merge(&b);
            a
        }) else {
            return;
        };
        if let Some(src) = source.and_then(|s| times[s]) {
            target.mtime = src.mtime;
            target.atime = src.atime;
        }
        let set = Xattrs::from([(
            mdata::KEY.to_string(),
            Bytes::copy_from_slice(&target.encode()),
        )]);
        join_all((0..self.n()).filter(|i| answered[*i]).map(|i| {
            let set = &set;
            async move {
                if let Err(e) = self.sub(i).setxattr(ctx, &Loc::gfid(g), set, 0).await {
                    tracing::warn!(xlator = %self.base.name, gfid = %g, replica = %self.names[i], "could not heal the times: {e}");
                }
            }
        }))
        .await;
    }

    /// A heal runs as an internal client (GlusterFS's self-heal daemon has a negative pid
    /// too): the bricks then tell every client of what it changed, this gateway's own
    /// md-cache included, whose connection the heal shares.
    pub(super) fn heal_ctx(&self) -> Ctx {
        Ctx {
            lk_owner: self.next_owner(),
            ..Ctx::internal()
        }
    }

    /// `g`'s path as far as this translator has seen its ancestors' names, from the nearest
    /// unknown ancestor as `<gfid:…>` (GlusterFS's heal info prints the same form).
    pub(super) fn where_seen(&self, g: Gfid) -> String {
        if let Some(p) = self.inodes.get(&g).and_then(|i| i.path.clone()) {
            return p;
        }
        let mut parts = Vec::new();
        let mut cur = g;
        for _ in 0..256 {
            if cur.is_root() {
                parts.reverse();
                return format!("/{}", parts.join("/"));
            }
            match self.names_seen.get(&cur) {
                Some(e) => {
                    parts.push(e.1.clone());
                    cur = e.0;
                }
                None => break,
            }
        }
        parts.reverse();
        if parts.is_empty() {
            format!("<gfid:{cur}>")
        } else {
            format!("<gfid:{cur}>/{}", parts.join("/"))
        }
    }

    /// The source a split-brain resolution rule picks among `replies` (data holders only).
    pub(super) fn choose(
        &self,
        choice: SplitBrainChoice,
        replies: &[Option<(Iatt, Xattrs)>],
    ) -> Option<usize> {
        let cands: Vec<usize> = (0..self.n())
            .filter(|i| replies[*i].is_some() && !self.is_arbiter(*i))
            .collect();
        let ia = |i: usize| &replies[i].as_ref().expect("candidate").0;
        let best_by = |key: &dyn Fn(&Iatt) -> (i64, u32)| -> Option<usize> {
            let best = cands.iter().copied().max_by_key(|i| key(ia(*i)))?;
            // A tie picks nothing: the rule does not tell the copies apart.
            let ties = cands
                .iter()
                .filter(|i| key(ia(**i)) == key(ia(best)))
                .count();
            (ties == 1).then_some(best)
        };
        match choice {
            SplitBrainChoice::Source(i) => cands.contains(&i).then_some(i),
            SplitBrainChoice::BiggerFile => best_by(&|a| (a.size as i64, 0)),
            SplitBrainChoice::LatestMtime => best_by(&|a| (a.mtime.sec, a.mtime.nsec)),
            SplitBrainChoice::LatestCtime => best_by(&|a| (a.ctime.sec, a.ctime.nsec)),
            SplitBrainChoice::Majority => cands.iter().copied().find(|i| {
                let same = cands
                    .iter()
                    .filter(|j| ia(**j).size == ia(*i).size && ia(**j).mtime == ia(*i).mtime)
                    .count();
                same * 2 > self.n()
            }),
        }
    }
}
