//! The live planner: a CloudFormation change set for every stack to plan, created in
//! dependency order (a stack waits only for the stacks whose outputs it takes) with a bounded
//! number of calls in flight, and read back into a [`Plan`].
//!
//! Per stack: describe it (its state decides CREATE, UPDATE or blocked); fill in its inputs; if
//! it exists, fetch the deployed template and compare — when template, parameters and tags are
//! what is deployed, there is nothing to plan and no change set is made; otherwise create a
//! change set under a name derived from the commit and the stack's config hash (a re-run finds
//! it), wait for it, and read it, filling in replacement and details that the endpoint leaves
//! out from formwork's own analysis. Empty change sets are deleted; older change sets of the
//! same origin are cleaned up.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared, join_all};

use super::inputs::{self, Resolved, StackCache};
use super::model::*;
use crate::aws::cfn::{
    ChangeSetRequest, ChangeSetSummary, ResourceChangeInfo, StackInfo, TemplateSource,
};
use crate::aws::s3::S3 as S3Client;
use crate::aws::ssm::SsmValues;
use crate::aws::{Aws, AwsError, Session};
use crate::desired::{DependencyKind, DesiredEnvironment, TemplateRef, Unit};
use crate::secrets::{Masker, Value};
use crate::template::{MAX_TEMPLATE_BODY_BYTES, Template, sha256_hex};
use crate::template::{diff, security, text_diff};

/// Prefix of the names of change sets formwork creates.
pub const CHANGE_SET_PREFIX: &str = "formwork-";

/// How a planning run behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// Written into change set descriptions; older change sets of the same origin (the same
    /// branch or pull request) are deleted when a stack is planned again.
    pub origin: String,
    /// How long to wait for one change set.
    pub change_set_timeout: Duration,
    /// Lines of context in template diffs.
    pub diff_context: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            origin: "cli".into(),
            change_set_timeout: Duration::from_secs(900),
            diff_context: 3,
        }
    }
}

/// One environment to plan.
pub struct EnvRequest {
    pub desired: DesiredEnvironment,
    /// The stacks to plan, with why (no reasons when every stack is planned).
    pub units: Vec<(String, Vec<Reason>)>,
    /// Stacks that left the config.
    pub removed: Vec<RemovedUnit>,
    /// Stacks the request would hold but for a choice of stacks.
    pub left_out: Vec<String>,
}

/// A stack that left the config.
#[derive(Clone, Debug)]
pub struct RemovedUnit {
    pub stack: String,
    pub stack_name: String,
    pub reasons: Vec<Reason>,
    /// The stacks it came after while it was in the config.
    pub depends_on: Vec<String>,
}

/// Progress of a planning run, for a display.
pub trait Progress: Send + Sync {
    fn started(&self, environment: &str, stack: &str);
    fn finished(&self, environment: &str, stack: &str, action: Action);
}

/// No progress display.
pub struct Quiet;

impl Progress for Quiet {
    fn started(&self, _: &str, _: &str) {}
    fn finished(&self, _: &str, _: &str, _: Action) {}
}

/// Why a run could not plan at all.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// The change set name for a commit and a stack's config hash.
pub fn change_set_name(commit: &str, config_hash: &str) -> String {
    let c = &commit[..commit.len().min(12)];
    let h = &config_hash[..config_hash.len().min(12)];
    format!("{CHANGE_SET_PREFIX}{c}-{h}")
}

/// The description formwork gives its change sets; [`origin_of`] reads the origin back.
pub fn change_set_description(plan_id: &str, commit: &str, origin: &str) -> String {
    format!("formwork plan {plan_id}; commit {commit}; origin {origin}")
}

/// The origin written into a formwork change set description.
pub fn origin_of(description: &str) -> Option<&str> {
    description
        .strip_prefix("formwork plan ")?
        .split("; ")
        .find_map(|part| part.strip_prefix("origin "))
}

/// Whether a change set was made by a formwork plan of `origin`.
fn made_by(cs: &ChangeSetSummary, origin: &str) -> bool {
    cs.name.starts_with(CHANGE_SET_PREFIX)
        && cs.description.as_deref().and_then(origin_of) == Some(origin)
}

