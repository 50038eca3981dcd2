//! Self-heal: making the replicas the changelogs call stale equal to a good one, under the
//! same locks transactions take, then zeroing the marks. Entry heal (names in a directory),
//! metadata heal (ownership, mode, times, xattrs) and data heal (contents, block by block),
//! as GlusterFS's AFR does them; split-brain is never resolved unless a policy or an operator
//! picks the source.

use super::changelog::{self, Changelog, TxnType};
use super::transaction::LockOn;
use super::{Afr, first_error};
use crate::fop::keys;
use crate::fop::*;
use crate::mdata::{self, Mdata};
use bytes::Bytes;
use futures::future::join_all;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// How a split-brain is resolved: the rule that picks the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitBrainChoice {
    BiggerFile,
    LatestMtime,
    LatestCtime,
    Majority,
    /// This replica (by index) is the source.
    Source(usize),
}

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
const HEAL_BLOCK: u32 = 128 * 1024;

/// Xattrs a heal never copies: identity, and the changelogs themselves.
fn private_xattr(k: &str) -> bool {
    // Times converge by their own rule (converge_times), not by copying one replica's.
    k == mdata::KEY
        || k.starts_with("trusted.afr.")
        || k == keys::GFID
        || k == keys::VOLUME_ID
        || k.starts_with(keys::GFID2PATH_PREFIX)
        || k.starts_with("glusterfs.")
}

fn counters(ty: TxnType, v: i32) -> [i32; 3] {
    let mut c = [0; 3];
    c[ty as usize] = v;
    c
}

