//! `gwctl s3`: S3 access keys and their bucket grants.

use crate::client::Client;
use crate::output::{Out, report};
use anyhow::bail;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum S3Cmd {
    /// Access keys for the S3 endpoint.
    #[command(subcommand)]
    Key(KeyCmd),
}

/// A key's rights on one bucket, as Garage's `bucket allow`.
#[derive(clap::Args)]
pub struct GrantArgs {
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
    pub fn json(&self) -> Option<Value> {
        self.bucket.as_ref().map(
            |b| json!({ "bucket": b, "read": self.read, "write": self.write, "owner": self.owner }),
        )
    }
}

#[derive(Subcommand)]
pub enum KeyCmd {
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

/// `gwctl s3 key …`.
pub fn run(c: &Client, out: &Out, cmd: &KeyCmd) -> anyhow::Result<()> {
    match cmd {
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
            report(out.json, &v, |v: &Value| {
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
            report(out.json, &v, print_key_rights);
        }
        KeyCmd::Deny { name, bucket } => {
            let v = c.json("DELETE", &format!("/s3/keys/{name}/grants/{bucket}"), None)?;
            report(out.json, &v, print_key_rights);
        }
        KeyCmd::List => {
            let v = c.json("GET", "/s3/keys", None)?;
            report(out.json, &v, |v: &Value| {
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
            report(out.json, &v, |v: &Value| {
                println!("deleted S3 key {}", v["deleted"].as_str().unwrap_or(""));
            });
        }
    }
    Ok(())
}

/// A key's grants, one line per bucket, indented under the key.
pub fn print_grants(k: &Value) {
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

pub fn print_key_rights(k: &Value) {
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
