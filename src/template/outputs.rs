//! Which outputs of a stack may change in an update, and why: so that only the stacks taking
//! those outputs are affected, not every stack downstream.
//!
//! An output may change when
//!
//! - it is new, or its `Value` (or `Condition`) is written differently;
//! - its value refers (`Ref`, `${Param}`) to a parameter whose value changes;
//! - it refers (`Ref`, `Fn::GetAtt`, `${Res.Attr}`) to a resource that is added, removed,
//!   replaced or may be replaced, or whose change is decided only while it runs (`Dynamic`);
//! - it reads an attribute (`Fn::GetAtt Res.Attr`) of a resource modified in place whose changed
//!   properties include one of the attribute's name (`Port` for `Endpoint.Port`): an update in
//!   place keeps a resource's physical id (`Ref`) and its other attributes;
//! - its condition depends on a changed parameter, or it imports a value (`Fn::ImportValue`),
//!   which formwork does not follow here.
//!
//! The first reason found is given, in words: "Cluster is replaced".

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::Template;
use super::change::{Replacement, ResourceAction, ResourceChange};
use super::refs::{Reference, references};

/// The outputs of `after` that may change from `before` (`None`: a new stack, all of them),
/// with why, given the parameters whose values change and the resource changes of the update.
pub fn changing_outputs(
    before: Option<&Template>,
    after: &Template,
    changed_parameters: &BTreeSet<String>,
    resources: &[ResourceChange],
) -> BTreeMap<String, String> {
    let new_outputs = after.value().get("Outputs").and_then(Value::as_object);
    let old_outputs = before
        .and_then(|b| b.value().get("Outputs"))
        .and_then(Value::as_object);
    let conditions = after.value().get("Conditions").and_then(Value::as_object);
    let by_id: BTreeMap<&str, &ResourceChange> = resources
        .iter()
        .map(|r| (r.logical_id.as_str(), r))
        .collect();
    let mut out = BTreeMap::new();
    for (name, decl) in new_outputs.into_iter().flatten() {
        let cause = match old_outputs.and_then(|o| o.get(name)) {
            None => Some("it is new".to_string()),
            Some(old) if old.get("Value") != decl.get("Value") => {
                Some("its value is written differently".to_string())
            }
            Some(old) if old.get("Condition") != decl.get("Condition") => {
                Some("its condition is written differently".to_string())
            }
            Some(_) => value_cause(after, name, decl, changed_parameters, &by_id)
                .or_else(|| condition_cause(decl, conditions, changed_parameters)),
        };
        if let Some(c) = cause {
            out.insert(name.clone(), c);
        }
    }
    out
}

/// Why the value of output `name` (declared as `decl` in `template`) may change, from what it
/// refers to.
fn value_cause(
    template: &Template,
    name: &str,
    decl: &Value,
    changed_parameters: &BTreeSet<String>,
    resources: &BTreeMap<&str, &ResourceChange>,
) -> Option<String> {
    let value = decl.get("Value")?;
    let within = format!("Outputs.{name}");
    if template.imports().iter().any(|i| i.within == within) {
        return Some("it imports a value (Fn::ImportValue)".to_string());
    }
    let mut refs = Vec::new();
    references(value, &mut refs);
    refs.iter().find_map(|r| match r {
        Reference::Ref(name) if changed_parameters.contains(name) => {
            Some(format!("parameter {name} changes"))
        }
        Reference::Ref(name) => resources
            .get(name.as_str())
            .and_then(|c| identity_cause(name, c)),
        Reference::GetAtt(res, attr) => resources.get(res.as_str()).and_then(|c| {
            identity_cause(res, c)
                .or_else(|| attribute_cause(res, attr, c))
                .or_else(|| nested_output_cause(res, attr, c))
        }),
        Reference::Condition(_) => None,
    })
}

/// Why a resource's physical id may change: it is added, removed, (maybe) replaced, or changed
/// in a way decided only at apply.
fn identity_cause(id: &str, c: &ResourceChange) -> Option<String> {
    match (c.action, c.replacement) {
        (ResourceAction::Add, _) => Some(format!("{id} is added")),
        (ResourceAction::Remove, _) => Some(format!("{id} is removed")),
        (ResourceAction::Dynamic, _) => Some(format!("{id} changes in a way decided at apply")),
        (_, Replacement::True) => Some(format!("{id} is replaced")),
        (_, Replacement::Conditional) => Some(format!("{id} may be replaced")),
        _ => None,
    }
}

/// Why attribute `attr` of resource `id`, modified in place, may change: a changed property of
/// the same name as the attribute's last part.
fn attribute_cause(id: &str, attr: &str, c: &ResourceChange) -> Option<String> {
    let last = attr.rsplit('.').next().unwrap_or(attr);
    c.details.iter().find_map(|d| {
        let name = d.name.as_deref()?;
        let top = name.split(['.', '[']).next().unwrap_or(name);
        (top == last).then(|| format!("{id}.{attr} follows its changed property {top}"))
    })
}

