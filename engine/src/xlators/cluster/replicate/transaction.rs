//! AFR's transaction: lock → pre-op → the fop on every locked replica → post-op → unlock.
//!
//! The changelog follows AFR v2, which GlusterFS 10 writes: the pre-op adds 1 to
//! `trusted.afr.dirty` on every locked replica; the post-op takes it back on the replicas where
//! the fop succeeded and, on those same replicas, adds 1 to the counter of each replica that
//! failed or was away. A replica that failed keeps its dirty mark. So after a crash at any point
//! the marks say which replicas may hold a change the others lack.

use super::changelog::TxnType;
use super::common::{Afr, EagerSlot, Quorum, first_error};
use super::lock::{Change, LockOn};
use crate::fop::*;
use futures::future::join_all;
use std::sync::Arc;

impl Afr {
    pub(super) async fn transact<T, F, Fut>(self: &Arc<Self>, change: Change, f: F) -> Result<T>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if let (true, TxnType::Data, LockOn::Inode(g, _)) =
            (self.eager_lock, change.ty, &change.lock)
        {
            return self.transact_eager(*g, f).await;
        }
        self.check_quorum()?;
        let n = self.n();
        let lctx = Ctx {
            lk_owner: self.next_owner(),
            ..Ctx::root()
        };
        self.wait_released(&change.lock).await;
        // Lock and pre-op (dirty everywhere the change will be tried) in one request.
        let (locked, ready) = self.lock_and_mark(&lctx, &change).await;
        let give_up = |locked: Vec<bool>, ready: Vec<bool>| {
            let (lctx, change) = (&lctx, &change);
            async move {
                self.unmark_and_unlock(lctx, change, &locked, &ready).await;
            }
        };
        if !self.quorum_met(&locked) {
            give_up(locked, ready).await;
            return Err(if self.quorum == Quorum::None {
                Errno::ENOTCONN
            } else {
                Errno::EROFS
            });
        }

        // With an arbiter, a data change needs a good data replica among those locked: the
        // arbiter holds no data, so the change would otherwise land only on a stale copy
        // (GlusterFS's arbiter fails these with ENOTCONN too).
        if change.ty == TxnType::Data
            && let Some(g) = change.marks.first()
            && self.arbiter_refuses(*g, &locked).await
        {
            give_up(locked, ready).await;
            return Err(Errno::ENOTCONN);
        }

        let results = join_all((0..n).map(|i| {
            let ready = &ready;
            let f = &f;
            async move {
                if !ready[i] {
                    return Err(Errno::ENOTCONN);
                }
                f(i).await
            }
        }))
        .await;
        let ok: Vec<bool> = results.iter().map(|r| r.is_ok()).collect();

        // Post-op and unlock in one request.
        if !ok.iter().any(|o| *o) {
            // Failed everywhere: the replicas still agree, so only the dirty marks go.
            give_up(locked, ready).await;
            return Err(first_error(&results));
        }
        if ok.iter().all(|o| *o) {
            self.post_op_and_unlock_behind(lctx, change, locked);
            return self.answer(results, &ok);
        }
        let blame: Vec<i32> = ok.iter().map(|o| if *o { 0 } else { 1 }).collect();
        if blame.iter().any(|b| *b != 0) {
            for (i, r) in results.iter().enumerate() {
                if let Err(e) = r {
                    // A replica that is away misses every change: "replica is down" said so once.
                    if *e == Errno::ENOTCONN {
                        tracing::debug!(xlator = %self.base.name, replica = %self.names[i], ty = ?change.ty, "change missed a replica that is away; marked for heal");
                    } else {
                        tracing::warn!(xlator = %self.base.name, replica = %self.names[i], ty = ?change.ty, "change failed on one replica ({e}); marked for heal");
                    }
                }
            }
        }
        self.post_op_and_unlock(&lctx, &change, &ok, &blame, &locked)
            .await;

