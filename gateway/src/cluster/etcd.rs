//! The cluster state in etcd, as the state store sees it: a mirror of every key under
//! [`PREFIX`], loaded at start and kept current by a watch, so reads never wait on etcd and go
//! on while it is away (the data path reads S3 keys and exports on every request); writes are
//! etcd transactions, applied to the mirror once etcd took them.
//!
//! etcd's client is async and the store's interface is not (RocksDB's is not), so etcd work
//! runs on a runtime of its own thread and a write waits for its answer there: a caller on one
//! of the daemon's workers gives the worker up for the wait (`block_in_place`).

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, PutOptions,
    Txn, TxnOp, WatchOptions,
};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

/// Every key of ours in etcd starts with this: an etcd shared with other users stays theirs.
pub const PREFIX: &str = "/gatewayd/";

/// How long one etcd request may take before the management call that made it fails.
const OP_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
#[error(
    "the cluster state in etcd ({endpoints}) is unreachable: {why}; management changes wait until it answers"
)]
pub struct EtcdError {
    pub endpoints: String,
    pub why: String,
}

/// One change of a write.
#[derive(Clone, Debug)]
pub enum Op {
    Put(String, Vec<u8>),
    Delete(String),
    /// Every key starting with this.
    DeletePrefix(String),
}

/// A key's value as the mirror last saw it, with the etcd revision that wrote it (`None`: the
/// revision that deleted it), so an older watch event never undoes a newer write of ours.
type Entry = (i64, Option<Vec<u8>>);

pub struct Etcd {
    endpoints: Vec<String>,
    client: Client,
    rt: tokio::runtime::Handle,
    mirror: RwLock<BTreeMap<String, Entry>>,
    /// Bumped after every change the mirror takes (its own writes and the watch's).
    changed: tokio::sync::watch::Sender<u64>,
    /// Whether the watch is connected right now.
    online: AtomicBool,
    /// The lease this node's liveness keys hang on (0: none right now).
    pub(crate) lease: AtomicI64,
}

