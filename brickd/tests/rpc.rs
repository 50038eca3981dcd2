//! protocol/client ↔ protocol/server over loopback, with storage/posix behind the server.

use brickd::protocol::server::{Server, ServerConfig};
use bytes::Bytes;
use engine::graph::Graph;
use engine::registry::Registry;
use engine::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Brick {
    _dir: tempfile::TempDir,
    port: u16,
    vid: Gfid,
    task: tokio::task::JoinHandle<()>,
}

async fn brick(secret: &str) -> Brick {
    let dir = tempfile::tempdir().unwrap();
    let vid = Gfid::random();
    let mut r = Registry::empty();
    brickd::register_all(&mut r);
    let g = Graph::from_text(
        &brickd::brick_volfile("b0", &dir.path().to_string_lossy(), &vid.to_string()),
        &r,
    )
    .unwrap();
    g.init().await.unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let s = Server::new(
        g.top(),
        ServerConfig {
            volume_id: vid,
            brick_name: "b0".into(),
            secret: secret.as_bytes().to_vec(),
            tls: None,
            auth: brickd::protocol::auth::AuthSource::fixed(Default::default()),
        },
    );
    let task = tokio::spawn(async move {
        let _ = s.serve(l).await;
    });
    Brick {
        _dir: dir,
        port,
        vid,
        task,
    }
}

async fn client(port: u16, vid: &Gfid, secret: &str) -> Graph {
    let text = format!(
        "volume c\n type protocol/client\n option remote-port {port}\n option remote-subvolume b0\n option volume-id {vid}\n option password {secret}\n option ping-timeout 2\nend-volume\n"
    );
    let g = Graph::from_text(&text, &Registry::client_side()).unwrap();
    g.init().await.unwrap();
    g
}

fn entry(mode: u32) -> NewEntry {
    NewEntry {
        gfid: Gfid::random(),
        mode,
        umask: 0,
        ..Default::default()
    }
}

#[tokio::test]
async fn fops_round_trip_and_many_requests_fly_at_once() {
    let b = brick("s3cret").await;
    let g = client(b.port, &b.vid, "s3cret").await;
    assert!(g.wait_up(Duration::from_secs(5)).await);
    let c = g.top();
    let ctx = Ctx::root();
    let e = entry(0o644);
    let (fd, ia, _) = c
        .create(&ctx, &Loc::child(Gfid::ROOT, "f"), libc::O_RDWR, &e)
        .await
        .unwrap();
    assert_eq!(ia.gfid, e.gfid);
    let data = Bytes::from(vec![7u8; 1 << 20]);
    c.write(&ctx, &fd, 0, data.clone()).await.unwrap();
    assert_eq!(c.read(&ctx, &fd, 0, 1 << 20).await.unwrap(), data);
    let (ia, _) = c
        .lookup(&ctx, &Loc::child(Gfid::ROOT, "f"), &Xattrs::new())
        .await
        .unwrap();
    assert_eq!(ia.size, 1 << 20);
    let futs: Vec<_> = (0..1000)
        .map(|i| {
            let (c, ctx, fd) = (c.clone(), ctx.clone(), fd.clone());
            async move { c.read(&ctx, &fd, i * 10, 10).await }
        })
        .collect();
    for r in futures::future::join_all(futs).await {
        assert_eq!(&r.unwrap()[..], &[7u8; 10]);
    }
    let d = c.opendir(&ctx, &Loc::root()).await.unwrap();
    let ents = c.readdirp(&ctx, &d, 0, 4096, &Xattrs::new()).await.unwrap();
    assert!(ents.iter().any(|e| e.name == "f"));
    assert_eq!(
        c.read(&ctx, &Fd::anonymous(e.gfid), 0, 3)
            .await
            .unwrap()
            .len(),
        3
    );
    g.fini().await;
    b.task.abort();
}

