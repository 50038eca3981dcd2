//! SMB shares and users kept by gatewayd, and the Samba that serves them.
//!
//! The state (shares, users) lives in the store; [`reconcile`] makes the running world match
//! it: a FUSE mount of each volume a share names (while the volume is started), smb.conf and
//! the accounts file under DATA/smb, and one smbd, started with the first share and stopped
//! with the last. It runs after every change and every few seconds, which also restarts an
//! smbd that died.

use crate::manager::{Manager, ManagerError};
use crate::smb_runtime::{Mounted, Running};
use crate::store::{SmbShareRecord, SmbUserRecord};
use protocols_smb::{Layout, Share, Smbd, Tools, User};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

type Result<T> = std::result::Result<T, ManagerError>;

fn layout(m: &Manager) -> Layout {
    Layout::new(m.cfg.data_dir.join("smb"))
}

/// `/a/b` for any spelling of a directory inside a volume; `..` is refused.
pub fn canonical_dir(path: &str) -> Result<String> {
    let parts =
        crate::volume::path_components(path, "share path").map_err(ManagerError::Invalid)?;
    Ok(format!("/{}", parts.join("/")))
}

fn enabled(m: &Manager) -> Result<std::net::SocketAddr> {
    m.cfg.smb_listen.ok_or_else(|| {
        ManagerError::Invalid(
            "SMB is off on this gateway (start it with --smb ADDR or set smb_listen)".into(),
        )
    })
}

fn tools(r: &mut Running) -> Result<Tools> {
    if let Some(t) = &r.tools {
        return Ok(t.clone());
    }
    let t = Tools::find()?;
    r.tools = Some(t.clone());
    Ok(t)
}

pub async fn add_share(m: &Manager, mut s: SmbShareRecord) -> Result<SmbShareRecord> {
    enabled(m)?;
    protocols_smb::check_share_name(&s.name)?;
    s.path = canonical_dir(&s.path)?;
    m.get(&s.volume)?;
    let users = m.store.smb_users()?;
    for u in &s.users {
        if !users.iter().any(|k| &k.name == u) {
            return Err(ManagerError::NoSuchUser(u.clone()));
        }
    }
    let shares = m.store.smb_shares()?;
    if shares.iter().any(|o| o.name.eq_ignore_ascii_case(&s.name)) {
        return Err(ManagerError::Exists(format!("SMB share {}", s.name)));
    }
    // Refuse before recording when Samba is missing: a share nobody can reach is a trap.
    tools(&mut *m.smb.inner.lock().await)?;
    m.store
        .put_smb_share(&s, &format!("smb share add {}", s.name))?;
    if let Err(e) = reconcile(m).await {
        // A share the caller was told failed must not be served later behind its back.
        m.store
            .delete_smb_share(&s.name, &format!("smb share add {} undone: {e}", s.name))?;
        if let Err(again) = reconcile(m).await {
            tracing::warn!("SMB after undoing share {}: {again}", s.name);
        }
        return Err(e);
    }
    Ok(s)
}

pub async fn remove_share(m: &Manager, name: &str) -> Result<SmbShareRecord> {
    let s = m
        .store
        .smb_shares()?
        .into_iter()
        .find(|s| s.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| ManagerError::NoSuchShare(name.into()))?;
    m.store
        .delete_smb_share(&s.name, &format!("smb share remove {}", s.name))?;
    reconcile(m).await?;
    Ok(s)
}

fn users_of(records: &[SmbUserRecord]) -> Vec<User> {
    records
        .iter()
        .map(|u| User {
            name: u.name.clone(),
            uid: u.uid,
        })
        .collect()
}

