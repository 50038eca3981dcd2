//! FUSE frontend: serves a translator graph as a kernel mount through `fuser`.
//!
//! Several dispatch threads read requests from /dev/fuse; every request becomes a tokio task
//! that calls the graph and replies from there, so a slow brick never stalls dispatch. Inode
//! numbers are the gfids' low 64 bits (as GlusterFS's FUSE client), kept in a table with the
//! lookup counts the kernel expects, so `forget` frees exactly what lookups handed out.
//!
//! Layout: `mount` starts and stops the session, `fs` is the `fuser::Filesystem` that hands
//! each request to its group (`entry`, `attr_ops`, `io`, `dir`, `xattr`, `lock`), which run
//! through `answer`; `types` holds the shared state, `inodes` the inode table.

mod answer;
mod attr;
mod attr_ops;
mod common;
mod dir;
mod entry;
mod fs;
mod inodes;
mod invalidate;
mod io;
mod lock;
mod mount;
mod types;
mod xattr;

pub use invalidate::Invalidator;
pub use mount::{FuseError, MountHandle, MountOptions, mount};
