//! Resolving an environment against its pipeline into desired state: the environment's fields,
//! its pipeline (which must exist), variables, the stacks it deploys, a unit for each, the
//! dependencies through exports and imports and through SSM parameters one creates and another
//! reads, the dependency graph between them and the gates
//! that apply.

use std::collections::BTreeSet;

use indexmap::IndexMap;

use super::conditional_outputs::check_conditional_outputs;
use super::cycles::Edges;
use super::declared::known_facts;
use super::enabled::{check_choices, enabled_stacks};
use super::exports::wire_imports;
use super::fields::env_field_checks;
use super::overrides::{check_disabled_overrides, check_override_keys};
use super::requirements::apply_requirements;
use super::scope::Scope;
use super::ssm_written::wire_ssm_parameters;
use super::stack_name::resolve_stack_names;
use super::unit::resolve_unit;
use super::variables::resolve_variables;
use crate::config::load::{Environment, Pipeline};
use crate::desired::{DesiredEnvironment, Gate, Unit};
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::graph::Graph;
use crate::suggest;
use crate::yaml::Spanned;

/// Resolves an environment against its pipeline into desired state. `pipeline` is `None` when
/// the environment's pipeline does not exist (reported here, with the known names).
pub fn resolve_environment(
    env: &Environment,
    pipeline: Option<&Pipeline>,
    known_pipelines: &[String],
) -> (Option<DesiredEnvironment>, Diagnostics) {
    let mut d = Diagnostics::new();
    env_field_checks(env, &mut d);
    let Some(p) = pipeline else {
        report_missing_pipeline(env, known_pipelines, &mut d);
        return (None, d);
    };
    let mut scope = Scope::new(env);
    resolve_variables(p, env, &mut scope, &mut d);
    check_override_keys(p, env, &mut d);
    let enabled = enabled_stacks(p, env);
    check_choices(p, env, &enabled, &mut d);
    let names = resolve_stack_names(p, env, &scope, &enabled, &mut d);
    scope.set_stack_names(names);
    let mut units = resolve_units(p, env, &scope, &enabled, &mut d);
    let facts = known_facts(&units);
    wire_imports(env, &mut units, &facts, &mut d);
    wire_ssm_parameters(env, &mut units, &facts, &mut d);
    check_conditional_outputs(env, &units, &facts, &mut d);
    check_disabled_overrides(p, env, &enabled, &mut d);
    let graph = unit_graph(&units, &mut d);
    let desired = DesiredEnvironment {
        name: env.name.clone(),
        pipeline: p.name.clone(),
        account: env.def.account.value.clone(),
        region: env.def.region.value.clone(),
        role_arn: env.def.role_arn.as_ref().map(|r| r.value.clone()),
        artifact_bucket: env.def.artifact_bucket.as_ref().map(|b| b.value.clone()),
        allow_delete: env.def.allow_delete.as_ref().is_some_and(|b| b.value),
        gates: gates(p, &units),
        policies: policy_choice(env),
        apply_requirements: apply_requirements(env, &mut d),
        notifications: crate::config::notifications::check(
            &env.file,
            &env.def.notifications,
            &mut d,
        ),
        remote: crate::desired::remote::Remote {
            refs: scope.take_remote(),
            stacks: Default::default(),
        },
        units,
        graph,
    };
    (Some(desired), d)
}

/// The environment's `policies:`, with where each name was written.
fn policy_choice(env: &Environment) -> crate::desired::PolicyChoice {
    let Some(p) = &env.def.policies else {
        return Default::default();
    };
    let loc = |span| Loc::new(&env.file, span);
    crate::desired::PolicyChoice {
        files: p.files.as_ref().map(|files| {
            files
                .iter()
                .map(|f| (f.value.clone(), loc(f.span)))
                .collect()
        }),
        severity: p
            .severity
            .iter()
            .map(|(k, v)| (k.value.clone(), (v.value, loc(k.span))))
            .collect(),
    }
}

/// Reports an environment's pipeline that does not exist, naming those that do. A pipeline
/// that exists but could not be read is not reported here: its own errors say why.
fn report_missing_pipeline(env: &Environment, known_pipelines: &[String], d: &mut Diagnostics) {
    if known_pipelines.contains(&env.def.pipeline.value) {
        return;
    }
    let near = suggest::nearest(
        &env.def.pipeline,
        known_pipelines.iter().map(String::as_str),
    );
    d.push(
        Diagnostic::error(format!(
            "environment `{}` uses pipeline `{}`, which does not exist",
            env.name, env.def.pipeline.value
        ))
        .at(Loc::new(&env.file, env.def.pipeline.span))
        .label_opt(near.map(|n| format!("did you mean `{n}`?")))
        .help(if known_pipelines.is_empty() {
            "there are no pipelines; add pipelines/<name>/pipeline.yml".to_string()
        } else {
            format!("pipelines: {}", known_pipelines.join(", "))
        }),
    );
}

/// A unit for every enabled stack that resolves, in pipeline order.
fn resolve_units(
    p: &Pipeline,
    env: &Environment,
    scope: &Scope<'_>,
    enabled: &BTreeSet<String>,
    d: &mut Diagnostics,
) -> IndexMap<String, Unit> {
    let mut units = IndexMap::new();
    for (key, stack) in &p.def.stacks {
        if !enabled.contains(key.as_str()) {
            continue;
        }
        if let Some(u) = resolve_unit(p, env, scope, key, stack, enabled, d) {
            units.insert(key.value.clone(), u);
        }
    }
    units
}

/// The dependency graph of the units. Output references set in the environment can close
/// cycles the pipeline alone does not; they are reported.
fn unit_graph(units: &IndexMap<String, Unit>, d: &mut Diagnostics) -> Graph {
    let mut edges = Edges::new(units.keys().cloned());
    for u in units.values() {
        for dep in &u.dependencies {
            edges.add(&u.stack, &dep.stack, &dep.loc);
        }
    }
    for diag in edges.cycle_diagnostics() {
        d.push(diag);
    }
    edges.into_graph()
}

/// The pipeline's gates, limited to the units deployed; a gate with nothing behind it is left
/// out.
fn gates(p: &Pipeline, units: &IndexMap<String, Unit>) -> Vec<Gate> {
    let deployed = |keys: &[Spanned<String>]| -> Vec<String> {
        keys.iter()
            .filter(|k| units.contains_key(k.as_str()))
            .map(|k| k.value.clone())
            .collect()
    };
    p.def
        .gates
        .iter()
        .map(|(name, g)| Gate {
            name: name.value.clone(),
            message: g.message.clone(),
            after: deployed(&g.after),
            before: deployed(&g.before),
        })
        .filter(|g| !g.before.is_empty())
        .collect()
}
