//! The replicate translator's state (GlusterFS's afr-common.c): the replicas and what is known
//! of them, what lookups learnt of inodes, fd contexts, and the helpers every fop group shares.

use super::changelog::{self, TxnType};
use crate::fop::keys;
use crate::fop::*;
use crate::xlator::{XlatorBase, XlatorRef};
use bytes::Bytes;
use dashmap::DashMap;
use futures::future::join_all;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub(super) const NAMES_MAX: usize = 1 << 20;

/// Background heals one translator runs at once.
pub(super) const HEAL_PARALLEL: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Quorum {
    None,
    Auto,
    Fixed(usize),
}

/// What the last lookup learnt about an inode: which replicas may serve it.
#[derive(Clone, Debug)]
pub(super) struct InodeInfo {
    /// Replicas whose data (file) or entries (directory) no other replica accuses.
    pub(super) good: Vec<bool>,
    /// Every replica is accused: data (or entry) split-brain.
    pub(super) split_brain: bool,
    /// Where it was last seen, for heal info: the parent and name, and a path if one was given.
    pub(super) name: Option<(Gfid, String)>,
    pub(super) path: Option<String>,
}

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

/// One lock a transaction holds, as the key of its release still on the way.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) enum LockKey {
    /// An inode's data (false) or metadata (true) range.
    Inode(Gfid, bool),
    Name(Gfid, String),
    Dir(Gfid),
}

/// Closed once a transaction's post-op and unlock are done: an answered transaction releases
/// its locks behind its answer, and a later one of ours on the same lock waits on this
/// instead of finding the lock held and falling back to waiting locks one replica at a time.
pub(super) type Released = Arc<tokio::sync::Semaphore>;

pub struct Afr {
    pub(super) base: XlatorBase,
    pub(super) names: Vec<String>,
    /// The changelog key of each replica (`trusted.afr.<vol>-client-N`).
    pub(super) keys: Vec<String>,
    pub(super) arbiter: Option<usize>,
    pub(super) up: Vec<AtomicBool>,
    /// Bumped each time a replica comes back: fds opened there before are gone with the
    /// connection they were opened on.
    pub(super) generation: Vec<AtomicU64>,
    /// When each replica last came up (ms after `born`): directory listings prefer the one up
    /// longest, whose attributes are the least likely to be stale before a heal.
    pub(super) up_since: Vec<AtomicU64>,
    pub(super) born: std::time::Instant,
    pub(super) reported: Vec<AtomicBool>,
    pub(super) announced: AtomicBool,
    pub(super) notify_lock: Mutex<()>,
    pub(super) quorum: Quorum,
    pub(super) favorite: Option<SplitBrainChoice>,
    pub(super) read_hash: i64,
    /// data, metadata, entry self-heal on lookup.
    pub(super) self_heal: [bool; 3],
    pub(super) diff: bool,
    /// gatewayd's heal daemon crawls this replica set (`self-heal-daemon`).
    pub heal_daemon: bool,
    pub(super) eager_lock: bool,
    /// How long an idle inode keeps its eager lock and dirty mark.
    pub(super) post_op_delay: std::time::Duration,
    pub(super) eager: DashMap<Gfid, EagerSlot>,
    /// Transactions answered whose post-op and unlock are still on the way, by lock.
    pub(super) releasing: DashMap<LockKey, Released>,
    pub(super) inodes: DashMap<Gfid, InodeInfo>,
    /// Gfids a background heal is working on (one heal per inode at a time).
    pub(super) healing: DashMap<Gfid, ()>,
    /// Gfids found in split-brain, with where they were seen.
    pub(super) split_brain: DashMap<Gfid, String>,
    /// Parent and name of inodes looked up by name, for the paths heal info prints. Kept
    /// when `inodes` is forgotten; started over past `NAMES_MAX`.
    pub(super) names_seen: DashMap<Gfid, (Gfid, String)>,
    /// Lock owners: every transaction its own, so two never share a lock.
    pub(super) owners: AtomicU64,
    /// Signalled when a replica comes back, so the heal daemon crawls at once.
    pub came_back: tokio::sync::Notify,
    pub(super) heal_slots: Arc<tokio::sync::Semaphore>,
}

pub(super) struct AfrFd {
    pub(super) fds: Vec<Option<FdRef>>,
    pub(super) generation: Vec<u64>,
    /// The replica a directory is read from: chosen at the first readdir, kept so the
    /// offsets stay that replica's.
    pub(super) readdir_from: Mutex<Option<usize>>,
}

/// A data transaction's lock and dirty mark kept across the changes to one inode (GlusterFS's
/// eager-lock with delayed post-op): a stream of writes costs one lock, one pre-op, one post-op
/// and one unlock instead of four extra round trips each. Released when the inode has been idle
/// for the post-op delay, when its fd is flushed, and before a heal.
pub(super) struct Eager {
    pub(super) owner: u64,
    pub(super) locked: Vec<bool>,
    /// Where the pre-op marked dirty: the replicas changes go to.
    pub(super) ready: Vec<bool>,
    /// Replicas a change missed: blamed at the post-op.
    pub(super) failed: Vec<bool>,
    pub(super) inflight: usize,
    /// Some change took effect: only then are the replicas that missed it blamed.
    pub(super) changed: bool,
    /// Bumped by every change, so an idle timer knows whether it is still the last word.
    pub(super) epoch: u64,
}

