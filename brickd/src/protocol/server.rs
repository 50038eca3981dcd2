//! `protocol/server`: accepts brick RPC connections, authenticates them, and runs each request
//! in its own task against the brick's graph. A connection's fds and locks die with it.

use bytes::Bytes;
use engine::rpc::*;
use engine::*;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::net::{TcpListener, TcpStream};

use super::auth::AuthSource;

pub struct ServerConfig {
    pub volume_id: Gfid,
    pub brick_name: String,
    pub secret: Vec<u8>,
    /// TLS (`transport.socket.ssl-enabled`): every connection must complete a TLS handshake
    /// first; with a client CA in the config, clients must present a certificate it signed.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// `auth.allow` / `auth.reject`, kept current (see `super::auth::AuthSource`).
    pub auth: Arc<AuthSource>,
}

type BoxRead = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
type BoxWrite = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

/// How long a client has for the TLS handshake and for the brick RPC handshake.
const HANDSHAKE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct Server {
    top: XlatorRef,
    cfg: ServerConfig,
    next_client: AtomicU64,
}

struct Conn {
    id: u64,
    fds: Mutex<HashMap<u64, FdRef>>,
    next_fd: AtomicU64,
    tx: Arc<FrameSink>,
    /// Set once the connection is gone. Its requests still running may yet be granted a lock
    /// or open an fd (a waiter woken when the holder unlocks, a task not yet scheduled); each
    /// that ends after this is set clears the connection's state again, so nothing it got is
    /// kept for a client that can no longer release it.
    gone: AtomicBool,
}

