//! The steps from a git repository to what plan and apply work on, shared by the command line,
//! GitHub runs and the daemon: which stacks of which environments to plan for a change (or for
//! a revision), and the checked desired state of one environment at a revision.
//!
//! Config errors come back as [`WorkflowError::Config`] with the diagnostics and the file texts
//! they point into, so each caller renders them its own way (terminal colours, a Markdown
//! comment).

use crate::affected::{AffectedError, Change, compare};
use crate::config::{ParseCache, check_environment, validate_repository};
use crate::desired::DesiredEnvironment;
use crate::diag::{Color, Diagnostics, SourceMap, render_all};
use crate::git::{GitError, Revision};
use crate::plan::live::{self, EnvRequest, RemovedUnit};
use crate::plan::model::RevisionInfo;
use crate::source::SourceError;

/// What can stop a workflow before AWS is asked anything.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The config has errors; `diags` says which, in `texts`.
    #[error("{message}")]
    Config {
        message: String,
        diags: Box<Diagnostics>,
        texts: Box<SourceMap>,
    },
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Affected(#[from] AffectedError),
    /// A request that names something that is not there.
    #[error("{0}")]
    Usage(String),
}

impl WorkflowError {
    /// The diagnostics of a config error (none for other errors).
    pub fn diagnostics(&self) -> Vec<crate::diag::Diagnostic> {
        match self {
            WorkflowError::Config { diags, .. } => diags.iter().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// The diagnostics of a config error, rendered (without colour unless asked).
    pub fn rendered_diagnostics(&self, color: Color) -> Option<String> {
        match self {
            WorkflowError::Config { diags, texts, .. } if !diags.is_empty() => {
                Some(render_all(diags, texts, color))
            }
            _ => None,
        }
    }
}

/// The one handle on the config repository: where the git repository is and where the config
/// sits inside it. Every operation opens the repository, does its work synchronously and lets
/// it go (a git repository cannot move between threads), so the handle can be cloned and held
/// across awaits.
#[derive(Clone, Debug)]
pub struct ConfigRepo {
    path: std::path::PathBuf,
    prefix: String,
}

impl ConfigRepo {
    /// The config repository at `dir`: the git repository containing it (a work tree or a bare
    /// repository), the config being `dir` itself.
    pub fn discover(dir: &std::path::Path) -> Result<ConfigRepo, WorkflowError> {
        let r = crate::git::open(dir)?;
        let prefix = crate::git::config_prefix(&r, dir);
        Ok(ConfigRepo {
            path: dir.to_path_buf(),
            prefix,
        })
    }

    /// The git repository at `path`, the config in its directory `prefix` (`""`: the root).
    pub fn at(path: impl Into<std::path::PathBuf>, prefix: &str) -> ConfigRepo {
        ConfigRepo {
            path: path.into(),
            prefix: prefix.trim_matches('/').to_string(),
        }
    }

    /// Where the git repository is.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Where the config sits inside it.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Runs `f` on the opened repository.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&git2::Repository, &str) -> Result<T, WorkflowError>,
    ) -> Result<T, WorkflowError> {
        let r = crate::git::open(&self.path)?;
        f(&r, &self.prefix)
    }

    /// Writes the config's files as of `rev` into `dir` (an existing, empty directory).
    pub fn export_at(&self, rev: &str, dir: &std::path::Path) -> Result<usize, WorkflowError> {
        self.with(|r, prefix| {
            let tree = Revision::resolve(r, rev)?.tree(r, prefix)?;
            Ok(crate::git::export_tree(r, &tree, dir)?)
        })
    }

    /// The commit id `rev` names.
    pub fn resolve(&self, rev: &str) -> Result<String, WorkflowError> {
        self.with(|r, _| Ok(Revision::resolve(r, rev)?.id()))
    }

    /// Where the histories of `a` and `b` meet.
    pub fn merge_base(&self, a: &str, b: &str) -> Result<String, WorkflowError> {
        self.with(|r, _| Ok(crate::git::merge_base(r, a, b)?))
    }

    /// Every environment at `rev` that resolves.
    pub fn environments_at(&self, rev: &str) -> Result<Vec<DesiredEnvironment>, WorkflowError> {
        self.with(|r, prefix| environments_at(r, prefix, rev))
    }

    /// The environments at `rev` that resolve, and those that do not.
    pub fn checked_environments_at(&self, rev: &str) -> Result<CheckedEnvironments, WorkflowError> {
        self.with(|r, prefix| checked_environments_at(r, prefix, rev))
    }

    /// The names of the environments a change from `base` to `head` affects, sorted.
    pub fn affected_environments(
        &self,
        base: &str,
        head: &str,
    ) -> Result<Vec<String>, WorkflowError> {
        self.with(|r, prefix| affected_environments(r, prefix, base, head))
    }

    /// The commits of `head`'s first-parent history after `deployed`, oldest first, that change
    /// environment `env` (each merge once). Only `head` when nothing was deployed, or when
    /// `deployed` is not behind `head` (or more than 10,000 commits behind).
    pub fn commits_changing(
        &self,
        env: &str,
        deployed: Option<&str>,
        head: &str,
    ) -> Result<Vec<String>, WorkflowError> {
        self.with(|r, prefix| {
            let Some(deployed) = deployed else {
                return Ok(vec![head.to_string()]);
            };
            let mut chain = Vec::new();
            let mut c = Revision::resolve(r, head)?.commit()?.clone();
            while c.id().to_string() != deployed {
                chain.push(c.id().to_string());
                match c.parent(0) {
                    Ok(p) => c = p,
                    Err(_) => return Ok(vec![head.to_string()]),
                }
                if chain.len() > 10_000 {
                    return Ok(vec![head.to_string()]);
                }
            }
            chain.reverse();
            let cache = ParseCache::default();
            let mut out = Vec::new();
            let mut before = deployed.to_string();
            for commit in chain {
                // A commit that cannot be compared (its config does not read) is tried.
                let changes = compare(r, prefix, &before, &commit, &cache)
                    .map(|cmp| cmp.report.units.iter().any(|u| u.environment == env))
                    .unwrap_or(true);
                if changes {
                    out.push(commit.clone());
                }
                before = commit;
            }
            Ok(out)
        })
    }

    /// The checked desired state of environment `env` at `rev`, and the commit id.
    pub fn desired_at(
        &self,
        rev: &str,
        env: &str,
    ) -> Result<(DesiredEnvironment, String), WorkflowError> {
        self.with(|r, prefix| desired_at(r, prefix, rev, env))
    }
}

/// Which environments and revisions to plan.
/// Every environment of the config at revision `rev`, resolved.
pub fn environments_at(
    r: &git2::Repository,
    prefix: &str,
    rev: &str,
) -> Result<Vec<DesiredEnvironment>, WorkflowError> {
    Ok(checked_environments_at(r, prefix, rev)?.resolved)
}

/// The environments of a revision: those that resolve, and those that do not.
pub struct CheckedEnvironments {
    pub resolved: Vec<DesiredEnvironment>,
    /// Each with its first error (`file:line:col: error: message`).
    pub unresolved: Vec<(String, String)>,
}

/// The environments at `rev` that resolve, and those that do not with their first error.
pub fn checked_environments_at(
    r: &git2::Repository,
    prefix: &str,
    rev: &str,
) -> Result<CheckedEnvironments, WorkflowError> {
    let src = Revision::resolve(r, rev)?.source(r, prefix)?;
    let v = validate_repository(&src)?;
    Ok(CheckedEnvironments {
        resolved: v.environments,
        unresolved: v.unresolved,
    })
}

/// The names of the environments at `rev` (directories under `environments/` with an
/// `environment.yml`).
fn environment_names_at(
    r: &git2::Repository,
    prefix: &str,
    rev: &str,
    cache: &ParseCache,
) -> Result<Vec<String>, WorkflowError> {
    let src = Revision::resolve(r, rev)?.source(r, prefix)?;
    let mut loader = crate::config::Loader::new(&src, cache);
    Ok(loader.environment_names()?)
}

/// The names of the environments a change from `base` to `head` affects, sorted.
pub fn affected_environments(
    r: &git2::Repository,
    prefix: &str,
    base: &str,
    head: &str,
) -> Result<Vec<String>, WorkflowError> {
    let cmp = compare(r, prefix, base, head, &ParseCache::default())?;
    let envs: std::collections::BTreeSet<String> = cmp
        .report
        .units
        .into_iter()
        .map(|u| u.environment)
        .collect();
    Ok(envs.into_iter().collect())
}

#[derive(Clone, Copy, Debug)]
pub struct Selection<'a> {
    /// Only these environments (none: all, or all affected with a base).
    pub envs: &'a [String],
    /// Only these stacks (by key; none: all of them) of each environment.
    pub stacks: &'a [String],
    /// Plan only what the change from this revision to `head` affects.
    pub base: Option<&'a str>,
    pub head: &'a str,
}

