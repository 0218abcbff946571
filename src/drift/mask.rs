//! Secrets in drift results. CloudFormation's expected values are the template's properties
//! with parameter values filled in, NoEcho ones included, and its actual values are what the
//! resource holds now, so a property that takes a secret shows that secret on both sides.
//! A property difference is masked whole (expected and actual) when the template takes the
//! property from a NoEcho parameter or a secure dynamic reference (`{{resolve:ssm-secure:…}}`,
//! `{{resolve:secretsmanager:…}}`), or when either value holds a secret the run knows of; the
//! actual value of such a property is the secret as changed by hand, which no masker could
//! know.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::desired::{MASK, Unit};
use crate::secrets::Masker;
use crate::template::Template;

use super::model::{PropertyDrift, StackDrift};

/// Remembers the secrets a unit's config holds in full: the values of its NoEcho parameters
/// written as literals.
pub fn note_literal_secrets(unit: &Unit, masker: &Masker) {
    for p in unit.parameters.values().filter(|p| p.no_echo) {
        if let Some(text) = p.value.as_literal() {
            masker.add(&text);
        }
    }
}

/// The stack's drift with secret values masked and every text scrubbed.
pub fn mask_stack(mut s: StackDrift, template: Option<&Template>, masker: &Masker) -> StackDrift {
    s.reason = masker.scrub_opt(s.reason.as_deref());
    for r in &mut s.resources {
        r.physical_id = masker.scrub_opt(r.physical_id.as_deref());
        for d in &mut r.differences {
            let by_template =
                template.is_some_and(|t| template_takes_secret(t, &r.logical_id, &d.path));
            mask_difference(d, by_template, masker);
        }
    }
    s
}

fn mask_difference(d: &mut PropertyDrift, by_template: bool, masker: &Masker) {
    if by_template || masker.holds_secret(&d.expected) || masker.holds_secret(&d.actual) {
        d.expected = MASK.to_string();
        d.actual = MASK.to_string();
        d.masked = true;
    }
    d.path = masker.scrub(&d.path);
}

/// Whether the template takes the property at `path` (a drift property path such as
/// `/Tags/0/Value`, from the resource's properties) of resource `logical_id` from a NoEcho
/// parameter or a secure dynamic reference. Where the path cannot be followed (an intrinsic
/// function on the way, an element the template does not have), the part of the template it
/// reaches decides as a whole.
pub fn template_takes_secret(template: &Template, logical_id: &str, path: &str) -> bool {
    let no_echo: BTreeSet<&str> = template
        .parameters
        .iter()
        .filter(|(_, d)| d.no_echo)
        .map(|(n, _)| n.as_str())
        .collect();
    let Some(mut node) = template
        .value()
        .get("Resources")
        .and_then(|r| r.get(logical_id))
        .and_then(|r| r.get("Properties"))
    else {
        return false;
    };
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if is_intrinsic(node) {
            break;
        }
        // JSON Pointer escapes.
        let key = segment.replace("~1", "/").replace("~0", "~");
        let next = match node {
            Value::Object(o) => o.get(&key),
            Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    carries_secret(node, &no_echo)
}

fn is_intrinsic(v: &Value) -> bool {
    match v {
        Value::Object(o) if o.len() == 1 => o
            .keys()
            .next()
            .is_some_and(|k| k == "Ref" || k == "Condition" || k.starts_with("Fn::")),
        _ => false,
    }
}

/// Whether a template value refers to a NoEcho parameter (`Ref`, or `${Name}` in `Fn::Sub`) or
/// holds a secure dynamic reference, anywhere inside.
fn carries_secret(v: &Value, no_echo: &BTreeSet<&str>) -> bool {
    match v {
        Value::String(s) => {
            s.contains("{{resolve:ssm-secure:") || s.contains("{{resolve:secretsmanager:")
        }
        Value::Array(a) => a.iter().any(|x| carries_secret(x, no_echo)),
        Value::Object(o) => o.iter().any(|(k, x)| match (k.as_str(), x) {
            ("Ref", Value::String(name)) => no_echo.contains(name.as_str()),
            ("Fn::Sub", _) => {
                let text = match x {
                    Value::String(s) => Some(s.as_str()),
                    Value::Array(a) => a.first().and_then(Value::as_str),
                    _ => None,
                };
                text.is_some_and(|t| no_echo.iter().any(|n| t.contains(&format!("${{{n}}}"))))
                    || carries_secret(x, no_echo)
            }
            _ => carries_secret(x, no_echo),
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::drift::model::{DriftState, ResourceDrift};

    fn template(text: &str) -> Template {
        Template::parse(text.as_bytes(), &Arc::from("t.yml")).unwrap()
    }

    const DB: &str = "Parameters:\n  Password:\n    Type: String\n    NoEcho: true\n  Name:\n    Type: String\nResources:\n  Db:\n    Type: AWS::RDS::DBInstance\n    Properties:\n      MasterUserPassword: !Ref Password\n      DBName: !Ref Name\n      Tags:\n        - Key: token\n          Value: !Sub 'x-${Password}'\n        - Key: plain\n          Value: !Sub 'x-${Name}'\n      Secret: '{{resolve:secretsmanager:db:SecretString:pw}}'\n";

    #[test]
    fn drift_masking_follows_the_template_to_no_echo_parameters() {
        let t = template(DB);
        assert!(template_takes_secret(&t, "Db", "/MasterUserPassword"));
        assert!(!template_takes_secret(&t, "Db", "/DBName"));
        assert!(template_takes_secret(&t, "Db", "/Tags/0/Value"));
        assert!(!template_takes_secret(&t, "Db", "/Tags/1/Value"));
        assert!(template_takes_secret(&t, "Db", "/Secret"));
        // An element the template does not have: the list it would be in decides.
        assert!(template_takes_secret(&t, "Db", "/Tags/5"));
        assert!(!template_takes_secret(&t, "Other", "/MasterUserPassword"));
    }

    #[test]
    fn drift_values_holding_a_known_secret_are_masked_on_both_sides() {
        let masker = Masker::new();
        masker.add("hunter2-secret");
        let diff = |path: &str, expected: &str, actual: &str| PropertyDrift {
            path: path.into(),
            expected: expected.into(),
            actual: actual.into(),
            difference_type: "not_equal".into(),
            masked: false,
        };
        let s = StackDrift {
            resources: vec![ResourceDrift {
                logical_id: "Db".into(),
                resource_type: "AWS::RDS::DBInstance".into(),
                physical_id: Some("db-1".into()),
                status: "modified".into(),
                differences: vec![
                    diff("/Description", "uses hunter2-secret", "changed"),
                    diff("/MasterUserPassword", "p1", "p2"),
                    diff("/DBName", "a", "b"),
                ],
            }],
            ..StackDrift::bare("db", "prod-db", DriftState::Drifted)
        };
        let t = template(DB);
        let s = mask_stack(s, Some(&t), &masker);
        let d = &s.resources[0].differences;
        assert_eq!((d[0].expected.as_str(), d[0].actual.as_str()), (MASK, MASK));
        assert!(d[0].masked && d[1].masked && !d[2].masked);
        assert_eq!((d[2].expected.as_str(), d[2].actual.as_str()), ("a", "b"));
    }
}
