//! The REST API under /api/v1, described by the OpenAPI document at /api/v1/openapi.json,
//! which utoipa builds from the handlers' annotations below (so a route cannot be served
//! without being documented, or documented without being served).
//!
//! Every route but login needs a bearer token or a console session; see `crate::auth`.

use crate::auth::{self, ADMIN_USER, CSRF_HEADER, SESSION_COOKIE};
use crate::manager::{Manager, ManagerError};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub struct ApiError(StatusCode, String);

/// Every error the API answers: its HTTP status says the kind, `error` says what went wrong.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
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

impl From<auth::AuthError> for ApiError {
    fn from(e: auth::AuthError) -> Self {
        let status = match e {
            auth::AuthError::WeakPassword => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ManagerError::from(e).into()
    }
}

type ApiResult = Result<Response, ApiError>;

pub use auth::token_hash;

/// Who a request comes from, as the auth layer found it.
#[derive(Clone)]
pub enum Caller {
    Token(String),
    Session {
        id: String,
        user: String,
        csrf: String,
    },
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// A browser sends Origin with every cross-site request; one naming another host than the
/// request's own is refused even before the CSRF token is looked at.
fn foreign_origin(headers: &HeaderMap) -> bool {
    let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin);
    origin != "null" && origin_host != host
}

fn unauthorized(why: &str) -> Response {
    ApiError(StatusCode::UNAUTHORIZED, why.into()).into_response()
}

async fn require_auth(State(m): State<Arc<Manager>>, mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let Some(t) = v
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
        else {
            return unauthorized("the Authorization header must be: Bearer TOKEN");
        };
        let h = token_hash(t);
        let admin = m.store.admin_token_hash().ok().flatten();
        let name = if admin.is_some_and(|a| auth::same(&a, &h)) {
            Some("admin-token".to_string())
        } else {
            m.store
                .api_tokens()
                .ok()
                .and_then(|ts| ts.into_iter().find(|k| auth::same(&k.sha256, &h)))
                .map(|k| k.name)
        };
        let Some(name) = name else {
            return unauthorized("invalid token");
        };
        req.extensions_mut().insert(Caller::Token(name));
        return next.run(req).await;
    }
    let Some(id) = cookie_value(headers, SESSION_COOKIE) else {
        return unauthorized(
            "log in (POST /api/v1/login) or send a bearer token (gwctl --token, GWCTL_TOKEN or DATA/admin.token)",
        );
    };
    let Some(s) = m.sessions.get(&id) else {
        return unauthorized("the session has ended; log in again");
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let given = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if foreign_origin(headers) || !given.is_some_and(|g| auth::same(g, &s.csrf)) {
            return ApiError(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token: send the X-CSRF-Token header that login answered"
                    .into(),
            )
            .into_response();
        }
    }
    req.extensions_mut().insert(Caller::Session {
        id,
        user: s.user.clone(),
        csrf: s.csrf.clone(),
    });
    next.run(req).await
}

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "from POST /api/v1/login; changes also need the X-CSRF-Token header",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "gatewayd",
        description = "Volumes, bricks, S3 keys, NFS exports, SMB shares and users of a gatewayd."
    ),
    modifiers(&Security),
    security(("token" = []), ("session" = [])),
    components(schemas(ErrorBody, crate::manager::StartReport))
)]
struct ApiDoc;

fn documented(m: Arc<Manager>) -> (Router, utoipa::openapi::OpenApi) {
    let authed = OpenApiRouter::<Arc<Manager>>::new()
        .routes(routes!(logout))
        .routes(routes!(session))
        .routes(routes!(admin_password))
        .routes(routes!(admin_password_reset))
        .routes(routes!(tokens, token_create))
        .routes(routes!(token_delete))
        .routes(routes!(list, create))
        .routes(routes!(import))
        .routes(routes!(info, delete))
        .routes(routes!(start))
        .routes(routes!(stop))
        .routes(routes!(status))
        .routes(routes!(volfile))
        .routes(routes!(option_set, option_reset))
        .routes(routes!(options_table))
        .routes(routes!(option_values))
        .routes(routes!(heal_info, heal_now))
        .routes(routes!(heal_split_brain))
        .routes(routes!(jobs))
        .routes(routes!(job))
        .routes(routes!(events))
        .routes(routes!(actions))
        .routes(routes!(s3_keys, s3_key_create))
        .routes(routes!(s3_key_delete))
        .routes(routes!(s3_key_allow))
        .routes(routes!(s3_key_deny))
        .routes(routes!(nfs_exports, nfs_export_add, nfs_export_remove))
        .routes(routes!(smb_shares, smb_share_add))
        .routes(routes!(smb_share_remove))
        .routes(routes!(smb_users, smb_user_add))
        .routes(routes!(smb_user_passwd, smb_user_remove))
        .layer(middleware::from_fn_with_state(m.clone(), require_auth));
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(login))
        .merge(authed);
    let (router, doc) = OpenApiRouter::new().nest("/api/v1", api).split_for_parts();
    (router.with_state(m), doc)
}

