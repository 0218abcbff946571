//! The config repository: `pipelines/<name>/pipeline.yml` (systems of stacks and their wiring)
//! and `environments/<name>/environment.yml` (where and with which values each is deployed).
//!
//! [`model`] holds the file formats ([`notifications`] the `notifications:` block and its
//! checks), [`expr`] the `${…}` expressions, [`load`] reads files from a
//! source, [`resolve`] turns an environment into desired state while checking it, [`link`]
//! checks what it takes from other environments against them, and [`validate_repository`]
//! checks a whole revision at once.

mod expand;
pub mod expr;
mod link;
mod load;
mod model;
pub mod notifications;
mod resolve;

pub use link::{Resolved, link_through};
pub use load::{
    ENVIRONMENT_FILE, ENVIRONMENTS_DIR, Environment, Loader, PIPELINE_FILE, PIPELINES_DIR,
    ParseCache, Pipeline, StackTemplate, is_url,
};
pub use model::{
    Defaults, EnvironmentFile, EnvironmentPolicies, GateDef, HookDef, HooksDef, InstanceDef,
    OnFailure, ParamValue, PipelineFile, PoliciesFile, RollbackDef, RuleSeverity, StackDef,
    StackOptionsDef, StackOverride, VarDecl,
};
pub use resolve::{apply_requirements, check_pipeline, resolve_environment};

pub(crate) use load::parse_yaml;

use std::collections::HashMap;

use crate::desired::DesiredEnvironment;
use crate::diag::{Diagnostic, Diagnostics, Severity, SourceMap};
use crate::source::{Source, SourceError};

/// A whole revision of the config repository, checked.
pub struct Validation {
    pub pipelines: Vec<String>,
    /// The environments that resolved (possibly with errors in some stacks).
    pub environments: Vec<DesiredEnvironment>,
    /// The environments whose file is there but which did not resolve (a file that does not
    /// parse, a pipeline that does not exist), each with its first error (`file:line:col:
    /// message`).
    pub unresolved: Vec<(String, String)>,
    pub diags: Diagnostics,
    pub texts: SourceMap,
}

/// Loads and checks every pipeline and environment of a source, and checks across
/// environments that no two deploy a stack of the same name to the same account and region.
pub fn validate_repository(source: &dyn Source) -> Result<Validation, SourceError> {
    let cache = ParseCache::default();
    let mut loader = Loader::new(source, &cache);
    let pipelines = loader.pipeline_names()?;
    let mut diags = Diagnostics::new();
    for name in &pipelines {
        if let Some(p) = loader.pipeline(name)? {
            diags.extend(check_pipeline(&p));
        }
    }
    let env_names = loader.environment_names()?;
    if env_names.is_empty() && pipelines.is_empty() {
        diags.push(
            Diagnostic::error(format!(
                "{} holds no {PIPELINES_DIR}/<name>/{PIPELINE_FILE} and no {ENVIRONMENTS_DIR}/<name>/{ENVIRONMENT_FILE}",
                source.describe()
            ))
            .help("point --repo at the config repository (the directory holding pipelines/ and environments/)"),
        );
    } else if env_names.is_empty() {
        diags.push(
            Diagnostic::warning(format!(
                "no environments found: there is no {ENVIRONMENTS_DIR}/<name>/{ENVIRONMENT_FILE}"
            ))
            .help("add an environment to deploy a pipeline (see docs/config.md)"),
        );
    }
    let mut environments = Vec::new();
    let mut unresolved = Vec::new();
    for name in &env_names {
        let Some(env) = loader.environment(name)? else {
            unresolved.push((name.clone(), vec![format!("{ENVIRONMENTS_DIR}/{name}/")]));
            continue;
        };
        let pipeline = loader.pipeline(&env.def.pipeline)?;
        let (desired, d) = resolve_environment(&env, pipeline.as_deref(), &pipelines);
        diags.extend(d);
        match desired {
            Some(desired) => environments.push(desired),
            None => unresolved.push((
                name.clone(),
                vec![
                    format!("{ENVIRONMENTS_DIR}/{name}/"),
                    format!("{PIPELINES_DIR}/{}/", env.def.pipeline.value),
                ],
            )),
        }
    }
    diags.extend(link::link_all(&mut environments, &env_names));
    check_unique_stack_names(&environments, &mut diags);
    let (policy_diags, policy_texts) = crate::policy::validate(source, &environments)?;
    diags.extend(policy_diags);
    loader.texts.merge(&policy_texts);
    let mut all = std::mem::take(&mut loader.diags);
    all.extend(diags);
    let unresolved = unresolved
        .into_iter()
        .map(|(name, dirs)| {
            let first = all
                .sorted()
                .into_iter()
                .filter(|d| d.severity == Severity::Error)
                .find(|d| {
                    d.loc
                        .as_ref()
                        .is_some_and(|l| dirs.iter().any(|dir| l.file.starts_with(dir.as_str())))
                })
                .map(|d| d.short())
                .unwrap_or_else(|| "the environment does not resolve".to_string());
            (name, first)
        })
        .collect();
    Ok(Validation {
        pipelines,
        environments,
        unresolved,
        diags: all,
        texts: std::mem::take(&mut loader.texts),
    })
}

