//! The inode table: inode numbers to gfids and the names they were looked up by (for locs
//! and paths), with the lookup counts the kernel hands back in `forget`.

use crate::types::{Inner, Inode};
use engine::{Errno, Gfid, Iatt, Loc, Result};

impl Inner {
    pub(crate) fn gfid(&self, ino: u64) -> Result<Gfid> {
        self.inodes.get(&ino).map(|i| i.gfid).ok_or(Errno::ESTALE)
    }

    pub(crate) fn path(&self, ino: u64) -> Option<String> {
        let mut parts = Vec::new();
        let mut cur = ino;
        for _ in 0..4096 {
            if cur == 1 {
                parts.reverse();
                return Some(format!("/{}", parts.join("/")));
            }
            let i = self.inodes.get(&cur)?;
            parts.push(i.name.clone());
            cur = i.parent;
        }
        None
    }

    pub(crate) fn child_loc(&self, parent: u64, name: &str) -> Result<Loc> {
        let pg = self.gfid(parent)?;
        let mut loc = Loc::child(pg, name);
        if let Some(p) = self.path(parent) {
            loc.path = Some(if p == "/" {
                format!("/{name}")
            } else {
                format!("{p}/{name}")
            });
        }
        Ok(loc)
    }

    pub(crate) fn loc(&self, ino: u64) -> Result<Loc> {
        let g = self.gfid(ino)?;
        let i = self.inodes.get(&ino).ok_or(Errno::ESTALE)?;
        if ino == 1 {
            return Ok(Loc::root());
        }
        let mut l = Loc::gfid(g);
        if let Some(pg) = self.inodes.get(&i.parent).map(|p| p.gfid) {
            l.parent = Some(pg);
            l.name = Some(i.name.clone());
        }
        drop(i);
        l.path = self.path(ino);
        // A named loc is resolved by name on the brick; for inode fops the gfid is enough and
        // survives renames by other clients.
        Ok(Loc {
            parent: None,
            name: None,
            ..l
        })
    }

    /// Records a lookup handed to the kernel.
    pub(crate) fn remember(&self, parent: u64, name: &str, ia: &Iatt) -> u64 {
        let ino = ia.gfid.ino();
        let mut e = self.inodes.entry(ino).or_insert_with(|| Inode {
            gfid: ia.gfid,
            parent,
            name: name.to_string(),
            nlookup: 0,
        });
        e.gfid = ia.gfid;
        if ino != 1 {
            e.parent = parent;
            e.name = name.to_string();
        }
        e.nlookup += 1;
        ino
    }

    pub(crate) fn forget(&self, ino: u64, n: u64) {
        if ino == 1 {
            return;
        }
        let gone = match self.inodes.get_mut(&ino) {
            Some(mut i) => {
                i.nlookup = i.nlookup.saturating_sub(n);
                i.nlookup == 0
            }
            None => false,
        };
        if gone {
            self.inodes.remove_if(&ino, |_, i| i.nlookup == 0);
        }
    }
}
