//! GlusterFS 10 compatibility both ways, on a four-brick distribute volume named `gv`:
//! bricks written by GlusterFS's own FUSE client are served complete and identical by us after
//! `gwctl volume import`, and bricks we wrote are served complete and identical by GlusterFS.
//!
//! Both directions also rename files after the copy, so the bricks carry DHT linkto files written
//! by the other implementation, which the reader must follow. A replica-2 GlusterFS volume
//! written while a brick was away leaves AFR changelogs that our rules must read as GlusterFS
//! does; and the pending marks either implementation leaves on a replica-2 volume while a brick
//! is away are healed by the other (ours by GlusterFS's self-heal daemon, GlusterFS's by ours).
//! The times either implementation keeps in `trusted.glusterfs.mdata` (GlusterFS's ctime
//! feature) are the times the other reports, to the nanosecond.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use e2e::*;
use sha2::{Digest, Sha256};

const FILES: usize = 400;
const RENAMES: usize = 40;

fn brick_dirs(root: &Path, prefix: &str) -> Vec<PathBuf> {
    (1..=4)
        .map(|i| {
            let b = root.join(format!("{prefix}{i}"));
            std::fs::create_dir_all(&b).expect("brick dir");
            b
        })
        .collect()
}

fn brick_specs(bricks: &[PathBuf]) -> Vec<String> {
    bricks
        .iter()
        .map(|b| format!("127.0.0.1:{}", b.display()))
        .collect()
}

/// Our independent placement/handle checks over a volume's bricks.
fn check_bricks(bricks: &[PathBuf], volume: &str) -> Result<()> {
    let p = check_placement(bricks, volume, true)?;
    eprintln!(
        "placement ok: {} dirs, {} files, {} linkto",
        p.dirs, p.files, p.linkto
    );
    anyhow::ensure!(p.linkto > 0, "renames left no linkto files to follow");
    for b in bricks {
        check_gfids(b, true)?;
    }
    Ok(())
}

#[test]
fn glusterfs_bricks_are_served_by_us_after_import() {
    require_glusterfs!();
    let tmp = temp_dir("g2us");
    let src = tmp.path().join("src");
    source_tree(&src, FILES).unwrap();
    let bricks = brick_dirs(tmp.path(), "gb");

    // 1. GlusterFS writes the tree (and renames, which leave linkto files), then goes away.
    {
        let mut g = GlusterFs::start().unwrap();
        g.create_volume("gv", &bricks).unwrap();
        let m = tmp.path().join("gmnt");
        g.mount("gv", &m).unwrap();
        cp_a(&src, &m).unwrap();
        let moved = rename_some(&m.join("generated"), &src.join("generated"), RENAMES).unwrap();
        eprintln!("renamed {moved} files through GlusterFS");
        diff_r(&src, &m).expect("GlusterFS itself serves the tree");
        g.unmount(&m);
        g.delete_volume("gv").unwrap();
    }

    let mut checks = Checks::new();
    // Our checker must agree with GlusterFS's own placement: this validates the checker that
    // the other tests use on our bricks.
    checks.check(
        "GlusterFS-written bricks pass the independent placement/gfid checks",
        || check_bricks(&bricks, "gv"),
    );

    // 2. We adopt the bricks and serve them.
    let gw = Gateway::start(GatewayOpts {
        mount: false,
        ..Default::default()
    })
    .unwrap();
    let specs = brick_specs(&bricks);
    let mut args = vec!["volume", "import", "gv"];
    args.extend(specs.iter().map(String::as_str));
    gw.gwctl_ok(&args).unwrap();
    let info = gw.gwctl_ok(&["volume", "info", "gv", "--json"]).unwrap();
    eprintln!("imported: {info}");
    checks.check("import keeps GlusterFS's volume-id", || {
        let vid = get_xattr(&bricks[0], "trusted.glusterfs.volume-id")
            .context("brick has no volume-id")?;
        let want = uuid_str(&vid);
        anyhow::ensure!(
            info.contains(&want),
            "volume info does not show the bricks' volume-id {want}: {info}"
        );
        Ok(())
    });
    gw.gwctl_ok(&["volume", "start", "gv"]).unwrap();
    let mnt = tmp.path().join("ourmnt");
    let nm = NativeMount::start(&gw, "gv", &mnt).unwrap();
    checks.check(
        "diff -r of the GlusterFS-written tree through our mount",
        || diff_r(&src, &mnt),
    );
    checks.check(
        "metadata (modes, sizes, mtimes, symlinks) through our mount",
        || compare_trees(&src, &mnt).map(|_| ()),
    );
    checks.check("we can write into the imported volume", || {
        std::fs::write(mnt.join("generated/written-by-us.txt"), b"hello from us\n")?;
        std::fs::create_dir(mnt.join("generated/new-dir-by-us"))?;
        std::fs::write(mnt.join("generated/new-dir-by-us/x"), b"x")?;
        anyhow::ensure!(
            std::fs::read(mnt.join("generated/written-by-us.txt"))? == b"hello from us\n",
            "read back differs"
        );
        Ok(())
    });
    drop(nm);
    let _ = gw.gwctl(&["volume", "stop", "gv"]);
    drop(gw);
    checks.check("bricks still consistent after our writes", || {
        check_placement(&bricks, "gv", true)?;
        for b in &bricks {
            check_gfids(b, true)?;
        }
        Ok(())
    });
    checks.finish();
}

