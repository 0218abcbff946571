//! Counts of a plan's stacks by action, and the sentence that sums a plan up (the last line
//! of the terminal form, the line under the pull-request comment's table, the commit status).

use std::fmt::Write as _;

use crate::diag::plural;
use crate::plan::model::{Action, Plan};

/// One sentence on a whole plan: `3 stacks to change in 2 environments (…)` or `No changes.`
pub fn summary_sentence(plan: &Plan) -> String {
    Totals::of(plan).sentence()
}

/// Counts of stacks by action, for the final line.
#[derive(Default)]
pub(crate) struct Totals {
    pub create: usize,
    pub update: usize,
    pub remove: usize,
    pub pending: usize,
    pub no_change: usize,
    pub blocked: usize,
    pub failed: usize,
    /// Environments with at least one stack to change.
    pub environments: usize,
}

impl Totals {
    pub fn of(plan: &Plan) -> Totals {
        let mut t = Totals::default();
        for env in &plan.environments {
            if env.units.iter().any(|u| u.action.is_change()) {
                t.environments += 1;
            }
            for u in &env.units {
                match u.action {
                    Action::Create => t.create += 1,
                    Action::Update => t.update += 1,
                    Action::Remove => t.remove += 1,
                    Action::Pending => t.pending += 1,
                    Action::NoChange => t.no_change += 1,
                    Action::Blocked => t.blocked += 1,
                    Action::Failed => t.failed += 1,
                }
            }
        }
        t
    }

    /// Stacks to change (created, updated, removed or pending).
    pub fn changing(&self) -> usize {
        self.create + self.update + self.remove + self.pending
    }

    /// `3 stacks to change in 2 environments (1 to create, 1 to update, 1 pending), 4 with no
    /// changes.` or `No changes.`, with the stacks that could not be planned.
    pub fn sentence(&self) -> String {
        let mut s = if self.changing() == 0 {
            "No changes".to_string()
        } else {
            let parts: Vec<String> = [
                (self.create, "to create"),
                (self.update, "to update"),
                (self.remove, "to remove"),
                (self.pending, "pending"),
            ]
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
            let mut s = format!(
                "{} to change in {} ({})",
                plural(self.changing(), "stack"),
                plural(self.environments, "environment"),
                parts.join(", ")
            );
            if self.no_change > 0 {
                let _ = write!(s, ", {} with no changes", self.no_change);
            }
            s
        };
        let errors = self.blocked + self.failed;
        if errors > 0 {
            let parts: Vec<String> = [(self.blocked, "blocked"), (self.failed, "failed")]
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| format!("{n} {what}"))
                .collect();
            if self.changing() == 0 {
                let _ = write!(
                    s,
                    "; {} could not be planned ({})",
                    plural(errors, "stack"),
                    parts.join(", ")
                );
            } else {
                let _ = write!(s, ", {errors} could not be planned ({})", parts.join(", "));
            }
        }
        s.push('.');
        s
    }
}
