//! An environment's `apply_requirements:` checked and resolved: a positive number of approvals,
//! team names GitHub can look up.

use std::sync::LazyLock;

use regex::Regex;

use crate::config::load::Environment;
use crate::desired::{ApplyRequirements, Approval};
use crate::diag::{Diagnostic, Diagnostics, Loc};

/// `slug` or `org/slug`, optionally written with CODEOWNERS' leading `@`. GitHub organization
/// names are letters, digits and single hyphens; team slugs are lower-case letters, digits,
/// hyphens, underscores and dots.
static TEAM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^@?(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/)?[A-Za-z0-9][A-Za-z0-9_.-]*$")
        .expect("valid regex")
});

/// The environment's apply requirements; what is wrong with them goes to `d`.
pub fn apply_requirements(env: &Environment, d: &mut Diagnostics) -> ApplyRequirements {
    let Some(def) = &env.def.apply_requirements else {
        return ApplyRequirements::default();
    };
    let loc = |span| Loc::new(&env.file, span);
    let approved = def.approved.as_ref().map(|a| {
        let count = match &a.count {
            Some(c) if c.value == 0 => {
                d.push(
                    Diagnostic::error("`count: 0` asks for no approval")
                        .at(loc(c.span))
                        .help("write at least 1, or remove `approved` to need no approval"),
                );
                1
            }
            Some(c) => c.value,
            None => 1,
        };
        let mut teams = Vec::new();
        for t in &a.teams {
            if TEAM.is_match(t) {
                teams.push(t.trim_start_matches('@').to_string());
            } else {
                d.push(
                    Diagnostic::error(format!("`{}` is not a GitHub team", t.value))
                        .at(loc(t.span))
                        .help("write the team's slug (`platform`) or `org/slug` (`octo-org/platform`)"),
                );
            }
        }
        Approval {
            count,
            teams,
            codeowners: a.codeowners.as_ref().is_some_and(|c| c.value),
            dismiss_stale: a.dismiss_stale.as_ref().is_some_and(|c| c.value),
        }
    });
    ApplyRequirements {
        approved,
        mergeable: def.mergeable.as_ref().is_some_and(|b| b.value),
        undiverged: def.undiverged.as_ref().is_some_and(|b| b.value),
    }
}
