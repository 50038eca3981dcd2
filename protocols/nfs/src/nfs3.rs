//! The NFSv3 procedures (RFC 1813 §3), each a few engine fops by gfid.

use crate::attr::{self, R, W, X, check, check_setattr, check_unlink, fattr, sattr, status, wcc};
use crate::handle::{Handle, export_tag};
use crate::rpc::{Call, Dispatch, Reply};
use crate::xdr::{Garbage, Put, Reader};
use crate::{Export, Exports, MOUNT_PROGRAM, NFS_PROGRAM};
use bytes::{Bytes, BytesMut};
use engine::fop::{Ctx, Errno, Fd, Gfid, Iatt, Loc, NewEntry, SetAttr, SetTime, Timespec, Xattrs};
use engine::xlator::XlatorRef;
use nfsserve::nfs::{
    FSF_CANSETTIME, FSF_HOMOGENEOUS, FSF_LINK, FSF_SYMLINK, fsinfo3, nfs_fh3, nfsstat3, nfstime3,
    post_op_attr, post_op_fh3, pre_op_attr, wcc_data,
};
use std::sync::Arc;

/// rtmax/wtmax: 1 MiB, the largest READ or WRITE the client may send in one call.
pub const MAX_IO: u32 = 1 << 20;
const MAX_NAME: usize = 255;
const MAX_PATH: usize = 4096;

/// WRITE stable_how.
const UNSTABLE: u32 = 0;
const FILE_SYNC: u32 = 2;

/// ACCESS bits (RFC 1813 §3.3.4).
const ACCESS_READ: u32 = 0x01;
const ACCESS_LOOKUP: u32 = 0x02;
const ACCESS_MODIFY: u32 = 0x04;
const ACCESS_EXTEND: u32 = 0x08;
const ACCESS_DELETE: u32 = 0x10;
const ACCESS_EXECUTE: u32 = 0x20;

/// Procedure names, by number (RFC 1813), for metrics.
const PROCS: [&str; 22] = [
    "null",
    "getattr",
    "setattr",
    "lookup",
    "access",
    "readlink",
    "read",
    "write",
    "create",
    "mkdir",
    "symlink",
    "mknod",
    "remove",
    "rmdir",
    "rename",
    "link",
    "readdir",
    "readdirplus",
    "fsstat",
    "fsinfo",
    "pathconf",
    "commit",
];

pub struct Server {
    pub(crate) exports: Arc<dyn Exports>,
    metrics: engine::metrics::ProtocolOps,
    /// Changes every time the gateway starts, so clients re-send UNSTABLE writes they had not
    /// seen committed (RFC 1813 §3.3.7).
    pub(crate) write_verf: [u8; 8],
}

/// A handle resolved to its export and volume, with the caller's identity on that export.
pub(crate) struct Target {
    pub top: XlatorRef,
    /// The export list the handle was resolved in, and the export's place in it: shared, so
    /// resolving a handle copies nothing.
    exports: Arc<Vec<Export>>,
    idx: usize,
    /// The export's tag, as the handle carried it: new handles carry it on.
    tag: u32,
    pub ctx: Ctx,
    pub gfid: Gfid,
    pub fsid: u64,
}

impl Target {
    pub fn export(&self) -> &Export {
        &self.exports[self.idx]
    }

    fn handle(&self, gfid: Gfid) -> nfs_fh3 {
        nfs_fh3 {
            data: Handle {
                volume: self.export().volume_id,
                gfid,
                export: self.tag,
            }
            .encode()
            .to_vec(),
        }
    }

    async fn stat(&self, gfid: Gfid) -> Result<Iatt, Errno> {
        self.top.stat(&self.ctx, &Loc::gfid(gfid)).await
    }

    async fn post_op(&self, gfid: Gfid) -> post_op_attr {
        match self.stat(gfid).await {
            Ok(ia) => post_op_attr::attributes(fattr(&ia, self.fsid)),
            Err(_) => post_op_attr::Void,
        }
    }

    fn attrs(&self, ia: &Iatt) -> post_op_attr {
        post_op_attr::attributes(fattr(ia, self.fsid))
    }

