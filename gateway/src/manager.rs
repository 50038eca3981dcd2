//! The volume manager (GlusterFS's glusterd): creates, starts, stops, imports and deletes
//! volumes, has the local brickd processes supervised (`crate::supervisor`), and keeps a client
//! graph per started volume.

use crate::brick_checks::read_volume_id;
use crate::config::GatewayConfig;
use crate::health::link;
use crate::jobs::Progress;
use crate::store::Store;
use crate::supervisor::Supervisor;
use crate::volume::{self, BrickRecord, VolumeRecord, is_local_host};
use engine::graph::Graph;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub use crate::error::ManagerError;
pub use crate::status::{BrickStatus, OfflineBrick, StartReport, VolumeStatus};

type Result<T> = std::result::Result<T, ManagerError>;

/// How long `volume start` waits for bricks: for brickd processes to listen, then for every
/// brick to answer the brick RPC.
const LISTEN_WAIT: Duration = Duration::from_secs(10);
const ANSWER_WAIT: Duration = Duration::from_secs(10);

pub struct Manager {
    pub cfg: GatewayConfig,
    pub store: Store,
    /// The brickd processes of the local bricks.
    pub(crate) bricks: Supervisor,
    /// Read by every S3 and NFS request (`graph`), written only when a volume starts or stops.
    pub(crate) graphs: RwLock<HashMap<String, Arc<Graph>>>,
    /// Serialises management operations (create/start/stop/delete), as glusterd's big lock
    /// does; the data path never takes it.
    pub(crate) op_lock: tokio::sync::Mutex<()>,
    /// Bumped when NFS exports change, so the NFS server rereads them at once.
    pub nfs_generation: std::sync::atomic::AtomicU64,
    /// Samba and its mounts; see `crate::smb`.
    pub smb: crate::smb_runtime::SmbRuntime,
    /// Wakes the SMB reconciler when a volume starts or stops.
    pub smb_changed: Notify,
    /// Console sessions (in memory: a restart logs the console out).
    pub sessions: crate::auth::Sessions,
    /// Long operations the API runs as jobs (`GET /api/v1/jobs/{id}`).
    pub jobs: crate::jobs::Jobs,
    /// Bricks going down and coming back (`GET /api/v1/events`).
    pub events: crate::health::BrickEvents,
    /// Rebalances running here (`crate::elastic`).
    pub(crate) elastic: crate::elastic::Runs,
    /// The pool this node belongs to, when the state is in etcd.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// This node's API URL, once it listens.
    pub api_url: std::sync::OnceLock<String>,
    /// Volumes this node is starting or stopping because the state changed (`reconcile`).
    pub(crate) applying: parking_lot::Mutex<std::collections::HashSet<String>>,
    /// The bricks each running graph was built with, to see the pool change them.
    pub(crate) built: parking_lot::Mutex<HashMap<String, Vec<BrickRecord>>>,
    me: Weak<Manager>,
}

impl Manager {
    pub fn new(cfg: GatewayConfig, store: Store) -> Arc<Manager> {
        Manager::with_cluster(cfg, store, None)
    }

    /// A manager that is one node of `cluster`'s pool (None: alone).
    pub fn with_cluster(
        cfg: GatewayConfig,
        store: Store,
        cluster: Option<Arc<crate::cluster::Cluster>>,
    ) -> Arc<Manager> {
        let sessions = crate::auth::Sessions::default();
        if let Some(c) = &cluster {
            sessions.share(c.etcd.clone());
        }
        Arc::new_cyclic(|me| Manager {
            cluster,
            api_url: Default::default(),
            applying: Default::default(),
            built: Default::default(),
            cfg,
            store,
            bricks: Supervisor::default(),
            graphs: RwLock::new(HashMap::new()),
            op_lock: tokio::sync::Mutex::new(()),
            nfs_generation: std::sync::atomic::AtomicU64::new(0),
            smb: Default::default(),
            smb_changed: Notify::new(),
            sessions,
            jobs: Default::default(),
            events: Default::default(),
            elastic: Default::default(),
            me: me.clone(),
        })
    }

    /// This manager as an `Arc` (for what must outlive a call: mounts, watchers).
    pub fn arc(&self) -> Option<Arc<Manager>> {
        self.me.upgrade()
    }

