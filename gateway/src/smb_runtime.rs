//! What runs for SMB (Samba, the FUSE mounts it serves), kept by the manager for the SMB
//! reconciler (`crate::smb`).

use protocols_smb::{Smbd, Tools};
use std::collections::HashMap;

/// What runs for SMB right now; one reconcile at a time changes it.
#[derive(Default)]
pub struct SmbRuntime {
    pub(crate) inner: tokio::sync::Mutex<Running>,
}

#[derive(Default)]
pub(crate) struct Running {
    pub(crate) tools: Option<Tools>,
    pub(crate) mounts: HashMap<String, Mounted>,
    pub(crate) smbd: Option<Smbd>,
    /// In a pool: the NT hash of each SMB user's password this node's Samba holds.
    pub(crate) passwords: HashMap<String, String>,
    /// The port picked for smbd (`smb_listen` with port 0), held until smbd binds it itself.
    pub(crate) reserved: Option<tokio::net::TcpSocket>,
}

/// A volume's FUSE mount for Samba. Its top is the volume's current graph
/// (`crate::mounts::VolumeTop`), so it stays mounted, and smbd's sessions on it go on, when
/// the volume is stopped and started again between two reconciles.
pub(crate) struct Mounted {
    pub(crate) handle: protocols_fuse::MountHandle,
}
