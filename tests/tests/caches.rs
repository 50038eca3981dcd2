//! Metadata caches and their coherence across clients: `performance/md-cache` in every client
//! graph answers stat and lookup from memory, and the bricks' `features/upcall` tells each
//! client what another one changed, so two mounts of one volume (gatewayd's own FUSE mount
//! and a native `gatewayd mount`, a process with its own graph) see each other's changes
//! within a second, however long md-cache keeps what it knows. With
//! `features.cache-invalidation off` the same cache is visibly stale: the upcalls are what
//! keep it right.

use anyhow::{Context, Result, bail, ensure};
use e2e::*;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// How soon the other mount must see a change.
const SEEN_WITHIN: Duration = Duration::from_secs(1);

/// Longer than the kernel's attribute and entry timeouts (1 s): what either mount then says
/// comes from gatewayd, not from its kernel.
const PAST_KERNEL_CACHE: Duration = Duration::from_millis(2500);

/// stat that the kernel must send to the file system (FUSE honours AT_STATX_FORCE_SYNC):
/// the answer is md-cache's, or the bricks'.
fn statx_sync(p: &Path) -> std::io::Result<(u32, u64, u32)> {
    let c = CString::new(p.as_os_str().as_bytes()).expect("no NUL in a test path");
    // SAFETY: zeroed statx is a valid out buffer; the path is NUL-terminated.
    let mut sx: libc::statx = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW | libc::AT_STATX_FORCE_SYNC,
            libc::STATX_BASIC_STATS,
            &mut sx,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((u32::from(sx.stx_mode), sx.stx_size, sx.stx_nlink))
}

