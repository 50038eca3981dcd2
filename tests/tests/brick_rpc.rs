//! The brick RPC at its edge: a peer without the volume secret (or with the wrong volume id or
//! brick name) is refused; a malformed frame closes only that connection, while a good client —
//! the engine's protocol/client, or the gateway's FUSE mount — keeps working.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use e2e::*;
use engine::graph::Graph;
use engine::registry::Registry;
use engine::{Ctx, Gfid, Loc, Xattrs};
use rand::RngCore;
use tempfile::TempDir;

/// A brickd we start by hand on a fresh brick directory.
struct Brickd {
    child: Child,
    port: u16,
    volume_id: String,
    name: String,
    secret: String,
    stderr: PathBuf,
    _dir: TempDir,
}

impl Brickd {
    fn start() -> Result<Brickd> {
        let dir = temp_dir("brickd");
        let brick = dir.path().join("brick");
        fs::create_dir_all(&brick)?;
        let mut raw = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut raw);
        raw[6] = (raw[6] & 0x0f) | 0x40;
        raw[8] = (raw[8] & 0x3f) | 0x80;
        let volume_id = uuid_str(&raw);
        let mut s = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut s);
        let secret = hex::encode(s);
        let secret_file = dir.path().join("secret");
        fs::write(&secret_file, &secret)?;
        let stderr = dir.path().join("brickd.stderr");
        let mut child = Command::new(bin("brickd"))
            .arg("--brick")
            .arg(&brick)
            .args(["--listen", "127.0.0.1:0", "--volume-id", &volume_id])
            .args(["--brick-name", "t-brick", "--volume", "t"])
            .arg("--secret-file")
            .arg(&secret_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&stderr)?)
            .spawn()
            .context("spawning brickd")?;
        let out = child.stdout.take().expect("piped stdout");
        let line = read_line_matching(out, Duration::from_secs(30), |l| {
            l.starts_with("brickd listening on ")
        });
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                terminate_child(&mut child, Duration::from_secs(2));
                bail!("{e}: {}", tail(&stderr, 30));
            }
        };
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .with_context(|| format!("no port in {line:?}"))?;
        Ok(Brickd {
            child,
            port,
            volume_id,
            name: "t-brick".into(),
            secret,
            stderr,
            _dir: dir,
        })
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Brickd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- brickd stderr ---\n{}", tail(&self.stderr, 40));
        }
        terminate_child(&mut self.child, Duration::from_secs(5));
    }
}

fn client_volfile(port: u16, name: &str, volume_id: &str, password: &str) -> String {
    format!(
        "volume c\n    type protocol/client\n    option remote-host 127.0.0.1\n    option remote-port {port}\n    option remote-subvolume {name}\n    option volume-id {volume_id}\n    option password {password}\n    option ping-timeout 5\nend-volume\n"
    )
}

/// Build a one-translator client graph and report whether it comes up and can look up the root.
async fn try_client(volfile: &str, wait: Duration) -> Result<(bool, Result<Gfid, String>, Graph)> {
    let reg = Registry::client_side();
    let g = Graph::from_text(volfile, &reg).context("client volfile")?;
    g.init().await.context("client init")?;
    let up = g.wait_up(wait).await;
    let r = tokio::time::timeout(
        Duration::from_secs(15),
        g.top().lookup(&Ctx::root(), &Loc::root(), &Xattrs::new()),
    )
    .await;
    let r = match r {
        Err(_) => Err("lookup hung for 15s".to_string()),
        Ok(Ok((iatt, _))) => Ok(iatt.gfid),
        Ok(Err(e)) => Err(format!("{e:?}")),
    };
    Ok((up, r, g))
}

/// Read until the peer closes (EOF or reset) or `limit` passes; true if it closed.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(200))).ok();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            // A read with SO_RCVTIMEO is never restarted after a signal (signal(7)): a
            // SIGCHLD from any child of the test process ends it with EINTR, which says
            // nothing about the connection.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Garbage a broken or hostile peer might send, each on its own connection.
