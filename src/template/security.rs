//! IAM and network changes between two versions of a template, for reviewers: which policy
//! statements, managed policy attachments, resource policy statements and security group rules
//! appear or go away, and which of them widen access.
//!
//! # What is read
//!
//! | resource type | items |
//! |---|---|
//! | `AWS::IAM::Role` | `AssumeRolePolicyDocument` (statements described as `trust: …`), `Policies[*].PolicyDocument`, `ManagedPolicyArns`, `PermissionsBoundary` |
//! | `AWS::IAM::User`, `AWS::IAM::Group` | `Policies[*].PolicyDocument`, `ManagedPolicyArns`, `PermissionsBoundary` |
//! | `AWS::IAM::Policy`, `AWS::IAM::ManagedPolicy` | `PolicyDocument`; `Roles`, `Users`, `Groups` as attachments |
//! | `AWS::IAM::RolePolicy`, `UserPolicy`, `GroupPolicy` | `PolicyDocument`; `RoleName`, `UserName`, `GroupName` as attachments |
//! | `AWS::S3::BucketPolicy`, `AWS::SQS::QueuePolicy`, `AWS::SNS::TopicPolicy`, `AWS::SQS::QueueInlinePolicy`, `AWS::SNS::TopicInlinePolicy`, `AWS::Logs::ResourcePolicy` | `PolicyDocument` |
//! | `AWS::KMS::Key` | `KeyPolicy` |
//! | `AWS::SecretsManager::ResourcePolicy` | `ResourcePolicy` |
//! | `AWS::ECR::Repository` | `RepositoryPolicyText` |
//! | `AWS::Lambda::Permission` | the permission, as one statement |
//! | `AWS::EC2::SecurityGroup` | `SecurityGroupIngress`, `SecurityGroupEgress` rules |
//! | `AWS::EC2::SecurityGroupIngress`, `AWS::EC2::SecurityGroupEgress` | the rule, with its group |
//!
//! Policy documents may be JSON text instead of objects. `Fn::If` around a document, a
//! statement list or a list element is followed into both branches; items from a branch end
//! with `[if Cond]` or `[if not Cond]`.
//!
//! # Comparison
//!
//! Each item is reduced to a one-line description of its normalised content, and the items of
//! each resource are compared as multisets of descriptions: an item in the new template and not
//! the old is `Added`, the reverse `Removed`. A statement with several actions or resources is
//! one item. No change: reordering statements, rules, actions, resources, principals or
//! condition values; a single value against a list holding it; a port as number or string;
//! `Fn::Sub` against the equivalent `Fn::Join`; short against long intrinsic forms. Statement
//! ids (`Sid`) and rule descriptions are left out: they grant nothing. A changed statement
//! shows as its old form removed and its new form added.
//!
//! A statement is described as `Allow s3:GetObject,s3:PutObject on arn:aws:s3:::b/* (principal
//! *) when StringEquals aws:SourceAccount=111111111111` (actions, resources and principals
//! sorted, `NOT` before negated lists, principals as `Type:value` or `*`); a rule as `ingress
//! tcp 443 from 0.0.0.0/0` or `egress -1 all to ::/0` (protocol numbers 1, 6, 17 and 58 shown as
//! `icmp`, `tcp`, `udp`, `icmpv6`; ports `all` for every port); an attachment as `attach
//! arn:aws:iam::aws:policy/ReadOnlyAccess` or `attach to role ${AppRole}`.
//!
//! Intrinsic functions are written in the `Fn::Sub` style, so that equivalent forms read the
//! same: `{"Ref": "X"}` is `${X}`, `Fn::GetAtt` is `${Res.Attr}`, `Fn::Sub` is its string (with
//! its own variables put in), `Fn::Join` joins its parts, `Fn::ImportValue` is `${Import:…}`,
//! `Fn::If` is `${If:Cond ? a : b}`, others are `${Fn::Name:<argument as JSON>}`.
//!
//! # Broadening
//!
//! `broadens` is set for: an added `Allow` statement with a wildcard in an action (`*`,
//! `s3:*`, `s3:Get*`), `NotAction`, resource `*`, `NotResource`, principal `*` (`"*"` or
//! `{"AWS": "*"}`) or `NotPrincipal`; a removed `Deny` statement; an added ingress rule from
//! `0.0.0.0/0` or `::/0`; an added `AdministratorAccess`, `PowerUserAccess` or `IAMFullAccess`
//! managed policy; a removed permissions boundary; an added Lambda permission for principal `*`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::change::{SecurityChange, SecurityChangeKind, SecurityKind};
use crate::template::{Template, canonical_json};

