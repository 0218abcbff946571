//! The policy findings of a plan in words: a line per failing rule under an environment's
//! table (terminal), and the one line saying what the plan was checked against and what that
//! means for apply (terminal and Markdown).

use std::fmt::Write as _;

use crate::diag::plural;
use crate::plan::model::{Finding, Plan, RuleSeverity, UnitPlan};
use crate::render::plan_text::short_commit;
use crate::render::terminal::{Style, printable};

/// The failing policy rules of an environment's stacks, blocking ones first.
pub(crate) fn policy_findings(out: &mut String, units: &[UnitPlan], st: Style) {
    let mut rows: Vec<(&UnitPlan, &Finding)> = units
        .iter()
        .flat_map(|u| u.policy.iter().map(move |f| (u, f)))
        .collect();
    if rows.is_empty() {
        return;
    }
    rows.sort_by_key(|(_, f)| f.severity);
    out.push('\n');
    for (u, f) in rows {
        let (word, paint): (&str, fn(Style, &str) -> String) = match (f.severity, &f.overridden_by)
        {
            (RuleSeverity::Block, None) => ("policy BLOCK", Style::red),
            (RuleSeverity::Block, Some(_)) => ("policy block (overridden)", Style::yellow),
            (RuleSeverity::Warn, _) => ("policy warning", Style::yellow),
        };
        let on = f
            .resource
            .as_deref()
            .map(|r| format!(" on {r}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}",
            paint(
                st,
                &printable(&format!(
                    "{word}: {} ({}): {}{on} at {}",
                    f.rule,
                    f.file,
                    u.stack,
                    f.location()
                ))
            )
        );
        let _ = writeln!(out, "    {}", printable(&f.message));
        if let Some(by) = &f.overridden_by {
            let _ = writeln!(out, "    overridden by {}", printable(by));
        }
    }
}

/// What the plan was checked against, and what that means for apply; `None` without rules.
pub fn policy_line(plan: &Plan) -> Option<String> {
    let p = plan.policy.as_ref()?;
    let all = plan.findings().count();
    let blocking = plan.blocking_findings().len();
    let overridden = plan
        .findings()
        .filter(|(_, _, f)| f.overridden_by.is_some())
        .count();
    let warnings = all - blocking - overridden;
    let mut line = format!(
        "Policy: {} checked against {} from {}",
        plural(p.stacks_checked, "stack"),
        plural(p.files.len(), "rule file"),
        short_commit(&p.rules_from)
    );
    match (blocking, warnings) {
        (0, 0) => line.push_str("; every rule passes."),
        (0, w) => {
            let _ = write!(line, "; {}, none blocking.", plural(w, "warning"));
        }
        (b, w) => {
            let _ = write!(
                line,
                "; {} ({} warning{}): apply refuses this plan.",
                plural(b, "blocking finding"),
                w,
                if w == 1 { "" } else { "s" }
            );
        }
    }
    if overridden > 0 {
        let _ = write!(
            line,
            " {} overridden (recorded).",
            plural(overridden, "blocking finding")
        );
    }
    for problem in &p.problems {
        let _ = write!(line, "\n  rules not read: {}", printable(problem));
    }
    Some(line)
}
