//! Replication (cluster/replicate) end to end on `gatewayd up --replica 2`, the 2 x 2 volume:
//! bricks b1,b2 and b3,b4 are the replica sets. A checksumming writer on the FUSE mount while
//! one brickd of each pair dies or hangs; heal info draining to 0; both copies byte-identical;
//! a split-brain that is reported, left alone, and resolved by each policy.

use anyhow::{Context, Result, bail, ensure};
use e2e::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long heal info may take to reach 0 once the bricks are back.
const HEAL_BOUND: Duration = Duration::from_secs(90);

fn replicated_gateway() -> Result<Gateway> {
    Gateway::start(GatewayOpts {
        replica: 2,
        extra: vec!["--ping-timeout".into(), "3".into()],
        ..Default::default()
    })
}

fn heal_info(gw: &Gateway) -> Result<serde_json::Value> {
    heal_info_of(gw, "vol")
}

fn heal_info_of(gw: &Gateway, volume: &str) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(&gw.gwctl_ok(&[
        "volume", "heal", volume, "info", "--json",
    ])?)?)
}

/// Waits until heal info lists nothing (and every brick is connected); returns how long it took.
fn wait_healed(gw: &Gateway) -> Result<Duration> {
    wait_healed_of(gw, "vol")
}

fn wait_healed_of(gw: &Gateway, volume: &str) -> Result<Duration> {
    let t0 = Instant::now();
    let mut last = serde_json::Value::Null;
    while t0.elapsed() < HEAL_BOUND {
        let info = heal_info_of(gw, volume)?;
        let connected = info["replica_sets"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["bricks"].as_array().into_iter().flatten())
            .all(|b| b["connected"] == true);
        if connected && info["pending"] == 0 && info["split_brain"] == 0 {
            return Ok(t0.elapsed());
        }
        last = info;
        thread::sleep(Duration::from_millis(250));
    }
    // The heal info last, so the tail of a long failure message still shows it.
    bail!(
        "{}\nheal info did not reach 0 within {HEAL_BOUND:?}: {last:#}",
        gw.logs()
    )
}

/// Every file under `a` and `b` (relative paths), which must hold the same names.
fn same_tree(a: &Path, b: &Path) -> Result<usize> {
    let list = |root: &Path| -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d)? {
                let e = e?;
                let p = e.path();
                let rel = p.strip_prefix(root)?.to_path_buf();
                if rel.starts_with(".glusterfs") {
                    continue;
                }
                if e.file_type()?.is_dir() {
                    stack.push(p);
                }
                out.push(rel);
            }
        }
        out.sort();
        Ok(out)
    };
    let (la, lb) = (list(a)?, list(b)?);
    ensure!(
        la == lb,
        "replicas {} and {} hold different names:\n only in the first: {:?}\n only in the second: {:?}",
        a.display(),
        b.display(),
        la.iter().filter(|p| !lb.contains(p)).collect::<Vec<_>>(),
        lb.iter().filter(|p| !la.contains(p)).collect::<Vec<_>>()
    );
    let mut files = 0;
    for rel in &la {
        let (pa, pb) = (a.join(rel), b.join(rel));
        let m = fs::symlink_metadata(&pa)?;
        if m.is_file() {
            ensure!(
                fs::read(&pa)? == fs::read(&pb)?,
                "{} differs between {} and {}",
                rel.display(),
                a.display(),
                b.display()
            );
            files += 1;
        }
    }
    Ok(files)
}

fn brick_pid(gw: &Gateway, brick: &Path) -> Result<i32> {
    gw.brickd_pid(brick)
        .with_context(|| format!("no brickd for {}", brick.display()))
}

/// Waits until gatewayd's replicate sees `client` (e.g. vol-client-0) connected or not.
fn wait_connected(gw: &Gateway, client: &str, want: bool) -> Result<()> {
    let volume = client.rsplit_once("-client-").map_or("vol", |(v, _)| v);
    wait_for(
        Duration::from_secs(30),
        &format!("{client} connected={want}"),
        || {
            let info = heal_info_of(gw, volume).ok()?;
            info["replica_sets"]
                .as_array()?
                .iter()
                .flat_map(|s| s["bricks"].as_array().into_iter().flatten())
                .any(|b| b["client"] == client && b["connected"] == want)
                .then_some(())
        },
    )
}

