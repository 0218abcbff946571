//! SSM parameters that one stack of an environment creates (`AWS::SSM::Parameter` with a
//! `Name` its template gives) and another reads (`${ssm:/name}` in a parameter): the reader
//! depends on the creator ([`DependencyKind::SsmParameter`]), so it is deployed after it and, on
//! a new environment, planned once the value exists. Two stacks creating one name, and a stack
//! reading a parameter it creates itself, are reported.

use std::collections::BTreeMap;

use indexmap::IndexMap;

use super::declared::{Declaration, Declared, Facts, declared_names};
use crate::config::expr::Reference;
use crate::config::load::Environment;
use crate::desired::{Dependency, DependencyKind, Unit};
use crate::diag::{Diagnostic, Diagnostics};
use crate::template::Template;

/// Adds to each unit the units that create the SSM parameters it reads, and reports clashes.
pub(super) fn wire_ssm_parameters(
    env: &Environment,
    units: &mut IndexMap<String, Unit>,
    facts: &Facts,
    d: &mut Diagnostics,
) {
    let creators = creators_of(env, units, facts, d);
    if creators.is_empty() {
        return;
    }
    for u in units.values_mut() {
        let mut added = Vec::new();
        for setting in u.parameters.values() {
            for r in setting.value.references() {
                let Reference::Ssm(path) = r else { continue };
                let Some(name) = path.as_literal() else {
                    continue;
                };
                // A parameter is read in the reader's region: one created in another region
                // is another parameter.
                let Some(c) = creators.get(&name).filter(|c| c.region == u.region) else {
                    continue;
                };
                if c.stack == u.stack {
                    d.push(
                        Diagnostic::error(format!(
                            "stack `{}` reads SSM parameter {name}, which it creates itself (resource `{}`), in environment `{}`",
                            u.stack, c.item, env.name
                        ))
                        .at(setting.loc.clone())
                        .help("on a new environment the parameter does not exist before the stack; use the resource directly in the template"),
                    );
                    continue;
                }
                added.push(Dependency {
                    stack: c.stack.clone(),
                    kind: DependencyKind::SsmParameter {
                        name,
                        resource: c.item.clone(),
                    },
                    loc: setting.loc.clone(),
                });
            }
        }
        u.add_dependencies(added);
    }
}

/// The SSM parameters the units create, by name (each declared by a resource); names worked
/// out only at deploy time are left out. Two units creating one name are reported.
fn creators_of(
    env: &Environment,
    units: &IndexMap<String, Unit>,
    facts: &Facts,
    d: &mut Diagnostics,
) -> BTreeMap<String, Declared> {
    let clash = |first: &Declared, stack: &str, name: &str| {
        Diagnostic::error(format!(
            "stacks `{}` and `{stack}` both create SSM parameter {name} in environment `{}`",
            first.stack, env.name
        ))
        .help(format!(
            "an SSM parameter name is unique in an account and region; the first is resource `{}` at {}",
            first.item, first.loc
        ))
    };
    declared_names(units, facts, parameter_names, clash, d).0
}

/// The SSM parameters a template creates, each declared by a resource.
fn parameter_names(t: &Template) -> Vec<Declaration<'_>> {
    t.ssm_parameters()
        .iter()
        .map(|p| Declaration {
            item: &p.resource,
            name: &p.name,
            span: p.span,
        })
        .collect()
}
