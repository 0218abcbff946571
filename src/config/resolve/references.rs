//! What a config value may refer to: other stacks' outputs (which must exist and not be the
//! stack's own), the pipeline's variables, and, in values that are neither parameters nor
//! variables, only `${var.…}` and `${env.…}`.

use std::sync::Arc;

use super::values::{At, parse_string};
use crate::config::expr::{Expr, Reference, STACK_NAME};
use crate::config::load::Pipeline;
use crate::desired::DependencyKind;
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::suggest;
use crate::yaml::Spanned;

/// Which references a kind of value may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Allowed {
    /// Parameters: everything.
    All,
    /// Variable values: everything, each output checked as a parameter's would be, for
    /// whichever stack takes it.
    Variable,
    /// Tags, stack names, URLs and stack options: `${var.…}` and `${env.…}` only.
    Static,
}

/// The stack a reference makes a dependency of (of the same environment), and how: an
/// output or a stack name; `None` for references to nothing deployed with it.
pub(super) fn dependency_of(r: &Reference) -> Option<(&str, DependencyKind)> {
    match r {
        Reference::Output { stack, output } => Some((
            stack,
            DependencyKind::Output {
                output: output.clone(),
            },
        )),
        Reference::StackName { stack } => Some((stack, DependencyKind::StackName)),
        _ => None,
    }
}

/// Checks the references of expression `e`, written at `at` in a value of kind `what`; `from`
/// is the stack whose value it is, when it is one stack's.
pub(super) fn check_refs(
    p: &Pipeline,
    from: Option<&str>,
    e: &Expr,
    at: &At<'_>,
    allowed: Allowed,
    what: &str,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for r in e.references() {
        let loc = &at.of(r);
        match r {
            Reference::Output { stack, output } => {
                if allowed == Allowed::Static {
                    out.push(
                        Diagnostic::error(format!("{what} cannot use stack outputs (`{r}`)"))
                            .at(loc.clone())
                            .help("only parameters take stack outputs; here use `${var.NAME}` or `${env.…}`"),
                    );
                } else if from.is_some() || allowed == Allowed::Variable {
                    out.extend(check_output_ref(p, from, stack, output, loc));
                }
            }
            Reference::StackName { stack } => {
                if allowed == Allowed::Static {
                    out.push(
                        Diagnostic::error(format!("{what} cannot use stack names (`{r}`)"))
                            .at(loc.clone())
                            .help("only parameters take other stacks' names; here use `${var.NAME}` or `${env.…}`"),
                    );
                } else if !p.def.stacks.contains_key(stack.as_str()) {
                    out.push(unknown_stack(p, stack, STACK_NAME, loc));
                }
            }
            Reference::Ssm(_) if allowed == Allowed::Static => out.push(
                Diagnostic::error(format!("{what} cannot use SSM parameters (`{r}`)"))
                    .at(loc.clone())
                    .help("only parameters are read from SSM"),
            ),
            Reference::Secret { .. } if allowed == Allowed::Static => out.push(
                Diagnostic::error(format!("{what} cannot use secrets (`{r}`)"))
                    .at(loc.clone())
                    .help("only parameters are read from Secrets Manager"),
            ),
            Reference::External { .. } if allowed == Allowed::Static => out.push(
                Diagnostic::error(format!("{what} cannot use outputs of other stacks (`{r}`)"))
                    .at(loc.clone())
                    .help(
                        "only parameters take stack outputs; here use `${var.NAME}` or `${env.…}`",
                    ),
            ),
            Reference::EnvOutput { .. } if allowed == Allowed::Static => out.push(
                Diagnostic::error(format!(
                    "{what} cannot use outputs of other environments (`{r}`)"
                ))
                .at(loc.clone())
                .help("only parameters take stack outputs; here use `${var.NAME}` or `${env.…}`"),
            ),
            Reference::Var(v) => out.extend(check_var_ref(p, v, loc)),
            Reference::Ssm(_)
            | Reference::Secret { .. }
            | Reference::Env(_)
            | Reference::External { .. }
            | Reference::EnvOutput { .. } => {}
        }
    }
    out
}

