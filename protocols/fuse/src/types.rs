//! The state a mount's requests share: the inode and open-handle tables and the settings.
//! A leaf module: the operation modules add their methods to these types elsewhere.

use dashmap::DashMap;
use engine::{FdRef, Gfid, Result, XlatorRef};
use fuser::FileHandle;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::runtime::Handle;

pub(crate) struct Inode {
    pub(crate) gfid: Gfid,
    pub(crate) parent: u64,
    pub(crate) name: String,
    pub(crate) nlookup: u64,
}

pub(crate) struct OpenFd {
    pub(crate) fd: FdRef,
    /// Set once a POSIX lock went through this handle, so close must drop the owner's locks.
    pub(crate) locked: AtomicBool,
}

pub(crate) struct Inner {
    pub(crate) top: XlatorRef,
    pub(crate) inodes: DashMap<u64, Inode>,
    pub(crate) fhs: DashMap<u64, Arc<OpenFd>>,
    pub(crate) next_fh: AtomicU64,
    pub(crate) attr_ttl: Duration,
    pub(crate) entry_ttl: Duration,
    pub(crate) metrics: engine::metrics::ProtocolOps,
    /// What the fops' `Ctx` names as their protocol (`fuse`, or `smb` for Samba's mount), so
    /// debug/io-stats counts them under it.
    pub(crate) protocol: &'static str,
}

pub(crate) struct Fs {
    pub(crate) inner: Arc<Inner>,
    pub(crate) rt: Handle,
}

impl Inner {
    pub(crate) fn fd(&self, fh: FileHandle) -> Result<Arc<OpenFd>> {
        self.fhs
            .get(&fh.0)
            .map(|f| f.clone())
            .ok_or(engine::Errno::EBADF)
    }

    pub(crate) fn keep(&self, fd: FdRef) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.fhs.insert(
            fh,
            Arc::new(OpenFd {
                fd,
                locked: AtomicBool::new(false),
            }),
        );
        fh
    }
}
