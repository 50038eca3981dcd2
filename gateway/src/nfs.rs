//! The NFSv3 endpoint: every volume is exported as `/NAME`, as GlusterFS's gNFS does.

use crate::manager::Manager;
use anyhow::Context;
use parking_lot::Mutex;
use protocols_nfs::{Export, ExportOptions, Exports};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a list of exports is reused: the list is read on every NFS call, the volume
/// records it comes from change only with management operations.
const REFRESH: Duration = Duration::from_secs(2);

struct VolumeExports {
    m: Arc<Manager>,
    cache: Mutex<Option<(Instant, Arc<Vec<Export>>)>>,
}

impl VolumeExports {
    fn load(&self) -> Arc<Vec<Export>> {
        let vols = match self.m.store.volumes() {
            Ok(v) => v,
            Err(e) => {
                tracing::error!("NFS: reading the volumes: {e}");
                Vec::new()
            }
        };
        Arc::new(
            vols.into_iter()
                .filter_map(|v| {
                    let id = uuid::Uuid::parse_str(&v.id).ok()?;
                    Some(Export {
                        path: format!("/{}", v.name),
                        volume: v.name,
                        volume_id: *id.as_bytes(),
                        subdir: String::new(),
                        options: ExportOptions::default(),
                    })
                })
                .collect(),
        )
    }
}

impl Exports for VolumeExports {
    fn exports(&self) -> Arc<Vec<Export>> {
        let mut c = self.cache.lock();
        if let Some((at, list)) = &*c
            && at.elapsed() < REFRESH
        {
            return list.clone();
        }
        let list = self.load();
        *c = Some((Instant::now(), list.clone()));
        list
    }

    fn graph(&self, volume: &str) -> Option<engine::xlator::XlatorRef> {
        self.m.graph(volume).map(|g| g.top())
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
        cache: Mutex::new(None),
    });
    let task = tokio::spawn(async move {
        if let Err(e) = protocols_nfs::serve(listener, protocols_nfs::Config { exports }).await {
            tracing::error!("NFS server stopped: {e}");
        }
    });
    tracing::info!(nfs = %bound, "NFS listening");
    Ok(Some((bound, task)))
}
