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
    /// Takes the transaction's locks on replica `i`; false when it could not (it is away).
    async fn lock_on(&self, ctx: &Ctx, i: usize, lock: &LockOn) -> Result<()> {
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
                self.sub(i)
                    .inodelk(ctx, domain, &Loc::gfid(*g), LockCmd::SetWait, &fl)
                    .await
                    .map(|_| ())
            }
            LockOn::Entries(names) => {
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
                            EntrylkCmd::Lock,
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
        }
    }

    /// Releases the first `count` of the locks `lock_on` took on replica `i`.
    async fn unlock_on(&self, ctx: &Ctx, i: usize, lock: &LockOn, count: usize) {
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
        let x = changelog::delta(&self.keys, ty, dirty, pending);
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
        self.check_quorum()?;
        let n = self.n();
        let lctx = Ctx {
            lk_owner: self.next_owner(),
            ..Ctx::root()
        };
        // Locks one replica after another in a fixed order: two transactions racing for the
        // same inode then meet at the first replica instead of each holding half.
        let mut locked = vec![false; n];
        for i in self.up_list() {
            match self.lock_on(&lctx, i, &change.lock).await {
                Ok(()) => locked[i] = true,
                Err(e) => {
                    tracing::debug!(xlator = %self.base.name, replica = %self.names[i], "transaction lock: {e}")
                }
            }
        }
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
                    tracing::warn!(xlator = %self.base.name, replica = %self.names[i], ty = ?change.ty, "change missed a replica ({e}); marked for heal");
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
