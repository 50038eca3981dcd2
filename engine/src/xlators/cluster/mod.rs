//! `cluster/*` translators.

pub mod distribute;
pub mod replicate;

use crate::registry::Registry;

pub fn register(r: &mut Registry) {
    r.register(distribute::xlator_type("cluster/distribute"));
    // GlusterFS volfiles name it either way.
    r.register(distribute::xlator_type("cluster/dht"));
    r.register(replicate::xlator_type("cluster/replicate"));
    r.register(replicate::xlator_type("cluster/afr"));
}
