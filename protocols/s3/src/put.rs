//! PutObject, and the path every object write takes (PUT, copy, multipart complete): a staging
//! file next to the key, renamed over it once every byte is on the bricks.

use crate::access::Action;
use crate::authz::grant_headers;
use crate::checksum::BodyChecks;
use crate::error::{On, clash, fs_error};
use crate::gateway::{
    GatewayS3, Key, etag_of, meta_from, parse_key, refuse_encryption, refuse_object_lock,
};
use crate::layout;
use crate::meta::{self, ObjectMeta, Parts, StoredChecksum, etag_xattr};
use crate::sidecar;
use crate::tagging::check_tagging;
use crate::vfs::{IO_BLOCK, Vfs, WriteError};
use bytes::Bytes;
use engine::fop::{Errno, Gfid, Iatt, Timespec, Xattrs};
use futures::StreamExt;
use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{S3Error, S3Request, S3Response, S3Result, s3_error};

/// What `tmp_name` adds to a name.
const TMP_EXTRA: usize = 1 + crate::vfs::STAGING_INFIX.len() + 32;

/// A PUT's staging name next to its key: hidden, and hashed by distribute as the key itself.
fn tmp_name(name: &str) -> String {
    format!(
        ".{name}{}{}",
        crate::vfs::STAGING_INFIX,
        uuid::Uuid::new_v4().simple()
    )
}

/// Removes a PUT's staging file unless the object was committed: after any error, and when the
/// request is dropped half way (its client went away), which no error path sees.
struct StagingGuard {
    vfs: Vfs,
    dir: Gfid,
    name: String,
    armed: bool,
}

