//! Prometheus metrics of the whole process: operations, errors, latencies and bytes per
//! protocol, fops per volume and protocol (`debug/io-stats`), requests and latencies per brick,
//! bricks up. Served as text on `/metrics`.
//!
//! The metric families are global (one registry per process, as Prometheus clients are). The
//! data path never looks a label set up: each frontend, io-stats and brick client resolves its
//! handles once (`ProtocolOps::new`, `VolumeFops::of`, `BrickMetrics::new`) and then only
//! touches atomics.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

/// 50 µs … 10 s: a loopback brick round trip is ~100 µs, a 1 MiB write a few ms.
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];

struct Families {
    registry: Registry,
    rebalance_files: IntGaugeVec,
    rebalance_bytes: IntGaugeVec,
    ops: IntCounterVec,
    errors: IntCounterVec,
    latency: HistogramVec,
    bytes: IntCounterVec,
    volume_ops: IntCounterVec,
    volume_bytes: IntCounterVec,
    fop_ops: IntCounterVec,
    fop_errors: IntCounterVec,
    fop_latency: HistogramVec,
    brick_requests: IntCounterVec,
    brick_errors: IntCounterVec,
    brick_latency: HistogramVec,
    brick_up: IntGaugeVec,
    md_cache: IntCounterVec,
    heal_pending: IntGaugeVec,
    split_brain: IntGaugeVec,
}

fn families() -> &'static Families {
    static F: OnceLock<Families> = OnceLock::new();
    F.get_or_init(|| {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                labels,
            )
            .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let ops = counter(
            "gateway_protocol_operations_total",
            "Requests served, by protocol (the frontend) and operation.",
            &["protocol", "op"],
        );
        let errors = counter(
            "gateway_protocol_errors_total",
            "Operations that failed, by protocol and operation.",
            &["protocol", "op"],
        );
        let latency = histogram(
            "gateway_protocol_operation_seconds",
            "Time to serve an operation, by protocol and operation.",
            &["protocol", "op"],
        );
        let bytes = counter(
            "gateway_protocol_bytes_total",
            "File data moved, by protocol and direction (read, write).",
            &["protocol", "direction"],
        );
        let volume_ops = counter(
            "gateway_volume_operations_total",
            "Requests served, by volume and protocol (counted by the frontends).",
            &["volume", "protocol"],
        );
        let volume_bytes = counter(
            "gateway_volume_bytes_total",
            "File data moved by fops (debug/io-stats), by volume, protocol and direction.",
            &["volume", "protocol", "direction"],
        );
        let fop_ops = counter(
            "gateway_fop_operations_total",
            "File operations (fops) sent into a volume, by volume, protocol and fop.",
            &["volume", "protocol", "fop"],
        );
        let fop_errors = counter(
            "gateway_fop_errors_total",
            "Fops that failed, by volume, protocol and fop.",
            &["volume", "protocol", "fop"],
        );
        let fop_latency = histogram(
            "gateway_fop_seconds",
            "Time a fop took through the whole graph, by volume, protocol and fop.",
            &["volume", "protocol", "fop"],
        );
        let brick_requests = counter(
            "gateway_brick_requests_total",
            "Requests sent to a brick.",
            &["volume", "brick"],
        );
        let brick_errors = counter(
            "gateway_brick_errors_total",
            "Brick requests answered with an error or lost with the connection.",
            &["volume", "brick"],
        );
        let brick_latency = histogram(
            "gateway_brick_request_seconds",
            "Round trip of a brick request.",
            &["volume", "brick"],
        );
        let brick_up = IntGaugeVec::new(
            Opts::new(
                "gateway_brick_up",
                "1 while the brick is connected, else 0.",
            ),
            &["volume", "brick"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(brick_up.clone()))
            .expect("unique metric");
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let md_cache = counter(
            "gateway_md_cache_total",
            "performance/md-cache: lookups, stats and getxattrs answered from memory (hit) or sent on (miss), and cache entries dropped (invalidation: own, or upcall when a brick said another client changed them).",
            &["volume", "event"],
        );
        let heal_pending = gauge(
            "gateway_heal_pending_entries",
            "Entries a brick's heal index lists (not yet healed), as the heal daemon last read it.",
            &["volume", "brick"],
        );
        let split_brain = gauge(
            "gateway_split_brain_entries",
            "Entries found in split-brain in a replica set, waiting for a choice.",
            &["volume", "replicate"],
        );
        let rebalance_files = gauge(
            "gateway_rebalance_files",
            "Files of the volume's last rebalance or remove-brick, by subvolume and outcome (scanned, moved, skipped, failed).",
            &["volume", "subvolume", "outcome"],
        );
        let rebalance_bytes = gauge(
            "gateway_rebalance_bytes_moved",
            "Bytes the volume's last rebalance or remove-brick moved, by subvolume.",
            &["volume", "subvolume"],
        );
        Families {
            md_cache,
            heal_pending,
            split_brain,
            rebalance_files,
            rebalance_bytes,
            registry,
            ops,
            errors,
            latency,
            bytes,
            volume_ops,
            volume_bytes,
            fop_ops,
            fop_errors,
            fop_latency,
            brick_requests,
            brick_errors,
            brick_latency,
            brick_up,
        }
    })
}

