//! AFR's transaction: lock → pre-op → the fop on every locked replica → post-op → unlock.
//!
//! The changelog follows AFR v2, which GlusterFS 10 writes: the pre-op adds 1 to
//! `trusted.afr.dirty` on every locked replica; the post-op takes it back on the replicas where
//! the fop succeeded and, on those same replicas, adds 1 to the counter of each replica that
//! failed or was away. A replica that failed keeps its dirty mark. So after a crash at any point
//! the marks say which replicas may hold a change the others lack.

use super::Afr;
use super::changelog::{self, TxnType};
use crate::fop::*;
use futures::future::join_all;
use std::sync::Arc;

/// What a transaction locks.
pub(super) enum LockOn {
    /// An inode's data or metadata range.
    Inode(Gfid, TxnType),
    /// Names in directories (parent, name), locked in gfid order so two never deadlock.
    Entries(Vec<(Gfid, String)>),
    /// Every name in a directory (entry heal).
    Dir(Gfid),
}

impl LockOn {
    /// The lock a heal of `ty` on `g` takes: the data or metadata range, or the directory.
    pub(super) fn for_heal(g: Gfid, ty: TxnType) -> LockOn {
        match ty {
            TxnType::Entry => LockOn::Dir(g),
            _ => LockOn::Inode(g, ty),
        }
    }
}

pub(super) struct Change {
    pub ty: TxnType,
    /// The inodes whose changelogs record the change (the file, or the parent directories).
    pub marks: Vec<Gfid>,
    pub lock: LockOn,
}

/// Data and metadata locks take disjoint ranges of the inode in the translator's domain, as
/// GlusterFS's AFR does, so a metadata change does not wait for a long write.
fn range(ty: TxnType) -> (u64, u64) {
    const META: u64 = i64::MAX as u64 - 1;
    match ty {
        TxnType::Metadata => (META, 1),
        _ => (0, META),
    }
}

impl Afr {
    /// Takes `lock` on every up replica; returns where it was got. First without waiting, on
    /// all replicas at once (one round trip when nobody else holds it); if any is held
    /// elsewhere, what was got is given back and the locks are taken one replica after another
    /// in a fixed order, waiting: two transactions racing for the same inode then meet at the
    /// first replica instead of each holding half (GlusterFS's AFR does the same).
    pub(super) async fn lock_all(&self, ctx: &Ctx, lock: &LockOn) -> Vec<bool> {
        let n = self.n();
        let up = self.up_list();
        let tries = join_all(up.iter().map(|i| self.lock_on(ctx, *i, lock, false))).await;
        let mut locked = vec![false; n];
        for (i, r) in up.iter().zip(&tries) {
            locked[*i] = r.is_ok();
        }
        if !tries.iter().any(|r| matches!(r, Err(Errno::EAGAIN))) {
            return locked;
        }
        join_all(
            (0..n)
                .filter(|i| locked[*i])
                .map(|i| self.unlock_on(ctx, i, lock, usize::MAX)),
        )
        .await;
        let mut locked = vec![false; n];
        for i in self.up_list() {
            match self.lock_on(ctx, i, lock, true).await {
                Ok(()) => locked[i] = true,
                Err(e) => {
                    tracing::debug!(xlator = %self.base.name, replica = %self.names[i], "transaction lock: {e}")
                }
            }
        }
        locked
    }

