//! `gwctl smb`: SMB shares and the users who may use them.

use crate::client::Client;
use crate::output::{Out, report};
use crate::output::{password, strings};
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum SmbCmd {
    /// Shares: a volume or a directory in it, served by Samba.
    #[command(subcommand)]
    Share(ShareCmd),
    /// SMB users (they need no account on the host).
    #[command(subcommand)]
    User(SmbUserCmd),
}

#[derive(Subcommand)]
pub enum ShareCmd {
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
pub enum SmbUserCmd {
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

/// `gwctl smb share …`.
pub fn share(c: &Client, out: &Out, cmd: &ShareCmd) -> anyhow::Result<()> {
    match cmd {
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
            report(out.json, &v, |v: &Value| {
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
            report(out.json, &v, |v: &Value| {
                println!("removed SMB share {}", v["removed"].as_str().unwrap_or(""));
            });
        }
        ShareCmd::List => {
            let v = c.json("GET", "/smb/shares", None)?;
            report(out.json, &v, |v: &Value| {
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
    }
    Ok(())
}

/// `gwctl smb user …`.
pub fn user(c: &Client, out: &Out, cmd: &SmbUserCmd) -> anyhow::Result<()> {
    match cmd {
        SmbUserCmd::Add { name, password: p } => {
            let v = c.json(
                "POST",
                "/smb/users",
                Some(json!({ "name": name, "password": password(p.clone())? })),
            )?;
            report(out.json, &v, |v: &Value| {
                println!("added SMB user {}", v["name"].as_str().unwrap_or(""));
            });
        }
        SmbUserCmd::Passwd { name, password: p } => {
            let v = c.json(
                "PUT",
                &format!("/smb/users/{name}"),
                Some(json!({ "password": password(p.clone())? })),
            )?;
            report(out.json, &v, |_: &Value| {
                println!("password of SMB user {name} set");
            });
        }
        SmbUserCmd::Remove { name } => {
            let v = c.json("DELETE", &format!("/smb/users/{name}"), None)?;
            report(out.json, &v, |v: &Value| {
                println!("removed SMB user {}", v["removed"].as_str().unwrap_or(""));
            });
        }
        SmbUserCmd::List => {
            let v = c.json("GET", "/smb/users", None)?;
            report(out.json, &v, |v: &Value| {
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
    }
    Ok(())
}
