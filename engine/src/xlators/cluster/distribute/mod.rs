//! `cluster/distribute` (GlusterFS DHT): spreads the files of every directory over its
//! subvolumes by the hash of their names. Directories exist on every subvolume, each copy
//! holding its hash range in `trusted.glusterfs.dht`; a file lives on the subvolume whose range
//! holds its name's hash, or elsewhere with a linkto file at the hashed subvolume naming where.

mod dir;
pub mod hash;
pub mod layout;

use crate::fop::keys;
use crate::fop::*;
use crate::options::{OptKind, OptionSpec};
use crate::registry::XlatorType;
use crate::xlator::{Xlator, XlatorBase, XlatorRef};
use async_trait::async_trait;
use bytes::Bytes;
use dashmap::DashMap;
use futures::future::join_all;
use layout::Layout;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new(
        "min-free-disk",
        OptKind::Str,
        Some("10%"),
        "accepted for GlusterFS volfiles",
    ),
    OptionSpec::new(
        "lookup-unhashed",
        OptKind::Enum(&["on", "off", "auto"]),
        Some("on"),
        "on: a name missing on its hashed subvolume is looked for everywhere; auto: not when the directory's layout is complete and every subvolume is up (GlusterFS's lookup-optimize)",
    ),
    OptionSpec::new(
        "lookup-optimize",
        OptKind::Bool,
        Some("off"),
        "accepted for GlusterFS volfiles",
    ),
    OptionSpec::new(
        "readdir-optimize",
        OptKind::Bool,
        Some("off"),
        "accepted for GlusterFS volfiles",
    ),
];

pub fn xlator_type(name: &'static str) -> XlatorType {
    XlatorType {
        type_name: name,
        options: OPTIONS,
        min_children: 1,
        max_children: usize::MAX,
        build: Arc::new(|base, o| {
            let mut d = Distribute::new(base);
            d.unhashed_always = o.get("lookup-unhashed") == Some("on");
            Ok(Arc::new(d))
        }),
    }
}

/// Cookie bits left for a subvolume's own readdir offset; the subvolume index sits above.
const OFF_BITS: u32 = 48;
const OFF_MASK: u64 = (1 << OFF_BITS) - 1;

/// Entries of the name hint cache before it starts over.
const NAME_CACHE_MAX: usize = 65536;

struct DhtFd {
    /// For a file: the one subvolume holding it and its fd there.
    file: Option<(usize, FdRef)>,
    /// For a directory: an fd per subvolume (None where it was down at opendir).
    dirs: Vec<Option<FdRef>>,
}

pub struct Distribute {
    base: XlatorBase,
    names: Vec<String>,
    up: Vec<AtomicBool>,
    reported: Vec<AtomicBool>,
    announced: AtomicBool,
    /// Directory gfid → layout.
    layouts: DashMap<Gfid, Arc<Layout>>,
    /// File gfid → subvolume holding its data.
    cached: DashMap<Gfid, usize>,
    /// (directory, name) → (gfid, data subvolume) of files lately looked up, so an unlink
    /// right after the kernel's lookup needs no second one. Only a hint: the brick checks the
    /// gfid, and a stale entry falls back to a full lookup.
    name_hints: DashMap<(Gfid, String), (Gfid, usize)>,
    notify_lock: Mutex<()>,
    /// Look for a name everywhere when its hashed subvolume lacks it (`lookup-unhashed on`).
    unhashed_always: bool,
    /// Owners of the namespace locks this translator takes.
    lk_owners: AtomicU64,
}

fn is_linkto(ia: &Iatt, x: &Xattrs) -> bool {
    ia.mode == keys::DHT_LINKFILE_MODE && x.contains_key(keys::DHT_LINKTO)
}

fn with_dht_keys(want: &Xattrs) -> Xattrs {
    let mut w = want.clone();
    w.insert(keys::DHT_LAYOUT.to_string(), Bytes::new());
    w.insert(keys::DHT_LINKTO.to_string(), Bytes::new());
    w
}

fn strip_dht_keys(mut x: Xattrs, want: &Xattrs) -> Xattrs {
    for k in [keys::DHT_LAYOUT, keys::DHT_LINKTO] {
        if !want.contains_key(k) {
            x.remove(k);
        }
    }
    x
}

