//! GlusterFS 10 compatibility both ways, on a four-brick distribute volume named `gv`:
//! bricks written by GlusterFS's own FUSE client are served complete and identical by us after
//! `gwctl volume import`, and bricks we wrote are served complete and identical by GlusterFS.
//!
//! Both directions also rename files after the copy, so the bricks carry DHT linkto files written
//! by the other implementation, which the reader must follow. A replica-2 GlusterFS volume
//! written while a brick was away leaves AFR changelogs that our rules must read as GlusterFS
//! does.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use e2e::*;

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
