//! Tenancy in the operations: who asks, the bucket's and object's access settings as read
//! along with them, and the check `access::allowed` makes, answered with S3's errors.

use crate::access::acl::{self, Acl, Grantee, Perm};
use crate::access::{self, Action, BucketAccess, Identity, ObjectAccess, keys};
use crate::error::{On, fs_error};
use crate::gateway::{GatewayS3, valid_bucket};
use crate::vfs::Vfs;
use bytes::Bytes;
use engine::fop::{Gfid, Xattrs};
use s3s::auth::Credentials;
use s3s::dto::*;
use s3s::{S3Error, S3Result, s3_error};
use std::collections::BTreeMap;

/// Condition keys of a request (lower-case names), for bucket policies.
pub(crate) type Context = BTreeMap<String, Vec<String>>;

/// The xattrs a bucket or object lookup asks for, with its access settings.
pub(crate) fn access_want() -> Xattrs {
    Xattrs::from([(format!("{}*", keys::PREFIX), Bytes::new())])
}

pub(crate) fn denied() -> S3Error {
    s3_error!(AccessDenied, "Access Denied")
}

/// Condition keys every request carries: the headers policies name, and the client's address.
pub(crate) fn context(headers: &http::HeaderMap, ext: &http::Extensions) -> Context {
    let mut c = Context::new();
    for (h, k) in [
        ("x-amz-acl", "s3:x-amz-acl"),
        (
            "x-amz-server-side-encryption",
            "s3:x-amz-server-side-encryption",
        ),
        (
            "x-amz-server-side-encryption-aws-kms-key-id",
            "s3:x-amz-server-side-encryption-aws-kms-key-id",
        ),
        ("x-amz-copy-source", "s3:x-amz-copy-source"),
        ("x-amz-metadata-directive", "s3:x-amz-metadata-directive"),
        ("x-amz-grant-full-control", "s3:x-amz-grant-full-control"),
        ("x-amz-grant-read", "s3:x-amz-grant-read"),
        ("x-amz-grant-write", "s3:x-amz-grant-write"),
        ("x-amz-storage-class", "s3:x-amz-storage-class"),
        ("referer", "aws:referer"),
        ("user-agent", "aws:useragent"),
    ] {
        if let Some(v) = headers.get(h).and_then(|v| v.to_str().ok()) {
            c.entry(k.to_string()).or_default().push(v.to_string());
        }
    }
    if let Some(peer) = ext.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>() {
        c.insert("aws:sourceip".into(), vec![peer.0.ip().to_string()]);
    }
    c.insert("aws:securetransport".into(), vec!["false".into()]);
    if let Some(t) = headers.get("x-amz-tagging").and_then(|v| v.to_str().ok()) {
        add_tags(&mut c, "s3:requestobjecttag", t);
    }
    c
}

/// Adds a URL-encoded tag set (`k=v&k2=v2`) as `<prefix>/<key>` condition keys, and their
/// names under `s3:requestobjecttagkeys` for request tags.
pub(crate) fn add_tags(c: &mut Context, prefix: &str, encoded: &str) {
    for (k, v) in serde_urlencoded::from_str::<Vec<(String, String)>>(encoded).unwrap_or_default() {
        if prefix == "s3:requestobjecttag" {
            c.entry("s3:requestobjecttagkeys".into())
                .or_default()
                .push(k.clone());
        }
        c.entry(format!("{prefix}/{}", k.to_ascii_lowercase()))
            .or_default()
            .push(v);
    }
}

/// AccessDenied when the request names an owner (`x-amz-expected-bucket-owner`) the bucket
/// does not have: the guard S3 gives clients against writing into a bucket that changed hands.
pub(crate) fn expected_owner(h: &http::HeaderMap, b: &BucketAccess) -> S3Result<()> {
    match h.get("x-amz-expected-bucket-owner") {
        Some(v) if b.owner.as_deref().map(str::as_bytes) != Some(v.as_bytes()) => Err(denied()),
        _ => Ok(()),
    }
}

