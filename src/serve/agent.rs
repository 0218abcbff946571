//! The agent's work: what a webhook, a poll or a start calls for, queued and run.
//!
//! - **Jobs.** A pull request to plan, a comment command, a pull request closed, a
//!   reconciliation of the default branch. Repeated plans of one pull request coalesce: a newer
//!   head cancels the plan of an older one, queued or running (an apply is never cancelled).
//! - **Order.** Work on one environment runs one job at a time (a lock per environment in this
//!   process, and a lease in the state store across replicas); different environments run in
//!   parallel, at most `parallel_environments` at once.
//! - **Reconciliation.** On start and on every change of the default branch, each environment
//!   is brought from its last applied commit to the branch's head, merge by merge, each with the
//!   plan reviewed on its pull request: a lost webhook or a restart never skips a merge.
//! - **Catching up.** On start, each open pull request whose head has no plan (opened or
//!   pushed to while no agent ran) is planned, as a webhook would have had it planned.
//! - **Claims.** A pull request that plans an environment claims it until it is merged or
//!   closed; another pull request that touches it is told which one holds it and is planned for
//!   it automatically when the claim is released.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::config::ServerConfig;
use super::metrics::Metrics;
use super::mirror::{Heads, Mirror};
use crate::apply::{Observer, Options as ApplyOptions};
use crate::aws::cfn::StackEvent;
use crate::github::commands::{self, Command, Parsed};
use crate::github::flow::{self, Applied, ApplyTarget, Context, PlanSelection};
use crate::github::webhook::{DeliveryDedup, IssueCommentEvent};
use crate::lease::{self, LossSignal, Subject};
use crate::plan::live::{self, Quiet};
use crate::plan::model::UnitPlan;
use crate::store::{LockError, RunStatus, Store, UnitState, now};
use crate::workflow::CheckedEnvironments;

/// How long a pull request's claim on an environment lasts without activity; it is renewed on
/// every plan and released when the pull request is merged or closed.
const CLAIM_LEASE: Duration = Duration::from_secs(30 * 24 * 3600);
/// The lease of a replica's work on one environment; renewed while the work runs.
const WORK_LEASE: Duration = Duration::from_secs(120);
/// How long a delivery id is remembered across replicas.
const DELIVERY_MEMORY: Duration = Duration::from_secs(3 * 24 * 3600);

/// The environment names of a revision, each with its config error when it does not resolve.
type EnvironmentNames = Vec<(String, Option<String>)>;

/// Something to do.
#[derive(Clone, Debug)]
pub enum Job {
    /// Plan pull request `number` (at its current head).
    PlanPull {
        number: u64,
        /// The head a delivery or a poll saw: a plan of a head already queued is not queued
        /// again (`None`: always queued, as for a `/formwork plan` comment).
        head: Option<String>,
        /// Plan offline: the pull request comes from an untrusted fork.
        offline: bool,
        selection: PlanSelection,
        why: String,
    },
    /// A `/formwork …` comment.
    Comment(Box<IssueCommentEvent>),
    /// A pull request was closed (merged or not): release its claims, delete its change sets.
    PullClosed { number: u64, merged: bool },
    /// Bring every environment to the default branch's head.
    Reconcile { why: String },
}

impl Job {
    fn kind(&self) -> &'static str {
        match self {
            Job::PlanPull { .. } => "plan",
            Job::Comment(_) => "command",
            Job::PullClosed { .. } => "close",
            Job::Reconcile { .. } => "reconcile",
        }
    }
}

/// The agent: its settings, its clone, its store and clients, and its queue.
pub struct Agent {
    pub config: ServerConfig,
    pub cx: Context,
    pub mirror: Mirror,
    pub metrics: Arc<Metrics>,
    /// Who this replica is, for leases and records.
    pub replica: String,
    jobs: mpsc::UnboundedSender<Job>,
    permits: Arc<Semaphore>,
    env_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    fetch_lock: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    /// Set once the first fetch has succeeded.
    pub ready: AtomicBool,
    /// Set when shutting down: no new jobs start.
    pub stopping: AtomicBool,
}

#[derive(Default)]
struct State {
    /// Plans queued or running, by pull request: the task, to cancel it for a newer head.
    plans: HashMap<u64, JoinHandle<()>>,
    /// Other jobs under way (waited for on shutdown).
    others: Vec<JoinHandle<()>>,
    reconciling: bool,
    reconcile_again: bool,
    /// Pull requests waiting for an environment another pull request claims.
    waiting: BTreeMap<String, BTreeSet<u64>>,
    /// The head of each pull request whose plan was last queued by a delivery or a poll.
    queued_heads: HashMap<u64, String>,
    /// Pull requests this agent saw closed (until a delivery says one is open again): a plan
    /// of one queued before it closed (by a poll, say) is dropped, so that it cannot claim an
    /// environment again after its claim was released.
    closed: HashSet<u64>,
    /// The heads seen by the last poll.
    last_heads: Option<Heads>,
    /// (environment, commit) whose apply could not start, already reported.
    reported_stuck: HashSet<(String, String)>,
    /// Delivery ids seen by this replica (the latest ten thousand).
    deliveries: SeenDeliveries,
    /// The environments of the last default-branch head the status page showed, each with its
    /// config error when it does not resolve.
    status_names: Option<(String, EnvironmentNames)>,
}

