//! AFR's changelog: the `trusted.afr.*` counters replicas keep about each other, and the rules
//! that read them, as GlusterFS 10 writes and reads them, so either system can heal what the
//! other marked.
//!
//! Each value is three big-endian 32-bit counters, one per transaction type (data, metadata,
//! entry). Brick *i* holds `trusted.afr.<vol>-client-<j>` for every replica *j*: non-zero means
//! "*i* saw operations that *j* missed" (*i* accuses *j*). `trusted.afr.dirty` on brick *i*
//! means an operation was in flight there (AFR v2's pre-op marks it, the post-op clears it).
//! The key names come from the `afr-pending-xattr` option (`<vol>-client-N` by default).

use crate::Xattrs;
use crate::fop::keys;
use bytes::Bytes;

/// What a transaction changes; the index into each changelog value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TxnType {
    Data = 0,
    Metadata = 1,
    Entry = 2,
}

/// Fewer replies than this cannot decide a heal (GlusterFS's `AFR_SH_MIN_PARTICIPANTS`).
pub const MIN_PARTICIPANTS: usize = 2;

/// A changelog value: the three counters, big-endian.
pub fn encode(counts: [i32; 3]) -> Bytes {
    let mut v = Vec::with_capacity(12);
    for c in counts {
        v.extend_from_slice(&c.to_be_bytes());
    }
    Bytes::from(v)
}

/// The three counters of a changelog value; GlusterFS reads them as signed, so a counter
/// decremented below zero by a crash between pre-op and post-op still counts as non-zero.
pub fn decode(v: &[u8]) -> Option<[i32; 3]> {
    if v.len() < 12 {
        return None;
    }
    let at = |i: usize| i32::from_be_bytes([v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]]);
    Some([at(0), at(1), at(2)])
}

/// `trusted.afr.<name>` for each replica, from `afr-pending-xattr` names or the defaults.
pub fn pending_keys(volume: &str, children: usize, names: Option<&[String]>) -> Vec<String> {
    match names {
        Some(n) => n.iter().map(|n| format!("trusted.afr.{n}")).collect(),
        None => (0..children)
            .map(|i| format!("trusted.afr.{volume}-client-{i}"))
            .collect(),
    }
}

/// The counters of one transaction type read off every replica's reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changelog {
    /// `dirty[i]`: brick *i*'s `trusted.afr.dirty`.
    pub dirty: Vec<i32>,
    /// `matrix[i][j]`: brick *i*'s counter for replica *j*.
    pub matrix: Vec<Vec<i32>>,
}

impl Changelog {
    /// From each replica's xattrs (`None` for a replica that did not answer).
    pub fn extract(replies: &[Option<&Xattrs>], keys_of: &[String], ty: TxnType) -> Changelog {
        let n = replies.len();
        let mut dirty = vec![0; n];
        let mut matrix = vec![vec![0; n]; n];
        let counter = |x: &Xattrs, key: &str| {
            x.get(key)
                .and_then(|v| decode(v))
                .map_or(0, |c| c[ty as usize])
        };
        for (i, r) in replies.iter().enumerate() {
            let Some(x) = r else { continue };
            dirty[i] = counter(x, keys::AFR_DIRTY);
            for (j, key) in keys_of.iter().enumerate().take(n) {
                matrix[i][j] = counter(x, key);
            }
        }
        Changelog { dirty, matrix }
    }

    /// True when any replica accuses any replica (itself included) or is dirty.
    pub fn needs_heal(&self) -> bool {
        self.dirty.iter().any(|d| *d != 0) || self.matrix.iter().flatten().any(|c| *c != 0)
    }
}

/// Which replicas may serve as a heal's source and which must be healed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Direction {
    pub sources: Vec<bool>,
    pub sinks: Vec<bool>,
    /// Operations each replica witnessed (its dirty count and, for a self-accusing replica,
    /// what it recorded against others): the tie-breaker when every replica is a source.
    pub witness: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("fewer than {MIN_PARTICIPANTS} replicas answered; a heal cannot be decided")]
pub struct TooFewReplies;

impl Direction {
    /// No replica can be a source: split-brain, to be resolved by a policy or an operator.
    pub fn split_brain(&self) -> bool {
        !self.sources.iter().any(|s| *s)
    }

