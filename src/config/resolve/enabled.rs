//! Which stacks an environment deploys: each stack's `enabled` (the environment's setting over
//! the pipeline's), and exactly one stack of every choice.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::load::{Environment, Pipeline};
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::yaml::Spanned;

/// The keys of the stacks `env` deploys.
pub(super) fn enabled_stacks(p: &Pipeline, env: &Environment) -> BTreeSet<String> {
    p.def
        .stacks
        .iter()
        .filter(|(k, s)| {
            env.def
                .stacks
                .get(k.as_str())
                .and_then(|o| o.enabled.as_ref())
                .or(s.enabled.as_ref())
                .is_none_or(|b| b.value)
        })
        .map(|(k, _)| k.value.clone())
        .collect()
}

/// Alternatives: exactly one stack of each choice.
pub(super) fn check_choices(
    p: &Pipeline,
    env: &Environment,
    enabled: &BTreeSet<String>,
    d: &mut Diagnostics,
) {
    let f = &env.file;
    let mut choices: BTreeMap<&str, Vec<&Spanned<String>>> = BTreeMap::new();
    for (key, stack) in &p.def.stacks {
        if let Some(c) = &stack.choice {
            choices.entry(c.value.as_str()).or_default().push(key);
        }
    }
    for (choice, keys) in &choices {
        let on: Vec<&str> = keys
            .iter()
            .filter(|k| enabled.contains(k.as_str()))
            .map(|k| k.value.as_str())
            .collect();
        if on.len() == 1 {
            continue;
        }
        let all: Vec<&str> = keys.iter().map(|k| k.value.as_str()).collect();
        let first = all.first().copied().unwrap_or_default();
        d.push(
            Diagnostic::error(if on.is_empty() {
                format!(
                    "environment `{}` enables none of the stacks of choice `{choice}` ({})",
                    env.name,
                    all.join(", ")
                )
            } else {
                format!(
                    "environment `{}` enables {} stacks of choice `{choice}` ({}); they replace each other",
                    env.name,
                    on.len(),
                    on.join(", ")
                )
            })
            .at(Loc::new(f, env.def.pipeline.span))
            .help(format!(
                "enable exactly one in {f}: `stacks: {{{first}: {{enabled: true}}}}`, and the others `enabled: false`"
            )),
        );
    }
}
