//! The offline planner: what a change between two revisions does to each affected stack,
//! worked out from the config and templates alone — no AWS credentials, no AWS calls. This is
//! what a pull request from a fork, or a laptop without credentials, gets.

use std::collections::BTreeMap;

use super::live::{now_rfc3339, plan_id};
use super::model::*;
use super::nested;
use crate::affected::{Change, Comparison};
use crate::config::expr::Reference;
use crate::desired::{DesiredEnvironment, Unit};
use crate::template::diff;
use crate::template::security;
use crate::template::text_diff;

/// Plans the affected stacks of a comparison, optionally only those of some environments.
pub fn plan_offline(cmp: &Comparison, environments: &[String], diff_context: usize) -> Plan {
    let created_at = now_rfc3339();
    let report = &cmp.report;
    let mut envs: BTreeMap<String, EnvironmentPlan> = BTreeMap::new();
    for row in &report.units {
        if !environments.is_empty() && !environments.contains(&row.environment) {
            continue;
        }
        let before = cmp.before.get(&row.environment);
        let after = cmp.after.get(&row.environment);
        let env_plan = envs
            .entry(row.environment.clone())
            .or_insert_with(|| EnvironmentPlan {
                name: row.environment.clone(),
                pipeline: row.pipeline.clone(),
                account: row.account.clone(),
                region: after
                    .or(before)
                    .map_or_else(|| row.region.clone(), |e| e.region.clone()),
                units: Vec::new(),
                left_out: Vec::new(),
            });
        let old = before.and_then(|e| e.units.get(&row.stack));
        let new = after.and_then(|e| e.units.get(&row.stack));
        let unit = match (row.change, old, new) {
            (Change::Removed, Some(o), _) => UnitPlan {
                action: Action::Remove,
                message: Some(
                    "left the config; the stack is deleted only when apply is allowed to delete"
                        .into(),
                ),
                config_hash: String::new(),
                ..blank(o, &env_plan.region, row.reasons.clone())
            },
            (Change::Added, _, Some(n)) => {
                let t = n.template.parsed();
                let mut resources: Vec<_> = t
                    .map(|t| {
                        let c = n.conditions();
                        diff::resource_changes_under(None, Some((t, &c)), &[])
                    })
                    .unwrap_or_default();
                let inside = nested::changes(&[], &nested::children_of(&n.template), None);
                resources.extend(inside.resources);
                let mut security_items: Vec<_> = t
                    .map(|t| security::security_changes(None, Some(t)))
                    .unwrap_or_default();
                security_items.extend(inside.security);
                UnitPlan {
                    action: Action::Create,
                    resources,
                    security: security_items,
                    parameters: parameter_changes(None, n, after, &report.units),
                    inputs: inputs(n, after, &report.units),
                    ..blank(n, &env_plan.region, row.reasons.clone())
                }
            }
            (_, Some(o), Some(n)) => {
                let parameters = parameter_changes(Some(o), n, after, &report.units);
                let changed: Vec<String> = parameters.iter().map(|p| p.name.clone()).collect();
                let (bt, at) = (o.template.parsed(), n.template.parsed());
                let inside = nested::changes(
                    &nested::children_of(&o.template),
                    &nested::children_of(&n.template),
                    Some(diff_context),
                );
                let mut resources = match at {
                    Some(at) => {
                        let (bc, ac) = (o.conditions(), n.conditions());
                        diff::resource_changes_under(
                            bt.map(|bt| (bt, &bc)),
                            Some((at, &ac)),
                            &changed,
                        )
                    }
                    None => Vec::new(),
                };
                resources.extend(inside.resources);
                let template_diff = [
                    at.and_then(|at| text_diff::template_diff(bt, Some(at), diff_context)),
                    inside.template_diff,
                ]
                .into_iter()
                .flatten()
                .reduce(|a, b| a + &b);
                let mut security_items: Vec<_> = at
                    .map(|at| security::security_changes(bt, Some(at)))
                    .unwrap_or_default();
                security_items.extend(inside.security);
                UnitPlan {
                    action: Action::Update,
                    resources,
                    security: security_items,
                    template_diff,
                    parameters,
                    inputs: inputs(n, after, &report.units),
                    ..blank(n, &env_plan.region, row.reasons.clone())
                }
            }
            (_, _, Some(n)) => UnitPlan {
                action: Action::Update,
                ..blank(n, &env_plan.region, row.reasons.clone())
            },
            (_, Some(o), None) => blank(o, &env_plan.region, row.reasons.clone()),
            (_, None, None) => continue,
        };
        env_plan.units.push(unit);
    }
    Plan {
        version: PLAN_JSON_VERSION,
        id: plan_id(&report.head.commit, &created_at),
        created_at,
        offline: true,
        base: Some(report.base.clone()),
        head: report.head.clone(),
        environments: envs.into_values().collect(),
        policy: None,
    }
}

