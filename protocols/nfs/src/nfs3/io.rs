//! READ, WRITE and COMMIT.

use super::common::{Fail, MAX_IO, Server, empty_wcc, fail_body, ok};
use crate::attr::{R, W, check};
use crate::rpc::{Call, Reply};
use crate::xdr::{Put, Reader};
use bytes::{Bytes, BytesMut};
use engine::fop::Fd;
use nfsserve::nfs::{post_op_attr, pre_op_attr, wcc_data};

/// WRITE stable_how.
const UNSTABLE: u32 = 0;
const FILE_SYNC: u32 = 2;

impl Server {
    /// READ answers with the data as a separate buffer after the header: the bytes the brick
    /// sent are the bytes that go to the client.
    pub(super) async fn read(&self, call: &Call, r: &mut Reader) -> Reply {
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

    pub(super) async fn write(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
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

    pub(super) async fn commit(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let t = self.target(call, r)?;
        let _offset = r.u64()?;
        let _count = r.u32()?;
        t.top.fsync(&t.ctx, &Fd::anonymous(t.gfid), false).await?;
        let mut b = ok();
        b.xdr(&empty_wcc());
        b.fixed(&self.write_verf);
        Ok(b)
    }
}
