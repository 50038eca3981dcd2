//! S3 frontend: buckets are the top-level directories of one volume, keys are paths below them,
//! so an object PUT here is a file over FUSE, NFS and SMB, and the reverse.
//!
//! Built on `s3s`: it parses every S3 operation from the AWS model, checks SigV4 (headers,
//! presigned URLs, `aws-chunked` bodies with or without trailers, clock skew) against the keys
//! gatewayd keeps, and writes S3 XML errors. What it leaves to us — the storage semantics — lives
//! in one file per operation group (`bucket.rs`, `put.rs`, `get.rs`, `copy.rs`, `delete.rs`,
//! `tagging.rs`, `acl.rs`, `multipart/`, `list/`; `router.rs` maps s3s's calls to them), over
//! `layout.rs` (where a key lives) and the path layer in `vfs.rs`. Who may do what is decided
//! in `authz.rs` from the owners, ACLs and bucket policies `access/` models; the volume is
//! written as the key's uid and gid when it has them, else as root.

pub mod access;
mod acl;
mod attributes;
mod authz;
mod bucket;
mod bucket_config;
mod checksum;
mod copy;
mod delete;
mod error;
mod gateway;
mod get;
pub mod intake;
mod layout;
pub mod list;
pub mod meta;
mod multipart;
mod put;
mod router;
mod sidecar;
mod tagging;
pub mod vfs;

use axum::body::Body as AxumBody;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use engine::xlator::XlatorRef;
use s3s::auth::{S3Auth, SecretKey};
use s3s::host::{S3Host, VirtualHost};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3Result, s3_error};
use std::sync::Arc;

pub use gateway::GatewayS3;

/// The volume S3 serves, looked up per request: a volume that is stopped and started again gets
/// a new graph, and S3 follows it.
pub type VolumeSource = Arc<dyn Fn() -> Option<XlatorRef> + Send + Sync>;

/// The keys gatewayd keeps: their secrets, for signatures, and who each is, for tenancy.
pub trait KeySource: Send + Sync + 'static {
    fn secret(&self, access_key: &str) -> Option<String>;
    fn identity(&self, access_key: &str) -> Option<access::Identity>;
    /// The key with this canonical id (an ACL's grantee, an owner to name).
    fn by_id(&self, id: &str) -> Option<access::Identity>;
    /// The key with this email (an ACL grant by email).
    fn by_email(&self, email: &str) -> Option<access::Identity>;
}

struct Auth(Arc<dyn KeySource>);

#[async_trait::async_trait]
impl S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.0.secret(access_key) {
            Some(s) => Ok(SecretKey::from(s)),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}

/// Lets unsigned requests reach the operations, which answer them with only what a bucket's
/// policy or ACLs grant to everyone (`authz`). s3s refuses them all by default.
struct Anonymous;

#[async_trait::async_trait]
impl s3s::access::S3Access for Anonymous {
    async fn check(&self, _cx: &mut s3s::access::S3AccessContext<'_>) -> S3Result<()> {
        Ok(())
    }
}

/// Path-style requests by default; `BUCKET.<domain>` hosts are virtual-host style.
struct Hosts {
    domain: Option<String>,
}

impl S3Host for Hosts {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let name = match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        if let Some(d) = &self.domain
            && let Some(bucket) = name
                .strip_suffix(d.as_str())
                .and_then(|b| b.strip_suffix('.'))
            && !bucket.is_empty()
        {
            return Ok(VirtualHost::new(d.as_str()).with_bucket(bucket));
        }
        Ok(VirtualHost::new(name))
    }
}

pub struct Config {
    pub volume: VolumeSource,
    pub keys: Arc<dyn KeySource>,
    /// Base domain for virtual-host-style requests (`bucket.<domain>`), if any.
    pub domain: Option<String>,
    /// Region reported by GetBucketLocation and accepted in signatures.
    pub region: String,
}

pub fn service(cfg: Config) -> S3Service {
    let mut b = S3ServiceBuilder::new(GatewayS3::new(cfg.volume, cfg.keys.clone(), cfg.region));
    b.set_auth(Auth(cfg.keys));
    b.set_access(Anonymous);
    b.set_host(Hosts { domain: cfg.domain });
    b.build()
}

/// An axum app serving S3 on every path, with a request id on every answer (in the header and,
/// for errors, in the XML body where S3 clients look for it).
pub fn router(svc: S3Service, volume: &str) -> axum::Router {
    let metrics = Arc::new(s3_metrics(volume));
    axum::Router::new().fallback(move |req: Request| {
        let (svc, metrics) = (svc.clone(), metrics.clone());
        async move { handle(svc, req, &metrics).await }
    })
}

