//! Attributes, errors and permissions between the engine and NFSv3.

use crate::xdr::{Dec, Garbage, Reader};
use engine::fop::{Ctx, Errno, Iatt, SetAttr, SetTime, Timespec};
use nfsserve::nfs::{fattr3, ftype3, nfsstat3, nfstime3, specdata3, wcc_attr};

/// `fsid` reported for every file of a volume: from its id, so it is stable across restarts.
pub fn fattr(ia: &Iatt, fsid: u64) -> fattr3 {
    let ftype = match ia.file_type() {
        libc::S_IFDIR => ftype3::NF3DIR,
        libc::S_IFLNK => ftype3::NF3LNK,
        libc::S_IFBLK => ftype3::NF3BLK,
        libc::S_IFCHR => ftype3::NF3CHR,
        libc::S_IFSOCK => ftype3::NF3SOCK,
        libc::S_IFIFO => ftype3::NF3FIFO,
        _ => ftype3::NF3REG,
    };
    fattr3 {
        ftype,
        mode: ia.mode & 0o7777,
        nlink: ia.nlink,
        uid: ia.uid,
        gid: ia.gid,
        size: ia.size,
        used: ia.blocks * 512,
        rdev: specdata3 {
            specdata1: libc::major(ia.rdev as libc::dev_t),
            specdata2: libc::minor(ia.rdev as libc::dev_t),
        },
        fsid,
        // As the GlusterFS FUSE client does: the low 64 bits of the gfid.
        fileid: ia.gfid.ino(),
        atime: time(ia.atime),
        mtime: time(ia.mtime),
        ctime: time(ia.ctime),
    }
}

pub fn time(t: Timespec) -> nfstime3 {
    nfstime3 {
        seconds: t.sec.clamp(0, u32::MAX as i64) as u32,
        nseconds: t.nsec,
    }
}

pub fn wcc(ia: &Iatt) -> wcc_attr {
    wcc_attr {
        size: ia.size,
        mtime: time(ia.mtime),
        ctime: time(ia.ctime),
    }
}

/// errno → NFSv3 status (RFC 1813 §2.6), exactly where one exists.
pub fn status(e: Errno) -> nfsstat3 {
    use nfsstat3::*;
    match e.0 {
        libc::EPERM => NFS3ERR_PERM,
        libc::ENOENT => NFS3ERR_NOENT,
        libc::ENXIO => NFS3ERR_NXIO,
        libc::EACCES => NFS3ERR_ACCES,
        libc::EEXIST => NFS3ERR_EXIST,
        libc::EXDEV => NFS3ERR_XDEV,
        libc::ENODEV => NFS3ERR_NODEV,
        libc::ENOTDIR => NFS3ERR_NOTDIR,
        libc::EISDIR => NFS3ERR_ISDIR,
        libc::EINVAL => NFS3ERR_INVAL,
        libc::EFBIG => NFS3ERR_FBIG,
        libc::ENOSPC => NFS3ERR_NOSPC,
        libc::EROFS => NFS3ERR_ROFS,
        libc::EMLINK => NFS3ERR_MLINK,
        libc::ENAMETOOLONG => NFS3ERR_NAMETOOLONG,
        libc::ENOTEMPTY => NFS3ERR_NOTEMPTY,
        libc::EDQUOT => NFS3ERR_DQUOT,
        libc::ESTALE => NFS3ERR_STALE,
        libc::ENOTSUP | libc::ENOSYS => NFS3ERR_NOTSUPP,
        // A brick that is down or busy: the client retries (JUKEBOX) rather than failing.
        libc::ENOTCONN | libc::EAGAIN | libc::ETIMEDOUT => NFS3ERR_JUKEBOX,
        libc::EILSEQ => NFS3ERR_INVAL,
        _ => NFS3ERR_IO,
    }
}

pub const R: u32 = 4;
pub const W: u32 = 2;
pub const X: u32 = 1;

/// Whether `ctx` may do `want` (a mask of R, W, X) to `ia`, as the kernel decides it: root may
/// do anything but execute a file nobody may execute; otherwise the owner, group or other bits.
pub fn permits(ctx: &Ctx, ia: &Iatt, want: u32) -> bool {
    if ctx.uid == 0 {
        return want & X == 0 || ia.is_dir() || ia.mode & 0o111 != 0;
    }
    let bits = if ctx.uid == ia.uid {
        (ia.mode >> 6) & 7
    } else if ctx.gid == ia.gid || ctx.groups.contains(&ia.gid) {
        (ia.mode >> 3) & 7
    } else {
        ia.mode & 7
    };
    bits & want == want
}

