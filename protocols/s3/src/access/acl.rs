//! Access control lists: S3's grants of READ, WRITE, READ_ACP, WRITE_ACP and FULL_CONTROL to
//! users (by canonical id) and to the predefined groups, on a bucket or an object.
//!
//! Stored as JSON in an xattr of the bucket directory or the object's file (see `meta`).
//! Grants by email are resolved to the key's canonical id when the ACL is set, as AWS does.

use serde::{Deserialize, Serialize};

pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
pub const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Perm {
    Read,
    Write,
    ReadAcp,
    WriteAcp,
    FullControl,
}

impl Perm {
    pub fn as_str(self) -> &'static str {
        match self {
            Perm::Read => "READ",
            Perm::Write => "WRITE",
            Perm::ReadAcp => "READ_ACP",
            Perm::WriteAcp => "WRITE_ACP",
            Perm::FullControl => "FULL_CONTROL",
        }
    }

    pub fn parse(s: &str) -> Option<Perm> {
        Some(match s {
            "READ" => Perm::Read,
            "WRITE" => Perm::Write,
            "READ_ACP" => Perm::ReadAcp,
            "WRITE_ACP" => Perm::WriteAcp,
            "FULL_CONTROL" => Perm::FullControl,
            _ => return None,
        })
    }

    /// Does a grant of `self` give `want`?
    pub fn covers(self, want: Perm) -> bool {
        self == want || self == Perm::FullControl
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Grantee {
    /// A key, by canonical id.
    User(String),
    /// A predefined group, by its URI.
    Group(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grantee: Grantee,
    pub perm: Perm,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    /// Canonical id of the owner, who always holds FULL_CONTROL of it in the grants S3 shows.
    pub owner: String,
    pub grants: Vec<Grant>,
}

fn user(id: &str, perm: Perm) -> Grant {
    Grant {
        grantee: Grantee::User(id.to_string()),
        perm,
    }
}

fn group(uri: &str, perm: Perm) -> Grant {
    Grant {
        grantee: Grantee::Group(uri.to_string()),
        perm,
    }
}

impl Acl {
    /// The default: the owner alone, with FULL_CONTROL.
    pub fn private(owner: &str) -> Acl {
        Acl {
            owner: owner.to_string(),
            grants: vec![user(owner, Perm::FullControl)],
        }
    }

    /// A canned ACL (`x-amz-acl`). `bucket_owner` is the owner of the bucket an object is
    /// in, for the `bucket-owner-*` ones. None for a name S3 does not know.
    pub fn canned(name: &str, owner: &str, bucket_owner: Option<&str>) -> Option<Acl> {
        let mut acl = Acl::private(owner);
        let g = &mut acl.grants;
        match name {
            "private" => {}
            "public-read" => g.push(group(ALL_USERS, Perm::Read)),
            "public-read-write" => {
                g.push(group(ALL_USERS, Perm::Read));
                g.push(group(ALL_USERS, Perm::Write));
            }
            "authenticated-read" => g.push(group(AUTHENTICATED_USERS, Perm::Read)),
            "log-delivery-write" => {
                g.push(group(LOG_DELIVERY, Perm::Write));
                g.push(group(LOG_DELIVERY, Perm::ReadAcp));
            }
            "bucket-owner-read" => {
                if let Some(b) = bucket_owner.filter(|b| *b != owner) {
                    g.push(user(b, Perm::Read));
                }
            }
            "bucket-owner-full-control" => {
                if let Some(b) = bucket_owner.filter(|b| *b != owner) {
                    g.push(user(b, Perm::FullControl));
                }
            }
            _ => return None,
        }
        Some(acl)
    }

    /// Does this ACL give `who` (canonical id; None for an anonymous request) `want`?
    /// `ignore_public`: grants to everyone and to every signed-in user count for nothing
    /// (a public access block's IgnorePublicAcls).
    pub fn allows(&self, who: Option<&str>, want: Perm, ignore_public: bool) -> bool {
        self.grants.iter().any(|g| {
            g.perm.covers(want)
                && match &g.grantee {
                    Grantee::User(id) => who == Some(id.as_str()),
                    Grantee::Group(uri) if uri == ALL_USERS => !ignore_public,
                    Grantee::Group(uri) if uri == AUTHENTICATED_USERS => {
                        who.is_some() && !ignore_public
                    }
                    Grantee::Group(_) => false,
                }
        })
    }

    /// Does it grant anything to everyone or to every signed-in user?
    pub fn is_public(&self) -> bool {
        self.grants.iter().any(|g| {
            matches!(&g.grantee, Grantee::Group(u) if u == ALL_USERS || u == AUTHENTICATED_USERS)
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an ACL serialises")
    }

    pub fn from_json(s: &[u8]) -> Option<Acl> {
        serde_json::from_slice(s).ok()
    }
}

/// One `x-amz-grant-*` header: `id="…", emailAddress="…", uri="…"` entries, comma-separated.
/// Returns (kind, value) pairs; kind is `id`, `emailAddress` or `uri`.
pub fn parse_grant_header(h: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for part in h.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("grant {part:?} is not key=value"))?;
        let k = k.trim();
        let v = v.trim().trim_matches('"').to_string();
        match k {
            "id" | "emailAddress" | "uri" => out.push((k.to_string(), v)),
            _ => return Err(format!("unknown grantee type {k:?}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_acls_grant_what_s3_says() {
        let a = Acl::canned("public-read", "o", None).unwrap();
        assert!(a.allows(None, Perm::Read, false));
        assert!(!a.allows(None, Perm::Read, true));
        assert!(!a.allows(None, Perm::Write, false));
        assert!(a.allows(Some("o"), Perm::WriteAcp, false));
        assert!(a.is_public());
        let a = Acl::canned("authenticated-read", "o", None).unwrap();
        assert!(!a.allows(None, Perm::Read, false));
        assert!(a.allows(Some("x"), Perm::Read, false));
        let a = Acl::canned("bucket-owner-full-control", "w", Some("b")).unwrap();
        assert!(a.allows(Some("b"), Perm::ReadAcp, false));
        assert!(!Acl::canned("private", "o", None).unwrap().is_public());
        assert!(Acl::canned("nonsense", "o", None).is_none());
        let j = a.to_json();
        assert_eq!(Acl::from_json(j.as_bytes()), Some(a));
    }

    #[test]
    fn grant_headers_parse() {
        assert_eq!(
            parse_grant_header(
                r#"id="abc", uri="http://acs.amazonaws.com/groups/global/AllUsers""#
            )
            .unwrap(),
            vec![
                ("id".to_string(), "abc".to_string()),
                ("uri".to_string(), ALL_USERS.to_string())
            ]
        );
        assert!(parse_grant_header("foo=bar").is_err());
    }
}
