//! Several nodes, one cluster: the pool of gatewayd nodes that share their state through etcd
//! (GlusterFS's peer pool, on a proven store instead of glusterd's own). Each node registers
//! itself under a lease (up while it lives and reaches etcd) and once for good (a member, shown
//! down when its lease is gone); cluster-wide jobs run on the node that holds their key in
//! etcd (`leads`); every node follows the state and applies it (`reconcile`).

pub mod etcd;
mod reconcile;

use crate::manager::{Manager, ManagerError};
use crate::store::Store;
use etcd::Etcd;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Seconds a node's lease lives without a keep-alive: how long a dead node takes to show down
/// and to give up the jobs it led.
pub const LEASE_TTL: i64 = 5;

/// A node's live key (under its lease).
const NODE: &str = "node/";
/// A node that joined the pool, for good (until `peer detach`).
const MEMBER: &str = "member/";
/// The holder of a cluster-wide job.
const LEADER: &str = "leader/";
/// The secret nodes show each other's APIs (one node preparing bricks on another).
const NODE_SECRET: &str = "meta/node-secret";

/// What a node says of itself.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct NodeInfo {
    pub name: String,
    pub api_url: String,
    #[serde(default)]
    pub s3_url: Option<String>,
    #[serde(default)]
    pub nfs_addr: Option<String>,
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
    pub fn join(
        etcd: Arc<Etcd>,
        store: &Store,
        info: &NodeInfo,
    ) -> Result<Arc<Cluster>, ManagerError> {
        let c = Arc::new(Cluster {
            etcd: etcd.clone(),
            me: info.name.clone(),
        });
        let secret = hex::encode(rand::random::<[u8; 32]>());
        // Only the first node's secret is kept; the others read it.
        etcd.write(
            vec![etcd::Op::Put(NODE_SECRET.into(), secret.into_bytes())],
            vec![NODE_SECRET.into()],
        )
        .map_err(crate::store::StoreError::from)?;
        store.put_meta(&format!("{MEMBER}{}", info.name), info)?;
        etcd.keep_alive_key(
            format!("{NODE}{}", info.name),
            serde_json::to_vec(info).expect("node info serializes"),
            LEASE_TTL,
        );
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

    /// Whether node `name` is alive (its lease holds), as this node last heard from etcd.
    pub fn is_up(&self, name: &str) -> bool {
        self.etcd.get(&format!("{NODE}{name}")).is_some()
    }

    fn live(&self, name: &str) -> Option<NodeInfo> {
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

    /// Asks node `node`'s API to check and make bricks there; returns their ports.
    /// `agent` carries the CA a node's HTTPS certificate must chain to.
    async fn prepare_on(
        &self,
        agent: ureq::Agent,
        node: &str,
        req: &PrepareBricks,
    ) -> Result<Vec<u16>, ManagerError> {
        let info = self.live(node).ok_or_else(|| {
            ManagerError::Brick(format!(
                "node {node} is not up in the pool (gwctl pool list): its bricks cannot be checked"
            ))
        })?;
        let secret = self
            .secret()
            .ok_or_else(|| ManagerError::Invalid("the pool has no node secret yet".into()))?;
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
        .map_err(|e| ManagerError::Brick(format!("asking node {node}: {e}")))?
        .map_err(ManagerError::Brick)
    }
}

/// Bricks one node asks another to check and make (`POST /api/v1/pool/bricks`).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PrepareBricks {
    /// Directories on the node asked.
    pub paths: Vec<String>,
    pub force: bool,
}

impl Manager {
    /// This node's name.
    pub fn node_name(&self) -> String {
        self.cfg.node()
    }