/// The OpenAPI document, as /api/v1/openapi.json serves it.
pub fn openapi(m: Arc<Manager>) -> utoipa::openapi::OpenApi {
    documented(m).1
}

pub fn router(m: Arc<Manager>) -> Router {
    let (api, doc) = documented(m);
    let doc = Arc::new(doc);
    api.route(
        "/api/v1/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { Json(doc.as_ref().clone()) }
        }),
    )
    .route("/metrics", get(metrics))
    .route("/", get(crate::console::serve))
    .route("/index.html", get(crate::console::serve))
    .route("/assets/{*file}", get(crate::console::serve))
    .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such route".into()) })
}

#[derive(Deserialize, ToSchema)]
struct LoginBody {
    user: String,
    password: String,
}

/// What the console keeps after logging in.
#[derive(Serialize, ToSchema)]
struct SessionView {
    user: String,
    /// Send as X-CSRF-Token with every request that changes something.
    csrf_token: String,
}

/// The console's session cookie; `max_age_secs` 0 clears it.
fn session_cookie(id: &str, max_age_secs: i64) -> String {
    cookie::Cookie::build((SESSION_COOKIE, id.to_string()))
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(cookie::SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build()
        .to_string()
}

/// Log in to the console: sets the session cookie and answers the CSRF token.
#[utoipa::path(post, path = "/login", tag = "session", security(()),
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in; the gw_session cookie is set", body = SessionView),
        (status = 401, description = "Wrong user or password", body = ErrorBody),
    ))]
async fn login(
    State(m): State<Arc<Manager>>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    Json(b): Json<LoginBody>,
) -> ApiResult {
    let client = peer.map_or_else(|| "unknown".to_string(), |p| p.0.0.ip().to_string());
    let phc = m.store.admin_password_hash()?;
    let ok = b.user == ADMIN_USER && phc.is_some_and(|h| auth::verify_password(&h, &b.password));
    if !ok {
        // Slows guessing down without holding any lock.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // Never the password; and a user name that is no user is not repeated either, as it
        // is often a password typed into the wrong field.
        let user = if b.user == ADMIN_USER {
            b.user.as_str()
        } else {
            "(unknown user)"
        };
        tracing::warn!(%client, user, "console login refused: wrong user or password");
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "wrong user or password".into(),
        ));
    }
    let (id, csrf) = m.sessions.create(&b.user);
    tracing::info!(%client, user = %b.user, "console login");
    m.store.log_action(&format!("login {}", b.user))?;
    Ok((
        [(
            header::SET_COOKIE,
            session_cookie(&id, auth::SESSION_IDLE.as_secs() as i64),
        )],
        Json(SessionView {
            user: b.user,
            csrf_token: csrf,
        }),
    )
        .into_response())
}

/// End the console session.
#[utoipa::path(post, path = "/logout", tag = "session",
    responses((status = 200, description = "Logged out; the cookie is cleared")))]
async fn logout(State(m): State<Arc<Manager>>, caller: axum::Extension<Caller>) -> ApiResult {
    if let Caller::Session { id, .. } = &caller.0 {
        m.sessions.remove(id);
    }
    Ok((
        [(header::SET_COOKIE, session_cookie("", 0))],
        Json(json!({ "logged_out": true })),
    )
        .into_response())
}

/// Who is calling: the console user (with the session's CSRF token) or the token's name.
#[utoipa::path(get, path = "/session", tag = "session",
    responses((status = 200, description = "The caller", body = SessionView)))]
async fn session(caller: axum::Extension<Caller>) -> ApiResult {
    Ok(match &caller.0 {
        Caller::Session { user, csrf, .. } => Json(SessionView {
            user: user.clone(),
            csrf_token: csrf.clone(),
        }),
        Caller::Token(name) => Json(SessionView {
            user: format!("token:{name}"),
            csrf_token: String::new(),
        }),
    }
    .into_response())
}

