//! The conversion proper: each top-level stack group of the Sceptre project (`config/dev/`,
//! `config/prod/`; the stacks directly in `config/` form one named after the `project_code`)
//! becomes a formwork environment; the union of their stacks, keyed by their path inside the
//! group (`config/dev/db/main.yaml` → `db-main`), one pipeline. What every environment gives a
//! stack alike goes into the pipeline, what differs into the environments' `stacks:` settings.
//! Stack names stay Sceptre's (`<project_code>-<path with - for />`, or `stack_name`), so the
//! converted config addresses the same CloudFormation stacks. Stack options
//! ([`super::options`]) are split between pipeline and environments as parameters are. Fields
//! without a formwork equivalent are reported.

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;

use super::emit::Y;
use super::read::{Config, Entry, Project, StackFile};
use super::report::Report;
use super::resolvers::{self, Ctx, Value};

/// Stack config fields formwork has no equivalent of, with what to do. (The stack options
/// Sceptre sets are mapped by [`super::options`].)
const UNMAPPED_FIELDS: &[(&str, &str)] = &[
    (
        "stack_timeout",
        "CloudFormation's creation timeout is not set by formwork; timeout_minutes (pipeline.yml) bounds how long apply waits",
    ),
    (
        "profile",
        "formwork uses the runner's credentials and the environment's role_arn; make the profile's account the environment's",
    ),
    (
        "sceptre_role_session_duration",
        "formwork's role sessions use the default duration",
    ),
    (
        "iam_role_session_duration",
        "formwork's role sessions use the default duration",
    ),
    (
        "j2_environment",
        "formwork config is plain YAML; nothing to do once the converted files are right",
    ),
];

/// One stack of one environment, converted.
#[derive(Clone, Debug)]
struct Unit {
    file: String,
    template: String,
    template_entry: Option<Entry>,
    parameters: IndexMap<String, Value>,
    tags: IndexMap<String, String>,
    needs: BTreeSet<String>,
    stack_name: String,
    /// Stack options (`service_role`, `termination_protection`, …) as `(field, value)`.
    options: Pairs,
    /// Hooks (`before_apply`, `after_apply`) as `(field, value)`.
    hooks: Pairs,
    /// The stack's region (`region`), when a plain value.
    region: Option<String>,
}

/// One environment being made.
#[derive(Debug, Default)]
struct Env {
    name: String,
    group_file: String,
    region: Option<String>,
    role_arn: Option<String>,
    artifact_bucket: Option<String>,
    units: BTreeMap<String, Unit>,
}

/// The converted files (path relative to the output, text) and template copies (output path,
/// source path relative to the project).
pub struct Output {
    pub pipeline: String,
    pub environments: Vec<String>,
    pub texts: Vec<(String, String)>,
    pub templates: Vec<(String, String)>,
}

/// What the conversion is given besides the project.
pub struct Settings<'a> {
    /// The Sceptre project directory (stack policy files are read from it).
    pub dir: &'a std::path::Path,
    pub pipeline: Option<&'a str>,
    pub account: Option<&'a str>,
}