    /// Takes the transaction's locks on replica `i` (`wait`: until they are free).
    async fn lock_on(&self, ctx: &Ctx, i: usize, lock: &LockOn, wait: bool) -> Result<()> {
        let domain = self.base.name.as_str();
        match lock {
            LockOn::Inode(g, ty) => {
                let (start, len) = range(*ty);
                let fl = Flock {
                    typ: LockType::Write,
                    start,
                    len,
                    pid: 0,
                    owner: ctx.lk_owner,
                };
                let cmd = if wait { LockCmd::SetWait } else { LockCmd::Set };
                self.sub(i)
                    .inodelk(ctx, domain, &Loc::gfid(*g), cmd, &fl)
                    .await
                    .map(|_| ())
            }
            LockOn::Entries(names) => {
                let cmd = if wait {
                    EntrylkCmd::Lock
                } else {
                    EntrylkCmd::LockNb
                };
                for (k, (p, name)) in names.iter().enumerate() {
                    if names[..k].iter().any(|(q, m)| q == p && m == name) {
                        continue;
                    }
                    let r = self
                        .sub(i)
                        .entrylk(
                            ctx,
                            domain,
                            &Loc::gfid(*p),
                            Some(name),
                            cmd,
                            EntrylkType::Write,
                        )
                        .await;
                    if let Err(e) = r {
                        self.unlock_on(ctx, i, lock, k).await;
                        return Err(e);
                    }
                }
                Ok(())
            }
            LockOn::Dir(g) => {
                let cmd = if wait {
                    EntrylkCmd::Lock
                } else {
                    EntrylkCmd::LockNb
                };
                self.sub(i)
                    .entrylk(ctx, domain, &Loc::gfid(*g), None, cmd, EntrylkType::Write)
                    .await
            }
        }
    }

    /// Releases the first `count` of the locks `lock_on` took on replica `i`.
    pub(super) async fn unlock_on(&self, ctx: &Ctx, i: usize, lock: &LockOn, count: usize) {
        let domain = self.base.name.as_str();
        match lock {
            LockOn::Inode(g, ty) => {
                let (start, len) = range(*ty);
                let fl = Flock {
                    typ: LockType::Unlock,
                    start,
                    len,
                    pid: 0,
                    owner: ctx.lk_owner,
                };
                let _ = self
                    .sub(i)
                    .inodelk(ctx, domain, &Loc::gfid(*g), LockCmd::Set, &fl)
                    .await;
            }
            LockOn::Entries(names) => {
                for (k, (p, name)) in names.iter().enumerate().take(count) {
                    if names[..k].iter().any(|(q, m)| q == p && m == name) {
                        continue;
                    }
                    let _ = self
                        .sub(i)
                        .entrylk(
                            ctx,
                            domain,
                            &Loc::gfid(*p),
                            Some(name),
                            EntrylkCmd::Unlock,
                            EntrylkType::Write,
                        )
                        .await;
                }
            }
            LockOn::Dir(g) => {
                let _ = self
                    .sub(i)
                    .entrylk(
                        ctx,
                        domain,
                        &Loc::gfid(*g),
                        None,
                        EntrylkCmd::Unlock,
                        EntrylkType::Write,
                    )
                    .await;
            }
        }
    }