    fn writable(&self) -> Result<(), Errno> {
        if self.export().options.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// Root passes every permission check but execute; skipping the directory's stat for it
    /// saves a round trip on every LOOKUP and create.
    async fn check_dir(&self, dir: Gfid, want: u32) -> Result<(), Errno> {
        if self.ctx.uid == 0 {
            return Ok(());
        }
        let ia = self.stat(dir).await?;
        if !ia.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        check(&self.ctx, &ia, want)
    }
}

pub(crate) fn volume_fsid(id: &[u8; 16]) -> u64 {
    u64::from_be_bytes(id[..8].try_into().expect("8 bytes"))
        ^ u64::from_be_bytes(id[8..].try_into().expect("8 bytes"))
}

/// A file name from the wire: UTF-8 (the bricks' names are), no '/', not empty.
fn name(r: &mut Reader) -> Result<String, Fail> {
    let b = r.string(MAX_NAME + 1).map_err(|_| Fail::Garbage)?;
    if b.len() > MAX_NAME {
        return Err(Fail::Status(nfsstat3::NFS3ERR_NAMETOOLONG));
    }
    let s = std::str::from_utf8(&b).map_err(|_| Fail::Status(nfsstat3::NFS3ERR_INVAL))?;
    if s.is_empty() || s.contains('/') || s.contains('\0') {
        return Err(Fail::Status(nfsstat3::NFS3ERR_INVAL));
    }
    Ok(s.to_owned())
}

/// Why a call failed before producing results.
pub(crate) enum Fail {
    Garbage,
    Status(nfsstat3),
}

impl From<Garbage> for Fail {
    fn from(_: Garbage) -> Fail {
        Fail::Garbage
    }
}

impl From<Errno> for Fail {
    fn from(e: Errno) -> Fail {
        Fail::Status(status(e))
    }
}

impl From<nfsstat3> for Fail {
    fn from(s: nfsstat3) -> Fail {
        Fail::Status(s)
    }
}

fn ok() -> BytesMut {
    let mut b = BytesMut::with_capacity(256);
    b.xdr(&nfsstat3::NFS3_OK);
    b
}

fn err(s: nfsstat3) -> BytesMut {
    let mut b = BytesMut::with_capacity(64);
    b.xdr(&s);
    b
}

fn empty_wcc() -> wcc_data {
    wcc_data::default()
}

impl Server {
    pub fn new(exports: Arc<dyn Exports>) -> Server {
        Server {
            exports,
            write_verf: rand::random(),
            metrics: engine::metrics::ProtocolOps::new("nfs", &PROCS),
        }
    }

    /// The volume a call's first argument (a file handle, for every procedure but NULL)
    /// belongs to, for the per-volume metrics.
    /// The procedure resolves the same handle again (with permission checks); this look-up
    /// only names the volume, so a call counts once however many handles it carries.
    fn volume_of_call(&self, args: &Reader) -> Option<Arc<engine::metrics::VolumeOps>> {
        let fh = args.clone().opaque(64).ok()?;
        let h = Handle::decode(&fh)?;
        self.exports
            .exports()
            .iter()
            .find(|e| e.volume_id == h.volume && export_tag(&e.path) == h.export)
            .map(|e| e.metrics.clone())
    }

    /// The handle's export, volume and caller identity: BADHANDLE for what is not ours, STALE
    /// for an export that is gone, ACCES for a client outside the export's networks.
    pub(crate) fn resolve(&self, call: &Call, fh: &[u8]) -> Result<Target, Fail> {
        let h = Handle::decode(fh).ok_or(nfsstat3::NFS3ERR_BADHANDLE)?;
        let exports = self.exports.exports();
        let idx = exports
            .iter()
            .position(|e| e.volume_id == h.volume && export_tag(&e.path) == h.export)
            .ok_or(nfsstat3::NFS3ERR_STALE)?;
        let export = &exports[idx];
        if !export.options.allows(call.peer.ip()) {
            return Err(nfsstat3::NFS3ERR_ACCES.into());
        }
        // A volume that is stopped for now: the client waits and retries.
        let top = self
            .exports
            .graph(&export.volume)
            .ok_or(nfsstat3::NFS3ERR_JUKEBOX)?;
        Ok(Target {
            top,
            ctx: Ctx {
                protocol: "nfs",
                ..export.options.ctx(&call.cred)
            },
            fsid: volume_fsid(&export.volume_id),
            tag: h.export,
            idx,
            exports,
            gfid: h.gfid,
        })
    }

    fn target(&self, call: &Call, r: &mut Reader) -> Result<Target, Fail> {
        let fh = r.opaque(64)?;
        self.resolve(call, &fh)
    }

    async fn nfs(&self, call: Call, r: Reader) -> Reply {
        let start = std::time::Instant::now();
        if call.proc_ != 0
            && let Some(v) = self.volume_of_call(&r)
        {
            v.operation();
        }
        let reply = self.nfs_proc(&call, r).await;
        if let Some(name) = PROCS.get(call.proc_ as usize) {
            let ok = match &reply {
                Reply::Success(b, _) => b.len() < 4 || b[..4] == [0, 0, 0, 0],
                _ => false,
            };
            self.metrics.record(name, ok, start.elapsed());
        }
        reply
    }