pub fn check(ctx: &Ctx, ia: &Iatt, want: u32) -> Result<(), Errno> {
    if permits(ctx, ia, want) {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

/// Removing or renaming `child` out of `dir`: write and search on the directory, and with the
/// sticky bit only the owner of either (or root) may.
pub fn check_unlink(ctx: &Ctx, dir: &Iatt, child: &Iatt) -> Result<(), Errno> {
    check(ctx, dir, W | X)?;
    if dir.mode & libc::S_ISVTX != 0 && ctx.uid != 0 && ctx.uid != dir.uid && ctx.uid != child.uid {
        return Err(Errno::EACCES);
    }
    Ok(())
}

/// Who may change which attributes (chmod, chown, truncate, utimes), as POSIX says.
pub fn check_setattr(ctx: &Ctx, ia: &Iatt, a: &SetAttr) -> Result<(), Errno> {
    let owner = ctx.uid == 0 || ctx.uid == ia.uid;
    if a.mode.is_some() && !owner {
        return Err(Errno::EPERM);
    }
    if let Some(uid) = a.uid
        && uid != ia.uid
        && ctx.uid != 0
    {
        return Err(Errno::EPERM);
    }
    if let Some(gid) = a.gid
        && gid != ia.gid
        && ctx.uid != 0
        && !(ctx.uid == ia.uid && (ctx.gid == gid || ctx.groups.contains(&gid)))
    {
        return Err(Errno::EPERM);
    }
    if a.size.is_some() {
        if ia.is_dir() {
            return Err(Errno::EISDIR);
        }
        // The owner may truncate without the write bit, as knfsd allows: the client may have
        // opened the file for writing before a chmod took the bit away.
        if !owner {
            check(ctx, ia, W)?;
        }
    }
    for t in [a.atime, a.mtime].into_iter().flatten() {
        match t {
            SetTime::At(_) if !owner => return Err(Errno::EPERM),
            SetTime::Now if !owner && !permits(ctx, ia, W) => return Err(Errno::EACCES),
            _ => {}
        }
    }
    Ok(())
}

/// sattr3 (RFC 1813 §2.5): each field is a switch on whether it is set.
pub fn sattr(r: &mut Reader) -> Dec<SetAttr> {
    let mut a = SetAttr::default();
    if r.bool()? {
        a.mode = Some(r.u32()? & 0o7777);
    }
    if r.bool()? {
        a.uid = Some(r.u32()?);
    }
    if r.bool()? {
        a.gid = Some(r.u32()?);
    }
    if r.bool()? {
        a.size = Some(r.u64()?);
    }
    a.atime = set_time(r)?;
    a.mtime = set_time(r)?;
    Ok(a)
}

fn set_time(r: &mut Reader) -> Dec<Option<SetTime>> {
    Ok(match r.u32()? {
        0 => None,
        1 => Some(SetTime::Now),
        2 => {
            let sec = r.u32()?;
            let nsec = r.u32()?;
            if nsec >= 1_000_000_000 {
                return Err(Garbage);
            }
            Some(SetTime::At(Timespec {
                sec: i64::from(sec),
                nsec,
            }))
        }
        _ => return Err(Garbage),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(mode: u32, uid: u32, gid: u32) -> Iatt {
        Iatt {
            mode: libc::S_IFREG | mode,
            uid,
            gid,
            ..Default::default()
        }
    }

    fn user(uid: u32, gid: u32, groups: &[u32]) -> Ctx {
        Ctx {
            uid,
            gid,
            groups: groups.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn owner_group_other_and_root() {
        let f = file(0o640, 1000, 100);
        assert!(permits(&user(1000, 1, &[]), &f, R | W));
        assert!(permits(&user(2000, 100, &[]), &f, R));
        assert!(!permits(&user(2000, 100, &[]), &f, W));
        assert!(permits(&user(2000, 5, &[100]), &f, R));
        assert!(!permits(&user(2000, 5, &[]), &f, R));
        assert!(permits(&user(0, 0, &[]), &f, R | W));
        assert!(!permits(&user(0, 0, &[]), &f, X));
    }

    #[test]
    fn sticky_directories_protect_other_users_files() {
        let dir = Iatt {
            mode: libc::S_IFDIR | 0o1777,
            ..Default::default()
        };
        let theirs = file(0o644, 1000, 1000);
        assert_eq!(
            check_unlink(&user(2000, 2000, &[]), &dir, &theirs),
            Err(Errno::EACCES)
        );
        assert_eq!(check_unlink(&user(1000, 1000, &[]), &dir, &theirs), Ok(()));
    }

    #[test]
    fn only_root_gives_files_away() {
        let f = file(0o644, 1000, 1000);
        let give = SetAttr {
            uid: Some(2000),
            ..Default::default()
        };
        assert_eq!(
            check_setattr(&user(1000, 1000, &[]), &f, &give),
            Err(Errno::EPERM)
        );
        assert_eq!(check_setattr(&user(0, 0, &[]), &f, &give), Ok(()));
        let chgrp = SetAttr {
            gid: Some(50),
            ..Default::default()
        };
        assert_eq!(check_setattr(&user(1000, 1000, &[50]), &f, &chgrp), Ok(()));
        assert_eq!(
            check_setattr(&user(1000, 1000, &[]), &f, &chgrp),
            Err(Errno::EPERM)
        );
    }
}
