//! Elastic volumes: `volume add-brick`, `remove-brick`, `replace-brick` and `rebalance`.

use super::common::{ApiError, ApiResult, ErrorBody};
use crate::elastic::{RebalanceAction, RemoveAction};
use crate::manager::Manager;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// The body, or 400 with serde's reason. axum answers an unknown `action` with 422, a status
/// no other operation of this API answers; a bad word is a bad request like any other here.
fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    match b {
        Ok(Json(b)) => Ok(b),
        Err(e) => Err(ApiError(StatusCode::BAD_REQUEST, e.body_text())),
    }
}

#[derive(Deserialize, ToSchema)]
pub(super) struct AddBrickBody {
    /// HOST:/PATH of the new bricks, whole replica sets: each `replica` consecutive bricks
    /// form one set.
    bricks: Vec<String>,
    /// The volume's replica count after the change (GlusterFS's `add-brick NAME replica N`);
    /// absent: the volume's own.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 64)]
    replica: Option<usize>,
    /// As GlusterFS's trailing `force`: make missing parent directories of local bricks.
    #[serde(default)]
    force: bool,
}

/// `gwctl volume add-brick NAME [replica N] BRICK... [force]`: new replica sets join the
/// volume while it serves; files move onto them with a rebalance.
#[utoipa::path(post, path = "/volumes/{name}/add-brick", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    request_body = AddBrickBody,
    responses((status = 200, description = "Added: the volume with its new bricks", body = crate::volume::VolumeView),
        (status = 400, description = "Bad brick, brick count or replica count", body = ErrorBody),
        (status = 404, description = "No such volume", body = ErrorBody),
        (status = 409, description = "A brick is in use, or a rebalance or remove-brick is in progress", body = ErrorBody)))]
pub(super) async fn add_brick(
    State(m): State<Arc<Manager>>,
    Path(name): Path<String>,
    b: Result<Json<AddBrickBody>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    let v = m.add_brick(&name, &b.bricks, b.replica, b.force).await?;
    Ok(Json(v.public()).into_response())
}

#[derive(Deserialize, ToSchema)]
pub(super) struct RemoveBrickBody {
    /// HOST:/PATH of the bricks to take out, whole replica sets.
    bricks: Vec<String>,
    /// `start` moves their files off, `stop` gives up (the bricks stay), `commit` takes them
    /// out once emptied, `force` takes them out now with what they still hold.
    action: RemoveAction,
}

/// `gwctl volume remove-brick NAME BRICK... start|stop|commit|force`.
#[utoipa::path(post, path = "/volumes/{name}/remove-brick", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    request_body = RemoveBrickBody,
    responses((status = 200, description = "The remove-brick's status after the step", body = crate::elastic::RebalanceStatus),
        (status = 400, description = "Unknown action or brick, not whole replica sets, or the last replica set", body = ErrorBody),
        (status = 404, description = "No such volume", body = ErrorBody),
        (status = 409, description = "Not now: another rebalance is in progress, none to stop, or commit before the bricks are empty", body = ErrorBody)))]
pub(super) async fn remove_brick(
    State(m): State<Arc<Manager>>,
    Path(name): Path<String>,
    b: Result<Json<RemoveBrickBody>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    Ok(Json(m.remove_brick(&name, &b.bricks, b.action).await?).into_response())
}

/// `gwctl volume remove-brick NAME BRICK... status`: the rebalance that empties the bricks.
#[utoipa::path(get, path = "/volumes/{name}/remove-brick", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    responses((status = 200, description = "Per subvolume and in all: files scanned, moved, skipped, failed; state, elapsed, ETA", body = crate::elastic::RebalanceStatus),
        (status = 400, description = "No status to show for this volume", body = ErrorBody),
        (status = 404, description = "No such volume", body = ErrorBody)))]
pub(super) async fn remove_brick_status(
    State(m): State<Arc<Manager>>,
    Path(name): Path<String>,
) -> ApiResult {
    Ok(Json(m.rebalance_status(&name)?).into_response())
}

#[derive(Deserialize, ToSchema)]
pub(super) struct ReplaceBrickBody {
    /// HOST:/PATH of the brick leaving.
    old: String,
    /// HOST:/PATH of the brick taking its place: an empty or missing directory.
    new: String,
}

/// `gwctl volume replace-brick NAME OLD NEW commit force`: NEW takes OLD's place in its replica
/// set and self-heal fills it from the others.
#[utoipa::path(post, path = "/volumes/{name}/replace-brick", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    request_body = ReplaceBrickBody,
    responses((status = 200, description = "Replaced: the volume with the new brick", body = crate::volume::VolumeView),
        (status = 400, description = "OLD is not a brick of the volume, NEW is not empty, or the volume is not replicated", body = ErrorBody),
        (status = 404, description = "No such volume", body = ErrorBody),
        (status = 409, description = "NEW is in use, or a rebalance or remove-brick is in progress", body = ErrorBody)))]
pub(super) async fn replace_brick(
    State(m): State<Arc<Manager>>,
    Path(name): Path<String>,
    b: Result<Json<ReplaceBrickBody>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    Ok(Json(m.replace_brick(&name, &b.old, &b.new).await?.public()).into_response())
}

#[derive(Deserialize, ToSchema)]
pub(super) struct RebalanceBody {
    /// `start` (again after a stop: it goes on where it stopped) or `stop`.
    action: RebalanceAction,
    /// Fix the directories' layouts only, moving no file (`rebalance NAME fix-layout start`).
    #[serde(default)]
    fix_layout: bool,
}

/// `gwctl volume rebalance NAME [fix-layout] start|stop`.
#[utoipa::path(post, path = "/volumes/{name}/rebalance", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    request_body = RebalanceBody,
    responses((status = 200, description = "The rebalance's status after the step", body = crate::elastic::RebalanceStatus),
        (status = 400, description = "Unknown action, or a volume with one subvolume", body = ErrorBody),
        (status = 404, description = "No such volume", body = ErrorBody),
        (status = 409, description = "The volume is not started, a rebalance or remove-brick is in progress, or none to stop", body = ErrorBody)))]
pub(super) async fn rebalance(
    State(m): State<Arc<Manager>>,
    Path(name): Path<String>,
    b: Result<Json<RebalanceBody>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    Ok(Json(m.rebalance(&name, b.action, b.fix_layout).await?).into_response())
}

/// `gwctl volume rebalance NAME status`.
#[utoipa::path(get, path = "/volumes/{name}/rebalance", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    responses((status = 200, description = "Per subvolume and in all: files scanned, moved, skipped, failed; state, elapsed, ETA", body = crate::elastic::RebalanceStatus),
        (status = 400, description = "No status to show for this volume", body = ErrorBody),
        (status = 404, description = "No such volume", body = ErrorBody)))]
pub(super) async fn rebalance_status(
    State(m): State<Arc<Manager>>,
    Path(name): Path<String>,
) -> ApiResult {
    Ok(Json(m.rebalance_status(&name)?).into_response())
}
