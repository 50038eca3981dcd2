//! `performance/write-behind`: a write is answered as soon as it is queued, and goes to the
//! bricks in the background, contiguous writes merged up to `aggregate-size` (GlusterFS's
//! write-behind). The caller gets on with its next write, or its next file, while the bricks
//! take this one. Only callers that say their writes may wait (`Ctx::write_behind`: a mount
//! whose kernel page cache makes the same promise) get it; a frontend that answers its own
//! client only once the data is stored (a stable write, an object upload) writes through.
//!
//! What the caller can observe stays as if every write had been done in order:
//! - what reads, stats, truncates, sets attributes, locks or fsyncs an inode first waits until
//!   the writes queued on it have reached the bricks;
//! - `fsync` waits for them and then syncs; `flush` (close) waits for them too unless
//!   `flush-behind` is on, in which case it is answered at once and the data follows;
//! - a write the bricks refused is reported on the next write, flush or fsync of that inode,
//!   as GlusterFS does;
//! - O_SYNC, O_DSYNC and O_DIRECT fds write through.
//!
//! At most `cache-size` bytes wait per inode (a writer past it waits for the bricks), and each
//! inode has at most `MAX_IN_FLIGHT` writes on their way at once, never two that overlap.

use crate::fop::*;
use crate::options::{OptKind, OptionSpec};
use crate::registry::XlatorType;
use crate::xlator::{Xlator, XlatorBase};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use dashmap::DashMap;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use tokio::sync::Notify;

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new(
        "cache-size",
        OptKind::Size,
        Some("1MB"),
        "the most written data that waits for the bricks, per file (GlusterFS's write-behind-window-size)",
    ),
    OptionSpec::new(
        "aggregate-size",
        OptKind::Size,
        Some("128KB"),
        "contiguous writes are merged into one of up to this size",
    ),
    OptionSpec::new(
        "flush-behind",
        OptKind::Bool,
        Some("on"),
        "answer a close at once and let the data follow (off: a close waits until the bricks hold it)",
    ),
];

/// Writes of one inode on their way to the bricks at once.
const MAX_IN_FLIGHT: usize = 8;

pub fn xlator_type() -> XlatorType {
    XlatorType {
        type_name: "performance/write-behind",
        options: OPTIONS,
        min_children: 1,
        max_children: 1,
        build: Arc::new(|base, o| {
            let (window, aggregate) = (
                o.size_or("cache-size", 1 << 20),
                o.size_or("aggregate-size", 128 << 10),
            );
            let flush_behind = o.bool_or("flush-behind", true);
            Ok(Arc::new_cyclic(|me| {
                WriteBehind::new(base, me.clone(), window, aggregate, flush_behind)
            }))
        }),
    }
}

pub struct WriteBehind {
    base: XlatorBase,
    /// This translator, for the tasks that send writes after their callers were answered.
    me: Weak<WriteBehind>,
    window: u64,
    aggregate: u64,
    flush_behind: bool,
    inodes: DashMap<Gfid, Arc<Inode>>,
    /// Inodes with writes waiting: while none has, no fop needs to look for them.
    busy: AtomicUsize,
    /// Set once this graph is being replaced: writes then go through (see `settle`).
    through: AtomicBool,
}

/// One inode's writes behind.
#[derive(Default)]
struct Inode {
    state: Mutex<State>,
    /// Woken whenever a write reaches the bricks.
    done: Notify,
}

#[derive(Default)]
struct State {
    queued: VecDeque<Queued>,
    /// Byte ranges (start, end) on their way.
    in_flight: Vec<(u64, u64)>,
    /// Bytes queued and on their way.
    bytes: u64,
    /// The first write the bricks refused, not yet reported.
    error: Option<Errno>,
    /// The size this client knows the file has (from a create or an answered write): a write
    /// answered early reports it, so the caches above can tell a write made the whole file.
    size: Option<u64>,
    /// Whether `busy` counts this inode.
    counted: bool,
}

