//! The agent's queue: what a webhook, a poll or a start calls for ([`Work`], decided by
//! [`crate::runner::decide`]) is queued here and done by the [`Runner`], as the GitHub Action's
//! step does it inline. What is the daemon's own:
//!
//! - **The clone.** Work starts with a fetch, so it sees what the event saw (and newer).
//! - **Coalescing.** Repeated plans of one pull request coalesce: a newer head cancels the plan
//!   of an older one, queued or running; a head seen by both a delivery and a poll is planned
//!   once; a closed pull request's running plan is let finish before it is released. Bringing
//!   the environments to the default branch runs once at a time, again when the branch moved
//!   meanwhile. An apply is never cancelled.
//! - **Catching up.** On start, each open pull request whose head has no plan (opened or
//!   pushed to while no agent ran) is planned, as a webhook would have had it planned.
//! - **Shutdown.** No new work starts; plans are cancelled; applies are waited for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::config::ServerConfig;
use super::metrics::Metrics;
use super::mirror::{Heads, Mirror};
use crate::apply::Options as ApplyOptions;
use crate::github::client::PullRequest;
use crate::github::flow::{Context, PlanSelection};
use crate::github::webhook::DeliveryDedup;
use crate::lease::{self, Subject};
use crate::runner::{Hooks, Policy, Runner, Settings, Work};
use crate::store::{LockError, now};

/// How long a delivery id is remembered across replicas.
const DELIVERY_MEMORY: Duration = Duration::from_secs(3 * 24 * 3600);

/// The agent: its settings, its clone, its runner and its queue.
pub struct Agent {
    pub config: ServerConfig,
    pub runner: Arc<Runner>,
    pub mirror: Mirror,
    pub metrics: Arc<Metrics>,
    /// Who this replica is, for leases and records.
    pub replica: String,
    jobs: mpsc::UnboundedSender<Work>,
    fetch_lock: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    /// Set once the first fetch has succeeded.
    pub ready: AtomicBool,
    /// Set when shutting down: no new work starts.
    pub stopping: AtomicBool,
}

#[derive(Default)]
struct State {
    /// Plans queued or running, by pull request: the task, to cancel it for a newer head.
    plans: HashMap<u64, JoinHandle<()>>,
    /// Other work under way (waited for on shutdown).
    others: Vec<JoinHandle<()>>,
    applying: bool,
    apply_again: bool,
    /// The head of each pull request whose plan was last queued by a delivery or a poll.
    queued_heads: HashMap<u64, String>,
    /// The heads seen by the last poll.
    last_heads: Option<Heads>,
    /// Delivery ids seen by this replica (the latest ten thousand).
    deliveries: SeenDeliveries,
    /// The environments of the last default-branch head the status page showed, each with its
    /// config error when it does not resolve.
    status_names: Option<(String, EnvironmentNames)>,
}

/// The environment names of a revision, each with its config error when it does not resolve.
type EnvironmentNames = Vec<(String, Option<String>)>;

/// The delivery ids a replica remembers in memory, before asking the state store.
struct SeenDeliveries(DeliveryDedup);

impl Default for SeenDeliveries {
    fn default() -> Self {
        SeenDeliveries(DeliveryDedup::new(10_000))
    }
}

/// The runner's hooks: the agent's metrics.
struct Counted(Arc<Metrics>);

impl Hooks for Counted {
    fn planned(&self, _number: u64, done: &crate::github::flow::PlannedPullRequest) {
        if matches!(&done.plan, Ok(p) if p.has_errors()) {
            self.0.aws_errors.inc();
        }
    }

    fn applied(&self, environment: &str, ok: bool, seconds: f64) {
        self.0
            .run("apply", if ok { "ok" } else { "failed" }, seconds);
        if ok {
            self.0.applied(environment, now());
        }
    }

    fn github_error(&self) {
        self.0.github_errors.inc();
    }
}

