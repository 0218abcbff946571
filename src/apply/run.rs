//! One run of an apply, under the environment's lock: finish the record of a run that died,
//! skip what an earlier run of the same plan applied, check every stack, then run the changes
//! as a dependency graph (gates hold what comes after them), the removals last, and record how
//! it ended — each stack's standing, and the environment's deployed commit when every stack is
//! at it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared, join_all};
use tokio::sync::Semaphore;

use super::checks::check;
use super::recover::recover;
use super::stack_ops::{Outcome, RunContext};
use super::{
    ApplyError, GATE_EVENT, Observer, Options, Report, Request, deployed, deployed_commit_parameter,
};
use crate::aws::Session;
use crate::desired::Gate;
use crate::lease::LossSignal;
use crate::plan::live::{self, Planner, Quiet};
use crate::plan::model::{Action, EnvironmentPlan, UnitPlan};
use crate::secrets::Masker;
use crate::store::{Deployed, Run, RunStatus, Store, StoreError, UnitResult, UnitState, now};

type SharedOutcome = Shared<BoxFuture<'static, Outcome>>;

/// Runs the plan of one environment; the caller holds its lock and hears of its loss.
#[allow(clippy::too_many_arguments)]
pub(super) async fn apply_locked<S: Store + 'static>(
    session: &Session,
    remote: crate::plan::remote::RemoteSessions,
    store: Arc<S>,
    req: &Request,
    env_plan: EnvironmentPlan,
    options: &Options,
    observer: Arc<dyn Observer>,
    masker: Arc<Masker>,
    lost: LossSignal,
) -> Result<Report, ApplyError> {
    let EnvironmentPlan {
        units, left_out, ..
    } = env_plan;
    let (recovered, done_before) =
        earlier_runs(session, store.as_ref(), req, options, observer.as_ref()).await?;
    let gates = closed_gates(store.as_ref(), req).await?;
    let allow_delete = options.allow_delete || req.desired.allow_delete;
    let stale = check(session, req, &units, &done_before, allow_delete).await?;
    if !stale.is_empty() && !options.replan {
        return Err(ApplyError::Refused {
            plan: req.plan.id.clone(),
            reasons: stale.into_values().collect(),
        });
    }
    let (run, written) = start_run(store.as_ref(), req, options, &units).await?;
    let planner = Arc::new(
        Planner::new(
            req.desired.clone(),
            session.clone(),
            &crate::plan::inputs::ssm_names_by_region(req.desired.units.values()),
            masker.clone(),
            live::Options {
                origin: format!("apply-{}", run.id),
                ..live::Options::default()
            },
            req.plan.id.clone(),
            req.commit.clone(),
            Arc::new(Quiet),
        )
        .await?
        .with_remote(remote),
    );
    let ctx = Arc::new(RunContext {
        session: session.clone(),
        store: store.clone(),
        run: run.clone(),
        planner,
        observer,
        options: options.clone(),
        stale: stale.keys().cloned().collect(),
        done_before,
        slots: Arc::new(Semaphore::new(options.parallel.max(1))),
        lost,
        replanned: std::sync::Mutex::new(Vec::new()),
        written: std::sync::Mutex::new(written),
        masker,
        workdir: req.workdir.clone(),
        commit: req.commit.clone(),
    });
    let (changes, removals): (Vec<UnitPlan>, Vec<UnitPlan>) =
        units.into_iter().partition(|u| u.action != Action::Remove);
    let outcomes = run_changes(&ctx, &changes, &gates, &req.environment).await;
    let changes_ok = outcomes
        .iter()
        .all(|o| matches!(o.state, UnitState::Applied | UnitState::NoChange));
    let at_gate = outcomes.iter().any(|o| o.gate.is_some());
    let failed = outcomes
        .iter()
        .any(|o| matches!(o.state, UnitState::Failed | UnitState::Skipped));
    let removal_ok = run_removals(&ctx, &removals, changes_ok, failed, at_gate).await;
    let status = if changes_ok && removal_ok {
        RunStatus::Succeeded
    } else if !failed && removal_ok && at_gate {
        RunStatus::Waiting
    } else {
        RunStatus::Failed
    };
    let behind = finish(session, store.as_ref(), req, &run, &left_out, status).await?;
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
        behind,
    })
}

/// Finishes the record of the environment's runs that a dead process left unfinished, and
/// collects the stacks an earlier run of this same plan applied (not applied again).
async fn earlier_runs<S: Store>(
    session: &Session,
    store: &S,
    req: &Request,
    options: &Options,
    observer: &dyn Observer,
) -> Result<(Vec<String>, HashMap<String, UnitResult>), ApplyError> {
    let env = &req.environment;
    let mut recovered = Vec::new();
    for run in store.unfinished_runs(env).await? {
        recover(session, req, store, &run, options, observer).await?;
        recovered.push(run.id.clone());
    }
    let mut done_before: HashMap<String, UnitResult> = HashMap::new();
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
    Ok((recovered, done_before))
}

/// The gates not passed (`formwork continue`) since the plan was made, by the stack each holds
/// back.
async fn closed_gates<S: Store>(
    store: &S,
    req: &Request,
) -> Result<HashMap<String, Gate>, ApplyError> {
    let plan_ms = crate::store::plan_created_ms(&req.plan)?;
    let passed: BTreeSet<String> = store
        .events(Some(&req.environment), 500)
        .await?
        .into_iter()
        .filter(|e| e.kind == GATE_EVENT && e.at >= plan_ms)
        .map(|e| e.detail)
        .collect();
    Ok(req
        .desired
        .gates
        .iter()
        .filter(|g| !passed.contains(&g.name))
        .flat_map(|g| g.before.iter().map(move |b| (b.clone(), g.clone())))
        .collect())
}

