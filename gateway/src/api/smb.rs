//! SMB shares and users.

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

#[utoipa::path(get, path = "/smb/shares", tag = "smb",
    responses((status = 200, description = "SMB shares", body = Vec<crate::store::SmbShareRecord>)))]
pub(super) async fn smb_shares(State(m): State<Arc<Manager>>) -> ApiResult {
    let v = m.store.smb_shares().map_err(ManagerError::from)?;
    Ok(Json(v).into_response())
}

#[utoipa::path(post, path = "/smb/shares", tag = "smb", request_body = crate::store::SmbShareRecord,
    responses((status = 201, description = "Shared and served", body = crate::store::SmbShareRecord),
        (status = 400, description = "Bad name or path, or SMB is off", body = ErrorBody),
        (status = 404, description = "No such volume or user", body = ErrorBody),
        (status = 409, description = "A share of that name exists", body = ErrorBody),
        (status = 501, description = "Samba is not installed", body = ErrorBody)))]
pub(super) async fn smb_share_add(
    State(m): State<Arc<Manager>>,
    Json(s): Json<crate::store::SmbShareRecord>,
) -> ApiResult {
    let s = crate::smb::add_share(&m, s).await?;
    Ok((StatusCode::CREATED, Json(s)).into_response())
}

#[utoipa::path(delete, path = "/smb/shares/{name}", tag = "smb",
    params(("name" = String, Path, description = "Share name")),
    responses((status = 200, description = "Removed"), (status = 404, description = "No such share", body = ErrorBody)))]
pub(super) async fn smb_share_remove(
    State(m): State<Arc<Manager>>,
    Path(name): Path<String>,
) -> ApiResult {
    let s = crate::smb::remove_share(&m, &name).await?;
    Ok(Json(json!({ "removed": s.name })).into_response())
}

#[utoipa::path(get, path = "/smb/users", tag = "smb",
    responses((status = 200, description = "SMB users", body = Vec<crate::store::SmbUserRecord>)))]
pub(super) async fn smb_users(State(m): State<Arc<Manager>>) -> ApiResult {
    let v = m.store.smb_users().map_err(ManagerError::from)?;
    Ok(Json(v).into_response())
}

#[derive(Deserialize, ToSchema)]
pub(super) struct SmbUserBody {
    name: String,
    password: String,
}

#[derive(Deserialize, ToSchema)]
pub(super) struct PasswordBody {
    password: String,
}

#[utoipa::path(post, path = "/smb/users", tag = "smb", request_body = SmbUserBody,
    responses((status = 201, description = "Added", body = crate::store::SmbUserRecord),
        (status = 400, description = "Bad name or weak password", body = ErrorBody),
        (status = 409, description = "The user exists", body = ErrorBody)))]
pub(super) async fn smb_user_add(
    State(m): State<Arc<Manager>>,
    Json(b): Json<SmbUserBody>,
) -> ApiResult {
    let u = crate::smb::set_user(&m, &b.name, &b.password, false).await?;
    Ok((StatusCode::CREATED, Json(u)).into_response())
}

#[utoipa::path(put, path = "/smb/users/{name}", tag = "smb",
    params(("name" = String, Path, description = "User name")), request_body = PasswordBody,
    responses((status = 200, description = "Password set", body = crate::store::SmbUserRecord),
        (status = 400, description = "Weak password", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody)))]
pub(super) async fn smb_user_passwd(
    State(m): State<Arc<Manager>>,
    Path(name): Path<String>,
    Json(b): Json<PasswordBody>,
) -> ApiResult {
    let u = crate::smb::set_user(&m, &name, &b.password, true).await?;
    Ok(Json(u).into_response())
}

#[utoipa::path(delete, path = "/smb/users/{name}", tag = "smb",
    params(("name" = String, Path, description = "User name")),
    responses((status = 200, description = "Removed"), (status = 404, description = "No such user", body = ErrorBody),
        (status = 400, description = "A share lists the user", body = ErrorBody)))]
pub(super) async fn smb_user_remove(
    State(m): State<Arc<Manager>>,
    Path(name): Path<String>,
) -> ApiResult {
    let u = crate::smb::remove_user(&m, &name).await?;
    Ok(Json(json!({ "removed": u.name })).into_response())
}
