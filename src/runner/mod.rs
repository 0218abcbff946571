//! The one way through: a GitHub event or a comment command becomes [`Work`] ([`decide`]), and
//! the [`Runner`] does it — plans a pull request, releases a closed one, brings environments to
//! the default branch, runs a command — and reports on GitHub. The GitHub Action's step
//! (`formwork github-event`) runs the work inline; the daemon (`formwork serve`) from its queue.
//! Both decide alike (the same fork trust, the same authorization, the same meaning of every
//! command) and say the same things.
//!
//! - [`decide`]: what an event calls for;
//! - [`pulls`]: planning a pull request (claims, offline plans of forks) and closing one;
//! - [`branch`]: bringing environments to the default branch, merge by merge;
//! - [`commands`]: `/formwork …` comments.
//!
//! What differs between the doors is only what they can do: the daemon keeps its own clone
//! (fetched before work starts), a queue that coalesces repeated plans, and plans pull requests
//! that waited for an environment as soon as it is released ([`Settings::replans_when_freed`]);
//! a step runs one event's work and ends.

pub mod branch;
pub mod commands;
pub mod decide;
pub mod pulls;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

pub use decide::{Acts, Decision, Policy, decide};

use crate::apply::{Observer, Options as ApplyOptions};
use crate::aws::cfn::StackEvent;
use crate::github::flow::{Context, PlanSelection};
use crate::github::webhook::IssueCommentEvent;
use crate::plan::model::UnitPlan;
use crate::store::UnitState;

/// Something to do.
#[derive(Clone, Debug)]
pub enum Work {
    /// Plan pull request `number` (at its current head).
    PlanPull {
        number: u64,
        /// The head an event saw (`None`: whatever the head is now).
        head: Option<String>,
        /// Plan offline: the head is in an untrusted fork.
        offline: bool,
        selection: PlanSelection,
        why: String,
    },
    /// A `/formwork …` comment (or any comment on a pull request: most are not commands).
    Command(Box<IssueCommentEvent>),
    /// A pull request was closed (merged or not): release its claims, delete the change sets
    /// of an unmerged one.
    PullClosed { number: u64, merged: bool },
    /// Bring every environment to the default branch at `head` (`None`: the branch's commit in
    /// the config repository now).
    Apply { head: Option<String>, why: String },
}

impl Work {
    /// A short name, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Work::PlanPull { .. } => "plan",
            Work::Command(_) => "command",
            Work::PullClosed { .. } => "close",
            Work::Apply { .. } => "reconcile",
        }
    }
}

/// How a runner works, for its door.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The branch whose commits are applied.
    pub default_branch: String,
    /// Work on these environments only (none: all).
    pub environments: Vec<String>,
    /// Whether `/formwork apply` applies an open pull request's reviewed plan.
    pub apply_before_merge: bool,
    /// How applies run.
    pub apply: ApplyOptions,
    /// Who this runner is, for leases and records.
    pub identity: String,
    /// Environments worked on at once.
    pub parallel_environments: usize,
    /// Whether pull requests that waited for an environment are planned as soon as it is
    /// released (a daemon, which has every pull request's head at hand); otherwise the waiting
    /// note asks for `/formwork plan` then.
    pub replans_when_freed: bool,
}

/// What a runner tells its door about, for metrics.
pub trait Hooks: Send + Sync {
    /// Pull request `number` was planned (or its plan failed) and reported as `done` says.
    fn planned(&self, number: u64, done: &crate::github::flow::PlannedPullRequest) {
        let _ = (number, done);
    }
    /// An environment was applied (`ok`: every stack of the plan) in `seconds`.
    fn applied(&self, environment: &str, ok: bool, seconds: f64) {
        let _ = (environment, ok, seconds);
    }
    /// GitHub refused or failed a call.
    fn github_error(&self) {}
}

/// Hooks that count nothing.
pub struct NoHooks;

impl Hooks for NoHooks {}

/// Why work could not be done (after what could be said on GitHub was said).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RunError(pub String);

