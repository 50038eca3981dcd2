//! Fops on an inode: lookup, stat, setattr, open and the data fops, xattrs.

use super::super::xattr;
use super::common::{OpenFile, Posix, blocking, metadata};
use super::handle::{At, Handles};
use super::times::{self, Place, io};
use bytes::{Bytes, BytesMut};
use engine::fop::keys;
use engine::mdata::{self, Stamp, flags};
use engine::*;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

pub(super) fn wanted(path: &Path, want: &Xattrs) -> Result<Xattrs> {
    let mut out = Xattrs::new();
    if want.is_empty() {
        return Ok(out);
    }
    // Most names asked for are absent (ACLs, capabilities and labels a brick rarely holds;
    // an object's ETag on a directory): past a few, one listxattr says which are there,
    // where a getxattr of each would fail one by one. Every entry of a readdirp and every
    // lookup asks for them.
    let exact = want.keys().filter(|k| !k.ends_with('*')).count();
    let present = if exact >= LIST_FIRST || exact < want.len() {
        Some(xattr::list(path)?)
    } else {
        None
    };
    for k in want.keys() {
        if let Some(prefix) = k.strip_suffix('*') {
            let all = present.as_deref().unwrap_or_default();
            for n in all.iter().filter(|n| n.starts_with(prefix)) {
                if let Some(v) = xattr::get(path, n)? {
                    out.insert(n.clone(), Bytes::from(v));
                }
            }
            continue;
        }
        if present.as_ref().is_some_and(|all| !all.contains(k)) {
            continue;
        }
        if let Some(v) = xattr::get(path, k)? {
            out.insert(k.clone(), Bytes::from(v));
        }
    }
    Ok(out)
}

/// How many names `wanted` reads one by one before it lists the inode's names first.
const LIST_FIRST: usize = 3;

pub(super) fn is_protected_xattr(name: &str) -> bool {
    name == keys::GFID || name == keys::VOLUME_ID || name.starts_with(keys::GFID2PATH_PREFIX)
}

fn open_flags(flags: i32) -> (bool, bool, i32) {
    let acc = flags & libc::O_ACCMODE;
    let read = acc == libc::O_RDONLY || acc == libc::O_RDWR;
    let write = acc == libc::O_WRONLY || acc == libc::O_RDWR;
    // The kernel's own flags that make sense on the brick; O_CREAT/O_EXCL are handled by create.
    let custom = flags
        & (libc::O_APPEND
            | libc::O_TRUNC
            | libc::O_NOATIME
            | libc::O_DIRECT
            | libc::O_SYNC
            | libc::O_DSYNC);
    (read, write, custom)
}

pub(super) fn open_path(path: &Path, flags: i32) -> Result<File> {
    let (read, write, custom) = open_flags(flags);
    let mut o = OpenOptions::new();
    o.read(read || !write)
        .write(write)
        .custom_flags(custom & !libc::O_TRUNC);
    if custom & libc::O_APPEND != 0 {
        o.append(true);
    }
    let f = io(o.open(path))?;
    if custom & libc::O_TRUNC != 0 && write {
        io(f.set_len(0))?;
    }
    Ok(f)
}

/// A file's data changed through `f`: its times move.
fn data_changed(h: &Handles, f: &File, g: Gfid, stamp: Option<&Stamp>) -> Result<Iatt> {
    times::touch(h, Place::File(f), g, stamp, flags::CTIME | flags::MTIME)?;
    times::iatt_fd(f, g)
}

impl Posix {
    pub(super) async fn do_lookup(&self, loc: &Loc, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        let (h, loc, want) = (self.h.clone(), loc.clone(), want.clone());
        metadata(move || {
            let at = h.resolve(&loc)?;
            let md = io(fs::symlink_metadata(&*at))?;
            let g = h.gfid_of(&at, loc.parent)?;
            if let Some(expect) = loc.gfid
                && loc.name.is_some()
                && expect != g
            {
                // The name now holds another inode: the caller's view is stale.
                return Err(Errno::ESTALE);
            }
            let x = wanted(&at, &want)?;
            let mut ia = times::iatt_from(&md, g);
            match x.get(mdata::KEY) {
                Some(v) => {
                    if let Some(m) = mdata::Mdata::decode(v) {
                        m.apply(&mut ia);
                    }
                }
                None => {
                    if let Some(m) = times::load(&at)? {
                        m.apply(&mut ia);
                    }
                }
            }
            Ok((ia, x))
        })
        .await
    }

    pub(super) async fn do_stat(&self, loc: &Loc) -> Result<Iatt> {
        let (h, loc) = (self.h.clone(), loc.clone());
        metadata(move || {
            let at = h.resolve(&loc)?;
            let g = h.gfid_of(&at, loc.parent)?;
            times::iatt(&at, g)
        })
        .await
    }