#[derive(Deserialize, ToSchema)]
struct AdminPasswordBody {
    current: String,
    password: String,
}

/// Change the console's admin password; every console session ends.
#[utoipa::path(put, path = "/admin/password", tag = "session",
    request_body = AdminPasswordBody,
    responses(
        (status = 200, description = "Changed"),
        (status = 400, description = "Too weak (fewer than 10 characters)", body = ErrorBody),
        (status = 403, description = "The current password is wrong", body = ErrorBody),
    ))]
async fn admin_password(
    State(m): State<Arc<Manager>>,
    Json(b): Json<AdminPasswordBody>,
) -> ApiResult {
    let phc = m.store.admin_password_hash()?;
    if !phc.is_some_and(|h| auth::verify_password(&h, &b.current)) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "the current password is wrong".into(),
        ));
    }
    auth::check_new_password(&b.password)?;
    m.store
        .set_admin_password_hash(&auth::hash_password(&b.password)?, "admin password changed")?;
    m.sessions.clear();
    Ok(Json(json!({ "changed": true })).into_response())
}

/// A new console password, shown this once.
#[derive(Serialize, ToSchema)]
struct NewPassword {
    user: String,
    password: String,
}

/// Reset the console's admin password to a new random one (what `gatewayd reset-admin` does
/// while gatewayd runs): only with the admin token of DATA/admin.token, which only root on the
/// gateway's host can read; every console session ends.
#[utoipa::path(post, path = "/admin/password/reset", tag = "session",
    responses(
        (status = 200, description = "The new password, shown this once", body = NewPassword),
        (status = 403, description = "Not the admin token", body = ErrorBody),
    ))]
async fn admin_password_reset(
    State(m): State<Arc<Manager>>,
    caller: axum::Extension<Caller>,
) -> ApiResult {
    if !matches!(&caller.0, Caller::Token(n) if n == "admin-token") {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "only the admin token (DATA/admin.token) may reset the console password; with the current password use PUT /api/v1/admin/password".into(),
        ));
    }
    let password =
        auth::reset_admin_password(&m.store, "admin password reset with the admin token")?;
    m.sessions.clear();
    Ok(Json(NewPassword {
        user: ADMIN_USER.into(),
        password,
    })
    .into_response())
}

#[derive(Serialize, ToSchema)]
struct TokenView {
    name: String,
    created: u64,
}

#[derive(Serialize, ToSchema)]
struct NewToken {
    name: String,
    /// Shown this once; only its hash is kept.
    token: String,
    created: u64,
}

#[derive(Deserialize, ToSchema)]
struct NameBody {
    name: String,
}

/// Named API tokens (for gwctl and scripts).
#[utoipa::path(get, path = "/tokens", tag = "tokens",
    responses((status = 200, description = "The tokens, without their secrets", body = Vec<TokenView>)))]
async fn tokens(State(m): State<Arc<Manager>>) -> ApiResult {
    let v: Vec<TokenView> = m
        .store
        .api_tokens()?
        .into_iter()
        .map(|t| TokenView {
            name: t.name,
            created: t.created,
        })
        .collect();
    Ok(Json(v).into_response())
}

fn check_token_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("token name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-'"),
        ))
    }
}

/// Make a named API token; the answer is the only time it is shown.
#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = NameBody,
    responses(
        (status = 201, description = "Made", body = NewToken),
        (status = 400, description = "Bad name", body = ErrorBody),
        (status = 409, description = "A token of that name exists", body = ErrorBody),
    ))]
async fn token_create(State(m): State<Arc<Manager>>, Json(b): Json<NameBody>) -> ApiResult {
    check_token_name(&b.name)?;
    if m.store.api_tokens()?.iter().any(|t| t.name == b.name) {
        return Err(ManagerError::Exists(format!("token {}", b.name)).into());
    }
    let (rec, token) = auth::new_api_token(&b.name);
    m.store
        .put_api_token(&rec, &format!("token create {}", b.name))?;
    Ok((
        StatusCode::CREATED,
        Json(NewToken {
            name: rec.name,
            token,
            created: rec.created,
        }),
    )
        .into_response())
}

/// Revoke a named API token.
#[utoipa::path(delete, path = "/tokens/{name}", tag = "tokens",
    params(("name" = String, Path, description = "Token name")),
    responses(
        (status = 200, description = "Revoked"),
        (status = 404, description = "No such token", body = ErrorBody),
    ))]
