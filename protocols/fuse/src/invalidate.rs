//! Telling the kernel what other clients changed: the graph's upcalls (a brick saying another
//! client changed an inode this one looked at) become FUSE notifications, as GlusterFS's
//! fuse-bridge does with `fuse_invalidate_inode` / `fuse_invalidate_entry`. Without them a
//! second mount would serve its kernel's cached attributes, names and pages until their
//! timeouts ran out.
//!
//! The notifications are writes to /dev/fuse that the kernel may hold while it finishes a
//! request on the same inode, so they are made from a thread of their own, never from a
//! runtime worker or a request's task.

use crate::mount::MountHandle;
use crate::types::Inner;
use engine::{Gfid, Upcall, upcall_flags};
use fuser::{INodeNo, Notifier};
use std::ffi::OsStr;
use std::sync::{Arc, Weak};
use tokio::sync::mpsc;

/// Turns upcalls into kernel invalidations for one mount.
#[derive(Clone)]
pub struct Invalidator {
    notifier: Notifier,
    inner: Weak<Inner>,
}

impl MountHandle {
    /// What tells this mount's kernel of other clients' changes; None once unmounted.
    pub fn invalidator(&self) -> Option<Invalidator> {
        let s = self.session.as_ref()?;
        Some(Invalidator {
            notifier: s.notifier(),
            inner: Arc::downgrade(&self.inner),
        })
    }
}

impl Invalidator {
    /// Runs the invalidations of every upcall `rx` brings on a thread of its own, until the
    /// senders are gone or the mount is.
    pub fn follow(self, mut rx: mpsc::UnboundedReceiver<Upcall>) {
        let spawned = std::thread::Builder::new()
            .name("fuse-invalidate".into())
            .spawn(move || {
                while let Some(u) = rx.blocking_recv() {
                    if !self.upcall(&u) {
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the FUSE invalidation thread: {e}");
        }
    }

    /// Invalidates what `u` names in the kernel's caches; false once the mount is gone.
    /// Blocks (see the module's comment).
    pub fn upcall(&self, u: &Upcall) -> bool {
        let Some(inner) = self.inner.upgrade() else {
            return false;
        };
        if u.is_forget_all() {
            let all: Vec<u64> = inner.inodes.iter().map(|e| *e.key()).collect();
            for ino in all {
                self.inode(ino);
            }
            return true;
        }
        let ino = ino_of(u.gfid);
        if !inner.inodes.contains_key(&ino) {
            // The kernel holds nothing of it (never looked up here, or forgotten).
            return true;
        }
        // Attributes and cached pages (len 0: all of them; a directory's cached listing too).
        self.inode(ino);
        if u.flags & (upcall_flags::ENTRIES | upcall_flags::GONE) != 0 {
            // The kernel's dentries under it: the names it knows of, from the inode table.
            // Names it was told do not exist are never cached (lookup answers ENOENT as an
            // error, not as a negative entry with a timeout).
            let children: Vec<String> = inner
                .inodes
                .iter()
                .filter(|e| e.parent == ino && *e.key() != ino)
                .map(|e| e.name.clone())
                .collect();
            for name in children {
                if let Err(e) = self.notifier.inval_entry(INodeNo(ino), OsStr::new(&name)) {
                    tracing::trace!(ino, name, "inval_entry: {e}");
                }
            }
        }
        true
    }

    fn inode(&self, ino: u64) {
        if let Err(e) = self.notifier.inval_inode(INodeNo(ino), 0, 0) {
            // ENOENT: the kernel already forgot it.
            tracing::trace!(ino, "inval_inode: {e}");
        }
    }
}

/// The inode number a gfid has in this mount (see `inodes`: its low 64 bits, 1 for the root).
fn ino_of(g: Gfid) -> u64 {
    g.ino()
}
