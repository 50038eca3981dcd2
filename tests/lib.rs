//! Helpers for the end-to-end tests: the binaries under test, temporary dirs, free ports, process
//! guards for `gatewayd` and for a private GlusterFS 10 `glusterd`, and checks of the on-brick format
//! written independently of the engine (the DHT hash is implemented again here on purpose: a test
//! that imported the engine's hash would agree with any bug in it).
//!
//! Every guard cleans up in `Drop` (kill what it started, unmount lazily, remove temp dirs), so a
//! failing test leaves nothing behind. Set `E2E_KEEP=1` to keep the temp dirs of failed tests.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CString, OsStr};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use rand::{Rng, SeedableRng, rngs::StdRng};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

pub mod pool;

/// The line `gatewayd up` prints on stdout once the volume is started (and mounted).
pub const READY_LINE: &str = "gatewayd: ready";

// ---------------------------------------------------------------------------------------------
// Binaries
// ---------------------------------------------------------------------------------------------

/// The workspace root (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

static BIN_DIR: OnceLock<PathBuf> = OnceLock::new();

/// The directory holding `gatewayd`, `gwctl` and `brickd`: the profile dir of the target dir this
/// test executable was built into (`target/<profile>/deps/<test>` → `target/<profile>`). The binaries
/// are built once per test process, with the same profile, unless `E2E_NO_BUILD` is set (CI builds
/// them first so the build shows in its log).
pub fn bin_dir() -> &'static Path {
    BIN_DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable lives in target/<profile>/deps")
            .to_path_buf();
        if std::env::var_os("E2E_NO_BUILD").is_none() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.current_dir(workspace_root())
                .args(["build", "--bins", "-p", "gateway", "-p", "brickd"]);
            if dir.file_name() == Some(OsStr::new("release")) {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("running cargo build");
            assert!(
                status.success(),
                "cargo build of gatewayd/gwctl/brickd failed"
            );
        }
        dir
    })
}

/// Path of one of the workspace's binaries.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing (built binaries expected in {})",
        name,
        bin_dir().display()
    );
    p
}

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------

/// A fresh temporary directory under /tmp (not under the work tree: bricks and mounts live here).
pub fn temp_dir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("e2e-{prefix}-"))
        .tempdir_in("/tmp")
        .expect("creating temp dir")
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

/// Poll `f` until it returns `Some`, or fail after `timeout` naming `what`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(20);
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Run `f` on its own thread and give up waiting after `limit`: a file-system call that hangs must
/// fail the test, not hang it. Returns the result (None on timeout) and the time it took.
pub fn timed<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> (Option<T>, Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    let start = Instant::now();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    let r = rx.recv_timeout(limit).ok();
    (r, start.elapsed())
}

/// Run a command, capturing its output.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("spawning {cmd:?}"))?;
    Ok(out)
}

/// Run a command and require exit status 0; returns stdout.
pub fn run_ok(cmd: &mut Command) -> Result<String> {
    let out = run(cmd)?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}):\nstdout: {}\nstderr: {}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `sh -c SCRIPT`, requiring success.
pub fn sh(script: &str) -> Result<String> {
    run_ok(Command::new("sh").arg("-c").arg(script))
}

/// Whether a program is on PATH (or in the sbin dirs, which a non-login PATH may lack).
pub fn have_program(name: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"])
        .any(|d| Path::new(d).join(name).is_file())
}

/// The last `n` lines of a text file (for failure reports).
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned());
    match text {
        Ok(t) => {
            let lines: Vec<&str> = t.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("<{}: {e}>", path.display()),
    }
}

/// Fails the test when a client program it drives is missing (`.ci/install-deps` installs it).
pub fn need(program: &str) {
    assert!(
        have_program(program),
        "{program} is not installed (.ci/install-deps installs it)"
    );
}

/// `len` bytes from a seeded generator: the same file for the same seed.
pub fn random_file(path: &Path, len: usize, seed: u64) -> Result<()> {
    let mut r = StdRng::seed_from_u64(seed);
    let mut f = File::create(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len());
        r.fill(&mut buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n;
    }
    Ok(())
}

/// stdout then stderr of a finished command, as text.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

// ---------------------------------------------------------------------------------------------
// Processes (/proc)
// ---------------------------------------------------------------------------------------------

/// True while `pid` exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            // The state follows the parenthesised command name, which may itself contain ')'.
            let state = s
                .rsplit_once(')')
                .and_then(|(_, r)| r.trim_start().chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

/// The argv of a process.
pub fn proc_cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if raw.is_empty() {
        return None;
    }
    Some(
        raw.split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
    )
}

/// Live processes whose argv satisfies `pred`.
pub fn pids_matching(pred: impl Fn(&[String]) -> bool) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if pid == std::process::id() as i32 {
                continue;
            }
            if let Some(argv) = proc_cmdline(pid)
                && pred(&argv)
                && pid_alive(pid)
            {
                out.push(pid);
            }
        }
    }
    out.sort();
    out
}

/// Send a signal to one process.
pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory effects; a stale pid at worst gets ESRCH.
    unsafe {
        libc::kill(pid, sig);
    }
    // kill(2) returns once SIGSTOP is queued, not once every thread has stopped: on a loaded
    // machine a brick could still answer a request sent right after. Tests that freeze a brick
    // mean it frozen from here on.
    if sig == libc::SIGSTOP {
        let _ = wait_for(Duration::from_secs(10), "the process to stop", || {
            all_threads_stopped(pid).then_some(())
        });
    }
}

/// Whether every thread of `pid` is stopped (state `T` in /proc), or the process is gone.
fn all_threads_stopped(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with(['T', 't']))
            })
            .unwrap_or(true)
    })
}

/// SIGTERM, wait up to `grace`, then SIGKILL and wait a little more. Works for processes that are
/// not our children (daemons); our own children must be reaped by their `Child`.
pub fn terminate_pid(pid: i32, grace: Duration) {
    if !pid_alive(pid) {
        return;
    }
    signal(pid, libc::SIGTERM);
    if wait_for(grace, "exit", || (!pid_alive(pid)).then_some(())).is_err() {
        signal(pid, libc::SIGKILL);
        let _ = wait_for(Duration::from_secs(5), "exit after SIGKILL", || {
            (!pid_alive(pid)).then_some(())
        });
    }
}

/// SIGTERM a child, wait up to `grace`, SIGKILL it, and reap it.
pub fn terminate_child(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(st)) = child.try_wait() {
        return Some(st);
    }
    signal(child.id() as i32, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// TCP ports `pid` listens on (IPv4 and IPv6), from its socket fds and /proc/net/tcp*.
pub fn listening_ports(pid: i32) -> Vec<u16> {
    let mut inodes = BTreeSet::new();
    if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            if let Ok(t) = fs::read_link(e.path()) {
                let t = t.to_string_lossy().into_owned();
                if let Some(ino) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    inodes.insert(ino.to_string());
                }
            }
        }
    }
    let mut ports = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 || cols[3] != "0A" || !inodes.contains(cols[9]) {
                continue;
            }
            if let Some((_, port)) = cols[1].rsplit_once(':')
                && let Ok(p) = u16::from_str_radix(port, 16)
            {
                ports.insert(p);
            }
        }
    }
    ports.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// Mounts
// ---------------------------------------------------------------------------------------------

