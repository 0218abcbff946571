//! Checking a plan: the rules of one revision, each environment's choice of them, evaluated on
//! every stack the plan creates or updates; the findings put on the stacks' plans and what was
//! checked on the plan. A document whose result is known (same rules, same text: see
//! [`super::cache`]) is not evaluated again.

use std::collections::{BTreeMap, BTreeSet};

use super::cache::{self, Results};
use super::evaluate::{Document, documents, findings_of, not_evaluated, run_guard};
use super::rules::{Applicable, PolicySet};
use crate::desired::{DesiredEnvironment, PolicyChoice};
use crate::plan::model::{Action, Finding, Plan, PolicySummary};

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

/// Most documents evaluated in one run of Guard: an environment's documents to evaluate are cut
/// into runs of this many (each run parses the rule files once), so that they spread over the
/// threads too.
const DOCUMENTS_PER_RUN: usize = 12;

/// One checked stack: where it is in the plan and its documents, each with its result's key.
struct Checked<'a> {
    environment: usize,
    unit: usize,
    documents: Vec<(Document<'a>, String)>,
}

/// A plan's check made ready: the rules of each environment and the documents of each checked
/// stack with the keys of their results ([`super::cache`]), so that the results known (in this
/// process or in the state store) are looked up before anything is evaluated.
pub struct Prepared<'a> {
    gate: &'a Gate,
    /// The rules of each environment of the plan, by index.
    rules: Vec<Applicable<'a>>,
    problems: Vec<String>,
    stacks: Vec<Checked<'a>>,
}

/// Makes ready the check of every created or updated stack of `plan` against the gate, with
/// the desired state of the environments planned.
pub fn prepare<'a>(
    plan: &Plan,
    gate: &'a Gate,
    desired: &[&'a DesiredEnvironment],
) -> Prepared<'a> {
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
    let mut stacks = Vec::new();
    for (e, env) in plan.environments.iter().enumerate() {
        let Some(d) = desired.iter().find(|d| d.name == env.name) else {
            continue;
        };
        let prefix = cache::KeyPrefix::new(rules[e].files.iter().map(|f| f.text.as_ref()));
        for (u, unit_plan) in env.units.iter().enumerate() {
            if !is_checked(unit_plan.action) {
                continue;
            }
            let Some(unit) = d.units.get(&unit_plan.stack) else {
                continue;
            };
            let documents = documents(unit, unit_plan)
                .into_iter()
                .map(|doc| {
                    let key = prefix.key(&doc.recipe());
                    (doc, key)
                })
                .collect();
            stacks.push(Checked {
                environment: e,
                unit: u,
                documents,
            });
        }
    }
    Prepared {
        gate,
        rules,
        problems,
        stacks,
    }
}

impl Prepared<'_> {
    /// The keys of the results the check needs.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .stacks
            .iter()
            .filter(|s| !self.rules[s.environment].files.is_empty())
            .flat_map(|s| s.documents.iter().map(|(_, k)| k.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Evaluates the documents whose result `known` does not have (in runs of Guard on as many
    /// threads as the machine has), puts the findings on the stacks' plans and what was checked
    /// on the plan. Returns the results evaluated now (key, Guard's record), also added to
    /// `known`, for the caller to keep.
    pub fn finish(self, plan: &mut Plan, known: &Results) -> Vec<(String, String)> {
        let mut jobs: Vec<Job<'_>> = Vec::new();
        for (e, rules) in self.rules.iter().enumerate() {
            if rules.files.is_empty() {
                continue;
            }
            let mut seen = BTreeSet::new();
            let todo: Vec<(&str, String)> = self
                .stacks
                .iter()
                .filter(|s| s.environment == e)
                .flat_map(|s| s.documents.iter())
                .filter(|(_, k)| known.get(k).is_none() && seen.insert(k.as_str()))
                .map(|(d, k)| (k.as_str(), d.data()))
                .collect();
            for chunk in todo.chunks(DOCUMENTS_PER_RUN) {
                jobs.push(Job {
                    rules,
                    documents: chunk.to_vec(),
                });
            }
        }
        let evaluated = run_jobs(&jobs);
        let mut fresh = Vec::new();
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        for (key, result) in evaluated {
            match result {
                Ok(record) => fresh.push((key, record)),
                Err(message) => {
                    failed.insert(key, message);
                }
            }
        }
        known.extend(fresh.iter().cloned());
        let just: BTreeMap<&str, &str> = fresh
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for stack in &self.stacks {
            let rules = &self.rules[stack.environment];
            let mut findings = Vec::new();
            if !rules.files.is_empty() {
                findings = stack_findings(rules, stack, known, &just, &failed);
            }
            plan.environments[stack.environment].units[stack.unit].policy = findings;
        }
        let mut problems = self.problems;
        problems.sort();
        problems.dedup();
        plan.policy = Some(PolicySummary {
            rules_from: self.gate.rules_from.clone(),
            files: self
                .gate
                .set
                .files
                .iter()
                .map(|f| f.path.to_string())
                .collect(),
            stacks_checked: self.stacks.len(),
            problems,
        });
        fresh
    }
}

/// The findings of one stack from the results of its documents; when one of them could not be
/// evaluated, only the finding that says so.
fn stack_findings(
    rules: &Applicable<'_>,
    stack: &Checked<'_>,
    known: &Results,
    just: &BTreeMap<&str, &str>,
    failed: &BTreeMap<String, String>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (doc, key) in &stack.documents {
        let record = match just.get(key.as_str()) {
            Some(text) => serde_json::from_str::<serde_json::Value>(text),
            None => match known.get(key) {
                Some(text) => serde_json::from_str::<serde_json::Value>(&text),
                None => {
                    let message = failed
                        .get(key)
                        .cloned()
                        .unwrap_or_else(|| "Guard reported nothing".to_string());
                    let first = stack.documents.first().map_or(doc.path, |(d, _)| d.path);
                    return vec![not_evaluated(rules, first, &message)];
                }
            },
        };
        match record {
            Ok(record) => findings.extend(findings_of(rules, &record, doc)),
            Err(e) => {
                let first = stack.documents.first().map_or(doc.path, |(d, _)| d.path);
                return vec![not_evaluated(
                    rules,
                    first,
                    &format!("Guard's report could not be read: {e}"),
                )];
            }
        }
    }
    findings.dedup();
    findings
}

/// Checks every created or updated stack of `plan` against the gate, with the desired state
/// of the environments planned, remembering results in this process ([`Results::global`]).
pub fn check_plan(plan: &mut Plan, gate: &Gate, desired: &[&DesiredEnvironment]) {
    let prepared = prepare(plan, gate, desired);
    prepared.finish(plan, Results::global());
}

/// One run of Guard: documents of one environment (key, JSON text).
struct Job<'a> {
    rules: &'a Applicable<'a>,
    documents: Vec<(&'a str, String)>,
}

/// Runs the jobs on worker threads; the result of each document, by key.
fn run_jobs(jobs: &[Job<'_>]) -> Vec<(String, Result<String, String>)> {
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
                    let data: Vec<&str> = job.documents.iter().map(|(_, d)| d.as_str()).collect();
                    let out: Vec<(String, Result<String, String>)> =
                        match run_guard(job.rules, &data) {
                            Ok(records) => job
                                .documents
                                .iter()
                                .zip(records)
                                .map(|((k, _), r)| (k.to_string(), Ok(r)))
                                .collect(),
                            Err(message) => job
                                .documents
                                .iter()
                                .map(|(k, _)| (k.to_string(), Err(message.clone())))
                                .collect(),
                        };
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(out);
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}