    fn vol_dir(&self, name: &str) -> PathBuf {
        self.cfg.data_dir.join("vols").join(name)
    }

    pub(crate) fn secret_file(&self, name: &str) -> PathBuf {
        self.vol_dir(name).join("secret")
    }

    /// The bricks' auth file (`auth.allow`/`auth.reject`), which every brickd of this host
    /// watches.
    pub(crate) fn auth_file(&self, name: &str) -> PathBuf {
        self.vol_dir(name).join("auth")
    }

    pub(crate) fn write_auth(&self, v: &VolumeRecord) -> Result<()> {
        let dir = self.vol_dir(&v.name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| ManagerError::Io(dir.display().to_string(), e))?;
        let p = self.auth_file(&v.name);
        // Replaced by a rename, so a brickd never reads half of it.
        let tmp = p.with_extension("tmp");
        std::fs::write(&tmp, v.auth_file_text())
            .and_then(|_| std::fs::rename(&tmp, &p))
            .map_err(|e| ManagerError::Io(p.display().to_string(), e))
    }

    /// The cluster's TLS files when volume `v` has TLS on, made if missing (as `gatewayd up
    /// --tls` would), so `volume set … transport.socket.ssl-enabled on` needs nothing else.
    pub(crate) fn brick_tls(&self, v: &VolumeRecord) -> Result<Option<crate::tls::Material>> {
        if !v.ssl_enabled() {
            return Ok(None);
        }
        let (m, made) = crate::tls::ensure_material(
            &self.cfg.data_dir,
            std::slice::from_ref(&self.cfg.brick_listen_host),
        )?;
        if made {
            tracing::info!(volume = %v.name, ca = %m.ca.display(), "made the cluster CA and node certificate for the brick RPC");
        }
        Ok(Some(m))
    }

