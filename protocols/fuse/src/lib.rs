//! FUSE frontend: serves a translator graph as a kernel mount through `fuser`.
//!
//! Several dispatch threads read requests from /dev/fuse; every request becomes a tokio task
//! that calls the graph and replies from there, so a slow brick never stalls dispatch. Inode
//! numbers are the gfids' low 64 bits (as GlusterFS's FUSE client), kept in a table with the
//! lookup counts the kernel expects, so `forget` frees exactly what lookups handed out.

mod attr;

use attr::{file_attr, system_time};
use bytes::Bytes;
use dashmap::DashMap;
use engine::*;
use fuser::{
    AccessFlags, Config, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyLock, ReplyOpen,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, SessionACL, TimeOrNow, WriteFlags,
};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::runtime::Handle;

#[derive(Debug, thiserror::Error)]
pub enum FuseError {
    #[error("mount point {0}: {1}")]
    Mountpoint(PathBuf, std::io::Error),
    #[error("mounting at {0}: {1}")]
    Mount(PathBuf, std::io::Error),
}

#[derive(Clone, Debug)]
pub struct MountOptions {
    pub fsname: String,
    pub attr_timeout: Duration,
    pub entry_timeout: Duration,
    pub threads: usize,
    pub allow_other: bool,
    /// The `protocol` label of this mount's operations in /metrics: `fuse` for a user's
    /// mount, `smb` for the one Samba serves.
    pub protocol: &'static str,
    /// The volume mounted, for the per-volume metrics.
    pub volume: String,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            fsname: "gwfs".into(),
            attr_timeout: Duration::from_secs(1),
            entry_timeout: Duration::from_secs(1),
            threads: 4,
            allow_other: true,
            protocol: "fuse",
            volume: String::new(),
        }
    }
}

pub struct MountHandle {
    session: Option<fuser::BackgroundSession>,
    mountpoint: PathBuf,
}

impl MountHandle {
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Unmounts and waits for the dispatch threads to end.
    pub fn unmount(mut self) -> std::io::Result<()> {
        self.do_unmount()
    }

    /// Blocks until the file system is unmounted from outside (`umount`).
    pub fn wait(mut self) -> std::io::Result<()> {
        match self.session.take() {
            Some(s) => s.join(),
            None => Ok(()),
        }
    }

