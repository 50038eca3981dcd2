//! Day one for an operator, on the 2 x 2 volume `gatewayd up` gives: what `gwctl volume set`
//! asks for (`volume stop` + `volume start`) keeps the FUSE mount and the SMB share working; a
//! hung brick is down in `volume status`, `/metrics` and the event feed within ping-timeout;
//! every started volume comes back with gatewayd (`up` and `serve`), and a clean stop logs no
//! warning; the console password survives a failed first start and `gatewayd reset-admin`
//! sets a new one; bad bricks are refused at create with a reason, and `volume start` names
//! the bricks that are not online; long calls are jobs with progress (202 + `GET
//! /api/v1/jobs/{id}`, progress lines or a bar in gwctl).

use anyhow::{Context, Result, bail, ensure};
use e2e::*;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An API call with the admin token: (HTTP status, headers, JSON body or Null).
fn api(
    gw: &Gateway,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String, serde_json::Value)> {
    api_at(&gw.api_url, Some(&gw.token), method, path, body)
}

fn api_at(
    base: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String, serde_json::Value)> {
    let mut c = Command::new("curl");
    c.args(["-s", "-i", "-X", method]);
    if let Some(t) = token {
        c.arg("-H").arg(format!("Authorization: Bearer {t}"));
    }
    if let Some(b) = body {
        c.args(["-H", "Content-Type: application/json", "--data", b]);
    }
    c.arg(format!("{base}{path}"));
    let text = run_ok(&mut c)?;
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("no HTTP answer: {text:?}"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    let json = serde_json::from_str(rest).unwrap_or(serde_json::Value::Null);
    Ok((status, head.to_string(), json))
}

/// Polls a job until it ends; returns it.
fn wait_job(gw: &Gateway, id: &str, limit: Duration) -> Result<serde_json::Value> {
    wait_for(limit, &format!("job {id} to end"), || {
        let (s, _, j) = api(gw, "GET", &format!("/api/v1/jobs/{id}"), None).ok()?;
        (s == 200 && j["state"] != "running").then_some(j)
    })
}

fn status_json(gw: &Gateway, volume: &str) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(
        &gw.gwctl_ok(&["volume", "status", volume, "--json"])?,
    )?)
}

/// Creates a volume over `n` new brick directories under the gateway's temp root (made
/// first: a brick's parent must exist).
fn make_volume(gw: &Gateway, name: &str, n: usize) -> Result<Vec<PathBuf>> {
    let root = gw.root().join(format!("{name}-bricks"));
    fs::create_dir_all(&root)?;
    let dirs: Vec<PathBuf> = (1..=n).map(|i| root.join(format!("b{i}"))).collect();
    let specs: Vec<String> = dirs
        .iter()
        .map(|d| format!("127.0.0.1:{}", d.display()))
        .collect();
    let mut args = vec!["volume", "create", name];
    args.extend(specs.iter().map(String::as_str));
    gw.gwctl_ok(&args)?;
    Ok(dirs)
}

