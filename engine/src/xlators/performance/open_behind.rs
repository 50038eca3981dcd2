//! `performance/open-behind`: an open for reading is answered at once, with no brick round
//! trip; reads, fstat and the rest go down as anonymous-fd fops (the bricks open the inode by
//! its gfid), and a read-only fd that never needs more is released with no round trip either.
//! Only what an anonymous fd cannot stand in for opens the file for real, once: POSIX locks
//! (held per open file on the bricks), and an unlink or rename through this client of a file
//! that still has lazy fds (a real open keeps the inode alive on the bricks, as on a local
//! file system, so the fd goes on reading after the name is gone). GlusterFS's open-behind
//! works the same way; like it, an unlink by another client ends a lazy fd's reads.
//! Opens for writing, truncating or creating always go down: their errors and side effects
//! belong to the open.

use crate::fop::*;
use crate::options::{OptKind, OptionSpec};
use crate::registry::XlatorType;
use crate::xlator::{Xlator, XlatorBase};
use async_trait::async_trait;
use bytes::Bytes;
use dashmap::DashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use tokio::sync::OnceCell;

pub const OPTIONS: &[OptionSpec] = &[OptionSpec::new(
    "lazy-open",
    OptKind::Bool,
    Some("on"),
    "answer read-only opens at once and open on the bricks only when needed",
)];

pub fn xlator_type() -> XlatorType {
    XlatorType {
        type_name: "performance/open-behind",
        options: OPTIONS,
        min_children: 1,
        max_children: 1,
        build: Arc::new(|base, o| {
            Ok(Arc::new(OpenBehind {
                base,
                lazy_open: o.bool_or("lazy-open", true),
                lazy: DashMap::new(),
                lazy_count: AtomicUsize::new(0),
            }))
        }),
    }
}

pub struct OpenBehind {
    base: XlatorBase,
    lazy_open: bool,
    /// The lazy fds of each inode, so an unlink or rename here can open them first.
    lazy: DashMap<Gfid, Vec<Weak<Fd>>>,
    /// How many lazy fds are open: while none is, unlink and rename need no lookup.
    lazy_count: AtomicUsize,
}

/// The fd's context here: the real fd once one was opened.
#[derive(Default)]
struct Lazy {
    real: OnceCell<FdRef>,
}

impl OpenBehind {
    fn lazy_of(&self, fd: &FdRef) -> Option<Arc<Lazy>> {
        fd.ctx_get::<Lazy>(self.base.id)
    }

    /// The fd to pass down for a fop that needs a real open: opened once, then reused.
    async fn real_fd(&self, ctx: &Ctx, fd: &FdRef) -> Result<FdRef> {
        let Some(l) = self.lazy_of(fd) else {
            return Ok(fd.clone());
        };
        let child = self.base.first_child()?;
        l.real
            .get_or_try_init(|| async { child.open(ctx, &Loc::gfid(fd.gfid), fd.flags).await })
            .await
            .cloned()
    }

    /// Opens for real every lazy fd of `gfid`, before its name goes away.
    async fn wake(&self, ctx: &Ctx, gfid: Gfid) {
        let fds: Vec<FdRef> = match self.lazy.get(&gfid) {
            Some(v) => v.iter().filter_map(Weak::upgrade).collect(),
            None => return,
        };
        for fd in fds {
            if let Err(e) = self.real_fd(ctx, &fd).await {
                tracing::debug!(xlator = %self.base.name, %gfid, "open before unlink: {e}");
            }
        }
    }

    /// The gfid behind `loc` when lazy fds exist at all (a lookup only then).
    async fn wake_loc(&self, ctx: &Ctx, loc: &Loc) {
        if self.lazy_count.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(g) = self.base.gfid_below(ctx, loc).await {
            self.wake(ctx, g).await;
        }
    }

