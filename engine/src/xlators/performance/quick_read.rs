//! `performance/quick-read`: the content of small files kept in memory, so reading one again
//! costs no brick round trip (GlusterFS's quick-read, with io-cache's job for them as well:
//! callers without a kernel page cache of their own read them from here). A file is kept when a read from its start came
//! back short (the whole file) or a write made all of it, and only while it is at most
//! `max-file-size`. What this client changes it forgets at once; what others change it forgets
//! when the bricks' upcall says so (`features.cache-invalidation`), or after `cache-timeout`
//! when they do not send them. Each fill checks that no change came while its fop was on its
//! way, so an answer that raced a write is never kept.

use crate::fop::*;
use crate::options::{OptKind, OptionSpec};
use crate::registry::XlatorType;
use crate::xlator::{Xlator, XlatorBase};
use async_trait::async_trait;
use bytes::Bytes;
use dashmap::DashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new(
        "max-file-size",
        OptKind::Size,
        Some("64KB"),
        "files up to this size are kept whole",
    ),
    OptionSpec::new(
        "cache-size",
        OptKind::Size,
        Some("128MB"),
        "the most file content kept at once",
    ),
    OptionSpec::new(
        "cache-timeout",
        OptKind::Int { min: 1, max: 86400 },
        Some("1"),
        "seconds a file's content is trusted without a change notice from the bricks",
    ),
];

pub fn xlator_type() -> XlatorType {
    XlatorType {
        type_name: "performance/quick-read",
        options: OPTIONS,
        min_children: 1,
        max_children: 1,
        build: Arc::new(|base, o| {
            Ok(Arc::new(QuickRead {
                base,
                max_file_size: o.size_or("max-file-size", 64 << 10),
                cache_size: o.size_or("cache-size", 128 << 20),
                timeout: Duration::from_secs(o.int_or("cache-timeout", 1).max(1) as u64),
                files: DashMap::new(),
                bytes: AtomicU64::new(0),
                epochs: std::array::from_fn(|_| AtomicU64::new(0)),
            }))
        }),
    }
}

const SHARDS: usize = 64;

pub struct QuickRead {
    base: XlatorBase,
    max_file_size: u64,
    cache_size: u64,
    timeout: Duration,
    files: DashMap<Gfid, Kept>,
    /// Bytes of content kept, for the `cache-size` bound.
    bytes: AtomicU64,
    /// Changes seen, per shard of gfids: a fill keeps its answer only if none came meanwhile.
    epochs: [AtomicU64; SHARDS],
}

struct Kept {
    data: Bytes,
    at: Instant,
}

impl QuickRead {
    fn epoch(&self, g: Gfid) -> &AtomicU64 {
        let b = &g.0;
        &self.epochs[(b[15] as usize ^ (b[14] as usize) << 3) % SHARDS]
    }

    /// Forgets `g`'s content and fails any fill of it under way.
    pub fn invalidate(&self, g: Gfid) {
        self.epoch(g).fetch_add(1, Ordering::SeqCst);
        if let Some((_, k)) = self.files.remove(&g) {
            self.bytes.fetch_sub(k.data.len() as u64, Ordering::Relaxed);
        }
    }

    fn fresh(&self, g: Gfid) -> Option<Bytes> {
        let k = self.files.get(&g)?;
        if k.at.elapsed() < self.timeout {
            return Some(k.data.clone());
        }
        drop(k);
        self.files
            .remove_if(&g, |_, k| k.at.elapsed() >= self.timeout)
            .map(|(_, k)| self.bytes.fetch_sub(k.data.len() as u64, Ordering::Relaxed));
        None
    }

    /// Keeps `data` as all of `g` unless a change came since `epoch` was read.
    fn fill(&self, g: Gfid, epoch: u64, data: Bytes) {
        let len = data.len() as u64;
        if len > self.max_file_size || len > self.cache_size {
            return;
        }
        if self.bytes.load(Ordering::Relaxed) + len > self.cache_size {
            self.shed(len);
        }
        let mut fresh = true;
        self.files
            .entry(g)
            .and_modify(|k| {
                // A fill that lost a race with another fill of the same content: keep one.
                fresh = false;
                k.at = Instant::now();
            })
            .or_insert_with(|| Kept {
                data,
                at: Instant::now(),
            });
        if fresh {
            self.bytes.fetch_add(len, Ordering::Relaxed);
        }
        // Checked after the insert, so a change between the check and the insert still
        // removes what was kept.
        if self.epoch(g).load(Ordering::SeqCst) != epoch {
            self.invalidate(g);
        }
    }

