//! Several nodes, one cluster: the pool of gatewayd nodes that share their state through etcd
//! (GlusterFS's peer pool, on a proven store instead of glusterd's own). Each node registers
//! itself under a lease (up while it lives and reaches etcd) and once for good (a member, shown
//! down when its lease is gone); cluster-wide jobs run on the node that holds their key in
//! etcd (`leads`); every node follows the state and applies it (`reconcile`).

pub mod etcd;
mod pool;
mod reconcile;

use etcd::{Etcd, EtcdError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Seconds a node's lease lives without a keep-alive: how long a dead node takes to show down
/// and to give up the jobs it led.
pub const LEASE_TTL: i64 = 5;

/// A node's live key (under its lease).
const NODE: &str = "node/";
/// A node that joined the pool, for good (until `peer detach`).
pub(crate) const MEMBER: &str = "member/";
/// The holder of a cluster-wide job.
const LEADER: &str = "leader/";
/// The secret nodes show each other's APIs (one node preparing bricks on another).
const NODE_SECRET: &str = "meta/node-secret";

/// What a node says of itself.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct NodeInfo {
    pub name: String,
    pub api_url: String,
    pub version: String,
    /// When it (last) started, seconds since the epoch.
    pub since: u64,
}

/// A node as `pool list` shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PoolNode {
    pub name: String,
    pub api_url: String,
    /// "up" or "down".
    pub state: String,
    /// Bricks of every volume on this node.
    pub bricks: usize,
    pub this_node: bool,
    pub since: Option<u64>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Pool {
    /// "etcd" for a pool, "local" for a gatewayd alone.
    pub mode: String,
    /// Whether this node follows etcd right now; when not, `state` is as last seen.
    pub etcd_online: bool,
    pub node: String,
    pub nodes: Vec<PoolNode>,
}

pub struct Cluster {
    pub etcd: Arc<Etcd>,
    pub me: String,
}

impl Cluster {
    /// Registers this node (a member for good, and live under its lease) and makes sure the
    /// pool has a node secret.
    pub fn join(etcd: Arc<Etcd>, info: &NodeInfo) -> Result<Arc<Cluster>, EtcdError> {
        let c = Arc::new(Cluster {
            etcd: etcd.clone(),
            me: info.name.clone(),
        });
        let secret = hex::encode(rand::random::<[u8; 32]>());
        // Only the first node's secret is kept; the others read it.
        etcd.write(
            vec![etcd::Op::Put(NODE_SECRET.into(), secret.into_bytes())],
            vec![NODE_SECRET.into()],
        )?;
        let me = serde_json::to_vec(info).expect("node info serializes");
        etcd.write(
            vec![etcd::Op::Put(format!("{MEMBER}{}", info.name), me.clone())],
            Vec::new(),
        )?;
        etcd.keep_alive_key(format!("{NODE}{}", info.name), me, LEASE_TTL);
        Ok(c)
    }

    fn secret(&self) -> Option<String> {
        self.etcd
            .get(NODE_SECRET)
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    /// Whether `hash` (a bearer token's SHA-256) is the pool's node secret.
    pub fn is_node_token(&self, hash: &str) -> bool {
        self.secret()
            .is_some_and(|s| crate::auth::same(&crate::auth::token_hash(&s), hash))
    }

    pub(crate) fn live(&self, name: &str) -> Option<NodeInfo> {
        self.etcd
            .get(&format!("{NODE}{name}"))
            .and_then(|v| serde_json::from_slice(&v).ok())
    }

    /// Whether this node runs cluster-wide job `job` now: it holds the job's key, or took it
    /// because nobody did. The key hangs on this node's lease, so the job moves to another
    /// node within [`LEASE_TTL`] of this one's death.
    pub fn leads(&self, job: &str) -> bool {
        match self.etcd.claim(&format!("{LEADER}{job}"), &self.me) {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(job, "cannot claim the job: {e}");
                false
            }
        }
    }

    /// Gives up job `job` (it ended).
    pub fn resign(&self, job: &str) {
        self.etcd.release(&format!("{LEADER}{job}"), &self.me);
    }

    /// Asks node `node`'s API to check and make bricks there; returns their ports. `agent`
    /// carries the CA a node's HTTPS certificate must chain to.
    pub(crate) async fn prepare_on(
        &self,
        agent: ureq::Agent,
        node: &str,
        req: &PrepareBricks,
    ) -> Result<Vec<u16>, String> {
        let info = self.live(node).ok_or_else(|| {
            format!(
                "node {node} is not up in the pool (gwctl pool list): its bricks cannot be checked"
            )
        })?;
        let secret = self
            .secret()
            .ok_or_else(|| "the pool has no node secret yet".to_string())?;
        let url = format!("{}/api/v1/pool/bricks", info.api_url.trim_end_matches('/'));
        let body = serde_json::to_value(req).expect("request serializes");
        let api = info.api_url.clone();
        let node_name = node.to_string();
        tokio::task::spawn_blocking(move || -> Result<Vec<u16>, String> {
            let r = agent
                .post(&url)
                .set("Authorization", &format!("Bearer {secret}"))
                .send_json(body);
            match r {
                Ok(resp) => resp
                    .into_json()
                    .map_err(|e| format!("node {node_name} answered something unreadable: {e}")),
                Err(ureq::Error::Status(code, resp)) => {
                    let text = resp.into_string().unwrap_or_default();
                    let msg = serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|v| v["error"].as_str().map(str::to_string))
                        .unwrap_or(text);
                    Err(format!("node {node_name} (HTTP {code}): {msg}"))
                }
                Err(e) => Err(format!("node {node_name} does not answer at {api}: {e}")),
            }
        })
        .await
        .map_err(|e| format!("asking node {node}: {e}"))?
    }
}

/// Bricks one node asks another to check and make (`POST /api/v1/pool/bricks`).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PrepareBricks {
    /// Directories on the node asked.
    pub paths: Vec<String>,
    pub force: bool,
}