/// A request allowed on a bucket: who asks, the bucket and its access settings, and the
/// request's condition keys.
pub(crate) struct Allowed {
    pub who: Option<Identity>,
    pub gfid: Gfid,
    pub bucket: BucketAccess,
    pub ctx: Context,
}

impl Allowed {
    /// Whether `action` on `key` (whose access settings are `object`, when it exists) is
    /// allowed too: for the checks one request makes beyond its first (each key of a
    /// DeleteObjects, the source of a copy).
    pub fn also(
        &self,
        s: &GatewayS3,
        action: Action,
        key: &str,
        object: Option<&ObjectAccess>,
    ) -> S3Result<()> {
        s.authorize(
            self.who.as_ref(),
            action,
            &self.bucket,
            Some(key),
            object,
            &self.ctx,
        )
    }

    /// The owner and ACL xattrs of an object this request writes: its writer owns it (the
    /// bucket's owner does where ownership is enforced, or preferred and the ACL is
    /// `bucket-owner-full-control`), with the ACL the request names.
    pub fn new_object(
        &self,
        s: &GatewayS3,
        canned: Option<&str>,
        grants: [(Perm, Option<&str>); 5],
    ) -> S3Result<Xattrs> {
        let b = &self.bucket;
        let writer = self.who.as_ref().map(|w| w.id.clone());
        let bucket_owned = match b.ownership {
            access::Ownership::BucketOwnerEnforced => true,
            access::Ownership::BucketOwnerPreferred => canned == Some("bucket-owner-full-control"),
            access::Ownership::ObjectWriter => false,
        };
        let owner = if bucket_owned {
            b.owner.clone().or(writer)
        } else {
            writer.or_else(|| b.owner.clone())
        };
        let Some(owner) = owner else {
            // Neither a signed writer nor an owned bucket: the file system's own, no settings.
            return Ok(Xattrs::new());
        };
        let acl = s.acl_from_request(&owner, b.owner.as_deref(), canned, grants, None)?;
        if let Some(a) = &acl {
            if b.ownership == access::Ownership::BucketOwnerEnforced {
                // ACLs are off: only the ones that change nothing are accepted, as S3 does.
                if !matches!(canned, Some("bucket-owner-full-control") | Some("private")) {
                    return Err(s3_error!(
                        AccessControlListNotSupported,
                        "The bucket does not allow ACLs"
                    ));
                }
            } else {
                s.check_acl_allowed(b, a)?;
            }
        }
        let acl = acl.filter(|_| b.ownership != access::Ownership::BucketOwnerEnforced);
        Ok(access_xattrs(&owner, acl.as_ref()))
    }
}

impl GatewayS3 {
    /// The bucket, once `who` may do `action` on it (or on `key` in it, for actions that do
    /// not need the object: PutObject, DeleteObject). `extra` adds condition keys.
    pub(crate) async fn allowed<T>(
        &self,
        vfs: &Vfs,
        req: &s3s::S3Request<T>,
        bucket: &str,
        action: Action,
        key: Option<&str>,
        extra: &[(&str, Option<String>)],
    ) -> S3Result<Allowed> {
        let mut a = self.requester(vfs, req, bucket).await?;
        for (k, v) in extra {
            if let Some(v) = v {
                a.ctx.insert(k.to_string(), vec![v.clone()]);
            }
        }
        self.authorize(a.who.as_ref(), action, &a.bucket, key, None, &a.ctx)?;
        Ok(a)
    }

    /// Who asks and the bucket, not yet judged (for requests judged key by key).
    pub(crate) async fn requester<T>(
        &self,
        vfs: &Vfs,
        req: &s3s::S3Request<T>,
        bucket: &str,
    ) -> S3Result<Allowed> {
        let who = self.who(req.credentials.as_ref())?;
        let (gfid, b) = self.bucket_access(vfs, bucket).await?;
        expected_owner(&req.headers, &b)?;
        Ok(Allowed {
            who,
            gfid,
            bucket: b,
            ctx: context(&req.headers, &req.extensions),
        })
    }

