//! Mounting: the mount options, the session's start (with the capabilities negotiated with
//! the kernel) and its stop.

use crate::types::{Fs, Inner, Inode};
use dashmap::DashMap;
use engine::{Gfid, XlatorRef};
use fuser::{Config, InitFlags, KernelConfig, MountOption, SessionACL};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::runtime::Handle;

#[derive(Debug, thiserror::Error)]
pub enum FuseError {
    #[error("mount point {0}: {1}")]
    Mountpoint(PathBuf, std::io::Error),
    #[error("mounting at {0}: {1}")]
    Mount(PathBuf, std::io::Error),
}

#[derive(Clone, Debug)]
pub struct MountOptions {
    pub fsname: String,
    pub attr_timeout: Duration,
    pub entry_timeout: Duration,
    pub threads: usize,
    pub allow_other: bool,
    /// The `protocol` label of this mount's operations in /metrics: `fuse` for a user's
    /// mount, `smb` for the one Samba serves.
    pub protocol: &'static str,
    /// The volume mounted, for its per-volume request count (`gateway_volume_operations_total`).
    pub volume: String,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            fsname: "gwfs".into(),
            attr_timeout: Duration::from_secs(1),
            entry_timeout: Duration::from_secs(1),
            threads: 4,
            allow_other: true,
            protocol: "fuse",
            volume: String::new(),
        }
    }
}

pub struct MountHandle {
    pub(crate) session: Option<fuser::BackgroundSession>,
    mountpoint: PathBuf,
    /// For `invalidate`: which inodes the kernel holds.
    pub(crate) inner: Arc<Inner>,
}

impl MountHandle {
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Unmounts and waits for the dispatch threads to end.
    pub fn unmount(mut self) -> std::io::Result<()> {
        self.do_unmount()
    }

    /// Blocks until the file system is unmounted from outside (`umount`).
    pub fn wait(mut self) -> std::io::Result<()> {
        match self.session.take() {
            Some(s) => s.join(),
            None => Ok(()),
        }
    }

    fn do_unmount(&mut self) -> std::io::Result<()> {
        let Some(s) = self.session.take() else {
            return Ok(());
        };
        match s.umount_and_join() {
            Ok(()) => Ok(()),
            Err(e) => {
                // A busy mount (a shell cd'ed into it) cannot go cleanly; detach it lazily
                // so the process can still exit.
                let lazy = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(&self.mountpoint)
                    .status();
                if lazy.is_ok_and(|s| s.success()) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

impl Drop for MountHandle {
    fn drop(&mut self) {
        if let Err(e) = self.do_unmount() {
            tracing::warn!(mountpoint = %self.mountpoint.display(), "unmount failed: {e}");
        }
    }
}

/// Mounts `top` at `mountpoint`. Requests run as tasks on `rt`.
pub fn mount(
    top: XlatorRef,
    mountpoint: &Path,
    opts: MountOptions,
    rt: Handle,
) -> std::result::Result<MountHandle, FuseError> {
    let mp = mountpoint
        .canonicalize()
        .map_err(|e| FuseError::Mountpoint(mountpoint.to_path_buf(), e))?;
    let mut cfg = Config::default();
    cfg.mount_options = vec![
        MountOption::FSName(opts.fsname.clone()),
        MountOption::Subtype("gwfs".into()),
        // The kernel checks permissions against the attributes, as for a local file system.
        MountOption::DefaultPermissions,
        MountOption::Dev,
        MountOption::Suid,
    ];
    if opts.allow_other {
        cfg.acl = SessionACL::All;
    }
    cfg.n_threads = Some(opts.threads.max(1));
    cfg.clone_fd = true;
    let fs = Fs {
        inner: Arc::new(Inner {
            top,
            inodes: DashMap::new(),
            fhs: DashMap::new(),
            next_fh: AtomicU64::new(1),
            attr_ttl: opts.attr_timeout,
            entry_ttl: opts.entry_timeout,
            metrics: engine::metrics::ProtocolOps::new(opts.protocol, FUSE_OPS)
                .with_volume(&opts.volume),
            protocol: opts.protocol,
        }),
        rt,
    };
    fs.inner.inodes.insert(
        1,
        Inode {
            gfid: Gfid::ROOT,
            parent: 1,
            name: String::new(),
            nlookup: 1,
        },
    );
    let inner = fs.inner.clone();
    let session = fuser::spawn_mount(fs, &mp, &cfg).map_err(|e| FuseError::Mount(mp.clone(), e))?;
    tracing::info!(mountpoint = %mp.display(), "mounted");
    Ok(MountHandle {
        session: Some(session),
        mountpoint: mp,
        inner,
    })
}

/// The FUSE requests counted in the metrics.
const FUSE_OPS: &[&str] = &[
    "access",
    "create",
    "fallocate",
    "flush",
    "fsync",
    "fsyncdir",
    "getattr",
    "getlk",
    "getxattr",
    "link",
    "listxattr",
    "lookup",
    "mkdir",
    "mknod",
    "open",
    "opendir",
    "read",
    "readdir",
    "readdirplus",
    "readlink",
    "release",
    "releasedir",
    "removexattr",
    "rename",
    "rmdir",
    "setattr",
    "setlk",
    "setxattr",
    "statfs",
    "symlink",
    "unlink",
    "write",
];

/// Answers the kernel's `init`: the capabilities and sizes this file system asks for.
pub(crate) fn init(config: &mut KernelConfig) {
    for cap in [
        InitFlags::FUSE_ASYNC_READ,
        InitFlags::FUSE_BIG_WRITES,
        InitFlags::FUSE_POSIX_LOCKS,
        // Always readdirplus, not the kernel's "auto" choice: that falls back to plain readdir
        // after the first batch unless lookups come between batches, and `ls -l` reads the
        // whole directory before its first lstat, so every entry after the first batch cost
        // a lookup round trip (5x slower than GlusterFS on 1,000 entries).
        InitFlags::FUSE_DO_READDIRPLUS,
        InitFlags::FUSE_PARALLEL_DIROPS,
        InitFlags::FUSE_AUTO_INVAL_DATA,
        InitFlags::FUSE_ATOMIC_O_TRUNC,
        InitFlags::FUSE_MAX_PAGES,
    ] {
        let _ = config.add_capabilities(cap);
    }
    let _ = config.set_max_write(1 << 20);
    let _ = config.set_max_readahead(1 << 20);
    // Many requests in flight (readahead, async reads, the writes of several threads) before
    // the kernel holds callers back: the kernel's defaults (12, with congestion at 9) were
    // made for disk-backed FUSE file systems that serve one request at a time.
    let _ = config.set_max_background(128);
    let _ = config.set_congestion_threshold(96);
}
