//! The Markdown form of an apply, for the merged pull request and the merge commit: what became
//! of every stack, failures with their root cause first.

use std::fmt::Write as _;

use crate::apply::Report;
use crate::diag::plural;
use crate::render::markdown::{code, md_text};
use crate::render::plan_text::short_commit;
use crate::store::UnitState;

fn word(s: UnitState) -> &'static str {
    match s {
        UnitState::Waiting => "⏸ waiting",
        UnitState::Executing => "still running",
        UnitState::Applied => "✅ applied",
        UnitState::NoChange => "no changes",
        UnitState::Deleted => "🗑 deleted",
        UnitState::Failed => "❌ failed",
        UnitState::Skipped => "⏭ skipped",
    }
}

/// The Markdown summary of one environment's apply.
pub fn apply_markdown(r: &Report) -> String {
    let mut out = String::new();
    let outcome = if r.succeeded() {
        "succeeded"
    } else if r.waiting() {
        "stopped at a gate"
    } else {
        "did not succeed"
    };
    let _ = writeln!(
        out,
        "## formwork apply of {} at {}: {outcome}\n",
        code(&r.run.environment),
        code(short_commit(&r.run.commit)),
    );
    let _ = writeln!(
        out,
        "Run {}, plan {}.\n",
        code(&r.run.id),
        r.run
            .plan_id
            .as_deref()
            .map(code)
            .unwrap_or_else(|| "none".into())
    );
    let failed: Vec<_> = r
        .units
        .iter()
        .filter(|u| u.state == UnitState::Failed)
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "> [!CAUTION]");
        for u in &failed {
            let _ = writeln!(
                out,
                "> {} failed: {}",
                code(&u.stack),
                md_text(u.message.as_deref().unwrap_or("no reason was given"))
            );
        }
        let _ = writeln!(out);
    }
    if r.units.is_empty() {
        let _ = writeln!(out, "No stacks to apply.");
    } else {
        let _ = writeln!(out, "| stack | CloudFormation stack | result | detail |");
        let _ = writeln!(out, "|---|---|---|---|");
        for u in &r.units {
            let mut detail = u.message.as_deref().map(md_text).unwrap_or_default();
            if u.replanned {
                if !detail.is_empty() {
                    detail.push_str("; ");
                }
                detail.push_str("fresh change set made at apply time");
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                md_text(&u.stack),
                md_text(&u.stack_name),
                word(u.state),
                detail
            );
        }
    }
    let parts = crate::render::apply_text::state_counts(r);
    if !parts.is_empty() {
        let _ = writeln!(
            out,
            "\n{}: {}.",
            plural(r.units.len(), "stack"),
            parts.join(", ")
        );
    }
    if r.succeeded() && !r.behind.is_empty() {
        let _ = writeln!(out, "\n{}", crate::render::apply_text::partial_sentence(r));
    }
    for id in &r.recovered {
        let _ = writeln!(
            out,
            "\nThe record of interrupted run {} was finished first.",
            code(id)
        );
    }
    out
}
