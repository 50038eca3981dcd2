//! add-brick, remove-brick and replace-brick, and the new client graph each gives a started
//! volume.

use super::run::new_commit_hash;
use super::state::Run;
use super::{RebalanceStatus, RemoveAction};
use crate::jobs::Progress as JobProgress;
use crate::manager::{Manager, ManagerError};
use crate::volume::{self, BrickRecord, VolumeRecord, is_local_host};
use engine::xlators::cluster::distribute::rebalance::Rebalancer;
use engine::{Ctx, Loc, Xattrs};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, ManagerError>;

fn invalid(s: impl Into<String>) -> ManagerError {
    ManagerError::Invalid(s.into())
}

/// The brick of `v` that HOST:/PATH names.
fn brick_index(v: &VolumeRecord, spec: &str) -> Result<usize> {
    let parsed = volume::parse_bricks(&[spec.to_string()])?;
    let (host, path) = &parsed[0];
    v.bricks
        .iter()
        .position(|b| b.host == *host && b.path == *path)
        .ok_or_else(|| invalid(format!("{spec} is not a brick of volume {}", v.name)))
}

impl Manager {
    /// Gives started volume `v` a client graph built from its record as it is now: spawns
    /// the brickd of local bricks that have none, waits for every brick to answer, then
    /// puts the graph in place of the old one, which closes once the fops on it are done.
    pub(crate) async fn regraph(&self, v: &VolumeRecord) -> Result<()> {
        let Some(old) = self.graph(&v.name) else {
            return Ok(());
        };
        // In a pool the other nodes spawn their new bricks when they see the new record:
        // publish it first (and put the old one back if the graph cannot be built), or this
        // node would wait for bricks nobody starts.
        let publish = self.cluster.is_some()
            && self
                .built
                .lock()
                .get(&v.name)
                .is_some_and(|b| *b != v.bricks)
            && !self.applying.lock().contains(&v.name);
        let before = match publish {
            true => Some(self.get(&v.name)?),
            false => None,
        };
        if let Some(b) = &before
            && b.bricks != v.bricks
        {
            self.store
                .put_volume(v, &format!("volume {}: bricks changing", v.name))?;
        }
        let r = self.regraph_here(v, old).await;
        if let (Err(e), Some(b)) = (&r, &before) {
            let _ = self
                .store
                .put_volume(b, &format!("volume {}: brick change undone: {e}", v.name));
        }
        r
    }