/// Item 1: `volume set` says to stop and start the volume; doing so keeps `gatewayd up
/// --mount`'s FUSE mount (even a file held open across it) and the SMB share working.
#[test]
fn volume_stop_and_start_keep_the_mount_and_the_smb_share() -> Result<()> {
    for p in ["smbclient", "nfs-cat"] {
        need(p);
    }
    let gw = Gateway::up()?;
    let mnt = gw.mnt().to_path_buf();
    fs::write(mnt.join("before.txt"), b"written before the restart\n")?;
    let mut held = fs::File::open(mnt.join("before.txt"))?;
    gw.gwctl_ok(&["smb", "user", "add", "op", "--password", "op-password-1"])?;
    gw.gwctl_ok(&["smb", "share", "add", "opshare", "--volume", "vol"])?;
    let smb = |cmds: &str| -> Result<String> {
        let out = run(Command::new("smbclient")
            .arg("-p")
            .arg(gw.smb_port()?.to_string())
            .args([
                "//127.0.0.1/opshare",
                "-U",
                "op%op-password-1",
                "-m",
                "SMB3",
            ])
            .args(["-c", cmds]))?;
        let text = output_text(&out);
        ensure!(
            out.status.success() && !text.contains("NT_STATUS_"),
            "smbclient -c {cmds:?}:\n{text}"
        );
        Ok(text)
    };
    let got = gw.root().join("got-before.txt");
    smb(&format!("get before.txt {}", got.display()))?;
    ensure!(fs::read(&got)? == b"written before the restart\n");

    let set = gw.gwctl_ok(&["volume", "set", "vol", "cluster.lookup-unhashed", "on"])?;
    ensure!(set.contains("stop and start"), "volume set said: {set}");
    gw.gwctl_ok(&["volume", "stop", "vol"])?;
    // While stopped the mount answers as a GlusterFS client's does (once the kernel's
    // one-second attribute cache has run out).
    let e = wait_for(Duration::from_secs(5), "the stopped volume to fail", || {
        fs::metadata(mnt.join("before.txt")).err()
    })?;
    ensure!(
        e.raw_os_error() == Some(libc::ENOTCONN),
        "while stopped: {e} ({})",
        errno_name(&e)
    );
    let started = gw.gwctl_ok(&["volume", "start", "vol"])?;
    ensure!(
        started.contains("volume start: vol: success: 4 of 4 bricks online"),
        "{started}"
    );
    ensure!(
        gw.gwctl_ok(&["volume", "volfile", "vol"])?
            .contains("option lookup-unhashed on"),
        "the option did not reach the volfile"
    );

    let mut checks = Checks::new();
    checks.check("the FUSE mount reads and writes after the restart", || {
        let text = wait_for(Duration::from_secs(20), "the mount to answer", || {
            fs::read_to_string(mnt.join("before.txt")).ok()
        })?;
        ensure!(text == "written before the restart\n", "read {text:?}");
        fs::write(mnt.join("after.txt"), b"written after the restart\n")?;
        ensure!(fs::read(mnt.join("after.txt"))? == b"written after the restart\n");
        ensure!(is_mounted(&mnt), "the mount is gone");
        Ok(())
    });
    checks.check("a file held open across the restart still reads", || {
        let mut s = String::new();
        held.seek(SeekFrom::Start(0))?;
        held.read_to_string(&mut s)?;
        ensure!(s == "written before the restart\n", "read {s:?}");
        Ok(())
    });
    checks.check("the SMB share serves both files", || {
        let a = gw.root().join("got-after.txt");
        let b = gw.root().join("got-before-2.txt");
        wait_for(
            Duration::from_secs(30),
            "the share to serve after.txt",
            || smb(&format!("get after.txt {}", a.display())).ok(),
        )?;
        smb(&format!("get before.txt {}", b.display()))?;
        ensure!(fs::read(&a)? == b"written after the restart\n");
        ensure!(fs::read(&b)? == b"written before the restart\n");
        Ok(())
    });
    checks.check("NFS serves the file written after the restart", || {
        let cat = run_ok(Command::new("nfs-cat").arg(gw.nfs_url("/after.txt")?))?;
        ensure!(cat == "written after the restart\n", "nfs-cat read {cat:?}");
        Ok(())
    });
    checks.finish();
    Ok(())
}

