//! Scale-out: three gatewayd nodes sharing one pool through etcd (`etcd_endpoints` in
//! gateway.toml), on 127.0.0.1-3 or, for the partition test, on a veth pair with node 3 in its
//! own network namespace. These tests show that:
//!
//! - every node sees the same pool (`pool list`, `peer status`, `peer probe`, `peer detach`),
//!   and a 3 x 2 volume whose replica pairs span two nodes each is served by every node: an S3
//!   key made on node 1 signs requests to node 2, objects PUT through node 2 read back through
//!   node 3's S3 and a native FUSE mount made from node 3, and an NFS file handle one node gave
//!   out works on another;
//! - `kill -9` of a node loses no acknowledged write made through the others while it is down,
//!   the pool shows it down, and once it is back the heal brings both copies of every pair to
//!   the same bytes;
//! - with etcd stopped, the data path (S3, NFS, FUSE, SMB) goes on and management fails with a
//!   503 naming etcd, changing nothing; when etcd returns, management works again without a
//!   restart;
//! - a node cut off by the network is like a killed one, and heals when the link returns.
//!
//! Each test runs 3 gatewayd and 6 brickd: the tests of this file run one at a time.

use anyhow::{Context, Result, anyhow, bail, ensure};
use e2e::pool::*;
use e2e::*;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::io::IntoRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread;
use std::time::Duration;
use tempfile::TempDir;

static SERIAL: Mutex<()> = Mutex::new(());