    async fn nfs_proc(&self, call: &Call, mut r: Reader) -> Reply {
        tracing::trace!(proc_ = call.proc_, "call");
        let res = match call.proc_ {
            0 => Ok(BytesMut::new()),
            1 => self.getattr(call, &mut r).await,
            2 => self.setattr(call, &mut r).await,
            3 => self.lookup(call, &mut r).await,
            4 => self.access(call, &mut r).await,
            5 => self.readlink(call, &mut r).await,
            6 => return self.read(call, &mut r).await,
            7 => self.write(call, &mut r).await,
            8 => self.create(call, &mut r).await,
            9 => self.mkdir(call, &mut r).await,
            10 => self.symlink(call, &mut r).await,
            11 => self.mknod(call, &mut r).await,
            12 => self.remove(call, &mut r, false).await,
            13 => self.remove(call, &mut r, true).await,
            14 => self.rename(call, &mut r).await,
            15 => self.link(call, &mut r).await,
            16 => self.readdir(call, &mut r, false).await,
            17 => self.readdir(call, &mut r, true).await,
            18 => self.fsstat(call, &mut r).await,
            19 => self.fsinfo(call, &mut r).await,
            20 => self.pathconf(call, &mut r).await,
            21 => self.commit(call, &mut r).await,
            _ => return Reply::ProcUnavail,
        };
        match res {
            Ok(b) => Reply::ok(b),
            Err(Fail::Garbage) => Reply::GarbageArgs,
            Err(Fail::Status(s)) => Reply::ok(fail_body(call.proc_, s)),
        }
    }

    async fn getattr(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let t = self.target(call, r)?;
        let ia = t.stat(t.gfid).await?;
        let mut b = ok();
        b.xdr(&fattr(&ia, t.fsid));
        Ok(b)
    }

    async fn setattr(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let t = self.target(call, r)?;
        let mut a = sattr(r)?;
        let guard = if r.bool()? {
            Some((r.u32()?, r.u32()?))
        } else {
            None
        };
        t.writable()?;
        // Root changing neither owner nor group, unguarded (what clients send after CREATE):
        // nothing to check against the current attributes, so no stat before the change.
        if t.ctx.uid == 0
            && guard.is_none()
            && a.uid.is_none()
            && a.gid.is_none()
            && a != SetAttr::default()
        {
            let ia = t.top.setattr(&t.ctx, &Loc::gfid(t.gfid), &a).await?;
            let mut b = ok();
            b.xdr(&wcc_data {
                before: pre_op_attr::Void,
                after: t.attrs(&ia),
            });
            return Ok(b);
        }
        let cur = t.stat(t.gfid).await?;
        if let Some((sec, nsec)) = guard {
            let c = attr::time(cur.ctime);
            if (c.seconds, c.nseconds) != (sec, nsec) {
                return Ok(wcc_fail(nfsstat3::NFS3ERR_NOT_SYNC, &cur, None, t.fsid));
            }
        }
        if let Err(e) = check_setattr(&t.ctx, &cur, &a) {
            return Ok(wcc_fail(status(e), &cur, None, t.fsid));
        }
        // Changing the owner clears set-id bits, as chown(2) does for non-directories.
        if (a.uid.is_some_and(|u| u != cur.uid) || a.gid.is_some_and(|g| g != cur.gid))
            && !cur.is_dir()
            && a.mode.is_none()
            && cur.mode & (libc::S_ISUID | libc::S_ISGID) != 0
        {
            a.mode = Some(cur.mode & 0o7777 & !(libc::S_ISUID | libc::S_ISGID));
        }
        if a == SetAttr::default() {
            let mut b = ok();
            b.xdr(&wcc_data {
                before: pre_op_attr::attributes(wcc(&cur)),
                after: t.attrs(&cur),
            });
            return Ok(b);
        }
        match t.top.setattr(&t.ctx, &Loc::gfid(t.gfid), &a).await {
            Ok(ia) => {
                let mut b = ok();
                b.xdr(&wcc_data {
                    before: pre_op_attr::attributes(wcc(&cur)),
                    after: t.attrs(&ia),
                });
                Ok(b)
            }
            Err(e) => Ok(wcc_fail(status(e), &cur, None, t.fsid)),
        }
    }

