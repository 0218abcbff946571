//! Resource-level changes between two versions of a template, worked out without AWS: the
//! resources of the offline plan, and what the live planner uses where a change set says too
//! little.
//!
//! # What is compared
//!
//! Resources are matched by logical id. A resource only in the new template is an `Add`, only in
//! the old one a `Remove` (both with `replacement: unknown`). A resource whose `Condition` is
//! known not to hold for its stack ([`crate::template::conditions`]) is not in that template;
//! one whose condition is not known is there, and its change names the condition. A resource in both is a `Modify`
//! when anything below differs:
//!
//! - `Type`: CloudFormation refuses to change the type of a logical id in place (the change set
//!   fails with "Update of resource type is not permitted"); the plan shows it as one `Modify`
//!   with `replacement: true` and a detail of attribute `Type`, since a new resource is what
//!   the change amounts to (deleting and adding it under another logical id, or in two updates).
//!   All its property details then require recreation.
//! - `Properties`, compared deeply. Each changed value, added key or removed key is a detail
//!   named by its property path (`CidrBlock`, `Tags[0].Value`, see [`crate::template::replacement`]
//!   for the form). Intrinsic functions (`{"Ref": …}`, `{"Fn::…": …}`) are compared as whole
//!   values, not looked into. Lists are aligned by content first, so inserting one element
//!   reports one added element, not a change of every later one: added and changed elements
//!   carry their index in the new list, removed ones their index in the old list. Details under
//!   `Tags` have attribute `Tags` (scope `Tags`), like CloudFormation's; the others
//!   `Properties`.
//! - `Metadata`, `CreationPolicy`, `UpdatePolicy` (compared deeply, like properties),
//!   `DeletionPolicy`, `UpdateReplacePolicy`, `Condition` and `DependsOn` (a single name and a
//!   list holding it are the same; order does not matter): one scope entry each, details that
//!   never require recreation.
//!
//! Static details have `evaluation: Static`, `change_source: DirectModification`, and the
//! values before and after as compact JSON (keys sorted). A value that refers to a NoEcho
//! parameter of its template (`{"Ref": P}` or `${P}` in `Fn::Sub`, anywhere inside it) is
//! shown as `****`.
//!
//! # Dynamic changes
//!
//! A resource in both templates whose properties refer to something that changes is also
//! modified, even when its own text is the same. The references that count are, anywhere in the
//! new template's properties of the resource:
//!
//! - a parameter in `changed_parameters`, by `Ref` or `${Param}` in `Fn::Sub`
//!   (`change_source: ParameterReference`, `causing_entity`: the parameter), and a `Fn::If` on
//!   a condition that depends on such a parameter (a resource whose own `Condition` depends on
//!   one gets a `Condition` detail);
//! - a resource that is replaced, by `Ref` (`ResourceReference`, the logical id) or `Fn::GetAtt`
//!   / `${Res.Attr}` (`ResourceAttribute`, `Res.Attr`): its physical id and attributes change.
//!   A resource that may be replaced (`replacement: conditional`) causes changes that require
//!   recreation at most conditionally. Modified resources that are not replaced are assumed to
//!   keep their attributes.
//!
//! Each such reference is a detail with `evaluation: Dynamic`, no values, and the
//! `requires_recreation` of the property path the reference sits in (the path down to the
//! intrinsic function holding it): a changed parameter feeding a create-only property predicts
//! a replacement, which in turn changes what refers to the replaced resource, and so on.
//!
//! # Replacement
//!
//! A modified resource's `replacement` (`replacement_source: Predicted`) is the strongest
//! `requires_recreation` of its property and tag details: `true` for any `always`,
//! `conditional` for any `conditionally`, otherwise `false`; `unknown` when the type is not in
//! the replacement data and a property changes. Changes outside the properties never replace a
//! resource, so a resource with only those is `false`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};
use similar::{Algorithm, DiffTag, capture_diff_slices};

use crate::template::change::{
    ChangeDetail, Replacement, ReplacementSource, RequiresRecreation, ResourceAction,
    ResourceChange,
};
use crate::template::conditions::Conditions;
use crate::template::refs::{Reference, references};
use crate::template::replacement;
use crate::template::{Template, canonical_json};

/// How a value that refers to a secret is shown.
pub const MASK: &str = "****";

/// The resource attributes compared besides `Type` and `Properties`, in scope order.
const ATTRIBUTES: &[&str] = &[
    "Metadata",
    "CreationPolicy",
    "UpdatePolicy",
    "DeletionPolicy",
    "UpdateReplacePolicy",
    "DependsOn",
    "Condition",
];

/// The order of scope entries.
const SCOPE_ORDER: &[&str] = &[
    "Type",
    "Properties",
    "Tags",
    "Metadata",
    "CreationPolicy",
    "UpdatePolicy",
    "DeletionPolicy",
    "UpdateReplacePolicy",
    "DependsOn",
    "Condition",
];

