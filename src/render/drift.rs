//! The drift report (`formwork drift`) for people: text for terminals and Markdown for a
//! GitHub issue body. (Its JSON is the model itself, serialised; docs/json-output.md.)
//!
//! The report comes masked ([`crate::drift::mask`]); the caller still passes the rendered text
//! through the secrets masker, like every output. Control characters in values from AWS are
//! shown escaped in text; Markdown escapes user text with [`super::markdown`]'s helpers.

use std::fmt::Write as _;

use crate::diag::plural;
use crate::drift::model::{DriftReport, DriftState, EnvironmentDrift, StackDrift, Totals};

use super::markdown::{cell_code, clip, code, md_text};
use super::terminal::{Style, printable};

/// The longest value shown in a Markdown table cell, in characters.
const CELL_MAX: usize = 200;

/// One sentence of totals: `1 of 4 stacks drifted (1 in sync, 1 not deployed, 1 failed)`.
pub fn totals_sentence(t: &Totals) -> String {
    let mut parts = Vec::new();
    for (n, word) in [
        (t.in_sync, "in sync"),
        (t.unknown, "unknown"),
        (t.not_deployed, "not deployed"),
        (t.failed, "failed"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    if t.failed_environments > 0 {
        parts.push(format!(
            "{} not checked",
            plural(t.failed_environments, "environment")
        ));
    }
    let head = format!("{} of {} drifted", t.drifted, plural(t.stacks, "stack"));
    if parts.is_empty() {
        head
    } else {
        format!("{head} ({})", parts.join(", "))
    }
}

fn short(revision: &str) -> &str {
    revision.get(..12).unwrap_or(revision)
}

/// Renders the report for a terminal; `color` adds ANSI colours.
pub fn drift_text(report: &DriftReport, color: bool) -> String {
    let st = Style { color };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        st.bold(&format!(
            "drift of the stacks at {}",
            short(&report.revision)
        ))
    );
    for env in &report.environments {
        env_text(&mut out, env, st);
    }
    let _ = writeln!(out, "\n{}", st.bold(&totals_sentence(&report.totals())));
    out
}

fn env_text(out: &mut String, env: &EnvironmentDrift, st: Style) {
    let title = if env.account.is_empty() {
        env.name.clone()
    } else {
        format!(
            "{} (account {}, region {})",
            env.name, env.account, env.region
        )
    };
    let _ = writeln!(out, "\n{}", st.bold(&title));
    if let Some(e) = &env.error {
        let _ = writeln!(out, "  {}", st.red(&format!("not checked: {e}")));
        return;
    }
    if env.stacks.is_empty() {
        let _ = writeln!(out, "  no stacks");
    }
    for s in &env.stacks {
        let mut line = format!("{} ({}): {}", s.stack, s.stack_name, s.status.word());
        if !s.resources.is_empty() {
            let _ = write!(line, ", {}", plural(s.resources.len(), "resource"));
        }
        if let Some(r) = &s.reason {
            let _ = write!(line, ": {r}");
        }
        let _ = writeln!(out, "  {}", st.state(s.status, &line));
        for r in &s.resources {
            let physical = r
                .physical_id
                .as_deref()
                .map(|p| format!(", {p}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    {} ({}{physical}): {}",
                st.bold(&r.logical_id),
                printable(&r.resource_type),
                printable(&r.status)
            );
            for d in &r.differences {
                let _ = writeln!(
                    out,
                    "      {}: expected {}, actual {} ({})",
                    printable(&d.path),
                    printable(&d.expected),
                    printable(&d.actual),
                    printable(&d.difference_type)
                );
            }
        }
    }
}

/// Renders the report as Markdown, e.g. for a GitHub issue body: a summary, a table of stacks
/// per environment, and a table of differences per drifted stack.
pub fn drift_markdown(report: &DriftReport) -> String {
    let totals = report.totals();
    let mut out = String::new();
    let _ = writeln!(out, "## formwork drift\n");
    let _ = writeln!(
        out,
        "**{}** at {}.",
        md_text(&totals_sentence(&totals)),
        code(short(&report.revision))
    );
    for env in &report.environments {
        let _ = writeln!(out, "\n### {}\n", md_text(&env.name));
        if !env.account.is_empty() {
            let _ = writeln!(
                out,
                "account {}, region {}\n",
                code(&env.account),
                code(&env.region)
            );
        }
        if let Some(e) = &env.error {
            let _ = writeln!(out, "Not checked: {}", md_text(e));
            continue;
        }
        if env.stacks.is_empty() {
            let _ = writeln!(out, "No stacks.");
            continue;
        }
        let _ = writeln!(out, "| Stack | CloudFormation stack | Drift | Note |");
        let _ = writeln!(out, "|---|---|---|---|");
        for s in &env.stacks {
            let status = match s.status {
                DriftState::Drifted | DriftState::Failed => format!("**{}**", s.status.word()),
                _ => s.status.word().to_string(),
            };
            let mut note = String::new();
            if !s.resources.is_empty() {
                note = plural(s.resources.len(), "resource");
            }
            if let Some(r) = &s.reason {
                if !note.is_empty() {
                    note.push_str("; ");
                }
                note.push_str(&md_text(&clip(r, 300)));
            }
            let _ = writeln!(
                out,
                "| {} | {} | {status} | {note} |",
                cell_code(&s.stack),
                cell_code(&s.stack_name)
            );
        }
        for s in env.stacks.iter().filter(|s| !s.resources.is_empty()) {
            stack_table(&mut out, s);
        }
    }
    out
}

fn stack_table(out: &mut String, s: &StackDrift) {
    let _ = writeln!(out, "\n#### {}\n", code(&s.stack_name));
    let _ = writeln!(
        out,
        "| Resource | Type | Physical id | Status | Property | Expected | Actual | Difference |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    let cell = |v: &str| cell_code(&clip(v, CELL_MAX));
    for r in &s.resources {
        let head = format!(
            "| {} | {} | {} | {} |",
            cell(&r.logical_id),
            cell(&r.resource_type),
            r.physical_id.as_deref().map(cell).unwrap_or_default(),
            md_text(&r.status)
        );
        if r.differences.is_empty() {
            let _ = writeln!(out, "{head} | | | |");
        }
        for d in &r.differences {
            let _ = writeln!(
                out,
                "{head} {} | {} | {} | {} |",
                cell(&d.path),
                cell(&d.expected),
                cell(&d.actual),
                md_text(&d.difference_type)
            );
        }
    }
}

impl Style {
    fn state(self, state: DriftState, s: &str) -> String {
        match state {
            DriftState::InSync => self.paint("32", s),
            DriftState::Drifted => self.paint("33", s),
            DriftState::Unknown | DriftState::NotDeployed => self.paint("2", s),
            DriftState::Failed => self.paint("1;31", s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::model::{JSON_VERSION, PropertyDrift, ResourceDrift};

    fn report() -> DriftReport {
        let drifted = StackDrift {
            resources: vec![
                ResourceDrift {
                    logical_id: "Queue".into(),
                    resource_type: "AWS::SQS::Queue".into(),
                    physical_id: Some("https://sqs/q|1".into()),
                    status: "modified".into(),
                    differences: vec![PropertyDrift {
                        path: "/DelaySeconds".into(),
                        expected: "0".into(),
                        actual: "120\x1b[2J".into(),
                        difference_type: "not_equal".into(),
                        masked: false,
                    }],
                },
                ResourceDrift {
                    logical_id: "Topic".into(),
                    resource_type: "AWS::SNS::Topic".into(),
                    physical_id: None,
                    status: "deleted".into(),
                    differences: vec![],
                },
            ],
            ..StackDrift::bare("app", "prod-app", DriftState::Drifted)
        };
        let failed = StackDrift {
            reason: Some("Failed on *Fn* [x](y)".into()),
            ..StackDrift::bare("fn", "prod-fn", DriftState::Failed)
        };
        DriftReport {
            version: JSON_VERSION,
            revision: "0123456789abcdef".into(),
            environments: vec![EnvironmentDrift {
                name: "prod".into(),
                account: "123456789012".into(),
                region: "us-east-1".into(),
                error: None,
                stacks: vec![
                    drifted,
                    failed,
                    StackDrift::bare("db", "prod-db", DriftState::NotDeployed),
                ],
            }],
        }
    }

    #[test]
    fn drift_text_names_resources_and_properties() {
        let text = drift_text(&report(), false);
        assert!(
            text.contains("app (prod-app): drifted, 2 resources"),
            "{text}"
        );
        assert!(text.contains("Queue (AWS::SQS::Queue, https://sqs/q|1): modified"));
        assert!(text.contains("/DelaySeconds: expected 0, actual 120\\u{1b}[2J (not_equal)"));
        assert!(text.contains("Topic (AWS::SNS::Topic): deleted"));
        assert!(text.contains("db (prod-db): not deployed"));
        assert!(text.contains("1 of 3 stacks drifted (1 not deployed, 1 failed)"));
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn drift_markdown_has_a_table_per_drifted_stack_with_escaped_text() {
        let md = drift_markdown(&report());
        assert!(md.contains("#### `prod-app`"), "{md}");
        assert!(md.contains(
            "| `Queue` | `AWS::SQS::Queue` | `https://sqs/q\\|1` | modified | `/DelaySeconds` | `0` |"
        ));
        assert!(md.contains("| `Topic` | `AWS::SNS::Topic` |  | deleted | | | |"));
        assert!(md.contains("Failed on \\*Fn\\* \\[x\\](y)"), "{md}");
        assert_eq!(md.matches("#### ").count(), 1);
    }
}
