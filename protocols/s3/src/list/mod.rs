//! ListObjects (v1 and v2) and ListObjectVersions: pages of the walk in `walk.rs`, with the
//! ETag and attributes of each object on them.

pub mod walk;

use crate::access::Action;
use crate::error::{On, fs_error};
use crate::gateway::{GatewayS3, etag_of};
use crate::layout;
use crate::meta::{self, timestamp};
use crate::vfs::Vfs;
use bytes::Bytes;
use engine::fop::{Errno, Gfid, Xattrs};
use futures::StreamExt;
use s3s::dto::*;
use s3s::{S3Error, S3Request, S3Response, S3Result, s3_error};
pub use walk::{DirCache, Found, Query, url_encode, walk};

const MAX_KEYS_PER_PAGE: usize = 1000;

impl GatewayS3 {
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
        let (found, truncated) = walk(vfs, &self.dirs, bucket, &q)
            .await
            .map_err(|e| fs_error(e, On::Bucket))?;
        let last = found.last().map(|f| f.key().to_string());
        let looked = futures::stream::iter(found.into_iter().map(|f| async move {
            match f {
                Found::Prefix(p) => Ok::<_, S3Error>(Some(either(None, Some(p)))),
                Found::Object {
                    key,
                    known: Some(k),
                    ..
                } => Ok(Some(either(
                    Some(listed_object(key, k.size, k.mtime, &k.etag)),
                    None,
                ))),
                Found::Object {
                    key, parent, name, ..
                } => {
                    let mut want = Xattrs::new();
                    want.insert(meta::ETAG.to_string(), Bytes::new());
                    want.insert(layout::DIR_OBJECT.to_string(), Bytes::new());
                    let (mut ia, x) = match vfs.lookup(parent, &name, &want).await {
                        Ok(r) => r,
                        Err(Errno::ENOENT) | Err(Errno::ESTALE) => return Ok(None),
                        Err(e) => return Err(fs_error(e, On::Object)),
                    };
                    let etag = if ia.is_reg() {
                        self.etag(vfs, &ia, &x).await?
                    } else if ia.is_dir() && key.ends_with('/') {
                        // A folder without data (`layout.rs`): an empty object.
                        ia.size = 0;
                        ia.mtime = layout::folder_mtime(&ia, &x);
                        meta::md5_hex(b"")
                    } else {
                        return Ok(None);
                    };
                    Ok(Some(either(
                        Some(listed_object(key, ia.size, ia.mtime, &etag)),
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

fn listed_object(key: String, size: u64, mtime: engine::fop::Timespec, etag: &str) -> Object {
    Object {
        key: Some(key),
        size: Some(size as i64),
        last_modified: Some(timestamp(mtime)),
        e_tag: Some(etag_of(etag)),
        storage_class: Some(ObjectStorageClass::from_static(
            ObjectStorageClass::STANDARD,
        )),
        ..Default::default()
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

/// The bucket, once `action` (a listing) is allowed with the request's prefix, delimiter and
/// max-keys as the condition keys bucket policies see.
async fn list_allowed<T>(
    s: &GatewayS3,
    vfs: &Vfs,
    req: &S3Request<T>,
    bucket: &str,
    action: Action,
    (prefix, delimiter, max_keys): (&Option<String>, &Option<String>, Option<i32>),
) -> S3Result<crate::authz::Allowed> {
    s.allowed(
        vfs,
        req,
        bucket,
        action,
        None,
        &[
            ("s3:prefix", prefix.clone()),
            ("s3:delimiter", delimiter.clone()),
            ("s3:max-keys", max_keys.map(|m| m.to_string())),
        ],
    )
    .await
}

pub(crate) async fn list_objects(
    s: &GatewayS3,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let vfs = s.vfs()?;
    let i = &req.input;
    let a = list_allowed(
        s,
        &vfs,
        &req,
        &i.bucket,
        Action::ListBucket,
        (&i.prefix, &i.delimiter, i.max_keys),
    )
    .await?;
    let owner = s.owner_of(a.bucket.owner.as_deref());
    let i = req.input;
    let bucket = a.gfid;
    let prefix = i.prefix.clone().unwrap_or_default();
    let max = max_keys(i.max_keys)?;
    let marker = i.marker.clone().filter(|m| !m.is_empty());
    let (objects, prefixes, truncated, last) = s
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
        // S3 encodes v1's Marker, NextMarker, Delimiter and keys, but not its Prefix (botocore
        // decodes exactly those).
        prefix: Some(prefix),
        marker: enc(url, Some(marker.unwrap_or_default())),
        max_keys: Some(max as i32),
        is_truncated: Some(truncated),
        next_marker: if truncated { enc(url, last) } else { None },
        // v1 always names each object's owner.
        contents: Some(with_owner(Some(&owner), encode_objects(url, objects))),
        common_prefixes: Some(encode_prefixes(url, prefixes)),
        delimiter: enc(url, echoed(i.delimiter)),
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}

pub(crate) async fn list_objects_v2(
    s: &GatewayS3,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let vfs = s.vfs()?;
    let i = &req.input;
    let a = list_allowed(
        s,
        &vfs,
        &req,
        &i.bucket,
        Action::ListBucket,
        (&i.prefix, &i.delimiter, i.max_keys),
    )
    .await?;
    let owner = s.owner_of(a.bucket.owner.as_deref());
    let i = req.input;
    let bucket = a.gfid;
    let prefix = i.prefix.clone().unwrap_or_default();
    let max = max_keys(i.max_keys)?;
    let after = match &i.continuation_token {
        Some(t) => Some(decode_token(t)?),
        None => i.start_after.clone().filter(|s| !s.is_empty()),
    };
    let (objects, prefixes, truncated, last) = s
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
        contents: Some(with_owner(
            i.fetch_owner.unwrap_or(false).then_some(&owner),
            encode_objects(url, objects),
        )),
        common_prefixes: Some(encode_prefixes(url, prefixes)),
        delimiter: enc(url, echoed(i.delimiter)),
        encoding_type: i.encoding_type,
        start_after: enc(url, i.start_after),
        ..Default::default()
    }))
}

pub(crate) async fn list_object_versions(
    s: &GatewayS3,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let vfs = s.vfs()?;
    let i = &req.input;
    let a = list_allowed(
        s,
        &vfs,
        &req,
        &i.bucket,
        Action::ListBucketVersions,
        (&i.prefix, &i.delimiter, i.max_keys),
    )
    .await?;
    let owner = s.owner_of(a.bucket.owner.as_deref());
    let i = req.input;
    let bucket = a.gfid;
    let prefix = i.prefix.clone().unwrap_or_default();
    let max = max_keys(i.max_keys)?;
    let marker = i.key_marker.clone().filter(|m| !m.is_empty());
    let (objects, prefixes, truncated, last) = s
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
            owner: Some(owner.clone()),
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
        delimiter: enc(url, echoed(i.delimiter)),
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}

/// An empty delimiter is no delimiter, and S3 does not echo it.
fn echoed(d: Option<String>) -> Option<String> {
    d.filter(|d| !d.is_empty())
}

/// Names `owner` as every object's (the bucket's: objects others wrote into it are rare, and
/// their owners are not read while listing).
fn with_owner(owner: Option<&Owner>, mut objects: Vec<Object>) -> Vec<Object> {
    if let Some(owner) = owner {
        for o in &mut objects {
            o.owner = Some(owner.clone());
        }
    }
    objects
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
