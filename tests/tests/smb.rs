//! SMB shares: `gwctl smb …` makes gatewayd run Samba's smbd over its own FUSE mount of the
//! volume; `smbclient` puts and gets files, and the same bytes come back through the user's
//! FUSE mount, S3 (aws-cli) and NFS (libnfs's nfs-cat).

use anyhow::{Context, Result, ensure};
use e2e::*;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn smbclient(gw: &Gateway, share: &str, auth: &str, cmds: &str) -> Result<Output> {
    let mut c = Command::new("smbclient");
    c.arg("-p")
        .arg(gw.smb_port()?.to_string())
        .arg(format!("//127.0.0.1/{share}"));
    if auth.is_empty() {
        c.arg("-N");
    } else {
        c.arg("-U").arg(auth);
    }
    c.args(["-m", "SMB3", "-c", cmds]);
    run(&mut c)
}

fn smbclient_ok(gw: &Gateway, share: &str, auth: &str, cmds: &str) -> Result<String> {
    let out = smbclient(gw, share, auth, cmds)?;
    let text = output_text(&out);
    ensure!(
        out.status.success() && !text.contains("NT_STATUS_"),
        "smbclient //{share} -c {cmds:?} failed:\n{text}\n{}",
        gw.logs()
    );
    Ok(text)
}

/// smbclient must fail with `status` in its output.
fn smbclient_refused(
    gw: &Gateway,
    share: &str,
    auth: &str,
    cmds: &str,
    status: &str,
) -> Result<()> {
    let out = smbclient(gw, share, auth, cmds)?;
    let text = output_text(&out);
    ensure!(
        text.contains(status),
        "smbclient //{share} as {auth:?} -c {cmds:?}: expected {status}, got:\n{text}"
    );
    Ok(())
}

