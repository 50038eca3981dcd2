//! Buckets and objects over the volume's namespace.

use crate::VolumeSource;
use crate::checksum::BodyChecks;
use crate::error::{On, clash, fs_error};
use crate::list::{self, DirCache, Found, Query, url_encode};
use crate::meta::{self, ObjectMeta, etag_xattr, stored_etag, timestamp};
use crate::vfs::{OpenFile, STAGING_DIR, Vfs, WriteError};
use bytes::Bytes;
use engine::fop::{Ctx, Errno, Gfid, Iatt, Xattrs};
use futures::StreamExt;
use md5::{Digest, Md5};
use parking_lot::Mutex;
use s3s::dto::*;
use s3s::{S3, S3Error, S3Request, S3Response, S3Result, s3_error};
use std::sync::Arc;

/// What `tmp_name` adds to a name.
const TMP_EXTRA: usize = 1 + ".s3tmp-".len() + 32;

/// A PUT's staging name next to its key: hidden, and hashed by distribute as the key itself.
fn tmp_name(name: &str) -> String {
    format!(".{name}.s3tmp-{}", uuid::Uuid::new_v4().simple())
}

/// Longest key S3 accepts, in bytes.
const MAX_KEY: usize = 1024;
const MAX_KEYS_PER_PAGE: usize = 1000;

pub struct GatewayS3 {
    volume: VolumeSource,
    region: String,
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

fn valid_bucket(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains('/') && name != STAGING_DIR
}

pub(crate) fn etag_of(s: &str) -> ETag {
    ETag::Strong(s.to_string())
}

/// RFC 9110 §13.2.2 order, as S3 applies it to GET and HEAD.
fn check_conditions(
    etag: &str,
    ia: &Iatt,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
    read: bool,
) -> S3Result<()> {
    let matches = |c: &ETagCondition| match c {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == etag,
    };
    let mtime = time::OffsetDateTime::from(meta::timestamp_secs(ia.mtime));
    if let Some(c) = if_match {
        if !matches(c) {
            return Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            ));
        }
    } else if let Some(t) = if_unmodified_since
        && mtime > time::OffsetDateTime::from(t.clone())
    {
        return Err(s3_error!(
            PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold"
        ));
    }
    if let Some(c) = if_none_match {
        if matches(c) {
            return Err(if read {
                s3_error!(NotModified)
            } else {
                s3_error!(
                    PreconditionFailed,
                    "At least one of the pre-conditions you specified did not hold"
                )
            });
        }
    } else if let Some(t) = if_modified_since
        && mtime <= time::OffsetDateTime::from(t.clone())
        && read
    {
        return Err(s3_error!(NotModified));
    }
    Ok(())
}

/// Removes a PUT's staging file unless the object was committed: after any error, and when the
/// request is dropped half way (its client went away), which no error path sees.
struct StagingGuard {
    vfs: Vfs,
    dir: Gfid,
    name: String,
    armed: bool,
}

impl Drop for StagingGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (vfs, dir, name) = (self.vfs.clone(), self.dir, std::mem::take(&mut self.name));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                match vfs.unlink(dir, &name).await {
                    Ok(()) | Err(Errno::ENOENT) => {}
                    Err(e) => tracing::warn!(file = %name, "removing a staging file: {e}"),
                }
            });
        }
    }
}

/// Where a stored object's ETag comes from.
pub(crate) enum EtagFrom<'a> {
    /// The MD5 of the bytes written, checked against Content-MD5 when the client sent one, as
    /// `checks` holds the body to the other checksums it promised.
    Md5 {
        content_md5: Option<&'a str>,
        checks: &'a mut BodyChecks,
    },
    /// Decided by the caller (a multipart object's, or a copy's source's).
    Given(String),
}

/// An object found by key: its attributes, xattrs and (valid) ETag.
pub(crate) struct Found1 {
    pub ia: Iatt,
    pub x: Xattrs,
    pub etag: String,
}