/// Statuses in which a stack cannot take a change set, with what to tell the user.
fn blocked(stack: &StackInfo) -> Option<String> {
    let s = stack.status.as_str();
    let name = &stack.name;
    Some(match s {
        "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" => format!(
            "stack {name} is in {s}: its creation failed and it cannot be updated; delete it (aws cloudformation delete-stack --stack-name {name}) and plan again to create it anew"
        ),
        "UPDATE_ROLLBACK_FAILED" => format!(
            "stack {name} is in UPDATE_ROLLBACK_FAILED: an update failed and so did its rollback; fix the cause, then continue the rollback (aws cloudformation continue-update-rollback --stack-name {name}, skipping resources that cannot roll back with --resources-to-skip) and plan again"
        ),
        "DELETE_FAILED" => format!(
            "stack {name} is in DELETE_FAILED: a deletion failed; delete it again, retaining the resources that cannot be deleted, then plan again"
        ),
        "IMPORT_ROLLBACK_FAILED" => format!(
            "stack {name} is in IMPORT_ROLLBACK_FAILED; resolve the import in the CloudFormation console, then plan again"
        ),
        "REVIEW_IN_PROGRESS" => return None,
        s if s.ends_with("_IN_PROGRESS") => format!(
            "stack {name} is busy ({s}); wait until the running operation finishes and plan again"
        ),
        _ => return None,
    })
}

fn empty_unit(unit: &Unit, reasons: Vec<Reason>) -> UnitPlan {
    UnitPlan {
        depends_on: dependency_names(unit),
        stack: unit.stack.clone(),
        stack_name: unit.stack_name.clone(),
        action: Action::Failed,
        reasons,
        config_hash: unit.config_hash(),
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
    }
}

