//! The two kinds of config file, as typed structs: `pipelines/<name>/pipeline.yml` and
//! `environments/<name>/environment.yml`. Unknown keys are rejected. The doc comments here are
//! the field documentation of the generated JSON Schema (`formwork schema`).

use crate::template::Capability;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::yaml::Spanned;

/// A map from names to values that remembers where each name and value was written.
pub type SpannedMap<V> = IndexMap<Spanned<String>, Spanned<V>>;

/// A pipeline: the stacks that make up a system, their templates and how they are wired.
/// Lives at `pipelines/<name>/pipeline.yml`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "formwork pipeline")]
pub struct PipelineFile {
    /// The pipeline's name. Must equal the name of the directory under `pipelines/`.
    pub pipeline: Spanned<String>,
    /// What the system is, for people reading the config.
    #[serde(default)]
    pub description: Option<String>,
    /// Variables that environments set (`vars:` in environment.yml) and expressions read as
    /// `${var.NAME}`. An environment may only set variables declared here.
    #[serde(default)]
    pub vars: IndexMap<Spanned<String>, VarDecl>,
    /// Settings applied to every stack of the pipeline.
    #[serde(default)]
    pub defaults: Defaults,
    /// The stacks of the system, by key. A key is what expressions use (`${vpc.VpcId}`) and,
    /// by default, the end of the CloudFormation stack name (`<environment>-<key>`). Keys use
    /// letters, digits and hyphens.
    pub stacks: IndexMap<Spanned<String>, StackDef>,
    /// Points in the deployment order that apply stops at until someone confirms the manual
    /// step they stand for (`formwork continue GATE`, or `/formwork continue GATE` on the pull
    /// request), by gate name.
    #[serde(default)]
    pub gates: IndexMap<Spanned<String>, GateDef>,
    /// Nested stack templates published at a URL and kept in this repository too, as
    /// `URL prefix: directory` (the directory relative to the pipeline directory). A nested
    /// stack whose `TemplateURL` starts with the prefix is read from the directory, checked
    /// and uploaded like one given by a relative path, so a template that names its children
    /// by their published URLs works unchanged.
    #[serde(default)]
    pub published_templates: IndexMap<Spanned<String>, Spanned<String>>,
}

/// A manual step in the deployment order.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GateDef {
    /// What someone must do before apply goes on (shown when apply stops at the gate).
    pub message: String,
    /// Stacks that must be applied before the gate is reached (the manual step needs them).
    #[serde(default)]
    pub after: Vec<Spanned<String>>,
    /// Stacks that wait for the gate: apply does not start them until it is passed.
    pub before: Vec<Spanned<String>>,
}

/// A variable declaration.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VarDecl {
    /// What the variable means.
    #[serde(default)]
    pub description: Option<String>,
    /// The value used when an environment does not set the variable. Without a default, every
    /// environment of the pipeline must set it. May use `${env.…}`, other variables (without
    /// cycles) and what a stack parameter may (`${stack.Output}`, `${stack.stack_name}`,
    /// `${ssm:/path}`, `${secretsmanager:…}`, `${external:…}`, `${env:…}`); a parameter that
    /// uses such a variable takes those references, while tags, stack names, template URLs and
    /// stack options may use only variables whose value is text known from the config.
    #[serde(default)]
    pub default: Option<Spanned<ParamValue>>,
}

/// Settings applied to every stack of a pipeline.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Parameter values given to every stack whose template declares the parameter (stacks
    /// whose template does not declare it are left alone). A stack's own `parameters` win.
    #[serde(default)]
    pub parameters: SpannedMap<ParamValue>,
    /// Tags put on every stack. A stack's own `tags` win.
    #[serde(default)]
    pub tags: SpannedMap<String>,
    /// The CloudFormation stack name of every stack that names none itself, as a pattern in
    /// which `${stack}` stands for the stack key: `shop-${env.name}-${stack}` keeps an existing
    /// naming scheme. May use `${var.NAME}` and `${env.…}`; must use `${stack}`. Default
    /// `${env.name}-${stack}`.
    #[serde(default)]
    pub stack_name: Option<Spanned<String>>,
    /// Stack options of every stack: service role, termination protection, stack policy,
    /// notification topics, rollback triggers, what a failed creation leaves. A stack's own
    /// `options` win, field by field.
    #[serde(default)]
    pub options: StackOptionsDef,
}