    async fn lookup(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let t = self.target(call, r)?;
        let n = name(r)?;
        let dir = t.gfid;
        let ia = match n.as_str() {
            "." => t.stat(dir).await?,
            // Above the export's root is the root itself, as knfsd answers.
            ".." if self.is_export_root(&t, dir).await => t.stat(dir).await?,
            ".." => {
                t.check_dir(dir, X).await?;
                let x = t
                    .top
                    .getxattr(
                        &t.ctx,
                        &Loc::gfid(dir),
                        Some(engine::fop::keys::PARENT_GFID),
                    )
                    .await
                    .map_err(|e| {
                        if e == Errno::ENODATA {
                            Errno::ENOTDIR
                        } else {
                            e
                        }
                    })?;
                let parent = x
                    .get(engine::fop::keys::PARENT_GFID)
                    .and_then(|b| <[u8; 16]>::try_from(&b[..]).ok())
                    .map(Gfid)
                    .ok_or(Errno::EIO)?;
                t.stat(parent).await?
            }
            _ => {
                t.check_dir(dir, X).await?;
                t.top
                    .lookup(&t.ctx, &Loc::child(dir, n.as_str()), &Xattrs::new())
                    .await?
                    .0
            }
        };
        let mut b = ok();
        b.xdr(&t.handle(ia.gfid));
        b.xdr(&t.attrs(&ia));
        b.xdr(&post_op_attr::Void);
        Ok(b)
    }

    async fn is_export_root(&self, t: &Target, dir: Gfid) -> bool {
        if t.export().subdir.is_empty() {
            return dir.is_root();
        }
        match crate::mount::walk(&t.top, &t.ctx, &t.export().subdir).await {
            Ok(g) => g == dir,
            Err(_) => false,
        }
    }

    async fn access(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let t = self.target(call, r)?;
        let want = r.u32()?;
        let ia = t.stat(t.gfid).await?;
        let may = |bits| attr::permits(&t.ctx, &ia, bits);
        let mut got = 0;
        if may(R) {
            got |= ACCESS_READ;
        }
        if ia.is_dir() {
            if may(X) {
                got |= ACCESS_LOOKUP;
            }
            if may(W) && !t.export().options.read_only {
                got |= ACCESS_MODIFY | ACCESS_EXTEND | ACCESS_DELETE;
            }
        } else {
            if may(W) && !t.export().options.read_only {
                got |= ACCESS_MODIFY | ACCESS_EXTEND;
            }
            if may(X) {
                got |= ACCESS_EXECUTE;
            }
        }
        let mut b = ok();
        b.xdr(&t.attrs(&ia));
        b.u32(want & got);
        Ok(b)
    }

    async fn readlink(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let t = self.target(call, r)?;
        let target = t.top.readlink(&t.ctx, &Loc::gfid(t.gfid)).await?;
        let mut b = ok();
        b.xdr(&post_op_attr::Void);
        b.opaque(target.as_bytes());
        Ok(b)
    }

    /// READ answers with the data as a separate buffer after the header: the bytes the brick
    /// sent are the bytes that go to the client.
    async fn read(&self, call: &Call, r: &mut Reader) -> Reply {
        let res = async {
            let t = self.target(call, r)?;
            let offset = r.u64()?;
            let count = r.u32()?.min(MAX_IO);
            if t.ctx.uid != 0 {
                let ia = t.stat(t.gfid).await?;
                // The owner may read regardless of the mode bits, as knfsd allows: the
                // client checked them at open, and may hold the file open since.
                if ia.uid != t.ctx.uid {
                    check(&t.ctx, &ia, R)?;
                }
            }
            let data = t
                .top
                .read(&t.ctx, &Fd::anonymous(t.gfid), offset, count)
                .await?;
            // The engine reads short only at end of file.
            let eof = (data.len() as u32) < count;
            self.metrics.read_bytes(data.len() as u64);
            t.export().metrics.read_bytes(data.len() as u64);
            let mut b = ok();
            b.xdr(&post_op_attr::Void);
            b.u32(data.len() as u32);
            b.bool(eof);
            b.u32(data.len() as u32);
            Ok::<_, Fail>((b, data))
        }
        .await;
        match res {
            Ok((b, data)) => Reply::Success(b, Some(data)),
            Err(Fail::Garbage) => Reply::GarbageArgs,
            Err(Fail::Status(s)) => Reply::ok(fail_body(6, s)),
        }
    }

    async fn write(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let t = self.target(call, r)?;
        let offset = r.u64()?;
        let count = r.u32()?;
        let stable = r.u32()?;
        let data: Bytes = r.opaque(MAX_IO as usize)?;
        if stable > FILE_SYNC || data.len() != count as usize {
            return Err(Fail::Garbage);
        }
        tracing::trace!(offset, count, stable, "write");
        t.writable()?;
        if t.ctx.uid != 0 {
            let ia = t.stat(t.gfid).await?;
            if ia.uid != t.ctx.uid {
                check(&t.ctx, &ia, W)?;
            }
        }
        let fd = Fd::anonymous(t.gfid);
        let ia = t.top.write(&t.ctx, &fd, offset, data).await?;
        self.metrics.written_bytes(u64::from(count));
        t.export().metrics.written_bytes(u64::from(count));
        if stable != UNSTABLE {
            t.top.fsync(&t.ctx, &fd, stable == 1).await?;
        }
        let mut b = ok();
        b.xdr(&wcc_data {
            before: pre_op_attr::Void,
            after: t.attrs(&ia),
        });
        b.u32(count);
        b.u32(stable);
        b.fixed(&self.write_verf);
        Ok(b)
    }

