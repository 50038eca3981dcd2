//! GetObject and HeadObject: conditional requests, byte ranges and parts.

use crate::access::Action;
use crate::attributes::{checksum_of, parts_of};
use crate::checksum;
use crate::gateway::{Found1, GatewayS3, etag_of, refuse_encryption};
use crate::meta::{self, ObjectMeta, StoredChecksum, timestamp};
use crate::vfs::Vfs;
use engine::fop::Iatt;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

/// RFC 9110 §13.2.2 order, as S3 applies it to GET and HEAD.
pub(crate) fn check_conditions(
    etag: &str,
    ia: &Iatt,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
    read: bool,
) -> S3Result<()> {
    let matches = |c: &ETagCondition| match c {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == etag,
    };
    let mtime = time::OffsetDateTime::from(meta::timestamp_secs(ia.mtime));
    if let Some(c) = if_match {
        if !matches(c) {
            return Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            ));
        }
    } else if let Some(t) = if_unmodified_since
        && mtime > time::OffsetDateTime::from(t.clone())
    {
        return Err(s3_error!(
            PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold"
        ));
    }
    if let Some(c) = if_none_match {
        if matches(c) {
            return Err(if read {
                s3_error!(NotModified)
            } else {
                s3_error!(
                    PreconditionFailed,
                    "At least one of the pre-conditions you specified did not hold"
                )
            });
        }
    } else if let Some(t) = if_modified_since
        && mtime <= time::OffsetDateTime::from(t.clone())
        && read
    {
        return Err(s3_error!(NotModified));
    }
    Ok(())
}

macro_rules! object_headers {
    ($o:expr, $f:expr, $m:expr) => {{
        $o.content_length = Some($f.ia.size as i64);
        $o.e_tag = Some(etag_of(&$f.etag));
        $o.last_modified = Some(timestamp($f.ia.mtime));
        $o.content_type = Some(
            $m.get("content-type")
                .unwrap_or_else(|| "binary/octet-stream".into()),
        );
        $o.content_encoding = $m.get("content-encoding");
        $o.content_disposition = $m.get("content-disposition");
        $o.content_language = $m.get("content-language");
        $o.cache_control = $m.get("cache-control");
        $o.expires = $m.expires();
        $o.accept_ranges = Some("bytes".into());
        if let Some((_, n)) = $f.etag.split_once('-') {
            $o.parts_count = n.parse().ok();
        }
    }};
}

/// Copies a checksum into an output's checksum fields.
macro_rules! checksum_fields {
    ($o:expr, $c:expr) => {{
        let c: Checksum = $c;
        $o.checksum_crc32 = c.checksum_crc32;
        $o.checksum_crc32c = c.checksum_crc32c;
        $o.checksum_crc64nvme = c.checksum_crc64nvme;
        $o.checksum_sha1 = c.checksum_sha1;
        $o.checksum_sha256 = c.checksum_sha256;
        $o.checksum_type = c.checksum_type;
    }};
}

/// What of an object a GET or HEAD answers with.
struct Read {
    start: u64,
    end: u64,
    content_range: Option<String>,
    /// With `partNumber`: how many parts the object has.
    parts_count: Option<i32>,
    /// The checksum to return (ChecksumMode=ENABLED): the object's, or the part's.
    checksum: Option<Checksum>,
}

/// The byte range a GET or HEAD reads: all of it, a `Range`, or part `partNumber` (a
/// non-multipart object has only part 1, all of it).
async fn plan(
    s: &GatewayS3,
    vfs: &Vfs,
    f: &Found1,
    range: Option<&Range>,
    part_number: Option<i32>,
    checksum_mode: bool,
) -> S3Result<Read> {
    let size = f.ia.size;
    let stored = if checksum_mode { checksum_of(f) } else { None };
    let mut r = Read {
        start: 0,
        end: size,
        content_range: None,
        parts_count: None,
        checksum: stored.as_ref().map(StoredChecksum::to_dto),
    };
    if let Some(n) = part_number {
        if range.is_some() {
            return Err(s3_error!(
                InvalidRequest,
                "Cannot specify both Range header and partNumber query parameter"
            ));
        }
        let bad = || {
            s3_error!(
                InvalidPart,
                "The requested partnumber is not satisfiable: the object has no part {n}."
            )
        };
        match parts_of(s, vfs, f).await? {
            Some(p) => {
                let (a, b) = p
                    .range(usize::try_from(n).map_err(|_| bad())?)
                    .ok_or_else(bad)?;
                (r.start, r.end) = (a, b);
                r.parts_count = Some(p.sizes.len() as i32);
                if let Some(c) = &stored {
                    r.checksum = p.checksums.get(n as usize - 1).map(|v| {
                        let mut dto = checksum::with_value(c.algo, v.clone());
                        dto.checksum_type = c.to_dto().checksum_type;
                        dto
                    });
                }
            }
            None if n == 1 => {}
            None => return Err(bad()),
        }
        if r.parts_count.is_some() {
            r.content_range = Some(format!(
                "bytes {}-{}/{size}",
                r.start,
                r.end.saturating_sub(1)
            ));
        }
    } else if let Some(rg) = range {
        let rg = rg
            .check(size)
            .map_err(|_| s3_error!(InvalidRange, "The requested range is not satisfiable"))?;
        (r.start, r.end) = (rg.start, rg.end);
        // A checksum describes whole objects and parts, never a range (clients check the body
        // they get against the one they are given).
        r.checksum = None;
        r.content_range = Some(format!(
            "bytes {}-{}/{size}",
            rg.start,
            rg.end.saturating_sub(1)
        ));
    }
    Ok(r)
}

