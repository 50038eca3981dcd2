//! GetObjectAttributes, and the reads of what an object was stored with besides its bytes and
//! metadata: its additional checksum and, for a multipart object, its parts.

use crate::access::Action;
use crate::gateway::{Found1, GatewayS3, etag_of, refuse_encryption};
use crate::meta::{self, Parts, StoredChecksum};
use crate::put::PARTS_SIDECAR;
use crate::sidecar;
use crate::vfs::Vfs;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

/// The object's additional checksum, while its bytes are the ones it was computed for.
pub(crate) fn checksum_of(f: &Found1) -> Option<StoredChecksum> {
    meta::unstamped(&f.x, meta::CHECKSUM, &f.ia).and_then(|c| StoredChecksum::decode(&c))
}

/// A multipart object's parts, while its bytes are the ones they were assembled into.
pub(crate) async fn parts_of(s: &GatewayS3, vfs: &Vfs, f: &Found1) -> S3Result<Option<Parts>> {
    let Some(v) = meta::unstamped(&f.x, meta::PARTS, &f.ia) else {
        return Ok(None);
    };
    let encoded = if v.starts_with(sidecar::MARKER) {
        match sidecar::load(s, vfs, f.ia.gfid, PARTS_SIDECAR).await? {
            Some(e) => e,
            None => return Ok(None),
        }
    } else {
        v
    };
    Ok(Parts::decode(&encoded).filter(|p| p.sizes.iter().sum::<u64>() == f.ia.size))
}

pub(crate) async fn get_object_attributes(
    s: &GatewayS3,
    req: S3Request<GetObjectAttributesInput>,
) -> S3Result<S3Response<GetObjectAttributesOutput>> {
    refuse_encryption(&req.headers)?;
    let vfs = s.vfs()?;
    let (_, f) = s
        .object_allowed(
            &vfs,
            &req,
            &req.input.bucket,
            &req.input.key,
            Action::GetObjectAttributes,
        )
        .await?;
    let i = req.input;
    // One header, `ETag,ObjectSize,...`: taken apart here whatever s3s made of it.
    let wants = |a: &str| {
        i.object_attributes
            .iter()
            .flat_map(|w| w.as_str().split(','))
            .any(|w| w.trim().eq_ignore_ascii_case(a))
    };
    let mut o = GetObjectAttributesOutput {
        last_modified: Some(meta::timestamp(f.ia.mtime)),
        ..Default::default()
    };
    if wants(ObjectAttributes::ETAG) {
        o.e_tag = Some(etag_of(&f.etag));
    }
    if wants(ObjectAttributes::OBJECT_SIZE) {
        o.object_size = Some(f.ia.size as i64);
    }
    if wants(ObjectAttributes::STORAGE_CLASS) {
        o.storage_class = Some(StorageClass::from_static(StorageClass::STANDARD));
    }
    let sum = checksum_of(&f);
    if wants(ObjectAttributes::CHECKSUM) {
        o.checksum = sum.as_ref().map(StoredChecksum::to_dto);
    }
    if wants(ObjectAttributes::OBJECT_PARTS)
        && let Some(p) = parts_of(s, &vfs, &f).await?
    {
        let max = i.max_parts.unwrap_or(1000).clamp(0, 1000) as usize;
        let marker = i.part_number_marker.unwrap_or(0).max(0) as usize;
        let all: Vec<ObjectPart> = p
            .sizes
            .iter()
            .enumerate()
            .skip(marker)
            .map(|(at, size)| {
                let c = match (&sum, p.checksums.get(at)) {
                    (Some(c), Some(v)) => crate::checksum::with_value(c.algo, v.clone()),
                    _ => Checksum::default(),
                };
                ObjectPart {
                    part_number: Some(at as i32 + 1),
                    size: Some(*size as i64),
                    checksum_crc32: c.checksum_crc32,
                    checksum_crc32c: c.checksum_crc32c,
                    checksum_crc64nvme: c.checksum_crc64nvme,
                    checksum_sha1: c.checksum_sha1,
                    checksum_sha256: c.checksum_sha256,
                }
            })
            .collect();
        let truncated = all.len() > max;
        let page: Vec<ObjectPart> = all.into_iter().take(max).collect();
        o.object_parts = Some(GetObjectAttributesParts {
            total_parts_count: Some(p.sizes.len() as i32),
            part_number_marker: Some(marker as i32),
            next_part_number_marker: page.last().and_then(|p| p.part_number),
            max_parts: Some(max as i32),
            is_truncated: Some(truncated),
            parts: Some(page),
        });
    }
    Ok(S3Response::new(o))
}
