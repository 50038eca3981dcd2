//! `cluster/replicate` (GlusterFS AFR): every subvolume holds a full copy. Changes run as
//! transactions (lock → pre-op mark → the fop on every up replica → post-op, which clears the
//! mark and, on the replicas that succeeded, blames those that did not → unlock), so a replica
//! that was away is known to be stale from the changelogs alone, by us or by GlusterFS. Reads
//! go to one replica that no other accuses, with failover. Lookups notice pending marks and
//! start a heal in the background; the heal daemon (gatewayd) crawls the bricks' indices.

pub mod changelog;
mod heal;
pub mod options;
mod transaction;

pub use heal::{HealInfo, PendingEntry, SplitBrainChoice};
pub use options::OPTIONS;

use crate::fop::keys;
use crate::fop::*;
use crate::registry::XlatorType;
use crate::xlator::{Xlator, XlatorBase, XlatorRef};
use async_trait::async_trait;
use bytes::Bytes;
use changelog::TxnType;
use dashmap::DashMap;
use futures::future::join_all;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use transaction::{Change, LockOn};

pub fn xlator_type(name: &'static str) -> XlatorType {
    XlatorType {
        type_name: name,
        options: OPTIONS,
        min_children: 1,
        max_children: 64,
        build: Arc::new(|base, o| {
            let n = base.children.len();
            let names = o.list("afr-pending-xattr");
            if !names.is_empty() && names.len() != n {
                return Err(format!(
                    "afr-pending-xattr names {} replicas but there are {n} subvolumes",
                    names.len()
                ));
            }
            let keys = if names.is_empty() {
                base.children
                    .iter()
                    .map(|c| format!("trusted.afr.{}", c.name()))
                    .collect()
            } else {
                names.iter().map(|k| format!("trusted.afr.{k}")).collect()
            };
            let arbiter = match o.int_or("arbiter-count", 0) {
                0 => None,
                _ if n < 3 => return Err("arbiter-count 1 needs 3 replicas".into()),
                _ => Some(n - 1),
            };
            let quorum = match o.str_or("quorum-type", "none").as_str() {
                "auto" => Quorum::Auto,
                "fixed" => {
                    let c = o.int_or("quorum-count", 0) as usize;
                    if c == 0 || c > n {
                        return Err(format!(
                            "quorum-type fixed needs quorum-count between 1 and {n}"
                        ));
                    }
                    Quorum::Fixed(c)
                }
                _ => Quorum::None,
            };
            let favorite = match o.str_or("favorite-child-policy", "none").as_str() {
                "size" => Some(SplitBrainChoice::BiggerFile),
                "mtime" => Some(SplitBrainChoice::LatestMtime),
                "ctime" => Some(SplitBrainChoice::LatestCtime),
                "majority" => Some(SplitBrainChoice::Majority),
                _ => None,
            };
            let afr = Afr {
                names: base.children.iter().map(|c| c.name().to_string()).collect(),
                up: (0..n).map(|_| AtomicBool::new(false)).collect(),
                generation: (0..n).map(|_| AtomicU64::new(0)).collect(),
                up_since: (0..n).map(|_| AtomicU64::new(0)).collect(),
                born: std::time::Instant::now(),
                reported: (0..n).map(|_| AtomicBool::new(false)).collect(),
                announced: AtomicBool::new(false),
                notify_lock: Mutex::new(()),
                keys,
                arbiter,
                quorum,
                favorite,
                read_hash: o.int_or("read-hash-mode", 1),
                self_heal: [
                    o.bool_or("data-self-heal", true),
                    o.bool_or("metadata-self-heal", true),
                    o.bool_or("entry-self-heal", true),
                ],
                diff: o.str_or("data-self-heal-algorithm", "diff") == "diff",
                heal_daemon: o.bool_or("self-heal-daemon", true),
                eager_lock: o.bool_or("eager-lock", true),
                post_op_delay: std::time::Duration::from_secs(
                    o.int_or("post-op-delay-secs", 1).max(0) as u64,
                ),
                eager: DashMap::new(),
                inodes: DashMap::new(),
                healing: DashMap::new(),
                split_brain: DashMap::new(),
                names_seen: DashMap::new(),
                owners: AtomicU64::new(1),
                came_back: tokio::sync::Notify::new(),
                heal_slots: Arc::new(tokio::sync::Semaphore::new(HEAL_PARALLEL)),
                base,
            };
            Ok(Arc::new(Replicate { afr: Arc::new(afr) }))
        }),
    }
}

const NAMES_MAX: usize = 1 << 20;

/// Background heals one translator runs at once.
const HEAL_PARALLEL: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quorum {
    None,
    Auto,
    Fixed(usize),
}