/// AWS managed policies that grant (nearly) everything or control over IAM.
const BROAD_MANAGED_POLICIES: &[&str] = &[
    "policy/AdministratorAccess",
    "policy/PowerUserAccess",
    "policy/IAMFullAccess",
];

/// Resource policy types and the property holding their document.
const RESOURCE_POLICIES: &[(&str, &str)] = &[
    ("AWS::S3::BucketPolicy", "PolicyDocument"),
    ("AWS::SQS::QueuePolicy", "PolicyDocument"),
    ("AWS::SQS::QueueInlinePolicy", "PolicyDocument"),
    ("AWS::SNS::TopicPolicy", "PolicyDocument"),
    ("AWS::SNS::TopicInlinePolicy", "PolicyDocument"),
    ("AWS::Logs::ResourcePolicy", "PolicyDocument"),
    ("AWS::KMS::Key", "KeyPolicy"),
    ("AWS::SecretsManager::ResourcePolicy", "ResourcePolicy"),
    ("AWS::ECR::Repository", "RepositoryPolicyText"),
];

/// Security changes from template `before` (`None`: a new stack) to `after` (`None`: a stack
/// going away), sorted by resource, kind, removals before additions, and description.
pub fn security_changes(
    before: Option<&Template>,
    after: Option<&Template>,
) -> Vec<SecurityChange> {
    let old = before.map(items).unwrap_or_default();
    let new = after.map(items).unwrap_or_default();
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&Key> = old.keys().chain(new.keys()).collect();
    for key in keys {
        let o = old.get(key);
        let n = new.get(key);
        let (old_count, new_count) = (o.map_or(0, |e| e.count), n.map_or(0, |e| e.count));
        let entry = n.or(o).expect("listed on one side");
        let (change, times, broadens) = if new_count > old_count {
            (
                SecurityChangeKind::Added,
                new_count - old_count,
                entry.broadens_if_added,
            )
        } else {
            (
                SecurityChangeKind::Removed,
                old_count - new_count,
                entry.broadens_if_removed,
            )
        };
        for _ in 0..times {
            out.push(SecurityChange {
                resource: key.resource.clone(),
                resource_type: entry.resource_type.clone(),
                kind: key.kind,
                change,
                description: key.description.clone(),
                broadens,
            });
        }
    }
    out.sort_by(|a, b| {
        let rank = |c: SecurityChangeKind| c == SecurityChangeKind::Added;
        (&a.resource, a.kind, rank(a.change), &a.description).cmp(&(
            &b.resource,
            b.kind,
            rank(b.change),
            &b.description,
        ))
    });
    out
}

/// What identifies an item.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    resource: String,
    kind: SecurityKind,
    description: String,
}

/// What is known of an item, with how often it occurs.
struct Entry {
    resource_type: String,
    count: usize,
    broadens_if_added: bool,
    broadens_if_removed: bool,
}

/// One item found in a template.
struct Item {
    kind: SecurityKind,
    description: String,
    broadens_if_added: bool,
    broadens_if_removed: bool,
}

/// The security items of a template, by key.
fn items(t: &Template) -> BTreeMap<Key, Entry> {
    let mut out: BTreeMap<Key, Entry> = BTreeMap::new();
    let Some(resources) = t.value().get("Resources").and_then(Value::as_object) else {
        return out;
    };
    for (id, decl) in resources {
        let Some(type_) = decl.get("Type").and_then(Value::as_str) else {
            continue;
        };
        let null = Value::Null;
        let props = decl.get("Properties").unwrap_or(&null);
        for item in resource_items(type_, props) {
            let key = Key {
                resource: id.clone(),
                kind: item.kind,
                description: item.description,
            };
            let e = out.entry(key).or_insert(Entry {
                resource_type: type_.to_string(),
                count: 0,
                broadens_if_added: item.broadens_if_added,
                broadens_if_removed: item.broadens_if_removed,
            });
            e.count += 1;
        }
    }
    out
}

