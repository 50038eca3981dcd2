//! `protocol/*` translators: the client end of the brick RPC.

pub mod client;

use crate::registry::Registry;

pub fn register(r: &mut Registry) {
    r.register(client::xlator_type());
}
