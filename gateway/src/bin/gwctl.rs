//! gwctl: the command line of the gateway (GlusterFS's `gluster`), a client of its REST API.

use anyhow::{Context, bail};
use clap::{CommandFactory, Parser, Subcommand};
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "gwctl",
    about = "Manage a gatewayd: volumes, bricks, status",
    version
)]
struct Cli {
    /// API URL; else GWCTL_API, else DATA/api.url, else http://127.0.0.1:7070.
    #[arg(long, env = "GWCTL_API", global = true)]
    api: Option<String>,
    /// API token; else GWCTL_TOKEN, else DATA/admin.token.
    #[arg(long, env = "GWCTL_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// CA certificate (PEM) the API's HTTPS certificate must chain to; else
    /// DATA/tls/ca.pem when it exists (what `gatewayd up --tls` makes).
    #[arg(long, env = "GWCTL_CA_CERT", global = true)]
    ca_cert: Option<PathBuf>,
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
    /// `script`: never ask for confirmation (as gluster's --mode=script), for scripts.
    #[arg(long, global = true, value_enum)]
    mode: Option<Mode>,
    #[command(subcommand)]
    cmd: Top,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    /// Ask before destructive commands when on a terminal (the default).
    Interactive,
    /// Never ask; destructive commands go ahead.
    Script,
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
        /// The token's name: 1 to 64 letters, digits, '.', '_' or '-'.
        name: String,
    },
    /// List the tokens (names and when they were made, never the tokens).
    List,
    /// Revoke a token: requests carrying it are refused from then on.
    Delete {
        /// The token's name.
        name: String,
    },
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Change the admin password. Without flags, reads the current and the new password
    /// from the first two lines of standard input.
    Passwd {
        /// The current password (visible in the process list; prefer standard input).
        #[arg(long)]
        current: Option<String>,
        /// The new password, 10 characters or more (same caveat).
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
        /// The share's name, as clients see it (//HOST/NAME).
        name: String,
        /// The volume to share.
        #[arg(long)]
        volume: String,
        /// The directory in the volume to share.
        #[arg(long, default_value = "/")]
        path: String,
        /// Clients may read only.
        #[arg(long)]
        ro: bool,
        /// A user allowed to connect (repeatable); none allows every SMB user.
        #[arg(long = "user")]
        users: Vec<String>,
    },
    /// Stop sharing (the files stay in the volume).
    Remove {
        /// The share's name.
        name: String,
    },
    /// List the shares.
    List,
}

