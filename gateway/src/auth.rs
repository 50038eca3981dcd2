//! Who may use the API. gwctl and scripts send a bearer token: the admin token of
//! DATA/admin.token or a named API token (`gwctl token create`). The console logs in as
//! `admin` with a password and then holds a session cookie (HttpOnly, SameSite=Strict,
//! Secure); every change it asks for must carry the session's CSRF token in the
//! `X-CSRF-Token` header, which a form or a script on another site cannot send.
//!
//! Sessions live in memory: a restart of gatewayd logs the console out, nothing else.

use crate::store::{ApiTokenRecord, Store, StoreError};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use dashmap::DashMap;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const SESSION_COOKIE: &str = "gw_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const ADMIN_USER: &str = "admin";
/// A console left alone this long must log in again.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares in time independent of where the strings differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::Rng::fill(&mut rand::thread_rng(), &mut b[..]);
    hex::encode(b)
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("hashing the password: {0}")]
    Hash(String),
    #[error("a password needs at least 10 characters")]
    WeakPassword,
}

pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    rand::Rng::fill(&mut rand::thread_rng(), &mut salt[..]);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

pub fn verify_password(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

pub fn check_new_password(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < 10 {
        return Err(AuthError::WeakPassword);
    }
    Ok(())
}

/// The admin password on first start: `given` (from --admin-password-file) or a random one,
/// returned so the caller prints it once. A later start with `given` replaces it.
pub fn ensure_admin_password(
    store: &Store,
    given: Option<&str>,
) -> Result<Option<String>, AuthError> {
    let p = plan_admin_password(store, given)?;
    if let Some(p) = &p {
        keep_admin_password(store, p)?;
    }
    Ok(p)
}

/// The first half of [`ensure_admin_password`]: applies `given` at once, and returns the
/// random password a first start makes *without keeping it*, so a start that fails before
/// it can print the password leaves none behind (the next start makes and prints another).
/// Keep it with [`keep_admin_password`] once the start succeeded.
pub fn plan_admin_password(
    store: &Store,
    given: Option<&str>,
) -> Result<Option<String>, AuthError> {
    if let Some(p) = given {
        check_new_password(p)?;
        store.set_admin_password_hash(&hash_password(p)?, "admin password set from a file")?;
        return Ok(None);
    }
    if store.admin_password_hash()?.is_some() {
        return Ok(None);
    }
    Ok(Some(random_hex(12)))
}

/// Keeps a first start's password unless another node of the pool made one meanwhile:
/// `Ok(false)` then, and this one must not be shown.
pub fn keep_admin_password(store: &Store, password: &str) -> Result<bool, AuthError> {
    Ok(store.create_admin_password_hash(&hash_password(password)?, "admin password created")?)
}

/// A new random admin password, kept (`gatewayd reset-admin`); returned to be shown once.
pub fn reset_admin_password(store: &Store, what: &str) -> Result<String, AuthError> {
    let p = random_hex(12);
    store.set_admin_password_hash(&hash_password(&p)?, what)?;
    Ok(p)
}

/// A new named API token: the record to store and the token to show once.
pub fn new_api_token(name: &str) -> (ApiTokenRecord, String) {
    let token = format!("gwt_{}", random_hex(24));
    (
        ApiTokenRecord {
            name: name.into(),
            sha256: token_hash(&token),
            created: now_secs(),
        },
        token,
    )
}

pub struct Session {
    pub user: String,
    pub csrf: String,
    last_used: AtomicU64,
}

/// Console sessions by id (the cookie's value). In a pool they are also kept in etcd (by the
/// id's hash, never the id), so a login on one node's console holds on every node's.
#[derive(Default)]
pub struct Sessions {
    by_id: DashMap<String, std::sync::Arc<Session>>,
    shared: std::sync::OnceLock<std::sync::Arc<crate::cluster::etcd::Etcd>>,
}

/// Where a pool keeps a session: its id's SHA-256, then the user and CSRF token.
const SESSION: &str = "session/";

#[derive(serde::Serialize, serde::Deserialize)]
struct SharedSession {
    user: String,
    csrf: String,
}

impl Sessions {
    /// A new session: (id for the cookie, CSRF token for the page).
    /// Keeps sessions in the pool's etcd too.
    pub fn share(&self, etcd: std::sync::Arc<crate::cluster::etcd::Etcd>) {
        let _ = self.shared.set(etcd);
    }

    fn shared_write(&self, op: crate::cluster::etcd::Op) {
        if let Some(e) = self.shared.get()
            && let Err(err) = e.write(vec![op], Vec::new())
        {
            tracing::warn!("console session not shared with the pool: {err}");
        }
    }

    pub fn create(&self, user: &str) -> (String, String) {
        self.expire();
        let id = random_hex(32);
        let csrf = random_hex(32);
        self.shared_write(crate::cluster::etcd::Op::Put(
            format!("{SESSION}{}", token_hash(&id)),
            serde_json::to_vec(&SharedSession {
                user: user.into(),
                csrf: csrf.clone(),
            })
            .expect("sessions serialize"),
        ));
        self.by_id.insert(
            id.clone(),
            std::sync::Arc::new(Session {
                user: user.into(),
                csrf: csrf.clone(),
                last_used: AtomicU64::new(now_secs()),
            }),
        );
        (id, csrf)
    }

    /// The live session with this id, its idle clock restarted.
    pub fn get(&self, id: &str) -> Option<std::sync::Arc<Session>> {
        let s = match self.by_id.get(id).map(|s| s.clone()) {
            // Ended on another node of the pool (logout, a new admin password).
            Some(_)
                if self
                    .shared
                    .get()
                    .is_some_and(|e| e.get(&format!("{SESSION}{}", token_hash(id))).is_none()) =>
            {
                self.by_id.remove(id);
                return None;
            }
            Some(s) => s,
            None => {
                // Made on another node of the pool.
                let e = self.shared.get()?;
                let v = e.get(&format!("{SESSION}{}", token_hash(id)))?;
                let sh: SharedSession = serde_json::from_slice(&v).ok()?;
                let s = std::sync::Arc::new(Session {
                    user: sh.user,
                    csrf: sh.csrf,
                    last_used: AtomicU64::new(now_secs()),
                });
                self.by_id.insert(id.to_string(), s.clone());
                s
            }
        };
        let now = now_secs();
        if now.saturating_sub(s.last_used.load(Ordering::Relaxed)) > SESSION_IDLE.as_secs() {
            self.by_id.remove(id);
            return None;
        }
        s.last_used.store(now, Ordering::Relaxed);
        Some(s)
    }

    pub fn remove(&self, id: &str) {
        self.by_id.remove(id);
        if self.shared.get().is_some() {
            self.shared_write(crate::cluster::etcd::Op::Delete(format!(
                "{SESSION}{}",
                token_hash(id)
            )));
        }
    }

    /// Ends every session (the admin password changed).
    pub fn clear(&self) {
        self.by_id.clear();
        if self.shared.get().is_some() {
            self.shared_write(crate::cluster::etcd::Op::DeletePrefix(SESSION.into()));
        }
    }

    fn expire(&self) {
        let now = now_secs();
        self.by_id.retain(|_, s| {
            now.saturating_sub(s.last_used.load(Ordering::Relaxed)) <= SESSION_IDLE.as_secs()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse battery "));
        assert!(!verify_password("not a hash", "x"));
        assert!(check_new_password("short").is_err());
    }

    #[test]
    fn sessions_carry_their_own_csrf_token_and_end_when_removed() {
        let s = Sessions::default();
        let (id, csrf) = s.create("admin");
        let (id2, csrf2) = s.create("admin");
        assert_ne!(id, id2);
        assert_ne!(csrf, csrf2);
        assert_eq!(s.get(&id).unwrap().csrf, csrf);
        s.remove(&id);
        assert!(s.get(&id).is_none());
        assert!(s.get(&id2).is_some());
        s.clear();
        assert!(s.get(&id2).is_none());
    }
}
