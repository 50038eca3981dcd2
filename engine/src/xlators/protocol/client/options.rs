//! `protocol/client`'s options, and the settings read from them.

use super::common::{Client, ClientTls, Settings};
use crate::fop::*;
use crate::options::{OptKind, OptionSpec, Options};
use std::sync::Arc;
use std::time::Duration;

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new(
        "remote-host",
        OptKind::Str,
        Some("127.0.0.1"),
        "host of the brick",
    ),
    OptionSpec::new(
        "remote-port",
        OptKind::Int { min: 1, max: 65535 },
        None,
        "port of the brick's brickd",
    ),
    OptionSpec::new(
        "remote-subvolume",
        OptKind::Str,
        None,
        "brick name the brickd serves",
    ),
    OptionSpec::new(
        "volume-id",
        OptKind::Str,
        None,
        "volume id the brick must belong to",
    ),
    OptionSpec::new(
        "password",
        OptKind::Str,
        None,
        "the volume secret (HMAC key of the handshake)",
    ),
    OptionSpec {
        key: "ping-timeout",
        aliases: &["network.ping-timeout"],
        kind: OptKind::Seconds { min: 1, max: 1013 },
        default: Some("42"),
        doc: "seconds without an answer after which the brick is declared down",
    },
    OptionSpec::new(
        "transport-type",
        OptKind::Str,
        Some("tcp"),
        "accepted for GlusterFS volfiles; only tcp",
    ),
    OptionSpec::new(
        "transport.address-family",
        OptKind::Str,
        Some("inet"),
        "accepted for GlusterFS volfiles",
    ),
    OptionSpec {
        key: "transport.socket.ssl-enabled",
        aliases: &["client.ssl"],
        kind: OptKind::Bool,
        default: Some("off"),
        doc: "TLS to the brick: its certificate must chain to ssl-ca-list (GlusterFS's name)",
    },
    OptionSpec::new(
        "transport.socket.ssl-ca-list",
        OptKind::Str,
        None,
        "PEM file of the CA that signs brick certificates (needed with ssl-enabled)",
    ),
    OptionSpec::new(
        "transport.socket.ssl-own-cert",
        OptKind::Str,
        None,
        "PEM certificate this client presents to the brick (mutual TLS)",
    ),
    OptionSpec::new(
        "transport.socket.ssl-private-key",
        OptKind::Str,
        None,
        "PEM private key of ssl-own-cert",
    ),
    OptionSpec::new(
        "username",
        OptKind::Str,
        None,
        "accepted for GlusterFS volfiles; unused",
    ),
];

impl Client {
    pub(super) fn settings(o: &Options) -> std::result::Result<Settings, String> {
        let host = o.str_or("remote-host", "127.0.0.1");
        let port = o
            .get("remote-port")
            .ok_or("option remote-port is required")?;
        let brick = o
            .get("remote-subvolume")
            .ok_or("option remote-subvolume is required")?
            .to_string();
        let vid = o.get("volume-id").ok_or("option volume-id is required")?;
        let volume_id =
            Gfid::parse(vid).ok_or_else(|| format!("volume-id {vid:?} is not a uuid"))?;
        let secret = o
            .get("password")
            .ok_or("option password is required (the volume secret)")?;
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let tls = if o.bool_or("transport.socket.ssl-enabled", false) {
            let ca = o.get("transport.socket.ssl-ca-list").ok_or(
                "option transport.socket.ssl-ca-list is required with transport.socket.ssl-enabled",
            )?;
            let identity = match (
                o.get("transport.socket.ssl-own-cert"),
                o.get("transport.socket.ssl-private-key"),
            ) {
                (Some(c), Some(k)) => Some((std::path::Path::new(c), std::path::Path::new(k))),
                (None, None) => None,
                _ => {
                    return Err("options transport.socket.ssl-own-cert and transport.socket.ssl-private-key go together".into());
                }
            };
            let cfg = crate::tls::client_config(std::path::Path::new(ca), identity, false)
                .map_err(|e| e.to_string())?;
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| format!("remote-host {host:?} is no TLS server name: {e}"))?;
            Some(ClientTls {
                connector: tokio_rustls::TlsConnector::from(Arc::new(cfg)),
                name,
            })
        } else {
            None
        };
        Ok(Settings {
            addr,
            brick,
            volume_id,
            secret: secret.as_bytes().to_vec(),
            ping_timeout: o.secs_or("ping-timeout", Duration::from_secs(42)),
            tls,
        })
    }
}
