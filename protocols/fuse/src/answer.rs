//! How every request runs: first on the dispatch thread, until it has to wait, then as a task
//! on the runtime that calls the graph, answers the kernel from there and is counted in the
//! metrics, so a slow brick never stalls dispatch.

use crate::attr::file_attr;
use crate::common::errno;
use crate::types::{Fs, Inner};
use engine::{FdRef, Iatt, Result};
use fuser::{
    FileHandle, FopenFlags, Generation, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyLock, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr,
};
use std::sync::Arc;

/// A fuser reply that can carry an errno (each reply type has its own `error`).
pub(crate) trait ErrorReply {
    fn error(self, e: fuser::Errno);
}

macro_rules! error_reply {
    ($($t:ty),*) => {
        $(impl ErrorReply for $t {
            fn error(self, e: fuser::Errno) {
                <$t>::error(self, e)
            }
        })*
    };
}

error_reply!(
    ReplyAttr,
    ReplyCreate,
    ReplyData,
    ReplyDirectory,
    ReplyDirectoryPlus,
    ReplyEmpty,
    ReplyEntry,
    ReplyLock,
    ReplyOpen,
    ReplyStatfs,
    ReplyWrite,
    ReplyXattr
);

impl Fs {
    /// Runs a request's work on the runtime, counted in the FUSE metrics under `op` (replies
    /// are sent inside `f`, so only the count and the time are known here, not the outcome).
    pub(crate) fn spawn<F>(&self, op: &'static str, f: impl FnOnce(Arc<Inner>) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let start = std::time::Instant::now();
        let inner = self.inner.clone();
        let work = f(inner.clone());
        let mut task = Box::pin(async move {
            work.await;
            inner.metrics.record(op, true, start.elapsed());
        });
        // First run on this dispatch thread: a request the caches answer (md-cache's stat
        // and xattrs, quick-read's data) is answered here at once. Handing every request to a
        // runtime worker cost a thread wake-up each way: 75 us per cached getxattr against
        // ~10 us here, and `ls -l` makes two of them per entry. What must wait (a brick) has
        // sent its request by then and goes on as a task; the runtime polls it again at
        // once, which registers its waker in place of the no-op one used here. The runtime is
        // entered so that what this first run touches (sockets, timers, spawns) is the
        // runtime's.
        let _in_runtime = self.rt.enter();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if task.as_mut().poll(&mut cx).is_pending() {
            self.rt.spawn(task);
        }
    }

    /// Runs `work` as [`Fs::spawn`] does and answers the kernel: `ok` with its value, or the
    /// errno it failed with.
    pub(crate) fn answer<R, T, W, F, K>(&self, op: &'static str, reply: R, work: W, ok: K)
    where
        R: ErrorReply + Send + 'static,
        W: FnOnce(Arc<Inner>) -> F,
        F: Future<Output = Result<T>> + Send + 'static,
        K: FnOnce(&Inner, T, R) + Send + 'static,
    {
        self.spawn(op, move |s| {
            let work = work(s.clone());
            async move {
                match work.await {
                    Ok(v) => ok(&s, v, reply),
                    Err(e) => reply.error(errno(e)),
                }
            }
        });
    }
}

// The common successful answers, for `Fs::answer`.

pub(crate) fn ok(_: &Inner, (): (), reply: ReplyEmpty) {
    reply.ok()
}

pub(crate) fn entry(s: &Inner, ia: Iatt, reply: ReplyEntry) {
    reply.entry(&s.entry_ttl, &file_attr(&ia), Generation(0))
}

pub(crate) fn attr(s: &Inner, ia: Iatt, reply: ReplyAttr) {
    reply.attr(&s.attr_ttl, &file_attr(&ia))
}

pub(crate) fn opened(s: &Inner, fd: FdRef, reply: ReplyOpen) {
    reply.opened(FileHandle(s.keep(fd)), FopenFlags::empty())
}
