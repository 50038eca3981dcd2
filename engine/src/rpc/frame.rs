//! Frame encoding, the connection halves and the handshake MAC.

use super::wire::*;
use crate::fop::Gfid;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::StreamExt;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use tokio::sync::Notify;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

/// Largest frame accepted: a 16 MiB payload plus headroom for the message. Anything larger is
/// a broken or hostile peer, and its connection is closed.
pub const MAX_FRAME: usize = 16 * 1024 * 1024 + 64 * 1024;

const FIXED_HEADER: usize = 8 + 1 + 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Request = 1,
    Reply = 2,
    Ping = 3,
    Pong = 4,
    Hello = 5,
    /// Server to client, unasked: a cache invalidation (`crate::fop::Upcall` as the header,
    /// id 0), GlusterFS's upcall notifications. Clients that predate it close the connection
    /// on it, so a brick sends one only to a client that looked the inode up.
    Upcall = 6,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Request,
            2 => Kind::Reply,
            3 => Kind::Ping,
            4 => Kind::Pong,
            5 => Kind::Hello,
            6 => Kind::Upcall,
            _ => return None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("connection closed")]
    Closed,
}

/// A decoded frame: the message is decoded lazily by the side that knows its type.
pub struct Frame {
    pub id: u64,
    pub kind: Kind,
    pub header: Bytes,
    pub payload: Bytes,
}

impl Frame {
    pub fn decode_header<T: DeserializeOwned>(&self) -> Result<T, FrameError> {
        postcard::from_bytes(&self.header)
            .map_err(|e| FrameError::Malformed(format!("bad {:?} message: {e}", self.kind)))
    }
}

/// An outgoing frame; the payload is written as is, after the header.
pub struct OutFrame {
    pub head: BytesMut,
    pub payload: Bytes,
}

pub fn encode<T: Serialize>(id: u64, kind: Kind, msg: &T, payload: Bytes) -> OutFrame {
    let header = postcard::to_allocvec(msg).expect("wire messages always serialize");
    let mut head = BytesMut::with_capacity(4 + FIXED_HEADER + header.len());
    head.put_u32((FIXED_HEADER + header.len() + payload.len()) as u32);
    head.put_u64(id);
    head.put_u8(kind as u8);
    head.put_u32(header.len() as u32);
    head.extend_from_slice(&header);
    OutFrame { head, payload }
}

pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

pub type FrameReader<R> = FramedRead<R, LengthDelimitedCodec>;

pub fn reader<R: tokio::io::AsyncRead>(r: R) -> FrameReader<R> {
    FramedRead::with_capacity(r, codec(), 256 * 1024)
}

pub async fn next_frame<R: tokio::io::AsyncRead + Unpin>(
    r: &mut FrameReader<R>,
) -> Result<Frame, FrameError> {
    let buf = match r.next().await {
        None => return Err(FrameError::Closed),
        Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(FrameError::Malformed(e.to_string()));
        }
        Some(Err(e)) => return Err(e.into()),
        Some(Ok(b)) => b.freeze(),
    };
    parse_frame(buf)
}

pub fn parse_frame(mut buf: Bytes) -> Result<Frame, FrameError> {
    if buf.len() < FIXED_HEADER {
        return Err(FrameError::Malformed(format!(
            "{} bytes is shorter than a frame header",
            buf.len()
        )));
    }
    let id = buf.get_u64();
    let kind_raw = buf.get_u8();
    let kind = Kind::from_u8(kind_raw)
        .ok_or_else(|| FrameError::Malformed(format!("unknown frame kind {kind_raw}")))?;
    let hlen = buf.get_u32() as usize;
    if hlen > buf.len() {
        return Err(FrameError::Malformed(format!(
            "header length {hlen} exceeds the frame"
        )));
    }
    let header = buf.split_to(hlen);
    Ok(Frame {
        id,
        kind,
        header,
        payload: buf,
    })
}

/// Frames written through a `FrameSink` after it failed.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("connection closed")]
pub struct SinkClosed;

/// The writing half, shared by every task that sends on a connection. A sender that finds
/// the connection idle writes its frame itself, as far as the socket takes it without waiting
/// (a round trip then costs no hand-off to another task on either side); whatever the socket
/// does not take at once, and every frame sent while some are still queued, is left to one
/// writer task per connection, which writes them in order and in batches. So a sender never
/// waits on the socket: a reader that answers a ping, or a request that replies, can never
/// block on a peer that is itself waiting to write. (Letting each sender wait for its own
/// write under a lock stalled connections for a whole ping-timeout under many large writes at
/// once.)
pub struct FrameSink {
    shared: Arc<SinkShared>,
}

