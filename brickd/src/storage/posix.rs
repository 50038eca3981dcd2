//! `storage/posix`: files as real files on a brick directory, in GlusterFS 10's on-disk format
//! (DESIGN §5), so a brick written here is served by GlusterFS and the reverse.
//!
//! Every inode carries `trusted.gfid` and has a handle under `.glusterfs/ab/cd/<gfid>`: a hard
//! link for files, symlinks and special files, a symlink `../../xy/zw/<pgfid>/<name>` for
//! directories. Fops address inodes by gfid through these handles, so no request needs a path.

use super::xattr;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use engine::fop::keys;
use engine::options::{OptKind, OptionSpec, Options};
use engine::registry::XlatorType;
use engine::*;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("directory", OptKind::Str, None, "the brick directory"),
    OptionSpec::new(
        "volume-id",
        OptKind::Str,
        None,
        "the volume's id; a brick holding another id is refused",
    ),
];

pub fn xlator_type() -> XlatorType {
    XlatorType {
        type_name: "storage/posix",
        options: OPTIONS,
        min_children: 0,
        max_children: 0,
        build: Arc::new(|base, o: &Options| {
            let dir = o.get("directory").ok_or("option directory is required")?;
            let vid = o.get("volume-id").ok_or("option volume-id is required")?;
            let vid = Gfid::parse(vid).ok_or_else(|| format!("volume-id {vid:?} is not a uuid"))?;
            Ok(Arc::new(Posix::new(base, PathBuf::from(dir), vid)))
        }),
    }
}

/// Names GlusterFS keeps at the brick root that are not part of the namespace.
fn hidden_at_root(name: &str) -> bool {
    name == ".glusterfs" || name.starts_with(".glusterfs-anonymous-inode-") || name == ".trashcan"
}

/// A directory's entries in cookie order. The cookie of an entry is a hash of its name, not its
/// position, so a reader resuming after it (another fd, an NFS client's next READDIR) neither
/// skips nor repeats entries when others are created or removed meanwhile, as ext4's hashed
/// telldir cookies behave.
struct DirSnapshot {
    entries: Vec<(u64, String, u8, u64)>,
}

/// 1 ..= 2^47-1: never 0 (the start of a directory), and within the 48 bits distribute leaves
/// a brick's cookies.
fn dir_cookie(name: &str) -> u64 {
    (xxhash_rust::xxh64::xxh64(name.as_bytes(), 0) >> 17) | 1
}

struct OpenFile {
    file: Arc<File>,
}

pub struct Posix {
    base: XlatorBase,
    root: PathBuf,
    volume_id: Gfid,
    /// Serialises xattrop on one inode, so concurrent changelog updates add up.
    xattrop_locks: Mutex<HashMap<Gfid, Arc<Mutex<()>>>>,
    /// Files opened for anonymous fds (NFS, reopened handles), by gfid.
    anon: Mutex<HashMap<Gfid, Arc<File>>>,
}

const ANON_CACHE: usize = 512;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Errno::EIO)?
}

