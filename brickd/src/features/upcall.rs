//! `features/upcall` (GlusterFS's upcall xlator, its cache-invalidation part): remembers, per
//! inode, which client connections looked at it lately, and when one connection changes an
//! inode tells every other one that holds it, so their md-cache (and the kernels of their
//! FUSE mounts) drop what they cached. A client is remembered for
//! `cache-invalidation-timeout` seconds after its last fop on the inode; its md-cache must not
//! keep anything longer (the gateway caps md-cache-timeout at it).
//!
//! What is told follows GlusterFS's `upcall_cache_invalidate` calls: a write, truncate,
//! setattr or xattr change tells of the inode; a create, mkdir, mknod, symlink, link, unlink,
//! rmdir or rename tells of the parent directories (their names and attributes) and of the
//! inode itself (its nlink and ctime).

use async_trait::async_trait;
use bytes::Bytes;
use dashmap::DashMap;
use engine::options::{OptKind, OptionSpec};
use engine::registry::XlatorType;
use engine::upcall_flags as uf;
use engine::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new(
        "cache-invalidation",
        OptKind::Bool,
        Some("off"),
        "tell clients when another client changes an inode they looked at (GlusterFS's features.cache-invalidation)",
    ),
    OptionSpec::new(
        "cache-invalidation-timeout",
        OptKind::Seconds { min: 0, max: 3600 },
        Some("60"),
        "seconds a client is told of changes to an inode after it last touched it",
    ),
];

pub fn xlator_type() -> XlatorType {
    XlatorType {
        type_name: "features/upcall",
        options: OPTIONS,
        min_children: 1,
        max_children: 1,
        build: Arc::new(|base, o| {
            Ok(Arc::new(Upcalls {
                base,
                enabled: o.bool_or("cache-invalidation", false),
                timeout: o.secs_or("cache-invalidation-timeout", Duration::from_secs(60)),
                clients: DashMap::new(),
                interest: DashMap::new(),
                records: AtomicU64::new(0),
            }))
        }),
    }
}

pub struct Upcalls {
    base: XlatorBase,
    enabled: bool,
    timeout: Duration,
    clients: DashMap<u64, UpcallSink>,
    /// Inode → the clients that touched it and when they last did.
    interest: DashMap<Gfid, Vec<(u64, Instant)>>,
    records: AtomicU64,
}

/// Who is not told of a change: the client that made it, which knows. A gateway's internal
/// work (a rebalance moving a file, pid < 0) runs below its own md-cache on the same
/// connection, so its own cache hears of it too.
fn maker(ctx: &Ctx) -> u64 {
    if ctx.is_internal() { 0 } else { ctx.client_id }
}

/// Past this many inodes remembered, the expired ones are swept out.
const SWEEP_ABOVE: usize = 100_000;
/// Past this many unexpired ones (some 100 bytes each), clients are told to forget all.
const FORGET_ABOVE: usize = 1_000_000;

impl Upcalls {
    /// `client` looked at `g`: it hears of changes for the next `timeout`.
    fn touch(&self, client: u64, g: Gfid) {
        if !self.enabled || client == 0 || g.is_null() {
            return;
        }
        let now = Instant::now();
        {
            let mut e = self.interest.entry(g).or_default();
            match e.iter_mut().find(|(c, _)| *c == client) {
                Some(seen) => seen.1 = now,
                None => e.push((client, now)),
            }
        }
        if self
            .records
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(4096)
            && self.interest.len() > SWEEP_ABOVE
        {
            let timeout = self.timeout;
            self.interest.retain(|_, cs| {
                cs.retain(|(_, at)| at.elapsed() < timeout);
                !cs.is_empty()
            });
            if self.interest.len() > FORGET_ABOVE {
                // Still too many to keep: every client drops all it caches, and then
                // nothing here needs remembering. Memory stays bounded, caches stay right.
                // Forgotten first, told after: what a client looks up once told is kept.
                tracing::info!(xlator = %self.base.name, inodes = self.interest.len(), "too many inodes cached by clients: telling them to forget all");
                self.interest.clear();
                for c in self.clients.iter() {
                    (c.value())(Upcall::forget_all());
                }
            }
        }
    }

