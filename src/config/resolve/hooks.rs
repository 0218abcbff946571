//! A unit's hooks: the pipeline stack's, each phase replaced by the environment's for the stack
//! when it gives one; commands filled in and their timeouts held to bounds.

use super::scope::{Scope, static_value};
use super::unit::StackInEnv;
use crate::config::HookDef;
use crate::desired::{Hook, Hooks};
use crate::diag::{Diagnostic, Diagnostics, Loc};

/// How long a hook may run unless it says otherwise, and at most.
const DEFAULT_TIMEOUT_SECONDS: u64 = 600;
const MAX_TIMEOUT_SECONDS: u64 = 3600;

/// Checks the commands of hooks written in `file` (which may only use `${var.…}` and
/// `${env.…}`), for a pipeline check or a stack an environment does not deploy.
pub(super) fn check_hook_texts(
    p: &crate::config::Pipeline,
    file: &std::sync::Arc<str>,
    h: &crate::config::HooksDef,
    d: &mut Diagnostics,
) {
    for hook in [&h.before_apply, &h.after_apply]
        .into_iter()
        .flatten()
        .flatten()
    {
        super::references::check_static_in(p, file, d, &hook.run, "a hook command");
    }
}

/// The hooks of `s`; a hook with a problem is left out (reported).
pub(super) fn resolve_hooks(s: &StackInEnv<'_>, scope: &Scope<'_>, d: &mut Diagnostics) -> Hooks {
    let (pf, ef) = (&s.p.file, &s.env.file);
    let over = s.over.map(|o| &o.hooks);
    let phase = |own: &Option<Vec<HookDef>>, env: Option<&Option<Vec<HookDef>>>| match env
        .and_then(|e| e.as_ref())
    {
        Some(list) => (ef, list.clone()),
        None => (pf, own.clone().unwrap_or_default()),
    };
    let fill = |(file, list): (&std::sync::Arc<str>, Vec<HookDef>), d: &mut Diagnostics| {
        list.iter()
            .filter_map(|h| {
                let run = static_value(s.p, file, &h.run, scope, "a hook command", d)?;
                if run.trim().is_empty() {
                    d.push(
                        Diagnostic::error("a hook with an empty command")
                            .at(Loc::new(file, h.run.span))
                            .help("write the command line to run, or remove the hook"),
                    );
                    return None;
                }
                let timeout = h
                    .timeout_seconds
                    .as_ref()
                    .map_or(DEFAULT_TIMEOUT_SECONDS, |t| t.value);
                if let Some(t) = &h.timeout_seconds
                    && (t.value == 0 || t.value > MAX_TIMEOUT_SECONDS)
                {
                    d.push(
                        Diagnostic::error(format!(
                            "timeout_seconds is {}; a hook may run 1 to {MAX_TIMEOUT_SECONDS} seconds",
                            t.value
                        ))
                        .at(Loc::new(file, t.span)),
                    );
                    return None;
                }
                Some(Hook {
                    run,
                    timeout_seconds: timeout,
                    loc: Loc::new(file, h.run.span),
                })
            })
            .collect::<Vec<_>>()
    };
    Hooks {
        before_apply: fill(
            phase(&s.stack.hooks.before_apply, over.map(|o| &o.before_apply)),
            d,
        ),
        after_apply: fill(
            phase(&s.stack.hooks.after_apply, over.map(|o| &o.after_apply)),
            d,
        ),
    }
}
