//! One RPC message through the whole server with no volume behind it: the entry point of the
//! cargo-fuzz target (`protocols/nfs/fuzz`) and of the randomized test below. Every fop of the
//! stub volume fails, so what is exercised is decoding, dispatch and reply encoding.

use crate::export::{Export, ExportOptions, Exports};
use crate::handle::{Handle, export_tag};
use crate::nfs3::Server;
use crate::rpc::{self, Decoded};
use bytes::Bytes;
use engine::fop::Gfid;
use engine::xlator::{Xlator, XlatorBase, XlatorRef};
use std::sync::{Arc, OnceLock};

pub const VOLUME_ID: [u8; 16] = [0x42; 16];

struct Stub(XlatorBase);

#[async_trait::async_trait]
impl Xlator for Stub {
    fn base(&self) -> &XlatorBase {
        &self.0
    }
}

struct OneExport(XlatorRef, Arc<Vec<Export>>);

impl Exports for OneExport {
    fn exports(&self) -> Arc<Vec<Export>> {
        self.1.clone()
    }
    fn graph(&self, _: &str) -> Option<XlatorRef> {
        Some(self.0.clone())
    }
}

/// The root handle of the stub export, for building calls that get past handle checks.
pub fn root_handle() -> [u8; crate::handle::HANDLE_LEN] {
    Handle {
        volume: VOLUME_ID,
        gfid: Gfid::ROOT,
        export: export_tag("/vol"),
    }
    .encode()
}

fn server() -> &'static (tokio::runtime::Runtime, Arc<Server>) {
    static S: OnceLock<(tokio::runtime::Runtime, Arc<Server>)> = OnceLock::new();
    S.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let top: XlatorRef = Arc::new(Stub(XlatorBase::new("stub", "debug/stub", vec![])));
        let exports = Arc::new(vec![Export {
            path: "/vol".into(),
            volume: "vol".into(),
            volume_id: VOLUME_ID,
            subdir: String::new(),
            options: ExportOptions::default(),
            metrics: Arc::new(engine::metrics::VolumeOps::new("nfs", "vol")),
        }]);
        (rt, Arc::new(Server::new(Arc::new(OneExport(top, exports)))))
    })
}

/// Handles one message as a connection would; returns the reply's length, or None when the
/// connection would be closed or nothing answered.
pub fn message(data: &[u8]) -> Option<usize> {
    let (rt, s) = server();
    let peer = "127.0.0.1:700".parse().expect("an address");
    match rpc::decode(Bytes::copy_from_slice(data), peer) {
        Decoded::Call(call, args) => {
            let (head, payload) = rt.block_on(rpc::run(s.clone(), call, args));
            Some(head.len() + payload.map_or(0, |p| p.len()))
        }
        Decoded::Answer(b) => Some(b.len()),
        Decoded::Ignore | Decoded::Close => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdr::Put;
    use bytes::BytesMut;
    use rand::{Rng, SeedableRng};

    fn header(b: &mut BytesMut, prog: u32, vers: u32, proc_: u32) {
        b.u32(7);
        b.u32(0);
        b.u32(2);
        b.u32(prog);
        b.u32(vers);
        b.u32(proc_);
        let mut cred = BytesMut::new();
        cred.u32(0);
        cred.opaque(b"fuzz");
        cred.u32(0);
        cred.u32(0);
        cred.u32(0);
        b.u32(crate::rpc::AUTH_SYS);
        b.opaque(&cred);
        b.u32(0);
        b.u32(0);
    }

    /// Every procedure of both programs with random arguments, some starting with a valid
    /// handle and name so decoding goes deep: each gets an answer, none panics.
    #[test]
    fn random_arguments_to_every_procedure() {
        let mut r = rand::rngs::StdRng::seed_from_u64(1813);
        for i in 0..20_000u32 {
            let (prog, nprocs) = if i % 4 == 0 {
                (crate::export::MOUNT_PROGRAM, 6)
            } else {
                (crate::export::NFS_PROGRAM, 22)
            };
            let mut b = BytesMut::new();
            header(&mut b, prog, 3, i % nprocs);
            if r.gen_bool(0.6) {
                b.opaque(&root_handle());
                if r.gen_bool(0.5) {
                    b.opaque(b"name");
                }
            }
            let n = r.gen_range(0..200);
            let tail: Vec<u8> = (0..n)
                .map(|_| if r.gen_bool(0.7) { 0 } else { r.r#gen() })
                .collect();
            b.extend_from_slice(&tail);
            assert!(message(&b).is_some(), "call {i} went unanswered");
        }
    }

    /// Bytes that are no RPC message at all never panic.
    #[test]
    fn random_bytes() {
        let mut r = rand::rngs::StdRng::seed_from_u64(5531);
        for _ in 0..20_000 {
            let n = r.gen_range(0..120);
            let data: Vec<u8> = (0..n).map(|_| r.r#gen()).collect();
            let _ = message(&data);
        }
    }
}
