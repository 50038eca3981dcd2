//! Bounded XDR decoding of call arguments (RFC 4506), and encoding of replies.
//!
//! Arguments are decoded here rather than with nfsserve's `XDR::deserialize`: that one sizes a
//! buffer from the length on the wire before reading it (a 4 GiB allocation for a hostile
//! 12-byte message), and copies opaque data. Every length here is checked against both its
//! protocol limit and the bytes actually left, and WRITE payloads are `Bytes` slices of the
//! received message. Replies use nfsserve's NFSv3 types, whose encoding is safe.

use bytes::{BufMut, Bytes, BytesMut};
use nfsserve::xdr::XDR;

/// A call's arguments could not be decoded: the reply is GARBAGE_ARGS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed XDR arguments")]
pub struct Garbage;

pub type Dec<T> = Result<T, Garbage>;

/// A cursor over one received RPC message.
#[derive(Clone)]
pub struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    pub fn new(buf: Bytes) -> Reader {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn u32(&mut self) -> Dec<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Dec<u64> {
        Ok((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }

    pub fn bool(&mut self) -> Dec<bool> {
        match self.u32()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Garbage),
        }
    }

    /// Fixed-length opaque (padded to 4).
    pub fn fixed(&mut self, n: usize) -> Dec<Bytes> {
        let b = self.take(n)?;
        self.skip_pad(n)?;
        Ok(b)
    }

    /// Variable-length opaque of at most `max` bytes, as a slice of the message (no copy).
    pub fn opaque(&mut self, max: usize) -> Dec<Bytes> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(Garbage);
        }
        self.fixed(n)
    }

    /// A string (file name, path, machine name): bytes, at most `max`.
    pub fn string(&mut self, max: usize) -> Dec<Bytes> {
        self.opaque(max)
    }

    fn take(&mut self, n: usize) -> Dec<Bytes> {
        if n > self.remaining() {
            return Err(Garbage);
        }
        let b = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }

    fn skip_pad(&mut self, n: usize) -> Dec<()> {
        let pad = (4 - n % 4) % 4;
        self.take(pad).map(|_| ())
    }
}

/// Appends XDR to a reply under construction.
pub trait Put {
    fn u32(&mut self, v: u32);
    fn u64(&mut self, v: u64);
    fn bool(&mut self, v: bool);
    fn opaque(&mut self, b: &[u8]);
    fn fixed(&mut self, b: &[u8]);
    fn xdr(&mut self, v: &impl XDR);
}

impl Put for BytesMut {
    fn u32(&mut self, v: u32) {
        self.put_u32(v);
    }
    fn u64(&mut self, v: u64) {
        self.put_u64(v);
    }
    fn bool(&mut self, v: bool) {
        self.put_u32(u32::from(v));
    }
    fn opaque(&mut self, b: &[u8]) {
        self.put_u32(b.len() as u32);
        self.fixed(b);
    }
    fn fixed(&mut self, b: &[u8]) {
        self.put_slice(b);
        self.put_bytes(0, (4 - b.len() % 4) % 4);
    }
    fn xdr(&mut self, v: &impl XDR) {
        // Writing into memory cannot fail.
        let mut w = self.writer();
        v.serialize(&mut w).expect("XDR into memory");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_beyond_the_message_or_the_limit_are_garbage() {
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 1, 2]));
        assert_eq!(r.opaque(usize::MAX), Err(Garbage));
        let mut r = Reader::new(Bytes::from_static(&[0, 0, 0, 3, b'a', b'b', b'c', 0]));
        assert_eq!(r.opaque(2), Err(Garbage));
        let mut r = Reader::new(Bytes::from_static(&[0, 0, 0, 3, b'a', b'b', b'c', 0]));
        assert_eq!(&r.opaque(3).unwrap()[..], b"abc");
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn opaque_round_trips_with_padding() {
        let mut b = BytesMut::new();
        b.opaque(b"hello");
        assert_eq!(b.len(), 4 + 8);
        let mut r = Reader::new(b.freeze());
        assert_eq!(&r.opaque(16).unwrap()[..], b"hello");
    }
}
