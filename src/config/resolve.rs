//! Checking a pipeline on its own ([`check_pipeline`]) and resolving an environment against its
//! pipeline into desired state ([`resolve_environment`]), reporting every problem on the way
//! with the place it was written.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};

use indexmap::IndexMap;
use regex::Regex;

use super::expr::{self, EnvFact, Expr, Reference};
use super::load::{Environment, Pipeline, StackTemplate};
use super::model::{ParamValue, StackDef};
use crate::desired::{
    Dependency, DependencyKind, DesiredEnvironment, ParamSetting, TemplateRef, Unit,
};
use crate::diag::{Diagnostic, Diagnostics, Loc, Pos, Span};
use crate::graph::Graph;
use crate::suggest;
use crate::template::Capability;
use crate::template::{MAX_TEMPLATE_BODY_BYTES, ParamCheck, Template, check_value};
use crate::yaml::Spanned;

/// Stack keys that would make expressions ambiguous.
const RESERVED_KEYS: &[&str] = &["env", "var", "ssm"];

/// CloudFormation's limits on tags. Source: AWS CloudFormation `Tag` data type reference.
const MAX_TAGS: usize = 50;
const MAX_TAG_KEY: usize = 128;
const MAX_TAG_VALUE: usize = 256;

fn stack_key_ok(k: &str) -> bool {
    let mut chars = k.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// CloudFormation stack names: a letter, then letters, digits and hyphens, at most 128.
fn stack_name_ok(n: &str) -> bool {
    let mut chars = n.chars();
    n.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The span of characters `offset..offset+len` inside a scalar written at `s`, when the scalar
/// sits on one line as written (plain or quoted); else the whole scalar.
fn inner_span(span: Span, text: &str, offset: usize, len: usize) -> Span {
    let n = text.chars().count() as u32;
    if span.start.line != span.end.line {
        return span;
    }
    let width = span.end.col.saturating_sub(span.start.col);
    let shift = if width == n {
        0
    } else if width == n + 2 {
        1
    } else {
        return span;
    };
    Span::on_line(
        Pos {
            line: span.start.line,
            col: span.start.col + shift + offset as u32,
        },
        len as u32,
    )
}

/// Parses the expressions of a config value; a list is parsed item by item and joined with
/// commas. Errors point into the string where it can.
fn parse_value(file: &Arc<str>, v: &Spanned<ParamValue>) -> Result<Expr, Diagnostic> {
    let parse_one = |text: &str| {
        expr::parse(text).map_err(|e| {
            Diagnostic::error(e.message)
                .at(Loc::new(file, inner_span(v.span, text, e.offset, e.len)))
                .help_opt(e.help)
        })
    };
    match &v.value {
        ParamValue::Scalar(s) => parse_one(s),
        ParamValue::List(items) => {
            let mut segments = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    segments.push(expr::Segment::Text(",".into()));
                }
                segments.extend(parse_one(item)?.segments);
            }
            // Re-join adjacent text.
            Ok(Expr { segments }.substitute(&mut |_| None))
        }
    }
}

fn parse_string(file: &Arc<str>, v: &Spanned<String>) -> Result<Expr, Diagnostic> {
    parse_value(
        file,
        &Spanned::new(ParamValue::Scalar(v.value.clone()), v.span),
    )
}

/// Where a config value was written, to point at the part of it that a problem concerns.
struct At<'a> {
    file: &'a Arc<str>,
    span: Span,
    /// The scalar's text, when the value is one string.
    text: Option<&'a str>,
}

impl<'a> At<'a> {
    fn value(file: &'a Arc<str>, v: &'a Spanned<ParamValue>) -> At<'a> {
        At {
            file,
            span: v.span,
            text: match &v.value {
                ParamValue::Scalar(s) => Some(s),
                ParamValue::List(_) => None,
            },
        }
    }

    fn string(file: &'a Arc<str>, v: &'a Spanned<String>) -> At<'a> {
        At {
            file,
            span: v.span,
            text: Some(&v.value),
        }
    }

    /// The whole value.
    fn whole(&self) -> Loc {
        Loc::new(self.file, self.span)
    }

    /// The reference `r` inside the value, or the whole value when it cannot be found.
    fn of(&self, r: &Reference) -> Loc {
        let written = r.to_string();
        match self.text.and_then(|t| t.find(&written).map(|b| (t, b))) {
            Some((t, byte)) => Loc::new(
                self.file,
                inner_span(
                    self.span,
                    t,
                    t[..byte].chars().count(),
                    written.chars().count(),
                ),
            ),
            None => self.whole(),
        }
    }
}

/// The output names a stack's template declares, when known offline.
fn declared_outputs(p: &Pipeline, stack: &str) -> Option<Vec<String>> {
    p.templates
        .get(stack)
        .and_then(StackTemplate::parsed)
        .map(|t| t.outputs.keys().cloned().collect())
}

