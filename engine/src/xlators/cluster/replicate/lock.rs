//! The steps a transaction and a heal are made of (GlusterFS's afr-lk-common.c): locks taken
//! on every up replica, and the changelog marks of pre-op and post-op.

use super::changelog::{self, TxnType};
use super::common::{Afr, LockKey, Released};
use crate::fop::*;
use futures::future::join_all;
use std::sync::Arc;

/// One transaction's change: what it locks and whose changelogs record it.
pub(super) struct Change {
    pub ty: TxnType,
    /// The inodes whose changelogs record the change (the file, or the parent directories).
    pub marks: Vec<Gfid>,
    pub lock: LockOn,
}

impl Change {
    /// A data change of inode `g` (an eager transaction's).
    pub fn data(g: Gfid) -> Change {
        Change {
            ty: TxnType::Data,
            marks: vec![g],
            lock: LockOn::Inode(g, TxnType::Data),
        }
    }
}

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
    pub(super) fn keys(&self) -> Vec<LockKey> {
        match self {
            LockOn::Inode(g, ty) => vec![LockKey::Inode(*g, *ty == TxnType::Metadata)],
            LockOn::Entries(names) => names
                .iter()
                .map(|(p, n)| LockKey::Name(*p, n.clone()))
                .collect(),
            LockOn::Dir(g) => vec![LockKey::Dir(*g)],
        }
    }

    /// The lock a heal of `ty` on `g` takes: the data or metadata range, or the directory.
    pub(super) fn for_heal(g: Gfid, ty: TxnType) -> LockOn {
        match ty {
            TxnType::Entry => LockOn::Dir(g),
            _ => LockOn::Inode(g, ty),
        }
    }
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

/// The write lock on an inode's range for `ty`.
fn inode_flock(ty: TxnType, owner: u64) -> Flock {
    let (start, len) = range(ty);
    Flock {
        typ: LockType::Write,
        start,
        len,
        pid: 0,
        owner,
    }
}

impl Afr {
    /// What a create asks its bricks for so that it ends holding the eager data transaction
    /// `eager_acquire` would take: the dirty mark among the new inode's xattrs (a pre-op on a
    /// file with no changelog yet) and the data lock, granted with the inode.
    pub(super) fn data_lock_at_create(&self, owner: u64) -> (Xattrs, NewLock) {
        // The dirty counter alone: a new file has no counters against the other replicas.
        let mark = changelog::delta(&[], TxnType::Data, 1, &[]);
        let lock = NewLock {
            domain: self.base.name.clone(),
            lock: inode_flock(TxnType::Data, owner),
        };
        (mark, lock)
    }

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
    pub(super) async fn lock_on(
        &self,
        ctx: &Ctx,
        i: usize,
        lock: &LockOn,
        wait: bool,
    ) -> Result<()> {
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

    /// The changelog update of a pre-op (`dirty` 1) or post-op (`dirty` -1, `pending` the
    /// replicas blamed).
    fn mark_delta(&self, ty: TxnType, dirty: i32, pending: &[i32]) -> Xattrs {
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
        x
    }

    /// A lock from above: taken on every up replica in order; a refusal other than a lost
    /// connection is the answer (`lenient`: unlocks and queries, where any answer will do).
    pub(super) async fn lock_fop<T, F, Fut>(&self, f: F, lenient: bool) -> Result<T>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut out = None;
        let mut err = Errno::ENOTCONN;
        for i in self.up_list() {
            match f(i).await {
                Ok(v) => {
                    out.get_or_insert(v);
                }
                Err(e) if lenient || e == Errno::ENOTCONN => err = e,
                Err(e) => return Err(e),
            }
        }
        out.ok_or(err)
    }
}

/// A transaction's steps on one replica, sent as compound requests (GlusterFS 4's compound
/// fops): the locks with the pre-op in one request, the post-op with the unlocks in another,
/// so a transaction costs three round trips (with the fop) instead of five.
impl Afr {
    /// The lock requests `lock_on` makes, as steps.
    fn lock_steps(&self, owner: u64, lock: &LockOn, wait: bool) -> Vec<TxnStep> {
        let domain = self.base.name.clone();
        let entry = |loc: Loc, basename: Option<String>| TxnStep::Entrylk {
            domain: domain.clone(),
            loc,
            basename,
            cmd: if wait {
                EntrylkCmd::Lock
            } else {
                EntrylkCmd::LockNb
            },
            typ: EntrylkType::Write,
        };
        match lock {
            LockOn::Inode(g, ty) => vec![TxnStep::Inodelk {
                domain: domain.clone(),
                loc: Loc::gfid(*g),
                cmd: if wait { LockCmd::SetWait } else { LockCmd::Set },
                lock: inode_flock(*ty, owner),
            }],
            LockOn::Entries(names) => names
                .iter()
                .enumerate()
                .filter(|(k, (p, name))| !names[..*k].iter().any(|(q, m)| q == p && m == name))
                .map(|(_, (p, name))| entry(Loc::gfid(*p), Some(name.clone())))
                .collect(),
            LockOn::Dir(g) => vec![entry(Loc::gfid(*g), None)],
        }
    }

