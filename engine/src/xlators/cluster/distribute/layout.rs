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
    /// The commit hash every range was written with; None when they disagree (a fix-layout
    /// cut short) or there are none. A layout whose commit hash is the volume's own has had
    /// its files moved where it says (GlusterFS's lookup-optimize trusts only those).
    pub commit: Option<u32>,
}

pub fn encode(start: u32, stop: u32) -> Vec<u8> {
    encode_with(COMMIT_HASH_NEW, start, stop)
}

/// The stored value of one range, with `commit` as its commit hash.
pub fn encode_with(commit: u32, start: u32, stop: u32) -> Vec<u8> {
    [commit, HASH_TYPE_DM, start, stop]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect()
}

/// `(start, stop)` from a stored value; None for a malformed value or an empty range
/// (GlusterFS writes 0..0 for a subvolume excluded from a directory).
pub fn decode(v: &[u8]) -> Option<(u32, u32)> {
    decode_with(v).map(|(_, start, stop)| (start, stop))
}

/// `(commit, start, stop)` from a stored value, as [`decode`].
pub fn decode_with(v: &[u8]) -> Option<(u32, u32, u32)> {
    if v.len() != 16 {
        return None;
    }
    let w = |i: usize| u32::from_be_bytes(v[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
    let (start, stop) = (w(2), w(3));
    if start == 0 && stop == 0 {
        return None;
    }
    Some((w(0), start, stop))
}

impl Layout {
    /// Equal ranges over `names.len()` subvolumes, as GlusterFS lays out a new directory: the
    /// subvolumes ordered by name, the first range going to the one the directory's path hashes
    /// to, the last range ending at 0xffffffff. Returns (subvolume index, start, stop).
    pub fn new_for(path: &str, names: &[String]) -> Layout {
        Layout::weighted(path, names, &vec![1; names.len()])
    }

    /// Ranges sized by `weights` (GlusterFS's weighted-rebalance: a subvolume's share of the
    /// hash space is its share of the total size); a weight of 0 leaves a subvolume out (a
    /// decommissioned one). Equal weights give exactly [`Layout::new_for`]'s ranges. The
    /// subvolumes are ordered by name and the first range goes to the one `path` hashes to,
    /// as GlusterFS lays a directory out.
    pub fn weighted(path: &str, names: &[String], weights: &[u64]) -> Layout {
        let mut order: Vec<usize> = (0..names.len()).filter(|i| weights[*i] > 0).collect();
        order.sort_by(|a, b| names[*a].cmp(&names[*b]));
        let n = order.len();
        if n == 0 {
            return Layout::default();
        }
        let first = (dm_hash(path.as_bytes()) as usize) % n;
        let equal = order.iter().all(|i| weights[*i] == weights[order[0]]);
        let total: u128 = order.iter().map(|i| weights[*i] as u128).sum();
        let chunk = 0xffff_ffffu32 / n as u32;
        let mut ranges = Vec::with_capacity(n);
        let mut start: u32 = 0;
        for j in 0..n {
            let subvol = order[(first + j) % n];
            let size = if equal {
                chunk
            } else {
                (0xffff_ffffu128 * weights[subvol] as u128 / total).max(1) as u32
            };
            let stop = if j == n - 1 {
                0xffff_ffff
            } else {
                start.wrapping_add(size - 1)
            };
            ranges.push(Range {
                start,
                stop,
                subvol,
            });
            start = start.wrapping_add(size);
        }
        Layout {
            ranges,
            commit: None,
        }
    }

    /// Gives the ranges to the subvolumes so that as much of the hash space as possible
    /// stays where `old` had it (GlusterFS's maximize-overlap), and so as few files as
    /// possible move. Only ranges of equal size change hands, so weights are kept.
    pub fn keep_overlap_with(&mut self, old: &Layout) {
        let overlap = |r: &Range, subvol: usize| -> u64 {
            old.range_of(subvol).map_or(0, |o| {
                let lo = r.start.max(o.start) as u64;
                let hi = r.stop.min(o.stop) as u64;
                (hi + 1).saturating_sub(lo)
            })
        };
        let n = self.ranges.len();
        // Pairwise swaps while one gains (GlusterFS swaps pairs the same way).
        for _ in 0..n * n {
            let mut best: Option<(usize, usize, u64)> = None;
            for a in 0..n {
                for b in a + 1..n {
                    let (ra, rb) = (self.ranges[a], self.ranges[b]);
                    // Equal but for the rounding the last range absorbs.
                    let (la, lb) = (
                        ra.stop.wrapping_sub(ra.start),
                        rb.stop.wrapping_sub(rb.start),
                    );
                    if la.abs_diff(lb) > n as u32 {
                        continue;
                    }
                    let now = overlap(&ra, ra.subvol) + overlap(&rb, rb.subvol);
                    let swapped = overlap(&ra, rb.subvol) + overlap(&rb, ra.subvol);
                    if swapped > now && best.is_none_or(|(_, _, g)| swapped - now > g) {
                        best = Some((a, b, swapped - now));
                    }
                }
            }
            let Some((a, b, _)) = best else { break };
            let sa = self.ranges[a].subvol;
            self.ranges[a].subvol = self.ranges[b].subvol;
            self.ranges[b].subvol = sa;
        }
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
            commit: None,
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
        assert_eq!(decode_with(&encode_with(7, 5, 10)), Some((7, 5, 10)));
    }

    #[test]
    fn a_new_subvolume_takes_a_third_and_the_rest_stays() {
        for dir in 0..20 {
            let path = format!("/d{dir}");
            let old = Layout::new_for(&path, &names(2));
            let mut new = Layout::weighted(&path, &names(3), &[1, 1, 1]);
            new.keep_overlap_with(&old);
            assert!(new.is_complete());
            // Of 3,000 names, about a third change subvolume (not two thirds).
            let moved = (0..3000)
                .filter(|i| {
                    let n = format!("f{i}");
                    old.for_name(&n) != new.for_name(&n)
                })
                .count();
            assert!(moved < 1100, "{path}: {moved} of 3000 names moved");
        }
    }

    #[test]
    fn weighted_layouts_follow_sizes_and_leave_out_weight_zero() {
        let l = Layout::weighted("/d", &names(3), &[1, 3, 0]);
        assert!(l.is_complete());
        assert_eq!(l.ranges.len(), 2);
        assert!(l.range_of(2).is_none());
        let span = |i: usize| {
            let r = l.range_of(i).unwrap();
            (r.stop - r.start) as f64
        };
        let ratio = span(1) / span(0);
        assert!((ratio - 3.0).abs() < 0.01, "{ratio}");
        assert_eq!(
            Layout::weighted("/x", &names(4), &[5; 4]),
            Layout::new_for("/x", &names(4))
        );
    }
}