    pub fn needs_heal(&self) -> bool {
        self.sinks.iter().any(|s| *s)
    }
}

/// GlusterFS's `afr_selfheal_find_direction`: replicas accused by a replica that does not
/// accuse itself are sinks; the rest of those that answered (`locked_on`) are sources. A
/// self-accusing replica is a "fool": its accusations do not count.
pub fn find_direction(c: &Changelog, locked_on: &[bool]) -> Result<Direction, TooFewReplies> {
    let n = locked_on.len();
    if locked_on.iter().filter(|l| **l).count() < MIN_PARTICIPANTS {
        return Err(TooFewReplies);
    }
    let m = &c.matrix;
    let self_accused: Vec<bool> = (0..n).map(|i| m[i][i] != 0).collect();
    let mut accused = vec![false; n];
    let mut pending = vec![false; n];
    for i in 0..n {
        for j in 0..n {
            if m[i][j] != 0 {
                if !self_accused[i] {
                    accused[j] = true;
                }
                if i != j {
                    pending[i] = true;
                }
            }
        }
    }
    let sources: Vec<bool> = (0..n).map(|i| !accused[i] && locked_on[i]).collect();
    let mut sinks = vec![false; n];
    for i in (0..n).filter(|i| sources[*i] && !self_accused[*i]) {
        for j in 0..n {
            if m[i][j] != 0 {
                sinks[j] = true;
            }
        }
    }
    let mut witness = vec![0u64; n];
    for i in (0..n).filter(|i| self_accused[*i]) {
        for j in (0..n).filter(|j| *j != i) {
            witness[i] += m[i][j].unsigned_abs() as u64;
        }
    }
    if !sources.iter().any(|s| *s) {
        for (s, l) in sinks.iter_mut().zip(locked_on) {
            *s |= *l;
        }
    }
    // A self-accusing mark with nothing pending on others is AFR v1's way of saying dirty.
    let any_pending = pending.iter().any(|p| *p);
    for i in (0..n).filter(|i| self_accused[*i] && (!any_pending || pending[*i])) {
        witness[i] += m[i][i].unsigned_abs() as u64;
    }
    for (w, d) in witness.iter_mut().zip(&c.dirty) {
        *w += u64::from(d.unsigned_abs());
    }
    Ok(Direction {
        sources,
        sinks,
        witness,
    })
}

