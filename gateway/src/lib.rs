//! The gateway: config, state store, volume manager, brick supervisor, REST API.
//!
//! Modules depend one way: `daemon` and `api` at the top; the services (`heal`, `nfs`, `s3`,
//! `smb`, `mounts`) below them; then `manager`, which uses `supervisor`, `health`, `jobs`,
//! `auth`, `options`, `status`, `brick_checks` and `smb_runtime`; `store`, `volume`, `error`,
//! `config` and `tls` at the bottom.

pub mod api;
pub mod auth;
pub mod brick_checks;
pub mod cluster;
pub mod config;
pub mod console;
pub mod daemon;
pub mod elastic;
pub mod error;
pub mod heal;
pub mod health;
pub mod jobs;
pub mod manager;
pub mod mounts;
pub mod new_bricks;
pub mod nfs;
pub mod node;
pub mod options;
pub mod s3;
pub mod smb;
pub mod smb_runtime;
pub mod status;
pub mod store;
pub mod supervisor;
pub mod tls;
pub mod volume;
pub mod volume_caches;
pub mod volume_graph;
