//! Day one for an operator: what gwctl, gatewayd and brickd show a person and leave in logs
//! (help for every command, --version, no secret in --help, no colour codes in log files,
//! failed logins logged with the client's address and never the password, a banner that
//! leaves the user's AWS profile alone), GlusterFS's `volume status [NAME [detail]]`,
//! `volume get` and `volume set help`, a confirmation before `volume delete`, no risky
//! suggestions for typos; NFS exports of directories that must exist and that do not break
//! `nfs-ls` of their volume for clients outside their networks; and the install scripts: the
//! quickstart installs no test tools, and the console is built only when its sources change.

use anyhow::{Context, Result, ensure};
use e2e::*;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `rfc3339` shape: 2026-05-02T10:11:12Z.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn help_and_version_show_commands_but_no_secret_and_typos_get_no_risky_tips() -> Result<()> {
    let secret = "gwt_do-not-print-me-1234567890";
    for (bin_name, args) in [
        ("gatewayd", &["mount", "--help"][..]),
        ("gwctl", &["--help"]),
        ("gwctl", &["volume", "status", "--help"]),
    ] {
        let out = run(Command::new(bin(bin_name))
            .args(args)
            .env("GWCTL_TOKEN", secret))?;
        let (stdout, stderr) = text(&out);
        ensure!(out.status.success(), "{bin_name} {args:?}: {stderr}");
        ensure!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{bin_name} {args:?} shows GWCTL_TOKEN's value:\n{stdout}"
        );
    }
    for b in ["gatewayd", "gwctl", "brickd"] {
        let v = run_ok(Command::new(bin(b)).arg("--version"))?;
        ensure!(v.starts_with(&format!("{b} ")), "{b} --version: {v:?}");
    }
    // Every volume command says what it does.
    let help = run_ok(Command::new(bin("gwctl")).args(["volume", "--help"]))?;
    for c in [
        "start", "stop", "delete", "info", "status", "list", "get", "set",
    ] {
        let line = help
            .lines()
            .find(|l| l.split_whitespace().next() == Some(c))
            .with_context(|| format!("no {c} in gwctl volume --help:\n{help}"))?;
        ensure!(
            line.split_whitespace().count() > 2,
            "`{c}` has no help line: {line:?}"
        );
    }
    let out = run(Command::new(bin("gwctl")).args(["volume", "start", "--help"]))?;
    ensure!(
        text(&out).0.lines().next().is_some_and(|l| !l.is_empty()),
        "gwctl volume start --help starts empty:\n{}",
        text(&out).0
    );
    // `top` is one letter from `stop`: no tip pointing there.
    for typo in [&["volume", "top", "vol"][..], &["volume", "delet", "vol"]] {
        let out = run(Command::new(bin("gwctl")).args(typo))?;
        let (_, stderr) = text(&out);
        ensure!(!out.status.success(), "{typo:?} succeeded");
        ensure!(
            stderr.contains("unrecognized subcommand") && !stderr.contains("similar"),
            "gwctl {typo:?}:\n{stderr}"
        );
    }
    Ok(())
}

#[test]
fn logs_are_plain_text_and_name_refused_logins_by_address_never_password() -> Result<()> {
    need("curl");
    let gw = Gateway::up()?;
    let password = "hunter2-not-the-password";
    let out = run(Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["-H", "Content-Type: application/json", "-d"])
        .arg(format!(r#"{{"user":"admin","password":"{password}"}}"#))
        .arg(format!("{}/api/v1/login", gw.api_url)))?;
    ensure!(
        text(&out).0 == "401",
        "wrong password: HTTP {}",
        text(&out).0
    );
    let line = wait_for(
        Duration::from_secs(10),
        "the refused login in the log",
        || {
            gw.log_text()
                .lines()
                .find(|l| l.contains("console login refused"))
                .map(str::to_string)
        },
    )?;
    ensure!(
        line.contains("client=127.0.0.1"),
        "the refused login names no client: {line}"
    );
    let log = gw.log_text();
    ensure!(!log.contains(password), "a password reached the log");
    ensure!(
        !log.contains('\u{1b}'),
        "gatewayd's log file holds ANSI colour codes:\n{}",
        log.lines().take(5).collect::<Vec<_>>().join("\n")
    );
    let logs = gw.data.join("logs");
    let mut bricks = 0;
    for e in fs::read_dir(&logs).with_context(|| format!("reading {}", logs.display()))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "log") {
            bricks += 1;
            ensure!(
                !fs::read_to_string(&p)?.contains('\u{1b}'),
                "{} holds ANSI colour codes",
                p.display()
            );
        }
    }
    ensure!(bricks >= 4, "{bricks} brick logs in {}", logs.display());

    // The banner leaves the user's default AWS profile alone.
    let banner = fs::read_to_string(gw.root().join("gatewayd.stdout"))?;
    ensure!(
        !banner.contains("aws configure set"),
        "the banner suggests overwriting the default AWS profile:\n{banner}"
    );
    ensure!(
        banner.contains("AWS_ACCESS_KEY_ID=") && banner.contains("--profile gateway"),
        "banner:\n{banner}"
    );
    Ok(())
}