/// `gwctl smb user add NAME` with the password on standard input.
fn add_user_stdin(gw: &Gateway, name: &str, password: &str) -> Result<()> {
    let mut child = Command::new(bin("gwctl"))
        .arg("--api")
        .arg(&gw.api_url)
        .arg("--token")
        .arg(&gw.token)
        .args(["smb", "user", "add", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    writeln!(child.stdin.take().context("stdin")?, "{password}")?;
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "gwctl smb user add {name}: {}",
        output_text(&out)
    );
    Ok(())
}

fn smbd_pids(gw: &Gateway) -> Vec<i32> {
    let data = gw.data.to_string_lossy().into_owned();
    pids_matching(|argv| {
        argv.first().is_some_and(|a| a.ends_with("smbd")) && argv.iter().any(|a| a.contains(&data))
    })
}

fn same_file(a: &Path, b: &Path) -> Result<()> {
    ensure!(
        sha256_file(a)? == sha256_file(b)?,
        "{} and {} differ",
        a.display(),
        b.display()
    );
    Ok(())
}

#[test]
fn smbclient_puts_and_gets_and_every_protocol_sees_the_same_bytes() -> Result<()> {
    for p in ["smbd", "smbclient", "aws", "nfs-cat"] {
        need(p);
    }
    let gw = Gateway::up()?;
    let work = gw.root().join("work");
    fs::create_dir_all(&work)?;

    gw.gwctl_ok(&[
        "smb",
        "user",
        "add",
        "alice",
        "--password",
        "alice-secret-1",
    ])?;
    add_user_stdin(&gw, "bob", "bob-secret-22")?;
    gw.gwctl_ok(&[
        "smb", "share", "add", "docs", "--volume", "vol", "--path", "/docs", "--user", "alice",
    ])?;
    gw.gwctl_ok(&[
        "smb", "share", "add", "pub", "--volume", "vol", "--path", "pub", "--ro",
    ])?;
    let list: serde_json::Value =
        serde_json::from_str(&gw.gwctl_ok(&["smb", "share", "list", "--json"])?)?;
    let names: Vec<&str> = list
        .as_array()
        .context("share list")?
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    ensure!(names == ["docs", "pub"], "shares listed: {names:?}");

    // SMB → FUSE, S3 and NFS.
    let big = work.join("big.bin");
    random_file(&big, 5 << 20, 11)?;
    let small = work.join("note.txt");
    fs::write(&small, "written over SMB\n")?;
    smbclient_ok(
        &gw,
        "docs",
        "alice%alice-secret-1",
        &format!(
            "put {} big.bin; mkdir sub; put {} sub/note.txt",
            big.display(),
            small.display()
        ),
    )?;
    same_file(&big, &gw.mnt().join("docs/big.bin"))?;
    same_file(&small, &gw.mnt().join("docs/sub/note.txt"))?;

    let (access, secret) = gw.s3_key("smbtest")?;
    let via_s3 = work.join("via-s3.bin");
    run_ok(
        Command::new("aws")
            .arg("--endpoint-url")
            .arg(gw.s3_url()?)
            .args(["s3", "cp", "--no-progress", "s3://docs/big.bin"])
            .arg(&via_s3)
            .env("AWS_ACCESS_KEY_ID", &access)
            .env("AWS_SECRET_ACCESS_KEY", &secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true"),
    )?;
    same_file(&big, &via_s3)?;

    let via_nfs = work.join("via-nfs.bin");
    let out = run(Command::new("nfs-cat").arg(gw.nfs_url("docs/big.bin")?))?;
    ensure!(out.status.success(), "nfs-cat: {}", output_text(&out));
    fs::write(&via_nfs, &out.stdout)?;
    same_file(&big, &via_nfs)?;

    // FUSE → SMB.
    random_file(&gw.mnt().join("docs/from-fuse.bin"), 300_000, 12)?;
    let back = work.join("back.bin");
    smbclient_ok(
        &gw,
        "docs",
        "alice%alice-secret-1",
        &format!("get from-fuse.bin {}", back.display()),
    )?;
    same_file(&gw.mnt().join("docs/from-fuse.bin"), &back)?;
    let ls = smbclient_ok(&gw, "docs", "alice%alice-secret-1", "ls")?;
    for name in ["big.bin", "sub", "from-fuse.bin"] {
        ensure!(ls.contains(name), "ls of docs lacks {name}:\n{ls}");
    }

    // Who may do what.
    smbclient_refused(
        &gw,
        "docs",
        "alice%wrong-password",
        "ls",
        "NT_STATUS_LOGON_FAILURE",
    )?;
    smbclient_refused(&gw, "docs", "", "ls", "NT_STATUS_")?;
    smbclient_refused(
        &gw,
        "docs",
        "bob%bob-secret-22",
        "ls",
        "NT_STATUS_ACCESS_DENIED",
    )?;
    fs::write(gw.mnt().join("pub/readme.txt"), "public\n")?;
    let got = work.join("readme.txt");
    smbclient_ok(
        &gw,
        "pub",
        "bob%bob-secret-22",
        &format!("get readme.txt {}", got.display()),
    )?;
    ensure!(fs::read_to_string(&got)? == "public\n");
    smbclient_refused(
        &gw,
        "pub",
        "bob%bob-secret-22",
        &format!("put {} nope.txt", small.display()),
        "NT_STATUS_",
    )?;
    ensure!(
        !gw.mnt().join("pub/nope.txt").exists(),
        "a read-only share took a write"
    );

    // A new password replaces the old one.
    gw.gwctl_ok(&[
        "smb",
        "user",
        "passwd",
        "alice",
        "--password",
        "alice-secret-2",
    ])?;
    smbclient_refused(
        &gw,
        "docs",
        "alice%alice-secret-1",
        "ls",
        "NT_STATUS_LOGON_FAILURE",
    )?;
    smbclient_ok(&gw, "docs", "alice%alice-secret-2", "ls")?;

    // Bad input is refused with a reason and changes nothing.
    for (args, why) in [
        (
            vec!["smb", "share", "add", "bad]name", "--volume", "vol"],
            "share name",
        ),
        (
            vec!["smb", "share", "add", "global", "--volume", "vol"],
            "reserved",
        ),
        (
            vec![
                "smb", "share", "add", "x", "--volume", "vol", "--path", "../etc",
            ],
            "..",
        ),
        (
            vec!["smb", "share", "add", "x", "--volume", "novol"],
            "does not exist",
        ),
        (
            vec![
                "smb", "share", "add", "x", "--volume", "vol", "--user", "carol",
            ],
            "no SMB user carol",
        ),
        (
            vec!["smb", "share", "add", "DOCS", "--volume", "vol"],
            "exists",
        ),
        (
            vec!["smb", "user", "add", "carol", "--password", "short"],
            "8 characters",
        ),
        (
            vec!["smb", "user", "add", "Carol", "--password", "long-enough"],
            "user name",
        ),
        (vec!["smb", "user", "remove", "alice"], "lists user alice"),
    ] {
        let out = gw.gwctl(&args)?;
        let text = output_text(&out);
        ensure!(
            !out.status.success() && text.contains(why),
            "gwctl {args:?}: expected a refusal mentioning {why:?}, got:\n{text}"
        );
    }
    let conf = fs::read_to_string(gw.data.join("smb/smb.conf"))?;
    let sections: Vec<&str> = conf.lines().filter(|l| l.starts_with('[')).collect();
    ensure!(
        sections == ["[global]", "[docs]", "[pub]"],
        "smb.conf changed by refused input:\n{conf}"
    );

    // SMB traffic is counted under its own protocol label.
    let metrics = run_ok(Command::new("curl").args(["-sf", &format!("{}/metrics", gw.api_url)]))?;
    ensure!(
        metrics
            .lines()
            .any(|l| l.starts_with("gateway_protocol_operations_total{")
                && l.contains("protocol=\"smb\"")
                && !l.ends_with(" 0")),
        "no SMB operations in /metrics"
    );

    // A removed share is gone for clients; its files stay in the volume.
    gw.gwctl_ok(&["smb", "share", "remove", "docs"])?;
    smbclient_refused(
        &gw,
        "docs",
        "alice%alice-secret-2",
        "ls",
        "NT_STATUS_BAD_NETWORK_NAME",
    )?;
    ensure!(gw.mnt().join("docs/big.bin").is_file());
    gw.gwctl_ok(&["smb", "share", "remove", "pub"])?;
    wait_for(
        Duration::from_secs(20),
        "smbd to stop with the last share",
        || smbd_pids(&gw).is_empty().then_some(()),
    )?;
    Ok(())
}

#[test]
fn shares_come_back_after_a_restart_and_smbd_dies_with_a_killed_gateway() -> Result<()> {
    need("smbd");
    need("smbclient");
    let mut gw = Gateway::up()?;
    gw.gwctl_ok(&["smb", "user", "add", "carol", "--password", "carol-secret"])?;
    gw.gwctl_ok(&["smb", "share", "add", "team", "--volume", "vol"])?;
    fs::write(gw.mnt().join("kept.txt"), "kept\n")?;
    let got = gw.root().join("got.txt");
    let get = format!("get kept.txt {}", got.display());
    smbclient_ok(&gw, "team", "carol%carol-secret", &get)?;

    gw.restart()?;
    wait_for(Duration::from_secs(30), "the share after a restart", || {
        smbclient(&gw, "team", "carol%carol-secret", &get)
            .ok()
            .filter(|o| o.status.success() && !output_text(o).contains("NT_STATUS_"))
    })
    .with_context(|| gw.logs())?;
    ensure!(fs::read_to_string(&got)? == "kept\n");

    let before = smbd_pids(&gw);
    ensure!(!before.is_empty(), "no smbd runs for the share");
    gw.kill9();
    wait_for(
        Duration::from_secs(20),
        "smbd to end with its gateway",
        || before.iter().all(|p| !pid_alive(*p)).then_some(()),
    )?;
    // The dead gateway's mounts answer ENOTCONN until the next start clears them.
    gw.start_again()?;
    wait_for(Duration::from_secs(30), "the share after a crash", || {
        smbclient(&gw, "team", "carol%carol-secret", &get)
            .ok()
            .filter(|o| o.status.success() && !output_text(o).contains("NT_STATUS_"))
    })
    .with_context(|| gw.logs())?;
    Ok(())
}

#[test]
fn a_port_held_by_another_server_is_reported_not_hidden() -> Result<()> {
    need("smbd");
    let held = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = held.local_addr()?.port();
    let gw = Gateway::start(GatewayOpts {
        mount: false,
        extra: vec!["--smb".into(), format!("127.0.0.1:{port}")],
        ..Default::default()
    })?;
    gw.gwctl_ok(&["smb", "user", "add", "dave", "--password", "dave-secret"])?;
    let out = gw.gwctl(&["smb", "share", "add", "x", "--volume", "vol"])?;
    let text = output_text(&out);
    ensure!(
        !out.status.success() && text.contains("cannot listen") && text.contains(&port.to_string()),
        "a share on a taken port: {text}"
    );
    ensure!(smbd_pids(&gw).is_empty(), "an smbd was left trying");
    let list = gw.gwctl_ok(&["smb", "share", "list", "--json"])?;
    ensure!(
        !list.contains("\"x\""),
        "the refused share was kept: {list}"
    );
    drop(held);
    Ok(())
}