    pub(super) async fn do_fstat(&self, fd: &FdRef) -> Result<Iatt> {
        if fd.is_dir {
            return self.do_stat(&Loc::gfid(fd.gfid)).await;
        }
        let f = self.open_file(fd)?;
        let g = fd.gfid;
        metadata(move || times::iatt_fd(&f, g)).await
    }

    pub(super) async fn do_setattr(&self, ctx: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
        let (h, loc, attr, stamp) = (self.h.clone(), loc.clone(), attr.clone(), ctx.stamp);
        let truncates = attr.size.is_some();
        let work = move || {
            let at = h.resolve(&loc)?;
            let g = h.gfid_of(&at, loc.parent)?;
            let md = io(fs::symlink_metadata(&*at))?;
            if attr.uid.is_some() || attr.gid.is_some() {
                io(std::os::unix::fs::lchown(&*at, attr.uid, attr.gid))?;
            }
            if let Some(m) = attr.mode
                && !md.file_type().is_symlink()
            {
                io(fs::set_permissions(
                    &*at,
                    fs::Permissions::from_mode(m & 0o7777),
                ))?;
            }
            if let Some(s) = attr.size {
                if md.is_dir() {
                    return Err(Errno::EISDIR);
                }
                let f = io(OpenOptions::new().write(true).open(&*at))?;
                io(f.set_len(s))?;
            }
            let resolve = |t: Option<SetTime>| {
                t.map(|t| match t {
                    SetTime::At(t) => t,
                    SetTime::Now => stamp.map(|s| s.time).unwrap_or_else(Timespec::now),
                })
            };
            let (atime, mtime) = (resolve(attr.atime), resolve(attr.mtime));
            if atime.is_some() || mtime.is_some() {
                super::handle::utimens(&at, atime, mtime)?;
                times::set_times(&h, &at, &md, g, atime, mtime, stamp.as_ref())?;
            } else {
                let which = if attr.size.is_some() {
                    flags::CTIME | flags::MTIME
                } else {
                    stamp.map(|s| s.own()).unwrap_or(0)
                };
                times::touch(&h, Place::Path(&at), g, stamp.as_ref(), which)?;
            }
            times::iatt(&at, g)
        };
        // A truncate frees or zeroes blocks: data work, off the runtime.
        if truncates {
            blocking(work).await
        } else {
            metadata(work).await
        }
    }

    pub(super) async fn do_access(&self, loc: &Loc) -> Result<()> {
        // Permission checks happen at the frontends (the kernel for FUSE); the brick only
        // confirms the inode exists.
        let (h, loc) = (self.h.clone(), loc.clone());
        metadata(move || {
            h.resolve(&loc)
                .and_then(|p| io(fs::symlink_metadata(&*p)).map(|_| ()))
        })
        .await
    }

    pub(super) async fn do_open(&self, ctx: &Ctx, loc: &Loc, flags: i32) -> Result<FdRef> {
        let (h, loc2, stamp) = (self.h.clone(), loc.clone(), ctx.stamp);
        let work = move || {
            let at = h.resolve(&loc2)?;
            let md = io(fs::symlink_metadata(&*at))?;
            if md.is_dir() && flags & libc::O_ACCMODE != libc::O_RDONLY {
                return Err(Errno::EISDIR);
            }
            let g = h.gfid_of(&at, loc2.parent)?;
            let f = open_path(&at, flags)?;
            let which = stamp.map(|s| s.own()).unwrap_or(0);
            times::touch(&h, Place::File(&f), g, stamp.as_ref(), which)?;
            Ok((g, f))
        };
        // O_TRUNC frees the file's blocks: data work, off the runtime.
        let (g, file) = if flags & libc::O_TRUNC != 0 {
            blocking(work).await?
        } else {
            metadata(work).await?
        };
        Ok(self.keep_open(g, flags, file))
    }

    /// A new fd of file `g` on `file`, counted open until released.
    pub(super) fn keep_open(&self, g: Gfid, flags: i32, file: File) -> FdRef {
        let fd = Fd::new(g, flags, false);
        fd.ctx_set(
            self.base.id,
            Arc::new(OpenFile {
                file: Arc::new(file),
            }),
        );
        self.h.opened(g);
        fd
    }

    pub(super) async fn do_read(&self, fd: &FdRef, offset: u64, size: u32) -> Result<Bytes> {
        let f = self.open_file(fd)?;
        blocking(move || {
            use std::os::fd::AsRawFd;
            // pread straight into the buffer's spare capacity: zero-filling a 1 MiB buffer
            // first would cost as much as a copy of the data.
            let want = size as usize;
            let mut buf = BytesMut::with_capacity(want);
            while buf.len() < want {
                let spare = buf.spare_capacity_mut();
                let n = unsafe {
                    libc::pread(
                        f.as_raw_fd(),
                        spare.as_mut_ptr().cast(),
                        want - buf.len(),
                        (offset + buf.len() as u64) as libc::off_t,
                    )
                };
                if n == 0 {
                    break;
                }
                if n < 0 {
                    let e = std::io::Error::last_os_error();
                    if e.kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(Errno::from_io(&e));
                }
                // SAFETY: pread initialised the first n bytes of the spare capacity.
                unsafe { buf.set_len(buf.len() + n as usize) };
            }
            Ok(buf.freeze())
        })
        .await
    }

