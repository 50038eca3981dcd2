//! gwctl: the command line of the gateway (GlusterFS's `gluster`), a client of its REST API.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Manage a gatewayd: volumes, bricks, status")]
struct Cli {
    /// API URL; else GWCTL_API, else DATA/api.url, else http://127.0.0.1:7070.
    #[arg(long, env = "GWCTL_API", global = true)]
    api: Option<String>,
    /// API token; else GWCTL_TOKEN, else DATA/admin.token.
    #[arg(long, env = "GWCTL_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// The gateway's data directory.
    #[arg(
        long,
        env = "GWCTL_DATA",
        global = true,
        default_value = "/var/lib/gatewayd"
    )]
    data: PathBuf,
    /// Print the API's JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Top,
}

#[derive(Subcommand)]
enum Top {
    /// Volumes.
    #[command(subcommand)]
    Volume(Vol),
    /// S3 access keys.
    #[command(subcommand)]
    S3(S3Cmd),
    /// NFS exports.
    #[command(subcommand)]
    Nfs(NfsCmd),
    /// SMB shares and the users who may use them.
    #[command(subcommand)]
    Smb(SmbCmd),
    /// Named API tokens for scripts and other gwctl users.
    #[command(subcommand)]
    Token(TokenCmd),
    /// The console's admin login.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// The log of management actions.
    Log,
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Make a token; it is shown this once.
    Create {
        name: String,
    },
    List,
    /// Revoke a token: requests carrying it are refused from then on.
    Delete {
        name: String,
    },
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Change the admin password. Without flags, reads the current and the new password
    /// from the first two lines of standard input.
    Passwd {
        #[arg(long)]
        current: Option<String>,
        #[arg(long)]
        password: Option<String>,
    },
}

#[derive(Subcommand)]
enum SmbCmd {
    /// Shares: a volume or a directory in it, served by Samba.
    #[command(subcommand)]
    Share(ShareCmd),
    /// SMB users (they need no account on the host).
    #[command(subcommand)]
    User(SmbUserCmd),
}

#[derive(Subcommand)]
enum ShareCmd {
    /// Share a volume, or the directory --path in it (made if missing).
    Add {
        name: String,
        #[arg(long)]
        volume: String,
        #[arg(long, default_value = "/")]
        path: String,
        /// Clients may read only.
        #[arg(long)]
        ro: bool,
        /// A user allowed to connect (repeatable); none allows every SMB user.
        #[arg(long = "user")]
        users: Vec<String>,
    },
    Remove {
        name: String,
    },
    List,
}

#[derive(Subcommand)]
enum SmbUserCmd {
    /// Add a user. The password comes from --password, else the first line of standard input.
    Add {
        name: String,
        /// Visible to other local users in the process list; prefer standard input.
        #[arg(long)]
        password: Option<String>,
    },
    /// Set a user's password (same sources as `add`).
    Passwd {
        name: String,
        #[arg(long)]
        password: Option<String>,
    },
    Remove {
        name: String,
    },
    List,
}

