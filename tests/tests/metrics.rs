//! `/metrics`: Prometheus text that the reference parser accepts, whose counters move with
//! traffic on each protocol and whose brick gauges follow a brick going away and coming back.

use anyhow::{Context, Result, ensure};
use e2e::*;
use std::collections::BTreeMap;
use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Scrapes `/metrics` and parses it with prometheus_client: sample line → value.
fn scrape(gw: &Gateway) -> Result<BTreeMap<String, f64>> {
    let text = run_ok(Command::new("curl").args(["-sf", &format!("{}/metrics", gw.api_url)]))?;
    let mut child = Command::new("python3")
        .arg(workspace_root().join("tests/metrics/parse.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(child.stdin.as_mut().context("stdin")?, text.as_bytes())?;
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "the Prometheus parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (k, v) = line.rsplit_once(' ').context("sample line")?;
        m.insert(k.to_string(), v.parse::<f64>()?);
    }
    Ok(m)
}

fn get(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

/// Sum of the samples whose line starts with `prefix`.
fn sum(m: &BTreeMap<String, f64>, prefix: &str) -> f64 {
    m.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
        .sum()
}

#[test]
fn metrics_parse_and_move_with_traffic_and_brick_state() -> Result<()> {
    assert!(have_program("curl"), "curl is not installed");
    assert!(have_program("nfs-cat"), "libnfs-utils is not installed");
    let gw = Gateway::up()?;
    let before = scrape(&gw)?;
    let up = |m: &BTreeMap<String, f64>| {
        (0..4)
            .map(|i| {
                get(
                    m,
                    &format!(r#"gateway_brick_up{{brick="vol-client-{i}",volume="vol"}}"#),
                )
            })
            .sum::<f64>()
    };
    ensure!(up(&before) == 4.0, "four bricks up: {before:?}");

    // Traffic through FUSE, NFS and S3.
    let data = vec![7u8; 1 << 20];
    fs::write(gw.mnt().join("m.bin"), &data)?;
    ensure!(fs::read(gw.mnt().join("m.bin"))? == data, "read back");
    let cat = run(Command::new("nfs-cat").arg(gw.nfs_url("/m.bin")?))?;
    ensure!(
        cat.status.success() && cat.stdout.len() == 1 << 20,
        "nfs-cat"
    );
    let s3 = gw.s3_url()?;
    let (code, _) = {
        let out =
            run(Command::new("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &s3]))?;
        (String::from_utf8_lossy(&out.stdout).to_string(), ())
    };
    ensure!(code == "403", "an unsigned S3 request is refused ({code})");

    let after = scrape(&gw)?;
    let grew = |key: &str, by: f64| -> Result<()> {
        let (b, a) = (sum(&before, key), sum(&after, key));
        ensure!(a >= b + by, "{key}: {b} -> {a}, expected +{by}");
        Ok(())
    };
    grew(
        r#"gateway_protocol_bytes_total{direction="write",protocol="fuse"}"#,
        (1 << 20) as f64,
    )?;
    grew(
        r#"gateway_protocol_operations_total{op="write",protocol="fuse"}"#,
        1.0,
    )?;
    grew(
        r#"gateway_protocol_operations_total{op="lookup",protocol="nfs"}"#,
        1.0,
    )?;
    grew(
        r#"gateway_protocol_operations_total{op="read",protocol="nfs"}"#,
        1.0,
    )?;
    grew(
        r#"gateway_protocol_bytes_total{direction="read",protocol="nfs"}"#,
        (1 << 20) as f64,
    )?;
    // The same traffic per volume (labels in the parser's sorted order).
    grew(
        r#"gateway_volume_bytes_total{direction="write",protocol="fuse",volume="vol"}"#,
        (1 << 20) as f64,
    )?;
    grew(
        r#"gateway_volume_bytes_total{direction="read",protocol="nfs",volume="vol"}"#,
        (1 << 20) as f64,
    )?;
    grew(
        r#"gateway_volume_operations_total{protocol="nfs",volume="vol"}"#,
        2.0,
    )?;
    grew(
        r#"gateway_volume_operations_total{protocol="s3",volume="vol"}"#,
        1.0,
    )?;
    grew(
        r#"gateway_protocol_errors_total{op="get",protocol="s3"}"#,
        1.0,
    )?;
    // The same traffic per fop, counted by the volume's debug/io-stats.
    grew(
        r#"gateway_fop_operations_total{fop="write",protocol="fuse",volume="vol"}"#,
        1.0,
    )?;
    grew(
        r#"gateway_fop_operations_total{fop="read",protocol="nfs",volume="vol"}"#,
        1.0,
    )?;
    grew(
        r#"gateway_fop_seconds_count{fop="lookup",protocol="nfs",volume="vol"}"#,
        1.0,
    )?;
    grew("gateway_brick_requests_total{", 10.0)?;
    grew(
        r#"gateway_protocol_operation_seconds_count{op="write",protocol="fuse"}"#,
        1.0,
    )?;

    // A brick that stops answering shows as down within ping-timeout, and up once it answers.
    let ping = gw.ping_timeout("vol");
    let victim = gw.brick_dirs()[0].clone();
    let pid = gw.brickd_pid(&victim).context("brickd pid")?;
    signal(pid, libc::SIGSTOP);
    let down = wait_for(
        Duration::from_secs(ping + 15),
        "a brick down in /metrics",
        || scrape(&gw).ok().filter(|m| up(m) == 3.0).map(|_| ()),
    );
    signal(pid, libc::SIGCONT);
    down?;
    wait_for(
        Duration::from_secs(ping + 30),
        "the brick up again in /metrics",
        || scrape(&gw).ok().filter(|m| up(m) == 4.0).map(|_| ()),
    )?;
    Ok(())
}
