//! Volumes as gatewayd records them, brick specs, and the volfiles generated from them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrickRecord {
    pub host: String,
    pub path: String,
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub name: String,
    pub id: String,
    /// "distribute" for now; replicate and disperse come with their translators.
    pub kind: String,
    pub bricks: Vec<BrickRecord>,
    pub options: BTreeMap<String, String>,
    pub started: bool,
    /// The HMAC key of the brick handshake.
    pub secret: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("brick {0:?} is not HOST:/ABSOLUTE/PATH")]
    Malformed(String),
    #[error("volume name {0:?} must be 1–64 letters, digits, '-' or '_' and not start with '-'")]
    BadName(String),
    #[error("brick {0} is listed twice")]
    Duplicate(String),
    #[error("brick {0} is inside brick {1}")]
    Nested(String, String),
}

pub fn check_name(name: &str) -> Result<(), SpecError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(SpecError::BadName(name.to_string()))
    }
}

/// Parses `HOST:/PATH` brick specs; rejects duplicates and bricks nested in one another.
pub fn parse_bricks(specs: &[String]) -> Result<Vec<(String, String)>, SpecError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for s in specs {
        let (host, path) = s
            .split_once(":/")
            .ok_or_else(|| SpecError::Malformed(s.clone()))?;
        if host.is_empty() || host.contains('/') {
            return Err(SpecError::Malformed(s.clone()));
        }
        let path = normalize(&format!("/{path}"));
        if path == "/" || path.split('/').any(|c| c == "..") {
            return Err(SpecError::Malformed(s.clone()));
        }
        for (h, p) in &out {
            if h == host && *p == path {
                return Err(SpecError::Duplicate(s.clone()));
            }
            if h == host
                && (path.starts_with(&format!("{p}/")) || p.starts_with(&format!("{path}/")))
            {
                return Err(SpecError::Nested(s.clone(), format!("{h}:{p}")));
            }
        }
        out.push((host.to_string(), path));
    }
    Ok(out)
}

fn normalize(p: &str) -> String {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

pub fn is_local_host(host: &str) -> bool {
    if matches!(host, "localhost" | "127.0.0.1" | "::1") || host.starts_with("127.") {
        return true;
    }
    let mut buf = [0u8; 256];
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        if String::from_utf8_lossy(&buf[..end]) == host {
            return true;
        }
    }
    false
}

impl VolumeRecord {
    pub fn new(name: &str, bricks: Vec<BrickRecord>) -> VolumeRecord {
        VolumeRecord {
            name: name.to_string(),
            id: uuid::Uuid::new_v4().to_string(),
            kind: "distribute".into(),
            bricks,
            options: BTreeMap::new(),
            started: false,
            secret: hex::encode(rand::random::<[u8; 32]>()),
        }
    }

    /// GlusterFS's name for the client translator of brick `i`; distribute's linkto files
    /// store these names, so they must match what GlusterFS calls them.
    pub fn client_name(&self, i: usize) -> String {
        format!("{}-client-{i}", self.name)
    }

    /// The client-side volfile: protocol/client per brick, distribute over them. Bricks of this
    /// host are reached at `local_host`, the address they listen on.
    pub fn client_volfile(&self, ping_timeout: u64, local_host: &str) -> String {
        let mut out = String::new();
        for (i, b) in self.bricks.iter().enumerate() {
            let host = if is_local_host(&b.host) {
                local_host
            } else {
                b.host.as_str()
            };
            out += &format!(
                "volume {name}\n    type protocol/client\n    option remote-host {host}\n    option remote-port {port}\n    \
                 option remote-subvolume {name}\n    option volume-id {id}\n    option password {secret}\n    \
                 option ping-timeout {ping_timeout}\nend-volume\n\n",
                name = self.client_name(i),
                port = b.port,
                id = self.id,
                secret = self.secret,
            );
        }
        if self.bricks.len() > 1 {
            let subs: Vec<String> = (0..self.bricks.len())
                .map(|i| self.client_name(i))
                .collect();
            out += &format!(
                "volume {}-dht\n    type cluster/distribute\n{}    subvolumes {}\nend-volume\n",
                self.name,
                self.dht_options(),
                subs.join(" ")
            );
        }
        out
    }

    /// Distribute options kept with the volume (`cluster.lookup-unhashed` and the like).
    fn dht_options(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.options {
            if let Some(key) = k.strip_prefix("cluster.") {
                out += &format!("    option {key} {v}\n");
            }
        }
        out
    }

    /// The record without its secret, for listings.
    pub fn public(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("records serialize");
        v.as_object_mut().expect("an object").remove("secret");
        v
    }
}

/// The components of a path inside a volume, empty ones and `.` folded away; `..` is refused
/// (`what` names the path in the error).
pub fn path_components<'a>(path: &'a str, what: &str) -> Result<Vec<&'a str>, String> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(format!("{what} {path:?} may not contain .."));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brick_specs_are_validated() {
        let ok = parse_bricks(&["h:/a/b".into(), "h:/a/c/".into(), "g:/a/b".into()]).unwrap();
        assert_eq!(ok[1], ("h".to_string(), "/a/c".to_string()));
        assert!(matches!(
            parse_bricks(&["nocolon".into()]),
            Err(SpecError::Malformed(_))
        ));
        assert!(matches!(
            parse_bricks(&["h:/".into()]),
            Err(SpecError::Malformed(_))
        ));
        assert!(matches!(
            parse_bricks(&["h:/a/../b".into()]),
            Err(SpecError::Malformed(_))
        ));
        assert!(matches!(
            parse_bricks(&["h:/a".into(), "h:/a".into()]),
            Err(SpecError::Duplicate(_))
        ));
        assert!(matches!(
            parse_bricks(&["h:/a".into(), "h:/a/b".into()]),
            Err(SpecError::Nested(..))
        ));
        assert!(check_name("gv_1").is_ok());
        assert!(check_name("-x").is_err());
        assert!(check_name("a/b").is_err());
    }

    #[test]
    fn volfiles_use_glusterfs_names_and_parse() {
        let v = VolumeRecord::new(
            "gv",
            (0..4)
                .map(|i| BrickRecord {
                    host: "127.0.0.1".into(),
                    path: format!("/b{i}"),
                    port: 50000 + i,
                })
                .collect(),
        );
        let text = v.client_volfile(10, "127.0.0.1");
        let g = engine::graph::Graph::from_text(&text, &engine::registry::Registry::client_side())
            .unwrap();
        assert_eq!(g.top().name(), "gv-dht");
        assert!(g.get("gv-client-3").is_some());
        assert!(!v.public().to_string().contains(&v.secret));
    }
}