impl StagingGuard {
    fn new(vfs: &Vfs, staged: &(Gfid, String)) -> StagingGuard {
        StagingGuard {
            vfs: vfs.clone(),
            dir: staged.0,
            name: staged.1.clone(),
            armed: true,
        }
    }
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
    /// The MD5 of the bytes written, checked against Content-MD5 when the client sent one.
    Md5 { content_md5: Option<&'a str> },
    /// Decided by the caller (a multipart object's, or a copy's source's).
    Given(String),
}

/// What an object is stored with besides its bytes and metadata.
#[derive(Default)]
pub(crate) struct Extra {
    /// Its additional checksum; when None, the one the body's checks computed (a checksum the
    /// client sent or announced), as a FULL_OBJECT checksum.
    pub checksum: Option<StoredChecksum>,
    /// The parts of a multipart object.
    pub parts: Option<Parts>,
}

/// The sidecar kind of a parts list too large for its xattr.
pub(crate) const PARTS_SIDECAR: &str = "parts";

impl GatewayS3 {
    /// Writes `body` as the object `key`: into a staging file first, renamed over the key when
    /// every byte is on the bricks, so readers see the old object or the whole new one, and a
    /// failed upload leaves nothing behind. `checks` holds the body to the checksums it
    /// promised. Returns the ETag and the new file's attributes.
    ///
    /// A body of at most one write (`IO_BLOCK`) is read whole first and then created with its
    /// data, ETag and metadata in one create (`store_whole`): one transaction on each brick
    /// instead of a create, a write and a setxattr with a transaction each.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn store<S, E>(
        &self,
        vfs: &Vfs,
        bucket: Gfid,
        key: &str,
        meta: &ObjectMeta,
        mut body: S,
        etag_from: EtagFrom<'_>,
        checks: &mut BodyChecks,
        extra: Extra,
    ) -> S3Result<(String, Iatt)>
    where
        S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let k = parse_key(key)?;
        let (parent, name) = self.target(vfs, bucket, &k).await?;
        // The staging file sits next to its key under a name distribute hashes as the key's
        // (GlusterFS's rsync-hash-regex: `.NAME.XXXX` hashes as NAME), so it is created on the
        // brick the key belongs to and the final rename moves no data and leaves no linkto.
        // FUSE and listings hide these names. A name too long for the prefix stages in
        // STAGING_DIR instead.
        let staged = if name.len() + TMP_EXTRA <= 255 {
            (parent, tmp_name(name))
        } else {
            (
                self.staging(vfs, "tmp").await?,
                format!("put-{}", uuid::Uuid::new_v4().simple()),
            )
        };
        let (xattrs, tags_aside) = meta.object_xattrs();
        let mut head = Vec::new();
        if matches!(etag_from, EtagFrom::Md5 { .. })
            && extra.parts.is_none()
            && tags_aside.is_none()
        {
            let mut len = 0;
            while len <= IO_BLOCK {
                match body.next().await {
                    Some(Ok(c)) => {
                        len += c.len();
                        head.push(c);
                    }
                    Some(Err(e)) => return Err(crate::error::body_error(&e.to_string())),
                    None => {
                        let data = concat(head);
                        let to = (parent, name);
                        return self
                            .store_whole(
                                vfs,
                                bucket,
                                (key, &k),
                                to,
                                staged,
                                xattrs,
                                data,
                                etag_from,
                                checks,
                                extra,
                            )
                            .await;
                    }
                }
            }
        }
        let body = futures::stream::iter(head.into_iter().map(Ok)).chain(body);
        let (tmp_dir, tmp) = (staged.0, staged.1.as_str());
        let (f, created) = match vfs.create(tmp_dir, tmp, xattrs).await {
            Ok(r) => r,
            Err(e) => {
                self.forget_staging();
                return Err(fs_error(e, On::Object));
            }
        };
        let guard = StagingGuard::new(vfs, &staged);
        let mut h = Md5::new();
        let written = vfs
            .write_stream(&f, body, |c| {
                h.update(c);
                checks.update(c);
            })
            .await;
        drop(f);
        let written = match written {
            Ok(w) => w,
            Err(WriteError::Body(e)) => {
                let e = crate::error::body_error(&e.to_string());
                return abandon(vfs, staged, key, e).await;
            }
            Err(WriteError::Fs(e)) => {
                return abandon(vfs, staged, key, fs_error(e, On::Object)).await;
            }
        };
        if let Err(e) = checks.verify() {
            return abandon(vfs, staged, key, e).await;
        }
        let digest = h.finalize();
        if let Err(e) = check_content_md5(&etag_from, &digest) {
            return abandon(vfs, staged, key, e).await;
        }
        let etag = match etag_from {
            EtagFrom::Given(e) => e,
            EtagFrom::Md5 { .. } => hex::encode(digest),
        };
        let ia = match written {
            (_, Some(ia)) => ia,
            _ => created,
        };
        let mut x = object_xattrs(&etag, &ia, &stored_checksum(checks, extra.checksum));
        let saved = async {
            if let Some(p) = &extra.parts {
                let enc = p.encode();
                let value = if enc.len() > sidecar::INLINE_MAX {
                    sidecar::save(self, vfs, ia.gfid, PARTS_SIDECAR, &enc).await?;
                    sidecar::MARKER.to_string()
                } else {
                    enc
                };
                x.insert(meta::PARTS.to_string(), meta::stamped(&value, &ia));
            }
            crate::tagging::save_aside(self, vfs, ia.gfid, tags_aside).await?;
            vfs.setxattrs(ia.gfid, &x)
                .await
                .map_err(|e| fs_error(e, On::Object))
        }
        .await;
        if let Err(e) = saved {
            return abandon(vfs, staged, key, e).await;
        }
        self.commit(vfs, bucket, (key, &k), (parent, name), staged, guard)
            .await?;
        Ok((etag, ia))
    }

    /// `store` of a body read whole: checked before anything is made, then created with its
    /// ETag and checksum already stamped with the size and mtime the create gives it (the
    /// time is chosen here: `Vfs::create_whole`).
    #[allow(clippy::too_many_arguments)]
    async fn store_whole(
        &self,
        vfs: &Vfs,
        bucket: Gfid,
        (key, k): (&str, &Key<'_>),
        to: (Gfid, &str),
        staged: (Gfid, String),
        mut x: Xattrs,
        data: Bytes,
        etag_from: EtagFrom<'_>,
        checks: &mut BodyChecks,
        extra: Extra,
    ) -> S3Result<(String, Iatt)> {
        checks.update(&data);
        checks.verify()?;
        let digest = Md5::digest(&data);
        check_content_md5(&etag_from, &digest)?;
        let etag = hex::encode(digest);
        let checksum = stored_checksum(checks, extra.checksum);
        let now = Timespec::now();
        let expect = Iatt {
            size: data.len() as u64,
            mtime: now,
            ..Default::default()
        };
        x.extend(object_xattrs(&etag, &expect, &checksum));
        let ia = match vfs.create_whole(staged.0, &staged.1, x, data, now).await {
            Ok(ia) => ia,
            Err(e) => {
                self.forget_staging();
                return Err(fs_error(e, On::Object));
            }
        };
        let guard = StagingGuard::new(vfs, &staged);
        if (ia.size, ia.mtime) != (expect.size, expect.mtime) {
            // The volume keeps no client-side times (features/utime is off): the brick's
            // clock stamped the file, so the ETag is stamped again with what it says.
            let x = object_xattrs(&etag, &ia, &checksum);
            if let Err(e) = vfs.setxattrs(ia.gfid, &x).await {
                return abandon(vfs, staged, key, fs_error(e, On::Object)).await;
            }
        }
        self.commit(vfs, bucket, (key, k), to, staged, guard)
            .await?;
        Ok((etag, ia))
    }

    /// Renames the staging file over the key, or removes it when that fails; its guard
    /// stands down once the object is in place. A concurrent delete may prune the parent
    /// between mkdir_p and here, or the key's name be a directory (a PUT of `key/...`, now or
    /// before): the target is found again once, by a lookup this time.
    async fn commit(
        &self,
        vfs: &Vfs,
        bucket: Gfid,
        (key, k): (&str, &Key<'_>),
        to: (Gfid, &str),
        staged: (Gfid, String),
        mut guard: StagingGuard,
    ) -> S3Result<()> {
        match self.rename_staged(vfs, bucket, k, to, &staged).await {
            Ok(()) => {
                guard.armed = false;
                Ok(())
            }
            Err(e) => abandon(vfs, staged, key, e).await,
        }
    }

    async fn rename_staged(
        &self,
        vfs: &Vfs,
        bucket: Gfid,
        k: &Key<'_>,
        to: (Gfid, &str),
        staged: &(Gfid, String),
    ) -> S3Result<()> {
        let from = (staged.0, staged.1.as_str());
        let mut r = vfs.rename(from, to).await;
        if matches!(
            r,
            Err(Errno::ENOENT) | Err(Errno::ESTALE) | Err(Errno::EISDIR)
        ) {
            let to = self.find_target(vfs, bucket, k).await?;
            r = vfs.rename(from, to).await;
        }
        match r {
            Ok(_) => Ok(()),
            Err(Errno::EISDIR) | Err(Errno::ENOTEMPTY) | Err(Errno::EEXIST) => Err(clash()),
            Err(e) => Err(fs_error(e, On::Object)),
        }
    }

    /// The directory and name an object with key `k` is written as, as far as it is known
    /// without looking: its own name, or `DIR_DATA` for a folder key, in the directory of
    /// its prefix (made on the way). `commit` finds out when the name is a directory.
    async fn target<'k>(&self, vfs: &Vfs, bucket: Gfid, k: &Key<'k>) -> S3Result<(Gfid, &'k str)> {
        let parent = layout::mkdir_p(vfs, bucket, &k.dirs)
            .await
            .map_err(|e| fs_error(e, On::Object))?;
        Ok((parent, k.name.unwrap_or(layout::DIR_DATA)))
    }

    /// The directory and name an object with key `k` is written as (`layout.rs`): its own
    /// name, `SELF` in the directory of that name, or `DIR_DATA` for a folder key; the
    /// directories above are made on the way.
    async fn find_target<'k>(
        &self,
        vfs: &Vfs,
        bucket: Gfid,
        k: &Key<'k>,
    ) -> S3Result<(Gfid, &'k str)> {
        let err = |e| fs_error(e, On::Object);
        let (parent, name) = self.target(vfs, bucket, k).await?;
        if k.name.is_none() {
            return Ok((parent, name));
        }
        let (dir, name, inside) = layout::write_target(vfs, parent, name).await.map_err(err)?;
        if inside {
            layout::mark_self(vfs, dir).await.map_err(err)?;
        }
        Ok((dir, name))
    }

    /// PUT of a folder key (`dir/`) without data: the directory, marked as an object and
    /// carrying its metadata (`layout.rs`).
    async fn store_folder(
        &self,
        vfs: &Vfs,
        bucket: Gfid,
        k: &Key<'_>,
        meta: &ObjectMeta,
    ) -> S3Result<()> {
        let err = |e| fs_error(e, On::Object);
        let dir = layout::mkdir_p(vfs, bucket, &k.dirs).await.map_err(err)?;
        let old = vfs.getxattr(dir, None).await.map_err(err)?;
        for n in ObjectMeta::stale_names(&old, false) {
            vfs.removexattr(dir, &n).await.map_err(err)?;
        }
        let (mut x, aside) = meta.object_xattrs();
        x.insert(
            layout::DIR_OBJECT.to_string(),
            Bytes::from(engine::fop::Timespec::now().sec.to_string()),
        );
        crate::tagging::save_aside(self, vfs, dir, aside).await?;
        vfs.setxattrs(dir, &x).await.map_err(err)?;
        match vfs.unlink(dir, layout::DIR_DATA).await {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }
}

