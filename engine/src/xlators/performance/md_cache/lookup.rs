//! Lookups from memory: the attributes, and the xattrs under the prefixes of
//! `xattr-cache-list` (GlusterFS's option of that name) that a lookup asks for. The whole set
//! under a prefix is kept with the inode's attributes, so a frontend that reads its own
//! settings from a directory's xattrs on every request asks the bricks once. It is kept as any
//! cached xattr is: our own setxattr or removexattr drops it, another client's comes as an
//! upcall, and so does the cache's timeout.

use super::{MdCache, Ticket};
use crate::fop::{Ctx, Errno, Gfid, Iatt, Loc, Result, Xattrs};

impl MdCache {
    /// The prefixes `want` asks for, when it asks for nothing but whole `xattr-cache-list`
    /// prefixes (`PREFIX*`); None otherwise (the lookup then goes below as it is).
    pub(super) fn prefixes_of(&self, want: &Xattrs) -> Option<Vec<String>> {
        want.keys()
            .map(|k| {
                let p = k.strip_suffix('*')?;
                self.xattr_prefixes
                    .iter()
                    .any(|c| c == p)
                    .then(|| p.to_string())
            })
            .collect()
    }

    fn cached_prefixed(&self, ctx: &Ctx, g: &Gfid, prefixes: &[String]) -> Option<(Iatt, Xattrs)> {
        let ia = self.known_iatt(g, ctx.attrs_may_lag)?;
        let m = self.inodes.get(g)?;
        let mut out = Xattrs::new();
        for p in prefixes {
            let (_, set, at) = m.prefixed.iter().find(|(q, _, _)| q == p)?;
            if !self.fresh(*at) {
                return None;
            }
            out.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Some((ia, out))
    }

    fn fill_prefixed(&self, t: Ticket, g: Gfid, prefixes: &[String], x: &Xattrs) {
        if prefixes.is_empty() {
            return;
        }
        if self.fill(t, &[g], |s| {
            let mut e = s.inodes.entry(g).or_default();
            for p in prefixes {
                let set: Xattrs = x
                    .iter()
                    .filter(|(k, _)| k.starts_with(p.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                e.prefixed.retain(|(q, _, _)| q != p);
                e.prefixed.push((p.clone(), set, t.at));
            }
        }) && !self.clean(t, &[g])
        {
            self.inodes.remove(&g);
        }
    }

    /// A lookup answered from memory when the name, the attributes and every prefix asked for
    /// are known there; else asked below, and what it says kept.
    pub(super) async fn lookup_cached(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        want: &Xattrs,
        prefixes: &[String],
    ) -> Result<(Iatt, Xattrs)> {
        let named = loc.parent.zip(loc.name.as_deref());
        let known = match named {
            Some((p, n)) => match self.cached_name(p, n) {
                Some(None) => {
                    self.hit();
                    return Err(Errno::ENOENT);
                }
                Some(Some(g)) if loc.gfid.is_none_or(|lg| lg == g) => Some(g),
                _ => None,
            },
            None => loc.gfid,
        };
        if let Some(hit) = known.and_then(|g| self.cached_prefixed(ctx, &g, prefixes)) {
            self.hit();
            return Ok(hit);
        }
        self.miss();
        let t = self.begin();
        let r = self.base.first_child()?.lookup(ctx, loc, want).await;
        match (&r, named) {
            (Ok((ia, x)), _) => {
                self.fill_iatt(t, ia);
                self.fill_prefixed(t, ia.gfid, prefixes, x);
                if let Some((p, n)) = named {
                    self.fill_name(t, p, n, Some(ia.gfid));
                }
            }
            (Err(e), Some((p, n))) if *e == Errno::ENOENT => self.fill_name(t, p, n, None),
            _ => {}
        }
        r
    }
}