#[test]
fn our_bricks_are_served_by_glusterfs() {
    require_glusterfs!();
    let tmp = temp_dir("us2g");
    let src = tmp.path().join("src");
    source_tree(&src, FILES).unwrap();
    let bricks = brick_dirs(tmp.path(), "ob");

    // 1. We write the tree onto a volume named gv (so linkto values name gv-client-N, as
    //    GlusterFS will call its subvolumes), then stop.
    {
        let mut gw = Gateway::start(GatewayOpts {
            mount: false,
            ..Default::default()
        })
        .unwrap();
        let specs = brick_specs(&bricks);
        let mut args = vec!["volume", "create", "gv", "--force"];
        args.extend(specs.iter().map(String::as_str));
        gw.gwctl_ok(&args).unwrap();
        gw.gwctl_ok(&["volume", "start", "gv"]).unwrap();
        let mnt = tmp.path().join("ourmnt");
        let nm = NativeMount::start(&gw, "gv", &mnt).unwrap();
        cp_a(&src, &mnt).unwrap();
        let moved = rename_some(&mnt.join("generated"), &src.join("generated"), RENAMES).unwrap();
        eprintln!("renamed {moved} files through our mount");
        diff_r(&src, &mnt).expect("we serve what we wrote");
        drop(nm);
        gw.gwctl_ok(&["volume", "stop", "gv"]).unwrap();
        gw.stop();
    }

    let mut checks = Checks::new();
    checks.check(
        "our bricks pass the independent placement/gfid checks",
        || check_bricks(&bricks, "gv"),
    );

    // 2. GlusterFS adopts the bricks. glusterd refuses a brick that already belongs to a volume
    //    (it looks at the root's volume-id and gfid), as it would for its own old bricks.
    let mut g = GlusterFs::start().unwrap();
    let mut created = g.create_volume("gv", &bricks);
    if let Err(e) = &created {
        eprintln!("glusterd refused the bricks as they are ({e:#}); removing root volume-id");
        for b in &bricks {
            remove_xattr(b, "trusted.glusterfs.volume-id").unwrap();
        }
        let _ = g.cli(&["volume", "delete", "gv"]);
        created = g.create_volume("gv", &bricks);
    }
    if let Err(e) = &created {
        eprintln!("glusterd still refuses ({e:#}); removing root gfid too");
        for b in &bricks {
            remove_xattr(b, "trusted.gfid").unwrap();
        }
        let _ = g.cli(&["volume", "delete", "gv"]);
        created = g.create_volume("gv", &bricks);
    }
    created.unwrap();
    let m = tmp.path().join("gmnt");
    g.mount("gv", &m).unwrap();
    checks.check("diff -r of our tree through GlusterFS's FUSE mount", || {
        diff_r(&src, &m)
    });
    checks.check(
        "metadata (modes, sizes, mtimes, symlinks) through GlusterFS",
        || compare_trees(&src, &m).map(|_| ()),
    );
    checks.check("GlusterFS can write into our volume", || {
        std::fs::write(m.join("generated/written-by-glusterfs"), b"hi\n")?;
        anyhow::ensure!(std::fs::read(m.join("generated/written-by-glusterfs"))? == b"hi\n");
        Ok(())
    });
    g.unmount(&m);
    g.delete_volume("gv").unwrap();
    drop(g);
    checks.finish();
}

/// The changelog GlusterFS 10 leaves when a replica is away is read by our AFR rules the way
/// GlusterFS reads it: the brick that stayed is the source, the one that was away the sink,
/// for the file's data and for its parent's entries.
#[test]
fn glusterfs_replica_changelogs_name_the_brick_that_was_away_as_the_sink() {
    use engine::xlators::cluster::replicate::changelog::{
        Changelog, TxnType, find_direction, pending_keys,
    };
    require_glusterfs!();
    let tmp = temp_dir("afrmarks");
    let bricks = brick_dirs(tmp.path(), "rb")[..2].to_vec();
    let mut g = GlusterFs::start().unwrap();
    g.create_volume_with("gr", &["replica", "2"], &bricks)
        .unwrap();
    let m = tmp.path().join("gmnt");
    g.mount("gr", &m).unwrap();
    fs::write(m.join("before.txt"), "both replicas\n").unwrap();

    // Take the second brick away and write while it is gone.
    let away = bricks[1].to_string_lossy().into_owned();
    let pids = pids_matching(|argv| {
        argv.first().is_some_and(|p| p.ends_with("glusterfsd"))
            && argv.iter().any(|a| a.contains(&away))
    });
    assert!(!pids.is_empty(), "no glusterfsd serves {away}");
    for p in pids {
        signal(p, libc::SIGKILL);
    }
    wait_for(
        Duration::from_secs(30),
        "a write with one replica away",
        || fs::write(m.join("before.txt"), "only the first replica\n").ok(),
    )
    .unwrap();
    fs::write(m.join("during.txt"), "created while away\n").unwrap();

    let keys = pending_keys("gr", 2, None);
    let read = |rel: &str| -> Vec<Option<engine::Xattrs>> {
        bricks
            .iter()
            .map(|b| {
                let p = b.join(rel);
                p.exists().then(|| {
                    list_xattrs(&p)
                        .into_iter()
                        .filter(|k| k.starts_with("trusted.afr."))
                        .filter_map(|k| get_xattr(&p, &k).map(|v| (k, bytes::Bytes::from(v))))
                        .collect()
                })
            })
            .collect()
    };
    let direction = |rel: &str, ty: TxnType| {
        let x = read(rel);
        let replies: Vec<Option<&engine::Xattrs>> = x
            .iter()
            .map(|r| Some(r.as_ref().unwrap_or(&EMPTY)))
            .collect();
        let c = Changelog::extract(&replies, &keys, ty);
        find_direction(&c, &[true, true]).unwrap()
    };
    static EMPTY: engine::Xattrs = engine::Xattrs::new();

    let data = direction("before.txt", TxnType::Data);
    assert_eq!(data.sources, [true, false], "data of before.txt: {data:?}");
    assert_eq!(data.sinks, [false, true], "data of before.txt: {data:?}");
    let entry = direction("", TxnType::Entry);
    assert_eq!(entry.sources, [true, false], "entries of /: {entry:?}");
    assert_eq!(entry.sinks, [false, true], "entries of /: {entry:?}");
    assert!(!bricks[1].join("during.txt").exists());

    g.unmount(&m);
    g.delete_volume("gr").unwrap();
}

