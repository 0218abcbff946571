//! Apply: executing exactly the reviewed change sets of a plan, in dependency order, and
//! keeping a durable record of every step.
//!
//! An apply of one environment
//! 1. takes the environment's apply lock (a [`crate::lease`], renewed while it runs; a lost
//!    lock stops new operations);
//! 2. finishes the record of any earlier run of the environment that its process left
//!    unfinished: operations still in flight are waited for, never started again;
//! 3. checks every stack of the plan before touching anything — its change set still
//!    available, the stack not changed since the plan, its config hash the current config's —
//!    and refuses with the reasons unless re-planning is allowed; removals need an explicit
//!    opt-in;
//! 4. runs the stacks as a dependency graph: each starts as soon as the stacks it needs are done,
//!    independent ones at once (bounded). Stacks whose inputs were known only after apply get a
//!    fresh change set first (shown and recorded); a fresh change set that replaces or removes
//!    what the reviewed plan did not is confirmed first or refused. Every execution carries a
//!    client request token recorded before it is sent, so a crash never makes it run twice;
//! 5. on a failure, reports the first failed resource event, skips the stacks that need the
//!    failed one and lets the others finish;
//! 6. deletes the stacks that left the config (when allowed) last, dependants first;
//! 7. records where each stack stands ([`deployed`]) and, when every stack of the environment
//!    is at the commit, the environment's deployed commit in the store and in SSM
//!    (`/formwork/<env>/deployed-commit`).
//!
//! [`service`] wraps this for its callers: which plan, the desired state at the commit, a
//! [`service::Reporter`] told how it went (the terminal, GitHub), and the notifications of the
//! environment and the agent (`notices`: Slack, webhooks, SNS).

mod checks;
pub mod deployed;
pub mod hooks;
mod notices;
mod recover;
mod run;
pub mod service;
mod stack_ops;
mod stack_options;
mod wait;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use deployed::Baseline;

use crate::aws::cfn::StackEvent;
use crate::aws::{Aws, AwsError};
use crate::desired::DesiredEnvironment;
use crate::lease::{self, Subject};
use crate::plan::model::{Plan, UnitPlan};
use crate::secrets::Masker;
use crate::store::{LockError, Run, RunStatus, Store, StoreError, UnitResult, UnitState};

/// The SSM parameter that names the commit an environment runs.
pub fn deployed_commit_parameter(environment: &str) -> String {
    format!("/formwork/{environment}/deployed-commit")
}

/// How an apply behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// Delete stacks that left the config (also allowed by the environment's `allow_delete`).
    pub allow_delete: bool,
    /// Make a fresh change set for a stack whose reviewed one no longer matches, instead of
    /// refusing.
    pub replan: bool,
    /// Go ahead when a fresh change set replaces or removes what the reviewed plan did not,
    /// without asking.
    pub assume_yes: bool,
    /// How long to wait for one stack operation, unless the stack says otherwise.
    pub stack_timeout: Duration,
    /// Stack operations at once.
    pub parallel: usize,
    /// Who applies: recorded with the run and the lock.
    pub owner: String,
    /// How long the lock lasts unless renewed.
    pub lease: Duration,
    /// Whether the stacks' hooks may run. `false` for a commit from a pull request of a fork:
    /// a stack with hooks then fails instead of running commands nobody trusted.
    pub run_hooks: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            allow_delete: false,
            replan: false,
            assume_yes: false,
            stack_timeout: Duration::from_secs(3600),
            parallel: 8,
            owner: crate::lease::process_owner(),
            lease: Duration::from_secs(120),
            run_hooks: true,
        }
    }
}

/// The kind of store event that passes a gate (its name in `detail`).
pub const GATE_EVENT: &str = "gate";

/// What to apply.
pub struct Request {
    /// The reviewed plan.
    pub plan: Plan,
    /// The environment of the plan to apply.
    pub environment: String,
    /// The environment's desired state now (at the commit being applied): the plan's config
    /// hashes must match it, and stacks planned again are planned from it.
    pub desired: DesiredEnvironment,
    /// The commit being applied.
    pub commit: String,
    /// The config digests of the environment's stacks at its deployed commit, for stacks that
    /// have no record of their own yet (see [`deployed`]).
    pub baseline: Option<Baseline>,
    /// A checkout of the commit's config tree, where hooks run; `None` when no stack has hooks.
    pub workdir: Option<std::path::PathBuf>,
}