    pub(crate) fn write_secret(&self, v: &VolumeRecord) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = self.vol_dir(&v.name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| ManagerError::Io(dir.display().to_string(), e))?;
        let p = self.secret_file(&v.name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&p)
            .map_err(|e| ManagerError::Io(p.display().to_string(), e))?;
        std::io::Write::write_all(&mut f, v.secret.as_bytes())
            .map_err(|e| ManagerError::Io(p.display().to_string(), e))
    }

    pub fn get(&self, name: &str) -> Result<VolumeRecord> {
        self.store
            .volume(name)?
            .ok_or_else(|| ManagerError::NoSuchVolume(name.to_string()))
    }

    pub fn list(&self) -> Result<Vec<VolumeRecord>> {
        Ok(self.store.volumes()?)
    }

    /// `gluster volume create NAME [replica N [arbiter 1]] BRICK... [force]`: `replica` 1 makes
    /// a plain distribute volume; with more, consecutive bricks form replica sets of `replica`.
    /// A brick's host must resolve; a local brick's directory is made if missing, but its
    /// parent must exist unless `force` (which makes the parents too).
    pub async fn create(
        &self,
        name: &str,
        specs: &[String],
        replica: usize,
        arbiter: usize,
        force: bool,
    ) -> Result<VolumeRecord> {
        let _g = self.op_lock.lock().await;
        volume::check_name(name)?;
        if specs.is_empty() {
            return Err(ManagerError::Brick(
                "a volume needs at least one brick".into(),
            ));
        }
        volume::check_layout(specs.len(), replica, arbiter)?;
        if self.store.volume(name)?.is_some() {
            return Err(ManagerError::Exists(format!("volume {name}")));
        }
        let mut bricks = self.brick_records(specs)?;
        self.check_not_in_use(&bricks)?;
        self.prepare_new_bricks(&mut bricks, force).await?;
        let mut v = VolumeRecord::with_layout(name, bricks, replica, arbiter)?;
        // Every file of a volume we lay out sits at its hashed brick or has a linkto there.
        v.options
            .insert("cluster.lookup-unhashed".into(), "auto".into());
        self.write_secret(&v)?;
        if !self
            .store
            .create_volume(&v, &format!("volume create {name}"))?
        {
            return Err(ManagerError::Exists(format!("volume {name}")));
        }
        tracing::info!(volume = %name, id = %v.id, kind = %v.kind, bricks = v.bricks.len(), replica, "volume created");
        Ok(v)
    }

    /// Adopts existing GlusterFS bricks: the volume id comes from the bricks, and every brick
    /// must carry the same one. `replica` and `arbiter` must be the GlusterFS volume's, with
    /// the bricks in its order.
    pub async fn import(
        &self,
        name: &str,
        specs: &[String],
        replica: usize,
        arbiter: usize,
    ) -> Result<VolumeRecord> {
        let _g = self.op_lock.lock().await;
        volume::check_name(name)?;
        volume::check_layout(specs.len(), replica, arbiter)?;
        if self.store.volume(name)?.is_some() {
            return Err(ManagerError::Exists(format!("volume {name}")));
        }
        let bricks = self.brick_records(specs)?;
        self.check_not_in_use(&bricks)?;
        let mut id: Option<String> = None;
        for b in &bricks {
            if !is_local_host(&b.host) {
                return Err(ManagerError::Brick(format!(
                    "import reads bricks on this host; {} is not local",
                    b.host
                )));
            }
            let p = Path::new(&b.path);
            if !p.is_dir() {
                return Err(ManagerError::Brick(format!(
                    "brick {} is not a directory",
                    b.path
                )));
            }
            let this = read_volume_id(p)
                .map_err(ManagerError::Brick)?
                .ok_or_else(|| {
                    ManagerError::Brick(format!(
                        "brick {} has no trusted.glusterfs.volume-id: not a GlusterFS brick",
                        b.path
                    ))
                })?;
            match &id {
                None => id = Some(this),
                Some(first) if *first != this => {
                    return Err(ManagerError::Brick(format!(
                        "brick {} belongs to volume {this}, the others to {first}",
                        b.path
                    )));
                }
                Some(_) => {}
            }
        }
        let mut v = VolumeRecord::with_layout(name, bricks, replica, arbiter)?;
        v.id = id.expect("at least one brick");
        // GlusterFS may have left files off their hashed brick (an add-brick without a
        // rebalance): look everywhere on a miss.
        v.options
            .insert("cluster.lookup-unhashed".into(), "on".into());
        self.write_secret(&v)?;
        if !self
            .store
            .create_volume(&v, &format!("volume import {name}"))?
        {
            return Err(ManagerError::Exists(format!("volume {name}")));
        }
        tracing::info!(volume = %name, id = %v.id, "volume imported");
        Ok(v)
    }

    /// `volume start`: spawns the local bricks, builds the client graph and waits (up to
    /// [`LISTEN_WAIT`] + [`ANSWER_WAIT`]) for every brick to answer, telling `progress` how many
    /// do. The volume starts with the bricks that answer; the report names the others and why.
    pub async fn start(&self, name: &str, progress: &Progress) -> Result<StartReport> {
        progress.set(
            0,
            0,
            format!("volume start {name}: waiting for other management work"),
        );
        let _g = self.op_lock.lock().await;
        self.store.check_writable()?;
        self.start_locked(name, progress).await
    }

    /// `start` with the management lock held.
    pub(crate) async fn start_locked(
        &self,
        name: &str,
        progress: &Progress,
    ) -> Result<StartReport> {
        let mut v = self.get(name)?;
        if let Some(g) = self.graph(name) {
            return Ok(self.report(&v, &g));
        }
        // In a pool the other nodes start their bricks when they see the volume started:
        // say so first, or this node would wait for bricks nobody starts.
        let announced = self.cluster.is_some() && !v.started;
        if announced {
            v.started = true;
            self.store.put_volume(&v, &format!("volume start {name}"))?;
        }
        let graph = match self.spawn_and_graph(&v, LISTEN_WAIT, progress).await {
            Ok(g) => g,
            Err(e) => {
                self.bricks.stop(name, &Progress::none()).await;
                if announced {
                    v.started = false;
                    let _ = self
                        .store
                        .put_volume(&v, &format!("volume start {name} failed: {e}"));
                }
                return Err(e);
            }
        };
        let graph = Arc::new(graph);
        let total = v.bricks.len();
        let began = Instant::now();
        loop {
            let r = self.report(&v, &graph);
            let waiting: Vec<&str> = r.offline.iter().map(|o| o.brick.as_str()).collect();
            let mut msg = format!(
                "volume start {name}: {}/{total} bricks online",
                r.bricks_online
            );
            if !waiting.is_empty() {
                msg += &format!("; waiting for {}", waiting.join(", "));
            }
            progress.set(r.bricks_online as u64, total as u64, msg);
            // A local brick whose brickd keeps exiting will not answer by waiting.
            let hopeless = (0..total)
                .all(|i| link(&graph, &v.client_name(i)).0 || self.bricks.failure(&v, i).is_some());
            if r.bricks_online == total
                || began.elapsed() >= ANSWER_WAIT
                || (hopeless && began.elapsed() >= Duration::from_secs(2))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Let the cluster translators hear of the bricks that answered, then give a fresh
        // volume its layout before the first client arrives.
        let r = self.report(&v, &graph);
        if r.bricks_online > 0 {
            graph.wait_up(Duration::from_secs(5)).await;
            let _ = graph
                .top()
                .lookup(
                    &engine::Ctx::root(),
                    &engine::Loc::root(),
                    &engine::Xattrs::new(),
                )
                .await;
        }
        self.graphs.write().insert(name.to_string(), graph.clone());
        self.built.lock().insert(name.to_string(), v.bricks.clone());
        if !v.started {
            v.started = true;
            self.store.put_volume(&v, &format!("volume start {name}"))?;
        }
        self.smb_changed.notify_one();
        let seen: Vec<bool> = (0..total)
            .map(|i| link(&graph, &v.client_name(i)).0)
            .collect();
        for (i, on) in seen.iter().enumerate() {
            if !on {
                let why = r
                    .offline
                    .iter()
                    .find(|o| o.name == v.client_name(i))
                    .map(|o| format!("not online when the volume started: {}", o.reason));
                self.events.record(&v, i, false, why);
            }
        }
        watch(self.me.clone(), v.clone(), Arc::downgrade(&graph), seen);
        self.resume_rebalances();
        let r = self.report(&v, &graph);
        if r.offline.is_empty() {
            tracing::info!(volume = %name, bricks = total, "volume started");
        } else {
            let names: Vec<String> = r
                .offline
                .iter()
                .map(|o| format!("{} ({})", o.brick, o.reason))
                .collect();
            tracing::warn!(volume = %name, "volume started with {} of {total} bricks online; not online: {}", r.bricks_online, names.join(", "));
        }
        Ok(r)
    }

    /// The volume and how many of its bricks answer on `g`.
    pub(crate) fn report(&self, v: &VolumeRecord, g: &Graph) -> StartReport {
        let mut offline = Vec::new();
        for i in 0..v.bricks.len() {
            let (on, why) = link(g, &v.client_name(i));
            if !on {
                offline.push(OfflineBrick {
                    name: v.client_name(i),
                    brick: format!("{}:{}", v.bricks[i].host, v.bricks[i].path),
                    reason: self.why_down(v, i, why),
                });
            }
        }
        StartReport {
            volume: v.view(),
            bricks_total: v.bricks.len(),
            bricks_online: v.bricks.len() - offline.len(),
            offline,
        }
    }

    /// Why brick `i` of `v` is down: its brickd's failure when that is the cause, else what
    /// the brick RPC said.
    pub fn why_down(&self, v: &VolumeRecord, i: usize, rpc: Option<String>) -> String {
        if let Some(f) = self.bricks.failure(v, i) {
            return format!("brickd exited: {f}");
        }
        rpc.unwrap_or_else(|| "not connected".into())
    }

    pub async fn stop(&self, name: &str, progress: &Progress) -> Result<VolumeRecord> {
        let _g = self.op_lock.lock().await;
        let mut v = self.get(name)?;
        // Stopped here but recorded started would be half a stop: etcd must answer first.
        self.store.check_writable()?;
        self.stop_running(name, progress).await;
        if v.started {
            v.started = false;
            self.store.put_volume(&v, &format!("volume stop {name}"))?;
        }
        Ok(v)
    }

    pub(crate) async fn stop_running(&self, name: &str, progress: &Progress) {
        let graph = self.graphs.write().remove(name);
        self.built.lock().remove(name);
        self.smb_changed.notify_one();
        if let Some(g) = graph {
            progress.set(
                0,
                0,
                format!("volume stop {name}: closing the client graph"),
            );
            g.fini().await;
        }
        self.bricks.stop(name, progress).await;
    }

    /// Stops every running volume's bricks and graphs without changing what is recorded, so
    /// the next start of the daemon brings them back.
    pub async fn shutdown(&self) {
        let names: Vec<String> = self
            .bricks
            .volumes()
            .into_iter()
            .chain(self.graphs.read().keys().cloned())
            .collect();
        for n in names {
            self.stop_running(&n, &Progress::none()).await;
        }
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        let _g = self.op_lock.lock().await;
        let v = self.get(name)?;
        self.store.check_writable()?;
        if v.started || self.graphs.read().contains_key(name) {
            return Err(ManagerError::Started(name.to_string()));
        }
        self.store
            .delete_volume(name, &format!("volume delete {name}"))?;
        let _ = std::fs::remove_dir_all(self.vol_dir(name));
        Ok(())
    }

    /// Sets (`Some`) or resets (`None`) a volume option, as `gluster volume set|reset` does.
    /// Known: `cluster.*` (distribute's and replicate's options; the volfile carries them, so
    /// they apply when the volume next starts) and `nfs.disable` (applies at once). Returns the record and
    /// whether a restart of the volume is needed for the change to take effect.
    pub async fn set_option(
        &self,
        name: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(VolumeRecord, bool)> {
        let _g = self.op_lock.lock().await;
        let mut v = self.get(name)?;
        let (key, restart) = crate::options::check(&v, key, value)?;
        let what = match value {
            Some(val) => {
                v.options.insert(key.clone(), val.to_string());
                format!("volume set {name} {key} {val}")
            }
            None => {
                v.options.remove(&key);
                format!("volume reset {name} {key}")
            }
        };
        self.store.put_volume(&v, &what)?;
        if key == volume::AUTH_ALLOW || key == volume::AUTH_REJECT {
            self.write_auth(&v)?;
        }
        self.nfs_generation.fetch_add(1, Ordering::SeqCst);
        Ok((v, restart))
    }

    pub fn graph(&self, name: &str) -> Option<Arc<Graph>> {
        self.graphs.read().get(name).cloned()
    }

    /// The client volfile native clients fetch. With TLS on, it names the cluster's TLS files
    /// of this host: a client on another host needs its own copies at the same paths.
    pub fn volfile(&self, name: &str) -> Result<String> {
        let v = self.get(name)?;
        let tls = self.brick_tls(&v)?;
        Ok(v.client_volfile_with(self.cfg.ping_timeout, &self.cfg.brick_host(), tls.as_ref()))
    }

    /// Starts every volume recorded as started (after a restart of the daemon), and those
    /// named in `also`; returns what each start did.
    pub async fn start_recorded(
        &self,
        also: &[&str],
    ) -> Result<Vec<(String, Result<StartReport>)>> {
        let mut out = Vec::new();
        for v in self.store.volumes()? {
            if !(v.started || also.contains(&v.name.as_str())) {
                continue;
            }
            let r = self.start(&v.name, &Progress::none()).await;
            if let Err(e) = &r {
                tracing::error!(volume = %v.name, "could not start: {e}");
            }
            out.push((v.name, r));
        }
        Ok(out)
    }

    /// `volume status`: each brick's state is the brick RPC's (see `crate::health`), never a
    /// mere TCP connect, which a hung brickd's port still accepts.
    pub async fn status(&self, name: &str) -> Result<VolumeStatus> {
        let v = self.get(name)?;
        let graph = self.graph(name);
        let mut bricks = Vec::new();
        for (i, b) in v.bricks.iter().enumerate() {
            let local = is_local_host(&b.host);
            let p = self.bricks.state(name, &v.client_name(i));
            let (online, why) = match &graph {
                Some(g) => link(g, &v.client_name(i)),
                None => (false, Some(format!("volume {name} is not started"))),
            };
            let offline_reason = (!online).then(|| match &graph {
                Some(_) => self.why_down(&v, i, why),
                None => why.unwrap_or_default(),
            });
            let pid = p.as_ref().and_then(|p| p.pid);
            let cap = if local {
                crate::status::capacity(&b.path)
            } else {
                None
            };
            bricks.push(BrickStatus {
                total_bytes: cap.map(|c| c.0),
                free_bytes: cap.map(|c| c.1),
                name: v.client_name(i),
                host: b.host.clone(),
                path: b.path.clone(),
                port: b.port,
                replica_set: v.replica_set_of(i),
                arbiter: v.is_arbiter(i),
                local,
                online,
                offline_reason,
                pid,
                restarts: p.map(|p| p.restarts).unwrap_or(0),
            });
        }
        let up = self.graph(name).is_some_and(|g| *g.events().borrow());
        Ok(VolumeStatus {
            replica: v.replica_count(),
            arbiter: v.arbiter,
            kind: v.kind,
            name: v.name,
            id: v.id,
            started: v.started,
            mounted_graph_up: up,
            bricks,
        })
    }
}

/// Follows the bricks of a volume just started on `g`, from the states `seen` at the end of
/// the start, recording every change until the volume stops (or starts on another graph).
pub(crate) fn watch(m: Weak<Manager>, v: VolumeRecord, g: Weak<Graph>, mut seen: Vec<bool>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(crate::health::EVERY).await;
            let (Some(m), Some(g)) = (m.upgrade(), g.upgrade()) else {
                return;
            };
            let now: Vec<(bool, Option<String>)> = (0..v.bricks.len())
                .map(|i| link(&g, &v.client_name(i)))
                .collect();
            // Read before checking that the graph is still the volume's: a stop takes the
            // graph out before it tears it down, so what a teardown did is never recorded.
            if !m.graph(&v.name).is_some_and(|cur| Arc::ptr_eq(&cur, &g)) {
                return;
            }
            for (i, (on, why)) in now.into_iter().enumerate() {
                if on != seen[i] {
                    let why = if on {
                        None
                    } else {
                        Some(m.why_down(&v, i, why))
                    };
                    m.events.record(&v, i, on, why);
                    seen[i] = on;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manager(dir: &Path) -> Arc<Manager> {
        let cfg = GatewayConfig {
            data_dir: dir.to_path_buf(),
            ..Default::default()
        };
        Manager::new(cfg, Store::open(&dir.join("db")).unwrap())
    }

    fn specs(dir: &Path, n: usize) -> Vec<String> {
        (1..=n)
            .map(|i| format!("127.0.0.1:{}/bricks/b{i}", dir.display()))
            .collect()
    }

    fn invalid(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(e) => {
                assert_eq!(e.status(), 400, "{e}");
                e.to_string()
            }
            Ok(v) => panic!("accepted: {v:?}"),
        }
    }

    #[tokio::test]
    async fn create_checks_the_replica_layout() {
        let d = tempfile::tempdir().unwrap();
        let m = manager(d.path());
        let e = invalid(m.create("v", &specs(d.path(), 5), 2, 0, false).await);
        assert!(
            e.contains("5 bricks is not a multiple of replica count 2"),
            "{e}"
        );
        let e = invalid(m.create("v", &specs(d.path(), 4), 2, 1, false).await);
        assert!(e.contains("arbiter 1 needs replica 3"), "{e}");
        let e = invalid(m.create("v", &specs(d.path(), 4), 0, 0, false).await);
        assert!(e.contains("replica count 0"), "{e}");
        // Nothing was made by the refused creates.
        assert!(m.list().unwrap().is_empty());
        assert!(!d.path().join("bricks").exists());

        // The bricks' parent must exist (or `force`).
        let e = invalid(m.create("v", &specs(d.path(), 4), 2, 0, false).await);
        assert!(
            e.contains("parent directory") && e.contains("does not exist"),
            "{e}"
        );
        assert!(!d.path().join("bricks").exists());
        let v = m
            .create("v", &specs(d.path(), 4), 2, 0, true)
            .await
            .unwrap();
        assert_eq!(
            (v.kind.as_str(), v.replica, v.arbiter),
            ("distributed-replicate", 2, 0)
        );
        let a = m
            .create("a", &specs(d.path(), 7)[4..], 3, 1, false)
            .await
            .unwrap();
        assert_eq!((a.kind.as_str(), a.replica, a.arbiter), ("replicate", 3, 1));
        let p = m
            .create("p", &specs(d.path(), 9)[7..], 1, 0, false)
            .await
            .unwrap();
        assert_eq!((p.kind.as_str(), p.replica), ("distribute", 1));
        let st = m.status("v").await.unwrap();
        assert_eq!(st.replica, 2);
        let sets: Vec<usize> = st.bricks.iter().map(|b| b.replica_set).collect();
        assert_eq!(sets, [0, 0, 1, 1]);
    }

    #[tokio::test]
    async fn create_refuses_bad_bricks_with_a_reason_and_makes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let m = manager(d.path());
        let file = d.path().join("plain-file");
        std::fs::write(&file, b"x").unwrap();
        let under_file = format!("127.0.0.1:{}/b1", file.display());
        let e = invalid(m.create("v", &[under_file], 1, 0, true).await);
        assert!(e.contains("is a file, not a directory"), "{e}");
        let e = invalid(
            m.create("v", &[format!("127.0.0.1:{}", file.display())], 1, 0, false)
                .await,
        );
        assert!(e.contains("exists and is not a directory"), "{e}");
        let missing = d.path().join("no").join("such");
        let e = invalid(
            m.create(
                "v",
                &[format!("127.0.0.1:{}/b1", missing.display())],
                1,
                0,
                false,
            )
            .await,
        );
        assert!(
            e.contains(&format!(
                "parent directory {} does not exist",
                missing.display()
            )),
            "{e}"
        );
        assert!(!d.path().join("no").exists());
        let e = invalid(
            m.create(
                "v",
                &["no-such-host.invalid:/srv/b1".to_string()],
                1,
                0,
                true,
            )
            .await,
        );
        assert!(
            e.contains("host no-such-host.invalid cannot be resolved"),
            "{e}"
        );
        assert!(m.list().unwrap().is_empty());
        // With force the parents are made.
        m.create(
            "v",
            &[format!("127.0.0.1:{}/b1", missing.display())],
            1,
            0,
            true,
        )
        .await
        .unwrap();
        assert!(missing.join("b1").is_dir());
    }

    #[tokio::test]
    async fn volume_set_takes_distribute_and_replicate_options() {
        let d = tempfile::tempdir().unwrap();
        let m = manager(d.path());
        m.create("v", &specs(d.path(), 4), 2, 0, true)
            .await
            .unwrap();
        let (v, restart) = m
            .set_option("v", "cluster.quorum-type", Some("auto"))
            .await
            .unwrap();
        assert!(!restart);
        assert_eq!(v.options["cluster.quorum-type"], "auto");
        m.set_option("v", "cluster.lookup-unhashed", Some("on"))
            .await
            .unwrap();
        m.set_option("v", "cluster.data-self-heal", Some("off"))
            .await
            .unwrap();
        let text = m.volfile("v").unwrap();
        assert_eq!(text.matches("option quorum-type auto").count(), 2);
        assert_eq!(text.matches("option data-self-heal off").count(), 2);
        assert_eq!(text.matches("option lookup-unhashed on").count(), 1);

        let e = invalid(m.set_option("v", "cluster.quorum-type", Some("most")).await);
        assert!(
            e.contains("cluster.quorum-type: expected one of none|auto|fixed"),
            "{e}"
        );
        let e = invalid(m.set_option("v", "cluster.quorum-count", Some("3")).await);
        assert!(e.contains("more than the 2 bricks"), "{e}");
        m.set_option("v", "cluster.quorum-count", Some("2"))
            .await
            .unwrap();
        let e = invalid(
            m.set_option("v", "cluster.afr-pending-xattr", Some("a,b"))
                .await,
        );
        assert!(e.contains("cannot be set"), "{e}");
        let e = invalid(m.set_option("v", "cluster.arbiter-count", Some("1")).await);
        assert!(e.contains("cannot be set"), "{e}");
        let e = invalid(m.set_option("v", "cluster.no-such", Some("1")).await);
        assert!(
            e.contains("cluster.quorum-type") && e.contains("cluster.min-free-disk"),
            "{e}"
        );
        assert!(!e.contains("afr-pending-xattr"), "{e}");

        let (v, _) = m
            .set_option("v", "cluster.quorum-type", None)
            .await
            .unwrap();
        assert!(!v.options.contains_key("cluster.quorum-type"));
        assert!(!m.volfile("v").unwrap().contains("quorum-type"));
    }
}
