//! `performance/readdir-ahead`: a directory is read from the bricks in large batches, and the
//! small listing requests of the frontends are answered from the batch, as GlusterFS's
//! readdir-ahead does.
//!
//! The kernel asks FUSE for one page of `readdirplus` entries at a time (about 25 with their
//! attributes), and each request resumes after the last entry it took. Without this
//! translator every such request went to the bricks, which read and stat a whole batch for it
//! and had most of it thrown away: `ls -l` of 1,500 entries cost 60 brick listings of 200
//! entries each. Here one listing of `rda-request-size` bytes serves the requests that follow
//! it, wherever in the batch they resume.
//!
//! A batch belongs to one open directory (its fd) and is answered from only while nothing
//! could have made it stale:
//! - any change that passes through this graph (names, attributes, data, xattrs) and any
//!   upcall from the bricks (another client's change) moves one generation, and a batch of an
//!   older generation is read again, the way md-cache's epoch works; so md-cache above never
//!   takes an entry older than a change it has heard of;
//! - a batch is at most `BATCH_LIFE` old, for volumes whose bricks send no upcalls.

use crate::fop::*;
use crate::options::{OptKind, OptionSpec};
use crate::registry::XlatorType;
use crate::xlator::{Xlator, XlatorBase, XlatorRef};
use async_trait::async_trait;
use bytes::Bytes;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// GlusterFS's `rda-request-size` default.
pub const REQUEST_SIZE_DEFAULT: u64 = 128 * 1024;

pub const OPTIONS: &[OptionSpec] = &[OptionSpec::new(
    "rda-request-size",
    OptKind::Size,
    Some("131072"),
    "bytes of directory entries read from the bricks at once",
)];

/// A batch's read-ahead starts once it answered this many requests after the one that read
/// it: a caller that takes a directory in small pages (the kernel) gets the next batch read
/// while it takes these; one that reads a page or two per open (an NFS READDIR, which opens
/// the directory for each call) costs the bricks nothing it will not use.
const READ_AHEAD_AFTER: usize = 2;

/// How long a batch answers requests when nothing said it changed: a listing in progress
/// takes its next page within milliseconds; one resumed later reads the bricks again.
const BATCH_LIFE: Duration = Duration::from_secs(1);

pub fn xlator_type() -> XlatorType {
    XlatorType {
        type_name: "performance/readdir-ahead",
        options: OPTIONS,
        min_children: 1,
        max_children: 1,
        build: Arc::new(|base, o| {
            let size = o.size_or("rda-request-size", REQUEST_SIZE_DEFAULT);
            Ok(Arc::new(ReaddirAhead::new(
                base,
                size.clamp(4096, 16 << 20) as u32,
            )))
        }),
    }
}

pub struct ReaddirAhead {
    base: XlatorBase,
    request_size: u32,
    /// Moves with every change seen here (see the module's doc).
    generation: AtomicU64,
}

/// One batch of an open directory.
struct Batch {
    generation: u64,
    read_at: Instant,
    /// readdirp (with attributes and `want`) or plain readdir.
    plus: bool,
    want: Xattrs,
    /// The offset the first entry follows.
    after: u64,
    entries: Vec<Dirent>,
    /// Requests answered from it, besides the one that read it.
    answered: AtomicUsize,
}

type Reading = Shared<BoxFuture<'static, Result<Arc<Batch>>>>;

/// The fd's context here: its current batch, and the next one being read (with the offset it
/// follows).
#[derive(Default)]
struct Ahead {
    batch: Mutex<Option<Arc<Batch>>>,
    next: Mutex<Option<(u64, Reading)>>,
}