    /// An object, once `who` may do `action` on it: checked against its own owner, ACL and
    /// tags before anything else is read (its ETag is computed only for who may see it). A
    /// missing key is NoSuchKey for who may list the bucket and AccessDenied for others.
    pub(crate) async fn object_allowed<T>(
        &self,
        vfs: &Vfs,
        req: &s3s::S3Request<T>,
        bucket: &str,
        key: &str,
        action: Action,
    ) -> S3Result<(Allowed, crate::gateway::Found1)> {
        let who = self.who(req.credentials.as_ref())?;
        let (gfid, b) = self.bucket_access(vfs, bucket).await?;
        expected_owner(&req.headers, &b)?;
        let mut ctx = context(&req.headers, &req.extensions);
        let found = self
            .object_in(vfs, gfid, key, |x| {
                let o = x.map(ObjectAccess::from_xattrs);
                if let Some(x) = x
                    && let Some(t) = crate::meta::ObjectMeta::from_xattrs(x).tagging
                {
                    add_tags(&mut ctx, "s3:existingobjecttag", &t);
                }
                let r = self.authorize(who.as_ref(), action, &b, Some(key), o.as_ref(), &ctx);
                if r.is_err() && x.is_none() {
                    // A missing key is NoSuchKey for who may list it (as S3 answers), which
                    // tells them nothing a listing would not.
                    let mut lc = ctx.clone();
                    lc.insert("s3:prefix".into(), vec![key.to_string()]);
                    if self
                        .authorize(who.as_ref(), Action::ListBucket, &b, None, None, &lc)
                        .is_ok()
                    {
                        return Ok(());
                    }
                }
                r
            })
            .await?;
        Ok((
            Allowed {
                who,
                gfid,
                bucket: b,
                ctx,
            },
            found,
        ))
    }

    /// The key a request is signed with; None for an anonymous request.
    pub(crate) fn who(&self, creds: Option<&Credentials>) -> S3Result<Option<Identity>> {
        match creds {
            None => Ok(None),
            Some(c) => self.keys.identity(&c.access_key).map(Some).ok_or_else(|| {
                s3_error!(
                    InvalidAccessKeyId,
                    "The AWS Access Key Id you provided does not exist in our records."
                )
            }),
        }
    }

    /// A bucket with its access settings, in one lookup.
    pub(crate) async fn bucket_access(
        &self,
        vfs: &Vfs,
        name: &str,
    ) -> S3Result<(Gfid, BucketAccess)> {
        if !valid_bucket(name) {
            return Err(s3_error!(
                NoSuchBucket,
                "The specified bucket does not exist."
            ));
        }
        match vfs.find(Gfid::ROOT, name, &access_want()).await {
            Ok((ia, x)) if ia.is_dir() => Ok((ia.gfid, BucketAccess::from_xattrs(name, &x))),
            Ok(_) => Err(s3_error!(
                NoSuchBucket,
                "The specified bucket does not exist."
            )),
            Err(e) => Err(fs_error(e, On::Bucket)),
        }
    }

    /// AccessDenied unless `who` may do `action` on the bucket (and object).
    pub(crate) fn authorize(
        &self,
        who: Option<&Identity>,
        action: Action,
        bucket: &BucketAccess,
        key: Option<&str>,
        object: Option<&ObjectAccess>,
        ctx: &Context,
    ) -> S3Result<()> {
        let ok = access::allowed(&access::Request {
            who,
            action,
            bucket,
            key,
            object,
            context: ctx,
        });
        if ok {
            Ok(())
        } else {
            tracing::debug!(bucket = %bucket.name, key = ?key, action = action.iam(), who = ?who.map(|w| &w.display_name), "access denied");
            Err(denied())
        }
    }

    /// An owner as S3 shows it, with the key's name as display name.
    pub(crate) fn owner_of(&self, id: Option<&str>) -> Owner {
        match id {
            Some(id) => Owner {
                display_name: self.keys.by_id(id).map(|k| k.display_name),
                id: Some(id.to_string()),
            },
            None => Owner {
                display_name: Some("gateway".into()),
                id: Some("gateway".into()),
            },
        }
    }

