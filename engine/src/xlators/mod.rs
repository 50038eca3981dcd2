//! Client-side translators, one file per translator under its GlusterFS category.

pub mod cluster;
pub mod debug;
pub mod features;
pub mod performance;
pub mod protocol;

use crate::registry::Registry;

impl Registry {
    /// Every client-side translator this engine has. Defined here, not in `registry`, so the
    /// registry names no translator while every translator names the registry.
    pub fn client_side() -> Self {
        let mut r = Registry::empty();
        register_all(&mut r);
        r
    }
}

pub fn register_all(r: &mut Registry) {
    cluster::register(r);
    debug::register(r);
    features::register(r);
    performance::register(r);
    protocol::register(r);
}
