//! Address lists of `auth.allow` / `auth.reject`: which client addresses may connect to a brick
//! (GlusterFS's `auth.addr` module). Each is a comma-separated list of addresses, globs on an
//! address's text (`192.168.1.*`), networks (`10.0.0.0/8`) or host names; `*` (the allow
//! default) is everyone. The brick applies them (brickd's `protocol::auth`); gatewayd checks
//! them when they are set.

use std::net::{IpAddr, ToSocketAddrs};

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

    /// The list as it was given (trimmed), for messages.
    pub fn text(&self) -> &str {
        &self.text
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
}
