//! Brick daemon library: the brick-side translators (storage/posix, features/locks,
//! features/index) and the
//! brick RPC server.

pub mod features;
pub mod protocol;
pub mod storage;

use engine::registry::Registry;

/// Registers every brick-side translator type.
pub fn register_all(r: &mut Registry) {
    r.register(storage::posix::xlator_type());
    r.register(features::locks::xlator_type());
    r.register(features::index::xlator_type());
}

/// The brick's server-side graph: posix at the bottom, locks above it, and index on top (as
/// in GlusterFS's brick volfile, where index sits above locks).
pub fn brick_volfile(brick_name: &str, directory: &str, volume_id: &str) -> String {
    format!(
        "volume {brick_name}-posix\n    type storage/posix\n    option directory {directory}\n    option volume-id {volume_id}\nend-volume\n\n\
         volume {brick_name}-locks\n    type features/locks\n    subvolumes {brick_name}-posix\nend-volume\n\n\
         volume {brick_name}-index\n    type features/index\n    option index-base {directory}/.glusterfs/indices\n    subvolumes {brick_name}-locks\nend-volume\n"
    )
}