    /// Whether this node runs cluster-wide job `job`: always alone; in a pool, when it leads
    /// it (`Cluster::leads`).
    pub fn leads(&self, job: &str) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.leads(job))
    }

    pub fn resign(&self, job: &str) {
        if let Some(c) = &self.cluster {
            c.resign(job);
        }
    }

    /// Every node of the pool and whether it is up.
    pub fn pool(&self) -> Result<Pool, ManagerError> {
        let vols = self.list()?;
        let bricks_of = |n: &str| {
            vols.iter()
                .flat_map(|v| v.bricks.iter())
                .filter(|b| b.host == n)
                .count()
        };
        let me = self.node_name();
        let Some(c) = &self.cluster else {
            return Ok(Pool {
                etcd_online: false,
                mode: "local".into(),
                node: me.clone(),
                nodes: vec![PoolNode {
                    bricks: vols.iter().map(|v| v.bricks.len()).sum(),
                    name: me,
                    api_url: self.api_url.get().cloned().unwrap_or_default(),
                    state: "up".into(),
                    this_node: true,
                    since: None,
                }],
            });
        };
        let mut nodes = Vec::new();
        for (_, info) in self.store.meta_records::<NodeInfo>(MEMBER)? {
            let live = c.live(&info.name);
            nodes.push(PoolNode {
                bricks: bricks_of(&info.name),
                state: if live.is_some() { "up" } else { "down" }.into(),
                this_node: info.name == me,
                since: live.map(|l| l.since),
                api_url: info.api_url,
                name: info.name,
            });
        }
        Ok(Pool {
            etcd_online: c.etcd.online(),
            mode: "etcd".into(),
            node: me,
            nodes,
        })
    }

    /// `peer probe HOST`: the node named HOST has joined the pool (its gatewayd runs with this
    /// pool's etcd_endpoints and node_name = HOST).
    pub fn probe(&self, host: &str) -> Result<PoolNode, ManagerError> {
        if self.cluster.is_none() {
            return Err(ManagerError::Invalid(format!(
                "this gatewayd keeps its state alone (RocksDB): to make a pool, give every node the same etcd_endpoints in gateway.toml and start gatewayd on {host} with node_name = \"{host}\""
            )));
        }
        self.pool()?
            .nodes
            .into_iter()
            .find(|n| n.name == host)
            .ok_or_else(|| {
                ManagerError::NotInPool(format!(
                    "no gatewayd named {host} has joined this pool: start gatewayd on {host} with node_name = \"{host}\" and this pool's etcd_endpoints"
                ))
            })
    }

    /// `peer detach HOST`: forgets a node that is down and holds no brick.
    pub fn detach(&self, host: &str) -> Result<(), ManagerError> {
        let n = self.probe(host)?;
        if n.this_node {
            return Err(ManagerError::Busy(format!(
                "{host} is this node: detach it from another node once its gatewayd is stopped"
            )));
        }
        for v in self.list()? {
            if v.bricks.iter().any(|b| b.host == host) {
                return Err(ManagerError::Busy(format!(
                    "{host} holds bricks of volume {}: move them off it first (volume remove-brick or replace-brick)",
                    v.name
                )));
            }
        }
        if n.state == "up" {
            return Err(ManagerError::Busy(format!(
                "{host} is up: stop its gatewayd first, or it joins again"
            )));
        }
        self.store.delete_meta(&format!("{MEMBER}{host}"))?;
        self.store.log_action(&format!("peer detach {host}"))?;
        Ok(())
    }

    /// Checks and makes bricks of other nodes on those nodes; returns their ports, in the
    /// order of `bricks` (entries of this node's bricks are None).
    pub(crate) async fn prepare_remote_bricks(
        &self,
        bricks: &[crate::volume::BrickRecord],
        force: bool,
    ) -> Result<Vec<Option<u16>>, ManagerError> {
        let mut out = vec![None; bricks.len()];
        let Some(c) = &self.cluster else {
            return Ok(out);
        };
        let mut by_node: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
        for (i, b) in bricks.iter().enumerate() {
            if !crate::volume::is_local_host(&b.host) {
                by_node.entry(b.host.as_str()).or_default().push(i);
            }
        }
        for (node, idx) in by_node {
            let req = PrepareBricks {
                paths: idx.iter().map(|i| bricks[*i].path.clone()).collect(),
                force,
            };
            let ca = crate::tls::client_ca(None, &self.cfg.data_dir);
            let agent = crate::tls::http_agent(ca.as_deref())?;
            let ports = c.prepare_on(agent, node, &req).await?;
            if ports.len() != idx.len() {
                return Err(ManagerError::Brick(format!(
                    "node {node} answered {} ports for {} bricks",
                    ports.len(),
                    idx.len()
                )));
            }
            for (i, p) in idx.into_iter().zip(ports) {
                out[i] = Some(p);
            }
        }
        Ok(out)
    }

    /// What another node asks of this one before a volume gets bricks here: the directories
    /// checked and made, and a free port for each.
    pub async fn prepare_local_bricks(
        &self,
        req: &PrepareBricks,
    ) -> Result<Vec<u16>, ManagerError> {
        if self.cluster.is_none() {
            return Err(ManagerError::Invalid(
                "this gatewayd is not in a pool: its bricks are made by volume create".into(),
            ));
        }
        let me = self.node_name();
        let specs: Vec<String> = req.paths.iter().map(|p| format!("{me}:{p}")).collect();
        let mut bricks = self.brick_records(&specs)?;
        self.check_not_in_use(&bricks)?;
        self.prepare_new_bricks(&mut bricks, req.force).await?;
        Ok(bricks.iter().map(|b| b.port).collect())
    }
}
