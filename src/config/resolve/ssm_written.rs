//! SSM parameters that one stack of an environment creates (`AWS::SSM::Parameter` with a
//! `Name` its template gives) and another reads (`${ssm:/name}` in a parameter): the reader
//! depends on the creator ([`DependencyKind::SsmParameter`]), so it is deployed after it and, on
//! a new environment, planned once the value exists. Two stacks creating one name, and a stack
//! reading a parameter it creates itself, are reported.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::config::expr::Reference;
use crate::config::load::Environment;
use crate::desired::{Dependency, DependencyKind, TemplateRef, Unit};
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::template::evaluate;

/// A parameter created by a stack of the environment.
struct Creator {
    stack: String,
    resource: String,
    loc: Loc,
}

/// Adds to each unit the units that create the SSM parameters it reads, and reports clashes.
pub(super) fn wire_ssm_parameters(
    env: &Environment,
    units: &mut IndexMap<String, Unit>,
    d: &mut Diagnostics,
) {
    let creators = creators_of(env, units, d);
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
                let Some(c) = creators.get(&name) else {
                    continue;
                };
                if c.stack == u.stack {
                    d.push(
                        Diagnostic::error(format!(
                            "stack `{}` reads SSM parameter {name}, which it creates itself (resource `{}`), in environment `{}`",
                            u.stack, c.resource, env.name
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
                        resource: c.resource.clone(),
                    },
                    loc: setting.loc.clone(),
                });
            }
        }
        u.add_dependencies(added);
    }
}

/// The SSM parameters the units create, by name; names worked out only at deploy time are left
/// out. Two units creating one name are reported.
fn creators_of(
    env: &Environment,
    units: &IndexMap<String, Unit>,
    d: &mut Diagnostics,
) -> BTreeMap<String, Creator> {
    let mut out: BTreeMap<String, Creator> = BTreeMap::new();
    let mut facts = HashMap::new();
    for u in units.values() {
        let TemplateRef::Local { path, template } = &u.template else {
            continue;
        };
        let decls = template.ssm_parameters();
        if decls.is_empty() {
            continue;
        }
        let file: Arc<str> = Arc::from(path.as_str());
        let f = facts
            .entry(u.stack.clone())
            .or_insert_with(|| u.known_facts());
        for decl in decls {
            let Ok(name) = evaluate::string(&decl.name, f) else {
                continue;
            };
            let loc = Loc::new(&file, decl.span);
            if let Some(first) = out.get(&name) {
                d.push(
                    Diagnostic::error(format!(
                        "stacks `{}` and `{}` both create SSM parameter {name} in environment `{}`",
                        first.stack, u.stack, env.name
                    ))
                    .at(loc)
                    .help(format!(
                        "an SSM parameter name is unique in an account and region; the first is resource `{}` at {}",
                        first.resource, first.loc
                    )),
                );
                continue;
            }
            out.insert(
                name,
                Creator {
                    stack: u.stack.clone(),
                    resource: decl.resource.clone(),
                    loc,
                },
            );
        }
    }
    out
}