/// Files a writer made: name → sha256 of what it wrote last.
struct Writer {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<Result<Vec<(PathBuf, String, usize)>>>,
}

/// Writes, rewrites and appends files under `dir` until stopped; every error is returned.
fn start_writer(dir: PathBuf) -> Writer {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let handle = thread::spawn(move || -> Result<Vec<(PathBuf, String, usize)>> {
        fs::create_dir_all(&dir)?;
        let mut files: Vec<(PathBuf, String, usize)> = Vec::new();
        let mut n = 0u64;
        while !s.load(Ordering::SeqCst) || n < 40 {
            n += 1;
            let sub = dir.join(format!("d{}", n % 5));
            fs::create_dir_all(&sub).with_context(|| format!("mkdir {}", sub.display()))?;
            let p = sub.join(format!("f{n}"));
            let len = 1000 + (n as usize * 7919) % 300_000;
            random_file(&p, len, n).with_context(|| format!("writing {}", p.display()))?;
            // Every third file is appended to after it was written.
            if n.is_multiple_of(3) {
                use std::io::Write;
                let mut f = fs::OpenOptions::new()
                    .append(true)
                    .open(&p)
                    .with_context(|| format!("reopening {}", p.display()))?;
                f.write_all(&vec![n as u8; 4096])
                    .with_context(|| format!("appending to {}", p.display()))?;
            }
            let sum = sha256_file(&p)?;
            files.push((p, sum, len));
            thread::sleep(Duration::from_millis(20));
        }
        Ok(files)
    });
    Writer { stop, handle }
}

fn check_writer(w: Writer) -> Result<Vec<(PathBuf, String, usize)>> {
    w.stop.store(true, Ordering::SeqCst);
    w.handle
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))?
        .context("the writer saw an error")
}

fn verify_through_mount(files: &[(PathBuf, String, usize)]) -> Result<()> {
    for (p, sum, _) in files {
        ensure!(
            &sha256_file(p)? == sum,
            "{} does not read back what was written",
            p.display()
        );
    }
    Ok(())
}

#[test]
fn kill_9_of_a_brickd_in_each_pair_while_writing() -> Result<()> {
    let gw = replicated_gateway()?;
    let b = gw.brick_dirs();
    let w = start_writer(gw.mnt().join("w"));
    thread::sleep(Duration::from_secs(2));
    // One of each pair, mid-run; gatewayd's supervisor starts them again.
    for victim in [&b[0], &b[3]] {
        let pid = brick_pid(&gw, victim)?;
        signal(pid, libc::SIGKILL);
    }
    thread::sleep(Duration::from_secs(4));
    let files = check_writer(w)?;
    ensure!(files.len() >= 40, "only {} files written", files.len());
    let took = wait_healed(&gw)?;
    eprintln!("{} files; heal info reached 0 in {took:?}", files.len());
    let n1 = same_tree(&b[0], &b[1])?;
    let n2 = same_tree(&b[2], &b[3])?;
    ensure!(n1 + n2 >= files.len(), "bricks hold {n1}+{n2} files");
    verify_through_mount(&files)?;
    let status: serde_json::Value =
        serde_json::from_str(&gw.gwctl_ok(&["volume", "status", "vol", "--json"])?)?;
    ensure!(
        status["bricks"][0]["restarts"].as_u64() >= Some(1),
        "b1 was not restarted: {status}"
    );
    Ok(())
}

