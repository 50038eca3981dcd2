//! Listing a bucket in key order without an index: a depth-first walk of the directory tree in
//! which each directory's entries are sorted by the key they stand for (`name`, or `name/` for a
//! directory, whose keys all start with it). Keys under one directory are contiguous in key
//! order, so the walk yields keys sorted, skips whole directories that sort before the marker or
//! outside the prefix, and stops as soon as a page is full. A directory below the prefix becomes
//! a common prefix with the `/` delimiter without being read at all.
//!
//! Memory is one directory's names at a time per level being walked; a continuation page may
//! reuse a recent page's sorted names (bounded cache) instead of reading the directory again.

use crate::layout;
use crate::meta;
use crate::vfs::Vfs;
use engine::fop::{Gfid, Result, Timespec, Xattrs};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A name found by the walk: an object (with the directory that holds it) or a common prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    Object {
        key: String,
        parent: Gfid,
        name: String,
        /// What the listing itself said of the file, when it was read for this request.
        known: Option<Known>,
    },
    Prefix(String),
}

impl Found {
    pub fn key(&self) -> &str {
        match self {
            Found::Object { key, .. } => key,
            Found::Prefix(p) => p,
        }
    }
}

pub struct Query<'a> {
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    /// Return only keys (and prefixes) after this one.
    pub after: Option<&'a str>,
    pub max: usize,
    /// A continuation page: recently read directories may be reused.
    pub continuation: bool,
}

/// A file's size, mtime and stored ETag as the directory listing returned them (the ETag
/// only while its stamp says it still describes the file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    pub size: u64,
    pub mtime: Timespec,
    pub etag: String,
}

/// A directory entry, as the walk orders it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    /// The entry's gfid, when the listing gave it.
    pub gfid: Option<Gfid>,
    /// A file's attributes and ETag, when the listing gave them.
    pub known: Option<Known>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    /// A directory; `folder` when its folder key `name/` was PUT (`layout::DIR_OBJECT`).
    Dir {
        folder: bool,
    },
    /// The object kept inside directory `name` (`layout::SELF`): key `name`, which sorts
    /// before every key of the directory.
    SelfOf,
}

impl Entry {
    /// The key it stands for, relative to its directory: a directory's keys all start with
    /// `name/`.
    fn sort_key(&self) -> std::borrow::Cow<'_, str> {
        match self.kind {
            Kind::Dir { .. } => format!("{}/", self.name).into(),
            Kind::File | Kind::SelfOf => self.name.as_str().into(),
        }
    }
}

/// One directory's entries in key order.
#[derive(Debug, Default)]
pub struct Names {
    entries: Vec<Entry>,
    /// It holds `layout::DIR_DATA`: its folder key has data.
    folder_data: bool,
}

impl Names {
    /// From a directory listing: the names `layout.rs` keeps for itself are not keys; a
    /// directory that holds its own object gives a second entry for it.
    fn new(listed: Vec<crate::vfs::Listed>) -> Names {
        let mut n = Names::default();
        for e in listed {
            if layout::reserved(&e.name) {
                n.folder_data |= e.name == layout::DIR_DATA && !e.is_dir;
                continue;
            }
            let gfid = e.iatt.as_ref().map(|ia| ia.gfid);
            if !e.is_dir {
                let known = e.iatt.as_ref().filter(|ia| ia.is_reg()).and_then(|ia| {
                    Some(Known {
                        size: ia.size,
                        mtime: ia.mtime,
                        etag: meta::stored_etag(&e.xattrs, ia)?,
                    })
                });
                n.entries.push(Entry {
                    name: e.name,
                    kind: Kind::File,
                    gfid,
                    known,
                });
                continue;
            }
            if e.xattrs.contains_key(layout::HAS_SELF) {
                n.entries.push(Entry {
                    name: e.name.clone(),
                    kind: Kind::SelfOf,
                    gfid,
                    known: None,
                });
            }
            n.entries.push(Entry {
                kind: Kind::Dir {
                    folder: e.xattrs.contains_key(layout::DIR_OBJECT),
                },
                name: e.name,
                gfid,
                known: None,
            });
        }
        n.entries.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        n
    }
}

/// Recently listed directories, by gfid, for the pages that follow the first.
pub struct DirCache {
    entries: Mutex<VecDeque<(Gfid, Instant, Arc<Names>)>>,
}

const CACHE_DIRS: usize = 4;
const CACHE_TTL: Duration = Duration::from_secs(30);

