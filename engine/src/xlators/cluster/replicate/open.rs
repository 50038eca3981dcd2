//! Fds (GlusterFS's afr-open.c, and flush, fsync and release): opened on every up replica,
//! a replica that was down at open reached through an anonymous fd.

use super::common::{Afr, first_error};
use crate::fop::*;
use futures::future::join_all;
use std::sync::Arc;

impl Afr {
    pub(super) async fn open(self: &Arc<Self>, ctx: &Ctx, loc: &Loc, flags: i32) -> Result<FdRef> {
        let a = self;
        let g = a.gfid_of(ctx, loc).await?;
        if flags & libc::O_TRUNC != 0 {
            a.check_quorum()?;
        }
        let l = Loc::gfid(g);
        // O_TRUNC is a data change: made as one, then the fds opened without it.
        if flags & libc::O_TRUNC != 0 {
            self.truncate(ctx, &l, 0).await?;
        }
        let fl = flags & !libc::O_TRUNC;
        let rs = join_all((0..a.n()).map(|i| {
            let l = &l;
            async move {
                if !a.is_up(i) {
                    return Err(Errno::ENOTCONN);
                }
                a.sub(i).open(ctx, l, fl).await
            }
        }))
        .await;
        if rs.iter().all(|r| r.is_err()) {
            return Err(first_error(&rs));
        }
        Ok(a.wrap(g, flags, false, rs.into_iter().map(|r| r.ok()).collect()))
    }

    pub(super) async fn opendir(self: &Arc<Self>, ctx: &Ctx, loc: &Loc) -> Result<FdRef> {
        let a = self;
        let g = a.gfid_of(ctx, loc).await?;
        let l = Loc::gfid(g);
        let rs = join_all((0..a.n()).map(|i| {
            let l = &l;
            async move {
                if !a.is_up(i) {
                    return Err(Errno::ENOTCONN);
                }
                a.sub(i).opendir(ctx, l).await
            }
        }))
        .await;
        if rs.iter().all(|r| r.is_err()) {
            return Err(first_error(&rs));
        }
        Ok(a.wrap(g, 0, true, rs.into_iter().map(|r| r.ok()).collect()))
    }

    pub(super) async fn flush(self: &Arc<Self>, ctx: &Ctx, fd: &FdRef) -> Result<()> {
        let a = self;
        a.eager_flush_at_close(fd.gfid).await;
        let rs = join_all(a.up_list().into_iter().filter_map(|i| {
            let f = a.child_fds(fd)?.fds.get(i).cloned().flatten()?;
            Some(async move { a.sub(i).flush(ctx, &f).await })
        }))
        .await;
        if rs.is_empty() || rs.iter().any(|r| r.is_ok()) {
            Ok(())
        } else {
            Err(first_error(&rs))
        }
    }

    pub(super) async fn fsync(
        self: &Arc<Self>,
        ctx: &Ctx,
        fd: &FdRef,
        datasync: bool,
    ) -> Result<()> {
        let a = self;
        a.eager_flush(fd.gfid).await;
        let rs = join_all(a.up_list().into_iter().map(|i| {
            let f = a.fd_on(fd, i);
            async move { a.sub(i).fsync(ctx, &f, datasync).await }
        }))
        .await;
        if rs.iter().any(|r| r.is_ok()) {
            Ok(())
        } else {
            Err(first_error(&rs))
        }
    }

    pub(super) async fn release(self: &Arc<Self>, fd: &FdRef) {
        let a = self;
        if !fd.is_dir {
            a.eager_flush(fd.gfid).await;
        }
        if let Some(afd) = a.child_fds(fd) {
            join_all(
                afd.fds
                    .iter()
                    .enumerate()
                    .filter_map(|(i, f)| f.as_ref().map(|f| a.sub(i).release(f))),
            )
            .await;
        }
    }
}
