//! A node follows the pool's state: what another node changed in etcd is applied here at
//! once. A volume started anywhere is started here (this node's bricks spawned, a client graph
//! for every protocol); one stopped or deleted is stopped; a volume whose bricks changed gets
//! a new graph; bricks no longer this node's are stopped; NFS exports and SMB shares are read
//! again. A change that could not be applied is tried again every few seconds.

use crate::jobs::Progress;
use crate::manager::Manager;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often the state is applied again when nothing changed (a start that failed, a brick
/// that could not be stopped).
const RETRY_EVERY: Duration = Duration::from_secs(5);

impl Manager {
    /// Applies the pool's state whenever it changes, for the life of the daemon.
    pub fn follow_pool(self: &Arc<Manager>) -> Option<tokio::task::JoinHandle<()>> {
        let c = self.cluster.clone()?;
        let m = Arc::downgrade(self);
        let mut changes = c.etcd.subscribe();
        Some(tokio::spawn(async move {
            let mut shares = String::new();
            loop {
                tokio::select! {
                    r = changes.changed() => if r.is_err() { return },
                    _ = tokio::time::sleep(RETRY_EVERY) => {}
                }
                // A burst of changes (a volume's record and its log line) is applied once.
                tokio::time::sleep(Duration::from_millis(50)).await;
                changes.mark_unchanged();
                let Some(m) = m.upgrade() else { return };
                m.reconcile().await;
                // A rebalance whose node died is taken over here, if this node claims it.
                m.resume_rebalances();
                let now = m.shares_fingerprint();
                if now != shares {
                    shares = now;
                    m.nfs_generation.fetch_add(1, Ordering::SeqCst);
                    m.smb_changed.notify_one();
                }
            }
        }))
    }

    /// NFS exports and SMB shares and users as recorded: when it changes, the NFS server and
    /// Samba read them again.
    fn shares_fingerprint(&self) -> String {
        format!(
            "{:?}{:?}{:?}{:?}",
            self.store.nfs_exports().unwrap_or_default(),
            self.store.smb_shares().unwrap_or_default(),
            self.store.smb_users().unwrap_or_default(),
            self.store
                .meta_records::<serde_json::Value>("smbsecret/")
                .unwrap_or_default()
        )
    }

    async fn reconcile(self: &Arc<Manager>) {
        let Ok(vols) = self.list() else { return };
        for v in &vols {
            let running = self.graph(&v.name).is_some();
            let built = self.built.lock().get(&v.name).cloned();
            let job = if v.started && !running {
                Some("start")
            } else if !v.started && running {
                Some("stop")
            } else if running && built.as_ref().is_some_and(|b| *b != v.bricks) {
                Some("regraph")
            } else {
                None
            };
            let Some(job) = job else { continue };
            if !self.applying.lock().insert(v.name.clone()) {
                continue;
            }
            let m = self.clone();
            let name = v.name.clone();
            tokio::spawn(async move {
                let r = m.apply(&name, job).await;
                m.applying.lock().remove(&name);
                if let Err(e) = r {
                    tracing::warn!(volume = %name, node = %m.node_name(), "could not {job} the volume as the pool asks: {e}");
                }
            });
        }
        // Volumes deleted elsewhere while running here.
        let gone: Vec<String> = self
            .graphs
            .read()
            .keys()
            .filter(|n| !vols.iter().any(|v| &v.name == *n))
            .cloned()
            .collect();
        for name in gone {
            if !self.applying.lock().insert(name.clone()) {
                continue;
            }
            let m = self.clone();
            tokio::spawn(async move {
                let _g = m.op_lock.lock().await;
                if m.get(&name).is_err() {
                    tracing::info!(volume = %name, "volume deleted in the pool: stopping it here");
                    m.stop_running(&name, &Progress::none()).await;
                }
                m.applying.lock().remove(&name);
            });
        }
    }

    /// Does one change of the pool's state here, under the management lock, after checking
    /// it is still wanted (the state may have moved on while this waited).
    async fn apply(&self, name: &str, job: &str) -> Result<(), crate::manager::ManagerError> {
        let _g = self.op_lock.lock().await;
        let v = self.get(name)?;
        let running = self.graph(name).is_some();
        match job {
            "start" if v.started && !running => {
                tracing::info!(volume = %name, node = %self.node_name(), "volume started in the pool: starting it here");
                let r = self.start_locked(name, &Progress::none()).await?;
                tracing::info!(volume = %name, "{}/{} bricks online", r.bricks_online, r.bricks_total);
            }
            "stop" if !v.started && running => {
                tracing::info!(volume = %name, node = %self.node_name(), "volume stopped in the pool: stopping it here");
                self.stop_running(name, &Progress::none()).await;
            }
            "regraph" if running && self.built.lock().get(name).is_some_and(|b| *b != v.bricks) => {
                tracing::info!(volume = %name, node = %self.node_name(), "the volume's bricks changed in the pool: new graph here");
                self.write_auth(&v)?;
                self.regraph(&v).await?;
                self.stop_bricks_not_in(&v).await;
            }
            _ => {}
        }
        Ok(())
    }

    /// Stops this node's brickd of bricks `v` no longer has (removed or replaced elsewhere).
    async fn stop_bricks_not_in(&self, v: &crate::volume::VolumeRecord) {
        for (client, path) in self.bricks.running(&v.name) {
            let kept =
                (0..v.bricks.len()).any(|i| v.client_name(i) == client && v.bricks[i].path == path);
            if !kept {
                self.bricks.stop_brick(&v.name, &client, &path).await;
            }
        }
    }
}
