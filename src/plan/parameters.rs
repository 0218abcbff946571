//! A stack's parameters in a plan: the values CloudFormation will use (set, or the template's
//! defaults), and what changes from the deployed values — secrets masked, values known only
//! after apply marked.

use std::collections::{BTreeMap, BTreeSet};

use super::inputs::Resolved;
use super::model::ParameterChange;
use crate::aws::cfn::StackInfo;
use crate::secrets::{Masker, Value};
use crate::template::Template;

/// The parameter values CloudFormation will use: those set, and template defaults for the rest.
pub(super) fn effective_parameters(
    resolved: &Resolved,
    template: Option<&Template>,
) -> BTreeMap<String, Value> {
    let mut out: BTreeMap<String, Value> = resolved
        .params
        .iter()
        .filter_map(|p| p.value.clone().map(|v| (p.name.clone(), v)))
        .collect();
    if let Some(t) = template {
        for (name, decl) in &t.parameters {
            if let (false, Some(d)) = (out.contains_key(name), &decl.default) {
                out.insert(
                    name.clone(),
                    Value {
                        text: d.clone(),
                        secret: decl.no_echo,
                    },
                );
            }
        }
    }
    out
}

/// The parameter changes between what is deployed and what is planned. A deployed value that
/// holds a secret (one taken from a secret output before it was known to be one) is masked.
pub(super) fn parameter_changes(
    resolved: &Resolved,
    deployed: Option<&StackInfo>,
    template: Option<&Template>,
    masker: &Masker,
) -> Vec<ParameterChange> {
    let effective = effective_parameters(resolved, template);
    let mut out = Vec::new();
    let mut names: BTreeSet<&String> = effective.keys().collect();
    if let Some(s) = deployed {
        names.extend(s.parameters.keys());
    }
    for name in names {
        let after = effective.get(name);
        let before = deployed.and_then(|s| s.parameters.get(name));
        let r = resolved.params.iter().find(|p| &p.name == name);
        let secret = after.is_some_and(|v| v.secret)
            || before.is_some_and(|b| b == crate::desired::MASK || masker.holds_secret(b));
        let known_after_apply = r.is_some_and(|r| r.known_after_apply);
        let pending = r.is_some_and(|r| r.value.is_none());
        let same = match (before, after) {
            (Some(b), Some(a)) => !secret && *b == a.text,
            _ => false,
        };
        if same && !known_after_apply {
            continue;
        }
        out.push(ParameterChange {
            name: name.clone(),
            before: before.map(|b| {
                if secret {
                    crate::desired::MASK.to_string()
                } else {
                    b.clone()
                }
            }),
            after: if pending {
                None
            } else {
                after.map(Value::shown)
            },
            secret,
            known_after_apply: known_after_apply || pending,
            expression: r.map(|r| r.expression.clone()),
        });
    }
    out
}
