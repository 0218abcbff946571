//! The template diff shown with each stack's plan: a unified diff between normalised
//! renderings of the deployed (or base) template and the proposed one, so that only changes
//! CloudFormation would see show up.
//!
//! # The normalised rendering
//!
//! [`normalised`] writes a template's document ([`Template::value`], short tags already
//! expanded) as YAML, the same way whatever the source looked like: JSON or YAML, key order,
//! quoting, comments, flow or block style, and short or long intrinsic function forms make no
//! difference. The rules:
//!
//! - Two-space indentation; list items indented under their key.
//! - Mapping keys sorted, except: the top-level sections come in CloudFormation's usual order
//!   (`AWSTemplateFormatVersion`, `Transform`, `Description`, `Metadata`, `Parameters`,
//!   `Rules`, `Mappings`, `Conditions`, `Resources`, `Outputs`, then any other, sorted); in a
//!   resource `Type` comes first, then `Condition`, `DependsOn`, `DeletionPolicy`,
//!   `UpdateReplacePolicy`, `CreationPolicy`, `UpdatePolicy`, `Metadata`, `Properties`; in a
//!   parameter `Type` comes first.
//! - Intrinsic functions in short tag form: `!Ref X`, `!GetAtt Res.Attr`, `!Sub …`, `!If […]`
//!   (any single-key mapping `Fn::Name` with a short tag; `Condition` stays a mapping).
//! - Strings plain when YAML would read them back as the same string, otherwise double-quoted
//!   with JSON escapes; strings of several lines as literal blocks (`|`, `|-`, `|+`), so that a
//!   change to one line of a script shows as one line. Strings that start with a digit are
//!   quoted (`"2010-09-09"`, `"10.0.0.0/16"`).
//! - The `Default` of a NoEcho parameter is `****`.
//!
//! The rendering is valid YAML that reads back as the same template (masked defaults aside).

use serde_json::{Map, Value};
use similar::TextDiff;

use crate::template::Template;
use crate::template::diff::MASK;

/// Labels of the two sides in the diff header.
const OLD_LABEL: &str = "deployed";
const NEW_LABEL: &str = "proposed";

/// A unified diff (headers `deployed` and `proposed`, `context` lines around each change)
/// between the normalised renderings of `before` (`None`: no template, as for a new stack)
/// and `after` (`None`: the stack goes away). `None` when the renderings are equal.
pub fn template_diff(
    before: Option<&Template>,
    after: Option<&Template>,
    context: usize,
) -> Option<String> {
    template_diff_labelled(before, after, context, OLD_LABEL, NEW_LABEL)
}

/// [`template_diff`] with the two sides named `old_label` and `new_label`.
pub fn template_diff_labelled(
    before: Option<&Template>,
    after: Option<&Template>,
    context: usize,
    old_label: &str,
    new_label: &str,
) -> Option<String> {
    let old = before.map(normalised).unwrap_or_default();
    let new = after.map(normalised).unwrap_or_default();
    if old == new {
        return None;
    }
    let diff = TextDiff::from_lines(&old, &new);
    let text = diff
        .unified_diff()
        .context_radius(context)
        .header(old_label, new_label)
        .to_string();
    Some(text)
}

/// The normalised rendering of a template (see the module documentation).
pub fn normalised(t: &Template) -> String {
    let mut v = t.value().clone();
    if let Some(params) = v.get_mut("Parameters").and_then(Value::as_object_mut) {
        for (name, decl) in &t.parameters {
            if !decl.no_echo {
                continue;
            }
            if let Some(Value::Object(p)) = params.get_mut(name)
                && let Some(d) = p.get_mut("Default")
            {
                *d = Value::String(MASK.to_string());
            }
        }
    }
    let mut out = String::new();
    match &v {
        Value::Object(m) if !m.is_empty() => write_map(m, 0, Context::Root, &mut out),
        other => {
            out.push_str(&inline(other).unwrap_or_else(|| canonical(other)));
            out.push('\n');
        }
    }
    out
}

/// Where a mapping sits, for key order.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Root,
    /// A top-level section: its keys are logical ids, parameter names, ….
    Section(Section),
    /// A resource declaration.
    Resource,
    /// A parameter declaration.
    Parameter,
    Other,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Resources,
    Parameters,
    Other,
}

const ROOT_ORDER: &[&str] = &[
    "AWSTemplateFormatVersion",
    "Transform",
    "Description",
    "Metadata",
    "Parameters",
    "Rules",
    "Mappings",
    "Conditions",
    "Resources",
    "Outputs",
];

