//! ListParts and ListMultipartUploads.

use super::{RECORD, Record, parts, upload};
use crate::access::Action;
use crate::checksum;
use crate::error::{On, fs_error};
use crate::gateway::{GatewayS3, etag_of};
use crate::meta::timestamp;
use bytes::Bytes;
use engine::fop::Xattrs;
use s3s::dto::*;
use s3s::{S3Request, S3Result};

pub async fn list_parts(
    s: &GatewayS3,
    req: S3Request<ListPartsInput>,
) -> S3Result<ListPartsOutput> {
    let vfs = s.vfs()?;
    s.allowed(
        &vfs,
        &req,
        &req.input.bucket,
        Action::ListMultipartUploadParts,
        Some(&req.input.key),
        &[],
    )
    .await?;
    let i = req.input;
    let up = upload(s, &vfs, &i.upload_id, &i.bucket, &i.key, false).await?;
    let max = i.max_parts.unwrap_or(1000).clamp(0, 1000) as usize;
    let marker = i.part_number_marker.unwrap_or(0);
    let all: Vec<_> = parts(&vfs, up.dir)
        .await?
        .into_iter()
        .filter(|p| p.number > marker)
        .collect();
    let algo = up.rec.algo();
    let truncated = all.len() > max;
    let page: Vec<Part> = all
        .into_iter()
        .take(max)
        .map(|p| {
            let sum = match (algo, p.checksum) {
                (Some(a), Some(v)) => checksum::with_value(a, v),
                _ => Default::default(),
            };
            Part {
                e_tag: Some(etag_of(&p.etag)),
                last_modified: Some(timestamp(p.ia.mtime)),
                part_number: Some(p.number),
                size: Some(p.ia.size as i64),
                checksum_crc32: sum.checksum_crc32,
                checksum_crc32c: sum.checksum_crc32c,
                checksum_crc64nvme: sum.checksum_crc64nvme,
                checksum_sha1: sum.checksum_sha1,
                checksum_sha256: sum.checksum_sha256,
            }
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
        checksum_algorithm: up
            .rec
            .checksum_algorithm
            .clone()
            .map(ChecksumAlgorithm::from),
        checksum_type: up.rec.checksum_type(),
        initiator: Some({
            let by = s.owner_of(up.rec.initiator.as_deref());
            Initiator {
                display_name: by.display_name,
                id: by.id,
            }
        }),
        owner: Some(s.owner_of(up.rec.owner())),
        ..Default::default()
    })
}

pub async fn list_uploads(
    s: &GatewayS3,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<ListMultipartUploadsOutput> {
    let vfs = s.vfs()?;
    s.allowed(
        &vfs,
        &req,
        &req.input.bucket,
        Action::ListBucketMultipartUploads,
        None,
        &[],
    )
    .await?;
    let i = req.input;
    let uploads = s.staging(&vfs, "uploads").await?;
    super::complete::sweep_done(&vfs, uploads).await?;
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
        if rec.done.is_none() && rec.bucket == i.bucket && rec.key.starts_with(&prefix) {
            let owner = s.owner_of(rec.owner());
            let by = s.owner_of(rec.initiator.as_deref());
            found.push((rec.key, rec.initiated, id, by, owner));
        }
    }
    found.sort_by(|a, b| (&a.0, a.1, &a.2).cmp(&(&b.0, b.1, &b.2)));
    let key_marker = i.key_marker.clone().unwrap_or_default();
    let id_marker = i.upload_id_marker.clone().unwrap_or_default();
    found.retain(|(k, _, id, _, _)| {
        key_marker.is_empty()
            || *k > key_marker
            || (*k == key_marker && !id_marker.is_empty() && *id > id_marker)
    });
    let max = i.max_uploads.unwrap_or(1000).clamp(0, 1000) as usize;
    let mut list = Vec::new();
    let mut prefixes: Vec<CommonPrefix> = Vec::new();
    let mut truncated = false;
    for (k, t, id, by, owner) in found {
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
            initiator: Some(Initiator {
                display_name: by.display_name,
                id: by.id,
            }),
            owner: Some(owner),
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
