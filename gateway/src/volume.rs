//! Volumes as gatewayd records them, brick specs, and the volfiles generated from them.

use engine::options::OptionSpec;
use engine::registry::Registry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use utoipa::ToSchema;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrickRecord {
    pub host: String,
    pub path: String,
    pub port: u16,
    /// The number in the brick's translator name (`VOL-client-N`), kept when bricks before it
    /// leave (replicate's pending xattrs are named after it). None: its position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<usize>,
    /// remove-brick started on it: new layouts leave its replica set out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decommissioned: bool,
}

impl BrickRecord {
    pub fn new(host: String, path: String, port: u16) -> BrickRecord {
        BrickRecord {
            host,
            path,
            port,
            id: None,
            decommissioned: false,
        }
    }

    /// HOST:/PATH.
    pub fn spec(&self) -> String {
        format!("{}:{}", self.host, self.path)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub name: String,
    pub id: String,
    /// "distribute", "replicate" (one replica set) or "distributed-replicate".
    pub kind: String,
    /// Bricks per replica set (1: no replication). As in GlusterFS, consecutive bricks in the
    /// order given form a set: bricks 0..replica-1 are set 0, and so on.
    #[serde(default = "one")]
    pub replica: usize,
    /// Arbiter bricks per replica set: 0, or 1 for `replica 3 arbiter 1` (the set's last brick
    /// keeps names and metadata, no data).
    #[serde(default)]
    pub arbiter: usize,
    pub bricks: Vec<BrickRecord>,
    pub options: BTreeMap<String, String>,
    pub started: bool,
    /// The HMAC key of the brick handshake.
    pub secret: String,
    /// Distribute's commit hash: changed when the volume's subvolumes change, so layouts
    /// written before are looked past until a rebalance settles them. None: never changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_hash: Option<u32>,
}

fn one() -> usize {
    1
}

/// The most bricks a replica set may have (cluster/replicate's limit on children).
pub const MAX_REPLICA: usize = 64;

/// Replicate and distribute options gatewayd writes from the volume's layout; `volume set` may
/// not change them.
pub const LAYOUT_OPTIONS: &[&str] = &[
    "afr-pending-xattr",
    "arbiter-count",
    "commit-hash",
    "decommissioned-bricks",
];

/// TLS on the brick RPC, GlusterFS's name for it.
pub const SSL_ENABLED: &str = "transport.socket.ssl-enabled";
/// Other names `volume set` takes for [`SSL_ENABLED`]: GlusterFS has a switch for each end
/// (`client.ssl`, `server.ssl`); here both ends always agree, so they are one switch.
pub const SSL_ALIASES: &[&str] = &["client.ssl", "server.ssl"];
/// Client addresses the bricks accept and refuse (GlusterFS's `auth.allow`/`auth.reject`).
pub const AUTH_ALLOW: &str = "auth.allow";
pub const AUTH_REJECT: &str = "auth.reject";
/// `on`: the volume is not exported over NFS.
pub const NFS_DISABLE: &str = "nfs.disable";

/// Which cluster translator a `cluster.<key>` volume option belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterXlator {
    Distribute,
    Replicate,
}

/// The option spec of `cluster.<key>` (given without the `cluster.` prefix), from distribute's
/// or replicate's table.
pub fn cluster_option(key: &str) -> Option<(ClusterXlator, &'static OptionSpec)> {
    [ClusterXlator::Distribute, ClusterXlator::Replicate]
        .into_iter()
        .find_map(|x| Some((x, x.options().iter().find(|o| o.matches(key))?)))
}

impl ClusterXlator {
    /// The translator's option table, as the engine's registry of client-side types has it.
    pub fn options(self) -> &'static [OptionSpec] {
        static CLIENT_SIDE: LazyLock<Registry> = LazyLock::new(Registry::client_side);
        let type_name = match self {
            ClusterXlator::Distribute => "cluster/distribute",
            ClusterXlator::Replicate => "cluster/replicate",
        };
        CLIENT_SIDE.get(type_name).map_or(&[], |t| t.options)
    }
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
    #[error("{0}")]
    Layout(String),
}

