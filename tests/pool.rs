//! A pool of gatewayd nodes sharing their cluster state through etcd, on one machine: a
//! throwaway single-member [`Etcd`], [`Node`]s (one `gatewayd serve` each, on its own IP and
//! data dir, optionally inside a network namespace) and a [`Partition`] (a network namespace
//! joined to the host by a veth pair, whose link can be cut and restored).
//!
//! Hosts: 127.0.0.1, 127.0.0.2, 127.0.0.3 … need no setup (all of 127/8 is loopback). A node
//! that must be cut off lives in the partition's namespace at [`Partition::NS_IP`]; etcd and the
//! other nodes then use the host-side addresses [`Partition::HOST_IPS`] so that the namespace
//! can reach them.
//!
//! Every guard cleans up in `Drop` (processes killed, mounts detached, the namespace deleted),
//! so a failing test leaves nothing behind.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::{
    NativeMount, bin, get_xattr, is_mounted, lazy_unmount, output_text, pid_alive, pids_matching,
    signal, spawn_logged, tail, temp_dir, terminate_child, terminate_pid, wait_for,
    wait_gatewayd_ready,
};

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------

/// A TCP port that was free a moment ago on `ip`.
pub fn free_port_on(ip: &str) -> Result<u16> {
    let l = TcpListener::bind((ip, 0)).with_context(|| format!("binding {ip}:0"))?;
    Ok(l.local_addr()?.port())
}

