//! The pull-request flows, end to end, for the command line and the agent alike: plan a pull
//! request and post the plan on it; apply the reviewed plan of a merged (or, when allowed, an
//! open) pull request to one environment and report the results.
//!
//! Git work happens in synchronous steps that open the repository and let it go before anything
//! is awaited, so the flows' futures can move between threads.

use futures::future::BoxFuture;
use std::sync::Arc;

use super::client::{GitHub, GitHubError, PullRequest};
use super::report::{self, ApplyOutcome, Job, PlanOutcome, PlanReported, Reporting};
use super::requirements;
pub use crate::apply::service::Applied;
use crate::apply::service::{self, PlanChoice, ReportError, Reporter, Services};
use crate::apply::{Observer, Options as ApplyOptions};
use crate::aws::Aws;
use crate::config::ParseCache;
use crate::diag::Color;
use crate::git;
use crate::plan::live::Progress;
use crate::plan::model::Plan;
use crate::secrets::Masker;
use crate::store::{AnyStore, Store, StoreError};
use crate::workflow::{self, ConfigRepo, PlanRequests, Selection, WorkflowError};

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
    /// The config repository (a work tree or a bare mirror).
    pub repo: ConfigRepo,
    pub store: Arc<AnyStore>,
    pub aws: Arc<Aws>,
    pub gh: GitHub,
    pub reporting: Reporting,
    pub masker: Arc<Masker>,
    /// The agent's own notification targets (none for the command line and the Action).
    pub notifier: crate::notify::Notifier,
}

impl Context {
    /// What the apply service needs of it.
    pub fn services(&self) -> Services {
        Services {
            repo: self.repo.clone(),
            store: self.store.clone(),
            aws: self.aws.clone(),
            masker: self.masker.clone(),
            notifier: self.notifier.clone(),
        }
    }
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
    /// When the config had errors: each one, with where it is (messages scrubbed).
    pub diagnostics: Vec<crate::diag::Diagnostic>,
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
    let prepared: Result<Prepared, WorkflowError> = cx.repo.with(|r, prefix| {
        let cache = ParseCache::default();
        let s = Selection {
            stacks: &sel.stacks,
            ..Selection::new(&sel.environments, Some(&base), &head)
        };
        if sel.offline {
            Ok(Prepared::Offline(Box::new(workflow::offline_plan(
                r, prefix, s, &cache, 3,
            )?)))
        } else {
            Ok(Prepared::Live(Box::new(workflow::plan_requests(
                r, prefix, s, &cache,
            )?)))
        }
    });

    let mut diagnostics = Vec::new();
    let planned: Result<Plan, (String, Option<String>)> = match prepared {
        Err(e) => {
            diagnostics = e
                .diagnostics()
                .into_iter()
                .map(|mut d| {
                    d.message = cx.masker.scrub(&d.message);
                    d
                })
                .collect();
            Err(scrubbed(cx, &e))
        }
        Ok(Prepared::Offline(plan)) => Ok(*plan),
        Ok(Prepared::Live(requests)) => plan_live(cx, *requests, format!("pr-{number}"), progress)
            .await
            .map_err(|e| (e, None)),
    };
    let mut planned = planned;
    if let Ok(plan) = &mut planned {
        super::overrides::mark(cx.store.as_ref(), plan, number, &head).await?;
    }
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
        diagnostics,
    })
}

enum Prepared {
    Offline(Box<Plan>),
    Live(Box<PlanRequests>),
}

/// Makes the change sets of planned requests.
async fn plan_live(
    cx: &Context,
    requests: PlanRequests,
    origin: String,
    progress: Arc<dyn Progress>,
) -> Result<Plan, String> {
    requests
        .plan(
            &cx.aws,
            cx.masker.clone(),
            origin,
            progress,
            Some(cx.store.as_ref()),
        )
        .await
        .map_err(|e| cx.masker.scrub(&e.to_string()))
}

