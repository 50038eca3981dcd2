//! errno → S3 error, in one place, so every operation answers the same way.

use engine::fop::Errno;
use s3s::{S3Error, S3ErrorCode, s3_error};

/// What an operation was doing when the file system said no, to pick the code an S3 client
/// expects (a missing name is NoSuchKey for an object, NoSuchBucket for a bucket, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    Object,
    Bucket,
    Upload,
}

pub fn fs_error(e: Errno, on: On) -> S3Error {
    match e {
        Errno::ENOENT | Errno::ESTALE => match on {
            On::Object => s3_error!(NoSuchKey, "The specified key does not exist."),
            On::Bucket => s3_error!(NoSuchBucket, "The specified bucket does not exist."),
            On::Upload => s3_error!(
                NoSuchUpload,
                "The specified multipart upload does not exist."
            ),
        },
        Errno::ENOTDIR | Errno::EISDIR => clash(),
        Errno::EACCES | Errno::EPERM => s3_error!(AccessDenied, "Access Denied"),
        Errno::EROFS => s3_error!(AccessDenied, "The volume is read-only."),
        Errno::ENAMETOOLONG => s3_error!(KeyTooLongError, "Your key is too long."),
        Errno::ENOTEMPTY => s3_error!(
            BucketNotEmpty,
            "The bucket you tried to delete is not empty."
        ),
        Errno::ENOSPC | Errno::EDQUOT => {
            let mut err = S3Error::with_message(
                S3ErrorCode::Custom("InsufficientStorage".into()),
                "The volume has no space left for this object.",
            );
            err.set_status_code(http::StatusCode::INSUFFICIENT_STORAGE);
            err
        }
        Errno::ENOTCONN | Errno::ETIMEDOUT | Errno::EAGAIN => s3_error!(
            ServiceUnavailable,
            "A brick holding this data is unreachable ({e}); retry later."
        ),
        _ => s3_error!(InternalError, "The volume answered: {e}"),
    }
}

/// A key whose path runs into a file, or that names a directory.
pub fn clash() -> S3Error {
    s3_error!(
        InvalidArgument,
        "The key clashes with the file system: one of its parent names is an object, or the key names a directory."
    )
}

/// A request body that failed while streaming. s3s does not export its aws-chunked error type,
/// so the decoder's verdict is read from its message: a chunk whose signature does not verify
/// is a signing failure (403), not a short body.
pub fn body_error(msg: &str) -> S3Error {
    if msg.contains("SignatureMismatch") {
        s3_error!(
            SignatureDoesNotMatch,
            "A chunk signature of the aws-chunked body did not match."
        )
    } else if msg.contains("FormatError") || msg.contains("TooLarge") || msg.contains("TooMany") {
        s3_error!(
            InvalidRequest,
            "The aws-chunked request body is malformed: {msg}"
        )
    } else {
        s3_error!(IncompleteBody, "The request body ended early: {msg}")
    }
}