    async fn regraph_here(&self, v: &VolumeRecord, old: Arc<engine::graph::Graph>) -> Result<()> {
        let graph = self
            .spawn_and_graph(v, Duration::from_secs(10), &JobProgress::none())
            .await?;
        let graph = Arc::new(graph);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.report(v, &graph);
            if r.bricks_online == v.bricks.len() {
                break;
            }
            if Instant::now() >= deadline {
                graph.fini().await;
                let down: Vec<String> = r
                    .offline
                    .iter()
                    .map(|o| format!("{} ({})", o.brick, o.reason))
                    .collect();
                return Err(ManagerError::Brick(format!(
                    "volume {}: bricks not answering, nothing changed: {}",
                    v.name,
                    down.join(", ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        graph.wait_up(Duration::from_secs(5)).await;
        let _ = graph
            .top()
            .lookup(&Ctx::root(), &Loc::root(), &Xattrs::new())
            .await;
        // Writes the old graph answered early reach the bricks before the new one serves:
        // its first read of those files must find them.
        old.settle_writes_behind().await;
        self.graphs.write().insert(v.name.clone(), graph.clone());
        self.built.lock().insert(v.name.clone(), v.bricks.clone());
        self.nfs_generation.fetch_add(1, Ordering::SeqCst);
        self.smb_changed.notify_one();
        let seen = vec![true; v.bricks.len()];
        crate::manager::watch(self.weak(), v.clone(), Arc::downgrade(&graph), seen);
        // Fops already on the old graph finish there; it closes when they are done (or
        // after a minute, whatever holds it).
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while (Arc::strong_count(&old) > 1 || old.in_use() > 0) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            old.fini().await;
        });
        tracing::info!(volume = %v.name, bricks = v.bricks.len(), "volume graph changed");
        Ok(())
    }

    pub(super) fn weak(&self) -> Weak<Manager> {
        self.arc().map(|a| Arc::downgrade(&a)).unwrap_or_default()
    }

    pub(super) fn running(&self, name: &str) -> Option<Arc<Run>> {
        self.elastic.runs.lock().get(name).cloned()
    }

    /// `volume add-brick NAME [replica N] BRICK... [force]`: whole replica sets join the
    /// volume (its graph changes while it serves). Returns the new record.
    pub async fn add_brick(
        &self,
        name: &str,
        specs: &[String],
        replica: Option<usize>,
        force: bool,
    ) -> Result<VolumeRecord> {
        let _g = self.op_lock.lock().await;
        let mut v = self.get(name)?;
        let r = v.replica_count();
        let raise = replica.filter(|n| *n != r);
        if let Some(n) = raise {
            let sets = v.subvol_count();
            if n < r {
                return Err(invalid(format!(
                    "volume {name} has replica {r}: add-brick cannot lower it (remove-brick takes whole sets)"
                )));
            }
            if n > volume::MAX_REPLICA {
                return Err(invalid(format!(
                    "replica {n}: a replica set has at most {} bricks",
                    volume::MAX_REPLICA
                )));
            }
            if v.arbiter > 0 {
                return Err(invalid(format!(
                    "volume {name} has an arbiter: its replica count stays {r}"
                )));
            }
            if specs.len() != sets * (n - r) {
                return Err(invalid(format!(
                    "raising volume {name} from replica {r} to {n} takes {} brick(s) per replica set, {} in all, in set order (got {})",
                    n - r,
                    sets * (n - r),
                    specs.len()
                )));
            }
        } else if specs.is_empty() || !specs.len().is_multiple_of(r) {
            return Err(invalid(format!(
                "volume {name} is replica {r}: add whole replica sets, a multiple of {r} bricks (got {})",
                specs.len()
            )));
        }
        if self.running(name).is_some() {
            return Err(ManagerError::Exists(format!(
                "a rebalance of volume {name} (wait for it or stop it first)"
            )));
        }
        let mut seen = HashSet::new();
        for s in specs {
            if !seen.insert(s) {
                return Err(invalid(format!("brick {s} is given twice")));
            }
        }
        let mut bricks = self.brick_records(specs)?;
        self.check_not_in_use(&bricks)?;
        self.prepare_new_bricks(&mut bricks, force).await?;
        let first = v.next_brick_id();
        for (k, b) in bricks.iter_mut().enumerate() {
            b.id = Some(first + k);
        }
        let before = v.clone();
        if let Some(n) = raise {
            // Each set takes its new copies after its bricks (consecutive bricks form a set);
            // the bricks that move keep their translator names.
            let per = n - r;
            let mut all = Vec::with_capacity(v.bricks.len() + bricks.len());
            for (g, set) in v.bricks.chunks(r).enumerate() {
                let base = g * r;
                all.extend(set.iter().enumerate().map(|(k, b)| {
                    let mut b = b.clone();
                    b.id.get_or_insert(base + k);
                    b
                }));
                all.extend_from_slice(&bricks[g * per..(g + 1) * per]);
            }
            v.bricks = all;
            v.replica = n;
            v.kind = volume::kind_of(v.bricks.len(), n).into();
            if v.started {
                if let Err(e) = self.regraph(&v).await {
                    self.stop_new_bricks(&before, &v).await;
                    return Err(e);
                }
                self.heal_new_copies(&v);
            }
            self.store.put_volume(
                &v,
                &format!("volume add-brick {name} replica {n} {}", specs.join(" ")),
            )?;
            tracing::info!(volume = %name, replica = n, "replica count raised");
            return Ok(v);
        }
        v.bricks.extend(bricks);
        v.kind = volume::kind_of(v.bricks.len(), r).into();
        v.commit_hash = Some(new_commit_hash(v.commit_hash));
        // Files of the old layouts sit off their new hashed subvolume until a rebalance.
        if v.options.get("cluster.lookup-unhashed").map(String::as_str) != Some("on") {
            v.options
                .insert("cluster.lookup-unhashed".into(), "auto".into());
        }
        if v.started
            && let Err(e) = self.regraph(&v).await
        {
            self.stop_new_bricks(&before, &v).await;
            return Err(e);
        }
        self.store
            .put_volume(&v, &format!("volume add-brick {name} {}", specs.join(" ")))?;
        tracing::info!(volume = %name, bricks = v.bricks.len(), "bricks added");
        Ok(v)
    }

    /// A full heal of every replica set, in the background: each just took an empty copy.
    fn heal_new_copies(&self, v: &VolumeRecord) {
        let sets: Vec<String> = (0..v.subvol_count()).map(|g| v.replicate_name(g)).collect();
        self.heal_sets(&v.name, &sets);
    }

    /// Full heals of the replica sets named, one after another, in the background: a brick
    /// of each is new and empty, and no pending mark says so.
    fn heal_sets(&self, volume: &str, sets: &[String]) {
        let Some(g) = self.graph(volume) else { return };
        let afrs: Vec<_> = g
            .replica_sets()
            .into_iter()
            .filter(|a| sets.iter().any(|s| s == a.name()))
            .collect();
        let vol = volume.to_string();
        tokio::spawn(async move {
            for a in afrs {
                match a.heal_full().await {
                    Ok(n) => {
                        tracing::info!(volume = %vol, set = %a.name(), entries = n, "new brick healed")
                    }
                    Err(e) => {
                        tracing::warn!(volume = %vol, set = %a.name(), "healing a new brick: {e}")
                    }
                }
            }
        });
    }

    /// Stops the brickd of bricks `after` has and `before` had not (a change given up).
    async fn stop_new_bricks(&self, before: &VolumeRecord, after: &VolumeRecord) {
        for (i, b) in after.bricks.iter().enumerate() {
            if !before
                .bricks
                .iter()
                .any(|o| o.host == b.host && o.path == b.path)
            {
                self.bricks
                    .stop_brick(&after.name, &after.client_name(i), &b.path)
                    .await;
            }
        }
    }

    /// `volume remove-brick NAME BRICK... start|stop|commit|force`.
    pub async fn remove_brick(
        &self,
        name: &str,
        bricks: &[String],
        action: RemoveAction,
    ) -> Result<RebalanceStatus> {
        let _g = self.op_lock.lock().await;
        let mut v = self.get(name)?;
        if bricks.is_empty() {
            return Err(invalid("name the bricks to remove: HOST:/PATH..."));
        }
        self.store.check_writable()?;
        let mut idx: Vec<usize> = Vec::new();
        for s in bricks {
            let i = brick_index(&v, s)?;
            if idx.contains(&i) {
                return Err(invalid(format!("brick {s} is given twice")));
            }
            idx.push(i);
        }
        let mut sets: Vec<usize> = idx.iter().map(|i| v.replica_set_of(*i)).collect();
        sets.sort();
        sets.dedup();
        for g in &sets {
            if !v.subvol_bricks(*g).all(|i| idx.contains(&i)) {
                let all: Vec<String> = v.subvol_bricks(*g).map(|i| v.bricks[i].spec()).collect();
                return Err(invalid(format!(
                    "remove whole replica sets: replica set {g} is {}",
                    all.join(" ")
                )));
            }
        }
        if sets.len() >= v.subvol_count() {
            return Err(invalid(format!(
                "volume {name} would have no bricks left; delete it instead"
            )));
        }
        let what = format!(
            "volume remove-brick {name} {} {}",
            bricks.join(" "),
            format!("{action:?}").to_lowercase()
        );
        match action {
            RemoveAction::Start => {
                if !v.started || self.graph(name).is_none() {
                    return Err(ManagerError::NotStarted(name.into()));
                }
                if let Some(r) = self.running(name) {
                    return Err(ManagerError::Exists(format!(
                        "a {} of volume {name} (stop it first)",
                        r.base.lock().status.kind
                    )));
                }
                self.check_room(&v, &sets)?;
                for i in &idx {
                    v.bricks[*i].decommissioned = true;
                }
                v.commit_hash = Some(new_commit_hash(v.commit_hash));
                self.regraph(&v).await?;
                self.store.put_volume(&v, &what)?;
                self.start_run(&v, "remove-brick", true, false)
            }
            RemoveAction::Stop => {
                if let Some(r) = self.running(name) {
                    r.progress.stop.store(true, Ordering::SeqCst);
                } else {
                    self.stop_elsewhere(name).await?;
                }
                for b in v.bricks.iter_mut() {
                    b.decommissioned = false;
                }
                self.regraph(&v).await?;
                self.store.put_volume(&v, &what)?;
                self.wait_stopped(name).await;
                self.rebalance_status(name)
            }
            RemoveAction::Commit | RemoveAction::Force => {
                if action == RemoveAction::Commit {
                    self.check_drained(&v, &idx, &sets).await?;
                } else if let Some(r) = self.running(name) {
                    r.progress.stop.store(true, Ordering::SeqCst);
                    self.wait_stopped(name).await;
                } else {
                    self.stop_elsewhere(name).await?;
                }
                let gone: Vec<(String, String)> = idx
                    .iter()
                    .map(|i| (v.client_name(*i), v.bricks[*i].path.clone()))
                    .collect();
                // Keep the translator names the staying bricks had.
                for i in 0..v.bricks.len() {
                    v.bricks[i].id.get_or_insert(i);
                }
                let mut k = 0;
                v.bricks.retain(|_| {
                    k += 1;
                    !idx.contains(&(k - 1))
                });
                for b in v.bricks.iter_mut() {
                    b.decommissioned = false;
                }
                v.kind = volume::kind_of(v.bricks.len(), v.replica_count()).into();
                let old = self.graph(name);
                self.regraph(&v).await?;
                self.store.put_volume(&v, &what)?;
                // Fops that began on the old graph may still reach the removed bricks: they
                // stop once those are done, or after a minute.
                if let Some(old) = old {
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while old.in_use() > 0 && Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                for (n, p) in gone {
                    self.bricks.stop_brick(name, &n, &p).await;
                }
                tracing::info!(volume = %name, bricks = v.bricks.len(), "bricks removed");
                self.rebalance_status(name)
            }
        }
    }

    /// Refuses a remove-brick whose files the staying subvolumes cannot hold, from statfs
    /// of the local bricks: data moving between bricks of one file system needs no room.
    fn check_room(&self, v: &VolumeRecord, sets: &[usize]) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let dev = |i: usize| std::fs::metadata(&v.bricks[i].path).ok().map(|m| m.dev());
        let mut staying: HashMap<u64, u64> = HashMap::new();
        for g in (0..v.subvol_count()).filter(|g| !sets.contains(g)) {
            let i = v.subvol_bricks(g).start;
            if is_local_host(&v.bricks[i].host)
                && let (Some(d), Some((_, free))) =
                    (dev(i), crate::status::capacity(&v.bricks[i].path))
            {
                staying.insert(d, free);
            }
        }
        let mut need = 0u64;
        for g in sets {
            let i = v.subvol_bricks(*g).start;
            if !is_local_host(&v.bricks[i].host) {
                continue;
            }
            if let (Some(d), Some((total, free))) =
                (dev(i), crate::status::capacity(&v.bricks[i].path))
                && !staying.contains_key(&d)
            {
                need += total - free;
            }
        }
        let room: u64 = staying.values().sum();
        if need > room {
            return Err(invalid(format!(
                "not enough room (ENOSPC): the bricks to remove hold {} MiB, the others have {} MiB free",
                need >> 20,
                room >> 20
            )));
        }
        Ok(())
    }

    /// Refuses a commit until the remove-brick of exactly these bricks completed and they
    /// hold no file.
    async fn check_drained(&self, v: &VolumeRecord, idx: &[usize], sets: &[usize]) -> Result<()> {
        if idx.iter().any(|i| !v.bricks[*i].decommissioned) {
            return Err(invalid(format!(
                "run `volume remove-brick {} ... start` for these bricks first",
                v.name
            )));
        }
        let s = self.rebalance_status(&v.name)?;
        if s.kind != "remove-brick" || s.state != "completed" {
            return Err(ManagerError::Started(format!(
                "{}: the remove-brick is {} ({} of {} files scanned); commit when it has completed",
                v.name, s.state, s.totals.scanned, s.files_total
            )));
        }
        let g = self
            .graph(&v.name)
            .ok_or_else(|| ManagerError::NotStarted(v.name.clone()))?;
        let rb = Rebalancer::of(g.xlators())
            .ok_or_else(|| invalid(format!("volume {} has one subvolume", v.name)))?;
        let left = rb
            .left_on_decommissioned(1000)
            .await
            .map_err(|e| invalid(format!("checking the bricks to remove: {e}")))?;
        if left > 0 {
            return Err(invalid(format!(
                "replica set(s) {sets:?} still hold {left} file(s); run remove-brick start again, then commit"
            )));
        }
        Ok(())
    }

    /// `volume replace-brick NAME OLD NEW commit force`: NEW (an empty or missing directory)
    /// takes OLD's place in its replica set and is healed from the others.
    pub async fn replace_brick(&self, name: &str, old: &str, new: &str) -> Result<VolumeRecord> {
        let _g = self.op_lock.lock().await;
        let mut v = self.get(name)?;
        if v.replica_count() < 2 {
            return Err(invalid(format!(
                "volume {name} is not replicated: a brick has no copy to heal from; use add-brick, then remove-brick"
            )));
        }
        let i = brick_index(&v, old)?;
        let mut fresh = self.brick_records(&[new.to_string()])?;
        self.check_not_in_use(&fresh)?;
        let nb = &fresh[0];
        if is_local_host(&nb.host)
            && let Ok(mut d) = std::fs::read_dir(&nb.path)
            && d.next().is_some()
        {
            return Err(invalid(format!(
                "brick {new} is not empty: replace-brick needs an empty or missing directory"
            )));
        }
        self.prepare_new_bricks(&mut fresh, false).await?;
        let mut b: BrickRecord = fresh.remove(0);
        b.id = Some(v.bricks[i].id.unwrap_or(i));
        let gone = v.bricks[i].clone();
        let client = v.client_name(i);
        v.bricks[i] = b;
        if v.started {
            self.bricks.stop_brick(name, &client, &gone.path).await;
            self.regraph(&v).await?;
        }
        self.store.put_volume(
            &v,
            &format!("volume replace-brick {name} {old} {new} commit force"),
        )?;
        // The new brick is empty and no copy says so: a full heal of its set fills it.
        self.heal_sets(name, &[v.replicate_name(v.replica_set_of(i))]);
        tracing::info!(volume = %name, old, new, "brick replaced");
        Ok(v)
    }
}
