//! gatewayd: the management daemon and data gateway.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use engine::graph::Graph;
use engine::registry::Registry;
use gateway::config::GatewayConfig;
use gateway::daemon::{Daemon, terminated};
use gateway::mounts::clear_stale_mount;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "gatewayd",
    about = "GlusterFS-style multi-protocol storage gateway",
    version
)]
struct Cli {
    /// What to log: a level (error, warn, info, debug, trace) or tracing directives.
    #[arg(long, global = true, default_value = "info", env = "GATEWAYD_LOG")]
    log_level: String,
    #[command(subcommand)]
    cmd: Cmd,
}

/// `gatewayd up`'s arguments (boxed in [`Cmd`]: they outweigh the other commands').
#[derive(clap::Args)]
struct UpArgs {
    /// Where state, secrets, logs and the bricks live.
    #[arg(long, default_value = "/var/lib/gatewayd")]
    data: PathBuf,
    /// FUSE-mount the volume here.
    #[arg(long)]
    mount: Option<PathBuf>,
    /// REST API address (port 0 picks a free one; see DATA/api.url).
    #[arg(long, default_value = "127.0.0.1:7070")]
    api: SocketAddr,
    /// Number of bricks of a new default volume.
    #[arg(long, default_value_t = 4)]
    bricks: usize,
    /// Bricks per replica set of a new default volume (consecutive bricks form a set);
    /// 1 makes a plain distribute volume. A volume that exists keeps its layout.
    #[arg(long, default_value_t = 2)]
    replica: usize,
    /// Seconds without an answer before a brick counts as down.
    #[arg(long)]
    ping_timeout: Option<u64>,
    /// S3 endpoint address (port 0 picks a free one; see DATA/s3.url); `off` disables S3.
    #[arg(long, default_value = "127.0.0.1:9000")]
    s3: String,
    /// Base domain for virtual-host-style S3 requests (BUCKET.<domain>).
    #[arg(long, default_value = "localhost")]
    s3_domain: String,
    /// NFSv3 and MOUNT address (port 0 picks a free one; see DATA/nfs.addr); `off`
    /// disables NFS.
    #[arg(long, default_value = "127.0.0.1:2049")]
    nfs: String,
    /// Register NFS and MOUNT with the local rpcbind when it runs (`on` or `off`).
    #[arg(long, default_value = "on")]
    rpcbind: String,
    /// Address Samba's smbd serves the SMB shares on (port 0 picks a free one; see
    /// DATA/smb.addr); `off` disables SMB. smbd runs only while a share exists.
    #[arg(long, default_value = "127.0.0.1:445")]
    smb: String,
    /// A file holding the console's admin password (at least 10 characters), applied at
    /// every start; without it the first start makes one and prints it once.
    #[arg(long)]
    admin_password_file: Option<PathBuf>,
    /// TLS everywhere: make a cluster CA and a certificate for this host in DATA/tls (once;
    /// later starts reuse them), serve the API and S3 over HTTPS with it, and turn on TLS
    /// on the default volume's brick RPC (transport.socket.ssl-enabled) unless it was set.
    #[arg(long)]
    tls: bool,
    /// HTTPS for the API and console with this certificate (PEM chain); needs
    /// --api-tls-key. Replaces what --tls makes for the API.
    #[arg(long, requires = "api_tls_key")]
    api_tls_cert: Option<PathBuf>,
    #[arg(long, requires = "api_tls_cert")]
    api_tls_key: Option<PathBuf>,
    /// HTTPS for S3 with this certificate (PEM chain); needs --s3-tls-key.
    #[arg(long, requires = "s3_tls_key")]
    s3_tls_cert: Option<PathBuf>,
    #[arg(long, requires = "s3_tls_cert")]
    s3_tls_key: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Set up (first run) and run the embedded default: volume `vol` over local bricks
    /// (2 x 2 distributed-replicate unless --bricks/--replica say otherwise).
    Up(Box<UpArgs>),
    /// Run the daemon from a configuration file.
    Serve {
        /// gateway.toml; without it, the defaults.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Set a new random password for the console's `admin` and print it once (run as root on
    /// the gateway's host, with gatewayd running or stopped); console sessions end.
    ResetAdmin {
        /// The gateway's data directory.
        #[arg(long, default_value = "/var/lib/gatewayd")]
        data: PathBuf,
    },
    /// Native client: fetch a volume's volfile from a gateway and FUSE-mount it.
    Mount {
        /// The gateway's API URL; else DATA/api.url, else http://127.0.0.1:7070.
        #[arg(long, env = "GWCTL_API")]
        server: Option<String>,
        /// API token; else DATA/admin.token. Its value is never shown in --help.
        #[arg(long, env = "GWCTL_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Data directory of the gateway, to find api.url and admin.token.
        #[arg(long, env = "GWCTL_DATA", default_value = "/var/lib/gatewayd")]
        data: PathBuf,
        /// CA certificate (PEM) the API's HTTPS certificate must chain to; else
        /// DATA/tls/ca.pem when it exists.
        #[arg(long, env = "GWCTL_CA_CERT")]
        ca_cert: Option<PathBuf>,
        /// The volume to mount.
        volume: String,
        /// The mount point.
        dir: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Colours only for a person at a terminal: a log file or the journal gets plain text.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log_level))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.cmd {
        Cmd::Up(a) => {
            let UpArgs {
                data,
                mount,
                api,
                bricks,
                replica,
                ping_timeout,
                s3,
                s3_domain,
                nfs,
                rpcbind,
                smb,
                admin_password_file,
                tls,
                api_tls_cert,
                api_tls_key,
                s3_tls_cert,
                s3_tls_key,
            } = *a;
            rt.block_on(up(
                data,
                mount,
                api,
                (bricks, replica),
                ping_timeout,
                Endpoints {
                    s3,
                    s3_domain,
                    nfs,
                    rpcbind,
                    smb,
                    admin_password_file,
                    tls,
                    api_tls: api_tls_cert.zip(api_tls_key),
                    s3_tls: s3_tls_cert.zip(s3_tls_key),
                },
            ))
        }
        Cmd::Serve { config } => rt.block_on(serve(config)),
        Cmd::ResetAdmin { data } => reset_admin(&data),
        Cmd::Mount {
            server,
            token,
            data,
            ca_cert,
            volume,
            dir,
        } => rt.block_on(native_mount(server, token, data, ca_cert, volume, dir)),
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The protocol endpoints `gatewayd up` serves, as given on its command line.
struct Endpoints {
    s3: String,
    s3_domain: String,
    nfs: String,
    rpcbind: String,
    smb: String,
    admin_password_file: Option<PathBuf>,
    /// `--tls`: the cluster's own certificates for everything.
    tls: bool,
    /// Certificate and key given for the API and for S3.
    api_tls: Option<(PathBuf, PathBuf)>,
    s3_tls: Option<(PathBuf, PathBuf)>,
}

async fn up(
    data: PathBuf,
    mount: Option<PathBuf>,
    api: SocketAddr,
    (bricks, replica): (usize, usize),
    ping: Option<u64>,
    ends: Endpoints,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    let data = data.canonicalize()?;
    let addr = |flag: &str, v: &str, example: &str| -> anyhow::Result<Option<SocketAddr>> {
        match v {
            "off" | "" => Ok(None),
            a => Ok(Some(a.parse::<SocketAddr>().with_context(|| {
                format!("--{flag} {a}: not an address like {example}")
            })?)),
        }
    };
    let mut cfg = GatewayConfig {
        data_dir: data.clone(),
        api_listen: api,
        s3_listen: addr("s3", &ends.s3, "127.0.0.1:9000")?,
        nfs_listen: addr("nfs", &ends.nfs, "127.0.0.1:2049")?,
        smb_listen: addr("smb", &ends.smb, "127.0.0.1:445")?,
        admin_password_file: ends.admin_password_file.clone(),
        nfs_rpcbind: match ends.rpcbind.as_str() {
            "on" => true,
            "off" => false,
            o => bail!("--rpcbind {o}: on or off"),
        },
        s3_volume: "vol".into(),
        s3_domain: (!ends.s3_domain.is_empty()).then_some(ends.s3_domain),
        ..Default::default()
    };
    if let Some(p) = ping {
        cfg.ping_timeout = p;
    }
    let mut ca_file = None;
    if ends.tls {
        // The names clients reach us by go into the certificate besides this host's own.
        let names: Vec<String> = [Some(cfg.api_listen), cfg.s3_listen]
            .into_iter()
            .flatten()
            .map(|a| a.ip().to_string())
            .chain([cfg.brick_listen_host.clone()])
            .collect();
        let (m, made) = gateway::tls::ensure_material(&data, &names)
            .context("making the TLS certificates (--tls)")?;
        if made {
            tracing::info!(ca = %m.ca.display(), "new cluster CA and node certificate");
        }
        cfg.api_tls_cert = Some(m.cert.clone());
        cfg.api_tls_key = Some(m.key.clone());
        cfg.s3_tls_cert = Some(m.cert.clone());
        cfg.s3_tls_key = Some(m.key.clone());
        ca_file = Some(m.ca);
    }
    if let Some((c, k)) = ends.api_tls {
        cfg.api_tls_cert = Some(c);
        cfg.api_tls_key = Some(k);
    }
    if let Some((c, k)) = ends.s3_tls {
        cfg.s3_tls_cert = Some(c);
        cfg.s3_tls_key = Some(k);
    }
    let cfg_for_mount = cfg.clone();
    let d = Daemon::start(cfg).await?;
    let m = d.manager.clone();
    // Said before anything below can fail, so a first start's console password is never lost.
    say(&format!(
        "console and REST API: {}/  (admin token in {})",
        d.api_url,
        d.token_file.display()
    ));
    if let Some(p) = &d.new_admin_password {
        say(&format!(
            "console login: admin / {p}  (shown this once; change it with gwctl admin passwd, or set a new one with gatewayd reset-admin)"
        ));
    }
    if m.get("vol").is_err() {
        if let Err(e) = check_default_layout(bricks, replica) {
            d.shutdown().await;
            return Err(e);
        }
        let specs: Vec<String> = (1..=bricks)
            .map(|i| {
                format!(
                    "127.0.0.1:{}",
                    data.join("bricks").join(format!("b{i}")).display()
                )
            })
            .collect();
        // `force`: the bricks' parent, DATA/bricks, is ours to make.
        let v = m
            .create("vol", &specs, replica, 0, true)
            .await
            .context("creating the default volume")?;
        let shape = if replica > 1 {
            format!("{} x {replica} = {bricks}", bricks / replica)
        } else {
            bricks.to_string()
        };
        say(&format!(
            "created volume vol ({}, {shape} bricks) in {}",
            v.kind,
            data.join("bricks").display()
        ));
    }
    if let Some(ca) = &ca_file {
        // Where the CA is, never a key: clients need the CA to trust us.
        say(&format!(
            "TLS: CA certificate {}  (gwctl --ca-cert, aws --ca-bundle, curl --cacert)",
            ca.display()
        ));
        let v = m.get("vol")?;
        if !v.options.contains_key(gateway::volume::SSL_ENABLED) {
            m.set_option("vol", gateway::volume::SSL_ENABLED, Some("on"))
                .await
                .context("turning on TLS for vol's bricks")?;
            say("TLS: on for the brick RPC of vol (transport.socket.ssl-enabled)");
        }
    }
    // vol, and every other volume the state says is started.
    start_volumes(&m, &["vol"]).await?;
    let mut handle = None;
    if let Some(mp) = &mount {
        clear_stale_mount(mp);
        std::fs::create_dir_all(mp)
            .with_context(|| format!("creating mount point {}", mp.display()))?;
        // The mount follows vol's current graph: it survives `volume stop` + `volume start`.
        let h = protocols_fuse::mount(
            gateway::mounts::VolumeTop::top_of(&m, "vol"),
            mp,
            cfg_for_mount.fuse_options("vol", "fuse"),
            tokio::runtime::Handle::current(),
        )
        .with_context(|| format!("FUSE-mounting vol at {}", mp.display()))?;
        if let Some(inv) = h.invalidator() {
            gateway::mounts::follow_upcalls(&m, "vol", inv);
        }
        say(&format!("volume vol mounted at {}", mp.display()));
        handle = Some(h);
    }
    if let Some(url) = &d.s3_url {
        let keys = m.store.s3_keys()?;
        let key = match keys.into_iter().find(|k| k.name == "admin") {
            Some(k) => k,
            None => gateway::s3::create_key(
                &m.store,
                "admin",
                gateway::s3::KeyOptions {
                    admin: true,
                    ..Default::default()
                },
            )?,
        };
        // Environment variables, not `aws configure set`, which would overwrite the user's
        // default profile.
        say(&format!(
            "S3: {url}  buckets = top-level directories of vol\n  export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_DEFAULT_REGION=us-east-1\n  aws --endpoint-url {url} s3 ls\n  (or keep them in a profile of their own: aws configure --profile gateway, then aws --profile gateway --endpoint-url {url} s3 ls)",
            key.access_key, key.secret_key
        ));
    }
    if let Some(a) = &d.nfs_addr {
        say(&format!(
            "NFSv3: {a} exports /vol (MOUNT on the same port)\n  nfs-ls 'nfs://{}/vol/?version=3&nfsport={p}&mountport={p}'\n  mount -t nfs -o vers=3,proto=tcp,port={p},mountport={p},nolock {}:/vol /mnt",
            a.ip(),
            a.ip(),
            p = a.port()
        ));
    }
    if let Some(a) = &d.smb_addr {
        say(&format!(
            "SMB: {a} once a share exists (Samba's smbd over a FUSE mount)\n  gwctl --data {dd} smb user add NAME && gwctl --data {dd} smb share add SHARE --volume vol\n  smbclient -p {p} //{ip}/SHARE -U NAME",
            dd = data.display(),
            p = a.port(),
            ip = a.ip()
        ));
    }
    say(&format!(
        "gwctl --data {} volume status vol",
        data.display()
    ));
    say("gatewayd: ready");
    terminated().await;
    say("gatewayd: stopping");
    if let Some(h) = handle {
        let r = tokio::task::spawn_blocking(move || h.unmount()).await?;
        if let Err(e) = r {
            tracing::warn!("unmount: {e}");
        }
    }
    d.shutdown().await;
    Ok(())
}

/// Starts every volume the state marks started, and those of `must` (whose failure is this
/// start's), saying for each how many bricks answered and naming the others.
async fn start_volumes(m: &gateway::manager::Manager, must: &[&str]) -> anyhow::Result<()> {
    for (name, r) in m.start_recorded(must).await? {
        match r {
            Ok(r) => {
                say(&format!(
                    "volume {name} started: {}/{} bricks online",
                    r.bricks_online, r.bricks_total
                ));
                for o in &r.offline {
                    say(&format!(
                        "  brick {} ({}) is not online: {}",
                        o.brick, o.name, o.reason
                    ));
                }
            }
            Err(e) if must.contains(&name.as_str()) => {
                return Err(anyhow::Error::new(e).context(format!("starting volume {name}")));
            }
            Err(e) => say(&format!("volume {name} did not start: {e}")),
        }
    }
    m.resume_rebalances();
    Ok(())
}

/// `gatewayd reset-admin`: a new console password for `admin`, printed once. With gatewayd
/// stopped it is written to the state directly; while gatewayd runs (and holds the state) it
/// is asked for one with the admin token of DATA/admin.token, which only root can read.
fn reset_admin(data: &Path) -> anyhow::Result<()> {
    let state = data.join("state");
    if !state.is_dir() {
        bail!(
            "{} holds no gatewayd state ({} is missing): give the --data directory of the gateway",
            data.display(),
            state.display()
        );
    }
    let what = "admin password reset (gatewayd reset-admin)";
    let password = match gateway::store::Store::open(&state) {
        Ok(store) => gateway::auth::reset_admin_password(&store, what)?,
        Err(open) => {
            let url = read_trim(&data.join("api.url")).with_context(|| {
                format!(
                    "the state in {} cannot be opened ({open}) and no gatewayd announces its API in {}",
                    data.display(),
                    data.join("api.url").display()
                )
            })?;
            let token = read_trim(&data.join("admin.token")).with_context(|| {
                format!(
                    "gatewayd runs but {} cannot be read (run reset-admin as root)",
                    data.join("admin.token").display()
                )
            })?;
            let url = format!("{}/api/v1/admin/password/reset", url.trim_end_matches('/'));
            let ca = gateway::tls::client_ca(None, data);
            let agent = gateway::tls::http_agent(ca.as_deref())
                .context("the CA of the API's HTTPS certificate")?;
            let r: serde_json::Value = agent
                .post(&url)
                .set("Authorization", &format!("Bearer {token}"))
                .call()
                .map_err(|e| match e {
                    ureq::Error::Status(code, r) => anyhow::anyhow!(
                        "{url}: HTTP {code}: {}",
                        r.into_string().unwrap_or_default()
                    ),
                    e => anyhow::anyhow!(
                        "gatewayd holds the state but does not answer at {url}: {e}"
                    ),
                })?
                .into_json()
                .context("reading gatewayd's answer")?;
            r["password"]
                .as_str()
                .context("gatewayd answered no password")?
                .to_string()
        }
    };
    say(&format!(
        "console login: admin / {password}  (shown this once; change it with gwctl admin passwd)"
    ));
    Ok(())
}

/// `--bricks` and `--replica` of a new default volume, checked before anything is made.
fn check_default_layout(bricks: usize, replica: usize) -> anyhow::Result<()> {
    if bricks == 0 {
        bail!("--bricks must be at least 1");
    }
    if replica == 0 {
        bail!("--replica must be at least 1 (1: a plain distribute volume)");
    }
    if !bricks.is_multiple_of(replica) {
        bail!(
            "--bricks {bricks} is not a multiple of --replica {replica}: the volume is made of replica sets of {replica} bricks (try --bricks {})",
            bricks.div_ceil(replica) * replica
        );
    }
    gateway::volume::check_layout(bricks, replica, 0).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

async fn serve(config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = match &config {
        Some(p) => GatewayConfig::load(p)?,
        None => GatewayConfig::default(),
    };
    let d = Daemon::start(cfg).await?;
    say(&format!(
        "REST API: {}/  (admin token in {})",
        d.api_url,
        d.token_file.display()
    ));
    if let Some(p) = &d.new_admin_password {
        say(&format!(
            "console login: admin / {p}  (shown this once; change it with gwctl admin passwd, or set a new one with gatewayd reset-admin)"
        ));
    }
    start_volumes(&d.manager, &[]).await?;
    if let Some(url) = &d.s3_url {
        say(&format!(
            "S3: {url} (volume {}; keys: gwctl s3 key create NAME)",
            d.manager.cfg.s3_volume
        ));
    }
    if let Some(a) = &d.nfs_addr {
        say(&format!("NFSv3: {a} (every volume exported as /NAME)"));
    }
    if let Some(a) = &d.smb_addr {
        say(&format!("SMB: {a} (shares: gwctl smb share add)"));
    }
    say("gatewayd: ready");
    terminated().await;
    d.shutdown().await;
    Ok(())
}

/// Waits up to 20 s for the volume to answer. Bricks that refuse this client (auth.allow,
/// auth.reject, a wrong secret) will not change their mind by waiting: when every brick
/// refuses, the mount fails at once with their reasons. Bricks that are merely away are
/// mounted over anyway (they are reconnected to when they come).
async fn wait_for_bricks(graph: &Graph, volume: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if graph.wait_up(Duration::from_millis(250)).await {
            return Ok(());
        }
        let clients: Vec<(String, Option<String>)> = graph
            .brick_links()
            .into_iter()
            .map(|l| (l.name, l.last_error))
            .collect();
        let refused = |e: &Option<String>| {
            e.as_deref()
                .is_some_and(|e| e.contains("refused the connection"))
        };
        if !clients.is_empty() && clients.iter().all(|(_, e)| refused(e)) {
            let why: Vec<String> = clients
                .iter()
                .map(|(n, e)| format!("{n}: {}", e.as_deref().unwrap_or_default()))
                .collect();
            bail!(
                "cannot mount volume {volume}: every brick refused this client\n  {}",
                why.join("\n  ")
            );
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(volume = %volume, "no brick answered within 20s; mounting anyway");
            return Ok(());
        }
    }
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

async fn native_mount(
    server: Option<String>,
    token: Option<String>,
    data: PathBuf,
    ca_cert: Option<PathBuf>,
    volume: String,
    dir: PathBuf,
) -> anyhow::Result<()> {
    let ca = gateway::tls::client_ca(ca_cert, &data);
    let agent = gateway::tls::http_agent(ca.as_deref())
        .context("the CA of the gateway's HTTPS certificate (--ca-cert)")?;
    let server = server
        .or_else(|| read_trim(&data.join("api.url")))
        .unwrap_or_else(|| "http://127.0.0.1:7070".into());
    let token = token
        .or_else(|| read_trim(&data.join("admin.token")))
        .context("no API token: pass --token, set GWCTL_TOKEN, or --data pointing at the gateway's data directory")?;
    let url = format!(
        "{}/api/v1/volumes/{volume}/volfile",
        server.trim_end_matches('/')
    );
    let text = tokio::task::spawn_blocking(move || {
        agent
            .get(&url)
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .map_err(|e| match e {
                ureq::Error::Status(code, r) => anyhow::anyhow!(
                    "{url}: HTTP {code}: {}",
                    r.into_string().unwrap_or_default()
                ),
                e => anyhow::anyhow!("{url}: {e}"),
            })?
            .into_string()
            .context("reading the volfile")
    })
    .await??;
    let graph = Graph::from_text(&text, &Registry::client_side())
        .context("the gateway sent a volfile we cannot build")?;
    graph.init().await?;
    if let Err(e) = wait_for_bricks(&graph, &volume).await {
        graph.fini().await;
        return Err(e);
    }
    let cfg = GatewayConfig::default();
    clear_stale_mount(&dir);
    let h = protocols_fuse::mount(
        graph.top(),
        &dir,
        cfg.fuse_options(&volume, "fuse"),
        tokio::runtime::Handle::current(),
    )?;
    // Another client's change reaches this mount's kernel through the graph's upcalls.
    if let Some(inv) = h.invalidator() {
        inv.follow(graph.upcalls());
    }
    say(&format!("volume {volume} mounted at {}", dir.display()));
    let waiter = tokio::task::spawn_blocking(move || h.wait());
    tokio::select! {
        _ = terminated() => {
            let _ = std::process::Command::new("umount").arg(&dir).status();
        }
        _ = waiter => {}
    }
    graph.fini().await;
    Ok(())
}
