//! The crawl: a layout pass over every directory (heal the copies a new subvolume lacks,
//! write the new ranges, count the files), then a migration pass that lists each directory
//! on each subvolume and moves what its layout places elsewhere. Both go level by level,
//! `threads` directories at once; moves share one pool of `threads`.

use super::super::common::{Distribute, is_linkto, with_dht_keys};
use super::super::layout::{COMMIT_HASH_NEW, Layout};
use super::migrate::{Candidate, Outcome};
use super::{Checkpoint, Progress, RebalanceError, Spec};
use crate::fop::keys;
use crate::fop::*;
use futures::StreamExt;
use futures::stream;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::Semaphore;

/// Entries one readdirp of the crawl asks for (bytes).
const LIST_SIZE: u32 = 128 * 1024;

#[derive(Clone)]
struct Dir {
    loc: Loc,
    gfid: Gfid,
    path: String,
}

impl Dir {
    fn root() -> Dir {
        Dir {
            loc: Loc::root(),
            gfid: Gfid::ROOT,
            path: "/".into(),
        }
    }

    fn child(&self, name: &str, gfid: Gfid) -> Dir {
        let path = if self.path == "/" {
            format!("/{name}")
        } else {
            format!("{}/{name}", self.path)
        };
        Dir {
            loc: Loc {
                parent: Some(self.gfid),
                name: Some(name.to_string()),
                gfid: Some(gfid),
                path: Some(path.clone()),
            },
            gfid,
            path,
        }
    }
}

fn err(what: &str, e: Errno) -> RebalanceError {
    RebalanceError::Fop(format!("{what}: {e}"))
}

fn ctx() -> Ctx {
    Ctx {
        pid: INTERNAL_PID,
        ..Ctx::root()
    }
}

/// Every entry of directory `g` on subvolume `i`, with its iatt and distribute's xattrs.
async fn list_on(d: &Distribute, i: usize, g: Gfid) -> Result<Vec<Dirent>> {
    let ctx = ctx();
    let sub = d.sub(i);
    let loc = if g.is_root() {
        Loc::root()
    } else {
        Loc::gfid(g)
    };
    let fd = sub.opendir(&ctx, &loc).await?;
    let want = with_dht_keys(&Xattrs::new());
    let mut out = Vec::new();
    let mut off = 0;
    let r = loop {
        match sub.readdirp(&ctx, &fd, off, LIST_SIZE, &want).await {
            Ok(ents) if ents.is_empty() => break Ok(()),
            Ok(ents) => {
                off = ents.last().map(|e| e.d_off).unwrap_or(off);
                out.extend(ents.into_iter().filter(|e| e.name != "." && e.name != ".."));
            }
            Err(e) => break Err(e),
        }
    };
    sub.release(&fd).await;
    r.map(|()| out)
}

/// A file of the volume's (not a directory, not a linkto file).
fn is_file(e: &Dirent) -> bool {
    e.iatt
        .as_ref()
        .is_some_and(|ia| !ia.is_dir() && !is_linkto(ia, &e.xattrs))
}

fn is_dir(e: &Dirent) -> bool {
    e.iatt.as_ref().is_some_and(|ia| ia.is_dir())
}

/// Whether the crawl leaves `name` in `dir` alone (a frontend's staging area).
fn skipped(spec: &Spec, dir: &Dir, name: &str) -> bool {
    if spec.drain {
        return false;
    }
    (dir.gfid.is_root() && spec.skip_root.iter().any(|n| n == name))
        || spec
            .skip_infix
            .as_deref()
            .is_some_and(|inf| name.contains(inf))
}

/// The subvolume whose listing names a directory's subdirectories: one that is staying.
fn lister(d: &Distribute) -> usize {
    (0..d.n()).find(|i| !d.decommissioned[*i]).unwrap_or(0)
}