pub fn convert(p: &Project, s: &Settings<'_>, report: &mut Report) -> Output {
    let root = p.groups.get("").cloned().unwrap_or_default();
    let project_code = root.str("project_code").unwrap_or("sceptre").to_string();
    let pipeline = s
        .pipeline
        .map(str::to_string)
        .unwrap_or_else(|| name_of(&project_code));

    // Stack keys by path, per group.
    let mut stacks: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for st in &p.stacks {
        let (group, rel) = split_group(&st.path);
        let key = key_of(rel);
        if !order.contains(&key) {
            order.push(key.clone());
        }
        stacks.insert(st.path.clone(), (group.to_string(), key));
    }

    let mut envs: BTreeMap<String, Env> = BTreeMap::new();
    for st in &p.stacks {
        let (group, _) = split_group(&st.path);
        let c = &st.config;
        if let Some(e) = ["ignore", "obsolete"]
            .iter()
            .find_map(|f| c.fields.get(*f).filter(|e| e.plain_str() == Some("true")))
        {
            report.add(
                &e.file,
                e.pos(),
                "stack-field",
                format!("{} is marked ignore/obsolete: it was not converted", st.file),
                "add it to the pipeline by hand if formwork should deploy it; a stack left out is never deleted by formwork",
            );
            continue;
        }
        let pc = c.str("project_code").unwrap_or(&project_code).to_string();
        let env_name = if group.is_empty() {
            name_of(&pc)
        } else {
            name_of(group)
        };
        let env = envs.entry(env_name.clone()).or_insert_with(|| Env {
            name: env_name.clone(),
            group_file: if group.is_empty() {
                "config/config.yaml".into()
            } else {
                format!("config/{group}/config.yaml")
            },
            ..Env::default()
        });
        let ctx = Ctx {
            group,
            stacks: &stacks,
            config: c,
        };
        let Some(unit) = unit(st, &pc, &ctx, s.dir, report) else {
            continue;
        };
        env_fields(env, st, report);
        let key = stacks[&st.path].1.clone();
        env.units.insert(key, unit);
    }

    // An environment's region is the one most of its stacks use; the others keep theirs as a
    // region of their own.
    for env in envs.values_mut() {
        env.region = most_common(env.units.values().filter_map(|u| u.region.clone()));
    }
    let env_names: Vec<String> = envs.keys().cloned().collect();
    let mut out = Output {
        pipeline: pipeline.clone(),
        environments: env_names.clone(),
        texts: Vec::new(),
        templates: Vec::new(),
    };
    let mut pipe_stacks = Y::map();
    let mut overrides: BTreeMap<String, Y> =
        env_names.iter().map(|e| (e.clone(), Y::map())).collect();
    let mut copied = BTreeSet::new();
    for key in &order {
        let present: Vec<(&String, &Unit)> = envs
            .iter()
            .filter_map(|(n, e)| e.units.get(key).map(|u| (n, u)))
            .collect();
        let Some((_, first)) = present.first() else {
            continue;
        };
        let mut def = Y::map();
        def.set("template", Y::Str(first.template.clone()));
        for (n, u) in &present[1..] {
            if u.template != first.template {
                let (file, pos) = u
                    .template_entry
                    .as_ref()
                    .map(|e| (e.file.clone(), e.pos()))
                    .unwrap_or((u.file.clone(), (1, 1)));
                report.add(
                    &file,
                    pos,
                    "template",
                    format!(
                        "stack `{key}` uses {} in environment {n} but {} elsewhere",
                        u.template, first.template
                    ),
                    "a formwork stack has one template: make the templates one (with parameters for what differs), or split the stack into two keys enabled per environment",
                );
            }
        }
        for (_, u) in &present {
            if let Some(src) = u.template.strip_prefix("templates/")
                && !u.template.contains("://")
                && copied.insert(src.to_string())
            {
                out.templates.push((
                    format!("pipelines/{pipeline}/{}", u.template),
                    format!("templates/{src}"),
                ));
            }
        }
        let all = present.len() == envs.len();
        let mut per_env: BTreeMap<&String, Y> = BTreeMap::new();
        // Parameters and tags: common values in the pipeline, the rest per environment.
        let (params, env_params) = split_common(all, &present, |u| {
            u.parameters
                .iter()
                .map(|(k, v)| (k.clone(), y_of(v)))
                .collect()
        });
        let (tags, env_tags) = split_common(all, &present, |u| {
            u.tags
                .iter()
                .map(|(k, v)| (k.clone(), Y::Str(v.clone())))
                .collect()
        });
        if !params.is_empty() {
            def.set("parameters", Y::Map(params));
        }
        let needs: BTreeSet<String> = present.iter().flat_map(|(_, u)| u.needs.clone()).collect();
        if !needs.is_empty() {
            def.set("needs", Y::List(needs.into_iter().collect()));
        }
        if !tags.is_empty() {
            def.set("tags", Y::Map(tags));
        }
        // Stack options, field by field as parameters: formwork merges the levels so.
        let (options, env_options) = split_common(all, &present, |u| u.options.clone());
        if !options.is_empty() {
            def.set("options", Y::Map(options));
        }
        // Hooks, phase by phase: an environment's phase replaces the pipeline's.
        let (hooks, env_hooks) = split_common(all, &present, |u| u.hooks.clone());
        if !hooks.is_empty() {
            def.set("hooks", Y::Map(hooks));
        }
        // Stack names: none when formwork's default gives Sceptre's, else the pipeline's pattern
        // when it fits every environment, else each environment's own.
        let pattern = name_pattern(key, &present);
        if let Some(pat) = &pattern {
            def.set("stack_name", Y::Str(pat.clone()));
        }
        if !all {
            def.set("enabled", Y::Bool(false));
        }
        for (n, u) in &present {
            let mut o = Y::map();
            if !all {
                o.set("enabled", Y::Bool(true));
            }
            if let Some(p) = env_params.get(*n) {
                o.set("parameters", Y::Map(p.clone()));
            }
            if let Some(t) = env_tags.get(*n) {
                o.set("tags", Y::Map(t.clone()));
            }
            if let Some(t) = env_options.get(*n) {
                o.set("options", Y::Map(t.clone()));
            }
            if let Some(t) = env_hooks.get(*n) {
                o.set("hooks", Y::Map(t.clone()));
            }
            let default = match &pattern {
                Some(pat) => pat.replace("${env.name}", n),
                None => format!("{n}-{key}"),
            };
            if u.stack_name != default {
                o.set("stack_name", Y::Str(resolvers::literal(&u.stack_name)));
            }
            if let Some(r) = u
                .region
                .as_ref()
                .filter(|r| Some(*r) != envs[*n].region.as_ref())
            {
                o.set("region", Y::Str(r.clone()));
            }
            if !o.is_empty_map() {
                per_env.insert(n, o);
            }
        }
        pipe_stacks.set(key, def);
        for (n, o) in per_env {
            if let Some(Y::Map(m)) = overrides.get_mut(n) {
                m.push((key.clone(), o));
            }
        }
    }

    let mut root_y = Y::map();
    root_y.set("pipeline", Y::Str(pipeline.clone()));
    root_y.set(
        "description",
        Y::Str(format!(
            "Imported from the Sceptre project `{project_code}`"
        )),
    );
    if !p.missing_vars.is_empty() {
        let mut vars = Y::map();
        for v in &p.missing_vars {
            let mut d = Y::map();
            d.set("description", Y::Str("Set by Sceptre with --var or the runner's environment; set it in each environment".into()));
            vars.set(v, d);
        }
        root_y.set("vars", vars);
    }
    root_y.set("stacks", pipe_stacks);
    out.texts.push((
        format!("pipelines/{pipeline}/pipeline.yml"),
        super::emit::document(
            "yaml-language-server: $schema=../../schemas/pipeline.schema.json\nConverted from a Sceptre project by `formwork import sceptre`.",
            &root_y,
        ),
    ));

    for (name, env) in &envs {
        let mut e = Y::map();
        e.set("pipeline", Y::Str(pipeline.clone()));
        e.set(
            "description",
            Y::Str(format!(
                "Imported from the Sceptre stack group {}",
                env.group_file
                    .trim_end_matches("/config.yaml")
                    .trim_end_matches("config.yaml")
            )),
        );
        let account = match s.account {
            Some(a) => a.to_string(),
            None => {
                report.add(
                    &env.group_file,
                    (1, 1),
                    "account",
                    format!("Sceptre does not name the account of stack group `{name}`"),
                    format!("set `account:` in environments/{name}/environment.yml (it is 000000000000), or import again with --account"),
                );
                "000000000000".into()
            }
        };
        e.set("account", Y::Str(account));
        e.set(
            "region",
            Y::Str(env.region.clone().unwrap_or_else(|| "us-east-1".into())),
        );
        if let Some(r) = &env.role_arn {
            e.set("role_arn", Y::Str(r.clone()));
        }
        if let Some(b) = &env.artifact_bucket {
            e.set("artifact_bucket", Y::Str(b.clone()));
        }
        if let Some(o) = overrides.remove(name)
            && !o.is_empty_map()
        {
            e.set("stacks", o);
        }
        out.texts.push((
            format!("environments/{name}/environment.yml"),
            super::emit::document(
                "yaml-language-server: $schema=../../schemas/environment.schema.json\nConverted from a Sceptre project by `formwork import sceptre`.",
                &e,
            ),
        ));
    }
    out
}