/// The stacks a unit comes after, by key, each once.
pub fn dependency_names(unit: &Unit) -> Vec<String> {
    unit.dependencies
        .iter()
        .map(|d| d.stack.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The planner of one environment: what every stack of it shares while it is planned (the
/// session, the stacks described so far, the SSM values read). Apply uses one too, to plan stacks
/// whose inputs are known only once the stacks before them are applied.
pub struct Planner {
    env: DesiredEnvironment,
    session: Session,
    stacks: StackCache,
    ssm: SsmValues,
    masker: Arc<Masker>,
    /// The outputs the config makes secret, by stack key.
    secret_outputs: BTreeMap<String, BTreeSet<String>>,
    options: Options,
    plan_id: String,
    commit: String,
    progress: Arc<dyn Progress>,
}

impl Planner {
    /// A planner for `env`, having read (decrypted, in batches of ten) the SSM parameters named.
    #[allow(clippy::too_many_arguments)]
    pub async fn new(
        env: DesiredEnvironment,
        session: Session,
        ssm_names: &[String],
        masker: Arc<Masker>,
        options: Options,
        plan_id: String,
        commit: String,
        progress: Arc<dyn Progress>,
    ) -> Result<Planner, AwsError> {
        let mut names = ssm_names.to_vec();
        names.sort();
        names.dedup();
        let ssm = if names.is_empty() {
            SsmValues::default()
        } else {
            session.ssm.get(&names).await?
        };
        for v in ssm.found.values() {
            if v.secret {
                masker.add(&v.value);
            }
        }
        Ok(Planner {
            secret_outputs: crate::secrets::secret_outputs(&env),
            env,
            session,
            stacks: StackCache::default(),
            ssm,
            masker,
            options,
            plan_id,
            commit,
            progress,
        })
    }

    /// Plans one stack. `upstream` holds the plans of the stacks of this run it takes outputs
    /// from; a stack not in it is read as deployed.
    pub async fn plan_unit(
        &self,
        unit: &Unit,
        reasons: Vec<Reason>,
        upstream: &BTreeMap<String, Arc<UnitPlan>>,
    ) -> UnitPlan {
        plan_unit(self, unit, reasons, upstream).await
    }

    /// Forgets what was read of a stack, so that it is described again (after it changed).
    pub fn forget_stack(&self, stack_name: &str) {
        self.stacks.forget(stack_name);
    }

    /// The environment planned.
    pub fn environment(&self) -> &DesiredEnvironment {
        &self.env
    }
}

/// Plans every requested stack of every environment.
pub async fn plan(
    aws: &Aws,
    masker: Arc<Masker>,
    envs: Vec<EnvRequest>,
    head: RevisionInfo,
    base: Option<RevisionInfo>,
    options: &Options,
    progress: Arc<dyn Progress>,
) -> Result<Plan, PlanError> {
    let created_at = now_rfc3339();
    let id = plan_id(&head.commit, &created_at);
    // The account guard comes first, for every environment, before any other call.
    let mut sessions = Vec::new();
    for e in &envs {
        sessions.push(aws.session(&e.desired.target()).await?);
    }
    let futures = envs.into_iter().zip(sessions).map(|(req, session)| {
        plan_environment(
            req,
            session,
            masker.clone(),
            options.clone(),
            id.clone(),
            head.commit.clone(),
            progress.clone(),
        )
    });
    let mut environments = join_all(futures).await;
    environments.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Plan {
        version: PLAN_JSON_VERSION,
        id,
        created_at,
        offline: false,
        base,
        head,
        environments,
    })
}

/// A plan id: unique per run, readable (`YYYYMMDD-HHMMSS-<hash>`).
pub fn plan_id(commit: &str, created_at: &str) -> String {
    let stamp: String = created_at
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(14)
        .collect();
    let h = sha256_hex(format!("{commit} {created_at} {}", std::process::id()).as_bytes());
    format!(
        "{}-{}-{}",
        &stamp[..8.min(stamp.len())],
        &stamp[8.min(stamp.len())..],
        &h[..8]
    )
}

/// The current time, RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

type SharedPlan = Shared<BoxFuture<'static, Arc<UnitPlan>>>;

async fn plan_environment(
    req: EnvRequest,
    session: Session,
    masker: Arc<Masker>,
    options: Options,
    plan_id: String,
    commit: String,
    progress: Arc<dyn Progress>,
) -> EnvironmentPlan {
    let env = req.desired;
    let left_out = req.left_out;
    let selected: BTreeMap<String, Vec<Reason>> = req.units.into_iter().collect();
    let names: Vec<String> = selected
        .keys()
        .filter_map(|k| env.units.get(k))
        .flat_map(inputs::ssm_names)
        .collect();
    let ctx = match Planner::new(
        env.clone(),
        session,
        &names,
        masker.clone(),
        options,
        plan_id,
        commit,
        progress,
    )
    .await
    {
        Ok(p) => Arc::new(p),
        Err(e) => {
            // Without the SSM values no stack of this environment can be planned.
            let message = masker.scrub(&e.to_string());
            let units = selected
                .iter()
                .filter_map(|(k, reasons)| env.units.get(k).map(|u| (u, reasons.clone())))
                .map(|(u, reasons)| UnitPlan {
                    message: Some(message.clone()),
                    ..empty_unit(u, reasons)
                })
                .collect();
            return EnvironmentPlan {
                name: env.name.clone(),
                pipeline: env.pipeline.clone(),
                account: env.account.clone(),
                region: env.region.clone(),
                units,
                left_out,
            };
        }
    };
    // Each stack waits for the planned stacks whose outputs it takes, and for nothing else.
    let mut futures: HashMap<String, SharedPlan> = HashMap::new();
    for wave in env.graph.waves() {
        for i in wave {
            let key = env.graph.name(i).to_string();
            let Some(reasons) = selected.get(&key) else {
                continue;
            };
            let unit = env.units[&key].clone();
            let deps: Vec<(String, SharedPlan)> = unit
                .dependencies
                .iter()
                .filter(|d| matches!(d.kind, DependencyKind::Output { .. }))
                .filter_map(|d| futures.get(&d.stack).map(|f| (d.stack.clone(), f.clone())))
                .collect();
            let ctx = ctx.clone();
            let reasons = reasons.clone();
            let fut = async move {
                let mut upstream = BTreeMap::new();
                for (name, f) in deps {
                    upstream.insert(name, f.await);
                }
                ctx.progress.started(&ctx.env.name, &unit.stack);
                let p = plan_unit(&ctx, &unit, reasons, &upstream).await;
                ctx.progress.finished(&ctx.env.name, &unit.stack, p.action);
                Arc::new(p)
            }
            .boxed()
            .shared();
            futures.insert(key, fut);
        }
    }
    // Stacks on a dependency cycle have no wave; validation reports them, and they are not
    // planned.
    let keys: Vec<String> = env
        .graph
        .waves()
        .into_iter()
        .flatten()
        .map(|i| env.graph.name(i).to_string())
        .filter(|k| futures.contains_key(k))
        .collect();
    let results = join_all(keys.iter().map(|k| futures[k].clone())).await;
    let mut units: Vec<UnitPlan> = results.into_iter().map(|p| (*p).clone()).collect();
    for r in req.removed {
        units.push(plan_removal(&ctx, r).await);
    }
    EnvironmentPlan {
        name: env.name.clone(),
        pipeline: env.pipeline.clone(),
        account: env.account.clone(),
        region: env.region.clone(),
        units,
        left_out,
    }
}

async fn plan_removal(ctx: &Planner, r: RemovedUnit) -> UnitPlan {
    let stack = ctx.stacks.get(&ctx.session.cfn, &r.stack_name).await;
    let (action, status, last_updated, message) = match stack {
        Ok(Some(s)) => (
            Action::Remove,
            Some(s.status.clone()),
            s.last_updated.clone(),
            "left the config; the stack is deleted only when apply is allowed to delete"
                .to_string(),
        ),
        Ok(None) => (
            Action::NoChange,
            None,
            None,
            "left the config; the stack does not exist, so there is nothing to delete".to_string(),
        ),
        Err(e) => (Action::Failed, None, None, ctx.masker.scrub(&e)),
    };
    UnitPlan {
        stack: r.stack,
        stack_name: r.stack_name,
        action,
        reasons: r.reasons,
        config_hash: String::new(),
        change_set: None,
        stack_status: status,
        last_updated,
        last_event: None,
        resources: Vec::new(),
        parameters: Vec::new(),
        security: Vec::new(),
        template_diff: None,
        inputs: Vec::new(),
        message: Some(message),
        depends_on: r.depends_on,
    }
}

/// A template given by S3 URL, read from S3 with the environment's credentials so that the plan
/// can say what it changes (the change set itself gets the URL). `None` for other URLs, or when
/// it cannot be read (the plan then has no template diff).
async fn fetch_url_template(ctx: &Planner, url: &str) -> Option<Template> {
    let (bucket, key) = crate::aws::s3::parse_s3_url(url)?;
    match ctx.session.s3.get(&bucket, &key).await {
        Ok(Some(bytes)) => {
            let file: Arc<str> = Arc::from(url);
            match Template::parse(&bytes, &file) {
                Ok(t) => Some(t),
                Err(diags) => {
                    let first = diags.first().map(|d| d.short()).unwrap_or_default();
                    tracing::warn!(url, error = %first, "the template at the URL is not a template formwork can read");
                    None
                }
            }
        }
        Ok(None) => {
            tracing::warn!(url, "no template at the URL");
            None
        }
        Err(e) => {
            tracing::warn!(url, error = %e, "could not read the template at the URL");
            None
        }
    }
}

/// The template a stack was deployed with, parsed (`None` for new stacks, or templates that
/// cannot be read).
async fn deployed_template(ctx: &Planner, name: &str) -> Result<Option<Template>, String> {
    let body = ctx
        .session
        .cfn
        .get_template(name)
        .await
        .map_err(|e| e.to_string())?;
    Ok(body.and_then(|b| {
        let file: Arc<str> = Arc::from(format!("deployed template of {name}"));
        Template::parse(b.as_bytes(), &file).ok()
    }))
}

/// The parameter values CloudFormation will use: those set, and template defaults for the rest.
fn effective_parameters(
    resolved: &Resolved,
    template: Option<&Template>,
) -> BTreeMap<String, Value> {
    let mut out: BTreeMap<String, Value> = resolved
        .params
        .iter()
        .filter_map(|p| p.value.clone().map(|v| (p.name.clone(), v)))
        .collect();
    if let Some(t) = template {
        for (name, decl) in &t.parameters {
            if let (false, Some(d)) = (out.contains_key(name), &decl.default) {
                out.insert(
                    name.clone(),
                    Value {
                        text: d.clone(),
                        secret: decl.no_echo,
                    },
                );
            }
        }
    }
    out
}

/// The parameter changes between what is deployed and what is planned. A deployed value that
/// holds a secret (one taken from a secret output before it was known to be one) is masked.
fn parameter_changes(
    resolved: &Resolved,
    deployed: Option<&StackInfo>,
    template: Option<&Template>,
    masker: &Masker,
) -> Vec<ParameterChange> {
    let effective = effective_parameters(resolved, template);
    let mut out = Vec::new();
    let mut names: BTreeSet<&String> = effective.keys().collect();
    if let Some(s) = deployed {
        names.extend(s.parameters.keys());
    }
    for name in names {
        let after = effective.get(name);
        let before = deployed.and_then(|s| s.parameters.get(name));
        let r = resolved.params.iter().find(|p| &p.name == name);
        let secret = after.is_some_and(|v| v.secret)
            || before.is_some_and(|b| b == crate::desired::MASK || masker.holds_secret(b));
        let known_after_apply = r.is_some_and(|r| r.known_after_apply);
        let pending = r.is_some_and(|r| r.value.is_none());
        let same = match (before, after) {
            (Some(b), Some(a)) => !secret && *b == a.text,
            _ => false,
        };
        if same && !known_after_apply {
            continue;
        }
        out.push(ParameterChange {
            name: name.clone(),
            before: before.map(|b| {
                if secret {
                    crate::desired::MASK.to_string()
                } else {
                    b.clone()
                }
            }),
            after: if pending {
                None
            } else {
                after.map(Value::shown)
            },
            secret,
            known_after_apply: known_after_apply || pending,
            expression: r.map(|r| r.expression.clone()),
        });
    }
    out
}

/// The tag that names the commit a stack was last changed by.
pub const COMMIT_TAG: &str = "formwork:commit";

/// The stack's tags as formwork sets them: the config's; which pipeline and environment the
/// stack belongs to; and the commit being planned, when that is safe. CloudFormation puts stack
/// tags on every resource, and some resource types cannot change their tags without being
/// replaced: a stack holding one does not get the commit tag (a new value with every commit
/// would replace that resource every time), nor does a stack whose template formwork cannot
/// read.
pub fn stack_tags(env: &DesiredEnvironment, unit: &Unit, commit: &str) -> Vec<(String, String)> {
    let mut tags: BTreeMap<String, String> = unit.tags.clone();
    tags.insert("formwork:pipeline".into(), env.pipeline.clone());
    tags.insert("formwork:environment".into(), env.name.clone());
    if commit_tag_is_safe(unit) {
        tags.insert(COMMIT_TAG.into(), commit.to_string());
    }
    tags.into_iter().collect()
}

/// Whether every resource of the unit's template can take a changed tag without replacement.
fn commit_tag_is_safe(unit: &Unit) -> bool {
    unit.template.parsed().is_some_and(|t| {
        t.resources.values().all(|r| {
            crate::template::replacement::requires_recreation(&r.type_, "Tags")
                != Some(RequiresRecreation::Always)
        })
    })
}

/// Tags without the commit tag, for comparing what is deployed with what is planned.
fn without_commit(tags: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, String> {
    tags.into_iter().filter(|(k, _)| k != COMMIT_TAG).collect()
}

async fn plan_unit(
    ctx: &Planner,
    unit: &Unit,
    reasons: Vec<Reason>,
    upstream: &BTreeMap<String, Arc<UnitPlan>>,
) -> UnitPlan {
    let mut up = empty_unit(unit, reasons);
    match plan_unit_inner(ctx, unit, upstream, &mut up).await {
        Ok(()) => {}
        Err(message) => {
            up.action = Action::Failed;
            up.message = Some(ctx.masker.scrub(&message));
        }
    }
    up
}

async fn plan_unit_inner(
    ctx: &Planner,
    unit: &Unit,
    upstream: &BTreeMap<String, Arc<UnitPlan>>,
    up: &mut UnitPlan,
) -> Result<(), String> {
    let cfn = &ctx.session.cfn;
    let stack = ctx.stacks.get(cfn, &unit.stack_name).await?;
    up.stack_status = stack.as_ref().map(|s| s.status.clone());
    up.last_updated = stack.as_ref().and_then(|s| s.last_updated.clone());
    if let Some(message) = stack.as_ref().and_then(blocked) {
        up.action = Action::Blocked;
        up.message = Some(message);
        return Ok(());
    }
    let create = stack
        .as_ref()
        .is_none_or(|s| s.status == "REVIEW_IN_PROGRESS");
    let deployed_stack = if create { None } else { stack.as_ref() };

    let fetched = match &unit.template {
        TemplateRef::Url { url } => fetch_url_template(ctx, url).await,
        TemplateRef::Local { .. } => None,
    };
    // A template read by URL gets only the default parameters it declares (which could not be
    // known when the config was checked).
    let trimmed;
    let unit = match &fetched {
        Some(t) => {
            let mut u = unit.clone();
            u.parameters
                .retain(|n, p| !p.from_defaults || t.parameters.contains_key(n));
            trimmed = u;
            &trimmed
        }
        None => unit,
    };
    let taint = inputs::Taint {
        outputs: &ctx.secret_outputs,
        masker: &ctx.masker,
    };
    let resolved =
        inputs::resolve(&ctx.env, unit, cfn, &ctx.stacks, &ctx.ssm, upstream, &taint).await;
    for p in &resolved.params {
        if let Some(v) = &p.value {
            ctx.masker.note(v);
        }
    }
    up.inputs = resolved.inputs.clone();
    if !resolved.errors.is_empty() {
        return Err(resolved.errors.join("; "));
    }
    let desired = unit.template.parsed().or(fetched.as_ref());
    let tags = stack_tags(&ctx.env, unit, &ctx.commit);
    up.parameters = parameter_changes(&resolved, deployed_stack, desired, &ctx.masker);

    // When template, parameters and tags are what is deployed, there is nothing to plan: no
    // change set is made. NoEcho parameters cannot be compared (CloudFormation masks them) and
    // macros change templates on the way in, so those stacks always get a change set.
    let mut deployed: Option<Option<Template>> = None;
    let macros = desired.is_none_or(|d| d.value().get("Transform").is_some());
    if let (Some(s), Some(des), false, false, false) = (
        deployed_stack,
        desired,
        macros,
        resolved.has_no_echo(),
        resolved.pending(),
    ) {
        let dep = deployed_template(ctx, &unit.stack_name).await?;
        let effective = effective_parameters(&resolved, desired);
        let params_same = effective.len() == s.parameters.len()
            && effective
                .iter()
                .all(|(k, v)| s.parameters.get(k) == Some(&v.text));
        let tags_same = without_commit(tags.iter().cloned()) == without_commit(s.tags.clone());
        let template_same = dep
            .as_ref()
            .is_some_and(|d| d.digest() == des.digest() && d.value().get("Transform").is_none());
        if params_same && tags_same && template_same {
            up.action = Action::NoChange;
            up.parameters.clear();
            return Ok(());
        }
        deployed = Some(dep);
    }

    if resolved.pending() {
        let dep = deployed_once(ctx, &unit.stack_name, create, deployed).await?;
        analyse(ctx, up, dep.as_ref(), desired, create);
        up.action = Action::Pending;
        let waits: BTreeSet<&str> = resolved
            .inputs
            .iter()
            .filter(|i| i.state == InputState::Pending)
            .map(|i| i.from_stack.as_str())
            .collect();
        up.message = Some(format!(
            "waits for {} to be created; planned again with its outputs when applied",
            waits.into_iter().collect::<Vec<_>>().join(", ")
        ));
        return Ok(());
    }

    let name = change_set_name(&ctx.commit, &up.config_hash);
    let parameters: Vec<(String, String)> = resolved
        .params
        .iter()
        .filter_map(|p| p.value.as_ref().map(|v| (p.name.clone(), v.text.clone())))
        .collect();
    let template = template_source(ctx, unit).await?;
    let request = ChangeSetRequest {
        stack_name: unit.stack_name.clone(),
        change_set_name: name.clone(),
        create,
        template,
        parameters: parameters.clone(),
        capabilities: unit.capabilities.iter().copied().collect(),
        tags,
        description: change_set_description(&ctx.plan_id, &ctx.commit, &ctx.options.origin),
    };
    let create_and_wait = || async {
        let (id, _) = cfn.create_change_set(&request).await?;
        cfn.wait_change_set(&id, ctx.options.change_set_timeout)
            .await
    };
    let info = match create_and_wait().await {
        Ok(info) => info,
        Err(e)
            if e.code_and_message()
                .is_some_and(|(c, _)| c == Some("AlreadyExistsException")) =>
        {
            // An earlier run of the same commit and config made it. Use it again when it was
            // made with the same inputs after the stack last changed (NoEcho values cannot be
            // compared: then it is made anew).
            let existing = cfn
                .describe_change_set_named(&unit.stack_name, &name)
                .await
                .map_err(|e| e.to_string())?;
            let reusable = !resolved.has_no_echo()
                && existing.status == "CREATE_COMPLETE"
                && existing.execution_status.as_deref() == Some("AVAILABLE")
                && existing.parameters == parameters.iter().cloned().collect::<BTreeMap<_, _>>()
                && !is_later(
                    stack.as_ref().and_then(|s| s.last_updated.as_deref()),
                    existing.creation_time.as_deref(),
                );
            if reusable {
                existing
            } else {
                cfn.delete_change_set_and_wait(&existing.id)
                    .await
                    .map_err(|e| e.to_string())?;
                create_and_wait().await.map_err(|e| e.to_string())?
            }
        }
        Err(e) => return Err(e.to_string()),
    };
    // A change set whose only change is the commit tag (on a stack that could not be compared
    // beforehand, because of its secrets) changes nothing the config asks for.
    let only_commit_tag = !create
        && deployed_stack.is_some_and(|s| {
            without_commit(s.tags.clone()) == without_commit(request.tags.iter().cloned())
        })
        && !info.changes.is_empty()
        && info.changes.iter().all(|c| {
            c.action == "Modify" && !c.scope.is_empty() && c.scope.iter().all(|x| x == "Tags")
        });
    if info.is_empty_failure() || only_commit_tag {
        let _ = cfn.delete_change_set(&info.id).await;
        up.action = Action::NoChange;
        up.parameters.retain(|p| p.known_after_apply);
        return Ok(());
    }
    if info.status == "FAILED" {
        let _ = cfn.delete_change_set(&info.id).await;
        return Err(format!(
            "CloudFormation could not create change set {}: {}",
            info.name,
            info.status_reason.as_deref().unwrap_or("no reason given")
        ));
    }

    // There are changes: read what the stack runs today, for diffs and to fill in what the
    // change set does not say, and clean up change sets of older plans.
    let dep = deployed_once(ctx, &unit.stack_name, create, deployed).await?;
    let offline = analyse(ctx, up, dep.as_ref(), desired, create);
    up.action = if create {
        Action::Create
    } else {
        Action::Update
    };
    up.change_set = Some(ChangeSetRef {
        name: info.name.clone(),
        id: info.id.clone(),
        stack_id: info.stack_id.clone(),
        change_set_type: if create { "CREATE" } else { "UPDATE" }.into(),
    });
    up.resources = merge_changes(&info.changes, &offline, &ctx.masker);
    if let Some(s) = &stack {
        if !create {
            up.last_event = cfn.newest_event_id(&s.stack_id).await.ok().flatten();
        }
        clean_stale(ctx, s, &name).await;
    }
    Ok(())
}

/// The deployed template of a stack: `read` when it was read already, none for a stack being
/// created, else read now.
async fn deployed_once(
    ctx: &Planner,
    stack_name: &str,
    create: bool,
    read: Option<Option<Template>>,
) -> Result<Option<Template>, String> {
    match read {
        Some(d) => Ok(d),
        None if create => Ok(None),
        None => deployed_template(ctx, stack_name).await,
    }
}

/// formwork's own reading of what changes between the deployed and the desired template:
/// security changes and the template diff go into the plan; the resource changes are returned,
/// to stand in for a change set or fill in what one leaves out.
fn analyse(
    ctx: &Planner,
    up: &mut UnitPlan,
    deployed: Option<&Template>,
    desired: Option<&Template>,
    create: bool,
) -> Vec<ResourceChange> {
    let Some(d) = desired else {
        return Vec::new();
    };
    up.security = security::security_changes(deployed, Some(d));
    // A new stack's template is in the change under review already; the resource list says
    // what it creates.
    if !create {
        up.template_diff = text_diff::template_diff(deployed, Some(d), ctx.options.diff_context)
            .map(|t| ctx.masker.scrub(&t));
    }
    let changed: Vec<String> = up.parameters.iter().map(|p| p.name.clone()).collect();
    let offline = diff::resource_changes(deployed, Some(d), &changed);
    if up.action == Action::Pending || up.resources.is_empty() {
        up.resources = offline.clone();
    }
    offline
}

/// Whether time `a` is after time `b` (both RFC 3339); unknown times are not.
fn is_later(a: Option<&str>, b: Option<&str>) -> bool {
    use aws_smithy_types::DateTime;
    use aws_smithy_types::date_time::Format;
    match (a, b) {
        (Some(a), Some(b)) => match (
            DateTime::from_str(a, Format::DateTime),
            DateTime::from_str(b, Format::DateTime),
        ) {
            (Ok(a), Ok(b)) => a > b,
            _ => false,
        },
        _ => false,
    }
}

/// Deletes every change set that plans of `origin` (a pull request: `pr-N`) made for the stacks
/// of `env` and that was never executed; returns how many were deleted. For a pull request
/// closed without merging.
pub async fn delete_change_sets_of_origin(
    aws: &Aws,
    env: &DesiredEnvironment,
    origin: &str,
) -> Result<usize, crate::aws::AwsError> {
    let session = aws.session(&env.target()).await?;
    let cfn = &session.cfn;
    let mut deleted = 0;
    for unit in env.units.values() {
        let Some(stack) = cfn.describe_stack(&unit.stack_name).await? else {
            continue;
        };
        for cs in cfn.list_change_sets(&stack).await? {
            // (The listing holds only the stack's own, by its id or its name.)
            let ours =
                made_by(&cs, origin) && cs.execution_status.as_deref() != Some("EXECUTE_COMPLETE");
            if ours {
                cfn.delete_change_set(&cs.id).await?;
                deleted += 1;
            }
        }
    }
    Ok(deleted)
}

/// Deletes the stack's change sets left by older plans of the same origin, keeping `keep`.
async fn clean_stale(ctx: &Planner, stack: &StackInfo, keep: &str) {
    let cfn = &ctx.session.cfn;
    let list = match cfn.list_change_sets(stack).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(stack = %stack.name, error = %e, "could not list change sets to clean up");
            return;
        }
    };
    for cs in list {
        if cs.name != keep && made_by(&cs, &ctx.options.origin) {
            tracing::info!(stack = %stack.name, change_set = %cs.name, "deleting a change set of an older plan");
            if let Err(e) = cfn.delete_change_set(&cs.id).await {
                tracing::warn!(stack = %stack.name, change_set = %cs.name, error = %e, "could not delete an older change set");
            }
        }
    }
}

/// The template to submit: inline when small enough, else uploaded to the environment's
/// artifact bucket under its content digest and passed by URL.
async fn template_source(ctx: &Planner, unit: &Unit) -> Result<TemplateSource, String> {
    match &unit.template {
        TemplateRef::Url { url } => Ok(TemplateSource::Url(url.clone())),
        TemplateRef::Local { template, path } => {
            if template.size <= MAX_TEMPLATE_BODY_BYTES {
                return Ok(TemplateSource::Body(template.text.to_string()));
            }
            let Some(bucket) = &ctx.env.artifact_bucket else {
                return Err(format!(
                    "template {path} is {} bytes, over the {MAX_TEMPLATE_BODY_BYTES}-byte inline limit, and environment `{}` has no artifact_bucket",
                    template.size, ctx.env.name
                ));
            };
            let key = S3Client::template_key(&sha256_hex(template.text.as_bytes()));
            ctx.session
                .s3
                .put(bucket, &key, template.text.as_bytes().to_vec())
                .await
                .map_err(|e| e.to_string())?;
            Ok(TemplateSource::Url(ctx.session.s3.object_url(bucket, &key)))
        }
    }
}

fn resource_action(a: &str) -> ResourceAction {
    match a {
        "Add" => ResourceAction::Add,
        "Remove" => ResourceAction::Remove,
        "Import" => ResourceAction::Import,
        "Dynamic" => ResourceAction::Dynamic,
        _ => ResourceAction::Modify,
    }
}

fn recreation(r: Option<&str>) -> Option<RequiresRecreation> {
    match r? {
        "Always" => Some(RequiresRecreation::Always),
        "Conditionally" => Some(RequiresRecreation::Conditionally),
        "Never" => Some(RequiresRecreation::Never),
        _ => None,
    }
}

/// The resource changes of a change set, with replacement and details filled in from formwork's
/// own analysis where the endpoint leaves them out, every value scrubbed of secrets.
pub fn merge_changes(
    changes: &[ResourceChangeInfo],
    offline: &[ResourceChange],
    masker: &Masker,
) -> Vec<ResourceChange> {
    let mut out = Vec::new();
    for c in changes {
        let ours = offline.iter().find(|o| o.logical_id == c.logical_id);
        let action = resource_action(&c.action);
        let from_cfn = match c.replacement.as_deref() {
            Some("True") => Some(Replacement::True),
            Some("False") => Some(Replacement::False),
            Some("Conditional") => Some(Replacement::Conditional),
            _ => None,
        };
        let (replacement, replacement_source) = match (from_cfn, ours) {
            (Some(r), _) => (r, ReplacementSource::Cloudformation),
            (None, Some(o)) if action == ResourceAction::Modify => {
                (o.replacement, ReplacementSource::Predicted)
            }
            (None, _) => (Replacement::Unknown, ReplacementSource::Cloudformation),
        };
        let details: Vec<ChangeDetail> = if c.details.is_empty() {
            ours.map(|o| o.details.clone()).unwrap_or_default()
        } else {
            c.details
                .iter()
                .map(|d| ChangeDetail {
                    attribute: d.attribute.clone().unwrap_or_default(),
                    name: d.name.clone(),
                    requires_recreation: recreation(d.requires_recreation.as_deref()),
                    evaluation: d.evaluation.clone(),
                    change_source: d.change_source.clone(),
                    causing_entity: d.causing_entity.clone(),
                    before: masker.scrub_opt(d.before_value.as_deref()),
                    after: masker.scrub_opt(d.after_value.as_deref()),
                })
                .collect()
        };
        let scope = if c.scope.is_empty() {
            ours.map(|o| o.scope.clone()).unwrap_or_default()
        } else {
            c.scope.clone()
        };
        out.push(ResourceChange {
            logical_id: c.logical_id.clone(),
            physical_id: c.physical_id.clone(),
            resource_type: c.resource_type.clone(),
            action,
            replacement,
            replacement_source,
            scope,
            details,
        });
    }
    out.sort_by(|a, b| a.logical_id.cmp(&b.logical_id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_set_names_and_descriptions_round_trip() {
        let n = change_set_name("0123456789abcdef0123", "fedcba9876543210");
        assert_eq!(n, "formwork-0123456789ab-fedcba987654");
        assert!(n.len() <= 128 && n.chars().next().unwrap().is_ascii_alphabetic());
        let d = change_set_description("p1", "abc", "pr-42");
        assert_eq!(origin_of(&d), Some("pr-42"));
        assert_eq!(origin_of("made by hand"), None);
    }

    #[test]
    fn blocked_states_say_what_to_do() {
        let s = |status: &str| StackInfo {
            stack_id: "id".into(),
            name: "st".into(),
            status: status.into(),
            status_reason: None,
            outputs: Default::default(),
            parameters: Default::default(),
            tags: Default::default(),
            last_updated: None,
        };
        assert!(
            blocked(&s("ROLLBACK_COMPLETE"))
                .unwrap()
                .contains("delete-stack --stack-name st")
        );
        assert!(
            blocked(&s("UPDATE_ROLLBACK_FAILED"))
                .unwrap()
                .contains("continue-update-rollback")
        );
        assert!(blocked(&s("UPDATE_IN_PROGRESS")).unwrap().contains("busy"));
        assert!(blocked(&s("REVIEW_IN_PROGRESS")).is_none());
        assert!(blocked(&s("UPDATE_ROLLBACK_COMPLETE")).is_none());
        assert!(blocked(&s("CREATE_COMPLETE")).is_none());
    }
}
