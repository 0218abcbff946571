//! The summary of an apply for the terminal: every stack with what became of it and why.

use std::fmt::Write as _;

use crate::apply::Report;
use crate::diag::plural;
use crate::store::UnitState;

fn word(s: UnitState) -> &'static str {
    match s {
        UnitState::Waiting => "waiting",
        UnitState::Executing => "still running",
        UnitState::Applied => "applied",
        UnitState::NoChange => "no changes",
        UnitState::Deleted => "deleted",
        UnitState::Failed => "FAILED",
        UnitState::Skipped => "skipped",
    }
}

/// The text summary of an apply.
pub fn apply_text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Apply {} of {} at {} (plan {}): {}",
        r.run.id,
        r.run.environment,
        &r.run.commit[..r.run.commit.len().min(12)],
        r.run.plan_id.as_deref().unwrap_or("-"),
        r.run.status.as_str()
    );
    for id in &r.recovered {
        let _ = writeln!(out, "  (first finished the record of interrupted run {id})");
    }
    let width = r.units.iter().map(|u| u.stack.len()).max().unwrap_or(0);
    for u in &r.units {
        let fresh = if u.replanned {
            " (fresh change set)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {:<width$}  {:<12}{fresh}{}",
            u.stack,
            word(u.state),
            u.message
                .as_deref()
                .map(|m| format!("  {m}"))
                .unwrap_or_default()
        );
    }
    let parts = state_counts(r);
    let _ = writeln!(
        out,
        "\n{}: {}.",
        plural(r.units.len(), "stack"),
        parts.join(", ")
    );
    if r.succeeded() && !r.behind.is_empty() {
        let _ = writeln!(out, "{}", partial_sentence(r));
    }
    out
}

/// For a run after which some stacks are not at its commit: which, and what that means.
pub(crate) fn partial_sentence(r: &Report) -> String {
    format!(
        "Not every stack of {} is at this commit ({} not: {}): its deployed commit stays where it was.",
        r.run.environment,
        r.behind.len(),
        r.behind.join(", ")
    )
}

/// `3 applied`, `1 failed`, … for the states that occur, in a fixed order.
pub(crate) fn state_counts(r: &Report) -> Vec<String> {
    let count = |s: UnitState| r.units.iter().filter(|u| u.state == s).count();
    [
        (UnitState::Applied, "applied"),
        (UnitState::NoChange, "unchanged"),
        (UnitState::Deleted, "deleted"),
        (UnitState::Failed, "failed"),
        (UnitState::Skipped, "skipped"),
        (UnitState::Waiting, "waiting"),
    ]
    .into_iter()
    .filter(|(s, _)| count(*s) > 0)
    .map(|(s, w)| format!("{} {w}", count(s)))
    .collect()
}
