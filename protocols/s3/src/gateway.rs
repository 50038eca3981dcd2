//! What every S3 operation shares: the gateway's state, keys split into path names, and the
//! lookups of buckets and objects with their ETags.

use crate::VolumeSource;
use crate::error::{On, fs_error};
use crate::layout;
use crate::list::walk::DirCache;
use crate::meta::{etag_xattr, stored_etag};
use crate::vfs::{OpenFile, STAGING_DIR, Vfs};
use engine::fop::{Gfid, Iatt, Xattrs};
use md5::{Digest, Md5};
use parking_lot::Mutex;
use s3s::dto::*;
use s3s::{S3Result, s3_error};
use std::sync::Arc;

/// Longest key S3 accepts, in bytes.
const MAX_KEY: usize = 1024;

pub struct GatewayS3 {
    volume: VolumeSource,
    /// Who a request's key is, for tenancy.
    pub(crate) keys: Arc<dyn crate::KeySource>,
    pub(crate) region: String,
    pub(crate) dirs: DirCache,
    /// gfid of `STAGING_DIR/<name>` directories, found once.
    staging: Mutex<Vec<(String, Gfid)>>,
}

/// A key split into the directories above it and its last name (None for a `dir/` marker).
pub(crate) struct Key<'a> {
    pub dirs: Vec<&'a str>,
    pub name: Option<&'a str>,
}

/// Splits a key into path names, refusing what would leave the bucket or cannot be a name.
pub(crate) fn parse_key(key: &str) -> S3Result<Key<'_>> {
    if key.is_empty() {
        return Err(s3_error!(InvalidArgument, "The key is empty."));
    }
    if key.len() > MAX_KEY {
        return Err(s3_error!(KeyTooLongError, "Your key is too long."));
    }
    let (body, marker) = match key.strip_suffix('/') {
        Some(b) => (b, true),
        None => (key, false),
    };
    let mut names: Vec<&str> = body.split('/').collect();
    for n in &names {
        if n.is_empty() || *n == "." || *n == ".." || n.contains('\0') {
            return Err(s3_error!(
                InvalidArgument,
                "The key {key:?} has an empty, '.' or '..' path segment, which would leave its place in the bucket."
            ));
        }
        if n.len() > 255 {
            return Err(s3_error!(
                KeyTooLongError,
                "A path segment of the key is longer than 255 bytes."
            ));
        }
        // Code points 0x80-0x9f are what a key in a legacy 8-bit charset turns into when it is
        // read as Latin-1: not text anyone meant, and S3 answers such a key InvalidURI.
        if n.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)) {
            return Err(s3_error!(InvalidURI, "Couldn't parse the specified URI."));
        }
        if layout::reserved(n) {
            return Err(s3_error!(
                InvalidArgument,
                "The key {key:?} has a path segment named {n:?}, which this gateway keeps for objects whose key is also a folder."
            ));
        }
    }
    if marker {
        return Ok(Key {
            dirs: names,
            name: None,
        });
    }
    let name = names.pop();
    Ok(Key { dirs: names, name })
}

pub(crate) fn valid_bucket(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains('/') && name != STAGING_DIR
}

pub(crate) fn etag_of(s: &str) -> ETag {
    ETag::Strong(s.to_string())
}

/// An object found by key: its attributes, xattrs and (valid) ETag.
pub(crate) struct Found1 {
    pub ia: Iatt,
    pub x: Xattrs,
    pub etag: String,
}