/// What the last lookup learnt about an inode: which replicas may serve it.
#[derive(Clone, Debug)]
struct InodeInfo {
    /// Replicas whose data (file) or entries (directory) no other replica accuses.
    good: Vec<bool>,
    /// Every replica is accused: data (or entry) split-brain.
    split_brain: bool,
    /// Where it was last seen, for heal info: the parent and name, and a path if one was given.
    name: Option<(Gfid, String)>,
    path: Option<String>,
}

/// The translator: a thin handle on `Afr`, which background heals share.
pub struct Replicate {
    afr: Arc<Afr>,
}

impl Replicate {
    /// The state behind the translator, for the heal daemon.
    pub fn afr(&self) -> &Arc<Afr> {
        &self.afr
    }
}

pub struct Afr {
    base: XlatorBase,
    names: Vec<String>,
    /// The changelog key of each replica (`trusted.afr.<vol>-client-N`).
    keys: Vec<String>,
    arbiter: Option<usize>,
    up: Vec<AtomicBool>,
    /// Bumped each time a replica comes back: fds opened there before are gone with the
    /// connection they were opened on.
    generation: Vec<AtomicU64>,
    /// When each replica last came up (ms after `born`): directory listings prefer the one up
    /// longest, whose attributes are the least likely to be stale before a heal.
    up_since: Vec<AtomicU64>,
    born: std::time::Instant,
    reported: Vec<AtomicBool>,
    announced: AtomicBool,
    notify_lock: Mutex<()>,
    quorum: Quorum,
    favorite: Option<SplitBrainChoice>,
    read_hash: i64,
    /// data, metadata, entry self-heal on lookup.
    self_heal: [bool; 3],
    diff: bool,
    /// gatewayd's heal daemon crawls this replica set (`self-heal-daemon`).
    pub heal_daemon: bool,
    eager_lock: bool,
    /// How long an idle inode keeps its eager lock and dirty mark.
    post_op_delay: std::time::Duration,
    eager: DashMap<Gfid, transaction::EagerSlot>,
    inodes: DashMap<Gfid, InodeInfo>,
    /// Gfids a background heal is working on (one heal per inode at a time).
    healing: DashMap<Gfid, ()>,
    /// Gfids found in split-brain, with where they were seen.
    split_brain: DashMap<Gfid, String>,
    /// Parent and name of inodes looked up by name, for the paths heal info prints. Kept
    /// when `inodes` is forgotten; started over past `NAMES_MAX`.
    names_seen: DashMap<Gfid, (Gfid, String)>,
    /// Lock owners: every transaction its own, so two never share a lock.
    owners: AtomicU64,
    /// Signalled when a replica comes back, so the heal daemon crawls at once.
    pub came_back: tokio::sync::Notify,
    heal_slots: Arc<tokio::sync::Semaphore>,
}

fn hash_gfid(g: &Gfid) -> u64 {
    u64::from_le_bytes(g.0[8..16].try_into().expect("8 bytes"))
        ^ u64::from_le_bytes(g.0[0..8].try_into().expect("8 bytes"))
}

/// The error to report when every replica failed: the first that is not a lost connection.
fn first_error<T>(results: &[Result<T>]) -> Errno {
    let mut out = None;
    for r in results {
        if let Err(e) = r {
            if *e != Errno::ENOTCONN {
                return *e;
            }
            out.get_or_insert(*e);
        }
    }
    out.unwrap_or(Errno::ENOTCONN)
}

impl Afr {
    pub fn name(&self) -> &str {
        &self.base.name
    }

    pub fn replica_names(&self) -> &[String] {
        &self.names
    }

    fn n(&self) -> usize {
        self.base.children.len()
    }

    fn sub(&self, i: usize) -> &XlatorRef {
        &self.base.children[i]
    }

    fn is_up(&self, i: usize) -> bool {
        self.up[i].load(Ordering::SeqCst)
    }

    fn up_list(&self) -> Vec<usize> {
        (0..self.n()).filter(|i| self.is_up(*i)).collect()
    }

    fn is_arbiter(&self, i: usize) -> bool {
        self.arbiter == Some(i)
    }

    /// GlusterFS's client quorum over the replicas in `set`.
    fn quorum_met(&self, set: &[bool]) -> bool {
        let count = set.iter().filter(|b| **b).count();
        match self.quorum {
            Quorum::None => count >= 1,
            Quorum::Fixed(c) => count >= c,
            Quorum::Auto => {
                let n = self.n();
                count * 2 > n || (count * 2 == n && set[0])
            }
        }
    }

    fn next_owner(&self) -> u64 {
        // High bit set: never one of the lk_owners frontends pass down for POSIX locks.
        (1 << 63) | self.owners.fetch_add(1, Ordering::Relaxed)
    }

