//! Brick RPC: frames, handshake, wire messages.
