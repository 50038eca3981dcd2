//! Requests on open files: open, read, write, flush, release, fsync and fallocate.

use crate::answer;
use crate::common::ctx_of;
use crate::types::Fs;
use bytes::Bytes;
use engine::*;
use fuser::{
    FileHandle, INodeNo, LockOwner, OpenFlags, ReplyData, ReplyEmpty, ReplyOpen, ReplyWrite,
    Request,
};
use std::sync::atomic::Ordering;

pub(crate) fn open(fs: &Fs, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
    let ctx = ctx_of(fs, req);
    fs.answer(
        "open",
        reply,
        |s| async move { s.top.open(&ctx, &s.loc(ino.0)?, flags.0).await },
        answer::opened,
    );
}

pub(crate) fn read(
    fs: &Fs,
    req: &Request,
    fh: FileHandle,
    offset: u64,
    size: u32,
    reply: ReplyData,
) {
    let ctx = ctx_of(fs, req);
    fs.answer(
        "read",
        reply,
        |s| async move { s.top.read(&ctx, &s.fd(fh)?.fd, offset, size).await },
        |s, data, reply| {
            s.metrics.read_bytes(data.len() as u64);
            reply.data(&data)
        },
    );
}

pub(crate) fn write(
    fs: &Fs,
    req: &Request,
    fh: FileHandle,
    offset: u64,
    data: &[u8],
    reply: ReplyWrite,
) {
    let ctx = ctx_of(fs, req);
    // fuser lends the request buffer only for this call: this is the one copy.
    let data = Bytes::copy_from_slice(data);
    let n = data.len() as u32;
    fs.answer(
        "write",
        reply,
        |s| async move { s.top.write(&ctx, &s.fd(fh)?.fd, offset, data).await },
        move |s, _, reply| {
            s.metrics.written_bytes(u64::from(n));
            reply.written(n)
        },
    );
}

pub(crate) fn flush(
    fs: &Fs,
    req: &Request,
    fh: FileHandle,
    lock_owner: LockOwner,
    reply: ReplyEmpty,
) {
    let ctx = Ctx {
        lk_owner: lock_owner.0,
        ..ctx_of(fs, req)
    };
    fs.answer(
        "flush",
        reply,
        |s| async move {
            let f = s.fd(fh)?;
            // close(2) drops the process's POSIX locks on the file.
            if f.locked.load(Ordering::Relaxed) {
                let unlock = Flock {
                    typ: LockType::Unlock,
                    start: 0,
                    len: 0,
                    pid: ctx.pid,
                    owner: lock_owner.0,
                };
                let _ = s.top.lk(&ctx, &f.fd, LockCmd::Set, &unlock).await;
            }
            s.top.flush(&ctx, &f.fd).await
        },
        answer::ok,
    );
}

/// Answers at once and releases the brick's fd in the background (the kernel does not wait
/// for release). Also used for directories, counted under `op`.
pub(crate) fn release(fs: &Fs, op: &'static str, fh: FileHandle, reply: ReplyEmpty) {
    let f = fs.inner.fhs.remove(&fh.0);
    reply.ok();
    if let Some((_, f)) = f {
        fs.spawn(op, |s| async move { s.top.release(&f.fd).await });
    }
}

pub(crate) fn fsync(
    fs: &Fs,
    op: &'static str,
    req: &Request,
    fh: FileHandle,
    datasync: bool,
    reply: ReplyEmpty,
) {
    let ctx = ctx_of(fs, req);
    fs.answer(
        op,
        reply,
        |s| async move { s.top.fsync(&ctx, &s.fd(fh)?.fd, datasync).await },
        answer::ok,
    );
}

pub(crate) fn fallocate(
    fs: &Fs,
    req: &Request,
    fh: FileHandle,
    offset: u64,
    length: u64,
    mode: i32,
    reply: ReplyEmpty,
) {
    let ctx = ctx_of(fs, req);
    fs.answer(
        "fallocate",
        reply,
        |s| async move {
            s.top
                .fallocate(&ctx, &s.fd(fh)?.fd, mode, offset, length)
                .await
        },
        answer::ok,
    );
}
