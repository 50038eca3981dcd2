//! Fops on names: create, mkdir, mknod, symlink, link, unlink, rmdir, rename, and listings.
//! Each works in its parent directory through that directory's open fd (see `handle`), and
//! moves the parent's times by the stamp it carries.

use super::super::xattr;
use super::common::{Posix, blocking, metadata};
use super::handle::{self, At, DirFd, Handles, Parent, gfid2path_key, hidden_at_root};
use super::inode::{open_path, wanted};
use super::times::{self, Place, io};
use engine::fop::keys;
use engine::mdata::{Stamp, flags};
use engine::*;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirEntryExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

/// A directory's entries in cookie order. The cookie of an entry is a hash of its name, not its
/// position, so a reader resuming after it (another fd, an NFS client's next READDIR) neither
/// skips nor repeats entries when others are created or removed meanwhile, as ext4's hashed
/// telldir cookies behave.
pub(super) struct DirSnapshot {
    entries: Vec<(u64, String, u8, u64)>,
}

/// 1 ..= 2^47-1: never 0 (the start of a directory), and within the 48 bits distribute leaves
/// a brick's cookies.
fn dir_cookie(name: &str) -> u64 {
    (xxhash_rust::xxh64::xxh64(name.as_bytes(), 0) >> 17) | 1
}

fn set_owner(path: &Path, ctx: &Ctx, parent: &Path) -> Result<()> {
    if ctx.uid == 0 && ctx.gid == 0 {
        return Ok(());
    }
    // A set-gid directory hands its group down, as the kernel would for a local file.
    let pmd = io(fs::metadata(parent))?;
    let gid = if pmd.mode() & libc::S_ISGID != 0 {
        pmd.gid()
    } else {
        ctx.gid
    };
    io(std::os::unix::fs::lchown(path, Some(ctx.uid), Some(gid)))
}

fn set_xattrs(path: &Path, xs: &Xattrs) -> Result<()> {
    for (k, v) in xs {
        xattr::set(path, k, v, 0)?;
    }
    Ok(())
}

/// The parent's times after a name in it changed.
fn parent_changed(h: &Handles, p: &Parent, stamp: Option<&Stamp>) -> Result<()> {
    let which = stamp.map(|s| s.parent()).unwrap_or(0);
    times::touch(h, Place::Path(&p.dir_at()), p.gfid, stamp, which)
}

/// `parent_changed`, then the parent's attributes (the fop's `postparent`), with the times
/// it just wrote rather than read back.
fn parent_after(h: &Handles, p: &Parent, stamp: Option<&Stamp>) -> Result<Iatt> {
    let which = stamp.map(|s| s.parent()).unwrap_or(0);
    let dir = p.dir_at();
    match times::touched(h, Place::Path(&dir), p.gfid, stamp, which)? {
        Some(m) => {
            let mut ia = times::iatt_from(&io(fs::symlink_metadata(&*dir))?, p.gfid);
            m.apply(&mut ia);
            Ok(ia)
        }
        None => times::iatt(&dir, p.gfid),
    }
}

/// The times of inode `g` at `path` after a change of its names (link, unlink, rename).
fn inode_changed(h: &Handles, path: &Path, g: Gfid, stamp: Option<&Stamp>) -> Result<()> {
    let which = stamp.map(|s| s.own()).unwrap_or(0);
    times::touch(h, Place::Path(path), g, stamp, which)
}

fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

