//! md-cache's tests of a directory's attributes around this client's own changes in it.

use super::*;

/// After our own create, mkdir or unlink in a directory whose attributes were known, they are
/// known again, as the bricks said them after the change: the kernel's stat of the parent
/// after each change in it costs no round trip.
#[tokio::test]
async fn the_parent_is_known_after_our_own_change_in_it() {
    let (md, mem) = long();
    let ctx = c();
    let d = mem.add(ROOT, "d", libc::S_IFDIR | 0o755);
    let dir = Loc::gfid(d);
    let first = md.stat(&ctx, &dir).await.unwrap();
    let new = |m| NewEntry {
        gfid: Gfid::random(),
        mode: m,
        ..Default::default()
    };
    let stat_from_memory = async |what: &str| {
        let n = mem.calls();
        let ia = md.stat(&ctx, &dir).await.unwrap();
        assert_eq!(mem.calls(), n, "{what}: answered from memory");
        assert_eq!(ia, mem.iatt(d).unwrap(), "{what}: as the brick has it");
        ia
    };

    md.create(&ctx, &Loc::child(d, "f"), libc::O_RDWR, &new(0o644))
        .await
        .unwrap();
    let after = stat_from_memory("create").await;
    assert!(after.mtime.sec > first.mtime.sec);
    md.mkdir(&ctx, &Loc::child(d, "sub"), &new(0o755))
        .await
        .unwrap();
    assert_eq!(stat_from_memory("mkdir").await.nlink, first.nlink + 1);
    md.create(&ctx, &Loc::child(d, ".f.tmp"), libc::O_RDWR, &new(0o644))
        .await
        .unwrap();
    md.rename(&ctx, &Loc::child(d, ".f.tmp"), &Loc::child(d, "f2"))
        .await
        .unwrap();
    stat_from_memory("rename").await;
    md.unlink(&ctx, &Loc::child(d, "f")).await.unwrap();
    stat_from_memory("unlink").await;

    // Not known before the change (another client changed it): not made up from the reply.
    upcall(&md, d, upcall_flags::ATTR).await;
    md.create(&ctx, &Loc::child(d, "g"), libc::O_RDWR, &new(0o644))
        .await
        .unwrap();
    let n = mem.calls();
    md.stat(&ctx, &dir).await.unwrap();
    assert_eq!(mem.calls(), n + 1, "asked of the brick");

    // Another client's change of the directory while ours was in flight: its upcall may
    // say more than the reply, which is not kept.
    let hold = Arc::new(Notify::new());
    *mem.hold.lock() = Some(hold.clone());
    let md2 = md.clone();
    let create = tokio::spawn(async move {
        md2.create(&c(), &Loc::child(d, "h"), libc::O_RDWR, &new(0o644))
            .await
            .map(|_| ())
    });
    let n = mem.calls();
    while mem.calls() == n {
        tokio::task::yield_now().await;
    }
    mem.behind_its_back(|s| s.inodes.get_mut(&d).unwrap().mode = libc::S_IFDIR | 0o700);
    upcall(&md, d, upcall_flags::ATTR).await;
    *mem.hold.lock() = None;
    hold.notify_one();
    create.await.unwrap().unwrap();
    assert_eq!(
        md.stat(&ctx, &dir).await.unwrap().mode & 0o777,
        0o700,
        "the reply that overlapped the upcall was not kept"
    );
}

/// A caller that uses a lookup for the directory's identity only (`Ctx::attrs_may_lag`) is
/// answered from memory while our own name changes in it are in flight, which leaves
/// everyone else asking the brick; another client's change ends that too.
#[tokio::test]
async fn a_busy_directory_is_found_from_memory_by_who_needs_no_fresh_times() {
    let (md, mem) = long();
    let d = mem.add(ROOT, "d", libc::S_IFDIR | 0o755);
    mem.add(d, "old", libc::S_IFREG | 0o644);
    let lag = Ctx {
        attrs_may_lag: true,
        ..c()
    };
    md.lookup(&c(), &Loc::child(ROOT, "d"), &Xattrs::new())
        .await
        .unwrap();
    let hold = Arc::new(Notify::new());
    *mem.hold.lock() = Some(hold.clone());
    let md2 = md.clone();
    let create = tokio::spawn(async move {
        let e = NewEntry {
            gfid: Gfid::random(),
            mode: 0o644,
            ..Default::default()
        };
        md2.create(&c(), &Loc::child(d, "h"), libc::O_RDWR, &e)
            .await
            .map(|_| ())
    });
    let n = mem.calls();
    while mem.calls() == n {
        tokio::task::yield_now().await;
    }
    // Another change of ours in `d` while the create is in flight: the create's reply no
    // longer says the directory's attributes for certain, so they stay dropped.
    md.unlink(&c(), &Loc::child(d, "old")).await.unwrap();
    *mem.hold.lock() = None;
    hold.notify_one();
    create.await.unwrap().unwrap();
    let n = mem.calls();
    let (ia, _) = md
        .lookup(&lag, &Loc::child(ROOT, "d"), &Xattrs::new())
        .await
        .unwrap();
    assert_eq!((ia.gfid, ia.is_dir(), mem.calls()), (d, true, n));
    md.lookup(&c(), &Loc::child(ROOT, "d"), &Xattrs::new())
        .await
        .unwrap();
    assert_eq!(mem.calls(), n + 1, "the times are asked of the brick");

    md.create(
        &c(),
        &Loc::child(d, "i"),
        libc::O_RDWR,
        &NewEntry {
            gfid: Gfid::random(),
            mode: 0o644,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    upcall(&md, d, upcall_flags::ATTR).await;
    let n = mem.calls();
    md.lookup(&lag, &Loc::child(ROOT, "d"), &Xattrs::new())
        .await
        .unwrap();
    assert_eq!(mem.calls(), n + 1, "after an upcall, asked of the brick");
}
