//! The summary table at the top of a plan: one row per stack, with its action, its resource
//! counts and its status.

use std::fmt::Write as _;

use crate::plan::model::{Action, Plan, UnitPlan};
use crate::render::markdown::{cell_code, md_text};
use crate::render::plan_text::{action_word, already_gone, destroys, shorten, waits_for};

/// The table of every stack planned, or a line saying none was.
pub(super) fn summary_table(out: &mut String, plan: &Plan) {
    if plan.environments.iter().all(|e| e.units.is_empty()) {
        let _ = writeln!(out, "No stacks were planned.\n");
        return;
    }
    let _ = writeln!(
        out,
        "| environment | stack | action | add | modify | remove | replace | status |"
    );
    let _ = writeln!(out, "|---|---|---|--:|--:|--:|--:|---|");
    for env in &plan.environments {
        for u in &env.units {
            let counts = if u.resources.is_empty() {
                ["-".to_string(), "-".into(), "-".into(), "-".into()]
            } else {
                let c = u.counts();
                [c.add, c.modify, c.remove, c.replace].map(|n| n.to_string())
            };
            let mut action = action_word(u.action).to_string();
            if destroys(plan, u) {
                action.push_str(" ⚠");
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                md_text(&env.name),
                md_text(&u.stack),
                action,
                counts[0],
                counts[1],
                counts[2],
                counts[3],
                status_cell(plan, u)
            );
        }
    }
    out.push('\n');
}

/// The status cell of the summary table.
fn status_cell(plan: &Plan, u: &UnitPlan) -> String {
    let mut s = match u.action {
        Action::Create | Action::Update => match &u.change_set {
            Some(cs) => format!("change set {}", cell_code(&cs.name)),
            None if plan.offline => "predicted offline".to_string(),
            None if u.options_only() => "stack options only".to_string(),
            None => "no change set".to_string(),
        },
        Action::NoChange => match &u.unchanged_by {
            Some(e) => format!("no changes: {}", e.describe()),
            None => "no changes".to_string(),
        },
        Action::Remove if already_gone(plan, u) => "does not exist: nothing to delete".to_string(),
        Action::Remove => "deleted only with `--allow-delete`".to_string(),
        Action::Pending => {
            let waits = waits_for(u);
            if !waits.is_empty() {
                let names: Vec<String> = waits.iter().map(|s| cell_code(s)).collect();
                format!("waits for {}", names.join(", "))
            } else {
                u.message
                    .as_deref()
                    .map(|m| md_text(&shorten(m, 80)))
                    .unwrap_or_else(|| "waits for its inputs".to_string())
            }
        }
        Action::Blocked | Action::Failed => u
            .message
            .as_deref()
            .map(|m| md_text(&shorten(m, 80)))
            .unwrap_or_default(),
    };
    if u.security.iter().any(|s| s.broadens) {
        s.push_str(" · ⚠ access broadens");
    }
    s
}
