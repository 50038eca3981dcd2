//! `features/*` translators of the client graph.

pub mod reserved;
pub mod utime;

use crate::registry::Registry;

pub fn register(r: &mut Registry) {
    r.register(reserved::xlator_type());
    r.register(utime::xlator_type());
}
