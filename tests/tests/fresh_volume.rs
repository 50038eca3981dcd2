//! Fresh `gatewayd up --data D --mount M` (the 2 x 2 volume): a source tree copied in with `cp -a`
//! reads back equal (`diff -r` and metadata), every file sits, with equal copies on both bricks,
//! in the replica set that the DM hash and its directory's layout name (checked with this crate's
//! own hash, not the engine's), every entry on every brick has `trusted.gfid` and its
//! `.glusterfs` handle — and a restart on the same data dir reuses it all.

use std::fs;

use anyhow::{Result, ensure};
use e2e::*;

#[test]
fn fresh_up_copy_tree_placement_and_handles() {
    let mut gw = Gateway::up().unwrap();
    let tmp = temp_dir("src");
    let src = tmp.path().join("src");
    source_tree(&src, 600).unwrap();
    let mnt = gw.mnt().to_path_buf();
    let bricks = gw.brick_dirs();

    let mut checks = Checks::new();
    checks.check("the mount is a FUSE mount and starts empty", || {
        let t = mount_fstype(&mnt).unwrap_or_default();
        ensure!(t.starts_with("fuse"), "mounted as {t:?}");
        let names: Vec<_> = fs::read_dir(&mnt)?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        ensure!(names.is_empty(), "fresh volume lists {names:?}");
        Ok(())
    });
    checks.check("volume vol is listed and started", || {
        let out = gw.gwctl_ok(&["volume", "info", "vol", "--json"])?;
        let v: serde_json::Value = serde_json::from_str(&out)?;
        ensure!(out.contains("vol"), "info: {v}");
        let status = gw.gwctl_ok(&["volume", "status", "vol", "--json"])?;
        serde_json::from_str::<serde_json::Value>(&status)?;
        Ok(())
    });
    checks.check("cp -a into the mount", || cp_a(&src, &mnt));
    checks.check("diff -r source mount", || diff_r(&src, &mnt));
    checks.check("metadata (modes, sizes, mtimes, symlinks)", || {
        compare_trees(&src, &mnt).map(|n| eprintln!("{n} entries compared"))
    });
    checks.check("placement by the DM hash and the directory layouts", || {
        let p = check_placement_of(&bricks, gw.replica(), "vol", false)?;
        eprintln!("{} dirs, {} files checked", p.dirs, p.files);
        ensure!(p.files > 600, "only {} files on the bricks", p.files);
        // Two replica sets and hundreds of files: each brick must hold some.
        for b in &bricks {
            let n = walk_count(b)?;
            ensure!(n > 20, "{} holds only {n} entries", b.display());
        }
        Ok(())
    });
    for b in &bricks {
        checks.check(
            &format!("gfid and .glusterfs handles on {}", b.display()),
            || check_gfids(b, true).map(|n| eprintln!("{n} entries")),
        );
    }
    checks.check("brick roots carry the volume id", || {
        let ids: Vec<_> = bricks
            .iter()
            .map(|b| get_xattr(b, "trusted.glusterfs.volume-id"))
            .collect();
        ensure!(
            ids.iter()
                .all(|i| i.as_ref().is_some_and(|v| v.len() == 16)),
            "{ids:?}"
        );
        ensure!(
            ids.windows(2).all(|w| w[0] == w[1]),
            "bricks disagree: {ids:?}"
        );
        Ok(())
    });
    checks.check(
        "gatewayd up on the same data dir reuses the volume",
        || -> Result<()> {
            gw.restart()?;
            diff_r(&src, &mnt)?;
            compare_trees(&src, &mnt)?;
            fs::write(mnt.join("after-restart"), b"still here")?;
            ensure!(fs::read(mnt.join("after-restart"))? == b"still here");
            Ok(())
        },
    );
    checks.check("SIGTERM stops gatewayd cleanly and unmounts", || {
        let st = gw.terminate();
        ensure!(
            st.is_some_and(|s| s.success()),
            "gatewayd exit status {st:?}"
        );
        ensure!(!is_mounted(&mnt), "still mounted after gatewayd exited");
        let left = wait_for(
            std::time::Duration::from_secs(10),
            "brickds to exit",
            || {
                let l: Vec<i32> = gw
                    .brick_dirs()
                    .iter()
                    .filter_map(|b| gw.brickd_pid(b))
                    .collect();
                l.is_empty().then_some(())
            },
        );
        gw.stop();
        left
    });
    checks.finish();
}

fn walk_count(dir: &std::path::Path) -> Result<usize> {
    let mut n = 0;
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_name() == ".glusterfs" {
            continue;
        }
        n += 1;
        if e.file_type()?.is_dir() {
            n += walk_count(&e.path())?;
        }
    }
    Ok(n)
}
