//! pjdfstest, the POSIX file-system conformance suite (8,798 assertions in 238 `.t` files), run
//! with `prove` as root inside a directory of the FUSE mount of the default volume, 2 x 2
//! distributed-replicate. Every assertion must pass.
//!
//! The suite is an input (`../shared/suites/pjdfstest.tar.gz`), never part of the repository:
//! `.ci/install-deps` unpacks and builds it into `/opt/pjdfstest` (the `pjdfstest` binary with
//! `tests/` beside it, where the scripts look for it); `PJDFSTEST_DIR` points the test elsewhere.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use e2e::*;

/// What the suite holds: `prove` must report exactly this many files and assertions, so a script
/// that dies early (fewer assertions than its plan) or a missing directory cannot pass unnoticed.
const FILES: usize = 238;
const TESTS: usize = 8798;

/// `prove -j`: the scripts create every name with `namegen` (random names) and the ones that
/// check a directory's times or link count first `cd` into a directory of their own, so they can
/// run side by side in one directory. Most of the suite's time is `sleep 1` before time checks and
/// round trips to the bricks, not CPU: on a 2-core machine prove took 303-336 s serially, 168-184 s
/// with -j2, 111-122 s with -j4 and 118-133 s with -j8, with the same results.
/// `PJDFSTEST_JOBS` overrides it (1 = serial).
const JOBS: usize = 4;

/// Far above a serial run's wall time (about 5 minutes): a hung file-system call must fail the
/// test, not hang CI.
const TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The built suite: PJDFSTEST_DIR, else where `.ci/install-deps` builds it.
fn suite_dir() -> PathBuf {
    let dir = std::env::var_os("PJDFSTEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/pjdfstest"));
    let bin = dir.join("pjdfstest");
    assert!(
        bin.is_file() && dir.join("tests").join("misc.sh").is_file(),
        "pjdfstest is not built in {} (no pjdfstest binary or tests/misc.sh): .ci/install-deps \
         builds it from ../shared/suites/pjdfstest.tar.gz (PJDFSTEST_TARBALL and PJDFSTEST_DIR \
         override the paths)",
        dir.display()
    );
    dir
}

/// A child in a process group of its own; dropping it kills the whole group (prove and the test
/// scripts and `pjdfstest` processes under it).
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            signal(-(self.0.id() as i32), libc::SIGKILL);
            let _ = self.0.wait();
        }
    }
}

/// The parts of prove's output the test judges.
#[derive(Debug, Default)]
struct ProveSummary {
    files: Option<usize>,
    tests: Option<usize>,
    result: Option<String>,
    /// From "Test Summary Report" up to the "Files=" line; empty when every file passed.
    report: String,
}

fn parse_prove(out: &str) -> ProveSummary {
    let mut s = ProveSummary::default();
    let mut in_report = false;
    for line in out.lines() {
        if line.starts_with("Test Summary Report") {
            in_report = true;
        }
        if let Some(rest) = line.strip_prefix("Files=") {
            in_report = false;
            // "Files=238, Tests=8798, 812 wallclock secs ( ... )"
            let mut parts = rest.split(", ");
            s.files = parts.next().and_then(|f| f.trim().parse().ok());
            s.tests = parts
                .next()
                .and_then(|t| t.strip_prefix("Tests="))
                .and_then(|t| t.trim().parse().ok());
        }
        if in_report {
            s.report.push_str(line);
            s.report.push('\n');
        }
        if let Some(r) = line.strip_prefix("Result: ") {
            s.result = Some(r.trim().to_string());
        }
    }
    s
}

#[test]
fn pjdfstest_passes_in_full_on_the_fuse_mount_of_the_default_volume() {
    let suite = suite_dir();
    need("prove");
    // The scripts name their files with `openssl md5` of random bytes; without it every name is
    // the same and most assertions fail for that reason alone.
    need("openssl");
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "pjdfstest needs root (it switches uids and sets owners)"
    );
    let jobs: usize = std::env::var("PJDFSTEST_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(JOBS)
        .max(1);

    let gw = Gateway::start(GatewayOpts {
        replica: 2,
        ..Default::default()
    })
    .unwrap();
    let work = gw.mnt().join("pjdfstest");
    fs::create_dir(&work).unwrap();
    fs::set_permissions(&work, fs::Permissions::from_mode(0o755)).unwrap();

    let log_path = gw.root().join("prove.log");
    let log = File::create(&log_path).unwrap();
    let tests_dir = suite.join("tests");
    let mut cmd = Command::new("prove");
    cmd.arg("-r")
        .arg(format!("-j{jobs}"))
        .arg(&tests_dir)
        .current_dir(&work)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0);
    eprintln!(
        "pjdfstest: prove -r -j{jobs} {} in {} (output in {})",
        tests_dir.display(),
        work.display(),
        log_path.display()
    );
    let start = Instant::now();
    let mut prove = Group(cmd.spawn().expect("spawning prove"));
    let status = loop {
        if let Some(st) = prove.0.try_wait().unwrap() {
            break Some(st);
        }
        if start.elapsed() > TIMEOUT {
            break None;
        }
        thread::sleep(Duration::from_millis(500));
    };
    let wall = start.elapsed();
    drop(prove); // kills the group if it is still running
    let out = fs::read_to_string(&log_path).unwrap_or_default();
    let Some(status) = status else {
        panic!(
            "prove did not finish within {TIMEOUT:?}; the end of its output:\n{}\n{}",
            tail(&log_path, 60),
            gw.logs()
        );
    };

    let s = parse_prove(&out);
    eprintln!(
        "pjdfstest: prove exited with {status} after {:.0?}: Files={:?} Tests={:?} Result: {:?}",
        wall, s.files, s.tests, s.result
    );
    let failed = s.files != Some(FILES)
        || s.tests != Some(TESTS)
        || s.result.as_deref() != Some("PASS")
        || !status.success();
    if failed {
        let report = if s.report.is_empty() {
            tail(&log_path, 60)
        } else {
            s.report
                .replace(&format!("{}/", tests_dir.display()), "")
                .trim_end()
                .to_string()
        };
        panic!(
            "pjdfstest on the FUSE mount of the 2 x 2 volume: expected Files={FILES}, \
             Tests={TESTS}, Result: PASS; prove reported Files={:?}, Tests={:?}, Result: {:?} \
             (exit {status}, {:.0?}).\n{report}\n{}",
            s.files,
            s.tests,
            s.result,
            wall,
            gw.logs()
        );
    }
}
