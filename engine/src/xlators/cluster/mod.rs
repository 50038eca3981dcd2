//! `cluster/*` translators.

pub mod distribute;

use crate::registry::Registry;

pub fn register(_r: &mut Registry) {}
