//! Ceph's S3 conformance suite (s3-tests, `test_s3.py`) against S3 on the default 2 x 2 volume,
//! with its stock setup and cleanup: every test in `tests/s3/s3-tests-passing.txt` must pass,
//! and gatewayd answers no 5xx but 501 (what is deliberately left out).
//! That list only grows; a test that passed once and fails now is a regression.
//!
//! The suite is an input (`../shared/suites/s3-tests.tar.gz`), never part of the repository:
//! `.ci/install-deps` unpacks it into `/opt/s3-tests/src` with a virtualenv beside it
//! (`S3TESTS_DIR` points the test elsewhere). Three keys play its main, alt and tenant users.

use anyhow::{Context, Result, bail, ensure};
use e2e::*;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// pytest-xdist workers: each takes whole tests, and buckets are named per worker, so they do
/// not meet. The suite is mostly waiting on round trips; four fill two cores.
const WORKERS: &str = "4";

fn suite_dir() -> PathBuf {
    let dir = std::env::var_os("S3TESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/s3-tests"));
    assert!(
        dir.join("src/s3tests/functional/test_s3.py").is_file()
            && dir.join("venv/bin/python").is_file(),
        "s3-tests is not installed in {} (src/ and venv/): .ci/install-deps installs it from \
         ../shared/suites/s3-tests.tar.gz (S3TESTS_TARBALL and S3TESTS_DIR override the paths)",
        dir.display()
    );
    dir
}

/// A key for one of the suite's users: (access key, secret, canonical id).
fn key(gw: &Gateway, name: &str) -> Result<(String, String, String)> {
    let out = gw.gwctl_ok(&[
        "s3",
        "key",
        "create",
        name,
        "--email",
        &format!("{name}@example.com"),
        "--json",
    ])?;
    let v: serde_json::Value = serde_json::from_str(&out).context("gwctl s3 key create")?;
    let get = |k: &str| v[k].as_str().map(str::to_string).context(k.to_string());
    Ok((get("access_key")?, get("secret_key")?, get("canonical_id")?))
}

fn config(gw: &Gateway) -> Result<String> {
    let url = gw.s3_url()?;
    let port = url.rsplit(':').next().context("S3 url has a port")?;
    let mut text = format!(
        "[DEFAULT]\nhost = 127.0.0.1\nport = {port}\nis_secure = False\nssl_verify = False\n\n\
         [fixtures]\nbucket prefix = s3t-{{random}}-\n\n"
    );
    for (section, name) in [
        ("s3 main", "main"),
        ("s3 alt", "alt"),
        ("s3 tenant", "tenant"),
    ] {
        let (ak, sk, id) = key(gw, name)?;
        text += &format!(
            "[{section}]\ndisplay_name = {name}\nuser_id = {id}\nemail = {name}@example.com\n\
             api_name = default\naccess_key = {ak}\nsecret_key = {sk}\ntenant = {name}\n\n"
        );
    }
    // The IAM sections are required by the suite's setup; the tests that use them are not run.
    for section in ["iam", "iam root", "iam alt root"] {
        text += &format!(
            "[{section}]\naccess_key = none\nsecret_key = none\ndisplay_name = none\n\
             user_id = none\nemail = none@example.com\n\n"
        );
    }
    Ok(text)
}

#[test]
fn s3_tests_that_passed_still_pass_on_the_default_volume() -> Result<()> {
    let dir = suite_dir();
    let list = workspace_root().join("tests/s3/s3-tests-passing.txt");
    let tests: Vec<String> = fs::read_to_string(&list)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|t| format!("s3tests/functional/test_s3.py::{t}"))
        .collect();
    ensure!(!tests.is_empty(), "{} lists no test", list.display());
    let gw = Gateway::start(GatewayOpts {
        replica: 2,
        mount: false,
        ..Default::default()
    })?;
    let conf = gw.root().join("s3tests.conf");
    fs::write(&conf, config(&gw)?)?;
    let log = gw.root().join("pytest.log");
    let mut cmd = Command::new(dir.join("venv/bin/python"));
    cmd.current_dir(dir.join("src"))
        .env("S3TEST_CONF", &conf)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-n",
            WORKERS,
        ])
        .args(["-o", "addopts=", "--tb=line", "-rf"])
        .args(&tests)
        .stdout(fs::File::create(&log)?)
        .stderr(fs::File::create(gw.root().join("pytest.stderr"))?);
    // In a process group of its own, so a run past the deadline goes with its workers.
    cmd.process_group(0);
    let mut child = cmd.spawn().context("starting pytest")?;
    let status = match wait_for(Duration::from_secs(30 * 60), "s3-tests to finish", || {
        child.try_wait().ok().flatten()
    }) {
        Ok(s) => s,
        Err(e) => {
            signal(-(child.id() as i32), libc::SIGKILL);
            let _ = child.wait();
            bail!(
                "{e}
{}",
                tail(&log, 40)
            );
        }
    };
    let out = fs::read_to_string(&log)?;
    let summary = out.lines().last().unwrap_or("").to_string();
    eprintln!("s3-tests: {summary}");
    if !status.success() {
        let failed: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("FAILED") || l.starts_with("ERROR"))
            .collect();
        bail!(
            "s3-tests listed as passing failed ({summary}):\n{}\n--- pytest output (tail) ---\n{}\n{}",
            failed.join("\n"),
            tail(&log, 60),
            gw.logs()
        );
    }
    // "399 passed in 218.41s (0:03:38)", or "3 failed, 396 passed, 2 skipped in ...".
    let words: Vec<&str> = summary
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let passed: usize = words
        .windows(2)
        .find(|w| w[1] == "passed")
        .and_then(|w| w[0].parse().ok())
        .context("no pass count in pytest's summary")?;
    ensure!(
        passed == tests.len(),
        "{passed} of the {} listed tests passed ({summary})",
        tests.len()
    );
    // No 5xx but 501 for what is deliberately left out: s3s logs every 5xx answer with its
    // status, and the gateway logs a request it could not answer at all.
    let log = fs::read_to_string(gw.root().join("gatewayd.stderr"))?;
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("S3 request failed")
                || l.contains("InternalError")
                || (l.contains("status: 5") && !l.contains("status: 501"))
        })
        .take(10)
        .collect();
    ensure!(
        bad.is_empty(),
        "gatewayd answered 5xx other than 501:\n{}",
        bad.join("\n")
    );
    Ok(())
}