/// Checks one reference to another stack's output, taken by stack `from` when known; `None`
/// when it is fine.
fn check_output_ref(
    p: &Pipeline,
    from: Option<&str>,
    stack: &str,
    output: &str,
    loc: &Loc,
) -> Option<Diagnostic> {
    if let Some(from) = from
        && stack == from
    {
        return Some(
            Diagnostic::error(format!("stack `{from}` takes its own output `${{{stack}.{output}}}`"))
                .at(loc.clone())
                .help("a stack cannot take its own outputs as parameters; use the resource directly inside the template"),
        );
    }
    if !p.def.stacks.contains_key(stack) {
        return Some(unknown_stack(p, stack, output, loc));
    }
    // What the template declares, when known offline.
    let stack_template = p.templates.get(stack)?;
    let template = stack_template.parsed()?;
    if let Some(decl) = template.outputs.get(output) {
        return decl.condition.as_ref().map(|c| {
            Diagnostic::warning(format!(
                "output `{output}` of stack `{stack}` exists only when condition `{c}` holds"
            ))
            .at(loc.clone())
            .help("make sure the condition holds in every environment that uses this value")
        });
    }
    let outputs: Vec<String> = template.outputs.keys().cloned().collect();
    let near = suggest::nearest(output, outputs.iter().map(String::as_str));
    let path = stack_template.local_path().unwrap_or_default();
    Some(
        Diagnostic::error(format!(
            "stack `{stack}` has no output `{output}` (its template {path} does not declare it)"
        ))
        .at(loc.clone())
        .label_opt(near.map(|n| format!("did you mean `{n}`?")))
        .help(if outputs.is_empty() {
            format!("the template of `{stack}` declares no Outputs; add one")
        } else {
            format!("outputs of `{stack}`: {}", outputs.join(", "))
        }),
    )
}

/// A reference to the output of a stack the pipeline does not have.
fn unknown_stack(p: &Pipeline, stack: &str, output: &str, loc: &Loc) -> Diagnostic {
    let near = suggest::nearest(stack, p.def.stacks.keys().map(|k| k.value.as_str()));
    Diagnostic::error(format!(
        "`${{{stack}.{output}}}` refers to stack `{stack}`, which pipeline `{}` does not have",
        p.name
    ))
    .at(loc.clone())
    .label_opt(near.map(|n| format!("did you mean `{n}`?")))
    .help(format!(
        "the stacks of pipeline `{}` are: {}",
        p.name,
        stack_names(p)
    ))
}

/// The names of a pipeline's stacks, as a list for a help line.
pub(super) fn stack_names(p: &Pipeline) -> String {
    let names: Vec<&str> = p.def.stacks.keys().map(|k| k.value.as_str()).collect();
    names.join(", ")
}

/// Checks a reference to a pipeline variable; `None` when the pipeline declares it.
fn check_var_ref(p: &Pipeline, name: &str, loc: &Loc) -> Option<Diagnostic> {
    if p.def.vars.contains_key(name) {
        return None;
    }
    let near = suggest::nearest(name, p.def.vars.keys().map(|k| k.value.as_str()));
    Some(
        Diagnostic::error(format!(
            "variable `{name}` is not declared in pipeline `{}`",
            p.name
        ))
        .at(loc.clone())
        .label_opt(near.map(|n| format!("did you mean `{n}`?")))
        .help(format!("declare it under `vars:` in {}", p.file)),
    )
}

/// Checks a value of the pipeline file that may only use `${var.…}` and `${env.…}`.
pub(super) fn check_static(p: &Pipeline, d: &mut Diagnostics, v: &Spanned<String>, what: &str) {
    check_static_in(p, &p.file, d, v, what);
}

/// Checks a value that may only use `${var.…}` and `${env.…}`, written in `file`.
pub(super) fn check_static_in(
    p: &Pipeline,
    file: &Arc<str>,
    d: &mut Diagnostics,
    v: &Spanned<String>,
    what: &str,
) {
    checked_static(p, file, d, v, what);
}

/// The expression of a value that may only use `${var.…}` and `${env.…}`, written in `file`;
/// `None` after reporting what is wrong with it.
pub(super) fn checked_static(
    p: &Pipeline,
    file: &Arc<str>,
    d: &mut Diagnostics,
    v: &Spanned<String>,
    what: &str,
) -> Option<Expr> {
    match parse_string(file, v) {
        Ok(e) => {
            let problems = check_refs(p, None, &e, &At::string(file, v), Allowed::Static, what);
            let failed = !problems.is_empty();
            for x in problems {
                d.push(x);
            }
            (!failed).then_some(e)
        }
        Err(e) => {
            d.push(e);
            None
        }
    }
}