    fn touch_loc(&self, ctx: &Ctx, loc: &Loc) {
        if let Some(g) = loc.gfid {
            self.touch(ctx.client_id, g);
        }
        if let Some(p) = loc.parent {
            self.touch(ctx.client_id, p);
        }
    }

    /// `client` changed `g`: every other client that touched it lately is told.
    fn tell(&self, client: u64, g: Gfid, flags: u8) {
        if !self.enabled || g.is_null() {
            return;
        }
        let timeout = self.timeout;
        let mut targets = Vec::new();
        if let Some(mut e) = self.interest.get_mut(&g) {
            e.retain(|(_, at)| at.elapsed() < timeout);
            targets.extend(e.iter().map(|(c, _)| *c).filter(|c| *c != client));
        }
        if flags & uf::GONE != 0 {
            self.interest.remove(&g);
        }
        for c in targets {
            match self.clients.get(&c) {
                Some(sink) => sink(Upcall { gfid: g, flags }),
                None => {
                    // Gone: forget it here too.
                    if let Some(mut e) = self.interest.get_mut(&g) {
                        e.retain(|(x, _)| *x != c);
                    }
                }
            }
        }
    }

    /// Whether a change by `client` could concern anybody: only then is it worth a lookup
    /// to learn which inode a name pointed at.
    fn others(&self, client: u64) -> bool {
        self.enabled && self.clients.iter().any(|c| *c.key() != client)
    }

    /// The gfid of what `loc` names, asked of the child when the loc carries none and some
    /// other client could care.
    async fn resolve(&self, ctx: &Ctx, loc: &Loc) -> Option<Gfid> {
        if loc.gfid.is_some() {
            return loc.gfid;
        }
        if !self.others(maker(ctx)) || loc.name.is_none() {
            return None;
        }
        let c = self.base.first_child().ok()?;
        c.lookup(
            ctx,
            &Loc {
                path: None,
                ..loc.clone()
            },
            &Xattrs::new(),
        )
        .await
        .ok()
        .map(|(ia, _)| ia.gfid)
    }

    fn entry_changed(&self, ctx: &Ctx, loc: &Loc) {
        if let Some(p) = loc.parent {
            self.tell(maker(ctx), p, uf::ENTRIES | uf::ATTR);
        }
    }

    /// An entry made (create, mkdir, ...): the maker now holds the new inode and its parent.
    fn created(&self, ctx: &Ctx, loc: &Loc, ia: &Iatt) {
        self.entry_changed(ctx, loc);
        self.touch(ctx.client_id, ia.gfid);
        self.touch_loc(ctx, loc);
    }
}

#[async_trait]
impl Xlator for Upcalls {
    fn base(&self) -> &XlatorBase {
        &self.base
    }

    fn client_connect(&self, client_id: u64, sink: &UpcallSink) {
        if self.enabled {
            self.clients.insert(client_id, sink.clone());
        }
        for c in &self.base.children {
            c.client_connect(client_id, sink);
        }
    }

    async fn client_disconnect(&self, client_id: u64) {
        self.clients.remove(&client_id);
        for c in &self.base.children {
            c.client_disconnect(client_id).await;
        }
    }

    async fn lookup(&self, ctx: &Ctx, loc: &Loc, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        // Before the child reads anything: a change that lands after this read is then told.
        self.touch_loc(ctx, loc);
        let r = self.base.first_child()?.lookup(ctx, loc, want).await;
        if let Ok((ia, _)) = &r {
            self.touch(ctx.client_id, ia.gfid);
        }
        r
    }

    async fn stat(&self, ctx: &Ctx, loc: &Loc) -> Result<Iatt> {
        self.touch_loc(ctx, loc);
        let r = self.base.first_child()?.stat(ctx, loc).await;
        if let Ok(ia) = &r {
            self.touch(ctx.client_id, ia.gfid);
        }
        r
    }

