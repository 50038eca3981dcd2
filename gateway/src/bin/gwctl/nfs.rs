//! `gwctl nfs`: NFS exports.

use crate::client::Client;
use crate::output::strings;
use crate::output::{Out, report};
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum NfsCmd {
    /// Exports of volumes and of directories in them.
    #[command(subcommand)]
    Export(ExportCmd),
}

#[derive(Subcommand)]
pub enum ExportCmd {
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

/// `gwctl nfs export …`.
pub fn run(c: &Client, out: &Out, cmd: &ExportCmd) -> anyhow::Result<()> {
    match cmd {
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
            report(out.json, &v, |v: &Value| {
                println!("exported {}", v["path"].as_str().unwrap_or(""));
            });
        }
        ExportCmd::Remove { path } => {
            let v = c.json_query("DELETE", "/nfs/exports", &[("path", path)])?;
            report(out.json, &v, |v: &Value| {
                println!("removed NFS export {}", v["removed"].as_str().unwrap_or(""));
            });
        }
        ExportCmd::List => {
            let v = c.json("GET", "/nfs/exports", None)?;
            report(out.json, &v, |v: &Value| {
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
    }
    Ok(())
}