/// Resource changes from template `before` (the deployed or base one; `None` for a new stack)
/// to `after` (`None` for a stack going away), given the parameters whose values change, with
/// nothing known of their conditions. Sorted by logical id. See the module documentation for
/// the rules.
pub fn resource_changes(
    before: Option<&Template>,
    after: Option<&Template>,
    changed_parameters: &[String],
) -> Vec<ResourceChange> {
    let unknown = Conditions::unknown();
    resource_changes_under(
        before.map(|t| (t, &unknown)),
        after.map(|t| (t, &unknown)),
        changed_parameters,
    )
}

/// [`resource_changes`] with what is known of each template's conditions: a resource whose
/// `Condition` is known not to hold is not there; one whose condition is not known carries it
/// in [`ResourceChange::condition`].
pub fn resource_changes_under(
    before: Option<(&Template, &Conditions)>,
    after: Option<(&Template, &Conditions)>,
    changed_parameters: &[String],
) -> Vec<ResourceChange> {
    let old = before.map(|(t, c)| Side::new(t, c));
    let new = after.map(|(t, c)| Side::new(t, c));
    let ids: BTreeSet<&str> = old
        .iter()
        .chain(new.iter())
        .flat_map(|s| s.template.resources.keys().map(String::as_str))
        .collect();

    let mut out: BTreeMap<String, ResourceChange> = BTreeMap::new();
    // Resources in both templates, with their static details.
    let mut common: BTreeMap<&str, Modified> = BTreeMap::new();
    for id in ids {
        let o = old.as_ref().and_then(|s| s.resource(id));
        let n = new.as_ref().and_then(|s| s.resource(id));
        match (o, n) {
            (None, Some((type_, _))) => {
                let mut c = whole(id, type_, ResourceAction::Add);
                c.condition = new.as_ref().and_then(|s| s.unknown_condition(id));
                out.insert(id.to_string(), c);
            }
            (Some((type_, _)), None) => {
                let mut c = whole(id, type_, ResourceAction::Remove);
                c.condition = old.as_ref().and_then(|s| s.unknown_condition(id));
                out.insert(id.to_string(), c);
            }
            (Some(o), Some(n)) => {
                let (old, new) = (old.as_ref().unwrap(), new.as_ref().unwrap());
                common.insert(id, Modified::compare(old, o, new, n));
            }
            (None, None) => {}
        }
    }

    if let Some(new) = &new {
        add_dynamic_details(new, changed_parameters, &mut common);
    }

    for (id, m) in common {
        if m.details.is_empty() {
            continue;
        }
        let replacement = m.replacement();
        let mut scope: Vec<String> = Vec::new();
        for s in SCOPE_ORDER {
            if m.details.iter().any(|d| d.attribute == *s) {
                scope.push(s.to_string());
            }
        }
        out.insert(
            id.to_string(),
            ResourceChange {
                logical_id: id.to_string(),
                physical_id: None,
                resource_type: m.type_,
                action: ResourceAction::Modify,
                replacement,
                replacement_source: ReplacementSource::Predicted,
                scope,
                details: m.details,
                condition: new.as_ref().and_then(|s| s.unknown_condition(id)),
            },
        );
    }
    out.into_values().collect()
}

/// An added or removed resource.
fn whole(id: &str, type_: &str, action: ResourceAction) -> ResourceChange {
    ResourceChange {
        logical_id: id.to_string(),
        physical_id: None,
        resource_type: type_.to_string(),
        action,
        replacement: Replacement::Unknown,
        replacement_source: ReplacementSource::Predicted,
        scope: Vec::new(),
        details: Vec::new(),
        condition: None,
    }
}

/// One template, read for comparison.
struct Side<'a> {
    template: &'a Template,
    conditions: &'a Conditions,
    resources: Option<&'a Map<String, Value>>,
    /// NoEcho parameters.
    secrets: BTreeSet<&'a str>,
}

impl<'a> Side<'a> {
    fn new(template: &'a Template, conditions: &'a Conditions) -> Self {
        Side {
            template,
            conditions,
            resources: template.value().get("Resources").and_then(Value::as_object),
            secrets: template
                .parameters
                .iter()
                .filter(|(_, p)| p.no_echo)
                .map(|(n, _)| n.as_str())
                .collect(),
        }
    }

    /// A resource's type and declaration; `None` when it is not in the template or its
    /// condition is known not to hold.
    fn resource(&self, id: &str) -> Option<(&'a str, &'a Value)> {
        let decl = self.template.resources.get(id)?;
        let value = self.resources.and_then(|r| r.get(id))?;
        if self
            .condition(id)
            .is_some_and(|c| self.conditions.holds(c) == Some(false))
        {
            return None;
        }
        Some((decl.type_.as_str(), value))
    }

