//! Reporting plans and applies on GitHub: the sticky comments on the pull request (or a comment
//! on the commit when no pull request brought it), and the commit status or check run that
//! says how the job went.
//!
//! A job is reported in two steps: [`begin`] marks the commit pending (status) or starts an
//! in-progress check run; [`finish_plan`] / [`finish_apply`] post the comments and settle the
//! status or check run. Comments longer than GitHub's limit are split into numbered parts (at
//! most [`Reporting::max_parts`]); what does not fit goes to the check run's summary and the job
//! log, and the last part says so.

use std::fmt::Write as _;

use super::client::{
    CHECK_OUTPUT_LIMIT, CheckOutput, Conclusion, GitHub, GitHubError, StatusState,
};
use super::sticky::{self, Kind, Published, Sticky};
use crate::apply::Report;
use crate::diag::plural;
use crate::plan::model::Plan;
use crate::render::apply_markdown::apply_markdown;
use crate::render::markdown::clip;
use crate::render::plan_markdown::{GITHUB_COMMENT_LIMIT, plan_markdown, split_markdown_pointing};
use crate::render::plan_totals::summary_sentence;
use crate::store::UnitState;

/// How a job's outcome is shown on the commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ReportMode {
    /// A commit status (`formwork/plan`, `formwork/apply`): works with any token that may
    /// write statuses.
    #[default]
    Status,
    /// A check run with the plan as its summary: needs a GitHub App or the Actions token with
    /// `checks: write`.
    CheckRun,
    /// Comments only.
    None,
}

impl ReportMode {
    /// Every mode, by the name settings and flags use.
    pub const NAMES: [&'static str; 3] = ["status", "check-run", "none"];
}

impl std::str::FromStr for ReportMode {
    type Err = String;

    fn from_str(s: &str) -> Result<ReportMode, String> {
        match s {
            "status" => Ok(ReportMode::Status),
            "check-run" => Ok(ReportMode::CheckRun),
            "none" => Ok(ReportMode::None),
            other => Err(format!(
                "`{other}` is not a report mode: {}",
                ReportMode::NAMES.join(", ")
            )),
        }
    }
}

/// Settings of the reporting.
#[derive(Clone, Debug)]
pub struct Reporting {
    pub mode: ReportMode,
    /// Most comments one plan may take.
    pub max_parts: usize,
    /// Where the job can be followed (the Actions run, the daemon's status page).
    pub target_url: Option<String>,
}

impl Default for Reporting {
    fn default() -> Reporting {
        Reporting {
            mode: ReportMode::Status,
            max_parts: 5,
            target_url: None,
        }
    }
}

/// Which job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    Plan,
    Apply,
}

impl Job {
    /// The status context / check run name.
    pub fn context(self) -> &'static str {
        match self {
            Job::Plan => "formwork/plan",
            Job::Apply => "formwork/apply",
        }
    }
}

/// A job under way on one commit.
#[derive(Clone, Debug)]
pub struct Started {
    job: Job,
    sha: String,
    check_run: Option<u64>,
}

/// Marks the commit: pending status, or an in-progress check run.
pub async fn begin(
    gh: &GitHub,
    job: Job,
    sha: &str,
    r: &Reporting,
) -> Result<Started, GitHubError> {
    let mut check_run = None;
    let doing = match job {
        Job::Plan => "Planning",
        Job::Apply => "Applying",
    };
    match r.mode {
        ReportMode::Status => {
            gh.set_status(
                sha,
                StatusState::Pending,
                job.context(),
                &format!("{doing}…"),
                r.target_url.as_deref(),
            )
            .await?
        }
        ReportMode::CheckRun => {
            check_run = Some(
                gh.start_check_run(
                    sha,
                    job.context(),
                    &format!("{doing}…"),
                    r.target_url.as_deref(),
                )
                .await?,
            )
        }
        ReportMode::None => {}
    }
    Ok(Started {
        job,
        sha: sha.to_string(),
        check_run,
    })
}

/// How a plan job ended.
pub enum PlanOutcome<'a> {
    Planned(&'a Plan),
    /// It could not plan: the error, and config diagnostics when those were the cause.
    Failed {
        rev: &'a str,
        commit: &'a str,
        message: &'a str,
        diagnostics: Option<&'a str>,
    },
}

/// What reporting a plan did.
#[derive(Debug)]
pub struct PlanReported {
    pub comments: Published,
    /// The whole plan did not fit in the comments.
    pub truncated: bool,
    /// The whole Markdown document (for the job log when it was cut).
    pub markdown: String,
}

