//! What a brick directory says of itself, read without a brickd: the id of the volume it
//! belongs to (`trusted.glusterfs.volume-id`, set by the brick that first served it). gatewayd
//! reads it to refuse a directory already part of a volume and to adopt GlusterFS bricks.

use crate::fop::{Errno, Gfid, keys::VOLUME_ID};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum VolumeIdError {
    #[error("{path}: reading trusted.glusterfs.volume-id: {errno}")]
    Read { path: String, errno: Errno },
    #[error("{0}: trusted.glusterfs.volume-id is not 16 bytes")]
    NotAnId(String),
}

/// The volume id of the brick directory `path`, or None when it has none (not a brick yet).
pub fn volume_id(path: &Path) -> Result<Option<Gfid>, VolumeIdError> {
    let read = |errno| VolumeIdError::Read {
        path: path.display().to_string(),
        errno,
    };
    match xattr(path, VOLUME_ID).map_err(read)? {
        None => Ok(None),
        Some(v) => Gfid::from_slice(&v)
            .map(Some)
            .ok_or_else(|| VolumeIdError::NotAnId(path.display().to_string())),
    }
}

fn last_errno() -> Errno {
    Errno(
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}

/// lgetxattr: the value, or None when the inode has no such xattr (brickd's storage reads
/// xattrs through this too).
pub fn xattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>, Errno> {
    let p = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let n = CString::new(name).map_err(|_| Errno::EINVAL)?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: both names are NUL-terminated; the kernel writes at most `buf.len()` bytes.
        let r =
            unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if r >= 0 {
            buf.truncate(r as usize);
            return Ok(Some(buf));
        }
        match last_errno() {
            Errno::ENODATA => return Ok(None),
            Errno::ERANGE => {
                // SAFETY: a size query: a null buffer of length 0.
                let size =
                    unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) };
                if size < 0 {
                    return Err(last_errno());
                }
                buf.resize(size as usize + 1, 0);
            }
            e => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_directory_has_no_volume_id() {
        let d = tempfile::tempdir().unwrap();
        assert!(volume_id(d.path()).unwrap().is_none());
        let e = volume_id(&d.path().join("missing")).unwrap_err();
        assert!(
            e.to_string()
                .contains("reading trusted.glusterfs.volume-id"),
            "{e}"
        );
    }
}
