//! The distribute translator's state and the helpers every operation group shares: which
//! subvolumes are up, the caches (layouts, data subvolumes, name hints), fd contexts, and the
//! namespace lock.

use super::layout::Layout;
use crate::fop::keys;
use crate::fop::*;
use crate::xlator::{XlatorBase, XlatorRef};
use arc_swap::ArcSwapOption;
use bytes::Bytes;
use dashmap::DashMap;
use futures::future::join_all;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Cookie bits left for a subvolume's own readdir offset; the subvolume index sits above.
pub(super) const OFF_BITS: u32 = 48;
pub(super) const OFF_MASK: u64 = (1 << OFF_BITS) - 1;

/// Entries of the name hint cache before it starts over.
const NAME_CACHE_MAX: usize = 65536;

pub(super) struct DhtFd {
    /// For a file: the one subvolume holding it and its fd there.
    pub(super) file: Option<(usize, FdRef)>,
    /// For a directory: an fd per subvolume (None where it was down at opendir).
    pub(super) dirs: Vec<Option<FdRef>>,
}

pub struct Distribute {
    pub(super) base: XlatorBase,
    pub(super) names: Vec<String>,
    pub(super) up: Vec<AtomicBool>,
    pub(super) reported: Vec<AtomicBool>,
    pub(super) announced: AtomicBool,
    /// Directory gfid → layout.
    pub(super) layouts: DashMap<Gfid, Arc<Layout>>,
    /// File gfid → subvolume holding its data.
    pub(super) cached: DashMap<Gfid, usize>,
    /// (directory, name) → (gfid, data subvolume) of files lately looked up, so an unlink
    /// right after the kernel's lookup needs no second one. Only a hint: the brick checks the
    /// gfid, and a stale entry falls back to a full lookup.
    pub(super) name_hints: DashMap<(Gfid, String), (Gfid, usize)>,
    pub(super) notify_lock: Mutex<()>,
    /// Look for a name everywhere when its hashed subvolume lacks it (`lookup-unhashed on`).
    pub(super) unhashed_always: bool,
    /// Owners of the namespace locks this translator takes.
    pub(super) lk_owners: AtomicU64,
    /// Subvolumes being emptied by remove-brick (`decommissioned-bricks`): new layouts give
    /// them no range.
    pub(super) decommissioned: Vec<bool>,
    /// The volume's commit hash (`commit-hash`): a layout written with it has its files where
    /// it says, so a name missing at its hashed subvolume is missing everywhere. None: every
    /// complete layout is trusted (a volume that never changed its subvolumes).
    pub(super) commit_hash: Option<u32>,
    /// Files may be moving (a rebalance runs, or a fop saw a file mid-migration): a short
    /// read is checked against a move that emptied its source.
    pub(super) migrating: AtomicBool,
    /// A rebalance sizes ranges by subvolume size (`weighted-rebalance`).
    pub(super) weighted: bool,
    /// `min-free-disk`: a subvolume with less room takes no new file.
    pub(super) min_free: Option<MinFree>,
    /// Each subvolume's (available, total) bytes, read at most once a second (creates and
    /// the rebalance ask); swapped whole, so readers take no lock.
    pub(super) room: ArcSwapOption<RoomReading>,
}

/// When statfs was read, and each subvolume's (available, total) bytes.
pub(super) struct RoomReading {
    at: std::time::Instant,
    pub(super) subvols: Vec<(u64, u64)>,
}

/// GlusterFS's `min-free-disk`: a percentage of the subvolume, or bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MinFree {
    Percent(f64),
    Bytes(u64),
}

impl MinFree {
    pub fn parse(v: &str) -> Option<MinFree> {
        let v = v.trim();
        if let Some(p) = v.strip_suffix('%') {
            return p.trim().parse().ok().map(MinFree::Percent);
        }
        crate::options::parse_size(v).ok().map(MinFree::Bytes)
    }