/// `(top-level group, path inside it)`; stacks directly in `config/` have group `""`.
fn split_group(path: &str) -> (&str, &str) {
    path.split_once('/').unwrap_or(("", path))
}

/// A stack key from a path inside a group: letters, digits and `-`.
pub fn key_of(rel: &str) -> String {
    let k = name_of(rel);
    if matches!(k.as_str(), "env" | "var" | "ssm") {
        format!("stack-{k}")
    } else {
        k
    }
}

/// A name of letters, digits and `-` (what formwork allows for keys and environments).
pub fn name_of(s: &str) -> String {
    let k: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let k = k.trim_matches('-').to_string();
    if k.is_empty() { "stack".into() } else { k }
}

/// Sceptre's name for a stack: `<project_code>-<path with / as ->`.
pub fn sceptre_name(project_code: &str, path: &str) -> String {
    format!("{project_code}-{}", path.replace('/', "-"))
}

/// `<project_code>-${env.name}-<rest>` when that gives every environment's stack name and
/// formwork's default (`<env>-<key>`) does not.
fn name_pattern(key: &str, present: &[(&String, &Unit)]) -> Option<String> {
    if present
        .iter()
        .all(|(n, u)| u.stack_name == format!("{n}-{key}"))
    {
        return None;
    }
    let (n0, u0) = present.first()?;
    let (prefix, rest) = u0.stack_name.split_once(&format!("-{n0}-"))?;
    let pat = format!(
        "{}-${{env.name}}-{}",
        resolvers::literal(prefix),
        resolvers::literal(rest)
    );
    present
        .iter()
        .all(|(n, u)| pat.replace("${env.name}", n) == resolvers::literal(&u.stack_name))
        .then_some(pat)
}

