//! Checking a literal parameter value against its declaration, as CloudFormation will when it
//! creates the change set: Type, AllowedValues, AllowedPattern, Min/MaxLength, Min/MaxValue.
//! Values of NoEcho parameters never appear in the messages.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use regex::Regex;

use super::ParameterDecl;

/// Compiled AllowedPatterns, by pattern: templates share them across stacks and environments.
/// `None` for patterns this regex engine does not support.
static PATTERNS: LazyLock<Mutex<HashMap<String, Option<Regex>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// `pattern` compiled to match whole values, as CloudFormation matches AllowedPattern.
fn full_match(pattern: &str) -> Option<Regex> {
    let mut cache = PATTERNS.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(pattern.to_string())
        .or_insert_with(|| Regex::new(&format!("^(?:{pattern})$")).ok())
        .clone()
}

/// The outcome of checking one value.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamCheck {
    Fine,
    Invalid {
        message: String,
        help: Option<String>,
    },
    /// The value could not be checked offline (a Java-only regular expression, say).
    Unchecked {
        reason: String,
    },
}

/// Which AWS-specific parameter types have ids of a known shape (an EC2 VPC id starts `vpc-`).
/// Source: AWS CloudFormation documentation, "Supported AWS-specific parameter types".
const AWS_ID_SHAPES: &[(&str, &str)] = &[
    ("AWS::EC2::VPC::Id", r"vpc-[0-9a-f]+"),
    ("AWS::EC2::Subnet::Id", r"subnet-[0-9a-f]+"),
    ("AWS::EC2::SecurityGroup::Id", r"sg-[0-9a-f]+"),
    ("AWS::EC2::Image::Id", r"ami-[0-9a-f]+"),
    ("AWS::EC2::Instance::Id", r"i-[0-9a-f]+"),
    ("AWS::EC2::Volume::Id", r"vol-[0-9a-f]+"),
    (
        "AWS::EC2::AvailabilityZone::Name",
        r"[a-z]{2}(-gov)?-[a-z]+-\d[a-z]",
    ),
    ("AWS::Route53::HostedZone::Id", r"Z[A-Z0-9]+"),
];

