//! Bucket policies: the part of the IAM policy language S3 bucket policies use.
//!
//! A statement matches a request when its principal, action and resource match and every
//! condition holds. Evaluation is AWS's: an explicit Deny wins, else an Allow grants, else the
//! policy says nothing and other grants (ownership, ACLs, key grants) decide. Written here
//! because no maintained crate evaluates S3 bucket policies (the AWS SDK only carries them as
//! strings); the rules follow AWS's "IAM JSON policy elements" reference.

use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    /// No statement applies.
    Neutral,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Clone, Debug, PartialEq)]
enum Principals {
    Any,
    Some(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
enum SetOp {
    Single,
    ForAnyValue,
    ForAllValues,
}

#[derive(Clone, Debug, PartialEq)]
struct Condition {
    op: String,
    if_exists: bool,
    set: SetOp,
    key: String,
    values: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
struct Statement {
    effect: Effect,
    principal: Option<Principals>,
    not_principal: Option<Principals>,
    action: Option<Vec<String>>,
    not_action: Option<Vec<String>>,
    resource: Option<Vec<String>>,
    not_resource: Option<Vec<String>>,
    conditions: Vec<Condition>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// Who asks, what, on what, and the request's condition keys (lower-case names).
pub struct Request<'a> {
    /// The requester's names a principal may use (canonical id, access key, ARNs); empty for
    /// an anonymous request.
    pub principal: &'a [String],
    /// `s3:GetObject` and the like.
    pub action: &'a str,
    /// `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`.
    pub resource: &'a str,
    pub context: &'a BTreeMap<String, Vec<String>>,
}

const OPERATORS: &[&str] = &[
    "stringequals",
    "stringnotequals",
    "stringequalsignorecase",
    "stringnotequalsignorecase",
    "stringlike",
    "stringnotlike",
    "numericequals",
    "numericnotequals",
    "numericlessthan",
    "numericlessthanequals",
    "numericgreaterthan",
    "numericgreaterthanequals",
    "dateequals",
    "datenotequals",
    "datelessthan",
    "datelessthanequals",
    "dategreaterthan",
    "dategreaterthanequals",
    "bool",
    "ipaddress",
    "notipaddress",
    "arnequals",
    "arnlike",
    "arnnotequals",
    "arnnotlike",
    "null",
];

fn strings(v: &Value, what: &str) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                _ => Err(format!("{what} must be strings")),
            })
            .collect(),
        Value::Number(n) => Ok(vec![n.to_string()]),
        Value::Bool(b) => Ok(vec![b.to_string()]),
        _ => Err(format!("{what} must be a string or a list of strings")),
    }
}

fn principals(v: &Value) -> Result<Principals, String> {
    match v {
        Value::String(s) if s == "*" => Ok(Principals::Any),
        Value::Object(m) => {
            let mut ids = Vec::new();
            for (k, v) in m {
                match k.as_str() {
                    "AWS" | "CanonicalUser" => {
                        let vs = strings(v, "Principal")?;
                        if vs.iter().any(|s| s == "*") {
                            return Ok(Principals::Any);
                        }
                        ids.extend(vs);
                    }
                    // Service principals (log delivery) name no key of ours.
                    "Service" | "Federated" => {
                        strings(v, "Principal")?;
                    }
                    other => return Err(format!("Invalid principal type {other:?}")),
                }
            }
            Ok(Principals::Some(ids))
        }
        _ => Err("Invalid principal in policy".into()),
    }
}

fn parse_conditions(v: &Value) -> Result<Vec<Condition>, String> {
    let Value::Object(ops) = v else {
        return Err("Condition must be an object".into());
    };
    let mut out = Vec::new();
    for (op, keys) in ops {
        let mut name = op.to_ascii_lowercase();
        let set = if let Some(rest) = name.strip_prefix("foranyvalue:") {
            name = rest.to_string();
            SetOp::ForAnyValue
        } else if let Some(rest) = name.strip_prefix("forallvalues:") {
            name = rest.to_string();
            SetOp::ForAllValues
        } else {
            SetOp::Single
        };
        let if_exists = match name.strip_suffix("ifexists") {
            Some(base) => {
                name = base.to_string();
                true
            }
            None => false,
        };
        if !OPERATORS.contains(&name.as_str()) {
            return Err(format!("Invalid Condition type : {op}"));
        }
        let Value::Object(keys) = keys else {
            return Err(format!("Condition {op} must be an object"));
        };
        for (key, values) in keys {
            out.push(Condition {
                op: name.clone(),
                if_exists,
                set: set.clone(),
                key: key.to_ascii_lowercase(),
                values: strings(values, "Condition values")?,
            });
        }
    }
    Ok(out)
}

