//! NFS exports.

use super::common::{ApiResult, ErrorBody};
use crate::manager::Manager;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

#[utoipa::path(get, path = "/nfs/exports", tag = "nfs",
    responses((status = 200, description = "Configured exports and the volumes' defaults", body = Vec<serde_json::Value>)))]
pub(super) async fn nfs_exports(State(m): State<Arc<Manager>>) -> ApiResult {
    Ok(Json(crate::nfs::list_exports(&m)?).into_response())
}

#[utoipa::path(post, path = "/nfs/exports", tag = "nfs", request_body = crate::store::NfsExportRecord,
    responses((status = 201, description = "Exported", body = crate::store::NfsExportRecord),
        (status = 400, description = "Bad path or network, or no such directory in the volume (which must be started for an export of a directory)", body = ErrorBody), (status = 404, description = "No such volume", body = ErrorBody)))]
pub(super) async fn nfs_export_add(
    State(m): State<Arc<Manager>>,
    Json(e): Json<crate::store::NfsExportRecord>,
) -> ApiResult {
    let e = crate::nfs::add_export(&m, e).await?;
    Ok((StatusCode::CREATED, Json(e)).into_response())
}

#[derive(Deserialize)]
pub(super) struct ExportPath {
    path: String,
}

#[utoipa::path(delete, path = "/nfs/exports", tag = "nfs",
    params(("path" = String, Query, description = "The export's path: /VOLUME[/DIR]")),
    responses((status = 200, description = "Removed"), (status = 404, description = "No such export", body = ErrorBody)))]
pub(super) async fn nfs_export_remove(
    State(m): State<Arc<Manager>>,
    Query(q): Query<ExportPath>,
) -> ApiResult {
    let e = crate::nfs::remove_export(&m, &q.path)?;
    Ok(Json(json!({ "removed": e.path })).into_response())
}
