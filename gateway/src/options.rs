//! The options `volume set` takes, read from the engine's option tables: the `cluster.*`
//! options of the translators (through the registry of client-side types) and gatewayd's own,
//! declared in the same form.

use crate::error::ManagerError;
use crate::volume::{
    AUTH_ALLOW, AUTH_REJECT, ClusterXlator, LAYOUT_OPTIONS, NFS_DISABLE, SSL_ALIASES, SSL_ENABLED,
    VolumeRecord, cluster_option,
};
use crate::volume_caches::{
    AGGREGATE_SIZE, CACHE_CAPABILITY_XATTRS, CACHE_INVALIDATION, CACHE_INVALIDATION_TIMEOUT,
    FLUSH_BEHIND, MD_CACHE_INVALIDATION, MD_CACHE_TIMEOUT, OPEN_BEHIND, QR_CACHE_TIMEOUT,
    QUICK_READ, RDA_REQUEST_SIZE, READDIR_AHEAD, STAT_PREFETCH, WRITE_BEHIND,
    WRITE_BEHIND_WINDOW_SIZE,
};
use engine::addr_list::AddrList;
use engine::options::{OptKind, OptionSpec};
use serde::Serialize;
use utoipa::ToSchema;

type Result<T> = std::result::Result<T, ManagerError>;

/// One option `volume set` takes, as `volume set help` and `GET /api/v1/options` list it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SettableOption {
    /// The key as `volume set` takes it: `cluster.lookup-unhashed`, `nfs.disable`.
    pub key: String,
    /// The value when the option is not set; none when the translator has no default.
    pub default: Option<String>,
    pub description: String,
    /// What a value may be: `on|off`, one of `values`, `integer 0..=60`, `text`.
    pub kind: String,
    /// The values an enumerated (or on/off) option takes; empty for others.
    pub values: Vec<String>,
    /// `restart` (applies when the volume next starts) or `now`.
    pub applies: String,
}

/// When a change of an option takes effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Applies {
    /// When the volume next starts (the volfile or the bricks' arguments carry it).
    Restart,
    /// At once.
    Now,
}

