//! Wire messages: one request per fop, one reply shape per result type.

use crate::fop::*;
use serde::{Deserialize, Serialize};

/// 3: create, mkdir, mknod, symlink, unlink, rmdir and rename answer with the parents'
/// attributes after the change. 4: a create's payload is the new file's first bytes. 5: a
/// create may ask for an inodelk on its new inode (`NewEntry::lock`).
pub const PROTOCOL_VERSION: u32 = 5;

/// How a request names an open file: the brick's fd number, or none for an anonymous fd
/// (the brick opens the inode by its gfid).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireFd {
    pub gfid: Gfid,
    pub remote: Option<u64>,
    pub is_dir: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    Lookup {
        ctx: Ctx,
        loc: Loc,
        want: Xattrs,
    },
    Stat {
        ctx: Ctx,
        loc: Loc,
    },
    Fstat {
        ctx: Ctx,
        fd: WireFd,
    },
    Setattr {
        ctx: Ctx,
        loc: Loc,
        attr: SetAttr,
    },
    Access {
        ctx: Ctx,
        loc: Loc,
        mask: u32,
    },
    /// The new file's first bytes (`NewEntry::data`) are the frame's payload.
    Create {
        ctx: Ctx,
        loc: Loc,
        flags: i32,
        entry: NewEntry,
    },
    Open {
        ctx: Ctx,
        loc: Loc,
        flags: i32,
    },
    Read {
        ctx: Ctx,
        fd: WireFd,
        offset: u64,
        size: u32,
    },
    /// The data is the frame's payload.
    Write {
        ctx: Ctx,
        fd: WireFd,
        offset: u64,
    },
    Truncate {
        ctx: Ctx,
        loc: Loc,
        size: u64,
    },
    Ftruncate {
        ctx: Ctx,
        fd: WireFd,
        size: u64,
    },
    Flush {
        ctx: Ctx,
        fd: WireFd,
    },
    Fsync {
        ctx: Ctx,
        fd: WireFd,
        datasync: bool,
    },
    Release {
        fd: u64,
    },
    Mkdir {
        ctx: Ctx,
        loc: Loc,
        entry: NewEntry,
    },
    Mknod {
        ctx: Ctx,
        loc: Loc,
        entry: NewEntry,
    },
    Symlink {
        ctx: Ctx,
        loc: Loc,
        target: String,
        entry: NewEntry,
    },
    Readlink {
        ctx: Ctx,
        loc: Loc,
    },
    Link {
        ctx: Ctx,
        old: Loc,
        new: Loc,
    },
    Unlink {
        ctx: Ctx,
        loc: Loc,
    },
    Rmdir {
        ctx: Ctx,
        loc: Loc,
    },
    Rename {
        ctx: Ctx,
        old: Loc,
        new: Loc,
    },
    Opendir {
        ctx: Ctx,
        loc: Loc,
    },
    Readdir {
        ctx: Ctx,
        fd: WireFd,
        offset: u64,
        size: u32,
    },
    Readdirp {
        ctx: Ctx,
        fd: WireFd,
        offset: u64,
        size: u32,
        want: Xattrs,
    },
    Statfs {
        ctx: Ctx,
        loc: Loc,
    },
    Getxattr {
        ctx: Ctx,
        loc: Loc,
        name: Option<String>,
    },
    Setxattr {
        ctx: Ctx,
        loc: Loc,
        xattrs: Xattrs,
        flags: i32,
    },
    Removexattr {
        ctx: Ctx,
        loc: Loc,
        name: String,
    },
    Xattrop {
        ctx: Ctx,
        loc: Loc,
        op: XattropOp,
        xattrs: Xattrs,
    },
    Inodelk {
        ctx: Ctx,
        domain: String,
        loc: Loc,
        cmd: LockCmd,
        lock: Flock,
    },
    Entrylk {
        ctx: Ctx,
        domain: String,
        loc: Loc,
        basename: Option<String>,
        cmd: EntrylkCmd,
        typ: EntrylkType,
    },
    Lk {
        ctx: Ctx,
        fd: WireFd,
        cmd: LockCmd,
        lock: Flock,
    },
    Fallocate {
        ctx: Ctx,
        fd: WireFd,
        mode: i32,
        offset: u64,
        len: u64,
    },
    Discard {
        ctx: Ctx,
        fd: WireFd,
        offset: u64,
        len: u64,
    },
    Rchecksum {
        ctx: Ctx,
        fd: WireFd,
        offset: u64,
        len: u32,
    },
    /// A transaction's locks and changelog updates, run in order until one fails; the reply
    /// is `ReplyBody::Steps`.
    Compound {
        ctx: Ctx,
        steps: Vec<TxnStep>,
    },
}