/// S3 requests by HTTP method: the operation within is s3s's to decode, and the method already
/// separates reads (GET, HEAD) from writes (PUT, POST) and deletes.
/// Requests are counted per volume here; the volume's fops and bytes by its `debug/io-stats`
/// (the `Vfs` names "s3").
fn s3_metrics(volume: &str) -> engine::metrics::ProtocolOps {
    engine::metrics::ProtocolOps::new("s3", &["get", "head", "put", "post", "delete"])
        .with_volume(volume)
}

fn content_length(h: &axum::http::HeaderMap) -> u64 {
    h.get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn handle(svc: S3Service, req: Request, m: &engine::metrics::ProtocolOps) -> Response {
    let start = std::time::Instant::now();
    let op = req.method().as_str().to_ascii_lowercase();
    let sent = if matches!(op.as_str(), "put" | "post") {
        content_length(req.headers())
    } else {
        0
    };
    let resp = handle_inner(svc, req).await;
    let ok = resp.status().as_u16() < 400;
    m.record(&op, ok, start.elapsed());
    if ok {
        m.written_bytes(sent);
        if op == "get" {
            m.read_bytes(content_length(resp.headers()));
        }
    }
    resp
}

async fn handle_inner(svc: S3Service, req: Request) -> Response {
    let id = hex::encode_upper(rand::random::<[u8; 8]>());
    // botocore sends `Expect: 100-continue` with every upload. An error answered before the
    // body was asked for leaves it unknown whether the client will still send it (it may, or
    // may not, and the next request's bytes would be read as this body's): such a connection
    // is closed after the answer.
    let expects_body = req
        .headers()
        .get(axum::http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    // botocore also expects a continue for an empty body, which gets none (there is nothing
    // to ask for), and then misreads the next answer on that connection as this one's, a
    // stall of its whole read timeout (boto/botocore#3755): such a connection is closed too.
    let empty_expecting = expects_body
        && req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0");
    // GetObjectAttributes answers its ETag unquoted (AWS does; s3s's XML writer quotes every
    // ETag), fixed up below.
    let attributes = req.method() == axum::http::Method::GET
        && req.uri().query().is_some_and(|q| {
            q.split('&')
                .any(|p| p == "attributes" || p == "attributes=")
        });
    let req = match intake::prepare(req).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let req = req.map(s3s::Body::http_body_unsync);
    let resp = match svc.call(req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(request_id = %id, "S3 request failed: {e:?}");
            return (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
            )
                .into_response();
        }
    };
    let (mut parts, mut body) = resp.into_parts();
    parts.headers.insert(
        "x-amz-request-id",
        id.parse().expect("hex is a header value"),
    );
    let failed = parts.status.is_client_error() || parts.status.is_server_error();
    if (failed && expects_body) || empty_expecting {
        parts.headers.insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    if failed && let Some(b) = body.take_bytes() {
        {
            let text = String::from_utf8_lossy(&b);
            if let Some(at) = text.rfind("</Error>")
                && !text.contains("<RequestId>")
            {
                let with_id = format!("{}<RequestId>{id}</RequestId>{}", &text[..at], &text[at..]);
                parts.headers.remove(axum::http::header::CONTENT_LENGTH);
                return Response::from_parts(parts, AxumBody::from(with_id));
            }
            return Response::from_parts(parts, AxumBody::from(b));
        }
    }
    if attributes
        && !failed
        && let Some(b) = body.take_bytes()
    {
        let text = String::from_utf8_lossy(&b);
        let fixed = match (text.find("<ETag>\""), text.find("\"</ETag>")) {
            (Some(a), Some(z)) if a < z => format!(
                "{}<ETag>{}</ETag>{}",
                &text[..a],
                &text[a + 7..z],
                &text[z + 8..]
            ),
            _ => return Response::from_parts(parts, AxumBody::from(b)),
        };
        parts.headers.remove(axum::http::header::CONTENT_LENGTH);
        return Response::from_parts(parts, AxumBody::from(fixed));
    }
    Response::from_parts(parts, AxumBody::new(body))
}

/// Serves S3 for `volume` on `listener` until the task is dropped (the volume's name labels the
/// per-volume request count). Each request knows its client's address (bucket policies'
/// aws:SourceIp).
pub async fn serve(
    listener: tokio::net::TcpListener,
    svc: S3Service,
    volume: &str,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // A reply written in parts (headers, then a small body) must not wait for the client's
    // delayed ACK of the first (Nagle): that held every small GET ~40 ms.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        router(svc, volume).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await
}
