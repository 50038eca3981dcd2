//! TLS for the gateway: the cluster's certificates under DATA/tls (made by `gatewayd up --tls`
//! when missing), HTTPS serving of the API and S3, and the HTTPS client gwctl and `gatewayd
//! mount` use.
//!
//! As GlusterFS keeps its TLS files at fixed paths (`/etc/ssl/glusterfs.{pem,key,ca}`), the
//! brick RPC uses DATA/tls/{node.pem,node.key,ca.pem}: one node certificate, good for serving
//! and as a client certificate, signed by the cluster CA.

use axum::extract::ConnectInfo;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("making a certificate: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("reading the CA key {0}: {1}")]
    CaKey(PathBuf, rcgen::Error),
    #[error(transparent)]
    Tls(#[from] engine::tls::TlsError),
}

/// The cluster's TLS files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Material {
    /// The CA certificate clients are given (`gwctl --ca-cert`, `aws --ca-bundle`).
    pub ca: PathBuf,
    /// The CA's key, kept to sign node certificates.
    pub ca_key: PathBuf,
    /// This node's certificate (server and client) and key.
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Material {
    /// Where the files are (or go) under the data directory.
    pub fn paths(data: &Path) -> Material {
        let d = data.join("tls");
        Material {
            ca: d.join("ca.pem"),
            ca_key: d.join("ca.key"),
            cert: d.join("node.pem"),
            key: d.join("node.key"),
        }
    }

    /// Whether what the brick RPC needs is there.
    pub fn exists(&self) -> bool {
        self.ca.is_file() && self.cert.is_file() && self.key.is_file()
    }
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), TlsSetupError> {
    let io = |e| TlsSetupError::Io(path.to_path_buf(), e);
    // A new file, then a rename: a reader never sees half a key, and the mode is set before
    // the first byte is written.
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The CA's parameters: the same each time, so a kept CA key signs certificates that name
/// the issuer its certificate names.
fn ca_params() -> Result<rcgen::CertificateParams, rcgen::Error> {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "gatewayd cluster CA");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

fn validity(p: &mut rcgen::CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    // A day back for clocks a little behind ours.
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(3650);
}

/// This host's names for the node certificate: loopback, the host name, and `extra` (the
/// addresses the API, S3 and bricks listen on). Clients check the API's and S3's name.
fn node_names(extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        let h = String::from_utf8_lossy(&buf[..end]).into_owned();
        if !h.is_empty() {
            names.push(h);
        }
    }
    for e in extra {
        let unspecified = e
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_unspecified());
        if !e.is_empty() && !unspecified && !names.contains(e) {
            names.push(e.clone());
        }
    }
    names
}

/// Makes what is missing of the cluster's TLS files under DATA/tls: a self-signed CA (unless
/// one is there with its key) and a node certificate it signs for this host's names and
/// `extra_names`. Keys are written mode 0600. Returns the paths and whether anything was made.
pub fn ensure_material(
    data: &Path,
    extra_names: &[String],
) -> Result<(Material, bool), TlsSetupError> {
    let m = Material::paths(data);
    if m.exists() {
        return Ok((m, false));
    }
    let dir = data.join("tls");
    std::fs::create_dir_all(&dir).map_err(|e| TlsSetupError::Io(dir.clone(), e))?;
    let ca_params = {
        let mut p = ca_params()?;
        validity(&mut p);
        p
    };
    let ca_key = if m.ca.is_file() && m.ca_key.is_file() {
        let pem = std::fs::read_to_string(&m.ca_key)
            .map_err(|e| TlsSetupError::Io(m.ca_key.clone(), e))?;
        rcgen::KeyPair::from_pem(&pem).map_err(|e| TlsSetupError::CaKey(m.ca_key.clone(), e))?
    } else {
        let key = rcgen::KeyPair::generate()?;
        let cert = ca_params.self_signed(&key)?;
        write_file(&m.ca_key, &key.serialize_pem(), 0o600)?;
        write_file(&m.ca, &cert.pem(), 0o644)?;
        key
    };
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let mut p = rcgen::CertificateParams::new(node_names(extra_names))?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "gatewayd node");
    p.is_ca = rcgen::IsCa::NoCa;
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    // One certificate for both ends, as GlusterFS's glusterfs.pem: bricks serve with it,
    // clients present it.
    p.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    validity(&mut p);
    let key = rcgen::KeyPair::generate()?;
    let cert = p.signed_by(&key, &issuer)?;
    write_file(&m.key, &key.serialize_pem(), 0o600)?;
    write_file(&m.cert, &cert.pem(), 0o644)?;
    tracing::info!(ca = %m.ca.display(), cert = %m.cert.display(), "made TLS certificates");
    Ok((m, true))
}

/// The acceptor of an HTTPS endpoint presenting `cert` and `key`.
pub fn acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, TlsSetupError> {
    // HTTP/1.1 only: what hyper is built with here, and all S3 clients and gwctl speak.
    let cfg = engine::tls::server_config(cert, key, None, &[b"http/1.1"])?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// Serves `app` over HTTPS on `listener`, each request knowing its client's address (as
/// `into_make_service_with_connect_info` gives over plain TCP). Runs until dropped.
pub async fn serve_https(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: axum::Router,
) -> std::io::Result<()> {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of fds and the like: the listener itself is fine; wait a little.
                tracing::warn!("accepting an HTTPS connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    // A client that does not trust our certificate hangs up here: its business.
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, "TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "no TLS handshake within 10s");
                        return;
                    }
                };
            let svc = tower::ServiceExt::map_request(
                app,
                move |mut r: axum::http::Request<hyper::body::Incoming>| {
                    r.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                    r
                },
            );
            let svc = hyper_util::service::TowerToHyperService::new(svc);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .with_upgrades()
                .await
            {
                tracing::debug!(%peer, "HTTPS connection: {e}");
            }
        });
    }
}

/// The CA file an HTTPS client of the API trusts: `given` (a flag or its environment
/// variable), else DATA/tls/ca.pem when there is one.
pub fn client_ca(given: Option<PathBuf>, data: &Path) -> Option<PathBuf> {
    given.or_else(|| Some(Material::paths(data).ca).filter(|p| p.is_file()))
}

/// A ureq agent for the API: with `ca`, it trusts that CA alone (a self-signed cluster CA);
/// without, the public CAs ureq knows.
pub fn http_agent(ca: Option<&Path>) -> Result<ureq::Agent, TlsSetupError> {
    let mut b = ureq::AgentBuilder::new();
    if let Some(ca) = ca {
        let cfg = engine::tls::client_config(ca, None, true)?;
        b = b.tls_config(Arc::new(cfg));
    }
    Ok(b.build())
}
