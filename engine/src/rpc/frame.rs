//! Frame encoding, the connection halves and the handshake MAC.

use super::wire::*;
use crate::fop::Gfid;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::StreamExt;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;
use std::sync::Arc;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
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

/// The writing half, shared by every task that sends on a connection: frames go to one writer
/// task per connection, in the order they were sent, and leave in batches (what queued while
/// it wrote shares its next flush). The senders never wait on the socket, so a reader that
/// answers a ping, or a request that replies, can never block on a peer that is itself
/// waiting to write. (Letting each sender write its own frame under a lock saved a hand-off
/// but stalled connections for a whole ping-timeout under many large writes at once.)
pub struct FrameSink {
    tx: mpsc::UnboundedSender<OutFrame>,
}

impl FrameSink {
    pub fn new<W: AsyncWrite + Send + Unpin + 'static>(w: W) -> Arc<FrameSink> {
        let (tx, mut rx) = mpsc::unbounded_channel::<OutFrame>();
        tokio::spawn(async move {
            let mut w = tokio::io::BufWriter::with_capacity(64 * 1024, w);
            while let Some(f) = rx.recv().await {
                let mut next = Some(f);
                while let Some(f) = next.take() {
                    if w.write_all(&f.head).await.is_err() || w.write_all(&f.payload).await.is_err()
                    {
                        return;
                    }
                    next = rx.try_recv().ok();
                }
                if w.flush().await.is_err() {
                    return;
                }
            }
            let _ = w.shutdown().await;
        });
        Arc::new(FrameSink { tx })
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Queues `f` for the connection's writer.
    pub async fn write(&self, f: OutFrame) -> Result<(), SinkClosed> {
        self.tx.send(f).map_err(|_| SinkClosed)
    }

    /// Queues `f` for the connection's writer, from code that is not async.
    pub fn send(self: &Arc<Self>, f: OutFrame) -> Result<(), SinkClosed> {
        self.tx.send(f).map_err(|_| SinkClosed)
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
