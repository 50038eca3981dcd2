//! The volume manager (GlusterFS's glusterd): creates, starts, stops, imports and deletes
//! volumes, supervises the local brickd processes, and keeps a client graph per started volume.

use crate::config::GatewayConfig;
use crate::store::{Store, StoreError};
use crate::volume::{self, BrickRecord, SpecError, VolumeRecord, is_local_host};
use engine::graph::{Graph, GraphError};
use engine::registry::Registry;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tokio::process::Command;
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("volume {0} does not exist")]
    NoSuchVolume(String),
    #[error("S3 key {0} does not exist")]
    NoSuchKey(String),
    #[error("{0} already exists")]
    Exists(String),
    #[error("no NFS export {0}")]
    NoSuchExport(String),
    #[error("no SMB share {0}")]
    NoSuchShare(String),
    #[error("no SMB user {0}")]
    NoSuchUser(String),
    #[error(transparent)]
    Smb(#[from] protocols_smb::SmbError),
    #[error("{0}")]
    Invalid(String),
    #[error("volume {0} is started; stop it first")]
    Started(String),
    #[error("volume {0} is not started")]
    NotStarted(String),
    #[error("{0}")]
    Brick(String),
    #[error("volume {0}: {1}")]
    Graph(String, GraphError),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

impl ManagerError {
    /// The HTTP status the API answers with.
    pub fn status(&self) -> u16 {
        match self {
            ManagerError::NoSuchVolume(_)
            | ManagerError::NoSuchKey(_)
            | ManagerError::NoSuchExport(_)
            | ManagerError::NoSuchShare(_)
            | ManagerError::NoSuchUser(_) => 404,
            ManagerError::Smb(
                protocols_smb::SmbError::ShareName(_)
                | protocols_smb::SmbError::ReservedShare(_)
                | protocols_smb::SmbError::UserName(_)
                | protocols_smb::SmbError::ReservedUser(_)
                | protocols_smb::SmbError::Password
                | protocols_smb::SmbError::Unrepresentable(..),
            ) => 400,
            ManagerError::Smb(protocols_smb::SmbError::Missing(_)) => 501,
            ManagerError::Exists(_) | ManagerError::Started(_) | ManagerError::NotStarted(_) => 409,
            ManagerError::Spec(_) | ManagerError::Brick(_) | ManagerError::Invalid(_) => 400,
            _ => 500,
        }
    }
}

type Result<T> = std::result::Result<T, ManagerError>;

struct BrickProc {
    name: String,
    path: String,
    pid: AtomicU32,
    restarts: AtomicU32,
    stopping: AtomicBool,
    stop: Notify,
    done: Notify,
    exited: AtomicBool,
}

/// One brick of `volume status`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BrickStatus {
    /// GlusterFS's name for the brick's client: VOLUME-client-N.
    pub name: String,
    pub host: String,
    pub path: String,
    pub port: u16,
    /// The replica set the brick belongs to (brick index / replica).
    pub replica_set: usize,
    /// True for the arbiter brick of a `replica 3 arbiter 1` set.
    pub arbiter: bool,
    pub local: bool,
    pub online: bool,
    pub pid: Option<u32>,
    pub restarts: u32,
    /// Size and free space of the file system holding a local brick (bytes).
    pub total_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
}

/// (total, available to unprivileged writers) bytes of the file system holding `path`.
fn capacity(path: &str) -> Option<(u64, u64)> {
    let c = std::ffi::CString::new(path).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs writes into `st`, a properly sized struct we own.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some((st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize))
}

/// `volume status`: the volume's layout and each brick's process and reachability.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct VolumeStatus {
    pub name: String,
    pub id: String,
    /// `distribute`, `replicate` or `distributed-replicate`.
    pub kind: String,
    /// Bricks per replica set (1: no replication).
    pub replica: usize,
    /// Arbiter bricks per replica set (0 or 1).
    pub arbiter: usize,
    pub started: bool,
    /// True when the gateway's client graph reaches the volume.
    pub mounted_graph_up: bool,
    pub bricks: Vec<BrickStatus>,
}

pub struct Manager {
    pub cfg: GatewayConfig,
    pub store: Store,
    procs: Mutex<HashMap<String, Vec<Arc<BrickProc>>>>,
    /// Read by every S3 and NFS request (`graph`), written only when a volume starts or stops.
    graphs: RwLock<HashMap<String, Arc<Graph>>>,
    /// Serialises management operations (create/start/stop/delete), as glusterd's big lock
    /// does; the data path never takes it.
    op_lock: tokio::sync::Mutex<()>,
    /// Bumped when NFS exports change, so the NFS server rereads them at once.
    pub nfs_generation: std::sync::atomic::AtomicU64,
    /// Samba and its mounts; see `crate::smb`.
    pub smb: crate::smb::SmbRuntime,
    /// Wakes the SMB reconciler when a volume starts or stops.
    pub smb_changed: Notify,
    /// Console sessions (in memory: a restart logs the console out).
    pub sessions: crate::auth::Sessions,
}

