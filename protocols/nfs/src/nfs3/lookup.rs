//! LOOKUP and READLINK.

use super::common::{Fail, Server, Target, name, ok};
use crate::attr::X;
use crate::rpc::Call;
use crate::xdr::{Put, Reader};
use bytes::BytesMut;
use engine::fop::{Errno, Gfid, Loc, Xattrs};
use nfsserve::nfs::post_op_attr;

impl Server {
    pub(super) async fn lookup(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
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
        match crate::walk::walk(&t.top, &t.ctx, &t.export().subdir).await {
            Ok(g) => g == dir,
            Err(_) => false,
        }
    }

    pub(super) async fn readlink(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let t = self.target(call, r)?;
        let target = t.top.readlink(&t.ctx, &Loc::gfid(t.gfid)).await?;
        let mut b = ok();
        b.xdr(&post_op_attr::Void);
        b.opaque(target.as_bytes());
        Ok(b)
    }
}