async fn token_delete(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    if !m.store.api_tokens()?.iter().any(|t| t.name == name) {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no token {name}")));
    }
    m.store
        .delete_api_token(&name, &format!("token delete {name}"))?;
    Ok(Json(json!({ "deleted": name })).into_response())
}

/// A new volume: `gluster volume create NAME [replica N [arbiter 1]] BRICK...`.
#[derive(Deserialize, ToSchema)]
struct CreateBody {
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
async fn list(State(m): State<Arc<Manager>>) -> ApiResult {
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
async fn create(State(m): State<Arc<Manager>>, Json(b): Json<CreateBody>) -> ApiResult {
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
async fn import(State(m): State<Arc<Manager>>, Json(b): Json<CreateBody>) -> ApiResult {
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
async fn info(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    Ok(Json(m.get(&name)?.public()).into_response())
}

#[utoipa::path(delete, path = "/volumes/{name}", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    responses((status = 200, description = "Deleted; the bricks stay on disk"), (status = 404, description = "No such volume", body = ErrorBody),
        (status = 409, description = "Started; stop it first", body = ErrorBody)))]
async fn delete(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    m.delete(&name).await?;
    Ok(Json(json!({ "deleted": name })).into_response())
}

/// A job just started: 202 with the job, and where to follow it.
fn accepted(job: crate::jobs::Job) -> Response {
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/api/v1/jobs/{}", job.id))],
        Json(job),
    )
        .into_response()
}

/// Start a volume (`gwctl volume start`): answers a job at once; the job spawns the local
/// bricks, waits for every brick to answer and ends with a report of how many do.
#[utoipa::path(post, path = "/volumes/{name}/start", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    responses((status = 202, description = "Starting: follow the job at /api/v1/jobs/{id} (Location); its result is a StartReport: the volume, bricks online, and the bricks not online with why", body = crate::jobs::Job,
            headers(("Location" = String, description = "The job"))),
        (status = 404, description = "No such volume", body = ErrorBody)))]
async fn start(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
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
async fn stop(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
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
async fn jobs(State(m): State<Arc<Manager>>) -> ApiResult {
    Ok(Json(m.jobs.list()).into_response())
}

/// A job: its state (running, succeeded, failed), progress, and result or error.
#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "Job id")),
    responses((status = 200, description = "The job", body = crate::jobs::Job),
        (status = 404, description = "No such job (gatewayd keeps the last 100 finished ones, and none across a restart)", body = ErrorBody)))]
async fn job(State(m): State<Arc<Manager>>, Path(id): Path<String>) -> ApiResult {
    match m.jobs.get(&id) {
        Some(j) => Ok(Json(j).into_response()),
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("no job {id}"))),
    }
}

/// Bricks going down and coming back, as the brick RPC's pings see them (the console's
/// feed), newest first.
#[utoipa::path(get, path = "/events", tag = "volumes",
    responses((status = 200, description = "The newest 200 brick events", body = Vec<crate::health::BrickEvent>)))]
async fn events(State(m): State<Arc<Manager>>) -> ApiResult {
    Ok(Json(m.events.list(200)).into_response())
}

#[utoipa::path(get, path = "/volumes/{name}/status", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    responses((status = 200, description = "Layout, and per brick: replica set, online, port, pid, restarts", body = crate::manager::VolumeStatus), (status = 404, description = "No such volume", body = ErrorBody)))]
async fn status(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    Ok(Json(m.status(&name).await?).into_response())
}

#[utoipa::path(get, path = "/volumes/{name}/volfile", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    responses((status = 200, description = "The client volfile (GlusterFS syntax)", body = String, content_type = "text/plain"), (status = 404, description = "No such volume", body = ErrorBody)))]
async fn volfile(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        m.volfile(&name)?,
    )
        .into_response())
}

#[derive(Deserialize, ToSchema)]
struct OptionBody {
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
async fn option_set(
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
async fn option_reset(
    State(m): State<Arc<Manager>>,
    Path((name, key)): Path<(String, String)>,
) -> ApiResult {
    let (v, restart) = m.set_option(&name, &key, None).await?;
    Ok(Json(json!({ "volume": v.public(), "restart_needed": restart })).into_response())
}

/// Every option `volume set` takes, with its default and description (`gwctl volume set help`).
#[utoipa::path(get, path = "/options", tag = "volumes",
    responses((status = 200, description = "The settable options", body = Vec<crate::volume::SettableOption>)))]
