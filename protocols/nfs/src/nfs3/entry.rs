//! The procedures that make and remove names: CREATE, MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR,
//! RENAME and LINK.

use super::common::{Fail, MAX_PATH, Server, Target, empty_wcc, name, ok};
use crate::attr::{W, X, check, check_setattr, check_unlink, sattr};
use crate::rpc::Call;
use crate::xdr::{Put, Reader};
use bytes::BytesMut;
use engine::fop::{Errno, Gfid, Iatt, Loc, NewEntry, SetAttr, SetTime, Timespec, Xattrs};
use nfsserve::nfs::{nfsstat3, post_op_fh3};

impl Server {
    /// Where a new entry goes: the directory (writable and searchable by the caller) and name.
    async fn new_entry_target(
        &self,
        call: &Call,
        r: &mut Reader,
    ) -> Result<(Target, String), Fail> {
        let t = self.target(call, r)?;
        let n = name(r)?;
        Ok((t, n))
    }

    async fn prepare_new(&self, t: &Target, n: &str) -> Result<(), Fail> {
        t.writable()?;
        if n == "." || n == ".." {
            return Err(nfsstat3::NFS3ERR_EXIST.into());
        }
        t.check_dir(t.gfid, W | X).await?;
        Ok(())
    }

    /// The reply of CREATE, MKDIR, SYMLINK and MKNOD: the new handle and attributes.
    fn created(&self, t: &Target, ia: &Iatt) -> BytesMut {
        let mut b = ok();
        b.xdr(&post_op_fh3::handle(t.handle(ia.gfid)));
        b.xdr(&t.attrs(ia));
        b.xdr(&empty_wcc());
        b
    }

    pub(super) async fn create(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let (t, n) = self.new_entry_target(call, r).await?;
        let how = r.u32()?;
        let (a, verf) = match how {
            0 | 1 => (sattr(r)?, None),
            2 => (SetAttr::default(), Some(r.fixed(8)?)),
            _ => return Err(Fail::Garbage),
        };
        self.prepare_new(&t, &n).await?;
        let loc = Loc::child(t.gfid, n.as_str());
        let mode = a.mode.unwrap_or(0o644);
        let made = t
            .top
            .mknod(&t.ctx, &loc, &new_entry(libc::S_IFREG | mode, 0))
            .await
            .map(|(ia, _)| ia);
        let ia = match (made, how, &verf) {
            (Ok(ia), _, None) => ia,
            // EXCLUSIVE: the verifier is kept in atime and mtime (as knfsd and GlusterFS do)
            // until the client's SETATTR that follows, so a retransmitted CREATE succeeds.
            (Ok(ia), _, Some(v)) => {
                let (at, mt) = verf_times(v);
                let set = SetAttr {
                    atime: Some(SetTime::At(at)),
                    mtime: Some(SetTime::At(mt)),
                    ..Default::default()
                };
                t.top.setattr(&t.ctx, &Loc::gfid(ia.gfid), &set).await?
            }
            (Err(Errno::EEXIST), 0, _) => {
                // UNCHECKED: the existing file, truncated if asked.
                let (ia, _) = t.top.lookup(&t.ctx, &loc, &Xattrs::new()).await?;
                if !ia.is_reg() {
                    return Err(nfsstat3::NFS3ERR_EXIST.into());
                }
                match a.size {
                    Some(size) => {
                        let set = SetAttr {
                            size: Some(size),
                            ..Default::default()
                        };
                        check_setattr(&t.ctx, &ia, &set)?;
                        t.top.setattr(&t.ctx, &Loc::gfid(ia.gfid), &set).await?
                    }
                    None => ia,
                }
            }
            (Err(Errno::EEXIST), 2, Some(v)) => {
                let (ia, _) = t.top.lookup(&t.ctx, &loc, &Xattrs::new()).await?;
                let (at, mt) = verf_times(v);
                if ia.is_reg() && ia.atime == at && ia.mtime == mt {
                    ia
                } else {
                    return Err(nfsstat3::NFS3ERR_EXIST.into());
                }
            }
            (Err(e), _, _) => return Err(e.into()),
        };
        // Owner and times asked for at creation (mode went into the mknod).
        let rest = SetAttr {
            mode: None,
            size: if how == 0 {
                None
            } else {
                a.size.filter(|s| *s != 0)
            },
            ..a
        };
        let ia = if rest != SetAttr::default() && verf.is_none() {
            check_setattr(&t.ctx, &ia, &rest)?;
            t.top.setattr(&t.ctx, &Loc::gfid(ia.gfid), &rest).await?
        } else {
            ia
        };
        Ok(self.created(&t, &ia))
    }

