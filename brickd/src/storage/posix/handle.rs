//! From gfids and names to places on the brick, without full paths.
//!
//! A file's gfid names a hard link `.glusterfs/ab/cd/<gfid>`: a short path. A directory's
//! handle is a symlink `../../xy/zw/<parent-gfid>/<name>`, so the real place of a directory is
//! a chain of such links up to the root, and its full path can be longer than PATH_MAX on a
//! deep tree (the brick's own prefix counts too). So directories are opened one level at a
//! time with `openat` from the nearest open ancestor and kept open here, and everything below
//! a directory is reached through `/proc/self/fd/<dirfd>/<name>`: the kernel resolves the
//! directory from the fd, so the path is short whatever the depth. The xattr syscalls have no
//! `*at` form, which is why a path through the fd is used rather than `openat` alone.
//! An open directory also follows its inode across renames by other clients.

use super::super::xattr;
use engine::fop::keys;
use engine::*;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// An open directory of the brick (`O_RDONLY|O_DIRECTORY`): the anchor of every name in it.
pub(super) type DirFd = Arc<OwnedFd>;

/// Directories kept open at once. Each is one fd; brickd raises its fd limit at start.
const DIR_CACHE: usize = 4096;

/// Deepest directory chain followed before giving up with ELOOP (a handle cycle).
const MAX_DEPTH: usize = 4096;

/// Stripes of the per-inode locks that serialise read-modify-write of an inode's xattrs
/// (changelogs, times): enough that unrelated inodes rarely share one.
const STRIPES: usize = 256;

/// Names GlusterFS keeps at the brick root that are not part of the namespace.
pub(super) fn hidden_at_root(name: &str) -> bool {
    name == ".glusterfs" || name.starts_with(".glusterfs-anonymous-inode-") || name == ".trashcan"
}

