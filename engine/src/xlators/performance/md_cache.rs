//! `performance/md-cache` (GlusterFS's md-cache, a.k.a. stat-prefetch): keeps the attributes
//! of inodes, the answers of named lookups (the gfid a name points at, or that it names
//! nothing) and a few xattrs the kernel asks on every write, so that lookup, stat, fstat and
//! those getxattrs are answered from memory.
//!
//! Staying correct with other clients rests on the bricks' `features/upcall`: a brick tells
//! every client that looked an inode up when another one changes it, and this translator drops
//! what it holds of that inode (and, for a directory whose names changed, every name under
//! it). With `cache-invalidation` off nothing tells us, and an entry lives `md-cache-timeout`
//! seconds (GlusterFS's default 1 s); with it on, glusterd's group `metadata-cache` keeps
//! entries 600 s, as the gateway does.
//!
//! Our own changes update or drop entries as they pass. A reply that overlapped an
//! invalidation of what it is about (ours or a brick's) is not cached: a counter, bumped by
//! every invalidation, is read when a fop starts and again before its answer is kept, and
//! when it moved, the log of the last invalidations says whether any was about the inodes the
//! answer describes. That is the role of GlusterFS's per-inode generation numbers. With a
//! single counter and no log, any change anywhere (eight threads creating files) kept every
//! reply in flight from being cached.

use crate::fop::*;
use crate::metrics::MdCacheMetrics;
use crate::options::{OptKind, OptionSpec};
use crate::registry::XlatorType;
use crate::xlator::{Xlator, XlatorBase};
use async_trait::async_trait;
use bytes::Bytes;
use dashmap::DashMap;
use inval::{InvalLog, dir_key, name_key};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        key: "md-cache-timeout",
        aliases: &["cache-timeout"],
        kind: OptKind::Seconds { min: 0, max: 600 },
        default: Some("1"),
        doc: "seconds a cached attribute, name or xattr is trusted without asking the bricks (0: nothing is cached); with cache-invalidation on it can be long, as the bricks say what changed",
    },
    OptionSpec::new(
        "cache-invalidation",
        OptKind::Bool,
        Some("off"),
        "the bricks send upcalls (features.cache-invalidation on), which is what makes a long md-cache-timeout safe; upcalls that arrive are honoured either way",
    ),
    OptionSpec::new(
        "cache-capability-xattrs",
        OptKind::Bool,
        Some("on"),
        "cache security.capability (the kernel asks it before every write to a file)",
    ),
    // On here (GlusterFS: off): `ls -l` asks both of every entry, and with upcalls a change
    // by another client is told like any other xattr change.
    OptionSpec::new(
        "cache-selinux",
        OptKind::Bool,
        Some("on"),
        "cache security.selinux",
    ),
    OptionSpec::new(
        "cache-posix-acl",
        OptKind::Bool,
        Some("on"),
        "cache system.posix_acl_access and system.posix_acl_default",
    ),
    OptionSpec::new(
        "cache-ima-xattrs",
        OptKind::Bool,
        Some("on"),
        "cache security.ima",
    ),
    OptionSpec::new(
        "xattr-cache-list",
        OptKind::List,
        None,
        "more xattrs to cache, comma-separated: a name ending in * means every xattr with that prefix, kept as one set (GlusterFS's xattr-cache-list)",
    ),
    OptionSpec::new(
        "md-cache-max-entries",
        OptKind::Int {
            min: 1024,
            max: 16 << 20,
        },
        Some("131072"),
        "most inodes (and, apart, most names) kept: past it, expired entries go, then all of them",
    ),
];