/// Creates a non-directory inode at its handle path first, with gfid, owner, times and xattrs
/// in place, then links it under its name: the name never appears without its gfid, and
/// link(2) gives O_EXCL semantics.
fn create_inode(
    h: &Handles,
    ctx: &Ctx,
    loc: &Loc,
    entry: &NewEntry,
    make: impl FnOnce(&Path) -> Result<Option<File>>,
) -> Result<(At, Gfid, Option<File>, Iatt)> {
    let p = h.parent(loc)?;
    let g = if entry.gfid.is_null() {
        Gfid::random()
    } else {
        entry.gfid
    };
    let path = p.entry();
    if exists(&path) {
        return Err(Errno::EEXIST);
    }
    let hp = h.ensure_handle_dir(&g)?;
    let g2p = (
        gfid2path_key(&p.gfid, &p.name),
        format!("{}/{}", p.gfid, p.name),
    );
    if exists(&hp) {
        // Distribute makes one linkto per name of a hard-linked file; on a brick that
        // already holds a linkto for the gfid the new name joins it, as GlusterFS's posix
        // does (posix_create_link_if_gfid_exists).
        if entry.xattrs.contains_key(keys::DHT_LINKTO) {
            io(fs::hard_link(&hp, &*path))?;
            let _ = xattr::set(&path, &g2p.0, g2p.1.as_bytes(), 0);
            let parent = parent_after(h, &p, ctx.stamp.as_ref())?;
            return Ok((path, g, None, parent));
        }
        // The gfid names a live inode already (a retried create, or a replica that has it).
        return Err(Errno::EEXIST);
    }
    let file = make(&hp)?;
    let undo = |e: Errno| {
        let _ = fs::remove_file(&hp);
        e
    };
    xattr::set(&hp, keys::GFID, &g.0, libc::XATTR_CREATE).map_err(undo)?;
    set_xattrs(&hp, &entry.xattrs).map_err(undo)?;
    if let Some((k, v)) = times::new_inode(ctx.stamp.as_ref()) {
        xattr::set(&hp, &k, &v, 0).map_err(undo)?;
    }
    xattr::set(&hp, &g2p.0, g2p.1.as_bytes(), 0).map_err(undo)?;
    set_owner(&hp, ctx, &p.dir_at()).map_err(undo)?;
    if let Err(e) = fs::hard_link(&hp, &*path) {
        let _ = fs::remove_file(&hp);
        return Err(Errno::from_io(&e));
    }
    let parent = parent_after(h, &p, ctx.stamp.as_ref())?;
    Ok((path, g, file, parent))
}

/// A DHT linkto file: the pointer distribute leaves at a name's hashed subvolume when the
/// data is on another.
fn is_linkto(path: &Path, md: &fs::Metadata) -> Result<bool> {
    Ok(md.mode() == keys::DHT_LINKFILE_MODE && xattr::get(path, keys::DHT_LINKTO)?.is_some())
}

/// A listing's attributes are filled by up to `FILL_THREADS` threads, each taking at least
/// `FILL_PER_THREAD` entries (fewer are not worth a thread).
const FILL_THREADS: usize = 8;
const FILL_PER_THREAD: usize = 32;

fn snapshot_dir(dir: &DirFd, is_root: bool) -> Result<DirSnapshot> {
    let path = format!("/proc/self/fd/{}/.", dir.as_raw_fd());
    let mut entries = Vec::new();
    for e in io(fs::read_dir(path))? {
        let e = io(e)?;
        let name = e.file_name().to_string_lossy().into_owned();
        if is_root && hidden_at_root(&name) {
            continue;
        }
        let dt = match e.file_type().ok() {
            Some(t) if t.is_dir() => libc::DT_DIR,
            Some(t) if t.is_symlink() => libc::DT_LNK,
            Some(t) if t.is_file() => libc::DT_REG,
            _ => libc::DT_UNKNOWN,
        };
        entries.push((dir_cookie(&name), name, dt, e.ino()));
    }
    // In cookie order, so that a cookie means the same thing to every reader of the
    // directory, including a reopened or anonymous fd.
    entries.sort();
    Ok(DirSnapshot { entries })
}