    async fn commit(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let t = self.target(call, r)?;
        let _offset = r.u64()?;
        let _count = r.u32()?;
        t.top.fsync(&t.ctx, &Fd::anonymous(t.gfid), false).await?;
        let mut b = ok();
        b.xdr(&empty_wcc());
        b.fixed(&self.write_verf);
        Ok(b)
    }

    /// Where a new entry goes: the directory (writable and searchable by the caller) and name.
    async fn new_entry_target(
        &self,
        call: &Call,
        r: &mut Reader,
    ) -> Result<(Target, String), Fail> {
        let t = self.target(call, r)?;
        let n = name(r)?;
        Ok((t, n))
    }

    async fn prepare_new(&self, t: &Target, n: &str) -> Result<(), Fail> {
        t.writable()?;
        if n == "." || n == ".." {
            return Err(nfsstat3::NFS3ERR_EXIST.into());
        }
        t.check_dir(t.gfid, W | X).await?;
        Ok(())
    }

    /// The reply of CREATE, MKDIR, SYMLINK and MKNOD: the new handle and attributes.
    fn created(&self, t: &Target, ia: &Iatt) -> BytesMut {
        let mut b = ok();
        b.xdr(&post_op_fh3::handle(t.handle(ia.gfid)));
        b.xdr(&t.attrs(ia));
        b.xdr(&empty_wcc());
        b
    }

    async fn create(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let (t, n) = self.new_entry_target(call, r).await?;
        let how = r.u32()?;
        let (a, verf) = match how {
            0 | 1 => (sattr(r)?, None),
            2 => (SetAttr::default(), Some(r.fixed(8)?)),
            _ => return Err(Fail::Garbage),
        };
        self.prepare_new(&t, &n).await?;
        let loc = Loc::child(t.gfid, n.as_str());
        let mode = a.mode.unwrap_or(0o644);
        let made = t
            .top
            .mknod(&t.ctx, &loc, &new_entry(libc::S_IFREG | mode, 0))
            .await;
        let ia = match (made, how, &verf) {
            (Ok(ia), _, None) => ia,
            // EXCLUSIVE: the verifier is kept in atime and mtime (as knfsd and GlusterFS do)
            // until the client's SETATTR that follows, so a retransmitted CREATE succeeds.
            (Ok(ia), _, Some(v)) => {
                let (at, mt) = verf_times(v);
                let set = SetAttr {
                    atime: Some(SetTime::At(at)),
                    mtime: Some(SetTime::At(mt)),
                    ..Default::default()
                };
                t.top.setattr(&t.ctx, &Loc::gfid(ia.gfid), &set).await?
            }
            (Err(Errno::EEXIST), 0, _) => {
                // UNCHECKED: the existing file, truncated if asked.
                let (ia, _) = t.top.lookup(&t.ctx, &loc, &Xattrs::new()).await?;
                if !ia.is_reg() {
                    return Err(nfsstat3::NFS3ERR_EXIST.into());
                }
                match a.size {
                    Some(size) => {
                        let set = SetAttr {
                            size: Some(size),
                            ..Default::default()
                        };
                        check_setattr(&t.ctx, &ia, &set)?;
                        t.top.setattr(&t.ctx, &Loc::gfid(ia.gfid), &set).await?
                    }
                    None => ia,
                }
            }
            (Err(Errno::EEXIST), 2, Some(v)) => {
                let (ia, _) = t.top.lookup(&t.ctx, &loc, &Xattrs::new()).await?;
                let (at, mt) = verf_times(v);
                if ia.is_reg() && ia.atime == at && ia.mtime == mt {
                    ia
                } else {
                    return Err(nfsstat3::NFS3ERR_EXIST.into());
                }
            }
            (Err(e), _, _) => return Err(e.into()),
        };
        // Owner and times asked for at creation (mode went into the mknod).
        let rest = SetAttr {
            mode: None,
            size: if how == 0 {
                None
            } else {
                a.size.filter(|s| *s != 0)
            },
            ..a
        };
        let ia = if rest != SetAttr::default() && verf.is_none() {
            check_setattr(&t.ctx, &ia, &rest)?;
            t.top.setattr(&t.ctx, &Loc::gfid(ia.gfid), &rest).await?
        } else {
            ia
        };
        Ok(self.created(&t, &ia))
    }

    async fn mkdir(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let (t, n) = self.new_entry_target(call, r).await?;
        let a = sattr(r)?;
        self.prepare_new(&t, &n).await?;
        let mode = a.mode.unwrap_or(0o755);
        let loc = Loc::child(t.gfid, n.as_str());
        let ia = t
            .top
            .mkdir(&t.ctx, &loc, &new_entry(libc::S_IFDIR | mode, 0))
            .await?;
        let ia = self.apply_owner(&t, ia, a).await?;
        Ok(self.created(&t, &ia))
    }