/// One environment of a source, loaded and resolved, with its pipeline checked.
pub struct EnvironmentCheck {
    /// The desired state; `None` when the environment file is missing or does not resolve.
    pub desired: Option<DesiredEnvironment>,
    /// Every environment of the source (for a suggestion when the name is wrong).
    pub names: Vec<String>,
    pub diags: Diagnostics,
    pub texts: SourceMap,
}

impl EnvironmentCheck {
    /// Whether the environment asked for is in the source at all (it may still not parse).
    pub fn exists(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}

/// Loads environment `name` of a source and its pipeline, checks the pipeline and resolves the
/// environment: what `graph` shows and what apply deploys, without checking the rest.
pub fn check_environment(source: &dyn Source, name: &str) -> Result<EnvironmentCheck, SourceError> {
    let cache = ParseCache::default();
    let mut loader = Loader::new(source, &cache);
    let names = loader.environment_names()?;
    let pipelines = loader.pipeline_names()?;
    let mut desired = None;
    let mut diags = Diagnostics::new();
    if let Some(env) = loader.environment(name)? {
        let pipeline = loader.pipeline(&env.def.pipeline)?;
        if let Some(p) = &pipeline {
            diags.extend(check_pipeline(p));
        }
        let (resolved, d) = resolve_environment(&env, pipeline.as_deref(), &pipelines);
        diags.extend(d);
        desired = resolved;
        if let Some(desired) = desired.as_mut() {
            let mut others = Resolved::new();
            diags.extend(link_through(
                desired,
                &mut loader,
                &names,
                &pipelines,
                &mut others,
            )?);
        }
    }
    let mut all = std::mem::take(&mut loader.diags);
    all.extend(diags);
    Ok(EnvironmentCheck {
        desired,
        names,
        diags: all,
        texts: std::mem::take(&mut loader.texts),
    })
}

/// Two units with the same stack name in the same account and region would fight over one
/// CloudFormation stack.
fn check_unique_stack_names(envs: &[DesiredEnvironment], diags: &mut Diagnostics) {
    let mut seen: HashMap<(&str, &str, &str), (&str, &str)> = HashMap::new();
    for env in envs {
        for u in env.units.values() {
            let key = (u.account.as_str(), u.region.as_str(), u.stack_name.as_str());
            if let Some((other_env, other_stack)) = seen.get(&key) {
                diags.push(
                    Diagnostic::error(format!(
                        "stack name `{}` in account {} region {} is used twice: by `{}` in environment `{}` and by `{other_stack}` in environment `{other_env}`",
                        u.stack_name, u.account, u.region, u.stack, u.environment
                    ))
                    .at(u.name_loc.clone())
                    .help("give one of them another `stack_name`, or deploy the environments to different accounts or regions"),
                );
            } else {
                seen.insert(key, (&u.environment, &u.stack));
            }
        }
        // formwork knows an environment's stacks by name; one name in two regions of one
        // environment would be two stacks it could not tell apart.
        let mut regions: HashMap<&str, (&str, &str)> = HashMap::new();
        for u in env.units.values() {
            match regions.get(u.stack_name.as_str()) {
                Some((region, other)) if *region != u.region => diags.push(
                    Diagnostic::error(format!(
                        "stack name `{}` is used by `{}` in region {} and by `{other}` in region {region}, both in environment `{}`",
                        u.stack_name, u.stack, u.region, u.environment
                    ))
                    .at(u.name_loc.clone())
                    .help("give one of them another `stack_name`: the stacks of an environment have names of their own, whatever their region"),
                ),
                Some(_) => {}
                None => {
                    regions.insert(&u.stack_name, (&u.region, &u.stack));
                }
            }
        }
    }
}
