//! A volume's client graph as its record says now, with the local bricks it needs running:
//! what `volume start` and a change of bricks on a started volume both build.

use crate::jobs::Progress;
use crate::manager::{Manager, ManagerError};
use crate::volume::VolumeRecord;
use engine::graph::Graph;
use engine::registry::Registry;
use std::time::Duration;

type Result<T> = std::result::Result<T, ManagerError>;

impl Manager {
    /// Has the local bricks of `v` that lack a brickd spawned, waits (up to `listen`) for them
    /// to listen, and builds and starts the client graph of `v` as it is recorded now.
    pub(crate) async fn spawn_and_graph(
        &self,
        v: &VolumeRecord,
        listen: Duration,
        progress: &Progress,
    ) -> Result<Graph> {
        self.write_secret(v)?;
        self.write_auth(v)?;
        let tls = self.brick_tls(v)?;
        self.bricks.spawn(
            v,
            &self.cfg,
            &self.secret_file(&v.name),
            &self.auth_file(&v.name),
            tls.as_ref(),
        );
        self.bricks
            .wait_listening(v, &self.cfg.brick_host(), listen, progress)
            .await;
        let text =
            v.client_volfile_with(self.cfg.ping_timeout, &self.cfg.brick_host(), tls.as_ref());
        let graph = Graph::from_text(&text, &Registry::client_side())
            .map_err(|e| ManagerError::Graph(v.name.clone(), e))?;
        if let Err(e) = graph.init().await {
            graph.fini().await;
            return Err(ManagerError::Graph(v.name.clone(), e));
        }
        Ok(graph)
    }
}