/// gatewayd's own volume options (not a translator's), as a table like the translators'.
const GATEWAY_OPTIONS: &[(OptionSpec, Applies)] = &[
    (
        // GlusterFS's per-end names of the TLS switch are kept under the one name.
        OptionSpec {
            key: SSL_ENABLED,
            aliases: SSL_ALIASES,
            kind: OptKind::Bool,
            default: Some("off"),
            doc: "on: the brick RPC runs over TLS, both ends proving themselves with certificates of the cluster CA in DATA/tls (made when missing); also set as client.ssl or server.ssl",
        },
        // Bricks and clients take TLS when the volume next starts.
        Applies::Restart,
    ),
    (
        OptionSpec::new(
            AUTH_ALLOW,
            OptKind::Str,
            Some("*"),
            "client addresses the bricks accept: comma-separated addresses, globs (192.168.1.*), networks (10.0.0.0/8) or host names; * is everyone",
        ),
        // The bricks watch their auth file: it applies at once.
        Applies::Now,
    ),
    (
        OptionSpec::new(
            AUTH_REJECT,
            OptKind::Str,
            None,
            "client addresses the bricks refuse, whatever auth.allow says (the gateway itself connects from its bricks' host: rejecting it cuts off its own mounts, S3, NFS and SMB)",
        ),
        Applies::Now,
    ),
    (
        OptionSpec::new(
            NFS_DISABLE,
            OptKind::Bool,
            Some("off"),
            "on: the volume is not exported over NFS (its export /NAME and exports of its directories go at once)",
        ),
        Applies::Now,
    ),
    (
        OptionSpec::new(
            CACHE_INVALIDATION,
            OptKind::Bool,
            Some("on"),
            "bricks tell each client when another one changes an inode it looked at (upcalls), so the clients' metadata caches (md-cache, the FUSE kernel's) stay coherent; off: they can be stale for performance.md-cache-timeout (GlusterFS ships it off; on is its group metadata-cache)",
        ),
        // brickd takes it as an argument: at the volume's next start, as the client graph.
        Applies::Restart,
    ),
    (
        OptionSpec::new(
            CACHE_INVALIDATION_TIMEOUT,
            OptKind::Seconds { min: 1, max: 3600 },
            Some("600"),
            "seconds a brick keeps telling a client of changes to an inode after it last touched it; md-cache keeps nothing longer",
        ),
        Applies::Restart,
    ),
    (
        OptionSpec::new(
            STAT_PREFETCH,
            OptKind::Bool,
            Some("on"),
            "the client graph has performance/md-cache: lookup, stat and some getxattrs are answered from memory",
        ),
        Applies::Restart,
    ),
    (
        OptionSpec::new(
            MD_CACHE_TIMEOUT,
            OptKind::Seconds { min: 0, max: 600 },
            Some("600"),
            "seconds md-cache trusts what it keeps: 600 (capped at features.cache-invalidation-timeout) with upcalls, 1 without, unless set",
        ),
        Applies::Restart,
    ),
    (
        OptionSpec::new(
            MD_CACHE_INVALIDATION,
            OptKind::Bool,
            Some("on"),
            "md-cache relies on the bricks' upcalls (features.cache-invalidation must be on too)",
        ),
        Applies::Restart,
    ),
    (
        OptionSpec::new(
            CACHE_CAPABILITY_XATTRS,
            OptKind::Bool,
            Some("on"),
            "md-cache keeps security.capability (the kernel asks it before every write)",
        ),
        Applies::Restart,
    ),
    (
        OptionSpec::new(
            OPEN_BEHIND,
            OptKind::Bool,
            Some("on"),
            "the client graph has performance/open-behind: read-only opens are answered at once and reads go by gfid, with no open on the bricks",
        ),
        Applies::Restart,
    ),
    (
        OptionSpec::new(
            QUICK_READ,
            OptKind::Bool,
            Some("on"),
            "the client graph has performance/quick-read: files up to 64 KiB read whole or written whole are kept in memory and read again from there",
        ),
        Applies::Restart,
    ),
    (
        OptionSpec::new(
            QR_CACHE_TIMEOUT,
            OptKind::Seconds { min: 1, max: 600 },
            Some("600"),
            "seconds quick-read trusts a file's content: 600 (capped at features.cache-invalidation-timeout) with upcalls, 1 without, unless set",
        ),
        Applies::Restart,
    ),
    (
        OptionSpec::new(
            WRITE_BEHIND,
            OptKind::Bool,
            Some("off"),
            "the client graph has performance/write-behind: a FUSE mount's writes are answered once queued and reach the bricks in the background (fsync waits for them)",
        ),
        Applies::Restart,
    ),
    (
        OptionSpec::new(
            FLUSH_BEHIND,
            OptKind::Bool,
            Some("on"),
            "a close is answered before the data written behind reaches the bricks (off: a close waits for it)",
        ),
        Applies::Restart,
    ),
    (
        OptionSpec::new(
            WRITE_BEHIND_WINDOW_SIZE,
            OptKind::Size,
            Some("1MB"),
            "the most written data that waits for the bricks, per file",
        ),
        Applies::Restart,
    ),
    (
        OptionSpec::new(
            AGGREGATE_SIZE,
            OptKind::Size,
            Some("128KB"),
            "write-behind merges contiguous writes into one of up to this size",
        ),
        Applies::Restart,
    ),
    (
        OptionSpec::new(
            READDIR_AHEAD,
            OptKind::Bool,
            Some("on"),
            "the client graph has performance/readdir-ahead: directories are read from the bricks in large batches that answer the small listing requests of FUSE and S3",
        ),
        Applies::Restart,
    ),
    (
        OptionSpec::new(
            RDA_REQUEST_SIZE,
            OptKind::Size,
            Some("128KB"),
            "bytes of directory entries readdir-ahead reads from the bricks at once",
        ),
        Applies::Restart,
    ),
    (
        OptionSpec::new(
            crate::elastic::IO_THREADS,
            OptKind::Int { min: 1, max: 64 },
            Some("8"),
            "directories crawled and files moved at once by a rebalance or remove-brick",
        ),
        // Read when a rebalance starts or resumes.
        Applies::Now,
    ),
];

/// The `cluster.*` options `volume set` takes: distribute's and replicate's tables, less what
/// the layout fixes.
fn cluster_options() -> impl Iterator<Item = &'static OptionSpec> {
    ClusterXlator::Distribute
        .options()
        .iter()
        .chain(ClusterXlator::Replicate.options())
        .filter(|o| !LAYOUT_OPTIONS.contains(&o.key))
}

