//! `features/index`: keeps a brick's heal indices in step with AFR's changelogs, as
//! GlusterFS's index translator does, so a self-heal daemon finds what needs healing by
//! listing a directory instead of crawling the brick.
//!
//! After every `xattrop` with add-array semantics (AFR's pre-op and post-op), the resulting
//! values decide:
//! - keys on the pending watchlist (`trusted.afr.<vol>-client-N`): any non-zero value puts the
//!   inode's gfid in `.glusterfs/indices/xattrop`, all zero takes it out;
//! - keys on the dirty watchlist (`trusted.afr.dirty`): the same for `.glusterfs/indices/dirty`.
//!
//! An index entry is a hard link named by the gfid to a base file `xattrop-<uuid>` (or
//! `dirty-<uuid>`) in the same directory; a base file that reaches the file system's link
//! limit is replaced by a new one. GlusterFS 10's self-heal daemon reads the same layout.

use async_trait::async_trait;
use engine::options::{OptKind, OptionSpec};
use engine::registry::XlatorType;
use engine::*;
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const XATTROP_DIR: &str = "xattrop";
pub const DIRTY_DIR: &str = "dirty";

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new(
        "index-base",
        OptKind::Str,
        None,
        "the brick's .glusterfs/indices directory",
    ),
    OptionSpec::new(
        "xattrop-pending-watchlist",
        OptKind::Str,
        Some("trusted.afr."),
        "comma-separated key prefixes whose non-zero values put the inode in indices/xattrop",
    ),
    OptionSpec::new(
        "xattrop-dirty-watchlist",
        OptKind::Str,
        Some("trusted.afr.dirty"),
        "comma-separated keys whose non-zero values put the inode in indices/dirty",
    ),
];

pub fn xlator_type() -> XlatorType {
    XlatorType {
        type_name: "features/index",
        options: OPTIONS,
        min_children: 1,
        max_children: 1,
        build: Arc::new(|base, o| {
            let dir = o
                .get("index-base")
                .ok_or_else(|| "features/index needs option index-base".to_string())?;
            let list = |k: &str, default: &str| -> Vec<String> {
                o.get(k)
                    .unwrap_or(default)
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            };
            Ok(Arc::new(Index::new(
                base,
                PathBuf::from(dir),
                list("xattrop-pending-watchlist", "trusted.afr."),
                list("xattrop-dirty-watchlist", "trusted.afr.dirty"),
            )))
        }),
    }
}

pub struct Index {
    base: XlatorBase,
    state: Arc<IndexState>,
}

/// What the index's file work needs, shared with the blocking threads that do it.
struct IndexState {
    dir: PathBuf,
    pending: Vec<String>,
    dirty: Vec<String>,
    /// The current base file of each index directory (`xattrop-<uuid>`), made on first use.
    bases: Mutex<[Option<String>; 2]>,
}

/// Which index a key feeds, if any.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Watch {
    Pending,
    Dirty,
}

impl Watch {
    fn subdir(self) -> &'static str {
        match self {
            Watch::Pending => XATTROP_DIR,
            Watch::Dirty => DIRTY_DIR,
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

impl Index {
    pub fn new(base: XlatorBase, dir: PathBuf, pending: Vec<String>, dirty: Vec<String>) -> Index {
        Index {
            base,
            state: Arc::new(IndexState {
                dir,
                pending,
                dirty,
                bases: Mutex::new([None, None]),
            }),
        }
    }

    /// The gfids listed in one index directory (`xattrop` or `dirty`) under `dir`.
    pub fn entries(dir: &Path, subdir: &str) -> std::io::Result<Vec<Gfid>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir.join(subdir))? {
            let name = e?.file_name();
            if let Some(g) = name.to_str().and_then(Gfid::parse) {
                out.push(g);
            }
        }
        Ok(out)
    }
}

impl IndexState {
    fn watch(&self, key: &str) -> Option<Watch> {
        if self.dirty.iter().any(|d| d == key) {
            Some(Watch::Dirty)
        } else if self.pending.iter().any(|p| key.starts_with(p.as_str())) {
            Some(Watch::Pending)
        } else {
            None
        }
    }

