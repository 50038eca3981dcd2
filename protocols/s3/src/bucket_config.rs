//! A bucket's access settings: its policy (and whether it is public), its public access block
//! and its ownership controls. Only the owner (or what the policy grants) reaches them.

use crate::access::policy::Policy as BucketPolicy;
use crate::access::{Action, BucketAccess, Identity, Ownership, PublicAccessBlock, keys};
use crate::authz;
use crate::error::{On, fs_error};
use crate::gateway::GatewayS3;
use crate::vfs::Vfs;
use bytes::Bytes;
use engine::fop::{Gfid, Xattrs};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

/// The bucket, once `action` on it is allowed.
async fn owned<T>(
    s: &GatewayS3,
    req: &S3Request<T>,
    bucket: &str,
    action: &'static str,
) -> S3Result<(Vfs, Gfid, BucketAccess, Option<Identity>)> {
    let vfs = s.vfs()?;
    let who = s.who(req.credentials.as_ref())?;
    let (g, b) = s.bucket_access(&vfs, bucket).await?;
    let ctx = authz::context(&req.headers, &req.extensions);
    s.authorize(
        who.as_ref(),
        Action::BucketConfig(action),
        &b,
        None,
        None,
        &ctx,
    )?;
    Ok((vfs, g, b, who))
}

async fn set(vfs: &Vfs, g: Gfid, key: &str, value: impl Into<Bytes>) -> S3Result<()> {
    vfs.setxattrs(g, &Xattrs::from([(key.to_string(), value.into())]))
        .await
        .map_err(|e| fs_error(e, On::Bucket))
}

async fn remove(vfs: &Vfs, g: Gfid, key: &str) -> S3Result<()> {
    match vfs.removexattr(g, key).await {
        Ok(()) => Ok(()),
        Err(e) => Err(fs_error(e, On::Bucket)),
    }
}

pub async fn get_bucket_policy(
    s: &GatewayS3,
    req: S3Request<GetBucketPolicyInput>,
) -> S3Result<S3Response<GetBucketPolicyOutput>> {
    let (_, _, b, _) = owned(s, &req, &req.input.bucket, "s3:GetBucketPolicy").await?;
    match b.policy_text {
        Some(p) => Ok(S3Response::new(GetBucketPolicyOutput { policy: Some(p) })),
        None => Err(s3_error!(
            NoSuchBucketPolicy,
            "The bucket policy does not exist"
        )),
    }
}

pub async fn put_bucket_policy(
    s: &GatewayS3,
    req: S3Request<PutBucketPolicyInput>,
) -> S3Result<S3Response<PutBucketPolicyOutput>> {
    let (vfs, g, b, _) = owned(s, &req, &req.input.bucket, "s3:PutBucketPolicy").await?;
    let p = BucketPolicy::parse(&req.input.policy, &b.name)
        .map_err(|m| s3_error!(MalformedPolicy, "{m}"))?;
    if b.pab.block_public_policy && p.is_public() {
        return Err(authz::denied());
    }
    set(&vfs, g, keys::POLICY, req.input.policy.clone()).await?;
    Ok(S3Response::new(PutBucketPolicyOutput {}))
}

pub async fn delete_bucket_policy(
    s: &GatewayS3,
    req: S3Request<DeleteBucketPolicyInput>,
) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
    let (vfs, g, b, _) = owned(s, &req, &req.input.bucket, "s3:DeleteBucketPolicy").await?;
    if b.policy_text.is_some() {
        remove(&vfs, g, keys::POLICY).await?;
    }
    Ok(S3Response::new(DeleteBucketPolicyOutput {}))
}

pub async fn get_bucket_policy_status(
    s: &GatewayS3,
    req: S3Request<GetBucketPolicyStatusInput>,
) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
    let (_, _, b, _) = owned(s, &req, &req.input.bucket, "s3:GetBucketPolicyStatus").await?;
    // Public when its policy or its ACL grants to everyone (or every signed-in user), unless
    // the public access block ignores public ACLs: what RGW answers, and what s3-tests checks.
    let public = b.policy.as_ref().is_some_and(|p| p.is_public())
        || (!b.pab.ignore_public_acls && b.effective_acl().is_some_and(|a| a.is_public()));
    Ok(S3Response::new(GetBucketPolicyStatusOutput {
        policy_status: Some(PolicyStatus {
            is_public: Some(public),
        }),
    }))
}

