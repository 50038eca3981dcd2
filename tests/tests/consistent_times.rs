//! Consistent times (GlusterFS's ctime feature) on the default 2 x 2 volume: `features/utime`
//! stamps each changing fop once, every brick keeps that stamp in `trusted.glusterfs.mdata`
//! (57 bytes: version 1, flags, ctime, mtime, atime as big-endian (s, ns) pairs) and answers
//! stat from it. So both copies of every entry carry the same bytes, FUSE reports exactly
//! those times, and FUSE, the native client, NFS (GETATTR and READDIRPLUS), S3 (HEAD) and SMB
//! (`allinfo`) all report the same times, sizes, modes and link counts whichever replica
//! answers, here checked with each brick frozen (SIGSTOP) in turn.

use anyhow::{Context, Result, anyhow, bail, ensure};
use e2e::*;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

const MDATA: &str = "trusted.glusterfs.mdata";
const MDATA_LEN: usize = 57;
const MIB: usize = 1 << 20;
/// The ping-timeout the volume gets: how long until a frozen brick is reported down.
const PING_TIMEOUT: &str = "3";
/// How long heal info may take to reach 0 once the bricks are back.
const HEAL_BOUND: Duration = Duration::from_secs(90);
/// Longer than the FUSE attribute (and entry) timeout of 1 s: a stat after this pause asks
/// the file system rather than the kernel's cache.
const PAST_ATTR_TIMEOUT: Duration = Duration::from_millis(1500);

/// `gatewayd up --replica 2` (the 2 x 2 volume: b1,b2 and b3,b4 are the replica sets) with a
/// short ping-timeout, so a frozen brick is reported down within seconds.
fn gateway() -> Result<Gateway> {
    let gw = Gateway::start(GatewayOpts {
        replica: 2,
        extra: vec!["--ping-timeout".into(), PING_TIMEOUT.into()],
        ..Default::default()
    })?;
    ensure!(
        gw.ping_timeout("vol").to_string() == PING_TIMEOUT,
        "the volfile does not carry ping-timeout {PING_TIMEOUT}"
    );
    Ok(gw)
}

// ---------------------------------------------------------------------------------------------
// Times
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Ts {
    sec: i64,
    nsec: u32,
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.sec, self.nsec)
    }
}

impl Ts {
    fn from_ns(ns: i128) -> Ts {
        Ts {
            sec: ns.div_euclid(1_000_000_000) as i64,
            nsec: ns.rem_euclid(1_000_000_000) as u32,
        }
    }
}

/// A decoded `trusted.glusterfs.mdata`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mdata {
    ctime: Ts,
    mtime: Ts,
    atime: Ts,
}

/// Decodes the 57-byte value (written independently of the engine's codec): version u8 = 1,
/// flags u64, then ctime, mtime, atime as (seconds u64, nanoseconds u64), all big-endian.
fn decode_mdata(v: &[u8]) -> Result<Mdata> {
    ensure!(
        v.len() == MDATA_LEN,
        "{MDATA} is {} bytes, not {MDATA_LEN}: {}",
        v.len(),
        hex::encode(v)
    );
    ensure!(
        v[0] == 1,
        "{MDATA} has version {}: {}",
        v[0],
        hex::encode(v)
    );
    let u = |i: usize| u64::from_be_bytes(v[i..i + 8].try_into().expect("8 bytes"));
    let ts = |i: usize| -> Result<Ts> {
        let nsec = u(i + 8);
        ensure!(
            nsec < 1_000_000_000,
            "{MDATA} carries {nsec} ns: {}",
            hex::encode(v)
        );
        Ok(Ts {
            sec: u(i) as i64,
            nsec: nsec as u32,
        })
    };
    Ok(Mdata {
        ctime: ts(9)?,
        mtime: ts(25)?,
        atime: ts(41)?,
    })
}

fn mtime_of(m: &fs::Metadata) -> Ts {
    Ts {
        sec: m.mtime(),
        nsec: m.mtime_nsec() as u32,
    }
}

fn ctime_of(m: &fs::Metadata) -> Ts {
    Ts {
        sec: m.ctime(),
        nsec: m.ctime_nsec() as u32,
    }
}

fn atime_of(m: &fs::Metadata) -> Ts {
    Ts {
        sec: m.atime(),
        nsec: m.atime_nsec() as u32,
    }
}