/// One test of this file at a time (a failed one poisons the lock: go on anyway).
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The programs a test drives; missing ones fail it (never a skip).
fn need_all(programs: &[&str]) {
    for p in programs {
        need(p);
    }
    let boto = Command::new("python3")
        .args(["-c", "import boto3"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(boto, "python3's boto3 is not installed (pip install boto3)");
}

const SEC: Duration = Duration::from_secs(1);
const LOCAL_IPS: [&str; 3] = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];

/// etcd and three nodes (and the partition when node 3 lives in a namespace). Fields drop in
/// order: the nodes first, while etcd and the link are still there.
struct Pool {
    nodes: [Node; 3],
    etcd: Etcd,
    partition: Option<Partition>,
    work: TempDir,
}

impl Pool {
    /// etcd on 127.0.0.1 and nodes 127.0.0.1, .2, .3.
    fn local() -> Result<Pool> {
        let etcd = Etcd::start()?;
        let n1 = Node::on(LOCAL_IPS[0], &etcd)?;
        let n2 = Node::on(LOCAL_IPS[1], &etcd)?;
        let n3 = Node::on(LOCAL_IPS[2], &etcd)?;
        Ok(Pool {
            nodes: [n1, n2, n3],
            etcd,
            partition: None,
            work: temp_dir("cluster"),
        })
    }

    /// etcd and nodes 1, 2 on the host side of a partition, node 3 inside its namespace.
    fn partitioned() -> Result<Pool> {
        let partition = Partition::new()?;
        let [h1, h2] = Partition::HOST_IPS;
        let etcd = Etcd::start_on(h1)?;
        let n1 = Node::on(h1, &etcd)?;
        let n2 = Node::on(h2, &etcd)?;
        let n3 = Node::start(NodeOpts {
            netns: Some(Partition::NS.to_string()),
            ..NodeOpts::new(Partition::NS_IP, &etcd.endpoints())
        })?;
        Ok(Pool {
            nodes: [n1, n2, n3],
            etcd,
            partition: Some(partition),
            work: temp_dir("cluster"),
        })
    }

    fn logs(&self) -> String {
        let [a, b, c] = &self.nodes;
        format!("{}\n{}", logs_of(&[a, b, c]), self.etcd.log_tail())
    }

    /// A test's result, with every node's logs printed when it failed (and, with `E2E_KEEP`
    /// set, the temp dirs kept).
    fn report(mut self, r: Result<()>) -> Result<()> {
        if r.is_err() {
            eprintln!("{}", self.logs());
            if std::env::var_os("E2E_KEEP").is_some() {
                for n in &mut self.nodes {
                    n.keep_on_drop();
                }
                self.etcd.keep_on_drop();
                let work = std::mem::replace(&mut self.work, temp_dir("cluster"));
                eprintln!("keeping {}", work.keep().display());
            }
        }
        r
    }
}

/// Polls `on`'s `pool list` until every (name, state) of `want` is in it.
fn wait_pool(on: &Node, want: &[(&str, &str)], timeout: Duration) -> Result<()> {
    let mut last = String::new();
    let what = format!("pool list on node {} to show {want:?}", on.name);
    wait_every(timeout, SEC, &what, || match on.pool_states() {
        Ok(s) => {
            last = format!("{s:?}");
            want.iter()
                .all(|(n, st)| s.get(*n).is_some_and(|x| x == st))
                .then_some(())
        }
        Err(e) => {
            last = format!("{e:#}");
            None
        }
    })
    .map_err(|e| anyhow!("{e}; last answer: {last}"))
}

/// Polls `on`'s `pool list` until every node of `names` is up.
fn wait_all_up(on: &Node, names: &[&str], timeout: Duration) -> Result<()> {
    let want: Vec<(&str, &str)> = names.iter().map(|n| (*n, "up")).collect();
    wait_pool(on, &want, timeout)
}

/// The six bricks of a 3 x 2 volume whose replica pairs span two nodes each: (1,2), (2,3),
/// (3,1). Returns the brick specs and the pairs' directories.
fn layout_3x2(nodes: [&Node; 3], volume: &str) -> (Vec<String>, Vec<(PathBuf, PathBuf)>) {
    let owners = [0, 1, 1, 2, 2, 0];
    let brick = |i: usize| format!("{volume}-b{}", i + 1);
    let specs = owners
        .iter()
        .enumerate()
        .map(|(i, &o)| nodes[o].brick(&brick(i)))
        .collect();
    let dirs: Vec<PathBuf> = owners
        .iter()
        .enumerate()
        .map(|(i, &o)| nodes[o].brick_dir(&brick(i)))
        .collect();
    let pairs = dirs
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    (specs, pairs)
}

/// `volume create VOLUME replica 2 BRICKS… force`.
fn create_args<'a>(volume: &'a str, specs: &'a [String]) -> Vec<&'a str> {
    let mut args = vec!["volume", "create", volume, "replica", "2"];
    args.extend(specs.iter().map(String::as_str));
    args.push("force");
    args
}

/// A 3 x 2 volume over the nodes created on node 1 and started, and all six bricks online in
/// `volume status` on node 2. Returns the replica pairs' directories.
fn create_3x2(nodes: [&Node; 3], volume: &str) -> Result<Vec<(PathBuf, PathBuf)>> {
    let (specs, pairs) = layout_3x2(nodes, volume);
    nodes[0].gwctl_ok(&create_args(volume, &specs))?;
    nodes[0].gwctl_ok(&["volume", "start", volume])?;
    wait_online(nodes[1], volume, 6, Duration::from_secs(120))?;
    Ok(pairs)
}

/// Polls `volume status VOLUME --json` on `on` until `n` bricks are online.
fn wait_online(on: &Node, volume: &str, n: usize, timeout: Duration) -> Result<()> {
    let mut last = String::new();
    let what = format!(
        "{n} bricks of {volume} online in volume status on node {}",
        on.name
    );
    wait_every(timeout, SEC, &what, || {
        let v = match on.gwctl_json(&["volume", "status", volume, "--json"]) {
            Ok(v) => v,
            Err(e) => {
                last = format!("{e:#}");
                return None;
            }
        };
        last = v.to_string();
        let online = v["bricks"]
            .as_array()?
            .iter()
            .filter(|b| b["online"] == true)
            .count();
        (online == n).then_some(())
    })
    .map_err(|e| anyhow!("{e}; last answer: {last}"))
}

/// Polls `volume heal VOLUME info --json` on `on` until nothing is pending and no brick is
/// reported disconnected.
fn wait_healed(on: &Node, volume: &str, timeout: Duration) -> Result<()> {
    let mut last = String::new();
    let what = format!("heal info of {volume} on node {} to reach 0", on.name);
    wait_every(timeout, 2 * SEC, &what, || {
        let v = match on.gwctl_json(&["volume", "heal", volume, "info", "--json"]) {
            Ok(v) => v,
            Err(e) => {
                last = format!("{e:#}");
                return None;
            }
        };
        last = v.to_string();
        let connected = v["replica_sets"].as_array().is_none_or(|sets| {
            sets.iter().all(|s| {
                s["bricks"]
                    .as_array()
                    .is_none_or(|b| b.iter().all(|b| b["connected"] != false))
            })
        });
        (v["pending"].as_u64() == Some(0) && connected).then_some(())
    })
    .map_err(|e| anyhow!("{e}; last answer: {last}"))
}

/// Both copies of every pair hold the same files, and every pair some (polled a little: the
/// last heals may still be writing when heal info reaches 0). Returns how many in all.
fn wait_copies_equal(pairs: &[(PathBuf, PathBuf)]) -> Result<usize> {
    let mut last = String::new();
    wait_every(
        Duration::from_secs(60),
        2 * SEC,
        "both copies of every pair to be equal",
        || {
            let mut total = 0;
            for (a, b) in pairs {
                match compare_copies(a, b) {
                    Ok(0) => {
                        last = format!("the pair {} / {} holds no file", a.display(), b.display());
                        return None;
                    }
                    Ok(n) => total += n,
                    Err(e) => {
                        last = format!("{e:#}");
                        return None;
                    }
                }
            }
            Some(total)
        },
    )
    .map_err(|e| anyhow!("{e}: {last}"))
}

/// Whether `text` names `word` as a whole word.
fn names_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '-' || c == '_'))
        .any(|w| w.trim_end_matches('.') == word)
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

type Key = (String, String);

/// `python3 tests/s3/cluster.py` against `node`'s S3 with `key`.
fn s3py(node: &Node, key: &Key) -> Result<Command> {
    let mut c = Command::new("python3");
    c.arg(workspace_root().join("tests/s3/cluster.py"))
        .env("S3_URL", node.s3_url()?)
        .env("AWS_ACCESS_KEY_ID", &key.0)
        .env("AWS_SECRET_ACCESS_KEY", &key.1)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    Ok(c)
}

/// `cluster.py put BUCKET PREFIX COUNT MANIFEST` through `node`.
fn s3_put(node: &Node, key: &Key, bucket: &str, prefix: &str, n: usize, m: &Path) -> Result<()> {
    let mut c = s3py(node, key)?;
    c.args(["put", bucket, prefix, &n.to_string()]).arg(m);
    run_timeout_ok(&mut c, Duration::from_secs(180)).with_context(|| {
        format!(
            "PUT of {n} objects into {bucket} through node {}",
            node.name
        )
    })?;
    Ok(())
}

/// `cluster.py check BUCKET MANIFEST` through `node`: every object reads back equal.
fn s3_check(node: &Node, key: &Key, bucket: &str, m: &Path) -> Result<()> {
    let mut c = s3py(node, key)?;
    c.args(["check", bucket]).arg(m);
    run_timeout_ok(&mut c, Duration::from_secs(300)).with_context(|| {
        format!(
            "objects of {bucket} ({}) read back through node {}",
            m.display(),
            node.name
        )
    })?;
    Ok(())
}

