//! FUSE frontend.
