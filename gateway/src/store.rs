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
const LOG: &str = "log/";
const TOKEN: &str = "meta/admin-token-sha256";
/// S3 keys by access key id. The secret is kept as it is: SigV4 needs it to check signatures.
const S3KEY: &str = "s3key/";

/// NFS exports by path (`/vol`, `/vol/sub/dir`).
const NFSEXPORT: &str = "nfsexport/";

/// An NFS export as configured with `gwctl nfs export add`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
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

fn nobody() -> u32 {
    65534
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct S3Key {
    pub name: String,
    pub access_key: String,
    pub secret_key: String,
    pub created: u64,
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

    pub fn volume(&self, name: &str) -> Result<Option<VolumeRecord>, StoreError> {
        self.get_json(&format!("{VOL}{name}"))
    }

    pub fn volumes(&self) -> Result<Vec<VolumeRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.prefix_iterator(VOL) {
            let (k, v) = item?;
            if !k.starts_with(VOL.as_bytes()) {
                break;
            }
            let key = String::from_utf8_lossy(&k).into_owned();
            out.push(serde_json::from_slice(&v).map_err(|err| StoreError::Decode { key, err })?);
        }
        Ok(out)
    }

    /// Writes the volume and a log line in one batch: the log never claims what did not happen.
    pub fn put_volume(&self, v: &VolumeRecord, what: &str) -> Result<(), StoreError> {
        let mut b = WriteBatch::default();
        b.put(
            format!("{VOL}{}", v.name),
            serde_json::to_vec(v).expect("records serialize"),
        );
        self.log_into(&mut b, what);
        self.db.write(b)?;
        Ok(())
    }

    pub fn delete_volume(&self, name: &str, what: &str) -> Result<(), StoreError> {
        let mut b = WriteBatch::default();
        b.delete(format!("{VOL}{name}"));
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
        let mut out = Vec::new();
        for item in self.db.prefix_iterator(S3KEY) {
            let (k, v) = item?;
            if !k.starts_with(S3KEY.as_bytes()) {
                break;
            }
            let key = String::from_utf8_lossy(&k).into_owned();
            out.push(serde_json::from_slice(&v).map_err(|err| StoreError::Decode { key, err })?);
        }
        Ok(out)
    }

    pub fn put_s3_key(&self, k: &S3Key, what: &str) -> Result<(), StoreError> {
        let mut b = WriteBatch::default();
        b.put(
            format!("{S3KEY}{}", k.access_key),
            serde_json::to_vec(k).expect("records serialize"),
        );
        self.log_into(&mut b, what);
        self.db.write(b)?;
        Ok(())
    }

    pub fn delete_s3_key(&self, access_key: &str, what: &str) -> Result<(), StoreError> {
        let mut b = WriteBatch::default();
        b.delete(format!("{S3KEY}{access_key}"));
        self.log_into(&mut b, what);
        self.db.write(b)?;
        Ok(())
    }

    pub fn nfs_exports(&self) -> Result<Vec<NfsExportRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.prefix_iterator(NFSEXPORT) {
            let (k, v) = item?;
            if !k.starts_with(NFSEXPORT.as_bytes()) {
                break;
            }
            let key = String::from_utf8_lossy(&k).into_owned();
            out.push(serde_json::from_slice(&v).map_err(|err| StoreError::Decode { key, err })?);
        }
        Ok(out)
    }

    pub fn put_nfs_export(&self, e: &NfsExportRecord, what: &str) -> Result<(), StoreError> {
        let mut b = WriteBatch::default();
        b.put(
            format!("{NFSEXPORT}{}", e.path),
            serde_json::to_vec(e).expect("records serialize"),
        );
        self.log_into(&mut b, what);
        self.db.write(b)?;
        Ok(())
    }

    pub fn delete_nfs_export(&self, path: &str, what: &str) -> Result<(), StoreError> {
        let mut b = WriteBatch::default();
        b.delete(format!("{NFSEXPORT}{path}"));
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