/// The security items of one resource.
fn resource_items(type_: &str, props: &Value) -> Vec<Item> {
    let mut out = Vec::new();
    let get = |k: &str| props.get(k);
    match type_ {
        "AWS::IAM::Role" | "AWS::IAM::User" | "AWS::IAM::Group" => {
            if let Some(doc) = get("AssumeRolePolicyDocument") {
                statements(doc, SecurityKind::IamStatement, "trust: ", &mut out);
            }
            if let Some(policies) = get("Policies") {
                for (ctx, p) in expand(policies) {
                    if let Some(doc) = p.get("PolicyDocument") {
                        let mut found = Vec::new();
                        statements(doc, SecurityKind::IamStatement, "", &mut found);
                        out.extend(found.into_iter().map(|i| with_context(i, &ctx)));
                    }
                }
            }
            if let Some(arns) = get("ManagedPolicyArns") {
                for (ctx, arn) in expand(arns) {
                    let arn = render(arn);
                    let broad = BROAD_MANAGED_POLICIES.iter().any(|p| arn.ends_with(p));
                    out.push(with_context(
                        Item {
                            kind: SecurityKind::IamPolicy,
                            description: format!("attach {arn}"),
                            broadens_if_added: broad,
                            broadens_if_removed: false,
                        },
                        &ctx,
                    ));
                }
            }
            if let Some(b) = get("PermissionsBoundary")
                && !is_no_value(b)
            {
                out.push(Item {
                    kind: SecurityKind::IamPolicy,
                    description: format!("permissions boundary {}", render(b)),
                    broadens_if_added: false,
                    broadens_if_removed: true,
                });
            }
        }
        "AWS::IAM::Policy"
        | "AWS::IAM::ManagedPolicy"
        | "AWS::IAM::RolePolicy"
        | "AWS::IAM::UserPolicy"
        | "AWS::IAM::GroupPolicy" => {
            if let Some(doc) = get("PolicyDocument") {
                statements(doc, SecurityKind::IamStatement, "", &mut out);
            }
            for (prop, what) in [
                ("Roles", "role"),
                ("Users", "user"),
                ("Groups", "group"),
                ("RoleName", "role"),
                ("UserName", "user"),
                ("GroupName", "group"),
            ] {
                if let Some(targets) = get(prop) {
                    for (ctx, target) in expand(targets) {
                        out.push(with_context(
                            Item {
                                kind: SecurityKind::IamPolicy,
                                description: format!("attach to {what} {}", render(target)),
                                broadens_if_added: false,
                                broadens_if_removed: false,
                            },
                            &ctx,
                        ));
                    }
                }
            }
        }
        "AWS::Lambda::Permission" => out.push(lambda_permission(props)),
        "AWS::EC2::SecurityGroup" => {
            for (prop, ingress) in [
                ("SecurityGroupIngress", true),
                ("SecurityGroupEgress", false),
            ] {
                if let Some(rules) = get(prop) {
                    for (ctx, r) in expand(rules) {
                        out.push(with_context(rule(r, ingress, None), &ctx));
                    }
                }
            }
        }
        "AWS::EC2::SecurityGroupIngress" | "AWS::EC2::SecurityGroupEgress" => {
            let ingress = type_ == "AWS::EC2::SecurityGroupIngress";
            let group = get("GroupId").or_else(|| get("GroupName")).map(render);
            out.push(rule(props, ingress, group));
        }
        _ => {
            if let Some((_, prop)) = RESOURCE_POLICIES.iter().find(|(t, _)| *t == type_)
                && let Some(doc) = get(prop)
            {
                statements(doc, SecurityKind::ResourcePolicy, "", &mut out);
            }
        }
    }
    out
}

/// Appends a branch condition to an item's description.
fn with_context(mut item: Item, ctx: &Option<String>) -> Item {
    if let Some(c) = ctx {
        item.description = format!("{} [{c}]", item.description);
    }
    item
}

/// Whether a value is `{"Ref": "AWS::NoValue"}`.
fn is_no_value(v: &Value) -> bool {
    v.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue")
}

/// The elements of a list (or the value itself when it is not a list), following `Fn::If` into
/// both branches and leaving out `AWS::NoValue`. Each comes with the branch condition it depends
/// on (`if C`, `if not C`), joined by `, ` when nested.
fn expand(v: &Value) -> Vec<(Option<String>, &Value)> {
    fn walk<'a>(
        v: &'a Value,
        ctx: Option<String>,
        top: bool,
        out: &mut Vec<(Option<String>, &'a Value)>,
    ) {
        if is_no_value(v) {
            return;
        }
        if let Some(Value::Array(args)) = v.get("Fn::If")
            && v.as_object().is_some_and(|m| m.len() == 1)
            && args.len() == 3
        {
            let cond = render(&args[0]);
            let join = |c: String| Some(ctx.as_ref().map_or(c.clone(), |p| format!("{p}, {c}")));
            walk(&args[1], join(format!("if {cond}")), top, out);
            walk(&args[2], join(format!("if not {cond}")), top, out);
            return;
        }
        match v {
            Value::Array(items) if top => {
                for i in items {
                    walk(i, ctx.clone(), false, out);
                }
            }
            other => out.push((ctx, other)),
        }
    }
    let mut out = Vec::new();
    walk(v, None, true, &mut out);
    out
}

