//! CloudFormation's intrinsic functions: which have a short YAML tag, their long names, and how
//! to tell a call from a plain value. `Ref` and `Condition` (`!Ref`, `!Condition`) have no
//! `Fn::` prefix and are handled where they differ.

use serde_json::Value;

/// The intrinsic functions written with a short tag (`!Sub` for `Fn::Sub`), by short name.
/// `!GetAtt` also takes the `Resource.Attribute` form besides a list.
const SHORT_NAMES: &[&str] = &[
    "And",
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "ForEach",
    "GetAZs",
    "GetAtt",
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

/// The same functions by long name, in the same order.
const LONG_NAMES: &[&str] = &[
    "Fn::And",
    "Fn::Base64",
    "Fn::Cidr",
    "Fn::Equals",
    "Fn::FindInMap",
    "Fn::ForEach",
    "Fn::GetAZs",
    "Fn::GetAtt",
    "Fn::If",
    "Fn::ImportValue",
    "Fn::Join",
    "Fn::Length",
    "Fn::Not",
    "Fn::Or",
    "Fn::Select",
    "Fn::Split",
    "Fn::Sub",
    "Fn::ToJsonString",
    "Fn::Transform",
];

/// The long name of the function with short tag `!name` (`Sub` → `Fn::Sub`).
pub fn long_name(short: &str) -> Option<&'static str> {
    SHORT_NAMES
        .iter()
        .position(|s| *s == short)
        .map(|i| LONG_NAMES[i])
}

/// The short tag name of function `long` (`Fn::Sub` → `Sub`), when it has one.
pub fn short_name(long: &str) -> Option<&'static str> {
    LONG_NAMES
        .iter()
        .position(|l| *l == long)
        .map(|i| SHORT_NAMES[i])
}

/// Every short tag name, `Ref` and `Condition` included (for suggestions).
pub fn all_short_names() -> impl Iterator<Item = &'static str> {
    SHORT_NAMES.iter().copied().chain(["Ref", "Condition"])
}

/// Whether a value is an intrinsic function call: an object with the single key `Ref` or
/// `Fn::…`.
pub fn is_call(v: &Value) -> bool {
    match v.as_object() {
        Some(m) if m.len() == 1 => m
            .keys()
            .next()
            .is_some_and(|k| k == "Ref" || k.starts_with("Fn::")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_names_match() {
        assert_eq!(SHORT_NAMES.len(), LONG_NAMES.len());
        for (s, l) in SHORT_NAMES.iter().zip(LONG_NAMES) {
            assert_eq!(*l, format!("Fn::{s}"));
            assert_eq!(long_name(s), Some(*l));
            assert_eq!(short_name(l), Some(*s));
        }
        assert_eq!(long_name("Ref"), None);
        assert!(is_call(&serde_json::json!({"Ref": "X"})));
        assert!(!is_call(&serde_json::json!({"Ref": "X", "B": 1})));
    }
}