async fn options_table() -> ApiResult {
    Ok(Json(crate::volume::settable_options()).into_response())
}

/// The value of every settable option of a volume: set, else the default (`gwctl volume get`).
#[utoipa::path(get, path = "/volumes/{name}/options", tag = "volumes",
    params(("name" = String, Path, description = "Volume name")),
    responses((status = 200, description = "Each option with the value the volume runs with", body = Vec<crate::volume::OptionValue>),
        (status = 404, description = "No such volume", body = ErrorBody)))]
async fn option_values(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    Ok(Json(m.get(&name)?.option_values()).into_response())
}

/// `gwctl volume heal VOL info`: what each brick's heal index lists, and split-brains.
#[utoipa::path(get, path = "/volumes/{name}/heal", tag = "volumes", params(("name" = String, Path, description = "Volume name")),
    responses((status = 200, description = "Pending entries per brick of each replica set, and split-brains", body = crate::heal::VolumeHeal),
        (status = 400, description = "The volume is not replicated", body = ErrorBody),
        (status = 404, description = "No such volume", body = ErrorBody),
        (status = 409, description = "The volume is not started", body = ErrorBody)))]
async fn heal_info(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    Ok(Json(crate::heal::info(&m, &name).await?).into_response())
}

#[derive(Deserialize, ToSchema)]
struct HealBody {
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
async fn heal_now(
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
struct SplitBrainBody {
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
async fn heal_split_brain(
    State(m): State<Arc<Manager>>,
    Path(name): Path<String>,
    Json(b): Json<SplitBrainBody>,
) -> ApiResult {
    let r = crate::heal::split_brain(&m, &name, &b.policy, b.brick.as_deref(), b.path.as_deref())
        .await?;
    Ok(Json(r).into_response())
}

#[utoipa::path(get, path = "/actions", tag = "log",
    responses((status = 200, description = "The newest 200 management actions", body = Vec<serde_json::Value>)))]
async fn actions(State(m): State<Arc<Manager>>) -> ApiResult {
    let a = m.store.actions(200).map_err(ManagerError::from)?;
    Ok(Json(a).into_response())
}

/// A new key: its name and `crate::s3::KeyOptions`, spelled out (not flattened) so the
/// OpenAPI document shows one plain object.
#[derive(Deserialize, ToSchema)]
struct KeyBody {
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
struct GrantBody {
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
async fn s3_keys(State(m): State<Arc<Manager>>) -> ApiResult {
    let keys = m.store.s3_keys().map_err(ManagerError::from)?;
    let v: Vec<_> = keys.iter().map(crate::s3::public).collect();
    Ok(Json(v).into_response())
}

/// The only answer that carries the secret: it is shown once, as AWS does.
#[utoipa::path(post, path = "/s3/keys", tag = "s3", request_body = KeyBody,
    responses((status = 201, description = "Made; the secret is shown this once", body = serde_json::Value),
        (status = 400, description = "Bad name", body = ErrorBody)))]
async fn s3_key_create(State(m): State<Arc<Manager>>, Json(b): Json<KeyBody>) -> ApiResult {
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
async fn s3_key_allow(
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
async fn s3_key_deny(
    State(m): State<Arc<Manager>>,
    Path((name, bucket)): Path<(String, String)>,
) -> ApiResult {
    let k = crate::s3::deny(&m.store, &name, &bucket)?;
    Ok(Json(crate::s3::public(&k)).into_response())
}

#[utoipa::path(delete, path = "/s3/keys/{name}", tag = "s3",
    params(("name" = String, Path, description = "Key name or access key id")),
    responses((status = 200, description = "Deleted"), (status = 404, description = "No such key", body = ErrorBody)))]
async fn s3_key_delete(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    let k = crate::s3::delete_key(&m.store, &name)?;
    Ok(Json(json!({ "deleted": k.name, "access_key": k.access_key })).into_response())
}

#[utoipa::path(get, path = "/nfs/exports", tag = "nfs",
    responses((status = 200, description = "Configured exports and the volumes' defaults", body = Vec<serde_json::Value>)))]
async fn nfs_exports(State(m): State<Arc<Manager>>) -> ApiResult {
    Ok(Json(crate::nfs::list_exports(&m)?).into_response())
}