/// Checks one reference to another stack's output; `None` when it is fine.
fn check_output_ref(
    p: &Pipeline,
    from: &str,
    stack: &str,
    output: &str,
    loc: &Loc,
) -> Option<Diagnostic> {
    if stack == from {
        return Some(
            Diagnostic::error(format!("stack `{from}` takes its own output `${{{stack}.{output}}}`"))
                .at(loc.clone())
                .help("a stack cannot take its own outputs as parameters; use the resource directly inside the template"),
        );
    }
    if !p.def.stacks.contains_key(stack) {
        let near = suggest::nearest(stack, p.def.stacks.keys().map(|k| k.value.as_str()));
        return Some(
            Diagnostic::error(format!(
                "`${{{stack}.{output}}}` refers to stack `{stack}`, which pipeline `{}` does not have",
                p.name
            ))
            .at(loc.clone())
            .label_opt(near.map(|n| format!("did you mean `{n}`?")))
            .help(format!(
                "the stacks of pipeline `{}` are: {}",
                p.name,
                p.def.stacks.keys().map(|k| k.value.as_str()).collect::<Vec<_>>().join(", ")
            )),
        );
    }
    let outputs = declared_outputs(p, stack)?;
    if outputs.iter().any(|o| o == output) {
        let decl = p.templates[stack].parsed()?.outputs.get(output)?;
        return decl.condition.as_ref().map(|c| {
            Diagnostic::warning(format!(
                "output `{output}` of stack `{stack}` exists only when condition `{c}` holds"
            ))
            .at(loc.clone())
            .help("make sure the condition holds in every environment that uses this value")
        });
    }
    let near = suggest::nearest(output, outputs.iter().map(String::as_str));
    let path = p.templates[stack]
        .parsed()
        .map(|_| match &p.templates[stack] {
            StackTemplate::Local { path, .. } => path.clone(),
            StackTemplate::Url { .. } => String::new(),
        })
        .unwrap_or_default();
    Some(
        Diagnostic::error(format!(
            "stack `{stack}` has no output `{output}` (its template {path} does not declare it)"
        ))
        .at(loc.clone())
        .label_opt(near.map(|n| format!("did you mean `{n}`?")))
        .help(if outputs.is_empty() {
            format!("the template of `{stack}` declares no Outputs; add one")
        } else {
            format!("outputs of `{stack}`: {}", outputs.join(", "))
        }),
    )
}

fn check_var_ref(p: &Pipeline, name: &str, loc: &Loc) -> Option<Diagnostic> {
    if p.def.vars.contains_key(name) {
        return None;
    }
    let near = suggest::nearest(name, p.def.vars.keys().map(|k| k.value.as_str()));
    Some(
        Diagnostic::error(format!(
            "variable `{name}` is not declared in pipeline `{}`",
            p.name
        ))
        .at(loc.clone())
        .label_opt(near.map(|n| format!("did you mean `{n}`?")))
        .help(format!("declare it under `vars:` in {}", p.file)),
    )
}

/// Which references a kind of value may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Allowed {
    /// Parameters: everything.
    All,
    /// Tags, stack names, URLs and variable values: `${var.…}` and `${env.…}` only.
    Static,
}

fn check_refs(
    p: &Pipeline,
    from: Option<&str>,
    e: &Expr,
    at: &At<'_>,
    allowed: Allowed,
    what: &str,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for r in e.references() {
        let loc = &at.of(r);
        match r {
            Reference::Output { stack, output } => {
                if allowed == Allowed::Static {
                    out.push(
                        Diagnostic::error(format!("{what} cannot use stack outputs (`{r}`)"))
                            .at(loc.clone())
                            .help("only parameters take stack outputs; here use `${var.NAME}` or `${env.…}`"),
                    );
                } else if let Some(from) = from {
                    out.extend(check_output_ref(p, from, stack, output, loc));
                }
            }
            Reference::Ssm(_) if allowed == Allowed::Static => out.push(
                Diagnostic::error(format!("{what} cannot use SSM parameters (`{r}`)"))
                    .at(loc.clone())
                    .help("only parameters are read from SSM"),
            ),
            Reference::External { .. } if allowed == Allowed::Static => out.push(
                Diagnostic::error(format!("{what} cannot use outputs of other stacks (`{r}`)"))
                    .at(loc.clone())
                    .help(
                        "only parameters take stack outputs; here use `${var.NAME}` or `${env.…}`",
                    ),
            ),
            Reference::Var(v) => out.extend(check_var_ref(p, v, loc)),
            Reference::Ssm(_) | Reference::Env(_) | Reference::External { .. } => {}
        }
    }
    out
}

