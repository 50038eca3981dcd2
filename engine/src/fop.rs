//! The file-operation model shared by every translator, the brick RPC and the frontends.
//!
//! Mirrors GlusterFS's `loc_t`, `fd_t`, `struct iatt` and `dict_t`, reduced to what a Rust
//! graph needs: data travels as `Bytes`, errors are errnos so each frontend maps them once.

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

pub use crate::time::{Stamp, Timespec};

/// An errno. Every fop fails with one, so each frontend can map it exactly.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub struct Errno(pub i32);

impl Errno {
    pub const EPERM: Errno = Errno(libc::EPERM);
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    pub const EIO: Errno = Errno(libc::EIO);
    pub const EBADF: Errno = Errno(libc::EBADF);
    pub const EAGAIN: Errno = Errno(libc::EAGAIN);
    pub const ENOMEM: Errno = Errno(libc::ENOMEM);
    pub const EACCES: Errno = Errno(libc::EACCES);
    pub const EEXIST: Errno = Errno(libc::EEXIST);
    pub const EXDEV: Errno = Errno(libc::EXDEV);
    pub const ENOTDIR: Errno = Errno(libc::ENOTDIR);
    pub const EISDIR: Errno = Errno(libc::EISDIR);
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    pub const ENOSPC: Errno = Errno(libc::ENOSPC);
    pub const EROFS: Errno = Errno(libc::EROFS);
    pub const ENAMETOOLONG: Errno = Errno(libc::ENAMETOOLONG);
    pub const ENOSYS: Errno = Errno(libc::ENOSYS);
    pub const ENOTEMPTY: Errno = Errno(libc::ENOTEMPTY);
    pub const ENODATA: Errno = Errno(libc::ENODATA);
    pub const ENOTSUP: Errno = Errno(libc::ENOTSUP);
    pub const ENOTCONN: Errno = Errno(libc::ENOTCONN);
    pub const ESTALE: Errno = Errno(libc::ESTALE);
    pub const ETIMEDOUT: Errno = Errno(libc::ETIMEDOUT);
    pub const EDEADLK: Errno = Errno(libc::EDEADLK);
    pub const EMLINK: Errno = Errno(libc::EMLINK);
    pub const ERANGE: Errno = Errno(libc::ERANGE);
    pub const EFBIG: Errno = Errno(libc::EFBIG);
    pub const EILSEQ: Errno = Errno(libc::EILSEQ);
    pub const EPROTO: Errno = Errno(libc::EPROTO);
    pub const EDQUOT: Errno = Errno(libc::EDQUOT);

    /// The errno of an `std::io::Error`, EIO when it carries none.
    pub fn from_io(e: &std::io::Error) -> Errno {
        Errno(e.raw_os_error().unwrap_or(libc::EIO))
    }

    pub fn code(self) -> i32 {
        self.0
    }
}

impl From<std::io::Error> for Errno {
    fn from(e: std::io::Error) -> Self {
        Errno::from_io(&e)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = std::io::Error::from_raw_os_error(self.0);
        write!(f, "{msg}")
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Errno({}: {})", self.0, self)
    }
}

pub type Result<T> = std::result::Result<T, Errno>;

/// A GlusterFS gfid: the 16-byte UUID that names an inode on every brick.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Gfid(pub [u8; 16]);

impl Gfid {
    pub const NULL: Gfid = Gfid([0; 16]);
    pub const ROOT: Gfid = Gfid([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

    pub fn random() -> Gfid {
        Gfid(*uuid::Uuid::new_v4().as_bytes())
    }

    pub fn is_null(&self) -> bool {
        self.0 == [0; 16]
    }

    pub fn is_root(&self) -> bool {
        *self == Gfid::ROOT
    }

    pub fn from_slice(b: &[u8]) -> Option<Gfid> {
        <[u8; 16]>::try_from(b).ok().map(Gfid)
    }

    pub fn parse(s: &str) -> Option<Gfid> {
        uuid::Uuid::parse_str(s).ok().map(|u| Gfid(*u.as_bytes()))
    }

    /// Inode number as GlusterFS's `gfid_to_ino` computes it: the last 8 bytes, big-endian.
    /// The root gfid maps to 1, which is what FUSE expects of its root.
    pub fn ino(&self) -> u64 {
        u64::from_be_bytes(self.0[8..16].try_into().expect("8 bytes"))
    }
}

impl fmt::Display for Gfid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", uuid::Uuid::from_bytes(self.0).hyphenated())
    }
}