#[utoipa::path(post, path = "/nfs/exports", tag = "nfs", request_body = crate::store::NfsExportRecord,
    responses((status = 201, description = "Exported", body = crate::store::NfsExportRecord),
        (status = 400, description = "Bad path or network, or no such directory in the volume (which must be started for an export of a directory)", body = ErrorBody), (status = 404, description = "No such volume", body = ErrorBody)))]
async fn nfs_export_add(
    State(m): State<Arc<Manager>>,
    Json(e): Json<crate::store::NfsExportRecord>,
) -> ApiResult {
    let e = crate::nfs::add_export(&m, e).await?;
    Ok((StatusCode::CREATED, Json(e)).into_response())
}

#[derive(Deserialize)]
struct ExportPath {
    path: String,
}

#[utoipa::path(delete, path = "/nfs/exports", tag = "nfs",
    params(("path" = String, Query, description = "The export's path: /VOLUME[/DIR]")),
    responses((status = 200, description = "Removed"), (status = 404, description = "No such export", body = ErrorBody)))]
async fn nfs_export_remove(
    State(m): State<Arc<Manager>>,
    Query(q): Query<ExportPath>,
) -> ApiResult {
    let e = crate::nfs::remove_export(&m, &q.path)?;
    Ok(Json(json!({ "removed": e.path })).into_response())
}

#[utoipa::path(get, path = "/smb/shares", tag = "smb",
    responses((status = 200, description = "SMB shares", body = Vec<crate::store::SmbShareRecord>)))]
async fn smb_shares(State(m): State<Arc<Manager>>) -> ApiResult {
    let v = m.store.smb_shares().map_err(ManagerError::from)?;
    Ok(Json(v).into_response())
}

#[utoipa::path(post, path = "/smb/shares", tag = "smb", request_body = crate::store::SmbShareRecord,
    responses((status = 201, description = "Shared and served", body = crate::store::SmbShareRecord),
        (status = 400, description = "Bad name or path, or SMB is off", body = ErrorBody),
        (status = 404, description = "No such volume or user", body = ErrorBody),
        (status = 409, description = "A share of that name exists", body = ErrorBody),
        (status = 501, description = "Samba is not installed", body = ErrorBody)))]
async fn smb_share_add(
    State(m): State<Arc<Manager>>,
    Json(s): Json<crate::store::SmbShareRecord>,
) -> ApiResult {
    let s = crate::smb::add_share(&m, s).await?;
    Ok((StatusCode::CREATED, Json(s)).into_response())
}

#[utoipa::path(delete, path = "/smb/shares/{name}", tag = "smb",
    params(("name" = String, Path, description = "Share name")),
    responses((status = 200, description = "Removed"), (status = 404, description = "No such share", body = ErrorBody)))]
async fn smb_share_remove(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> ApiResult {
    let s = crate::smb::remove_share(&m, &name).await?;
    Ok(Json(json!({ "removed": s.name })).into_response())
}

#[utoipa::path(get, path = "/smb/users", tag = "smb",
    responses((status = 200, description = "SMB users", body = Vec<crate::store::SmbUserRecord>)))]
async fn smb_users(State(m): State<Arc<Manager>>) -> ApiResult {
    let v = m.store.smb_users().map_err(ManagerError::from)?;
    Ok(Json(v).into_response())
}

#[derive(Deserialize, ToSchema)]
struct SmbUserBody {
    name: String,
    password: String,
}

#[derive(Deserialize, ToSchema)]
struct PasswordBody {
    password: String,
}

#[utoipa::path(post, path = "/smb/users", tag = "smb", request_body = SmbUserBody,
    responses((status = 201, description = "Added", body = crate::store::SmbUserRecord),
        (status = 400, description = "Bad name or weak password", body = ErrorBody),
        (status = 409, description = "The user exists", body = ErrorBody)))]
async fn smb_user_add(State(m): State<Arc<Manager>>, Json(b): Json<SmbUserBody>) -> ApiResult {
    let u = crate::smb::set_user(&m, &b.name, &b.password, false).await?;
    Ok((StatusCode::CREATED, Json(u)).into_response())
}

#[utoipa::path(put, path = "/smb/users/{name}", tag = "smb",
    params(("name" = String, Path, description = "User name")), request_body = PasswordBody,
    responses((status = 200, description = "Password set", body = crate::store::SmbUserRecord),
        (status = 400, description = "Weak password", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody)))]
async fn smb_user_passwd(
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
