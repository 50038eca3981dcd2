//! s3fs-fuse, a real S3 client that keeps a file tree in a bucket (directories as `dir/`
//! objects, attributes in x-amz-meta-*), over the gateway's S3 on the default 2 x 2 volume:
//! `cp -a` of a source tree into an s3fs mount comes back equal through s3fs and through the
//! gateway's own FUSE mount.

use anyhow::{Context, Result, bail};
use e2e::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

/// An s3fs mount, unmounted (lazily, if busy) when dropped.
struct S3fs(std::path::PathBuf);

impl Drop for S3fs {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3").arg("-u").arg(&self.0).status();
        if is_mounted(&self.0) {
            lazy_unmount(&self.0);
        }
    }
}

/// Every directory and regular file of `a` is in `b`, files with the same bytes.
fn same_files(a: &std::path::Path, b: &std::path::Path) -> Result<usize> {
    let mut n = 0;
    let mut stack = vec![std::path::PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(a.join(&rel))? {
            let e = e?;
            let r = rel.join(e.file_name());
            let t = e.file_type()?;
            if t.is_dir() {
                if !b.join(&r).is_dir() {
                    bail!("{} is not a directory on the other side", r.display());
                }
                stack.push(r);
            } else if t.is_file() {
                if sha256_file(&a.join(&r))? != sha256_file(&b.join(&r))? {
                    bail!("{} differs", r.display());
                }
            } else {
                continue;
            }
            n += 1;
        }
    }
    Ok(n)
}

#[test]
fn s3fs_keeps_a_source_tree_in_a_bucket_and_fuse_sees_the_same() -> Result<()> {
    need("s3fs");
    need("python3");
    let gw = Gateway::start(GatewayOpts {
        replica: 2,
        ..Default::default()
    })?;
    let (ak, sk) = gw.s3_key("s3fs")?;
    let url = gw.s3_url()?;
    let bucket = "tree";
    let mk = run(Command::new("python3").args([
        "-c",
        &format!(
            "import boto3; boto3.client('s3', endpoint_url='{url}', region_name='us-east-1', \
             aws_access_key_id='{ak}', aws_secret_access_key='{sk}').create_bucket(Bucket='{bucket}')"
        ),
    ]))?;
    if !mk.status.success() {
        bail!("create bucket: {}", output_text(&mk));
    }
    let root = gw.root().to_path_buf();
    let pw = root.join("s3fs.passwd");
    fs::write(&pw, format!("{ak}:{sk}\n"))?;
    fs::set_permissions(&pw, fs::Permissions::from_mode(0o600))?;
    let mnt = root.join("s3fs");
    fs::create_dir_all(&mnt)?;
    let out = run(Command::new("s3fs")
        .arg(bucket)
        .arg(&mnt)
        .arg("-o")
        .arg(format!(
            "passwd_file={},url={url},use_path_request_style,sigv4,endpoint=us-east-1,\
             stat_cache_expire=1,retries=1,dbglevel=warn",
            pw.display()
        )))?;
    if !out.status.success() {
        bail!("s3fs failed to mount: {}", output_text(&out));
    }
    let _guard = S3fs(mnt.clone());
    wait_for(Duration::from_secs(20), "the s3fs mount", || {
        is_mounted(&mnt).then_some(())
    })?;

    let src = root.join("src");
    source_tree(&src, 120).context("making the source tree")?;
    cp_a(&src, &mnt.join("src")).context("cp -a into s3fs")?;
    diff_r(&src, &mnt.join("src")).context("the tree read back through s3fs")?;
    // Through the gateway's own mount every directory and file is there with its bytes
    // (s3fs keeps modes, owners, times and symlinks in x-amz-meta-* of its objects, which
    // only s3fs reads back).
    let n = same_files(&src, &gw.mnt().join(bucket).join("src"))
        .context("the tree read through the gateway's FUSE mount")?;
    eprintln!("{n} files and directories equal through s3fs and the gateway's FUSE mount");
    // A directory made with mkdir in s3fs is a `dir/` object: HEAD and listing see it.
    fs::create_dir(mnt.join("made-by-s3fs"))?;
    fs::write(mnt.join("made-by-s3fs/f"), b"through s3fs")?;
    let listed = fs::read_dir(&mnt)?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect::<Vec<_>>();
    if !listed.iter().any(|n| n == "made-by-s3fs") {
        bail!("s3fs does not list the directory it made: {listed:?}");
    }
    let via_fuse = fs::read(gw.mnt().join(bucket).join("made-by-s3fs/f"))?;
    if via_fuse != b"through s3fs" {
        bail!("the gateway's mount reads {via_fuse:?}");
    }
    Ok(())
}