impl GatewayS3 {
    pub fn new(volume: VolumeSource, region: String) -> GatewayS3 {
        GatewayS3 {
            volume,
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
        match vfs.lookup(Gfid::ROOT, name, &Xattrs::new()).await {
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
        let cache = Vfs {
            ctx: Ctx::internal(),
            ..vfs.clone()
        };
        if let Err(e) = cache.setxattrs(ia.gfid, &etag_xattr(&etag, ia)).await {
            tracing::debug!("could not store a computed ETag: {e}");
        }
        Ok(etag)
    }

    /// Looks an object up by key: NoSuchKey for anything that is not a regular file.
    pub(crate) async fn object(&self, vfs: &Vfs, bucket: &str, key: &str) -> S3Result<Found1> {
        let b = self.bucket(vfs, bucket).await?;
        let k = parse_key(key)?;
        let mut names = k.dirs.clone();
        let Some(name) = k.name else {
            return Err(s3_error!(NoSuchKey, "The specified key does not exist."));
        };
        names.push(name);
        let (ia, _) = match vfs.walk(b, &names, &Xattrs::new()).await {
            Ok(r) => r,
            Err(Errno::ENOTDIR) => {
                return Err(s3_error!(NoSuchKey, "The specified key does not exist."));
            }
            Err(e) => return Err(fs_error(e, On::Object)),
        };
        if !ia.is_reg() {
            return Err(s3_error!(NoSuchKey, "The specified key does not exist."));
        }
        let x = vfs
            .getxattr(ia.gfid, None)
            .await
            .map_err(|e| fs_error(e, On::Object))?;
        let etag = self.etag(vfs, &ia, &x).await?;
        Ok(Found1 { ia, x, etag })
    }

    /// Writes `body` as the object `key`: into a staging file first, renamed over the key when
    /// every byte is on the bricks, so readers see the old object or the whole new one, and a
    /// failed upload leaves nothing behind. Returns the ETag and the new file's attributes.
    pub(crate) async fn store<S, E>(
        &self,
        vfs: &Vfs,
        bucket: Gfid,
        key: &str,
        meta: &ObjectMeta,
        body: S,
        mut etag_from: EtagFrom<'_>,
    ) -> S3Result<(String, Iatt)>
    where
        S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let k = parse_key(key)?;
        let Some(name) = k.name else {
            return Err(s3_error!(
                InvalidArgument,
                "A key ending in '/' names a directory and holds no data."
            ));
        };
        let parent = vfs
            .mkdir_p(bucket, &k.dirs)
            .await
            .map_err(|e| fs_error(e, On::Object))?;
        // The staging file sits next to its key under a name distribute hashes as the key's
        // (GlusterFS's rsync-hash-regex: `.NAME.XXXX` hashes as NAME), so it is created on the
        // brick the key belongs to and the final rename moves no data and leaves no linkto.
        // FUSE and listings hide these names. A name too long for the prefix stages in
        // STAGING_DIR instead.
        let (tmp_dir, tmp) = if name.len() + TMP_EXTRA <= 255 {
            (parent, tmp_name(name))
        } else {
            (
                self.staging(vfs, "tmp").await?,
                format!("put-{}", uuid::Uuid::new_v4().simple()),
            )
        };
        let (f, created) = match vfs.create(tmp_dir, &tmp, meta.to_xattrs()).await {
            Ok(r) => r,
            Err(e) => {
                self.forget_staging();
                return Err(fs_error(e, On::Object));
            }
        };
        let mut guard = StagingGuard {
            vfs: vfs.clone(),
            dir: tmp_dir,
            name: tmp.clone(),
            armed: true,
        };
        let mut unchecked = BodyChecks::default();
        let checks = match &mut etag_from {
            EtagFrom::Md5 { checks, .. } => &mut **checks,
            EtagFrom::Given(_) => &mut unchecked,
        };
        let mut h = Md5::new();
        let written = vfs
            .write_stream(&f, body, |c| {
                h.update(c);
                checks.update(c);
            })
            .await;
        let fail = |err: S3Error| async {
            if err.status_code().is_some_and(|c| c.is_server_error()) {
                tracing::warn!(key, "storing an object failed: {err}");
            }
            let _ = vfs.unlink(tmp_dir, &tmp).await;
            Err(err)
        };
        if let Err(e) = &written {
            let e = match e {
                WriteError::Body(e) => WriteError::Body(e.to_string()),
                WriteError::Fs(e) => WriteError::Fs(*e),
            };
            drop(f);
            return fail(match e {
                WriteError::Body(e) => crate::error::body_error(&e),
                WriteError::Fs(e) => fs_error(e, On::Object),
            })
            .await;
        }
        if let Err(e) = checks.verify() {
            drop(f);
            return fail(e).await;
        }
        let digest = h.finalize();
        if let EtagFrom::Md5 {
            content_md5: Some(want),
            ..
        } = &etag_from
        {
            use base64::Engine;
            let got = base64::engine::general_purpose::STANDARD.encode(digest);
            if got != want.trim() {
                drop(f);
                return fail(s3_error!(
                    BadDigest,
                    "The Content-MD5 you specified did not match what we received."
                ))
                .await;
            }
        }
        let etag = match etag_from {
            EtagFrom::Given(e) => e,
            EtagFrom::Md5 { .. } => hex::encode(digest),
        };
        let ia = match written {
            Ok((_, Some(ia))) => ia,
            _ => created,
        };
        drop(f);
        if let Err(e) = vfs.setxattrs(ia.gfid, &etag_xattr(&etag, &ia)).await {
            return fail(fs_error(e, On::Object)).await;
        }
        // A concurrent delete may prune the parent between mkdir_p and here: make it again once.
        let mut r = vfs.rename((tmp_dir, &tmp), (parent, name)).await;
        if matches!(r, Err(Errno::ENOENT) | Err(Errno::ESTALE)) {
            let parent = vfs
                .mkdir_p(bucket, &k.dirs)
                .await
                .map_err(|e| fs_error(e, On::Object))?;
            r = vfs.rename((tmp_dir, &tmp), (parent, name)).await;
        }
        match r {
            Ok(_) => {}
            Err(Errno::EISDIR) | Err(Errno::ENOTEMPTY) | Err(Errno::EEXIST) => {
                return fail(clash()).await;
            }
            Err(e) => return fail(fs_error(e, On::Object)).await,
        }
        guard.armed = false;
        Ok((etag, ia))
    }

    /// Removes the directories a deleted key leaves empty, deepest first, up to the bucket:
    /// S3 has no directories, so the ones it made implicitly go with their last object.
    async fn prune(&self, vfs: &Vfs, bucket: Gfid, dirs: &[&str]) {
        let mut chain = vec![bucket];
        for d in dirs {
            match vfs
                .lookup(*chain.last().expect("non-empty"), d, &Xattrs::new())
                .await
            {
                Ok((ia, _)) if ia.is_dir() => chain.push(ia.gfid),
                _ => return,
            }
        }
        for i in (0..dirs.len()).rev() {
            if !matches!(vfs.has_entries(chain[i + 1]).await, Ok(false))
                || vfs.rmdir(chain[i], dirs[i]).await.is_err()
            {
                return;
            }
        }
    }

    async fn delete_key(&self, vfs: &Vfs, bucket: Gfid, key: &str) -> S3Result<()> {
        let k = parse_key(key)?;
        let mut names = k.dirs.clone();
        let dir_marker = k.name.is_none();
        if let Some(n) = k.name {
            names.push(n);
        }
        let (parent, last) = match names.split_last() {
            Some((last, above)) => match vfs.walk(bucket, above, &Xattrs::new()).await {
                Ok((ia, _)) if above.is_empty() || ia.is_dir() => {
                    (if above.is_empty() { bucket } else { ia.gfid }, *last)
                }
                Ok(_) | Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(()),
                Err(e) => return Err(fs_error(e, On::Object)),
            },
            None => return Ok(()),
        };
        let r = if dir_marker {
            match vfs.rmdir(parent, last).await {
                Err(Errno::ENOTEMPTY) | Err(Errno::ENOTDIR) => Ok(()),
                r => r,
            }
        } else {
            match vfs.lookup(parent, last, &Xattrs::new()).await {
                Ok((ia, _)) if ia.is_dir() => return Ok(()),
                _ => vfs.unlink(parent, last).await,
            }
        };
        match r {
            Ok(()) => {
                let above = &names[..names.len() - 1];
                self.prune(vfs, bucket, above).await;
                Ok(())
            }
            Err(Errno::ENOENT) | Err(Errno::ESTALE) => Ok(()),
            Err(Errno::EISDIR) => Ok(()),
            Err(e) => Err(fs_error(e, On::Object)),
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

    /// A page of a bucket listing, with ETags and attributes for the objects on it.
    pub(crate) async fn list_page(
        &self,
        vfs: &Vfs,
        bucket: Gfid,
        q: Query<'_>,
    ) -> S3Result<(Vec<Object>, Vec<CommonPrefix>, bool, Option<String>)> {
        let q = Query {
            delimiter: q.delimiter.filter(|d| !d.is_empty()),
            max: q.max.min(MAX_KEYS_PER_PAGE),
            ..q
        };
        let (found, truncated) = list::walk(vfs, &self.dirs, bucket, &q)
            .await
            .map_err(|e| fs_error(e, On::Bucket))?;
        let last = found.last().map(|f| f.key().to_string());
        let looked = futures::stream::iter(found.into_iter().map(|f| async move {
            match f {
                Found::Prefix(p) => Ok::<_, S3Error>(Some(either(None, Some(p)))),
                Found::Object { key, parent, name } => {
                    let mut want = Xattrs::new();
                    want.insert(meta::ETAG.to_string(), Bytes::new());
                    let (ia, x) = match vfs.lookup(parent, &name, &want).await {
                        Ok(r) => r,
                        Err(Errno::ENOENT) | Err(Errno::ESTALE) => return Ok(None),
                        Err(e) => return Err(fs_error(e, On::Object)),
                    };
                    if !ia.is_reg() {
                        return Ok(None);
                    }
                    let etag = self.etag(vfs, &ia, &x).await?;
                    Ok(Some(either(
                        Some(Object {
                            key: Some(key),
                            size: Some(ia.size as i64),
                            last_modified: Some(timestamp(ia.mtime)),
                            e_tag: Some(etag_of(&etag)),
                            storage_class: Some(ObjectStorageClass::from_static(
                                ObjectStorageClass::STANDARD,
                            )),
                            ..Default::default()
                        }),
                        None,
                    )))
                }
            }
        }))
        .buffered(32)
        .collect::<Vec<_>>()
        .await;
        let mut objects = Vec::new();
        let mut prefixes = Vec::new();
        for r in looked {
            match r? {
                Some((Some(o), _)) => objects.push(o),
                Some((None, Some(p))) => prefixes.push(CommonPrefix { prefix: Some(p) }),
                _ => {}
            }
        }
        Ok((objects, prefixes, truncated, last))
    }
}

fn either(o: Option<Object>, p: Option<String>) -> (Option<Object>, Option<String>) {
    (o, p)
}

fn enc(on: bool, s: Option<String>) -> Option<String> {
    if on { s.map(|s| url_encode(&s)) } else { s }
}

fn is_url(e: &Option<EncodingType>) -> bool {
    e.as_ref().is_some_and(|e| e.as_str() == EncodingType::URL)
}

fn owner() -> Owner {
    Owner {
        display_name: Some("gateway".into()),
        id: Some("gateway".into()),
    }
}

fn decode_token(t: &str) -> S3Result<String> {
    hex::decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "The continuation token provided is incorrect."
            )
        })
}

