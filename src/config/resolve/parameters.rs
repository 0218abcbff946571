//! A unit's parameters: the pipeline's defaults (where the template declares them), the
//! stack's and the environment's, merged in that order; each value parsed, its references
//! checked, the variables it uses spliced in (with the references their values hold), the
//! stacks whose outputs it takes recorded as dependencies, and, once filled in, checked
//! against the template's declaration. Also: naming a parameter the template does not
//! declare.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::references::{Allowed, check_refs, dependency_of};
use super::scope::Scope;
use super::unit::StackInEnv;
use super::values::{At, parse_value};
use crate::config::expr::{self, Expr, Reference};
use crate::config::load::Environment;
use crate::config::model::ParamValue;
use crate::desired::{Dependency, DependencyKind, ParamSetting};
use crate::diag::{Diagnostic, Diagnostics, Loc, Severity};
use crate::suggest;
use crate::template::{ParamCheck, ParameterDecl, Template, check_value};
use crate::yaml::Spanned;

/// A unit's parameter settings, and the stacks whose outputs they take.
pub(super) struct Parameters {
    pub(super) settings: BTreeMap<String, ParamSetting>,
    pub(super) dependencies: Vec<Dependency>,
}

/// The value chosen for a parameter, and where it was written.
struct Chosen<'a> {
    file: &'a Arc<str>,
    value: &'a Spanned<ParamValue>,
    /// Set by the pipeline's defaults alone.
    from_defaults: bool,
}

/// An error for parameter `pname`, set for `stack` in `file`, which template `t` does not
/// declare.
pub(super) fn unknown_parameter(
    file: &Arc<str>,
    pname: &Spanned<String>,
    stack: &str,
    t: &Template,
) -> Diagnostic {
    let near = suggest::nearest(pname, t.parameters.keys().map(String::as_str));
    Diagnostic::error(format!(
        "the template of stack `{stack}` has no parameter `{}`",
        pname.value
    ))
    .at(Loc::new(file, pname.span))
    .label_opt(near.map(|n| format!("did you mean `{n}`?")))
    .help(if t.parameters.is_empty() {
        "the template declares no Parameters".to_string()
    } else {
        format!(
            "its parameters are: {}",
            t.parameters.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })
}

/// Resolves the parameters of stack `s`; `enabled` are the stacks the environment deploys.
pub(super) fn resolve_parameters(
    s: &StackInEnv<'_>,
    scope: &Scope<'_>,
    enabled: &BTreeSet<String>,
    d: &mut Diagnostics,
) -> Parameters {
    let mut out = Parameters {
        settings: BTreeMap::new(),
        dependencies: Vec::new(),
    };
    // Set, but not to a valid expression: reported once, as that, not also as missing.
    let mut malformed = BTreeSet::new();
    for (name, chosen) in merge_parameters(s, d) {
        match resolve_parameter(s, scope, enabled, &name, &chosen, &mut out.dependencies, d) {
            Some(setting) => {
                out.settings.insert(name, setting);
            }
            None => {
                malformed.insert(name);
            }
        }
    }
    check_required(s, &out.settings, &malformed, d);
    out
}

/// Defaults (where declared), then the stack's, then the environment's (which must be
/// declared, when the template is known).
fn merge_parameters<'a>(s: &StackInEnv<'a>, d: &mut Diagnostics) -> BTreeMap<String, Chosen<'a>> {
    let p = s.p;
    let mut merged = BTreeMap::new();
    for (name, value) in &p.def.defaults.parameters {
        let declared = s
            .template
            .is_none_or(|t| t.parameters.contains_key(name.as_str()));
        if declared {
            let chosen = Chosen {
                file: &p.file,
                value,
                from_defaults: true,
            };
            merged.insert(name.value.clone(), chosen);
        }
    }
    for (name, value) in &s.stack.parameters {
        let chosen = Chosen {
            file: &p.file,
            value,
            from_defaults: false,
        };
        merged.insert(name.value.clone(), chosen);
    }
    let Some(over) = s.over else {
        return merged;
    };
    for (name, value) in &over.parameters {
        if let Some(t) = s.template
            && !t.parameters.contains_key(name.as_str())
        {
            d.push(unknown_parameter(&s.env.file, name, s.key, t));
            continue;
        }
        let chosen = Chosen {
            file: &s.env.file,
            value,
            from_defaults: false,
        };
        merged.insert(name.value.clone(), chosen);
    }
    merged
}