    /// `want` plus every changelog key.
    fn with_afr_keys(&self, want: &Xattrs) -> Xattrs {
        let mut w = want.clone();
        w.insert(keys::AFR_DIRTY.to_string(), Bytes::new());
        for k in &self.keys {
            w.insert(k.clone(), Bytes::new());
        }
        w
    }

    fn strip_afr_keys(&self, mut x: Xattrs, want: &Xattrs) -> Xattrs {
        x.retain(|k, _| !k.starts_with("trusted.afr.") || want.contains_key(k));
        x
    }

    /// Looks `loc` up on every up replica with the changelog keys.
    async fn lookup_all(&self, ctx: &Ctx, loc: &Loc, want: &Xattrs) -> Vec<Result<(Iatt, Xattrs)>> {
        let w = self.with_afr_keys(want);
        join_all((0..self.n()).map(|i| {
            let w = &w;
            async move {
                if !self.is_up(i) {
                    return Err(Errno::ENOTCONN);
                }
                self.sub(i).lookup(ctx, loc, w).await
            }
        }))
        .await
    }

    /// Which replicas may serve `ty`, from their replies: those no trusted replica accuses.
    /// Returns (good, split-brain, something to heal).
    fn interpret(&self, replies: &[Option<&Xattrs>], ty: TxnType) -> (Vec<bool>, bool, bool) {
        let answered: Vec<bool> = replies.iter().map(|r| r.is_some()).collect();
        let c = changelog::Changelog::extract(replies, &self.keys, ty);
        let marked = c.needs_heal();
        match changelog::find_direction(&c, &answered) {
            Ok(d) if d.split_brain() => (vec![false; self.n()], true, true),
            Ok(d) => {
                let heal = marked || d.needs_heal();
                (d.sources, false, heal)
            }
            // One replica answered: nothing it holds accuses it, so it serves.
            Err(_) => (answered, false, marked),
        }
    }

