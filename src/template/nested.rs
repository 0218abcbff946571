//! Nested stacks: the `AWS::CloudFormation::Stack` resources of a template, which of them name
//! a template kept in the config repository (a relative path, as `aws cloudformation package`
//! takes them, or a published URL the pipeline maps to a local directory), and the template
//! text with those references replaced by the URLs the children are uploaded to.

use std::collections::BTreeMap;

use crate::diag::Span;
use crate::yaml::{Kind, Node, Style};

/// The resource type of a nested stack.
pub const STACK_TYPE: &str = "AWS::CloudFormation::Stack";

/// One nested stack resource.
#[derive(Clone, Debug, PartialEq)]
pub struct NestedStack {
    /// Its logical id in the parent.
    pub resource: String,
    /// Where the logical id is written.
    pub span: Span,
    /// `TemplateURL` when it is written as a plain string; `None` when it is computed
    /// (`!Sub`, `!Join`) or missing.
    pub url: Option<String>,
    /// Where `TemplateURL`'s value is written (the resource's span when it is missing).
    pub url_span: Span,
    /// Whether the value is written as a scalar the text can be spliced at (plain or quoted,
    /// on one line).
    splice: bool,
    /// The parameters passed to the child, with where each name is written.
    pub parameters: Vec<(String, Span)>,
}

/// Finds the nested stacks among a template's resources.
pub(super) fn nested_stacks(root: &Node) -> Vec<NestedStack> {
    let Some(resources) = root.get("Resources") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in resources.entries() {
        let (Some(resource), Some(STACK_TYPE)) = (k.as_str(), v.get("Type").and_then(Node::as_str))
        else {
            continue;
        };
        let props = v.get("Properties");
        let url_node = props.and_then(|p| p.get("TemplateURL"));
        let (url, url_span, splice) = match url_node {
            Some(n) => match &n.kind {
                Kind::Scalar(s) if n.tag.is_none() => (
                    Some(s.text.trim().to_string()),
                    n.span,
                    matches!(s.style, Style::Plain | Style::Quoted)
                        && n.span.start.line == n.span.end.line,
                ),
                _ => (None, n.span, false),
            },
            None => (None, k.span, false),
        };
        let parameters = props
            .and_then(|p| p.get("Parameters"))
            .map(|p| {
                p.entries()
                    .iter()
                    .filter_map(|(k, _)| Some((k.as_str()?.to_string(), k.span)))
                    .collect()
            })
            .unwrap_or_default();
        out.push(NestedStack {
            resource: resource.to_string(),
            span: k.span,
            url,
            url_span,
            splice,
            parameters,
        });
    }
    out
}

/// Where a nested stack's `TemplateURL` points, as formwork sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChildSource {
    /// A file of the config repository (path from the repository root).
    Local(String),
    /// A template CloudFormation fetches itself.
    Remote,
    /// A relative path that leaves the repository.
    Outside,
}

/// Where the `TemplateURL` `url` of a template at `parent_path` points. `published` maps URL
/// prefixes to directories of the repository that hold the same files.
pub fn child_source(
    parent_path: &str,
    url: &str,
    published: &BTreeMap<String, String>,
) -> ChildSource {
    for (prefix, dir) in published {
        if let Some(rest) = url.strip_prefix(prefix.as_str()) {
            return join(dir.trim_end_matches('/'), rest);
        }
    }
    if url.contains("://") || url.contains("${") || url.starts_with('/') {
        return ChildSource::Remote;
    }
    let dir = parent_path.rsplit_once('/').map_or("", |(d, _)| d);
    join(dir, url)
}

/// `rel` under `dir`, with `.` and `..` worked out.
fn join(dir: &str, rel: &str) -> ChildSource {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return ChildSource::Outside;
                }
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return ChildSource::Outside;
    }
    ChildSource::Local(parts.join("/"))
}

/// `text` with the `TemplateURL` of each nested stack in `urls` (by logical id) replaced.
/// Splices the new URL where the old one is written, so the rest of the text (comments,
/// layout) stays as it is; `None` when a value cannot be spliced (then the caller writes the
/// template out as JSON).
pub fn splice_urls(
    text: &str,
    nested: &[NestedStack],
    urls: &BTreeMap<String, String>,
) -> Option<String> {
    let starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let offset = |line: u32, col: u32| -> Option<usize> {
        let start = *starts.get(line.checked_sub(1)? as usize)?;
        let rest = &text[start..];
        let chars = col.checked_sub(1)? as usize;
        Some(
            start
                + rest
                    .char_indices()
                    .nth(chars)
                    .map_or(rest.len(), |(i, _)| i),
        )
    };
    let mut edits: Vec<(usize, usize, &str)> = Vec::new();
    for n in nested {
        let Some(url) = urls.get(&n.resource) else {
            continue;
        };
        if !n.splice {
            return None;
        }
        // The value as written: the URL itself, or quoted without escapes (a quoted
        // scalar's span may run on to the end of its line).
        let a = offset(n.url_span.start.line, n.url_span.start.col)?;
        let old = n.url.as_deref()?;
        let rest = text.get(a..)?;
        let len = ["", "'", "\""]
            .iter()
            .map(|q| format!("{q}{old}{q}"))
            .find(|w| rest.starts_with(w.as_str()))?
            .len();
        edits.push((a, a + len, url));
    }
    edits.sort_by_key(|e| e.0);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (a, b, url) in edits {
        if a < at {
            return None;
        }
        out.push_str(&text[at..a]);
        // A JSON string is also a double-quoted YAML scalar.
        out.push_str(&serde_json::to_string(url).ok()?);
        at = b;
    }
    out.push_str(&text[at..]);
    Some(out)
}

