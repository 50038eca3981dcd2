//! Who may do what: tenancy for S3.
//!
//! Every bucket has an owner (the key that made it), and a key sees and touches only what it
//! owns, what its own grants name (`gwctl s3 key create NAME --bucket B --read`, as Garage
//! does), and what a bucket's policy or ACLs grant it; an admin key sees everything. Anonymous
//! requests get only what a policy or ACL grants to everyone. The decision follows AWS's
//! order: an explicit Deny in the bucket policy wins, then ownership, key grants, ACLs and
//! policy Allows grant. Public access blocks and ownership controls act as in S3.
//!
//! The settings live with the bucket (xattrs of its directory, `trusted.` so no POSIX user of
//! the volume can change them) and ACLs of objects with the object.

pub mod acl;
pub mod policy;

use acl::{Acl, Perm};
use policy::{Decision, Policy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Xattrs of a bucket's directory (and, owner and acl, of an object's file).
pub mod keys {
    pub const PREFIX: &str = "trusted.gateway.s3.";
    pub const OWNER: &str = "trusted.gateway.s3.owner";
    pub const ACL: &str = "trusted.gateway.s3.acl";
    pub const POLICY: &str = "trusted.gateway.s3.policy";
    pub const PUBLIC_ACCESS_BLOCK: &str = "trusted.gateway.s3.public-access-block";
    pub const OWNERSHIP: &str = "trusted.gateway.s3.ownership";
}

/// What a key may do on one bucket without owning it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketGrant {
    pub bucket: String,
    pub read: bool,
    pub write: bool,
    pub owner: bool,
}

/// Who a signed request comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub access_key: String,
    /// The canonical user id S3 shows as owner and grantee.
    pub id: String,
    pub display_name: String,
    pub email: Option<String>,
    pub admin: bool,
    pub grants: Vec<BucketGrant>,
    /// The uid and gid that own the buckets this key makes, so the volume's POSIX users
    /// (FUSE, NFS, SMB) see them as that user's.
    pub owner_ids: Option<(u32, u32)>,
}

impl Identity {
    /// The names a policy's principal may give this key.
    pub fn principal_names(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.access_key.clone(),
            format!("arn:aws:iam::{}:root", self.id),
            format!("arn:aws:iam::{}:user/{}", self.id, self.display_name),
            format!("arn:aws:iam:::user/{}", self.display_name),
        ]
    }

    fn grant_for(&self, bucket: &str) -> Option<&BucketGrant> {
        self.grants.iter().find(|g| g.bucket == bucket)
    }
}

/// S3's public access block of a bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

/// Object ownership of a bucket (`PutBucketOwnershipControls`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ownership {
    /// The writer of an object owns it, and ACLs apply (S3's behaviour before 2023, and the
    /// one ACL-based clients expect).
    #[default]
    ObjectWriter,
    /// The bucket owner owns objects written with `bucket-owner-full-control`.
    BucketOwnerPreferred,
    /// ACLs are off; the bucket owner owns every object.
    BucketOwnerEnforced,
}

impl Ownership {
    pub fn as_str(self) -> &'static str {
        match self {
            Ownership::ObjectWriter => "ObjectWriter",
            Ownership::BucketOwnerPreferred => "BucketOwnerPreferred",
            Ownership::BucketOwnerEnforced => "BucketOwnerEnforced",
        }
    }

    pub fn parse(s: &str) -> Option<Ownership> {
        Some(match s {
            "ObjectWriter" => Ownership::ObjectWriter,
            "BucketOwnerPreferred" => Ownership::BucketOwnerPreferred,
            "BucketOwnerEnforced" => Ownership::BucketOwnerEnforced,
            _ => return None,
        })
    }
}

/// A bucket's access settings as read from its directory.
#[derive(Clone, Debug, Default)]
pub struct BucketAccess {
    pub name: String,
    /// None for a directory no key made (made through FUSE, NFS or SMB): only admins, key
    /// grants, ACLs and policies reach it.
    pub owner: Option<String>,
    pub acl: Option<Acl>,
    pub policy: Option<Policy>,
    pub policy_text: Option<String>,
    pub pab: PublicAccessBlock,
    /// Whether ownership controls were set (GetBucketOwnershipControls answers
    /// OwnershipControlsNotFoundError otherwise).
    pub ownership_set: bool,
    pub ownership: Ownership,
}