impl<'a> Selection<'a> {
    /// Every stack of these environments (none: all) at `head`, or the affected ones with a
    /// base.
    pub fn new(envs: &'a [String], base: Option<&'a str>, head: &'a str) -> Selection<'a> {
        Selection {
            envs,
            stacks: &[],
            base,
            head,
        }
    }

    fn wants_stack(&self, key: &str) -> bool {
        self.stacks.is_empty() || self.stacks.iter().any(|s| s == key)
    }
}

/// What to plan: per environment, the stacks to plan and those that left the config; with the
/// revisions planned.
pub struct PlanRequests {
    pub requests: Vec<EnvRequest>,
    pub head: RevisionInfo,
    pub base: Option<RevisionInfo>,
    /// Give every stack a change set: none is judged unchanged by its record or by comparison.
    pub refresh: bool,
    /// The policy rules the plan is checked against, when the config has any.
    pub policy: Option<crate::policy::Gate>,
}

impl PlanRequests {
    /// Reads what the store last saw of each requested environment's stacks, so that stacks
    /// still as they were cost no call. A store that cannot be read leaves every stack to be
    /// planned as without records.
    async fn read_seen<S: crate::store::Store>(&mut self, store: &S) {
        for req in &mut self.requests {
            match store.stacks_seen(&req.desired.name).await {
                Ok(records) => {
                    req.seen = records.into_iter().map(|r| (r.stack.clone(), r)).collect();
                }
                Err(e) => {
                    tracing::warn!(environment = %req.desired.name, error = %e, "could not read what was last seen of the stacks; planning each");
                }
            }
        }
    }