    /// An ACL as S3's XML shows it: group grants first, then users (the order RGW answers
    /// canned ACLs in, which clients such as s3-tests index into).
    pub(crate) fn acl_to_dto(&self, a: &Acl) -> AccessControlPolicy {
        let mut ordered: Vec<_> = a.grants.iter().collect();
        ordered.sort_by_key(|g| matches!(g.grantee, Grantee::User(_)));
        let grants = ordered
            .into_iter()
            .map(|g| {
                let grantee = match &g.grantee {
                    Grantee::User(id) => Grantee_ {
                        display_name: self.keys.by_id(id).map(|k| k.display_name),
                        id: Some(id.clone()),
                        type_: Type::from_static(Type::CANONICAL_USER),
                        ..Grantee_::new()
                    },
                    Grantee::Group(uri) => Grantee_ {
                        uri: Some(uri.clone()),
                        type_: Type::from_static(Type::GROUP),
                        ..Grantee_::new()
                    },
                };
                Grant {
                    grantee: Some(grantee),
                    permission: Some(Permission::from(g.perm.as_str().to_string())),
                }
            })
            .collect();
        AccessControlPolicy {
            grants: Some(grants),
            owner: Some(self.owner_of(Some(&a.owner))),
        }
    }

    /// A grantee named by id, email or group URI, checked: unknown ids are InvalidArgument and
    /// unknown emails UnresolvableGrantByEmailAddress, as AWS answers.
    fn grantee(&self, kind: &str, value: &str) -> S3Result<Grantee> {
        match kind {
            "id" => {
                if self.keys.by_id(value).is_none() {
                    return Err(s3_error!(InvalidArgument, "Invalid id"));
                }
                Ok(Grantee::User(value.to_string()))
            }
            "emailAddress" => self
                .keys
                .by_email(value)
                .map(|k| Grantee::User(k.id))
                .ok_or_else(|| {
                    s3_error!(
                        UnresolvableGrantByEmailAddress,
                        "The e-mail address you provided does not match any account on record."
                    )
                }),
            "uri" => match value {
                acl::ALL_USERS | acl::AUTHENTICATED_USERS | acl::LOG_DELIVERY => {
                    Ok(Grantee::Group(value.to_string()))
                }
                _ => Err(s3_error!(InvalidArgument, "Invalid group uri")),
            },
            _ => Err(s3_error!(InvalidArgument, "Invalid grantee")),
        }
    }

