//! Object values too large for the file's own xattrs. A brick on ext4 gives all the xattrs of an
//! inode one 4 KiB block, and GlusterFS's own (gfid, afr, gfid2path, mdata) take part of it: ten
//! tags of AWS's maximum size (128-character keys, 256-character values) do not fit beside them,
//! nor do the part checksums of a large multipart object. Such a value is kept in a file
//! `STAGING_DIR/sidecar/<gfid>.<kind>` (hidden from FUSE, NFS and listings like the rest of
//! `STAGING_DIR`) and the object's xattr holds a marker that says so. The gfid follows the file
//! through renames, so the value stays with the object.

use crate::error::{On, fs_error};
use crate::gateway::GatewayS3;
use crate::vfs::Vfs;
use bytes::Bytes;
use engine::fop::{Errno, Gfid, Xattrs};
use s3s::{S3Result, s3_error};

pub use crate::meta::{ASIDE as MARKER, INLINE_MAX};

fn name(gfid: Gfid, kind: &str) -> String {
    format!("{gfid}.{kind}")
}

/// Writes `value` as `gfid`'s sidecar of `kind`, replacing any earlier one whole.
pub(crate) async fn save(
    s: &GatewayS3,
    vfs: &Vfs,
    gfid: Gfid,
    kind: &str,
    value: &str,
) -> S3Result<()> {
    let dir = s.staging(vfs, "sidecar").await?;
    let tmp = format!("tmp-{}", uuid::Uuid::new_v4().simple());
    let (f, _) = match vfs.create(dir, &tmp, Xattrs::new()).await {
        Ok(r) => r,
        Err(e) => {
            s.forget_staging();
            return Err(fs_error(e, On::Object));
        }
    };
    let body = futures::stream::iter([Ok::<_, String>(Bytes::from(value.to_string()))]);
    let written = vfs.write_stream(&f, body, |_| {}).await;
    drop(f);
    let done = match written {
        Ok(_) => vfs
            .rename((dir, &tmp), (dir, &name(gfid, kind)))
            .await
            .map(|_| ())
            .map_err(|e| fs_error(e, On::Object)),
        Err(crate::vfs::WriteError::Fs(e)) => Err(fs_error(e, On::Object)),
        Err(crate::vfs::WriteError::Body(e)) => Err(s3_error!(InternalError, "{e}")),
    };
    if done.is_err() {
        let _ = vfs.unlink(dir, &tmp).await;
    }
    done
}

/// `gfid`'s sidecar of `kind`, if it has one.
pub(crate) async fn load(
    s: &GatewayS3,
    vfs: &Vfs,
    gfid: Gfid,
    kind: &str,
) -> S3Result<Option<String>> {
    let dir = s.staging(vfs, "sidecar").await?;
    let ia = match vfs.lookup(dir, &name(gfid, kind), &Xattrs::new()).await {
        Ok((ia, _)) => ia,
        Err(Errno::ENOENT) | Err(Errno::ESTALE) => return Ok(None),
        Err(e) => return Err(fs_error(e, On::Object)),
    };
    let mut rx = vfs.read_range(std::sync::Arc::new(vfs.anonymous(ia.gfid)), 0, ia.size);
    let mut out = Vec::with_capacity(ia.size as usize);
    while let Some(b) = rx.recv().await {
        out.extend_from_slice(&b.map_err(|e| s3_error!(InternalError, "{e}"))?);
    }
    Ok(Some(String::from_utf8_lossy(&out).into_owned()))
}

/// Removes `gfid`'s sidecar of `kind`, if any (best effort: a leftover is a small hidden file).
pub(crate) async fn remove(s: &GatewayS3, vfs: &Vfs, gfid: Gfid, kind: &str) {
    if let Ok(dir) = s.staging(vfs, "sidecar").await {
        match vfs.unlink(dir, &name(gfid, kind)).await {
            Ok(()) | Err(Errno::ENOENT) | Err(Errno::ESTALE) => {}
            Err(e) => tracing::debug!(%gfid, kind, "removing a sidecar: {e}"),
        }
    }
}

/// Whether an xattr value says its content is in a sidecar.
pub fn is_marker(v: &[u8]) -> bool {
    v.first() == Some(&(MARKER as u8))
}
