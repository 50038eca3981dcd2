//! ONC RPC over TCP (RFC 5531): record marking, call headers, AUTH_SYS credentials, replies.
//!
//! Written here because the crates that serve NFS own this layer and hide the caller's
//! credentials from the file system; we need them (and a cap on message size) first.

use crate::xdr::{Dec, Garbage, Put, Reader};
use bytes::{Buf, Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Calls of one connection running at once; reading stops while this many are in flight, so
/// a client that pipelines without bound holds at most this many messages in memory.
pub const MAX_IN_FLIGHT: usize = 128;

/// Largest message accepted: a 1 MiB WRITE (wtmax) with its arguments and credentials. A
/// larger record mark closes the connection before anything is allocated for it.
pub const MAX_MESSAGE: usize = (1 << 20) + 64 * 1024;

const CALL: u32 = 0;
const REPLY: u32 = 1;
const MSG_ACCEPTED: u32 = 0;
const MSG_DENIED: u32 = 1;
const RPC_MISMATCH: u32 = 0;
const AUTH_ERROR: u32 = 1;

pub const AUTH_NONE: u32 = 0;
pub const AUTH_SYS: u32 = 1;

/// Why a call's credentials were refused (RFC 5531 auth_stat).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStat {
    BadCred = 1,
    RejectedCred = 2,
    TooWeak = 5,
}

/// The caller, as AUTH_SYS describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cred {
    pub flavor: u32,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub machine: String,
}

impl Cred {
    fn none() -> Cred {
        Cred {
            flavor: AUTH_NONE,
            uid: 65534,
            gid: 65534,
            groups: Vec::new(),
            machine: String::new(),
        }
    }
}

/// One decoded call.
#[derive(Debug)]
pub struct Call {
    pub xid: u32,
    pub prog: u32,
    pub vers: u32,
    pub proc_: u32,
    pub cred: Cred,
    pub peer: SocketAddr,
}

/// How a call was answered.
pub enum Reply {
    /// SUCCESS with the procedure's results, and a payload (READ data) sent after them
    /// without a copy.
    Success(BytesMut, Option<Bytes>),
    ProgUnavail,
    ProgMismatch(u32, u32),
    ProcUnavail,
    GarbageArgs,
    SystemErr,
    Denied(AuthStat),
}

impl Reply {
    pub fn ok(body: BytesMut) -> Reply {
        Reply::Success(body, None)
    }
}

/// What serves the programs behind one port.
pub trait Dispatch: Send + Sync + 'static {
    fn call(
        self: Arc<Self>,
        call: Call,
        args: Reader,
    ) -> impl std::future::Future<Output = Reply> + Send;
}

/// Header of a call, up to (not including) its arguments.
fn decode_call(r: &mut Reader, peer: SocketAddr) -> Result<Call, (u32, HeaderError)> {
    let xid = r.u32().map_err(|_| (0, HeaderError::Garbage))?;
    let bad = |_| (xid, HeaderError::Garbage);
    if r.u32().map_err(bad)? != CALL {
        return Err((xid, HeaderError::NotACall));
    }
    if r.u32().map_err(bad)? != 2 {
        return Err((xid, HeaderError::RpcVersion));
    }
    let prog = r.u32().map_err(bad)?;
    let vers = r.u32().map_err(bad)?;
    let proc_ = r.u32().map_err(bad)?;
    let flavor = r.u32().map_err(bad)?;
    let body = r.opaque(400).map_err(bad)?;
    // The verifier of AUTH_NONE and AUTH_SYS calls carries nothing we check.
    r.u32().map_err(bad)?;
    r.opaque(400).map_err(bad)?;
    let cred = match flavor {
        AUTH_NONE => Cred::none(),
        AUTH_SYS => {
            auth_sys(Reader::new(body)).map_err(|_| (xid, HeaderError::Auth(AuthStat::BadCred)))?
        }
        _ => return Err((xid, HeaderError::Auth(AuthStat::RejectedCred))),
    };
    Ok(Call {
        xid,
        prog,
        vers,
        proc_,
        cred,
        peer,
    })
}

fn auth_sys(mut r: Reader) -> Dec<Cred> {
    let _stamp = r.u32()?;
    let machine = r.string(255)?;
    let uid = r.u32()?;
    let gid = r.u32()?;
    let n = r.u32()? as usize;
    if n > 16 {
        return Err(Garbage);
    }
    let mut groups = Vec::with_capacity(n);
    for _ in 0..n {
        groups.push(r.u32()?);
    }
    Ok(Cred {
        flavor: AUTH_SYS,
        uid,
        gid,
        groups,
        machine: String::from_utf8_lossy(&machine).into_owned(),
    })
}

enum HeaderError {
    Garbage,
    NotACall,
    RpcVersion,
    Auth(AuthStat),
}