fn io<T>(r: std::io::Result<T>) -> Result<T> {
    r.map_err(|e| Errno::from_io(&e))
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Errno::EINVAL);
    }
    if name.len() > 255 {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
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

#[derive(Clone)]
struct Ctl {
    root: PathBuf,
}

impl Ctl {
    fn handle_path(&self, g: &Gfid) -> PathBuf {
        let h = hex::encode(g.0);
        self.root
            .join(".glusterfs")
            .join(&h[0..2])
            .join(&h[2..4])
            .join(g.to_string())
    }

    /// A directory's parent, from its handle symlink `../../xy/zw/<pgfid>/<name>` (the root is
    /// its own parent). Files have no single parent: ENODATA.
    fn parent_gfid(&self, loc: &Loc) -> Result<Xattrs> {
        let p = self.resolve(loc)?;
        let g = self.gfid_of(&p)?;
        let parent = if g.is_root() {
            Gfid::ROOT
        } else {
            dir_handle_target(&self.handle_path(&g))
                .ok_or(Errno::ENODATA)?
                .0
        };
        let mut out = Xattrs::new();
        out.insert(
            keys::PARENT_GFID.to_string(),
            Bytes::copy_from_slice(&parent.0),
        );
        Ok(out)
    }

    /// Real path of a gfid. Directory handles are followed one level at a time so the path
    /// is a plain one below the brick root (no symlink loops, no ELOOP on deep trees).
    fn resolve_gfid(&self, g: &Gfid) -> Result<PathBuf> {
        if g.is_root() {
            return Ok(self.root.clone());
        }
        let h = self.handle_path(g);
        let md = fs::symlink_metadata(&h).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => Errno::ESTALE,
            _ => Errno::from_io(&e),
        })?;
        if md.file_type().is_symlink()
            && let Some((pg, name)) = dir_handle_target(&h)
        {
            return Ok(self.resolve_gfid(&pg)?.join(name));
        }
        Ok(h)
    }

    fn resolve(&self, loc: &Loc) -> Result<PathBuf> {
        if let (Some(p), Some(n)) = (loc.parent, loc.name.as_deref()) {
            check_name(n)?;
            if p.is_root() && hidden_at_root(n) {
                return Err(Errno::ENOENT);
            }
            return Ok(self.resolve_gfid(&p)?.join(n));
        }
        match loc.gfid {
            Some(g) => self.resolve_gfid(&g),
            None => Err(Errno::EINVAL),
        }
    }

    fn parent_dir(&self, loc: &Loc) -> Result<(Gfid, String, PathBuf)> {
        let p = loc.parent()?;
        let n = loc.name()?.to_string();
        check_name(&n)?;
        if p.is_root() && hidden_at_root(&n) {
            return Err(Errno::EPERM);
        }
        let dir = self.resolve_gfid(&p)?;
        Ok((p, n, dir))
    }

    fn read_gfid(&self, path: &Path) -> Result<Option<Gfid>> {
        Ok(xattr::get(path, keys::GFID)?.and_then(|v| Gfid::from_slice(&v)))
    }

    fn iatt(&self, path: &Path, gfid: Gfid) -> Result<Iatt> {
        let md = io(fs::symlink_metadata(path))?;
        Ok(iatt_from(&md, gfid))
    }

    /// gfid of an existing entry; one that lacks it (data put on the brick by hand) gets one,
    /// as GlusterFS's posix heals it on lookup.
    fn gfid_of(&self, path: &Path) -> Result<Gfid> {
        if let Some(g) = self.read_gfid(path)? {
            return Ok(g);
        }
        let g = Gfid::random();
        match xattr::set(path, keys::GFID, &g.0, libc::XATTR_CREATE) {
            Ok(()) => {}
            Err(Errno::EEXIST) => return self.read_gfid(path)?.ok_or(Errno::EIO),
            Err(e) => return Err(e),
        }
        let md = io(fs::symlink_metadata(path))?;
        if md.is_dir() {
            if let (Some(parent), Some(name)) = (path.parent(), path.file_name()) {
                let pg = self.read_gfid(parent)?.unwrap_or(Gfid::ROOT);
                self.make_dir_handle(&g, &pg, &name.to_string_lossy())?;
            }
        } else {
            self.make_file_handle(path, &g)?;
        }
        Ok(g)
    }

    fn ensure_handle_dir(&self, g: &Gfid) -> Result<PathBuf> {
        let h = self.handle_path(g);
        io(fs::create_dir_all(h.parent().expect("handle has a parent")))?;
        Ok(h)
    }

    fn make_file_handle(&self, path: &Path, g: &Gfid) -> Result<()> {
        let h = self.ensure_handle_dir(g)?;
        match fs::hard_link(path, &h) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(Errno::from_io(&e)),
        }
    }

    fn make_dir_handle(&self, g: &Gfid, pg: &Gfid, name: &str) -> Result<()> {
        let h = self.ensure_handle_dir(g)?;
        let ph = hex::encode(pg.0);
        let target = format!("../../{}/{}/{}/{}", &ph[0..2], &ph[2..4], pg, name);
        let _ = fs::remove_file(&h);
        io(std::os::unix::fs::symlink(target, &h))
    }

    fn set_owner(&self, path: &Path, ctx: &Ctx, parent: &Path) -> Result<()> {
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

    fn set_xattrs(&self, path: &Path, xs: &Xattrs) -> Result<()> {
        for (k, v) in xs {
            xattr::set(path, k, v, 0)?;
        }
        Ok(())
    }

    /// Creates a non-directory inode at its handle path first, with gfid, owner and xattrs in
    /// place, then links it under its name: the name never appears without its gfid, and
    /// link(2) gives O_EXCL semantics.
    fn create_inode(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        entry: &NewEntry,
        make: impl FnOnce(&Path) -> Result<Option<File>>,
    ) -> Result<(PathBuf, Gfid, Option<File>)> {
        let (pg, name, dir) = self.parent_dir(loc)?;
        let g = if entry.gfid.is_null() {
            Gfid::random()
        } else {
            entry.gfid
        };
        let path = dir.join(&name);
        if fs::symlink_metadata(&path).is_ok() {
            return Err(Errno::EEXIST);
        }
        let h = self.ensure_handle_dir(&g)?;
        if fs::symlink_metadata(&h).is_ok() {
            // Distribute makes one linkto per name of a hard-linked file; on a brick that
            // already holds a linkto for the gfid the new name joins it, as GlusterFS's posix
            // does (posix_create_link_if_gfid_exists).
            if entry.xattrs.contains_key(keys::DHT_LINKTO) {
                io(fs::hard_link(&h, &path))?;
                let _ = xattr::set(
                    &path,
                    &gfid2path_key(&pg, &name),
                    format!("{pg}/{name}").as_bytes(),
                    0,
                );
                return Ok((path, g, None));
            }
            // The gfid names a live inode already (a retried create, or a replica that has it).
            return Err(Errno::EEXIST);
        }
        let file = make(&h)?;
        let undo = |e: Errno| {
            let _ = fs::remove_file(&h);
            e
        };
        xattr::set(&h, keys::GFID, &g.0, libc::XATTR_CREATE).map_err(undo)?;
        self.set_xattrs(&h, &entry.xattrs).map_err(undo)?;
        xattr::set(
            &h,
            &gfid2path_key(&pg, &name),
            format!("{pg}/{name}").as_bytes(),
            0,
        )
        .map_err(undo)?;
        self.set_owner(&h, ctx, &dir).map_err(undo)?;
        if let Err(e) = fs::hard_link(&h, &path) {
            let _ = fs::remove_file(&h);
            return Err(Errno::from_io(&e));
        }
        Ok((path, g, file))
    }

    fn snapshot_dir(&self, path: &Path, is_root: bool) -> Result<DirSnapshot> {
        let mut entries = Vec::new();
        for e in io(fs::read_dir(path))? {
            let e = io(e)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if is_root && hidden_at_root(&name) {
                continue;
            }
            let ft = e.file_type().ok();
            let dt = match ft {
                Some(t) if t.is_dir() => libc::DT_DIR,
                Some(t) if t.is_symlink() => libc::DT_LNK,
                Some(t) if t.is_file() => libc::DT_REG,
                Some(_) => libc::DT_UNKNOWN,
                None => libc::DT_UNKNOWN,
            };
            entries.push((dir_cookie(&name), name, dt, e.ino()));
        }
        // In cookie order, so that a cookie means the same thing to every reader of the
        // directory, including a reopened or anonymous fd.
        entries.sort();
        Ok(DirSnapshot { entries })
    }
}