/// Posts a plan (or why there is none) on the pull request and settles the commit's mark.
/// `environments` is the comment's scope (none: every environment); `note`, when given, is
/// shown above the plan.
pub async fn finish_plan(
    gh: &GitHub,
    started: &Started,
    pr: u64,
    environments: &[String],
    outcome: PlanOutcome<'_>,
    note: Option<&str>,
    r: &Reporting,
) -> Result<PlanReported, GitHubError> {
    let (mut markdown, state, description) = match &outcome {
        PlanOutcome::Planned(plan) => {
            let md = plan_markdown(plan);
            let sentence = summary_sentence(plan);
            let state = if plan.fails_check() {
                StatusState::Failure
            } else {
                StatusState::Success
            };
            (md, state, sentence)
        }
        PlanOutcome::Failed {
            rev,
            commit,
            message,
            diagnostics,
        } => (
            failure_markdown("plan", rev, commit, message, *diagnostics),
            StatusState::Failure,
            format!("Could not plan: {message}"),
        ),
    };
    if let Some(note) = note {
        let quoted: Vec<String> = note.lines().map(|l| format!("> {l}")).collect();
        markdown = format!("> [!NOTE]\n{}\n\n{markdown}", quoted.join("\n"));
    }
    let pointer = match &r.target_url {
        Some(u) => format!("the full plan is in [the job log]({u})"),
        None => "the full plan is in the job log".to_string(),
    };
    let pointer = if r.mode == ReportMode::CheckRun {
        format!("{pointer} and the check run summary")
    } else {
        pointer
    };
    let split =
        split_markdown_pointing(&markdown, GITHUB_COMMENT_LIMIT - 200, r.max_parts, &pointer);
    let sticky = Sticky::new(Kind::Plan, environments);
    let comments = sticky::publish(gh, pr, &sticky, &split.parts).await?;
    settle(gh, started, state, &description, &markdown, r).await?;
    Ok(PlanReported {
        comments,
        truncated: split.truncated,
        markdown,
    })
}

/// How an apply job ended, per environment.
pub enum ApplyOutcome<'a> {
    Applied(&'a Report),
    /// It could not apply (refused, locked, config errors): why.
    Failed {
        environment: &'a str,
        commit: &'a str,
        message: &'a str,
        diagnostics: Option<&'a str>,
    },
}

/// Posts an apply's results — on the merged pull request when there is one (a sticky comment
/// per environment), else as a comment on the commit — and settles the commit's mark.
pub async fn finish_apply(
    gh: &GitHub,
    started: &Started,
    pr: Option<u64>,
    outcome: ApplyOutcome<'_>,
    r: &Reporting,
) -> Result<(), GitHubError> {
    let (environment, markdown, ok) = match &outcome {
        ApplyOutcome::Applied(report) => (
            report.run.environment.as_str(),
            apply_markdown(report),
            report.succeeded(),
        ),
        ApplyOutcome::Failed {
            environment,
            commit,
            message,
            diagnostics,
        } => (
            *environment,
            failure_markdown("apply", environment, commit, message, *diagnostics),
            false,
        ),
    };
    let pointer = "the rest is in the job log";
    let split =
        split_markdown_pointing(&markdown, GITHUB_COMMENT_LIMIT - 200, r.max_parts, pointer);
    match pr {
        Some(pr) => {
            let sticky = Sticky::new(Kind::Apply, &[environment.to_string()]);
            sticky::publish(gh, pr, &sticky, &split.parts).await?;
        }
        None => {
            for part in &split.parts {
                gh.comment_on_commit(&started.sha, part).await?;
            }
        }
    }
    let description = match &outcome {
        ApplyOutcome::Applied(report) => {
            let changed = report
                .units
                .iter()
                .filter(|u| matches!(u.state, UnitState::Applied | UnitState::Deleted))
                .count();
            format!(
                "{environment}: {} changed, run {}",
                plural(changed, "stack"),
                report.run.status.as_str()
            )
        }
        ApplyOutcome::Failed { message, .. } => format!("{environment}: {message}"),
    };
    let state = if ok {
        StatusState::Success
    } else {
        StatusState::Failure
    };
    settle(gh, started, state, &description, &markdown, r).await
}

/// Sets the final status or completes the check run.
async fn settle(
    gh: &GitHub,
    started: &Started,
    state: StatusState,
    description: &str,
    markdown: &str,
    r: &Reporting,
) -> Result<(), GitHubError> {
    match (r.mode, started.check_run) {
        (ReportMode::Status, _) => {
            gh.set_status(
                &started.sha,
                state,
                started.job.context(),
                description,
                r.target_url.as_deref(),
            )
            .await
        }
        (ReportMode::CheckRun, Some(id)) => {
            let summary = if markdown.chars().count() <= CHECK_OUTPUT_LIMIT {
                markdown.to_string()
            } else {
                let note = "\n\n… cut here: the whole text is in the job log.";
                let mut s = clip(markdown, CHECK_OUTPUT_LIMIT - note.chars().count());
                s.push_str(note);
                s
            };
            let conclusion = match state {
                StatusState::Success => Conclusion::Success,
                _ => Conclusion::Failure,
            };
            gh.finish_check_run(
                id,
                conclusion,
                &CheckOutput {
                    title: clip(description, 255),
                    summary,
                    text: None,
                },
            )
            .await
        }
        _ => Ok(()),
    }
}

/// A comment saying a job could not run, with the diagnostics in a fence they cannot close.
fn failure_markdown(
    what: &str,
    rev: &str,
    commit: &str,
    message: &str,
    diagnostics: Option<&str>,
) -> String {
    use crate::render::markdown::{code, fence_for, md_text};
    let short = &commit[..commit.len().min(12)];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## formwork {what} for {} at {}: failed\n",
        code(rev),
        code(short)
    );
    // Line by line, list items kept (a refusal lists what is not met, one item a line).
    let _ = writeln!(out, "> [!CAUTION]");
    for line in message.trim_end().lines() {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let (bullet, text) = match body.strip_prefix("- ") {
            Some(rest) => ("- ", rest),
            None => ("", body),
        };
        let _ = writeln!(out, "> {indent}{bullet}{}", md_text(text));
    }
    out.push('\n');
    if let Some(d) = diagnostics {
        let fence = fence_for(d);
        let _ = writeln!(out, "{fence}text\n{}\n{fence}", d.trim_end());
    }
    out
}
