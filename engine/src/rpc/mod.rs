//! The brick RPC (DESIGN §6): length-prefixed frames over TCP, each with a fixed binary
//! header (request id, kind, header length), a postcard-encoded message and a raw payload that
//! travels as a `Bytes` slice of the frame, so read and write data are never re-encoded.
//!
//! ```text
//! u32 frame length | u64 id | u8 kind | u32 header length | header (postcard) | payload
//! ```
//!
//! A connection starts with a challenge: the server sends a random nonce, the client answers
//! with the protocol version, volume id, brick name, its own nonce and an HMAC-SHA256 over
//! all of them keyed with the volume secret; the server accepts or says why not and closes.

pub mod frame;
pub mod wire;

pub use frame::*;
pub use wire::*;