impl ReaddirAhead {
    pub fn new(base: XlatorBase, request_size: u32) -> ReaddirAhead {
        ReaddirAhead {
            base,
            request_size,
            generation: AtomicU64::new(0),
        }
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// `r`, the result of a change, once the generation has moved past it.
    fn after<T>(&self, r: T) -> T {
        self.changed();
        r
    }

    /// The entries after `offset` that fit in `size`, if `batch` can answer: it is current,
    /// of the same kind, and `offset` is where it starts or one of its entries. An empty
    /// answer is the end of the directory, so a batch read to its last entry cannot answer;
    /// the next batch is read from there.
    fn answer(
        &self,
        batch: &Batch,
        offset: u64,
        size: u32,
        plus: bool,
        want: &Xattrs,
    ) -> Option<Vec<Dirent>> {
        if batch.generation != self.generation.load(Ordering::SeqCst)
            || batch.read_at.elapsed() > BATCH_LIFE
            || batch.plus != plus
            || (plus && batch.want != *want)
        {
            return None;
        }
        let start = if offset == batch.after {
            0
        } else {
            batch.entries.iter().position(|d| d.d_off == offset)? + 1
        };
        if start >= batch.entries.len() {
            return batch.entries.is_empty().then(Vec::new);
        }
        Some(Self::page(&batch.entries[start..], size, plus))
    }

    /// The first of `entries` that fit in `size`, by the bricks' measure of a listing (so a
    /// caller gets what it would have got from them).
    fn page(entries: &[Dirent], size: u32, plus: bool) -> Vec<Dirent> {
        let mut budget = size.max(512) as usize;
        let mut out = Vec::new();
        for d in entries {
            let cost = Dirent::listing_cost(&d.name, plus);
            if cost > budget && !out.is_empty() {
                break;
            }
            budget = budget.saturating_sub(cost);
            out.push(d.clone());
        }
        out
    }

    async fn list(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: Option<&Xattrs>,
    ) -> Result<Vec<Dirent>> {
        let child = self.base.first_child()?;
        let plus = want.is_some();
        let no_want = Xattrs::new();
        let want = want.unwrap_or(&no_want);
        // An anonymous fd lives for one request: there is nothing to answer the next from.
        if fd.anonymous {
            return if plus {
                child.readdirp(ctx, fd, offset, size, want).await
            } else {
                child.readdir(ctx, fd, offset, size).await
            };
        }
        let ahead = match fd.ctx_get::<Ahead>(self.base.id) {
            Some(a) => a,
            None => {
                let a = Arc::new(Ahead::default());
                fd.ctx_set(self.base.id, a.clone());
                a
            }
        };
        let current = ahead.batch.lock().clone();
        if let Some(b) = current
            && let Some(out) = self.answer(&b, offset, size, plus, want)
        {
            if b.answered.fetch_add(1, Ordering::Relaxed) + 1 == READ_AHEAD_AFTER {
                self.read_ahead(&ahead, ctx, fd, &b);
            }
            return Ok(out);
        }
        // The batch read ahead, if it follows where this request resumes.
        let next = ahead.next.lock().take();
        if let Some((after, reading)) = next
            && after == offset
            && let Ok(b) = reading.await
            && let Some(out) = self.answer(&b, offset, size, plus, want)
        {
            *ahead.batch.lock() = Some(b.clone());
            self.read_ahead(&ahead, ctx, fd, &b);
            return Ok(out);
        }
        let b = Self::read(
            child.clone(),
            ctx.clone(),
            fd.clone(),
            offset,
            size.max(self.request_size),
            plus.then(|| want.clone()),
            self.generation.load(Ordering::SeqCst),
        )
        .await?;
        // The caller asked before any change made during the read: it gets its page as if
        // the bricks had answered it alone.
        let out = Self::page(&b.entries, size, plus);
        *ahead.batch.lock() = Some(b);
        Ok(out)
    }

    /// One batch from the bricks, kept with the generation from before the read: a change
    /// during it makes the batch stale at once.
    async fn read(
        child: XlatorRef,
        ctx: Ctx,
        fd: FdRef,
        offset: u64,
        size: u32,
        want: Option<Xattrs>,
        generation: u64,
    ) -> Result<Arc<Batch>> {
        let read_at = Instant::now();
        let entries = match &want {
            Some(w) => child.readdirp(&ctx, &fd, offset, size, w).await?,
            None => child.readdir(&ctx, &fd, offset, size).await?,
        };
        Ok(Arc::new(Batch {
            generation,
            read_at,
            plus: want.is_some(),
            want: want.unwrap_or_default(),
            after: offset,
            entries,
            answered: Default::default(),
        }))
    }

    /// Starts reading the batch after `batch` in the background, so the bricks work on it
    /// while the caller takes its pages from this one (GlusterFS's readdir-ahead fills
    /// ahead the same way). Nothing follows an empty batch. A batch that came from a
    /// read-ahead starts the next at once: its caller is known to read on.
    fn read_ahead(&self, ahead: &Ahead, ctx: &Ctx, fd: &FdRef, batch: &Batch) {
        let (Some(last), Ok(child)) = (batch.entries.last(), self.base.first_child()) else {
            return;
        };
        let after = last.d_off;
        let mut next = ahead.next.lock();
        if next.as_ref().is_some_and(|(a, _)| *a == after) {
            return;
        }
        let reading = tokio::spawn(Self::read(
            child.clone(),
            ctx.clone(),
            fd.clone(),
            after,
            self.request_size,
            batch.plus.then(|| batch.want.clone()),
            self.generation.load(Ordering::SeqCst),
        ));
        let reading = async move { reading.await.unwrap_or(Err(Errno::EIO)) }
            .boxed()
            .shared();
        *next = Some((after, reading));
    }
}

#[async_trait]
impl Xlator for ReaddirAhead {
    fn base(&self) -> &XlatorBase {
        &self.base
    }