/// Item 2: a brickd that hangs (SIGSTOP: its port still accepts connections) is down in
/// `volume status` (JSON and text), `/metrics` and the event feed within ping-timeout, with
/// the reason; and back everywhere once it answers again.
#[test]
fn a_hung_brick_is_down_everywhere_within_ping_timeout() -> Result<()> {
    let gw = Gateway::start(GatewayOpts {
        extra: vec!["--ping-timeout".into(), "4".into()],
        ..Default::default()
    })?;
    let b1 = gw.brick_dirs()[0].clone();
    let pid = gw.brickd_pid(&b1).context("brickd of b1")?;
    let st = status_json(&gw, "vol")?;
    ensure!(
        st["bricks"]
            .as_array()
            .is_some_and(|b| b.iter().all(|b| b["online"] == true)),
        "not every brick online at first: {st}"
    );
    let port = st["bricks"][0]["port"].as_u64().context("port")? as u16;
    signal(pid, libc::SIGSTOP);
    let frozen_at = Instant::now();
    let res = (|| -> Result<()> {
        let st = wait_for(
            Duration::from_secs(4 + 6),
            "b1 down in volume status",
            || {
                let st = status_json(&gw, "vol").ok()?;
                (st["bricks"][0]["online"] == false).then_some(st)
            },
        )?;
        eprintln!("down in volume status after {:?}", frozen_at.elapsed());
        let why = st["bricks"][0]["offline_reason"].as_str().unwrap_or("");
        ensure!(why.contains("ping-timeout"), "reason: {st}");
        ensure!(
            st["bricks"][1]["online"] == true,
            "b2 went down with b1: {st}"
        );
        // What the old check looked at still answers: the port of a stopped process.
        ensure!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            "the frozen brick's port refuses connections"
        );
        let text = gw.gwctl_ok(&["volume", "status", "vol"])?;
        let line = text
            .lines()
            .find(|l| l.contains(&b1.display().to_string()))
            .with_context(|| format!("no line for b1 in:\n{text}"))?;
        ensure!(
            line.split_whitespace().any(|w| w == "N"),
            "volume status shows b1 online: {line}"
        );
        let m = run_ok(Command::new("curl").args(["-sf", &format!("{}/metrics", gw.api_url)]))?;
        ensure!(
            m.contains(r#"gateway_brick_up{brick="vol-client-0",volume="vol"} 0"#),
            "metrics: {}",
            m.lines()
                .filter(|l| l.contains("brick_up"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        // The feed records it as it happens (it looks a few times a second).
        let down = wait_for(
            Duration::from_secs(3),
            "a down event for vol-client-0",
            || {
                let (_, _, ev) = api(&gw, "GET", "/api/v1/events", None).ok()?;
                ev.as_array()?
                    .iter()
                    .find(|e| e["brick"] == "vol-client-0" && e["online"] == false)
                    .cloned()
            },
        )?;
        ensure!(
            down["message"]
                .as_str()
                .is_some_and(|m| m.contains("went down") && m.contains("ping-timeout")),
            "{down}"
        );
        let heal = gw.gwctl_ok(&["volume", "heal", "vol", "info"])?;
        ensure!(
            heal.contains("Transport endpoint is not connected"),
            "heal info:\n{heal}"
        );
        Ok(())
    })();
    signal(pid, libc::SIGCONT);
    res?;
    wait_for(Duration::from_secs(20), "b1 online again", || {
        let st = status_json(&gw, "vol").ok()?;
        (st["bricks"][0]["online"] == true).then_some(())
    })?;
    wait_for(Duration::from_secs(3), "b1's back-online event", || {
        let (_, _, ev) = api(&gw, "GET", "/api/v1/events", None).ok()?;
        (ev[0]["brick"] == "vol-client-0" && ev[0]["online"] == true).then_some(())
    })?;
    Ok(())
}

/// The lines of a gatewayd log that warn.
fn warnings(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("WARN"))
        .map(str::to_string)
        .collect()
}

/// Item 3 (and the clean stop): a second started volume comes back with `gatewayd up` and with
/// `gatewayd serve`; stopping gatewayd logs no warning.
#[test]
fn every_started_volume_comes_back_and_a_clean_stop_warns_of_nothing() -> Result<()> {
    let mut gw = Gateway::up()?;
    make_volume(&gw, "second", 2)?;
    gw.gwctl_ok(&["volume", "start", "second"])?;
    let all_online = |gw: &Gateway, v: &str| -> Result<()> {
        let st = wait_for(Duration::from_secs(30), &format!("{v}'s bricks"), || {
            let st = status_json(gw, v).ok()?;
            st["bricks"]
                .as_array()?
                .iter()
                .all(|b| b["online"] == true)
                .then_some(st)
        })?;
        ensure!(
            st["started"] == true && st["mounted_graph_up"] == true,
            "{st}"
        );
        Ok(())
    };
    all_online(&gw, "second")?;

    let before = gw.log_text().len();
    gw.stop();
    let stop_log = gw.log_text()[before..].to_string();
    let w = warnings(&stop_log);
    ensure!(w.is_empty(), "a clean stop warned:\n{}", w.join("\n"));

    gw.start_again()?;
    let out = fs::read_to_string(gw.root().join("gatewayd.stdout"))?;
    ensure!(
        out.contains("volume second started: 2/2 bricks online"),
        "gatewayd up did not say it started second:\n{out}"
    );
    all_online(&gw, "second")?;

    // `gatewayd serve` on the same state brings back both.
    gw.stop();
    let cfg = gw.root().join("gateway.toml");
    fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\napi_listen = \"127.0.0.1:0\"\ns3_listen = \"127.0.0.1:0\"\nnfs_listen = \"127.0.0.1:0\"\nnfs_rpcbind = false\nsmb_listen = \"127.0.0.1:0\"\n",
            gw.data.display().to_string()
        ),
    )?;
    let mut serve = Daemon::spawn(
        &gw.root().join("serve"),
        &["serve", "--config", &cfg.display().to_string()],
    )?;
    let res = (|| -> Result<()> {
        serve.ready()?;
        let api_url = fs::read_to_string(gw.data.join("api.url"))?
            .trim()
            .to_string();
        for v in ["vol", "second"] {
            wait_for(
                Duration::from_secs(30),
                &format!("{v} online under serve"),
                || {
                    let (_, _, st) = api_at(
                        &api_url,
                        Some(&gw.token),
                        "GET",
                        &format!("/api/v1/volumes/{v}/status"),
                        None,
                    )
                    .ok()?;
                    st["bricks"]
                        .as_array()?
                        .iter()
                        .all(|b| b["online"] == true)
                        .then_some(())
                },
            )
            .with_context(|| serve.logs())?;
        }
        Ok(())
    })();
    serve.stop();
    res
}

