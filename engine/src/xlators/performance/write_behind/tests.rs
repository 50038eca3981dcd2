use super::*;
use crate::xlator::XlatorRef;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// A child that keeps files in memory, counts the writes that reach it, and holds them while
/// `held` (a slow brick), or refuses them while `refuse`.
#[derive(Default)]
struct Store {
    base: Option<XlatorBase>,
    files: parking_lot::Mutex<HashMap<Gfid, Vec<u8>>>,
    writes: AtomicUsize,
    fsyncs: AtomicUsize,
    flushes: AtomicUsize,
    held: AtomicBool,
    refuse: AtomicBool,
    released: Notify,
    /// Names in the root, for fops by name.
    names: parking_lot::Mutex<HashMap<String, Gfid>>,
    /// Truncating opens: the content each found.
    truncated_at: parking_lot::Mutex<Vec<Vec<u8>>>,
}

impl Store {
    fn content(&self, g: Gfid) -> Vec<u8> {
        self.files.lock().get(&g).cloned().unwrap_or_default()
    }
    fn release_writes(&self) {
        self.held.store(false, Ordering::SeqCst);
        self.released.notify_waiters();
    }
}

#[async_trait]
impl Xlator for Store {
    fn base(&self) -> &XlatorBase {
        self.base.as_ref().unwrap()
    }
    async fn read(&self, _: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Bytes> {
        let f = self.files.lock();
        let d = f.get(&fd.gfid).ok_or(Errno::ENOENT)?;
        let s = (offset as usize).min(d.len());
        let e = (s + size as usize).min(d.len());
        Ok(Bytes::copy_from_slice(&d[s..e]))
    }
    async fn write(&self, _: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
        loop {
            let woken = self.released.notified();
            if !self.held.load(Ordering::SeqCst) {
                break;
            }
            woken.await;
        }
        if self.refuse.load(Ordering::SeqCst) {
            return Err(Errno::ENOSPC);
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
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
    async fn fstat(&self, _: &Ctx, fd: &FdRef) -> Result<Iatt> {
        Ok(Iatt {
            gfid: fd.gfid,
            size: self.content(fd.gfid).len() as u64,
            ..Default::default()
        })
    }
    async fn fsync(&self, _: &Ctx, _: &FdRef, _: bool) -> Result<()> {
        self.fsyncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn flush(&self, _: &Ctx, _: &FdRef) -> Result<()> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn release(&self, _: &FdRef) {}
    async fn lookup(&self, _: &Ctx, loc: &Loc, _: &Xattrs) -> Result<(Iatt, Xattrs)> {
        let g = *self
            .names
            .lock()
            .get(loc.name.as_deref().unwrap_or_default())
            .ok_or(Errno::ENOENT)?;
        let ia = Iatt {
            gfid: g,
            size: self.content(g).len() as u64,
            ..Default::default()
        };
        Ok((ia, Xattrs::new()))
    }
    async fn open(&self, _: &Ctx, loc: &Loc, flags: i32) -> Result<FdRef> {
        let g = match loc.gfid {
            Some(g) => g,
            None => *self
                .names
                .lock()
                .get(loc.name.as_deref().unwrap_or_default())
                .ok_or(Errno::ENOENT)?,
        };
        if flags & libc::O_TRUNC != 0 {
            self.truncated_at.lock().push(self.content(g));
            self.files.lock().insert(g, Vec::new());
        }
        Ok(Fd::new(g, flags, false))
    }
}

fn setup(flush_behind: bool) -> (Arc<Store>, Arc<WriteBehind>) {
    let store = Arc::new(Store {
        base: Some(XlatorBase::new("store", "test/store", vec![])),
        ..Default::default()
    });
    let child: XlatorRef = store.clone();
    let wb = Arc::new_cyclic(|me| {
        WriteBehind::new(
            XlatorBase::new("wb", "performance/write-behind", vec![child]),
            me.clone(),
            1 << 20,
            128 << 10,
            flush_behind,
        )
    });
    (store, wb)
}

fn behind_ctx() -> Ctx {
    Ctx {
        write_behind: true,
        ..Default::default()
    }
}

fn fd(n: u8, flags: i32) -> FdRef {
    let mut b = [0u8; 16];
    b[15] = n;
    b[0] = 0xbb;
    Fd::new(Gfid(b), flags, false)
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("answered in time")
}

#[tokio::test]
async fn writes_are_answered_before_the_bricks_take_them_and_reads_wait_for_them() {
    let (store, wb) = setup(true);
    let ctx = behind_ctx();
    let f = fd(1, libc::O_RDWR);
    store.held.store(true, Ordering::SeqCst);
    // Eight writes far apart take every place on the way to the bricks…
    for k in 1..=MAX_IN_FLIGHT as u64 {
        within(wb.write(&ctx, &f, k << 20, Bytes::from_static(b"far")))
            .await
            .unwrap();
    }
    // …so these two wait in the queue, where the second continues the first.
    within(wb.write(&ctx, &f, 0, Bytes::from_static(b"hello ")))
        .await
        .unwrap();
    within(wb.write(&ctx, &f, 6, Bytes::from_static(b"world")))
        .await
        .unwrap();
    assert_eq!(store.writes.load(Ordering::SeqCst), 0);
    let read = {
        let (wb, ctx, f) = (wb.clone(), ctx.clone(), f.clone());
        tokio::spawn(async move { wb.read(&ctx, &f, 0, 11).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !read.is_finished(),
        "a read must wait for the writes before it"
    );
    store.release_writes();
    assert_eq!(within(read).await.unwrap().unwrap(), &b"hello world"[..]);
    // The second write continued the first one and went with it.
    assert_eq!(store.writes.load(Ordering::SeqCst), MAX_IN_FLIGHT + 1);
}

#[tokio::test]
async fn fsync_waits_for_every_write_and_reports_a_refused_one() {
    let (store, wb) = setup(true);
    let ctx = behind_ctx();
    let f = fd(2, libc::O_RDWR);
    store.held.store(true, Ordering::SeqCst);
    store.refuse.store(true, Ordering::SeqCst);
    for k in 0..4u64 {
        within(wb.write(&ctx, &f, k * 4096 * 64, Bytes::from(vec![1u8; 4096])))
            .await
            .unwrap();
    }
    let sync = {
        let (wb, ctx, f) = (wb.clone(), ctx.clone(), f.clone());
        tokio::spawn(async move { wb.fsync(&ctx, &f, false).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!sync.is_finished());
    store.release_writes();
    assert_eq!(within(sync).await.unwrap(), Err(Errno::ENOSPC));
    // Told once; the next fsync goes through.
    store.refuse.store(false, Ordering::SeqCst);
    within(wb.fsync(&ctx, &f, false)).await.unwrap();
    assert_eq!(store.fsyncs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_close_waits_for_the_data_only_without_flush_behind() {
    for flush_behind in [true, false] {
        let (store, wb) = setup(flush_behind);
        let ctx = behind_ctx();
        let f = fd(3, libc::O_WRONLY);
        store.held.store(true, Ordering::SeqCst);
        within(wb.write(&ctx, &f, 0, Bytes::from_static(b"data")))
            .await
            .unwrap();
        let close = {
            let (wb, ctx, f) = (wb.clone(), ctx.clone(), f.clone());
            tokio::spawn(async move { wb.flush(&ctx, &f).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            close.is_finished(),
            flush_behind,
            "flush-behind {flush_behind}"
        );
        store.release_writes();
        within(close).await.unwrap().unwrap();
        within(wb.release(&f)).await;
        assert_eq!(store.content(f.gfid), b"data");
        // The flush itself still reaches the bricks, after the data.
        within(async {
            while store.flushes.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(wb.inodes.is_empty(), "a released idle inode is forgotten");
    }
}

#[tokio::test]
async fn sync_fds_and_callers_without_write_behind_write_through() {
    let (store, wb) = setup(true);
    let sync = fd(4, libc::O_WRONLY | libc::O_SYNC);
    within(wb.write(&behind_ctx(), &sync, 0, Bytes::from_static(b"x")))
        .await
        .unwrap();
    assert_eq!(store.writes.load(Ordering::SeqCst), 1);
    let plain = fd(5, libc::O_WRONLY);
    let ia = within(wb.write(&Ctx::root(), &plain, 0, Bytes::from_static(b"yy")))
        .await
        .unwrap();
    assert_eq!(store.writes.load(Ordering::SeqCst), 2);
    // Written through, the attributes are the bricks' own.
    assert_eq!((ia.gfid, ia.size), (plain.gfid, 2));
}

#[tokio::test]
async fn a_full_window_makes_the_writer_wait_and_overlapping_writes_keep_their_order() {
    let (store, wb) = setup(true);
    let ctx = behind_ctx();
    let f = fd(6, libc::O_RDWR);
    store.held.store(true, Ordering::SeqCst);
    // Not contiguous, so nothing merges: eight 128 KiB writes fill the 1 MiB window.
    for k in 0..8u64 {
        within(wb.write(
            &ctx,
            &f,
            k * (256 << 10),
            Bytes::from(vec![k as u8; 128 << 10]),
        ))
        .await
        .unwrap();
    }
    let ninth = {
        let (wb, ctx, f) = (wb.clone(), ctx.clone(), f.clone());
        tokio::spawn(async move { wb.write(&ctx, &f, 0, Bytes::from(vec![9u8; 4096])).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !ninth.is_finished(),
        "a full window must make the writer wait"
    );
    store.release_writes();
    within(ninth).await.unwrap().unwrap();
    within(wb.fsync(&ctx, &f, false)).await.unwrap();
    let c = store.content(f.gfid);
    // The ninth write overlapped the first: it landed after it.
    assert_eq!(&c[..4096], &[9u8; 4096][..]);
    assert_eq!(c[4096], 0);
    assert_eq!(c[7 * (256 << 10)], 7);
}

#[tokio::test]
async fn a_graph_being_replaced_sends_what_it_holds_then_writes_through() {
    let (store, wb) = setup(true);
    let ctx = behind_ctx();
    let (a, b) = (fd(7, libc::O_RDWR), fd(8, libc::O_RDWR));
    store.held.store(true, Ordering::SeqCst);
    within(wb.write(&ctx, &a, 0, Bytes::from_static(b"early")))
        .await
        .unwrap();
    let settle = {
        let wb = wb.clone();
        tokio::spawn(async move { wb.settle().await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !settle.is_finished(),
        "the switch went on with a write the bricks had not taken"
    );
    store.release_writes();
    within(settle).await.unwrap();
    assert_eq!(store.content(a.gfid), b"early");

    // From now on a write is answered only once the bricks hold it.
    store.held.store(true, Ordering::SeqCst);
    let late = {
        let (wb, ctx, b) = (wb.clone(), ctx.clone(), b.clone());
        tokio::spawn(async move { wb.write(&ctx, &b, 0, Bytes::from_static(b"late")).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !late.is_finished(),
        "a write was answered early after the switch"
    );
    store.release_writes();
    within(late).await.unwrap().unwrap();
    assert_eq!(store.content(b.gfid), b"late");
}

#[tokio::test]
async fn a_truncating_open_by_name_comes_after_the_writes_of_its_file() {
    let (store, wb) = setup(true);
    let ctx = behind_ctx();
    let f = fd(9, libc::O_RDWR);
    store.names.lock().insert("named".into(), f.gfid);
    store.held.store(true, Ordering::SeqCst);
    within(wb.write(&ctx, &f, 0, Bytes::from_static(b"old data")))
        .await
        .unwrap();
    let open = {
        let (wb, ctx) = (wb.clone(), ctx.clone());
        tokio::spawn(async move {
            let by_name = Loc::child(Gfid::ROOT, "named");
            wb.open(&ctx, &by_name, libc::O_WRONLY | libc::O_TRUNC)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !open.is_finished(),
        "the truncating open went before the write it must follow"
    );
    store.release_writes();
    within(open).await.unwrap().unwrap();
    assert_eq!(store.truncated_at.lock().as_slice(), [b"old data".to_vec()]);
    assert!(
        store.content(f.gfid).is_empty(),
        "the old write came after the truncate"
    );
}