    /// The name of a resource's `Condition`, if it has one.
    fn condition(&self, id: &str) -> Option<&'a str> {
        self.resources
            .and_then(|r| r.get(id))
            .and_then(|v| v.get("Condition"))
            .and_then(Value::as_str)
    }

    /// A resource's condition when whether it holds is not known.
    fn unknown_condition(&self, id: &str) -> Option<String> {
        self.condition(id)
            .filter(|c| self.conditions.holds(c).is_none())
            .map(String::from)
    }

    /// A value as shown in a detail: compact JSON, or the mask when it refers to a secret.
    fn show(&self, v: &Value) -> String {
        if refers_to_any(v, &self.secrets) {
            MASK.to_string()
        } else {
            canonical_json(v)
        }
    }
}

/// A resource present in both templates, as compared so far.
struct Modified {
    type_: String,
    /// Whether the type is in the replacement data.
    known: bool,
    type_changed: bool,
    /// Static details, computed once.
    static_details: usize,
    details: Vec<ChangeDetail>,
}

impl Modified {
    fn compare(
        old: &Side,
        (old_type, o): (&str, &Value),
        new: &Side,
        (new_type, n): (&str, &Value),
    ) -> Self {
        let type_changed = old_type != new_type;
        let mut details = Vec::new();
        if type_changed {
            details.push(ChangeDetail {
                attribute: "Type".to_string(),
                name: None,
                requires_recreation: Some(RequiresRecreation::Always),
                evaluation: Some("Static".to_string()),
                change_source: Some("DirectModification".to_string()),
                causing_entity: None,
                before: Some(canonical_json(&Value::from(old_type))),
                after: Some(canonical_json(&Value::from(new_type))),
            });
        }
        let empty = Value::Object(Map::new());
        let mut leaves = Vec::new();
        diff_values(
            String::new(),
            Some(o.get("Properties").unwrap_or(&empty)),
            Some(n.get("Properties").unwrap_or(&empty)),
            &mut leaves,
        );
        for leaf in leaves {
            let requires = if type_changed {
                Some(RequiresRecreation::Always)
            } else {
                replacement::requires_recreation(new_type, &leaf.path)
            };
            details.push(leaf.detail(property_attribute(&leaf.path), requires, old, new));
        }
        for attr in ATTRIBUTES {
            let (a, b) = (o.get(*attr), n.get(*attr));
            let mut leaves = Vec::new();
            match *attr {
                "DependsOn" => {
                    let (a, b) = (a.map(depends_on), b.map(depends_on));
                    if a != b {
                        let detail = Leaf {
                            path: String::new(),
                            before: a.as_ref(),
                            after: b.as_ref(),
                        }
                        .detail(
                            attr,
                            Some(RequiresRecreation::Never),
                            old,
                            new,
                        );
                        details.push(detail);
                    }
                    continue;
                }
                "Metadata" | "CreationPolicy" | "UpdatePolicy" => {
                    diff_values(String::new(), a, b, &mut leaves)
                }
                _ => {
                    if a != b {
                        leaves.push(Leaf {
                            path: String::new(),
                            before: a,
                            after: b,
                        })
                    }
                }
            }
            for leaf in leaves {
                details.push(leaf.detail(attr, Some(RequiresRecreation::Never), old, new));
            }
        }
        Modified {
            type_: new_type.to_string(),
            known: replacement::is_known_type(new_type),
            type_changed,
            static_details: details.len(),
            details,
        }
    }

    /// The predicted replacement, from the details so far.
    fn replacement(&self) -> Replacement {
        if self.type_changed {
            return Replacement::True;
        }
        let mut strongest = None;
        for d in &self.details {
            if d.attribute != "Properties" && d.attribute != "Tags" {
                continue;
            }
            if !self.known {
                return Replacement::Unknown;
            }
            strongest = strongest.max(d.requires_recreation);
        }
        match strongest {
            Some(RequiresRecreation::Always) => Replacement::True,
            Some(RequiresRecreation::Conditionally) => Replacement::Conditional,
            Some(RequiresRecreation::Never) | None => Replacement::False,
        }
    }
}

/// `DependsOn` as a sorted set of names.
fn depends_on(v: &Value) -> Value {
    let mut names: Vec<Value> = match v {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    names.sort_by_key(canonical_json);
    names.dedup();
    Value::Array(names)
}

/// The attribute of a property detail: `Tags` for the `Tags` property and what is inside it.
fn property_attribute(path: &str) -> &'static str {
    if path == "Tags" || path.starts_with("Tags[") || path.starts_with("Tags.") {
        "Tags"
    } else {
        "Properties"
    }
}

/// One changed value.
struct Leaf<'a> {
    /// Property path, empty for the compared value itself.
    path: String,
    before: Option<&'a Value>,
    after: Option<&'a Value>,
}

impl Leaf<'_> {
    fn detail(
        &self,
        attribute: &str,
        requires_recreation: Option<RequiresRecreation>,
        old: &Side,
        new: &Side,
    ) -> ChangeDetail {
        ChangeDetail {
            attribute: attribute.to_string(),
            name: (!self.path.is_empty()).then(|| self.path.clone()),
            requires_recreation,
            evaluation: Some("Static".to_string()),
            change_source: Some("DirectModification".to_string()),
            causing_entity: None,
            before: self.before.map(|v| old.show(v)),
            after: self.after.map(|v| new.show(v)),
        }
    }
}