/// Checks a volume's shape as `gluster volume create` does: `replica` 1 is plain distribute,
/// 2..=64 bricks per replica set; the brick count a multiple of it; `arbiter 1` only as
/// `replica 3 arbiter 1`.
pub fn check_layout(bricks: usize, replica: usize, arbiter: usize) -> Result<(), SpecError> {
    let bad = |m: String| Err(SpecError::Layout(m));
    if replica == 0 {
        return bad(
            "replica count 0: give 2 or more (1, the default, makes a plain distribute volume)"
                .into(),
        );
    }
    if replica > MAX_REPLICA {
        return bad(format!(
            "replica count {replica}: a replica set has at most {MAX_REPLICA} bricks"
        ));
    }
    if arbiter > 1 {
        return bad(format!(
            "arbiter count {arbiter}: only `replica 3 arbiter 1` is supported"
        ));
    }
    if arbiter == 1 && replica != 3 {
        return bad(format!(
            "arbiter 1 needs replica 3 (`replica 3 arbiter 1`: two data bricks and one arbiter per replica set), not replica {replica}"
        ));
    }
    if !bricks.is_multiple_of(replica) {
        return bad(format!(
            "{bricks} bricks is not a multiple of replica count {replica}: consecutive bricks form replica sets of {replica}"
        ));
    }
    Ok(())
}

/// The volume type GlusterFS reports for a layout.
pub fn kind_of(bricks: usize, replica: usize) -> &'static str {
    if replica <= 1 {
        "distribute"
    } else if bricks <= replica {
        "replicate"
    } else {
        "distributed-replicate"
    }
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

/// Whether a brick on `host` is this node's: in a pool, its name is this node's name; alone,
/// any name of this host.
pub fn is_local_host(host: &str) -> bool {
    match crate::node::NODE.get() {
        Some((me, true)) => return host == me,
        Some((me, false)) if host == me => return true,
        _ => {}
    }
    if matches!(host, "localhost" | "127.0.0.1" | "::1") || host.starts_with("127.") {
        return true;
    }
    crate::node::host_name() == host
}

impl VolumeRecord {
    pub fn new(name: &str, bricks: Vec<BrickRecord>) -> VolumeRecord {
        VolumeRecord {
            name: name.to_string(),
            id: uuid::Uuid::new_v4().to_string(),
            kind: "distribute".into(),
            replica: 1,
            arbiter: 0,
            bricks,
            options: BTreeMap::new(),
            started: false,
            secret: hex::encode(rand::random::<[u8; 32]>()),
            commit_hash: None,
        }
    }

    /// A new volume whose bricks form replica sets of `replica` (1: plain distribute), the
    /// last brick of each set an arbiter when `arbiter` is 1.
    pub fn with_layout(
        name: &str,
        bricks: Vec<BrickRecord>,
        replica: usize,
        arbiter: usize,
    ) -> Result<VolumeRecord, SpecError> {
        check_layout(bricks.len(), replica, arbiter)?;
        let mut v = VolumeRecord::new(name, bricks);
        v.replica = replica;
        v.arbiter = arbiter;
        v.kind = kind_of(v.bricks.len(), replica).into();
        Ok(v)
    }

    /// Bricks per replica set (at least 1, whatever the record says).
    pub fn replica_count(&self) -> usize {
        self.replica.max(1)
    }

    /// The replica set brick `i` belongs to.
    pub fn replica_set_of(&self, i: usize) -> usize {
        i / self.replica_count()
    }

    /// Whether brick `i` is the arbiter of its set.
    pub fn is_arbiter(&self, i: usize) -> bool {
        let r = self.replica_count();
        self.arbiter > 0 && r > 1 && i % r >= r - self.arbiter.min(r)
    }

    /// GlusterFS's name for the replicate translator of replica set `g`; distribute's linkto
    /// files store these names.
    pub fn replicate_name(&self, g: usize) -> String {
        format!("{}-replicate-{g}", self.name)
    }

    /// GlusterFS's name for the client translator of brick `i`; distribute's linkto files
    /// store these names, so they must match what GlusterFS calls them.
    pub fn client_name(&self, i: usize) -> String {
        format!("{}-client-{}", self.name, self.bricks[i].id.unwrap_or(i))
    }

