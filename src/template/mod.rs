//! All of formwork's CloudFormation knowledge about templates: parsing JSON or YAML templates
//! (short tags kept as the intrinsic functions they stand for), the declarations formwork
//! checks configs against (Parameters, Outputs, Resources), the capabilities a template needs,
//! a canonical digest; and, in its submodules, what two versions of a template differ in:
//!
//! - [`intrinsics`]: the intrinsic functions and their short tags;
//! - [`refs`]: what a value refers to (`Ref`, `Fn::GetAtt`, `Fn::Sub` variables, conditions);
//! - [`change`]: the vocabulary of changes (resource actions, replacement, details, security
//!   items), shared with plans;
//! - [`diff`]: resource-level changes between two versions, under what is known of their
//!   [`conditions`];
//! - [`nested`]: nested stacks, the children kept in the repository and the text with their
//!   uploaded URLs;
//! - [`wiring`]: what ties a template to other stacks — its exports, its `Fn::ImportValue`s,
//!   the SSM parameters it creates — and [`evaluate`]: working out such names for one stack
//!   before it is deployed;
//! - [`outputs`]: which outputs may change in an update, and why;
//! - [`replacement`]: whether changing a property replaces a resource (registry schemas);
//! - [`security`]: IAM and network items that appear or go away;
//! - [`text_diff`]: a normalised rendering and the unified diff shown to reviewers;
//! - [`capability`]: CloudFormation's capabilities.
//!
//! The template's bytes are what CloudFormation receives; this model is only how formwork reads
//! them.

pub mod capability;
pub mod change;
pub mod conditions;
pub mod diff;
pub mod evaluate;
pub mod intrinsics;
pub mod nested;
pub mod outputs;
mod params;
pub mod refs;
pub mod replacement;
pub mod security;
pub mod text_diff;
mod value;
pub mod wiring;

pub use capability::Capability;

pub use params::{ParamCheck, check_value};
pub use value::{canonical_json, check_tags, sha256_hex, to_value};

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use indexmap::IndexMap;
use serde_json::Value;

use crate::diag::{Diagnostic, Loc, Span};
use crate::yaml::{self, Kind, Node};

/// The largest template CloudFormation accepts inline (`TemplateBody`), in bytes. Larger ones
/// must be uploaded to S3 and passed by `TemplateURL`. Source: AWS CloudFormation quotas.
pub const MAX_TEMPLATE_BODY_BYTES: usize = 51_200;

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    /// The template exactly as written: what CloudFormation receives.
    pub text: Arc<str>,
    /// Size of the template file in bytes.
    pub size: usize,
    pub parameters: IndexMap<String, ParameterDecl>,
    pub outputs: IndexMap<String, OutputDecl>,
    pub resources: IndexMap<String, ResourceDecl>,
    /// The capabilities the template needs, with the resource needing each.
    capabilities: BTreeSet<(Capability, String)>,
    /// The document as read (tags checked).
    root: Node,
    /// The document as a JSON value, short tags expanded; built when first asked for.
    value: OnceLock<Value>,
    /// SHA-256 of the canonical JSON form, computed when first asked for.
    digest: OnceLock<String>,
    /// Exports, imports and SSM parameters created, found when first asked for.
    wiring: OnceLock<wiring::Wiring>,
    /// The nested stack resources.
    nested: Vec<nested::NestedStack>,
}

/// A declared template parameter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParameterDecl {
    pub type_: String,
    pub default: Option<String>,
    pub no_echo: bool,
    pub allowed_values: Vec<String>,
    pub allowed_pattern: Option<String>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
    pub constraint_description: Option<String>,
    pub span: Span,
}

/// A declared template output.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputDecl {
    /// The condition the output depends on; the output may not exist when it is false.
    pub condition: Option<String>,
    pub span: Span,
}

/// A declared resource.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceDecl {
    pub type_: String,
    pub span: Span,
}

/// Reads a scalar that CloudFormation would accept as a string (strings, numbers, booleans).
fn scalar_text(n: &Node) -> Option<String> {
    match &n.kind {
        Kind::Scalar(s) if n.tag.is_none() => Some(s.text.clone()),
        _ => None,
    }
}

