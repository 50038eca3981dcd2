//! `cluster/replicate` (GlusterFS AFR): every subvolume holds a full copy. Changes run as
//! transactions (lock → pre-op mark → the fop on every up replica → post-op, which clears the
//! mark and, on the replicas that succeeded, blames those that did not → unlock), so a replica
//! that was away is known to be stale from the changelogs alone, by us or by GlusterFS. Reads
//! go to one replica that no other accuses, with failover. Lookups notice pending marks and
//! start a heal in the background; the heal daemon (gatewayd) crawls the bricks' indices.

pub mod changelog;
mod common;
mod dir_write;
mod eager;
mod heal;
mod inode_write;
mod lock;
mod lookup;
mod open;
pub mod options;
mod read;
mod transaction;

pub use common::{Afr, SplitBrainChoice};
pub use heal::{HealInfo, PendingEntry};
pub use options::OPTIONS;

use crate::fop::*;
use crate::registry::XlatorType;
use crate::xlator::{Xlator, XlatorBase};
use async_trait::async_trait;
use bytes::Bytes;
use common::{HEAL_PARALLEL, Quorum};
use dashmap::DashMap;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub fn xlator_type(name: &'static str) -> XlatorType {
    XlatorType {
        type_name: name,
        options: OPTIONS,
        min_children: 1,
        max_children: 64,
        build: Arc::new(|base, o| {
            let n = base.children.len();
            let names = o.list("afr-pending-xattr");
            if !names.is_empty() && names.len() != n {
                return Err(format!(
                    "afr-pending-xattr names {} replicas but there are {n} subvolumes",
                    names.len()
                ));
            }
            let keys = if names.is_empty() {
                base.children
                    .iter()
                    .map(|c| format!("trusted.afr.{}", c.name()))
                    .collect()
            } else {
                names.iter().map(|k| format!("trusted.afr.{k}")).collect()
            };
            let arbiter = match o.int_or("arbiter-count", 0) {
                0 => None,
                _ if n < 3 => return Err("arbiter-count 1 needs 3 replicas".into()),
                _ => Some(n - 1),
            };
            let quorum = match o.str_or("quorum-type", "none").as_str() {
                "auto" => Quorum::Auto,
                "fixed" => {
                    let c = o.int_or("quorum-count", 0) as usize;
                    if c == 0 || c > n {
                        return Err(format!(
                            "quorum-type fixed needs quorum-count between 1 and {n}"
                        ));
                    }
                    Quorum::Fixed(c)
                }
                _ => Quorum::None,
            };
            let favorite = match o.str_or("favorite-child-policy", "none").as_str() {
                "size" => Some(SplitBrainChoice::BiggerFile),
                "mtime" => Some(SplitBrainChoice::LatestMtime),
                "ctime" => Some(SplitBrainChoice::LatestCtime),
                "majority" => Some(SplitBrainChoice::Majority),
                _ => None,
            };
            let afr = Afr {
                names: base.children.iter().map(|c| c.name().to_string()).collect(),
                up: (0..n).map(|_| AtomicBool::new(false)).collect(),
                generation: (0..n).map(|_| AtomicU64::new(0)).collect(),
                up_since: (0..n).map(|_| AtomicU64::new(0)).collect(),
                born: std::time::Instant::now(),
                reported: (0..n).map(|_| AtomicBool::new(false)).collect(),
                announced: AtomicBool::new(false),
                notify_lock: Mutex::new(()),
                keys,
                arbiter,
                quorum,
                favorite,
                read_hash: o.int_or("read-hash-mode", 1),
                self_heal: [
                    o.bool_or("data-self-heal", true),
                    o.bool_or("metadata-self-heal", true),
                    o.bool_or("entry-self-heal", true),
                ],
                diff: o.str_or("data-self-heal-algorithm", "diff") == "diff",
                heal_daemon: o.bool_or("self-heal-daemon", true),
                eager_lock: o.bool_or("eager-lock", true),
                post_op_delay: std::time::Duration::from_secs(
                    o.int_or("post-op-delay-secs", 1).max(0) as u64,
                ),
                eager: DashMap::new(),
                releasing: DashMap::new(),
                inodes: DashMap::new(),
                healing: DashMap::new(),
                split_brain: DashMap::new(),
                names_seen: DashMap::new(),
                owners: AtomicU64::new(1),
                came_back: tokio::sync::Notify::new(),
                heal_slots: Arc::new(tokio::sync::Semaphore::new(HEAL_PARALLEL)),
                base,
            };
            Ok(Arc::new(Replicate { afr: Arc::new(afr) }))
        }),
    }
}

