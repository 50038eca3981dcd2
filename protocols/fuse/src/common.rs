//! Small conversions every operation group uses.

use crate::types::Fs;
use engine::{Ctx, Errno, Result};
use fuser::Request;
use std::ffi::OsStr;

pub(crate) fn ctx_of(fs: &Fs, req: &Request) -> Ctx {
    Ctx {
        uid: req.uid(),
        gid: req.gid(),
        pid: req.pid() as i32,
        protocol: fs.inner.protocol,
        write_behind: true,
        ..Default::default()
    }
}

pub(crate) fn errno(e: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(e.0)
}

pub(crate) fn name_of(n: &OsStr) -> Result<String> {
    n.to_str().map(String::from).ok_or(Errno::EILSEQ)
}