pub(super) async fn run(
    d: &Distribute,
    spec: &Spec,
    progress: &Progress,
    cp: &dyn Checkpoint,
) -> std::result::Result<(), RebalanceError> {
    let threads = spec.threads.max(1);
    if !spec.layout_fixed {
        let weights = weights(d).await?;
        let mut level = vec![Dir::root()];
        while !level.is_empty() {
            if progress.stopped() {
                return Err(RebalanceError::Stopped);
            }
            let work: Vec<_> = level
                .into_iter()
                .map(|dir| fix_dir(d, spec, progress, dir, &weights))
                .collect();
            let done: Vec<_> = stream::iter(work).buffer_unordered(threads).collect().await;
            level = Vec::new();
            for r in done {
                level.extend(r?);
            }
        }
        cp.layout_fixed(progress.files_total.load(Ordering::Relaxed));
        tracing::info!(xlator = %d.base.name, dirs = progress.dirs.load(Ordering::Relaxed), files = progress.files_total.load(Ordering::Relaxed), "every directory layout fixed");
    }
    if !spec.migrate {
        return Ok(());
    }
    let done = cp.done_dirs();
    let pool = Semaphore::new(threads);
    let mut level = vec![Dir::root()];
    while !level.is_empty() {
        if progress.stopped() {
            return Err(RebalanceError::Stopped);
        }
        let work: Vec<_> = level
            .into_iter()
            .map(|dir| migrate_dir(d, spec, progress, cp, &done, &pool, dir))
            .collect();
        let results: Vec<_> = stream::iter(work).buffer_unordered(threads).collect().await;
        level = Vec::new();
        for r in results {
            level.extend(r?);
        }
    }
    Ok(())
}

/// Each subvolume's share of a new layout: its size (weighted-rebalance), or 1 each; 0 for
/// a decommissioned one.
async fn weights(d: &Distribute) -> std::result::Result<Vec<u64>, RebalanceError> {
    let mut w = Vec::with_capacity(d.n());
    for i in 0..d.n() {
        if d.decommissioned[i] {
            w.push(0);
        } else if d.weighted {
            let s = d
                .sub(i)
                .statfs(&ctx(), &Loc::root())
                .await
                .map_err(|e| err(&format!("statfs of {}", d.names[i]), e))?;
            // In MiB, so equal disks that differ by a few blocks count as equal.
            w.push(((s.blocks * s.frsize.max(1)) >> 20).max(1));
        } else {
            w.push(1);
        }
    }
    Ok(w)
}

/// Heals the directory's copies, writes its new layout (unsettled: a name missing at its
/// hashed subvolume is still looked for everywhere until the migration pass settles it),
/// counts its files and returns its subdirectories.
async fn fix_dir(
    d: &Distribute,
    spec: &Spec,
    progress: &Progress,
    dir: Dir,
    weights: &[u64],
) -> std::result::Result<Vec<Dir>, RebalanceError> {
    let ctx = ctx();
    match d.lookup_dir(&ctx, &dir.loc, &Xattrs::new(), true).await {
        Ok(_) => {}
        // Removed by a client meanwhile.
        Err(Errno::ENOENT) | Err(Errno::ESTALE) => return Ok(Vec::new()),
        Err(e) => return Err(err(&format!("lookup of {}", dir.path), e)),
    }
    let mut lay = Layout::weighted(&dir.path, &d.names, weights);
    lay.commit = Some(COMMIT_HASH_NEW);
    let current = d.layouts.get(&dir.gfid).map(|l| l.clone());
    if let Some(c) = &current {
        lay.keep_overlap_with(c);
    }
    let same = current.as_ref().is_some_and(|c| {
        let mut a = c.ranges.clone();
        let mut b = lay.ranges.clone();
        a.sort_by_key(|r| r.subvol);
        b.sort_by_key(|r| r.subvol);
        a == b
    });
    if !same {
        let owner = d
            .lock_layout(dir.gfid)
            .await
            .map_err(|e| err(&format!("locking the layout of {}", dir.path), e))?;
        let r = write_ranges(d, dir.gfid, &lay).await;
        if r.is_ok() {
            d.layouts.insert(dir.gfid, Arc::new(lay));
        }
        d.unlock_layout(dir.gfid, owner).await;
        r.map_err(|e| err(&format!("writing the layout of {}", dir.path), e))?;
    }
    progress.dirs.fetch_add(1, Ordering::Relaxed);
    let mut subdirs = Vec::new();
    let mut files = 0u64;
    for i in 0..d.n() {
        let ents = match list_on(d, i, dir.gfid).await {
            Ok(e) => e,
            Err(Errno::ENOENT) | Err(Errno::ESTALE) => continue,
            Err(e) => return Err(err(&format!("listing {} on {}", dir.path, d.names[i]), e)),
        };
        for e in &ents {
            if skipped(spec, &dir, &e.name) {
                continue;
            }
            if i == lister(d) && is_dir(e) {
                subdirs.push(dir.child(&e.name, e.iatt.as_ref().expect("is_dir").gfid));
            } else if is_file(e) {
                files += 1;
            }
        }
    }
    progress.files_total.fetch_add(files, Ordering::Relaxed);
    Ok(subdirs)
}