pub fn xlator_type() -> XlatorType {
    XlatorType {
        type_name: "performance/md-cache",
        options: OPTIONS,
        min_children: 1,
        max_children: 1,
        build: Arc::new(|base, o| {
            let mut xattrs = Vec::new();
            if o.bool_or("cache-capability-xattrs", true) {
                xattrs.push("security.capability");
            }
            if o.bool_or("cache-selinux", true) {
                xattrs.push("security.selinux");
            }
            if o.bool_or("cache-posix-acl", true) {
                xattrs.extend(["system.posix_acl_access", "system.posix_acl_default"]);
            }
            if o.bool_or("cache-ima-xattrs", true) {
                xattrs.push("security.ima");
            }
            // Named VOLUME-md-cache by the gateway: the volume is the metrics label.
            let volume = base
                .name
                .strip_suffix("-md-cache")
                .unwrap_or(&base.name)
                .to_string();
            let mut md = MdCache::new(
                base,
                o.secs_or("md-cache-timeout", Duration::from_secs(1)),
                xattrs,
                o.int_or("md-cache-max-entries", 131072) as usize,
                MdCacheMetrics::new(&volume),
            );
            md.xattr_prefixes = o
                .list("xattr-cache-list")
                .iter()
                .filter_map(|n| n.strip_suffix('*'))
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect();
            Ok(Arc::new(md))
        }),
    }
}

/// What is kept of one inode.
#[derive(Default)]
struct Md {
    iatt: Option<Attrs>,
    /// Cacheable xattrs asked for: the value, or None for "not set" (ENODATA).
    xattrs: Vec<(String, Option<Bytes>, Instant)>,
    /// Every xattr under a prefix of `xattr-cache-list`, as one set.
    prefixed: Vec<(String, Xattrs, Instant)>,
}

/// An inode's attributes, when they were learnt, and whether they are still current: our own
/// name change in a directory leaves its attributes right but for its times, size and link
/// count, for callers that need no more (`Ctx::attrs_may_lag`).
struct Attrs {
    ia: Iatt,
    at: Instant,
    current: bool,
}

/// What a name in a directory was found to be.
struct Named {
    /// None: the name does not exist (a negative entry).
    gfid: Option<Gfid>,
    at: Instant,
    /// The invalidation counter when the lookup began: the entry is good only while the
    /// directory's names were not invalidated since.
    epoch: u64,
}

/// When and at which invalidation count a fop began.
#[derive(Clone, Copy)]
struct Ticket {
    epoch: u64,
    at: Instant,
    /// The count of the fop's own change, which does not make its answer stale.
    own: Option<u64>,
}

pub struct MdCache {
    base: XlatorBase,
    timeout: Duration,
    xattr_names: Vec<&'static str>,
    /// `xattr-cache-list` prefixes (without the `*`).
    xattr_prefixes: Vec<String>,
    max: usize,
    inodes: DashMap<Gfid, Md>,
    names: DashMap<(Gfid, String), Named>,
    /// Directory → the invalidation count at which its names were last invalidated.
    dir_inval: DashMap<Gfid, (u64, Instant)>,
    /// Directories whose every name is known here, with the count and time they were made
    /// (see `complete`).
    complete: DashMap<Gfid, (u64, Instant)>,
    epoch: AtomicU64,
    log: parking_lot::Mutex<InvalLog>,
    fills: AtomicU64,
    metrics: MdCacheMetrics,
}

impl MdCache {
    fn new(
        base: XlatorBase,
        timeout: Duration,
        xattr_names: Vec<&'static str>,
        max: usize,
        metrics: MdCacheMetrics,
    ) -> MdCache {
        MdCache {
            base,
            timeout,
            xattr_names,
            xattr_prefixes: Vec::new(),
            max,
            inodes: DashMap::new(),
            names: DashMap::new(),
            dir_inval: DashMap::new(),
            complete: DashMap::new(),
            epoch: AtomicU64::new(1),
            log: parking_lot::Mutex::new(InvalLog::default()),
            fills: AtomicU64::new(0),
            metrics,
        }
    }

    fn enabled(&self) -> bool {
        !self.timeout.is_zero()
    }

    fn begin(&self) -> Ticket {
        Ticket {
            epoch: self.epoch.load(Ordering::SeqCst),
            at: Instant::now(),
            own: None,
        }
    }

    fn fresh(&self, at: Instant) -> bool {
        at.elapsed() < self.timeout
    }

    fn cached_iatt(&self, g: &Gfid) -> Option<Iatt> {
        self.known_iatt(g, false)
    }

