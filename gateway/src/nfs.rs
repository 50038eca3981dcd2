//! NFS exports kept by gatewayd, and the NFSv3 endpoint serving them.
//!
//! Every volume is exported as `/NAME` with default options (as GlusterFS's gNFS does) unless
//! its option `nfs.disable` is on; `gwctl nfs export add` adds exports of a volume or of a
//! directory in it, or replaces a volume's default export with one that has options.

use crate::manager::{Manager, ManagerError};
use crate::store::NfsExportRecord;
use anyhow::Context;
use arc_swap::ArcSwapOption;
use protocols_nfs::{Export, ExportOptions, Exports};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a list of exports is reused when nothing announced a change: it is read on every
/// NFS call, and volumes appear with management operations only.
const REFRESH: Duration = Duration::from_secs(2);

/// Splits `/vol/sub/dir` into the volume and the directory inside it, refusing what no
/// export path can be (relative, `..`, empty components are folded away).
pub fn split_path(path: &str) -> Result<(String, String), ManagerError> {
    if !path.starts_with('/') {
        return Err(ManagerError::Invalid(format!(
            "export path {path:?} must be absolute: /VOLUME[/DIR]"
        )));
    }
    let parts =
        crate::volume::path_components(path, "export path").map_err(ManagerError::Invalid)?;
    let Some((vol, rest)) = parts.split_first() else {
        return Err(ManagerError::Invalid(
            "export path / names no volume: /VOLUME[/DIR]".into(),
        ));
    };
    Ok((vol.to_string(), rest.join("/")))
}

pub fn canonical_path(path: &str) -> Result<String, ManagerError> {
    let (vol, dir) = split_path(path)?;
    Ok(if dir.is_empty() {
        format!("/{vol}")
    } else {
        format!("/{vol}/{dir}")
    })
}

fn parse_network(n: &str) -> Result<ipnet::IpNet, ManagerError> {
    n.parse::<ipnet::IpNet>()
        .or_else(|_| n.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            ManagerError::Invalid(format!(
                "{n:?} is not a network like 10.0.0.0/8 or an address"
            ))
        })
}

/// Adds (or replaces) an export after checking its volume exists, its options parse and, for
/// an export of a directory, that the directory exists (which needs the volume started): an
/// export of nothing would fail every MOUNT of it, and libnfs mounts the exports nested below
/// the one it is asked for.
pub async fn add_export(
    m: &Manager,
    mut e: NfsExportRecord,
) -> Result<NfsExportRecord, ManagerError> {
    e.path = canonical_path(&e.path)?;
    let (vol, dir) = split_path(&e.path)?;
    m.get(&vol)?;
    for n in &e.networks {
        parse_network(n)?;
    }
    if !dir.is_empty() {
        let Some(g) = m.graph(&vol) else {
            return Err(ManagerError::Invalid(format!(
                "export {}: volume {vol} is not started, so /{dir} cannot be checked; start it first",
                e.path
            )));
        };
        match protocols_nfs::export_dir(&g.top(), &dir).await {
            Ok(_) => {}
            Err(engine::fop::Errno::ENOENT) => {
                return Err(ManagerError::Invalid(format!(
                    "export {}: there is no directory /{dir} in volume {vol}; make it first (mkdir on a mount of the volume)",
                    e.path
                )));
            }
            Err(engine::fop::Errno::ENOTDIR) => {
                return Err(ManagerError::Invalid(format!(
                    "export {}: /{dir} in volume {vol} is not a directory",
                    e.path
                )));
            }
            Err(err) => {
                return Err(ManagerError::Invalid(format!(
                    "export {}: cannot look up /{dir} in volume {vol}: {err}",
                    e.path
                )));
            }
        }
    }
    m.store
        .put_nfs_export(&e, &format!("nfs export add {}", e.path))?;
    m.nfs_generation.fetch_add(1, Ordering::SeqCst);
    Ok(e)
}

pub fn remove_export(m: &Manager, path: &str) -> Result<NfsExportRecord, ManagerError> {
    let path = canonical_path(path)?;
    let e = m
        .store
        .nfs_exports()?
        .into_iter()
        .find(|e| e.path == path)
        .ok_or_else(|| ManagerError::NoSuchExport(path.clone()))?;
    m.store
        .delete_nfs_export(&path, &format!("nfs export remove {path}"))?;
    m.nfs_generation.fetch_add(1, Ordering::SeqCst);
    Ok(e)
}

/// An export as listed: configured ones and the volumes' defaults.
#[derive(Debug, Clone, Serialize)]
pub struct ExportView {
    #[serde(flatten)]
    pub record: NfsExportRecord,
    pub volume: String,
    /// True for a volume's implicit export (no `nfs export add` made it).
    pub default: bool,
}

