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
//! [`service`] wraps this for its callers: which plan, the desired state at the commit, and a
//! [`service::Reporter`] told how it went (the terminal, GitHub).

pub mod deployed;
pub mod service;
mod wait;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared, join_all};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::aws::cfn::StackEvent;
use crate::aws::{Aws, AwsError, Session};
use crate::desired::DesiredEnvironment;
pub use deployed::Baseline;

use crate::lease::{self, LossSignal, Subject};
use crate::plan::live::{self, Planner, Quiet};
use crate::plan::model::{Action, EnvironmentPlan, Plan, Replacement, ResourceAction, UnitPlan};
use crate::secrets::Masker;
use crate::store::{
    Deployed, LockError, Run, RunStatus, Store, StoreError, UnitResult, UnitState, now,
};

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

/// What one stack came to.
#[derive(Clone, Debug)]
struct Outcome {
    state: UnitState,
    message: Option<String>,
    /// For a failed stack, itself; for a skipped one, the failed stack it waited on.
    failed_stack: Option<String>,
    /// For a stack held back by a gate (or waiting for one that is), the gate.
    gate: Option<String>,
}

impl Outcome {
    fn new(state: UnitState, message: Option<String>) -> Outcome {
        Outcome {
            state,
            message,
            failed_stack: None,
            gate: None,
        }
    }
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