    /// What releases `locks` (steps from `lock_steps`).
    fn unlock_steps(locks: &[TxnStep]) -> Vec<TxnStep> {
        locks
            .iter()
            .map(|s| match s.clone() {
                TxnStep::Inodelk {
                    domain,
                    loc,
                    mut lock,
                    ..
                } => {
                    lock.typ = LockType::Unlock;
                    TxnStep::Inodelk {
                        domain,
                        loc,
                        cmd: LockCmd::Set,
                        lock,
                    }
                }
                TxnStep::Entrylk {
                    domain,
                    loc,
                    basename,
                    typ,
                    ..
                } => TxnStep::Entrylk {
                    domain,
                    loc,
                    basename,
                    cmd: EntrylkCmd::Unlock,
                    typ,
                },
                other => other,
            })
            .collect()
    }

    /// The xattrops `mark` sends, as steps.
    fn mark_steps(&self, marks: &[Gfid], ty: TxnType, dirty: i32, pending: &[i32]) -> Vec<TxnStep> {
        let x = self.mark_delta(ty, dirty, pending);
        marks
            .iter()
            .map(|g| TxnStep::Xattrop {
                loc: Loc::gfid(*g),
                op: XattropOp::AddArray,
                xattrs: x.clone(),
            })
            .collect()
    }

    /// Lock and pre-op on every up replica, one request each: `lock_all` then `mark(+1)`.
    /// Returns where the lock was got and where the pre-op was done too. As in `lock_all`,
    /// the first try does not wait; if any replica's lock is held elsewhere, what was done is
    /// undone and the replicas are taken one after another in order, waiting.
    pub(super) async fn lock_and_mark(&self, ctx: &Ctx, change: &Change) -> (Vec<bool>, Vec<bool>) {
        let n = self.n();
        let lock = &change.lock;
        let pre = self.mark_steps(&change.marks, change.ty, 1, &vec![0; n]);
        let one = |i: usize, wait: bool| {
            let pre = &pre;
            async move {
                let locks = self.lock_steps(ctx.lk_owner, lock, wait);
                let mut steps = locks.clone();
                steps.extend(pre.iter().cloned());
                match self.sub(i).txn_steps(ctx, &steps).await {
                    Ok(()) => Ok(true),
                    Err(f) if f.done >= locks.len() => {
                        tracing::debug!(xlator = %self.base.name, replica = %self.names[i], "pre-op: {}", f.error);
                        Ok(false)
                    }
                    Err(f) => {
                        if f.done > 0 {
                            let undo = Self::unlock_steps(&locks[..f.done]);
                            self.steps_lenient(ctx, i, &undo).await;
                        }
                        Err(f.error)
                    }
                }
            }
        };
        let up = self.up_list();
        let tries = join_all(up.iter().map(|i| one(*i, false))).await;
        let mut locked = vec![false; n];
        let mut ready = vec![false; n];
        for (i, r) in up.iter().zip(&tries) {
            locked[*i] = r.is_ok();
            ready[*i] = matches!(r, Ok(true));
        }
        if !tries.iter().any(|r| matches!(r, Err(Errno::EAGAIN))) {
            return (locked, ready);
        }
        self.unmark_and_unlock(ctx, change, &locked, &ready).await;
        let mut locked = vec![false; n];
        let mut ready = vec![false; n];
        for i in self.up_list() {
            match one(i, true).await {
                Ok(r) => (locked[i], ready[i]) = (true, r),
                Err(e) => {
                    tracing::debug!(xlator = %self.base.name, replica = %self.names[i], "transaction lock: {e}")
                }
            }
        }
        (locked, ready)
    }

