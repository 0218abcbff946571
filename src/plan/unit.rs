//! Planning one stack: describe it (its state decides create, update or blocked), fill in its
//! inputs, compare what is deployed with what the config asks for — when template, parameters
//! and tags are the same, nothing is planned and no change set is made (or, when only stack
//! options differ, an update of the options alone) — else make a change set and read it,
//! filling in what it leaves out from formwork's own reading of the two templates.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::change_sets::{self, clean_stale, merge_changes};
use super::evidence::{self, Evidence};
use super::inputs::{self, Resolved};
use super::live::{Planner, empty_unit};
use super::model::*;
use super::parameters::{effective_parameters, parameter_changes};
use super::tags::{stack_tags, without_commit};
use super::{nested, options, upstream};
use crate::aws::cfn::{ChangeSetInfo, ChangeSetRequest, ResourceImport, StackInfo, TemplateSource};
use crate::aws::s3::S3 as S3Client;
use crate::desired::{NestedTemplate, TemplateRef, Unit};
use crate::template::conditions::Conditions;
use crate::template::evaluate::StackFacts;
use crate::template::{MAX_TEMPLATE_BODY_BYTES, Template, sha256_hex};
use crate::template::{diff, outputs, security, text_diff};

/// Plans one stack; a failure is the plan's `Failed` action with the reason, secrets masked.
pub(super) async fn plan_unit(
    ctx: &Planner,
    unit: &Unit,
    reasons: Vec<Reason>,
    upstream: &BTreeMap<String, Arc<UnitPlan>>,
) -> UnitPlan {
    let mut up = empty_unit(unit, &ctx.env.region, reasons);
    if let Err(message) = plan_into(ctx, unit, upstream, &mut up).await {
        up.action = Action::Failed;
        up.message = Some(ctx.masker.scrub(&message));
    }
    if matches!(up.action, Action::Create | Action::Update | Action::Pending) {
        up.hooks = planned_hooks(ctx, unit);
    }
    up
}

/// The hooks apply will run around the stack's change, masked.
fn planned_hooks(ctx: &Planner, unit: &Unit) -> Vec<PlannedHook> {
    use crate::desired::Phase;
    [Phase::BeforeApply, Phase::AfterApply]
        .into_iter()
        .flat_map(|phase| {
            unit.hooks.of(phase).iter().map(move |h| PlannedHook {
                phase: phase.as_str().to_string(),
                run: ctx.masker.scrub(&h.run),
            })
        })
        .collect()
}

/// The stack as it is: described (`None`: it does not exist), and whether the plan creates it.
struct Now {
    stack: Option<StackInfo>,
    create: bool,
}

impl Now {
    /// The stack as deployed: `None` when the plan creates it.
    fn deployed(&self) -> Option<&StackInfo> {
        if self.create {
            None
        } else {
            self.stack.as_ref()
        }
    }
}

