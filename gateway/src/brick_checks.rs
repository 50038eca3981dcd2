//! The checks a brick passes before a volume is made of it: a local brick's directory (and the
//! volume id it may already carry), a remote brick's host name.

use crate::error::ManagerError;
use crate::volume::BrickRecord;
use std::path::Path;
use std::time::Duration;

type Result<T> = std::result::Result<T, ManagerError>;

/// The id of the volume a brick directory belongs to, if any; the error is a sentence.
pub fn read_volume_id(path: &Path) -> std::result::Result<Option<String>, String> {
    engine::brick_dir::volume_id(path)
        .map(|id| id.map(|g| g.to_string()))
        .map_err(|e| e.to_string())
}

/// A local brick's path, before anything is made: an existing directory, or a path whose
/// parent is one (any missing parents too with `force`), with no file in the way.
pub fn check_brick_path(b: &BrickRecord, force: bool) -> Result<()> {
    let spec = format!("{}:{}", b.host, b.path);
    let p = Path::new(&b.path);
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(ManagerError::Brick(format!(
                "brick {spec}: {} exists and is not a directory",
                b.path
            )));
        }
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ENOTDIR) => {}
        Err(e) => return Err(ManagerError::Brick(format!("brick {spec}: {e}"))),
    }
    // The nearest ancestor that exists must be a directory.
    let mut up = p.parent();
    while let Some(a) = up {
        match std::fs::metadata(a) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(ManagerError::Brick(format!(
                    "brick {spec}: {} is a file, not a directory",
                    a.display()
                )));
            }
            Err(_) => up = a.parent(),
        }
    }
    let parent = p.parent().unwrap_or(Path::new("/"));
    if !force && !parent.is_dir() {
        return Err(ManagerError::Brick(format!(
            "brick {spec}: its parent directory {} does not exist; create it first (or add `force` to create it with its parents)",
            parent.display()
        )));
    }
    Ok(())
}

/// A remote brick's host must resolve now, or `volume start` would wait for a brick nobody
/// can reach.
pub async fn check_host_resolves(b: &BrickRecord) -> Result<()> {
    let spec = format!("{}:{}", b.host, b.path);
    let looked = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::lookup_host((b.host.as_str(), b.port)),
    )
    .await
    .map(|r| r.map(|addrs| addrs.count()));
    match looked {
        Ok(Ok(n)) if n > 0 => Ok(()),
        Ok(Ok(_)) => Err(ManagerError::Brick(format!(
            "brick {spec}: host {} resolves to no address",
            b.host
        ))),
        Ok(Err(e)) => Err(ManagerError::Brick(format!(
            "brick {spec}: host {} cannot be resolved ({e}); give a host name this gateway resolves (DNS or /etc/hosts) or an address",
            b.host
        ))),
        Err(_) => Err(ManagerError::Brick(format!(
            "brick {spec}: resolving host {} timed out",
            b.host
        ))),
    }
}
