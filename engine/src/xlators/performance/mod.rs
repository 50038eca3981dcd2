//! `performance/*` translators of the client graph.

pub mod md_cache;
pub mod open_behind;
pub mod quick_read;
pub mod readdir_ahead;
pub mod write_behind;

use crate::registry::Registry;

pub fn register(r: &mut Registry) {
    r.register(md_cache::xlator_type());
    r.register(open_behind::xlator_type());
    r.register(quick_read::xlator_type());
    r.register(readdir_ahead::xlator_type());
    r.register(write_behind::xlator_type());
}