/// Creates, renames, chmods, unlinks and closes that every replica took are answered before
/// their post-op and unlock, which follow in the background. A volume stop waits for them, so
/// no mark is left on any brick; a `kill -9` of gatewayd right after a burst may leave marks
/// on copies that hold the same change, and the heal clears them.
#[test]
fn changes_answered_before_their_post_op_leave_no_mark_once_done() -> Result<()> {
    let mut gw = replicated_gateway()?;
    let burst = |dir: &Path| -> Result<usize> {
        fs::create_dir_all(dir)?;
        let mut kept = 0;
        for i in 0..200usize {
            let mut p = dir.join(format!("f{i}"));
            fs::write(&p, format!("{i} ").repeat(i % 50 + 1))?;
            if i % 3 == 0 {
                let q = dir.join(format!("r{i}"));
                fs::rename(&p, &q)?;
                p = q;
            }
            if i % 5 == 0 {
                fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            }
            if i % 7 == 0 {
                fs::remove_file(&p)?;
            } else {
                kept += 1;
            }
        }
        Ok(kept)
    };
    let no_marks = |gw: &Gateway, when: &str| -> Result<()> {
        for b in gw.brick_dirs() {
            let marks = afr_marks(&b);
            ensure!(
                marks.is_empty(),
                "{when}, {} holds marks: {marks:?}",
                b.display()
            );
        }
        Ok(())
    };

    let kept_a = burst(&gw.mnt().join("a"))?;
    gw.gwctl_ok(&["volume", "stop", "vol"])?;
    no_marks(&gw, "after a volume stop")?;
    gw.gwctl_ok(&["volume", "start", "vol"])?;
    let m = gw.mnt().to_path_buf();
    wait_for(
        Duration::from_secs(30),
        "the mount after the restart",
        || fs::read_dir(m.join("a")).ok(),
    )?;
    let listed = fs::read_dir(m.join("a"))?.count();
    ensure!(listed == kept_a, "{listed} names listed, {kept_a} kept");

    let kept_b = burst(&gw.mnt().join("b"))?;
    gw.kill9();
    gw.start_again()?;
    let took = wait_healed(&gw)?;
    eprintln!("heal info reached 0 {took:?} after the restart");
    no_marks(&gw, "once healed")?;
    for s in gw.replica_sets() {
        same_tree(&s[0], &s[1])?;
    }
    for (d, kept) in [("a", kept_a), ("b", kept_b)] {
        let listed = fs::read_dir(gw.mnt().join(d))?.count();
        ensure!(listed == kept, "{d}: {listed} names listed, {kept} kept");
    }
    Ok(())
}

/// A file created for writing is created holding its first write's lock and dirty mark
/// (replicate's eager data lock, granted by each brick with the new inode), so a small file
/// written through FUSE costs no lock and pre-op round trip of its own before its write
/// (14.2 brick requests per 4 KiB file before, 12.2 with it). Every mark and lock is given
/// back once the files are closed: no changelog is left raised, the heal index is empty, and
/// a file only created (never written) gives its lock back too.
#[test]
fn a_file_created_for_writing_is_written_under_the_lock_its_create_took() -> Result<()> {
    const COUNT: usize = 100;
    let gw = Gateway::up()?;
    let dir = gw.mnt().join("small");
    fs::create_dir(&dir)?;
    fs::write(dir.join("first"), b"x")?;
    // Settled: the releases behind the answers are counted too.
    let settled = || -> Result<f64> {
        let mut last = gw.brick_requests()?;
        wait_for(Duration::from_secs(30), "brick requests to settle", || {
            thread::sleep(Duration::from_millis(1500));
            let now = gw.brick_requests().ok()?;
            let same = now == last;
            last = now;
            same.then_some(now)
        })
    };
    let before = settled()?;
    let body = vec![b'z'; 4096];
    for i in 0..COUNT {
        fs::write(dir.join(format!("f{i}")), &body)?;
    }
    let per_file = (settled()? - before) / COUNT as f64;
    ensure!(
        per_file < 13.2,
        "{per_file:.1} brick requests per 4 KiB file written through FUSE"
    );
    // Only created: its lock and mark go when it is closed.
    fs::File::create(dir.join("empty"))?;
    settled()?;
    for b in gw.brick_dirs() {
        let marks = afr_marks(&b);
        ensure!(marks.is_empty(), "{} holds marks: {marks:?}", b.display());
        let index = b.join(".glusterfs/indices/dirty");
        let listed: Vec<String> = fs::read_dir(&index)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with("dirty-"))
                    .collect()
            })
            .unwrap_or_default();
        ensure!(
            listed.is_empty(),
            "{} still lists {listed:?}",
            index.display()
        );
    }
    for s in gw.replica_sets() {
        same_tree(&s[0], &s[1])?;
    }
    for i in 0..COUNT {
        ensure!(
            fs::read(dir.join(format!("f{i}")))? == body,
            "f{i} read back different"
        );
    }
    Ok(())
}