    /// Plans them against AWS: a change set for every stack, made on behalf of `origin` (`cli`,
    /// `pr-N`: a later plan of the same origin cleans up this one's change sets). With a store,
    /// stacks still as it last saw them are judged unchanged without a call, and the stacks the
    /// plan finds unchanged by reading them are recorded for the next plan (a store that fails
    /// only costs calls: see [`crate::plan::evidence`]).
    pub async fn plan<S: crate::store::Store>(
        mut self,
        aws: &crate::aws::Aws,
        masker: std::sync::Arc<crate::secrets::Masker>,
        origin: String,
        progress: std::sync::Arc<dyn live::Progress>,
        store: Option<&S>,
    ) -> Result<crate::plan::model::Plan, live::PlanError> {
        if let Some(store) = store {
            self.read_seen(store).await;
        }
        let options = live::Options {
            origin,
            refresh: self.refresh,
            ..live::Options::default()
        };
        let policy = self.policy.take().map(|gate| {
            let desired: Vec<DesiredEnvironment> =
                self.requests.iter().map(|r| r.desired.clone()).collect();
            (gate, desired)
        });
        let mut plan = live::plan(
            aws,
            masker,
            self.requests,
            self.head,
            self.base,
            &options,
            progress,
        )
        .await?;
        if let Some((gate, desired)) = &policy {
            let desired: Vec<&DesiredEnvironment> = desired.iter().collect();
            let prepared = crate::policy::prepare(&plan, gate, &desired);
            let known = crate::policy::Results::global();
            if let Some(store) = store {
                let missing = known.missing(&prepared.keys());
                if !missing.is_empty() {
                    match store.policy_results(&missing).await {
                        Ok(found) => known.extend(found),
                        Err(e) => {
                            tracing::warn!(error = %e, "could not read the policy results kept; evaluating them");
                        }
                    }
                }
            }
            let fresh = prepared.finish(&mut plan, known);
            if let Some(store) = store
                && !fresh.is_empty()
                && let Err(e) = store.put_policy_results(&fresh).await
            {
                tracing::warn!(error = %e, "could not keep the policy results");
            }
        }
        if let Some(store) = store {
            let seen = crate::plan::evidence::seen_in(&plan, crate::store::now());
            if let Err(e) = store.set_stacks_seen(&seen).await {
                tracing::warn!(error = %e, "could not record the stacks found unchanged");
            }
        }
        Ok(plan)
    }
}

/// The affected stacks of a change (with a base), or every stack of the chosen environments at
/// the head.
pub fn plan_requests(
    r: &git2::Repository,
    prefix: &str,
    sel: Selection<'_>,
    cache: &ParseCache,
) -> Result<PlanRequests, WorkflowError> {
    if let Some(base) = sel.base {
        let cmp = compared(r, prefix, base, sel, cache)?.cmp;
        let mut out = Vec::new();
        for (name, desired) in &cmp.after {
            if !sel.envs.is_empty() && !sel.envs.contains(name) {
                continue;
            }
            let mut units = Vec::new();
            let mut removed = Vec::new();
            let mut left_out = Vec::new();
            for row in cmp.report.units.iter().filter(|u| &u.environment == name) {
                if !sel.wants_stack(&row.stack) {
                    if row.change != Change::Removed {
                        left_out.push(row.stack.clone());
                    }
                    continue;
                }
                if row.change == Change::Removed {
                    let was = cmp.before.get(name).and_then(|b| b.units.get(&row.stack));
                    removed.push(RemovedUnit {
                        stack: row.stack.clone(),
                        stack_name: row.stack_name.clone(),
                        region: was
                            .map(|u| u.region.clone())
                            .unwrap_or_else(|| desired.region.clone()),
                        depends_on: was.map(live::dependency_names).unwrap_or_default(),
                        reasons: row.reasons.clone(),
                    });
                } else {
                    units.push((row.stack.clone(), row.reasons.clone()));
                }
            }
            if units.is_empty() && removed.is_empty() {
                continue;
            }
            out.push(EnvRequest {
                desired: desired.clone(),
                units,
                removed,
                left_out,
                seen: Default::default(),
            });
        }
        let policy = policy_gate(r, prefix, base, cmp.before.values())?;
        return Ok(PlanRequests {
            requests: out,
            head: cmp.report.head.clone(),
            base: Some(cmp.report.base.clone()),
            refresh: false,
            policy,
        });
    }
    let head = Revision::resolve(r, sel.head)?;
    let src = head.source(r, prefix)?;
    let v = validate_repository(&src)?;
    if v.diags.has_errors() {
        return Err(WorkflowError::Config {
            message: format!("the config at {} has errors; fix them first", sel.head),
            diags: Box::new(v.diags),
            texts: Box::new(v.texts),
        });
    }
    check_envs(sel.envs, v.environments.iter().map(|e| &e.name))?;
    check_stacks(
        sel.stacks,
        v.environments.iter().flat_map(|e| e.units.keys()),
    )?;
    let policy = policy_gate(r, prefix, sel.head, v.environments.iter())?;
    let requests = v
        .environments
        .into_iter()
        .filter(|e| sel.envs.is_empty() || sel.envs.contains(&e.name))
        .map(|desired| EnvRequest {
            units: desired
                .units
                .keys()
                .filter(|k| sel.wants_stack(k))
                .map(|k| (k.clone(), Vec::new()))
                .collect(),
            left_out: desired
                .units
                .keys()
                .filter(|k| !sel.wants_stack(k))
                .cloned()
                .collect(),
            desired,
            removed: Vec::new(),
            seen: Default::default(),
        })
        .filter(|r| sel.stacks.is_empty() || !r.units.is_empty())
        .collect();
    Ok(PlanRequests {
        requests,
        head: RevisionInfo {
            rev: head.name.clone(),
            commit: head.id(),
        },
        base: None,
        refresh: false,
        policy,
    })
}

/// The policy gate of a plan: the rules of `rules_rev` (the revision a change is planned
/// against, so that the change cannot loosen its own check; the head when a revision is planned
/// whole), with the choice of rules of each environment of `at_rules_rev`, the environments at
/// that revision. `None` when that revision has no rules.
fn policy_gate<'a>(
    r: &git2::Repository,
    prefix: &str,
    rules_rev: &str,
    at_rules_rev: impl Iterator<Item = &'a DesiredEnvironment>,
) -> Result<Option<crate::policy::Gate>, WorkflowError> {
    let revision = Revision::resolve(r, rules_rev)?;
    let src = revision.source(r, prefix)?;
    let loaded = crate::policy::load(&src)?;
    Ok(gate_of(revision.id(), loaded, at_rules_rev))
}

