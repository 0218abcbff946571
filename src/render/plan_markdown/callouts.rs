//! The callouts under the summary: failing policy rules (`> [!CAUTION]` when one blocks, and
//! their table), destructive changes (`> [!WARNING]`) and broadened access (`> [!CAUTION]`),
//! each listing the stacks concerned.

use std::fmt::Write as _;

use super::tables::{CELL_VALUE_MAX, change_word};
use crate::diag::plural;
use crate::plan::model::{
    Action, Finding, Plan, Replacement, ResourceAction, ResourceChange, RuleSeverity, UnitPlan,
};
use crate::render::markdown::{cell_code, clip, code, md_text};
use crate::render::plan_text::{destroys, security_kind_word};

/// Most names listed per stack in the destructive-changes callout.
const CALLOUT_NAMES_MAX: usize = 10;

/// `> [!WARNING]` listing the stacks that replace or remove resources, and removed stacks.
pub(super) fn destructive_callout(out: &mut String, plan: &Plan) {
    let mut items = Vec::new();
    for env in &plan.environments {
        for u in env.units.iter().filter(|u| destroys(plan, u)) {
            let what = if u.action == Action::Remove {
                format!(
                    "the stack {} is no longer in the config; it will be deleted only with \
                     `--allow-delete`",
                    code(&u.stack_name)
                )
            } else {
                let mut parts = Vec::new();
                let replaced: Vec<&ResourceChange> = u
                    .resources
                    .iter()
                    .filter(|r| {
                        matches!(r.action, ResourceAction::Modify | ResourceAction::Dynamic)
                            && r.replacement == Replacement::True
                    })
                    .collect();
                if !replaced.is_empty() {
                    parts.push(format!("replaces {}", resource_list(&replaced)));
                }
                let removed: Vec<&ResourceChange> = u
                    .resources
                    .iter()
                    .filter(|r| r.action == ResourceAction::Remove)
                    .collect();
                if !removed.is_empty() {
                    parts.push(format!("removes {}", resource_list(&removed)));
                }
                parts.join("; ")
            };
            items.push(format!(
                "> - **{} / {}**: {what}",
                md_text(&env.name),
                md_text(&u.stack)
            ));
        }
    }
    if items.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "> [!WARNING]\n> **Destructive changes**: resources are replaced or deleted.\n>"
    );
    for item in items {
        let _ = writeln!(out, "{item}");
    }
    out.push('\n');
}

/// `` `Vpc` (`AWS::EC2::VPC`), `Subnet` (`AWS::EC2::Subnet`) and 3 more ``.
fn resource_list(resources: &[&ResourceChange]) -> String {
    let mut names: Vec<String> = resources
        .iter()
        .take(CALLOUT_NAMES_MAX)
        .map(|r| format!("{} ({})", code(&r.logical_id), code(&r.resource_type)))
        .collect();
    if resources.len() > CALLOUT_NAMES_MAX {
        names.push(format!("and {} more", resources.len() - CALLOUT_NAMES_MAX));
    }
    names.join(", ")
}

/// `> [!CAUTION]` listing the security changes that widen access.
pub(super) fn broadening_callout(out: &mut String, plan: &Plan) {
    let mut items = Vec::new();
    for env in &plan.environments {
        for u in &env.units {
            for s in u.security.iter().filter(|s| s.broadens) {
                items.push(format!(
                    "> - **{} / {}**: {} {} on {}: {}",
                    md_text(&env.name),
                    md_text(&u.stack),
                    change_word(s.change),
                    security_kind_word(s.kind),
                    code(&s.resource),
                    code(&clip(&s.description, CELL_VALUE_MAX))
                ));
            }
        }
    }
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "> [!CAUTION]\n> **Access broadens**\n>");
    for item in items {
        let _ = writeln!(out, "{item}");
    }
    out.push('\n');
}

/// Most policy findings listed in the comment; the rest are counted (the JSON plan has all).
const POLICY_ROWS_MAX: usize = 50;

/// The policy section: a `> [!CAUTION]` when a blocking rule fails, the failing rules in a
/// table (blocking first), and what the plan was checked against.
pub(super) fn policy_section(out: &mut String, plan: &Plan) {
    let Some(line) = crate::render::policy_text::policy_line(plan) else {
        return;
    };
    let mut rows: Vec<(&str, &UnitPlan, &Finding)> = plan.findings().collect();
    rows.sort_by_key(|(_, _, f)| f.severity);
    let blocking = rows.iter().filter(|(_, _, f)| f.blocks()).count();
    if blocking > 0 {
        let _ = writeln!(
            out,
            "> [!CAUTION]\n> **Policy**: {} of severity `block` {} on this plan; apply refuses it until the template or the rule changes.\n",
            plural(blocking, "finding"),
            if blocking == 1 { "fails" } else { "fail" }
        );
    }
    if !rows.is_empty() {
        let _ = writeln!(out, "| | rule | stack | resource | where | message |");
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for (env, u, f) in rows.iter().take(POLICY_ROWS_MAX) {
            let severity = match (f.severity, &f.overridden_by) {
                (RuleSeverity::Block, None) => "⛔ block".to_string(),
                (RuleSeverity::Block, Some(by)) => {
                    format!("☑️ block, overridden by {}", md_text(by))
                }
                (RuleSeverity::Warn, _) => "⚠️ warn".to_string(),
            };
            let _ = writeln!(
                out,
                "| {severity} | {} ({}) | {} / {} | {} | {} | {} |",
                cell_code(&f.rule),
                cell_code(&f.file),
                md_text(env),
                md_text(&u.stack),
                f.resource.as_deref().map(cell_code).unwrap_or_default(),
                cell_code(&f.location()),
                md_text(&clip(&f.message, CELL_VALUE_MAX))
            );
        }
        if rows.len() > POLICY_ROWS_MAX {
            let _ = writeln!(
                out,
                "\n{} more in the JSON plan (`formwork plan --output json`).",
                rows.len() - POLICY_ROWS_MAX
            );
        }
        out.push('\n');
    }
    let lines: Vec<String> = line.lines().map(|l| md_text(l.trim())).collect();
    let _ = writeln!(out, "{}\n", lines.join("\n\n"));
}