pub fn list_exports(m: &Manager) -> Result<Vec<ExportView>, ManagerError> {
    let configured = m.store.nfs_exports()?;
    let mut out = Vec::new();
    for v in m.store.volumes()? {
        let mine: Vec<&NfsExportRecord> = configured
            .iter()
            .filter(|e| split_path(&e.path).is_ok_and(|(vol, _)| vol == v.name))
            .collect();
        let disabled = v.nfs_disabled();
        let own_root = format!("/{}", v.name);
        if !disabled && !mine.iter().any(|e| e.path == own_root) {
            let o = ExportOptions::default();
            out.push(ExportView {
                record: NfsExportRecord {
                    path: own_root,
                    read_only: o.read_only,
                    root_squash: o.root_squash,
                    all_squash: o.all_squash,
                    anonuid: o.anonuid,
                    anongid: o.anongid,
                    networks: Vec::new(),
                },
                volume: v.name.clone(),
                default: true,
            });
        }
        for e in mine {
            out.push(ExportView {
                record: e.clone(),
                volume: v.name.clone(),
                default: false,
            });
        }
    }
    Ok(out)
}

/// A list of exports, when it was read and the export generation it reflects.
struct Cached {
    at: Instant,
    generation: u64,
    list: Arc<Vec<Export>>,
}

struct VolumeExports {
    m: Arc<Manager>,
    /// Read on every NFS call without a lock; replaced whole when stale (two callers may both
    /// reload at that moment, which is harmless).
    cache: ArcSwapOption<Cached>,
}

impl VolumeExports {
    fn load(&self) -> Arc<Vec<Export>> {
        let views = match list_exports(&self.m) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!("NFS: reading the exports: {e}");
                Vec::new()
            }
        };
        let ids: std::collections::HashMap<String, [u8; 16]> = self
            .m
            .store
            .volumes()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| Some((v.name, *uuid::Uuid::parse_str(&v.id).ok()?.as_bytes())))
            .collect();
        Arc::new(
            views
                .into_iter()
                .filter_map(|v| {
                    let (_, subdir) = split_path(&v.record.path).ok()?;
                    let r = v.record;
                    Some(Export {
                        volume_id: *ids.get(&v.volume)?,
                        metrics: Arc::new(engine::metrics::VolumeOps::new("nfs", &v.volume)),
                        path: r.path,
                        volume: v.volume,
                        subdir,
                        options: ExportOptions {
                            read_only: r.read_only,
                            root_squash: r.root_squash,
                            all_squash: r.all_squash,
                            anonuid: r.anonuid,
                            anongid: r.anongid,
                            networks: r
                                .networks
                                .iter()
                                .filter_map(|n| parse_network(n).ok())
                                .collect(),
                        },
                    })
                })
                .collect(),
        )
    }
}

impl Exports for VolumeExports {
    fn exports(&self) -> Arc<Vec<Export>> {
        let generation = self.m.nfs_generation.load(Ordering::SeqCst);
        if let Some(k) = &*self.cache.load()
            && k.generation == generation
            && k.at.elapsed() < REFRESH
        {
            return k.list.clone();
        }
        let list = self.load();
        self.cache.store(Some(Arc::new(Cached {
            at: Instant::now(),
            generation,
            list: list.clone(),
        })));
        list
    }

    fn graph(&self, volume: &str) -> Option<engine::xlator::XlatorRef> {
        self.m.graph(volume).map(|g| g.top())
    }
}

const RPCBIND: ([u8; 4], u16) = ([127, 0, 0, 1], 111);

/// Withdraws what `start` registered with rpcbind, if anything.
pub async fn stop(m: &Manager) {
    if m.cfg.nfs_rpcbind && m.cfg.nfs_listen.is_some() {
        let _ = protocols_nfs::portmap::unregister(RPCBIND.into()).await;
    }
}

/// Binds `cfg.nfs_listen` and serves NFS and MOUNT there. Returns the bound address.
pub async fn start(
    m: &Arc<Manager>,
) -> anyhow::Result<Option<(std::net::SocketAddr, tokio::task::JoinHandle<()>)>> {
    let Some(addr) = m.cfg.nfs_listen else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening for NFS on {addr}"))?;
    let bound = listener.local_addr()?;
    let exports = Arc::new(VolumeExports {
        m: m.clone(),
        cache: ArcSwapOption::empty(),
    });
    let task = tokio::spawn(async move {
        if let Err(e) = protocols_nfs::serve(listener, protocols_nfs::Config { exports }).await {
            tracing::error!("NFS server stopped: {e}");
        }
    });
    tracing::info!(nfs = %bound, "NFS listening");
    if m.cfg.nfs_rpcbind {
        match protocols_nfs::portmap::register(RPCBIND.into(), bound.port()).await {
            Ok(()) => tracing::info!(port = bound.port(), "NFS and MOUNT registered with rpcbind"),
            Err(protocols_nfs::portmap::PortmapError::NotRunning(_)) => {
                tracing::info!(
                    "rpcbind is not running: clients must name the NFS port (port=, mountport=)"
                )
            }
            Err(e) => tracing::warn!("registering with rpcbind: {e}"),
        }
    }
    Ok(Some((bound, task)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_paths() {
        assert_eq!(canonical_path("/vol//a/./b/").unwrap(), "/vol/a/b");
        assert_eq!(canonical_path("/vol").unwrap(), "/vol");
        assert!(canonical_path("vol").is_err());
        assert!(canonical_path("/vol/../x").is_err());
        assert!(canonical_path("/").is_err());
        assert!(parse_network("10.0.0.0/8").is_ok());
        assert!(parse_network("192.168.1.7").is_ok());
        assert!(parse_network("nope").is_err());
    }
}
