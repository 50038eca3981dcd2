//! The brick supervisor: spawns the brickd of each local brick of a started volume, chooses
//! their ports, restarts them when they die and stops them in order.

use crate::config::GatewayConfig;
use crate::jobs::Progress;
use crate::tls::Material;
use crate::volume::{VolumeRecord, is_local_host};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tokio::process::Command;
use tokio::sync::Notify;

/// A port free on `host` now, and its listener: the caller holds the listeners until every
/// port of a volume is chosen, or the kernel may hand the same port out twice.
pub fn free_port(host: &str) -> std::io::Result<(u16, std::net::TcpListener)> {
    let l = std::net::TcpListener::bind((host, 0))?;
    Ok((l.local_addr()?.port(), l))
}

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

/// The brickd processes of this host, per volume.
#[derive(Default)]
pub struct Supervisor {
    procs: Mutex<HashMap<String, Vec<Arc<BrickProc>>>>,
}

/// A local brick's brickd as `volume status` shows it.
pub struct ProcState {
    /// None while it is not running.
    pub pid: Option<u32>,
    pub restarts: u32,
}

impl Supervisor {
    /// Spawns a brickd for every local brick of `v` that has none yet (all of them at a
    /// volume start; the new ones after add-brick or replace-brick) and keeps each running.
    pub fn spawn(
        &self,
        v: &VolumeRecord,
        cfg: &GatewayConfig,
        secret_file: &Path,
        auth_file: &Path,
        tls: Option<&Material>,
    ) {
        let mut started = Vec::new();
        let running: Vec<(String, String)> = self
            .procs
            .lock()
            .get(&v.name)
            .map(|ps| {
                ps.iter()
                    .map(|p| (p.name.clone(), p.path.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (i, b) in v.bricks.iter().enumerate() {
            if !is_local_host(&b.host) {
                continue;
            }
            if running
                .iter()
                .any(|(n, p)| *n == v.client_name(i) && *p == b.path)
            {
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
                brickd: cfg.brickd(),
                listen: format!("{}:{}", cfg.brick_listen_host, b.port),
                volume: v.name.clone(),
                volume_id: v.id.clone(),
                secret_file: secret_file.to_path_buf(),
                auth_file: auth_file.to_path_buf(),
                tls: tls.cloned(),
                log: cfg.data_dir.join("logs").join(format!("{}.log", p.name)),
                cache_invalidation: (v.cache_invalidation(), v.cache_invalidation_timeout()),
            };
            tokio::spawn(supervise(p.clone(), args));
            started.push(p);
        }
        self.procs
            .lock()
            .entry(v.name.clone())
            .or_default()
            .extend(started);
    }

    /// Stops the brickd of brick `name` at `path` of `volume` (after remove-brick commit or
    /// replace-brick), waiting up to 15 s for it to exit.
    pub async fn stop_brick(&self, volume: &str, name: &str, path: &str) {
        let p = {
            let mut procs = self.procs.lock();
            let Some(ps) = procs.get_mut(volume) else {
                return;
            };
            let Some(k) = ps.iter().position(|p| p.name == name && p.path == path) else {
                return;
            };
            ps.remove(k)
        };
        p.stopping.store(true, Ordering::SeqCst);
        p.stop.notify_one();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !p.exited.load(Ordering::SeqCst) && Instant::now() < deadline {
            let _ = tokio::time::timeout(Duration::from_millis(200), p.done.notified()).await;
        }
    }

    /// Why the local brickd of brick `i` is not serving, if it exited (see
    /// [`BrickProc::failure`]).
    pub fn failure(&self, v: &VolumeRecord, i: usize) -> Option<String> {
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
    pub async fn wait_listening(
        &self,
        v: &VolumeRecord,
        host: &str,
        limit: Duration,
        progress: &Progress,
    ) {
        let deadline = Instant::now() + limit;
        let local: Vec<usize> = (0..v.bricks.len())
            .filter(|i| is_local_host(&v.bricks[*i].host))
            .collect();
        let mut ready = vec![false; v.bricks.len()];
        loop {
            let mut settled = 0;
            for &i in &local {
                if !ready[i] {
                    let addr = (host.to_string(), v.bricks[i].port);
                    ready[i] = tokio::time::timeout(
                        Duration::from_millis(500),
                        tokio::net::TcpStream::connect(addr),
                    )
                    .await
                    .is_ok_and(|r| r.is_ok());
                }
                if ready[i] || self.failure(v, i).is_some() {
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

    /// Stops the local brickd processes of a volume (SIGTERM, then SIGKILL after 5 s).
    pub async fn stop(&self, name: &str, progress: &Progress) {
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

    /// The volumes that have brickd processes.
    pub fn volumes(&self) -> Vec<String> {
        self.procs.lock().keys().cloned().collect()
    }

    /// The bricks of `volume` this host runs a brickd for: (client name, path).
    pub fn running(&self, volume: &str) -> Vec<(String, String)> {
        self.procs
            .lock()
            .get(volume)
            .map(|ps| {
                ps.iter()
                    .map(|p| (p.name.clone(), p.path.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The brickd of client `name` of `volume`, if this host runs it.
    pub fn state(&self, volume: &str, name: &str) -> Option<ProcState> {
        let procs = self.procs.lock();
        let p = procs.get(volume)?.iter().find(|p| p.name == name)?;
        Some(ProcState {
            pid: Some(p.pid.load(Ordering::SeqCst)).filter(|p| *p != 0),
            restarts: p.restarts.load(Ordering::SeqCst),
        })
    }
}

struct BrickArgs {
    brickd: PathBuf,
    listen: String,
    volume: String,
    volume_id: String,
    secret_file: PathBuf,
    auth_file: PathBuf,
    tls: Option<Material>,
    log: PathBuf,
    /// `features.cache-invalidation` and its timeout (brickd's features/upcall).
    cache_invalidation: (bool, u64),
}

/// Keeps one brickd running: restarts it when it dies (1 s, doubling to 10 s between tries,
/// back to 1 s after a good run), stops it with SIGTERM then SIGKILL.
type SpawnRequest = (
    Command,
    tokio::runtime::Handle,
    tokio::sync::oneshot::Sender<std::io::Result<tokio::process::Child>>,
);

/// Spawns `cmd` from a thread that lives as long as gatewayd. PR_SET_PDEATHSIG fires when the
/// *thread* that made the child ends, not the process, and a runtime worker can end long
/// before gatewayd does (one that ran `block_in_place`, as a wait on etcd does, becomes a
/// blocking-pool thread that exits when idle): bricks and smbd would be killed under a live
/// volume.
pub async fn spawn_kept(cmd: Command) -> std::io::Result<tokio::process::Child> {
    static KEEPER: std::sync::OnceLock<Mutex<std::sync::mpsc::Sender<SpawnRequest>>> =
        std::sync::OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("child-spawner".into())
            .spawn(move || {
                for (mut cmd, rt, reply) in rx {
                    // tokio's child reaper needs the runtime's context.
                    let _g = rt.enter();
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawning the child spawner thread");
        Mutex::new(tx)
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    keeper
        .lock()
        .send((cmd, tokio::runtime::Handle::current(), tx))
        .map_err(|_| std::io::Error::other("the child spawner thread is gone"))?;
    rx.await
        .map_err(|_| std::io::Error::other("the child spawner thread is gone"))?
}

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
            .arg("--cache-invalidation")
            .arg(if a.cache_invalidation.0 { "on" } else { "off" })
            .arg("--cache-invalidation-timeout")
            .arg(a.cache_invalidation.1.to_string())
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
        // port taken. The kernel sends SIGTERM when the spawning thread dies (`spawn_kept`).
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
        let mut child = match spawn_kept(cmd).await {
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