fn unescape_mountinfo(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The file-system type mounted exactly at `path`, if something is.
pub fn mount_fstype(path: &Path) -> Option<String> {
    let want = path.to_string_lossy().into_owned();
    let text = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut found = None;
    for line in text.lines() {
        let (pre, post) = line.split_once(" - ")?;
        let fields: Vec<&str> = pre.split(' ').collect();
        if fields.len() >= 5 && unescape_mountinfo(fields[4]) == want {
            // Later lines are mounted on top of earlier ones: keep the last.
            found = post.split(' ').next().map(str::to_string);
        }
    }
    found
}

/// Whether something is mounted exactly at `path`.
pub fn is_mounted(path: &Path) -> bool {
    mount_fstype(path).is_some()
}

/// Detach whatever is mounted at `path`, lazily so a busy or dead FUSE mount cannot block us.
pub fn lazy_unmount(path: &Path) {
    for _ in 0..4 {
        if !is_mounted(path) {
            return;
        }
        let ok = Command::new("fusermount3")
            .arg("-uz")
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(path)
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Starts a daemon with its stdout and stderr appended to two logs; returns it and where this
/// run's stdout begins in its log (a restart appends to the same files).
pub fn spawn_logged(
    cmd: &mut Command,
    stdout_log: &Path,
    stderr_log: &Path,
) -> Result<(Child, usize)> {
    let append = |p: &Path| fs::OpenOptions::new().create(true).append(true).open(p);
    let stdout = append(stdout_log)?;
    let stderr = append(stderr_log)?;
    let offset = fs::metadata(stdout_log)?.len() as usize;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()?;
    Ok((child, offset))
}

/// Waits until gatewayd `child` printed its ready line (in `log`, after `offset`) and wrote
/// `api_file`; fails at once if it exits first. `what` names it in the errors.
pub fn wait_gatewayd_ready(
    child: &mut Child,
    log: &Path,
    offset: usize,
    api_file: &Path,
    timeout: Duration,
    what: &str,
) -> Result<()> {
    let res = wait_for(timeout, &format!("{what}: ready"), || {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(Err(anyhow!("{what} exited early with {st}")));
        }
        let out = fs::read(log).ok()?;
        let out = String::from_utf8_lossy(out.get(offset..)?).into_owned();
        (out.lines().any(|l| l.trim() == READY_LINE) && api_file.is_file()).then_some(Ok(()))
    });
    res.and_then(|r| r)
}

// ---------------------------------------------------------------------------------------------
// gatewayd
// ---------------------------------------------------------------------------------------------

/// Options for [`Gateway::start`].
#[derive(Clone, Debug)]
pub struct GatewayOpts {
    /// FUSE-mount the default volume at `<root>/mnt`.
    pub mount: bool,
    /// Extra arguments after `gatewayd up`.
    pub extra: Vec<String>,
    /// How long to wait for the ready line.
    pub ready_timeout: Duration,
    /// `--replica` of the default volume over its four bricks: 2, the 2 x 2 distributed-replicate
    /// volume `gatewayd up` gives users (b1,b2 and b3,b4 are the replica sets). A test about
    /// another shape sets it (1: plain distribute) and says so in its name. Ignored when `extra`
    /// has its own `--replica`.
    pub replica: usize,
}

impl Default for GatewayOpts {
    fn default() -> Self {
        GatewayOpts {
            mount: true,
            extra: Vec::new(),
            ready_timeout: Duration::from_secs(120),
            replica: 2,
        }
    }
}

/// A running `gatewayd up --data D [--mount M] --api 127.0.0.1:0` on a temp dir. Drop stops it
/// (SIGTERM, then SIGKILL), kills brickd processes it left, and lazily unmounts M.
pub struct Gateway {
    pub data: PathBuf,
    pub mount: Option<PathBuf>,
    pub api_url: String,
    pub token: String,
    opts: GatewayOpts,
    child: Option<Child>,
    stdout_log: PathBuf,
    stderr_log: PathBuf,
    // Last: dropped after the processes are gone and the mount is detached.
    root: Option<TempDir>,
}

impl Gateway {
    /// `gatewayd up --replica 2`: the shape users get, a 2 x 2 distributed-replicate volume over
    /// four bricks (b1,b2 and b3,b4 are the replica sets, `vol-replicate-0` and `-1` to DHT),
    /// mounted at `<root>/mnt`.
    pub fn up() -> Result<Gateway> {
        Gateway::start(GatewayOpts::default())
    }

    /// `gatewayd up --replica N`, mounted at `<root>/mnt`: 1 is a plain distribute volume over
    /// the four bricks (tests on it say so in their names), 2 the default 2 x 2.
    pub fn up_with_replica(replica: usize) -> Result<Gateway> {
        Gateway::start(GatewayOpts {
            replica,
            ..Default::default()
        })
    }

    pub fn start(opts: GatewayOpts) -> Result<Gateway> {
        let root = temp_dir("gw");
        let data = root.path().join("data");
        let mount = opts.mount.then(|| root.path().join("mnt"));
        if let Some(m) = &mount {
            fs::create_dir_all(m)?;
        }
        let mut gw = Gateway {
            data,
            mount,
            api_url: String::new(),
            token: String::new(),
            opts,
            child: None,
            stdout_log: root.path().join("gatewayd.stdout"),
            stderr_log: root.path().join("gatewayd.stderr"),
            root: Some(root),
        };
        gw.spawn()?;
        Ok(gw)
    }

    /// The S3 endpoint of the running gatewayd (DATA/s3.url).
    pub fn s3_url(&self) -> Result<String> {
        let p = self.data.join("s3.url");
        Ok(fs::read_to_string(&p)
            .with_context(|| format!("reading {}", p.display()))?
            .trim()
            .to_string())
    }

    /// The NFS (and MOUNT) port of the running gatewayd (DATA/nfs.addr).
    pub fn nfs_port(&self) -> Result<u16> {
        let p = self.data.join("nfs.addr");
        let a = fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        let a: std::net::SocketAddr = a.trim().parse().context("nfs.addr")?;
        Ok(a.port())
    }

    /// The port smbd serves shares on (DATA/smb.addr).
    pub fn smb_port(&self) -> Result<u16> {
        let p = self.data.join("smb.addr");
        let a = fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        let a: std::net::SocketAddr = a.trim().parse().context("smb.addr")?;
        Ok(a.port())
    }

    /// `nfs://127.0.0.1/vol/PATH?version=3&nfsport=P&mountport=P`, as libnfs's tools take it.
    pub fn nfs_url(&self, path: &str) -> Result<String> {
        let p = self.nfs_port()?;
        Ok(format!(
            "nfs://127.0.0.1/vol/{}?version=3&nfsport={p}&mountport={p}",
            path.trim_start_matches('/')
        ))
    }

    /// A new admin S3 key made with `gwctl s3 key create NAME --admin --json`: (access key,
    /// secret key). Admin, because the protocol tests share one namespace across keys and
    /// protocols (buckets made through FUSE belong to no key); `s3_tenancy` makes tenants' keys.
    pub fn s3_key(&self, name: &str) -> Result<(String, String)> {
        let out = self.gwctl_ok(&["s3", "key", "create", name, "--admin", "--json"])?;
        let v: serde_json::Value = serde_json::from_str(&out)
            .with_context(|| format!("gwctl s3 key create --json printed {out:?}"))?;
        let get = |k: &str| {
            v[k].as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("no {k} in {out}"))
        };
        Ok((get("access_key")?, get("secret_key")?))
    }

    /// The console's admin password, as the first start printed it.
    pub fn admin_password(&self) -> Result<String> {
        let out = fs::read_to_string(&self.stdout_log)?;
        out.lines()
            .find_map(|l| l.strip_prefix("console login: admin / "))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_string)
            .context("gatewayd printed no console login")
    }

    /// The temp dir holding data/, mnt/ and the logs.
    pub fn root(&self) -> &Path {
        self.root.as_ref().expect("root").path()
    }

    fn spawn(&mut self) -> Result<()> {
        let mut cmd = Command::new(bin("gatewayd"));
        cmd.arg("up").arg("--data").arg(&self.data);
        if let Some(m) = &self.mount {
            cmd.arg("--mount").arg(m);
        }
        cmd.args(["--api", "127.0.0.1:0"]);
        // Tests run side by side: S3 on a free port unless the test chose one.
        if !self.opts.extra.iter().any(|a| a == "--s3") {
            cmd.args(["--s3", "127.0.0.1:0"]);
        }
        if !self.opts.extra.iter().any(|a| a == "--nfs") {
            cmd.args(["--nfs", "127.0.0.1:0"]);
        }
        if !self.opts.extra.iter().any(|a| a == "--smb") {
            cmd.args(["--smb", "127.0.0.1:0"]);
        }
        // Only the test of rpcbind registration registers: the others' ports would replace it.
        if !self.opts.extra.iter().any(|a| a == "--rpcbind") {
            cmd.args(["--rpcbind", "off"]);
        }
        if !self.opts.extra.iter().any(|a| a == "--replica") {
            cmd.args(["--replica", &self.opts.replica.to_string()]);
        }
        cmd.args(&self.opts.extra);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let (child, offset) = spawn_logged(&mut cmd, &self.stdout_log, &self.stderr_log)
            .context("spawning gatewayd")?;
        let child = self.child.insert(child);
        let api_file = self.data.join("api.url");
        let ready = wait_gatewayd_ready(
            child,
            &self.stdout_log,
            offset,
            &api_file,
            self.opts.ready_timeout,
            "gatewayd",
        );
        if let Err(e) = ready {
            bail!("{e}\n{}", self.logs());
        }
        self.api_url = fs::read_to_string(&api_file)?.trim().to_string();
        self.token = fs::read_to_string(self.data.join("admin.token"))
            .unwrap_or_default()
            .trim()
            .to_string();
        if let Some(m) = self.mount.clone() {
            wait_for(Duration::from_secs(30), "the FUSE mount", || {
                is_mounted(&m).then_some(())
            })
            .map_err(|e| anyhow!("{e}\n{}", self.logs()))?;
        }
        Ok(())
    }

    /// gatewayd's `/metrics` text.
    pub fn metrics(&self) -> Result<String> {
        run_ok(Command::new("curl").args(["-sf", &format!("{}/metrics", self.api_url)]))
    }

    /// Requests sent to the default volume's bricks so far, from `/metrics`.
    pub fn brick_requests(&self) -> Result<f64> {
        Ok(metric_sum(
            &self.metrics()?,
            "gateway_brick_request_seconds_count",
            r#"volume="vol""#,
        ))
    }

    /// The mount point (panics if started without one).
    pub fn mnt(&self) -> &Path {
        self.mount.as_deref().expect("gateway started with a mount")
    }

    /// gatewayd's pid.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// stdout and stderr of gatewayd, the tail of each.
    pub fn logs(&self) -> String {
        format!(
            "--- gatewayd stdout ({}) ---\n{}\n--- gatewayd stderr ({}) ---\n{}",
            self.stdout_log.display(),
            tail(&self.stdout_log, 40),
            self.stderr_log.display(),
            tail(&self.stderr_log, 80)
        )
    }

    /// All of gatewayd's stderr (its log) so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// Run `gwctl --api URL --token T --data D ARGS…` (D for the CA of an HTTPS API,
    /// DATA/tls/ca.pem, when `--tls` made one).
    pub fn gwctl(&self, args: &[&str]) -> Result<Output> {
        let mut cmd = Command::new(bin("gwctl"));
        cmd.arg("--api")
            .arg(&self.api_url)
            .arg("--token")
            .arg(&self.token)
            .arg("--data")
            .arg(&self.data)
            .args(args);
        run(&mut cmd)
    }

    /// Run gwctl and require success; returns stdout.
    pub fn gwctl_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.gwctl(args)?;
        if !out.status.success() {
            bail!(
                "gwctl {} failed ({}):\nstdout: {}\nstderr: {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The default volume's brick directories `D/bricks/b1..b4`, in brick order.
    pub fn brick_dirs(&self) -> Vec<PathBuf> {
        (1..=4)
            .map(|i| self.data.join("bricks").join(format!("b{i}")))
            .collect()
    }

    /// The default volume's replica count: `--replica` from `extra` if given, else
    /// [`GatewayOpts::replica`].
    pub fn replica(&self) -> usize {
        let extra = &self.opts.extra;
        extra
            .iter()
            .enumerate()
            .find_map(|(i, a)| {
                if a == "--replica" {
                    extra.get(i + 1)?.parse().ok()
                } else {
                    a.strip_prefix("--replica=")?.parse().ok()
                }
            })
            .unwrap_or(self.opts.replica)
    }

    /// The default volume's bricks grouped by replica set (see [`replica_sets`]).
    pub fn replica_sets(&self) -> Vec<Vec<PathBuf>> {
        replica_sets(&self.brick_dirs(), self.replica())
    }

    /// The pid of the brickd serving `brick` (found by its `--brick DIR` argument).
    pub fn brickd_pid(&self, brick: &Path) -> Option<i32> {
        let want = brick.to_string_lossy().into_owned();
        let eq = format!("--brick={want}");
        pids_matching(|argv| {
            argv.first().is_some_and(|a| a.ends_with("brickd"))
                && (argv
                    .windows(2)
                    .any(|w| w[0] == "--brick" && w[1].trim_end_matches('/') == want)
                    || argv.contains(&eq))
        })
        .into_iter()
        .next()
    }

    /// The ping-timeout in the default volume's volfile (42 if the volfile does not set one).
    pub fn ping_timeout(&self, volume: &str) -> u64 {
        self.gwctl_ok(&["volume", "volfile", volume])
            .ok()
            .and_then(|v| {
                v.lines().find_map(|l| {
                    let mut w = l.split_whitespace();
                    (w.next() == Some("option") && w.next() == Some("ping-timeout"))
                        .then(|| w.next().and_then(|x| x.parse().ok()))
                        .flatten()
                })
            })
            .unwrap_or(42)
    }

    /// Stop gatewayd (SIGTERM; SIGKILL after 30 s), kill leftover brickds, detach the mount.
    /// Returns gatewayd's exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let st = self.terminate();
        let data = self.data.to_string_lossy().into_owned();
        for pid in pids_matching(|argv| {
            argv.first()
                .is_some_and(|a| a.ends_with("brickd") || a.ends_with("smbd"))
                && argv.iter().any(|a| a.contains(&data))
        }) {
            terminate_pid(pid, Duration::from_secs(5));
        }
        if let Some(m) = &self.mount {
            lazy_unmount(m);
        }
        // The mounts gatewayd makes for Samba, when it could not remove them itself.
        if let Ok(rd) = fs::read_dir(self.data.join("smb").join("mnt")) {
            for e in rd.flatten() {
                if is_mounted(&e.path()) {
                    lazy_unmount(&e.path());
                }
            }
        }
        st
    }

    /// Stop only gatewayd (SIGTERM; SIGKILL after 30 s) and reap it; what it leaves behind stays.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        let st = self
            .child
            .as_mut()
            .and_then(|c| terminate_child(c, Duration::from_secs(30)));
        self.child = None;
        st
    }

    /// `kill -9` of gatewayd alone, reaped; its mount and children are left as a crash leaves them.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start gatewayd again on the same data dir and mount point, without cleaning up first.
    pub fn start_again(&mut self) -> Result<()> {
        self.spawn()
    }

    /// Stop and start again on the same data dir (and mount point).
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.spawn()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let failed = thread::panicking();
        if failed {
            eprintln!("{}", self.logs());
        }
        self.stop();
        if (failed || std::env::var_os("E2E_KEEP_ALL").is_some())
            && std::env::var_os("E2E_KEEP").is_some()
            && let Some(root) = self.root.take()
        {
            eprintln!("keeping {}", root.keep().display());
        }
    }
}

