//! An environment's settings for single stacks: they must name stacks of the pipeline, and
//! those for stacks the environment does not deploy are checked all the same, so that they are
//! right the day the stack is switched on.

use std::collections::BTreeSet;

use super::parameters::unknown_parameter;
use super::references::{Allowed, check_refs, check_static_in, stack_names};
use super::tags::reserved_tag;
use super::values::{At, parse_value};
use crate::config::load::{Environment, Pipeline, StackTemplate};
use crate::config::model::StackOverride;
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::suggest;
use crate::yaml::Spanned;

/// Per-stack settings must name pipeline stacks.
pub(super) fn check_override_keys(p: &Pipeline, env: &Environment, d: &mut Diagnostics) {
    for key in env.def.stacks.keys() {
        if p.def.stacks.contains_key(key.as_str()) {
            continue;
        }
        let near = suggest::nearest(key, p.def.stacks.keys().map(|k| k.value.as_str()));
        d.push(
            Diagnostic::error(format!(
                "pipeline `{}` has no stack `{}`",
                p.name, key.value
            ))
            .at(Loc::new(&env.file, key.span))
            .label_opt(near.map(|n| format!("did you mean `{n}`?")))
            .help(format!("its stacks are: {}", stack_names(p))),
        );
    }
}

/// Checks the environment's settings for every pipeline stack it does not deploy.
pub(super) fn check_disabled_overrides(
    p: &Pipeline,
    env: &Environment,
    enabled: &BTreeSet<String>,
    d: &mut Diagnostics,
) {
    for key in p.def.stacks.keys() {
        if let (false, Some(over)) = (
            enabled.contains(key.as_str()),
            env.def.stacks.get(key.as_str()),
        ) {
            check_disabled_override(p, env, key, over, d);
        }
    }
}

/// Checks an environment's settings for a stack it does not deploy: parameter names and
/// expressions, tag keys and values, and the expressions of the stack name and options.
fn check_disabled_override(
    p: &Pipeline,
    env: &Environment,
    key: &Spanned<String>,
    over: &StackOverride,
    d: &mut Diagnostics,
) {
    let ef = &env.file;
    let template = p
        .templates
        .get(key.as_str())
        .and_then(StackTemplate::parsed);
    for (name, v) in &over.parameters {
        if let Some(t) = template
            && !t.parameters.contains_key(name.as_str())
        {
            d.push(unknown_parameter(ef, name, key, t));
        }
        match parse_value(ef, v) {
            Ok(e) => {
                for diag in check_refs(
                    p,
                    Some(key),
                    &e,
                    &At::value(ef, v),
                    Allowed::All,
                    "a parameter",
                ) {
                    d.push(diag);
                }
            }
            Err(e) => d.push(e),
        }
    }
    for (k, v) in &over.tags {
        if k.starts_with("aws:") {
            d.push(reserved_tag(ef, k));
        }
        check_static_in(p, ef, d, v, "a tag value");
    }
    if let Some(n) = &over.stack_name {
        check_static_in(p, ef, d, n, "a stack name");
    }
    super::options::check_option_texts(p, ef, &over.options, d);
    super::hooks::check_hook_texts(p, ef, &over.hooks, d);
}