/// Adds an SMB user, or with `replace` sets the password of one that exists.
pub async fn set_user(
    m: &Manager,
    name: &str,
    password: &str,
    replace: bool,
) -> Result<SmbUserRecord> {
    enabled(m)?;
    protocols_smb::check_user_name(name)?;
    protocols_smb::check_password(password)?;
    let mut r = m.smb.inner.lock().await;
    let t = tools(&mut r)?;
    let mut users = m.store.smb_users()?;
    let existing = users.iter().find(|u| u.name == name).cloned();
    let user = match (existing, replace) {
        (Some(_), false) => return Err(ManagerError::Exists(format!("SMB user {name}"))),
        (None, true) => return Err(ManagerError::NoSuchUser(name.into())),
        (Some(u), true) => u,
        (None, false) => {
            let uid = users
                .iter()
                .map(|u| u.uid + 1)
                .max()
                .unwrap_or(protocols_smb::FIRST_UID);
            let u = SmbUserRecord {
                name: name.into(),
                uid,
            };
            users.push(u.clone());
            u
        }
    };
    let l = layout(m);
    l.prepare()?;
    protocols_smb::write_accounts(&l, &users_of(&users))?;
    if !l.conf().exists() {
        // smbpasswd reads smb.conf to find the password database.
        let text = protocols_smb::render_conf(&l, enabled(m)?, &[])?;
        protocols_smb::write_conf(&l, &text)?;
    }
    t.set_password(&l, name, password).await?;
    if m.cluster.is_some() {
        // The other nodes of the pool give their Samba the same password (`sync_passwords`).
        let h = nt_hash(password);
        m.store.put_meta(
            &format!("{SMB_SECRET}{name}"),
            &SmbSecret { nt_hash: h.clone() },
        )?;
        r.passwords.insert(name.to_string(), h);
    }
    if !replace {
        m.store
            .put_smb_user(&user, &format!("smb user add {name}"))?;
    } else {
        m.store.log_action(&format!("smb user passwd {name}"))?;
    }
    tracing::info!(user = %name, "SMB user {}", if replace { "password set" } else { "added" });
    Ok(user)
}

pub async fn remove_user(m: &Manager, name: &str) -> Result<SmbUserRecord> {
    let users = m.store.smb_users()?;
    let u = users
        .iter()
        .find(|u| u.name == name)
        .cloned()
        .ok_or_else(|| ManagerError::NoSuchUser(name.into()))?;
    if let Some(s) = m
        .store
        .smb_shares()?
        .into_iter()
        .find(|s| s.users.iter().any(|x| x == name))
    {
        return Err(ManagerError::Invalid(format!(
            "SMB share {} lists user {name}; remove the share or its user list first",
            s.name
        )));
    }
    let mut r = m.smb.inner.lock().await;
    let l = layout(m);
    if let Ok(t) = tools(&mut r)
        && let Err(e) = t.delete_user(&l, name).await
    {
        tracing::warn!(user = %name, "removing from Samba's password database: {e}");
    }
    m.store
        .delete_smb_user(name, &format!("smb user remove {name}"))?;
    if m.cluster.is_some() {
        m.store.delete_meta(&format!("{SMB_SECRET}{name}"))?;
        r.passwords.remove(name);
    }
    let rest: Vec<SmbUserRecord> = users.into_iter().filter(|x| x.name != name).collect();
    if l.root().exists() {
        protocols_smb::write_accounts(&l, &users_of(&rest))?;
    }
    Ok(u)
}

/// Where a pool keeps an SMB user's NT hash: what Samba checks logins against, so each node's
/// Samba can hold it. It is password-equivalent, as the S3 secrets next to it are; the API
/// never shows it.
const SMB_SECRET: &str = "smbsecret/";

#[derive(serde::Serialize, serde::Deserialize)]
struct SmbSecret {
    nt_hash: String,
}

/// The NT hash of a password: MD4 of its UTF-16LE form, in hex (what `pdbedit --set-nt-hash`
/// takes).
fn nt_hash(password: &str) -> String {
    use md4::Digest;
    let utf16: Vec<u8> = password.encode_utf16().flat_map(u16::to_le_bytes).collect();
    hex::encode_upper(md4::Md4::digest(&utf16))
}

/// Gives this node's Samba the passwords users were given on other nodes of the pool.
async fn sync_passwords(
    m: &Manager,
    t: &Tools,
    l: &protocols_smb::Layout,
    users: &[SmbUserRecord],
    applied: &mut std::collections::HashMap<String, String>,
) {
    for u in users {
        let Ok(Some(s)) = m
            .store
            .get_meta::<SmbSecret>(&format!("{SMB_SECRET}{}", u.name))
        else {
            continue;
        };
        if applied.get(&u.name) == Some(&s.nt_hash) {
            continue;
        }
        let throwaway = hex::encode(rand::random::<[u8; 16]>());
        match t.set_nt_hash(l, &u.name, &s.nt_hash, &throwaway).await {
            Ok(()) => {
                tracing::info!(user = %u.name, "SMB password taken from the pool");
                applied.insert(u.name.clone(), s.nt_hash);
            }
            Err(e) => tracing::warn!(user = %u.name, "SMB password from the pool: {e}"),
        }
    }
}