const RESOURCE_ORDER: &[&str] = &[
    "Type",
    "Condition",
    "DependsOn",
    "DeletionPolicy",
    "UpdateReplacePolicy",
    "CreationPolicy",
    "UpdatePolicy",
    "Metadata",
    "Properties",
];

const PARAMETER_ORDER: &[&str] = &["Type"];

fn ordered_keys(m: &Map<String, Value>, ctx: Context) -> Vec<&String> {
    let first: &[&str] = match ctx {
        Context::Root => ROOT_ORDER,
        Context::Resource => RESOURCE_ORDER,
        Context::Parameter => PARAMETER_ORDER,
        _ => &[],
    };
    let rank = |k: &str| first.iter().position(|f| *f == k).unwrap_or(first.len());
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort_by(|a, b| (rank(a), a.as_str()).cmp(&(rank(b), b.as_str())));
    keys
}

/// The context of the value under `key` in a mapping of context `ctx`.
fn child_context(ctx: Context, key: &str) -> Context {
    match ctx {
        Context::Root => Context::Section(match key {
            "Resources" => Section::Resources,
            "Parameters" => Section::Parameters,
            _ => Section::Other,
        }),
        Context::Section(Section::Resources) => Context::Resource,
        Context::Section(Section::Parameters) => Context::Parameter,
        _ => Context::Other,
    }
}

/// The short tag and argument of an intrinsic function call.
fn tagged(v: &Value) -> Option<(String, &Value)> {
    let m = v.as_object().filter(|m| m.len() == 1)?;
    let (k, arg) = m.iter().next()?;
    if k == "Ref" {
        return Some(("!Ref".to_string(), arg));
    }
    let name = super::intrinsics::short_name(k)?;
    if name == "GetAtt" && !arg.is_array() {
        // `!GetAtt A.B` reads back as a list; a string argument stays a mapping.
        return None;
    }
    Some((format!("!{name}"), arg))
}

/// A value written on the line of its key or dash, when it fits there.
fn inline(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => (!is_block_string(s)).then(|| scalar(s)),
        Value::Array(a) if a.is_empty() => Some("[]".into()),
        Value::Object(m) if m.is_empty() => Some("{}".into()),
        Value::Object(_) => {
            let (tag, arg) = tagged(v)?;
            if tag == "!GetAtt"
                && let Some([Value::String(r), Value::String(a)]) =
                    arg.as_array().map(Vec::as_slice)
                && !r.contains('.')
            {
                let joined = format!("{r}.{a}");
                if !needs_quotes(&joined) {
                    return Some(format!("!GetAtt {joined}"));
                }
            }
            match arg {
                Value::Array(a) if !a.is_empty() => None,
                Value::Object(m) if !m.is_empty() => None,
                fits => inline(fits).map(|s| format!("{tag} {s}")),
            }
        }
        Value::Array(_) => None,
    }
}

/// Writes what follows `key:` or `-` (the caller has written that, without a trailing space).
/// `indent` is the indentation of the key or dash.
fn write_after_marker(v: &Value, indent: usize, ctx: Context, out: &mut String) {
    if let Some(s) = inline(v) {
        out.push(' ');
        out.push_str(&s);
        out.push('\n');
        return;
    }
    match tagged(v) {
        Some((tag, arg)) => {
            out.push(' ');
            out.push_str(&tag);
            // YAML allows one tag per node: an intrinsic function as the argument of another
            // is written as its mapping (`!Base64` then `Fn::Sub: …`).
            write_body(arg, indent, Context::Other, out);
        }
        None => write_body(v, indent, ctx, out),
    }
}

/// Writes a value that does not fit on the line of its key or dash, on the lines below.
fn write_body(v: &Value, indent: usize, ctx: Context, out: &mut String) {
    match v {
        Value::String(s) => write_block_string(s, indent + 2, out),
        Value::Object(m) => {
            out.push('\n');
            write_map(m, indent + 2, ctx, out);
        }
        Value::Array(a) => {
            out.push('\n');
            write_list(a, indent + 2, out);
        }
        // Other scalars always fit on the line.
        other => {
            out.push(' ');
            out.push_str(&canonical(other));
            out.push('\n');
        }
    }
}

fn write_map(m: &Map<String, Value>, indent: usize, ctx: Context, out: &mut String) {
    for k in ordered_keys(m, ctx) {
        out.push_str(&" ".repeat(indent));
        out.push_str(&scalar(k));
        out.push(':');
        write_after_marker(&m[k.as_str()], indent, child_context(ctx, k), out);
    }
}