    /// Whether a subvolume with `avail` of `total` bytes free is filled.
    pub fn filled(&self, avail: u64, total: u64) -> bool {
        match *self {
            MinFree::Percent(p) => total > 0 && (avail as f64) * 100.0 < p * total as f64,
            MinFree::Bytes(b) => avail < b,
        }
    }
}

pub(super) fn is_linkto(ia: &Iatt, x: &Xattrs) -> bool {
    ia.mode == keys::DHT_LINKFILE_MODE && x.contains_key(keys::DHT_LINKTO)
}

pub(super) fn with_dht_keys(want: &Xattrs) -> Xattrs {
    let mut w = want.clone();
    w.insert(keys::DHT_LAYOUT.to_string(), Bytes::new());
    w.insert(keys::DHT_LINKTO.to_string(), Bytes::new());
    w
}

pub(super) fn strip_dht_keys(mut x: Xattrs, want: &Xattrs) -> Xattrs {
    for k in [keys::DHT_LAYOUT, keys::DHT_LINKTO] {
        if !want.contains_key(k) {
            x.remove(k);
        }
    }
    x
}

pub(super) fn child_path(parent: Option<&str>, name: &str) -> Option<String> {
    parent.map(|p| {
        if p == "/" {
            format!("/{name}")
        } else {
            format!("{p}/{name}")
        }
    })
}

/// GlusterFS's DHT_ENTRY_SYNC_DOMAIN.
pub(super) const ENTRY_SYNC_DOMAIN: &str = "dht.entry.sync";

/// An entry lock held on (parent, name) at one subvolume.
pub(super) struct NameLock {
    subvol: usize,
    parent: Gfid,
    name: String,
    ctx: Ctx,
}

impl Distribute {
    pub fn new(base: XlatorBase) -> Distribute {
        let names = base.children.iter().map(|c| c.name().to_string()).collect();
        let n = base.children.len();
        Distribute {
            base,
            names,
            up: (0..n).map(|_| AtomicBool::new(false)).collect(),
            reported: (0..n).map(|_| AtomicBool::new(false)).collect(),
            announced: AtomicBool::new(false),
            layouts: DashMap::new(),
            cached: DashMap::new(),
            name_hints: DashMap::new(),
            notify_lock: Mutex::new(()),
            unhashed_always: true,
            lk_owners: AtomicU64::new(0),
            decommissioned: vec![false; n],
            commit_hash: None,
            migrating: AtomicBool::new(false),
            weighted: true,
            min_free: None,
            room: ArcSwapOption::empty(),
        }
    }

    /// The commit hash new layouts are written with.
    pub(super) fn commit_value(&self) -> u32 {
        self.commit_hash.unwrap_or(super::layout::COMMIT_HASH_NEW)
    }

    /// Whether a name missing at its hashed subvolume under `lay` is missing everywhere.
    pub(super) fn layout_trusted(&self, lay: &Layout) -> bool {
        lay.is_complete()
            && match self.commit_hash {
                None => true,
                Some(h) => lay.commit == Some(h),
            }
    }

    /// The layout of a new directory at `path`: equal ranges over the subvolumes not being
    /// removed.
    pub(super) fn new_layout(&self, path: &str) -> Layout {
        let weights: Vec<u64> = self
            .decommissioned
            .iter()
            .map(|d| if *d { 0 } else { 1 })
            .collect();
        let mut l = Layout::weighted(path, &self.names, &weights);
        l.commit = Some(self.commit_value());
        l
    }