/// Makes mounts, smb.conf and smbd match the recorded shares and the started volumes.
pub async fn reconcile(m: &Manager) -> Result<()> {
    let Some(listen) = m.cfg.smb_listen else {
        return Ok(());
    };
    let shares = m.store.smb_shares()?;
    let mut r = m.smb.inner.lock().await;
    if shares.is_empty() && r.smbd.is_none() && r.mounts.is_empty() {
        return Ok(());
    }
    let l = layout(m);
    let t = tools(&mut r)?;
    l.prepare()?;

    // The volumes to mount: those a share names that are started.
    let mut wanted: HashSet<String> = HashSet::new();
    for s in &shares {
        if m.graph(&s.volume).is_some() {
            wanted.insert(s.volume.clone());
        }
    }
    let stale: Vec<String> = r
        .mounts
        .keys()
        .filter(|v| !wanted.contains(*v))
        .cloned()
        .collect();
    for v in stale {
        if let Some(mt) = r.mounts.remove(&v) {
            let res = tokio::task::spawn_blocking(move || mt.handle.unmount()).await;
            if let Ok(Err(e)) = res {
                tracing::warn!(volume = %v, "unmounting the SMB mount: {e}");
            }
        }
    }
    for v in &wanted {
        if r.mounts.contains_key(v) {
            continue;
        }
        let dir = l.mounts().join(v);
        let d2 = dir.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            crate::mounts::clear_stale_mount(&d2);
            std::fs::create_dir_all(&d2)
        })
        .await
        .map_err(|e| ManagerError::Invalid(format!("preparing {}: {e}", dir.display())))?;
        prepared.map_err(|e| ManagerError::Io(dir.display().to_string(), e))?;
        let Some(me) = m.arc() else {
            return Ok(());
        };
        match protocols_fuse::mount(
            crate::mounts::VolumeTop::top_of(&me, v),
            &dir,
            m.cfg.fuse_options(v, "smb"),
            tokio::runtime::Handle::current(),
        ) {
            Ok(handle) => {
                if let Some(inv) = handle.invalidator() {
                    crate::mounts::follow_upcalls(&me, v, inv);
                }
                r.mounts.insert(v.clone(), Mounted { handle });
            }
            Err(e) => tracing::error!(volume = %v, "FUSE mount for SMB: {e}"),
        }
    }

    // Shares whose volume is mounted, each directory made if missing.
    let mut active = Vec::new();
    for s in &shares {
        let Some(mt) = r.mounts.get(&s.volume) else {
            tracing::warn!(share = %s.name, volume = %s.volume, "SMB share not served: its volume is not started");
            continue;
        };
        let dir: PathBuf = mt.handle.mountpoint().join(s.path.trim_start_matches('/'));
        let d2 = dir.clone();
        // On our own FUSE mount: a blocking thread, never a runtime worker the mount needs.
        // A share stays served when this fails: the cause (a brick down for a moment) passes,
        // and dropping the share would stop smbd under every other share's clients too.
        match tokio::task::spawn_blocking(move || std::fs::create_dir_all(&d2)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(share = %s.name, dir = %dir.display(), "SMB share directory: {e}")
            }
            Err(e) => tracing::warn!(share = %s.name, "SMB share directory: {e}"),
        }
        active.push(Share {
            name: s.name.clone(),
            path: dir,
            read_only: s.read_only,
            users: s.users.clone(),
        });
    }

    let users = m.store.smb_users()?;
    protocols_smb::write_accounts(&l, &users_of(&users))?;
    let text = protocols_smb::render_conf(&l, listen, &active)?;
    let changed = protocols_smb::write_conf(&l, &text)?;
    if m.cluster.is_some() {
        sync_passwords(m, &t, &l, &users, &mut r.passwords).await;
    }
    if active.is_empty() {
        if let Some(s) = r.smbd.take() {
            s.stop().await;
        }
        return Ok(());
    }
    let alive = r.smbd.as_mut().is_some_and(|s| s.running());
    match r.smbd.as_ref() {
        Some(s) if alive => {
            if changed {
                s.reload();
            }
        }
        _ => {
            if let Some(dead) = r.smbd.take() {
                tracing::warn!(log = %l.log().display(), said = %dead.last_words(), "smbd exited; starting it again");
            }
            protocols_smb::kill_stale(&l);
            // The port picked at start is smbd's to bind now.
            r.reserved = None;
            // Another server on the port (a host's own Samba) would answer our readiness check
            // and leave our smbd failing behind it: say so instead.
            if let Err(e) = std::net::TcpListener::bind(listen) {
                return Err(ManagerError::Invalid(format!(
                    "SMB cannot listen on {listen}: {e} (is another Samba running? set --smb or smb_listen)"
                )));
            }
            let mut smbd = Smbd::start(&t, &l, crate::supervisor::spawn_kept).await?;
            let ready = smbd.wait_listening(listen, Duration::from_secs(20)).await;
            r.smbd = Some(smbd);
            ready?;
        }
    }
    Ok(())
}

