//! The checks of a pipeline on its own, before any environment: variable names and defaults,
//! default parameters and tags, stack keys, `needs`, each stack's parameters, tags, stack name
//! and capabilities, and dependency cycles.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::cycles::Edges;
use super::parameters::unknown_parameter;
use super::references::{Allowed, check_refs, check_static, dependency_of};
use super::values::{At, parse_value};
use crate::config::expr::Reference;
use crate::config::load::{Pipeline, StackTemplate};
use crate::config::model::StackDef;
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::suggest;
use crate::template::{Capability, Template};
use crate::yaml::Spanned;

/// Stack keys that would make expressions ambiguous: the heads of `${env.…}` and `${var.…}`. (`ssm` and `external` are followed by `:`, never
/// by `.`, so a stack may be called `ssm`: `${ssm.Output}` is its output.)
const RESERVED_KEYS: &[&str] = &["env", "var"];

fn stack_key_ok(k: &str) -> bool {
    let mut chars = k.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Checks what can be checked of a pipeline without an environment: stack keys, template
/// references, `needs`, expressions, parameter names, capabilities and dependency cycles.
pub fn check_pipeline(p: &Pipeline) -> Diagnostics {
    let mut d = Diagnostics::new();
    check_var_names(p, &mut d);
    if p.def.stacks.is_empty() {
        d.push(
            Diagnostic::error(format!("pipeline `{}` has no stacks", p.name))
                .at(Loc::file_start(&p.file))
                .help("add at least one stack under `stacks:`"),
        );
    }
    check_default_parameters(p, &mut d);
    for v in p.def.defaults.tags.values() {
        check_static(p, &mut d, v, "a tag value");
    }
    check_stack_name_pattern(p, &mut d);
    super::options::check_option_texts(p, &p.file, &p.def.defaults.options, &mut d);
    let mut edges = Edges::new(p.def.stacks.keys().map(|k| k.value.clone()));
    for (key, stack) in &p.def.stacks {
        check_stack(p, key, stack, &mut edges, &mut d);
    }
    for diag in edges.cycle_diagnostics() {
        d.push(diag);
    }
    super::variables::check_var_defaults(p, &mut d);
    super::nested::check_nested(p, &mut d);
    d
}

/// `defaults.stack_name` names each stack by its key (`${stack}`), and otherwise uses only
/// `${var.…}` and `${env.…}`.
fn check_stack_name_pattern(p: &Pipeline, d: &mut Diagnostics) {
    let Some(pattern) = &p.def.defaults.stack_name else {
        return;
    };
    if !pattern.contains(super::stack_name::STACK) {
        d.push(
            Diagnostic::error("the stack-name pattern does not use `${stack}`: every stack would get the same name")
                .at(Loc::new(&p.file, pattern.span))
                .help("put `${stack}` where the stack key goes, e.g. `shop-${env.name}-${stack}`"),
        );
        return;
    }
    // The key's place, kept as long so that positions in the pattern stay right.
    let placeholder = "x".repeat(super::stack_name::STACK.len());
    let written = Spanned::new(
        pattern.replace(super::stack_name::STACK, &placeholder),
        pattern.span,
    );
    check_static(p, d, &written, "a stack name");
}

/// Variable names use letters, digits and `_`.
fn check_var_names(p: &Pipeline, d: &mut Diagnostics) {
    for var in p.def.vars.keys() {
        if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            d.push(
                Diagnostic::error(format!("`{}` is not a variable name", var.value))
                    .at(Loc::new(&p.file, var.span))
                    .help("variable names use letters, digits and `_`"),
            );
        }
    }
}

/// Default parameters: valid expressions, with valid references, and no stack outputs (which
/// only the stacks that take them can name).
fn check_default_parameters(p: &Pipeline, d: &mut Diagnostics) {
    let file = &p.file;
    for (name, value) in &p.def.defaults.parameters {
        let at = At::value(file, value);
        let loc = at.whole();
        match parse_value(file, value) {
            Ok(e) => {
                for diag in check_refs(p, None, &e, &at, Allowed::All, "a default parameter") {
                    d.push(diag);
                }
                if e.references()
                    .iter()
                    .any(|r| matches!(r, Reference::Output { .. }))
                {
                    d.push(
                        Diagnostic::error(format!(
                            "default parameter `{}` takes a stack output",
                            name.value
                        ))
                        .at(loc)
                        .help("set output-fed parameters on the stacks that take them"),
                    );
                }
            }
            Err(e) => d.push(e),
        }
    }
}