    /// Makes room for `need` bytes: the oldest go first, from a sample (no global order is
    /// kept, so a read never takes a lock shared by all files).
    fn shed(&self, need: u64) {
        let mut sample: Vec<(Gfid, Instant)> = self
            .files
            .iter()
            .take(256)
            .map(|e| (*e.key(), e.value().at))
            .collect();
        sample.sort_by_key(|(_, at)| *at);
        for (g, _) in sample {
            if self.bytes.load(Ordering::Relaxed) + need <= self.cache_size {
                break;
            }
            if let Some((_, k)) = self.files.remove(&g) {
                self.bytes.fetch_sub(k.data.len() as u64, Ordering::Relaxed);
            }
        }
    }
}

#[async_trait]
impl Xlator for QuickRead {
    fn base(&self) -> &XlatorBase {
        &self.base
    }

    async fn notify(&self, event: Event, from: usize) {
        let _ = from;
        match event {
            Event::Upcall(u) if u.is_forget_all() => self.forget_all(),
            Event::Upcall(u) => self.invalidate(u.gfid),
            _ => {}
        }
        self.base.notify_parents(event).await;
    }

    async fn read(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Bytes> {
        let g = fd.gfid;
        if let Some(data) = self.fresh(g) {
            let start = (offset as usize).min(data.len());
            let end = start.saturating_add(size as usize).min(data.len());
            return Ok(data.slice(start..end));
        }
        let epoch = self.epoch(g).load(Ordering::SeqCst);
        let data = self.base.first_child()?.read(ctx, fd, offset, size).await?;
        // A short read from the start is the whole file.
        if offset == 0 && data.len() < size as usize {
            self.fill(g, epoch, data.clone());
        }
        Ok(data)
    }

    async fn create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt, PostParent)> {
        let child = self.base.first_child()?;
        let g = entry.gfid;
        if entry.data.is_empty() || g.is_null() {
            return child.create(ctx, loc, flags, entry).await;
        }
        let epoch = self.epoch(g).load(Ordering::SeqCst);
        let r = child.create(ctx, loc, flags, entry).await?;
        // Created with its content (`NewEntry::data`): that is the whole file.
        if r.1.gfid == g && r.1.size == entry.data.len() as u64 {
            self.fill(g, epoch, entry.data.clone());
        }
        Ok(r)
    }

    async fn write(&self, ctx: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
        let g = fd.gfid;
        self.invalidate(g);
        let epoch = self.epoch(g).load(Ordering::SeqCst);
        let r = self
            .base
            .first_child()?
            .write(ctx, fd, offset, data.clone())
            .await;
        match &r {
            // This write made the whole file: its content is what was written.
            Ok(ia) if offset == 0 && ia.size == data.len() as u64 => self.fill(g, epoch, data),
            _ => self.invalidate(g),
        }
        r
    }

    async fn truncate(&self, ctx: &Ctx, loc: &Loc, size: u64) -> Result<Iatt> {
        self.forget_loc(loc);
        let r = self.base.first_child()?.truncate(ctx, loc, size).await;
        self.forget_loc(loc);
        r
    }

    async fn ftruncate(&self, ctx: &Ctx, fd: &FdRef, size: u64) -> Result<Iatt> {
        self.invalidate(fd.gfid);
        let r = self.base.first_child()?.ftruncate(ctx, fd, size).await;
        self.invalidate(fd.gfid);
        r
    }

    async fn setattr(&self, ctx: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
        let r = self.base.first_child()?.setattr(ctx, loc, attr).await;
        // Only a size change touches the content; the answer says which file it was.
        match &r {
            Ok(ia) if attr.size.is_some() => self.invalidate(ia.gfid),
            Err(_) if attr.size.is_some() => self.forget_loc(loc),
            _ => {}
        }
        r
    }

    async fn fallocate(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        self.invalidate(fd.gfid);
        let r = self
            .base
            .first_child()?
            .fallocate(ctx, fd, mode, offset, len)
            .await;
        self.invalidate(fd.gfid);
        r
    }

