//! CompleteMultipartUpload: the listed parts, checked against the stored ones, are streamed
//! into one staging file renamed over the key (`GatewayS3::store`), with the multipart ETag,
//! the object's checksum (COMPOSITE from the parts' checksums, or FULL_OBJECT computed over
//! the assembled bytes) and the parts' sizes and checksums for `partNumber` reads.

use super::{DONE_KEPT_SECS, Done, RECORD, Record, StoredPart, Upload, now, parts, upload};
use crate::access::Action;
use crate::checksum::{self, BodyChecks};
use crate::error::{On, fs_error};
use crate::gateway::{GatewayS3, etag_of, refuse_encryption};
use crate::meta::{self, ObjectMeta, Parts, StoredChecksum};
use crate::put::{EtagFrom, Extra, check_write_conditions, current_etag};
use crate::vfs::Vfs;
use bytes::Bytes;
use engine::fop::{Gfid, Xattrs};
use futures::StreamExt;
use s3s::dto::*;
use s3s::{S3Request, S3Result, s3_error};

const MIN_PART: u64 = 5 << 20;

/// ETags as clients send them back: quoted or not (AWS accepts both), any case.
fn same_etag(sent: &ETag, stored: &str) -> bool {
    sent.value()
        .trim()
        .trim_matches('"')
        .eq_ignore_ascii_case(stored)
}

/// The parts a completion names, in order. A part number listed more than once counts once,
/// with its last entry (as RGW reads the list); numbers must not go down.
fn listed(wanted: &[CompletedPart]) -> S3Result<Vec<&CompletedPart>> {
    let mut list: Vec<&CompletedPart> = Vec::with_capacity(wanted.len());
    for p in wanted {
        let n = p.part_number.unwrap_or(0);
        match list.last().and_then(|l| l.part_number) {
            Some(prev) if n < prev => {
                return Err(s3_error!(
                    InvalidPartOrder,
                    "The list of parts was not in ascending order. The parts list must be specified in order by part number."
                ));
            }
            Some(prev) if n == prev => {
                list.pop();
            }
            _ => {}
        }
        list.push(p);
    }
    Ok(list)
}

fn answer(
    i: &CompleteMultipartUploadInput,
    rec: &Record,
    done: &Done,
) -> CompleteMultipartUploadOutput {
    let sum = done
        .checksum
        .as_deref()
        .and_then(StoredChecksum::decode)
        .map(|c| c.to_dto())
        .unwrap_or_default();
    CompleteMultipartUploadOutput {
        bucket: Some(i.bucket.clone()),
        key: Some(i.key.clone()),
        e_tag: Some(etag_of(&done.etag)),
        location: Some(format!("/{}/{}", i.bucket, i.key)),
        checksum_crc32: sum.checksum_crc32,
        checksum_crc32c: sum.checksum_crc32c,
        checksum_crc64nvme: sum.checksum_crc64nvme,
        checksum_sha1: sum.checksum_sha1,
        checksum_sha256: sum.checksum_sha256,
        checksum_type: rec.checksum_type(),
        ..Default::default()
    }
}

