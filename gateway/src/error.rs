//! The error of every management operation (volumes, bricks, keys, exports, shares), with the
//! HTTP status the API answers it with.

use crate::store::StoreError;
use crate::volume::SpecError;
use engine::graph::GraphError;

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("volume {0} does not exist")]
    NoSuchVolume(String),
    #[error("S3 key {0} does not exist")]
    NoSuchKey(String),
    #[error("{0} already exists")]
    Exists(String),
    #[error("no NFS export {0}")]
    NoSuchExport(String),
    #[error("no SMB share {0}")]
    NoSuchShare(String),
    #[error("no SMB user {0}")]
    NoSuchUser(String),
    #[error(transparent)]
    Smb(#[from] protocols_smb::SmbError),
    #[error("{0}")]
    Invalid(String),
    #[error("volume {0} is started; stop it first")]
    Started(String),
    #[error("volume {0} is not started")]
    NotStarted(String),
    #[error("{0}")]
    Brick(String),
    #[error("volume {0}: {1}")]
    Graph(String, GraphError),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("TLS for the brick RPC: {0}")]
    Tls(#[from] crate::tls::TlsSetupError),
    #[error("{0}")]
    NotInPool(String),
    #[error("{0}")]
    Busy(String),
}

impl ManagerError {
    /// The HTTP status the API answers with.
    pub fn status(&self) -> u16 {
        match self {
            ManagerError::NoSuchVolume(_)
            | ManagerError::NoSuchKey(_)
            | ManagerError::NoSuchExport(_)
            | ManagerError::NoSuchShare(_)
            | ManagerError::NoSuchUser(_)
            | ManagerError::NotInPool(_) => 404,
            ManagerError::Busy(_) => 409,
            ManagerError::Store(crate::store::StoreError::Etcd(_)) => 503,
            ManagerError::Smb(
                protocols_smb::SmbError::ShareName(_)
                | protocols_smb::SmbError::ReservedShare(_)
                | protocols_smb::SmbError::UserName(_)
                | protocols_smb::SmbError::ReservedUser(_)
                | protocols_smb::SmbError::Password
                | protocols_smb::SmbError::Unrepresentable(..),
            ) => 400,
            ManagerError::Smb(protocols_smb::SmbError::Missing(_)) => 501,
            ManagerError::Exists(_) | ManagerError::Started(_) | ManagerError::NotStarted(_) => 409,
            ManagerError::Spec(_) | ManagerError::Brick(_) | ManagerError::Invalid(_) => 400,
            _ => 500,
        }
    }
}