/// The options `volume set` takes, for error messages.
fn known_options() -> String {
    use engine::xlators::cluster::{distribute, replicate};
    let mut keys: Vec<String> = distribute::OPTIONS
        .iter()
        .chain(replicate::OPTIONS)
        .filter(|o| !volume::LAYOUT_OPTIONS.contains(&o.key))
        .map(|o| format!("cluster.{}", o.key))
        .collect();
    keys.push("nfs.disable".into());
    format!("known: {}", keys.join(", "))
}

/// A port free on `host` now, and its listener: the caller holds the listeners until every
/// port of a volume is chosen, or the kernel may hand the same port out twice.
fn free_port(host: &str) -> std::io::Result<(u16, std::net::TcpListener)> {
    let l = std::net::TcpListener::bind((host, 0))?;
    Ok((l.local_addr()?.port(), l))
}

fn read_volume_id(path: &Path) -> std::result::Result<Option<String>, String> {
    match brickd::storage::xattr::get(path, engine::fop::keys::VOLUME_ID) {
        Ok(Some(v)) => match engine::Gfid::from_slice(&v) {
            Some(g) => Ok(Some(g.to_string())),
            None => Err(format!(
                "{}: trusted.glusterfs.volume-id is not 16 bytes",
                path.display()
            )),
        },
        Ok(None) => Ok(None),
        Err(e) => Err(format!(
            "{}: reading trusted.glusterfs.volume-id: {e}",
            path.display()
        )),
    }
}

impl Manager {
    pub fn new(cfg: GatewayConfig, store: Store) -> Arc<Manager> {
        Arc::new(Manager {
            cfg,
            store,
            procs: Mutex::new(HashMap::new()),
            graphs: RwLock::new(HashMap::new()),
            op_lock: tokio::sync::Mutex::new(()),
            nfs_generation: std::sync::atomic::AtomicU64::new(0),
            smb: Default::default(),
            smb_changed: Notify::new(),
            sessions: Default::default(),
        })
    }

    fn vol_dir(&self, name: &str) -> PathBuf {
        self.cfg.data_dir.join("vols").join(name)
    }

    fn secret_file(&self, name: &str) -> PathBuf {
        self.vol_dir(name).join("secret")
    }