impl BucketAccess {
    /// From the bucket directory's xattrs (`keys::PREFIX*`).
    pub fn from_xattrs(name: &str, x: &BTreeMap<String, bytes::Bytes>) -> BucketAccess {
        let s = |k: &str| x.get(k).and_then(|v| std::str::from_utf8(v).ok());
        let policy_text = s(keys::POLICY).map(str::to_string);
        let ownership = s(keys::OWNERSHIP).and_then(Ownership::parse);
        BucketAccess {
            name: name.to_string(),
            owner: s(keys::OWNER).map(str::to_string),
            acl: x.get(keys::ACL).and_then(|v| Acl::from_json(v)),
            policy: policy_text
                .as_deref()
                .and_then(|t| Policy::parse(t, name).ok()),
            policy_text,
            pab: x
                .get(keys::PUBLIC_ACCESS_BLOCK)
                .and_then(|v| serde_json::from_slice(v).ok())
                .unwrap_or_default(),
            ownership_set: ownership.is_some(),
            ownership: ownership.unwrap_or_default(),
        }
    }

    /// The bucket's ACL as S3 shows it (its owner alone when none was set).
    pub fn effective_acl(&self) -> Option<Acl> {
        self.acl
            .clone()
            .or_else(|| self.owner.as_deref().map(Acl::private))
    }
}

/// An object's owner and ACL, when it has them (objects written through the file system
/// have neither: they belong to the bucket's owner).
#[derive(Clone, Debug, Default)]
pub struct ObjectAccess {
    pub owner: Option<String>,
    pub acl: Option<Acl>,
}

impl ObjectAccess {
    pub fn from_xattrs(x: &BTreeMap<String, bytes::Bytes>) -> ObjectAccess {
        ObjectAccess {
            owner: x
                .get(keys::OWNER)
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(str::to_string),
            acl: x.get(keys::ACL).and_then(|v| Acl::from_json(v)),
        }
    }

    /// The owner: the writer, or the bucket's owner for objects of the file system and in
    /// buckets whose owner owns every object.
    pub fn owner_in(&self, b: &BucketAccess) -> Option<String> {
        match (b.ownership, &self.owner) {
            (Ownership::BucketOwnerEnforced, _) | (_, None) => b.owner.clone(),
            (_, Some(o)) => Some(o.clone()),
        }
    }

    pub fn effective_acl(&self, b: &BucketAccess) -> Option<Acl> {
        if b.ownership == Ownership::BucketOwnerEnforced {
            return self.owner_in(b).as_deref().map(Acl::private);
        }
        self.acl
            .clone()
            .or_else(|| self.owner_in(b).as_deref().map(Acl::private))
    }
}

/// What a request wants to do, with the permission an ACL must grant for it and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    ListBucket,
    ListBucketVersions,
    ListBucketMultipartUploads,
    ListMultipartUploadParts,
    GetObject,
    GetObjectAcl,
    GetObjectTagging,
    GetObjectAttributes,
    PutObject,
    PutObjectAcl,
    PutObjectTagging,
    DeleteObject,
    DeleteObjectTagging,
    AbortMultipartUpload,
    GetBucketAcl,
    PutBucketAcl,
    DeleteBucket,
    /// A bucket setting only its owner (or a policy) reaches: policy, public access block,
    /// ownership controls, location, versioning, tagging, CORS… (`iam` is the action name).
    BucketConfig(&'static str),
}

/// Which ACL a permission is looked up in.
enum On {
    Bucket(Perm),
    Object(Perm),
    /// Only the owner, key grants with `owner`, and policies.
    OwnerOnly,
}

