//! Change detection: which units (stacks of environments) a change between two revisions
//! affects. A unit is affected when its desired state differs — template content, parameter
//! expressions, tags, name, account, region, capabilities — not when some file near it changed;
//! its dependants are affected when an input they take from it may change ([`propagation`]);
//! units that leave the config are removals, never implied deletions.
//!
//! Only the environments that a changed path can reach are resolved: a changed environment file
//! reaches its environment, a changed pipeline or template every environment of that pipeline.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use git2::Repository;
use serde::{Deserialize, Serialize};

use crate::config::{
    ENVIRONMENT_FILE, ENVIRONMENTS_DIR, Loader, PIPELINE_FILE, PIPELINES_DIR, ParseCache, Pipeline,
    check_pipeline, resolve_environment,
};
use crate::desired::{DesiredEnvironment, MASK, StackOptions, TemplateRef, Unit};
use crate::diag::{Diagnostics, SourceMap};
use crate::git::{self, GitError, Revision};
use crate::source::SourceError;

mod propagation;

/// The version of the JSON document `formwork affected --output json` prints.
pub const AFFECTED_JSON_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum AffectedError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// A revision as reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionInfo {
    /// As given on the command line.
    pub rev: String,
    pub commit: String,
}

/// How a unit is affected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// New at head.
    Added,
    /// Its own desired state changed.
    Modified,
    /// Unchanged itself, but an input from an affected stack may change.
    Dependant,
    /// In the config at base, not at head. Deleting the stack needs an explicit opt-in.
    Removed,
}

/// Why a unit is affected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The unit is new at head (`detail` says why: a new stack, an enabled one, a new name…).
    Added { detail: String },
    /// The unit left the config.
    Removed { detail: String },
    /// The template's content changed (formatting and comments do not count).
    Template { before: String, after: String },
    /// A template that the stack's template nests from the repository is new or changed
    /// (`resource`: the nested stack's logical id, under its parents' for deeper levels).
    NestedTemplate { resource: String, path: String },
    /// A parameter's value changed, appeared or disappeared. NoEcho values are masked.
    Parameter {
        name: String,
        before: Option<String>,
        after: Option<String>,
    },
    /// A tag changed, appeared or disappeared.
    Tag {
        key: String,
        before: Option<String>,
        after: Option<String>,
    },
    /// The acknowledged capabilities changed.
    Capabilities {
        before: Vec<String>,
        after: Vec<String>,
    },
    /// The resources the stack imports (`import:`) changed; those it imports now.
    Import { resources: Vec<String> },
    /// A stack option changed (`options:`: service role, termination protection, …).
    Option {
        name: String,
        before: Option<String>,
        after: Option<String>,
    },
    /// The base revision's config for this environment did not validate, so every unit is
    /// treated as changed.
    BaseInvalid,
    /// An input comes from an affected stack and may change.
    Input {
        stack: String,
        output: String,
        reference: String,
        /// Why it may change: "Cluster is replaced", "vpc is new".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        because: Option<String>,
    },
}

/// One affected unit.
#[derive(Clone, Debug, Serialize)]
pub struct AffectedUnit {
    pub environment: String,
    pub pipeline: String,
    pub stack: String,
    pub stack_name: String,
    pub account: String,
    pub region: String,
    pub change: Change,
    pub reasons: Vec<Reason>,
}

/// The result of comparing two revisions.
#[derive(Clone, Debug, Serialize)]
pub struct AffectedReport {
    pub version: u32,
    pub base: RevisionInfo,
    pub head: RevisionInfo,
    /// Paths that differ between the revisions.
    pub changed_paths: Vec<String>,
    /// Environments with at least one affected unit, sorted.
    pub environments: Vec<String>,
    /// Affected units: by environment, then in dependency order (removals last).
    pub units: Vec<AffectedUnit>,
    /// Problems in the head revision's config for the environments looked at.
    #[serde(skip)]
    pub diags: Diagnostics,
    #[serde(skip)]
    pub texts: SourceMap,
}

impl AffectedReport {
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }
}

/// Compares two revisions of the config repository, which lives at `prefix` inside the git
/// repository (`""` for its root). Files are parsed once per content through `cache`, which a
/// long-running caller can keep between comparisons.
pub fn affected(
    repo: &Repository,
    prefix: &str,
    base_rev: &str,
    head_rev: &str,
    cache: &ParseCache,
) -> Result<AffectedReport, AffectedError> {
    Ok(compare(repo, prefix, base_rev, head_rev, cache)?.report)
}

