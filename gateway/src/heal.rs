//! The heal daemon (GlusterFS's glustershd, inside gatewayd) and `volume heal`: for every
//! started replicated volume it crawls each replica set's brick indices at once when a brick
//! comes back and every few seconds, healing what they list; `heal info` reads the same
//! indices; split-brains wait for an operator's choice.

use crate::manager::{Manager, ManagerError};
use engine::graph::Graph;
use engine::xlators::cluster::replicate::{Afr, HealInfo, SplitBrainChoice};
use engine::{Ctx, Gfid, Loc, Xattrs};
use serde::Serialize;
use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

type Result<T> = std::result::Result<T, ManagerError>;

/// How often each replica set's indices are read when nothing wakes the daemon sooner.
const CRAWL_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BrickHeal {
    /// HOST:/PATH
    pub brick: String,
    /// Its client translator (`<vol>-client-N`).
    pub client: String,
    pub connected: bool,
    /// Entries its index lists (not yet healed).
    pub pending: usize,
    /// Paths (or `<gfid:…>`) of those entries, as far as this gateway has seen them.
    pub entries: Vec<String>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ReplicaSetHeal {
    pub name: String,
    pub bricks: Vec<BrickHeal>,
    /// Entries in split-brain: left alone until resolved.
    pub split_brain: Vec<String>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct VolumeHeal {
    pub volume: String,
    /// Sum of every brick's pending entries.
    pub pending: usize,
    pub split_brain: usize,
    pub replica_sets: Vec<ReplicaSetHeal>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Resolution {
    pub path: String,
    /// "healed", "clean", "split-brain" (the rule did not pick a copy) or an error.
    pub result: String,
}

fn started_graph(m: &Manager, volume: &str) -> Result<(crate::volume::VolumeRecord, Arc<Graph>)> {
    let v = m.get(volume)?;
    let g = m
        .graph(volume)
        .ok_or_else(|| ManagerError::NotStarted(volume.to_string()))?;
    Ok((v, g))
}

fn brick_of(v: &crate::volume::VolumeRecord, client: &str) -> String {
    (0..v.bricks.len())
        .find(|i| v.client_name(*i) == client)
        .map(|i| format!("{}:{}", v.bricks[i].host, v.bricks[i].path))
        .unwrap_or_else(|| client.to_string())
}

fn not_replicated(volume: &str) -> ManagerError {
    ManagerError::Invalid(format!(
        "volume {volume} is not replicated: heal needs a volume made with replica N"
    ))
}

/// `volume heal VOL info`.
pub async fn info(m: &Manager, volume: &str) -> Result<VolumeHeal> {
    let (v, g) = started_graph(m, volume)?;
    let sets = g.replica_sets();
    if sets.is_empty() {
        return Err(not_replicated(volume));
    }
    let mut out = VolumeHeal {
        volume: volume.to_string(),
        pending: 0,
        split_brain: 0,
        replica_sets: Vec::new(),
    };
    for a in sets {
        let HealInfo {
            replicate,
            replicas,
            split_brain,
        } = a.info().await;
        let bricks = replicas
            .into_iter()
            .map(|(client, connected, entries)| BrickHeal {
                brick: brick_of(&v, &client),
                client,
                connected,
                pending: entries.len(),
                entries: entries.into_iter().map(|e| e.path).collect(),
            })
            .collect::<Vec<_>>();
        out.pending += bricks.iter().map(|b| b.pending).sum::<usize>();
        out.split_brain += split_brain.len();
        out.replica_sets.push(ReplicaSetHeal {
            name: replicate,
            bricks,
            split_brain: split_brain.into_iter().map(|e| e.path).collect(),
        });
    }
    Ok(out)
}

/// What `volume heal` needs, checked before it runs as a job: the volume is started and
/// replicated.
pub fn check(m: &Manager, volume: &str) -> Result<()> {
    let (_, g) = started_graph(m, volume)?;
    if g.replica_sets().is_empty() {
        return Err(not_replicated(volume));
    }
    Ok(())
}

/// `volume heal VOL` (the indices now) or `volume heal VOL full` (the whole tree), telling
/// `progress` which replica set it is at and how many entries it went through.
pub async fn heal(
    m: &Manager,
    volume: &str,
    full: bool,
    progress: &crate::jobs::Progress,
) -> Result<VolumeHeal> {
    let (_, g) = started_graph(m, volume)?;
    let sets = g.replica_sets();
    if sets.is_empty() {
        return Err(not_replicated(volume));
    }
    let n = sets.len() as u64;
    let what = if full { "heal full" } else { "heal" };
    for (k, a) in sets.iter().enumerate() {
        let k = k as u64;
        progress.set(
            k,
            n,
            format!(
                "volume {what} {volume}: replica set {}/{n} ({})",
                k + 1,
                a.name()
            ),
        );
        if full {
            let report = |entries: usize, dirs: usize| {
                progress.set(
                    k,
                    n,
                    format!(
                        "volume {what} {volume}: replica set {}/{n} ({}): {entries} entries crawled, {dirs} directories to go",
                        k + 1,
                        a.name()
                    ),
                )
            };
            a.heal_full_with(&report)
                .await
                .map_err(|e| ManagerError::Invalid(format!("full heal of {}: {e}", a.name())))?;
        } else {
            let (healed, left) = a.crawl_index().await;
            progress.set(
                k + 1,
                n,
                format!(
                    "volume {what} {volume}: replica set {}/{n} ({}): {healed} healed, {left} left",
                    k + 1,
                    a.name()
                ),
            );
        }
    }
    progress.set(n, n, format!("volume {what} {volume}: reading heal info"));
    info(m, volume).await
}

/// The gfid of `path` in the volume, looked up from the root.
async fn gfid_of_path(g: &Graph, path: &str) -> Result<Gfid> {
    let parts = crate::volume::path_components(path, "path").map_err(ManagerError::Invalid)?;
    let top = g.top();
    let ctx = Ctx::root();
    let mut cur = Gfid::ROOT;
    let mut walked = String::new();
    for p in parts {
        walked.push('/');
        walked.push_str(p);
        let (ia, _) = top
            .lookup(
                &ctx,
                &Loc::child(cur, p).with_path(walked.clone()),
                &Xattrs::new(),
            )
            .await
            .map_err(|e| ManagerError::Invalid(format!("{walked}: {e}")))?;
        cur = ia.gfid;
    }
    Ok(cur)
}

/// `volume heal VOL split-brain bigger-file|latest-mtime|source-brick BRICK [PATH]`.
pub async fn split_brain(
    m: &Manager,
    volume: &str,
    policy: &str,
    brick: Option<&str>,
    path: Option<&str>,
) -> Result<Vec<Resolution>> {
    let (v, g) = started_graph(m, volume)?;
    let sets = g.replica_sets();
    if sets.is_empty() {
        return Err(not_replicated(volume));
    }
    let client = match (policy, brick) {
        ("source-brick", Some(b)) => Some(
            (0..v.bricks.len())
                .find(|i| format!("{}:{}", v.bricks[*i].host, v.bricks[*i].path) == b)
                .map(|i| v.client_name(i))
                .ok_or_else(|| {
                    ManagerError::Invalid(format!("{b} is not a brick of volume {volume}"))
                })?,
        ),
        ("source-brick", None) => {
            return Err(ManagerError::Invalid(
                "source-brick needs the brick (HOST:/PATH) whose copy wins".into(),
            ));
        }
        ("bigger-file" | "latest-mtime", _) => None,
        (p, _) => {
            return Err(ManagerError::Invalid(format!(
                "unknown split-brain policy {p:?}: bigger-file, latest-mtime or source-brick"
            )));
        }
    };
    if client.is_none() && path.is_none() {
        return Err(ManagerError::Invalid(format!(
            "{policy} needs the path of the file to resolve"
        )));
    }
    let gfid = match path {
        Some(p) => Some(gfid_of_path(&g, p).await?),
        None => None,
    };
    let mut out = Vec::new();
    for a in sets {
        let choice = match &client {
            Some(c) => match a.replica_index(c) {
                Some(i) => SplitBrainChoice::Source(i),
                None => continue,
            },
            None if policy == "bigger-file" => SplitBrainChoice::BiggerFile,
            None => SplitBrainChoice::LatestMtime,
        };
        if let Some(gf) = gfid
            && !a.holds(gf).await
        {
            continue;
        }
        for (p, r) in a.resolve(gfid, choice).await {
            let result = match r {
                Ok(o) => format!("{o:?}").to_lowercase(),
                Err(e) => e.to_string(),
            };
            out.push(Resolution {
                path: path.map(str::to_string).unwrap_or(p),
                result,
            });
        }
    }
    if out.is_empty() {
        return Err(ManagerError::Invalid(match path {
            Some(p) => format!("{p} is not in a replica set of that brick"),
            None => "no split-brain is known in that brick's replica set".into(),
        }));
    }
    Ok(out)
}

/// Keeps a crawler running for every replica set of every started volume.
pub fn start(m: &Arc<Manager>) -> tokio::task::JoinHandle<()> {
    let m = m.clone();
    tokio::spawn(async move {
        let mut watched: Vec<Weak<Afr>> = Vec::new();
        loop {
            watched.retain(|w| w.strong_count() > 0);
            let known: HashSet<usize> = watched.iter().map(|w| w.as_ptr() as usize).collect();
            for v in m.list().unwrap_or_default() {
                let Some(g) = m.graph(&v.name) else { continue };
                for a in g.replica_sets() {
                    if known.contains(&(Arc::as_ptr(&a) as usize)) {
                        continue;
                    }
                    watched.push(Arc::downgrade(&a));
                    tokio::spawn(crawler(
                        Arc::downgrade(&a),
                        v.name.clone(),
                        Arc::downgrade(&m),
                    ));
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    })
}

/// One replica set's crawler (and the source of its heal metrics): ends when its graph is gone
/// (the volume stopped). In a pool every node reads the indices, but only the node elected
/// for the set heals it: two crawlers would only contend for the same locks.
async fn crawler(a: Weak<Afr>, volume: String, m: Weak<Manager>) {
    loop {
        let Some(afr) = a.upgrade() else { return };
        let job = format!("heal/{volume}/{}", afr.name());
        // With `self-heal-daemon off` the indices are still read, for the metrics.
        if afr.heal_daemon && m.upgrade().is_some_and(|m| m.leads(&job)) {
            let (healed, left) = afr.crawl_index().await;
            if healed > 0 || left > 0 {
                tracing::debug!(volume = %volume, replicate = %afr.name(), healed, left, "heal crawl");
            }
        }
        let (per_brick, split) = afr.pending_counts().await;
        for (brick, n) in per_brick {
            if let Some(n) = n {
                engine::metrics::set_heal_pending(&volume, &brick, n);
            }
        }
        engine::metrics::set_split_brain(&volume, afr.name(), split);
        let woken = afr.came_back.notified();
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(CRAWL_EVERY) => {}
        }
    }
}
