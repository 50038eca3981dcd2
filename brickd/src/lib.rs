//! Brick daemon library: the brick-side translators (storage/posix, features/locks) and the
//! brick RPC server.

pub mod features;
pub mod protocol;
pub mod storage;

use engine::registry::Registry;

/// Registers every brick-side translator type.
pub fn register_all(r: &mut Registry) {
    r.register(storage::posix::xlator_type());
    r.register(features::locks::xlator_type());
}

/// The brick's server-side graph: posix at the bottom, locks above it.
pub fn brick_volfile(brick_name: &str, directory: &str, volume_id: &str) -> String {
    format!(
        "volume {brick_name}-posix\n    type storage/posix\n    option directory {directory}\n    option volume-id {volume_id}\nend-volume\n\n\
         volume {brick_name}-locks\n    type features/locks\n    subvolumes {brick_name}-posix\nend-volume\n"
    )
}
