//! Directories this client made, while it knows every name in them: a name it does not know
//! is then known not to exist, so the lookup before each create in a new directory (a `tar x`,
//! an `rsync`, a bench) costs no round trip. GlusterFS's nl-cache keeps the same knowledge.
//!
//! The knowledge goes at anything that could put a name there unseen: another client's change
//! of the directory (an upcall), a change of ours whose outcome is not kept here (a create
//! whose name was not settled, a failed unlink, a rename into it), any trim of the names, and
//! the cache's timeout.

use super::MdCache;
use crate::fop::{Gfid, Iatt, Result};
use std::time::Instant;

impl MdCache {
    /// Whether every name in `p` is known here.
    pub(super) fn all_names_known(&self, p: &Gfid) -> bool {
        let Some(c) = self.complete.get(p).map(|c| *c) else {
            return false;
        };
        if !self.fresh(c.1) {
            self.complete.remove(p);
            return false;
        }
        self.dir_inval.get(p).is_none_or(|d| d.0 <= c.0)
    }

    /// After our create-like change `e` of `n` in `p`: the parent keeps its knowledge only if
    /// the new name was kept, and a new directory starts with all its names known (none).
    pub(super) fn after_create(&self, p: Gfid, n: &str, e: u64, r: &Result<Iatt>) {
        let kept = r.as_ref().is_ok_and(|ia| {
            self.names
                .get(&(p, n.to_string()))
                .is_some_and(|named| named.gfid == Some(ia.gfid))
        });
        if !kept {
            self.complete.remove(&p);
            return;
        }
        if let Ok(ia) = r
            && ia.is_dir()
        {
            self.complete.insert(ia.gfid, (e, Instant::now()));
        }
    }

    /// After our unlink or rmdir in `p`: one that failed may have left the name in place,
    /// which the cache no longer holds.
    pub(super) fn after_remove<T>(&self, p: Gfid, r: &Result<T>) {
        if r.is_err() {
            self.complete.remove(&p);
        }
    }
}
