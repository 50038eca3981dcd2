//! Reads (GlusterFS's afr-inode-read.c and afr-dir-read.c): the replica to read from, one no
//! other accuses, with failover to the next on a lost connection.

use super::common::{Afr, first_error, hash_gfid};
use crate::fop::*;
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Afr {
    /// The replica to read `g` from (`skip`: those that failed already), learning it first
    /// when unknown. EIO for a file in split-brain.
    pub(super) async fn read_child(
        self: &Arc<Self>,
        ctx: &Ctx,
        g: Gfid,
        skip: &[usize],
    ) -> Result<usize> {
        let cached = self.inodes.contains_key(&g);
        match self.read_child_once(ctx, g, skip, cached).await {
            // What was learnt earlier may be out of date (another gateway or mount healed it,
            // or resolved the split-brain): look again before refusing.
            Err(Errno::EIO | Errno::ENOTCONN) if cached => {
                self.inodes.remove(&g);
                self.read_child_once(ctx, g, skip, false).await
            }
            r => r,
        }
    }

    pub(super) async fn read_child_once(
        self: &Arc<Self>,
        ctx: &Ctx,
        g: Gfid,
        skip: &[usize],
        cached: bool,
    ) -> Result<usize> {
        if !cached {
            let results = self.lookup_all(ctx, &Loc::gfid(g), &Xattrs::new()).await;
            if results.iter().all(|r| r.is_err()) {
                return Err(first_error(&results));
            }
            self.learn(g, &results, &Loc::gfid(g));
        }
        let info = self.inodes.get(&g).map(|i| i.clone()).ok_or(Errno::EIO)?;
        if info.split_brain {
            return Err(Errno::EIO);
        }
        let candidates: Vec<usize> = (0..self.n())
            .filter(|i| info.good[*i] && self.is_up(*i) && !skip.contains(i))
            .collect();
        if candidates.is_empty() {
            // A good replica is away and only stale ones are left: not served, as GlusterFS.
            return Err(if (0..self.n()).any(|i| info.good[i]) {
                Errno::ENOTCONN
            } else {
                Errno::EIO
            });
        }
        let k = match self.read_hash {
            0 => 0,
            2 => (hash_gfid(&g) ^ ctx.pid as u64) as usize % candidates.len(),
            _ => hash_gfid(&g) as usize % candidates.len(),
        };
        Ok(candidates[k])
    }

    /// Runs a read-only fop on a good replica, failing over to the next on a lost connection.
    pub(super) async fn read_fop<T, F, Fut>(self: &Arc<Self>, ctx: &Ctx, g: Gfid, f: F) -> Result<T>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut tried = Vec::new();
        loop {
            let i = self.read_child(ctx, g, &tried).await?;
            match f(i).await {
                Err(Errno::ENOTCONN) => tried.push(i),
                r => return r,
            }
        }
    }

    pub(super) async fn stat(self: &Arc<Self>, ctx: &Ctx, loc: &Loc) -> Result<Iatt> {
        let a = self;
        let g = a.gfid_of(ctx, loc).await?;
        a.read_fop(ctx, g, |i| a.sub(i).stat(ctx, loc)).await
    }

    pub(super) async fn fstat(self: &Arc<Self>, ctx: &Ctx, fd: &FdRef) -> Result<Iatt> {
        let a = self;
        a.read_fop(ctx, fd.gfid, |i| {
            let f = a.fd_on(fd, i);
            async move { a.sub(i).fstat(ctx, &f).await }
        })
        .await
    }

    pub(super) async fn access(self: &Arc<Self>, ctx: &Ctx, loc: &Loc, mask: u32) -> Result<()> {
        let a = self;
        let g = a.gfid_of(ctx, loc).await?;
        a.read_fop(ctx, g, |i| a.sub(i).access(ctx, loc, mask))
            .await
    }

    pub(super) async fn readlink(self: &Arc<Self>, ctx: &Ctx, loc: &Loc) -> Result<String> {
        let a = self;
        let g = a.gfid_of(ctx, loc).await?;
        a.read_fop(ctx, g, |i| a.sub(i).readlink(ctx, loc)).await
    }

    pub(super) async fn getxattr(
        self: &Arc<Self>,
        ctx: &Ctx,
        loc: &Loc,
        name: Option<&str>,
    ) -> Result<Xattrs> {
        let a = self;
        let g = a.gfid_of(ctx, loc).await?;
        let want = Xattrs::new();
        let x = a
            .read_fop(ctx, g, |i| a.sub(i).getxattr(ctx, loc, name))
            .await?;
        Ok(match name {
            Some(_) => x,
            None => a.strip_afr_keys(x, &want),
        })
    }

    pub(super) async fn statfs(self: &Arc<Self>, ctx: &Ctx, loc: &Loc) -> Result<Statvfs> {
        let a = self;
        let mut last = Errno::ENOTCONN;
        for i in a.up_list() {
            if a.is_arbiter(i) {
                continue;
            }
            match a.sub(i).statfs(ctx, loc).await {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub(super) async fn read(
        self: &Arc<Self>,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
    ) -> Result<Bytes> {
        let a = self;
        a.read_fop(ctx, fd.gfid, |i| {
            let f = a.fd_on(fd, i);
            async move { a.sub(i).read(ctx, &f, offset, size).await }
        })
        .await
    }

    pub(super) async fn readdir_any(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: Option<&Xattrs>,
    ) -> Result<Vec<Dirent>> {
        let a = self;
        let afd = a.child_fds(fd).ok_or(Errno::EBADF)?;
        let chosen = {
            let mut from = afd.readdir_from.lock();
            match *from {
                Some(i) if offset != 0 || a.is_up(i) => i,
                _ => {
                    let good = a.inodes.get(&fd.gfid).map(|i| i.good.clone());
                    let ok = |i: usize| {
                        a.is_up(i)
                            && afd.fds.get(i).is_some_and(|f| f.is_some())
                            && good.as_ref().is_none_or(|g| g[i] || !g.iter().any(|x| *x))
                    };
                    let since = |i: &usize| a.up_since[*i].load(Ordering::SeqCst);
                    let i = (0..a.n())
                        .filter(|i| !a.is_arbiter(*i) && ok(*i))
                        .min_by_key(since)
                        .or_else(|| (0..a.n()).find(|i| ok(*i)))
                        .ok_or(Errno::ENOTCONN)?;
                    *from = Some(i);
                    i
                }
            }
        };
        if !a.is_up(chosen) {
            return Err(Errno::ENOTCONN);
        }
        let child = afd.fds[chosen].clone().ok_or(Errno::EBADF)?;
        match want {
            Some(w) => {
                let mut out = a.sub(chosen).readdirp(ctx, &child, offset, size, w).await?;
                for e in &mut out {
                    e.xattrs = a.strip_afr_keys(std::mem::take(&mut e.xattrs), w);
                }
                Ok(out)
            }
            None => a.sub(chosen).readdir(ctx, &child, offset, size).await,
        }
    }
}
