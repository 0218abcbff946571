//! Resolving one stack of an environment into a [`Unit`]: its template, parameters,
//! dependencies, stack name, tags, capabilities, timeout, stack options, hooks and resources to import.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::hooks::resolve_hooks;
use super::imports::resolve_imports;
use super::nested;
use super::options::resolve_options;
use super::parameters::{Parameters, resolve_parameters};
use super::scope::{Scope, static_value};
use super::tags::resolve_tags;
use crate::config::load::{Environment, Pipeline, StackTemplate};
use crate::config::model::{StackDef, StackOverride};
use crate::desired::{Dependency, DependencyKind, TemplateRef, Unit};
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::template::{Capability, MAX_TEMPLATE_BODY_BYTES, Template};
use crate::yaml::Spanned;

/// A pipeline stack in one environment, as written: the pipeline's definition of it, the
/// environment's settings for it, and its template when it could be parsed.
pub(super) struct StackInEnv<'a> {
    pub(super) p: &'a Pipeline,
    pub(super) env: &'a Environment,
    pub(super) key: &'a Spanned<String>,
    pub(super) stack: &'a StackDef,
    pub(super) over: Option<&'a StackOverride>,
    pub(super) template: Option<&'a Arc<Template>>,
}

impl<'a> StackInEnv<'a> {
    /// Stack `key` of pipeline `p` in `env`, and its template as the pipeline has it; `None`
    /// when the pipeline has no template for it.
    pub(super) fn of(
        p: &'a Pipeline,
        env: &'a Environment,
        key: &'a Spanned<String>,
        stack: &'a StackDef,
    ) -> Option<(StackInEnv<'a>, &'a StackTemplate)> {
        let stack_template = p.templates.get(key.as_str())?;
        let s = StackInEnv {
            p,
            env,
            key,
            stack,
            over: env.def.stacks.get(key.as_str()),
            template: stack_template.parsed(),
        };
        Some((s, stack_template))
    }
}

/// The unit of stack `key` in `env`, named as `scope` has it; `None` when its template is
/// missing, its template URL cannot be filled in or it has no name (reported).
pub(super) fn resolve_unit(
    p: &Pipeline,
    env: &Environment,
    scope: &Scope<'_>,
    key: &Spanned<String>,
    stack: &StackDef,
    enabled: &BTreeSet<String>,
    d: &mut Diagnostics,
) -> Option<Unit> {
    let (s, stack_template) = StackInEnv::of(p, env, key, stack)?;
    let template = template_ref(&s, stack_template, scope, d)?;
    check_template_size(&s, d);
    let Parameters {
        settings: parameters,
        dependencies: from_parameters,
    } = resolve_parameters(&s, scope, enabled, d);
    let (stack_name, name_loc) = scope.stack_name(key.as_str())?.clone();
    let tags = resolve_tags(&s, scope, d);
    let options = resolve_options(&s, scope, d);
    let hooks = resolve_hooks(&s, scope, d);
    let imports = resolve_imports(&s, scope, d);
    let mut unit = Unit {
        environment: env.name.clone(),
        stack: key.value.clone(),
        stack_name,
        name_loc,
        account: env.def.account.value.clone(),
        region: stack_region(&s, d),
        template,
        parameters,
        tags,
        capabilities: capabilities(&s),
        dependencies: Vec::new(),
        timeout_minutes: s
            .over
            .and_then(|o| o.timeout_minutes.as_ref())
            .or(stack.timeout_minutes.as_ref())
            .map(|t| t.value),
        options,
        hooks,
        imports,
    };
    unit.add_dependencies(from_parameters);
    unit.add_dependencies(needs_dependencies(&s, enabled));
    Some(unit)
}