impl Action {
    pub fn iam(self) -> &'static str {
        match self {
            Action::ListBucket => "s3:ListBucket",
            Action::ListBucketVersions => "s3:ListBucketVersions",
            Action::ListBucketMultipartUploads => "s3:ListBucketMultipartUploads",
            Action::ListMultipartUploadParts => "s3:ListMultipartUploadParts",
            Action::GetObject => "s3:GetObject",
            Action::GetObjectAcl => "s3:GetObjectAcl",
            Action::GetObjectTagging => "s3:GetObjectTagging",
            Action::GetObjectAttributes => "s3:GetObjectAttributes",
            Action::PutObject => "s3:PutObject",
            Action::PutObjectAcl => "s3:PutObjectAcl",
            Action::PutObjectTagging => "s3:PutObjectTagging",
            Action::DeleteObject => "s3:DeleteObject",
            Action::DeleteObjectTagging => "s3:DeleteObjectTagging",
            Action::AbortMultipartUpload => "s3:AbortMultipartUpload",
            Action::GetBucketAcl => "s3:GetBucketAcl",
            Action::PutBucketAcl => "s3:PutBucketAcl",
            Action::DeleteBucket => "s3:DeleteBucket",
            Action::BucketConfig(iam) => iam,
        }
    }

    fn on(self) -> On {
        match self {
            Action::ListBucket
            | Action::ListBucketVersions
            | Action::ListBucketMultipartUploads
            | Action::ListMultipartUploadParts => On::Bucket(Perm::Read),
            Action::GetObject | Action::GetObjectAttributes | Action::GetObjectTagging => {
                On::Object(Perm::Read)
            }
            Action::GetObjectAcl => On::Object(Perm::ReadAcp),
            Action::PutObjectAcl | Action::PutObjectTagging | Action::DeleteObjectTagging => {
                On::Object(Perm::WriteAcp)
            }
            Action::PutObject | Action::DeleteObject | Action::AbortMultipartUpload => {
                On::Bucket(Perm::Write)
            }
            Action::GetBucketAcl => On::Bucket(Perm::ReadAcp),
            Action::PutBucketAcl => On::Bucket(Perm::WriteAcp),
            Action::DeleteBucket | Action::BucketConfig(_) => On::OwnerOnly,
        }
    }

    fn reads(self) -> bool {
        matches!(
            self,
            Action::ListBucket
                | Action::ListBucketVersions
                | Action::ListBucketMultipartUploads
                | Action::ListMultipartUploadParts
                | Action::GetObject
                | Action::GetObjectAcl
                | Action::GetObjectTagging
                | Action::GetObjectAttributes
                | Action::GetBucketAcl
        )
    }
}

/// A request to decide.
pub struct Request<'a> {
    pub who: Option<&'a Identity>,
    pub action: Action,
    pub bucket: &'a BucketAccess,
    /// The key, for object actions.
    pub key: Option<&'a str>,
    /// The object's owner and ACL, for actions on an existing object.
    pub object: Option<&'a ObjectAccess>,
    /// Condition keys for the policy (lower-case names).
    pub context: &'a BTreeMap<String, Vec<String>>,
}