type Pairs = Vec<(String, Y)>;

/// Values every environment gives alike (when the stack is in every one), and the rest per
/// environment.
fn split_common<'e>(
    all: bool,
    present: &[(&'e String, &Unit)],
    pairs: impl Fn(&Unit) -> Vec<(String, Y)>,
) -> (Pairs, BTreeMap<&'e String, Pairs>) {
    let per: Vec<(&String, Pairs)> = present.iter().map(|(n, u)| (*n, pairs(u))).collect();
    let mut names: Vec<String> = Vec::new();
    for (_, ps) in &per {
        for (k, _) in ps {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let mut common = Vec::new();
    let mut rest: BTreeMap<&String, Pairs> = BTreeMap::new();
    for k in names {
        let vals: Vec<Option<&Y>> = per
            .iter()
            .map(|(_, ps)| ps.iter().find(|(n, _)| *n == k).map(|(_, v)| v))
            .collect();
        let same =
            all && vals.iter().all(|v| v.is_some()) && vals.windows(2).all(|w| same_y(w[0], w[1]));
        if same {
            if let Some(Some(v)) = vals.first() {
                common.push((k.clone(), (*v).clone()));
            }
            continue;
        }
        for ((n, _), v) in per.iter().zip(&vals) {
            if let Some(v) = v {
                rest.entry(*n).or_default().push((k.clone(), (*v).clone()));
            }
        }
    }
    (common, rest)
}

fn same_y(a: Option<&Y>, b: Option<&Y>) -> bool {
    matches!((a, b), (Some(x), Some(y)) if x == y)
}

fn y_of(v: &Value) -> Y {
    match v {
        Value::Scalar(s) => Y::Str(s.clone()),
        Value::List(l) => Y::List(l.clone()),
        Value::Omit => Y::Str(String::new()),
    }
}

/// Environment-wide settings a stack brings: deploying role, template bucket (and a region that is
/// not a plain value, reported; regions are worked out per environment in [`convert`]).
fn env_fields(env: &mut Env, st: &StackFile, report: &mut Report) {
    let c = &st.config;
    let set = |slot: &mut Option<String>, e: Option<&Entry>, what: &str, report: &mut Report| {
        let Some(e) = e else { return };
        let Some(v) = e.plain_str() else {
            report.add(
                &e.file,
                e.pos(),
                "stack-field",
                format!("{what} is not a plain value"),
                "write the value in environment.yml by hand",
            );
            return;
        };
        match slot {
            None => *slot = Some(v.to_string()),
            Some(have) if have == v => {}
            Some(have) => report.add(
                &e.file,
                e.pos(),
                "stack-field",
                format!("{what} `{v}` differs from `{have}` of other stacks of environment {}", env.name),
                "an environment has one; move the stack to a stack group of its own (another environment)",
            ),
        }
    };
    if let Some(e) = c.fields.get("region").filter(|e| e.plain_str().is_none()) {
        report.add(
            &e.file,
            e.pos(),
            "stack-field",
            "region is not a plain value".to_string(),
            "write the region in environment.yml (or the stack's `region` there) by hand",
        );
    }
    let role = c
        .fields
        .get("sceptre_role")
        .or_else(|| c.fields.get("iam_role"));
    set(
        &mut env.role_arn,
        role,
        "the role Sceptre assumes (sceptre_role/iam_role)",
        report,
    );
    set(
        &mut env.artifact_bucket,
        c.fields.get("template_bucket_name"),
        "template_bucket_name",
        report,
    );
}

/// One stack of one environment, or `None` when it cannot be converted (reported).
fn unit(
    st: &StackFile,
    pc: &str,
    ctx: &Ctx<'_>,
    dir: &std::path::Path,
    report: &mut Report,
) -> Option<Unit> {
    let c = &st.config;
    let (template, template_entry) = template(st, report)?;
    let mut refs = BTreeSet::new();
    let mut parameters = IndexMap::new();
    for (name, e) in &c.parameters {
        if let Some(conv) = resolvers::convert(e, ctx, report) {
            refs.extend(conv.refs);
            if conv.value != Value::Omit {
                parameters.insert(name.clone(), conv.value);
            }
        }
    }
    let mut tags = IndexMap::new();
    for (k, e) in &c.stack_tags {
        if k.starts_with("formwork:") {
            continue;
        }
        match e.plain_str() {
            Some(v) => {
                tags.insert(k.clone(), resolvers::literal(v));
            }
            None => match resolvers::convert(e, ctx, report) {
                Some(conv) if conv.refs.is_empty() => {
                    if let Value::Scalar(s) = conv.value
                        && !s.contains("${")
                    {
                        tags.insert(k.clone(), s.replace("$${", "${"));
                    } else {
                        report.add(
                            &e.file,
                            e.pos(),
                            "stack-tag",
                            format!("stack tag `{k}` takes a value formwork cannot put in a tag"),
                            "write the tag's value by hand",
                        );
                    }
                }
                Some(_) => report.add(
                    &e.file,
                    e.pos(),
                    "stack-tag",
                    format!("stack tag `{k}` takes a stack output"),
                    "tags may use ${var.…} and ${env.…} only: write the value by hand",
                ),
                None => {}
            },
        }
    }
    let mut needs = BTreeSet::new();
    for d in &c.dependencies {
        let Some(path) = d.plain_str() else { continue };
        let path = path
            .trim()
            .trim_start_matches("./")
            .trim_end_matches(".yaml");
        match ctx.stacks.get(path) {
            Some((g, k)) if g == ctx.group => {
                if !refs.contains(k) && path != st.path {
                    needs.insert(k.clone());
                }
            }
            Some(_) => report.add(&d.file, d.pos(), "dependency", format!("dependency {path}.yaml is in another stack group (another formwork environment)"), "deploy that environment first; formwork orders stacks within one environment"),
            None => report.add(&d.file, d.pos(), "dependency", format!("dependency {path}.yaml names no stack of the project"), "remove it or fix the path (relative to config/)"),
        }
    }
    let stack_name = match c.fields.get("stack_name") {
        Some(e) => match e.plain_str() {
            Some(n) => n.to_string(),
            None => {
                report.add(
                    &e.file,
                    e.pos(),
                    "stack-field",
                    "stack_name is not a plain value",
                    "write the stack name in the environment's stacks: by hand",
                );
                sceptre_name(pc, &st.path)
            }
        },
        None => sceptre_name(pc, &st.path),
    };
    unmapped_fields(st, report);
    let options = super::options::options(st, ctx, dir, report);
    let hooks = super::hooks::hooks(st, report);
    Some(Unit {
        file: st.file.clone(),
        template,
        template_entry,
        parameters,
        tags,
        needs,
        stack_name,
        options,
        hooks,
        region: c
            .fields
            .get("region")
            .and_then(|e| e.plain_str())
            .map(str::to_string),
    })
}

/// The value met most often (the first of those tied), if any.
fn most_common(values: impl Iterator<Item = String>) -> Option<String> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for v in values {
        match counts.iter_mut().find(|(c, _)| *c == v) {
            Some((_, n)) => *n += 1,
            None => counts.push((v, 1)),
        }
    }
    let best = counts.iter().map(|(_, n)| *n).max()?;
    counts.into_iter().find(|(_, n)| *n == best).map(|(v, _)| v)
}

/// The formwork `template:` of a stack: `templates/<path>` for a file (copied), the URL for
/// `http`/`s3` template handlers.
fn template(st: &StackFile, report: &mut Report) -> Option<(String, Option<Entry>)> {
    let c = &st.config;
    let (path, entry) = if let Some(e) = c.fields.get("template_path") {
        (e.plain_str().map(str::to_string), e)
    } else if let Some(e) = c.fields.get("template") {
        let kind = e
            .node
            .get("type")
            .and_then(|n| n.as_str())
            .unwrap_or("file");
        let arg = |k: &str| e.node.get(k).and_then(|n| n.as_str()).map(str::to_string);
        match kind {
            "file" => (arg("path"), e),
            "http" => match arg("url").filter(|u| u.starts_with("https://")) {
                Some(u) => return Some((u, Some(e.clone()))),
                None => (None, e),
            },
            "s3" => match arg("path") {
                Some(p) => {
                    return Some((
                        format!("s3://{}", p.trim_start_matches('/')),
                        Some(e.clone()),
                    ));
                }
                None => (None, e),
            },
            _ => (None, e),
        }
    } else {
        report.add(
            &st.file,
            (1, 1),
            "template",
            format!("{} names no template (template_path or template)", st.file),
            "add the stack to the pipeline by hand",
        );
        return None;
    };
    let Some(path) = path else {
        report.add(&entry.file, entry.pos(), "template", "a template handler formwork cannot read (not a file, an https URL or an S3 object)", "render the template once, keep it in the pipeline's templates/ and add the stack by hand");
        return None;
    };
    let path = path
        .trim_start_matches("./")
        .trim_start_matches("templates/")
        .to_string();
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".j2") || lower.ends_with(".py") {
        report.add(&entry.file, entry.pos(), "template", format!("template {path} is rendered by Sceptre (Jinja or Python, with sceptre_user_data)"), "render it once per environment (sceptre generate), keep the result in the pipeline's templates/ and add the stack by hand; formwork deploys plain templates");
        return None;
    }
    if path.contains("..") || path.starts_with('/') || path.contains('\\') {
        report.add(
            &entry.file,
            entry.pos(),
            "template",
            format!("template {path} lies outside templates/"),
            "move it into the project's templates/ and import again",
        );
        return None;
    }
    Some((format!("templates/{path}"), Some(entry.clone())))
}

/// Reports the stack's fields that have no formwork equivalent.
fn unmapped_fields(st: &StackFile, report: &mut Report) {
    let c: &Config = &st.config;
    for (field, help) in UNMAPPED_FIELDS {
        let Some(e) = c.fields.get(*field) else {
            continue;
        };
        if matches!(e.plain_str(), Some("false" | "False" | "0" | "")) {
            continue;
        }
        report.add(
            &e.file,
            e.pos(),
            "stack-field",
            format!("`{field}` of {}", st.file),
            *help,
        );
    }
    // sceptre_user_data needs nothing: Sceptre hands it only to Jinja and Python templates,
    // which are reported by `template`; a plain template never sees it.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_keys() {
        assert_eq!(key_of("db/main_v2"), "db-main-v2");
        assert_eq!(key_of("env"), "stack-env");
        assert_eq!(name_of("Prod EU"), "Prod-EU");
        assert_eq!(sceptre_name("shop", "dev/db/main"), "shop-dev-db-main");
    }
}
