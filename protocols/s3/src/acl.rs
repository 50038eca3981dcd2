//! GetBucketAcl, PutBucketAcl, GetObjectAcl, PutObjectAcl.

use crate::access::{Action, ObjectAccess, keys};
use crate::authz::{self, grant_headers};
use crate::error::{On, fs_error};
use crate::gateway::GatewayS3;
use bytes::Bytes;
use engine::fop::Xattrs;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

pub async fn get_bucket_acl(
    s: &GatewayS3,
    req: S3Request<GetBucketAclInput>,
) -> S3Result<S3Response<GetBucketAclOutput>> {
    let vfs = s.vfs()?;
    let who = s.who(req.credentials.as_ref())?;
    let (_, b) = s.bucket_access(&vfs, &req.input.bucket).await?;
    let ctx = authz::context(&req.headers, &req.extensions);
    s.authorize(who.as_ref(), Action::GetBucketAcl, &b, None, None, &ctx)?;
    let a = b.effective_acl();
    let dto = a.as_ref().map(|a| s.acl_to_dto(a));
    Ok(S3Response::new(GetBucketAclOutput {
        grants: dto.as_ref().and_then(|d| d.grants.clone()),
        owner: Some(s.owner_of(b.owner.as_deref())),
    }))
}

pub async fn put_bucket_acl(
    s: &GatewayS3,
    req: S3Request<PutBucketAclInput>,
) -> S3Result<S3Response<PutBucketAclOutput>> {
    let vfs = s.vfs()?;
    let who = s.who(req.credentials.as_ref())?;
    let (g, b) = s.bucket_access(&vfs, &req.input.bucket).await?;
    let ctx = authz::context(&req.headers, &req.extensions);
    s.authorize(who.as_ref(), Action::PutBucketAcl, &b, None, None, &ctx)?;
    let i = &req.input;
    let owner = b
        .owner
        .clone()
        .or_else(|| who.as_ref().map(|w| w.id.clone()))
        .ok_or_else(authz::denied)?;
    let acl = s
        .acl_from_request(
            &owner,
            None,
            i.acl.as_ref().map(|a| a.as_str()),
            grant_headers!(i),
            i.access_control_policy.as_ref(),
        )?
        .ok_or_else(|| {
            s3_error!(
                MissingSecurityHeader,
                "Your request was missing a required header: an ACL"
            )
        })?;
    s.check_acl_allowed(&b, &acl)?;
    let mut x = Xattrs::from([(keys::ACL.to_string(), Bytes::from(acl.to_json()))]);
    if b.owner.is_none() {
        x.insert(keys::OWNER.to_string(), Bytes::from(owner));
    }
    vfs.setxattrs(g, &x)
        .await
        .map_err(|e| fs_error(e, On::Bucket))?;
    Ok(S3Response::new(PutBucketAclOutput::default()))
}

pub async fn get_object_acl(
    s: &GatewayS3,
    req: S3Request<GetObjectAclInput>,
) -> S3Result<S3Response<GetObjectAclOutput>> {
    let vfs = s.vfs()?;
    let i = &req.input;
    let (a, f) = s
        .object_allowed(&vfs, &req, &i.bucket, &i.key, Action::GetObjectAcl)
        .await?;
    let (b, o) = (a.bucket, ObjectAccess::from_xattrs(&f.x));
    let a = o.effective_acl(&b);
    let dto = a.as_ref().map(|a| s.acl_to_dto(a));
    Ok(S3Response::new(GetObjectAclOutput {
        grants: dto.as_ref().and_then(|d| d.grants.clone()),
        owner: Some(s.owner_of(o.owner_in(&b).as_deref())),
        ..Default::default()
    }))
}

pub async fn put_object_acl(
    s: &GatewayS3,
    req: S3Request<PutObjectAclInput>,
) -> S3Result<S3Response<PutObjectAclOutput>> {
    let vfs = s.vfs()?;
    let i = &req.input;
    let (a, f) = s
        .object_allowed(&vfs, &req, &i.bucket, &i.key, Action::PutObjectAcl)
        .await?;
    let (who, b) = (a.who, a.bucket);
    let (g, o) = (f.ia.gfid, ObjectAccess::from_xattrs(&f.x));
    let owner = o
        .owner_in(&b)
        .or_else(|| who.as_ref().map(|w| w.id.clone()))
        .ok_or_else(authz::denied)?;
    let acl = s
        .acl_from_request(
            &owner,
            b.owner.as_deref(),
            i.acl.as_ref().map(|a| a.as_str()),
            grant_headers!(i),
            i.access_control_policy.as_ref(),
        )?
        .ok_or_else(|| {
            s3_error!(
                MissingSecurityHeader,
                "Your request was missing a required header: an ACL"
            )
        })?;
    s.check_acl_allowed(&b, &acl)?;
    let mut x = Xattrs::from([(keys::ACL.to_string(), Bytes::from(acl.to_json()))]);
    if o.owner.is_none() {
        x.insert(keys::OWNER.to_string(), Bytes::from(owner));
    }
    vfs.setxattrs(g, &x)
        .await
        .map_err(|e| fs_error(e, On::Object))?;
    Ok(S3Response::new(PutObjectAclOutput::default()))
}