/// One stack of a pipeline.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StackDef {
    /// The CloudFormation template: a path relative to the pipeline directory (JSON or YAML),
    /// or an `https://` or `s3://` URL.
    pub template: Spanned<String>,
    /// What this stack is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Values for the template's parameters. Strings may hold expressions: `${stack.Output}`
    /// (an output of another stack of the same environment; makes that stack a dependency),
    /// `${stack.stack_name}` (its CloudFormation stack name; a dependency too), `${var.NAME}`, `${env.name}`, `${env.region}`, `${env.account}`, `${ssm:/path}`. A list
    /// is passed comma-joined. Write `$${` for a literal `${`.
    #[serde(default)]
    pub parameters: SpannedMap<ParamValue>,
    /// Stacks that must be deployed before this one although no output flows from them.
    #[serde(default)]
    pub needs: Vec<Spanned<String>>,
    /// Tags for the stack (CloudFormation propagates them to the resources it creates). Values
    /// may use `${var.NAME}` and `${env.…}`.
    #[serde(default)]
    pub tags: SpannedMap<String>,
    /// Capabilities acknowledged for this stack. When left out, formwork acknowledges what the
    /// template needs (IAM resources: `CAPABILITY_IAM`, named IAM resources:
    /// `CAPABILITY_NAMED_IAM`, transforms: `CAPABILITY_AUTO_EXPAND`); when given, it must cover
    /// what the template needs.
    #[serde(default)]
    pub capabilities: Option<Vec<Spanned<Capability>>>,
    /// The CloudFormation stack name. Defaults to the pipeline's `defaults.stack_name` pattern,
    /// else `<environment>-<key>`. May use `${var.NAME}` and `${env.name}`.
    #[serde(default)]
    pub stack_name: Option<Spanned<String>>,
    /// The AWS region of this stack when it is not the environment's (a certificate for
    /// CloudFront in `us-east-1`, a replica in a second region). The stack is planned, applied
    /// and checked for drift there, with the environment's account and role; its `${ssm:…}` and
    /// `${secretsmanager:…}` values are read there. Other stacks take its outputs as from any
    /// stack (`${stack.Output}`); `Fn::ImportValue` cannot cross regions.
    #[serde(default)]
    pub region: Option<Spanned<String>>,
    /// Whether environments get this stack unless they say otherwise (default `true`). Set
    /// `false` for optional stacks that environments switch on.
    #[serde(default)]
    pub enabled: Option<Spanned<bool>>,
    /// How long apply waits for one operation on this stack before reporting it timed out
    /// (the operation itself goes on). Default: apply's `--timeout`.
    #[serde(default)]
    pub timeout_minutes: Option<Spanned<u64>>,
    /// Deploy this stack once per instance, each a stack of its own: `instances: {general: {},
    /// cache: {enabled: false}}` makes the stacks `<key>-general` and `<key>-cache`, which
    /// expressions (`${<key>-general.Output}`), `needs` and environments (`stacks:`) name like
    /// any other. An instance's parameters and tags win over the stack's; `${instance}` in the
    /// stack's parameters, tags, stack name and template stands for the instance's name.
    #[serde(default)]
    pub instances: Option<IndexMap<Spanned<String>, InstanceDef>>,
    /// Deploy this stack `count` times: instances named `1` to `count` (stacks `<key>-1`, …),
    /// as with `instances`. Environments switch instances off (or on, with `enabled: false`
    /// here and `enabled: true` there) by their stack key.
    #[serde(default)]
    pub count: Option<Spanned<u32>>,
    /// Alternatives: stacks that name the same choice replace each other, and every
    /// environment must enable exactly one of them (`enabled` here and in the environment).
    #[serde(default)]
    pub choice: Option<Spanned<String>>,
    /// Stack options of this stack (see [`StackOptionsDef`]); they win over the pipeline's
    /// `defaults.options`, field by field.
    #[serde(default)]
    pub options: StackOptionsDef,
    /// Commands apply runs before and after it creates or updates this stack (not for stacks
    /// with no changes, never for plans). See docs/hooks.md for what they get and the trust
    /// model.
    #[serde(default)]
    pub hooks: HooksDef,
    /// Resources that exist outside CloudFormation and that this stack adopts: by the logical
    /// id the template gives them, the properties that identify the existing resource
    /// (`BucketName: shop-logs`). Planned as an IMPORT change set until the stack has them.
    /// Each needs a `DeletionPolicy` in the template. Values may use `${var.NAME}` and
    /// `${env.…}`; an environment's `import` wins by logical id.
    #[serde(default)]
    pub import: IndexMap<Spanned<String>, IndexMap<Spanned<String>, Spanned<String>>>,
}

