//! Times as fops carry them: stat's `Timespec`, and the `Stamp` a changing fop takes once
//! (`features/utime`) and carries down in its `Ctx`. A leaf: the fop model (`fop`) and the
//! consistent-times xattr (`mdata`) both use it.

use serde::{Deserialize, Serialize};

/// A point in time as stat reports it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: u32,
}

impl Timespec {
    pub fn now() -> Timespec {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timespec {
            sec: d.as_secs() as i64,
            nsec: d.subsec_nanos(),
        }
    }
}

/// Which times a stamped fop moves (GlusterFS's `MDATA_*` frame flags, same bits).
pub mod flags {
    pub const CTIME: u8 = 1 << 0;
    pub const MTIME: u8 = 1 << 1;
    pub const ATIME: u8 = 1 << 2;
    pub const PAR_CTIME: u8 = 1 << 3;
    pub const PAR_MTIME: u8 = 1 << 4;
    pub const PAR_ATIME: u8 = 1 << 5;
}

/// The time a changing fop carries down the graph, and which times of the inode (and of its
/// parent, for entry fops) it moves. Chosen once above the cluster translators, so every
/// replica and every subvolume stores the same instant.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Stamp {
    pub time: Timespec,
    pub flags: u8,
}

impl Stamp {
    pub fn now(flags: u8) -> Stamp {
        Stamp {
            time: Timespec::now(),
            flags,
        }
    }

    /// The flags for the inode itself.
    pub fn own(&self) -> u8 {
        self.flags & (flags::CTIME | flags::MTIME | flags::ATIME)
    }

    /// The flags for the parent directory, shifted down to the inode bits.
    pub fn parent(&self) -> u8 {
        (self.flags >> 3) & (flags::CTIME | flags::MTIME | flags::ATIME)
    }
}
