//! TLS and client address rules, on `gatewayd up --tls` (the default 2 x 2 volume):
//!
//! - the CA and node certificate it makes (keys mode 0600, never printed);
//! - the API over HTTPS: gwctl with the CA, curl with `--cacert`; without the CA both fail;
//! - S3 over HTTPS: aws-cli with `--ca-bundle` puts and gets an object; without it, refused;
//! - the brick RPC over mutual TLS (`transport.socket.ssl-enabled` on): files written through
//!   the FUSE mount are on the bricks and read back through S3 and a native client; a client
//!   without TLS, or with TLS but no certificate of the cluster, never gets a session;
//! - `auth.reject 127.0.0.1` refuses the native FUSE client with a message naming the rule,
//!   and `volume reset` lets it in again.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use e2e::*;
use engine::graph::Graph;
use engine::registry::Registry;
use engine::xlators::protocol::client::Client;
use engine::{Ctx, Loc, Xattrs};

/// aws-cli against the gateway's S3, with a key of its own and nothing from the environment
/// that could make it trust a CA (or use credentials) we did not give it.
struct Aws {
    url: String,
    access: String,
    secret: String,
    config: PathBuf,
}

impl Aws {
    fn cmd(&self, ca: Option<&Path>, args: &[&str]) -> Command {
        let mut c = Command::new("aws");
        c.arg("--endpoint-url").arg(&self.url);
        if let Some(ca) = ca {
            c.arg("--ca-bundle").arg(ca);
        }
        c.args(args)
            .env("AWS_ACCESS_KEY_ID", &self.access)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", &self.config)
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env_remove("AWS_CA_BUNDLE")
            .env_remove("REQUESTS_CA_BUNDLE")
            .env_remove("SSL_CERT_FILE");
        c
    }
}

fn text(o: &std::process::Output) -> String {
    output_text(o)
}

/// A one-brick client graph for brick 0 of `vol` with `extra` options, and whether it came up
/// within `wait` (and why not, if not).
async fn brick_client(
    port: u16,
    volume_id: &str,
    secret: &str,
    extra: &str,
    wait: Duration,
) -> Result<(bool, Option<String>, Graph)> {
    let volfile = format!(
        "volume vol-client-0\n    type protocol/client\n    option remote-host 127.0.0.1\n    option remote-port {port}\n    \
         option remote-subvolume vol-client-0\n    option volume-id {volume_id}\n    option password {secret}\n    \
         option ping-timeout 5\n{extra}end-volume\n"
    );
    let g = Graph::from_text(&volfile, &Registry::client_side()).context("client volfile")?;
    g.init().await.context("client init")?;
    let up = g.wait_up(wait).await;
    let why = g
        .get("vol-client-0")
        .and_then(|x| x.as_any()?.downcast_ref::<Client>()?.last_error());
    Ok((up, why, g))
}