// ---------------------------------------------------------------------------------------------
// Replication both ways: pending marks one implementation left are healed by the other.
// ---------------------------------------------------------------------------------------------

/// What a replicated test tree must hold: relative path → `None` for a directory, the bytes
/// for a file.
type Model = BTreeMap<PathBuf, Option<Vec<u8>>>;

/// The mode `chmod.txt` gets while a replica is away (a metadata heal).
const CHMOD_MODE: u32 = 0o600;

/// How long our heal may take once the volume is started.
const OUR_HEAL_BOUND: Duration = Duration::from_secs(60);
/// How long GlusterFS's self-heal daemon may take.
const GLUSTERFS_HEAL_BOUND: Duration = Duration::from_secs(120);

/// `len` deterministic bytes (xorshift): not compressible, not repetitive.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

fn put(root: &Path, model: &mut Model, rel: &str, data: Vec<u8>) -> Result<()> {
    fs::write(root.join(rel), &data).with_context(|| format!("writing /{rel}"))?;
    model.insert(rel.into(), Some(data));
    Ok(())
}

fn mkdir(root: &Path, model: &mut Model, rel: &str) -> Result<()> {
    fs::create_dir(root.join(rel)).with_context(|| format!("mkdir /{rel}"))?;
    model.insert(rel.into(), None);
    Ok(())
}

/// The tree both replicas get while both are up.
fn write_tree_before(root: &Path) -> Result<Model> {
    let mut m = Model::new();
    put(root, &mut m, "keep.txt", b"unchanged while away\n".to_vec())?;
    put(root, &mut m, "modify.bin", noise(64 << 10, 1))?;
    put(root, &mut m, "delete.txt", b"deleted while away\n".to_vec())?;
    put(
        root,
        &mut m,
        "chmod.txt",
        b"mode changed while away\n".to_vec(),
    )?;
    fs::set_permissions(root.join("chmod.txt"), fs::Permissions::from_mode(0o644))?;
    mkdir(root, &mut m, "sub")?;
    put(root, &mut m, "sub/a.txt", b"a\n".to_vec())?;
    put(root, &mut m, "sub/grow.bin", noise(100 << 10, 2))?;
    mkdir(root, &mut m, "sub/deep")?;
    put(root, &mut m, "sub/deep/c.txt", b"deep\n".to_vec())?;
    Ok(m)
}

/// The changes made while one replica is away: a rewrite inside a file, an append, a mode
/// change, new files, a new directory tree, a delete.
fn write_tree_while_away(root: &Path, mut m: Model) -> Result<Model> {
    use std::io::{Seek, SeekFrom, Write};
    put(root, &mut m, "new.txt", b"created while away\n".to_vec())?;
    // 5000 bytes rewritten in the middle of modify.bin.
    let patch = noise(5000, 3);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(root.join("modify.bin"))?;
    f.seek(SeekFrom::Start(20_000))?;
    f.write_all(&patch)?;
    drop(f);
    if let Some(Some(d)) = m.get_mut(Path::new("modify.bin")) {
        d[20_000..25_000].copy_from_slice(&patch);
    }
    // 30000 bytes appended to sub/grow.bin.
    let tail = noise(30_000, 4);
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(root.join("sub/grow.bin"))?;
    f.write_all(&tail)?;
    drop(f);
    if let Some(Some(d)) = m.get_mut(Path::new("sub/grow.bin")) {
        d.extend_from_slice(&tail);
    }
    fs::set_permissions(
        root.join("chmod.txt"),
        fs::Permissions::from_mode(CHMOD_MODE),
    )?;
    mkdir(root, &mut m, "newdir")?;
    put(root, &mut m, "newdir/x.txt", b"x\n".to_vec())?;
    mkdir(root, &mut m, "newdir/inner")?;
    put(root, &mut m, "newdir/inner/y.bin", noise(50 << 10, 5))?;
    put(
        root,
        &mut m,
        "sub/deep/new-in-old-dir.txt",
        b"new in an old dir\n".to_vec(),
    )?;
    fs::remove_file(root.join("delete.txt"))?;
    m.remove(Path::new("delete.txt"));
    Ok(m)
}

/// A brick's (or a mount's) tree: relative path → (`None` for a directory or the file's bytes,
/// permission bits). Names starting with `.glusterfs` and `.trashcan` at the root are the
/// brick's own and left out.
type Listing = BTreeMap<PathBuf, (Option<Vec<u8>>, u32)>;

fn listing(root: &Path) -> Result<Listing> {
    let mut out = Listing::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for e in fs::read_dir(&dir).with_context(|| format!("readdir {}", dir.display()))? {
            let e = e?;
            let name = e.file_name();
            let n = name.to_string_lossy();
            if rel.as_os_str().is_empty() && (n.starts_with(".glusterfs") || n == ".trashcan") {
                continue;
            }
            let r = rel.join(&name);
            let meta = fs::symlink_metadata(e.path())?;
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                stack.push(r.clone());
                out.insert(r, (None, mode));
            } else if meta.is_file() {
                let data =
                    fs::read(e.path()).with_context(|| format!("reading {}", r.display()))?;
                out.insert(r, (Some(data), mode));
            } else {
                bail!(
                    "{}: unexpected file type {:?}",
                    e.path().display(),
                    meta.file_type()
                );
            }
        }
    }
    Ok(out)
}