/// A gatewayd of a test's own, for runs the harness does not make (a start that must fail,
/// `gatewayd serve`): its output in DIR/stdout and DIR/stderr.
struct Daemon {
    child: Option<Child>,
    dir: PathBuf,
}

impl Daemon {
    fn spawn(dir: &Path, args: &[&str]) -> Result<Daemon> {
        fs::create_dir_all(dir)?;
        let child = Command::new(bin("gatewayd"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.join("stdout"))?)
            .stderr(fs::File::create(dir.join("stderr"))?)
            .spawn()?;
        Ok(Daemon {
            child: Some(child),
            dir: dir.to_path_buf(),
        })
    }

    fn stdout(&self) -> String {
        fs::read_to_string(self.dir.join("stdout")).unwrap_or_default()
    }

    fn logs(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout(),
            tail(&self.dir.join("stderr"), 60)
        )
    }

    /// Waits for `gatewayd: ready`; fails if it exits first.
    fn ready(&mut self) -> Result<()> {
        let c = self.child.as_mut().context("not running")?;
        let dir = self.dir.clone();
        let r = wait_for(Duration::from_secs(120), "gatewayd: ready", || {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(Err(anyhow::anyhow!("gatewayd exited with {st}")));
            }
            let out = fs::read_to_string(dir.join("stdout")).ok()?;
            out.lines()
                .any(|l| l.trim() == "gatewayd: ready")
                .then_some(Ok(()))
        });
        match r.and_then(|r| r) {
            Ok(()) => Ok(()),
            Err(e) => bail!("{e}\n{}", self.logs()),
        }
    }

    /// Waits for it to exit on its own; returns whether it failed.
    fn exits_with_failure(&mut self, limit: Duration) -> Result<bool> {
        let c = self.child.as_mut().context("not running")?;
        let st = wait_for(limit, "gatewayd to exit", || c.try_wait().ok().flatten())?;
        self.child = None;
        Ok(!st.success())
    }

    /// The password the console login line of its stdout shows.
    fn password(&self) -> Option<String> {
        password_in(&self.stdout())
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate_child(&mut c, Duration::from_secs(30));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

fn password_in(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("console login: admin / "))
        .and_then(|r| r.split_whitespace().next())
        .map(str::to_string)
}