fn max_keys(m: Option<i32>) -> S3Result<usize> {
    match m {
        None => Ok(MAX_KEYS_PER_PAGE),
        Some(n) if n < 0 => Err(s3_error!(
            InvalidArgument,
            "max-keys must be a non-negative integer."
        )),
        Some(n) => Ok((n as usize).min(MAX_KEYS_PER_PAGE)),
    }
}

/// Metadata a PUT, CopyObject (REPLACE) or CreateMultipartUpload carries.
macro_rules! meta_from {
    ($i:expr) => {{
        let mut m = ObjectMeta::default();
        m.set("content-type", $i.content_type.clone());
        m.set("content-encoding", $i.content_encoding.clone());
        m.set("content-disposition", $i.content_disposition.clone());
        m.set("content-language", $i.content_language.clone());
        m.set("cache-control", $i.cache_control.clone());
        m.set_expires($i.expires.as_ref());
        if let Some(md) = &$i.metadata {
            for (k, v) in md {
                m.user.insert(k.to_ascii_lowercase(), v.clone());
            }
        }
        m
    }};
}
pub(crate) use meta_from;

fn check_tagging(t: &str) -> S3Result<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(t)
        .map_err(|_| s3_error!(InvalidTag, "The tag header could not be parsed."))?;
    tag_pairs(pairs.into_iter())
}

