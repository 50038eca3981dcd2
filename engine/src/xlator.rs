//! The translator trait: one async method per file operation, each defaulting to the only
//! child (GlusterFS's `defaults.c`), so a translator implements exactly the fops it changes.

use crate::fop::*;
use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

pub type XlatorRef = Arc<dyn Xlator>;

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// What every translator has: its name and type from the volfile, its children, and its
/// parents (set by the graph builder) so that `notify` can travel up.
pub struct XlatorBase {
    pub name: String,
    pub type_name: String,
    /// Unique per process: the key of this translator's per-fd context.
    pub id: usize,
    pub children: Vec<XlatorRef>,
    parents: RwLock<Vec<(Weak<dyn Xlator>, usize)>>,
}

impl XlatorBase {
    pub fn new(
        name: impl Into<String>,
        type_name: impl Into<String>,
        children: Vec<XlatorRef>,
    ) -> Self {
        XlatorBase {
            name: name.into(),
            type_name: type_name.into(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            children,
            parents: RwLock::new(Vec::new()),
        }
    }

    /// The child fops fall through to. A translator without children (storage/posix,
    /// protocol/client) overrides every fop it supports; the rest fail with ENOSYS.
    pub fn first_child(&self) -> Result<&XlatorRef> {
        self.children.first().ok_or(Errno::ENOSYS)
    }

    /// The gfid `loc` designates: its own, else what the first child's lookup of the name
    /// finds (None when that fails). For translators that keep state by gfid and are handed
    /// a name.
    pub async fn gfid_below(&self, ctx: &Ctx, loc: &Loc) -> Option<Gfid> {
        if loc.gfid.is_some() {
            return loc.gfid;
        }
        let (ia, _) = self
            .first_child()
            .ok()?
            .lookup(ctx, loc, &Xattrs::new())
            .await
            .ok()?;
        Some(ia.gfid)
    }

    pub fn add_parent(&self, parent: Weak<dyn Xlator>, index_in_parent: usize) {
        self.parents.write().push((parent, index_in_parent));
    }

    /// Sends an event to every parent, telling each which of its children this is.
    pub async fn notify_parents(&self, event: Event) {
        let parents: Vec<_> = self.parents.read().clone();
        for (p, idx) in parents {
            if let Some(p) = p.upgrade() {
                p.notify(event, idx).await;
            }
        }
    }
}

/// Links every translator of a graph to its parents. Called once by the graph builder.
pub fn link_parents(top: &XlatorRef) {
    fn walk(x: &XlatorRef, seen: &mut std::collections::HashSet<usize>) {
        if !seen.insert(x.base().id) {
            return;
        }
        for (i, c) in x.base().children.iter().enumerate() {
            c.base().add_parent(Arc::downgrade(x), i);
            walk(c, seen);
        }
    }
    walk(top, &mut Default::default());
}

#[async_trait]
pub trait Xlator: Send + Sync + 'static {
    fn base(&self) -> &XlatorBase;

    fn name(&self) -> &str {
        &self.base().name
    }

    /// For the management code that drives a translator beyond fops (the heal daemon finds
    /// `cluster/replicate` this way); None for most.
    fn as_any(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        None
    }

    /// Called once the graph is linked, bottom-up; protocol/client starts connecting here.
    async fn init(&self) -> Result<()> {
        Ok(())
    }

    /// Called when the graph is torn down, top-down.
    async fn fini(&self) {}

    /// A client connection of a brick went away: drop what it held (locks), as GlusterFS's
    /// `client_destroy` callback. The default tells every child.
    async fn client_disconnect(&self, client_id: u64) {
        for c in &self.base().children {
            c.client_disconnect(client_id).await;
        }
    }

    /// A client connected to a brick (brick side): `features/upcall` keeps `sink` to tell it
    /// when other clients change what it looked at. The default tells every child.
    fn client_connect(&self, client_id: u64, sink: &UpcallSink) {
        for c in &self.base().children {
            c.client_connect(client_id, sink);
        }
    }

    /// An event from child number `from`. The default passes it on to the parents.
    async fn notify(&self, event: Event, from: usize) {
        let _ = from;
        self.base().notify_parents(event).await;
    }

    /// Resolves `loc` (parent+name or gfid) and returns its attributes and the xattrs named in
    /// `want` (a key ending in `*` asks for every xattr with that prefix).
    async fn lookup(&self, ctx: &Ctx, loc: &Loc, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        self.base().first_child()?.lookup(ctx, loc, want).await
    }