impl Afr {
    /// Starts healing `g` unless it is being healed; at most a few heals run at once.
    pub(super) fn heal_in_background(self: &Arc<Self>, g: Gfid) {
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

    /// Locks (inodelk in the data or metadata range, or entrylk on the whole directory) on every
    /// up replica, as a transaction would; returns where it was got.
    async fn heal_lock(&self, ctx: &Ctx, g: Gfid, ty: TxnType) -> Vec<bool> {
        self.lock_all(ctx, &LockOn::for_heal(g, ty)).await
    }

    async fn heal_unlock(&self, ctx: &Ctx, g: Gfid, ty: TxnType, locked: &[bool]) {
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
    async fn locked_changelog(
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
    async fn read_marks(&self, ctx: &Ctx, g: Gfid, on: &[bool]) -> Vec<Option<(Iatt, Xattrs)>> {
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
    async fn clear_marks(&self, ctx: &Ctx, g: Gfid, ty: TxnType, c: &Changelog, on: &[bool]) {
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
    async fn converge_times(
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

    fn heal_ctx(&self) -> Ctx {
        Ctx {
            lk_owner: self.next_owner(),
            ..Ctx::root()
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

    /// The source a split-brain resolution rule picks among `replies` (data holders only).
    fn choose(
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

    async fn heal_data_locked(
        self: &Arc<Self>,
        ctx: &Ctx,
        g: Gfid,
        choice: Option<SplitBrainChoice>,
        locked: &[bool],
    ) -> Result<Outcome> {
        let (replies, answered, c) = self
            .locked_changelog(ctx, g, TxnType::Data, locked, |_| true)
            .await?;
        if !c.needs_heal() {
            return Ok(Outcome::Clean);
        }
        let d = changelog::find_direction(&c, &answered).map_err(|_| Errno::ENOTCONN)?;
        let mut sources: Vec<bool> = d.sources.clone();
        if let Some(a) = self.arbiter {
            sources[a] = false;
        }
        let source = if sources.iter().any(|s| *s) {
            // Several sources (only dirty marks): the one that witnessed most, then the first.
            (0..self.n())
                .filter(|i| sources[*i])
                .max_by_key(|i| (d.witness[*i], std::cmp::Reverse(*i)))
        } else {
            match choice.or(self.favorite) {
                Some(ch) => {
                    let s = self.choose(ch, &replies);
                    if s.is_none() {
                        tracing::warn!(xlator = %self.base.name, gfid = %g, ?ch, "split-brain: the policy does not pick a copy");
                    }
                    s
                }
                None => None,
            }
        };
        let Some(src) = source else {
            if d.split_brain() {
                tracing::warn!(xlator = %self.base.name, gfid = %g, path = %self.where_seen(g), "data split-brain: left for an operator (gwctl volume heal VOL split-brain …)");
                return Ok(Outcome::SplitBrain);
            }
            // Only the arbiter is good, and it holds no data: wait for a data replica.
            return Err(Errno::ENOTCONN);
        };
        let src_ia = replies[src].as_ref().expect("source answered").0.clone();
        let sinks: Vec<usize> = (0..self.n())
            .filter(|i| *i != src && answered[*i] && !self.is_arbiter(*i))
            .collect();
        let src_fd = Fd::anonymous(g);
        for &k in &sinks {
            self.copy_data(ctx, src, k, &src_fd, &src_ia).await?;
        }
        self.converge_times(ctx, g, &replies, &answered, Some(src))
            .await;
        self.clear_marks(ctx, g, TxnType::Data, &c, &answered).await;
        Ok(Outcome::Healed)
    }

    /// Makes replica `k`'s data equal to `src`'s: with the diff algorithm only the blocks whose
    /// checksums differ are read and written.
    async fn copy_data(
        &self,
        ctx: &Ctx,
        src: usize,
        k: usize,
        src_fd: &FdRef,
        src_ia: &Iatt,
    ) -> Result<()> {
        let g = src_ia.gfid;
        let sink_fd = Fd::anonymous(g);
        let sink_size = self.sub(k).fstat(ctx, &sink_fd).await?.size;
        let mut off = 0u64;
        let mut written = 0u64;
        while off < src_ia.size {
            let want = (src_ia.size - off).min(HEAL_BLOCK as u64) as u32;
            // diff: both bricks checksum the block where the sink has one; only a block whose
            // checksums differ crosses the wire.
            if self.diff && off < sink_size {
                let (a, b) = futures::join!(
                    self.sub(src).rchecksum(ctx, src_fd, off, want),
                    self.sub(k).rchecksum(ctx, &sink_fd, off, want)
                );
                if a? == b? {
                    off += want as u64;
                    continue;
                }
            }
            let a = self.sub(src).read(ctx, src_fd, off, want).await?;
            if a.is_empty() {
                break;
            }
            let len = a.len() as u64;
            self.sub(k).write(ctx, &sink_fd, off, a).await?;
            written += len;
            off += want as u64;
        }
        if sink_size != src_ia.size {
            self.sub(k).ftruncate(ctx, &sink_fd, src_ia.size).await?;
        }
        // The copy keeps the source's times, as GlusterFS's data heal does.
        let times = SetAttr {
            atime: Some(SetTime::At(src_ia.atime)),
            mtime: Some(SetTime::At(src_ia.mtime)),
            ..Default::default()
        };
        self.sub(k).setattr(ctx, &Loc::gfid(g), &times).await?;
        tracing::info!(xlator = %self.base.name, gfid = %g, path = %self.where_seen(g), from = %self.names[src], to = %self.names[k], size = src_ia.size, written, "data healed");
        Ok(())
    }

    async fn heal_metadata_locked(
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

    /// Every entry of directory `g` on replica `i`: name → attributes.
    async fn list_dir(&self, ctx: &Ctx, i: usize, g: Gfid) -> Result<BTreeMap<String, Iatt>> {
        let fd = self.sub(i).opendir(ctx, &Loc::gfid(g)).await?;
        let mut out = BTreeMap::new();
        let mut off = 0;
        let res = loop {
            let ents = match self
                .sub(i)
                .readdirp(ctx, &fd, off, 64 * 1024, &Xattrs::new())
                .await
            {
                Ok(e) => e,
                Err(e) => break Err(e),
            };
            if ents.is_empty() {
                break Ok(());
            }
            for e in ents {
                off = e.d_off;
                if e.name == "." || e.name == ".." {
                    continue;
                }
                if let Some(ia) = e.iatt {
                    out.insert(e.name, ia);
                }
            }
        };
        self.sub(i).release(&fd).await;
        res.map(|_| out)
    }

    /// Removes `name` (a whole tree for a directory) from directory `parent` on replica `k`.
    async fn remove_tree(
        &self,
        ctx: &Ctx,
        k: usize,
        parent: Gfid,
        name: &str,
        ia: &Iatt,
    ) -> Result<()> {
        let l = Loc::child(parent, name).with_gfid(ia.gfid);
        if !ia.is_dir() {
            return self.sub(k).unlink(ctx, &l).await;
        }
        let mut stack = vec![(parent, name.to_string(), ia.gfid, false)];
        while let Some((p, n, g, expanded)) = stack.pop() {
            if expanded {
                self.sub(k)
                    .rmdir(ctx, &Loc::child(p, n.as_str()).with_gfid(g))
                    .await?;
                continue;
            }
            stack.push((p, n, g, true));
            for (cn, cia) in self.list_dir(ctx, k, g).await? {
                if cia.is_dir() {
                    stack.push((g, cn, cia.gfid, false));
                } else {
                    self.sub(k)
                        .unlink(ctx, &Loc::child(g, cn.as_str()).with_gfid(cia.gfid))
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Makes `name` in directory `parent` on replica `k` as it is on `src`, with its gfid.
    async fn make_entry(
        &self,
        ctx: &Ctx,
        src: usize,
        k: usize,
        parent: Gfid,
        name: &str,
        ia: &Iatt,
    ) -> Result<()> {
        let l = Loc::child(parent, name);
        let c = Ctx {
            uid: ia.uid,
            gid: ia.gid,
            ..ctx.clone()
        };
        let e = NewEntry {
            gfid: ia.gfid,
            mode: if ia.is_dir() {
                ia.mode & 0o7777
            } else {
                ia.mode
            },
            umask: 0,
            rdev: ia.rdev,
            xattrs: Xattrs::new(),
        };
        if ia.is_dir() {
            self.sub(k).mkdir(&c, &l, &e).await?;
        } else if ia.is_symlink() {
            let target = self.sub(src).readlink(ctx, &Loc::gfid(ia.gfid)).await?;
            self.sub(k).symlink(&c, &l, &target, &e).await?;
        } else if self
            .sub(k)
            .lookup(ctx, &Loc::gfid(ia.gfid), &Xattrs::new())
            .await
            .is_ok()
        {
            // Another name of an inode the replica has: a hard link.
            self.sub(k).link(ctx, &Loc::gfid(ia.gfid), &l).await?;
        } else {
            self.sub(k).mknod(&c, &l, &e).await?;
        }
        Ok(())
    }

    async fn heal_entries_locked(
        self: &Arc<Self>,
        ctx: &Ctx,
        g: Gfid,
        choice: Option<SplitBrainChoice>,
        locked: &[bool],
        queue: &mut VecDeque<(Gfid, Option<SplitBrainChoice>)>,
    ) -> Result<Outcome> {
        let (replies, answered, c) = self
            .locked_changelog(ctx, g, TxnType::Entry, locked, Iatt::is_dir)
            .await?;
        let d = changelog::find_direction(&c, &answered).map_err(|_| Errno::ENOTCONN)?;
        // Entry split-brain is merged conservatively, as GlusterFS does: every replica is a
        // source, names missing anywhere are made, none is removed. A choice picks one.
        let (sources, remove) = if d.split_brain() {
            match choice.and_then(|ch| self.choose(ch, &replies)) {
                Some(s) => ((0..self.n()).map(|i| i == s).collect::<Vec<_>>(), true),
                None => (answered.clone(), false),
            }
        } else {
            (d.sources.clone(), true)
        };
        let mut lists: Vec<Option<BTreeMap<String, Iatt>>> = Vec::with_capacity(self.n());
        for (i, on) in answered.iter().enumerate() {
            lists.push(if *on {
                Some(self.list_dir(ctx, i, g).await?)
            } else {
                None
            });
        }
        let mut changed = false;
        // Removals first: names only stale replicas have, and names whose gfid differs.
        if remove {
            for k in (0..self.n()).filter(|k| answered[*k] && !sources[*k]) {
                let list = lists[k].clone().unwrap_or_default();
                for (name, ia) in &list {
                    let in_source = (0..self.n())
                        .filter(|s| sources[*s])
                        .find_map(|s| lists[s].as_ref().and_then(|l| l.get(name)));
                    if in_source.is_some_and(|s| s.gfid == ia.gfid) {
                        continue;
                    }
                    tracing::info!(xlator = %self.base.name, dir = %g, name = %name, replica = %self.names[k], "entry heal: removing a stale name");
                    self.remove_tree(ctx, k, g, name, ia).await?;
                    if let Some(l) = lists[k].as_mut() {
                        l.remove(name);
                    }
                    changed = true;
                }
            }
        }
        // Then what the sources have and a replica lacks.
        for s in (0..self.n()).filter(|s| sources[*s]) {
            let Some(list) = lists[s].clone() else {
                continue;
            };
            for (name, ia) in &list {
                for k in (0..self.n()).filter(|k| *k != s && answered[*k]) {
                    if lists[k].as_ref().is_some_and(|l| l.contains_key(name)) {
                        continue;
                    }
                    tracing::info!(xlator = %self.base.name, dir = %g, name = %name, replica = %self.names[k], "entry heal: making a missing name");
                    match self.make_entry(ctx, s, k, g, name, ia).await {
                        Ok(()) => {}
                        Err(Errno::EEXIST) => {}
                        Err(e) => return Err(e),
                    }
                    if let Some(l) = lists[k].as_mut() {
                        l.insert(name.clone(), ia.clone());
                    }
                    // The new copy is empty: the source blames it for data and metadata (and
                    // entries for a directory) so the heal that follows fills it in.
                    // (GlusterFS's new-entry marks; a directory's data counter asks for a
                    // full crawl of it.)
                    let blame = if ia.is_dir() {
                        [1, 1, 1]
                    } else if ia.is_symlink() {
                        [0, 1, 0]
                    } else {
                        [1, 1, 0]
                    };
                    let x = Xattrs::from([(self.keys[k].clone(), changelog::encode(blame))]);
                    let _ = self
                        .sub(s)
                        .xattrop(ctx, &Loc::gfid(ia.gfid), XattropOp::AddArray, &x)
                        .await;
                    queue.push_back((ia.gfid, None));
                    changed = true;
                }
            }
        }
        if changed {
            // Names made or removed here moved no times on the sinks.
            self.converge_times(ctx, g, &replies, &answered, None).await;
        }
        self.clear_marks(ctx, g, TxnType::Entry, &c, &answered)
            .await;
        // A directory's data counter is GlusterFS's "needs a full crawl" flag, which a full
        // entry heal like this one satisfies.
        let xs: Vec<Option<&Xattrs>> = replies.iter().map(|r| r.as_ref().map(|r| &r.1)).collect();
        let full_crawl = Changelog::extract(&xs, &self.keys, TxnType::Data);
        if full_crawl.needs_heal() {
            self.clear_marks(ctx, g, TxnType::Data, &full_crawl, &answered)
                .await;
        }
        Ok(if changed || c.needs_heal() || full_crawl.needs_heal() {
            Outcome::Healed
        } else {
            Outcome::Clean
        })
    }

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
                me.healing.remove(&g);
                r
            }
        }));
        use futures::StreamExt;
        let mut s = results.buffer_unordered(super::HEAL_PARALLEL);
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