/// A native client: `gatewayd mount --server URL --token T --data D VOLUME DIR` in the
/// foreground (D for the CA of an HTTPS API).
/// Drop unmounts and stops it.
pub struct NativeMount {
    pub dir: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl NativeMount {
    pub fn start(gw: &Gateway, volume: &str, dir: &Path) -> Result<NativeMount> {
        let log = gw.root().join(format!("mount-{volume}.log"));
        NativeMount::with_api(&gw.api_url, &gw.token, &gw.data, volume, dir, &log)
    }

    /// `gatewayd mount --server API --token TOKEN --data DATA VOLUME DIR` in the foreground,
    /// logging to `log`; returns once DIR is mounted.
    pub fn with_api(
        api: &str,
        token: &str,
        data: &Path,
        volume: &str,
        dir: &Path,
        log: &Path,
    ) -> Result<NativeMount> {
        fs::create_dir_all(dir)?;
        let log = log.to_path_buf();
        let logf = File::create(&log)?;
        let mut cmd = Command::new(bin("gatewayd"));
        cmd.arg("mount")
            .arg("--server")
            .arg(api)
            .arg("--token")
            .arg(token)
            .arg("--data")
            .arg(data)
            .arg(volume)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let child = cmd.spawn().context("spawning gatewayd mount")?;
        let mut m = NativeMount {
            dir: dir.to_path_buf(),
            child: Some(child),
            log,
        };
        let res = wait_for(Duration::from_secs(60), "gatewayd mount", || {
            if let Some(c) = m.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                return Some(Err(anyhow!("gatewayd mount exited with {st}")));
            }
            is_mounted(&m.dir).then_some(Ok(()))
        });
        match res.and_then(|r| r) {
            Ok(()) => Ok(m),
            Err(e) => {
                let msg = format!("{e}\n--- mount log ---\n{}", tail(&m.log, 60));
                m.stop();
                bail!(msg)
            }
        }
    }

    pub fn log_tail(&self) -> String {
        tail(&self.log, 60)
    }

    pub fn stop(&mut self) {
        if is_mounted(&self.dir) {
            // A plain unmount first: the foreground client then exits on its own.
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg(&self.dir)
                .stderr(Stdio::null())
                .status();
        }
        lazy_unmount(&self.dir);
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(50));
            }
            terminate_child(&mut c, Duration::from_secs(5));
        }
    }
}

impl Drop for NativeMount {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("--- native mount log ---\n{}", self.log_tail());
        }
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// GlusterFS 10 (the reference system)
// ---------------------------------------------------------------------------------------------

/// Whether GlusterFS's glusterd is installed.
pub fn glusterd_installed() -> bool {
    have_program("glusterd") && have_program("gluster")
}

/// Return early from a test (printing the reason) when GlusterFS is not installed; under CI
/// (`CI` set) a missing peer fails the test instead, so CI cannot pass by skipping.
#[macro_export]
macro_rules! require_glusterfs {
    () => {
        if !$crate::glusterd_installed() {
            assert!(
                std::env::var_os("CI").is_none(),
                "glusterd is not installed, and CI must run the GlusterFS tests (.ci/install-deps installs glusterfs-server)"
            );
            eprintln!("SKIP: glusterd is not installed (apt-get install glusterfs-server glusterfs-client)");
            return;
        }
    };
}

