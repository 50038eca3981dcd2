//! Tenancy on S3, on the default 2 x 2 volume: two keys see and touch nothing of each other's
//! until a bucket policy, an ACL or an operator's key grant says so, and then exactly that
//! (tests/s3/tenancy.py, boto3 and unsigned requests); a key with a uid owns its buckets on
//! the file system too.

use anyhow::{Context, Result, bail, ensure};
use e2e::*;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

/// A key made with `gwctl s3 key create NAME ARGS… --json`: (access key, secret, canonical id).
fn key(gw: &Gateway, name: &str, args: &[&str]) -> Result<(String, String, String)> {
    let mut a = vec!["s3", "key", "create", name];
    a.extend_from_slice(args);
    a.push("--json");
    let out = gw.gwctl_ok(&a)?;
    let v: serde_json::Value = serde_json::from_str(&out).context("gwctl s3 key create")?;
    let get = |k: &str| v[k].as_str().map(str::to_string).context(k.to_string());
    Ok((get("access_key")?, get("secret_key")?, get("canonical_id")?))
}

#[test]
fn keys_see_only_what_they_own_or_were_granted() -> Result<()> {
    need("python3");
    let gw = Gateway::start(GatewayOpts {
        replica: 2,
        ..Default::default()
    })?;
    let (ak, asec, aid) = key(&gw, "alice", &["--uid", "4321"])?;
    let (bk, bsec, bid) = key(&gw, "bob", &[])?;
    let (dk, dsec, _) = key(&gw, "root", &["--admin"])?;
    let grant = format!(
        "{} --api {} --token {} s3 key allow bob --bucket alice-data --read",
        bin("gwctl").display(),
        gw.api_url,
        gw.token
    );
    let out = run(Command::new("python3")
        .arg(workspace_root().join("tests/s3/tenancy.py"))
        .env("S3_URL", gw.s3_url()?)
        .env("MNT", gw.mnt())
        .env("ALICE_KEY", &ak)
        .env("ALICE_SECRET", &asec)
        .env("ALICE_ID", &aid)
        .env("BOB_KEY", &bk)
        .env("BOB_SECRET", &bsec)
        .env("BOB_ID", &bid)
        .env("ADMIN_KEY", &dk)
        .env("ADMIN_SECRET", &dsec)
        .env("GRANT_CMD", &grant))?;
    let text = output_text(&out);
    eprintln!("{text}");
    if !out.status.success() {
        bail!("tenancy checks failed:\n{text}\n{}", gw.logs());
    }
    // The bucket a key with --uid made belongs to that uid for the volume's POSIX users.
    let md = std::fs::metadata(gw.mnt().join("alice-data"))?;
    ensure!(
        md.uid() == 4321 && md.gid() == 4321,
        "alice-data is owned by {}:{}, not 4321:4321",
        md.uid(),
        md.gid()
    );
    // The access settings live with the bucket, out of reach of the mount's users.
    let names = list_xattrs(&gw.mnt().join("alice-data"));
    ensure!(
        !names.iter().any(|n| n.starts_with("trusted.gateway.")),
        "the mount shows the bucket's access xattrs: {names:?}"
    );
    let on_brick = list_xattrs(&gw.brick_dirs()[0].join("alice-data"));
    ensure!(
        on_brick.iter().any(|n| n == "trusted.gateway.s3.owner"),
        "the brick holds no owner for the bucket: {on_brick:?}"
    );
    Ok(())
}