impl Request {
    pub fn name(&self) -> &'static str {
        match self {
            Request::Lookup { .. } => "lookup",
            Request::Stat { .. } => "stat",
            Request::Fstat { .. } => "fstat",
            Request::Setattr { .. } => "setattr",
            Request::Access { .. } => "access",
            Request::Create { .. } => "create",
            Request::Open { .. } => "open",
            Request::Read { .. } => "read",
            Request::Write { .. } => "write",
            Request::Truncate { .. } => "truncate",
            Request::Ftruncate { .. } => "ftruncate",
            Request::Flush { .. } => "flush",
            Request::Fsync { .. } => "fsync",
            Request::Release { .. } => "release",
            Request::Mkdir { .. } => "mkdir",
            Request::Mknod { .. } => "mknod",
            Request::Symlink { .. } => "symlink",
            Request::Readlink { .. } => "readlink",
            Request::Link { .. } => "link",
            Request::Unlink { .. } => "unlink",
            Request::Rmdir { .. } => "rmdir",
            Request::Rename { .. } => "rename",
            Request::Opendir { .. } => "opendir",
            Request::Readdir { .. } => "readdir",
            Request::Readdirp { .. } => "readdirp",
            Request::Statfs { .. } => "statfs",
            Request::Getxattr { .. } => "getxattr",
            Request::Setxattr { .. } => "setxattr",
            Request::Removexattr { .. } => "removexattr",
            Request::Xattrop { .. } => "xattrop",
            Request::Inodelk { .. } => "inodelk",
            Request::Entrylk { .. } => "entrylk",
            Request::Lk { .. } => "lk",
            Request::Fallocate { .. } => "fallocate",
            Request::Discard { .. } => "discard",
            Request::Rchecksum { .. } => "rchecksum",
            Request::Compound { .. } => "compound",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ReplyBody {
    Unit,
    Iatt(Iatt),
    Lookup(Iatt, Xattrs),
    /// An fd number on the brick, with the attributes when the fop returns them.
    Fd(u64, Option<Iatt>),
    /// create: the fd number, the new file's attributes and its parent's.
    Created(u64, Iatt, PostParent),
    /// mkdir, mknod, symlink: the new inode's attributes and its parent's.
    Made(Iatt, PostParent),
    /// unlink, rmdir: the parent's attributes after the change.
    Parent(PostParent),
    /// rename: the moved inode's attributes, the old parent's and the new parent's.
    Renamed(Iatt, PostParent, PostParent),
    /// The data is the frame's payload.
    Data,
    Text(String),
    Dirents(Vec<Dirent>),
    Statfs(Statvfs),
    Xattrs(Xattrs),
    Flock(Flock),
    /// Bytes covered and their SHA-256.
    Checksum(u32, [u8; 32]),
    /// How a `Request::Compound` went: None when every step succeeded.
    Steps(Option<StepFailed>),
}

pub type Reply = std::result::Result<ReplyBody, Errno>;

/// Handshake messages.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Hello {
    Challenge {
        nonce: [u8; 32],
    },
    Auth {
        version: u32,
        volume_id: Gfid,
        brick: String,
        nonce: [u8; 32],
        mac: Vec<u8>,
    },
    Accepted,
    Refused {
        reason: String,
    },
}
