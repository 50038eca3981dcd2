//! `storage/*` translators: where a brick's data lives.

pub mod posix;
pub mod xattr;

#[cfg(test)]
mod posix_tests;