fn merge_base_of(cx: &Context, pull: &PullRequest) -> Result<String, FlowError> {
    for (sha, what) in [(&pull.head.sha, "head"), (&pull.base.sha, "base")] {
        if cx.repo.resolve(sha).is_err() {
            return Err(FlowError::Usage(format!(
                "the {what} of pull request #{} ({sha}) is not in the local repository: fetch it first (in GitHub Actions, check out with `fetch-depth: 0`; elsewhere `git fetch origin pull/{}/head`)",
                pull.number, pull.number
            )));
        }
    }
    cx.repo
        .merge_base(&pull.base.sha, &pull.head.sha)
        .map_err(|e| FlowError::Usage(e.to_string()))
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

/// What [`apply_environment`] did.
pub struct AppliedEnvironment {
    pub applied: Applied,
    /// The commit applied.
    pub commit: String,
    /// The pull request reported on, when there was one.
    pub pull_request: Option<u64>,
}

/// Applies one environment at `target` with the reviewed plan (the apply service), reporting on
/// GitHub: results on the pull request (or the commit) and a `formwork/apply` mark on the
/// commit. `observer` hears the apply as it runs.
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
    let svc = cx.services();
    let choice = PlanChoice::ReviewedAt(pull.as_ref().map(|p| p.head.sha.clone()));
    let plan = service::choose_plan(&svc, environment, choice).await?;
    let plan = match plan {
        Ok(plan) => {
            match requirements_refusal(cx, environment, target, &commit, pull.as_ref()).await? {
                Some(refusal) => Err(refusal),
                None => Ok(plan),
            }
        }
        Err(why) => Err(why),
    };
    let plan = match plan {
        Err(why) if quiet_without_review && pull.is_none() => {
            return Ok(AppliedEnvironment {
                applied: Applied::Stopped {
                    message: why,
                    diagnostics: None,
                },
                commit,
                pull_request: None,
            });
        }
        other => other,
    };
    let reporter = Arc::new(GitHubReporter {
        gh: cx.gh.clone(),
        reporting: cx.reporting.clone(),
        pull_request: pull.as_ref().map(|p| p.number),
        pull_url: pull.as_ref().and_then(|p| p.html_url.clone()),
        observer,
        mark: tokio::sync::Mutex::new(None),
    });
    // Hooks are commands from the commit applied: never run for an open pull request from a
    // fork (a merged one is the base repository's own commit).
    let options = &ApplyOptions {
        run_hooks: options.run_hooks
            && !(matches!(target, ApplyTarget::OpenPullRequest(_))
                && pull.as_ref().is_some_and(|p| p.from_fork())),
        ..options.clone()
    };
    let applied = match plan {
        Ok(plan) => {
            service::apply_commit(
                &svc,
                environment,
                &commit,
                PlanChoice::Given(Box::new(plan)),
                options,
                reporter.clone(),
            )
            .await
        }
        Err(why) => {
            let stopped = Applied::Stopped {
                message: why,
                diagnostics: None,
            };
            service::report_stopped(&svc, environment, &commit, stopped, reporter.clone()).await
        }
    }
    .map_err(|e| FlowError::Usage(e.0))?;
    Ok(AppliedEnvironment {
        applied,
        commit,
        pull_request: pull.map(|p| p.number),
    })
}