/// `*` and `?` wildcards, as IAM matches actions and resources.
pub fn wildcard(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn ip_in(cidr: &str, ip: &str) -> bool {
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return false;
    };
    let (net, bits) = match cidr.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (cidr, None),
    };
    let Ok(net) = net.parse::<IpAddr>() else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let b = bits.unwrap_or(32).min(32);
            let mask = if b == 0 { 0 } else { u32::MAX << (32 - b) };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let b = bits.unwrap_or(128).min(128);
            let mask = if b == 0 { 0 } else { u128::MAX << (128 - b) };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// Does one request value satisfy the operator against one policy value? (Negated operators
/// are evaluated as their positive form and negated by the caller.)
fn one(op: &str, want: &str, got: &str) -> bool {
    let num = |s: &str| s.trim().parse::<f64>().ok();
    let date = |s: &str| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
    };
    match op {
        "stringequals" | "arnequals" => want == got,
        "stringequalsignorecase" => want.eq_ignore_ascii_case(got),
        "stringlike" | "arnlike" => wildcard(want, got),
        "numericequals" => num(want).zip(num(got)).is_some_and(|(w, g)| g == w),
        "numericlessthan" => num(want).zip(num(got)).is_some_and(|(w, g)| g < w),
        "numericlessthanequals" => num(want).zip(num(got)).is_some_and(|(w, g)| g <= w),
        "numericgreaterthan" => num(want).zip(num(got)).is_some_and(|(w, g)| g > w),
        "numericgreaterthanequals" => num(want).zip(num(got)).is_some_and(|(w, g)| g >= w),
        "dateequals" => date(want).zip(date(got)).is_some_and(|(w, g)| g == w),
        "datelessthan" => date(want).zip(date(got)).is_some_and(|(w, g)| g < w),
        "datelessthanequals" => date(want).zip(date(got)).is_some_and(|(w, g)| g <= w),
        "dategreaterthan" => date(want).zip(date(got)).is_some_and(|(w, g)| g > w),
        "dategreaterthanequals" => date(want).zip(date(got)).is_some_and(|(w, g)| g >= w),
        "bool" => want.eq_ignore_ascii_case(got),
        "ipaddress" => ip_in(want, got),
        _ => false,
    }
}

/// The positive form of a negated operator, if `op` is one.
fn negated(op: &str) -> Option<&'static str> {
    Some(match op {
        "stringnotequals" => "stringequals",
        "stringnotequalsignorecase" => "stringequalsignorecase",
        "stringnotlike" => "stringlike",
        "numericnotequals" => "numericequals",
        "datenotequals" => "dateequals",
        "notipaddress" => "ipaddress",
        "arnnotequals" => "arnequals",
        "arnnotlike" => "arnlike",
        _ => return None,
    })
}

impl Condition {
    fn holds(&self, ctx: &BTreeMap<String, Vec<String>>) -> bool {
        let got = ctx.get(&self.key).filter(|v| !v.is_empty());
        if self.op == "null" {
            let absent = got.is_none();
            return self
                .values
                .iter()
                .any(|v| v.eq_ignore_ascii_case("true") == absent);
        }
        let Some(got) = got else {
            // A missing key: "...IfExists" holds, a negated operator holds, others fail.
            return self.if_exists
                || negated(&self.op).is_some()
                || self.set == SetOp::ForAllValues;
        };
        let (op, neg) = match negated(&self.op) {
            Some(p) => (p, true),
            None => (self.op.as_str(), false),
        };
        let matches = |g: &str| self.values.iter().any(|w| one(op, w, g));
        match self.set {
            SetOp::ForAnyValue => got.iter().any(|g| matches(g) != neg),
            SetOp::ForAllValues => got.iter().all(|g| matches(g) != neg),
            SetOp::Single => {
                if neg {
                    !got.iter().any(|g| matches(g))
                } else {
                    got.iter().any(|g| matches(g))
                }
            }
        }
    }
}

fn any_match(patterns: &[String], s: &str, ignore_case: bool) -> bool {
    patterns.iter().any(|p| {
        if ignore_case {
            wildcard(&p.to_ascii_lowercase(), &s.to_ascii_lowercase())
        } else {
            wildcard(p, s)
        }
    })
}

fn principal_matches(p: &Principals, who: &[String]) -> bool {
    match p {
        Principals::Any => true,
        Principals::Some(ids) => ids.iter().any(|id| who.iter().any(|w| w == id)),
    }
}