/// A comparison of two revisions: the report, and the desired state at each revision of the
/// environments the change reaches (for planning them).
pub struct Comparison {
    pub report: AffectedReport,
    pub before: BTreeMap<String, DesiredEnvironment>,
    pub after: BTreeMap<String, DesiredEnvironment>,
}

/// Like [`affected`], keeping the desired state of both revisions.
pub fn compare(
    repo: &Repository,
    prefix: &str,
    base_rev: &str,
    head_rev: &str,
    cache: &ParseCache,
) -> Result<Comparison, AffectedError> {
    let base = Revision::resolve(repo, base_rev)?;
    let head = Revision::resolve(repo, head_rev)?;
    let changed = git::changed_paths(repo, &base, &head, prefix)?;
    let base_src = base.source(repo, prefix)?;
    let head_src = head.source(repo, prefix)?;
    let mut base_l = Loader::new(&base_src, cache);
    let mut head_l = Loader::new(&head_src, cache);

    let candidates = candidate_environments(&changed, &mut [&mut base_l, &mut head_l])?;
    let head_pipelines = head_l.pipeline_names()?;
    let base_pipelines = if candidates.is_empty() {
        Vec::new()
    } else {
        base_l.pipeline_names()?
    };

    let mut units = Vec::new();
    let mut diags = Diagnostics::new();
    let mut checks = PipelineChecks::default();
    let mut befores = BTreeMap::new();
    let mut afters = BTreeMap::new();
    // Other environments whose outputs the head's take: resolved for that, each once. Their
    // changes do not affect the environments taking their outputs (read when planning).
    let mut linked = crate::config::Resolved::new();
    for env in &candidates {
        let before = resolve(&mut base_l, &mut checks, env, &base_pipelines)?;
        let mut after = resolve(&mut head_l, &mut checks, env, &head_pipelines)?;
        if let Some(d) = after.desired.as_mut()
            && !d.remote.refs.is_empty()
        {
            let names = head_l.environment_names()?;
            after.diags.extend(crate::config::link_through(
                d,
                &mut head_l,
                &names,
                &head_pipelines,
                &mut linked,
            )?);
        }
        let base_state = match (&before.desired, before.exists) {
            (_, false) => BaseState::Absent,
            (Some(_), true) if !before.diags.has_errors() => BaseState::Valid,
            _ => BaseState::Invalid,
        };
        units.extend(compare_environment(
            before.desired.as_ref(),
            base_state,
            after.desired.as_ref(),
        ));
        diags.extend(after.diags);
        if let Some(d) = before.desired {
            befores.insert(env.clone(), d);
        }
        if let Some(d) = after.desired {
            afters.insert(env.clone(), d);
        }
    }
    let mut all = std::mem::take(&mut head_l.diags);
    all.extend(diags);
    let environments: BTreeSet<String> = units.iter().map(|u| u.environment.clone()).collect();
    let report = AffectedReport {
        version: AFFECTED_JSON_VERSION,
        base: RevisionInfo {
            rev: base.name.clone(),
            commit: base.id(),
        },
        head: RevisionInfo {
            rev: head.name.clone(),
            commit: head.id(),
        },
        changed_paths: changed,
        environments: environments.into_iter().collect(),
        units,
        diags: all,
        texts: std::mem::take(&mut head_l.texts),
    };
    Ok(Comparison {
        report,
        before: befores,
        after: afters,
    })
}

/// One environment at one revision.
struct EnvState {
    /// Whether the environment file exists.
    exists: bool,
    /// The desired state, when the environment and its pipeline could be read.
    desired: Option<DesiredEnvironment>,
    /// Every problem found in the environment, its pipeline and its templates.
    diags: Diagnostics,
}

/// How the base revision stands for an environment.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BaseState {
    /// The environment does not exist at base: everything at head is new.
    Absent,
    /// It exists but does not validate: nothing at head can be shown to be unchanged.
    Invalid,
    Valid,
}

/// The diagnostics of each pipeline checked so far, by the address of the loaded pipeline
/// (loaders keep their pipelines for as long as they live). Many environments share a pipeline.
#[derive(Default)]
struct PipelineChecks(HashMap<usize, Diagnostics>);

impl PipelineChecks {
    fn of(&mut self, p: &Arc<Pipeline>) -> &Diagnostics {
        self.0
            .entry(Arc::as_ptr(p) as usize)
            .or_insert_with(|| check_pipeline(p))
    }
}

