//! Brick round trips over loopback: protocol/client → TCP → protocol/server → the brick
//! graph (index, locks, posix) and back, timed from a task on the client's runtime, as a
//! cluster translator sees them. The brick runs on a runtime of its own, as brickd does in
//! its own process, so hand-offs between threads cost what they cost in production.

use brickd::protocol::server::{Server, ServerConfig};
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use engine::graph::Graph;
use engine::registry::Registry;
use engine::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Setup {
    _dir: tempfile::TempDir,
    _brick_rt: tokio::runtime::Runtime,
    rt: tokio::runtime::Runtime,
    _graph: Graph,
    top: XlatorRef,
    file: Gfid,
    fd: FdRef,
}

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime")
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let vid = Gfid::random();
    let brick_rt = runtime(2);
    let path = dir.path().to_string_lossy().to_string();
    let port = brick_rt.block_on(async move {
        let mut r = Registry::empty();
        brickd::register_all(&mut r);
        let g = Graph::from_text(&brickd::brick_volfile("b0", &path, &vid.to_string()), &r)
            .expect("brick volfile");
        g.init().await.expect("brick init");
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = l.local_addr().expect("addr").port();
        let s = Server::new(
            g.top(),
            ServerConfig {
                volume_id: vid,
                brick_name: "b0".into(),
                secret: b"bench".to_vec(),
                tls: None,
                auth: brickd::protocol::auth::AuthSource::fixed(Default::default()),
            },
        );
        tokio::spawn(async move {
            let _g = g;
            let _ = s.serve(l).await;
        });
        port
    });
    let rt = runtime(2);
    let (graph, top, file, fd) = rt.block_on(async move {
        let text = format!(
            "volume c\n type protocol/client\n option remote-port {port}\n option remote-subvolume b0\n option volume-id {vid}\n option password bench\nend-volume\n"
        );
        let g = Graph::from_text(&text, &Registry::client_side()).expect("client volfile");
        g.init().await.expect("client init");
        assert!(g.wait_up(Duration::from_secs(5)).await, "brick not up");
        let top = g.top();
        let e = NewEntry {
            gfid: Gfid::random(),
            mode: 0o644,
            ..Default::default()
        };
        let (fd, ia, _) = top
            .create(&Ctx::root(), &Loc::child(Gfid::ROOT, "f"), libc::O_RDWR, &e)
            .await
            .expect("create");
        (g, top, ia.gfid, fd)
    });
    Setup {
        _dir: dir,
        _brick_rt: brick_rt,
        rt,
        _graph: graph,
        top,
        file,
        fd,
    }
}

/// Times `iters` sequential calls of `op` from a task on the client runtime.
fn timed<F, Fut>(s: &Setup, iters: u64, op: F) -> Duration
where
    F: Fn(XlatorRef) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let top = s.top.clone();
    s.rt.block_on(async move {
        tokio::spawn(async move {
            let t = Instant::now();
            for _ in 0..iters {
                op(top.clone()).await;
            }
            t.elapsed()
        })
        .await
        .expect("bench task")
    })
}

fn round_trips(c: &mut Criterion) {
    let s = Arc::new(setup());
    let mut g = c.benchmark_group("brick_round_trip");
    g.measurement_time(Duration::from_secs(5));
    let file = s.file;
    g.bench_function("stat", |b| {
        b.iter_custom(|n| {
            timed(&s, n, move |top| async move {
                top.stat(&Ctx::root(), &Loc::gfid(file))
                    .await
                    .expect("stat");
            })
        })
    });
    g.bench_function("lookup", |b| {
        b.iter_custom(|n| {
            timed(&s, n, |top| async move {
                top.lookup(&Ctx::root(), &Loc::child(Gfid::ROOT, "f"), &Xattrs::new())
                    .await
                    .expect("lookup");
            })
        })
    });
    g.bench_function("inodelk_unlock", |b| {
        b.iter_custom(|n| {
            timed(&s, n, move |top| async move {
                let ctx = Ctx::root();
                let mut fl = Flock {
                    typ: LockType::Write,
                    start: 0,
                    len: 0,
                    pid: 0,
                    owner: 7,
                };
                let loc = Loc::gfid(file);
                top.inodelk(&ctx, "bench", &loc, LockCmd::Set, &fl)
                    .await
                    .expect("lock");
                fl.typ = LockType::Unlock;
                top.inodelk(&ctx, "bench", &loc, LockCmd::Set, &fl)
                    .await
                    .expect("unlock");
            })
        })
    });
    let fd = s.fd.clone();
    let data = Bytes::from(vec![1u8; 4096]);
    g.bench_function("write_4k", |b| {
        b.iter_custom(|n| {
            let (fd, data) = (fd.clone(), data.clone());
            timed(&s, n, move |top| {
                let (fd, data) = (fd.clone(), data.clone());
                async move {
                    top.write(&Ctx::root(), &fd, 0, data).await.expect("write");
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, round_trips);
criterion_main!(benches);
