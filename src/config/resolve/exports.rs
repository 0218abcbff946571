//! Cross-stack wiring through CloudFormation exports: the export names of every unit of an
//! environment, worked out with its parameters, stack name, account and region; every
//! `Fn::ImportValue` matched to the unit exporting it, which makes it a dependency
//! ([`DependencyKind::Import`]); and the problems: two units exporting one name, a unit
//! importing its own export, an import that nothing provides (neither a unit of the
//! environment nor `external_exports:`).

use std::collections::BTreeMap;
use std::sync::Arc;

use indexmap::IndexMap;

use super::declared::{Declaration, Declared, Facts, declared_names};
use crate::config::load::Environment;
use crate::desired::{Dependency, DependencyKind, TemplateRef, Unit};
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::suggest;
use crate::template::Template;
use crate::template::evaluate;

/// Adds to each unit the units whose exports it imports, and reports what does not match.
pub(super) fn wire_imports(
    env: &Environment,
    units: &mut IndexMap<String, Unit>,
    facts: &Facts,
    d: &mut Diagnostics,
) {
    let (exports, unknown_exports) = exports_of(env, units, facts, d);
    for u in units.values_mut() {
        let TemplateRef::Local { path, template, .. } = &u.template else {
            continue;
        };
        let file: Arc<str> = Arc::from(path.as_str());
        let mut added = Vec::new();
        for import in template.imports() {
            let loc = Loc::new(&file, import.span);
            let Ok(name) = evaluate::string(&import.name, &facts[&u.stack]) else {
                // Worked out only at deploy time: CloudFormation checks it then.
                continue;
            };
            match exports.get(&name) {
                Some(e) if e.stack == u.stack => d.push(
                    Diagnostic::error(format!(
                        "stack `{}` imports `{name}`, which it exports itself (output `{}`), in environment `{}`",
                        u.stack, e.item, env.name
                    ))
                    .at(loc)
                    .help("a stack cannot import its own export; refer to the resource directly"),
                ),
                Some(e) if e.region != u.region => d.push(
                    Diagnostic::error(format!(
                        "stack `{}` (region {}) imports `{name}`, which stack `{}` exports in region {}; CloudFormation imports exports of the stack's own region only",
                        u.stack, u.region, e.stack, e.region
                    ))
                    .at(loc)
                    .help(format!(
                        "pass the value as a parameter instead: a parameter of `{}` set to `${{{}.{}}}`",
                        u.stack, e.stack, e.item
                    )),
                ),
                Some(e) => added.push(Dependency {
                    stack: e.stack.clone(),
                    kind: DependencyKind::Import {
                        export: name,
                        output: e.item.clone(),
                    },
                    loc,
                }),
                None if is_external(env, &name) => {}
                None => d.push(unmatched_import(
                    env,
                    &u.stack,
                    &name,
                    &exports,
                    &unknown_exports,
                    loc,
                )),
            }
        }
        u.add_dependencies(added);
    }
}

/// The environment's exports by name (each declared by an output), and the units with exports
/// whose names are known only at deploy time. Two units exporting one name are reported.
fn exports_of(
    env: &Environment,
    units: &IndexMap<String, Unit>,
    facts: &Facts,
    d: &mut Diagnostics,
) -> (BTreeMap<String, Declared>, Vec<String>) {
    let clash = |first: &Declared, stack: &str, name: &str| {
        Diagnostic::error(format!(
            "stacks `{}` and `{stack}` both export `{name}` in environment `{}`",
            first.stack, env.name
        ))
        .help(format!(
            "export names are unique in an account and region; the first is output `{}` at {}",
            first.item, first.loc
        ))
    };
    declared_names(units, facts, export_names, clash, d)
}

/// The exports of a template, each declared by an output.
fn export_names(t: &Template) -> Vec<Declaration<'_>> {
    t.exports()
        .iter()
        .map(|e| Declaration {
            item: &e.output,
            name: &e.name,
            span: e.span,
        })
        .collect()
}

/// Whether `name` is one of the environment's `external_exports`.
fn is_external(env: &Environment, name: &str) -> bool {
    env.def
        .external_exports
        .iter()
        .any(|p| matches_pattern(p.as_str(), name))
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters.
fn matches_pattern(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// An import that no unit exports and that is not declared external: an error, or a warning
/// when some exports of the environment are named only at deploy time.
fn unmatched_import(
    env: &Environment,
    stack: &str,
    name: &str,
    exports: &BTreeMap<String, Declared>,
    unknown_exports: &[String],
    loc: Loc,
) -> Diagnostic {
    let near = suggest::nearest(name, exports.keys().map(String::as_str));
    let message = format!(
        "stack `{stack}` imports `{name}`, which no stack of environment `{}` exports",
        env.name
    );
    let diagnostic = if unknown_exports.is_empty() {
        Diagnostic::error(message)
    } else {
        Diagnostic::warning(format!(
            "{message} (unless {} exports it under a name known only at deploy time)",
            unknown_exports.join(", ")
        ))
    };
    diagnostic
        .at(loc)
        .label_opt(near.map(|n| format!("did you mean `{n}`?")))
        .help(format!(
            "check the name (a parameter naming the exporting stack is a common culprit); if a stack outside this environment exports it, list it under `external_exports:` in {}",
            env.file
        ))
}

#[cfg(test)]
mod tests {
    use super::matches_pattern;

    #[test]
    fn patterns_match_with_stars() {
        for (p, n, want) in [
            ("shared-vpc-VpcId", "shared-vpc-VpcId", true),
            ("shared-vpc-VpcId", "shared-vpc-VpcIdx", false),
            ("shared-*", "shared-vpc-VpcId", true),
            ("*-VpcId", "shared-vpc-VpcId", true),
            ("shared-*-VpcId", "shared-vpc-VpcId", true),
            ("shared-*-VpcId", "shared-VpcId", false),
            ("*", "anything", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
        ] {
            assert_eq!(matches_pattern(p, n), want, "{p} ~ {n}");
        }
    }
}