/// Every metric, in Prometheus text format 0.0.4.
pub fn render() -> String {
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&families().registry.gather(), &mut out)
        .expect("text encoding into memory");
    String::from_utf8(out).expect("the text format is UTF-8")
}

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

struct OpHandles {
    ops: IntCounter,
    errors: IntCounter,
    latency: Histogram,
}

/// One protocol's operation metrics, resolved for its known operations.
pub struct ProtocolOps {
    protocol: &'static str,
    by_op: HashMap<&'static str, OpHandles>,
    read: IntCounter,
    write: IntCounter,
    /// For a frontend that serves one volume (a FUSE mount, the object service): that volume's
    /// requests.
    volume: Option<VolumeOps>,
}

/// Requests of one protocol on one volume, counted where they arrive (a request refused before
/// it reaches the volume counts too); the volume's fops and bytes are counted by its
/// `debug/io-stats` (`VolumeFops`).
#[derive(Debug)]
pub struct VolumeOps {
    ops: IntCounter,
}

impl VolumeOps {
    pub fn new(protocol: &str, volume: &str) -> VolumeOps {
        VolumeOps {
            ops: families().volume_ops.with_label_values(&[volume, protocol]),
        }
    }

    pub fn operation(&self) {
        self.ops.inc();
    }
}

impl ProtocolOps {
    pub fn new(protocol: &'static str, ops: &[&'static str]) -> ProtocolOps {
        let f = families();
        let by_op = ops
            .iter()
            .map(|op| {
                (
                    *op,
                    OpHandles {
                        ops: f.ops.with_label_values(&[protocol, op]),
                        errors: f.errors.with_label_values(&[protocol, op]),
                        latency: f.latency.with_label_values(&[protocol, op]),
                    },
                )
            })
            .collect();
        ProtocolOps {
            protocol,
            by_op,
            read: f.bytes.with_label_values(&[protocol, "read"]),
            write: f.bytes.with_label_values(&[protocol, "write"]),
            volume: None,
        }
    }

    /// Also counts every request for `volume` (a frontend serving one volume).
    pub fn with_volume(mut self, volume: &str) -> ProtocolOps {
        self.volume = Some(VolumeOps::new(self.protocol, volume));
        self
    }

    /// Counts one operation; `ok == false` also counts an error.
    pub fn record(&self, op: &str, ok: bool, took: Duration) {
        if let Some(v) = &self.volume {
            v.operation();
        }
        let secs = took.as_secs_f64();
        match self.by_op.get(op) {
            Some(h) => {
                h.ops.inc();
                h.latency.observe(secs);
                if !ok {
                    h.errors.inc();
                }
            }
            // An operation not named at start: rare, so the label lookup is acceptable.
            None => {
                let f = families();
                f.ops.with_label_values(&[self.protocol, op]).inc();
                f.latency
                    .with_label_values(&[self.protocol, op])
                    .observe(secs);
                if !ok {
                    f.errors.with_label_values(&[self.protocol, op]).inc();
                }
            }
        }
    }

    pub fn read_bytes(&self, n: u64) {
        self.read.inc_by(n);
    }

    pub fn written_bytes(&self, n: u64) {
        self.write.inc_by(n);
    }
}