impl GatewayS3 {
    pub fn new(volume: VolumeSource, keys: Arc<dyn crate::KeySource>, region: String) -> GatewayS3 {
        GatewayS3 {
            volume,
            keys,
            region,
            dirs: DirCache::default(),
            staging: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn vfs(&self) -> S3Result<Vfs> {
        match (self.volume)() {
            Some(top) => Ok(Vfs::new(top)),
            None => Err(s3_error!(
                ServiceUnavailable,
                "The volume behind this endpoint is not started."
            )),
        }
    }

    pub(crate) async fn bucket(&self, vfs: &Vfs, name: &str) -> S3Result<Gfid> {
        if !valid_bucket(name) {
            return Err(s3_error!(
                NoSuchBucket,
                "The specified bucket does not exist."
            ));
        }
        match vfs.find(Gfid::ROOT, name, &Xattrs::new()).await {
            Ok((ia, _)) if ia.is_dir() => Ok(ia.gfid),
            Ok(_) => Err(s3_error!(
                NoSuchBucket,
                "The specified bucket does not exist."
            )),
            Err(e) => Err(fs_error(e, On::Bucket)),
        }
    }

    /// `STAGING_DIR/<sub>`, made on first use.
    pub(crate) async fn staging(&self, vfs: &Vfs, sub: &str) -> S3Result<Gfid> {
        if let Some((_, g)) = self.staging.lock().iter().find(|(n, _)| n == sub) {
            return Ok(*g);
        }
        let g = vfs
            .mkdir_p(Gfid::ROOT, &[STAGING_DIR, sub])
            .await
            .map_err(|e| fs_error(e, On::Object))?;
        self.staging.lock().push((sub.to_string(), g));
        Ok(g)
    }

    pub(crate) fn forget_staging(&self) {
        self.staging.lock().clear();
    }

    /// The ETag of a file: stored, or computed now by reading it and then stored.
    pub(crate) async fn etag(&self, vfs: &Vfs, ia: &Iatt, x: &Xattrs) -> S3Result<String> {
        if let Some(e) = stored_etag(x, ia) {
            return Ok(e);
        }
        let mut rx = vfs.read_range(Arc::new(vfs.anonymous(ia.gfid)), 0, ia.size);
        let mut h = Md5::new();
        while let Some(b) = rx.recv().await {
            let b = b.map_err(|e| {
                s3_error!(InternalError, "reading the object to compute its ETag: {e}")
            })?;
            h.update(&b);
        }
        let etag = hex::encode(h.finalize());
        // If the file changed while it was read, the stamp (size, mtime of before) no longer
        // matches and the next reader computes again. A cache, not a change of the file: it
        // moves none of the file's times.
        let cache = vfs.internal();
        if let Err(e) = cache.setxattrs(ia.gfid, &etag_xattr(&etag, ia)).await {
            tracing::debug!("could not store a computed ETag: {e}");
        }
        Ok(etag)
    }

    /// Looks an object up by key (`layout.rs` says where it lives): NoSuchKey when there is none.
    pub(crate) async fn object(&self, vfs: &Vfs, bucket: &str, key: &str) -> S3Result<Found1> {
        let b = self.bucket(vfs, bucket).await?;
        self.object_in(vfs, b, key, |_| Ok(())).await
    }

    /// Looks an object up in bucket `b`; `check` sees its xattrs (None when the key has no
    /// object) and may refuse before anything more is read.
    pub(crate) async fn object_in(
        &self,
        vfs: &Vfs,
        b: Gfid,
        key: &str,
        check: impl FnOnce(Option<&Xattrs>) -> S3Result<()>,
    ) -> S3Result<Found1> {
        let k = parse_key(key)?;
        let found = layout::find(vfs, b, &k.dirs, k.name)
            .await
            .map_err(|e| fs_error(e, On::Object))?;
        check(match &found {
            None => None,
            Some(layout::Found::File(_, x)) | Some(layout::Found::Folder(_, x)) => Some(x),
        })?;
        match found {
            None => Err(s3_error!(NoSuchKey, "The specified key does not exist.")),
            Some(layout::Found::File(ia, x)) => {
                let etag = self.etag(vfs, &ia, &x).await?;
                Ok(Found1 { ia, x, etag })
            }
            // A folder without data: an empty object, whose attributes (size 0 aside) and
            // xattrs are the directory's.
            Some(layout::Found::Folder(mut ia, x)) => {
                ia.size = 0;
                ia.mtime = layout::folder_mtime(&ia, &x);
                Ok(Found1 {
                    ia,
                    x,
                    etag: crate::meta::md5_hex(b""),
                })
            }
        }
    }

    /// The object's data as a body stream of `[start, end)`.
    pub(crate) async fn body(
        &self,
        vfs: &Vfs,
        gfid: Gfid,
        start: u64,
        end: u64,
    ) -> S3Result<StreamingBlob> {
        let f: Arc<OpenFile> = Arc::new(vfs.anonymous(gfid));
        let rx = vfs.read_range(f, start, end);
        Ok(StreamingBlob::wrap(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
    }
}

/// Metadata a PUT, CopyObject (REPLACE) or CreateMultipartUpload carries: `x-amz-meta-*` as the
/// request's headers have them (`ObjectMeta::set_user_from`), or as s3s read them from a POST
/// object's form fields.
macro_rules! meta_from {
    ($i:expr, $headers:expr) => {{
        let mut m = ObjectMeta::default();
        m.set("content-type", $i.content_type.clone());
        m.set(
            "content-encoding",
            crate::meta::stored_encoding($i.content_encoding.clone()),
        );
        m.set("content-disposition", $i.content_disposition.clone());
        m.set("content-language", $i.content_language.clone());
        m.set("cache-control", $i.cache_control.clone());
        m.set_expires($i.expires.as_ref());
        if let Some(md) = &$i.metadata {
            for (k, v) in md {
                m.user.insert(k.to_ascii_lowercase(), v.clone());
            }
        }
        m.set_user_from($headers);
        m
    }};
}
pub(crate) use meta_from;

/// Object lock is not offered: a write asking to lock what it stores (retention or a legal
/// hold) is refused rather than stored unlocked.
pub(crate) fn refuse_object_lock(h: &http::HeaderMap) -> S3Result<()> {
    if h.keys()
        .any(|k| k.as_str().starts_with("x-amz-object-lock-"))
    {
        return Err(s3_error!(
            NotImplemented,
            "Object lock (x-amz-object-lock-*) is not supported by this gateway; nothing was stored."
        ));
    }
    Ok(())
}

/// Server-side encryption is not offered: a request that asks for it (SSE-S3, SSE-KMS, or a
/// customer key to encrypt or decrypt with) is refused, so nothing meant to be encrypted is
/// stored in the clear and no client believes its data is.
pub(crate) fn refuse_encryption(h: &http::HeaderMap) -> S3Result<()> {
    // Two kinds of encryption at once is a bad request whatever the server supports.
    if h.contains_key("x-amz-server-side-encryption")
        && h.contains_key("x-amz-server-side-encryption-customer-algorithm")
    {
        return Err(s3_error!(
            InvalidArgument,
            "Server Side Encryption with Customer provided key is incompatible with the encryption method specified"
        ));
    }
    let asks = h.keys().any(|k| {
        k.as_str().starts_with("x-amz-server-side-encryption")
            || k.as_str()
                .starts_with("x-amz-copy-source-server-side-encryption")
    });
    if asks {
        return Err(s3_error!(
            NotImplemented,
            "Server-side encryption (x-amz-server-side-encryption*) is not supported by this gateway; nothing was stored or read."
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_leave_the_bucket() {
        for bad in ["", "../x", "a/../b", "a//b", "/a", "./a", "a/./b", "a\0b"] {
            assert!(parse_key(bad).is_err(), "{bad:?} accepted");
        }
        let k = parse_key("a/b/c.txt").unwrap();
        assert_eq!(k.dirs, ["a", "b"]);
        assert_eq!(k.name, Some("c.txt"));
        let k = parse_key("photos/").unwrap();
        assert_eq!(k.dirs, ["photos"]);
        assert_eq!(k.name, None);
        assert!(parse_key(&"x".repeat(1025)).is_err());
    }
}
