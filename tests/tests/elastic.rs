//! Elastic volumes on the default 2 x 2 volume, driven through gwctl with FUSE and S3 clients
//! running throughout: add-brick + rebalance to 3 x 2, remove-brick back to 2 x 2, a
//! rebalance cut by `kill -9` of gatewayd that resumes, and replace-brick under writes.

use anyhow::{Context, Result, bail};
use e2e::*;
use engine::xlators::cluster::distribute::{hash::name_hash, layout};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

fn digest(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// `count` files in nested directories under `top` (d<i>/s<j>/f<k>); a few of them MiB-sized
/// (up to 10 MiB), most small. Returns path → sha256.
fn populate(top: &Path, count: usize, big: usize) -> Result<BTreeMap<PathBuf, String>> {
    let mut out = BTreeMap::new();
    for n in 0..count {
        let dir = top.join(format!("d{}/s{}", n % 10, (n / 10) % 10));
        fs::create_dir_all(&dir)?;
        let size = if n < big {
            (n % 10 + 1) << 20
        } else {
            [0, 1, 4096, 20_000, 65_536][n % 5] + n
        };
        let data: Vec<u8> = (0..size).map(|i| (i * 31 + n * 7) as u8).collect();
        let p = dir.join(format!("f{n}"));
        fs::write(&p, &data)?;
        out.insert(p, digest(&data));
    }
    Ok(out)
}

fn check_all(files: &BTreeMap<PathBuf, String>) -> Result<()> {
    for (p, want) in files {
        let got = digest(&fs::read(p).with_context(|| format!("reading {}", p.display()))?);
        if got != *want {
            bail!("{} changed", p.display());
        }
    }
    Ok(())
}

/// A FUSE writer and reader running until stopped: new files under `live/`, each read back,
/// and random reads of the populated ones; every failure counted.
struct FuseLoad {
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<BTreeMap<PathBuf, String>>>,
}

impl FuseLoad {
    fn start(mnt: &Path, existing: &BTreeMap<PathBuf, String>) -> FuseLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(AtomicU64::new(0));
        let (s, f, mnt) = (stop.clone(), failures.clone(), mnt.to_path_buf());
        let existing: Vec<(PathBuf, String)> = existing
            .iter()
            .map(|(p, d)| (p.clone(), d.clone()))
            .collect();
        let thread = std::thread::spawn(move || {
            let live = mnt.join("live");
            let mut written = BTreeMap::new();
            if let Err(e) = fs::create_dir_all(&live) {
                eprintln!("fuse load: mkdir live: {e}");
                f.fetch_add(1, Ordering::SeqCst);
            }
            let mut n = 0usize;
            while !s.load(Ordering::SeqCst) {
                let p = live.join(format!("l{n}"));
                let data = format!("live file {n} ").repeat(n % 500 + 1).into_bytes();
                let r = fs::write(&p, &data)
                    .map_err(|e| format!("write: {e}"))
                    .and_then(|()| fs::read(&p).map_err(|e| format!("read: {e}")))
                    .and_then(|b| {
                        (b == data).then_some(()).ok_or_else(|| {
                            format!("read {} bytes back, wrote {}", b.len(), data.len())
                        })
                    });
                match r {
                    Ok(()) => {
                        written.insert(p.clone(), digest(&data));
                    }
                    Err(e) => {
                        eprintln!("fuse load: {}: {e}", p.display());
                        f.fetch_add(1, Ordering::SeqCst);
                    }
                }
                let (ep, ed) = &existing[(n * 7919) % existing.len()];
                match fs::read(ep) {
                    Ok(b) if digest(&b) == *ed => {}
                    Ok(_) => {
                        eprintln!("fuse load: {} read different", ep.display());
                        f.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        eprintln!("fuse load: reading {}: {e}", ep.display());
                        f.fetch_add(1, Ordering::SeqCst);
                    }
                }
                n += 1;
            }
            written
        });
        FuseLoad {
            stop,
            failures,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> (u64, BTreeMap<PathBuf, String>) {
        self.stop.store(true, Ordering::SeqCst);
        let w = self.thread.take().unwrap().join().unwrap();
        (self.failures.load(Ordering::SeqCst), w)
    }
}

impl Drop for FuseLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The S3 load's process: killed if the test ends before it is finished.
struct S3Load(Option<Child>);

impl S3Load {
    fn finish(mut self) -> Result<std::process::Output> {
        Ok(self.0.take().expect("running").wait_with_output()?)
    }
}

impl Drop for S3Load {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// tests/s3/load.py against the gateway until `stop` appears.
fn s3_load(gw: &Gateway, bucket: &str, stop: &Path) -> Result<S3Load> {
    let (access, secret) = gw.s3_key("elastic")?;
    let url = gw.s3_url()?;
    let mut c = Command::new("python3");
    c.arg(workspace_root().join("tests/s3/load.py"))
        .env("S3_URL", &url)
        .env("AWS_ACCESS_KEY_ID", &access)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("BUCKET", bucket)
        .env("STOP_FILE", stop)
        .env("WORKERS", "2");
    let boto = Command::new("python3")
        .args(["-c", "import boto3"])
        .status()?;
    if !boto.success() {
        bail!("boto3 is missing (pip install boto3)");
    }
    // The bucket first.
    let mk = Command::new("python3")
        .args([
            "-c",
            &format!(
                "import boto3; from botocore.config import Config; boto3.client('s3', endpoint_url='{url}', region_name='us-east-1', config=Config(s3={{'addressing_style':'path'}})).create_bucket(Bucket='{bucket}')"
            ),
        ])
        .env("AWS_ACCESS_KEY_ID", &access)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()?;
    if !mk.status.success() {
        bail!("create bucket: {}", output_text(&mk));
    }
    Ok(S3Load(Some(
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?,
    )))
}

fn status(gw: &Gateway) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(&gw.gwctl_ok(&[
        "volume",
        "rebalance",
        "vol",
        "status",
        "--json",
    ])?)?)
}

/// Polls the rebalance status until it leaves "in progress"; fails unless it completed.
fn wait_done(gw: &Gateway, timeout: Duration) -> Result<serde_json::Value> {
    let s = wait_for(timeout, "the rebalance to end", || {
        let s = status(gw).ok()?;
        (s["state"] != "in progress").then_some(s)
    })?;
    let why: Vec<String> = gw
        .log_text()
        .lines()
        .filter(|l| l.contains("could not move") || l.contains("moving a file failed"))
        .map(str::to_string)
        .collect();
    if s["state"] != "completed" || s["totals"]["failed"].as_u64() != Some(0) {
        bail!("rebalance ended {}: {s}\n{}", s["state"], why.join("\n"));
    }
    Ok(s)
}

/// The bricks of the default volume by replica set, from `volume info`.
fn info(gw: &Gateway) -> Result<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(&gw.gwctl_ok(&["volume", "info", "vol", "--json"])?)?;
    Ok(match v {
        serde_json::Value::Array(mut a) if !a.is_empty() => a.remove(0),
        v => v,
    })
}