/// What a runner remembers between pieces of work.
#[derive(Default)]
struct State {
    /// Pull requests waiting for an environment another pull request claims.
    waiting: BTreeMap<String, BTreeSet<u64>>,
    /// Pull requests seen closed (until an event says one is open again).
    closed: HashSet<u64>,
    /// (environment, commit) whose apply could not start, already reported.
    reported: HashSet<(String, String)>,
}

/// Does the work of events and commands (see the module documentation).
pub struct Runner {
    pub cx: Context,
    pub settings: Settings,
    hooks: Arc<dyn Hooks>,
    state: Mutex<State>,
    permits: Semaphore,
    env_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Runner {
    pub fn new(cx: Context, settings: Settings, hooks: Arc<dyn Hooks>) -> Runner {
        let permits = Semaphore::new(settings.parallel_environments.max(1));
        Runner {
            cx,
            settings,
            hooks,
            state: Mutex::new(State::default()),
            permits,
            env_locks: Mutex::new(HashMap::new()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Does `work`; returns the work it calls for next (pull requests to plan once an
    /// environment is free, a plan asked for by a comment, …), for the door to run.
    pub async fn run(&self, work: Work) -> Result<Vec<Work>, RunError> {
        match work {
            Work::PlanPull {
                number,
                offline,
                selection,
                why,
                ..
            } => {
                tracing::info!(pull_request = number, why, "planning");
                self.plan_pull(number, offline, selection).await?;
                Ok(Vec::new())
            }
            Work::Command(c) => self.command(&c).await,
            Work::PullClosed { number, merged } => self.pull_closed(number, merged).await,
            Work::Apply { head, why } => {
                tracing::info!(why, "bringing the environments to the default branch");
                self.apply_branch(head.as_deref()).await?;
                Ok(Vec::new())
            }
        }
    }

    /// An event says pull request `number` is open again.
    pub fn pull_is_open(&self, number: u64) {
        self.state().closed.remove(&number);
    }

    /// The in-process lock of one environment: one piece of work on it at a time.
    fn env_lock(&self, env: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.env_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(env.to_string())
            .or_default()
            .clone()
    }

    /// A GitHub failure, counted, as a message with secrets masked.
    fn github_error(&self, e: impl std::fmt::Display) -> RunError {
        self.hooks.github_error();
        RunError(self.cx.masker.scrub(&e.to_string()))
    }

    /// Pull request `number` as GitHub has it now.
    async fn pull(&self, number: u64) -> Result<crate::github::client::PullRequest, RunError> {
        self.cx
            .gh
            .pull_request(number)
            .await
            .map_err(|e| self.github_error(e))
    }

    /// Any other failure, as a message with secrets masked.
    fn error(&self, e: impl std::fmt::Display) -> RunError {
        RunError(self.cx.masker.scrub(&e.to_string()))
    }

    /// Whether environment `env` is one this runner works on.
    fn wants(&self, env: &str) -> bool {
        self.settings.environments.is_empty() || self.settings.environments.iter().any(|e| e == env)
    }
}

/// Apply progress into the logs (a daemon's, a step's).
pub struct LogObserver {
    pub environment: String,
}

impl Observer for LogObserver {
    fn unit(&self, stack: &str, state: UnitState, message: Option<&str>) {
        tracing::info!(environment = %self.environment, stack, state = state.as_str(), message, "stack");
    }

    fn event(&self, stack: &str, e: &StackEvent) {
        tracing::info!(environment = %self.environment, stack, resource = %e.logical_id, status = %e.status, reason = e.reason.as_deref(), "event");
    }

    fn replanned(&self, plan: &UnitPlan) {
        tracing::info!(environment = %self.environment, stack = %plan.stack, action = ?plan.action, "fresh change set");
    }

    fn confirm(&self, question: &str) -> bool {
        tracing::warn!(environment = %self.environment, question, "not confirmed: work started from GitHub never confirms destruction the review did not show");
        false
    }
}