fn tag_pairs(pairs: impl Iterator<Item = (String, String)>) -> S3Result<String> {
    let pairs: Vec<(String, String)> = pairs.collect();
    if pairs.len() > 10 {
        return Err(s3_error!(
            InvalidTag,
            "Object tags cannot be greater than 10"
        ));
    }
    for (k, v) in &pairs {
        if k.is_empty() || k.len() > 128 || v.len() > 256 {
            return Err(s3_error!(
                InvalidTag,
                "A tag key or value has an invalid length."
            ));
        }
    }
    serde_urlencoded::to_string(&pairs)
        .map_err(|_| s3_error!(InvalidTag, "The tags could not be encoded."))
}

fn tag_set(encoded: Option<&str>) -> TagSet {
    let pairs: Vec<(String, String)> = encoded
        .and_then(|t| serde_urlencoded::from_str(t).ok())
        .unwrap_or_default();
    pairs
        .into_iter()
        .map(|(k, v)| Tag {
            key: Some(k),
            value: Some(v),
        })
        .collect()
}

macro_rules! object_headers {
    ($o:expr, $f:expr, $m:expr) => {{
        $o.content_length = Some($f.ia.size as i64);
        $o.e_tag = Some(etag_of(&$f.etag));
        $o.last_modified = Some(timestamp($f.ia.mtime));
        $o.content_type = Some(
            $m.get("content-type")
                .unwrap_or_else(|| "binary/octet-stream".into()),
        );
        $o.content_encoding = $m.get("content-encoding");
        $o.content_disposition = $m.get("content-disposition");
        $o.content_language = $m.get("content-language");
        $o.cache_control = $m.get("cache-control");
        $o.expires = $m.expires();
        $o.metadata = $m.user_metadata();
        $o.accept_ranges = Some("bytes".into());
        if let Some((_, n)) = $f.etag.split_once('-') {
            $o.parts_count = n.parse().ok();
        }
    }};
}