/// The xattrop values that move a replica's counters by `dirty` and `pending[j]` for one
/// transaction type (AFR v2: the pre-op adds 1 to dirty everywhere; the post-op takes it back
/// and, on the replicas that succeeded, adds 1 against each that failed).
pub fn delta(keys_of: &[String], ty: TxnType, dirty: i32, pending: &[i32]) -> Xattrs {
    let at = |v: i32| {
        let mut c = [0; 3];
        c[ty as usize] = v;
        encode(c)
    };
    let mut x = Xattrs::new();
    x.insert(keys::AFR_DIRTY.to_string(), at(dirty));
    for (k, p) in keys_of.iter().zip(pending) {
        x.insert(k.clone(), at(*p));
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys2() -> Vec<String> {
        pending_keys("gv", 2, None)
    }

    /// Xattrs of one brick: its dirty counter and its counters against each replica (data).
    fn brick(dirty: i32, against: &[i32]) -> Xattrs {
        let mut x = Xattrs::new();
        x.insert(keys::AFR_DIRTY.into(), encode([dirty, 0, 0]));
        for (k, v) in keys2().iter().zip(against) {
            x.insert(k.clone(), encode([*v, 0, 0]));
        }
        x
    }

    fn direction(bricks: &[Xattrs]) -> Result<Direction, TooFewReplies> {
        let replies: Vec<Option<&Xattrs>> = bricks.iter().map(Some).collect();
        let c = Changelog::extract(&replies, &keys2(), TxnType::Data);
        find_direction(&c, &vec![true; bricks.len()])
    }

    #[test]
    fn values_are_three_big_endian_counters() {
        let v = encode([1, -1, 0x0102_0304]);
        assert_eq!(&v[..], &[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]);
        assert_eq!(decode(&v), Some([1, -1, 0x0102_0304]));
        assert_eq!(decode(&v[..8]), None);
        assert_eq!(
            pending_keys("gv", 2, None),
            ["trusted.afr.gv-client-0", "trusted.afr.gv-client-1"]
        );
        let names = vec!["gv-client-7".to_string()];
        assert_eq!(
            pending_keys("gv", 1, Some(&names)),
            ["trusted.afr.gv-client-7"]
        );
    }

    #[test]
    fn clean_replicas_are_all_sources() {
        let d = direction(&[brick(0, &[0, 0]), brick(0, &[0, 0])]).unwrap();
        assert_eq!(d.sources, [true, true]);
        assert!(!d.needs_heal() && !d.split_brain());
    }

    #[test]
    fn the_accused_replica_is_the_sink() {
        // Brick 0 saw a write brick 1 missed.
        let d = direction(&[brick(0, &[0, 3]), brick(0, &[0, 0])]).unwrap();
        assert_eq!(d.sources, [true, false]);
        assert_eq!(d.sinks, [false, true]);
    }

    #[test]
    fn mutual_accusation_is_split_brain() {
        let d = direction(&[brick(0, &[0, 1]), brick(0, &[2, 0])]).unwrap();
        assert!(d.split_brain());
        assert_eq!(d.sinks, [true, true]);
    }

    #[test]
    fn dirty_everywhere_leaves_every_replica_a_source_with_witnesses() {
        let d = direction(&[brick(1, &[0, 0]), brick(2, &[0, 0])]).unwrap();
        assert_eq!(d.sources, [true, true]);
        assert!(!d.needs_heal());
        assert_eq!(d.witness, [1, 2]);
    }

    #[test]
    fn a_self_accusing_replica_cannot_accuse_others() {
        // Brick 0 accuses itself and brick 1: a fool, whose marks accuse nobody (itself
        // included); what it recorded counts only as witnessed operations.
        let d = direction(&[brick(0, &[1, 1]), brick(0, &[0, 0])]).unwrap();
        assert_eq!(d.sources, [true, true]);
        assert_eq!(d.sinks, [false, false]);
        assert_eq!(d.witness, [2, 0]);
    }

    #[test]
    fn an_unanswered_replica_is_neither_source_nor_counted() {
        let x = [brick(0, &[0, 5]), brick(0, &[0, 0]), Xattrs::new()];
        let replies: Vec<Option<&Xattrs>> = vec![Some(&x[0]), Some(&x[1]), None];
        let keys = pending_keys("gv", 3, None);
        let c = Changelog::extract(&replies, &keys, TxnType::Data);
        let d = find_direction(&c, &[true, true, false]).unwrap();
        assert_eq!(d.sources, [true, false, false]);
        assert_eq!(d.sinks, [false, true, false]);
        assert_eq!(
            find_direction(&c, &[true, false, false]),
            Err(TooFewReplies)
        );
    }

    #[test]
    fn types_are_read_from_their_own_counter() {
        let mut x = Xattrs::new();
        x.insert(keys2()[1].clone(), encode([0, 4, 0]));
        let y = Xattrs::new();
        let replies = [Some(&x), Some(&y)];
        let data = Changelog::extract(&replies, &keys2(), TxnType::Data);
        let meta = Changelog::extract(&replies, &keys2(), TxnType::Metadata);
        assert!(!data.needs_heal());
        assert!(meta.needs_heal());
        assert_eq!(meta.matrix[0][1], 4);
    }

    #[test]
    fn transaction_deltas_set_only_their_type() {
        let pre = delta(&keys2(), TxnType::Entry, 1, &[0, 0]);
        assert_eq!(decode(&pre[keys::AFR_DIRTY]), Some([0, 0, 1]));
        let post = delta(&keys2(), TxnType::Entry, -1, &[0, 1]);
        assert_eq!(decode(&post[keys::AFR_DIRTY]), Some([0, 0, -1]));
        assert_eq!(decode(&post["trusted.afr.gv-client-1"]), Some([0, 0, 1]));
        assert_eq!(decode(&post["trusted.afr.gv-client-0"]), Some([0, 0, 0]));
    }
}
