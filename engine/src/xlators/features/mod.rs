//! `features/*` translators of the client graph.

pub mod utime;

use crate::registry::Registry;

pub fn register(r: &mut Registry) {
    r.register(utime::xlator_type());
}