/// A port on `ip` for smbd, which binds it itself when the first share appears: held until
/// then by the socket returned, bound but not listening (a client is refused, not left
/// hanging). It is taken below the kernel's ephemeral range, which every bind to port 0 (a
/// brickd's, another gateway's) and every outgoing connection draws from, so none of them
/// takes it between this socket's close and smbd's bind, or while smbd is down between a
/// crash and its restart.
pub fn reserve_port(ip: std::net::IpAddr) -> std::io::Result<(u16, tokio::net::TcpSocket)> {
    const LOWEST: u16 = 10_000;
    let socket = || {
        if ip.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
    };
    let ephemeral_from = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral_from > LOWEST {
        for _ in 0..64 {
            let port = LOWEST + rand::random::<u16>() % (ephemeral_from - LOWEST);
            let s = socket()?;
            if s.bind((ip, port).into()).is_ok() {
                return Ok((port, s));
            }
        }
    }
    let s = socket()?;
    s.bind((ip, 0).into())?;
    Ok((s.local_addr()?.port(), s))
}

/// Stops smbd and the SMB mounts (the shares stay recorded for the next start).
pub async fn stop(m: &Manager) {
    let mut r = m.smb.inner.lock().await;
    if let Some(s) = r.smbd.take() {
        s.stop().await;
    }
    for (v, mt) in r.mounts.drain() {
        let res = tokio::task::spawn_blocking(move || mt.handle.unmount()).await;
        if let Ok(Err(e)) = res {
            tracing::warn!(volume = %v, "unmounting the SMB mount: {e}");
        }
    }
}

/// Keeps SMB in step with volume starts and stops and restarts an smbd that died.
pub fn start(m: &Arc<Manager>) -> Option<tokio::task::JoinHandle<()>> {
    m.cfg.smb_listen?;
    let m = m.clone();
    Some(tokio::spawn(async move {
        loop {
            if let Err(e) = reconcile(&m).await {
                tracing::error!("SMB: {e}");
            }
            tokio::select! {
                _ = m.smb_changed.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn nt_hashes_are_md4_of_utf16le() {
        // The NT hash of "password", as every Samba and Windows computes it.
        assert_eq!(
            super::nt_hash("password"),
            "8846F7EAEE8FB117AD06BDD830B7586C"
        );
    }

    #[tokio::test]
    async fn the_smb_port_is_held_outside_the_ephemeral_range_until_smbd_takes_it() {
        let ip: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let (port, held) = super::reserve_port(ip).unwrap();
        let ephemeral_from: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(port < ephemeral_from, "{port} is in the ephemeral range");
        // Nobody binds it while it is held, and nothing listens on it meanwhile.
        assert!(std::net::TcpListener::bind((ip, port)).is_err());
        assert!(std::net::TcpStream::connect((ip, port)).is_err());
        drop(held);
        std::net::TcpListener::bind((ip, port)).unwrap();
    }
}
