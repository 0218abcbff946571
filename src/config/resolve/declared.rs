//! What the units of an environment declare in their templates under names unique in an
//! account and region — export names, the names of SSM parameters they create — worked out for
//! each unit from what is known of it before it is deployed ([`known_facts`]), with two units
//! declaring one name reported.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value;

use crate::desired::{TemplateRef, Unit};
use crate::diag::{Diagnostic, Diagnostics, Loc, Span};
use crate::template::Template;
use crate::template::evaluate::{self, StackFacts};

/// What is known of each unit before it is deployed, by stack key.
pub(super) type Facts = HashMap<String, StackFacts>;

/// The facts of every unit of an environment.
pub(super) fn known_facts(units: &IndexMap<String, Unit>) -> Facts {
    units
        .values()
        .map(|u| (u.stack.clone(), u.known_facts()))
        .collect()
}

/// One declaration in a template: the item that declares the name (an output, a resource), the
/// name as written, and where.
pub(super) struct Declaration<'t> {
    pub(super) item: &'t str,
    pub(super) name: &'t Value,
    pub(super) span: Span,
}

/// A name declared by a unit, worked out.
pub(super) struct Declared {
    pub(super) stack: String,
    /// The declaring stack's region: the name is unique in that region only.
    pub(super) region: String,
    /// The output or resource declaring it.
    pub(super) item: String,
    pub(super) loc: Loc,
}

/// The names the units declare (`declarations` reads them from a template), by name, and the
/// units with a declaration whose name is known only at deploy time. A second unit declaring a
/// name is reported with `clash(first, stack, name)` at its declaration.
pub(super) fn declared_names(
    units: &IndexMap<String, Unit>,
    facts: &Facts,
    declarations: impl Fn(&Template) -> Vec<Declaration<'_>>,
    clash: impl Fn(&Declared, &str, &str) -> Diagnostic,
    d: &mut Diagnostics,
) -> (BTreeMap<String, Declared>, Vec<String>) {
    let mut out: BTreeMap<String, Declared> = BTreeMap::new();
    let mut unknown = Vec::new();
    for u in units.values() {
        let TemplateRef::Local { path, template, .. } = &u.template else {
            continue;
        };
        let file: Arc<str> = Arc::from(path.as_str());
        for decl in declarations(template) {
            let Ok(name) = evaluate::string(decl.name, &facts[&u.stack]) else {
                if unknown.last() != Some(&u.stack) {
                    unknown.push(u.stack.clone());
                }
                continue;
            };
            let loc = Loc::new(&file, decl.span);
            if let Some(first) = out.get(&name) {
                d.push(clash(first, &u.stack, &name).at(loc));
                continue;
            }
            out.insert(
                name,
                Declared {
                    stack: u.stack.clone(),
                    region: u.region.clone(),
                    item: decl.item.to_string(),
                    loc,
                },
            );
        }
    }
    (out, unknown)
}