    async fn discard(&self, ctx: &Ctx, fd: &FdRef, offset: u64, len: u64) -> Result<()> {
        self.invalidate(fd.gfid);
        let r = self.base.first_child()?.discard(ctx, fd, offset, len).await;
        self.invalidate(fd.gfid);
        r
    }
}

impl QuickRead {
    /// A change by path whose gfid may be unknown here: without it, everything goes.
    fn forget_loc(&self, loc: &Loc) {
        match loc.gfid {
            Some(g) => self.invalidate(g),
            None => self.forget_all(),
        }
    }

    fn forget_all(&self) {
        for e in &self.epochs {
            e.fetch_add(1, Ordering::SeqCst);
        }
        self.files.retain(|_, k| {
            self.bytes.fetch_sub(k.data.len() as u64, Ordering::Relaxed);
            false
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xlator::XlatorRef;
    use parking_lot::Mutex;
    use std::collections::HashMap;
    use std::sync::atomic::AtomicUsize;

    /// A child that keeps files in memory and counts the reads that reach it.
    #[derive(Default)]
    struct Store {
        base: Option<XlatorBase>,
        files: Mutex<HashMap<Gfid, Vec<u8>>>,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl Xlator for Store {
        fn base(&self) -> &XlatorBase {
            self.base.as_ref().unwrap()
        }
        async fn read(&self, _: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Bytes> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let f = self.files.lock();
            let d = f.get(&fd.gfid).ok_or(Errno::ENOENT)?;
            let s = (offset as usize).min(d.len());
            let e = (s + size as usize).min(d.len());
            Ok(Bytes::copy_from_slice(&d[s..e]))
        }
        async fn write(&self, _: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
            let mut f = self.files.lock();
            let d = f.entry(fd.gfid).or_default();
            let end = offset as usize + data.len();
            if d.len() < end {
                d.resize(end, 0);
            }
            d[offset as usize..end].copy_from_slice(&data);
            Ok(Iatt {
                gfid: fd.gfid,
                size: d.len() as u64,
                ..Default::default()
            })
        }
        async fn create(
            &self,
            _: &Ctx,
            _: &Loc,
            flags: i32,
            e: &NewEntry,
        ) -> Result<(FdRef, Iatt, PostParent)> {
            self.files.lock().insert(e.gfid, e.data.to_vec());
            let ia = Iatt {
                gfid: e.gfid,
                size: e.data.len() as u64,
                ..Default::default()
            };
            Ok((Fd::new(e.gfid, flags, false), ia, None))
        }
    }

    fn setup(timeout: Duration) -> (Arc<Store>, QuickRead) {
        let store = Arc::new(Store {
            base: Some(XlatorBase::new("store", "test/store", vec![])),
            ..Default::default()
        });
        let child: XlatorRef = store.clone();
        let qr = QuickRead {
            base: XlatorBase::new("qr", "performance/quick-read", vec![child]),
            max_file_size: 64 << 10,
            cache_size: 1 << 20,
            timeout,
            files: DashMap::new(),
            bytes: AtomicU64::new(0),
            epochs: std::array::from_fn(|_| AtomicU64::new(0)),
        };
        (store, qr)
    }

    fn gfid(n: u8) -> Gfid {
        let mut b = [0u8; 16];
        b[15] = n;
        b[0] = 0xaa;
        Gfid(b)
    }

    #[tokio::test]
    async fn a_whole_file_write_then_reads_cost_no_round_trip() {
        let (store, qr) = setup(Duration::from_secs(600));
        let ctx = Ctx::root();
        let fd = Fd::anonymous(gfid(1));
        qr.write(&ctx, &fd, 0, Bytes::from_static(b"hello world"))
            .await
            .unwrap();
        assert_eq!(
            qr.read(&ctx, &fd, 0, 4096).await.unwrap(),
            &b"hello world"[..]
        );
        assert_eq!(qr.read(&ctx, &fd, 6, 3).await.unwrap(), &b"wor"[..]);
        assert_eq!(qr.read(&ctx, &fd, 100, 3).await.unwrap(), &b""[..]);
        assert_eq!(store.reads.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_file_created_with_its_content_is_read_with_no_round_trip() {
        let (store, qr) = setup(Duration::from_secs(600));
        let ctx = Ctx::root();
        let e = NewEntry {
            gfid: gfid(5),
            mode: libc::S_IFREG | 0o644,
            data: Bytes::from_static(b"all of it"),
            ..Default::default()
        };
        qr.create(&ctx, &Loc::child(gfid(9), "f"), libc::O_WRONLY, &e)
            .await
            .unwrap();
        let fd = Fd::anonymous(gfid(5));
        assert_eq!(
            qr.read(&ctx, &fd, 0, 4096).await.unwrap(),
            &b"all of it"[..]
        );
        assert_eq!(store.reads.load(Ordering::SeqCst), 0);
        // Created empty: nothing is known of later writes, so nothing is kept.
        let empty = NewEntry {
            gfid: gfid(6),
            data: Bytes::new(),
            ..e.clone()
        };
        qr.create(&ctx, &Loc::child(gfid(9), "g"), libc::O_WRONLY, &empty)
            .await
            .unwrap();
        assert!(qr.fresh(gfid(6)).is_none());
    }

    #[tokio::test]
    async fn a_partial_write_is_forgotten_and_read_again() {
        let (store, qr) = setup(Duration::from_secs(600));
        let ctx = Ctx::root();
        let fd = Fd::anonymous(gfid(2));
        qr.write(&ctx, &fd, 0, Bytes::from_static(b"aaaaaaaa"))
            .await
            .unwrap();
        qr.write(&ctx, &fd, 2, Bytes::from_static(b"BB"))
            .await
            .unwrap();
        assert_eq!(qr.read(&ctx, &fd, 0, 4096).await.unwrap(), &b"aaBBaaaa"[..]);
        assert_eq!(store.reads.load(Ordering::SeqCst), 1);
        // The short read from the start was the whole file: kept.
        assert_eq!(qr.read(&ctx, &fd, 0, 4096).await.unwrap(), &b"aaBBaaaa"[..]);
        assert_eq!(store.reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_upcall_drops_the_file_and_a_full_read_is_not_kept() {
        let (store, qr) = setup(Duration::from_secs(600));
        let ctx = Ctx::root();
        let g = gfid(3);
        let fd = Fd::anonymous(g);
        qr.write(&ctx, &fd, 0, Bytes::from_static(b"v1"))
            .await
            .unwrap();
        // Another client changes it on the bricks.
        store.files.lock().insert(g, b"v2!".to_vec());
        assert_eq!(qr.read(&ctx, &fd, 0, 4096).await.unwrap(), &b"v1"[..]);
        qr.notify(
            Event::Upcall(Upcall {
                gfid: g,
                flags: crate::fop::upcall_flags::DATA,
            }),
            0,
        )
        .await;
        assert_eq!(qr.read(&ctx, &fd, 0, 4096).await.unwrap(), &b"v2!"[..]);
        // A read that filled its buffer may not have reached the end: not kept.
        let before = store.reads.load(Ordering::SeqCst);
        qr.invalidate(g);
        assert_eq!(qr.read(&ctx, &fd, 0, 3).await.unwrap(), &b"v2!"[..]);
        assert_eq!(qr.read(&ctx, &fd, 0, 3).await.unwrap(), &b"v2!"[..]);
        assert_eq!(store.reads.load(Ordering::SeqCst), before + 2);
    }

    #[tokio::test]
    async fn content_expires_after_the_timeout_and_a_forget_all_clears_it() {
        let (store, qr) = setup(Duration::from_millis(50));
        let ctx = Ctx::root();
        let fd = Fd::anonymous(gfid(4));
        qr.write(&ctx, &fd, 0, Bytes::from_static(b"x"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        qr.read(&ctx, &fd, 0, 10).await.unwrap();
        assert_eq!(store.reads.load(Ordering::SeqCst), 1);
        qr.notify(Event::Upcall(Upcall::forget_all()), 0).await;
        assert_eq!(qr.files.len(), 0);
        assert_eq!(qr.bytes.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_fill_that_raced_a_change_is_dropped() {
        let (_store, qr) = setup(Duration::from_secs(600));
        let g = gfid(5);
        let epoch = qr.epoch(g).load(Ordering::SeqCst);
        qr.invalidate(g);
        qr.fill(g, epoch, Bytes::from_static(b"old"));
        assert!(qr.fresh(g).is_none());
        assert_eq!(qr.bytes.load(Ordering::SeqCst), 0);
    }
}
