//! Outputs that exist only under a condition (`Condition:` on the output), checked per
//! environment: a stack taking such an output (`${stack.Output}` or through its export) in an
//! environment where the condition is known to be false would fail on a missing output; that is
//! an error at the reference. Where the condition is not known before deploying, the pipeline's
//! warning stands.

use indexmap::IndexMap;

use super::declared::Facts;

use crate::config::load::Environment;
use crate::desired::{DependencyKind, Unit};
use crate::diag::{Diagnostic, Diagnostics};
use crate::template::conditions::Conditions;

/// Reports every output taken in `env` whose condition is false there.
pub(super) fn check_conditional_outputs(
    env: &Environment,
    units: &IndexMap<String, Unit>,
    facts: &Facts,
    d: &mut Diagnostics,
) {
    let mut conditions: IndexMap<&str, Conditions> = IndexMap::new();
    for u in units.values() {
        for dep in &u.dependencies {
            let (output, how) = match &dep.kind {
                DependencyKind::Output { output } => {
                    (output, format!("`${{{}.{output}}}`", dep.stack))
                }
                DependencyKind::Import { export, output } => (output, format!("export `{export}`")),
                _ => continue,
            };
            let Some(source) = units.get(&dep.stack) else {
                continue;
            };
            let Some(t) = source.template.parsed() else {
                continue;
            };
            let Some(condition) = t.outputs.get(output).and_then(|o| o.condition.as_ref()) else {
                continue;
            };
            let holds = conditions
                .entry(source.stack.as_str())
                .or_insert_with(|| Conditions::of(t, &facts[&source.stack]))
                .holds(condition);
            if holds == Some(false) {
                d.push(
                    Diagnostic::error(format!(
                        "stack `{}` takes {how}, but output `{output}` of stack `{}` does not exist in environment `{}`: its condition `{condition}` is false there",
                        u.stack, dep.stack, env.name
                    ))
                    .at(dep.loc.clone())
                    .help(format!(
                        "set the parameters of `{}` in {} so that `{condition}` holds, or do not take the output in this environment",
                        dep.stack, env.file
                    )),
                );
            }
        }
    }
}