/// A brick that stops answering (SIGSTOP: a hung host or a cut link, no RST) rather than dying:
/// after ping-timeout the writer goes on with the other replica; when it answers again the
/// heal catches it up.
#[test]
fn a_brick_cut_off_while_writing() -> Result<()> {
    let gw = replicated_gateway()?;
    let b = gw.brick_dirs();
    let pids = [brick_pid(&gw, &b[1])?, brick_pid(&gw, &b[2])?];
    // A 2 MiB file of which 4 KiB change while its second replica is away: the data heal
    // compares block checksums and writes the one 128 KiB block that differs.
    let big = names_on_first_set(&gw, 1, "big")?.remove(0);
    random_file(&gw.mnt().join(&big), 2 << 20, 99)?;
    let w = start_writer(gw.mnt().join("w"));
    thread::sleep(Duration::from_secs(1));
    for p in pids {
        signal(p, libc::SIGSTOP);
    }
    let cont = scopeguard(pids);
    wait_connected(&gw, "vol-client-1", false)?;
    {
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new()
            .write(true)
            .open(gw.mnt().join(&big))?;
        f.write_all_at(&[7u8; 4096], 1 << 20)?;
    }
    let big_sum = sha256_file(&gw.mnt().join(&big))?;
    thread::sleep(Duration::from_secs(2));
    drop(cont);
    let files = check_writer(w)?;
    let took = wait_healed(&gw)?;
    eprintln!("{} files; heal info reached 0 in {took:?}", files.len());
    same_tree(&b[0], &b[1])?;
    same_tree(&b[2], &b[3])?;
    verify_through_mount(&files)?;
    ensure!(sha256_file(&gw.mnt().join(&big))? == big_sum);
    let log = strip_ansi(&gw.log_text());
    let healed = log
        .lines()
        .find(|l| l.contains("data healed") && l.contains(&format!("/{big}")))
        .with_context(|| format!("no data heal of /{big} in the log"))?;
    ensure!(
        healed.contains("written=131072"),
        "the heal of /{big} did not write exactly the one changed block: {healed}"
    );
    Ok(())
}