async fn write_ranges(d: &Distribute, g: Gfid, lay: &Layout) -> Result<()> {
    let loc = Loc::gfid(g);
    for i in 0..d.n() {
        let xs = Xattrs::from([(keys::DHT_LAYOUT.to_string(), d.range_value(lay, i))]);
        d.sub(i).setxattr(&ctx(), &loc, &xs, 0).await?;
    }
    Ok(())
}

/// Moves the files of one directory that its layout places elsewhere, settles its layout
/// when nothing is left out of place, and returns its subdirectories.
async fn migrate_dir(
    d: &Distribute,
    spec: &Spec,
    progress: &Progress,
    cp: &dyn Checkpoint,
    done: &HashSet<Gfid>,
    pool: &Semaphore,
    dir: Dir,
) -> std::result::Result<Vec<Dir>, RebalanceError> {
    let ctx = ctx();
    let mut subdirs = Vec::new();
    let listed = match list_on(d, lister(d), dir.gfid).await {
        Ok(e) => e,
        Err(Errno::ENOENT) | Err(Errno::ESTALE) => return Ok(Vec::new()),
        Err(e) => return Err(err(&format!("listing {}", dir.path), e)),
    };
    for e in &listed {
        if is_dir(e) && !skipped(spec, &dir, &e.name) {
            subdirs.push(dir.child(&e.name, e.iatt.as_ref().expect("is_dir").gfid));
        }
    }
    if done.contains(&dir.gfid) {
        return Ok(subdirs);
    }
    let lay = match d.layout(&ctx, dir.gfid).await {
        Ok(l) => l,
        Err(Errno::ENOENT) | Err(Errno::ESTALE) => return Ok(subdirs),
        Err(e) => return Err(err(&format!("layout of {}", dir.path), e)),
    };
    // Every subvolume listed before anything moves, so a file moved to a subvolume listed
    // later is not scanned twice.
    let mut listings = Vec::with_capacity(d.n());
    for i in 0..d.n() {
        if i == lister(d) {
            listings.push(listed.clone());
            continue;
        }
        match list_on(d, i, dir.gfid).await {
            Ok(e) => listings.push(e),
            Err(Errno::ENOENT) | Err(Errno::ESTALE) => listings.push(Vec::new()),
            Err(e) => return Err(err(&format!("listing {} on {}", dir.path, d.names[i]), e)),
        }
    }
    let mut unsettled = false;
    for (i, ents) in listings.into_iter().enumerate() {
        drop_stale_linktos(d, &dir, &lay, i, &ents).await;
        let files: Vec<&Dirent> = ents
            .iter()
            .filter(|e| is_file(e) && !skipped(spec, &dir, &e.name))
            .collect();
        let work: Vec<_> = files
            .into_iter()
            .map(|e| {
                move_one(MoveJob {
                    d,
                    progress,
                    pool,
                    dir: &dir,
                    lay: &lay,
                    i,
                    e,
                })
            })
            .collect();
        let outcomes: Vec<bool> = stream::iter(work)
            .buffer_unordered(spec.threads.max(1))
            .collect()
            .await;
        unsettled |= outcomes.iter().any(|ok| !ok);
    }
    if progress.stopped() {
        return Err(RebalanceError::Stopped);
    }
    if !unsettled && !spec.drain {
        settle(d, &dir, &lay).await;
    }
    cp.dir_done(dir.gfid);
    Ok(subdirs)
}

/// Writes the volume's commit hash into a directory whose files are all where its layout
/// says (or reachable through a linkto at their hashed subvolume): a miss at the hashed
/// subvolume is then final (lookup-unhashed auto).
async fn settle(d: &Distribute, dir: &Dir, lay: &Layout) {
    let Some(h) = d.commit_hash else { return };
    if lay.commit == Some(h) {
        return;
    }
    let mut settled = lay.clone();
    settled.commit = Some(h);
    let Ok(owner) = d.lock_layout(dir.gfid).await else {
        return;
    };
    let r = write_ranges(d, dir.gfid, &settled).await;
    d.unlock_layout(dir.gfid, owner).await;
    match r {
        Ok(()) => {
            d.layouts.insert(dir.gfid, Arc::new(settled));
        }
        Err(e) => {
            tracing::warn!(xlator = %d.base.name, dir = %dir.path, "could not settle the layout: {e}")
        }
    }
}

