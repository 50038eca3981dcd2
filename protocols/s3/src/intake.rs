//! What a request needs before s3s sees it, for answers s3s gets wrong and decides before any
//! operation runs:
//!
//! - An OPTIONS request (a CORS preflight) gets S3's answer for a bucket without CORS.
//! - A presigned URL's `X-Amz-Expires` must be 1 to 604800 seconds (seven days), as AWS
//!   requires; s3s accepts any longer period and answers a negative one (a URL that expired
//!   before it was made) 400. AWS answers both 403 AccessDenied.
//! - A body sent with `Transfer-Encoding: chunked` and no Content-Length (not `aws-chunked`,
//!   which declares its decoded length) is refused by s3s with 411 MissingContentLength; AWS
//!   accepts it. A body up to `CHUNKED_MAX` is read here and given its length.
//!
//! `prepare` runs first in `lib.rs`'s request handling.

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// Longest presigned URL validity AWS accepts, in seconds.
pub const MAX_EXPIRES: i64 = 7 * 24 * 3600;
/// Largest chunked body without a length that is read ahead to learn it.
pub const CHUNKED_MAX: usize = 64 << 20;

/// A presigned URL's validity problem, if it has one: (code, message).
pub fn expiry_problem(query: Option<&str>) -> Option<&'static str> {
    let q = query?;
    let expires = q.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.eq_ignore_ascii_case("X-Amz-Expires").then_some(v)
    })?;
    match expires.parse::<i64>() {
        Ok(n) if n > MAX_EXPIRES => {
            Some("X-Amz-Expires must be less than a week (in seconds) that is 604800")
        }
        Ok(n) if n <= 0 => Some("Request has expired"),
        Ok(_) => None,
        Err(_) => Some("X-Amz-Expires should be a number"),
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

/// Whether the body comes chunked without a length s3s could check it against.
fn chunked_without_length(h: &http::HeaderMap) -> bool {
    let chunked = h.get_all(header::TRANSFER_ENCODING).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("chunked"))
    });
    chunked
        && !h.contains_key(header::CONTENT_LENGTH)
        && !h.contains_key("x-amz-decoded-content-length")
}

pub async fn prepare(req: Request) -> Result<Request, Response> {
    if req.method() == http::Method::OPTIONS {
        // A CORS preflight. Buckets have no CORS configuration here (a later issue), so it is
        // answered as S3 answers one for a bucket without it.
        return Err(if req.headers().contains_key(header::ORIGIN) {
            error(
                StatusCode::FORBIDDEN,
                "AccessForbidden",
                "CORSResponse: CORS is not enabled for this bucket.",
            )
        } else {
            error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Insufficient information. Origin request header needed.",
            )
        });
    }
    if let Some(msg) = expiry_problem(req.uri().query()) {
        return Err(error(StatusCode::FORBIDDEN, "AccessDenied", msg));
    }
    if !chunked_without_length(req.headers()) {
        return Ok(req);
    }
    let (mut parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, CHUNKED_MAX).await {
        Ok(b) => b,
        Err(_) => {
            return Err(error(
                StatusCode::LENGTH_REQUIRED,
                "MissingContentLength",
                "A chunked body without Content-Length is accepted up to 64 MiB; send its length.",
            ));
        }
    };
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presigned_expiry_is_bounded_as_aws_bounds_it() {
        let q = |e: &str| {
            format!("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires={e}&X-Amz-Signature=x")
        };
        assert_eq!(expiry_problem(Some(&q("3600"))), None);
        assert_eq!(expiry_problem(Some(&q("604800"))), None);
        assert!(expiry_problem(Some(&q("609901"))).is_some());
        assert_eq!(expiry_problem(Some(&q("-7"))), Some("Request has expired"));
        assert_eq!(expiry_problem(Some("prefix=a")), None);
        assert_eq!(expiry_problem(None), None);
    }

    #[tokio::test]
    async fn a_chunked_body_gets_its_length() {
        let req = Request::builder()
            .method("PUT")
            .uri("/b/k")
            .header("transfer-encoding", "chunked")
            .body(Body::from("bar"))
            .unwrap();
        let req = prepare(req).await.unwrap();
        assert_eq!(req.headers()["content-length"], "3");
        assert!(!req.headers().contains_key("transfer-encoding"));
    }
}