fn blank(u: &Unit, env_region: &str, reasons: Vec<Reason>) -> UnitPlan {
    super::unit_plan(u, env_region, Action::NoChange, reasons)
}

/// The references of `u`'s parameters (`${stack.Output}`, `${ssm:/name}`) whose values may
/// change, as the comparison found (its input reasons), with the stack each comes from and why.
fn changing_inputs(
    u: &Unit,
    env: Option<&DesiredEnvironment>,
    rows: &[crate::affected::AffectedUnit],
) -> BTreeMap<String, (String, Option<String>)> {
    let Some(env) = env else {
        return BTreeMap::new();
    };
    rows.iter()
        .filter(|r| r.environment == env.name && r.stack == u.stack && r.change != Change::Removed)
        .flat_map(|r| &r.reasons)
        .filter_map(|r| match r {
            Reason::Input {
                reference,
                stack,
                because,
                ..
            } => Some((reference.clone(), (stack.clone(), because.clone()))),
            _ => None,
        })
        .collect()
}

/// The reference a parameter's expression makes to an input, as input reasons name it.
fn input_reference(r: &Reference) -> Option<String> {
    match r {
        Reference::Output { stack, output } => Some(format!("${{{stack}.{output}}}")),
        Reference::Ssm(path) => Some(format!("${{ssm:{path}}}")),
        Reference::Secret { .. } => Some(r.to_string()),
        _ => None,
    }
}

/// Inputs of `u` that may change: known only after apply.
fn inputs(
    u: &Unit,
    env: Option<&DesiredEnvironment>,
    rows: &[crate::affected::AffectedUnit],
) -> Vec<Input> {
    let changing = changing_inputs(u, env, rows);
    let mut out = Vec::new();
    for (name, p) in &u.parameters {
        for r in p.value.references() {
            if let Some(reference) = input_reference(r)
                && let Some((stack, because)) = changing.get(&reference)
            {
                out.push(Input {
                    parameter: name.clone(),
                    reference,
                    from_stack: stack.clone(),
                    because: because.clone(),
                    state: InputState::KnownAfterApply { current: None },
                });
            }
        }
    }
    out
}

/// Parameters whose expressions differ between the revisions, or that take outputs of affected
/// stacks. Values are the expressions as written (NoEcho literals masked).
fn parameter_changes(
    old: Option<&Unit>,
    new: &Unit,
    env: Option<&DesiredEnvironment>,
    rows: &[crate::affected::AffectedUnit],
) -> Vec<ParameterChange> {
    let mut names: Vec<&String> = new.parameters.keys().collect();
    if let Some(o) = old {
        names.extend(
            o.parameters
                .keys()
                .filter(|k| !new.parameters.contains_key(*k)),
        );
    }
    names.sort();
    let changing = changing_inputs(new, env, rows);
    let mut out = Vec::new();
    for name in names {
        let b = old.and_then(|o| o.parameters.get(name));
        let a = new.parameters.get(name);
        let from_affected = a.is_some_and(|a| {
            a.value
                .references()
                .iter()
                .filter_map(|r| input_reference(r))
                .any(|r| changing.contains_key(&r))
        });
        let same = match (b, a) {
            (Some(b), Some(a)) => b.value == a.value,
            _ => false,
        };
        if same && !from_affected {
            continue;
        }
        out.push(ParameterChange {
            name: name.clone(),
            before: b.map(|p| p.display()),
            after: a.map(|p| p.display()),
            secret: a.is_some_and(|p| p.no_echo) || b.is_some_and(|p| p.no_echo),
            known_after_apply: from_affected,
            expression: a.map(|p| p.display()),
        });
    }
    out
}
