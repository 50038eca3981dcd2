//! Buckets: the top-level directories of the volume.

use crate::access::{Action, BucketAccess, Ownership, keys};
use crate::authz::{self, access_xattrs, grant_headers};
use crate::error::{On, fs_error};
use crate::gateway::{GatewayS3, valid_bucket};
use crate::meta::timestamp;
use bytes::Bytes;
use engine::fop::{Ctx, Errno, Gfid, Xattrs};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

/// The LocationConstraint a bucket was created with (an xattr of its directory).
const LOCATION: &str = "user.s3.location";

pub(crate) async fn list_buckets(
    s: &GatewayS3,
    req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let vfs = s.vfs()?;
    let who = s.who(req.credentials.as_ref())?.ok_or_else(authz::denied)?;
    let i = req.input;
    let prefix = i.prefix.clone().unwrap_or_default();
    // The continuation token is the last name of the page before, hex-encoded.
    let after = match &i.continuation_token {
        Some(t) => Some(
            hex::decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    s3_error!(
                        InvalidArgument,
                        "The continuation token provided is incorrect."
                    )
                })?,
        ),
        None => None,
    };
    let max = match i.max_buckets {
        Some(n) if !(1..=10_000).contains(&n) => {
            return Err(s3_error!(
                InvalidArgument,
                "max-buckets must be an integer between 1 and 10000."
            ));
        }
        Some(n) => n as usize,
        None => usize::MAX,
    };
    let mut names: Vec<String> = vfs
        .list_dir(Gfid::ROOT)
        .await
        .map_err(|e| fs_error(e, On::Bucket))?
        .into_iter()
        .filter(|(n, d)| *d && valid_bucket(n) && n.starts_with(&prefix))
        .filter(|(n, _)| after.as_ref().is_none_or(|a| n > a))
        .map(|(n, _)| n)
        .collect();
    names.sort();
    // A key lists the buckets it owns or was granted (an admin key, every one), as S3 lists a
    // caller's own buckets only.
    let mut buckets = Vec::new();
    let mut more = false;
    for n in names {
        let Ok((ia, x)) = vfs.lookup(Gfid::ROOT, &n, &authz::access_want()).await else {
            continue;
        };
        let b = BucketAccess::from_xattrs(&n, &x);
        let mine = who.admin
            || b.owner.as_deref() == Some(who.id.as_str())
            || who.grants.iter().any(|g| g.bucket == n);
        if !mine {
            continue;
        }
        if buckets.len() == max {
            more = true;
            break;
        }
        buckets.push(Bucket {
            name: Some(n),
            creation_date: Some(timestamp(if ia.ctime.sec < ia.mtime.sec {
                ia.ctime
            } else {
                ia.mtime
            })),
            ..Default::default()
        });
    }
    let token = more.then(|| {
        hex::encode(
            buckets
                .last()
                .and_then(|b| b.name.as_deref())
                .unwrap_or("")
                .as_bytes(),
        )
    });
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(s.owner_of(Some(&who.id))),
        continuation_token: token,
        prefix: i.prefix,
    }))
}

