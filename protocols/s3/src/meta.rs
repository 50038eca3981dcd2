//! Object metadata as `user.s3.*` xattrs on the file itself, so it travels with the file through
//! renames, copies by other tools and a move to GlusterFS, and no index can go stale.
//!
//! The ETag is stored with the size and mtime (to the nanosecond, the same on every replica
//! thanks to `features/utime`) it was computed for, and believed only while the file still
//! shows them: a write through any frontend, ours or a GlusterFS client's, moves mtime. So the
//! bricks need to know nothing of it, and a PUT stores it once, on its staging file: the rename
//! that publishes the file and later tag or ACL changes move ctime, not the stamp.

use bytes::Bytes;
use engine::fop::{Iatt, Timespec, Xattrs};
use http::{HeaderMap, HeaderName, HeaderValue};
use md5::{Digest, Md5};
use s3s::dto::{Timestamp, TimestampFormat};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const ETAG: &str = "user.s3.etag";
const PREFIX: &str = "user.s3.";
const USER_META: &str = "user.s3.meta.";
pub const TAGGING: &str = "user.s3.tagging";
/// The additional checksum an object was stored with: `stamp|` then `ALGO TYPE VALUE`.
pub const CHECKSUM: &str = "user.s3.checksum";
/// A multipart object's parts: `stamp|` then sizes and checksums (`Parts::encode`).
pub const PARTS: &str = "user.s3.parts";
/// Values up to this size stay in their xattr; larger ones go to a sidecar file (`sidecar.rs`).
pub const INLINE_MAX: usize = 1024;
/// What an xattr holds (before a count) when its value is in the object's sidecar file.
pub const ASIDE: char = '@';
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
    /// How many tags the object has in its sidecar (`sidecar.rs`), when `tagging` was too
    /// large for an xattr and is not loaded.
    pub tags_aside: Option<i32>,
    /// Its owner and ACL (`access`), set by who writes it.
    pub access: Xattrs,
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
                match v.strip_prefix(ASIDE) {
                    Some(n) => m.tags_aside = n.parse().ok(),
                    None => m.tagging = Some(v),
                }
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

    /// The xattrs to store on the object's file, and the tag set when it is too large for them
    /// and goes to the sidecar instead (the xattr then holds `@` and the tag count).
    pub fn object_xattrs(&self) -> (Xattrs, Option<String>) {
        let mut x = self.to_xattrs();
        x.extend(self.access.clone());
        match &self.tagging {
            Some(t) if t.len() > INLINE_MAX => {
                let n = self.tag_count().unwrap_or(0);
                x.insert(TAGGING.to_string(), Bytes::from(format!("{}{n}", ASIDE)));
                (x, Some(t.clone()))
            }
            _ => (x, None),
        }
    }

    /// Every xattr name this metadata might occupy on a file that has `old`: what a REPLACE
    /// must remove before it sets the new set (the ETag, checksum, parts and folder marks stay).
    pub fn stale_names(old: &Xattrs, keep_tags: bool) -> Vec<String> {
        old.keys()
            .filter(|k| {
                k.starts_with(USER_META)
                    || (!keep_tags && k.as_str() == TAGGING)
                    || k.strip_prefix(PREFIX)
                        .is_some_and(|rest| CONTENT.contains(&rest))
            })
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

    /// `x-amz-meta-*` exactly as the request sent them (s3s's `metadata` has RFC 2047 words
    /// decoded; S3 keeps a value as it was sent, encoded words included).
    pub fn set_user_from(&mut self, h: &HeaderMap) {
        for (name, v) in h {
            if let Some(k) = name.as_str().strip_prefix("x-amz-meta-")
                && !k.is_empty()
                && let Ok(v) = std::str::from_utf8(v.as_bytes())
            {
                self.user.insert(k.to_string(), v.to_string());
            }
        }
    }

    /// The `x-amz-meta-*` response headers. A value that is not plain ASCII goes out as
    /// ISO-8859-1 bytes when every character has one (HTTP clients read header bytes as
    /// ISO-8859-1, so an SDK that sent `é` as UTF-8 reads `é` back: s3-tests'
    /// test_object_set_get_unicode_metadata), otherwise as an RFC 2047 encoded word, the form S3
    /// documents for non-ASCII metadata.
    pub fn user_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in &self.user {
            let Ok(name) = HeaderName::from_bytes(format!("x-amz-meta-{k}").as_bytes()) else {
                continue;
            };
            let printable = |c: char| c == '\t' || (' '..='~').contains(&c);
            let value = if v.chars().all(printable) {
                HeaderValue::from_str(v).ok()
            } else if v
                .chars()
                .all(|c| printable(c) || ('\u{a0}'..='\u{ff}').contains(&c))
            {
                HeaderValue::from_bytes(&v.chars().map(|c| c as u8).collect::<Vec<_>>()).ok()
            } else {
                use base64::Engine;
                let b = base64::engine::general_purpose::STANDARD.encode(v.as_bytes());
                HeaderValue::from_str(&format!("=?UTF-8?B?{b}?=")).ok()
            };
            if let Some(value) = value {
                h.insert(name, value);
            }
        }
        h
    }

    pub fn tag_count(&self) -> Option<i32> {
        if self.tags_aside.is_some() {
            return self.tags_aside;
        }
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

/// Content-Encoding as stored: `aws-chunked` describes the request body only (S3 drops it), so
/// `gzip, aws-chunked` is kept as `gzip` and `aws-chunked` alone as nothing.
pub fn stored_encoding(v: Option<String>) -> Option<String> {
    let kept: Vec<&str> = v
        .as_deref()?
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    (!kept.is_empty()).then(|| kept.join(", "))
}

/// `value` stamped with the file's size and mtime, as the ETag is: a value that describes the
/// bytes (a checksum, the part layout) is believed only while the file is the one it was made
/// for. The stamp comes first (`size|mtime|value`), so the value may hold any character.
pub fn stamped(value: &str, ia: &Iatt) -> Bytes {
    Bytes::from(format!("{}|{value}", stamp(ia)))
}

/// A `stamped` value that still describes the file.
pub fn unstamped(x: &Xattrs, name: &str, ia: &Iatt) -> Option<String> {
    let v = std::str::from_utf8(x.get(name)?).ok()?;
    let mut it = v.splitn(3, '|');
    let st = format!("{}|{}", it.next()?, it.next()?);
    (st == stamp(ia)).then(|| it.next().unwrap_or("").to_string())
}

/// The additional checksum an object is stored with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredChecksum {
    /// Index in `checksum::ALGOS`.
    pub algo: usize,
    /// FULL_OBJECT (of all the bytes) or COMPOSITE (of the parts' checksums, `-N`).
    pub full_object: bool,
    pub value: String,
}

