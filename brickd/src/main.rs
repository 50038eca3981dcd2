//! brickd: serves one brick over the brick RPC (GlusterFS's glusterfsd).

use anyhow::{Context, bail};
use brickd::protocol::auth::{AddrList, AuthRules, AuthSource};
use brickd::protocol::server::{Server, ServerConfig};
use clap::Parser;
use engine::Gfid;
use engine::graph::Graph;
use engine::registry::Registry;
use std::io::Write;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "brickd",
    about = "Serve one brick of a volume over the brick RPC",
    version
)]
struct Args {
    /// The brick directory.
    #[arg(long)]
    brick: PathBuf,
    /// Address to listen on (port 0 picks a free port, printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// The volume's id; a brick directory holding another id is refused.
    #[arg(long)]
    volume_id: String,
    /// The name clients ask for in the handshake (the volfile's remote-subvolume).
    #[arg(long)]
    brick_name: String,
    /// File holding the volume secret that clients must prove they know.
    #[arg(long)]
    secret_file: PathBuf,
    /// Volume name, for logs.
    #[arg(long, default_value = "")]
    volume: String,
    /// TLS (the volume's `transport.socket.ssl-enabled`): the certificate (PEM, chain) this
    /// brick presents; needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// With TLS, clients must present a certificate signed by this CA (PEM): mutual TLS, as
    /// GlusterFS's ssl-ca-list.
    #[arg(long, requires = "tls_cert")]
    tls_ca: Option<PathBuf>,
    /// Client addresses allowed to connect (the volume's auth.allow: addresses, globs such as
    /// 192.168.1.*, networks such as 10.0.0.0/8, host names; comma-separated). Default: all.
    #[arg(long)]
    auth_allow: Option<String>,
    /// Client addresses refused, whatever --auth-allow says (auth.reject).
    #[arg(long)]
    auth_reject: Option<String>,
    /// A file of `auth.allow LIST` / `auth.reject LIST` lines, watched: changes apply at once,
    /// also to connected clients. Replaces --auth-allow/--auth-reject once it exists.
    #[arg(long)]
    auth_file: Option<PathBuf>,
    /// Tell clients when another client changes an inode they looked at (the volume's
    /// features.cache-invalidation): what keeps their metadata caches coherent.
    #[arg(long, default_value = "off", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    cache_invalidation: bool,
    /// How long a client hears of changes to an inode after it last touched it, in seconds
    /// (features.cache-invalidation-timeout).
    #[arg(long, default_value_t = 60)]
    cache_invalidation_timeout: u64,
    /// What to log: a level (error, warn, info, debug, trace) or tracing directives.
    #[arg(long, default_value = "info", env = "BRICKD_LOG")]
    log_level: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Colours only for a person at a terminal: gatewayd sends our log to a file.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log_level))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Modes of new files come from the client (mode & ~umask), never from our umask.
    unsafe { libc::umask(0) };
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

fn parse_on_off(v: &str) -> Result<bool, String> {
    engine::options::parse_bool(v)
}

/// posix keeps directories open (see storage/posix/handle.rs) besides the clients' files:
/// take the hard limit rather than the 1024 a shell hands down.
fn raise_fd_limit() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let volume_id = Gfid::parse(&args.volume_id)
        .with_context(|| format!("--volume-id {:?} is not a uuid", args.volume_id))?;
    let secret = std::fs::read_to_string(&args.secret_file).with_context(|| {
        format!(
            "reading the volume secret from {}",
            args.secret_file.display()
        )
    })?;
    let secret = secret.trim().as_bytes().to_vec();
    if secret.is_empty() {
        bail!("the secret file {} is empty", args.secret_file.display());
    }
    let brick = args
        .brick
        .canonicalize()
        .with_context(|| format!("brick directory {}", args.brick.display()))?;
    brickd::storage::posix::Posix::prepare_brick(&brick, &volume_id).map_err(anyhow::Error::msg)?;

    let mut registry = Registry::empty();
    brickd::register_all(&mut registry);
    let volfile = brickd::brick_volfile_with(
        &args.brick_name,
        &brick.to_string_lossy(),
        &args.volume_id,
        &brickd::BrickOptions {
            cache_invalidation: args.cache_invalidation,
            cache_invalidation_timeout: args.cache_invalidation_timeout,
        },
    );
    let graph = Graph::from_text(&volfile, &registry).context("building the brick graph")?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let cfg = engine::tls::server_config(cert, key, args.tls_ca.as_deref(), &[])
                .context("setting up TLS")?;
            Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg)))
        }
        _ => None,
    };
    let parse = |flag: &str, v: &Option<String>| -> anyhow::Result<AddrList> {
        AddrList::parse(v.as_deref().unwrap_or("")).with_context(|| format!("--{flag}"))
    };
    let mut rules = AuthRules {
        allow: parse("auth-allow", &args.auth_allow)?,
        reject: parse("auth-reject", &args.auth_reject)?,
    };
    let auth = match &args.auth_file {
        Some(f) => {
            if f.exists() {
                rules = AuthRules::load(f).map_err(anyhow::Error::msg)?;
            }
            AuthSource::watch_file(f.clone(), rules)
        }
        None => AuthSource::fixed(rules),
    };
    graph.init().await.context("starting the brick graph")?;

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(volume = %args.volume, brick = %args.brick_name, dir = %brick.display(), %addr, tls = args.tls_cert.is_some(), "brick serving");
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "brickd listening on {addr}")?;
        out.flush()?;
    }
    let server = Server::new(
        graph.top(),
        ServerConfig {
            volume_id,
            brick_name: args.brick_name.clone(),
            secret,
            tls,
            auth,
        },
    );
    let serve = server.serve(listener);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = serve => r.context("accepting connections")?,
        _ = term.recv() => tracing::info!(brick = %args.brick_name, "terminated"),
        _ = tokio::signal::ctrl_c() => tracing::info!(brick = %args.brick_name, "interrupted"),
    }
    Ok(())
}
