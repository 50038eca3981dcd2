//! Client-side translators, one file per translator under its GlusterFS category.

pub mod cluster;
pub mod debug;
pub mod features;
pub mod protocol;

use crate::registry::Registry;

pub fn register_all(r: &mut Registry) {
    cluster::register(r);
    debug::register(r);
    features::register(r);
    protocol::register(r);
}