    /// Distribute's name for subvolume `g`: replica set `g`'s replicate, or brick `g`'s
    /// client on a plain distribute volume.
    pub fn subvol_name(&self, g: usize) -> String {
        if self.replica_count() > 1 {
            self.replicate_name(g)
        } else {
            self.client_name(g)
        }
    }

    /// The bricks of subvolume `g`.
    pub fn subvol_bricks(&self, g: usize) -> std::ops::Range<usize> {
        let r = self.replica_count();
        g * r..((g + 1) * r).min(self.bricks.len())
    }

    /// Distribute's names of the subvolumes, in order.
    pub fn subvol_names(&self) -> Vec<String> {
        (0..self.subvol_count())
            .map(|g| self.subvol_name(g))
            .collect()
    }

    pub fn subvol_count(&self) -> usize {
        self.bricks.len().div_ceil(self.replica_count())
    }

    /// The number the next new brick's translator takes.
    pub fn next_brick_id(&self) -> usize {
        (0..self.bricks.len())
            .map(|i| self.bricks[i].id.unwrap_or(i) + 1)
            .max()
            .unwrap_or(0)
    }

    /// Subvolumes whose bricks remove-brick is emptying.
    pub fn decommissioned(&self) -> Vec<usize> {
        (0..self.subvol_count())
            .filter(|g| {
                self.subvol_bricks(*g)
                    .all(|i| self.bricks[i].decommissioned)
            })
            .collect()
    }

    /// The client-side volfile, as glusterd writes it: protocol/client per brick; with
    /// replica N, cluster/replicate over each set of N consecutive bricks; distribute over the
    /// sets (or over the bricks) when there is more than one. The last volume is the top.
    /// Bricks of this host are reached at `local_host`, the address they listen on.
    pub fn client_volfile(&self, ping_timeout: u64, local_host: &str) -> String {
        self.client_volfile_with(ping_timeout, local_host, None)
    }

    /// Whether the bricks speak TLS (`transport.socket.ssl-enabled`).
    pub fn ssl_enabled(&self) -> bool {
        self.options
            .get(SSL_ENABLED)
            .is_some_and(|v| engine::options::parse_bool(v).unwrap_or(false))
    }

    /// The bricks' auth file (brickd's `protocol::auth` reads it; the lists are
    /// `engine::addr_list`'s): `auth.allow` and `auth.reject` as set.
    pub fn auth_file_text(&self) -> String {
        let mut out = String::from("# written by gatewayd from the volume's options\n");
        for k in [AUTH_ALLOW, AUTH_REJECT] {
            if let Some(v) = self.options.get(k) {
                out += &format!("{k} {v}\n");
            }
        }
        out
    }

