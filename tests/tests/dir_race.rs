//! Shared parent directories removed at once through S3 (DeleteObjects, which prunes the
//! directories a delete leaves empty), FUSE (`rm -rf`) and NFS (RMDIR), a thousand times, on
//! the default 2 x 2 volume. Distribute must never leave a directory on only some of its
//! subvolumes (a lookup healing a directory half way through an rmdir used to make it again on
//! one replica set: invisible to listings, and a bucket that could not be deleted).

use anyhow::{Context, Result, bail, ensure};
use e2e::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Directories below `root` on one brick (relative paths), skipping GlusterFS's own tree.
fn dirs_on(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let e = e?;
            if e.file_name() == ".glusterfs" && d == root {
                continue;
            }
            if e.file_type()?.is_dir() {
                out.push(e.path().strip_prefix(root)?.to_path_buf());
                stack.push(e.path());
            }
        }
    }
    Ok(out)
}

#[test]
fn delete_objects_rm_rf_and_nfs_rmdir_never_leave_a_directory_on_some_subvolumes() -> Result<()> {
    need("python3");
    let gw = Gateway::start(GatewayOpts {
        replica: 2,
        ..Default::default()
    })?;
    let (ak, sk) = gw.s3_key("racer")?;
    let bucket = "race";
    let url = gw.s3_url()?;
    let rounds = std::env::var("E2E_DIR_RACE_ROUNDS").unwrap_or_else(|_| "1000".into());
    let script = workspace_root().join("tests/s3/delete_race.py");
    let mk = run(Command::new("python3").args([
        "-c",
        &format!(
            "import boto3; boto3.client('s3', endpoint_url='{url}', region_name='us-east-1', \
             aws_access_key_id='{ak}', aws_secret_access_key='{sk}').create_bucket(Bucket='{bucket}')"
        ),
    ]))?;
    ensure!(mk.status.success(), "create bucket: {}", output_text(&mk));
    let out = run(Command::new("python3")
        .arg(&script)
        .env("S3_URL", &url)
        .env("AWS_ACCESS_KEY_ID", &ak)
        .env("AWS_SECRET_ACCESS_KEY", &sk)
        .env("BUCKET", bucket)
        .env("MNT", gw.mnt())
        .env("NFS_PORT", gw.nfs_port()?.to_string())
        .env("ROUNDS", &rounds))?;
    let text = output_text(&out);
    if !out.status.success() {
        bail!("the race driver failed:\n{text}\n{}", gw.logs());
    }
    eprintln!("{}", text.lines().last().unwrap_or(""));

    // Every directory on any brick is on every brick: each subvolume of distribute holds a
    // copy of every directory, and each replica set's two bricks hold the same.
    let bricks = gw.brick_dirs();
    let mut seen: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    for (i, b) in bricks.iter().enumerate() {
        for d in dirs_on(b)? {
            seen.entry(d).or_default().push(i);
        }
    }
    let partial: Vec<String> = seen
        .iter()
        .filter(|(_, on)| on.len() != bricks.len())
        .map(|(d, on)| format!("{} on bricks {:?}", d.display(), on))
        .collect();
    ensure!(
        partial.is_empty(),
        "directories left on some bricks only: {partial:?}"
    );
    // Every round's tree is gone, and the bucket can go: nothing hides in it.
    let left: Vec<_> = fs::read_dir(gw.mnt().join(bucket))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    ensure!(left.is_empty(), "names left in the bucket: {left:?}");
    let rb = run(Command::new("python3").args([
        "-c",
        &format!(
            "import boto3; boto3.client('s3', endpoint_url='{url}', region_name='us-east-1', \
             aws_access_key_id='{ak}', aws_secret_access_key='{sk}').delete_bucket(Bucket='{bucket}')"
        ),
    ]))?;
    ensure!(rb.status.success(), "delete bucket: {}", output_text(&rb));
    for b in &bricks {
        ensure!(
            !b.join(bucket).exists(),
            "the bucket directory is left on {}",
            b.display()
        );
    }
    Ok(())
}
