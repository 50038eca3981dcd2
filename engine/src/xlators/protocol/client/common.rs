//! The client translator's state: its settings, the current connection with the requests
//! waiting on it, and the brick's fd of each fd opened through it.

use crate::fop::*;
use crate::metrics::BrickMetrics;
use crate::rpc::*;
use crate::xlator::XlatorBase;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::oneshot;

pub(super) struct Conn {
    pub(super) tx: Arc<FrameSink>,
    pub(super) pending: Mutex<HashMap<u64, oneshot::Sender<(Reply, Bytes)>>>,
    pub(super) next_id: AtomicU64,
    pub(super) closed: AtomicBool,
    pub(super) generation: u64,
}

impl Conn {
    pub(super) fn fail_all(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let pending: Vec<_> = self.pending.lock().drain().collect();
        for (_, tx) in pending {
            let _ = tx.send((Err(Errno::ENOTCONN), Bytes::new()));
        }
    }
}

pub(super) struct RemoteFd {
    pub(super) remote: u64,
    pub(super) generation: u64,
}

#[derive(Clone)]
pub(super) struct Settings {
    pub(super) addr: String,
    pub(super) brick: String,
    pub(super) volume_id: Gfid,
    pub(super) secret: Vec<u8>,
    pub(super) ping_timeout: Duration,
    pub(super) tls: Option<ClientTls>,
}

/// TLS to the brick (`transport.socket.ssl-enabled`).
#[derive(Clone)]
pub(super) struct ClientTls {
    pub(super) connector: tokio_rustls::TlsConnector,
    /// The brick's host as TLS names it (SNI); see `crate::tls::client_config` for why the
    /// certificate need not match it.
    pub(super) name: rustls::pki_types::ServerName<'static>,
}

pub struct Client {
    pub(super) metrics: BrickMetrics,
    pub(super) base: XlatorBase,
    pub(super) settings: Settings,
    pub(super) conn: RwLock<Option<Arc<Conn>>>,
    pub(super) generation: AtomicU64,
    pub(super) stopped: AtomicBool,
    /// Why the brick last went down (or could not be reached), for `volume status` and the
    /// brick events; None while connected.
    pub(super) last_error: Mutex<Option<String>>,
    pub(super) me: Weak<Client>,
}

impl Client {
    /// True while the brick answers: from the handshake until a ping-timeout or a lost
    /// connection. This is the brick's state for `volume status`, the console and /metrics.
    pub fn is_connected(&self) -> bool {
        self.conn.read().is_some()
    }

    /// Why the brick is not connected (None while it is).
    pub fn last_error(&self) -> Option<String> {
        if self.is_connected() {
            return None;
        }
        self.last_error.lock().clone()
    }
}