/// The delivery ids a replica remembers in memory, before asking the state store.
struct SeenDeliveries(DeliveryDedup);

impl Default for SeenDeliveries {
    fn default() -> Self {
        SeenDeliveries(DeliveryDedup::new(10_000))
    }
}

impl Agent {
    /// An agent and the receiving end of its queue (for [`Agent::run_queue`]).
    pub fn new(
        config: ServerConfig,
        cx: Context,
        mirror: Mirror,
        replica: String,
    ) -> (Arc<Agent>, mpsc::UnboundedReceiver<Job>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let permits = Arc::new(Semaphore::new(config.parallel_environments.max(1)));
        let agent = Arc::new(Agent {
            config,
            cx,
            mirror,
            metrics: Arc::new(Metrics::default()),
            replica,
            jobs: tx,
            permits,
            env_locks: Mutex::new(HashMap::new()),
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

    /// Queues a job.
    /// A delivery says pull request `number` is open (opened, reopened, pushed to). Reopened,
    /// its head is planned again even if it was before it closed.
    pub fn pull_is_open(&self, number: u64, reopened: bool) {
        let mut st = self.state();
        st.closed.remove(&number);
        if reopened {
            st.queued_heads.remove(&number);
        }
    }

    pub fn enqueue(&self, job: Job) {
        if self.stopping.load(Ordering::SeqCst) {
            tracing::info!(kind = job.kind(), "shutting down: job not taken");
            return;
        }
        if let Job::PlanPull {
            number,
            head: Some(head),
            ..
        } = &job
        {
            // A delivery and a poll that both saw a new head plan it once.
            let mut st = self.state();
            if st.queued_heads.get(number) == Some(head) {
                tracing::debug!(pull_request = number, head, "this head is already planned");
                return;
            }
            st.queued_heads.insert(*number, head.clone());
        }
        self.metrics.queue_depth.fetch_add(1, Ordering::SeqCst);
        let _ = self.jobs.send(job);
    }

    /// Whether a delivery id is new, here and (with a shared store) on every replica.
    pub async fn first_delivery(&self, id: &str) -> bool {
        if !self.state().deliveries.0.first_time(id) {
            return false;
        }
        match lease::take(
            self.cx.store.as_ref(),
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

    /// Takes jobs off the queue until it closes; each runs in its own task.
    pub async fn run_queue(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Job>) {
        while let Some(job) = rx.recv().await {
            self.metrics.queue_depth.fetch_sub(1, Ordering::SeqCst);
            if self.stopping.load(Ordering::SeqCst) {
                continue;
            }
            self.dispatch(job);
        }
    }

    fn dispatch(self: &Arc<Self>, job: Job) {
        match job {
            Job::PlanPull { number, .. } => {
                let me = self.clone();
                let mut st = self.state();
                if let Some(old) = st.plans.remove(&number)
                    && !old.is_finished()
                {
                    tracing::info!(
                        pull_request = number,
                        "a newer head: the older plan is cancelled"
                    );
                    old.abort();
                }
                let handle = tokio::spawn(async move { me.timed(job).await });
                st.plans.insert(number, handle);
            }
            Job::Reconcile { .. } => {
                let mut st = self.state();
                if st.reconciling {
                    st.reconcile_again = true;
                    return;
                }
                st.reconciling = true;
                let me = self.clone();
                st.others
                    .push(tokio::spawn(async move { me.reconcile_loop(job).await }));
            }
            Job::PullClosed { number, .. } => {
                // From now on no plan of it starts; one running is let finish (stopped half
                // way, it could leave a change set made after the clean-up below) before its
                // change sets are deleted and its claims released.
                let me = self.clone();
                let mut st = self.state();
                st.closed.insert(number);
                let running = st.plans.remove(&number);
                st.others.retain(|h| !h.is_finished());
                st.others.push(tokio::spawn(async move {
                    if let Some(plan) = running {
                        let _ = plan.await;
                    }
                    me.timed(job).await
                }));
            }
            other => {
                let me = self.clone();
                let mut st = self.state();
                st.others.retain(|h| !h.is_finished());
                st.others
                    .push(tokio::spawn(async move { me.timed(other).await }));
            }
        }
    }

    async fn reconcile_loop(self: Arc<Self>, first: Job) {
        let mut job = first;
        loop {
            self.clone().timed(job).await;
            let mut st = self.state();
            if st.reconcile_again && !self.stopping.load(Ordering::SeqCst) {
                st.reconcile_again = false;
                job = Job::Reconcile {
                    why: "the default branch moved again".into(),
                };
            } else {
                st.reconciling = false;
                return;
            }
        }
    }

    async fn timed(self: Arc<Self>, job: Job) {
        let kind = job.kind();
        let start = Instant::now();
        self.metrics.jobs_running.fetch_add(1, Ordering::SeqCst);
        let result = self.clone().run(job).await;
        if self.metrics.jobs_running.fetch_sub(1, Ordering::SeqCst) == 1 {
            release_freed_memory();
        }
        let outcome = match &result {
            Ok(()) => "ok",
            Err(e) => {
                tracing::error!(kind, error = %self.cx.masker.scrub(e), "job failed");
                "error"
            }
        };
        self.metrics
            .run(kind, outcome, start.elapsed().as_secs_f64());
    }

    async fn run(self: Arc<Self>, job: Job) -> Result<(), String> {
        match job {
            Job::PlanPull {
                number,
                head,
                offline,
                selection,
                why,
            } => {
                tracing::info!(pull_request = number, why, "planning");
                let result = match self.fetch().await {
                    Ok(_) => self.plan_pull(number, offline, selection).await,
                    Err(e) => Err(e),
                };
                if result.is_err() && head.is_some() {
                    // Not planned: the next poll or delivery of this head may try again.
                    let mut st = self.state();
                    if st.queued_heads.get(&number) == head.as_ref() {
                        st.queued_heads.remove(&number);
                    }
                }
                result
            }
            Job::Comment(c) => {
                // Most comments are not commands: nothing to fetch for them.
                let parsed = commands::parse_comment(&c.body);
                if matches!(parsed, Parsed::NotACommand) {
                    return Ok(());
                }
                self.fetch().await?;
                self.command(&c, parsed).await
            }
            Job::PullClosed { number, merged } => self.pull_closed(number, merged).await,
            Job::Reconcile { why } => {
                tracing::info!(why, "reconciling");
                let heads = self.fetch().await?;
                self.reconcile(heads).await
            }
        }
    }

    /// Fetches the repository (one fetch at a time) and returns its heads.
    pub async fn fetch(&self) -> Result<Heads, String> {
        let _one = self.fetch_lock.lock().await;
        let token = self.cx.gh.git_token().await;
        let mirror = self.mirror.clone();
        let masker = self.cx.masker.clone();
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
                self.metrics.git_errors.fetch_add(1, Ordering::Relaxed);
                Err(e.to_string())
            }
        }
    }

    /// A lock per environment in this process.
    fn env_lock(&self, env: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.env_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(env.to_string())
            .or_default()
            .clone()
    }

    /// The environments a pull request affects (its head against where it branched off).
    async fn affected_by_pull(&self, number: u64) -> Result<Vec<String>, String> {
        let pull = self
            .cx
            .gh
            .pull_request(number)
            .await
            .map_err(|e| self.github_error(e))?;
        self.affected_by(pull).await
    }

    /// The environments `pull` affects at its head, from the clone.
    async fn affected_by(
        &self,
        pull: crate::github::client::PullRequest,
    ) -> Result<Vec<String>, String> {
        let repo = self.cx.repo.clone();
        tokio::task::spawn_blocking(move || {
            let base = repo.merge_base(&pull.base.sha, &pull.head.sha)?;
            repo.affected_environments(&base, &pull.head.sha)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
    }

    fn github_error(&self, e: impl std::fmt::Display) -> String {
        self.metrics.github_errors.fetch_add(1, Ordering::Relaxed);
        self.cx.masker.scrub(&e.to_string())
    }

    /// Claims `env` for pull request `number`; `Err(holder)` when another pull request holds it.
    async fn claim(&self, env: &str, number: u64) -> Result<(), String> {
        match lease::take_or_renew(
            self.cx.store.as_ref(),
            &Subject::Claim(env.to_string()),
            &lease::pull_request_owner(number),
            "planned by the pull request",
            CLAIM_LEASE,
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(LockError::Held(l)) => Err(l.owner),
            Err(e) => {
                tracing::warn!(error = %e, env, "could not claim the environment; planning anyway");
                Ok(())
            }
        }
    }

    /// Releases pull request `number`'s claim on `env`; whether it held one.
    async fn release_claim(&self, env: &str, number: u64) -> Result<bool, String> {
        lease::release_if_owner(
            self.cx.store.as_ref(),
            &Subject::Claim(env.to_string()),
            &lease::pull_request_owner(number),
        )
        .await
        .map_err(|e| e.to_string())
    }

    async fn plan_pull(
        &self,
        number: u64,
        offline: bool,
        mut sel: PlanSelection,
    ) -> Result<(), String> {
        let pull = self
            .cx
            .gh
            .pull_request(number)
            .await
            .map_err(|e| self.github_error(e))?;
        if pull.state != "open" || self.state().closed.contains(&number) {
            tracing::info!(
                pull_request = number,
                "the pull request is closed: not planned"
            );
            return Ok(());
        }
        let affected = self.affected_by(pull.clone()).await?;
        let wanted: Vec<String> = affected
            .into_iter()
            .filter(|e| sel.environments.is_empty() || sel.environments.contains(e))
            .collect();
        let mut mine = Vec::new();
        let mut notes = Vec::new();
        for env in &wanted {
            match self.claim(env, number).await {
                Ok(()) => mine.push(env.clone()),
                Err(holder) => {
                    notes.push(format!(
                        "Environment `{env}` is locked by {holder}: this pull request is planned for it automatically when that one is merged or closed."
                    ));
                    self.state()
                        .waiting
                        .entry(env.clone())
                        .or_default()
                        .insert(number);
                }
            }
        }
        if self.state().closed.contains(&number) {
            // Closed while its claims were taken: they go again.
            for env in &mine {
                self.release_claim(env, number).await?;
            }
            return Ok(());
        }
        if !notes.is_empty() {
            sel.comment_scope = Some(sel.environments.clone());
            sel.note = Some(notes.join("\n"));
            if mine.is_empty() {
                // Nothing to plan now: say why on the pull request.
                return self.post_waiting_note(number, &sel).await;
            }
            sel.environments = mine.clone();
        }
        sel.offline = offline;
        // One job per environment at a time, taken in name order (no deadlock).
        let locks: Vec<_> = mine.iter().map(|e| self.env_lock(e)).collect();
        let mut guards = Vec::new();
        for l in &locks {
            guards.push(l.lock().await);
        }
        let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
        let done = flow::plan_pull_request_as(&self.cx, &pull, &sel, Arc::new(Quiet))
            .await
            .map_err(|e| self.github_error(e))?;
        match &done.plan {
            Ok(p) if p.has_errors() => self.metrics.aws_errors.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        Ok(())
    }

    /// Every environment the pull request touches is claimed by another: say so.
    async fn post_waiting_note(&self, number: u64, sel: &PlanSelection) -> Result<(), String> {
        let sticky = crate::github::sticky::Sticky::new(
            crate::github::sticky::Kind::Plan,
            sel.comment_scope.as_deref().unwrap_or(&[]),
        );
        let text = format!(
            "## formwork plan\n\n> [!NOTE]\n{}",
            sel.note
                .as_deref()
                .unwrap_or_default()
                .lines()
                .map(|l| format!("> {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        crate::github::sticky::publish(&self.cx.gh, number, &sticky, &[text])
            .await
            .map_err(|e| self.github_error(e))?;
        Ok(())
    }

    async fn pull_closed(&self, number: u64, merged: bool) -> Result<(), String> {
        let envs = self.environments_at_head().await?;
        let mut freed = Vec::new();
        // The change sets go first: an environment is free once nothing of the closed pull
        // request is left in it.
        for env in &envs {
            if !merged {
                match live::delete_change_sets_of_origin(&self.cx.aws, env, &format!("pr-{number}"))
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(pull_request = number, environment = %env.name, deleted = n, "deleted the change sets of a closed pull request")
                    }
                    Err(e) => {
                        tracing::warn!(pull_request = number, environment = %env.name, error = %self.cx.masker.scrub(&e.to_string()), "could not delete the change sets of a closed pull request")
                    }
                }
            }
        }
        for env in &envs {
            if self.release_claim(&env.name, number).await? {
                freed.push(env.name.clone());
            }
        }
        // Whoever waited for a freed environment is planned now.
        let waiting: BTreeSet<u64> = {
            let mut st = self.state();
            for s in st.waiting.values_mut() {
                s.remove(&number);
            }
            freed
                .iter()
                .filter_map(|e| st.waiting.remove(e))
                .flatten()
                .collect()
        };
        for n in waiting {
            self.enqueue(Job::PlanPull {
                number: n,
                head: None,
                offline: false,
                selection: PlanSelection::default(),
                why: format!("pull request #{number} released an environment it waited for"),
            });
        }
        Ok(())
    }

    /// The environments at the default branch's head.
    async fn environments_at_head(
        &self,
    ) -> Result<Vec<crate::desired::DesiredEnvironment>, String> {
        Ok(self.checked_environments_at_head().await?.resolved)
    }

    /// The environments at the default branch's head that resolve, and those that do not with
    /// their first error.
    async fn checked_environments_at_head(&self) -> Result<CheckedEnvironments, String> {
        let repo = self.cx.repo.clone();
        let branch = self.config.repository.default_branch.clone();
        tokio::task::spawn_blocking(move || {
            repo.checked_environments_at(&format!("refs/heads/{branch}"))
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// An environment whose config at `head` does not resolve (a file that does not parse, or
    /// is refused): nothing is applied; its run of `head` is recorded as failed, with the
    /// error in the audit trail, once (also across restarts).
    async fn record_unresolved(&self, env: &str, head: &str, error: &str) -> Result<(), String> {
        if !self
            .state()
            .reported_stuck
            .insert((env.to_string(), head.to_string()))
        {
            return Ok(());
        }
        let error = self.cx.masker.scrub(error);
        tracing::error!(environment = env, commit = head, error = %error, "the config of the environment does not resolve: nothing is applied");
        let store = &self.cx.store;
        let latest = store.runs(Some(env), 1).await.map_err(|e| e.to_string())?;
        if latest.first().is_some_and(|r| {
            r.commit == head && r.status == RunStatus::Failed && r.plan_id.is_none()
        }) {
            return Ok(());
        }
        let at = now();
        let run = crate::store::Run {
            id: format!(
                "r{}",
                crate::plan::live::plan_id(head, &crate::plan::live::now_rfc3339())
            ),
            environment: env.to_string(),
            plan_id: None,
            commit: head.to_string(),
            owner: self.replica.clone(),
            started_at: at,
            finished_at: None,
            status: RunStatus::Running,
        };
        store.start_run(&run).await.map_err(|e| e.to_string())?;
        store
            .finish_run(&run.id, RunStatus::Failed, at)
            .await
            .map_err(|e| e.to_string())?;
        store
            .record_event(&crate::store::Event {
                environment: env.to_string(),
                at,
                kind: "invalid_config".into(),
                actor: self.replica.clone(),
                detail: format!("commit {head}: {error}"),
            })
            .await
            .map_err(|e| e.to_string())
    }

    /// The names of the environments at commit `head`, each with its config error when it does
    /// not resolve (for the status page: read once per head).
    pub(crate) async fn environment_names_at(&self, head: &str) -> EnvironmentNames {
        if let Some((h, names)) = &self.state().status_names
            && h == head
        {
            return names.clone();
        }
        let repo = self.cx.repo.clone();
        let rev = head.to_string();
        let names: Option<EnvironmentNames> = tokio::task::spawn_blocking(move || {
            let checked = repo.checked_environments_at(&rev).ok()?;
            let mut names: EnvironmentNames = checked
                .resolved
                .into_iter()
                .map(|e| (e.name, None))
                .chain(checked.unresolved.into_iter().map(|(n, e)| (n, Some(e))))
                .collect();
            names.sort();
            Some(names)
        })
        .await
        .ok()
        .flatten();
        match names {
            Some(names) => {
                self.state().status_names = Some((head.to_string(), names.clone()));
                names
            }
            None => Vec::new(),
        }
    }

    /// Brings every environment from its last applied commit to the default branch's head.
    async fn reconcile(self: &Arc<Self>, heads: Heads) -> Result<(), String> {
        let Some(head) = heads.default_branch else {
            return Err(format!(
                "the repository has no branch `{}`",
                self.config.repository.default_branch
            ));
        };
        let CheckedEnvironments {
            resolved: envs,
            unresolved,
        } = self.checked_environments_at_head().await?;
        for (env, error) in unresolved {
            if let Err(e) = self.record_unresolved(&env, &head, &error).await {
                tracing::error!(environment = %env, error = %e, "could not record the failure");
            }
        }
        let mut tasks = Vec::new();
        for env in envs {
            let me = self.clone();
            let head = head.clone();
            tasks.push(tokio::spawn(async move {
                let name = env.name.clone();
                if let Err(e) = me.reconcile_env(&name, &head).await {
                    tracing::error!(environment = %name, error = %e, "reconciliation failed");
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        Ok(())
    }

    async fn reconcile_env(&self, env: &str, head: &str) -> Result<(), String> {
        let lock = self.env_lock(env);
        let _guard = lock.lock().await;
        let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
        // One replica at a time: a lease in the store, renewed while the work runs.
        let held = match lease::hold(
            self.cx.store.clone(),
            Subject::Work(env.to_string()),
            &self.replica,
            "reconciling",
            WORK_LEASE,
        )
        .await
        {
            Ok(h) => h,
            Err(LockError::Held(l)) => {
                tracing::info!(environment = env, holder = %l.owner, "another replica works on it");
                return Ok(());
            }
            Err(e) => return Err(e.to_string()),
        };
        let result = self.reconcile_env_locked(env, head, &held.signal()).await;
        held.release(self.cx.store.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        result
    }

    async fn reconcile_env_locked(
        &self,
        env: &str,
        head: &str,
        lease: &LossSignal,
    ) -> Result<(), String> {
        let deployed = self
            .cx
            .store
            .deployed(env)
            .await
            .map_err(|e| e.to_string())?
            .map(|d| d.commit);
        if deployed.as_deref() == Some(head) {
            return Ok(());
        }
        let commits = self
            .commits_to_apply(env, deployed.as_deref(), head)
            .await?;
        for commit in commits {
            if lease.is_lost() {
                // Another replica may have taken the environment over: leave the rest to it.
                tracing::warn!(environment = env, commit = %commit, "the work lease was lost: stopping before this commit");
                return Err(format!(
                    "the work on `{env}` stopped before commit {commit}: its lease was lost"
                ));
            }
            if self
                .state()
                .reported_stuck
                .contains(&(env.to_string(), commit.clone()))
            {
                return Ok(());
            }
            let observer: Arc<dyn Observer> = Arc::new(LogObserver {
                environment: env.to_string(),
            });
            let options = self.apply_options();
            let started = Instant::now();
            let done = flow::apply_environment(
                &self.cx,
                env,
                &ApplyTarget::Commit(commit.clone()),
                &options,
                observer,
                true,
            )
            .await
            .map_err(|e| self.github_error(e))?;
            let ok = matches!(&done.applied, Applied::Done(r) if r.succeeded());
            self.metrics.run(
                "apply",
                if ok { "ok" } else { "failed" },
                started.elapsed().as_secs_f64(),
            );
            if ok {
                self.metrics.applied(env, now());
                continue;
            }
            if let (Applied::Stopped { message, .. }, None) = (&done.applied, done.pull_request) {
                tracing::warn!(environment = env, commit = %commit, reason = %message, "not applied: no pull request brought the commit and no plan of it is recorded");
            }
            // Said on GitHub once; tried again when the branch moves or the agent restarts.
            self.state()
                .reported_stuck
                .insert((env.to_string(), commit.clone()));
            return Ok(());
        }
        Ok(())
    }

    /// The commits of the default branch after `deployed`, up to `head`, oldest first, that
    /// change `env` (first parents only: each merge once). Only `head` when nothing was
    /// deployed, or when `deployed` is not in the branch's history.
    async fn commits_to_apply(
        &self,
        env: &str,
        deployed: Option<&str>,
        head: &str,
    ) -> Result<Vec<String>, String> {
        let repo = self.cx.repo.clone();
        let env = env.to_string();
        let deployed = deployed.map(str::to_string);
        let head = head.to_string();
        tokio::task::spawn_blocking(move || repo.commits_changing(&env, deployed.as_deref(), &head))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// A `/formwork …` comment.
    async fn command(
        self: &Arc<Self>,
        c: &IssueCommentEvent,
        parsed: Parsed,
    ) -> Result<(), String> {
        let gh = &self.cx.gh;
        let reply = |text: String| async move {
            gh.create_comment(c.pull_request, &text)
                .await
                .map(|_| ())
                .map_err(|e| self.github_error(e))
        };
        let react = |content: &'static str| async move {
            if let Err(e) = gh.react(c.comment_id, content).await {
                tracing::warn!(error = %e, "could not react to the comment");
            }
        };
        let command = match parsed {
            Parsed::NotACommand => return Ok(()),
            Parsed::Invalid { message } => {
                react("confused").await;
                return reply(format!("{message}\n\n{}", commands::help_markdown())).await;
            }
            Parsed::Command(Command::Help) => return reply(commands::help_markdown()).await,
            Parsed::Command(command) => command,
        };
        let permission = gh
            .permission(&c.author)
            .await
            .map_err(|e| self.github_error(e))?;
        if !permission.may_deploy() {
            react("confused").await;
            return reply(commands::refusal_markdown(
                &c.author,
                command.name(),
                permission.as_str(),
            ))
            .await;
        }
        react("eyes").await;
        match command {
            Command::Help => Ok(()),
            Command::Plan {
                environments,
                stacks,
            } => {
                self.enqueue(Job::PlanPull {
                    number: c.pull_request,
                    head: None,
                    offline: false,
                    selection: PlanSelection {
                        environments,
                        stacks,
                        ..PlanSelection::default()
                    },
                    why: format!("/formwork plan by @{}", c.author),
                });
                Ok(())
            }
            Command::Apply { environments } => {
                if !self.config.github.apply_before_merge {
                    return reply(commands::apply_before_merge_off_markdown(
                        "`github.apply_before_merge: true` in the agent's settings",
                    ))
                    .await;
                }
                let envs = if environments.is_empty() {
                    self.affected_by_pull(c.pull_request).await?
                } else {
                    environments
                };
                for env in envs {
                    let lock = self.env_lock(&env);
                    let _g = lock.lock().await;
                    let options = self.apply_options();
                    flow::apply_environment(
                        &self.cx,
                        &env,
                        &ApplyTarget::OpenPullRequest(c.pull_request),
                        &options,
                        Arc::new(LogObserver {
                            environment: env.clone(),
                        }),
                        false,
                    )
                    .await
                    .map_err(|e| self.github_error(e))?;
                }
                Ok(())
            }
            Command::Continue { gate, environments } => {
                let with_gate: Vec<String> = self
                    .environments_at_head()
                    .await?
                    .into_iter()
                    .filter(|e| e.gates.iter().any(|g| g.name == gate))
                    .map(|e| e.name)
                    .filter(|e| environments.is_empty() || environments.contains(e))
                    .collect();
                if with_gate.is_empty() {
                    return reply(format!(
                        "No environment{} has a gate `{gate}` at the head of `{}`.",
                        if environments.is_empty() {
                            String::new()
                        } else {
                            format!(" of {}", environments.join(", "))
                        },
                        self.config.repository.default_branch
                    ))
                    .await;
                }
                for env in &with_gate {
                    self.cx
                        .store
                        .record_event(&crate::store::Event {
                            environment: env.clone(),
                            at: now(),
                            kind: crate::apply::GATE_EVENT.to_string(),
                            actor: format!("@{} (GitHub)", c.author),
                            detail: gate.clone(),
                        })
                        .await
                        .map_err(|e| e.to_string())?;
                    self.state().reported_stuck.retain(|(e, _)| e != env);
                }
                self.enqueue(Job::Reconcile {
                    why: format!("gate `{gate}` passed by @{}", c.author),
                });
                reply(format!(
                    "Gate `{gate}` passed by @{} for {}: applying goes on.",
                    c.author,
                    with_gate
                        .iter()
                        .map(|e| format!("`{e}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .await
            }
            Command::Unlock { environments } => {
                let envs: Vec<String> = if environments.is_empty() {
                    self.environments_at_head()
                        .await?
                        .into_iter()
                        .map(|e| e.name)
                        .collect()
                } else {
                    environments
                };
                let mut lines = Vec::new();
                for env in envs {
                    let removed = lease::force_release(
                        self.cx.store.as_ref(),
                        &Subject::Claim(env.clone()),
                        &format!("@{} (GitHub)", c.author),
                        &format!("/formwork unlock on pull request #{}", c.pull_request),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                    let was_locked = removed.is_some();
                    lines.push(match removed {
                        Some(l) => format!("- `{env}`: unlocked (was held by {})", l.owner),
                        None => format!("- `{env}`: was not locked"),
                    });
                    if was_locked {
                        let waiting = self.state().waiting.remove(&env).unwrap_or_default();
                        for n in waiting {
                            self.enqueue(Job::PlanPull {
                                number: n,
                                head: None,
                                offline: false,
                                selection: PlanSelection::default(),
                                why: format!("`{env}` was unlocked"),
                            });
                        }
                    }
                }
                reply(format!(
                    "Unlocked by @{}:\n\n{}",
                    c.author,
                    lines.join("\n")
                ))
                .await
            }
        }
    }

    /// Polls the repository: a moved default branch is reconciled, a pull request whose head
    /// moved is planned (when it is open). The first poll only learns where things are (what
    /// changed before it is planned by [`Agent::plan_open_pulls_without_a_plan`]).
    pub async fn poll(self: &Arc<Self>) -> Result<(), String> {
        let heads = self.fetch().await?;
        let previous = self.state().last_heads.replace(heads.clone());
        let Some(previous) = previous else {
            return Ok(());
        };
        if heads.default_branch != previous.default_branch {
            self.enqueue(Job::Reconcile {
                why: "the poll found the default branch moved".into(),
            });
        }
        for (n, head) in &heads.pulls {
            if previous.pulls.get(n) == Some(head) {
                continue;
            }
            match self.cx.gh.pull_request(*n).await {
                Ok(p) if p.state == "open" => self.enqueue(Job::PlanPull {
                    number: *n,
                    head: Some(head.clone()),
                    offline: !self.trusted_head(&p),
                    selection: PlanSelection::default(),
                    why: "the poll found a new head".into(),
                }),
                Ok(_) => {}
                Err(e) => {
                    self.github_error(e);
                }
            }
        }
        Ok(())
    }

    /// Plans every open pull request whose head has no plan yet: those opened or pushed to
    /// while no agent ran (run once the first fetch has succeeded). A head has a plan when the
    /// state store holds one of it for every environment it affects, or when the pull request's
    /// plan comment already names it (plans of forks, made offline, and plans that failed are
    /// not recorded). Returns how many were queued.
    pub async fn plan_open_pulls_without_a_plan(self: &Arc<Self>) -> Result<usize, String> {
        let pulls = self
            .cx
            .gh
            .open_pull_requests()
            .await
            .map_err(|e| self.github_error(e))?;
        let mut queued = 0;
        for p in pulls {
            let under_way = self
                .state()
                .plans
                .get(&p.number)
                .is_some_and(|h| !h.is_finished());
            if under_way || self.head_has_plan(&p).await {
                continue;
            }
            self.enqueue(Job::PlanPull {
                number: p.number,
                head: Some(p.head.sha.clone()),
                offline: !self.trusted_head(&p),
                selection: PlanSelection::default(),
                why: "open at start, with no plan of its head".into(),
            });
            queued += 1;
        }
        Ok(queued)
    }

    /// Whether pull request `p`'s head has been planned (see
    /// [`Agent::plan_open_pulls_without_a_plan`]). When in doubt (a store or GitHub error), no.
    async fn head_has_plan(&self, p: &crate::github::client::PullRequest) -> bool {
        let head = p.head.sha.as_str();
        if let Ok(envs) = self.affected_by(p.clone()).await
            && !envs.is_empty()
        {
            let mut all = true;
            for env in &envs {
                match self.cx.store.latest_plan_of_commit(env, head).await {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        all = false;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(pull_request = p.number, error = %e, "could not read the recorded plans");
                        all = false;
                        break;
                    }
                }
            }
            if all {
                return true;
            }
        }
        match self.cx.gh.comments(p.number).await {
            Ok(comments) => comments.iter().any(|c| {
                c.body
                    .as_deref()
                    .is_some_and(|b| plan_comment_names(b, head))
            }),
            Err(e) => {
                tracing::warn!(pull_request = p.number, error = %self.github_error(e), "could not read the pull request's comments");
                false
            }
        }
    }

    /// Whether a pull request's head may be planned with AWS: from the repository itself or
    /// from a trusted owner's fork.
    pub fn trusted_head(&self, p: &crate::github::client::PullRequest) -> bool {
        let Some(full) = p.head.repo.as_ref().map(|r| r.full_name.as_str()) else {
            return false;
        };
        if full.eq_ignore_ascii_case(&self.config.github.repository) {
            return true;
        }
        self.trusted_fork_owner(full.split('/').next().unwrap_or_default())
    }

    /// How this agent applies, from its config.
    fn apply_options(&self) -> ApplyOptions {
        ApplyOptions {
            allow_delete: self.config.apply.allow_delete,
            replan: self.config.apply.replan,
            stack_timeout: Duration::from_secs(self.config.apply.stack_timeout_minutes * 60),
            parallel: self.config.apply.parallel_stacks,
            owner: self.replica.clone(),
            ..ApplyOptions::default()
        }
    }

    /// Whether a fork's owner is trusted with AWS.
    pub fn trusted_fork_owner(&self, owner: &str) -> bool {
        self.config
            .github
            .trusted_fork_owners
            .iter()
            .any(|o| o.eq_ignore_ascii_case(owner))
    }

    /// Stops taking jobs, cancels plans, and waits (up to `grace`) for the rest, so that
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

/// Whether `body` is a formwork plan comment (the first part of its sticky run) of commit
/// `head`: its title, `## formwork plan for …`, names the commit by its first seven characters
/// or more, whether the plan succeeded or failed.
fn plan_comment_names(body: &str, head: &str) -> bool {
    let Some(short) = head.get(..7) else {
        return false;
    };
    if crate::github::sticky::kind_of(body) != Some(crate::github::sticky::Kind::Plan) {
        return false;
    }
    let at = format!(" at `{short}");
    body.lines()
        .any(|l| l.starts_with("## formwork plan for ") && l.contains(&at))
}

/// Gives the heap memory that finished work freed back to the operating system, once no job
/// runs. glibc's allocator keeps freed pages in its per-thread arenas, so without this an idle
/// agent would stay as large as its biggest job (reading every environment of a large config
/// repository) made it.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused pages of the allocator's own heap to the system;
    // it takes no pointers and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Apply progress into the logs.
struct LogObserver {
    environment: String,
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
        tracing::warn!(environment = %self.environment, question, "not confirmed: the agent never confirms destruction the review did not show");
        false
    }
}

#[cfg(test)]
mod tests {
    use super::plan_comment_names;

    #[test]
    fn a_plan_comment_names_the_head_it_planned() {
        let head = "0123456789abcdef0123456789abcdef01234567";
        let marker = "<!-- formwork:plan scope=* part=1 -->";
        let planned = format!("{marker}\n## formwork plan for `#7` at `0123456`\n\nNo stacks.");
        assert!(plan_comment_names(&planned, head));
        let failed = format!(
            "{marker}\n> [!NOTE]\n> a note\n\n## formwork plan for `#7` at `0123456789ab`: failed\n"
        );
        assert!(plan_comment_names(&failed, head));
        // Another head, a note without a plan, a quote, an apply comment: no.
        let other = format!("{marker}\n## formwork plan for `#7` at `fedcba9`\n");
        assert!(!plan_comment_names(&other, head));
        let waiting = format!("{marker}\n## formwork plan\n\n> [!NOTE]\n> locked by #3");
        assert!(!plan_comment_names(&waiting, head));
        assert!(!plan_comment_names(&format!("> {planned}"), head));
        let apply = planned.replace("formwork:plan", "formwork:apply");
        assert!(!plan_comment_names(&apply, head));
    }
}