    /// The fd a fop goes down with: the real one once there is one (it keeps reading after
    /// an unlink), else the anonymous one.
    fn down_fd(&self, fd: &FdRef) -> FdRef {
        self.lazy_of(fd)
            .and_then(|l| l.real.get().cloned())
            .unwrap_or_else(|| fd.clone())
    }

    fn forget(&self, fd: &FdRef) {
        if let Some(mut v) = self.lazy.get_mut(&fd.gfid) {
            v.retain(|w| w.upgrade().is_some_and(|f| !Arc::ptr_eq(&f, fd)));
            let empty = v.is_empty();
            drop(v);
            if empty {
                self.lazy.remove_if(&fd.gfid, |_, v| v.is_empty());
            }
        }
        self.lazy_count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Opens whose only effect is the fd: read-only, nothing created or truncated.
fn can_be_lazy(flags: i32) -> bool {
    flags & libc::O_ACCMODE == libc::O_RDONLY
        && flags & (libc::O_TRUNC | libc::O_CREAT | libc::O_EXCL | libc::O_DIRECTORY) == 0
}

#[async_trait]
impl Xlator for OpenBehind {
    fn base(&self) -> &XlatorBase {
        &self.base
    }

    async fn open(&self, ctx: &Ctx, loc: &Loc, flags: i32) -> Result<FdRef> {
        let child = self.base.first_child()?;
        let Some(gfid) = loc.gfid.filter(|_| self.lazy_open && can_be_lazy(flags)) else {
            return child.open(ctx, loc, flags).await;
        };
        let fd = Fd::anonymous_with_flags(gfid, flags);
        fd.ctx_set(self.base.id, Arc::new(Lazy::default()));
        self.lazy.entry(gfid).or_default().push(Arc::downgrade(&fd));
        self.lazy_count.fetch_add(1, Ordering::Relaxed);
        Ok(fd)
    }

    async fn read(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Bytes> {
        let fd = self.down_fd(fd);
        self.base.first_child()?.read(ctx, &fd, offset, size).await
    }

    async fn fstat(&self, ctx: &Ctx, fd: &FdRef) -> Result<Iatt> {
        let fd = self.down_fd(fd);
        self.base.first_child()?.fstat(ctx, &fd).await
    }

    async fn fsync(&self, ctx: &Ctx, fd: &FdRef, datasync: bool) -> Result<()> {
        let fd = self.down_fd(fd);
        self.base.first_child()?.fsync(ctx, &fd, datasync).await
    }

    async fn lk(&self, ctx: &Ctx, fd: &FdRef, cmd: LockCmd, lock: &Flock) -> Result<Flock> {
        let real = self.real_fd(ctx, fd).await?;
        self.base.first_child()?.lk(ctx, &real, cmd, lock).await
    }

    async fn flush(&self, ctx: &Ctx, fd: &FdRef) -> Result<()> {
        match self.lazy_of(fd) {
            // Nothing was written through a read-only fd; a real one flushes its locks.
            Some(l) => match l.real.get() {
                Some(real) => self.base.first_child()?.flush(ctx, real).await,
                None => Ok(()),
            },
            None => self.base.first_child()?.flush(ctx, fd).await,
        }
    }

    async fn release(&self, fd: &FdRef) {
        let Ok(child) = self.base.first_child() else {
            return;
        };
        match self.lazy_of(fd) {
            Some(l) => {
                self.forget(fd);
                if let Some(real) = l.real.get() {
                    child.release(real).await;
                }
            }
            None => child.release(fd).await,
        }
    }

    async fn unlink(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        self.wake_loc(ctx, loc).await;
        self.base.first_child()?.unlink(ctx, loc).await
    }

    async fn rename(
        &self,
        ctx: &Ctx,
        oldloc: &Loc,
        newloc: &Loc,
    ) -> Result<(Iatt, PostParent, PostParent)> {
        // The file renamed over loses its name.
        self.wake_loc(ctx, newloc).await;
        self.base.first_child()?.rename(ctx, oldloc, newloc).await
    }
}
