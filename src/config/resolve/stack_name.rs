//! A unit's CloudFormation stack name: the environment's `stack_name` for the stack, the
//! pipeline stack's, the pipeline's pattern (`defaults.stack_name`, `${stack}` standing for the
//! key), or `<environment>-<stack key>`, checked against CloudFormation's naming rules.
//! Every stack's name is worked out before any stack is resolved, so that parameters can take
//! other stacks' names (`${stack.stack_name}`).

use std::collections::{BTreeSet, HashMap};

use super::scope::{Scope, fill_static, static_value};
use super::unit::StackInEnv;
use crate::config::expr::is_stack_name;
use crate::config::load::{Environment, Pipeline};
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::yaml::Spanned;

/// What the stack key is written as in a pipeline's `defaults.stack_name`.
pub(super) const STACK: &str = "${stack}";

/// The stack name of each stack an environment deploys and where it was decided, by key.
pub(super) type StackNames = HashMap<String, (String, Loc)>;

/// The names of the `enabled` stacks of `p` in `env` that have a template; a stack whose written
/// name cannot be filled in is left out (reported).
pub(super) fn resolve_stack_names(
    p: &Pipeline,
    env: &Environment,
    scope: &Scope<'_>,
    enabled: &BTreeSet<String>,
    d: &mut Diagnostics,
) -> StackNames {
    let mut names = StackNames::new();
    for (key, stack) in &p.def.stacks {
        if !enabled.contains(key.as_str()) {
            continue;
        }
        if let Some((s, _)) = StackInEnv::of(p, env, key, stack)
            && let Some(name) = resolve_stack_name(&s, scope, d)
        {
            names.insert(key.value.clone(), name);
        }
    }
    names
}

/// The stack name of `s` and where it was decided; `None` when a written name cannot be filled
/// in (reported).
fn resolve_stack_name(
    s: &StackInEnv<'_>,
    scope: &Scope<'_>,
    d: &mut Diagnostics,
) -> Option<(String, Loc)> {
    let (pf, ef) = (&s.p.file, &s.env.file);
    let written = s
        .over
        .and_then(|o| o.stack_name.as_ref().map(|n| (ef, n)))
        .or(s.stack.stack_name.as_ref().map(|n| (pf, n)));
    let (stack_name, name_loc) = match (written, &s.p.def.defaults.stack_name) {
        (Some((file, n)), _) => (
            static_value(s.p, file, n, scope, "a stack name", d)?,
            Loc::new(file, n.span),
        ),
        (None, Some(pattern)) => {
            if !pattern.contains(STACK) {
                // Reported once, by the pipeline's own checks.
                return None;
            }
            let written = Spanned::new(pattern.replace(STACK, &s.key.value), pattern.span);
            (
                fill_static(s.p, pf, &written, scope, "a stack name", d)?,
                Loc::new(pf, pattern.span),
            )
        }
        (None, None) => (
            format!("{}-{}", s.env.name, s.key.value),
            Loc::new(pf, s.key.span),
        ),
    };
    if !is_stack_name(&stack_name) {
        d.push(
            Diagnostic::error(format!("`{stack_name}` is not a valid CloudFormation stack name"))
                .at(name_loc.clone())
                .help("stack names start with a letter and use letters, digits and hyphens, at most 128 characters"),
        );
    }
    Some((stack_name, name_loc))
}
