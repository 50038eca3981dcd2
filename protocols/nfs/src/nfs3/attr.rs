//! GETATTR, SETATTR and ACCESS, and the file system's: FSSTAT, FSINFO and PATHCONF.

use super::common::{Fail, MAX_IO, MAX_NAME, Server, err, ok};
use crate::attr::{self, R, W, X, check_setattr, fattr, sattr, status, wcc};
use crate::rpc::Call;
use crate::xdr::{Put, Reader};
use bytes::BytesMut;
use engine::fop::{Iatt, Loc, SetAttr};
use nfsserve::nfs::{
    FSF_CANSETTIME, FSF_HOMOGENEOUS, FSF_LINK, FSF_SYMLINK, fsinfo3, nfsstat3, nfstime3,
    post_op_attr, pre_op_attr, wcc_data,
};

/// ACCESS bits (RFC 1813 §3.3.4).
const ACCESS_READ: u32 = 0x01;
const ACCESS_LOOKUP: u32 = 0x02;
const ACCESS_MODIFY: u32 = 0x04;
const ACCESS_EXTEND: u32 = 0x08;
const ACCESS_DELETE: u32 = 0x10;
const ACCESS_EXECUTE: u32 = 0x20;

impl Server {
    pub(super) async fn getattr(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let t = self.target(call, r)?;
        let ia = t.stat(t.gfid).await?;
        let mut b = ok();
        b.xdr(&fattr(&ia, t.fsid));
        Ok(b)
    }

    pub(super) async fn setattr(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
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

    pub(super) async fn access(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
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

    pub(super) async fn fsstat(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
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

    pub(super) async fn fsinfo(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
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

    pub(super) async fn pathconf(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
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