impl fmt::Debug for Gfid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// A directory's attributes after a change of its names, returned with create, mkdir, mknod,
/// symlink, unlink, rmdir and rename (GlusterFS's `postparent`), so a cache above keeps them instead of asking again;
/// None where the layer below cannot say.
pub type PostParent = Option<Iatt>;

/// `struct iatt`: stat plus the gfid.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Iatt {
    pub gfid: Gfid,
    pub ino: u64,
    pub dev: u64,
    /// Full `st_mode`, file-type bits included.
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u32,
    pub blocks: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

impl Iatt {
    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }
    pub fn is_reg(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }
    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }
    /// DT_* value for a dirent of this inode.
    pub fn d_type(&self) -> u8 {
        mode_to_dtype(self.mode)
    }
}

pub fn mode_to_dtype(mode: u32) -> u8 {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => libc::DT_DIR,
        libc::S_IFREG => libc::DT_REG,
        libc::S_IFLNK => libc::DT_LNK,
        libc::S_IFCHR => libc::DT_CHR,
        libc::S_IFBLK => libc::DT_BLK,
        libc::S_IFIFO => libc::DT_FIFO,
        libc::S_IFSOCK => libc::DT_SOCK,
        _ => libc::DT_UNKNOWN,
    }
}

/// `loc_t`: where an inode is. Either a parent gfid and a name (for entry operations and named
/// lookups), or a gfid alone (bricks resolve it through their `.glusterfs` handle tree), or both.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Loc {
    pub parent: Option<Gfid>,
    pub name: Option<String>,
    pub gfid: Option<Gfid>,
    /// Volume-relative path ("/a/b") when the frontend knows it; distribute uses it to pick
    /// where a new directory's layout starts, as GlusterFS does. Never needed for correctness.
    pub path: Option<String>,
}

impl Loc {
    pub fn root() -> Loc {
        Loc {
            gfid: Some(Gfid::ROOT),
            path: Some("/".into()),
            ..Default::default()
        }
    }
    pub fn gfid(gfid: Gfid) -> Loc {
        Loc {
            gfid: Some(gfid),
            ..Default::default()
        }
    }
    pub fn child(parent: Gfid, name: impl Into<String>) -> Loc {
        Loc {
            parent: Some(parent),
            name: Some(name.into()),
            ..Default::default()
        }
    }
    pub fn with_gfid(mut self, gfid: Gfid) -> Loc {
        self.gfid = Some(gfid);
        self
    }
    pub fn with_path(mut self, path: impl Into<String>) -> Loc {
        self.path = Some(path.into());
        self
    }
    /// The name, or EINVAL for an entry operation that was given none.
    pub fn name(&self) -> Result<&str> {
        self.name.as_deref().ok_or(Errno::EINVAL)
    }
    pub fn parent(&self) -> Result<Gfid> {
        self.parent.ok_or(Errno::EINVAL)
    }
}

/// `dict_t` for xattrs and extra data: name → raw value.
pub type Xattrs = BTreeMap<String, Bytes>;