#[tokio::test]
async fn a_file_created_with_its_content_has_it_before_its_name_is_seen() {
    let b = brick("s3cret").await;
    let g = client(b.port, &b.vid, "s3cret").await;
    assert!(g.wait_up(Duration::from_secs(5)).await);
    let (c, ctx) = (g.top(), Ctx::root());
    let data = Bytes::from((0..100_000u32).map(|i| i as u8).collect::<Vec<u8>>());
    let e = NewEntry {
        data: data.clone(),
        xattrs: Xattrs::from([("user.k".to_string(), Bytes::from_static(b"v"))]),
        ..entry(libc::S_IFREG | 0o640)
    };
    let (fd, ia, _) = c
        .create(&ctx, &Loc::child(Gfid::ROOT, "whole"), libc::O_WRONLY, &e)
        .await
        .unwrap();
    assert_eq!((ia.gfid, ia.size), (e.gfid, data.len() as u64));
    c.release(&fd).await;
    let on_disk = std::fs::read(b._dir.path().join("whole")).unwrap();
    assert!(
        on_disk == data,
        "the brick's file holds the created content"
    );
    let x = c
        .getxattr(&ctx, &Loc::gfid(e.gfid), Some("user.k"))
        .await
        .unwrap();
    assert_eq!(&x["user.k"][..], b"v");
    // A create that fails (the name exists) leaves the old file as it was.
    let again = NewEntry {
        gfid: Gfid::random(),
        data: Bytes::from_static(b"other"),
        ..e.clone()
    };
    let r = c
        .create(
            &ctx,
            &Loc::child(Gfid::ROOT, "whole"),
            libc::O_WRONLY,
            &again,
        )
        .await;
    assert_eq!(r.err(), Some(Errno::EEXIST));
    assert!(std::fs::read(b._dir.path().join("whole")).unwrap() == data);
    g.fini().await;
    b.task.abort();
}