    /// The `trusted.glusterfs.dht` value of subvolume `i` under `lay` (0..0 where it has no
    /// range, as GlusterFS writes for a subvolume left out).
    pub(super) fn range_value(&self, lay: &Layout, i: usize) -> Bytes {
        let commit = lay.commit.unwrap_or_else(|| self.commit_value());
        let (start, stop) = lay.range_of(i).map(|r| (r.start, r.stop)).unwrap_or((0, 0));
        Bytes::from(super::layout::encode_with(commit, start, stop))
    }
    pub(super) fn remember_name(&self, loc: &Loc, gfid: Gfid, subvol: usize) {
        if let (Some(p), Some(n)) = (loc.parent, &loc.name) {
            if self.name_hints.len() >= NAME_CACHE_MAX {
                self.name_hints.clear();
            }
            self.name_hints.insert((p, n.clone()), (gfid, subvol));
        }
    }

    pub(super) fn forget_name(&self, loc: &Loc) {
        if let (Some(p), Some(n)) = (loc.parent, &loc.name) {
            self.name_hints.remove(&(p, n.clone()));
        }
    }

    pub(super) fn n(&self) -> usize {
        self.base.children.len()
    }

    pub(super) fn sub(&self, i: usize) -> &XlatorRef {
        &self.base.children[i]
    }

    pub(super) fn is_up(&self, i: usize) -> bool {
        self.up[i].load(Ordering::SeqCst)
    }

    pub(super) fn all_up(&self) -> bool {
        (0..self.n()).all(|i| self.is_up(i))
    }

    pub(super) fn subvol_named(&self, name: &[u8]) -> Option<usize> {
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        self.names.iter().position(|n| n.as_bytes() == name)
    }

    pub(super) fn is_dir_gfid(&self, g: &Gfid) -> bool {
        g.is_root() || self.layouts.contains_key(g)
    }

    pub(super) fn first_up(&self) -> Result<usize> {
        (0..self.n())
            .find(|i| self.is_up(*i))
            .ok_or(Errno::ENOTCONN)
    }

    pub(super) fn dht_fd(&self, fd: &FdRef) -> Option<Arc<DhtFd>> {
        fd.ctx_get::<DhtFd>(self.base.id)
    }

    pub(super) fn wrap_file(&self, gfid: Gfid, flags: i32, i: usize, child: FdRef) -> FdRef {
        let fd = Fd::new(gfid, flags, false);
        fd.ctx_set(
            self.base.id,
            Arc::new(DhtFd {
                file: Some((i, child)),
                dirs: vec![],
            }),
        );
        fd
    }