/// Hears what happens during an apply, for a display and logs, and answers questions.
pub trait Observer: Send + Sync {
    /// A stack changed state.
    fn unit(&self, stack: &str, state: UnitState, message: Option<&str>);
    /// A new event of a stack's running operation.
    fn event(&self, stack: &str, event: &StackEvent);
    /// A change set was made during apply (inputs known only now, or re-planned).
    fn replanned(&self, plan: &UnitPlan);
    /// Whether to go ahead with a fresh change set that destroys what the reviewed plan did not.
    fn confirm(&self, question: &str) -> bool;
    /// A line a stack's hook wrote (secrets masked already).
    fn hook_output(&self, stack: &str, line: &str) {
        tracing::info!(stack, "hook: {line}");
    }
}

/// An observer that hears nothing and confirms nothing.
pub struct Silent;

impl Observer for Silent {
    fn unit(&self, _: &str, _: UnitState, _: Option<&str>) {}
    fn event(&self, _: &str, _: &StackEvent) {}
    fn replanned(&self, _: &UnitPlan) {}
    fn confirm(&self, _: &str) -> bool {
        false
    }
}

/// The outcome of an apply.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub run: Run,
    pub units: Vec<UnitResult>,
    /// Change sets made during the apply, in full (the run's record names each stack's change
    /// set and marks it fresh).
    pub replanned: Vec<UnitPlan>,
    /// Earlier runs whose record this apply finished.
    pub recovered: Vec<String>,
    /// The stacks of the environment that are not at the run's commit after it (not in the
    /// plan and changed since they were last applied, or not applied by it): while there are
    /// any, the environment stays at its deployed commit.
    pub behind: Vec<String>,
}

impl Report {
    pub fn succeeded(&self) -> bool {
        self.run.status == RunStatus::Succeeded
    }

    /// Whether the apply stopped at a gate (nothing failed; what comes after it waits).
    pub fn waiting(&self) -> bool {
        self.run.status == RunStatus::Waiting
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("plan {plan} does not cover environment `{environment}`")]
    NotInPlan { plan: String, environment: String },
    /// The plan no longer matches what is deployed or configured; nothing was done.
    #[error("refusing to apply plan {plan}:\n{}", reasons.iter().map(|r| format!("  - {r}")).collect::<Vec<_>>().join("\n"))]
    Refused { plan: String, reasons: Vec<String> },
}

/// Applies one environment of a plan.
pub async fn apply<S: Store + 'static>(
    aws: &Aws,
    store: Arc<S>,
    req: Request,
    options: &Options,
    observer: Arc<dyn Observer>,
    masker: Arc<Masker>,
) -> Result<Report, ApplyError> {
    let env_plan = req
        .plan
        .environments
        .iter()
        .find(|e| e.name == req.environment)
        .cloned()
        .ok_or_else(|| ApplyError::NotInPlan {
            plan: req.plan.id.clone(),
            environment: req.environment.clone(),
        })?;
    let session = aws.session(&req.desired.target()).await?;
    // Stacks planned again during the apply read other environments' outputs with their own
    // sessions.
    let remote = crate::plan::remote::RemoteSessions::open(aws, &req.desired, None).await;

    let reason = format!("apply of plan {}", req.plan.id);
    let held = lease::hold(
        store.clone(),
        Subject::Apply(req.environment.clone()),
        &options.owner,
        &reason,
        options.lease,
    )
    .await?;
    let result = run::apply_locked(
        &session,
        remote,
        store.clone(),
        &req,
        env_plan,
        options,
        observer,
        masker,
        held.signal(),
    )
    .await;
    held.release(store.as_ref()).await?;
    result
}

/// The clients for a planned stack: the environment's session in the stack's region.
pub(crate) fn session_of(session: &crate::aws::Session, u: &UnitPlan) -> crate::aws::Session {
    match &u.region {
        Some(region) => session.in_region(region),
        None => session.clone(),
    }
}