    /// Records what a lookup's replies say about the inode they found (gfid `g`), and starts
    /// a background heal when they disagree. Returns the replica whose reply to pass up.
    fn learn(
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
        if (heal_main && self.self_heal[ty as usize]) || (heal_meta && self.self_heal[1]) {
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

    /// Remembers where `g` was named, for the paths heal info prints.
    fn saw_name(&self, g: Gfid, loc: &Loc) {
        if let (Some(p), Some(n)) = (loc.parent, &loc.name) {
            if self.names_seen.len() >= NAMES_MAX {
                self.names_seen.clear();
            }
            self.names_seen.insert(g, (p, n.clone()));
        }
    }

    /// The replica to read `g` from (`skip`: those that failed already), learning it first
    /// when unknown. EIO for a file in split-brain.
    async fn read_child(self: &Arc<Self>, ctx: &Ctx, g: Gfid, skip: &[usize]) -> Result<usize> {
        let cached = self.inodes.contains_key(&g);
        match self.read_child_once(ctx, g, skip, cached).await {
            // What was learnt earlier may be out of date (another gateway or mount healed it,
            // or resolved the split-brain): look again before refusing.
            Err(Errno::EIO | Errno::ENOTCONN) if cached => {
                self.inodes.remove(&g);
                self.read_child_once(ctx, g, skip, false).await
            }
            r => r,
        }
    }

    async fn read_child_once(
        self: &Arc<Self>,
        ctx: &Ctx,
        g: Gfid,
        skip: &[usize],
        cached: bool,
    ) -> Result<usize> {
        if !cached {
            let results = self.lookup_all(ctx, &Loc::gfid(g), &Xattrs::new()).await;
            if results.iter().all(|r| r.is_err()) {
                return Err(first_error(&results));
            }
            self.learn(g, &results, &Loc::gfid(g));
        }
        let info = self.inodes.get(&g).map(|i| i.clone()).ok_or(Errno::EIO)?;
        if info.split_brain {
            return Err(Errno::EIO);
        }
        let candidates: Vec<usize> = (0..self.n())
            .filter(|i| info.good[*i] && self.is_up(*i) && !skip.contains(i))
            .collect();
        if candidates.is_empty() {
            // A good replica is away and only stale ones are left: not served, as GlusterFS.
            return Err(if (0..self.n()).any(|i| info.good[i]) {
                Errno::ENOTCONN
            } else {
                Errno::EIO
            });
        }
        let k = match self.read_hash {
            0 => 0,
            2 => (hash_gfid(&g) ^ ctx.pid as u64) as usize % candidates.len(),
            _ => hash_gfid(&g) as usize % candidates.len(),
        };
        Ok(candidates[k])
    }

    /// Runs a read-only fop on a good replica, failing over to the next on a lost connection.
    async fn read_fop<T, F, Fut>(self: &Arc<Self>, ctx: &Ctx, g: Gfid, f: F) -> Result<T>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut tried = Vec::new();
        loop {
            let i = self.read_child(ctx, g, &tried).await?;
            match f(i).await {
                Err(Errno::ENOTCONN) => tried.push(i),
                r => return r,
            }
        }
    }

    /// The gfid `loc` names, looked up when it carries none.
    async fn gfid_of(self: &Arc<Self>, ctx: &Ctx, loc: &Loc) -> Result<Gfid> {
        match loc.gfid {
            Some(g) if !g.is_null() => Ok(g),
            _ => Ok(self.lookup(ctx, loc, &Xattrs::new()).await?.0.gfid),
        }
    }

    async fn lookup(
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

    /// The fds a replicated fd holds on its replicas.
    fn child_fds(&self, fd: &FdRef) -> Option<Arc<AfrFd>> {
        fd.ctx_get::<AfrFd>(self.base.id)
    }

    /// The replica `i`'s fd for `fd`: the one opened there, or an anonymous one (a replica
    /// that was down at open and has come back).
    fn fd_on(&self, fd: &FdRef, i: usize) -> FdRef {
        self.child_fds(fd)
            .filter(|a| a.generation.get(i) == Some(&self.generation[i].load(Ordering::SeqCst)))
            .and_then(|a| a.fds.get(i).cloned().flatten())
            .unwrap_or_else(|| Fd::anonymous(fd.gfid))
    }

    fn wrap(&self, gfid: Gfid, flags: i32, is_dir: bool, fds: Vec<Option<FdRef>>) -> FdRef {
        let fd = Fd::new(gfid, flags, is_dir);
        fd.ctx_set(
            self.base.id,
            Arc::new(AfrFd {
                fds,
                generation: self
                    .generation
                    .iter()
                    .map(|g| g.load(Ordering::SeqCst))
                    .collect(),
                readdir_from: Mutex::new(None),
            }),
        );
        fd
    }

    /// Checks quorum before a change: EROFS when too few replicas are up (reads go on).
    fn check_quorum(&self) -> Result<()> {
        let up: Vec<bool> = (0..self.n()).map(|i| self.is_up(i)).collect();
        if self.quorum_met(&up) {
            Ok(())
        } else {
            tracing::warn!(xlator = %self.base.name, up = up.iter().filter(|u| **u).count(), "client quorum is not met: refusing a change");
            Err(Errno::EROFS)
        }
    }

    fn new_gfid(entry: &NewEntry) -> NewEntry {
        let mut e = entry.clone();
        if e.gfid.is_null() {
            e.gfid = Gfid::random();
        }
        e
    }

    /// An entry fop in `parent`: locked on the name, marked on the parent.
    async fn entry_txn<T, F, Fut>(
        self: &Arc<Self>,
        loc: &Loc,
        also: Option<&Loc>,
        f: F,
    ) -> Result<T>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut names = vec![(loc.parent()?, loc.name()?.to_string())];
        if let Some(o) = also {
            names.push((o.parent()?, o.name()?.to_string()));
        }
        let marks: Vec<Gfid> = {
            let mut m: Vec<Gfid> = names.iter().map(|(p, _)| *p).collect();
            m.dedup();
            m
        };
        self.transact(
            Change {
                ty: TxnType::Entry,
                marks,
                lock: LockOn::Entries(names),
            },
            f,
        )
        .await
    }

    /// A data or metadata change of inode `g`: locked on its range, marked on the inode.
    async fn inode_txn<T, F, Fut>(self: &Arc<Self>, g: Gfid, ty: TxnType, f: F) -> Result<T>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.transact(
            Change {
                ty,
                marks: vec![g],
                lock: LockOn::Inode(g, ty),
            },
            f,
        )
        .await
    }

    /// Iatt for a data change on the arbiter, which stores no data: its own stat stands in.
    async fn arbiter_iatt(&self, ctx: &Ctx, i: usize, g: Gfid) -> Result<Iatt> {
        self.sub(i).stat(ctx, &Loc::gfid(g)).await
    }
}

struct AfrFd {
    fds: Vec<Option<FdRef>>,
    generation: Vec<u64>,
    /// The replica a directory is read from: chosen at the first readdir, kept so the
    /// offsets stay that replica's.
    readdir_from: Mutex<Option<usize>>,
}

