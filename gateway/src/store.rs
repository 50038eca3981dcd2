//! gatewayd's state: volumes, keys, exports, shares, users, tokens, the log of management
//! actions, job progress. A single node keeps it in an embedded RocksDB; the nodes of a pool
//! keep it in etcd (`crate::cluster::etcd`), under the same keys. Values are JSON so an
//! operator can read them (`ldb`, `etcdctl get --prefix /gatewayd/`) when things go wrong.

use crate::cluster::etcd::{Etcd, EtcdError, Op};
use crate::volume::VolumeRecord;
use rocksdb::{DB, IteratorMode, Options, WriteBatch};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("{0}")]
    Etcd(#[from] EtcdError),
    #[error("state store holds a damaged record {key}: {err}")]
    Decode { key: String, err: serde_json::Error },
}

enum Backend {
    Rocks(DB),
    Etcd(Arc<Etcd>),
}

pub struct Store {
    db: Backend,
    /// This node's name: it tags the log lines and the admin token of a pool's node.
    node: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Action {
    pub at: u64,
    pub what: String,
}

const VOL: &str = "vol/";
/// A volume's rebalance (or remove-brick) progress, and the directories it finished.
const REBALANCE: &str = "rebalance/";
const REBALANCE_DONE: &str = "rebalance-done/";
const LOG: &str = "log/";
const TOKEN: &str = "meta/admin-token-sha256";
/// S3 keys by access key id. The secret is kept as it is: SigV4 needs it to check signatures.
const S3KEY: &str = "s3key/";

/// NFS exports by path (`/vol`, `/vol/sub/dir`).
const NFSEXPORT: &str = "nfsexport/";

/// An NFS export as configured with `gwctl nfs export add`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct NfsExportRecord {
    pub path: String,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub root_squash: bool,
    #[serde(default)]
    pub all_squash: bool,
    #[serde(default = "nobody")]
    pub anonuid: u32,
    #[serde(default = "nobody")]
    pub anongid: u32,
    /// Client networks (CIDR); empty allows every client.
    #[serde(default)]
    pub networks: Vec<String>,
}

/// The console's admin password, as an Argon2id PHC string.
const ADMIN_PASSWORD: &str = "meta/admin-password-argon2";
/// API tokens by name; only their SHA-256 is kept.
const APITOKEN: &str = "apitoken/";

/// A named API token (`gwctl token create`); the token itself is shown once.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiTokenRecord {
    pub name: String,
    pub sha256: String,
    pub created: u64,
}

/// SMB shares by name.
const SMBSHARE: &str = "smbshare/";
/// SMB users by name. Their passwords live in Samba's own database (NT hashes), not here.
const SMBUSER: &str = "smbuser/";

/// An SMB share as configured with `gwctl smb share add`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SmbShareRecord {
    pub name: String,
    pub volume: String,
    /// The directory inside the volume the share serves (`/` for the whole volume).
    #[serde(default = "slash")]
    pub path: String,
    #[serde(default)]
    pub read_only: bool,
    /// Who may connect; empty means every SMB user.
    #[serde(default)]
    pub users: Vec<String>,
}