/// Checks one stack of the pipeline, recording its dependencies in `edges`.
fn check_stack(
    p: &Pipeline,
    key: &Spanned<String>,
    stack: &StackDef,
    edges: &mut Edges,
    d: &mut Diagnostics,
) {
    check_stack_key(&p.file, key, d);
    check_needs(p, key, stack, edges, d);
    let template = p
        .templates
        .get(key.as_str())
        .and_then(StackTemplate::parsed);
    check_stack_parameters(p, key, stack, template, edges, d);
    for v in stack.tags.values() {
        check_static(p, d, v, "a tag value");
    }
    if let Some(n) = &stack.stack_name {
        check_static(p, d, n, "a stack name");
    }
    super::options::check_option_texts(p, &p.file, &stack.options, d);
    super::hooks::check_hook_texts(p, &p.file, &stack.hooks, d);
    if let (Some(caps), Some(t)) = (&stack.capabilities, template) {
        let path = p
            .templates
            .get(key.as_str())
            .and_then(StackTemplate::local_path)
            .unwrap_or_default();
        let needed = super::nested::required_capabilities(p, path, t);
        check_capabilities(d, &p.file, key, caps, &needed);
    }
}

/// Stack keys use letters, digits and `-`, and are not words reserved for expressions.
fn check_stack_key(file: &Arc<str>, key: &Spanned<String>, d: &mut Diagnostics) {
    let key_loc = Loc::new(file, key.span);
    if !stack_key_ok(key) {
        d.push(
            Diagnostic::error(format!("`{}` is not a valid stack key", key.value))
                .at(key_loc)
                .help("stack keys use letters, digits and `-`, and start with a letter or digit"),
        );
    } else if RESERVED_KEYS.contains(&key.as_str()) {
        d.push(
            Diagnostic::error(format!("`{}` cannot be a stack key", key.value))
                .at(key_loc)
                .help("`env` and `var` are reserved for expressions; rename the stack"),
        );
    }
}

/// A stack's `needs` name other stacks of the pipeline.
fn check_needs(
    p: &Pipeline,
    key: &Spanned<String>,
    stack: &StackDef,
    edges: &mut Edges,
    d: &mut Diagnostics,
) {
    for need in &stack.needs {
        let loc = Loc::new(&p.file, need.span);
        if need.value == key.value {
            d.push(
                Diagnostic::error(format!("stack `{}` needs itself", key.value))
                    .at(loc)
                    .help("remove it from `needs`"),
            );
        } else if !p.def.stacks.contains_key(need.as_str()) {
            let near = suggest::nearest(need, p.def.stacks.keys().map(|k| k.value.as_str()));
            d.push(
                Diagnostic::error(format!(
                    "stack `{}` needs `{}`, which pipeline `{}` does not have",
                    key.value, need.value, p.name
                ))
                .at(loc)
                .label_opt(near.map(|n| format!("did you mean `{n}`?"))),
            );
        } else {
            edges.add(key, need, &loc);
        }
    }
}

/// A stack's parameters: declared by its template (when known offline), valid expressions with
/// valid references; the stacks whose outputs they take are dependencies.
fn check_stack_parameters(
    p: &Pipeline,
    key: &Spanned<String>,
    stack: &StackDef,
    template: Option<&Arc<Template>>,
    edges: &mut Edges,
    d: &mut Diagnostics,
) {
    let file = &p.file;
    for (pname, value) in &stack.parameters {
        let at = At::value(file, value);
        let loc = at.whole();
        if let Some(t) = template
            && !t.parameters.contains_key(pname.as_str())
        {
            d.push(unknown_parameter(file, pname, key, t));
        }
        match parse_value(file, value) {
            Ok(e) => {
                for diag in check_refs(p, Some(key), &e, &at, Allowed::All, "a parameter") {
                    d.push(diag);
                }
                for r in e.references() {
                    if let Some((s, _)) = dependency_of(r)
                        && p.def.stacks.contains_key(s)
                        && s != key.value
                    {
                        edges.add(key, s, &loc);
                    }
                }
            }
            Err(e) => d.push(e),
        }
    }
}

/// Capabilities given explicitly must cover what the template needs.
fn check_capabilities(
    d: &mut Diagnostics,
    file: &Arc<str>,
    key: &str,
    caps: &[Spanned<Capability>],
    needed: &BTreeSet<(Capability, String)>,
) {
    for (needed, resource) in needed {
        if !caps.iter().any(|c| c.value.covers(*needed)) {
            let at = caps
                .first()
                .map(|c| Loc::new(file, c.span))
                .unwrap_or_else(|| Loc::file_start(file));
            d.push(
                Diagnostic::error(format!(
                    "stack `{key}` needs {needed}: its template creates `{resource}`"
                ))
                .at(at)
                .help(format!(
                    "add {needed} to `capabilities`, or leave `capabilities` out to acknowledge what the template needs"
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_keys_are_letters_digits_and_hyphens() {
        assert!(stack_key_ok("vpc-1"));
        assert!(stack_key_ok("1vpc"));
        assert!(!stack_key_ok("-vpc"));
        assert!(!stack_key_ok("a_b"));
        assert!(!stack_key_ok(""));
    }
}