fn write_list(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        let block_collection = inline(item).is_none()
            && tagged(item).is_none()
            && matches!(item, Value::Object(_) | Value::Array(_));
        if block_collection {
            // The first line of the nested block goes on the dash's line.
            let mut nested = String::new();
            match item {
                Value::Object(m) => write_map(m, indent + 2, Context::Other, &mut nested),
                Value::Array(a) => write_list(a, indent + 2, &mut nested),
                _ => unreachable!("checked above"),
            }
            out.push_str(&" ".repeat(indent));
            out.push_str("- ");
            out.push_str(&nested[indent + 2..]);
        } else {
            out.push_str(&" ".repeat(indent));
            out.push('-');
            write_after_marker(item, indent, Context::Other, out);
        }
    }
}

/// Whether a string is written as a literal block.
fn is_block_string(s: &str) -> bool {
    s.contains('\n')
        && !s.trim_matches('\n').is_empty()
        && !s.starts_with([' ', '\t', '\n'])
        && s.chars()
            .all(|c| c == '\n' || c == '\t' || !c.is_control() && c != '\u{feff}')
}

/// Writes ` |…` and the lines of a string at `indent`.
fn write_block_string(s: &str, indent: usize, out: &mut String) {
    let trailing = s.len() - s.trim_end_matches('\n').len();
    let (chomp, body) = match trailing {
        0 => ("|-", s),
        1 => ("|", &s[..s.len() - 1]),
        _ => ("|+", &s[..s.len() - 1]),
    };
    out.push(' ');
    out.push_str(chomp);
    out.push('\n');
    for line in body.split('\n') {
        if !line.is_empty() {
            out.push_str(&" ".repeat(indent));
            out.push_str(line);
        }
        out.push('\n');
    }
}

/// A string scalar, plain or double-quoted.
fn scalar(s: &str) -> String {
    if needs_quotes(s) {
        canonical(&Value::from(s))
    } else {
        s.to_string()
    }
}

fn canonical(v: &Value) -> String {
    crate::template::canonical_json(v)
}