impl Template {
    /// Parses a template file. `file` is its path in the config repository, for messages.
    pub fn parse(bytes: &[u8], file: &Arc<str>) -> Result<Template, Vec<Diagnostic>> {
        let err = |msg: String, span: Span| vec![Diagnostic::error(msg).at(Loc::new(file, span))];
        let text = std::str::from_utf8(bytes).map_err(|e| {
            vec![
                Diagnostic::error(format!(
                    "the template is not UTF-8 text (invalid byte at offset {})",
                    e.valid_up_to()
                ))
                .at(Loc::file_start(file))
                .help("save the template as UTF-8"),
            ]
        })?;
        let root = yaml::parse(text).map_err(|e| {
            vec![
                Diagnostic::error(format!("template is not valid YAML or JSON: {}", e.message))
                    .at(Loc::new(file, Span::on_line(e.pos, 1)))
                    .help(e.help),
            ]
        })?;
        if !matches!(root.kind, Kind::Map(_)) {
            return Err(err(
                format!(
                    "a template must be a mapping with `Resources`, found {}",
                    root.kind_name()
                ),
                root.span,
            ));
        }
        let mut diags = Vec::new();
        let parameters = Self::parameters(&root, file, &mut diags);
        let outputs = root
            .get("Outputs")
            .map(|o| {
                o.entries()
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((
                            k.as_str()?.to_string(),
                            OutputDecl {
                                condition: v.get("Condition").and_then(scalar_text),
                                span: k.span,
                            },
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let resources: IndexMap<String, ResourceDecl> = match root.get("Resources") {
            Some(r) if matches!(r.kind, Kind::Map(_)) => r
                .entries()
                .iter()
                .filter_map(|(k, v)| {
                    Some((
                        k.as_str()?.to_string(),
                        ResourceDecl {
                            type_: v.get("Type").and_then(scalar_text).unwrap_or_default(),
                            span: k.span,
                        },
                    ))
                })
                .collect(),
            Some(r) => {
                diags.push(
                    Diagnostic::error("`Resources` must be a mapping of logical ids to resources")
                        .at(Loc::new(file, r.span)),
                );
                IndexMap::new()
            }
            None => {
                diags.push(
                    Diagnostic::error("the template has no `Resources` section")
                        .at(Loc::file_start(file))
                        .help("CloudFormation requires at least one resource"),
                );
                IndexMap::new()
            }
        };
        if !diags.is_empty() {
            return Err(diags);
        }
        check_tags(&root).map_err(|e| err(e.message, e.span))?;
        let capabilities = required_capabilities(&root, &resources);
        let nested = nested::nested_stacks(&root);
        Ok(Template {
            text: Arc::from(text),
            size: bytes.len(),
            parameters,
            outputs,
            resources,
            capabilities,
            root,
            value: OnceLock::new(),
            digest: OnceLock::new(),
            wiring: OnceLock::new(),
            nested,
        })
    }

    /// The nested stack resources (`AWS::CloudFormation::Stack`), in template order.
    pub fn nested_stacks(&self) -> &[nested::NestedStack] {
        &self.nested
    }

    /// Where the node at a JSON pointer (`/Resources/Sg/Properties/CidrIp`) of the document is
    /// written, or the deepest node on the way to it that is written (a path into a short-tag
    /// value such as `!Sub` ends at the tagged node).
    pub fn span_at(&self, pointer: &str) -> Option<Span> {
        let mut node = &self.root;
        for raw in pointer.split('/').skip(1) {
            let key = raw.replace("~1", "/").replace("~0", "~");
            let next = match &node.kind {
                Kind::Map(_) => node.get(&key),
                Kind::Seq(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
                Kind::Scalar(_) => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        Some(node.span)
    }

    /// The whole document as a JSON value, short tags expanded to their long form.
    pub fn value(&self) -> &Value {
        self.value
            .get_or_init(|| to_value(&self.root).expect("tags were checked when parsing"))
    }

    /// SHA-256 (hex) of the canonical JSON form: equal for templates that differ only in
    /// formatting, comments, key order, or YAML against JSON.
    pub fn digest(&self) -> &str {
        self.digest
            .get_or_init(|| sha256_hex(canonical_json(self.value()).as_bytes()))
    }

    /// The outputs whose value carries the value of one of the parameters `secret` (a `Ref` to
    /// it, or a `${…}` of `Fn::Sub`, anywhere inside the value), such as
    /// `!Sub "postgres://app:${Password}@db"`: outputs that are as secret as the parameter.
    pub fn outputs_carrying(&self, secret: &BTreeSet<&str>) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        if secret.is_empty() {
            return out;
        }
        let Some(outputs) = self.value().get("Outputs").and_then(Value::as_object) else {
            return out;
        };
        for (name, decl) in outputs {
            let mut found = Vec::new();
            if let Some(v) = decl.get("Value") {
                refs::references(v, &mut found);
            }
            if found
                .iter()
                .any(|r| matches!(r, refs::Reference::Ref(p) if secret.contains(p.as_str())))
            {
                out.insert(name.clone());
            }
        }
        out
    }

    /// The capabilities CloudFormation will demand for this template, with the resource that
    /// demands each: IAM resources need `CAPABILITY_IAM`, IAM resources with custom names
    /// `CAPABILITY_NAMED_IAM`, macros and transforms `CAPABILITY_AUTO_EXPAND`.
    pub fn required_capabilities(&self) -> &BTreeSet<(Capability, String)> {
        &self.capabilities
    }

    fn parameters(
        root: &Node,
        file: &Arc<str>,
        diags: &mut Vec<Diagnostic>,
    ) -> IndexMap<String, ParameterDecl> {
        let mut out = IndexMap::new();
        let Some(params) = root.get("Parameters") else {
            return out;
        };
        for (k, v) in params.entries() {
            let Some(name) = k.as_str() else { continue };
            let Some(type_) = v.get("Type").and_then(scalar_text) else {
                diags.push(
                    Diagnostic::error(format!("template parameter `{name}` has no `Type`"))
                        .at(Loc::new(file, k.span))
                        .help("add `Type: String` (or Number, CommaDelimitedList, an AWS type)"),
                );
                continue;
            };
            let num = |key: &str| -> Option<f64> {
                v.get(key)
                    .and_then(scalar_text)
                    .and_then(|t| t.trim().parse().ok())
            };
            let allowed_values = match v.get("AllowedValues").map(|n| &n.kind) {
                Some(Kind::Seq(items)) => items.iter().filter_map(scalar_text).collect(),
                _ => Vec::new(),
            };
            let decl = ParameterDecl {
                type_,
                default: v.get("Default").and_then(|d| match &d.kind {
                    Kind::Seq(items) => Some(
                        items
                            .iter()
                            .filter_map(scalar_text)
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    _ => scalar_text(d),
                }),
                no_echo: v
                    .get("NoEcho")
                    .and_then(scalar_text)
                    .is_some_and(|t| t.eq_ignore_ascii_case("true")),
                allowed_values,
                allowed_pattern: v.get("AllowedPattern").and_then(scalar_text),
                min_length: num("MinLength").map(|f| f as u64),
                max_length: num("MaxLength").map(|f| f as u64),
                min_value: num("MinValue"),
                max_value: num("MaxValue"),
                constraint_description: v.get("ConstraintDescription").and_then(scalar_text),
                span: k.span,
            };
            out.insert(name.to_string(), decl);
        }
        out
    }
}

/// Works out the capabilities a template needs from its document.
fn required_capabilities(
    root: &Node,
    resources: &IndexMap<String, ResourceDecl>,
) -> BTreeSet<(Capability, String)> {
    const NAME_PROPS: &[&str] = &[
        "RoleName",
        "UserName",
        "GroupName",
        "ManagedPolicyName",
        "InstanceProfileName",
    ];
    let mut caps = BTreeSet::new();
    if root.get("Transform").is_some() {
        caps.insert((Capability::AutoExpand, "Transform".to_string()));
    }
    let nodes = root.get("Resources");
    for (id, decl) in resources {
        let node = nodes.and_then(|r| r.get(id));
        if decl.type_.starts_with("AWS::Serverless::") || node.is_some_and(uses_fn_transform) {
            caps.insert((Capability::AutoExpand, id.clone()));
        }
        if !decl.type_.starts_with("AWS::IAM::") {
            continue;
        }
        let named = node
            .and_then(|r| r.get("Properties"))
            .is_some_and(|p| NAME_PROPS.iter().any(|k| p.get(k).is_some()));
        let cap = if named {
            Capability::NamedIam
        } else {
            Capability::Iam
        };
        caps.insert((cap, id.clone()));
    }
    caps
}

/// Whether a node calls a macro through `Fn::Transform` (or `!Transform`) anywhere inside it.
fn uses_fn_transform(n: &Node) -> bool {
    n.tag.as_deref() == Some("!Transform")
        || match &n.kind {
            Kind::Scalar(_) => false,
            Kind::Seq(items) => items.iter().any(uses_fn_transform),
            Kind::Map(pairs) => pairs
                .iter()
                .any(|(k, v)| k.as_str() == Some("Fn::Transform") || uses_fn_transform(v)),
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Arc<str> {
        Arc::from("pipelines/p/templates/t.yml")
    }

    const T: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Size:
    Type: Number
    MinValue: 1
    MaxValue: 10
  Secret:
    Type: String
    NoEcho: true
  Kind:
    Type: String
    Default: small
    AllowedValues: [small, large]
Conditions:
  Big: !Equals [!Ref Kind, large]
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      RoleName: !Sub "${AWS::StackName}-role"
      AssumeRolePolicyDocument: {}
  Bucket:
    Type: AWS::S3::Bucket
Outputs:
  BucketName:
    Value: !Ref Bucket
  Extra:
    Condition: Big
    Value: !GetAtt Bucket.Arn
"#;

    #[test]
    fn reads_declarations() {
        let t = Template::parse(T.as_bytes(), &file()).unwrap();
        assert_eq!(t.parameters["Size"].type_, "Number");
        assert_eq!(t.parameters["Size"].max_value, Some(10.0));
        assert!(t.parameters["Secret"].no_echo);
        assert_eq!(t.parameters["Kind"].default.as_deref(), Some("small"));
        assert_eq!(t.parameters["Kind"].allowed_values, ["small", "large"]);
        assert_eq!(t.outputs["Extra"].condition.as_deref(), Some("Big"));
        assert_eq!(t.resources["Bucket"].type_, "AWS::S3::Bucket");
        let caps: Vec<_> = t.required_capabilities().iter().cloned().collect();
        assert_eq!(caps, [(Capability::NamedIam, "Role".to_string())]);
        let with_macro = T.replace(
            "  Bucket:\n    Type: AWS::S3::Bucket\n",
            "  Bucket:\n    Type: AWS::S3::Bucket\n    Properties:\n      Fn::Transform: {Name: AWS::Include, Parameters: {Location: s3://b/k}}\n",
        );
        let t = Template::parse(with_macro.as_bytes(), &file()).unwrap();
        assert!(
            t.required_capabilities()
                .contains(&(Capability::AutoExpand, "Bucket".to_string()))
        );
    }

    #[test]
    fn digest_ignores_formatting_and_comments() {
        let a = Template::parse(T.as_bytes(), &file()).unwrap();
        let reformatted = T.replace("MinValue: 1", "MinValue:    1   # at least one");
        let b = Template::parse(reformatted.as_bytes(), &file()).unwrap();
        assert_eq!(a.digest(), b.digest());
        let changed = T.replace("MaxValue: 10", "MaxValue: 11");
        let c = Template::parse(changed.as_bytes(), &file()).unwrap();
        assert_ne!(a.digest(), c.digest());
    }

    #[test]
    fn missing_resources_is_an_error() {
        let e = Template::parse(b"Parameters: {}\n", &file()).unwrap_err();
        assert_eq!(e[0].message, "the template has no `Resources` section");
    }
}