    fn do_unmount(&mut self) -> std::io::Result<()> {
        let Some(s) = self.session.take() else {
            return Ok(());
        };
        match s.umount_and_join() {
            Ok(()) => Ok(()),
            Err(e) => {
                // A busy mount (a shell cd'ed into it) cannot go cleanly; detach it lazily
                // so the process can still exit.
                let lazy = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(&self.mountpoint)
                    .status();
                if lazy.is_ok_and(|s| s.success()) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

impl Drop for MountHandle {
    fn drop(&mut self) {
        if let Err(e) = self.do_unmount() {
            tracing::warn!(mountpoint = %self.mountpoint.display(), "unmount failed: {e}");
        }
    }
}

/// Mounts `top` at `mountpoint`. Requests run as tasks on `rt`.
pub fn mount(
    top: XlatorRef,
    mountpoint: &Path,
    opts: MountOptions,
    rt: Handle,
) -> std::result::Result<MountHandle, FuseError> {
    let mp = mountpoint
        .canonicalize()
        .map_err(|e| FuseError::Mountpoint(mountpoint.to_path_buf(), e))?;
    let mut cfg = Config::default();
    cfg.mount_options = vec![
        MountOption::FSName(opts.fsname.clone()),
        MountOption::Subtype("gwfs".into()),
        // The kernel checks permissions against the attributes, as for a local file system.
        MountOption::DefaultPermissions,
        MountOption::Dev,
        MountOption::Suid,
    ];
    if opts.allow_other {
        cfg.acl = SessionACL::All;
    }
    cfg.n_threads = Some(opts.threads.max(1));
    cfg.clone_fd = true;
    let fs = Fs {
        inner: Arc::new(Inner {
            top,
            inodes: DashMap::new(),
            fhs: DashMap::new(),
            next_fh: AtomicU64::new(1),
            attr_ttl: opts.attr_timeout,
            entry_ttl: opts.entry_timeout,
            protocol: opts.protocol,
            metrics: engine::metrics::ProtocolOps::new(opts.protocol, FUSE_OPS)
                .with_volume(&opts.volume),
        }),
        rt,
    };
    fs.inner.inodes.insert(
        1,
        Inode {
            gfid: Gfid::ROOT,
            parent: 1,
            name: String::new(),
            nlookup: 1,
        },
    );
    let session = fuser::spawn_mount(fs, &mp, &cfg).map_err(|e| FuseError::Mount(mp.clone(), e))?;
    tracing::info!(mountpoint = %mp.display(), "mounted");
    Ok(MountHandle {
        session: Some(session),
        mountpoint: mp,
    })
}

struct Inode {
    gfid: Gfid,
    parent: u64,
    name: String,
    nlookup: u64,
}

struct OpenFd {
    fd: FdRef,
    /// Set once a POSIX lock went through this handle, so close must drop the owner's locks.
    locked: AtomicBool,
}

struct Inner {
    top: XlatorRef,
    inodes: DashMap<u64, Inode>,
    fhs: DashMap<u64, Arc<OpenFd>>,
    next_fh: AtomicU64,
    attr_ttl: Duration,
    entry_ttl: Duration,
    metrics: engine::metrics::ProtocolOps,
    /// What the fops' `Ctx` names as their protocol ("fuse", or "smb" for Samba's mount).
    protocol: &'static str,
}

/// The FUSE requests counted in the metrics.
const FUSE_OPS: &[&str] = &[
    "access",
    "create",
    "fallocate",
    "flush",
    "fsync",
    "fsyncdir",
    "getattr",
    "getlk",
    "getxattr",
    "link",
    "listxattr",
    "lookup",
    "mkdir",
    "mknod",
    "open",
    "opendir",
    "read",
    "readdir",
    "readdirplus",
    "readlink",
    "release",
    "releasedir",
    "removexattr",
    "rename",
    "rmdir",
    "setattr",
    "setlk",
    "setxattr",
    "statfs",
    "symlink",
    "unlink",
    "write",
];

struct Fs {
    inner: Arc<Inner>,
    rt: Handle,
}

impl Fs {
    fn ctx_of(&self, req: &Request) -> Ctx {
        Ctx {
            uid: req.uid(),
            gid: req.gid(),
            pid: req.pid() as i32,
            protocol: self.inner.protocol,
            ..Default::default()
        }
    }
}

fn errno(e: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(e.0)
}

fn name_of(n: &OsStr) -> Result<String> {
    n.to_str().map(String::from).ok_or(Errno::EILSEQ)
}

/// Xattrs the cluster translators and the gateway keep on bricks (S3 owners, ACLs and
/// policies among them); users of the mount never see or set them.
fn internal_xattr(name: &str) -> bool {
    name.starts_with("trusted.gfid")
        || name.starts_with("trusted.glusterfs.")
        || name.starts_with("trusted.afr.")
        || name.starts_with("trusted.ec.")
        || name.starts_with("trusted.gateway.")
}

impl Inner {
    fn gfid(&self, ino: u64) -> Result<Gfid> {
        self.inodes.get(&ino).map(|i| i.gfid).ok_or(Errno::ESTALE)
    }

    fn path(&self, ino: u64) -> Option<String> {
        let mut parts = Vec::new();
        let mut cur = ino;
        for _ in 0..4096 {
            if cur == 1 {
                parts.reverse();
                return Some(format!("/{}", parts.join("/")));
            }
            let i = self.inodes.get(&cur)?;
            parts.push(i.name.clone());
            cur = i.parent;
        }
        None
    }

    fn child_loc(&self, parent: u64, name: &str) -> Result<Loc> {
        let pg = self.gfid(parent)?;
        let mut loc = Loc::child(pg, name);
        if let Some(p) = self.path(parent) {
            loc.path = Some(if p == "/" {
                format!("/{name}")
            } else {
                format!("{p}/{name}")
            });
        }
        Ok(loc)
    }

    fn loc(&self, ino: u64) -> Result<Loc> {
        let g = self.gfid(ino)?;
        let i = self.inodes.get(&ino).ok_or(Errno::ESTALE)?;
        if ino == 1 {
            return Ok(Loc::root());
        }
        let mut l = Loc::gfid(g);
        if let Some(pg) = self.inodes.get(&i.parent).map(|p| p.gfid) {
            l.parent = Some(pg);
            l.name = Some(i.name.clone());
        }
        drop(i);
        l.path = self.path(ino);
        // A named loc is resolved by name on the brick; for inode fops the gfid is enough and
        // survives renames by other clients.
        Ok(Loc {
            parent: None,
            name: None,
            ..l
        })
    }

    /// Records a lookup handed to the kernel.
    fn remember(&self, parent: u64, name: &str, ia: &Iatt) -> u64 {
        let ino = ia.gfid.ino();
        let mut e = self.inodes.entry(ino).or_insert_with(|| Inode {
            gfid: ia.gfid,
            parent,
            name: name.to_string(),
            nlookup: 0,
        });
        e.gfid = ia.gfid;
        if ino != 1 {
            e.parent = parent;
            e.name = name.to_string();
        }
        e.nlookup += 1;
        ino
    }

    fn forget(&self, ino: u64, n: u64) {
        if ino == 1 {
            return;
        }
        let gone = match self.inodes.get_mut(&ino) {
            Some(mut i) => {
                i.nlookup = i.nlookup.saturating_sub(n);
                i.nlookup == 0
            }
            None => false,
        };
        if gone {
            self.inodes.remove_if(&ino, |_, i| i.nlookup == 0);
        }
    }

    fn fd(&self, fh: FileHandle) -> Result<Arc<OpenFd>> {
        self.fhs.get(&fh.0).map(|f| f.clone()).ok_or(Errno::EBADF)
    }

    fn keep(&self, fd: FdRef) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.fhs.insert(
            fh,
            Arc::new(OpenFd {
                fd,
                locked: AtomicBool::new(false),
            }),
        );
        fh
    }
}

impl Fs {
    /// Runs a request's work on the runtime, counted in the FUSE metrics under `op` (replies
    /// are sent inside `f`, so only the count and the time are known here, not the outcome).
    fn spawn<F>(&self, op: &'static str, f: impl FnOnce(Arc<Inner>) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let start = std::time::Instant::now();
        let inner = self.inner.clone();
        let work = f(inner.clone());
        self.rt.spawn(async move {
            work.await;
            inner.metrics.record(op, true, start.elapsed());
        });
    }
}

fn new_entry(mode: u32, umask: u32, rdev: u64) -> NewEntry {
    NewEntry {
        gfid: Gfid::random(),
        mode,
        umask,
        rdev,
        xattrs: Xattrs::new(),
    }
}

fn lock_type(typ: i32) -> LockType {
    match typ {
        libc::F_RDLCK => LockType::Read,
        libc::F_WRLCK => LockType::Write,
        _ => LockType::Unlock,
    }
}

fn flock_of(start: u64, end: u64, typ: i32, pid: u32, owner: u64) -> Flock {
    // FUSE's end is inclusive, with OFFSET_MAX for "to the end of the file".
    let len = if end >= i64::MAX as u64 {
        0
    } else {
        end - start + 1
    };
    Flock {
        typ: lock_type(typ),
        start,
        len,
        pid: pid as i32,
        owner,
    }
}

impl Filesystem for Fs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        for cap in [
            InitFlags::FUSE_ASYNC_READ,
            InitFlags::FUSE_BIG_WRITES,
            InitFlags::FUSE_POSIX_LOCKS,
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_READDIRPLUS_AUTO,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_AUTO_INVAL_DATA,
            InitFlags::FUSE_ATOMIC_O_TRUNC,
            InitFlags::FUSE_MAX_PAGES,
        ] {
            let _ = config.add_capabilities(cap);
        }
        let _ = config.set_max_write(1 << 20);
        let _ = config.set_max_readahead(1 << 20);
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let ctx = self.ctx_of(req);
        let name = name.to_owned();
        self.spawn("lookup", |s| async move {
            let r = async {
                let name = name_of(&name)?;
                let loc = s.child_loc(parent.0, &name)?;
                let (ia, _) = s.top.lookup(&ctx, &loc, &Xattrs::new()).await?;
                s.remember(parent.0, &name, &ia);
                Ok(ia)
            }
            .await;
            match r {
                Ok(ia) => reply.entry(&s.entry_ttl, &file_attr(&ia), Generation(0)),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.inner.forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let ctx = self.ctx_of(req);
        self.spawn("getattr", |s| async move {
            let r = async {
                if let Some(fh) = fh
                    && let Ok(f) = s.fd(fh)
                    && !f.fd.is_dir
                {
                    return s.top.fstat(&ctx, &f.fd).await;
                }
                s.top.stat(&ctx, &s.loc(ino.0)?).await
            }
            .await;
            match r {
                Ok(ia) => reply.attr(&s.attr_ttl, &file_attr(&ia)),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let ctx = self.ctx_of(req);
        let conv = |t: Option<TimeOrNow>| {
            t.map(|t| match t {
                TimeOrNow::Now => SetTime::Now,
                TimeOrNow::SpecificTime(st) => SetTime::At(system_time(st)),
            })
        };
        let attr = SetAttr {
            mode,
            uid,
            gid,
            size: None,
            atime: conv(atime),
            mtime: conv(mtime),
        };
        self.spawn("setattr", |s| async move {
            let r = async {
                let loc = s.loc(ino.0)?;
                let mut ia = None;
                if let Some(size) = size {
                    ia = Some(match fh.and_then(|fh| s.fd(fh).ok()) {
                        Some(f) => s.top.ftruncate(&ctx, &f.fd, size).await?,
                        None => s.top.truncate(&ctx, &loc, size).await?,
                    });
                }
                if attr != SetAttr::default() {
                    ia = Some(s.top.setattr(&ctx, &loc, &attr).await?);
                }
                match ia {
                    Some(ia) => Ok(ia),
                    None => s.top.stat(&ctx, &loc).await,
                }
            }
            .await;
            match r {
                Ok(ia) => reply.attr(&s.attr_ttl, &file_attr(&ia)),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        let ctx = self.ctx_of(req);
        self.spawn("readlink", |s| async move {
            match async { s.top.readlink(&ctx, &s.loc(ino.0)?).await }.await {
                Ok(t) => reply.data(t.as_bytes()),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let ctx = self.ctx_of(req);
        let name = name.to_owned();
        self.spawn("mknod", |s| async move {
            let r = async {
                let name = name_of(&name)?;
                let loc = s.child_loc(parent.0, &name)?;
                let ia = s
                    .top
                    .mknod(&ctx, &loc, &new_entry(mode, umask, rdev as u64))
                    .await?;
                s.remember(parent.0, &name, &ia);
                Ok(ia)
            }
            .await;
            match r {
                Ok(ia) => reply.entry(&s.entry_ttl, &file_attr(&ia), Generation(0)),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let ctx = self.ctx_of(req);
        let name = name.to_owned();
        self.spawn("mkdir", |s| async move {
            let r = async {
                let name = name_of(&name)?;
                let loc = s.child_loc(parent.0, &name)?;
                let ia = s
                    .top
                    .mkdir(
                        &ctx,
                        &Loc {
                            path: s.path(parent.0),
                            ..loc
                        },
                        &new_entry(mode, umask, 0),
                    )
                    .await?;
                s.remember(parent.0, &name, &ia);
                Ok(ia)
            }
            .await;
            match r {
                Ok(ia) => reply.entry(&s.entry_ttl, &file_attr(&ia), Generation(0)),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let ctx = self.ctx_of(req);
        let name = name.to_owned();
        self.spawn("unlink", |s| async move {
            match async {
                s.top
                    .unlink(&ctx, &s.child_loc(parent.0, &name_of(&name)?)?)
                    .await
            }
            .await
            {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let ctx = self.ctx_of(req);
        let name = name.to_owned();
        self.spawn("rmdir", |s| async move {
            match async {
                s.top
                    .rmdir(&ctx, &s.child_loc(parent.0, &name_of(&name)?)?)
                    .await
            }
            .await
            {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let ctx = self.ctx_of(req);
        let (name, target) = (link_name.to_owned(), target.to_owned());
        self.spawn("symlink", |s| async move {
            let r = async {
                let name = name_of(&name)?;
                let target = target.to_str().ok_or(Errno::EILSEQ)?;
                let loc = s.child_loc(parent.0, &name)?;
                let ia = s
                    .top
                    .symlink(&ctx, &loc, target, &new_entry(0o777, 0, 0))
                    .await?;
                s.remember(parent.0, &name, &ia);
                Ok(ia)
            }
            .await;
            match r {
                Ok(ia) => reply.entry(&s.entry_ttl, &file_attr(&ia), Generation(0)),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let ctx = self.ctx_of(req);
        let (name, newname) = (name.to_owned(), newname.to_owned());
        self.spawn("rename", |s| async move {
            let r = async {
                let (name, newname) = (name_of(&name)?, name_of(&newname)?);
                let old = s.child_loc(parent.0, &name)?;
                let new = s.child_loc(newparent.0, &newname)?;
                if !(flags - RenameFlags::RENAME_NOREPLACE).is_empty() {
                    return Err(Errno::EINVAL);
                }
                if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                    match s.top.lookup(&ctx, &new, &Xattrs::new()).await {
                        Ok(_) => return Err(Errno::EEXIST),
                        Err(Errno::ENOENT) => {}
                        Err(e) => return Err(e),
                    }
                }
                let ia = s.top.rename(&ctx, &old, &new).await?;
                if let Some(mut i) = s.inodes.get_mut(&ia.gfid.ino()) {
                    i.parent = newparent.0;
                    i.name = newname;
                }
                Ok(())
            }
            .await;
            match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let ctx = self.ctx_of(req);
        let newname = newname.to_owned();
        self.spawn("link", |s| async move {
            let r = async {
                let name = name_of(&newname)?;
                let old = s.loc(ino.0)?;
                let new = s.child_loc(newparent.0, &name)?;
                let ia = s.top.link(&ctx, &old, &new).await?;
                s.remember(newparent.0, &name, &ia);
                Ok(ia)
            }
            .await;
            match r {
                Ok(ia) => reply.entry(&s.entry_ttl, &file_attr(&ia), Generation(0)),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let ctx = self.ctx_of(req);
        self.spawn("open", |s| async move {
            match async { s.top.open(&ctx, &s.loc(ino.0)?, flags.0).await }.await {
                Ok(fd) => reply.opened(FileHandle(s.keep(fd)), FopenFlags::empty()),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn read(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let ctx = self.ctx_of(req);
        self.spawn("read", |s| async move {
            match async { s.top.read(&ctx, &s.fd(fh)?.fd, offset, size).await }.await {
                Ok(data) => {
                    s.metrics.read_bytes(data.len() as u64);
                    reply.data(&data)
                }
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let ctx = self.ctx_of(req);
        // fuser lends the request buffer only for this call: this is the one copy.
        let data = Bytes::copy_from_slice(data);
        self.spawn("write", |s| async move {
            let n = data.len() as u32;
            match async { s.top.write(&ctx, &s.fd(fh)?.fd, offset, data).await }.await {
                Ok(_) => {
                    s.metrics.written_bytes(u64::from(n));
                    reply.written(n)
                }
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn flush(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let ctx = Ctx {
            lk_owner: lock_owner.0,
            ..self.ctx_of(req)
        };
        self.spawn("flush", |s| async move {
            let r = async {
                let f = s.fd(fh)?;
                // close(2) drops the process's POSIX locks on the file.
                if f.locked.load(Ordering::Relaxed) {
                    let unlock = Flock {
                        typ: LockType::Unlock,
                        start: 0,
                        len: 0,
                        pid: ctx.pid,
                        owner: lock_owner.0,
                    };
                    let _ = s.top.lk(&ctx, &f.fd, LockCmd::Set, &unlock).await;
                }
                s.top.flush(&ctx, &f.fd).await
            }
            .await;
            match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let f = self.inner.fhs.remove(&fh.0);
        reply.ok();
        if let Some((_, f)) = f {
            self.spawn("release", |s| async move { s.top.release(&f.fd).await });
        }
    }

    fn fsync(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let ctx = self.ctx_of(req);
        self.spawn("fsync", |s| async move {
            match async { s.top.fsync(&ctx, &s.fd(fh)?.fd, datasync).await }.await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let ctx = self.ctx_of(req);
        self.spawn("opendir", |s| async move {
            match async { s.top.opendir(&ctx, &s.loc(ino.0)?).await }.await {
                Ok(fd) => reply.opened(FileHandle(s.keep(fd)), FopenFlags::empty()),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn readdir(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let ctx = self.ctx_of(req);
        self.spawn("readdir", |s| async move {
            match async { s.top.readdir(&ctx, &s.fd(fh)?.fd, offset, 32 * 1024).await }.await {
                Ok(ents) => {
                    for e in ents {
                        let kind = attr::kind_of_dtype(e.d_type);
                        if reply.add(INodeNo(e.ino), e.d_off, kind, &e.name) {
                            break;
                        }
                    }
                    reply.ok()
                }
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let ctx = self.ctx_of(req);
        self.spawn("readdirplus", |s| async move {
            match async {
                s.top
                    .readdirp(&ctx, &s.fd(fh)?.fd, offset, 32 * 1024, &Xattrs::new())
                    .await
            }
            .await
            {
                Ok(ents) => {
                    for e in ents {
                        let Some(ia) = &e.iatt else { continue };
                        if reply.add(
                            INodeNo(ia.gfid.ino()),
                            e.d_off,
                            &e.name,
                            &s.entry_ttl,
                            &file_attr(ia),
                            Generation(0),
                        ) {
                            break;
                        }
                        // The kernel counts every entry it was given as a lookup.
                        s.remember(ino.0, &e.name, ia);
                    }
                    reply.ok()
                }
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let f = self.inner.fhs.remove(&fh.0);
        reply.ok();
        if let Some((_, f)) = f {
            self.spawn("releasedir", |s| async move { s.top.release(&f.fd).await });
        }
    }

    fn fsyncdir(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let ctx = self.ctx_of(req);
        self.spawn("fsyncdir", |s| async move {
            match async { s.top.fsync(&ctx, &s.fd(fh)?.fd, datasync).await }.await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn statfs(&self, req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let ctx = self.ctx_of(req);
        self.spawn("statfs", |s| async move {
            match s.top.statfs(&ctx, &Loc::root()).await {
                Ok(v) => reply.statfs(
                    v.blocks,
                    v.bfree,
                    v.bavail,
                    v.files,
                    v.ffree,
                    v.bsize as u32,
                    v.namemax as u32,
                    v.frsize as u32,
                ),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let ctx = self.ctx_of(req);
        let (name, value) = (name.to_owned(), Bytes::copy_from_slice(value));
        self.spawn("setxattr", |s| async move {
            let r = async {
                let name = name_of(&name)?;
                if internal_xattr(&name) {
                    return Err(Errno::EPERM);
                }
                s.top
                    .setxattr(&ctx, &s.loc(ino.0)?, &Xattrs::from([(name, value)]), flags)
                    .await
            }
            .await;
            match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let ctx = self.ctx_of(req);
        let name = name.to_owned();
        self.spawn("getxattr", |s| async move {
            let r = async {
                let name = name_of(&name)?;
                if internal_xattr(&name) {
                    return Err(Errno::ENODATA);
                }
                let xs = s.top.getxattr(&ctx, &s.loc(ino.0)?, Some(&name)).await?;
                xs.get(&name).cloned().ok_or(Errno::ENODATA)
            }
            .await;
            match r {
                Ok(v) if size == 0 => reply.size(v.len() as u32),
                Ok(v) if v.len() > size as usize => reply.error(errno(Errno::ERANGE)),
                Ok(v) => reply.data(&v),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let ctx = self.ctx_of(req);
        self.spawn("listxattr", |s| async move {
            let r = async { s.top.getxattr(&ctx, &s.loc(ino.0)?, None).await }.await;
            match r {
                Ok(xs) => {
                    let mut buf = Vec::new();
                    for k in xs.keys().filter(|k| !internal_xattr(k)) {
                        buf.extend_from_slice(k.as_bytes());
                        buf.push(0);
                    }
                    if size == 0 {
                        reply.size(buf.len() as u32)
                    } else if buf.len() > size as usize {
                        reply.error(errno(Errno::ERANGE))
                    } else {
                        reply.data(&buf)
                    }
                }
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let ctx = self.ctx_of(req);
        let name = name.to_owned();
        self.spawn("removexattr", |s| async move {
            let r = async {
                let name = name_of(&name)?;
                if internal_xattr(&name) {
                    return Err(Errno::EPERM);
                }
                s.top.removexattr(&ctx, &s.loc(ino.0)?, &name).await
            }
            .await;
            match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let ctx = self.ctx_of(req);
        self.spawn("access", |s| async move {
            match async { s.top.access(&ctx, &s.loc(ino.0)?, mask.bits() as u32).await }.await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let ctx = self.ctx_of(req);
        let name = name.to_owned();
        self.spawn("create", |s| async move {
            let r = async {
                let name = name_of(&name)?;
                let loc = s.child_loc(parent.0, &name)?;
                let (fd, ia) = s
                    .top
                    .create(&ctx, &loc, flags, &new_entry(mode, umask, 0))
                    .await?;
                s.remember(parent.0, &name, &ia);
                Ok((s.keep(fd), ia))
            }
            .await;
            match r {
                Ok((fh, ia)) => reply.created(
                    &s.entry_ttl,
                    &file_attr(&ia),
                    Generation(0),
                    FileHandle(fh),
                    FopenFlags::empty(),
                ),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn getlk(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        reply: ReplyLock,
    ) {
        let ctx = Ctx {
            lk_owner: lock_owner.0,
            ..self.ctx_of(req)
        };
        self.spawn("getlk", |s| async move {
            let fl = flock_of(start, end, typ, pid, lock_owner.0);
            match async { s.top.lk(&ctx, &s.fd(fh)?.fd, LockCmd::Get, &fl).await }.await {
                Ok(got) => {
                    let typ = match got.typ {
                        LockType::Read => libc::F_RDLCK,
                        LockType::Write => libc::F_WRLCK,
                        LockType::Unlock => libc::F_UNLCK,
                    };
                    let end = if got.len == 0 {
                        i64::MAX as u64
                    } else {
                        got.start + got.len - 1
                    };
                    reply.locked(got.start, end, typ, got.pid as u32)
                }
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn setlk(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        sleep: bool,
        reply: ReplyEmpty,
    ) {
        let ctx = Ctx {
            lk_owner: lock_owner.0,
            ..self.ctx_of(req)
        };
        self.spawn("setlk", |s| async move {
            let fl = flock_of(start, end, typ, pid, lock_owner.0);
            let cmd = if sleep {
                LockCmd::SetWait
            } else {
                LockCmd::Set
            };
            let r = async {
                let f = s.fd(fh)?;
                f.locked.store(true, Ordering::Relaxed);
                s.top.lk(&ctx, &f.fd, cmd, &fl).await
            }
            .await;
            match r {
                Ok(_) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn fallocate(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let ctx = self.ctx_of(req);
        self.spawn("fallocate", |s| async move {
            match async {
                s.top
                    .fallocate(&ctx, &s.fd(fh)?.fd, mode, offset, length)
                    .await
            }
            .await
            {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        });
    }
}
