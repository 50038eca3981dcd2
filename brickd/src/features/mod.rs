//! `features/*` brick-side translators.

pub mod index;
pub mod locks;
pub mod upcall;