#[derive(Subcommand)]
enum SmbUserCmd {
    /// Add a user. The password comes from --password, else the first line of standard input.
    Add {
        /// The user's name.
        name: String,
        /// Visible to other local users in the process list; prefer standard input.
        #[arg(long)]
        password: Option<String>,
    },
    /// Set a user's password (same sources as `add`).
    Passwd {
        /// The user's name.
        name: String,
        /// The new password (visible to other local users in the process list).
        #[arg(long)]
        password: Option<String>,
    },
    /// Remove a user (not while a share lists it).
    Remove {
        /// The user's name.
        name: String,
    },
    /// List the users.
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

/// A key's rights on one bucket, as Garage's `bucket allow`.
#[derive(clap::Args)]
struct GrantArgs {
    /// The bucket.
    #[arg(long)]
    bucket: Option<String>,
    /// List and read its objects.
    #[arg(long, requires = "bucket")]
    read: bool,
    /// Write and delete its objects.
    #[arg(long, requires = "bucket")]
    write: bool,
    /// Change its settings (ACLs, policy) and delete it, as its owner may.
    #[arg(long, requires = "bucket")]
    owner: bool,
}

impl GrantArgs {
    fn json(&self) -> Option<Value> {
        self.bucket.as_ref().map(
            |b| json!({ "bucket": b, "read": self.read, "write": self.write, "owner": self.owner }),
        )
    }
}

#[derive(Subcommand)]
enum NfsCmd {
    /// Exports of volumes and of directories in them.
    #[command(subcommand)]
    Export(ExportCmd),
}

#[derive(Subcommand)]
enum ExportCmd {
    /// Export /VOLUME or /VOLUME/DIR (replacing an export of the same path); DIR must exist
    /// in the volume, which must be started.
    Add {
        /// /VOLUME or /VOLUME/DIR.
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
        /// The uid squashed callers act as.
        #[arg(long, default_value_t = 65534)]
        anonuid: u32,
        /// The gid squashed callers act as.
        #[arg(long, default_value_t = 65534)]
        anongid: u32,
        /// A client network allowed to mount and use the export (repeatable); none allows all.
        #[arg(long = "network")]
        networks: Vec<String>,
    },
    /// Remove an export added with `add` (a volume's own export returns to its default).
    Remove {
        /// The export's path.
        path: String,
    },
    /// List the exports, the volumes' defaults among them.
    List,
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Make a key; its secret is shown this once. A key makes and uses its own buckets;
    /// --bucket lets it use one it does not own, --admin every one.
    Create {
        /// The key's name (its display name in S3): letters, digits, '-' and '_'.
        name: String,
        /// Sees and may do everything, on every bucket.
        #[arg(long)]
        admin: bool,
        /// Its address, for grants by email in S3 ACLs.
        #[arg(long)]
        email: Option<String>,
        /// The uid (and --gid, default the same) owning the buckets it makes, so FUSE, NFS
        /// and SMB users see them as that user's.
        #[arg(long)]
        uid: Option<u32>,
        /// The gid owning its buckets (default: the uid).
        #[arg(long, requires = "uid")]
        gid: Option<u32>,
        #[command(flatten)]
        grant: GrantArgs,
    },
    /// Let a key use a bucket it does not own (replaces its grant on that bucket).
    Allow {
        /// Key name or access key id.
        name: String,
        #[command(flatten)]
        grant: GrantArgs,
    },
    /// Take back a key's grant on a bucket.
    Deny {
        /// Key name or access key id.
        name: String,
        /// The bucket whose grant goes.
        #[arg(long)]
        bucket: String,
    },
    /// The keys, whether each is an admin, and their grants (never the secrets).
    List,
    /// Delete a key by name or access key id; requests signed with it fail from then on.
    Delete {
        /// Key name or access key id.
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
        /// The volume's name: letters, digits, '-' and '_'.
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
        /// The volume's name (GlusterFS's, so linkto files keep pointing right).
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
    /// Start a volume: its bricks, its client graph and its exports.
    Start {
        /// The volume.
        name: String,
    },
    /// Stop a volume: clients lose it until it starts again; the data stays.
    Stop {
        /// The volume.
        name: String,
    },
    /// Forget a stopped volume (its bricks stay on disk). Asks first on a terminal; without
    /// one, refuses unless given --yes or --mode=script.
    Delete {
        /// The volume.
        name: String,
        /// Do not ask.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// A volume's layout, bricks and options (every volume without NAME), as gluster prints it.
    Info {
        /// The volume; all of them if left out.
        name: Option<String>,
    },
    /// Per brick: port, online, pid, restarts (`detail`: and disk space); every volume
    /// without NAME.
    #[command(override_usage = "gwctl volume status [NAME [detail]]")]
    Status {
        /// The volume; all of them if left out.
        name: Option<String>,
        /// `detail`: each brick's disk space, replica set and arbiter role too.
        #[arg(value_parser = ["detail"])]
        detail: Option<String>,
    },
    /// List the volumes' names.
    List,
    /// Set an option (cluster.* apply when the volume next starts; nfs.disable at once).
    /// `gwctl volume set help` lists the options with their defaults.
    #[command(override_usage = "gwctl volume set NAME KEY VALUE\n       gwctl volume set help")]
    Set {
        /// The volume (or `help`: list the options).
        name: String,
        /// The option, e.g. cluster.lookup-unhashed.
        key: Option<String>,
        /// Its new value.
        value: Option<String>,
    },
    /// Print options with the values the volume runs with: `all`, or one KEY.
    #[command(override_usage = "gwctl volume get NAME [all | KEY]")]
    Get {
        /// The volume.
        name: String,
        /// `all` (the default) or one option.
        #[arg(default_value = "all")]
        key: String,
    },
    /// Reset an option to its default.
    Reset {
        /// The volume.
        name: String,
        /// The option.
        key: String,
    },
    /// Print the client volfile.
    Volfile {
        /// The volume.
        name: String,
    },
    /// Self-heal of a replicated volume: heal now (no argument), `info` (what each brick's
    /// index lists, and split-brains), `full` (crawl the whole tree), or
    /// `split-brain bigger-file PATH | latest-mtime PATH | source-brick HOST:/BRICK [PATH]`.
    #[command(
        override_usage = "gwctl volume heal VOL [info | full | split-brain {bigger-file PATH | latest-mtime PATH | source-brick HOST:/BRICK [PATH]}]"
    )]
    Heal {
        /// The volume.
        name: String,
        /// info | info split-brain | full | split-brain POLICY [BRICK] [PATH].
        args: Vec<String>,
    },
}

struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
    /// The CA file trusted for HTTPS, if any (named when a TLS error needs explaining).
    ca: Option<PathBuf>,
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
        let ca = gateway::tls::client_ca(cli.ca_cert.clone(), &cli.data);
        let agent = gateway::tls::http_agent(ca.as_deref())
            .context("the CA of the API's HTTPS certificate (--ca-cert)")?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            agent,
            ca,
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