    /// The attributes known, or for a caller that allows it (`Ctx::attrs_may_lag`), the
    /// lagging ones.
    fn known_iatt(&self, g: &Gfid, lagging_ok: bool) -> Option<Iatt> {
        let e = self.inodes.get(g)?;
        let a = e.iatt.as_ref()?;
        (self.fresh(a.at) && (a.current || lagging_ok)).then(|| a.ia.clone())
    }

    /// The gfid a named loc names, as far as the cache knows; `Some(None)`: known not to exist.
    fn cached_name(&self, parent: Gfid, name: &str) -> Option<Option<Gfid>> {
        let key = (parent, name.to_string());
        let Some(e) = self.names.get(&key) else {
            // A name no directory can hold gets the bricks' own answer (ENAMETOOLONG).
            let valid = name.len() <= 255;
            return (valid && self.all_names_known(&parent)).then_some(None);
        };
        if !self.fresh(e.at) {
            return None;
        }
        if let Some(d) = self.dir_inval.get(&parent)
            && e.epoch < d.0
        {
            return None;
        }
        Some(e.gfid)
    }

    /// The gfid `loc` is about: its own, or the one its name was found to point at.
    fn gfid_of(&self, loc: &Loc) -> Option<Gfid> {
        if loc.gfid.is_some() {
            return loc.gfid;
        }
        let (p, n) = (loc.parent?, loc.name.as_deref()?);
        self.cached_name(p, n).flatten()
    }

    /// Keeps `f`'s work unless an invalidation of `about` came between `t` and now (then the
    /// answer may predate a change the cache was told of, and must not outlive it).
    fn fill(&self, t: Ticket, about: &[Gfid], f: impl FnOnce(&Self)) -> bool {
        if !self.clean(t, about) {
            return false;
        }
        f(self);
        self.trim();
        true
    }

    fn put_iatt(&self, ia: &Iatt, at: Instant) {
        if ia.gfid.is_null() {
            return;
        }
        self.inodes.entry(ia.gfid).or_default().iatt = Some(Attrs {
            ia: ia.clone(),
            at,
            current: true,
        });
    }

    fn fill_iatt(&self, t: Ticket, ia: &Iatt) {
        let g = ia.gfid;
        if self.fill(t, &[g], |s| s.put_iatt(ia, t.at)) && !self.clean(t, &[g]) {
            // An invalidation ran between the check and the insert.
            self.inodes.remove(&g);
        }
    }

    fn fill_name(&self, t: Ticket, parent: Gfid, name: &str, gfid: Option<Gfid>) {
        let key = (parent, name.to_string());
        let named = Named {
            gfid,
            at: t.at,
            epoch: t.epoch,
        };
        let about: Vec<Gfid> = [name_key(&parent, name), dir_key(&parent)]
            .into_iter()
            .chain(gfid)
            .collect();
        if self.fill(t, &about, |s| {
            s.names.insert(key.clone(), named);
        }) && !self.clean(t, &about)
        {
            self.names.remove(&key);
            self.complete.remove(&parent);
        }
    }

    fn fill_xattr(&self, t: Ticket, g: Gfid, name: &str, value: Option<Bytes>) {
        if self.fill(t, &[g], |s| {
            let mut e = s.inodes.entry(g).or_default();
            e.xattrs.retain(|(n, _, _)| n != name);
            e.xattrs.push((name.to_string(), value, t.at));
        }) && !self.clean(t, &[g])
        {
            self.inodes.remove(&g);
        }
    }

    /// Our own change of these inodes and names: counted first, so fops in flight do not
    /// cache what they read before it.
    fn changed(&self, inodes: &[Gfid], names: &[(Gfid, &str)]) -> u64 {
        // The directory's attributes (mtime, nlink) move with its names.
        let about: Vec<Gfid> = inodes
            .iter()
            .copied()
            .chain(names.iter().flat_map(|(p, n)| [*p, name_key(p, n)]))
            .collect();
        let e = self.bump(&about);
        self.metrics.own.inc();
        for g in inodes {
            self.inodes.remove(g);
        }
        for (p, n) in names {
            self.names.remove(&(*p, n.to_string()));
            // The directory's attributes (mtime, nlink) move with its names; its xattrs do
            // not.
            if let Some(mut m) = self.inodes.get_mut(p)
                && let Some(a) = m.iatt.as_mut()
            {
                a.current = false;
            }
        }
        e
    }