/// Why the environment's apply requirements refuse applying `commit` (none: they are met).
/// Before merging, every requirement is checked; after, only `approved`. A refusal is kept in
/// the environment's audit trail.
async fn requirements_refusal(
    cx: &Context,
    environment: &str,
    target: &ApplyTarget,
    commit: &str,
    pull: Option<&PullRequest>,
) -> Result<Option<String>, FlowError> {
    let (base, from, before_merge) = match (target, pull) {
        (ApplyTarget::OpenPullRequest(_), Some(p)) => {
            (Some(p.base.sha.clone()), Some(merge_base_of(cx, p)?), true)
        }
        _ => (cx.repo.resolve(&format!("{commit}^")).ok(), None, false),
    };
    let change = requirements::inputs::Change {
        base: base.as_deref(),
        from: from.as_deref(),
        head: commit,
    };
    let (req, changes) = requirements::inputs::read(&cx.repo, environment, &change)
        .map_err(|e| FlowError::Usage(cx.masker.scrub(&e.to_string())))?;
    let unmet = requirements::unmet(&cx.gh, &req, pull, before_merge, &changes).await?;
    if unmet.is_empty() {
        return Ok(None);
    }
    let refusal = requirements::refusal(environment, &unmet);
    tracing::warn!(environment, commit, "apply requirements not met");
    cx.store
        .record_event(&crate::store::Event {
            environment: environment.to_string(),
            at: crate::store::now(),
            kind: REFUSED_EVENT.to_string(),
            actor: "formwork".to_string(),
            detail: format!(
                "commit {commit}{}: {}",
                pull.map(|p| format!(" (pull request #{})", p.number))
                    .unwrap_or_default(),
                unmet
                    .iter()
                    .map(|u| u.requirement)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
        .await?;
    Ok(Some(refusal))
}

/// The kind of audit event a refusal by apply requirements records.
pub const REFUSED_EVENT: &str = "apply_requirements_unmet";

/// The apply service's reporter on GitHub: a pending mark on the commit when the apply starts;
/// the results on the pull request (or the commit) and the settled mark when it ends. What
/// happens meanwhile goes to `observer`.
struct GitHubReporter {
    gh: GitHub,
    reporting: Reporting,
    pull_request: Option<u64>,
    /// The pull request's page, for notifications.
    pull_url: Option<String>,
    observer: Arc<dyn Observer>,
    mark: tokio::sync::Mutex<Option<report::Started>>,
}

impl Observer for GitHubReporter {
    fn unit(&self, stack: &str, state: crate::store::UnitState, message: Option<&str>) {
        self.observer.unit(stack, state, message)
    }
    fn event(&self, stack: &str, event: &crate::aws::cfn::StackEvent) {
        self.observer.event(stack, event)
    }
    fn replanned(&self, plan: &crate::plan::model::UnitPlan) {
        self.observer.replanned(plan)
    }
    fn confirm(&self, question: &str) -> bool {
        self.observer.confirm(question)
    }
    fn hook_output(&self, stack: &str, line: &str) {
        self.observer.hook_output(stack, line)
    }
}

impl Reporter for GitHubReporter {
    fn links(&self) -> crate::notify::Links {
        crate::notify::Links {
            pull_request: self.pull_url.clone(),
            run: crate::notify::Links::actions_run().or_else(|| self.reporting.target_url.clone()),
        }
    }

    fn started<'a>(
        &'a self,
        _environment: &'a str,
        commit: &'a str,
    ) -> BoxFuture<'a, Result<(), ReportError>> {
        Box::pin(async move {
            let started = report::begin(&self.gh, Job::Apply, commit, &self.reporting)
                .await
                .map_err(|e| ReportError(e.to_string()))?;
            *self.mark.lock().await = Some(started);
            Ok(())
        })
    }

    fn finished<'a>(
        &'a self,
        environment: &'a str,
        commit: &'a str,
        applied: &'a Applied,
    ) -> BoxFuture<'a, Result<(), ReportError>> {
        Box::pin(async move {
            let Some(started) = self.mark.lock().await.take() else {
                return Err(ReportError("the apply was not marked as started".into()));
            };
            let outcome = match applied {
                Applied::Done(report) => ApplyOutcome::Applied(report),
                Applied::Stopped {
                    message,
                    diagnostics,
                } => ApplyOutcome::Failed {
                    environment,
                    commit,
                    message,
                    diagnostics: diagnostics.as_deref(),
                },
            };
            report::finish_apply(
                &self.gh,
                &started,
                self.pull_request,
                outcome,
                &self.reporting,
            )
            .await
            .map_err(|e| ReportError(e.to_string()))
        })
    }
}

fn resolve(cx: &Context, rev: &str) -> Result<String, FlowError> {
    cx.repo.resolve(rev).map_err(|_| {
        FlowError::Usage(format!(
            "commit {rev} is not in the local repository; fetch it first"
        ))
    })
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