/// Allowed, or denied (AccessDenied).
pub fn allowed(r: &Request) -> bool {
    let who = r.who;
    if who.is_some_and(|w| w.admin) {
        return true;
    }
    let b = r.bucket;
    let id = who.map(|w| w.id.as_str());
    let is_bucket_owner = id.is_some() && b.owner.as_deref() == id;
    // The policy first: an explicit Deny is final.
    let mut policy_allows = false;
    if let Some(p) = &b.policy {
        let restricted;
        let p = if b.pab.restrict_public_buckets && !is_bucket_owner {
            restricted = p.without_public();
            &restricted
        } else {
            p
        };
        let names = who.map(|w| w.principal_names()).unwrap_or_default();
        let resource = match r.key {
            Some(k) => format!("arn:aws:s3:::{}/{k}", b.name),
            None => format!("arn:aws:s3:::{}", b.name),
        };
        match p.evaluate(&policy::Request {
            principal: &names,
            action: r.action.iam(),
            resource: &resource,
            context: r.context,
        }) {
            Decision::Deny => return false,
            Decision::Allow => policy_allows = true,
            Decision::Neutral => {}
        }
    }
    if policy_allows {
        return true;
    }
    if let Some(g) = who.and_then(|w| w.grant_for(&b.name))
        && (g.owner || (g.read && r.action.reads()) || (g.write && !r.action.reads()))
        && (g.owner || !matches!(r.action.on(), On::OwnerOnly))
    {
        return true;
    }
    let ignore_public = b.pab.ignore_public_acls;
    match r.action.on() {
        On::OwnerOnly => is_bucket_owner,
        On::Bucket(p) => {
            is_bucket_owner
                || b.effective_acl()
                    .is_some_and(|a| a.allows(id, p, ignore_public))
        }
        On::Object(p) => {
            let Some(o) = r.object else {
                // No such object yet: what the bucket grants decides whether the caller
                // learns that (NoSuchKey) or is refused.
                return is_bucket_owner
                    || b.effective_acl()
                        .is_some_and(|a| a.allows(id, Perm::Read, ignore_public));
            };
            let owner = o.owner_in(b);
            if id.is_some() && owner.as_deref() == id {
                return true;
            }
            o.effective_acl(b)
                .is_some_and(|a| a.allows(id, p, ignore_public))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> Identity {
        Identity {
            access_key: format!("AK{id}"),
            id: id.to_string(),
            display_name: id.to_string(),
            ..Default::default()
        }
    }

    fn bucket(owner: &str) -> BucketAccess {
        BucketAccess {
            name: "b".into(),
            owner: Some(owner.into()),
            ..Default::default()
        }
    }

    fn check(
        who: Option<&Identity>,
        action: Action,
        b: &BucketAccess,
        o: Option<&ObjectAccess>,
    ) -> bool {
        allowed(&Request {
            who,
            action,
            bucket: b,
            key: o.map(|_| "k"),
            object: o,
            context: &BTreeMap::new(),
        })
    }

    #[test]
    fn keys_see_only_their_own_buckets() {
        let (alice, bob) = (key("alice"), key("bob"));
        let b = bucket("alice");
        let obj = ObjectAccess {
            owner: Some("alice".into()),
            acl: None,
        };
        assert!(check(Some(&alice), Action::ListBucket, &b, None));
        assert!(check(Some(&alice), Action::GetObject, &b, Some(&obj)));
        assert!(check(Some(&alice), Action::DeleteBucket, &b, None));
        for a in [
            Action::ListBucket,
            Action::PutObject,
            Action::DeleteBucket,
            Action::GetBucketAcl,
        ] {
            assert!(!check(Some(&bob), a, &b, None), "{a:?}");
        }
        assert!(!check(Some(&bob), Action::GetObject, &b, Some(&obj)));
        assert!(!check(None, Action::GetObject, &b, Some(&obj)));
        let admin = Identity {
            admin: true,
            ..key("root")
        };
        assert!(check(Some(&admin), Action::DeleteBucket, &b, None));
    }

    #[test]
    fn grants_acls_and_policies_open_exactly_what_they_say() {
        let bob = key("bob");
        let mut b = bucket("alice");
        b.acl = Acl::canned("public-read", "alice", None);
        assert!(check(None, Action::ListBucket, &b, None));
        assert!(!check(None, Action::PutObject, &b, None));
        b.pab.ignore_public_acls = true;
        assert!(!check(None, Action::ListBucket, &b, None));

        let mut b = bucket("alice");
        let reader = Identity {
            grants: vec![BucketGrant {
                bucket: "b".into(),
                read: true,
                ..Default::default()
            }],
            ..key("carol")
        };
        assert!(check(Some(&reader), Action::ListBucket, &b, None));
        assert!(!check(Some(&reader), Action::PutObject, &b, None));
        assert!(!check(
            Some(&reader),
            Action::BucketConfig("s3:PutBucketPolicy"),
            &b,
            None
        ));

        let text = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::bob:root"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::b/*"}]}"#;
        b.policy = Policy::parse(text, "b").ok();
        assert!(check(
            Some(&bob),
            Action::PutObject,
            &b,
            Some(&ObjectAccess::default())
        ));
        assert!(!check(Some(&bob), Action::ListBucket, &b, None));
        let deny = r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"]}]}"#;
        b.policy = Policy::parse(deny, "b").ok();
        assert!(!check(Some(&key("alice")), Action::ListBucket, &b, None));
    }

    #[test]
    fn enforced_ownership_gives_the_bucket_owner_every_object() {
        let mut b = bucket("alice");
        let obj = ObjectAccess {
            owner: Some("bob".into()),
            acl: Acl::canned("private", "bob", None),
        };
        assert!(!check(
            Some(&key("alice")),
            Action::GetObject,
            &b,
            Some(&obj)
        ));
        b.ownership = Ownership::BucketOwnerEnforced;
        assert!(check(
            Some(&key("alice")),
            Action::GetObject,
            &b,
            Some(&obj)
        ));
        assert!(!check(Some(&key("bob")), Action::GetObject, &b, Some(&obj)));
    }
}
