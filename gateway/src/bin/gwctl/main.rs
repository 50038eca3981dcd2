//! gwctl: the command line of the gateway (GlusterFS's `gluster`), a client of its REST API.

mod auth;
mod client;
mod elastic;
mod heal;
mod nfs;
mod output;
mod pool;
mod s3;
mod smb;
mod volume;

use clap::{CommandFactory, Parser, Subcommand};
use client::Client;
use output::{Out, report, rfc3339};
use serde_json::Value;
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
    Volume(volume::Vol),
    /// S3 access keys.
    #[command(subcommand)]
    S3(s3::S3Cmd),
    /// NFS exports.
    #[command(subcommand)]
    Nfs(nfs::NfsCmd),
    /// SMB shares and the users who may use them.
    #[command(subcommand)]
    Smb(smb::SmbCmd),
    /// Named API tokens for scripts and other gwctl users.
    #[command(subcommand)]
    Token(auth::TokenCmd),
    /// The console's admin login.
    #[command(subcommand)]
    Admin(auth::AdminCmd),
    /// The gatewayd nodes sharing this one's state (etcd_endpoints in gateway.toml).
    #[command(subcommand)]
    Pool(pool::PoolCmd),
    /// The other nodes of the pool, as gluster's peer commands: status, probe, detach.
    #[command(subcommand)]
    Peer(pool::PeerCmd),
    /// The log of management actions.
    Log,
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
    let c = Client::new(
        cli.api.clone(),
        cli.token.clone(),
        cli.ca_cert.clone(),
        &cli.data,
    )?;
    let out = Out {
        json: cli.json,
        script: cli.mode == Some(Mode::Script),
    };
    match &cli.cmd {
        Top::Log => {
            let v = c.json("GET", "/actions", None)?;
            report(out.json, &v, |v: &Value| {
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
        Top::S3(s3::S3Cmd::Key(cmd)) => s3::run(&c, &out, cmd)?,
        Top::Token(cmd) => auth::token(&c, &out, cmd)?,
        Top::Admin(cmd) => auth::admin(&c, &out, cmd)?,
        Top::Smb(smb::SmbCmd::Share(cmd)) => smb::share(&c, &out, cmd)?,
        Top::Smb(smb::SmbCmd::User(cmd)) => smb::user(&c, &out, cmd)?,
        Top::Nfs(nfs::NfsCmd::Export(cmd)) => nfs::run(&c, &out, cmd)?,
        Top::Volume(cmd) => volume::run(&c, &out, cmd)?,
        Top::Pool(cmd) => pool::pool(&c, &out, cmd)?,
        Top::Peer(cmd) => pool::peer(&c, &out, cmd)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use volume::Vol;

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
    fn elastic_commands_take_glusterfs_words_and_flags_anywhere() {
        let parse = |line: &str| Cli::try_parse_from(line.split_whitespace()).map(|c| c.cmd);
        let c = parse("gwctl volume add-brick v replica 2 h:/a h:/b force").unwrap();
        assert!(matches!(c, Top::Volume(Vol::AddBrick { ref args, .. }) if args.len() == 5));
        let c = parse("gwctl volume remove-brick v h:/a h:/b commit --yes").unwrap();
        assert!(matches!(
            c,
            Top::Volume(Vol::RemoveBrick { yes: true, ref args, .. }) if args.last().unwrap() == "commit"
        ));
        let c = parse("gwctl volume replace-brick v h:/a h:/c commit force").unwrap();
        assert!(
            matches!(c, Top::Volume(Vol::ReplaceBrick { ref old, ref words, .. }) if old == "h:/a" && words.len() == 2)
        );
        let c = parse("gwctl volume rebalance v --watch status").unwrap();
        assert!(matches!(c, Top::Volume(Vol::Rebalance { watch: true, .. })));
        assert!(parse("gwctl volume rebalance v").is_err());
        assert!(parse("gwctl volume add-brick v").is_err());
    }

    #[test]
    fn pool_and_peer_take_glusterfs_words() {
        let parse = |line: &str| Cli::try_parse_from(line.split_whitespace());
        let c = parse("gwctl pool list --json").unwrap();
        assert!(c.json && matches!(c.cmd, Top::Pool(pool::PoolCmd::List)));
        let c = parse("gwctl peer status").unwrap();
        assert!(matches!(c.cmd, Top::Peer(pool::PeerCmd::Status)));
        let c = parse("gwctl peer probe 127.0.0.2").unwrap();
        assert!(
            matches!(c.cmd, Top::Peer(pool::PeerCmd::Probe { ref host }) if host == "127.0.0.2")
        );
        let c = parse("gwctl peer detach node3").unwrap();
        assert!(matches!(c.cmd, Top::Peer(pool::PeerCmd::Detach { ref host }) if host == "node3"));
        assert!(parse("gwctl peer probe").is_err());
        assert!(parse("gwctl peer detach").is_err());
    }
}