/// Why output `attr` (`Outputs.NAME`) of nested stack `id`, updated in place, may change: the
/// nested stack's template or parameters change, and with them, possibly, its outputs.
fn nested_output_cause(id: &str, attr: &str, c: &ResourceChange) -> Option<String> {
    (attr.starts_with("Outputs.")
        && c.resource_type == super::nested::STACK_TYPE
        && c.action == ResourceAction::Modify)
        .then(|| format!("{id}.{attr} may change with the nested stack's update"))
}

/// Why an output's condition may change: it depends on a changed parameter.
fn condition_cause(
    decl: &Value,
    conditions: Option<&serde_json::Map<String, Value>>,
    changed_parameters: &BTreeSet<String>,
) -> Option<String> {
    let name = decl.get("Condition")?.as_str()?;
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    while let Some(c) = todo.pop() {
        if !seen.insert(c.clone()) {
            continue;
        }
        let Some(def) = conditions.and_then(|m| m.get(&c)) else {
            continue;
        };
        let mut refs = Vec::new();
        references(def, &mut refs);
        for r in refs {
            match r {
                Reference::Ref(p) if changed_parameters.contains(&p) => {
                    return Some(format!("its condition {name} depends on parameter {p}"));
                }
                Reference::Condition(other) => todo.push(other),
                _ => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::template::diff::resource_changes;

    const BEFORE: &str = r#"
Parameters:
  Port: {Type: Number, Default: 6379}
  Size: {Type: String}
Conditions:
  Big: !Equals [!Ref Size, large]
Resources:
  Group:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: g
      SecurityGroupIngress:
        - {IpProtocol: tcp, FromPort: 443, ToPort: 443, CidrIp: 0.0.0.0/0}
  Setting:
    Type: AWS::SSM::Parameter
    Properties:
      Name: /app/setting
      Type: String
      Value: !Ref Port
  Topic:
    Type: AWS::SNS::Topic
Outputs:
  GroupId:
    Value: !GetAtt Group.GroupId
  GroupRef:
    Value: !Ref Group
  SettingName:
    Value: !Ref Setting
  SettingValue:
    Value: !GetAtt Setting.Value
  Url:
    Value: !Sub 'redis://${Setting}:${Port}'
  TopicArn:
    Value: !Ref Topic
  BigOnly:
    Condition: Big
    Value: x
"#;

    fn parse(text: &str) -> Template {
        Template::parse(text.as_bytes(), &Arc::from("t.yml")).unwrap()
    }

    fn changing(before: &Template, after: &Template, params: &[&str]) -> Vec<(String, String)> {
        let params: BTreeSet<String> = params.iter().map(|p| p.to_string()).collect();
        let changed: Vec<String> = params.iter().cloned().collect();
        let resources = resource_changes(Some(before), Some(after), &changed);
        changing_outputs(Some(before), after, &params, &resources)
            .into_iter()
            .collect()
    }

    #[test]
    fn an_in_place_rule_edit_changes_no_output() {
        let before = parse(BEFORE);
        let after = parse(&BEFORE.replace("CidrIp: 0.0.0.0/0", "CidrIp: 10.0.0.0/8"));
        assert_eq!(changing(&before, &after, &[]), []);
    }

    #[test]
    fn a_changed_parameter_reaches_the_outputs_that_follow_it() {
        let before = parse(BEFORE);
        // The value is updated in place: the value attribute and the output using the
        // parameter change, the name (its Ref) does not.
        let got = changing(&before, &before, &["Port"]);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["SettingValue", "Url"], "{got:?}");
        assert_eq!(got[0].1, "Setting.Value follows its changed property Value");
        assert_eq!(got[1].1, "parameter Port changes");
        let got = changing(&before, &before, &["Size"]);
        assert_eq!(
            got,
            [(
                "BigOnly".to_string(),
                "its condition Big depends on parameter Size".to_string()
            )]
        );
    }

    #[test]
    fn a_replaced_resource_changes_every_output_referring_to_it() {
        let before = parse(BEFORE);
        // Name is create-only: the parameter is replaced.
        let after = parse(&BEFORE.replace("Name: /app/setting", "Name: /app/other"));
        let got = changing(&before, &after, &[]);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["SettingName", "SettingValue", "Url"], "{got:?}");
        assert!(
            got.iter().all(|(_, why)| why == "Setting is replaced"),
            "{got:?}"
        );
        // A new output, and one written differently.
        let after = parse(&BEFORE.replace(
            "  TopicArn:\n    Value: !Ref Topic\n",
            "  TopicArn:\n    Value: !GetAtt Topic.TopicArn\n  TopicName:\n    Value: !GetAtt Topic.TopicName\n",
        ));
        let got = changing(&before, &after, &[]);
        assert_eq!(
            got,
            [
                (
                    "TopicArn".to_string(),
                    "its value is written differently".to_string()
                ),
                ("TopicName".to_string(), "it is new".to_string()),
            ]
        );
    }
}