fn slash() -> String {
    "/".into()
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SmbUserRecord {
    pub name: String,
    pub uid: u32,
}

fn nobody() -> u32 {
    65534
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct S3Key {
    pub name: String,
    pub access_key: String,
    pub secret_key: String,
    pub created: u64,
    /// The canonical user id S3 shows for this key (64 hex digits, as AWS's); empty in
    /// records made before tenancy, which derive it from the access key.
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    /// Sees and may do everything. Records made before tenancy had no limits and keep them.
    #[serde(default = "legacy_admin")]
    pub admin: bool,
    /// Buckets the key may use without owning them (Garage's `bucket allow`).
    #[serde(default)]
    pub grants: Vec<protocols_s3::access::BucketGrant>,
    /// The uid and gid that own the buckets this key makes, for FUSE, NFS and SMB users.
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
}

fn legacy_admin() -> bool {
    true
}

impl S3Key {
    pub fn canonical_id(&self) -> String {
        if !self.id.is_empty() {
            return self.id.clone();
        }
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(self.access_key.as_bytes()))
    }
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let mut o = Options::default();
        o.create_if_missing(true);
        Ok(Store {
            db: Backend::Rocks(DB::open(&o, dir)?),
            node: None,
        })
    }

    /// The state of the pool whose etcd is `etcd`, as node `node` sees it.
    pub fn etcd(etcd: Arc<Etcd>, node: &str) -> Store {
        Store {
            db: Backend::Etcd(etcd),
            node: Some(node.to_string()),
        }
    }

    /// etcd, when the state is there.
    pub fn cluster(&self) -> Option<&Arc<Etcd>> {
        match &self.db {
            Backend::Etcd(e) => Some(e),
            Backend::Rocks(_) => None,
        }
    }

    /// Fails with etcd's error while etcd does not answer; always fine for RocksDB. Called
    /// before a management call changes anything outside the store.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        if let Backend::Etcd(e) = &self.db {
            e.check()?;
        }
        Ok(())
    }

    fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(match &self.db {
            Backend::Rocks(db) => db.get(key)?,
            Backend::Etcd(e) => e.get(key),
        })
    }

    /// Every key under `prefix` and its value, in key order.
    fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        match &self.db {
            Backend::Etcd(e) => Ok(e.scan(prefix)),
            Backend::Rocks(db) => {
                let mut out = Vec::new();
                for item in db.prefix_iterator(prefix.as_bytes()) {
                    let (k, v) = item?;
                    if !k.starts_with(prefix.as_bytes()) {
                        break;
                    }
                    out.push((String::from_utf8_lossy(&k).into_owned(), v.to_vec()));
                }
                Ok(out)
            }
        }
    }

    /// Applies `ops` at once.
    fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.write_if_absent(ops, Vec::new()).map(|_| ())
    }

    /// Applies `ops` at once if no key of `absent` exists; `Ok(false)` (and nothing written)
    /// if one does. In a pool this is what keeps two nodes from making the same thing; alone,
    /// the manager's lock already does.
    fn write_if_absent(&self, ops: Vec<Op>, absent: Vec<String>) -> Result<bool, StoreError> {
        match &self.db {
            Backend::Etcd(e) => Ok(e.write(ops, absent)?),
            Backend::Rocks(db) => {
                for k in &absent {
                    if db.get(k)?.is_some() {
                        return Ok(false);
                    }
                }
                let mut b = WriteBatch::default();
                for op in ops {
                    match op {
                        Op::Put(k, v) => b.put(k, v),
                        Op::Delete(k) => b.delete(k),
                        Op::DeletePrefix(p) => {
                            for (k, _) in self.scan(&p)? {
                                b.delete(k);
                            }
                        }
                    }
                }
                db.write(b)?;
                Ok(true)
            }
        }
    }

    fn get_json<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>, StoreError> {
        match self.get_raw(key)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|err| StoreError::Decode {
                    key: key.into(),
                    err,
                }),
        }
    }

    /// Every record under `prefix`, in key order.
    fn records<T: for<'de> Deserialize<'de>>(&self, prefix: &str) -> Result<Vec<T>, StoreError> {
        self.scan(prefix)?
            .into_iter()
            .map(|(key, v)| {
                serde_json::from_slice(&v).map_err(|err| StoreError::Decode { key, err })
            })
            .collect()
    }

    /// Writes a record and a log line at once: the log never claims what did not happen.
    fn put_record<T: Serialize>(&self, key: &str, v: &T, what: &str) -> Result<(), StoreError> {
        self.write(vec![
            Op::Put(
                key.into(),
                serde_json::to_vec(v).expect("records serialize"),
            ),
            self.log_op(what),
        ])
    }

    /// Writes a record that must be new (and a log line): `Ok(false)` if the key exists.
    fn create_record<T: Serialize>(
        &self,
        key: &str,
        v: &T,
        what: &str,
    ) -> Result<bool, StoreError> {
        self.write_if_absent(
            vec![
                Op::Put(
                    key.into(),
                    serde_json::to_vec(v).expect("records serialize"),
                ),
                self.log_op(what),
            ],
            vec![key.into()],
        )
    }

    fn delete_record(&self, key: &str, what: &str) -> Result<(), StoreError> {
        self.write(vec![Op::Delete(key.into()), self.log_op(what)])
    }

    pub fn volume(&self, name: &str) -> Result<Option<VolumeRecord>, StoreError> {
        self.get_json(&format!("{VOL}{name}"))
    }

    pub fn volumes(&self) -> Result<Vec<VolumeRecord>, StoreError> {
        self.records(VOL)
    }

    pub fn put_volume(&self, v: &VolumeRecord, what: &str) -> Result<(), StoreError> {
        self.put_record(&format!("{VOL}{}", v.name), v, what)
    }

    /// Records a new volume: `Ok(false)` if one of that name exists (another node made it
    /// first).
    pub fn create_volume(&self, v: &VolumeRecord, what: &str) -> Result<bool, StoreError> {
        self.create_record(&format!("{VOL}{}", v.name), v, what)
    }

    pub fn delete_volume(&self, name: &str, what: &str) -> Result<(), StoreError> {
        self.delete_record(&format!("{VOL}{name}"), what)
    }

    pub fn rebalance<T: for<'de> Deserialize<'de>>(
        &self,
        volume: &str,
    ) -> Result<Option<T>, StoreError> {
        self.get_json(&format!("{REBALANCE}{volume}"))
    }

    /// Saves a rebalance's progress: a checkpoint, so no log line.
    pub fn put_rebalance<T: Serialize>(&self, volume: &str, r: &T) -> Result<(), StoreError> {
        self.write(vec![Op::Put(
            format!("{REBALANCE}{volume}"),
            serde_json::to_vec(r).expect("records serialize"),
        )])
    }

    /// Records that a rebalance of `volume` finished directory `dir` (a gfid, as text).
    pub fn rebalance_dir_done(&self, volume: &str, dir: &str) -> Result<(), StoreError> {
        self.write(vec![Op::Put(
            format!("{REBALANCE_DONE}{volume}/{dir}"),
            Vec::new(),
        )])
    }

    /// The directories a rebalance of `volume` finished.
    pub fn rebalance_done_dirs(&self, volume: &str) -> Result<Vec<String>, StoreError> {
        let prefix = format!("{REBALANCE_DONE}{volume}/");
        Ok(self
            .scan(&prefix)?
            .into_iter()
            .filter_map(|(k, _)| k.strip_prefix(&prefix).map(str::to_string))
            .collect())
    }

    /// Forgets the directories a rebalance of `volume` finished (a new one starts).
    pub fn rebalance_forget_dirs(&self, volume: &str) -> Result<(), StoreError> {
        self.write(vec![Op::DeletePrefix(format!("{REBALANCE_DONE}{volume}/"))])
    }

    /// Records a management action that changes no record here (it changed Samba's state).
    pub fn log_action(&self, what: &str) -> Result<(), StoreError> {
        self.write(vec![self.log_op(what)])
    }

    fn log_op(&self, what: &str) -> Op {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let at = now.as_micros() as u64;
        let a = Action {
            at,
            what: match &self.node {
                Some(n) => format!("{what} (on {n})"),
                None => what.to_string(),
            },
        };
        // Two nodes may log in the same microsecond: the node's name keeps both lines.
        let key = match &self.node {
            Some(n) => format!("{LOG}{at:020}-{n}"),
            None => format!("{LOG}{at:020}"),
        };
        Op::Put(key, serde_json::to_vec(&a).expect("actions serialize"))
    }

    pub fn actions(&self, limit: usize) -> Result<Vec<Action>, StoreError> {
        let mut out = Vec::new();
        let decode = |key: String, v: &[u8]| {
            serde_json::from_slice(v).map_err(|err| StoreError::Decode { key, err })
        };
        match &self.db {
            Backend::Etcd(e) => {
                for (k, v) in e.scan_back(LOG, limit) {
                    out.push(decode(k, &v)?);
                }
            }
            Backend::Rocks(db) => {
                for item in db.iterator(IteratorMode::End) {
                    let (k, v) = item?;
                    if k.starts_with(LOG.as_bytes()) {
                        out.push(decode(String::from_utf8_lossy(&k).into_owned(), &v)?);
                        if out.len() >= limit {
                            break;
                        }
                    } else if k.as_ref() < LOG.as_bytes() {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    pub fn s3_key(&self, access_key: &str) -> Result<Option<S3Key>, StoreError> {
        self.get_json(&format!("{S3KEY}{access_key}"))
    }

    pub fn s3_keys(&self) -> Result<Vec<S3Key>, StoreError> {
        self.records(S3KEY)
    }

    pub fn put_s3_key(&self, k: &S3Key, what: &str) -> Result<(), StoreError> {
        self.put_record(&format!("{S3KEY}{}", k.access_key), k, what)
    }

    pub fn delete_s3_key(&self, access_key: &str, what: &str) -> Result<(), StoreError> {
        self.delete_record(&format!("{S3KEY}{access_key}"), what)
    }

    pub fn nfs_exports(&self) -> Result<Vec<NfsExportRecord>, StoreError> {
        self.records(NFSEXPORT)
    }

    pub fn put_nfs_export(&self, e: &NfsExportRecord, what: &str) -> Result<(), StoreError> {
        self.put_record(&format!("{NFSEXPORT}{}", e.path), e, what)
    }

    pub fn delete_nfs_export(&self, path: &str, what: &str) -> Result<(), StoreError> {
        self.delete_record(&format!("{NFSEXPORT}{path}"), what)
    }

    pub fn smb_shares(&self) -> Result<Vec<SmbShareRecord>, StoreError> {
        self.records(SMBSHARE)
    }

    pub fn put_smb_share(&self, s: &SmbShareRecord, what: &str) -> Result<(), StoreError> {
        self.put_record(&format!("{SMBSHARE}{}", s.name), s, what)
    }

    pub fn delete_smb_share(&self, name: &str, what: &str) -> Result<(), StoreError> {
        self.delete_record(&format!("{SMBSHARE}{name}"), what)
    }

    pub fn smb_users(&self) -> Result<Vec<SmbUserRecord>, StoreError> {
        self.records(SMBUSER)
    }

    pub fn put_smb_user(&self, u: &SmbUserRecord, what: &str) -> Result<(), StoreError> {
        self.put_record(&format!("{SMBUSER}{}", u.name), u, what)
    }

    pub fn delete_smb_user(&self, name: &str, what: &str) -> Result<(), StoreError> {
        self.delete_record(&format!("{SMBUSER}{name}"), what)
    }

    pub fn api_tokens(&self) -> Result<Vec<ApiTokenRecord>, StoreError> {
        self.records(APITOKEN)
    }

    pub fn put_api_token(&self, t: &ApiTokenRecord, what: &str) -> Result<(), StoreError> {
        self.put_record(&format!("{APITOKEN}{}", t.name), t, what)
    }

    pub fn delete_api_token(&self, name: &str, what: &str) -> Result<(), StoreError> {
        self.delete_record(&format!("{APITOKEN}{name}"), what)
    }

    pub fn admin_password_hash(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .get_raw(ADMIN_PASSWORD)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn set_admin_password_hash(&self, h: &str, what: &str) -> Result<(), StoreError> {
        self.write(vec![
            Op::Put(ADMIN_PASSWORD.into(), h.as_bytes().to_vec()),
            self.log_op(what),
        ])
    }

    /// Sets the console's admin password unless one exists (a pool's first node makes it):
    /// `Ok(false)` if one did.
    pub fn create_admin_password_hash(&self, h: &str, what: &str) -> Result<bool, StoreError> {
        self.write_if_absent(
            vec![
                Op::Put(ADMIN_PASSWORD.into(), h.as_bytes().to_vec()),
                self.log_op(what),
            ],
            vec![ADMIN_PASSWORD.into()],
        )
    }

    /// Where this node's admin token hash is kept: each node of a pool has its own token
    /// (in its data directory), and every node takes all of them.
    fn token_key(&self) -> String {
        match &self.node {
            Some(n) => format!("{TOKEN}/{n}"),
            None => TOKEN.into(),
        }
    }

    pub fn admin_token_hash(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .get_raw(&self.token_key())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The admin token hashes every API of the pool takes: this node's, and in a pool every
    /// other node's.
    pub fn admin_token_hashes(&self) -> Result<Vec<String>, StoreError> {
        let mut out: Vec<String> = self.admin_token_hash()?.into_iter().collect();
        if self.node.is_some() {
            out.extend(
                self.scan(&format!("{TOKEN}/"))?
                    .into_iter()
                    .map(|(_, v)| String::from_utf8_lossy(&v).into_owned()),
            );
        }
        Ok(out)
    }

    pub fn set_admin_token_hash(&self, h: &str) -> Result<(), StoreError> {
        self.write(vec![Op::Put(self.token_key(), h.as_bytes().to_vec())])
    }

    /// A raw key of the cluster's own bookkeeping (nodes, leaders, sessions), JSON.
    pub fn get_meta<T: for<'de> Deserialize<'de>>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        self.get_json(key)
    }

    /// Every record under a key prefix of the cluster's bookkeeping.
    pub fn meta_records<T: for<'de> Deserialize<'de>>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, StoreError> {
        self.scan(prefix)?
            .into_iter()
            .map(|(key, v)| match serde_json::from_slice(&v) {
                Ok(t) => Ok((key, t)),
                Err(err) => Err(StoreError::Decode { key, err }),
            })
            .collect()
    }

    pub fn put_meta<T: Serialize>(&self, key: &str, v: &T) -> Result<(), StoreError> {
        self.write(vec![Op::Put(
            key.into(),
            serde_json::to_vec(v).expect("records serialize"),
        )])
    }

    pub fn delete_meta(&self, key: &str) -> Result<(), StoreError> {
        self.write(vec![Op::Delete(key.into())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::BrickRecord;

    #[test]
    fn volumes_and_the_action_log_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let v = VolumeRecord::new(
            "gv",
            vec![BrickRecord {
                host: "127.0.0.1".into(),
                path: "/b1".into(),
                port: 49152,
                id: None,
                decommissioned: false,
            }],
        );
        s.put_volume(&v, "volume create gv").unwrap();
        assert_eq!(s.volume("gv").unwrap().unwrap().id, v.id);
        assert_eq!(s.volumes().unwrap().len(), 1);
        s.delete_volume("gv", "volume delete gv").unwrap();
        assert!(s.volume("gv").unwrap().is_none());
        let log = s.actions(10).unwrap();
        assert_eq!(log[0].what, "volume delete gv");
        assert_eq!(log[1].what, "volume create gv");
        drop(s);
        // A second opener of the same state is refused (RocksDB's lock), not corrupting it.
        let _a = Store::open(d.path()).unwrap();
        assert!(Store::open(d.path()).is_err());
    }

    /// A throwaway single-member etcd (Debian's etcd-server) for the tests of the etcd state.
    struct TestEtcd {
        child: std::process::Child,
        url: String,
        _dir: tempfile::TempDir,
    }

    impl TestEtcd {
        fn start() -> Option<TestEtcd> {
            let bin = std::path::Path::new("/usr/bin/etcd");
            if !bin.exists() {
                assert!(
                    std::env::var("CI").is_err(),
                    "etcd is missing (apt-get install etcd-server)"
                );
                eprintln!("skipped: no /usr/bin/etcd");
                return None;
            }
            let dir = tempfile::tempdir().unwrap();
            let port = |_| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
            };
            let (cp, pp) = (port(0), port(1));
            let url = format!("http://127.0.0.1:{cp}");
            let peer = format!("http://127.0.0.1:{pp}");
            let child = std::process::Command::new(bin)
                .arg("--name")
                .arg("t")
                .arg("--data-dir")
                .arg(dir.path().join("etcd"))
                .args([
                    "--listen-client-urls",
                    &url,
                    "--advertise-client-urls",
                    &url,
                ])
                .args([
                    "--listen-peer-urls",
                    &peer,
                    "--initial-advertise-peer-urls",
                    &peer,
                ])
                .arg("--initial-cluster")
                .arg(format!("t={peer}"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let e = TestEtcd {
                child,
                url,
                _dir: dir,
            };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while std::net::TcpStream::connect(e.url.trim_start_matches("http://")).is_err() {
                assert!(std::time::Instant::now() < deadline, "etcd did not listen");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Some(e)
        }
    }

    impl Drop for TestEtcd {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[test]
    fn two_nodes_share_the_state_in_etcd_and_cannot_make_the_same_volume() {
        let Some(etcd) = TestEtcd::start() else {
            return;
        };
        let a = Store::etcd(
            Etcd::connect(std::slice::from_ref(&etcd.url)).unwrap(),
            "n1",
        );
        let b = Store::etcd(
            Etcd::connect(std::slice::from_ref(&etcd.url)).unwrap(),
            "n2",
        );
        let v = VolumeRecord::new(
            "gv",
            vec![BrickRecord {
                host: "n1".into(),
                path: "/b1".into(),
                port: 49152,
                id: None,
                decommissioned: false,
            }],
        );
        assert!(a.create_volume(&v, "volume create gv").unwrap());
        // The second maker loses, whatever its mirror said.
        assert!(!b.create_volume(&v, "volume create gv").unwrap());
        // The other node sees it once its watch brings it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while b.volume("gv").unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "the watch never brought gv"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(b.volume("gv").unwrap().unwrap().id, v.id);
        // Each node's admin token is taken by both.
        a.set_admin_token_hash("ha").unwrap();
        b.set_admin_token_hash("hb").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mut all = a.admin_token_hashes().unwrap();
            all.sort();
            all.dedup();
            if all == ["ha", "hb"] {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "tokens: {all:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Rebalance checkpoints: many directories, forgotten at once.
        for d in 0..300 {
            a.rebalance_dir_done("gv", &format!("d{d}")).unwrap();
        }
        assert_eq!(a.rebalance_done_dirs("gv").unwrap().len(), 300);
        a.rebalance_forget_dirs("gv").unwrap();
        assert!(a.rebalance_done_dirs("gv").unwrap().is_empty());
        let log = a.actions(10).unwrap();
        assert!(
            log[0].what.starts_with("volume create gv (on n1)"),
            "{log:?}"
        );
    }

    #[test]
    fn writes_fail_with_a_message_naming_etcd_when_it_is_gone_and_write_nothing() {
        let Some(mut etcd) = TestEtcd::start() else {
            return;
        };
        let a = Store::etcd(
            Etcd::connect(std::slice::from_ref(&etcd.url)).unwrap(),
            "n1",
        );
        let _ = etcd.child.kill();
        let _ = etcd.child.wait();
        let v = VolumeRecord::new("gv", Vec::new());
        let e = a.create_volume(&v, "volume create gv").unwrap_err();
        assert!(matches!(e, StoreError::Etcd(_)), "{e}");
        assert!(e.to_string().contains("etcd"), "{e}");
        assert!(a.check_writable().is_err());
        // Nothing was written, even to the mirror.
        assert!(a.volume("gv").unwrap().is_none());
    }
}
