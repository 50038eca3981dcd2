//! Logging in and out of the console, the admin password, API tokens, and the layer that
//! lets a request in by its bearer token or its console session (see `crate::auth`).

use super::common::{ApiError, ApiResult, ErrorBody};
use crate::auth::{self, ADMIN_USER, CSRF_HEADER, SESSION_COOKIE, token_hash};
use crate::manager::{Manager, ManagerError};
use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use utoipa::ToSchema;

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

pub(super) async fn require_auth(
    State(m): State<Arc<Manager>>,
    mut req: Request,
    next: Next,
) -> Response {
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
        let admin = m.store.admin_token_hashes().unwrap_or_default();
        let name = if admin.iter().any(|a| auth::same(a, &h)) {
            Some("admin-token".to_string())
        } else if m.cluster.as_ref().is_some_and(|c| c.is_node_token(&h)) {
            Some("pool-node".to_string())
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

#[derive(Deserialize, ToSchema)]
pub(super) struct LoginBody {
    user: String,
    password: String,
}

/// What the console keeps after logging in.
#[derive(Serialize, ToSchema)]
pub(super) struct SessionView {
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
pub(super) async fn login(
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
pub(super) async fn logout(
    State(m): State<Arc<Manager>>,
    caller: axum::Extension<Caller>,
) -> ApiResult {
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
pub(super) async fn session(caller: axum::Extension<Caller>) -> ApiResult {
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
pub(super) struct AdminPasswordBody {
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
pub(super) async fn admin_password(
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
pub(super) struct NewPassword {
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
pub(super) async fn admin_password_reset(
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
pub(super) struct TokenView {
    name: String,
    created: u64,
}

#[derive(Serialize, ToSchema)]
pub(super) struct NewToken {
    name: String,
    /// Shown this once; only its hash is kept.
    token: String,
    created: u64,
}

#[derive(Deserialize, ToSchema)]
pub(super) struct NameBody {
    name: String,
}

/// Named API tokens (for gwctl and scripts).
#[utoipa::path(get, path = "/tokens", tag = "tokens",
    responses((status = 200, description = "The tokens, without their secrets", body = Vec<TokenView>)))]
pub(super) async fn tokens(State(m): State<Arc<Manager>>) -> ApiResult {
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
pub(super) async fn token_create(
    State(m): State<Arc<Manager>>,
    Json(b): Json<NameBody>,
) -> ApiResult {
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
pub(super) async fn token_delete(
    State(m): State<Arc<Manager>>,
    Path(name): Path<String>,
) -> ApiResult {
    if !m.store.api_tokens()?.iter().any(|t| t.name == name) {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no token {name}")));
    }
    m.store
        .delete_api_token(&name, &format!("token delete {name}"))?;
    Ok(Json(json!({ "deleted": name })).into_response())
}