    /// [`Self::client_volfile`], with the cluster's TLS files in every protocol/client when
    /// the volume has TLS on (`tls` None leaves TLS out, whatever the option says).
    pub fn client_volfile_with(
        &self,
        ping_timeout: u64,
        local_host: &str,
        tls: Option<&crate::tls::Material>,
    ) -> String {
        let ssl = match tls {
            Some(m) if self.ssl_enabled() => format!(
                "    option transport.socket.ssl-enabled on\n    option transport.socket.ssl-ca-list {}\n    \
                 option transport.socket.ssl-own-cert {}\n    option transport.socket.ssl-private-key {}\n",
                m.ca.display(),
                m.cert.display(),
                m.key.display()
            ),
            _ => String::new(),
        };
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
                 option ping-timeout {ping_timeout}\n{ssl}end-volume\n\n",
                name = self.client_name(i),
                port = b.port,
                id = self.id,
                secret = self.secret,
            );
        }
        let clients: Vec<String> = (0..self.bricks.len())
            .map(|i| self.client_name(i))
            .collect();
        let r = self.replica_count();
        let subs: Vec<String> = if r > 1 {
            let mut sets = Vec::new();
            for (g, set) in clients.chunks(r).enumerate() {
                let name = self.replicate_name(g);
                out += &format!(
                    "volume {name}\n    type cluster/replicate\n    option afr-pending-xattr {}\n{}    subvolumes {}\nend-volume\n\n",
                    set.join(","),
                    self.afr_options(),
                    set.join(" ")
                );
                sets.push(name);
            }
            sets
        } else {
            clients
        };
        let below = if subs.len() > 1 {
            let mut elastic = String::new();
            if let Some(h) = self.commit_hash {
                elastic += &format!("    option commit-hash {h}\n");
            }
            let gone: Vec<String> = self
                .decommissioned()
                .into_iter()
                .map(|g| self.subvol_name(g))
                .collect();
            if !gone.is_empty() {
                elastic += &format!("    option decommissioned-bricks {}\n", gone.join(" "));
            }
            out += &format!(
                "volume {}-dht\n    type cluster/distribute\n{}{elastic}    subvolumes {}\nend-volume\n\n",
                self.name,
                self.cluster_options(ClusterXlator::Distribute),
                subs.join(" ")
            );
            format!("{}-dht", self.name)
        } else {
            subs[0].clone()
        };
        // Above the cluster translators, as glusterd places it: one stamp per fop reaches
        // every replica and subvolume (trusted.glusterfs.mdata).
        out += &format!(
            "volume {}-utime\n    type features/utime\n    option noatime on\n    subvolumes {below}\nend-volume\n",
            self.name
        );
        // The caches above utime and the cluster translators, as glusterd places them; below
        // features/reserved, so a name it hides is never answered from a cache.
        let under_reserved = self.add_caches(&mut out, format!("{}-utime", self.name));
        // What the S3 frontend keeps for itself, hidden from every other client.
        out += &format!(
            "\nvolume {name}-reserved\n    type features/reserved\n    option root-names {}\n    \
             option dot-infix {}\n    subvolumes {under_reserved}\nend-volume\n",
            protocols_s3::vfs::STAGING_DIR,
            protocols_s3::vfs::STAGING_INFIX,
            name = self.name
        );
        // On top, named after the volume as glusterd does: every fop is counted once.
        out += &format!(
            "\nvolume {name}\n    type debug/io-stats\n    subvolumes {name}-reserved\nend-volume\n",
            name = self.name
        );
        out
    }

    /// The `option` lines of each replicate volume after afr-pending-xattr: the arbiter, the
    /// quorum glusterd defaults to for 3 or more replicas, and the replicate options set.
    fn afr_options(&self) -> String {
        let mut out = String::new();
        if self.arbiter > 0 {
            out += &format!("    option arbiter-count {}\n", self.arbiter);
        }
        let quorum_set = self.options.keys().any(|k| {
            k.strip_prefix("cluster.")
                .and_then(cluster_option)
                .is_some_and(|(_, o)| o.key == "quorum-type")
        });
        if self.replica_count() >= 3 && !quorum_set {
            out += "    option quorum-type auto\n";
        }
        out + &self.cluster_options(ClusterXlator::Replicate)
    }

    /// The `cluster.*` options kept with the volume that belong to translator `which`
    /// (`cluster.lookup-unhashed` to distribute, `cluster.quorum-type` to replicate, ...).
    fn cluster_options(&self, which: ClusterXlator) -> String {
        let mut out = String::new();
        for (k, v) in &self.options {
            let Some(key) = k.strip_prefix("cluster.") else {
                continue;
            };
            match cluster_option(key) {
                Some((x, o)) if x == which && !LAYOUT_OPTIONS.contains(&o.key) => {
                    out += &format!("    option {key} {v}\n");
                }
                _ => {}
            }
        }
        out
    }

    /// What the API shows of the volume: everything but its secret, with each brick's
    /// replica set.
    pub fn view(&self) -> VolumeView {
        VolumeView {
            name: self.name.clone(),
            id: self.id.clone(),
            kind: self.kind.clone(),
            replica: self.replica_count(),
            arbiter: self.arbiter,
            replica_sets: self.bricks.len().div_ceil(self.replica_count()),
            bricks: self
                .bricks
                .iter()
                .enumerate()
                .map(|(i, b)| BrickView {
                    name: self.client_name(i),
                    host: b.host.clone(),
                    path: b.path.clone(),
                    port: b.port,
                    replica_set: self.replica_set_of(i),
                    arbiter: self.is_arbiter(i),
                    decommissioned: b.decommissioned,
                })
                .collect(),
            options: self.options.clone(),
            started: self.started,
        }
    }

    /// The record without its secret, for listings.
    pub fn public(&self) -> serde_json::Value {
        serde_json::to_value(self.view()).expect("views serialize")
    }
}

