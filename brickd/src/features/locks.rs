//! `features/locks`: inodelk and entrylk (the internal locks cluster translators take for
//! their transactions) and POSIX record locks, kept in memory on the brick as GlusterFS does.
//! Waiters park on a `Notify` per inode, never on a thread.

use async_trait::async_trait;
use engine::registry::XlatorType;
use engine::*;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Notify;

pub fn xlator_type() -> XlatorType {
    XlatorType {
        type_name: "features/locks",
        options: &[],
        min_children: 1,
        max_children: 1,
        build: Arc::new(|base, _| Ok(Arc::new(Locks::new(base)))),
    }
}

/// Lock owner: the brick connection plus the client's owner id; the same lk_owner from two
/// clients is two owners.
type Owner = (u64, u64);

#[derive(Clone, Debug)]
struct Range {
    write: bool,
    start: u64,
    /// Inclusive.
    end: u64,
    owner: Owner,
    pid: i32,
}

#[derive(Default)]
struct RangeSet {
    held: Mutex<Vec<Range>>,
    wake: Notify,
}

impl RangeSet {
    fn conflict(held: &[Range], r: &Range) -> Option<Range> {
        held.iter()
            .find(|h| {
                h.owner != r.owner && h.start <= r.end && r.start <= h.end && (h.write || r.write)
            })
            .cloned()
    }

    /// POSIX semantics: the owner's locks in [start, end] are replaced (split where needed).
    fn apply(held: &mut Vec<Range>, r: &Range, unlock: bool) {
        let mut out = Vec::with_capacity(held.len() + 2);
        for h in held.drain(..) {
            if h.owner != r.owner || h.end < r.start || h.start > r.end {
                out.push(h);
                continue;
            }
            if h.start < r.start {
                out.push(Range {
                    end: r.start - 1,
                    ..h.clone()
                });
            }
            if h.end > r.end {
                out.push(Range {
                    start: r.end + 1,
                    ..h.clone()
                });
            }
        }
        if !unlock {
            out.push(r.clone());
        }
        *held = out;
    }

    async fn lock(&self, cmd: LockCmd, fl: &Flock, owner: Owner) -> Result<Flock> {
        let end = if fl.len == 0 {
            u64::MAX
        } else {
            fl.start.saturating_add(fl.len - 1)
        };
        let r = Range {
            write: fl.typ == LockType::Write,
            start: fl.start,
            end,
            owner,
            pid: fl.pid,
        };
        loop {
            let notified = self.wake.notified();
            {
                let mut held = self.held.lock();
                if cmd == LockCmd::Get {
                    return Ok(match Self::conflict(&held, &r) {
                        Some(c) => Flock {
                            typ: if c.write {
                                LockType::Write
                            } else {
                                LockType::Read
                            },
                            start: c.start,
                            len: if c.end == u64::MAX {
                                0
                            } else {
                                c.end - c.start + 1
                            },
                            pid: c.pid,
                            owner: c.owner.1,
                        },
                        None => Flock {
                            typ: LockType::Unlock,
                            ..*fl
                        },
                    });
                }
                if fl.typ == LockType::Unlock {
                    Self::apply(&mut held, &r, true);
                    self.wake.notify_waiters();
                    return Ok(*fl);
                }
                if Self::conflict(&held, &r).is_none() {
                    Self::apply(&mut held, &r, false);
                    // A downgrade (write → read) may let readers in.
                    self.wake.notify_waiters();
                    return Ok(*fl);
                }
                if cmd == LockCmd::Set {
                    return Err(Errno::EAGAIN);
                }
            }
            notified.await;
        }
    }

    fn drop_where(&self, f: impl Fn(&Range) -> bool) {
        let mut held = self.held.lock();
        let before = held.len();
        held.retain(|r| !f(r));
        if held.len() != before {
            self.wake.notify_waiters();
        }
    }
}

#[derive(Clone, Debug)]
struct EntryLock {
    basename: Option<String>,
    write: bool,
    owner: Owner,
}

#[derive(Default)]
struct EntrySet {
    held: Mutex<Vec<EntryLock>>,
    wake: Notify,
}

