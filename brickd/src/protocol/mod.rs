//! `protocol/server`: the brick end of the brick RPC, and who may connect to it.

pub mod auth;
pub mod server;
