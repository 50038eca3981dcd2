//! Volumes: create, import, start, stop, delete, status, options; the jobs that start and
//! stop them, the brick event feed and the log of management actions.

use super::common::{ApiError, ApiResult, ErrorBody, accepted};
use crate::manager::{Manager, ManagerError};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use utoipa::ToSchema;

/// A new volume: `gluster volume create NAME [replica N [arbiter 1]] BRICK...`.
#[derive(Deserialize, ToSchema)]
pub(super) struct CreateBody {
    /// 1 to 64 letters, digits, '-' or '_'.
    name: String,
    /// HOST:/PATH, in order: with `replica` N, each N consecutive bricks form a replica set.
    bricks: Vec<String>,
    /// Bricks per replica set, 2 to 64; the brick count must be a multiple of it. Absent or 1:
    /// a plain distribute volume.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 64)]
    replica: Option<usize>,
    /// 1 makes the last brick of each set an arbiter (names and metadata, no data); only with
    /// `replica` 3, as GlusterFS's `replica 3 arbiter 1`.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1)]
    arbiter: Option<usize>,
    /// As GlusterFS's trailing `force`: make missing parent directories of local bricks
    /// (without it a brick's parent directory must exist).
    #[serde(default)]
    force: bool,
}

#[utoipa::path(get, path = "/volumes", tag = "volumes",
    responses((status = 200, description = "Every volume (without its secret)", body = Vec<crate::volume::VolumeView>)))]
pub(super) async fn list(State(m): State<Arc<Manager>>) -> ApiResult {
    let v: Vec<_> = m.list()?.iter().map(|v| v.public()).collect();
    Ok(Json(v).into_response())
}

/// Create a volume: distribute, or with `replica` (and `arbiter`) replicated.
#[utoipa::path(post, path = "/volumes", tag = "volumes", request_body = CreateBody,
    responses(
        (status = 201, description = "Created", body = crate::volume::VolumeView),
        (status = 400, description = "Bad name, brick (a host that does not resolve, a missing parent directory, a file in the way), or replica/arbiter count", body = ErrorBody),
        (status = 409, description = "The volume exists", body = ErrorBody),
    ))]
pub(super) async fn create(State(m): State<Arc<Manager>>, Json(b): Json<CreateBody>) -> ApiResult {
    let v = m
        .create(
            &b.name,
            &b.bricks,
            b.replica.unwrap_or(1),
            b.arbiter.unwrap_or(0),
            b.force,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(v.public())).into_response())
}

/// Adopt existing GlusterFS bricks; give the GlusterFS volume's `replica` and `arbiter`, and
/// its bricks in its order.
#[utoipa::path(post, path = "/volumes/import", tag = "volumes", request_body = CreateBody,
    responses(
        (status = 201, description = "Imported from existing GlusterFS bricks", body = crate::volume::VolumeView),
        (status = 400, description = "Bad name, brick, or replica/arbiter count", body = ErrorBody),
        (status = 409, description = "The volume exists", body = ErrorBody),
    ))]
pub(super) async fn import(State(m): State<Arc<Manager>>, Json(b): Json<CreateBody>) -> ApiResult {
    let v = m
        .import(
            &b.name,
            &b.bricks,
            b.replica.unwrap_or(1),
            b.arbiter.unwrap_or(0),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(v.public())).into_response())
}

#[utoipa::path(get, path = "/volumes/{name}", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    responses((status = 200, description = "The volume: kind, replica, arbiter, bricks with their replica sets", body = crate::volume::VolumeView), (status = 404, description = "No such volume", body = ErrorBody)))]
pub(super) async fn info(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    Ok(Json(m.get(&name)?.public()).into_response())
}

#[utoipa::path(delete, path = "/volumes/{name}", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    responses((status = 200, description = "Deleted; the bricks stay on disk"), (status = 404, description = "No such volume", body = ErrorBody),
        (status = 409, description = "Started; stop it first", body = ErrorBody)))]
pub(super) async fn delete(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    m.delete(&name).await?;
    Ok(Json(json!({ "deleted": name })).into_response())
}

/// Start a volume (`gwctl volume start`): answers a job at once; the job spawns the local
/// bricks, waits for every brick to answer and ends with a report of how many do.
#[utoipa::path(post, path = "/volumes/{name}/start", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    responses((status = 202, description = "Starting: follow the job at /api/v1/jobs/{id} (Location); its result is a StartReport: the volume, bricks online, and the bricks not online with why", body = crate::jobs::Job,
            headers(("Location" = String, description = "The job"))),
        (status = 404, description = "No such volume", body = ErrorBody)))]
pub(super) async fn start(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    m.get(&name)?;
    let m2 = m.clone();
    let n = name.clone();
    let job = m.jobs.spawn("volume start", &name, move |p| async move {
        let r = m2.start(&n, &p).await?;
        Ok(serde_json::to_value(r).expect("reports serialize"))
    });
    Ok(accepted(job))
}

/// Stop a volume (`gwctl volume stop`): answers a job at once; its result is the volume.
#[utoipa::path(post, path = "/volumes/{name}/stop", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    responses((status = 202, description = "Stopping: follow the job at /api/v1/jobs/{id} (Location); its result is the volume", body = crate::jobs::Job,
            headers(("Location" = String, description = "The job"))),
        (status = 404, description = "No such volume", body = ErrorBody)))]
pub(super) async fn stop(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    m.get(&name)?;
    let m2 = m.clone();
    let n = name.clone();
    let job = m.jobs.spawn("volume stop", &name, move |p| async move {
        Ok(m2.stop(&n, &p).await?.public())
    });
    Ok(accepted(job))
}

