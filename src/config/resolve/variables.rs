//! An environment's variables: the values it sets (for variables its pipeline declares), and
//! the defaults of those it leaves out; values may use `${env.…}` only.

use std::sync::Arc;

use super::scope::Scope;
use super::values::parse_value;
use crate::config::expr::Reference;
use crate::config::load::{Environment, Pipeline};
use crate::config::model::ParamValue;
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::suggest;
use crate::yaml::Spanned;

/// Fills `scope` with the variables of `env`: those it sets, then the defaults of the others.
pub(super) fn resolve_variables(
    p: &Pipeline,
    env: &Environment,
    scope: &mut Scope<'_>,
    d: &mut Diagnostics,
) {
    set_variables(p, env, scope, d);
    default_variables(p, env, scope, d);
}

/// The variables the environment sets: each must be declared by the pipeline.
fn set_variables(p: &Pipeline, env: &Environment, scope: &mut Scope<'_>, d: &mut Diagnostics) {
    let f = &env.file;
    for (name, value) in &env.def.vars {
        if !p.def.vars.contains_key(name.as_str()) {
            let near = suggest::nearest(name, p.def.vars.keys().map(|k| k.value.as_str()));
            d.push(
                Diagnostic::error(format!(
                    "pipeline `{}` declares no variable `{}`",
                    p.name, name.value
                ))
                .at(Loc::new(f, name.span))
                .label_opt(near.map(|n| format!("did you mean `{n}`?")))
                .help(format!("declare it under `vars:` in {}", p.file)),
            );
            continue;
        }
        if let Some(v) = var_value(p, f, value, scope, d) {
            scope.set_var(name.value.clone(), v);
        }
    }
}

/// The variables the environment leaves out: each takes its default, and one without a default
/// is an error.
fn default_variables(p: &Pipeline, env: &Environment, scope: &mut Scope<'_>, d: &mut Diagnostics) {
    let f = &env.file;
    for (name, decl) in &p.def.vars {
        if scope.has_var(name.as_str()) || env.def.vars.contains_key(name.as_str()) {
            continue;
        }
        match &decl.default {
            Some(default) => {
                if let Some(v) = var_value(p, &p.file, default, scope, d) {
                    scope.set_var(name.value.clone(), v);
                }
            }
            None => d.push(
                Diagnostic::error(format!(
                    "environment `{}` does not set variable `{}`, which has no default",
                    env.name, name.value
                ))
                .at(Loc::new(f, env.def.pipeline.span))
                .help(format!("add `vars: {{{}: …}}` to {f}", name.value)),
            ),
        }
    }
}

/// A variable value, with `${env.…}` filled in; other references are errors.
fn var_value(
    p: &Pipeline,
    file: &Arc<str>,
    value: &Spanned<ParamValue>,
    scope: &Scope<'_>,
    d: &mut Diagnostics,
) -> Option<String> {
    let e = match parse_value(file, value) {
        Ok(e) => e,
        Err(e) => {
            d.push(e);
            return None;
        }
    };
    let loc = Loc::new(file, value.span);
    if let Some(r) = e
        .references()
        .into_iter()
        .find(|r| !matches!(r, Reference::Env(_)))
    {
        d.push(
            Diagnostic::error(format!("a variable value cannot use `{r}`"))
                .at(loc)
                .help(format!(
                    "variable values may use `${{env.name}}`, `${{env.region}}` and `${{env.account}}` only (pipeline `{}`)",
                    p.name
                )),
        );
        return None;
    }
    scope.fill(&e).as_literal()
}