    async fn fstat(&self, ctx: &Ctx, fd: &FdRef) -> Result<Iatt> {
        self.touch(ctx.client_id, fd.gfid);
        self.base.first_child()?.fstat(ctx, fd).await
    }

    async fn getxattr(&self, ctx: &Ctx, loc: &Loc, name: Option<&str>) -> Result<Xattrs> {
        self.touch_loc(ctx, loc);
        self.base.first_child()?.getxattr(ctx, loc, name).await
    }

    async fn open(&self, ctx: &Ctx, loc: &Loc, flags: i32) -> Result<FdRef> {
        self.touch_loc(ctx, loc);
        let fd = self.base.first_child()?.open(ctx, loc, flags).await?;
        self.touch(ctx.client_id, fd.gfid);
        if flags & libc::O_TRUNC != 0 && flags & libc::O_ACCMODE != libc::O_RDONLY {
            self.tell(maker(ctx), fd.gfid, uf::ATTR | uf::DATA);
        }
        Ok(fd)
    }

    async fn opendir(&self, ctx: &Ctx, loc: &Loc) -> Result<FdRef> {
        self.touch_loc(ctx, loc);
        let fd = self.base.first_child()?.opendir(ctx, loc).await?;
        self.touch(ctx.client_id, fd.gfid);
        Ok(fd)
    }

    async fn readdirp(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: &Xattrs,
    ) -> Result<Vec<Dirent>> {
        self.touch(ctx.client_id, fd.gfid);
        let r = self
            .base
            .first_child()?
            .readdirp(ctx, fd, offset, size, want)
            .await;
        if let Ok(entries) = &r {
            // The attributes listed may be cached above as any lookup's.
            for d in entries {
                if let Some(ia) = &d.iatt {
                    self.touch(ctx.client_id, ia.gfid);
                }
            }
        }
        r
    }

    async fn setattr(&self, ctx: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
        let ia = self.base.first_child()?.setattr(ctx, loc, attr).await?;
        self.tell(maker(ctx), ia.gfid, uf::ATTR);
        self.touch(ctx.client_id, ia.gfid);
        Ok(ia)
    }

    async fn write(&self, ctx: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
        let ia = self
            .base
            .first_child()?
            .write(ctx, fd, offset, data)
            .await?;
        self.tell(maker(ctx), fd.gfid, uf::ATTR | uf::DATA);
        self.touch(ctx.client_id, fd.gfid);
        Ok(ia)
    }

    async fn truncate(&self, ctx: &Ctx, loc: &Loc, size: u64) -> Result<Iatt> {
        let ia = self.base.first_child()?.truncate(ctx, loc, size).await?;
        self.tell(maker(ctx), ia.gfid, uf::ATTR | uf::DATA);
        self.touch(ctx.client_id, ia.gfid);
        Ok(ia)
    }

    async fn ftruncate(&self, ctx: &Ctx, fd: &FdRef, size: u64) -> Result<Iatt> {
        let ia = self.base.first_child()?.ftruncate(ctx, fd, size).await?;
        self.tell(maker(ctx), fd.gfid, uf::ATTR | uf::DATA);
        Ok(ia)
    }

    async fn fallocate(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        self.base
            .first_child()?
            .fallocate(ctx, fd, mode, offset, len)
            .await?;
        self.tell(maker(ctx), fd.gfid, uf::ATTR | uf::DATA);
        Ok(())
    }

    async fn discard(&self, ctx: &Ctx, fd: &FdRef, offset: u64, len: u64) -> Result<()> {
        self.base
            .first_child()?
            .discard(ctx, fd, offset, len)
            .await?;
        self.tell(maker(ctx), fd.gfid, uf::ATTR | uf::DATA);
        Ok(())
    }