#[test]
fn volume_status_get_set_help_and_times_as_glusterfs_prints_them() -> Result<()> {
    let gw = Gateway::up()?;
    // status without a name: every volume; detail: disk space per brick.
    let all = gw.gwctl_ok(&["volume", "status"])?;
    ensure!(
        all.contains("Status of volume: vol") && all.matches(":/").count() >= 4,
        "gwctl volume status:\n{all}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&gw.gwctl_ok(&["volume", "status", "--json"])?)?;
    ensure!(
        json.as_array()
            .is_some_and(|a| a.len() == 1 && a[0]["name"] == "vol"),
        "{json}"
    );
    let one: serde_json::Value =
        serde_json::from_str(&gw.gwctl_ok(&["volume", "status", "vol", "--json"])?)?;
    ensure!(one["name"] == "vol", "volume status vol --json: {one}");
    let detail = gw.gwctl_ok(&["volume", "status", "vol", "detail"])?;
    for want in [
        "TCP Port",
        "Online",
        "Disk Space Free",
        "Total Disk Space",
        "Replica Set",
    ] {
        ensure!(
            detail.matches(want).count() == 4,
            "{want} not once per brick:\n{detail}"
        );
    }
    ensure!(detail.contains("GB") || detail.contains("MB"), "{detail}");

    // volume get: Option/Value columns with the defaults, and what was set.
    let get = gw.gwctl_ok(&["volume", "get", "vol", "all"])?;
    let mut lines = get.lines();
    ensure!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("Option") && l.contains("Value")),
        "{get}"
    );
    let row = |text: &str, key: &str| -> Option<Vec<String>> {
        text.lines()
            .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
            .find(|w| w.first().is_some_and(|k| k == key))
    };
    // Defaults from the translators' tables (gatewayd sets lookup-unhashed auto at create).
    ensure!(
        row(&get, "cluster.read-hash-mode")
            == Some(vec!["cluster.read-hash-mode".into(), "1".into()]),
        "{get}"
    );
    ensure!(
        row(&get, "cluster.quorum-count").is_some_and(|w| w[1] == "(null)"),
        "{get}"
    );
    ensure!(
        row(&get, "nfs.disable").is_some_and(|w| w[1] == "off"),
        "{get}"
    );
    ensure!(
        row(&get, "cluster.lookup-unhashed").is_some_and(|w| w[1] == "auto"),
        "{get}"
    );
    gw.gwctl_ok(&["volume", "set", "vol", "cluster.read-hash-mode", "2"])?;
    let one = gw.gwctl_ok(&["volume", "get", "vol", "cluster.read-hash-mode"])?;
    ensure!(
        row(&one, "cluster.read-hash-mode").is_some_and(|w| w[1] == "2")
            && one.lines().count() == 3,
        "{one}"
    );
    ensure!(
        !gw.gwctl(&["volume", "get", "vol", "no.such-option"])?
            .status
            .success()
    );

    // volume set help: every settable option with its default and description.
    let help = gw.gwctl_ok(&["volume", "set", "help"])?;
    ensure!(
        help.contains("Option: cluster.lookup-unhashed\nDefault Value: on\n")
            && help.contains("Option: cluster.quorum-type")
            && help.contains("Option: nfs.disable")
            && help.matches("Description: ").count() == help.matches("Option: ").count(),
        "gwctl volume set help:\n{help}"
    );
    ensure!(!help.contains("afr-pending-xattr"), "{help}");

    // Times in human output are RFC 3339; --json keeps the numbers.
    gw.gwctl_ok(&["token", "create", "day-one"])?;
    for (args, col) in [(&["log"][..], 0), (&["token", "list"], 1)] {
        let out = gw.gwctl_ok(args)?;
        let rows: Vec<&str> = out
            .lines()
            .filter(|l| !l.starts_with("NAME") && !l.trim().is_empty())
            .collect();
        ensure!(!rows.is_empty(), "gwctl {args:?} printed nothing");
        for r in rows {
            let t = r.split_whitespace().nth(col).unwrap_or("");
            ensure!(
                is_rfc3339(t),
                "gwctl {args:?}: {t:?} is not an RFC 3339 time in {r:?}"
            );
        }
    }
    let log: serde_json::Value = serde_json::from_str(&gw.gwctl_ok(&["log", "--json"])?)?;
    ensure!(log[0]["at"].is_u64(), "gwctl log --json: {log}");
    Ok(())
}