/// Checks what can be checked of a pipeline without an environment: stack keys, template
/// references, `needs`, expressions, parameter names, capabilities and dependency cycles.
pub fn check_pipeline(p: &Pipeline) -> Diagnostics {
    let mut d = Diagnostics::new();
    let file = &p.file;
    for var in p.def.vars.keys() {
        if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            d.push(
                Diagnostic::error(format!("`{}` is not a variable name", var.value))
                    .at(Loc::new(file, var.span))
                    .help("variable names use letters, digits and `_`"),
            );
        }
    }
    if p.def.stacks.is_empty() {
        d.push(
            Diagnostic::error(format!("pipeline `{}` has no stacks", p.name))
                .at(Loc::file_start(file))
                .help("add at least one stack under `stacks:`"),
        );
    }
    for (name, value) in &p.def.defaults.parameters {
        let at = At::value(file, value);
        let loc = at.whole();
        match parse_value(file, value) {
            Ok(e) => {
                for diag in check_refs(p, None, &e, &at, Allowed::All, "a default parameter") {
                    d.push(diag);
                }
                if e.references()
                    .iter()
                    .any(|r| matches!(r, Reference::Output { .. }))
                {
                    d.push(
                        Diagnostic::error(format!(
                            "default parameter `{}` takes a stack output",
                            name.value
                        ))
                        .at(loc)
                        .help("set output-fed parameters on the stacks that take them"),
                    );
                }
            }
            Err(e) => d.push(e),
        }
    }
    for (k, v) in &p.def.defaults.tags {
        check_static(p, &mut d, v, "a tag value");
        let _ = k;
    }

    let mut graph = Graph::new(p.def.stacks.keys().map(|k| k.value.clone()));
    let mut edge_loc: HashMap<(String, String), Loc> = HashMap::new();
    for (key, stack) in &p.def.stacks {
        let key_loc = Loc::new(file, key.span);
        if !stack_key_ok(key) {
            d.push(
                Diagnostic::error(format!("`{}` is not a valid stack key", key.value))
                    .at(key_loc.clone())
                    .help(
                        "stack keys use letters, digits and `-`, and start with a letter or digit",
                    ),
            );
        } else if RESERVED_KEYS.contains(&key.as_str()) {
            d.push(
                Diagnostic::error(format!("`{}` cannot be a stack key", key.value))
                    .at(key_loc.clone())
                    .help("`env`, `var` and `ssm` are reserved for expressions; rename the stack"),
            );
        }
        for need in &stack.needs {
            let loc = Loc::new(file, need.span);
            if need.value == key.value {
                d.push(
                    Diagnostic::error(format!("stack `{}` needs itself", key.value))
                        .at(loc)
                        .help("remove it from `needs`"),
                );
            } else if !p.def.stacks.contains_key(need.as_str()) {
                let near = suggest::nearest(need, p.def.stacks.keys().map(|k| k.value.as_str()));
                d.push(
                    Diagnostic::error(format!(
                        "stack `{}` needs `{}`, which pipeline `{}` does not have",
                        key.value, need.value, p.name
                    ))
                    .at(loc)
                    .label_opt(near.map(|n| format!("did you mean `{n}`?"))),
                );
            } else {
                graph.add_dependency(key, need);
                edge_loc
                    .entry((key.value.clone(), need.value.clone()))
                    .or_insert(loc);
            }
        }
        let template = p
            .templates
            .get(key.as_str())
            .and_then(StackTemplate::parsed);
        for (pname, value) in &stack.parameters {
            let at = At::value(file, value);
            let loc = at.whole();
            if let Some(t) = template
                && !t.parameters.contains_key(pname.as_str())
            {
                d.push(unknown_parameter(file, pname, key, t));
            }
            match parse_value(file, value) {
                Ok(e) => {
                    for diag in check_refs(p, Some(key), &e, &at, Allowed::All, "a parameter") {
                        d.push(diag);
                    }
                    for r in e.references() {
                        if let Reference::Output { stack: s, .. } = r
                            && p.def.stacks.contains_key(s.as_str())
                            && s != &key.value
                        {
                            graph.add_dependency(key, s);
                            edge_loc
                                .entry((key.value.clone(), s.clone()))
                                .or_insert_with(|| loc.clone());
                        }
                    }
                }
                Err(e) => d.push(e),
            }
        }
        for v in stack.tags.values() {
            check_static(p, &mut d, v, "a tag value");
        }
        if let Some(n) = &stack.stack_name {
            check_static(p, &mut d, n, "a stack name");
        }
        if let (Some(caps), Some(t)) = (&stack.capabilities, template) {
            check_capabilities(&mut d, file, key, caps, t);
        }
    }
    for diag in cycle_diagnostics(&graph, &edge_loc) {
        d.push(diag);
    }
    for (name, decl) in &p.def.vars {
        if let Some(default) = &decl.default {
            match parse_value(file, default) {
                Ok(e) => {
                    if let Some(r) = e
                        .references()
                        .into_iter()
                        .find(|r| !matches!(r, Reference::Env(_)))
                    {
                        d.push(
                            Diagnostic::error(format!(
                                "the default of variable `{}` cannot use `{r}`",
                                name.value
                            ))
                            .at(At::value(file, default).of(r))
                            .help("variable values may use `${env.name}`, `${env.region}` and `${env.account}` only"),
                        );
                    }
                }
                Err(e) => d.push(e),
            }
        }
    }
    d
}

/// One error per dependency cycle, naming its path and pointing at its first edge.
fn cycle_diagnostics(graph: &Graph, edge_loc: &HashMap<(String, String), Loc>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for cycle in graph.cycles() {
        let names: Vec<&str> = cycle.iter().map(|&i| graph.name(i)).collect();
        let mut path = names.join(" → ");
        path.push_str(" → ");
        path.push_str(names[0]);
        let first_edge = (
            names[0].to_string(),
            names.get(1).copied().unwrap_or(names[0]).to_string(),
        );
        out.push(
            Diagnostic::error(format!("dependency cycle: {path}"))
                .at_opt(edge_loc.get(&first_edge).cloned())
                .label(format!(
                    "`{}` waits for `{}` here",
                    first_edge.0, first_edge.1
                ))
                .help("each stack must be deployable after the stacks it takes outputs from or needs; break the cycle by removing one of these references"),
        );
    }
    out
}

fn check_static(p: &Pipeline, d: &mut Diagnostics, v: &Spanned<String>, what: &str) {
    check_static_in(p, &p.file, d, v, what);
}

/// Checks a value that may only use `${var.…}` and `${env.…}`, written in `file`.
fn check_static_in(
    p: &Pipeline,
    file: &Arc<str>,
    d: &mut Diagnostics,
    v: &Spanned<String>,
    what: &str,
) {
    let at = At::string(file, v);
    match parse_string(file, v) {
        Ok(e) => {
            for diag in check_refs(p, None, &e, &at, Allowed::Static, what) {
                d.push(diag);
            }
        }
        Err(e) => d.push(e),
    }
}

