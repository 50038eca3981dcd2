//! DeleteObject and DeleteObjects (of files, folders and objects kept inside their directory,
//! see `layout.rs`), and the pruning of the directories a deleted key leaves empty.

use crate::access::Action;
use crate::error::{On, fs_error};
use crate::gateway::{GatewayS3, parse_key};
use crate::layout;
use crate::meta::{self, ObjectMeta};
use crate::sidecar;
use crate::vfs::Vfs;
use bytes::Bytes;
use engine::fop::{Errno, Gfid, Xattrs};
use futures::StreamExt;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

impl GatewayS3 {
    /// Removes the directories a deleted key leaves empty, deepest first, up to the bucket:
    /// S3 has no directories, so the ones it made implicitly go with their last object. A
    /// folder that was PUT (`layout::DIR_OBJECT`) is an object and stays.
    async fn prune(&self, vfs: &Vfs, bucket: Gfid, dirs: &[&str]) {
        let mut chain = vec![bucket];
        let mut marked = vec![false];
        for d in dirs {
            match vfs
                .lookup(*chain.last().expect("non-empty"), d, &layout::dir_want())
                .await
            {
                Ok((ia, x)) if ia.is_dir() => {
                    chain.push(ia.gfid);
                    marked.push(x.contains_key(layout::DIR_OBJECT));
                }
                _ => return,
            }
        }
        for i in (0..dirs.len()).rev() {
            if marked[i + 1]
                || !matches!(vfs.has_entries(chain[i + 1]).await, Ok(false))
                || vfs.rmdir(chain[i], dirs[i]).await.is_err()
            {
                return;
            }
        }
    }

    /// Unlinks an object's file and its sidecars.
    async fn remove_file(&self, vfs: &Vfs, parent: Gfid, name: &str) -> engine::fop::Result<()> {
        let mut want = Xattrs::new();
        want.insert(meta::TAGGING.to_string(), Bytes::new());
        want.insert(meta::PARTS.to_string(), Bytes::new());
        let (ia, x) = vfs.lookup(parent, name, &want).await?;
        if ia.is_dir() {
            return Err(Errno::EISDIR);
        }
        vfs.unlink(parent, name).await?;
        self.remove_sidecars(vfs, ia.gfid, &x).await;
        Ok(())
    }

    async fn remove_sidecars(&self, vfs: &Vfs, gfid: Gfid, x: &Xattrs) {
        let aside = |k: &str| x.get(k).is_some_and(|v| sidecar::is_marker(v));
        if aside(meta::TAGGING) {
            sidecar::remove(self, vfs, gfid, crate::tagging::SIDECAR).await;
        }
        if aside(meta::PARTS) {
            sidecar::remove(self, vfs, gfid, crate::put::PARTS_SIDECAR).await;
        }
    }

    async fn delete_key(&self, vfs: &Vfs, bucket: Gfid, key: &str) -> S3Result<()> {
        let k = parse_key(key)?;
        let mut names = k.dirs.clone();
        names.extend(k.name);
        let (parent, last) = match names.split_last() {
            Some((last, above)) => match vfs.walk(bucket, above, &Xattrs::new()).await {
                Ok((ia, _)) if above.is_empty() || ia.is_dir() => {
                    (if above.is_empty() { bucket } else { ia.gfid }, *last)
                }
                Ok(_) | Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(()),
                Err(e) => return Err(fs_error(e, On::Object)),
            },
            None => return Ok(()),
        };
        let ia = match vfs.lookup(parent, last, &Xattrs::new()).await {
            Ok((ia, _)) => ia,
            Err(Errno::ENOENT) | Err(Errno::ESTALE) => return Ok(()),
            Err(e) => return Err(fs_error(e, On::Object)),
        };
        let gone = |r: engine::fop::Result<()>| match r {
            Ok(()) | Err(Errno::ENOENT) | Err(Errno::ESTALE) | Err(Errno::EISDIR) => Ok(()),
            Err(e) => Err(fs_error(e, On::Object)),
        };
        // Where the object was (`layout.rs`), and the directories that may be left empty.
        let pruned: &[&str] = if k.name.is_none() {
            // A folder: its data, then its mark and metadata; the directory goes if empty.
            if !ia.is_dir() {
                return Ok(());
            }
            gone(self.remove_file(vfs, ia.gfid, layout::DIR_DATA).await)?;
            let x = vfs
                .getxattr(ia.gfid, None)
                .await
                .map_err(|e| fs_error(e, On::Object))?;
            let mut stale = ObjectMeta::stale_names(&x, false);
            stale.push(layout::DIR_OBJECT.to_string());
            for n in stale {
                vfs.removexattr(ia.gfid, &n)
                    .await
                    .map_err(|e| fs_error(e, On::Object))?;
            }
            self.remove_sidecars(vfs, ia.gfid, &x).await;
            &names
        } else if ia.is_dir() {
            // The object whose key is also a prefix, inside its directory.
            gone(self.remove_file(vfs, ia.gfid, layout::SELF).await)?;
            vfs.removexattr(ia.gfid, layout::HAS_SELF)
                .await
                .map_err(|e| fs_error(e, On::Object))?;
            &names
        } else {
            gone(self.remove_file(vfs, parent, last).await)?;
            &names[..names.len() - 1]
        };
        self.prune(vfs, bucket, pruned).await;
        Ok(())
    }
}

pub(crate) async fn delete_object(
    s: &GatewayS3,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let vfs = s.vfs()?;
    let bucket = s
        .allowed(
            &vfs,
            &req,
            &req.input.bucket,
            Action::DeleteObject,
            Some(&req.input.key),
            &[],
        )
        .await?
        .gfid;
    s.delete_key(&vfs, bucket, &req.input.key).await?;
    Ok(S3Response::new(DeleteObjectOutput::default()))
}

pub(crate) async fn delete_objects(
    s: &GatewayS3,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let vfs = s.vfs()?;
    // Each key is judged on its own: a policy may allow or deny keys one by one, and S3
    // reports a refused key among the errors.
    let a = s.requester(&vfs, &req, &req.input.bucket).await?;
    let bucket = a.gfid;
    let quiet = req.input.delete.quiet.unwrap_or(false);
    if req.input.delete.objects.len() > 1000 {
        return Err(s3_error!(
            MalformedXML,
            "A DeleteObjects request names at most 1000 keys."
        ));
    }
    let results = futures::stream::iter(req.input.delete.objects.into_iter().map(|o| {
        let vfs = &vfs;
        let a = &a;
        async move {
            let r = match a.also(s, Action::DeleteObject, &o.key, None) {
                Ok(()) => s.delete_key(vfs, bucket, &o.key).await,
                Err(e) => Err(e),
            };
            (o.key, r)
        }
    }))
    .buffered(16)
    .collect::<Vec<_>>()
    .await;
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for (key, r) in results {
        match r {
            Ok(()) if !quiet => deleted.push(DeletedObject {
                key: Some(key),
                ..Default::default()
            }),
            Ok(()) => {}
            Err(e) => errors.push(Error {
                code: Some(e.code().as_str().to_string()),
                key: Some(key),
                message: e.message().map(str::to_string),
                version_id: None,
            }),
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: Some(errors),
        ..Default::default()
    }))
}