/// Checks `value` for parameter `name` against `decl`.
pub fn check_value(name: &str, decl: &ParameterDecl, value: &str) -> ParamCheck {
    let shown = |v: &str| {
        if decl.no_echo {
            "****".to_string()
        } else {
            format!("`{v}`")
        }
    };
    let invalid = |message: String, help: Option<String>| ParamCheck::Invalid { message, help };
    let constraint = decl.constraint_description.clone();
    let ty = decl.type_.as_str();

    // Lists: each element is checked against the element rules.
    let (items, element_type): (Vec<&str>, &str) = if ty == "CommaDelimitedList" {
        (value.split(',').map(str::trim).collect(), "String")
    } else if let Some(inner) = ty.strip_prefix("List<").and_then(|t| t.strip_suffix('>')) {
        (value.split(',').map(str::trim).collect(), inner)
    } else {
        (vec![value], ty)
    };

    for item in &items {
        if element_type == "Number" {
            let Some(n) = item.parse::<f64>().ok().filter(|n| n.is_finite()) else {
                return invalid(
                    format!(
                        "value {} of parameter `{name}` is not a number (Type: {ty})",
                        shown(item)
                    ),
                    Some("write a number such as `3` or `2.5`".into()),
                );
            };
            if let Some(min) = decl.min_value
                && n < min
            {
                return invalid(
                    format!(
                        "value {} of parameter `{name}` is below its MinValue {min}",
                        shown(item)
                    ),
                    constraint,
                );
            }
            if let Some(max) = decl.max_value
                && n > max
            {
                return invalid(
                    format!(
                        "value {} of parameter `{name}` is above its MaxValue {max}",
                        shown(item)
                    ),
                    constraint,
                );
            }
        }
        if let Some((_, shape)) = AWS_ID_SHAPES.iter().find(|(t, _)| *t == element_type) {
            let re = full_match(shape).expect("built-in id shapes are valid");
            if !re.is_match(item) {
                return invalid(
                    format!(
                        "value {} of parameter `{name}` is not a valid {element_type}",
                        shown(item)
                    ),
                    Some(format!("values of this type look like `{shape}`")),
                );
            }
        }
        if !decl.allowed_values.is_empty() && !decl.allowed_values.iter().any(|a| a == item) {
            let mut help = format!("allowed values: {}", decl.allowed_values.join(", "));
            if !decl.no_echo
                && let Some(near) =
                    crate::suggest::nearest(item, decl.allowed_values.iter().map(String::as_str))
            {
                help = format!("did you mean `{near}`? {help}");
            }
            return invalid(
                format!(
                    "value {} of parameter `{name}` is not one of its AllowedValues",
                    shown(item)
                ),
                Some(help),
            );
        }
    }

    if ty == "String" {
        let len = value.chars().count() as u64;
        if let Some(min) = decl.min_length
            && len < min
        {
            return invalid(
                format!(
                    "value {} of parameter `{name}` is {len} characters long; its MinLength is {min}",
                    shown(value)
                ),
                constraint,
            );
        }
        if let Some(max) = decl.max_length
            && len > max
        {
            return invalid(
                format!(
                    "value {} of parameter `{name}` is {len} characters long; its MaxLength is {max}",
                    shown(value)
                ),
                constraint,
            );
        }
    }

    if let Some(pattern) = &decl.allowed_pattern
        && (ty == "String" || ty == "CommaDelimitedList")
    {
        let Some(re) = full_match(pattern) else {
            return ParamCheck::Unchecked {
                reason: format!(
                    "the AllowedPattern of parameter `{name}` uses regular-expression features formwork cannot check offline; CloudFormation will check it"
                ),
            };
        };
        for item in &items {
            if !re.is_match(item) {
                return invalid(
                    format!(
                        "value {} of parameter `{name}` does not match its AllowedPattern `{pattern}`",
                        shown(item)
                    ),
                    constraint,
                );
            }
        }
    }
    ParamCheck::Fine
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(ty: &str) -> ParameterDecl {
        ParameterDecl {
            type_: ty.into(),
            ..Default::default()
        }
    }

    #[test]
    fn allowed_values_with_suggestion() {
        let d = ParameterDecl {
            allowed_values: vec!["cache.t3.micro".into(), "cache.t3.small".into()],
            ..decl("String")
        };
        assert_eq!(
            check_value("NodeType", &d, "cache.t3.small"),
            ParamCheck::Fine
        );
        assert_eq!(
            check_value("NodeType", &d, "cache.t3.smal"),
            ParamCheck::Invalid {
                message:
                    "value `cache.t3.smal` of parameter `NodeType` is not one of its AllowedValues"
                        .into(),
                help: Some(
                    "did you mean `cache.t3.small`? allowed values: cache.t3.micro, cache.t3.small"
                        .into()
                ),
            }
        );
    }

    #[test]
    fn numbers_and_ranges() {
        let d = ParameterDecl {
            min_value: Some(1.0),
            max_value: Some(10.0),
            ..decl("Number")
        };
        assert_eq!(check_value("N", &d, "5"), ParamCheck::Fine);
        assert!(
            matches!(check_value("N", &d, "11"), ParamCheck::Invalid { message, .. } if message == "value `11` of parameter `N` is above its MaxValue 10")
        );
        assert!(
            matches!(check_value("N", &d, "x"), ParamCheck::Invalid { message, .. } if message.contains("is not a number"))
        );
    }

    #[test]
    fn pattern_is_a_full_match_and_lists_check_each_item() {
        let d = ParameterDecl {
            allowed_pattern: Some("[a-z]+".into()),
            ..decl("CommaDelimitedList")
        };
        assert_eq!(check_value("L", &d, "ab, cd"), ParamCheck::Fine);
        assert!(matches!(
            check_value("L", &d, "ab,c1"),
            ParamCheck::Invalid { .. }
        ));
        let java_only = ParameterDecl {
            allowed_pattern: Some("(?<=a)b".into()),
            ..decl("String")
        };
        assert!(matches!(
            check_value("J", &java_only, "b"),
            ParamCheck::Unchecked { .. }
        ));
    }

    #[test]
    fn no_echo_values_are_never_shown() {
        let d = ParameterDecl {
            no_echo: true,
            min_length: Some(12),
            ..decl("String")
        };
        match check_value("AdminPassword", &d, "hunter2") {
            ParamCheck::Invalid { message, .. } => {
                assert!(!message.contains("hunter2"));
                assert!(message.contains("****"));
            }
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn aws_id_shapes() {
        assert_eq!(
            check_value("V", &decl("AWS::EC2::VPC::Id"), "vpc-0abc"),
            ParamCheck::Fine
        );
        assert!(matches!(
            check_value("S", &decl("List<AWS::EC2::Subnet::Id>"), "subnet-1,sg-2"),
            ParamCheck::Invalid { .. }
        ));
    }
}