impl StoredChecksum {
    pub fn encode(&self) -> String {
        let kind = if self.full_object {
            "FULL_OBJECT"
        } else {
            "COMPOSITE"
        };
        format!(
            "{} {kind} {}",
            crate::checksum::ALGOS[self.algo],
            self.value
        )
    }

    pub fn decode(s: &str) -> Option<StoredChecksum> {
        let mut it = s.splitn(3, ' ');
        let algo = crate::checksum::algo_index(it.next()?)?;
        let full_object = it.next()? == "FULL_OBJECT";
        Some(StoredChecksum {
            algo,
            full_object,
            value: it.next()?.to_string(),
        })
    }

    /// As s3s's output fields carry it.
    pub fn to_dto(&self) -> s3s::dto::Checksum {
        let mut c = crate::checksum::with_value(self.algo, self.value.clone());
        c.checksum_type = Some(s3s::dto::ChecksumType::from_static(if self.full_object {
            s3s::dto::ChecksumType::FULL_OBJECT
        } else {
            s3s::dto::ChecksumType::COMPOSITE
        }));
        c
    }
}

/// The parts a multipart object was assembled from: their sizes and, when the upload had an
/// algorithm, their checksums (GetObject/HeadObject `partNumber`, GetObjectAttributes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parts {
    pub sizes: Vec<u64>,
    pub checksums: Vec<String>,
}

impl Parts {
    /// Sizes run-length encoded (`5242880*5,1048576`: all parts but the last are usually the
    /// same size), then `;` and the checksums.
    pub fn encode(&self) -> String {
        let mut runs: Vec<(u64, usize)> = Vec::new();
        for s in &self.sizes {
            match runs.last_mut() {
                Some((v, n)) if v == s => *n += 1,
                _ => runs.push((*s, 1)),
            }
        }
        let sizes: Vec<String> = runs
            .iter()
            .map(|(v, n)| {
                if *n == 1 {
                    v.to_string()
                } else {
                    format!("{v}*{n}")
                }
            })
            .collect();
        format!("{};{}", sizes.join(","), self.checksums.join(","))
    }