fn resolve(
    loader: &mut Loader<'_>,
    checks: &mut PipelineChecks,
    env: &str,
    pipelines: &[String],
) -> Result<EnvState, SourceError> {
    let env_file = format!("{ENVIRONMENTS_DIR}/{env}/{ENVIRONMENT_FILE}");
    let Some(e) = loader.environment(env)? else {
        return Ok(EnvState {
            exists: loader.source().exists(&env_file)?,
            desired: None,
            diags: loader.diags_for(&[&env_file]),
        });
    };
    let p = loader.pipeline(&e.def.pipeline)?;
    let pipeline_file = format!("{PIPELINES_DIR}/{}/{PIPELINE_FILE}", e.def.pipeline.value);
    let mut files: Vec<&str> = vec![&env_file, &pipeline_file];
    if let Some(p) = &p {
        files.extend(p.template_files());
    }
    let mut diags = loader.diags_for(&files);
    if let Some(p) = &p {
        diags.extend(checks.of(p).clone());
    }
    let (desired, d) = resolve_environment(&e, p.as_deref(), pipelines);
    diags.extend(d);
    Ok(EnvState {
        exists: true,
        desired,
        diags,
    })
}

/// The environments a set of changed paths can reach, at either revision.
fn candidate_environments(
    changed: &[String],
    loaders: &mut [&mut Loader<'_>],
) -> Result<BTreeSet<String>, SourceError> {
    let mut out = BTreeSet::new();
    let mut other_paths = Vec::new();
    for path in changed {
        let parts: Vec<&str> = path.splitn(3, '/').collect();
        match parts.as_slice() {
            [dir, env, _] if *dir == ENVIRONMENTS_DIR => {
                out.insert(env.to_string());
            }
            [dir, ..] if *dir == ENVIRONMENTS_DIR => {}
            _ => other_paths.push(path.as_str()),
        }
    }
    if other_paths.is_empty() {
        return Ok(out);
    }
    // A path outside environments/ reaches a pipeline when it is the pipeline's file, lies in
    // its directory, or is one of its templates (which may live anywhere in the repository).
    for loader in loaders.iter_mut() {
        let mut touched: BTreeSet<String> = BTreeSet::new();
        for name in loader.pipeline_names()? {
            let dir = format!("{PIPELINES_DIR}/{name}/");
            let mut reached = other_paths.iter().any(|p| p.starts_with(&dir));
            if !reached && let Some(p) = loader.pipeline(&name)? {
                reached = p.template_files().any(|f| other_paths.contains(&f));
            }
            if reached {
                touched.insert(name);
            }
        }
        if touched.is_empty() {
            continue;
        }
        for env in loader.environment_names()? {
            if let Some(e) = loader.environment(&env)?
                && touched.contains(e.def.pipeline.as_str())
            {
                out.insert(env);
            }
        }
    }
    Ok(out)
}

fn unit_row(
    env: &DesiredEnvironment,
    u: &Unit,
    change: Change,
    reasons: Vec<Reason>,
) -> AffectedUnit {
    AffectedUnit {
        environment: env.name.clone(),
        pipeline: env.pipeline.clone(),
        stack: u.stack.clone(),
        stack_name: u.stack_name.clone(),
        account: u.account.clone(),
        region: u.region.clone(),
        change,
        reasons,
    }
}

/// Whether two units are the same CloudFormation stack.
fn same_stack(a: &Unit, b: &Unit) -> bool {
    a.stack_name == b.stack_name && a.account == b.account && a.region == b.region
}

/// The nested templates of the repository that are new or changed from `a` to `b`.
fn nested_changes(a: &TemplateRef, b: &TemplateRef) -> Vec<Reason> {
    let (TemplateRef::Local { nested: na, .. }, TemplateRef::Local { nested: nb, .. }) = (a, b)
    else {
        return Vec::new();
    };
    nb.iter()
        .filter(|n| {
            !na.iter()
                .any(|m| m.resource_path == n.resource_path && m.key == n.key)
        })
        .map(|n| Reason::NestedTemplate {
            resource: n.resource_path.clone(),
            path: n.path.clone(),
        })
        .collect()
}

/// The differences in desired state between two versions of one stack.
fn unit_changes(a: &Unit, b: &Unit) -> Vec<Reason> {
    let mut out = Vec::new();
    if !a.template.same_content(&b.template) {
        let nested = nested_changes(&a.template, &b.template);
        if nested.is_empty() || !a.template.same_own_content(&b.template) {
            out.push(Reason::Template {
                before: a.template.location().to_string(),
                after: b.template.location().to_string(),
            });
        }
        out.extend(nested);
    }
    let names: BTreeSet<&String> = a.parameters.keys().chain(b.parameters.keys()).collect();
    for name in names {
        let (pa, pb) = (a.parameters.get(name), b.parameters.get(name));
        if pa.map(|p| &p.value) == pb.map(|p| &p.value) {
            continue;
        }
        let secret = pa.is_some_and(|p| p.no_echo) || pb.is_some_and(|p| p.no_echo);
        let show = |p: Option<&crate::desired::ParamSetting>| {
            p.map(|p| {
                if secret && !p.display().eq(&p.value.to_string()) {
                    MASK.to_string()
                } else if secret {
                    p.display()
                } else {
                    p.value.to_string()
                }
            })
        };
        out.push(Reason::Parameter {
            name: name.clone(),
            before: show(pa),
            after: show(pb),
        });
    }
    let keys: BTreeSet<&String> = a.tags.keys().chain(b.tags.keys()).collect();
    for key in keys {
        let (ta, tb) = (a.tags.get(key), b.tags.get(key));
        if ta != tb {
            out.push(Reason::Tag {
                key: key.clone(),
                before: ta.cloned(),
                after: tb.cloned(),
            });
        }
    }
    if a.capabilities != b.capabilities {
        let list = |u: &Unit| u.capabilities.iter().map(|c| c.to_string()).collect();
        out.push(Reason::Capabilities {
            before: list(a),
            after: list(b),
        });
    }
    out.extend(option_changes(&a.options, &b.options));
    if a.imports != b.imports {
        out.push(Reason::Import {
            resources: b.imports.keys().cloned().collect(),
        });
    }
    out
}

/// The stack options that differ between two versions of a stack, as set in the config.
fn option_changes(a: &StackOptions, b: &StackOptions) -> Vec<Reason> {
    let (ja, jb) = (serde_json::json!(a), serde_json::json!(b));
    let keys: BTreeSet<&String> = ja
        .as_object()
        .into_iter()
        .chain(jb.as_object())
        .flat_map(|o| o.keys())
        .collect();
    let show = |v: Option<&serde_json::Value>| {
        v.map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    keys.into_iter()
        .filter(|k| ja.get(k.as_str()) != jb.get(k.as_str()))
        .map(|k| Reason::Option {
            name: k.clone(),
            before: show(ja.get(k.as_str())),
            after: show(jb.get(k.as_str())),
        })
        .collect()
}

/// Compares one environment at two revisions.
fn compare_environment(
    before: Option<&DesiredEnvironment>,
    base: BaseState,
    after: Option<&DesiredEnvironment>,
) -> Vec<AffectedUnit> {
    let mut direct: BTreeMap<String, AffectedUnit> = BTreeMap::new();
    let mut removed = Vec::new();
    if let Some(b) = before {
        for (key, u) in &b.units {
            let detail = match after.map(|a| a.units.get(key)) {
                None => format!("environment `{}` leaves the config", b.name),
                Some(None) => format!(
                    "stack `{key}` is no longer deployed in environment `{}` (removed from the pipeline or disabled)",
                    b.name
                ),
                Some(Some(n)) if !same_stack(u, n) => {
                    format!("replaced by {} in {}/{}", n.stack_name, n.account, n.region)
                }
                Some(Some(_)) => continue,
            };
            removed.push(unit_row(
                b,
                u,
                Change::Removed,
                vec![Reason::Removed { detail }],
            ));
        }
    }
    let Some(a) = after else {
        return removed;
    };
    for (key, u) in &a.units {
        let old = before.and_then(|b| b.units.get(key));
        let (change, reasons) = match old {
            _ if base == BaseState::Invalid => (Change::Modified, vec![Reason::BaseInvalid]),
            None => (
                Change::Added,
                vec![Reason::Added {
                    detail: if before.is_none() {
                        format!("environment `{}` is new", a.name)
                    } else {
                        format!("stack `{key}` is new in environment `{}`", a.name)
                    },
                }],
            ),
            Some(o) if !same_stack(o, u) => (
                Change::Added,
                vec![Reason::Added {
                    detail: format!("replaces {} in {}/{}", o.stack_name, o.account, o.region),
                }],
            ),
            Some(o) => {
                let r = unit_changes(o, u);
                if r.is_empty() {
                    continue;
                }
                (Change::Modified, r)
            }
        };
        direct.insert(key.clone(), unit_row(a, u, change, reasons));
    }

    // Dependants: the units taking an input from an affected unit that may change.
    let mut affected = propagation::reach(before, a, direct);

    // Dependency order, then removals.
    let mut ordered: Vec<AffectedUnit> = a
        .in_order()
        .into_iter()
        .filter_map(|key| affected.remove(key))
        .collect();
    ordered.extend(removed);
    ordered
}