fn describe(v: &Option<Vec<u8>>) -> String {
    match v {
        None => "a directory".into(),
        Some(d) => format!(
            "a file of {} bytes, sha256 {}",
            d.len(),
            &hex::encode(Sha256::digest(d))[..12]
        ),
    }
}

/// The tree under `root` holds exactly the model's names, with the model's contents, and
/// `chmod.txt` has [`CHMOD_MODE`].
fn check_model(root: &Path, model: &Model) -> Result<()> {
    let l = listing(root)?;
    let mut problems = Vec::new();
    for (p, want) in model {
        match l.get(p) {
            None => problems.push(format!("/{} is missing", p.display())),
            Some((got, _)) if got != want => problems.push(format!(
                "/{} is {}, want {}",
                p.display(),
                describe(got),
                describe(want)
            )),
            Some(_) => {}
        }
    }
    for p in l.keys().filter(|p| !model.contains_key(*p)) {
        problems.push(format!("/{} should not exist", p.display()));
    }
    match l.get(Path::new("chmod.txt")) {
        Some((_, mode)) if *mode == CHMOD_MODE => {}
        other => problems.push(format!(
            "/chmod.txt mode is {:o}, want {CHMOD_MODE:o}",
            other.map(|o| o.1).unwrap_or(0)
        )),
    }
    ensure!(
        problems.is_empty(),
        "{}: {}",
        root.display(),
        problems.join("; ")
    );
    Ok(())
}

/// Both replicas hold the same names, types, permission bits and bytes.
fn check_replicas_identical(bricks: &[PathBuf]) -> Result<()> {
    let (a, b) = (listing(&bricks[0])?, listing(&bricks[1])?);
    let mut problems = Vec::new();
    for p in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
        match (a.get(p), b.get(p)) {
            (Some(x), Some(y)) if x == y => {}
            (Some((dx, mx)), Some((dy, my))) => problems.push(format!(
                "/{}: {} mode {mx:o} vs {} mode {my:o}",
                p.display(),
                describe(dx),
                describe(dy)
            )),
            (Some(_), None) => problems.push(format!("/{} only on the first", p.display())),
            (None, Some(_)) => problems.push(format!("/{} only on the second", p.display())),
            (None, None) => {}
        }
    }
    ensure!(
        problems.is_empty(),
        "the replicas differ: {}",
        problems.join("; ")
    );
    Ok(())
}

fn has_mark(marks: &[(PathBuf, String, String)], rel: &str, key: &str) -> bool {
    marks
        .iter()
        .any(|(p, k, _)| p == Path::new(rel) && k == key)
}

/// `getfattr -d -m . -e hex` of every entry of the bricks (outside `.glusterfs`), and the
/// bricks' heal indices: what a failure report needs.
fn xattr_dump(bricks: &[PathBuf]) -> String {
    let mut out = String::new();
    for b in bricks {
        let mut paths = vec![b.clone()];
        if let Ok(l) = listing(b) {
            paths.extend(l.into_keys().map(|r| b.join(r)));
        }
        let text = run(Command::new("getfattr")
            .args(["--absolute-names", "-d", "-m", ".", "-e", "hex"])
            .args(&paths))
        .map(|o| output_text(&o))
        .unwrap_or_else(|e| format!("{e:#}"));
        out.push_str(&text);
        for idx in ["xattrop", "dirty", "entry-changes"] {
            let d = b.join(".glusterfs/indices").join(idx);
            let names: Vec<String> = fs::read_dir(&d)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            out.push_str(&format!("# {}: {names:?}\n", d.display()));
        }
    }
    out
}

/// `r`, with the bricks' xattrs and indices added to its error.
/// After a heal: both bricks equal, each holding the expected tree, and no mark left.
fn check_healed_replicas(checks: &mut Checks, bricks: &[PathBuf], model: &Model) {
    checks.check("both bricks hold the same names, modes and bytes", || {
        with_dump(check_replicas_identical(bricks), bricks)
    });
    for (i, b) in bricks.iter().enumerate() {
        checks.check(&format!("brick {} holds the expected tree", i + 1), || {
            check_model(b, model)
        });
    }
    checks.check("no trusted.afr.* value is left non-zero", || {
        let left: Vec<_> = bricks.iter().flat_map(|b| afr_marks(b)).collect();
        ensure!(
            left.is_empty(),
            "non-zero marks left: {left:?}\n{}",
            xattr_dump(bricks)
        );
        Ok(())
    });
}

