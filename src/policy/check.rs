//! Checking a plan: the rules of one revision, each environment's choice of them, evaluated on
//! every stack the plan creates or updates; the findings put on the stacks' plans and what was
//! checked on the plan.

use std::collections::BTreeMap;

use super::evaluate::check_units;
use super::rules::PolicySet;
use crate::desired::{DesiredEnvironment, PolicyChoice};
use crate::plan::model::{Action, Plan, PolicySummary};

/// What a plan is checked against.
#[derive(Clone, Debug)]
pub struct Gate {
    pub set: PolicySet,
    /// The commit the rules were read from.
    pub rules_from: String,
    /// Each environment's choice of rules at that commit (an environment that is new since
    /// gets every rule).
    pub choices: BTreeMap<String, PolicyChoice>,
    /// Problems with the rules at that commit, said on the plan.
    pub problems: Vec<String>,
}

/// Whether a stack's plan is checked: the stacks apply would create or change.
fn is_checked(action: Action) -> bool {
    matches!(action, Action::Create | Action::Update | Action::Pending)
}

/// Most stacks evaluated in one run of Guard: large environments are cut into runs of this
/// many, so that they spread over the threads too.
const STACKS_PER_RUN: usize = 8;

/// One run of Guard: some stacks of one environment, by index into its units.
struct Job<'a> {
    environment: usize,
    units: Vec<usize>,
    rules: &'a super::rules::Applicable<'a>,
    desired: &'a DesiredEnvironment,
}

/// Checks every created or updated stack of `plan` against the gate, with the desired state
/// of the environments planned. Runs of Guard go on as many threads as the machine has.
pub fn check_plan(plan: &mut Plan, gate: &Gate, desired: &[&DesiredEnvironment]) {
    let mut problems = gate.problems.clone();
    let none = PolicyChoice::default();
    let mut rules = Vec::new();
    for env in &plan.environments {
        let choice = gate.choices.get(&env.name).unwrap_or(&none);
        let (applicable, choice_problems) = gate.set.for_environment(choice);
        problems.extend(
            choice_problems
                .into_iter()
                .map(|p| format!("environment `{}`: {}", env.name, p.short())),
        );
        rules.push(applicable);
    }
    let mut jobs = Vec::new();
    for (e, env) in plan.environments.iter().enumerate() {
        let Some(d) = desired.iter().find(|d| d.name == env.name) else {
            continue;
        };
        let checked: Vec<usize> = env
            .units
            .iter()
            .enumerate()
            .filter(|(_, u)| is_checked(u.action) && d.units.contains_key(&u.stack))
            .map(|(i, _)| i)
            .collect();
        for chunk in checked.chunks(STACKS_PER_RUN) {
            jobs.push(Job {
                environment: e,
                units: chunk.to_vec(),
                rules: &rules[e],
                desired: d,
            });
        }
    }
    let results = run_jobs(plan, &jobs);
    let checked = results.len();
    for (e, u, findings) in results {
        plan.environments[e].units[u].policy = findings;
    }
    problems.sort();
    problems.dedup();
    plan.policy = Some(PolicySummary {
        rules_from: gate.rules_from.clone(),
        files: gate.set.files.iter().map(|f| f.path.to_string()).collect(),
        stacks_checked: checked,
        problems,
    });
}

/// Runs the jobs on worker threads; the findings of each stack checked, by environment and
/// unit index.
fn run_jobs(
    plan: &Plan,
    jobs: &[Job<'_>],
) -> Vec<(usize, usize, Vec<crate::plan::model::Finding>)> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(jobs.len())
        .max(1);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else {
                        break;
                    };
                    let env = &plan.environments[job.environment];
                    let stacks: Vec<_> = job
                        .units
                        .iter()
                        .map(|&u| (&job.desired.units[&env.units[u].stack], &env.units[u]))
                        .collect();
                    let findings = check_units(job.rules, &stacks);
                    let mut out = results.lock().unwrap_or_else(|e| e.into_inner());
                    for (&u, f) in job.units.iter().zip(findings) {
                        out.push((job.environment, u, f));
                    }
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}