/// The log without its terminal colours.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\x1b' {
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A brick cut off from the gateway by the firewall: packets to its port are dropped (no RST,
/// as when a link or switch fails). After ping-timeout the writer goes on with the other
/// replica; when the rule goes, the client reconnects and the heal catches the brick up.
#[test]
fn a_brick_cut_off_by_the_firewall_while_writing() -> Result<()> {
    need("iptables");
    let gw = replicated_gateway()?;
    let b = gw.brick_dirs();
    let status: serde_json::Value =
        serde_json::from_str(&gw.gwctl_ok(&["volume", "status", "vol", "--json"])?)?;
    let ports: Vec<u64> = [1, 2]
        .iter()
        .map(|i| status["bricks"][*i]["port"].as_u64().context("brick port"))
        .collect::<Result<_>>()?;
    let w = start_writer(gw.mnt().join("w"));
    thread::sleep(Duration::from_secs(1));
    let cut = Firewall::drop_ports(&ports)?;
    wait_connected(&gw, "vol-client-1", false)?;
    wait_connected(&gw, "vol-client-2", false)?;
    thread::sleep(Duration::from_secs(2));
    drop(cut);
    let files = check_writer(w)?;
    let took = wait_healed(&gw)?;
    eprintln!("{} files; heal info reached 0 in {took:?}", files.len());
    same_tree(&b[0], &b[1])?;
    same_tree(&b[2], &b[3])?;
    verify_through_mount(&files)?;
    Ok(())
}

/// iptables rules dropping TCP to some local ports; removed when dropped.
struct Firewall(Vec<Vec<String>>);
impl Firewall {
    fn drop_ports(ports: &[u64]) -> Result<Firewall> {
        let mut fw = Firewall(Vec::new());
        for p in ports {
            let rule: Vec<String> = [
                "INPUT",
                "-p",
                "tcp",
                "-i",
                "lo",
                "--dport",
                &p.to_string(),
                "-j",
                "DROP",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            run_ok(std::process::Command::new("iptables").arg("-I").args(&rule))?;
            fw.0.push(rule);
        }
        Ok(fw)
    }
}
impl Drop for Firewall {
    fn drop(&mut self) {
        for rule in &self.0 {
            let _ = std::process::Command::new("iptables")
                .arg("-D")
                .args(rule)
                .status();
        }
    }
}

/// SIGCONTs the stopped pids when dropped (also when the test fails).
struct Cont(Vec<i32>);
impl Drop for Cont {
    fn drop(&mut self) {
        for p in &self.0 {
            signal(*p, libc::SIGCONT);
        }
    }
}
fn scopeguard(pids: impl IntoIterator<Item = i32>) -> Cont {
    Cont(pids.into_iter().collect())
}

/// Names in the root that land on the first replica set (b1,b2).
fn names_on_first_set(gw: &Gateway, n: usize, prefix: &str) -> Result<Vec<String>> {
    let b = gw.brick_dirs();
    let mut out = Vec::new();
    for i in 0..200 {
        let name = format!("{prefix}{i}");
        fs::write(gw.mnt().join(&name), b"probe")?;
        if b[0].join(&name).exists() {
            out.push(name);
            if out.len() == n {
                return Ok(out);
            }
        } else {
            fs::remove_file(gw.mnt().join(&name))?;
        }
    }
    bail!("no names on b1")
}

#[test]
fn split_brain_is_reported_left_alone_and_resolved_by_each_policy() -> Result<()> {
    let gw = replicated_gateway()?;
    let b = gw.brick_dirs();
    let mnt = gw.mnt().to_path_buf();
    // Three files on the b1,b2 pair: one per policy.
    let names = names_on_first_set(&gw, 3, "sb")?;
    let (big, mtime, brick) = (&names[0], &names[1], &names[2]);
    let (pa, pb) = (brick_pid(&gw, &b[0])?, brick_pid(&gw, &b[1])?);

    // b1 hangs: writes land on b2 only.
    signal(pa, libc::SIGSTOP);
    let guard = scopeguard([pa, pb]);
    wait_connected(&gw, "vol-client-0", false)?;
    fs::write(mnt.join(big), vec![b'B'; 200_000])?; // b2's copy of `big` is the bigger
    fs::write(mnt.join(mtime), vec![b'b'; 1000])?;
    fs::write(mnt.join(brick), vec![b'2'; 10])?; // b2's copy of `brick` is the smaller
    // b2 hangs too, then b1 answers again: writes land on b1 only.
    signal(pb, libc::SIGSTOP);
    wait_connected(&gw, "vol-client-1", false)?;
    signal(pa, libc::SIGCONT);
    wait_connected(&gw, "vol-client-0", true)?;
    thread::sleep(Duration::from_millis(1100)); // b1's mtime of `mtime` is the later
    fs::write(mnt.join(big), vec![b'A'; 1000])?;
    fs::write(mnt.join(mtime), vec![b'a'; 2000])?;
    fs::write(mnt.join(brick), vec![b'1'; 5000])?;
    signal(pb, libc::SIGCONT);
    drop(guard);
    wait_connected(&gw, "vol-client-1", true)?;

    // Reads give EIO; heal info names all three; after several crawls nothing is overwritten.
    for n in &names {
        let e = fs::read(mnt.join(n)).expect_err("a read of a split-brain file must fail");
        ensure!(e.raw_os_error() == Some(libc::EIO), "{n}: {e}");
    }
    thread::sleep(Duration::from_secs(6));
    let info = heal_info(&gw)?;
    let listed = info.to_string();
    for n in &names {
        ensure!(
            listed.contains(&format!("/{n}")),
            "heal info does not name {n}: {info:#}"
        );
    }
    ensure!(info["split_brain"] == 3, "{info:#}");
    let metrics = run_ok(
        std::process::Command::new("curl").args(["-sf", &format!("{}/metrics", gw.api_url)]),
    )?;
    ensure!(
        metrics
            .contains(r#"gateway_split_brain_entries{replicate="vol-replicate-0",volume="vol"} 3"#),
        "split-brains not in /metrics:\n{}",
        metrics
            .lines()
            .filter(|l| l.contains("heal") || l.contains("split"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    ensure!(fs::read(b[0].join(big))? == vec![b'A'; 1000]);
    ensure!(fs::read(b[1].join(big))? == vec![b'B'; 200_000]);
    ensure!(fs::read(b[0].join(brick))? == vec![b'1'; 5000]);
    ensure!(fs::read(b[1].join(brick))? == vec![b'2'; 10]);

    // A policy that cannot tell the copies apart is refused; a wrong brick too.
    let out = gw.gwctl(&[
        "volume",
        "heal",
        "vol",
        "split-brain",
        "source-brick",
        "nohost:/x",
    ])?;
    ensure!(!out.status.success(), "a bad brick was accepted");

    let bname = |i: usize| format!("127.0.0.1:{}", b[i].display());
    gw.gwctl_ok(&[
        "volume",
        "heal",
        "vol",
        "split-brain",
        "bigger-file",
        &format!("/{big}"),
    ])?;
    gw.gwctl_ok(&[
        "volume",
        "heal",
        "vol",
        "split-brain",
        "latest-mtime",
        &format!("/{mtime}"),
    ])?;
    gw.gwctl_ok(&[
        "volume",
        "heal",
        "vol",
        "split-brain",
        "source-brick",
        &bname(1),
        &format!("/{brick}"),
    ])?;
    let expect = [
        (big, vec![b'B'; 200_000]),
        (mtime, vec![b'a'; 2000]),
        (brick, vec![b'2'; 10]),
    ];
    for (n, want) in &expect {
        ensure!(&fs::read(mnt.join(n))? == want, "{n} through the mount");
        ensure!(&fs::read(b[0].join(n))? == want, "{n} on b1");
        ensure!(&fs::read(b[1].join(n))? == want, "{n} on b2");
    }
    wait_healed(&gw)?;
    let metrics = wait_for(Duration::from_secs(20), "heal metrics back to 0", || {
        let m = run_ok(
            std::process::Command::new("curl").args(["-sf", &format!("{}/metrics", gw.api_url)]),
        )
        .ok()?;
        m.contains(r#"gateway_split_brain_entries{replicate="vol-replicate-0",volume="vol"} 0"#)
            .then_some(m)
    })?;
    ensure!(
        metrics.contains(r#"gateway_heal_pending_entries{brick="vol-client-1",volume="vol"} 0"#),
        "{metrics}"
    );
    Ok(())
}

/// With `quorum-type fixed` and `quorum-count 2` on a replica-2 volume, a lost replica makes
/// writes fail (EROFS) while reads go on.
#[test]
fn quorum_lost_refuses_writes_and_serves_reads() -> Result<()> {
    let gw = replicated_gateway()?;
    let b = gw.brick_dirs();
    let mnt = gw.mnt().to_path_buf();
    let names = names_on_first_set(&gw, 1, "q")?;
    fs::write(mnt.join(&names[0]), b"before")?;
    gw.gwctl_ok(&["volume", "stop", "vol"])?;
    gw.gwctl_ok(&["volume", "set", "vol", "cluster.quorum-type", "fixed"])?;
    gw.gwctl_ok(&["volume", "set", "vol", "cluster.quorum-count", "2"])?;
    gw.gwctl_ok(&["volume", "start", "vol"])?;
    let m = tempdir_mount(&gw)?;
    ensure!(fs::read(m.dir.join(&names[0]))? == b"before");
    let pa = brick_pid(&gw, &b[0])?;
    signal(pa, libc::SIGSTOP);
    let _g = scopeguard([pa]);
    // Until the mount's client notices (ping-timeout), the write waits on the frozen replica's
    // lock; then it fails. It can never land: every change needs both replicas here.
    let err = match fs::write(m.dir.join(&names[0]), b"after") {
        Err(e) => e,
        Ok(()) => bail!("a write succeeded with quorum lost"),
    };
    ensure!(err.raw_os_error() == Some(libc::EROFS), "write: {err}");
    let now = fs::read(m.dir.join(&names[0]))?;
    ensure!(
        now == b"before",
        "reads must go on and show the old content, got {:?}",
        String::from_utf8_lossy(&now)
    );
    Ok(())
}

fn tempdir_mount(gw: &Gateway) -> Result<NativeMount> {
    NativeMount::start(gw, "vol", &gw.root().join("qmnt"))
}

/// `replica 3 arbiter 1`: the arbiter keeps names, modes and changelogs but no data; with one
/// data replica away writes go on; with only a stale data replica and the arbiter left the file
/// is neither read nor written (the arbiter cannot vouch for data it does not hold); when the
/// good replica is back the heal makes both data replicas equal.
#[test]
fn arbiter_keeps_names_and_metadata_but_no_data() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let gw = replicated_gateway()?;
    let dirs: Vec<PathBuf> = (0..3).map(|i| gw.root().join(format!("arb{i}"))).collect();
    let specs: Vec<String> = dirs
        .iter()
        .map(|d| format!("127.0.0.1:{}", d.display()))
        .collect();
    let mut args = vec!["volume", "create", "arb", "replica", "3", "arbiter", "1"];
    args.extend(specs.iter().map(String::as_str));
    gw.gwctl_ok(&args)?;
    let vf = gw.gwctl_ok(&["volume", "volfile", "arb"])?;
    ensure!(
        vf.contains("option arbiter-count 1") && vf.contains("option quorum-type auto"),
        "{vf}"
    );
    gw.gwctl_ok(&["volume", "start", "arb"])?;
    let m = NativeMount::start(&gw, "arb", &gw.root().join("amnt"))?;
    let a = m.dir.join("a");
    fs::write(&a, vec![b'1'; 100_000])?;
    fs::set_permissions(&a, fs::Permissions::from_mode(0o600))?;
    fs::create_dir(m.dir.join("d"))?;
    fs::write(m.dir.join("d/b"), b"bee")?;
    for d in &dirs[..2] {
        ensure!(fs::read(d.join("a"))? == vec![b'1'; 100_000]);
        ensure!(fs::read(d.join("d/b"))? == b"bee");
    }
    let arb = fs::metadata(dirs[2].join("a"))?;
    ensure!(arb.len() == 0, "the arbiter holds {} bytes of a", arb.len());
    ensure!(arb.permissions().mode() & 0o777 == 0o600);
    ensure!(fs::metadata(dirs[2].join("d/b"))?.len() == 0);

    let (p0, p1) = (brick_pid(&gw, &dirs[0])?, brick_pid(&gw, &dirs[1])?);
    let guard = scopeguard([p0, p1]);
    signal(p0, libc::SIGSTOP);
    wait_connected(&gw, "arb-client-0", false)?;
    fs::write(&a, vec![b'2'; 50_000])?;
    signal(p1, libc::SIGSTOP);
    wait_connected(&gw, "arb-client-1", false)?;
    signal(p0, libc::SIGCONT);
    wait_connected(&gw, "arb-client-0", true)?;
    // Give the mount's own client time to see the same (it shares the ping-timeout).
    thread::sleep(Duration::from_secs(4));
    let down =
        |e: &std::io::Error| matches!(e.raw_os_error(), Some(libc::ENOTCONN) | Some(libc::EIO));
    match fs::read(&a) {
        Err(e) if down(&e) => {}
        other => bail!("a read served from the stale replica: {other:?}"),
    }
    match fs::write(&a, b"stale") {
        Err(e) if down(&e) => {}
        other => bail!("a write landed with only the stale replica and the arbiter: {other:?}"),
    }
    ensure!(
        fs::read(dirs[0].join("a"))? == vec![b'1'; 100_000],
        "the stale copy was written"
    );
    signal(p1, libc::SIGCONT);
    drop(guard);
    wait_connected(&gw, "arb-client-1", true)?;
    if let Err(e) = wait_healed_of(&gw, "arb") {
        let marks = sh(&format!(
            "getfattr -R -d -m trusted.afr -e hex {} {} {} 2>&1",
            dirs[0].display(),
            dirs[1].display(),
            dirs[2].display()
        ))
        .unwrap_or_default();
        bail!(
            "{e:#}\n--- changelogs ---\n{marks}\n--- mount log ---\n{}",
            m.log_tail()
        );
    }
    ensure!(fs::read(&a)? == vec![b'2'; 50_000]);
    for d in &dirs[..2] {
        ensure!(
            fs::read(d.join("a"))? == vec![b'2'; 50_000],
            "{}",
            d.display()
        );
    }
    ensure!(fs::metadata(dirs[2].join("a"))?.len() == 0);
    Ok(())
}

/// `cluster.favorite-child-policy size`: a split-brain is resolved by the heal daemon itself,
/// with the bigger copy as the source.
#[test]
fn favorite_child_policy_resolves_split_brain_by_itself() -> Result<()> {
    let gw = replicated_gateway()?;
    let dirs: Vec<PathBuf> = (0..2).map(|i| gw.root().join(format!("fav{i}"))).collect();
    let mut args = vec!["volume", "create", "fav", "replica", "2"];
    let specs: Vec<String> = dirs
        .iter()
        .map(|d| format!("127.0.0.1:{}", d.display()))
        .collect();
    args.extend(specs.iter().map(String::as_str));
    gw.gwctl_ok(&args)?;
    gw.gwctl_ok(&[
        "volume",
        "set",
        "fav",
        "cluster.favorite-child-policy",
        "size",
    ])?;
    gw.gwctl_ok(&["volume", "start", "fav"])?;
    let m = NativeMount::start(&gw, "fav", &gw.root().join("fmnt"))?;
    let f = m.dir.join("f");
    fs::write(&f, b"v0")?;
    let (p0, p1) = (brick_pid(&gw, &dirs[0])?, brick_pid(&gw, &dirs[1])?);
    let guard = scopeguard([p0, p1]);
    signal(p0, libc::SIGSTOP);
    wait_connected(&gw, "fav-client-0", false)?;
    fs::write(&f, vec![b'B'; 200_000])?; // fav1's copy: the bigger
    signal(p1, libc::SIGSTOP);
    wait_connected(&gw, "fav-client-1", false)?;
    signal(p0, libc::SIGCONT);
    wait_connected(&gw, "fav-client-0", true)?;
    thread::sleep(Duration::from_secs(4));
    fs::write(&f, vec![b'a'; 1000])?; // fav0's copy
    signal(p1, libc::SIGCONT);
    drop(guard);
    wait_connected(&gw, "fav-client-1", true)?;
    wait_healed_of(&gw, "fav")?;
    for d in &dirs {
        ensure!(
            fs::read(d.join("f"))? == vec![b'B'; 200_000],
            "{}: the policy did not pick the bigger copy",
            d.display()
        );
    }
    ensure!(fs::read(&f)? == vec![b'B'; 200_000]);
    Ok(())
}
