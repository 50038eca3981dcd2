//! Namespace requests: lookup and readlink, and those that make, remove or rename names
//! (each name handed to the kernel is remembered in the inode table).

use crate::answer;
use crate::attr::file_attr;
use crate::common::{ctx_of, name_of};
use crate::types::Fs;
use engine::*;
use fuser::{
    FileHandle, FopenFlags, Generation, INodeNo, RenameFlags, ReplyCreate, ReplyData, ReplyEmpty,
    ReplyEntry, Request,
};
use std::ffi::OsStr;
use std::path::Path;

fn new_entry(mode: u32, umask: u32, rdev: u64) -> NewEntry {
    NewEntry {
        gfid: Gfid::random(),
        mode,
        umask,
        rdev,
        xattrs: Xattrs::new(),
        ..Default::default()
    }
}

pub(crate) fn lookup(fs: &Fs, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
    let ctx = ctx_of(fs, req);
    let name = name.to_owned();
    fs.answer(
        "lookup",
        reply,
        |s| async move {
            let name = name_of(&name)?;
            let loc = s.child_loc(parent.0, &name)?;
            let (ia, _) = s
                .top
                .lookup(&ctx, &loc, &Xattrs::new())
                .await
                .map_err(parent_gone)?;
            s.remember(parent.0, &name, &ia);
            Ok(ia)
        },
        answer::entry,
    );
}

pub(crate) fn readlink(fs: &Fs, req: &Request, ino: INodeNo, reply: ReplyData) {
    let ctx = ctx_of(fs, req);
    fs.answer(
        "readlink",
        reply,
        |s| async move { s.top.readlink(&ctx, &s.loc(ino.0)?).await },
        |_, t, reply| reply.data(t.as_bytes()),
    );
}

// The arguments are the `Filesystem::mknod` ones, passed through.
#[allow(clippy::too_many_arguments)]
pub(crate) fn mknod(
    fs: &Fs,
    req: &Request,
    parent: INodeNo,
    name: &OsStr,
    mode: u32,
    umask: u32,
    rdev: u32,
    reply: ReplyEntry,
) {
    let ctx = ctx_of(fs, req);
    let name = name.to_owned();
    fs.answer(
        "mknod",
        reply,
        |s| async move {
            let name = name_of(&name)?;
            let loc = s.child_loc(parent.0, &name)?;
            let (ia, _) = s
                .top
                .mknod(&ctx, &loc, &new_entry(mode, umask, rdev as u64))
                .await?;
            s.remember(parent.0, &name, &ia);
            Ok(ia)
        },
        answer::entry,
    );
}

pub(crate) fn mkdir(
    fs: &Fs,
    req: &Request,
    parent: INodeNo,
    name: &OsStr,
    mode: u32,
    umask: u32,
    reply: ReplyEntry,
) {
    let ctx = ctx_of(fs, req);
    let name = name.to_owned();
    fs.answer(
        "mkdir",
        reply,
        |s| async move {
            let name = name_of(&name)?;
            let loc = s.child_loc(parent.0, &name)?;
            let (ia, _) = s
                .top
                .mkdir(
                    &ctx,
                    &Loc {
                        path: s.path(parent.0),
                        ..loc
                    },
                    &new_entry(mode, umask, 0),
                )
                .await?;
            s.remember(parent.0, &name, &ia);
            Ok(ia)
        },
        answer::entry,
    );
}

/// A name looked up or removed in a directory another client removed meanwhile: the bricks
/// answer the stale parent with ESTALE, where a local file system says the name is not there
/// (ENOENT), which is what `rm -rf` racing another remover expects. (The kernel retries a
/// path walk once on ESTALE from the inode it had; the lookup it retries with must not say
/// ESTALE again.)
fn parent_gone(e: Errno) -> Errno {
    if e == Errno::ESTALE { Errno::ENOENT } else { e }
}

pub(crate) fn unlink(fs: &Fs, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
    let ctx = ctx_of(fs, req);
    let name = name.to_owned();
    fs.answer(
        "unlink",
        reply,
        |s| async move {
            s.top
                .unlink(&ctx, &s.child_loc(parent.0, &name_of(&name)?)?)
                .await
                .map(|_| ())
                .map_err(parent_gone)
        },
        answer::ok,
    );
}

