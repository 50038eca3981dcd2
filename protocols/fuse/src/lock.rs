//! POSIX record locks: getlk and setlk (close drops them, in `io::flush`).

use crate::common::ctx_of;
use crate::types::Fs;
use engine::*;
use fuser::{FileHandle, LockOwner, ReplyEmpty, ReplyLock, Request};
use std::sync::atomic::Ordering;

fn lock_type(typ: i32) -> LockType {
    match typ {
        libc::F_RDLCK => LockType::Read,
        libc::F_WRLCK => LockType::Write,
        _ => LockType::Unlock,
    }
}

fn flock_of(start: u64, end: u64, typ: i32, pid: u32, owner: u64) -> Flock {
    // FUSE's end is inclusive, with OFFSET_MAX for "to the end of the file".
    let len = if end >= i64::MAX as u64 {
        0
    } else {
        end - start + 1
    };
    Flock {
        typ: lock_type(typ),
        start,
        len,
        pid: pid as i32,
        owner,
    }
}

// The arguments are the `Filesystem::getlk` ones, passed through.
#[allow(clippy::too_many_arguments)]
pub(crate) fn getlk(
    fs: &Fs,
    req: &Request,
    fh: FileHandle,
    lock_owner: LockOwner,
    start: u64,
    end: u64,
    typ: i32,
    pid: u32,
    reply: ReplyLock,
) {
    let ctx = Ctx {
        lk_owner: lock_owner.0,
        ..ctx_of(fs, req)
    };
    fs.answer(
        "getlk",
        reply,
        |s| async move {
            let fl = flock_of(start, end, typ, pid, lock_owner.0);
            s.top.lk(&ctx, &s.fd(fh)?.fd, LockCmd::Get, &fl).await
        },
        |_, got, reply| {
            let typ = match got.typ {
                LockType::Read => libc::F_RDLCK,
                LockType::Write => libc::F_WRLCK,
                LockType::Unlock => libc::F_UNLCK,
            };
            let end = if got.len == 0 {
                i64::MAX as u64
            } else {
                got.start + got.len - 1
            };
            reply.locked(got.start, end, typ, got.pid as u32)
        },
    );
}

// The arguments are the `Filesystem::setlk` ones, passed through.
#[allow(clippy::too_many_arguments)]
pub(crate) fn setlk(
    fs: &Fs,
    req: &Request,
    fh: FileHandle,
    lock_owner: LockOwner,
    start: u64,
    end: u64,
    typ: i32,
    pid: u32,
    sleep: bool,
    reply: ReplyEmpty,
) {
    let ctx = Ctx {
        lk_owner: lock_owner.0,
        ..ctx_of(fs, req)
    };
    fs.answer(
        "setlk",
        reply,
        |s| async move {
            let fl = flock_of(start, end, typ, pid, lock_owner.0);
            let cmd = if sleep {
                LockCmd::SetWait
            } else {
                LockCmd::Set
            };
            let f = s.fd(fh)?;
            f.locked.store(true, Ordering::Relaxed);
            s.top.lk(&ctx, &f.fd, cmd, &fl).await
        },
        |_, _, reply| reply.ok(),
    );
}
