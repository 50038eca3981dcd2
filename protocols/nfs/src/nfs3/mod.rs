//! The NFSv3 procedures (RFC 1813 §3), each a few engine fops by gfid: the server, and the
//! dispatch of a call to its procedure (in the child module of its group) and of each
//! program (NFS here, MOUNT in `crate::mount`) to its server.

mod attr;
mod common;
mod entry;
mod io;
mod lookup;
mod readdir;

pub use common::Server;

use crate::export::{Exports, MOUNT_PROGRAM, NFS_PROGRAM};
use crate::handle::{Handle, export_tag};
use crate::rpc::{Call, Dispatch, Reply};
use crate::xdr::Reader;
use bytes::BytesMut;
use common::{Fail, fail_body};
use std::sync::Arc;

/// Procedure names, by number (RFC 1813), for metrics.
const PROCS: [&str; 22] = [
    "null",
    "getattr",
    "setattr",
    "lookup",
    "access",
    "readlink",
    "read",
    "write",
    "create",
    "mkdir",
    "symlink",
    "mknod",
    "remove",
    "rmdir",
    "rename",
    "link",
    "readdir",
    "readdirplus",
    "fsstat",
    "fsinfo",
    "pathconf",
    "commit",
];

impl Server {
    pub fn new(exports: Arc<dyn Exports>) -> Server {
        Server {
            exports,
            write_verf: rand::random(),
            metrics: engine::metrics::ProtocolOps::new("nfs", &PROCS),
        }
    }

    /// The volume a call's first argument (a file handle, for every procedure but NULL)
    /// belongs to, for the per-volume metrics.
    /// The procedure resolves the same handle again (with permission checks); this look-up
    /// only names the volume, so a call counts once however many handles it carries.
    fn volume_of_call(&self, args: &Reader) -> Option<Arc<engine::metrics::VolumeOps>> {
        let fh = args.clone().opaque(64).ok()?;
        let h = Handle::decode(&fh)?;
        self.exports
            .exports()
            .iter()
            .find(|e| e.volume_id == h.volume && export_tag(&e.path) == h.export)
            .map(|e| e.metrics.clone())
    }

    async fn nfs(&self, call: Call, r: Reader) -> Reply {
        let start = std::time::Instant::now();
        if call.proc_ != 0
            && let Some(v) = self.volume_of_call(&r)
        {
            v.operation();
        }
        let reply = self.nfs_proc(&call, r).await;
        if let Some(name) = PROCS.get(call.proc_ as usize) {
            let ok = match &reply {
                Reply::Success(b, _) => b.len() < 4 || b[..4] == [0, 0, 0, 0],
                _ => false,
            };
            self.metrics.record(name, ok, start.elapsed());
        }
        reply
    }

    async fn nfs_proc(&self, call: &Call, mut r: Reader) -> Reply {
        tracing::trace!(proc_ = call.proc_, "call");
        let res = match call.proc_ {
            0 => Ok(BytesMut::new()),
            1 => self.getattr(call, &mut r).await,
            2 => self.setattr(call, &mut r).await,
            3 => self.lookup(call, &mut r).await,
            4 => self.access(call, &mut r).await,
            5 => self.readlink(call, &mut r).await,
            6 => return self.read(call, &mut r).await,
            7 => self.write(call, &mut r).await,
            8 => self.create(call, &mut r).await,
            9 => self.mkdir(call, &mut r).await,
            10 => self.symlink(call, &mut r).await,
            11 => self.mknod(call, &mut r).await,
            12 => self.remove(call, &mut r, false).await,
            13 => self.remove(call, &mut r, true).await,
            14 => self.rename(call, &mut r).await,
            15 => self.link(call, &mut r).await,
            16 => self.readdir(call, &mut r, false).await,
            17 => self.readdir(call, &mut r, true).await,
            18 => self.fsstat(call, &mut r).await,
            19 => self.fsinfo(call, &mut r).await,
            20 => self.pathconf(call, &mut r).await,
            21 => self.commit(call, &mut r).await,
            _ => return Reply::ProcUnavail,
        };
        match res {
            Ok(b) => Reply::ok(b),
            Err(Fail::Garbage) => Reply::GarbageArgs,
            Err(Fail::Status(s)) => Reply::ok(fail_body(call.proc_, s)),
        }
    }
}

impl Dispatch for Server {
    async fn call(self: Arc<Self>, call: Call, args: Reader) -> Reply {
        match call.prog {
            NFS_PROGRAM if call.vers == 3 => {
                if call.proc_ != 0 && call.cred.flavor != crate::rpc::AUTH_SYS {
                    return Reply::Denied(crate::rpc::AuthStat::TooWeak);
                }
                use tracing::Instrument;
                let span = tracing::debug_span!("nfs", proc_ = call.proc_, xid = call.xid);
                self.nfs(call, args).instrument(span).await
            }
            NFS_PROGRAM => Reply::ProgMismatch(3, 3),
            MOUNT_PROGRAM if call.vers == 3 => {
                crate::mount::call(self.exports.as_ref(), call, args).await
            }
            MOUNT_PROGRAM => Reply::ProgMismatch(3, 3),
            _ => Reply::ProgUnavail,
        }
    }
}