    /// Runs `f` on every live subvolume; the first subvolume's answer is the reply.
    pub(super) async fn on_all<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if !self.all_up() {
            return Err(Errno::ENOTCONN);
        }
        let mut out = None;
        for (i, r) in join_all((0..self.n()).map(&f))
            .await
            .into_iter()
            .enumerate()
        {
            match r {
                Ok(v) if out.is_none() => out = Some(Ok(v)),
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(xlator = %self.base.name, subvol = %self.names[i], "directory fop failed: {e}");
                    if out.is_none() || matches!(out, Some(Ok(_))) && i == 0 {
                        out = Some(Err(e));
                    }
                }
            }
        }
        out.unwrap_or(Err(Errno::EIO))
    }

    /// Takes the namespace lock of `loc`'s name, waiting for whoever holds it.
    pub(super) async fn lock_name(&self, loc: &Loc, subvol: usize) -> Result<NameLock> {
        let (parent, name) = (loc.parent()?, loc.name()?.to_string());
        let ctx = Ctx {
            lk_owner: self.new_owner(),
            ..Ctx::root()
        };
        self.sub(subvol)
            .entrylk(
                &ctx,
                ENTRY_SYNC_DOMAIN,
                &Loc::gfid(parent),
                Some(&name),
                EntrylkCmd::Lock,
                EntrylkType::Write,
            )
            .await?;
        Ok(NameLock {
            subvol,
            parent,
            name,
            ctx,
        })
    }

    pub(super) async fn unlock_name(&self, l: NameLock) {
        if let Err(e) = self
            .sub(l.subvol)
            .entrylk(
                &l.ctx,
                ENTRY_SYNC_DOMAIN,
                &Loc::gfid(l.parent),
                Some(&l.name),
                EntrylkCmd::Unlock,
                EntrylkType::Write,
            )
            .await
        {
            tracing::warn!(xlator = %self.base.name, parent = %l.parent, name = %l.name, "releasing a namespace lock: {e}");
        }
    }

    /// Each subvolume's room, read again when a second old (a subvolume down or not
    /// answering counts as having none).
    pub(super) async fn room(&self, ctx: &Ctx) -> Arc<RoomReading> {
        if let Some(r) = self.room.load_full()
            && r.at.elapsed() < std::time::Duration::from_secs(1)
        {
            return r;
        }
        let subvols = join_all((0..self.n()).map(|j| async move {
            if !self.is_up(j) {
                return (0, 0);
            }
            match self.sub(j).statfs(ctx, &Loc::root()).await {
                Ok(s) => {
                    let f = s.frsize.max(1);
                    (s.bavail * f, s.blocks * f)
                }
                Err(_) => (0, 0),
            }
        }))
        .await;
        let r = Arc::new(RoomReading {
            at: std::time::Instant::now(),
            subvols,
        });
        self.room.store(Some(r.clone()));
        r
    }

    /// Whether subvolume `i` can take `size` more bytes and stay above `min-free-disk`
    /// (10 % when unset).
    pub(super) async fn fits(&self, ctx: &Ctx, i: usize, size: u64) -> bool {
        let (avail, total) = self.room(ctx).await.subvols[i];
        let min = self.min_free.unwrap_or(MinFree::Percent(10.0));
        total > 0 && !min.filled(avail.saturating_sub(size), total)
    }

    /// A new owner for a lock this translator takes (bit 62: never a frontend's POSIX lock
    /// owner, nor replicate's, bit 63).
    pub(super) fn new_owner(&self) -> u64 {
        (1 << 62) | self.lk_owners.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes (`typ` Read or Write, waiting) or releases (`typ` Unlock) a whole-file inodelk
    /// on `g` in `domain` at subvolume `i`, for `owner`.
    pub(super) async fn whole_inodelk(
        &self,
        i: usize,
        domain: &str,
        g: Gfid,
        owner: u64,
        typ: LockType,
    ) -> Result<()> {
        let ctx = Ctx {
            lk_owner: owner,
            ..Ctx::root()
        };
        let fl = Flock {
            typ,
            start: 0,
            len: 0,
            pid: 0,
            owner,
        };
        let cmd = if typ == LockType::Unlock {
            LockCmd::Set
        } else {
            LockCmd::SetWait
        };
        self.sub(i)
            .inodelk(&ctx, domain, &Loc::gfid(g), cmd, &fl)
            .await
            .map(|_| ())
    }

    /// Takes the lock under which a directory's layout is rewritten (GlusterFS's
    /// `dht.layout.heal` domain), on the first subvolume: a lookup healing a layout it
    /// finds incomplete never overwrites one a fix-layout is half way through writing.
    /// Returns the lock's owner, for [`Self::unlock_layout`].
    pub(super) async fn lock_layout(&self, dir: Gfid) -> Result<u64> {
        let owner = self.new_owner();
        self.whole_inodelk(0, LAYOUT_HEAL_DOMAIN, dir, owner, LockType::Write)
            .await?;
        Ok(owner)
    }

    pub(super) async fn unlock_layout(&self, dir: Gfid, owner: u64) {
        if let Err(e) = self
            .whole_inodelk(0, LAYOUT_HEAL_DOMAIN, dir, owner, LockType::Unlock)
            .await
        {
            tracing::warn!(xlator = %self.base.name, %dir, "releasing a layout lock: {e}");
        }
    }
}

/// GlusterFS's DHT_LAYOUT_HEAL_DOMAIN.
pub(super) const LAYOUT_HEAL_DOMAIN: &str = "dht.layout.heal";
