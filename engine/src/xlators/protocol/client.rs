//! `protocol/client`: one brick, over one multiplexed connection.
//!
//! Requests are pipelined (each gets an id; replies match by id in any order). A ping every
//! second keeps the connection honest: a brick silent for `ping-timeout` is declared down,
//! every pending request fails at once with ENOTCONN and new ones fail without waiting, as
//! GlusterFS's client does. The connection is re-established in the background, and open fds
//! of an older connection are reopened by gfid on first use.

use crate::fop::*;
use crate::metrics::BrickMetrics;
use crate::options::{OptKind, OptionSpec, Options};
use crate::registry::XlatorType;
use crate::rpc::*;
use crate::xlator::{Xlator, XlatorBase};
use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new(
        "remote-host",
        OptKind::Str,
        Some("127.0.0.1"),
        "host of the brick",
    ),
    OptionSpec::new(
        "remote-port",
        OptKind::Int { min: 1, max: 65535 },
        None,
        "port of the brick's brickd",
    ),
    OptionSpec::new(
        "remote-subvolume",
        OptKind::Str,
        None,
        "brick name the brickd serves",
    ),
    OptionSpec::new(
        "volume-id",
        OptKind::Str,
        None,
        "volume id the brick must belong to",
    ),
    OptionSpec::new(
        "password",
        OptKind::Str,
        None,
        "the volume secret (HMAC key of the handshake)",
    ),
    OptionSpec {
        key: "ping-timeout",
        aliases: &["network.ping-timeout"],
        kind: OptKind::Seconds { min: 1, max: 1013 },
        default: Some("42"),
        doc: "seconds without an answer after which the brick is declared down",
    },
    OptionSpec::new(
        "transport-type",
        OptKind::Str,
        Some("tcp"),
        "accepted for GlusterFS volfiles; only tcp",
    ),
    OptionSpec::new(
        "transport.address-family",
        OptKind::Str,
        Some("inet"),
        "accepted for GlusterFS volfiles",
    ),
    OptionSpec {
        key: "transport.socket.ssl-enabled",
        aliases: &["client.ssl"],
        kind: OptKind::Bool,
        default: Some("off"),
        doc: "TLS to the brick: its certificate must chain to ssl-ca-list (GlusterFS's name)",
    },
    OptionSpec::new(
        "transport.socket.ssl-ca-list",
        OptKind::Str,
        None,
        "PEM file of the CA that signs brick certificates (needed with ssl-enabled)",
    ),
    OptionSpec::new(
        "transport.socket.ssl-own-cert",
        OptKind::Str,
        None,
        "PEM certificate this client presents to the brick (mutual TLS)",
    ),
    OptionSpec::new(
        "transport.socket.ssl-private-key",
        OptKind::Str,
        None,
        "PEM private key of ssl-own-cert",
    ),
    OptionSpec::new(
        "username",
        OptKind::Str,
        None,
        "accepted for GlusterFS volfiles; unused",
    ),
];

pub fn xlator_type() -> XlatorType {
    XlatorType {
        type_name: "protocol/client",
        options: OPTIONS,
        min_children: 0,
        max_children: 0,
        build: Arc::new(|base, o: &Options| {
            let settings = Client::settings(o)?;
            // Brick metrics are labelled by volume and by this client's name (VOL-client-N).
            let volume = base
                .name
                .rsplit_once("-client-")
                .map_or(base.name.as_str(), |(v, _)| v)
                .to_string();
            let metrics = BrickMetrics::new(&volume, &base.name);
            metrics.set_up(false);
            Ok(Arc::new_cyclic(|me| Client {
                metrics,
                base,
                settings,
                conn: RwLock::new(None),
                generation: AtomicU64::new(0),
                stopped: AtomicBool::new(false),
                last_error: Mutex::new(Some("not connected yet".into())),
                me: me.clone(),
            }))
        }),
    }
}

struct Conn {
    tx: mpsc::UnboundedSender<OutFrame>,
    pending: Mutex<HashMap<u64, oneshot::Sender<(Reply, Bytes)>>>,
    next_id: AtomicU64,
    closed: AtomicBool,
    generation: u64,
}

impl Conn {
    fn fail_all(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let pending: Vec<_> = self.pending.lock().drain().collect();
        for (_, tx) in pending {
            let _ = tx.send((Err(Errno::ENOTCONN), Bytes::new()));
        }
    }
}

struct RemoteFd {
    remote: u64,
    generation: u64,
}

#[derive(Clone)]
struct Settings {
    addr: String,
    brick: String,
    volume_id: Gfid,
    secret: Vec<u8>,
    ping_timeout: Duration,
    tls: Option<ClientTls>,
}