pub async fn get_public_access_block(
    s: &GatewayS3,
    req: S3Request<GetPublicAccessBlockInput>,
) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
    let (_, _, b, _) = owned(s, &req, &req.input.bucket, "s3:GetBucketPublicAccessBlock").await?;
    if b.pab == PublicAccessBlock::default() {
        // Not among s3s's codes: AWS's code with its status.
        let mut e = s3s::S3Error::with_message(
            s3s::S3ErrorCode::Custom("NoSuchPublicAccessBlockConfiguration".into()),
            "The public access block configuration was not found",
        );
        e.set_status_code(http::StatusCode::NOT_FOUND);
        return Err(e);
    }
    Ok(S3Response::new(GetPublicAccessBlockOutput {
        public_access_block_configuration: Some(PublicAccessBlockConfiguration {
            block_public_acls: Some(b.pab.block_public_acls),
            ignore_public_acls: Some(b.pab.ignore_public_acls),
            block_public_policy: Some(b.pab.block_public_policy),
            restrict_public_buckets: Some(b.pab.restrict_public_buckets),
        }),
    }))
}

pub async fn put_public_access_block(
    s: &GatewayS3,
    req: S3Request<PutPublicAccessBlockInput>,
) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
    let (vfs, g, _, _) = owned(s, &req, &req.input.bucket, "s3:PutBucketPublicAccessBlock").await?;
    let c = &req.input.public_access_block_configuration;
    let pab = PublicAccessBlock {
        block_public_acls: c.block_public_acls.unwrap_or(false),
        ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
        block_public_policy: c.block_public_policy.unwrap_or(false),
        restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
    };
    let json = serde_json::to_string(&pab).expect("serialises");
    set(&vfs, g, keys::PUBLIC_ACCESS_BLOCK, json).await?;
    Ok(S3Response::new(PutPublicAccessBlockOutput {}))
}

pub async fn delete_public_access_block(
    s: &GatewayS3,
    req: S3Request<DeletePublicAccessBlockInput>,
) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
    let (vfs, g, b, _) = owned(s, &req, &req.input.bucket, "s3:PutBucketPublicAccessBlock").await?;
    if b.pab != PublicAccessBlock::default() {
        remove(&vfs, g, keys::PUBLIC_ACCESS_BLOCK).await?;
    }
    Ok(S3Response::new(DeletePublicAccessBlockOutput {}))
}

pub async fn get_bucket_ownership_controls(
    s: &GatewayS3,
    req: S3Request<GetBucketOwnershipControlsInput>,
) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
    let (_, _, b, _) = owned(s, &req, &req.input.bucket, "s3:GetBucketOwnershipControls").await?;
    if !b.ownership_set {
        return Err(s3_error!(
            OwnershipControlsNotFoundError,
            "The bucket ownership controls were not found"
        ));
    }
    Ok(S3Response::new(GetBucketOwnershipControlsOutput {
        ownership_controls: Some(OwnershipControls {
            rules: vec![OwnershipControlsRule {
                object_ownership: ObjectOwnership::from(b.ownership.as_str().to_string()),
            }],
        }),
    }))
}

/// The ownership a request names; MalformedXML (or InvalidArgument) otherwise.
pub(crate) fn parse_ownership(o: &ObjectOwnership) -> S3Result<Ownership> {
    Ownership::parse(o.as_str())
        .ok_or_else(|| s3_error!(InvalidArgument, "Invalid object ownership {:?}", o.as_str()))
}

pub async fn put_bucket_ownership_controls(
    s: &GatewayS3,
    req: S3Request<PutBucketOwnershipControlsInput>,
) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
    let (vfs, g, b, _) = owned(s, &req, &req.input.bucket, "s3:PutBucketOwnershipControls").await?;
    let rules = &req.input.ownership_controls.rules;
    let [rule] = rules.as_slice() else {
        return Err(s3_error!(
            MalformedXML,
            "OwnershipControls must hold exactly one rule"
        ));
    };
    let o = parse_ownership(&rule.object_ownership)?;
    // Enforced ownership turns ACLs off: a bucket ACL granting others must go first.
    if o == Ownership::BucketOwnerEnforced
        && let Some(a) = &b.acl
        && a.grants
            .iter()
            .any(|g| g.grantee != crate::access::acl::Grantee::User(a.owner.clone()))
    {
        return Err(s3_error!(
            InvalidBucketAclWithObjectOwnership,
            "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
        ));
    }
    set(&vfs, g, keys::OWNERSHIP, o.as_str()).await?;
    Ok(S3Response::new(PutBucketOwnershipControlsOutput {}))
}

pub async fn delete_bucket_ownership_controls(
    s: &GatewayS3,
    req: S3Request<DeleteBucketOwnershipControlsInput>,
) -> S3Result<S3Response<DeleteBucketOwnershipControlsOutput>> {
    let (vfs, g, b, _) = owned(s, &req, &req.input.bucket, "s3:PutBucketOwnershipControls").await?;
    if b.ownership_set {
        remove(&vfs, g, keys::OWNERSHIP).await?;
    }
    Ok(S3Response::new(DeleteBucketOwnershipControlsOutput {}))
}