/// Whether a plain scalar would not read back as this string.
fn needs_quotes(s: &str) -> bool {
    const RESERVED: &[&str] = &[
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~",
    ];
    let Some(first) = s.chars().next() else {
        return true;
    };
    s.trim() != s
        || RESERVED.contains(&s.to_ascii_lowercase().as_str())
        || "-?:,[]{}#&*!|>'\"%@`".contains(first)
        || first.is_ascii_digit()
        || first == '+'
        || first == '.'
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.chars().any(|c| c.is_control() || c == '\u{feff}')
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn t(text: &str) -> Template {
        Template::parse(text.as_bytes(), &Arc::from("t.yml")).unwrap()
    }

    const YAML: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Description: A VPC
Parameters:
  Cidr: {Type: String, Default: 10.0.0.0/16}
  Secret: {Type: String, NoEcho: true, Default: hunter2}
Conditions:
  HasSecret: !Not [!Equals [!Ref Secret, ""]]
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties:
      CidrBlock: !Ref Cidr
      Tags:
        - Key: Name
          Value: !Sub "${AWS::StackName}-vpc"
  Host:
    Type: AWS::EC2::Instance
    DependsOn: Vpc
    Properties:
      ImageId: ami-1
      UserData:
        Fn::Base64: !Sub |
          #!/bin/bash
          echo ${Cidr}
          yum -y update
      SubnetId: !Select [0, !GetAZs ""]
Outputs:
  VpcId:
    Value: !GetAtt Vpc.VpcId
"#;

    /// The same template as JSON, keys in another order, long forms.
    const JSON: &str = r##"{
  "Resources": {
    "Host": {
      "Properties": {
        "SubnetId": {"Fn::Select": [0, {"Fn::GetAZs": ""}]},
        "UserData": {"Fn::Base64": {"Fn::Sub": "#!/bin/bash\necho ${Cidr}\nyum -y update\n"}},
        "ImageId": "ami-1"
      },
      "DependsOn": "Vpc",
      "Type": "AWS::EC2::Instance"
    },
    "Vpc": {
      "Type": "AWS::EC2::VPC",
      "Properties": {
        "Tags": [{"Value": {"Fn::Sub": "${AWS::StackName}-vpc"}, "Key": "Name"}],
        "CidrBlock": {"Ref": "Cidr"}
      }
    }
  },
  "Outputs": {"VpcId": {"Value": {"Fn::GetAtt": ["Vpc", "VpcId"]}}},
  "Conditions": {"HasSecret": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Secret"}, ""]}]}},
  "Parameters": {
    "Secret": {"NoEcho": true, "Default": "other", "Type": "String"},
    "Cidr": {"Default": "10.0.0.0/16", "Type": "String"}
  },
  "Description": "A VPC",
  "AWSTemplateFormatVersion": "2010-09-09"
}"##;

    #[test]
    fn rendering_is_readable_and_masks_no_echo_defaults() {
        let text = normalised(&t(YAML));
        let expected = r#"AWSTemplateFormatVersion: "2010-09-09"
Description: A VPC
Parameters:
  Cidr:
    Type: String
    Default: "10.0.0.0/16"
  Secret:
    Type: String
    Default: "****"
    NoEcho: true
Conditions:
  HasSecret: !Not
    - !Equals
      - !Ref Secret
      - ""
Resources:
  Host:
    Type: AWS::EC2::Instance
    DependsOn: Vpc
    Properties:
      ImageId: ami-1
      SubnetId: !Select
        - 0
        - !GetAZs ""
      UserData: !Base64
        Fn::Sub: |
          #!/bin/bash
          echo ${Cidr}
          yum -y update
  Vpc:
    Type: AWS::EC2::VPC
    Properties:
      CidrBlock: !Ref Cidr
      Tags:
        - Key: Name
          Value: !Sub ${AWS::StackName}-vpc
Outputs:
  VpcId:
    Value: !GetAtt Vpc.VpcId
"#;
        assert_eq!(text, expected);
        assert!(!text.contains("hunter2"));
    }

    #[test]
    fn rendering_reads_back_as_the_same_template() {
        let a = t(YAML);
        let back = t(&normalised(&a));
        // Only the masked default differs.
        let unmasked = YAML.replace("Default: hunter2", "Default: \"****\"");
        assert_eq!(back.digest(), t(&unmasked).digest());
        let odd = r#"
Resources:
  R:
    Type: Custom::X
    Properties:
      Empty: ""
      Yes: "yes"
      Num: "42"
      Colon: "a: b"
      Lead: " x"
      Hash: "a #b"
      Dash: "-x"
      Nested: [[1, 2], [], {}]
      Lines: "a\n\nb\n\n"
      Ctrl: "a\u0001b"
      Tagged: !Join ["", [!Ref A, !If [C, x, !Ref AWS::NoValue]]]
      Null: null
"#;
        let o = t(odd);
        let back = t(&normalised(&o));
        assert_eq!(back.value(), o.value(), "{}", normalised(&o));
    }

    #[test]
    fn formatting_and_forms_do_not_show() {
        let (a, b) = (t(YAML), t(JSON));
        assert_eq!(normalised(&a), normalised(&b));
        assert_eq!(template_diff(Some(&a), Some(&b), 3), None);
        assert_eq!(template_diff(None, None, 3), None);
    }

    #[test]
    fn a_changed_property_shows_as_minus_and_plus_lines() {
        let a = t(YAML);
        let b = t(&YAML.replace("ImageId: ami-1", "ImageId: ami-2"));
        let d = template_diff(Some(&a), Some(&b), 1).unwrap();
        assert!(d.starts_with("--- deployed\n+++ proposed\n@@ "), "{d}");
        assert!(
            d.contains("\n-      ImageId: ami-1\n+      ImageId: ami-2\n"),
            "{d}"
        );
        // One line of context on each side.
        assert_eq!(d.lines().count(), 7, "{d}");
        // A changed line of a script is one line of the diff.
        let c = t(&YAML.replace("yum -y update", "dnf -y update"));
        let d = template_diff(Some(&a), Some(&c), 0).unwrap();
        assert!(
            d.contains("\n-          yum -y update\n+          dnf -y update\n"),
            "{d}"
        );
    }

    #[test]
    fn new_and_removed_stacks() {
        let a = t(YAML);
        let d = template_diff(None, Some(&a), 3).unwrap();
        let body: Vec<&str> = d.lines().skip(3).collect();
        assert!(!body.is_empty());
        assert!(body.iter().all(|l| l.starts_with('+')), "{d}");
        let d = template_diff(Some(&a), None, 3).unwrap();
        assert!(d.lines().skip(3).all(|l| l.starts_with('-')), "{d}");
    }
}
