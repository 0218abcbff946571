//! The pull-request flows, end to end, for the command line and the agent alike: plan a pull
//! request and post the plan on it; apply the reviewed plan of a merged (or, when allowed, an
//! open) pull request to one environment and report the results.
//!
//! Git work happens in synchronous steps that open the repository and let it go before anything
//! is awaited, so the flows' futures can move between threads.

use std::path::PathBuf;
use std::sync::Arc;

use super::client::{GitHub, GitHubError, PullRequest};
use super::report::{self, ApplyOutcome, Job, PlanOutcome, PlanReported, Reporting};
use crate::apply::{self, ApplyError, Observer, Options as ApplyOptions, Report};
use crate::aws::Aws;
use crate::config::ParseCache;
use crate::diag::Color;
use crate::git::{self, Revision};
use crate::plan::live::Progress;
use crate::plan::model::Plan;
use crate::secrets::Masker;
use crate::store::{AnyStore, Store, StoreError};
use crate::workflow::{self, PlanRequests, Selection, WorkflowError};

/// What can stop a flow before it has reported on GitHub.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error(transparent)]
    Git(#[from] git::GitError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Usage(String),
}

/// What the flows work with.
#[derive(Clone)]
pub struct Context {
    /// The git repository holding the config (a work tree or a bare mirror).
    pub repo: PathBuf,
    /// Where the config sits inside it (`""`: at the root).
    pub prefix: String,
    pub store: Arc<AnyStore>,
    pub aws: Arc<Aws>,
    pub gh: GitHub,
    pub reporting: Reporting,
    pub masker: Arc<Masker>,
}

/// Which part of a pull request to plan.
#[derive(Clone, Debug, Default)]
pub struct PlanSelection {
    /// Only these environments (none: every affected one).
    pub environments: Vec<String>,
    /// Only these stacks (none: every affected one).
    pub stacks: Vec<String>,
    /// Compare with this revision instead of where the pull request branched off.
    pub base: Option<String>,
    /// Without AWS, from the two revisions only (pull requests from forks).
    pub offline: bool,
    /// Keep the plan out of the state store.
    pub no_record: bool,
    /// The comment to write to, by the environments it covers (none: `environments`).
    pub comment_scope: Option<Vec<String>>,
    /// Shown above the plan (Markdown).
    pub note: Option<String>,
}

/// How planning a pull request ended.
pub struct PlannedPullRequest {
    /// The plan, or why there is none (and the config diagnostics, when they were why).
    pub plan: Result<Plan, (String, Option<String>)>,
    /// What was posted.
    pub reported: PlanReported,
    pub head: String,
}

/// Plans pull request `number`: its head against where it branched off (or `sel.base`), with
/// change sets named for the pull request; records the plan; posts it as the pull request's
/// sticky comment; marks the head commit. A plan that fails is reported the same way.
pub async fn plan_pull_request(
    cx: &Context,
    number: u64,
    sel: &PlanSelection,
    progress: Arc<dyn Progress>,
) -> Result<PlannedPullRequest, FlowError> {
    let pull = cx.gh.pull_request(number).await?;
    plan_pull_request_as(cx, &pull, sel, progress).await
}

/// [`plan_pull_request`] of a pull request already fetched.
pub async fn plan_pull_request_as(
    cx: &Context,
    pull: &PullRequest,
    sel: &PlanSelection,
    progress: Arc<dyn Progress>,
) -> Result<PlannedPullRequest, FlowError> {
    let number = pull.number;
    let head = pull.head.sha.clone();
    let base = match &sel.base {
        Some(b) => b.clone(),
        None => merge_base_of(cx, pull)?,
    };
    let started = report::begin(&cx.gh, Job::Plan, &head, &cx.reporting).await?;

    // Synchronous: the repository is opened and let go before anything is awaited.
    let prepared: Result<Prepared, WorkflowError> = (|| {
        let r = git::open(&cx.repo)?;
        let cache = ParseCache::default();
        let s = Selection {
            stacks: &sel.stacks,
            ..Selection::new(&sel.environments, Some(&base), &head)
        };
        if sel.offline {
            Ok(Prepared::Offline(Box::new(workflow::offline_plan(
                &r, &cx.prefix, s, &cache, 3,
            )?)))
        } else {
            Ok(Prepared::Live(workflow::plan_requests(
                &r, &cx.prefix, s, &cache,
            )?))
        }
    })();

    let planned: Result<Plan, (String, Option<String>)> = match prepared {
        Err(e) => Err(scrubbed(cx, &e)),
        Ok(Prepared::Offline(plan)) => Ok(*plan),
        Ok(Prepared::Live(requests)) => plan_live(cx, requests, format!("pr-{number}"), progress)
            .await
            .map_err(|e| (e, None)),
    };
    if let Ok(plan) = &planned
        && !plan.offline
        && !sel.no_record
    {
        cx.store.save_plan(plan).await?;
    }
    let rev = format!("#{number}");
    let outcome = match &planned {
        Ok(plan) => PlanOutcome::Planned(plan),
        Err((message, diagnostics)) => PlanOutcome::Failed {
            rev: &rev,
            commit: &head,
            message,
            diagnostics: diagnostics.as_deref(),
        },
    };
    let reported = report::finish_plan(
        &cx.gh,
        &started,
        number,
        sel.comment_scope.as_ref().unwrap_or(&sel.environments),
        outcome,
        sel.note.as_deref(),
        &cx.reporting,
    )
    .await?;
    Ok(PlannedPullRequest {
        plan: planned,
        reported,
        head,
    })
}

