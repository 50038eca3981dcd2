//! READDIR and READDIRPLUS.

use super::common::{Fail, MAX_IO, Server, Target, ok};
use crate::attr::{R, check};
use crate::rpc::Call;
use crate::xdr::{Put, Reader};
use bytes::BytesMut;
use engine::fop::{Loc, Xattrs};
use nfsserve::nfs::{nfsstat3, post_op_attr, post_op_fh3};

impl Server {
    /// READDIR and READDIRPLUS: a fresh directory fd per call, resumed at the cookie (the
    /// engine's d_off, meaningful to any fd of the directory), filled up to the client's sizes.
    pub(super) async fn readdir(
        &self,
        call: &Call,
        r: &mut Reader,
        plus: bool,
    ) -> Result<BytesMut, Fail> {
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
}