/// The password given on the command line, else the first line of standard input.
fn password(given: Option<String>) -> anyhow::Result<String> {
    if let Some(p) = given {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let p = line.trim_end_matches(['\n', '\r']).to_string();
    if p.is_empty() {
        bail!("no password: give --password or write it on standard input");
    }
    Ok(p)
}

#[derive(Subcommand)]
enum S3Cmd {
    /// Access keys for the S3 endpoint.
    #[command(subcommand)]
    Key(KeyCmd),
}

#[derive(Subcommand)]
enum NfsCmd {
    /// Exports of volumes and of directories in them.
    #[command(subcommand)]
    Export(ExportCmd),
}

#[derive(Subcommand)]
enum ExportCmd {
    /// Export /VOLUME or /VOLUME/DIR (replacing an export of the same path).
    Add {
        path: String,
        /// Refuse every change (NFS3ERR_ROFS).
        #[arg(long)]
        ro: bool,
        /// Map uid 0 and gid 0 to the anonymous ids.
        #[arg(long)]
        root_squash: bool,
        /// Map every caller to the anonymous ids.
        #[arg(long)]
        all_squash: bool,
        #[arg(long, default_value_t = 65534)]
        anonuid: u32,
        #[arg(long, default_value_t = 65534)]
        anongid: u32,
        /// A client network allowed to mount and use the export (repeatable); none allows all.
        #[arg(long = "network")]
        networks: Vec<String>,
    },
    /// Remove an export added with `add` (a volume's own export returns to its default).
    Remove {
        path: String,
    },
    List,
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Make a key; its secret is shown this once.
    Create {
        name: String,
    },
    List,
    /// Delete a key by name or access key id; requests signed with it fail from then on.
    Delete {
        name: String,
    },
}

#[derive(Subcommand)]
enum Vol {
    /// Create a volume: NAME [replica N [arbiter 1]] HOST:/PATH... [force]. Without replica,
    /// files are distributed over the bricks; with replica N, each N consecutive bricks form a
    /// replica set holding the same files, and files are distributed over the sets.
    #[command(
        override_usage = "gwctl volume create NAME [replica N [arbiter 1]] HOST:/PATH... [force]"
    )]
    Create {
        name: String,
        /// `replica N`, `arbiter 1` (with replica 3), then the bricks, HOST:/PATH.
        #[arg(required = true, value_name = "[replica N [arbiter 1]] BRICK")]
        args: Vec<String>,
        /// The same as positional `replica N`.
        #[arg(long)]
        replica: Option<usize>,
        /// The same as positional `arbiter 1`.
        #[arg(long)]
        arbiter: Option<usize>,
        /// Accepted for GlusterFS habits; bricks on the root file system are fine here.
        #[arg(long)]
        force: bool,
    },
    /// Adopt existing GlusterFS bricks (stop GlusterFS first): NAME [replica N [arbiter 1]]
    /// HOST:/PATH..., with the GlusterFS volume's replica count and bricks in its order.
    #[command(override_usage = "gwctl volume import NAME [replica N [arbiter 1]] HOST:/PATH...")]
    Import {
        name: String,
        /// `replica N`, `arbiter 1` (with replica 3), then the bricks, HOST:/PATH.
        #[arg(required = true, value_name = "[replica N [arbiter 1]] BRICK")]
        args: Vec<String>,
        /// The same as positional `replica N`.
        #[arg(long)]
        replica: Option<usize>,
        /// The same as positional `arbiter 1`.
        #[arg(long)]
        arbiter: Option<usize>,
    },
    Start {
        name: String,
    },
    Stop {
        name: String,
    },
    Delete {
        name: String,
    },
    Info {
        name: Option<String>,
    },
    Status {
        name: String,
    },
    List,
    /// Set an option (cluster.* apply when the volume next starts; nfs.disable at once).
    Set {
        name: String,
        key: String,
        value: String,
    },
    /// Reset an option to its default.
    Reset {
        name: String,
        key: String,
    },
    /// Print the client volfile.
    Volfile {
        name: String,
    },
    /// Self-heal of a replicated volume: heal now (no argument), `info` (what each brick's
    /// index lists, and split-brains), `full` (crawl the whole tree), or
    /// `split-brain bigger-file PATH | latest-mtime PATH | source-brick HOST:/BRICK [PATH]`.
    #[command(
        override_usage = "gwctl volume heal VOL [info | full | split-brain {bigger-file PATH | latest-mtime PATH | source-brick HOST:/BRICK [PATH]}]"
    )]
    Heal {
        name: String,
        args: Vec<String>,
    },
}

struct Client {
    base: String,
    token: String,
}

