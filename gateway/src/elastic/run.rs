//! Running a rebalance: starting, stopping, resuming it, and its checkpoint in the store.

use super::state::{Record, Run, now_ms, subvol_progress};
use super::{Counters, RebalanceAction, RebalanceStatus};
use crate::manager::{Manager, ManagerError};
use crate::volume::VolumeRecord;
use engine::Gfid;
use engine::xlators::cluster::distribute::rebalance::{
    Checkpoint, Progress, RebalanceError, Rebalancer, Spec,
};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, ManagerError>;

/// `rebalance.io-threads`: directories and files moved at once.
pub const IO_THREADS: &str = "rebalance.io-threads";
const DEFAULT_THREADS: usize = 8;

/// The store as a rebalance's checkpoint.
struct StoreCheckpoint {
    m: Weak<Manager>,
    volume: String,
    run: Arc<Run>,
}

impl StoreCheckpoint {
    fn save(&self, force: bool) {
        let Some(m) = self.m.upgrade() else { return };
        {
            let mut last = self.run.last_save.lock();
            if !force && last.elapsed() < Duration::from_millis(500) {
                return;
            }
            *last = Instant::now();
        }
        let mut r = self.run.base.lock().clone();
        r.status = self.run.status();
        for sp in &r.status.subvolumes {
            let c = sp.counters;
            engine::metrics::set_rebalance(
                &self.volume,
                &sp.name,
                [c.scanned, c.moved, c.skipped, c.failed],
                c.bytes_moved,
            );
        }
        if let Err(e) = m.store.put_rebalance(&self.volume, &r) {
            tracing::warn!(volume = %self.volume, "saving rebalance progress: {e}");
        }
        // Another node of the pool was asked to stop this run.
        if m.store
            .get_meta::<bool>(&stop_key(&self.volume))
            .ok()
            .flatten()
            .is_some()
        {
            self.run.progress.stop.store(true, Ordering::SeqCst);
        }
    }
}

/// Where a node asks the node running a volume's rebalance to stop it.
fn stop_key(volume: &str) -> String {
    format!("rebalance-stop/{volume}")
}

impl Checkpoint for StoreCheckpoint {
    fn done_dirs(&self) -> HashSet<Gfid> {
        self.m
            .upgrade()
            .and_then(|m| m.store.rebalance_done_dirs(&self.volume).ok())
            .unwrap_or_default()
            .iter()
            .filter_map(|g| Gfid::parse(g))
            .collect()
    }

    fn dir_done(&self, dir: Gfid) {
        if let Some(m) = self.m.upgrade()
            && let Err(e) = m.store.rebalance_dir_done(&self.volume, &dir.to_string())
        {
            tracing::warn!(volume = %self.volume, "saving rebalance progress: {e}");
        }
        self.save(false);
    }

    fn layout_fixed(&self, files: u64) {
        {
            let mut b = self.run.base.lock();
            b.layout_fixed = true;
            b.status.files_total = files;
            b.status.totals.dirs += self.run.progress.dirs.swap(0, Ordering::Relaxed);
        }
        self.save(true);
    }
}

fn invalid(s: impl Into<String>) -> ManagerError {
    ManagerError::Invalid(s.into())
}

impl Manager {
    /// `volume rebalance NAME [fix-layout] start|stop`.
    pub async fn rebalance(
        &self,
        name: &str,
        action: RebalanceAction,
        fix_layout_only: bool,
    ) -> Result<RebalanceStatus> {
        let _g = self.op_lock.lock().await;
        let mut v = self.get(name)?;
        match action {
            RebalanceAction::Stop => {
                let Some(r) = self.running(name) else {
                    if self.stop_elsewhere(name).await? {
                        return self.rebalance_status(name);
                    }
                    return Err(ManagerError::NotStarted(format!(
                        "{name}: no rebalance is running on it"
                    )));
                };
                if r.base.lock().status.kind == "remove-brick" {
                    return Err(invalid(
                        "this is a remove-brick's migration: stop it with `volume remove-brick NAME BRICK... stop`",
                    ));
                }
                r.progress.stop.store(true, Ordering::SeqCst);
                self.wait_stopped(name).await;
                self.rebalance_status(name)
            }
            RebalanceAction::Start => {
                if !v.started || self.graph(name).is_none() {
                    return Err(ManagerError::NotStarted(name.into()));
                }
                if v.subvol_count() < 2 {
                    return Err(invalid(format!(
                        "volume {name} has one subvolume: there is nothing to rebalance"
                    )));
                }
                if self.running(name).is_some() {
                    return Err(ManagerError::Exists(format!(
                        "a rebalance of volume {name}"
                    )));
                }
                if !v.decommissioned().is_empty() {
                    return Err(invalid(format!(
                        "volume {name} has a remove-brick under way; commit or stop it first"
                    )));
                }
                if v.commit_hash.is_none() {
                    v.commit_hash = Some(new_commit_hash(None));
                    self.regraph(&v).await?;
                    self.store
                        .put_volume(&v, &format!("volume rebalance {name} start"))?;
                }
                let kind = if fix_layout_only {
                    "fix-layout"
                } else {
                    "rebalance"
                };
                self.start_run(&v, kind, false, fix_layout_only)
            }
        }
    }

