//! The export table: what each export serves and to whom, and where the table and the volumes'
//! graphs come from; the program numbers served on the port.

use crate::rpc;
use engine::fop::Ctx;
use engine::xlator::XlatorRef;
use std::net::IpAddr;
use std::sync::Arc;

/// The `protocol` of NFS's fops and metrics.
pub const NFS: &str = "nfs";

pub const NFS_PROGRAM: u32 = 100003;
pub const MOUNT_PROGRAM: u32 = 100005;

/// How an export treats its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    pub read_only: bool,
    /// uid 0 (and gid 0) become `anonuid`/`anongid`.
    pub root_squash: bool,
    /// Everyone becomes `anonuid`/`anongid`.
    pub all_squash: bool,
    pub anonuid: u32,
    pub anongid: u32,
    /// Client networks allowed; empty allows every client.
    pub networks: Vec<ipnet::IpNet>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            read_only: false,
            root_squash: false,
            all_squash: false,
            anonuid: 65534,
            anongid: 65534,
            networks: Vec::new(),
        }
    }
}

impl ExportOptions {
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.networks.is_empty() || self.networks.iter().any(|n| n.contains(&ip))
    }

    /// The identity a caller acts with on this export (its fops count as NFS's in io-stats).
    pub fn ctx(&self, cred: &rpc::Cred) -> Ctx {
        let anon = Ctx {
            uid: self.anonuid,
            gid: self.anongid,
            protocol: NFS,
            ..Default::default()
        };
        if self.all_squash || cred.flavor != rpc::AUTH_SYS {
            return anon;
        }
        if self.root_squash && cred.uid == 0 {
            return Ctx {
                groups: cred.groups.iter().copied().filter(|g| *g != 0).collect(),
                ..anon
            };
        }
        Ctx {
            uid: cred.uid,
            gid: if self.root_squash && cred.gid == 0 {
                self.anongid
            } else {
                cred.gid
            },
            groups: cred.groups.clone(),
            protocol: NFS,
            ..Default::default()
        }
    }
}

/// One exported tree: a volume, or a directory of it.
#[derive(Debug, Clone)]
pub struct Export {
    /// What clients mount: `/vol` or `/vol/some/dir`.
    pub path: String,
    pub volume: String,
    pub volume_id: [u8; 16],
    /// Path inside the volume ("" for its root).
    pub subdir: String,
    pub options: ExportOptions,
    /// The volume's NFS operation and byte counters, resolved when the export list is built.
    pub metrics: Arc<engine::metrics::VolumeOps>,
}

/// Where exports and volumes come from (gatewayd's configuration and running graphs).
pub trait Exports: Send + Sync + 'static {
    fn exports(&self) -> Arc<Vec<Export>>;
    fn graph(&self, volume: &str) -> Option<XlatorRef>;
}

pub struct Config {
    pub exports: Arc<dyn Exports>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(uid: u32, gid: u32) -> rpc::Cred {
        rpc::Cred {
            flavor: rpc::AUTH_SYS,
            uid,
            gid,
            groups: vec![gid, 10],
            machine: "client".into(),
        }
    }

    #[test]
    fn squashing() {
        let o = ExportOptions {
            root_squash: true,
            ..Default::default()
        };
        assert_eq!(o.ctx(&cred(0, 0)).uid, 65534);
        assert_eq!(o.ctx(&cred(0, 0)).gid, 65534);
        assert_eq!(o.ctx(&cred(1000, 1000)).uid, 1000);
        let o = ExportOptions {
            all_squash: true,
            anonuid: 7,
            anongid: 8,
            ..Default::default()
        };
        let c = o.ctx(&cred(1000, 1000));
        assert_eq!((c.uid, c.gid, c.groups.len()), (7, 8, 0));
        assert_eq!(ExportOptions::default().ctx(&cred(0, 0)).uid, 0);
    }

    #[test]
    fn networks() {
        let o = ExportOptions {
            networks: vec!["10.0.0.0/8".parse().unwrap()],
            ..Default::default()
        };
        assert!(o.allows("10.1.2.3".parse().unwrap()));
        assert!(o.allows("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!o.allows("127.0.0.1".parse().unwrap()));
        assert!(ExportOptions::default().allows("127.0.0.1".parse().unwrap()));
    }
}