/// The policy gate of rules read already from the revision `rules_from` (see [`policy_gate`]).
fn gate_of<'a>(
    rules_from: String,
    loaded: crate::policy::Loaded,
    at_rules_rev: impl Iterator<Item = &'a DesiredEnvironment>,
) -> Option<crate::policy::Gate> {
    let set = loaded.set?;
    let problems = loaded
        .diags
        .iter()
        .filter(|d| d.severity == crate::diag::Severity::Error)
        .map(|d| d.short())
        .collect();
    Some(crate::policy::Gate {
        set,
        rules_from,
        choices: at_rules_rev
            .map(|d| (d.name.clone(), d.policies.clone()))
            .collect(),
        problems,
    })
}

/// Every wanted environment must be among the known ones.
pub fn check_envs<'a>(
    wanted: &[String],
    known: impl Iterator<Item = &'a String>,
) -> Result<(), WorkflowError> {
    check_names(wanted, known, |w, near| {
        format!("environment `{w}` is not among those to plan{near}")
    })
}

/// Every wanted stack must be a stack of some environment.
fn check_stacks<'a>(
    wanted: &[String],
    known: impl Iterator<Item = &'a String>,
) -> Result<(), WorkflowError> {
    check_names(wanted, known, |w, near| {
        format!("there is no stack `{w}` in the environments to plan{near}")
    })
}