fn child_path(parent: Option<&str>, name: &str) -> Option<String> {
    parent.map(|p| {
        if p == "/" {
            format!("/{name}")
        } else {
            format!("{p}/{name}")
        }
    })
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
        }
    }

    fn remember_name(&self, loc: &Loc, gfid: Gfid, subvol: usize) {
        if let (Some(p), Some(n)) = (loc.parent, &loc.name) {
            if self.name_hints.len() >= NAME_CACHE_MAX {
                self.name_hints.clear();
            }
            self.name_hints.insert((p, n.clone()), (gfid, subvol));
        }
    }

    fn forget_name(&self, loc: &Loc) {
        if let (Some(p), Some(n)) = (loc.parent, &loc.name) {
            self.name_hints.remove(&(p, n.clone()));
        }
    }

    fn n(&self) -> usize {
        self.base.children.len()
    }

    fn sub(&self, i: usize) -> &XlatorRef {
        &self.base.children[i]
    }

    fn is_up(&self, i: usize) -> bool {
        self.up[i].load(Ordering::SeqCst)
    }

    fn all_up(&self) -> bool {
        (0..self.n()).all(|i| self.is_up(i))
    }

    fn subvol_named(&self, name: &[u8]) -> Option<usize> {
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        self.names.iter().position(|n| n.as_bytes() == name)
    }

    /// The layout of directory `dir`, looked up when not cached.
    async fn layout(&self, ctx: &Ctx, dir: Gfid) -> Result<Arc<Layout>> {
        if let Some(l) = self.layouts.get(&dir) {
            return Ok(l.clone());
        }
        let loc = if dir.is_root() {
            Loc::root()
        } else {
            Loc::gfid(dir)
        };
        self.lookup_dir(ctx, &loc, &Xattrs::new(), true).await?;
        self.layouts.get(&dir).map(|l| l.clone()).ok_or(Errno::EIO)
    }

    /// The subvolume a new name in `parent` belongs to.
    async fn hashed(&self, ctx: &Ctx, loc: &Loc) -> Result<usize> {
        let parent = loc.parent()?;
        let name = loc.name()?;
        if let Some(i) = self.layout(ctx, parent).await?.for_name(name) {
            return Ok(i);
        }
        // A hole: the layout was read while a concurrent mkdir of the directory was still
        // writing it. Read it again (the lookup completes an unfinished layout) before failing.
        self.layouts.remove(&parent);
        self.layout(ctx, parent).await?.for_name(name).ok_or_else(|| {
            tracing::warn!(xlator = %self.base.name, parent = ?loc.parent, "layout has a hole for this name");
            Errno::EIO
        })
    }

    /// Finds a named entry: at its hashed subvolume, through a linkto, or (for data put in
    /// place without one) on every subvolume, leaving a linkto behind.
    /// `heal`: a directory found missing on some subvolume is healed (never under a
    /// namespace lock of the same name, which the heal takes).
    async fn lookup_named(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        want: &Xattrs,
        heal: bool,
    ) -> Result<(Iatt, Xattrs)> {
        let w = with_dht_keys(want);
        let hashed = self.hashed(ctx, loc).await?;
        let at_hashed = if self.is_up(hashed) {
            self.sub(hashed).lookup(ctx, loc, &w).await
        } else {
            Err(Errno::ENOTCONN)
        };
        match at_hashed {
            Ok((ia, _)) if ia.is_dir() => self.lookup_dir(ctx, loc, want, heal).await,
            Ok((ia, x)) if is_linkto(&ia, &x) => {
                if let Some(t) = self.subvol_named(&x[keys::DHT_LINKTO]) {
                    if !self.is_up(t) {
                        return Err(Errno::ENOTCONN);
                    }
                    match self.sub(t).lookup(ctx, loc, &w).await {
                        Ok((tia, tx)) if !is_linkto(&tia, &tx) && tia.gfid == ia.gfid => {
                            self.cached.insert(tia.gfid, t);
                            self.remember_name(loc, tia.gfid, t);
                            return Ok((tia, strip_dht_keys(tx, want)));
                        }
                        _ => {}
                    }
                }
                self.lookup_everywhere(ctx, loc, want, Some(hashed), heal)
                    .await
            }
            Ok((ia, x)) => {
                self.cached.insert(ia.gfid, hashed);
                self.remember_name(loc, ia.gfid, hashed);
                Ok((ia, strip_dht_keys(x, want)))
            }
            Err(Errno::ENOENT) => {
                // Every file this layout placed is at its hashed subvolume or has a linkto
                // there, so a miss is final unless the layout is broken or a subvolume away.
                if !self.unhashed_always
                    && self.all_up()
                    && self
                        .layouts
                        .get(&loc.parent()?)
                        .is_some_and(|l| l.is_complete())
                {
                    return Err(Errno::ENOENT);
                }
                self.lookup_everywhere(ctx, loc, want, Some(hashed), heal)
                    .await
            }
            Err(e) => Err(e),
        }
    }

    async fn lookup_everywhere(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        want: &Xattrs,
        hashed: Option<usize>,
        heal: bool,
    ) -> Result<(Iatt, Xattrs)> {
        let w = with_dht_keys(want);
        let results = join_all((0..self.n()).map(|i| {
            let w = &w;
            async move {
                if Some(i) == hashed || !self.is_up(i) {
                    return Err(Errno::ENOENT);
                }
                self.sub(i).lookup(ctx, loc, w).await
            }
        }))
        .await;
        for (i, r) in results.into_iter().enumerate() {
            let Ok((ia, x)) = r else { continue };
            if ia.is_dir() {
                return self.lookup_dir(ctx, loc, want, heal).await;
            }
            if is_linkto(&ia, &x) {
                continue;
            }
            self.cached.insert(ia.gfid, i);
            self.remember_name(loc, ia.gfid, i);
            if let Some(h) = hashed
                && loc.name.is_some()
                && self.is_up(h)
            {
                let _ = self.make_linkto(ctx, h, i, loc, ia.gfid).await;
            }
            return Ok((ia, strip_dht_keys(x, want)));
        }
        if (0..self.n()).any(|i| !self.is_up(i)) {
            Err(Errno::ENOTCONN)
        } else {
            Err(Errno::ENOENT)
        }
    }

    async fn make_linkto(
        &self,
        ctx: &Ctx,
        at: usize,
        target: usize,
        loc: &Loc,
        gfid: Gfid,
    ) -> Result<()> {
        let mut linkname = self.names[target].clone().into_bytes();
        linkname.push(0);
        let e = NewEntry {
            gfid,
            mode: keys::DHT_LINKFILE_MODE,
            umask: 0,
            rdev: 0,
            xattrs: Xattrs::from([(keys::DHT_LINKTO.to_string(), Bytes::from(linkname))]),
        };
        let l = Loc {
            gfid: None,
            ..loc.clone()
        };
        self.sub(at).mknod(ctx, &l, &e).await.map(|_| ())
    }

    /// The subvolume holding file `gfid`'s data, found by a nameless lookup when unknown.
    async fn cached_subvol(&self, ctx: &Ctx, gfid: Gfid) -> Result<usize> {
        if let Some(i) = self.cached.get(&gfid) {
            return Ok(*i);
        }
        let w = with_dht_keys(&Xattrs::new());
        let loc = Loc::gfid(gfid);
        let results = join_all((0..self.n()).map(|i| {
            let (w, loc) = (&w, &loc);
            async move {
                if self.is_up(i) {
                    self.sub(i).lookup(ctx, loc, w).await
                } else {
                    Err(Errno::ENOTCONN)
                }
            }
        }))
        .await;
        for (i, r) in results.iter().enumerate() {
            if let Ok((ia, x)) = r
                && !ia.is_dir()
                && !is_linkto(ia, x)
            {
                self.cached.insert(gfid, i);
                return Ok(i);
            }
        }
        if results.iter().any(|r| matches!(r, Err(Errno::ENOTCONN))) {
            Err(Errno::ENOTCONN)
        } else {
            Err(Errno::ESTALE)
        }
    }

    fn is_dir_gfid(&self, g: &Gfid) -> bool {
        g.is_root() || self.layouts.contains_key(g)
    }

    /// Where a loc-addressed fop goes: the data subvolume of a file, or None for a directory
    /// (which every subvolume has).
    async fn target(&self, ctx: &Ctx, loc: &Loc) -> Result<Option<usize>> {
        let g = match loc.gfid {
            Some(g) => g,
            None => self.lookup(ctx, loc, &Xattrs::new()).await?.0.gfid,
        };
        if self.is_dir_gfid(&g) {
            return Ok(None);
        }
        if let Some(i) = self.cached.get(&g) {
            return Ok(Some(*i));
        }
        let (ia, _) = self.lookup(ctx, &Loc::gfid(g), &Xattrs::new()).await?;
        if ia.is_dir() {
            Ok(None)
        } else {
            Ok(Some(self.cached_subvol(ctx, g).await?))
        }
    }

    fn first_up(&self) -> Result<usize> {
        (0..self.n())
            .find(|i| self.is_up(*i))
            .ok_or(Errno::ENOTCONN)
    }

    fn dht_fd(&self, fd: &FdRef) -> Option<Arc<DhtFd>> {
        fd.ctx_get::<DhtFd>(self.base.id)
    }

    /// The subvolume and child fd for a file fd; anonymous fds resolve by gfid.
    async fn file_fd(&self, ctx: &Ctx, fd: &FdRef) -> Result<(usize, FdRef)> {
        if let Some(d) = self.dht_fd(fd)
            && let Some((i, f)) = &d.file
        {
            if !self.is_up(*i) {
                return Err(Errno::ENOTCONN);
            }
            return Ok((*i, f.clone()));
        }
        let i = self.cached_subvol(ctx, fd.gfid).await?;
        Ok((i, Fd::anonymous(fd.gfid)))
    }

    fn wrap_file(&self, gfid: Gfid, flags: i32, i: usize, child: FdRef) -> FdRef {
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
    async fn on_all<T, F, Fut>(&self, f: F) -> Result<T>
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

    async fn readdir_any(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: &Xattrs,
        plus: bool,
    ) -> Result<Vec<Dirent>> {
        let d = self.dht_fd(fd).ok_or(Errno::EBADF)?;
        let mut idx = (offset >> OFF_BITS) as usize;
        let mut off = offset & OFF_MASK;
        let w = with_dht_keys(want);
        while idx < self.n() {
            let child_fd = match (&d.dirs.get(idx), self.is_up(idx)) {
                (Some(Some(f)), true) => f.clone(),
                _ => {
                    idx += 1;
                    off = 0;
                    continue;
                }
            };
            let ents = self
                .sub(idx)
                .readdirp(ctx, &child_fd, off, size, &w)
                .await?;
            if ents.is_empty() {
                idx += 1;
                off = 0;
                continue;
            }
            let first = (0..self.n())
                .find(|i| d.dirs.get(*i).is_some_and(|f| f.is_some()) && self.is_up(*i));
            let mut out = Vec::with_capacity(ents.len());
            for mut e in ents {
                let cookie = ((idx as u64) << OFF_BITS) | (e.d_off & OFF_MASK);
                let keep = match &e.iatt {
                    Some(ia) if ia.is_dir() => Some(idx) == first,
                    Some(ia) => !is_linkto(ia, &e.xattrs),
                    None => true,
                };
                if keep {
                    if let Some(ia) = &e.iatt
                        && !ia.is_dir()
                    {
                        self.cached.insert(ia.gfid, idx);
                    }
                    e.xattrs = strip_dht_keys(std::mem::take(&mut e.xattrs), want);
                    if !plus {
                        e.iatt = None;
                        e.xattrs.clear();
                    }
                    let child_off = e.d_off;
                    e.d_off = cookie;
                    out.push(e);
                    off = child_off & OFF_MASK;
                } else {
                    off = e.d_off & OFF_MASK;
                }
            }
            if out.is_empty() {
                // Only linkto files or directories seen elsewhere in this batch: keep reading.
                continue;
            }
            if plus {
                self.merge_listed_dirs(ctx, fd.gfid, idx, &mut out).await;
            }
            return Ok(out);
        }
        Ok(vec![])
    }
}