struct Queued {
    ctx: Ctx,
    fd: FdRef,
    offset: u64,
    data: BytesMut,
}

impl Queued {
    fn end(&self) -> u64 {
        self.offset + self.data.len() as u64
    }
}

impl State {
    fn idle(&self) -> bool {
        self.queued.is_empty() && self.in_flight.is_empty()
    }
}

impl WriteBehind {
    fn new(
        base: XlatorBase,
        me: Weak<WriteBehind>,
        window: u64,
        aggregate: u64,
        flush_behind: bool,
    ) -> WriteBehind {
        WriteBehind {
            base,
            me,
            window: window.max(4096),
            aggregate: aggregate.max(4096),
            flush_behind,
            inodes: DashMap::new(),
            busy: AtomicUsize::new(0),
            through: AtomicBool::new(false),
        }
    }

    fn inode(&self, g: Gfid) -> Arc<Inode> {
        self.inodes.entry(g).or_default().clone()
    }

    /// Whether `fd`'s writes may be answered before the bricks hold them.
    fn behind(&self, ctx: &Ctx, fd: &FdRef) -> bool {
        ctx.write_behind
            && !self.through.load(Ordering::SeqCst)
            && !fd.anonymous
            && fd.flags & (libc::O_SYNC | libc::O_DSYNC | libc::O_DIRECT | libc::O_APPEND) == 0
    }

    /// Waits until every write queued on `g` so far has reached the bricks.
    async fn drain(&self, g: Gfid) {
        if self.busy.load(Ordering::SeqCst) == 0 {
            return;
        }
        let Some(i) = self.inodes.get(&g).map(|e| e.clone()) else {
            return;
        };
        loop {
            let woken = i.done.notified();
            if i.state.lock().idle() {
                return;
            }
            woken.await;
        }
    }

    /// `drain` for the inode behind `loc` when it names one.
    async fn drain_loc(&self, loc: &Loc) {
        if let Some(g) = loc.gfid {
            self.drain(g).await;
        }
    }

    /// `drain` for what `loc` names, looked up first when it is a name: a change of its
    /// attributes or size must come after its writes.
    async fn drain_named(&self, ctx: &Ctx, loc: &Loc) {
        if self.busy.load(Ordering::SeqCst) == 0 {
            return;
        }
        if let Some(g) = self.base.gfid_below(ctx, loc).await {
            self.drain(g).await;
        }
    }

    /// Whether writes of `g` are queued or on their way.
    fn pending(&self, g: &Gfid) -> bool {
        self.busy.load(Ordering::SeqCst) > 0
            && self.inodes.get(g).is_some_and(|i| !i.state.lock().idle())
    }

