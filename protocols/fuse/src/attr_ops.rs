//! Attribute requests: getattr, setattr (with truncation), access and statfs.

use crate::answer;
use crate::attr::system_time;
use crate::common::ctx_of;
use crate::types::Fs;
use engine::*;
use fuser::{
    AccessFlags, FileHandle, INodeNo, ReplyAttr, ReplyEmpty, ReplyStatfs, Request, TimeOrNow,
};

pub(crate) fn getattr(
    fs: &Fs,
    req: &Request,
    ino: INodeNo,
    fh: Option<FileHandle>,
    reply: ReplyAttr,
) {
    let ctx = ctx_of(fs, req);
    fs.answer(
        "getattr",
        reply,
        |s| async move {
            if let Some(fh) = fh
                && let Ok(f) = s.fd(fh)
                && !f.fd.is_dir
            {
                return s.top.fstat(&ctx, &f.fd).await;
            }
            s.top.stat(&ctx, &s.loc(ino.0)?).await
        },
        answer::attr,
    );
}

// The arguments are the `Filesystem::setattr` ones this file system uses, passed through.
#[allow(clippy::too_many_arguments)]
pub(crate) fn setattr(
    fs: &Fs,
    req: &Request,
    ino: INodeNo,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
    atime: Option<TimeOrNow>,
    mtime: Option<TimeOrNow>,
    fh: Option<FileHandle>,
    reply: ReplyAttr,
) {
    let ctx = ctx_of(fs, req);
    let conv = |t: Option<TimeOrNow>| {
        t.map(|t| match t {
            TimeOrNow::Now => SetTime::Now,
            TimeOrNow::SpecificTime(st) => SetTime::At(system_time(st)),
        })
    };
    let attr = SetAttr {
        mode,
        uid,
        gid,
        size: None,
        atime: conv(atime),
        mtime: conv(mtime),
    };
    fs.answer(
        "setattr",
        reply,
        |s| async move {
            let loc = s.loc(ino.0)?;
            let mut ia = None;
            if let Some(size) = size {
                ia = Some(match fh.and_then(|fh| s.fd(fh).ok()) {
                    Some(f) => s.top.ftruncate(&ctx, &f.fd, size).await?,
                    None => s.top.truncate(&ctx, &loc, size).await?,
                });
            }
            if attr != SetAttr::default() {
                ia = Some(s.top.setattr(&ctx, &loc, &attr).await?);
            }
            match ia {
                Some(ia) => Ok(ia),
                None => s.top.stat(&ctx, &loc).await,
            }
        },
        answer::attr,
    );
}

pub(crate) fn access(fs: &Fs, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
    let ctx = ctx_of(fs, req);
    fs.answer(
        "access",
        reply,
        |s| async move { s.top.access(&ctx, &s.loc(ino.0)?, mask.bits() as u32).await },
        answer::ok,
    );
}

pub(crate) fn statfs(fs: &Fs, req: &Request, reply: ReplyStatfs) {
    let ctx = ctx_of(fs, req);
    fs.answer(
        "statfs",
        reply,
        |s| async move { s.top.statfs(&ctx, &Loc::root()).await },
        |_, v, reply| {
            reply.statfs(
                v.blocks,
                v.bfree,
                v.bavail,
                v.files,
                v.ffree,
                v.bsize as u32,
                v.namemax as u32,
                v.frsize as u32,
            )
        },
    );
}
