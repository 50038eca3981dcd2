//! gateway.toml: where the daemon keeps its state and where it listens.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// State (RocksDB), volume secrets, logs and, for `gatewayd up`, the bricks.
    pub data_dir: PathBuf,
    /// The REST API. Loopback unless configured otherwise.
    pub api_listen: SocketAddr,
    /// HTTPS for the API and console: the certificate (PEM, chain) and its key. Without
    /// them, plain HTTP.
    pub api_tls_cert: Option<PathBuf>,
    pub api_tls_key: Option<PathBuf>,
    /// Address bricks listen on; loopback keeps them private to this host.
    pub brick_listen_host: String,
    /// The brickd binary; empty means next to gatewayd, then $PATH.
    pub brickd_path: Option<PathBuf>,
    /// Seconds without an answer before a brick is declared down.
    pub ping_timeout: u64,
    /// FUSE attribute and entry cache lifetime, seconds.
    pub fuse_attr_timeout: f64,
    pub fuse_threads: usize,
    /// The NFSv3 (and MOUNT) endpoint; none means NFS is off.
    pub nfs_listen: Option<SocketAddr>,
    /// Register NFS and MOUNT with the local rpcbind (when one runs).
    pub nfs_rpcbind: bool,
    /// Where Samba's smbd listens for the SMB shares (port 0: a free one, see DATA/smb.addr);
    /// none means SMB is off. smbd runs only while there is a share.
    pub smb_listen: Option<SocketAddr>,
    /// A file holding the console's admin password, applied at every start; without one the
    /// first start makes a random password and prints it once.
    pub admin_password_file: Option<PathBuf>,
    /// The S3 endpoint; none means S3 is off.
    pub s3_listen: Option<SocketAddr>,
    /// HTTPS for S3: the certificate (PEM, chain) and its key. Without them, plain HTTP.
    pub s3_tls_cert: Option<PathBuf>,
    pub s3_tls_key: Option<PathBuf>,
    /// The volume whose top-level directories are the S3 buckets.
    pub s3_volume: String,
    /// Base domain for virtual-host-style requests (`bucket.<domain>`).
    pub s3_domain: Option<String>,
    /// Region S3 clients sign for and GetBucketLocation reports.
    pub s3_region: String,
    /// This node's name in brick specs (`HOST:/PATH`): the bricks whose HOST it is are the
    /// ones this gatewayd spawns. Default: the host name.
    pub node_name: Option<String>,
    /// etcd's client URLs. With them, the cluster state lives in etcd and every gatewayd
    /// pointed at the same etcd is a node of one pool; without, the embedded RocksDB.
    pub etcd_endpoints: Vec<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            data_dir: PathBuf::from("/var/lib/gatewayd"),
            api_listen: "127.0.0.1:7070".parse().expect("valid address"),
            api_tls_cert: None,
            api_tls_key: None,
            s3_tls_cert: None,
            s3_tls_key: None,
            brick_listen_host: "127.0.0.1".into(),
            brickd_path: None,
            ping_timeout: 10,
            fuse_attr_timeout: 1.0,
            fuse_threads: 4,
            nfs_listen: Some("127.0.0.1:2049".parse().expect("valid address")),
            nfs_rpcbind: true,
            smb_listen: Some("127.0.0.1:445".parse().expect("valid address")),
            admin_password_file: None,
            s3_listen: Some("127.0.0.1:9000".parse().expect("valid address")),
            s3_volume: "vol".into(),
            s3_domain: None,
            s3_region: "us-east-1".into(),
            node_name: None,
            etcd_endpoints: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Parse(PathBuf, toml::de::Error),
    #[error("{0} is given without {1}: a certificate needs its key and the reverse")]
    Half(&'static str, &'static str),
}

impl GatewayConfig {
    pub fn load(path: &Path) -> Result<GatewayConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_path_buf(), e))?;
        let c: GatewayConfig =
            toml::from_str(&text).map_err(|e| ConfigError::Parse(path.to_path_buf(), e))?;
        c.check()?;
        Ok(c)
    }

    /// Checks what the types cannot: TLS certificates come with their keys.
    pub fn check(&self) -> Result<(), ConfigError> {
        let pair = |c: &Option<PathBuf>, k: &Option<PathBuf>, cn, kn| match (c, k) {
            (Some(_), None) => Err(ConfigError::Half(cn, kn)),
            (None, Some(_)) => Err(ConfigError::Half(kn, cn)),
            _ => Ok(()),
        };
        pair(
            &self.api_tls_cert,
            &self.api_tls_key,
            "api_tls_cert",
            "api_tls_key",
        )?;
        pair(
            &self.s3_tls_cert,
            &self.s3_tls_key,
            "s3_tls_cert",
            "s3_tls_key",
        )
    }

    /// This node's name: `node_name`, else the host name.
    pub fn node(&self) -> String {
        self.node_name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(crate::node::host_name)
    }

    /// The address this node's bricks are reached at: `brick_listen_host`, or this node's
    /// name when the bricks listen on every address (0.0.0.0), which no peer can connect to.
    pub fn brick_host(&self) -> String {
        match self.brick_listen_host.parse::<std::net::IpAddr>() {
            Ok(ip) if ip.is_unspecified() => self.node(),
            _ => self.brick_listen_host.clone(),
        }
    }

    /// The URL peers reach an API listening on `addr` at: the node's name stands in for an
    /// unspecified address (0.0.0.0).
    pub fn advertised(&self, scheme: &str, addr: SocketAddr) -> String {
        if addr.ip().is_unspecified() {
            format!("{scheme}://{}:{}", self.node(), addr.port())
        } else {
            format!("{scheme}://{addr}")
        }
    }

    /// Whether this gatewayd is one node of a pool whose state is in etcd.
    pub fn clustered(&self) -> bool {
        !self.etcd_endpoints.is_empty()
    }

    /// The API's certificate and key, when it serves HTTPS.
    pub fn api_tls(&self) -> Option<(&Path, &Path)> {
        Some((self.api_tls_cert.as_deref()?, self.api_tls_key.as_deref()?))
    }

    /// S3's certificate and key, when it serves HTTPS.
    pub fn s3_tls(&self) -> Option<(&Path, &Path)> {
        Some((self.s3_tls_cert.as_deref()?, self.s3_tls_key.as_deref()?))
    }

    /// How the gateway FUSE-mounts volume `name`; `protocol` labels its operations in /metrics.
    pub fn fuse_options(&self, name: &str, protocol: &'static str) -> protocols_fuse::MountOptions {
        protocols_fuse::MountOptions {
            fsname: format!("gatewayd:{name}"),
            attr_timeout: std::time::Duration::from_secs_f64(self.fuse_attr_timeout),
            entry_timeout: std::time::Duration::from_secs_f64(self.fuse_attr_timeout),
            threads: self.fuse_threads,
            allow_other: true,
            protocol,
            volume: name.to_string(),
        }
    }

    pub fn brickd(&self) -> PathBuf {
        if let Some(p) = &self.brickd_path {
            return p.clone();
        }
        if let Ok(me) = std::env::current_exe()
            && let Some(dir) = me.parent()
        {
            let p = dir.join("brickd");
            if p.exists() {
                return p;
            }
        }
        PathBuf::from("brickd")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_parses_and_unknown_keys_are_errors() {
        let text = include_str!("../../config/gateway.toml");
        let c: GatewayConfig = toml::from_str(text).unwrap();
        assert_eq!(c.api_listen.ip().to_string(), "127.0.0.1");
        assert!(toml::from_str::<GatewayConfig>("bogus = 1").is_err());
    }
}
