//! The fops (GlusterFS's client-rpc-fops.c): each one request to the brick, its reply decoded.

use super::common::{Client, RemoteFd};
use crate::fop::*;
use crate::rpc::*;
use crate::xlator::{Xlator, XlatorBase};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::atomic::Ordering;

fn unexpected<T>() -> Result<T> {
    Err(Errno::EPROTO)
}

#[async_trait]
impl Xlator for Client {
    fn base(&self) -> &XlatorBase {
        &self.base
    }

    fn as_any(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        Some(self)
    }

    async fn init(&self) -> Result<()> {
        if let Some(me) = self.me.upgrade() {
            tokio::spawn(me.run());
        }
        Ok(())
    }

    async fn fini(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.metrics.set_up(false);
        if let Some(c) = self.conn.write().take() {
            c.fail_all();
        }
    }

    async fn lookup(&self, ctx: &Ctx, loc: &Loc, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        match self
            .call_body(Request::Lookup {
                ctx: ctx.clone(),
                loc: loc.clone(),
                want: want.clone(),
            })
            .await?
        {
            ReplyBody::Lookup(i, x) => Ok((i, x)),
            _ => unexpected(),
        }
    }

    async fn stat(&self, ctx: &Ctx, loc: &Loc) -> Result<Iatt> {
        iatt(
            self.call_body(Request::Stat {
                ctx: ctx.clone(),
                loc: loc.clone(),
            })
            .await?,
        )
    }

    async fn fstat(&self, ctx: &Ctx, fd: &FdRef) -> Result<Iatt> {
        let w = self.wire_fd(ctx, fd).await?;
        iatt(
            self.call_body(Request::Fstat {
                ctx: ctx.clone(),
                fd: w,
            })
            .await?,
        )
    }

    async fn setattr(&self, ctx: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
        iatt(
            self.call_body(Request::Setattr {
                ctx: ctx.clone(),
                loc: loc.clone(),
                attr: attr.clone(),
            })
            .await?,
        )
    }

    async fn access(&self, ctx: &Ctx, loc: &Loc, mask: u32) -> Result<()> {
        self.call_body(Request::Access {
            ctx: ctx.clone(),
            loc: loc.clone(),
            mask,
        })
        .await
        .map(|_| ())
    }

