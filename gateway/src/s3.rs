//! S3 keys kept by gatewayd, and the S3 endpoint over the configured volume.

use crate::manager::{Manager, ManagerError};
use crate::store::{S3Key, Store};
use anyhow::Context;
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

pub fn create_key(store: &Store, name: &str) -> Result<S3Key, ManagerError> {
    crate::volume::check_name(name)?;
    if store.s3_keys()?.iter().any(|k| k.name == name) {
        return Err(ManagerError::Exists(format!("S3 key {name}")));
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
    };
    store.put_s3_key(&key, &format!("s3 key create {name} ({})", key.access_key))?;
    Ok(key)
}

/// Deletes a key given its name or its access key id.
pub fn delete_key(store: &Store, which: &str) -> Result<S3Key, ManagerError> {
    let k = store
        .s3_keys()?
        .into_iter()
        .find(|k| k.name == which || k.access_key == which)
        .ok_or_else(|| ManagerError::NoSuchKey(which.to_string()))?;
    store.delete_s3_key(
        &k.access_key,
        &format!("s3 key delete {} ({})", k.name, k.access_key),
    )?;
    Ok(k)
}

pub fn public(k: &S3Key) -> serde_json::Value {
    serde_json::json!({ "name": k.name, "access_key": k.access_key, "created": k.created })
}

struct StoreKeys(Arc<Manager>);

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
    let url = format!("http://{}", listener.local_addr()?);
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
        if let Err(e) = protocols_s3::serve(listener, svc, &volume).await {
            tracing::error!("S3 server stopped: {e}");
        }
    });
    tracing::info!(s3 = %url, volume = %m.cfg.s3_volume, "S3 listening");
    Ok(Some((url, task)))
}
