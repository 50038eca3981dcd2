//! The pool as the manager shows and changes it: `pool list`, `peer probe|detach`, and bricks
//! of a new volume checked and made on the nodes they belong to.

use super::{MEMBER, NodeInfo, Pool, PoolNode, PrepareBricks};
use crate::manager::{Manager, ManagerError};

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
            let ports = c
                .prepare_on(agent, node, &req)
                .await
                .map_err(ManagerError::Brick)?;
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
