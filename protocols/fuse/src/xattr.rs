//! Extended attribute requests, with the cluster's own xattrs kept out of the users' sight.

use crate::answer;
use crate::common::{ctx_of, errno, name_of};
use crate::types::Fs;
use bytes::Bytes;
use engine::*;
use fuser::{INodeNo, ReplyEmpty, ReplyXattr, Request};
use std::ffi::OsStr;

/// Xattrs the cluster translators and the gateway keep on bricks (S3 owners, ACLs and
/// policies among them); users of the mount never see or set them.
fn internal_xattr(name: &str) -> bool {
    name.starts_with("trusted.gfid")
        || name.starts_with("trusted.glusterfs.")
        || name.starts_with("trusted.afr.")
        || name.starts_with("trusted.ec.")
        || name.starts_with("trusted.gateway.")
}

pub(crate) fn setxattr(
    fs: &Fs,
    req: &Request,
    ino: INodeNo,
    name: &OsStr,
    value: &[u8],
    flags: i32,
    reply: ReplyEmpty,
) {
    let ctx = ctx_of(fs, req);
    let (name, value) = (name.to_owned(), Bytes::copy_from_slice(value));
    fs.answer(
        "setxattr",
        reply,
        |s| async move {
            let name = name_of(&name)?;
            if internal_xattr(&name) {
                return Err(Errno::EPERM);
            }
            s.top
                .setxattr(&ctx, &s.loc(ino.0)?, &Xattrs::from([(name, value)]), flags)
                .await
        },
        answer::ok,
    );
}

pub(crate) fn getxattr(
    fs: &Fs,
    req: &Request,
    ino: INodeNo,
    name: &OsStr,
    size: u32,
    reply: ReplyXattr,
) {
    let ctx = ctx_of(fs, req);
    let name = name.to_owned();
    fs.answer(
        "getxattr",
        reply,
        |s| async move {
            let name = name_of(&name)?;
            if internal_xattr(&name) {
                return Err(Errno::ENODATA);
            }
            let xs = s.top.getxattr(&ctx, &s.loc(ino.0)?, Some(&name)).await?;
            xs.get(&name).cloned().ok_or(Errno::ENODATA)
        },
        move |_, v, reply| {
            if size == 0 {
                reply.size(v.len() as u32)
            } else if v.len() > size as usize {
                reply.error(errno(Errno::ERANGE))
            } else {
                reply.data(&v)
            }
        },
    );
}

pub(crate) fn listxattr(fs: &Fs, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
    let ctx = ctx_of(fs, req);
    fs.answer(
        "listxattr",
        reply,
        |s| async move { s.top.getxattr(&ctx, &s.loc(ino.0)?, None).await },
        move |_, xs, reply| {
            let mut buf = Vec::new();
            for k in xs.keys().filter(|k| !internal_xattr(k)) {
                buf.extend_from_slice(k.as_bytes());
                buf.push(0);
            }
            if size == 0 {
                reply.size(buf.len() as u32)
            } else if buf.len() > size as usize {
                reply.error(errno(Errno::ERANGE))
            } else {
                reply.data(&buf)
            }
        },
    );
}

pub(crate) fn removexattr(fs: &Fs, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
    let ctx = ctx_of(fs, req);
    let name = name.to_owned();
    fs.answer(
        "removexattr",
        reply,
        |s| async move {
            let name = name_of(&name)?;
            if internal_xattr(&name) {
                return Err(Errno::EPERM);
            }
            s.top.removexattr(&ctx, &s.loc(ino.0)?, &name).await
        },
        answer::ok,
    );
}