    /// Our own change of the attributes or data of these inodes: the attributes go, and
    /// the xattrs known to be set, but not the knowledge that one is absent, which no write,
    /// truncate or chown can change (they only ever drop security.capability). That is what
    /// saves the kernel's getxattr of security.capability before each write a round trip.
    fn data_changed(&self, inodes: &[Gfid]) -> u64 {
        let e = self.bump(inodes);
        self.metrics.own.inc();
        for g in inodes {
            self.drop_attrs(g);
        }
        e
    }

    fn drop_attrs(&self, g: &Gfid) {
        if let Some(mut m) = self.inodes.get_mut(g) {
            m.iatt = None;
            m.xattrs.retain(|(_, v, _)| v.is_none());
            m.prefixed.clear();
        }
    }

    /// After our own change: keeps the post-op attributes it returned when nothing else
    /// invalidated that inode meanwhile (`e` is the count `changed` returned).
    fn settle(&self, t: Ticket, e: u64, ia: &Iatt) {
        self.fill_iatt(Ticket { own: Some(e), ..t }, ia);
    }

    fn settle_name(&self, t: Ticket, e: u64, parent: Gfid, name: &str, gfid: Gfid) {
        self.fill_name(Ticket { own: Some(e), ..t }, parent, name, Some(gfid));
    }

    fn invalidate_dir(&self, g: Gfid) {
        self.complete.remove(&g);
        let e = self.bump(&[dir_key(&g)]);
        self.dir_inval.insert(g, (e, Instant::now()));
    }

    /// A brick's upcall (or a reconnect): drop what it names.
    fn upcall(&self, u: &Upcall) {
        // A forget-all is about everything: logged with no inode.
        self.bump(if u.is_forget_all() {
            &[]
        } else {
            std::slice::from_ref(&u.gfid)
        });
        self.metrics.upcall.inc();
        if u.is_forget_all() {
            self.inodes.clear();
            self.complete.clear();
            self.names.clear();
            self.dir_inval.clear();
            return;
        }
        if u.flags & (upcall_flags::XATTR | upcall_flags::GONE) != 0 {
            self.inodes.remove(&u.gfid);
        } else {
            self.drop_attrs(&u.gfid);
        }
        if u.flags & (upcall_flags::ENTRIES | upcall_flags::GONE) != 0 {
            self.invalidate_dir(u.gfid);
        }
    }

    /// Keeps memory flat: past the cap, expired entries go, and if that is not enough,
    /// everything (a miss costs one brick round trip; unbounded growth costs the process).
    fn trim(&self) {
        if !self
            .fills
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(1024)
        {
            return;
        }
        let timeout = self.timeout;
        if self.inodes.len() > self.max {
            self.inodes.retain(|_, m| {
                m.iatt.as_ref().is_some_and(|a| a.at.elapsed() < timeout)
                    || m.xattrs.iter().any(|(_, _, at)| at.elapsed() < timeout)
                    || m.prefixed.iter().any(|(_, _, at)| at.elapsed() < timeout)
            });
            if self.inodes.len() > self.max {
                self.inodes.clear();
            }
        }
        if self.names.len() > self.max {
            // A name dropped from a directory whose names were all known would read as absent.
            self.complete.clear();
            self.names.retain(|_, n| n.at.elapsed() < timeout);
            if self.names.len() > self.max {
                self.names.clear();
            }
        }
        // A directory invalidated longer ago than the timeout holds no name that could
        // still be taken for fresh.
        if self.dir_inval.len() > self.max / 16 {
            self.dir_inval.retain(|_, (_, at)| at.elapsed() < timeout);
        }
    }

