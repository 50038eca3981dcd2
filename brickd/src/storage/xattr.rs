//! Thin wrappers over the l*xattr syscalls: std has none, and the `xattr` crate would hide the
//! errno (ENODATA vs ENOTSUP) that GlusterFS semantics depend on.

use engine::{Errno, Result};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

fn cname(n: &str) -> Result<CString> {
    CString::new(n).map_err(|_| Errno::EINVAL)
}

fn last_errno() -> Errno {
    Errno(
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}

/// The value, or None when the inode has no such xattr.
pub fn get(path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    engine::brick_dir::xattr(path, name)
}

pub fn set(path: &Path, name: &str, value: &[u8], flags: i32) -> Result<()> {
    let (p, n) = (cpath(path)?, cname(name)?);
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    };
    if r < 0 { Err(last_errno()) } else { Ok(()) }
}

pub fn remove(path: &Path, name: &str) -> Result<()> {
    let (p, n) = (cpath(path)?, cname(name)?);
    let r = unsafe { libc::lremovexattr(p.as_ptr(), n.as_ptr()) };
    if r < 0 { Err(last_errno()) } else { Ok(()) }
}

pub fn list(path: &Path) -> Result<Vec<String>> {
    let p = cpath(path)?;
    let mut buf = vec![0u8; 1024];
    loop {
        let r = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if r >= 0 {
            buf.truncate(r as usize);
            return Ok(buf
                .split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect());
        }
        match last_errno() {
            Errno::ERANGE => {
                let size = unsafe { libc::llistxattr(p.as_ptr(), std::ptr::null_mut(), 0) };
                if size < 0 {
                    return Err(last_errno());
                }
                buf.resize(size as usize + 1, 0);
            }
            e => return Err(e),
        }
    }
}

/// `get` on an open file: works for a file whose last name is gone.
pub fn fget(fd: std::os::fd::RawFd, name: &str) -> Result<Option<Vec<u8>>> {
    let n = cname(name)?;
    let mut buf = vec![0u8; 256];
    loop {
        let r = unsafe { libc::fgetxattr(fd, n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if r >= 0 {
            buf.truncate(r as usize);
            return Ok(Some(buf));
        }
        match last_errno() {
            Errno::ENODATA => return Ok(None),
            Errno::ERANGE => {
                let size = unsafe { libc::fgetxattr(fd, n.as_ptr(), std::ptr::null_mut(), 0) };
                if size < 0 {
                    return Err(last_errno());
                }
                buf.resize(size as usize + 1, 0);
            }
            e => return Err(e),
        }
    }
}

pub fn fset(fd: std::os::fd::RawFd, name: &str, value: &[u8], flags: i32) -> Result<()> {
    let n = cname(name)?;
    let r = unsafe { libc::fsetxattr(fd, n.as_ptr(), value.as_ptr().cast(), value.len(), flags) };
    if r < 0 { Err(last_errno()) } else { Ok(()) }
}
