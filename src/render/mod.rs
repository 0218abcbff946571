//! Output for people (text) and machines (JSON, Graphviz DOT) of `validate`, `affected` and
//! `graph`. The JSON documents are versioned; their shape is documented in docs/json-output.md.
//! Plans are rendered by [`plan_text`] (terminal) and [`plan_markdown`] (pull requests), with
//! links to the CloudFormation [`console`]; drift reports by [`drift`].

pub mod apply_markdown;
pub mod apply_text;
pub mod console;
pub mod drift;
pub(crate) mod markdown;
pub mod plan_markdown;
pub mod plan_text;
pub mod plan_totals;
pub(crate) mod policy_text;
pub(crate) mod terminal;

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::affected::{AffectedReport, Change, Reason};
use crate::config::Validation;
use crate::desired::{DependencyKind, DesiredEnvironment};
use crate::diag::{DiagnosticJson, Diagnostics, plural};

/// The version of the JSON documents of `validate` and `graph`.
pub const JSON_VERSION: u32 = 1;

fn quoted(v: &Option<String>) -> String {
    match v {
        Some(s) => format!("\"{s}\""),
        None => "(unset)".to_string(),
    }
}

/// One line describing a reason, as shown under an affected unit.
pub fn reason_text(r: &Reason) -> String {
    match r {
        Reason::Added { detail } => detail.clone(),
        Reason::Removed { detail } => {
            format!("{detail}; the stack is not deleted unless apply is allowed to delete")
        }
        Reason::Template { before, after } if before == after => {
            format!("template {after} changed")
        }
        Reason::Template { before, after } => {
            format!("template changed: {before} → {after}")
        }
        Reason::NestedTemplate { resource, path } => {
            format!("nested template {path} ({resource}) changed")
        }
        Reason::Parameter {
            name,
            before: None,
            after,
        } => format!("parameter {name} set to {}", quoted(after)),
        Reason::Parameter {
            name,
            before,
            after: None,
        } => format!("parameter {name} no longer set (was {})", quoted(before)),
        Reason::Parameter {
            name,
            before,
            after,
        } => format!("parameter {name}: {} → {}", quoted(before), quoted(after)),
        Reason::Tag { key, before, after } => {
            format!("tag {key}: {} → {}", quoted(before), quoted(after))
        }
        Reason::Capabilities { before, after } => format!(
            "capabilities: [{}] → [{}]",
            before.join(", "),
            after.join(", ")
        ),
        Reason::Import { resources } if resources.is_empty() => {
            "no resource to import any more".to_string()
        }
        Reason::Import { resources } => {
            format!("resources to import: {}", resources.join(", "))
        }
        Reason::Option {
            name,
            before,
            after: None,
        } => format!(
            "option {name} no longer managed (was {}); the stack keeps it",
            quoted(before)
        ),
        Reason::Option {
            name,
            before,
            after,
        } => format!("option {name}: {} → {}", quoted(before), quoted(after)),
        Reason::BaseInvalid => {
            "the base revision of this environment does not validate, so it counts as changed"
                .to_string()
        }
        Reason::Input {
            reference,
            because: Some(why),
            ..
        } => format!("input {reference} may change: {why}"),
        Reason::Input { reference, .. } => format!("input {reference} may change"),
    }
}

fn change_word(c: Change) -> &'static str {
    match c {
        Change::Added => "added",
        Change::Modified => "modified",
        Change::Dependant => "dependant",
        Change::Removed => "removed",
    }
}