/// Records a new run with every stack of the plan waiting.
async fn start_run<S: Store>(
    store: &S,
    req: &Request,
    options: &Options,
    units: &[UnitPlan],
) -> Result<(Run, HashMap<String, UnitResult>), ApplyError> {
    let run = Run {
        id: format!("r{}", live::plan_id(&req.commit, &live::now_rfc3339())),
        environment: req.environment.clone(),
        plan_id: Some(req.plan.id.clone()),
        commit: req.commit.clone(),
        owner: options.owner.clone(),
        started_at: now(),
        finished_at: None,
        status: RunStatus::Running,
    };
    store.start_run(&run).await?;
    let mut written = HashMap::new();
    for u in units {
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
    Ok((run, written))
}

/// The creates and updates, as a graph: each stack starts when the stacks it needs are done.
async fn run_changes<S: Store + 'static>(
    ctx: &Arc<RunContext<S>>,
    changes: &[UnitPlan],
    gates: &HashMap<String, Gate>,
    env: &str,
) -> Vec<Outcome> {
    let in_plan: BTreeSet<String> = changes.iter().map(|u| u.stack.clone()).collect();
    let mut futures: HashMap<String, SharedOutcome> = HashMap::new();
    for u in order(changes) {
        let deps: Vec<(String, SharedOutcome)> = u
            .depends_on
            .iter()
            .filter(|d| in_plan.contains(*d))
            .filter_map(|d| futures.get(d).map(|f| (d.clone(), f.clone())))
            .collect();
        let fut = unit_outcome(
            ctx.clone(),
            u.clone(),
            gates.get(&u.stack).cloned(),
            deps,
            env.to_string(),
        )
        .boxed()
        .shared();
        futures.insert(u.stack.clone(), fut);
    }
    join_all(futures.values().cloned()).await
}

/// How one stack of the graph ends: held by its gate, waiting for a stack held by one, skipped
/// because a stack it needs failed, or run.
async fn unit_outcome<S: Store + 'static>(
    ctx: Arc<RunContext<S>>,
    unit: UnitPlan,
    gate: Option<Gate>,
    deps: Vec<(String, SharedOutcome)>,
    env: String,
) -> Outcome {
    let mut blocking = Vec::new();
    for (name, f) in deps {
        let o = f.await;
        if !matches!(o.state, UnitState::Applied | UnitState::NoChange) {
            blocking.push((name, o));
        }
    }
    let held = blocking.iter().find(|(_, o)| o.gate.is_some());
    let failed = blocking.iter().find(|(_, o)| o.gate.is_none());
    let changes = unit.action != Action::NoChange && !ctx.done_before.contains_key(&unit.stack);
    let outcome = match (&gate, held, failed) {
        (Some(g), None, None) if changes => Outcome {
            state: UnitState::Waiting,
            message: Some(format!(
                "waits at gate `{}`: {} (when that is done: formwork continue {} --env {env})",
                g.name, g.message, g.name
            )),
            failed_stack: None,
            gate: Some(g.name.clone()),
        },
        (_, Some((name, o)), None) => {
            let g = o.gate.clone().unwrap_or_default();
            Outcome {
                state: UnitState::Waiting,
                message: Some(format!("waits for `{name}`, which waits at gate `{g}`")),
                failed_stack: None,
                gate: Some(g),
            }
        }
        (_, _, Some((name, o))) => {
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
        }
        _ => {
            let mut o = ctx.run_unit(&unit).await;
            if o.state == UnitState::Failed {
                o.failed_stack = Some(unit.stack.clone());
            }
            o
        }
    };
    ctx.record(&unit, &outcome).await;
    outcome
}

/// The stacks that left the config: deleted last, and only when everything else went well,
/// dependants first; whether every one went (or waits at a gate).
async fn run_removals<S: Store + 'static>(
    ctx: &Arc<RunContext<S>>,
    removals: &[UnitPlan],
    changes_ok: bool,
    failed: bool,
    at_gate: bool,
) -> bool {
    let mut removal_ok = true;
    for u in deletion_order(removals) {
        let outcome = if !changes_ok && !failed && at_gate {
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
    removal_ok
}

/// Records how the run ended: each stack's standing; the environment's deployed commit (in the
/// store and in SSM) when the run succeeded and every stack is at its commit; the run's status.
/// Returns the stacks that are not at the commit.
async fn finish<S: Store>(
    session: &Session,
    store: &S,
    req: &Request,
    run: &Run,
    left_out: &[String],
    status: RunStatus,
) -> Result<Vec<String>, ApplyError> {
    let env = &req.environment;
    let (_, results) = store
        .run(&run.id)
        .await?
        .ok_or_else(|| StoreError::Data(format!("run {} vanished from the store", run.id)))?;
    let behind = deployed::record(
        store,
        &req.desired,
        &req.commit,
        (&run.id, &results),
        left_out,
        req.baseline.as_ref(),
    )
    .await?;
    let succeeded = status == RunStatus::Succeeded;
    if succeeded && !behind.is_empty() {
        tracing::info!(environment = %env, commit = %req.commit, ?behind, "the environment stays at its deployed commit: some of its stacks are not at this one");
    } else if succeeded {
        let parameter = deployed_commit_parameter(env);
        let note = format!(
            "Commit applied by formwork run {} (plan {})",
            run.id, req.plan.id
        );
        if let Err(e) = session.ssm.put(&parameter, &req.commit, &note).await {
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
    store.finish_run(&run.id, status, now()).await?;
    Ok(behind)
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