fn read_manifest(m: &Path) -> Result<BTreeMap<String, String>> {
    let v: serde_json::Value = serde_json::from_slice(&fs::read(m)?)?;
    let v = if v.get("acked").is_some() {
        &v["acked"]
    } else {
        &v
    };
    Ok(v.as_object()
        .context("a manifest is a JSON object")?
        .iter()
        .map(|(k, d)| (k.clone(), d.as_str().unwrap_or_default().to_string()))
        .collect())
}

fn write_manifest(m: &Path, files: &BTreeMap<String, String>) -> Result<()> {
    fs::write(m, serde_json::to_vec(files)?)?;
    Ok(())
}

/// Every file of a manifest under `dir` (a bucket seen through a mount) has its digest.
fn check_files(dir: &Path, files: &BTreeMap<String, String>) -> Result<()> {
    let mut bad = Vec::new();
    for (k, want) in files {
        let p = dir.join(k);
        match sha256_file(&p) {
            Ok(d) if d == *want => {}
            Ok(_) => bad.push(format!("{}: different", p.display())),
            Err(e) => bad.push(format!("{}: {e:#}", p.display())),
        }
    }
    ensure!(
        bad.is_empty(),
        "{} of {} files under {} do not read back:\n  {}",
        bad.len(),
        files.len(),
        dir.display(),
        bad[..bad.len().min(20)].join("\n  ")
    );
    Ok(())
}

/// tests/s3/cluster.py `load` until the stop file appears; killed if the test ends first.
struct S3Load {
    name: String,
    child: Option<Child>,
    result: PathBuf,
    log: PathBuf,
}

/// What a writer did: acknowledged writes (name → sha256, and when each began), writes that
/// failed (name, start, end, error), and reads that failed.
struct Writes {
    name: String,
    acked: BTreeMap<String, String>,
    acked_at: BTreeMap<String, f64>,
    write_failures: Vec<(String, f64, f64, String)>,
    read_failures: Vec<String>,
}

