//! The heal daemon's side (GlusterFS's afr-self-heald.c): crawling the bricks' indices or the
//! whole volume, heal info, and split-brain resolution by an operator.

use super::super::changelog::TxnType;
use super::super::common::{Afr, SplitBrainChoice};
use super::common::Outcome;
use crate::fop::keys;
use crate::fop::*;
use serde::Serialize;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

#[derive(Clone, Debug, Serialize)]
pub struct PendingEntry {
    pub gfid: String,
    /// The path when this gateway has seen it, else `<gfid:…>` as GlusterFS prints it.
    pub path: String,
}

/// `heal info` for one replica set: what each replica's index lists, and split-brains.
#[derive(Clone, Debug, Serialize)]
pub struct HealInfo {
    pub replicate: String,
    /// Per replica (client name): connected, and the entries its index lists.
    pub replicas: Vec<(String, bool, Vec<PendingEntry>)>,
    pub split_brain: Vec<PendingEntry>,
}

impl Afr {
    /// The gfids replica `i`'s heal index lists; None when it cannot be asked.
    async fn index_of(&self, i: usize) -> Option<Vec<Gfid>> {
        if !self.is_up(i) {
            return None;
        }
        let x = self
            .sub(i)
            .getxattr(&Ctx::root(), &Loc::root(), Some(keys::INDEX_PENDING))
            .await
            .ok()?;
        let v = x.get(keys::INDEX_PENDING)?;
        Some(
            std::str::from_utf8(v)
                .ok()?
                .lines()
                .filter_map(Gfid::parse)
                .collect(),
        )
    }

    /// Heals everything the replicas' indices list. Returns (healed, still pending).
    pub async fn crawl_index(self: &Arc<Self>) -> (usize, usize) {
        if self.up_list().len() < 2 {
            return (0, 0);
        }
        let mut all = BTreeSet::new();
        for i in 0..self.n() {
            if let Some(v) = self.index_of(i).await {
                all.extend(v);
            }
        }
        let (mut healed, mut left) = (0, 0);
        let results = futures::stream::iter(all.into_iter().map(|g| {
            let me = self.clone();
            async move {
                if me.healing.insert(g, ()).is_some() {
                    return Err(Errno::EAGAIN);
                }
                let r = me.heal(g, None).await;
                if let Ok(Outcome::Clean) = r {
                    // Listed, yet nothing is pending on any copy (an index entry another
                    // implementation left, or a crash between post-op and unindexing): drop
                    // it, as GlusterFS's self-heal daemon purges such entries.
                    for i in me.up_list() {
                        let _ = me
                            .sub(i)
                            .removexattr(&Ctx::root(), &Loc::gfid(g), keys::INDEX_PENDING)
                            .await;
                    }
                }
                me.healing.remove(&g);
                r
            }
        }));
        use futures::StreamExt;
        let mut s = results.buffer_unordered(super::super::common::HEAL_PARALLEL);
        while let Some(r) = s.next().await {
            match r {
                Ok(Outcome::Healed) | Ok(Outcome::Gone) | Ok(Outcome::Clean) => healed += 1,
                _ => left += 1,
            }
        }
        (healed, left)
    }

    /// Heals the whole tree from the root, not only what the indices list (`heal full`).
    pub async fn heal_full(self: &Arc<Self>) -> Result<usize> {
        self.heal_full_with(&|_, _| {}).await
    }

    /// `heal_full`, telling `progress` (entries crawled, directories still to crawl) after
    /// each directory.
    pub async fn heal_full_with(
        self: &Arc<Self>,
        progress: &(dyn Fn(usize, usize) + Send + Sync),
    ) -> Result<usize> {
        let ctx = Ctx::root();
        let mut dirs = VecDeque::from([Gfid::ROOT]);
        let mut n = 0;
        while let Some(d) = dirs.pop_front() {
            progress(n, dirs.len() + 1);
            let _ = self.heal(d, None).await;
            let i = self
                .up_list()
                .into_iter()
                .find(|i| !self.is_arbiter(*i))
                .ok_or(Errno::ENOTCONN)?;
            for (_, ia) in self.list_dir(&ctx, i, d).await? {
                n += 1;
                if ia.is_dir() {
                    dirs.push_back(ia.gfid);
                } else {
                    let _ = self.heal(ia.gfid, None).await;
                }
            }
        }
        Ok(n)
    }

