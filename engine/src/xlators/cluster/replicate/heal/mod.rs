//! Self-heal: making the replicas the changelogs call stale equal to a good one, under the
//! same locks transactions take, then zeroing the marks. Entry heal (names in a directory),
//! metadata heal (ownership, mode, times, xattrs) and data heal (contents, block by block),
//! as GlusterFS's AFR does them; split-brain is never resolved unless a policy or an operator
//! picks the source.

mod common;
mod daemon;
mod data;
mod entry;
mod inode;
mod metadata;

pub use daemon::{HealInfo, PendingEntry};