/// Commands run around a stack's apply, each with `sh -c` in a checkout of the commit applied.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HooksDef {
    /// Run in order before the stack's change set is executed; one that fails (exits non-zero
    /// or times out) fails the stack, which is then not changed.
    #[serde(default)]
    pub before_apply: Option<Vec<HookDef>>,
    /// Run in order after the stack was created or updated successfully; one that fails fails
    /// the stack (its change stays) and the stacks that depend on it are skipped.
    #[serde(default)]
    pub after_apply: Option<Vec<HookDef>>,
}

/// One command of a hook.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HookDef {
    /// The command line, run with `sh -c` in the config repository's root as of the commit
    /// applied. May use `${var.NAME}` and `${env.…}`; the stack's facts and outputs come as
    /// environment variables (`FORMWORK_STACK_NAME`, `FORMWORK_OUTPUT_<Name>`, …).
    pub run: Spanned<String>,
    /// How long the command may run before it is stopped and counts as failed (default 600,
    /// at most 3600).
    #[serde(default)]
    pub timeout_seconds: Option<Spanned<u64>>,
}

/// The options CloudFormation keeps on a stack beside its template, parameters and tags. Each
/// one left out is not managed: formwork leaves what the stack has. Set at four levels, the
/// later winning field by field: the pipeline's `defaults.options`, the stack's `options`, the
/// environment's `options`, the environment's `stacks.<key>.options`. Text values may use
/// `${var.NAME}` and `${env.…}`. See docs/config.md, "Stack options".
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StackOptionsDef {
    /// The IAM role CloudFormation assumes to change the stack's resources (`RoleARN`), as an
    /// ARN, passed with every change set; formwork's own role then needs `iam:PassRole` on it.
    /// CloudFormation keeps a stack's role until another is given, and deletes the stack
    /// with it.
    #[serde(default)]
    pub service_role: Option<Spanned<String>>,
    /// Refuse deletion of the stack (`EnableTerminationProtection`). Not part of a change set:
    /// formwork compares and sets it itself, after the change set of the stack is executed.
    #[serde(default)]
    pub termination_protection: Option<Spanned<bool>>,
    /// The stack policy: which updates CloudFormation refuses on which resources, as the
    /// policy document written in YAML (`Statement:` with `Effect`, `Action`, `Principal`,
    /// `Resource`). Compared with the stack's (GetStackPolicy) and set by formwork after the
    /// change set is executed. A stack policy cannot be removed, only replaced.
    #[serde(default)]
    pub stack_policy: Option<Spanned<serde_json::Value>>,
    /// A policy that stands in for `stack_policy` while formwork executes an update of the
    /// stack, to let through a change the stack policy refuses; `stack_policy` is set again
    /// when the update ends, whether it succeeded or not (and by the next apply, were formwork
    /// stopped in between). Needs `stack_policy`.
    #[serde(default)]
    pub stack_policy_during_update: Option<Spanned<serde_json::Value>>,
    /// SNS topics CloudFormation sends the stack's events to (`NotificationARNs`, at most 5).
    /// An empty list removes every topic.
    #[serde(default)]
    pub notification_arns: Option<Vec<Spanned<String>>>,
    /// Rollback triggers: CloudWatch alarms CloudFormation watches during an operation on the
    /// stack and for `monitoring_minutes` after it, rolling back when one goes off
    /// (`RollbackConfiguration`).
    #[serde(default)]
    pub rollback: Option<RollbackDef>,
    /// What a creation that fails leaves (`OnStackFailure` of a change set that creates the
    /// stack): `rollback` (default: the stack is left in ROLLBACK_COMPLETE), `delete` (the
    /// stack is deleted, so the next plan creates it anew) or `do_nothing` (the resources made
    /// so far are kept, to find out what failed).
    #[serde(default)]
    pub on_failure: Option<Spanned<OnFailure>>,
}

