//! Desired state: what one stack of one environment (a "unit") should look like according to
//! one revision of the config — template, parameters (expressions with variables and environment
//! facts filled in; stack outputs and SSM values still references), tags, name, account, region,
//! capabilities — and the dependency order of an environment's units.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub mod remote;
mod secret_outputs;

use indexmap::IndexMap;
use serde::Serialize;

use crate::config::expr::{Expr, Reference, Segment};
use crate::diag::Loc;
use crate::graph::Graph;
use crate::template::Capability;
use crate::template::Template;
use crate::template::conditions::Conditions;
use crate::template::evaluate::StackFacts;

mod hooks;
mod imports;
mod options;
pub use hooks::{Hook, Hooks, Phase};
pub use imports::Import;
pub use options::{
    ALLOW_ALL_POLICY, DeployedOptions, OnFailure, OptionChange, OptionKind, Rollback, StackOptions,
};

/// Shown instead of secret values.
pub const MASK: &str = "****";

/// One environment of one revision, resolved.
#[derive(Clone, Debug)]
pub struct DesiredEnvironment {
    pub name: String,
    pub pipeline: String,
    pub account: String,
    pub region: String,
    pub role_arn: Option<String>,
    pub artifact_bucket: Option<String>,
    /// Apply may delete stacks that leave the config without `--allow-delete`.
    pub allow_delete: bool,
    /// The enabled stacks, in pipeline order.
    pub units: IndexMap<String, Unit>,
    /// Dependencies between the units (same order as `units`).
    pub graph: Graph,
    /// Manual steps in the order: apply does not start a gate's `before` stacks until the gate
    /// is passed (`formwork continue`).
    pub gates: Vec<Gate>,
    /// Which policy rules apply to the environment (`policies:` in environment.yml).
    pub policies: PolicyChoice,
    /// What a pull request must meet before it is applied here (`apply_requirements:`).
    pub apply_requirements: ApplyRequirements,
    /// Where its apply and drift notifications go (`notifications:` in environment.yml).
    pub notifications: Vec<crate::config::notifications::Notification>,
    /// The outputs of other environments' stacks its parameters take (`${env:…}`).
    pub remote: remote::Remote,
}

/// An environment's apply requirements (docs/apply-requirements.md). The default: none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ApplyRequirements {
    pub approved: Option<Approval>,
    /// Mergeable on GitHub (checked before merging only).
    pub mergeable: bool,
    /// Contains the head of its base branch (checked before merging only).
    pub undiverged: bool,
}

impl ApplyRequirements {
    /// No requirement at all.
    pub fn is_empty(&self) -> bool {
        self.approved.is_none() && !self.mergeable && !self.undiverged
    }
}

/// Which approving reviews a pull request needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Approval {
    /// Reviewers who must approve.
    pub count: u32,
    /// Only members of these teams count, as `org/slug` or `slug` (the repository's
    /// organization); empty: anyone.
    pub teams: Vec<String>,
    /// Each changed file with code owners needs an approval by one of them.
    pub codeowners: bool,
    /// Only approvals of the head commit count.
    pub dismiss_stale: bool,
}

/// An environment's choice of policy rules, with where each name was written.
#[derive(Clone, Debug, Default)]
pub struct PolicyChoice {
    /// The rule files that apply, by file name; `None`: every one.
    pub files: Option<Vec<(String, Loc)>>,
    /// Severity by rule name in this environment.
    pub severity: BTreeMap<String, (crate::config::RuleSeverity, Loc)>,
}

impl DesiredEnvironment {
    /// Where its stacks live, for an AWS session.
    pub fn target(&self) -> crate::aws::Target<'_> {
        crate::aws::Target {
            environment: &self.name,
            account: &self.account,
            region: &self.region,
            role_arn: self.role_arn.as_deref(),
        }
    }
}

/// A manual step in an environment's deployment order, with only enabled stacks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gate {
    pub name: String,
    /// What someone must do before apply goes on.
    pub message: String,
    /// Stacks applied before the gate is reached.
    pub after: Vec<String>,
    /// Stacks that wait for the gate.
    pub before: Vec<String>,
}