async fn plan_into(
    ctx: &Planner,
    unit: &Unit,
    upstream: &BTreeMap<String, Arc<UnitPlan>>,
    up: &mut UnitPlan,
) -> Result<(), String> {
    let Some(now) = describe(ctx, unit, up).await? else {
        return Ok(());
    };
    let fetched = match &unit.template {
        TemplateRef::Url { url } => fetch_url_template(ctx, url).await,
        TemplateRef::Local { .. } => None,
    };
    let trimmed;
    let unit = match &fetched {
        Some(t) => {
            trimmed = with_declared_defaults(unit, t);
            &trimmed
        }
        None => unit,
    };
    let resolved = resolve_inputs(ctx, unit, upstream, up).await?;
    let desired = unit.template.parsed().or(fetched.as_ref());
    let tags = stack_tags(&ctx.env, unit, &ctx.commit);
    up.parameters = parameter_changes(&resolved, now.deployed(), desired, &ctx.masker);
    let mut waits = pending_inputs(&resolved);
    waits.extend(upstream::waits(ctx, unit, upstream).await?);
    if !waits.is_empty() {
        let dep = deployed_once(ctx, unit, now.create, None).await?;
        analyse(
            ctx,
            up,
            dep.as_ref(),
            desired,
            &facts_for(unit, &now, &resolved),
        );
        up.action = Action::Pending;
        up.message = Some(format!(
            "waits for {}; planned again when applied",
            waits.join(", ")
        ));
        return Ok(());
    }
    up.stamp = now.stack.as_ref().map(evidence::stamp);
    up.fingerprint = desired.map(|d| {
        let parameters = effective_parameters(&resolved, Some(d))
            .into_iter()
            .map(|(k, v)| (k, v.text))
            .collect();
        evidence::fingerprint(
            &up.config_hash,
            d.digest(),
            &parameters,
            &without_commit(tags.iter().cloned()),
        )
    });
    if let Some(at) = unchanged_by_record(ctx, unit, &now, up.fingerprint.as_deref()) {
        up.action = Action::NoChange;
        up.parameters.clear();
        up.unchanged_by = Some(Evidence::Record { at });
        return Ok(());
    }
    up.options = options::changes(ctx, unit, now.deployed()).await?;
    let deployed = match unchanged(ctx, unit, &now, desired, &resolved, &tags).await? {
        Comparison::Same if !up.options.is_empty() => {
            options_only(up);
            return Ok(());
        }
        Comparison::Same => {
            up.action = Action::NoChange;
            up.parameters.clear();
            up.unchanged_by = Some(Evidence::Compared);
            return Ok(());
        }
        Comparison::Differs(deployed) => deployed.map(|d| d.map(|t| *t)),
    };
    // Which resources to import depends on the deployed template: read it here, once, when
    // the comparison did not.
    let deployed = match deployed {
        None if !unit.imports.is_empty() => Some(deployed_once(ctx, unit, now.create, None).await?),
        read => read,
    };
    let imports = to_import(unit, deployed.as_ref().and_then(Option::as_ref));
    let request =
        change_set_request(ctx, unit, &now, &resolved, tags, &up.config_hash, imports).await?;
    let info =
        change_sets::create_or_reuse(ctx, &unit.region, &request, &resolved, now.stack.as_ref())
            .await?;
    let cfn = &ctx.session_in(&unit.region).cfn;
    if info.is_empty_failure() || only_commit_tag(&now, &request, &info) {
        if !info.id.is_empty() {
            let _ = cfn.delete_change_set(&info.id).await;
        }
        if !up.options.is_empty() {
            options_only(up);
            return Ok(());
        }
        up.action = Action::NoChange;
        up.parameters.retain(|p| p.known_after_apply);
        up.unchanged_by = Some(Evidence::ChangeSet);
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
    let dep = deployed_once(ctx, unit, now.create, deployed).await?;
    let offline = analyse(
        ctx,
        up,
        dep.as_ref(),
        desired,
        &facts_for(unit, &now, &resolved),
    );
    up.action = if now.create {
        Action::Create
    } else {
        Action::Update
    };
    up.change_set = Some(ChangeSetRef {
        name: info.name.clone(),
        id: info.id.clone(),
        stack_id: info.stack_id.clone(),
        change_set_type: if !request.imports.is_empty() {
            "IMPORT"
        } else if now.create {
            "CREATE"
        } else {
            "UPDATE"
        }
        .into(),
    });
    up.resources = merge_changes(&info.changes, &offline, &ctx.masker);
    add_nested_changes(ctx, up, unit, dep.as_ref(), &info.changes).await;
    if let (false, Some(d), Some(dep)) = (now.create, desired, dep.as_ref()) {
        let changed = up.parameters.iter().map(|p| p.name.clone()).collect();
        up.changing_outputs = Some(outputs::changing_outputs(
            Some(dep),
            d,
            &changed,
            &up.resources,
        ));
    }
    if let Some(s) = &now.stack {
        if !now.create {
            up.last_event = cfn.newest_event_id(&s.stack_id).await.ok().flatten();
        }
        clean_stale(cfn, &ctx.options.origin, s, &request.change_set_name).await;
    }
    Ok(())
}

/// The plan of a stack whose template, parameters and tags are as deployed but whose options
/// are not: an update of the options alone, without a change set.
fn options_only(up: &mut UnitPlan) {
    up.action = Action::Update;
    up.parameters.retain(|p| p.known_after_apply);
}

/// Describes the stack into the plan; `None` when it is blocked (the plan says why).
async fn describe(ctx: &Planner, unit: &Unit, up: &mut UnitPlan) -> Result<Option<Now>, String> {
    let stack = ctx
        .stacks
        .get(&ctx.session_in(&unit.region).cfn, &unit.stack_name)
        .await?;
    up.stack_status = stack.as_ref().map(|s| s.status.clone());
    up.last_updated = stack.as_ref().and_then(|s| s.last_updated.clone());
    if let Some(message) = stack.as_ref().and_then(blocked) {
        up.action = Action::Blocked;
        up.message = Some(message);
        return Ok(None);
    }
    let create = stack
        .as_ref()
        .is_none_or(|s| s.status == "REVIEW_IN_PROGRESS");
    Ok(Some(Now { stack, create }))
}

/// A unit whose template was read by URL, with only the default parameters that template
/// declares (which could not be known when the config was checked).
fn with_declared_defaults(unit: &Unit, template: &Template) -> Unit {
    let mut u = unit.clone();
    u.parameters
        .retain(|n, p| !p.from_defaults || template.parameters.contains_key(n));
    u
}

/// Fills in the unit's parameters (secrets noted for masking); an input that cannot be had is
/// an error.
async fn resolve_inputs(
    ctx: &Planner,
    unit: &Unit,
    upstream: &BTreeMap<String, Arc<UnitPlan>>,
    up: &mut UnitPlan,
) -> Result<Resolved, String> {
    let taint = inputs::Taint {
        outputs: &ctx.secret_outputs,
        masker: &ctx.masker,
    };
    let ssm = ctx.ssm(&unit.region);
    let secrets = ctx.secrets(&unit.region);
    let session = ctx.session_in(&unit.region);
    let sources = inputs::Sources {
        env: &ctx.env,
        session: &session,
        stacks: &ctx.stacks,
        ssm: &ssm,
        secrets: &secrets,
        upstream,
        taint: &taint,
        remote: &ctx.remote,
    };
    let resolved = inputs::resolve(unit, &sources).await;
    for p in &resolved.params {
        if let Some(v) = &p.value {
            ctx.masker.note(v);
        }
    }
    up.inputs = resolved.inputs.clone();
    if !resolved.errors.is_empty() {
        return Err(resolved.errors.join("; "));
    }
    Ok(resolved)
}

/// When the stack and its desired state are those formwork last recorded (and the run does not
/// refresh): when the record was made.
fn unchanged_by_record(
    ctx: &Planner,
    unit: &Unit,
    now: &Now,
    fingerprint: Option<&str>,
) -> Option<crate::store::Millis> {
    if ctx.options.refresh {
        return None;
    }
    let record = ctx.seen.get(&unit.stack)?;
    let stack = now.deployed()?;
    evidence::unchanged_by_record(record, fingerprint?, stack).then_some(record.at)
}

/// Whether the stack is already what the config asks for.
enum Comparison {
    Same,
    /// It differs (or could not be compared); the deployed template, when it was read.
    Differs(Option<Option<Box<Template>>>),
}

/// When template, parameters and tags are what is deployed, there is nothing to plan. NoEcho
/// parameters cannot be compared (CloudFormation masks them) and macros change templates on the
/// way in, so those stacks always get a change set.
async fn unchanged(
    ctx: &Planner,
    unit: &Unit,
    now: &Now,
    desired: Option<&Template>,
    resolved: &Resolved,
    tags: &[(String, String)],
) -> Result<Comparison, String> {
    if ctx.options.refresh {
        return Ok(Comparison::Differs(None));
    }
    let macros = desired.is_none_or(|d| d.value().get("Transform").is_some());
    let (Some(s), Some(des), false, false, false) = (
        now.deployed(),
        desired,
        macros,
        resolved.has_no_echo(),
        resolved.pending(),
    ) else {
        return Ok(Comparison::Differs(None));
    };
    let dep = deployed_template(ctx, unit).await?;
    let effective = effective_parameters(resolved, desired);
    let params_same = effective.len() == s.parameters.len()
        && effective
            .iter()
            .all(|(k, v)| s.parameters.get(k) == Some(&v.text));
    let tags_same = without_commit(tags.iter().cloned()) == without_commit(s.tags.clone());
    let template_same = dep
        .as_ref()
        .is_some_and(|d| d.digest() == des.digest() && d.value().get("Transform").is_none());
    Ok(if params_same && tags_same && template_same {
        Comparison::Same
    } else {
        Comparison::Differs(Some(dep.map(Box::new)))
    })
}

/// The stacks to be created that the unit's pending inputs wait for, with what each gives.
fn pending_inputs(resolved: &Resolved) -> Vec<String> {
    let mut waits: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for i in &resolved.inputs {
        if i.state == InputState::Pending {
            waits.entry(&i.from_stack).or_default().push(&i.reference);
        }
    }
    waits
        .into_iter()
        .map(|(s, refs)| format!("`{s}` to be created (for {})", refs.join(", ")))
        .collect()
}

/// The change set to make for the unit, named after the commit and its config digest.
async fn change_set_request(
    ctx: &Planner,
    unit: &Unit,
    now: &Now,
    resolved: &Resolved,
    tags: Vec<(String, String)>,
    config_hash: &str,
    imports: Vec<ResourceImport>,
) -> Result<ChangeSetRequest, String> {
    let mut request = ChangeSetRequest {
        stack_name: unit.stack_name.clone(),
        change_set_name: change_sets::change_set_name(&ctx.commit, config_hash),
        create: now.create,
        template: template_source(ctx, unit).await?,
        parameters: resolved
            .params
            .iter()
            .filter_map(|p| p.value.as_ref().map(|v| (p.name.clone(), v.text.clone())))
            .collect(),
        capabilities: unit.capabilities.iter().copied().collect(),
        include_nested: unit
            .template
            .parsed()
            .is_some_and(|t| !t.nested_stacks().is_empty()),
        tags,
        description: change_sets::change_set_description(
            &ctx.plan_id,
            &ctx.commit,
            &ctx.options.origin,
        ),
        role_arn: None,
        notification_arns: None,
        rollback: None,
        on_failure: None,
        imports,
    };
    options::add_to_request(unit, &mut request);
    Ok(request)
}

/// The resources of `unit.imports` that the `deployed` template (`None`: the stack is new) does
/// not have yet: what an IMPORT change set brings in.
fn to_import(unit: &Unit, deployed: Option<&Template>) -> Vec<ResourceImport> {
    unit.imports
        .iter()
        .filter(|(id, _)| deployed.is_none_or(|t| !t.resources.contains_key(*id)))
        .map(|(id, i)| ResourceImport {
            logical_id: id.clone(),
            resource_type: i.resource_type.clone(),
            identifier: i.identifier.clone(),
        })
        .collect()
}

/// Whether a change set's only change is the commit tag (on a stack that could not be compared
/// beforehand, because of its secrets): it changes nothing the config asks for.
fn only_commit_tag(now: &Now, request: &ChangeSetRequest, info: &ChangeSetInfo) -> bool {
    !now.create
        && now.deployed().is_some_and(|s| {
            without_commit(s.tags.clone()) == without_commit(request.tags.iter().cloned())
        })
        && !info.changes.is_empty()
        && info.changes.iter().all(|c| {
            c.action == "Modify" && !c.scope.is_empty() && c.scope.iter().all(|x| x == "Tags")
        })
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
async fn deployed_template(ctx: &Planner, unit: &Unit) -> Result<Option<Template>, String> {
    let name = &unit.stack_name;
    let body = ctx
        .session_in(&unit.region)
        .cfn
        .get_template(name)
        .await
        .map_err(|e| e.to_string())?;
    Ok(body.and_then(|b| {
        let file: Arc<str> = Arc::from(format!("deployed template of {name}"));
        Template::parse(b.as_bytes(), &file).ok()
    }))
}

/// The deployed template of a stack: `read` when it was read already, none for a stack being
/// created, else read now.
async fn deployed_once(
    ctx: &Planner,
    unit: &Unit,
    create: bool,
    read: Option<Option<Template>>,
) -> Result<Option<Template>, String> {
    match read {
        Some(d) => Ok(d),
        None if create => Ok(None),
        None => deployed_template(ctx, unit).await,
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
    facts: &Facts,
) -> Vec<ResourceChange> {
    let Some(d) = desired else {
        return Vec::new();
    };
    let create = facts.deployed.is_none();
    up.security = security::security_changes(deployed, Some(d));
    // A new stack's template is in the change under review already; the resource list says
    // what it creates.
    if !create {
        up.template_diff = text_diff::template_diff(deployed, Some(d), ctx.options.diff_context)
            .map(|t| ctx.masker.scrub(&t));
    }
    let changed: Vec<String> = up.parameters.iter().map(|p| p.name.clone()).collect();
    let before = match (deployed, &facts.deployed) {
        (Some(t), Some(f)) => Some((t, Conditions::of(t, f))),
        _ => None,
    };
    let after = Conditions::of(d, &facts.desired);
    let offline = diff::resource_changes_under(
        before.as_ref().map(|(t, c)| (*t, c)),
        Some((d, &after)),
        &changed,
    );
    if up.action == Action::Pending || up.resources.is_empty() {
        up.resources = offline.clone();
    }
    offline
}

/// The resource changes and template diffs of the nested templates of the repository. The
/// deployed children are read back from the URLs the deployed template names. Where the change
/// set describes nested stacks' changes itself (CloudFormation with `IncludeNestedStacks`),
/// its changes stand and formwork's reading only adds the diffs.
async fn add_nested_changes(
    ctx: &Planner,
    up: &mut UnitPlan,
    unit: &Unit,
    deployed: Option<&Template>,
    from_change_set: &[crate::aws::cfn::ResourceChangeInfo],
) {
    let after = nested::children_of(&unit.template);
    if after.is_empty() {
        return;
    }
    let before = match deployed {
        Some(d) => deployed_children(ctx, d).await,
        None => Vec::new(),
    };
    // A new stack's templates are in the change under review already.
    let context = deployed.map(|_| ctx.options.diff_context);
    let inside = nested::changes(&before, &after, context);
    if let Some(d) = inside.template_diff {
        let d = ctx.masker.scrub(&d);
        up.template_diff = Some(match up.template_diff.take() {
            Some(own) => own + &d,
            None => d,
        });
    }
    up.security.extend(inside.security);
    if !from_change_set.iter().any(|c| c.logical_id.contains('/')) {
        up.resources.extend(inside.resources);
    }
}

/// The nested templates a deployed template names by S3 URL, read back (at any depth). One
/// that cannot be read is left out: the diff is an aid, the change set is what is applied.
async fn deployed_children(ctx: &Planner, deployed: &Template) -> Vec<nested::Child> {
    const MAX_DEPTH: usize = 8;
    let mut out = Vec::new();
    let mut todo: Vec<(String, Vec<crate::template::nested::NestedStack>, usize)> =
        vec![(String::new(), deployed.nested_stacks().to_vec(), 0)];
    while let Some((prefix, stacks, depth)) = todo.pop() {
        for n in stacks {
            let Some((bucket, key)) = n.url.as_deref().and_then(crate::aws::s3::parse_s3_url)
            else {
                continue;
            };
            let body = match ctx.session.s3.get(&bucket, &key).await {
                Ok(Some(b)) => b,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(nested = %n.resource, "deployed nested template not read: {e}");
                    continue;
                }
            };
            let file: Arc<str> = Arc::from(format!("deployed nested template {key}"));
            let Ok(t) = Template::parse(&body, &file) else {
                continue;
            };
            let path = format!("{prefix}{}", n.resource);
            if depth < MAX_DEPTH {
                todo.push((format!("{path}/"), t.nested_stacks().to_vec(), depth + 1));
            }
            out.push((path, Arc::new(t)));
        }
    }
    out
}

/// What is known of a stack's parameters as deployed (`None`: the plan creates it) and as
/// planned, to evaluate the conditions of its two templates.
struct Facts {
    deployed: Option<StackFacts>,
    desired: StackFacts,
}

/// The facts of `unit` as `now` deployed and as `resolved` for the plan: values that are secret,
/// pending or known only after apply are not known; NoEcho values as deployed (`****`) neither.
fn facts_for(unit: &Unit, now: &Now, resolved: &Resolved) -> Facts {
    let mut desired = unit.known_facts();
    for p in &resolved.params {
        match &p.value {
            Some(v) if !v.secret && !p.known_after_apply && !p.no_echo => {
                desired.parameters.insert(p.name.clone(), v.text.clone())
            }
            _ => desired.parameters.remove(&p.name),
        };
    }
    let deployed = now.deployed().map(|s| StackFacts {
        parameters: s
            .parameters
            .iter()
            .filter(|(_, v)| v.as_str() != crate::desired::MASK)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ..desired.clone()
    });
    Facts { deployed, desired }
}

/// The template to submit: inline when small enough, else uploaded to the environment's
/// artifact bucket under its content digest and passed by URL.
async fn template_source(ctx: &Planner, unit: &Unit) -> Result<TemplateSource, String> {
    match &unit.template {
        TemplateRef::Url { url } => Ok(TemplateSource::Url(url.clone())),
        TemplateRef::Local {
            template,
            path,
            nested,
        } => {
            upload_nested(ctx, nested).await?;
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

/// Uploads the templates a unit's template nests to the artifact bucket, under the keys its
/// `TemplateURL`s name (the key is the content's digest: an upload that ran before is the same
/// object written again).
async fn upload_nested(ctx: &Planner, nested: &[NestedTemplate]) -> Result<(), String> {
    let Some(bucket) = &ctx.env.artifact_bucket else {
        return Ok(());
    };
    for n in nested {
        ctx.session
            .s3
            .put(bucket, &n.key, n.template.text.as_bytes().to_vec())
            .await
            .map_err(|e| {
                format!(
                    "uploading nested template {} ({}): {e}",
                    n.path, n.resource_path
                )
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            settings: Default::default(),
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
