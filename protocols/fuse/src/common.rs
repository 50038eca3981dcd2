//! Small conversions every operation group uses.

use engine::{Ctx, Errno, Result};
use fuser::Request;
use std::ffi::OsStr;

pub(crate) fn ctx_of(req: &Request) -> Ctx {
    Ctx {
        uid: req.uid(),
        gid: req.gid(),
        pid: req.pid() as i32,
        ..Default::default()
    }
}

pub(crate) fn errno(e: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(e.0)
}

pub(crate) fn name_of(n: &OsStr) -> Result<String> {
    n.to_str().map(String::from).ok_or(Errno::EILSEQ)
}

/// Names the volume keeps for itself: the S3 frontend's staging area at the root and its
/// in-progress PUTs next to their keys (uploads must not appear as files).
pub(crate) fn hidden(parent: u64, name: &str) -> bool {
    (parent == fuser::INodeNo::ROOT.0 && name == engine::fop::keys::S3_STAGING_DIR)
        || engine::fop::keys::is_s3_staging_name(name)
}