pub(crate) async fn create_bucket(
    s: &GatewayS3,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let vfs = s.vfs()?;
    // Anonymous requests make nothing.
    let who = s.who(req.credentials.as_ref())?.ok_or_else(authz::denied)?;
    let name = &req.input.bucket;
    if req.input.object_lock_enabled_for_bucket == Some(true) {
        return Err(s3_error!(
            NotImplemented,
            "Object lock is not supported by this gateway; the bucket was not created."
        ));
    }
    // S3's naming rules for new buckets (a directory made otherwise is served whatever its
    // name): s3s checks length, characters and ends; a dot next to a dash or dot is refused too.
    if !valid_bucket(name) || ["-.", ".-", ".."].iter().any(|p| name.contains(p)) {
        return Err(s3_error!(
            InvalidBucketName,
            "The specified bucket is not valid."
        ));
    }
    // The constraint is kept and given back by GetBucketLocation, as S3 does; every bucket
    // is a directory of the same volume, whatever its location says.
    let mut x = Xattrs::new();
    if let Some(loc) = req
        .input
        .create_bucket_configuration
        .as_ref()
        .and_then(|c| c.location_constraint.as_ref())
        .filter(|l| !l.as_str().is_empty())
    {
        x.insert(LOCATION.to_string(), Bytes::from(loc.as_str().to_string()));
    }
    // The key that makes it owns it, with the ACL and object ownership the request names.
    let i = &req.input;
    let ownership = match &i.object_ownership {
        Some(o) => crate::bucket_config::parse_ownership(o)?,
        None => Ownership::default(),
    };
    let acl = s.acl_from_request(
        &who.id,
        None,
        i.acl.as_ref().map(|a| a.as_str()),
        grant_headers!(i),
        None,
    )?;
    if ownership == Ownership::BucketOwnerEnforced
        && acl.as_ref().is_some_and(|a| {
            a.grants
                .iter()
                .any(|g| g.grantee != crate::access::acl::Grantee::User(who.id.clone()))
        })
    {
        return Err(s3_error!(
            InvalidBucketAclWithObjectOwnership,
            "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
        ));
    }
    x.extend(access_xattrs(&who.id, acl.as_ref()));
    if i.object_ownership.is_some() {
        x.insert(keys::OWNERSHIP.to_string(), Bytes::from(ownership.as_str()));
    }
    // A key with a uid owns its buckets on the file system too (FUSE, NFS, SMB users).
    let maker = match who.owner_ids {
        Some((uid, gid)) => crate::vfs::Vfs {
            ctx: Ctx {
                uid,
                gid,
                ..vfs.ctx.clone()
            },
            ..vfs.clone()
        },
        None => vfs.clone(),
    };
    match maker.mkdir(Gfid::ROOT, name, x).await {
        Ok(_) => Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{name}")),
        })),
        Err(Errno::EEXIST) => {
            let (_, b) = s.bucket_access(&vfs, name).await?;
            let yours = who.admin
                || b.owner.as_deref() == Some(who.id.as_str())
                || who.grants.iter().any(|g| g.bucket == *name && g.owner);
            let asked = acl
                .clone()
                .unwrap_or_else(|| crate::access::acl::Acl::private(&who.id));
            let same_acl = b.effective_acl().is_none_or(|a| a == asked);
            if !yours || !same_acl {
                // Nor may its owner's repeated create change its ACL behind a 200 (RGW's rule,
                // which s3-tests checks): set an ACL with PutBucketAcl.
                Err(s3_error!(
                    BucketAlreadyExists,
                    "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."
                ))
            } else if s.region == "us-east-1" {
                // S3's us-east-1 answers a repeated create by the owner with success and
                // changes nothing; its other regions refuse it.
                Ok(S3Response::new(CreateBucketOutput {
                    location: Some(format!("/{name}")),
                }))
            } else {
                Err(s3_error!(
                    BucketAlreadyOwnedByYou,
                    "Your previous request to create the named bucket succeeded and you already own it."
                ))
            }
        }
        Err(e) => Err(fs_error(e, On::Bucket)),
    }
}

pub(crate) async fn delete_bucket(
    s: &GatewayS3,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    let vfs = s.vfs()?;
    s.allowed(
        &vfs,
        &req,
        &req.input.bucket,
        Action::DeleteBucket,
        None,
        &[],
    )
    .await?;
    vfs.rmdir(Gfid::ROOT, &req.input.bucket)
        .await
        .map_err(|e| fs_error(e, On::Bucket))?;
    Ok(S3Response::new(DeleteBucketOutput {}))
}

pub(crate) async fn head_bucket(
    s: &GatewayS3,
    req: S3Request<HeadBucketInput>,
) -> S3Result<S3Response<HeadBucketOutput>> {
    let vfs = s.vfs()?;
    s.allowed(&vfs, &req, &req.input.bucket, Action::ListBucket, None, &[])
        .await?;
    Ok(S3Response::new(HeadBucketOutput {
        bucket_region: Some(s.region.clone()),
        ..Default::default()
    }))
}

pub(crate) async fn get_bucket_location(
    s: &GatewayS3,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    let vfs = s.vfs()?;
    let b = s
        .allowed(
            &vfs,
            &req,
            &req.input.bucket,
            Action::BucketConfig("s3:GetBucketLocation"),
            None,
            &[],
        )
        .await?
        .gfid;
    // The constraint the bucket was made with; without one, the region, with us-east-1
    // reported as an empty constraint, as S3 does.
    let stored = vfs.getxattr(b, Some(LOCATION)).await.ok().and_then(|x| {
        x.get(LOCATION)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    });
    let loc = stored
        .or_else(|| (s.region != "us-east-1").then(|| s.region.clone()))
        .map(BucketLocationConstraint::from);
    Ok(S3Response::new(GetBucketLocationOutput {
        location_constraint: loc,
    }))
}

pub(crate) async fn get_bucket_versioning(
    s: &GatewayS3,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    let vfs = s.vfs()?;
    s.allowed(
        &vfs,
        &req,
        &req.input.bucket,
        Action::BucketConfig("s3:GetBucketVersioning"),
        None,
        &[],
    )
    .await?;
    Ok(S3Response::new(GetBucketVersioningOutput::default()))
}
