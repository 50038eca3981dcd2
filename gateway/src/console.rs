//! The web console: the static assets of `web-ui/` (built with npm), embedded into release
//! builds and read from `web-ui/dist` by debug builds, served from the API's address so the
//! console needs no other server and talks to the API as the same origin.

use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::RustEmbed)]
#[folder = "../web-ui/dist/"]
struct Assets;

/// The page may load its own scripts and styles only; uPlot sets inline styles on its canvas.
const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub async fn serve(uri: Uri) -> Response {
    let path = match uri.path().trim_start_matches('/') {
        "" => "index.html",
        p => p,
    };
    let Some(file) = Assets::get(path) else {
        if path == "index.html" {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "The console is not built into this gatewayd: run deploy/build-console (npm) and build gatewayd again. The REST API under /api/v1 works without it.\n",
            )
                .into_response();
        }
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    };
    // Vite names assets by their content hash: they never change under the same name.
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, file.metadata.mimetype().to_string()),
            (header::CACHE_CONTROL, cache.to_string()),
            (header::CONTENT_SECURITY_POLICY, CSP.to_string()),
            (header::X_FRAME_OPTIONS, "DENY".to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::REFERRER_POLICY, "same-origin".to_string()),
        ],
        file.data,
    )
        .into_response()
}