#[test]
fn volume_delete_asks_first_and_refuses_without_a_terminal() -> Result<()> {
    let gw = Gateway::up()?;
    let make = |name: &str| -> Result<()> {
        let b = gw.data.join(format!("extra-{name}"));
        gw.gwctl_ok(&[
            "volume",
            "create",
            name,
            &format!("127.0.0.1:{}", b.display()),
        ])?;
        Ok(())
    };
    let listed = |name: &str| -> Result<bool> {
        Ok(gw.gwctl_ok(&["volume", "list"])?.lines().any(|l| l == name))
    };
    make("spare")?;
    // No terminal (stdin is /dev/null): refused, the volume stays.
    let out = gw.gwctl(&["volume", "delete", "spare"])?;
    ensure!(
        !out.status.success() && text(&out).1.contains("--yes"),
        "delete without a terminal: {:?}",
        text(&out)
    );
    ensure!(listed("spare")?, "deleted without confirmation");
    // A terminal that answers no, then yes (util-linux `script` gives gwctl a pty).
    if have_program("script") {
        for (answer, gone) in [("n", false), ("y", true)] {
            let cmd = format!(
                "{} --api {} --token {} volume delete spare",
                bin("gwctl").display(),
                gw.api_url,
                gw.token
            );
            let mut child = Command::new("script")
                .args(["-qec", &cmd, "/dev/null"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()?;
            // Answer once the question is up (script passes our bytes to the pty).
            std::thread::sleep(Duration::from_millis(700));
            child
                .stdin
                .take()
                .context("stdin")?
                .write_all(format!("{answer}\n").as_bytes())?;
            let out = child.wait_with_output()?;
            let (o, e) = text(&out);
            ensure!(
                o.contains("Do you want to continue? (y/n)") || e.contains("(y/n)"),
                "no question asked: {o}{e}"
            );
            ensure!(listed("spare")? != gone, "answer {answer}: {o}{e}");
        }
        make("spare")?;
    }
    gw.gwctl_ok(&["volume", "delete", "spare", "--yes"])?;
    ensure!(!listed("spare")?);
    make("spare")?;
    gw.gwctl_ok(&["--mode=script", "volume", "delete", "spare"])?;
    ensure!(!listed("spare")?);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// NFS: MOUNT's EXPORT and MNT as a client at 127.0.0.1 sees them, by hand (RFC 1813 app. I).

fn xdr_opaque(b: &mut Vec<u8>, data: &[u8]) {
    b.extend_from_slice(&(data.len() as u32).to_be_bytes());
    b.extend_from_slice(data);
    b.resize(b.len().div_ceil(4) * 4, 0);
}

/// One MOUNT v3 call over TCP as root (AUTH_SYS); the reply's results after accept_stat.
fn mount_call(port: u16, proc_: u32, args: &[u8]) -> Result<Vec<u8>> {
    let mut msg = Vec::new();
    for w in [0x4d4e_5401u32, 0, 2, 100_005, 3, proc_, 1] {
        msg.extend_from_slice(&w.to_be_bytes());
    }
    let mut cred = Vec::new();
    cred.extend_from_slice(&0u32.to_be_bytes());
    xdr_opaque(&mut cred, b"operator-test");
    for w in [0u32, 0, 0] {
        cred.extend_from_slice(&w.to_be_bytes());
    }
    xdr_opaque(&mut msg, &cred);
    msg.extend_from_slice(&[0; 8]);
    msg.extend_from_slice(args);
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(&(0x8000_0000u32 | msg.len() as u32).to_be_bytes())?;
    s.write_all(&msg)?;
    let mut reply = Vec::new();
    loop {
        let mut h = [0u8; 4];
        s.read_exact(&mut h)?;
        let h = u32::from_be_bytes(h);
        let mut frag = vec![0u8; (h & 0x7fff_ffff) as usize];
        s.read_exact(&mut frag)?;
        reply.extend_from_slice(&frag);
        if h & 0x8000_0000 != 0 {
            break;
        }
    }
    let word = |i: usize| u32::from_be_bytes(reply[i..i + 4].try_into().unwrap());
    ensure!(word(4) == 1 && word(8) == 0, "not an accepted reply");
    let verf_len = word(16) as usize;
    let at = 20 + verf_len.div_ceil(4) * 4;
    ensure!(word(at) == 0, "accept_stat {}", word(at));
    Ok(reply[at + 4..].to_vec())
}

/// EXPORT's list as this client gets it.
fn export_list(port: u16) -> Result<Vec<String>> {
    let r = mount_call(port, 5, &[])?;
    let word = |i: usize| u32::from_be_bytes(r[i..i + 4].try_into().unwrap());
    let mut out = Vec::new();
    let mut i = 0;
    let string = |i: &mut usize| {
        let n = word(*i) as usize;
        let s = String::from_utf8_lossy(&r[*i + 4..*i + 4 + n]).into_owned();
        *i += 4 + n.div_ceil(4) * 4;
        s
    };
    while word(i) == 1 {
        i += 4;
        out.push(string(&mut i));
        while word(i) == 1 {
            i += 4;
            string(&mut i);
        }
        i += 4;
    }
    Ok(out)
}

/// MNT's status for `path` (0 ok, 2 NOENT, 13 ACCES).
fn mnt_status(port: u16, path: &str) -> Result<u32> {
    let mut args = Vec::new();
    xdr_opaque(&mut args, path.as_bytes());
    let r = mount_call(port, 1, &args)?;
    Ok(u32::from_be_bytes(r[..4].try_into().unwrap()))
}

#[test]
fn nested_exports_need_their_directory_and_never_break_nfs_ls_of_the_volume() -> Result<()> {
    need("nfs-ls");
    let gw = Gateway::up()?;
    let port = gw.nfs_port()?;
    let ls = |what: &str| -> Result<String> {
        let out = run(Command::new("nfs-ls").arg(gw.nfs_url("/")?))?;
        ensure!(
            out.status.success(),
            "nfs-ls of /vol/ fails {what}: {}",
            output_text(&out)
        );
        Ok(text(&out).0)
    };
    fs::write(gw.mnt().join("top.txt"), b"hello")?;

    // An export of a directory that does not exist is refused, and says why.
    let out = gw.gwctl(&["nfs", "export", "add", "/vol/public", "--all-squash"])?;
    ensure!(
        !out.status.success() && text(&out).1.contains("no directory /public"),
        "an export of a missing directory: {:?}",
        text(&out)
    );
    ensure!(
        !gw.gwctl_ok(&["nfs", "export", "list"])?
            .contains("/vol/public")
    );

    // Once it exists, it may be exported to another network only: this client is not in it,
    // is refused with ACCES (not NOENT), is not shown it by EXPORT, and lists /vol/ as before.
    fs::create_dir(gw.mnt().join("public"))?;
    gw.gwctl_ok(&[
        "nfs",
        "export",
        "add",
        "/vol/public",
        "--network",
        "10.99.0.0/16",
    ])?;
    ensure!(
        mnt_status(port, "/vol/public")? == 13,
        "MNT of a refused export"
    );
    ensure!(
        mnt_status(port, "/vol/public/x")? == 13,
        "MNT below a refused export"
    );
    let exports = export_list(port)?;
    ensure!(
        exports.contains(&"/vol".to_string()) && !exports.contains(&"/vol/public".to_string()),
        "EXPORT to 127.0.0.1: {exports:?}"
    );
    let list = ls("with a nested export for another network")?;
    ensure!(
        list.contains("top.txt") && list.contains("public"),
        "{list}"
    );

    // A nested export this client may use is listed, mounted by libnfs with the volume, fine.
    fs::create_dir(gw.mnt().join("shared"))?;
    gw.gwctl_ok(&[
        "nfs",
        "export",
        "add",
        "/vol/shared",
        "--network",
        "127.0.0.0/8",
    ])?;
    ensure!(export_list(port)?.contains(&"/vol/shared".to_string()));
    ensure!(mnt_status(port, "/vol/shared")? == 0);
    ls("with a nested export for this client")?;

    // A nested export whose directory went away is left out too.
    fs::remove_dir(gw.mnt().join("shared"))?;
    ensure!(
        mnt_status(port, "/vol/shared")? == 2,
        "MNT of a removed directory"
    );
    ensure!(!export_list(port)?.contains(&"/vol/shared".to_string()));
    ls("with a nested export of a removed directory")?;

    // A file is no directory to export.
    let out = gw.gwctl(&["nfs", "export", "add", "/vol/top.txt"])?;
    ensure!(
        !out.status.success() && text(&out).1.contains("not a directory"),
        "{:?}",
        text(&out)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Install scripts

#[test]
fn quickstart_installs_runtime_dependencies_only() -> Result<()> {
    let root = workspace_root();
    let runtime = root.join("deploy/install-runtime-deps");
    let script = fs::read_to_string(&runtime).context("deploy/install-runtime-deps")?;
    ensure!(fs::metadata(&runtime)?.permissions().mode() & 0o111 != 0);
    let code: String = script
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    for needed in [
        "librocksdb-dev",
        "libclang-dev",
        "fuse3",
        "attr",
        "samba",
        "libnss-wrapper",
        "npm",
        "rustup",
    ] {
        ensure!(code.contains(needed), "install-runtime-deps lacks {needed}");
    }
    for test_only in [
        "glusterfs",
        "chromium",
        "fio",
        "iptables",
        "pip install",
        "python3-pip",
        "smbclient",
        "libnfs",
    ] {
        ensure!(
            !code.contains(test_only),
            "install-runtime-deps installs {test_only}"
        );
    }
    let quickstart = fs::read_to_string(root.join("deploy/quickstart.sh"))?;
    ensure!(
        !quickstart.contains(".ci/install-deps")
            && quickstart.contains("deploy/install-runtime-deps")
            && quickstart.contains("deploy/build-console"),
        "quickstart.sh:\n{quickstart}"
    );
    let ci = fs::read_to_string(root.join(".ci/install-deps"))?;
    ensure!(ci.contains("deploy/install-runtime-deps") && ci.contains("deploy/build-console"));
    // The README's test command is .ci/run, which installs the test dependencies itself.
    let readme = fs::read_to_string(root.join("README.md"))?;
    ensure!(
        readme.contains("```sh\n.ci/run\n```"),
        "README's test command"
    );

    // On a machine that has them (this one: the tests run), a second run installs nothing and
    // takes seconds.
    let t = Instant::now();
    let out = run(&mut Command::new(&runtime))?;
    ensure!(out.status.success(), "{}", output_text(&out));
    ensure!(
        text(&out).0.contains("system packages present"),
        "{}",
        output_text(&out)
    );
    ensure!(
        t.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t.elapsed()
    );
    Ok(())
}

#[test]
fn the_console_is_rebuilt_only_when_its_sources_change() -> Result<()> {
    need("npm");
    let root = workspace_root();
    let modules = root.join("web-ui/node_modules");
    ensure!(
        modules.join(".bin/vite").exists(),
        "web-ui/node_modules is not installed (deploy/build-console does it)"
    );
    let build = root.join("deploy/build-console");
    // The real tree first (a no-op after .ci/install-deps): its install stamp then matches the
    // copy's, which shares its node_modules.
    run_ok(&mut Command::new(&build))?;
    let tmp = temp_dir("console");
    let ui = tmp.path().join("web-ui");
    fs::create_dir_all(ui.join("src"))?;
    for f in [
        "index.html",
        "vite.config.js",
        "package.json",
        "package-lock.json",
    ] {
        fs::copy(root.join("web-ui").join(f), ui.join(f))?;
    }
    for e in fs::read_dir(root.join("web-ui/src"))? {
        let e = e?;
        fs::copy(e.path(), ui.join("src").join(e.file_name()))?;
    }
    std::os::unix::fs::symlink(&modules, ui.join("node_modules"))?;

    let first = run_ok(Command::new(&build).arg(&ui))?;
    ensure!(first.contains("building"), "first build:\n{first}");
    let index = ui.join("dist/index.html");
    let before = fs::metadata(&index)?.modified()?;
    let t = Instant::now();
    let second = run_ok(Command::new(&build).arg(&ui))?;
    ensure!(
        second.contains("up to date") && !second.contains("building"),
        "second run:\n{second}"
    );
    ensure!(
        t.elapsed() < Duration::from_secs(5),
        "a no-op took {:?}",
        t.elapsed()
    );
    ensure!(
        fs::metadata(&index)?.modified()? == before,
        "dist was rewritten"
    );
    let css = ui.join("src/style.css");
    let mut s = fs::read_to_string(&css)?;
    s.push_str("\n.changed-by-the-test { color: red; }\n");
    fs::write(&css, s)?;
    let third = run_ok(Command::new(&build).arg(&ui))?;
    ensure!(third.contains("building"), "after a change:\n{third}");
    Ok(())
}
