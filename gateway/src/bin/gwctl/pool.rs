//! `gwctl pool` and `gwctl peer`: the gatewayd nodes that share one state in etcd, in
//! GlusterFS's words (`gluster pool list`, `gluster peer status|probe|detach`).

use crate::client::Client;
use crate::output::{Out, report};
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum PoolCmd {
    /// Every node of the pool: its name, up or down, its API and how many bricks it holds
    /// (this node marked). A gatewayd without etcd_endpoints is a pool of one.
    List,
}

#[derive(Subcommand)]
pub enum PeerCmd {
    /// The other nodes of the pool, connected or not, as `gluster peer status` prints them.
    Status,
    /// Check that the gatewayd whose node_name is HOST has joined this pool (nodes join by
    /// running with the pool's etcd_endpoints; nothing is copied to them).
    Probe {
        /// The node's name: its node_name, the HOST of its bricks' HOST:/PATH.
        host: String,
    },
    /// Forget a node that is down and holds no brick (refused otherwise: stop its gatewayd,
    /// move its bricks off with remove-brick or replace-brick first).
    Detach {
        /// The node's name.
        host: String,
    },
}

/// `gwctl pool …`.
pub fn pool(c: &Client, out: &Out, cmd: &PoolCmd) -> anyhow::Result<()> {
    match cmd {
        PoolCmd::List => {
            let v = c.json("GET", "/pool", None)?;
            report(out.json, &v, |v: &Value| print!("{}", pool_table(v)));
        }
    }
    Ok(())
}

/// `gwctl peer …`.
pub fn peer(c: &Client, out: &Out, cmd: &PeerCmd) -> anyhow::Result<()> {
    match cmd {
        PeerCmd::Status => {
            let v = c.json("GET", "/pool", None)?;
            report(out.json, &v, |v: &Value| print!("{}", peer_status(v)));
        }
        PeerCmd::Probe { host } => {
            let v = c.json("POST", "/pool/probe", Some(json!({ "host": host })))?;
            report(out.json, &v, |v: &Value| {
                println!(
                    "peer probe: success. Host {host} is in the pool ({})",
                    node_state(v)
                )
            });
        }
        PeerCmd::Detach { host } => {
            let v = c.json("POST", "/pool/detach", Some(json!({ "host": host })))?;
            report(out.json, &v, |_: &Value| {
                println!("peer detach: success. Host {host} has left the pool")
            });
        }
    }
    Ok(())
}

/// A node's state as the API gives it ("up"/"down"), whether the answer is the node itself or
/// wraps it in `node`.
fn node_state(v: &Value) -> &str {
    v["state"]
        .as_str()
        .or_else(|| v["node"]["state"].as_str())
        .unwrap_or("up")
}

fn nodes(v: &Value) -> Vec<&Value> {
    v["nodes"].as_array().into_iter().flatten().collect()
}

/// `pool list`: NAME  STATE  API  BRICKS, a row per node, "(this node)" after this node's name;
/// the columns are as wide as their longest entry.
pub fn pool_table(v: &Value) -> String {
    let rows: Vec<[String; 4]> = nodes(v)
        .into_iter()
        .map(|n| {
            let mut name = n["name"].as_str().unwrap_or("").to_string();
            if n["this_node"].as_bool() == Some(true) {
                name.push_str(" (this node)");
            }
            [
                name,
                n["state"].as_str().unwrap_or("-").to_string(),
                n["api_url"]
                    .as_str()
                    .filter(|u| !u.is_empty())
                    .unwrap_or("-")
                    .to_string(),
                n["bricks"].as_u64().unwrap_or(0).to_string(),
            ]
        })
        .collect();
    let head = ["NAME", "STATE", "API", "BRICKS"].map(String::from);
    let width = |i: usize| {
        rows.iter()
            .chain([&head])
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let mut s = String::new();
    if v["mode"] == "etcd" && v["etcd_online"] == false {
        s.push_str("etcd is unreachable from this node: states are as last seen\n");
    }
    for r in [&head].into_iter().chain(rows.iter()) {
        s.push_str(&format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}\n",
            r[0], r[1], r[2], r[3]
        ));
    }
    s
}

/// `peer status` as gluster prints it: the nodes other than this one, with
/// "Peer in Cluster (Connected)" for those up and "(Disconnected)" for those down.
pub fn peer_status(v: &Value) -> String {
    let peers: Vec<&Value> = nodes(v)
        .into_iter()
        .filter(|n| n["this_node"].as_bool() != Some(true))
        .collect();
    let mut s = format!("Number of Peers: {}\n", peers.len());
    for n in peers {
        let conn = if n["state"] == "up" {
            "Connected"
        } else {
            "Disconnected"
        };
        s.push_str(&format!(
            "\nHostname: {}\nState: Peer in Cluster ({conn})\n",
            n["name"].as_str().unwrap_or("")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_nodes() -> Value {
        json!({
            "mode": "etcd",
            "node": "127.0.0.1",
            "nodes": [
                {"name": "127.0.0.1", "api_url": "http://127.0.0.1:7070", "state": "up",
                 "bricks": 2, "this_node": true, "since": 1_700_000_000u64},
                {"name": "127.0.0.2", "api_url": "http://127.0.0.2:7070", "state": "up",
                 "bricks": 2, "this_node": false, "since": 1_700_000_001u64},
                {"name": "node-three", "api_url": "http://127.0.0.3:7070", "state": "down",
                 "bricks": 0, "this_node": false, "since": null},
            ]
        })
    }

    #[test]
    fn peer_status_lists_the_other_nodes_in_glusterfs_words() {
        assert_eq!(
            peer_status(&three_nodes()),
            "Number of Peers: 2\n\
             \n\
             Hostname: 127.0.0.2\n\
             State: Peer in Cluster (Connected)\n\
             \n\
             Hostname: node-three\n\
             State: Peer in Cluster (Disconnected)\n"
        );
        let alone = json!({"mode": "local", "node": "h", "nodes": [
            {"name": "h", "api_url": "http://127.0.0.1:7070", "state": "up", "bricks": 4,
             "this_node": true, "since": null}]});
        assert_eq!(peer_status(&alone), "Number of Peers: 0\n");
    }

    #[test]
    fn pool_list_is_a_table_with_this_node_marked() {
        let t = pool_table(&three_nodes());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        let words = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(words(lines[0]), ["NAME", "STATE", "API", "BRICKS"]);
        assert_eq!(
            words(lines[1]),
            [
                "127.0.0.1",
                "(this",
                "node)",
                "up",
                "http://127.0.0.1:7070",
                "2"
            ]
        );
        assert_eq!(
            words(lines[3]),
            ["node-three", "down", "http://127.0.0.3:7070", "0"]
        );
        // The columns line up: STATE, API and BRICKS start at the same place on every line.
        for col in ["STATE", "API", "BRICKS"] {
            let at = lines[0].find(col).unwrap();
            for l in &lines[1..] {
                assert_ne!(l.as_bytes()[at], b' ', "{col} in {l:?}");
                assert_eq!(l.as_bytes()[at - 1], b' ', "{col} in {l:?}");
            }
        }
        assert_eq!(pool_table(&json!({"nodes": []})).lines().count(), 1);
    }

    #[test]
    fn probe_reads_the_state_of_the_node_or_of_a_wrapped_one() {
        assert_eq!(node_state(&json!({"name": "h", "state": "down"})), "down");
        assert_eq!(node_state(&json!({"node": {"state": "up"}})), "up");
    }
}
