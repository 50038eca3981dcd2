//! Conversions between the engine's attributes and fuser's.

use engine::{Iatt, Timespec};
use fuser::{FileAttr, FileType, INodeNo};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn to_system_time(t: Timespec) -> SystemTime {
    if t.sec >= 0 {
        UNIX_EPOCH + Duration::new(t.sec as u64, t.nsec)
    } else {
        UNIX_EPOCH - Duration::new(t.sec.unsigned_abs(), 0) + Duration::from_nanos(t.nsec as u64)
    }
}

pub fn system_time(t: SystemTime) -> Timespec {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Timespec {
            sec: d.as_secs() as i64,
            nsec: d.subsec_nanos(),
        },
        Err(e) => {
            let d = e.duration();
            Timespec {
                sec: -(d.as_secs() as i64),
                nsec: 0,
            }
        }
    }
}

pub fn kind_of_mode(mode: u32) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFSOCK => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

pub fn kind_of_dtype(d: u8) -> FileType {
    match d {
        libc::DT_DIR => FileType::Directory,
        libc::DT_LNK => FileType::Symlink,
        libc::DT_CHR => FileType::CharDevice,
        libc::DT_BLK => FileType::BlockDevice,
        libc::DT_FIFO => FileType::NamedPipe,
        libc::DT_SOCK => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

pub fn file_attr(ia: &Iatt) -> FileAttr {
    FileAttr {
        ino: INodeNo(ia.gfid.ino()),
        size: ia.size,
        blocks: ia.blocks,
        atime: to_system_time(ia.atime),
        mtime: to_system_time(ia.mtime),
        ctime: to_system_time(ia.ctime),
        crtime: to_system_time(ia.mtime),
        kind: kind_of_mode(ia.mode),
        perm: (ia.mode & 0o7777) as u16,
        nlink: ia.nlink,
        uid: ia.uid,
        gid: ia.gid,
        rdev: ia.rdev as u32,
        blksize: ia.blksize.max(512),
        flags: 0,
    }
}