    async fn stat(&self, ctx: &Ctx, loc: &Loc) -> Result<Iatt> {
        self.base().first_child()?.stat(ctx, loc).await
    }

    async fn fstat(&self, ctx: &Ctx, fd: &FdRef) -> Result<Iatt> {
        self.base().first_child()?.fstat(ctx, fd).await
    }

    async fn setattr(&self, ctx: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
        self.base().first_child()?.setattr(ctx, loc, attr).await
    }

    async fn access(&self, ctx: &Ctx, loc: &Loc, mask: u32) -> Result<()> {
        self.base().first_child()?.access(ctx, loc, mask).await
    }

    async fn create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt, PostParent)> {
        self.base()
            .first_child()?
            .create(ctx, loc, flags, entry)
            .await
    }

    async fn open(&self, ctx: &Ctx, loc: &Loc, flags: i32) -> Result<FdRef> {
        self.base().first_child()?.open(ctx, loc, flags).await
    }

    /// Reads up to `size` bytes; fewer only at end of file.
    async fn read(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Bytes> {
        self.base().first_child()?.read(ctx, fd, offset, size).await
    }

    /// Writes all of `data`; returns the attributes after the write.
    async fn write(&self, ctx: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
        self.base()
            .first_child()?
            .write(ctx, fd, offset, data)
            .await
    }

    async fn truncate(&self, ctx: &Ctx, loc: &Loc, size: u64) -> Result<Iatt> {
        self.base().first_child()?.truncate(ctx, loc, size).await
    }

    async fn ftruncate(&self, ctx: &Ctx, fd: &FdRef, size: u64) -> Result<Iatt> {
        self.base().first_child()?.ftruncate(ctx, fd, size).await
    }

    async fn flush(&self, ctx: &Ctx, fd: &FdRef) -> Result<()> {
        self.base().first_child()?.flush(ctx, fd).await
    }

    async fn fsync(&self, ctx: &Ctx, fd: &FdRef, datasync: bool) -> Result<()> {
        self.base().first_child()?.fsync(ctx, fd, datasync).await
    }

    /// The last reference to an open fd is gone (file or directory).
    async fn release(&self, fd: &FdRef) {
        if let Ok(c) = self.base().first_child() {
            c.release(fd).await
        }
    }

    async fn mkdir(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        self.base().first_child()?.mkdir(ctx, loc, entry).await
    }

    async fn mknod(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        self.base().first_child()?.mknod(ctx, loc, entry).await
    }

    async fn symlink(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        target: &str,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        self.base()
            .first_child()?
            .symlink(ctx, loc, target, entry)
            .await
    }

    async fn readlink(&self, ctx: &Ctx, loc: &Loc) -> Result<String> {
        self.base().first_child()?.readlink(ctx, loc).await
    }

    /// Makes `newloc` another name of the inode at `oldloc` (which must carry its gfid).
    async fn link(&self, ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        self.base().first_child()?.link(ctx, oldloc, newloc).await
    }

    async fn unlink(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        self.base().first_child()?.unlink(ctx, loc).await
    }

    async fn rmdir(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        self.base().first_child()?.rmdir(ctx, loc).await
    }

    /// Renames `oldloc` to `newloc`, replacing what `newloc` names; returns the moved inode
    /// and the old and the new parent's attributes after it.
    async fn rename(
        &self,
        ctx: &Ctx,
        oldloc: &Loc,
        newloc: &Loc,
    ) -> Result<(Iatt, PostParent, PostParent)> {
        self.base().first_child()?.rename(ctx, oldloc, newloc).await
    }

    async fn opendir(&self, ctx: &Ctx, loc: &Loc) -> Result<FdRef> {
        self.base().first_child()?.opendir(ctx, loc).await
    }

    /// Entries after cookie `offset` (0 = from the start), at most about `size` bytes of them.
    /// An empty reply means the end of the directory.
    async fn readdir(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Vec<Dirent>> {
        self.base()
            .first_child()?
            .readdir(ctx, fd, offset, size)
            .await
    }

    /// readdir with each entry's attributes and the xattrs named in `want`.
    async fn readdirp(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: &Xattrs,
    ) -> Result<Vec<Dirent>> {
        self.base()
            .first_child()?
            .readdirp(ctx, fd, offset, size, want)
            .await
    }

    async fn statfs(&self, ctx: &Ctx, loc: &Loc) -> Result<Statvfs> {
        self.base().first_child()?.statfs(ctx, loc).await
    }

    /// One xattr by name, or all of them when `name` is None.
    async fn getxattr(&self, ctx: &Ctx, loc: &Loc, name: Option<&str>) -> Result<Xattrs> {
        self.base().first_child()?.getxattr(ctx, loc, name).await
    }

    /// `flags` are XATTR_CREATE / XATTR_REPLACE.
    async fn setxattr(&self, ctx: &Ctx, loc: &Loc, xattrs: &Xattrs, flags: i32) -> Result<()> {
        self.base()
            .first_child()?
            .setxattr(ctx, loc, xattrs, flags)
            .await
    }

    async fn removexattr(&self, ctx: &Ctx, loc: &Loc, name: &str) -> Result<()> {
        self.base().first_child()?.removexattr(ctx, loc, name).await
    }

    /// Atomically combines `xattrs` into the stored values; returns the new values.
    async fn xattrop(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        op: XattropOp,
        xattrs: &Xattrs,
    ) -> Result<Xattrs> {
        self.base()
            .first_child()?
            .xattrop(ctx, loc, op, xattrs)
            .await
    }

    /// Internal inode lock in `domain` (cluster translators' transactions).
    async fn inodelk(
        &self,
        ctx: &Ctx,
        domain: &str,
        loc: &Loc,
        cmd: LockCmd,
        lock: &Flock,
    ) -> Result<Flock> {
        self.base()
            .first_child()?
            .inodelk(ctx, domain, loc, cmd, lock)
            .await
    }

    /// Internal lock on a name (or the whole directory when `basename` is None) in `domain`.
    async fn entrylk(
        &self,
        ctx: &Ctx,
        domain: &str,
        loc: &Loc,
        basename: Option<&str>,
        cmd: EntrylkCmd,
        typ: EntrylkType,
    ) -> Result<()> {
        self.base()
            .first_child()?
            .entrylk(ctx, domain, loc, basename, cmd, typ)
            .await
    }

    /// POSIX record lock on an open file.
    async fn lk(&self, ctx: &Ctx, fd: &FdRef, cmd: LockCmd, lock: &Flock) -> Result<Flock> {
        self.base().first_child()?.lk(ctx, fd, cmd, lock).await
    }

    async fn fallocate(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        self.base()
            .first_child()?
            .fallocate(ctx, fd, mode, offset, len)
            .await
    }

    /// SHA-256 of up to `len` bytes at `offset` and how many there were (fewer at end of
    /// file): data heal compares these instead of moving the blocks (GlusterFS's rchecksum).
    async fn rchecksum(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        len: u32,
    ) -> Result<(u32, [u8; 32])> {
        self.base()
            .first_child()?
            .rchecksum(ctx, fd, offset, len)
            .await
    }

    async fn discard(&self, ctx: &Ctx, fd: &FdRef, offset: u64, len: u64) -> Result<()> {
        self.base()
            .first_child()?
            .discard(ctx, fd, offset, len)
            .await
    }

    /// Runs `steps` in order, stopping at the first that fails. By default each step is this
    /// translator's own fop, so whatever a translator does to locks and xattrops still
    /// happens; `protocol/client` sends them to the brick as one request instead.
    async fn txn_steps(&self, ctx: &Ctx, steps: &[TxnStep]) -> std::result::Result<(), StepFailed> {
        for (done, step) in steps.iter().enumerate() {
            let r = match step {
                TxnStep::Inodelk {
                    domain,
                    loc,
                    cmd,
                    lock,
                } => self.inodelk(ctx, domain, loc, *cmd, lock).await.map(|_| ()),
                TxnStep::Entrylk {
                    domain,
                    loc,
                    basename,
                    cmd,
                    typ,
                } => {
                    self.entrylk(ctx, domain, loc, basename.as_deref(), *cmd, *typ)
                        .await
                }
                TxnStep::Xattrop { loc, op, xattrs } => {
                    self.xattrop(ctx, loc, *op, xattrs).await.map(|_| ())
                }
            };
            if let Err(error) = r {
                return Err(StepFailed { done, error });
            }
        }
        Ok(())
    }
}
