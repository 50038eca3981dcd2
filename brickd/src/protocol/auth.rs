//! `auth.allow` / `auth.reject`: which client addresses may connect to a brick (GlusterFS's
//! `auth.addr` module). Each is a comma-separated list of addresses, globs on an address's
//! text (`192.168.1.*`), networks (`10.0.0.0/8`) or host names; `*` (the allow default) is
//! everyone. A client matched by reject is refused whatever allow says; with allow set, a
//! client it does not match is refused.

use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("{0:?} is not an address, a glob of one, a network (ADDR/BITS) or a host name")]
    Bad(String),
    #[error("{0:?}: the prefix length is more than the address has bits")]
    Prefix(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    Any,
    Addr(IpAddr),
    Net(IpAddr, u8),
    Glob(String),
    Host(String),
}

/// One list (`auth.allow` or `auth.reject`) as given, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrList {
    text: String,
    patterns: Vec<Pattern>,
}

fn parse_pattern(p: &str) -> Result<Pattern, AuthError> {
    let bad = || AuthError::Bad(p.to_string());
    if p == "*" {
        return Ok(Pattern::Any);
    }
    if let Ok(a) = p.parse::<IpAddr>() {
        return Ok(Pattern::Addr(a.to_canonical()));
    }
    if let Some((a, bits)) = p.split_once('/') {
        let a: IpAddr = a.parse().map_err(|_| bad())?;
        let bits: u8 = bits.parse().map_err(|_| bad())?;
        let max = if a.is_ipv4() { 32 } else { 128 };
        if bits > max {
            return Err(AuthError::Prefix(p.to_string()));
        }
        return Ok(Pattern::Net(a.to_canonical(), bits));
    }
    let addr_chars = |c: char| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '*' | '?');
    if p.contains(['*', '?']) && p.chars().all(addr_chars) {
        return Ok(Pattern::Glob(p.to_ascii_lowercase()));
    }
    let host_chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if !p.is_empty() && p.len() <= 253 && p.chars().all(host_chars) {
        return Ok(Pattern::Host(p.to_ascii_lowercase()));
    }
    Err(bad())
}

/// `*` and `?` over the whole text, as fnmatch without brackets.
fn glob(pat: &[u8], text: &[u8]) -> bool {
    match (pat.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pat[1..], text) || (!text.is_empty() && glob(pat, &text[1..])),
        (Some(b'?'), Some(_)) => glob(&pat[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob(&pat[1..], &text[1..]),
        _ => false,
    }
}

fn in_net(a: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl AddrList {
    /// Parses `a,b,c` (spaces around entries are allowed; empty means no entry).
    pub fn parse(text: &str) -> Result<AddrList, AuthError> {
        let patterns = text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(parse_pattern)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AddrList {
            text: text.trim().to_string(),
            patterns,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `addr` is on the list. Host names are resolved here, each time: a brick is
    /// connected to rarely, and a name's addresses may change.
    pub fn matches(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        let text = addr.to_string();
        self.patterns.iter().any(|p| match p {
            Pattern::Any => true,
            Pattern::Addr(a) => *a == addr,
            Pattern::Net(n, bits) => in_net(addr, *n, *bits),
            Pattern::Glob(g) => glob(g.as_bytes(), text.as_bytes()),
            Pattern::Host(h) => (h.as_str(), 0u16)
                .to_socket_addrs()
                .map(|mut it| it.any(|s| s.ip().to_canonical() == addr))
                .unwrap_or(false),
        })
    }
}

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
                self.reject.text
            ));
        }
        if !self.allow.is_empty() && !self.allow.matches(addr) {
            return Some(format!(
                "client address {addr} is not in the volume's auth.allow ({})",
                self.allow.text
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
                tracing::info!(file = %path.display(), allow = %r.allow.text, reject = %r.reject.text, "auth rules changed");
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
    fn lists_match_addresses_globs_networks() {
        let l = AddrList::parse("10.0.0.0/8, 192.168.1.*,127.0.0.1,::1").unwrap();
        assert!(l.matches(ip("10.1.2.3")));
        assert!(!l.matches(ip("11.1.2.3")));
        assert!(l.matches(ip("192.168.1.77")));
        assert!(!l.matches(ip("192.168.2.77")));
        assert!(l.matches(ip("127.0.0.1")));
        assert!(l.matches(ip("::ffff:127.0.0.1")));
        assert!(l.matches(ip("::1")));
        assert!(AddrList::parse("*").unwrap().matches(ip("8.8.8.8")));
        assert!(
            AddrList::parse("localhost")
                .unwrap()
                .matches(ip("127.0.0.1"))
        );
        assert!(AddrList::parse("10.0.0.0/33").is_err());
        assert!(AddrList::parse("a b").is_err());
        assert!(AddrList::parse("1.2.3.4/x").is_err());
        assert!(AddrList::parse("").unwrap().is_empty());
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
