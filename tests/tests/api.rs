//! The REST API's front door: the OpenAPI document validates and every operation in it answers
//! as documented (and refuses callers without credentials); the console's login, session
//! cookie and CSRF protection; named API tokens and the admin password, driven by curl and
//! gwctl against a real `gatewayd up`.

use anyhow::{Context, Result, ensure};
use e2e::*;
use std::fs;
use std::process::Command;

/// `curl -s` returning (status, body); `args` come before the URL.
fn curl(args: &[&str], url: &str) -> Result<(u16, String)> {
    let out = run(Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').context("curl printed no status")?;
    Ok((code.trim().parse()?, body.to_string()))
}

#[test]
fn the_openapi_document_validates_and_every_operation_answers_as_documented() -> Result<()> {
    need("curl");
    let gw = Gateway::up()?;
    let out = run(Command::new("python3")
        .arg(workspace_root().join("tests/api/check_openapi.py"))
        .env("API_URL", &gw.api_url)
        .env("API_TOKEN", &gw.token))?;
    let text = output_text(&out);
    ensure!(
        out.status.success() && text.contains("openapi ok"),
        "check_openapi.py:\n{text}\n{}",
        gw.logs()
    );
    Ok(())
}

#[test]
fn console_login_sessions_csrf_and_api_tokens() -> Result<()> {
    need("curl");
    let gw = Gateway::up()?;
    let api = |p: &str| format!("{}/api/v1{p}", gw.api_url);
    let password = gw.admin_password()?;
    ensure!(password.len() >= 10, "printed password {password:?}");

    // Nothing without credentials; a bad token is refused too.
    for (method, path) in [
        ("GET", "/volumes"),
        ("POST", "/s3/keys"),
        ("DELETE", "/tokens/x"),
    ] {
        let (code, body) = curl(&["-X", method], &api(path))?;
        ensure!(
            code == 401,
            "{method} {path} without credentials: {code} {body}"
        );
        let (code, _) = curl(
            &["-X", method, "-H", "Authorization: Bearer not-a-token"],
            &api(path),
        )?;
        ensure!(code == 401, "{method} {path} with a bad token: {code}");
    }

    // Login: a wrong password is refused; the right one sets an HttpOnly SameSite cookie.
    let login = |pw: &str| -> Result<(u16, String, String)> {
        let headers = gw.root().join("login.headers");
        let (code, body) = curl(
            &[
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "-D",
                headers.to_str().unwrap(),
                "-d",
                &serde_json::json!({ "user": "admin", "password": pw }).to_string(),
            ],
            &api("/login"),
        )?;
        Ok((code, body, fs::read_to_string(&headers).unwrap_or_default()))
    };
    let (code, _, _) = login("wrong-password")?;
    ensure!(code == 401, "a wrong password: {code}");
    let (code, body, headers) = login(&password)?;
    ensure!(code == 200, "login: {code} {body}");
    let set_cookie = headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .context("no Set-Cookie")?;
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        ensure!(
            set_cookie.contains(attr),
            "cookie lacks {attr}: {set_cookie}"
        );
    }
    let session = set_cookie
        .split_once("gw_session=")
        .and_then(|(_, r)| r.split(';').next())
        .context("no gw_session")?
        .to_string();
    let csrf = serde_json::from_str::<serde_json::Value>(&body)?["csrf_token"]
        .as_str()
        .context("no csrf_token")?
        .to_string();
    let cookie = format!("Cookie: gw_session={session}");

    // The session reads; changes need the CSRF token: a form post, a JSON post without the
    // header, a wrong token and a foreign Origin are refused, and none of them made a key.
    let (code, _) = curl(&["-H", &cookie], &api("/volumes"))?;
    ensure!(code == 200, "GET with the session: {code}");
    let (code, body) = curl(
        &[
            "-H",
            &cookie,
            "-X",
            "POST",
            "--data-urlencode",
            "name=formkey",
        ],
        &api("/s3/keys"),
    )?;
    ensure!(
        code == 403 && body.contains("CSRF"),
        "a CSRF-less form post: {code} {body}"
    );
    let json_key = |name: &str, extra: &[&str]| -> Result<(u16, String)> {
        let body = serde_json::json!({ "name": name }).to_string();
        let mut args = vec![
            "-H",
            &cookie,
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
        ];
        args.extend_from_slice(extra);
        curl(&args, &api("/s3/keys"))
    };
    let (code, _) = json_key("nocsrf", &[])?;
    ensure!(code == 403, "a JSON post without the CSRF header: {code}");
    let (code, _) = json_key("wrongcsrf", &["-H", "X-CSRF-Token: 0000"])?;
    ensure!(code == 403, "a wrong CSRF token: {code}");
    let csrf_header = format!("X-CSRF-Token: {csrf}");
    let (code, _) = json_key(
        "foreign",
        &["-H", &csrf_header, "-H", "Origin: https://evil.example"],
    )?;
    ensure!(code == 403, "a foreign Origin: {code}");
    let keys = gw.gwctl_ok(&["s3", "key", "list", "--json"])?;
    for refused in ["formkey", "nocsrf", "wrongcsrf", "foreign"] {
        ensure!(
            !keys.contains(refused),
            "a refused request made key {refused}"
        );
    }
    let (code, body) = json_key("console-key", &["-H", &csrf_header])?;
    ensure!(code == 201, "a post with the CSRF token: {code} {body}");

    // Logout ends the session.
    let (code, _) = curl(
        &["-H", &cookie, "-H", &csrf_header, "-X", "POST"],
        &api("/logout"),
    )?;
    ensure!(code == 200, "logout: {code}");
    let (code, _) = curl(&["-H", &cookie], &api("/volumes"))?;
    ensure!(code == 401, "the session after logout: {code}");

    // Named tokens work for gwctl until revoked.
    let token = gw.gwctl_ok(&["token", "create", "ci"])?.trim().to_string();
    ensure!(token.starts_with("gwt_"), "token {token:?}");
    let with_token = |t: &str| -> Result<std::process::Output> {
        run(Command::new(bin("gwctl")).args(["--api", &gw.api_url, "--token", t, "volume", "list"]))
    };
    ensure!(
        with_token(&token)?.status.success(),
        "gwctl with a named token"
    );
    let listed = gw.gwctl_ok(&["token", "list", "--json"])?;
    ensure!(
        listed.contains("\"ci\"") && !listed.contains(&token),
        "token list: {listed}"
    );
    gw.gwctl_ok(&["token", "delete", "ci"])?;
    let out = with_token(&token)?;
    ensure!(
        !out.status.success() && output_text(&out).contains("invalid token"),
        "a revoked token: {}",
        output_text(&out)
    );

    // A new admin password: the old one stops working, the new one logs in.
    let out = gw.gwctl(&[
        "admin",
        "passwd",
        "--current",
        "nope-nope-nope",
        "--password",
        "new-admin-pass",
    ])?;
    ensure!(
        !out.status.success(),
        "passwd with a wrong current password"
    );
    gw.gwctl_ok(&[
        "admin",
        "passwd",
        "--current",
        &password,
        "--password",
        "new-admin-pass",
    ])?;
    ensure!(login(&password)?.0 == 401, "the old password still logs in");
    ensure!(
        login("new-admin-pass")?.0 == 200,
        "the new password does not log in"
    );
    Ok(())
}