fn with_dump(r: Result<()>, bricks: &[PathBuf]) -> Result<()> {
    r.map_err(|e| anyhow::anyhow!("{e:#}\n{}", xattr_dump(bricks)))
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

fn our_heal_info(gw: &Gateway, vol: &str) -> Result<serde_json::Value> {
    let out = gw.gwctl_ok(&["volume", "heal", vol, "info", "--json"])?;
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

/// Waits until our heal info lists nothing on any brick, no split-brain, every brick connected.
fn wait_our_heal(gw: &Gateway, vol: &str) -> Result<Duration> {
    let t0 = Instant::now();
    let mut last = serde_json::Value::Null;
    while t0.elapsed() < OUR_HEAL_BOUND {
        let info = our_heal_info(gw, vol)?;
        let bricks = heal_bricks(&info);
        if bricks.len() == 2
            && bricks.iter().all(|b| b["connected"] == true)
            && info["pending"] == 0
            && info["split_brain"] == 0
        {
            return Ok(t0.elapsed());
        }
        last = info;
        thread::sleep(Duration::from_millis(250));
    }
    bail!("our heal info did not reach 0 within {OUR_HEAL_BOUND:?}: {last:#}")
}

/// `gluster volume heal VOL` (repeated: the self-heal daemon may not be up at first) until
/// `heal info` shows every brick connected with `Number of entries: 0`.
fn wait_glusterfs_heal(g: &GlusterFs, vol: &str, bricks: usize) -> Result<Duration> {
    let t0 = Instant::now();
    let mut last_trigger: Option<Instant> = None;
    let mut last = String::new();
    while t0.elapsed() < GLUSTERFS_HEAL_BOUND {
        if last_trigger.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            let out = g.cli(&["volume", "heal", vol])?;
            if out.status.success() {
                last_trigger = Some(Instant::now());
            } else {
                last = format!("heal: {}", output_text(&out));
            }
        }
        if last_trigger.is_some() {
            let out = g.cli(&["volume", "heal", vol, "info"])?;
            let text = output_text(&out);
            let zero = text
                .lines()
                .filter(|l| l.trim() == "Number of entries: 0")
                .count();
            let connected = text
                .lines()
                .filter(|l| l.trim() == "Status: Connected")
                .count();
            if out.status.success() && zero == bricks && connected == bricks {
                return Ok(t0.elapsed());
            }
            last = text;
        }
        thread::sleep(Duration::from_secs(1));
    }
    bail!("GlusterFS heal info did not reach 0 within {GLUSTERFS_HEAL_BOUND:?}:\n{last}")
}

/// A replica-2 GlusterFS volume written while one brick was away: its changelogs (pending
/// `trusted.afr.gr-client-1` on the brick that stayed, and the heal indices) are read by our
/// replicate after `gwctl volume import`, and our heal brings the other brick back: the same
/// names, the same bytes, the delete carried out, the marks cleared.
#[test]
fn glusterfs_pending_marks_are_healed_by_us() {
    require_glusterfs!();
    let tmp = temp_dir("g2heal");
    let bricks = brick_dirs(tmp.path(), "gb")[..2].to_vec();
    let t0 = Instant::now();

    // 1. GlusterFS writes a tree, loses brick 2, and changes the tree without it.
    let model = {
        let mut g = GlusterFs::start().unwrap();
        g.create_volume_with("gr", &["replica", "2"], &bricks)
            .unwrap();
        let m = tmp.path().join("gmnt");
        g.mount("gr", &m).unwrap();
        let model = write_tree_before(&m).unwrap();
        let away = bricks[1].to_string_lossy().into_owned();
        let pids = pids_matching(|argv| {
            argv.first().is_some_and(|p| p.ends_with("glusterfsd"))
                && argv.iter().any(|a| a.contains(&away))
        });
        assert!(!pids.is_empty(), "no glusterfsd serves {away}");
        for p in pids {
            signal(p, libc::SIGKILL);
        }
        wait_for(
            Duration::from_secs(30),
            "a write with one replica away",
            || fs::write(m.join("new.txt"), b"created while away\n").ok(),
        )
        .unwrap();
        let model = write_tree_while_away(&m, model).unwrap();
        check_model(&m, &model).expect("GlusterFS serves what it wrote");
        g.unmount(&m);
        g.delete_volume("gr").unwrap();
        model
    };
    eprintln!("GlusterFS wrote the tree in {:?}", t0.elapsed());

    let marks = afr_marks(&bricks[0]);
    eprintln!("marks on the brick that stayed: {marks:?}");
    let dump = xattr_dump(&bricks);
    for rel in ["", "modify.bin", "sub/grow.bin", "chmod.txt"] {
        assert!(
            has_mark(&marks, rel, "trusted.afr.gr-client-1"),
            "GlusterFS left no pending trusted.afr.gr-client-1 on /{rel}:\n{dump}"
        );
    }
    assert!(
        !bricks[1].join("new.txt").exists() && bricks[1].join("delete.txt").exists(),
        "brick 2 was not away:\n{dump}"
    );

    // 2. We import the bricks and heal.
    let gw = Gateway::start(GatewayOpts {
        mount: false,
        ..Default::default()
    })
    .unwrap();
    let specs = brick_specs(&bricks);
    let mut args = vec!["volume", "import", "gr", "replica", "2"];
    args.extend(specs.iter().map(String::as_str));
    gw.gwctl_ok(&args).unwrap();
    gw.gwctl_ok(&["volume", "start", "gr"]).unwrap();
    let before = our_heal_info(&gw, "gr").unwrap();
    eprintln!("heal info after import: {before}");
    let t1 = Instant::now();
    gw.gwctl_ok(&["volume", "heal", "gr"]).unwrap();

    let mut checks = Checks::new();
    checks.check("our heal info reaches 0 pending, 0 split-brain", || {
        let took = wait_our_heal(&gw, "gr")
            .map_err(|e| anyhow!("{e:#}\n{}\n{}", xattr_dump(&bricks), gw.logs()))?;
        eprintln!(
            "our heal info reached 0 in {took:?} ({:?} after the heal command)",
            t1.elapsed()
        );
        Ok(())
    });
    check_healed_replicas(&mut checks, &bricks, &model);
    let mnt = tmp.path().join("ourmnt");
    let nm = NativeMount::start(&gw, "gr", &mnt).unwrap();
    checks.check("our mount reads the expected tree", || {
        check_model(&mnt, &model)
    });
    drop(nm);
    let _ = gw.gwctl(&["volume", "stop", "gr"]);
    drop(gw);
    eprintln!("total {:?}", t0.elapsed());
    checks.finish();
}

/// The other way: our replicate, its self-heal off, writes while one brick is stopped and
/// leaves pending marks on the brick that stayed; GlusterFS's self-heal daemon, given the
/// bricks, reads those marks and indices and heals the other brick.
#[test]
fn our_pending_marks_are_healed_by_glusterfs() {
    require_glusterfs!();
    let tmp = temp_dir("us2heal");
    let bricks = brick_dirs(tmp.path(), "ob")[..2].to_vec();
    let t0 = Instant::now();

    // 1. We write a tree, stop brick 2, and change the tree without it.
    let model = {
        let mut gw = Gateway::start(GatewayOpts {
            mount: false,
            extra: vec!["--ping-timeout".into(), "3".into()],
            ..Default::default()
        })
        .unwrap();
        let specs = brick_specs(&bricks);
        let mut args = vec!["volume", "create", "gq", "replica", "2"];
        args.extend(specs.iter().map(String::as_str));
        args.push("force");
        gw.gwctl_ok(&args).unwrap();
        for opt in [
            "cluster.self-heal-daemon",
            "cluster.data-self-heal",
            "cluster.metadata-self-heal",
            "cluster.entry-self-heal",
        ] {
            gw.gwctl_ok(&["volume", "set", "gq", opt, "off"]).unwrap();
        }
        gw.gwctl_ok(&["volume", "start", "gq"]).unwrap();
        let mnt = tmp.path().join("ourmnt");
        let mut nm = NativeMount::start(&gw, "gq", &mnt).unwrap();
        let model = write_tree_before(&mnt).unwrap();
        let pid = gw
            .brickd_pid(&bricks[1])
            .unwrap_or_else(|| panic!("no brickd serves {}", bricks[1].display()));
        signal(pid, libc::SIGSTOP);
        let cont = Cont(vec![pid]);
        wait_for(Duration::from_secs(30), "gq-client-1 disconnected", || {
            let info = our_heal_info(&gw, "gq").ok()?;
            heal_bricks(&info)
                .iter()
                .any(|b| b["client"] == "gq-client-1" && b["connected"] == false)
                .then_some(())
        })
        .unwrap();
        let root = mnt.clone();
        let (r, took) = timed(Duration::from_secs(90), move || {
            write_tree_while_away(&root, model)
        });
        let model = r
            .unwrap_or_else(|| panic!("the writes with a brick away hung\n{}", nm.log_tail()))
            .unwrap();
        eprintln!("writes with brick 2 stopped took {took:?}");
        check_model(&mnt, &model).expect("we serve what we wrote");
        drop(cont);
        nm.stop();
        gw.gwctl_ok(&["volume", "stop", "gq"]).unwrap();
        gw.stop();
        model
    };
    eprintln!("we wrote the tree in {:?}", t0.elapsed());

    let marks = afr_marks(&bricks[0]);
    eprintln!("marks on the brick that stayed: {marks:?}");
    let dump = xattr_dump(&bricks);
    for rel in ["", "modify.bin", "sub/grow.bin", "chmod.txt"] {
        assert!(
            has_mark(&marks, rel, "trusted.afr.gq-client-1"),
            "we left no pending trusted.afr.gq-client-1 on /{rel}:\n{dump}"
        );
    }
    assert!(
        !bricks[1].join("new.txt").exists() && bricks[1].join("delete.txt").exists(),
        "brick 2 was not away:\n{dump}"
    );

    // 2. GlusterFS adopts the bricks (without the root's volume-id if glusterd refuses them,
    //    as in our_bricks_are_served_by_glusterfs) and its self-heal daemon heals.
    let mut g = GlusterFs::start().unwrap();
    let mut created = g.create_volume_with("gq", &["replica", "2"], &bricks);
    if let Err(e) = &created {
        eprintln!("glusterd refused the bricks as they are ({e:#}); removing root volume-id");
        for b in &bricks {
            remove_xattr(b, "trusted.glusterfs.volume-id").unwrap();
        }
        let _ = g.cli(&["volume", "delete", "gq"]);
        created = g.create_volume_with("gq", &["replica", "2"], &bricks);
    }
    created.unwrap();
    let t1 = Instant::now();
    let mut checks = Checks::new();
    checks.check(
        "GlusterFS heal info reaches 0 entries on both bricks",
        || {
            let took = wait_glusterfs_heal(&g, "gq", 2).map_err(|e| {
                anyhow!(
                    "{e:#}\n{}\n--- glustershd.log ---\n{}",
                    xattr_dump(&bricks),
                    tail(Path::new("/var/log/glusterfs/glustershd.log"), 40)
                )
            })?;
            eprintln!(
                "GlusterFS heal info reached 0 in {took:?} ({:?} after start)",
                t1.elapsed()
            );
            Ok(())
        },
    );
    check_healed_replicas(&mut checks, &bricks, &model);
    let m = tmp.path().join("gmnt");
    g.mount("gq", &m).unwrap();
    checks.check("GlusterFS's mount reads the expected tree", || {
        check_model(&m, &model)
    });
    g.unmount(&m);
    g.delete_volume("gq").unwrap();
    drop(g);
    eprintln!("total {:?}", t0.elapsed());
    checks.finish();
}

// ---------------------------------------------------------------------------------------------
// Consistent times both ways: `trusted.glusterfs.mdata` (GlusterFS's ctime feature).
// ---------------------------------------------------------------------------------------------

const MDATA: &str = "trusted.glusterfs.mdata";

/// An entry's times as stat shows them: (seconds, nanoseconds) of mtime, ctime and atime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Times {
    mtime: (i64, i64),
    ctime: (i64, i64),
    atime: (i64, i64),
}