        // What is known now: the replicas that took the change are the good ones.
        if blame.iter().any(|b| *b != 0) && change.ty != TxnType::Metadata {
            for g in &change.marks {
                if let Some(mut info) = self.inodes.get_mut(g) {
                    for (k, good) in info.good.iter_mut().enumerate() {
                        *good &= ok[k];
                    }
                }
            }
        }
        self.answer(results, &ok)
    }

    /// The caller's answer among the replicas' results: a data replica's that succeeded
    /// (the arbiter's holds no data), else any that succeeded. One must have.
    fn answer<T>(&self, mut results: Vec<Result<T>>, ok: &[bool]) -> Result<T> {
        let n = results.len();
        let pick = (0..n)
            .find(|i| ok[*i] && !self.is_arbiter(*i))
            .or_else(|| (0..n).find(|i| ok[*i]))
            .expect("one succeeded");
        results.swap_remove(pick)
    }

    /// With an arbiter: true when no replica in `usable` holds good data of `g` (what was
    /// learnt is checked again first, since another process may have healed it since).
    async fn arbiter_refuses(self: &Arc<Self>, g: Gfid, usable: &[bool]) -> bool {
        let Some(a) = self.arbiter else {
            return false;
        };
        let bad = |good: &[bool]| !(0..self.n()).any(|i| i != a && usable[i] && good[i]);
        if !self.inodes.get(&g).is_some_and(|i| bad(&i.good)) {
            return false;
        }
        let results = self
            .lookup_all(&Ctx::root(), &Loc::gfid(g), &Xattrs::new())
            .await;
        if results.iter().all(|r| r.is_err()) {
            return false;
        }
        self.learn(g, &results, &Loc::gfid(g));
        self.inodes.get(&g).is_some_and(|i| bad(&i.good))
    }

    async fn transact_eager<T, F, Fut>(self: &Arc<Self>, g: Gfid, f: F) -> Result<T>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.check_quorum()?;
        let n = self.n();
        let slot: EagerSlot = self.eager.entry(g).or_default().clone();
        let ready = {
            let mut st = slot.lock().await;
            if st.is_none() {
                *st = Some(self.eager_acquire(g).await?);
            }
            let e = st.as_mut().expect("set above");
            let usable: Vec<bool> = (0..n).map(|i| e.ready[i] && !e.failed[i]).collect();
            if self.arbiter_refuses(g, &usable).await {
                if e.inflight == 0 {
                    let e = st.take().expect("checked");
                    self.eager_release(g, e).await;
                }
                return Err(Errno::ENOTCONN);
            }
            e.inflight += 1;
            e.epoch += 1;
            e.ready.clone()
        };
        let results = join_all((0..n).map(|i| {
            let ready = &ready;
            let f = &f;
            async move {
                if !ready[i] || !self.is_up(i) {
                    return Err(Errno::ENOTCONN);
                }
                f(i).await
            }
        }))
        .await;
        let ok: Vec<bool> = results.iter().map(|r| r.is_ok()).collect();
        let any_ok = ok.iter().any(|o| *o);
        {
            let mut st = slot.lock().await;
            let e = st.as_mut().expect("held while changes are in flight");
            // A change that failed everywhere left the replicas equal: nobody is blamed.
            e.changed |= any_ok;
            if any_ok {
                for (i, r) in results.iter().enumerate() {
                    if let Err(err) = r
                        && !e.failed[i]
                    {
                        e.failed[i] = true;
                        if *err == Errno::ENOTCONN {
                            tracing::debug!(xlator = %self.base.name, replica = %self.names[i], %g, "change missed a replica that is away; marked for heal");
                        } else {
                            tracing::warn!(xlator = %self.base.name, replica = %self.names[i], %g, "change failed on one replica ({err}); marked for heal");
                        }
                    }
                }
            }
            e.inflight -= 1;
            if e.inflight == 0 {
                self.release_when_idle(g, slot.clone(), e.epoch);
            }
            if any_ok && let Some(mut info) = self.inodes.get_mut(&g) {
                for (k, good) in info.good.iter_mut().enumerate() {
                    *good &= !e.failed[k];
                }
            }
        }
        if !any_ok {
            return Err(first_error(&results));
        }
        self.answer(results, &ok)
    }

    /// An entry fop in `parent`: locked on the name, marked on the parent.
    pub(super) async fn entry_txn<T, F, Fut>(
        self: &Arc<Self>,
        loc: &Loc,
        also: Option<&Loc>,
        f: F,
    ) -> Result<T>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut names = vec![(loc.parent()?, loc.name()?.to_string())];
        if let Some(o) = also {
            names.push((o.parent()?, o.name()?.to_string()));
        }
        let marks: Vec<Gfid> = {
            let mut m: Vec<Gfid> = names.iter().map(|(p, _)| *p).collect();
            m.dedup();
            m
        };
        self.transact(
            Change {
                ty: TxnType::Entry,
                marks,
                lock: LockOn::Entries(names),
            },
            f,
        )
        .await
    }

    /// A data or metadata change of inode `g`: locked on its range, marked on the inode.
    pub(super) async fn inode_txn<T, F, Fut>(
        self: &Arc<Self>,
        g: Gfid,
        ty: TxnType,
        f: F,
    ) -> Result<T>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.transact(
            Change {
                ty,
                marks: vec![g],
                lock: LockOn::Inode(g, ty),
            },
            f,
        )
        .await
    }
}
