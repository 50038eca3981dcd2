//! Multipart uploads, staged under `STAGING_DIR/uploads/<upload id>/` (hidden from FUSE, NFS and
//! listings): the directory carries the upload's record (bucket, key, metadata, checksum
//! algorithm) as an xattr made with it, each part is a file `part-NNNNN` with its MD5 and
//! checksum, and complete (`complete.rs`) assembles the parts into one staging file that is
//! renamed over the key like any PUT. ListParts and ListMultipartUploads are in `list.rs`.

mod complete;
mod list;

pub use complete::complete;
pub use list::{list_parts, list_uploads};

use crate::access::Action;
use crate::authz::grant_headers;
use crate::checksum::{self, BodyChecks};
use crate::copy::copy_source;
use crate::error::{On, fs_error};
use crate::gateway::{
    GatewayS3, etag_of, meta_from, parse_key, refuse_encryption, refuse_object_lock,
};
use crate::meta::{self, ObjectMeta, StoredChecksum, etag_xattr, stored_etag, timestamp};
use crate::vfs::Vfs;
use bytes::Bytes;
use engine::fop::{Errno, Gfid, Iatt, Xattrs};
use futures::StreamExt;
use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{S3Error, S3Request, S3Result, s3_error};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const RECORD: &str = "user.s3.upload";
const MAX_PART_NUMBER: i32 = 10_000;
/// How long a completed upload's record answers a repeated CompleteMultipartUpload (S3 answers
/// it with the same result for a while; a client that lost the first answer retries).
const DONE_KEPT_SECS: i64 = 600;

#[derive(Clone, Serialize, Deserialize)]
struct Record {
    bucket: String,
    key: String,
    initiated: i64,
    meta: BTreeMap<String, String>,
    /// `x-amz-checksum-algorithm` of CreateMultipartUpload (an `checksum::ALGOS` name).
    #[serde(default)]
    checksum_algorithm: Option<String>,
    /// Whether the object's checksum is FULL_OBJECT (else COMPOSITE).
    #[serde(default)]
    full_object: bool,
    /// Set when the upload completed: what the completion answered.
    #[serde(default)]
    done: Option<Done>,
    /// The object's owner and ACL, decided when the upload began (by who began it, with the
    /// ACL it named), as `Allowed::new_object` gives them.
    #[serde(default)]
    access: BTreeMap<String, String>,
    /// The canonical id of the key that began the upload (None: anonymous).
    #[serde(default)]
    initiator: Option<String>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Done {
    etag: String,
    /// `StoredChecksum::encode`.
    checksum: Option<String>,
    at: i64,
}

impl Record {
    /// The object's owner-to-be, as ListMultipartUploads and ListParts name it.
    fn owner(&self) -> Option<&str> {
        self.access
            .get(crate::access::keys::OWNER)
            .map(String::as_str)
    }

    fn algo(&self) -> Option<usize> {
        checksum::algo_index(self.checksum_algorithm.as_deref()?)
    }

    fn checksum_type(&self) -> Option<ChecksumType> {
        self.checksum_algorithm.as_ref()?;
        Some(ChecksumType::from_static(if self.full_object {
            ChecksumType::FULL_OBJECT
        } else {
            ChecksumType::COMPOSITE
        }))
    }