impl Times {
    fn of(m: &fs::Metadata) -> Times {
        use std::os::unix::fs::MetadataExt;
        Times {
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            atime: (m.atime(), m.atime_nsec()),
        }
    }
}

fn ts((s, ns): (i64, i64)) -> String {
    format!("{s}.{ns:09}")
}

/// The tree both times tests write, through either implementation's mount: directories,
/// files, a symlink and a hard link; times set with `touch -d` (to the nanosecond, some only
/// mtime or only atime), then, a second later, an append, a new file in a touched directory
/// (its mtime moves on), a chmod (ctime moves, mtime stays) and a rename.
fn write_timed_tree(root: &Path) -> Result<()> {
    for d in ["d1", "d1/d2", "d3", "empty-dir"] {
        fs::create_dir(root.join(d)).with_context(|| format!("mkdir /{d}"))?;
    }
    fs::write(root.join("f1"), b"first\n")?;
    fs::write(root.join("d1/f2"), noise(100_000, 7))?;
    fs::write(root.join("d1/d2/f3"), b"deep\n")?;
    fs::write(root.join("d3/old"), b"old\n")?;
    fs::write(root.join("untouched"), b"never changed again\n")?;
    std::os::unix::fs::symlink("f1", root.join("sl"))?;
    fs::hard_link(root.join("d3/old"), root.join("old-hard"))?;
    for (args, what) in [
        (&["-d", "2001-02-03 04:05:06.123456789"][..], "d1/f2"),
        (&["-m", "-d", "1999-12-31 23:59:59.5"][..], "d1/d2/f3"),
        (&["-a", "-d", "2010-01-01 00:00:00.000000001"][..], "d3/old"),
        (&["-d", "2005-05-05 05:05:05.555555555"][..], "d3"),
        (&["-d", "2006-06-06 06:06:06.666666666"][..], "empty-dir"),
        (&["-h", "-d", "2007-07-07 07:07:07.777777777"][..], "sl"),
    ] {
        run_ok(Command::new("touch").args(args).arg(what).current_dir(root))
            .with_context(|| format!("touch {args:?} {what}"))?;
    }
    thread::sleep(Duration::from_millis(1100));
    {
        use std::io::Write;
        let mut f = fs::OpenOptions::new().append(true).open(root.join("f1"))?;
        f.write_all(b"appended a second later\n")?;
    }
    fs::write(root.join("d3/late"), b"later\n")?;
    fs::set_permissions(root.join("d1/f2"), fs::Permissions::from_mode(0o600))?;
    fs::rename(root.join("d1/d2/f3"), root.join("d1/d2/f3-renamed"))?;
    Ok(())
}