    async fn setxattr(&self, ctx: &Ctx, loc: &Loc, xattrs: &Xattrs, flags: i32) -> Result<()> {
        self.base
            .first_child()?
            .setxattr(ctx, loc, xattrs, flags)
            .await?;
        if let Some(g) = self.resolve(ctx, loc).await {
            self.tell(maker(ctx), g, uf::ATTR | uf::XATTR);
        }
        Ok(())
    }

    async fn removexattr(&self, ctx: &Ctx, loc: &Loc, name: &str) -> Result<()> {
        self.base.first_child()?.removexattr(ctx, loc, name).await?;
        if let Some(g) = self.resolve(ctx, loc).await {
            self.tell(maker(ctx), g, uf::ATTR | uf::XATTR);
        }
        Ok(())
    }

    async fn create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt, PostParent)> {
        let (fd, ia, parent) = self
            .base
            .first_child()?
            .create(ctx, loc, flags, entry)
            .await?;
        self.created(ctx, loc, &ia);
        Ok((fd, ia, parent))
    }

    async fn mkdir(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        let (ia, parent) = self.base.first_child()?.mkdir(ctx, loc, entry).await?;
        self.created(ctx, loc, &ia);
        Ok((ia, parent))
    }

    async fn mknod(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        let (ia, parent) = self.base.first_child()?.mknod(ctx, loc, entry).await?;
        self.created(ctx, loc, &ia);
        Ok((ia, parent))
    }

    async fn symlink(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        target: &str,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        let (ia, parent) = self
            .base
            .first_child()?
            .symlink(ctx, loc, target, entry)
            .await?;
        self.created(ctx, loc, &ia);
        Ok((ia, parent))
    }

    async fn link(&self, ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        let ia = self.base.first_child()?.link(ctx, oldloc, newloc).await?;
        // The inode gained a name: its nlink and ctime moved.
        self.tell(maker(ctx), ia.gfid, uf::ATTR);
        self.created(ctx, newloc, &ia);
        Ok(ia)
    }

    async fn unlink(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        let victim = self.resolve(ctx, loc).await;
        let parent = self.base.first_child()?.unlink(ctx, loc).await?;
        self.entry_changed(ctx, loc);
        if let Some(v) = victim {
            // Another name may keep it: its nlink and ctime moved either way.
            self.tell(maker(ctx), v, uf::ATTR);
        }
        Ok(parent)
    }

    async fn rmdir(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        let victim = self.resolve(ctx, loc).await;
        let parent = self.base.first_child()?.rmdir(ctx, loc).await?;
        self.entry_changed(ctx, loc);
        if let Some(v) = victim {
            self.tell(maker(ctx), v, uf::ATTR | uf::ENTRIES | uf::GONE);
        }
        Ok(parent)
    }

    async fn rename(
        &self,
        ctx: &Ctx,
        oldloc: &Loc,
        newloc: &Loc,
    ) -> Result<(Iatt, PostParent, PostParent)> {
        let replaced = self.resolve(ctx, newloc).await;
        let r = self.base.first_child()?.rename(ctx, oldloc, newloc).await?;
        let ia = &r.0;
        self.entry_changed(ctx, oldloc);
        if newloc.parent != oldloc.parent {
            self.entry_changed(ctx, newloc);
        }
        // Its ctime moved (and a directory's "..").
        self.tell(maker(ctx), ia.gfid, uf::ATTR);
        if let Some(v) = replaced.filter(|v| *v != ia.gfid) {
            self.tell(maker(ctx), v, uf::ATTR | uf::ENTRIES);
        }
        self.touch(ctx.client_id, ia.gfid);
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    /// A child that answers every fop it is asked with one fixed inode.
    struct Leaf {
        base: XlatorBase,
        ia: Iatt,
    }

    #[async_trait]
    impl Xlator for Leaf {
        fn base(&self) -> &XlatorBase {
            &self.base
        }
        async fn lookup(&self, _: &Ctx, _: &Loc, _: &Xattrs) -> Result<(Iatt, Xattrs)> {
            Ok((self.ia.clone(), Xattrs::new()))
        }
        async fn setattr(&self, _: &Ctx, _: &Loc, _: &SetAttr) -> Result<Iatt> {
            Ok(self.ia.clone())
        }
        async fn unlink(&self, _: &Ctx, _: &Loc) -> Result<PostParent> {
            Ok(None)
        }
        async fn mkdir(&self, _: &Ctx, _: &Loc, _: &NewEntry) -> Result<(Iatt, PostParent)> {
            Ok((self.ia.clone(), None))
        }
    }

    fn graph(enabled: bool) -> (Arc<Upcalls>, Gfid) {
        let g = Gfid::random();
        let leaf: XlatorRef = Arc::new(Leaf {
            base: XlatorBase::new("leaf", "test/leaf", vec![]),
            ia: Iatt {
                gfid: g,
                mode: libc::S_IFREG | 0o644,
                ..Default::default()
            },
        });
        let up = Arc::new(Upcalls {
            base: XlatorBase::new("up", "features/upcall", vec![leaf]),
            enabled,
            timeout: Duration::from_secs(60),
            clients: DashMap::new(),
            interest: DashMap::new(),
            records: AtomicU64::new(0),
        });
        (up, g)
    }

    fn client(up: &Upcalls, id: u64) -> Arc<Mutex<Vec<Upcall>>> {
        let got = Arc::new(Mutex::new(Vec::new()));
        let g2 = got.clone();
        up.client_connect(id, &(Arc::new(move |u| g2.lock().push(u)) as UpcallSink));
        got
    }

    fn ctx(client_id: u64) -> Ctx {
        Ctx {
            client_id,
            ..Ctx::root()
        }
    }

    #[tokio::test]
    async fn a_change_is_told_to_the_other_clients_that_looked_not_to_its_maker() {
        let (up, g) = graph(true);
        let (a, b, c) = (client(&up, 1), client(&up, 2), client(&up, 3));
        let dir = Gfid::random();
        up.lookup(&ctx(1), &Loc::child(dir, "f"), &Xattrs::new())
            .await
            .unwrap();
        up.lookup(&ctx(2), &Loc::gfid(g), &Xattrs::new())
            .await
            .unwrap();
        up.setattr(&ctx(2), &Loc::gfid(g), &SetAttr::default())
            .await
            .unwrap();
        assert_eq!(
            *a.lock(),
            vec![Upcall {
                gfid: g,
                flags: uf::ATTR
            }]
        );
        assert!(b.lock().is_empty(), "the maker of a change is not told");
        assert!(
            c.lock().is_empty(),
            "a client that never looked is not told"
        );

        // An entry change tells the parent's names, and the unlinked inode's nlink.
        up.unlink(&ctx(2), &Loc::child(dir, "f")).await.unwrap();
        let got = a.lock().clone();
        assert!(got.contains(&Upcall {
            gfid: dir,
            flags: uf::ENTRIES | uf::ATTR
        }));
        assert!(got.contains(&Upcall {
            gfid: g,
            flags: uf::ATTR
        }));
    }

    #[tokio::test]
    async fn off_tells_nobody_and_a_gone_client_is_forgotten() {
        let (up, g) = graph(false);
        let a = client(&up, 1);
        up.lookup(&ctx(1), &Loc::gfid(g), &Xattrs::new())
            .await
            .unwrap();
        up.setattr(&ctx(2), &Loc::gfid(g), &SetAttr::default())
            .await
            .unwrap();
        assert!(a.lock().is_empty());

        let (up, g) = graph(true);
        let a = client(&up, 1);
        up.lookup(&ctx(1), &Loc::gfid(g), &Xattrs::new())
            .await
            .unwrap();
        up.client_disconnect(1).await;
        up.setattr(&ctx(2), &Loc::gfid(g), &SetAttr::default())
            .await
            .unwrap();
        assert!(a.lock().is_empty());
        assert!(
            up.interest
                .get(&g)
                .is_none_or(|e| e.iter().all(|(c, _)| *c != 1))
        );
    }
}