/// TLS to the brick (`transport.socket.ssl-enabled`).
#[derive(Clone)]
struct ClientTls {
    connector: tokio_rustls::TlsConnector,
    /// The brick's host as TLS names it (SNI); see `crate::tls::client_config` for why the
    /// certificate need not match it.
    name: rustls::pki_types::ServerName<'static>,
}

type BoxRead = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
type BoxWrite = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

pub struct Client {
    metrics: BrickMetrics,
    base: XlatorBase,
    settings: Settings,
    conn: RwLock<Option<Arc<Conn>>>,
    generation: AtomicU64,
    stopped: AtomicBool,
    /// Why the brick last went down (or could not be reached), for `volume status` and the
    /// brick events; None while connected.
    last_error: Mutex<Option<String>>,
    me: Weak<Client>,
}

impl Client {
    fn settings(o: &Options) -> std::result::Result<Settings, String> {
        let host = o.str_or("remote-host", "127.0.0.1");
        let port = o
            .get("remote-port")
            .ok_or("option remote-port is required")?;
        let brick = o
            .get("remote-subvolume")
            .ok_or("option remote-subvolume is required")?
            .to_string();
        let vid = o.get("volume-id").ok_or("option volume-id is required")?;
        let volume_id =
            Gfid::parse(vid).ok_or_else(|| format!("volume-id {vid:?} is not a uuid"))?;
        let secret = o
            .get("password")
            .ok_or("option password is required (the volume secret)")?;
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let tls = if o.bool_or("transport.socket.ssl-enabled", false) {
            let ca = o.get("transport.socket.ssl-ca-list").ok_or(
                "option transport.socket.ssl-ca-list is required with transport.socket.ssl-enabled",
            )?;
            let identity = match (
                o.get("transport.socket.ssl-own-cert"),
                o.get("transport.socket.ssl-private-key"),
            ) {
                (Some(c), Some(k)) => Some((std::path::Path::new(c), std::path::Path::new(k))),
                (None, None) => None,
                _ => {
                    return Err("options transport.socket.ssl-own-cert and transport.socket.ssl-private-key go together".into());
                }
            };
            let cfg = crate::tls::client_config(std::path::Path::new(ca), identity, false)
                .map_err(|e| e.to_string())?;
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| format!("remote-host {host:?} is no TLS server name: {e}"))?;
            Some(ClientTls {
                connector: tokio_rustls::TlsConnector::from(Arc::new(cfg)),
                name,
            })
        } else {
            None
        };
        Ok(Settings {
            addr,
            brick,
            volume_id,
            secret: secret.as_bytes().to_vec(),
            ping_timeout: o.secs_or("ping-timeout", Duration::from_secs(42)),
            tls,
        })
    }

    /// True while the brick answers: from the handshake until a ping-timeout or a lost
    /// connection. This is the brick's state for `volume status`, the console and /metrics.
    pub fn is_connected(&self) -> bool {
        self.conn.read().is_some()
    }

    /// Why the brick is not connected (None while it is).
    pub fn last_error(&self) -> Option<String> {
        if self.is_connected() {
            return None;
        }
        self.last_error.lock().clone()
    }

    async fn call(&self, req: Request, payload: Bytes) -> Result<(ReplyBody, Bytes)> {
        let start = Instant::now();
        let r = self.call_inner(req, payload).await;
        // An errno the brick answered is a result; a lost or absent connection is an error.
        self.metrics
            .record(!matches!(r, Err(Errno::ENOTCONN)), start.elapsed());
        r
    }

    async fn call_inner(&self, req: Request, payload: Bytes) -> Result<(ReplyBody, Bytes)> {
        let conn = self.conn.read().clone().ok_or(Errno::ENOTCONN)?;
        let id = conn.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        conn.pending.lock().insert(id, tx);
        // fail_all may have run between the read of `conn` and the insert.
        if conn.closed.load(Ordering::SeqCst) {
            conn.pending.lock().remove(&id);
            return Err(Errno::ENOTCONN);
        }
        if conn.tx.send(request_frame(id, &req, payload)).is_err() {
            conn.pending.lock().remove(&id);
            return Err(Errno::ENOTCONN);
        }
        let (reply, payload) = rx.await.map_err(|_| Errno::ENOTCONN)?;
        Ok((reply?, payload))
    }

    async fn call_body(&self, req: Request) -> Result<ReplyBody> {
        Ok(self.call(req, Bytes::new()).await?.0)
    }

    /// The brick's fd for `fd`, reopening it when it was opened on an older connection.
    async fn wire_fd(&self, ctx: &Ctx, fd: &FdRef) -> Result<WireFd> {
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

    fn new_fd(&self, gfid: Gfid, flags: i32, is_dir: bool, remote: u64) -> FdRef {
        let fd = Fd::new(gfid, flags, is_dir);
        let generation = self.generation.load(Ordering::SeqCst);
        fd.ctx_set(self.base.id, Arc::new(RemoteFd { remote, generation }));
        fd
    }

    async fn connect_once(&self) -> std::result::Result<(), String> {
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
        let tx = spawn_writer(w);
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
            tx.send(hello_frame(&auth))
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

    async fn run(self: Arc<Self>) {
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

fn unexpected<T>() -> Result<T> {
    Err(Errno::EPROTO)
}

#[async_trait]
impl Xlator for Client {
    fn base(&self) -> &XlatorBase {
        &self.base
    }

    fn as_any(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        Some(self)
    }

    async fn init(&self) -> Result<()> {
        if let Some(me) = self.me.upgrade() {
            tokio::spawn(me.run());
        }
        Ok(())
    }

    async fn fini(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.metrics.set_up(false);
        if let Some(c) = self.conn.write().take() {
            c.fail_all();
        }
    }

    async fn lookup(&self, ctx: &Ctx, loc: &Loc, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        match self
            .call_body(Request::Lookup {
                ctx: ctx.clone(),
                loc: loc.clone(),
                want: want.clone(),
            })
            .await?
        {
            ReplyBody::Lookup(i, x) => Ok((i, x)),
            _ => unexpected(),
        }
    }

    async fn stat(&self, ctx: &Ctx, loc: &Loc) -> Result<Iatt> {
        iatt(
            self.call_body(Request::Stat {
                ctx: ctx.clone(),
                loc: loc.clone(),
            })
            .await?,
        )
    }

    async fn fstat(&self, ctx: &Ctx, fd: &FdRef) -> Result<Iatt> {
        let w = self.wire_fd(ctx, fd).await?;
        iatt(
            self.call_body(Request::Fstat {
                ctx: ctx.clone(),
                fd: w,
            })
            .await?,
        )
    }

    async fn setattr(&self, ctx: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
        iatt(
            self.call_body(Request::Setattr {
                ctx: ctx.clone(),
                loc: loc.clone(),
                attr: attr.clone(),
            })
            .await?,
        )
    }

    async fn access(&self, ctx: &Ctx, loc: &Loc, mask: u32) -> Result<()> {
        self.call_body(Request::Access {
            ctx: ctx.clone(),
            loc: loc.clone(),
            mask,
        })
        .await
        .map(|_| ())
    }

    async fn create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt)> {
        let req = Request::Create {
            ctx: ctx.clone(),
            loc: loc.clone(),
            flags,
            entry: entry.clone(),
        };
        match self.call_body(req).await? {
            ReplyBody::Fd(remote, Some(ia)) => Ok((self.new_fd(ia.gfid, flags, false, remote), ia)),
            _ => unexpected(),
        }
    }

    async fn open(&self, ctx: &Ctx, loc: &Loc, flags: i32) -> Result<FdRef> {
        match self
            .call_body(Request::Open {
                ctx: ctx.clone(),
                loc: loc.clone(),
                flags,
            })
            .await?
        {
            ReplyBody::Fd(remote, ia) => {
                let g = ia.map(|i| i.gfid).or(loc.gfid).ok_or(Errno::EPROTO)?;
                Ok(self.new_fd(g, flags, false, remote))
            }
            _ => unexpected(),
        }
    }

    async fn read(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Bytes> {
        let w = self.wire_fd(ctx, fd).await?;
        match self
            .call(
                Request::Read {
                    ctx: ctx.clone(),
                    fd: w,
                    offset,
                    size,
                },
                Bytes::new(),
            )
            .await?
        {
            (ReplyBody::Data, data) => Ok(data),
            _ => unexpected(),
        }
    }

    async fn write(&self, ctx: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
        let w = self.wire_fd(ctx, fd).await?;
        iatt(
            self.call(
                Request::Write {
                    ctx: ctx.clone(),
                    fd: w,
                    offset,
                },
                data,
            )
            .await?
            .0,
        )
    }

    async fn truncate(&self, ctx: &Ctx, loc: &Loc, size: u64) -> Result<Iatt> {
        iatt(
            self.call_body(Request::Truncate {
                ctx: ctx.clone(),
                loc: loc.clone(),
                size,
            })
            .await?,
        )
    }

    async fn ftruncate(&self, ctx: &Ctx, fd: &FdRef, size: u64) -> Result<Iatt> {
        let w = self.wire_fd(ctx, fd).await?;
        iatt(
            self.call_body(Request::Ftruncate {
                ctx: ctx.clone(),
                fd: w,
                size,
            })
            .await?,
        )
    }

    async fn flush(&self, _ctx: &Ctx, _fd: &FdRef) -> Result<()> {
        // Nothing on the brick acts on flush (storage/posix writes through, and POSIX locks are
        // dropped by an explicit unlock from the frontend), so close(2) costs no round trip.
        // A brick that is away still fails it, so close reports the loss.
        if self.is_connected() {
            Ok(())
        } else {
            Err(Errno::ENOTCONN)
        }
    }

    async fn fsync(&self, ctx: &Ctx, fd: &FdRef, datasync: bool) -> Result<()> {
        let w = self.wire_fd(ctx, fd).await?;
        self.call_body(Request::Fsync {
            ctx: ctx.clone(),
            fd: w,
            datasync,
        })
        .await
        .map(|_| ())
    }

    async fn release(&self, fd: &FdRef) {
        if let Some(r) = fd.ctx_get::<RemoteFd>(self.base.id)
            && r.generation == self.generation.load(Ordering::SeqCst)
        {
            let _ = self.call_body(Request::Release { fd: r.remote }).await;
        }
        fd.ctx_del(self.base.id);
    }

    async fn mkdir(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<Iatt> {
        iatt(
            self.call_body(Request::Mkdir {
                ctx: ctx.clone(),
                loc: loc.clone(),
                entry: entry.clone(),
            })
            .await?,
        )
    }

    async fn mknod(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<Iatt> {
        iatt(
            self.call_body(Request::Mknod {
                ctx: ctx.clone(),
                loc: loc.clone(),
                entry: entry.clone(),
            })
            .await?,
        )
    }

    async fn symlink(&self, ctx: &Ctx, loc: &Loc, target: &str, entry: &NewEntry) -> Result<Iatt> {
        let req = Request::Symlink {
            ctx: ctx.clone(),
            loc: loc.clone(),
            target: target.to_string(),
            entry: entry.clone(),
        };
        iatt(self.call_body(req).await?)
    }

    async fn readlink(&self, ctx: &Ctx, loc: &Loc) -> Result<String> {
        match self
            .call_body(Request::Readlink {
                ctx: ctx.clone(),
                loc: loc.clone(),
            })
            .await?
        {
            ReplyBody::Text(t) => Ok(t),
            _ => unexpected(),
        }
    }

    async fn link(&self, ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        iatt(
            self.call_body(Request::Link {
                ctx: ctx.clone(),
                old: oldloc.clone(),
                new: newloc.clone(),
            })
            .await?,
        )
    }

    async fn unlink(&self, ctx: &Ctx, loc: &Loc) -> Result<()> {
        self.call_body(Request::Unlink {
            ctx: ctx.clone(),
            loc: loc.clone(),
        })
        .await
        .map(|_| ())
    }

    async fn rmdir(&self, ctx: &Ctx, loc: &Loc) -> Result<()> {
        self.call_body(Request::Rmdir {
            ctx: ctx.clone(),
            loc: loc.clone(),
        })
        .await
        .map(|_| ())
    }

    async fn rename(&self, ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        iatt(
            self.call_body(Request::Rename {
                ctx: ctx.clone(),
                old: oldloc.clone(),
                new: newloc.clone(),
            })
            .await?,
        )
    }

    async fn opendir(&self, ctx: &Ctx, loc: &Loc) -> Result<FdRef> {
        match self
            .call_body(Request::Opendir {
                ctx: ctx.clone(),
                loc: loc.clone(),
            })
            .await?
        {
            ReplyBody::Fd(remote, ia) => {
                let g = ia.map(|i| i.gfid).or(loc.gfid).ok_or(Errno::EPROTO)?;
                Ok(self.new_fd(g, libc::O_RDONLY, true, remote))
            }
            _ => unexpected(),
        }
    }

    async fn readdir(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Vec<Dirent>> {
        let w = self.wire_fd(ctx, fd).await?;
        match self
            .call_body(Request::Readdir {
                ctx: ctx.clone(),
                fd: w,
                offset,
                size,
            })
            .await?
        {
            ReplyBody::Dirents(d) => Ok(d),
            _ => unexpected(),
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
        let w = self.wire_fd(ctx, fd).await?;
        let req = Request::Readdirp {
            ctx: ctx.clone(),
            fd: w,
            offset,
            size,
            want: want.clone(),
        };
        match self.call_body(req).await? {
            ReplyBody::Dirents(d) => Ok(d),
            _ => unexpected(),
        }
    }

    async fn statfs(&self, ctx: &Ctx, loc: &Loc) -> Result<Statvfs> {
        match self
            .call_body(Request::Statfs {
                ctx: ctx.clone(),
                loc: loc.clone(),
            })
            .await?
        {
            ReplyBody::Statfs(s) => Ok(s),
            _ => unexpected(),
        }
    }

    async fn getxattr(&self, ctx: &Ctx, loc: &Loc, name: Option<&str>) -> Result<Xattrs> {
        let req = Request::Getxattr {
            ctx: ctx.clone(),
            loc: loc.clone(),
            name: name.map(String::from),
        };
        xattrs(self.call_body(req).await?)
    }

    async fn setxattr(&self, ctx: &Ctx, loc: &Loc, xs: &Xattrs, flags: i32) -> Result<()> {
        let req = Request::Setxattr {
            ctx: ctx.clone(),
            loc: loc.clone(),
            xattrs: xs.clone(),
            flags,
        };
        self.call_body(req).await.map(|_| ())
    }

    async fn removexattr(&self, ctx: &Ctx, loc: &Loc, name: &str) -> Result<()> {
        let req = Request::Removexattr {
            ctx: ctx.clone(),
            loc: loc.clone(),
            name: name.to_string(),
        };
        self.call_body(req).await.map(|_| ())
    }

    async fn xattrop(&self, ctx: &Ctx, loc: &Loc, op: XattropOp, xs: &Xattrs) -> Result<Xattrs> {
        xattrs(
            self.call_body(Request::Xattrop {
                ctx: ctx.clone(),
                loc: loc.clone(),
                op,
                xattrs: xs.clone(),
            })
            .await?,
        )
    }

    async fn inodelk(
        &self,
        ctx: &Ctx,
        domain: &str,
        loc: &Loc,
        cmd: LockCmd,
        lock: &Flock,
    ) -> Result<Flock> {
        let req = Request::Inodelk {
            ctx: ctx.clone(),
            domain: domain.to_string(),
            loc: loc.clone(),
            cmd,
            lock: *lock,
        };
        flock(self.call_body(req).await?)
    }

    async fn entrylk(
        &self,
        ctx: &Ctx,
        domain: &str,
        loc: &Loc,
        basename: Option<&str>,
        cmd: EntrylkCmd,
        typ: EntrylkType,
    ) -> Result<()> {
        let req = Request::Entrylk {
            ctx: ctx.clone(),
            domain: domain.to_string(),
            loc: loc.clone(),
            basename: basename.map(String::from),
            cmd,
            typ,
        };
        self.call_body(req).await.map(|_| ())
    }

    async fn lk(&self, ctx: &Ctx, fd: &FdRef, cmd: LockCmd, lock: &Flock) -> Result<Flock> {
        let w = self.wire_fd(ctx, fd).await?;
        flock(
            self.call_body(Request::Lk {
                ctx: ctx.clone(),
                fd: w,
                cmd,
                lock: *lock,
            })
            .await?,
        )
    }

    async fn fallocate(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        let w = self.wire_fd(ctx, fd).await?;
        self.call_body(Request::Fallocate {
            ctx: ctx.clone(),
            fd: w,
            mode,
            offset,
            len,
        })
        .await
        .map(|_| ())
    }

    async fn rchecksum(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        len: u32,
    ) -> Result<(u32, [u8; 32])> {
        let w = self.wire_fd(ctx, fd).await?;
        match self
            .call_body(Request::Rchecksum {
                ctx: ctx.clone(),
                fd: w,
                offset,
                len,
            })
            .await?
        {
            ReplyBody::Checksum(n, sum) => Ok((n, sum)),
            _ => unexpected(),
        }
    }

    async fn discard(&self, ctx: &Ctx, fd: &FdRef, offset: u64, len: u64) -> Result<()> {
        let w = self.wire_fd(ctx, fd).await?;
        self.call_body(Request::Discard {
            ctx: ctx.clone(),
            fd: w,
            offset,
            len,
        })
        .await
        .map(|_| ())
    }
}

fn iatt(b: ReplyBody) -> Result<Iatt> {
    match b {
        ReplyBody::Iatt(i) => Ok(i),
        _ => unexpected(),
    }
}

fn xattrs(b: ReplyBody) -> Result<Xattrs> {
    match b {
        ReplyBody::Xattrs(x) => Ok(x),
        _ => unexpected(),
    }
}

fn flock(b: ReplyBody) -> Result<Flock> {
    match b {
        ReplyBody::Flock(f) => Ok(f),
        _ => unexpected(),
    }
}