/// lstat of every entry under `root` (the root itself as the empty path; GlusterFS's own
/// `.glusterfs*` and `.trashcan` names at the root left out), after the attribute caches of
/// the mount (1 s in both implementations) expired.
fn record_times(root: &Path) -> Result<BTreeMap<PathBuf, Times>> {
    thread::sleep(Duration::from_millis(2100));
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let p = root.join(&rel);
        let m = fs::symlink_metadata(&p).with_context(|| format!("lstat {}", p.display()))?;
        out.insert(rel.clone(), Times::of(&m));
        if m.is_dir() {
            for e in fs::read_dir(&p)? {
                let name = e?.file_name();
                let n = name.to_string_lossy();
                if rel.as_os_str().is_empty() && (n.starts_with(".glusterfs") || n == ".trashcan") {
                    continue;
                }
                stack.push(rel.join(&name));
            }
        }
    }
    Ok(out)
}

/// `root` (the other implementation's mount) reports the recorded mtime and ctime of every
/// entry, to the nanosecond, and holds no other entry.
fn same_times(want: &BTreeMap<PathBuf, Times>, root: &Path, who: &str) -> Result<()> {
    let got = record_times(root)?;
    let mut problems = Vec::new();
    for (rel, w) in want {
        let Some(g) = got.get(rel) else {
            problems.push(format!("/{} is missing", rel.display()));
            continue;
        };
        if (g.mtime, g.ctime) != (w.mtime, w.ctime) {
            problems.push(format!(
                "/{}: {who} reports mtime {} ctime {} (atime {}), it was mtime {} ctime {} (atime {})",
                rel.display(),
                ts(g.mtime),
                ts(g.ctime),
                ts(g.atime),
                ts(w.mtime),
                ts(w.ctime),
                ts(w.atime)
            ));
        }
    }
    for rel in got.keys().filter(|r| !want.contains_key(*r)) {
        problems.push(format!("/{} is new", rel.display()));
    }
    ensure!(
        problems.is_empty(),
        "{} of {} entries differ:\n  {}",
        problems.len(),
        want.len(),
        problems.join("\n  ")
    );
    Ok(())
}

/// Every copy of the recorded entries (not the root) on the bricks carries a 57-byte
/// `trusted.glusterfs.mdata`: relative path → brick index → value.
fn brick_mdata(
    bricks: &[PathBuf],
    entries: &BTreeMap<PathBuf, Times>,
) -> Result<BTreeMap<(PathBuf, usize), Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut missing = Vec::new();
    for rel in entries.keys().filter(|r| !r.as_os_str().is_empty()) {
        let mut copies = 0;
        for (i, b) in bricks.iter().enumerate() {
            let p = b.join(rel);
            let Ok(m) = fs::symlink_metadata(&p) else {
                continue;
            };
            if is_linkto(&p, &m) {
                continue;
            }
            copies += 1;
            match get_xattr(&p, MDATA) {
                Some(v) if v.len() == 57 => {
                    out.insert((rel.clone(), i), v);
                }
                other => missing.push(format!(
                    "{}: {}",
                    p.display(),
                    other.map_or("none".into(), |v| format!("{} bytes", v.len()))
                )),
            }
        }
        if copies == 0 {
            missing.push(format!("/{}: on no brick", rel.display()));
        }
    }
    ensure!(
        missing.is_empty(),
        "copies without a 57-byte {MDATA}:\n  {}",
        missing.join("\n  ")
    );
    Ok(out)
}

