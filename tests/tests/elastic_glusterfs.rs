//! GlusterFS 10 and our elastic volumes: a four-brick distribute volume written by GlusterFS
//! is imported, grown by us to six bricks and rebalanced, then handed back: GlusterFS serves
//! every file, and its own rebalance finds nothing to move.

use anyhow::{Context, Result, bail};
use e2e::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const FILES: usize = 300;
const RENAMES: usize = 30;

fn bricks(root: &Path, n: usize) -> Vec<PathBuf> {
    (1..=n)
        .map(|i| {
            let b = root.join(format!("gb{i}"));
            std::fs::create_dir_all(&b).expect("brick dir");
            b
        })
        .collect()
}

fn spec(b: &Path) -> String {
    format!("127.0.0.1:{}", b.display())
}

/// GlusterFS's `rebalance status`: (rebalanced files, failures) once it completed.
fn glusterfs_rebalance_done(g: &GlusterFs, vol: &str) -> Result<Option<(u64, u64)>> {
    let out = g.cli_ok(&["volume", "rebalance", vol, "status"])?;
    for line in out.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 7 && cols[1].parse::<u64>().is_ok() {
            if line.contains("completed") {
                return Ok(Some((cols[1].parse()?, cols[4].parse()?)));
            }
            if line.contains("failed") {
                bail!("GlusterFS's rebalance failed: {out}");
            }
        }
    }
    Ok(None)
}

#[test]
fn a_glusterfs_volume_grown_and_rebalanced_by_us_goes_back_to_glusterfs() {
    require_glusterfs!();
    let tmp = temp_dir("elgl");
    let src = tmp.path().join("src");
    source_tree(&src, FILES).unwrap();
    let all = bricks(tmp.path(), 6);
    let first4 = &all[..4];

    // 1. GlusterFS writes the tree (renames leave linkto files), then lets go of the bricks.
    {
        let mut g = GlusterFs::start().unwrap();
        g.create_volume("gv", first4).unwrap();
        let m = tmp.path().join("gmnt");
        g.mount("gv", &m).unwrap();
        cp_a(&src, &m).unwrap();
        rename_some(&m.join("generated"), &src.join("generated"), RENAMES).unwrap();
        diff_r(&src, &m).expect("GlusterFS itself serves the tree");
        g.unmount(&m);
        g.delete_volume("gv").unwrap();
    }

    // 2. We import it, grow it to six bricks and rebalance.
    {
        let gw = Gateway::start(GatewayOpts {
            mount: false,
            ..Default::default()
        })
        .unwrap();
        let mut args = vec!["volume".to_string(), "import".into(), "gv".into()];
        args.extend(first4.iter().map(|b| spec(b)));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        gw.gwctl_ok(&args).unwrap();
        gw.gwctl_ok(&["volume", "start", "gv"]).unwrap();
        gw.gwctl_ok(&["volume", "add-brick", "gv", &spec(&all[4]), &spec(&all[5])])
            .unwrap();
        gw.gwctl_ok(&["volume", "rebalance", "gv", "start"])
            .unwrap();
        let s = wait_for(Duration::from_secs(600), "our rebalance to end", || {
            let out = gw
                .gwctl_ok(&["volume", "rebalance", "gv", "status", "--json"])
                .ok()?;
            let v: serde_json::Value = serde_json::from_str(&out).ok()?;
            (v["state"] != "in progress").then_some(v)
        })
        .unwrap();
        assert_eq!(s["state"], "completed", "{s}");
        assert_eq!(s["totals"]["failed"].as_u64(), Some(0), "{s}");
        assert!(s["totals"]["moved"].as_u64().unwrap() > 0, "{s}");
        let mnt = tmp.path().join("ourmnt");
        let nm = NativeMount::start(&gw, "gv", &mnt).unwrap();
        diff_r(&src, &mnt).expect("we serve the grown volume");
        drop(nm);
        gw.gwctl_ok(&["volume", "stop", "gv"]).unwrap();
    }
    check_placement(&all, "gv", false)
        .context("after our rebalance every file is at its hashed brick and no linkto is left")
        .unwrap();

    // 3. GlusterFS takes the six bricks back.
    let mut g = GlusterFs::start().unwrap();
    let mut created = g.create_volume("gv", &all);
    for key in ["trusted.glusterfs.volume-id", "trusted.gfid"] {
        if created.is_ok() {
            break;
        }
        eprintln!(
            "glusterd refused the bricks ({:#}); removing the root's {key}",
            created.unwrap_err()
        );
        for b in &all {
            let _ = remove_xattr(b, key);
        }
        let _ = g.cli(&["volume", "delete", "gv"]);
        created = g.create_volume("gv", &all);
    }
    created.unwrap();
    let m = tmp.path().join("gmnt2");
    g.mount("gv", &m).unwrap();
    diff_r(&src, &m).expect("GlusterFS serves every file of the volume we grew");
    g.cli_ok(&["volume", "rebalance", "gv", "start"]).unwrap();
    let (moved, failures) = wait_for(Duration::from_secs(300), "GlusterFS's rebalance", || {
        glusterfs_rebalance_done(&g, "gv").unwrap()
    })
    .unwrap();
    eprintln!("GlusterFS's rebalance: {moved} files moved, {failures} failures");
    assert_eq!(failures, 0);
    assert_eq!(
        moved, 0,
        "GlusterFS found files to move after our rebalance"
    );
    diff_r(&src, &m).expect("GlusterFS still serves every file");
    g.unmount(&m);
    g.delete_volume("gv").unwrap();
}
