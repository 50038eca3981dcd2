//! S3 access keys and their bucket grants.

use super::common::{ApiResult, ErrorBody};
use crate::manager::{Manager, ManagerError};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use utoipa::ToSchema;

/// A new key: its name and `crate::s3::KeyOptions`, spelled out (not flattened) so the
/// OpenAPI document shows one plain object.
#[derive(Deserialize, ToSchema)]
pub(super) struct KeyBody {
    name: String,
    /// Sees and may do everything, on every bucket.
    #[serde(default)]
    admin: bool,
    /// For grants by email in ACLs.
    #[serde(default)]
    email: Option<String>,
    /// Owner uid of the buckets the key makes (POSIX access over FUSE, NFS, SMB).
    #[serde(default)]
    uid: Option<u32>,
    /// Owner gid of the buckets the key makes (default: the uid).
    #[serde(default)]
    gid: Option<u32>,
    /// Buckets it may use without owning them.
    #[serde(default)]
    grants: Vec<GrantBody>,
}

#[derive(Deserialize, ToSchema)]
pub(super) struct GrantBody {
    bucket: String,
    #[serde(default)]
    read: bool,
    #[serde(default)]
    write: bool,
    #[serde(default)]
    owner: bool,
}

impl GrantBody {
    fn into_grant(self) -> protocols_s3::access::BucketGrant {
        protocols_s3::access::BucketGrant {
            bucket: self.bucket,
            read: self.read,
            write: self.write,
            owner: self.owner,
        }
    }
}

#[utoipa::path(get, path = "/s3/keys", tag = "s3",
    responses((status = 200, description = "S3 keys, without their secrets", body = Vec<serde_json::Value>)))]
pub(super) async fn s3_keys(State(m): State<Arc<Manager>>) -> ApiResult {
    let keys = m.store.s3_keys().map_err(ManagerError::from)?;
    let v: Vec<_> = keys.iter().map(crate::s3::public).collect();
    Ok(Json(v).into_response())
}

/// The only answer that carries the secret: it is shown once, as AWS does.
#[utoipa::path(post, path = "/s3/keys", tag = "s3", request_body = KeyBody,
    responses((status = 201, description = "Made; the secret is shown this once", body = serde_json::Value),
        (status = 400, description = "Bad name", body = ErrorBody)))]
pub(super) async fn s3_key_create(
    State(m): State<Arc<Manager>>,
    Json(b): Json<KeyBody>,
) -> ApiResult {
    let options = crate::s3::KeyOptions {
        admin: b.admin,
        email: b.email,
        uid: b.uid,
        gid: b.gid,
        grants: b.grants.into_iter().map(GrantBody::into_grant).collect(),
    };
    let k = crate::s3::create_key(&m.store, &b.name, options)?;
    let mut v = crate::s3::public(&k);
    v["secret_key"] = json!(k.secret_key);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// Lets a key use a bucket it does not own: read (list, get), write (put, delete) and owner
/// (its settings: ACLs, policy), as Garage's `bucket allow`.
#[utoipa::path(post, path = "/s3/keys/{name}/grants", tag = "s3", request_body = GrantBody,
    params(("name" = String, Path, description = "Key name or access key id")),
    responses((status = 200, description = "The key with its grants", body = serde_json::Value),
        (status = 400, description = "Bad grant", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody)))]
pub(super) async fn s3_key_allow(
    State(m): State<Arc<Manager>>,
    Path(name): Path<String>,
    Json(b): Json<GrantBody>,
) -> ApiResult {
    let k = crate::s3::allow(&m.store, &name, b.into_grant())?;
    Ok(Json(crate::s3::public(&k)).into_response())
}

#[utoipa::path(delete, path = "/s3/keys/{name}/grants/{bucket}", tag = "s3",
    params(("name" = String, Path, description = "Key name or access key id"),
        ("bucket" = String, Path, description = "The bucket whose grant goes")),
    responses((status = 200, description = "The key with its grants", body = serde_json::Value),
        (status = 404, description = "No such key", body = ErrorBody)))]
pub(super) async fn s3_key_deny(
    State(m): State<Arc<Manager>>,
    Path((name, bucket)): Path<(String, String)>,
) -> ApiResult {
    let k = crate::s3::deny(&m.store, &name, &bucket)?;
    Ok(Json(crate::s3::public(&k)).into_response())
}

#[utoipa::path(delete, path = "/s3/keys/{name}", tag = "s3",
    params(("name" = String, Path, description = "Key name or access key id")),
    responses((status = 200, description = "Deleted"), (status = 404, description = "No such key", body = ErrorBody)))]
pub(super) async fn s3_key_delete(
    State(m): State<Arc<Manager>>,
    Path(name): Path<String>,
) -> ApiResult {
    let k = crate::s3::delete_key(&m.store, &name)?;
    Ok(Json(json!({ "deleted": k.name, "access_key": k.access_key })).into_response())
}