pub async fn complete(
    s: &GatewayS3,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<CompleteMultipartUploadOutput> {
    refuse_encryption(&req.headers)?;
    let vfs = s.vfs()?;
    let a = s
        .allowed(
            &vfs,
            &req,
            &req.input.bucket,
            Action::PutObject,
            Some(&req.input.key),
            &[],
        )
        .await?;
    let bucket = a.gfid;
    let mut i = req.input;
    let up = upload(s, &vfs, &i.upload_id, &i.bucket, &i.key, true).await?;
    if let Some(done) = &up.rec.done {
        // A repeated completion (its client lost the first answer) gets the same answer.
        return Ok(answer(&i, &up.rec, done));
    }
    if i.if_match.is_some() || i.if_none_match.is_some() {
        let cur = current_etag(s, &vfs, &i.bucket, &i.key).await?;
        check_write_conditions(
            cur.as_deref(),
            i.if_match.as_ref(),
            i.if_none_match.as_ref(),
        )?;
    }
    let wanted = i
        .multipart_upload
        .take()
        .and_then(|m| m.parts)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| s3_error!(MalformedXML, "You must specify at least one part."))?;
    let list = listed(&wanted)?;
    let stored = parts(&vfs, up.dir).await?;
    let algo = up.rec.algo();
    let mut chosen: Vec<&StoredPart> = Vec::new();
    for (idx, p) in list.iter().enumerate() {
        let n = p.part_number.unwrap_or(0);
        let Some(part) = stored.iter().find(|sp| sp.number == n) else {
            return Err(s3_error!(
                InvalidPart,
                "One or more of the specified parts could not be found. Part {n} was never uploaded."
            ));
        };
        if let Some(e) = &p.e_tag
            && !same_etag(e, &part.etag)
        {
            return Err(s3_error!(
                InvalidPart,
                "Part {n}'s ETag does not match the uploaded part."
            ));
        }
        let sent = [
            &p.checksum_crc32,
            &p.checksum_crc32c,
            &p.checksum_crc64nvme,
            &p.checksum_sha1,
            &p.checksum_sha256,
        ];
        if let Some(a) = algo
            && let Some(v) = sent[a]
            && part.checksum.as_deref() != Some(v.trim())
        {
            return Err(s3_error!(
                InvalidPart,
                "Part {n}'s {} checksum does not match the uploaded part.",
                checksum::ALGOS[a]
            ));
        }
        if idx + 1 < list.len() && part.ia.size < MIN_PART {
            return Err(s3_error!(
                EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size. Part {n} has {} bytes; every part but the last needs 5 MiB.",
                part.ia.size
            ));
        }
        chosen.push(part);
    }
    let etag = meta::multipart_etag(&chosen.iter().map(|c| c.etag.clone()).collect::<Vec<_>>());
    let sums: Vec<String> = chosen.iter().filter_map(|c| c.checksum.clone()).collect();
    let layout = Parts {
        sizes: chosen.iter().map(|c| c.ia.size).collect(),
        checksums: if sums.len() == chosen.len() {
            sums
        } else {
            Vec::new()
        },
    };
    let expected = Checksum {
        checksum_crc32: i.checksum_crc32.clone(),
        checksum_crc32c: i.checksum_crc32c.clone(),
        checksum_crc64nvme: i.checksum_crc64nvme.clone(),
        checksum_sha1: i.checksum_sha1.clone(),
        checksum_sha256: i.checksum_sha256.clone(),
        checksum_type: None,
    };
    let mut checks = BodyChecks::default();
    let mut extra = Extra::default();
    match algo {
        // FULL_OBJECT: computed over the assembled bytes, and checked against the value the
        // request gives, as a PUT's is.
        Some(a) if up.rec.full_object => {
            let given = checksum::value_of(&expected, a)
                .map(|v| checksum::with_value(a, v.to_string()))
                .unwrap_or_default();
            checks = BodyChecks::new(given, &http::HeaderMap::new(), None)?;
            checks.also(a);
        }
        Some(a) => {
            let composite = if layout.checksums.is_empty() {
                None
            } else {
                checksum::composite(a, &layout.checksums)
            };
            if let Some(want) = checksum::value_of(&expected, a) {
                let base = |v: &str| v.trim().split('-').next().unwrap_or("").to_string();
                if composite.as_deref().map(base) != Some(base(want)) {
                    return Err(s3_error!(
                        BadDigest,
                        "The {} you specified did not match the calculated checksum.",
                        checksum::ALGOS[a]
                    ));
                }
            }
            extra.checksum = composite.map(|value| StoredChecksum {
                algo: a,
                full_object: false,
                value,
            });
        }
        None => {}
    }
    extra.parts = Some(layout);
    let preset = extra.checksum.clone();
    let mut x = Xattrs::new();
    for (k, v) in &up.rec.meta {
        x.insert(k.clone(), Bytes::from(v.clone()));
    }
    let mut m = ObjectMeta::from_xattrs(&x);
    m.access = up
        .rec
        .access
        .iter()
        .map(|(k, v)| (k.clone(), Bytes::from(v.clone())))
        .collect();
    let body = assemble(&vfs, chosen.iter().map(|c| c.ia.gfid).collect());
    let (etag, _) = s
        .store(
            &vfs,
            bucket,
            &i.key,
            &m,
            body,
            EtagFrom::Given(etag),
            &mut checks,
            extra,
        )
        .await?;
    let stored_sum = preset.or_else(|| {
        let a = algo?;
        Some(StoredChecksum {
            algo: a,
            full_object: true,
            value: checksum::value_of(checks.result(), a)?.to_string(),
        })
    });
    let done = Done {
        etag,
        checksum: stored_sum.map(|c| c.encode()),
        at: now(),
    };
    finish(&vfs, &up, &i.upload_id, &done).await;
    Ok(answer(&i, &up.rec, &done))
}

