//! The volume manager (GlusterFS's glusterd): creates, starts, stops, imports and deletes
//! volumes, supervises the local brickd processes, and keeps a client graph per started volume.

use crate::config::GatewayConfig;
use crate::jobs::Progress;
use crate::store::{Store, StoreError};
use crate::volume::{self, BrickRecord, SpecError, VolumeRecord, VolumeView, is_local_host};
use engine::graph::{Graph, GraphError};
use engine::registry::Registry;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Weak};
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
    #[error("TLS for the brick RPC: {0}")]
    Tls(#[from] crate::tls::TlsSetupError),
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
    /// When and why brickd last exited on its own (its status and its error line).
    last_exit: Mutex<Option<(Instant, String)>>,
}

impl BrickProc {
    /// Why brickd is not serving, when that is the reason the brick is down: it is not running,
    /// or it exited a moment ago.
    fn failure(&self) -> Option<String> {
        let (at, why) = self.last_exit.lock().clone()?;
        let running = self.pid.load(Ordering::SeqCst) != 0;
        (!running || at.elapsed() < Duration::from_secs(10)).then_some(why)
    }
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
    /// True while the gateway's brick RPC connection to it answers pings: a brick that hangs is
    /// false within ping-timeout, even while its port still accepts connections.
    pub online: bool,
    /// Why it is not online: the brick RPC's error, or why its brickd exited.
    pub offline_reason: Option<String>,
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

/// A brick that is not online, and why.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OfflineBrick {
    /// VOLUME-client-N.
    pub name: String,
    /// HOST:/PATH.
    pub brick: String,
    pub reason: String,
}

/// What `volume start` did: the volume, and how many of its bricks answer.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct StartReport {
    pub volume: VolumeView,
    pub bricks_total: usize,
    pub bricks_online: usize,
    /// The bricks not online when the start finished; the volume comes up with them when
    /// they answer.
    pub offline: Vec<OfflineBrick>,
}

/// How long `volume start` waits for bricks: for brickd processes to listen, then for every
/// brick to answer the brick RPC.
const LISTEN_WAIT: Duration = Duration::from_secs(10);
const ANSWER_WAIT: Duration = Duration::from_secs(10);

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
    /// Long operations the API runs as jobs (`GET /api/v1/jobs/{id}`).
    pub jobs: crate::jobs::Jobs,
    /// Bricks going down and coming back (`GET /api/v1/events`).
    pub events: crate::health::BrickEvents,
    me: Weak<Manager>,
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
    keys.extend([
        volume::SSL_ENABLED.to_string(),
        volume::AUTH_ALLOW.to_string(),
        volume::AUTH_REJECT.to_string(),
        "nfs.disable".into(),
    ]);
    format!("known: {}", keys.join(", "))
}

/// A port free on `host` now, and its listener: the caller holds the listeners until every
/// port of a volume is chosen, or the kernel may hand the same port out twice.
fn free_port(host: &str) -> std::io::Result<(u16, std::net::TcpListener)> {
    let l = std::net::TcpListener::bind((host, 0))?;
    Ok((l.local_addr()?.port(), l))
}

fn health_online(g: &Graph, v: &VolumeRecord, i: usize) -> bool {
    crate::health::link(g, &v.client_name(i)).0
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

/// A local brick's path, before anything is made: an existing directory, or a path whose
/// parent is one (any missing parents too with `force`), with no file in the way.
fn check_brick_path(b: &BrickRecord, force: bool) -> Result<()> {
    let spec = format!("{}:{}", b.host, b.path);
    let p = Path::new(&b.path);
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(ManagerError::Brick(format!(
                "brick {spec}: {} exists and is not a directory",
                b.path
            )));
        }
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ENOTDIR) => {}
        Err(e) => return Err(ManagerError::Brick(format!("brick {spec}: {e}"))),
    }
    // The nearest ancestor that exists must be a directory.
    let mut up = p.parent();
    while let Some(a) = up {
        match std::fs::metadata(a) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(ManagerError::Brick(format!(
                    "brick {spec}: {} is a file, not a directory",
                    a.display()
                )));
            }
            Err(_) => up = a.parent(),
        }
    }
    let parent = p.parent().unwrap_or(Path::new("/"));
    if !force && !parent.is_dir() {
        return Err(ManagerError::Brick(format!(
            "brick {spec}: its parent directory {} does not exist; create it first (or add `force` to create it with its parents)",
            parent.display()
        )));
    }
    Ok(())
}