/// A volume as the API shows it (never its secret).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct VolumeView {
    pub name: String,
    pub id: String,
    /// `distribute`, `replicate` (one replica set) or `distributed-replicate`.
    pub kind: String,
    /// Bricks per replica set; 1 for a distribute volume.
    pub replica: usize,
    /// Arbiter bricks per replica set: 0, or 1 for `replica 3 arbiter 1`.
    pub arbiter: usize,
    /// Number of replica sets, the subvolumes distribute spreads files over (the bricks
    /// themselves for a distribute volume).
    pub replica_sets: usize,
    /// The bricks in order; consecutive bricks form a replica set.
    pub bricks: Vec<BrickView>,
    /// Options set with `volume set`.
    pub options: BTreeMap<String, String>,
    pub started: bool,
}

/// One brick of a volume.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BrickView {
    /// GlusterFS's name for the brick's client: VOLUME-client-N (N: the brick's index).
    pub name: String,
    pub host: String,
    pub path: String,
    pub port: u16,
    /// The replica set the brick belongs to (its index divided by `replica`).
    pub replica_set: usize,
    /// True for the arbiter brick of its set (names and metadata, no data).
    pub arbiter: bool,
    /// remove-brick is moving its files off; new files no longer go to it.
    pub decommissioned: bool,
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
pub(crate) mod tests {
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

    pub(crate) fn bricks(n: u16) -> Vec<BrickRecord> {
        (0..n)
            .map(|i| BrickRecord {
                host: "127.0.0.1".into(),
                path: format!("/b{i}"),
                port: 50000 + i,
                id: None,
                decommissioned: false,
            })
            .collect()
    }

    /// Parses a generated volfile with the engine's parser and checks every volume against
    /// the registry's option tables and child counts (what the graph builder checks before it
    /// builds a translator).
    pub(crate) fn parse_checked(text: &str) -> engine::volfile::Volfile {
        let vf = engine::volfile::Volfile::parse(text).unwrap();
        let reg = engine::registry::Registry::client_side();
        for v in &vf.volumes {
            let t = reg
                .get(&v.type_name)
                .unwrap_or_else(|| panic!("{}: unknown type", v.type_name));
            for (k, val) in &v.options {
                let spec = t
                    .options
                    .iter()
                    .find(|o| o.matches(k))
                    .unwrap_or_else(|| panic!("{}: no option {k}", v.name));
                spec.validate(val)
                    .unwrap_or_else(|e| panic!("{}: option {k}: {e}", v.name));
            }
            let n = v.subvolumes.len();
            assert!(
                n >= t.min_children && n <= t.max_children,
                "{}: {n} subvolumes",
                v.name
            );
        }
        vf
    }

    #[test]
    fn volfiles_use_glusterfs_names_and_parse() {
        let mut v = VolumeRecord::new("gv", bricks(4));
        v.options
            .insert("cluster.lookup-unhashed".into(), "auto".into());
        v.options
            .insert("cluster.quorum-type".into(), "fixed".into());
        let text = v.client_volfile(10, "127.0.0.1");
        let g = engine::graph::Graph::from_text(&text, &engine::registry::Registry::client_side())
            .unwrap();
        assert_eq!(g.top().name(), "gv");
        assert!(g.get("gv-client-3").is_some());
        let vf = parse_checked(&text);
        assert_eq!(vf.top().type_name, "debug/io-stats");
        assert_eq!(vf.get("gv-utime").unwrap().subvolumes, ["gv-dht"]);
        let dht = vf.get("gv-dht").unwrap();
        assert_eq!(dht.type_name, "cluster/distribute");
        assert_eq!(
            dht.subvolumes,
            ["gv-client-0", "gv-client-1", "gv-client-2", "gv-client-3"]
        );
        // Only distribute's options reach distribute; there is no replicate to take the other.
        assert_eq!(dht.options.get("lookup-unhashed").unwrap(), "auto");
        assert!(!dht.options.contains_key("quorum-type"));
        assert!(!text.contains("cluster/replicate"));
        assert!(!v.public().to_string().contains(&v.secret));
        assert_eq!(v.public()["kind"], "distribute");
        assert_eq!(v.public()["replica"], 1);

        // One brick: the client is the whole graph.
        let one = VolumeRecord::with_layout("solo", bricks(1), 1, 0).unwrap();
        assert_eq!(
            parse_checked(&one.client_volfile(10, "h"))
                .get("solo-utime")
                .unwrap()
                .subvolumes,
            ["solo-client-0"]
        );
    }

