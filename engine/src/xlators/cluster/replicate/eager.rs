//! Eager locking with delayed post-op (GlusterFS's eager-lock): a data transaction's lock and
//! dirty mark taken once and kept across the changes to an inode, released when it goes idle.

use super::common::{Afr, Eager, EagerSlot, Quorum};
use super::lock::Change;
use crate::fop::*;
use std::sync::Arc;

impl Afr {
    /// Lock and pre-op for an eager data transaction.
    pub(super) async fn eager_acquire(&self, g: Gfid) -> Result<Eager> {
        let n = self.n();
        let owner = self.next_owner();
        let lctx = Ctx {
            lk_owner: owner,
            ..Ctx::root()
        };
        let change = Change::data(g);
        let (locked, ready) = self.lock_and_mark(&lctx, &change).await;
        if self.quorum_met(&locked) && ready.iter().any(|r| *r) {
            return Ok(Eager {
                owner,
                locked,
                ready,
                failed: vec![false; n],
                inflight: 0,
                changed: false,
                epoch: 0,
            });
        }
        self.unmark_and_unlock(&lctx, &change, &locked, &ready)
            .await;
        Err(if self.quorum == Quorum::None {
            Errno::ENOTCONN
        } else {
            Errno::EROFS
        })
    }

    /// Takes on the eager data transaction a create of `g` left behind: the bricks in `locked`
    /// granted the data lock to `owner` and hold the dirty mark (`data_lock_at_create`). It
    /// ends as one `eager_acquire` began would: after the post-op delay idle, or at close.
    pub(super) fn eager_adopt(self: &Arc<Self>, g: Gfid, owner: u64, locked: Vec<bool>) {
        if !locked.iter().any(|l| *l) {
            return;
        }
        let n = self.n();
        let e = Eager {
            owner,
            ready: locked.clone(),
            locked,
            failed: vec![false; n],
            inflight: 0,
            changed: false,
            epoch: 0,
        };
        if !self.quorum_met(&e.locked) {
            // Too few copies to write through: given back, and the first write takes the
            // lock the usual way (and fails as it would).
            let me = self.clone();
            tokio::spawn(async move { me.eager_release(g, e).await });
            return;
        }
        let slot: EagerSlot = Arc::new(tokio::sync::Mutex::new(Some(e)));
        match self.eager.entry(g) {
            dashmap::mapref::entry::Entry::Vacant(v) => {
                v.insert(slot.clone());
                self.release_when_idle(g, slot, 0);
            }
            // A slot on an inode just made cannot be; if one is, it stands and ours goes.
            dashmap::mapref::entry::Entry::Occupied(_) => {
                let me = self.clone();
                tokio::spawn(async move {
                    if let Some(e) = slot.lock().await.take() {
                        me.eager_release(g, e).await;
                    }
                });
            }
        }
    }

    /// Ends the eager transaction in `slot` once it has been idle for the post-op delay, if
    /// nothing changed it after `epoch`.
    pub(super) fn release_when_idle(self: &Arc<Self>, g: Gfid, slot: EagerSlot, epoch: u64) {
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(me.post_op_delay).await;
            let mut st = slot.lock().await;
            if st
                .as_ref()
                .is_some_and(|e| e.inflight == 0 && e.epoch == epoch)
            {
                let e = st.take().expect("checked");
                me.eager_release(g, e).await;
                me.eager.remove_if(&g, |_, s| Arc::ptr_eq(s, &slot));
            }
        });
    }

    /// Post-op and unlock of an eager data transaction.
    pub(super) async fn eager_release(&self, g: Gfid, e: Eager) {
        let n = self.n();
        let lctx = Ctx {
            lk_owner: e.owner,
            ..Ctx::root()
        };
        let blame: Vec<i32> = (0..n)
            .map(|i| i32::from(e.changed && (e.failed[i] || !e.ready[i])))
            .collect();
        let post: Vec<bool> = (0..n).map(|i| e.ready[i] && !e.failed[i]).collect();
        self.post_op_and_unlock(&lctx, &Change::data(g), &post, &blame, &e.locked)
            .await;
    }

    /// Ends the eager transaction on `g` now (flush, fsync, a heal, shutdown) unless changes
    /// are in flight.
    pub(super) async fn eager_flush(&self, g: Gfid) {
        let Some(slot) = self.eager.get(&g).map(|s| s.clone()) else {
            return;
        };
        let mut st = slot.lock().await;
        if st.as_ref().is_some_and(|e| e.inflight == 0) {
            let e = st.take().expect("checked");
            self.eager_release(g, e).await;
            self.eager.remove_if(&g, |_, s| Arc::ptr_eq(s, &slot));
        }
    }

    /// `eager_flush` at a close: behind the answer when every replica took every change, since
    /// then the post-op only ends dirty marks on equal copies (see `post_op_and_unlock_behind`);
    /// at once when a replica is to be blamed, so the close returns with the blame recorded.
    pub(super) async fn eager_flush_at_close(self: &Arc<Self>, g: Gfid) {
        let Some(slot) = self.eager.get(&g).map(|s| s.clone()) else {
            return;
        };
        let clean = slot.try_lock().is_ok_and(|st| {
            st.as_ref()
                .is_some_and(|e| e.ready.iter().all(|r| *r) && !e.failed.iter().any(|f| *f))
        });
        if clean {
            let me = self.clone();
            tokio::spawn(async move { me.eager_flush(g).await });
        } else {
            self.eager_flush(g).await;
        }
    }

    /// Ends every eager transaction (the graph is going away).
    pub(super) async fn eager_flush_all(&self) {
        let all: Vec<Gfid> = self.eager.iter().map(|e| *e.key()).collect();
        for g in all {
            self.eager_flush(g).await;
        }
    }
}
