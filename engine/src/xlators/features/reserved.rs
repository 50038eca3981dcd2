//! `features/reserved`: names a frontend keeps for its own use on the volume (a staging
//! directory at the root, in-progress files next to their final names) are invisible to every
//! other caller. Such a name does not exist for them (lookup, unlink, rmdir: ENOENT; listings
//! skip it) and cannot be made or renamed to or from (EACCES), the way the NFS frontend
//! refused them before this translator. A caller whose `Ctx::sees_reserved` is set passes
//! through untouched. The volfile names what is reserved; the engine knows no frontend.

use crate::fop::*;
use crate::options::{OptKind, OptionSpec};
use crate::registry::XlatorType;
use crate::xlator::{Xlator, XlatorBase};
use async_trait::async_trait;
use std::sync::Arc;

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new(
        "root-names",
        OptKind::List,
        None,
        "names reserved in the volume's root directory",
    ),
    OptionSpec::new(
        "dot-infix",
        OptKind::Str,
        None,
        "a name that starts with '.' and contains this is reserved in every directory",
    ),
];

pub fn xlator_type() -> XlatorType {
    XlatorType {
        type_name: "features/reserved",
        options: OPTIONS,
        min_children: 1,
        max_children: 1,
        build: Arc::new(|base, o| {
            let root_names = o
                .get("root-names")
                .unwrap_or("")
                .split([' ', ','])
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
            let dot_infix = o
                .get("dot-infix")
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            Ok(Arc::new(Reserved {
                base,
                names: Names {
                    root_names,
                    dot_infix,
                },
            }))
        }),
    }
}

/// What the volfile reserves.
#[derive(Debug, Default)]
pub struct Names {
    pub root_names: Vec<String>,
    pub dot_infix: Option<String>,
}

impl Names {
    /// Whether `name` in directory `dir` is reserved.
    pub fn reserved(&self, dir: Gfid, name: &str) -> bool {
        (dir.is_root() && self.root_names.iter().any(|n| n == name))
            || self
                .dot_infix
                .as_deref()
                .is_some_and(|i| name.starts_with('.') && name.contains(i))
    }
}

pub struct Reserved {
    base: XlatorBase,
    names: Names,
}

impl Reserved {
    /// Whether `loc` names a reserved entry that `ctx` may not see.
    fn hides(&self, ctx: &Ctx, loc: &Loc) -> bool {
        !ctx.sees_reserved
            && matches!((loc.parent, loc.name.as_deref()), (Some(p), Some(n)) if self.names.reserved(p, n))
    }

    /// EACCES when `loc` would make or move a reserved name.
    fn refuse(&self, ctx: &Ctx, loc: &Loc) -> Result<()> {
        if self.hides(ctx, loc) {
            Err(Errno::EACCES)
        } else {
            Ok(())
        }
    }

    /// ENOENT when `loc` names a reserved entry.
    fn absent(&self, ctx: &Ctx, loc: &Loc) -> Result<()> {
        if self.hides(ctx, loc) {
            Err(Errno::ENOENT)
        } else {
            Ok(())
        }
    }

    /// The visible entries of a batch; None when it held only reserved ones (an empty answer
    /// would end the listing early), with `offset` moved past them to ask again.
    fn filter(
        &self,
        ctx: &Ctx,
        dir: Gfid,
        offset: &mut u64,
        mut ents: Vec<Dirent>,
    ) -> Option<Vec<Dirent>> {
        if ctx.sees_reserved || ents.is_empty() {
            return Some(ents);
        }
        let last = ents.last().map(|e| e.d_off);
        ents.retain(|e| !self.names.reserved(dir, &e.name));
        match last {
            Some(next) if ents.is_empty() => {
                *offset = next;
                None
            }
            _ => Some(ents),
        }
    }
}

#[async_trait]
impl Xlator for Reserved {
    fn base(&self) -> &XlatorBase {
        &self.base
    }

    async fn lookup(&self, ctx: &Ctx, loc: &Loc, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        self.absent(ctx, loc)?;
        self.base.first_child()?.lookup(ctx, loc, want).await
    }

    async fn create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt, PostParent)> {
        self.refuse(ctx, loc)?;
        self.base
            .first_child()?
            .create(ctx, loc, flags, entry)
            .await
    }

    async fn mkdir(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        self.refuse(ctx, loc)?;
        self.base.first_child()?.mkdir(ctx, loc, entry).await
    }

    async fn mknod(&self, ctx: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        self.refuse(ctx, loc)?;
        self.base.first_child()?.mknod(ctx, loc, entry).await
    }

    async fn symlink(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        target: &str,
        entry: &NewEntry,
    ) -> Result<(Iatt, PostParent)> {
        self.refuse(ctx, loc)?;
        self.base
            .first_child()?
            .symlink(ctx, loc, target, entry)
            .await
    }

    async fn link(&self, ctx: &Ctx, oldloc: &Loc, newloc: &Loc) -> Result<Iatt> {
        self.refuse(ctx, newloc)?;
        self.base.first_child()?.link(ctx, oldloc, newloc).await
    }

    async fn unlink(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        self.absent(ctx, loc)?;
        self.base.first_child()?.unlink(ctx, loc).await
    }

    async fn rmdir(&self, ctx: &Ctx, loc: &Loc) -> Result<PostParent> {
        self.absent(ctx, loc)?;
        self.base.first_child()?.rmdir(ctx, loc).await
    }

    async fn rename(
        &self,
        ctx: &Ctx,
        oldloc: &Loc,
        newloc: &Loc,
    ) -> Result<(Iatt, PostParent, PostParent)> {
        self.refuse(ctx, oldloc)?;
        self.refuse(ctx, newloc)?;
        self.base.first_child()?.rename(ctx, oldloc, newloc).await
    }

    async fn readdir(&self, ctx: &Ctx, fd: &FdRef, offset: u64, size: u32) -> Result<Vec<Dirent>> {
        let child = self.base.first_child()?;
        let mut offset = offset;
        loop {
            let ents = child.readdir(ctx, fd, offset, size).await?;
            if let Some(next) = self.filter(ctx, fd.gfid, &mut offset, ents) {
                return Ok(next);
            }
        }
    }

    async fn readdirp(
        &self,
        ctx: &Ctx,
        fd: &FdRef,
        offset: u64,
        size: u32,
        want: &Xattrs,
    ) -> Result<Vec<Dirent>> {
        let child = self.base.first_child()?;
        let mut offset = offset;
        loop {
            let ents = child.readdirp(ctx, fd, offset, size, want).await?;
            if let Some(next) = self.filter(ctx, fd.gfid, &mut offset, ents) {
                return Ok(next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserves_root_names_and_dot_infix_names() {
        let n = Names {
            root_names: vec![".stage".into()],
            dot_infix: Some(".tmp-".into()),
        };
        let dir = Gfid([7; 16]);
        assert!(n.reserved(Gfid::ROOT, ".stage"));
        assert!(!n.reserved(dir, ".stage"));
        assert!(n.reserved(dir, ".a.tmp-1"));
        assert!(n.reserved(Gfid::ROOT, ".a.tmp-1"));
        assert!(!n.reserved(dir, "a.tmp-1"));
        assert!(!n.reserved(dir, "plain"));
        assert!(!Names::default().reserved(Gfid::ROOT, ""));
    }
}
