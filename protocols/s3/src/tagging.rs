//! Object tagging: the tag set is kept URL-encoded, as the `x-amz-tagging` header carries it,
//! in one xattr, or in the object's sidecar (`sidecar.rs`) when it is too large for one.

use crate::access::Action;
use crate::error::{On, fs_error};
use crate::gateway::{Found1, GatewayS3};
use crate::meta::{self, ObjectMeta};
use crate::sidecar;
use crate::vfs::Vfs;
use engine::fop::Gfid;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

pub(crate) fn check_tagging(t: &str) -> S3Result<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(t)
        .map_err(|_| s3_error!(InvalidTag, "The tag header could not be parsed."))?;
    tag_pairs(pairs.into_iter(), 10)
}

/// The sidecar kind of a tag set too large for its xattr.
pub(crate) const SIDECAR: &str = "tags";

/// A tag set checked against S3's limits (`max` tags: 10 on an object, 50 on a bucket),
/// URL-encoded.
fn tag_pairs(pairs: impl Iterator<Item = (String, String)>, max: usize) -> S3Result<String> {
    let mut pairs: Vec<(String, String)> = pairs.collect();
    // S3 answers a tag set in key order, whatever order it was given in.
    pairs.sort();
    if pairs.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(s3_error!(
            InvalidTag,
            "Cannot provide multiple Tags with the same key"
        ));
    }
    if pairs.len() > max {
        return Err(s3_error!(InvalidTag, "Tags cannot be more than {max}."));
    }
    for (k, v) in &pairs {
        // AWS's limits count Unicode characters, not bytes.
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
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

/// An object's tag set, URL-encoded, wherever it is kept.
pub(crate) async fn tags_of(s: &GatewayS3, vfs: &Vfs, f: &Found1) -> S3Result<Option<String>> {
    let m = ObjectMeta::from_xattrs(&f.x);
    if m.tags_aside.is_some() {
        return sidecar::load(s, vfs, f.ia.gfid, SIDECAR).await;
    }
    Ok(m.tagging)
}

/// Stores the sidecar of a tag set `object_xattrs` left out of the xattrs.
pub(crate) async fn save_aside(
    s: &GatewayS3,
    vfs: &Vfs,
    gfid: Gfid,
    aside: Option<String>,
) -> S3Result<()> {
    match aside {
        Some(t) => sidecar::save(s, vfs, gfid, SIDECAR, &t).await,
        None => Ok(()),
    }
}

pub(crate) async fn put_object_tagging(
    s: &GatewayS3,
    req: S3Request<PutObjectTaggingInput>,
) -> S3Result<S3Response<PutObjectTaggingOutput>> {
    let vfs = s.vfs()?;
    let (_, f) = s
        .object_allowed(
            &vfs,
            &req,
            &req.input.bucket,
            &req.input.key,
            Action::PutObjectTagging,
        )
        .await?;
    let i = req.input;
    let enc = tag_pairs(
        i.tagging
            .tag_set
            .into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default())),
        10,
    )?;
    let was_aside = ObjectMeta::from_xattrs(&f.x).tags_aside.is_some();
    let m = ObjectMeta {
        tagging: Some(enc),
        ..Default::default()
    };
    let (mut x, aside) = m.object_xattrs();
    x.retain(|k, _| k == meta::TAGGING);
    let moved = aside.is_some();
    save_aside(s, &vfs, f.ia.gfid, aside).await?;
    vfs.setxattrs(f.ia.gfid, &x)
        .await
        .map_err(|e| fs_error(e, On::Object))?;
    if was_aside && !moved {
        sidecar::remove(s, &vfs, f.ia.gfid, SIDECAR).await;
    }
    Ok(S3Response::new(PutObjectTaggingOutput::default()))
}

