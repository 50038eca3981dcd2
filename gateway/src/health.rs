//! Brick state as the brick RPC sees it, and the brick event feed.
//!
//! A brick is online while its `protocol/client` connection answers pings: a brickd that hangs
//! (SIGSTOP, a host that stops answering) is down within ping-timeout even though its port
//! still accepts connections. `volume status`, the console, `/metrics` (`gateway_brick_up`)
//! and heal info all read this one state. Every change of it is recorded as an event
//! (`GET /api/v1/events`, the console's feed); a deliberate stop of a volume is not an event.

use crate::volume::VolumeRecord;
use engine::graph::Graph;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Events kept in memory.
const KEEP: usize = 500;
/// How often a started volume's bricks are looked at.
pub const EVERY: Duration = Duration::from_millis(250);

/// Whether the brick of client translator `name` answers, and if not why.
pub fn link(g: &Graph, name: &str) -> (bool, Option<String>) {
    match g.brick_link(name) {
        Some(l) => (l.connected, l.last_error),
        None if g.get(name).is_none() => {
            (false, Some(format!("{name} is not in the volume's graph")))
        }
        None => (false, Some(format!("{name} is not a protocol/client"))),
    }
}

/// One brick going down or coming back.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BrickEvent {
    /// Unix time, milliseconds.
    pub at_ms: u64,
    pub volume: String,
    /// The brick's client name, VOLUME-client-N.
    pub brick: String,
    pub host: String,
    pub path: String,
    /// The brick's state from then on.
    pub online: bool,
    /// Why it is down (the brick RPC's or brickd's own words).
    pub reason: Option<String>,
    /// The event in a sentence, as the console shows it.
    pub message: String,
}

/// The feed of brick events of this gatewayd (in memory, newest kept).
#[derive(Default)]
pub struct BrickEvents {
    ring: Mutex<VecDeque<BrickEvent>>,
}

impl BrickEvents {
    /// Records that brick `i` of `v` went down (`online` false) or came back.
    pub fn record(&self, v: &VolumeRecord, i: usize, online: bool, reason: Option<String>) {
        let b = &v.bricks[i];
        let name = v.client_name(i);
        let message = match (online, &reason) {
            (true, _) => format!("brick {name} ({}:{}) is back online", b.host, b.path),
            (false, Some(r)) => format!("brick {name} ({}:{}) went down: {r}", b.host, b.path),
            (false, None) => format!("brick {name} ({}:{}) went down", b.host, b.path),
        };
        if online {
            tracing::info!(volume = %v.name, brick = %name, "{message}");
        } else {
            tracing::warn!(volume = %v.name, brick = %name, "{message}");
        }
        let e = BrickEvent {
            at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64,
            volume: v.name.clone(),
            brick: name,
            host: b.host.clone(),
            path: b.path.clone(),
            online,
            reason,
            message,
        };
        let mut r = self.ring.lock();
        r.push_back(e);
        while r.len() > KEEP {
            r.pop_front();
        }
    }

    /// The newest `limit` events, newest first.
    pub fn list(&self, limit: usize) -> Vec<BrickEvent> {
        self.ring.lock().iter().rev().take(limit).cloned().collect()
    }
}