pub struct Locks {
    base: XlatorBase,
    /// (domain, gfid) → inodelk ranges.
    inode: Mutex<HashMap<(String, Gfid), Arc<RangeSet>>>,
    /// (domain, directory gfid) → entry locks.
    entry: Mutex<HashMap<(String, Gfid), Arc<EntrySet>>>,
    /// gfid → POSIX record locks.
    posix: Mutex<HashMap<Gfid, Arc<RangeSet>>>,
}

impl Locks {
    pub fn new(base: XlatorBase) -> Locks {
        Locks {
            base,
            inode: Mutex::default(),
            entry: Mutex::default(),
            posix: Mutex::default(),
        }
    }

    fn gfid_of(loc: &Loc) -> Result<Gfid> {
        loc.gfid.ok_or(Errno::EINVAL)
    }

    /// Takes, or with `EntrylkCmd::Unlock` releases, one entry lock in `set`.
    async fn entry_lock(
        set: &EntrySet,
        ctx: &Ctx,
        basename: Option<&str>,
        cmd: EntrylkCmd,
        typ: EntrylkType,
    ) -> Result<()> {
        let owner = (ctx.client_id, ctx.lk_owner);
        let me = EntryLock {
            basename: basename.map(String::from),
            write: typ == EntrylkType::Write,
            owner,
        };
        loop {
            let notified = set.wake.notified();
            {
                let mut held = set.held.lock();
                if cmd == EntrylkCmd::Unlock {
                    if let Some(i) = held
                        .iter()
                        .position(|h| h.owner == owner && h.basename == me.basename)
                    {
                        held.remove(i);
                        set.wake.notify_waiters();
                    }
                    return Ok(());
                }
                // A lock on the whole directory (no basename) covers every name in it.
                let clash = held.iter().any(|h| {
                    h.owner != owner
                        && (h.write || me.write)
                        && (h.basename.is_none()
                            || me.basename.is_none()
                            || h.basename == me.basename)
                });
                if !clash {
                    held.push(me.clone());
                    return Ok(());
                }
                if cmd == EntrylkCmd::LockNb {
                    return Err(Errno::EAGAIN);
                }
            }
            notified.await;
        }
    }
}

/// Drops `key`'s lock set from `map` once no lock is held in it and nobody waits on it, so
/// a brick keeps no record for every inode it ever locked. Every user takes its `Arc` from
/// the map under the map's lock, so a count of one there means nobody else has the set.
fn prune<K: Eq + std::hash::Hash, S>(
    map: &Mutex<HashMap<K, Arc<S>>>,
    key: &K,
    idle: impl Fn(&S) -> bool,
) {
    let mut m = map.lock();
    if m.get(key).is_some_and(|s| unused(s, &idle)) {
        m.remove(key);
    }
}

/// Nobody but the map holds `s`, and nothing is held in it.
fn unused<S>(s: &Arc<S>, idle: impl Fn(&S) -> bool) -> bool {
    Arc::strong_count(s) == 1 && idle(s)
}

fn ranges_idle(s: &RangeSet) -> bool {
    s.held.lock().is_empty()
}

fn entries_idle(s: &EntrySet) -> bool {
    s.held.lock().is_empty()
}

#[async_trait]
impl Xlator for Locks {
    fn base(&self) -> &XlatorBase {
        &self.base
    }

    async fn inodelk(
        &self,
        ctx: &Ctx,
        domain: &str,
        loc: &Loc,
        cmd: LockCmd,
        lock: &Flock,
    ) -> Result<Flock> {
        let key = (domain.to_string(), Self::gfid_of(loc)?);
        let set = self.inode.lock().entry(key.clone()).or_default().clone();
        let r = set.lock(cmd, lock, (ctx.client_id, ctx.lk_owner)).await;
        drop(set);
        prune(&self.inode, &key, ranges_idle);
        r
    }