fn unknown_parameter(
    file: &Arc<str>,
    pname: &Spanned<String>,
    stack: &str,
    t: &Template,
) -> Diagnostic {
    let near = suggest::nearest(pname, t.parameters.keys().map(String::as_str));
    Diagnostic::error(format!(
        "the template of stack `{stack}` has no parameter `{}`",
        pname.value
    ))
    .at(Loc::new(file, pname.span))
    .label_opt(near.map(|n| format!("did you mean `{n}`?")))
    .help(if t.parameters.is_empty() {
        "the template declares no Parameters".to_string()
    } else {
        format!(
            "its parameters are: {}",
            t.parameters.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })
}

fn check_capabilities(
    d: &mut Diagnostics,
    file: &Arc<str>,
    key: &str,
    caps: &[Spanned<Capability>],
    t: &Template,
) {
    for (needed, resource) in t.required_capabilities() {
        if !caps.iter().any(|c| c.value.covers(*needed)) {
            let at = caps
                .first()
                .map(|c| Loc::new(file, c.span))
                .unwrap_or_else(|| Loc::file_start(file));
            d.push(
                Diagnostic::error(format!(
                    "stack `{key}` needs {needed}: its template creates `{resource}`"
                ))
                .at(at)
                .help(format!(
                    "add {needed} to `capabilities`, or leave `capabilities` out to acknowledge what the template needs"
                )),
            );
        }
    }
}

/// Facts and variables of one environment, for filling in expressions.
struct Scope<'a> {
    env: &'a Environment,
    vars: HashMap<String, String>,
    /// Static values already filled in, by where they were written: tags and names shared by
    /// every stack are worked out once per environment.
    filled: std::cell::RefCell<HashMap<Loc, Option<String>>>,
}

impl Scope<'_> {
    fn fill(&self, e: &Expr) -> Expr {
        e.substitute(&mut |r| match r {
            Reference::Env(EnvFact::Name) => Some(self.env.name.clone()),
            Reference::Env(EnvFact::Region) => Some(self.env.def.region.value.clone()),
            Reference::Env(EnvFact::Account) => Some(self.env.def.account.value.clone()),
            Reference::Var(v) => self.vars.get(v).cloned(),
            _ => None,
        })
    }
}

static REGION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z]{2}(-[a-z]+)+-\d+$").expect("valid regex"));
static ROLE_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]+$").expect("valid regex")
});
static BUCKET: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$").expect("valid regex"));

/// Formats of environment fields. Sources: AWS account ids are 12 digits; region names as in
/// the AWS General Reference; IAM role ARNs; S3 bucket naming rules.
fn env_field_checks(env: &Environment, d: &mut Diagnostics) {
    let f = &env.file;
    let def = &env.def;
    if !(def.account.len() == 12 && def.account.chars().all(|c| c.is_ascii_digit())) {
        d.push(
            Diagnostic::error(format!("`{}` is not an AWS account id", def.account.value))
                .at(Loc::new(f, def.account.span))
                .help("an account id is 12 digits; quote it so YAML keeps leading zeros: account: \"012345678901\""),
        );
    }
    if !REGION.is_match(&def.region) {
        d.push(
            Diagnostic::error(format!("`{}` is not an AWS region name", def.region.value))
                .at(Loc::new(f, def.region.span))
                .help("write a region such as `us-east-1` or `ap-southeast-2`"),
        );
    }
    if let Some(role) = &def.role_arn {
        match ROLE_ARN.captures(role) {
            None => d.push(
                Diagnostic::error(format!("`{}` is not an IAM role ARN", role.value))
                    .at(Loc::new(f, role.span))
                    .help("write arn:aws:iam::<account>:role/<name>"),
            ),
            Some(c) if c[1] != *def.account.value => d.push(
                Diagnostic::warning(format!(
                    "role {} is in account {}, the environment in account {}",
                    role.value, &c[1], def.account.value
                ))
                .at(Loc::new(f, role.span))
                .help("deployment roles usually live in the account they deploy to"),
            ),
            Some(_) => {}
        }
    }
    if let Some(b) = &def.artifact_bucket
        && (!BUCKET.is_match(b) || b.contains(".."))
    {
        d.push(
            Diagnostic::error(format!("`{}` is not a valid S3 bucket name", b.value))
                .at(Loc::new(f, b.span))
                .help("bucket names are 3–63 lower-case letters, digits, dots and hyphens"),
        );
    }
}

