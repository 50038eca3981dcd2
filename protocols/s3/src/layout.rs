//! Where a key lives on the volume.
//!
//! A key's `/`-separated segments are directories and its last segment is a file: `a/b/c` is
//! the file `c` in the directory `a/b` of the bucket, which FUSE, NFS and SMB show as such. Two
//! kinds of key need more than a file:
//!
//! - A folder, `a/b/` (what s3fs, the AWS console's "create folder" and Cyberduck make): the
//!   directory `a/b` itself, marked with the xattr `DIR_OBJECT` when it was PUT (its metadata
//!   and tags are xattrs of the directory, as an object's are of its file). Any directory
//!   answers GET and HEAD of `dir/` as an empty object; listings show `dir/` only for marked
//!   ones, as S3 lists only keys that were PUT. A folder PUT with data (rare, but S3 allows it)
//!   keeps it in the file `DIR_DATA` inside the directory.
//! - A key that is also a prefix, `a/b` next to `a/b/c`: the directory `a/b` holds object
//!   `a/b` as the file `SELF` and carries the xattr `HAS_SELF`, so a listing finds it in the
//!   parent's directory entries without reading `a/b`. Whichever of the two keys comes first,
//!   the second does not fail: a file `a/b` becomes a directory holding it as `SELF` when
//!   `a/b/c` is written. FUSE shows the directory `a/b` with the object's bytes in the file
//!   `a/b/.s3-object` next to `c`.
//!
//! Keys with a segment named `SELF` or `DIR_DATA` would collide with these and are refused.

use bytes::Bytes;
use engine::fop::{Errno, Gfid, Iatt, Result, Timespec, Xattrs};

use crate::vfs::Vfs;

/// The file, inside directory `a/b`, that holds object `a/b` when `a/b/...` keys exist too.
pub const SELF: &str = ".s3-object";
/// The file, inside directory `a/b`, that holds the data of a folder object `a/b/` PUT with a
/// body.
pub const DIR_DATA: &str = ".s3-folder-object";
/// On a directory: its folder key `dir/` was PUT (value: the time, in seconds, its
/// Last-Modified).
pub const DIR_OBJECT: &str = "user.s3.dir-object";
/// On a directory: it holds `SELF`.
pub const HAS_SELF: &str = "user.s3.has-object";

/// Whether a key segment collides with the names above.
pub fn reserved(segment: &str) -> bool {
    segment == SELF || segment == DIR_DATA
}

/// The xattrs a directory's listing entry or lookup needs to tell what objects it stands for.
pub fn dir_want() -> Xattrs {
    let mut w = Xattrs::new();
    w.insert(DIR_OBJECT.to_string(), Bytes::new());
    w.insert(HAS_SELF.to_string(), Bytes::new());
    w
}

/// A folder object's Last-Modified: when it was PUT, or the directory's mtime.
pub fn folder_mtime(ia: &Iatt, x: &Xattrs) -> Timespec {
    x.get(DIR_OBJECT)
        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
        .map(|sec| Timespec { sec, nsec: 0 })
        .unwrap_or(ia.mtime)
}