/// The statements of a policy document as items.
fn statements(doc: &Value, kind: SecurityKind, prefix: &str, out: &mut Vec<Item>) {
    for (ctx, doc) in expand(doc) {
        let parsed;
        let doc = match doc {
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(v) => {
                    parsed = v;
                    &parsed
                }
                Err(_) => continue,
            },
            other => other,
        };
        let Some(list) = doc.get("Statement") else {
            continue;
        };
        for (inner, s) in expand(list) {
            let ctx = match (&ctx, inner) {
                (Some(a), Some(b)) => Some(format!("{a}, {b}")),
                (a, b) => a.clone().or(b),
            };
            out.push(with_context(statement(s, kind, prefix), &ctx));
        }
    }
}

/// A field of a statement as a sorted, de-duplicated list, with whether it was the negated
/// form (`NotAction` for `Action`).
fn field(s: &Value, name: &str) -> Option<(bool, Vec<String>)> {
    let (negated, v) = match s.get(name) {
        Some(v) => (false, v),
        None => (true, s.get(format!("Not{name}").as_str())?),
    };
    Some((negated, list(v)))
}

/// A value as a sorted, de-duplicated list of rendered strings.
fn list(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = match v {
        Value::Array(items) => items
            .iter()
            .filter(|i| !is_no_value(i))
            .flat_map(|i| match i {
                Value::Array(_) => list(i),
                other => vec![render(other)],
            })
            .collect(),
        other => vec![render(other)],
    };
    out.sort();
    out.dedup();
    out
}

/// Principals as `*` or `Type:value`.
fn principals(v: &Value) -> Vec<String> {
    let mut out = match v {
        Value::Object(m) if !super::intrinsics::is_call(v) => m
            .iter()
            .flat_map(|(t, vals)| list(vals).into_iter().map(move |x| format!("{t}:{x}")))
            .collect(),
        other => list(other),
    };
    out.sort();
    out.dedup();
    out
}

/// A statement as an item.
fn statement(s: &Value, kind: SecurityKind, prefix: &str) -> Item {
    let effect = s.get("Effect").map(render).unwrap_or_else(|| "?".into());
    let mut d = format!("{prefix}{effect}");
    let mut wide = false;
    match field(s, "Action") {
        Some((negated, actions)) => {
            wide |= negated || actions.iter().any(|a| a.contains('*'));
            d.push(' ');
            if negated {
                d.push_str("NOT ");
            }
            d.push_str(&actions.join(","));
        }
        None => d.push_str(" (no action)"),
    }
    if let Some((negated, resources)) = field(s, "Resource") {
        wide |= negated || resources.iter().any(|r| r == "*");
        d.push_str(" on ");
        if negated {
            d.push_str("NOT ");
        }
        d.push_str(&resources.join(","));
    }
    let principal = s
        .get("Principal")
        .map(|p| (false, p))
        .or_else(|| s.get("NotPrincipal").map(|p| (true, p)));
    if let Some((negated, p)) = principal {
        let ps = principals(p);
        wide |= negated || ps.iter().any(|p| p == "*" || p == "AWS:*");
        d.push_str(" (principal ");
        if negated {
            d.push_str("NOT ");
        }
        d.push_str(&ps.join(","));
        d.push(')');
    }
    if let Some(c) = s.get("Condition") {
        d.push_str(" when ");
        d.push_str(&condition(c));
    }
    Item {
        kind,
        description: d,
        broadens_if_added: effect == "Allow" && wide,
        broadens_if_removed: effect == "Deny",
    }
}

/// A statement's condition: `Operator key=value|value; …`, operators and keys sorted.
fn condition(c: &Value) -> String {
    let Some(ops) = c.as_object().filter(|_| !super::intrinsics::is_call(c)) else {
        return render(c);
    };
    let mut parts: Vec<String> = Vec::new();
    for (op, tests) in ops {
        match tests
            .as_object()
            .filter(|_| !super::intrinsics::is_call(tests))
        {
            Some(tests) => {
                let mut keys: Vec<String> = tests
                    .iter()
                    .map(|(k, v)| format!("{k}={}", list(v).join("|")))
                    .collect();
                keys.sort();
                parts.push(format!("{op} {}", keys.join(" ")));
            }
            None => parts.push(format!("{op} {}", render(tests))),
        }
    }
    parts.sort();
    parts.join("; ")
}

