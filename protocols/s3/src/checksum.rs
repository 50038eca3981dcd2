//! Additional checksums (`x-amz-checksum-*`): clients send them in a header or, with aws-chunked
//! bodies, in a trailer after the last chunk; both are checked against the bytes received before
//! an object or part becomes visible, and echoed in the reply as S3 does.

use http::HeaderMap;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Sha1, Sha256};
use s3s::dto::Checksum;
use s3s::{S3Result, TrailingHeaders, s3_error};

/// One algorithm's header name, as it appears in headers and trailers.
const NAMES: [&str; 5] = [
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
];

/// The `x-amz-checksum-*` header values of an upload's input (PutObject, UploadPart): the
/// generated input types share the field names but no trait.
macro_rules! checksums_of {
    ($i:expr) => {
        s3s::dto::Checksum {
            checksum_crc32: $i.checksum_crc32,
            checksum_crc32c: $i.checksum_crc32c,
            checksum_crc64nvme: $i.checksum_crc64nvme,
            checksum_sha1: $i.checksum_sha1,
            checksum_sha256: $i.checksum_sha256,
            checksum_type: None,
        }
    };
}
pub(crate) use checksums_of;

/// What a request promised about its body, and the running hashes that will check it.
#[derive(Default)]
pub struct BodyChecks {
    hasher: ChecksumHasher,
    given: Checksum,
    trailer: Option<(&'static str, TrailingHeaders)>,
    computed: Checksum,
}

impl BodyChecks {
    /// From the operation's checksum fields (headers) and, when the body is aws-chunked with a
    /// trailer, the algorithm `x-amz-trailer` names.
    pub fn new(
        given: Checksum,
        headers: &HeaderMap,
        trailer: Option<TrailingHeaders>,
    ) -> S3Result<Self> {
        let announced = headers
            .get("x-amz-trailer")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase());
        if let Some(a) = &announced
            && !NAMES.contains(&a.as_str())
        {
            return Err(s3_error!(
                InvalidArgument,
                "x-amz-trailer names an unsupported checksum: {a}"
            ));
        }
        let wants = |name: &str, field: &Option<String>| {
            field.is_some() || announced.as_deref() == Some(name)
        };
        let hasher = ChecksumHasher {
            crc32: wants(NAMES[0], &given.checksum_crc32).then(Crc32::new),
            crc32c: wants(NAMES[1], &given.checksum_crc32c).then(Crc32c::new),
            crc64nvme: wants(NAMES[2], &given.checksum_crc64nvme).then(Crc64Nvme::new),
            sha1: wants(NAMES[3], &given.checksum_sha1).then(Sha1::new),
            sha256: wants(NAMES[4], &given.checksum_sha256).then(Sha256::new),
        };
        let announced = announced.and_then(|a| NAMES.iter().find(|n| **n == a).copied());
        Ok(Self {
            hasher,
            given,
            trailer: announced.zip(trailer),
            computed: Checksum::default(),
        })
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
    }

    /// Computes algorithm `i` (of `ALGOS`) too, when no value for it was sent: an upload that
    /// declared its algorithm gets each part's checksum stored either way.
    pub fn also(&mut self, i: usize) {
        let h = &mut self.hasher;
        match i {
            0 => h.crc32 = h.crc32.take().or_else(|| Some(Crc32::new())),
            1 => h.crc32c = h.crc32c.take().or_else(|| Some(Crc32c::new())),
            2 => h.crc64nvme = h.crc64nvme.take().or_else(|| Some(Crc64Nvme::new())),
            3 => h.sha1 = h.sha1.take().or_else(|| Some(Sha1::new())),
            _ => h.sha256 = h.sha256.take().or_else(|| Some(Sha256::new())),
        }
    }

    /// Once the whole body is in: every promised checksum against the computed one.
    pub fn verify(&mut self) -> S3Result<()> {
        let mut got = std::mem::take(&mut self.hasher).finalize();
        let mut want = std::mem::take(&mut self.given);
        if let Some((name, t)) = self.trailer.take() {
            let value = t
                .take()
                .and_then(|h| h.get(name).and_then(|v| v.to_str().ok().map(str::to_owned)));
            let Some(v) = value else {
                return Err(s3_error!(
                    IncompleteBody,
                    "The body announced a {name} trailer and ended without it."
                ));
            };
            let i = NAMES
                .iter()
                .position(|n| *n == name)
                .expect("checked in new");
            *field(&mut want, i) = Some(v.trim().to_owned());
        }
        for (i, name) in NAMES.iter().enumerate() {
            if let (Some(w), Some(g)) = (
                field(&mut want, i).as_deref(),
                field(&mut got, i).as_deref(),
            ) && w.trim() != g
            {
                let algo = name
                    .trim_start_matches("x-amz-checksum-")
                    .to_ascii_uppercase();
                return Err(s3_error!(
                    BadDigest,
                    "The {algo} you specified did not match the calculated checksum."
                ));
            }
        }
        self.computed = got;
        Ok(())
    }