impl Statement {
    fn applies(&self, r: &Request) -> bool {
        if let Some(p) = &self.principal
            && !principal_matches(p, r.principal)
        {
            return false;
        }
        if let Some(p) = &self.not_principal
            && principal_matches(p, r.principal)
        {
            return false;
        }
        if let Some(a) = &self.action
            && !any_match(a, r.action, true)
        {
            return false;
        }
        if let Some(a) = &self.not_action
            && any_match(a, r.action, true)
        {
            return false;
        }
        if let Some(res) = &self.resource
            && !any_match(res, r.resource, false)
        {
            return false;
        }
        if let Some(res) = &self.not_resource
            && any_match(res, r.resource, false)
        {
            return false;
        }
        self.conditions.iter().all(|c| c.holds(r.context))
    }

    /// Grants to everyone: an Allow to any principal that no condition narrows to a source
    /// (AWS's rule for a "public" policy, simplified to conditions on who asks).
    fn is_public(&self) -> bool {
        self.effect == Effect::Allow
            && matches!(self.principal, Some(Principals::Any))
            && !self.conditions.iter().any(|c| {
                matches!(
                    c.key.as_str(),
                    "aws:sourceip"
                        | "aws:sourcearn"
                        | "aws:sourcevpc"
                        | "aws:sourcevpce"
                        | "aws:sourceaccount"
                        | "aws:principalaccount"
                        | "aws:principalarn"
                        | "aws:userid"
                        | "aws:principalorgid"
                )
            })
    }
}