/// A remote brick's host must resolve now, or `volume start` would wait for a brick nobody
/// can reach.
async fn check_host_resolves(b: &BrickRecord) -> Result<()> {
    let spec = format!("{}:{}", b.host, b.path);
    let looked = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::lookup_host((b.host.as_str(), b.port)),
    )
    .await
    .map(|r| r.map(|addrs| addrs.count()));
    match looked {
        Ok(Ok(n)) if n > 0 => Ok(()),
        Ok(Ok(_)) => Err(ManagerError::Brick(format!(
            "brick {spec}: host {} resolves to no address",
            b.host
        ))),
        Ok(Err(e)) => Err(ManagerError::Brick(format!(
            "brick {spec}: host {} cannot be resolved ({e}); give a host name this gateway resolves (DNS or /etc/hosts) or an address",
            b.host
        ))),
        Err(_) => Err(ManagerError::Brick(format!(
            "brick {spec}: resolving host {} timed out",
            b.host
        ))),
    }
}

/// The error brickd ended with, from what its run wrote to its log after byte `from`:
/// anyhow's `Error: …` line and the first cause below it.
fn brickd_error(log: &Path, from: u64) -> Option<String> {
    let text = std::fs::read(log).ok()?;
    let from = (from as usize)
        .min(text.len())
        .max(text.len().saturating_sub(64 * 1024));
    let tail = String::from_utf8_lossy(&text[from..]).into_owned();
    let lines: Vec<&str> = tail.lines().collect();
    let at = lines.iter().rposition(|l| l.starts_with("Error: "))?;
    let mut out = lines[at].trim_start_matches("Error: ").trim().to_string();
    let mut rest = lines[at + 1..].iter().map(|l| l.trim());
    if rest.by_ref().any(|l| l == "Caused by:")
        && let Some(cause) = rest.find(|l| !l.is_empty())
    {
        out.push_str(": ");
        out.push_str(
            cause
                .trim_start_matches(|c: char| c.is_ascii_digit() || c == ':')
                .trim(),
        );
    }
    Some(out)
}