/// Who is asking: the caller's credentials and lock owner, as GlusterFS's `call_frame_t->root`.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Ctx {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub pid: i32,
    /// POSIX lock owner (FUSE's lock_owner); distinct owners conflict.
    pub lk_owner: u64,
    /// Set by the brick's protocol/server to its connection number, so locks a client held
    /// can be dropped when its connection goes; ignored on the client side.
    pub client_id: u64,
    /// The time this fop stamps on the inodes it changes (`features/utime`); None for
    /// lookups, reads and the cluster translators' own fops, which move no times.
    pub stamp: Option<Stamp>,
    /// An unlink or a rename of a file's data by a name distribute remembered (with the
    /// gfid it remembered in the loc): the brick refuses it (ESTALE) when the name holds a
    /// linkto file or another inode instead, as it does once a rebalance elsewhere moved the
    /// data away, and a rename too when its target is a linkto. The caller then looks the
    /// names up again rather than act on only the pointer and leave the data behind.
    pub refuse_linkto: bool,
    /// The frontend that asked ("fuse", "nfs", "smb", ...; empty for the gateway's own work):
    /// `debug/io-stats` labels its counts with it. Client side only, never sent to a brick.
    #[serde(skip)]
    pub protocol: &'static str,
    /// The caller may see and make the names the volume reserves for a frontend's own use
    /// (`features/reserved` hides them from everyone else). Client side only.
    #[serde(skip)]
    pub sees_reserved: bool,
    /// The caller uses a lookup's answer for the inode's gfid, type and xattrs, not for its
    /// times, size or link count (a frontend finding its top directory on every request):
    /// `performance/md-cache` may answer with a directory's attributes from before this
    /// client's own latest name changes in it, which moved only those. Client side only.
    #[serde(skip)]
    pub attrs_may_lag: bool,
    /// The caller's writes may be answered before the bricks hold them
    /// (`performance/write-behind`): a FUSE mount, whose kernel page cache makes the same
    /// promise and which says with fsync and close when data must be stored. A frontend that
    /// answers its client only once the data is stored leaves it false. Client side only.
    #[serde(skip)]
    pub write_behind: bool,
}

impl Ctx {
    pub fn root() -> Ctx {
        Ctx::default()
    }

    /// A gateway's own bookkeeping (a cache kept in an xattr), not a user's change: as
    /// GlusterFS's daemons, it runs with a negative pid, and `features/utime` stamps no time
    /// on what it does.
    pub fn internal() -> Ctx {
        Ctx {
            pid: INTERNAL_PID,
            ..Ctx::default()
        }
    }

    pub fn is_internal(&self) -> bool {
        self.pid < 0
    }

    /// A user's change whose time the caller chose (`features/utime` stamps this time, not
    /// its own clock), so the caller knows the times the change leaves before the reply: a
    /// checksum a frontend keeps in an xattr is stored with the mtime it describes, in the
    /// create that makes the file.
    pub fn at(&self, time: Timespec) -> Ctx {
        Ctx {
            stamp: Some(Stamp { time, flags: 0 }),
            ..self.clone()
        }
    }
}

/// The pid of [`Ctx::internal`] (GlusterFS's internal clients use negative pids too).
pub const INTERNAL_PID: i32 = -100;

/// What setattr changes; `None` leaves a field alone.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct SetAttr {
    /// Permission bits only (07777).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<SetTime>,
    pub mtime: Option<SetTime>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum SetTime {
    Now,
    At(Timespec),
}

/// A directory entry. `d_off` is the cookie that resumes a listing just after this entry.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Dirent {
    pub name: String,
    pub d_off: u64,
    pub d_type: u8,
    pub ino: u64,
    /// Filled by readdirp.
    pub iatt: Option<Iatt>,
    /// Filled by readdirp with the xattrs the caller asked for.
    pub xattrs: Xattrs,
}

