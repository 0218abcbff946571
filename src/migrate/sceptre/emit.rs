//! Writing the converted `pipeline.yml` and `environment.yml` as YAML text: block style, keys in
//! the order given, strings quoted whenever a plain scalar could be read as something else.

use std::fmt::Write;

/// A YAML value to write.
#[derive(Clone, Debug, PartialEq)]
pub enum Y {
    Str(String),
    Bool(bool),
    List(Vec<String>),
    Map(Vec<(String, Y)>),
    /// A JSON document (a stack policy) written as block YAML.
    Json(serde_json::Value),
}

impl Y {
    pub fn map() -> Y {
        Y::Map(Vec::new())
    }

    /// Adds `key: value` to a mapping (ignored on other values).
    pub fn set(&mut self, key: &str, value: Y) {
        if let Y::Map(pairs) = self {
            pairs.push((key.to_string(), value));
        }
    }

    pub fn is_empty_map(&self) -> bool {
        matches!(self, Y::Map(p) if p.is_empty())
    }
}

/// A scalar as YAML: plain when it is unmistakably a string, else double-quoted (JSON's
/// escaping is valid YAML).
pub fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/')
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}

/// The document: a header comment then the mapping.
pub fn document(header: &str, root: &Y) -> String {
    let mut out = String::new();
    for line in header.lines() {
        let _ = writeln!(out, "# {line}");
    }
    if let Y::Map(pairs) = root {
        write_pairs(&mut out, pairs, 0);
    }
    out
}

fn write_pairs(out: &mut String, pairs: &[(String, Y)], indent: usize) {
    let pad = " ".repeat(indent);
    for (k, v) in pairs {
        let k = scalar(k);
        match v {
            Y::Str(s) => {
                let _ = writeln!(out, "{pad}{k}: {}", scalar(s));
            }
            Y::Bool(b) => {
                let _ = writeln!(out, "{pad}{k}: {b}");
            }
            Y::List(items) if items.is_empty() => {
                let _ = writeln!(out, "{pad}{k}: []");
            }
            Y::List(items) => {
                let _ = writeln!(out, "{pad}{k}:");
                for i in items {
                    let _ = writeln!(out, "{pad}  - {}", scalar(i));
                }
            }
            Y::Map(p) if p.is_empty() => {
                let _ = writeln!(out, "{pad}{k}: {{}}");
            }
            Y::Map(p) => {
                let _ = writeln!(out, "{pad}{k}:");
                write_pairs(out, p, indent + 2);
            }
            Y::Json(v) => json_entry(out, &format!("{pad}{k}:"), v, indent),
        }
    }
}

/// `head` (an indented `key:` or `-`) followed by `v`: on the same line when it is a scalar or
/// empty, else on the lines below, indented under `indent`.
fn json_entry(out: &mut String, head: &str, v: &serde_json::Value, indent: usize) {
    use serde_json::Value;
    match v {
        Value::Object(m) if !m.is_empty() => {
            let _ = writeln!(out, "{head}");
            let pad = " ".repeat(indent + 2);
            for (k, v) in m {
                json_entry(out, &format!("{pad}{}:", scalar(k)), v, indent + 2);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let _ = writeln!(out, "{head}");
            json_items(out, items, indent + 2);
        }
        other => {
            let _ = writeln!(out, "{head} {}", json_scalar(other));
        }
    }
}

/// The items of a JSON array as a block sequence at `indent`; a mapping item starts on the
/// `- ` line.
fn json_items(out: &mut String, items: &[serde_json::Value], indent: usize) {
    use serde_json::Value;
    let pad = " ".repeat(indent);
    for item in items {
        match item {
            Value::Object(m) if !m.is_empty() => {
                for (i, (k, v)) in m.iter().enumerate() {
                    let lead = if i == 0 { "- " } else { "  " };
                    json_entry(out, &format!("{pad}{lead}{}:", scalar(k)), v, indent + 2);
                }
            }
            Value::Array(inner) if !inner.is_empty() => {
                let _ = writeln!(out, "{pad}-");
                json_items(out, inner, indent + 2);
            }
            other => {
                let _ = writeln!(out, "{pad}- {}", json_scalar(other));
            }
        }
    }
}

fn json_scalar(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::String(s) => scalar(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_that_could_be_misread_are_quoted() {
        assert_eq!(scalar("network"), "network");
        assert_eq!(scalar("templates/a.yaml"), "templates/a.yaml");
        for s in [
            "123456789012",
            "true",
            "No",
            "",
            "${net.VpcId}",
            "a: b",
            "#x",
            "1.10",
        ] {
            assert!(scalar(s).starts_with('"'), "{s}");
        }
        let mut root = Y::map();
        root.set("pipeline", Y::Str("shop".into()));
        let mut p = Y::map();
        p.set("Cidrs", Y::List(vec!["10.0.0.0/8".into()]));
        p.set("On", Y::Bool(true));
        root.set("parameters", p);
        assert_eq!(
            document("made", &root),
            "# made\npipeline: shop\nparameters:\n  Cidrs:\n    - \"10.0.0.0/8\"\n  \"On\": true\n"
        );
    }

    #[test]
    fn json_documents_are_written_as_block_yaml_that_reads_back_the_same() {
        let policy = serde_json::json!({
            "Statement": [
                {"Effect": "Allow", "Action": "Update:*", "Principal": "*", "Resource": "*"},
                {"Effect": "Deny", "Action": ["Update:Replace", "Update:Delete"], "Principal": "*",
                 "Resource": "LogicalResourceId/Db",
                 "Condition": {"StringEquals": {"ResourceType": ["AWS::RDS::DBInstance"]}}},
                [1, true, null, {}, []]
            ]
        });
        let mut root = Y::map();
        root.set("stack_policy", Y::Json(policy.clone()));
        let text = document("p", &root);
        assert!(
            text.contains(
                "stack_policy:\n  Statement:\n    - Effect: Allow\n      Action: \"Update:*\"\n"
            ),
            "{text}"
        );
        let node = crate::yaml::parse(&text).unwrap();
        let back: serde_json::Value = crate::yaml::from_node(&node).unwrap();
        assert_eq!(back["stack_policy"], policy, "{text}");
    }
}
