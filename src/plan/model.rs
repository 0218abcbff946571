//! The plan: what formwork will do to each stack of each environment, as shown to reviewers and
//! recorded for apply. Built by the live planner (from CloudFormation change sets) or the
//! offline planner (from two revisions of the config), rendered as text, Markdown and JSON.
//!
//! A plan never holds a secret: NoEcho parameter values and SSM SecureString values are masked
//! (`****`) before they are put into it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::evidence::Evidence;

pub use crate::affected::{Reason, RevisionInfo};
pub use crate::desired::{OptionChange, OptionKind};
pub use crate::template::change::{
    ChangeDetail, Replacement, ReplacementSource, RequiresRecreation, ResourceAction,
    ResourceChange, SecurityChange, SecurityChangeKind, SecurityKind,
};

/// The version of the JSON form of a plan (`formwork plan --output json`, plan records).
pub const PLAN_JSON_VERSION: u32 = 1;

/// A whole plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub version: u32,
    /// Unique per planning run.
    pub id: String,
    /// When the plan was made, RFC 3339 in UTC.
    pub created_at: String,
    /// Made without AWS, by comparing two revisions of the config.
    pub offline: bool,
    /// The revision compared against, when only affected stacks are planned.
    pub base: Option<RevisionInfo>,
    /// The revision planned.
    pub head: RevisionInfo,
    /// Environments in name order.
    pub environments: Vec<EnvironmentPlan>,
    /// The policy rules the plan was checked against; `None` when the config has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicySummary>,
}

/// What the plan's stacks were checked against (see docs/policy.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySummary {
    /// The commit the rules were read from: the revision a change is planned against, so that
    /// a change cannot loosen its own check.
    pub rules_from: String,
    /// The rule files read, `policies/network.guard`.
    pub files: Vec<String>,
    /// How many stacks were checked.
    pub stacks_checked: usize,
    /// Problems with the rules at that revision (a rule file that does not parse is left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

pub use crate::config::RuleSeverity;

/// A policy rule that fails on a planned stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule's name.
    pub rule: String,
    /// The rule file, `policies/network.guard`.
    pub file: String,
    /// `block`: the plan's check fails and apply refuses; `warn`: shown only.
    pub severity: RuleSeverity,
    /// The resource's logical id, when the rule looked at one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Where in the template document the rule looked, `/Resources/Sg/Properties/…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The template evaluated (the stack's, or a nested one of the repository).
    pub template: String,
    /// The line and column of `path` in the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// The rule's message (`<< … >>`), or Guard's.
    pub message: String,
    /// Who let the plan through this blocking finding (`/formwork override RULE`, recorded in
    /// the environment's audit trail): it no longer fails the check or refuses apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overridden_by: Option<String>,
}

impl Finding {
    /// Of severity `block` and not overridden: it fails the check and refuses apply.
    pub fn blocks(&self) -> bool {
        self.severity == RuleSeverity::Block && self.overridden_by.is_none()
    }

    /// `template:line:column`, or the template alone.
    pub fn location(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.template),
            _ => self.template.clone(),
        }
    }
}

/// The plan of one environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentPlan {
    pub name: String,
    pub pipeline: String,
    pub account: String,
    pub region: String,
    /// In dependency order; removals last.
    pub units: Vec<UnitPlan>,
    /// The stacks the plan would hold but for a choice of stacks (`--stack`): changed by the
    /// change planned, or every other stack of a plan of all. Applying the plan does not bring
    /// them to its commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
}

/// What happens to one stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A new stack (change set of type CREATE).
    Create,
    /// An existing stack changes (change set of type UPDATE).
    Update,
    /// Nothing to do: CloudFormation found no changes.
    NoChange,
    /// The stack left the config; it is deleted only when apply is allowed to delete.
    Remove,
    /// Cannot be planned yet: an input comes from a stack that does not exist before apply.
    /// Planned again once its inputs are known.
    Pending,
    /// The stack is in a state that prevents changes (`message` says which and what to do).
    Blocked,
    /// Planning failed (`message` says why).
    Failed,
}

