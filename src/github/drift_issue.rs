//! One GitHub issue per environment about its drift, kept up to date by the daemon's scheduled
//! drift checks (docs/drift.md): opened when a stack has drifted, its body replaced with each
//! check that still finds drift, closed when a check finds every stack in sync. A check that
//! could not finish changes nothing: it cannot say the environment is clean.
//!
//! The issue is found again by its label and a marker in its body naming the environment, so
//! renaming it or editing its text by hand does not lose it.

use super::client::{GitHub, GitHubError, Issue};
use crate::drift::model::{DriftReport, EnvironmentDrift, JSON_VERSION};
use crate::render::drift::drift_markdown;

/// The label of drift issues when the server config names none.
pub const DEFAULT_LABEL: &str = "formwork-drift";

/// GitHub's limit on an issue body, in characters ("Issue body is too long (maximum is 65536
/// characters)").
const BODY_LIMIT: usize = 65_536;

/// What keeping the issue did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssueChange {
    Opened(u64),
    Updated(u64),
    Closed(u64),
    /// Nothing to say (no drift and no issue open, or the check did not finish).
    None,
}

/// The marker that finds an environment's issue again.
fn marker(environment: &str) -> String {
    format!("<!-- formwork:drift environment={environment} -->")
}

/// Opens, updates or closes the drift issue of `env` after a check at `revision`, under
/// `label`; `open` are the open issues with that label (listed once for a whole check).
pub async fn keep(
    gh: &GitHub,
    env: &EnvironmentDrift,
    revision: &str,
    label: &str,
    open: &[Issue],
) -> Result<IssueChange, GitHubError> {
    let report = DriftReport {
        version: JSON_VERSION,
        revision: revision.to_string(),
        environments: vec![env.clone()],
    };
    if report.has_failures() && !report.has_drift() {
        return Ok(IssueChange::None);
    }
    let mark = marker(&env.name);
    let open = open
        .iter()
        .find(|i| i.body.as_deref().is_some_and(|b| b.contains(&mark)));
    let title = format!("Drift in environment {}", env.name);
    match (report.has_drift(), open) {
        (true, None) => {
            let labels = [label.to_string()];
            let issue: Issue = gh
                .create_issue(&title, &body(&report, &mark), &labels)
                .await?;
            Ok(IssueChange::Opened(issue.number))
        }
        (true, Some(issue)) => {
            gh.update_issue(issue.number, &title, &body(&report, &mark), false)
                .await?;
            Ok(IssueChange::Updated(issue.number))
        }
        (false, Some(issue)) => {
            let text = format!(
                "{mark}\n{}\n\nEvery stack of `{}` is in sync again (checked at `{}`); closed by formwork.\n",
                drift_markdown(&report),
                env.name,
                short(revision)
            );
            gh.update_issue(issue.number, &title, &clip(text, &env.name), true)
                .await?;
            Ok(IssueChange::Closed(issue.number))
        }
        (false, None) => Ok(IssueChange::None),
    }
}

fn body(report: &DriftReport, mark: &str) -> String {
    let env = &report.environments[0].name;
    let text = format!(
        "{mark}\n{}\n\nformwork's scheduled drift check found resources of `{env}` changed outside CloudFormation. Bring them back by applying the environment again, or change the config to what they are now; this issue closes itself when a check finds every stack in sync. `formwork drift --env {env}` shows the same.\n",
        drift_markdown(report)
    );
    clip(text, env)
}

/// The body within GitHub's limit: cut at a line, with a note where.
fn clip(text: String, env: &str) -> String {
    if text.chars().count() <= BODY_LIMIT {
        return text;
    }
    let note = format!(
        "\n\n*The report is cut here to fit an issue; `formwork drift --env {env}` shows all of it.*\n"
    );
    let budget = BODY_LIMIT - note.chars().count();
    let mut end = text
        .char_indices()
        .nth(budget)
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    if let Some(nl) = text[..end].rfind('\n') {
        end = nl;
    }
    format!("{}{note}", &text[..end])
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_report_is_cut_at_a_line_within_the_limit() {
        let long = "| row |\n".repeat(20_000);
        let text = clip(long, "prod");
        assert!(text.chars().count() <= BODY_LIMIT);
        assert!(
            text.ends_with("shows all of it.*\n"),
            "{}",
            &text[text.len() - 80..]
        );
        assert!(text.contains("| row |\n\n*The report is cut here"));
        assert_eq!(clip("short".into(), "prod"), "short");
    }
}