#[async_trait]
impl Xlator for Distribute {
    fn base(&self) -> &XlatorBase {
        &self.base
    }

    async fn notify(&self, event: Event, from: usize) {
        let announce = {
            let _g = self.notify_lock.lock();
            match event {
                Event::ChildUp => {
                    self.up[from].store(true, Ordering::SeqCst);
                    self.reported[from].store(true, Ordering::SeqCst);
                }
                Event::ChildDown => {
                    self.up[from].store(false, Ordering::SeqCst);
                    self.reported[from].store(true, Ordering::SeqCst);
                }
                Event::ChildConnecting => return,
            }
            let any_up = (0..self.n()).any(|i| self.is_up(i));
            let all_reported = self.reported.iter().all(|r| r.load(Ordering::SeqCst));
            // Up once every subvolume has answered (GlusterFS waits the same way, so the first
            // fops do not land on a subvolume that is still connecting); down when none is up.
            if any_up && all_reported && !self.announced.swap(true, Ordering::SeqCst) {
                Some(Event::ChildUp)
            } else if !any_up && self.announced.swap(false, Ordering::SeqCst) {
                Some(Event::ChildDown)
            } else {
                None
            }
        };
        if let Some(e) = announce {
            self.base.notify_parents(e).await;
        }
    }

    async fn lookup(&self, ctx: &Ctx, loc: &Loc, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        if loc.parent.is_some() && loc.name.is_some() {
            return self.lookup_named(ctx, loc, want, true).await;
        }
        let g = loc.gfid.ok_or(Errno::EINVAL)?;
        if self.is_dir_gfid(&g) {
            return self.lookup_dir(ctx, loc, want, true).await;
        }
        if let Some(i) = self.cached.get(&g).map(|i| *i)
            && self.is_up(i)
            && let Ok((ia, x)) = self.sub(i).lookup(ctx, loc, &with_dht_keys(want)).await
            && !is_linkto(&ia, &x)
        {
            return Ok((ia, strip_dht_keys(x, want)));
        }
        self.cached.remove(&g);
        // Nameless: ask everyone; a directory answers everywhere, a file at its data subvolume.
        let w = with_dht_keys(want);
        let results = join_all((0..self.n()).map(|i| {
            let w = &w;
            async move {
                if self.is_up(i) {
                    self.sub(i).lookup(ctx, loc, w).await
                } else {
                    Err(Errno::ENOTCONN)
                }
            }
        }))
        .await;
        for (i, r) in results.iter().enumerate() {
            if let Ok((ia, x)) = r {
                if ia.is_dir() {
                    return self.lookup_dir(ctx, loc, want, true).await;
                }
                if !is_linkto(ia, x) {
                    self.cached.insert(ia.gfid, i);
                    return Ok((ia.clone(), strip_dht_keys(x.clone(), want)));
                }
            }
        }
        if results.iter().any(|r| matches!(r, Err(Errno::ENOTCONN))) {
            Err(Errno::ENOTCONN)
        } else {
            Err(Errno::ESTALE)
        }
    }