impl S3Load {
    fn start(node: &Node, key: &Key, bucket: &str, stop: &Path, work: &Path) -> Result<S3Load> {
        let name = format!("S3 load on {bucket} through node {}", node.name);
        let result = work.join(format!("load-{bucket}.json"));
        let log = work.join(format!("load-{bucket}.log"));
        let logf = File::create(&log)?;
        let mut c = s3py(node, key)?;
        c.args(["load", bucket, "", &stop.to_string_lossy()])
            .arg(&result)
            .env("WORKERS", "2")
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf);
        Ok(S3Load {
            name,
            child: Some(c.spawn().context("spawning tests/s3/cluster.py load")?),
            result,
            log,
        })
    }

    /// Waits for the load to end (after the stop file) and reads what it did.
    fn finish(mut self, timeout: Duration) -> Result<Writes> {
        let mut child = self.child.take().context("running")?;
        let st = wait_every(timeout, SEC / 4, &self.name, || child.try_wait().ok()?);
        let st = match st {
            Ok(st) => st,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{e}\n{}", tail(&self.log, 30));
            }
        };
        let out = tail(&self.log, 40);
        eprintln!("{}: {st}\n{out}", self.name);
        let v: serde_json::Value = serde_json::from_slice(
            &fs::read(&self.result)
                .with_context(|| format!("{} wrote no result ({st}):\n{out}", self.name))?,
        )?;
        let acked = read_manifest(&self.result)?;
        let acked_at = v["acked_at"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, t)| (k.clone(), t.as_f64().unwrap_or(0.0)))
                    .collect()
            })
            .unwrap_or_default();
        let write_failures = v["put_failures"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| {
                        (
                            f["key"].as_str().unwrap_or_default().to_string(),
                            f["start"].as_f64().unwrap_or(0.0),
                            f["end"].as_f64().unwrap_or(0.0),
                            f["error"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let read_failures = v["read_failures"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| f.as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Writes {
            name: self.name.clone(),
            acked,
            acked_at,
            write_failures,
            read_failures,
        })
    }
}

impl Drop for S3Load {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A writer on a FUSE mount: files f00000, f00001 … under `dir`, each created, written and
/// closed (a write is acknowledged when close(2) returned 0), then read back.
struct FuseWriter {
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    rx: mpsc::Receiver<Writes>,
}

impl FuseWriter {
    fn start(dir: &Path) -> FuseWriter {
        let stop = Arc::new(AtomicBool::new(false));
        let acked_n = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        let (s, a, d) = (stop.clone(), acked_n.clone(), dir.to_path_buf());
        thread::spawn(move || {
            let mut w = Writes {
                name: format!("FUSE writer in {}", d.display()),
                acked: BTreeMap::new(),
                acked_at: BTreeMap::new(),
                write_failures: Vec::new(),
                read_failures: Vec::new(),
            };
            let mut n = 0usize;
            while !s.load(Ordering::SeqCst) {
                let name = format!("f{n:05}");
                let p = d.join(&name);
                let size = [10, 4096, 70_000, 300_000][n % 4];
                let data: Vec<u8> = (0..size).map(|i| (i * 31 + n * 7) as u8).collect();
                let start = unix_now();
                let r = (|| -> std::io::Result<()> {
                    let mut f = File::create(&p)?;
                    f.write_all(&data)?;
                    // Close by hand: File's drop would swallow close's error.
                    let fd = f.into_raw_fd();
                    // SAFETY: fd is ours (into_raw_fd), closed once.
                    if unsafe { libc::close(fd) } != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                })();
                match r {
                    Ok(()) => {
                        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data));
                        w.acked.insert(name.clone(), digest);
                        w.acked_at.insert(name.clone(), start);
                        a.fetch_add(1, Ordering::SeqCst);
                        match fs::read(&p) {
                            Ok(b) if b == data => {}
                            Ok(b) => w
                                .read_failures
                                .push(format!("{name}: read back {} bytes, different", b.len())),
                            Err(e) => w.read_failures.push(format!("{name}: {e}")),
                        }
                    }
                    Err(e) => w
                        .write_failures
                        .push((name, start, unix_now(), e.to_string())),
                }
                n += 1;
                thread::sleep(Duration::from_millis(20));
            }
            let _ = tx.send(w);
        });
        FuseWriter {
            dir: dir.to_path_buf(),
            stop,
            acked: acked_n,
            rx,
        }
    }

    fn acked(&self) -> usize {
        self.acked.load(Ordering::SeqCst)
    }

    fn finish(self, timeout: Duration) -> Result<Writes> {
        self.stop.store(true, Ordering::SeqCst);
        self.rx.recv_timeout(timeout).map_err(|_| {
            anyhow!(
                "the FUSE writer in {} did not stop within {timeout:?} (a file-system call hangs)",
                self.dir.display()
            )
        })
    }
}

impl Drop for FuseWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// No read of an acknowledged write failed; a write that failed overlapped the fault window
/// (`from`..`to`, unix seconds); writes were acknowledged after `went_on` (the writer was not
/// stuck once the fault was seen).
fn check_writes(w: &Writes, from: f64, to: f64, went_on: f64) -> Result<()> {
    ensure!(
        w.read_failures.is_empty(),
        "{}: {} reads of acknowledged writes failed:\n  {}",
        w.name,
        w.read_failures.len(),
        w.read_failures[..w.read_failures.len().min(20)].join("\n  ")
    );
    let outside: Vec<String> = w
        .write_failures
        .iter()
        .filter(|(_, start, end, _)| *end < from || *start > to)
        .map(|(k, s, e, err)| format!("{k} {s:.1}..{e:.1}: {err}"))
        .collect();
    ensure!(
        outside.is_empty(),
        "{}: writes failed outside the fault window {from:.1}..{to:.1}:\n  {}",
        w.name,
        outside[..outside.len().min(20)].join("\n  ")
    );
    if !w.write_failures.is_empty() {
        eprintln!(
            "{}: {} writes failed in the fault window (not acknowledged, allowed)",
            w.name,
            w.write_failures.len()
        );
    }
    let after = w.acked_at.values().filter(|t| **t > went_on).count();
    ensure!(
        after > 0,
        "{}: no write was acknowledged after {went_on:.1}, when the fault was seen ({} in all)",
        w.name,
        w.acked.len()
    );
    Ok(())
}

/// `python3 tests/nfs/handles.py ARGS…` (stdout).
fn handles_py(args: &[&str]) -> Result<String> {
    run_timeout_ok(
        Command::new("python3")
            .arg(workspace_root().join("tests/nfs/handles.py"))
            .args(args),
        Duration::from_secs(60),
    )
}

/// An NFS handle of `path` from `from`'s NFS, used for GETATTR + READ on `on`'s NFS: the bytes
/// must equal `want`.
fn handle_works_across(from: &Node, on: &Node, path: &str, want: &Path, out: &Path) -> Result<()> {
    let a = from.nfs_addr()?;
    let fh = handles_py(&["lookup", &a.ip().to_string(), &a.port().to_string(), path])?;
    let fh = fh.trim();
    let b = on.nfs_addr()?;
    handles_py(&[
        "read",
        &b.ip().to_string(),
        &b.port().to_string(),
        fh,
        &out.to_string_lossy(),
    ])
    .with_context(|| {
        format!(
            "the handle {fh} of {path} from node {}'s NFS, used on node {}'s",
            from.name, on.name
        )
    })?;
    ensure!(
        sha256_file(out)? == sha256_file(want)?,
        "{path} read with node {}'s handle on node {} differs from what was written",
        from.name,
        on.name
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// a. One pool, every volume everywhere; kill -9 of a node
// ---------------------------------------------------------------------------------------------

#[test]
fn three_nodes_share_one_pool_and_serve_every_volume() -> Result<()> {
    let _serial = serial();
    need_all(&["etcd", "python3", "fusermount3"]);
    let mut pool = Pool::local()?;
    let r = shared_pool_then_kill(&mut pool);
    pool.report(r)
}

fn shared_pool_then_kill(p: &mut Pool) -> Result<()> {
    let work = p.work.path().to_path_buf();
    let [n1, n2, n3] = &mut p.nodes;

    // The pool, as node 3 and node 1 see it.
    let ips = LOCAL_IPS;
    wait_pool(
        n3,
        &[(ips[0], "up"), (ips[1], "up"), (ips[2], "up")],
        Duration::from_secs(60),
    )?;
    let v = n3.pool()?;
    ensure!(
        v["mode"] == "etcd",
        "pool list on node 3: mode is not etcd: {v}"
    );
    ensure!(
        v["node"] == ips[2],
        "pool list on node 3 names another node: {v}"
    );
    let this: Vec<&serde_json::Value> = v["nodes"]
        .as_array()
        .context("nodes")?
        .iter()
        .filter(|n| n["this_node"] == true)
        .collect();
    ensure!(
        this.len() == 1 && this[0]["name"] == ips[2],
        "pool list on node 3 must mark node 3 alone as this node: {v}"
    );
    let peers = wait_every(
        Duration::from_secs(60),
        SEC,
        "peer status on node 1",
        || {
            let out = n1.gwctl_ok(&["peer", "status"]).ok()?;
            (out.contains("Number of Peers: 2")
                && out.matches("State: Peer in Cluster (Connected)").count() == 2)
                .then_some(out)
        },
    )?;
    for (ip, want) in [(ips[0], false), (ips[1], true), (ips[2], true)] {
        ensure!(
            peers.contains(&format!("Hostname: {ip}\n")) == want,
            "peer status on node 1 should {}list {ip}:\n{peers}",
            if want { "" } else { "not " }
        );
    }
    let probe = n1.gwctl_ok(&["peer", "probe", ips[1]])?;
    ensure!(
        probe.contains("success"),
        "peer probe {} on node 1 said {probe:?}",
        ips[1]
    );
    let out = n1.gwctl(&["peer", "probe", "127.0.0.9"])?;
    ensure!(
        !out.status.success() && output_text(&out).contains("127.0.0.9"),
        "peer probe of a host no gatewayd registered must fail naming it: {} {}",
        out.status,
        output_text(&out)
    );

    // A 3 x 2 volume made from node 1, started, seen from node 2.
    let nodes = [&*n1, &*n2, &*n3];
    let pairs = create_3x2(nodes, "vol")?;
    let out = n1.gwctl(&["peer", "detach", ips[1]])?;
    ensure!(
        !out.status.success() && names_word(&output_text(&out), "vol"),
        "peer detach of a node holding bricks of vol must be refused naming vol: {} {}",
        out.status,
        output_text(&out)
    );
    ensure!(
        n1.pool_states()?.contains_key(ips[1]),
        "a refused peer detach removed {} from the pool",
        ips[1]
    );

    // S3: a key made on node 1 signs requests to node 2; node 3 serves the same objects.
    let key = n1.s3_key("k1")?;
    let shared = work.join("shared.json");
    s3_put(n2, &key, "shared", "obj/", 50, &shared)?;
    s3_check(n3, &key, "shared", &shared)?;
    let mnt = work.join("mnt3");
    let m3 = n3.mount("vol", &mnt)?;
    check_files(&mnt.join("shared"), &read_manifest(&shared)?)
        .context("objects PUT through node 2, read through a FUSE mount made from node 3")?;

    // NFS: a handle from one node works on another.
    fs::create_dir_all(mnt.join("nfs-handles"))?;
    let data = mnt.join("nfs-handles/data.bin");
    random_file(&data, 200_003, 7)?;
    handle_works_across(
        n2,
        n3,
        "/nfs-handles/data.bin",
        &data,
        &work.join("nfs1.out"),
    )?;
    let obj = mnt.join("shared/obj/005");
    handle_works_across(n3, n2, "/shared/obj/005", &obj, &work.join("nfs2.out"))?;

    // kill -9 of node 1 under writers through nodes 2 and 3.
    let stop = work.join("stop");
    let l2 = S3Load::start(n2, &key, "load2", &stop, &work)?;
    let l3 = S3Load::start(n3, &key, "load3", &stop, &work)?;
    let live = mnt.join("fuse-live");
    fs::create_dir_all(&live)?;
    let fw = FuseWriter::start(&live);
    wait_every(
        Duration::from_secs(60),
        SEC,
        "the FUSE writer to get going",
        || (fw.acked() >= 5).then_some(()),
    )?;
    thread::sleep(3 * SEC);
    let killed_at = unix_now();
    n1.kill9();
    wait_pool(n2, &[(ips[0], "down")], Duration::from_secs(60))
        .context("node 1 was killed: pool list on node 2 must show it down")?;
    let seen_down = unix_now();
    thread::sleep(10 * SEC);
    fs::write(&stop, b"")?;
    let w2 = l2.finish(Duration::from_secs(300))?;
    let w3 = l3.finish(Duration::from_secs(300))?;
    let wf = fw.finish(Duration::from_secs(120))?;
    let window = (killed_at - 1.0, seen_down + 15.0);
    for w in [&w2, &w3, &wf] {
        check_writes(w, window.0, window.1, seen_down)?;
    }
    // Every acknowledged write reads back through node 2 and node 3, by S3 and the mount.
    let (m2, m3f, mf) = (
        work.join("acked2.json"),
        work.join("acked3.json"),
        work.join("ackedf.json"),
    );
    write_manifest(&m2, &w2.acked)?;
    write_manifest(&m3f, &w3.acked)?;
    write_manifest(&mf, &wf.acked)?;
    for n in [&*n2, &*n3] {
        s3_check(n, &key, "load2", &m2)?;
        s3_check(n, &key, "load3", &m3f)?;
        s3_check(n, &key, "fuse-live", &mf)?;
        s3_check(n, &key, "shared", &shared)?;
    }
    check_files(&mnt.join("load2"), &w2.acked)?;
    check_files(&mnt.join("load3"), &w3.acked)?;
    check_files(&live, &wf.acked)?;

    // Node 1 comes back: in the pool, its bricks online, healed, both copies equal.
    n1.start_again()?;
    wait_pool(
        n2,
        &[(ips[0], "up"), (ips[1], "up"), (ips[2], "up")],
        Duration::from_secs(60),
    )
    .context("node 1 started again: pool list on node 2 must show it up")?;
    wait_online(n2, "vol", 6, Duration::from_secs(120))?;
    wait_healed(n3, "vol", Duration::from_secs(180))?;
    let files = wait_copies_equal(&pairs)?;
    ensure!(
        files > w2.acked.len(),
        "the bricks hold {files} files in all, fewer than were written"
    );
    check_files(&live, &wf.acked)?;
    drop(m3);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// b. etcd stopped: the data path goes on, management fails, then recovers
// ---------------------------------------------------------------------------------------------

#[test]
fn etcd_stopped_data_path_goes_on_management_fails_then_recovers() -> Result<()> {
    let _serial = serial();
    need_all(&[
        "etcd",
        "python3",
        "fusermount3",
        "smbd",
        "smbclient",
        "nfs-cp",
        "nfs-cat",
    ]);
    let mut pool = Pool::local()?;
    let r = etcd_outage(&mut pool);
    pool.report(r)
}

/// `smbclient -p PORT //IP/SHARE -U AUTH -m SMB3 -c CMDS` against `node`; must succeed
/// without an NT_STATUS_ error.
fn smbclient_ok(node: &Node, share: &str, auth: &str, cmds: &str) -> Result<String> {
    let a = node.smb_addr()?;
    let out = run_timeout(
        Command::new("smbclient")
            .arg("-p")
            .arg(a.port().to_string())
            .arg(format!("//{}/{share}", a.ip()))
            .arg("-U")
            .arg(auth)
            .args(["-m", "SMB3", "-c", cmds]),
        Duration::from_secs(60),
    )?;
    let text = output_text(&out);
    ensure!(
        out.status.success() && !text.contains("NT_STATUS_"),
        "smbclient //{}/{share} on node {} -c {cmds:?} failed ({}):\n{text}",
        a.ip(),
        node.name,
        out.status
    );
    Ok(text)
}

/// A file-system call on a mount, given up on after a minute.
fn on_mount<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    match timed(Duration::from_secs(60), f).0 {
        Some(r) => r.with_context(|| what.to_string()),
        None => bail!("{what}: no answer within 60 s"),
    }
}

fn etcd_outage(p: &mut Pool) -> Result<()> {
    let work = p.work.path().to_path_buf();
    let [n1, n2, n3] = &p.nodes;
    let ips = LOCAL_IPS;
    wait_all_up(n1, &ips, Duration::from_secs(60))?;
    let nodes = [n1, n2, n3];
    create_3x2(nodes, "vol")?;
    let key = n1.s3_key("k1")?;
    n1.gwctl_ok(&[
        "smb",
        "user",
        "add",
        "alice",
        "--password",
        "alice-secret-1",
    ])?;
    n1.gwctl_ok(&[
        "smb", "share", "add", "docs", "--volume", "vol", "--path", "/docs", "--user", "alice",
    ])?;
    let before = work.join("before.txt");
    fs::write(&before, "written over SMB before etcd stopped\n")?;
    let put_before = format!("put {} before.txt", before.display());
    let mut last = String::new();
    wait_every(
        Duration::from_secs(60),
        SEC,
        "smbd of node 1 to serve docs",
        || {
            smbclient_ok(n1, "docs", "alice%alice-secret-1", &put_before)
                .map_err(|e| last = format!("{e:#}"))
                .ok()
        },
    )
    .map_err(|e| anyhow!("{e}: {last}"))?;
    // Every node serves the pool's shares, each on its own loopback address.
    let back = work.join("before.back");
    let get_before = format!("get before.txt {}", back.display());
    wait_every(
        Duration::from_secs(60),
        SEC,
        "smbd of node 2 to serve docs",
        || {
            smbclient_ok(n2, "docs", "alice%alice-secret-1", &get_before)
                .map_err(|e| last = format!("{e:#}"))
                .ok()
        },
    )
    .map_err(|e| anyhow!("{e}: {last}"))?;
    ensure!(
        fs::read(&back)? == fs::read(&before)?,
        "a file put over SMB on node 1 came back different from node 2"
    );
    let mnt = work.join("mnt3");
    let _m3 = n3.mount("vol", &mnt)?;
    let s3_before = work.join("s3-before.json");
    s3_put(n1, &key, "during", "before/", 5, &s3_before)?;

    p.etcd.stop()?;
    let [n1, n2, n3] = &p.nodes;

    // S3 through node 1 and node 2, each read back through both.
    let (a, b) = (work.join("s3-n1.json"), work.join("s3-n2.json"));
    s3_put(n1, &key, "during", "n1/", 10, &a).context("etcd stopped: S3 PUT through node 1")?;
    s3_put(n2, &key, "during", "n2/", 10, &b).context("etcd stopped: S3 PUT through node 2")?;
    for n in [n1, n2] {
        for m in [&a, &b, &s3_before] {
            s3_check(n, &key, "during", m).context("etcd stopped: S3 GET")?;
        }
    }
    // NFS through node 2.
    let local = work.join("nfs.bin");
    random_file(&local, 300_001, 3)?;
    let url = n2.nfs_url("/nfs-during.bin")?;
    run_timeout_ok(
        Command::new("nfs-cp").arg(&local).arg(&url),
        Duration::from_secs(60),
    )
    .context("etcd stopped: nfs-cp to node 2")?;
    let out = run_timeout(Command::new("nfs-cat").arg(&url), Duration::from_secs(60))?;
    ensure!(
        out.status.success() && out.stdout == fs::read(&local)?,
        "etcd stopped: nfs-cat of {url} did not return what nfs-cp wrote ({}, {} bytes): {}",
        out.status,
        out.stdout.len(),
        String::from_utf8_lossy(&out.stderr)
    );
    // The FUSE mount made from node 3.
    let f = mnt.join("fuse-during.txt");
    let body = b"written through FUSE while etcd is stopped\n".to_vec();
    let (f2, body2) = (f.clone(), body.clone());
    on_mount("etcd stopped: FUSE write", move || fs::write(&f2, &body2))?;
    let f2 = f.clone();
    let got = on_mount("etcd stopped: FUSE read", move || fs::read(&f2))?;
    ensure!(got == body, "etcd stopped: a FUSE file read back different");
    // SMB on node 1.
    let smb_in = work.join("smb.bin");
    random_file(&smb_in, 400_009, 4)?;
    let smb_out = work.join("smb.back");
    smbclient_ok(
        n1,
        "docs",
        "alice%alice-secret-1",
        &format!(
            "put {} smb-during.bin; get smb-during.bin {}",
            smb_in.display(),
            smb_out.display()
        ),
    )
    .context("etcd stopped: SMB put and get on node 1")?;
    ensure!(
        sha256_file(&smb_out)? == sha256_file(&smb_in)?,
        "etcd stopped: a file put over SMB came back different"
    );

    // Management fails, naming etcd, and changes nothing.
    let (specs, _) = layout_3x2([n1, n2, n3], "v2");
    let out = n1.gwctl_within(&create_args("v2", &specs), Duration::from_secs(120))?;
    let text = output_text(&out);
    ensure!(
        !out.status.success() && text.contains("etcd") && text.contains("503"),
        "etcd stopped: volume create v2 must fail with HTTP 503 naming etcd: {} {text}",
        out.status
    );

    // etcd back (same ports, same data): management works again, nothing restarted.
    let pids: Vec<Option<i32>> = p.nodes.iter().map(|n| n.pid()).collect();
    p.etcd.start_again()?;
    let [n1, n2, n3] = &p.nodes;
    let mut last = String::new();
    let info = wait_every(
        Duration::from_secs(120),
        SEC,
        "node 1's management to answer again after etcd returned",
        || {
            let out = n1.gwctl(&["volume", "info", "v2"]).ok()?;
            let text = output_text(&out);
            last = text.clone();
            (!text.contains("503")).then_some((out.status.success(), text))
        },
    )
    .map_err(|e| anyhow!("{e}; last answer: {last}"))?;
    ensure!(
        !info.0 && info.1.contains("does not exist"),
        "the volume create refused while etcd was stopped must have made nothing: volume info v2 says {}",
        info.1
    );
    let args = create_args("v2", &specs);
    wait_every(
        Duration::from_secs(120),
        2 * SEC,
        "volume create v2 after etcd returned",
        || {
            let out = n1.gwctl(&args).ok()?;
            last = output_text(&out);
            (out.status.success() || !last.contains("503")).then_some(())
        },
    )
    .map_err(|e| anyhow!("{e}; last answer: {last}"))?;
    ensure!(
        n1.gwctl(&["volume", "info", "v2"])?.status.success(),
        "etcd is back: volume create v2 failed: {last}"
    );
    n1.gwctl_ok(&["volume", "start", "v2"])?;
    wait_online(n2, "v2", 6, Duration::from_secs(120))?;
    wait_all_up(n1, &ips, Duration::from_secs(60))?;
    let now: Vec<Option<i32>> = p.nodes.iter().map(|n| n.pid()).collect();
    ensure!(pids == now, "a gatewayd was restarted: {pids:?} -> {now:?}");
    // What was written while etcd was stopped is all there.
    let got = fs::read(mnt.join("nfs-during.bin"))?;
    ensure!(
        got == fs::read(&local)?,
        "the file written over NFS during the outage differs through FUSE"
    );
    ensure!(
        sha256_file(&mnt.join("docs/smb-during.bin"))? == sha256_file(&smb_in)?,
        "the file written over SMB during the outage differs through FUSE"
    );
    s3_check(n3, &key, "during", &a)?;
    s3_check(n3, &key, "during", &b)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// c. A network partition
// ---------------------------------------------------------------------------------------------

#[test]
fn a_partitioned_node_is_like_a_killed_node_and_heals_when_the_link_returns() -> Result<()> {
    let _serial = serial();
    need_all(&["etcd", "ip", "python3"]);
    let mut pool = Pool::partitioned()?;
    let r = partition_then_heal(&mut pool);
    pool.report(r)
}

fn partition_then_heal(p: &mut Pool) -> Result<()> {
    let work = p.work.path().to_path_buf();
    let [h1, h2] = Partition::HOST_IPS;
    let ips = [h1, h2, Partition::NS_IP];
    let [n1, n2, n3] = &p.nodes;
    wait_all_up(n1, &ips, Duration::from_secs(60))?;
    let pairs = create_3x2([n1, n2, n3], "vol")?;
    let key = n1.s3_key("k1")?;
    let stop = work.join("stop");
    let l1 = S3Load::start(n1, &key, "part1", &stop, &work)?;
    let l2 = S3Load::start(n2, &key, "part2", &stop, &work)?;
    thread::sleep(5 * SEC);

    let cut_at = unix_now();
    p.partition.as_mut().context("partition")?.cut()?;
    let [n1, n2, _] = &p.nodes;
    wait_pool(n1, &[(Partition::NS_IP, "down")], Duration::from_secs(60))
        .context("node 3 was cut off: pool list on node 1 must show it down")?;
    let seen_down = unix_now();
    thread::sleep(10 * SEC);
    fs::write(&stop, b"")?;
    let w1 = l1.finish(Duration::from_secs(300))?;
    let w2 = l2.finish(Duration::from_secs(300))?;
    for w in [&w1, &w2] {
        check_writes(w, cut_at - 1.0, seen_down + 15.0, seen_down)?;
    }
    // While node 3 is still cut off, every acknowledged write reads back through 1 and 2.
    let (m1, m2) = (work.join("acked1.json"), work.join("acked2.json"));
    write_manifest(&m1, &w1.acked)?;
    write_manifest(&m2, &w2.acked)?;
    for n in [n1, n2] {
        s3_check(n, &key, "part1", &m1)?;
        s3_check(n, &key, "part2", &m2)?;
    }

    p.partition.as_mut().context("partition")?.restore()?;
    let [n1, n2, n3] = &p.nodes;
    wait_all_up(n1, &ips, Duration::from_secs(60))
        .context("the link is back: pool list on node 1 must show node 3 up")?;
    wait_online(n1, "vol", 6, Duration::from_secs(120))?;
    wait_healed(n1, "vol", Duration::from_secs(180))?;
    let files = wait_copies_equal(&pairs)?;
    ensure!(
        files >= w1.acked.len() + w2.acked.len(),
        "the bricks hold {files} files in all, fewer than were acknowledged"
    );
    for n in [n2, n3] {
        s3_check(n, &key, "part1", &m1)?;
        s3_check(n, &key, "part2", &m2)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The harness itself: etcd stops and starts again with its data; the partition cuts both ways
// ---------------------------------------------------------------------------------------------

/// A child process killed when the test ends.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn connects(addr: SocketAddr) -> std::io::Result<()> {
    TcpStream::connect_timeout(&addr, 2 * SEC).map(|_| ())
}

/// A TCP connect from inside the namespace (2 s at most).
fn ns_connects(part: &Partition, addr: SocketAddr) -> bool {
    let script = format!(
        "import socket; socket.create_connection(('{}', {}), timeout=2)",
        addr.ip(),
        addr.port()
    );
    let mut c = part.exec("python3");
    c.args(["-c", &script]);
    run_timeout(&mut c, Duration::from_secs(20)).is_ok_and(|o| o.status.success())
}

/// `etcdctl get k` from inside the namespace.
fn ns_etcd_get(part: &Partition, etcd: &Etcd) -> Option<String> {
    let mut c = part.exec("etcdctl");
    c.env("ETCDCTL_API", "3")
        .arg("--endpoints")
        .arg(etcd.endpoint())
        .args(["--dial-timeout=2s", "--command-timeout=3s"])
        .args(["get", "k", "--print-value-only"]);
    let out = run_timeout(&mut c, Duration::from_secs(20)).ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn harness_etcd_restarts_and_partition_cuts() -> Result<()> {
    let _serial = serial();
    for p in ["etcd", "etcdctl", "ip", "python3"] {
        need(p);
    }
    let mut part = Partition::new()?;
    let mut etcd = Etcd::start_on(Partition::HOST_IPS[0])?;
    let put = etcd.etcdctl(&["put", "k", "v"])?;
    ensure!(put.status.success(), "etcdctl put: {}", output_text(&put));

    // Listeners on each side: a server in the namespace, one on the host's second address.
    let host_l = TcpListener::bind((Partition::HOST_IPS[1], 0))?;
    let host_addr = host_l.local_addr()?;
    let ns_port = free_port();
    let ns_addr: SocketAddr = format!("{}:{ns_port}", Partition::NS_IP).parse()?;
    let dir = temp_dir("partition");
    let mut c = part.exec("python3");
    c.args([
        "-m",
        "http.server",
        &ns_port.to_string(),
        "--bind",
        Partition::NS_IP,
    ])
    .current_dir(dir.path())
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let _server = Reaper(c.spawn()?);
    wait_for(
        Duration::from_secs(20),
        "the server in the namespace",
        || connects(ns_addr).ok(),
    )?;

    // Linked: both directions, and etcd from inside.
    ensure!(ns_connects(&part, host_addr), "namespace -> host fails");
    ensure!(
        ns_etcd_get(&part, &etcd).as_deref() == Some("v"),
        "etcd is not reachable from the namespace"
    );

    part.cut()?;
    let e = connects(ns_addr).err();
    ensure!(
        e.as_ref()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut),
        "cut: host -> namespace must time out, got {e:?}"
    );
    ensure!(
        !ns_connects(&part, host_addr),
        "cut: namespace -> host works"
    );
    ensure!(
        ns_etcd_get(&part, &etcd).is_none(),
        "cut: etcd still answers the namespace"
    );
    ensure!(
        ns_connects(&part, ns_addr),
        "cut: the namespace no longer reaches its own address"
    );
    connects(host_addr).context("cut: the host no longer reaches its own addresses")?;
    ensure!(etcd.is_healthy(), "cut: etcd is not healthy from the host");

    part.restore()?;
    wait_for(
        Duration::from_secs(20),
        "host -> namespace after restore",
        || connects(ns_addr).ok(),
    )?;
    ensure!(
        ns_connects(&part, host_addr),
        "restored: namespace -> host fails"
    );
    ensure!(
        ns_etcd_get(&part, &etcd).as_deref() == Some("v"),
        "restored: etcd is not reachable from the namespace"
    );

    // etcd stops, and starts again on the same port with its data.
    etcd.stop()?;
    ensure!(!etcd.is_healthy(), "etcd still answers after stop");
    ensure!(
        !etcd
            .etcdctl(&["get", "k", "--command-timeout=2s"])?
            .status
            .success(),
        "etcdctl get works with etcd stopped"
    );
    etcd.start_again()?;
    let get = etcd.etcdctl(&["get", "k", "--print-value-only"])?;
    ensure!(
        get.status.success() && String::from_utf8_lossy(&get.stdout).trim() == "v",
        "etcd started again lost its data: {}",
        output_text(&get)
    );
    ensure!(etcd.is_running(), "etcd is not running");
    drop(host_l);
    Ok(())
}
