//! Directory requests: opendir, readdir and readdirplus (releasedir and fsyncdir are the
//! open-file ones of `io`).

use crate::answer;
use crate::attr::{self, file_attr};
use crate::common::ctx_of;
use crate::types::Fs;
use engine::*;
use fuser::{
    FileHandle, Generation, INodeNo, ReplyDirectory, ReplyDirectoryPlus, ReplyOpen, Request,
};

pub(crate) fn opendir(fs: &Fs, req: &Request, ino: INodeNo, reply: ReplyOpen) {
    let ctx = ctx_of(fs, req);
    fs.answer(
        "opendir",
        reply,
        |s| async move { s.top.opendir(&ctx, &s.loc(ino.0)?).await },
        answer::opened,
    );
}

pub(crate) fn readdir(fs: &Fs, req: &Request, fh: FileHandle, offset: u64, reply: ReplyDirectory) {
    let ctx = ctx_of(fs, req);
    fs.answer(
        "readdir",
        reply,
        |s| async move { s.top.readdir(&ctx, &s.fd(fh)?.fd, offset, 32 * 1024).await },
        move |_, ents, mut reply| {
            for e in ents {
                let kind = attr::kind_of_dtype(e.d_type);
                if reply.add(INodeNo(e.ino), e.d_off, kind, &e.name) {
                    break;
                }
            }
            reply.ok()
        },
    );
}

pub(crate) fn readdirplus(
    fs: &Fs,
    req: &Request,
    ino: INodeNo,
    fh: FileHandle,
    offset: u64,
    reply: ReplyDirectoryPlus,
) {
    let ctx = ctx_of(fs, req);
    fs.answer(
        "readdirplus",
        reply,
        |s| async move {
            s.top
                .readdirp(&ctx, &s.fd(fh)?.fd, offset, 32 * 1024, &Xattrs::new())
                .await
        },
        move |s, ents, mut reply| {
            for e in ents {
                let Some(ia) = &e.iatt else { continue };
                if reply.add(
                    INodeNo(ia.gfid.ino()),
                    e.d_off,
                    &e.name,
                    &s.entry_ttl,
                    &file_attr(ia),
                    Generation(0),
                ) {
                    break;
                }
                // The kernel counts every entry it was given as a lookup.
                s.remember(ino.0, &e.name, ia);
            }
            reply.ok()
        },
    );
}