fn garbage_cases() -> Vec<(&'static str, Vec<u8>)> {
    let mut random = vec![0u8; 4096];
    rand::thread_rng().fill_bytes(&mut random);
    // The length prefix covers the rest, so the brick has the whole frame to refuse at once
    // (a random prefix under the frame limit would leave it waiting for more until its
    // handshake timeout).
    random[..4].copy_from_slice(&4092u32.to_be_bytes());
    let mut huge = vec![0xff, 0xff, 0xff, 0xff];
    huge.extend_from_slice(&[0x41; 64]);
    // A plausible length prefix and frame header with an unknown kind and junk message.
    let mut bad_kind = Vec::new();
    bad_kind.extend_from_slice(&40u32.to_be_bytes());
    bad_kind.extend_from_slice(&7u64.to_be_bytes());
    bad_kind.push(0xee);
    bad_kind.extend_from_slice(&[0x13; 31]);
    // A well-formed Hello-kind frame whose message does not decode.
    let mut bad_hello = Vec::new();
    bad_hello.extend_from_slice(&30u32.to_be_bytes());
    bad_hello.extend_from_slice(&0u64.to_be_bytes());
    bad_hello.push(5);
    bad_hello.extend_from_slice(&[0xff; 4]);
    bad_hello.extend_from_slice(&[0x80; 17]);
    vec![
        ("random bytes", random),
        ("length 0xffffffff", huge),
        ("unknown frame kind", bad_kind),
        ("undecodable hello", bad_hello),
        (
            "HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
    ]
}

#[test]
fn peer_without_the_secret_is_refused() {
    let mut b = Brickd::start().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut checks = Checks::new();
    let mut bad = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bad);
    let wrong_secret = hex::encode(bad);
    let other_vid = "0b8e7e54-6a1c-4d0e-9d8a-3c6f1a2b4c5d";
    for (what, vf) in [
        (
            "a wrong secret",
            client_volfile(b.port, &b.name, &b.volume_id, &wrong_secret),
        ),
        (
            "a wrong volume id",
            client_volfile(b.port, &b.name, other_vid, &b.secret),
        ),
        (
            "a wrong brick name",
            client_volfile(b.port, "no-such-brick", &b.volume_id, &b.secret),
        ),
    ] {
        checks.check(&format!("a client with {what} is refused"), || {
            let (up, r, g) = rt.block_on(try_client(&vf, Duration::from_secs(5)))?;
            rt.block_on(g.fini());
            ensure!(!up, "the client came up");
            ensure!(r.is_err(), "lookup of / succeeded: {r:?}");
            eprintln!("{what}: lookup -> {r:?}");
            Ok(())
        });
    }
    checks.check(
        "raw connections without a valid handshake are closed",
        || {
            let mut s = TcpStream::connect(("127.0.0.1", b.port))?;
            s.write_all(&[0u8; 64])?;
            ensure!(closed_within(&mut s, Duration::from_secs(15)), "still open");
            Ok(())
        },
    );
    checks.check("the right secret is accepted (control)", || {
        let vf = client_volfile(b.port, &b.name, &b.volume_id, &b.secret);
        let (up, r, g) = rt.block_on(try_client(&vf, Duration::from_secs(10)))?;
        rt.block_on(g.fini());
        ensure!(up, "the client did not come up");
        ensure!(r == Ok(Gfid::ROOT), "lookup of / gave {r:?}");
        Ok(())
    });
    checks.check("brickd survived", || {
        ensure!(b.alive(), "brickd exited");
        Ok(())
    });
    checks.finish();
}

#[test]
fn malformed_frames_close_only_that_connection_engine_client() {
    let mut b = Brickd::start().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let vf = client_volfile(b.port, &b.name, &b.volume_id, &b.secret);
    let (up, r, g) = rt
        .block_on(try_client(&vf, Duration::from_secs(10)))
        .unwrap();
    assert!(
        up && r == Ok(Gfid::ROOT),
        "good client: up={up} lookup={r:?}"
    );
    let top = g.top();
    let mut checks = Checks::new();
    for (what, bytes) in garbage_cases() {
        checks.check(&format!("{what}: that connection is closed"), || {
            // An idle connection opened before the garbage must not be closed with it.
            let mut idle = TcpStream::connect(("127.0.0.1", b.port))?;
            let mut s = TcpStream::connect(("127.0.0.1", b.port))?;
            let _ = s.write_all(&bytes);
            ensure!(
                closed_within(&mut s, Duration::from_secs(15)),
                "the connection stayed open"
            );
            ensure!(
                !closed_within(&mut idle, Duration::from_millis(500)),
                "an unrelated connection was closed too"
            );
            let _ = idle.shutdown(Shutdown::Both);
            let r = rt.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(10),
                    top.lookup(&Ctx::root(), &Loc::root(), &Xattrs::new()),
                )
                .await
            });
            ensure!(
                matches!(r, Ok(Ok(_))),
                "the good client broke: {:?}",
                r.map(|x| x.map(|_| ()))
            );
            ensure!(b.alive(), "brickd died");
            Ok(())
        });
    }
    rt.block_on(g.fini());
    checks.finish();
}

#[test]
fn malformed_frames_close_only_that_connection_mount_keeps_working() {
    let gw = Gateway::up().unwrap();
    let mnt = gw.mnt().to_path_buf();
    let bricks = gw.brick_dirs();
    // Files on the first replica set (b1,b2), and so on b2, the brick we send garbage to.
    let names = names_on_set(&bricks, gw.replica(), Path::new(""), 0, "g", 5).unwrap();
    for n in &names {
        fs::write(mnt.join(n), n.as_bytes()).unwrap();
    }
    let pid = gw.brickd_pid(&bricks[1]).expect("brickd of b2");
    let ports = listening_ports(pid);
    assert!(!ports.is_empty(), "brickd {pid} listens on no TCP port");
    let port = ports[0];
    let mut checks = Checks::new();
    for (round, (what, bytes)) in garbage_cases().into_iter().enumerate() {
        checks.check(
            &format!("{what}: closed, and the mount keeps working"),
            || {
                let mut s = TcpStream::connect(("127.0.0.1", port))?;
                let _ = s.write_all(&bytes);
                ensure!(
                    closed_within(&mut s, Duration::from_secs(15)),
                    "the connection stayed open"
                );
                let start = Instant::now();
                for n in &names {
                    let content = format!("{n} {round}");
                    fs::write(mnt.join(n), &content)?;
                    ensure!(fs::read_to_string(mnt.join(n))? == content, "{n} differs");
                }
                ensure!(
                    start.elapsed() < Duration::from_secs(5),
                    "mount slowed to {:?}",
                    start.elapsed()
                );
                ensure!(
                    gw.brickd_pid(&bricks[1]) == Some(pid),
                    "brickd of b2 died or was restarted"
                );
                Ok(())
            },
        );
    }
    checks.finish();
}