    pub(super) async fn do_write(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        data: Bytes,
    ) -> Result<Iatt> {
        let f = self.open_file(fd)?;
        let (h, g, stamp) = (self.h.clone(), fd.gfid, ctx.stamp);
        blocking(move || {
            io(f.write_all_at(&data, offset))?;
            data_changed(&h, &f, g, stamp.as_ref())
        })
        .await
    }

    pub(super) async fn do_ftruncate(&self, ctx: &Ctx, fd: &FdRef, size: u64) -> Result<Iatt> {
        let f = self.open_file(fd)?;
        let (h, g, stamp) = (self.h.clone(), fd.gfid, ctx.stamp);
        blocking(move || {
            io(f.set_len(size))?;
            data_changed(&h, &f, g, stamp.as_ref())
        })
        .await
    }

    pub(super) async fn do_fsync(&self, fd: &FdRef, datasync: bool) -> Result<()> {
        if fd.is_dir {
            let (h, g) = (self.h.clone(), fd.gfid);
            return blocking(move || io(File::open(&*h.inode(&g)?).and_then(|f| f.sync_all())))
                .await;
        }
        let f = self.open_file(fd)?;
        blocking(move || {
            io(if datasync {
                f.sync_data()
            } else {
                f.sync_all()
            })
        })
        .await
    }

    pub(super) async fn do_fallocate(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        let f = self.open_file(fd)?;
        let (h, g, stamp) = (self.h.clone(), fd.gfid, ctx.stamp);
        blocking(move || {
            use std::os::fd::AsRawFd;
            let r = unsafe { libc::fallocate(f.as_raw_fd(), mode, offset as i64, len as i64) };
            if r < 0 {
                return Err(Errno::from_io(&std::io::Error::last_os_error()));
            }
            data_changed(&h, &f, g, stamp.as_ref()).map(|_| ())
        })
        .await
    }

    pub(super) async fn do_getxattr(&self, loc: &Loc, name: Option<&str>) -> Result<Xattrs> {
        let (h, loc, name) = (self.h.clone(), loc.clone(), name.map(String::from));
        metadata(move || {
            if name.as_deref() == Some(keys::PARENT_GFID) {
                let at = h.resolve(&loc)?;
                let g = h.gfid_of(&at, loc.parent)?;
                let parent = h.parent_gfid(&g)?;
                return Ok(Xattrs::from([(
                    keys::PARENT_GFID.to_string(),
                    Bytes::copy_from_slice(&parent.0),
                )]));
            }
            let p = h.resolve(&loc)?;
            let mut out = Xattrs::new();
            match name {
                Some(n) => {
                    let v = xattr::get(&p, &n)?.ok_or(Errno::ENODATA)?;
                    out.insert(n, Bytes::from(v));
                }
                None => {
                    for n in xattr::list(&p)? {
                        if let Some(v) = xattr::get(&p, &n)? {
                            out.insert(n, Bytes::from(v));
                        }
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    pub(super) async fn do_setxattr(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        xattrs: &Xattrs,
        flags: i32,
    ) -> Result<()> {
        if xattrs.keys().any(|k| is_protected_xattr(k)) {
            return Err(Errno::EPERM);
        }
        let (h, loc, xs, stamp) = (self.h.clone(), loc.clone(), xattrs.clone(), ctx.stamp);
        metadata(move || {
            let p = h.resolve(&loc)?;
            let g = h.gfid_of(&p, loc.parent)?;
            for (k, v) in &xs {
                if k == mdata::KEY {
                    times::merge_in(&h, &p, g, v)?;
                } else {
                    xattr::set(&p, k, v, flags)?;
                }
            }
            changed_meta(&h, &p, g, stamp.as_ref())
        })
        .await
    }

    pub(super) async fn do_removexattr(&self, ctx: &Ctx, loc: &Loc, name: &str) -> Result<()> {
        if is_protected_xattr(name) {
            return Err(Errno::EPERM);
        }
        let (h, loc, name, stamp) = (self.h.clone(), loc.clone(), name.to_string(), ctx.stamp);
        metadata(move || {
            let p = h.resolve(&loc)?;
            xattr::remove(&p, &name)?;
            let g = h.gfid_of(&p, loc.parent)?;
            changed_meta(&h, &p, g, stamp.as_ref())
        })
        .await
    }
}

/// Metadata of `g` changed (an xattr): its change time moves to the stamp.
fn changed_meta(h: &Handles, p: &At, g: Gfid, stamp: Option<&Stamp>) -> Result<()> {
    let which = stamp.map(|s| s.own()).unwrap_or(0);
    times::touch(h, Place::Path(p), g, stamp, which)
}
