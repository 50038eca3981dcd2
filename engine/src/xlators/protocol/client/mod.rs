//! `protocol/client`: one brick, over one multiplexed connection.
//!
//! Requests are pipelined (each gets an id; replies match by id in any order). A ping every
//! second keeps the connection honest: a brick silent for `ping-timeout` is declared down,
//! every pending request fails at once with ENOTCONN and new ones fail without waiting, as
//! GlusterFS's client does. The connection is re-established in the background, and open fds
//! of an older connection are reopened by gfid on first use.

mod common;
mod conn;
mod fops;
mod options;

pub use common::Client;
pub use options::OPTIONS;

use crate::metrics::BrickMetrics;
use crate::options::Options;
use crate::registry::XlatorType;
use parking_lot::{Mutex, RwLock};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

pub fn xlator_type() -> XlatorType {
    XlatorType {
        type_name: "protocol/client",
        options: OPTIONS,
        min_children: 0,
        max_children: 0,
        build: Arc::new(|base, o: &Options| {
            let settings = Client::settings(o)?;
            // Brick metrics are labelled by volume and by this client's name (VOL-client-N).
            let volume = base
                .name
                .rsplit_once("-client-")
                .map_or(base.name.as_str(), |(v, _)| v)
                .to_string();
            let metrics = BrickMetrics::new(&volume, &base.name);
            metrics.set_up(false);
            Ok(Arc::new_cyclic(|me| Client {
                metrics,
                base,
                settings,
                conn: RwLock::new(None),
                generation: AtomicU64::new(0),
                stopped: AtomicBool::new(false),
                last_error: Mutex::new(Some("not connected yet".into())),
                me: me.clone(),
            }))
        }),
    }
}