    async fn stat(&self, ctx: &Ctx, loc: &Loc) -> Result<Iatt> {
        match self.target(ctx, loc).await? {
            Some(i) => self.sub(i).stat(ctx, loc).await,
            None => self.stat_dir(ctx, loc).await,
        }
    }

    async fn fstat(&self, ctx: &Ctx, fd: &FdRef) -> Result<Iatt> {
        if fd.is_dir {
            return self.stat(ctx, &Loc::gfid(fd.gfid)).await;
        }
        let (i, f) = self.file_fd(ctx, fd).await?;
        self.sub(i).fstat(ctx, &f).await
    }

    async fn setattr(&self, ctx: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
        match self.target(ctx, loc).await? {
            Some(i) => self.sub(i).setattr(ctx, loc, attr).await,
            None => {
                let ia = self.on_all(|i| self.sub(i).setattr(ctx, loc, attr)).await?;
                // The other copies' times may be newer than this one's.
                Ok(self.stat_dir(ctx, &Loc::gfid(ia.gfid)).await.unwrap_or(ia))
            }
        }
    }

    async fn access(&self, ctx: &Ctx, loc: &Loc, mask: u32) -> Result<()> {
        match self.target(ctx, loc).await? {
            Some(i) => self.sub(i).access(ctx, loc, mask).await,
            None => self.sub(self.first_up()?).access(ctx, loc, mask).await,
        }
    }