/// The host name GlusterFS bricks are addressed by (glusterd refuses localhost/127.0.0.1).
pub fn gluster_host() -> String {
    let out = Command::new("hostname").output().ok();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A private glusterd (own working directory, pid file and log), with the volumes and mounts a
/// test made through it. Only one glusterd can run on a machine (port 24007), so `start` takes a
/// machine-wide lock held until drop. Drop unmounts, stops and deletes the volumes, kills their
/// brick, self-heal and client processes, then glusterd.
pub struct GlusterFs {
    dir: TempDir,
    pid: i32,
    volumes: Vec<String>,
    mounts: Vec<PathBuf>,
    _lock: File,
}

impl GlusterFs {
    pub fn start() -> Result<GlusterFs> {
        let lock = File::create("/tmp/e2e-glusterd.lock")?;
        // SAFETY: flock on an fd we own.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
        ensure!(rc == 0, "flock /tmp/e2e-glusterd.lock failed");
        if let Some(pid) = pids_matching(|a| {
            a.first()
                .is_some_and(|p| p == "glusterd" || p.ends_with("/glusterd"))
        })
        .first()
        {
            bail!(
                "another glusterd (pid {pid}) is running; these tests start their own (stop it first)"
            );
        }
        let dir = temp_dir("glusterd");
        let wd = dir.path().join("wd");
        fs::create_dir_all(&wd)?;
        let base = fs::read_to_string("/etc/glusterfs/glusterd.vol").unwrap_or_else(|_| {
            "volume management\n    type mgmt/glusterd\n    option working-directory /var/lib/glusterd\n    option transport-type socket\n    option transport.socket.listen-port 24007\n    option ping-timeout 0\n    option event-threads 1\n    option max-port 60999\nend-volume\n".into()
        });
        let vol = base
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("option working-directory") {
                    format!("    option working-directory {}", wd.display())
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let volfile = dir.path().join("glusterd.vol");
        fs::write(&volfile, vol)?;
        let pidfile = dir.path().join("glusterd.pid");
        let status = Command::new("glusterd")
            .arg("-f")
            .arg(&volfile)
            .arg("-p")
            .arg(&pidfile)
            .arg("-l")
            .arg(dir.path().join("glusterd.log"))
            .stdin(Stdio::null())
            .status()
            .context("starting glusterd")?;
        ensure!(status.success(), "glusterd failed to start: {status}");
        let pid = wait_for(Duration::from_secs(20), "glusterd pid file", || {
            fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
        })?;
        let g = GlusterFs {
            dir,
            pid,
            volumes: Vec::new(),
            mounts: Vec::new(),
            _lock: lock,
        };
        wait_for(Duration::from_secs(60), "glusterd to answer", || {
            g.cli(&["volume", "list"])
                .ok()
                .filter(|o| o.status.success())
                .map(|_| ())
        })
        .map_err(|e| anyhow!("{e}\n{}", g.log_tail()))?;
        Ok(g)
    }

    pub fn log_tail(&self) -> String {
        format!(
            "--- glusterd log ---\n{}",
            tail(&self.dir.path().join("glusterd.log"), 40)
        )
    }

    /// `gluster --mode=script ARGS…`.
    pub fn cli(&self, args: &[&str]) -> Result<Output> {
        run(Command::new("gluster").arg("--mode=script").args(args))
    }

    pub fn cli_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.cli(args)?;
        if !out.status.success() {
            bail!(
                "gluster {} failed ({}): {}{}\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log_tail()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Create (with `force`: bricks on the root file system) and start a distribute volume.
    pub fn create_volume(&mut self, name: &str, bricks: &[PathBuf]) -> Result<()> {
        self.create_volume_with(name, &[], bricks)
    }

    /// Create and start a volume with a layout (`["replica", "2"]`, …) before its bricks.
    pub fn create_volume_with(
        &mut self,
        name: &str,
        layout: &[&str],
        bricks: &[PathBuf],
    ) -> Result<()> {
        let host = gluster_host();
        let specs: Vec<String> = bricks
            .iter()
            .map(|b| format!("{host}:{}", b.display()))
            .collect();
        let mut args = vec!["volume", "create", name];
        args.extend_from_slice(layout);
        args.extend(specs.iter().map(String::as_str));
        args.push("force");
        self.cli_ok(&args)?;
        self.volumes.push(name.to_string());
        self.cli_ok(&["volume", "start", name])?;
        Ok(())
    }

    /// `mount -t glusterfs HOST:/NAME DIR`.
    pub fn mount(&mut self, name: &str, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir)?;
        let host = gluster_host();
        // The brick processes may need a moment to register their ports with glusterd.
        let mut last = String::new();
        let ok = wait_for(Duration::from_secs(60), "GlusterFS mount", || {
            let out = Command::new("mount")
                .args(["-t", "glusterfs"])
                .arg(format!("{host}:/{name}"))
                .arg(dir)
                .output()
                .ok()?;
            if out.status.success() && is_mounted(dir) {
                return Some(());
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            lazy_unmount(dir);
            None
        });
        ok.map_err(|e| anyhow!("{e}: {last}"))?;
        self.mounts.push(dir.to_path_buf());
        // A fresh mount can answer ENOTCONN until every brick is connected.
        wait_for(Duration::from_secs(60), "GlusterFS mount usable", || {
            fs::read_dir(dir).ok().map(|_| ())
        })?;
        Ok(())
    }

    pub fn unmount(&mut self, dir: &Path) {
        let _ = Command::new("umount")
            .arg(dir)
            .stderr(Stdio::null())
            .status();
        lazy_unmount(dir);
        self.mounts.retain(|m| m != dir);
    }

    /// Stop and delete a volume (bricks stay on disk) and make sure its processes are gone.
    pub fn delete_volume(&mut self, name: &str) -> Result<()> {
        let stop = self.cli(&["volume", "stop", name, "force"])?;
        let del = self.cli(&["volume", "delete", name])?;
        self.volumes.retain(|v| v != name);
        kill_gluster_volume_processes(name, None);
        ensure!(
            del.status.success(),
            "gluster volume delete {name}: {}{}{}",
            String::from_utf8_lossy(&stop.stderr),
            String::from_utf8_lossy(&del.stdout),
            String::from_utf8_lossy(&del.stderr)
        );
        Ok(())
    }
}

fn kill_gluster_volume_processes(volume: &str, extra: Option<&str>) {
    let vid = format!("{volume}.");
    let shd = format!("shd/{volume}");
    let vols = format!("/vols/{volume}/");
    for pid in pids_matching(|argv| {
        let is_gluster = argv
            .first()
            .is_some_and(|p| p.contains("glusterfs") || p.contains("glusterfsd"));
        is_gluster
            && argv.iter().any(|a| {
                a.starts_with(&vid)
                    || a.contains(&shd)
                    || a.contains(&vols)
                    || extra.is_some_and(|e| a.contains(e))
            })
    }) {
        terminate_pid(pid, Duration::from_secs(5));
    }
}

impl Drop for GlusterFs {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        for m in std::mem::take(&mut self.mounts) {
            let _ = Command::new("umount")
                .arg(&m)
                .stderr(Stdio::null())
                .status();
            lazy_unmount(&m);
        }
        for v in std::mem::take(&mut self.volumes) {
            let _ = self.cli(&["volume", "stop", &v, "force"]);
            let _ = self.cli(&["volume", "delete", &v]);
            kill_gluster_volume_processes(&v, None);
        }
        let tmp = self.dir.path().to_string_lossy().into_owned();
        kill_gluster_volume_processes("\u{0}", Some(&tmp));
        terminate_pid(self.pid, Duration::from_secs(10));
    }
}

// ---------------------------------------------------------------------------------------------
// The DHT hash, implemented again from GlusterFS's description (DESIGN.md §5)
// ---------------------------------------------------------------------------------------------

fn dm_round(rounds: u32, a: &[u32; 4], h0: &mut u32, h1: &mut u32) {
    let (mut b0, mut b1) = (*h0, *h1);
    let mut sum: u32 = 0;
    for _ in 0..rounds {
        sum = sum.wrapping_add(0x9E37_79B9);
        b0 = b0.wrapping_add(
            (b1 << 4).wrapping_add(a[0]) ^ b1.wrapping_add(sum) ^ (b1 >> 5).wrapping_add(a[1]),
        );
        b1 = b1.wrapping_add(
            (b0 << 4).wrapping_add(a[2]) ^ b0.wrapping_add(sum) ^ (b0 >> 5).wrapping_add(a[3]),
        );
    }
    *h0 = h0.wrapping_add(b0);
    *h1 = h1.wrapping_add(b1);
}

/// GlusterFS `gf_dm_hashfn`: Davies–Meyer over TEA.
pub fn dm_hash(msg: &[u8]) -> u32 {
    let len = msg.len();
    let mut h0: u32 = 0x9464_a485;
    let mut h1: u32 = 0x542e_1a94;
    let word = |i: usize| u32::from_le_bytes([msg[i], msg[i + 1], msg[i + 2], msg[i + 3]]);
    let mut pad = (len as u32) | ((len as u32) << 8);
    pad |= pad << 16;
    let quads = len / 16;
    for q in 0..quads {
        let a = [
            word(q * 16),
            word(q * 16 + 4),
            word(q * 16 + 8),
            word(q * 16 + 12),
        ];
        dm_round(6, &a, &mut h0, &mut h1);
    }
    let mut pos = quads * 16;
    let mut a = [0u32; 4];
    for slot in a.iter_mut() {
        if len - pos >= 4 {
            *slot = word(pos);
            pos += 4;
        } else {
            let mut w = pad;
            while pos < len {
                // `char` is signed on x86: bytes ≥ 0x80 are sign-extended before the OR.
                w = (w << 8) | (msg[pos] as i8 as i32 as u32);
                pos += 1;
            }
            *slot = w;
        }
    }
    dm_round(10, &a, &mut h0, &mut h1);
    h0 ^ h1
}

/// The hash DHT places a name by: rsync temporaries `.NAME.XXXXXX` hash as `NAME` (GlusterFS's
/// default `rsync-hash-regex` `^\.(.+)\.[^.]+$`).
pub fn dht_hash(name: &[u8]) -> u32 {
    if name.len() > 2
        && name[0] == b'.'
        && let Some(last) = name.iter().rposition(|b| *b == b'.')
        && last > 1
        && last + 1 < name.len()
    {
        return dm_hash(&name[1..last]);
    }
    dm_hash(name)
}

// ---------------------------------------------------------------------------------------------
// Brick inspection
// ---------------------------------------------------------------------------------------------

/// lgetxattr; None if absent.
pub fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: valid C strings and a buffer of the given length.
        let r =
            unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if r >= 0 {
            buf.truncate(r as usize);
            return Some(buf);
        }
        if std::io::Error::last_os_error().raw_os_error() == Some(libc::ERANGE) {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        return None;
    }
}

/// llistxattr names.
pub fn list_xattrs(path: &Path) -> Vec<String> {
    let Ok(p) = CString::new(path.as_os_str().as_bytes()) else {
        return Vec::new();
    };
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid C string and buffer.
    let r = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r <= 0 {
        return Vec::new();
    }
    buf.truncate(r as usize);
    buf.split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// Every non-zero `trusted.afr.*` value on a brick (its root included, `.glusterfs` left
/// out): (path relative to the brick, key, hex value).
pub fn afr_marks(brick: &Path) -> Vec<(PathBuf, String, String)> {
    let mut out = Vec::new();
    let mut marks_of = |rel: &Path| {
        let p = brick.join(rel);
        for k in list_xattrs(&p) {
            let v = get_xattr(&p, &k).unwrap_or_default();
            if k.starts_with("trusted.afr.") && v.iter().any(|b| *b != 0) {
                out.push((rel.to_path_buf(), k, hex::encode(v)));
            }
        }
    };
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        marks_of(&rel);
        let Ok(rd) = fs::read_dir(brick.join(&rel)) else {
            continue;
        };
        for e in rd.flatten() {
            let n = e.file_name();
            if rel.as_os_str().is_empty() && n.to_string_lossy().starts_with(".glusterfs") {
                continue;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(rel.join(&n)),
                Ok(t) if t.is_file() => marks_of(&rel.join(&n)),
                _ => {}
            }
        }
    }
    out
}

/// lsetxattr.
pub fn set_xattr(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    let p = CString::new(path.as_os_str().as_bytes())?;
    let n = CString::new(name)?;
    // SAFETY: valid C strings and a buffer of the given length.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("setxattr {name} {}", path.display()));
    }
    Ok(())
}

/// Sets the mtime of an entry on a brick to `secs` the way the brick reports it: the inode's
/// own times, and the mtime in its `trusted.glusterfs.mdata` where it has one (GlusterFS's
/// `posix_mdata_disk_t`, 57 bytes: version 1, flags u64, then ctime, mtime and atime as
/// big-endian (seconds u64, nanoseconds u64)). A brick answers stat from that xattr, so that
/// every replica reports the same times; touching the inode alone changes nothing a client
/// sees. For a replicated file, call it on every copy.
pub fn set_brick_mtime(path: &Path, secs: i64) -> Result<()> {
    set_mtime(path, secs)?;
    const MDATA: &str = "trusted.glusterfs.mdata";
    if let Some(mut v) = get_xattr(path, MDATA) {
        ensure!(
            v.len() == 57 && v[0] == 1,
            "{}: a {MDATA} of {} bytes, version {:?}",
            path.display(),
            v.len(),
            v.first()
        );
        v[25..33].copy_from_slice(&(secs as u64).to_be_bytes());
        v[33..41].copy_from_slice(&0u64.to_be_bytes());
        set_xattr(path, MDATA, &v)?;
    }
    Ok(())
}

/// lremovexattr (ignores "absent").
pub fn remove_xattr(path: &Path, name: &str) -> Result<()> {
    let p = CString::new(path.as_os_str().as_bytes())?;
    let n = CString::new(name)?;
    // SAFETY: valid C strings.
    let r = unsafe { libc::lremovexattr(p.as_ptr(), n.as_ptr()) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENODATA) {
            return Err(e).with_context(|| format!("removexattr {name} {}", path.display()));
        }
    }
    Ok(())
}