/// One parameter's setting; `None` when its value is not a valid expression (reported).
fn resolve_parameter(
    s: &StackInEnv<'_>,
    scope: &Scope<'_>,
    enabled: &BTreeSet<String>,
    name: &str,
    chosen: &Chosen<'_>,
    dependencies: &mut Vec<Dependency>,
    d: &mut Diagnostics,
) -> Option<ParamSetting> {
    let at = At::value(chosen.file, chosen.value);
    let loc = at.whole();
    let written = match parse_value(chosen.file, chosen.value) {
        Ok(e) => e,
        Err(e) => {
            d.push(e);
            return None;
        }
    };
    let mut ok = true;
    for diag in check_refs(s.p, Some(s.key), &written, &at, Allowed::All, "a parameter") {
        ok &= diag.severity != Severity::Error;
        d.push(diag);
    }
    // Variables holding references read when planning are taken as those references.
    let e = scope.splice_vars(&written);
    let named = Named {
        scope,
        written: &written,
        at: &at,
    };
    ok &= output_dependencies(s, enabled, &e, &named, dependencies, d);
    for r in e.references() {
        if let Reference::EnvOutput {
            environment,
            stack,
            output,
        } = r
        {
            scope.note_remote(crate::desired::remote::RemoteRef {
                environment: environment.clone(),
                stack: stack.clone(),
                output: output.clone(),
                taken_by: s.key.value.clone(),
                loc: named.of(r).1,
            });
        }
    }
    let names_ok = scope.check_static_vars(&e, &at, super::variables::NAMES_INSIDE, d);
    let value = scope.fill(&e);
    let decl = s.template.and_then(|t| t.parameters.get(name));
    if let (Some(decl), Some(text), true) = (decl, value.as_literal(), ok) {
        check_declared(s.env, name, decl, &text, &e, &loc, d);
    }
    if names_ok {
        check_ssm_paths(s.env, &e, &value, &loc, d);
    }
    Some(ParamSetting {
        no_echo: decl.is_some_and(|x| x.no_echo),
        from_defaults: chosen.from_defaults,
        value,
        loc,
    })
}

/// Where the references of a parameter's value were written: in the value, or in the value of
/// a variable it uses.
struct Named<'a> {
    scope: &'a Scope<'a>,
    written: &'a Expr,
    at: &'a At<'a>,
}

impl Named<'_> {
    /// Where `r` was written, and the variable it came through when it was not written in the
    /// parameter itself.
    fn of(&self, r: &Reference) -> (Option<&str>, Loc) {
        if !self.written.references().contains(&r) {
            for v in self.written.references() {
                if let Reference::Var(name) = v
                    && let Some(loc) = self.scope.var(name).and_then(|x| x.loc_of(r))
                {
                    return (Some(name.as_str()), loc.clone());
                }
            }
        }
        (None, self.at.of(r))
    }
}

/// Records the stacks whose outputs or stack names `e` takes as dependencies; one the
/// environment does not deploy is an error, and so is the stack's own output taken through a
/// variable. `false` after such an error.
fn output_dependencies(
    s: &StackInEnv<'_>,
    enabled: &BTreeSet<String>,
    e: &Expr,
    named: &Named<'_>,
    dependencies: &mut Vec<Dependency>,
    d: &mut Diagnostics,
) -> bool {
    let mut ok = true;
    for r in e.references() {
        let Some((stack, kind)) = dependency_of(r) else {
            continue;
        };
        let (var, at) = named.of(r);
        let through = var
            .map(|v| format!(" through variable `{v}`"))
            .unwrap_or_default();
        if stack == s.key.value {
            if let (Some(v), DependencyKind::Output { .. }) = (var, &kind) {
                ok = false;
                d.push(
                    Diagnostic::error(format!(
                        "stack `{stack}` takes its own output `{r}`{through}"
                    ))
                    .at(at)
                    .help(format!(
                        "a stack cannot take its own outputs as parameters; do not use `${{var.{v}}}` in the parameters of `{stack}` (at {}), or use the resource directly inside the template",
                        named.at.whole()
                    )),
                );
            }
            continue;
        }
        if !s.p.def.stacks.contains_key(stack) {
            continue;
        }
        if !enabled.contains(stack) {
            ok = false;
            d.push(
                Diagnostic::error(format!(
                    "stack `{}` takes `{r}`{through}, but stack `{stack}` is disabled in environment `{}`",
                    s.key.value, s.env.name
                ))
                .at(at)
                .help(format!(
                    "enable `{stack}` in {} (stacks: {{{stack}: {{enabled: true}}}}), or disable `{}` too",
                    s.env.file, s.key.value
                )),
            );
            continue;
        }
        dependencies.push(Dependency {
            stack: stack.to_string(),
            kind,
            loc: named.at.whole(),
        });
    }
    ok
}