fn settable(key: String, o: &OptionSpec, applies: Applies) -> SettableOption {
    let (kind, values) = match o.kind {
        OptKind::Bool => ("on|off".to_string(), vec!["on", "off"]),
        OptKind::Enum(v) => (v.join("|"), v.to_vec()),
        OptKind::Int { min, max } => (format!("integer {min}..={max}"), vec![]),
        OptKind::Seconds { min, max } => (format!("seconds {min}..={max}"), vec![]),
        OptKind::Size => ("size (128KB, 1GB)".into(), vec![]),
        OptKind::Percent => ("percentage".into(), vec![]),
        OptKind::Str => ("text".into(), vec![]),
        OptKind::List => ("list".into(), vec![]),
    };
    SettableOption {
        key,
        default: o.default.map(str::to_string),
        description: o.doc.to_string(),
        kind,
        values: values.into_iter().map(str::to_string).collect(),
        applies: match applies {
            Applies::Restart => "restart",
            Applies::Now => "now",
        }
        .into(),
    }
}

/// Every option `volume set` accepts: the `cluster.*` options of distribute's and replicate's
/// tables (less those the layout fixes), then gatewayd's own (TLS, auth.allow/reject,
/// `nfs.disable`), in that order.
pub fn settable_options() -> Vec<SettableOption> {
    cluster_options()
        .map(|o| settable(format!("cluster.{}", o.key), o, Applies::Restart))
        .chain(
            GATEWAY_OPTIONS
                .iter()
                .map(|(o, a)| settable(o.key.to_string(), o, *a)),
        )
        .collect()
}

/// The options `volume set` takes, for error messages.
fn known_options() -> String {
    let keys: Vec<String> = cluster_options()
        .map(|o| format!("cluster.{}", o.key))
        .chain(GATEWAY_OPTIONS.iter().map(|(o, _)| o.key.to_string()))
        .collect();
    format!("known: {}", keys.join(", "))
}

/// Checks `volume set|reset` of `key` (`value` None for a reset) on `v`: every value against
/// its option's table. Returns the key the option is kept under and whether the change waits
/// for the volume's next start (only when it is started).
pub fn check(v: &VolumeRecord, key: &str, value: Option<&str>) -> Result<(String, bool)> {
    let name = &v.name;
    let invalid = |e: String| ManagerError::Invalid(format!("{key}: {e}"));
    if let Some((spec, applies)) = GATEWAY_OPTIONS.iter().find(|(o, _)| o.matches(key)) {
        let key = spec.key;
        if let Some(val) = value {
            spec.validate(val)
                .map_err(|e| ManagerError::Invalid(format!("{key}: {e}")))?;
            if key == AUTH_ALLOW || key == AUTH_REJECT {
                let list = AddrList::parse(val)
                    .map_err(|e| ManagerError::Invalid(format!("{key}: {e}")))?;
                if list.is_empty() {
                    return Err(ManagerError::Invalid(format!(
                        "{key}: give at least one address (volume reset {name} {key} removes it)"
                    )));
                }
            }
        }
        return Ok((key.to_string(), *applies == Applies::Restart && v.started));
    }
    let unknown = || ManagerError::Invalid(format!("unknown option {key}; {}", known_options()));
    let k = key.strip_prefix("cluster.").ok_or_else(unknown)?;
    let (_, spec) = cluster_option(k).ok_or_else(unknown)?;
    if LAYOUT_OPTIONS.contains(&spec.key) {
        return Err(ManagerError::Invalid(format!(
            "{key} follows from the volume's bricks and `replica N [arbiter 1]` at create; it cannot be set"
        )));
    }
    if let Some(val) = value {
        spec.validate(val).map_err(invalid)?;
        let r = v.replica_count();
        if spec.key == "quorum-count" && r > 1 && val.trim().parse::<usize>().is_ok_and(|n| n > r) {
            return Err(ManagerError::Invalid(format!(
                "{key}: {val} is more than the {r} bricks of a replica set of {name}"
            )));
        }
    }
    Ok((key.to_string(), v.started))
}

/// One option of a volume as `volume get` prints it: its value, and whether it was set.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OptionValue {
    pub key: String,
    /// What the volume runs with: the value set, else the default (none if it has none).
    pub value: Option<String>,
    /// True when `volume set` gave the value.
    pub set: bool,
}

impl VolumeRecord {
    /// Whether `nfs.disable` is on, its value read as its table's kind (on/off) reads it.
    pub fn nfs_disabled(&self) -> bool {
        self.options
            .get(NFS_DISABLE)
            .is_some_and(|v| engine::options::parse_bool(v).unwrap_or(false))
    }