impl Policy {
    /// Parses and checks a bucket policy for `bucket`. The error is the message S3 gives
    /// with MalformedPolicy.
    pub fn parse(text: &str, bucket: &str) -> Result<Policy, String> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| format!("Policies must be valid JSON ({e})"))?;
        let Value::Object(doc) = doc else {
            return Err("Policies must be a JSON object".into());
        };
        if let Some(v) = doc.get("Version")
            && !matches!(v.as_str(), Some("2012-10-17") | Some("2008-10-17"))
        {
            return Err("The policy must contain a valid version string".into());
        }
        let stmts = match doc.get("Statement") {
            Some(Value::Array(a)) => a.clone(),
            Some(o @ Value::Object(_)) => vec![o.clone()],
            _ => return Err("Missing required field Statement".into()),
        };
        if stmts.is_empty() {
            return Err("Missing required field Statement".into());
        }
        let mut statements = Vec::new();
        for s in stmts {
            let Value::Object(s) = s else {
                return Err("Each Statement must be an object".into());
            };
            let effect = match s.get("Effect").and_then(Value::as_str) {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                _ => return Err("Invalid effect".into()),
            };
            let list = |k: &str| s.get(k).map(|v| strings(v, k)).transpose();
            let action = list("Action")?;
            let not_action = list("NotAction")?;
            if action.is_none() && not_action.is_none() {
                return Err("Missing required field Action".into());
            }
            for a in action.iter().chain(not_action.iter()).flatten() {
                if a != "*" && !a.to_ascii_lowercase().starts_with("s3:") {
                    return Err(format!("Policy has invalid action {a:?}"));
                }
            }
            let resource = list("Resource")?;
            let not_resource = list("NotResource")?;
            if resource.is_none() && not_resource.is_none() {
                return Err("Missing required field Resource".into());
            }
            for r in resource.iter().chain(not_resource.iter()).flatten() {
                let rest = r.strip_prefix("arn:aws:s3:::").unwrap_or("");
                let b = rest.split('/').next().unwrap_or("");
                if !(wildcard(b, bucket) || r == "*") {
                    return Err("Policy has invalid resource".into());
                }
            }
            let principal = s.get("Principal").map(principals).transpose()?;
            let not_principal = s.get("NotPrincipal").map(principals).transpose()?;
            if principal.is_none() && not_principal.is_none() {
                return Err("Missing required field Principal".into());
            }
            // AWS accepts NotPrincipal only in Deny statements: an Allow to everyone but one
            // principal is too easy to get wrong.
            if not_principal.is_some() && effect == Effect::Allow {
                return Err("NotPrincipal is only allowed with the Deny effect".into());
            }
            let conditions = match s.get("Condition") {
                Some(c) => parse_conditions(c)?,
                None => Vec::new(),
            };
            statements.push(Statement {
                effect,
                principal,
                not_principal,
                action,
                not_action,
                resource,
                not_resource,
                conditions,
            });
        }
        Ok(Policy { statements })
    }

    pub fn evaluate(&self, r: &Request) -> Decision {
        let mut out = Decision::Neutral;
        for s in self.statements.iter().filter(|s| s.applies(r)) {
            match s.effect {
                Effect::Deny => return Decision::Deny,
                Effect::Allow => out = Decision::Allow,
            }
        }
        out
    }

    /// Does any statement grant to everyone? (GetBucketPolicyStatus, BlockPublicPolicy.)
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(Statement::is_public)
    }

    /// The same policy without its public grants (RestrictPublicBuckets, for requests from
    /// outside the bucket owner's account).
    pub fn without_public(&self) -> Policy {
        Policy {
            statements: self
                .statements
                .iter()
                .filter(|s| !s.is_public())
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in pairs {
            m.entry(k.to_string()).or_default().push(v.to_string());
        }
        m
    }

    fn req<'a>(
        who: &'a [String],
        action: &'a str,
        resource: &'a str,
        c: &'a BTreeMap<String, Vec<String>>,
    ) -> Request<'a> {
        Request {
            principal: who,
            action,
            resource,
            context: c,
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("arn:aws:s3:::b/*", "arn:aws:s3:::b/x/y"));
        assert!(wildcard("s3:Get*", "s3:GetObject"));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "abbc"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("arn:aws:s3:::b", "arn:aws:s3:::b/k"));
    }

    #[test]
    fn allow_deny_and_silence() {
        let p = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"},
                {"Effect":"Deny","Principal":"*","Action":["s3:GetObject"],"Resource":"arn:aws:s3:::b/secret"}]}"#,
            "b",
        )
        .unwrap();
        let c = ctx(&[]);
        let anyone: Vec<String> = vec![];
        assert_eq!(
            p.evaluate(&req(&anyone, "s3:GetObject", "arn:aws:s3:::b/x", &c)),
            Decision::Allow
        );
        assert_eq!(
            p.evaluate(&req(&anyone, "s3:GetObject", "arn:aws:s3:::b/secret", &c)),
            Decision::Deny
        );
        assert_eq!(
            p.evaluate(&req(&anyone, "s3:PutObject", "arn:aws:s3:::b/x", &c)),
            Decision::Neutral
        );
        assert!(p.is_public());
    }

    #[test]
    fn conditions_follow_iam_rules() {
        let p = Policy::parse(
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b",
                "Condition":{"StringEquals":{"s3:prefix":"foo"},"NumericLessThanEquals":{"s3:max-keys":"10"}}}}"#,
            "b",
        )
        .unwrap();
        let who: Vec<String> = vec![];
        let ok = ctx(&[("s3:prefix", "foo"), ("s3:max-keys", "5")]);
        let bad = ctx(&[("s3:prefix", "bar"), ("s3:max-keys", "5")]);
        let missing = ctx(&[("s3:max-keys", "5")]);
        let r = |c| p.evaluate(&req(&who, "s3:ListBucket", "arn:aws:s3:::b", c));
        assert_eq!(r(&ok), Decision::Allow);
        assert_eq!(r(&bad), Decision::Neutral);
        assert_eq!(r(&missing), Decision::Neutral);

        let neg = Policy::parse(
            r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/*",
                "Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption":"AES256"}}}}"#,
            "b",
        )
        .unwrap();
        let r = |c: &BTreeMap<String, Vec<String>>| {
            neg.evaluate(&req(&who, "s3:PutObject", "arn:aws:s3:::b/k", c))
        };
        assert_eq!(r(&ctx(&[])), Decision::Deny);
        assert_eq!(
            r(&ctx(&[("s3:x-amz-server-side-encryption", "AES256")])),
            Decision::Neutral
        );

        let ip = Policy::parse(
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b/*",
                "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}"#,
            "b",
        )
        .unwrap();
        let r = |c: &BTreeMap<String, Vec<String>>| {
            ip.evaluate(&req(&who, "s3:GetObject", "arn:aws:s3:::b/k", c))
        };
        assert_eq!(r(&ctx(&[("aws:sourceip", "10.1.2.3")])), Decision::Allow);
        assert_eq!(r(&ctx(&[("aws:sourceip", "11.1.2.3")])), Decision::Neutral);
        assert!(!ip.is_public());
    }

    #[test]
    fn principals_name_keys() {
        let p = Policy::parse(
            r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::abc:root"]},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#,
            "b",
        )
        .unwrap();
        let c = ctx(&[]);
        let me = vec!["abc".to_string(), "arn:aws:iam::abc:root".to_string()];
        let other = vec!["xyz".to_string()];
        assert_eq!(
            p.evaluate(&req(&me, "s3:GetObject", "arn:aws:s3:::b/k", &c)),
            Decision::Allow
        );
        assert_eq!(
            p.evaluate(&req(&other, "s3:GetObject", "arn:aws:s3:::b/k", &c)),
            Decision::Neutral
        );
    }

    #[test]
    fn malformed_policies_are_refused() {
        for bad in [
            "not json",
            r#"{"Statement":[]}"#,
            r#"{"Statement":{"Effect":"Maybe","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b"}}"#,
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::other/*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"ec2:*","Resource":"arn:aws:s3:::b"}}"#,
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b","Condition":{"Sometimes":{"a":"b"}}}}"#,
        ] {
            assert!(Policy::parse(bad, "b").is_err(), "{bad}");
        }
    }
}