/// utimensat(2) with nanoseconds, not following a symlink.
fn utimens(p: &Path, atime: Ts, mtime: Ts) -> Result<()> {
    let c = CString::new(p.as_os_str().as_bytes())?;
    let ts = [
        libc::timespec {
            tv_sec: atime.sec,
            tv_nsec: atime.nsec as i64,
        },
        libc::timespec {
            tv_sec: mtime.sec,
            tv_nsec: mtime.nsec as i64,
        },
    ];
    // SAFETY: a valid C path and two timespecs.
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

fn mkfifo(p: &Path) -> Result<()> {
    let c = CString::new(p.as_os_str().as_bytes())?;
    // SAFETY: a valid C path.
    let r = unsafe { libc::mkfifo(c.as_ptr(), 0o640) };
    ensure!(
        r == 0,
        "mkfifo {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Bricks
// ---------------------------------------------------------------------------------------------

/// One entry of a brick: its lstat, its raw `trusted.glusterfs.mdata` and whether it is a DHT
/// linkto file (which stays on the brick the name hashes to and is never what stat shows).
struct BrickEntry {
    meta: fs::Metadata,
    mdata: Option<Vec<u8>>,
    linkto: bool,
}

/// Every entry of a brick, the brick root (the empty path) included, `.glusterfs` left out.
fn brick_entries(brick: &Path) -> Result<BTreeMap<PathBuf, BrickEntry>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let p = brick.join(&rel);
        let meta = fs::symlink_metadata(&p).with_context(|| format!("lstat {}", p.display()))?;
        if meta.is_dir() {
            for e in fs::read_dir(&p).with_context(|| format!("readdir {}", p.display()))? {
                let e = e?;
                if rel.as_os_str().is_empty() && e.file_name() == ".glusterfs" {
                    continue;
                }
                stack.push(rel.join(e.file_name()));
            }
        }
        let linkto = is_linkto(&p, &meta);
        out.insert(
            rel,
            BrickEntry {
                mdata: get_xattr(&p, MDATA),
                meta,
                linkto,
            },
        );
    }
    Ok(out)
}

/// One replica set's (equal) copies of a name.
#[derive(Clone, Copy)]
struct SetCopy {
    dir: bool,
    linkto: bool,
    md: Mdata,
}

fn shown(rel: &Path) -> String {
    format!("/{}", rel.display())
}

/// Names the volume keeps to itself (hidden from every frontend).
fn hidden(rel: &Path) -> bool {
    rel.components()
        .next()
        .is_some_and(|c| c.as_os_str().to_string_lossy().starts_with(".s3-staging"))
}

/// The two copies of every entry in each replica set carry a 57-byte `trusted.glusterfs.mdata`
/// (linkto files: if they carry one, the same), byte-equal between the bricks of the set;
/// directories are on all four bricks. Then `lstat` through `mnt` (after the attribute
/// timeout) gives exactly the decoded mtime and ctime: a file's from the set holding its data,
/// a directory's the newest of its sets' (distribute merges them). Returns the number of
/// entries compared through the mount.
fn check_every_copy(sets: &[Vec<PathBuf>], mnt: &Path) -> Result<usize> {
    let mut problems: Vec<String> = Vec::new();
    // rel → what each replica set holds under that name.
    let mut seen: BTreeMap<PathBuf, Vec<Option<SetCopy>>> = BTreeMap::new();
    let (mut copies, mut linkto, mut linkto_with_times) = (0, 0, 0);
    for (s, set) in sets.iter().enumerate() {
        ensure!(set.len() == 2, "replica set {s} has {} bricks", set.len());
        let a = brick_entries(&set[0])?;
        let b = brick_entries(&set[1])?;
        let names: BTreeSet<&PathBuf> = a.keys().chain(b.keys()).collect();
        for rel in names {
            let (Some(ea), Some(eb)) = (a.get(rel), b.get(rel)) else {
                let (on, off) = if a.contains_key(rel) {
                    (&set[0], &set[1])
                } else {
                    (&set[1], &set[0])
                };
                problems.push(format!(
                    "{} is on {} but not on {}",
                    shown(rel),
                    on.display(),
                    off.display()
                ));
                continue;
            };
            copies += 2;
            if ea.linkto {
                linkto += 2;
                linkto_with_times +=
                    usize::from(ea.mdata.is_some()) + usize::from(eb.mdata.is_some());
            }
            let kind = |m: &fs::Metadata| m.file_type();
            if kind(&ea.meta) != kind(&eb.meta) || ea.linkto != eb.linkto {
                problems.push(format!(
                    "{}: the copies on {} and {} are of different kinds",
                    shown(rel),
                    set[0].display(),
                    set[1].display()
                ));
                continue;
            }
            let hex = |v: &Option<Vec<u8>>| v.as_deref().map_or("none".into(), hex::encode);
            match (&ea.mdata, &eb.mdata) {
                (None, None) if ea.linkto => continue,
                (Some(va), Some(vb)) if va == vb => match decode_mdata(va) {
                    Ok(md) => {
                        seen.entry(rel.clone())
                            .or_insert_with(|| vec![None; sets.len()])[s] =
                            Some(SetCopy {
                                dir: ea.meta.is_dir(),
                                linkto: ea.linkto,
                                md,
                            });
                    }
                    Err(e) => problems.push(format!("{} on replica set {s}: {e:#}", shown(rel))),
                },
                (va, vb) => problems.push(format!(
                    "{} ({}): {MDATA} differs between the copies of replica set {s}:\n      {}: {}\n      {}: {}",
                    shown(rel),
                    if ea.meta.is_dir() {
                        "directory"
                    } else if ea.linkto {
                        "linkto file"
                    } else {
                        "file"
                    },
                    set[0].join(rel).display(),
                    hex(va),
                    set[1].join(rel).display(),
                    hex(vb)
                )),
            }
        }
    }
    ensure!(
        problems.is_empty(),
        "{} problem(s) in {copies} copies:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );

    eprintln!(
        "{copies} copies on the bricks carry equal {MDATA} in their replica sets \
         ({linkto} of them linkto files, {linkto_with_times} of those with times)"
    );
    let mut compared = 0;
    for (rel, per_set) in &seen {
        if hidden(rel) {
            continue;
        }
        let is_dir = per_set.iter().flatten().any(|c| c.dir);
        let want = if is_dir {
            if per_set.iter().any(Option::is_none) {
                problems.push(format!(
                    "directory {} is not on every replica set",
                    shown(rel)
                ));
                continue;
            }
            let all: Vec<Mdata> = per_set.iter().flatten().map(|c| c.md).collect();
            Mdata {
                ctime: all.iter().map(|m| m.ctime).max().expect("sets"),
                mtime: all.iter().map(|m| m.mtime).max().expect("sets"),
                atime: all.iter().map(|m| m.atime).max().expect("sets"),
            }
        } else {
            let data: Vec<Mdata> = per_set
                .iter()
                .flatten()
                .filter(|c| !c.linkto)
                .map(|c| c.md)
                .collect();
            if data.len() != 1 {
                if !data.is_empty() || !per_set.iter().flatten().all(|c| c.linkto) {
                    problems.push(format!(
                        "{} has data on {} replica sets",
                        shown(rel),
                        data.len()
                    ));
                }
                continue;
            }
            data[0]
        };
        let p = mnt.join(rel);
        let m = match fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) => {
                problems.push(format!("lstat {} through FUSE: {e}", p.display()));
                continue;
            }
        };
        compared += 1;
        if (mtime_of(&m), ctime_of(&m)) != (want.mtime, want.ctime) {
            problems.push(format!(
                "{}: FUSE says mtime {} ctime {}, the bricks' {MDATA} says mtime {} ctime {}",
                shown(rel),
                mtime_of(&m),
                ctime_of(&m),
                want.mtime,
                want.ctime
            ));
        }
    }
    ensure!(
        problems.is_empty(),
        "{} entries whose times FUSE reports differently:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
    Ok(compared)
}

/// The copies of `rel` (a file) in the replica set that holds its data carry equal, valid
/// `trusted.glusterfs.mdata`.
fn mdata_equal_on_copies(sets: &[Vec<PathBuf>], rel: &str) -> Result<Mdata> {
    let mut found = Vec::new();
    for (s, set) in sets.iter().enumerate() {
        let paths: Vec<PathBuf> = set.iter().map(|b| b.join(rel)).collect();
        let metas: Vec<Option<fs::Metadata>> =
            paths.iter().map(|p| fs::symlink_metadata(p).ok()).collect();
        if metas.iter().all(|m| m.is_none()) {
            continue;
        }
        let data = metas
            .iter()
            .zip(&paths)
            .filter(|(m, p)| m.as_ref().is_some_and(|m| !is_linkto(p, m)))
            .count();
        if data == 0 {
            continue;
        }
        ensure!(
            data == set.len(),
            "/{rel}: only {data} of the {} bricks of replica set {s} hold it",
            set.len()
        );
        let vals: Vec<Option<Vec<u8>>> = paths.iter().map(|p| get_xattr(p, MDATA)).collect();
        let v0 = vals[0]
            .clone()
            .with_context(|| format!("{} has no {MDATA}", paths[0].display()))?;
        for (p, v) in paths.iter().zip(&vals) {
            ensure!(
                v.as_ref() == Some(&v0),
                "/{rel}: {MDATA} differs between the copies: {} has {}, {} has {}",
                paths[0].display(),
                hex::encode(&v0),
                p.display(),
                v.as_deref().map_or("none".into(), hex::encode)
            );
        }
        found.push(decode_mdata(&v0)?);
    }
    ensure!(
        found.len() == 1,
        "/{rel}: data on {} replica sets",
        found.len()
    );
    Ok(found[0])
}

// ---------------------------------------------------------------------------------------------
// Heal and frozen bricks
// ---------------------------------------------------------------------------------------------

fn heal_info(gw: &Gateway) -> Result<serde_json::Value> {
    let out = gw.gwctl_ok(&["volume", "heal", "vol", "info", "--json"])?;
    serde_json::from_str(&out).with_context(|| format!("heal info --json printed {out:?}"))
}

fn heal_bricks(info: &serde_json::Value) -> Vec<serde_json::Value> {
    info["replica_sets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["bricks"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// Waits until heal info lists nothing pending, no split-brain, and every brick connected.
fn wait_healed(gw: &Gateway) -> Result<Duration> {
    let t0 = Instant::now();
    let mut last = serde_json::Value::Null;
    while t0.elapsed() < HEAL_BOUND {
        let info = heal_info(gw)?;
        let bricks = heal_bricks(&info);
        if bricks.len() == 4
            && bricks.iter().all(|b| b["connected"] == true)
            && info["pending"] == 0
            && info["split_brain"] == 0
        {
            return Ok(t0.elapsed());
        }
        last = info;
        thread::sleep(Duration::from_millis(250));
    }
    bail!(
        "heal info did not reach 0 within {HEAL_BOUND:?}: {last:#}\n{}",
        gw.logs()
    )
}

/// Waits until gatewayd reports `client` (vol-client-N) connected or not; returns how long.
fn wait_connected(gw: &Gateway, client: &str, want: bool) -> Result<Duration> {
    let t0 = Instant::now();
    wait_for(
        Duration::from_secs(60),
        &format!("{client} connected={want}"),
        || {
            let info = heal_info(gw).ok()?;
            heal_bricks(&info)
                .iter()
                .any(|b| b["client"] == client && b["connected"] == want)
                .then_some(())
        },
    )?;
    Ok(t0.elapsed())
}

/// SIGCONTs the stopped brickd when dropped, also when the test fails.
struct Cont(i32);

impl Drop for Cont {
    fn drop(&mut self) {
        signal(self.0, libc::SIGCONT);
    }
}

fn freeze(pid: i32) -> Cont {
    signal(pid, libc::SIGSTOP);
    Cont(pid)
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

struct S3Env {
    url: String,
    access: String,
    secret: String,
    config: PathBuf,
}

fn s3_env(gw: &Gateway, name: &str) -> Result<S3Env> {
    let (access, secret) = gw.s3_key(name)?;
    let config = gw.root().join(format!("aws-{name}.conf"));
    fs::write(&config, "[default]\ns3 =\n    signature_version = s3v4\n")?;
    Ok(S3Env {
        url: gw.s3_url()?,
        access,
        secret,
        config,
    })
}

impl S3Env {
    fn aws(&self, args: &[&str]) -> Command {
        let mut c = Command::new("aws");
        c.arg("--endpoint-url").arg(&self.url).args(args);
        if args.first() == Some(&"s3") && matches!(args.get(1), Some(&("cp" | "sync" | "mv"))) {
            c.arg("--only-show-errors");
        }
        c.env("AWS_ACCESS_KEY_ID", &self.access)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", &self.config)
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        c
    }

    fn aws_ok(&self, args: &[&str]) -> Result<String> {
        run_ok(&mut self.aws(args)).with_context(|| format!("aws {}", args.join(" ")))
    }

    /// `aws s3api head-object`, parsed.
    fn head(&self, bucket: &str, key: &str) -> Result<serde_json::Value> {
        let out = self.aws_ok(&["s3api", "head-object", "--bucket", bucket, "--key", key])?;
        serde_json::from_str(&out).with_context(|| format!("head-object printed {out:?}"))
    }

    /// python3 with the endpoint and key in its environment.
    fn python(&self) -> Command {
        let mut c = Command::new("python3");
        c.env("S3_URL", &self.url)
            .env("AWS_ACCESS_KEY_ID", &self.access)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        c
    }
}

/// Python code run with `tests/nfs/` on its path (for `common.connect`) and the NFS port in
/// its environment; returns stdout.
fn nfs_python(gw: &Gateway, code: &str, args: &[&str]) -> Result<String> {
    run_ok(
        Command::new("python3")
            .args(["-c", code])
            .args(args)
            .env("NFS_PORT", gw.nfs_port()?.to_string())
            .env("PYTHONPATH", workspace_root().join("tests/nfs")),
    )
    .with_context(|| format!("nfs-rs script {args:?}"))
}

/// The multipart ETag S3 gives a file uploaded in parts of `part` bytes:
/// `md5(md5(part 1) ‖ … ‖ md5(part N))-N`.
fn multipart_etag(path: &Path, part: usize) -> Result<String> {
    const CODE: &str = r#"
import hashlib, sys
path, part = sys.argv[1], int(sys.argv[2])
digests = []
with open(path, "rb") as f:
    while chunk := f.read(part):
        digests.append(hashlib.md5(chunk).digest())
print(f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}")
"#;
    Ok(run_ok(
        Command::new("python3")
            .args(["-c", CODE])
            .arg(path)
            .arg(part.to_string()),
    )?
    .trim()
    .to_string())
}

fn smbclient(gw: &Gateway, share: &str, auth: &str, cmds: &str) -> Result<String> {
    let out = run(Command::new("smbclient")
        .arg("-p")
        .arg(gw.smb_port()?.to_string())
        .arg(format!("//127.0.0.1/{share}"))
        .arg("-U")
        .arg(auth)
        .args(["-m", "SMB3", "-c", cmds])
        .env("TZ", "UTC"))?;
    let text = output_text(&out);
    ensure!(
        out.status.success() && !text.contains("NT_STATUS_"),
        "smbclient //{share} -c {cmds:?} failed:\n{text}"
    );
    Ok(text)
}

/// Seconds since the epoch of a date as `date` reads it (smbclient prints `Sat Nov 29 …`).
fn epoch_of(text: &str) -> Result<i64> {
    let out = run_ok(
        Command::new("date")
            .args(["-u", "+%s", "-d"])
            .arg(text)
            .env("TZ", "UTC"),
    )
    .with_context(|| format!("date -d {text:?}"))?;
    out.trim()
        .parse()
        .with_context(|| format!("date -d {text:?} printed {out:?}"))
}

/// A time as smbclient prints it: carried as NTTIME (100 ns units), shown in whole seconds
/// rounded to the nearest (Samba's `convert_timespec_to_time_t`: up when over half a second).
fn smb_seconds(t: Ts) -> i64 {
    t.sec + i64::from(t.nsec / 100 * 100 > 500_000_000)
}

// ---------------------------------------------------------------------------------------------
// 1. Every copy carries the same times
// ---------------------------------------------------------------------------------------------

/// A tree made and changed through FUSE, NFS and S3 (a multipart upload among it): every
/// entry's `trusted.glusterfs.mdata` is on both bricks of its replica set, 57 bytes and
/// byte-equal, and FUSE's stat shows exactly its mtime and ctime.
#[test]
fn every_copy_carries_the_same_times() -> Result<()> {
    need("python3");
    need("aws");
    let t0 = Instant::now();
    let gw = gateway()?;
    let mnt = gw.mnt().to_path_buf();
    let env = s3_env(&gw, "times")?;
    let t = mnt.join("tree");

    // FUSE: files, directories, a symlink, a hard link, a FIFO, then changes to them.
    fs::create_dir_all(t.join("sub/deep"))?;
    fs::create_dir(t.join("gone-dir"))?;
    fs::write(t.join("a.txt"), b"first line\n")?;
    random_file(&t.join("b.bin"), MIB + 12_345, 1)?;
    fs::write(t.join("sub/c.txt"), b"0123456789abcdef")?;
    fs::write(t.join("gone.txt"), b"unlinked below")?;
    fs::File::create(t.join("empty"))?;
    std::os::unix::fs::symlink("a.txt", t.join("link"))?;
    std::os::unix::fs::symlink("../../b.bin", t.join("sub/deep/uplink"))?;
    fs::hard_link(t.join("b.bin"), t.join("b-hard.bin"))?;
    mkfifo(&t.join("fifo"))?;
    // Enough names that both replica sets hold some, and renames that leave linkto files.
    fs::create_dir(t.join("many"))?;
    for i in 0..12 {
        fs::write(t.join(format!("many/{i}")), format!("file {i}\n"))?;
    }
    thread::sleep(Duration::from_millis(20));
    {
        let mut f = fs::OpenOptions::new().append(true).open(t.join("a.txt"))?;
        f.write_all(b"appended\n")?;
    }
    fs::OpenOptions::new()
        .write(true)
        .open(t.join("b.bin"))?
        .write_all_at(&[7u8; 4096], 300_000)?;
    fs::OpenOptions::new()
        .write(true)
        .open(t.join("sub/c.txt"))?
        .set_len(3)?;
    fs::set_permissions(t.join("a.txt"), fs::Permissions::from_mode(0o600))?;
    fs::set_permissions(t.join("sub"), fs::Permissions::from_mode(0o750))?;
    std::os::unix::fs::chown(t.join("sub/c.txt"), Some(1234), Some(5678))?;
    std::os::unix::fs::lchown(t.join("link"), Some(4321), Some(8765))?;
    utimens(
        &t.join("empty"),
        Ts {
            sec: 1_234_567_890,
            nsec: 123_456_789,
        },
        Ts {
            sec: 1_111_111_111,
            nsec: 987_654_321,
        },
    )?;
    utimens(
        &t.join("sub/deep"),
        Ts {
            sec: 1_300_000_000,
            nsec: 1,
        },
        Ts {
            sec: 1_200_000_000,
            nsec: 999_999_999,
        },
    )?;
    fs::rename(t.join("sub/c.txt"), t.join("sub/deep/c-moved.txt"))?;
    for i in 0..6 {
        fs::rename(
            t.join(format!("many/{i}")),
            t.join(format!("many/renamed-{i}")),
        )?;
    }
    fs::remove_file(t.join("gone.txt"))?;
    fs::remove_dir(t.join("gone-dir"))?;
    eprintln!("FUSE part done at {:?}", t0.elapsed());

    // NFS (nfs-rs): the same kinds of changes through the NFS server.
    let code = r#"
import os
from common import connect
with connect() as c:
    c.mkdir("/tree/nfs", 0o755)
    c.mkdir("/tree/nfs/d", 0o700)
    with c.open("/tree/nfs/w.bin", "wb") as f:
        f.write(os.urandom(300_000))
    with c.open("/tree/nfs/w.bin", "ab") as f:
        f.write(b"x" * 5000)
    c.truncate("/tree/nfs/w.bin", 200_000)
    c.chmod("/tree/nfs/w.bin", 0o640)
    c.chown("/tree/nfs/w.bin", 42, 43)
    with c.open("/tree/nfs/t.txt", "wb") as f:
        f.write(b"set times\n")
    c.utime("/tree/nfs/t.txt", ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
    c.utime("/tree/nfs/d", ns=(1_400_000_000_000_000_001, 1_400_000_000_000_000_002))
    c.touch("/tree/nfs/touched")
    c.rename("/tree/nfs/touched", "/tree/nfs/d/touched-moved")
    c.symlink("w.bin", "/tree/nfs/sl")
    c.link("/tree/nfs/w.bin", "/tree/nfs/w-link")
    with c.open("/tree/nfs/doomed", "wb") as f:
        f.write(b"x")
    c.remove("/tree/nfs/doomed")
    with c.open("/tree/sub/from-nfs.txt", "wb") as f:
        f.write(b"an NFS file in a FUSE directory\n")
    c.chmod("/tree/a.txt", 0o604)
    c.utime("/tree/b.bin", ns=(1_700_000_000_000_000_007, 1_700_000_000_000_000_008))
print("nfs done")
"#;
    let out = nfs_python(&gw, code, &[])?;
    ensure!(out.contains("nfs done"), "nfs-rs script: {out}");
    eprintln!("NFS part done at {:?}", t0.elapsed());

    // S3 (aws-cli): objects in the same directory tree (the top-level directory is the bucket),
    // a 20 MiB multipart upload (aws-cli's 8 MiB parts: 3), a copy, metadata, tags, a delete.
    let work = gw.root().join("work");
    fs::create_dir_all(&work)?;
    let small = work.join("small.txt");
    fs::write(&small, b"an object\n")?;
    let mp = work.join("mp.bin");
    random_file(&mp, 20 * MIB, 2)?;
    let small_s = small.to_str().context("utf-8")?;
    env.aws_ok(&[
        "s3api",
        "put-object",
        "--bucket",
        "tree",
        "--key",
        "s3/obj.txt",
        "--body",
        small_s,
        "--metadata",
        "colour=blue",
    ])?;
    env.aws_ok(&[
        "s3",
        "cp",
        mp.to_str().context("utf-8")?,
        "s3://tree/s3/mp.bin",
    ])?;
    env.aws_ok(&["s3", "cp", small_s, "s3://tree/sub/s3-in-a-fuse-dir.txt"])?;
    env.aws_ok(&["s3", "cp", small_s, "s3://tree/s3/doomed.txt"])?;
    env.aws_ok(&[
        "s3api",
        "copy-object",
        "--bucket",
        "tree",
        "--key",
        "s3/copy.txt",
        "--copy-source",
        "tree/s3/obj.txt",
    ])?;
    env.aws_ok(&[
        "s3api",
        "put-object-tagging",
        "--bucket",
        "tree",
        "--key",
        "s3/copy.txt",
        "--tagging",
        "TagSet=[{Key=k,Value=v}]",
    ])?;
    env.aws_ok(&["s3", "cp", small_s, "s3://tree/s3/obj.txt"])?; // over itself
    env.aws_ok(&[
        "s3api",
        "delete-object",
        "--bucket",
        "tree",
        "--key",
        "s3/doomed.txt",
    ])?;
    let head = env.head("tree", "s3/mp.bin")?;
    let etag = head["ETag"].as_str().unwrap_or_default().trim_matches('"');
    ensure!(
        etag.ends_with("-3"),
        "a 20 MiB aws-cli upload is 3 parts: ETag {etag}"
    );
    ensure!(
        sha256_file(&mp)? == sha256_file(&t.join("s3/mp.bin"))?,
        "the multipart object reads back differently through FUSE"
    );
    eprintln!("S3 part done at {:?}", t0.elapsed());

    let took = wait_healed(&gw)?;
    eprintln!("heal info 0 after {took:?}");
    thread::sleep(PAST_ATTR_TIMEOUT);
    let sets = gw.replica_sets();
    let n = check_every_copy(&sets, &mnt).map_err(|e| anyhow!("{e:#}\n{}", gw.logs()))?;
    ensure!(n >= 35, "only {n} entries compared through FUSE");
    // The changes each protocol made are what FUSE shows.
    let sub_deep = fs::symlink_metadata(t.join("sub/deep"))?;
    let nfs_t = fs::symlink_metadata(t.join("nfs/t.txt"))?;
    let empty = fs::symlink_metadata(t.join("empty"))?;
    ensure!(
        mtime_of(&empty).to_string() == "1111111111.987654321"
            && atime_of(&empty).to_string() == "1234567890.123456789",
        "utimes through FUSE: mtime {} atime {}",
        mtime_of(&empty),
        atime_of(&empty)
    );
    ensure!(
        mtime_of(&nfs_t).to_string() == "1500000000.987654321"
            && atime_of(&nfs_t).to_string() == "1600000000.123456789",
        "utimes through NFS: mtime {} atime {}",
        mtime_of(&nfs_t),
        atime_of(&nfs_t)
    );
    // The rename into sub/deep after its utimes moved both its times to the rename's stamp.
    ensure!(
        mtime_of(&sub_deep).sec > 1_200_000_000 && ctime_of(&sub_deep) == mtime_of(&sub_deep),
        "sub/deep after a rename into it: mtime {} ctime {}",
        mtime_of(&sub_deep),
        ctime_of(&sub_deep)
    );
    eprintln!(
        "{n} entries: every copy equal, FUSE agrees; total {:?}",
        t0.elapsed()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. Every protocol reports the same attributes with each brick frozen
// ---------------------------------------------------------------------------------------------

/// What a POSIX view (FUSE, the native client, NFS GETATTR, NFS READDIRPLUS) reports.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Attr {
    size: u64,
    mode: u32,
    nlink: u64,
    uid: u32,
    gid: u32,
    ino: u64,
    atime: Ts,
    mtime: Ts,
    ctime: Ts,
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "size={} mode={:o} nlink={} uid={} gid={} ino={} atime={} mtime={} ctime={}",
            self.size,
            self.mode,
            self.nlink,
            self.uid,
            self.gid,
            self.ino,
            self.atime,
            self.mtime,
            self.ctime
        )
    }
}

impl Attr {
    fn of(m: &fs::Metadata) -> Attr {
        Attr {
            size: m.size(),
            mode: m.mode() & 0o7777,
            nlink: m.nlink(),
            uid: m.uid(),
            gid: m.gid(),
            ino: m.ino(),
            atime: atime_of(m),
            mtime: mtime_of(m),
            ctime: ctime_of(m),
        }
    }

    fn of_nfs(v: &serde_json::Value) -> Result<Attr> {
        let u = |k: &str| v[k].as_u64().with_context(|| format!("no {k} in {v}"));
        let ns = |k: &str| -> Result<Ts> {
            Ok(Ts::from_ns(
                v[k].as_i64()
                    .map(i128::from)
                    .or_else(|| v[k].as_u64().map(i128::from))
                    .with_context(|| format!("no {k} in {v}"))?,
            ))
        };
        Ok(Attr {
            size: u("size")?,
            mode: (u("mode")? & 0o7777) as u32,
            nlink: u("nlink")?,
            uid: u("uid")? as u32,
            gid: u("gid")? as u32,
            ino: u("fileid")?,
            atime: ns("atime")?,
            mtime: ns("mtime")?,
            ctime: ns("ctime")?,
        })
    }
}

/// One reading of every protocol: "VIEW PATH" → what it said.
type Reading = BTreeMap<String, String>;

/// The entries the attribute test reads (volume paths): files, which are also S3 objects of
/// `bucket`, and directories.
struct Subjects {
    bucket: String,
    files: Vec<String>,
    dirs: Vec<String>,
}

const NFS_READ: &str = r#"
import json, sys
from common import connect
paths, dirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
def attrs(i):
    return {"size": i.size, "mode": i.mode, "nlink": i.nlink, "uid": i.uid, "gid": i.gid,
            "fileid": i.fileid, "atime": i.atime, "mtime": i.mtime, "ctime": i.ctime}
out = {"getattr": {}, "readdirplus": {}}
with connect() as c:
    for p in paths:
        out["getattr"][p] = attrs(c.stat(p))
    for d in dirs:
        for e in c.scandir(d):
            if e.name in (".", ".."):
                continue
            out["readdirplus"][d.rstrip("/") + "/" + e.name] = attrs(e.info)
print(json.dumps(out))
"#;

const S3_HEAD: &str = r#"
import json, os, sys
import boto3
from botocore.config import Config
cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"total_max_attempts": 1})
s3 = boto3.client("s3", endpoint_url=os.environ["S3_URL"], region_name="us-east-1", config=cfg)
out = {}
for key in json.loads(sys.argv[2]):
    r = s3.head_object(Bucket=sys.argv[1], Key=key)
    h = r["ResponseMetadata"]["HTTPHeaders"]
    out[key] = {"etag": h["etag"], "last_modified": h["last-modified"],
                "epoch": int(r["LastModified"].timestamp()), "length": int(h["content-length"])}
print(json.dumps(out))
"#;

/// Reads the subjects through every protocol and checks that the protocols agree with each
/// other: FUSE (gatewayd's mount), the native client, NFS GETATTR and READDIRPLUS give the
/// same attributes to the nanosecond; S3 HEAD the same size and mtime second (Last-Modified);
/// SMB `allinfo` the same mtime/ctime/atime seconds and size.
fn read_all(
    gw: &Gateway,
    env: &S3Env,
    native: &Path,
    smb_auth: &str,
    subj: &Subjects,
) -> Result<Reading> {
    let mut r = Reading::new();
    let mut problems = Vec::new();
    let all: Vec<String> = subj.files.iter().chain(&subj.dirs).cloned().collect();
    let mut fuse: BTreeMap<String, Attr> = BTreeMap::new();
    for (view, root) in [
        ("fuse", gw.mnt().to_path_buf()),
        ("native", native.to_path_buf()),
    ] {
        for p in &all {
            let path = root.join(p.trim_start_matches('/'));
            let (m, took) = timed(Duration::from_secs(60), move || fs::symlink_metadata(path));
            let m = m
                .with_context(|| format!("lstat {p} through {view} hung for {took:?}"))?
                .with_context(|| format!("lstat {p} through {view}"))?;
            let a = Attr::of(&m);
            if view == "fuse" {
                fuse.insert(p.clone(), a.clone());
            } else if fuse.get(p) != Some(&a) {
                problems.push(format!(
                    "{p}: the native client says {a}, gatewayd's FUSE mount {}",
                    fuse[p]
                ));
            }
            r.insert(format!("{view} {p}"), a.to_string());
        }
    }

    // NFS: GETATTR of each, READDIRPLUS of each parent.
    let parents: BTreeSet<String> = all
        .iter()
        .map(|p| {
            Path::new(p)
                .parent()
                .map_or("/".into(), |d| d.display().to_string())
        })
        .collect();
    let out = nfs_python(
        gw,
        NFS_READ,
        &[
            &serde_json::to_string(&all)?,
            &serde_json::to_string(&parents)?,
        ],
    )?;
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).with_context(|| format!("nfs-rs printed {out:?}"))?;
    for (view, key) in [
        ("nfs-getattr", "getattr"),
        ("nfs-readdirplus", "readdirplus"),
    ] {
        for p in &all {
            let Some(e) = v[key].get(p) else {
                problems.push(format!("{view} has no {p}: {}", v[key]));
                continue;
            };
            let a = Attr::of_nfs(e)?;
            if fuse.get(p) != Some(&a) {
                problems.push(format!("{p}: {view} says {a}, FUSE {}", fuse[p]));
            }
            r.insert(format!("{view} {p}"), a.to_string());
        }
    }

    // S3 HEAD of every file (object).
    let prefix = format!("/{}/", subj.bucket);
    let keys: Vec<&str> = subj
        .files
        .iter()
        .map(|p| p.strip_prefix(&prefix).expect("files are in the bucket"))
        .collect();
    let out = run_ok(
        env.python()
            .args(["-c", S3_HEAD, &subj.bucket])
            .arg(serde_json::to_string(&keys)?),
    )
    .context("boto3 HEAD")?;
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).with_context(|| format!("boto3 printed {out:?}"))?;
    for (p, k) in subj.files.iter().zip(&keys) {
        let h = &v[*k];
        let f = &fuse[p];
        if h["length"].as_u64() != Some(f.size) || h["epoch"].as_i64() != Some(f.mtime.sec) {
            problems.push(format!(
                "{p}: S3 HEAD says Content-Length {} Last-Modified {} ({}), FUSE size {} mtime {}",
                h["length"], h["last_modified"], h["epoch"], f.size, f.mtime
            ));
        }
        r.insert(
            format!("s3 {p}"),
            format!(
                "etag={} last-modified={} length={}",
                h["etag"], h["last_modified"], h["length"]
            ),
        );
    }

    // SMB allinfo: times at the granularity smbclient shows them.
    for p in &all {
        let text = smbclient(
            gw,
            "vol",
            smb_auth,
            &format!("allinfo \"{}\"", p.trim_start_matches('/')),
        )?;
        let fields: BTreeMap<String, String> = text
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                let k = k.trim();
                (!k.is_empty() && !k.contains(' ')).then(|| (k.to_string(), v.trim().to_string()))
            })
            .collect();
        let f = &fuse[p];
        // Samba's change_time is the mtime (`get_change_timespec`), not the inode ctime.
        for (field, want) in [
            ("write_time", f.mtime),
            ("change_time", f.mtime),
            ("access_time", f.atime),
        ] {
            let got = fields
                .get(field)
                .with_context(|| format!("allinfo {p} has no {field}:\n{text}"))?;
            let secs = epoch_of(got)?;
            if secs != smb_seconds(want) {
                problems.push(format!(
                    "{p}: SMB {field} {got:?} ({secs}) but FUSE says {want}"
                ));
            }
        }
        if subj.files.contains(p) {
            let want = format!("[::$DATA], {} bytes", f.size);
            if fields.get("stream").map(String::as_str) != Some(want.as_str()) {
                problems.push(format!(
                    "{p}: SMB stream {:?}, want {want}",
                    fields.get("stream")
                ));
            }
        }
        let shown: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        r.insert(format!("smb {p}"), shown.join(" | "));
    }
    ensure!(
        problems.is_empty(),
        "the protocols disagree:\n  {}",
        problems.join("\n  ")
    );
    Ok(r)
}

