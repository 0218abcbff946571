//! From the units a change touches to the units it reaches: a unit that takes an output (by
//! `${stack.Output}` or `Fn::ImportValue`) or an SSM parameter of an affected unit is affected
//! only when that output or parameter may change, and the reason says why ("input
//! ${db.Endpoint} may change: Cluster is replaced"). Units are visited in dependency order, so
//! that what may change in a unit is known from what may change upstream of it.
//!
//! What may change in an updated unit is worked out from its two templates
//! ([`crate::template::outputs`]); a new unit, one whose template is fetched by URL, one whose
//! imported values may change, or one of an environment whose base config did not validate, may
//! change everything.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{AffectedUnit, Change, Reason, unit_row};
use crate::config::expr::Reference;
use crate::desired::{DependencyKind, DesiredEnvironment, Unit};
use crate::template::Template;
use crate::template::change::{Replacement, ResourceAction, ResourceChange};
use crate::template::{diff, outputs};

/// What may change in an affected unit, each with why.
enum Changing {
    /// Everything, for one reason.
    All(String),
    Some {
        /// Outputs that may change.
        outputs: BTreeMap<String, String>,
        /// Resources that change (added, removed, modified, replaced).
        resources: BTreeMap<String, String>,
    },
}

impl Changing {
    /// Why output `name` may change; `None` when it does not.
    fn output(&self, name: &str) -> Option<String> {
        match self {
            Changing::All(why) => Some(why.clone()),
            Changing::Some { outputs, .. } => outputs.get(name).cloned(),
        }
    }

    /// Why resource `id` may change; `None` when it does not.
    fn resource(&self, id: &str) -> Option<String> {
        match self {
            Changing::All(why) => Some(why.clone()),
            Changing::Some { resources, .. } => resources.get(id).cloned(),
        }
    }
}

/// The units `direct` (changed themselves, by stack key) and every unit reached from them, by
/// stack key. `before` is the environment at the base revision, when it had one.
pub(super) fn reach(
    before: Option<&DesiredEnvironment>,
    after: &DesiredEnvironment,
    mut rows: BTreeMap<String, AffectedUnit>,
) -> BTreeMap<String, AffectedUnit> {
    // Only what units take values from needs working out.
    let sources: BTreeSet<&str> = after
        .units
        .values()
        .flat_map(|u| &u.dependencies)
        .filter(|d| !matches!(d.kind, DependencyKind::Needs | DependencyKind::StackName))
        .map(|d| d.stack.as_str())
        .collect();
    let mut changing: HashMap<String, Changing> = HashMap::new();
    for key in after.in_order() {
        let u = &after.units[key];
        let inputs = inputs_that_may_change(u, &changing);
        if !rows.contains_key(key) && !inputs.is_empty() {
            rows.insert(
                key.to_string(),
                unit_row(after, u, Change::Dependant, Vec::new()),
            );
        }
        let Some(row) = rows.get_mut(key) else {
            continue;
        };
        for r in &inputs {
            if !row.reasons.contains(r) {
                row.reasons.push(r.clone());
            }
        }
        if sources.contains(key) {
            let old = before.and_then(|b| b.units.get(key));
            changing.insert(key.to_string(), what_may_change(old, u, row));
        }
    }
    rows
}

/// The inputs of `u` from affected units that may change, as reasons.
fn inputs_that_may_change(u: &Unit, changing: &HashMap<String, Changing>) -> Vec<Reason> {
    let mut out = Vec::new();
    for dep in &u.dependencies {
        let Some(ch) = changing.get(&dep.stack) else {
            continue;
        };
        let src = &dep.stack;
        let (output, reference, why) = match &dep.kind {
            DependencyKind::Output { output } => {
                (output, format!("${{{src}.{output}}}"), ch.output(output))
            }
            DependencyKind::Import { export, output } => (
                output,
                format!("Fn::ImportValue {export}"),
                ch.output(output),
            ),
            DependencyKind::SsmParameter { name, resource } => {
                (resource, format!("${{ssm:{name}}}"), ch.resource(resource))
            }
            DependencyKind::Needs | DependencyKind::StackName => continue,
        };
        let reason = why.map(|why| Reason::Input {
            stack: src.clone(),
            output: output.clone(),
            reference,
            because: Some(why),
        });
        if let Some(r) = reason
            && !out.contains(&r)
        {
            out.push(r);
        }
    }
    out
}