#[tokio::test]
async fn a_create_that_asks_for_a_lock_holds_it_with_the_new_inode_marked_dirty() {
    let b = brick("s3cret").await;
    let (g1, g2) = (
        client(b.port, &b.vid, "s3cret").await,
        client(b.port, &b.vid, "s3cret").await,
    );
    assert!(g1.wait_up(Duration::from_secs(5)).await && g2.wait_up(Duration::from_secs(5)).await);
    let (c1, c2) = (g1.top(), g2.top());
    let flock = |typ, owner| Flock {
        typ,
        start: 0,
        len: 0,
        pid: 0,
        owner,
    };
    let dirty = Bytes::from_static(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    let e = NewEntry {
        xattrs: Xattrs::from([(keys::AFR_DIRTY.to_string(), dirty.clone())]),
        lock: Some(NewLock {
            domain: "vol-replicate-0".into(),
            lock: flock(LockType::Write, 7),
        }),
        ..entry(libc::S_IFREG | 0o644)
    };
    let at = Loc::child(Gfid::ROOT, "locked");
    let (fd, _, _) = c1
        .create(&Ctx::root(), &at, libc::O_WRONLY, &e)
        .await
        .unwrap();
    // Another client cannot take the lock the create was granted.
    let other = Ctx {
        lk_owner: 9,
        ..Ctx::root()
    };
    let try_lock = |c: std::sync::Arc<dyn Xlator>, ctx: Ctx| async move {
        c.inodelk(
            &ctx,
            "vol-replicate-0",
            &Loc::gfid(e.gfid),
            LockCmd::Set,
            &flock(LockType::Write, ctx.lk_owner),
        )
        .await
    };
    assert_eq!(
        try_lock(c2.clone(), other.clone()).await.err(),
        Some(Errno::EAGAIN)
    );
    // The new inode carries the dirty mark and is in the heal index, as after a pre-op.
    let x = c1
        .getxattr(&Ctx::root(), &Loc::gfid(e.gfid), Some(keys::AFR_DIRTY))
        .await
        .unwrap();
    assert_eq!(x[keys::AFR_DIRTY], dirty);
    let index = b._dir.path().join(".glusterfs/indices/dirty");
    assert!(index.join(e.gfid.to_string()).exists());
    // Its owner releases it like any inodelk; then the other client gets it.
    let owner = Ctx {
        lk_owner: 7,
        ..Ctx::root()
    };
    c1.inodelk(
        &owner,
        "vol-replicate-0",
        &Loc::gfid(e.gfid),
        LockCmd::Set,
        &flock(LockType::Unlock, 7),
    )
    .await
    .unwrap();
    try_lock(c2.clone(), other).await.unwrap();
    c1.release(&fd).await;
    // A create that fails (the name exists) keeps no lock.
    let again = NewEntry {
        gfid: Gfid::random(),
        ..e.clone()
    };
    let r = c1.create(&Ctx::root(), &at, libc::O_WRONLY, &again).await;
    assert_eq!(r.err(), Some(Errno::EEXIST));
    let after = Ctx {
        lk_owner: 11,
        ..Ctx::root()
    };
    c2.inodelk(
        &after,
        "vol-replicate-0",
        &Loc::gfid(again.gfid),
        LockCmd::Set,
        &flock(LockType::Write, 11),
    )
    .await
    .unwrap();
    g1.fini().await;
    g2.fini().await;
    b.task.abort();
}

#[tokio::test]
async fn a_client_without_the_secret_is_refused() {
    let b = brick("right").await;
    let g = client(b.port, &b.vid, "wrong").await;
    assert!(!g.wait_up(Duration::from_secs(2)).await);
    let r = g.top().stat(&Ctx::root(), &Loc::root()).await;
    assert_eq!(r.err(), Some(Errno::ENOTCONN));
    g.fini().await;
    b.task.abort();
}

#[tokio::test]
async fn garbage_closes_only_that_connection() {
    let b = brick("k").await;
    let g = client(b.port, &b.vid, "k").await;
    assert!(g.wait_up(Duration::from_secs(5)).await);
    let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", b.port))
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let _ = raw.read(&mut buf).await.unwrap(); // the challenge
    raw.write_all(&[0xff; 64]).await.unwrap(); // an oversized length and junk
    let n = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match raw.read(&mut buf).await {
                Ok(0) | Err(_) => return 0,
                Ok(_) => continue,
            }
        }
    })
    .await
    .expect("the brick closes a connection that sends garbage");
    assert_eq!(n, 0);
    g.top().stat(&Ctx::root(), &Loc::root()).await.unwrap();
    g.fini().await;
    b.task.abort();
}

#[tokio::test]
async fn an_xattrop_over_rpc_keeps_the_heal_index() {
    let b = brick("s3cret").await;
    let g = client(b.port, &b.vid, "s3cret").await;
    assert!(g.wait_up(Duration::from_secs(5)).await);
    let c = g.top();
    let ctx = Ctx::root();
    let e = entry(0o644);
    c.create(&ctx, &Loc::child(Gfid::ROOT, "f"), libc::O_RDWR, &e)
        .await
        .unwrap();
    let key = "trusted.afr.gv-client-1".to_string();
    let mut x = Xattrs::new();
    x.insert(
        key.clone(),
        Bytes::from_static(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
    );
    c.xattrop(&ctx, &Loc::gfid(e.gfid), XattropOp::AddArray, &x)
        .await
        .unwrap();
    let indices = b._dir.path().join(".glusterfs/indices");
    let listed = brickd::features::index::Index::entries(&indices, "xattrop").unwrap();
    assert_eq!(listed, vec![e.gfid]);
    x.insert(
        key,
        Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]),
    );
    c.xattrop(&ctx, &Loc::gfid(e.gfid), XattropOp::AddArray, &x)
        .await
        .unwrap();
    assert!(
        brickd::features::index::Index::entries(&indices, "xattrop")
            .unwrap()
            .is_empty()
    );
    b.task.abort();
}

