//! The pool of nodes: `pool list`, `peer status|probe|detach`, and what one node asks of
//! another (checking and making bricks there).

use super::common::{ApiResult, ErrorBody};
use crate::cluster::PrepareBricks;
use crate::manager::Manager;
use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// `gwctl pool list`, `gwctl peer status`: every node of the pool and whether it is up.
#[utoipa::path(get, path = "/pool", tag = "pool",
    responses((status = 200, description = "The nodes of the pool (one, alone)", body = crate::cluster::Pool)))]
pub(super) async fn pool(State(m): State<Arc<Manager>>) -> ApiResult {
    Ok(Json(m.pool()?).into_response())
}

#[derive(Deserialize, ToSchema)]
pub(super) struct HostBody {
    /// The node's name (its `node_name`).
    host: String,
}

/// `gwctl peer probe HOST`: whether node HOST has joined the pool.
#[utoipa::path(post, path = "/pool/probe", tag = "pool", request_body = HostBody,
    responses((status = 200, description = "HOST is in the pool", body = crate::cluster::PoolNode),
        (status = 400, description = "This gatewayd is alone (no etcd_endpoints)", body = ErrorBody),
        (status = 404, description = "No node of that name joined", body = ErrorBody)))]
pub(super) async fn probe(State(m): State<Arc<Manager>>, Json(b): Json<HostBody>) -> ApiResult {
    Ok(Json(m.probe(&b.host)?).into_response())
}

/// `gwctl peer detach HOST`: forgets a node that is down and holds no brick.
#[utoipa::path(post, path = "/pool/detach", tag = "pool", request_body = HostBody,
    responses((status = 200, description = "HOST left the pool", body = crate::cluster::Pool),
        (status = 400, description = "This gatewayd is alone (no etcd_endpoints)", body = ErrorBody),
        (status = 404, description = "No node of that name joined", body = ErrorBody),
        (status = 409, description = "HOST holds bricks, is up, or is this node", body = ErrorBody),
        (status = 503, description = "etcd is unreachable", body = ErrorBody)))]
pub(super) async fn detach(State(m): State<Arc<Manager>>, Json(b): Json<HostBody>) -> ApiResult {
    m.detach(&b.host)?;
    Ok(Json(m.pool()?).into_response())
}

/// Another node of the pool, making a volume with bricks on this one, has them checked and
/// made here; the answer is their ports, in order.
#[utoipa::path(post, path = "/pool/bricks", tag = "pool", request_body = PrepareBricks,
    responses((status = 200, description = "The bricks' ports", body = Vec<u16>),
        (status = 400, description = "A brick cannot be used, or this gatewayd is not in a pool", body = ErrorBody),
        (status = 409, description = "A brick is already in a volume", body = ErrorBody)))]
pub(super) async fn prepare_bricks(
    State(m): State<Arc<Manager>>,
    Json(b): Json<PrepareBricks>,
) -> ApiResult {
    Ok(Json(m.prepare_local_bricks(&b).await?).into_response())
}