/// GlusterFS 10 (ctime feature on by default) writes a 2 x 2 volume with set times and later
/// changes; after `gwctl volume import`, our mount reports the mtime and ctime GlusterFS's
/// mount did for every entry, to the nanosecond, and reading them rewrites no time.
#[test]
fn glusterfs_times_survive_import() {
    need("glusterd");
    need("gluster");
    let tmp = temp_dir("g2us-times");
    let bricks = brick_dirs(tmp.path(), "gb");

    // 1. GlusterFS writes the tree and records what its mount says; then it goes away.
    let recorded = {
        let mut g = GlusterFs::start().unwrap();
        g.create_volume_with("gv", &["replica", "2"], &bricks)
            .unwrap();
        let ctime = g
            .cli_ok(&["volume", "get", "gv", "features.ctime"])
            .unwrap();
        let ctime = ctime.lines().find(|l| l.starts_with("features.ctime"));
        eprintln!(
            "GlusterFS: {}",
            ctime.unwrap_or("no features.ctime option").trim()
        );
        let m = tmp.path().join("gmnt");
        g.mount("gv", &m).unwrap();
        write_timed_tree(&m).unwrap();
        let recorded = record_times(&m).unwrap();
        g.unmount(&m);
        g.delete_volume("gv").unwrap();
        recorded
    };
    for (rel, t) in &recorded {
        eprintln!(
            "  GlusterFS: /{} mtime {} ctime {}",
            rel.display(),
            ts(t.mtime),
            ts(t.ctime)
        );
    }
    let before = brick_mdata(&bricks, &recorded)
        .map_err(|e| {
            anyhow!(
                "GlusterFS 10 did not keep its times in {MDATA} (is features.ctime off?): {e:#}"
            )
        })
        .unwrap();

    // 2. We import the bricks (same order, replica 2) and read the times.
    let gw = Gateway::start(GatewayOpts {
        mount: false,
        ..Default::default()
    })
    .unwrap();
    let specs = brick_specs(&bricks);
    let mut args = vec!["volume", "import", "gv", "replica", "2"];
    args.extend(specs.iter().map(String::as_str));
    gw.gwctl_ok(&args).unwrap();
    gw.gwctl_ok(&["volume", "start", "gv"]).unwrap();
    let mnt = tmp.path().join("ourmnt");
    let nm = NativeMount::start(&gw, "gv", &mnt).unwrap();
    let mut checks = Checks::new();
    checks.check(
        "our mount reports GlusterFS's mtime and ctime for every entry",
        || same_times(&recorded, &mnt, "our mount"),
    );
    drop(nm);
    let _ = gw.gwctl(&["volume", "stop", "gv"]);
    drop(gw);
    checks.check(
        "reading through our mount rewrote none of GlusterFS's times",
        || {
            let after = brick_mdata(&bricks, &recorded)?;
            let changed: Vec<String> = before
                .iter()
                .filter(|(k, v)| after.get(*k) != Some(*v))
                .map(|((rel, i), v)| {
                    format!(
                        "/{} on brick {}: {} → {}",
                        rel.display(),
                        i + 1,
                        hex::encode(v),
                        after
                            .get(&(rel.clone(), *i))
                            .map_or("none".into(), hex::encode)
                    )
                })
                .collect();
            ensure!(changed.is_empty(), "changed:\n  {}", changed.join("\n  "));
            Ok(())
        },
    );
    checks.finish();
}

/// We write a 2 x 2 volume with set times and later changes; GlusterFS 10, given the bricks,
/// reports the mtime and ctime our mount did for every entry, to the nanosecond.
#[test]
fn glusterfs_reads_our_times_after_hand_back() {
    need("glusterd");
    need("gluster");
    let tmp = temp_dir("us2g-times");
    let bricks = brick_dirs(tmp.path(), "ob");

    // 1. We write the tree onto a volume named gv and record what our mount says; then stop.
    let recorded = {
        let mut gw = Gateway::start(GatewayOpts {
            mount: false,
            ..Default::default()
        })
        .unwrap();
        let specs = brick_specs(&bricks);
        let mut args = vec!["volume", "create", "gv", "replica", "2"];
        args.extend(specs.iter().map(String::as_str));
        args.push("force");
        gw.gwctl_ok(&args).unwrap();
        gw.gwctl_ok(&["volume", "start", "gv"]).unwrap();
        let mnt = tmp.path().join("ourmnt");
        let nm = NativeMount::start(&gw, "gv", &mnt).unwrap();
        write_timed_tree(&mnt).unwrap();
        let recorded = record_times(&mnt).unwrap();
        drop(nm);
        gw.gwctl_ok(&["volume", "stop", "gv"]).unwrap();
        gw.stop();
        recorded
    };
    for (rel, t) in &recorded {
        eprintln!(
            "  ours: /{} mtime {} ctime {}",
            rel.display(),
            ts(t.mtime),
            ts(t.ctime)
        );
    }
    brick_mdata(&bricks, &recorded)
        .map_err(|e| anyhow!("we did not keep the times in {MDATA}: {e:#}"))
        .unwrap();

    // 2. GlusterFS adopts the bricks (without the root's volume-id if glusterd refuses them,
    //    as in our_bricks_are_served_by_glusterfs) and mounts the volume.
    let mut g = GlusterFs::start().unwrap();
    let mut created = g.create_volume_with("gv", &["replica", "2"], &bricks);
    if let Err(e) = &created {
        eprintln!("glusterd refused the bricks as they are ({e:#}); removing root volume-id");
        for b in &bricks {
            remove_xattr(b, "trusted.glusterfs.volume-id").unwrap();
        }
        let _ = g.cli(&["volume", "delete", "gv"]);
        created = g.create_volume_with("gv", &["replica", "2"], &bricks);
    }
    created.unwrap();
    let m = tmp.path().join("gmnt");
    g.mount("gv", &m).unwrap();
    let mut checks = Checks::new();
    checks.check(
        "GlusterFS reports our mtime and ctime for every entry",
        || same_times(&recorded, &m, "GlusterFS"),
    );
    g.unmount(&m);
    g.delete_volume("gv").unwrap();
    drop(g);
    checks.finish();
}
