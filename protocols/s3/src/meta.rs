//! Object metadata as `user.s3.*` xattrs on the file itself, so it travels with the file through
//! renames, copies by other tools and a move to GlusterFS, and no index can go stale.
//!
//! The ETag is stored with the size and mtime it was computed for: the brick drops
//! `user.s3.etag` on every write it serves, and the stamp catches writes it did not see (a
//! GlusterFS brick daemon writing the same directory).

use bytes::Bytes;
use engine::fop::{Iatt, Timespec, Xattrs};
use md5::{Digest, Md5};
use s3s::dto::{Timestamp, TimestampFormat};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const ETAG: &str = engine::fop::keys::S3_ETAG;
const PREFIX: &str = "user.s3.";
const USER_META: &str = "user.s3.meta.";
pub const TAGGING: &str = "user.s3.tagging";
const CONTENT: [&str; 6] = [
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
];

/// What an object carries besides its bytes and ETag.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectMeta {
    /// content-type, content-encoding, … as sent.
    pub content: BTreeMap<&'static str, String>,
    /// x-amz-meta-* without the prefix.
    pub user: BTreeMap<String, String>,
    /// The tag set, URL-encoded as in the x-amz-tagging header.
    pub tagging: Option<String>,
}

impl ObjectMeta {
    pub fn from_xattrs(x: &Xattrs) -> ObjectMeta {
        let mut m = ObjectMeta::default();
        for (k, v) in x {
            let Some(rest) = k.strip_prefix(PREFIX) else {
                continue;
            };
            let v = String::from_utf8_lossy(v).into_owned();
            if let Some(name) = k.strip_prefix(USER_META) {
                m.user.insert(name.to_string(), v);
            } else if k == TAGGING {
                m.tagging = Some(v);
            } else if let Some(c) = CONTENT.iter().find(|c| **c == rest) {
                m.content.insert(c, v);
            }
        }
        m
    }

    pub fn to_xattrs(&self) -> Xattrs {
        let mut x = Xattrs::new();
        for (k, v) in &self.content {
            x.insert(format!("{PREFIX}{k}"), Bytes::from(v.clone()));
        }
        for (k, v) in &self.user {
            x.insert(format!("{USER_META}{k}"), Bytes::from(v.clone()));
        }
        if let Some(t) = &self.tagging {
            x.insert(TAGGING.to_string(), Bytes::from(t.clone()));
        }
        x
    }

    /// Every xattr name this metadata might occupy on a file that has `old`: what a REPLACE
    /// must remove before it sets the new set.
    pub fn stale_names(old: &Xattrs, keep_tags: bool) -> Vec<String> {
        old.keys()
            .filter(|k| k.starts_with(PREFIX) && k.as_str() != ETAG)
            .filter(|k| !(keep_tags && k.as_str() == TAGGING))
            .cloned()
            .collect()
    }

    pub fn get(&self, k: &str) -> Option<String> {
        self.content.get(k).cloned()
    }

    pub fn set(&mut self, k: &'static str, v: Option<String>) {
        if let Some(v) = v {
            self.content.insert(k, v);
        }
    }

    pub fn expires(&self) -> Option<Timestamp> {
        Timestamp::parse(TimestampFormat::HttpDate, self.content.get("expires")?).ok()
    }

    pub fn set_expires(&mut self, t: Option<&Timestamp>) {
        if let Some(t) = t {
            let mut out = Vec::new();
            if t.format(TimestampFormat::HttpDate, &mut out).is_ok() {
                self.content
                    .insert("expires", String::from_utf8_lossy(&out).into_owned());
            }
        }
    }

    pub fn tag_count(&self) -> Option<i32> {
        let t = self.tagging.as_deref()?;
        let n = t.split('&').filter(|p| !p.is_empty()).count();
        (n > 0).then_some(n as i32)
    }

    pub fn user_metadata(&self) -> Option<s3s::dto::Metadata> {
        (!self.user.is_empty()).then(|| {
            self.user
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
    }
}

fn stamp(ia: &Iatt) -> String {
    format!("{}|{}.{}", ia.size, ia.mtime.sec, ia.mtime.nsec)
}

/// The xattr that records `etag` for the file as `ia` describes it.
pub fn etag_xattr(etag: &str, ia: &Iatt) -> Xattrs {
    let mut x = Xattrs::new();
    x.insert(
        ETAG.to_string(),
        Bytes::from(format!("{etag}|{}", stamp(ia))),
    );
    x
}

/// The stored ETag when it still describes the file.
pub fn stored_etag(x: &Xattrs, ia: &Iatt) -> Option<String> {
    let v = std::str::from_utf8(x.get(ETAG)?).ok()?;
    let (etag, st) = v.split_once('|')?;
    (st == stamp(ia)).then(|| etag.to_string())
}

pub fn md5_hex(d: &[u8]) -> String {
    hex::encode(Md5::digest(d))
}

/// ETag of a multipart object: MD5 of the parts' binary MD5s, then `-N`.
pub fn multipart_etag(part_etags: &[String]) -> String {
    let mut h = Md5::new();
    for e in part_etags {
        if let Ok(b) = hex::decode(e) {
            h.update(b);
        }
    }
    format!("{}-{}", hex::encode(h.finalize()), part_etags.len())
}

pub fn to_system_time(t: Timespec) -> SystemTime {
    if t.sec >= 0 {
        UNIX_EPOCH + Duration::new(t.sec as u64, t.nsec)
    } else {
        UNIX_EPOCH
    }
}

/// Full precision: listings carry milliseconds, and `aws s3 sync` compares them with local
/// mtimes (a file uploaded in the same second as it was written must not look older).
pub fn timestamp(t: Timespec) -> Timestamp {
    Timestamp::from(to_system_time(t))
}

/// Whole seconds, to compare with HTTP dates (If-Modified-Since and friends).
pub fn timestamp_secs(t: Timespec) -> Timestamp {
    Timestamp::from(to_system_time(Timespec {
        sec: t.sec,
        nsec: 0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_stamp_follows_size_and_mtime() {
        let mut ia = Iatt {
            size: 5,
            ..Default::default()
        };
        let x = etag_xattr("abc", &ia);
        assert_eq!(stored_etag(&x, &ia).as_deref(), Some("abc"));
        ia.mtime.nsec += 1;
        assert_eq!(stored_etag(&x, &ia), None);
    }

    #[test]
    fn multipart_etag_matches_s3() {
        // Two parts "a" and "b": MD5(MD5("a") ‖ MD5("b")) with the part count.
        let e = multipart_etag(&[md5_hex(b"a"), md5_hex(b"b")]);
        let mut h = Md5::new();
        h.update(Md5::digest(b"a"));
        h.update(Md5::digest(b"b"));
        assert_eq!(e, format!("{}-2", hex::encode(h.finalize())));
    }

    #[test]
    fn metadata_round_trips_through_xattrs() {
        let mut m = ObjectMeta::default();
        m.set("content-type", Some("text/plain".into()));
        m.user.insert("color".into(), "blue".into());
        m.tagging = Some("a=1&b=2".into());
        assert_eq!(ObjectMeta::from_xattrs(&m.to_xattrs()), m);
        assert_eq!(m.tag_count(), Some(2));
    }
}