/// `../../xy/zw/<pgfid>/<name>` → (pgfid, name), or None if the symlink is not a dir handle.
fn dir_handle_target(h: &Path) -> Option<(Gfid, String)> {
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

pub fn iatt_from(md: &fs::Metadata, gfid: Gfid) -> Iatt {
    Iatt {
        gfid,
        ino: gfid.ino(),
        dev: md.dev(),
        mode: md.mode(),
        // The .glusterfs handle is a name the user never sees.
        nlink: if md.is_dir() {
            md.nlink() as u32
        } else {
            (md.nlink() as u32).saturating_sub(1)
        },
        uid: md.uid(),
        gid: md.gid(),
        rdev: md.rdev(),
        size: md.size(),
        blksize: md.blksize() as u32,
        blocks: md.blocks(),
        atime: Timespec {
            sec: md.atime(),
            nsec: md.atime_nsec() as u32,
        },
        mtime: Timespec {
            sec: md.mtime(),
            nsec: md.mtime_nsec() as u32,
        },
        ctime: Timespec {
            sec: md.ctime(),
            nsec: md.ctime_nsec() as u32,
        },
    }
}

fn wanted(path: &Path, want: &Xattrs) -> Result<Xattrs> {
    let mut out = Xattrs::new();
    if want.is_empty() {
        return Ok(out);
    }
    let mut names: Option<Vec<String>> = None;
    for k in want.keys() {
        if let Some(prefix) = k.strip_suffix('*') {
            let all = match &names {
                Some(n) => n.clone(),
                None => {
                    let n = xattr::list(path)?;
                    names = Some(n.clone());
                    n
                }
            };
            for n in all.iter().filter(|n| n.starts_with(prefix)) {
                if let Some(v) = xattr::get(path, n)? {
                    out.insert(n.clone(), Bytes::from(v));
                }
            }
        } else if let Some(v) = xattr::get(path, k)? {
            out.insert(k.clone(), Bytes::from(v));
        }
    }
    Ok(out)
}

fn is_protected_xattr(name: &str) -> bool {
    name == keys::GFID || name == keys::VOLUME_ID || name.starts_with(keys::GFID2PATH_PREFIX)
}

fn to_cstring(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

fn utimens(path: &Path, atime: Option<SetTime>, mtime: Option<SetTime>) -> Result<()> {
    let ts = |t: Option<SetTime>| match t {
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        Some(SetTime::Now) => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        Some(SetTime::At(t)) => libc::timespec {
            tv_sec: t.sec,
            tv_nsec: t.nsec as i64,
        },
    };
    let times = [ts(atime), ts(mtime)];
    let c = to_cstring(path)?;
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r < 0 {
        Err(Errno::from_io(&std::io::Error::last_os_error()))
    } else {
        Ok(())
    }
}

impl Posix {
    pub fn new(base: XlatorBase, root: PathBuf, volume_id: Gfid) -> Posix {
        Posix {
            base,
            root,
            volume_id,
            xattrop_locks: Mutex::new(HashMap::new()),
            anon: Mutex::new(HashMap::new()),
        }
    }

    fn ctl(&self) -> Ctl {
        Ctl {
            root: self.root.clone(),
        }
    }

    /// Checks (or, on a new brick, writes) the volume id and the root's gfid and handle.
    pub fn prepare_brick(root: &Path, volume_id: &Gfid) -> std::result::Result<(), String> {
        let md =
            fs::metadata(root).map_err(|e| format!("brick directory {}: {e}", root.display()))?;
        if !md.is_dir() {
            return Err(format!("brick {} is not a directory", root.display()));
        }
        match xattr::get(root, keys::VOLUME_ID) {
            Ok(Some(v)) => {
                let have = Gfid::from_slice(&v);
                if have != Some(*volume_id) {
                    return Err(format!(
                        "brick {} belongs to volume {} (trusted.glusterfs.volume-id), not {}",
                        root.display(),
                        have.map(|g| g.to_string())
                            .unwrap_or_else(|| hex::encode(&v)),
                        volume_id
                    ));
                }
            }
            Ok(None) => xattr::set(root, keys::VOLUME_ID, &volume_id.0, 0)
                .map_err(|e| format!("cannot set volume-id on {}: {e}", root.display()))?,
            Err(e) => {
                return Err(format!(
                    "brick {}: extended attributes unavailable ({e}); bricks need a file system with trusted.* xattrs and root",
                    root.display()
                ));
            }
        }
        match xattr::get(root, keys::GFID).map_err(|e| e.to_string())? {
            Some(v) if Gfid::from_slice(&v) != Some(Gfid::ROOT) => {
                return Err(format!(
                    "brick root {} has a gfid other than the root's",
                    root.display()
                ));
            }
            Some(_) => {}
            None => xattr::set(root, keys::GFID, &Gfid::ROOT.0, 0).map_err(|e| e.to_string())?,
        }
        let gl = root.join(".glusterfs");
        for d in [
            "00/00",
            "indices/xattrop",
            "indices/dirty",
            "indices/entry-changes",
            "landfill",
            "unlink",
        ] {
            fs::create_dir_all(gl.join(d)).map_err(|e| format!("{}: {e}", gl.join(d).display()))?;
        }
        let rh = gl.join("00/00/00000000-0000-0000-0000-000000000001");
        if fs::symlink_metadata(&rh).is_err() {
            std::os::unix::fs::symlink("../../..", &rh)
                .map_err(|e| format!("{}: {e}", rh.display()))?;
        }
        Ok(())
    }

    fn open_file(&self, fd: &FdRef) -> Result<Arc<File>> {
        if let Some(of) = fd.ctx_get::<OpenFile>(self.base.id) {
            return Ok(of.file.clone());
        }
        if let Some(f) = self.anon.lock().get(&fd.gfid) {
            return Ok(f.clone());
        }
        let path = self.ctl().resolve_gfid(&fd.gfid)?;
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .or_else(|_| OpenOptions::new().read(true).open(&path));
        let f = Arc::new(io(f)?);
        let mut anon = self.anon.lock();
        if anon.len() >= ANON_CACHE {
            let k = *anon.keys().next().expect("non-empty");
            anon.remove(&k);
        }
        anon.insert(fd.gfid, f.clone());
        Ok(f)
    }

    fn forget_anon(&self, g: &Gfid) {
        self.anon.lock().remove(g);
    }
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

fn open_path(path: &Path, flags: i32) -> Result<File> {
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

#[async_trait]
impl Xlator for Posix {
    fn base(&self) -> &XlatorBase {
        &self.base
    }

    async fn init(&self) -> Result<()> {
        let (root, vid) = (self.root.clone(), self.volume_id);
        blocking(move || {
            Posix::prepare_brick(&root, &vid).map_err(|m| {
                tracing::error!(brick = %root.display(), "{m}");
                Errno::EINVAL
            })
        })
        .await?;
        self.base.notify_parents(Event::ChildUp).await;
        Ok(())
    }

    async fn lookup(&self, _ctx: &Ctx, loc: &Loc, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        let (c, loc, want) = (self.ctl(), loc.clone(), want.clone());
        blocking(move || {
            let path = c.resolve(&loc)?;
            let md = io(fs::symlink_metadata(&path))?;
            let g = c.gfid_of(&path)?;
            if let Some(expect) = loc.gfid
                && loc.name.is_some()
                && expect != g
            {
                // The name now holds another inode: the caller's view is stale.
                return Err(Errno::ESTALE);
            }
            let x = wanted(&path, &want)?;
            Ok((iatt_from(&md, g), x))
        })
        .await
    }

    async fn stat(&self, _ctx: &Ctx, loc: &Loc) -> Result<Iatt> {
        let (c, loc) = (self.ctl(), loc.clone());
        blocking(move || {
            let path = c.resolve(&loc)?;
            let g = c.gfid_of(&path)?;
            c.iatt(&path, g)
        })
        .await
    }

    async fn fstat(&self, _ctx: &Ctx, fd: &FdRef) -> Result<Iatt> {
        if fd.is_dir {
            return self.stat(_ctx, &Loc::gfid(fd.gfid)).await;
        }
        let f = self.open_file(fd)?;
        let g = fd.gfid;
        blocking(move || Ok(iatt_from(&io(f.metadata())?, g))).await
    }

    async fn setattr(&self, _ctx: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
        let (c, loc, attr) = (self.ctl(), loc.clone(), attr.clone());
        blocking(move || {
            let path = c.resolve(&loc)?;
            let g = c.gfid_of(&path)?;
            let md = io(fs::symlink_metadata(&path))?;
            if attr.uid.is_some() || attr.gid.is_some() {
                io(std::os::unix::fs::lchown(&path, attr.uid, attr.gid))?;
            }
            if let Some(m) = attr.mode
                && !md.file_type().is_symlink()
            {
                io(fs::set_permissions(
                    &path,
                    fs::Permissions::from_mode(m & 0o7777),
                ))?;
            }
            if let Some(s) = attr.size {
                if md.is_dir() {
                    return Err(Errno::EISDIR);
                }
                let f = io(OpenOptions::new().write(true).open(&path))?;
                io(f.set_len(s))?;
                drop_s3_etag(&f);
            }
            if attr.atime.is_some() || attr.mtime.is_some() {
                utimens(&path, attr.atime, attr.mtime)?;
            }
            c.iatt(&path, g)
        })
        .await
    }

    async fn access(&self, _ctx: &Ctx, loc: &Loc, _mask: u32) -> Result<()> {
        // Permission checks happen at the frontends (the kernel for FUSE); the brick only
        // confirms the inode exists.
        let (c, loc) = (self.ctl(), loc.clone());
        blocking(move || {
            c.resolve(&loc)
                .and_then(|p| io(fs::symlink_metadata(p)).map(|_| ()))
        })
        .await
    }

    async fn create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt)> {
        let (c, ctx, loc, e) = (self.ctl(), ctx.clone(), loc.clone(), entry.clone());
        let mode = (e.mode & 0o7777) & !e.umask;
        let (path, g, file) = blocking(move || {
            c.create_inode(&ctx, &loc, &e, |h| {
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(h);
                Ok(Some(io(f)?))
            })
        })
        .await?;
        let file = file.expect("create made a file");
        // The kernel's O_APPEND must carry over: reopen through the new fd's flags.
        let file = if flags & libc::O_APPEND != 0 {
            let p = path.clone();
            blocking(move || open_path(&p, flags & !libc::O_TRUNC)).await?
        } else {
            file
        };
        let md = io(file.metadata())?;
        let fd = Fd::new(g, flags, false);
        fd.ctx_set(
            self.base.id,
            Arc::new(OpenFile {
                file: Arc::new(file),
            }),
        );
        Ok((fd, iatt_from(&md, g)))
    }

    async fn open(&self, _ctx: &Ctx, loc: &Loc, flags: i32) -> Result<FdRef> {
        let (c, loc2) = (self.ctl(), loc.clone());
        let (g, file) = blocking(move || {
            let path = c.resolve(&loc2)?;
            let md = io(fs::symlink_metadata(&path))?;
            if md.is_dir() && flags & libc::O_ACCMODE != libc::O_RDONLY {
                return Err(Errno::EISDIR);
            }
            let g = c.gfid_of(&path)?;
            Ok((g, open_path(&path, flags)?))
        })
        .await?;
        let fd = Fd::new(g, flags, false);
        fd.ctx_set(
            self.base.id,
            Arc::new(OpenFile {
                file: Arc::new(file),
            }),
        );
        Ok(fd)
    }

    async fn rchecksum(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        len: u32,
    ) -> Result<(u32, [u8; 32])> {
        use sha2::Digest;
        let data = self.read(ctx, fd, offset, len).await?;
        blocking(move || Ok((data.len() as u32, sha2::Sha256::digest(&data).into()))).await
    }

    async fn read(&self, _ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Bytes> {
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

    async fn write(&self, _ctx: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
        let f = self.open_file(fd)?;
        let g = fd.gfid;
        blocking(move || {
            io(f.write_all_at(&data, offset))?;
            drop_s3_etag(&f);
            Ok(iatt_from(&io(f.metadata())?, g))
        })
        .await
    }

    async fn truncate(&self, ctx: &Ctx, loc: &Loc, size: u64) -> Result<Iatt> {
        self.setattr(
            ctx,
            loc,
            &SetAttr {
                size: Some(size),
                ..Default::default()
            },
        )
        .await
    }

    async fn ftruncate(&self, _ctx: &Ctx, fd: &FdRef, size: u64) -> Result<Iatt> {
        let f = self.open_file(fd)?;
        let g = fd.gfid;
        blocking(move || {
            io(f.set_len(size))?;
            drop_s3_etag(&f);
            Ok(iatt_from(&io(f.metadata())?, g))
        })
        .await
    }

    async fn flush(&self, _ctx: &Ctx, _fd: &FdRef) -> Result<()> {
        Ok(())
    }

    async fn fsync(&self, _ctx: &Ctx, fd: &FdRef, datasync: bool) -> Result<()> {
        if fd.is_dir {
            let c = self.ctl();
            let g = fd.gfid;
            return blocking(
                move || io(File::open(c.resolve_gfid(&g)?).and_then(|f| f.sync_all())),
            )
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

    async fn release(&self, fd: &FdRef) {
        fd.ctx_del(self.base.id);
    }

    async fn mkdir(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<Iatt> {
        let (c, ctx, loc, e) = (self.ctl(), ctx.clone(), loc.clone(), entry.clone());
        blocking(move || {
            let (pg, name, dir) = c.parent_dir(&loc)?;
            let g = if e.gfid.is_null() {
                Gfid::random()
            } else {
                e.gfid
            };
            let path = dir.join(&name);
            if fs::symlink_metadata(&path).is_ok() {
                return Err(Errno::EEXIST);
            }
            // Build the directory aside with its gfid and xattrs, then move it in with
            // RENAME_NOREPLACE: the name is never visible without its gfid and layout.
            let tmpdir = c.root.join(".glusterfs").join("gw-tmp");
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
            c.set_xattrs(&tmp, &e.xattrs).map_err(undo)?;
            c.set_owner(&tmp, &ctx, &dir).map_err(undo)?;
            let pmd = io(fs::metadata(&dir)).map_err(undo)?;
            if pmd.mode() & libc::S_ISGID != 0 {
                io(fs::set_permissions(
                    &tmp,
                    fs::Permissions::from_mode(mode | libc::S_ISGID),
                ))
                .map_err(undo)?;
            }
            let (a, b) = (to_cstring(&tmp)?, to_cstring(&path)?);
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
            c.make_dir_handle(&g, &pg, &name)?;
            c.iatt(&path, g)
        })
        .await
    }

    async fn mknod(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<Iatt> {
        let (c, ctx, loc, e) = (self.ctl(), ctx.clone(), loc.clone(), entry.clone());
        blocking(move || {
            let mode = (e.mode & libc::S_IFMT) | ((e.mode & 0o7777) & !e.umask);
            let rdev = e.rdev;
            let (path, g, _) = c.create_inode(&ctx, &loc, &e, |h| {
                let ch = to_cstring(h)?;
                let r = unsafe { libc::mknod(ch.as_ptr(), mode, rdev as libc::dev_t) };
                if r < 0 {
                    return Err(Errno::from_io(&std::io::Error::last_os_error()));
                }
                Ok(None)
            })?;
            c.iatt(&path, g)
        })
        .await
    }

    async fn symlink(&self, ctx: &Ctx, loc: &Loc, target: &str, entry: &NewEntry) -> Result<Iatt> {
        let (c, ctx, loc, e, target) = (
            self.ctl(),
            ctx.clone(),
            loc.clone(),
            entry.clone(),
            target.to_string(),
        );
        blocking(move || {
            let (path, g, _) = c.create_inode(&ctx, &loc, &e, |h| {
                io(std::os::unix::fs::symlink(&target, h))?;
                Ok(None)
            })?;
            c.iatt(&path, g)
        })
        .await
    }

    async fn readlink(&self, _ctx: &Ctx, loc: &Loc) -> Result<String> {
        let (c, loc) = (self.ctl(), loc.clone());
        blocking(move || {
            let p = c.resolve(&loc)?;
            let t = io(fs::read_link(p))?;
            Ok(t.to_string_lossy().into_owned())
        })
        .await
    }

    async fn link(&self, _ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        let (c, old, new) = (self.ctl(), oldloc.clone(), newloc.clone());
        blocking(move || {
            let src = c.resolve(&old)?;
            let g = c.gfid_of(&src)?;
            let (pg, name, dir) = c.parent_dir(&new)?;
            let dst = dir.join(&name);
            io(fs::hard_link(&src, &dst))?;
            xattr::set(
                &dst,
                &gfid2path_key(&pg, &name),
                format!("{pg}/{name}").as_bytes(),
                0,
            )?;
            c.iatt(&dst, g)
        })
        .await
    }

    async fn unlink(&self, _ctx: &Ctx, loc: &Loc) -> Result<()> {
        let (c, loc) = (self.ctl(), loc.clone());
        let g = blocking(move || {
            let (pg, name, dir) = c.parent_dir(&loc)?;
            let path = dir.join(&name);
            let md = io(fs::symlink_metadata(&path))?;
            if md.is_dir() {
                return Err(Errno::EISDIR);
            }
            let g = c.read_gfid(&path)?;
            if let Some(expect) = loc.gfid
                && g != Some(expect)
            {
                // The caller means another inode than the one this name holds now.
                return Err(Errno::ESTALE);
            }
            let _ = xattr::remove(&path, &gfid2path_key(&pg, &name));
            io(fs::remove_file(&path))?;
            if let Some(g) = g {
                let h = c.handle_path(&g);
                // Only the handle left: the inode has no name any more. An open fd on the
                // brick keeps its data until it is released.
                if let Ok(hmd) = fs::symlink_metadata(&h)
                    && hmd.nlink() <= 1
                    && hmd.ino() == md.ino()
                {
                    let _ = fs::remove_file(&h);
                }
            }
            Ok(g)
        })
        .await?;
        if let Some(g) = g {
            self.forget_anon(&g);
        }
        Ok(())
    }

    async fn rmdir(&self, _ctx: &Ctx, loc: &Loc) -> Result<()> {
        let (c, loc) = (self.ctl(), loc.clone());
        blocking(move || {
            let (_pg, name, dir) = c.parent_dir(&loc)?;
            let path = dir.join(&name);
            let md = io(fs::symlink_metadata(&path))?;
            if !md.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            let g = c.read_gfid(&path)?;
            io(fs::remove_dir(&path))?;
            if let Some(g) = g {
                let _ = fs::remove_file(c.handle_path(&g));
            }
            Ok(())
        })
        .await
    }

    async fn rename(&self, _ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        let (c, old, new) = (self.ctl(), oldloc.clone(), newloc.clone());
        blocking(move || {
            let (opg, oname, odir) = c.parent_dir(&old)?;
            let (npg, nname, ndir) = c.parent_dir(&new)?;
            let src = odir.join(&oname);
            let dst = ndir.join(&nname);
            let smd = io(fs::symlink_metadata(&src))?;
            let g = c.gfid_of(&src)?;
            let replaced = match fs::symlink_metadata(&dst) {
                Ok(dmd) if dmd.ino() == smd.ino() => {
                    // Two names of one inode: POSIX says do nothing.
                    return c.iatt(&src, g);
                }
                Ok(dmd) => Some((dmd, c.read_gfid(&dst)?)),
                Err(_) => None,
            };
            io(fs::rename(&src, &dst))?;
            if let Some((dmd, Some(dg))) = replaced {
                let h = c.handle_path(&dg);
                if dmd.is_dir() {
                    let _ = fs::remove_file(&h);
                } else if let Ok(hmd) = fs::symlink_metadata(&h)
                    && hmd.nlink() <= 1
                {
                    let _ = fs::remove_file(&h);
                }
            }
            if smd.is_dir() {
                c.make_dir_handle(&g, &npg, &nname)?;
            } else {
                let _ = xattr::remove(&dst, &gfid2path_key(&opg, &oname));
                xattr::set(
                    &dst,
                    &gfid2path_key(&npg, &nname),
                    format!("{npg}/{nname}").as_bytes(),
                    0,
                )?;
            }
            c.iatt(&dst, g)
        })
        .await
    }

    async fn opendir(&self, _ctx: &Ctx, loc: &Loc) -> Result<FdRef> {
        let (c, loc) = (self.ctl(), loc.clone());
        let g = blocking(move || {
            let p = c.resolve(&loc)?;
            let md = io(fs::metadata(&p))?;
            if !md.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            c.gfid_of(&p)
        })
        .await?;
        Ok(Fd::new(g, libc::O_RDONLY, true))
    }

    async fn readdir(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Vec<Dirent>> {
        self.readdirp_inner(ctx, fd, offset, size, None).await
    }

    async fn readdirp(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: &Xattrs,
    ) -> Result<Vec<Dirent>> {
        self.readdirp_inner(ctx, fd, offset, size, Some(want.clone()))
            .await
    }

    async fn statfs(&self, _ctx: &Ctx, _loc: &Loc) -> Result<Statvfs> {
        let root = self.root.clone();
        blocking(move || {
            let c = to_cstring(&root)?;
            let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
            if unsafe { libc::statvfs(c.as_ptr(), &mut s) } < 0 {
                return Err(Errno::from_io(&std::io::Error::last_os_error()));
            }
            Ok(Statvfs {
                bsize: s.f_bsize,
                frsize: s.f_frsize,
                blocks: s.f_blocks,
                bfree: s.f_bfree,
                bavail: s.f_bavail,
                files: s.f_files,
                ffree: s.f_ffree,
                favail: s.f_favail,
                namemax: s.f_namemax,
            })
        })
        .await
    }

    async fn getxattr(&self, _ctx: &Ctx, loc: &Loc, name: Option<&str>) -> Result<Xattrs> {
        let (c, loc, name) = (self.ctl(), loc.clone(), name.map(String::from));
        blocking(move || {
            if name.as_deref() == Some(keys::PARENT_GFID) {
                return c.parent_gfid(&loc);
            }
            let p = c.resolve(&loc)?;
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

    async fn setxattr(&self, _ctx: &Ctx, loc: &Loc, xattrs: &Xattrs, flags: i32) -> Result<()> {
        if xattrs.keys().any(|k| is_protected_xattr(k)) {
            return Err(Errno::EPERM);
        }
        let (c, loc, xs) = (self.ctl(), loc.clone(), xattrs.clone());
        blocking(move || {
            let p = c.resolve(&loc)?;
            for (k, v) in &xs {
                xattr::set(&p, k, v, flags)?;
            }
            Ok(())
        })
        .await
    }

    async fn removexattr(&self, _ctx: &Ctx, loc: &Loc, name: &str) -> Result<()> {
        if is_protected_xattr(name) {
            return Err(Errno::EPERM);
        }
        let (c, loc, name) = (self.ctl(), loc.clone(), name.to_string());
        blocking(move || xattr::remove(&c.resolve(&loc)?, &name)).await
    }

    async fn xattrop(
        &self,
        _ctx: &Ctx,
        loc: &Loc,
        op: XattropOp,
        xattrs: &Xattrs,
    ) -> Result<Xattrs> {
        let (c, loc2, xs) = (self.ctl(), loc.clone(), xattrs.clone());
        let path = blocking(move || c.resolve(&loc2)).await?;
        let g = loc.gfid.unwrap_or_default();
        let lock = self.xattrop_locks.lock().entry(g).or_default().clone();
        let out = blocking(move || {
            let _guard = lock.lock();
            let mut out = Xattrs::new();
            for (k, v) in &xs {
                let old = xattr::get(&path, k)?.unwrap_or_default();
                let new = combine(op, &old, v)?;
                xattr::set(&path, k, &new, 0)?;
                out.insert(k.clone(), Bytes::from(new));
            }
            Ok(out)
        })
        .await;
        let mut locks = self.xattrop_locks.lock();
        if locks.get(&g).is_some_and(|l| Arc::strong_count(l) == 1) {
            locks.remove(&g);
        }
        out
    }

    async fn fallocate(
        &self,
        _ctx: &Ctx,
        fd: &FdRef,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        let f = self.open_file(fd)?;
        blocking(move || {
            use std::os::fd::AsRawFd;
            let r = unsafe { libc::fallocate(f.as_raw_fd(), mode, offset as i64, len as i64) };
            if r < 0 {
                Err(Errno::from_io(&std::io::Error::last_os_error()))
            } else {
                drop_s3_etag(&f);
                Ok(())
            }
        })
        .await
    }

    async fn discard(&self, ctx: &Ctx, fd: &FdRef, offset: u64, len: u64) -> Result<()> {
        self.fallocate(
            ctx,
            fd,
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset,
            len,
        )
        .await
    }

    async fn inodelk(
        &self,
        _ctx: &Ctx,
        _d: &str,
        _loc: &Loc,
        _cmd: LockCmd,
        _lock: &Flock,
    ) -> Result<Flock> {
        // Locks live in features/locks above this translator.
        Err(Errno::ENOSYS)
    }

    async fn entrylk(
        &self,
        _ctx: &Ctx,
        _d: &str,
        _loc: &Loc,
        _b: Option<&str>,
        _cmd: EntrylkCmd,
        _t: EntrylkType,
    ) -> Result<()> {
        Err(Errno::ENOSYS)
    }

    async fn lk(&self, _ctx: &Ctx, _fd: &FdRef, _cmd: LockCmd, _lock: &Flock) -> Result<Flock> {
        Err(Errno::ENOSYS)
    }
}

impl Posix {
    async fn readdirp_inner(
        &self,
        _ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: Option<Xattrs>,
    ) -> Result<Vec<Dirent>> {
        let snap = match fd.ctx_get::<DirSnapshot>(self.base.id) {
            Some(s) if offset != 0 => s,
            _ => {
                let c = self.ctl();
                let g = fd.gfid;
                let s = Arc::new(
                    blocking(move || {
                        let p = c.resolve_gfid(&g)?;
                        c.snapshot_dir(&p, g.is_root())
                    })
                    .await?,
                );
                if !fd.anonymous {
                    fd.ctx_set(self.base.id, s.clone());
                }
                s
            }
        };
        let c = self.ctl();
        let g = fd.gfid;
        blocking(move || {
            let dir = c.resolve_gfid(&g)?;
            let mut out = Vec::new();
            let mut budget = size.max(512) as usize;
            // Resume after the entry whose cookie was handed out (two names sharing a 47-bit
            // hash at a page boundary is the one case this can skip).
            let start = snap.entries.partition_point(|e| e.0 <= offset);
            for (cookie, name, dt, ino) in &snap.entries[start..] {
                let cost = 24 + name.len() + if want.is_some() { 128 } else { 0 };
                if cost > budget && !out.is_empty() {
                    break;
                }
                budget = budget.saturating_sub(cost);
                let mut d = Dirent {
                    name: name.clone(),
                    d_off: *cookie,
                    d_type: *dt,
                    ino: *ino,
                    ..Default::default()
                };
                if let Some(w) = &want {
                    let p = dir.join(name);
                    if name == "." || name == ".." {
                        continue;
                    }
                    match fs::symlink_metadata(&p) {
                        Ok(md) => {
                            let eg = match c.gfid_of(&p) {
                                Ok(g) => g,
                                Err(_) => continue,
                            };
                            d.iatt = Some(iatt_from(&md, eg));
                            d.ino = eg.ino();
                            d.d_type = mode_to_dtype(md.mode());
                            d.xattrs = wanted(&p, w).unwrap_or_default();
                        }
                        Err(_) => continue,
                    }
                } else if let Ok(Some(eg)) = c.read_gfid(&dir.join(name)) {
                    d.ino = eg.ino();
                }
                out.push(d);
            }
            Ok(out)
        })
        .await
    }
}

fn combine(op: XattropOp, old: &[u8], add: &[u8]) -> Result<Vec<u8>> {
    let n = old.len().max(add.len());
    let word = match op {
        XattropOp::AddArray | XattropOp::OrArray => 4,
        XattropOp::AddArray64 => 8,
    };
    if !add.len().is_multiple_of(word) || !old.len().is_multiple_of(word) {
        return Err(Errno::EINVAL);
    }
    let mut out = vec![0u8; n];
    for i in (0..n).step_by(word) {
        let get = |b: &[u8]| -> u64 {
            if i + word <= b.len() {
                if word == 4 {
                    u32::from_be_bytes(b[i..i + 4].try_into().expect("4")) as u64
                } else {
                    u64::from_be_bytes(b[i..i + 8].try_into().expect("8"))
                }
            } else {
                0
            }
        };
        let (a, b) = (get(old), get(add));
        let v = match op {
            XattropOp::OrArray => a | b,
            // Counters are signed on the wire (a post-op sends -1), so add with wrap-around.
            _ if word == 4 => (a as u32).wrapping_add(b as u32) as u64,
            _ => a.wrapping_add(b),
        };
        if word == 4 {
            out[i..i + 4].copy_from_slice(&(v as u32).to_be_bytes());
        } else {
            out[i..i + 8].copy_from_slice(&v.to_be_bytes());
        }
    }
    Ok(out)
}

/// The S3 frontend stores an object's MD5 in `user.s3.etag`; any write through any frontend
/// makes it wrong, so the brick drops it here, where every write passes. One syscall, and
/// ENODATA (the usual case) costs nothing more.
fn drop_s3_etag(f: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid fd and a NUL-terminated name.
    unsafe {
        libc::fremovexattr(f.as_raw_fd(), c"user.s3.etag".as_ptr());
    }
}
