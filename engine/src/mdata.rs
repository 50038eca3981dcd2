//! Consistent times: `trusted.glusterfs.mdata`, GlusterFS's ctime feature.
//!
//! A brick's own inode times differ between replicas (each brick stamps its copy when the
//! write reaches it), so GlusterFS keeps the times in an xattr instead, stamped by the client
//! with one time per fop (`features/utime`) and stored the same on every copy. A brick answers
//! stat from it. The on-disk layout is GlusterFS's `posix_mdata_disk_t`: 57 bytes, big-endian,
//! version u8 (1), flags u64, then ctime, mtime, atime as (seconds u64, nanoseconds u64).

use crate::fop::Iatt;
use crate::time::Timespec;
pub use crate::time::{Stamp, flags};

pub const KEY: &str = crate::fop::keys::MDATA;
pub const LEN: usize = 57;
const VERSION: u8 = 1;

/// The three times of an inode as the xattr holds them.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Mdata {
    pub flags: u64,
    pub ctime: Timespec,
    pub mtime: Timespec,
    pub atime: Timespec,
}

fn later(a: Timespec, b: Timespec) -> bool {
    (a.sec, a.nsec) > (b.sec, b.nsec)
}

impl Mdata {
    /// Every time at one instant: a new inode, or the first stamp of an inode that had none.
    pub fn at(t: Timespec) -> Mdata {
        Mdata {
            flags: 0,
            ctime: t,
            mtime: t,
            atime: t,
        }
    }

    pub fn of_iatt(ia: &Iatt) -> Mdata {
        Mdata {
            flags: 0,
            ctime: ia.ctime,
            mtime: ia.mtime,
            atime: ia.atime,
        }
    }

    /// None for a value of another length or version (it is then left alone, and the
    /// brick's own times answer).
    pub fn decode(b: &[u8]) -> Option<Mdata> {
        if b.len() != LEN || b[0] != VERSION {
            return None;
        }
        let u = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let ts = |i: usize| Timespec {
            sec: u(i) as i64,
            nsec: (u(i + 8) % 1_000_000_000) as u32,
        };
        Some(Mdata {
            flags: u(1),
            ctime: ts(9),
            mtime: ts(25),
            atime: ts(41),
        })
    }

    pub fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[0] = VERSION;
        out[1..9].copy_from_slice(&self.flags.to_be_bytes());
        for (i, t) in [(9, self.ctime), (25, self.mtime), (41, self.atime)] {
            out[i..i + 8].copy_from_slice(&(t.sec as u64).to_be_bytes());
            out[i + 8..i + 16].copy_from_slice(&(t.nsec as u64).to_be_bytes());
        }
        out
    }

    /// Moves the times `which` (CTIME/MTIME/ATIME bits) forward to `t`. Times only move
    /// forward: fops of one file reach a brick out of order, and the newest stamp must win
    /// on every copy (GlusterFS's `posix_set_mdata_xattr`).
    pub fn advance(&mut self, t: Timespec, which: u8) {
        if which & flags::CTIME != 0 && later(t, self.ctime) {
            self.ctime = t;
        }
        if which & flags::MTIME != 0 && later(t, self.mtime) {
            self.mtime = t;
        }
        if which & flags::ATIME != 0 && later(t, self.atime) {
            self.atime = t;
        }
    }

    /// The newest of each time: what heal and rebalance store, so copies converge.
    pub fn merge(&mut self, other: &Mdata) {
        self.advance(other.ctime, flags::CTIME);
        self.advance(other.mtime, flags::MTIME);
        self.advance(other.atime, flags::ATIME);
    }

    pub fn apply(&self, ia: &mut Iatt) {
        ia.ctime = self.ctime;
        ia.mtime = self.mtime;
        ia.atime = self.atime;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_glusterfs_layout() {
        // A value GlusterFS 10 wrote (getfattr -e hex): version 1, flags 0, then the times.
        let mut v = vec![1u8];
        v.extend_from_slice(&0u64.to_be_bytes());
        for (s, ns) in [(1700000000u64, 5u64), (1700000001, 6), (1700000002, 7)] {
            v.extend_from_slice(&s.to_be_bytes());
            v.extend_from_slice(&ns.to_be_bytes());
        }
        let m = Mdata::decode(&v).unwrap();
        assert_eq!(
            m.ctime,
            Timespec {
                sec: 1700000000,
                nsec: 5
            }
        );
        assert_eq!(
            m.mtime,
            Timespec {
                sec: 1700000001,
                nsec: 6
            }
        );
        assert_eq!(
            m.atime,
            Timespec {
                sec: 1700000002,
                nsec: 7
            }
        );
        assert_eq!(m.encode().as_slice(), v.as_slice());
        assert!(Mdata::decode(&v[..56]).is_none());
        let mut v2 = v.clone();
        v2[0] = 2;
        assert!(Mdata::decode(&v2).is_none());
    }

    #[test]
    fn times_only_move_forward() {
        let t = |s| Timespec { sec: s, nsec: 0 };
        let mut m = Mdata::at(t(10));
        m.advance(t(5), flags::CTIME | flags::MTIME);
        assert_eq!(m, Mdata::at(t(10)));
        m.advance(t(12), flags::MTIME);
        assert_eq!((m.ctime, m.mtime, m.atime), (t(10), t(12), t(10)));
        let mut o = Mdata::at(t(11));
        o.merge(&m);
        assert_eq!((o.ctime, o.mtime, o.atime), (t(11), t(12), t(11)));
    }

    #[test]
    fn parent_flags_shift_down() {
        let s = Stamp::now(flags::CTIME | flags::PAR_CTIME | flags::PAR_MTIME);
        assert_eq!(s.own(), flags::CTIME);
        assert_eq!(s.parent(), flags::CTIME | flags::MTIME);
    }
}