/// The path of member `key` of the value at `parent`.
pub(crate) fn member_path(parent: &str, key: &str) -> String {
    if key.is_empty() || key.contains(['.', '[', ']', '"']) {
        format!("{parent}[{}]", Value::from(key))
    } else if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Collects the differences between two values as leaves. `None` is an absent value.
fn diff_values<'a>(
    path: String,
    a: Option<&'a Value>,
    b: Option<&'a Value>,
    out: &mut Vec<Leaf<'a>>,
) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y)))
            if !super::intrinsics::is_call(a.unwrap())
                && !super::intrinsics::is_call(b.unwrap()) =>
        {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                diff_values(member_path(&path, k), x.get(k), y.get(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => diff_lists(&path, x, y, out),
        (a, b) if a == b => {}
        (before, after) => out.push(Leaf {
            path,
            before,
            after,
        }),
    }
}

/// Differences between two lists, aligned by content.
fn diff_lists<'a>(path: &str, x: &'a [Value], y: &'a [Value], out: &mut Vec<Leaf<'a>>) {
    let keys = |v: &[Value]| v.iter().map(canonical_json).collect::<Vec<_>>();
    let (kx, ky) = (keys(x), keys(y));
    let at = |i: usize| format!("{path}[{i}]");
    for op in capture_diff_slices(Algorithm::Myers, &kx, &ky) {
        let (tag, old, new) = op.as_tag_tuple();
        match tag {
            DiffTag::Equal => {}
            DiffTag::Delete | DiffTag::Insert | DiffTag::Replace => {
                let paired = old.len().min(new.len());
                for k in 0..paired {
                    let (i, j) = (old.start + k, new.start + k);
                    diff_values(at(j), Some(&x[i]), Some(&y[j]), out);
                }
                let removed = old.start + paired..old.end;
                for (i, v) in removed.clone().zip(&x[removed]) {
                    out.push(Leaf {
                        path: at(i),
                        before: Some(v),
                        after: None,
                    });
                }
                let added = new.start + paired..new.end;
                for (j, v) in added.clone().zip(&y[added]) {
                    out.push(Leaf {
                        path: at(j),
                        before: None,
                        after: Some(v),
                    });
                }
            }
        }
    }
}

/// Whether a value refers (by `Ref` or `${…}`) to one of `names`.
fn refers_to_any(v: &Value, names: &BTreeSet<&str>) -> bool {
    if names.is_empty() {
        return false;
    }
    let mut refs = Vec::new();
    references(v, &mut refs);
    refs.iter()
        .any(|r| matches!(r, Reference::Ref(n) if names.contains(n.as_str())))
}

