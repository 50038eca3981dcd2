//! `volume heal`: heal info, heal now (a job), and resolving split-brains.

use super::common::{ApiResult, ErrorBody, accepted};
use crate::manager::Manager;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// `gwctl volume heal VOL info`: what each brick's heal index lists, and split-brains.
#[utoipa::path(get, path = "/volumes/{name}/heal", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    responses((status = 200, description = "Pending entries per brick of each replica set, and split-brains", body = crate::heal::VolumeHeal),
        (status = 400, description = "The volume is not replicated", body = ErrorBody),
        (status = 404, description = "No such volume", body = ErrorBody),
        (status = 409, description = "The volume is not started", body = ErrorBody)))]
pub(super) async fn heal_info(
    State(m): State<Arc<Manager>>,
    Path(name): Path<String>,
) -> ApiResult {
    Ok(Json(crate::heal::info(&m, &name).await?).into_response())
}

#[derive(Deserialize, ToSchema)]
pub(super) struct HealBody {
    /// Crawl the whole tree, not only what the indices list (`heal VOL full`).
    #[serde(default)]
    full: bool,
}

/// `gwctl volume heal VOL [full]`: heal now, as a job answered at once; its result is heal
/// info after the heal.
#[utoipa::path(post, path = "/volumes/{name}/heal", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    request_body = HealBody,
    responses((status = 202, description = "Healing: follow the job at /api/v1/jobs/{id} (Location); its result is heal info (VolumeHeal) after the heal", body = crate::jobs::Job,
            headers(("Location" = String, description = "The job"))),
        (status = 400, description = "The volume is not replicated", body = ErrorBody),
        (status = 404, description = "No such volume", body = ErrorBody),
        (status = 409, description = "The volume is not started", body = ErrorBody)))]
pub(super) async fn heal_now(
    State(m): State<Arc<Manager>>,
    Path(name): Path<String>,
    Json(b): Json<HealBody>,
) -> ApiResult {
    crate::heal::check(&m, &name)?;
    let m2 = m.clone();
    let n = name.clone();
    let kind = if b.full {
        "volume heal full"
    } else {
        "volume heal"
    };
    let job = m.jobs.spawn(kind, &name, move |p| async move {
        let h = crate::heal::heal(&m2, &n, b.full, &p).await?;
        Ok(serde_json::to_value(h).expect("heal info serializes"))
    });
    Ok(accepted(job))
}

#[derive(Deserialize, ToSchema)]
pub(super) struct SplitBrainBody {
    /// bigger-file, latest-mtime or source-brick.
    policy: String,
    /// HOST:/PATH of the brick whose copy wins (source-brick).
    brick: Option<String>,
    /// The file, as a path in the volume; without it source-brick resolves every split-brain
    /// of that brick's replica set.
    path: Option<String>,
}

/// `gwctl volume heal VOL split-brain POLICY [BRICK] [PATH]`: resolve split-brain.
#[utoipa::path(post, path = "/volumes/{name}/heal/split-brain", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    request_body = SplitBrainBody,
    responses((status = 200, description = "What each resolution did", body = Vec<crate::heal::Resolution>),
        (status = 400, description = "Unknown policy, brick or path, or nothing to resolve", body = ErrorBody),
        (status = 404, description = "No such volume", body = ErrorBody),
        (status = 409, description = "The volume is not started", body = ErrorBody)))]
pub(super) async fn heal_split_brain(
    State(m): State<Arc<Manager>>,
    Path(name): Path<String>,
    Json(b): Json<SplitBrainBody>,
) -> ApiResult {
    let r = crate::heal::split_brain(&m, &name, &b.policy, b.brick.as_deref(), b.path.as_deref())
        .await?;
    Ok(Json(r).into_response())
}
