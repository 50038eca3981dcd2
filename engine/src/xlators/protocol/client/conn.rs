//! The connection to the brick (GlusterFS's client-handshake.c): connect and handshake, the
//! reader and the pings, reconnecting in the background; requests sent and matched to their
//! replies; fds of an older connection reopened on first use.

use super::common::{Client, Conn, RemoteFd};
use crate::fop::*;
use crate::rpc::*;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

type BoxRead = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

type BoxWrite = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

impl Client {
    pub(super) async fn call(&self, req: Request, payload: Bytes) -> Result<(ReplyBody, Bytes)> {
        let start = Instant::now();
        let name = req.name();
        let r = self.call_inner(req, payload).await;
        tracing::trace!(xlator = %self.base.name, fop = name, us = start.elapsed().as_micros() as u64, "brick round trip");
        // An errno the brick answered is a result; a lost or absent connection is an error.
        self.metrics
            .record(!matches!(r, Err(Errno::ENOTCONN)), start.elapsed());
        r
    }

    pub(super) async fn call_inner(
        &self,
        req: Request,
        payload: Bytes,
    ) -> Result<(ReplyBody, Bytes)> {
        let conn = self.conn.read().clone().ok_or(Errno::ENOTCONN)?;
        let id = conn.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        conn.pending.lock().insert(id, tx);
        // fail_all may have run between the read of `conn` and the insert.
        if conn.closed.load(Ordering::SeqCst) {
            conn.pending.lock().remove(&id);
            return Err(Errno::ENOTCONN);
        }
        if conn
            .tx
            .write(request_frame(id, &req, payload))
            .await
            .is_err()
        {
            conn.pending.lock().remove(&id);
            return Err(Errno::ENOTCONN);
        }
        let (reply, payload) = rx.await.map_err(|_| Errno::ENOTCONN)?;
        Ok((reply?, payload))
    }

    pub(super) async fn call_body(&self, req: Request) -> Result<ReplyBody> {
        Ok(self.call(req, Bytes::new()).await?.0)
    }