/// Headers s3s's output types cannot carry: user metadata byte for byte
/// (`ObjectMeta::user_headers`) and the tag count, which S3 sends on HEAD too.
fn extra_headers(m: &ObjectMeta) -> http::HeaderMap {
    let mut h = m.user_headers();
    if let Some(n) = m.tag_count() {
        h.insert("x-amz-tagging-count", http::HeaderValue::from(n));
    }
    h
}

/// RFC 9110 §15.4.5: a 304 carries the ETag and Last-Modified a 200 would, and no body (hyper
/// sends none for a 304; these headers replace the error's XML ones).
fn not_modified(f: &Found1) -> s3s::S3Error {
    let mut e = s3_error!(NotModified, "Not Modified");
    let mut h = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", f.etag)) {
        h.insert(http::header::ETAG, v);
    }
    let mut date = Vec::new();
    if timestamp(f.ia.mtime)
        .format(TimestampFormat::HttpDate, &mut date)
        .is_ok()
        && let Ok(v) = http::HeaderValue::from_bytes(&date)
    {
        h.insert(http::header::LAST_MODIFIED, v);
    }
    e.set_headers(h);
    e
}

fn is_not_modified(r: &S3Result<()>) -> bool {
    matches!(r, Err(e) if *e.code() == s3s::S3ErrorCode::NotModified)
}

fn enabled(m: &Option<ChecksumMode>) -> bool {
    m.as_ref()
        .is_some_and(|m| m.as_str().eq_ignore_ascii_case(ChecksumMode::ENABLED))
}

/// What a GET or HEAD asks besides its key: conditions and the part of the object it wants.
struct ReadRequest<'a> {
    if_match: Option<&'a ETagCondition>,
    if_none_match: Option<&'a ETagCondition>,
    if_modified_since: Option<&'a Timestamp>,
    if_unmodified_since: Option<&'a Timestamp>,
    range: Option<&'a Range>,
    part_number: Option<i32>,
    checksum_mode: bool,
}

/// A `ReadRequest` from a GetObject or HeadObject input (their fields share names).
macro_rules! read_request {
    ($i:expr) => {
        ReadRequest {
            if_match: $i.if_match.as_ref(),
            if_none_match: $i.if_none_match.as_ref(),
            if_modified_since: $i.if_modified_since.as_ref(),
            if_unmodified_since: $i.if_unmodified_since.as_ref(),
            range: $i.range.as_ref(),
            part_number: $i.part_number,
            checksum_mode: enabled(&$i.checksum_mode),
        }
    };
}

/// What GET and HEAD share: the object once the key may read it and the request's conditions
/// hold (304 carries the ETag and Last-Modified), the bytes to answer, and its metadata.
async fn checked_read<T>(
    s: &GatewayS3,
    vfs: &Vfs,
    req: &S3Request<T>,
    bucket: &str,
    key: &str,
    want: ReadRequest<'_>,
) -> S3Result<(Found1, Read, ObjectMeta)> {
    let (_, f) = s
        .object_allowed(vfs, req, bucket, key, Action::GetObject)
        .await?;
    let cond = check_conditions(
        &f.etag,
        &f.ia,
        want.if_match,
        want.if_none_match,
        want.if_modified_since,
        want.if_unmodified_since,
        true,
    );
    if is_not_modified(&cond) {
        return Err(not_modified(&f));
    }
    cond?;
    let r = plan(s, vfs, &f, want.range, want.part_number, want.checksum_mode).await?;
    let m = ObjectMeta::from_xattrs(&f.x);
    Ok((f, r, m))
}

pub(crate) async fn get_object(
    s: &GatewayS3,
    req: S3Request<GetObjectInput>,
) -> S3Result<S3Response<GetObjectOutput>> {
    refuse_encryption(&req.headers)?;
    let vfs = s.vfs()?;
    let i = &req.input;
    let (f, r, m) = checked_read(s, &vfs, &req, &i.bucket, &i.key, read_request!(i)).await?;
    let i = req.input;
    let mut o = GetObjectOutput::default();
    object_headers!(o, f, m);
    o.content_length = Some((r.end - r.start) as i64);
    o.content_range = r.content_range;
    o.parts_count = r.parts_count.or(o.parts_count);
    if let Some(c) = r.checksum {
        checksum_fields!(o, c);
    }
    if let Some(v) = i.response_content_type {
        o.content_type = Some(v);
    }
    if let Some(v) = i.response_content_disposition {
        o.content_disposition = Some(v);
    }
    if let Some(v) = i.response_content_encoding {
        o.content_encoding = Some(v);
    }
    if let Some(v) = i.response_content_language {
        o.content_language = Some(v);
    }
    if let Some(v) = i.response_cache_control {
        o.cache_control = Some(v);
    }
    o.body = Some(s.body(&vfs, f.ia.gfid, r.start, r.end).await?);
    let mut resp = S3Response::new(o);
    resp.headers = extra_headers(&m);
    Ok(resp)
}

pub(crate) async fn head_object(
    s: &GatewayS3,
    req: S3Request<HeadObjectInput>,
) -> S3Result<S3Response<HeadObjectOutput>> {
    refuse_encryption(&req.headers)?;
    let vfs = s.vfs()?;
    let i = &req.input;
    let (f, r, m) = checked_read(s, &vfs, &req, &i.bucket, &i.key, read_request!(i)).await?;
    let mut o = HeadObjectOutput::default();
    object_headers!(o, f, m);
    o.content_length = Some((r.end - r.start) as i64);
    o.content_range = r.content_range;
    o.parts_count = r.parts_count.or(o.parts_count);
    if let Some(c) = r.checksum {
        checksum_fields!(o, c);
    }
    let mut resp = S3Response::new(o);
    resp.headers = extra_headers(&m);
    Ok(resp)
}