fn sets(gw: &Gateway) -> Result<Vec<Vec<PathBuf>>> {
    let v = info(gw)?;
    let mut out: Vec<Vec<PathBuf>> = Vec::new();
    for b in v["bricks"].as_array().context("bricks")? {
        let g = b["replica_set"].as_u64().context("replica_set")? as usize;
        if out.len() <= g {
            out.resize(g + 1, Vec::new());
        }
        out[g].push(PathBuf::from(b["path"].as_str().context("path")?));
    }
    Ok(out)
}

fn host(gw: &Gateway) -> Result<String> {
    let v = info(gw)?;
    Ok(v["bricks"][0]["host"].as_str().context("host")?.to_string())
}

fn is_internal(p: &Path, brick: &Path) -> bool {
    p.strip_prefix(brick)
        .ok()
        .and_then(|r| r.components().next())
        .is_some_and(|c| c.as_os_str() == ".glusterfs" || c.as_os_str() == ".s3-staging")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_symlink() {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            }
            out.push(p);
        }
    }
}

/// Every file on the bricks is on the subvolume its directory's layout names; no linkto
/// file is left; every `.glusterfs` handle of a file still has its name.
fn check_placement(sets: &[Vec<PathBuf>]) -> Result<()> {
    for (g, set) in sets.iter().enumerate() {
        let brick = &set[0];
        let mut all = Vec::new();
        walk(brick, &mut all);
        for p in all {
            // A frontend's temporary names come and go under the running clients.
            if is_internal(&p, brick) || p.to_string_lossy().contains(".s3tmp-") {
                continue;
            }
            let Ok(md) = fs::symlink_metadata(&p) else {
                continue;
            };
            if !md.is_file() {
                continue;
            }
            if md.mode() & 0o7777 == 0o1000 && md.len() == 0 {
                bail!("linkto file left behind: {}", p.display());
            }
            let parent = p.parent().unwrap();
            let name = p.file_name().unwrap().to_string_lossy();
            let mut owner = None;
            for (h, hs) in sets.iter().enumerate() {
                let rel = parent.strip_prefix(brick).unwrap();
                let v = xattr_get(&hs[0].join(rel), "trusted.glusterfs.dht")
                    .with_context(|| format!("layout of {}", rel.display()))?;
                if let Some((start, stop)) = layout::decode(&v) {
                    let x = name_hash(&name);
                    if start <= x && x <= stop {
                        owner = Some(h);
                    }
                }
            }
            if owner != Some(g) {
                bail!(
                    "{} is on replica set {g}, its layout names {owner:?}",
                    p.display()
                );
            }
        }
        // Handles: a file's handle is a hard link of its name.
        let mut handles = Vec::new();
        walk(&brick.join(".glusterfs"), &mut handles);
        let orphan = |h: &Path| {
            let is_handle = h
                .file_name()
                .is_some_and(|n| n.len() == 36 && n.to_string_lossy().contains('-'));
            is_handle && fs::symlink_metadata(h).is_ok_and(|md| md.is_file() && md.nlink() < 2)
        };
        let suspects: Vec<PathBuf> = handles.into_iter().filter(|h| orphan(h)).collect();
        // A file being removed by a client loses its name a moment before its handle.
        if !suspects.is_empty() {
            std::thread::sleep(Duration::from_millis(500));
        }
        if let Some(h) = suspects.iter().find(|h| orphan(h)) {
            bail!("orphan handle {}", h.display());
        }
    }
    Ok(())
}

