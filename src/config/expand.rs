//! What a pipeline file says in short, written out before anything else reads it: a stack with
//! `instances` (or `count`) becomes one stack per instance, keyed `<key>-<instance>`, with
//! `${instance}` filled in; a gate's `after` stacks become `needs` of its `before` stacks, so
//! the deployment order has the gate's place in it. Problems are reported where they were
//! written.

use std::sync::Arc;

use indexmap::IndexMap;

use super::model::{InstanceDef, ParamValue, PipelineFile, StackDef};
use crate::diag::{Diagnostic, Loc};
use crate::suggest;
use crate::yaml::Spanned;

/// What `${instance}` is written as.
const INSTANCE: &str = "${instance}";

fn name_ok(n: &str) -> bool {
    !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Expands instances and gates of a parsed pipeline file in place.
pub(crate) fn expand(file: &Arc<str>, def: &mut PipelineFile, diags: &mut Vec<Diagnostic>) {
    expand_instances(file, def, diags);
    expand_gates(file, def, diags);
}

fn expand_instances(file: &Arc<str>, def: &mut PipelineFile, diags: &mut Vec<Diagnostic>) {
    if !def
        .stacks
        .values()
        .any(|s| s.instances.is_some() || s.count.is_some())
    {
        return;
    }
    let original: Vec<String> = def.stacks.keys().map(|k| k.value.clone()).collect();
    let mut out: IndexMap<Spanned<String>, StackDef> = IndexMap::new();
    for (key, mut stack) in std::mem::take(&mut def.stacks) {
        let instances: Vec<(Spanned<String>, InstanceDef)> = match (
            stack.instances.take(),
            stack.count.take(),
        ) {
            (None, None) => {
                out.insert(key, stack);
                continue;
            }
            (Some(_), Some(count)) => {
                diags.push(
                        Diagnostic::error(format!(
                            "stack `{}` has both `instances` and `count`",
                            key.value
                        ))
                        .at(Loc::new(file, count.span))
                        .help("name the instances with `instances`, or number them with `count`, not both"),
                    );
                continue;
            }
            (Some(named), None) => named.into_iter().collect(),
            (None, Some(count)) => {
                if count.value == 0 {
                    diags.push(
                        Diagnostic::error(format!("stack `{}` has `count: 0`", key.value))
                            .at(Loc::new(file, count.span))
                            .help("give at least 1, or switch the stack off with `enabled: false`"),
                    );
                    continue;
                }
                (1..=count.value)
                    .map(|i| {
                        (
                            Spanned::new(i.to_string(), count.span),
                            InstanceDef::default(),
                        )
                    })
                    .collect()
            }
        };
        if instances.is_empty() {
            diags.push(
                Diagnostic::error(format!("stack `{}` has no instances", key.value))
                    .at(Loc::new(file, key.span))
                    .help("name at least one under `instances:`, or leave `instances` out"),
            );
            continue;
        }
        for (name, inst) in instances {
            let unit_key = format!("{}-{}", key.value, name.value);
            if !name_ok(&name.value) {
                diags.push(
                    Diagnostic::error(format!(
                        "instance name `{}` of stack `{}` may only use letters, digits and hyphens",
                        name.value, key.value
                    ))
                    .at(Loc::new(file, name.span)),
                );
                continue;
            }
            if original.contains(&unit_key) || out.contains_key(unit_key.as_str()) {
                diags.push(
                    Diagnostic::error(format!(
                        "instance `{}` of stack `{}` makes the stack key `{unit_key}`, which another stack has",
                        name.value, key.value
                    ))
                    .at(Loc::new(file, name.span))
                    .help("rename the instance or the other stack"),
                );
                continue;
            }
            let mut s = stack.clone();
            for (k, v) in inst.parameters {
                s.parameters.insert(k, v);
            }
            for (k, v) in inst.tags {
                s.tags.insert(k, v);
            }
            if inst.enabled.is_some() {
                s.enabled = inst.enabled;
            }
            if inst.description.is_some() {
                s.description = inst.description;
            }
            fill_instance(&mut s, &name.value);
            out.insert(Spanned::new(unit_key, name.span), s);
        }
    }
    def.stacks = out;
}

/// `${instance}` → the instance's name, wherever a stack may use it.
fn fill_instance(s: &mut StackDef, name: &str) {
    let fill = |t: &str| t.replace(INSTANCE, name);
    for v in s.parameters.values_mut() {
        v.value = match &v.value {
            ParamValue::Scalar(t) => ParamValue::Scalar(fill(t)),
            ParamValue::List(items) => ParamValue::List(items.iter().map(|t| fill(t)).collect()),
        };
    }
    for v in s.tags.values_mut() {
        v.value = fill(&v.value);
    }
    if let Some(n) = &mut s.stack_name {
        n.value = fill(&n.value);
    }
    s.template.value = fill(&s.template.value);
    for n in &mut s.needs {
        n.value = fill(&n.value);
    }
}

fn expand_gates(file: &Arc<str>, def: &mut PipelineFile, diags: &mut Vec<Diagnostic>) {
    let keys: Vec<String> = def.stacks.keys().map(|k| k.value.clone()).collect();
    let mut additions: Vec<(String, Spanned<String>)> = Vec::new();
    for (gate, g) in &def.gates {
        if !name_ok(&gate.value) {
            diags.push(
                Diagnostic::error(format!(
                    "gate name `{}` may only use letters, digits and hyphens",
                    gate.value
                ))
                .at(Loc::new(file, gate.span)),
            );
        }
        if g.before.is_empty() {
            diags.push(
                Diagnostic::error(format!("gate `{}` holds back no stack", gate.value))
                    .at(Loc::new(file, gate.span))
                    .help("list the stacks that wait for it under `before:`"),
            );
        }
        let known = |s: &Spanned<String>, diags: &mut Vec<Diagnostic>| {
            if keys.contains(&s.value) {
                return true;
            }
            let near = suggest::nearest(&s.value, keys.iter().map(String::as_str));
            diags.push(
                Diagnostic::error(format!(
                    "gate `{}` names `{}`, which is not a stack of this pipeline",
                    gate.value, s.value
                ))
                .at(Loc::new(file, s.span))
                .label_opt(near.map(|n| format!("did you mean `{n}`?"))),
            );
            false
        };
        let after: Vec<&Spanned<String>> = g.after.iter().filter(|s| known(s, diags)).collect();
        for b in &g.before {
            if !known(b, diags) {
                continue;
            }
            for a in &after {
                if a.value == b.value {
                    diags.push(
                        Diagnostic::error(format!(
                            "gate `{}` has `{}` both before and after it",
                            gate.value, a.value
                        ))
                        .at(Loc::new(file, b.span)),
                    );
                    continue;
                }
                additions.push((b.value.clone(), (*a).clone()));
            }
        }
    }
    for (before, after) in additions {
        if let Some(s) = def.stacks.get_mut(before.as_str())
            && !s.needs.iter().any(|n| n.value == after.value)
        {
            s.needs.push(after);
        }
    }
}