/// The text report of `formwork affected`.
pub fn affected_text(r: &AffectedReport) -> String {
    let mut out = String::new();
    let base = format!("{} ({})", r.base.rev, &r.base.commit[..7]);
    let head = format!("{} ({})", r.head.rev, &r.head.commit[..7]);
    if r.units.is_empty() {
        let _ = writeln!(
            out,
            "No stacks affected between {base} and {head} ({} changed).",
            plural(r.changed_paths.len(), "path")
        );
        return out;
    }
    let _ = writeln!(
        out,
        "Stacks affected between {base} and {head} ({} changed):",
        plural(r.changed_paths.len(), "path")
    );
    let mut current: Option<&str> = None;
    let width = r.units.iter().map(|u| u.stack.len()).max().unwrap_or(0);
    for u in &r.units {
        if current != Some(u.environment.as_str()) {
            current = Some(&u.environment);
            let _ = writeln!(
                out,
                "\n{} (pipeline {}, account {}, region {})",
                u.environment, u.pipeline, u.account, u.region
            );
        }
        let _ = writeln!(
            out,
            "  {:<9}  {:<width$}  {}",
            change_word(u.change),
            u.stack,
            u.stack_name
        );
        for reason in &u.reasons {
            let _ = writeln!(
                out,
                "  {:<9}  {:<width$}    {}",
                "",
                "",
                reason_text(reason)
            );
        }
    }
    let count = |c: Change| r.units.iter().filter(|u| u.change == c).count();
    let mut parts = Vec::new();
    for c in [
        Change::Added,
        Change::Modified,
        Change::Dependant,
        Change::Removed,
    ] {
        let n = count(c);
        if n > 0 {
            parts.push(format!("{n} {}", change_word(c)));
        }
    }
    let _ = writeln!(
        out,
        "\n{} in {}: {}.",
        plural(r.units.len(), "stack"),
        plural(r.environments.len(), "environment"),
        parts.join(", ")
    );
    out
}

/// The JSON report of `formwork affected`.
pub fn affected_json(r: &AffectedReport) -> Value {
    let mut v = serde_json::to_value(r).expect("report serializes");
    v["diagnostics"] = diagnostics_json(&r.diags);
    v
}

pub fn diagnostics_json(d: &Diagnostics) -> Value {
    Value::Array(
        d.sorted()
            .into_iter()
            .map(|d| serde_json::to_value(DiagnosticJson::from(d)).expect("serializes"))
            .collect(),
    )
}

/// The JSON report of `formwork validate`.
pub fn validate_json(v: &Validation, source: &str) -> Value {
    json!({
        "version": JSON_VERSION,
        "source": source,
        "valid": !v.diags.has_errors(),
        "errors": v.diags.error_count(),
        "warnings": v.diags.warning_count(),
        "diagnostics": diagnostics_json(&v.diags),
        "pipelines": v.pipelines,
        "environments": v.environments.iter().map(|e| json!({
            "name": e.name,
            "pipeline": e.pipeline,
            "account": e.account,
            "region": e.region,
            "stacks": e.units.len(),
        })).collect::<Vec<_>>(),
    })
}

/// The one-line summary of a validation.
pub fn validate_summary(v: &Validation) -> String {
    let stacks: usize = v.environments.iter().map(|e| e.units.len()).sum();
    let what = format!(
        "{}, {}, {}",
        plural(v.pipelines.len(), "pipeline"),
        plural(v.environments.len(), "environment"),
        plural(stacks, "stack")
    );
    if v.diags.has_errors() {
        let warnings = match v.diags.warning_count() {
            0 => String::new(),
            n => format!(" and {}", plural(n, "warning")),
        };
        format!(
            "invalid: {}{warnings} in {what}",
            plural(v.diags.error_count(), "error")
        )
    } else if v.diags.warning_count() > 0 {
        format!(
            "valid, with {}: {what}",
            plural(v.diags.warning_count(), "warning")
        )
    } else {
        format!("valid: {what}")
    }
}

/// What a unit waits for from one stack: the outputs it takes, whether it lists the stack under
/// `needs:`, whether it takes the stack's name, the exports it imports.
struct DependsOn {
    stack: String,
    outputs: Vec<String>,
    needs: bool,
    stack_name: bool,
    /// Exports imported: the export's name, the output exported, where the import is written.
    imports: Vec<(String, String, crate::diag::Loc)>,
    /// SSM parameters it reads that the stack creates, by name.
    ssm_parameters: Vec<String>,
}

impl DependsOn {
    /// What is taken from the stack: its outputs, then `stack_name`.
    fn taken(&self) -> Vec<String> {
        let mut taken = self.outputs.clone();
        if self.stack_name {
            taken.push(crate::config::expr::STACK_NAME.into());
        }
        for (export, _, _) in &self.imports {
            taken.push(format!("import {export}"));
        }
        for name in &self.ssm_parameters {
            taken.push(format!("ssm {name}"));
        }
        taken
    }

    /// What is taken, and `needs`, as words: `VpcId, VpcCidr, stack_name, needs`.
    fn what(&self) -> Vec<String> {
        let mut what = self.taken();
        if self.needs {
            what.push("needs".into());
        }
        what
    }
}