    /// The brick's fd for `fd`, reopening it when it was opened on an older connection.
    pub(super) async fn wire_fd(&self, ctx: &Ctx, fd: &FdRef) -> Result<WireFd> {
        if fd.anonymous {
            return Ok(WireFd {
                gfid: fd.gfid,
                remote: None,
                is_dir: fd.is_dir,
            });
        }
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some(r) = fd.ctx_get::<RemoteFd>(self.base.id)
            && r.generation == generation
        {
            return Ok(WireFd {
                gfid: fd.gfid,
                remote: Some(r.remote),
                is_dir: fd.is_dir,
            });
        }
        let loc = Loc::gfid(fd.gfid);
        let req = if fd.is_dir {
            Request::Opendir {
                ctx: ctx.clone(),
                loc,
            }
        } else {
            let flags = fd.flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC);
            Request::Open {
                ctx: ctx.clone(),
                loc,
                flags,
            }
        };
        match self.call_body(req).await? {
            ReplyBody::Fd(remote, _) => {
                fd.ctx_set(self.base.id, Arc::new(RemoteFd { remote, generation }));
                Ok(WireFd {
                    gfid: fd.gfid,
                    remote: Some(remote),
                    is_dir: fd.is_dir,
                })
            }
            _ => Err(Errno::EPROTO),
        }
    }

    pub(super) fn new_fd(&self, gfid: Gfid, flags: i32, is_dir: bool, remote: u64) -> FdRef {
        let fd = Fd::new(gfid, flags, is_dir);
        let generation = self.generation.load(Ordering::SeqCst);
        fd.ctx_set(self.base.id, Arc::new(RemoteFd { remote, generation }));
        fd
    }

    pub(super) async fn connect_once(&self) -> std::result::Result<(), String> {
        let s = &self.settings;
        let stream = tokio::time::timeout(s.ping_timeout, TcpStream::connect(&s.addr))
            .await
            .map_err(|_| format!("connect to {} timed out", s.addr))?
            .map_err(|e| format!("connect to {}: {e}", s.addr))?;
        let _ = stream.set_nodelay(true);
        let (r, w): (BoxRead, BoxWrite) = match &s.tls {
            Some(t) => {
                let tls = tokio::time::timeout(
                    s.ping_timeout,
                    t.connector.connect(t.name.clone(), stream),
                )
                .await
                .map_err(|_| format!("TLS handshake with {} timed out", s.addr))?
                .map_err(|e| format!("TLS handshake with {}: {e}", s.addr))?;
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
        let hs = async {
            let f = next_frame(&mut rd).await.map_err(|e| match (&s.tls, e) {
                // A brick that speaks TLS waits for our hello and gives up on plain bytes.
                (None, FrameError::Closed) => format!(
                    "{} closed the connection before the handshake (a brick with TLS on? see transport.socket.ssl-enabled)",
                    s.addr
                ),
                (_, e) => e.to_string(),
            })?;
            let server_nonce = match f.decode_header::<Hello>().map_err(|e| e.to_string())? {
                Hello::Challenge { nonce } => nonce,
                // Refused before any challenge: this client's address is not allowed.
                Hello::Refused { reason } => {
                    return Err(format!("brick refused the connection: {reason}"));
                }
                _ => return Err("brick did not send a challenge".to_string()),
            };
            let nonce = random_nonce();
            let mac = handshake_mac(&s.secret, &server_nonce, &nonce, &s.volume_id, &s.brick);
            let auth = Hello::Auth {
                version: PROTOCOL_VERSION,
                volume_id: s.volume_id,
                brick: s.brick.clone(),
                nonce,
                mac,
            };
            tx.write(hello_frame(&auth))
                .await
                .map_err(|_| "connection closed".to_string())?;
            let f = next_frame(&mut rd).await.map_err(|e| e.to_string())?;
            match f.decode_header::<Hello>().map_err(|e| e.to_string())? {
                Hello::Accepted => Ok(()),
                Hello::Refused { reason } => Err(format!("brick refused the connection: {reason}")),
                _ => Err("unexpected handshake message".to_string()),
            }
        };
        tokio::time::timeout(s.ping_timeout, hs)
            .await
            .map_err(|_| "handshake timed out".to_string())??;

        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let conn = Arc::new(Conn {
            tx: tx.clone(),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            generation,
        });
        *self.conn.write() = Some(conn.clone());
        *self.last_error.lock() = None;
        self.metrics.set_up(true);
        tracing::info!(xlator = %self.base.name, brick = %s.brick, addr = %s.addr, "connected to brick");
        self.base.notify_parents(Event::ChildUp).await;
        self.forget_cached_on_reconnect().await;

        let mut last_rx = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let why = loop {
            tokio::select! {
                f = next_frame(&mut rd) => {
                    let f = match f {
                        Ok(f) => f,
                        Err(e) => break e.to_string(),
                    };
                    last_rx = Instant::now();
                    match f.kind {
                        Kind::Reply => {
                            let reply: Reply = match f.decode_header() {
                                Ok(r) => r,
                                Err(e) => break e.to_string(),
                            };
                            if let Some(tx) = conn.pending.lock().remove(&f.id) {
                                let _ = tx.send((reply, f.payload));
                            }
                        }
                        Kind::Pong => {}
                        Kind::Ping => { let _ = tx.send(encode(f.id, Kind::Pong, &(), Bytes::new())); }
                        Kind::Upcall => self.upcall_received(&f).await,
                        k => break format!("unexpected {k:?} frame from the brick"),
                    }
                }
                _ = tick.tick() => {
                    if last_rx.elapsed() > s.ping_timeout {
                        break format!("no answer for {:?} (ping-timeout)", s.ping_timeout);
                    }
                    if self.stopped.load(Ordering::SeqCst) {
                        break "client stopped".to_string();
                    }
                    let _ = tx.send(encode(0, Kind::Ping, &(), Bytes::new()));
                }
            }
        };
        {
            let mut cur = self.conn.write();
            if cur
                .as_ref()
                .is_some_and(|c| c.generation == conn.generation)
            {
                *self.last_error.lock() = Some(why.clone());
                *cur = None;
            }
        }
        self.metrics.set_up(false);
        conn.fail_all();
        Err(why)
    }

    pub(super) async fn run(self: Arc<Self>) {
        // Warn once per outage, not once per retry.
        let mut quiet = false;
        while !self.stopped.load(Ordering::SeqCst) {
            let before = self.generation.load(Ordering::SeqCst);
            if let Err(why) = self.connect_once().await {
                let was_connected = self.generation.load(Ordering::SeqCst) != before;
                if self.stopped.load(Ordering::SeqCst) {
                    // The graph is being torn down (volume stop, gatewayd shutdown): the
                    // bricks going away is expected and nobody above needs telling.
                    tracing::debug!(xlator = %self.base.name, "brick connection ended at stop: {why}");
                    return;
                }
                *self.last_error.lock() = Some(why.clone());
                if was_connected || !quiet {
                    tracing::warn!(xlator = %self.base.name, brick = %self.settings.brick, "brick down: {why}");
                } else {
                    tracing::debug!(xlator = %self.base.name, "still down: {why}");
                }
                quiet = !was_connected;
                if was_connected {
                    quiet = true;
                }
            }
            self.base.notify_parents(Event::ChildDown).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

impl Client {
    /// A brick's cache invalidation goes up the graph as it came, before the replies read
    /// after it are delivered: a reply that raced the change then finds the cache already
    /// told (md-cache refuses to fill from a fop that overlapped an invalidation).
    async fn upcall_received(&self, f: &Frame) {
        match f.decode_header::<Upcall>() {
            Ok(u) => self.base.notify_parents(Event::Upcall(u)).await,
            Err(e) => tracing::debug!(xlator = %self.base.name, "ignoring an upcall: {e}"),
        }
    }

    /// A new connection is a brick that no longer knows what this client caches (it may have
    /// restarted, or missed changes while we were away): caches above drop everything.
    async fn forget_cached_on_reconnect(&self) {
        self.base
            .notify_parents(Event::Upcall(Upcall::forget_all()))
            .await;
    }
}
