//! MOUNT v3 (RFC 1813 appendix I): hands out the root handle of an export, or of a directory
//! below one, to clients its networks allow.

use crate::handle::{Handle, export_tag};
use crate::nfs3::Server;
use crate::rpc::{AUTH_SYS, Call, Reply};
use crate::xdr::{Put, Reader};
use bytes::BytesMut;
use engine::fop::{Ctx, Errno, Gfid, Loc, Xattrs};
use engine::xlator::XlatorRef;

const MNT3_OK: u32 = 0;
const MNT3ERR_NOENT: u32 = 2;
const MNT3ERR_IO: u32 = 5;
const MNT3ERR_ACCES: u32 = 13;
const MNT3ERR_NOTDIR: u32 = 20;
const MNT3ERR_SERVERFAULT: u32 = 10006;
const MNTPATHLEN: usize = 1024;

pub(crate) async fn call(s: &Server, call: Call, mut r: Reader) -> Reply {
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
            for e in s.exports.exports().iter() {
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

async fn mnt(s: &Server, call: &Call, path: &str) -> BytesMut {
    let mut b = BytesMut::new();
    let path = normalize(path);
    let exports = s.exports.exports();
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
    let Some(top) = s.exports.graph(&e.volume) else {
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

/// The gfid of a directory by its path inside the volume, checking search permission on the
/// way as a kernel would.
pub(crate) async fn walk(top: &XlatorRef, ctx: &Ctx, path: &str) -> Result<Gfid, Errno> {
    let mut cur = Gfid::ROOT;
    for name in path.split('/').filter(|s| !s.is_empty()) {
        if name == ".." {
            return Err(Errno::EACCES);
        }
        let (ia, _) = top
            .lookup(ctx, &Loc::child(cur, name), &Xattrs::new())
            .await?;
        if !ia.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if !crate::attr::permits(ctx, &ia, crate::attr::X) {
            return Err(Errno::EACCES);
        }
        cur = ia.gfid;
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(normalize("/vol//a/./b/"), "/vol/a/b");
        assert_eq!(normalize("/vol/a/b/.."), "/vol/a");
        assert_eq!(normalize("/vol/../../etc"), "/etc");
        assert_eq!(below("/vol/a/b", "/vol"), Some("a/b"));
        assert_eq!(below("/vol", "/vol"), Some(""));
        assert_eq!(below("/volume", "/vol"), None);
    }
}