struct SinkShared {
    state: parking_lot::Mutex<SinkState>,
    /// Tells the writer task there is work: queued bytes, or the sink went away.
    work: Notify,
}

struct SinkState {
    w: Pin<Box<dyn AsyncWrite + Send>>,
    /// Bytes not yet written, in order; the first may be partly written already.
    queue: VecDeque<Bytes>,
    /// Written but not flushed (a TLS stream holds records until flushed).
    unflushed: bool,
    /// A write failed: the connection is gone.
    failed: bool,
    /// Every sender is gone: the writer task ends once the queue is out.
    dropped: bool,
}

/// At most this many queued buffers go to one vectored write.
const WRITE_BATCH: usize = 64;

impl SinkState {
    fn idle(&self) -> bool {
        self.queue.is_empty() && !self.unflushed
    }

    /// Writes and flushes what is queued; Pending (with `cx` woken later) where the socket
    /// takes no more now.
    fn drive(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while !self.queue.is_empty() {
            let bufs: Vec<IoSlice<'_>> = self
                .queue
                .iter()
                .take(WRITE_BATCH)
                .map(|b| IoSlice::new(b))
                .collect();
            let mut n = match self.w.as_mut().poll_write_vectored(cx, &bufs) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            self.unflushed = true;
            while n > 0 {
                let front = self.queue.front_mut().expect("written bytes were queued");
                if n >= front.len() {
                    n -= front.len();
                    self.queue.pop_front();
                } else {
                    front.advance(n);
                    n = 0;
                }
            }
        }
        if self.unflushed {
            match self.w.as_mut().poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                other => return other,
            }
        }
        Poll::Ready(Ok(()))
    }

    fn fail(&mut self) {
        self.failed = true;
        self.queue.clear();
        self.unflushed = false;
    }
}

impl FrameSink {
    pub fn new<W: AsyncWrite + Send + Unpin + 'static>(w: W) -> Arc<FrameSink> {
        let shared = Arc::new(SinkShared {
            state: parking_lot::Mutex::new(SinkState {
                w: Box::pin(w),
                queue: VecDeque::new(),
                unflushed: false,
                failed: false,
                dropped: false,
            }),
            work: Notify::new(),
        });
        let s = shared.clone();
        tokio::spawn(async move {
            loop {
                s.work.notified().await;
                let r = std::future::poll_fn(|cx| s.state.lock().drive(cx)).await;
                let end = {
                    let mut st = s.state.lock();
                    if r.is_err() {
                        st.fail();
                        return;
                    }
                    st.dropped && st.idle()
                };
                if end {
                    let _ = std::future::poll_fn(|cx| s.state.lock().w.as_mut().poll_shutdown(cx))
                        .await;
                    return;
                }
            }
        });
        Arc::new(FrameSink { shared })
    }

    pub fn is_closed(&self) -> bool {
        self.shared.state.lock().failed
    }

    /// Queues `f` for the connection (see the type's comment: written here when the
    /// connection is idle and the socket takes it at once).
    pub async fn write(&self, f: OutFrame) -> Result<(), SinkClosed> {
        self.push(f)
    }

    /// `write`, from code that is not async.
    pub fn send(self: &Arc<Self>, f: OutFrame) -> Result<(), SinkClosed> {
        self.push(f)
    }

    fn push(&self, f: OutFrame) -> Result<(), SinkClosed> {
        let mut st = self.shared.state.lock();
        if st.failed {
            return Err(SinkClosed);
        }
        let idle = st.idle();
        st.queue.push_back(f.head.freeze());
        if !f.payload.is_empty() {
            st.queue.push_back(f.payload);
        }
        if !idle {
            // The writer task was told when the queue filled, and has not emptied it yet.
            return Ok(());
        }
        let waker = futures::task::noop_waker();
        match st.drive(&mut Context::from_waker(&waker)) {
            Poll::Ready(Ok(())) => Ok(()),
            Poll::Ready(Err(_)) => {
                st.fail();
                Err(SinkClosed)
            }
            Poll::Pending => {
                drop(st);
                self.shared.work.notify_one();
                Ok(())
            }
        }
    }
}

