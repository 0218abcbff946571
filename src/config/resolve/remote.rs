//! Outputs of other environments' stacks (`${env:ENVIRONMENT.stack.Output}`), checked once the
//! other environments are resolved: the environment exists and resolves, it deploys the stack,
//! and the stack's template declares the output (and its condition is not false there). The
//! stacks found are recorded with where their environment deploys them, for planning.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::load::{ENVIRONMENT_FILE, ENVIRONMENTS_DIR};
use crate::desired::DesiredEnvironment;
use crate::desired::remote::{RemoteRef, RemoteStack};
use crate::diag::{Diagnostic, Diagnostics};
use crate::suggest;

/// The stacks of other environments that `env` takes outputs from, by environment and stack
/// key, and what is wrong with its references to them. `names` are the environments of the
/// repository; `others` gives one that resolved.
pub fn link_remote<'a>(
    env: &DesiredEnvironment,
    names: &[String],
    others: &dyn Fn(&str) -> Option<&'a DesiredEnvironment>,
) -> (BTreeMap<(String, String), RemoteStack>, Diagnostics) {
    let mut stacks = BTreeMap::new();
    let mut d = Diagnostics::new();
    let mut checked = BTreeSet::new();
    for r in &env.remote.refs {
        if !checked.insert((&r.environment, &r.stack, &r.output, &r.loc)) {
            continue;
        }
        if let Some(found) = check_ref(env, names, others, r, &mut d) {
            stacks.insert((r.environment.clone(), r.stack.clone()), found);
        }
    }
    (stacks, d)
}

/// Checks one reference; the stack it names, when the environment deploys it.
fn check_ref<'a>(
    env: &DesiredEnvironment,
    names: &[String],
    others: &dyn Fn(&str) -> Option<&'a DesiredEnvironment>,
    r: &RemoteRef,
    d: &mut Diagnostics,
) -> Option<RemoteStack> {
    let written = format!("${{env:{}.{}.{}}}", r.environment, r.stack, r.output);
    let file = format!("{ENVIRONMENTS_DIR}/{}/{ENVIRONMENT_FILE}", r.environment);
    if r.environment == env.name {
        d.push(
            Diagnostic::error(format!(
                "`{written}` names environment `{}` itself",
                env.name
            ))
            .at(r.loc.clone())
            .help(format!(
                "take an output of a stack of the same environment with `${{{}.{}}}`",
                r.stack, r.output
            )),
        );
        return None;
    }
    if !names.contains(&r.environment) {
        let near = suggest::nearest(
            &r.environment,
            names.iter().map(String::as_str).filter(|n| *n != env.name),
        );
        d.push(
            Diagnostic::error(format!(
                "`{written}` refers to environment `{}`, which does not exist",
                r.environment
            ))
            .at(r.loc.clone())
            .label_opt(near.map(|n| format!("did you mean `{n}`?")))
            .help(format!(
                "there is no {file}; the environments are: {}",
                names.join(", ")
            )),
        );
        return None;
    }
    let Some(other) = others(&r.environment) else {
        d.push(
            Diagnostic::error(format!(
                "`{written}` cannot be checked: environment `{}` does not resolve",
                r.environment
            ))
            .at(r.loc.clone())
            .help(format!("fix the errors in {file} and its pipeline first")),
        );
        return None;
    };
    let Some(unit) = other.units.get(&r.stack) else {
        let deployed: Vec<&str> = other.units.keys().map(String::as_str).collect();
        let near = suggest::nearest(&r.stack, deployed.iter().copied());
        d.push(
            Diagnostic::error(format!(
                "`{written}`: environment `{}` deploys no stack `{}`",
                r.environment, r.stack
            ))
            .at(r.loc.clone())
            .label_opt(near.map(|n| format!("did you mean `{n}`?")))
            .help(format!(
                "the stacks environment `{}` deploys (pipeline `{}`): {}; a stack of its pipeline that is disabled there must be enabled in {file}",
                r.environment,
                other.pipeline,
                deployed.join(", ")
            )),
        );
        return None;
    };
    if let Some(t) = unit.template.parsed() {
        match t.outputs.get(&r.output) {
            None => {
                let outputs: Vec<&str> = t.outputs.keys().map(String::as_str).collect();
                let near = suggest::nearest(&r.output, outputs.iter().copied());
                d.push(
                    Diagnostic::error(format!(
                        "stack `{}` of environment `{}` has no output `{}` (its template {} does not declare it)",
                        r.stack,
                        r.environment,
                        r.output,
                        unit.template.location()
                    ))
                    .at(r.loc.clone())
                    .label_opt(near.map(|n| format!("did you mean `{n}`?")))
                    .help(if outputs.is_empty() {
                        format!("the template of `{}` declares no Outputs; add one", r.stack)
                    } else {
                        format!("outputs of `{}`: {}", r.stack, outputs.join(", "))
                    }),
                );
                return None;
            }
            Some(decl) => {
                if let Some(c) = &decl.condition {
                    match unit.conditions().holds(c) {
                        Some(true) => {}
                        Some(false) => {
                            d.push(
                                Diagnostic::error(format!(
                                    "output `{}` of stack `{}` does not exist in environment `{}`: its condition `{c}` is false there",
                                    r.output, r.stack, r.environment
                                ))
                                .at(r.loc.clone())
                                .help(format!(
                                    "set the parameters of `{}` in {file} so that `{c}` holds, or take another output",
                                    r.stack
                                )),
                            );
                            return None;
                        }
                        None => d.push(
                            Diagnostic::warning(format!(
                                "output `{}` of stack `{}` of environment `{}` exists only when condition `{c}` holds",
                                r.output, r.stack, r.environment
                            ))
                            .at(r.loc.clone())
                            .help("make sure the condition holds in that environment"),
                        ),
                    }
                }
            }
        }
    }
    Some(RemoteStack {
        environment: other.name.clone(),
        stack: unit.stack.clone(),
        stack_name: unit.stack_name.clone(),
        account: other.account.clone(),
        region: other.region.clone(),
        stack_region: unit.region.clone(),
        role_arn: other.role_arn.clone(),
        secret_outputs: other
            .secret_outputs()
            .remove(&unit.stack)
            .unwrap_or_default(),
    })
}