/// Rollback triggers of a stack.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackDef {
    /// The ARNs of CloudWatch alarms (`arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME`), at most
    /// 5. An empty list removes every trigger.
    #[serde(default)]
    pub alarms: Vec<Spanned<String>>,
    /// How long CloudFormation keeps watching the alarms after an operation's resources are
    /// done, 0 to 180 minutes (default 0).
    #[serde(default)]
    pub monitoring_minutes: Option<Spanned<u32>>,
}

/// What a stack creation that fails leaves.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Roll the creation back; the stack stays, in ROLLBACK_COMPLETE.
    Rollback,
    /// Delete the stack.
    Delete,
    /// Leave the stack and what it created as the failure left them.
    DoNothing,
}

impl OnFailure {
    /// CloudFormation's name for it (`OnStackFailure`).
    pub fn as_cfn(self) -> &'static str {
        match self {
            OnFailure::Rollback => "ROLLBACK",
            OnFailure::Delete => "DELETE",
            OnFailure::DoNothing => "DO_NOTHING",
        }
    }
}

/// One instance of a stack deployed several times.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceDef {
    /// What this instance is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Whether environments get this instance unless they say otherwise (default: the stack's
    /// `enabled`).
    #[serde(default)]
    pub enabled: Option<Spanned<bool>>,
    /// Parameter values of this instance; they win over the stack's.
    #[serde(default)]
    pub parameters: SpannedMap<ParamValue>,
    /// Tags of this instance; they win over the stack's.
    #[serde(default)]
    pub tags: SpannedMap<String>,
}

/// A parameter value: a string (numbers and booleans are read as written) or a list of them,
/// passed to CloudFormation comma-joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamValue {
    Scalar(String),
    List(Vec<String>),
}

impl JsonSchema for ParamValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ParamValue".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A string (may hold ${…} expressions), a number or a boolean; or a list of them, passed comma-joined.",
            "anyOf": [
                {"type": ["string", "number", "boolean"]},
                {"type": "array", "items": {"type": ["string", "number", "boolean"]}}
            ]
        })
    }
}

impl ParamValue {
    /// The value as CloudFormation receives it.
    pub fn joined(&self) -> String {
        match self {
            ParamValue::Scalar(s) => s.clone(),
            ParamValue::List(items) => items.join(","),
        }
    }
}