    async fn create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt)> {
        let i = self.hashed(ctx, loc).await?;
        if !self.is_up(i) {
            return Err(Errno::ENOTCONN);
        }
        let (child, ia) = self.sub(i).create(ctx, loc, flags, entry).await?;
        self.cached.insert(ia.gfid, i);
        Ok((self.wrap_file(ia.gfid, flags, i, child), ia))
    }

    async fn open(&self, ctx: &Ctx, loc: &Loc, flags: i32) -> Result<FdRef> {
        let i = self.target(ctx, loc).await?.ok_or(Errno::EISDIR)?;
        if !self.is_up(i) {
            return Err(Errno::ENOTCONN);
        }
        let child = self.sub(i).open(ctx, loc, flags).await?;
        Ok(self.wrap_file(child.gfid, flags, i, child))
    }

    async fn read(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Bytes> {
        let (i, f) = self.file_fd(ctx, fd).await?;
        self.sub(i).read(ctx, &f, offset, size).await
    }

    async fn write(&self, ctx: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
        let (i, f) = self.file_fd(ctx, fd).await?;
        self.sub(i).write(ctx, &f, offset, data).await
    }

    async fn truncate(&self, ctx: &Ctx, loc: &Loc, size: u64) -> Result<Iatt> {
        let i = self.target(ctx, loc).await?.ok_or(Errno::EISDIR)?;
        self.sub(i).truncate(ctx, loc, size).await
    }

    async fn ftruncate(&self, ctx: &Ctx, fd: &FdRef, size: u64) -> Result<Iatt> {
        let (i, f) = self.file_fd(ctx, fd).await?;
        self.sub(i).ftruncate(ctx, &f, size).await
    }

    async fn flush(&self, ctx: &Ctx, fd: &FdRef) -> Result<()> {
        if fd.is_dir {
            return Ok(());
        }
        let (i, f) = self.file_fd(ctx, fd).await?;
        self.sub(i).flush(ctx, &f).await
    }

    async fn fsync(&self, ctx: &Ctx, fd: &FdRef, datasync: bool) -> Result<()> {
        if fd.is_dir {
            let d = self.dht_fd(fd).ok_or(Errno::EBADF)?;
            for (i, f) in d.dirs.iter().enumerate() {
                if let Some(f) = f {
                    self.sub(i).fsync(ctx, f, datasync).await?;
                }
            }
            return Ok(());
        }
        let (i, f) = self.file_fd(ctx, fd).await?;
        self.sub(i).fsync(ctx, &f, datasync).await
    }

    async fn release(&self, fd: &FdRef) {
        if let Some(d) = fd
            .ctx_del(self.base.id)
            .and_then(|a| a.downcast::<DhtFd>().ok())
        {
            if let Some((i, f)) = &d.file {
                self.sub(*i).release(f).await;
            }
            for (i, f) in d.dirs.iter().enumerate() {
                if let Some(f) = f {
                    self.sub(i).release(f).await;
                }
            }
        }
    }

    async fn mkdir(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<Iatt> {
        self.do_mkdir(ctx, loc, entry).await
    }

    async fn mknod(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<Iatt> {
        let i = self.hashed(ctx, loc).await?;
        if !self.is_up(i) {
            return Err(Errno::ENOTCONN);
        }
        let ia = self.sub(i).mknod(ctx, loc, entry).await?;
        self.cached.insert(ia.gfid, i);
        Ok(ia)
    }

    async fn symlink(&self, ctx: &Ctx, loc: &Loc, target: &str, entry: &NewEntry) -> Result<Iatt> {
        let i = self.hashed(ctx, loc).await?;
        if !self.is_up(i) {
            return Err(Errno::ENOTCONN);
        }
        let ia = self.sub(i).symlink(ctx, loc, target, entry).await?;
        self.cached.insert(ia.gfid, i);
        Ok(ia)
    }

    async fn readlink(&self, ctx: &Ctx, loc: &Loc) -> Result<String> {
        let i = self.target(ctx, loc).await?.ok_or(Errno::EINVAL)?;
        self.sub(i).readlink(ctx, loc).await
    }

    async fn link(&self, ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        let src = self.target(ctx, oldloc).await?.ok_or(Errno::EPERM)?;
        let hashed = self.hashed(ctx, newloc).await?;
        if !self.is_up(src) || !self.is_up(hashed) {
            return Err(Errno::ENOTCONN);
        }
        let ia = self.sub(src).link(ctx, oldloc, newloc).await?;
        if hashed != src {
            self.make_linkto(ctx, hashed, src, newloc, ia.gfid).await?;
        }
        Ok(ia)
    }

    async fn unlink(&self, ctx: &Ctx, loc: &Loc) -> Result<()> {
        let hint = match (loc.parent, &loc.name) {
            (Some(p), Some(n)) => self.name_hints.remove(&(p, n.clone())).map(|(_, v)| v),
            _ => None,
        };
        if let Some((gfid, data)) = hint
            && self.is_up(data)
        {
            let hashed = self.hashed(ctx, loc).await?;
            // The brick refuses (ESTALE) if the name now holds another inode.
            match self
                .sub(data)
                .unlink(
                    ctx,
                    &Loc {
                        gfid: Some(gfid),
                        ..loc.clone()
                    },
                )
                .await
            {
                Ok(()) => {
                    if hashed != data && self.is_up(hashed) {
                        match self.sub(hashed).unlink(ctx, loc).await {
                            Ok(()) | Err(Errno::ENOENT) => {}
                            Err(e) => {
                                tracing::warn!(xlator = %self.base.name, "could not remove a linkto file: {e}")
                            }
                        }
                    }
                    return Ok(());
                }
                Err(Errno::ESTALE) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        let (ia, _) = self.lookup_named(ctx, loc, &Xattrs::new(), true).await?;
        if ia.is_dir() {
            return Err(Errno::EISDIR);
        }
        let data = self.cached_subvol(ctx, ia.gfid).await?;
        let hashed = self.hashed(ctx, loc).await?;
        self.sub(data).unlink(ctx, loc).await?;
        if hashed != data && self.is_up(hashed) {
            match self.sub(hashed).unlink(ctx, loc).await {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => {
                    tracing::warn!(xlator = %self.base.name, "could not remove a linkto file: {e}")
                }
            }
        }
        Ok(())
    }

    async fn rmdir(&self, ctx: &Ctx, loc: &Loc) -> Result<()> {
        self.do_rmdir(ctx, loc).await
    }

    async fn rename(&self, ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        self.forget_name(oldloc);
        self.forget_name(newloc);
        let (src_ia, _) = self.lookup_named(ctx, oldloc, &Xattrs::new(), true).await?;
        if src_ia.is_dir() {
            return self.rename_dir(ctx, oldloc, newloc, &src_ia).await;
        }
        let src = self.cached_subvol(ctx, src_ia.gfid).await?;
        let old_hashed = self.hashed(ctx, oldloc).await?;
        let new_hashed = self.hashed(ctx, newloc).await?;
        let target = match self.lookup_named(ctx, newloc, &Xattrs::new(), true).await {
            Ok((ia, _)) if ia.gfid == src_ia.gfid => return Ok(src_ia),
            Ok((ia, _)) if ia.is_dir() => return Err(Errno::EISDIR),
            Ok((ia, _)) => Some((ia.gfid, self.cached_subvol(ctx, ia.gfid).await?)),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(e),
        };
        for i in [src, old_hashed, new_hashed] {
            if !self.is_up(i) {
                return Err(Errno::ENOTCONN);
            }
        }
        let ia = self.sub(src).rename(ctx, oldloc, newloc).await?;
        // The replaced file's data on another subvolume goes, as its name now means ours.
        if let Some((_, tdata)) = target
            && tdata != src
        {
            let _ = self.sub(tdata).unlink(ctx, newloc).await;
        }
        if new_hashed != src {
            let _ = self.sub(new_hashed).unlink(ctx, newloc).await;
            self.make_linkto(ctx, new_hashed, src, newloc, ia.gfid)
                .await?;
        }
        // The old name's linkto, if it had one, points nowhere now.
        if old_hashed != src {
            let _ = self.sub(old_hashed).unlink(ctx, oldloc).await;
        }
        self.cached.insert(ia.gfid, src);
        Ok(ia)
    }

    async fn opendir(&self, ctx: &Ctx, loc: &Loc) -> Result<FdRef> {
        let g = match loc.gfid {
            Some(g) => g,
            None => self.lookup(ctx, loc, &Xattrs::new()).await?.0.gfid,
        };
        let dloc = Loc {
            gfid: Some(g),
            ..loc.clone()
        };
        let fds = join_all((0..self.n()).map(|i| {
            let dloc = &dloc;
            async move {
                if self.is_up(i) {
                    self.sub(i).opendir(ctx, dloc).await.ok()
                } else {
                    None
                }
            }
        }))
        .await;
        if fds.iter().all(|f| f.is_none()) {
            return Err(if self.first_up().is_err() {
                Errno::ENOTCONN
            } else {
                Errno::ENOENT
            });
        }
        let fd = Fd::new(g, libc::O_RDONLY, true);
        fd.ctx_set(
            self.base.id,
            Arc::new(DhtFd {
                file: None,
                dirs: fds,
            }),
        );
        Ok(fd)
    }

    async fn readdir(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Vec<Dirent>> {
        self.readdir_any(ctx, fd, offset, size, &Xattrs::new(), false)
            .await
    }

    async fn readdirp(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: &Xattrs,
    ) -> Result<Vec<Dirent>> {
        self.readdir_any(ctx, fd, offset, size, want, true).await
    }

    async fn statfs(&self, ctx: &Ctx, loc: &Loc) -> Result<Statvfs> {
        let all = join_all((0..self.n()).map(|i| async move {
            if self.is_up(i) {
                self.sub(i).statfs(ctx, loc).await
            } else {
                Err(Errno::ENOTCONN)
            }
        }))
        .await;
        let ok: Vec<Statvfs> = all.into_iter().filter_map(|r| r.ok()).collect();
        let first = *ok.first().ok_or(Errno::ENOTCONN)?;
        let frsize = first.frsize.max(1);
        let mut s = Statvfs {
            blocks: 0,
            bfree: 0,
            bavail: 0,
            files: 0,
            ffree: 0,
            favail: 0,
            ..first
        };
        for x in &ok {
            let scale = |v: u64| (v as u128 * x.frsize.max(1) as u128 / frsize as u128) as u64;
            s.blocks += scale(x.blocks);
            s.bfree += scale(x.bfree);
            s.bavail += scale(x.bavail);
            s.files += x.files;
            s.ffree += x.ffree;
            s.favail += x.favail;
        }
        Ok(s)
    }

    async fn getxattr(&self, ctx: &Ctx, loc: &Loc, name: Option<&str>) -> Result<Xattrs> {
        match self.target(ctx, loc).await? {
            Some(i) => self.sub(i).getxattr(ctx, loc, name).await,
            None => self.sub(self.first_up()?).getxattr(ctx, loc, name).await,
        }
    }

    async fn setxattr(&self, ctx: &Ctx, loc: &Loc, xattrs: &Xattrs, flags: i32) -> Result<()> {
        if xattrs.keys().any(|k| k.starts_with(keys::DHT_LAYOUT)) {
            return Err(Errno::EPERM);
        }
        match self.target(ctx, loc).await? {
            Some(i) => self.sub(i).setxattr(ctx, loc, xattrs, flags).await,
            None => {
                self.on_all(|i| self.sub(i).setxattr(ctx, loc, xattrs, flags))
                    .await
            }
        }
    }

    async fn removexattr(&self, ctx: &Ctx, loc: &Loc, name: &str) -> Result<()> {
        match self.target(ctx, loc).await? {
            Some(i) => self.sub(i).removexattr(ctx, loc, name).await,
            None => {
                self.on_all(|i| self.sub(i).removexattr(ctx, loc, name))
                    .await
            }
        }
    }

    async fn xattrop(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        op: XattropOp,
        xattrs: &Xattrs,
    ) -> Result<Xattrs> {
        match self.target(ctx, loc).await? {
            Some(i) => self.sub(i).xattrop(ctx, loc, op, xattrs).await,
            None => {
                self.sub(self.first_up()?)
                    .xattrop(ctx, loc, op, xattrs)
                    .await
            }
        }
    }

    async fn inodelk(
        &self,
        ctx: &Ctx,
        domain: &str,
        loc: &Loc,
        cmd: LockCmd,
        lock: &Flock,
    ) -> Result<Flock> {
        match self.target(ctx, loc).await? {
            Some(i) => self.sub(i).inodelk(ctx, domain, loc, cmd, lock).await,
            None => {
                self.sub(self.first_up()?)
                    .inodelk(ctx, domain, loc, cmd, lock)
                    .await
            }
        }
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
        self.sub(self.first_up()?)
            .entrylk(ctx, domain, loc, basename, cmd, typ)
            .await
    }

    async fn lk(&self, ctx: &Ctx, fd: &FdRef, cmd: LockCmd, lock: &Flock) -> Result<Flock> {
        let (i, f) = self.file_fd(ctx, fd).await?;
        self.sub(i).lk(ctx, &f, cmd, lock).await
    }

    async fn fallocate(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        let (i, f) = self.file_fd(ctx, fd).await?;
        self.sub(i).fallocate(ctx, &f, mode, offset, len).await
    }

    async fn discard(&self, ctx: &Ctx, fd: &FdRef, offset: u64, len: u64) -> Result<()> {
        let (i, f) = self.file_fd(ctx, fd).await?;
        self.sub(i).discard(ctx, &f, offset, len).await
    }
}