    #[test]
    fn two_by_two_is_distribute_over_replica_sets() {
        let mut v = VolumeRecord::with_layout("vol", bricks(4), 2, 0).unwrap();
        assert_eq!(v.kind, "distributed-replicate");
        v.options
            .insert("cluster.lookup-unhashed".into(), "auto".into());
        v.options
            .insert("cluster.favorite-child-policy".into(), "mtime".into());
        v.options.insert("nfs.disable".into(), "on".into());
        let text = v.client_volfile(42, "127.0.0.1");
        let vf = parse_checked(&text);
        let names: Vec<&str> = vf.volumes.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "vol-client-0",
                "vol-client-1",
                "vol-client-2",
                "vol-client-3",
                "vol-replicate-0",
                "vol-replicate-1",
                "vol-dht",
                "vol-utime",
                "vol-readdir-ahead",
                "vol-quick-read",
                "vol-open-behind",
                "vol-md-cache",
                "vol-reserved",
                "vol"
            ]
        );
        for (g, set) in [
            ["vol-client-0", "vol-client-1"],
            ["vol-client-2", "vol-client-3"],
        ]
        .iter()
        .enumerate()
        {
            let r = vf.get(&format!("vol-replicate-{g}")).unwrap();
            assert_eq!(r.type_name, "cluster/replicate");
            assert_eq!(r.subvolumes, set);
            assert_eq!(r.options.get("afr-pending-xattr").unwrap(), &set.join(","));
            assert_eq!(r.options.get("favorite-child-policy").unwrap(), "mtime");
            // Replica 2 gets no quorum by default, as with glusterd.
            assert!(!r.options.contains_key("quorum-type"));
            assert!(!r.options.contains_key("arbiter-count"));
            assert!(!r.options.contains_key("lookup-unhashed"));
        }
        assert_eq!(vf.top().type_name, "debug/io-stats");
        assert_eq!(vf.top().subvolumes, ["vol-reserved"]);
        let reserved = vf.get("vol-reserved").unwrap();
        assert_eq!(reserved.type_name, "features/reserved");
        assert_eq!(reserved.subvolumes, ["vol-md-cache"]);
        assert_eq!(vf.get("vol-utime").unwrap().subvolumes, ["vol-dht"]);
        let top = vf.get("vol-dht").unwrap();
        assert_eq!(top.subvolumes, ["vol-replicate-0", "vol-replicate-1"]);
        assert_eq!(top.options.len(), 1);
        assert_eq!(top.options.get("lookup-unhashed").unwrap(), "auto");

        let view = v.public();
        assert_eq!(view["replica"], 2);
        assert_eq!(view["replica_sets"], 2);
        let sets: Vec<u64> = view["bricks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["replica_set"].as_u64().unwrap())
            .collect();
        assert_eq!(sets, [0, 0, 1, 1]);
        assert_eq!(view["bricks"][3]["name"], "vol-client-3");
        assert!(!view.to_string().contains(&v.secret));
    }

    #[test]
    fn one_by_three_arbiter_is_one_replicate_on_top() {
        let v = VolumeRecord::with_layout("arb", bricks(3), 3, 1).unwrap();
        assert_eq!(v.kind, "replicate");
        let vf = parse_checked(&v.client_volfile(42, "127.0.0.1"));
        assert_eq!(vf.volumes.len(), 11);
        assert_eq!(vf.get("arb-utime").unwrap().subvolumes, ["arb-replicate-0"]);
        let top = vf.get("arb-replicate-0").unwrap();
        assert_eq!(top.type_name, "cluster/replicate");
        assert_eq!(
            top.subvolumes,
            ["arb-client-0", "arb-client-1", "arb-client-2"]
        );
        assert_eq!(
            top.options.get("afr-pending-xattr").unwrap(),
            "arb-client-0,arb-client-1,arb-client-2"
        );
        assert_eq!(top.options.get("arbiter-count").unwrap(), "1");
        assert_eq!(top.options.get("quorum-type").unwrap(), "auto");
        assert!(vf.get("arb-dht").is_none());
        let arbiters: Vec<bool> = (0..3).map(|i| v.is_arbiter(i)).collect();
        assert_eq!(arbiters, [false, false, true]);
        assert_eq!(v.public()["bricks"][2]["arbiter"], true);

        // A quorum the user chose replaces glusterd's default.
        let mut v = VolumeRecord::with_layout("r3", bricks(6), 3, 0).unwrap();
        v.options
            .insert("cluster.quorum-type".into(), "none".into());
        let text = v.client_volfile(42, "127.0.0.1");
        let vf = parse_checked(&text);
        for g in 0..2 {
            let r = vf.get(&format!("r3-replicate-{g}")).unwrap();
            assert_eq!(r.options.get("quorum-type").unwrap(), "none");
        }
        assert_eq!(text.matches("quorum-type").count(), 2);
        assert_eq!(
            vf.get("r3-dht").unwrap().subvolumes,
            ["r3-replicate-0", "r3-replicate-1"]
        );
    }

    #[test]
    fn tls_and_auth_options_reach_the_volfile_and_the_auth_file() {
        let mut v = VolumeRecord::with_layout("vol", bricks(2), 2, 0).unwrap();
        let m = crate::tls::Material::paths(std::path::Path::new("/d"));
        // Off: no TLS in the volfile even with the files known.
        assert!(
            !v.client_volfile_with(10, "127.0.0.1", Some(&m))
                .contains("ssl")
        );
        v.options.insert(SSL_ENABLED.into(), "on".into());
        let text = v.client_volfile_with(10, "127.0.0.1", Some(&m));
        let vf = parse_checked(&text);
        let c = vf.get("vol-client-1").unwrap();
        assert_eq!(c.options.get("transport.socket.ssl-enabled").unwrap(), "on");
        assert_eq!(
            c.options.get("transport.socket.ssl-ca-list").unwrap(),
            "/d/tls/ca.pem"
        );
        assert_eq!(
            c.options.get("transport.socket.ssl-own-cert").unwrap(),
            "/d/tls/node.pem"
        );
        v.options.insert(AUTH_REJECT.into(), "10.0.0.0/8".into());
        assert!(v.auth_file_text().contains("auth.reject 10.0.0.0/8\n"));
        assert!(!v.auth_file_text().contains("auth.allow"));
    }

    #[test]
    fn layouts_are_validated() {
        assert!(check_layout(4, 1, 0).is_ok());
        assert!(check_layout(4, 2, 0).is_ok());
        assert!(check_layout(3, 3, 1).is_ok());
        assert!(check_layout(6, 3, 1).is_ok());
        let msg = |b, r, a| check_layout(b, r, a).unwrap_err().to_string();
        assert!(msg(5, 2, 0).contains("not a multiple of replica count 2"));
        assert!(msg(4, 0, 0).contains("replica count 0"));
        assert!(msg(4, 2, 1).contains("arbiter 1 needs replica 3"));
        assert!(msg(4, 4, 1).contains("arbiter 1 needs replica 3"));
        assert!(msg(3, 3, 2).contains("only `replica 3 arbiter 1`"));
        assert!(msg(65, 65, 0).contains("at most 64"));
        assert!(check_layout(64, 64, 0).is_ok());
        assert!(VolumeRecord::with_layout("x", bricks(3), 2, 0).is_err());
        assert_eq!(kind_of(2, 2), "replicate");
        assert_eq!(kind_of(4, 2), "distributed-replicate");
        assert_eq!(kind_of(4, 1), "distribute");
    }

    #[test]
    fn old_records_load_as_distribute() {
        let old = r#"{"name":"gv","id":"x","kind":"distribute","bricks":[],"options":{},
            "started":false,"secret":"s"}"#;
        let v: VolumeRecord = serde_json::from_str(old).unwrap();
        assert_eq!((v.replica, v.arbiter), (1, 0));
    }

    #[test]
    fn cluster_options_come_from_both_tables() {
        assert_eq!(
            cluster_option("lookup-unhashed").unwrap().0,
            ClusterXlator::Distribute
        );
        assert_eq!(
            cluster_option("quorum-type").unwrap().0,
            ClusterXlator::Replicate
        );
        assert!(cluster_option("no-such-thing").is_none());
    }
}