#[test]
fn tls_for_api_s3_and_bricks_and_auth_reject() -> Result<()> {
    // Under CI a missing client fails the test (need panics), as everywhere in this suite.
    need("aws");
    need("curl");
    let gw = Gateway::start(GatewayOpts {
        extra: vec!["--tls".into()],
        ..Default::default()
    })?;
    let tls = gw.data.join("tls");
    let ca = tls.join("ca.pem");

    // --- the certificates --tls made: keys private, the CA named, no key printed ----------
    for f in ["ca.key", "node.key"] {
        let mode = fs::metadata(tls.join(f))?.permissions().mode() & 0o777;
        ensure!(mode == 0o600, "{f} has mode {mode:o}, not 600");
    }
    let stdout = fs::read_to_string(gw.root().join("gatewayd.stdout"))?;
    ensure!(
        stdout.contains(&format!("CA certificate {}", ca.display())),
        "the banner does not say where the CA is:\n{stdout}"
    );
    ensure!(
        !stdout.contains("PRIVATE KEY") && !gw.log_text().contains("PRIVATE KEY"),
        "key material printed"
    );

    // --- the API over HTTPS ----------------------------------------------------------------
    ensure!(
        gw.api_url.starts_with("https://"),
        "api.url is {}",
        gw.api_url
    );
    let status = run_ok(
        Command::new(bin("gwctl"))
            .args(["--api", &gw.api_url, "--token", &gw.token, "--ca-cert"])
            .arg(&ca)
            .args(["volume", "status", "vol"]),
    )?;
    ensure!(
        status.lines().filter(|l| l.contains(" Y ")).count() == 4,
        "gwctl over HTTPS: not 4 bricks online:\n{status}"
    );
    // GWCTL_CA_CERT works as the flag does; DATA/tls/ca.pem is the default (gw.gwctl gives --data).
    run_ok(
        Command::new(bin("gwctl"))
            .args(["--api", &gw.api_url, "--token", &gw.token, "volume", "list"])
            .env("GWCTL_CA_CERT", &ca)
            .env("GWCTL_DATA", "/nonexistent"),
    )?;
    gw.gwctl_ok(&["volume", "info", "vol"])?;
    // Without the CA, gwctl does not trust the gateway, and says how to fix it.
    let out = run(Command::new(bin("gwctl"))
        .args(["--api", &gw.api_url, "--token", &gw.token])
        .args(["--data", "/nonexistent", "volume", "list"])
        .env_remove("GWCTL_CA_CERT"))?;
    ensure!(
        !out.status.success() && text(&out).contains("--ca-cert"),
        "gwctl without the CA: {}",
        text(&out)
    );
    let metrics = format!("{}/metrics", gw.api_url);
    let code = run_ok(
        Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(&ca)
            .arg(&metrics),
    )?;
    ensure!(code == "200", "curl --cacert /metrics: HTTP {code}");
    let out = run(Command::new("curl")
        .args(["-sS", "-o", "/dev/null"])
        .arg(&metrics))?;
    ensure!(
        !out.status.success(),
        "curl without the CA got an answer: {}",
        text(&out)
    );
    // Plain HTTP on the HTTPS port gets no API answer.
    let plain = metrics.replacen("https://", "http://", 1);
    let out = run(Command::new("curl")
        .args(["-sS", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(&plain))?;
    ensure!(
        !String::from_utf8_lossy(&out.stdout).starts_with('2'),
        "plain HTTP to the HTTPS API answered: {}",
        text(&out)
    );

    // --- S3 over HTTPS with aws-cli ---------------------------------------------------------
    let url = gw.s3_url()?;
    ensure!(url.starts_with("https://"), "s3.url is {url}");
    let (access, secret) = gw.s3_key("tlsuser")?;
    let config = gw.root().join("aws-config");
    fs::write(&config, "[default]\n")?;
    let aws = Aws {
        url,
        access,
        secret,
        config,
    };
    let src = gw.root().join("object.bin");
    random_file(&src, 3 << 20, 18)?;
    run_ok(&mut aws.cmd(Some(&ca), &["s3", "mb", "s3://secure"]))?;
    run_ok(
        aws.cmd(Some(&ca), &["s3", "cp", "--only-show-errors"])
            .arg(&src)
            .arg("s3://secure/dir/object.bin"),
    )?;
    let back = gw.root().join("object.back");
    run_ok(
        aws.cmd(
            Some(&ca),
            &[
                "s3",
                "cp",
                "--only-show-errors",
                "s3://secure/dir/object.bin",
            ],
        )
        .arg(&back),
    )?;
    ensure!(
        sha256_file(&src)? == sha256_file(&back)?,
        "the object read back over HTTPS differs"
    );
    // The same file through the FUSE mount (over the TLS brick RPC).
    ensure!(
        sha256_file(&gw.mnt().join("secure/dir/object.bin"))? == sha256_file(&src)?,
        "the object differs through FUSE"
    );
    let out = run(&mut aws.cmd(None, &["s3", "ls", "s3://secure/"]))?;
    ensure!(
        !out.status.success()
            && (text(&out).contains("SSL") || text(&out).contains("CERTIFICATE_VERIFY_FAILED")),
        "aws without --ca-bundle: {}",
        text(&out)
    );

    // --- the brick RPC over TLS -------------------------------------------------------------
    let got = gw.gwctl_ok(&["volume", "get", "vol", "transport.socket.ssl-enabled"])?;
    ensure!(
        got.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w == ["transport.socket.ssl-enabled", "on"]
        }),
        "volume get vol transport.socket.ssl-enabled:\n{got}"
    );
    for b in gw.brick_dirs() {
        let pid = gw
            .brickd_pid(&b)
            .with_context(|| format!("no brickd for {}", b.display()))?;
        let argv = proc_cmdline(pid).unwrap_or_default();
        ensure!(
            argv.iter().any(|a| a == "--tls-cert") && argv.iter().any(|a| a == "--tls-ca"),
            "brickd of {} runs without TLS: {argv:?}",
            b.display()
        );
    }
    // Files written through the mount land on the bricks and read back.
    let dir = gw.mnt().join("tls-files");
    fs::create_dir_all(&dir)?;
    let mut sums = Vec::new();
    for i in 0..6u64 {
        let p = dir.join(format!("f{i}"));
        random_file(&p, 100_000 + i as usize * 50_000, 100 + i)?;
        sums.push((p.clone(), sha256_file(&p)?));
    }
    for (p, sum) in &sums {
        ensure!(
            sha256_file(p)? == *sum,
            "{} reads back different",
            p.display()
        );
        let name = p.file_name().unwrap();
        let copies = gw
            .brick_dirs()
            .iter()
            .filter(|b| b.join("tls-files").join(name).is_file())
            .count();
        ensure!(
            copies == 2,
            "{name:?} is on {copies} bricks, not on its replica pair"
        );
    }
    let info: serde_json::Value =
        serde_json::from_str(&gw.gwctl_ok(&["volume", "info", "vol", "--json"])?)?;
    // `volume info --json` lists the volumes asked for.
    let info = if info.is_array() {
        info[0].clone()
    } else {
        info
    };
    let port = info["bricks"][0]["port"]
        .as_u64()
        .context("brick 0's port")? as u16;
    let volume_id = info["id"].as_str().context("volume id")?.to_string();
    let vsecret = fs::read_to_string(gw.data.join("vols/vol/secret"))?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        // A client without TLS, even one that knows the volume secret, gets no session.
        let (up, why, g) = brick_client(port, &volume_id, &vsecret, "", Duration::from_secs(8)).await?;
        g.fini().await;
        ensure!(!up, "a plain-TCP client got a session with a TLS brick");
        eprintln!("plain client: {why:?}");
        // Nor one that speaks TLS and trusts the CA but has no certificate of the cluster.
        let ca_only = format!(
            "    option transport.socket.ssl-enabled on\n    option transport.socket.ssl-ca-list {}\n",
            ca.display()
        );
        let (up, why, g) = brick_client(port, &volume_id, &vsecret, &ca_only, Duration::from_secs(8)).await?;
        g.fini().await;
        ensure!(!up, "a TLS client without a client certificate got a session");
        eprintln!("client without certificate: {why:?}");
        // With the cluster's certificate it works.
        let full = format!(
            "{ca_only}    option transport.socket.ssl-own-cert {}\n    option transport.socket.ssl-private-key {}\n",
            tls.join("node.pem").display(),
            tls.join("node.key").display()
        );
        let (up, why, g) = brick_client(port, &volume_id, &vsecret, &full, Duration::from_secs(15)).await?;
        ensure!(up, "a TLS client with the cluster's certificate did not connect: {why:?}");
        let r = g.top().lookup(&Ctx::root(), &Loc::root(), &Xattrs::new()).await;
        g.fini().await;
        ensure!(r.is_ok(), "lookup of / over TLS: {r:?}");
        Ok(())
    })?;
    // A raw TCP peer that speaks the brick RPC's plain framing gets no challenge, and its
    // connection ends (the brick wanted a TLS ClientHello).
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(15)))?;
        s.write_all(&[
            0, 0, 0, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
        ])?;
        let mut buf = Vec::new();
        let r = s.read_to_end(&mut buf);
        ensure!(
            r.is_ok()
                || r.as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "the brick kept a plain connection open: {r:?}"
        );
        // At most a TLS alert record (type 21), never a brick RPC frame.
        ensure!(
            buf.is_empty() || buf[0] == 21,
            "a plain peer got {} bytes starting {:?}",
            buf.len(),
            &buf[..buf.len().min(8)]
        );
    }

    // --- auth.reject refuses the native client; reset lets it in ---------------------------
    gw.gwctl_ok(&["volume", "set", "vol", "auth.reject", "127.0.0.1"])?;
    let bad = gw.gwctl(&["volume", "set", "vol", "auth.allow", "not an address"])?;
    ensure!(!bad.status.success(), "a bad auth.allow was taken");
    let mnt2 = gw.root().join("native");
    fs::create_dir_all(&mnt2)?;
    let log = gw.root().join("refused-mount.log");
    let logf = fs::File::create(&log)?;
    let mut child = Command::new(bin("gatewayd"))
        .args([
            "mount",
            "--server",
            &gw.api_url,
            "--token",
            &gw.token,
            "--data",
        ])
        .arg(&gw.data)
        .arg("vol")
        .arg(&mnt2)
        // The error itself, not a backtrace, is what an operator reads.
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .stdin(std::process::Stdio::null())
        .stdout(logf.try_clone()?)
        .stderr(logf)
        .spawn()
        .context("spawning gatewayd mount")?;
    let exited = wait_for(
        Duration::from_secs(30),
        "the refused mount to give up",
        || child.try_wait().ok().flatten(),
    );
    let st = match exited {
        Ok(st) => st,
        Err(e) => {
            terminate_child(&mut child, Duration::from_secs(5));
            lazy_unmount(&mnt2);
            bail!(
                "{e}: the native client kept going through auth.reject:\n{}",
                tail(&log, 40)
            );
        }
    };
    let said = fs::read_to_string(&log)?;
    ensure!(!st.success(), "the refused mount exited with {st}:\n{said}");
    ensure!(
        said.contains("refused") && said.contains("auth.reject") && said.contains("127.0.0.1"),
        "the refused mount does not name the rule:\n{said}"
    );
    ensure!(
        !is_mounted(&mnt2),
        "something is mounted at {}",
        mnt2.display()
    );
    // As in GlusterFS, the gateway itself connects from 127.0.0.1 and is cut off too.
    wait_for(
        Duration::from_secs(20),
        "the gateway's own bricks to go down",
        || {
            let s = gw.gwctl_ok(&["volume", "status", "vol"]).ok()?;
            (s.lines().filter(|l| l.contains(" N ")).count() == 4).then_some(())
        },
    )?;

    gw.gwctl_ok(&["volume", "reset", "vol", "auth.reject"])?;
    wait_for(
        Duration::from_secs(30),
        "bricks online after the reset",
        || {
            let s = gw.gwctl_ok(&["volume", "status", "vol"]).ok()?;
            (s.lines().filter(|l| l.contains(" Y ")).count() == 4).then_some(())
        },
    )?;
    let native = NativeMount::start(&gw, "vol", &mnt2)?;
    for (p, sum) in &sums {
        let there = mnt2.join("tls-files").join(p.file_name().unwrap());
        ensure!(
            sha256_file(&there)? == *sum,
            "{} reads differently through the native client",
            there.display()
        );
    }
    fs::write(
        mnt2.join("tls-files/native.txt"),
        b"written by the native client over TLS\n",
    )?;
    drop(native);
    wait_for(
        Duration::from_secs(10),
        "the native client's file through the gateway's mount",
        || {
            fs::read(gw.mnt().join("tls-files/native.txt"))
                .ok()
                .filter(|b| b.as_slice() == b"written by the native client over TLS\n")
        },
    )?;
    // The gateway's own mount serves again.
    ensure!(
        sha256_file(&sums[0].0)? == sums[0].1,
        "the gateway's mount after the reset"
    );
    Ok(())
}
