//! One stack's collapsible `<details>` section: its summary line, the facts about the stack,
//! its message, why it is planned, its tables and its template diff.

use std::fmt::Write as _;

use super::tables::{
    inputs_table, options_table, parameters_table, resources_table, security_table,
};
use crate::plan::model::{Action, Plan, UnitPlan};
use crate::render::markdown::{clip, code, fence_for, html, md_text};
use crate::render::plan_text::action_word;
use crate::render::reason_text;

/// One stack's collapsible section.
pub(super) fn stack_details(out: &mut String, plan: &Plan, env: &str, u: &UnitPlan) {
    let _ = writeln!(
        out,
        "<details><summary>{}</summary>\n",
        summary_html(env, u)
    );
    let _ = writeln!(out, "{}\n", facts(plan, u));

    if let Some(message) = &u.message {
        message_callout(out, u.action, message);
    }

    if !u.reasons.is_empty() {
        let _ = writeln!(out, "**Why**\n");
        for r in &u.reasons {
            let _ = writeln!(out, "- {}", md_text(&reason_text(r)));
        }
        out.push('\n');
    }

    if !u.resources.is_empty() {
        let _ = writeln!(out, "**Resource changes**\n");
        resources_table(out, &u.resources);
        out.push('\n');
    }

    if !u.security.is_empty() {
        let _ = writeln!(out, "**Security changes**\n");
        security_table(out, &u.security);
        out.push('\n');
    }

    if !u.parameters.is_empty() {
        let _ = writeln!(out, "**Parameters**\n");
        parameters_table(out, &u.parameters);
        out.push('\n');
    }

    if !u.options.is_empty() {
        let _ = writeln!(out, "**Stack options**\n");
        options_table(out, &u.options);
        out.push('\n');
    }

    if !u.hooks.is_empty() {
        let _ = writeln!(
            out,
            "**Hooks apply runs** (with the runner's credentials)\n"
        );
        for h in &u.hooks {
            let _ = writeln!(out, "- {}: {}", h.phase, code(&clip(&h.run, 300)));
        }
        out.push('\n');
    }

    if !u.inputs.is_empty() {
        let _ = writeln!(out, "**Inputs known only after apply**\n");
        inputs_table(out, &u.inputs, &u.parameters);
        out.push('\n');
    }

    if let Some(diff) = &u.template_diff {
        let _ = writeln!(out, "**Template diff**\n");
        let fence = fence_for(diff);
        let _ = writeln!(out, "{fence}diff");
        for line in diff.lines() {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "{fence}\n");
    }

    let _ = writeln!(out, "</details>\n");
}

/// The line under a stack's summary: its stack name, change set, status and last update,
/// joined by ` · `.
fn facts(plan: &Plan, u: &UnitPlan) -> String {
    let mut facts = vec![match &u.region {
        Some(region) => format!("Stack {} in {}", code(&u.stack_name), code(region)),
        None => format!("Stack {}", code(&u.stack_name)),
    }];
    if let Some(cs) = &u.change_set {
        let links = cs
            .stack_id
            .as_deref()
            .and_then(|stack| crate::render::console::change_set_links(stack, &cs.id));
        match links {
            // One link (the change set's page leads to the stack): comments stay short.
            Some((cs_url, _)) => facts.push(format!(
                "change set [{}]({cs_url}) ({})",
                code(&cs.name),
                md_text(&cs.change_set_type)
            )),
            None => facts.push(format!(
                "change set {} ({})",
                code(&cs.name),
                md_text(&cs.change_set_type)
            )),
        }
    } else if plan.offline && matches!(u.action, Action::Create | Action::Update) {
        facts.push("predicted offline".to_string());
    }
    if let Some(status) = &u.stack_status {
        facts.push(format!("status {}", code(status)));
    }
    if let Some(when) = &u.last_updated {
        facts.push(format!("last updated {}", md_text(when)));
    }
    facts.join(" · ")
}

/// The stack's message as a callout: `CAUTION` when it is blocked or failed, else `NOTE`.
fn message_callout(out: &mut String, action: Action, message: &str) {
    let kind = match action {
        Action::Blocked | Action::Failed => "CAUTION",
        _ => "NOTE",
    };
    let _ = writeln!(out, "> [!{kind}]");
    for line in message.trim().lines() {
        if line.trim().is_empty() {
            let _ = writeln!(out, ">");
        } else {
            let _ = writeln!(out, "> {}", md_text(line.trim()));
        }
    }
    out.push('\n');
}

/// The `<summary>` of a stack: `<b>staging / network</b> — update: 1 to add, 1 replaced ⚠`,
/// escaped for HTML.
fn summary_html(env: &str, u: &UnitPlan) -> String {
    let mut s = format!(
        "<b>{} / {}</b> — {}",
        html(&clip(env, 100)),
        html(&clip(&u.stack, 100)),
        action_word(u.action)
    );
    if !u.resources.is_empty() {
        let c = u.counts();
        let parts: Vec<String> = [
            (c.add, "to add"),
            (c.modify, "to modify"),
            (c.remove, "to remove"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        let _ = write!(s, ": {}", parts.join(", "));
        if c.replace > 0 {
            let _ = write!(s, " ({} replaced)", c.replace);
        }
    }
    if u.is_destructive() && u.action != Action::Remove {
        s.push_str(" · ⚠ destructive");
    }
    if u.security.iter().any(|s| s.broadens) {
        s.push_str(" · ⚠ access broadens");
    }
    s
}
