//! S3 keys kept by gatewayd, and the S3 endpoint over the configured volume.

use crate::manager::{Manager, ManagerError};
use crate::store::{S3Key, Store};
use anyhow::Context;
use protocols_s3::access::{BucketGrant, Identity};
use rand::Rng;
use std::sync::Arc;

/// Access key ids look like AWS's (20 upper-case letters and digits) so clients that check
/// their shape accept them; secrets are 40 characters of base64's alphabet, as AWS's are.
fn random_chars(n: usize, alphabet: &[u8]) -> String {
    let mut r = rand::thread_rng();
    (0..n)
        .map(|_| alphabet[r.gen_range(0..alphabet.len())] as char)
        .collect()
}

/// What a new key may do besides making and using its own buckets.
#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct KeyOptions {
    /// Sees and may do everything, on every bucket.
    #[serde(default)]
    pub admin: bool,
    /// For grants by email in ACLs.
    #[serde(default)]
    pub email: Option<String>,
    /// Owner uid and gid of the buckets the key makes (POSIX access over FUSE, NFS, SMB).
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
    /// Buckets it may use without owning them.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub grants: Vec<BucketGrant>,
}

fn check_grant(g: &BucketGrant) -> Result<(), ManagerError> {
    if g.bucket.is_empty() || g.bucket.contains('/') {
        return Err(ManagerError::Invalid(format!(
            "{:?} is not a bucket name",
            g.bucket
        )));
    }
    if !(g.read || g.write || g.owner) {
        return Err(ManagerError::Invalid(format!(
            "a grant on bucket {} needs --read, --write or --owner",
            g.bucket
        )));
    }
    Ok(())
}