/// A Lambda permission as an item.
fn lambda_permission(props: &Value) -> Item {
    let show = |k: &str| props.get(k).map(render).unwrap_or_else(|| "?".into());
    let principal = show("Principal");
    let mut d = format!(
        "Allow {} on {} (principal {principal})",
        show("Action"),
        show("FunctionName")
    );
    let mut conds: Vec<String> = [
        "SourceArn",
        "SourceAccount",
        "PrincipalOrgID",
        "EventSourceToken",
        "FunctionUrlAuthType",
        "InvokedViaFunctionUrl",
    ]
    .iter()
    .filter_map(|k| props.get(*k).map(|v| format!("{k}={}", render(v))))
    .collect();
    conds.sort();
    if !conds.is_empty() {
        d.push_str(" when ");
        d.push_str(&conds.join(" "));
    }
    Item {
        kind: SecurityKind::ResourcePolicy,
        description: d,
        broadens_if_added: principal == "*",
        broadens_if_removed: false,
    }
}

/// A security group rule as an item. `group` is the group a standalone rule belongs to.
fn rule(r: &Value, ingress: bool, group: Option<String>) -> Item {
    let get = |k: &str| r.get(k).filter(|v| !is_no_value(v)).map(render);
    let protocol = match get("IpProtocol").map(|p| p.to_ascii_lowercase()).as_deref() {
        Some("6") => "tcp".to_string(),
        Some("17") => "udp".to_string(),
        Some("1") => "icmp".to_string(),
        Some("58") => "icmpv6".to_string(),
        Some(p) => p.to_string(),
        None => "?".to_string(),
    };
    let ports = match (get("FromPort"), get("ToPort")) {
        _ if protocol == "-1" || protocol == "all" => "all".to_string(),
        (None, None) => "all".to_string(),
        (Some(f), Some(t)) if f == "-1" && t == "-1" => "all".to_string(),
        (Some(f), Some(t)) if f == t => f,
        (f, t) => format!(
            "{}-{}",
            f.unwrap_or_else(|| "?".into()),
            t.unwrap_or_else(|| "?".into())
        ),
    };
    let peer_keys: &[(&str, &str)] = if ingress {
        &[
            ("CidrIp", ""),
            ("CidrIpv6", ""),
            ("SourceSecurityGroupId", "group "),
            ("SourceSecurityGroupName", "group "),
            ("SourcePrefixListId", "prefix list "),
        ]
    } else {
        &[
            ("CidrIp", ""),
            ("CidrIpv6", ""),
            ("DestinationSecurityGroupId", "group "),
            ("DestinationPrefixListId", "prefix list "),
        ]
    };
    let peers: Vec<String> = peer_keys
        .iter()
        .filter_map(|(k, label)| get(k).map(|v| format!("{label}{v}")))
        .collect();
    let peer = if peers.is_empty() {
        "?".to_string()
    } else {
        peers.join(",")
    };
    let mut d = format!(
        "{} {protocol} {ports} {} {peer}",
        if ingress { "ingress" } else { "egress" },
        if ingress { "from" } else { "to" },
    );
    if let Some(owner) = get("SourceSecurityGroupOwnerId") {
        d.push_str(&format!(" (account {owner})"));
    }
    if let Some(g) = group {
        d.push_str(&format!(" (group {g})"));
    }
    let open = peers.iter().any(|p| p == "0.0.0.0/0" || p == "::/0");
    Item {
        kind: SecurityKind::SecurityGroupRule,
        description: d,
        broadens_if_added: ingress && open,
        broadens_if_removed: false,
    }
}

/// A value as one line of text, intrinsic functions in `Fn::Sub` style (see the module
/// documentation).
pub(crate) fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => items.iter().map(render).collect::<Vec<_>>().join(","),
        Value::Object(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next().expect("one key");
            match (k.as_str(), arg) {
                ("Ref", Value::String(name)) => format!("${{{name}}}"),
                ("Fn::GetAtt", Value::String(s)) => format!("${{{s}}}"),
                ("Fn::GetAtt", Value::Array(parts)) => {
                    let parts: Vec<String> = parts.iter().map(render).collect();
                    format!("${{{}}}", parts.join("."))
                }
                ("Fn::Sub", Value::String(s)) => s.clone(),
                ("Fn::Sub", Value::Array(parts)) => {
                    let mut s = parts.first().map(render).unwrap_or_default();
                    if let Some(vars) = parts.get(1).and_then(Value::as_object) {
                        for (name, val) in vars {
                            s = s.replace(&format!("${{{name}}}"), &render(val));
                        }
                    }
                    s
                }
                ("Fn::Join", Value::Array(parts)) if parts.len() == 2 => {
                    match (&parts[0], &parts[1]) {
                        (Value::String(sep), Value::Array(items)) => {
                            items.iter().map(render).collect::<Vec<_>>().join(sep)
                        }
                        _ => fallback(k, arg),
                    }
                }
                ("Fn::ImportValue", x) => format!("${{Import:{}}}", render(x)),
                ("Fn::If", Value::Array(parts)) if parts.len() == 3 => format!(
                    "${{If:{} ? {} : {}}}",
                    render(&parts[0]),
                    render(&parts[1]),
                    render(&parts[2])
                ),
                (k, _) if k.starts_with("Fn::") => fallback(k, arg),
                _ => canonical_json(v),
            }
        }
        Value::Object(_) => canonical_json(v),
    }
}