/// A failed `store`: its staging file goes before the error is answered.
async fn abandon<T>(vfs: &Vfs, staged: (Gfid, String), key: &str, err: S3Error) -> S3Result<T> {
    if err.status_code().is_some_and(|c| c.is_server_error()) {
        tracing::warn!(key, "storing an object failed: {err}");
    }
    let _ = vfs.unlink(staged.0, &staged.1).await;
    Err(err)
}

/// The chunks of a body read whole, as one buffer (without a copy when it came as one).
fn concat(mut chunks: Vec<Bytes>) -> Bytes {
    if chunks.len() == 1 {
        return chunks.pop().expect("one chunk");
    }
    let mut b = bytes::BytesMut::with_capacity(chunks.iter().map(|c| c.len()).sum());
    for c in &chunks {
        b.extend_from_slice(c);
    }
    b.freeze()
}

/// Content-MD5, when the client sent one, must be the digest of what was received.
fn check_content_md5(etag_from: &EtagFrom<'_>, digest: &[u8]) -> S3Result<()> {
    use base64::Engine;
    if let EtagFrom::Md5 {
        content_md5: Some(want),
    } = etag_from
        && base64::engine::general_purpose::STANDARD.encode(digest) != want.trim()
    {
        return Err(s3_error!(
            BadDigest,
            "The Content-MD5 you specified did not match what we received."
        ));
    }
    Ok(())
}