enum Prepared {
    Offline(Box<Plan>),
    Live(PlanRequests),
}

/// Makes the change sets of planned requests.
async fn plan_live(
    cx: &Context,
    requests: PlanRequests,
    origin: String,
    progress: Arc<dyn Progress>,
) -> Result<Plan, String> {
    requests
        .plan(&cx.aws, cx.masker.clone(), origin, progress)
        .await
        .map_err(|e| cx.masker.scrub(&e.to_string()))
}

fn merge_base_of(cx: &Context, pull: &PullRequest) -> Result<String, FlowError> {
    let r = git::open(&cx.repo)?;
    for (sha, what) in [(&pull.head.sha, "head"), (&pull.base.sha, "base")] {
        if Revision::resolve(&r, sha).is_err() {
            return Err(FlowError::Usage(format!(
                "the {what} of pull request #{} ({sha}) is not in the local repository: fetch it first (in GitHub Actions, check out with `fetch-depth: 0`; elsewhere `git fetch origin pull/{}/head`)",
                pull.number, pull.number
            )));
        }
    }
    Ok(git::merge_base(&r, &pull.base.sha, &pull.head.sha)?)
}

/// Which commit to apply, and on whose behalf.
#[derive(Clone, Debug)]
pub enum ApplyTarget {
    /// A commit of the default branch: the reviewed plan is that of the merged pull request
    /// that brought it (found through GitHub), else the environment's newest.
    Commit(String),
    /// An open pull request, before merging: its head, with the plan recorded for it.
    OpenPullRequest(u64),
}

/// How an apply ended.
pub enum Applied {
    Done(Box<Report>),
    /// It did not start, or was refused: why, and config diagnostics when they were why.
    Stopped {
        message: String,
        diagnostics: Option<String>,
    },
}

/// What [`apply_environment`] did.
pub struct AppliedEnvironment {
    pub applied: Applied,
    /// The commit applied.
    pub commit: String,
    /// The pull request reported on, when there was one.
    pub pull_request: Option<u64>,
}

/// Applies one environment at `target` with the reviewed plan, and reports on GitHub: results
/// on the pull request (or the commit) and a `formwork/apply` mark on the commit.
///
/// With `quiet_without_review`, a commit that no pull request brought and that has no plan is
/// left alone without a word on GitHub (the agent, reconciling an environment that formwork
/// never applied, says so in its log only).
pub async fn apply_environment(
    cx: &Context,
    environment: &str,
    target: &ApplyTarget,
    options: &ApplyOptions,
    observer: Arc<dyn Observer>,
    quiet_without_review: bool,
) -> Result<AppliedEnvironment, FlowError> {
    let (commit, pull) = match target {
        ApplyTarget::OpenPullRequest(n) => {
            let p = cx.gh.pull_request(*n).await?;
            if p.state != "open" {
                return Err(FlowError::Usage(format!(
                    "pull request #{n} is {}: only an open one is applied before merging",
                    p.state
                )));
            }
            (resolve(cx, &p.head.sha)?, Some(p))
        }
        ApplyTarget::Commit(rev) => {
            let commit = resolve(cx, rev)?;
            let pulls = cx.gh.pulls_of_commit(&commit).await?;
            let pull = pulls
                .iter()
                .filter(|p| p.merged_at.is_some())
                .find(|p| p.merge_commit_sha.as_deref() == Some(commit.as_str()))
                .or_else(|| pulls.iter().find(|p| p.merged_at.is_some()))
                .cloned();
            (commit, pull)
        }
    };
    let plan = reviewed_plan(cx, environment, pull.as_ref().map(|p| p.head.sha.as_str())).await?;
    if quiet_without_review && pull.is_none() && plan.is_err() {
        return Ok(AppliedEnvironment {
            applied: Applied::Stopped {
                message: plan.err().unwrap_or_default(),
                diagnostics: None,
            },
            commit,
            pull_request: None,
        });
    }
    let started = report::begin(&cx.gh, Job::Apply, &commit, &cx.reporting).await?;
    let applied = match plan {
        Ok(plan) => apply_plan(cx, environment, &commit, plan, options, observer).await?,
        Err(why) => stopped(why),
    };
    let outcome = match &applied {
        Applied::Done(report) => ApplyOutcome::Applied(report),
        Applied::Stopped {
            message,
            diagnostics,
        } => ApplyOutcome::Failed {
            environment,
            commit: &commit,
            message,
            diagnostics: diagnostics.as_deref(),
        },
    };
    report::finish_apply(
        &cx.gh,
        &started,
        pull.as_ref().map(|p| p.number),
        outcome,
        &cx.reporting,
    )
    .await?;
    Ok(AppliedEnvironment {
        applied,
        commit,
        pull_request: pull.map(|p| p.number),
    })
}

