//! The steps a transaction and a heal are made of (GlusterFS's afr-lk-common.c): locks taken
//! on every up replica, and the changelog marks of pre-op and post-op.

use super::changelog::{self, TxnType};
use super::common::Afr;
use crate::fop::*;
use futures::future::join_all;

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

    /// Adds `dirty` and `pending` to the changelogs of every inode in `marks` on replica `i`.
    pub(super) async fn mark(
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
