//! The web console in headless Chromium (playwright-core driving Debian's chromium): the
//! operator's path through it (`web-ui/tests/console.mjs`), then what it did checked through
//! gwctl, smbclient and NFS. Screenshots, at 1400 px and at a phone's 420 px, are kept in
//! target/test-artifacts/console/.

use anyhow::{Result, ensure};
use e2e::*;
use std::fs;
use std::process::Command;

#[test]
fn an_operator_runs_the_gateway_from_the_browser() -> Result<()> {
    for p in ["node", "chromium", "smbclient", "nfs-cat"] {
        need(p);
    }
    let ui = workspace_root().join("web-ui");
    ensure!(
        ui.join("node_modules/playwright-core").is_dir() && ui.join("dist/index.html").is_file(),
        "the console is not built: deploy/build-console (.ci/install-deps runs it)"
    );
    // A short ping-timeout, so the brick the script freezes is down on the dashboard soon.
    let gw = Gateway::start(GatewayOpts {
        extra: vec!["--ping-timeout".into(), "4".into()],
        ..Default::default()
    })?;
    let artifacts = workspace_root().join("target/test-artifacts/console");
    let _ = fs::remove_dir_all(&artifacts);
    let bricks = gw.data.join("webbricks");
    fs::create_dir_all(&bricks)?;

    let out = run(Command::new("node")
        .arg(ui.join("tests/console.mjs"))
        .env("CONSOLE_URL", &gw.api_url)
        .env("ADMIN_PASSWORD", gw.admin_password()?)
        .env("BRICK_ROOT", &bricks)
        .env("ARTIFACTS", &artifacts))?;
    let text = output_text(&out);
    ensure!(
        out.status.success() && text.contains("console ok"),
        "console.mjs:\n{text}\n(screenshots in {})\n{}",
        artifacts.display(),
        gw.logs()
    );
    // Every step at a desktop's width, and every page again at a phone's.
    let names: Vec<String> = fs::read_dir(&artifacts)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let wide = names.iter().filter(|n| n.ends_with("-1400px.png")).count();
    let phone = names.iter().filter(|n| n.ends_with("-420px.png")).count();
    ensure!(
        wide >= 10 && phone >= 8,
        "{wide} screenshots at 1400 px and {phone} at 420 px in {}",
        artifacts.display()
    );

    // What the browser did is real: the volume runs, the key, export, user and share exist.
    let info: serde_json::Value =
        serde_json::from_str(&gw.gwctl_ok(&["volume", "info", "web", "--json"])?)?;
    ensure!(info[0]["started"] == true, "volume web: {info}");
    ensure!(
        gw.gwctl_ok(&["s3", "key", "list", "--json"])?
            .contains("console-key")
    );
    let exports = gw.gwctl_ok(&["nfs", "export", "list", "--json"])?;
    ensure!(exports.contains("\"/web\""), "exports: {exports}");
    ensure!(
        gw.gwctl_ok(&["smb", "share", "list", "--json"])?
            .contains("webshare")
    );
    let status: serde_json::Value =
        serde_json::from_str(&gw.gwctl_ok(&["volume", "status", "web", "--json"])?)?;
    ensure!(
        status["bricks"][0]["restarts"].as_u64() >= Some(1),
        "the killed brick was not restarted: {status}"
    );

    // A file put through the console-made share as its user reads back over the NFS export.
    let local = gw.root().join("via-console-share.bin");
    random_file(&local, 700_000, 21)?;
    let out = run(Command::new("smbclient")
        .arg("-p")
        .arg(gw.smb_port()?.to_string())
        .args([
            "//127.0.0.1/webshare",
            "-U",
            "alice%alice-console-pw",
            "-m",
            "SMB3",
            "-c",
        ])
        .arg(format!("put {} report.bin", local.display())))?;
    ensure!(
        out.status.success() && !output_text(&out).contains("NT_STATUS_"),
        "smbclient put: {}\n{}\n--- smbd log ---\n{}",
        output_text(&out),
        gw.logs(),
        tail(&gw.data.join("smb/log/smbd.log"), 60)
    );
    let port = gw.nfs_port()?;
    let out = run(Command::new("nfs-cat").arg(format!(
        "nfs://127.0.0.1/web/docs/report.bin?version=3&nfsport={port}&mountport={port}"
    )))?;
    ensure!(out.status.success(), "nfs-cat: {}", output_text(&out));
    ensure!(
        out.stdout == fs::read(&local)?,
        "the file read over NFS differs from the one put over SMB"
    );
    Ok(())
}