/// The sum of the samples of metric `name` (a counter, or a histogram's `_count`) whose
/// labels contain `labels`, in `/metrics` text.
pub fn metric_sum(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{') && l.contains(labels))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Read an xattr the way an operator would: `getfattr -n NAME -e hex PATH`, decoded.
pub fn getfattr_hex(path: &Path, name: &str) -> Option<Vec<u8>> {
    let out = Command::new("getfattr")
        .args(["--absolute-names", "-n", name, "-e", "hex"])
        .arg(path)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with(&format!("{name}=")))?;
    let v = line.split_once('=')?.1.trim();
    hex::decode(v.strip_prefix("0x")?).ok()
}

/// Formats a 16-byte gfid as a canonical UUID string.
pub fn uuid_str(g: &[u8]) -> String {
    let h = hex::encode(g);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The `.glusterfs/ab/cd/<uuid>` handle path of a gfid on a brick.
pub fn handle_path(brick: &Path, gfid: &[u8]) -> PathBuf {
    brick
        .join(".glusterfs")
        .join(format!("{:02x}", gfid[0]))
        .join(format!("{:02x}", gfid[1]))
        .join(uuid_str(gfid))
}

pub const ROOT_GFID: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// A directory's DHT layout range on one brick: `[commit-hash, type, start, stop]`, big-endian.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub commit: u32,
    pub kind: u32,
    pub start: u32,
    pub stop: u32,
}

pub fn parse_layout(v: &[u8]) -> Option<Range> {
    if v.len() != 16 {
        return None;
    }
    let w = |i: usize| u32::from_be_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]]);
    Some(Range {
        commit: w(0),
        kind: w(4),
        start: w(8),
        stop: w(12),
    })
}

/// Names DHT keeps to itself in a brick's root.
fn is_private_root_entry(name: &OsStr) -> bool {
    let n = name.to_string_lossy();
    n == ".glusterfs" || n.starts_with(".glusterfs-anonymous-inode") || n == ".trashcan"
}

fn list_dir(dir: &Path, at_root: bool) -> Vec<(std::ffi::OsString, fs::Metadata)> {
    let mut v = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if at_root && is_private_root_entry(&e.file_name()) {
                continue;
            }
            if let Ok(m) = fs::symlink_metadata(e.path()) {
                v.push((e.file_name(), m));
            }
        }
    }
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Whether a brick entry is a DHT linkto file (sticky-bit-only mode, size 0, linkto xattr).
pub fn is_linkto(path: &Path, meta: &fs::Metadata) -> bool {
    meta.is_file()
        && meta.len() == 0
        && meta.permissions().mode() & 0o7777 == 0o1000
        && get_xattr(path, "trusted.glusterfs.dht.linkto").is_some()
}

/// Read the layouts of directory `rel` on every brick (via getfattr).
pub fn dir_layouts(bricks: &[PathBuf], rel: &Path) -> Result<Vec<Range>> {
    bricks
        .iter()
        .map(|b| {
            let p = b.join(rel);
            let v = getfattr_hex(&p, "trusted.glusterfs.dht")
                .ok_or_else(|| anyhow!("{} has no trusted.glusterfs.dht", p.display()))?;
            parse_layout(&v)
                .ok_or_else(|| anyhow!("{}: bad layout {}", p.display(), hex::encode(&v)))
        })
        .collect()
}

/// The bricks grouped by replica set, `replica` consecutive bricks each in brick order: the DHT
/// subvolumes of the volume (b1,b2 and b3,b4 on the default 2 x 2 volume; one brick each on
/// plain distribute).
pub fn replica_sets(bricks: &[PathBuf], replica: usize) -> Vec<Vec<PathBuf>> {
    assert!(
        replica >= 1 && bricks.len().is_multiple_of(replica),
        "{} bricks do not make replica sets of {replica}",
        bricks.len()
    );
    bricks.chunks(replica).map(<[PathBuf]>::to_vec).collect()
}

/// The name of DHT subvolume `i`, which linkto files carry: `<volume>-client-<i>` on plain
/// distribute, `<volume>-replicate-<i>` when the subvolumes are replica sets.
pub fn dht_subvolume(volume: &str, replica: usize, i: usize) -> String {
    if replica == 1 {
        format!("{volume}-client-{i}")
    } else {
        format!("{volume}-replicate-{i}")
    }
}

/// How messages name DHT subvolume `i`: its brick, or its replica set and bricks.
fn subvolume_label(replica: usize, i: usize) -> String {
    if replica == 1 {
        format!("b{}", i + 1)
    } else {
        let bricks: Vec<String> = (i * replica..(i + 1) * replica)
            .map(|b| format!("b{}", b + 1))
            .collect();
        format!("replica set {i} ({})", bricks.join(","))
    }
}

/// A directory's layout per DHT subvolume (replica set), from every brick: the copies in one
/// set must carry the same range (replicate writes it to each). With `replica` 1 this is
/// [`dir_layouts`].
pub fn set_layouts(bricks: &[PathBuf], replica: usize, rel: &Path) -> Result<Vec<Range>> {
    ensure!(
        replica >= 1 && bricks.len().is_multiple_of(replica),
        "{} bricks do not make replica sets of {replica}",
        bricks.len()
    );
    let all = dir_layouts(bricks, rel)?;
    all.chunks(replica)
        .enumerate()
        .map(|(i, set)| {
            ensure!(
                set.iter().all(|r| *r == set[0]),
                "dir /{}: the bricks of {} carry different layouts {set:?}",
                rel.display(),
                subvolume_label(replica, i)
            );
            Ok(set[0])
        })
        .collect()
}

