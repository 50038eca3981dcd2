//! Inode writes (GlusterFS's afr-inode-write.c): data and metadata changes as transactions
//! on the inode; the arbiter takes the metadata but no data.

use super::changelog::TxnType;
use super::common::Afr;
use crate::fop::*;
use bytes::Bytes;
use std::sync::Arc;

impl Afr {
    pub(super) async fn setattr(
        self: &Arc<Self>,
        ctx: &Ctx,
        loc: &Loc,
        attr: &SetAttr,
    ) -> Result<Iatt> {
        let a = self;
        let g = a.gfid_of(ctx, loc).await?;
        let l = Loc::gfid(g);
        if attr.size.is_some() {
            a.inode_txn(g, TxnType::Data, |i| {
                let mut at = attr.clone();
                if a.is_arbiter(i) {
                    at.size = None;
                }
                let l = l.clone();
                async move { a.sub(i).setattr(ctx, &l, &at).await }
            })
            .await
        } else {
            a.inode_txn(g, TxnType::Metadata, |i| a.sub(i).setattr(ctx, &l, attr))
                .await
        }
    }

    pub(super) async fn truncate(
        self: &Arc<Self>,
        ctx: &Ctx,
        loc: &Loc,
        size: u64,
    ) -> Result<Iatt> {
        let a = self;
        let g = a.gfid_of(ctx, loc).await?;
        let l = Loc::gfid(g);
        a.inode_txn(g, TxnType::Data, |i| {
            let l = l.clone();
            async move {
                if a.is_arbiter(i) {
                    return a.arbiter_iatt(ctx, i, g).await;
                }
                a.sub(i).truncate(ctx, &l, size).await
            }
        })
        .await
    }

    pub(super) async fn ftruncate(
        self: &Arc<Self>,
        ctx: &Ctx,
        fd: &FdRef,
        size: u64,
    ) -> Result<Iatt> {
        let a = self;
        a.inode_txn(fd.gfid, TxnType::Data, |i| {
            let f = a.fd_on(fd, i);
            async move {
                if a.is_arbiter(i) {
                    return a.arbiter_iatt(ctx, i, fd.gfid).await;
                }
                a.sub(i).ftruncate(ctx, &f, size).await
            }
        })
        .await
    }

    pub(super) async fn write(
        self: &Arc<Self>,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        data: Bytes,
    ) -> Result<Iatt> {
        let a = self;
        a.inode_txn(fd.gfid, TxnType::Data, |i| {
            let f = a.fd_on(fd, i);
            let data = data.clone();
            async move {
                if a.is_arbiter(i) {
                    return a.arbiter_iatt(ctx, i, fd.gfid).await;
                }
                a.sub(i).write(ctx, &f, offset, data).await
            }
        })
        .await
    }

    pub(super) async fn fallocate(
        self: &Arc<Self>,
        ctx: &Ctx,
        fd: &FdRef,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        let a = self;
        a.inode_txn(fd.gfid, TxnType::Data, |i| {
            let f = a.fd_on(fd, i);
            async move {
                if a.is_arbiter(i) {
                    return Ok(());
                }
                a.sub(i).fallocate(ctx, &f, mode, offset, len).await
            }
        })
        .await
    }

    pub(super) async fn discard(
        self: &Arc<Self>,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        let a = self;
        a.inode_txn(fd.gfid, TxnType::Data, |i| {
            let f = a.fd_on(fd, i);
            async move {
                if a.is_arbiter(i) {
                    return Ok(());
                }
                a.sub(i).discard(ctx, &f, offset, len).await
            }
        })
        .await
    }

    pub(super) async fn setxattr(
        self: &Arc<Self>,
        ctx: &Ctx,
        loc: &Loc,
        xattrs: &Xattrs,
        flags: i32,
    ) -> Result<()> {
        let a = self;
        if xattrs.keys().any(|k| k.starts_with("trusted.afr.")) {
            return Err(Errno::EPERM);
        }
        let g = a.gfid_of(ctx, loc).await?;
        let l = Loc::gfid(g);
        a.inode_txn(g, TxnType::Metadata, |i| {
            a.sub(i).setxattr(ctx, &l, xattrs, flags)
        })
        .await
    }

    pub(super) async fn removexattr(
        self: &Arc<Self>,
        ctx: &Ctx,
        loc: &Loc,
        name: &str,
    ) -> Result<()> {
        let a = self;
        if name.starts_with("trusted.afr.") {
            return Err(Errno::EPERM);
        }
        let g = a.gfid_of(ctx, loc).await?;
        let l = Loc::gfid(g);
        a.inode_txn(g, TxnType::Metadata, |i| {
            a.sub(i).removexattr(ctx, &l, name)
        })
        .await
    }

    pub(super) async fn xattrop(
        self: &Arc<Self>,
        ctx: &Ctx,
        loc: &Loc,
        op: XattropOp,
        xattrs: &Xattrs,
    ) -> Result<Xattrs> {
        let a = self;
        let g = a.gfid_of(ctx, loc).await?;
        let l = Loc::gfid(g);
        a.inode_txn(g, TxnType::Metadata, |i| {
            a.sub(i).xattrop(ctx, &l, op, xattrs)
        })
        .await
    }
}
