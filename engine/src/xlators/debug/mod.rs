//! `debug/*` translators.

pub mod io_stats;

use crate::registry::Registry;

pub fn register(r: &mut Registry) {
    r.register(io_stats::xlator_type());
}