/// The brick (index into the layouts) whose range holds `hash`.
pub fn brick_for_hash(layouts: &[Range], hash: u32) -> Option<usize> {
    layouts
        .iter()
        .position(|r| r.start <= hash && hash <= r.stop && !(r.start == 0 && r.stop == 0))
}

/// The brick a name in directory `rel` hashes to, on a plain distribute volume.
pub fn hashed_brick(bricks: &[PathBuf], rel: &Path, name: &str) -> Result<usize> {
    hashed_set(bricks, 1, rel, name)
}

/// The replica set (DHT subvolume; index into [`replica_sets`]) a name in directory `rel`
/// hashes to.
pub fn hashed_set(bricks: &[PathBuf], replica: usize, rel: &Path, name: &str) -> Result<usize> {
    let l = set_layouts(bricks, replica, rel)?;
    brick_for_hash(&l, dht_hash(name.as_bytes()))
        .ok_or_else(|| anyhow!("no range of {} holds {name}", rel.display()))
}

/// `n` names `PREFIX<i>` that hash to brick `want` in directory `rel`, on a plain distribute
/// volume.
pub fn names_on_brick(
    bricks: &[PathBuf],
    rel: &Path,
    want: usize,
    prefix: &str,
    n: usize,
) -> Result<Vec<String>> {
    names_on_set(bricks, 1, rel, want, prefix, n)
}

/// `n` names `PREFIX<i>` that hash to replica set `want` (index into [`replica_sets`]) in
/// directory `rel`: with `replica` 2 on the default volume, set 0 is b1,b2 and set 1 b3,b4.
pub fn names_on_set(
    bricks: &[PathBuf],
    replica: usize,
    rel: &Path,
    want: usize,
    prefix: &str,
    n: usize,
) -> Result<Vec<String>> {
    let l = set_layouts(bricks, replica, rel)?;
    let mut out = Vec::new();
    for i in 0..100_000 {
        let name = format!("{prefix}{i}");
        if brick_for_hash(&l, dht_hash(name.as_bytes())) == Some(want) {
            out.push(name);
            if out.len() == n {
                return Ok(out);
            }
        }
    }
    bail!(
        "could not find {n} names on {}",
        subvolume_label(replica, want)
    )
}

/// One brick's entry for a name: (is a directory, linkto target if it is a linkto file).
type Slot = (bool, Option<String>);

/// What [`check_placement`] saw.
#[derive(Debug, Default)]
pub struct Placement {
    pub dirs: usize,
    /// Names that are not directories (a replicated file counts once).
    pub files: usize,
    /// Linkto names (a replicated linkto counts once).
    pub linkto: usize,
}

fn ranges_cover(l: &[Range]) -> Result<()> {
    let mut r: Vec<Range> = l
        .iter()
        .copied()
        .filter(|r| !(r.start == 0 && r.stop == 0))
        .collect();
    r.sort_by_key(|r| r.start);
    ensure!(!r.is_empty(), "no ranges");
    ensure!(r[0].start == 0, "ranges start at {:#x}", r[0].start);
    for w in r.windows(2) {
        ensure!(
            w[0].stop < w[1].start && w[0].stop.wrapping_add(1) == w[1].start,
            "ranges {:#x}-{:#x} and {:#x}-{:#x} overlap or leave a hole",
            w[0].start,
            w[0].stop,
            w[1].start,
            w[1].stop
        );
    }
    let last = r.last().expect("non-empty");
    ensure!(last.stop == u32::MAX, "ranges end at {:#x}", last.stop);
    Ok(())
}

/// Files up to this size have their replicas' contents compared by [`check_placement_of`].
const COMPARE_CONTENT_UP_TO: u64 = 64 << 20;

/// How the copies of one non-directory entry in a replica set differ (gfid, type, permission
/// bits, owner, size, symlink target, contents of files up to 64 MiB), if they do. Times are
/// not compared.
fn copies_differ(paths: &[PathBuf]) -> Option<String> {
    let first = &paths[0];
    let m0 = match fs::symlink_metadata(first) {
        Ok(m) => m,
        Err(e) => return Some(format!("{}: {e}", first.display())),
    };
    let g0 = get_xattr(first, "trusted.gfid");
    for p in &paths[1..] {
        let m = match fs::symlink_metadata(p) {
            Ok(m) => m,
            Err(e) => return Some(format!("{}: {e}", p.display())),
        };
        let what = if get_xattr(p, "trusted.gfid") != g0 {
            "gfid"
        } else if m.file_type() != m0.file_type() {
            "type"
        } else if m.mode() & 0o7777 != m0.mode() & 0o7777 {
            "mode"
        } else if (m.uid(), m.gid()) != (m0.uid(), m0.gid()) {
            "owner"
        } else if m.len() != m0.len() {
            "size"
        } else if m.is_symlink() && fs::read_link(p).ok() != fs::read_link(first).ok() {
            "symlink target"
        } else if m.is_file()
            && m.len() <= COMPARE_CONTENT_UP_TO
            && sha256_file(p).ok() != sha256_file(first).ok()
        {
            "contents"
        } else {
            continue;
        };
        return Some(format!(
            "{what} of {} differs from {}",
            p.display(),
            first.display()
        ));
    }
    None
}

/// Check DHT placement on a plain distribute volume's bricks: [`check_placement_of`] with one
/// brick per subvolume.
pub fn check_placement(bricks: &[PathBuf], volume: &str, allow_linkto: bool) -> Result<Placement> {
    check_placement_of(bricks, 1, volume, allow_linkto)
}

/// Check DHT placement on a volume's bricks, independently of the engine. The DHT subvolumes
/// are the replica sets of `replica` consecutive bricks (one brick each on plain distribute;
/// b1,b2 and b3,b4 on the default 2 x 2). Every directory exists on every brick with one gfid
/// and a layout, the bricks of a set carry the same layout and the sets' layouts cover the hash
/// space exactly once; every other entry is on every brick of a set or on none of them, its
/// copies equal (see `copies_differ`), and its name hashes (our own `dht_hash`) into the
/// range of the set that holds its data, or that set holds a linkto naming the subvolume
/// ([`dht_subvolume`]) where the data is. With `allow_linkto == false` (a fresh copy) no
/// linkto file may exist at all.
pub fn check_placement_of(
    bricks: &[PathBuf],
    replica: usize,
    volume: &str,
    allow_linkto: bool,
) -> Result<Placement> {
    ensure!(
        replica >= 1 && !bricks.is_empty() && bricks.len().is_multiple_of(replica),
        "{} bricks do not make replica sets of {replica}",
        bricks.len()
    );
    let label = |i: usize| subvolume_label(replica, i);
    let mut rep = Placement::default();
    let mut problems: Vec<String> = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        rep.dirs += 1;
        let layouts = match set_layouts(bricks, replica, &rel) {
            Ok(l) => l,
            Err(e) => {
                problems.push(format!("dir /{}: {e}", rel.display()));
                continue;
            }
        };
        if let Err(e) = ranges_cover(&layouts) {
            problems.push(format!("dir /{}: layouts {layouts:?}: {e}", rel.display()));
        }
        // name -> per brick (is_dir, linkto target)
        let mut entries: BTreeMap<std::ffi::OsString, Vec<Option<Slot>>> = BTreeMap::new();
        let mut dir_gfids: BTreeMap<std::ffi::OsString, BTreeSet<Vec<u8>>> = BTreeMap::new();
        for (i, b) in bricks.iter().enumerate() {
            for (name, meta) in list_dir(&b.join(&rel), rel.as_os_str().is_empty()) {
                let p = b.join(&rel).join(&name);
                let slot = entries
                    .entry(name.clone())
                    .or_insert_with(|| vec![None; bricks.len()]);
                if meta.is_dir() {
                    slot[i] = Some((true, None));
                    dir_gfids
                        .entry(name)
                        .or_default()
                        .insert(get_xattr(&p, "trusted.gfid").unwrap_or_default());
                } else if is_linkto(&p, &meta) {
                    let v = get_xattr(&p, "trusted.glusterfs.dht.linkto").unwrap_or_default();
                    let v = String::from_utf8_lossy(&v)
                        .trim_end_matches('\0')
                        .to_string();
                    slot[i] = Some((false, Some(v)));
                } else {
                    slot[i] = Some((false, None));
                }
            }
        }
        for (name, slots) in entries {
            let shown = format!("/{}", rel.join(&name).display());
            if slots.iter().flatten().any(|(d, _)| *d) {
                if slots.iter().any(|s| !matches!(s, Some((true, _)))) {
                    problems.push(format!(
                        "dir {shown} is missing (or not a dir) on some brick: {slots:?}"
                    ));
                }
                if dir_gfids.get(&name).is_some_and(|g| g.len() != 1) {
                    problems.push(format!(
                        "dir {shown} has different gfids on different bricks"
                    ));
                }
                stack.push(rel.join(&name));
                continue;
            }
            rep.files += 1;
            // One slot per subvolume: the copies in a replica set must agree.
            let mut sets: Vec<Option<Slot>> = Vec::new();
            for (s, copies) in slots.chunks(replica).enumerate() {
                if copies.iter().any(|c| *c != copies[0]) {
                    problems.push(format!(
                        "{shown}: the bricks of {} disagree: {copies:?}",
                        label(s)
                    ));
                } else if copies[0].is_some() && replica > 1 {
                    let paths: Vec<PathBuf> = bricks[s * replica..(s + 1) * replica]
                        .iter()
                        .map(|b| b.join(&rel).join(&name))
                        .collect();
                    if let Some(d) = copies_differ(&paths) {
                        problems.push(format!("{shown}: the copies in {}: {d}", label(s)));
                    }
                }
                sets.push(copies[0].clone());
            }
            let h = dht_hash(name.as_bytes());
            let Some(hs) = brick_for_hash(&layouts, h) else {
                problems.push(format!("{shown}: hash {h:#010x} in no range"));
                continue;
            };
            let data: Vec<usize> = (0..sets.len())
                .filter(|i| matches!(sets[*i], Some((false, None))))
                .collect();
            let links: Vec<usize> = (0..sets.len())
                .filter(|i| matches!(sets[*i], Some((false, Some(_)))))
                .collect();
            rep.linkto += links.len();
            if data.len() != 1 {
                problems.push(format!(
                    "{shown}: data on {} subvolumes ({:?}), expected 1",
                    data.len(),
                    data.iter().map(|i| label(*i)).collect::<Vec<_>>()
                ));
                continue;
            }
            let d = data[0];
            if !allow_linkto && !links.is_empty() {
                problems.push(format!(
                    "{shown}: unexpected linkto files on {:?}",
                    links.iter().map(|i| label(*i)).collect::<Vec<_>>()
                ));
            }
            if d == hs {
                if !links.is_empty() {
                    problems.push(format!(
                        "{shown}: on its hashed {} but stale linkto on {:?}",
                        label(hs),
                        links.iter().map(|i| label(*i)).collect::<Vec<_>>()
                    ));
                }
            } else {
                match &sets[hs] {
                    Some((false, Some(target))) if *target == dht_subvolume(volume, replica, d) => {
                    }
                    other => problems.push(format!(
                        "{shown}: hash {h:#010x} names {} but data is on {} and the hashed subvolume has {other:?}",
                        label(hs),
                        label(d)
                    )),
                }
            }
        }
        if problems.len() > 30 {
            break;
        }
    }
    if problems.is_empty() {
        Ok(rep)
    } else {
        bail!(
            "placement problems ({}):\n  {}",
            problems.len(),
            problems.join("\n  ")
        )
    }
}