/// The stack's region: the environment's stack setting, the pipeline's, else the
/// environment's region (also when the one given is malformed, which is reported).
fn stack_region(s: &StackInEnv<'_>, d: &mut Diagnostics) -> String {
    let own = match s.over.and_then(|o| o.region.as_ref()) {
        Some(r) => Some((&s.env.file, r)),
        None => s.stack.region.as_ref().map(|r| (&s.p.file, r)),
    };
    match own {
        Some((file, r)) if super::fields::check_region(file, r, d) => r.value.clone(),
        _ => s.env.def.region.value.clone(),
    }
}

/// The unit's template: a local file (`None` when it could not be read) or a URL with its
/// variables filled in.
fn template_ref(
    s: &StackInEnv<'_>,
    stack_template: &StackTemplate,
    scope: &Scope<'_>,
    d: &mut Diagnostics,
) -> Option<TemplateRef> {
    match stack_template {
        StackTemplate::Local {
            path,
            template: Some(t),
        } => {
            if !nested::has_local_children(s.p, path, t) {
                return Some(TemplateRef::Local {
                    path: path.clone(),
                    template: t.clone(),
                    nested: Arc::new([]),
                });
            }
            let Some(bucket) = &s.env.def.artifact_bucket else {
                d.push(
                    Diagnostic::error(format!(
                        "the template of stack `{}` nests templates of the repository, and environment `{}` has no artifact bucket to upload them to",
                        s.key.value, s.env.name
                    ))
                    .at(Loc::new(&s.p.file, s.stack.template.span))
                    .help(format!(
                        "set `artifact_bucket:` in {} (an S3 bucket in the environment's account and region)",
                        s.env.file
                    )),
                );
                return None;
            };
            let (template, uploads) =
                nested::package(s.p, path, t, &bucket.value, &s.env.def.region.value)?;
            Some(TemplateRef::Local {
                path: path.clone(),
                template,
                nested: uploads.into(),
            })
        }
        StackTemplate::Local { template: None, .. } => None,
        StackTemplate::Url { url } => Some(TemplateRef::Url {
            url: static_value(s.p, &s.p.file, url, scope, "a template URL", d)?,
        }),
    }
}

/// A template over CloudFormation's inline limit needs an artifact bucket to go by URL.
fn check_template_size(s: &StackInEnv<'_>, d: &mut Diagnostics) {
    if let Some(t) = s.template
        && t.size > MAX_TEMPLATE_BODY_BYTES
        && s.env.def.artifact_bucket.is_none()
    {
        d.push(
            Diagnostic::error(format!(
                "the template of stack `{}` is {} bytes, over CloudFormation's {MAX_TEMPLATE_BODY_BYTES}-byte limit for inline templates, and environment `{}` has no artifact bucket",
                s.key.value, t.size, s.env.name
            ))
            .at(Loc::new(&s.p.file, s.stack.template.span))
            .help(format!(
                "set `artifact_bucket:` in {} so formwork can upload it and pass it by URL",
                s.env.file
            )),
        );
    }
}

/// The stack's `needs` that the environment deploys.
fn needs_dependencies(s: &StackInEnv<'_>, enabled: &BTreeSet<String>) -> Vec<Dependency> {
    s.stack
        .needs
        .iter()
        .filter(|need| enabled.contains(need.as_str()) && need.value != s.key.value)
        .map(|need| Dependency {
            stack: need.value.clone(),
            kind: DependencyKind::Needs,
            loc: Loc::new(&s.p.file, need.span),
        })
        .collect()
}

/// Capabilities: as given (checked with the pipeline) or what the template needs.
fn capabilities(s: &StackInEnv<'_>) -> BTreeSet<Capability> {
    match (&s.stack.capabilities, s.template) {
        (Some(caps), _) => caps.iter().map(|c| c.value).collect(),
        (None, Some(t)) => {
            let path =
                s.p.templates
                    .get(s.key.as_str())
                    .and_then(StackTemplate::local_path)
                    .unwrap_or_default();
            nested::required_capabilities(s.p, path, t)
                .iter()
                .map(|(c, _)| *c)
                .collect()
        }
        (None, None) => BTreeSet::new(),
    }
}