/// Makes every missing directory of `names` below `start`, as `Vfs::mkdir_p` does; a name
/// that is an object (a regular file) becomes a directory that holds it as `SELF`.
pub async fn mkdir_p(vfs: &Vfs, start: Gfid, names: &[&str]) -> Result<Gfid> {
    let mut cur = start;
    for n in names {
        cur = match vfs.mkdir_p(cur, &[n]).await {
            Ok(g) => g,
            Err(Errno::ENOTDIR) => match file_to_dir(vfs, cur, n).await {
                Ok(g) => g,
                // The file went (or became a directory) meanwhile.
                Err(Errno::ENOENT) => vfs.mkdir_p(cur, &[n]).await?,
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        };
    }
    Ok(cur)
}

/// Turns the file `parent/name` into a directory that holds it as `SELF`: a hidden directory
/// is made next to it, the file moves in, and the directory takes the file's name. Between
/// the two renames the object is briefly not found; it is never lost.
async fn file_to_dir(vfs: &Vfs, parent: Gfid, name: &str) -> Result<Gfid> {
    let (ia, _) = vfs.lookup(parent, name, &Xattrs::new()).await?;
    if !ia.is_reg() {
        return Err(Errno::ENOTDIR);
    }
    // A staging name: FUSE and listings hide it, and nothing sweeps a directory.
    let tmp = format!(".s3tmp-dir-{}", uuid::Uuid::new_v4().simple());
    let mut x = Xattrs::new();
    x.insert(HAS_SELF.to_string(), Bytes::from_static(b"1"));
    let dir = vfs.mkdir(parent, &tmp, x).await?.gfid;
    if let Err(e) = vfs.rename((parent, name), (dir, SELF)).await {
        let _ = vfs.rmdir(parent, &tmp).await;
        return Err(e);
    }
    match vfs.rename((parent, &tmp), (parent, name)).await {
        Ok(_) => Ok(dir),
        Err(_) => {
            // Another writer made `name` a directory meanwhile: the object joins it there.
            let (ia, _) = vfs.lookup(parent, name, &Xattrs::new()).await?;
            if !ia.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            mark_self(vfs, ia.gfid).await?;
            vfs.rename((dir, SELF), (ia.gfid, SELF)).await?;
            let _ = vfs.rmdir(parent, &tmp).await;
            Ok(ia.gfid)
        }
    }
}

pub async fn mark_self(vfs: &Vfs, dir: Gfid) -> Result<()> {
    let mut x = Xattrs::new();
    x.insert(HAS_SELF.to_string(), Bytes::from_static(b"1"));
    vfs.setxattrs(dir, &x).await
}

/// Where object `name` in `parent` is written: the name itself, or `SELF` inside it when it is
/// a directory (the third value says so: the directory then needs `HAS_SELF`).
pub async fn write_target<'a>(
    vfs: &Vfs,
    parent: Gfid,
    name: &'a str,
) -> Result<(Gfid, &'a str, bool)> {
    match vfs.lookup(parent, name, &Xattrs::new()).await {
        Ok((ia, _)) if ia.is_dir() => Ok((ia.gfid, SELF, true)),
        Ok(_) | Err(Errno::ENOENT) => Ok((parent, name, false)),
        Err(e) => Err(e),
    }
}

/// An object found by its key.
pub enum Found {
    /// A file: the key's own, `SELF` or `DIR_DATA`.
    File(Iatt, Xattrs),
    /// A folder key without data: the directory.
    Folder(Iatt, Xattrs),
}

/// Finds the object of a key: `dirs` below `bucket`, then `name` in the last, or the folder
/// `dirs/` when `name` is None. None when there is no such object.
pub async fn find(
    vfs: &Vfs,
    bucket: Gfid,
    dirs: &[&str],
    name: Option<&str>,
) -> Result<Option<Found>> {
    let mut names = dirs.to_vec();
    names.extend(name);
    let (ia, _) = match vfs.walk(bucket, &names, &Xattrs::new()).await {
        Ok(r) => r,
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(None),
        Err(e) => return Err(e),
    };
    if ia.is_reg() && name.is_some() {
        let x = vfs.getxattr(ia.gfid, None).await?;
        return Ok(Some(Found::File(ia, x)));
    }
    if !ia.is_dir() || names.is_empty() {
        return Ok(None);
    }
    let inner = if name.is_some() { SELF } else { DIR_DATA };
    match vfs.lookup(ia.gfid, inner, &Xattrs::new()).await {
        Ok((f, _)) if f.is_reg() => {
            let x = vfs.getxattr(f.gfid, None).await?;
            return Ok(Some(Found::File(f, x)));
        }
        Ok(_) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    if name.is_some() {
        return Ok(None);
    }
    let x = vfs.getxattr(ia.gfid, None).await?;
    Ok(Some(Found::Folder(ia, x)))
}
