//! Entry heal (GlusterFS's afr-self-heal-entry.c): the names in a directory made equal on
//! every replica.

use super::super::changelog::{self, Changelog, TxnType};
use super::super::common::{Afr, SplitBrainChoice};
use super::common::Outcome;
use crate::fop::*;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

impl Afr {
    /// Every entry of directory `g` on replica `i`: name → attributes.
    pub(super) async fn list_dir(
        &self,
        ctx: &Ctx,
        i: usize,
        g: Gfid,
    ) -> Result<BTreeMap<String, Iatt>> {
        let fd = self.sub(i).opendir(ctx, &Loc::gfid(g)).await?;
        let mut out = BTreeMap::new();
        let mut off = 0;
        let res = loop {
            let ents = match self
                .sub(i)
                .readdirp(ctx, &fd, off, 64 * 1024, &Xattrs::new())
                .await
            {
                Ok(e) => e,
                Err(e) => break Err(e),
            };
            if ents.is_empty() {
                break Ok(());
            }
            for e in ents {
                off = e.d_off;
                if e.name == "." || e.name == ".." {
                    continue;
                }
                if let Some(ia) = e.iatt {
                    out.insert(e.name, ia);
                }
            }
        };
        self.sub(i).release(&fd).await;
        res.map(|_| out)
    }