/// Resolves an environment against its pipeline into desired state. `pipeline` is `None` when
/// the environment's pipeline does not exist (reported here, with the known names).
pub fn resolve_environment(
    env: &Environment,
    pipeline: Option<&Pipeline>,
    known_pipelines: &[String],
) -> (Option<DesiredEnvironment>, Diagnostics) {
    let mut d = Diagnostics::new();
    let f = &env.file;
    env_field_checks(env, &mut d);
    let Some(p) = pipeline else {
        if known_pipelines.contains(&env.def.pipeline.value) {
            // The pipeline exists but could not be read; its own errors say why.
            return (None, d);
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
            .at(Loc::new(f, env.def.pipeline.span))
            .label_opt(near.map(|n| format!("did you mean `{n}`?")))
            .help(if known_pipelines.is_empty() {
                "there are no pipelines; add pipelines/<name>/pipeline.yml".to_string()
            } else {
                format!("pipelines: {}", known_pipelines.join(", "))
            }),
        );
        return (None, d);
    };

    // Variables.
    let mut scope = Scope {
        env,
        vars: HashMap::new(),
        filled: Default::default(),
    };
    for (name, value) in &env.def.vars {
        let loc = Loc::new(f, name.span);
        if !p.def.vars.contains_key(name.as_str()) {
            let near = suggest::nearest(name, p.def.vars.keys().map(|k| k.value.as_str()));
            d.push(
                Diagnostic::error(format!(
                    "pipeline `{}` declares no variable `{}`",
                    p.name, name.value
                ))
                .at(loc)
                .label_opt(near.map(|n| format!("did you mean `{n}`?")))
                .help(format!("declare it under `vars:` in {}", p.file)),
            );
            continue;
        }
        if let Some(v) = var_value(p, f, value, &scope, &mut d) {
            scope.vars.insert(name.value.clone(), v);
        }
    }
    for (name, decl) in &p.def.vars {
        if scope.vars.contains_key(name.as_str()) || env.def.vars.contains_key(name.as_str()) {
            continue;
        }
        match &decl.default {
            Some(default) => {
                if let Some(v) = var_value(p, &p.file, default, &scope, &mut d) {
                    scope.vars.insert(name.value.clone(), v);
                }
            }
            None => d.push(
                Diagnostic::error(format!(
                    "environment `{}` does not set variable `{}`, which has no default",
                    env.name, name.value
                ))
                .at(Loc::new(f, env.def.pipeline.span))
                .help(format!("add `vars: {{{}: …}}` to {f}", name.value)),
            ),
        }
    }

    // Per-stack overrides must name pipeline stacks.
    for key in env.def.stacks.keys() {
        if !p.def.stacks.contains_key(key.as_str()) {
            let near = suggest::nearest(key, p.def.stacks.keys().map(|k| k.value.as_str()));
            d.push(
                Diagnostic::error(format!(
                    "pipeline `{}` has no stack `{}`",
                    p.name, key.value
                ))
                .at(Loc::new(f, key.span))
                .label_opt(near.map(|n| format!("did you mean `{n}`?")))
                .help(format!(
                    "its stacks are: {}",
                    p.def
                        .stacks
                        .keys()
                        .map(|k| k.value.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
        }
    }

    let enabled: BTreeSet<String> = p
        .def
        .stacks
        .iter()
        .filter(|(k, s)| {
            env.def
                .stacks
                .get(k.as_str())
                .and_then(|o| o.enabled.as_ref())
                .or(s.enabled.as_ref())
                .is_none_or(|b| b.value)
        })
        .map(|(k, _)| k.value.clone())
        .collect();

    // Alternatives: exactly one stack of each choice.
    let mut choices: BTreeMap<&str, Vec<&Spanned<String>>> = BTreeMap::new();
    for (key, stack) in &p.def.stacks {
        if let Some(c) = &stack.choice {
            choices.entry(c.value.as_str()).or_default().push(key);
        }
    }
    for (choice, keys) in &choices {
        let on: Vec<&str> = keys
            .iter()
            .filter(|k| enabled.contains(k.as_str()))
            .map(|k| k.value.as_str())
            .collect();
        if on.len() != 1 {
            let all: Vec<&str> = keys.iter().map(|k| k.value.as_str()).collect();
            d.push(
                Diagnostic::error(if on.is_empty() {
                    format!(
                        "environment `{}` enables none of the stacks of choice `{choice}` ({})",
                        env.name,
                        all.join(", ")
                    )
                } else {
                    format!(
                        "environment `{}` enables {} stacks of choice `{choice}` ({}); they replace each other",
                        env.name,
                        on.len(),
                        on.join(", ")
                    )
                })
                .at(Loc::new(f, env.def.pipeline.span))
                .help(format!(
                    "enable exactly one in {f}: `stacks: {{{}: {{enabled: true}}}}`, and the others `enabled: false`",
                    all[0]
                )),
            );
        }
    }

    let mut units = IndexMap::new();
    for (key, stack) in &p.def.stacks {
        if !enabled.contains(key.as_str()) {
            continue;
        }
        if let Some(u) = resolve_unit(p, env, &scope, key, stack, &enabled, &mut d) {
            units.insert(key.value.clone(), u);
        }
    }

    // Settings for stacks this environment disables are still checked, so that they are right
    // the day the stack is switched on.
    for key in p.def.stacks.keys() {
        if let (false, Some(over)) = (
            enabled.contains(key.as_str()),
            env.def.stacks.get(key.as_str()),
        ) {
            check_disabled_override(p, env, key, over, &mut d);
        }
    }

    let mut graph = Graph::new(units.keys().cloned());
    let mut edge_loc: HashMap<(String, String), Loc> = HashMap::new();
    for u in units.values() {
        for dep in &u.dependencies {
            graph.add_dependency(&u.stack, &dep.stack);
            edge_loc
                .entry((u.stack.clone(), dep.stack.clone()))
                .or_insert_with(|| dep.loc.clone());
        }
    }
    // Output references set in the environment can close cycles the pipeline alone does not.
    for diag in cycle_diagnostics(&graph, &edge_loc) {
        d.push(diag);
    }
    let desired = DesiredEnvironment {
        name: env.name.clone(),
        pipeline: p.name.clone(),
        account: env.def.account.value.clone(),
        region: env.def.region.value.clone(),
        role_arn: env.def.role_arn.as_ref().map(|r| r.value.clone()),
        artifact_bucket: env.def.artifact_bucket.as_ref().map(|b| b.value.clone()),
        allow_delete: env.def.allow_delete.as_ref().is_some_and(|b| b.value),
        gates: p
            .def
            .gates
            .iter()
            .map(|(name, g)| crate::desired::Gate {
                name: name.value.clone(),
                message: g.message.clone(),
                after: g
                    .after
                    .iter()
                    .filter(|k| units.contains_key(k.as_str()))
                    .map(|k| k.value.clone())
                    .collect(),
                before: g
                    .before
                    .iter()
                    .filter(|k| units.contains_key(k.as_str()))
                    .map(|k| k.value.clone())
                    .collect(),
            })
            .filter(|g| !g.before.is_empty())
            .collect(),
        units,
        graph,
    };
    (Some(desired), d)
}

/// Checks an environment's settings for a stack it does not deploy: parameter names and
/// expressions, tag keys and values, and the stack name's expressions.
fn check_disabled_override(
    p: &Pipeline,
    env: &Environment,
    key: &Spanned<String>,
    over: &super::model::StackOverride,
    d: &mut Diagnostics,
) {
    let ef = &env.file;
    let template = p
        .templates
        .get(key.as_str())
        .and_then(StackTemplate::parsed);
    for (name, v) in &over.parameters {
        if let Some(t) = template
            && !t.parameters.contains_key(name.as_str())
        {
            d.push(unknown_parameter(ef, name, key, t));
        }
        match parse_value(ef, v) {
            Ok(e) => {
                for diag in check_refs(
                    p,
                    Some(key),
                    &e,
                    &At::value(ef, v),
                    Allowed::All,
                    "a parameter",
                ) {
                    d.push(diag);
                }
            }
            Err(e) => d.push(e),
        }
    }
    for (k, v) in &over.tags {
        if k.starts_with("aws:") {
            d.push(reserved_tag(ef, k));
        }
        check_static_in(p, ef, d, v, "a tag value");
    }
    if let Some(n) = &over.stack_name {
        check_static_in(p, ef, d, n, "a stack name");
    }
}

fn reserved_tag(file: &Arc<str>, k: &Spanned<String>) -> Diagnostic {
    Diagnostic::error(format!(
        "tag key `{}` uses the reserved `aws:` prefix",
        k.value
    ))
    .at(Loc::new(file, k.span))
    .help("AWS reserves tag keys starting with `aws:`; choose another key")
}

/// A variable value, with `${env.…}` filled in; other references are errors.
fn var_value(
    p: &Pipeline,
    file: &Arc<str>,
    value: &Spanned<ParamValue>,
    scope: &Scope<'_>,
    d: &mut Diagnostics,
) -> Option<String> {
    let e = match parse_value(file, value) {
        Ok(e) => e,
        Err(e) => {
            d.push(e);
            return None;
        }
    };
    let loc = Loc::new(file, value.span);
    if let Some(r) = e
        .references()
        .into_iter()
        .find(|r| !matches!(r, Reference::Env(_)))
    {
        d.push(
            Diagnostic::error(format!("a variable value cannot use `{r}`"))
                .at(loc)
                .help(format!(
                    "variable values may use `${{env.name}}`, `${{env.region}}` and `${{env.account}}` only (pipeline `{}`)",
                    p.name
                )),
        );
        return None;
    }
    scope.fill(&e).as_literal()
}

/// Fills in a static value (tag, stack name, URL); `None` after reporting a problem.
fn static_value(
    p: &Pipeline,
    file: &Arc<str>,
    v: &Spanned<String>,
    scope: &Scope<'_>,
    what: &str,
    d: &mut Diagnostics,
) -> Option<String> {
    let loc = Loc::new(file, v.span);
    if let Some(done) = scope.filled.borrow().get(&loc) {
        return done.clone();
    }
    let value = match parse_string(file, v) {
        Ok(e) => {
            let problems = check_refs(p, None, &e, &At::string(file, v), Allowed::Static, what);
            let failed = !problems.is_empty();
            for x in problems {
                d.push(x);
            }
            if failed {
                None
            } else {
                scope.fill(&e).as_literal()
            }
        }
        Err(e) => {
            d.push(e);
            None
        }
    };
    scope.filled.borrow_mut().insert(loc, value.clone());
    value
}

fn resolve_unit(
    p: &Pipeline,
    env: &Environment,
    scope: &Scope<'_>,
    key: &Spanned<String>,
    stack: &StackDef,
    enabled: &BTreeSet<String>,
    d: &mut Diagnostics,
) -> Option<Unit> {
    let pf = &p.file;
    let ef = &env.file;
    let over = env.def.stacks.get(key.as_str());
    let stack_template = p.templates.get(key.as_str())?;
    let parsed = stack_template.parsed().cloned();

    // Template.
    let template = match stack_template {
        StackTemplate::Local {
            path,
            template: Some(t),
        } => TemplateRef::Local {
            path: path.clone(),
            template: t.clone(),
        },
        StackTemplate::Local { template: None, .. } => return None,
        StackTemplate::Url { url } => TemplateRef::Url {
            url: static_value(p, pf, url, scope, "a template URL", d)?,
        },
    };
    if let Some(t) = &parsed
        && t.size > MAX_TEMPLATE_BODY_BYTES
        && env.def.artifact_bucket.is_none()
    {
        d.push(
                Diagnostic::error(format!(
                    "the template of stack `{}` is {} bytes, over CloudFormation's {MAX_TEMPLATE_BODY_BYTES}-byte limit for inline templates, and environment `{}` has no artifact bucket",
                    key.value, t.size, env.name
                ))
                .at(Loc::new(pf, stack.template.span))
                .help(format!(
                    "set `artifact_bucket:` in {ef} so formwork can upload it and pass it by URL"
                )),
            );
    }

    // Parameters: defaults (where declared), then the stack's, then the environment's.
    // (The flag: set by the defaults alone.)
    let mut merged: BTreeMap<String, (&Arc<str>, &Spanned<ParamValue>, bool)> = BTreeMap::new();
    for (name, v) in &p.def.defaults.parameters {
        let declared = parsed
            .as_ref()
            .is_none_or(|t| t.parameters.contains_key(name.as_str()));
        if declared {
            merged.insert(name.value.clone(), (pf, v, true));
        }
    }
    for (name, v) in &stack.parameters {
        merged.insert(name.value.clone(), (pf, v, false));
    }
    if let Some(o) = over {
        for (name, v) in &o.parameters {
            if let Some(t) = &parsed
                && !t.parameters.contains_key(name.as_str())
            {
                d.push(unknown_parameter(ef, name, key, t));
                continue;
            }
            merged.insert(name.value.clone(), (ef, v, false));
        }
    }

    let mut parameters = BTreeMap::new();
    // Set, but not to a valid expression: reported once, as that, not also as missing.
    let mut malformed = BTreeSet::new();
    let mut dependencies = Vec::new();
    for (name, (file, v, from_defaults)) in merged {
        let at = At::value(file, v);
        let loc = at.whole();
        let e = match parse_value(file, v) {
            Ok(e) => e,
            Err(e) => {
                d.push(e);
                malformed.insert(name);
                continue;
            }
        };
        let mut ok = true;
        for diag in check_refs(p, Some(key), &e, &at, Allowed::All, "a parameter") {
            ok &= diag.severity != crate::diag::Severity::Error;
            d.push(diag);
        }
        for r in e.references() {
            if let Reference::Output { stack: s, output } = r {
                if !p.def.stacks.contains_key(s.as_str()) || s == &key.value {
                    continue;
                }
                if !enabled.contains(s.as_str()) {
                    ok = false;
                    d.push(
                        Diagnostic::error(format!(
                            "stack `{}` takes `{r}`, but stack `{s}` is disabled in environment `{}`",
                            key.value, env.name
                        ))
                        .at(at.of(r))
                        .help(format!(
                            "enable `{s}` in {ef} (stacks: {{{s}: {{enabled: true}}}}), or disable `{}` too",
                            key.value
                        )),
                    );
                    continue;
                }
                dependencies.push(Dependency {
                    stack: s.clone(),
                    kind: DependencyKind::Output {
                        output: output.clone(),
                    },
                    loc: loc.clone(),
                });
            }
        }
        let value = scope.fill(&e);
        let decl = parsed.as_ref().and_then(|t| t.parameters.get(&name));
        if let (Some(decl), Some(text), true) = (decl, value.as_literal(), ok) {
            match check_value(&name, decl, &text) {
                ParamCheck::Fine => {}
                ParamCheck::Invalid { message, help } => {
                    let origin = if e.as_literal().is_none() {
                        format!(" (after filling in {e})")
                    } else {
                        String::new()
                    };
                    let masked_origin = if decl.no_echo { String::new() } else { origin };
                    d.push(
                        Diagnostic::error(format!(
                            "{message} in environment `{}`{masked_origin}",
                            env.name
                        ))
                        .at(loc.clone())
                        .help_opt(help),
                    );
                }
                ParamCheck::Unchecked { reason } => {
                    d.push(Diagnostic::warning(reason).at(loc.clone()));
                }
            }
        }
        if let Some(r) = value
            .references()
            .into_iter()
            .find(|r| matches!(r, Reference::Ssm(path) if path.as_literal().is_none()))
        {
            d.push(
                Diagnostic::error(format!("the SSM path in `{r}` has unresolved parts"))
                    .at(loc.clone())
                    .help("fix the variables it uses"),
            );
        }
        // A path whose variables are filled in: checked whole (a written one was checked when
        // it was parsed).
        for r in value.references() {
            if let Reference::Ssm(path) = r
                && let Some(name) = path.as_literal()
                && let Err(message) = expr::check_ssm_name(&name)
            {
                d.push(
                    Diagnostic::error(format!(
                        "{message} (after filling in {e} in environment `{}`)",
                        env.name
                    ))
                    .at(loc.clone())
                    .help(expr::SSM_NAMES),
                );
            }
        }
        parameters.insert(
            name.clone(),
            ParamSetting {
                no_echo: decl.is_some_and(|x| x.no_echo),
                from_defaults,
                value,
                loc,
            },
        );
    }
    if let Some(t) = &parsed {
        for (name, decl) in &t.parameters {
            if decl.default.is_none() && !parameters.contains_key(name) && !malformed.contains(name)
            {
                let at = over
                    .and_then(|_| env.def.stacks.get_key_value(key.as_str()))
                    .map(|(k, _)| Loc::new(ef, k.span))
                    .unwrap_or_else(|| Loc::new(pf, key.span));
                d.push(
                    Diagnostic::error(format!(
                        "stack `{}` in environment `{}` has no value for parameter `{name}`, which its template requires (no Default)",
                        key.value, env.name
                    ))
                    .at(at)
                    .help(format!(
                        "set it under `stacks: {{{}: {{parameters: {{{name}: …}}}}}}` in {ef} or in {pf}",
                        key.value
                    )),
                );
            }
        }
    }
    for need in &stack.needs {
        if enabled.contains(need.as_str()) && need.value != key.value {
            dependencies.push(Dependency {
                stack: need.value.clone(),
                kind: DependencyKind::Needs,
                loc: Loc::new(pf, need.span),
            });
        }
    }
    dependencies.sort_by(|a, b| (&a.stack, &a.kind).cmp(&(&b.stack, &b.kind)));
    dependencies.dedup_by(|a, b| a.stack == b.stack && a.kind == b.kind);

    // Stack name.
    let (stack_name, name_loc) = match over
        .and_then(|o| o.stack_name.as_ref().map(|n| (ef, n)))
        .or(stack.stack_name.as_ref().map(|n| (pf, n)))
    {
        Some((file, n)) => (
            static_value(p, file, n, scope, "a stack name", d)?,
            Loc::new(file, n.span),
        ),
        None => (
            format!("{}-{}", env.name, key.value),
            Loc::new(pf, key.span),
        ),
    };
    if !stack_name_ok(&stack_name) {
        d.push(
            Diagnostic::error(format!("`{stack_name}` is not a valid CloudFormation stack name"))
                .at(name_loc.clone())
                .help("stack names start with a letter and use letters, digits and hyphens, at most 128 characters"),
        );
    }

    // Tags: pipeline defaults, the stack's, the environment's, the environment's for the stack.
    let mut tags = BTreeMap::new();
    let mut tag_sources: Vec<(&Arc<str>, &Spanned<String>, &Spanned<String>)> = Vec::new();
    for (k, v) in &p.def.defaults.tags {
        tag_sources.push((pf, k, v));
    }
    for (k, v) in &stack.tags {
        tag_sources.push((pf, k, v));
    }
    for (k, v) in &env.def.tags {
        tag_sources.push((ef, k, v));
    }
    if let Some(o) = over {
        for (k, v) in &o.tags {
            tag_sources.push((ef, k, v));
        }
    }
    for (file, k, v) in tag_sources {
        let kloc = Loc::new(file, k.span);
        if k.starts_with("aws:") {
            d.push(reserved_tag(file, k));
            continue;
        }
        if k.chars().count() > MAX_TAG_KEY {
            d.push(
                Diagnostic::error(format!("tag key is longer than {MAX_TAG_KEY} characters"))
                    .at(kloc),
            );
            continue;
        }
        let Some(value) = static_value(p, file, v, scope, "a tag value", d) else {
            continue;
        };
        if value.chars().count() > MAX_TAG_VALUE {
            d.push(
                Diagnostic::error(format!(
                    "tag value is longer than {MAX_TAG_VALUE} characters"
                ))
                .at(Loc::new(file, v.span)),
            );
            continue;
        }
        tags.insert(k.value.clone(), value);
    }
    if tags.len() > MAX_TAGS {
        d.push(
            Diagnostic::error(format!(
                "stack `{}` in environment `{}` would get {} tags; CloudFormation allows {MAX_TAGS}",
                key.value,
                env.name,
                tags.len()
            ))
            .at(Loc::new(pf, key.span)),
        );
    }

    // Capabilities: as given (checked in check_pipeline) or what the template needs.
    let capabilities: BTreeSet<Capability> = match (&stack.capabilities, &parsed) {
        (Some(caps), _) => caps.iter().map(|c| c.value).collect(),
        (None, Some(t)) => t.required_capabilities().iter().map(|(c, _)| *c).collect(),
        (None, None) => BTreeSet::new(),
    };

    Some(Unit {
        environment: env.name.clone(),
        stack: key.value.clone(),
        stack_name,
        name_loc,
        account: env.def.account.value.clone(),
        region: env.def.region.value.clone(),
        template,
        parameters,
        tags,
        capabilities,
        dependencies,
        timeout_minutes: over
            .and_then(|o| o.timeout_minutes.as_ref())
            .or(stack.timeout_minutes.as_ref())
            .map(|t| t.value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_span_maps_offsets_into_plain_and_quoted_scalars() {
        let plain = Span::on_line(Pos { line: 3, col: 10 }, 5);
        assert_eq!(
            inner_span(plain, "ab${x", 2, 2).start,
            Pos { line: 3, col: 12 }
        );
        let quoted = Span::on_line(Pos { line: 3, col: 10 }, 7);
        assert_eq!(
            inner_span(quoted, "ab${x", 2, 2).start,
            Pos { line: 3, col: 13 }
        );
        let block = Span {
            start: Pos { line: 3, col: 10 },
            end: Pos { line: 5, col: 1 },
        };
        assert_eq!(inner_span(block, "ab${x", 2, 2), block);
    }

    #[test]
    fn stack_names_follow_cloudformation_rules() {
        assert!(stack_name_ok("staging-1-1-vpc"));
        assert!(!stack_name_ok("1-vpc"));
        assert!(!stack_name_ok("a_b"));
        assert!(!stack_name_ok(&"a".repeat(129)));
    }
}