impl Action {
    /// Whether this action changes AWS when applied.
    pub fn is_change(self) -> bool {
        matches!(
            self,
            Action::Create | Action::Update | Action::Remove | Action::Pending
        )
    }
}

/// The plan of one stack of one environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitPlan {
    /// The stack's key in the pipeline.
    pub stack: String,
    /// The CloudFormation stack name.
    pub stack_name: String,
    /// The stack's region when it has one of its own; left out when it is the environment's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub action: Action,
    /// Why the stack is in the plan (empty when every stack of the environment is planned).
    pub reasons: Vec<Reason>,
    /// Digest of the stack's desired state; apply refuses when it no longer matches.
    pub config_hash: String,
    /// The change set to execute at apply.
    pub change_set: Option<ChangeSetRef>,
    /// The stack's CloudFormation status when planned (`None`: the stack does not exist).
    pub stack_status: Option<String>,
    /// When the stack was last updated (or created) as seen at plan time, RFC 3339.
    pub last_updated: Option<String>,
    /// The id of the stack's newest event when its change set was made: any operation on the
    /// stack after that makes the change set stale.
    #[serde(default)]
    pub last_event: Option<String>,
    /// Resource changes.
    pub resources: Vec<ResourceChange>,
    /// Parameters whose values change (all parameters for a new stack).
    pub parameters: Vec<ParameterChange>,
    /// IAM and network changes, with a flag when access broadens.
    pub security: Vec<SecurityChange>,
    /// Unified diff of the deployed (or base) template against the new one, normalised so that
    /// formatting and key order do not show; `None` when the templates are the same.
    pub template_diff: Option<String>,
    /// Inputs that are not known until other stacks are applied.
    pub inputs: Vec<Input>,
    /// For blocked, failed and pending stacks: what happened and what to do.
    pub message: Option<String>,
    /// The stacks of the environment this one comes after (it takes their outputs or needs
    /// them). For removed stacks, as they were before removal: they are deleted after the
    /// stacks that depend on them.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// For an update: the outputs that may change, each with why ("Cluster is replaced"),
    /// worked out from the change set and the two templates. `None` when every output may
    /// change (a new stack) or it is not known. Stacks taking other outputs plan with their
    /// values as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changing_outputs: Option<BTreeMap<String, String>>,
    /// For a stack found unchanged: on what evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unchanged_by: Option<Evidence>,
    /// Digest of the desired state with its inputs resolved (see [`super::evidence`]); apply
    /// records it with the stack it leaves. `None` while an input is pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Digest of the stack as described when planned; not kept in the recorded plan.
    #[serde(skip)]
    pub stamp: Option<String>,
    /// The policy rules that fail on this stack.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy: Vec<Finding>,
    /// Stack options whose value changes (service role, termination protection, stack
    /// policy, notification topics, rollback triggers; for a new stack, every one set). An
    /// update may change options alone: it then has no change set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<OptionChange>,
    /// The commands apply runs around this stack's change (its hooks), for reviewers: they
    /// run with the runner's credentials.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<PlannedHook>,
}

/// A hook apply will run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedHook {
    /// `before_apply` or `after_apply`.
    pub phase: String,
    /// The command line.
    pub run: String,
}

/// A change set created for review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSetRef {
    pub name: String,
    /// The change set's ARN.
    pub id: String,
    /// The stack's ARN.
    pub stack_id: Option<String>,
    /// `CREATE` or `UPDATE`.
    pub change_set_type: String,
}

/// A parameter whose value changes (or every parameter of a new stack).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterChange {
    pub name: String,
    /// The deployed value (masked when secret); `None` when the parameter is new.
    pub before: Option<String>,
    /// The new value (masked when secret); `None` when the parameter goes away.
    pub after: Option<String>,
    /// NoEcho or from an SSM SecureString: values are shown as `****`.
    pub secret: bool,
    /// The new value comes from a stack changed in this plan and is known only after apply
    /// (`after` then holds the value deployed today, if any).
    pub known_after_apply: bool,
    /// The expression the value comes from, as written in the config (`${vpc.VpcId}`).
    pub expression: Option<String>,
}