/// Check one brick's gfids and handle tree: the root has the root gfid and the handle `../../..`;
/// every entry has a 16-byte `trusted.gfid`; files and symlinks have a handle that is a hard link
/// (same inode), directories a handle symlink `../../xy/zw/<parent-gfid>/<name>`; regular data
/// files carry `trusted.gfid2path.*` = `<parent-gfid>/<name>` when `want_gfid2path`.
/// Returns the number of entries checked.
pub fn check_gfids(brick: &Path, want_gfid2path: bool) -> Result<usize> {
    let mut problems = Vec::new();
    match get_xattr(brick, "trusted.gfid") {
        Some(g) if g == ROOT_GFID => {}
        other => problems.push(format!("root gfid is {:?}", other.map(hex::encode))),
    }
    let rh = handle_path(brick, &ROOT_GFID);
    match fs::read_link(&rh) {
        Ok(t) if t == Path::new("../../..") => {}
        other => problems.push(format!("root handle {}: {other:?}", rh.display())),
    }
    let mut n = 0;
    let mut stack = vec![(brick.to_path_buf(), ROOT_GFID.to_vec())];
    while let Some((dir, pgfid)) = stack.pop() {
        for (name, meta) in list_dir(&dir, dir == brick) {
            n += 1;
            let p = dir.join(&name);
            let Some(g) = get_xattr(&p, "trusted.gfid").filter(|g| g.len() == 16) else {
                problems.push(format!("{}: no 16-byte trusted.gfid", p.display()));
                continue;
            };
            let h = handle_path(brick, &g);
            if meta.is_dir() {
                let want = PathBuf::from(format!(
                    "../../{:02x}/{:02x}/{}/{}",
                    pgfid[0],
                    pgfid[1],
                    uuid_str(&pgfid),
                    name.to_string_lossy()
                ));
                match fs::read_link(&h) {
                    Ok(t) if t == want => {}
                    other => problems.push(format!(
                        "{}: dir handle {} is {other:?}, want {}",
                        p.display(),
                        h.display(),
                        want.display()
                    )),
                }
                stack.push((p, g));
            } else {
                match fs::symlink_metadata(&h) {
                    Ok(hm) if hm.ino() == meta.ino() && hm.dev() == meta.dev() => {}
                    other => problems.push(format!(
                        "{}: handle {} is not a hard link of it ({:?})",
                        p.display(),
                        h.display(),
                        other.map(|m| m.ino())
                    )),
                }
                if want_gfid2path && meta.is_file() && !is_linkto(&p, &meta) {
                    let want = format!("{}/{}", uuid_str(&pgfid), name.to_string_lossy());
                    let found = list_xattrs(&p)
                        .iter()
                        .filter(|k| k.starts_with("trusted.gfid2path."))
                        .any(|k| get_xattr(&p, k).is_some_and(|v| v == want.as_bytes()));
                    if !found {
                        problems.push(format!("{}: no trusted.gfid2path.* = {want}", p.display()));
                    }
                }
            }
            if problems.len() > 30 {
                break;
            }
        }
    }
    if problems.is_empty() {
        Ok(n)
    } else {
        bail!(
            "brick {}: gfid/handle problems ({}):\n  {}",
            brick.display(),
            problems.len(),
            problems.join("\n  ")
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Trees
// ---------------------------------------------------------------------------------------------

/// Write a deterministic test tree under `dir`: nested directories, many small files, a few larger
/// binary ones, awkward names (spaces, UTF-8, long, dot-files, rsync-style temporaries), symlinks,
/// an empty dir, assorted modes and old mtimes. No hard links (cp -a would recreate them as links,
/// which DHT may place with a linkto).
pub fn make_tree(dir: &Path, seed: u64, files: usize) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    fs::create_dir_all(dir)?;
    let mut dirs = vec![dir.to_path_buf()];
    for i in 0..12 {
        let parent = dirs[rng.gen_range(0..dirs.len())].clone();
        let d = parent.join(match i % 4 {
            0 => format!("dir{i}"),
            1 => format!("sub dir {i}"),
            2 => format!("répertoire-{i}"),
            _ => format!("d.{i}.x"),
        });
        fs::create_dir_all(&d)?;
        dirs.push(d);
    }
    fs::create_dir_all(dir.join("empty"))?;
    fs::create_dir_all(dir.join("a/b/c/d/e/f/g"))?;
    fs::write(dir.join("a/b/c/d/e/f/g/deep.txt"), b"deep\n")?;
    let names = |i: usize, rng: &mut StdRng| -> String {
        match i % 9 {
            0 => format!("file{i}.txt"),
            1 => format!("with space {i}.dat"),
            2 => format!("café-ünï-{i}"),
            3 => format!(".hidden{i}"),
            4 => format!(".rsync{i}.Ab3xYz"),
            5 => format!("{}{i}", "L".repeat(200)),
            6 => format!("UPPER_{i}.BIN"),
            7 => format!("{:08x}", rng.r#gen::<u32>()),
            _ => format!("f-{i}"),
        }
    };
    for i in 0..files {
        let d = &dirs[rng.gen_range(0..dirs.len())];
        let name = names(i, &mut rng);
        let size = match rng.gen_range(0..100) {
            0..=9 => 0,
            10..=79 => rng.gen_range(1..8192),
            80..=96 => rng.gen_range(8192..131_072),
            _ => rng.gen_range(1..4) << 20,
        };
        let mut data = vec![0u8; size];
        if i % 3 == 0 {
            rng.fill(&mut data[..]);
        } else {
            for (j, b) in data.iter_mut().enumerate() {
                *b = b"abcdefghijklmnopqrstuvwxyz\n"[(i + j) % 27];
            }
        }
        let p = d.join(&name);
        fs::write(&p, &data)?;
        let mode = [0o644, 0o600, 0o755, 0o640, 0o444][i % 5];
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))?;
        set_mtime(&p, 1_600_000_000 + (i as i64) * 3600)?;
    }
    std::os::unix::fs::symlink("file0.txt", dir.join("link-to-file0"))?;
    std::os::unix::fs::symlink("../a/b", dir.join("link-up"))?;
    std::os::unix::fs::symlink("does/not/exist", dir.join("dangling"))?;
    Ok(())
}

/// utimensat with both times.
pub fn set_mtime(p: &Path, secs: i64) -> Result<()> {
    let c = CString::new(p.as_os_str().as_bytes())?;
    let ts = [
        libc::timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
    ];
    // SAFETY: valid path and two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    ensure!(
        r == 0,
        "utimensat {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// `cp -a SRC/. DST/`.
pub fn cp_a(src: &Path, dst: &Path) -> Result<()> {
    fs::create_dir_all(dst)?;
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", src.display()))
            .arg(format!("{}/", dst.display())),
    )?;
    Ok(())
}

/// `diff -r A B` must report no difference (also compares symlink targets with --no-dereference).
pub fn diff_r(a: &Path, b: &Path) -> Result<()> {
    let out = run(Command::new("diff")
        .args(["-r", "--no-dereference"])
        .arg(a)
        .arg(b))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        let head: Vec<&str> = text.lines().take(40).collect();
        bail!(
            "diff -r {} {} differs:\n{}\n{}",
            a.display(),
            b.display(),
            head.join("\n"),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Compare two trees entry by entry: names, types, permission bits, sizes, contents (sha256),
/// symlink targets, and file mtimes (seconds). Stronger than `diff -r`, which ignores metadata.
pub fn compare_trees(a: &Path, b: &Path) -> Result<usize> {
    let mut problems = Vec::new();
    let mut n = 0;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let la = list_dir(&a.join(&rel), false);
        let lb = list_dir(&b.join(&rel), false);
        let na: BTreeSet<_> = la.iter().map(|e| e.0.clone()).collect();
        let nb: BTreeSet<_> = lb.iter().map(|e| e.0.clone()).collect();
        for x in na.symmetric_difference(&nb) {
            problems.push(format!(
                "/{}: only in {}",
                rel.join(x).display(),
                if na.contains(x) {
                    "the first"
                } else {
                    "the second"
                }
            ));
        }
        let mb: BTreeMap<_, _> = lb.into_iter().collect();
        for (name, ma) in la {
            let Some(mb) = mb.get(&name) else { continue };
            n += 1;
            let r = rel.join(&name);
            let (pa, pb) = (a.join(&r), b.join(&r));
            if ma.file_type() != mb.file_type() {
                problems.push(format!("/{}: types differ", r.display()));
                continue;
            }
            if ma.is_symlink() {
                if fs::read_link(&pa).ok() != fs::read_link(&pb).ok() {
                    problems.push(format!("/{}: symlink targets differ", r.display()));
                }
                continue;
            }
            if ma.permissions().mode() & 0o7777 != mb.permissions().mode() & 0o7777 {
                problems.push(format!(
                    "/{}: mode {:o} vs {:o}",
                    r.display(),
                    ma.permissions().mode() & 0o7777,
                    mb.permissions().mode() & 0o7777
                ));
            }
            if ma.is_dir() {
                stack.push(r);
                continue;
            }
            if ma.len() != mb.len() {
                problems.push(format!(
                    "/{}: size {} vs {}",
                    r.display(),
                    ma.len(),
                    mb.len()
                ));
            } else if sha256_file(&pa).ok() != sha256_file(&pb).ok() {
                problems.push(format!("/{}: contents differ", r.display()));
            }
            if ma.mtime() != mb.mtime() {
                problems.push(format!(
                    "/{}: mtime {} vs {}",
                    r.display(),
                    ma.mtime(),
                    mb.mtime()
                ));
            }
            if problems.len() > 30 {
                break;
            }
        }
    }
    if problems.is_empty() {
        Ok(n)
    } else {
        bail!(
            "trees {} and {} differ ({}):\n  {}",
            a.display(),
            b.display(),
            problems.len(),
            problems.join("\n  ")
        )
    }
}

/// The source tree the copy tests use: a snapshot of this repository's `engine/` (copied first,
/// because other work may edit it while a test runs) plus a generated tree.
pub fn source_tree(dst: &Path, files: usize) -> Result<()> {
    fs::create_dir_all(dst)?;
    cp_a(&workspace_root().join("engine"), &dst.join("engine"))?;
    make_tree(&dst.join("generated"), 42, files)
}

/// Rename `count` regular files found under `root` (sorted walk) to `NAME.moved` — through
/// whichever mount `root` is — and apply the same renames under `mirror`. DHT keeps data where
/// it is on rename and leaves a linkto on the new name's hashed brick, so this makes linkto files.
pub fn rename_some(root: &Path, mirror: &Path, count: usize) -> Result<usize> {
    let mut done = 0;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for (name, meta) in list_dir(&root.join(&rel), false) {
            let r = rel.join(&name);
            if meta.is_dir() {
                stack.push(r);
            } else if meta.is_file() && done < count {
                let mut to = name.clone();
                to.push(".moved");
                let rt = rel.join(&to);
                fs::rename(root.join(&r), root.join(&rt))
                    .with_context(|| format!("rename {}", root.join(&r).display()))?;
                fs::rename(mirror.join(&r), mirror.join(&rt))?;
                done += 1;
            }
        }
    }
    Ok(done)
}

/// Errno of an io::Error as a name, for messages.
pub fn errno_name(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOTCONN) => "ENOTCONN".into(),
        Some(libc::EIO) => "EIO".into(),
        Some(libc::ENOENT) => "ENOENT".into(),
        Some(libc::ESTALE) => "ESTALE".into(),
        Some(libc::EHOSTDOWN) => "EHOSTDOWN".into(),
        Some(libc::ETIMEDOUT) => "ETIMEDOUT".into(),
        Some(n) => format!("errno {n}"),
        None => e.to_string(),
    }
}

