//! The NFSv3 frontend driven by real userspace clients — libnfs's `nfs-cp`/`nfs-ls`/`nfs-cat`,
//! the `nfs-rs` Python client, and a hand-built RPC client for MKNOD, COMMIT and hostile
//! input — against a real `gatewayd up`, checked against the same volume's FUSE mount.

use anyhow::{Context, Result, bail, ensure};
use e2e::*;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A script of `tests/nfs/` with the gateway's NFS port in its environment.
fn script(gw: &Gateway, name: &str, args: &[&str]) -> Result<Command> {
    let mut c = Command::new("python3");
    c.arg(workspace_root().join("tests/nfs").join(name))
        .args(args)
        .env("NFS_PORT", gw.nfs_port()?.to_string())
        .env("PYTHONPATH", workspace_root().join("tests/nfs"));
    Ok(c)
}

/// Python code run with `tests/nfs/` on its path and the NFS port in its environment.
fn inline(gw: &Gateway, code: &str) -> Result<String> {
    run_ok(
        Command::new("python3")
            .args(["-c", code])
            .env("NFS_PORT", gw.nfs_port()?.to_string())
            .env("PYTHONPATH", workspace_root().join("tests/nfs")),
    )
}

/// Runs a script and insists on its closing line.
fn script_ok(gw: &Gateway, name: &str, args: &[&str], done: &str) -> Result<String> {
    let out = run(&mut script(gw, name, args)?)?;
    let text = output_text(&out);
    ensure!(
        out.status.success() && text.contains(done),
        "{name} {args:?} failed:\n{text}\n{}",
        gw.logs()
    );
    Ok(text)
}

fn nfs_cp(from: &str, to: &str) -> Result<()> {
    run_ok(Command::new("nfs-cp").args([from, to]))
        .with_context(|| format!("nfs-cp {from} {to}"))?;
    Ok(())
}