    pub(super) async fn mkdir(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let (t, n) = self.new_entry_target(call, r).await?;
        let a = sattr(r)?;
        self.prepare_new(&t, &n).await?;
        let mode = a.mode.unwrap_or(0o755);
        let loc = Loc::child(t.gfid, n.as_str());
        let (ia, _) = t
            .top
            .mkdir(&t.ctx, &loc, &new_entry(libc::S_IFDIR | mode, 0))
            .await?;
        let ia = self.apply_owner(&t, ia, a).await?;
        Ok(self.created(&t, &ia))
    }

    /// uid/gid/times a creating call asked for beyond the mode.
    async fn apply_owner(&self, t: &Target, ia: Iatt, a: SetAttr) -> Result<Iatt, Fail> {
        let rest = SetAttr {
            mode: None,
            size: None,
            ..a
        };
        if rest == SetAttr::default() {
            return Ok(ia);
        }
        check_setattr(&t.ctx, &ia, &rest)?;
        Ok(t.top.setattr(&t.ctx, &Loc::gfid(ia.gfid), &rest).await?)
    }

    pub(super) async fn symlink(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let (t, n) = self.new_entry_target(call, r).await?;
        let a = sattr(r)?;
        let target = r.string(MAX_PATH)?;
        let target = std::str::from_utf8(&target).map_err(|_| nfsstat3::NFS3ERR_INVAL)?;
        if target.is_empty() {
            return Err(nfsstat3::NFS3ERR_INVAL.into());
        }
        self.prepare_new(&t, &n).await?;
        let loc = Loc::child(t.gfid, n.as_str());
        let (ia, _) = t
            .top
            .symlink(&t.ctx, &loc, target, &new_entry(libc::S_IFLNK | 0o777, 0))
            .await?;
        let ia = self
            .apply_owner(
                &t,
                ia,
                SetAttr {
                    atime: None,
                    mtime: None,
                    ..a
                },
            )
            .await?;
        Ok(self.created(&t, &ia))
    }

    pub(super) async fn mknod(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let (t, n) = self.new_entry_target(call, r).await?;
        let kind = r.u32()?;
        let (fmt, a, rdev) = match kind {
            3 | 4 => {
                let a = sattr(r)?;
                let (major, minor) = (r.u32()?, r.u32()?);
                let fmt = if kind == 3 {
                    libc::S_IFBLK
                } else {
                    libc::S_IFCHR
                };
                (fmt, a, libc::makedev(major, minor))
            }
            6 => (libc::S_IFSOCK, sattr(r)?, 0),
            7 => (libc::S_IFIFO, sattr(r)?, 0),
            1 | 2 | 5 => return Err(nfsstat3::NFS3ERR_BADTYPE.into()),
            _ => return Err(Fail::Garbage),
        };
        self.prepare_new(&t, &n).await?;
        if rdev != 0 && t.ctx.uid != 0 {
            return Err(nfsstat3::NFS3ERR_PERM.into());
        }
        let mode = a.mode.unwrap_or(0o644);
        let loc = Loc::child(t.gfid, n.as_str());
        let (ia, _) = t
            .top
            .mknod(&t.ctx, &loc, &new_entry(fmt | mode, rdev))
            .await?;
        let ia = self.apply_owner(&t, ia, a).await?;
        Ok(self.created(&t, &ia))
    }