/// The desired state of one stack in one environment.
#[derive(Clone, Debug)]
pub struct Unit {
    pub environment: String,
    /// The stack's key in the pipeline.
    pub stack: String,
    /// The CloudFormation stack name.
    pub stack_name: String,
    /// Where the stack name was decided: its `stack_name:` or the pipeline's stack key.
    pub name_loc: Loc,
    pub account: String,
    pub region: String,
    pub template: TemplateRef,
    pub parameters: BTreeMap<String, ParamSetting>,
    pub tags: BTreeMap<String, String>,
    pub capabilities: BTreeSet<Capability>,
    pub dependencies: Vec<Dependency>,
    /// How long apply waits for one operation on this stack, when configured.
    pub timeout_minutes: Option<u64>,
    /// Service role, termination protection, stack policy, notification topics, rollback
    /// triggers, what a failed creation leaves.
    pub options: StackOptions,
    /// Commands apply runs before and after it creates or updates the stack.
    pub hooks: Hooks,
    /// Resources it adopts from outside CloudFormation, by logical id.
    pub imports: BTreeMap<String, Import>,
}

/// The template of a unit.
#[derive(Clone, Debug)]
pub enum TemplateRef {
    /// A file of the config repository. When it nests templates of the repository,
    /// `template` is the text CloudFormation receives: their `TemplateURL`s replaced by the
    /// URLs `nested` are uploaded to.
    Local {
        path: String,
        template: Arc<Template>,
        nested: Arc<[NestedTemplate]>,
    },
    /// A template CloudFormation fetches by URL (variables filled in).
    Url { url: String },
}

/// A template of the repository that a unit's template nests (at any depth), as uploaded.
#[derive(Clone, Debug)]
pub struct NestedTemplate {
    /// The nested stack resources leading to it from the unit's template, e.g. `App/Db`.
    pub resource_path: String,
    /// The file it comes from.
    pub path: String,
    /// Its key in the environment's artifact bucket (named by its content).
    pub key: String,
    /// The URL its parent names it by.
    pub url: String,
    /// The template as uploaded (its own children's URLs filled in).
    pub template: Arc<Template>,
}

impl TemplateRef {
    /// Whether two templates have the same content: the same parsed file, the same canonical
    /// digest, or the same URL.
    pub fn same_content(&self, other: &TemplateRef) -> bool {
        match (self, other) {
            (TemplateRef::Local { template: a, .. }, TemplateRef::Local { template: b, .. }) => {
                Arc::ptr_eq(a, b) || a.digest() == b.digest()
            }
            (TemplateRef::Url { url: a }, TemplateRef::Url { url: b }) => a == b,
            _ => false,
        }
    }

    /// Whether two templates are the same apart from where their nested templates are
    /// uploaded to: whether the template itself changed, not only a child.
    pub fn same_own_content(&self, other: &TemplateRef) -> bool {
        let own = |t: &TemplateRef| {
            t.parsed().map(|t| {
                let mut v = t.value().clone();
                for n in t.nested_stacks() {
                    crate::template::nested::set_template_url(
                        &mut v,
                        &n.resource,
                        serde_json::Value::Null,
                    );
                }
                crate::template::canonical_json(&v)
            })
        };
        match (own(self), own(other)) {
            (Some(a), Some(b)) => a == b,
            _ => self.same_content(other),
        }
    }

    /// Where the template comes from: its path or URL.
    pub fn location(&self) -> &str {
        match self {
            TemplateRef::Local { path, .. } => path,
            TemplateRef::Url { url } => url,
        }
    }

    pub fn parsed(&self) -> Option<&Template> {
        match self {
            TemplateRef::Local { template, .. } => Some(template),
            TemplateRef::Url { .. } => None,
        }
    }
}

/// A parameter's value and where it was set.
#[derive(Clone, Debug)]
pub struct ParamSetting {
    pub value: Expr,
    /// The template declares the parameter NoEcho: its literal text is never shown.
    pub no_echo: bool,
    /// Set by the pipeline's `defaults.parameters` alone. A template given by URL (whose
    /// parameters are known only once it is read, when planning) gets it only if it declares it.
    pub from_defaults: bool,
    pub loc: Loc,
}

impl ParamSetting {
    /// The value for display: the expression, or [`MASK`] for NoEcho parameters unless the
    /// value is only references (`${ssm:/path}` names where a secret is, not the secret).
    pub fn display(&self) -> String {
        let only_refs = self
            .value
            .segments
            .iter()
            .all(|s| matches!(s, Segment::Ref(_)));
        if self.no_echo && !only_refs {
            MASK.to_string()
        } else {
            self.value.to_string()
        }
    }
}