/// Every wanted name must be among the known ones; `message(wanted, " (did you mean …?)")`
/// says the first that is not.
pub fn check_names<'a>(
    wanted: &[String],
    known: impl Iterator<Item = &'a String>,
    message: impl Fn(&str, &str) -> String,
) -> Result<(), WorkflowError> {
    let known: std::collections::BTreeSet<&String> = known.collect();
    for w in wanted {
        if !known.contains(w) {
            let near = crate::suggest::nearest(w, known.iter().map(|s| s.as_str()))
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            return Err(WorkflowError::Usage(message(w, &near)));
        }
    }
    Ok(())
}

/// The checked desired state of one environment at a revision, and the revision's commit id.
pub fn desired_at(
    r: &git2::Repository,
    prefix: &str,
    rev: &str,
    env: &str,
) -> Result<(DesiredEnvironment, String), WorkflowError> {
    let revision = Revision::resolve(r, rev)?;
    let src = revision.source(r, prefix)?;
    let checked = check_environment(&src, env)?;
    if !checked.exists(env) {
        return Err(WorkflowError::Config {
            message: format!("there is no environment `{env}` at {rev}"),
            diags: Box::new(checked.diags),
            texts: Box::new(checked.texts),
        });
    }
    if checked.diags.has_errors() {
        return Err(WorkflowError::Config {
            message: format!(
                "the config of environment `{env}` at {rev} has errors; fix them first"
            ),
            diags: Box::new(checked.diags),
            texts: Box::new(checked.texts),
        });
    }
    let Some(desired) = checked.desired else {
        return Err(WorkflowError::Usage(format!(
            "environment `{env}` at {rev} could not be resolved"
        )));
    };
    Ok((desired, revision.id()))
}

/// A plan made without AWS, by comparing two revisions (`diff_context` lines around template
/// changes); without a base, the head is compared with nothing.
pub fn offline_plan(
    r: &git2::Repository,
    prefix: &str,
    sel: Selection<'_>,
    cache: &ParseCache,
    diff_context: usize,
) -> Result<crate::plan::model::Plan, WorkflowError> {
    offline_plan_keeping(r, prefix, sel, cache, diff_context, None)
}

