//! Eager locking with delayed post-op (GlusterFS's eager-lock): a data transaction's lock and
//! dirty mark taken once and kept across the changes to an inode, released when it goes idle.

use super::changelog::TxnType;
use super::common::{Afr, Eager, Quorum};
use super::lock::LockOn;
use crate::fop::*;
use futures::future::join_all;
use std::sync::Arc;

impl Afr {
    /// Lock and pre-op for an eager data transaction.
    pub(super) async fn eager_acquire(&self, g: Gfid) -> Result<Eager> {
        let n = self.n();
        let lock = LockOn::Inode(g, TxnType::Data);
        let owner = self.next_owner();
        let lctx = Ctx {
            lk_owner: owner,
            ..Ctx::root()
        };
        let locked = self.lock_all(&lctx, &lock).await;
        let zeros = vec![0; n];
        if self.quorum_met(&locked) {
            let pre = join_all((0..n).map(|i| {
                let (lctx, zeros, locked) = (&lctx, &zeros, &locked);
                async move {
                    locked[i]
                        && self
                            .mark(lctx, i, &[g], TxnType::Data, 1, zeros)
                            .await
                            .is_ok()
                }
            }))
            .await;
            if pre.iter().any(|p| *p) {
                return Ok(Eager {
                    owner,
                    locked,
                    ready: pre,
                    failed: vec![false; n],
                    inflight: 0,
                    changed: false,
                    epoch: 0,
                });
            }
        }
        join_all(
            (0..n)
                .filter(|i| locked[*i])
                .map(|i| self.unlock_on(&lctx, i, &lock, usize::MAX)),
        )
        .await;
        Err(if self.quorum == Quorum::None {
            Errno::ENOTCONN
        } else {
            Errno::EROFS
        })
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
        join_all((0..n).filter(|i| e.ready[*i] && !e.failed[*i]).map(|i| {
            let (lctx, blame) = (&lctx, &blame);
            async move {
                match self.mark(lctx, i, &[g], TxnType::Data, -1, blame).await {
                    Ok(_) => {}
                    // Removed while the lock was held (a rebalance moved it, a client
                    // deleted it): nothing is left to mark.
                    Err(Errno::ESTALE) | Err(Errno::ENOENT) => {
                        tracing::debug!(xlator = %self.base.name, replica = %self.names[i], %g, "post-op of a removed file")
                    }
                    Err(err) => {
                        tracing::warn!(xlator = %self.base.name, replica = %self.names[i], "post-op: {err}")
                    }
                }
            }
        }))
        .await;
        let lock = LockOn::Inode(g, TxnType::Data);
        join_all(
            (0..n)
                .filter(|i| e.locked[*i])
                .map(|i| self.unlock_on(&lctx, i, &lock, usize::MAX)),
        )
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

    /// Ends every eager transaction (the graph is going away).
    pub(super) async fn eager_flush_all(&self) {
        let all: Vec<Gfid> = self.eager.iter().map(|e| *e.key()).collect();
        for g in all {
            self.eager_flush(g).await;
        }
    }
}