/// Files (not directories or linkto files) still on a decommissioned subvolume, up to
/// `limit`.
pub(super) async fn left_on_decommissioned(
    d: &Distribute,
    limit: u64,
) -> std::result::Result<u64, RebalanceError> {
    let mut left = 0;
    let mut level = vec![Dir::root()];
    while !level.is_empty() && left < limit {
        let mut next = Vec::new();
        for dir in level {
            for i in (0..d.n()).filter(|i| d.decommissioned[*i]) {
                let ents = match list_on(d, i, dir.gfid).await {
                    Ok(e) => e,
                    Err(Errno::ENOENT) | Err(Errno::ESTALE) => continue,
                    Err(e) => {
                        return Err(err(&format!("listing {} on {}", dir.path, d.names[i]), e));
                    }
                };
                left += ents.iter().filter(|e| is_file(e)).count() as u64;
            }
            for e in list_on(d, lister(d), dir.gfid).await.unwrap_or_default() {
                if is_dir(&e) {
                    next.push(dir.child(&e.name, e.iatt.as_ref().expect("is_dir").gfid));
                }
            }
        }
        level = next;
    }
    Ok(left)
}

/// One file of a directory's listing on subvolume `i`, and where it may go.
struct MoveJob<'a> {
    d: &'a Distribute,
    progress: &'a Progress,
    pool: &'a Semaphore,
    dir: &'a Dir,
    lay: &'a Layout,
    i: usize,
    e: &'a Dirent,
}

/// Moves one file if its directory's layout places it elsewhere; false when it is left out
/// of place (the directory's layout then stays unsettled).
async fn move_one(j: MoveJob<'_>) -> bool {
    let MoveJob {
        d,
        progress,
        pool,
        dir,
        lay,
        i,
        e,
    } = j;
    let ctx = ctx();
    let counts = &progress.subvols[i];

    if progress.stopped() {
        return false;
    }
    counts.scanned.fetch_add(1, Ordering::Relaxed);
    let ia = e.iatt.as_ref().expect("is_file");
    let Some(hashed) = lay.for_name(&e.name) else {
        counts.failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(xlator = %d.base.name, dir = %dir.path, name = %e.name, "no subvolume's range holds this name");
        return false;
    };
    if hashed == i && !d.decommissioned[i] {
        return true;
    }
    if !d.decommissioned[i] && !d.fits(&ctx, hashed, ia.size).await {
        counts.skipped.fetch_add(1, Ordering::Relaxed);
        let named = Loc::child(dir.gfid, e.name.clone());
        let _ = d.make_linkto(&ctx, hashed, i, &named, ia.gfid).await;
        return true;
    }
    let _permit = pool.acquire().await.expect("never closed");
    let c = Candidate {
        dir: dir.gfid,
        name: &e.name,
        gfid: ia.gfid,
        from: i,
        to: hashed,
        hashed,
    };
    match d.migrate_file(&c).await {
        Ok(Outcome::Moved(b)) => {
            counts.moved.fetch_add(1, Ordering::Relaxed);
            counts.bytes.fetch_add(b, Ordering::Relaxed);
            true
        }
        Ok(Outcome::Gone) => true,
        Ok(Outcome::Skipped(why)) => {
            counts.skipped.fetch_add(1, Ordering::Relaxed);
            tracing::info!(xlator = %d.base.name, dir = %dir.path, name = %e.name, "left in place: {why}");
            // Found through the hashed subvolume all the same.
            let named = Loc::child(dir.gfid, e.name.clone());
            let _ = d.make_linkto(&ctx, hashed, i, &named, ia.gfid).await;
            !d.decommissioned[i]
        }
        Err(err) => {
            counts.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(xlator = %d.base.name, dir = %dir.path, name = %e.name, from = %d.names[i], to = %d.names[hashed], "could not move: {err}");
            false
        }
    }
}

/// Removes the linkto files of subvolume `i` in `dir` that its layout no longer makes `i`
/// answer for (a lookup through an older layout left them; GlusterFS's rebalance removes
/// them too). By gfid, and only while still a linkto file: a name that became a file stays.
async fn drop_stale_linktos(d: &Distribute, dir: &Dir, lay: &Layout, i: usize, ents: &[Dirent]) {
    let ctx = ctx();
    for e in ents {
        let Some(ia) = e.iatt.as_ref() else { continue };
        if !is_linkto(ia, &e.xattrs) || lay.for_name(&e.name) == Some(i) {
            continue;
        }
        let named = Loc {
            gfid: Some(ia.gfid),
            ..Loc::child(dir.gfid, e.name.clone())
        };
        let w = with_dht_keys(&Xattrs::new());
        match d.sub(i).lookup(&ctx, &named, &w).await {
            Ok((now, x)) if now.gfid == ia.gfid && is_linkto(&now, &x) => {
                if let Err(err) = d.sub(i).unlink(&ctx, &named).await {
                    tracing::debug!(xlator = %d.base.name, dir = %dir.path, name = %e.name, "stale linkto stays: {err}");
                }
            }
            _ => {}
        }
    }
}
