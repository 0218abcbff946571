//! A template document as a JSON value, with CloudFormation's short tags expanded to their long
//! form (`!Ref X` → `{"Ref": "X"}`, `!GetAtt A.B` → `{"Fn::GetAtt": ["A", "B"]}`), and its
//! canonical digest, under which two templates that differ only in formatting, comments, key
//! order or YAML-versus-JSON are the same.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::diag::Span;
use crate::yaml::{Kind, Node, Style};

/// A short tag that CloudFormation does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagError {
    pub message: String,
    pub span: Span,
}

/// The intrinsic functions that have a short tag form, by tag name (without `!`).
const FN_TAGS: &[&str] = &[
    "And",
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "ForEach",
    "GetAZs",
    "If",
    "ImportValue",
    "Join",
    "Length",
    "Not",
    "Or",
    "Select",
    "Split",
    "Sub",
    "ToJsonString",
    "Transform",
];

/// Converts a YAML node tree into a JSON value, expanding short tags.
pub fn to_value(node: &Node) -> Result<Value, TagError> {
    let plain = match &node.kind {
        Kind::Scalar(s) => {
            if node.tag.as_deref() == Some("!!str") || s.style != Style::Plain {
                Value::String(s.text.clone())
            } else {
                scalar(&s.text)
            }
        }
        Kind::Seq(items) => Value::Array(items.iter().map(to_value).collect::<Result<_, _>>()?),
        Kind::Map(pairs) => {
            let mut m = Map::new();
            for (k, v) in pairs {
                let key = match &k.kind {
                    Kind::Scalar(s) => s.text.clone(),
                    _ => {
                        return Err(TagError {
                            message: "a mapping key must be a plain name".into(),
                            span: k.span,
                        });
                    }
                };
                m.insert(key, to_value(v)?);
            }
            Value::Object(m)
        }
    };
    let Some(tag) = node.tag.as_deref() else {
        return Ok(plain);
    };
    if tag.starts_with("!!") {
        return Ok(plain);
    }
    let name = tag.trim_start_matches('!');
    let long = match name {
        "Ref" => "Ref".to_string(),
        "Condition" => "Condition".to_string(),
        "GetAtt" => {
            let arg = match plain {
                Value::String(s) => match s.split_once('.') {
                    Some((res, attr)) => Value::Array(vec![res.into(), attr.into()]),
                    None => {
                        return Err(TagError {
                            message: format!(
                                "`!GetAtt {s}` names no attribute; write `!GetAtt Resource.Attribute`"
                            ),
                            span: node.span,
                        });
                    }
                },
                other => other,
            };
            return Ok(single("Fn::GetAtt", arg));
        }
        n if FN_TAGS.contains(&n) => format!("Fn::{n}"),
        other => {
            let hint = crate::suggest::nearest(
                other,
                FN_TAGS
                    .iter()
                    .copied()
                    .chain(["Ref", "Condition", "GetAtt"]),
            )
            .map(|s| format!(" (did you mean `!{s}`?)"))
            .unwrap_or_default();
            return Err(TagError {
                message: format!("unknown CloudFormation tag `{tag}`{hint}"),
                span: node.span,
            });
        }
    };
    Ok(single(&long, plain))
}

fn single(key: &str, v: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.to_string(), v);
    Value::Object(m)
}

/// A plain scalar as YAML's core schema reads it.
fn scalar(t: &str) -> Value {
    match t {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => {
            let digits = t.strip_prefix('-').unwrap_or(t);
            let int_like = !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && (digits == "0" || !digits.starts_with('0'));
            if int_like {
                if let Ok(i) = t.parse::<i64>() {
                    return Value::from(i);
                }
            }
            if let Ok(f) = t.parse::<f64>() {
                if f.is_finite() && f.to_string() == t {
                    return Value::from(f);
                }
            }
            Value::String(t.to_string())
        }
    }
}

/// Writes `v` as JSON with object keys sorted and no white space: the canonical form.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Lower-case hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    fn v(text: &str) -> Value {
        to_value(&parse(text).unwrap()).unwrap()
    }

    #[test]
    fn expands_short_tags() {
        assert_eq!(v("!Ref X"), serde_json::json!({"Ref": "X"}));
        assert_eq!(
            v("!GetAtt A.B.C"),
            serde_json::json!({"Fn::GetAtt": ["A", "B.C"]})
        );
        assert_eq!(v("!Sub 'a-${X}'"), serde_json::json!({"Fn::Sub": "a-${X}"}));
        assert_eq!(
            v("!If [C, !Ref A, !Ref AWS::NoValue]"),
            serde_json::json!({"Fn::If": ["C", {"Ref": "A"}, {"Ref": "AWS::NoValue"}]})
        );
        assert_eq!(v("!GetAZs ''"), serde_json::json!({"Fn::GetAZs": ""}));
    }

    #[test]
    fn unknown_tags_are_errors_with_a_suggestion() {
        let e = to_value(&parse("a: !Sbu x").unwrap()).unwrap_err();
        assert_eq!(
            e.message,
            "unknown CloudFormation tag `!Sbu` (did you mean `!Sub`?)"
        );
    }

    #[test]
    fn short_and_long_forms_have_one_canonical_form() {
        let short = v("B: !Ref X\nA: [1, true]\n");
        let long = v("{\"A\": [1, true], \"B\": {\"Ref\": \"X\"}}");
        assert_eq!(canonical_json(&short), canonical_json(&long));
        assert_eq!(canonical_json(&short), r#"{"A":[1,true],"B":{"Ref":"X"}}"#);
    }
}
