//! Healing one inode: which of its parts the changelogs say need it, each under its own lock,
//! started in the background by a lookup or on demand by the heal daemon.

use super::super::changelog::TxnType;
use super::super::common::{Afr, SplitBrainChoice, first_error};
use super::common::Outcome;
use crate::fop::keys;
use crate::fop::*;
use bytes::Bytes;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

impl Afr {
    /// Starts healing `g` unless it is being healed; at most a few heals run at once.
    pub(in super::super) fn heal_in_background(self: &Arc<Self>, g: Gfid) {
        // With one replica up there is nothing to heal from or to (yet).
        if self.up_list().len() < 2 || self.healing.insert(g, ()).is_some() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let _slot = me.heal_slots.clone().acquire_owned().await;
            if let Err(e) = me.heal(g, None).await {
                tracing::debug!(xlator = %me.base.name, gfid = %g, "background heal: {e}");
            }
            me.healing.remove(&g);
        });
    }

    /// Heals `g` and whatever healing it reveals (entries made on a stale replica are healed
    /// next). `choice` resolves a split-brain of `g` itself.
    pub async fn heal(
        self: &Arc<Self>,
        g: Gfid,
        choice: Option<SplitBrainChoice>,
    ) -> Result<Outcome> {
        let mut queue = VecDeque::from([(g, choice)]);
        let mut first = None;
        let mut done = BTreeSet::new();
        while let Some((g, choice)) = queue.pop_front() {
            if !done.insert(g) {
                continue;
            }
            let r = self.heal_one(g, choice, &mut queue).await;
            first.get_or_insert(r);
        }
        first.unwrap_or(Ok(Outcome::Clean))
    }

    async fn heal_one(
        self: &Arc<Self>,
        g: Gfid,
        choice: Option<SplitBrainChoice>,
        queue: &mut VecDeque<(Gfid, Option<SplitBrainChoice>)>,
    ) -> Result<Outcome> {
        let ctx = Ctx::root();
        let want = Xattrs::from([(format!("{}*", keys::GFID2PATH_PREFIX), Bytes::new())]);
        let results = self.lookup_all(&ctx, &Loc::gfid(g), &want).await;
        let present: Vec<bool> = results
            .iter()
            .map(|r| matches!(r, Ok((ia, _)) if ia.gfid == g))
            .collect();
        if !present.iter().any(|p| *p) {
            if results.iter().all(|r| !matches!(r, Err(Errno::ENOTCONN))) {
                // Gone everywhere: an index entry left by a crash; drop it.
                for i in self.up_list() {
                    let _ = self
                        .sub(i)
                        .removexattr(&ctx, &Loc::gfid(g), keys::INDEX_PENDING)
                        .await;
                }
                self.split_brain.remove(&g);
                return Ok(Outcome::Gone);
            }
            return Err(first_error(&results));
        }
        if self.up_list().len() < 2 {
            return Err(Errno::ENOTCONN);
        }
        let (ia, x) = results
            .iter()
            .flatten()
            .find(|(ia, _)| ia.gfid == g)
            .cloned()
            .expect("present");
        // Missing where it should be: the parent's entry heal makes it, then this goes on.
        let missing = (0..self.n()).any(|i| self.is_up(i) && !present[i]);
        if missing && !g.is_root() {
            let parent = if ia.is_dir() {
                let i = present.iter().position(|p| *p).expect("present");
                self.sub(i)
                    .getxattr(&ctx, &Loc::gfid(g), Some(keys::PARENT_GFID))
                    .await
                    .ok()
                    .and_then(|x| x.get(keys::PARENT_GFID).and_then(|v| Gfid::from_slice(v)))
            } else {
                x.iter()
                    .filter(|(k, _)| k.starts_with(keys::GFID2PATH_PREFIX))
                    .find_map(|(_, v)| {
                        let s = std::str::from_utf8(v).ok()?;
                        Gfid::parse(s.split_once('/')?.0)
                    })
            };
            if let Some(p) = parent {
                let mut inner = VecDeque::new();
                self.heal_under_lock(p, TxnType::Entry, None, &mut inner)
                    .await?;
                queue.extend(inner);
            }
        }
        let mut outcome = Outcome::Clean;
        let mut merge = |o: Outcome| {
            if o == Outcome::SplitBrain || (o == Outcome::Healed && outcome == Outcome::Clean) {
                outcome = o;
            }
        };
        if ia.is_dir() {
            merge(
                self.heal_under_lock(g, TxnType::Entry, choice, queue)
                    .await?,
            );
            merge(
                self.heal_under_lock(g, TxnType::Metadata, choice, queue)
                    .await?,
            );
        } else {
            merge(
                self.heal_under_lock(g, TxnType::Data, choice, queue)
                    .await?,
            );
            merge(
                self.heal_under_lock(g, TxnType::Metadata, choice, queue)
                    .await?,
            );
        }
        if outcome == Outcome::SplitBrain {
            self.split_brain.insert(g, self.where_seen(g));
        } else {
            self.split_brain.remove(&g);
            if let Some(mut info) = self.inodes.get_mut(&g) {
                info.split_brain = false;
            }
            if outcome == Outcome::Healed {
                // Everyone is equal now; the next lookup learns it afresh.
                self.inodes.remove(&g);
                tracing::info!(xlator = %self.base.name, gfid = %g, path = %self.where_seen(g), "healed");
            }
        }
        Ok(outcome)
    }

    /// One kind of heal of `g` under the lock a transaction of that kind takes.
    async fn heal_under_lock(
        self: &Arc<Self>,
        g: Gfid,
        ty: TxnType,
        choice: Option<SplitBrainChoice>,
        queue: &mut VecDeque<(Gfid, Option<SplitBrainChoice>)>,
    ) -> Result<Outcome> {
        if ty == TxnType::Data {
            // Our own eager lock would make the heal wait out the post-op delay.
            self.eager_flush(g).await;
        }
        let ctx = self.heal_ctx();
        let locked = self.heal_lock(&ctx, g, ty).await;
        let r = match ty {
            TxnType::Data => self.heal_data_locked(&ctx, g, choice, &locked).await,
            TxnType::Metadata => self.heal_metadata_locked(&ctx, g, choice, &locked).await,
            TxnType::Entry => {
                self.heal_entries_locked(&ctx, g, choice, &locked, queue)
                    .await
            }
        };
        self.heal_unlock(&ctx, g, ty, &locked).await;
        r
    }
}