    let reason = format!("apply of plan {}", req.plan.id);
    let held = lease::hold(
        store.clone(),
        Subject::Apply(req.environment.clone()),
        &options.owner,
        &reason,
        options.lease,
    )
    .await?;
    let result = apply_locked(
        &session,
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

/// A client request token for an operation on a stack in a run: CloudFormation's limit is 128
/// characters of letters, digits and hyphens.
fn request_token(run_id: &str, stack: &str) -> String {
    let raw = format!("formwork-{run_id}-{stack}");
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    clean.chars().take(128).collect()
}

#[allow(clippy::too_many_arguments)]
async fn apply_locked<S: Store + 'static>(
    session: &Session,
    store: Arc<S>,
    req: &Request,
    env_plan: EnvironmentPlan,
    options: &Options,
    observer: Arc<dyn Observer>,
    masker: Arc<Masker>,
    lost: LossSignal,
) -> Result<Report, ApplyError> {
    let env = &req.environment;
    let EnvironmentPlan {
        units, left_out, ..
    } = env_plan;
    let left_out = &left_out;
    // An earlier run of this environment whose process died: finish its record first.
    let mut recovered = Vec::new();
    let mut done_before: HashMap<String, UnitResult> = HashMap::new();
    for run in store.unfinished_runs(env).await? {
        recover(session, store.as_ref(), &run, options, observer.as_ref()).await?;
        recovered.push(run.id.clone());
    }
    // Stacks an earlier run of this same plan already applied are not applied again.
    for run in store.runs(Some(env), 20).await? {
        if run.plan_id.as_deref() != Some(req.plan.id.as_str()) {
            continue;
        }
        if let Some((_, results)) = store.run(&run.id).await? {
            for u in results {
                if matches!(u.state, UnitState::Applied | UnitState::Deleted) {
                    done_before.entry(u.stack.clone()).or_insert(u);
                }
            }
        }
    }

    // Gates passed since the plan was made (`formwork continue`).
    let plan_ms = crate::store::plan_created_ms(&req.plan)?;
    let passed: BTreeSet<String> = store
        .events(Some(env), 500)
        .await?
        .into_iter()
        .filter(|e| e.kind == GATE_EVENT && e.at >= plan_ms)
        .map(|e| e.detail)
        .collect();
    let closed_gates: HashMap<String, crate::desired::Gate> = req
        .desired
        .gates
        .iter()
        .filter(|g| !passed.contains(&g.name))
        .flat_map(|g| g.before.iter().map(move |b| (b.clone(), g.clone())))
        .collect();

    let allow_delete = options.allow_delete || req.desired.allow_delete;
    let stale = check(session, req, &units, &done_before, allow_delete).await?;
    if !stale.is_empty() && !options.replan {
        return Err(ApplyError::Refused {
            plan: req.plan.id.clone(),
            reasons: stale.into_values().collect(),
        });
    }

    let run = Run {
        id: format!("r{}", live::plan_id(&req.commit, &live::now_rfc3339())),
        environment: env.clone(),
        plan_id: Some(req.plan.id.clone()),
        commit: req.commit.clone(),
        owner: options.owner.clone(),
        started_at: now(),
        finished_at: None,
        status: RunStatus::Running,
    };
    store.start_run(&run).await?;
    let mut written = HashMap::new();
    for u in &units {
        let waiting = UnitResult {
            run_id: run.id.clone(),
            stack: u.stack.clone(),
            stack_name: u.stack_name.clone(),
            state: UnitState::Waiting,
            change_set_id: u.change_set.as_ref().map(|c| c.id.clone()),
            client_request_token: None,
            replanned: false,
            message: None,
            started_at: None,
            finished_at: None,
        };
        store.put_unit(&waiting).await?;
        written.insert(u.stack.clone(), waiting);
    }

    let planner = Arc::new(
        Planner::new(
            req.desired.clone(),
            session.clone(),
            &req.desired
                .units
                .values()
                .flat_map(crate::plan::inputs::ssm_names)
                .collect::<Vec<_>>(),
            masker.clone(),
            live::Options {
                origin: format!("apply-{}", run.id),
                ..live::Options::default()
            },
            req.plan.id.clone(),
            req.commit.clone(),
            Arc::new(Quiet),
        )
        .await?,
    );
    let ctx = Arc::new(RunContext {
        session: session.clone(),
        store: store.clone(),
        run: run.clone(),
        planner,
        observer: observer.clone(),
        options: options.clone(),
        stale: stale.keys().cloned().collect(),
        done_before,
        slots: Arc::new(Semaphore::new(options.parallel.max(1))),
        lost,
        replanned: std::sync::Mutex::new(Vec::new()),
        written: std::sync::Mutex::new(written),
        masker,
    });

    // Creates and updates, as a graph.
    let (changes, removals): (Vec<UnitPlan>, Vec<UnitPlan>) =
        units.into_iter().partition(|u| u.action != Action::Remove);
    let in_plan: BTreeSet<String> = changes.iter().map(|u| u.stack.clone()).collect();
    let mut futures: HashMap<String, Shared<BoxFuture<'static, Outcome>>> = HashMap::new();
    for u in order(&changes) {
        let deps: Vec<(String, Shared<BoxFuture<'static, Outcome>>)> = u
            .depends_on
            .iter()
            .filter(|d| in_plan.contains(*d))
            .filter_map(|d| futures.get(d).map(|f| (d.clone(), f.clone())))
            .collect();
        let ctx = ctx.clone();
        let unit = u.clone();
        let gate = closed_gates.get(&u.stack).cloned();
        let env_name = env.clone();
        let fut = async move {
            let mut blocking = Vec::new();
            for (name, f) in deps {
                let o = f.await;
                if !matches!(o.state, UnitState::Applied | UnitState::NoChange) {
                    blocking.push((name, o));
                }
            }
            let held = blocking.iter().find(|(_, o)| o.gate.is_some());
            let changes = unit.action != Action::NoChange && !ctx.done_before.contains_key(&unit.stack);
            let outcome = if let (Some(g), true, true) = (&gate, blocking.is_empty(), changes) {
                Outcome {
                    state: UnitState::Waiting,
                    message: Some(format!(
                        "waits at gate `{}`: {} (when that is done: formwork continue {} --env {env_name})",
                        g.name, g.message, g.name
                    )),
                    failed_stack: None,
                    gate: Some(g.name.clone()),
                }
            } else if let (Some((name, o)), None) = (held, blocking.iter().find(|(_, o)| o.gate.is_none())) {
                let g = o.gate.clone().unwrap_or_default();
                Outcome {
                    state: UnitState::Waiting,
                    message: Some(format!("waits for `{name}`, which waits at gate `{g}`")),
                    failed_stack: None,
                    gate: Some(g),
                }
            } else if let Some((name, o)) = blocking.iter().find(|(_, o)| o.gate.is_none()) {
                let root = o.failed_stack.clone().unwrap_or_else(|| name.clone());
                Outcome {
                    state: UnitState::Skipped,
                    message: Some(if &root == name {
                        format!("needs `{name}`, which failed")
                    } else {
                        format!("needs `{name}`, skipped because `{root}` failed")
                    }),
                    failed_stack: Some(root),
                    gate: None,
                }
            } else {
                let mut o = ctx.run_unit(&unit).await;
                if o.state == UnitState::Failed {
                    o.failed_stack = Some(unit.stack.clone());
                }
                o
            };
            ctx.record(&unit, &outcome).await;
            outcome
        }
        .boxed()
        .shared();
        futures.insert(u.stack.clone(), fut);
    }
    let outcomes: Vec<Outcome> = join_all(futures.values().cloned()).await;
    let changes_ok = outcomes
        .iter()
        .all(|o| matches!(o.state, UnitState::Applied | UnitState::NoChange));
    let at_gate: BTreeSet<String> = outcomes.iter().filter_map(|o| o.gate.clone()).collect();
    let failed = outcomes
        .iter()
        .any(|o| matches!(o.state, UnitState::Failed | UnitState::Skipped));

    // Removals: last, and only when everything else went well; dependants first.
    let mut removal_ok = true;
    for u in deletion_order(&removals) {
        let outcome = if !changes_ok && !failed && !at_gate.is_empty() {
            Outcome::new(
                UnitState::Waiting,
                Some("not deleted yet: the apply stopped at a gate".into()),
            )
        } else if !changes_ok {
            Outcome::new(
                UnitState::Skipped,
                Some("not deleted: other stacks of this apply failed".into()),
            )
        } else if !removal_ok {
            Outcome::new(
                UnitState::Skipped,
                Some("not deleted: an earlier deletion failed".into()),
            )
        } else {
            ctx.delete_unit(&u).await
        };
        removal_ok &= matches!(
            outcome.state,
            UnitState::Deleted | UnitState::NoChange | UnitState::Waiting
        );
        ctx.record(&u, &outcome).await;
    }

    let succeeded = changes_ok && removal_ok;
    let (_, results) = store
        .run(&run.id)
        .await?
        .ok_or_else(|| StoreError::Data(format!("run {} vanished from the store", run.id)))?;
    let standing = deployed::record(
        store.as_ref(),
        &req.desired,
        &req.commit,
        (&run.id, &results),
        left_out,
        req.baseline.as_ref(),
    )
    .await?;
    if succeeded && !standing.complete {
        tracing::info!(environment = %env, commit = %req.commit, behind = ?standing.behind, "the environment stays at its deployed commit: some of its stacks are not at this one");
    }
    if succeeded && standing.complete {
        let parameter = deployed_commit_parameter(env);
        if let Err(e) = session
            .ssm
            .put(
                &parameter,
                &req.commit,
                &format!(
                    "Commit applied by formwork run {} (plan {})",
                    run.id, req.plan.id
                ),
            )
            .await
        {
            tracing::warn!(error = %e, "could not record the deployed commit in SSM");
        }
        store
            .set_deployed(&Deployed {
                environment: env.clone(),
                commit: req.commit.clone(),
                plan_id: Some(req.plan.id.clone()),
                run_id: run.id.clone(),
                at: now(),
            })
            .await?;
    }
    let status = if succeeded {
        RunStatus::Succeeded
    } else if !failed && removal_ok && !at_gate.is_empty() {
        RunStatus::Waiting
    } else {
        RunStatus::Failed
    };
    store.finish_run(&run.id, status, now()).await?;
    let (run, units) = store
        .run(&run.id)
        .await?
        .ok_or_else(|| StoreError::Data(format!("run {} vanished from the store", run.id)))?;
    let replanned = ctx
        .replanned
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(Report {
        run,
        units,
        replanned,
        recovered,
        behind: standing.behind,
    })
}

/// The units in an order where every unit comes after the units it depends on.
fn order(units: &[UnitPlan]) -> Vec<UnitPlan> {
    let names: Vec<String> = units.iter().map(|u| u.stack.clone()).collect();
    let mut g = crate::graph::Graph::new(names);
    for u in units {
        for d in &u.depends_on {
            g.add_dependency(&u.stack, d);
        }
    }
    let mut out: Vec<UnitPlan> = g
        .waves()
        .into_iter()
        .flatten()
        .map(|i| units[i].clone())
        .collect();
    // Units on a cycle (the config forbids them) come last, in plan order.
    for u in units {
        if !out.iter().any(|o| o.stack == u.stack) {
            out.push(u.clone());
        }
    }
    out
}

/// Removed units in deletion order: a stack after every removed stack that depended on it.
fn deletion_order(units: &[UnitPlan]) -> Vec<UnitPlan> {
    let mut out = order(units);
    out.reverse();
    out
}

/// Checks each unit of the plan against what is deployed and configured now; returns the
/// units that no longer match, with why.
async fn check(
    session: &Session,
    req: &Request,
    units: &[UnitPlan],
    done_before: &HashMap<String, UnitResult>,
    allow_delete: bool,
) -> Result<BTreeMap<String, String>, ApplyError> {
    let mut problems = BTreeMap::new();
    let mut refusals = Vec::new();
    for u in units {
        if done_before.contains_key(&u.stack) {
            continue;
        }
        match u.action {
            Action::Blocked | Action::Failed => refusals.push(format!(
                "{}: the plan could not plan it ({}); plan again",
                u.stack,
                u.message.as_deref().unwrap_or("no reason recorded")
            )),
            Action::Remove if !allow_delete => refusals.push(format!(
                "{}: the plan deletes stack {}, and deleting is not allowed; pass --allow-delete or set `allow_delete: true` in the environment",
                u.stack, u.stack_name
            )),
            _ => {}
        }
        if u.action == Action::Remove {
            continue;
        }
        let Some(now_unit) = req.desired.units.get(&u.stack) else {
            refusals.push(format!(
                "{}: the stack is no longer in the config of environment `{}`",
                u.stack, req.environment
            ));
            continue;
        };
        if now_unit.config_hash() != u.config_hash {
            problems.insert(
                u.stack.clone(),
                format!("{}: its config changed since the plan", u.stack),
            );
            continue;
        }
        let stack = session.cfn.describe_stack(&u.stack_name).await?;
        let last_updated = stack.as_ref().and_then(|s| s.last_updated.clone());
        // A new stack's change set made the stack (REVIEW_IN_PROGRESS); it has not changed when
        // it is still in review.
        let unchanged = match (&u.stack_status, &stack) {
            (None, None) => true,
            (None, Some(s)) => s.status == "REVIEW_IN_PROGRESS",
            (Some(_), Some(_)) => last_updated == u.last_updated,
            (Some(_), None) => false,
        };
        if !unchanged {
            problems.insert(
                u.stack.clone(),
                format!(
                    "{}: stack {} changed since the plan (then {}, now {})",
                    u.stack,
                    u.stack_name,
                    u.last_updated.as_deref().unwrap_or("absent"),
                    stack
                        .as_ref()
                        .map(|s| format!(
                            "{} at {}",
                            s.status,
                            s.last_updated.as_deref().unwrap_or("?")
                        ))
                        .unwrap_or_else(|| "absent".into())
                ),
            );
            continue;
        }
        if let (Some(then), Some(s)) = (&u.last_event, &stack) {
            let newest = session.cfn.newest_event_id(&s.stack_id).await?;
            if newest.as_deref() != Some(then.as_str()) {
                problems.insert(
                    u.stack.clone(),
                    format!(
                        "{}: stack {} had operations since the plan",
                        u.stack, u.stack_name
                    ),
                );
                continue;
            }
        }
        if let Some(cs) = &u.change_set {
            let usable = match session.cfn.describe_change_set(&cs.id).await {
                Ok(info) => {
                    info.status == "CREATE_COMPLETE"
                        && info.execution_status.as_deref() == Some("AVAILABLE")
                }
                Err(_) => false,
            };
            if !usable {
                problems.insert(
                    u.stack.clone(),
                    format!(
                        "{}: change set {} is no longer available to execute",
                        u.stack, cs.name
                    ),
                );
            }
        }
    }
    if !refusals.is_empty() {
        refusals.extend(problems.into_values());
        return Err(ApplyError::Refused {
            plan: req.plan.id.clone(),
            reasons: refusals,
        });
    }
    Ok(problems)
}

/// Finishes the record of a run whose process died: operations still in flight are waited for
/// (never started again) and recorded; stacks it had not started are marked skipped.
async fn recover<S: Store>(
    session: &Session,
    store: &S,
    run: &Run,
    options: &Options,
    observer: &dyn Observer,
) -> Result<(), ApplyError> {
    let Some((_, units)) = store.run(&run.id).await? else {
        return Ok(());
    };
    let mut ok = true;
    for mut u in units {
        match u.state {
            UnitState::Executing => {
                let token = u.client_request_token.clone().unwrap_or_default();
                let ended = wait::wait_for_stack(
                    &session.cfn,
                    &u.stack_name,
                    &token,
                    options.stack_timeout,
                    &|e| observer.event(&u.stack, e),
                )
                .await?;
                let outcome = ended_outcome(
                    &ended,
                    &u.stack_name,
                    u.message.as_deref() == Some("deleting"),
                );
                ok &= matches!(outcome.state, UnitState::Applied | UnitState::Deleted);
                u.state = outcome.state;
                u.message = Some(format!(
                    "finished after an interruption: {}",
                    outcome
                        .message
                        .unwrap_or_else(|| outcome.state.as_str().into())
                ));
                u.finished_at = Some(now());
                observer.unit(&u.stack, u.state, u.message.as_deref());
                store.put_unit(&u).await?;
            }
            UnitState::Waiting => {
                ok = false;
                u.state = UnitState::Skipped;
                u.message = Some("not started: the run was interrupted".into());
                u.finished_at = Some(now());
                store.put_unit(&u).await?;
            }
            s => ok &= !matches!(s, UnitState::Failed | UnitState::Skipped),
        }
    }
    let status = if ok {
        RunStatus::Succeeded
    } else {
        RunStatus::Failed
    };
    store.finish_run(&run.id, status, now()).await?;
    Ok(())
}

/// What a finished stack operation means.
fn ended_outcome(ended: &wait::Ended, stack_name: &str, deleting: bool) -> Outcome {
    let cause = ended
        .root_cause
        .clone()
        .map(|c| format!("; first failure: {c}"))
        .unwrap_or_default();
    if ended.timed_out {
        return Outcome::new(
            UnitState::Failed,
            Some(format!(
                "timed out waiting; the stack is still {} (the operation goes on){cause}",
                ended.status.as_deref().unwrap_or("unknown")
            )),
        );
    }
    let Some(status) = ended.status.as_deref() else {
        return if deleting {
            Outcome::new(UnitState::Deleted, None)
        } else {
            Outcome::new(UnitState::Failed, Some(format!("the stack is gone{cause}")))
        };
    };
    match status {
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" if !deleting => {
            Outcome::new(UnitState::Applied, None)
        }
        "DELETE_COMPLETE" if deleting => Outcome::new(UnitState::Deleted, None),
        "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" => Outcome::new(
            UnitState::Failed,
            Some(format!(
                "creating the stack failed and it rolled back ({status}){cause}; it must be deleted before it can be created again: aws cloudformation delete-stack --stack-name {stack_name}, then plan again"
            )),
        ),
        "UPDATE_ROLLBACK_COMPLETE" => Outcome::new(
            UnitState::Failed,
            Some(format!("the update failed and was rolled back{cause}")),
        ),
        "UPDATE_ROLLBACK_FAILED" => Outcome::new(
            UnitState::Failed,
            Some(format!(
                "the update failed and so did its rollback (UPDATE_ROLLBACK_FAILED){cause}; fix the cause, then aws cloudformation continue-update-rollback --stack-name {stack_name} (skipping resources that cannot roll back with --resources-to-skip)"
            )),
        ),
        other => Outcome::new(
            UnitState::Failed,
            Some(format!("the stack ended in {other}{cause}")),
        ),
    }
}

/// What every stack of one run shares.
struct RunContext<S: Store> {
    session: Session,
    store: Arc<S>,
    run: Run,
    planner: Arc<Planner>,
    observer: Arc<dyn Observer>,
    options: Options,
    /// Units whose reviewed change set no longer matches (re-planned: `options.replan`).
    stale: BTreeSet<String>,
    /// Units an earlier run of the same plan applied.
    done_before: HashMap<String, UnitResult>,
    slots: Arc<Semaphore>,
    lost: LossSignal,
    replanned: std::sync::Mutex<Vec<UnitPlan>>,
    /// The record of each unit as last written in this run (what `record` builds on).
    written: std::sync::Mutex<HashMap<String, UnitResult>>,
    masker: Arc<Masker>,
}

impl<S: Store> RunContext<S> {
    fn timeout(&self, stack: &str) -> Duration {
        self.planner
            .environment()
            .units
            .get(stack)
            .and_then(|u| u.timeout_minutes)
            .map(|m| Duration::from_secs(m * 60))
            .unwrap_or(self.options.stack_timeout)
    }