pub(super) fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Errno::EINVAL);
    }
    if name.len() > 255 {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// A place on the brick as a short path, holding open the directory the path goes through
/// for as long as the path is used.
pub(super) struct At {
    path: PathBuf,
    _dir: Option<DirFd>,
}

impl At {
    fn plain(path: PathBuf) -> At {
        At { path, _dir: None }
    }
}

impl std::ops::Deref for At {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for At {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

/// A directory and a name in it: where entry fops work.
pub(super) struct Parent {
    pub gfid: Gfid,
    pub name: String,
    pub dir: DirFd,
}

impl Parent {
    /// The directory itself, as a path (for its own stat, xattrs and times).
    pub fn dir_at(&self) -> At {
        fd_at(&self.dir, None)
    }

    /// The named entry in it.
    pub fn entry(&self) -> At {
        fd_at(&self.dir, Some(&self.name))
    }
}

fn fd_at(dir: &DirFd, name: Option<&str>) -> At {
    // "/." rather than the bare magic link: the l* syscalls must act on the directory,
    // not on the /proc link that names it.
    let path = match name {
        Some(n) => format!("/proc/self/fd/{}/{n}", dir.as_raw_fd()),
        None => format!("/proc/self/fd/{}/.", dir.as_raw_fd()),
    };
    At {
        path: PathBuf::from(path),
        _dir: Some(dir.clone()),
    }
}

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

fn last_errno() -> Errno {
    Errno::from_io(&std::io::Error::last_os_error())
}

fn open_dir_at(parent: &DirFd, name: &str) -> Result<OwnedFd> {
    let n = CString::new(name).map_err(|_| Errno::EINVAL)?;
    let fd = unsafe {
        libc::openat(
            parent.as_raw_fd(),
            n.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: openat returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `../../xy/zw/<pgfid>/<name>` → (pgfid, name), or None if the symlink is not a dir handle.
pub(super) fn dir_handle_target(h: &Path) -> Option<(Gfid, String)> {
    let t = fs::read_link(h).ok()?;
    let s = t.to_str()?;
    let rest = s.strip_prefix("../../")?;
    let mut parts = rest.splitn(4, '/');
    let (a, b, pg, name) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if a.len() != 2 || b.len() != 2 || name.is_empty() || name.contains('/') {
        return None;
    }
    let pg = Gfid::parse(pg)?;
    Some((pg, name.to_string()))
}

pub fn gfid2path_key(pgfid: &Gfid, name: &str) -> String {
    // GlusterFS: xxh64 (seed 0) of "<pgfid>/<name>", printed as the canonical big-endian hex.
    let v = format!("{pgfid}/{name}");
    format!(
        "{}{:016x}",
        keys::GFID2PATH_PREFIX,
        xxhash_rust::xxh64::xxh64(v.as_bytes(), 0)
    )
}

/// The brick's handle space: shared by every fop of one posix translator.
pub(super) struct Handles {
    pub root: PathBuf,
    root_fd: OnceLock<DirFd>,
    dirs: Mutex<HashMap<Gfid, DirFd>>,
    /// Open fds per file gfid, so an unlink of the last name keeps the inode reachable by its
    /// gfid (in `.glusterfs/unlink/`) until the last close, as GlusterFS's posix does.
    open: Mutex<HashMap<Gfid, usize>>,
    stripes: Vec<Mutex<()>>,
}

impl Handles {
    pub fn new(root: PathBuf) -> Handles {
        Handles {
            root,
            root_fd: OnceLock::new(),
            dirs: Mutex::new(HashMap::new()),
            open: Mutex::new(HashMap::new()),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// The lock serialising read-modify-write of `g`'s xattrs.
    pub fn stripe(&self, g: &Gfid) -> &Mutex<()> {
        let h = u64::from_le_bytes(g.0[8..16].try_into().expect("8 bytes"));
        &self.stripes[(h as usize) % STRIPES]
    }

    fn root_fd(&self) -> Result<DirFd> {
        if let Some(fd) = self.root_fd.get() {
            return Ok(fd.clone());
        }
        let f = fs::File::open(&self.root).map_err(|e| Errno::from_io(&e))?;
        let fd: DirFd = Arc::new(OwnedFd::from(f));
        Ok(self.root_fd.get_or_init(|| fd).clone())
    }

    pub fn handle_path(&self, g: &Gfid) -> PathBuf {
        let h = hex::encode(g.0);
        self.root
            .join(".glusterfs")
            .join(&h[0..2])
            .join(&h[2..4])
            .join(g.to_string())
    }

    /// Where a file whose last name went while it was open keeps its data until the close.
    pub fn unlinked_path(&self, g: &Gfid) -> PathBuf {
        self.root
            .join(".glusterfs")
            .join("unlink")
            .join(g.to_string())
    }

    /// An open fd of directory `g`, opened level by level from the nearest open ancestor.
    pub fn dir(&self, g: &Gfid) -> Result<DirFd> {
        if g.is_root() {
            return self.root_fd();
        }
        if let Some(d) = self.dirs.lock().get(g) {
            return Ok(d.clone());
        }
        let mut chain: Vec<(Gfid, String)> = Vec::new();
        let mut cur = *g;
        let mut fd = loop {
            if cur.is_root() {
                break self.root_fd()?;
            }
            if let Some(d) = self.dirs.lock().get(&cur) {
                break d.clone();
            }
            let h = self.handle_path(&cur);
            let (pg, name) = match dir_handle_target(&h) {
                Some(t) => t,
                None => {
                    return Err(match fs::symlink_metadata(&h) {
                        Err(_) => Errno::ESTALE,
                        Ok(_) => Errno::ENOTDIR,
                    });
                }
            };
            chain.push((cur, name));
            if chain.len() > MAX_DEPTH {
                return Err(Errno(libc::ELOOP));
            }
            cur = pg;
        };
        for (dg, name) in chain.into_iter().rev() {
            let d = open_dir_at(&fd, &name).map_err(|e| match e {
                Errno::ENOENT | Errno::ENOTDIR => Errno::ESTALE,
                e => e,
            })?;
            // The name may hold another directory now (a stale handle): refuse it.
            let have = xattr::fget(d.as_raw_fd(), keys::GFID)?.and_then(|v| Gfid::from_slice(&v));
            if have != Some(dg) {
                return Err(Errno::ESTALE);
            }
            fd = Arc::new(d);
            let mut dirs = self.dirs.lock();
            if dirs.len() >= DIR_CACHE
                && let Some(k) = dirs.keys().next().copied()
            {
                dirs.remove(&k);
            }
            dirs.insert(dg, fd.clone());
        }
        Ok(fd)
    }

    /// Forgets an open directory (it was removed, or its gfid now names another one).
    pub fn forget_dir(&self, g: &Gfid) {
        self.dirs.lock().remove(g);
    }

    /// The directory and name of an entry fop.
    pub fn parent(&self, loc: &Loc) -> Result<Parent> {
        let p = loc.parent()?;
        let n = loc.name()?.to_string();
        check_name(&n)?;
        if p.is_root() && hidden_at_root(&n) {
            return Err(Errno::EPERM);
        }
        Ok(Parent {
            gfid: p,
            name: n,
            dir: self.dir(&p)?,
        })
    }

    /// Where inode `g` is: its handle for a file, its open fd for a directory, and for a
    /// file unlinked while open, its place in `.glusterfs/unlink/`.
    pub fn inode(&self, g: &Gfid) -> Result<At> {
        if g.is_root() {
            return Ok(fd_at(&self.root_fd()?, None));
        }
        if let Some(d) = self.dirs.lock().get(g) {
            return Ok(fd_at(d, None));
        }
        let h = self.handle_path(g);
        match fs::symlink_metadata(&h) {
            Ok(md) if md.file_type().is_symlink() && dir_handle_target(&h).is_some() => {
                Ok(fd_at(&self.dir(g)?, None))
            }
            Ok(_) => Ok(At::plain(h)),
            Err(_) => {
                let u = self.unlinked_path(g);
                if fs::symlink_metadata(&u).is_ok() {
                    Ok(At::plain(u))
                } else {
                    Err(Errno::ESTALE)
                }
            }
        }
    }

    /// Where `loc` is: by parent and name when it has them, else by gfid.
    pub fn resolve(&self, loc: &Loc) -> Result<At> {
        if let (Some(p), Some(n)) = (loc.parent, loc.name.as_deref()) {
            check_name(n)?;
            if p.is_root() && hidden_at_root(n) {
                return Err(Errno::ENOENT);
            }
            return Ok(fd_at(&self.dir(&p)?, Some(n)));
        }
        match loc.gfid {
            Some(g) => self.inode(&g),
            None => Err(Errno::EINVAL),
        }
    }

    pub fn read_gfid(&self, path: &Path) -> Result<Option<Gfid>> {
        Ok(xattr::get(path, keys::GFID)?.and_then(|v| Gfid::from_slice(&v)))
    }

    /// gfid of an existing entry; one that lacks it (data put on the brick by hand) gets one,
    /// as GlusterFS's posix heals it on lookup. `parent` is the directory it is in, for the
    /// handle of a directory.
    pub fn gfid_of(&self, path: &Path, parent: Option<Gfid>) -> Result<Gfid> {
        if let Some(g) = self.read_gfid(path)? {
            return Ok(g);
        }
        let g = Gfid::random();
        match xattr::set(path, keys::GFID, &g.0, libc::XATTR_CREATE) {
            Ok(()) => {}
            Err(Errno::EEXIST) => return self.read_gfid(path)?.ok_or(Errno::EIO),
            Err(e) => return Err(e),
        }
        let md = fs::symlink_metadata(path).map_err(|e| Errno::from_io(&e))?;
        if md.is_dir() {
            if let (Some(pg), Some(name)) = (parent, path.file_name()) {
                self.make_dir_handle(&g, &pg, &name.to_string_lossy())?;
            }
        } else {
            self.make_file_handle(path, &g)?;
        }
        Ok(g)
    }

    pub fn ensure_handle_dir(&self, g: &Gfid) -> Result<PathBuf> {
        let h = self.handle_path(g);
        fs::create_dir_all(h.parent().expect("handle has a parent"))
            .map_err(|e| Errno::from_io(&e))?;
        Ok(h)
    }

    pub fn make_file_handle(&self, path: &Path, g: &Gfid) -> Result<()> {
        let h = self.ensure_handle_dir(g)?;
        match fs::hard_link(path, &h) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(Errno::from_io(&e)),
        }
    }

    pub fn make_dir_handle(&self, g: &Gfid, pg: &Gfid, name: &str) -> Result<()> {
        let h = self.ensure_handle_dir(g)?;
        let ph = hex::encode(pg.0);
        let target = format!("../../{}/{}/{}/{}", &ph[0..2], &ph[2..4], pg, name);
        let _ = fs::remove_file(&h);
        std::os::unix::fs::symlink(target, &h).map_err(|e| Errno::from_io(&e))
    }

    /// A directory's parent, from its handle symlink (the root is its own parent). Files have
    /// no single parent: ENODATA.
    pub fn parent_gfid(&self, g: &Gfid) -> Result<Gfid> {
        if g.is_root() {
            return Ok(Gfid::ROOT);
        }
        dir_handle_target(&self.handle_path(g))
            .map(|(p, _)| p)
            .ok_or(Errno::ENODATA)
    }

    pub fn opened(&self, g: Gfid) {
        *self.open.lock().entry(g).or_default() += 1;
    }

    /// One open fd of `g` closed; the last close of a file whose names are all gone frees it.
    pub fn closed(&self, g: Gfid) {
        let last = {
            let mut open = self.open.lock();
            match open.get_mut(&g) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    open.remove(&g);
                    true
                }
                None => false,
            }
        };
        if last {
            let _ = fs::remove_file(self.unlinked_path(&g));
        }
    }

    fn is_open(&self, g: &Gfid) -> bool {
        self.open.lock().contains_key(g)
    }

    /// The last name of file `g` (inode `ino`) is gone: drop its handle, or keep it in
    /// `.glusterfs/unlink/` while the file is open so fstat, reads and writes go on.
    pub fn drop_file_handle(&self, g: &Gfid, ino: u64) {
        let h = self.handle_path(g);
        let Ok(hmd) = fs::symlink_metadata(&h) else {
            return;
        };
        if hmd.nlink() > 1 || hmd.ino() != ino {
            return;
        }
        if self.is_open(g) && fs::rename(&h, self.unlinked_path(g)).is_ok() {
            return;
        }
        let _ = fs::remove_file(&h);
    }
}

/// `utimensat` without following a final symlink.
pub(super) fn utimens(path: &Path, atime: Option<Timespec>, mtime: Option<Timespec>) -> Result<()> {
    let ts = |t: Option<Timespec>| match t {
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        Some(t) => libc::timespec {
            tv_sec: t.sec,
            tv_nsec: t.nsec as i64,
        },
    };
    let times = [ts(atime), ts(mtime)];
    let c = cstr(path)?;
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r < 0 { Err(last_errno()) } else { Ok(()) }
}

pub(super) fn to_cstring(p: &Path) -> Result<CString> {
    cstr(p)
}