/// The translator: a thin handle on `Afr`, which background heals share.
pub struct Replicate {
    afr: Arc<Afr>,
}

impl Replicate {
    /// The state behind the translator, for the heal daemon.
    pub fn afr(&self) -> &Arc<Afr> {
        &self.afr
    }
}

#[async_trait]
impl Xlator for Replicate {
    fn base(&self) -> &XlatorBase {
        &self.afr.base
    }

    fn as_any(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        Some(self)
    }

    async fn fini(&self) {
        self.afr.eager_flush_all().await;
        self.afr.released_all().await;
    }

    async fn notify(&self, event: Event, from: usize) {
        // A brick's cache invalidation is about one inode, not about this child's health:
        // every cache above must hear it, whichever replica or subvolume sent it.
        if let Event::Upcall(_) = event {
            self.afr.base.notify_parents(event).await;
            return;
        }
        let a = &self.afr;
        let (announce, back) = {
            let _g = a.notify_lock.lock();
            let was_up = a.is_up(from);
            match event {
                Event::ChildUp => {
                    a.up[from].store(true, Ordering::SeqCst);
                    a.reported[from].store(true, Ordering::SeqCst);
                }
                Event::ChildDown => {
                    a.up[from].store(false, Ordering::SeqCst);
                    a.reported[from].store(true, Ordering::SeqCst);
                }
                Event::ChildConnecting => return,
                Event::Upcall(_) => return,
            }
            let any_up = (0..a.n()).any(|i| a.is_up(i));
            let all_reported = a.reported.iter().all(|r| r.load(Ordering::SeqCst));
            let announce = if any_up && all_reported && !a.announced.swap(true, Ordering::SeqCst) {
                Some(Event::ChildUp)
            } else if !any_up && a.announced.swap(false, Ordering::SeqCst) {
                Some(Event::ChildDown)
            } else {
                None
            };
            (announce, event == Event::ChildUp && !was_up)
        };
        if back {
            a.generation[from].fetch_add(1, Ordering::SeqCst);
            a.up_since[from].store(a.born.elapsed().as_millis() as u64, Ordering::SeqCst);
            // What it holds may be stale now: forget who is good, and let the heal daemon in.
            a.inodes.clear();
            a.came_back.notify_waiters();
            tracing::info!(xlator = %a.base.name, replica = %a.names[from], "replica is up");
        } else if event == Event::ChildDown {
            tracing::warn!(xlator = %a.base.name, replica = %a.names[from], "replica is down");
        }
        if let Some(e) = announce {
            a.base.notify_parents(e).await;
        }
    }

    async fn lookup(&self, ctx: &Ctx, loc: &Loc, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        self.afr.lookup(ctx, loc, want).await
    }

    async fn stat(&self, ctx: &Ctx, loc: &Loc) -> Result<Iatt> {
        self.afr.stat(ctx, loc).await
    }

    async fn fstat(&self, ctx: &Ctx, fd: &FdRef) -> Result<Iatt> {
        self.afr.fstat(ctx, fd).await
    }

    async fn access(&self, ctx: &Ctx, loc: &Loc, mask: u32) -> Result<()> {
        self.afr.access(ctx, loc, mask).await
    }

    async fn readlink(&self, ctx: &Ctx, loc: &Loc) -> Result<String> {
        self.afr.readlink(ctx, loc).await
    }

    async fn getxattr(&self, ctx: &Ctx, loc: &Loc, name: Option<&str>) -> Result<Xattrs> {
        self.afr.getxattr(ctx, loc, name).await
    }

    async fn statfs(&self, ctx: &Ctx, loc: &Loc) -> Result<Statvfs> {
        self.afr.statfs(ctx, loc).await
    }

    async fn setattr(&self, ctx: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
        self.afr.setattr(ctx, loc, attr).await
    }

    async fn truncate(&self, ctx: &Ctx, loc: &Loc, size: u64) -> Result<Iatt> {
        self.afr.truncate(ctx, loc, size).await
    }