fn read_trim(p: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

impl Client {
    fn new(cli: &Cli) -> anyhow::Result<Client> {
        let base = cli
            .api
            .clone()
            .or_else(|| read_trim(&cli.data.join("api.url")))
            .unwrap_or_else(|| "http://127.0.0.1:7070".into());
        let token = cli.token.clone().or_else(|| read_trim(&cli.data.join("admin.token"))).with_context(|| {
            format!(
                "no API token: pass --token, set GWCTL_TOKEN, or point --data at the gateway's data directory (looked in {})",
                cli.data.display()
            )
        })?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<ureq::Response> {
        self.request(method, path, &[], body)
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> anyhow::Result<ureq::Response> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut req =
            ureq::request(method, &url).set("Authorization", &format!("Bearer {}", self.token));
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
            Err(e) => bail!("cannot reach gatewayd at {}: {e}", self.base),
        }
    }

    fn json_query(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> anyhow::Result<Value> {
        Ok(self.request(method, path, query, None)?.into_json()?)
    }

    fn json(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        Ok(self.call(method, path, body)?.into_json()?)
    }
}

/// The API's JSON with --json, else the command's own text.
fn report(json: bool, v: &Value, text: impl FnOnce(&Value)) {
    if json {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        text(v)
    }
}

/// A JSON array of strings (users, networks) as a list; anything else as empty.
fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// The layout words of `volume create`: `replica N`, `arbiter 1` (and GlusterFS's
/// `transport tcp` and trailing `force`), from the flags and the positional arguments before
/// the bricks. Returns (replica, arbiter, bricks); replica 1 is plain distribute.
fn layout_args(
    args: &[String],
    flag_replica: Option<usize>,
    flag_arbiter: Option<usize>,
) -> anyhow::Result<(usize, usize, Vec<String>)> {
    let mut replica = flag_replica;
    let mut arbiter = flag_arbiter;
    let mut i = 0;
    let count = |what: &str, v: Option<&String>| -> anyhow::Result<usize> {
        let v = v.with_context(|| format!("`{what}` needs a count: {what} N"))?;
        v.parse()
            .with_context(|| format!("`{what} {v}`: the count must be a number"))
    };
    while let Some(w) = args.get(i) {
        match w.as_str() {
            "replica" => {
                let n = count("replica", args.get(i + 1))?;
                if replica.is_some() {
                    bail!("the replica count is given twice");
                }
                if n < 2 {
                    bail!(
                        "replica {n}: a replica count is 2 or more (leave `replica` out for a plain distribute volume)"
                    );
                }
                replica = Some(n);
            }
            "arbiter" => {
                let n = count("arbiter", args.get(i + 1))?;
                if arbiter.is_some() {
                    bail!("the arbiter count is given twice");
                }
                arbiter = Some(n);
            }
            "transport" => {
                let t = args.get(i + 1).map(String::as_str);
                if t != Some("tcp") {
                    bail!("transport {}: only tcp is supported", t.unwrap_or("(none)"));
                }
            }
            "disperse" | "disperse-data" | "redundancy" | "stripe" | "thin-arbiter" => {
                bail!("`{w}` volumes are not supported yet; use replica N [arbiter 1]")
            }
            _ => break,
        }
        i += 2;
    }
    let mut bricks: Vec<String> = args[i..].to_vec();
    if bricks.last().is_some_and(|b| b == "force") {
        bricks.pop();
    }
    if let Some(w) = bricks
        .iter()
        .find(|b| matches!(b.as_str(), "replica" | "arbiter" | "transport"))
    {
        bail!("`{w}` must come before the bricks: NAME [replica N [arbiter 1]] HOST:/PATH...");
    }
    if bricks.is_empty() {
        bail!("no bricks: give HOST:/PATH after the replica count");
    }
    if arbiter.is_some_and(|a| a > 0) && replica.is_none() {
        bail!("arbiter needs a replica count: replica 3 arbiter 1");
    }
    Ok((replica.unwrap_or(1), arbiter.unwrap_or(0), bricks))
}

/// GlusterFS's spelling of a volume type: Distribute, Replicate, Distributed-Replicate.
fn type_label(kind: &str) -> String {
    kind.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// `Number of Bricks:` as GlusterFS prints it: `4`, `2 x 2 = 4`, `1 x (2 + 1) = 3`.
fn brick_count_label(bricks: usize, replica: usize, arbiter: usize) -> String {
    if replica <= 1 {
        return bricks.to_string();
    }
    let sets = bricks / replica;
    if arbiter > 0 {
        format!("{sets} x ({} + {arbiter}) = {bricks}", replica - arbiter)
    } else {
        format!("{sets} x {replica} = {bricks}")
    }
}

fn print_volume(v: &Value) {
    println!("Volume Name: {}", v["name"].as_str().unwrap_or(""));
    println!("Type: {}", type_label(v["kind"].as_str().unwrap_or("")));
    println!("Volume ID: {}", v["id"].as_str().unwrap_or(""));
    println!(
        "Status: {}",
        if v["started"].as_bool() == Some(true) {
            "Started"
        } else {
            "Stopped"
        }
    );
    let bricks = v["bricks"].as_array().cloned().unwrap_or_default();
    let replica = v["replica"].as_u64().unwrap_or(1) as usize;
    let arbiter = v["arbiter"].as_u64().unwrap_or(0) as usize;
    println!(
        "Number of Bricks: {}",
        brick_count_label(bricks.len(), replica, arbiter)
    );
    println!("Transport-type: tcp");
    println!("Bricks:");
    for (i, b) in bricks.iter().enumerate() {
        println!(
            "Brick{}: {}:{}{} (port {})",
            i + 1,
            b["host"].as_str().unwrap_or(""),
            b["path"].as_str().unwrap_or(""),
            if b["arbiter"].as_bool() == Some(true) {
                " (arbiter)"
            } else {
                ""
            },
            b["port"]
        );
    }
    if let Some(opts) = v["options"].as_object().filter(|o| !o.is_empty()) {
        println!("Options Reconfigured:");
        for (k, val) in opts {
            println!("{k}: {}", val.as_str().unwrap_or(""));
        }
    }
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(&cli) {
        eprintln!("gwctl: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let c = Client::new(cli)?;
    match &cli.cmd {
        Top::Log => {
            let v = c.json("GET", "/actions", None)?;
            report(cli.json, &v, |v: &Value| {
                for a in v.as_array().cloned().unwrap_or_default() {
                    println!("{}  {}", a["at"], a["what"].as_str().unwrap_or(""));
                }
            });
        }
        Top::S3(S3Cmd::Key(cmd)) => match cmd {
            KeyCmd::Create { name } => {
                let v = c.json("POST", "/s3/keys", Some(json!({ "name": name })))?;
                report(cli.json, &v, |v: &Value| {
                    println!("name:       {}", v["name"].as_str().unwrap_or(""));
                    println!("access key: {}", v["access_key"].as_str().unwrap_or(""));
                    println!("secret key: {}", v["secret_key"].as_str().unwrap_or(""));
                    println!("(the secret is not shown again)");
                });
            }
            KeyCmd::List => {
                let v = c.json("GET", "/s3/keys", None)?;
                report(cli.json, &v, |v: &Value| {
                    println!("{:<24} {:<22} CREATED", "NAME", "ACCESS KEY");
                    for k in v.as_array().cloned().unwrap_or_default() {
                        println!(
                            "{:<24} {:<22} {}",
                            k["name"].as_str().unwrap_or(""),
                            k["access_key"].as_str().unwrap_or(""),
                            k["created"]
                        );
                    }
                });
            }
            KeyCmd::Delete { name } => {
                let v = c.json("DELETE", &format!("/s3/keys/{name}"), None)?;
                report(cli.json, &v, |v: &Value| {
                    println!("deleted S3 key {}", v["deleted"].as_str().unwrap_or(""));
                });
            }
        },
        Top::Token(cmd) => match cmd {
            TokenCmd::Create { name } => {
                let v = c.json("POST", "/tokens", Some(json!({ "name": name })))?;
                report(cli.json, &v, |v: &Value| {
                    println!("{}", v["token"].as_str().unwrap_or(""));
                    eprintln!(
                        "token {name} made; it is shown this once (use it with --token or GWCTL_TOKEN)"
                    );
                });
            }
            TokenCmd::List => {
                let v = c.json("GET", "/tokens", None)?;
                report(cli.json, &v, |v: &Value| {
                    println!("{:<32} CREATED", "NAME");
                    for t in v.as_array().cloned().unwrap_or_default() {
                        println!(
                            "{:<32} {}",
                            t["name"].as_str().unwrap_or(""),
                            t["created"].as_u64().unwrap_or(0)
                        );
                    }
                });
            }
            TokenCmd::Delete { name } => {
                let v = c.json("DELETE", &format!("/tokens/{name}"), None)?;
                report(cli.json, &v, |_: &Value| {
                    println!("revoked token {name}");
                });
            }
        },
        Top::Admin(AdminCmd::Passwd {
            current,
            password: new,
        }) => {
            let current = match current {
                Some(p) => p.clone(),
                None => password(None)?,
            };
            let new = match new {
                Some(p) => p.clone(),
                None => password(None)?,
            };
            let v = c.json(
                "PUT",
                "/admin/password",
                Some(json!({ "current": current, "password": new })),
            )?;
            report(cli.json, &v, |_: &Value| {
                println!("admin password changed; console sessions ended");
            });
        }
        Top::Smb(SmbCmd::Share(cmd)) => match cmd {
            ShareCmd::Add {
                name,
                volume,
                path,
                ro,
                users,
            } => {
                let v = c.json(
                    "POST",
                    "/smb/shares",
                    Some(json!({
                        "name": name, "volume": volume, "path": path, "read_only": ro,
                        "users": users,
                    })),
                )?;
                report(cli.json, &v, |v: &Value| {
                    println!(
                        "shared {}:{} as {}",
                        v["volume"].as_str().unwrap_or(""),
                        v["path"].as_str().unwrap_or(""),
                        v["name"].as_str().unwrap_or("")
                    );
                });
            }
            ShareCmd::Remove { name } => {
                let v = c.json("DELETE", &format!("/smb/shares/{name}"), None)?;
                report(cli.json, &v, |v: &Value| {
                    println!("removed SMB share {}", v["removed"].as_str().unwrap_or(""));
                });
            }
            ShareCmd::List => {
                let v = c.json("GET", "/smb/shares", None)?;
                report(cli.json, &v, |v: &Value| {
                    println!(
                        "{:<20} {:<12} {:<24} {:<6} USERS",
                        "SHARE", "VOLUME", "PATH", "ACCESS"
                    );
                    for s in v.as_array().cloned().unwrap_or_default() {
                        let users = strings(&s["users"]);
                        println!(
                            "{:<20} {:<12} {:<24} {:<6} {}",
                            s["name"].as_str().unwrap_or(""),
                            s["volume"].as_str().unwrap_or(""),
                            s["path"].as_str().unwrap_or(""),
                            if s["read_only"].as_bool() == Some(true) {
                                "ro"
                            } else {
                                "rw"
                            },
                            if users.is_empty() {
                                "*".to_string()
                            } else {
                                users.join(",")
                            }
                        );
                    }
                });
            }
        },
        Top::Smb(SmbCmd::User(cmd)) => match cmd {
            SmbUserCmd::Add { name, password: p } => {
                let v = c.json(
                    "POST",
                    "/smb/users",
                    Some(json!({ "name": name, "password": password(p.clone())? })),
                )?;
                report(cli.json, &v, |v: &Value| {
                    println!("added SMB user {}", v["name"].as_str().unwrap_or(""));
                });
            }
            SmbUserCmd::Passwd { name, password: p } => {
                let v = c.json(
                    "PUT",
                    &format!("/smb/users/{name}"),
                    Some(json!({ "password": password(p.clone())? })),
                )?;
                report(cli.json, &v, |_: &Value| {
                    println!("password of SMB user {name} set");
                });
            }
            SmbUserCmd::Remove { name } => {
                let v = c.json("DELETE", &format!("/smb/users/{name}"), None)?;
                report(cli.json, &v, |v: &Value| {
                    println!("removed SMB user {}", v["removed"].as_str().unwrap_or(""));
                });
            }
            SmbUserCmd::List => {
                let v = c.json("GET", "/smb/users", None)?;
                report(cli.json, &v, |v: &Value| {
                    println!("{:<32} UID", "USER");
                    for u in v.as_array().cloned().unwrap_or_default() {
                        println!(
                            "{:<32} {}",
                            u["name"].as_str().unwrap_or(""),
                            u["uid"].as_u64().unwrap_or(0)
                        );
                    }
                });
            }
        },
        Top::Nfs(NfsCmd::Export(cmd)) => match cmd {
            ExportCmd::Add {
                path,
                ro,
                root_squash,
                all_squash,
                anonuid,
                anongid,
                networks,
            } => {
                let v = c.json(
                    "POST",
                    "/nfs/exports",
                    Some(json!({
                        "path": path, "read_only": ro, "root_squash": root_squash,
                        "all_squash": all_squash, "anonuid": anonuid, "anongid": anongid,
                        "networks": networks,
                    })),
                )?;
                report(cli.json, &v, |v: &Value| {
                    println!("exported {}", v["path"].as_str().unwrap_or(""));
                });
            }
            ExportCmd::Remove { path } => {
                let v = c.json_query("DELETE", "/nfs/exports", &[("path", path)])?;
                report(cli.json, &v, |v: &Value| {
                    println!("removed NFS export {}", v["removed"].as_str().unwrap_or(""));
                });
            }
            ExportCmd::List => {
                let v = c.json("GET", "/nfs/exports", None)?;
                report(cli.json, &v, |v: &Value| {
                    println!("{:<32} {:<6} {:<12} NETWORKS", "PATH", "ACCESS", "SQUASH");
                    for e in v.as_array().cloned().unwrap_or_default() {
                        let squash = if e["all_squash"].as_bool() == Some(true) {
                            "all"
                        } else if e["root_squash"].as_bool() == Some(true) {
                            "root"
                        } else {
                            "none"
                        };
                        let nets = strings(&e["networks"]);
                        println!(
                            "{:<32} {:<6} {:<12} {}",
                            e["path"].as_str().unwrap_or(""),
                            if e["read_only"].as_bool() == Some(true) {
                                "ro"
                            } else {
                                "rw"
                            },
                            squash,
                            if nets.is_empty() {
                                "*".to_string()
                            } else {
                                nets.join(",")
                            }
                        );
                    }
                });
            }
        },
        Top::Volume(cmd) => match cmd {
            Vol::Create {
                name,
                args,
                replica,
                arbiter,
                force: _,
            } => {
                let (replica, arbiter, bricks) = layout_args(args, *replica, *arbiter)?;
                let v = c.json(
                    "POST",
                    "/volumes",
                    Some(json!({
                        "name": name, "bricks": bricks, "replica": replica, "arbiter": arbiter,
                    })),
                )?;
                report(cli.json, &v, |_: &Value| {
                    println!(
                        "volume create: {name}: success: please start the volume to access data"
                    )
                });
            }
            Vol::Import {
                name,
                args,
                replica,
                arbiter,
            } => {
                let (replica, arbiter, bricks) = layout_args(args, *replica, *arbiter)?;
                let v = c.json(
                    "POST",
                    "/volumes/import",
                    Some(json!({
                        "name": name, "bricks": bricks, "replica": replica, "arbiter": arbiter,
                    })),
                )?;
                report(cli.json, &v, |v: &Value| {
                    println!(
                        "volume import: {name}: success (volume id {})",
                        v["id"].as_str().unwrap_or("")
                    )
                });
            }
            Vol::Start { name } => {
                let v = c.json("POST", &format!("/volumes/{name}/start"), None)?;
                report(cli.json, &v, |_: &Value| {
                    println!("volume start: {name}: success")
                });
            }
            Vol::Stop { name } => {
                let v = c.json("POST", &format!("/volumes/{name}/stop"), None)?;
                report(cli.json, &v, |_: &Value| {
                    println!("volume stop: {name}: success")
                });
            }
            Vol::Delete { name } => {
                let v = c.json("DELETE", &format!("/volumes/{name}"), None)?;
                report(cli.json, &v, |_: &Value| {
                    println!("volume delete: {name}: success")
                });
            }
            Vol::Info { name } => {
                let vols = match name {
                    Some(n) => vec![c.json("GET", &format!("/volumes/{n}"), None)?],
                    None => c
                        .json("GET", "/volumes", None)?
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                };
                report(cli.json, &Value::Array(vols), |v: &Value| {
                    for v in v.as_array().into_iter().flatten() {
                        print_volume(v);
                        println!();
                    }
                });
            }
            Vol::List => {
                let v = c.json("GET", "/volumes", None)?;
                report(cli.json, &v, |v: &Value| {
                    for v in v.as_array().cloned().unwrap_or_default() {
                        println!("{}", v["name"].as_str().unwrap_or(""));
                    }
                });
            }
            Vol::Status { name } => {
                let v = c.json("GET", &format!("/volumes/{name}/status"), None)?;
                report(cli.json, &v, |v: &Value| {
                    println!("Status of volume: {name}");
                    println!(
                        "{:<40} {:>6} {:>7} {:>8} {:>8}",
                        "Brick", "Port", "Online", "Pid", "Restarts"
                    );
                    for b in v["bricks"].as_array().cloned().unwrap_or_default() {
                        let brick = format!(
                            "{}:{}",
                            b["host"].as_str().unwrap_or(""),
                            b["path"].as_str().unwrap_or("")
                        );
                        println!(
                            "{:<40} {:>6} {:>7} {:>8} {:>8}",
                            brick,
                            b["port"],
                            if b["online"].as_bool() == Some(true) {
                                "Y"
                            } else {
                                "N"
                            },
                            b["pid"]
                                .as_u64()
                                .map(|p| p.to_string())
                                .unwrap_or_else(|| "-".into()),
                            b["restarts"]
                        );
                    }
                });
            }
            Vol::Set { name, key, value } => {
                let v = c.json(
                    "PUT",
                    &format!("/volumes/{name}/options/{key}"),
                    Some(json!({ "value": value })),
                )?;
                report(cli.json, &v, |v: &Value| {
                    if v["restart_needed"].as_bool() == Some(true) {
                        println!("volume set: success (stop and start {name} to apply it)");
                    } else {
                        println!("volume set: success");
                    }
                });
            }
            Vol::Reset { name, key } => {
                let v = c.json("DELETE", &format!("/volumes/{name}/options/{key}"), None)?;
                report(cli.json, &v, |_: &Value| {
                    println!("volume reset: success");
                });
            }
            Vol::Heal { name, args } => {
                let words: Vec<&str> = args.iter().map(String::as_str).collect();
                let heal_path = format!("/volumes/{name}/heal");
                match words.as_slice() {
                    [] | ["full"] => {
                        let v = c.json(
                            "POST",
                            &heal_path,
                            Some(json!({ "full": words == ["full"] })),
                        )?;
                        report(cli.json, &v, |v: &Value| print_heal_info(v, false));
                    }
                    ["info"] => {
                        let v = c.json("GET", &heal_path, None)?;
                        report(cli.json, &v, |v: &Value| print_heal_info(v, false));
                    }
                    ["info", "split-brain"] => {
                        let v = c.json("GET", &heal_path, None)?;
                        report(cli.json, &v, |v: &Value| print_heal_info(v, true));
                    }
                    ["split-brain", policy, rest @ ..] => {
                        let (brick, path) = match (*policy, rest) {
                            ("source-brick", [b]) => (Some(*b), None),
                            ("source-brick", [b, p]) => (Some(*b), Some(*p)),
                            ("bigger-file" | "latest-mtime", [p]) => (None, Some(*p)),
                            _ => anyhow::bail!(
                                "usage: gwctl volume heal {name} split-brain {{bigger-file PATH | latest-mtime PATH | source-brick HOST:/BRICK [PATH]}}"
                            ),
                        };
                        let v = c.json(
                            "POST",
                            &format!("{heal_path}/split-brain"),
                            Some(json!({ "policy": policy, "brick": brick, "path": path })),
                        )?;
                        report(cli.json, &v, |v: &Value| {
                            for r in v.as_array().cloned().unwrap_or_default() {
                                println!(
                                    "{}: {}",
                                    r["path"].as_str().unwrap_or(""),
                                    r["result"].as_str().unwrap_or("")
                                );
                            }
                        });
                    }
                    _ => anyhow::bail!(
                        "usage: gwctl volume heal {name} [info | info split-brain | full | split-brain POLICY ...]"
                    ),
                }
            }
            Vol::Volfile { name } => {
                print!(
                    "{}",
                    c.call("GET", &format!("/volumes/{name}/volfile"), None)?
                        .into_string()?
                );
            }
        },
    }
    Ok(())
}

/// `heal info` as GlusterFS prints it: per brick its entries and count.
fn print_heal_info(v: &Value, split_only: bool) {
    for set in v["replica_sets"].as_array().cloned().unwrap_or_default() {
        let split: Vec<String> = set["split_brain"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e.as_str().map(str::to_string))
            .collect();
        for b in set["bricks"].as_array().cloned().unwrap_or_default() {
            println!("Brick {}", b["brick"].as_str().unwrap_or(""));
            if b["connected"] != true {
                println!("Status: Transport endpoint is not connected");
                println!("Number of entries: -\n");
                continue;
            }
            println!("Status: Connected");
            let entries: Vec<String> = b["entries"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect();
            let shown: Vec<&String> = entries
                .iter()
                .filter(|e| !split_only || split.contains(e))
                .collect();
            for e in &shown {
                if split.contains(e) {
                    println!("{e} - Is in split-brain");
                } else {
                    println!("{e}");
                }
            }
            println!("Number of entries: {}\n", shown.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn create_takes_glusterfs_layout_words() {
        let (r, a, b) = layout_args(&words("h:/a h:/b"), None, None).unwrap();
        assert_eq!((r, a, b.len()), (1, 0, 2));
        let (r, a, b) = layout_args(&words("replica 2 h:/a h:/b h:/c h:/d"), None, None).unwrap();
        assert_eq!((r, a), (2, 0));
        assert_eq!(b, words("h:/a h:/b h:/c h:/d"));
        let (r, a, b) = layout_args(
            &words("replica 3 arbiter 1 transport tcp h:/a h:/b h:/c force"),
            None,
            None,
        )
        .unwrap();
        assert_eq!((r, a, b.len()), (3, 1, 3));
        let (r, a, _) = layout_args(&words("h:/a h:/b h:/c"), Some(3), Some(1)).unwrap();
        assert_eq!((r, a), (3, 1));
        for bad in [
            "replica 1 h:/a",
            "replica h:/a",
            "replica 2",
            "arbiter 1 h:/a h:/b h:/c",
            "h:/a replica 2 h:/b",
            "disperse 3 h:/a h:/b h:/c",
            "transport rdma h:/a",
        ] {
            assert!(layout_args(&words(bad), None, None).is_err(), "{bad}");
        }
        assert!(layout_args(&words("replica 2 h:/a h:/b"), Some(2), None).is_err());
    }

    #[test]
    fn info_prints_glusterfs_shapes() {
        assert_eq!(type_label("distributed-replicate"), "Distributed-Replicate");
        assert_eq!(type_label("replicate"), "Replicate");
        assert_eq!(type_label("distribute"), "Distribute");
        assert_eq!(brick_count_label(4, 2, 0), "2 x 2 = 4");
        assert_eq!(brick_count_label(3, 3, 1), "1 x (2 + 1) = 3");
        assert_eq!(brick_count_label(4, 1, 0), "4");
    }
}