    async fn entrylk(
        &self,
        ctx: &Ctx,
        domain: &str,
        loc: &Loc,
        basename: Option<&str>,
        cmd: EntrylkCmd,
        typ: EntrylkType,
    ) -> Result<()> {
        let key = (domain.to_string(), Self::gfid_of(loc)?);
        let set = self.entry.lock().entry(key.clone()).or_default().clone();
        let r = Self::entry_lock(&set, ctx, basename, cmd, typ).await;
        drop(set);
        prune(&self.entry, &key, entries_idle);
        r
    }

    async fn lk(&self, ctx: &Ctx, fd: &FdRef, cmd: LockCmd, lock: &Flock) -> Result<Flock> {
        let set = self.posix.lock().entry(fd.gfid).or_default().clone();
        let r = set.lock(cmd, lock, (ctx.client_id, lock.owner)).await;
        drop(set);
        prune(&self.posix, &fd.gfid, ranges_idle);
        r
    }
    /// A create that asks for an inodelk on its new inode (`NewEntry::lock`) gets it before
    /// the inode exists, so nobody can take it between the two; when it cannot be granted
    /// nothing is made (EAGAIN), and when the create fails it is given back.
    async fn create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt, PostParent)> {
        let child = self.base.first_child()?;
        let Some(want) = &entry.lock else {
            return child.create(ctx, loc, flags, entry).await;
        };
        let key = (want.domain.clone(), entry.gfid);
        let set = self.inode.lock().entry(key.clone()).or_default().clone();
        let owner = (ctx.client_id, want.lock.owner);
        let made = match set.lock(LockCmd::Set, &want.lock, owner).await {
            Ok(_) => {
                let made = child.create(ctx, loc, flags, entry).await;
                if made.is_err() {
                    let unlock = Flock {
                        typ: LockType::Unlock,
                        ..want.lock
                    };
                    // An unlock never waits and never fails.
                    let _ = set.lock(LockCmd::Set, &unlock, owner).await;
                }
                made
            }
            Err(e) => Err(e),
        };
        drop(set);
        prune(&self.inode, &key, ranges_idle);
        made
    }

    async fn client_disconnect(&self, client_id: u64) {
        let ranges: Vec<_> = self
            .inode
            .lock()
            .values()
            .cloned()
            .chain(self.posix.lock().values().cloned())
            .collect();
        for s in ranges {
            s.drop_where(|r| r.owner.0 == client_id);
        }
        let entries: Vec<_> = self.entry.lock().values().cloned().collect();
        for s in entries {
            let mut held = s.held.lock();
            let before = held.len();
            held.retain(|h| h.owner.0 != client_id);
            if held.len() != before {
                s.wake.notify_waiters();
            }
        }
        // The sets cloned above are dropped: those left idle go.
        self.inode.lock().retain(|_, s| !unused(s, ranges_idle));
        self.posix.lock().retain(|_, s| !unused(s, ranges_idle));
        self.entry.lock().retain(|_, s| !unused(s, entries_idle));
        for c in &self.base.children {
            c.client_disconnect(client_id).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn locks() -> Locks {
        Locks::new(XlatorBase::new("l", "features/locks", vec![]))
    }
    fn ctx(client: u64, owner: u64) -> Ctx {
        Ctx {
            client_id: client,
            lk_owner: owner,
            ..Default::default()
        }
    }
    fn fl(typ: LockType, start: u64, len: u64, owner: u64) -> Flock {
        Flock {
            typ,
            start,
            len,
            pid: 1,
            owner,
        }
    }

    #[tokio::test]
    async fn posix_locks_conflict_between_owners_and_split_on_unlock() {
        let l = locks();
        let fd = Fd::new(Gfid::random(), libc::O_RDWR, false);
        l.lk(
            &ctx(1, 1),
            &fd,
            LockCmd::Set,
            &fl(LockType::Write, 0, 100, 1),
        )
        .await
        .unwrap();
        assert_eq!(
            l.lk(
                &ctx(1, 2),
                &fd,
                LockCmd::Set,
                &fl(LockType::Read, 50, 10, 2)
            )
            .await,
            Err(Errno::EAGAIN)
        );
        let got = l
            .lk(
                &ctx(1, 2),
                &fd,
                LockCmd::Get,
                &fl(LockType::Read, 50, 10, 2),
            )
            .await
            .unwrap();
        assert_eq!(
            (got.typ, got.start, got.len, got.owner),
            (LockType::Write, 0, 100, 1)
        );
        // Owner 1 unlocks the middle: 40..60 is free, the rest still held.
        l.lk(
            &ctx(1, 1),
            &fd,
            LockCmd::Set,
            &fl(LockType::Unlock, 40, 20, 1),
        )
        .await
        .unwrap();
        l.lk(
            &ctx(1, 2),
            &fd,
            LockCmd::Set,
            &fl(LockType::Write, 45, 10, 2),
        )
        .await
        .unwrap();
        assert!(
            l.lk(&ctx(1, 2), &fd, LockCmd::Set, &fl(LockType::Read, 30, 5, 2))
                .await
                .is_err()
        );
        // Readers share.
        let fd2 = Fd::new(Gfid::random(), libc::O_RDWR, false);
        l.lk(&ctx(1, 1), &fd2, LockCmd::Set, &fl(LockType::Read, 0, 0, 1))
            .await
            .unwrap();
        l.lk(&ctx(2, 1), &fd2, LockCmd::Set, &fl(LockType::Read, 0, 0, 1))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_blocked_inodelk_is_granted_when_the_holder_unlocks_or_disconnects() {
        let l = Arc::new(locks());
        let loc = Loc::gfid(Gfid::random());
        l.inodelk(
            &ctx(1, 1),
            "d",
            &loc,
            LockCmd::SetWait,
            &fl(LockType::Write, 0, 0, 1),
        )
        .await
        .unwrap();
        let (l2, loc2) = (l.clone(), loc.clone());
        let waiter = tokio::spawn(async move {
            l2.inodelk(
                &ctx(2, 1),
                "d",
                &loc2,
                LockCmd::SetWait,
                &fl(LockType::Write, 0, 0, 1),
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        // Another domain does not conflict.
        l.inodelk(
            &ctx(3, 1),
            "other",
            &loc,
            LockCmd::Set,
            &fl(LockType::Write, 0, 0, 1),
        )
        .await
        .unwrap();
        l.client_disconnect(1).await;
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        // No record outlives the locks: an unlock and a disconnect leave none.
        l.inodelk(
            &ctx(2, 1),
            "d",
            &loc,
            LockCmd::Set,
            &fl(LockType::Unlock, 0, 0, 1),
        )
        .await
        .unwrap();
        assert_eq!(l.inode.lock().len(), 1, "the other domain's lock is held");
        l.client_disconnect(3).await;
        assert!(l.inode.lock().is_empty());
    }

    #[tokio::test]
    async fn entrylk_on_the_directory_covers_every_name() {
        let l = locks();
        let loc = Loc::gfid(Gfid::random());
        let w = EntrylkType::Write;
        l.entrylk(&ctx(1, 1), "d", &loc, Some("a"), EntrylkCmd::LockNb, w)
            .await
            .unwrap();
        l.entrylk(&ctx(2, 1), "d", &loc, Some("b"), EntrylkCmd::LockNb, w)
            .await
            .unwrap();
        assert_eq!(
            l.entrylk(&ctx(2, 1), "d", &loc, None, EntrylkCmd::LockNb, w)
                .await,
            Err(Errno::EAGAIN)
        );
        l.entrylk(&ctx(1, 1), "d", &loc, Some("a"), EntrylkCmd::Unlock, w)
            .await
            .unwrap();
        l.entrylk(&ctx(2, 1), "d", &loc, Some("b"), EntrylkCmd::Unlock, w)
            .await
            .unwrap();
        l.entrylk(&ctx(2, 1), "d", &loc, None, EntrylkCmd::LockNb, w)
            .await
            .unwrap();
        l.entrylk(&ctx(2, 1), "d", &loc, None, EntrylkCmd::Unlock, w)
            .await
            .unwrap();
        assert!(l.entry.lock().is_empty(), "no record outlives the locks");
    }
}