impl Agent {
    /// An agent and the receiving end of its queue (for [`Agent::run_queue`]).
    pub fn new(
        config: ServerConfig,
        cx: Context,
        mirror: Mirror,
        replica: String,
    ) -> (Arc<Agent>, mpsc::UnboundedReceiver<Work>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let metrics = Arc::new(Metrics::default());
        let settings = Settings {
            default_branch: config.repository.default_branch.clone(),
            environments: Vec::new(),
            apply_before_merge: config.github.apply_before_merge,
            apply: ApplyOptions {
                allow_delete: config.apply.allow_delete,
                replan: config.apply.replan,
                stack_timeout: Duration::from_secs(config.apply.stack_timeout_minutes * 60),
                parallel: config.apply.parallel_stacks,
                owner: replica.clone(),
                ..ApplyOptions::default()
            },
            identity: replica.clone(),
            parallel_environments: config.parallel_environments,
            replans_when_freed: true,
        };
        let runner = Arc::new(Runner::new(
            cx,
            settings,
            Arc::new(Counted(metrics.clone())),
        ));
        let agent = Arc::new(Agent {
            config,
            runner,
            mirror,
            metrics,
            replica,
            jobs: tx,
            fetch_lock: tokio::sync::Mutex::new(()),
            state: Mutex::new(State::default()),
            ready: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
        });
        (agent, rx)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The rules the agent decides events by.
    pub fn policy(&self) -> Policy {
        self.config.policy()
    }

    /// The flows' context (clients, store, clone).
    pub fn cx(&self) -> &Context {
        &self.runner.cx
    }

    /// A delivery says pull request `number` is open (opened, reopened, pushed to). Reopened,
    /// its head is planned again even if it was before it closed.
    pub fn pull_is_open(&self, number: u64, reopened: bool) {
        self.runner.pull_is_open(number);
        if reopened {
            self.state().queued_heads.remove(&number);
        }
    }

    /// Queues work.
    pub fn enqueue(&self, work: Work) {
        if self.stopping.load(Ordering::SeqCst) {
            tracing::info!(kind = work.kind(), "shutting down: work not taken");
            return;
        }
        if let Work::PlanPull {
            number,
            head: Some(head),
            ..
        } = &work
        {
            // A delivery and a poll that both saw a new head plan it once.
            let mut st = self.state();
            if st.queued_heads.get(number) == Some(head) {
                tracing::debug!(pull_request = number, head, "this head is already planned");
                return;
            }
            st.queued_heads.insert(*number, head.clone());
        }
        self.metrics.queue_depth.inc();
        let _ = self.jobs.send(work);
    }

    /// Whether a delivery id is new, here and (with a shared store) on every replica.
    pub async fn first_delivery(&self, id: &str) -> bool {
        if !self.state().deliveries.0.first_time(id) {
            return false;
        }
        match lease::take(
            self.cx().store.as_ref(),
            &Subject::Delivery(id.to_string()),
            &self.replica,
            "webhook delivery",
            DELIVERY_MEMORY,
        )
        .await
        {
            Ok(_) => true,
            Err(LockError::Held(_)) => false,
            Err(e) => {
                // The store being down must not lose work: act on it.
                tracing::warn!(error = %e, "could not record the delivery id; acting on it");
                true
            }
        }
    }

    /// Runs the queue until the channel closes.
    pub async fn run_queue(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Work>) {
        while let Some(work) = rx.recv().await {
            self.metrics.queue_depth.dec();
            if self.stopping.load(Ordering::SeqCst) {
                continue;
            }
            self.dispatch(work);
        }
    }

    fn dispatch(self: &Arc<Self>, work: Work) {
        let me = self.clone();
        let mut st = self.state();
        st.others.retain(|h| !h.is_finished());
        match work {
            Work::PlanPull { number, .. } => {
                if let Some(old) = st.plans.remove(&number)
                    && !old.is_finished()
                {
                    tracing::info!(
                        pull_request = number,
                        "a newer head: the older plan is cancelled"
                    );
                    old.abort();
                }
                let handle = tokio::spawn(async move { me.timed(work).await });
                st.plans.insert(number, handle);
            }
            Work::Apply { .. } => {
                if st.applying {
                    st.apply_again = true;
                    return;
                }
                st.applying = true;
                st.others
                    .push(tokio::spawn(async move { me.apply_loop(work).await }));
            }
            Work::PullClosed { number, .. } => {
                // One running plan of it is let finish (stopped half way, it could leave a
                // change set made after the clean-up) before it is released.
                let running = st.plans.remove(&number);
                st.others.push(tokio::spawn(async move {
                    if let Some(plan) = running {
                        let _ = plan.await;
                    }
                    me.timed(work).await
                }));
            }
            Work::Command(_) => {
                st.others
                    .push(tokio::spawn(async move { me.timed(work).await }));
            }
        }
    }

    /// Brings the environments to the default branch, again while it moved meanwhile.
    async fn apply_loop(self: Arc<Self>, first: Work) {
        let mut work = first;
        loop {
            self.clone().timed(work).await;
            let mut st = self.state();
            if st.apply_again && !self.stopping.load(Ordering::SeqCst) {
                st.apply_again = false;
                work = Work::Apply {
                    head: None,
                    why: "the default branch moved again".into(),
                };
            } else {
                st.applying = false;
                return;
            }
        }
    }

    async fn timed(self: Arc<Self>, work: Work) {
        let kind = work.kind();
        let start = Instant::now();
        self.metrics.jobs_running.inc();
        let result = self.clone().run(work).await;
        if self.metrics.jobs_running.dec() == 1 {
            release_freed_memory();
        }
        let outcome = match &result {
            Ok(()) => "ok",
            Err(e) => {
                tracing::error!(kind, error = %e, "work failed");
                "error"
            }
        };
        self.metrics
            .run(kind, outcome, start.elapsed().as_secs_f64());
    }

    /// Fetches, then lets the runner do the work; queues what it calls for next.
    async fn run(self: Arc<Self>, work: Work) -> Result<(), String> {
        let head = self.fetch().await?.default_branch;
        let work = match work {
            // Whatever the event saw, the branch as fetched now (the same or newer).
            Work::Apply { why, .. } => {
                if head.is_none() {
                    return Err(format!(
                        "the repository has no branch `{}`",
                        self.config.repository.default_branch
                    ));
                }
                Work::Apply { head, why }
            }
            other => other,
        };
        let planned_head = match &work {
            Work::PlanPull {
                number,
                head: Some(head),
                ..
            } => Some((*number, head.clone())),
            _ => None,
        };
        let result = self.runner.run(work).await;
        if result.is_err()
            && let Some((number, head)) = planned_head
        {
            // Not planned: the next poll or delivery of this head may try again.
            let mut st = self.state();
            if st.queued_heads.get(&number) == Some(&head) {
                st.queued_heads.remove(&number);
            }
        }
        self.queue_all(result)
    }

    fn queue_all(&self, result: Result<Vec<Work>, crate::runner::RunError>) -> Result<(), String> {
        for next in result.map_err(|e| e.0)? {
            self.enqueue(next);
        }
        Ok(())
    }

    /// Fetches the repository (one fetch at a time) and returns its heads.
    pub async fn fetch(&self) -> Result<Heads, String> {
        let _one = self.fetch_lock.lock().await;
        let token = self.cx().gh.git_token().await;
        let mirror = self.mirror.clone();
        let masker = self.cx().masker.clone();
        let r = tokio::task::spawn_blocking(move || {
            mirror.ensure()?;
            mirror.fetch(token.as_deref(), &masker)
        })
        .await
        .map_err(|e| e.to_string())?;
        match r {
            Ok(h) => {
                self.ready.store(true, Ordering::SeqCst);
                Ok(h)
            }
            Err(e) => {
                self.metrics.git_errors.inc();
                Err(e.to_string())
            }
        }
    }

    /// The names of the environments at commit `head`, each with its config error when it does
    /// not resolve (for the status page: read once per head).
    pub(crate) async fn environment_names_at(&self, head: &str) -> EnvironmentNames {
        if let Some((h, names)) = &self.state().status_names
            && h == head
        {
            return names.clone();
        }
        let Ok(checked) = self.runner.environments_at(head).await else {
            return Vec::new();
        };
        let mut names: EnvironmentNames = checked
            .resolved
            .into_iter()
            .map(|e| (e.name, None))
            .chain(checked.unresolved.into_iter().map(|(n, e)| (n, Some(e))))
            .collect();
        names.sort();
        self.state().status_names = Some((head.to_string(), names.clone()));
        names
    }

    /// Fetches; queues a reconciliation when the default branch moved and a plan of every open
    /// pull request whose head moved.
    pub async fn poll(self: &Arc<Self>) -> Result<(), String> {
        let heads = self.fetch().await?;
        let previous = self.state().last_heads.replace(heads.clone());
        let Some(previous) = previous else {
            return Ok(());
        };
        if heads.default_branch != previous.default_branch {
            self.enqueue(Work::Apply {
                head: None,
                why: "the poll found the default branch moved".into(),
            });
        }
        for (n, head) in &heads.pulls {
            if previous.pulls.get(n) == Some(head) {
                continue;
            }
            match self.cx().gh.pull_request(*n).await {
                Ok(p) if p.state == "open" => self.enqueue(Work::PlanPull {
                    number: *n,
                    head: Some(head.clone()),
                    offline: !self.trusted_head(&p),
                    selection: PlanSelection::default(),
                    why: "the poll found a new head".into(),
                }),
                Ok(_) => {}
                Err(e) => {
                    self.metrics.github_errors.inc();
                    tracing::warn!(pull_request = n, error = %self.cx().masker.scrub(&e.to_string()), "could not read the pull request");
                }
            }
        }
        Ok(())
    }

    /// Plans every open pull request whose head has no plan yet: those opened or pushed to
    /// while no agent ran (run once the first fetch has succeeded). Returns how many were
    /// queued.
    pub async fn plan_open_pulls_without_a_plan(self: &Arc<Self>) -> Result<usize, String> {
        let work = self
            .runner
            .unplanned_pulls(|p| self.trusted_head(p))
            .await
            .map_err(|e| e.0)?;
        let mut queued = 0;
        for w in work {
            if let Work::PlanPull { number, .. } = &w
                && self
                    .state()
                    .plans
                    .get(number)
                    .is_some_and(|h| !h.is_finished())
            {
                continue;
            }
            self.enqueue(w);
            queued += 1;
        }
        Ok(queued)
    }

    /// Whether a pull request's head may be planned with AWS: from the repository itself or
    /// from a trusted owner's fork.
    pub fn trusted_head(&self, p: &PullRequest) -> bool {
        self.policy()
            .trusts_head_repo(p.head.repo.as_ref().map(|r| r.full_name.as_str()))
    }

    /// Stops taking work, cancels plans, and waits (up to `grace`) for the rest, so that
    /// applies reach a recorded state.
    pub async fn shutdown(&self, grace: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        let (plans, others) = {
            let mut st = self.state();
            (
                st.plans.drain().map(|(_, h)| h).collect::<Vec<_>>(),
                std::mem::take(&mut st.others),
            )
        };
        for p in plans {
            p.abort();
        }
        let wait = async {
            for h in others {
                let _ = h.await;
            }
        };
        if tokio::time::timeout(grace, wait).await.is_err() {
            tracing::warn!("work still running after the grace period; the next start recovers it");
        }
    }
}

/// Gives the heap memory that finished work freed back to the operating system, once no work
/// runs. glibc's allocator keeps freed pages in its per-thread arenas, so without this an idle
/// agent would stay as large as its biggest piece of work (reading every environment of a
/// large config repository) made it.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused pages of the allocator's own heap to the system;
    // it takes no pointers and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