fn fallback(k: &str, arg: &Value) -> String {
    format!("${{{k}:{}}}", canonical_json(arg))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use SecurityChangeKind::*;
    use SecurityKind::*;

    fn t(text: &str) -> Template {
        Template::parse(text.as_bytes(), &Arc::from("t.yml")).unwrap()
    }

    /// (kind, change, description, broadens) of each change.
    fn summary(c: &[SecurityChange]) -> Vec<(SecurityKind, SecurityChangeKind, &str, bool)> {
        c.iter()
            .map(|c| (c.kind, c.change, c.description.as_str(), c.broadens))
            .collect()
    }

    const ROLE: &str = r#"
Resources:
  Bucket:
    Type: AWS::S3::Bucket
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: lambda.amazonaws.com}
            Action: sts:AssumeRole
      ManagedPolicyArns:
        - arn:aws:iam::aws:policy/ReadOnlyAccess
      Policies:
        - PolicyName: data
          PolicyDocument:
            Statement:
              - Sid: Read
                Effect: Allow
                Action: [s3:PutObject, s3:GetObject]
                Resource: !Sub "${Bucket.Arn}/*"
              - Effect: Deny
                Action: s3:DeleteObject
                Resource: "*"
"#;

    #[test]
    fn new_stack_lists_everything_as_added() {
        let a = t(ROLE);
        let c = security_changes(None, Some(&a));
        assert_eq!(
            summary(&c),
            [
                (
                    IamStatement,
                    Added,
                    "Allow s3:GetObject,s3:PutObject on ${Bucket.Arn}/*",
                    false
                ),
                (IamStatement, Added, "Deny s3:DeleteObject on *", false),
                (
                    IamStatement,
                    Added,
                    "trust: Allow sts:AssumeRole (principal Service:lambda.amazonaws.com)",
                    false
                ),
                (
                    IamPolicy,
                    Added,
                    "attach arn:aws:iam::aws:policy/ReadOnlyAccess",
                    false
                ),
            ]
        );
        assert!(
            c.iter()
                .all(|c| c.resource == "Role" && c.resource_type == "AWS::IAM::Role")
        );
        // And a removed stack as removed: the removed Deny broadens.
        let c = security_changes(Some(&a), None);
        assert_eq!(c.len(), 4);
        assert!(c.iter().all(|c| c.change == Removed));
        let deny = c
            .iter()
            .find(|c| c.description.starts_with("Deny"))
            .unwrap();
        assert!(deny.broadens);
    }

    #[test]
    fn reordering_and_equivalent_forms_are_no_change() {
        let a = t(ROLE);
        let b = t(&ROLE
            .replace(
                "[s3:PutObject, s3:GetObject]",
                "[s3:GetObject, s3:PutObject, s3:GetObject]",
            )
            .replace("Sid: Read", "Sid: ReadWrite")
            .replace(
                "!Sub \"${Bucket.Arn}/*\"",
                "{\"Fn::Join\": [\"\", [{\"Fn::GetAtt\": [Bucket, Arn]}, \"/*\"]]}",
            ));
        assert!(security_changes(Some(&a), Some(&b)).is_empty());
        // Statements in another order.
        let swapped = r#"
Resources:
  P:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Statement:
          - {Effect: Allow, Action: a:B, Resource: x}
          - {Effect: Allow, Action: c:D, Resource: [z, y]}
"#;
        let c = t(&swapped.replace(
            "          - {Effect: Allow, Action: a:B, Resource: x}\n          - {Effect: Allow, Action: c:D, Resource: [z, y]}\n",
            "          - {Effect: Allow, Action: [c:D], Resource: [y, z]}\n          - {Effect: Allow, Action: a:B, Resource: x}\n",
        ));
        assert!(security_changes(Some(&t(swapped)), Some(&c)).is_empty());
    }

    #[test]
    fn statement_changes_and_broadening() {
        let a = t(ROLE);
        let b = t(&ROLE
            .replace("Action: [s3:PutObject, s3:GetObject]", "Action: [s3:*]")
            .replace(
                "              - Effect: Deny\n                Action: s3:DeleteObject\n                Resource: \"*\"\n",
                "",
            )
            .replace(
                "            Principal: {Service: lambda.amazonaws.com}",
                "            Principal: {AWS: \"*\"}",
            ));
        let c = security_changes(Some(&a), Some(&b));
        assert_eq!(
            summary(&c),
            [
                (
                    IamStatement,
                    Removed,
                    "Allow s3:GetObject,s3:PutObject on ${Bucket.Arn}/*",
                    false
                ),
                (IamStatement, Removed, "Deny s3:DeleteObject on *", true),
                (
                    IamStatement,
                    Removed,
                    "trust: Allow sts:AssumeRole (principal Service:lambda.amazonaws.com)",
                    false
                ),
                (IamStatement, Added, "Allow s3:* on ${Bucket.Arn}/*", true),
                (
                    IamStatement,
                    Added,
                    "trust: Allow sts:AssumeRole (principal AWS:*)",
                    true
                ),
            ]
        );
    }

    #[test]
    fn managed_policies() {
        let a = t(ROLE);
        let b = t(&ROLE.replace(
            "        - arn:aws:iam::aws:policy/ReadOnlyAccess\n",
            "        - !Sub arn:${AWS::Partition}:iam::aws:policy/AdministratorAccess\n        - arn:aws:iam::aws:policy/ReadOnlyAccess\n",
        ));
        let c = security_changes(Some(&a), Some(&b));
        assert_eq!(
            summary(&c),
            [(
                IamPolicy,
                Added,
                "attach arn:${AWS::Partition}:iam::aws:policy/AdministratorAccess",
                true
            )]
        );
        let c = security_changes(Some(&b), Some(&a));
        assert_eq!(c[0].change, Removed);
        assert!(!c[0].broadens);
    }

    #[test]
    fn policies_and_their_attachments() {
        let text = r#"
Resources:
  P:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: p
      Roles: [!Ref A]
      PolicyDocument:
        Statement:
          Effect: Allow
          Action: sqs:SendMessage
          Resource: !GetAtt Q.Arn
"#;
        let c = security_changes(None, Some(&t(text)));
        assert_eq!(
            summary(&c),
            [
                (
                    IamStatement,
                    Added,
                    "Allow sqs:SendMessage on ${Q.Arn}",
                    false
                ),
                (IamPolicy, Added, "attach to role ${A}", false),
            ]
        );
        let c = security_changes(Some(&t(text)), Some(&t(&text.replace("!Ref A", "!Ref B"))));
        assert_eq!(
            summary(&c),
            [
                (IamPolicy, Removed, "attach to role ${A}", false),
                (IamPolicy, Added, "attach to role ${B}", false),
            ]
        );
    }

    #[test]
    fn resource_policies() {
        let text = r#"
Resources:
  BP:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref B
      PolicyDocument:
        Statement:
          - Effect: Allow
            Principal: "*"
            Action: s3:GetObject
            Resource: !Sub "arn:aws:s3:::${B}/*"
            Condition: {StringEquals: {aws:SourceVpce: [vpce-2, vpce-1]}}
  Key:
    Type: AWS::KMS::Key
    Properties:
      KeyPolicy: '{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "kms:*", "Resource": "*"}]}'
  QP:
    Type: AWS::SQS::QueuePolicy
    Properties:
      Queues: [!Ref Q]
      PolicyDocument:
        Statement:
          - Effect: Allow
            Principal: {Service: sns.amazonaws.com}
            Action: sqs:SendMessage
            Resource: !GetAtt Q.Arn
  TP:
    Type: AWS::SNS::TopicPolicy
    Properties:
      Topics: [!Ref T]
      PolicyDocument:
        Statement:
          - {Effect: Allow, Principal: {Service: events.amazonaws.com}, Action: sns:Publish, Resource: !Ref T}
  Perm:
    Type: AWS::Lambda::Permission
    Properties:
      Action: lambda:InvokeFunction
      FunctionName: !GetAtt F.Arn
      Principal: s3.amazonaws.com
      SourceAccount: !Ref AWS::AccountId
"#;
        let c = security_changes(None, Some(&t(text)));
        assert_eq!(
            summary(&c),
            [
                (
                    ResourcePolicy,
                    Added,
                    "Allow s3:GetObject on arn:aws:s3:::${B}/* (principal *) when StringEquals aws:SourceVpce=vpce-1|vpce-2",
                    true
                ),
                (
                    ResourcePolicy,
                    Added,
                    "Allow kms:* on * (principal AWS:arn:aws:iam::111111111111:root)",
                    true
                ),
                (
                    ResourcePolicy,
                    Added,
                    "Allow lambda:InvokeFunction on ${F.Arn} (principal s3.amazonaws.com) when SourceAccount=${AWS::AccountId}",
                    false
                ),
                (
                    ResourcePolicy,
                    Added,
                    "Allow sqs:SendMessage on ${Q.Arn} (principal Service:sns.amazonaws.com)",
                    false
                ),
                (
                    ResourcePolicy,
                    Added,
                    "Allow sns:Publish on ${T} (principal Service:events.amazonaws.com)",
                    false
                ),
            ]
        );
        let open = text.replace("Principal: s3.amazonaws.com", "Principal: \"*\"");
        let c = security_changes(Some(&t(text)), Some(&t(&open)));
        assert_eq!(c.len(), 2);
        assert!(c[1].broadens && c[1].change == Added && c[1].resource == "Perm");
        assert!(!c[0].broadens);
    }

    const SG: &str = r#"
