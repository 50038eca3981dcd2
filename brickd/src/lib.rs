//! Brick daemon library: the brick-side translators and the RPC server.
