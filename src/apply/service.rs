//! Applying a reviewed plan to one environment at one commit, as a service: which plan, the
//! desired state at the commit, the apply itself, and how it ended — told to a [`Reporter`].
//! The terminal is one reporter (the command line's); GitHub is another (it posts on the pull
//! request and marks the commit). Nothing here knows who listens. Every door passes here, so
//! the environment's notifications (and the agent's) are sent from here too (`notices`).

use std::collections::HashSet;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::notices::Notices;
use super::{Baseline, Observer, Options, Report, Request};
use crate::aws::Aws;
use crate::desired::DesiredEnvironment;
use crate::diag::Color;
use crate::notify::{Links, Notifier};
use crate::plan::model::Plan;
use crate::secrets::Masker;
use crate::store::{AnyStore, Store, StoreError};
use crate::workflow::{ConfigRepo, WorkflowError};

/// What applying works with.
#[derive(Clone)]
pub struct Services {
    pub repo: ConfigRepo,
    pub store: Arc<AnyStore>,
    pub aws: Arc<Aws>,
    pub masker: Arc<Masker>,
    /// Where notifications of applies go besides each environment's own targets.
    pub notifier: Notifier,
}

/// Which plan to apply.
#[derive(Clone, Debug)]
pub enum PlanChoice {
    /// The plan with this id.
    Named(String),
    /// The environment's newest recorded plan.
    Newest,
    /// The newest plan recorded for this head commit (a pull request's, as reviewed); the
    /// environment's newest when `None`.
    ReviewedAt(Option<String>),
    /// This plan (just made).
    Given(Box<Plan>),
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

impl Applied {
    fn stopped(message: String) -> Applied {
        Applied::Stopped {
            message,
            diagnostics: None,
        }
    }

    /// Whether everything the plan held was applied.
    pub fn succeeded(&self) -> bool {
        matches!(self, Applied::Done(r) if r.succeeded())
    }
}

/// A reporter could not say what happened (GitHub refused a comment, say).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReportError(pub String);

/// Hears an apply: as it runs (the [`Observer`]), when it starts and how it ends.
pub trait Reporter: Observer {
    /// The apply of `environment` at `commit` is about to start.
    fn started<'a>(
        &'a self,
        environment: &'a str,
        commit: &'a str,
    ) -> BoxFuture<'a, Result<(), ReportError>>;

    /// How it ended.
    fn finished<'a>(
        &'a self,
        environment: &'a str,
        commit: &'a str,
        applied: &'a Applied,
    ) -> BoxFuture<'a, Result<(), ReportError>>;

    /// Where notifications link to: the pull request, the run. Default: the GitHub Actions run
    /// this process is part of, if any.
    fn links(&self) -> Links {
        Links {
            pull_request: None,
            run: Links::actions_run(),
        }
    }
}

/// Applies `environment` at commit `rev` with the plan `choice` names, telling `reporter`.
pub async fn apply_commit(
    svc: &Services,
    environment: &str,
    rev: &str,
    choice: PlanChoice,
    options: &Options,
    reporter: Arc<dyn Reporter>,
) -> Result<Applied, ReportError> {
    let commit = svc.repo.resolve(rev).unwrap_or_else(|_| rev.to_string());
    let notices = Notices::start(svc, environment, &commit, reporter.links()).await;
    if let Err(e) = reporter.started(environment, &commit).await {
        let why = format!("the apply could not start: {}", svc.masker.scrub(&e.0));
        notices.finish(&Applied::stopped(why)).await;
        return Err(e);
    }
    let applied = run(svc, environment, &commit, choice, options, reporter.clone()).await;
    let told = reporter.finished(environment, &commit, &applied).await;
    notices.finish(&applied).await;
    told.map(|()| applied)
}

/// Tells `reporter`, and the notification targets, of an apply of `environment` at `commit`
/// that stopped before it began (`stopped`: there is no plan to apply, say).
pub async fn report_stopped(
    svc: &Services,
    environment: &str,
    commit: &str,
    stopped: Applied,
    reporter: Arc<dyn Reporter>,
) -> Result<Applied, ReportError> {
    let notices = Notices::start(svc, environment, commit, reporter.links()).await;
    let told = match reporter.started(environment, commit).await {
        Ok(()) => reporter.finished(environment, commit, &stopped).await,
        Err(e) => Err(e),
    };
    notices.finish(&stopped).await;
    told.map(|()| stopped)
}