/// Polls `f` until it holds, for at most `SEEN_WITHIN`; says what was last seen if not.
fn seen_within(what: &str, mut f: impl FnMut() -> std::result::Result<(), String>) -> Result<()> {
    let start = Instant::now();
    loop {
        match f() {
            Ok(()) => return Ok(()),
            Err(last) if start.elapsed() > SEEN_WITHIN => {
                bail!("{what}: not seen within {SEEN_WITHIN:?} (last: {last})")
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn mode_of(p: &Path) -> std::result::Result<u32, String> {
    fs::metadata(p)
        .map(|m| m.permissions().mode() & 0o7777)
        .map_err(|e| e.to_string())
}

/// The volume's client volfile, as the API serves it.
fn volfile(gw: &Gateway) -> Result<String> {
    run_ok(Command::new("curl").args([
        "-sf",
        "-H",
        &format!("Authorization: Bearer {}", gw.token),
        &format!("{}/api/v1/volumes/vol/volfile", gw.api_url),
    ]))
}

/// Sets `options` (key, value) on `vol`, then stops and starts it (cache options apply at the
/// next start) and waits until gatewayd's mount takes writes again.
fn set_and_restart(gw: &Gateway, options: &[(&str, &str)]) -> Result<()> {
    for (k, v) in options {
        gw.gwctl_ok(&["volume", "set", "vol", k, v])?;
    }
    gw.gwctl_ok(&["volume", "stop", "vol"])?;
    gw.gwctl_ok(&["volume", "start", "vol"])?;
    let m = gw.mnt().to_path_buf();
    wait_for(
        Duration::from_secs(30),
        "the mount after the restart",
        || fs::write(m.join("probe"), b"x").ok(),
    )?;
    Ok(())
}

#[test]
fn a_change_on_one_mount_is_seen_on_the_other_within_a_second() -> Result<()> {
    let gw = Gateway::up()?;
    let a = gw.mnt().to_path_buf();
    let native = NativeMount::start(&gw, "vol", &gw.root().join("native"))?;
    let b = native.dir.clone();
    ensure!(
        volfile(&gw)?.contains("type performance/md-cache"),
        "the client graph has md-cache by default"
    );

    fs::create_dir(a.join("d"))?;
    fs::write(a.join("d/f"), b"one")?;
    seen_within("a new directory and file", || {
        fs::read(b.join("d/f"))
            .map_err(|e| e.to_string())
            .and_then(|d| (d == b"one").then_some(()).ok_or(format!("{d:?}")))
    })?;

    // Both mounts cache the file now; then each kind of change is made on one of them.
    let f = b.join("d/f");
    statx_sync(&f)?;
    fs::write(a.join("d/f"), b"two, longer")?;
    seen_within("new content", || {
        let d = fs::read(&f).map_err(|e| e.to_string())?;
        (d == b"two, longer")
            .then_some(())
            .ok_or(format!("{:?}", String::from_utf8_lossy(&d)))
    })?;

    statx_sync(&f)?;
    fs::set_permissions(a.join("d/f"), fs::Permissions::from_mode(0o600))?;
    seen_within("chmod", || {
        let m = mode_of(&f)?;
        (m == 0o600).then_some(()).ok_or(format!("mode {m:o}"))
    })?;

    fs::OpenOptions::new()
        .write(true)
        .open(a.join("d/f"))?
        .set_len(2)?;
    seen_within("truncate", || {
        let (_, size, _) = statx_sync(&f).map_err(|e| e.to_string())?;
        (size == 2).then_some(()).ok_or(format!("size {size}"))
    })?;
    ensure!(fs::read(&f)? == b"tw", "the truncated content");

    // A name the other mount looked up and found missing, then made here.
    ensure!(fs::metadata(b.join("d/new")).is_err(), "not there yet");
    fs::write(a.join("d/new"), b"n")?;
    seen_within("create", || {
        fs::metadata(b.join("d/new"))
            .map(|_| ())
            .map_err(|e| e.to_string())
    })?;

    fs::remove_file(a.join("d/new"))?;
    seen_within("unlink", || match fs::metadata(b.join("d/new")) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => Err(format!("{r:?}")),
    })?;

    // A hard link made elsewhere moves nlink here.
    statx_sync(&f)?;
    fs::hard_link(a.join("d/f"), a.join("d/f2"))?;
    seen_within("link count", || {
        let (_, _, n) = statx_sync(&f).map_err(|e| e.to_string())?;
        (n == 2).then_some(()).ok_or(format!("nlink {n}"))
    })?;
    fs::remove_file(a.join("d/f2"))?;

    fs::rename(a.join("d/f"), a.join("d/g"))?;
    seen_within("rename", || {
        match (fs::metadata(b.join("d/f")), fs::read(b.join("d/g"))) {
            (Err(_), Ok(d)) if d == b"tw" => Ok(()),
            (old, new) => Err(format!("old {:?}, new {:?}", old.is_ok(), new)),
        }
    })?;

    // And the other way round: the native mount changes, gatewayd's mount sees it.
    let g = a.join("d/g");
    statx_sync(&g)?;
    fs::set_permissions(b.join("d/g"), fs::Permissions::from_mode(0o640))?;
    seen_within("chmod from the native mount", || {
        let m = mode_of(&g)?;
        (m == 0o640).then_some(()).ok_or(format!("mode {m:o}"))
    })?;
    fs::write(b.join("d/g"), b"from b")?;
    seen_within("a write from the native mount", || {
        let d = fs::read(&g).map_err(|e| e.to_string())?;
        (d == b"from b")
            .then_some(())
            .ok_or(format!("{:?}", String::from_utf8_lossy(&d)))
    })?;

    // In a directory made on gatewayd's mount, its md-cache knows every name and answers a
    // name it does not know as absent; a name the native mount makes there must still be
    // found, by lookup and in a listing long enough to take many FUSE pages (readdir-ahead
    // answers those from its batches).
    fs::create_dir(a.join("e"))?;
    ensure!(fs::metadata(a.join("e/theirs")).is_err(), "not there yet");
    fs::write(b.join("e/theirs"), b"t")?;
    seen_within(
        "a name made by the native mount in a directory made here",
        || {
            fs::read(a.join("e/theirs"))
                .map_err(|e| e.to_string())
                .and_then(|d| (d == b"t").then_some(()).ok_or(format!("{d:?}")))
        },
    )?;
    for i in 0..300 {
        fs::write(b.join(format!("e/many-{i:03}")), b"")?;
    }
    seen_within(
        "300 names from the native mount, each once in a listing here",
        || {
            let mut names: Vec<String> = fs::read_dir(a.join("e"))
                .map_err(|e| e.to_string())?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            let mut want: Vec<String> = (0..300).map(|i| format!("many-{i:03}")).collect();
            want.push("theirs".into());
            (names == want)
                .then_some(())
                .ok_or(format!("{} names listed", names.len()))
        },
    )?;
    Ok(())
}

#[test]
fn a_stat_of_an_unchanged_file_is_answered_without_the_bricks() -> Result<()> {
    let gw = Gateway::up()?;
    let f = gw.mnt().join("still");
    fs::write(&f, b"unchanged")?;
    statx_sync(&f)?;
    // Let the write's own traffic (heal of nothing, post-ops) settle.
    thread::sleep(Duration::from_millis(500));
    let before = gw.metrics()?;
    const STATS: usize = 500;
    for _ in 0..STATS {
        let (_, size, _) = statx_sync(&f)?;
        ensure!(size == 9, "size {size}");
    }
    let after = gw.metrics()?;
    let bricks = |t: &str| metric_sum(t, "gateway_brick_request_seconds_count", r#"volume="vol""#);
    let hits = |t: &str| metric_sum(t, "gateway_md_cache_total", r#"event="hit""#);
    let sent = bricks(&after) - bricks(&before);
    ensure!(
        hits(&after) - hits(&before) >= STATS as f64,
        "md-cache answered {} of {STATS} stats",
        hits(&after) - hits(&before)
    );
    // Background work (the heal daemon's crawl) may send a few; a stat each would be 500.
    ensure!(
        sent < (STATS / 10) as f64,
        "{sent} brick requests for {STATS} stats of an unchanged file"
    );
    Ok(())
}

/// After a create or a delete through this mount, the kernel asks for the directory's
/// attributes again; the bricks answered the change with them (the parent's post-op
/// attributes), so md-cache answers from memory, and what it answers is what a mount that
/// caches nothing of it reads.
#[test]
fn a_directory_is_known_after_each_change_in_it_and_right() -> Result<()> {
    let gw = Gateway::up()?;
    let a = gw.mnt().to_path_buf();
    let native = NativeMount::start(&gw, "vol", &gw.root().join("native"))?;
    let dir = a.join("p");
    fs::create_dir(&dir)?;
    fs::write(dir.join("first"), b"")?;
    statx_sync(&dir)?;
    thread::sleep(Duration::from_millis(500));
    let before = gw.metrics()?;
    const CHANGES: usize = 100;
    for i in 0..CHANGES {
        let f = dir.join(format!("f{i}"));
        if i % 2 == 0 {
            fs::write(&f, b"x")?;
        } else {
            fs::write(&f, b"x")?;
            fs::remove_file(&f)?;
        }
        statx_sync(&dir)?;
    }
    let after = gw.metrics()?;
    let misses = |t: &str| metric_sum(t, "gateway_md_cache_total", r#"event="miss""#);
    let missed = misses(&after) - misses(&before);
    // Each directory stat asked of the bricks would be a miss: 100 of them.
    ensure!(
        missed < (CHANGES / 4) as f64,
        "{missed} md-cache misses over {CHANGES} changes, each followed by a stat of the directory"
    );
    let here = fs::metadata(&dir)?;
    let there = native.dir.join("p");
    seen_within(
        "the directory's times as the native mount reads them",
        || {
            let m = fs::metadata(&there).map_err(|e| e.to_string())?;
            let (h, t) = (
                (here.mtime(), here.mtime_nsec(), here.nlink()),
                (m.mtime(), m.mtime_nsec(), m.nlink()),
            );
            (h == t)
                .then_some(())
                .ok_or(format!("here {h:?}, native {t:?}"))
        },
    )?;
    Ok(())
}

#[test]
fn without_upcalls_a_long_md_cache_timeout_is_visibly_stale() -> Result<()> {
    let gw = Gateway::up()?;
    // Both apply when the volume next starts (brickd's arguments, the client volfile).
    set_and_restart(
        &gw,
        &[
            ("features.cache-invalidation", "off"),
            ("performance.md-cache-timeout", "600"),
        ],
    )?;
    let a = gw.mnt().to_path_buf();
    fs::write(a.join("s"), b"x")?;
    let native = NativeMount::start(&gw, "vol", &gw.root().join("native"))?;
    let s = native.dir.join("s");
    let (mode, _, _) = statx_sync(&s)?;
    ensure!(mode & 0o7777 == 0o644, "mode {:o}", mode & 0o7777);
    fs::set_permissions(a.join("s"), fs::Permissions::from_mode(0o600))?;
    thread::sleep(PAST_KERNEL_CACHE);
    let (mode, _, _) = statx_sync(&s)?;
    ensure!(
        mode & 0o7777 == 0o644,
        "with features.cache-invalidation off nothing tells the native mount's md-cache of the chmod, so it keeps 0644 for md-cache-timeout; saw {:o} (is md-cache in the graph?)",
        mode & 0o7777
    );

    // And performance.stat-prefetch off takes md-cache out of the graph: correct again.
    set_and_restart(&gw, &[("performance.stat-prefetch", "off")])?;
    let text = volfile(&gw)?;
    ensure!(
        !text.contains("performance/md-cache"),
        "stat-prefetch off leaves md-cache out:\n{text}"
    );
    drop(native);
    let native = NativeMount::start(&gw, "vol", &gw.root().join("native2"))?;
    let s = native.dir.join("s");
    statx_sync(&s).context("stat on the new native mount")?;
    fs::set_permissions(a.join("s"), fs::Permissions::from_mode(0o640))?;
    thread::sleep(PAST_KERNEL_CACHE);
    let (mode, _, _) = statx_sync(&s)?;
    ensure!(mode & 0o7777 == 0o640, "mode {:o}", mode & 0o7777);
    Ok(())
}

/// Opens the file read-only through libc and sets a POSIX record lock on it; the errno if
/// the kernel (and so the bricks) refused.
fn read_lock(f: &fs::File, typ: i32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a zeroed flock is valid; the fd is open for the whole call.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = typ as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &fl) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// quick-read and open-behind on the default volume: small files read again come from
/// memory (no brick round trip for lookup, open, read or release), another mount's overwrite is
/// seen within a second, a file opened for reading here still reads after this mount unlinks
/// it (open-behind opens it for real first), and a record lock on a read-only fd reaches the
/// bricks (the other mount's conflicting lock is refused).
#[test]
fn small_files_come_from_memory_and_lazy_opens_keep_posix_semantics() -> Result<()> {
    use std::io::{Read, Seek};
    let gw = Gateway::up()?;
    let a = gw.mnt().to_path_buf();
    let vf = volfile(&gw)?;
    ensure!(
        vf.contains("type performance/quick-read") && vf.contains("type performance/open-behind"),
        "{vf}"
    );
    let native = NativeMount::start(&gw, "vol", &gw.root().join("native"))?;
    let b = native.dir.clone();
    fs::create_dir(a.join("small"))?;
    const FILES: usize = 50;
    let body = |i: usize, tag: u8| vec![tag.wrapping_add(i as u8); 4096];
    for i in 0..FILES {
        fs::write(a.join(format!("small/f{i}")), body(i, b'a'))?;
    }
    let read_all = |tag: u8| -> Result<()> {
        for i in 0..FILES {
            let got = fs::read(a.join(format!("small/f{i}")))?;
            ensure!(got == body(i, tag), "small/f{i} read back wrong");
        }
        Ok(())
    };
    read_all(b'a')?;
    thread::sleep(Duration::from_millis(500));
    // The kernel forgets its pages and dentries: what answers now is gatewayd's memory.
    fs::write("/proc/sys/vm/drop_caches", "3\n")?;
    let before = gw.metrics()?;
    read_all(b'a')?;
    let after = gw.metrics()?;
    let bricks = |t: &str| metric_sum(t, "gateway_brick_request_seconds_count", r#"volume="vol""#);
    let sent = bricks(&after) - bricks(&before);
    // Each read done by the bricks would be lookup + open + read + release: 200 and more.
    ensure!(
        sent < FILES as f64 / 2.0,
        "{sent} brick requests to read {FILES} small files again"
    );

    // Another client overwrites with the same size: the content kept here goes at its upcall.
    fs::write(b.join("small/f7"), body(7, b'z'))?;
    seen_within("an overwrite by the other mount", || {
        let got = fs::read(a.join("small/f7")).map_err(|e| e.to_string())?;
        (got == body(7, b'z'))
            .then_some(())
            .ok_or_else(|| format!("still the old content ({})", got[0]))
    })?;

    // Open for reading, then unlink through the same mount: the fd goes on reading.
    let p = a.join("small/f3");
    let mut f = fs::File::open(&p)?;
    fs::remove_file(&p)?;
    ensure!(!p.exists(), "the name is gone");
    let mut got = Vec::new();
    f.rewind()?;
    f.read_to_end(&mut got)?;
    ensure!(
        got == body(3, b'a'),
        "an open fd read {} bytes after unlink",
        got.len()
    );
    drop(f);

    // A read lock on a read-only fd is held by the bricks: the other mount's write lock on
    // the same file is refused until it is gone.
    let p = a.join("small/f4");
    let f = fs::File::open(&p)?;
    read_lock(&f, libc::F_RDLCK).context("read lock on a read-only fd")?;
    let other = fs::OpenOptions::new()
        .write(true)
        .open(b.join("small/f4"))?;
    let err = read_lock(&other, libc::F_WRLCK)
        .err()
        .context("the other mount's write lock was granted over a read lock")?;
    ensure!(
        matches!(err.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)),
        "conflicting lock: {err}"
    );
    drop(f);
    seen_within("the lock gone with the fd's close", || {
        read_lock(&other, libc::F_WRLCK).map_err(|e| e.to_string())
    })?;
    Ok(())
}

/// Freezes every brick of the volume (SIGSTOP) until dropped, also when the test fails.
struct Frozen(Vec<i32>);

impl Frozen {
    fn all(gw: &Gateway) -> Result<Frozen> {
        let pids = gw
            .brick_dirs()
            .iter()
            .map(|b| gw.brickd_pid(b).context("a brick without its brickd"))
            .collect::<Result<Vec<_>>>()?;
        for p in &pids {
            signal(*p, libc::SIGSTOP);
        }
        Ok(Frozen(pids))
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for p in &self.0 {
            signal(*p, libc::SIGCONT);
        }
    }
}

/// Runs `f` in a thread; Some(its result) if it finished within `wait`, else None (still
/// waiting, on a frozen brick). The thread is handed back to finish later.
fn finishes_within<T: Send + 'static>(
    wait: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> (Option<T>, Option<thread::JoinHandle<T>>) {
    let h = thread::spawn(f);
    let start = Instant::now();
    while start.elapsed() < wait {
        if h.is_finished() {
            return (Some(h.join().expect("the thread panicked")), None);
        }
        thread::sleep(Duration::from_millis(20));
    }
    (None, Some(h))
}

/// `performance/write-behind` (switched on): a FUSE write is answered before the bricks hold
/// it (here the bricks are frozen and the write still returns), fsync waits until they do, and
/// what was fsynced survives `kill -9` of gatewayd.
#[test]
fn write_behind_answers_writes_at_once_and_fsynced_data_survives_kill_9() -> Result<()> {
    use std::io::Write;
    let mut gw = Gateway::up()?;
    ensure!(
        !volfile(&gw)?.contains("performance/write-behind"),
        "write-behind is opt-in"
    );
    set_and_restart(&gw, &[("performance.write-behind", "on")])?;
    let m = gw.mnt().to_path_buf();
    ensure!(volfile(&gw)?.contains("performance/write-behind"));
    let path = m.join("behind");
    let mut f = fs::File::create(&path)?;
    // A first write and fsync: the lookups and xattrs the kernel asks before a write are
    // known before the bricks freeze.
    f.write_all(b"first ")?;
    f.sync_all()?;
    let frozen = Frozen::all(&gw)?;
    let body: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (done, _) = finishes_within(Duration::from_secs(10), {
        let mut f = f.try_clone()?;
        let body = body.clone();
        move || f.write_all(&body)
    });
    let Some(written) = done else {
        bail!("a write waited for frozen bricks: write-behind should have answered it")
    };
    written?;
    let (synced, waiting) = finishes_within(Duration::from_secs(2), {
        let f = f.try_clone()?;
        move || f.sync_all()
    });
    ensure!(
        synced.is_none(),
        "fsync returned while the bricks were frozen: {synced:?}"
    );
    drop(frozen);
    waiting
        .expect("fsync still waiting")
        .join()
        .map_err(|_| anyhow::anyhow!("fsync thread panicked"))??;
    drop(f);
    gw.kill9();
    gw.start_again()?;
    let mut want = b"first ".to_vec();
    want.extend_from_slice(&body);
    let got = fs::read(&path)?;
    ensure!(
        got == want,
        "after kill -9 the fsynced file has {} bytes, not the {} written",
        got.len(),
        want.len()
    );
    Ok(())
}

/// With `performance.flush-behind off` a close waits until the bricks hold what was written,
/// so every closed file survives `kill -9` of gatewayd right after.
#[test]
fn without_flush_behind_a_close_waits_and_closed_files_survive_kill_9() -> Result<()> {
    use std::io::Write;
    let mut gw = Gateway::up()?;
    set_and_restart(
        &gw,
        &[
            ("performance.write-behind", "on"),
            ("performance.flush-behind", "off"),
        ],
    )?;
    let m = gw.mnt().to_path_buf();
    ensure!(volfile(&gw)?.contains("option flush-behind off"));

    let path = m.join("closing");
    let mut f = fs::File::create(&path)?;
    f.write_all(b"first ")?;
    f.sync_all()?;
    let frozen = Frozen::all(&gw)?;
    // The clone comes back from the thread: closing it there would wait for the bricks.
    let (written, _) = finishes_within(Duration::from_secs(10), {
        let mut f = f.try_clone()?;
        move || (f.write_all(b"then this"), f)
    });
    let Some((written, clone)) = written else {
        bail!("a write waited for frozen bricks: write-behind should have answered it")
    };
    written?;
    let (closed, waiting) = finishes_within(Duration::from_secs(2), move || drop(f));
    ensure!(
        closed.is_none(),
        "close returned while the bricks were frozen"
    );
    drop(frozen);
    waiting
        .expect("close still waiting")
        .join()
        .map_err(|_| anyhow::anyhow!("close thread panicked"))?;
    drop(clone);

    let dir = m.join("many");
    fs::create_dir(&dir)?;
    for i in 0..40 {
        let body = vec![i as u8; 4096 + i * 1000];
        fs::write(dir.join(format!("f{i}")), body)?;
    }
    gw.kill9();
    gw.start_again()?;
    ensure!(fs::read(&path)? == b"first then this");
    for i in 0..40 {
        let got = fs::read(dir.join(format!("f{i}")))?;
        ensure!(
            got == vec![i as u8; 4096 + i * 1000],
            "f{i} was closed before kill -9 but holds {} bytes",
            got.len()
        );
    }
    Ok(())
}

/// `aws` against gatewayd's S3 with a key of its own, one attempt per call, so a reply that
/// came early or an error is seen as it is.
struct Aws {
    url: String,
    access: String,
    secret: String,
    config: std::path::PathBuf,
}

impl Aws {
    fn new(gw: &Gateway) -> Result<Aws> {
        let (access, secret) = gw.s3_key("caches")?;
        let config = gw.root().join("aws-caches.conf");
        fs::write(
            &config,
            "[default]\nmax_attempts = 1\ns3 =\n    signature_version = s3v4\n",
        )?;
        Ok(Aws {
            url: gw.s3_url()?,
            access,
            secret,
            config,
        })
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("aws");
        c.arg("--endpoint-url")
            .arg(&self.url)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &self.access)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", &self.config)
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        c
    }
}

/// The NFS script `tests/nfs/raw.py` with gatewayd's NFS port.
fn nfs_raw(gw: &Gateway, args: &[&str]) -> Result<Command> {
    let mut c = Command::new("python3");
    c.arg(workspace_root().join("tests/nfs/raw.py"))
        .args(args)
        .env("NFS_PORT", gw.nfs_port()?.to_string())
        .env("PYTHONPATH", workspace_root().join("tests/nfs"));
    Ok(c)
}

/// With write-behind switched on, NFS and S3 still answer only once the bricks hold the data
/// (their writes never wait behind): an NFS WRITE FILE_SYNC and an S3 PUT sent while every
/// brick is frozen get no answer until the bricks are back, and what they acknowledged
/// survives `kill -9` of gatewayd right after.
#[test]
fn with_write_behind_on_nfs_stable_writes_and_s3_puts_answer_only_once_stored() -> Result<()> {
    need("aws");
    let mut gw = Gateway::up()?;
    set_and_restart(&gw, &[("performance.write-behind", "on")])?;
    ensure!(volfile(&gw)?.contains("performance/write-behind"));
    let m = gw.mnt().to_path_buf();
    let aws = Aws::new(&gw)?;
    run_ok(&mut aws.cmd(&["s3api", "create-bucket", "--bucket", "stable"]))?;
    let body_path = gw.root().join("object.bin");
    let object: Vec<u8> = (0..300 * 1024u32).map(|i| (i % 241) as u8).collect();
    fs::write(&body_path, &object)?;
    let created = run_ok(&mut nfs_raw(&gw, &["create-file", "stable.nfs"])?)?;
    let fh = created
        .lines()
        .find_map(|l| l.strip_prefix("fh "))
        .context("no handle from CREATE")?
        .trim()
        .to_string();

    let frozen = Frozen::all(&gw)?;
    let mut nfs = nfs_raw(&gw, &["write-file-sync", &fh])?
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let body_arg = body_path.display().to_string();
    let mut s3 = aws
        .cmd(&[
            "s3api",
            "put-object",
            "--bucket",
            "stable",
            "--key",
            "k",
            "--body",
            &body_arg,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    thread::sleep(Duration::from_secs(3));
    let early_nfs = nfs.try_wait()?;
    let early_s3 = s3.try_wait()?;
    drop(frozen);
    let nfs_out = nfs.wait_with_output()?;
    let s3_out = s3.wait_with_output()?;
    ensure!(
        early_nfs.is_none(),
        "the NFS FILE_SYNC write was answered while every brick was frozen: {}",
        output_text(&nfs_out)
    );
    ensure!(
        early_s3.is_none(),
        "the S3 PUT was answered while every brick was frozen: {}",
        output_text(&s3_out)
    );
    ensure!(
        nfs_out.status.success() && output_text(&nfs_out).contains("written"),
        "NFS write: {}",
        output_text(&nfs_out)
    );
    ensure!(s3_out.status.success(), "S3 PUT: {}", output_text(&s3_out));

    gw.kill9();
    gw.start_again()?;
    let want_nfs = b"file sync write ".repeat(4096);
    ensure!(
        fs::read(m.join("stable.nfs"))? == want_nfs,
        "the NFS write acknowledged FILE_SYNC is not all there after kill -9"
    );
    ensure!(
        fs::read(m.join("stable").join("k"))? == object,
        "the S3 object acknowledged is not all there after kill -9"
    );
    Ok(())
}
