//! `protocol/server`: the brick end of the brick RPC.

pub mod server;