    /// Whether `g`'s changelogs put it in split-brain (data, metadata or, for a file, entry
    /// type mismatch), read without healing: heal info asks this of every listed entry, since
    /// the process that met the split-brain may be another gateway or mount.
    async fn is_split(&self, g: Gfid) -> bool {
        let results = self
            .lookup_all(&Ctx::root(), &Loc::gfid(g), &Xattrs::new())
            .await;
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
            .any(|(ia, _)| ia.gfid == g && ia.is_dir());
        let main = if is_dir {
            TxnType::Entry
        } else {
            TxnType::Data
        };
        (!is_dir && self.interpret(&replies, main).1)
            || self.interpret(&replies, TxnType::Metadata).1
    }

    pub async fn info(self: &Arc<Self>) -> HealInfo {
        let mut replicas = Vec::new();
        let mut listed_all = BTreeSet::new();
        for i in 0..self.n() {
            let listed = self.index_of(i).await;
            listed_all.extend(listed.iter().flatten().copied());
            let entries = listed
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|g| PendingEntry {
                    gfid: g.to_string(),
                    path: self.where_seen(g),
                })
                .collect();
            replicas.push((self.names[i].clone(), listed.is_some(), entries));
        }
        // A split-brain no index lists any more was resolved (perhaps by another gateway).
        if replicas.iter().all(|r| r.1) {
            self.split_brain.retain(|g, _| listed_all.contains(g));
        }
        for g in listed_all.into_iter().take(1000) {
            if !self.split_brain.contains_key(&g) && self.is_split(g).await {
                self.split_brain.insert(g, self.where_seen(g));
            }
        }
        let split_brain = self
            .split_brain
            .iter()
            .map(|e| PendingEntry {
                gfid: e.key().to_string(),
                path: e.value().clone(),
            })
            .collect();
        HealInfo {
            replicate: self.base.name.clone(),
            replicas,
            split_brain,
        }
    }

    /// Per replica, how many entries its index lists (None when it cannot be asked), and the
    /// split-brains known: the cheap part of `info`, for metrics.
    pub async fn pending_counts(&self) -> (Vec<(String, Option<usize>)>, usize) {
        let mut out = Vec::new();
        for i in 0..self.n() {
            out.push((
                self.names[i].clone(),
                self.index_of(i).await.map(|v| v.len()),
            ));
        }
        (out, self.split_brain.len())
    }

    /// Resolves the split-brain of `g` (or of every one known when None) with `choice`.
    pub async fn resolve(
        self: &Arc<Self>,
        g: Option<Gfid>,
        choice: SplitBrainChoice,
    ) -> Vec<(String, Result<Outcome>)> {
        let targets: Vec<Gfid> = match g {
            Some(g) => vec![g],
            None => self.split_brain.iter().map(|e| *e.key()).collect(),
        };
        let mut out = Vec::new();
        for g in targets {
            let r = self.heal(g, Some(choice)).await;
            out.push((self.where_seen(g), r));
        }
        out
    }

    /// The index of the replica named `name` (its client translator's name).
    pub fn replica_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// True when this replica set holds `g` (any replica answers for it).
    pub async fn holds(&self, g: Gfid) -> bool {
        let r = self
            .lookup_all(&Ctx::root(), &Loc::gfid(g), &Xattrs::new())
            .await;
        r.iter().any(|r| matches!(r, Ok((ia, _)) if ia.gfid == g))
    }
}