/// Seconds since the epoch, as the Python scripts stamp their events.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Run a command, capturing its output, and kill it when it has not finished after `limit`:
/// a client that hangs fails the test instead of hanging it.
pub fn run_timeout(cmd: &mut Command, limit: Duration) -> Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {cmd:?}"))?;
    let drain = |r: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut b = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut b);
            }
            let _ = tx.send(b);
        });
        rx
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break Some(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(25));
    };
    let grace = Duration::from_secs(5);
    let stdout = out.recv_timeout(grace).unwrap_or_default();
    let stderr = err.recv_timeout(grace).unwrap_or_default();
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => bail!(
            "{cmd:?} did not finish within {limit:?} (killed):\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

/// [`run_timeout`], requiring exit status 0; returns stdout.
pub fn run_timeout_ok(cmd: &mut Command, limit: Duration) -> Result<String> {
    let out = run_timeout(cmd, limit)?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({}):\n{}", out.status, output_text(&out));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Poll `f` every `every` (for checks that run a process, such as gwctl) until it returns
/// `Some`, or fail after `timeout` naming `what`.
pub fn wait_every<T>(
    timeout: Duration,
    every: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(every);
    }
}

/// The tails of every node's logs, for a failure message.
pub fn logs_of(nodes: &[&Node]) -> String {
    nodes
        .iter()
        .map(|n| n.logs())
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------------
// etcd
// ---------------------------------------------------------------------------------------------

/// A single-member etcd (`/usr/bin/etcd`, 3.4) on `IP`:free ports with its own data dir. Stop
/// and start it again on the same ports and data; Drop kills it.
pub struct Etcd {
    pub ip: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    keep: bool,
    // Last: removed once the process is gone.
    root: Option<TempDir>,
}

impl Etcd {
    /// etcd on 127.0.0.1.
    pub fn start() -> Result<Etcd> {
        Etcd::start_on("127.0.0.1")
    }

    /// etcd listening on `ip` only (client and peer ports free a moment ago).
    pub fn start_on(ip: &str) -> Result<Etcd> {
        let root = temp_dir("etcd");
        let client_port = free_port_on(ip)?;
        let mut peer_port = free_port_on(ip)?;
        while peer_port == client_port {
            peer_port = free_port_on(ip)?;
        }
        let mut e = Etcd {
            ip: ip.to_string(),
            client_port,
            peer_port,
            data: root.path().join("data"),
            log: root.path().join("etcd.log"),
            child: None,
            keep: false,
            root: Some(root),
        };
        e.spawn()?;
        Ok(e)
    }

    /// `http://IP:PORT`, the client URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.ip, self.client_port)
    }

    /// The client URLs, as `etcd_endpoints` takes them.
    pub fn endpoints(&self) -> Vec<String> {
        vec![self.endpoint()]
    }

    fn spawn(&mut self) -> Result<()> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let client = self.endpoint();
        let peer = format!("http://{}:{}", self.ip, self.peer_port);
        let child = Command::new("/usr/bin/etcd")
            .arg("--name")
            .arg("e2e")
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--listen-client-urls")
            .arg(&client)
            .arg("--advertise-client-urls")
            .arg(&client)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("e2e={peer}"))
            .arg("--initial-cluster-state")
            .arg("new")
            // No metrics or pprof listeners of its own: only the two ports chosen above.
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning /usr/bin/etcd (apt-get install etcd-server)")?;
        self.child = Some(child);
        let r = wait_for(Duration::from_secs(60), "etcd to be healthy", || {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                return Some(Err(anyhow!("etcd exited early with {st}")));
            }
            self.is_healthy().then_some(Ok(()))
        });
        if let Err(e) = r.and_then(|r| r) {
            if let Some(c) = self.child.as_mut() {
                terminate_child(c, Duration::from_secs(5));
            }
            self.child = None;
            bail!("{e}\n{}", self.log_tail());
        }
        Ok(())
    }

    /// `GET /health` answers `{"health":"true"}` (the member is up and has a leader).
    pub fn is_healthy(&self) -> bool {
        let Ok(addr) = format!("{}:{}", self.ip, self.client_port).parse::<SocketAddr>() else {
            return false;
        };
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
        let req = format!(
            "GET /health HTTP/1.0\r\nHost: {}:{}\r\n\r\n",
            self.ip, self.client_port
        );
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.starts_with("HTTP/1.") && body.contains("200") && body.contains(r#""health":"true""#)
    }

    /// `ETCDCTL_API=3 etcdctl --endpoints URL ARGS…` (30 s at most).
    pub fn etcdctl(&self, args: &[&str]) -> Result<Output> {
        run_timeout(
            Command::new("etcdctl")
                .env("ETCDCTL_API", "3")
                .arg("--endpoints")
                .arg(self.endpoint())
                .args(args),
            Duration::from_secs(30),
        )
    }

    /// Stop etcd: SIGTERM, then wait (SIGKILL after 20 s). Its ports close with it.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            terminate_child(&mut c, Duration::from_secs(20));
        }
        let addr: SocketAddr = format!("{}:{}", self.ip, self.client_port).parse()?;
        wait_for(
            Duration::from_secs(10),
            "etcd's client port to close",
            || {
                TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                    .is_err()
                    .then_some(())
            },
        )
    }

    /// Start etcd again on the same ports and data dir, and wait until it is healthy.
    pub fn start_again(&mut self) -> Result<()> {
        ensure!(self.child.is_none(), "etcd is already running");
        self.spawn()
    }

    /// Whether the etcd process runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// Keep the data dir and log when dropped if `E2E_KEEP` is set (for a test that failed
    /// by returning an error rather than by a panic).
    pub fn keep_on_drop(&mut self) {
        self.keep = true;
    }

    pub fn log_tail(&self) -> String {
        format!(
            "--- etcd log ({}) ---\n{}",
            self.log.display(),
            tail(&self.log, 30)
        )
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if (self.keep || thread::panicking())
            && std::env::var_os("E2E_KEEP").is_some()
            && let Some(root) = self.root.take()
        {
            eprintln!("keeping {}", root.keep().display());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Nodes
// ---------------------------------------------------------------------------------------------

/// How to start a [`Node`].
#[derive(Clone, Debug)]
pub struct NodeOpts {
    /// The node's name (`node_name`, the HOST of its brick specs) and the address every one of
    /// its listeners (API, S3, NFS, SMB, bricks) binds.
    pub ip: String,
    /// `etcd_endpoints`; empty: a single-node gateway (RocksDB).
    pub etcd: Vec<String>,
    /// Run it as `ip netns exec NS gatewayd …`.
    pub netns: Option<String>,
    /// More lines for gateway.toml.
    pub extra_toml: String,
    /// How long to wait for "gatewayd: ready".
    pub ready_timeout: Duration,
}

impl NodeOpts {
    pub fn new(ip: &str, etcd: &[String]) -> NodeOpts {
        NodeOpts {
            ip: ip.to_string(),
            etcd: etcd.to_vec(),
            netns: None,
            extra_toml: String::new(),
            ready_timeout: Duration::from_secs(120),
        }
    }
}

/// A TOML basic string (JSON's escapes are TOML's).
fn toml_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// One `gatewayd serve --config ROOT/data/gateway.toml` of a pool, with `node_name` = its IP and
/// every listener on that IP (port 0: DATA/api.url, s3.url, nfs.addr and smb.addr say which).
/// Its bricks go under ROOT/bricks ([`Node::brick`]). Drop stops it, kills what it left
/// (brickd, smbd) and detaches the mounts made with [`Node::mount`].
pub struct Node {
    /// node_name, also the address it listens on.
    pub name: String,
    pub data: PathBuf,
    /// Where [`Node::brick`] puts this node's bricks.
    pub bricks: PathBuf,
    pub config: PathBuf,
    pub api_url: String,
    pub token: String,
    pub netns: Option<String>,
    ready_timeout: Duration,
    child: Option<Child>,
    stdout_log: PathBuf,
    stderr_log: PathBuf,
    mounts: Mutex<Vec<PathBuf>>,
    keep: bool,
    // Last: dropped after the processes are gone and the mounts are detached.
    root: Option<TempDir>,
}

impl Node {
    /// A node on `ip` in the pool of `etcd`.
    pub fn on(ip: &str, etcd: &Etcd) -> Result<Node> {
        Node::start(NodeOpts::new(ip, &etcd.endpoints()))
    }

    pub fn start(opts: NodeOpts) -> Result<Node> {
        let root = temp_dir(&format!("node-{}", opts.ip));
        let data = root.path().join("data");
        let bricks = root.path().join("bricks");
        fs::create_dir_all(&data)?;
        fs::create_dir_all(&bricks)?;
        let ip = &opts.ip;
        let endpoints: Vec<String> = opts.etcd.iter().map(|e| toml_str(e)).collect();
        let mut toml = format!(
            "data_dir = {data}\nnode_name = {name}\napi_listen = {l}\ns3_listen = {l}\n\
             nfs_listen = {l}\nnfs_rpcbind = false\nsmb_listen = {l}\n\
             brick_listen_host = {name}\ns3_volume = \"vol\"\nping_timeout = 5\n",
            data = toml_str(&data.to_string_lossy()),
            name = toml_str(ip),
            l = toml_str(&format!("{ip}:0")),
        );
        if !opts.etcd.is_empty() {
            toml += &format!("etcd_endpoints = [{}]\n", endpoints.join(", "));
        }
        toml += &opts.extra_toml;
        let config = data.join("gateway.toml");
        fs::write(&config, toml)?;
        let mut n = Node {
            name: ip.clone(),
            data,
            bricks,
            config,
            api_url: String::new(),
            token: String::new(),
            netns: opts.netns.clone(),
            ready_timeout: opts.ready_timeout,
            child: None,
            stdout_log: root.path().join("gatewayd.stdout"),
            stderr_log: root.path().join("gatewayd.stderr"),
            mounts: Mutex::new(Vec::new()),
            keep: false,
            root: Some(root),
        };
        n.spawn()?;
        Ok(n)
    }

    /// The temp dir holding data/, bricks/ and the logs.
    pub fn root(&self) -> &Path {
        self.root.as_ref().expect("root").path()
    }

    fn spawn(&mut self) -> Result<()> {
        // What a previous run announced is not this run's.
        for f in ["api.url", "s3.url", "nfs.addr", "smb.addr"] {
            let _ = fs::remove_file(self.data.join(f));
        }
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(bin("gatewayd"));
                c
            }
            None => Command::new(bin("gatewayd")),
        };
        cmd.arg("serve").arg("--config").arg(&self.config);
        let (child, offset) = spawn_logged(&mut cmd, &self.stdout_log, &self.stderr_log)
            .with_context(|| format!("spawning gatewayd of node {}", self.name))?;
        let child = self.child.insert(child);
        let api_file = self.data.join("api.url");
        let what = format!("gatewayd of node {}", self.name);
        let ready = wait_gatewayd_ready(
            child,
            &self.stdout_log,
            offset,
            &api_file,
            self.ready_timeout,
            &what,
        );
        if let Err(e) = ready {
            bail!("{e}\n{}", self.logs());
        }
        self.api_url = fs::read_to_string(&api_file)?.trim().to_string();
        self.token = fs::read_to_string(self.data.join("admin.token"))
            .with_context(|| format!("node {}: DATA/admin.token", self.name))?
            .trim()
            .to_string();
        Ok(())
    }

    /// gatewayd's pid (the pid of `ip netns exec`, which execs gatewayd, is gatewayd's).
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// Whether gatewayd runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// `HOST:/PATH` of a brick `name` of this node (ROOT/bricks/NAME).
    pub fn brick(&self, name: &str) -> String {
        format!("{}:{}", self.name, self.brick_dir(name).display())
    }

    pub fn brick_dir(&self, name: &str) -> PathBuf {
        self.bricks.join(name)
    }

    fn read_addr(&self, file: &str) -> Result<SocketAddr> {
        let p = self.data.join(file);
        let a = fs::read_to_string(&p)
            .with_context(|| format!("node {}: reading {}", self.name, p.display()))?;
        a.trim()
            .parse()
            .with_context(|| format!("node {}: {file} holds {a:?}", self.name))
    }

    /// The S3 endpoint (DATA/s3.url).
    pub fn s3_url(&self) -> Result<String> {
        let p = self.data.join("s3.url");
        Ok(fs::read_to_string(&p)
            .with_context(|| format!("node {}: reading {}", self.name, p.display()))?
            .trim()
            .to_string())
    }

    /// The NFS (and MOUNT) address (DATA/nfs.addr).
    pub fn nfs_addr(&self) -> Result<SocketAddr> {
        self.read_addr("nfs.addr")
    }

    pub fn nfs_port(&self) -> Result<u16> {
        Ok(self.nfs_addr()?.port())
    }

    /// `nfs://IP/vol/PATH?version=3&nfsport=P&mountport=P`, as libnfs's tools take it.
    pub fn nfs_url(&self, path: &str) -> Result<String> {
        let a = self.nfs_addr()?;
        Ok(format!(
            "nfs://{}/vol/{}?version=3&nfsport={p}&mountport={p}",
            a.ip(),
            path.trim_start_matches('/'),
            p = a.port()
        ))
    }

    /// The address smbd serves shares on (DATA/smb.addr).
    pub fn smb_addr(&self) -> Result<SocketAddr> {
        self.read_addr("smb.addr")
    }

    /// `gwctl --api URL --token T --data D ARGS…`, killed after 3 minutes.
    pub fn gwctl(&self, args: &[&str]) -> Result<Output> {
        self.gwctl_within(args, Duration::from_secs(180))
    }

    /// [`Node::gwctl`] with a time limit of its own.
    pub fn gwctl_within(&self, args: &[&str], limit: Duration) -> Result<Output> {
        run_timeout(
            Command::new(bin("gwctl"))
                .arg("--api")
                .arg(&self.api_url)
                .arg("--token")
                .arg(&self.token)
                .arg("--data")
                .arg(&self.data)
                .args(args),
            limit,
        )
    }

    /// gwctl, requiring success; returns stdout.
    pub fn gwctl_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.gwctl(args)?;
        if !out.status.success() {
            bail!(
                "gwctl {} on node {} failed ({}):\nstdout: {}\nstderr: {}",
                args.join(" "),
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// gwctl ARGS (which end in `--json`), parsed.
    pub fn gwctl_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let out = self.gwctl_ok(args)?;
        serde_json::from_str(&out).with_context(|| {
            format!(
                "gwctl {} on node {} printed no JSON: {out:?}",
                args.join(" "),
                self.name
            )
        })
    }

    /// `gwctl pool list --json`.
    pub fn pool(&self) -> Result<serde_json::Value> {
        self.gwctl_json(&["pool", "list", "--json"])
    }

    /// NAME → STATE of every node in this node's `pool list`.
    pub fn pool_states(&self) -> Result<std::collections::BTreeMap<String, String>> {
        let v = self.pool()?;
        let nodes = v["nodes"]
            .as_array()
            .with_context(|| format!("pool list --json on node {} has no nodes: {v}", self.name))?;
        Ok(nodes
            .iter()
            .map(|n| {
                (
                    n["name"].as_str().unwrap_or_default().to_string(),
                    n["state"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }

    /// A new admin S3 key (`gwctl s3 key create NAME --admin --json`): (access, secret).
    pub fn s3_key(&self, name: &str) -> Result<(String, String)> {
        let v = self.gwctl_json(&["s3", "key", "create", name, "--admin", "--json"])?;
        let get = |k: &str| {
            v[k].as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("no {k} in {v}"))
        };
        Ok((get("access_key")?, get("secret_key")?))
    }

    /// A native client of this node: `gatewayd mount --server API --token T --data D VOLUME
    /// DIR` in the foreground, on the host (outside any namespace of the node). The mount is
    /// also detached when the node is dropped.
    pub fn mount(&self, volume: &str, dir: &Path) -> Result<NativeMount> {
        fs::create_dir_all(dir)?;
        let n = self.mounts.lock().map(|m| m.len()).unwrap_or(0);
        let log = self.root().join(format!("mount-{volume}-{n}.log"));
        if let Ok(mut m) = self.mounts.lock() {
            m.push(dir.to_path_buf());
        }
        NativeMount::with_api(&self.api_url, &self.token, &self.data, volume, dir, &log)
            .with_context(|| format!("mounting {volume} from node {}", self.name))
    }

    /// brickd processes serving a brick under ROOT/bricks or reading this node's data dir.
    pub fn brickd_pids(&self) -> Vec<i32> {
        let bricks = self.bricks.to_string_lossy().into_owned();
        let data = self.data.to_string_lossy().into_owned();
        let under = |p: &str| p.starts_with(&bricks) || p.starts_with(&data);
        pids_matching(|argv| {
            argv.first().is_some_and(|a| a.ends_with("brickd"))
                && (argv.windows(2).any(|w| w[0] == "--brick" && under(&w[1]))
                    || argv
                        .iter()
                        .any(|a| a.strip_prefix("--brick=").is_some_and(under))
                    || argv.iter().any(|a| a.contains(&data)))
        })
    }

    /// smbd processes run for this node (their configuration is under its data dir).
    fn smbd_pids(&self) -> Vec<i32> {
        let data = self.data.to_string_lossy().into_owned();
        pids_matching(|argv| {
            argv.first().is_some_and(|a| a.ends_with("smbd"))
                && argv.iter().any(|a| a.contains(&data))
        })
    }

    /// `kill -9` of the node: gatewayd (reaped), then every brickd and smbd of it (they would
    /// go by PDEATHSIG; SIGKILL makes sure). Its native clients' mounts stay.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let pids: Vec<i32> = self
            .brickd_pids()
            .into_iter()
            .chain(self.smbd_pids())
            .collect();
        for &p in &pids {
            signal(p, libc::SIGKILL);
        }
        let _ = wait_for(
            Duration::from_secs(10),
            "the node's processes to die",
            || pids.iter().all(|&p| !pid_alive(p)).then_some(()),
        );
    }

    /// Start gatewayd again on the same configuration and data, and wait until it is ready.
    pub fn start_again(&mut self) -> Result<()> {
        ensure!(
            !self.is_running(),
            "node {}: gatewayd is already running",
            self.name
        );
        self.spawn()
    }

    /// Stop the node: gatewayd (SIGTERM; SIGKILL after 30 s), then what it left behind.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate_child(&mut c, Duration::from_secs(30));
        }
        for p in self.brickd_pids().into_iter().chain(self.smbd_pids()) {
            terminate_pid(p, Duration::from_secs(5));
        }
        // The mounts gatewayd makes for Samba, when it could not remove them itself.
        if let Ok(rd) = fs::read_dir(self.data.join("smb").join("mnt")) {
            for e in rd.flatten() {
                if is_mounted(&e.path()) {
                    lazy_unmount(&e.path());
                }
            }
        }
    }

    /// The tails of gatewayd's stdout and stderr.
    pub fn logs(&self) -> String {
        format!(
            "--- node {} gatewayd stdout ({}) ---\n{}\n--- node {} gatewayd stderr ({}) ---\n{}",
            self.name,
            self.stdout_log.display(),
            tail(&self.stdout_log, 20),
            self.name,
            self.stderr_log.display(),
            tail(&self.stderr_log, 60)
        )
    }

    /// All of gatewayd's stderr (its log) so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// Keep the node's temp dir (data, bricks, logs) when dropped if `E2E_KEEP` is set (for a
    /// test that failed by returning an error rather than by a panic).
    pub fn keep_on_drop(&mut self) {
        self.keep = true;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let failed = thread::panicking();
        if failed {
            eprintln!("{}", self.logs());
        }
        if let Ok(m) = self.mounts.lock() {
            for d in m.iter() {
                lazy_unmount(d);
            }
        }
        self.stop();
        if (failed || self.keep)
            && std::env::var_os("E2E_KEEP").is_some()
            && let Some(root) = self.root.take()
        {
            eprintln!("keeping {}", root.keep().display());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Brick copies
// ---------------------------------------------------------------------------------------------

/// Every regular file of a brick, relative path → (sha256, gfid hex): the brick's private
/// top-level entries (`.glusterfs`, S3's `.s3-staging`) and S3's temporaries (`*.s3tmp-*`)
/// left out.
pub fn brick_files(brick: &Path) -> Result<std::collections::BTreeMap<PathBuf, (String, String)>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = brick.join(&rel);
        let rd = fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
        for e in rd {
            let e = e?;
            let name = e.file_name();
            let n = name.to_string_lossy();
            if rel.as_os_str().is_empty()
                && (n == ".glusterfs"
                    || n == ".s3-staging"
                    || n.starts_with(".glusterfs-anonymous-inode")
                    || n == ".trashcan")
            {
                continue;
            }
            if n.contains(".s3tmp-") {
                continue;
            }
            let r = rel.join(&name);
            let md = fs::symlink_metadata(e.path())?;
            if md.is_dir() {
                stack.push(r);
            } else if md.is_file() {
                let mut h = Sha256::new();
                h.update(fs::read(e.path())?);
                let gfid = get_xattr(&e.path(), "trusted.gfid")
                    .map(hex::encode)
                    .unwrap_or_else(|| "none".into());
                out.insert(r, (hex::encode(h.finalize()), gfid));
            }
        }
    }
    Ok(out)
}

/// The two copies of a replica pair hold the same regular files (by relative path), with the
/// same contents (sha256) and gfid. Returns how many files each holds.
pub fn compare_copies(a: &Path, b: &Path) -> Result<usize> {
    let fa = brick_files(a)?;
    let fb = brick_files(b)?;
    let mut problems = Vec::new();
    for (p, (sa, ga)) in &fa {
        match fb.get(p) {
            None => problems.push(format!("{}: only on {}", p.display(), a.display())),
            Some((sb, gb)) => {
                if sa != sb {
                    problems.push(format!("{}: contents differ", p.display()));
                }
                if ga != gb {
                    problems.push(format!("{}: gfid {ga} vs {gb}", p.display()));
                }
            }
        }
    }
    for p in fb.keys().filter(|p| !fa.contains_key(*p)) {
        problems.push(format!("{}: only on {}", p.display(), b.display()));
    }
    if problems.is_empty() {
        Ok(fa.len())
    } else {
        let n = problems.len();
        problems.truncate(30);
        bail!(
            "the copies {} and {} differ ({n} files):\n  {}",
            a.display(),
            b.display(),
            problems.join("\n  ")
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Network partition
// ---------------------------------------------------------------------------------------------

/// A network namespace joined to the host by a veth pair: the host side holds
/// [`Partition::HOST_IPS`] (10.213.0.1 and .2, for etcd and the host's nodes), the namespace
/// holds [`Partition::NS_IP`] (10.213.0.3, on its `lo`, routed over the veth).
///
/// [`Partition::cut`] sets the namespace's end of the link down: packets from the host to the
/// namespace are dropped (connects time out, open connections stall), the namespace gets
/// "network unreachable" for everything outside it, and both sides still reach their own
/// addresses. [`Partition::restore`] brings the link and the namespace's route back; open
/// connections resume. Names are fixed (`e2egw-part`, veth `e2egw-h`/`e2egw-n`), so
/// creation first removes the leftovers of a crashed run; a lock file keeps two test processes
/// from using them at once. Drop kills what still runs inside and deletes it all.
pub struct Partition {
    cut: bool,
    _lock: File,
}

impl Partition {
    pub const NS: &'static str = "e2egw-part";
    pub const HOST_VETH: &'static str = "e2egw-h";
    pub const NS_VETH: &'static str = "e2egw-n";
    pub const SUBNET: &'static str = "10.213.0.0/24";
    pub const HOST_IPS: [&'static str; 2] = ["10.213.0.1", "10.213.0.2"];
    pub const NS_IP: &'static str = "10.213.0.3";
    /// Metric of the host's fallback route for the subnet: traffic for the namespace never
    /// leaves by the default route, whatever state the veth is in.
    const FALLBACK_METRIC: &'static str = "4242";

    pub fn new() -> Result<Partition> {
        let lock = File::create("/tmp/e2e-partition.lock")?;
        // SAFETY: flock on an fd we own.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
        ensure!(rc == 0, "flock /tmp/e2e-partition.lock failed");
        Partition::remove_all();
        let p = Partition {
            cut: false,
            _lock: lock,
        };
        let (ns, h, n) = (Self::NS, Self::HOST_VETH, Self::NS_VETH);
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", ns],
            vec!["link", "add", h, "type", "veth", "peer", "name", n],
            vec!["link", "set", n, "netns", ns],
            vec!["addr", "add", "10.213.0.1/24", "dev", h],
            vec!["addr", "add", "10.213.0.2/24", "dev", h],
            vec!["link", "set", h, "up"],
            vec![
                "route",
                "add",
                "unreachable",
                Self::SUBNET,
                "metric",
                Self::FALLBACK_METRIC,
            ],
            vec!["-n", ns, "link", "set", "lo", "up"],
            vec!["-n", ns, "addr", "add", "10.213.0.3/32", "dev", "lo"],
            vec!["-n", ns, "link", "set", n, "up"],
        ];
        for s in steps {
            ip(&s)?;
        }
        p.ns_route()?;
        Ok(p)
    }

    /// The namespace's route to the subnet over the veth (a link going down takes it away).
    fn ns_route(&self) -> Result<()> {
        ip(&[
            "-n",
            Self::NS,
            "route",
            "replace",
            Self::SUBNET,
            "dev",
            Self::NS_VETH,
            "src",
            Self::NS_IP,
        ])
    }

    /// Delete the namespace, the veth and the fallback route, also a crashed run's, after
    /// killing any process left inside the namespace.
    fn remove_all() {
        let ns_exists = Path::new("/var/run/netns").join(Self::NS).exists()
            || Path::new("/run/netns").join(Self::NS).exists();
        if ns_exists {
            if let Ok(out) = Command::new("ip")
                .args(["netns", "pids", Self::NS])
                .output()
            {
                for pid in String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                {
                    signal(pid, libc::SIGKILL);
                }
            }
            let _ = ip(&["netns", "del", Self::NS]);
        }
        let _ = Command::new("ip")
            .args(["link", "del", Self::HOST_VETH])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args([
                "route",
                "del",
                "unreachable",
                Self::SUBNET,
                "metric",
                Self::FALLBACK_METRIC,
            ])
            .stderr(Stdio::null())
            .status();
    }

    /// `ip netns exec NS PROGRAM`: add the arguments.
    pub fn exec(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", Self::NS]).arg(program);
        c
    }

    /// Cut the link: the namespace's veth down.
    pub fn cut(&mut self) -> Result<()> {
        ip(&["-n", Self::NS, "link", "set", Self::NS_VETH, "down"])?;
        self.cut = true;
        Ok(())
    }

    /// Bring the link back up, with the namespace's route.
    pub fn restore(&mut self) -> Result<()> {
        ip(&["-n", Self::NS, "link", "set", Self::NS_VETH, "up"])?;
        self.ns_route()?;
        self.cut = false;
        Ok(())
    }

    pub fn is_cut(&self) -> bool {
        self.cut
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        Partition::remove_all();
    }
}

/// `ip ARGS…`, requiring success.
fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ip (iproute2)")?;
    ensure!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        output_text(&out)
    );
    Ok(())
}