impl Drop for FrameSink {
    fn drop(&mut self) {
        self.shared.state.lock().dropped = true;
        self.shared.work.notify_one();
    }
}

type HmacSha256 = Hmac<Sha256>;

pub fn handshake_mac(
    secret: &[u8],
    server_nonce: &[u8; 32],
    client_nonce: &[u8; 32],
    volume_id: &Gfid,
    brick: &str,
) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(b"gwfs-brick-v1");
    m.update(server_nonce);
    m.update(client_nonce);
    m.update(&volume_id.0);
    m.update(brick.as_bytes());
    m.finalize().into_bytes().to_vec()
}

pub fn verify_mac(
    secret: &[u8],
    server_nonce: &[u8; 32],
    client_nonce: &[u8; 32],
    volume_id: &Gfid,
    brick: &str,
    mac: &[u8],
) -> bool {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(b"gwfs-brick-v1");
    m.update(server_nonce);
    m.update(client_nonce);
    m.update(&volume_id.0);
    m.update(brick.as_bytes());
    m.verify_slice(mac).is_ok()
}

pub fn random_nonce() -> [u8; 32] {
    rand::random()
}

pub fn hello_frame(msg: &Hello) -> OutFrame {
    encode(0, Kind::Hello, msg, Bytes::new())
}

pub fn reply_frame(id: u64, reply: &Reply, payload: Bytes) -> OutFrame {
    encode(id, Kind::Reply, reply, payload)
}

pub fn upcall_frame(u: &crate::fop::Upcall) -> OutFrame {
    encode(0, Kind::Upcall, u, Bytes::new())
}

pub fn request_frame(id: u64, req: &Request, payload: Bytes) -> OutFrame {
    encode(id, Kind::Request, req, payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_with_payload_slices() {
        let f = request_frame(7, &Request::Release { fd: 3 }, Bytes::from_static(b"data"));
        let mut all = BytesMut::new();
        all.extend_from_slice(&f.head[4..]);
        all.extend_from_slice(&f.payload);
        let p = parse_frame(all.freeze()).unwrap();
        assert_eq!((p.id, p.kind), (7, Kind::Request));
        assert!(matches!(
            p.decode_header::<Request>().unwrap(),
            Request::Release { fd: 3 }
        ));
        assert_eq!(&p.payload[..], b"data");
    }

    #[test]
    fn upcall_frames_carry_the_gfid_and_what_changed() {
        let u = crate::fop::Upcall {
            gfid: Gfid::random(),
            flags: crate::fop::upcall_flags::ATTR | crate::fop::upcall_flags::DATA,
        };
        let f = upcall_frame(&u);
        let p = parse_frame(Bytes::copy_from_slice(&f.head[4..])).unwrap();
        assert_eq!(p.kind, Kind::Upcall);
        assert_eq!(p.decode_header::<crate::fop::Upcall>().unwrap(), u);
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        assert!(parse_frame(Bytes::from_static(b"xx")).is_err());
        let mut b = BytesMut::new();
        b.put_u64(1);
        b.put_u8(9);
        b.put_u32(0);
        assert!(parse_frame(b.freeze()).is_err());
        let mut b = BytesMut::new();
        b.put_u64(1);
        b.put_u8(1);
        b.put_u32(1000);
        assert!(parse_frame(b.freeze()).is_err());
        let mut b = BytesMut::new();
        b.put_u64(1);
        b.put_u8(1);
        b.put_u32(3);
        b.extend_from_slice(&[0xff, 0xff, 0xff]);
        assert!(
            parse_frame(b.freeze())
                .unwrap()
                .decode_header::<Request>()
                .is_err()
        );
    }

    #[test]
    fn the_mac_binds_volume_brick_and_both_nonces() {
        let (s, c) = ([1u8; 32], [2u8; 32]);
        let v = Gfid::random();
        let mac = handshake_mac(b"secret", &s, &c, &v, "b1");
        assert!(verify_mac(b"secret", &s, &c, &v, "b1", &mac));
        assert!(!verify_mac(b"other", &s, &c, &v, "b1", &mac));
        assert!(!verify_mac(b"secret", &s, &c, &v, "b2", &mac));
        assert!(!verify_mac(b"secret", &[3; 32], &c, &v, "b1", &mac));
    }
}