pub(crate) fn rmdir(fs: &Fs, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
    let ctx = ctx_of(fs, req);
    let name = name.to_owned();
    fs.answer(
        "rmdir",
        reply,
        |s| async move {
            s.top
                .rmdir(&ctx, &s.child_loc(parent.0, &name_of(&name)?)?)
                .await
                .map(|_| ())
                .map_err(parent_gone)
        },
        answer::ok,
    );
}

pub(crate) fn symlink(
    fs: &Fs,
    req: &Request,
    parent: INodeNo,
    link_name: &OsStr,
    target: &Path,
    reply: ReplyEntry,
) {
    let ctx = ctx_of(fs, req);
    let (name, target) = (link_name.to_owned(), target.to_owned());
    fs.answer(
        "symlink",
        reply,
        |s| async move {
            let name = name_of(&name)?;
            let target = target.to_str().ok_or(Errno::EILSEQ)?;
            let loc = s.child_loc(parent.0, &name)?;
            let (ia, _) = s
                .top
                .symlink(&ctx, &loc, target, &new_entry(0o777, 0, 0))
                .await?;
            s.remember(parent.0, &name, &ia);
            Ok(ia)
        },
        answer::entry,
    );
}

// The arguments are the `Filesystem::rename` ones, passed through.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rename(
    fs: &Fs,
    req: &Request,
    parent: INodeNo,
    name: &OsStr,
    newparent: INodeNo,
    newname: &OsStr,
    flags: RenameFlags,
    reply: ReplyEmpty,
) {
    let ctx = ctx_of(fs, req);
    let (name, newname) = (name.to_owned(), newname.to_owned());
    fs.answer(
        "rename",
        reply,
        |s| async move {
            let (name, newname) = (name_of(&name)?, name_of(&newname)?);
            let old = s.child_loc(parent.0, &name)?;
            let new = s.child_loc(newparent.0, &newname)?;
            if !(flags - RenameFlags::RENAME_NOREPLACE).is_empty() {
                return Err(Errno::EINVAL);
            }
            if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                match s.top.lookup(&ctx, &new, &Xattrs::new()).await {
                    Ok(_) => return Err(Errno::EEXIST),
                    Err(Errno::ENOENT) => {}
                    Err(e) => return Err(e),
                }
            }
            let (ia, _, _) = s.top.rename(&ctx, &old, &new).await?;
            if let Some(mut i) = s.inodes.get_mut(&ia.gfid.ino()) {
                i.parent = newparent.0;
                i.name = newname;
            }
            Ok(())
        },
        answer::ok,
    );
}

pub(crate) fn link(
    fs: &Fs,
    req: &Request,
    ino: INodeNo,
    newparent: INodeNo,
    newname: &OsStr,
    reply: ReplyEntry,
) {
    let ctx = ctx_of(fs, req);
    let newname = newname.to_owned();
    fs.answer(
        "link",
        reply,
        |s| async move {
            let name = name_of(&newname)?;
            let old = s.loc(ino.0)?;
            let new = s.child_loc(newparent.0, &name)?;
            let ia = s.top.link(&ctx, &old, &new).await?;
            s.remember(newparent.0, &name, &ia);
            Ok(ia)
        },
        answer::entry,
    );
}

// The arguments are the `Filesystem::create` ones, passed through.
#[allow(clippy::too_many_arguments)]
pub(crate) fn create(
    fs: &Fs,
    req: &Request,
    parent: INodeNo,
    name: &OsStr,
    mode: u32,
    umask: u32,
    flags: i32,
    reply: ReplyCreate,
) {
    let ctx = ctx_of(fs, req);
    let name = name.to_owned();
    fs.answer(
        "create",
        reply,
        |s| async move {
            let name = name_of(&name)?;
            let loc = s.child_loc(parent.0, &name)?;
            let (fd, ia, _) = s
                .top
                .create(&ctx, &loc, flags, &new_entry(mode, umask, 0))
                .await?;
            s.remember(parent.0, &name, &ia);
            Ok((s.keep(fd), ia))
        },
        |s, (fh, ia), reply| {
            reply.created(
                &s.entry_ttl,
                &file_attr(&ia),
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            )
        },
    );
}