/// The additional checksum an object is stored with: the caller's, else the one the body's
/// checks computed (a checksum the client sent or announced), as a FULL_OBJECT checksum.
fn stored_checksum(checks: &BodyChecks, given: Option<StoredChecksum>) -> Option<StoredChecksum> {
    given.or_else(|| {
        crate::checksum::first(checks.result()).map(|(algo, value)| StoredChecksum {
            algo,
            full_object: true,
            value,
        })
    })
}

/// The xattrs that describe an object's bytes as `ia` says they are: its ETag and checksum.
fn object_xattrs(etag: &str, ia: &Iatt, checksum: &Option<StoredChecksum>) -> Xattrs {
    let mut x = etag_xattr(etag, ia);
    if let Some(c) = checksum {
        x.insert(meta::CHECKSUM.to_string(), meta::stamped(&c.encode(), ia));
    }
    x
}

/// S3's conditional writes: `If-None-Match: *` or an ETag the object has fails when it
/// exists; `If-Match` fails on a missing object (404) or another ETag (412).
pub(crate) fn check_write_conditions(
    cur: Option<&str>,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<()> {
    let holds = |c: &ETagCondition, etag: &str| match c {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value().trim_matches('"').eq_ignore_ascii_case(etag),
    };
    let failed = || {
        s3_error!(
            PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold"
        )
    };
    if let Some(c) = if_match {
        match cur {
            None => return Err(s3_error!(NoSuchKey, "The specified key does not exist.")),
            Some(e) if !holds(c, e) => return Err(failed()),
            Some(_) => {}
        }
    }
    if let (Some(c), Some(e)) = (if_none_match, cur)
        && holds(c, e)
    {
        return Err(failed());
    }
    Ok(())
}

/// The ETag of the object now at `key`, for conditional writes.
pub(crate) async fn current_etag(
    s: &GatewayS3,
    vfs: &Vfs,
    bucket: &str,
    key: &str,
) -> S3Result<Option<String>> {
    match s.object(vfs, bucket, key).await {
        Ok(f) => Ok(Some(f.etag)),
        Err(e) if *e.code() == s3s::S3ErrorCode::NoSuchKey => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) async fn put_object(
    s: &GatewayS3,
    req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    refuse_encryption(&req.headers)?;
    refuse_object_lock(&req.headers)?;
    let vfs = s.vfs()?;
    let a = s
        .allowed(
            &vfs,
            &req,
            &req.input.bucket,
            Action::PutObject,
            Some(&req.input.key),
            &[],
        )
        .await?;
    let bucket = a.gfid;
    let i = req.input;
    let k = parse_key(&i.key)?;
    if i.if_match.is_some() || i.if_none_match.is_some() {
        let cur = current_etag(s, &vfs, &i.bucket, &i.key).await?;
        check_write_conditions(
            cur.as_deref(),
            i.if_match.as_ref(),
            i.if_none_match.as_ref(),
        )?;
    }
    let mut m = meta_from!(i, &req.headers);
    if let Some(t) = &i.tagging {
        m.tagging = Some(check_tagging(t)?);
    }
    m.access = a.new_object(
        s,
        i.acl.as_ref().map(|a| a.as_str()),
        grant_headers!(i, no_write),
    )?;
    if k.name.is_none() && (i.content_length == Some(0) || i.body.is_none()) {
        // A folder, as s3fs and consoles make them.
        s.store_folder(&vfs, bucket, &k, &m).await?;
        return Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(etag_of(&meta::md5_hex(b""))),
            ..Default::default()
        }));
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
    if let Some(a) = i
        .checksum_algorithm
        .as_ref()
        .and_then(|a| crate::checksum::algo_index(a.as_str()))
    {
        checks.also(a);
    }
    let (etag, ia) = s
        .store(
            &vfs,
            bucket,
            &i.key,
            &m,
            body,
            EtagFrom::Md5 {
                content_md5: i.content_md5.as_deref(),
            },
            &mut checks,
            Extra::default(),
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