    async fn notify(&self, event: Event, _from: usize) {
        if matches!(event, Event::Upcall(_)) {
            self.changed();
        }
        self.base.notify_parents(event).await;
    }

    async fn readdir(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Vec<Dirent>> {
        self.list(ctx, fd, offset, size, None).await
    }

    async fn readdirp(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: &Xattrs,
    ) -> Result<Vec<Dirent>> {
        self.list(ctx, fd, offset, size, Some(want)).await
    }

    // Every change moves the generation once it is done (see the module's doc): a batch read
    // before or during it is not answered from again.

    async fn setattr(&self, ctx: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
        self.after(self.base.first_child()?.setattr(ctx, loc, attr).await)
    }

    async fn create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt, PostParent)> {
        self.after(
            self.base
                .first_child()?
                .create(ctx, loc, flags, entry)
                .await,
        )
    }

    async fn write(&self, ctx: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
        self.after(self.base.first_child()?.write(ctx, fd, offset, data).await)
    }

    async fn truncate(&self, ctx: &Ctx, loc: &Loc, size: u64) -> Result<Iatt> {
        self.after(self.base.first_child()?.truncate(ctx, loc, size).await)
    }

    async fn ftruncate(&self, ctx: &Ctx, fd: &FdRef, size: u64) -> Result<Iatt> {
        self.after(self.base.first_child()?.ftruncate(ctx, fd, size).await)
    }

    async fn mkdir(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        self.after(self.base.first_child()?.mkdir(ctx, loc, entry).await)
    }

    async fn mknod(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        self.after(self.base.first_child()?.mknod(ctx, loc, entry).await)
    }

    async fn symlink(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        target: &str,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        self.after(
            self.base
                .first_child()?
                .symlink(ctx, loc, target, entry)
                .await,
        )
    }

    async fn link(&self, ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        self.after(self.base.first_child()?.link(ctx, oldloc, newloc).await)
    }

    async fn unlink(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        self.after(self.base.first_child()?.unlink(ctx, loc).await)
    }

    async fn rmdir(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        self.after(self.base.first_child()?.rmdir(ctx, loc).await)
    }

    async fn rename(
        &self,
        ctx: &Ctx,
        oldloc: &Loc,
        newloc: &Loc,
    ) -> Result<(Iatt, PostParent, PostParent)> {
        self.after(self.base.first_child()?.rename(ctx, oldloc, newloc).await)
    }

    async fn setxattr(&self, ctx: &Ctx, loc: &Loc, xattrs: &Xattrs, flags: i32) -> Result<()> {
        self.after(
            self.base
                .first_child()?
                .setxattr(ctx, loc, xattrs, flags)
                .await,
        )
    }

    async fn removexattr(&self, ctx: &Ctx, loc: &Loc, name: &str) -> Result<()> {
        self.after(self.base.first_child()?.removexattr(ctx, loc, name).await)
    }

    async fn xattrop(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        op: XattropOp,
        xattrs: &Xattrs,
    ) -> Result<Xattrs> {
        self.after(self.base.first_child()?.xattrop(ctx, loc, op, xattrs).await)
    }

    async fn fallocate(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        self.after(
            self.base
                .first_child()?
                .fallocate(ctx, fd, mode, offset, len)
                .await,
        )
    }