    /// uid/gid/times a creating call asked for beyond the mode.
    async fn apply_owner(&self, t: &Target, ia: Iatt, a: SetAttr) -> Result<Iatt, Fail> {
        let rest = SetAttr {
            mode: None,
            size: None,
            ..a
        };
        if rest == SetAttr::default() {
            return Ok(ia);
        }
        check_setattr(&t.ctx, &ia, &rest)?;
        Ok(t.top.setattr(&t.ctx, &Loc::gfid(ia.gfid), &rest).await?)
    }

    async fn symlink(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let (t, n) = self.new_entry_target(call, r).await?;
        let a = sattr(r)?;
        let target = r.string(MAX_PATH)?;
        let target = std::str::from_utf8(&target).map_err(|_| nfsstat3::NFS3ERR_INVAL)?;
        if target.is_empty() {
            return Err(nfsstat3::NFS3ERR_INVAL.into());
        }
        self.prepare_new(&t, &n).await?;
        let loc = Loc::child(t.gfid, n.as_str());
        let ia = t
            .top
            .symlink(&t.ctx, &loc, target, &new_entry(libc::S_IFLNK | 0o777, 0))
            .await?;
        let ia = self
            .apply_owner(
                &t,
                ia,
                SetAttr {
                    atime: None,
                    mtime: None,
                    ..a
                },
            )
            .await?;
        Ok(self.created(&t, &ia))
    }

    async fn mknod(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let (t, n) = self.new_entry_target(call, r).await?;
        let kind = r.u32()?;
        let (fmt, a, rdev) = match kind {
            3 | 4 => {
                let a = sattr(r)?;
                let (major, minor) = (r.u32()?, r.u32()?);
                let fmt = if kind == 3 {
                    libc::S_IFBLK
                } else {
                    libc::S_IFCHR
                };
                (fmt, a, libc::makedev(major, minor))
            }
            6 => (libc::S_IFSOCK, sattr(r)?, 0),
            7 => (libc::S_IFIFO, sattr(r)?, 0),
            1 | 2 | 5 => return Err(nfsstat3::NFS3ERR_BADTYPE.into()),
            _ => return Err(Fail::Garbage),
        };
        self.prepare_new(&t, &n).await?;
        if rdev != 0 && t.ctx.uid != 0 {
            return Err(nfsstat3::NFS3ERR_PERM.into());
        }
        let mode = a.mode.unwrap_or(0o644);
        let loc = Loc::child(t.gfid, n.as_str());
        let ia = t
            .top
            .mknod(&t.ctx, &loc, &new_entry(fmt | mode, rdev))
            .await?;
        let ia = self.apply_owner(&t, ia, a).await?;
        Ok(self.created(&t, &ia))
    }

    async fn remove(&self, call: &Call, r: &mut Reader, dir: bool) -> Result<BytesMut, Fail> {
        let t = self.target(call, r)?;
        let n = name(r)?;
        t.writable()?;
        if n == "." || n == ".." {
            return Err(if dir {
                nfsstat3::NFS3ERR_INVAL
            } else {
                nfsstat3::NFS3ERR_ACCES
            }
            .into());
        }
        let loc = Loc::child(t.gfid, n.as_str());
        if t.ctx.uid != 0 {
            let d = t.stat(t.gfid).await?;
            let (child, _) = t.top.lookup(&t.ctx, &loc, &Xattrs::new()).await?;
            check_unlink(&t.ctx, &d, &child)?;
        }
        if dir {
            t.top.rmdir(&t.ctx, &loc).await?;
        } else {
            t.top.unlink(&t.ctx, &loc).await?;
        }
        let mut b = ok();
        b.xdr(&empty_wcc());
        Ok(b)
    }

    async fn rename(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let from = self.target(call, r)?;
        let from_name = name(r)?;
        let to = self.target(call, r)?;
        let to_name = name(r)?;
        from.writable()?;
        to.writable()?;
        if from.export().volume_id != to.export().volume_id {
            return Err(nfsstat3::NFS3ERR_XDEV.into());
        }
        for n in [&from_name, &to_name] {
            if n == "." || n == ".." {
                return Err(nfsstat3::NFS3ERR_INVAL.into());
            }
        }
        let old = Loc::child(from.gfid, from_name.as_str());
        let new = Loc::child(to.gfid, to_name.as_str());
        if from.ctx.uid != 0 {
            let d = from.stat(from.gfid).await?;
            let (child, _) = from.top.lookup(&from.ctx, &old, &Xattrs::new()).await?;
            check_unlink(&from.ctx, &d, &child)?;
            let td = from.stat(to.gfid).await?;
            match from.top.lookup(&from.ctx, &new, &Xattrs::new()).await {
                Ok((victim, _)) => check_unlink(&from.ctx, &td, &victim)?,
                Err(Errno::ENOENT) => check(&from.ctx, &td, W | X)?,
                Err(e) => return Err(e.into()),
            }
        }
        from.top.rename(&from.ctx, &old, &new).await?;
        let mut b = ok();
        b.xdr(&empty_wcc());
        b.xdr(&empty_wcc());
        Ok(b)
    }