    /// The checksums computed by `verify`.
    pub fn result(&self) -> &Checksum {
        &self.computed
    }

    /// The checksums computed by `verify`, to be echoed in the reply.
    pub fn computed(&mut self) -> Checksum {
        std::mem::take(&mut self.computed)
    }
}

/// The algorithms by their S3 names (`x-amz-checksum-algorithm`), in the order of `NAMES`.
pub const ALGOS: [&str; 5] = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"];

pub fn algo_index(name: &str) -> Option<usize> {
    ALGOS.iter().position(|a| a.eq_ignore_ascii_case(name))
}

/// A checksum with only algorithm `i` set to `value`.
pub fn with_value(i: usize, value: String) -> Checksum {
    let mut c = Checksum::default();
    *field(&mut c, i) = Some(value);
    c
}

/// Algorithm `i`'s value in `c`.
pub fn value_of(c: &Checksum, i: usize) -> Option<&str> {
    match i {
        0 => c.checksum_crc32.as_deref(),
        1 => c.checksum_crc32c.as_deref(),
        2 => c.checksum_crc64nvme.as_deref(),
        3 => c.checksum_sha1.as_deref(),
        _ => c.checksum_sha256.as_deref(),
    }
}

/// The first algorithm `c` carries a value for.
pub fn first(c: &Checksum) -> Option<(usize, String)> {
    (0..ALGOS.len()).find_map(|i| value_of(c, i).map(|v| (i, v.to_owned())))
}

/// A multipart object's COMPOSITE checksum, as S3 computes it: the checksum of the parts'
/// binary checksums one after the other, base64, then `-N`. None when a part's value is not
/// base64.
pub fn composite(i: usize, parts: &[String]) -> Option<String> {
    use base64::Engine;
    let mut only = BodyChecks::default();
    only.also(i);
    for p in parts {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(p.trim())
            .ok()?;
        only.hasher.update(&raw);
    }
    let sum = std::mem::take(&mut only.hasher).finalize();
    Some(format!("{}-{}", value_of(&sum, i)?, parts.len()))
}

fn field(c: &mut Checksum, i: usize) -> &mut Option<String> {
    match i {
        0 => &mut c.checksum_crc32,
        1 => &mut c.checksum_crc32c,
        2 => &mut c.checksum_crc64nvme,
        3 => &mut c.checksum_sha1,
        _ => &mut c.checksum_sha256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc32_of(data: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(crc32_reference(data).to_be_bytes())
    }

    // The CRC-32 (ISO-HDLC) of the test input, computed bit by bit as the reference.
    fn crc32_reference(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for b in data {
            c ^= u32::from(*b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ 0xEDB8_8320
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    fn header_checks(crc: &str) -> BodyChecks {
        let given = Checksum {
            checksum_crc32: Some(crc.to_owned()),
            ..Default::default()
        };
        BodyChecks::new(given, &HeaderMap::new(), None).unwrap()
    }

    #[test]
    fn header_checksum_matches_and_is_echoed() {
        let data = b"hello, bricks";
        let mut c = header_checks(&crc32_of(data));
        c.update(&data[..5]);
        c.update(&data[5..]);
        c.verify().unwrap();
        assert_eq!(c.computed().checksum_crc32, Some(crc32_of(data)));
    }

    #[test]
    fn header_checksum_mismatch_is_bad_digest() {
        let mut c = header_checks(&crc32_of(b"something else"));
        c.update(b"hello, bricks");
        let e = c.verify().unwrap_err();
        assert_eq!(*e.code(), s3s::S3ErrorCode::BadDigest);
    }

    #[test]
    fn composite_checksum_matches_s3() {
        // s3-tests' test_multipart_checksum_sha256: one 1 KiB part of 'A'.
        let part = "arcu6553sHVAiX4MjW0j7I7vD4w6R+Gz9Ok0Q9lTa+0=".to_string();
        assert_eq!(
            composite(4, &[part]).as_deref(),
            Some("Ok6Cs5b96ux6+MWQkJO7UBT5sKPBeXBLwvj/hK89smg=-1")
        );
    }

    #[test]
    fn unknown_trailer_is_refused() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-trailer", "x-amz-checksum-md4".parse().unwrap());
        assert!(BodyChecks::new(Checksum::default(), &h, None).is_err());
    }
}