    /// In a pool, asks the node running `name`'s rebalance (or remove-brick migration) to
    /// stop it and waits (up to a minute) for it to say it stopped; false when none runs.
    pub(super) async fn stop_elsewhere(&self, name: &str) -> Result<bool> {
        let running = |m: &Manager| {
            m.store
                .rebalance::<Record>(name)
                .ok()
                .flatten()
                .is_some_and(|r| r.status.state == "in progress")
        };
        if self.cluster.is_none() || !running(self) {
            return Ok(false);
        }
        self.store.put_meta(&stop_key(name), &true)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while running(self) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(true)
    }

    /// Waits (up to a minute) for a stopped run to end.
    pub(super) async fn wait_stopped(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.running(name).is_some() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `volume rebalance NAME status` (also what `remove-brick ... status` shows).
    pub fn rebalance_status(&self, name: &str) -> Result<RebalanceStatus> {
        let v = self.get(name)?;
        if let Some(r) = self.running(name) {
            return Ok(r.status());
        }
        if let Some(r) = self.store.rebalance::<Record>(name)? {
            return Ok(r.status);
        }
        Ok(RebalanceStatus {
            volume: name.into(),
            kind: "rebalance".into(),
            state: "not started".into(),
            started_ms: 0,
            elapsed_secs: 0.0,
            eta_secs: None,
            files_total: 0,
            resumed: 0,
            message: None,
            subvolumes: subvol_progress(&v),
            totals: Counters::default(),
        })
    }

    /// Starts a new run (forgetting the last one's checkpoint).
    pub(super) fn start_run(
        &self,
        v: &VolumeRecord,
        kind: &str,
        drain: bool,
        fix_layout_only: bool,
    ) -> Result<RebalanceStatus> {
        if !self.leads(&job_of(&v.name)) {
            return Err(ManagerError::Busy(format!(
                "a rebalance of volume {} is led by another node of the pool",
                v.name
            )));
        }
        self.store.rebalance_forget_dirs(&v.name)?;
        self.store.delete_meta(&stop_key(&v.name))?;
        let status = RebalanceStatus {
            volume: v.name.clone(),
            kind: kind.into(),
            state: "in progress".into(),
            started_ms: now_ms(),
            elapsed_secs: 0.0,
            eta_secs: None,
            files_total: 0,
            resumed: 0,
            message: None,
            subvolumes: subvol_progress(v),
            totals: Counters::default(),
        };
        let rec = Record {
            status,
            layout_fixed: false,
        };
        self.store.put_rebalance(&v.name, &rec)?;
        let _ = self.store.log_action(&format!(
            "volume {} {} start",
            v.name,
            if drain { "remove-brick" } else { kind }
        ));
        self.launch(v, rec, drain, fix_layout_only)
    }

    pub(super) fn launch(
        &self,
        v: &VolumeRecord,
        rec: Record,
        drain: bool,
        fix_layout_only: bool,
    ) -> Result<RebalanceStatus> {
        let threads = v
            .options
            .get(IO_THREADS)
            .and_then(|t| t.parse().ok())
            .unwrap_or(DEFAULT_THREADS);
        let spec = Spec {
            migrate: !fix_layout_only,
            drain,
            threads,
            skip_root: vec![protocols_s3::vfs::STAGING_DIR.to_string()],
            skip_infix: Some(protocols_s3::vfs::STAGING_INFIX.to_string()),
            layout_fixed: rec.layout_fixed,
        };
        let run = Arc::new(Run {
            progress: Arc::new(Progress::new(rec.status.subvolumes.len())),
            began: Instant::now(),
            base: Mutex::new(rec),
            last_save: Mutex::new(Instant::now()),
        });
        self.elastic.runs.lock().insert(v.name.clone(), run.clone());
        let status = run.status();
        let m = self.weak();
        let vol = v.name.clone();
        tokio::spawn(async move {
            let cp = StoreCheckpoint {
                m: m.clone(),
                volume: vol.clone(),
                run: run.clone(),
            };
            let result = drive(&m, &vol, &spec, &run, &cp).await;
            let (state, message) = match result {
                Ok(()) => ("completed", None),
                Err(RebalanceError::Stopped) => ("stopped", Some("stopped".to_string())),
                Err(e) => ("failed", Some(e.to_string())),
            };
            // A gatewayd on its way down leaves the run "in progress", so the next start
            // resumes it.
            let shutting = m.upgrade().is_none_or(|m| m.graph(&vol).is_none());
            if !(shutting && state != "completed") {
                let mut r = run.base.lock().clone();
                r.status = run.status();
                r.status.state = state.into();
                r.status.message = message.clone();
                r.status.eta_secs = None;
                if let Some(m) = m.upgrade() {
                    let _ = m.store.put_rebalance(&vol, &r);
                }
            }
            if let Some(m) = m.upgrade() {
                m.elastic.runs.lock().remove(&vol);
                if !shutting {
                    m.resign(&job_of(&vol));
                }
            }
            let s = run.status();
            tracing::info!(volume = %vol, state, files = s.totals.scanned, moved = s.totals.moved, failed = s.totals.failed, "rebalance ended{}", message.map(|m| format!(": {m}")).unwrap_or_default());
        });
        Ok(status)
    }

    /// Resumes the rebalances a stopped gatewayd (or volume) left in progress, on the volumes
    /// that are started.
    pub fn resume_rebalances(&self) {
        let Ok(vols) = self.list() else { return };
        for v in vols {
            let Ok(Some(mut rec)) = self.store.rebalance::<Record>(&v.name) else {
                continue;
            };
            // In a pool one node runs it: the one that started it, or after that one died,
            // the first to claim it.
            if rec.status.state != "in progress"
                || self.graph(&v.name).is_none()
                || self.running(&v.name).is_some()
                || !self.leads(&job_of(&v.name))
            {
                continue;
            }
            rec.status.resumed += 1;
            let drain = rec.status.kind == "remove-brick";
            let fix = rec.status.kind == "fix-layout";
            tracing::info!(volume = %v.name, kind = %rec.status.kind, scanned = rec.status.totals.scanned, "resuming the rebalance");
            if let Err(e) = self.launch(&v, rec, drain, fix) {
                tracing::warn!(volume = %v.name, "could not resume the rebalance: {e}");
            }
        }
    }
}

/// The cluster-wide job of a volume's rebalance: one node of a pool runs it.
fn job_of(volume: &str) -> String {
    format!("rebalance/{volume}")
}

/// A commit hash unlike `old` and unlike GlusterFS's "never rebalanced" value.
pub(super) fn new_commit_hash(old: Option<u32>) -> u32 {
    loop {
        let h: u32 = rand::random();
        if h > 1 && Some(h) != old {
            return h;
        }
    }
}

/// Runs the rebalance on the volume's graph once every brick answers.
async fn drive(
    m: &Weak<Manager>,
    vol: &str,
    spec: &Spec,
    run: &Run,
    cp: &StoreCheckpoint,
) -> std::result::Result<(), RebalanceError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let g = loop {
        let g = m.upgrade().and_then(|m| m.graph(vol));
        if let Some(g) = &g
            && g.brick_links().iter().all(|l| l.connected)
        {
            break g.clone();
        }
        if Instant::now() >= deadline {
            return Err(RebalanceError::Fop(format!(
                "volume {vol}: not every brick answers"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let rb = Rebalancer::of(g.xlators())
        .ok_or_else(|| RebalanceError::Fop(format!("volume {vol} has one subvolume")))?;
    let names: Vec<String> = run
        .base
        .lock()
        .status
        .subvolumes
        .iter()
        .map(|s| s.name.clone())
        .collect();
    if rb.subvolumes() != names {
        return Err(RebalanceError::Fop(format!(
            "volume {vol}'s subvolumes changed since the rebalance began; start it again"
        )));
    }
    drop(g);
    let r = rb.run(spec, &run.progress, cp).await;
    cp.save(true);
    r
}