    /// The gfid the name `loc` points at, asking the bricks when the cache does not know:
    /// what an unlink or a rename replaces, whose attributes (nlink) it changes.
    async fn victim(&self, ctx: &Ctx, loc: &Loc) -> Option<Gfid> {
        if !self.enabled() {
            return None;
        }
        if loc.gfid.is_some() {
            return loc.gfid;
        }
        let (p, n) = (loc.parent?, loc.name.as_deref()?);
        match self.cached_name(p, n) {
            Some(g) => g,
            None => self.base.gfid_below(ctx, loc).await,
        }
    }

    fn is_cached_xattr(&self, name: &str) -> bool {
        self.xattr_names.contains(&name)
    }

    fn hit(&self) {
        self.metrics.hit.inc();
    }

    fn miss(&self) {
        self.metrics.miss.inc();
    }
}

#[async_trait]
impl Xlator for MdCache {
    fn base(&self) -> &XlatorBase {
        &self.base
    }

    async fn notify(&self, event: Event, _from: usize) {
        if let Event::Upcall(u) = &event {
            self.upcall(u);
        }
        self.base.notify_parents(event).await;
    }

    async fn lookup(&self, ctx: &Ctx, loc: &Loc, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        let child = self.base.first_child()?;
        if !self.enabled() {
            return child.lookup(ctx, loc, want).await;
        }
        // Plain lookups, and those that ask only for whole xattr-cache-list prefixes, are
        // answered here; any other xattr asked for goes to the bricks.
        let prefixes = if want.is_empty() {
            Vec::new()
        } else {
            match self.prefixes_of(want) {
                Some(p) => p,
                None => return child.lookup(ctx, loc, want).await,
            }
        };
        self.lookup_cached(ctx, loc, want, &prefixes).await
    }

    async fn stat(&self, ctx: &Ctx, loc: &Loc) -> Result<Iatt> {
        let child = self.base.first_child()?;
        if !self.enabled() {
            return child.stat(ctx, loc).await;
        }
        if let Some(ia) = self.gfid_of(loc).and_then(|g| self.cached_iatt(&g)) {
            self.hit();
            return Ok(ia);
        }
        self.miss();
        let t = self.begin();
        let r = child.stat(ctx, loc).await;
        if let Ok(ia) = &r {
            self.fill_iatt(t, ia);
        }
        r
    }

    async fn fstat(&self, ctx: &Ctx, fd: &FdRef) -> Result<Iatt> {
        let child = self.base.first_child()?;
        if !self.enabled() {
            return child.fstat(ctx, fd).await;
        }
        if let Some(ia) = self.cached_iatt(&fd.gfid) {
            self.hit();
            return Ok(ia);
        }
        self.miss();
        let t = self.begin();
        let r = child.fstat(ctx, fd).await;
        if let Ok(ia) = &r {
            self.fill_iatt(t, ia);
        }
        r
    }

    async fn getxattr(&self, ctx: &Ctx, loc: &Loc, name: Option<&str>) -> Result<Xattrs> {
        let child = self.base.first_child()?;
        let (Some(name), Some(g)) = (name, self.gfid_of(loc)) else {
            return child.getxattr(ctx, loc, name).await;
        };
        if !self.enabled() || !self.is_cached_xattr(name) {
            return child.getxattr(ctx, loc, Some(name)).await;
        }
        let cached = self.inodes.get(&g).and_then(|m| {
            m.xattrs
                .iter()
                .find(|(n, _, at)| n == name && self.fresh(*at))
                .map(|(_, v, _)| v.clone())
        });
        if let Some(v) = cached {
            self.hit();
            return match v {
                Some(v) => Ok(Xattrs::from([(name.to_string(), v)])),
                None => Err(Errno::ENODATA),
            };
        }
        self.miss();
        let t = self.begin();
        let r = child.getxattr(ctx, loc, Some(name)).await;
        match &r {
            Ok(x) => self.fill_xattr(t, g, name, x.get(name).cloned()),
            Err(e) if *e == Errno::ENODATA => self.fill_xattr(t, g, name, None),
            _ => {}
        }
        r
    }

