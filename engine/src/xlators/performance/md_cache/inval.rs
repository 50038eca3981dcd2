//! md-cache's log of the last invalidations: what lets a reply that was in flight during a
//! change be kept when the change was about other inodes or names (see the module's doc).

use super::{MdCache, Ticket};
use crate::fop::Gfid;
use std::sync::atomic::Ordering;

/// The last invalidations, in count order: each count with the inodes it was about
/// (`Gfid::NULL`: everything). `floor` is the highest count some of whose entries were
/// dropped to keep it short: a fop that began before it cannot be cleared.
#[derive(Default)]
pub(super) struct InvalLog {
    entries: std::collections::VecDeque<(u64, Gfid)>,
    floor: u64,
}

/// The log's key for the name `n` in directory `p`: a change of one name does not make a
/// lookup of another name in the same directory stale. (A collision only keeps a reply
/// out of the cache.)
pub(super) fn name_key(p: &Gfid, n: &str) -> Gfid {
    use std::hash::{Hash, Hasher};
    let half = |seed: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (seed, p, n).hash(&mut h);
        h.finish().to_be_bytes()
    };
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&half(1));
    b[8..].copy_from_slice(&half(2));
    Gfid(b)
}

/// The log's key for every name in directory `p` ("/" is no name).
pub(super) fn dir_key(p: &Gfid) -> Gfid {
    name_key(p, "/")
}

/// Invalidations remembered for fops in flight: far more than can happen during one brick
/// round trip.
const INVAL_LOG: usize = 4096;

impl MdCache {
    /// Counts an invalidation of the inodes `about` (none: of everything); returns the new
    /// count.
    pub(super) fn bump(&self, about: &[Gfid]) -> u64 {
        let mut log = self.log.lock();
        let e = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        if about.is_empty() {
            log.entries.push_back((e, Gfid::NULL));
        }
        log.entries.extend(about.iter().map(|g| (e, *g)));
        while log.entries.len() > INVAL_LOG {
            let (dropped, _) = log.entries.pop_front().expect("longer than the cap");
            log.floor = dropped;
        }
        e
    }

    /// Whether nothing invalidated since `t` began was about any of `about` (besides the
    /// fop's own change).
    pub(super) fn clean(&self, t: Ticket, about: &[Gfid]) -> bool {
        let now = self.epoch.load(Ordering::SeqCst);
        if now == t.epoch {
            return true;
        }
        let log = self.log.lock();
        if log.floor > t.epoch {
            return false;
        }
        // Every count since `t` must be in the log (a bump counts and logs under the lock);
        // one that is not was made some other way and is taken as about everything.
        let mut counts = 0;
        let mut last = None;
        for (e, g) in log.entries.iter().rev().take_while(|(e, _)| *e > t.epoch) {
            if last != Some(*e) {
                counts += 1;
                last = Some(*e);
            }
            if Some(*e) != t.own && (g.is_null() || about.contains(g)) {
                return false;
            }
        }
        counts == now - t.epoch
    }
}
