//! The REST API under /api/v1. Every route needs the admin token as a bearer token.

use crate::manager::{Manager, ManagerError};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<ManagerError> for ApiError {
    fn from(e: ManagerError) -> Self {
        ApiError(
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            e.to_string(),
        )
    }
}

type ApiResult = Result<Response, ApiError>;

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares in time independent of where the strings differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

async fn auth(
    State(m): State<Arc<Manager>>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let expected = m.store.admin_token_hash().ok().flatten();
    match (given, expected) {
        (Some(t), Some(h)) if same(&token_hash(t), &h) => next.run(req).await,
        (None, _) => ApiError(
            StatusCode::UNAUTHORIZED,
            "missing bearer token (gwctl --token, GWCTL_TOKEN or DATA/admin.token)".into(),
        )
        .into_response(),
        _ => ApiError(StatusCode::UNAUTHORIZED, "invalid token".into()).into_response(),
    }
}

pub fn router(m: Arc<Manager>) -> Router {
    let api = Router::new()
        .route("/volumes", get(list).post(create))
        .route("/volumes/import", post(import))
        .route("/volumes/{name}", get(info).delete(delete))
        .route("/volumes/{name}/start", post(start))
        .route("/volumes/{name}/stop", post(stop))
        .route("/volumes/{name}/status", get(status))
        .route("/volumes/{name}/volfile", get(volfile))
        .route("/actions", get(actions))
        .route("/s3/keys", get(s3_keys).post(s3_key_create))
        .route("/s3/keys/{name}", axum::routing::delete(s3_key_delete))
        .route("/nfs/exports", get(nfs_exports).post(nfs_export_add))
        .route(
            "/nfs/exports/{*path}",
            axum::routing::delete(nfs_export_remove),
        )
        .route("/smb/shares", get(smb_shares).post(smb_share_add))
        .route(
            "/smb/shares/{name}",
            axum::routing::delete(smb_share_remove),
        )
        .route("/smb/users", get(smb_users).post(smb_user_add))
        .route(
            "/smb/users/{name}",
            axum::routing::put(smb_user_passwd).delete(smb_user_remove),
        )
        .layer(middleware::from_fn_with_state(m.clone(), auth))
        .with_state(m);
    Router::new()
        .nest("/api/v1", api)
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such route".into()) })
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
    bricks: Vec<String>,
}

async fn list(State(m): State<Arc<Manager>>) -> ApiResult {
    let v: Vec<_> = m.list()?.iter().map(|v| v.public()).collect();
    Ok(Json(v).into_response())
}

async fn create(State(m): State<Arc<Manager>>, Json(b): Json<CreateBody>) -> ApiResult {
    let v = m.create(&b.name, &b.bricks).await?;
    Ok((StatusCode::CREATED, Json(v.public())).into_response())
}

async fn import(State(m): State<Arc<Manager>>, Json(b): Json<CreateBody>) -> ApiResult {
    let v = m.import(&b.name, &b.bricks).await?;
    Ok((StatusCode::CREATED, Json(v.public())).into_response())
}

async fn info(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    Ok(Json(m.get(&name)?.public()).into_response())
}

async fn delete(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    m.delete(&name).await?;
    Ok(Json(json!({ "deleted": name })).into_response())
}

async fn start(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    Ok(Json(m.start(&name).await?.public()).into_response())
}

async fn stop(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    Ok(Json(m.stop(&name).await?.public()).into_response())
}

async fn status(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    Ok(Json(m.status(&name).await?).into_response())
}

async fn volfile(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        m.volfile(&name)?,
    )
        .into_response())
}

async fn actions(State(m): State<Arc<Manager>>) -> ApiResult {
    let a = m.store.actions(200).map_err(ManagerError::from)?;
    Ok(Json(a).into_response())
}

#[derive(Deserialize)]
struct KeyBody {
    name: String,
}

async fn s3_keys(State(m): State<Arc<Manager>>) -> ApiResult {
    let keys = m.store.s3_keys().map_err(ManagerError::from)?;
    let v: Vec<_> = keys.iter().map(crate::s3::public).collect();
    Ok(Json(v).into_response())
}

/// The only answer that carries the secret: it is shown once, as AWS does.
async fn s3_key_create(State(m): State<Arc<Manager>>, Json(b): Json<KeyBody>) -> ApiResult {
    let k = crate::s3::create_key(&m.store, &b.name)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "name": k.name, "access_key": k.access_key, "secret_key": k.secret_key, "created": k.created })),
    )
        .into_response())
}

async fn s3_key_delete(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    let k = crate::s3::delete_key(&m.store, &name)?;
    Ok(Json(json!({ "deleted": k.name, "access_key": k.access_key })).into_response())
}

async fn nfs_exports(State(m): State<Arc<Manager>>) -> ApiResult {
    Ok(Json(crate::nfs::list_exports(&m)?).into_response())
}

async fn nfs_export_add(
    State(m): State<Arc<Manager>>,
    Json(e): Json<crate::store::NfsExportRecord>,
) -> ApiResult {
    let e = crate::nfs::add_export(&m, e)?;
    Ok((StatusCode::CREATED, Json(e)).into_response())
}

/// `DELETE /nfs/exports/vol/sub` removes the export `/vol/sub`.
async fn nfs_export_remove(State(m): State<Arc<Manager>>, Path(path): Path<String>) -> ApiResult {
    let e = crate::nfs::remove_export(&m, &format!("/{path}"))?;
    Ok(Json(json!({ "removed": e.path })).into_response())
}

async fn smb_shares(State(m): State<Arc<Manager>>) -> ApiResult {
    let v = m.store.smb_shares().map_err(ManagerError::from)?;
    Ok(Json(v).into_response())
}

async fn smb_share_add(
    State(m): State<Arc<Manager>>,
    Json(s): Json<crate::store::SmbShareRecord>,
) -> ApiResult {
    let s = crate::smb::add_share(&m, s).await?;
    Ok((StatusCode::CREATED, Json(s)).into_response())
}

async fn smb_share_remove(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    let s = crate::smb::remove_share(&m, &name).await?;
    Ok(Json(json!({ "removed": s.name })).into_response())
}

async fn smb_users(State(m): State<Arc<Manager>>) -> ApiResult {
    let v = m.store.smb_users().map_err(ManagerError::from)?;
    Ok(Json(v).into_response())
}

#[derive(Deserialize)]
struct SmbUserBody {
    name: String,
    password: String,
}

#[derive(Deserialize)]
struct PasswordBody {
    password: String,
}

async fn smb_user_add(State(m): State<Arc<Manager>>, Json(b): Json<SmbUserBody>) -> ApiResult {
    let u = crate::smb::set_user(&m, &b.name, &b.password, false).await?;
    Ok((StatusCode::CREATED, Json(u)).into_response())
}

async fn smb_user_passwd(
    State(m): State<Arc<Manager>>,
    Path(name): Path<String>,
    Json(b): Json<PasswordBody>,
) -> ApiResult {
    let u = crate::smb::set_user(&m, &name, &b.password, true).await?;
    Ok(Json(u).into_response())
}

async fn smb_user_remove(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    let u = crate::smb::remove_user(&m, &name).await?;
    Ok(Json(json!({ "removed": u.name })).into_response())
}

/// Prometheus text: unauthenticated, as scrapers expect; the API listens on loopback unless
/// configured otherwise.
async fn metrics() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            engine::metrics::CONTENT_TYPE,
        )],
        engine::metrics::render(),
    )
        .into_response()
}
