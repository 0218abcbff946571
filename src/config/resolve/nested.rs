//! Nested stacks whose templates live in the repository: checking each child against what its
//! parent passes it (parameters declared, required ones given, no template nesting itself),
//! the capabilities the children need, and packaging a unit's template for an environment as
//! `aws cloudformation package` does — every child uploaded under its content digest to the
//! artifact bucket, the parent's `TemplateURL`s replaced by those URLs — so that a child edit
//! changes the parent's desired state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::aws::s3::{S3, object_url};
use crate::config::load::{Pipeline, StackTemplate};
use crate::desired::NestedTemplate;
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::suggest::did_you_mean;
use crate::template::nested::{
    ChildSource, NestedStack, child_source, set_template_url, splice_urls,
};
use crate::template::{Capability, Template, canonical_json, sha256_hex};

/// The children of template `t` at `path` that are files of the repository and could be read.
fn children<'a>(
    p: &'a Pipeline,
    path: &str,
    t: &'a Template,
) -> Vec<(&'a NestedStack, String, &'a Arc<Template>)> {
    t.nested_stacks()
        .iter()
        .filter_map(|n| {
            let ChildSource::Local(child) = child_source(path, n.url.as_deref()?, &p.published)
            else {
                return None;
            };
            let ct = template_at(p, &child)?;
            Some((n, child, ct))
        })
        .collect()
}

/// The template of the repository at `path`, read as a nested template or as a stack's.
fn template_at<'a>(p: &'a Pipeline, path: &str) -> Option<&'a Arc<Template>> {
    match p.nested.get(path) {
        Some(t) => t.as_ref(),
        None => p.templates.values().find_map(|t| match t {
            StackTemplate::Local {
                path: at,
                template: Some(t),
            } if at == path => Some(t),
            _ => None,
        }),
    }
}

/// Whether template `t` at `path` nests any template of the repository.
pub(super) fn has_local_children(p: &Pipeline, path: &str, t: &Template) -> bool {
    t.nested_stacks().iter().any(|n| {
        n.url
            .as_deref()
            .is_some_and(|u| matches!(child_source(path, u, &p.published), ChildSource::Local(_)))
    })
}

/// Checks every nested stack of the pipeline's templates whose child is in the repository:
/// each parameter passed is declared by the child, each child parameter without a default is
/// passed, and no template nests itself.
pub(super) fn check_nested(p: &Pipeline, d: &mut Diagnostics) {
    let parents = p
        .templates
        .values()
        .filter_map(|t| match t {
            StackTemplate::Local {
                path,
                template: Some(t),
            } => Some((path.as_str(), t)),
            _ => None,
        })
        .chain(
            p.nested
                .iter()
                .filter_map(|(path, t)| Some((path.as_str(), t.as_ref()?))),
        );
    let mut checked = BTreeSet::new();
    for (path, t) in parents {
        if !checked.insert(path) {
            continue;
        }
        let file: Arc<str> = Arc::from(path);
        for (n, child_path, child) in children(p, path, t) {
            check_parameters(&file, n, &child_path, child, d);
        }
    }
    for t in p.templates.values() {
        if let StackTemplate::Local {
            path,
            template: Some(t),
        } = t
        {
            check_cycle(p, path, t, &mut vec![path.clone()], d);
        }
    }
}

fn check_parameters(
    file: &Arc<str>,
    n: &NestedStack,
    child_path: &str,
    child: &Template,
    d: &mut Diagnostics,
) {
    for (name, span) in &n.parameters {
        if !child.parameters.contains_key(name) {
            d.push(
                Diagnostic::error(format!(
                    "nested stack `{}` passes `{name}`, which {child_path} does not declare",
                    n.resource
                ))
                .at(Loc::new(file, *span))
                .help(did_you_mean(
                    name,
                    child.parameters.keys().map(String::as_str),
                )),
            );
        }
    }
    for (name, decl) in &child.parameters {
        if decl.default.is_none() && !n.parameters.iter().any(|(p, _)| p == name) {
            d.push(
                Diagnostic::error(format!(
                    "nested stack `{}` does not pass `{name}`, which {child_path} requires (it has no default)",
                    n.resource
                ))
                .at(Loc::new(file, n.span))
                .help(format!(
                    "add `{name}:` under the resource's `Properties.Parameters`"
                )),
            );
        }
    }
}