pub(crate) async fn get_object_tagging(
    s: &GatewayS3,
    req: S3Request<GetObjectTaggingInput>,
) -> S3Result<S3Response<GetObjectTaggingOutput>> {
    let vfs = s.vfs()?;
    let (_, f) = s
        .object_allowed(
            &vfs,
            &req,
            &req.input.bucket,
            &req.input.key,
            Action::GetObjectTagging,
        )
        .await?;
    let tags = tags_of(s, &vfs, &f).await?;
    Ok(S3Response::new(GetObjectTaggingOutput {
        tag_set: tag_set(tags.as_deref()),
        version_id: None,
    }))
}

pub(crate) async fn delete_object_tagging(
    s: &GatewayS3,
    req: S3Request<DeleteObjectTaggingInput>,
) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
    let vfs = s.vfs()?;
    let (_, f) = s
        .object_allowed(
            &vfs,
            &req,
            &req.input.bucket,
            &req.input.key,
            Action::DeleteObjectTagging,
        )
        .await?;
    vfs.removexattr(f.ia.gfid, meta::TAGGING)
        .await
        .map_err(|e| fs_error(e, On::Object))?;
    if ObjectMeta::from_xattrs(&f.x).tags_aside.is_some() {
        sidecar::remove(s, &vfs, f.ia.gfid, SIDECAR).await;
    }
    Ok(S3Response::new(DeleteObjectTaggingOutput::default()))
}

/// A bucket's tag set (an xattr of its directory; at most 50 tags fit in it).
const BUCKET_TAGGING: &str = "user.s3.bucket-tagging";

pub(crate) async fn put_bucket_tagging(
    s: &GatewayS3,
    req: S3Request<PutBucketTaggingInput>,
) -> S3Result<S3Response<PutBucketTaggingOutput>> {
    let vfs = s.vfs()?;
    let b = s
        .allowed(
            &vfs,
            &req,
            &req.input.bucket,
            Action::BucketConfig("s3:PutBucketTagging"),
            None,
            &[],
        )
        .await?
        .gfid;
    let i = req.input;
    let enc = tag_pairs(
        i.tagging
            .tag_set
            .into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default())),
        50,
    )?;
    let mut x = engine::fop::Xattrs::new();
    x.insert(BUCKET_TAGGING.to_string(), bytes::Bytes::from(enc));
    vfs.setxattrs(b, &x)
        .await
        .map_err(|e| fs_error(e, On::Bucket))?;
    Ok(S3Response::new(PutBucketTaggingOutput::default()))
}

pub(crate) async fn get_bucket_tagging(
    s: &GatewayS3,
    req: S3Request<GetBucketTaggingInput>,
) -> S3Result<S3Response<GetBucketTaggingOutput>> {
    let vfs = s.vfs()?;
    let b = s
        .allowed(
            &vfs,
            &req,
            &req.input.bucket,
            Action::BucketConfig("s3:GetBucketTagging"),
            None,
            &[],
        )
        .await?
        .gfid;
    let enc = vfs
        .getxattr(b, Some(BUCKET_TAGGING))
        .await
        .ok()
        .and_then(|x| {
            x.get(BUCKET_TAGGING)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        })
        .ok_or_else(|| s3_error!(NoSuchTagSet, "The TagSet does not exist"))?;
    Ok(S3Response::new(GetBucketTaggingOutput {
        tag_set: tag_set(Some(&enc)),
    }))
}

pub(crate) async fn delete_bucket_tagging(
    s: &GatewayS3,
    req: S3Request<DeleteBucketTaggingInput>,
) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
    let vfs = s.vfs()?;
    let b = s
        .allowed(
            &vfs,
            &req,
            &req.input.bucket,
            Action::BucketConfig("s3:PutBucketTagging"),
            None,
            &[],
        )
        .await?
        .gfid;
    vfs.removexattr(b, BUCKET_TAGGING)
        .await
        .map_err(|e| fs_error(e, On::Bucket))?;
    Ok(S3Response::new(DeleteBucketTaggingOutput::default()))
}