/// How many protocols one volume's io-stats tells apart (the four frontends and the gateway's
/// own work use five); a further one is counted under the last slot's label.
const PROTOCOL_SLOTS: usize = 8;

/// The fop metrics of one volume (`debug/io-stats`), per protocol: each fop, and the bytes
/// read and written. A protocol's handles are made the first time it sends a fop, each fop's
/// the first time it is sent; after that a fop finds its protocol among a few set-once slots
/// (no lock, no reference count) and only touches atomics.
pub struct VolumeFops {
    volume: String,
    fops: &'static [&'static str],
    protocols: [OnceLock<ProtocolFops>; PROTOCOL_SLOTS],
}

/// One protocol's fops on one volume.
pub struct ProtocolFops {
    volume: String,
    protocol: &'static str,
    fops: &'static [&'static str],
    by_fop: Vec<OnceLock<OpHandles>>,
    read: IntCounter,
    write: IntCounter,
}

impl VolumeFops {
    /// `fops` names the fops by the index `ProtocolFops::record` is given.
    pub fn new(volume: &str, fops: &'static [&'static str]) -> VolumeFops {
        VolumeFops {
            volume: volume.to_string(),
            fops,
            protocols: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// The handles of `protocol` ("" is the gateway's own work: "internal").
    pub fn of(&self, protocol: &'static str) -> &ProtocolFops {
        let protocol = if protocol.is_empty() {
            "internal"
        } else {
            protocol
        };
        for slot in &self.protocols {
            // An empty slot is taken by whichever protocol comes first; one that lost the
            // race looks on.
            let p = slot.get_or_init(|| self.make(protocol));
            if p.protocol == protocol {
                return p;
            }
        }
        self.protocols[PROTOCOL_SLOTS - 1]
            .get()
            .expect("every slot is set")
    }

    fn make(&self, protocol: &'static str) -> ProtocolFops {
        let f = families();
        let v = self.volume.as_str();
        ProtocolFops {
            volume: self.volume.clone(),
            protocol,
            fops: self.fops,
            by_fop: self.fops.iter().map(|_| OnceLock::new()).collect(),
            read: f.volume_bytes.with_label_values(&[v, protocol, "read"]),
            write: f.volume_bytes.with_label_values(&[v, protocol, "write"]),
        }
    }
}

impl ProtocolFops {
    /// Counts one fop (its index in the names given to `VolumeFops::new`); `ok == false` also
    /// counts an error.
    pub fn record(&self, fop: usize, ok: bool, took: Duration) {
        let Some(slot) = self.by_fop.get(fop) else {
            return;
        };
        let h = slot.get_or_init(|| {
            let f = families();
            let l = [self.volume.as_str(), self.protocol, self.fops[fop]];
            OpHandles {
                ops: f.fop_ops.with_label_values(&l),
                errors: f.fop_errors.with_label_values(&l),
                latency: f.fop_latency.with_label_values(&l),
            }
        });
        h.ops.inc();
        h.latency.observe(took.as_secs_f64());
        if !ok {
            h.errors.inc();
        }
    }

    pub fn read_bytes(&self, n: u64) {
        self.read.inc_by(n);
    }

    pub fn written_bytes(&self, n: u64) {
        self.write.inc_by(n);
    }
}

/// What the heal daemon last read of a brick's index.
pub fn set_heal_pending(volume: &str, brick: &str, entries: usize) {
    families()
        .heal_pending
        .with_label_values(&[volume, brick])
        .set(entries as i64);
}

/// What a rebalance counted on one subvolume so far: scanned, moved, skipped, failed, bytes.
pub fn set_rebalance(volume: &str, subvolume: &str, files: [u64; 4], bytes: u64) {
    let f = families();
    for (outcome, n) in ["scanned", "moved", "skipped", "failed"].iter().zip(files) {
        f.rebalance_files
            .with_label_values(&[volume, subvolume, outcome])
            .set(n as i64);
    }
    f.rebalance_bytes
        .with_label_values(&[volume, subvolume])
        .set(bytes as i64);
}

pub fn set_split_brain(volume: &str, replicate: &str, entries: usize) {
    families()
        .split_brain
        .with_label_values(&[volume, replicate])
        .set(entries as i64);
}

/// One volume's `performance/md-cache` counts.
pub struct MdCacheMetrics {
    pub hit: IntCounter,
    pub miss: IntCounter,
    pub own: IntCounter,
    pub upcall: IntCounter,
}

impl MdCacheMetrics {
    pub fn new(volume: &str) -> MdCacheMetrics {
        let f = &families().md_cache;
        let c = |event: &str| f.with_label_values(&[volume, event]);
        MdCacheMetrics {
            hit: c("hit"),
            miss: c("miss"),
            own: c("invalidation_own"),
            upcall: c("invalidation_upcall"),
        }
    }
}

/// One brick's request metrics, as its protocol/client sees them.
pub struct BrickMetrics {
    requests: IntCounter,
    errors: IntCounter,
    latency: Histogram,
    up: IntGauge,
}

impl BrickMetrics {
    pub fn new(volume: &str, brick: &str) -> BrickMetrics {
        let f = families();
        BrickMetrics {
            requests: f.brick_requests.with_label_values(&[volume, brick]),
            errors: f.brick_errors.with_label_values(&[volume, brick]),
            latency: f.brick_latency.with_label_values(&[volume, brick]),
            up: f.brick_up.with_label_values(&[volume, brick]),
        }
    }

    pub fn record(&self, ok: bool, took: Duration) {
        self.requests.inc();
        self.latency.observe(took.as_secs_f64());
        if !ok {
            self.errors.inc();
        }
    }

    pub fn set_up(&self, up: bool) {
        self.up.set(i64::from(up));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_in_the_text() {
        let p = ProtocolOps::new("test", &["read"]);
        p.record("read", true, Duration::from_micros(300));
        p.record("read", false, Duration::from_millis(2));
        p.record("other", true, Duration::from_millis(1));
        p.read_bytes(4096);
        let b = BrickMetrics::new("v", "v-client-0");
        b.set_up(true);
        b.record(true, Duration::from_micros(120));
        let t = render();
        assert!(
            t.contains(r#"gateway_protocol_operations_total{op="read",protocol="test"} 2"#),
            "{t}"
        );
        assert!(t.contains(r#"gateway_protocol_errors_total{op="read",protocol="test"} 1"#));
        assert!(t.contains(r#"gateway_protocol_operations_total{op="other",protocol="test"} 1"#));
        assert!(
            t.contains(r#"gateway_protocol_bytes_total{direction="read",protocol="test"} 4096"#)
        );
        assert!(t.contains(r#"gateway_brick_up{brick="v-client-0",volume="v"} 1"#));
        assert!(t.contains("gateway_brick_request_seconds_bucket"));
    }

    #[test]
    fn fops_count_per_volume_and_protocol() {
        const FOPS: &[&str] = &["lookup", "read"];
        let v = VolumeFops::new("fv", FOPS);
        let p = v.of("test");
        assert!(std::ptr::eq(p, v.of("test")));
        p.record(1, true, Duration::from_micros(50));
        p.record(1, false, Duration::from_micros(50));
        p.read_bytes(10);
        v.of("").record(0, true, Duration::from_micros(5));
        let t = render();
        assert!(
            t.contains(r#"gateway_fop_operations_total{fop="read",protocol="test",volume="fv"} 2"#),
            "{t}"
        );
        assert!(
            t.contains(r#"gateway_fop_errors_total{fop="read",protocol="test",volume="fv"} 1"#)
        );
        assert!(t.contains(
            r#"gateway_fop_operations_total{fop="lookup",protocol="internal",volume="fv"} 1"#
        ));
        assert!(t.contains(
            r#"gateway_volume_bytes_total{direction="read",protocol="test",volume="fv"} 10"#
        ));
        assert!(!t.contains(r#"fop="lookup",protocol="test""#));
    }
}
