//! `auth.allow` / `auth.reject`: which client addresses may connect to a brick (GlusterFS's
//! `auth.addr` module). Each is a comma-separated list of addresses, globs on an address's
//! text (`192.168.1.*`), networks (`10.0.0.0/8`) or host names; `*` (the allow default) is
//! everyone. A client matched by reject is refused whatever allow says; with allow set, a
//! client it does not match is refused.

pub use engine::addr_list::{AddrList, AuthError};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// A brick's `auth.allow` and `auth.reject`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthRules {
    pub allow: AddrList,
    pub reject: AddrList,
}

impl AuthRules {
    /// Why `addr` may not connect, or None when it may. Reject wins over allow.
    pub fn refusal(&self, addr: IpAddr) -> Option<String> {
        let addr = addr.to_canonical();
        if self.reject.matches(addr) {
            return Some(format!(
                "client address {addr} is rejected by the volume's auth.reject ({})",
                self.reject.text()
            ));
        }
        if !self.allow.is_empty() && !self.allow.matches(addr) {
            return Some(format!(
                "client address {addr} is not in the volume's auth.allow ({})",
                self.allow.text()
            ));
        }
        None
    }

    /// Reads an auth file: lines `auth.allow LIST` and `auth.reject LIST` (as `volume set`
    /// takes them); blank lines and `#` comments are skipped, a missing file is no rules.
    pub fn load(path: &Path) -> Result<AuthRules, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AuthRules::default()),
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        let mut r = AuthRules::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let list = AddrList::parse(value)
                .map_err(|e| format!("{}:{}: {key}: {e}", path.display(), n + 1))?;
            match key {
                "auth.allow" => r.allow = list,
                "auth.reject" => r.reject = list,
                k => return Err(format!("{}:{}: unknown key {k}", path.display(), n + 1)),
            }
        }
        Ok(r)
    }
}

/// Where a brick's rules come from: fixed at start, or an auth file that gatewayd rewrites
/// on `volume set`. The file is looked at whenever a client connects (so a `volume set` that
/// returned applies to the next connection) and every second (so connected clients that are
/// no longer allowed are cut off, as GlusterFS's brick does on reconfigure).
pub struct AuthSource {
    file: Option<PathBuf>,
    state: parking_lot::Mutex<(Option<(SystemTime, u64)>, AuthRules)>,
    /// Bumped each time the rules change; connections watch it.
    changed: watch::Sender<u64>,
}

fn stamp(p: &Path) -> Option<(SystemTime, u64)> {
    std::fs::metadata(p)
        .ok()
        .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
}

impl AuthSource {
    /// Rules that never change.
    pub fn fixed(rules: AuthRules) -> Arc<AuthSource> {
        Arc::new(AuthSource {
            file: None,
            state: parking_lot::Mutex::new((None, rules)),
            changed: watch::channel(0).0,
        })
    }

    /// The rules of `path` (`initial` until the file exists), kept current by a task that
    /// looks at it every second.
    pub fn watch_file(path: PathBuf, initial: AuthRules) -> Arc<AuthSource> {
        let src = Arc::new(AuthSource {
            file: Some(path),
            state: parking_lot::Mutex::new((None, initial)),
            changed: watch::channel(0).0,
        });
        src.refresh();
        let weak = Arc::downgrade(&src);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(src) = weak.upgrade() else { return };
                let s = src.clone();
                let _ = tokio::task::spawn_blocking(move || s.refresh()).await;
            }
        });
        src
    }

    /// Reads the file again if it changed. A file that cannot be read or parsed keeps the
    /// rules in force (and says why); a removed one means no rules.
    fn refresh(&self) {
        let Some(path) = &self.file else { return };
        let now = stamp(path);
        let mut st = self.state.lock();
        if st.0 == now && now.is_some() {
            return;
        }
        // Absent before and now: nothing to read.
        let still_absent = st.0.is_none() && now.is_none();
        st.0 = now;
        if still_absent {
            return;
        }
        match AuthRules::load(path) {
            Ok(r) if r != st.1 => {
                tracing::info!(file = %path.display(), allow = %r.allow.text(), reject = %r.reject.text(), "auth rules changed");
                st.1 = r;
                self.changed.send_modify(|g| *g += 1);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("keeping the auth rules in force: {e}"),
        }
    }

    /// The rules in force now (the file read again first if it changed). Blocks: call it off
    /// the async threads.
    pub fn current(&self) -> AuthRules {
        self.refresh();
        self.state.lock().1.clone()
    }

    /// Notified each time the rules change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn reject_wins_and_allow_limits() {
        let r = AuthRules {
            allow: AddrList::parse("127.0.0.*").unwrap(),
            reject: AddrList::parse("127.0.0.2").unwrap(),
        };
        assert_eq!(r.refusal(ip("127.0.0.1")), None);
        assert!(r.refusal(ip("127.0.0.2")).unwrap().contains("auth.reject"));
        assert!(r.refusal(ip("10.0.0.1")).unwrap().contains("auth.allow"));
        assert_eq!(AuthRules::default().refusal(ip("1.2.3.4")), None);
    }

    #[test]
    fn files_are_read_and_a_missing_one_is_no_rules() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("auth");
        assert_eq!(AuthRules::load(&p).unwrap(), AuthRules::default());
        std::fs::write(&p, "# rules\nauth.reject 127.0.0.1\nauth.allow *\n").unwrap();
        let r = AuthRules::load(&p).unwrap();
        assert!(r.refusal(ip("127.0.0.1")).is_some());
        assert!(r.refusal(ip("10.0.0.1")).is_none());
        std::fs::write(&p, "auth.bogus 1\n").unwrap();
        assert!(AuthRules::load(&p).unwrap_err().contains("unknown key"));
    }
}