    fn to_xattrs(&self) -> Xattrs {
        let mut x = Xattrs::new();
        x.insert(
            RECORD.to_string(),
            Bytes::from(serde_json::to_vec(self).expect("record serialises")),
        );
        x
    }
}

fn now() -> i64 {
    engine::fop::Timespec::now().sec
}

fn no_upload() -> S3Error {
    s3_error!(
        NoSuchUpload,
        "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )
}

fn part_name(n: i32) -> String {
    format!("part-{n:05}")
}

fn check_part_number(n: i32) -> S3Result<()> {
    if !(1..=MAX_PART_NUMBER).contains(&n) {
        return Err(s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        ));
    }
    Ok(())
}

/// An upload found by id: the uploads directory, its own directory and its record.
struct Upload {
    uploads: Gfid,
    dir: Gfid,
    rec: Record,
}

/// The upload's directory and record, checked against the bucket and key of the request. A
/// completed upload is NoSuchUpload unless `done_too` (a repeated complete).
async fn upload(
    s: &GatewayS3,
    vfs: &Vfs,
    id: &str,
    bucket: &str,
    key: &str,
    done_too: bool,
) -> S3Result<Upload> {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(no_upload());
    }
    let uploads = s.staging(vfs, "uploads").await?;
    let mut want = Xattrs::new();
    want.insert(RECORD.to_string(), Bytes::new());
    let (ia, x) = match vfs.lookup(uploads, id, &want).await {
        Ok(r) => r,
        Err(Errno::ENOENT) | Err(Errno::ESTALE) => return Err(no_upload()),
        Err(e) => return Err(fs_error(e, On::Upload)),
    };
    let rec: Record = x
        .get(RECORD)
        .and_then(|v| serde_json::from_slice(v).ok())
        .ok_or_else(no_upload)?;
    if rec.bucket != bucket || rec.key != key || (rec.done.is_some() && !done_too) {
        return Err(no_upload());
    }
    Ok(Upload {
        uploads,
        dir: ia.gfid,
        rec,
    })
}

pub async fn create(
    s: &GatewayS3,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<CreateMultipartUploadOutput> {
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
    let i = req.input;
    parse_key(&i.key)?;
    let access = a.new_object(
        s,
        i.acl.as_ref().map(|a| a.as_str()),
        grant_headers!(i, no_write),
    )?;
    let mut m: ObjectMeta = meta_from!(i, &req.headers);
    if let Some(t) = &i.tagging {
        m.tagging = Some(crate::tagging::check_tagging(t)?);
    }
    let algo = match &i.checksum_algorithm {
        Some(a) => Some(checksum::algo_index(a.as_str()).ok_or_else(|| {
            s3_error!(InvalidRequest, "Unknown checksum algorithm {}.", a.as_str())
        })?),
        None => None,
    };
    // S3's rule: CRC64NVME is only ever a checksum of the whole object, SHA-1 and SHA-256 only
    // of the parts' checksums (COMPOSITE); CRC32 and CRC32C can be either, COMPOSITE unless
    // asked.
    let full_object = match (algo, i.checksum_type.as_ref().map(|t| t.as_str())) {
        (None, None) => false,
        (Some(a), None) => a == 2,
        (Some(a), Some(ChecksumType::FULL_OBJECT)) if a <= 2 => true,
        (Some(a), Some(ChecksumType::COMPOSITE)) if a != 2 => false,
        _ => {
            return Err(s3_error!(
                InvalidRequest,
                "The checksum type is not valid for the checksum algorithm (FULL_OBJECT: CRC32, CRC32C, CRC64NVME; COMPOSITE: CRC32, CRC32C, SHA1, SHA256)."
            ));
        }
    };
    let rec = Record {
        bucket: i.bucket.clone(),
        key: i.key.clone(),
        initiated: now(),
        meta: m
            .to_xattrs()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect(),
        checksum_algorithm: algo.map(|a| checksum::ALGOS[a].to_string()),
        full_object,
        done: None,
        access: access
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect(),
        initiator: a.who.as_ref().map(|w| w.id.clone()),
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let uploads = s.staging(&vfs, "uploads").await?;
    let sweeper = vfs.clone();
    tokio::spawn(async move { complete::sweep_done_now_and_then(&sweeper, uploads).await });
    if let Err(e) = vfs.mkdir(uploads, &id, rec.to_xattrs()).await {
        s.forget_staging();
        return Err(fs_error(e, On::Upload));
    }
    Ok(CreateMultipartUploadOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(id),
        checksum_algorithm: i.checksum_algorithm,
        checksum_type: rec.checksum_type(),
        ..Default::default()
    })
}

/// Writes one part and returns its MD5. Each upload of a part writes its own file, renamed
/// over `part-NNNNN` when all of it is in: of two uploads of one part number, the last to
/// finish is the part, and its ETag and checksum (xattrs of that file) are what ListParts and
/// complete see.
async fn put_part<St, E>(
    vfs: &Vfs,
    dir: Gfid,
    n: i32,
    body: St,
    content_md5: Option<&str>,
    checks: &mut BodyChecks,
    algo: Option<usize>,
) -> S3Result<String>
where
    St: futures::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let tmp = format!("tmp-{}", uuid::Uuid::new_v4().simple());
    let (f, _) = vfs
        .create(dir, &tmp, Xattrs::new())
        .await
        .map_err(|e| fs_error(e, On::Upload))?;
    let mut h = Md5::new();
    let r = vfs
        .write_stream(&f, body, |c| {
            h.update(c);
            checks.update(c);
        })
        .await;
    let ia = match r {
        Ok(_) => vfs
            .top
            .fstat(&vfs.ctx, &f.fd)
            .await
            .map_err(|e| fs_error(e, On::Upload)),
        Err(crate::vfs::WriteError::Body(e)) => Err(crate::error::body_error(&e.to_string())),
        Err(crate::vfs::WriteError::Fs(e)) => Err(fs_error(e, On::Upload)),
    };
    drop(f);
    let digest = h.finalize();
    let md5_ok = content_md5.is_none_or(|want| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(digest) == want.trim()
    });
    let etag = hex::encode(digest);
    let done = async {
        let ia = ia?;
        checks.verify()?;
        if !md5_ok {
            return Err(s3_error!(
                BadDigest,
                "The Content-MD5 you specified did not match what we received."
            ));
        }
        let mut x = etag_xattr(&etag, &ia);
        if let Some(a) = algo
            && let Some(v) = checksum::value_of(checks.result(), a)
        {
            let c = StoredChecksum {
                algo: a,
                full_object: true,
                value: v.to_string(),
            };
            x.insert(meta::CHECKSUM.to_string(), meta::stamped(&c.encode(), &ia));
        }
        vfs.setxattrs(ia.gfid, &x)
            .await
            .map_err(|e| fs_error(e, On::Upload))?;
        vfs.rename((dir, &tmp), (dir, &part_name(n)))
            .await
            .map_err(|e| fs_error(e, On::Upload))?;
        Ok(etag)
    }
    .await;
    if done.is_err() {
        let _ = vfs.unlink(dir, &tmp).await;
    }
    done
}