impl Default for DirCache {
    fn default() -> Self {
        DirCache {
            entries: Mutex::new(VecDeque::new()),
        }
    }
}

impl DirCache {
    /// A directory's names, and whether they were read now (not reused from a recent page).
    async fn names(&self, vfs: &Vfs, gfid: Gfid, reuse: bool) -> Result<(Arc<Names>, bool)> {
        if reuse {
            let mut c = self.entries.lock();
            c.retain(|(_, t, _)| t.elapsed() < CACHE_TTL);
            if let Some((_, _, n)) = c.iter().find(|(g, _, _)| *g == gfid) {
                return Ok((n.clone(), false));
            }
        }
        // The files' stored ETags come with the listing, so a page costs no lookup per
        // object.
        let mut want: Xattrs = layout::dir_want();
        want.insert(meta::ETAG.to_string(), Default::default());
        let listed = vfs.list_dir_with(gfid, &want).await?;
        let names = Arc::new(Names::new(listed));
        let mut c = self.entries.lock();
        c.retain(|(g, _, _)| *g != gfid);
        c.push_back((gfid, Instant::now(), names.clone()));
        while c.len() > CACHE_DIRS {
            c.pop_front();
        }
        Ok((names, true))
    }
}

struct Walk<'a> {
    vfs: &'a Vfs,
    cache: &'a DirCache,
    q: &'a Query<'a>,
    out: Vec<Found>,
}

