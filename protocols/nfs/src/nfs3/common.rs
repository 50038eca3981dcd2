//! What the NFSv3 procedures share: the server's state, a handle resolved to its export, the
//! ways a call fails, and the pieces of every reply.

use crate::attr::{check, fattr, status};
use crate::export::{Export, Exports};
use crate::handle::{Handle, export_tag};
use crate::rpc::Call;
use crate::xdr::{Garbage, Put, Reader};
use bytes::BytesMut;
use engine::fop::{Ctx, Errno, Gfid, Iatt, Loc};
use engine::xlator::XlatorRef;
use nfsserve::nfs::{nfs_fh3, nfsstat3, post_op_attr, wcc_data};
use std::sync::Arc;

/// rtmax/wtmax: 1 MiB, the largest READ or WRITE the client may send in one call.
pub const MAX_IO: u32 = 1 << 20;
pub(super) const MAX_NAME: usize = 255;
pub(super) const MAX_PATH: usize = 4096;

/// The NFS and MOUNT server of one port: the export table, and what lives as long as the
/// process does.
pub struct Server {
    pub(super) exports: Arc<dyn Exports>,
    pub(super) metrics: engine::metrics::ProtocolOps,
    /// Changes every time the gateway starts, so clients re-send UNSTABLE writes they had not
    /// seen committed (RFC 1813 §3.3.7).
    pub(super) write_verf: [u8; 8],
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

    pub(super) fn handle(&self, gfid: Gfid) -> nfs_fh3 {
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

    pub(super) async fn stat(&self, gfid: Gfid) -> Result<Iatt, Errno> {
        self.top.stat(&self.ctx, &Loc::gfid(gfid)).await
    }

    pub(super) async fn post_op(&self, gfid: Gfid) -> post_op_attr {
        match self.stat(gfid).await {
            Ok(ia) => post_op_attr::attributes(fattr(&ia, self.fsid)),
            Err(_) => post_op_attr::Void,
        }
    }

    pub(super) fn attrs(&self, ia: &Iatt) -> post_op_attr {
        post_op_attr::attributes(fattr(ia, self.fsid))
    }

    pub(super) fn writable(&self) -> Result<(), Errno> {
        if self.export().options.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// Root passes every permission check but execute; skipping the directory's stat for it
    /// saves a round trip on every LOOKUP and create.
    pub(super) async fn check_dir(&self, dir: Gfid, want: u32) -> Result<(), Errno> {
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

fn volume_fsid(id: &[u8; 16]) -> u64 {
    u64::from_be_bytes(id[..8].try_into().expect("8 bytes"))
        ^ u64::from_be_bytes(id[8..].try_into().expect("8 bytes"))
}

/// A file name from the wire: UTF-8 (the bricks' names are), no '/', not empty.
pub(super) fn name(r: &mut Reader) -> Result<String, Fail> {
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

pub(super) fn ok() -> BytesMut {
    let mut b = BytesMut::with_capacity(256);
    b.xdr(&nfsstat3::NFS3_OK);
    b
}

pub(super) fn err(s: nfsstat3) -> BytesMut {
    let mut b = BytesMut::with_capacity(64);
    b.xdr(&s);
    b
}

pub(super) fn empty_wcc() -> wcc_data {
    wcc_data::default()
}

impl Server {
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
            ctx: export.options.ctx(&call.cred),
            fsid: volume_fsid(&export.volume_id),
            tag: h.export,
            idx,
            exports,
            gfid: h.gfid,
        })
    }

    pub(super) fn target(&self, call: &Call, r: &mut Reader) -> Result<Target, Fail> {
        let fh = r.opaque(64)?;
        self.resolve(call, &fh)
    }
}

/// The failure body of each procedure: the status and the "resfail" arm RFC 1813 gives it
/// (empty attributes and wcc data; we send none rather than a stale guess).
pub(super) fn fail_body(proc_: u32, s: nfsstat3) -> BytesMut {
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