    async fn discard(&self, ctx: &Ctx, fd: &FdRef, offset: u64, len: u64) -> Result<()> {
        self.after(self.base.first_child()?.discard(ctx, fd, offset, len).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xlator::XlatorRef;
    use std::sync::atomic::AtomicUsize;

    /// A directory in memory whose listings resume after a cookie, as the bricks' do; it
    /// counts the listings that reach it.
    #[derive(Default)]
    struct Dir {
        base: Option<XlatorBase>,
        names: Mutex<Vec<String>>,
        sizes: Mutex<std::collections::HashMap<String, u64>>,
        listings: AtomicUsize,
    }

    fn cookie(name: &str) -> u64 {
        name.trim_start_matches('f').parse::<u64>().unwrap() + 1
    }

    #[async_trait]
    impl Xlator for Dir {
        fn base(&self) -> &XlatorBase {
            self.base.as_ref().unwrap()
        }
        async fn readdirp(
            &self,
            _: &Ctx,
            _: &FdRef,
            offset: u64,
            size: u32,
            _: &Xattrs,
        ) -> Result<Vec<Dirent>> {
            self.listings.fetch_add(1, Ordering::SeqCst);
            let mut names = self.names.lock().clone();
            names.sort_by_key(|n| cookie(n));
            let sizes = self.sizes.lock();
            let ents: Vec<Dirent> = names
                .iter()
                .filter(|n| cookie(n) > offset)
                .map(|n| Dirent {
                    name: n.clone(),
                    d_off: cookie(n),
                    iatt: Some(Iatt {
                        size: sizes.get(n).copied().unwrap_or(0),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect();
            Ok(ReaddirAhead::page(&ents, size, true))
        }
        async fn unlink(&self, _: &Ctx, loc: &Loc) -> Result<PostParent> {
            let name = loc.name.clone().unwrap();
            self.names.lock().retain(|n| *n != name);
            Ok(None)
        }
        async fn setattr(&self, _: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
            let name = loc.name.clone().unwrap();
            self.sizes.lock().insert(name, attr.size.unwrap());
            Ok(Iatt::default())
        }
    }

    fn setup(n: usize) -> (Arc<Dir>, ReaddirAhead) {
        let dir = Arc::new(Dir {
            base: Some(XlatorBase::new("dir", "test/dir", vec![])),
            names: Mutex::new((0..n).map(|i| format!("f{i}")).collect()),
            ..Default::default()
        });
        let child: XlatorRef = dir.clone();
        let rda = ReaddirAhead::new(
            XlatorBase::new("rda", "performance/readdir-ahead", vec![child]),
            128 * 1024,
        );
        (dir, rda)
    }

    /// Lists the whole directory the way the kernel does through FUSE: one page (about 4 KiB
    /// of entries, here asked as 32 KiB and cut to 25) at a time, resuming after the last one
    /// taken.
    async fn list_all(rda: &ReaddirAhead, fd: &FdRef) -> Vec<Dirent> {
        let mut out: Vec<Dirent> = Vec::new();
        let mut offset = 0;
        loop {
            let page = rda
                .readdirp(&Ctx::root(), fd, offset, 32 * 1024, &Xattrs::new())
                .await
                .unwrap();
            if page.is_empty() {
                return out;
            }
            let taken: Vec<Dirent> = page.into_iter().take(25).collect();
            offset = taken.last().unwrap().d_off;
            out.extend(taken);
        }
    }

    #[tokio::test]
    async fn pages_taken_a_few_at_a_time_come_from_few_listings() {
        let (dir, rda) = setup(1500);
        let fd = Fd::new(Gfid::ROOT, libc::O_RDONLY, true);
        let got = list_all(&rda, &fd).await;
        let names: Vec<String> = got.iter().map(|d| d.name.clone()).collect();
        let want: Vec<String> = (0..1500).map(|i| format!("f{i}")).collect();
        assert_eq!(names, want, "every entry once, in order");
        // 128 KiB batches of about 800 entries, then the empty one that ends the directory;
        // without the translator it was 61 listings.
        assert_eq!(dir.listings.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_batch_read_ahead_before_a_change_is_not_answered_from() {
        let (dir, rda) = setup(2000);
        let fd = Fd::new(Gfid::ROOT, libc::O_RDONLY, true);
        let ctx = Ctx::root();
        let mut first = Vec::new();
        let mut offset = 0;
        for pages in 1..=3 {
            let page = rda
                .readdirp(&ctx, &fd, offset, 32 * 1024, &Xattrs::new())
                .await
                .unwrap();
            let taken: Vec<Dirent> = page.into_iter().take(25).collect();
            offset = taken.last().unwrap().d_off;
            first.extend(taken);
            tokio::time::sleep(Duration::from_millis(20)).await;
            // The first page read the batch; the third started the read-ahead.
            let want = if pages < 3 { 1 } else { 2 };
            assert_eq!(dir.listings.load(Ordering::SeqCst), want);
        }
        // Remove a name the batch read ahead holds.
        rda.unlink(&ctx, &Loc::child(Gfid::ROOT, "f1500"))
            .await
            .unwrap();
        let mut names: Vec<String> = first.iter().map(|d| d.name.clone()).collect();
        let mut offset = first.last().unwrap().d_off;
        loop {
            let page = rda
                .readdirp(&ctx, &fd, offset, 32 * 1024, &Xattrs::new())
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            offset = last.d_off;
            names.extend(page.iter().map(|d| d.name.clone()));
        }
        assert_eq!(names.len(), 1999);
        assert!(!names.contains(&"f1500".to_string()));
    }

    #[tokio::test]
    async fn a_change_through_the_graph_or_an_upcall_makes_the_batch_stale() {
        let (dir, rda) = setup(100);
        let fd = Fd::new(Gfid::ROOT, libc::O_RDONLY, true);
        let ctx = Ctx::root();
        let first = rda
            .readdirp(&ctx, &fd, 0, 1024, &Xattrs::new())
            .await
            .unwrap();
        let after = first.last().unwrap().d_off;
        assert_eq!(dir.listings.load(Ordering::SeqCst), 1);
        // A file further on is removed and another grows: the next page shows both.
        rda.unlink(&ctx, &Loc::child(Gfid::ROOT, "f90"))
            .await
            .unwrap();
        rda.setattr(
            &ctx,
            &Loc::child(Gfid::ROOT, "f80"),
            &SetAttr {
                size: Some(4096),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let rest = rda
            .readdirp(&ctx, &fd, after, 64 * 1024, &Xattrs::new())
            .await
            .unwrap();
        assert_eq!(dir.listings.load(Ordering::SeqCst), 2);
        assert!(rest.iter().all(|d| d.name != "f90"));
        let f80 = rest.iter().find(|d| d.name == "f80").unwrap();
        assert_eq!(f80.iatt.as_ref().unwrap().size, 4096);

        // Another client's change, heard as an upcall: read again too.
        let again = rda
            .readdirp(&ctx, &fd, 0, 1024, &Xattrs::new())
            .await
            .unwrap();
        assert_eq!(dir.listings.load(Ordering::SeqCst), 3);
        dir.sizes.lock().insert("f1".into(), 7);
        rda.notify(
            Event::Upcall(Upcall {
                gfid: Gfid::random(),
                flags: upcall_flags::ATTR,
            }),
            0,
        )
        .await;
        let next = rda
            .readdirp(&ctx, &fd, again[0].d_off, 1024, &Xattrs::new())
            .await
            .unwrap();
        assert_eq!(dir.listings.load(Ordering::SeqCst), 4);
        assert_eq!(next[0].name, "f1");
        assert_eq!(next[0].iatt.as_ref().unwrap().size, 7);
    }

    #[tokio::test]
    async fn an_offset_the_batch_does_not_hold_or_other_xattrs_read_the_bricks() {
        let (dir, rda) = setup(100);
        let fd = Fd::new(Gfid::ROOT, libc::O_RDONLY, true);
        let ctx = Ctx::root();
        rda.readdirp(&ctx, &fd, 0, 1024, &Xattrs::new())
            .await
            .unwrap();
        // Resuming from a cookie no entry of the batch has (a seekdir to elsewhere).
        let p = rda
            .readdirp(&ctx, &fd, 1_000_000, 1024, &Xattrs::new())
            .await
            .unwrap();
        assert!(p.is_empty());
        assert_eq!(dir.listings.load(Ordering::SeqCst), 2);
        let want = Xattrs::from([("user.a".to_string(), Bytes::new())]);
        rda.readdirp(&ctx, &fd, 0, 1024, &want).await.unwrap();
        assert_eq!(dir.listings.load(Ordering::SeqCst), 3);
        // An anonymous fd lives for one request: nothing is kept for it.
        let anon = Fd::anonymous(Gfid::ROOT);
        rda.readdirp(&ctx, &anon, 0, 1024, &Xattrs::new())
            .await
            .unwrap();
        rda.readdirp(&ctx, &anon, 0, 1024, &Xattrs::new())
            .await
            .unwrap();
        assert_eq!(dir.listings.load(Ordering::SeqCst), 5);
    }
}