#[test]
fn volume_options_are_validated_and_recorded() -> Result<()> {
    let gw = Gateway::start(GatewayOpts {
        mount: false,
        ..Default::default()
    })?;
    // "on", not the "auto" every volume gatewayd lays out starts with: the change must show.
    let out = gw.gwctl_ok(&["volume", "set", "vol", "cluster.lookup-unhashed", "on"])?;
    ensure!(
        out.contains("stop and start vol"),
        "a started volume's cluster option: {out}"
    );
    let option = |key: &str| -> Result<Option<String>> {
        let info: serde_json::Value =
            serde_json::from_str(&gw.gwctl_ok(&["volume", "info", "vol", "--json"])?)?;
        Ok(info[0]["options"][key].as_str().map(str::to_string))
    };
    ensure!(option("cluster.lookup-unhashed")?.as_deref() == Some("on"));
    gw.gwctl_ok(&["volume", "stop", "vol"])?;
    gw.gwctl_ok(&["volume", "start", "vol"])?;
    let volfile = gw.gwctl_ok(&["volume", "volfile", "vol"])?;
    ensure!(
        volfile.contains("option lookup-unhashed on"),
        "the volfile lacks the option:\n{volfile}"
    );

    for (args, why) in [
        (
            vec!["volume", "set", "vol", "cluster.no-such", "on"],
            "known: cluster.",
        ),
        (
            vec!["volume", "set", "vol", "performance.cache-size", "1GB"],
            "unknown option",
        ),
        (
            vec!["volume", "set", "vol", "cluster.lookup-unhashed", "maybe"],
            "cluster.lookup-unhashed",
        ),
        (
            vec!["volume", "set", "vol", "nfs.disable", "perhaps"],
            "on|off",
        ),
        (
            vec!["volume", "set", "novol", "nfs.disable", "on"],
            "does not exist",
        ),
    ] {
        let out = gw.gwctl(&args)?;
        let text = output_text(&out);
        ensure!(
            !out.status.success() && text.contains(why),
            "gwctl {args:?}: expected a refusal mentioning {why:?}, got {text}"
        );
    }
    ensure!(
        option("cluster.lookup-unhashed")?.as_deref() == Some("on"),
        "a refused value changed the option"
    );

    // nfs.disable takes the volume's export away at once; reset brings it back.
    gw.gwctl_ok(&["volume", "set", "vol", "nfs.disable", "on"])?;
    ensure!(
        !gw.gwctl_ok(&["nfs", "export", "list", "--json"])?
            .contains("\"/vol\"")
    );
    gw.gwctl_ok(&["volume", "reset", "vol", "nfs.disable"])?;
    ensure!(
        gw.gwctl_ok(&["nfs", "export", "list", "--json"])?
            .contains("\"/vol\"")
    );
    let log = gw.gwctl_ok(&["log"])?;
    ensure!(
        log.contains("volume set vol nfs.disable on")
            && log.contains("volume reset vol nfs.disable"),
        "{log}"
    );
    Ok(())
}