/// `got` must say exactly what `base` said.
fn same_reading(base: &Reading, got: &Reading) -> Result<()> {
    let mut diffs = Vec::new();
    for (k, v) in base {
        match got.get(k) {
            Some(g) if g == v => {}
            Some(g) => diffs.push(format!("{k}:\n      before: {v}\n      now:    {g}")),
            None => diffs.push(format!("{k}: missing now")),
        }
    }
    for k in got.keys().filter(|k| !base.contains_key(*k)) {
        diffs.push(format!("{k}: new"));
    }
    ensure!(
        diffs.is_empty(),
        "{} of {} readings changed:\n  {}",
        diffs.len(),
        base.len(),
        diffs.join("\n  ")
    );
    Ok(())
}

/// Three files (a small one FUSE wrote with set times, a 20 MiB S3 multipart upload, one NFS
/// wrote) and two directories, read through gatewayd's FUSE mount, a native client, NFS
/// GETATTR and READDIRPLUS (nfs-rs), S3 HEAD (boto3) and SMB `allinfo` (smbclient): the
/// protocols agree with each other, and with each of b1..b4 frozen in turn (after it is
/// reported down) every protocol says exactly what it said with every brick up. Each round
/// also writes and chmods a file the frozen brick misses; after heal info reaches 0 both its
/// copies carry the times the clients saw while the brick was away.
#[test]
fn attributes_agree_across_protocols_with_each_brick_frozen() -> Result<()> {
    for p in ["python3", "aws", "smbd", "smbclient"] {
        need(p);
    }
    let t0 = Instant::now();
    let gw = gateway()?;
    let mnt = gw.mnt().to_path_buf();
    let sets = gw.replica_sets();
    let env = s3_env(&gw, "attrs")?;
    gw.gwctl_ok(&["smb", "user", "add", "tim", "--password", "tim-secret-1"])?;
    gw.gwctl_ok(&["smb", "share", "add", "vol", "--volume", "vol"])?;
    let smb_auth = "tim%tim-secret-1";
    wait_for(Duration::from_secs(30), "the SMB share", || {
        smbclient(&gw, "vol", smb_auth, "ls").ok()
    })?;

    // A directory (the bucket), a directory in it, and three files: a small one written
    // through FUSE with set times, a 20 MiB S3 multipart upload (8 MiB parts) and one written
    // through NFS; on both replica sets.
    let bucket = "attrs";
    fs::create_dir(mnt.join(bucket))?;
    fs::create_dir(mnt.join(bucket).join("dir"))?;
    fs::write(mnt.join(bucket).join("dir/inside"), b"in dir\n")?;
    let bricks = gw.brick_dirs();
    let on = |set: usize, prefix: &str| -> Result<String> {
        Ok(names_on_set(&bricks, 2, Path::new(bucket), set, prefix, 1)?.remove(0))
    };
    let (small, big, via_nfs) = (on(0, "small-")?, on(1, "multipart-")?, on(0, "nfs-")?);
    // Not read by the protocols: changed while a brick of its set is frozen, for the heal.
    let changing = [
        mnt.join(bucket).join(on(0, "changing-")?),
        mnt.join(bucket).join(on(1, "changing-")?),
    ];
    for f in &changing {
        fs::write(f, b"changed while a replica is away\n")?;
    }
    let small_p = mnt.join(bucket).join(&small);
    fs::write(&small_p, b"a small file written through FUSE\n")?;
    fs::set_permissions(&small_p, fs::Permissions::from_mode(0o640))?;
    utimens(
        &small_p,
        Ts {
            sec: 1_650_000_000,
            nsec: 111_111_111,
        },
        Ts {
            sec: 1_640_000_000,
            nsec: 222_222_222,
        },
    )?;
    let local = gw.root().join("multipart.bin");
    random_file(&local, 20 * MIB, 5)?;
    env.aws_ok(&[
        "s3",
        "cp",
        local.to_str().context("utf-8")?,
        &format!("s3://{bucket}/{big}"),
    ])?;
    let want_etag = multipart_etag(&local, 8 * MIB)?;
    let code = r#"
import sys
from common import connect
with connect() as c:
    with c.open(sys.argv[1], "wb") as f:
        f.write(bytes(range(256)) * 6000)
    c.chmod(sys.argv[1], 0o604)
print("written")
"#;
    nfs_python(&gw, code, &[&format!("/{bucket}/{via_nfs}")])?;
    utimens(
        &mnt.join(bucket).join("dir"),
        Ts {
            sec: 1_600_000_000,
            nsec: 5,
        },
        Ts {
            sec: 1_600_000_000,
            nsec: 6,
        },
    )?;
    let subj = Subjects {
        bucket: bucket.into(),
        files: [&small, &big, &via_nfs]
            .iter()
            .map(|n| format!("/{bucket}/{n}"))
            .collect(),
        dirs: vec![format!("/{bucket}"), format!("/{bucket}/dir")],
    };
    let native_dir = gw.root().join("native");
    let native = NativeMount::start(&gw, "vol", &native_dir)?;
    wait_healed(&gw)?;
    let head = env.head(bucket, &big)?;
    ensure!(
        head["ETag"].as_str() == Some(&format!("\"{want_etag}\"")),
        "the multipart upload's ETag is {}, want \"{want_etag}\"",
        head["ETag"]
    );
    let mut checks = Checks::new();
    for f in &subj.files {
        checks.check(&format!("{f}: both copies carry the same {MDATA}"), || {
            mdata_equal_on_copies(&sets, f.trim_start_matches('/')).map(|_| ())
        });
    }

    // Reading changes nothing: the first S3 HEAD of a file FUSE or NFS wrote computes its
    // ETag and caches it in an xattr, which must not move the file's change time.
    thread::sleep(PAST_ATTR_TIMEOUT);
    let ctimes = |subj: &Subjects| -> Result<Vec<Ts>> {
        subj.files
            .iter()
            .map(|f| Ok(ctime_of(&fs::symlink_metadata(mnt.join(&f[1..]))?)))
            .collect()
    };
    let before = ctimes(&subj)?;
    read_all(&gw, &env, &native_dir, smb_auth, &subj).context("the first reading")?;
    thread::sleep(PAST_ATTR_TIMEOUT);
    for ((f, b), a) in subj.files.iter().zip(&before).zip(ctimes(&subj)?) {
        checks.check(
            &format!("{f}: reading it through every protocol kept its ctime"),
            || {
                ensure!(*b == a, "ctime moved from {b} to {a}");
                Ok(())
            },
        );
    }
    let base = read_all(&gw, &env, &native_dir, smb_auth, &subj)
        .map_err(|e| anyhow!("the first reading, every brick up: {e:#}"))?;
    for (k, v) in &base {
        eprintln!("  {k}: {v}");
    }
    thread::sleep(PAST_ATTR_TIMEOUT);
    checks.check("a second reading with every brick up says the same", || {
        same_reading(&base, &read_all(&gw, &env, &native_dir, smb_auth, &subj)?)
    });

    for (i, brick) in bricks.iter().enumerate() {
        let during;
        let name = format!("b{}", i + 1);
        let client = format!("vol-client-{i}");
        let pid = gw
            .brickd_pid(brick)
            .with_context(|| format!("no brickd serves {}", brick.display()))?;
        let round = Instant::now();
        {
            let _cont = freeze(pid);
            let down = wait_connected(&gw, &client, false)?;
            eprintln!("{name} frozen: reported down after {down:?}");
            // Past the kernel's attribute cache; the native client's pings time out as well.
            thread::sleep(PAST_ATTR_TIMEOUT);
            checks.check(
                &format!("every protocol says the same with {name} frozen"),
                || {
                    let r = read_all(&gw, &env, &native_dir, smb_auth, &subj)?;
                    same_reading(&base, &r)
                },
            );
            // A write and a chmod the frozen brick misses.
            let f = &changing[i / 2];
            fs::OpenOptions::new()
                .append(true)
                .open(f)?
                .write_all(format!("round {i}\n").as_bytes())?;
            fs::set_permissions(f, fs::Permissions::from_mode(0o600 + (i as u32 % 2) * 0o44))?;
            thread::sleep(PAST_ATTR_TIMEOUT);
            during = Attr::of(&fs::symlink_metadata(f)?);
        }
        wait_connected(&gw, &client, true)?;
        let healed = wait_healed(&gw)?;
        eprintln!(
            "{name} back: heal info 0 after {healed:?}; round took {:?}",
            round.elapsed()
        );
        let f = &changing[i / 2];
        checks.check(
            &format!("the heal after {name}'s round keeps the times clients saw"),
            || {
                let rel = f.strip_prefix(&mnt)?.to_string_lossy().into_owned();
                let md = mdata_equal_on_copies(&sets, &rel)?;
                thread::sleep(PAST_ATTR_TIMEOUT);
                let now = Attr::of(&fs::symlink_metadata(f)?);
                ensure!(
                    now == during && (md.mtime, md.ctime) == (during.mtime, during.ctime),
                    "/{rel}: while {name} was away FUSE said {during}; after the heal it says \
                     {now} and both copies' {MDATA} mtime {} ctime {}",
                    md.mtime,
                    md.ctime
                );
                Ok(())
            },
        );
        for f in &subj.files {
            checks.check(&format!("{f}: copies equal after {name}'s round"), || {
                mdata_equal_on_copies(&sets, f.trim_start_matches('/')).map(|_| ())
            });
        }
    }
    thread::sleep(PAST_ATTR_TIMEOUT);
    checks.check("after the four rounds every protocol says the same", || {
        same_reading(&base, &read_all(&gw, &env, &native_dir, smb_auth, &subj)?)
    });
    drop(native);
    eprintln!("total {:?}", t0.elapsed());
    checks.finish();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. Multipart uploads on the default volume
// ---------------------------------------------------------------------------------------------

/// aws-cli's multipart `cp` (8 MiB parts) of 32 MiB and 200 MiB and boto3's `upload_file` of
/// 44 MiB (8 MiB threshold and parts): each downloads byte-identical, HEAD gives the multipart
/// ETag with the right part count, and both copies carry the same times.
#[test]
fn multipart_uploads_work_on_the_default_volume() -> Result<()> {
    need("aws");
    need("python3");
    let t0 = Instant::now();
    let gw = gateway()?;
    let sets = gw.replica_sets();
    let env = s3_env(&gw, "mp")?;
    let work = gw.root().join("work");
    fs::create_dir_all(&work)?;
    env.aws_ok(&["s3", "mb", "s3://uploads"])?;

    let mut checks = Checks::new();
    for (mib, parts, seed) in [(32usize, 4usize, 32u64), (200, 25, 200)] {
        let key = format!("cli/{mib}mib.bin");
        let up = work.join(format!("{mib}.bin"));
        random_file(&up, mib * MIB, seed)?;
        let t = Instant::now();
        env.aws_ok(&[
            "s3",
            "cp",
            up.to_str().context("utf-8")?,
            &format!("s3://uploads/{key}"),
        ])?;
        eprintln!("aws s3 cp of {mib} MiB: {:?}", t.elapsed());
        checks.check(&format!("aws-cli {mib} MiB"), || {
            let down = work.join(format!("{mib}.down"));
            env.aws_ok(&[
                "s3",
                "cp",
                &format!("s3://uploads/{key}"),
                down.to_str().context("utf-8")?,
            ])?;
            let (a, b) = (sha256_file(&up)?, sha256_file(&down)?);
            fs::remove_file(&down)?;
            ensure!(a == b, "downloaded sha256 {b}, uploaded {a}");
            ensure!(
                sha256_file(&gw.mnt().join("uploads").join(&key))? == a,
                "FUSE reads another content"
            );
            let head = env.head("uploads", &key)?;
            let want = multipart_etag(&up, 8 * MIB)?;
            ensure!(
                want.ends_with(&format!("-{parts}")),
                "expected {parts} parts: {want}"
            );
            ensure!(
                head["ETag"].as_str() == Some(&format!("\"{want}\"")),
                "HEAD ETag {}, want \"{want}\"",
                head["ETag"]
            );
            ensure!(
                head["ContentLength"].as_u64() == Some((mib * MIB) as u64),
                "HEAD Content-Length {}",
                head["ContentLength"]
            );
            mdata_equal_on_copies(&sets, &format!("uploads/{key}"))?;
            Ok(())
        });
        fs::remove_file(&up)?;
    }

    let up = work.join("boto3.bin");
    random_file(&up, 44 * MIB, 44)?;
    let t = Instant::now();
    let out = run(env
        .python()
        .arg(workspace_root().join("tests/s3/upload_file.py"))
        .args(["uploads", "boto3/44mib.bin"])
        .arg(&up))?;
    eprintln!(
        "boto3 upload_file + download_file of 44 MiB: {:?}",
        t.elapsed()
    );
    checks.check("boto3 upload_file 44 MiB", || {
        let text = output_text(&out);
        ensure!(out.status.success(), "upload_file.py failed:\n{text}");
        let line = text
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .with_context(|| format!("no JSON from upload_file.py:\n{text}"))?;
        let v: serde_json::Value = serde_json::from_str(line)?;
        ensure!(v["sha256_down"] == v["sha256_up"], "download differs: {v}");
        ensure!(
            v["expected_etag"]
                .as_str()
                .is_some_and(|e| e.ends_with("-6")),
            "44 MiB in 8 MiB parts is 6 parts: {v}"
        );
        ensure!(
            v["etag"].as_str().map(|e| e.trim_matches('"')) == v["expected_etag"].as_str(),
            "HEAD ETag {} is not the multipart ETag {}",
            v["etag"],
            v["expected_etag"]
        );
        ensure!(
            v["length"].as_u64() == Some((44 * MIB) as u64),
            "HEAD Content-Length {}",
            v["length"]
        );
        ensure!(
            sha256_file(&gw.mnt().join("uploads/boto3/44mib.bin"))?
                == v["sha256_up"].as_str().unwrap_or_default(),
            "FUSE reads another content"
        );
        mdata_equal_on_copies(&sets, "uploads/boto3/44mib.bin")?;
        Ok(())
    });
    checks.check("no multipart upload is left open", || {
        let listed = env.aws_ok(&["s3api", "list-multipart-uploads", "--bucket", "uploads"])?;
        ensure!(!listed.contains("UploadId"), "uploads left: {listed}");
        Ok(())
    });
    eprintln!("total {:?}", t0.elapsed());
    checks.finish();
    Ok(())
}
