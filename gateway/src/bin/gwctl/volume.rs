//! `gwctl volume`: create, import, start, stop, delete, info, status, options, volfile;
//! `volume heal` is `crate::heal`'s, add-brick, remove-brick, replace-brick and rebalance
//! `crate::elastic`'s.

use crate::client::Client;
use crate::output::{Out, report};
use crate::output::{confirm, human_size};
use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum Vol {
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
    /// Add whole replica sets (bricks, for a distribute volume) while the volume serves;
    /// `replica N` as GlusterFS, then move files onto them with `rebalance NAME start`.
    #[command(override_usage = "gwctl volume add-brick NAME [replica N] HOST:/PATH... [force]")]
    AddBrick {
        /// The volume.
        name: String,
        /// `replica N`, then the new bricks, HOST:/PATH, then `force` if wanted.
        #[arg(required = true, value_name = "[replica N] BRICK")]
        args: Vec<String>,
        /// The same as positional `replica N`.
        #[arg(long)]
        replica: Option<usize>,
        /// The same as a trailing `force`: make missing parent directories of local bricks.
        #[arg(long)]
        force: bool,
    },
    /// Take whole replica sets out: `start` moves their files off, `status` shows how far it
    /// got, `stop` gives up, `commit` takes the emptied bricks out, `force` takes them out now
    /// with what they hold. commit and force ask first on a terminal (--yes, --mode=script).
    #[command(
        override_usage = "gwctl volume remove-brick NAME HOST:/PATH... start|status|stop|commit|force [--watch] [--yes]"
    )]
    RemoveBrick {
        /// The volume.
        name: String,
        /// The bricks, HOST:/PATH, then the action: start, status, stop, commit or force.
        #[arg(required = true, value_name = "BRICK... ACTION")]
        args: Vec<String>,
        /// With status (or start): follow it until it ends, with progress bars on a terminal.
        #[arg(long)]
        watch: bool,
        /// Do not ask before commit or force.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Put NEW in OLD's place in its replica set; self-heal fills it from the other bricks.
    /// GlusterFS's words: only `commit force`.
    #[command(override_usage = "gwctl volume replace-brick NAME OLD NEW commit force")]
    ReplaceBrick {
        /// The volume.
        name: String,
        /// The brick leaving, HOST:/PATH.
        old: String,
        /// The brick taking its place, HOST:/PATH: an empty or missing directory.
        new: String,
        /// `commit force`.
        #[arg(value_name = "commit force")]
        words: Vec<String>,
    },
    /// Move files to the subvolumes their directories' layouts name (after add-brick):
    /// `start`, `fix-layout start` (layouts only: new files use the new bricks), `stop`,
    /// `status` (a table per subvolume; --watch: follow it with progress bars).
    #[command(
        override_usage = "gwctl volume rebalance NAME [fix-layout] start | stop | status [--watch]"
    )]
    Rebalance {
        /// The volume.
        name: String,
        /// [fix-layout] start | stop | status.
        #[arg(required = true, value_name = "ACTION")]
        args: Vec<String>,
        /// With status (or start): follow it every second until it ends, with progress bars
        /// on a terminal and a line per second otherwise.
        #[arg(long)]
        watch: bool,
    },
}

/// `gwctl volume …`.
pub fn run(c: &Client, out: &Out, cmd: &Vol) -> anyhow::Result<()> {
    match cmd {
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
            report(out.json, &v, |_: &Value| {
                println!("volume create: {name}: success: please start the volume to access data")
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
            report(out.json, &v, |v: &Value| {
                println!(
                    "volume import: {name}: success (volume id {})",
                    v["id"].as_str().unwrap_or("")
                )
            });
        }
        Vol::Start { name } => {
            let v = c.job(&format!("/volumes/{name}/start"), None)?;
            report(out.json, &v, |v: &Value| print_started(name, v));
        }
        Vol::Stop { name } => {
            let v = c.job(&format!("/volumes/{name}/stop"), None)?;
            report(out.json, &v, |_: &Value| {
                println!("volume stop: {name}: success")
            });
        }
        Vol::Delete { name, yes } => {
            confirm(
                *yes || out.script,
                &format!(
                    "Deleting volume {name} erases what gatewayd knows of it (its bricks stay on disk). Do you want to continue?"
                ),
                &format!("volume delete: {name}"),
            )?;
            let v = c.json("DELETE", &format!("/volumes/{name}"), None)?;
            report(out.json, &v, |_: &Value| {
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
            report(out.json, &Value::Array(vols), |v: &Value| {
                for v in v.as_array().into_iter().flatten() {
                    print_volume(v);
                    println!();
                }
            });
        }
        Vol::List => {
            let v = c.json("GET", "/volumes", None)?;
            report(out.json, &v, |v: &Value| {
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
            if out.json {
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
                report(out.json, &v, print_set_help);
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
            report(out.json, &v, |v: &Value| {
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
                    bail!("volume get: {name}: no option {key} (gwctl volume set help lists them)");
                }
                one
            };
            report(out.json, &Value::Array(shown), |v: &Value| {
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
            report(out.json, &v, |_: &Value| {
                println!("volume reset: success");
            });
        }
        Vol::Heal { name, args } => crate::heal::run(c, out, name, args)?,
        Vol::AddBrick {
            name,
            args,
            replica,
            force,
        } => crate::elastic::add_brick(c, out, name, args, *replica, *force)?,
        Vol::RemoveBrick {
            name,
            args,
            watch,
            yes,
        } => crate::elastic::remove_brick(c, out, name, args, *yes, *watch)?,
        Vol::ReplaceBrick {
            name,
            old,
            new,
            words,
        } => crate::elastic::replace_brick(c, out, name, old, new, words)?,
        Vol::Rebalance { name, args, watch } => {
            crate::elastic::rebalance(c, out, name, args, *watch)?
        }
        Vol::Volfile { name } => {
            print!(
                "{}",
                c.call("GET", &format!("/volumes/{name}/volfile"), None)?
                    .into_string()?
            );
        }
    }
    Ok(())
}

/// The layout words of `volume create`: `replica N`, `arbiter 1` (and GlusterFS's
/// `transport tcp` and trailing `force`), from the flags and the positional arguments before
/// the bricks. Returns (replica, arbiter, bricks); replica 1 is plain distribute.
pub fn layout_args(
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
pub fn type_label(kind: &str) -> String {
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
pub fn brick_count_label(bricks: usize, replica: usize, arbiter: usize) -> String {
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

pub fn print_volume(v: &Value) {
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
pub fn print_status(v: &Value, detail: bool) {
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

/// `volume set help` as gluster prints it: each option with its default and description.
pub fn print_set_help(v: &Value) {
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

/// What `volume start` did: success, and how many bricks answer; the bricks that do not are
/// named with why (on standard error: the volume started, but not whole).
pub fn print_started(name: &str, r: &Value) {
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