/// Where in a property tree references sit: the property path of each intrinsic function call
/// (the outermost one) with the references inside it.
fn reference_sites(v: &Value, path: String, out: &mut Vec<(String, Vec<Reference>)>) {
    if super::intrinsics::is_call(v) {
        let mut refs = Vec::new();
        references(v, &mut refs);
        if !refs.is_empty() {
            out.push((path, refs));
        }
        return;
    }
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for k in keys {
                reference_sites(&m[k.as_str()], member_path(&path, k), out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                reference_sites(x, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// For each condition of a template, the changed parameters it depends on (directly or through
/// other conditions).
fn condition_parameters<'a>(
    template: &Template,
    changed: &BTreeSet<&'a str>,
) -> HashMap<String, BTreeSet<&'a str>> {
    let mut deps: HashMap<String, (BTreeSet<&'a str>, Vec<String>)> = HashMap::new();
    if let Some(conds) = template
        .value()
        .get("Conditions")
        .and_then(Value::as_object)
    {
        for (name, expr) in conds {
            let mut refs = Vec::new();
            references(expr, &mut refs);
            let mut params = BTreeSet::new();
            let mut via = Vec::new();
            for r in refs {
                match r {
                    Reference::Ref(p) => {
                        if let Some(p) = changed.get(p.as_str()) {
                            params.insert(*p);
                        }
                    }
                    Reference::Condition(c) => via.push(c),
                    Reference::GetAtt(..) => {}
                }
            }
            deps.insert(name.clone(), (params, via));
        }
    }
    // Conditions may refer to conditions: spread until nothing changes.
    loop {
        let mut grew = false;
        let names: Vec<String> = deps.keys().cloned().collect();
        for name in names {
            let via = deps[&name].1.clone();
            let mut add = BTreeSet::new();
            for c in via {
                if let Some((p, _)) = deps.get(&c) {
                    add.extend(p.iter().copied());
                }
            }
            let own = &mut deps.get_mut(&name).expect("listed").0;
            let before = own.len();
            own.extend(add);
            grew |= own.len() > before;
        }
        if !grew {
            break;
        }
    }
    deps.into_iter()
        .filter(|(_, (p, _))| !p.is_empty())
        .map(|(n, (p, _))| (n, p))
        .collect()
}

/// Adds the details of changes caused by changed parameters and replaced resources to the
/// resources present in both templates, until no more replacements follow.
fn add_dynamic_details(
    new: &Side,
    changed_parameters: &[String],
    common: &mut BTreeMap<&str, Modified>,
) {
    let changed: BTreeSet<&str> = changed_parameters
        .iter()
        .map(String::as_str)
        .filter(|p| new.template.parameters.contains_key(*p))
        .collect();
    let conditions = condition_parameters(new.template, &changed);
    let ids: Vec<&str> = common.keys().copied().collect();
    loop {
        let replaced: HashMap<&str, Replacement> = common
            .iter()
            .map(|(id, m)| (*id, m.replacement()))
            .filter(|(_, r)| matches!(r, Replacement::True | Replacement::Conditional))
            .collect();
        let before: Vec<Replacement> = ids.iter().map(|id| common[id].replacement()).collect();
        for id in &ids {
            let Some((type_, decl)) = new.resource(id) else {
                continue;
            };
            let m = common.get_mut(id).expect("listed");
            let mut dynamic = Vec::new();
            if let Some(Value::String(c)) = decl.get("Condition") {
                for p in conditions.get(c).into_iter().flatten() {
                    dynamic.push(dynamic_detail(
                        "Condition",
                        None,
                        None,
                        "ParameterReference",
                        p,
                    ));
                }
            }
            let mut sites = Vec::new();
            if let Some(props) = decl.get("Properties") {
                reference_sites(props, String::new(), &mut sites);
            }
            for (path, refs) in sites {
                let lookup = if m.type_changed {
                    Some(RequiresRecreation::Always)
                } else {
                    replacement::requires_recreation(type_, &path)
                };
                let attribute = property_attribute(&path);
                let name = (!path.is_empty()).then_some(path.as_str());
                for r in refs {
                    let (source, entity, cap) = match &r {
                        Reference::Ref(n) if changed.contains(n.as_str()) => {
                            ("ParameterReference", n.clone(), RequiresRecreation::Always)
                        }
                        Reference::Condition(c) => {
                            for p in conditions.get(c).into_iter().flatten() {
                                dynamic.push(dynamic_detail(
                                    attribute,
                                    name,
                                    lookup,
                                    "ParameterReference",
                                    p,
                                ));
                            }
                            continue;
                        }
                        Reference::Ref(n) => match replaced.get(n.as_str()) {
                            Some(r) => ("ResourceReference", n.clone(), cap_of(*r)),
                            None => continue,
                        },
                        Reference::GetAtt(res, attr) => match replaced.get(res.as_str()) {
                            Some(r) => ("ResourceAttribute", format!("{res}.{attr}"), cap_of(*r)),
                            None => continue,
                        },
                    };
                    let requires = lookup.map(|l| l.min(cap));
                    dynamic.push(dynamic_detail(attribute, name, requires, source, &entity));
                }
            }
            m.details.truncate(m.static_details);
            for d in dynamic {
                if !m.details[m.static_details..].contains(&d) {
                    m.details.push(d);
                }
            }
        }
        let after: Vec<Replacement> = ids.iter().map(|id| common[id].replacement()).collect();
        if before == after {
            break;
        }
    }
}

/// How strongly a replaced resource makes what refers to it change.
fn cap_of(r: Replacement) -> RequiresRecreation {
    if r == Replacement::True {
        RequiresRecreation::Always
    } else {
        RequiresRecreation::Conditionally
    }
}

fn dynamic_detail(
    attribute: &str,
    name: Option<&str>,
    requires_recreation: Option<RequiresRecreation>,
    source: &str,
    entity: &str,
) -> ChangeDetail {
    ChangeDetail {
        attribute: attribute.to_string(),
        name: name.map(str::to_string),
        requires_recreation,
        evaluation: Some("Dynamic".to_string()),
        change_source: Some(source.to_string()),
        causing_entity: Some(entity.to_string()),
        before: None,
        after: None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn t(text: &str) -> Template {
        Template::parse(text.as_bytes(), &Arc::from("t.yml")).unwrap()
    }

    fn one(changes: &[ResourceChange], id: &str) -> ResourceChange {
        changes
            .iter()
            .find(|c| c.logical_id == id)
            .unwrap_or_else(|| panic!("no change for {id}: {changes:#?}"))
            .clone()
    }

    fn names(c: &ResourceChange) -> Vec<&str> {
        c.details.iter().filter_map(|d| d.name.as_deref()).collect()
    }

    const BASE: &str = r#"
Parameters:
  Cidr: {Type: String}
  Env: {Type: String}
  Password: {Type: String, NoEcho: true}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  IsProdToo: !And [!Condition IsProd, !Equals [a, a]]
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties:
      CidrBlock: !Ref Cidr
      EnableDnsSupport: true
      Tags:
        - {Key: env, Value: !Ref Env}
        - {Key: team, Value: core}
  Subnet:
    Type: AWS::EC2::Subnet
    Properties:
      VpcId: !Ref Vpc
      CidrBlock: 10.0.0.0/24
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "${Env}-data"
  Db:
    Type: AWS::RDS::DBInstance
    Properties:
      MasterUserPassword: !Ref Password
      AllocatedStorage: "20"
  Topic:
    Type: AWS::SNS::Topic
"#;

    #[test]
    fn new_and_removed_stacks() {
        let a = t(BASE);
        let added = resource_changes(None, Some(&a), &[]);
        let ids: Vec<_> = added.iter().map(|c| c.logical_id.as_str()).collect();
        assert_eq!(ids, ["Bucket", "Db", "Subnet", "Topic", "Vpc"]);
        assert!(added.iter().all(|c| c.action == ResourceAction::Add
            && c.replacement == Replacement::Unknown
            && c.details.is_empty()));
        let removed = resource_changes(Some(&a), None, &[]);
        assert_eq!(removed.len(), 5);
        assert!(removed.iter().all(|c| c.action == ResourceAction::Remove));
        assert_eq!(one(&removed, "Vpc").resource_type, "AWS::EC2::VPC");
        assert!(resource_changes(None, None, &[]).is_empty());
    }

    #[test]
    fn equal_templates_have_no_changes() {
        let a = t(BASE);
        let b = t(&BASE.replace("EnableDnsSupport: true", "EnableDnsSupport:   true # yes"));
        assert!(resource_changes(Some(&a), Some(&b), &[]).is_empty());
        // Long and short forms are the same.
        let c = t(&BASE.replace("VpcId: !Ref Vpc", "VpcId: {Ref: Vpc}"));
        assert!(resource_changes(Some(&a), Some(&c), &[]).is_empty());
    }

    #[test]
    fn adds_removes_and_sorting() {
        let a = t(BASE);
        let b = t(&BASE.replace(
            "  Topic:\n    Type: AWS::SNS::Topic\n",
            "  Queue:\n    Type: AWS::SQS::Queue\n",
        ));
        let c = resource_changes(Some(&a), Some(&b), &[]);
        let got: Vec<_> = c
            .iter()
            .map(|c| (c.logical_id.as_str(), c.action))
            .collect();
        assert_eq!(
            got,
            [
                ("Queue", ResourceAction::Add),
                ("Topic", ResourceAction::Remove)
            ]
        );
    }

    #[test]
    fn create_only_property_change_predicts_replacement() {
        let a = t(BASE);
        let b = t(&BASE.replace("CidrBlock: 10.0.0.0/24", "CidrBlock: 10.0.1.0/24"));
        let c = resource_changes(Some(&a), Some(&b), &[]);
        assert_eq!(c.len(), 1);
        let s = &c[0];
        assert_eq!(s.logical_id, "Subnet");
        assert_eq!(s.action, ResourceAction::Modify);
        assert_eq!(s.replacement, Replacement::True);
        assert_eq!(s.replacement_source, ReplacementSource::Predicted);
        assert_eq!(s.scope, ["Properties"]);
        let d = &s.details[0];
        assert_eq!(d.attribute, "Properties");
        assert_eq!(d.name.as_deref(), Some("CidrBlock"));
        assert_eq!(d.requires_recreation, Some(RequiresRecreation::Always));
        assert_eq!(d.evaluation.as_deref(), Some("Static"));
        assert_eq!(d.change_source.as_deref(), Some("DirectModification"));
        assert_eq!(d.before.as_deref(), Some(r#""10.0.0.0/24""#));
        assert_eq!(d.after.as_deref(), Some(r#""10.0.1.0/24""#));
    }

    #[test]
    fn list_changes_are_aligned_and_tags_are_their_own_scope() {
        let a = t(BASE);
        // Insert a tag before the others and change the value of an existing one.
        let b = t(&BASE.replace(
            "        - {Key: env, Value: !Ref Env}\n        - {Key: team, Value: core}\n",
            "        - {Key: cost, Value: \"42\"}\n        - {Key: env, Value: !Ref Env}\n        - {Key: team, Value: platform}\n",
        ));
        let c = resource_changes(Some(&a), Some(&b), &[]);
        let vpc = one(&c, "Vpc");
        assert_eq!(vpc.scope, ["Tags"]);
        assert_eq!(vpc.replacement, Replacement::False);
        assert_eq!(names(&vpc), ["Tags[0]", "Tags[2].Value"]);
        assert!(vpc.details.iter().all(|d| d.attribute == "Tags"));
        assert_eq!(vpc.details[0].before, None);
        assert_eq!(
            vpc.details[0].after.as_deref(),
            Some(r#"{"Key":"cost","Value":"42"}"#)
        );
        assert_eq!(vpc.details[1].before.as_deref(), Some(r#""core""#));
        // Removing an element reports its old index.
        let d = t(&BASE.replace("        - {Key: env, Value: !Ref Env}\n", ""));
        let vpc = one(&resource_changes(Some(&a), Some(&d), &[]), "Vpc");
        assert_eq!(names(&vpc), ["Tags[0]"]);
        assert_eq!(vpc.details[0].after, None);
    }

    #[test]
    fn nested_properties_and_added_keys() {
        let a = t(BASE);
        let b = t(&BASE.replace(
            "      AllocatedStorage: \"20\"\n",
            "      AllocatedStorage: \"20\"\n      Engine: postgres\n      ProcessorFeatures:\n        - {Name: coreCount, Value: \"4\"}\n",
        ));
        let c = t(&BASE.replace(
            "      AllocatedStorage: \"20\"\n",
            "      AllocatedStorage: \"20\"\n      Engine: mysql\n      ProcessorFeatures:\n        - {Name: coreCount, Value: \"8\"}\n",
        ));
        let added = one(&resource_changes(Some(&a), Some(&b), &[]), "Db");
        assert_eq!(names(&added), ["Engine", "ProcessorFeatures"]);
        assert_eq!(added.replacement, Replacement::Conditional);
        let changed = one(&resource_changes(Some(&b), Some(&c), &[]), "Db");
        assert_eq!(names(&changed), ["Engine", "ProcessorFeatures[0].Value"]);
        assert_eq!(
            changed.details[0].requires_recreation,
            Some(RequiresRecreation::Conditionally)
        );
        assert_eq!(
            changed.details[1].requires_recreation,
            Some(RequiresRecreation::Never)
        );
        assert_eq!(changed.replacement, Replacement::Conditional);
        assert_eq!(member_path("A", "x.y"), r#"A["x.y"]"#);
    }

    #[test]
    fn type_change_is_a_replacing_modify() {
        let a = t(BASE);
        let b = t(&BASE.replace(
            "  Topic:\n    Type: AWS::SNS::Topic\n",
            "  Topic:\n    Type: AWS::SQS::Queue\n",
        ));
        let c = resource_changes(Some(&a), Some(&b), &[]);
        assert_eq!(c.len(), 1);
        let topic = &c[0];
        assert_eq!(topic.action, ResourceAction::Modify);
        assert_eq!(topic.resource_type, "AWS::SQS::Queue");
        assert_eq!(topic.replacement, Replacement::True);
        assert_eq!(topic.scope, ["Type"]);
        assert_eq!(topic.details[0].attribute, "Type");
        assert_eq!(
            topic.details[0].before.as_deref(),
            Some(r#""AWS::SNS::Topic""#)
        );
    }

    #[test]
    fn other_attributes() {
        let a = t(BASE);
        let b = t(&BASE.replace(
            "  Topic:\n    Type: AWS::SNS::Topic\n",
            "  Topic:\n    Type: AWS::SNS::Topic\n    DeletionPolicy: Retain\n    DependsOn: Bucket\n    Condition: IsProd\n    Metadata: {Note: {Text: hi}}\n",
        ));
        let c = t(&BASE.replace(
            "  Topic:\n    Type: AWS::SNS::Topic\n",
            "  Topic:\n    Type: AWS::SNS::Topic\n    DeletionPolicy: Retain\n    DependsOn: [Bucket]\n    Condition: IsProd\n    Metadata: {Note: {Text: bye}}\n",
        ));
        let topic = one(&resource_changes(Some(&a), Some(&b), &[]), "Topic");
        assert_eq!(
            topic.scope,
            ["Metadata", "DeletionPolicy", "DependsOn", "Condition"]
        );
        assert_eq!(topic.replacement, Replacement::False);
        assert!(
            topic
                .details
                .iter()
                .all(|d| d.requires_recreation == Some(RequiresRecreation::Never))
        );
        // `DependsOn: X` and `DependsOn: [X]` are the same; Metadata is compared deeply.
        let topic = one(&resource_changes(Some(&b), Some(&c), &[]), "Topic");
        assert_eq!(topic.scope, ["Metadata"]);
        assert_eq!(names(&topic), ["Note.Text"]);
        assert_eq!(topic.details[0].after.as_deref(), Some(r#""bye""#));
    }

    #[test]
    fn changed_parameter_predicts_replacement_and_spreads() {
        let a = t(BASE);
        let c = resource_changes(Some(&a), Some(&a), &["Cidr".to_string()]);
        let vpc = one(&c, "Vpc");
        assert_eq!(vpc.action, ResourceAction::Modify);
        assert_eq!(vpc.replacement, Replacement::True);
        let d = &vpc.details[0];
        assert_eq!(d.name.as_deref(), Some("CidrBlock"));
        assert_eq!(d.evaluation.as_deref(), Some("Dynamic"));
        assert_eq!(d.change_source.as_deref(), Some("ParameterReference"));
        assert_eq!(d.causing_entity.as_deref(), Some("Cidr"));
        assert_eq!(d.requires_recreation, Some(RequiresRecreation::Always));
        assert_eq!((d.before.as_ref(), d.after.as_ref()), (None, None));
        // The subnet refers to the replaced VPC in a create-only property: replaced too.
        let subnet = one(&c, "Subnet");
        assert_eq!(subnet.replacement, Replacement::True);
        let d = &subnet.details[0];
        assert_eq!(d.name.as_deref(), Some("VpcId"));
        assert_eq!(d.change_source.as_deref(), Some("ResourceReference"));
        assert_eq!(d.causing_entity.as_deref(), Some("Vpc"));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn changed_parameter_in_sub_tags_and_conditions() {
        let a = t(&BASE.replace(
            "      BucketName: !Sub \"${Env}-data\"\n",
            "      BucketName: !Sub \"${Env}-data\"\n      VersioningConfiguration: !If [IsProdToo, {Status: Enabled}, !Ref AWS::NoValue]\n",
        ));
        let c = resource_changes(Some(&a), Some(&a), &["Env".to_string()]);
        let bucket = one(&c, "Bucket");
        assert_eq!(names(&bucket), ["BucketName", "VersioningConfiguration"]);
        assert_eq!(bucket.replacement, Replacement::True);
        assert_eq!(
            bucket.details[1].requires_recreation,
            Some(RequiresRecreation::Never)
        );
        assert_eq!(bucket.details[1].causing_entity.as_deref(), Some("Env"));
        let vpc = one(&c, "Vpc");
        assert_eq!(vpc.scope, ["Tags"]);
        assert_eq!(names(&vpc), ["Tags[0].Value"]);
        assert_eq!(vpc.replacement, Replacement::False);
        // Unchanged parameters and parameters the template does not declare change nothing.
        assert!(resource_changes(Some(&a), Some(&a), &["Nope".to_string()]).is_empty());
    }

    #[test]
    fn conditionally_replaced_resources_spread_conditionally() {
        let text = r#"
Parameters:
  Engine: {Type: String}
Resources:
  Db:
    Type: AWS::RDS::DBInstance
    Properties:
      Engine: !Ref Engine
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: !Sub "${Db}-cpu"
"#;
        let a = t(text);
        let c = resource_changes(Some(&a), Some(&a), &["Engine".to_string()]);
        assert_eq!(one(&c, "Db").replacement, Replacement::Conditional);
        let alarm = one(&c, "Alarm");
        assert_eq!(alarm.details[0].causing_entity.as_deref(), Some("Db"));
        assert_eq!(
            alarm.details[0].requires_recreation,
            Some(RequiresRecreation::Conditionally)
        );
        assert_eq!(alarm.replacement, Replacement::Conditional);
    }

    #[test]
    fn values_fed_by_no_echo_parameters_are_masked() {
        let a = t(BASE);
        let b = t(&BASE.replace(
            "MasterUserPassword: !Ref Password",
            "MasterUserPassword: !Sub \"${Password}x\"",
        ));
        let db = one(&resource_changes(Some(&a), Some(&b), &[]), "Db");
        assert_eq!(db.details[0].before.as_deref(), Some(MASK));
        assert_eq!(db.details[0].after.as_deref(), Some(MASK));
        // Not masked: a literal (the template shows it anyway).
        let c = t(&BASE.replace(
            "MasterUserPassword: !Ref Password",
            "MasterUserPassword: hunter2",
        ));
        let db = one(&resource_changes(Some(&a), Some(&c), &[]), "Db");
        assert_eq!(db.details[0].before.as_deref(), Some(MASK));
        assert_eq!(db.details[0].after.as_deref(), Some(r#""hunter2""#));
        // A changed NoEcho parameter: a dynamic detail, with no values at all.
        let db = one(
            &resource_changes(Some(&a), Some(&a), &["Password".to_string()]),
            "Db",
        );
        assert_eq!(db.details[0].causing_entity.as_deref(), Some("Password"));
        assert_eq!(
            (db.details[0].before.as_ref(), db.details[0].after.as_ref()),
            (None, None)
        );
        assert_eq!(db.replacement, Replacement::False);
    }

    #[test]
    fn unknown_types() {
        let text = "Resources:\n  C:\n    Type: Custom::Thing\n    Properties: {A: 1}\n";
        let a = t(text);
        let b = t(&text.replace("A: 1", "A: 2"));
        let c = resource_changes(Some(&a), Some(&b), &[]);
        assert_eq!(c[0].replacement, Replacement::Unknown);
        assert_eq!(c[0].details[0].requires_recreation, None);
        let m = t(&text.replace("Properties:", "Metadata: {x: 1}\n    Properties:"));
        let c = resource_changes(Some(&a), Some(&m), &[]);
        assert_eq!(c[0].replacement, Replacement::False);
    }
}