/// POST /api/v1/login: the HTTP status.
fn login(api_url: &str, password: &str) -> Result<u16> {
    let body = serde_json::json!({ "user": "admin", "password": password }).to_string();
    Ok(api_at(api_url, None, "POST", "/api/v1/login", Some(&body))?.0)
}

/// Item 4: a first start that fails after making the console password (its S3 port is taken)
/// does not lose it: the next start prints one that works. `gatewayd reset-admin` sets a new
/// one, printed once, whether gatewayd runs (through the admin token) or not.
#[test]
fn the_console_password_survives_a_failed_first_start_and_reset_admin_sets_a_new_one() -> Result<()>
{
    let root = temp_dir("op-pw");
    let data = root.path().join("data");
    let taken = TcpListener::bind("127.0.0.1:0")?;
    let port = taken.local_addr()?.port().to_string();
    let up = |s3: &str| -> Vec<String> {
        [
            "up",
            "--data",
            &data.display().to_string(),
            "--api",
            "127.0.0.1:0",
            "--s3",
            s3,
            "--nfs",
            "127.0.0.1:0",
            "--smb",
            "127.0.0.1:0",
            "--rpcbind",
            "off",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let args = up(&format!("127.0.0.1:{port}"));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut first = Daemon::spawn(&root.path().join("first"), &argv)?;
    ensure!(
        first.exits_with_failure(Duration::from_secs(60))?,
        "gatewayd started with its S3 port taken:\n{}",
        first.logs()
    );
    let shown_then = first.password();
    drop(taken);

    let args = up("127.0.0.1:0");
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut second = Daemon::spawn(&root.path().join("second"), &argv)?;
    second.ready()?;
    let api_url = fs::read_to_string(data.join("api.url"))?.trim().to_string();
    // Whichever start showed a password, that one logs in.
    let pw = second
        .password()
        .or(shown_then)
        .with_context(|| format!("no start printed a console password:\n{}", second.logs()))?;
    ensure!(
        login(&api_url, &pw)? == 200,
        "the printed password is refused"
    );

    // While gatewayd runs: reset-admin asks it, with the admin token.
    let out = run_ok(
        Command::new(bin("gatewayd"))
            .args(["reset-admin", "--data"])
            .arg(&data),
    )?;
    let new = password_in(&out).with_context(|| format!("reset-admin printed {out:?}"))?;
    ensure!(new != pw);
    ensure!(
        login(&api_url, &new)? == 200,
        "the reset password is refused"
    );
    ensure!(login(&api_url, &pw)? == 401, "the old password still works");
    second.stop();

    // With gatewayd stopped: reset-admin writes the state itself.
    let out = run_ok(
        Command::new(bin("gatewayd"))
            .args(["reset-admin", "--data"])
            .arg(&data),
    )?;
    let offline = password_in(&out).with_context(|| format!("reset-admin printed {out:?}"))?;
    let mut third = Daemon::spawn(&root.path().join("third"), &argv)?;
    third.ready()?;
    ensure!(
        third.password().is_none(),
        "a later start printed a new password:\n{}",
        third.stdout()
    );
    let api_url = fs::read_to_string(data.join("api.url"))?.trim().to_string();
    ensure!(
        login(&api_url, &offline)? == 200,
        "the offline reset is refused"
    );
    ensure!(login(&api_url, &new)? == 401);
    third.stop();
    // Its bricks end with it; nothing of this test's is left running.
    let d = data.display().to_string();
    for pid in pids_matching(|argv| {
        argv.first().is_some_and(|a| a.ends_with("brickd")) && argv.iter().any(|a| a.contains(&d))
    }) {
        terminate_pid(pid, Duration::from_secs(5));
    }
    Ok(())
}

/// Item 6: bricks are checked at create with a reason (400), and `volume start` says how many
/// bricks are online and names the missing ones.
#[test]
fn bad_bricks_are_refused_at_create_and_start_names_the_missing_ones() -> Result<()> {
    let gw = Gateway::up()?;
    let refused = |args: &[&str], want: &str| -> Result<()> {
        let out = gw.gwctl(args)?;
        let text = output_text(&out);
        ensure!(!out.status.success(), "gwctl {args:?} succeeded:\n{text}");
        ensure!(
            text.contains(want) && text.contains("(HTTP 400)"),
            "gwctl {args:?}: expected {want:?} (HTTP 400), got:\n{text}"
        );
        Ok(())
    };
    let nowhere = format!("/nonexistent-{}", std::process::id());
    refused(
        &[
            "volume",
            "create",
            "bad",
            &format!("127.0.0.1:{nowhere}/b1"),
        ],
        &format!("its parent directory {nowhere} does not exist"),
    )?;
    ensure!(!Path::new(&nowhere).exists(), "{nowhere} was made");
    refused(
        &["volume", "create", "bad", "no-such-host.invalid:/srv/b1"],
        "host no-such-host.invalid cannot be resolved",
    )?;
    let file = gw.root().join("a-file");
    fs::write(&file, b"x")?;
    let under = format!("127.0.0.1:{}/b1", file.display());
    refused(
        &["volume", "create", "bad", &under],
        &format!("{} is a file, not a directory", file.display()),
    )?;
    let (s, _, e) = api(
        &gw,
        "POST",
        "/api/v1/volumes",
        Some(&serde_json::json!({ "name": "bad", "bricks": [under] }).to_string()),
    )?;
    ensure!(s == 400, "a brick under a file: HTTP {s} {e}");
    ensure!(
        gw.gwctl(&["volume", "info", "bad"])?.status.code() != Some(0),
        "a refused volume exists"
    );
    // `force` makes missing parents, as GlusterFS's does.
    let deep = gw.root().join("deep/er");
    gw.gwctl_ok(&[
        "volume",
        "create",
        "forced",
        &format!("127.0.0.1:{}/b1", deep.display()),
        "force",
    ])?;
    ensure!(deep.join("b1").is_dir());

    let dirs = make_volume(&gw, "gap", 2)?;
    fs::remove_dir_all(&dirs[1])?;
    let out = gw.gwctl(&["volume", "start", "gap"])?;
    let text = output_text(&out);
    ensure!(out.status.success(), "volume start gap:\n{text}");
    ensure!(
        text.contains("volume start: gap: success: 1 of 2 bricks online"),
        "{text}"
    );
    let missing = format!(
        "127.0.0.1:{} (gap-client-1) is not online",
        dirs[1].display()
    );
    ensure!(
        text.contains(&missing) && text.contains("No such file or directory"),
        "start does not name the missing brick and why:\n{text}"
    );
    let st = status_json(&gw, "gap")?;
    ensure!(
        st["bricks"][1]["online"] == false
            && st["bricks"][1]["offline_reason"]
                .as_str()
                .is_some_and(|r| r.contains("brickd exited")),
        "{st}"
    );
    Ok(())
}

/// Item 9: volume start and stop and heal are jobs: 202 with the job at once, `GET
/// /api/v1/jobs/{id}` with state, progress and result; gwctl shows progress lines (no
/// terminal) or a bar (a terminal) for a call longer than a second.
#[test]
fn long_calls_are_jobs_with_progress() -> Result<()> {
    let gw = Gateway::start(GatewayOpts {
        mount: false,
        ..Default::default()
    })?;
    let t = Instant::now();
    let (s, head, job) = api(&gw, "POST", "/api/v1/volumes/vol/stop", None)?;
    ensure!(s == 202, "stop: HTTP {s} {job}");
    ensure!(
        t.elapsed() < Duration::from_secs(1),
        "stop answered after {:?}",
        t.elapsed()
    );
    let id = job["id"].as_str().context("job id")?.to_string();
    ensure!(
        head.to_lowercase()
            .contains(&format!("location: /api/v1/jobs/{id}")),
        "{head}"
    );
    ensure!(
        job["kind"] == "volume stop" && job["target"] == "vol",
        "{job}"
    );
    let done = wait_job(&gw, &id, Duration::from_secs(60))?;
    ensure!(done["state"] == "succeeded", "{done}");
    ensure!(done["result"]["started"] == false, "{done}");

    let (s, _, job) = api(&gw, "POST", "/api/v1/volumes/vol/start", None)?;
    ensure!(
        s == 202 && job["state"] == "running",
        "start: HTTP {s} {job}"
    );
    let done = wait_job(
        &gw,
        job["id"].as_str().context("id")?,
        Duration::from_secs(60),
    )?;
    ensure!(
        done["state"] == "succeeded" && done["result"]["bricks_online"] == 4,
        "{done}"
    );
    ensure!(
        done["progress"]["total"] == 4 && done["progress"]["message"].is_string(),
        "{done}"
    );

    // Errors known at once are answered at once; a missing job is a 404.
    let (s, _, _) = api(&gw, "POST", "/api/v1/volumes/nosuch/start", None)?;
    ensure!(s == 404, "start of a missing volume: HTTP {s}");
    let (s, _, _) = api(&gw, "GET", "/api/v1/jobs/nosuch", None)?;
    ensure!(s == 404, "a missing job: HTTP {s}");

    let heal = gw.gwctl_ok(&["volume", "heal", "vol", "full"])?;
    ensure!(heal.contains("Number of entries"), "{heal}");
    let (_, _, jobs) = api(&gw, "GET", "/api/v1/jobs", None)?;
    ensure!(
        jobs[0]["kind"] == "volume heal full" && jobs[0]["state"] == "succeeded",
        "{jobs}"
    );

    // A start that takes seconds (a brick that will not come) reports progress.
    let dirs = make_volume(&gw, "slow", 2)?;
    fs::remove_dir_all(&dirs[1])?;
    let out = gw.gwctl(&["volume", "start", "slow"])?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(out.status.success(), "{}", output_text(&out));
    ensure!(
        err.lines()
            .any(|l| l.contains("volume start slow: 1/2 bricks online; waiting for")),
        "no progress line:\n{err}"
    );
    // On a terminal, a progress bar.
    if have_program("script") {
        gw.gwctl_ok(&["volume", "stop", "slow"])?;
        let cmd = format!(
            "{} --api {} --token {} volume start slow",
            bin("gwctl").display(),
            gw.api_url,
            gw.token
        );
        let tty = run_ok(Command::new("script").args(["-qec", &cmd, "/dev/null"]))?;
        // indicatif redraws its line with terminal escapes.
        ensure!(
            tty.contains("1/2 bricks online") && tty.contains('█') && tty.contains("\u{1b}["),
            "no progress bar on a terminal:\n{tty:?}"
        );
    }

    // The OpenAPI document describes the new routes.
    let doc =
        run_ok(Command::new("curl").args(["-sf", &format!("{}/api/v1/openapi.json", gw.api_url)]))?;
    let doc: serde_json::Value = serde_json::from_str(&doc)?;
    for p in [
        "/api/v1/jobs",
        "/api/v1/jobs/{id}",
        "/api/v1/events",
        "/api/v1/admin/password/reset",
    ] {
        ensure!(doc["paths"][p].is_object(), "{p} is not documented");
    }
    ensure!(
        doc["paths"]["/api/v1/volumes/{name}/start"]["post"]["responses"]["202"].is_object(),
        "start's 202 is not documented"
    );
    Ok(())
}