/// What may change in affected unit `u` (`old`: as it was at the base revision).
fn what_may_change(old: Option<&Unit>, u: &Unit, row: &AffectedUnit) -> Changing {
    if row.reasons.contains(&Reason::BaseInvalid) {
        return Changing::All(format!(
            "the base config of environment `{}` did not validate",
            u.environment
        ));
    }
    let (Some(old), Change::Modified | Change::Dependant) = (old, row.change) else {
        return Changing::All(format!("{} is new", u.stack));
    };
    // Where an imported value goes is not followed through the template: all may change.
    if let Some(import) = row.reasons.iter().find_map(|r| match r {
        Reason::Input { reference, .. } if reference.starts_with("Fn::ImportValue ") => {
            Some(reference)
        }
        _ => None,
    }) {
        return Changing::All(format!("{import} may change"));
    }
    let (Some(bt), Some(at)) = (old.template.parsed(), u.template.parsed()) else {
        return Changing::All(format!("the template of {} is fetched by URL", u.stack));
    };
    let changed = changed_parameters(old, bt, u, at, &row.reasons);
    let list: Vec<String> = changed.iter().cloned().collect();
    let (bc, ac) = (old.conditions(), u.conditions());
    let resources = diff::resource_changes_under(Some((bt, &bc)), Some((at, &ac)), &list);
    Changing::Some {
        outputs: outputs::changing_outputs(Some(bt), at, &changed, &resources),
        resources: resources
            .iter()
            .map(|r| (r.logical_id.clone(), resource_cause(r)))
            .collect(),
    }
}

/// The parameters of `u` whose values may change: set differently, defaulted differently by the
/// template, or taking an input that may change (`reasons`).
fn changed_parameters(
    old: &Unit,
    bt: &Template,
    u: &Unit,
    at: &Template,
    reasons: &[Reason],
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let changing_inputs: BTreeSet<&str> = reasons
        .iter()
        .filter_map(|r| match r {
            Reason::Input { reference, .. } => Some(reference.as_str()),
            _ => None,
        })
        .collect();
    for (name, decl) in &at.parameters {
        let (was, is) = (old.parameters.get(name), u.parameters.get(name));
        let set_differently = match (was, is) {
            (Some(a), Some(b)) => a.value != b.value,
            (None, None) => bt.parameters.get(name).map(|d| &d.default) != Some(&decl.default),
            _ => true,
        };
        let input_changes = is.is_some_and(|p| {
            p.value.references().iter().any(|r| {
                let reference = match r {
                    Reference::Output { stack, output } => format!("${{{stack}.{output}}}"),
                    Reference::Ssm(path) => format!("${{ssm:{path}}}"),
                    Reference::Secret { .. } => r.to_string(),
                    _ => return false,
                };
                changing_inputs.contains(reference.as_str())
            })
        });
        if set_differently || input_changes {
            out.insert(name.clone());
        }
    }
    out
}

/// Why a resource changes, in words.
fn resource_cause(r: &ResourceChange) -> String {
    let id = &r.logical_id;
    match (r.action, r.replacement) {
        (ResourceAction::Add, _) => format!("{id} is added"),
        (ResourceAction::Remove, _) => format!("{id} is removed"),
        (_, Replacement::True) => format!("{id} is replaced"),
        (_, Replacement::Conditional) => format!("{id} may be replaced"),
        _ => format!("{id} is modified"),
    }
}
