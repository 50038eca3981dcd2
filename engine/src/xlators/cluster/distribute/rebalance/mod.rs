//! Rebalance (GlusterFS's dht-rebalance.c and its defrag crawl): fix every directory's
//! layout for the subvolumes the volume has now, then move each file whose directory's
//! layout names another subvolume (`migrate`). Directories are crawled in parallel and files
//! move through a pool of migrators, both bounded by `threads`; a directory finished is
//! reported to a [`Checkpoint`], so a run cut short resumes without crawling it again.
//!
//! The caller (gatewayd) gets hold of the volume's distribute with [`Rebalancer::of`].

mod crawl;
mod migrate;

pub use migrate::Outcome;

use super::Distribute;
use crate::fop::Gfid;
use crate::xlator::XlatorRef;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What one run does.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Move files (false: `fix-layout` only).
    pub migrate: bool,
    /// remove-brick: every file of the decommissioned subvolumes moves, whatever the room
    /// (the others move as in a rebalance, so the volume ends laid out as its layouts say).
    pub drain: bool,
    /// Directories and files moved at once.
    pub threads: usize,
    /// Names at the volume's root never crawled in a rebalance (a frontend's staging area:
    /// short-lived files that go by rename), and a name infix marking the same. remove-brick
    /// moves them too.
    pub skip_root: Vec<String>,
    pub skip_infix: Option<String>,
    /// The layouts were all fixed by an earlier run (skip that pass).
    pub layout_fixed: bool,
}

/// Counts of one subvolume, updated as the run goes.
#[derive(Debug, Default)]
pub struct SubvolCounts {
    pub scanned: AtomicU64,
    pub moved: AtomicU64,
    pub skipped: AtomicU64,
    pub failed: AtomicU64,
    pub bytes: AtomicU64,
}

/// A run's progress, shared with whoever reports it.
#[derive(Debug, Default)]
pub struct Progress {
    pub subvols: Vec<SubvolCounts>,
    /// Directories whose layout was fixed.
    pub dirs: AtomicU64,
    /// Files the layout pass counted (what is left to scan is against this).
    pub files_total: AtomicU64,
    /// Set by the caller to stop the run at the next file.
    pub stop: AtomicBool,
}

impl Progress {
    pub fn new(subvols: usize) -> Progress {
        Progress {
            subvols: (0..subvols).map(|_| SubvolCounts::default()).collect(),
            ..Default::default()
        }
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Where a run records what it finished.
pub trait Checkpoint: Send + Sync {
    /// Directories an earlier run finished.
    fn done_dirs(&self) -> HashSet<Gfid>;
    /// Directory `dir` is finished (every file in it moved or left for good).
    fn dir_done(&self, dir: Gfid);
    /// Every layout is fixed; the layout pass counted `files` files.
    fn layout_fixed(&self, files: u64);
}

/// How a run ended.
#[derive(Debug, thiserror::Error)]
pub enum RebalanceError {
    #[error("stopped")]
    Stopped,
    #[error("not every subvolume is up ({0} is down): a layout must name them all")]
    SubvolumeDown(String),
    #[error("{0}")]
    Fop(String),
}

/// The volume's distribute, for a rebalance.
pub struct Rebalancer {
    x: XlatorRef,
}

impl Rebalancer {
    /// The `cluster/distribute` among `xlators` (a graph's), if there is one.
    pub fn of(xlators: &[XlatorRef]) -> Option<Rebalancer> {
        xlators
            .iter()
            .find(|x| {
                x.as_any()
                    .is_some_and(|a| a.downcast_ref::<Distribute>().is_some())
            })
            .map(|x| Rebalancer { x: x.clone() })
    }

    fn dht(&self) -> &Distribute {
        self.x
            .as_any()
            .and_then(|a| a.downcast_ref::<Distribute>())
            .expect("chosen for being a distribute")
    }

    /// The subvolumes' names, in order (what linkto files and layouts name).
    pub fn subvolumes(&self) -> Vec<String> {
        self.dht().names.clone()
    }

    /// Which subvolumes remove-brick is emptying.
    pub fn decommissioned(&self) -> Vec<bool> {
        self.dht().decommissioned.clone()
    }

    /// Runs a rebalance to its end, or until `progress.stop` is set.
    pub async fn run(
        &self,
        spec: &Spec,
        progress: &Progress,
        checkpoint: &dyn Checkpoint,
    ) -> Result<(), RebalanceError> {
        let d = self.dht();
        if let Some(i) = (0..d.n()).find(|i| !d.is_up(*i)) {
            return Err(RebalanceError::SubvolumeDown(d.names[i].clone()));
        }
        d.migrating.store(true, Ordering::Relaxed);
        let r = crawl::run(d, spec, progress, checkpoint).await;
        // Short reads need no second look once nothing moves (a fop that meets a move made
        // by someone else sets it again).
        d.migrating.store(false, Ordering::Relaxed);
        r
    }

    /// Files still on decommissioned subvolumes (not linkto files, not directories): what
    /// remove-brick commit refuses to lose. Counts up to `limit`.
    pub async fn left_on_decommissioned(&self, limit: u64) -> Result<u64, RebalanceError> {
        crawl::left_on_decommissioned(self.dht(), limit).await
    }
}
