//! Our own changes of names: the new inode and name are known, and so are the directory's
//! attributes after the change. The bricks answer create, mkdir, mknod, symlink, unlink,
//! rmdir and rename with the parents' attributes after the change (GlusterFS's
//! `postparent`), and they are kept in place of the ones the change made stale: the kernel
//! checks a directory's attributes after each change in it, and an NFS client looks the
//! directory up before each remove, so without them every create and every delete cost a
//! round trip to each subvolume more.

use super::{MdCache, Ticket};
use crate::fop::{Gfid, Iatt, Loc, NewEntry, PostParent, Result, Timespec};

/// The new inode and the parent's attributes of a mkdir, mknod or symlink, apart.
pub(super) fn split(r: &Result<(Iatt, PostParent)>) -> (Result<Iatt>, PostParent) {
    match r {
        Ok((ia, parent)) => (Ok(ia.clone()), parent.clone()),
        Err(e) => (Err(*e), None),
    }
}

fn later(a: Timespec, b: Timespec) -> Timespec {
    if (a.sec, a.nsec) >= (b.sec, b.nsec) {
        a
    } else {
        b
    }
}

/// What the parent is after the change: as the bricks said, with no time older than was
/// known before (under distribute the reply is of the parent's copies the change touched,
/// and another copy may hold a later time of an earlier change).
pub(super) fn merged(before: &Iatt, after: &Iatt) -> Iatt {
    let mut ia = after.clone();
    ia.mtime = later(after.mtime, before.mtime);
    ia.ctime = later(after.ctime, before.ctime);
    ia.atime = later(after.atime, before.atime);
    ia
}

impl MdCache {
    /// The parent's attributes as known before our change of its names.
    pub(super) fn parent_before(&self, p: Option<Gfid>) -> Option<Iatt> {
        self.cached_iatt(&p?)
    }

    /// After our change `e` of `p`'s names, which began at `t`: keeps the parent's attributes
    /// the bricks returned, when they were known before and nothing else changed the parent
    /// since `t` (another change of ours in it, an upcall); else they stay dropped.
    pub(super) fn settle_parent(
        &self,
        t: Ticket,
        e: u64,
        before: Option<Iatt>,
        after: &PostParent,
    ) {
        let (Some(before), Some(after)) = (before, after) else {
            return;
        };
        if before.gfid != after.gfid {
            return;
        }
        self.fill_iatt(Ticket { own: Some(e), ..t }, &merged(&before, after));
    }

    /// After our unlink or rmdir of `loc`, which began at `t`, of the inode `victim`.
    pub(super) fn removed(
        &self,
        t: Ticket,
        loc: &Loc,
        victim: Option<Gfid>,
        r: &Result<PostParent>,
    ) {
        let (p, n) = (
            loc.parent.unwrap_or_default(),
            loc.name.as_deref().unwrap_or(""),
        );
        let before = self.parent_before(loc.parent);
        let e = self.changed(victim.as_slice(), &[(p, n)]);
        if let Ok(after) = r {
            self.settle_parent(t, e, before, after);
        }
        self.after_remove(p, r);
    }

    /// A file this client just made has no security.capability unless its create set one:
    /// only a setxattr adds it, and that goes through here or comes as an upcall. Known, it
    /// spares the kernel's getxattr before the first write a round trip.
    pub(super) fn created_file(
        &self,
        t: Ticket,
        loc: &Loc,
        r: &Result<Iatt>,
        entry: &NewEntry,
        parent: &PostParent,
    ) {
        const CAPABILITY: &str = "security.capability";
        let e = self.created(t, loc, r, None, parent);
        if let Ok(ia) = r
            && ia.is_reg()
            && self.is_cached_xattr(CAPABILITY)
            && !entry.xattrs.contains_key(CAPABILITY)
        {
            // Nothing but the create itself may have changed the new inode since.
            self.fill_xattr(Ticket { own: Some(e), ..t }, ia.gfid, CAPABILITY, None);
        }
    }

    /// The new inode of a create-like fop: its parent's names and attributes change, and
    /// the new one is known. Returns the count of this change.
    pub(super) fn created(
        &self,
        t: Ticket,
        loc: &Loc,
        r: &Result<Iatt>,
        also: Option<Gfid>,
        parent: &PostParent,
    ) -> u64 {
        let mut inodes: Vec<Gfid> = also.into_iter().collect();
        if let Ok(ia) = r {
            inodes.push(ia.gfid);
        }
        let (Some(p), Some(n)) = (loc.parent, loc.name.as_deref()) else {
            return self.changed(&inodes, &[]);
        };
        let before = self.parent_before(Some(p));
        let e = self.changed(&inodes, &[(p, n)]);
        if let Ok(ia) = r {
            self.settle(t, e, ia);
            self.settle_name(t, e, p, n, ia.gfid);
            self.settle_parent(t, e, before, parent);
        }
        self.after_create(p, n, e, r);
        e
    }

    /// After our rename (begun at `t`) of `moved` from `locs.0` to `locs.1`, replacing
    /// `replaced`.
    pub(super) fn renamed(
        &self,
        t: Ticket,
        (oldloc, newloc): (&Loc, &Loc),
        moved: Option<Gfid>,
        replaced: Option<Gfid>,
        r: &Result<(Iatt, PostParent, PostParent)>,
    ) {
        let mut inodes: Vec<Gfid> = moved.into_iter().chain(replaced).collect();
        if let Ok((ia, _, _)) = r {
            inodes.push(ia.gfid);
        }
        let (op, on) = (
            oldloc.parent.unwrap_or_default(),
            oldloc.name.as_deref().unwrap_or(""),
        );
        let (np, nn) = (
            newloc.parent.unwrap_or_default(),
            newloc.name.as_deref().unwrap_or(""),
        );
        let before = (self.parent_before(Some(op)), self.parent_before(Some(np)));
        let e = self.changed(&inodes, &[(op, on), (np, nn)]);
        if let Ok((_, old_parent, new_parent)) = r {
            self.settle_parent(t, e, before.1, new_parent);
            if op != np {
                self.settle_parent(t, e, before.0, old_parent);
            }
        }
        // The new name is not kept here: its directory's names are no longer all known.
        self.complete.remove(&op);
        self.complete.remove(&np);
        if let Some(v) = replaced {
            self.invalidate_dir(v);
        }
    }
}