    /// A call the API answers with a job (volume start and stop, heal): follows the job to
    /// its end, showing its progress once it has run a second, and returns its result.
    fn job(&self, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let job = self.json("POST", path, body)?;
        follow_job(self, job)
    }
}

/// Polls a job until it ends. Its progress shows once it has run for a second: a progress bar
/// when standard error is a terminal, else a plain line each time what it does changes (and
/// every 10 s while it does not).
fn follow_job(c: &Client, mut job: Value) -> anyhow::Result<Value> {
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

/// `volume status` as gluster prints it: a table of bricks, or with `detail` a block per brick.
fn print_status(v: &Value, detail: bool) {
    let name = v["name"].as_str().unwrap_or("");
    let rule = "-".repeat(78);
    println!("Status of volume: {name}");
    if v["started"].as_bool() == Some(false) {
        println!("Volume {name} is not started");
        return;
    }
    let bricks = v["bricks"].as_array().cloned().unwrap_or_default();
    let brick_name = |b: &Value| {
        format!(
            "{}:{}",
            b["host"].as_str().unwrap_or(""),
            b["path"].as_str().unwrap_or("")
        )
    };
    let online = |b: &Value| {
        if b["online"].as_bool() == Some(true) {
            "Y"
        } else {
            "N"
        }
    };
    let pid = |b: &Value| {
        b["pid"]
            .as_u64()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "N/A".into())
    };
    if !detail {
        println!(
            "{:<40} {:>6} {:>7} {:>8} {:>8}",
            "Brick", "Port", "Online", "Pid", "Restarts"
        );
        for b in &bricks {
            println!(
                "{:<40} {:>6} {:>7} {:>8} {:>8}",
                brick_name(b),
                b["port"].as_u64().unwrap_or(0),
                online(b),
                pid(b),
                b["restarts"].as_u64().unwrap_or(0)
            );
        }
        return;
    }
    let size = |k: &str, b: &Value| {
        b[k].as_u64()
            .map(human_size)
            .unwrap_or_else(|| "N/A".into())
    };
    println!("{rule}");
    for b in &bricks {
        let role = if b["arbiter"].as_bool() == Some(true) {
            " (arbiter)"
        } else {
            ""
        };
        println!("{:<21}: Brick {}", "Brick", brick_name(b));
        println!("{:<21}: {}", "TCP Port", b["port"]);
        println!("{:<21}: {}", "Online", online(b));
        println!("{:<21}: {}", "Pid", pid(b));
        println!("{:<21}: {}", "Restarts", b["restarts"]);
        println!("{:<21}: {}{role}", "Replica Set", b["replica_set"]);
        println!("{:<21}: {}", "Disk Space Free", size("free_bytes", b));
        println!("{:<21}: {}", "Total Disk Space", size("total_bytes", b));
        println!("{rule}");
    }
}

/// A byte count as gluster prints disk space: 1024-based, one decimal (`33.9GB`).
fn human_size(n: u64) -> String {
    let units = ["Bytes", "KB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}{}", units[0])
    } else {
        format!("{v:.1}{}", units[i])
    }
}