async fn run(
    svc: &Services,
    environment: &str,
    commit: &str,
    choice: PlanChoice,
    options: &Options,
    observer: Arc<dyn Observer>,
) -> Applied {
    let plan = match choose_plan(svc, environment, choice).await {
        Ok(Ok(plan)) => plan,
        Ok(Err(why)) => return Applied::stopped(why),
        Err(e) => return Applied::stopped(svc.masker.scrub(&e.to_string())),
    };
    let (desired, commit) = match svc.repo.desired_at(commit, environment) {
        Ok(d) => d,
        Err(e) => return config_stopped(&svc.masker, &e),
    };
    let baseline = match baseline(svc, &desired).await {
        Ok(b) => b,
        Err(e) => return Applied::stopped(svc.masker.scrub(&e.to_string())),
    };
    // Hooks run in a checkout of exactly the commit applied, made only when a stack has them.
    let checkout = if desired.units.values().any(|u| !u.hooks.is_empty()) {
        match super::hooks::Checkout::of(&svc.repo, &commit) {
            Ok(c) => Some(c),
            Err(e) => return Applied::stopped(svc.masker.scrub(&e)),
        }
    } else {
        None
    };
    let result = super::apply(
        &svc.aws,
        svc.store.clone(),
        Request {
            plan,
            environment: environment.to_string(),
            desired,
            commit,
            baseline,
            workdir: checkout.as_ref().map(|c| c.path().to_path_buf()),
        },
        options,
        observer,
        svc.masker.clone(),
    )
    .await;
    match result {
        Ok(r) => Applied::Done(Box::new(r)),
        Err(super::ApplyError::Refused { plan, reasons }) => {
            let by_policy = reasons.iter().any(|r| r.contains(": policy rule `"));
            let mut message = format!("refusing to apply plan {plan}:");
            for r in reasons {
                message.push_str(&format!("\n  - {}", svc.masker.scrub(&r)));
            }
            if by_policy {
                message.push_str(
                    "\na blocking policy rule fails on the plan: no apply runs it; change the template (or the rule, on the default branch) and plan again",
                );
            } else {
                message.push_str(&format!(
                    "\nplan again (`formwork plan --env {environment}`), or apply with --replan to make fresh change sets for the stacks that changed"
                ));
            }
            Applied::stopped(message)
        }
        Err(e) => Applied::stopped(svc.masker.scrub(&e.to_string())),
    }
}

/// The plan `choice` names for `environment`; `Ok(Err(why))` when there is none to apply.
pub async fn choose_plan(
    svc: &Services,
    environment: &str,
    choice: PlanChoice,
) -> Result<Result<Plan, String>, StoreError> {
    let store = svc.store.as_ref();
    let (found, missing) = match choice {
        PlanChoice::Given(p) => (Some(*p), String::new()),
        PlanChoice::Named(id) => (
            store.plan(&id).await?,
            format!("no plan {id} is recorded in the state store"),
        ),
        PlanChoice::Newest | PlanChoice::ReviewedAt(None) => (
            store.latest_plan(environment).await?,
            format!(
                "no plan of environment `{environment}` is recorded in the state store `{}`; run `formwork plan --env {environment}` first",
                store.describe()
            ),
        ),
        PlanChoice::ReviewedAt(Some(head)) => (
            store.latest_plan_of_commit(environment, &head).await?,
            format!(
                "no plan of environment `{environment}` for the pull request's head {} is recorded in the state store `{}`: the pull request's plan must be recorded in a store this run can read (see docs/github-actions.md)",
                &head[..head.len().min(12)],
                store.describe()
            ),
        ),
    };
    let Some(plan) = found else {
        return Ok(Err(missing));
    };
    if !plan.environments.iter().any(|e| e.name == environment) {
        return Ok(Err(format!(
            "plan {} does not cover environment `{environment}`",
            plan.id
        )));
    }
    if plan.offline {
        return Ok(Err(format!(
            "plan {} was made offline and has no change sets to apply",
            plan.id
        )));
    }
    Ok(Ok(plan))
}

/// The config digests at the environment's deployed commit, when some stack of `desired` has
/// no record of its own (see [`super::deployed`]); the config at that commit is read only then.
async fn baseline(
    svc: &Services,
    desired: &DesiredEnvironment,
) -> Result<Option<Baseline>, StoreError> {
    let environment = desired.name.as_str();
    let Some(deployed) = svc.store.deployed(environment).await? else {
        return Ok(None);
    };
    let recorded: HashSet<String> = svc
        .store
        .stacks_deployed(environment)
        .await?
        .into_iter()
        .map(|d| d.stack)
        .collect();
    if desired.units.keys().all(|k| recorded.contains(k)) {
        return Ok(None);
    }
    match svc.repo.desired_at(&deployed.commit, environment) {
        Ok((at, _)) => Ok(Some(Baseline::of(&deployed.commit, &at))),
        Err(e) => {
            tracing::warn!(environment, commit = %deployed.commit, error = %svc.masker.scrub(&e.to_string()), "the config at the deployed commit cannot be read: stacks without a record of their own count as not at the new commit");
            Ok(None)
        }
    }
}

/// A config error as a stop: its message and its diagnostics (without colour), masked.
pub fn config_stopped(masker: &Masker, e: &WorkflowError) -> Applied {
    Applied::Stopped {
        message: masker.scrub(&e.to_string()),
        diagnostics: e
            .rendered_diagnostics(Color::Never)
            .map(|d| masker.scrub(&d)),
    }
}
