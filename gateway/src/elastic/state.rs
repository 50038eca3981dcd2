//! What a rebalance keeps while it runs and in the store.

use super::{Counters, RebalanceStatus, SubvolProgress};
use crate::volume::VolumeRecord;
use engine::xlators::cluster::distribute::rebalance::Progress;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// What the store keeps of a volume's last rebalance: the status and whether the layout pass
/// is behind it (a resume then starts with the moves).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Record {
    pub(super) status: RebalanceStatus,
    pub(super) layout_fixed: bool,
}

/// A rebalance running in this gatewayd.
pub(super) struct Run {
    pub(super) progress: Arc<Progress>,
    pub(super) began: Instant,
    /// The status when this run began (counters and time of earlier runs included).
    pub(super) base: Mutex<Record>,
    pub(super) last_save: Mutex<Instant>,
}

/// The rebalances running here, by volume.
#[derive(Default)]
pub struct Runs {
    pub(super) runs: Mutex<HashMap<String, Arc<Run>>>,
}

pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

pub(super) fn subvol_progress(v: &VolumeRecord) -> Vec<SubvolProgress> {
    v.subvol_names()
        .into_iter()
        .enumerate()
        .map(|(g, name)| SubvolProgress {
            name,
            bricks: if g < v.subvol_count() {
                v.subvol_bricks(g).map(|i| v.bricks[i].spec()).collect()
            } else {
                Vec::new()
            },
            decommissioned: g < v.subvol_count() && v.decommissioned().contains(&g),
            counters: Counters::default(),
        })
        .collect()
}

impl Run {
    /// The status now: the counters of earlier runs plus this one's.
    pub(super) fn status(&self) -> RebalanceStatus {
        let base = self.base.lock().clone();
        let mut s = base.status.clone();
        let p = &self.progress;
        let mut totals = Counters::default();
        for (k, sp) in s.subvolumes.iter_mut().enumerate() {
            if let Some(c) = p.subvols.get(k) {
                let before = base.status.subvolumes[k].counters;
                sp.counters = Counters {
                    scanned: before.scanned + c.scanned.load(Ordering::Relaxed),
                    moved: before.moved + c.moved.load(Ordering::Relaxed),
                    skipped: before.skipped + c.skipped.load(Ordering::Relaxed),
                    failed: before.failed + c.failed.load(Ordering::Relaxed),
                    bytes_moved: before.bytes_moved + c.bytes.load(Ordering::Relaxed),
                    dirs: 0,
                };
            }
            totals.scanned += sp.counters.scanned;
            totals.moved += sp.counters.moved;
            totals.skipped += sp.counters.skipped;
            totals.failed += sp.counters.failed;
            totals.bytes_moved += sp.counters.bytes_moved;
        }
        totals.dirs = base.status.totals.dirs + p.dirs.load(Ordering::Relaxed);
        if !base.layout_fixed {
            s.files_total = p.files_total.load(Ordering::Relaxed);
        }
        let ran = self.began.elapsed().as_secs_f64();
        s.elapsed_secs = base.status.elapsed_secs + ran;
        // Honest: from this run's own rate over the files it scanned, once it has scanned
        // some; the layout pass first counts what there is.
        let this_run = totals.scanned.saturating_sub(base.status.totals.scanned);
        s.eta_secs = (this_run > 0 && s.files_total > 0 && ran > 0.0).then(|| {
            let left = s.files_total.saturating_sub(totals.scanned) as f64;
            left / (this_run as f64 / ran)
        });
        s.totals = totals;
        s
    }
}