impl Replicate {
    async fn readdir_any(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: Option<&Xattrs>,
    ) -> Result<Vec<Dirent>> {
        let a = &self.afr;
        let afd = a.child_fds(fd).ok_or(Errno::EBADF)?;
        let chosen = {
            let mut from = afd.readdir_from.lock();
            match *from {
                Some(i) if offset != 0 || a.is_up(i) => i,
                _ => {
                    let good = a.inodes.get(&fd.gfid).map(|i| i.good.clone());
                    let ok = |i: usize| {
                        a.is_up(i)
                            && afd.fds.get(i).is_some_and(|f| f.is_some())
                            && good.as_ref().is_none_or(|g| g[i] || !g.iter().any(|x| *x))
                    };
                    let since = |i: &usize| a.up_since[*i].load(Ordering::SeqCst);
                    let i = (0..a.n())
                        .filter(|i| !a.is_arbiter(*i) && ok(*i))
                        .min_by_key(since)
                        .or_else(|| (0..a.n()).find(|i| ok(*i)))
                        .ok_or(Errno::ENOTCONN)?;
                    *from = Some(i);
                    i
                }
            }
        };
        if !a.is_up(chosen) {
            return Err(Errno::ENOTCONN);
        }
        let child = afd.fds[chosen].clone().ok_or(Errno::EBADF)?;
        match want {
            Some(w) => {
                let mut out = a.sub(chosen).readdirp(ctx, &child, offset, size, w).await?;
                for e in &mut out {
                    e.xattrs = a.strip_afr_keys(std::mem::take(&mut e.xattrs), w);
                }
                Ok(out)
            }
            None => a.sub(chosen).readdir(ctx, &child, offset, size).await,
        }
    }
}

#[async_trait]
impl Xlator for Replicate {
    fn base(&self) -> &XlatorBase {
        &self.afr.base
    }

    fn as_any(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        Some(self)
    }

    async fn fini(&self) {
        self.afr.eager_flush_all().await;
    }

    async fn notify(&self, event: Event, from: usize) {
        let a = &self.afr;
        let (announce, back) = {
            let _g = a.notify_lock.lock();
            let was_up = a.is_up(from);
            match event {
                Event::ChildUp => {
                    a.up[from].store(true, Ordering::SeqCst);
                    a.reported[from].store(true, Ordering::SeqCst);
                }
                Event::ChildDown => {
                    a.up[from].store(false, Ordering::SeqCst);
                    a.reported[from].store(true, Ordering::SeqCst);
                }
                Event::ChildConnecting => return,
            }
            let any_up = (0..a.n()).any(|i| a.is_up(i));
            let all_reported = a.reported.iter().all(|r| r.load(Ordering::SeqCst));
            let announce = if any_up && all_reported && !a.announced.swap(true, Ordering::SeqCst) {
                Some(Event::ChildUp)
            } else if !any_up && a.announced.swap(false, Ordering::SeqCst) {
                Some(Event::ChildDown)
            } else {
                None
            };
            (announce, event == Event::ChildUp && !was_up)
        };
        if back {
            a.generation[from].fetch_add(1, Ordering::SeqCst);
            a.up_since[from].store(a.born.elapsed().as_millis() as u64, Ordering::SeqCst);
            // What it holds may be stale now: forget who is good, and let the heal daemon in.
            a.inodes.clear();
            a.came_back.notify_waiters();
            tracing::info!(xlator = %a.base.name, replica = %a.names[from], "replica is up");
        } else if event == Event::ChildDown {
            tracing::warn!(xlator = %a.base.name, replica = %a.names[from], "replica is down");
        }
        if let Some(e) = announce {
            a.base.notify_parents(e).await;
        }
    }

    async fn lookup(&self, ctx: &Ctx, loc: &Loc, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        self.afr.lookup(ctx, loc, want).await
    }

    async fn stat(&self, ctx: &Ctx, loc: &Loc) -> Result<Iatt> {
        let a = &self.afr;
        let g = a.gfid_of(ctx, loc).await?;
        a.read_fop(ctx, g, |i| a.sub(i).stat(ctx, loc)).await
    }

    async fn fstat(&self, ctx: &Ctx, fd: &FdRef) -> Result<Iatt> {
        let a = &self.afr;
        a.read_fop(ctx, fd.gfid, |i| {
            let f = a.fd_on(fd, i);
            async move { a.sub(i).fstat(ctx, &f).await }
        })
        .await
    }

    async fn access(&self, ctx: &Ctx, loc: &Loc, mask: u32) -> Result<()> {
        let a = &self.afr;
        let g = a.gfid_of(ctx, loc).await?;
        a.read_fop(ctx, g, |i| a.sub(i).access(ctx, loc, mask))
            .await
    }

    async fn readlink(&self, ctx: &Ctx, loc: &Loc) -> Result<String> {
        let a = &self.afr;
        let g = a.gfid_of(ctx, loc).await?;
        a.read_fop(ctx, g, |i| a.sub(i).readlink(ctx, loc)).await
    }