#[async_trait::async_trait]
impl S3 for GatewayS3 {
    // ---- buckets ----

    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let vfs = self.vfs()?;
        let mut names: Vec<String> = vfs
            .list_dir(Gfid::ROOT)
            .await
            .map_err(|e| fs_error(e, On::Bucket))?
            .into_iter()
            .filter(|(n, d)| *d && valid_bucket(n))
            .map(|(n, _)| n)
            .collect();
        names.sort();
        let mut buckets = Vec::new();
        for n in names {
            if let Ok((ia, _)) = vfs.lookup(Gfid::ROOT, &n, &Xattrs::new()).await {
                buckets.push(Bucket {
                    name: Some(n),
                    creation_date: Some(timestamp(if ia.ctime.sec < ia.mtime.sec {
                        ia.ctime
                    } else {
                        ia.mtime
                    })),
                    ..Default::default()
                });
            }
        }
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(owner()),
            ..Default::default()
        }))
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let vfs = self.vfs()?;
        let name = &req.input.bucket;
        if !valid_bucket(name) {
            return Err(s3_error!(
                InvalidBucketName,
                "The specified bucket is not valid."
            ));
        }
        match vfs.mkdir(Gfid::ROOT, name, Xattrs::new()).await {
            Ok(_) => Ok(S3Response::new(CreateBucketOutput {
                location: Some(format!("/{name}")),
            })),
            Err(Errno::EEXIST) => Err(s3_error!(
                BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it."
            )),
            Err(e) => Err(fs_error(e, On::Bucket)),
        }
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let vfs = self.vfs()?;
        self.bucket(&vfs, &req.input.bucket).await?;
        vfs.rmdir(Gfid::ROOT, &req.input.bucket)
            .await
            .map_err(|e| fs_error(e, On::Bucket))?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let vfs = self.vfs()?;
        self.bucket(&vfs, &req.input.bucket).await?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(self.region.clone()),
            ..Default::default()
        }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let vfs = self.vfs()?;
        self.bucket(&vfs, &req.input.bucket).await?;
        // us-east-1 is reported as an empty constraint, as S3 does.
        let loc = (self.region != "us-east-1")
            .then(|| BucketLocationConstraint::from(self.region.clone()));
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: loc,
        }))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let vfs = self.vfs()?;
        self.bucket(&vfs, &req.input.bucket).await?;
        Ok(S3Response::new(GetBucketVersioningOutput::default()))
    }

    // ---- objects ----

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let vfs = self.vfs()?;
        let i = req.input;
        let bucket = self.bucket(&vfs, &i.bucket).await?;
        let k = parse_key(&i.key)?;
        if k.name.is_none() {
            // A "folder" marker: the directory itself, as consoles make them.
            if i.content_length.unwrap_or(0) > 0 {
                return Err(s3_error!(
                    InvalidArgument,
                    "A key ending in '/' names a directory and cannot hold data."
                ));
            }
            vfs.mkdir_p(bucket, &k.dirs)
                .await
                .map_err(|e| fs_error(e, On::Object))?;
            return Ok(S3Response::new(PutObjectOutput {
                e_tag: Some(etag_of(&meta::md5_hex(b""))),
                ..Default::default()
            }));
        }
        if i.if_match.is_some() || i.if_none_match.is_some() {
            let cur = match self.object(&vfs, &i.bucket, &i.key).await {
                Ok(f) => Some(f),
                Err(e) if *e.code() == s3s::S3ErrorCode::NoSuchKey => None,
                Err(e) => return Err(e),
            };
            match (&cur, &i.if_match, &i.if_none_match) {
                (None, Some(_), _) => {
                    return Err(s3_error!(NoSuchKey, "The specified key does not exist."));
                }
                (Some(f), Some(c), _)
                    if !c.is_any() && c.as_etag().map(|e| e.value()) != Some(f.etag.as_str()) =>
                {
                    return Err(s3_error!(
                        PreconditionFailed,
                        "At least one of the pre-conditions you specified did not hold"
                    ));
                }
                (Some(_), _, Some(_)) => {
                    return Err(s3_error!(
                        PreconditionFailed,
                        "At least one of the pre-conditions you specified did not hold"
                    ));
                }
                _ => {}
            }
        }
        let mut m = meta_from!(i);
        if let Some(t) = &i.tagging {
            m.tagging = Some(check_tagging(t)?);
        }
        let body: futures::stream::BoxStream<'static, Result<Bytes, String>> = match i.body {
            Some(b) => b.map(|r| r.map_err(|e| e.to_string())).boxed(),
            None => futures::stream::empty().boxed(),
        };
        let mut checks = BodyChecks::new(
            crate::checksum::checksums_of!(i),
            &req.headers,
            req.trailing_headers,
        )?;
        let (etag, ia) = self
            .store(
                &vfs,
                bucket,
                &i.key,
                &m,
                body,
                EtagFrom::Md5 {
                    content_md5: i.content_md5.as_deref(),
                    checks: &mut checks,
                },
            )
            .await?;
        let sums = checks.computed();
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(etag_of(&etag)),
            size: Some(ia.size as i64),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let vfs = self.vfs()?;
        let i = req.input;
        let f = self.object(&vfs, &i.bucket, &i.key).await?;
        check_conditions(
            &f.etag,
            &f.ia,
            i.if_match.as_ref(),
            i.if_none_match.as_ref(),
            i.if_modified_since.as_ref(),
            i.if_unmodified_since.as_ref(),
            true,
        )?;
        let (start, end, range) = match &i.range {
            Some(r) => {
                let rg = r.check(f.ia.size).map_err(|_| {
                    s3_error!(InvalidRange, "The requested range is not satisfiable")
                })?;
                let cr = format!(
                    "bytes {}-{}/{}",
                    rg.start,
                    rg.end.saturating_sub(1),
                    f.ia.size
                );
                (rg.start, rg.end, Some(cr))
            }
            None => (0, f.ia.size, None),
        };
        let m = ObjectMeta::from_xattrs(&f.x);
        let mut o = GetObjectOutput::default();
        object_headers!(o, f, m);
        o.content_length = Some((end - start) as i64);
        o.content_range = range;
        o.tag_count = m.tag_count();
        if let Some(v) = i.response_content_type {
            o.content_type = Some(v);
        }
        if let Some(v) = i.response_content_disposition {
            o.content_disposition = Some(v);
        }
        if let Some(v) = i.response_content_encoding {
            o.content_encoding = Some(v);
        }
        if let Some(v) = i.response_content_language {
            o.content_language = Some(v);
        }
        if let Some(v) = i.response_cache_control {
            o.cache_control = Some(v);
        }
        o.body = Some(self.body(&vfs, f.ia.gfid, start, end).await?);
        Ok(S3Response::new(o))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let vfs = self.vfs()?;
        let i = req.input;
        let f = self.object(&vfs, &i.bucket, &i.key).await?;
        check_conditions(
            &f.etag,
            &f.ia,
            i.if_match.as_ref(),
            i.if_none_match.as_ref(),
            i.if_modified_since.as_ref(),
            i.if_unmodified_since.as_ref(),
            true,
        )?;
        let m = ObjectMeta::from_xattrs(&f.x);
        let mut o = HeadObjectOutput::default();
        object_headers!(o, f, m);
        if let Some(r) = &i.range {
            let rg = r
                .check(f.ia.size)
                .map_err(|_| s3_error!(InvalidRange, "The requested range is not satisfiable"))?;
            o.content_length = Some((rg.end - rg.start) as i64);
            o.content_range = Some(format!(
                "bytes {}-{}/{}",
                rg.start,
                rg.end.saturating_sub(1),
                f.ia.size
            ));
        }
        Ok(S3Response::new(o))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let vfs = self.vfs()?;
        let bucket = self.bucket(&vfs, &req.input.bucket).await?;
        self.delete_key(&vfs, bucket, &req.input.key).await?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let vfs = self.vfs()?;
        let bucket = self.bucket(&vfs, &req.input.bucket).await?;
        let quiet = req.input.delete.quiet.unwrap_or(false);
        if req.input.delete.objects.len() > 1000 {
            return Err(s3_error!(
                MalformedXML,
                "A DeleteObjects request names at most 1000 keys."
            ));
        }
        let results = futures::stream::iter(req.input.delete.objects.into_iter().map(|o| {
            let vfs = &vfs;
            async move {
                let r = self.delete_key(vfs, bucket, &o.key).await;
                (o.key, r)
            }
        }))
        .buffered(16)
        .collect::<Vec<_>>()
        .await;
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for (key, r) in results {
            match r {
                Ok(()) if !quiet => deleted.push(DeletedObject {
                    key: Some(key),
                    ..Default::default()
                }),
                Ok(()) => {}
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_string()),
                    key: Some(key),
                    message: e.message().map(str::to_string),
                    version_id: None,
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: Some(errors),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let vfs = self.vfs()?;
        let i = req.input;
        let CopySource::Bucket {
            bucket: sb,
            key: sk,
            ..
        } = &i.copy_source
        else {
            return Err(s3_error!(
                NotImplemented,
                "Copying from an access point is not supported."
            ));
        };
        let src = self.object(&vfs, sb, sk).await?;
        check_conditions(
            &src.etag,
            &src.ia,
            i.copy_source_if_match.as_ref(),
            i.copy_source_if_none_match.as_ref(),
            i.copy_source_if_modified_since.as_ref(),
            i.copy_source_if_unmodified_since.as_ref(),
            false,
        )?;
        let replace = i
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let replace_tags = i
            .tagging_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == TaggingDirective::REPLACE);
        let old = ObjectMeta::from_xattrs(&src.x);
        let mut m = if replace { meta_from!(i) } else { old.clone() };
        m.tagging = if replace_tags {
            i.tagging.as_deref().map(check_tagging).transpose()?
        } else {
            old.tagging.clone()
        };
        let bucket = self.bucket(&vfs, &i.bucket).await?;
        let same = **sb == *i.bucket && **sk == *i.key;
        if same {
            if !replace && !replace_tags {
                return Err(s3_error!(
                    InvalidRequest,
                    "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
                ));
            }
            // Only the metadata changes: no data moves, and the ETag stays.
            for n in ObjectMeta::stale_names(&src.x, false) {
                vfs.removexattr(src.ia.gfid, &n)
                    .await
                    .map_err(|e| fs_error(e, On::Object))?;
            }
            vfs.setxattrs(src.ia.gfid, &m.to_xattrs())
                .await
                .map_err(|e| fs_error(e, On::Object))?;
            return Ok(S3Response::new(CopyObjectOutput {
                copy_object_result: Some(CopyObjectResult {
                    e_tag: Some(etag_of(&src.etag)),
                    last_modified: Some(timestamp(src.ia.mtime)),
                    ..Default::default()
                }),
                ..Default::default()
            }));
        }
        let body = self.body(&vfs, src.ia.gfid, 0, src.ia.size).await?;
        // A plain copy keeps the source's ETag (a multipart "-N" one included), as S3 does for
        // copies it makes in one piece only when the source was not multipart; MD5 otherwise.
        let mut unchecked = BodyChecks::default();
        let keep = if src.etag.contains('-') {
            EtagFrom::Md5 {
                content_md5: None,
                checks: &mut unchecked,
            }
        } else {
            EtagFrom::Given(src.etag.clone())
        };
        let (etag, ia) = self.store(&vfs, bucket, &i.key, &m, body, keep).await?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(etag_of(&etag)),
                last_modified: Some(timestamp(ia.mtime)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    // ---- tagging ----

    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        let vfs = self.vfs()?;
        let i = req.input;
        let f = self.object(&vfs, &i.bucket, &i.key).await?;
        let enc = tag_pairs(
            i.tagging
                .tag_set
                .into_iter()
                .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default())),
        )?;
        let mut x = Xattrs::new();
        x.insert(meta::TAGGING.to_string(), Bytes::from(enc));
        vfs.setxattrs(f.ia.gfid, &x)
            .await
            .map_err(|e| fs_error(e, On::Object))?;
        Ok(S3Response::new(PutObjectTaggingOutput::default()))
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let vfs = self.vfs()?;
        let f = self.object(&vfs, &req.input.bucket, &req.input.key).await?;
        let m = ObjectMeta::from_xattrs(&f.x);
        Ok(S3Response::new(GetObjectTaggingOutput {
            tag_set: tag_set(m.tagging.as_deref()),
            version_id: None,
        }))
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        let vfs = self.vfs()?;
        let f = self.object(&vfs, &req.input.bucket, &req.input.key).await?;
        vfs.removexattr(f.ia.gfid, meta::TAGGING)
            .await
            .map_err(|e| fs_error(e, On::Object))?;
        Ok(S3Response::new(DeleteObjectTaggingOutput::default()))
    }

    // ---- listings ----

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let vfs = self.vfs()?;
        let i = req.input;
        let bucket = self.bucket(&vfs, &i.bucket).await?;
        let prefix = i.prefix.clone().unwrap_or_default();
        let max = max_keys(i.max_keys)?;
        let marker = i.marker.clone().filter(|m| !m.is_empty());
        let (objects, prefixes, truncated, last) = self
            .list_page(
                &vfs,
                bucket,
                Query {
                    prefix: &prefix,
                    delimiter: i.delimiter.as_deref(),
                    after: marker.as_deref(),
                    max,
                    continuation: marker.is_some(),
                },
            )
            .await?;
        let url = is_url(&i.encoding_type);
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(i.bucket),
            prefix: enc(url, Some(prefix)),
            marker: enc(url, Some(marker.unwrap_or_default())),
            max_keys: Some(max as i32),
            is_truncated: Some(truncated),
            next_marker: if truncated { enc(url, last) } else { None },
            contents: Some(encode_objects(url, objects)),
            common_prefixes: Some(encode_prefixes(url, prefixes)),
            delimiter: enc(url, i.delimiter),
            encoding_type: i.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let vfs = self.vfs()?;
        let i = req.input;
        let bucket = self.bucket(&vfs, &i.bucket).await?;
        let prefix = i.prefix.clone().unwrap_or_default();
        let max = max_keys(i.max_keys)?;
        let after = match &i.continuation_token {
            Some(t) => Some(decode_token(t)?),
            None => i.start_after.clone().filter(|s| !s.is_empty()),
        };
        let (objects, prefixes, truncated, last) = self
            .list_page(
                &vfs,
                bucket,
                Query {
                    prefix: &prefix,
                    delimiter: i.delimiter.as_deref(),
                    after: after.as_deref(),
                    max,
                    continuation: i.continuation_token.is_some(),
                },
            )
            .await?;
        let url = is_url(&i.encoding_type);
        let count = objects.len() + prefixes.len();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(i.bucket),
            prefix: enc(url, Some(prefix)),
            max_keys: Some(max as i32),
            key_count: Some(count as i32),
            continuation_token: i.continuation_token,
            is_truncated: Some(truncated),
            next_continuation_token: if truncated {
                last.map(|l| hex::encode(l.as_bytes()))
            } else {
                None
            },
            contents: Some(encode_objects(url, objects)),
            common_prefixes: Some(encode_prefixes(url, prefixes)),
            delimiter: enc(url, i.delimiter),
            encoding_type: i.encoding_type,
            start_after: enc(url, i.start_after),
            ..Default::default()
        }))
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let vfs = self.vfs()?;
        let i = req.input;
        let bucket = self.bucket(&vfs, &i.bucket).await?;
        let prefix = i.prefix.clone().unwrap_or_default();
        let max = max_keys(i.max_keys)?;
        let marker = i.key_marker.clone().filter(|m| !m.is_empty());
        let (objects, prefixes, truncated, last) = self
            .list_page(
                &vfs,
                bucket,
                Query {
                    prefix: &prefix,
                    delimiter: i.delimiter.as_deref(),
                    after: marker.as_deref(),
                    max,
                    continuation: marker.is_some(),
                },
            )
            .await?;
        let url = is_url(&i.encoding_type);
        // An unversioned bucket: every object is its own only ("null") version.
        let versions = encode_objects(url, objects)
            .into_iter()
            .map(|o| ObjectVersion {
                e_tag: o.e_tag,
                is_latest: Some(true),
                key: o.key,
                last_modified: o.last_modified,
                owner: Some(owner()),
                size: o.size,
                storage_class: Some(ObjectVersionStorageClass::from_static(
                    ObjectVersionStorageClass::STANDARD,
                )),
                version_id: Some("null".into()),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(i.bucket),
            prefix: enc(url, Some(prefix)),
            key_marker: enc(url, Some(marker.unwrap_or_default())),
            max_keys: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker: if truncated { enc(url, last) } else { None },
            next_version_id_marker: truncated.then(|| "null".to_string()),
            versions: Some(versions),
            common_prefixes: Some(encode_prefixes(url, prefixes)),
            delimiter: enc(url, i.delimiter),
            encoding_type: i.encoding_type,
            ..Default::default()
        }))
    }

    // ---- multipart ----

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        crate::multipart::create(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        crate::multipart::upload_part(self, req)
            .await
            .map(S3Response::new)
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        crate::multipart::upload_part_copy(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        crate::multipart::complete(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        crate::multipart::abort(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        crate::multipart::list_parts(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        crate::multipart::list_uploads(self, req.input)
            .await
            .map(S3Response::new)
    }
}

fn encode_objects(url: bool, objects: Vec<Object>) -> Vec<Object> {
    objects
        .into_iter()
        .map(|mut o| {
            o.key = enc(url, o.key);
            o
        })
        .collect()
}

fn encode_prefixes(url: bool, p: Vec<CommonPrefix>) -> Vec<CommonPrefix> {
    p.into_iter()
        .map(|c| CommonPrefix {
            prefix: enc(url, c.prefix),
        })
        .collect()
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