    async fn ftruncate(&self, ctx: &Ctx, fd: &FdRef, size: u64) -> Result<Iatt> {
        self.afr.ftruncate(ctx, fd, size).await
    }

    async fn write(&self, ctx: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
        self.afr.write(ctx, fd, offset, data).await
    }

    async fn fallocate(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        self.afr.fallocate(ctx, fd, mode, offset, len).await
    }

    async fn discard(&self, ctx: &Ctx, fd: &FdRef, offset: u64, len: u64) -> Result<()> {
        self.afr.discard(ctx, fd, offset, len).await
    }

    async fn read(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Bytes> {
        self.afr.read(ctx, fd, offset, size).await
    }

    async fn flush(&self, ctx: &Ctx, fd: &FdRef) -> Result<()> {
        self.afr.flush(ctx, fd).await
    }

    async fn fsync(&self, ctx: &Ctx, fd: &FdRef, datasync: bool) -> Result<()> {
        self.afr.fsync(ctx, fd, datasync).await
    }

    async fn release(&self, fd: &FdRef) {
        self.afr.release(fd).await
    }

    async fn open(&self, ctx: &Ctx, loc: &Loc, flags: i32) -> Result<FdRef> {
        self.afr.open(ctx, loc, flags).await
    }

    async fn opendir(&self, ctx: &Ctx, loc: &Loc) -> Result<FdRef> {
        self.afr.opendir(ctx, loc).await
    }

    async fn readdir(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Vec<Dirent>> {
        self.afr.readdir_any(ctx, fd, offset, size, None).await
    }

    async fn readdirp(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: &Xattrs,
    ) -> Result<Vec<Dirent>> {
        self.afr
            .readdir_any(ctx, fd, offset, size, Some(want))
            .await
    }

    async fn create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt, PostParent)> {
        self.afr.create(ctx, loc, flags, entry).await
    }

    async fn mkdir(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        self.afr.mkdir(ctx, loc, entry).await
    }

    async fn mknod(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        self.afr.mknod(ctx, loc, entry).await
    }

    async fn symlink(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        target: &str,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        self.afr.symlink(ctx, loc, target, entry).await
    }

    async fn link(&self, ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        self.afr.link(ctx, oldloc, newloc).await
    }

    async fn unlink(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        self.afr.unlink(ctx, loc).await
    }

    async fn rmdir(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        self.afr.rmdir(ctx, loc).await
    }

    async fn rename(
        &self,
        ctx: &Ctx,
        oldloc: &Loc,
        newloc: &Loc,
    ) -> Result<(Iatt, PostParent, PostParent)> {
        self.afr.rename(ctx, oldloc, newloc).await
    }

    async fn setxattr(&self, ctx: &Ctx, loc: &Loc, xattrs: &Xattrs, flags: i32) -> Result<()> {
        self.afr.setxattr(ctx, loc, xattrs, flags).await
    }

    async fn removexattr(&self, ctx: &Ctx, loc: &Loc, name: &str) -> Result<()> {
        self.afr.removexattr(ctx, loc, name).await
    }

    async fn xattrop(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        op: XattropOp,
        xattrs: &Xattrs,
    ) -> Result<Xattrs> {
        self.afr.xattrop(ctx, loc, op, xattrs).await
    }

    async fn inodelk(
        &self,
        ctx: &Ctx,
        domain: &str,
        loc: &Loc,
        cmd: LockCmd,
        lock: &Flock,
    ) -> Result<Flock> {
        self.afr
            .lock_fop(
                |i| self.afr.sub(i).inodelk(ctx, domain, loc, cmd, lock),
                lock.typ == LockType::Unlock || cmd == LockCmd::Get,
            )
            .await
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
        self.afr
            .lock_fop(
                |i| {
                    self.afr
                        .sub(i)
                        .entrylk(ctx, domain, loc, basename, cmd, typ)
                },
                cmd == EntrylkCmd::Unlock,
            )
            .await
    }

    async fn lk(&self, ctx: &Ctx, fd: &FdRef, cmd: LockCmd, lock: &Flock) -> Result<Flock> {
        let a = &self.afr;
        a.lock_fop(
            |i| {
                let f = a.fd_on(fd, i);
                async move { a.sub(i).lk(ctx, &f, cmd, lock).await }
            },
            lock.typ == LockType::Unlock || cmd == LockCmd::Get,
        )
        .await
    }
}