impl Dirent {
    /// How much of a listing's `size` budget an entry named `name` takes: the bricks fill a
    /// reply by it, and a cache that answers listings pages by it too, so a caller gets the
    /// same page whichever answers.
    pub fn listing_cost(name: &str, plus: bool) -> usize {
        24 + name.len() + if plus { 128 } else { 0 }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Statvfs {
    pub bsize: u64,
    pub frsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub favail: u64,
    pub namemax: u64,
}

/// How xattrop combines the given values with the stored ones (GlusterFS `gf_xattrop_flags_t`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum XattropOp {
    /// Big-endian u32 arrays added element-wise (AFR changelogs).
    AddArray,
    /// Big-endian u64 arrays added element-wise.
    AddArray64,
    /// Bitwise OR.
    OrArray,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum LockType {
    Read,
    Write,
    Unlock,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum LockCmd {
    /// F_GETLK: report a conflicting lock, or Unlock if none.
    Get,
    /// F_SETLK: take or release without waiting; EAGAIN on conflict.
    Set,
    /// F_SETLKW: wait for the lock.
    SetWait,
}

/// A byte-range lock. `len == 0` means to the end of the file, as in `struct flock`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Flock {
    pub typ: LockType,
    pub start: u64,
    pub len: u64,
    pub pid: i32,
    pub owner: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum EntrylkCmd {
    Lock,
    LockNb,
    Unlock,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum EntrylkType {
    Read,
    Write,
}

/// One step of a cluster transaction's compound request (GlusterFS 4's compound fops): the
/// locks and changelog updates a transaction sends one brick together, run there in order.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum TxnStep {
    Inodelk {
        domain: String,
        loc: Loc,
        cmd: LockCmd,
        lock: Flock,
    },
    Entrylk {
        domain: String,
        loc: Loc,
        basename: Option<String>,
        cmd: EntrylkCmd,
        typ: EntrylkType,
    },
    Xattrop {
        loc: Loc,
        op: XattropOp,
        xattrs: Xattrs,
    },
}

/// Where a compound request stopped: the steps before `done` succeeded, step `done` failed
/// with `error`, and those after it were not run.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct StepFailed {
    pub done: usize,
    pub error: Errno,
}

/// Arguments that create an inode: the gfid is chosen by the client side of the graph, as
/// GlusterFS does with `gfid-req`, so every replica and every retry names it the same.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct NewEntry {
    pub gfid: Gfid,
    /// Full mode: permission bits, and the file type for mknod.
    pub mode: u32,
    pub umask: u32,
    pub rdev: u64,
    /// Xattrs set on the new inode before it becomes visible under its name
    /// (distribute's linkto, layouts, replicate's changelogs).
    pub xattrs: Xattrs,
    /// A created file's first bytes, written before it becomes visible under its name (as
    /// GlusterFS's `put` fop carries them), so a small file whole is one request per brick
    /// instead of a create, a write and their two transactions. Empty for every other
    /// entry; on the wire it is the create's frame payload, as a write's data is.
    #[serde(skip)]
    pub data: Bytes,
    /// An inodelk the brick grants on the new inode as it makes it (replicate's eager data
    /// lock, taken with the create instead of before the first write). Nobody else can have
    /// locked an inode that does not exist yet, so it never waits; a brick that cannot grant
    /// it makes nothing and answers EAGAIN. None for every other entry.
    pub lock: Option<NewLock>,
}

/// The inodelk a create asks for on its new inode, owned by the connection it comes on and
/// `lock.owner`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct NewLock {
    pub domain: String,
    pub lock: Flock,
}

/// Events that travel up the graph (GlusterFS `GF_EVENT_*`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Event {
    ChildUp,
    ChildDown,
    ChildConnecting,
    /// A brick says an inode this client looked at changed through another client
    /// (GlusterFS's `GF_EVENT_UPCALL`): caches above drop what they hold of it. The cluster
    /// translators pass it up unchanged.
    Upcall(Upcall),
}

/// A brick's cache-invalidation notice (GlusterFS `features/upcall`'s
/// `GF_UPCALL_CACHE_INVALIDATION`), reduced to what the caches above act on: which inode, and
/// what of it changed ([`upcall_flags`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Upcall {
    pub gfid: Gfid,
    pub flags: u8,
}

/// Where a brick's `features/upcall` sends the upcalls of one client connection (its
/// protocol/server queues them as frames; it never waits).
pub type UpcallSink = Arc<dyn Fn(Upcall) + Send + Sync>;

/// What an [`Upcall`] says changed.
pub mod upcall_flags {
    /// Attributes (mode, owner, times, size, nlink).
    pub const ATTR: u8 = 1;
    /// File data.
    pub const DATA: u8 = 2;
    /// Names in the directory (created, removed, renamed).
    pub const ENTRIES: u8 = 4;
    /// Extended attributes.
    pub const XATTR: u8 = 8;
    /// The inode is gone (its last name removed).
    pub const GONE: u8 = 16;
    pub const ALL: u8 = ATTR | DATA | ENTRIES | XATTR | GONE;
}