/// `volume set help` as gluster prints it: each option with its default and description.
fn print_set_help(v: &Value) {
    for o in v.as_array().into_iter().flatten() {
        println!("Option: {}", o["key"].as_str().unwrap_or(""));
        println!(
            "Default Value: {}",
            o["default"].as_str().unwrap_or("(null)")
        );
        println!("Values: {}", o["kind"].as_str().unwrap_or(""));
        println!(
            "Description: {}{}",
            o["description"].as_str().unwrap_or(""),
            if o["applies"] == "now" {
                " (applies at once)"
            } else {
                " (applies when the volume next starts)"
            }
        );
        println!();
    }
}

/// Asks `question` on the terminal unless `given` (--yes or --mode=script); without a
/// terminal to ask on, refuses, as gluster does outside --mode=script.
fn confirm(given: bool, question: &str, what: &str) -> anyhow::Result<()> {
    if given {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("{what}: not confirmed: no terminal to ask on; pass --yes (or --mode=script)");
    }
    eprint!("{question} (y/n) ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the answer")?;
    if matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        bail!("{what}: cancelled")
    }
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-05-02T10:11:12Z`), for human output; --json
/// keeps the numbers.
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days: days since 1970-01-01 to a proleptic Gregorian date.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// clap answers a mistyped subcommand with a similar one (`gwctl volume top`: "a similar
/// subcommand exists: 'stop'"); for commands that stop or delete things that is a risky tip, so
/// subcommand errors are shown without suggestions.
fn without_suggestions(e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ErrorKind};
    if e.kind() != ErrorKind::InvalidSubcommand {
        return e;
    }
    let mut plain = clap::Error::new(ErrorKind::InvalidSubcommand).with_cmd(&Cli::command());
    for (k, v) in e.context() {
        if !matches!(k, ContextKind::SuggestedSubcommand | ContextKind::Suggested) {
            plain.insert(k, v.clone());
        }
    }
    plain
}

fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|e| without_suggestions(e).exit());
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
                    // `at` is in microseconds since the epoch.
                    let at = a["at"].as_u64().map(|us| rfc3339(us / 1_000_000));
                    println!(
                        "{}  {}",
                        at.as_deref().unwrap_or("-"),
                        a["what"].as_str().unwrap_or("")
                    );
                }
            });
        }
        Top::S3(S3Cmd::Key(cmd)) => match cmd {
            KeyCmd::Create {
                name,
                admin,
                email,
                uid,
                gid,
                grant,
            } => {
                let body = json!({
                    "name": name, "admin": admin, "email": email, "uid": uid, "gid": gid,
                    "grants": grant.json().into_iter().collect::<Vec<_>>(),
                });
                let v = c.json("POST", "/s3/keys", Some(body))?;
                report(cli.json, &v, |v: &Value| {
                    println!("name:         {}", v["name"].as_str().unwrap_or(""));
                    println!("access key:   {}", v["access_key"].as_str().unwrap_or(""));
                    println!("secret key:   {}", v["secret_key"].as_str().unwrap_or(""));
                    println!("canonical id: {}", v["canonical_id"].as_str().unwrap_or(""));
                    println!("(the secret is not shown again)");
                });
            }
            KeyCmd::Allow { name, grant } => {
                let Some(body) = grant.json() else {
                    bail!("give the bucket: --bucket B with --read, --write or --owner");
                };
                let v = c.json("POST", &format!("/s3/keys/{name}/grants"), Some(body))?;
                report(cli.json, &v, print_key_rights);
            }
            KeyCmd::Deny { name, bucket } => {
                let v = c.json("DELETE", &format!("/s3/keys/{name}/grants/{bucket}"), None)?;
                report(cli.json, &v, print_key_rights);
            }
            KeyCmd::List => {
                let v = c.json("GET", "/s3/keys", None)?;
                report(cli.json, &v, |v: &Value| {
                    println!("{:<24} {:<22} {:<6} CREATED", "NAME", "ACCESS KEY", "ADMIN");
                    for k in v.as_array().cloned().unwrap_or_default() {
                        println!(
                            "{:<24} {:<22} {:<6} {}",
                            k["name"].as_str().unwrap_or(""),
                            k["access_key"].as_str().unwrap_or(""),
                            if k["admin"].as_bool() == Some(true) {
                                "yes"
                            } else {
                                "no"
                            },
                            k["created"]
                        );
                        print_grants(&k);
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
                            t["created"].as_u64().map(rfc3339).unwrap_or_default()
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
                force,
            } => {
                let (replica, arbiter, bricks) = layout_args(args, *replica, *arbiter)?;
                // GlusterFS's trailing `force`, or --force.
                let force = *force || args.last().is_some_and(|a| a == "force");
                let v = c.json(
                    "POST",
                    "/volumes",
                    Some(json!({
                        "name": name, "bricks": bricks, "replica": replica, "arbiter": arbiter,
                        "force": force,
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
                let v = c.job(&format!("/volumes/{name}/start"), None)?;
                report(cli.json, &v, |v: &Value| print_started(name, v));
            }
            Vol::Stop { name } => {
                let v = c.job(&format!("/volumes/{name}/stop"), None)?;
                report(cli.json, &v, |_: &Value| {
                    println!("volume stop: {name}: success")
                });
            }
            Vol::Delete { name, yes } => {
                confirm(
                    *yes || cli.mode == Some(Mode::Script),
                    &format!(
                        "Deleting volume {name} erases what gatewayd knows of it (its bricks stay on disk). Do you want to continue?"
                    ),
                    &format!("volume delete: {name}"),
                )?;
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
            Vol::Status { name, detail } => {
                let names: Vec<String> = match name {
                    Some(n) => vec![n.clone()],
                    None => c
                        .json("GET", "/volumes", None)?
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v["name"].as_str().map(String::from))
                        .collect(),
                };
                let mut all = Vec::new();
                for n in &names {
                    all.push(c.json("GET", &format!("/volumes/{n}/status"), None)?);
                }
                if cli.json {
                    // One volume's status as before; every volume's as an array.
                    let v = if name.is_some() {
                        all.pop().unwrap_or_default()
                    } else {
                        Value::Array(all)
                    };
                    report(true, &v, |_: &Value| {});
                } else if all.is_empty() {
                    println!("No volumes present");
                } else {
                    for (i, v) in all.iter().enumerate() {
                        if i > 0 {
                            println!();
                        }
                        print_status(v, detail.is_some());
                    }
                }
            }
            Vol::Set { name, key, value } => {
                if name == "help" && key.is_none() {
                    let v = c.json("GET", "/options", None)?;
                    report(cli.json, &v, print_set_help);
                    return Ok(());
                }
                let (Some(key), Some(value)) = (key, value) else {
                    bail!(
                        "usage: gwctl volume set {name} KEY VALUE (gwctl volume set help lists the options)"
                    );
                };
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
            Vol::Get { name, key } => {
                let v = c.json("GET", &format!("/volumes/{name}/options"), None)?;
                let all = v.as_array().cloned().unwrap_or_default();
                let shown: Vec<Value> = if key == "all" {
                    all
                } else {
                    let full = if key.contains('.') {
                        key.clone()
                    } else {
                        format!("cluster.{key}")
                    };
                    let one: Vec<Value> = all.into_iter().filter(|o| o["key"] == *full).collect();
                    if one.is_empty() {
                        bail!(
                            "volume get: {name}: no option {key} (gwctl volume set help lists them)"
                        );
                    }
                    one
                };
                report(cli.json, &Value::Array(shown), |v: &Value| {
                    println!("{:<40}Value", "Option");
                    println!("{:<40}-----", "------");
                    for o in v.as_array().into_iter().flatten() {
                        println!(
                            "{:<40}{}",
                            o["key"].as_str().unwrap_or(""),
                            o["value"].as_str().unwrap_or("(null)")
                        );
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
                        let v = c.job(&heal_path, Some(json!({ "full": words == ["full"] })))?;
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

/// What `volume start` did: success, and how many bricks answer; the bricks that do not are
/// named with why (on standard error: the volume started, but not whole).
fn print_started(name: &str, r: &Value) {
    let online = r["bricks_online"].as_u64().unwrap_or(0);
    let total = r["bricks_total"].as_u64().unwrap_or(0);
    println!("volume start: {name}: success: {online} of {total} bricks online");
    let offline = r["offline"].as_array().cloned().unwrap_or_default();
    for o in &offline {
        eprintln!(
            "Brick {} ({}) is not online: {}",
            o["brick"].as_str().unwrap_or(""),
            o["name"].as_str().unwrap_or(""),
            o["reason"].as_str().unwrap_or("")
        );
    }
    if !offline.is_empty() {
        eprintln!(
            "volume {name} serves what its online bricks hold; the others join when they answer (gwctl volume status {name})"
        );
    }
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

/// A key's grants, one line per bucket, indented under the key.
fn print_grants(k: &Value) {
    for g in k["grants"].as_array().cloned().unwrap_or_default() {
        let rights: Vec<&str> = ["read", "write", "owner"]
            .into_iter()
            .filter(|r| g[*r].as_bool() == Some(true))
            .collect();
        println!(
            "    bucket {}: {}",
            g["bucket"].as_str().unwrap_or(""),
            rights.join(", ")
        );
    }
}

fn print_key_rights(k: &Value) {
    println!(
        "S3 key {} ({}){}",
        k["name"].as_str().unwrap_or(""),
        k["access_key"].as_str().unwrap_or(""),
        if k["admin"].as_bool() == Some(true) {
            ": admin, every bucket"
        } else {
            ""
        }
    );
    print_grants(k);
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

    #[test]
    fn every_command_and_option_has_a_help_line() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if !matches!(id, "help" | "version") && a.get_help().is_none() {
                    missing.push(format!("{path} <{id}>"));
                }
            }
            for sub in cmd.get_subcommands() {
                let p = format!("{path} {}", sub.get_name());
                if sub.get_name() == "help" {
                    continue;
                }
                if sub.get_about().is_none() {
                    missing.push(p.clone());
                }
                walk(sub, &p, missing);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "gwctl", &mut missing);
        assert!(missing.is_empty(), "no help line: {missing:?}");
    }

    #[test]
    fn typos_get_no_subcommand_suggestions() {
        for args in [
            &["gwctl", "volume", "top", "vol"][..],
            &["gwctl", "volume", "delet", "vol"],
            &["gwctl", "stop"],
        ] {
            let e = Cli::try_parse_from(args).err().expect("a typo parses");
            let text = without_suggestions(e).render().to_string();
            assert!(text.contains("unrecognized subcommand"), "{text}");
            assert!(!text.contains("similar"), "{args:?} suggests: {text}");
            assert!(!text.contains("tip:"), "{text}");
        }
        // Other errors are left as clap words them.
        let e = Cli::try_parse_from(["gwctl", "volume", "delete"])
            .err()
            .unwrap();
        assert!(without_suggestions(e).render().to_string().contains("NAME"));
    }

    #[test]
    fn status_and_get_take_glusterfs_words() {
        let c = Cli::try_parse_from(["gwctl", "volume", "status"]).unwrap();
        assert!(matches!(
            c.cmd,
            Top::Volume(Vol::Status {
                name: None,
                detail: None
            })
        ));
        let c = Cli::try_parse_from(["gwctl", "volume", "status", "vol", "detail"]).unwrap();
        assert!(matches!(
            c.cmd,
            Top::Volume(Vol::Status {
                name: Some(_),
                detail: Some(_)
            })
        ));
        assert!(Cli::try_parse_from(["gwctl", "volume", "status", "vol", "details"]).is_err());
        let c = Cli::try_parse_from(["gwctl", "volume", "get", "vol"]).unwrap();
        assert!(matches!(c.cmd, Top::Volume(Vol::Get { key, .. }) if key == "all"));
        let c = Cli::try_parse_from(["gwctl", "volume", "set", "help"]).unwrap();
        assert!(matches!(c.cmd, Top::Volume(Vol::Set { key: None, .. })));
        let c = Cli::try_parse_from(["gwctl", "--mode=script", "volume", "delete", "v"]).unwrap();
        assert!(c.mode == Some(Mode::Script));
        let c = Cli::try_parse_from(["gwctl", "volume", "delete", "v", "--yes"]).unwrap();
        assert!(matches!(c.cmd, Top::Volume(Vol::Delete { yes: true, .. })));
    }

    #[test]
    fn times_print_as_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(human_size(512), "512Bytes");
        assert_eq!(human_size(3 << 30), "3.0GB");
        assert_eq!(human_size(1536), "1.5KB");
    }
}