pub async fn upload_part(
    s: &GatewayS3,
    req: S3Request<UploadPartInput>,
) -> S3Result<UploadPartOutput> {
    refuse_encryption(&req.headers)?;
    let vfs = s.vfs()?;
    s.allowed(
        &vfs,
        &req,
        &req.input.bucket,
        Action::PutObject,
        Some(&req.input.key),
        &[],
    )
    .await?;
    let i = req.input;
    let mut checks = BodyChecks::new(
        crate::checksum::checksums_of!(i),
        &req.headers,
        req.trailing_headers,
    )?;
    check_part_number(i.part_number)?;
    let up = upload(s, &vfs, &i.upload_id, &i.bucket, &i.key, false).await?;
    let algo = up.rec.algo();
    if let Some(a) = algo {
        checks.also(a);
    }
    let body: futures::stream::BoxStream<'static, Result<Bytes, String>> = match i.body {
        Some(b) => b.map(|r| r.map_err(|e| e.to_string())).boxed(),
        None => futures::stream::empty().boxed(),
    };
    let etag = put_part(
        &vfs,
        up.dir,
        i.part_number,
        body,
        i.content_md5.as_deref(),
        &mut checks,
        algo,
    )
    .await?;
    let sums = checks.computed();
    Ok(UploadPartOutput {
        e_tag: Some(etag_of(&etag)),
        checksum_crc32: sums.checksum_crc32,
        checksum_crc32c: sums.checksum_crc32c,
        checksum_crc64nvme: sums.checksum_crc64nvme,
        checksum_sha1: sums.checksum_sha1,
        checksum_sha256: sums.checksum_sha256,
        ..Default::default()
    })
}

