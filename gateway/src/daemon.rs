//! What `gatewayd up` and `gatewayd serve` share: opening the state, the admin token, the API
//! listener, and an orderly shutdown.

use crate::api;
use crate::config::GatewayConfig;
use crate::manager::Manager;
use crate::store::Store;
use anyhow::Context;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Daemon {
    pub manager: Arc<Manager>,
    pub api_url: String,
    pub token_file: PathBuf,
    pub s3_url: Option<String>,
    pub nfs_addr: Option<std::net::SocketAddr>,
    /// Where smbd listens once there is a share.
    pub smb_addr: Option<std::net::SocketAddr>,
    /// The console's admin password when this start made it: print it at once (it is kept
    /// in the state only once the start succeeded).
    pub new_admin_password: Option<String>,
    server: tokio::task::JoinHandle<()>,
    s3: Option<tokio::task::JoinHandle<()>>,
    nfs: Option<tokio::task::JoinHandle<()>>,
    smb: Option<tokio::task::JoinHandle<()>>,
    heal: tokio::task::JoinHandle<()>,
    follow: Option<tokio::task::JoinHandle<()>>,
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// The admin token: made on first start and written to DATA/admin.token; a token file that
/// went missing is replaced (its old token stops working).
fn ensure_token(store: &Store, data: &Path) -> anyhow::Result<(PathBuf, bool)> {
    let file = data.join("admin.token");
    let known = store.admin_token_hash()?;
    if let (Some(h), Ok(t)) = (&known, std::fs::read_to_string(&file))
        && crate::auth::token_hash(t.trim()) == *h
    {
        return Ok((file, false));
    }
    let token = hex::encode(rand::random::<[u8; 24]>());
    store.set_admin_token_hash(&crate::auth::token_hash(&token))?;
    write_private(&file, &format!("{token}\n"))?;
    Ok((file, true))
}

impl Daemon {
    pub async fn start(mut cfg: GatewayConfig) -> anyhow::Result<Daemon> {
        let mut smb_port_held = None;
        if let Some(a) = &mut cfg.smb_listen
            && a.port() == 0
        {
            // smbd takes a port number, not a socket: pick a free one for it.
            let (port, held) = crate::smb::reserve_port(a.ip())
                .with_context(|| format!("finding a free port for SMB on {}", a.ip()))?;
            a.set_port(port);
            smb_port_held = Some(held);
        }
        let data = cfg.data_dir.clone();
        std::fs::create_dir_all(&data)
            .with_context(|| format!("creating the data directory {}", data.display()))?;
        let node = cfg.node();
        crate::node::set_node(&node, cfg.clustered());
        let store = if cfg.clustered() {
            let etcd = crate::cluster::etcd::Etcd::connect(&cfg.etcd_endpoints)
                .context("reading the cluster state (etcd_endpoints in gateway.toml)")?;
            tracing::info!(node = %node, etcd = %etcd.endpoints(), "cluster state in etcd");
            Store::etcd(etcd, &node)
        } else {
            Store::open(&data.join("state")).with_context(|| {
                format!(
                    "opening the state in {} (is another gatewayd using it?)",
                    data.display()
                )
            })?
        };
        let (token_file, fresh) = ensure_token(&store, &data)?;
        if fresh {
            tracing::info!(file = %token_file.display(), "new admin token written");
        }
        let given = match &cfg.admin_password_file {
            Some(f) => Some(
                std::fs::read_to_string(f)
                    .with_context(|| format!("reading the admin password from {}", f.display()))?
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
            ),
            None => None,
        };
        // A first start makes the console password here but keeps it only once every listener
        // is up: a start that fails before it could print it leaves none behind.
        let new_admin_password = crate::auth::plan_admin_password(&store, given.as_deref())
            .context("setting the console's admin password")?;
        let listener = tokio::net::TcpListener::bind(cfg.api_listen)
            .await
            .with_context(|| format!("listening for the API on {}", cfg.api_listen))?;
        let addr = listener.local_addr()?;
        cfg.check()?;
        let tls = match cfg.api_tls() {
            Some((cert, key)) => Some(
                crate::tls::acceptor(cert, key)
                    .with_context(|| format!("HTTPS for the API on {addr}"))?,
            ),
            None => None,
        };
        let tls_on = tls.is_some();
        let api_url = match &tls {
            Some(_) => format!("https://{addr}"),
            None => format!("http://{addr}"),
        };
        let cluster = match store.cluster() {
            Some(etcd) => {
                let info = crate::cluster::NodeInfo {
                    name: node.clone(),
                    api_url: manager_url(&cfg, tls_on, addr),
                    version: env!("CARGO_PKG_VERSION").into(),
                    since: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_secs(),
                };
                Some(
                    crate::cluster::Cluster::join(etcd.clone(), &info)
                        .context("joining the pool in etcd")?,
                )
            }
            None => None,
        };
        let manager = Manager::with_cluster(cfg, store, cluster);
        let _ = manager.api_url.set(api_url.clone());
        let app = api::router(manager.clone());
        let server = tokio::spawn(async move {
            // The peer's address reaches handlers (failed logins are logged with it).
            let r = match tls {
                Some(acceptor) => crate::tls::serve_https(listener, acceptor, app).await,
                None => {
                    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
                    axum::serve(listener, app).await
                }
            };
            if let Err(e) = r {
                tracing::error!("API server stopped: {e}");
            }
        });
        write_private(&data.join("api.url"), &format!("{api_url}\n"))?;
        tracing::info!(api = %api_url, "API listening");
        let (s3_url, s3) = match crate::s3::start(&manager).await? {
            Some((url, task)) => {
                write_private(&data.join("s3.url"), &format!("{url}\n"))?;
                (Some(url), Some(task))
            }
            None => (None, None),
        };
        let (nfs_addr, nfs) = match crate::nfs::start(&manager).await? {
            Some((addr, task)) => {
                write_private(&data.join("nfs.addr"), &format!("{addr}\n"))?;
                (Some(addr), Some(task))
            }
            None => (None, None),
        };
        let smb_addr = manager.cfg.smb_listen;
        if let Some(a) = smb_addr {
            write_private(&data.join("smb.addr"), &format!("{a}\n"))?;
        }
        manager.smb.inner.lock().await.reserved = smb_port_held;
        let smb = crate::smb::start(&manager);
        let heal = crate::heal::start(&manager);
        let follow = manager.follow_pool();
        let mut new_admin_password = new_admin_password;
        if let Some(p) = &new_admin_password
            && !crate::auth::keep_admin_password(&manager.store, p)
                .context("keeping the console's admin password")?
        {
            // Another node of the pool made the console's password first: that one holds.
            new_admin_password = None;
        }
        Ok(Daemon {
            heal,
            follow,
            new_admin_password,
            smb_addr,
            smb,
            manager,
            api_url,
            token_file,
            s3_url,
            nfs_addr,
            server,
            s3,
            nfs,
        })
    }

    pub async fn shutdown(self) {
        self.server.abort();
        if let Some(s3) = &self.s3 {
            s3.abort();
        }
        if let Some(nfs) = &self.nfs {
            nfs.abort();
            crate::nfs::stop(&self.manager).await;
        }
        self.heal.abort();
        if let Some(f) = &self.follow {
            f.abort();
        }
        if let Some(smb) = &self.smb {
            smb.abort();
            crate::smb::stop(&self.manager).await;
        }
        self.manager.shutdown().await;
        let _ = std::fs::remove_file(self.manager.cfg.data_dir.join("api.url"));
        let _ = std::fs::remove_file(self.manager.cfg.data_dir.join("s3.url"));
        let _ = std::fs::remove_file(self.manager.cfg.data_dir.join("nfs.addr"));
        let _ = std::fs::remove_file(self.manager.cfg.data_dir.join("smb.addr"));
    }
}

/// The API URL the other nodes of a pool use for this one.
fn manager_url(cfg: &GatewayConfig, tls: bool, addr: std::net::SocketAddr) -> String {
    cfg.advertised(if tls { "https" } else { "http" }, addr)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn terminated() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