    /// Every settable option with the value this volume runs with (`gluster volume get VOL
    /// all`): what was set, else the default, where replica 3 and up default to quorum-type
    /// auto, as glusterd makes them.
    pub fn option_values(&self) -> Vec<OptionValue> {
        settable_options()
            .into_iter()
            .map(|o| {
                let given = self.options.get(&o.key).cloned();
                let default = if o.key == "cluster.quorum-type" && self.replica_count() >= 3 {
                    Some("auto".to_string())
                } else {
                    o.default
                };
                OptionValue {
                    set: given.is_some(),
                    value: given.or(default),
                    key: o.key,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::BrickRecord;

    fn bricks(n: u16) -> Vec<BrickRecord> {
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

    #[test]
    fn settable_options_list_both_tables_with_defaults_and_docs() {
        let opts = settable_options();
        let get = |k: &str| opts.iter().find(|o| o.key == k).unwrap();
        let lu = get("cluster.lookup-unhashed");
        assert_eq!(lu.default.as_deref(), Some("on"));
        assert_eq!(lu.values, ["on", "off", "auto"]);
        assert_eq!(lu.applies, "restart");
        assert!(!lu.description.is_empty());
        assert_eq!(get("cluster.quorum-type").default.as_deref(), Some("none"));
        assert_eq!(get("nfs.disable").applies, "now");
        assert!(get("cluster.post-op-delay-secs").kind.contains("0..=60"));
        // What the layout fixes is not settable, so not listed.
        assert!(!opts.iter().any(|o| o.key == "cluster.afr-pending-xattr"));
        assert!(!opts.iter().any(|o| o.key == "cluster.arbiter-count"));
        assert!(opts.iter().all(|o| !o.description.is_empty()));
    }

    #[test]
    fn option_values_are_what_was_set_else_the_default() {
        let mut v = VolumeRecord::with_layout("vol", bricks(4), 2, 0).unwrap();
        v.options
            .insert("cluster.lookup-unhashed".into(), "auto".into());
        let vals = v.option_values();
        let get =
            |vals: &[OptionValue], k: &str| vals.iter().find(|o| o.key == k).cloned().unwrap();
        let lu = get(&vals, "cluster.lookup-unhashed");
        assert_eq!((lu.value.as_deref(), lu.set), (Some("auto"), true));
        let q = get(&vals, "cluster.quorum-type");
        assert_eq!((q.value.as_deref(), q.set), (Some("none"), false));
        assert_eq!(get(&vals, "cluster.quorum-count").value, None);
        // glusterd's default for three replicas and more.
        let r3 = VolumeRecord::with_layout("r3", bricks(3), 3, 1).unwrap();
        assert_eq!(
            get(&r3.option_values(), "cluster.quorum-type")
                .value
                .as_deref(),
            Some("auto")
        );
    }

    #[test]
    fn tls_and_auth_options_are_settable() {
        let opts = settable_options();
        let get = |k: &str| opts.iter().find(|o| o.key == k).unwrap();
        assert_eq!(get(SSL_ENABLED).applies, "restart");
        assert_eq!(get(AUTH_REJECT).applies, "now");
        assert_eq!(get(AUTH_ALLOW).default.as_deref(), Some("*"));
    }

    #[test]
    fn set_checks_values_against_the_tables() {
        let v = VolumeRecord::with_layout("vol", bricks(3), 3, 0).unwrap();
        assert_eq!(
            check(&v, "client.ssl", Some("on")).unwrap(),
            (SSL_ENABLED.to_string(), false)
        );
        assert!(check(&v, SSL_ENABLED, Some("maybe")).is_err());
        assert!(check(&v, AUTH_ALLOW, Some("a b")).is_err());
        assert!(check(&v, AUTH_ALLOW, Some(" , ")).is_err());
        assert!(check(&v, AUTH_ALLOW, Some("10.0.0.0/8")).is_ok());
        assert!(check(&v, "cluster.quorum-count", Some("4")).is_err());
        assert!(check(&v, "cluster.arbiter-count", Some("1")).is_err());
        let e = check(&v, "cluster.nope", Some("1"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("known: cluster.") && e.ends_with(crate::elastic::IO_THREADS),
            "{e}"
        );
        assert!(check(&v, crate::elastic::IO_THREADS, Some("0")).is_err());
        assert!(check(&v, crate::elastic::IO_THREADS, Some("16")).is_ok());
        assert!(check(&v, "cluster.commit-hash", Some("5")).is_err());
    }
}