/// Reports a template that nests itself, directly or through others (`chain`: the paths from
/// the stack's template down to `t`).
fn check_cycle(
    p: &Pipeline,
    path: &str,
    t: &Template,
    chain: &mut Vec<String>,
    d: &mut Diagnostics,
) {
    for (n, child_path, child) in children(p, path, t) {
        if let Some(i) = chain.iter().position(|c| *c == child_path) {
            let mut shown = chain[i..].to_vec();
            shown.push(child_path.clone());
            d.push(
                Diagnostic::error(format!(
                    "nested templates form a loop: {}",
                    shown.join(" → ")
                ))
                .at(Loc::new(&Arc::from(path), n.url_span))
                .help("a template cannot nest itself, directly or through its children"),
            );
            continue;
        }
        chain.push(child_path.clone());
        check_cycle(p, &child_path, child, chain, d);
        chain.pop();
    }
}

/// What template `t` at `path` needs acknowledged, its children's needs included.
pub(super) fn required_capabilities(
    p: &Pipeline,
    path: &str,
    t: &Template,
) -> BTreeSet<(Capability, String)> {
    let mut out = t.required_capabilities().clone();
    let mut seen = BTreeSet::from([path.to_string()]);
    let mut todo = vec![(path.to_string(), t, String::new())];
    while let Some((path, t, prefix)) = todo.pop() {
        for (n, child_path, child) in children(p, &path, t) {
            let prefix = format!("{prefix}{}/", n.resource);
            for (c, resource) in child.required_capabilities() {
                out.insert((*c, format!("{prefix}{resource}")));
            }
            if seen.insert(child_path.clone()) {
                todo.push((child_path, child, prefix));
            }
        }
    }
    out
}

/// Template `t` at `path` packaged for an environment whose artifact bucket is `bucket` in
/// `region`: the template CloudFormation receives, and every child to upload (children first).
/// `None` when the result cannot be parsed back, or the children loop (reported by
/// [`check_nested`]).
pub(super) fn package(
    p: &Pipeline,
    path: &str,
    t: &Arc<Template>,
    bucket: &str,
    region: &str,
) -> Option<(Arc<Template>, Vec<NestedTemplate>)> {
    let mut uploads = Vec::new();
    let packaged = package_one(p, path, t, "", bucket, region, &mut uploads, 0)?;
    Some((packaged, uploads))
}

/// How deep formwork follows nested templates (CloudFormation itself allows more levels than
/// a loop needs to be caught by this).
const MAX_DEPTH: usize = 16;

#[allow(clippy::too_many_arguments)]
fn package_one(
    p: &Pipeline,
    path: &str,
    t: &Arc<Template>,
    prefix: &str,
    bucket: &str,
    region: &str,
    uploads: &mut Vec<NestedTemplate>,
    depth: usize,
) -> Option<Arc<Template>> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut urls = BTreeMap::new();
    for (n, child_path, child) in children(p, path, t) {
        let resource_path = format!("{prefix}{}", n.resource);
        let packaged = package_one(
            p,
            &child_path,
            child,
            &format!("{resource_path}/"),
            bucket,
            region,
            uploads,
            depth + 1,
        )?;
        let key = S3::template_key(&sha256_hex(packaged.text.as_bytes()));
        let url = object_url(bucket, region, &key);
        urls.insert(n.resource.clone(), url.clone());
        uploads.push(NestedTemplate {
            resource_path,
            path: child_path,
            key,
            url,
            template: packaged,
        });
    }
    if urls.is_empty() {
        return Some(t.clone());
    }
    let file: Arc<str> = Arc::from(path);
    let text = splice_urls(&t.text, t.nested_stacks(), &urls).unwrap_or_else(|| {
        // Not spliceable where written: CloudFormation gets the template as JSON.
        let mut value = t.value().clone();
        for (resource, url) in &urls {
            set_template_url(&mut value, resource, serde_json::Value::String(url.clone()));
        }
        canonical_json(&value)
    });
    Template::parse(text.as_bytes(), &file).ok().map(Arc::new)
}