/// The parts' bytes one after the other.
fn assemble(
    vfs: &Vfs,
    gfids: Vec<Gfid>,
) -> futures::stream::BoxStream<'static, Result<Bytes, String>> {
    let vfs = vfs.clone();
    futures::stream::iter(gfids)
        .then(move |g| {
            let vfs = vfs.clone();
            async move {
                let f = vfs.open(g, libc::O_RDONLY).await;
                let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(1);
                let rx = match f {
                    Ok(f) => {
                        let size = vfs
                            .top
                            .fstat(&vfs.ctx, &f.fd)
                            .await
                            .map(|ia| ia.size)
                            .unwrap_or(0);
                        vfs.read_range(std::sync::Arc::new(f), 0, size)
                    }
                    Err(e) => {
                        let _ = tx
                            .send(Err(std::io::Error::from_raw_os_error(e.code())))
                            .await;
                        rx
                    }
                };
                tokio_stream::wrappers::ReceiverStream::new(rx)
            }
        })
        .flatten()
        .map(|r| r.map_err(|e| e.to_string()))
        .boxed()
}

/// A completed upload keeps its record, with what the completion answered, for
/// `DONE_KEPT_SECS`; its parts go now.
async fn finish(vfs: &Vfs, up: &Upload, id: &str, done: &Done) {
    let kept = async {
        for (n, is_dir) in vfs.list_dir(up.dir).await? {
            if !is_dir {
                let _ = vfs.unlink(up.dir, &n).await;
            }
        }
        let rec = Record {
            done: Some(done.clone()),
            ..up.rec.clone()
        };
        vfs.setxattrs(up.dir, &rec.to_xattrs()).await
    }
    .await;
    if let Err(e) = kept {
        tracing::warn!(upload = %id, "completed upload's parts not removed: {e}");
        let _ = vfs.remove_tree(up.uploads, id).await;
    }
}

/// `sweep_done`, at most once per `DONE_KEPT_SECS` (CreateMultipartUpload calls it, so
/// completed records go even when no one lists uploads).
pub(super) async fn sweep_done_now_and_then(vfs: &Vfs, uploads: Gfid) {
    static LAST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let t = now();
    let last = LAST.load(std::sync::atomic::Ordering::Relaxed);
    if t - last > DONE_KEPT_SECS
        && LAST
            .compare_exchange(
                last,
                t,
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            )
            .is_ok()
        && let Err(e) = sweep_done(vfs, uploads).await
    {
        tracing::debug!("sweeping completed uploads: {e}");
    }
}

/// Removes the records of uploads completed more than `DONE_KEPT_SECS` ago.
pub(super) async fn sweep_done(vfs: &Vfs, uploads: Gfid) -> S3Result<()> {
    let mut want = Xattrs::new();
    want.insert(RECORD.to_string(), Bytes::new());
    for (id, is_dir) in vfs
        .list_dir(uploads)
        .await
        .map_err(|e| fs_error(e, On::Upload))?
    {
        if !is_dir {
            continue;
        }
        let Ok((_, x)) = vfs.lookup(uploads, &id, &want).await else {
            continue;
        };
        let old = x
            .get(RECORD)
            .and_then(|v| serde_json::from_slice::<Record>(v).ok())
            .and_then(|r| r.done)
            .is_some_and(|d| now() - d.at > DONE_KEPT_SECS);
        if old {
            let _ = vfs.remove_tree(uploads, &id).await;
        }
    }
    Ok(())
}