pub(super) type EagerSlot = Arc<tokio::sync::Mutex<Option<Eager>>>;

pub(super) fn hash_gfid(g: &Gfid) -> u64 {
    u64::from_le_bytes(g.0[8..16].try_into().expect("8 bytes"))
        ^ u64::from_le_bytes(g.0[0..8].try_into().expect("8 bytes"))
}

/// The error to report when every replica failed: the first that is not a lost connection.
pub(super) fn first_error<T>(results: &[Result<T>]) -> Errno {
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

    pub(super) fn n(&self) -> usize {
        self.base.children.len()
    }

    pub(super) fn sub(&self, i: usize) -> &XlatorRef {
        &self.base.children[i]
    }

    pub(super) fn is_up(&self, i: usize) -> bool {
        self.up[i].load(Ordering::SeqCst)
    }

    pub(super) fn up_list(&self) -> Vec<usize> {
        (0..self.n()).filter(|i| self.is_up(*i)).collect()
    }

    pub(super) fn is_arbiter(&self, i: usize) -> bool {
        self.arbiter == Some(i)
    }

    /// GlusterFS's client quorum over the replicas in `set`.
    pub(super) fn quorum_met(&self, set: &[bool]) -> bool {
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

    pub(super) fn next_owner(&self) -> u64 {
        // High bit set: never one of the lk_owners frontends pass down for POSIX locks.
        (1 << 63) | self.owners.fetch_add(1, Ordering::Relaxed)
    }

    /// `want` plus every changelog key.
    pub(super) fn with_afr_keys(&self, want: &Xattrs) -> Xattrs {
        let mut w = want.clone();
        w.insert(keys::AFR_DIRTY.to_string(), Bytes::new());
        for k in &self.keys {
            w.insert(k.clone(), Bytes::new());
        }
        w
    }

    pub(super) fn strip_afr_keys(&self, mut x: Xattrs, want: &Xattrs) -> Xattrs {
        x.retain(|k, _| !k.starts_with("trusted.afr.") || want.contains_key(k));
        x
    }

    /// Looks `loc` up on every up replica with the changelog keys.
    pub(super) async fn lookup_all(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        want: &Xattrs,
    ) -> Vec<Result<(Iatt, Xattrs)>> {
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
    pub(super) fn interpret(
        &self,
        replies: &[Option<&Xattrs>],
        ty: TxnType,
    ) -> (Vec<bool>, bool, bool) {
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

    /// Whether a change of ours to `g` may still have its dirty mark up: an eager data
    /// transaction held, or a transaction answered before its post-op was done. A lookup
    /// that sees that mark sees our own change under way, not something to heal (a replica
    /// the change misses is blamed at its post-op, and the heal daemon finds any mark a
    /// crash leaves behind).
    pub(super) fn changing(&self, g: &Gfid) -> bool {
        self.eager.contains_key(g)
            || (!self.releasing.is_empty()
                && self.releasing.iter().any(|e| match e.key() {
                    LockKey::Inode(h, _) | LockKey::Dir(h) | LockKey::Name(h, _) => h == g,
                }))
    }

    /// Remembers where `g` was named, for the paths heal info prints.
    pub(super) fn saw_name(&self, g: Gfid, loc: &Loc) {
        if let (Some(p), Some(n)) = (loc.parent, &loc.name) {
            if self.names_seen.len() >= NAMES_MAX {
                self.names_seen.clear();
            }
            self.names_seen.insert(g, (p, n.clone()));
        }
    }

    /// The fds a replicated fd holds on its replicas.
    pub(super) fn child_fds(&self, fd: &FdRef) -> Option<Arc<AfrFd>> {
        fd.ctx_get::<AfrFd>(self.base.id)
    }

    /// The replica `i`'s fd for `fd`: the one opened there, or an anonymous one (a replica
    /// that was down at open and has come back).
    pub(super) fn fd_on(&self, fd: &FdRef, i: usize) -> FdRef {
        self.child_fds(fd)
            .filter(|a| a.generation.get(i) == Some(&self.generation[i].load(Ordering::SeqCst)))
            .and_then(|a| a.fds.get(i).cloned().flatten())
            .unwrap_or_else(|| Fd::anonymous(fd.gfid))
    }

    pub(super) fn wrap(
        &self,
        gfid: Gfid,
        flags: i32,
        is_dir: bool,
        fds: Vec<Option<FdRef>>,
    ) -> FdRef {
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
    pub(super) fn check_quorum(&self) -> Result<()> {
        let up: Vec<bool> = (0..self.n()).map(|i| self.is_up(i)).collect();
        if self.quorum_met(&up) {
            Ok(())
        } else {
            tracing::warn!(xlator = %self.base.name, up = up.iter().filter(|u| **u).count(), "client quorum is not met: refusing a change");
            Err(Errno::EROFS)
        }
    }

    pub(super) fn new_gfid(entry: &NewEntry) -> NewEntry {
        let mut e = entry.clone();
        if e.gfid.is_null() {
            e.gfid = Gfid::random();
        }
        e
    }

    /// Iatt for a data change on the arbiter, which stores no data: its own stat stands in.
    pub(super) async fn arbiter_iatt(&self, ctx: &Ctx, i: usize, g: Gfid) -> Result<Iatt> {
        self.sub(i).stat(ctx, &Loc::gfid(g)).await
    }
}