    async fn setattr(&self, ctx: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
        let t = self.begin();
        let r = self.base.first_child()?.setattr(ctx, loc, attr).await;
        let g = r.as_ref().ok().map(|ia| ia.gfid).or(self.gfid_of(loc));
        // A new owner drops security.capability on the brick: the xattrs go with the iatt.
        let e = self.data_changed(g.as_slice());
        if let Ok(ia) = &r {
            self.settle(t, e, ia);
        }
        r
    }

    async fn truncate(&self, ctx: &Ctx, loc: &Loc, size: u64) -> Result<Iatt> {
        let t = self.begin();
        let r = self.base.first_child()?.truncate(ctx, loc, size).await;
        let g = r.as_ref().ok().map(|ia| ia.gfid).or(self.gfid_of(loc));
        let e = self.data_changed(g.as_slice());
        if let Ok(ia) = &r {
            self.settle(t, e, ia);
        }
        r
    }

    async fn ftruncate(&self, ctx: &Ctx, fd: &FdRef, size: u64) -> Result<Iatt> {
        let t = self.begin();
        let r = self.base.first_child()?.ftruncate(ctx, fd, size).await;
        let e = self.data_changed(&[fd.gfid]);
        if let Ok(ia) = &r {
            self.settle(t, e, ia);
        }
        r
    }

    async fn write(&self, ctx: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
        let t = self.begin();
        let r = self.base.first_child()?.write(ctx, fd, offset, data).await;
        // The post-op attributes (replicate answers with a data replica's) are kept only when
        // no other change came between: writes in flight together answer in any order, and
        // then the next stat asks the bricks. Kept, they let a stat after a copy-in (a
        // create, a write, a close) answer from memory.
        let e = self.data_changed(&[fd.gfid]);
        if let Ok(ia) = &r
            && ia.gfid == fd.gfid
        {
            self.settle(t, e, ia);
        }
        r
    }

    async fn fallocate(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        let r = self
            .base
            .first_child()?
            .fallocate(ctx, fd, mode, offset, len)
            .await;
        self.data_changed(&[fd.gfid]);
        r
    }

    async fn discard(&self, ctx: &Ctx, fd: &FdRef, offset: u64, len: u64) -> Result<()> {
        let r = self.base.first_child()?.discard(ctx, fd, offset, len).await;
        self.data_changed(&[fd.gfid]);
        r
    }

    async fn open(&self, ctx: &Ctx, loc: &Loc, flags: i32) -> Result<FdRef> {
        let r = self.base.first_child()?.open(ctx, loc, flags).await;
        if flags & libc::O_TRUNC != 0 && flags & libc::O_ACCMODE != libc::O_RDONLY {
            let g = r.as_ref().ok().map(|fd| fd.gfid).or(self.gfid_of(loc));
            self.data_changed(g.as_slice());
        }
        r
    }