impl Walk<'_> {
    fn full(&self) -> bool {
        // One more than a page tells whether the listing is truncated.
        self.out.len() > self.q.max
    }

    fn after(&self, key: &str) -> bool {
        self.q.after.is_none_or(|m| key > m)
    }

    fn push_prefix(&mut self, p: String) {
        if !self.after(&p) {
            return;
        }
        if let Some(Found::Prefix(last)) = self.out.last()
            && *last == p
        {
            return;
        }
        self.out.push(Found::Prefix(p));
    }

    /// An object key inside the prefix: itself, or the common prefix it rolls up into.
    fn push_object(&mut self, key: String, parent: Gfid, name: &str, known: Option<Known>) {
        if !self.after(&key) {
            return;
        }
        let prefix = self.q.prefix;
        match self.q.delimiter {
            Some(d) if !d.is_empty() && key[prefix.len()..].contains(d) => {
                let rest = &key[prefix.len()..];
                let cut = prefix.len() + rest.find(d).unwrap_or(0) + d.len();
                self.push_prefix(key[..cut].to_string());
            }
            _ => self.out.push(Found::Object {
                key,
                parent,
                name: name.to_string(),
                known,
            }),
        }
    }

    async fn gfid_of(&self, dir: Gfid, e: &Entry) -> Result<Option<Gfid>> {
        if let Some(g) = e.gfid {
            return Ok(Some(g));
        }
        match self.vfs.lookup(dir, &e.name, &Default::default()).await {
            Ok((ia, _)) if ia.is_dir() => Ok(Some(ia.gfid)),
            Ok(_) | Err(engine::fop::Errno::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Walks directory `gfid`, whose keys start with `path`. `folder` names the directory in
    /// its parent when its folder key (`path`) was PUT.
    async fn dir(&mut self, gfid: Gfid, path: String, folder: Option<(Gfid, &str)>) -> Result<()> {
        let (names, fresh) = self
            .cache
            .names(self.vfs, gfid, self.q.continuation)
            .await?;
        let prefix = self.q.prefix;
        // The folder key sorts before every key in the directory.
        if !path.is_empty() && path.starts_with(prefix) {
            if names.folder_data {
                self.push_object(path.clone(), gfid, layout::DIR_DATA, None);
            } else if let Some((parent, name)) = folder {
                self.push_object(path.clone(), parent, name, None);
            }
        }
        for e in names.entries.iter() {
            if self.full() {
                return Ok(());
            }
            let is_dir = matches!(e.kind, Kind::Dir { .. });
            let full = format!("{path}{}", e.sort_key());
            let inside = full.starts_with(prefix);
            if !(inside || is_dir && prefix.starts_with(&full)) {
                // Entries are in key order: past the prefix, nothing further can match.
                if full.as_str() > prefix {
                    return Ok(());
                }
                continue;
            }
            match e.kind {
                Kind::File => {
                    let known = e.known.clone().filter(|_| fresh);
                    self.push_object(full, gfid, &e.name, known);
                    continue;
                }
                Kind::SelfOf => {
                    if self.after(&full)
                        && let Some(sub) = self.gfid_of(gfid, e).await?
                    {
                        self.push_object(full, sub, layout::SELF, None);
                    }
                    continue;
                }
                Kind::Dir { .. } => {}
            }
            if inside && full.len() > prefix.len() && self.q.delimiter == Some("/") {
                self.push_prefix(full);
                continue;
            }
            if let Some(m) = self.q.after
                && full.as_str() <= m
                && !m.starts_with(&full)
            {
                continue;
            }
            let Some(sub) = self.gfid_of(gfid, e).await? else {
                continue;
            };
            let folder =
                matches!(e.kind, Kind::Dir { folder: true }).then_some((gfid, e.name.as_str()));
            Box::pin(self.dir(sub, full, folder)).await?;
        }
        Ok(())
    }
}

/// Up to `q.max` names in key order, and whether more follow.
pub async fn walk(
    vfs: &Vfs,
    cache: &DirCache,
    bucket: Gfid,
    q: &Query<'_>,
) -> Result<(Vec<Found>, bool)> {
    if q.max == 0 {
        return Ok((Vec::new(), false));
    }
    let mut w = Walk {
        vfs,
        cache,
        q,
        out: Vec::new(),
    };
    w.dir(bucket, String::new(), None).await?;
    let truncated = w.out.len() > q.max;
    w.out.truncate(q.max);
    Ok((w.out, truncated))
}

/// URL-encodes what a listing returns when the client asked for `encoding-type=url`, as S3
/// does: everything but unreserved characters and `/`.
pub fn url_encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(name: &str, is_dir: bool, x: &[&str]) -> crate::vfs::Listed {
        crate::vfs::Listed {
            name: name.to_string(),
            is_dir,
            iatt: None,
            xattrs: x
                .iter()
                .map(|k| (k.to_string(), bytes::Bytes::new()))
                .collect(),
        }
    }

    #[test]
    fn directories_sort_by_their_key() {
        let n = Names::new(vec![
            listed("a0", false, &[]),
            listed("a", true, &[]),
            listed("a.txt", false, &[]),
        ]);
        // "a.txt" < "a/" < "a0": '.' (0x2e) < '/' (0x2f) < '0' (0x30).
        let order: Vec<&str> = n.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(order, ["a.txt", "a", "a0"]);
    }

    #[test]
    fn an_object_kept_in_its_directory_sorts_as_its_key() {
        // Keys "a", "a-b" and "a/c": the object "a" lives in directory "a", yet comes first.
        let n = Names::new(vec![
            listed("a-b", false, &[]),
            listed("a", true, &[layout::HAS_SELF, layout::DIR_OBJECT]),
            listed(layout::SELF, false, &[]),
            listed(layout::DIR_DATA, false, &[]),
        ]);
        let order: Vec<(&str, Kind)> = n
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.kind))
            .collect();
        assert_eq!(
            order,
            [
                ("a", Kind::SelfOf),
                ("a-b", Kind::File),
                ("a", Kind::Dir { folder: true })
            ]
        );
        assert!(n.folder_data);
    }

    /// A file's size, mtime and ETag come from the listing while the ETag's stamp matches
    /// the file; a file written since (another size or mtime) is looked up, and its ETag
    /// computed again, by the caller.
    #[test]
    fn a_listed_file_carries_its_etag_only_while_the_stamp_holds() {
        let ia = |size: u64, sec: i64| engine::fop::Iatt {
            mode: libc::S_IFREG | 0o644,
            size,
            mtime: Timespec { sec, nsec: 7 },
            ..Default::default()
        };
        let stamped = meta::etag_xattr("0123abcd", &ia(10, 100));
        let file = |name: &str, now: engine::fop::Iatt| crate::vfs::Listed {
            name: name.to_string(),
            is_dir: false,
            iatt: Some(now),
            xattrs: stamped.clone(),
        };
        let n = Names::new(vec![
            file("same", ia(10, 100)),
            file("rewritten", ia(12, 101)),
        ]);
        let known: Vec<(&str, Option<Known>)> = n
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.known.clone()))
            .collect();
        assert_eq!(
            known,
            [
                ("rewritten", None),
                (
                    "same",
                    Some(Known {
                        size: 10,
                        mtime: Timespec { sec: 100, nsec: 7 },
                        etag: "0123abcd".into()
                    })
                )
            ]
        );
    }

    #[test]
    fn url_encoding_keeps_slashes() {
        assert_eq!(url_encode("a b/c+d"), "a%20b/c%2Bd");
    }
}
