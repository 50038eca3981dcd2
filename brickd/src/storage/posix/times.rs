//! Inode times from `trusted.glusterfs.mdata` (GlusterFS's `posix-metadata.c`): stat answers
//! from the xattr, and each stamped fop moves the times its stamp names, so every replica
//! reports what the client stamped rather than when the write reached this brick.

use super::super::xattr;
use super::handle::Handles;
use engine::mdata::{self, Mdata, Stamp};
use engine::*;
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub(super) fn io<T>(r: std::io::Result<T>) -> Result<T> {
    r.map_err(|e| Errno::from_io(&e))
}

/// The stat part of an iatt, with the brick's own times (before the xattr is consulted).
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

pub(super) fn load(path: &Path) -> Result<Option<Mdata>> {
    Ok(xattr::get(path, mdata::KEY)?.and_then(|v| Mdata::decode(&v)))
}

fn load_fd(f: &File) -> Result<Option<Mdata>> {
    Ok(xattr::fget(f.as_raw_fd(), mdata::KEY)?.and_then(|v| Mdata::decode(&v)))
}

/// Attributes of what `path` names, times from the xattr where it has one.
pub(super) fn iatt_md(path: &Path, md: &fs::Metadata, g: Gfid) -> Result<Iatt> {
    let mut ia = iatt_from(md, g);
    if let Some(m) = load(path)? {
        m.apply(&mut ia);
    }
    Ok(ia)
}

pub(super) fn iatt(path: &Path, g: Gfid) -> Result<Iatt> {
    let md = io(fs::symlink_metadata(path))?;
    iatt_md(path, &md, g)
}

pub(super) fn iatt_fd(f: &File, g: Gfid) -> Result<Iatt> {
    let mut ia = iatt_from(&io(f.metadata())?, g);
    if let Some(m) = load_fd(f)? {
        m.apply(&mut ia);
    }
    Ok(ia)
}

/// Where the times of one inode are read and written.
pub(super) enum Place<'a> {
    Path(&'a Path),
    File(&'a File),
}

impl Place<'_> {
    fn load(&self) -> Result<Option<Mdata>> {
        match self {
            Place::Path(p) => load(p),
            Place::File(f) => load_fd(f),
        }
    }

    fn store(&self, m: &Mdata) -> Result<()> {
        match self {
            Place::Path(p) => xattr::set(p, mdata::KEY, &m.encode(), 0),
            Place::File(f) => xattr::fset(f.as_raw_fd(), mdata::KEY, &m.encode(), 0),
        }
    }
}

/// Read-modify-write of `g`'s times under its lock. `base` makes the times of an inode that
/// has none yet (None leaves such an inode alone).
fn update(
    h: &Handles,
    place: Place<'_>,
    g: Gfid,
    base: impl FnOnce() -> Option<Mdata>,
    change: impl FnOnce(&mut Mdata),
) -> Result<Option<Mdata>> {
    let _guard = h.stripe(&g).lock();
    let loaded = place.load()?;
    let existed = loaded.is_some();
    let Some(mut m) = loaded.or_else(base) else {
        return Ok(None);
    };
    let before = m;
    change(&mut m);
    if m != before || !existed {
        place.store(&m)?;
    }
    Ok(Some(m))
}

/// Moves the times that `stamp`'s bits `which` name. An inode without times gets them all at
/// the stamp, as GlusterFS does the first time a fop stamps a file it never stamped.
pub(super) fn touch(
    h: &Handles,
    place: Place<'_>,
    g: Gfid,
    stamp: Option<&Stamp>,
    which: u8,
) -> Result<()> {
    touched(h, place, g, stamp, which).map(|_| ())
}

/// `touch`, returning the times it left, or None when it had nothing to move (and read none).
pub(super) fn touched(
    h: &Handles,
    place: Place<'_>,
    g: Gfid,
    stamp: Option<&Stamp>,
    which: u8,
) -> Result<Option<Mdata>> {
    let Some(s) = stamp else { return Ok(None) };
    if which == 0 {
        return Ok(None);
    }
    update(
        h,
        place,
        g,
        || Some(Mdata::at(s.time)),
        |m| m.advance(s.time, which),
    )
}

/// An explicit utimes: the given times are set as they are (they may go back), the change
/// time moves to the stamp. A stamped one gives an inode without times what the brick had.
pub(super) fn set_times(
    h: &Handles,
    path: &Path,
    md: &fs::Metadata,
    g: Gfid,
    atime: Option<Timespec>,
    mtime: Option<Timespec>,
    stamp: Option<&Stamp>,
) -> Result<()> {
    // Without a stamp (heal copying times) an inode without times is left so: heal then
    // gives it the converged ones whole, not a mix with this brick's own change time.
    let base = stamp.map(|_| Mdata::of_iatt(&iatt_from(md, g)));
    update(
        h,
        Place::Path(path),
        g,
        || base,
        |m| {
            if let Some(a) = atime {
                m.atime = a;
            }
            if let Some(t) = mtime {
                m.mtime = t;
            }
            if let Some(s) = stamp {
                m.advance(s.time, mdata::flags::CTIME);
            }
        },
    )
    .map(|_| ())
}

/// A setxattr of the times themselves (heal, rebalance, a lookup giving a file its first
/// times): kept as given where the inode has none, else each time is the newer of the two,
/// as GlusterFS's `posix_set_mdata_xattr_legacy_files` does.
pub(super) fn merge_in(h: &Handles, path: &Path, g: Gfid, value: &[u8]) -> Result<()> {
    let given = Mdata::decode(value).ok_or(Errno::EINVAL)?;
    update(h, Place::Path(path), g, || Some(given), |m| m.merge(&given)).map(|_| ())
}

/// The times an inode is created with: all at the stamp (None without one).
pub(super) fn new_inode(stamp: Option<&Stamp>) -> Option<(String, bytes::Bytes)> {
    stamp.map(|s| {
        (
            mdata::KEY.to_string(),
            bytes::Bytes::copy_from_slice(&Mdata::at(s.time).encode()),
        )
    })
}