/// Sets the `TemplateURL` of nested stack `resource` in `value` (a template's JSON form), when
/// it has one.
pub fn set_template_url(value: &mut serde_json::Value, resource: &str, url: serde_json::Value) {
    if let Some(slot) = value
        .get_mut("Resources")
        .and_then(|r| r.get_mut(resource))
        .and_then(|r| r.get_mut("Properties"))
        .and_then(|p| p.get_mut("TemplateURL"))
    {
        *slot = url;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Template;
    use std::sync::Arc;

    fn parse(text: &str) -> Template {
        Template::parse(text.as_bytes(), &Arc::from("t.yaml")).unwrap()
    }

    #[test]
    fn finds_nested_stacks_with_their_urls_and_parameters() {
        let t = parse(
            "Resources:\n  Vpc:\n    Type: AWS::CloudFormation::Stack\n    Properties:\n      TemplateURL: ./infra/vpc.yaml\n      Parameters:\n        Cidr: 10.0.0.0/16\n        Name: !Ref AWS::StackName\n  Computed:\n    Type: AWS::CloudFormation::Stack\n    Properties:\n      TemplateURL: !Sub 'https://${Bucket}.s3.amazonaws.com/x.yaml'\n  Topic:\n    Type: AWS::SNS::Topic\n",
        );
        let n = t.nested_stacks();
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].resource, "Vpc");
        assert_eq!(n[0].url.as_deref(), Some("./infra/vpc.yaml"));
        assert_eq!(n[0].url_span.start.line, 5);
        let params: Vec<&str> = n[0].parameters.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(params, ["Cidr", "Name"]);
        assert_eq!(n[1].url, None);
    }

    #[test]
    fn child_paths_are_relative_to_the_parent_or_mapped_from_a_published_prefix() {
        let none = BTreeMap::new();
        assert_eq!(
            child_source(
                "pipelines/app/templates/main.yaml",
                "./infra/vpc.yaml",
                &none
            ),
            ChildSource::Local("pipelines/app/templates/infra/vpc.yaml".into())
        );
        assert_eq!(
            child_source("pipelines/app/main.yaml", "../shared/sg.yaml", &none),
            ChildSource::Local("pipelines/shared/sg.yaml".into())
        );
        assert_eq!(
            child_source("main.yaml", "../../etc/passwd", &none),
            ChildSource::Outside
        );
        assert_eq!(
            child_source("a/main.yaml", "https://s3.amazonaws.com/b/vpc.yaml", &none),
            ChildSource::Remote
        );
        let published = BTreeMap::from([(
            "https://s3.amazonaws.com/ecs-refarch/".to_string(),
            "pipelines/ecs/templates/".to_string(),
        )]);
        assert_eq!(
            child_source(
                "pipelines/ecs/templates/master.yaml",
                "https://s3.amazonaws.com/ecs-refarch/infrastructure/vpc.yaml",
                &published
            ),
            ChildSource::Local("pipelines/ecs/templates/infrastructure/vpc.yaml".into())
        );
    }

    #[test]
    fn splicing_replaces_only_the_urls_and_keeps_comments() {
        let text = "# parent\nResources:\n  A:\n    Type: AWS::CloudFormation::Stack\n    Properties:\n      TemplateURL: './a.yaml' # the child\n  B:\n    Type: AWS::CloudFormation::Stack\n    Properties: {TemplateURL: b.yaml}\n";
        let t = parse(text);
        let urls = BTreeMap::from([
            (
                "A".to_string(),
                "https://bk.s3.eu-west-1.amazonaws.com/k1".to_string(),
            ),
            (
                "B".to_string(),
                "https://bk.s3.eu-west-1.amazonaws.com/k2".to_string(),
            ),
        ]);
        let out = splice_urls(text, t.nested_stacks(), &urls).unwrap();
        assert!(out.starts_with("# parent\n"));
        assert!(
            out.contains("TemplateURL: \"https://bk.s3.eu-west-1.amazonaws.com/k1\" # the child")
        );
        assert!(out.contains("{TemplateURL: \"https://bk.s3.eu-west-1.amazonaws.com/k2\"}"));
        let again = parse(&out);
        assert_eq!(
            again.nested_stacks()[1].url.as_deref(),
            Some("https://bk.s3.eu-west-1.amazonaws.com/k2")
        );
    }

    #[test]
    fn json_templates_splice_too() {
        let text = r#"{"Resources": {"A": {"Type": "AWS::CloudFormation::Stack", "Properties": {"TemplateURL": "child.json"}}}}"#;
        let t = parse(text);
        let urls = BTreeMap::from([("A".to_string(), "https://x/y".to_string())]);
        let out = splice_urls(text, t.nested_stacks(), &urls).unwrap();
        assert!(out.contains(r#""TemplateURL": "https://x/y""#), "{out}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
    }
}
