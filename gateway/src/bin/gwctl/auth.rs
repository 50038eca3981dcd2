//! `gwctl token` (named API tokens) and `gwctl admin` (the console's admin login).

use crate::client::Client;
use crate::output::{Out, report};
use crate::output::{password, rfc3339};
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum TokenCmd {
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
pub enum AdminCmd {
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

/// `gwctl token …`.
pub fn token(c: &Client, out: &Out, cmd: &TokenCmd) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Create { name } => {
            let v = c.json("POST", "/tokens", Some(json!({ "name": name })))?;
            report(out.json, &v, |v: &Value| {
                println!("{}", v["token"].as_str().unwrap_or(""));
                eprintln!(
                    "token {name} made; it is shown this once (use it with --token or GWCTL_TOKEN)"
                );
            });
        }
        TokenCmd::List => {
            let v = c.json("GET", "/tokens", None)?;
            report(out.json, &v, |v: &Value| {
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
            report(out.json, &v, |_: &Value| {
                println!("revoked token {name}");
            });
        }
    }
    Ok(())
}

/// `gwctl admin …`.
pub fn admin(c: &Client, out: &Out, cmd: &AdminCmd) -> anyhow::Result<()> {
    match cmd {
        AdminCmd::Passwd {
            current,
            password: new,
        } => {
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
            report(out.json, &v, |_: &Value| {
                println!("admin password changed; console sessions ended");
            });
        }
    }
    Ok(())
}
