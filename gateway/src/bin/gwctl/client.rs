//! gwctl's client of the REST API: where the API is and its token, the calls, and jobs
//! followed to their end.

use anyhow::{Context, bail};
use serde_json::Value;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

pub struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
    /// The CA file trusted for HTTPS, if any (named when a TLS error needs explaining).
    ca: Option<PathBuf>,
}

pub fn read_trim(p: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

impl Client {
    pub fn new(
        api: Option<String>,
        token: Option<String>,
        ca_cert: Option<PathBuf>,
        data: &Path,
    ) -> anyhow::Result<Client> {
        let base = api
            .or_else(|| read_trim(&data.join("api.url")))
            .unwrap_or_else(|| "http://127.0.0.1:7070".into());
        let token = token.or_else(|| read_trim(&data.join("admin.token"))).with_context(|| {
            format!(
                "no API token: pass --token, set GWCTL_TOKEN, or point --data at the gateway's data directory (looked in {})",
                data.display()
            )
        })?;
        let ca = gateway::tls::client_ca(ca_cert, data);
        let agent = gateway::tls::http_agent(ca.as_deref())
            .context("the CA of the API's HTTPS certificate (--ca-cert)")?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            agent,
            ca,
        })
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<ureq::Response> {
        self.request(method, path, &[], body)
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> anyhow::Result<ureq::Response> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut req = self
            .agent
            .request(method, &url)
            .set("Authorization", &format!("Bearer {}", self.token));
        for (k, v) in query {
            req = req.query(k, v);
        }
        let r = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match r {
            Ok(r) => Ok(r),
            Err(ureq::Error::Status(code, r)) => {
                let text = r.into_string().unwrap_or_default();
                let msg = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
                    .unwrap_or(text);
                bail!("{msg} (HTTP {code})")
            }
            Err(e) if self.base.starts_with("https:") && self.ca.is_none() => bail!(
                "cannot reach gatewayd at {}: {e} (a certificate of the gateway's own CA? give it with --ca-cert, e.g. DATA/tls/ca.pem)",
                self.base
            ),
            Err(e) => bail!("cannot reach gatewayd at {}: {e}", self.base),
        }
    }

    pub fn json_query(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> anyhow::Result<Value> {
        Ok(self.request(method, path, query, None)?.into_json()?)
    }

    pub fn json(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        Ok(self.call(method, path, body)?.into_json()?)
    }

    /// A call the API answers with a job (volume start and stop, heal): follows the job to
    /// its end, showing its progress once it has run a second, and returns its result.
    pub fn job(&self, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let job = self.json("POST", path, body)?;
        follow_job(self, job)
    }
}

/// Polls a job until it ends. Its progress shows once it has run for a second: a progress bar
/// when standard error is a terminal, else a plain line each time what it does changes (and
/// every 10 s while it does not).
pub fn follow_job(c: &Client, mut job: Value) -> anyhow::Result<Value> {
    use std::time::{Duration, Instant};
    let id = job["id"]
        .as_str()
        .with_context(|| format!("gatewayd answered no job: {job}"))?
        .to_string();
    let began = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut said = String::new();
    let mut said_at = Instant::now();
    while job["state"] == "running" {
        if began.elapsed() >= Duration::from_secs(1) {
            let p = &job["progress"];
            let (done, total) = (
                p["done"].as_u64().unwrap_or(0),
                p["total"].as_u64().unwrap_or(0),
            );
            let msg = p["message"].as_str().unwrap_or("").to_string();
            if tty {
                let b = bar.get_or_insert_with(|| {
                    let b = indicatif::ProgressBar::new(0).with_elapsed(began.elapsed());
                    b.enable_steady_tick(Duration::from_millis(120));
                    b
                });
                let style = if total > 0 {
                    indicatif::ProgressStyle::with_template(
                        "{spinner} [{elapsed}] {bar:24} {pos}/{len} {wide_msg}",
                    )
                } else {
                    indicatif::ProgressStyle::with_template("{spinner} [{elapsed}] {wide_msg}")
                };
                if let Ok(st) = style {
                    b.set_style(st);
                }
                b.set_length(total);
                b.set_position(done);
                b.set_message(msg);
            } else if msg != said || said_at.elapsed() >= Duration::from_secs(10) {
                eprintln!("{msg} ({}s)", began.elapsed().as_secs());
                said = msg;
                said_at = Instant::now();
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        job = c
            .json("GET", &format!("/jobs/{id}"), None)
            .with_context(|| {
                format!("following job {id} (gatewayd restarted? see gwctl volume status)")
            })?;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    match job["state"].as_str() {
        Some("succeeded") => Ok(job["result"].clone()),
        _ => bail!(
            "{} (HTTP {})",
            job["error"].as_str().unwrap_or("the job failed"),
            job["error_status"].as_u64().unwrap_or(500)
        ),
    }
}
