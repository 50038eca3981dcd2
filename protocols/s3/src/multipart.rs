//! Multipart uploads, staged under `STAGING_DIR/uploads/<upload id>/` (hidden from FUSE, NFS and
//! listings): the directory carries the upload's record (bucket, key, metadata) as an xattr made
//! with it, each part is a file `part-NNNNN` with its MD5, and complete assembles the parts into
//! one staging file that is renamed over the key like any PUT.

use crate::checksum::BodyChecks;
use crate::error::{On, fs_error};
use crate::meta::{self, ObjectMeta, etag_xattr, stored_etag, timestamp};
use crate::ops::{GatewayS3, etag_of, meta_from, parse_key};
use crate::vfs::Vfs;
use bytes::Bytes;
use engine::fop::{Errno, Gfid, Xattrs};
use futures::StreamExt;
use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{S3Error, S3Request, S3Result, s3_error};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const RECORD: &str = "user.s3.upload";
const MIN_PART: u64 = 5 << 20;
const MAX_PART_NUMBER: i32 = 10_000;

#[derive(Serialize, Deserialize)]
struct Record {
    bucket: String,
    key: String,
    initiated: i64,
    meta: BTreeMap<String, String>,
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

/// The upload's directory and record, checked against the bucket and key of the request.
async fn upload(
    s: &GatewayS3,
    vfs: &Vfs,
    id: &str,
    bucket: &str,
    key: &str,
) -> S3Result<(Gfid, Gfid, Record)> {
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
    if rec.bucket != bucket || rec.key != key {
        return Err(no_upload());
    }
    Ok((uploads, ia.gfid, rec))
}

pub async fn create(
    s: &GatewayS3,
    i: CreateMultipartUploadInput,
) -> S3Result<CreateMultipartUploadOutput> {
    let vfs = s.vfs()?;
    s.bucket(&vfs, &i.bucket).await?;
    if parse_key(&i.key)?.name.is_none() {
        return Err(s3_error!(
            InvalidArgument,
            "A key ending in '/' names a directory and holds no data."
        ));
    }
    let mut m: ObjectMeta = meta_from!(i);
    if let Some(t) = &i.tagging {
        m.tagging = Some(t.clone());
    }
    let rec = Record {
        bucket: i.bucket.clone(),
        key: i.key.clone(),
        initiated: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
        meta: m
            .to_xattrs()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect(),
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let uploads = s.staging(&vfs, "uploads").await?;
    let mut x = Xattrs::new();
    x.insert(
        RECORD.to_string(),
        Bytes::from(serde_json::to_vec(&rec).expect("record serialises")),
    );
    if let Err(e) = vfs.mkdir(uploads, &id, x).await {
        s.forget_staging();
        return Err(fs_error(e, On::Upload));
    }
    Ok(CreateMultipartUploadOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(id),
        ..Default::default()
    })
}

/// Writes one part (a new upload of the same number replaces it) and returns its MD5.
async fn put_part<St, E>(
    vfs: &Vfs,
    dir: Gfid,
    n: i32,
    body: St,
    content_md5: Option<&str>,
    checks: &mut BodyChecks,
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
        vfs.setxattrs(ia.gfid, &etag_xattr(&etag, &ia))
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
    let i = req.input;
    let mut checks = BodyChecks::new(
        crate::checksum::checksums_of!(i),
        &req.headers,
        req.trailing_headers,
    )?;
    let vfs = s.vfs()?;
    check_part_number(i.part_number)?;
    let (_, dir, _) = upload(s, &vfs, &i.upload_id, &i.bucket, &i.key).await?;
    let body: futures::stream::BoxStream<'static, Result<Bytes, String>> = match i.body {
        Some(b) => b.map(|r| r.map_err(|e| e.to_string())).boxed(),
        None => futures::stream::empty().boxed(),
    };
    let etag = put_part(
        &vfs,
        dir,
        i.part_number,
        body,
        i.content_md5.as_deref(),
        &mut checks,
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
    i: UploadPartCopyInput,
) -> S3Result<UploadPartCopyOutput> {
    let vfs = s.vfs()?;
    check_part_number(i.part_number)?;
    let (_, dir, _) = upload(s, &vfs, &i.upload_id, &i.bucket, &i.key).await?;
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
    let src = s.object(&vfs, sb, sk).await?;
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
    let etag = put_part(
        &vfs,
        dir,
        i.part_number,
        body,
        None,
        &mut BodyChecks::default(),
    )
    .await?;
    Ok(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(etag_of(&etag)),
            last_modified: Some(timestamp(src.ia.mtime)),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Every stored part: number, attributes and ETag, in part order.
async fn parts(vfs: &Vfs, dir: Gfid) -> S3Result<Vec<(i32, engine::fop::Iatt, String)>> {
    let mut nums: Vec<i32> = vfs
        .list_dir(dir)
        .await
        .map_err(|e| fs_error(e, On::Upload))?
        .into_iter()
        .filter_map(|(n, _)| n.strip_prefix("part-")?.parse().ok())
        .collect();
    nums.sort_unstable();
    let mut out = Vec::new();
    for n in nums {
        let mut want = Xattrs::new();
        want.insert(meta::ETAG.to_string(), Bytes::new());
        if let Ok((ia, x)) = vfs.lookup(dir, &part_name(n), &want).await {
            let etag = stored_etag(&x, &ia).unwrap_or_default();
            out.push((n, ia, etag));
        }
    }
    Ok(out)
}

pub async fn complete(
    s: &GatewayS3,
    i: CompleteMultipartUploadInput,
) -> S3Result<CompleteMultipartUploadOutput> {
    let vfs = s.vfs()?;
    let bucket = s.bucket(&vfs, &i.bucket).await?;
    let (uploads, dir, rec) = upload(s, &vfs, &i.upload_id, &i.bucket, &i.key).await?;
    let wanted = i
        .multipart_upload
        .and_then(|m| m.parts)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| s3_error!(MalformedXML, "You must specify at least one part."))?;
    let stored = parts(&vfs, dir).await?;
    let mut chosen = Vec::new();
    let mut prev = 0;
    for (idx, p) in wanted.iter().enumerate() {
        let n = p.part_number.unwrap_or(0);
        if n <= prev {
            return Err(s3_error!(
                InvalidPartOrder,
                "The list of parts was not in ascending order. The parts list must be specified in order by part number."
            ));
        }
        prev = n;
        let Some((_, ia, etag)) = stored.iter().find(|(m, _, _)| *m == n) else {
            return Err(s3_error!(
                InvalidPart,
                "One or more of the specified parts could not be found. Part {n} was never uploaded."
            ));
        };
        if let Some(e) = &p.e_tag
            && e.value().trim_matches('"') != etag
        {
            return Err(s3_error!(
                InvalidPart,
                "Part {n}'s ETag does not match the uploaded part."
            ));
        }
        if idx + 1 < wanted.len() && ia.size < MIN_PART {
            return Err(s3_error!(
                EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size. Part {n} has {} bytes; every part but the last needs 5 MiB.",
                ia.size
            ));
        }
        chosen.push((n, ia.gfid, etag.clone()));
    }
    let etag = meta::multipart_etag(&chosen.iter().map(|c| c.2.clone()).collect::<Vec<_>>());
    let mut x = Xattrs::new();
    for (k, v) in &rec.meta {
        x.insert(k.clone(), Bytes::from(v.clone()));
    }
    let m = ObjectMeta::from_xattrs(&x);
    let body = futures::stream::iter(chosen.into_iter().map(|(_, g, _)| g))
        .then(|g| {
            let vfs = vfs.clone();
            async move {
                let f = vfs.open(g, libc::O_RDONLY).await;
                let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(1);
                let rx = match f {
                    Ok(f) => {
                        let size = vfs
                            .top
                            .fstat(&vfs.ctx, &f.fd)
                            .await
                            .map(|ia| ia.size)
                            .unwrap_or(0);
                        vfs.read_range(std::sync::Arc::new(f), 0, size)
                    }
                    Err(e) => {
                        let _ = tx
                            .send(Err(std::io::Error::from_raw_os_error(e.code())))
                            .await;
                        rx
                    }
                };
                tokio_stream::wrappers::ReceiverStream::new(rx)
            }
        })
        .flatten()
        .map(|r| r.map_err(|e| e.to_string()))
        .boxed();
    let (etag, _) = s
        .store(
            &vfs,
            bucket,
            &i.key,
            &m,
            body,
            crate::ops::EtagFrom::Given(etag),
        )
        .await?;
    if let Err(e) = vfs.remove_tree(uploads, &i.upload_id).await {
        tracing::warn!(upload = %i.upload_id, "completed upload's staging directory not removed: {e}");
    }
    Ok(CompleteMultipartUploadOutput {
        bucket: Some(i.bucket.clone()),
        key: Some(i.key.clone()),
        e_tag: Some(etag_of(&etag)),
        location: Some(format!("/{}/{}", i.bucket, i.key)),
        ..Default::default()
    })
}

pub async fn abort(
    s: &GatewayS3,
    i: AbortMultipartUploadInput,
) -> S3Result<AbortMultipartUploadOutput> {
    let vfs = s.vfs()?;
    s.bucket(&vfs, &i.bucket).await?;
    let (uploads, _, _) = upload(s, &vfs, &i.upload_id, &i.bucket, &i.key).await?;
    vfs.remove_tree(uploads, &i.upload_id)
        .await
        .map_err(|e| fs_error(e, On::Upload))?;
    Ok(AbortMultipartUploadOutput::default())
}

pub async fn list_parts(s: &GatewayS3, i: ListPartsInput) -> S3Result<ListPartsOutput> {
    let vfs = s.vfs()?;
    s.bucket(&vfs, &i.bucket).await?;
    let (_, dir, _) = upload(s, &vfs, &i.upload_id, &i.bucket, &i.key).await?;
    let max = i.max_parts.unwrap_or(1000).clamp(0, 1000) as usize;
    let marker = i.part_number_marker.unwrap_or(0);
    let all: Vec<_> = parts(&vfs, dir)
        .await?
        .into_iter()
        .filter(|p| p.0 > marker)
        .collect();
    let truncated = all.len() > max;
    let page: Vec<Part> = all
        .into_iter()
        .take(max)
        .map(|(n, ia, etag)| Part {
            e_tag: Some(etag_of(&etag)),
            last_modified: Some(timestamp(ia.mtime)),
            part_number: Some(n),
            size: Some(ia.size as i64),
            ..Default::default()
        })
        .collect();
    Ok(ListPartsOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(i.upload_id),
        max_parts: Some(max as i32),
        part_number_marker: Some(marker),
        next_part_number_marker: page.last().and_then(|p| p.part_number),
        is_truncated: Some(truncated),
        parts: Some(page),
        storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
        ..Default::default()
    })
}

pub async fn list_uploads(
    s: &GatewayS3,
    i: ListMultipartUploadsInput,
) -> S3Result<ListMultipartUploadsOutput> {
    let vfs = s.vfs()?;
    s.bucket(&vfs, &i.bucket).await?;
    let uploads = s.staging(&vfs, "uploads").await?;
    let prefix = i.prefix.clone().unwrap_or_default();
    let mut found = Vec::new();
    for (id, is_dir) in vfs
        .list_dir(uploads)
        .await
        .map_err(|e| fs_error(e, On::Bucket))?
    {
        if !is_dir {
            continue;
        }
        let mut want = Xattrs::new();
        want.insert(RECORD.to_string(), Bytes::new());
        let Ok((_, x)) = vfs.lookup(uploads, &id, &want).await else {
            continue;
        };
        let Some(rec) = x
            .get(RECORD)
            .and_then(|v| serde_json::from_slice::<Record>(v).ok())
        else {
            continue;
        };
        if rec.bucket == i.bucket && rec.key.starts_with(&prefix) {
            found.push((rec.key, rec.initiated, id));
        }
    }
    found.sort();
    let key_marker = i.key_marker.clone().unwrap_or_default();
    let id_marker = i.upload_id_marker.clone().unwrap_or_default();
    found.retain(|(k, _, id)| {
        key_marker.is_empty()
            || *k > key_marker
            || (*k == key_marker && !id_marker.is_empty() && *id > id_marker)
    });
    let max = i.max_uploads.unwrap_or(1000).clamp(0, 1000) as usize;
    let mut list = Vec::new();
    let mut prefixes: Vec<CommonPrefix> = Vec::new();
    let mut truncated = false;
    for (k, t, id) in found {
        if list.len() + prefixes.len() >= max {
            truncated = true;
            break;
        }
        if let Some(d) = i.delimiter.as_deref().filter(|d| !d.is_empty())
            && let Some(at) = k[prefix.len()..].find(d)
        {
            let p = k[..prefix.len() + at + d.len()].to_string();
            if prefixes.last().and_then(|c| c.prefix.as_deref()) != Some(p.as_str()) {
                prefixes.push(CommonPrefix { prefix: Some(p) });
            }
            continue;
        }
        list.push(MultipartUpload {
            key: Some(k),
            upload_id: Some(id),
            initiated: Some(timestamp(engine::fop::Timespec { sec: t, nsec: 0 })),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            ..Default::default()
        });
    }
    Ok(ListMultipartUploadsOutput {
        bucket: Some(i.bucket),
        prefix: Some(prefix),
        key_marker: i.key_marker,
        upload_id_marker: i.upload_id_marker,
        next_key_marker: list.last().and_then(|u| u.key.clone()),
        next_upload_id_marker: list.last().and_then(|u| u.upload_id.clone()),
        max_uploads: Some(max as i32),
        is_truncated: Some(truncated),
        uploads: Some(list),
        common_prefixes: Some(prefixes),
        delimiter: i.delimiter,
        encoding_type: i.encoding_type,
        ..Default::default()
    })
}