    async fn link(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let file = self.target(call, r)?;
        let dir = self.target(call, r)?;
        let n = name(r)?;
        if file.export().volume_id != dir.export().volume_id {
            return Err(nfsstat3::NFS3ERR_XDEV.into());
        }
        self.prepare_new(&dir, &n).await?;
        let ia = file.stat(file.gfid).await?;
        if ia.is_dir() {
            return Err(nfsstat3::NFS3ERR_ISDIR.into());
        }
        let ia = dir
            .top
            .link(
                &dir.ctx,
                &Loc::gfid(file.gfid),
                &Loc::child(dir.gfid, n.as_str()),
            )
            .await?;
        let mut b = ok();
        b.xdr(&file.attrs(&ia));
        b.xdr(&empty_wcc());
        Ok(b)
    }

    /// READDIR and READDIRPLUS: a fresh directory fd per call, resumed at the cookie (the
    /// engine's d_off, meaningful to any fd of the directory), filled up to the client's sizes.
    async fn readdir(&self, call: &Call, r: &mut Reader, plus: bool) -> Result<BytesMut, Fail> {
        let t = self.target(call, r)?;
        let cookie = r.u64()?;
        let _verf = r.fixed(8)?;
        let (dircount, maxcount) = if plus {
            (r.u32()?, r.u32()?)
        } else {
            let c = r.u32()?;
            (c, c)
        };
        let maxcount = maxcount.min(MAX_IO) as usize;
        let dircount = dircount.min(MAX_IO) as usize;
        if t.ctx.uid != 0 {
            let ia = t.stat(t.gfid).await?;
            check(&t.ctx, &ia, R)?;
        }
        let fd = t.top.opendir(&t.ctx, &Loc::gfid(t.gfid)).await?;
        let res = self
            .fill_dir(&t, &fd, cookie, plus, dircount, maxcount)
            .await;
        t.top.release(&fd).await;
        res
    }

    async fn fill_dir(
        &self,
        t: &Target,
        fd: &engine::fop::FdRef,
        cookie: u64,
        plus: bool,
        dircount: usize,
        maxcount: usize,
    ) -> Result<BytesMut, Fail> {
        let mut entries = BytesMut::with_capacity(maxcount.min(64 * 1024));
        // Status, post_op_attr (no attributes), verifier, list end and eof.
        let fixed = 4 + 4 + 8 + 4 + 4;
        let mut names_size = 0usize;
        let mut offset = cookie;
        let mut eof = false;
        let mut any = false;
        'fill: loop {
            let batch = t
                .top
                .readdirp(&t.ctx, fd, offset, 64 * 1024, &Xattrs::new())
                .await?;
            if batch.is_empty() {
                eof = true;
                break;
            }
            for d in batch {
                let next = d.d_off;
                if d.name == "." || d.name == ".." {
                    offset = next;
                    continue;
                }
                let mut e = BytesMut::with_capacity(160);
                e.bool(true);
                let fileid = d.iatt.as_ref().map_or(d.ino, |ia| ia.gfid.ino());
                e.u64(fileid);
                e.opaque(d.name.as_bytes());
                e.u64(next);
                let name_part = e.len();
                if plus {
                    match &d.iatt {
                        Some(ia) if !ia.gfid.is_null() => {
                            e.xdr(&t.attrs(ia));
                            e.xdr(&post_op_fh3::handle(t.handle(ia.gfid)));
                        }
                        _ => {
                            e.xdr(&post_op_attr::Void);
                            e.xdr(&post_op_fh3::Void);
                        }
                    }
                }
                if fixed + entries.len() + e.len() > maxcount
                    || (plus && names_size + name_part > dircount)
                {
                    break 'fill;
                }
                names_size += name_part;
                entries.unsplit(e);
                any = true;
                offset = next;
            }
        }
        if !any && !eof {
            return Err(nfsstat3::NFS3ERR_TOOSMALL.into());
        }
        let mut b = ok();
        b.xdr(&post_op_attr::Void);
        b.fixed(&[0u8; 8]);
        b.unsplit(entries);
        b.bool(false);
        b.bool(eof);
        Ok(b)
    }

