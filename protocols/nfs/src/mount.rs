//! MOUNT v3 (RFC 1813 appendix I): hands out the root handle of an export, or of a directory
//! below one, to clients its networks allow.

use crate::export::{Export, Exports};
use crate::handle::{Handle, export_tag};
use crate::rpc::{AUTH_SYS, Call, Reply};
use crate::walk::walk;
use crate::xdr::{Put, Reader};
use bytes::BytesMut;
use engine::fop::{Ctx, Errno};

const MNT3_OK: u32 = 0;
const MNT3ERR_NOENT: u32 = 2;
const MNT3ERR_IO: u32 = 5;
const MNT3ERR_ACCES: u32 = 13;
const MNT3ERR_NOTDIR: u32 = 20;
const MNT3ERR_SERVERFAULT: u32 = 10006;
const MNTPATHLEN: usize = 1024;

pub(crate) async fn call(s: &dyn Exports, call: Call, mut r: Reader) -> Reply {
    match call.proc_ {
        0 => Reply::ok(BytesMut::new()),
        1 => {
            let Ok(path) = r.string(MNTPATHLEN) else {
                return Reply::GarbageArgs;
            };
            let path = String::from_utf8_lossy(&path).into_owned();
            Reply::ok(mnt(s, &call, &path).await)
        }
        // DUMP: we keep no list of mounts (NFSv3 is stateless; UMNT is advisory).
        2 => {
            let mut b = BytesMut::new();
            b.bool(false);
            Reply::ok(b)
        }
        3 => match r.string(MNTPATHLEN) {
            Ok(_) => Reply::ok(BytesMut::new()),
            Err(_) => Reply::GarbageArgs,
        },
        4 => Reply::ok(BytesMut::new()),
        5 => {
            let mut b = BytesMut::new();
            for e in mountable(s, &call).await {
                b.bool(true);
                b.opaque(e.path.as_bytes());
                for n in &e.options.networks {
                    b.bool(true);
                    b.opaque(n.to_string().as_bytes());
                }
                b.bool(false);
            }
            b.bool(false);
            Reply::ok(b)
        }
        _ => Reply::ProcUnavail,
    }
}

/// The exports EXPORT shows a client: those it may mount. libnfs asks for the list and mounts
/// every export nested below the one it was given, failing the whole mount if one of them is
/// refused; so an export limited to other networks, or of a directory that is gone (or of a
/// volume not running), is left out of the answer to clients it would refuse.
async fn mountable(s: &dyn Exports, call: &Call) -> Vec<Export> {
    let mut out = Vec::new();
    for e in s.exports().iter() {
        if !e.options.allows(call.peer.ip()) {
            continue;
        }
        if !e.subdir.is_empty() {
            let Some(top) = s.graph(&e.volume) else {
                continue;
            };
            let ctx = Ctx {
                protocol: crate::export::NFS,
                ..Ctx::root()
            };
            if walk(&top, &ctx, &e.subdir).await.is_err() {
                continue;
            }
        }
        out.push(e.clone());
    }
    out
}

async fn mnt(s: &dyn Exports, call: &Call, path: &str) -> BytesMut {
    let mut b = BytesMut::new();
    let path = normalize(path);
    let exports = s.exports();
    // The longest export at or above the path: `/vol/a/b` mounts inside `/vol`.
    let Some((e, rest)) = exports
        .iter()
        .filter_map(|e| below(&path, &e.path).map(|rest| (e, rest)))
        .max_by_key(|(e, _)| e.path.len())
    else {
        tracing::info!(peer = %call.peer, path, "MOUNT refused: no such export");
        b.u32(MNT3ERR_NOENT);
        return b;
    };
    if !e.options.allows(call.peer.ip()) {
        tracing::warn!(peer = %call.peer, export = %e.path, "MOUNT refused: client not in the export's networks");
        b.u32(MNT3ERR_ACCES);
        return b;
    }
    if call.cred.flavor != AUTH_SYS {
        b.u32(MNT3ERR_ACCES);
        return b;
    }
    let Some(top) = s.graph(&e.volume) else {
        b.u32(MNT3ERR_SERVERFAULT);
        return b;
    };
    let ctx = e.options.ctx(&call.cred);
    let inside = [e.subdir.as_str(), rest]
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    match walk(&top, &ctx, &inside).await {
        Ok(gfid) => {
            b.u32(MNT3_OK);
            let h = Handle {
                volume: e.volume_id,
                gfid,
                export: export_tag(&e.path),
            };
            b.opaque(&h.encode());
            b.u32(1);
            b.u32(AUTH_SYS);
            tracing::info!(peer = %call.peer, export = %e.path, path, "mounted");
        }
        Err(err) => {
            b.u32(match err {
                Errno::ENOENT => MNT3ERR_NOENT,
                Errno::ENOTDIR => MNT3ERR_NOTDIR,
                Errno::EACCES => MNT3ERR_ACCES,
                _ => MNT3ERR_IO,
            });
        }
    }
    b
}