    /// The ACL a request sets: a canned one, `x-amz-grant-*` headers, or an
    /// AccessControlPolicy body; None when it names none. `owner` is the owner of what it is
    /// set on, `bucket_owner` that of the bucket (for `bucket-owner-*`).
    pub(crate) fn acl_from_request(
        &self,
        owner: &str,
        bucket_owner: Option<&str>,
        canned: Option<&str>,
        grant_headers: [(Perm, Option<&str>); 5],
        body: Option<&AccessControlPolicy>,
    ) -> S3Result<Option<Acl>> {
        let headers: Vec<(Perm, &str)> = grant_headers
            .iter()
            .filter_map(|(p, h)| h.map(|h| (*p, h)))
            .collect();
        let given = [canned.is_some(), !headers.is_empty(), body.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if given > 1 {
            return Err(s3_error!(
                InvalidRequest,
                "Specifying both Canned ACLs and Header Grants is not allowed"
            ));
        }
        if let Some(c) = canned {
            return Acl::canned(c, owner, bucket_owner)
                .map(Some)
                .ok_or_else(|| s3_error!(InvalidArgument, "Unknown canned ACL {c:?}"));
        }
        if !headers.is_empty() {
            let mut grants = Vec::new();
            for (perm, h) in headers {
                let pairs = acl::parse_grant_header(h)
                    .map_err(|e| s3_error!(InvalidArgument, "Invalid grant header: {e}"))?;
                for (kind, value) in pairs {
                    grants.push(acl::Grant {
                        grantee: self.grantee(&kind, &value)?,
                        perm,
                    });
                }
            }
            return Ok(Some(Acl {
                owner: owner.to_string(),
                grants,
            }));
        }
        let Some(body) = body else { return Ok(None) };
        if let Some(o) = body.owner.as_ref().and_then(|o| o.id.as_deref())
            && o != owner
        {
            return Err(s3_error!(AccessDenied, "The owner of an ACL cannot change"));
        }
        let mut grants = Vec::new();
        for g in body.grants.iter().flatten() {
            let (Some(grantee), Some(perm)) = (&g.grantee, &g.permission) else {
                return Err(s3_error!(
                    MalformedACLError,
                    "A grant lacks a grantee or permission"
                ));
            };
            let perm = Perm::parse(perm.as_str())
                .ok_or_else(|| s3_error!(MalformedACLError, "Unknown permission"))?;
            let grantee = match grantee.type_.as_str() {
                Type::CANONICAL_USER => self.grantee("id", grantee.id.as_deref().unwrap_or(""))?,
                Type::AMAZON_CUSTOMER_BY_EMAIL => self.grantee(
                    "emailAddress",
                    grantee.email_address.as_deref().unwrap_or(""),
                )?,
                Type::GROUP => self.grantee("uri", grantee.uri.as_deref().unwrap_or(""))?,
                _ => return Err(s3_error!(MalformedACLError, "Unknown grantee type")),
            };
            grants.push(acl::Grant { grantee, perm });
        }
        Ok(Some(Acl {
            owner: owner.to_string(),
            grants,
        }))
    }

    /// Refuses an ACL the bucket's settings forbid: public grants under BlockPublicAcls, and
    /// any ACL but the owner's own when ownership is enforced.
    pub(crate) fn check_acl_allowed(&self, b: &BucketAccess, a: &Acl) -> S3Result<()> {
        if b.pab.block_public_acls && a.is_public() {
            return Err(denied());
        }
        if b.ownership == access::Ownership::BucketOwnerEnforced
            && a.grants
                .iter()
                .any(|g| g.grantee != Grantee::User(a.owner.clone()))
        {
            return Err(s3_error!(
                AccessControlListNotSupported,
                "The bucket does not allow ACLs"
            ));
        }
        Ok(())
    }
}

/// s3s's `Grantee` (ours is the model's).
type Grantee_ = s3s::dto::Grantee;

trait NewGrantee {
    fn new() -> Self;
}

impl NewGrantee for Grantee_ {
    fn new() -> Self {
        Grantee_ {
            display_name: None,
            email_address: None,
            id: None,
            type_: Type::from_static(Type::CANONICAL_USER),
            uri: None,
        }
    }
}

/// The `x-amz-grant-*` values of an input, with the permission each grants (objects have no
/// WRITE grant: `grant_headers!(input, no_write)`).
macro_rules! grant_headers {
    ($i:expr) => {
        $crate::authz::grant_headers!($i, $i.grant_write.as_deref())
    };
    ($i:expr, no_write) => {
        $crate::authz::grant_headers!($i, None)
    };
    ($i:expr, $write:expr) => {
        [
            (
                $crate::access::acl::Perm::FullControl,
                $i.grant_full_control.as_deref(),
            ),
            ($crate::access::acl::Perm::Read, $i.grant_read.as_deref()),
            (
                $crate::access::acl::Perm::ReadAcp,
                $i.grant_read_acp.as_deref(),
            ),
            ($crate::access::acl::Perm::Write, $write),
            (
                $crate::access::acl::Perm::WriteAcp,
                $i.grant_write_acp.as_deref(),
            ),
        ]
    };
}
pub(crate) use grant_headers;

/// The ACL and owner xattrs of something new that `who` makes with `acl`.
pub(crate) fn access_xattrs(owner: &str, acl: Option<&Acl>) -> Xattrs {
    let mut x = Xattrs::from([(keys::OWNER.to_string(), Bytes::from(owner.to_string()))]);
    if let Some(a) = acl {
        x.insert(keys::ACL.to_string(), Bytes::from(a.to_json()));
    }
    x
}