    pub(super) async fn remove(
        &self,
        call: &Call,
        r: &mut Reader,
        dir: bool,
    ) -> Result<BytesMut, Fail> {
        let t = self.target(call, r)?;
        let n = name(r)?;
        t.writable()?;
        if n == "." || n == ".." {
            return Err(if dir {
                nfsstat3::NFS3ERR_INVAL
            } else {
                nfsstat3::NFS3ERR_ACCES
            }
            .into());
        }
        let loc = Loc::child(t.gfid, n.as_str());
        if t.ctx.uid != 0 {
            let d = t.stat(t.gfid).await?;
            let (child, _) = t.top.lookup(&t.ctx, &loc, &Xattrs::new()).await?;
            check_unlink(&t.ctx, &d, &child)?;
        }
        if dir {
            t.top.rmdir(&t.ctx, &loc).await?;
        } else {
            t.top.unlink(&t.ctx, &loc).await?;
        }
        let mut b = ok();
        b.xdr(&empty_wcc());
        Ok(b)
    }

    pub(super) async fn rename(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let from = self.target(call, r)?;
        let from_name = name(r)?;
        let to = self.target(call, r)?;
        let to_name = name(r)?;
        from.writable()?;
        to.writable()?;
        if from.export().volume_id != to.export().volume_id {
            return Err(nfsstat3::NFS3ERR_XDEV.into());
        }
        for n in [&from_name, &to_name] {
            if n == "." || n == ".." {
                return Err(nfsstat3::NFS3ERR_INVAL.into());
            }
        }
        let old = Loc::child(from.gfid, from_name.as_str());
        let new = Loc::child(to.gfid, to_name.as_str());
        if from.ctx.uid != 0 {
            let d = from.stat(from.gfid).await?;
            let (child, _) = from.top.lookup(&from.ctx, &old, &Xattrs::new()).await?;
            check_unlink(&from.ctx, &d, &child)?;
            let td = from.stat(to.gfid).await?;
            match from.top.lookup(&from.ctx, &new, &Xattrs::new()).await {
                Ok((victim, _)) => check_unlink(&from.ctx, &td, &victim)?,
                Err(Errno::ENOENT) => check(&from.ctx, &td, W | X)?,
                Err(e) => return Err(e.into()),
            }
        }
        from.top.rename(&from.ctx, &old, &new).await?;
        let mut b = ok();
        b.xdr(&empty_wcc());
        b.xdr(&empty_wcc());
        Ok(b)
    }

    pub(super) async fn link(&self, call: &Call, r: &mut Reader) -> Result<BytesMut, Fail> {
        let file = self.target(call, r)?;
        let dir = self.target(call, r)?;
        let n = name(r)?;
        if file.export().volume_id != dir.export().volume_id {
            return Err(nfsstat3::NFS3ERR_XDEV.into());
        }
        self.prepare_new(&dir, &n).await?;
        let ia = file.stat(file.gfid).await?;
        if ia.is_dir() {
            return Err(nfsstat3::NFS3ERR_ISDIR.into());
        }
        let ia = dir
            .top
            .link(
                &dir.ctx,
                &Loc::gfid(file.gfid),
                &Loc::child(dir.gfid, n.as_str()),
            )
            .await?;
        let mut b = ok();
        b.xdr(&file.attrs(&ia));
        b.xdr(&empty_wcc());
        Ok(b)
    }
}

fn new_entry(mode: u32, rdev: u64) -> NewEntry {
    NewEntry {
        gfid: Gfid::random(),
        mode,
        umask: 0,
        rdev,
        xattrs: Xattrs::new(),
        ..Default::default()
    }
}

fn verf_times(v: &[u8]) -> (Timespec, Timespec) {
    let a = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
    let m = u32::from_be_bytes([v[4], v[5], v[6], v[7]]);
    (
        Timespec {
            sec: i64::from(a),
            nsec: 0,
        },
        Timespec {
            sec: i64::from(m),
            nsec: 0,
        },
    )
}