fn diff_r(a: &Path, b: &Path) -> Result<()> {
    let out = run(Command::new("diff")
        .arg("-r")
        .arg("--no-dereference")
        .arg(a)
        .arg(b))?;
    ensure!(
        out.status.success(),
        "{} and {} differ:\n{}",
        a.display(),
        b.display(),
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(())
}

/// A small tree with nested directories, an empty file, a 3 MiB file, odd names and a symlink.
fn make_tree(root: &Path) -> Result<()> {
    fs::create_dir_all(root.join("a/b/c"))?;
    fs::create_dir_all(root.join("empty dir"))?;
    fs::write(root.join("a/hello.txt"), b"hello over nfs\n")?;
    fs::write(root.join("a/b/c/empty"), b"")?;
    random_file(&root.join("a/b/three-mib.bin"), 3 << 20, 7)?;
    fs::write(root.join("spaces and ünïcode.txt"), "names survive\n")?;
    std::os::unix::fs::symlink("a/hello.txt", root.join("link"))?;
    fs::set_permissions(root.join("a/hello.txt"), fs::Permissions::from_mode(0o640))?;
    Ok(())
}

#[test]
fn libnfs_and_nfs_rs_copy_trees_in_and_out_and_fuse_sees_the_same() -> Result<()> {
    need("nfs-cp");
    need("python3");
    let gw = Gateway::up()?;
    let work = temp_dir("nfs-tree");
    let src = work.path().join("src");
    make_tree(&src)?;

    // libnfs: single files in and out, listed and read back.
    nfs_cp(
        src.join("a/b/three-mib.bin").to_str().unwrap(),
        &gw.nfs_url("/copied.bin")?,
    )?;
    ensure!(
        sha256_file(&gw.mnt().join("copied.bin"))? == sha256_file(&src.join("a/b/three-mib.bin"))?,
        "a file nfs-cp wrote differs through FUSE"
    );
    let back = work.path().join("back.bin");
    nfs_cp(&gw.nfs_url("/copied.bin")?, back.to_str().unwrap())?;
    ensure!(
        sha256_file(&back)? == sha256_file(&src.join("a/b/three-mib.bin"))?,
        "nfs-cp out differs"
    );
    fs::write(gw.mnt().join("from-fuse.txt"), b"written through FUSE\n")?;
    let cat = run_ok(Command::new("nfs-cat").arg(gw.nfs_url("/from-fuse.txt")?))?;
    ensure!(cat == "written through FUSE\n", "nfs-cat read {cat:?}");
    fs::create_dir_all(gw.mnt().join("d1/d2"))?;
    let cat = run_ok(Command::new("nfs-cat").arg(gw.nfs_url("/d1/d2/../../from-fuse.txt")?))?;
    ensure!(
        cat == "written through FUSE\n",
        "nfs-cat through .. read {cat:?}"
    );
    let ls = run_ok(Command::new("nfs-ls").arg(gw.nfs_url("/")?))?;
    for name in ["copied.bin", "from-fuse.txt"] {
        ensure!(ls.contains(name), "nfs-ls does not list {name}:\n{ls}");
    }

    // nfs-rs: a whole tree in, compared through FUSE, and out again.
    script_ok(
        &gw,
        "tree.py",
        &["in", src.to_str().unwrap(), "/tree"],
        "copied in",
    )?;
    diff_r(&src, &gw.mnt().join("tree"))?;
    let out = work.path().join("out");
    script_ok(
        &gw,
        "tree.py",
        &["out", "/tree", out.to_str().unwrap()],
        "copied out",
    )?;
    diff_r(&src, &out)?;
    let mode = fs::metadata(gw.mnt().join("tree/a/hello.txt"))?.mode() & 0o7777;
    ensure!(
        mode == 0o640,
        "mode set over NFS reads {mode:o} through FUSE"
    );

    // A FUSE-made tree read over NFS.
    let fuse_tree = gw.mnt().join("fuse-tree");
    make_tree(&fuse_tree)?;
    let out2 = work.path().join("out2");
    script_ok(
        &gw,
        "tree.py",
        &["out", "/fuse-tree", out2.to_str().unwrap()],
        "copied out",
    )?;
    diff_r(&src, &out2)?;
    let ls = run_ok(Command::new("nfs-ls").arg("-R").arg(gw.nfs_url("/tree")?))?;
    ensure!(
        ls.contains("three-mib.bin") && ls.contains("ünïcode"),
        "nfs-ls -R misses entries:\n{ls}"
    );
    Ok(())
}

#[test]
fn attributes_agree_between_nfs_and_fuse() -> Result<()> {
    need("python3");
    let gw = Gateway::up()?;
    fs::write(gw.mnt().join("f.txt"), b"0123456789")?;
    fs::set_permissions(gw.mnt().join("f.txt"), fs::Permissions::from_mode(0o604))?;
    let code = r#"
from common import connect
c = connect()
i = c.stat("/f.txt")
print("stat", i.size, oct(i.mode & 0o7777), i.uid, i.gid, i.nlink, i.mtime // 10**9, i.fileid)
with c.open("/n.txt", "wb") as f:
    f.write(b"abc" * 1000)
c.chmod("/n.txt", 0o640)
c.utime("/n.txt", ns=(1_600_000_000 * 10**9, 1_500_000_000 * 10**9))
print("done")
"#;
    let out = inline(&gw, code)?;
    let md = fs::metadata(gw.mnt().join("f.txt"))?;
    let line = out
        .lines()
        .find(|l| l.starts_with("stat "))
        .context("no stat line")?;
    let f: Vec<&str> = line.split_whitespace().collect();
    ensure!(
        f[1] == md.len().to_string(),
        "size: nfs {} fuse {}",
        f[1],
        md.len()
    );
    ensure!(f[2] == "0o604", "mode over NFS {}", f[2]);
    ensure!(
        f[3] == md.uid().to_string() && f[4] == md.gid().to_string(),
        "owner {line}"
    );
    ensure!(
        f[6] == md.mtime().to_string(),
        "mtime: nfs {} fuse {}",
        f[6],
        md.mtime()
    );
    // fileid = low 64 bits of the gfid = FUSE's inode number.
    ensure!(
        f[7] == md.ino().to_string(),
        "fileid {} vs FUSE ino {}",
        f[7],
        md.ino()
    );
    let n = fs::metadata(gw.mnt().join("n.txt"))?;
    ensure!(n.len() == 3000, "size through FUSE {}", n.len());
    ensure!(
        n.mode() & 0o7777 == 0o640,
        "mode through FUSE {:o}",
        n.mode()
    );
    ensure!(
        n.mtime() == 1_500_000_000 && n.atime() == 1_600_000_000,
        "times set over NFS read {} / {} through FUSE",
        n.mtime(),
        n.atime()
    );
    Ok(())
}

#[test]
fn two_gib_file_over_nfs_keeps_its_checksum() -> Result<()> {
    need("nfs-cp");
    let mib: usize = std::env::var("E2E_NFS_BIG_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    let gw = Gateway::up()?;
    let work = temp_dir("nfs-big");
    let src = work.path().join("big.bin");
    random_file(&src, mib << 20, 42)?;
    let want = sha256_file(&src)?;
    nfs_cp(src.to_str().unwrap(), &gw.nfs_url("/big.bin")?)?;
    fs::remove_file(&src)?;
    ensure!(
        sha256_file(&gw.mnt().join("big.bin"))? == want,
        "the {mib} MiB file differs through FUSE"
    );
    let back = work.path().join("back.bin");
    nfs_cp(&gw.nfs_url("/big.bin")?, back.to_str().unwrap())?;
    ensure!(
        sha256_file(&back)? == want,
        "the {mib} MiB file read back over NFS differs"
    );
    Ok(())
}

#[test]
fn several_clients_at_once() -> Result<()> {
    need("nfs-cp");
    need("python3");
    let gw = Gateway::up()?;
    let work = temp_dir("nfs-many");
    let mut children = Vec::new();
    for i in 0..4u64 {
        let p = work.path().join(format!("f{i}.bin"));
        random_file(&p, (8 << 20) + i as usize * 4099, i)?;
        children.push((
            format!("nfs-cp f{i}"),
            Command::new("nfs-cp")
                .arg(&p)
                .arg(gw.nfs_url(&format!("/many-{i}.bin"))?)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()?,
        ));
    }
    for i in 0..2 {
        let src = work.path().join(format!("tree{i}"));
        make_tree(&src)?;
        children.push((
            format!("tree.py {i}"),
            script(
                &gw,
                "tree.py",
                &["in", src.to_str().unwrap(), &format!("/trees/t{i}")],
            )?
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?,
        ));
    }
    for (what, c) in children {
        let out = c.wait_with_output()?;
        ensure!(
            out.status.success(),
            "{what} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            gw.logs()
        );
    }
    for i in 0..4 {
        ensure!(
            sha256_file(&work.path().join(format!("f{i}.bin")))?
                == sha256_file(&gw.mnt().join(format!("many-{i}.bin")))?,
            "file {i} written alongside others differs"
        );
    }
    for i in 0..2 {
        diff_r(
            &work.path().join(format!("tree{i}")),
            &gw.mnt().join(format!("trees/t{i}")),
        )?;
    }
    Ok(())
}

#[test]
fn files_carry_the_callers_identity_and_permissions_hold() -> Result<()> {
    need("python3");
    let gw = Gateway::up()?;
    script_ok(&gw, "identity.py", &[], "all identity checks passed")?;
    let md = fs::metadata(gw.mnt().join("shared/bob.txt"))?;
    ensure!(
        (md.uid(), md.gid()) == (1000, 1000),
        "ownership through FUSE: {}:{}",
        md.uid(),
        md.gid()
    );
    let md = fs::metadata(gw.mnt().join("shared/alicedir"))?;
    ensure!(
        (md.uid(), md.gid()) == (1000, 1000),
        "a directory made by uid 1000 is owned {}:{}",
        md.uid(),
        md.gid()
    );
    ensure!(
        fs::read(gw.mnt().join("rootfile"))? == b"root's",
        "root's file changed"
    );
    Ok(())
}

#[test]
fn mknod_unstable_writes_commit_and_create_modes() -> Result<()> {
    need("python3");
    let gw = Gateway::up()?;
    script_ok(&gw, "raw.py", &["ops"], "all raw checks passed")?;
    let fifo = fs::symlink_metadata(gw.mnt().join("fifo1"))?;
    ensure!(
        fifo.file_type().is_fifo(),
        "MKNOD FIFO is {:?} through FUSE",
        fifo.file_type()
    );
    let dev = fs::symlink_metadata(gw.mnt().join("null1"))?;
    ensure!(
        dev.file_type().is_char_device() && dev.rdev() == libc::makedev(1, 3),
        "MKNOD character device reads {:?} rdev {:x}",
        dev.file_type(),
        dev.rdev()
    );
    let data = fs::read(gw.mnt().join("unstable.bin"))?;
    ensure!(
        data.len() == 100_005
            && data.ends_with(b"hello")
            && data[..100_000].iter().all(|b| *b == b'x'),
        "UNSTABLE then FILE_SYNC writes read back wrong ({} bytes)",
        data.len()
    );
    Ok(())
}

#[test]
fn handles_survive_kill_9_and_restart_and_nothing_is_lost() -> Result<()> {
    need("python3");
    let port = free_port();
    let mut gw = Gateway::start(GatewayOpts {
        extra: vec!["--nfs".into(), format!("127.0.0.1:{port}")],
        ..Default::default()
    })?;
    let verf_before = verifier(&gw)?;
    let state = script_ok(&gw, "raw.py", &["unstable-before"], "state ")?;
    let state: Vec<String> = state
        .lines()
        .find(|l| l.starts_with("state "))
        .context("no state line")?
        .split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect();
    let mut child = script(&gw, "hold.py", &[])?
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
    let mut line = String::new();
    let (holding, _) = timed(Duration::from_secs(60), move || {
        let mut seen = String::new();
        while stdout.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            seen.push_str(&line);
            if line.trim() == "holding" {
                return (true, seen, stdout);
            }
            line.clear();
        }
        (false, seen, stdout)
    });
    let Some((true, seen, stdout)) = holding else {
        let _ = child.kill();
        let _ = child.wait();
        bail!("hold.py never held its files\n{}", gw.logs());
    };
    gw.kill9();
    gw.start_again()?;
    ensure!(gw.nfs_port()? == port, "gatewayd came back on another port");
    child.stdin.as_mut().context("stdin")?.write_all(b"go\n")?;
    let out = child.wait_with_output()?;
    let mut rest = String::new();
    let mut stdout = stdout;
    let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
    let text = format!("{seen}{rest}{}", String::from_utf8_lossy(&out.stderr));
    ensure!(
        out.status.success() && text.contains("all hold checks passed"),
        "handles across the restart failed:\n{text}\n{}",
        gw.logs()
    );
    ensure!(!text.contains("STALE"), "a handle went stale:\n{text}");
    let verf_after = verifier(&gw)?;
    ensure!(
        verf_before != verf_after,
        "the write verifier did not change across the restart ({verf_before})"
    );
    // Data written UNSTABLE and never committed before the kill: the new verifier tells the
    // client to send it again, and it is on the bricks regardless.
    script_ok(
        &gw,
        "raw.py",
        &["commit-after", &state[0], &state[1]],
        "all commit checks passed",
    )?;
    let data = fs::read(gw.mnt().join("uncommitted.bin"))?;
    ensure!(
        data == b"not yet committed ".repeat(1000),
        "uncommitted UNSTABLE data read {} bytes through FUSE after the restart",
        data.len()
    );
    Ok(())
}

/// The write verifier the running gatewayd hands out (from `raw.py ops`'s COMMIT).
fn verifier(gw: &Gateway) -> Result<String> {
    let code = r#"
import raw
c = raw.Conn()
root = raw.mount_root(c)
import struct, os
name = ("v" + os.urandom(4).hex()).encode()
_, a, body = c.call(raw.NFS, 3, 8, raw.opaque(root) + raw.opaque(name) + struct.pack(">I", 0) + raw.SATTR_MODE_644)
fh = raw.fh_after_status(body)
_, a, body = c.call(raw.NFS, 3, 21, raw.opaque(fh) + struct.pack(">QI", 0, 0))
print(body[-8:].hex())
"#;
    let out = inline(gw, code)?;
    Ok(out.trim().to_string())
}

#[test]
fn hostile_input_gets_errors_never_a_crash() -> Result<()> {
    need("python3");
    need("nfs-ls");
    let gw = Gateway::up()?;
    script_ok(&gw, "raw.py", &["hostile"], "all hostile checks passed")?;
    let pid = gw.pid().context("gatewayd pid")?;
    ensure!(pid_alive(pid), "gatewayd died:\n{}", gw.logs());
    fs::write(gw.mnt().join("still.txt"), b"here")?;
    let ls = run_ok(Command::new("nfs-ls").arg(gw.nfs_url("/")?))?;
    ensure!(
        ls.contains("still.txt"),
        "nfs-ls after hostile input:\n{ls}"
    );
    Ok(())
}

#[test]
fn exports_squash_root_refuse_changes_and_outside_networks() -> Result<()> {
    need("python3");
    let gw = Gateway::up()?;
    let list = gw.gwctl_ok(&["nfs", "export", "list", "--json"])?;
    let v: serde_json::Value = serde_json::from_str(&list)?;
    ensure!(
        v.as_array().is_some_and(|a| a
            .iter()
            .any(|e| e["path"] == "/vol" && e["default"] == true)),
        "the volume is not exported by default: {list}"
    );
    for d in ["proj", "ro", "locked"] {
        fs::create_dir(gw.mnt().join(d))?;
        fs::set_permissions(gw.mnt().join(d), fs::Permissions::from_mode(0o777))?;
    }
    fs::write(gw.mnt().join("ro/kept.txt"), b"read me")?;
    gw.gwctl_ok(&["nfs", "export", "add", "/vol/proj", "--root-squash"])?;
    gw.gwctl_ok(&["nfs", "export", "add", "/vol/ro", "--ro"])?;
    gw.gwctl_ok(&[
        "nfs",
        "export",
        "add",
        "/vol/locked",
        "--network",
        "127.0.0.0/8",
    ])?;

    script_ok(&gw, "exports.py", &["squash"], "squash checks passed")?;
    let md = fs::metadata(gw.mnt().join("proj/squashed.txt"))?;
    ensure!(
        (md.uid(), md.gid()) == (65534, 65534),
        "a squashed root's file is owned {}:{} through FUSE",
        md.uid(),
        md.gid()
    );
    script_ok(&gw, "exports.py", &["ro"], "ro checks passed")?;
    ensure!(
        !gw.mnt().join("ro/new.txt").exists() && gw.mnt().join("ro/kept.txt").exists(),
        "a read-only export changed"
    );
    ensure!(
        fs::metadata(gw.mnt().join("ro/kept.txt"))?.mode() & 0o777 == 0o644,
        "chmod went through a read-only export"
    );

    // A handle given while the client was allowed stops working once its network is not.
    let handle = run_ok(&mut script(&gw, "exports.py", &["handle", "/vol/locked"])?)?;
    let st = run_ok(&mut script(&gw, "exports.py", &["getattr", handle.trim()])?)?;
    ensure!(st.trim() == "status 0", "GETATTR while allowed: {st}");
    gw.gwctl_ok(&[
        "nfs",
        "export",
        "add",
        "/vol/locked",
        "--network",
        "10.99.0.0/16",
    ])?;
    script_ok(
        &gw,
        "exports.py",
        &["refused", "/vol/locked"],
        "refused checks passed",
    )?;
    let st = run_ok(&mut script(&gw, "exports.py", &["getattr", handle.trim()])?)?;
    ensure!(
        st.trim() == "status 13",
        "GETATTR from outside the export's networks: {st}"
    );
    // Removing an export makes its handles stale.
    gw.gwctl_ok(&["nfs", "export", "remove", "/vol/locked"])?;
    let st = run_ok(&mut script(&gw, "exports.py", &["getattr", handle.trim()])?)?;
    ensure!(
        st.trim() == "status 70",
        "GETATTR after the export went: {st}"
    );

    // Bad requests change nothing.
    let out = gw.gwctl(&["nfs", "export", "add", "/nosuchvol"])?;
    ensure!(!out.status.success(), "an export of no volume was accepted");
    let out = gw.gwctl(&["nfs", "export", "add", "/vol/x", "--network", "nope"])?;
    ensure!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("network"),
        "a bad network was accepted: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = gw.gwctl_ok(&["nfs", "export", "list"])?;
    ensure!(
        list.contains("/vol/proj") && list.contains("root") && !list.contains("/vol/x"),
        "export list:\n{list}"
    );
    Ok(())
}

/// A private rpcbind, stopped on drop; None when one already runs (it is used as it is).
struct Rpcbind(Option<std::process::Child>);

impl Rpcbind {
    fn ensure() -> Result<Rpcbind> {
        if std::net::TcpStream::connect("127.0.0.1:111").is_ok() {
            return Ok(Rpcbind(None));
        }
        let child = Command::new("rpcbind")
            .args(["-f", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting rpcbind")?;
        let rb = Rpcbind(Some(child));
        wait_for(Duration::from_secs(10), "rpcbind on port 111", || {
            std::net::TcpStream::connect("127.0.0.1:111")
                .ok()
                .map(|_| ())
        })?;
        Ok(rb)
    }
}

impl Drop for Rpcbind {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn registered_with_rpcbind_so_clients_find_the_ports() -> Result<()> {
    need("rpcbind");
    need("rpcinfo");
    need("nfs-ls");
    let _rb = Rpcbind::ensure()?;
    let mut gw = Gateway::start(GatewayOpts {
        extra: vec!["--rpcbind".into(), "on".into()],
        ..Default::default()
    })?;
    let port = gw.nfs_port()?;
    let map = run_ok(Command::new("rpcinfo").args(["-p", "127.0.0.1"]))?;
    for prog in ["100003", "100005"] {
        ensure!(
            map.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() >= 4
                    && f[0] == prog
                    && f[1] == "3"
                    && f[2] == "tcp"
                    && f[3] == port.to_string()
            }),
            "rpcinfo does not map {prog} v3 to port {port}:\n{map}"
        );
    }
    fs::write(gw.mnt().join("found.txt"), b"by way of rpcbind")?;
    // No nfsport/mountport: libnfs asks the portmapper.
    let ls = run_ok(Command::new("nfs-ls").arg("nfs://127.0.0.1/vol/?version=3"))?;
    ensure!(ls.contains("found.txt"), "nfs-ls through rpcbind:\n{ls}");
    gw.terminate();
    let map = run_ok(Command::new("rpcinfo").args(["-p", "127.0.0.1"]))?;
    ensure!(
        !map.lines()
            .any(|l| l.split_whitespace().next() == Some("100003")),
        "NFS is still registered after gatewayd stopped:\n{map}"
    );
    Ok(())
}

/// A 3,000-entry directory: listed whole with READDIRPLUS (nfs-ls and nfs-rs agree with FUSE),
/// then emptied the way `rm -rf` does it, page by page with removals between pages: no entry
/// skipped or repeated.
#[test]
fn large_directory_listed_and_emptied_page_by_page() -> Result<()> {
    need("python3");
    need("nfs-ls");
    let gw = Gateway::up()?;
    let dir = gw.mnt().join("big");
    fs::create_dir(&dir)?;
    for i in 0..3000 {
        fs::write(dir.join(format!("entry-{i:04}")), b"")?;
    }
    let ls = run_ok(Command::new("nfs-ls").arg(gw.nfs_url("/big")?))?;
    let listed = ls.lines().filter(|l| l.contains("entry-")).count();
    ensure!(listed == 3000, "nfs-ls listed {listed} of 3000");
    let code = r#"
import nfs_rs
from common import connect
c = connect()
print("scandir", sum(1 for _ in c.scandir("/big")))
seen, pos, pages = set(), None, 0
while True:
    page = c.scandir_page("/big", pos) if pos else c.scandir_page("/big")
    pages += 1
    for e in page.entries:
        assert e.name not in seen, f"{e.name} listed twice"
        seen.add(e.name)
        c.remove(f"/big/{e.name}")
    if page.eof:
        break
    pos = page.next
print("removed", len(seen), "in", pages, "pages")
"#;
    let out = inline(&gw, code)?;
    ensure!(out.contains("scandir 3000"), "nfs-rs listing: {out}");
    ensure!(
        out.contains("removed 3000 in"),
        "page-by-page removal: {out}"
    );
    let left = fs::read_dir(&dir)?.count();
    ensure!(left == 0, "{left} entries left after the removal");
    Ok(())
}
