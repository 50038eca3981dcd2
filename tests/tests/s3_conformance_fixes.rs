//! S3 behaviours ceph's s3-tests found wrong, pinned with boto3 (`tests/s3/conformance_fixes.py`)
//! against a real `gatewayd up` on the default 2 x 2 volume and checked against its FUSE mount.
//! Each test runs one group of the script's checks.

use anyhow::{Result, ensure};
use e2e::*;
use std::process::Command;

fn run_group(group: &str) -> Result<()> {
    need("python3");
    let gw = Gateway::start(GatewayOpts {
        replica: 2,
        ..Default::default()
    })?;
    let (access, secret) = gw.s3_key(group)?;
    let out = run(Command::new("python3")
        .arg(workspace_root().join("tests/s3/conformance_fixes.py"))
        .arg(group)
        .env("S3_URL", gw.s3_url()?)
        .env("MNT", gw.mnt())
        .env("AWS_ACCESS_KEY_ID", access)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true"))?;
    let text = output_text(&out);
    ensure!(
        out.status.success() && text.contains(&format!("all {group} checks passed")),
        "{group} checks failed:\n{text}\n{}",
        gw.logs()
    );
    Ok(())
}

/// `PUT dir/` (s3fs, the AWS console, Cyberduck) is the directory: HEAD and GET answer it as an
/// empty object with its metadata, listings show `dir/`, and DELETE removes it; HEAD of any
/// directory's `dir/` is an empty object.
#[test]
fn folder_keys_are_directories_that_answer_as_empty_objects() -> Result<()> {
    run_group("folders")
}

/// `foo/bar` and `foo/bar/xyzzy` coexist in either order: the object `foo/bar` is kept as
/// `foo/bar/.s3-object` when `foo/bar` must be a directory; both read, list in key order, and
/// deleting either leaves the other.
#[test]
fn a_key_and_keys_below_it_coexist() -> Result<()> {
    run_group("prefix_keys")
}

/// Conditional PUT (`If-None-Match: *` or a matching ETag fails, `If-Match` on a missing key is
/// 404) and 304s with ETag and Last-Modified and no body.
#[test]
fn conditional_writes_and_not_modified_answers() -> Result<()> {
    run_group("conditions")
}

/// `partNumber` on GET and HEAD, GetObjectAttributes' parts, unquoted ETags and repeated
/// completes, and a part uploaded twice (the last upload counts).
#[test]
fn multipart_parts_are_readable_one_by_one() -> Result<()> {
    run_group("parts")
}

/// Multipart checksums: the algorithm echoed, each part's checksum, the composite checksum
/// returned, stored and checked, and a PUT's checksum given back with ChecksumMode.
#[test]
fn multipart_checksums_are_composed_stored_and_returned() -> Result<()> {
    run_group("checksums")
}

/// Ten tags of AWS's largest size, `x-amz-tagging-count` on GET and HEAD, tags in key order,
/// bucket tags.
#[test]
fn large_tag_sets_fit_and_are_counted() -> Result<()> {
    run_group("tags")
}

/// Empty delimiters, FetchOwner, v1's unencoded prefix, ListBuckets pages, GetBucketLocation.
#[test]
fn listings_answer_as_s3_does() -> Result<()> {
    run_group("listings")
}

/// `aws-chunked` is not a stored Content-Encoding, metadata comes back as sent, and a key with
/// C1 control characters is InvalidURI.
#[test]
fn what_a_put_carries_comes_back_as_sent() -> Result<()> {
    run_group("headers")
}

/// Server-side encryption is refused (nothing is stored in the clear), and versioning, object
/// lock, lifecycle, encryption, CORS, website and logging configuration answer 501.
#[test]
fn unsupported_features_are_refused_with_501() -> Result<()> {
    run_group("refused")
}
