//! The translator engine: the fop model, the `Xlator` trait, volfiles and graphs, the
//! client-side translators and the brick RPC.

pub mod addr_list;
pub mod brick_dir;
pub mod fop;
pub mod graph;
pub mod mdata;
pub mod metrics;
pub mod options;
pub mod registry;
pub mod rpc;
pub mod time;
pub mod tls;
pub mod volfile;
pub mod xlator;
pub mod xlators;

pub use fop::*;
pub use xlator::{Xlator, XlatorBase, XlatorRef};
