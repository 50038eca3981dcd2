//! What `volume start` and `volume status` answer: the volume's layout and each brick's process
//! and reachability.

use crate::volume::VolumeView;
use serde::Serialize;

/// One brick of `volume status`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BrickStatus {
    /// GlusterFS's name for the brick's client: VOLUME-client-N.
    pub name: String,
    pub host: String,
    pub path: String,
    pub port: u16,
    /// The replica set the brick belongs to (brick index / replica).
    pub replica_set: usize,
    /// True for the arbiter brick of a `replica 3 arbiter 1` set.
    pub arbiter: bool,
    pub local: bool,
    /// True while the gateway's brick RPC connection to it answers pings: a brick that hangs is
    /// false within ping-timeout, even while its port still accepts connections.
    pub online: bool,
    /// Why it is not online: the brick RPC's error, or why its brickd exited.
    pub offline_reason: Option<String>,
    pub pid: Option<u32>,
    pub restarts: u32,
    /// Size and free space of the file system holding a local brick (bytes).
    pub total_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
}

/// (total, available to unprivileged writers) bytes of the file system holding `path`.
pub fn capacity(path: &str) -> Option<(u64, u64)> {
    let c = std::ffi::CString::new(path).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs writes into `st`, a properly sized struct we own.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some((st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize))
}

/// `volume status`: the volume's layout and each brick's process and reachability.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct VolumeStatus {
    pub name: String,
    pub id: String,
    /// `distribute`, `replicate` or `distributed-replicate`.
    pub kind: String,
    /// Bricks per replica set (1: no replication).
    pub replica: usize,
    /// Arbiter bricks per replica set (0 or 1).
    pub arbiter: usize,
    pub started: bool,
    /// True when the gateway's client graph reaches the volume.
    pub mounted_graph_up: bool,
    pub bricks: Vec<BrickStatus>,
}

/// A brick that is not online, and why.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OfflineBrick {
    /// VOLUME-client-N.
    pub name: String,
    /// HOST:/PATH.
    pub brick: String,
    pub reason: String,
}

/// What `volume start` did: the volume, and how many of its bricks answer.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct StartReport {
    pub volume: VolumeView,
    pub bricks_total: usize,
    pub bricks_online: usize,
    /// The bricks not online when the start finished; the volume comes up with them when
    /// they answer.
    pub offline: Vec<OfflineBrick>,
}