    /// Adds `dirty` and `pending` to the changelogs of every inode in `marks` on replica `i`.
    async fn mark(
        &self,
        ctx: &Ctx,
        i: usize,
        marks: &[Gfid],
        ty: TxnType,
        dirty: i32,
        pending: &[i32],
    ) -> Result<()> {
        let mut x = changelog::delta(&self.keys, ty, dirty, pending);
        if ty == TxnType::Entry {
            // A directory whose entries a replica missed also gets its data counter raised:
            // GlusterFS 10's granular entry heal reads that as "crawl the whole directory",
            // since we keep no per-name entry-changes index it could use instead.
            for (k, p) in self.keys.iter().zip(pending) {
                if *p != 0 {
                    x.insert(k.clone(), changelog::encode([*p, 0, *p]));
                }
            }
        }
        for g in marks {
            self.sub(i)
                .xattrop(ctx, &Loc::gfid(*g), XattropOp::AddArray, &x)
                .await?;
        }
        Ok(())
    }

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
        let locked = self.lock_all(&lctx, &change.lock).await;
        let unlock_all = |locked: Vec<bool>| {
            let (lctx, change) = (&lctx, &change);
            async move {
                join_all(
                    (0..n)
                        .filter(|i| locked[*i])
                        .map(|i| self.unlock_on(lctx, i, &change.lock, usize::MAX)),
                )
                .await;
            }
        };
        if !self.quorum_met(&locked) {
            unlock_all(locked).await;
            return Err(if self.quorum == super::Quorum::None {
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
            unlock_all(locked).await;
            return Err(Errno::ENOTCONN);
        }

        // Pre-op: dirty everywhere the change will be tried.
        let zeros = vec![0; n];
        let pre = join_all((0..n).map(|i| {
            let (lctx, change, zeros, locked) = (&lctx, &change, &zeros, &locked);
            async move {
                if !locked[i] {
                    return Err(Errno::ENOTCONN);
                }
                self.mark(lctx, i, &change.marks, change.ty, 1, zeros).await
            }
        }))
        .await;
        let ready: Vec<bool> = pre.iter().map(|r| r.is_ok()).collect();

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

        // Post-op.
        if !ok.iter().any(|o| *o) {
            // Failed everywhere: the replicas still agree, so only the dirty marks go.
            join_all((0..n).filter(|i| ready[*i]).map(|i| {
                let (lctx, change, zeros) = (&lctx, &change, &zeros);
                async move {
                    let _ = self
                        .mark(lctx, i, &change.marks, change.ty, -1, zeros)
                        .await;
                }
            }))
            .await;
            unlock_all(locked).await;
            return Err(super::first_error(&results));
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
        join_all((0..n).filter(|i| ok[*i]).map(|i| {
            let (lctx, change, blame) = (&lctx, &change, &blame);
            async move {
                if let Err(e) = self
                    .mark(lctx, i, &change.marks, change.ty, -1, blame)
                    .await
                {
                    tracing::warn!(xlator = %self.base.name, replica = %self.names[i], "post-op: {e}");
                }
            }
        }))
        .await;
        unlock_all(locked).await;

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
        let pick = (0..n)
            .find(|i| ok[*i] && !self.is_arbiter(*i))
            .or_else(|| (0..n).find(|i| ok[*i]))
            .expect("one succeeded");
        let mut results = results;
        results.swap_remove(pick)
    }
}

/// A data transaction's lock and dirty mark kept across the changes to one inode (GlusterFS's
/// eager-lock with delayed post-op): a stream of writes costs one lock, one pre-op, one post-op
/// and one unlock instead of four extra round trips each. Released when the inode has been idle
/// for the post-op delay, when its fd is flushed, and before a heal.
pub(super) struct Eager {
    owner: u64,
    locked: Vec<bool>,
    /// Where the pre-op marked dirty: the replicas changes go to.
    ready: Vec<bool>,
    /// Replicas a change missed: blamed at the post-op.
    failed: Vec<bool>,
    inflight: usize,
    /// Some change took effect: only then are the replicas that missed it blamed.
    changed: bool,
    /// Bumped by every change, so an idle timer knows whether it is still the last word.
    epoch: u64,
}

pub(super) type EagerSlot = Arc<tokio::sync::Mutex<Option<Eager>>>;

impl Afr {
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
                let (me, epoch, slot) = (self.clone(), e.epoch, slot.clone());
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
            if any_ok && let Some(mut info) = self.inodes.get_mut(&g) {
                for (k, good) in info.good.iter_mut().enumerate() {
                    *good &= !e.failed[k];
                }
            }
        }
        if !any_ok {
            return Err(super::first_error(&results));
        }
        let pick = (0..n)
            .find(|i| ok[*i] && !self.is_arbiter(*i))
            .or_else(|| (0..n).find(|i| ok[*i]))
            .expect("one succeeded");
        let mut results = results;
        results.swap_remove(pick)
    }

    /// Lock and pre-op for an eager data transaction.
    async fn eager_acquire(&self, g: Gfid) -> Result<Eager> {
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
        Err(if self.quorum == super::Quorum::None {
            Errno::ENOTCONN
        } else {
            Errno::EROFS
        })
    }

    /// Post-op and unlock of an eager data transaction.
    async fn eager_release(&self, g: Gfid, e: Eager) {
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
                if let Err(err) = self.mark(lctx, i, &[g], TxnType::Data, -1, blame).await {
                    tracing::warn!(xlator = %self.base.name, replica = %self.names[i], "post-op: {err}");
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
