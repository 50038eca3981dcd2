//! Bricks a volume is about to take (volume create, add-brick, replace-brick): their records
//! and ports, the checks that refuse a brick before anything is made, and their directories
//! made, here or (in a pool) by the node each belongs to.

use crate::brick_checks::{check_brick_path, check_host_resolves, read_volume_id};
use crate::manager::{Manager, ManagerError};
use crate::supervisor::free_port;
use crate::volume::{self, BrickRecord, is_local_host};
use std::path::Path;

type Result<T> = std::result::Result<T, ManagerError>;

impl Manager {
    pub(crate) fn brick_records(&self, specs: &[String]) -> Result<Vec<BrickRecord>> {
        if specs.is_empty() {
            return Err(ManagerError::Invalid(
                "a volume needs at least one brick: HOST:/PATH".into(),
            ));
        }
        let parsed = volume::parse_bricks(specs)?;
        // Ports other volumes' bricks were given: free now if those volumes are stopped, but
        // theirs.
        let taken: std::collections::HashSet<u16> = self
            .list()?
            .iter()
            .flat_map(|v| v.bricks.iter().map(|b| b.port))
            .collect();
        let mut held = Vec::new();
        let mut out = Vec::new();
        for (i, (host, path)) in parsed.into_iter().enumerate() {
            let port = if is_local_host(&host) {
                loop {
                    let (port, l) = free_port(&self.cfg.brick_listen_host)
                        .map_err(|e| ManagerError::Io("choosing a brick port".into(), e))?;
                    held.push(l);
                    if !taken.contains(&port) {
                        break port;
                    }
                }
            } else {
                // A remote brick is served by a brickd an operator starts on that host, on
                // GlusterFS's brick port range.
                49152 + i as u16
            };
            out.push(BrickRecord::new(host, path, port));
        }
        Ok(out)
    }

    /// Checks new bricks (a local one's directory, a remote one's host), then makes the local
    /// ones' directories: everything is checked before anything is made, so a refusal leaves
    /// no trace. A directory that already belongs to a volume is refused. In a pool, another
    /// node's bricks are checked and made by that node, which gives them their ports; and
    /// nothing is made unless etcd answers, since the volume could not be recorded.
    pub(crate) async fn prepare_new_bricks(
        &self,
        bricks: &mut [BrickRecord],
        force: bool,
    ) -> Result<()> {
        self.store.check_writable()?;
        for b in bricks.iter() {
            if is_local_host(&b.host) {
                check_brick_path(b, force)?;
            } else if self.cluster.is_none() {
                check_host_resolves(b).await?;
            }
        }
        let ports = self.prepare_remote_bricks(bricks, force).await?;
        for (b, p) in bricks.iter_mut().zip(ports) {
            if let Some(p) = p {
                b.port = p;
            }
        }
        for b in bricks.iter().filter(|b| is_local_host(&b.host)) {
            let p = Path::new(&b.path);
            if let Some(id) = read_volume_id(p).ok().flatten().filter(|_| p.is_dir()) {
                return Err(ManagerError::Brick(format!(
                    "brick {}:{} is already part of volume {id}; use `volume import` to adopt it",
                    b.host, b.path
                )));
            }
        }
        for b in bricks.iter().filter(|b| is_local_host(&b.host)) {
            let p = Path::new(&b.path);
            let made = if force {
                std::fs::create_dir_all(p)
            } else {
                match std::fs::create_dir(p) {
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                    r => r,
                }
            };
            made.map_err(|e| {
                ManagerError::Brick(format!(
                    "brick {}:{}: cannot create its directory: {e}",
                    b.host, b.path
                ))
            })?;
            if let Some(id) = read_volume_id(p).map_err(ManagerError::Brick)? {
                return Err(ManagerError::Brick(format!(
                    "brick {}:{} is already part of volume {id}; use `volume import` to adopt it",
                    b.host, b.path
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn check_not_in_use(&self, bricks: &[BrickRecord]) -> Result<()> {
        for other in self.store.volumes()? {
            for b in bricks {
                if other
                    .bricks
                    .iter()
                    .any(|o| o.host == b.host && o.path == b.path)
                {
                    return Err(ManagerError::Brick(format!(
                        "brick {}:{} is already a brick of volume {}",
                        b.host, b.path, other.name
                    )));
                }
            }
        }
        Ok(())
    }
}