fn xattr_get(p: &Path, key: &str) -> Result<Vec<u8>> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes())?;
    let k = std::ffi::CString::new(key)?;
    let mut buf = vec![0u8; 256];
    // SAFETY: the buffer is ours and its length is passed.
    let n = unsafe { libc::lgetxattr(c.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        bail!("{}: {}", p.display(), std::io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

fn files_on(brick: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    walk(brick, &mut all);
    all.into_iter()
        .filter(|p| !is_internal(p, brick) && fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
        .collect()
}

#[test]
fn grow_to_3x2_under_load_then_shrink_back() -> Result<()> {
    let gw = Gateway::up()?;
    let mnt = gw.mnt().to_path_buf();
    let files = populate(&mnt.join("tree"), 2000, 20)?;
    let stop = gw.root().join("stop-s3");
    let s3 = s3_load(&gw, "elastic", &stop)?;
    let fuse = FuseLoad::start(&mnt, &files);

    let h = host(&gw)?;
    let new: Vec<String> = ["b5", "b6"]
        .iter()
        .map(|b| format!("{h}:{}", gw.data.join("bricks").join(b).display()))
        .collect();
    // Refused: a brick already in the volume, a count that is not whole sets.
    let old = format!("{h}:{}", gw.brick_dirs()[0].display());
    assert!(
        !gw.gwctl(&["volume", "add-brick", "vol", &old, &new[0]])?
            .status
            .success()
    );
    assert!(
        !gw.gwctl(&["volume", "add-brick", "vol", &new[0]])?
            .status
            .success()
    );
    assert_eq!(sets(&gw)?.len(), 2, "a refused add-brick changed nothing");

    gw.gwctl_ok(&["volume", "add-brick", "vol", &new[0], &new[1]])?;
    assert_eq!(sets(&gw)?.len(), 3);
    gw.gwctl_ok(&["volume", "rebalance", "vol", "start"])?;
    let s = wait_done(&gw, Duration::from_secs(900))?;
    eprintln!("rebalance: {}", s["totals"]);
    assert!(s["totals"]["moved"].as_u64().unwrap() > 200, "{s}");
    assert_eq!(s["totals"]["failed"].as_u64(), Some(0), "{s}");
    let third: u64 = s["subvolumes"][0]["counters"]["moved"].as_u64().unwrap()
        + s["subvolumes"][1]["counters"]["moved"].as_u64().unwrap();
    assert!(third > 0);
    check_all(&files)?;
    check_placement(&sets(&gw)?)?;
    assert!(
        !files_on(&sets(&gw)?[2][0]).is_empty(),
        "the new set took files"
    );

    // Shrink back; commit is refused until the move completed.
    let mut args = vec!["volume", "remove-brick", "vol"];
    args.extend(new.iter().map(String::as_str));
    let mut start = args.clone();
    start.push("start");
    gw.gwctl_ok(&start)?;
    let s = wait_done(&gw, Duration::from_secs(900))?;
    assert_eq!(s["kind"], "remove-brick");
    assert_eq!(s["totals"]["failed"].as_u64(), Some(0), "{s}");
    let mut commit = args.clone();
    commit.extend(["commit", "--yes"]);
    gw.gwctl_ok(&commit)?;
    assert_eq!(sets(&gw)?.len(), 2);

    fs::write(&stop, b"")?;
    let (fuse_failures, live) = fuse.finish();
    let out = s3.finish()?;
    let s3_text = output_text(&out);
    eprintln!("{s3_text}");
    assert_eq!(fuse_failures, 0, "FUSE calls failed during the changes");
    assert!(out.status.success(), "S3 calls failed: {s3_text}");
    check_all(&files)?;
    check_all(&live)?;
    check_placement(&sets(&gw)?)?;
    for b in ["b5", "b6"] {
        let left = files_on(&gw.data.join("bricks").join(b));
        assert!(left.is_empty(), "removed brick {b} still holds {left:?}");
    }
    Ok(())
}

#[test]
fn rebalance_resumes_after_kill_9_of_gatewayd() -> Result<()> {
    let mut gw = Gateway::up()?;
    let mnt = gw.mnt().to_path_buf();
    // 20,000 small files, written by 8 threads.
    let total = 20_000usize;
    let mut threads = Vec::new();
    for t in 0..8 {
        let mnt = mnt.clone();
        threads.push(std::thread::spawn(move || -> Result<()> {
            for n in (t..total).step_by(8) {
                let dir = mnt.join(format!("r{}/s{}", n % 20, (n / 20) % 10));
                fs::create_dir_all(&dir)?;
                fs::write(dir.join(format!("f{n}")), format!("file {n}"))?;
            }
            Ok(())
        }));
    }
    for t in threads {
        t.join().unwrap()?;
    }
    let h = host(&gw)?;
    let new: Vec<String> = ["b5", "b6"]
        .iter()
        .map(|b| format!("{h}:{}", gw.data.join("bricks").join(b).display()))
        .collect();
    gw.gwctl_ok(&["volume", "add-brick", "vol", &new[0], &new[1]])?;
    gw.gwctl_ok(&["volume", "rebalance", "vol", "start"])?;
    wait_for(
        Duration::from_secs(600),
        "the rebalance to get halfway",
        || {
            let s = status(&gw).ok()?;
            let total = s["files_total"].as_u64()?;
            (total > 0 && s["totals"]["scanned"].as_u64()? * 2 >= total).then_some(())
        },
    )?;
    gw.kill9();
    gw.start_again()?;
    let s = wait_done(&gw, Duration::from_secs(900))?;
    eprintln!("after resume: {s}");
    assert!(s["resumed"].as_u64().unwrap() >= 1, "{s}");
    let files = s["files_total"].as_u64().unwrap();
    let scanned = s["totals"]["scanned"].as_u64().unwrap();
    assert!(files >= total as u64, "{s}");
    assert!(
        scanned < files + files / 10,
        "{scanned} scans of {files} files: more than 10 % scanned twice"
    );
    for n in (0..total).step_by(7) {
        let p = mnt.join(format!("r{}/s{}/f{n}", n % 20, (n / 20) % 10));
        assert_eq!(
            fs::read_to_string(&p)?,
            format!("file {n}"),
            "{}",
            p.display()
        );
    }
    check_placement(&sets(&gw)?)?;
    Ok(())
}

#[test]
fn replace_brick_under_writes_ends_byte_identical() -> Result<()> {
    let gw = Gateway::up()?;
    let mnt = gw.mnt().to_path_buf();
    let files = populate(&mnt.join("tree"), 300, 3)?;
    let fuse = FuseLoad::start(&mnt, &files);
    let h = host(&gw)?;
    let set0 = sets(&gw)?[0].clone();
    let old = format!("{h}:{}", set0[1].display());
    let fresh_dir = gw.data.join("bricks").join("b2-new");
    fs::create_dir_all(&fresh_dir)?;
    fs::write(fresh_dir.join("junk"), b"x")?;
    let fresh = format!("{h}:{}", fresh_dir.display());
    let refused = gw.gwctl(&[
        "volume",
        "replace-brick",
        "vol",
        &old,
        &fresh,
        "commit",
        "force",
    ])?;
    assert!(
        !refused.status.success(),
        "replace onto a non-empty directory"
    );
    assert!(
        output_text(&refused).contains("not empty"),
        "{}",
        output_text(&refused)
    );
    fs::remove_file(fresh_dir.join("junk"))?;
    gw.gwctl_ok(&[
        "volume",
        "replace-brick",
        "vol",
        &old,
        &fresh,
        "commit",
        "force",
    ])?;
    std::thread::sleep(Duration::from_secs(2));
    let (failures, live) = fuse.finish();
    assert_eq!(failures, 0);
    gw.gwctl_ok(&["volume", "heal", "vol", "full"])?;
    wait_for(Duration::from_secs(300), "heal info to reach 0", || {
        let out = gw
            .gwctl_ok(&["volume", "heal", "vol", "info", "--json"])
            .ok()?;
        let v: serde_json::Value = serde_json::from_str(&out).ok()?;
        (v["pending"].as_u64()? == 0).then_some(())
    })?;
    check_all(&files)?;
    check_all(&live)?;
    let good = &set0[0];
    let a = files_on(good);
    assert!(a.len() > 100);
    for p in a {
        let rel = p.strip_prefix(good)?;
        let copy = fresh_dir.join(rel);
        assert_eq!(
            fs::read(&p)?,
            fs::read(&copy).with_context(|| format!("{} on the new brick", rel.display()))?,
            "{}",
            rel.display()
        );
    }
    Ok(())
}

/// Every file of `a` (but the internal ones) is in `b` with the same bytes.
fn same_files(a: &Path, b: &Path) -> Result<usize> {
    let files = files_on(a);
    for p in &files {
        let rel = p.strip_prefix(a)?;
        let copy = b.join(rel);
        if fs::read(p)? != fs::read(&copy).with_context(|| format!("{}", copy.display()))? {
            bail!("{} differs", rel.display());
        }
    }
    Ok(files.len())
}

#[test]
fn raising_the_replica_count_adds_a_copy_that_heals() -> Result<()> {
    let gw = Gateway::up()?;
    let mnt = gw.mnt().to_path_buf();
    let files = populate(&mnt.join("tree"), 300, 3)?;
    let h = host(&gw)?;
    let new: Vec<String> = ["b5", "b6"]
        .iter()
        .map(|b| format!("{h}:{}", gw.data.join("bricks").join(b).display()))
        .collect();
    // One brick per set is needed: two sets take two.
    let refused = gw.gwctl(&["volume", "add-brick", "vol", "replica", "3", &new[0]])?;
    assert!(!refused.status.success());
    assert!(
        output_text(&refused).contains("per replica set"),
        "{}",
        output_text(&refused)
    );
    gw.gwctl_ok(&[
        "volume",
        "add-brick",
        "vol",
        "replica",
        "3",
        &new[0],
        &new[1],
    ])?;
    let s = sets(&gw)?;
    assert_eq!(s.len(), 2, "{s:?}");
    assert!(s.iter().all(|set| set.len() == 3), "{s:?}");
    fs::write(mnt.join("after-raise"), b"three copies")?;
    wait_for(Duration::from_secs(300), "the new copies to heal", || {
        s.iter()
            .all(|set| same_files(&set[0], &set[2]).is_ok_and(|n| n > 0))
            .then_some(())
    })?;
    check_all(&files)?;
    assert_eq!(fs::read(mnt.join("after-raise"))?, b"three copies");
    Ok(())
}

/// Unmounts a file system the test mounted, also when it fails.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        lazy_unmount(&self.0);
    }
}

#[test]
fn a_create_hashed_to_a_full_subvolume_lands_where_there_is_room() -> Result<()> {
    let gw = Gateway::start(GatewayOpts {
        mount: false,
        ..Default::default()
    })?;
    let root = gw.root().to_path_buf();
    // Replica set 1 on a 16 MiB tmpfs that is 15 MiB full: under min-free-disk's 10 %.
    let small = root.join("small");
    fs::create_dir_all(&small)?;
    run_ok(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
            .arg(&small),
    )?;
    let _small = Unmount(small.clone());
    fs::write(small.join("ballast"), vec![1u8; 15 << 20])?;
    let bricks = [
        root.join("big1"),
        root.join("big2"),
        small.join("t1"),
        small.join("t2"),
    ];
    let mut args = vec!["volume", "create", "mf", "replica", "2"];
    let specs: Vec<String> = bricks
        .iter()
        .map(|b| format!("127.0.0.1:{}", b.display()))
        .collect();
    args.extend(specs.iter().map(String::as_str));
    gw.gwctl_ok(&args)?;
    gw.gwctl_ok(&["volume", "start", "mf"])?;
    let mnt = root.join("mfmnt");
    let nm = NativeMount::start(&gw, "mf", &mnt)?;
    for n in 0..40 {
        fs::write(mnt.join(format!("f{n}")), format!("file {n}"))?;
    }
    for n in 0..40 {
        assert_eq!(
            fs::read_to_string(mnt.join(format!("f{n}")))?,
            format!("file {n}")
        );
    }
    drop(nm);
    // Every file's data is on the set with room; the full set holds only linkto files, for
    // the names hashed to it.
    let data = files_on(&bricks[0])
        .iter()
        .filter(|p| fs::metadata(p).is_ok_and(|m| m.mode() & 0o7777 != 0o1000))
        .count();
    assert_eq!(data, 40, "{:?}", files_on(&bricks[0]));
    let on_full = files_on(&bricks[2]);
    assert!(!on_full.is_empty(), "no name hashed to the full set");
    for p in &on_full {
        let m = fs::metadata(p)?;
        assert!(
            m.mode() & 0o7777 == 0o1000 && m.len() == 0,
            "{} holds data on the full set",
            p.display()
        );
    }
    Ok(())
}