/// Checks a literal value against the parameter's declaration in the template. The value of a
/// NoEcho parameter is not shown, nor the expression it was filled in from.
fn check_declared(
    env: &Environment,
    name: &str,
    decl: &ParameterDecl,
    text: &str,
    e: &Expr,
    loc: &Loc,
    d: &mut Diagnostics,
) {
    match check_value(name, decl, text) {
        ParamCheck::Fine => {}
        ParamCheck::Invalid { message, help } => {
            let origin = if e.as_literal().is_none() && !decl.no_echo {
                format!(" (after filling in {e})")
            } else {
                String::new()
            };
            d.push(
                Diagnostic::error(format!("{message} in environment `{}`{origin}", env.name))
                    .at(loc.clone())
                    .help_opt(help),
            );
        }
        ParamCheck::Unchecked { reason } => {
            d.push(Diagnostic::warning(reason).at(loc.clone()));
        }
    }
}

/// SSM paths, once variables are filled in, must be whole and valid parameter names (a path
/// written without variables was checked when it was parsed).
fn check_ssm_paths(env: &Environment, e: &Expr, value: &Expr, loc: &Loc, d: &mut Diagnostics) {
    if let Some(r) = value
        .references()
        .into_iter()
        .find(|r| matches!(r, Reference::Ssm(path) if path.as_literal().is_none()))
    {
        d.push(
            Diagnostic::error(format!("the SSM path in `{r}` has unresolved parts"))
                .at(loc.clone())
                .help("fix the variables it uses"),
        );
    }
    for r in value.references() {
        if let Reference::Secret { name, .. } = r {
            match name.as_literal() {
                None => d.push(
                    Diagnostic::error(format!("the secret's name in `{r}` has unresolved parts"))
                        .at(loc.clone())
                        .help("fix the variables it uses"),
                ),
                Some(n) if !expr::is_secret_name(&n) => d.push(
                    Diagnostic::error(format!(
                        "`{n}` is not a Secrets Manager secret name (after filling in {e} in environment `{}`)",
                        env.name
                    ))
                    .at(loc.clone())
                    .help(expr::SECRET_NAMES),
                ),
                Some(_) => {}
            }
        }
        if let Reference::Ssm(path) = r
            && let Some(name) = path.as_literal()
            && let Err(message) = expr::check_ssm_name(&name)
        {
            d.push(
                Diagnostic::error(format!(
                    "{message} (after filling in {e} in environment `{}`)",
                    env.name
                ))
                .at(loc.clone())
                .help(expr::SSM_NAMES),
            );
        }
    }
}

/// Every parameter the template requires (no Default) must be set, unless its value was
/// reported as malformed already.
fn check_required(
    s: &StackInEnv<'_>,
    settings: &BTreeMap<String, ParamSetting>,
    malformed: &BTreeSet<String>,
    d: &mut Diagnostics,
) {
    let Some(t) = s.template else {
        return;
    };
    let (pf, ef) = (&s.p.file, &s.env.file);
    for (name, decl) in &t.parameters {
        if decl.default.is_some() || settings.contains_key(name) || malformed.contains(name) {
            continue;
        }
        let at = s
            .over
            .and_then(|_| s.env.def.stacks.get_key_value(s.key.as_str()))
            .map(|(k, _)| Loc::new(ef, k.span))
            .unwrap_or_else(|| Loc::new(pf, s.key.span));
        d.push(
            Diagnostic::error(format!(
                "stack `{}` in environment `{}` has no value for parameter `{name}`, which its template requires (no Default)",
                s.key.value, s.env.name
            ))
            .at(at)
            .help(format!(
                "set it under `stacks: {{{}: {{parameters: {{{name}: …}}}}}}` in {ef} or in {pf}",
                s.key.value
            )),
        );
    }
}