pub fn create_key(store: &Store, name: &str, o: KeyOptions) -> Result<S3Key, ManagerError> {
    crate::volume::check_name(name)?;
    let keys = store.s3_keys()?;
    if keys.iter().any(|k| k.name == name) {
        return Err(ManagerError::Exists(format!("S3 key {name}")));
    }
    if let Some(e) = &o.email {
        if !e.contains('@') {
            return Err(ManagerError::Invalid(format!(
                "{e:?} is not an email address"
            )));
        }
        if keys.iter().any(|k| k.email.as_deref() == Some(e.as_str())) {
            return Err(ManagerError::Exists(format!("an S3 key with email {e}")));
        }
    }
    for g in &o.grants {
        check_grant(g)?;
    }
    let key = S3Key {
        name: name.to_string(),
        access_key: format!(
            "GK{}",
            random_chars(18, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        ),
        secret_key: random_chars(
            40,
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        ),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        id: random_chars(64, b"0123456789abcdef"),
        email: o.email,
        admin: o.admin,
        grants: o.grants,
        uid: o.uid,
        gid: o.gid.or(o.uid),
    };
    store.put_s3_key(&key, &format!("s3 key create {name} ({})", key.access_key))?;
    Ok(key)
}

fn find_key(store: &Store, which: &str) -> Result<S3Key, ManagerError> {
    store
        .s3_keys()?
        .into_iter()
        .find(|k| k.name == which || k.access_key == which)
        .ok_or_else(|| ManagerError::NoSuchKey(which.to_string()))
}

/// Lets key `which` use a bucket it does not own (replacing its grant on that bucket).
pub fn allow(store: &Store, which: &str, g: BucketGrant) -> Result<S3Key, ManagerError> {
    check_grant(&g)?;
    let mut k = find_key(store, which)?;
    k.grants.retain(|x| x.bucket != g.bucket);
    let what = format!(
        "s3 key allow {} on {} (read {}, write {}, owner {})",
        k.name, g.bucket, g.read, g.write, g.owner
    );
    k.grants.push(g);
    store.put_s3_key(&k, &what)?;
    Ok(k)
}

/// Takes back key `which`'s grant on `bucket`.
pub fn deny(store: &Store, which: &str, bucket: &str) -> Result<S3Key, ManagerError> {
    let mut k = find_key(store, which)?;
    let before = k.grants.len();
    k.grants.retain(|x| x.bucket != bucket);
    if k.grants.len() == before {
        return Err(ManagerError::Invalid(format!(
            "S3 key {} has no grant on bucket {bucket}",
            k.name
        )));
    }
    store.put_s3_key(&k, &format!("s3 key deny {} on {bucket}", k.name))?;
    Ok(k)
}

/// Deletes a key given its name or its access key id.
pub fn delete_key(store: &Store, which: &str) -> Result<S3Key, ManagerError> {
    let k = find_key(store, which)?;
    store.delete_s3_key(
        &k.access_key,
        &format!("s3 key delete {} ({})", k.name, k.access_key),
    )?;
    Ok(k)
}

/// A key as the API shows it: everything but its secret.
pub fn public(k: &S3Key) -> serde_json::Value {
    serde_json::json!({
        "name": k.name,
        "access_key": k.access_key,
        "canonical_id": k.canonical_id(),
        "email": k.email,
        "admin": k.admin,
        "grants": k.grants,
        "uid": k.uid,
        "gid": k.gid,
        "created": k.created,
    })
}

fn identity(k: &S3Key) -> Identity {
    Identity {
        access_key: k.access_key.clone(),
        id: k.canonical_id(),
        display_name: k.name.clone(),
        email: k.email.clone(),
        admin: k.admin,
        grants: k.grants.clone(),
        owner_ids: k.uid.map(|u| (u, k.gid.unwrap_or(u))),
    }
}

struct StoreKeys(Arc<Manager>);

impl StoreKeys {
    fn keys(&self) -> Vec<S3Key> {
        self.0.store.s3_keys().unwrap_or_else(|e| {
            tracing::error!("reading S3 keys: {e}");
            Vec::new()
        })
    }
}

impl protocols_s3::KeySource for StoreKeys {
    fn secret(&self, access_key: &str) -> Option<String> {
        match self.0.store.s3_key(access_key) {
            Ok(k) => k.map(|k| k.secret_key),
            Err(e) => {
                tracing::error!("reading S3 keys: {e}");
                None
            }
        }
    }

    fn identity(&self, access_key: &str) -> Option<Identity> {
        match self.0.store.s3_key(access_key) {
            Ok(k) => k.as_ref().map(identity),
            Err(e) => {
                tracing::error!("reading S3 keys: {e}");
                None
            }
        }
    }

    fn by_id(&self, id: &str) -> Option<Identity> {
        self.keys()
            .iter()
            .find(|k| k.canonical_id() == id)
            .map(identity)
    }

    fn by_email(&self, email: &str) -> Option<Identity> {
        self.keys()
            .iter()
            .find(|k| k.email.as_deref() == Some(email))
            .map(identity)
    }
}

/// Starts the S3 endpoint if one is configured; returns its URL.
pub async fn start(
    m: &Arc<Manager>,
) -> anyhow::Result<Option<(String, tokio::task::JoinHandle<()>)>> {
    let Some(addr) = m.cfg.s3_listen else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening for S3 on {addr}"))?;
    let tls = match m.cfg.s3_tls() {
        Some((cert, key)) => Some(
            crate::tls::acceptor(cert, key).with_context(|| format!("HTTPS for S3 on {addr}"))?,
        ),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr()?);
    let vol = m.cfg.s3_volume.clone();
    let mm = m.clone();
    let svc = protocols_s3::service(protocols_s3::Config {
        volume: Arc::new(move || mm.graph(&vol).map(|g| g.top())),
        keys: Arc::new(StoreKeys(m.clone())),
        domain: m.cfg.s3_domain.clone(),
        region: m.cfg.s3_region.clone(),
    });
    let volume = m.cfg.s3_volume.clone();
    let task = tokio::spawn(async move {
        let r = match tls {
            Some(acceptor) => {
                let app = protocols_s3::router(svc, &volume);
                crate::tls::serve_https(listener, acceptor, app).await
            }
            None => protocols_s3::serve(listener, svc, &volume).await,
        };
        if let Err(e) = r {
            tracing::error!("S3 server stopped: {e}");
        }
    });
    tracing::info!(s3 = %url, volume = %m.cfg.s3_volume, "S3 listening");
    Ok(Some((url, task)))
}