impl Posix {
    pub(super) async fn do_create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt, PostParent)> {
        let (h, ctx, loc, e) = (self.h.clone(), ctx.clone(), loc.clone(), entry.clone());
        let mode = (e.mode & 0o7777) & !e.umask;
        let (g, file, ia, parent) = metadata(move || {
            let (path, g, file, parent) = create_inode(&h, &ctx, &loc, &e, |hp| {
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(hp);
                let mut f = io(f)?;
                if !e.data.is_empty()
                    && let Err(err) = f.write_all(&e.data)
                {
                    let _ = fs::remove_file(hp);
                    return Err(Errno::from_io(&err));
                }
                Ok(Some(f))
            })?;
            let file = file.expect("create made a file");
            // The kernel's O_APPEND must carry over: reopen through the new fd's flags.
            let file = if flags & libc::O_APPEND != 0 {
                open_path(&path, flags & !libc::O_TRUNC)?
            } else {
                file
            };
            let ia = times::iatt_fd(&file, g)?;
            Ok((g, file, ia, parent))
        })
        .await?;
        Ok((self.keep_open(g, flags, file), ia, Some(parent)))
    }

    pub(super) async fn do_mkdir(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        let (h, ctx, loc, e) = (self.h.clone(), ctx.clone(), loc.clone(), entry.clone());
        metadata(move || {
            let p = h.parent(&loc)?;
            let g = if e.gfid.is_null() {
                Gfid::random()
            } else {
                e.gfid
            };
            let path = p.entry();
            if exists(&path) {
                return Err(Errno::EEXIST);
            }
            // Build the directory aside with its gfid and xattrs, then move it in with
            // RENAME_NOREPLACE: the name is never visible without its gfid and layout.
            let tmpdir = h.root.join(".glusterfs").join("gw-tmp");
            io(fs::create_dir_all(&tmpdir))?;
            let tmp = tmpdir.join(g.to_string());
            let mode = (e.mode & 0o7777) & !e.umask;
            io(fs::create_dir(&tmp))?;
            let undo = |err: Errno| {
                let _ = fs::remove_dir(&tmp);
                err
            };
            io(fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))).map_err(undo)?;
            xattr::set(&tmp, keys::GFID, &g.0, libc::XATTR_CREATE).map_err(undo)?;
            set_xattrs(&tmp, &e.xattrs).map_err(undo)?;
            if let Some((k, v)) = times::new_inode(ctx.stamp.as_ref()) {
                xattr::set(&tmp, &k, &v, 0).map_err(undo)?;
            }
            let dir_at = p.dir_at();
            set_owner(&tmp, &ctx, &dir_at).map_err(undo)?;
            let pmd = io(fs::metadata(&*dir_at)).map_err(undo)?;
            if pmd.mode() & libc::S_ISGID != 0 {
                io(fs::set_permissions(
                    &tmp,
                    fs::Permissions::from_mode(mode | libc::S_ISGID),
                ))
                .map_err(undo)?;
            }
            let (a, b) = (handle::to_cstring(&tmp)?, handle::to_cstring(&path)?);
            let r = unsafe {
                libc::renameat2(
                    libc::AT_FDCWD,
                    a.as_ptr(),
                    libc::AT_FDCWD,
                    b.as_ptr(),
                    libc::RENAME_NOREPLACE,
                )
            };
            if r < 0 {
                return Err(undo(Errno::from_io(&std::io::Error::last_os_error())));
            }
            h.forget_dir(&g);
            h.make_dir_handle(&g, &p.gfid, &p.name)?;
            let parent = parent_after(&h, &p, ctx.stamp.as_ref())?;
            Ok((times::iatt(&path, g)?, Some(parent)))
        })
        .await
    }

    pub(super) async fn do_mknod(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        let (h, ctx, loc, e) = (self.h.clone(), ctx.clone(), loc.clone(), entry.clone());
        metadata(move || {
            let mode = (e.mode & libc::S_IFMT) | ((e.mode & 0o7777) & !e.umask);
            let rdev = e.rdev;
            let (path, g, _, parent) = create_inode(&h, &ctx, &loc, &e, |hp| {
                let ch = handle::to_cstring(hp)?;
                let r = unsafe { libc::mknod(ch.as_ptr(), mode, rdev as libc::dev_t) };
                if r < 0 {
                    return Err(Errno::from_io(&std::io::Error::last_os_error()));
                }
                Ok(None)
            })?;
            Ok((times::iatt(&path, g)?, Some(parent)))
        })
        .await
    }

    pub(super) async fn do_symlink(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        target: &str,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        let (h, ctx, loc, e, target) = (
            self.h.clone(),
            ctx.clone(),
            loc.clone(),
            entry.clone(),
            target.to_string(),
        );
        metadata(move || {
            let (path, g, _, parent) = create_inode(&h, &ctx, &loc, &e, |hp| {
                io(std::os::unix::fs::symlink(&target, hp))?;
                Ok(None)
            })?;
            Ok((times::iatt(&path, g)?, Some(parent)))
        })
        .await
    }

    pub(super) async fn do_readlink(&self, loc: &Loc) -> Result<String> {
        let (h, loc) = (self.h.clone(), loc.clone());
        metadata(move || {
            let p = h.resolve(&loc)?;
            let t = io(fs::read_link(&*p))?;
            Ok(t.to_string_lossy().into_owned())
        })
        .await
    }

    pub(super) async fn do_link(&self, ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        let (h, old, new, stamp) = (self.h.clone(), oldloc.clone(), newloc.clone(), ctx.stamp);
        metadata(move || {
            let src = h.resolve(&old)?;
            let g = h.gfid_of(&src, old.parent)?;
            let p = h.parent(&new)?;
            let dst = p.entry();
            io(fs::hard_link(&*src, &*dst))?;
            xattr::set(
                &dst,
                &gfid2path_key(&p.gfid, &p.name),
                format!("{}/{}", p.gfid, p.name).as_bytes(),
                0,
            )?;
            inode_changed(&h, &dst, g, stamp.as_ref())?;
            parent_changed(&h, &p, stamp.as_ref())?;
            times::iatt(&dst, g)
        })
        .await
    }

    pub(super) async fn do_unlink(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        let (h, loc, stamp) = (self.h.clone(), loc.clone(), ctx.stamp);
        let refuse_linkto = ctx.refuse_linkto;
        let (g, parent) = metadata(move || {
            let p = h.parent(&loc)?;
            let path = p.entry();
            let md = io(fs::symlink_metadata(&*path))?;
            if md.is_dir() {
                return Err(Errno::EISDIR);
            }
            if refuse_linkto && is_linkto(&path, &md)? {
                return Err(Errno::ESTALE);
            }
            let g = h.read_gfid(&path)?;
            if let Some(expect) = loc.gfid
                && g != Some(expect)
            {
                // The caller means another inode than the one this name holds now.
                return Err(Errno::ESTALE);
            }
            let _ = xattr::remove(&path, &gfid2path_key(&p.gfid, &p.name));
            io(fs::remove_file(&*path))?;
            if let Some(g) = g {
                // Other names keep the inode: its change time moves. With only the handle
                // left, the inode has no name any more.
                if md.nlink() > 2 {
                    let _ = inode_changed(&h, &h.handle_path(&g), g, stamp.as_ref());
                } else {
                    h.drop_file_handle(&g, md.ino());
                }
            }
            let parent = parent_after(&h, &p, stamp.as_ref())?;
            Ok((g, parent))
        })
        .await?;
        if let Some(g) = g {
            self.forget_anon(&g);
        }
        Ok(Some(parent))
    }

    pub(super) async fn do_rmdir(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        let (h, loc, stamp) = (self.h.clone(), loc.clone(), ctx.stamp);
        metadata(move || {
            let p = h.parent(&loc)?;
            let path = p.entry();
            let md = io(fs::symlink_metadata(&*path))?;
            if !md.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            let g = h.read_gfid(&path)?;
            io(fs::remove_dir(&*path))?;
            if let Some(g) = g {
                let _ = fs::remove_file(h.handle_path(&g));
                h.forget_dir(&g);
            }
            parent_after(&h, &p, stamp.as_ref()).map(Some)
        })
        .await
    }

    pub(super) async fn do_rename(
        &self,
        ctx: &Ctx,
        oldloc: &Loc,
        newloc: &Loc,
    ) -> Result<(Iatt, PostParent, PostParent)> {
        let (h, old, new, stamp) = (self.h.clone(), oldloc.clone(), newloc.clone(), ctx.stamp);
        let refuse_linkto = ctx.refuse_linkto;
        metadata(move || {
            let op = h.parent(&old)?;
            let np = h.parent(&new)?;
            let (src, dst) = (op.entry(), np.entry());
            let smd = io(fs::symlink_metadata(&*src))?;
            let g = h.gfid_of(&src, Some(op.gfid))?;
            // Distribute renamed by names it remembered, without looking them up: the source
            // must still be that inode's data and the target no pointer to data elsewhere.
            let dmd = fs::symlink_metadata(&*dst).ok();
            if refuse_linkto
                && (old.gfid.is_some_and(|want| want != g)
                    || is_linkto(&src, &smd)?
                    || dmd
                        .as_ref()
                        .is_some_and(|d| !d.is_dir() && is_linkto(&dst, d).unwrap_or(true)))
            {
                return Err(Errno::ESTALE);
            }
            let replaced = match dmd {
                Some(dmd) if dmd.ino() == smd.ino() => {
                    // Two names of one inode: POSIX says do nothing.
                    return Ok((times::iatt(&src, g)?, None, None));
                }
                Some(dmd) => Some((dmd, h.read_gfid(&dst)?)),
                None => None,
            };
            io(fs::rename(&*src, &*dst))?;
            if let Some((dmd, Some(dg))) = replaced {
                if dmd.is_dir() {
                    let _ = fs::remove_file(h.handle_path(&dg));
                    h.forget_dir(&dg);
                } else if dmd.nlink() <= 2 {
                    h.drop_file_handle(&dg, dmd.ino());
                } else {
                    // The replaced file lives on under its other names: it lost one.
                    inode_changed(&h, &h.handle_path(&dg), dg, stamp.as_ref())?;
                }
            }
            if smd.is_dir() {
                h.make_dir_handle(&g, &np.gfid, &np.name)?;
            } else {
                let _ = xattr::remove(&dst, &gfid2path_key(&op.gfid, &op.name));
                xattr::set(
                    &dst,
                    &gfid2path_key(&np.gfid, &np.name),
                    format!("{}/{}", np.gfid, np.name).as_bytes(),
                    0,
                )?;
            }
            inode_changed(&h, &dst, g, stamp.as_ref())?;
            let old_parent = parent_after(&h, &op, stamp.as_ref())?;
            let new_parent = if np.gfid != op.gfid {
                parent_after(&h, &np, stamp.as_ref())?
            } else {
                old_parent.clone()
            };
            Ok((times::iatt(&dst, g)?, Some(old_parent), Some(new_parent)))
        })
        .await
    }

    pub(super) async fn do_opendir(&self, ctx: &Ctx, loc: &Loc) -> Result<FdRef> {
        let (h, loc, stamp) = (self.h.clone(), loc.clone(), ctx.stamp);
        let g = metadata(move || {
            let p = h.resolve(&loc)?;
            let md = io(fs::metadata(&*p))?;
            if !md.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            let g = h.gfid_of(&p, loc.parent)?;
            let which = stamp.map(|s| s.own() & flags::ATIME).unwrap_or(0);
            times::touch(&h, Place::Path(&p), g, stamp.as_ref(), which)?;
            Ok(g)
        })
        .await?;
        Ok(Fd::new(g, libc::O_RDONLY, true))
    }

    pub(super) async fn readdirp_inner(
        &self,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: Option<Xattrs>,
    ) -> Result<Vec<Dirent>> {
        let h = self.h.clone();
        let g = fd.gfid;
        let dir = match metadata(move || h.dir(&g)).await {
            Ok(d) => d,
            // Removed (by another client) since this fd opened it: like a local directory
            // read after its rmdir, it holds nothing. An anonymous fd (NFS's handle) has
            // nothing opened, and its directory being gone is a stale handle.
            Err(Errno::ESTALE) if !fd.anonymous => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let snap = match fd.ctx_get::<DirSnapshot>(self.base.id) {
            Some(s) if offset != 0 => s,
            _ => {
                let d = dir.clone();
                let s = Arc::new(blocking(move || snapshot_dir(&d, g.is_root())).await?);
                if !fd.anonymous {
                    fd.ctx_set(self.base.id, s.clone());
                }
                s
            }
        };
        let h = self.h.clone();
        blocking(move || {
            let mut budget = size.max(512) as usize;
            // Resume after the entry whose cookie was handed out (two names sharing a 47-bit
            // hash at a page boundary is the one case this can skip).
            let start = snap.entries.partition_point(|e| e.0 <= offset);
            let mut page = Vec::new();
            for e in &snap.entries[start..] {
                let cost = Dirent::listing_cost(&e.1, want.is_some());
                if cost > budget && !page.is_empty() {
                    break;
                }
                budget = budget.saturating_sub(cost);
                page.push(e);
            }
            let base = format!("/proc/self/fd/{}", dir.as_raw_fd());
            let fill = |(cookie, name, dt, ino): &(u64, String, u8, u64)| -> Option<Dirent> {
                let mut d = Dirent {
                    name: name.clone(),
                    d_off: *cookie,
                    d_type: *dt,
                    ino: *ino,
                    ..Default::default()
                };
                let p = Path::new(&base).join(name);
                if let Some(w) = &want {
                    if name == "." || name == ".." {
                        return None;
                    }
                    let md = fs::symlink_metadata(&p).ok()?;
                    let eg = h.gfid_of(&p, Some(g)).ok()?;
                    let ia = times::iatt_md(&p, &md, eg).ok()?;
                    d.ino = eg.ino();
                    d.d_type = mode_to_dtype(md.mode());
                    d.iatt = Some(ia);
                    d.xattrs = wanted(&p, w).unwrap_or_default();
                } else if let Ok(Some(eg)) = h.read_gfid(&p) {
                    d.ino = eg.ino();
                }
                Some(d)
            };
            // Each entry's inode and xattr block are a read of their own from a cold disk,
            // one after another on one thread: a long listing is filled by a few threads at
            // once so those reads overlap (1,500 entries after a cache drop: 240 ms alone).
            let threads = (page.len() / FILL_PER_THREAD).clamp(1, FILL_THREADS);
            if want.is_none() || threads == 1 {
                return Ok(page.into_iter().filter_map(fill).collect());
            }
            let chunk = page.len().div_ceil(threads);
            let filled: Vec<Vec<Dirent>> = std::thread::scope(|sc| {
                let parts: Vec<_> = page
                    .chunks(chunk)
                    .map(|part| sc.spawn(|| part.iter().copied().filter_map(fill).collect()))
                    .collect();
                parts
                    .into_iter()
                    .map(|t| t.join().unwrap_or_default())
                    .collect()
            });
            Ok(filled.into_iter().flatten().collect())
        })
        .await
    }
}