/// Jobs of this gatewayd (long management work: volume start and stop, heal), newest first.
#[utoipa::path(get, path = "/jobs", tag = "jobs",
    responses((status = 200, description = "Running jobs and the last finished ones", body = Vec<crate::jobs::Job>)))]
pub(super) async fn jobs(State(m): State<Arc<Manager>>) -> ApiResult {
    Ok(Json(m.jobs.list()).into_response())
}

/// A job: its state (running, succeeded, failed), progress, and result or error.
#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "Job id")),
    responses((status = 200, description = "The job", body = crate::jobs::Job),
        (status = 404, description = "No such job (gatewayd keeps the last 100 finished ones, and none across a restart)", body = ErrorBody)))]
pub(super) async fn job(State(m): State<Arc<Manager>>, Path(id): Path<String>) -> ApiResult {
    match m.jobs.get(&id) {
        Some(j) => Ok(Json(j).into_response()),
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("no job {id}"))),
    }
}

/// Bricks going down and coming back, as the brick RPC's pings see them (the console's
/// feed), newest first.
#[utoipa::path(get, path = "/events", tag = "volumes",
    responses((status = 200, description = "The newest 200 brick events", body = Vec<crate::health::BrickEvent>)))]
pub(super) async fn events(State(m): State<Arc<Manager>>) -> ApiResult {
    Ok(Json(m.events.list(200)).into_response())
}

#[utoipa::path(get, path = "/volumes/{name}/status", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    responses((status = 200, description = "Layout, and per brick: replica set, online, port, pid, restarts", body = crate::manager::VolumeStatus), (status = 404, description = "No such volume", body = ErrorBody)))]
pub(super) async fn status(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    Ok(Json(m.status(&name).await?).into_response())
}

#[utoipa::path(get, path = "/volumes/{name}/volfile", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    responses((status = 200, description = "The client volfile (GlusterFS syntax)", body = String, content_type = "text/plain"), (status = 404, description = "No such volume", body = ErrorBody)))]
pub(super) async fn volfile(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        m.volfile(&name)?,
    )
        .into_response())
}

#[derive(Deserialize, ToSchema)]
pub(super) struct OptionBody {
    value: String,
}

/// Set a volume option (`gwctl volume set`).
#[utoipa::path(put, path = "/volumes/{name}/options/{key}", tag = "volumes",
    params(("name" = String, Path, description = "Volume name"),
        ("key" = String, Path, description = "Option: cluster.KEY of distribute or replicate (e.g. cluster.lookup-unhashed, cluster.quorum-type), transport.socket.ssl-enabled (or client.ssl, server.ssl), auth.allow, auth.reject, or nfs.disable")),
    request_body = OptionBody,
    responses((status = 200, description = "Set; `restart_needed` says whether it waits for the next start", body = serde_json::Value),
        (status = 400, description = "Unknown option or bad value", body = ErrorBody),
        (status = 404, description = "No such volume", body = ErrorBody)))]
pub(super) async fn option_set(
    State(m): State<Arc<Manager>>,
    Path((name, key)): Path<(String, String)>,
    Json(b): Json<OptionBody>,
) -> ApiResult {
    let (v, restart) = m.set_option(&name, &key, Some(&b.value)).await?;
    Ok(Json(json!({ "volume": v.public(), "restart_needed": restart })).into_response())
}

/// Reset a volume option to its default (`gwctl volume reset`).
#[utoipa::path(delete, path = "/volumes/{name}/options/{key}", tag = "volumes",
    params(("name" = String, Path, description = "Volume name"),
        ("key" = String, Path, description = "Option")),
    responses((status = 200, description = "Reset", body = serde_json::Value),
        (status = 400, description = "Unknown option", body = ErrorBody),
        (status = 404, description = "No such volume", body = ErrorBody)))]
pub(super) async fn option_reset(
    State(m): State<Arc<Manager>>,
    Path((name, key)): Path<(String, String)>,
) -> ApiResult {
    let (v, restart) = m.set_option(&name, &key, None).await?;
    Ok(Json(json!({ "volume": v.public(), "restart_needed": restart })).into_response())
}

/// Every option `volume set` takes, with its default and description (`gwctl volume set help`).
#[utoipa::path(get, path = "/options", tag = "volumes",
    responses((status = 200, description = "The settable options", body = Vec<crate::options::SettableOption>)))]
pub(super) async fn options_table() -> ApiResult {
    Ok(Json(crate::options::settable_options()).into_response())
}

/// The value of every settable option of a volume: set, else the default (`gwctl volume get`).
#[utoipa::path(get, path = "/volumes/{name}/options", tag = "volumes",
    params(("name" = String, Path, description = "Volume name")),
    responses((status = 200, description = "Each option with the value the volume runs with", body = Vec<crate::options::OptionValue>),
        (status = 404, description = "No such volume", body = ErrorBody)))]
pub(super) async fn option_values(
    State(m): State<Arc<Manager>>,
    Path(name): Path<String>,
) -> ApiResult {
    Ok(Json(m.get(&name)?.option_values()).into_response())
}

#[utoipa::path(get, path = "/actions", tag = "log",
    responses((status = 200, description = "The newest 200 management actions", body = Vec<serde_json::Value>)))]
pub(super) async fn actions(State(m): State<Arc<Manager>>) -> ApiResult {
    let a = m.store.actions(200).map_err(ManagerError::from)?;
    Ok(Json(a).into_response())
}