    /// The current base file of index `w`, made (with its directory) when a new one is
    /// chosen: on first use, or with `renew` when the last one is full or gone.
    fn base_file(&self, w: Watch, renew: bool) -> std::io::Result<PathBuf> {
        let sub = self.dir.join(w.subdir());
        let (name, new) = {
            let mut bases = self.bases.lock();
            let slot = &mut bases[w.slot()];
            let new = renew || slot.is_none();
            if new {
                *slot = Some(format!("{}-{}", w.subdir(), Gfid::random()));
            }
            (slot.clone().expect("set above"), new)
        };
        let p = sub.join(name);
        if new {
            std::fs::create_dir_all(&sub)?;
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&p)
            {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(p)
    }

    /// Links `g` into index `w`. The link itself says whether it was there (EEXIST) or the
    /// base file is gone (ENOENT: removed by hand, or the index directory with it), so the
    /// common case is one syscall.
    fn add(&self, w: Watch, g: &Gfid) -> std::io::Result<()> {
        let entry = self.dir.join(w.subdir()).join(g.to_string());
        let mut renew = false;
        loop {
            let base = self.base_file(w, renew)?;
            match std::fs::hard_link(&base, &entry) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
                Err(e)
                    if !renew
                        && (e.raw_os_error() == Some(libc::EMLINK)
                            || e.kind() == std::io::ErrorKind::NotFound) =>
                {
                    renew = true
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn del(&self, w: Watch, g: &Gfid) -> std::io::Result<()> {
        match std::fs::remove_file(self.dir.join(w.subdir()).join(g.to_string())) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Adds or removes `g` in each index the resulting values feed.
    fn update(&self, g: Gfid, values: &Xattrs) -> std::io::Result<()> {
        for w in [Watch::Pending, Watch::Dirty] {
            let mut watched = values.iter().filter(|(k, _)| self.watch(k) == Some(w));
            let Some(first) = watched.next() else {
                continue;
            };
            let nonzero = std::iter::once(first)
                .chain(watched)
                .any(|(_, v)| v.iter().any(|b| *b != 0));
            if nonzero {
                self.add(w, &g)?;
            } else {
                self.del(w, &g)?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Xlator for Index {
    fn base(&self) -> &XlatorBase {
        &self.base
    }

    /// `keys::INDEX_PENDING` (on any inode) reads the brick's index: the gfids in
    /// `indices/xattrop` and `indices/dirty`, newline-separated, at most
    /// `INDEX_PENDING_MAX`. The heal daemon asks for it instead of crawling the brick (GlusterFS
    /// lists the same directories through a virtual gfid).
    async fn getxattr(&self, ctx: &Ctx, loc: &Loc, name: Option<&str>) -> Result<Xattrs> {
        if name != Some(keys::INDEX_PENDING) {
            return self.base.first_child()?.getxattr(ctx, loc, name).await;
        }
        let dir = self.state.dir.clone();
        let list = tokio::task::spawn_blocking(move || {
            let mut seen = std::collections::BTreeSet::new();
            for sub in [XATTROP_DIR, DIRTY_DIR] {
                match Index::entries(&dir, sub) {
                    Ok(v) => seen.extend(v),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Errno::from_io(&e)),
                }
                if seen.len() >= keys::INDEX_PENDING_MAX {
                    break;
                }
            }
            Ok(seen
                .into_iter()
                .take(keys::INDEX_PENDING_MAX)
                .map(|g| g.to_string())
                .collect::<Vec<_>>()
                .join("\n"))
        })
        .await
        .map_err(|_| Errno::EIO)??;
        Ok(Xattrs::from([(
            keys::INDEX_PENDING.to_string(),
            bytes::Bytes::from(list),
        )]))
    }

    /// Removing `keys::INDEX_PENDING` from a gfid drops it from the index: the heal daemon's
    /// way to clear an entry whose inode is gone from every replica.
    async fn removexattr(&self, ctx: &Ctx, loc: &Loc, name: &str) -> Result<()> {
        if name != keys::INDEX_PENDING {
            return self.base.first_child()?.removexattr(ctx, loc, name).await;
        }
        let g = loc.gfid.ok_or(Errno::EINVAL)?;
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            state.del(Watch::Pending, &g)?;
            state.del(Watch::Dirty, &g)
        })
        .await
        .map_err(|_| Errno::EIO)?
        .map_err(|e| Errno::from_io(&e))
    }

    async fn xattrop(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        op: XattropOp,
        xattrs: &Xattrs,
    ) -> Result<Xattrs> {
        let out = self
            .base
            .first_child()?
            .xattrop(ctx, loc, op, xattrs)
            .await?;
        // Only AFR's add-array changelogs are counters the index follows.
        if op == XattropOp::AddArray
            && let Some(g) = loc.gfid
            && !g.is_null()
        {
            self.follow(g, out.clone()).await;
        }
        Ok(out)
    }

    /// A file made with a changelog counter already raised (replicate's create that takes
    /// the first write's dirty mark with it) enters the index as that pre-op would have.
    async fn create(
        &self,
        ctx: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt, PostParent)> {
        let made = self
            .base
            .first_child()?
            .create(ctx, loc, flags, entry)
            .await?;
        let raised = entry
            .xattrs
            .iter()
            .any(|(k, v)| self.state.watch(k).is_some() && v.iter().any(|b| *b != 0));
        if raised {
            self.follow(entry.gfid, entry.xattrs.clone()).await;
        }
        Ok(made)
    }
}

impl Index {
    /// Puts `g` in or out of the indexes its changelog `values` (as they now are) call for.
    async fn follow(&self, g: Gfid, values: Xattrs) {
        let state = self.state.clone();
        // A link or an unlink in the index directory: cheap, like the xattr update before
        // it, so it runs where that did.
        let res = crate::storage::posix::metadata(move || {
            state.update(g, &values).map_err(|e| Errno::from_io(&e))
        })
        .await;
        if let Err(e) = res {
            // The changelog itself is written; a missing index entry only delays a heal
            // until the next full crawl, so the fop does not fail for it.
            tracing::error!(xlator = %self.base.name, gfid = %g, "updating the heal index: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::posix::Posix;
    use bytes::Bytes;

    fn counters(data: u32, meta: u32, entry: u32) -> Bytes {
        let mut v = Vec::with_capacity(12);
        for n in [data, meta, entry] {
            v.extend_from_slice(&n.to_be_bytes());
        }
        Bytes::from(v)
    }

    #[tokio::test]
    async fn non_zero_changelogs_enter_the_index_and_zero_ones_leave_it() {
        let d = tempfile::tempdir().unwrap();
        let vid = Gfid::random();
        Posix::prepare_brick(d.path(), &vid).unwrap();
        let posix: XlatorRef = Arc::new(Posix::new(
            XlatorBase::new("p", "storage/posix", vec![]),
            d.path().to_path_buf(),
            vid,
        ));
        let indices = d.path().join(".glusterfs/indices");
        let idx = Index::new(
            XlatorBase::new("i", "features/index", vec![posix.clone()]),
            indices.clone(),
            vec!["trusted.afr.".into()],
            vec!["trusted.afr.dirty".into()],
        );
        let ctx = Ctx::root();
        let g = Gfid::random();
        posix
            .create(
                &ctx,
                &Loc::child(Gfid::ROOT, "f"),
                0,
                &NewEntry {
                    gfid: g,
                    mode: 0o644,
                    umask: 0o022,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let loc = Loc::gfid(g);
        let op = |k: &str, v: Bytes| {
            let mut x = Xattrs::new();
            x.insert(k.to_string(), v);
            x
        };

        // Pre-op: +1 data on both replicas' counters and the dirty flag.
        let mut pre = op("trusted.afr.gv-client-0", counters(1, 0, 0));
        pre.insert("trusted.afr.gv-client-1".into(), counters(1, 0, 0));
        pre.insert("trusted.afr.dirty".into(), counters(1, 0, 0));
        idx.xattrop(&ctx, &loc, XattropOp::AddArray, &pre)
            .await
            .unwrap();
        assert_eq!(Index::entries(&indices, XATTROP_DIR).unwrap(), vec![g]);
        assert_eq!(Index::entries(&indices, DIRTY_DIR).unwrap(), vec![g]);
        let base = std::fs::read_dir(indices.join(XATTROP_DIR))
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with("xattrop-"))
            .expect("a base file");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            base.metadata().unwrap().nlink(),
            2,
            "the entry is a hard link to the base"
        );

        // Post-op where client-1 failed: its counter stays, so the gfid stays in the index;
        // the dirty flag is cleared.
        let mut post = op("trusted.afr.gv-client-0", counters(u32::MAX, 0, 0));
        post.insert("trusted.afr.gv-client-1".into(), counters(0, 0, 0));
        post.insert("trusted.afr.dirty".into(), counters(u32::MAX, 0, 0));
        let now = idx
            .xattrop(&ctx, &loc, XattropOp::AddArray, &post)
            .await
            .unwrap();
        assert_eq!(now["trusted.afr.gv-client-1"], counters(1, 0, 0));
        assert_eq!(Index::entries(&indices, XATTROP_DIR).unwrap(), vec![g]);
        assert!(Index::entries(&indices, DIRTY_DIR).unwrap().is_empty());

        // Healed: every counter back to zero, so the gfid leaves the index.
        let heal = op("trusted.afr.gv-client-1", counters(u32::MAX, 0, 0));
        let mut heal = heal;
        heal.insert("trusted.afr.gv-client-0".into(), counters(0, 0, 0));
        idx.xattrop(&ctx, &loc, XattropOp::AddArray, &heal)
            .await
            .unwrap();
        assert!(Index::entries(&indices, XATTROP_DIR).unwrap().is_empty());

        // Keys off the watchlists and other xattrop kinds leave the index alone.
        idx.xattrop(
            &ctx,
            &loc,
            XattropOp::AddArray,
            &op("trusted.other", counters(1, 0, 0)),
        )
        .await
        .unwrap();
        idx.xattrop(
            &ctx,
            &loc,
            XattropOp::OrArray,
            &op("trusted.afr.gv-client-0", counters(1, 0, 0)),
        )
        .await
        .unwrap();
        assert!(Index::entries(&indices, XATTROP_DIR).unwrap().is_empty());

        // The index directory removed by hand (an operator's clean-up): the next changelog
        // that needs an entry makes it again.
        std::fs::remove_dir_all(indices.join(DIRTY_DIR)).unwrap();
        idx.xattrop(&ctx, &loc, XattropOp::AddArray, &pre)
            .await
            .unwrap();
        assert_eq!(Index::entries(&indices, DIRTY_DIR).unwrap(), vec![g]);
        // A value left as it was is not rewritten, and a missing key is still made.
        let before = std::fs::metadata(d.path().join("f")).unwrap().ctime_nsec();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let same = op("trusted.afr.gv-client-0", counters(0, 0, 0));
        idx.xattrop(&ctx, &loc, XattropOp::AddArray, &same)
            .await
            .unwrap();
        assert_eq!(
            std::fs::metadata(d.path().join("f")).unwrap().ctime_nsec(),
            before,
            "an unchanged changelog is not written"
        );
        let fresh = op("trusted.afr.gv-client-7", counters(0, 0, 0));
        idx.xattrop(&ctx, &loc, XattropOp::AddArray, &fresh)
            .await
            .unwrap();
        assert_eq!(
            posix
                .getxattr(&ctx, &loc, Some("trusted.afr.gv-client-7"))
                .await
                .unwrap()["trusted.afr.gv-client-7"],
            counters(0, 0, 0)
        );
    }
}
