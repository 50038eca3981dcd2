//! CopyObject: a new object from a stored one, or new metadata for the same one.

use crate::access::Action;
use crate::authz::grant_headers;
use crate::checksum::BodyChecks;
use crate::error::{On, fs_error};
use crate::gateway::{GatewayS3, etag_of, meta_from, refuse_encryption, refuse_object_lock};
use crate::get::check_conditions;
use crate::meta::{ObjectMeta, timestamp};
use crate::put::{EtagFrom, Extra};
use crate::tagging::{check_tagging, save_aside, tags_of};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

/// The bucket and key an `x-amz-copy-source` names: CopyObject's and UploadPartCopy's.
pub(crate) fn copy_source(cs: &CopySource) -> S3Result<(&str, &str)> {
    let CopySource::Bucket {
        bucket: sb,
        key: sk,
        ..
    } = cs
    else {
        return Err(s3_error!(
            NotImplemented,
            "Copying from an access point is not supported."
        ));
    };
    Ok((sb, sk))
}

pub(crate) async fn copy_object(
    s: &GatewayS3,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    refuse_encryption(&req.headers)?;
    refuse_object_lock(&req.headers)?;
    let vfs = s.vfs()?;
    // Reading the source and writing the target are each checked.
    let (sb, sk) = copy_source(&req.input.copy_source)?;
    let (sb, sk) = (sb.to_string(), sk.to_string());
    let (_, src) = s
        .object_allowed(&vfs, &req, &sb, &sk, Action::GetObject)
        .await?;
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
    let mut m = if replace {
        meta_from!(i, &req.headers)
    } else {
        old.clone()
    };
    m.tagging = if replace_tags {
        i.tagging.as_deref().map(check_tagging).transpose()?
    } else {
        tags_of(s, &vfs, &src).await?
    };
    m.tags_aside = None;
    let same = sb == i.bucket && sk == i.key;
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
        let (x, aside) = m.object_xattrs();
        save_aside(s, &vfs, src.ia.gfid, aside).await?;
        vfs.setxattrs(src.ia.gfid, &x)
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
    m.access = a.new_object(
        s,
        i.acl.as_ref().map(|a| a.as_str()),
        grant_headers!(i, no_write),
    )?;
    let body = s.body(&vfs, src.ia.gfid, 0, src.ia.size).await?;
    // A plain copy keeps the source's ETag (a multipart "-N" one included), as S3 does for
    // copies it makes in one piece only when the source was not multipart; MD5 otherwise.
    let keep = if src.etag.contains('-') {
        EtagFrom::Md5 { content_md5: None }
    } else {
        EtagFrom::Given(src.etag.clone())
    };
    let (etag, ia) = s
        .store(
            &vfs,
            bucket,
            &i.key,
            &m,
            body,
            keep,
            &mut BodyChecks::default(),
            Extra::default(),
        )
        .await?;
    Ok(S3Response::new(CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(etag_of(&etag)),
            last_modified: Some(timestamp(ia.mtime)),
            ..Default::default()
        }),
        ..Default::default()
    }))
}