/// Write `len` bytes of a deterministic pseudo-random stream (xorshift, seeded) to `w` in 1 MiB
/// chunks, returning the hex sha256 of what was written: big files without big memory.
pub fn write_stream(w: &mut impl Write, len: u64, seed: u64) -> Result<String> {
    let mut h = Sha256::new();
    let mut s = seed | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        for c in buf[..n].chunks_mut(8) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let b = s.to_le_bytes();
            c.copy_from_slice(&b[..c.len()]);
        }
        w.write_all(&buf[..n])?;
        h.update(&buf[..n]);
        left -= n as u64;
    }
    w.flush()?;
    Ok(hex::encode(h.finalize()))
}

/// Read lines from a child's stdout until one satisfies `pred` (used for `brickd listening on`).
/// The reader keeps draining the pipe afterwards, so the child never writes into a closed pipe.
pub fn read_line_matching(
    r: impl Read + Send + 'static,
    timeout: Duration,
    pred: impl Fn(&str) -> bool + Send + 'static,
) -> Result<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut br = BufReader::new(r);
        let mut line = String::new();
        let mut sent = false;
        loop {
            line.clear();
            match br.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if !sent && pred(line.trim()) => {
                    sent = true;
                    let _ = tx.send(line.trim().to_string());
                }
                Ok(_) => {}
            }
        }
    });
    rx.recv_timeout(timeout)
        .map_err(|_| anyhow!("no matching line within {timeout:?}"))
}

/// Run named sub-checks, each isolated with catch_unwind, print PASS/FAIL per check, and panic at
/// the end listing every failure (so one broken operation does not hide the others).
pub struct Checks {
    failures: Vec<String>,
}

impl Default for Checks {
    fn default() -> Self {
        Self::new()
    }
}

impl Checks {
    pub fn new() -> Checks {
        Checks {
            failures: Vec::new(),
        }
    }

    pub fn check(&mut self, name: &str, f: impl FnOnce() -> Result<()>) {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        match r {
            Ok(Ok(())) => eprintln!("PASS {name}"),
            Ok(Err(e)) => {
                eprintln!("FAIL {name}: {e:#}");
                self.failures.push(format!("{name}: {e:#}"));
            }
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                eprintln!("FAIL {name}: panic {msg}");
                self.failures.push(format!("{name}: panic {msg}"));
            }
        }
    }

    pub fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} check(s) failed:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dm_hash_matches_glusterfs_vectors() {
        assert_eq!(dm_hash(b"a"), 0x3a17e4e6);
        assert_eq!(dm_hash(b"file1"), 0xa787fa82);
        assert_eq!(dm_hash(b"hello.txt"), 0xe68d61cc);
        assert_eq!(dm_hash(b"abcdefghijklmnopq"), 0xee27cbd1);
        assert_eq!(dm_hash("café".as_bytes()), 0x9e089967);
    }

    #[test]
    fn rsync_temporaries_hash_as_their_target() {
        assert_eq!(dht_hash(b".hello.txt.AbC123"), dm_hash(b"hello.txt"));
        assert_eq!(dht_hash(b".file1.x"), dm_hash(b"file1"));
        // No second dot, or nothing between: hashed as is.
        assert_eq!(dht_hash(b".bashrc"), dm_hash(b".bashrc"));
        assert_eq!(dht_hash(b"..x"), dm_hash(b"..x"));
        assert_eq!(dht_hash(b".x."), dm_hash(b".x."));
    }

    #[test]
    fn layout_ranges_must_cover_the_space() {
        let r = |s, e| Range {
            commit: 1,
            kind: 0,
            start: s,
            stop: e,
        };
        assert!(ranges_cover(&[r(0, 0x7fffffff), r(0x80000000, u32::MAX)]).is_ok());
        assert!(ranges_cover(&[r(0, 0x7ffffffe), r(0x80000000, u32::MAX)]).is_err());
        assert!(ranges_cover(&[r(0, 0x80000000), r(0x80000000, u32::MAX)]).is_err());
        assert!(ranges_cover(&[r(0, 0x7fffffff)]).is_err());
        assert_eq!(brick_for_hash(&[r(0, 9), r(10, u32::MAX)], 10), Some(1));
    }

    #[test]
    fn mountinfo_unescapes_octal() {
        assert_eq!(unescape_mountinfo("/tmp/a\\040b"), "/tmp/a b");
        assert_eq!(unescape_mountinfo("/x\\\\y"), "/x\\\\y");
    }
}
