//! `features/*` brick-side translators.

pub mod locks;