/// Why a unit comes after another.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DependencyKind {
    /// It takes one of the other's outputs.
    Output { output: String },
    /// It lists the other under `needs:`.
    Needs,
    /// It takes the other's stack name (`${stack.stack_name}`), to import its exports.
    StackName,
    /// Its template imports (`Fn::ImportValue`) the export `export` of the other's output
    /// `output`.
    Import { export: String, output: String },
    /// It reads (`${ssm:name}`) the SSM parameter `name` that the other creates (its resource
    /// `resource`).
    SsmParameter { name: String, resource: String },
}

#[derive(Clone, Debug)]
pub struct Dependency {
    pub stack: String,
    pub kind: DependencyKind,
    pub loc: Loc,
}

impl Unit {
    /// A digest of everything that makes up this unit's desired state: stack name, account,
    /// region, template content (or URL), parameter expressions, tags, capabilities, stack
    /// options, hooks and resources to import. A plan
    /// records it; apply refuses when the config has moved since.
    pub fn config_hash(&self) -> String {
        let template = match &self.template {
            TemplateRef::Local { template, .. } => format!("sha256:{}", template.digest()),
            TemplateRef::Url { url } => url.clone(),
        };
        let mut doc = serde_json::json!({
            "stack_name": self.stack_name,
            "account": self.account,
            "region": self.region,
            "template": template,
            "parameters": self.parameters.iter().map(|(k, v)| (k.clone(), v.value.to_string())).collect::<BTreeMap<_, _>>(),
            "tags": self.tags,
            "capabilities": self.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        });
        // Left out when none is set, so that the digests of stacks without options stay as
        // they were before options existed.
        if self.options != StackOptions::default() {
            doc["options"] = serde_json::json!(self.options);
        }
        if !self.hooks.is_empty() {
            doc["hooks"] = serde_json::json!(self.hooks);
        }
        if !self.imports.is_empty() {
            doc["import"] = serde_json::json!(self.imports);
        }
        crate::template::sha256_hex(crate::template::canonical_json(&doc).as_bytes())
    }

    /// Adds dependencies, keeping them sorted by stack and kind, each once.
    pub fn add_dependencies(&mut self, more: impl IntoIterator<Item = Dependency>) {
        self.dependencies.extend(more);
        self.dependencies
            .sort_by(|a, b| (&a.stack, &a.kind).cmp(&(&b.stack, &b.kind)));
        self.dependencies
            .dedup_by(|a, b| a.stack == b.stack && a.kind == b.kind);
    }

    /// What is known of the stack before it is deployed, to work out names and conditions of
    /// its template: parameters set to plain values (NoEcho ones left out) or defaulted by its
    /// template, its stack name, account and region.
    pub fn known_facts(&self) -> StackFacts {
        let mut parameters = BTreeMap::new();
        if let Some(t) = self.template.parsed() {
            for (name, decl) in &t.parameters {
                if let Some(default) = &decl.default
                    && !decl.no_echo
                {
                    parameters.insert(name.clone(), default.clone());
                }
            }
        }
        for (name, setting) in &self.parameters {
            match setting.value.as_literal() {
                Some(v) if !setting.no_echo => parameters.insert(name.clone(), v),
                _ => parameters.remove(name),
            };
        }
        StackFacts {
            parameters,
            stack_name: self.stack_name.clone(),
            account: self.account.clone(),
            region: self.region.clone(),
        }
    }

    /// The conditions of its template as far as the config decides them ([`Unit::known_facts`];
    /// all unknown for a template given by URL).
    pub fn conditions(&self) -> Conditions {
        match self.template.parsed() {
            Some(t) => Conditions::of(t, &self.known_facts()),
            None => Conditions::unknown(),
        }
    }

    /// The references to other stacks' outputs in this unit's parameters.
    pub fn output_inputs(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for p in self.parameters.values() {
            for r in p.value.references() {
                if let Reference::Output { stack, output } = r {
                    out.insert((stack.clone(), output.clone()));
                }
            }
        }
        out
    }
}

impl DesiredEnvironment {
    /// The units in waves of dependency order, by stack key.
    pub fn waves(&self) -> Vec<Vec<&str>> {
        self.graph
            .waves()
            .into_iter()
            .map(|w| w.into_iter().map(|i| self.graph.name(i)).collect())
            .collect()
    }

    /// Every unit's key, in dependency order: wave by wave, then the units on a cycle (which
    /// have no wave) in pipeline order.
    pub fn in_order(&self) -> Vec<&str> {
        let mut order: Vec<&str> = self.waves().into_iter().flatten().collect();
        let placed: BTreeSet<&str> = order.iter().copied().collect();
        order.extend(
            self.units
                .keys()
                .map(String::as_str)
                .filter(|k| !placed.contains(k)),
        );
        order
    }
}