/// The reply message for `xid`, without its record mark.
fn encode_reply(xid: u32, reply: &Reply) -> BytesMut {
    let mut b = BytesMut::with_capacity(128);
    b.u32(xid);
    b.u32(REPLY);
    match reply {
        Reply::Denied(stat) => {
            b.u32(MSG_DENIED);
            b.u32(AUTH_ERROR);
            b.u32(*stat as u32);
            return b;
        }
        _ => b.u32(MSG_ACCEPTED),
    }
    // Verifier: AUTH_NONE.
    b.u32(AUTH_NONE);
    b.u32(0);
    match reply {
        Reply::Success(..) => b.u32(0),
        Reply::ProgUnavail => b.u32(1),
        Reply::ProgMismatch(lo, hi) => {
            b.u32(2);
            b.u32(*lo);
            b.u32(*hi);
        }
        Reply::ProcUnavail => b.u32(3),
        Reply::GarbageArgs => b.u32(4),
        Reply::SystemErr => b.u32(5),
        Reply::Denied(_) => unreachable!("handled above"),
    }
    b
}

fn rpc_mismatch(xid: u32) -> BytesMut {
    let mut b = BytesMut::new();
    b.u32(xid);
    b.u32(REPLY);
    b.u32(MSG_DENIED);
    b.u32(RPC_MISMATCH);
    b.u32(2);
    b.u32(2);
    b
}

/// Serves one connection: records are read in order and each call runs as its own task, so
/// many are in flight at once; replies go out as they complete (RPC matches them by xid).
pub async fn serve_conn<D: Dispatch>(d: Arc<D>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<(BytesMut, Option<Bytes>)>(64);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let writer = tokio::spawn(async move {
        while let Some((head, payload)) = rx.recv().await {
            let len = head.len() + payload.as_ref().map_or(0, |p| p.len() + pad(p.len()));
            let mark = (0x8000_0000u32 | len as u32).to_be_bytes();
            let mut bufs = vec![Bytes::copy_from_slice(&mark), head.freeze()];
            if let Some(p) = payload {
                let n = p.len();
                bufs.push(p);
                bufs.push(Bytes::from_static(&[0u8; 3][..pad(n)]));
            }
            if write_all_vectored(&mut wr, bufs).await.is_err() {
                return;
            }
        }
    });
    loop {
        let msg = match read_record(&mut rd).await {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(%peer, "NFS connection closed: {e}");
                break;
            }
        };
        match decode(msg, peer) {
            Decoded::Call(call, args) => {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let d = d.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let _ = tx.send(run(d, call, args).await).await;
                });
            }
            Decoded::Answer(reply) => {
                if tx.send((reply, None)).await.is_err() {
                    break;
                }
            }
            Decoded::Ignore => {}
            Decoded::Close => {
                tracing::warn!(%peer, "NFS: undecodable RPC header; closing");
                break;
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// What one received message asks of the connection.
pub enum Decoded {
    /// A call to run.
    Call(Call, Reader),
    /// An answer that needs no program (RPC version or credential errors).
    Answer(BytesMut),
    /// A message that is not a call (a reply sent to a server).
    Ignore,
    /// Not RPC at all: the connection goes.
    Close,
}

pub fn decode(msg: Bytes, peer: SocketAddr) -> Decoded {
    let mut r = Reader::new(msg);
    match decode_call(&mut r, peer) {
        Ok(call) => Decoded::Call(call, r),
        Err((_, HeaderError::Garbage)) => Decoded::Close,
        Err((_, HeaderError::NotACall)) => Decoded::Ignore,
        Err((xid, HeaderError::RpcVersion)) => Decoded::Answer(rpc_mismatch(xid)),
        Err((xid, HeaderError::Auth(stat))) => {
            Decoded::Answer(encode_reply(xid, &Reply::Denied(stat)))
        }
    }
}

/// Runs a call and encodes its reply: the message head, and the payload to send after it.
pub async fn run<D: Dispatch>(d: Arc<D>, call: Call, args: Reader) -> (BytesMut, Option<Bytes>) {
    let xid = call.xid;
    match d.call(call, args).await {
        Reply::Success(body, payload) => {
            let mut head = encode_reply(xid, &Reply::Success(BytesMut::new(), None));
            head.unsplit(body);
            (head, payload)
        }
        other => (encode_reply(xid, &other), None),
    }
}

fn pad(n: usize) -> usize {
    (4 - n % 4) % 4
}

async fn write_all_vectored(
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
    mut bufs: Vec<Bytes>,
) -> std::io::Result<()> {
    let mut i = 0;
    while i < bufs.len() {
        let slices: Vec<std::io::IoSlice> =
            bufs[i..].iter().map(|b| std::io::IoSlice::new(b)).collect();
        let mut n = wr.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while i < bufs.len() && n >= bufs[i].len() {
            n -= bufs[i].len();
            i += 1;
        }
        if n > 0 {
            bufs[i].advance(n);
        }
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error("record of {0} bytes exceeds the {MAX_MESSAGE}-byte limit")]
    TooLarge(usize),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// One record (all its fragments), or None at a clean end of stream.
async fn read_record(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
) -> Result<Option<Bytes>, RecordError> {
    let mut msg = BytesMut::new();
    loop {
        let mut mark = [0u8; 4];
        match rd.read_exact(&mut mark).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && msg.is_empty() => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
        let mark = u32::from_be_bytes(mark);
        let len = (mark & 0x7fff_ffff) as usize;
        if msg.len() + len > MAX_MESSAGE {
            return Err(RecordError::TooLarge(msg.len() + len));
        }
        let start = msg.len();
        msg.resize(start + len, 0);
        rd.read_exact(&mut msg[start..]).await?;
        if mark & 0x8000_0000 != 0 {
            return Ok(Some(msg.freeze()));
        }
    }
}
