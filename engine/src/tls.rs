//! TLS (rustls) for the brick RPC, and the PEM loading the gateway's HTTPS endpoints share.
//!
//! As GlusterFS does with `transport.socket.ssl-enabled`, a brick proves itself with a
//! certificate signed by the cluster CA and asks the client for one signed by the same CA
//! (mutual TLS). The volume secret's handshake still runs inside the TLS session: TLS says
//! "a member of the cluster", the secret says "a client of this volume".

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {0}: {1}")]
    Read(PathBuf, String),
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    #[error("{0}: {1}")]
    Config(String, rustls::Error),
    #[error("{0}: {1}")]
    Verifier(PathBuf, String),
}

/// The crypto provider every config here is built with. Named explicitly rather than
/// process-wide: which providers a build links depends on other crates' features.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate of a PEM file (a chain: the leaf first).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::Read(path.to_path_buf(), e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Read(path.to_path_buf(), e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| TlsError::Read(path.to_path_buf(), e.to_string()))
}

/// The CA certificates of a PEM file as trust anchors.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in load_certs(path)? {
        roots
            .add(c)
            .map_err(|e| TlsError::Config(format!("CA certificate {}", path.display()), e))?;
    }
    Ok(roots)
}

/// A server config presenting `cert` (chain) and `key`; with `client_ca`, every client must
/// present a certificate that CA signed (mutual TLS).
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    alpn: &[&[u8]],
) -> Result<rustls::ServerConfig, TlsError> {
    let what = || {
        format!(
            "TLS certificate {} with key {}",
            cert.display(),
            key.display()
        )
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(what(), e))?;
    let builder = match client_ca {
        Some(ca) => {
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(load_roots(ca)?),
                provider(),
            )
            .build()
            .map_err(|e| TlsError::Verifier(ca.to_path_buf(), e.to_string()))?;
            builder.with_client_cert_verifier(v)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .map_err(|e| TlsError::Config(what(), e))?;
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(cfg)
}

/// A client config trusting the CAs of `ca` only, presenting `identity` (cert, key) when
/// given. `check_name` false accepts any name in a certificate the CA signed (see
/// [`ChainOnly`]).
pub fn client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
    check_name: bool,
) -> Result<rustls::ClientConfig, TlsError> {
    let roots = Arc::new(load_roots(ca)?);
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(format!("CA {}", ca.display()), e))?;
    let builder = if check_name {
        builder.with_root_certificates(roots)
    } else {
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| TlsError::Verifier(ca.to_path_buf(), e.to_string()))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
    };
    match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(|e| {
                TlsError::Config(
                    format!(
                        "client certificate {} with key {}",
                        cert.display(),
                        key.display()
                    ),
                    e,
                )
            }),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// Verifies that the cluster CA signed a brick's certificate, not the name in it: bricks are
/// addressed by whatever host or IP the volume was created with (and `brick_listen_host`),
/// which a node certificate need not list. GlusterFS's TLS checks the chain alone as well.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain (and validity) before the name, so a name error means the
        // chain is good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
