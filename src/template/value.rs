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

/// What a tag makes of the node it stands on.
enum Intrinsic {
    /// No tag, or a YAML core tag (`!!str`): the node as it is.
    Plain,
    /// `!Name x` → `{"Key": x}`.
    Wrap(&'static str),
    /// `!GetAtt A.B` → `{"Fn::GetAtt": ["A", "B"]}`.
    GetAtt,
}

fn intrinsic(node: &Node) -> Result<Intrinsic, TagError> {
    let Some(tag) = node.tag.as_deref() else {
        return Ok(Intrinsic::Plain);
    };
    if tag.starts_with("!!") {
        return Ok(Intrinsic::Plain);
    }
    let name = tag.trim_start_matches('!');
    match name {
        "Ref" => Ok(Intrinsic::Wrap("Ref")),
        "Condition" => Ok(Intrinsic::Wrap("Condition")),
        "GetAtt" => {
            if let Kind::Scalar(s) = &node.kind
                && !s.text.contains('.')
            {
                return Err(TagError {
                    message: format!(
                        "`!GetAtt {}` names no attribute; write `!GetAtt Resource.Attribute`",
                        s.text
                    ),
                    span: node.span,
                });
            }
            Ok(Intrinsic::GetAtt)
        }
        n => match super::intrinsics::long_name(n) {
            Some(long) => Ok(Intrinsic::Wrap(long)),
            None => {
                let hint = crate::suggest::nearest(n, super::intrinsics::all_short_names())
                    .map(|s| format!(" (did you mean `!{s}`?)"))
                    .unwrap_or_default();
                Err(TagError {
                    message: format!("unknown CloudFormation tag `{tag}`{hint}"),
                    span: node.span,
                })
            }
        },
    }
}

/// Checks that every tag in a tree is one CloudFormation knows and every mapping key is a
/// name, without building anything: what [`to_value`] would refuse, found in a read-only walk.
pub fn check_tags(node: &Node) -> Result<(), TagError> {
    intrinsic(node)?;
    match &node.kind {
        Kind::Scalar(_) => Ok(()),
        Kind::Seq(items) => items.iter().try_for_each(check_tags),
        Kind::Map(pairs) => pairs.iter().try_for_each(|(k, v)| {
            if !matches!(k.kind, Kind::Scalar(_)) {
                return Err(TagError {
                    message: "a mapping key must be a plain name".into(),
                    span: k.span,
                });
            }
            check_tags(v)
        }),
    }
}

/// Converts a YAML node tree into a JSON value, expanding short tags.
pub fn to_value(node: &Node) -> Result<Value, TagError> {
    let how = intrinsic(node)?;
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
            let mut m = Map::with_capacity(pairs.len());
            for (k, v) in pairs {
                let Kind::Scalar(key) = &k.kind else {
                    return Err(TagError {
                        message: "a mapping key must be a plain name".into(),
                        span: k.span,
                    });
                };
                m.insert(key.text.clone(), to_value(v)?);
            }
            Value::Object(m)
        }
    };
    Ok(match how {
        Intrinsic::Plain => plain,
        Intrinsic::Wrap(key) => single(key, plain),
        Intrinsic::GetAtt => {
            let arg = match plain {
                Value::String(s) => {
                    let (res, attr) = s.split_once('.').unwrap_or((&s, ""));
                    Value::Array(vec![res.into(), attr.into()])
                }
                other => other,
            };
            single("Fn::GetAtt", arg)
        }
    })
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
            if int_like && let Ok(i) = t.parse::<i64>() {
                return Value::from(i);
            }
            let float_like = t.bytes().any(|b| b.is_ascii_digit())
                && t.bytes()
                    .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
            if float_like
                && let Ok(f) = t.parse::<f64>()
                && f.is_finite()
                && f.to_string() == t
            {
                return Value::from(f);
            }
            Value::String(t.to_string())
        }
    }
}

/// Writes `v` as JSON with object keys sorted and no white space: the canonical form.
pub fn canonical_json(v: &Value) -> String {
    let mut out = Vec::new();
    write_canonical(v, &mut out);
    String::from_utf8(out).expect("JSON is UTF-8")
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, x)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).expect("writing to memory");
                out.push(b':');
                write_canonical(x, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        other => serde_json::to_writer(&mut *out, other).expect("writing to memory"),
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
