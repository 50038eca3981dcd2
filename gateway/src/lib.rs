//! The gateway: config, state store, volume manager, brick supervisor, REST API.

pub mod api;
pub mod auth;
pub mod config;
pub mod console;
pub mod daemon;
pub mod heal;
pub mod health;
pub mod jobs;
pub mod manager;
pub mod mounts;
pub mod nfs;
pub mod s3;
pub mod smb;
pub mod store;
pub mod tls;
pub mod volume;