Resources:
  Sg:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: web
      SecurityGroupIngress:
        - {IpProtocol: tcp, FromPort: 443, ToPort: 443, CidrIp: 10.0.0.0/8, Description: internal}
      SecurityGroupEgress:
        - {IpProtocol: "-1", CidrIpv6: "::/0"}
  Extra:
    Type: AWS::EC2::SecurityGroupIngress
    Properties:
      GroupId: !GetAtt Sg.GroupId
      IpProtocol: "6"
      FromPort: 8000
      ToPort: 8080
      SourceSecurityGroupId: !Ref Lb
"#;

    #[test]
    fn security_group_rules() {
        let c = security_changes(None, Some(&t(SG)));
        assert_eq!(
            summary(&c),
            [
                (
                    SecurityGroupRule,
                    Added,
                    "ingress tcp 8000-8080 from group ${Lb} (group ${Sg.GroupId})",
                    false
                ),
                (SecurityGroupRule, Added, "egress -1 all to ::/0", false),
                (
                    SecurityGroupRule,
                    Added,
                    "ingress tcp 443 from 10.0.0.0/8",
                    false
                ),
            ]
        );
        // Descriptions and number-or-string ports are no change; opening to the world broadens.
        let b = t(&SG
            .replace("Description: internal", "Description: from the VPC")
            .replace(
                "FromPort: 443, ToPort: 443",
                "FromPort: \"443\", ToPort: 443",
            ));
        assert!(security_changes(Some(&t(SG)), Some(&b)).is_empty());
        let open = t(&SG.replace(
            "        - {IpProtocol: tcp, FromPort: 443, ToPort: 443, CidrIp: 10.0.0.0/8, Description: internal}\n",
            "        - {IpProtocol: tcp, FromPort: 443, ToPort: 443, CidrIp: 10.0.0.0/8, Description: internal}\n        - {IpProtocol: tcp, FromPort: 443, ToPort: 443, CidrIpv6: \"::/0\"}\n",
        ));
        let c = security_changes(Some(&t(SG)), Some(&open));
        assert_eq!(
            summary(&c),
            [(SecurityGroupRule, Added, "ingress tcp 443 from ::/0", true)]
        );
    }

    #[test]
    fn conditional_statements_name_their_condition() {
        let text = r#"
Resources:
  P:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Statement:
          - !If
            - IsProd
            - {Effect: Allow, Action: "*", Resource: "*"}
            - !Ref AWS::NoValue
"#;
        let c = security_changes(None, Some(&t(text)));
        assert_eq!(
            summary(&c),
            [(IamStatement, Added, "Allow * on * [if IsProd]", true)]
        );
    }

    #[test]
    fn renders_intrinsics_compactly() {
        let v = serde_json::json!({"Fn::Sub": ["arn:${P}:s3:::${B}", {"B": {"Ref": "Bucket"}}]});
        assert_eq!(render(&v), "arn:${P}:s3:::${Bucket}");
        let v = serde_json::json!({"Fn::ImportValue": {"Fn::Sub": "${Env}-vpc"}});
        assert_eq!(render(&v), "${Import:${Env}-vpc}");
        let v = serde_json::json!({"Fn::Select": [0, {"Fn::GetAZs": ""}]});
        assert_eq!(render(&v), r#"${Fn::Select:[0,{"Fn::GetAZs":""}]}"#);
    }
}