    /// Post-op and unlock, one request per replica: `mark(-1, blame)` where `post` is set,
    /// then the unlocks where `locked` is; an unlock still goes when the post-op fails.
    pub(super) async fn post_op_and_unlock(
        &self,
        ctx: &Ctx,
        change: &Change,
        post: &[bool],
        blame: &[i32],
        locked: &[bool],
    ) {
        let post_steps = self.mark_steps(&change.marks, change.ty, -1, blame);
        let unlocks = Self::unlock_steps(&self.lock_steps(ctx.lk_owner, &change.lock, false));
        join_all((0..self.n()).filter(|i| post[*i] || locked[*i]).map(|i| {
            let mut steps = Vec::new();
            if post[i] {
                steps.extend(post_steps.iter().cloned());
            }
            let npost = steps.len();
            if locked[i] {
                steps.extend(unlocks.iter().cloned());
            }
            async move {
                for (k, e) in self.steps_lenient(ctx, i, &steps).await {
                    if k >= npost {
                        continue;
                    }
                    match e {
                        // Removed while the lock was held (a rebalance moved it, a client
                        // deleted it): nothing is left to mark.
                        Errno::ESTALE | Errno::ENOENT => {
                            tracing::debug!(xlator = %self.base.name, replica = %self.names[i], "post-op of a removed inode")
                        }
                        e => {
                            tracing::warn!(xlator = %self.base.name, replica = %self.names[i], "post-op: {e}")
                        }
                    }
                }
            }
        }))
        .await;
    }

    /// Undoes `lock_and_mark` for a transaction that will not run: the dirty mark taken back
    /// where it was made (nothing changed, so nobody is blamed), the locks released.
    pub(super) async fn unmark_and_unlock(
        &self,
        ctx: &Ctx,
        change: &Change,
        locked: &[bool],
        ready: &[bool],
    ) {
        let zeros = vec![0; self.n()];
        self.post_op_and_unlock(ctx, change, ready, &zeros, locked)
            .await;
    }

    /// Runs `steps` on replica `i`, going on past a step that fails (unlocks and post-ops,
    /// where each one that can be done must be); returns the failures. A lost connection ends
    /// it: the brick drops the client's locks with it.
    async fn steps_lenient(&self, ctx: &Ctx, i: usize, steps: &[TxnStep]) -> Vec<(usize, Errno)> {
        let mut failed = Vec::new();
        let mut at = 0;
        while at < steps.len() {
            match self.sub(i).txn_steps(ctx, &steps[at..]).await {
                Ok(()) => break,
                Err(f) => {
                    failed.push((at + f.done, f.error));
                    if f.error == Errno::ENOTCONN {
                        break;
                    }
                    at += f.done + 1;
                }
            }
        }
        failed
    }
}

/// Releases behind the answer: a transaction that every replica took has nothing left to
/// record but the end of its dirty marks, and a crash before that only leaves replicas marked
/// dirty that hold the same change, which a heal finds equal. So its post-op and unlock need
/// not hold up the caller: that is one round trip of every create, unlink or chmod.
impl Afr {
    /// Post-op and unlock in the background, registered under the change's locks; every
    /// replica took the change, so every one gets the post-op and nobody is blamed.
    pub(super) fn post_op_and_unlock_behind(
        self: &Arc<Self>,
        ctx: Ctx,
        change: Change,
        locked: Vec<bool>,
    ) {
        let done: Released = Arc::new(tokio::sync::Semaphore::new(0));
        let keys = change.lock.keys();
        for k in &keys {
            self.releasing.insert(k.clone(), done.clone());
        }
        let me = self.clone();
        tokio::spawn(async move {
            let (post, blame) = (vec![true; me.n()], vec![0; me.n()]);
            me.post_op_and_unlock(&ctx, &change, &post, &blame, &locked)
                .await;
            done.close();
            for k in keys {
                me.releasing.remove_if(&k, |_, d| Arc::ptr_eq(d, &done));
            }
        });
    }

    /// Waits until our own transactions on `lock` answered earlier have released it.
    pub(super) async fn wait_released(&self, lock: &LockOn) {
        if self.releasing.is_empty() {
            return;
        }
        for k in lock.keys() {
            let pending = self.releasing.get(&k).map(|d| d.clone());
            if let Some(d) = pending {
                // Never given a permit: the acquire ends when the release closes it.
                let _ = d.acquire().await;
            }
        }
    }

    /// Waits for every release still on the way (the graph is going away).
    pub(super) async fn released_all(&self) {
        let all: Vec<Released> = self.releasing.iter().map(|e| e.value().clone()).collect();
        for d in all {
            let _ = d.acquire().await;
        }
    }
}
