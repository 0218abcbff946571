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
    let check = Check { name, decl };
    let ty = decl.type_.as_str();
    // Lists: each element is checked against the element rules.
    let (items, element_type): (Vec<&str>, &str) = if ty == "CommaDelimitedList" {
        (value.split(',').map(str::trim).collect(), "String")
    } else if let Some(inner) = ty.strip_prefix("List<").and_then(|t| t.strip_suffix('>')) {
        (value.split(',').map(str::trim).collect(), inner)
    } else {
        (vec![value], ty)
    };
    let outcome = items
        .iter()
        .try_for_each(|item| check.element(item, element_type))
        .and_then(|()| {
            if ty == "String" {
                check.length(value)
            } else {
                Ok(())
            }
        })
        .and_then(|()| match &decl.allowed_pattern {
            Some(pattern) if ty == "String" || ty == "CommaDelimitedList" => {
                check.pattern(pattern, &items)
            }
            _ => Ok(()),
        });
    outcome.err().unwrap_or(ParamCheck::Fine)
}

/// The rules of one parameter's declaration; each rule answers `Err` with the outcome of the
/// first value that breaks it.
struct Check<'a> {
    name: &'a str,
    decl: &'a ParameterDecl,
}

impl Check<'_> {
    /// How a value appears in a message: quoted, or masked for a NoEcho parameter.
    fn shown(&self, v: &str) -> String {
        if self.decl.no_echo {
            "****".to_string()
        } else {
            format!("`{v}`")
        }
    }

    fn invalid(&self, problem: &str, value: &str, help: Option<String>) -> ParamCheck {
        ParamCheck::Invalid {
            message: format!(
                "value {} of parameter `{}` {problem}",
                self.shown(value),
                self.name
            ),
            help,
        }
    }

    /// The rules for one element (the value itself unless the type is a list).
    fn element(&self, item: &str, element_type: &str) -> Result<(), ParamCheck> {
        if element_type == "Number" {
            self.number(item)?;
        }
        if let Some((_, shape)) = AWS_ID_SHAPES.iter().find(|(t, _)| *t == element_type) {
            let re = full_match(shape).expect("built-in id shapes are valid");
            if !re.is_match(item) {
                let problem = format!("is not a valid {element_type}");
                let help = format!("values of this type look like `{shape}`");
                return Err(self.invalid(&problem, item, Some(help)));
            }
        }
        self.allowed(item)
    }

    /// A number within MinValue and MaxValue.
    fn number(&self, item: &str) -> Result<(), ParamCheck> {
        let constraint = || self.decl.constraint_description.clone();
        let Some(n) = item.parse::<f64>().ok().filter(|n| n.is_finite()) else {
            let problem = format!("is not a number (Type: {})", self.decl.type_);
            let help = "write a number such as `3` or `2.5`".to_string();
            return Err(self.invalid(&problem, item, Some(help)));
        };
        if let Some(min) = self.decl.min_value
            && n < min
        {
            let problem = format!("is below its MinValue {min}");
            return Err(self.invalid(&problem, item, constraint()));
        }
        if let Some(max) = self.decl.max_value
            && n > max
        {
            let problem = format!("is above its MaxValue {max}");
            return Err(self.invalid(&problem, item, constraint()));
        }
        Ok(())
    }

    /// One of AllowedValues, when there are any (with the nearest one suggested, unless NoEcho).
    fn allowed(&self, item: &str) -> Result<(), ParamCheck> {
        let allowed = &self.decl.allowed_values;
        if allowed.is_empty() || allowed.iter().any(|a| a == item) {
            return Ok(());
        }
        let mut help = format!("allowed values: {}", allowed.join(", "));
        if !self.decl.no_echo
            && let Some(near) = crate::suggest::nearest(item, allowed.iter().map(String::as_str))
        {
            help = format!("did you mean `{near}`? {help}");
        }
        Err(self.invalid("is not one of its AllowedValues", item, Some(help)))
    }

    /// A string's length within MinLength and MaxLength.
    fn length(&self, value: &str) -> Result<(), ParamCheck> {
        let len = value.chars().count() as u64;
        let constraint = || self.decl.constraint_description.clone();
        if let Some(min) = self.decl.min_length
            && len < min
        {
            let problem = format!("is {len} characters long; its MinLength is {min}");
            return Err(self.invalid(&problem, value, constraint()));
        }
        if let Some(max) = self.decl.max_length
            && len > max
        {
            let problem = format!("is {len} characters long; its MaxLength is {max}");
            return Err(self.invalid(&problem, value, constraint()));
        }
        Ok(())
    }

    /// Every item matching AllowedPattern, when this regex engine can check it.
    fn pattern(&self, pattern: &str, items: &[&str]) -> Result<(), ParamCheck> {
        let Some(re) = full_match(pattern) else {
            return Err(ParamCheck::Unchecked {
                reason: format!(
                    "the AllowedPattern of parameter `{}` uses regular-expression features formwork cannot check offline; CloudFormation will check it",
                    self.name
                ),
            });
        };
        match items.iter().find(|item| !re.is_match(item)) {
            Some(item) => {
                let problem = format!("does not match its AllowedPattern `{pattern}`");
                Err(self.invalid(&problem, item, self.decl.constraint_description.clone()))
            }
            None => Ok(()),
        }
    }
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