impl Server {
    pub fn new(top: XlatorRef, cfg: ServerConfig) -> Arc<Server> {
        Arc::new(Server {
            top,
            cfg,
            next_client: AtomicU64::new(1),
        })
    }

    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        loop {
            let (stream, peer) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = me.connection(stream, peer).await {
                    tracing::warn!(brick = %me.cfg.brick_name, %peer, "connection closed: {e}");
                }
            });
        }
    }

    /// Why a client at `ip` may not connect, under the rules in force now.
    async fn refusal(&self, ip: std::net::IpAddr) -> Option<String> {
        let auth = self.cfg.auth.clone();
        // The file may be read, and host names in the rules are resolved: both block.
        tokio::task::spawn_blocking(move || auth.current().refusal(ip))
            .await
            .unwrap_or_else(|e| Some(format!("checking auth rules: {e}")))
    }

    async fn connection(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: std::net::SocketAddr,
    ) -> std::result::Result<(), FrameError> {
        let (r, w): (BoxRead, BoxWrite) = match &self.cfg.tls {
            Some(acceptor) => {
                let tls = match tokio::time::timeout(HANDSHAKE_WAIT, acceptor.accept(stream)).await
                {
                    Err(_) => {
                        return Err(FrameError::Malformed(
                            "no TLS handshake within 10s (a client without TLS?)".into(),
                        ));
                    }
                    Ok(Err(e)) => {
                        return Err(FrameError::Malformed(format!("TLS handshake failed: {e}")));
                    }
                    Ok(Ok(s)) => s,
                };
                let (r, w) = tokio::io::split(tls);
                (Box::new(r), Box::new(w))
            }
            None => {
                let (r, w) = stream.into_split();
                (Box::new(r), Box::new(w))
            }
        };
        let mut rd = reader(r);
        let tx = FrameSink::new(w);
        // Refused before the challenge, with the reason, so the client can say why (over TLS
        // when it is on: a client without the cluster's certificate learns nothing).
        if let Some(why) = self.refusal(peer.ip()).await {
            tracing::warn!(brick = %self.cfg.brick_name, %peer, "connection refused: {why}");
            let _ = tx.write(hello_frame(&Hello::Refused { reason: why })).await;
            // Give the client a moment to read it before the connection drops.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            return Ok(());
        }
        let mut auth = self.cfg.auth.subscribe();
        auth.mark_unchanged();
        // False once nobody can change the rules (no auth file is watched).
        let mut auth_live = true;
        let nonce = random_nonce();
        let _ = tx.write(hello_frame(&Hello::Challenge { nonce })).await;
        let f = match tokio::time::timeout(HANDSHAKE_WAIT, next_frame(&mut rd)).await {
            Err(_) => return Err(FrameError::Malformed("no handshake within 10s".into())),
            // A port probe (health check) that hangs up before speaking is not an error.
            Ok(Err(FrameError::Closed)) => return Ok(()),
            Ok(r) => r?,
        };
        if f.kind != Kind::Hello {
            return Err(FrameError::Malformed(
                "first frame is not a handshake".into(),
            ));
        }
        let refuse = |reason: String| {
            let _ = tx.send(hello_frame(&Hello::Refused {
                reason: reason.clone(),
            }));
            FrameError::Malformed(format!("refused: {reason}"))
        };
        match f.decode_header::<Hello>()? {
            Hello::Auth {
                version,
                volume_id,
                brick,
                nonce: cnonce,
                mac,
            } => {
                if version != PROTOCOL_VERSION {
                    return Err(refuse(format!(
                        "protocol version {version}, this brick speaks {PROTOCOL_VERSION}"
                    )));
                }
                if volume_id != self.cfg.volume_id {
                    return Err(refuse(format!(
                        "volume {volume_id} is not this brick's volume"
                    )));
                }
                if brick != self.cfg.brick_name {
                    return Err(refuse(format!(
                        "this is brick {:?}, not {brick:?}",
                        self.cfg.brick_name
                    )));
                }
                if !verify_mac(&self.cfg.secret, &nonce, &cnonce, &volume_id, &brick, &mac) {
                    return Err(refuse("authentication failed (wrong volume secret)".into()));
                }
            }
            _ => return Err(refuse("expected an authentication message".into())),
        }
        let _ = tx.write(hello_frame(&Hello::Accepted)).await;
        let conn = Arc::new(Conn {
            id: self.next_client.fetch_add(1, Ordering::Relaxed),
            fds: Mutex::new(HashMap::new()),
            next_fd: AtomicU64::new(1),
            tx: tx.clone(),
            gone: AtomicBool::new(false),
        });
        tracing::debug!(brick = %self.cfg.brick_name, client = conn.id, "client authenticated");
        self.hear_upcalls(&conn);
        let res = loop {
            let next = tokio::select! {
                f = next_frame(&mut rd) => f,
                changed = auth.changed(), if auth_live => {
                    auth_live = changed.is_ok();
                    // New auth rules apply to connected clients too, as GlusterFS's brick
                    // does on reconfigure: one no longer allowed is cut off (and told why
                    // when it reconnects).
                    if auth_live && let Some(why) = self.refusal(peer.ip()).await {
                        tracing::warn!(brick = %self.cfg.brick_name, %peer, "disconnecting client: {why}");
                        break Ok(());
                    }
                    continue;
                }
            };
            let f = match next {
                Ok(f) => f,
                Err(FrameError::Closed) => break Ok(()),
                Err(e) => break Err(e),
            };
            match f.kind {
                Kind::Ping => {
                    let _ = tx.send(encode(f.id, Kind::Pong, &(), Bytes::new()));
                }
                Kind::Pong => {}
                Kind::Request => {
                    let req: Request = match f.decode_header() {
                        Ok(r) => r,
                        Err(e) => break Err(e),
                    };
                    let (me, conn) = (self.clone(), conn.clone());
                    let mut task = Box::pin(async move {
                        let (reply, payload) = me.dispatch(&conn, req, f.payload).await;
                        let _ = conn.tx.write(reply_frame(f.id, &reply, payload)).await;
                        if conn.gone.load(Ordering::SeqCst) {
                            me.forget(&conn).await;
                        }
                    });
                    // First run here: what needs no wait (a stat, a lookup, an xattrop, the
                    // metadata work posix does on the worker) is answered at once, with no
                    // hand-off to another task. What must wait (a lock, the disk pool) goes on
                    // as a task of its own, so the requests behind it are read meanwhile; the
                    // runtime polls it again at once, which puts its waker in place of the
                    // no-op one used here.
                    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                    if task.as_mut().poll(&mut cx).is_pending() {
                        tokio::spawn(task);
                    }
                }
                k => {
                    break Err(FrameError::Malformed(format!(
                        "unexpected {k:?} frame from a client"
                    )));
                }
            }
        };
        conn.gone.store(true, Ordering::SeqCst);
        self.forget(&conn).await;
        res
    }

    /// Releases the fds and the locks a gone connection holds.
    async fn forget(&self, conn: &Conn) {
        let fds: Vec<_> = conn.fds.lock().drain().map(|(_, fd)| fd).collect();
        for fd in fds {
            self.top.release(&fd).await;
        }
        self.top.client_disconnect(conn.id).await;
    }

    /// Gives the graph (its features/upcall) the way to tell this client of changes other
    /// clients make: an upcall frame queued on the connection, never waited for.
    fn hear_upcalls(&self, conn: &Conn) {
        let tx = conn.tx.clone();
        let sink: UpcallSink = Arc::new(move |u| {
            let _ = tx.send(upcall_frame(&u));
        });
        self.top.client_connect(conn.id, &sink);
    }

    fn fd(&self, conn: &Conn, w: &WireFd) -> Result<FdRef> {
        match w.remote {
            None => Ok(if w.is_dir {
                Fd::new(w.gfid, libc::O_RDONLY, true)
            } else {
                Fd::anonymous(w.gfid)
            }),
            Some(n) => conn.fds.lock().get(&n).cloned().ok_or(Errno::EBADF),
        }
    }

    fn keep_fd(&self, conn: &Conn, fd: FdRef) -> u64 {
        let n = conn.next_fd.fetch_add(1, Ordering::Relaxed);
        conn.fds.lock().insert(n, fd);
        n
    }

    async fn dispatch(&self, conn: &Conn, req: Request, payload: Bytes) -> (Reply, Bytes) {
        let top = &self.top;
        let cid = conn.id;
        let with = |mut c: Ctx| {
            c.client_id = cid;
            c
        };
        let r: Result<(ReplyBody, Bytes)> = async {
            let body = match req {
                Request::Lookup { ctx, loc, want } => {
                    let (i, x) = top.lookup(&with(ctx), &loc, &want).await?;
                    ReplyBody::Lookup(i, x)
                }
                Request::Stat { ctx, loc } => ReplyBody::Iatt(top.stat(&with(ctx), &loc).await?),
                Request::Fstat { ctx, fd } => {
                    ReplyBody::Iatt(top.fstat(&with(ctx), &self.fd(conn, &fd)?).await?)
                }
                Request::Setattr { ctx, loc, attr } => {
                    ReplyBody::Iatt(top.setattr(&with(ctx), &loc, &attr).await?)
                }
                Request::Access { ctx, loc, mask } => {
                    top.access(&with(ctx), &loc, mask).await?;
                    ReplyBody::Unit
                }
                Request::Create {
                    ctx,
                    loc,
                    flags,
                    mut entry,
                } => {
                    entry.data = payload;
                    let (fd, ia, parent) = top.create(&with(ctx), &loc, flags, &entry).await?;
                    ReplyBody::Created(self.keep_fd(conn, fd), ia, parent)
                }
                Request::Open { ctx, loc, flags } => {
                    let fd = top.open(&with(ctx), &loc, flags).await?;
                    let g = fd.gfid;
                    ReplyBody::Fd(
                        self.keep_fd(conn, fd),
                        Some(Iatt {
                            gfid: g,
                            ..Default::default()
                        }),
                    )
                }
                Request::Read {
                    ctx,
                    fd,
                    offset,
                    size,
                } => {
                    let data = top
                        .read(&with(ctx), &self.fd(conn, &fd)?, offset, size)
                        .await?;
                    return Ok((ReplyBody::Data, data));
                }
                Request::Write { ctx, fd, offset } => ReplyBody::Iatt(
                    top.write(&with(ctx), &self.fd(conn, &fd)?, offset, payload)
                        .await?,
                ),
                Request::Truncate { ctx, loc, size } => {
                    ReplyBody::Iatt(top.truncate(&with(ctx), &loc, size).await?)
                }
                Request::Ftruncate { ctx, fd, size } => ReplyBody::Iatt(
                    top.ftruncate(&with(ctx), &self.fd(conn, &fd)?, size)
                        .await?,
                ),
                Request::Flush { ctx, fd } => {
                    top.flush(&with(ctx), &self.fd(conn, &fd)?).await?;
                    ReplyBody::Unit
                }
                Request::Fsync { ctx, fd, datasync } => {
                    top.fsync(&with(ctx), &self.fd(conn, &fd)?, datasync)
                        .await?;
                    ReplyBody::Unit
                }
                Request::Release { fd } => {
                    let f = conn.fds.lock().remove(&fd);
                    if let Some(f) = f {
                        top.release(&f).await;
                    }
                    ReplyBody::Unit
                }
                Request::Mkdir { ctx, loc, entry } => {
                    let (ia, parent) = top.mkdir(&with(ctx), &loc, &entry).await?;
                    ReplyBody::Made(ia, parent)
                }
                Request::Mknod { ctx, loc, entry } => {
                    let (ia, parent) = top.mknod(&with(ctx), &loc, &entry).await?;
                    ReplyBody::Made(ia, parent)
                }
                Request::Symlink {
                    ctx,
                    loc,
                    target,
                    entry,
                } => {
                    let (ia, parent) = top.symlink(&with(ctx), &loc, &target, &entry).await?;
                    ReplyBody::Made(ia, parent)
                }
                Request::Readlink { ctx, loc } => {
                    ReplyBody::Text(top.readlink(&with(ctx), &loc).await?)
                }
                Request::Link { ctx, old, new } => {
                    ReplyBody::Iatt(top.link(&with(ctx), &old, &new).await?)
                }
                Request::Unlink { ctx, loc } => {
                    ReplyBody::Parent(top.unlink(&with(ctx), &loc).await?)
                }
                Request::Rmdir { ctx, loc } => {
                    ReplyBody::Parent(top.rmdir(&with(ctx), &loc).await?)
                }
                Request::Rename { ctx, old, new } => {
                    let (ia, old_parent, new_parent) = top.rename(&with(ctx), &old, &new).await?;
                    ReplyBody::Renamed(ia, old_parent, new_parent)
                }
                Request::Opendir { ctx, loc } => {
                    let fd = top.opendir(&with(ctx), &loc).await?;
                    let g = fd.gfid;
                    ReplyBody::Fd(
                        self.keep_fd(conn, fd),
                        Some(Iatt {
                            gfid: g,
                            ..Default::default()
                        }),
                    )
                }
                Request::Readdir {
                    ctx,
                    fd,
                    offset,
                    size,
                } => ReplyBody::Dirents(
                    top.readdir(&with(ctx), &self.fd(conn, &fd)?, offset, size)
                        .await?,
                ),
                Request::Readdirp {
                    ctx,
                    fd,
                    offset,
                    size,
                    want,
                } => ReplyBody::Dirents(
                    top.readdirp(&with(ctx), &self.fd(conn, &fd)?, offset, size, &want)
                        .await?,
                ),
                Request::Statfs { ctx, loc } => {
                    ReplyBody::Statfs(top.statfs(&with(ctx), &loc).await?)
                }
                Request::Getxattr { ctx, loc, name } => {
                    ReplyBody::Xattrs(top.getxattr(&with(ctx), &loc, name.as_deref()).await?)
                }
                Request::Setxattr {
                    ctx,
                    loc,
                    xattrs,
                    flags,
                } => {
                    top.setxattr(&with(ctx), &loc, &xattrs, flags).await?;
                    ReplyBody::Unit
                }
                Request::Removexattr { ctx, loc, name } => {
                    top.removexattr(&with(ctx), &loc, &name).await?;
                    ReplyBody::Unit
                }
                Request::Xattrop {
                    ctx,
                    loc,
                    op,
                    xattrs,
                } => ReplyBody::Xattrs(top.xattrop(&with(ctx), &loc, op, &xattrs).await?),
                Request::Inodelk {
                    ctx,
                    domain,
                    loc,
                    cmd,
                    lock,
                } => ReplyBody::Flock(top.inodelk(&with(ctx), &domain, &loc, cmd, &lock).await?),
                Request::Entrylk {
                    ctx,
                    domain,
                    loc,
                    basename,
                    cmd,
                    typ,
                } => {
                    top.entrylk(&with(ctx), &domain, &loc, basename.as_deref(), cmd, typ)
                        .await?;
                    ReplyBody::Unit
                }
                Request::Lk { ctx, fd, cmd, lock } => {
                    ReplyBody::Flock(top.lk(&with(ctx), &self.fd(conn, &fd)?, cmd, &lock).await?)
                }
                Request::Fallocate {
                    ctx,
                    fd,
                    mode,
                    offset,
                    len,
                } => {
                    top.fallocate(&with(ctx), &self.fd(conn, &fd)?, mode, offset, len)
                        .await?;
                    ReplyBody::Unit
                }
                Request::Discard {
                    ctx,
                    fd,
                    offset,
                    len,
                } => {
                    top.discard(&with(ctx), &self.fd(conn, &fd)?, offset, len)
                        .await?;
                    ReplyBody::Unit
                }
                Request::Rchecksum {
                    ctx,
                    fd,
                    offset,
                    len,
                } => {
                    let (n, sum) = top
                        .rchecksum(&with(ctx), &self.fd(conn, &fd)?, offset, len)
                        .await?;
                    ReplyBody::Checksum(n, sum)
                }
                Request::Compound { ctx, steps } => {
                    ReplyBody::Steps(top.txn_steps(&with(ctx), &steps).await.err())
                }
            };
            Ok((body, Bytes::new()))
        }
        .await;
        match r {
            Ok((b, p)) => (Ok(b), p),
            Err(e) => (Err(e), Bytes::new()),
        }
    }
}