/// An input that is not known yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// The parameter that takes it.
    pub parameter: String,
    /// The reference as written, e.g. `${vpc.VpcId}`.
    pub reference: String,
    /// The stack it comes from.
    pub from_stack: String,
    /// Why it may change: "Cluster is replaced", "vpc is new".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub because: Option<String>,
    /// Written in line: `"state": "pending"` or `"state": "known_after_apply", "current": …`.
    #[serde(flatten)]
    pub state: InputState,
}

/// How much is known of an input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum InputState {
    /// The source stack changes in this plan; the value deployed today was used (masked when
    /// secret).
    KnownAfterApply { current: Option<String> },
    /// The source stack does not exist yet: there is no value to plan with.
    Pending,
}

/// Counts of resource changes, for summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub add: usize,
    pub modify: usize,
    pub remove: usize,
    /// Modified resources that are replaced (`replacement: true`); included in `modify`.
    pub replace: usize,
}

impl UnitPlan {
    /// The plan of a stack with only its action said: no change set, stack status, resources,
    /// parameters, security items, template diff, inputs, message or dependencies yet.
    pub fn bare(stack: &str, stack_name: &str, action: Action, reasons: Vec<Reason>) -> UnitPlan {
        UnitPlan {
            stack: stack.to_string(),
            stack_name: stack_name.to_string(),
            region: None,
            action,
            reasons,
            config_hash: String::new(),
            change_set: None,
            stack_status: None,
            last_updated: None,
            last_event: None,
            resources: Vec::new(),
            parameters: Vec::new(),
            security: Vec::new(),
            template_diff: None,
            inputs: Vec::new(),
            message: None,
            depends_on: Vec::new(),
            changing_outputs: None,
            unchanged_by: None,
            fingerprint: None,
            stamp: None,
            policy: Vec::new(),
            options: Vec::new(),
            hooks: Vec::new(),
        }
    }

    /// An update of the stack's options alone: no change set, only option changes.
    pub fn options_only(&self) -> bool {
        self.action == Action::Update && self.change_set.is_none() && !self.options.is_empty()
    }

    /// Resource change counts of this stack.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for r in &self.resources {
            match r.action {
                ResourceAction::Add | ResourceAction::Import => c.add += 1,
                ResourceAction::Modify | ResourceAction::Dynamic => {
                    c.modify += 1;
                    if r.replacement == Replacement::True {
                        c.replace += 1;
                    }
                }
                ResourceAction::Remove => c.remove += 1,
            }
        }
        c
    }

    /// Whether the stack's plan destroys something: removed or replaced resources, or the
    /// whole stack leaving the config.
    pub fn is_destructive(&self) -> bool {
        self.action == Action::Remove || {
            let c = self.counts();
            c.remove > 0 || c.replace > 0
        }
    }
}

impl Plan {
    /// Whether applying the plan would change anything.
    pub fn has_changes(&self) -> bool {
        self.environments
            .iter()
            .flat_map(|e| &e.units)
            .any(|u| u.action.is_change())
    }

    /// The findings of rules of severity `block`, with the environment and stack of each:
    /// the plan's check fails and apply refuses it.
    /// The findings of severity `block` that nobody overrode.
    pub fn blocking_findings(&self) -> Vec<(&str, &UnitPlan, &Finding)> {
        self.findings().filter(|(_, _, f)| f.blocks()).collect()
    }

    /// Every policy finding, with the environment and stack it is on, in plan order.
    pub fn findings(&self) -> impl Iterator<Item = (&str, &UnitPlan, &Finding)> {
        self.environments
            .iter()
            .flat_map(|e| e.units.iter().map(move |u| (e.name.as_str(), u)))
            .flat_map(|(e, u)| u.policy.iter().map(move |f| (e, u, f)))
    }

    /// Whether the plan's check fails: a stack could not be planned, or a rule of severity
    /// `block` fails.
    pub fn fails_check(&self) -> bool {
        self.has_errors() || !self.blocking_findings().is_empty()
    }

    /// Whether any stack could not be planned (blocked or failed).
    pub fn has_errors(&self) -> bool {
        self.environments
            .iter()
            .flat_map(|e| &e.units)
            .any(|u| matches!(u.action, Action::Blocked | Action::Failed))
    }
}