    async fn getxattr(&self, ctx: &Ctx, loc: &Loc, name: Option<&str>) -> Result<Xattrs> {
        let a = &self.afr;
        let g = a.gfid_of(ctx, loc).await?;
        let want = Xattrs::new();
        let x = a
            .read_fop(ctx, g, |i| a.sub(i).getxattr(ctx, loc, name))
            .await?;
        Ok(match name {
            Some(_) => x,
            None => a.strip_afr_keys(x, &want),
        })
    }

    async fn statfs(&self, ctx: &Ctx, loc: &Loc) -> Result<Statvfs> {
        let a = &self.afr;
        let mut last = Errno::ENOTCONN;
        for i in a.up_list() {
            if a.is_arbiter(i) {
                continue;
            }
            match a.sub(i).statfs(ctx, loc).await {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn setattr(&self, ctx: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
        let a = &self.afr;
        let g = a.gfid_of(ctx, loc).await?;
        let l = Loc::gfid(g);
        if attr.size.is_some() {
            a.inode_txn(g, TxnType::Data, |i| {
                let mut at = attr.clone();
                if a.is_arbiter(i) {
                    at.size = None;
                }
                let l = l.clone();
                async move { a.sub(i).setattr(ctx, &l, &at).await }
            })
            .await
        } else {
            a.inode_txn(g, TxnType::Metadata, |i| a.sub(i).setattr(ctx, &l, attr))
                .await
        }
    }

    async fn truncate(&self, ctx: &Ctx, loc: &Loc, size: u64) -> Result<Iatt> {
        let a = &self.afr;
        let g = a.gfid_of(ctx, loc).await?;
        let l = Loc::gfid(g);
        a.inode_txn(g, TxnType::Data, |i| {
            let l = l.clone();
            async move {
                if a.is_arbiter(i) {
                    return a.arbiter_iatt(ctx, i, g).await;
                }
                a.sub(i).truncate(ctx, &l, size).await
            }
        })
        .await
    }

    async fn ftruncate(&self, ctx: &Ctx, fd: &FdRef, size: u64) -> Result<Iatt> {
        let a = &self.afr;
        a.inode_txn(fd.gfid, TxnType::Data, |i| {
            let f = a.fd_on(fd, i);
            async move {
                if a.is_arbiter(i) {
                    return a.arbiter_iatt(ctx, i, fd.gfid).await;
                }
                a.sub(i).ftruncate(ctx, &f, size).await
            }
        })
        .await
    }

    async fn write(&self, ctx: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
        let a = &self.afr;
        a.inode_txn(fd.gfid, TxnType::Data, |i| {
            let f = a.fd_on(fd, i);
            let data = data.clone();
            async move {
                if a.is_arbiter(i) {
                    return a.arbiter_iatt(ctx, i, fd.gfid).await;
                }
                a.sub(i).write(ctx, &f, offset, data).await
            }
        })
        .await
    }

    async fn fallocate(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        let a = &self.afr;
        a.inode_txn(fd.gfid, TxnType::Data, |i| {
            let f = a.fd_on(fd, i);
            async move {
                if a.is_arbiter(i) {
                    return Ok(());
                }
                a.sub(i).fallocate(ctx, &f, mode, offset, len).await
            }
        })
        .await
    }

    async fn discard(&self, ctx: &Ctx, fd: &FdRef, offset: u64, len: u64) -> Result<()> {
        let a = &self.afr;
        a.inode_txn(fd.gfid, TxnType::Data, |i| {
            let f = a.fd_on(fd, i);
            async move {
                if a.is_arbiter(i) {
                    return Ok(());
                }
                a.sub(i).discard(ctx, &f, offset, len).await
            }
        })
        .await
    }

    async fn read(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Bytes> {
        let a = &self.afr;
        a.read_fop(ctx, fd.gfid, |i| {
            let f = a.fd_on(fd, i);
            async move { a.sub(i).read(ctx, &f, offset, size).await }
        })
        .await
    }

    async fn flush(&self, ctx: &Ctx, fd: &FdRef) -> Result<()> {
        let a = &self.afr;
        a.eager_flush(fd.gfid).await;
        let rs = join_all(a.up_list().into_iter().filter_map(|i| {
            let f = a.child_fds(fd)?.fds.get(i).cloned().flatten()?;
            Some(async move { a.sub(i).flush(ctx, &f).await })
        }))
        .await;
        if rs.is_empty() || rs.iter().any(|r| r.is_ok()) {
            Ok(())
        } else {
            Err(first_error(&rs))
        }
    }

    async fn fsync(&self, ctx: &Ctx, fd: &FdRef, datasync: bool) -> Result<()> {
        let a = &self.afr;
        a.eager_flush(fd.gfid).await;
        let rs = join_all(a.up_list().into_iter().map(|i| {
            let f = a.fd_on(fd, i);
            async move { a.sub(i).fsync(ctx, &f, datasync).await }
        }))
        .await;
        if rs.iter().any(|r| r.is_ok()) {
            Ok(())
        } else {
            Err(first_error(&rs))
        }
    }

    async fn release(&self, fd: &FdRef) {
        let a = &self.afr;
        if !fd.is_dir {
            a.eager_flush(fd.gfid).await;
        }
        if let Some(afd) = a.child_fds(fd) {
            join_all(
                afd.fds
                    .iter()
                    .enumerate()
                    .filter_map(|(i, f)| f.as_ref().map(|f| a.sub(i).release(f))),
            )
            .await;
        }
    }

    async fn open(&self, ctx: &Ctx, loc: &Loc, flags: i32) -> Result<FdRef> {
        let a = &self.afr;
        let g = a.gfid_of(ctx, loc).await?;
        if flags & libc::O_TRUNC != 0 {
            a.check_quorum()?;
        }
        let l = Loc::gfid(g);
        // O_TRUNC is a data change: made as one, then the fds opened without it.
        if flags & libc::O_TRUNC != 0 {
            self.truncate(ctx, &l, 0).await?;
        }
        let fl = flags & !libc::O_TRUNC;
        let rs = join_all((0..a.n()).map(|i| {
            let l = &l;
            async move {
                if !a.is_up(i) {
                    return Err(Errno::ENOTCONN);
                }
                a.sub(i).open(ctx, l, fl).await
            }
        }))
        .await;
        if rs.iter().all(|r| r.is_err()) {
            return Err(first_error(&rs));
        }
        Ok(a.wrap(g, flags, false, rs.into_iter().map(|r| r.ok()).collect()))
    }

    async fn opendir(&self, ctx: &Ctx, loc: &Loc) -> Result<FdRef> {
        let a = &self.afr;
        let g = a.gfid_of(ctx, loc).await?;
        let l = Loc::gfid(g);
        let rs = join_all((0..a.n()).map(|i| {
            let l = &l;
            async move {
                if !a.is_up(i) {
                    return Err(Errno::ENOTCONN);
                }
                a.sub(i).opendir(ctx, l).await
            }
        }))
        .await;
        if rs.iter().all(|r| r.is_err()) {
            return Err(first_error(&rs));
        }
        Ok(a.wrap(g, 0, true, rs.into_iter().map(|r| r.ok()).collect()))
    }

    async fn readdir(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Vec<Dirent>> {
        self.readdir_any(ctx, fd, offset, size, None).await
    }

    async fn readdirp(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: &Xattrs,
    ) -> Result<Vec<Dirent>> {
        self.readdir_any(ctx, fd, offset, size, Some(want)).await
    }

    async fn create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt)> {
        let a = &self.afr;
        let e = Afr::new_gfid(entry);
        let l = Loc {
            gfid: None,
            ..loc.clone()
        };
        let fds: Vec<Mutex<Option<FdRef>>> = (0..a.n()).map(|_| Mutex::new(None)).collect();
        let ia = a
            .entry_txn(loc, None, |i| {
                let (l, e, fds) = (&l, &e, &fds);
                async move {
                    let (fd, ia) = a.sub(i).create(ctx, l, flags, e).await?;
                    *fds[i].lock() = Some(fd);
                    Ok(ia)
                }
            })
            .await?;
        let fds: Vec<Option<FdRef>> = fds.into_iter().map(|m| m.into_inner()).collect();
        a.saw_name(ia.gfid, loc);
        Ok((a.wrap(ia.gfid, flags, false, fds), ia))
    }

    async fn mkdir(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<Iatt> {
        let a = &self.afr;
        let e = Afr::new_gfid(entry);
        let ia = a
            .entry_txn(loc, None, |i| a.sub(i).mkdir(ctx, loc, &e))
            .await?;
        a.saw_name(ia.gfid, loc);
        Ok(ia)
    }

    async fn mknod(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<Iatt> {
        let a = &self.afr;
        let e = Afr::new_gfid(entry);
        let ia = a
            .entry_txn(loc, None, |i| a.sub(i).mknod(ctx, loc, &e))
            .await?;
        a.saw_name(ia.gfid, loc);
        Ok(ia)
    }

    async fn symlink(&self, ctx: &Ctx, loc: &Loc, target: &str, entry: &NewEntry) -> Result<Iatt> {
        let a = &self.afr;
        let e = Afr::new_gfid(entry);
        let ia = a
            .entry_txn(loc, None, |i| a.sub(i).symlink(ctx, loc, target, &e))
            .await?;
        a.saw_name(ia.gfid, loc);
        Ok(ia)
    }

    async fn link(&self, ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        let a = &self.afr;
        let ia = a
            .entry_txn(newloc, None, |i| a.sub(i).link(ctx, oldloc, newloc))
            .await?;
        a.saw_name(ia.gfid, newloc);
        Ok(ia)
    }

    async fn unlink(&self, ctx: &Ctx, loc: &Loc) -> Result<()> {
        let a = &self.afr;
        let r = a.entry_txn(loc, None, |i| a.sub(i).unlink(ctx, loc)).await;
        if r.is_ok()
            && let Some(g) = loc.gfid
        {
            a.inodes.remove(&g);
            a.split_brain.remove(&g);
        }
        r
    }

    async fn rmdir(&self, ctx: &Ctx, loc: &Loc) -> Result<()> {
        let a = &self.afr;
        let r = a.entry_txn(loc, None, |i| a.sub(i).rmdir(ctx, loc)).await;
        if r.is_ok()
            && let Some(g) = loc.gfid
        {
            a.inodes.remove(&g);
        }
        r
    }

    async fn rename(&self, ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        let a = &self.afr;
        let ia = a
            .entry_txn(oldloc, Some(newloc), |i| {
                a.sub(i).rename(ctx, oldloc, newloc)
            })
            .await?;
        a.saw_name(ia.gfid, newloc);
        Ok(ia)
    }

    async fn setxattr(&self, ctx: &Ctx, loc: &Loc, xattrs: &Xattrs, flags: i32) -> Result<()> {
        let a = &self.afr;
        if xattrs.keys().any(|k| k.starts_with("trusted.afr.")) {
            return Err(Errno::EPERM);
        }
        let g = a.gfid_of(ctx, loc).await?;
        let l = Loc::gfid(g);
        a.inode_txn(g, TxnType::Metadata, |i| {
            a.sub(i).setxattr(ctx, &l, xattrs, flags)
        })
        .await
    }

    async fn removexattr(&self, ctx: &Ctx, loc: &Loc, name: &str) -> Result<()> {
        let a = &self.afr;
        if name.starts_with("trusted.afr.") {
            return Err(Errno::EPERM);
        }
        let g = a.gfid_of(ctx, loc).await?;
        let l = Loc::gfid(g);
        a.inode_txn(g, TxnType::Metadata, |i| {
            a.sub(i).removexattr(ctx, &l, name)
        })
        .await
    }

    async fn xattrop(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        op: XattropOp,
        xattrs: &Xattrs,
    ) -> Result<Xattrs> {
        let a = &self.afr;
        let g = a.gfid_of(ctx, loc).await?;
        let l = Loc::gfid(g);
        a.inode_txn(g, TxnType::Metadata, |i| {
            a.sub(i).xattrop(ctx, &l, op, xattrs)
        })
        .await
    }

    async fn inodelk(
        &self,
        ctx: &Ctx,
        domain: &str,
        loc: &Loc,
        cmd: LockCmd,
        lock: &Flock,
    ) -> Result<Flock> {
        self.afr
            .lock_fop(
                |i| self.afr.sub(i).inodelk(ctx, domain, loc, cmd, lock),
                lock.typ == LockType::Unlock || cmd == LockCmd::Get,
            )
            .await
    }

    async fn entrylk(
        &self,
        ctx: &Ctx,
        domain: &str,
        loc: &Loc,
        basename: Option<&str>,
        cmd: EntrylkCmd,
        typ: EntrylkType,
    ) -> Result<()> {
        self.afr
            .lock_fop(
                |i| {
                    self.afr
                        .sub(i)
                        .entrylk(ctx, domain, loc, basename, cmd, typ)
                },
                cmd == EntrylkCmd::Unlock,
            )
            .await
    }

    async fn lk(&self, ctx: &Ctx, fd: &FdRef, cmd: LockCmd, lock: &Flock) -> Result<Flock> {
        let a = &self.afr;
        a.lock_fop(
            |i| {
                let f = a.fd_on(fd, i);
                async move { a.sub(i).lk(ctx, &f, cmd, lock).await }
            },
            lock.typ == LockType::Unlock || cmd == LockCmd::Get,
        )
        .await
    }
}

impl Afr {
    /// A lock from above: taken on every up replica in order; a refusal other than a lost
    /// connection is the answer (`lenient`: unlocks and queries, where any answer will do).
    async fn lock_fop<T, F, Fut>(&self, f: F, lenient: bool) -> Result<T>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut out = None;
        let mut err = Errno::ENOTCONN;
        for i in self.up_list() {
            match f(i).await {
                Ok(v) => {
                    out.get_or_insert(v);
                }
                Err(e) if lenient || e == Errno::ENOTCONN => err = e,
                Err(e) => return Err(e),
            }
        }
        out.ok_or(err)
    }
}
