//! gatewayd's state in RocksDB: volumes, the admin token's hash, the log of management actions.
//! Values are JSON so an operator can read them with `ldb` when things go wrong.

use crate::volume::VolumeRecord;
use rocksdb::{DB, IteratorMode, Options, WriteBatch};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("state store holds a damaged record {key}: {err}")]
    Decode { key: String, err: serde_json::Error },
}

pub struct Store {
    db: DB,
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
            db: DB::open(&o, dir)?,
        })
    }

    fn get_json<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>, StoreError> {
        match self.db.get(key)? {
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
        let mut out = Vec::new();
        for item in self.db.prefix_iterator(prefix) {
            let (k, v) = item?;
            if !k.starts_with(prefix.as_bytes()) {
                break;
            }
            let key = String::from_utf8_lossy(&k).into_owned();
            out.push(serde_json::from_slice(&v).map_err(|err| StoreError::Decode { key, err })?);
        }
        Ok(out)
    }

    /// Writes a record and a log line in one batch: the log never claims what did not happen.
    fn put_record<T: Serialize>(&self, key: &str, v: &T, what: &str) -> Result<(), StoreError> {
        let mut b = WriteBatch::default();
        b.put(key, serde_json::to_vec(v).expect("records serialize"));
        self.log_into(&mut b, what);
        self.db.write(b)?;
        Ok(())
    }

    fn delete_record(&self, key: &str, what: &str) -> Result<(), StoreError> {
        let mut b = WriteBatch::default();
        b.delete(key);
        self.log_into(&mut b, what);
        self.db.write(b)?;
        Ok(())
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
        self.db.put(
            format!("{REBALANCE}{volume}"),
            serde_json::to_vec(r).expect("records serialize"),
        )?;
        Ok(())
    }

    /// Records that a rebalance of `volume` finished directory `dir` (a gfid, as text).
    pub fn rebalance_dir_done(&self, volume: &str, dir: &str) -> Result<(), StoreError> {
        self.db
            .put(format!("{REBALANCE_DONE}{volume}/{dir}"), b"")?;
        Ok(())
    }

    /// The directories a rebalance of `volume` finished.
    pub fn rebalance_done_dirs(&self, volume: &str) -> Result<Vec<String>, StoreError> {
        let prefix = format!("{REBALANCE_DONE}{volume}/");
        let mut out = Vec::new();
        for item in self.db.prefix_iterator(prefix.as_bytes()) {
            let (k, _) = item?;
            let Some(rest) = k.strip_prefix(prefix.as_bytes()) else {
                break;
            };
            out.push(String::from_utf8_lossy(rest).into_owned());
        }
        Ok(out)
    }

    /// Forgets the directories a rebalance of `volume` finished (a new one starts).
    pub fn rebalance_forget_dirs(&self, volume: &str) -> Result<(), StoreError> {
        let mut b = WriteBatch::default();
        for d in self.rebalance_done_dirs(volume)? {
            b.delete(format!("{REBALANCE_DONE}{volume}/{d}"));
        }
        self.db.write(b)?;
        Ok(())
    }

    /// Records a management action that changes no record here (it changed Samba's state).
    pub fn log_action(&self, what: &str) -> Result<(), StoreError> {
        let mut b = WriteBatch::default();
        self.log_into(&mut b, what);
        self.db.write(b)?;
        Ok(())
    }

    fn log_into(&self, b: &mut WriteBatch, what: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let at = now.as_micros() as u64;
        let a = Action {
            at,
            what: what.to_string(),
        };
        b.put(
            format!("{LOG}{at:020}"),
            serde_json::to_vec(&a).expect("actions serialize"),
        );
    }

    pub fn actions(&self, limit: usize) -> Result<Vec<Action>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.iterator(IteratorMode::End) {
            let (k, v) = item?;
            if k.starts_with(LOG.as_bytes()) {
                let key = String::from_utf8_lossy(&k).into_owned();
                out.push(
                    serde_json::from_slice(&v).map_err(|err| StoreError::Decode { key, err })?,
                );
                if out.len() >= limit {
                    break;
                }
            } else if k.as_ref() < LOG.as_bytes() {
                break;
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
            .db
            .get(ADMIN_PASSWORD)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn set_admin_password_hash(&self, h: &str, what: &str) -> Result<(), StoreError> {
        let mut b = WriteBatch::default();
        b.put(ADMIN_PASSWORD, h);
        self.log_into(&mut b, what);
        self.db.write(b)?;
        Ok(())
    }

    pub fn admin_token_hash(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .db
            .get(TOKEN)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn set_admin_token_hash(&self, h: &str) -> Result<(), StoreError> {
        self.db.put(TOKEN, h)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::{BrickRecord, VolumeRecord};

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
}