/// `/vol//a/./b/..` → `/vol/a`: lexically, as a path is matched against the exports (what it
/// resolves to must itself be at or below an export).
fn normalize(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for s in p.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The part of `path` below `export`, if it is at or below it.
fn below<'a>(path: &'a str, export: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(export)?;
    if rest.is_empty() {
        Some("")
    } else {
        rest.strip_prefix('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::fop::{Gfid, Loc, Xattrs};
    use engine::xlator::XlatorRef;

    #[test]
    fn paths() {
        assert_eq!(normalize("/vol//a/./b/"), "/vol/a/b");
        assert_eq!(normalize("/vol/a/b/.."), "/vol/a");
        assert_eq!(normalize("/vol/../../etc"), "/etc");
        assert_eq!(below("/vol/a/b", "/vol"), Some("a/b"));
        assert_eq!(below("/vol", "/vol"), Some(""));
        assert_eq!(below("/volume", "/vol"), None);
    }

    /// A volume whose root holds the directories named, and nothing else.
    struct Dirs(engine::xlator::XlatorBase, Vec<&'static str>);

    #[async_trait::async_trait]
    impl engine::xlator::Xlator for Dirs {
        fn base(&self) -> &engine::xlator::XlatorBase {
            &self.0
        }
        async fn lookup(
            &self,
            _: &Ctx,
            loc: &Loc,
            _: &Xattrs,
        ) -> engine::fop::Result<(engine::fop::Iatt, Xattrs)> {
            match loc.name.as_deref() {
                Some(n) if self.1.contains(&n) => Ok((
                    engine::fop::Iatt {
                        gfid: Gfid([self.1.iter().position(|d| *d == n).unwrap() as u8 + 2; 16]),
                        mode: libc::S_IFDIR | 0o755,
                        ..Default::default()
                    },
                    Xattrs::new(),
                )),
                _ => Err(Errno::ENOENT),
            }
        }
    }

    struct Table(XlatorRef, std::sync::Arc<Vec<Export>>);

    impl Exports for Table {
        fn exports(&self) -> std::sync::Arc<Vec<Export>> {
            self.1.clone()
        }
        fn graph(&self, _: &str) -> Option<XlatorRef> {
            Some(self.0.clone())
        }
    }

    fn export(path: &str, networks: &[&str]) -> Export {
        Export {
            path: path.into(),
            volume: "vol".into(),
            volume_id: [7; 16],
            subdir: path
                .trim_start_matches("/vol")
                .trim_start_matches('/')
                .into(),
            options: crate::export::ExportOptions {
                networks: networks.iter().map(|n| n.parse().unwrap()).collect(),
                ..Default::default()
            },
            metrics: std::sync::Arc::new(engine::metrics::VolumeOps::new("nfs", "vol")),
        }
    }

    fn call_from(ip: &str) -> Call {
        Call {
            xid: 1,
            prog: crate::export::MOUNT_PROGRAM,
            vers: 3,
            proc_: 5,
            cred: crate::rpc::Cred {
                flavor: AUTH_SYS,
                uid: 0,
                gid: 0,
                groups: vec![],
                machine: "client".into(),
            },
            peer: format!("{ip}:700").parse().unwrap(),
        }
    }

    /// libnfs mounts every export nested below the one it is given and fails if one is refused:
    /// EXPORT shows a client only what it may mount.
    #[test]
    fn export_lists_only_what_the_client_may_mount() {
        let top: XlatorRef = std::sync::Arc::new(Dirs(
            engine::xlator::XlatorBase::new("dirs", "debug/stub", vec![]),
            vec!["public", "shared"],
        ));
        let table = std::sync::Arc::new(vec![
            export("/vol", &[]),
            export("/vol/public", &["10.99.0.0/16"]),
            export("/vol/shared", &[]),
            export("/vol/gone", &[]),
        ]);
        let s = Table(top, table);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let paths = |ip: &str| -> Vec<String> {
            rt.block_on(mountable(&s, &call_from(ip)))
                .into_iter()
                .map(|e| e.path)
                .collect()
        };
        assert_eq!(paths("127.0.0.1"), ["/vol", "/vol/shared"]);
        assert_eq!(paths("10.99.1.2"), ["/vol", "/vol/public", "/vol/shared"]);
        // The refused export answers MNT with ACCES; the one of a missing directory NOENT.
        let status = |path: &str| rt.block_on(mnt(&s, &call_from("127.0.0.1"), path))[..4].to_vec();
        assert_eq!(status("/vol/public"), MNT3ERR_ACCES.to_be_bytes());
        assert_eq!(status("/vol/gone"), MNT3ERR_NOENT.to_be_bytes());
        assert_eq!(status("/vol/shared"), MNT3_OK.to_be_bytes());
    }
}