    async fn create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt, PostParent)> {
        let t = self.begin();
        let r = self
            .base
            .first_child()?
            .create(ctx, loc, flags, entry)
            .await;
        let ia = r.as_ref().map(|(_, ia, _)| ia.clone()).map_err(|e| *e);
        let parent = r.as_ref().ok().and_then(|(_, _, p)| p.clone());
        self.created_file(t, loc, &ia, entry, &parent);
        r
    }

    async fn mkdir(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        let t = self.begin();
        let r = self.base.first_child()?.mkdir(ctx, loc, entry).await;
        let (ia, parent) = entry::split(&r);
        self.created(t, loc, &ia, None, &parent);
        r
    }

    async fn mknod(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        let t = self.begin();
        let r = self.base.first_child()?.mknod(ctx, loc, entry).await;
        let (ia, parent) = entry::split(&r);
        self.created_file(t, loc, &ia, entry, &parent);
        r
    }

    async fn symlink(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        target: &str,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        let t = self.begin();
        let r = self
            .base
            .first_child()?
            .symlink(ctx, loc, target, entry)
            .await;
        let (ia, parent) = entry::split(&r);
        self.created(t, loc, &ia, None, &parent);
        r
    }

    async fn link(&self, ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        let t = self.begin();
        let r = self.base.first_child()?.link(ctx, oldloc, newloc).await;
        // The inode's nlink and ctime move; the reply says how.
        self.created(t, newloc, &r, self.gfid_of(oldloc), &None);
        r
    }

    async fn unlink(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        let t = self.begin();
        let victim = self.victim(ctx, loc).await;
        let r = self.base.first_child()?.unlink(ctx, loc).await;
        self.removed(t, loc, victim, &r);
        r
    }

    async fn rmdir(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        let t = self.begin();
        let victim = self.victim(ctx, loc).await;
        let r = self.base.first_child()?.rmdir(ctx, loc).await;
        self.removed(t, loc, victim, &r);
        if let Some(v) = victim {
            self.invalidate_dir(v);
        }
        r
    }

    async fn rename(
        &self,
        ctx: &Ctx,
        oldloc: &Loc,
        newloc: &Loc,
    ) -> Result<(Iatt, PostParent, PostParent)> {
        let t = self.begin();
        let moved = self.victim(ctx, oldloc).await;
        let replaced = self.victim(ctx, newloc).await;
        let r = self.base.first_child()?.rename(ctx, oldloc, newloc).await;
        self.renamed(t, (oldloc, newloc), moved, replaced, &r);
        r
    }

    async fn setxattr(&self, ctx: &Ctx, loc: &Loc, xattrs: &Xattrs, flags: i32) -> Result<()> {
        let r = self
            .base
            .first_child()?
            .setxattr(ctx, loc, xattrs, flags)
            .await;
        self.changed_loc(loc);
        r
    }

    async fn removexattr(&self, ctx: &Ctx, loc: &Loc, name: &str) -> Result<()> {
        let r = self.base.first_child()?.removexattr(ctx, loc, name).await;
        self.changed_loc(loc);
        r
    }

    async fn xattrop(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        op: XattropOp,
        xattrs: &Xattrs,
    ) -> Result<Xattrs> {
        let r = self.base.first_child()?.xattrop(ctx, loc, op, xattrs).await;
        self.changed_loc(loc);
        r
    }

    async fn readdirp(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: &Xattrs,
    ) -> Result<Vec<Dirent>> {
        // The xattrs kept here come with the listing (the bricks read them with each entry),
        // so `ls -l`'s getxattrs of every entry that follow are answered from memory.
        let extra: Vec<&str> = if self.enabled() {
            self.xattr_names
                .iter()
                .copied()
                .filter(|n| !want.contains_key(*n))
                .collect()
        } else {
            Vec::new()
        };
        let asked;
        let want = if extra.is_empty() {
            want
        } else {
            let mut w = want.clone();
            w.extend(extra.iter().map(|n| (n.to_string(), Bytes::new())));
            asked = w;
            &asked
        };
        let t = self.begin();
        let mut r = self
            .base
            .first_child()?
            .readdirp(ctx, fd, offset, size, want)
            .await;
        if self.enabled()
            && let Ok(entries) = &mut r
        {
            for d in entries.iter_mut() {
                // A directory's attributes are put together from every subvolume by a
                // lookup; a listing gives one subvolume's. Only files are taken from it.
                if let Some(ia) = &d.iatt
                    && !ia.is_dir()
                    && !ia.gfid.is_null()
                    && d.name != "."
                    && d.name != ".."
                {
                    self.fill_iatt(t, ia);
                    self.fill_name(t, fd.gfid, &d.name, Some(ia.gfid));
                    for n in &self.xattr_names {
                        self.fill_xattr(t, ia.gfid, n, d.xattrs.get(*n).cloned());
                    }
                }
                for n in &extra {
                    d.xattrs.remove(*n);
                }
            }
        }
        r
    }
}

impl MdCache {
    /// An xattr change on `loc`: its inode's entry goes, or, when the cache cannot tell
    /// which inode that is, everything.
    fn changed_loc(&self, loc: &Loc) {
        match loc.gfid.or(self.gfid_of(loc)) {
            Some(g) => {
                self.changed(&[g], &[]);
            }
            None => self.upcall(&Upcall::forget_all()),
        }
    }
}

mod complete;
mod entry;
mod inval;
mod lookup;

#[cfg(test)]
mod tests;
