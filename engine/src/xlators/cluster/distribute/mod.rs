//! `cluster/distribute` (GlusterFS DHT).

pub mod hash;