impl<'de> Deserialize<'de> for ParamValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ParamValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, a number, a boolean or a list of them")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ParamValue, E> {
                Ok(ParamValue::Scalar(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<ParamValue, E> {
                Ok(ParamValue::Scalar(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ParamValue, E> {
                Ok(ParamValue::Scalar(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ParamValue, E> {
                Ok(ParamValue::Scalar(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ParamValue, E> {
                Ok(ParamValue::Scalar(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ParamValue, A::Error> {
                let mut items = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    items.push(s);
                }
                Ok(ParamValue::List(items))
            }
        }
        d.deserialize_any(V)
    }
}

/// An environment: one deployment of a pipeline into an AWS account and region, with its
/// values. Lives at `environments/<name>/environment.yml`; the directory name is the
/// environment's name.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "formwork environment")]
pub struct EnvironmentFile {
    /// The pipeline this environment deploys (a directory under `pipelines/`).
    pub pipeline: Spanned<String>,
    /// What this environment is, for people reading the config.
    #[serde(default)]
    pub description: Option<String>,
    /// The 12-digit AWS account id. Quote it: other YAML tools read an unquoted id as a number
    /// and drop leading zeros. formwork refuses to act when the credentials belong to another
    /// account.
    pub account: Spanned<String>,
    /// The AWS region, e.g. `ap-southeast-2`.
    pub region: Spanned<String>,
    /// An IAM role formwork assumes to deploy this environment.
    #[serde(default)]
    pub role_arn: Option<Spanned<String>>,
    /// An S3 bucket for templates larger than CloudFormation's 51,200-byte inline limit; they
    /// are uploaded there and passed by URL.
    #[serde(default)]
    pub artifact_bucket: Option<Spanned<String>>,
    /// Values of the pipeline's variables (`${var.NAME}`). A value may use what a variable's
    /// default may: `${env.…}`, other variables, and references read when planning
    /// (`${stack.Output}`, `${ssm:/path}`, …), which only stack parameters can then use.
    #[serde(default)]
    pub vars: SpannedMap<ParamValue>,
    /// Whether apply may delete the stacks of this environment that leave the config, without
    /// being told so with `--allow-delete` (default `false`: removals are refused).
    #[serde(default)]
    pub allow_delete: Option<Spanned<bool>>,
    /// Exports that stacks of this environment import (`Fn::ImportValue`) but that no stack of
    /// it exports: made by stacks deployed some other way. Each entry is an export name, where
    /// `*` stands for any run of characters (`shared-network-*`). An import that neither a stack
    /// of the environment nor this list provides is an error.
    #[serde(default)]
    pub external_exports: Vec<Spanned<String>>,
    /// Tags put on every stack of the environment. They win over the pipeline's tags (its
    /// `defaults.tags` and each stack's `tags`); the environment's per-stack `tags` win over them.
    #[serde(default)]
    pub tags: SpannedMap<String>,
    /// Per-stack settings, by pipeline stack key.
    #[serde(default)]
    pub stacks: IndexMap<Spanned<String>, StackOverride>,
    /// Which policy rules (`policies/*.guard`) apply to this environment's plans, and how hard.
    /// Read from the revision a change is planned against, so a change cannot loosen its own
    /// check (see docs/policy.md).
    #[serde(default)]
    pub policies: Option<EnvironmentPolicies>,
    /// What a pull request must meet before formwork applies it to this environment: approving
    /// reviews, mergeable, up to date with its base. Read from the revision the pull request
    /// targets, so a pull request cannot loosen its own requirements (see
    /// docs/apply-requirements.md).
    #[serde(default)]
    pub apply_requirements: Option<ApplyRequirementsDef>,
    /// Where to tell that an apply of this environment started, succeeded, failed or waits at a
    /// gate, and that `formwork drift` found drift: Slack, a signed webhook or an SNS topic
    /// (see docs/notifications.md). Secrets are named by the variable or SSM parameter that
    /// holds them, never written here. Read from the commit being applied.
    #[serde(default)]
    pub notifications: Vec<Spanned<super::notifications::NotificationTarget>>,
    /// Stack options of every stack of the environment (see [`StackOptionsDef`]); they win
    /// over the pipeline's, field by field, and the environment's `stacks.<key>.options` win
    /// over them.
    #[serde(default)]
    pub options: StackOptionsDef,
}

/// `apply_requirements:` of an environment. Each one named is checked before an apply from a
/// `/formwork apply` comment; `approved` also before the apply of a merged pull request.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequirementsDef {
    /// Approving reviews the pull request must have.
    #[serde(default)]
    pub approved: Option<ApprovedDef>,
    /// The pull request must be mergeable: not a draft, no conflicts, not blocked by branch
    /// protection (checked before merging only).
    #[serde(default)]
    pub mergeable: Option<Spanned<bool>>,
    /// The pull request must contain the head of its base branch, so that what is applied is
    /// what the branch will hold after merging (checked before merging only).
    #[serde(default)]
    pub undiverged: Option<Spanned<bool>>,
}

/// Which approving reviews count. A reviewer's latest review decides (approved, changes
/// requested or dismissed); comments do not.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovedDef {
    /// How many reviewers must approve (default 1).
    #[serde(default)]
    pub count: Option<Spanned<u32>>,
    /// Count only approvals by members of these teams: `team-slug` (of the repository's
    /// organization) or `org/team-slug`. Default: any reviewer.
    #[serde(default)]
    pub teams: Vec<Spanned<String>>,
    /// Every changed file that has code owners (`CODEOWNERS` of the base branch) must be
    /// approved by one of its owners (default `false`).
    #[serde(default)]
    pub codeowners: Option<Spanned<bool>>,
    /// Count only approvals of the pull request's head commit: a push after an approval
    /// needs a new one (default `false`, as GitHub keeps approvals across pushes unless its
    /// branch protection dismisses stale ones).
    #[serde(default)]
    pub dismiss_stale: Option<Spanned<bool>>,
}

/// An environment's choice of policy rules.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentPolicies {
    /// The rule files of `policies/` that apply here, by file name (`network.guard`). Default:
    /// every rule file.
    #[serde(default)]
    pub files: Option<Vec<Spanned<String>>>,
    /// Severity by rule name in this environment; wins over `policies/policies.yml`.
    #[serde(default)]
    pub severity: IndexMap<Spanned<String>, Spanned<RuleSeverity>>,
}

/// What a failing policy rule does.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RuleSeverity {
    /// The plan's check fails and apply refuses the plan.
    #[default]
    Block,
    /// Shown in the plan; nothing is refused.
    Warn,
}

/// `policies/policies.yml`: the severity of the repository's policy rules.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "formwork policies")]
pub struct PoliciesFile {
    /// The severity of every rule not named under `rules` (default `block`).
    #[serde(default)]
    pub severity: Option<Spanned<RuleSeverity>>,
    /// Severity by rule name (the name after `rule` in a `.guard` file).
    #[serde(default)]
    pub rules: IndexMap<Spanned<String>, Spanned<RuleSeverity>>,
}

/// An environment's settings for one stack of its pipeline.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StackOverride {
    /// Switch the stack on or off in this environment (default: the pipeline's `enabled`).
    #[serde(default)]
    pub enabled: Option<Spanned<bool>>,
    /// Parameter values for this environment; they win over the pipeline's.
    #[serde(default)]
    pub parameters: SpannedMap<ParamValue>,
    /// Tags for this stack in this environment; they win over every other tag.
    #[serde(default)]
    pub tags: SpannedMap<String>,
    /// The CloudFormation stack name in this environment.
    #[serde(default)]
    pub stack_name: Option<Spanned<String>>,
    /// The AWS region of this stack in this environment, when it is not the environment's
    /// (see the pipeline stack's `region`); wins over the pipeline's.
    #[serde(default)]
    pub region: Option<Spanned<String>>,
    /// How long apply waits for one operation on this stack in this environment.
    #[serde(default)]
    pub timeout_minutes: Option<Spanned<u64>>,
    /// Stack options of this stack in this environment (see [`StackOptionsDef`]); they win
    /// over every other level, field by field.
    #[serde(default)]
    pub options: StackOptionsDef,
    /// Hooks of this stack in this environment: a phase given here (`before_apply`,
    /// `after_apply`, `[]` for none) replaces the pipeline's for that phase.
    #[serde(default)]
    pub hooks: HooksDef,
    /// Existing resources this stack adopts in this environment, by logical id, with the
    /// properties that identify each (see the pipeline stack's `import`); they win over the
    /// pipeline's by logical id.
    #[serde(default)]
    pub import: IndexMap<Spanned<String>, IndexMap<Spanned<String>, Spanned<String>>>,
}
