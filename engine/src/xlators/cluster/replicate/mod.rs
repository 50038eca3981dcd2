//! `cluster/replicate` (AFR). The translator itself (transactions, reads with failover,
//! self-heal) is being built for the replication issue; what is here already is the part both
//! it and the heal daemon stand on: the changelog format and the rules that read it.

pub mod changelog;