    async fn fsstat(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let t = self.target(call, r)?;
        let v = t.top.statfs(&t.ctx, &Loc::gfid(t.gfid)).await?;
        let mut b = ok();
        b.xdr(&post_op_attr::Void);
        let unit = if v.frsize > 0 { v.frsize } else { v.bsize };
        b.u64(v.blocks * unit);
        b.u64(v.bfree * unit);
        b.u64(v.bavail * unit);
        b.u64(v.files);
        b.u64(v.ffree);
        b.u64(v.favail);
        b.u32(0);
        Ok(b)
    }

    async fn fsinfo(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let t = self.target(call, r)?;
        let attrs = t.post_op(t.gfid).await;
        let mut b = ok();
        b.xdr(&fsinfo3 {
            obj_attributes: attrs,
            rtmax: MAX_IO,
            rtpref: MAX_IO,
            rtmult: 4096,
            wtmax: MAX_IO,
            wtpref: MAX_IO,
            wtmult: 4096,
            dtpref: 64 * 1024,
            maxfilesize: i64::MAX as u64,
            time_delta: nfstime3 {
                seconds: 0,
                nseconds: 1,
            },
            properties: FSF_LINK | FSF_SYMLINK | FSF_HOMOGENEOUS | FSF_CANSETTIME,
        });
        Ok(b)
    }

    async fn pathconf(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let t = self.target(call, r)?;
        let attrs = t.post_op(t.gfid).await;
        let mut b = ok();
        b.xdr(&attrs);
        b.u32(65000); // linkmax: ext4's, the usual brick file system
        b.u32(MAX_NAME as u32);
        b.bool(true); // no_trunc: long names are refused, not cut
        b.bool(true); // chown_restricted
        b.bool(false); // case_insensitive
        b.bool(true); // case_preserving
        Ok(b)
    }
}

/// The failure body of each procedure: the status and the "resfail" arm RFC 1813 gives it
/// (empty attributes and wcc data; we send none rather than a stale guess).
fn fail_body(proc_: u32, s: nfsstat3) -> BytesMut {
    let mut b = err(s);
    match proc_ {
        // GETATTR: nothing more.
        1 => {}
        // SETATTR, WRITE, CREATE, MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR, COMMIT: wcc_data.
        2 | 7 | 8 | 9 | 10 | 11 | 12 | 13 | 21 => b.xdr(&empty_wcc()),
        // RENAME: two wcc_data.
        14 => {
            b.xdr(&empty_wcc());
            b.xdr(&empty_wcc());
        }
        // LINK: post_op_attr and wcc_data.
        15 => {
            b.xdr(&post_op_attr::Void);
            b.xdr(&empty_wcc());
        }
        // LOOKUP, ACCESS, READLINK, READ, READDIR(PLUS), FSSTAT, FSINFO, PATHCONF: post_op_attr.
        _ => b.xdr(&post_op_attr::Void),
    }
    b
}

fn wcc_fail(s: nfsstat3, before: &Iatt, after: Option<&Iatt>, fsid: u64) -> BytesMut {
    let mut b = err(s);
    b.xdr(&wcc_data {
        before: pre_op_attr::attributes(wcc(before)),
        after: match after {
            Some(ia) => post_op_attr::attributes(fattr(ia, fsid)),
            None => post_op_attr::attributes(fattr(before, fsid)),
        },
    });
    b
}

fn new_entry(mode: u32, rdev: u64) -> NewEntry {
    NewEntry {
        gfid: Gfid::random(),
        mode,
        umask: 0,
        rdev,
        xattrs: Xattrs::new(),
    }
}

fn verf_times(v: &[u8]) -> (Timespec, Timespec) {
    let a = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
    let m = u32::from_be_bytes([v[4], v[5], v[6], v[7]]);
    (
        Timespec {
            sec: i64::from(a),
            nsec: 0,
        },
        Timespec {
            sec: i64::from(m),
            nsec: 0,
        },
    )
}

impl Dispatch for Server {
    async fn call(self: Arc<Self>, call: Call, args: Reader) -> Reply {
        match call.prog {
            NFS_PROGRAM if call.vers == 3 => {
                if call.proc_ != 0 && call.cred.flavor != crate::rpc::AUTH_SYS {
                    return Reply::Denied(crate::rpc::AuthStat::TooWeak);
                }
                use tracing::Instrument;
                let span = tracing::debug_span!("nfs", proc_ = call.proc_, xid = call.xid);
                self.nfs(call, args).instrument(span).await
            }
            NFS_PROGRAM => Reply::ProgMismatch(3, 3),
            MOUNT_PROGRAM if call.vers == 3 => crate::mount::call(&self, call, args).await,
            MOUNT_PROGRAM => Reply::ProgMismatch(3, 3),
            _ => Reply::ProgUnavail,
        }
    }
}