impl Manager {
    pub fn new(cfg: GatewayConfig, store: Store) -> Arc<Manager> {
        Arc::new_cyclic(|me| Manager {
            cfg,
            store,
            procs: Mutex::new(HashMap::new()),
            graphs: RwLock::new(HashMap::new()),
            op_lock: tokio::sync::Mutex::new(()),
            nfs_generation: std::sync::atomic::AtomicU64::new(0),
            smb: Default::default(),
            smb_changed: Notify::new(),
            sessions: Default::default(),
            jobs: Default::default(),
            events: Default::default(),
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

    fn secret_file(&self, name: &str) -> PathBuf {
        self.vol_dir(name).join("secret")
    }

    /// The bricks' auth file (`auth.allow`/`auth.reject`), which every brickd of this host
    /// watches.
    fn auth_file(&self, name: &str) -> PathBuf {
        self.vol_dir(name).join("auth")
    }

    fn write_auth(&self, v: &VolumeRecord) -> Result<()> {
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
    fn brick_tls(&self, v: &VolumeRecord) -> Result<Option<crate::tls::Material>> {
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
        let bricks = self.brick_records(specs)?;
        self.check_not_in_use(&bricks)?;
        // Everything is checked before anything is made: a refused create leaves no trace.
        for b in &bricks {
            if is_local_host(&b.host) {
                check_brick_path(b, force)?;
            } else {
                check_host_resolves(b).await?;
            }
        }
        for b in bricks.iter().filter(|b| is_local_host(&b.host)) {
            let p = Path::new(&b.path);
            if let Some(id) = read_volume_id(p).ok().flatten().filter(|_| p.is_dir()) {
                return Err(ManagerError::Brick(format!(
                    "brick {}:{} is already part of volume {id}; use `volume import` to adopt it",
                    b.host, b.path
                )));
            }
        }
        for b in bricks.iter().filter(|b| is_local_host(&b.host)) {
            let p = Path::new(&b.path);
            let made = if force {
                std::fs::create_dir_all(p)
            } else {
                match std::fs::create_dir(p) {
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                    r => r,
                }
            };
            made.map_err(|e| {
                ManagerError::Brick(format!(
                    "brick {}:{}: cannot create its directory: {e}",
                    b.host, b.path
                ))
            })?;
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
        let mut v = self.get(name)?;
        if let Some(g) = self.graph(name) {
            return Ok(self.report(&v, &g));
        }
        self.write_secret(&v)?;
        self.write_auth(&v)?;
        let tls = self.brick_tls(&v)?;
        self.spawn_bricks(&v, tls.as_ref());
        self.wait_for_local_bricks(&v, LISTEN_WAIT, progress).await;
        let text = v.client_volfile_with(
            self.cfg.ping_timeout,
            &self.cfg.brick_listen_host,
            tls.as_ref(),
        );
        let graph = Graph::from_text(&text, &Registry::client_side())
            .map_err(|e| ManagerError::Graph(name.into(), e))?;
        if let Err(e) = graph.init().await {
            graph.fini().await;
            self.stop_bricks(name, &Progress::none()).await;
            return Err(ManagerError::Graph(name.into(), e));
        }
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
                .all(|i| health_online(&graph, &v, i) || self.brickd_failure(&v, i).is_some());
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
        if !v.started {
            v.started = true;
            self.store.put_volume(&v, &format!("volume start {name}"))?;
        }
        self.smb_changed.notify_one();
        let seen: Vec<bool> = (0..total).map(|i| health_online(&graph, &v, i)).collect();
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
        crate::health::watch(self.me.clone(), v.clone(), Arc::downgrade(&graph), seen);
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
    fn report(&self, v: &VolumeRecord, g: &Graph) -> StartReport {
        let mut offline = Vec::new();
        for i in 0..v.bricks.len() {
            let (on, why) = crate::health::link(g, &v.client_name(i));
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
        if let Some(f) = self.brickd_failure(v, i) {
            return format!("brickd exited: {f}");
        }
        rpc.unwrap_or_else(|| "not connected".into())
    }

    /// Why the local brickd of brick `i` is not serving, if it exited (see
    /// [`BrickProc::failure`]).
    fn brickd_failure(&self, v: &VolumeRecord, i: usize) -> Option<String> {
        if !is_local_host(&v.bricks[i].host) {
            return None;
        }
        let name = v.client_name(i);
        let p = self
            .procs
            .lock()
            .get(&v.name)
            .and_then(|ps| ps.iter().find(|p| p.name == name).cloned())?;
        p.failure()
    }

    /// Gives freshly spawned bricks a moment to listen, so the graph's first connection
    /// attempts find them instead of logging them down; a brickd that exits is not waited for.
    async fn wait_for_local_bricks(&self, v: &VolumeRecord, limit: Duration, progress: &Progress) {
        let deadline = Instant::now() + limit;
        let local: Vec<usize> = (0..v.bricks.len())
            .filter(|i| is_local_host(&v.bricks[*i].host))
            .collect();
        let mut ready = vec![false; v.bricks.len()];
        loop {
            let mut settled = 0;
            for &i in &local {
                if !ready[i] {
                    let addr = (self.cfg.brick_listen_host.clone(), v.bricks[i].port);
                    ready[i] = tokio::time::timeout(
                        Duration::from_millis(500),
                        tokio::net::TcpStream::connect(addr),
                    )
                    .await
                    .is_ok_and(|r| r.is_ok());
                }
                if ready[i] || self.brickd_failure(v, i).is_some() {
                    settled += 1;
                }
            }
            let listening = ready.iter().filter(|r| **r).count();
            progress.set(
                listening as u64,
                local.len() as u64,
                format!(
                    "volume start {}: {listening}/{} local bricks listening",
                    v.name,
                    local.len()
                ),
            );
            if settled == local.len() || Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(&self, name: &str, progress: &Progress) -> Result<VolumeRecord> {
        let _g = self.op_lock.lock().await;
        let mut v = self.get(name)?;
        self.stop_running(name, progress).await;
        if v.started {
            v.started = false;
            self.store.put_volume(&v, &format!("volume stop {name}"))?;
        }
        Ok(v)
    }

    async fn stop_running(&self, name: &str, progress: &Progress) {
        let graph = self.graphs.write().remove(name);
        self.smb_changed.notify_one();
        if let Some(g) = graph {
            progress.set(
                0,
                0,
                format!("volume stop {name}: closing the client graph"),
            );
            g.fini().await;
        }
        self.stop_bricks(name, progress).await;
    }

    /// Stops the local brickd processes of a volume (SIGTERM, then SIGKILL after 5 s).
    async fn stop_bricks(&self, name: &str, progress: &Progress) {
        let procs = self.procs.lock().remove(name).unwrap_or_default();
        for p in &procs {
            p.stopping.store(true, Ordering::SeqCst);
            p.stop.notify_one();
        }
        let n = procs.len() as u64;
        for (k, p) in procs.iter().enumerate() {
            progress.set(
                k as u64,
                n,
                format!("volume stop {name}: {k}/{n} bricks stopped"),
            );
            let deadline = Instant::now() + Duration::from_secs(15);
            while !p.exited.load(Ordering::SeqCst) && Instant::now() < deadline {
                let _ = tokio::time::timeout(Duration::from_millis(200), p.done.notified()).await;
            }
        }
        progress.set(n, n, format!("volume stop {name}: {n}/{n} bricks stopped"));
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
            self.stop_running(&n, &Progress::none()).await;
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
        // GlusterFS's per-end names of the TLS switch are kept under the one name.
        let key = if volume::SSL_ALIASES.contains(&key) {
            volume::SSL_ENABLED
        } else {
            key
        };
        let restart = if key == volume::SSL_ENABLED {
            if let Some(val) = value {
                engine::options::parse_bool(val)
                    .map_err(|e| ManagerError::Invalid(format!("{key}: {e}")))?;
            }
            // Bricks and clients take TLS when the volume next starts.
            v.started
        } else if key == volume::AUTH_ALLOW || key == volume::AUTH_REJECT {
            if let Some(val) = value {
                let list = brickd::protocol::auth::AddrList::parse(val)
                    .map_err(|e| ManagerError::Invalid(format!("{key}: {e}")))?;
                if list.is_empty() {
                    return Err(ManagerError::Invalid(format!(
                        "{key}: give at least one address (volume reset {name} {key} removes it)"
                    )));
                }
            }
            // The bricks watch their auth file: it applies at once.
            false
        } else if key == "nfs.disable" {
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
        Ok(v.client_volfile_with(
            self.cfg.ping_timeout,
            &self.cfg.brick_listen_host,
            tls.as_ref(),
        ))
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
        let procs = self.procs.lock().get(name).cloned().unwrap_or_default();
        let graph = self.graph(name);
        let mut bricks = Vec::new();
        for (i, b) in v.bricks.iter().enumerate() {
            let local = is_local_host(&b.host);
            let p = procs.iter().find(|p| p.name == v.client_name(i));
            let (online, why) = match &graph {
                Some(g) => crate::health::link(g, &v.client_name(i)),
                None => (false, Some(format!("volume {name} is not started"))),
            };
            let offline_reason = (!online).then(|| match &graph {
                Some(_) => self.why_down(&v, i, why),
                None => why.unwrap_or_default(),
            });
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
                online,
                offline_reason,
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

    fn spawn_bricks(&self, v: &VolumeRecord, tls: Option<&crate::tls::Material>) {
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
                last_exit: Mutex::new(None),
            });
            let args = BrickArgs {
                brickd: self.cfg.brickd(),
                listen: format!("{}:{}", self.cfg.brick_listen_host, b.port),
                volume: v.name.clone(),
                volume_id: v.id.clone(),
                secret_file: self.secret_file(&v.name),
                auth_file: self.auth_file(&v.name),
                tls: tls.cloned(),
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
    auth_file: PathBuf,
    tls: Option<crate::tls::Material>,
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
            .arg("--auth-file")
            .arg(&a.auth_file)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        if let Some(t) = &a.tls {
            cmd.arg("--tls-cert")
                .arg(&t.cert)
                .arg("--tls-key")
                .arg(&t.key)
                .arg("--tls-ca")
                .arg(&t.ca);
        }
        // A brickd must not outlive a gatewayd killed with -9: the next gatewayd would find its
        // port taken. The kernel sends SIGTERM when the spawning (runtime worker) thread dies.
        // Its own process group: a Ctrl-C at gatewayd's terminal reaches gatewayd alone, which
        // then stops the bricks in order instead of finding them dead.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                libc::setpgid(0, 0);
                Ok(())
            });
        }
        match log {
            Ok(f) => cmd.stderr(f),
            Err(_) => cmd.stderr(std::process::Stdio::null()),
        };
        let began = Instant::now();
        let log_from = std::fs::metadata(&a.log).map(|m| m.len()).unwrap_or(0);
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
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                let why = match brickd_error(&a.log, log_from) {
                    Some(e) => format!("{e} [{status}]"),
                    None => status,
                };
                tracing::warn!(brick = %p.name, log = %a.log.display(), "brickd exited ({why}); restarting in {backoff:?}");
                *p.last_exit.lock() = Some((Instant::now(), why));
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