/// What a unit waits for: `vpc (VpcId, VpcCidr), rethinkdb (needs)`.
fn dependency_summary(env: &DesiredEnvironment, stack: &str) -> Vec<DependsOn> {
    let mut out: Vec<DependsOn> = Vec::new();
    for dep in &env.units[stack].dependencies {
        let idx = match out.iter().position(|d| d.stack == dep.stack) {
            Some(i) => i,
            None => {
                out.push(DependsOn {
                    stack: dep.stack.clone(),
                    outputs: Vec::new(),
                    needs: false,
                    stack_name: false,
                    imports: Vec::new(),
                    ssm_parameters: Vec::new(),
                });
                out.len() - 1
            }
        };
        match &dep.kind {
            DependencyKind::Output { output } => out[idx].outputs.push(output.clone()),
            DependencyKind::Needs => out[idx].needs = true,
            DependencyKind::StackName => out[idx].stack_name = true,
            DependencyKind::Import { export, output } => {
                out[idx]
                    .imports
                    .push((export.clone(), output.clone(), dep.loc.clone()))
            }
            DependencyKind::SsmParameter { name, .. } => out[idx].ssm_parameters.push(name.clone()),
        }
    }
    out
}

/// The text form of `formwork graph`.
pub fn graph_text(env: &DesiredEnvironment) -> String {
    let mut out = String::new();
    let waves = env.waves();
    let _ = writeln!(
        out,
        "{}: pipeline {}, account {}, region {}: {} in {}",
        env.name,
        env.pipeline,
        env.account,
        env.region,
        plural(env.units.len(), "stack"),
        plural(waves.len(), "wave")
    );
    let width = env.units.keys().map(String::len).max().unwrap_or(0);
    let name_width = env
        .units
        .values()
        .map(|u| u.stack_name.len())
        .max()
        .unwrap_or(0);
    for (i, wave) in waves.iter().enumerate() {
        let _ = writeln!(out, "\nwave {}", i + 1);
        for stack in wave {
            let deps: Vec<String> = dependency_summary(env, stack)
                .into_iter()
                .map(|d| format!("{} ({})", d.stack, d.what().join(", ")))
                .collect();
            let arrow = if deps.is_empty() {
                String::new()
            } else {
                format!("  ← {}", deps.join(", "))
            };
            let line = format!(
                "  {stack:<width$}  {:<name_width$}{arrow}",
                env.units[*stack].stack_name
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    out
}

/// The JSON form of `formwork graph`.
pub fn graph_json(env: &DesiredEnvironment) -> Value {
    let waves = env.waves();
    let wave_of = |s: &str| waves.iter().position(|w| w.contains(&s)).map(|i| i + 1);
    json!({
        "version": JSON_VERSION,
        "environment": env.name,
        "pipeline": env.pipeline,
        "account": env.account,
        "region": env.region,
        "waves": waves,
        "stacks": env.units.values().map(|u| json!({
            "stack": u.stack,
            "stack_name": u.stack_name,
            "wave": wave_of(&u.stack),
            "depends_on": dependency_summary(env, &u.stack).into_iter().map(|d| json!({
                "stack": d.stack,
                "outputs": d.outputs,
                "needs": d.needs,
                "stack_name": d.stack_name,
                "imports": d.imports.iter().map(|(export, output, at)| json!({
                    "export": export,
                    "output": output,
                    "at": at.to_string(),
                })).collect::<Vec<_>>(),
                "ssm_parameters": d.ssm_parameters,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The Graphviz form of `formwork graph`: edges point from a stack to the stacks that wait
/// for it.
pub fn graph_dot(env: &DesiredEnvironment) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", env.name);
    let _ = writeln!(out, "  rankdir=LR;\n  node [shape=box];");
    for u in env.units.values() {
        let _ = writeln!(out, "  \"{}\";", u.stack);
    }
    for u in env.units.values() {
        for d in dependency_summary(env, &u.stack) {
            let taken = d.taken();
            let label = if taken.is_empty() && d.needs {
                " [style=dashed, label=\"needs\"]".to_string()
            } else {
                format!(" [label=\"{}\"]", taken.join("\\n"))
            };
            let _ = writeln!(out, "  \"{}\" -> \"{}\"{label};", d.stack, u.stack);
        }
    }
    out.push_str("}\n");
    out
}