    async fn create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt, PostParent)> {
        let req = Request::Create {
            ctx: ctx.clone(),
            loc: loc.clone(),
            flags,
            entry: entry.clone(),
        };
        match self.call(req, entry.data.clone()).await?.0 {
            ReplyBody::Created(remote, ia, parent) => {
                Ok((self.new_fd(ia.gfid, flags, false, remote), ia, parent))
            }
            _ => unexpected(),
        }
    }

    async fn open(&self, ctx: &Ctx, loc: &Loc, flags: i32) -> Result<FdRef> {
        match self
            .call_body(Request::Open {
                ctx: ctx.clone(),
                loc: loc.clone(),
                flags,
            })
            .await?
        {
            ReplyBody::Fd(remote, ia) => {
                let g = ia.map(|i| i.gfid).or(loc.gfid).ok_or(Errno::EPROTO)?;
                Ok(self.new_fd(g, flags, false, remote))
            }
            _ => unexpected(),
        }
    }

    async fn read(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Bytes> {
        let w = self.wire_fd(ctx, fd).await?;
        match self
            .call(
                Request::Read {
                    ctx: ctx.clone(),
                    fd: w,
                    offset,
                    size,
                },
                Bytes::new(),
            )
            .await?
        {
            (ReplyBody::Data, data) => Ok(data),
            _ => unexpected(),
        }
    }

    async fn write(&self, ctx: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
        let w = self.wire_fd(ctx, fd).await?;
        iatt(
            self.call(
                Request::Write {
                    ctx: ctx.clone(),
                    fd: w,
                    offset,
                },
                data,
            )
            .await?
            .0,
        )
    }

    async fn truncate(&self, ctx: &Ctx, loc: &Loc, size: u64) -> Result<Iatt> {
        iatt(
            self.call_body(Request::Truncate {
                ctx: ctx.clone(),
                loc: loc.clone(),
                size,
            })
            .await?,
        )
    }

    async fn ftruncate(&self, ctx: &Ctx, fd: &FdRef, size: u64) -> Result<Iatt> {
        let w = self.wire_fd(ctx, fd).await?;
        iatt(
            self.call_body(Request::Ftruncate {
                ctx: ctx.clone(),
                fd: w,
                size,
            })
            .await?,
        )
    }

    async fn flush(&self, _ctx: &Ctx, _fd: &FdRef) -> Result<()> {
        // Nothing on the brick acts on flush (storage/posix writes through, and POSIX locks are
        // dropped by an explicit unlock from the frontend), so close(2) costs no round trip.
        // A brick that is away still fails it, so close reports the loss.
        if self.is_connected() {
            Ok(())
        } else {
            Err(Errno::ENOTCONN)
        }
    }

    async fn fsync(&self, ctx: &Ctx, fd: &FdRef, datasync: bool) -> Result<()> {
        let w = self.wire_fd(ctx, fd).await?;
        self.call_body(Request::Fsync {
            ctx: ctx.clone(),
            fd: w,
            datasync,
        })
        .await
        .map(|_| ())
    }

    async fn release(&self, fd: &FdRef) {
        if let Some(r) = fd.ctx_get::<RemoteFd>(self.base.id)
            && r.generation == self.generation.load(Ordering::SeqCst)
        {
            let _ = self.call_body(Request::Release { fd: r.remote }).await;
        }
        fd.ctx_del(self.base.id);
    }

    async fn mkdir(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        match self
            .call_body(Request::Mkdir {
                ctx: ctx.clone(),
                loc: loc.clone(),
                entry: entry.clone(),
            })
            .await?
        {
            ReplyBody::Made(ia, parent) => Ok((ia, parent)),
            _ => unexpected(),
        }
    }

    async fn mknod(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        made(
            self.call_body(Request::Mknod {
                ctx: ctx.clone(),
                loc: loc.clone(),
                entry: entry.clone(),
            })
            .await?,
        )
    }

    async fn symlink(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        target: &str,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        let req = Request::Symlink {
            ctx: ctx.clone(),
            loc: loc.clone(),
            target: target.to_string(),
            entry: entry.clone(),
        };
        made(self.call_body(req).await?)
    }

    async fn readlink(&self, ctx: &Ctx, loc: &Loc) -> Result<String> {
        match self
            .call_body(Request::Readlink {
                ctx: ctx.clone(),
                loc: loc.clone(),
            })
            .await?
        {
            ReplyBody::Text(t) => Ok(t),
            _ => unexpected(),
        }
    }

    async fn link(&self, ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        iatt(
            self.call_body(Request::Link {
                ctx: ctx.clone(),
                old: oldloc.clone(),
                new: newloc.clone(),
            })
            .await?,
        )
    }

    async fn unlink(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        match self
            .call_body(Request::Unlink {
                ctx: ctx.clone(),
                loc: loc.clone(),
            })
            .await?
        {
            ReplyBody::Parent(parent) => Ok(parent),
            _ => unexpected(),
        }
    }

    async fn rmdir(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        match self
            .call_body(Request::Rmdir {
                ctx: ctx.clone(),
                loc: loc.clone(),
            })
            .await?
        {
            ReplyBody::Parent(parent) => Ok(parent),
            _ => unexpected(),
        }
    }

    async fn rename(
        &self,
        ctx: &Ctx,
        oldloc: &Loc,
        newloc: &Loc,
    ) -> Result<(Iatt, PostParent, PostParent)> {
        match self
            .call_body(Request::Rename {
                ctx: ctx.clone(),
                old: oldloc.clone(),
                new: newloc.clone(),
            })
            .await?
        {
            ReplyBody::Renamed(ia, old, new) => Ok((ia, old, new)),
            _ => unexpected(),
        }
    }

    async fn opendir(&self, ctx: &Ctx, loc: &Loc) -> Result<FdRef> {
        match self
            .call_body(Request::Opendir {
                ctx: ctx.clone(),
                loc: loc.clone(),
            })
            .await?
        {
            ReplyBody::Fd(remote, ia) => {
                let g = ia.map(|i| i.gfid).or(loc.gfid).ok_or(Errno::EPROTO)?;
                Ok(self.new_fd(g, libc::O_RDONLY, true, remote))
            }
            _ => unexpected(),
        }
    }

    async fn readdir(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Vec<Dirent>> {
        let w = self.wire_fd(ctx, fd).await?;
        match self
            .call_body(Request::Readdir {
                ctx: ctx.clone(),
                fd: w,
                offset,
                size,
            })
            .await?
        {
            ReplyBody::Dirents(d) => Ok(d),
            _ => unexpected(),
        }
    }

    async fn readdirp(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: &Xattrs,
    ) -> Result<Vec<Dirent>> {
        let w = self.wire_fd(ctx, fd).await?;
        let req = Request::Readdirp {
            ctx: ctx.clone(),
            fd: w,
            offset,
            size,
            want: want.clone(),
        };
        match self.call_body(req).await? {
            ReplyBody::Dirents(d) => Ok(d),
            _ => unexpected(),
        }
    }

    async fn statfs(&self, ctx: &Ctx, loc: &Loc) -> Result<Statvfs> {
        match self
            .call_body(Request::Statfs {
                ctx: ctx.clone(),
                loc: loc.clone(),
            })
            .await?
        {
            ReplyBody::Statfs(s) => Ok(s),
            _ => unexpected(),
        }
    }

    async fn getxattr(&self, ctx: &Ctx, loc: &Loc, name: Option<&str>) -> Result<Xattrs> {
        let req = Request::Getxattr {
            ctx: ctx.clone(),
            loc: loc.clone(),
            name: name.map(String::from),
        };
        xattrs(self.call_body(req).await?)
    }

    async fn setxattr(&self, ctx: &Ctx, loc: &Loc, xs: &Xattrs, flags: i32) -> Result<()> {
        let req = Request::Setxattr {
            ctx: ctx.clone(),
            loc: loc.clone(),
            xattrs: xs.clone(),
            flags,
        };
        self.call_body(req).await.map(|_| ())
    }

    async fn removexattr(&self, ctx: &Ctx, loc: &Loc, name: &str) -> Result<()> {
        let req = Request::Removexattr {
            ctx: ctx.clone(),
            loc: loc.clone(),
            name: name.to_string(),
        };
        self.call_body(req).await.map(|_| ())
    }

    async fn xattrop(&self, ctx: &Ctx, loc: &Loc, op: XattropOp, xs: &Xattrs) -> Result<Xattrs> {
        xattrs(
            self.call_body(Request::Xattrop {
                ctx: ctx.clone(),
                loc: loc.clone(),
                op,
                xattrs: xs.clone(),
            })
            .await?,
        )
    }

    async fn inodelk(
        &self,
        ctx: &Ctx,
        domain: &str,
        loc: &Loc,
        cmd: LockCmd,
        lock: &Flock,
    ) -> Result<Flock> {
        let req = Request::Inodelk {
            ctx: ctx.clone(),
            domain: domain.to_string(),
            loc: loc.clone(),
            cmd,
            lock: *lock,
        };
        flock(self.call_body(req).await?)
    }

    async fn entrylk(
        &self,
        ctx: &Ctx,
        domain: &str,
        loc: &Loc,
        basename: Option<&str>,
        cmd: EntrylkCmd,
        typ: EntrylkType,
    ) -> Result<()> {
        let req = Request::Entrylk {
            ctx: ctx.clone(),
            domain: domain.to_string(),
            loc: loc.clone(),
            basename: basename.map(String::from),
            cmd,
            typ,
        };
        self.call_body(req).await.map(|_| ())
    }

    async fn txn_steps(&self, ctx: &Ctx, steps: &[TxnStep]) -> std::result::Result<(), StepFailed> {
        let req = Request::Compound {
            ctx: ctx.clone(),
            steps: steps.to_vec(),
        };
        match self.call_body(req).await {
            Ok(ReplyBody::Steps(None)) => Ok(()),
            Ok(ReplyBody::Steps(Some(f))) => Err(f),
            // Lost with the connection: the brick drops a client's locks when it goes, so
            // the caller counts none of the steps as done.
            Err(error) => Err(StepFailed { done: 0, error }),
            Ok(_) => Err(StepFailed {
                done: 0,
                error: Errno::EPROTO,
            }),
        }
    }

    async fn lk(&self, ctx: &Ctx, fd: &FdRef, cmd: LockCmd, lock: &Flock) -> Result<Flock> {
        let w = self.wire_fd(ctx, fd).await?;
        flock(
            self.call_body(Request::Lk {
                ctx: ctx.clone(),
                fd: w,
                cmd,
                lock: *lock,
            })
            .await?,
        )
    }

    async fn fallocate(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        let w = self.wire_fd(ctx, fd).await?;
        self.call_body(Request::Fallocate {
            ctx: ctx.clone(),
            fd: w,
            mode,
            offset,
            len,
        })
        .await
        .map(|_| ())
    }

    async fn rchecksum(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        len: u32,
    ) -> Result<(u32, [u8; 32])> {
        let w = self.wire_fd(ctx, fd).await?;
        match self
            .call_body(Request::Rchecksum {
                ctx: ctx.clone(),
                fd: w,
                offset,
                len,
            })
            .await?
        {
            ReplyBody::Checksum(n, sum) => Ok((n, sum)),
            _ => unexpected(),
        }
    }

    async fn discard(&self, ctx: &Ctx, fd: &FdRef, offset: u64, len: u64) -> Result<()> {
        let w = self.wire_fd(ctx, fd).await?;
        self.call_body(Request::Discard {
            ctx: ctx.clone(),
            fd: w,
            offset,
            len,
        })
        .await
        .map(|_| ())
    }
}

fn made(b: ReplyBody) -> Result<(Iatt, PostParent)> {
    match b {
        ReplyBody::Made(ia, parent) => Ok((ia, parent)),
        _ => unexpected(),
    }
}

fn iatt(b: ReplyBody) -> Result<Iatt> {
    match b {
        ReplyBody::Iatt(i) => Ok(i),
        _ => unexpected(),
    }
}

fn xattrs(b: ReplyBody) -> Result<Xattrs> {
    match b {
        ReplyBody::Xattrs(x) => Ok(x),
        _ => unexpected(),
    }
}

fn flock(b: ReplyBody) -> Result<Flock> {
    match b {
        ReplyBody::Flock(f) => Ok(f),
        _ => unexpected(),
    }
}
