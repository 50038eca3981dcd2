//! The REST API under /api/v1, described by the OpenAPI document at /api/v1/openapi.json,
//! which utoipa builds from the handlers' annotations below (so a route cannot be served
//! without being documented, or documented without being served).
//!
//! Every route but login needs a bearer token or a console session; see `crate::auth`.

mod auth;
mod common;
mod elastic;
mod heal;
mod nfs;
mod pool;
mod s3;
mod smb;
mod volumes;

pub use crate::auth::token_hash;
pub use auth::Caller;
pub use common::{ApiError, ErrorBody};

use crate::manager::Manager;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
                crate::auth::SESSION_COOKIE,
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
        .routes(routes!(auth::logout))
        .routes(routes!(auth::session))
        .routes(routes!(auth::admin_password))
        .routes(routes!(auth::admin_password_reset))
        .routes(routes!(auth::tokens, auth::token_create))
        .routes(routes!(auth::token_delete))
        .routes(routes!(volumes::list, volumes::create))
        .routes(routes!(volumes::import))
        .routes(routes!(volumes::info, volumes::delete))
        .routes(routes!(volumes::start))
        .routes(routes!(volumes::stop))
        .routes(routes!(volumes::status))
        .routes(routes!(volumes::volfile))
        .routes(routes!(volumes::option_set, volumes::option_reset))
        .routes(routes!(volumes::options_table))
        .routes(routes!(volumes::option_values))
        .routes(routes!(heal::heal_info, heal::heal_now))
        .routes(routes!(heal::heal_split_brain))
        .routes(routes!(elastic::add_brick))
        .routes(routes!(elastic::remove_brick, elastic::remove_brick_status))
        .routes(routes!(elastic::replace_brick))
        .routes(routes!(elastic::rebalance, elastic::rebalance_status))
        .routes(routes!(volumes::jobs))
        .routes(routes!(volumes::job))
        .routes(routes!(volumes::events))
        .routes(routes!(volumes::actions))
        .routes(routes!(s3::s3_keys, s3::s3_key_create))
        .routes(routes!(s3::s3_key_delete))
        .routes(routes!(s3::s3_key_allow))
        .routes(routes!(s3::s3_key_deny))
        .routes(routes!(
            nfs::nfs_exports,
            nfs::nfs_export_add,
            nfs::nfs_export_remove
        ))
        .routes(routes!(smb::smb_shares, smb::smb_share_add))
        .routes(routes!(smb::smb_share_remove))
        .routes(routes!(smb::smb_users, smb::smb_user_add))
        .routes(routes!(smb::smb_user_passwd, smb::smb_user_remove))
        .routes(routes!(pool::pool))
        .routes(routes!(pool::probe))
        .routes(routes!(pool::detach))
        .routes(routes!(pool::prepare_bricks))
        .layer(middleware::from_fn_with_state(
            m.clone(),
            auth::require_auth,
        ));
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::login))
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