    pub fn decode(s: &str) -> Option<Parts> {
        let (sizes, sums) = s.split_once(';')?;
        let mut p = Parts::default();
        for run in sizes.split(',').filter(|r| !r.is_empty()) {
            let (v, n): (u64, usize) = match run.split_once('*') {
                Some((v, n)) => (v.parse().ok()?, n.parse().ok()?),
                None => (run.parse().ok()?, 1),
            };
            p.sizes.extend(std::iter::repeat_n(v, n));
        }
        p.checksums = sums
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        Some(p)
    }

    /// `[start, end)` of part `n` (from 1).
    pub fn range(&self, n: usize) -> Option<(u64, u64)> {
        let start: u64 = self.sizes.get(..n.checked_sub(1)?)?.iter().sum();
        Some((start, start + self.sizes.get(n - 1)?))
    }
}

fn stamp(ia: &Iatt) -> String {
    format!("{}|{}.{}", ia.size, ia.mtime.sec, ia.mtime.nsec)
}

/// The xattr that records `etag` for the file as `ia` describes it.
pub fn etag_xattr(etag: &str, ia: &Iatt) -> Xattrs {
    Xattrs::from([(
        ETAG.to_string(),
        Bytes::from(format!("{etag}|{}", stamp(ia))),
    )])
}

/// The stored ETag when it still describes the file; None (compute it again) when the file
/// changed since, or for a value without a stamp.
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
        let mut renamed = ia.clone();
        renamed.ctime.sec += 1;
        assert_eq!(stored_etag(&x, &renamed).as_deref(), Some("abc"));
        ia.mtime.nsec += 1;
        assert_eq!(stored_etag(&x, &ia), None);
        let plain = Xattrs::from([(ETAG.to_string(), Bytes::from("abc"))]);
        assert_eq!(stored_etag(&plain, &ia), None);
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
    fn stamped_values_follow_size_and_mtime() {
        let mut ia = Iatt {
            size: 5,
            ..Default::default()
        };
        let mut x = Xattrs::new();
        x.insert(PARTS.into(), stamped("5;a|b", &ia));
        assert_eq!(unstamped(&x, PARTS, &ia).as_deref(), Some("5;a|b"));
        ia.size = 6;
        assert_eq!(unstamped(&x, PARTS, &ia), None);
    }

    #[test]
    fn parts_round_trip_run_length_encoded() {
        let p = Parts {
            sizes: vec![5, 5, 5, 2],
            checksums: vec!["a=".into(), "b=".into(), "c=".into(), "d=".into()],
        };
        assert_eq!(p.encode(), "5*3,2;a=,b=,c=,d=");
        assert_eq!(Parts::decode(&p.encode()), Some(p.clone()));
        assert_eq!(p.range(1), Some((0, 5)));
        assert_eq!(p.range(4), Some((15, 17)));
        assert_eq!(p.range(5), None);
        assert_eq!(p.range(0), None);
    }

    #[test]
    fn aws_chunked_is_not_a_stored_encoding() {
        let s = |v: &str| stored_encoding(Some(v.to_string()));
        assert_eq!(s("gzip, aws-chunked").as_deref(), Some("gzip"));
        assert_eq!(s("aws-chunked, gzip").as_deref(), Some("gzip"));
        assert_eq!(s("deflate, gzip").as_deref(), Some("deflate, gzip"));
        assert_eq!(s("aws-chunked"), None);
        assert_eq!(s("aws-chunked, aws-chunked"), None);
    }

    #[test]
    fn non_ascii_metadata_goes_out_as_latin1_or_rfc2047() {
        let mut m = ObjectMeta::default();
        m.user.insert("a".into(), "Hello World\u{e9}".into());
        m.user.insert("b".into(), "\u{65e5}".into());
        m.user.insert("c".into(), "=?UTF-8?Q?caf=C3=A9?=".into());
        let h = m.user_headers();
        assert_eq!(h["x-amz-meta-a"].as_bytes(), b"Hello World\xe9");
        assert_eq!(h["x-amz-meta-b"].as_bytes(), b"=?UTF-8?B?5pel?=");
        assert_eq!(h["x-amz-meta-c"].as_bytes(), b"=?UTF-8?Q?caf=C3=A9?=");
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
