//! Brick daemon library: the brick-side translators (storage/posix, features/locks,
//! features/upcall, features/index) and the
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
    r.register(features::upcall::xlator_type());
}

/// The brick-side volume options brickd takes (GlusterFS's `features.*` of the brick volfile).
#[derive(Clone, Debug)]
pub struct BrickOptions {
    /// `features.cache-invalidation`: tell clients what other clients change (upcalls).
    pub cache_invalidation: bool,
    /// `features.cache-invalidation-timeout`, seconds.
    pub cache_invalidation_timeout: u64,
}

impl Default for BrickOptions {
    /// GlusterFS's defaults (off, 60 s); the gateway passes the volume's own.
    fn default() -> Self {
        BrickOptions {
            cache_invalidation: false,
            cache_invalidation_timeout: 60,
        }
    }
}

/// The brick's server-side graph: posix at the bottom, locks above it, upcall above locks and
/// index on top (as in GlusterFS's brick volfile, where upcall sits above locks and index
/// above both).
pub fn brick_volfile(brick_name: &str, directory: &str, volume_id: &str) -> String {
    brick_volfile_with(brick_name, directory, volume_id, &BrickOptions::default())
}

pub fn brick_volfile_with(
    brick_name: &str,
    directory: &str,
    volume_id: &str,
    o: &BrickOptions,
) -> String {
    let ci = if o.cache_invalidation { "on" } else { "off" };
    format!(
        "volume {brick_name}-posix\n    type storage/posix\n    option directory {directory}\n    option volume-id {volume_id}\nend-volume\n\n\
         volume {brick_name}-locks\n    type features/locks\n    subvolumes {brick_name}-posix\nend-volume\n\n\
         volume {brick_name}-upcall\n    type features/upcall\n    option cache-invalidation {ci}\n    \
         option cache-invalidation-timeout {timeout}\n    subvolumes {brick_name}-locks\nend-volume\n\n\
         volume {brick_name}-index\n    type features/index\n    option index-base {directory}/.glusterfs/indices\n    subvolumes {brick_name}-upcall\nend-volume\n",
        timeout = o.cache_invalidation_timeout
    )
}