    fn write_secret(&self, v: &VolumeRecord) -> Result<()> {
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

    fn brick_records(&self, specs: &[String]) -> Result<Vec<BrickRecord>> {
        if specs.is_empty() {
            return Err(ManagerError::Invalid(
                "a volume needs at least one brick: HOST:/PATH".into(),
            ));
        }
        let parsed = volume::parse_bricks(specs)?;
        // Ports other volumes' bricks were given: free now if those volumes are stopped, but
        // theirs.
        let taken: std::collections::HashSet<u16> = self
            .list()?
            .iter()
            .flat_map(|v| v.bricks.iter().map(|b| b.port))
            .collect();
        let mut held = Vec::new();
        let mut out = Vec::new();
        for (i, (host, path)) in parsed.into_iter().enumerate() {
            let port = if is_local_host(&host) {
                loop {
                    let (port, l) = free_port(&self.cfg.brick_listen_host)
                        .map_err(|e| ManagerError::Io("choosing a brick port".into(), e))?;
                    held.push(l);
                    if !taken.contains(&port) {
                        break port;
                    }
                }
            } else {
                // A remote brick is served by a brickd an operator starts on that host, on
                // GlusterFS's brick port range.
                49152 + i as u16
            };
            out.push(BrickRecord { host, path, port });
        }
        Ok(out)
    }

    /// `gluster volume create NAME [replica N [arbiter 1]] BRICK...`: `replica` 1 makes a
    /// plain distribute volume; with more, consecutive bricks form replica sets of `replica`.
    pub async fn create(
        &self,
        name: &str,
        specs: &[String],
        replica: usize,
        arbiter: usize,
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
        let bricks = self.brick_records(specs)?;
        self.check_not_in_use(&bricks)?;
        for b in bricks.iter().filter(|b| is_local_host(&b.host)) {
            let p = Path::new(&b.path);
            std::fs::create_dir_all(p)
                .map_err(|e| ManagerError::Io(format!("creating brick {}", b.path), e))?;
            if let Some(id) = read_volume_id(p).map_err(ManagerError::Brick)? {
                return Err(ManagerError::Brick(format!(
                    "brick {}:{} is already part of volume {id}; use `volume import` to adopt it",
                    b.host, b.path
                )));
            }
        }
        let mut v = VolumeRecord::with_layout(name, bricks, replica, arbiter)?;
        // Every file of a volume we lay out sits at its hashed brick or has a linkto there.
        v.options
            .insert("cluster.lookup-unhashed".into(), "auto".into());
        self.write_secret(&v)?;
        self.store
            .put_volume(&v, &format!("volume create {name}"))?;
        tracing::info!(volume = %name, id = %v.id, kind = %v.kind, bricks = v.bricks.len(), replica, "volume created");
        Ok(v)
    }

    fn check_not_in_use(&self, bricks: &[BrickRecord]) -> Result<()> {
        for other in self.store.volumes()? {
            for b in bricks {
                if other
                    .bricks
                    .iter()
                    .any(|o| o.host == b.host && o.path == b.path)
                {
                    return Err(ManagerError::Brick(format!(
                        "brick {}:{} is already a brick of volume {}",
                        b.host, b.path, other.name
                    )));
                }
            }
        }
        Ok(())
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
        self.store
            .put_volume(&v, &format!("volume import {name}"))?;
        tracing::info!(volume = %name, id = %v.id, "volume imported");
        Ok(v)
    }

    pub async fn start(&self, name: &str) -> Result<VolumeRecord> {
        let _g = self.op_lock.lock().await;
        let mut v = self.get(name)?;
        if self.graphs.read().contains_key(name) {
            return Ok(v);
        }
        self.write_secret(&v)?;
        self.spawn_bricks(&v);
        self.wait_for_local_bricks(&v, Duration::from_secs(10))
            .await;
        let text = v.client_volfile(self.cfg.ping_timeout, &self.cfg.brick_listen_host);
        let graph = Graph::from_text(&text, &Registry::client_side())
            .map_err(|e| ManagerError::Graph(name.into(), e))?;
        graph
            .init()
            .await
            .map_err(|e| ManagerError::Graph(name.into(), e))?;
        if !graph.wait_up(Duration::from_secs(20)).await {
            tracing::warn!(volume = %name, "no brick answered within 20s; the volume stays started and will come up with them");
        }
        // Touch the root so a fresh volume gets its layout before the first client arrives.
        let _ = graph
            .top()
            .lookup(
                &engine::Ctx::root(),
                &engine::Loc::root(),
                &engine::Xattrs::new(),
            )
            .await;
        self.graphs
            .write()
            .insert(name.to_string(), Arc::new(graph));
        if !v.started {
            v.started = true;
            self.store.put_volume(&v, &format!("volume start {name}"))?;
        }
        self.smb_changed.notify_one();
        tracing::info!(volume = %name, "volume started");
        Ok(v)
    }

    /// Gives freshly spawned bricks a moment to listen, so the graph's first connection
    /// attempts find them instead of logging them down.
    async fn wait_for_local_bricks(&self, v: &VolumeRecord, limit: Duration) {
        let deadline = Instant::now() + limit;
        for b in v.bricks.iter().filter(|b| is_local_host(&b.host)) {
            let addr = (self.cfg.brick_listen_host.clone(), b.port);
            while Instant::now() < deadline {
                if tokio::net::TcpStream::connect(addr.clone()).await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    pub async fn stop(&self, name: &str) -> Result<VolumeRecord> {
        let _g = self.op_lock.lock().await;
        let mut v = self.get(name)?;
        self.stop_running(name).await;
        if v.started {
            v.started = false;
            self.store.put_volume(&v, &format!("volume stop {name}"))?;
        }
        Ok(v)
    }

    async fn stop_running(&self, name: &str) {
        let graph = self.graphs.write().remove(name);
        self.smb_changed.notify_one();
        if let Some(g) = graph {
            g.fini().await;
        }
        let procs = self.procs.lock().remove(name).unwrap_or_default();
        for p in &procs {
            p.stopping.store(true, Ordering::SeqCst);
            p.stop.notify_one();
        }
        for p in &procs {
            let deadline = Instant::now() + Duration::from_secs(15);
            while !p.exited.load(Ordering::SeqCst) && Instant::now() < deadline {
                let _ = tokio::time::timeout(Duration::from_millis(200), p.done.notified()).await;
            }
        }
    }

    /// Stops every running volume's bricks and graphs without changing what is recorded, so
    /// the next start of the daemon brings them back.
    pub async fn shutdown(&self) {
        let names: Vec<String> = self
            .procs
            .lock()
            .keys()
            .cloned()
            .chain(self.graphs.read().keys().cloned())
            .collect();
        for n in names {
            self.stop_running(&n).await;
        }
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        let _g = self.op_lock.lock().await;
        let v = self.get(name)?;
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
        let restart = if key == "nfs.disable" {
            if let Some(val) = value {
                engine::options::parse_bool(val)
                    .map_err(|e| ManagerError::Invalid(format!("{key}: {e}")))?;
            }
            false
        } else if let Some(k) = key.strip_prefix("cluster.") {
            let (_, spec) = volume::cluster_option(k).ok_or_else(|| {
                ManagerError::Invalid(format!("unknown option {key}; {}", known_options()))
            })?;
            if volume::LAYOUT_OPTIONS.contains(&spec.key) {
                return Err(ManagerError::Invalid(format!(
                    "{key} follows from the volume's bricks and `replica N [arbiter 1]` at create; it cannot be set"
                )));
            }
            if let Some(val) = value {
                spec.validate(val)
                    .map_err(|e| ManagerError::Invalid(format!("{key}: {e}")))?;
                let r = v.replica_count();
                if spec.key == "quorum-count"
                    && r > 1
                    && val.trim().parse::<usize>().is_ok_and(|n| n > r)
                {
                    return Err(ManagerError::Invalid(format!(
                        "{key}: {val} is more than the {r} bricks of a replica set of {name}"
                    )));
                }
            }
            v.started
        } else {
            return Err(ManagerError::Invalid(format!(
                "unknown option {key}; {}",
                known_options()
            )));
        };
        let what = match value {
            Some(val) => {
                v.options.insert(key.to_string(), val.to_string());
                format!("volume set {name} {key} {val}")
            }
            None => {
                v.options.remove(key);
                format!("volume reset {name} {key}")
            }
        };
        self.store.put_volume(&v, &what)?;
        self.nfs_generation.fetch_add(1, Ordering::SeqCst);
        Ok((v, restart))
    }

    pub fn graph(&self, name: &str) -> Option<Arc<Graph>> {
        self.graphs.read().get(name).cloned()
    }

    pub fn volfile(&self, name: &str) -> Result<String> {
        Ok(self
            .get(name)?
            .client_volfile(self.cfg.ping_timeout, &self.cfg.brick_listen_host))
    }

    /// Starts every volume recorded as started (after a restart of the daemon).
    pub async fn start_recorded(&self) -> Result<()> {
        for v in self.store.volumes()? {
            if v.started
                && let Err(e) = self.start(&v.name).await
            {
                tracing::error!(volume = %v.name, "could not start: {e}");
            }
        }
        Ok(())
    }

    pub async fn status(&self, name: &str) -> Result<VolumeStatus> {
        let v = self.get(name)?;
        let procs = self.procs.lock().get(name).cloned().unwrap_or_default();
        let mut bricks = Vec::new();
        for (i, b) in v.bricks.iter().enumerate() {
            let local = is_local_host(&b.host);
            let p = procs.iter().find(|p| p.name == v.client_name(i));
            let host = if local {
                self.cfg.brick_listen_host.clone()
            } else {
                b.host.clone()
            };
            let online = tokio::time::timeout(
                Duration::from_secs(2),
                tokio::net::TcpStream::connect((host.as_str(), b.port)),
            )
            .await
            .is_ok_and(|r| r.is_ok());
            let pid = p.map(|p| p.pid.load(Ordering::SeqCst)).filter(|p| *p != 0);
            let cap = if local { capacity(&b.path) } else { None };
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
                online: online && (!local || pid.is_some()),
                pid,
                restarts: p.map(|p| p.restarts.load(Ordering::SeqCst)).unwrap_or(0),
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

    fn spawn_bricks(&self, v: &VolumeRecord) {
        let mut started = Vec::new();
        for (i, b) in v.bricks.iter().enumerate() {
            if !is_local_host(&b.host) {
                continue;
            }
            let p = Arc::new(BrickProc {
                name: v.client_name(i),
                path: b.path.clone(),
                pid: AtomicU32::new(0),
                restarts: AtomicU32::new(0),
                stopping: AtomicBool::new(false),
                stop: Notify::new(),
                done: Notify::new(),
                exited: AtomicBool::new(false),
            });
            let args = BrickArgs {
                brickd: self.cfg.brickd(),
                listen: format!("{}:{}", self.cfg.brick_listen_host, b.port),
                volume: v.name.clone(),
                volume_id: v.id.clone(),
                secret_file: self.secret_file(&v.name),
                log: self
                    .cfg
                    .data_dir
                    .join("logs")
                    .join(format!("{}.log", p.name)),
            };
            tokio::spawn(supervise(p.clone(), args));
            started.push(p);
        }
        self.procs.lock().insert(v.name.clone(), started);
    }
}

struct BrickArgs {
    brickd: PathBuf,
    listen: String,
    volume: String,
    volume_id: String,
    secret_file: PathBuf,
    log: PathBuf,
}

/// Keeps one brickd running: restarts it when it dies (1 s, doubling to 10 s between tries,
/// back to 1 s after a good run), stops it with SIGTERM then SIGKILL.
async fn supervise(p: Arc<BrickProc>, a: BrickArgs) {
    let mut backoff = Duration::from_secs(1);
    if let Some(dir) = a.log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    while !p.stopping.load(Ordering::SeqCst) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&a.log);
        let mut cmd = Command::new(&a.brickd);
        cmd.arg("--brick")
            .arg(&p.path)
            .arg("--listen")
            .arg(&a.listen)
            .arg("--volume-id")
            .arg(&a.volume_id)
            .arg("--brick-name")
            .arg(&p.name)
            .arg("--secret-file")
            .arg(&a.secret_file)
            .arg("--volume")
            .arg(&a.volume)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        // A brickd must not outlive a gatewayd killed with -9: the next gatewayd would find its
        // port taken. The kernel sends SIGTERM when the spawning (runtime worker) thread dies.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        match log {
            Ok(f) => cmd.stderr(f),
            Err(_) => cmd.stderr(std::process::Stdio::null()),
        };
        let began = Instant::now();
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(brick = %p.name, brickd = %a.brickd.display(), "cannot start brickd: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        p.pid.store(child.id().unwrap_or(0), Ordering::SeqCst);
        tracing::info!(brick = %p.name, pid = child.id().unwrap_or(0), listen = %a.listen, "brickd started");
        tokio::select! {
            status = child.wait() => {
                p.pid.store(0, Ordering::SeqCst);
                if p.stopping.load(Ordering::SeqCst) {
                    break;
                }
                if began.elapsed() > Duration::from_secs(30) {
                    backoff = Duration::from_secs(1);
                }
                p.restarts.fetch_add(1, Ordering::SeqCst);
                tracing::warn!(brick = %p.name, "brickd exited ({}); restarting in {backoff:?}",
                    status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            _ = p.stop.notified() => {
                if let Some(pid) = child.id() {
                    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
                }
                if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
                    let _ = child.kill().await;
                }
                p.pid.store(0, Ordering::SeqCst);
                break;
            }
        }
    }
    p.exited.store(true, Ordering::SeqCst);
    p.done.notify_waiters();
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
        let e = invalid(m.create("v", &specs(d.path(), 5), 2, 0).await);
        assert!(
            e.contains("5 bricks is not a multiple of replica count 2"),
            "{e}"
        );
        let e = invalid(m.create("v", &specs(d.path(), 4), 2, 1).await);
        assert!(e.contains("arbiter 1 needs replica 3"), "{e}");
        let e = invalid(m.create("v", &specs(d.path(), 4), 0, 0).await);
        assert!(e.contains("replica count 0"), "{e}");
        // Nothing was made by the refused creates.
        assert!(m.list().unwrap().is_empty());
        assert!(!d.path().join("bricks").exists());

        let v = m.create("v", &specs(d.path(), 4), 2, 0).await.unwrap();
        assert_eq!(
            (v.kind.as_str(), v.replica, v.arbiter),
            ("distributed-replicate", 2, 0)
        );
        let a = m.create("a", &specs(d.path(), 7)[4..], 3, 1).await.unwrap();
        assert_eq!((a.kind.as_str(), a.replica, a.arbiter), ("replicate", 3, 1));
        let p = m.create("p", &specs(d.path(), 9)[7..], 1, 0).await.unwrap();
        assert_eq!((p.kind.as_str(), p.replica), ("distribute", 1));
        let st = m.status("v").await.unwrap();
        assert_eq!(st.replica, 2);
        let sets: Vec<usize> = st.bricks.iter().map(|b| b.replica_set).collect();
        assert_eq!(sets, [0, 0, 1, 1]);
    }

    #[tokio::test]
    async fn volume_set_takes_distribute_and_replicate_options() {
        let d = tempfile::tempdir().unwrap();
        let m = manager(d.path());
        m.create("v", &specs(d.path(), 4), 2, 0).await.unwrap();
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