fn resolve(cx: &Context, rev: &str) -> Result<String, FlowError> {
    let r = git::open(&cx.repo)?;
    Ok(Revision::resolve(&r, rev)
        .map_err(|_| {
            FlowError::Usage(format!(
                "commit {rev} is not in the local repository; fetch it first"
            ))
        })?
        .id())
}

/// The plan reviewed for `reviewed_head` (a pull request's head), else the environment's
/// newest recorded plan; `Err` says why there is none to apply.
pub async fn reviewed_plan(
    cx: &Context,
    environment: &str,
    reviewed_head: Option<&str>,
) -> Result<Result<Plan, String>, FlowError> {
    let found = match reviewed_head {
        Some(head) => cx.store.latest_plan_of_commit(environment, head).await?,
        None => cx.store.latest_plan(environment).await?,
    };
    Ok(match found {
        Some(p) if p.offline => Err(format!(
            "plan {} was made offline and has no change sets to apply",
            p.id
        )),
        Some(p) => Ok(p),
        None => Err(match reviewed_head {
            Some(head) => format!(
                "no plan of environment `{environment}` for the pull request's head {} is recorded in the state store `{}`: the pull request's plan must be recorded in a store this run can read (see docs/github-actions.md)",
                &head[..head.len().min(12)],
                cx.store.describe()
            ),
            None => format!(
                "no plan of environment `{environment}` is recorded in the state store `{}`",
                cx.store.describe()
            ),
        }),
    })
}

/// Applies `environment` at `commit` with the plan reviewed for `reviewed_head` (the pull
/// request's head), else the environment's newest recorded plan.
pub async fn apply_reviewed(
    cx: &Context,
    environment: &str,
    commit: &str,
    reviewed_head: Option<&str>,
    options: &ApplyOptions,
    observer: Arc<dyn Observer>,
) -> Result<Applied, FlowError> {
    match reviewed_plan(cx, environment, reviewed_head).await? {
        Ok(plan) => apply_plan(cx, environment, commit, plan, options, observer).await,
        Err(why) => Ok(stopped(why)),
    }
}

/// Applies `plan` to `environment` at `commit`.
pub async fn apply_plan(
    cx: &Context,
    environment: &str,
    commit: &str,
    plan: Plan,
    options: &ApplyOptions,
    observer: Arc<dyn Observer>,
) -> Result<Applied, FlowError> {
    let desired = {
        let r = git::open(&cx.repo)?;
        workflow::desired_at(&r, &cx.prefix, commit, environment)
    };
    let (desired, commit) = match desired {
        Ok(d) => d,
        Err(e) => {
            let (message, diagnostics) = scrubbed(cx, &e);
            return Ok(Applied::Stopped {
                message,
                diagnostics,
            });
        }
    };
    let result = apply::apply(
        &cx.aws,
        cx.store.clone(),
        apply::Request {
            plan,
            environment: environment.to_string(),
            desired,
            commit,
        },
        options,
        observer,
        cx.masker.clone(),
    )
    .await;
    Ok(match result {
        Ok(r) => Applied::Done(Box::new(r)),
        Err(ApplyError::Refused { plan, reasons }) => {
            let mut message = format!("refusing to apply plan {plan}:");
            for r in reasons {
                message.push_str(&format!("\n  - {}", cx.masker.scrub(&r)));
            }
            message.push_str(&format!(
                "\nplan again (`formwork plan --env {environment}`), or apply with --replan to make fresh change sets for the stacks that changed"
            ));
            stopped(message)
        }
        Err(e) => stopped(cx.masker.scrub(&e.to_string())),
    })
}

fn stopped(message: String) -> Applied {
    Applied::Stopped {
        message,
        diagnostics: None,
    }
}

/// A workflow error as GitHub is told it: its message and diagnostics (without colour), with
/// secrets masked.
fn scrubbed(cx: &Context, e: &WorkflowError) -> (String, Option<String>) {
    (
        cx.masker.scrub(&e.to_string()),
        e.rendered_diagnostics(Color::Never)
            .map(|d| cx.masker.scrub(&d)),
    )
}