/// A lock a client was still waiting for when its connection went must not be kept for it
/// once the holder lets go: nobody could ever release it (a heal would wait on it forever).
#[tokio::test]
async fn a_lock_granted_after_its_client_left_is_dropped() {
    let b = brick("k").await;
    let [holder, waiter, other] = [
        client(b.port, &b.vid, "k").await,
        client(b.port, &b.vid, "k").await,
        client(b.port, &b.vid, "k").await,
    ];
    for g in [&holder, &waiter, &other] {
        assert!(g.wait_up(Duration::from_secs(5)).await);
    }
    let ctx = Ctx::root();
    let (_, ia, _) = holder
        .top()
        .create(
            &ctx,
            &Loc::child(Gfid::ROOT, "f"),
            libc::O_RDWR,
            &entry(0o644),
        )
        .await
        .unwrap();
    let at = Loc::gfid(ia.gfid);
    let fl = |typ| Flock {
        typ,
        start: 0,
        len: 0,
        pid: 0,
        owner: 1,
    };
    holder
        .top()
        .inodelk(&ctx, "d", &at, LockCmd::Set, &fl(LockType::Write))
        .await
        .unwrap();
    let w = waiter.top();
    let (wctx, wat, wfl) = (ctx.clone(), at.clone(), fl(LockType::Write));
    let blocked =
        tokio::spawn(async move { w.inodelk(&wctx, "d", &wat, LockCmd::SetWait, &wfl).await });
    // The waiter's request reaches the brick and waits there; then its client goes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    waiter.fini().await;
    let _ = blocked.await;
    // The client notices its stop within a second (its ping tick) and closes the socket.
    tokio::time::sleep(Duration::from_secs(2)).await;
    holder
        .top()
        .inodelk(&ctx, "d", &at, LockCmd::Set, &fl(LockType::Unlock))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match other
            .top()
            .inodelk(&ctx, "d", &at, LockCmd::Set, &fl(LockType::Write))
            .await
        {
            Ok(_) => break,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "the lock stayed held for a client that left: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for g in [holder, other] {
        g.fini().await;
    }
    b.task.abort();
}

#[tokio::test]
async fn a_compound_request_runs_its_steps_in_order_and_stops_at_the_first_refusal() {
    let b = brick("s3cret").await;
    let g = client(b.port, &b.vid, "s3cret").await;
    assert!(g.wait_up(Duration::from_secs(5)).await);
    let c = g.top();
    let e = entry(0o644);
    let (_, ia, _) = c
        .create(&Ctx::root(), &Loc::child(Gfid::ROOT, "f"), libc::O_RDWR, &e)
        .await
        .unwrap();
    let loc = Loc::gfid(ia.gfid);
    let lock = |owner: u64, typ: LockType| TxnStep::Inodelk {
        domain: "d".into(),
        loc: loc.clone(),
        cmd: LockCmd::Set,
        lock: Flock {
            typ,
            start: 0,
            len: 0,
            pid: 0,
            owner,
        },
    };
    let mark = TxnStep::Xattrop {
        loc: loc.clone(),
        op: XattropOp::AddArray,
        xattrs: Xattrs::from([(
            "trusted.afr.dirty".to_string(),
            Bytes::from(vec![0, 0, 0, 1]),
        )]),
    };
    let ctx = |owner: u64| Ctx {
        lk_owner: owner,
        ..Ctx::root()
    };
    c.txn_steps(&ctx(1), &[lock(1, LockType::Write), mark.clone()])
        .await
        .unwrap();
    // Another owner is refused at its lock, and its xattrop never runs.
    let refused = c
        .txn_steps(&ctx(2), &[lock(2, LockType::Write), mark.clone()])
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        StepFailed {
            done: 0,
            error: Errno::EAGAIN
        }
    );
    let x = c
        .getxattr(&Ctx::root(), &loc, Some("trusted.afr.dirty"))
        .await
        .unwrap();
    assert_eq!(&x["trusted.afr.dirty"][..], &[0, 0, 0, 1]);
    c.txn_steps(&ctx(1), &[lock(1, LockType::Unlock)])
        .await
        .unwrap();
    c.txn_steps(&ctx(2), &[lock(2, LockType::Write)])
        .await
        .unwrap();
    g.fini().await;
    b.task.abort();
}