impl Etcd {
    /// Connects and loads the state; fails if etcd does not answer (a node cannot start with
    /// no idea of the cluster's state).
    pub fn connect(endpoints: &[String]) -> Result<Arc<Etcd>, EtcdError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("etcd".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("etcd runtime");
                let _ = tx.send(rt.handle().clone());
                rt.block_on(std::future::pending::<()>());
            })
            .map_err(|e| EtcdError {
                endpoints: endpoints.join(","),
                why: format!("starting its thread: {e}"),
            })?;
        let rt = rx.recv().expect("etcd runtime handle");
        let eps = endpoints.to_vec();
        let client = {
            let _g = rt.enter();
            let opts = ConnectOptions::new()
                .with_connect_timeout(Duration::from_secs(2))
                .with_timeout(OP_TIMEOUT)
                .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
                .with_keep_alive_while_idle(true);
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            rt.spawn(async move {
                let _ = tx.send(Client::connect(eps, Some(opts)).await);
            });
            rx.recv().expect("etcd connect").map_err(|e| EtcdError {
                endpoints: endpoints.join(","),
                why: e.to_string(),
            })?
        };
        let e = Arc::new(Etcd {
            endpoints: endpoints.to_vec(),
            client,
            rt,
            mirror: RwLock::new(BTreeMap::new()),
            changed: tokio::sync::watch::channel(0).0,
            online: AtomicBool::new(false),
            lease: AtomicI64::new(0),
        });
        let me = e.clone();
        let loaded = e.run(async move { tokio::time::timeout(OP_TIMEOUT, me.load()).await });
        match loaded {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => return Err(e.error(err)),
            Err(_) => return Err(e.error(format!("no answer within {OP_TIMEOUT:?}"))),
        }
        e.keep_following();
        Ok(e)
    }

    fn error(&self, why: impl std::fmt::Display) -> EtcdError {
        EtcdError {
            endpoints: self.endpoints.join(","),
            why: plain(&why.to_string()),
        }
    }

    /// Runs `f` on the etcd thread and waits for it.
    fn run<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.rt.spawn(async move {
            let _ = tx.send(f.await);
        });
        let wait = move || rx.recv().expect("the etcd thread answers");
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        }
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    pub fn endpoints(&self) -> String {
        self.endpoints.join(",")
    }

    pub fn online(&self) -> bool {
        self.online.load(Ordering::Relaxed)
    }

    /// Resolves whenever the state changed (a write here, or one a watch brought).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.mirror.read().get(key).and_then(|(_, v)| v.clone())
    }

    /// Every live key under `prefix` with its value, in key order.
    pub fn scan(&self, prefix: &str) -> Vec<(String, Vec<u8>)> {
        self.mirror
            .read()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter_map(|(k, (_, v))| v.clone().map(|v| (k.clone(), v)))
            .collect()
    }

    /// The last `limit` live keys under `prefix`, newest (greatest) first.
    pub fn scan_back(&self, prefix: &str, limit: usize) -> Vec<(String, Vec<u8>)> {
        self.mirror
            .read()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter_map(|(k, (_, v))| v.clone().map(|v| (k.clone(), v)))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .take(limit)
            .collect()
    }

    /// Applies `ops` in one transaction, if every key of `absent` is absent (etcd's create
    /// revision 0): `Ok(false)` when one exists, and nothing is written.
    pub fn write(&self, ops: Vec<Op>, absent: Vec<String>) -> Result<bool, EtcdError> {
        let mut client = self.client();
        let txn_ops: Vec<TxnOp> = ops
            .iter()
            .map(|op| match op {
                Op::Put(k, v) => TxnOp::put(format!("{PREFIX}{k}"), v.clone(), None),
                Op::Delete(k) => TxnOp::delete(format!("{PREFIX}{k}"), None),
                Op::DeletePrefix(p) => TxnOp::delete(
                    format!("{PREFIX}{p}"),
                    Some(DeleteOptions::new().with_prefix()),
                ),
            })
            .collect();
        let compares: Vec<Compare> = absent
            .iter()
            .map(|k| Compare::create_revision(format!("{PREFIX}{k}"), CompareOp::Equal, 0))
            .collect();
        let r = self.run(async move {
            let txn = Txn::new().when(compares).and_then(txn_ops);
            tokio::time::timeout(OP_TIMEOUT, client.txn(txn)).await
        });
        let r = match r {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(self.error(e)),
            Err(_) => return Err(self.error(format!("no answer within {OP_TIMEOUT:?}"))),
        };
        if !r.succeeded() {
            return Ok(false);
        }
        let rev = r.header().map(|h| h.revision()).unwrap_or(0);
        {
            let mut m = self.mirror.write();
            for op in ops {
                match op {
                    Op::Put(k, v) => apply(&mut m, k, rev, Some(v)),
                    Op::Delete(k) => apply(&mut m, k, rev, None),
                    Op::DeletePrefix(p) => {
                        let keys: Vec<String> = m
                            .range(p.clone()..)
                            .take_while(|(k, _)| k.starts_with(&p))
                            .map(|(k, _)| k.clone())
                            .collect();
                        for k in keys {
                            apply(&mut m, k, rev, None);
                        }
                    }
                }
            }
        }
        self.changed.send_modify(|g| *g += 1);
        Ok(true)
    }

    /// Checks etcd answers now (a management call asks before it changes anything outside
    /// etcd, such as a brick's directory).
    pub fn check(&self) -> Result<(), EtcdError> {
        let mut client = self.client();
        match self.run(async move { tokio::time::timeout(OP_TIMEOUT, client.status()).await }) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.error(e)),
            Err(_) => Err(self.error(format!("no answer within {OP_TIMEOUT:?}"))),
        }
    }

    /// Loads every key (replacing the mirror) and returns the revision it was read at.
    async fn load(&self) -> Result<i64, etcd_client::Error> {
        let mut client = self.client();
        let r = client
            .get(PREFIX, Some(GetOptions::new().with_prefix()))
            .await?;
        let rev = r.header().map(|h| h.revision()).unwrap_or(0);
        let mut fresh = BTreeMap::new();
        for kv in r.kvs() {
            let Some(k) = String::from_utf8_lossy(kv.key())
                .strip_prefix(PREFIX)
                .map(str::to_string)
            else {
                continue;
            };
            fresh.insert(k, (kv.mod_revision(), Some(kv.value().to_vec())));
        }
        *self.mirror.write() = fresh;
        self.changed.send_modify(|g| *g += 1);
        Ok(rev)
    }

    /// Loads the state, then follows it; returns when the watch breaks.
    async fn follow(&self) -> Result<(), etcd_client::Error> {
        let rev = self.load().await?;
        let mut client = self.client();
        let (_watcher, mut stream) = client
            .watch(
                PREFIX,
                Some(
                    WatchOptions::new()
                        .with_prefix()
                        .with_start_revision(rev + 1)
                        .with_progress_notify(),
                ),
            )
            .await?;
        self.online.store(true, Ordering::Relaxed);
        while let Some(resp) = stream.message().await? {
            if resp.canceled() {
                return Err(etcd_client::Error::WatchError(format!(
                    "watch cancelled: {}",
                    resp.cancel_reason()
                )));
            }
            if resp.events().is_empty() {
                continue;
            }
            {
                let mut m = self.mirror.write();
                for ev in resp.events() {
                    let Some(kv) = ev.kv() else { continue };
                    let Some(k) = String::from_utf8_lossy(kv.key())
                        .strip_prefix(PREFIX)
                        .map(str::to_string)
                    else {
                        continue;
                    };
                    let v = match ev.event_type() {
                        EventType::Put => Some(kv.value().to_vec()),
                        EventType::Delete => None,
                    };
                    apply(&mut m, k, kv.mod_revision(), v);
                }
            }
            self.changed.send_modify(|g| *g += 1);
        }
        Err(etcd_client::Error::WatchError("watch stream ended".into()))
    }

    /// Keeps the mirror current for the life of the process: reloads and watches again after
    /// every break (etcd restarted, unreachable, compacted past us).
    fn keep_following(self: &Arc<Etcd>) {
        let me = self.clone();
        self.rt.spawn(async move {
            loop {
                if let Err(e) = me.follow().await
                    && me.online.swap(false, Ordering::Relaxed)
                {
                    tracing::warn!(etcd = %me.endpoints(), "lost the cluster state's watch: {e}; serving from the last state seen");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    /// Puts `key` with the node's lease, if it is absent or already ours: `Ok(true)` when
    /// this node holds it afterwards.
    pub fn claim(&self, key: &str, me: &str) -> Result<bool, EtcdError> {
        let lease = self.lease.load(Ordering::Relaxed);
        if lease == 0 {
            return Ok(false);
        }
        if let Some(v) = self.get(key) {
            return Ok(v == me.as_bytes());
        }
        let mut client = self.client();
        let full = format!("{PREFIX}{key}");
        let value = me.as_bytes().to_vec();
        let r = self.run(async move {
            let txn = Txn::new()
                .when([Compare::create_revision(full.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(
                    full,
                    value,
                    Some(PutOptions::new().with_lease(lease)),
                )]);
            tokio::time::timeout(OP_TIMEOUT, client.txn(txn)).await
        });
        match r {
            Ok(Ok(r)) => {
                if r.succeeded() {
                    let rev = r.header().map(|h| h.revision()).unwrap_or(0);
                    apply(
                        &mut self.mirror.write(),
                        key.to_string(),
                        rev,
                        Some(me.as_bytes().to_vec()),
                    );
                }
                Ok(r.succeeded())
            }
            Ok(Err(e)) => Err(self.error(e)),
            Err(_) => Err(self.error(format!("no answer within {OP_TIMEOUT:?}"))),
        }
    }

    /// Drops `key` if this node holds it.
    pub fn release(&self, key: &str, me: &str) {
        let mut client = self.client();
        let full = format!("{PREFIX}{key}");
        let value = me.as_bytes().to_vec();
        let r = self.run(async move {
            let txn = Txn::new()
                .when([Compare::value(full.clone(), CompareOp::Equal, value)])
                .and_then([TxnOp::delete(full, None)]);
            tokio::time::timeout(OP_TIMEOUT, client.txn(txn)).await
        });
        if let Ok(Ok(r)) = r
            && r.succeeded()
        {
            let rev = r.header().map(|h| h.revision()).unwrap_or(0);
            apply(&mut self.mirror.write(), key.to_string(), rev, None);
        }
    }

    /// Keeps `key` = `value` under a lease of `ttl` while this process lives and etcd answers:
    /// the key vanishes `ttl` after the node dies or loses etcd, and comes back with a new
    /// lease when etcd does.
    pub fn keep_alive_key(self: &Arc<Etcd>, key: String, value: Vec<u8>, ttl: i64) {
        let me = self.clone();
        self.rt.spawn(async move {
            loop {
                if let Err(e) = me.hold(&key, &value, ttl).await {
                    tracing::debug!(etcd = %me.endpoints(), "node lease: {e}");
                }
                me.lease.store(0, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    async fn hold(&self, key: &str, value: &[u8], ttl: i64) -> Result<(), etcd_client::Error> {
        let mut client = self.client();
        let lease = client.lease_grant(ttl, None).await?.id();
        client
            .put(
                format!("{PREFIX}{key}"),
                value.to_vec(),
                Some(PutOptions::new().with_lease(lease)),
            )
            .await?;
        self.lease.store(lease, Ordering::Relaxed);
        let (mut keeper, mut stream) = client.lease_keep_alive(lease).await?;
        let every = Duration::from_millis((ttl as u64 * 1000) / 3);
        loop {
            keeper.keep_alive().await?;
            match tokio::time::timeout(every, stream.message()).await {
                Ok(Ok(Some(r))) if r.ttl() > 0 => {}
                Ok(Ok(Some(_))) => {
                    return Err(etcd_client::Error::LeaseKeepAliveError(
                        "the lease expired".into(),
                    ));
                }
                Ok(Ok(None)) => {
                    return Err(etcd_client::Error::LeaseKeepAliveError(
                        "keep-alive stream ended".into(),
                    ));
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(etcd_client::Error::LeaseKeepAliveError(
                        "no keep-alive answer".into(),
                    ));
                }
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// The cause in a gRPC transport error's words, without its nested debug dump.
fn plain(why: &str) -> String {
    for (needle, said) in [
        ("Connection refused", "connection refused"),
        ("No route to host", "no route to host"),
        ("Network is unreachable", "network unreachable"),
        ("timed out", "timed out"),
        ("Timeout expired", "timed out"),
        ("deadline", "timed out"),
    ] {
        if why.contains(needle) {
            return said.into();
        }
    }
    why.chars().take(200).collect()
}

fn apply(m: &mut BTreeMap<String, Entry>, k: String, rev: i64, v: Option<Vec<u8>>) {
    match m.get(&k) {
        Some((seen, _)) if *seen > rev => {}
        _ => {
            m.insert(k, (rev, v));
        }
    }
}
