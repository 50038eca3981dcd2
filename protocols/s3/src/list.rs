//! Listing a bucket in key order without an index: a depth-first walk of the directory tree in
//! which each directory's entries are sorted by the key they stand for (`name`, or `name/` for a
//! directory, whose keys all start with it). Keys under one directory are contiguous in key
//! order, so the walk yields keys sorted, skips whole directories that sort before the marker or
//! outside the prefix, and stops as soon as a page is full. A directory below the prefix becomes
//! a common prefix with the `/` delimiter without being read at all.
//!
//! Memory is one directory's names at a time per level being walked; a continuation page may
//! reuse a recent page's sorted names (bounded cache) instead of reading the directory again.

use crate::vfs::Vfs;
use engine::fop::{Gfid, Result};
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

type Names = Arc<Vec<(String, bool)>>;

/// Recently listed directories, by gfid, for the pages that follow the first.
pub struct DirCache {
    entries: Mutex<VecDeque<(Gfid, Instant, Names)>>,
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
    async fn names(&self, vfs: &Vfs, gfid: Gfid, reuse: bool) -> Result<Names> {
        if reuse {
            let mut c = self.entries.lock();
            c.retain(|(_, t, _)| t.elapsed() < CACHE_TTL);
            if let Some((_, _, n)) = c.iter().find(|(g, _, _)| *g == gfid) {
                return Ok(n.clone());
            }
        }
        let mut names = vfs.list_dir(gfid).await?;
        names.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
        let names = Arc::new(names);
        let mut c = self.entries.lock();
        c.retain(|(g, _, _)| *g != gfid);
        c.push_back((gfid, Instant::now(), names.clone()));
        while c.len() > CACHE_DIRS {
            c.pop_front();
        }
        Ok(names)
    }
}

fn sort_key((name, is_dir): &(String, bool)) -> std::borrow::Cow<'_, str> {
    if *is_dir {
        format!("{name}/").into()
    } else {
        name.as_str().into()
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

    async fn dir(&mut self, gfid: Gfid, path: String) -> Result<()> {
        let names = self
            .cache
            .names(self.vfs, gfid, self.q.continuation)
            .await?;
        let prefix = self.q.prefix;
        for e in names.iter() {
            if self.full() {
                return Ok(());
            }
            let (name, is_dir) = (&e.0, e.1);
            let full = if is_dir {
                format!("{path}{name}/")
            } else {
                format!("{path}{name}")
            };
            let inside = full.starts_with(prefix);
            if !(inside || is_dir && prefix.starts_with(&full)) {
                // Entries are in key order: past the prefix, nothing further can match.
                if full.as_str() > prefix {
                    return Ok(());
                }
                continue;
            }
            if !is_dir {
                if !self.after(&full) {
                    continue;
                }
                match self.q.delimiter {
                    Some(d) if !d.is_empty() && full[prefix.len()..].contains(d) => {
                        let rest = &full[prefix.len()..];
                        let cut = prefix.len() + rest.find(d).unwrap_or(0) + d.len();
                        self.push_prefix(full[..cut].to_string());
                    }
                    _ => self.out.push(Found::Object {
                        key: full,
                        parent: gfid,
                        name: name.clone(),
                    }),
                }
                continue;
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
            let sub = match self.vfs.lookup(gfid, name, &Default::default()).await {
                Ok((ia, _)) if ia.is_dir() => ia.gfid,
                Ok(_) | Err(engine::fop::Errno::ENOENT) => continue,
                Err(e) => return Err(e),
            };
            Box::pin(self.dir(sub, full)).await?;
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
    w.dir(bucket, String::new()).await?;
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

    #[test]
    fn directories_sort_by_their_key() {
        let mut v = [
            ("a".to_string(), true),
            ("a.txt".to_string(), false),
            ("a0".to_string(), false),
        ];
        v.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
        // "a.txt" < "a/" < "a0": '.' (0x2e) < '/' (0x2f) < '0' (0x30).
        assert_eq!(v[0].0, "a.txt");
        assert_eq!(v[1].0, "a");
        assert_eq!(v[2].0, "a0");
    }

    #[test]
    fn url_encoding_keeps_slashes() {
        assert_eq!(url_encode("a b/c+d"), "a%20b/c%2Bd");
    }
}
