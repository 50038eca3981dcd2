//! Directory layouts: which hash range of a directory's names each subvolume holds, stored per
//! subvolume in `trusted.glusterfs.dht` as 4 × u32 big-endian `[commit-hash, type, start, stop]`.

use super::hash::dm_hash;

/// What GlusterFS writes as the commit hash of a layout it has not rebalanced
/// (DHT_LAYOUT_HASH_INVALID); readers ignore it.
pub const COMMIT_HASH_NEW: u32 = 1;
const HASH_TYPE_DM: u32 = 0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub start: u32,
    pub stop: u32,
    pub subvol: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub ranges: Vec<Range>,
}

pub fn encode(start: u32, stop: u32) -> Vec<u8> {
    [COMMIT_HASH_NEW, HASH_TYPE_DM, start, stop]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect()
}

/// `(start, stop)` from a stored value; None for a malformed value or an empty range
/// (GlusterFS writes 0..0 for a subvolume excluded from a directory).
pub fn decode(v: &[u8]) -> Option<(u32, u32)> {
    if v.len() != 16 {
        return None;
    }
    let w = |i: usize| u32::from_be_bytes(v[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
    let (start, stop) = (w(2), w(3));
    if start == 0 && stop == 0 {
        return None;
    }
    Some((start, stop))
}

impl Layout {
    /// Equal ranges over `names.len()` subvolumes, as GlusterFS lays out a new directory: the
    /// subvolumes ordered by name, the first range going to the one the directory's path hashes
    /// to, the last range ending at 0xffffffff. Returns (subvolume index, start, stop).
    pub fn new_for(path: &str, names: &[String]) -> Layout {
        let n = names.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|a, b| names[*a].cmp(&names[*b]));
        let first = (dm_hash(path.as_bytes()) as usize) % n.max(1);
        let chunk = 0xffff_ffffu32 / n.max(1) as u32;
        let mut ranges = Vec::with_capacity(n);
        let mut start: u32 = 0;
        for j in 0..n {
            let subvol = order[(first + j) % n];
            let stop = if j == n - 1 {
                0xffff_ffff
            } else {
                start.wrapping_add(chunk - 1)
            };
            ranges.push(Range {
                start,
                stop,
                subvol,
            });
            start = start.wrapping_add(chunk);
        }
        Layout { ranges }
    }

    pub fn range_of(&self, subvol: usize) -> Option<&Range> {
        self.ranges.iter().find(|r| r.subvol == subvol)
    }

    /// The subvolume whose range holds `hash`.
    pub fn search(&self, hash: u32) -> Option<usize> {
        self.ranges
            .iter()
            .find(|r| r.start <= hash && hash <= r.stop)
            .map(|r| r.subvol)
    }

    pub fn for_name(&self, name: &str) -> Option<usize> {
        self.search(super::hash::name_hash(name))
    }

    /// True when the ranges cover the whole hash space exactly once.
    pub fn is_complete(&self) -> bool {
        let mut r = self.ranges.clone();
        r.sort_by_key(|r| r.start);
        let mut next: u64 = 0;
        for x in &r {
            if x.start as u64 != next || x.stop < x.start {
                return false;
            }
            next = x.stop as u64 + 1;
        }
        next == 1 << 32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("gv-client-{i}")).collect()
    }

    #[test]
    fn new_layouts_split_evenly_and_end_at_the_top() {
        let l = Layout::new_for("/", &names(2));
        assert!(l.is_complete());
        let mut r = l.ranges.clone();
        r.sort_by_key(|r| r.start);
        assert_eq!((r[0].start, r[0].stop), (0, 0x7fff_fffe));
        assert_eq!((r[1].start, r[1].stop), (0x7fff_ffff, 0xffff_ffff));
        let l4 = Layout::new_for("/dir", &names(4));
        assert!(l4.is_complete());
        let mut r = l4.ranges.clone();
        r.sort_by_key(|r| r.start);
        assert_eq!((r[0].start, r[0].stop), (0, 0x3fff_fffe));
        assert_eq!(r[3].stop, 0xffff_ffff);
    }

    #[test]
    fn values_round_trip_and_holes_are_detected() {
        let v = encode(5, 10);
        assert_eq!(&v[..4], &[0, 0, 0, 1]);
        assert_eq!(decode(&v), Some((5, 10)));
        assert_eq!(decode(&encode(0, 0)), None);
        let l = Layout {
            ranges: vec![
                Range {
                    start: 0,
                    stop: 10,
                    subvol: 0,
                },
                Range {
                    start: 12,
                    stop: u32::MAX,
                    subvol: 1,
                },
            ],
        };
        assert!(!l.is_complete());
        assert_eq!(l.search(11), None);
        assert_eq!(l.search(12), Some(1));
    }
}