    async fn put(&self, u: &UnitPlan, state: UnitState, f: impl FnOnce(&mut UnitResult)) {
        let mut r = UnitResult {
            run_id: self.run.id.clone(),
            stack: u.stack.clone(),
            stack_name: u.stack_name.clone(),
            state,
            change_set_id: u.change_set.as_ref().map(|c| c.id.clone()),
            client_request_token: None,
            replanned: false,
            message: None,
            started_at: Some(now()),
            finished_at: None,
        };
        f(&mut r);
        self.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(r.stack.clone(), r.clone());
        if let Err(e) = self.store.put_unit(&r).await {
            tracing::error!(stack = %u.stack, error = %e, "could not record the stack's state");
        }
    }

    /// Records how a unit ended.
    async fn record(&self, u: &UnitPlan, o: &Outcome) {
        let message = o.message.as_deref().map(|m| self.masker.scrub(m));
        self.observer.unit(&u.stack, o.state, message.as_deref());
        let replanned = self
            .replanned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|p| p.stack == u.stack)
            .cloned();
        let prior = self
            .written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&u.stack)
            .cloned();
        self.put(u, o.state, |r| {
            if let Some(p) = prior {
                r.client_request_token = p.client_request_token;
                r.started_at = p.started_at;
                r.change_set_id = p.change_set_id;
            }
            if let Some(p) = replanned {
                r.replanned = true;
                r.change_set_id = p.change_set.map(|c| c.id);
            }
            r.message = message;
            r.finished_at = Some(now());
        })
        .await;
    }

    /// Applies one create or update.
    async fn run_unit(&self, u: &UnitPlan) -> Outcome {
        if let Some(prev) = self.done_before.get(&u.stack) {
            return Outcome::new(
                UnitState::Applied,
                Some(format!("applied by run {} of this plan", prev.run_id)),
            );
        }
        if self.lost.is_lost() {
            return Outcome::new(
                UnitState::Skipped,
                Some("not started: the environment's lock was lost".into()),
            );
        }
        let needs_fresh =
            u.action == Action::Pending || !u.inputs.is_empty() || self.stale.contains(&u.stack);
        let change_set = if needs_fresh {
            match self.replan(u).await {
                Ok(Some(cs)) => cs,
                Ok(None) => {
                    return Outcome::new(
                        UnitState::NoChange,
                        (!u.inputs.is_empty() || u.action == Action::Pending)
                            .then(|| "no changes once its inputs were known".to_string()),
                    );
                }
                Err(message) => {
                    return Outcome::new(UnitState::Failed, Some(message));
                }
            }
        } else {
            match (&u.action, &u.change_set) {
                (Action::NoChange, _) => {
                    return Outcome::new(UnitState::NoChange, None);
                }
                (_, Some(cs)) => cs.id.clone(),
                (a, None) => {
                    return Outcome::new(
                        UnitState::Failed,
                        Some(format!("the plan has no change set for it ({a:?})")),
                    );
                }
            }
        };
        self.execute(u, &change_set).await
    }

    /// Makes a fresh change set for a unit now that its inputs are known (or its reviewed one
    /// went stale). `Ok(None)`: nothing to change.
    async fn replan(&self, u: &UnitPlan) -> Result<Option<String>, String> {
        let env = self.planner.environment();
        let Some(unit) = env.units.get(&u.stack) else {
            return Err("the stack is no longer in the config".into());
        };
        // The stacks it takes outputs from may have just changed.
        for d in &unit.dependencies {
            if let Some(src) = env.units.get(&d.stack) {
                self.planner.forget_stack(&src.stack_name);
            }
        }
        self.planner.forget_stack(&u.stack_name);
        let fresh = self
            .planner
            .plan_unit(unit, u.reasons.clone(), &BTreeMap::new())
            .await;
        self.observer.replanned(&fresh);
        let result = match fresh.action {
            Action::NoChange => Ok(None),
            Action::Create | Action::Update => {
                let destructive = new_destruction(u, &fresh);
                if !destructive.is_empty() {
                    let question = format!(
                        "the change set made now for `{}` {} — which the reviewed plan did not show. Go ahead?",
                        u.stack,
                        destructive.join(", ")
                    );
                    if !(self.options.assume_yes || self.observer.confirm(&question)) {
                        return Err(format!(
                            "not applied: the change set made now {}, which the reviewed plan did not show; review a new plan, or confirm with --yes",
                            destructive.join(", ")
                        ));
                    }
                }
                Ok(fresh.change_set.as_ref().map(|c| c.id.clone()))
            }
            Action::Pending => Err(format!(
                "its inputs are still not known: {}",
                fresh.message.clone().unwrap_or_default()
            )),
            _ => Err(fresh
                .message
                .clone()
                .unwrap_or_else(|| "it could not be planned".into())),
        };
        self.replanned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(fresh);
        result
    }

    /// Executes a change set and waits for the stack.
    async fn execute(&self, u: &UnitPlan, change_set: &str) -> Outcome {
        let _slot = self.slots.acquire().await.expect("never closed");
        let token = request_token(&self.run.id, &u.stack);
        // Recorded before it is sent: after a crash, the next run waits for this operation
        // instead of starting another.
        self.put(u, UnitState::Executing, |r| {
            r.change_set_id = Some(change_set.to_string());
            r.client_request_token = Some(token.clone());
        })
        .await;
        self.observer.unit(&u.stack, UnitState::Executing, None);
        if let Err(e) = self
            .session
            .cfn
            .execute_change_set(change_set, &token)
            .await
        {
            return Outcome::new(UnitState::Failed, Some(self.masker.scrub(&e.to_string())));
        }
        self.wait(u, &token, false).await
    }

    async fn wait(&self, u: &UnitPlan, token: &str, deleting: bool) -> Outcome {
        let observer = self.observer.clone();
        let stack = u.stack.clone();
        // The stack the change set belongs to, by its id where known: a name can stand for
        // another stack by the time the operation runs (one deleted and made anew).
        let target = match (&u.change_set, deleting) {
            (Some(c), false) => c.stack_id.as_deref().unwrap_or(&u.stack_name),
            _ => &u.stack_name,
        };
        let ended = wait::wait_for_stack(
            &self.session.cfn,
            target,
            token,
            self.timeout(&u.stack),
            &move |e| observer.event(&stack, e),
        )
        .await;
        self.planner.forget_stack(&u.stack_name);
        match ended {
            Ok(e) => ended_outcome(&e, &u.stack_name, deleting),
            Err(e) => Outcome::new(UnitState::Failed, Some(self.masker.scrub(&e.to_string()))),
        }
    }

    /// Deletes a stack that left the config.
    async fn delete_unit(&self, u: &UnitPlan) -> Outcome {
        if let Some(prev) = self.done_before.get(&u.stack) {
            return Outcome::new(
                UnitState::Deleted,
                Some(format!("deleted by run {} of this plan", prev.run_id)),
            );
        }
        match self.session.cfn.describe_stack(&u.stack_name).await {
            Ok(None) => {
                return Outcome::new(UnitState::NoChange, Some("the stack does not exist".into()));
            }
            Ok(Some(_)) => {}
            Err(e) => {
                return Outcome::new(UnitState::Failed, Some(e.to_string()));
            }
        }
        let _slot = self.slots.acquire().await.expect("never closed");
        let token = request_token(&self.run.id, &u.stack);
        self.put(u, UnitState::Executing, |r| {
            r.client_request_token = Some(token.clone());
            r.change_set_id = None;
            r.message = Some("deleting".into());
        })
        .await;
        self.observer
            .unit(&u.stack, UnitState::Executing, Some("deleting"));
        if let Err(e) = self.session.cfn.delete_stack(&u.stack_name, &token).await {
            return Outcome::new(UnitState::Failed, Some(e.to_string()));
        }
        self.wait(u, &token, true).await
    }
}

/// What a fresh plan of a unit destroys that its reviewed plan did not show: removed resources
/// and replacements.
pub fn new_destruction(reviewed: &UnitPlan, fresh: &UnitPlan) -> Vec<String> {
    let shown: BTreeSet<(String, bool)> = reviewed
        .resources
        .iter()
        .filter_map(|r| match (r.action, r.replacement) {
            (ResourceAction::Remove, _) => Some((r.logical_id.clone(), false)),
            (_, Replacement::True) => Some((r.logical_id.clone(), true)),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for r in &fresh.resources {
        match (r.action, r.replacement) {
            (ResourceAction::Remove, _) if !shown.contains(&(r.logical_id.clone(), false)) => {
                out.push(format!("removes {} ({})", r.logical_id, r.resource_type));
            }
            (ResourceAction::Modify, Replacement::True)
                if !shown.contains(&(r.logical_id.clone(), true)) =>
            {
                out.push(format!("replaces {} ({})", r.logical_id, r.resource_type));
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_cloudformation_safe() {
        let t = request_token("r20261122-010203-abcd", "db_main");
        assert_eq!(t, "formwork-r20261122-010203-abcd-db-main");
        assert!(request_token(&"x".repeat(200), "s").len() <= 128);
    }
}