    /// The error a write of `g` met in the background, once.
    fn take_error(&self, g: &Gfid) -> Result<()> {
        match self.inodes.get(g).and_then(|i| i.state.lock().error.take()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Forgets an inode nothing is waiting on, so the map holds only busy or open ones.
    fn forget_if_idle(&self, g: &Gfid) {
        self.inodes.remove_if(g, |_, i| {
            let s = i.state.lock();
            s.idle() && s.error.is_none()
        });
    }

    /// Sends what may go now: the queue's head while it overlaps nothing on its way.
    fn pump(self: &Arc<Self>, g: Gfid, i: &Arc<Inode>) {
        loop {
            let next = {
                let mut s = i.state.lock();
                let Some(head) = s.queued.front() else {
                    return;
                };
                let (start, end) = (head.offset, head.end());
                if s.in_flight.len() >= MAX_IN_FLIGHT
                    || s.in_flight.iter().any(|&(a, b)| a < end && start < b)
                {
                    return;
                }
                s.in_flight.push((start, end));
                s.queued.pop_front().expect("the head was just seen")
            };
            let (me, i) = (self.clone(), i.clone());
            tokio::spawn(async move {
                let range = (next.offset, next.end());
                let r = match me.base.first_child() {
                    Ok(c) => {
                        c.write(&next.ctx, &next.fd, next.offset, next.data.freeze())
                            .await
                    }
                    Err(e) => Err(e),
                };
                {
                    let mut s = i.state.lock();
                    if let Some(k) = s.in_flight.iter().position(|r| *r == range) {
                        s.in_flight.swap_remove(k);
                    }
                    s.bytes -= range.1 - range.0;
                    match r {
                        Ok(ia) => {
                            // Writes answered in any order: the size is at least what any
                            // write still waiting makes it.
                            let ends = s.in_flight.iter().map(|r| r.1);
                            let ends = ends.chain(s.queued.iter().map(Queued::end));
                            s.size = Some(ends.fold(ia.size, u64::max));
                        }
                        Err(e) => {
                            tracing::warn!(xlator = %me.base.name, gfid = %g, offset = range.0, "a write behind failed: {e}");
                            s.error.get_or_insert(e);
                            s.size = None;
                        }
                    }
                    if s.idle() && s.counted {
                        s.counted = false;
                        me.busy.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                i.done.notify_waiters();
                me.pump(g, &i);
            });
        }
    }

    /// Queues a write (merged into the last queued one when it continues it); waits first
    /// while the inode's window is full.
    async fn queue(
        self: &Arc<Self>,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        data: Bytes,
    ) -> Result<Iatt> {
        let g = fd.gfid;
        let i = self.inode(g);
        let len = data.len() as u64;
        let size = loop {
            let woken = i.done.notified();
            {
                let mut s = i.state.lock();
                if let Some(e) = s.error.take() {
                    return Err(e);
                }
                if s.bytes == 0 || s.bytes + len <= self.window {
                    s.bytes += len;
                    let merged = s.queued.back_mut().is_some_and(|last| {
                        let fits = Arc::ptr_eq(&last.fd, fd)
                            && last.end() == offset
                            && last.data.len() as u64 + len <= self.aggregate;
                        if fits {
                            last.data.extend_from_slice(&data);
                        }
                        fits
                    });
                    if !merged {
                        s.queued.push_back(Queued {
                            ctx: ctx.clone(),
                            fd: fd.clone(),
                            offset,
                            data: BytesMut::from(&data[..]),
                        });
                    }
                    if !s.counted {
                        s.counted = true;
                        self.busy.fetch_add(1, Ordering::SeqCst);
                    }
                    s.size = s.size.map(|z| z.max(offset + len));
                    break s.size;
                }
            }
            woken.await;
        };
        self.pump(g, &i);
        if self.through.load(Ordering::SeqCst) {
            // Queued as `settle` began: this write waits for itself, as later ones will.
            self.drain(g).await;
            self.take_error(&g)?;
        }
        // No gfid: the caches above keep nothing of these attributes but the size, which
        // tells them whether this write made the whole file.
        Ok(Iatt {
            size: size.unwrap_or(0),
            ..Default::default()
        })
    }

    /// The graph is being replaced by a new one, which knows nothing of the writes waiting
    /// here: from now on writes go through, and this returns once every write answered
    /// early has reached the bricks, so the new graph's first read finds it there.
    pub async fn settle(&self) {
        self.through.store(true, Ordering::SeqCst);
        self.drain_all("the graph changes").await;
    }

    /// Waits until every write waiting behind has reached the bricks, those queued meanwhile
    /// too; bounded, since a brick that hangs fails its writes after ping-timeout anyway.
    async fn drain_all(&self, why: &str) {
        let waiting = || -> Vec<Gfid> {
            self.inodes
                .iter()
                .filter(|e| !e.value().state.lock().idle())
                .map(|e| *e.key())
                .collect()
        };
        let first = waiting();
        if first.is_empty() {
            return;
        }
        tracing::info!(xlator = %self.base.name, files = first.len(), "writing what waits behind: {why}");
        let all = async {
            let mut next = first;
            while !next.is_empty() {
                for g in next {
                    self.drain(g).await;
                }
                next = waiting();
            }
        };
        if tokio::time::timeout(std::time::Duration::from_secs(120), all)
            .await
            .is_err()
        {
            tracing::warn!(xlator = %self.base.name, "writes behind still waiting were given up: {why}");
        }
    }

    /// After a lookup or stat by name: when the inode found has writes waiting, its
    /// attributes are asked again once they are in.
    async fn settled_lookup(&self, ctx: &Ctx, loc: &Loc, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        let c = self.base.first_child()?;
        self.drain_loc(loc).await;
        let r = c.lookup(ctx, loc, want).await?;
        if !self.pending(&r.0.gfid) {
            return Ok(r);
        }
        self.drain(r.0.gfid).await;
        c.lookup(ctx, loc, want).await
    }
}

#[async_trait]
impl Xlator for WriteBehind {
    fn base(&self) -> &XlatorBase {
        &self.base
    }

    fn as_any(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        Some(self)
    }

    /// The volume stops or gatewayd shuts down: what was answered goes to the bricks first.
    async fn fini(&self) {
        self.drain_all("stopping").await;
    }

    async fn lookup(&self, ctx: &Ctx, loc: &Loc, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        if self.busy.load(Ordering::SeqCst) == 0 {
            return self.base.first_child()?.lookup(ctx, loc, want).await;
        }
        self.settled_lookup(ctx, loc, want).await
    }

    async fn stat(&self, ctx: &Ctx, loc: &Loc) -> Result<Iatt> {
        let c = self.base.first_child()?;
        if self.busy.load(Ordering::SeqCst) == 0 {
            return c.stat(ctx, loc).await;
        }
        self.drain_loc(loc).await;
        let ia = c.stat(ctx, loc).await?;
        if !self.pending(&ia.gfid) {
            return Ok(ia);
        }
        self.drain(ia.gfid).await;
        c.stat(ctx, loc).await
    }

    async fn fstat(&self, ctx: &Ctx, fd: &FdRef) -> Result<Iatt> {
        self.drain(fd.gfid).await;
        self.base.first_child()?.fstat(ctx, fd).await
    }

    async fn setattr(&self, ctx: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
        let c = self.base.first_child()?;
        self.drain_named(ctx, loc).await;
        let r = c.setattr(ctx, loc, attr).await;
        if let (Ok(ia), Some(_)) = (&r, attr.size)
            && let Some(i) = self.inodes.get(&ia.gfid)
        {
            i.state.lock().size = Some(ia.size);
        }
        r
    }

    async fn create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt, PostParent)> {
        let (fd, ia, parent) = self
            .base
            .first_child()?
            .create(ctx, loc, flags, entry)
            .await?;
        if self.behind(ctx, &fd) {
            // Known from the start: the first writes can then say when they made all of it.
            self.inode(ia.gfid).state.lock().size = Some(ia.size);
        }
        Ok((fd, ia, parent))
    }

    async fn open(&self, ctx: &Ctx, loc: &Loc, flags: i32) -> Result<FdRef> {
        if flags & libc::O_TRUNC != 0 {
            // A truncating open changes the size: by gfid or by name, it comes after the
            // writes of what it opens.
            self.drain_named(ctx, loc).await;
        }
        self.base.first_child()?.open(ctx, loc, flags).await
    }

    async fn read(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Bytes> {
        self.drain(fd.gfid).await;
        self.base.first_child()?.read(ctx, fd, offset, size).await
    }

    async fn write(&self, ctx: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
        if self.behind(ctx, fd)
            && let Some(me) = self.me.upgrade()
        {
            return me.queue(ctx, fd, offset, data).await;
        }
        self.drain(fd.gfid).await;
        self.take_error(&fd.gfid)?;
        self.base.first_child()?.write(ctx, fd, offset, data).await
    }

    async fn truncate(&self, ctx: &Ctx, loc: &Loc, size: u64) -> Result<Iatt> {
        self.drain_named(ctx, loc).await;
        self.base.first_child()?.truncate(ctx, loc, size).await
    }

    async fn ftruncate(&self, ctx: &Ctx, fd: &FdRef, size: u64) -> Result<Iatt> {
        self.drain(fd.gfid).await;
        self.take_error(&fd.gfid)?;
        let r = self.base.first_child()?.ftruncate(ctx, fd, size).await;
        if let (Ok(ia), Some(i)) = (&r, self.inodes.get(&fd.gfid)) {
            i.state.lock().size = Some(ia.size);
        }
        r
    }

    async fn flush(&self, ctx: &Ctx, fd: &FdRef) -> Result<()> {
        let c = self.base.first_child()?;
        if self.flush_behind {
            self.take_error(&fd.gfid)?;
            if self.pending(&fd.gfid)
                && let Some(me) = self.me.upgrade()
            {
                let (ctx, fd) = (ctx.clone(), fd.clone());
                tokio::spawn(async move {
                    me.drain(fd.gfid).await;
                    if let Ok(c) = me.base.first_child() {
                        let _ = c.flush(&ctx, &fd).await;
                    }
                });
                return Ok(());
            }
            return c.flush(ctx, fd).await;
        }
        self.drain(fd.gfid).await;
        self.take_error(&fd.gfid)?;
        c.flush(ctx, fd).await
    }

    async fn fsync(&self, ctx: &Ctx, fd: &FdRef, datasync: bool) -> Result<()> {
        self.drain(fd.gfid).await;
        self.take_error(&fd.gfid)?;
        self.base.first_child()?.fsync(ctx, fd, datasync).await
    }

    async fn release(&self, fd: &FdRef) {
        // The writes still queued go out through this fd: it closes after them.
        self.drain(fd.gfid).await;
        if let Some(e) = self
            .inodes
            .get(&fd.gfid)
            .and_then(|i| i.state.lock().error.take())
        {
            tracing::warn!(xlator = %self.base.name, gfid = %fd.gfid, "a write behind failed and its file was closed before anyone was told: {e}");
        }
        self.forget_if_idle(&fd.gfid);
        if let Ok(c) = self.base.first_child() {
            c.release(fd).await
        }
    }

    async fn readdirp(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: &Xattrs,
    ) -> Result<Vec<Dirent>> {
        let c = self.base.first_child()?;
        let mut out = c.readdirp(ctx, fd, offset, size, want).await?;
        if self.busy.load(Ordering::SeqCst) == 0 {
            return Ok(out);
        }
        // An entry whose writes are still on their way would show an old size: its
        // attributes are asked again once they are in.
        for d in out.iter_mut() {
            let Some(g) = d.iatt.as_ref().map(|ia| ia.gfid) else {
                continue;
            };
            if self.pending(&g) {
                self.drain(g).await;
                d.iatt = c.stat(ctx, &Loc::gfid(g)).await.ok();
            }
        }
        Ok(out)
    }

    async fn lk(&self, ctx: &Ctx, fd: &FdRef, cmd: LockCmd, lock: &Flock) -> Result<Flock> {
        // What was written under a lock reaches the bricks before another client can take it.
        self.drain(fd.gfid).await;
        self.base.first_child()?.lk(ctx, fd, cmd, lock).await
    }

    async fn fallocate(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        self.drain(fd.gfid).await;
        self.base
            .first_child()?
            .fallocate(ctx, fd, mode, offset, len)
            .await
    }

    async fn discard(&self, ctx: &Ctx, fd: &FdRef, offset: u64, len: u64) -> Result<()> {
        self.drain(fd.gfid).await;
        self.base.first_child()?.discard(ctx, fd, offset, len).await
    }

    async fn rchecksum(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        len: u32,
    ) -> Result<(u32, [u8; 32])> {
        self.drain(fd.gfid).await;
        self.base
            .first_child()?
            .rchecksum(ctx, fd, offset, len)
            .await
    }
}

#[cfg(test)]
mod tests;