impl Upcall {
    /// Everything may have changed: a brick reconnected, and whatever it knew of who caches
    /// what is lost, so nothing cached from it can be trusted to be invalidated.
    pub fn forget_all() -> Upcall {
        Upcall {
            gfid: Gfid::NULL,
            flags: upcall_flags::ALL,
        }
    }

    pub fn is_forget_all(&self) -> bool {
        self.gfid.is_null()
    }
}

/// An open file or directory (`fd_t`). Translators keep per-fd state in its context, keyed by
/// their own id, the way GlusterFS uses `fd_ctx_set`. An anonymous fd (NFS, reconnects) carries
/// only the gfid: the brick opens the inode by its handle.
pub struct Fd {
    pub gfid: Gfid,
    pub flags: i32,
    pub is_dir: bool,
    pub anonymous: bool,
    ctx: Mutex<HashMap<usize, Arc<dyn Any + Send + Sync>>>,
}

pub type FdRef = Arc<Fd>;

impl Fd {
    pub fn new(gfid: Gfid, flags: i32, is_dir: bool) -> FdRef {
        Arc::new(Fd {
            gfid,
            flags,
            is_dir,
            anonymous: false,
            ctx: Mutex::new(HashMap::new()),
        })
    }

    pub fn anonymous(gfid: Gfid) -> FdRef {
        Arc::new(Fd {
            gfid,
            flags: libc::O_RDWR,
            is_dir: false,
            anonymous: true,
            ctx: Mutex::new(HashMap::new()),
        })
    }

    /// An anonymous fd that keeps the open's flags (open-behind's lazy fds: the access mode
    /// still says what the fd may do).
    pub fn anonymous_with_flags(gfid: Gfid, flags: i32) -> FdRef {
        Arc::new(Fd {
            gfid,
            flags,
            is_dir: false,
            anonymous: true,
            ctx: Mutex::new(HashMap::new()),
        })
    }

    pub fn ctx_set<T: Any + Send + Sync>(&self, key: usize, value: Arc<T>) {
        self.ctx.lock().insert(key, value);
    }

    pub fn ctx_get<T: Any + Send + Sync>(&self, key: usize) -> Option<Arc<T>> {
        let v = self.ctx.lock().get(&key).cloned()?;
        v.downcast::<T>().ok()
    }

    pub fn ctx_del(&self, key: usize) -> Option<Arc<dyn Any + Send + Sync>> {
        self.ctx.lock().remove(&key)
    }
}

impl fmt::Debug for Fd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fd")
            .field("gfid", &self.gfid)
            .field("flags", &self.flags)
            .field("is_dir", &self.is_dir)
            .field("anonymous", &self.anonymous)
            .finish()
    }
}

/// Xattr names the cluster translators and the brick agree on (GlusterFS's on-disk names).
pub mod keys {
    pub const GFID: &str = "trusted.gfid";
    pub const VOLUME_ID: &str = "trusted.glusterfs.volume-id";
    pub const DHT_LAYOUT: &str = "trusted.glusterfs.dht";
    pub const DHT_LINKTO: &str = "trusted.glusterfs.dht.linkto";
    pub const AFR_DIRTY: &str = "trusted.afr.dirty";
    /// Virtual, answered by a brick's features/index: the gfids its heal index lists.
    pub const INDEX_PENDING: &str = "glusterfs.index.pending";
    /// The most gfids one `INDEX_PENDING` answer carries.
    pub const INDEX_PENDING_MAX: usize = 10_000;
    pub const GFID2PATH_PREFIX: &str = "trusted.gfid2path.";
    /// Consistent times (GlusterFS's ctime feature): see [`crate::mdata`].
    pub const MDATA: &str = "trusted.glusterfs.mdata";
    /// Virtual xattr a brick answers for a directory with its parent's gfid (16 bytes), read
    /// from the directory's `.glusterfs` handle symlink: NFS's LOOKUP "..". Not a valid Linux
    /// xattr name (no namespace), so it can never name a stored one.
    pub const PARENT_GFID: &str = "gateway.parent-gfid";
    /// Mode of a distribute linkto file: sticky bit only, as GlusterFS's DHT_LINKFILE_MODE.
    pub const DHT_LINKFILE_MODE: u32 = libc::S_IFREG | 0o1000;
}