pub async fn upload_part_copy(
    s: &GatewayS3,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<UploadPartCopyOutput> {
    refuse_encryption(&req.headers)?;
    let vfs = s.vfs()?;
    s.allowed(
        &vfs,
        &req,
        &req.input.bucket,
        Action::PutObject,
        Some(&req.input.key),
        &[],
    )
    .await?;
    let (sb, sk) = copy_source(&req.input.copy_source)?;
    let (sb, sk) = (sb.to_string(), sk.to_string());
    let (_, src) = s
        .object_allowed(&vfs, &req, &sb, &sk, Action::GetObject)
        .await?;
    let i = req.input;
    check_part_number(i.part_number)?;
    let up = upload(s, &vfs, &i.upload_id, &i.bucket, &i.key, false).await?;
    if let Some(c) = &i.copy_source_if_match
        && !c.is_any()
        && c.as_etag().map(|e| e.value()) != Some(src.etag.as_str())
    {
        return Err(s3_error!(
            PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold"
        ));
    }
    if let Some(c) = &i.copy_source_if_none_match
        && (c.is_any() || c.as_etag().map(|e| e.value()) == Some(src.etag.as_str()))
    {
        return Err(s3_error!(
            PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold"
        ));
    }
    let (start, end) = match &i.copy_source_range {
        None => (0, src.ia.size),
        Some(r) => {
            let bad = || {
                s3_error!(
                    InvalidArgument,
                    "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"
                )
            };
            let (a, b) = r
                .strip_prefix("bytes=")
                .and_then(|r| r.split_once('-'))
                .ok_or_else(bad)?;
            let a: u64 = a.parse().map_err(|_| bad())?;
            let b: u64 = b.parse().map_err(|_| bad())?;
            if a > b || b >= src.ia.size {
                return Err(s3_error!(
                    InvalidRange,
                    "The requested range is not satisfiable"
                ));
            }
            (a, b + 1)
        }
    };
    let body = s.body(&vfs, src.ia.gfid, start, end).await?;
    let algo = up.rec.algo();
    let mut checks = BodyChecks::default();
    if let Some(a) = algo {
        checks.also(a);
    }
    let etag = put_part(&vfs, up.dir, i.part_number, body, None, &mut checks, algo).await?;
    let sums = checks.computed();
    Ok(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(etag_of(&etag)),
            last_modified: Some(timestamp(src.ia.mtime)),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
        }),
        ..Default::default()
    })
}

/// A stored part.
struct StoredPart {
    number: i32,
    ia: Iatt,
    etag: String,
    /// Its checksum in the upload's algorithm, when the upload has one.
    checksum: Option<String>,
}

/// Every stored part, in part order.
async fn parts(vfs: &Vfs, dir: Gfid) -> S3Result<Vec<StoredPart>> {
    let mut nums: Vec<i32> = vfs
        .list_dir(dir)
        .await
        .map_err(|e| fs_error(e, On::Upload))?
        .into_iter()
        .filter_map(|(n, _)| n.strip_prefix("part-")?.parse().ok())
        .collect();
    nums.sort_unstable();
    let mut want = Xattrs::new();
    want.insert(meta::ETAG.to_string(), Bytes::new());
    want.insert(meta::CHECKSUM.to_string(), Bytes::new());
    let mut out = Vec::new();
    for n in nums {
        if let Ok((ia, x)) = vfs.lookup(dir, &part_name(n), &want).await {
            out.push(StoredPart {
                number: n,
                etag: stored_etag(&x, &ia).unwrap_or_default(),
                checksum: meta::unstamped(&x, meta::CHECKSUM, &ia)
                    .and_then(|c| StoredChecksum::decode(&c))
                    .map(|c| c.value),
                ia,
            });
        }
    }
    Ok(out)
}

pub async fn abort(
    s: &GatewayS3,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<AbortMultipartUploadOutput> {
    let vfs = s.vfs()?;
    s.allowed(
        &vfs,
        &req,
        &req.input.bucket,
        Action::AbortMultipartUpload,
        Some(&req.input.key),
        &[],
    )
    .await?;
    let i = req.input;
    let up = upload(s, &vfs, &i.upload_id, &i.bucket, &i.key, false).await?;
    vfs.remove_tree(up.uploads, &i.upload_id)
        .await
        .map_err(|e| fs_error(e, On::Upload))?;
    Ok(AbortMultipartUploadOutput::default())
}