/// [`offline_plan`], with policy results recalled from and kept in `keep` (the state store), so
/// that stacks checked before against the same rules are not evaluated again.
pub fn offline_plan_keeping(
    r: &git2::Repository,
    prefix: &str,
    sel: Selection<'_>,
    cache: &ParseCache,
    diff_context: usize,
    keep: Option<&dyn crate::policy::Keep>,
) -> Result<crate::plan::model::Plan, WorkflowError> {
    // Without a base, from nothing: every stack of the head is new (a first commit, a new
    // repository), as a live plan without a base plans every stack.
    let base = sel.base.unwrap_or(crate::git::EMPTY_TREE);
    let known = crate::policy::Results::global();
    // Guard's verdicts on the rule files of both revisions, kept from earlier runs, so that
    // unchanged rules are not parsed again; those worked out now are kept at the end.
    let mut verdicts = Vec::new();
    if let Some(keep) = keep {
        for rev in [sel.head, base] {
            if rev != crate::git::EMPTY_TREE {
                let src = Revision::resolve(r, rev)?.source(r, prefix)?;
                verdicts.extend(crate::policy::verdict_keys(&src)?);
            }
        }
        verdicts = known.recall_from(keep, &verdicts);
    }
    let verdicts_now = |verdicts: Vec<String>| -> Vec<(String, String)> {
        verdicts
            .into_iter()
            .filter_map(|k| known.get(&k).map(|v| (k, v.to_string())))
            .collect()
    };
    let Compared {
        cmp,
        head_commit,
        head_rules,
    } = match compared(r, prefix, base, sel, cache) {
        Ok(c) => c,
        Err(e) => {
            // A rule file that does not parse is said again by the next run without Guard.
            if let Some(keep) = keep {
                keep.keep(&verdicts_now(verdicts));
            }
            return Err(e);
        }
    };
    let mut plan = crate::plan::offline::plan_offline(&cmp, sel.envs, diff_context);
    let gate = if base == crate::git::EMPTY_TREE {
        // The head's rules, read already to check them.
        gate_of(head_commit, head_rules, cmp.after.values())
    } else {
        policy_gate(r, prefix, base, cmp.before.values())?
    };
    let mut fresh = verdicts_now(verdicts);
    if let Some(gate) = gate {
        let desired: Vec<&DesiredEnvironment> = cmp.after.values().collect();
        let prepared = crate::policy::prepare(&plan, &gate, &desired);
        if let Some(keep) = keep {
            known.recall_from(keep, &prepared.keys());
        }
        fresh.extend(prepared.finish(&mut plan, known));
    }
    if let Some(keep) = keep {
        keep.keep(&fresh);
    }
    if !sel.stacks.is_empty() {
        for env in &mut plan.environments {
            env.units.retain(|u| sel.wants_stack(&u.stack));
        }
        plan.environments.retain(|e| !e.units.is_empty());
    }
    Ok(plan)
}

/// The comparison of `base` with the selection's head, refused when the head's config has
/// errors or the selection names environments or stacks that are in neither revision.
fn compared(
    r: &git2::Repository,
    prefix: &str,
    base: &str,
    sel: Selection<'_>,
    cache: &ParseCache,
) -> Result<Compared, WorkflowError> {
    let cmp = compare(r, prefix, base, sel.head, cache)?;
    let head = Revision::resolve(r, sel.head)?;
    let head_rules = crate::policy::load(&head.source(r, prefix)?)?;
    let policy_diags = crate::policy::validate_loaded(&head_rules, cmp.after.values());
    if cmp.report.diags.has_errors() || policy_diags.has_errors() {
        let mut diags = cmp.report.diags.clone();
        diags.extend(policy_diags);
        let mut texts = cmp.report.texts.clone();
        texts.merge(&head_rules.texts);
        return Err(WorkflowError::Config {
            message: format!("the config at {} has errors; fix them first", sel.head),
            diags: Box::new(diags),
            texts: Box::new(texts),
        });
    }
    if !sel.envs.is_empty() {
        // An environment the change does not reach is planned as having nothing to do; only
        // one that exists at neither revision is a mistake.
        let mut known = environment_names_at(r, prefix, sel.head, cache)?;
        if base != crate::git::EMPTY_TREE {
            known.extend(environment_names_at(r, prefix, base, cache)?);
        }
        check_envs(sel.envs, known.iter())?;
    }
    check_stacks(
        sel.stacks,
        cmp.after
            .values()
            .chain(cmp.before.values())
            .flat_map(|d| d.units.keys()),
    )?;
    Ok(Compared {
        cmp,
        head_commit: head.id(),
        head_rules,
    })
}

/// A comparison of two revisions, with the policy rules of the head as read to check them.
struct Compared {
    cmp: crate::affected::Comparison,
    /// The head's commit, whose rules `head_rules` are.
    head_commit: String,
    head_rules: crate::policy::Loaded,
}