    /// Removes `name` (a whole tree for a directory) from directory `parent` on replica `k`.
    pub(super) async fn remove_tree(
        &self,
        ctx: &Ctx,
        k: usize,
        parent: Gfid,
        name: &str,
        ia: &Iatt,
    ) -> Result<()> {
        let l = Loc::child(parent, name).with_gfid(ia.gfid);
        if !ia.is_dir() {
            return self.sub(k).unlink(ctx, &l).await.map(|_| ());
        }
        let mut stack = vec![(parent, name.to_string(), ia.gfid, false)];
        while let Some((p, n, g, expanded)) = stack.pop() {
            if expanded {
                self.sub(k)
                    .rmdir(ctx, &Loc::child(p, n.as_str()).with_gfid(g))
                    .await?;
                continue;
            }
            stack.push((p, n, g, true));
            for (cn, cia) in self.list_dir(ctx, k, g).await? {
                if cia.is_dir() {
                    stack.push((g, cn, cia.gfid, false));
                } else {
                    self.sub(k)
                        .unlink(ctx, &Loc::child(g, cn.as_str()).with_gfid(cia.gfid))
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Makes `name` in directory `parent` on replica `k` as it is on `src`, with its gfid.
    pub(super) async fn make_entry(
        &self,
        ctx: &Ctx,
        src: usize,
        k: usize,
        parent: Gfid,
        name: &str,
        ia: &Iatt,
    ) -> Result<()> {
        let l = Loc::child(parent, name);
        let c = Ctx {
            uid: ia.uid,
            gid: ia.gid,
            ..ctx.clone()
        };
        let e = NewEntry {
            gfid: ia.gfid,
            mode: if ia.is_dir() {
                ia.mode & 0o7777
            } else {
                ia.mode
            },
            umask: 0,
            rdev: ia.rdev,
            xattrs: Xattrs::new(),
            ..Default::default()
        };
        if ia.is_dir() {
            self.sub(k).mkdir(&c, &l, &e).await?;
        } else if ia.is_symlink() {
            let target = self.sub(src).readlink(ctx, &Loc::gfid(ia.gfid)).await?;
            self.sub(k).symlink(&c, &l, &target, &e).await?;
        } else if self
            .sub(k)
            .lookup(ctx, &Loc::gfid(ia.gfid), &Xattrs::new())
            .await
            .is_ok()
        {
            // Another name of an inode the replica has: a hard link.
            self.sub(k).link(ctx, &Loc::gfid(ia.gfid), &l).await?;
        } else {
            self.sub(k).mknod(&c, &l, &e).await?;
        }
        Ok(())
    }

    pub(super) async fn heal_entries_locked(
        self: &Arc<Self>,
        ctx: &Ctx,
        g: Gfid,
        choice: Option<SplitBrainChoice>,
        locked: &[bool],
        queue: &mut VecDeque<(Gfid, Option<SplitBrainChoice>)>,
    ) -> Result<Outcome> {
        let (replies, answered, c) = self
            .locked_changelog(ctx, g, TxnType::Entry, locked, Iatt::is_dir)
            .await?;
        let d = changelog::find_direction(&c, &answered).map_err(|_| Errno::ENOTCONN)?;
        // Entry split-brain is merged conservatively, as GlusterFS does: every replica is a
        // source, names missing anywhere are made, none is removed. A choice picks one.
        let (sources, remove) = if d.split_brain() {
            match choice.and_then(|ch| self.choose(ch, &replies)) {
                Some(s) => ((0..self.n()).map(|i| i == s).collect::<Vec<_>>(), true),
                None => (answered.clone(), false),
            }
        } else {
            (d.sources.clone(), true)
        };
        let mut lists: Vec<Option<BTreeMap<String, Iatt>>> = Vec::with_capacity(self.n());
        for (i, on) in answered.iter().enumerate() {
            lists.push(if *on {
                Some(self.list_dir(ctx, i, g).await?)
            } else {
                None
            });
        }
        let mut changed = false;
        // Removals first: names only stale replicas have, and names whose gfid differs.
        if remove {
            for k in (0..self.n()).filter(|k| answered[*k] && !sources[*k]) {
                let list = lists[k].clone().unwrap_or_default();
                for (name, ia) in &list {
                    let in_source = (0..self.n())
                        .filter(|s| sources[*s])
                        .find_map(|s| lists[s].as_ref().and_then(|l| l.get(name)));
                    if in_source.is_some_and(|s| s.gfid == ia.gfid) {
                        continue;
                    }
                    tracing::info!(xlator = %self.base.name, dir = %g, name = %name, replica = %self.names[k], "entry heal: removing a stale name");
                    self.remove_tree(ctx, k, g, name, ia).await?;
                    if let Some(l) = lists[k].as_mut() {
                        l.remove(name);
                    }
                    changed = true;
                }
            }
        }
        // Then what the sources have and a replica lacks.
        for s in (0..self.n()).filter(|s| sources[*s]) {
            let Some(list) = lists[s].clone() else {
                continue;
            };
            for (name, ia) in &list {
                for k in (0..self.n()).filter(|k| *k != s && answered[*k]) {
                    if lists[k].as_ref().is_some_and(|l| l.contains_key(name)) {
                        continue;
                    }
                    tracing::info!(xlator = %self.base.name, dir = %g, name = %name, replica = %self.names[k], "entry heal: making a missing name");
                    match self.make_entry(ctx, s, k, g, name, ia).await {
                        Ok(()) => {}
                        Err(Errno::EEXIST) => {}
                        Err(e) => return Err(e),
                    }
                    if let Some(l) = lists[k].as_mut() {
                        l.insert(name.clone(), ia.clone());
                    }
                    // The new copy is empty: the source blames it for data and metadata (and
                    // entries for a directory) so the heal that follows fills it in.
                    // (GlusterFS's new-entry marks; a directory's data counter asks for a
                    // full crawl of it.)
                    let blame = if ia.is_dir() {
                        [1, 1, 1]
                    } else if ia.is_symlink() {
                        [0, 1, 0]
                    } else {
                        [1, 1, 0]
                    };
                    let x = Xattrs::from([(self.keys[k].clone(), changelog::encode(blame))]);
                    let _ = self
                        .sub(s)
                        .xattrop(ctx, &Loc::gfid(ia.gfid), XattropOp::AddArray, &x)
                        .await;
                    queue.push_back((ia.gfid, None));
                    changed = true;
                }
            }
        }
        if changed {
            // Names made or removed here moved no times on the sinks.
            self.converge_times(ctx, g, &replies, &answered, None).await;
        }
        self.clear_marks(ctx, g, TxnType::Entry, &c, &answered)
            .await;
        // A directory's data counter is GlusterFS's "needs a full crawl" flag, which a full
        // entry heal like this one satisfies.
        let xs: Vec<Option<&Xattrs>> = replies.iter().map(|r| r.as_ref().map(|r| &r.1)).collect();
        let full_crawl = Changelog::extract(&xs, &self.keys, TxnType::Data);
        if full_crawl.needs_heal() {
            self.clear_marks(ctx, g, TxnType::Data, &full_crawl, &answered)
                .await;
        }
        Ok(if changed || c.needs_heal() || full_crawl.needs_heal() {
            Outcome::Healed
        } else {
            Outcome::Clean
        })
    }
}
