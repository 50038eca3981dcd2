//! NFSv3 and MOUNT v3 over one TCP port (RFC 1813), on the engine's translator graph.
//!
//! Handles carry the volume id and the gfid (see `handle`), so they survive restarts; the
//! caller's AUTH_SYS identity reaches the engine after the export's squash options, and
//! permissions are checked here as a kernel would (the bricks run as root).

pub mod attr;
mod export;
#[cfg(any(test, feature = "fuzz"))]
#[doc(hidden)]
pub mod fuzz;
pub mod handle;
mod mount;
mod nfs3;
pub mod portmap;
pub mod rpc;
mod walk;
pub mod xdr;

pub use export::{Config, Export, ExportOptions, Exports, MOUNT_PROGRAM, NFS_PROGRAM};

use engine::fop::Ctx;
use engine::xlator::XlatorRef;
use std::sync::Arc;

/// The gfid of the directory `path` (relative to the volume's root) as MOUNT resolves an
/// export's, looked up as root: ENOENT if a component is missing, ENOTDIR if one is a file.
pub async fn export_dir(
    top: &XlatorRef,
    path: &str,
) -> Result<engine::fop::Gfid, engine::fop::Errno> {
    walk::walk(top, &Ctx::root(), path).await
}

/// Serves NFS and MOUNT on `listener` until it fails.
pub async fn serve(listener: tokio::net::TcpListener, cfg: Config) -> std::io::Result<()> {
    let server = Arc::new(nfs3::Server::new(cfg.exports));
    loop {
        let (stream, peer) = listener.accept().await?;
        tokio::spawn(rpc::serve_conn(server.clone(), stream, peer));
    }
}
