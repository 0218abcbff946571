//! Working out a template value that is a string — an export's name, an imported name, an SSM
//! parameter's name — for one stack of one environment, before anything is deployed: literal
//! strings, `Ref` to parameters and pseudo parameters, `Fn::Sub`, `Fn::Join`, `Fn::Select` and
//! `Fn::Split`. Anything else (resource attributes, conditions, parameters known only at deploy
//! time) is unknown, with the reason.

use std::collections::BTreeMap;

use serde_json::Value;

/// What is known about one stack before it is deployed.
#[derive(Clone, Debug, Default)]
pub struct StackFacts {
    /// Parameter values known now (defaults included), by name. Parameters missing here are
    /// unknown (filled in at deploy time, or secret).
    pub parameters: BTreeMap<String, String>,
    pub stack_name: String,
    pub account: String,
    pub region: String,
}

impl StackFacts {
    /// The value of `Ref name` to a parameter or pseudo parameter.
    fn reference(&self, name: &str) -> Result<String, Unknown> {
        if let Some(v) = self.parameters.get(name) {
            return Ok(v.clone());
        }
        match name {
            "AWS::StackName" => Ok(self.stack_name.clone()),
            "AWS::Region" => Ok(self.region.clone()),
            "AWS::AccountId" => Ok(self.account.clone()),
            "AWS::Partition" => Ok(partition(&self.region).to_string()),
            "AWS::URLSuffix" => Ok(url_suffix(&self.region).to_string()),
            _ if name.starts_with("AWS::") => Err(Unknown(format!(
                "`{name}` is known only once the stack exists"
            ))),
            _ => Err(Unknown(format!(
                "`{name}` is a resource or a parameter known only at deploy time"
            ))),
        }
    }
}

/// The AWS partition of a region: `aws-cn` for China, `aws-us-gov` for GovCloud, else `aws`.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The domain suffix of URLs in a region (`AWS::URLSuffix`).
fn url_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

/// Why a value cannot be worked out before deploying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unknown(pub String);

/// The string `v` stands for in stack `facts`.
pub fn string(v: &Value, facts: &StackFacts) -> Result<String, Unknown> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Object(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next().expect("one key");
            match (k.as_str(), arg) {
                ("Ref", Value::String(name)) => facts.reference(name),
                ("Fn::Sub", Value::String(s)) => sub(s, &BTreeMap::new(), facts),
                ("Fn::Sub", Value::Array(parts)) => {
                    let (Some(Value::String(s)), vars) = (parts.first(), parts.get(1)) else {
                        return Err(Unknown("a malformed `Fn::Sub`".into()));
                    };
                    let mut known = BTreeMap::new();
                    if let Some(Value::Object(vars)) = vars {
                        for (name, value) in vars {
                            known.insert(name.clone(), string(value, facts));
                        }
                    }
                    sub(s, &known, facts)
                }
                ("Fn::Join", Value::Array(parts)) => match (parts.first(), parts.get(1)) {
                    (Some(Value::String(sep)), Some(items)) => {
                        Ok(list(items, facts)?.join(sep.as_str()))
                    }
                    _ => Err(Unknown("a malformed `Fn::Join`".into())),
                },
                ("Fn::Select", Value::Array(parts)) => {
                    let index = parts
                        .first()
                        .map(|i| string(i, facts))
                        .transpose()?
                        .and_then(|i| i.parse::<usize>().ok());
                    let items = parts.get(1).map(|l| list(l, facts)).transpose()?;
                    match (index, items) {
                        (Some(i), Some(items)) => items.get(i).cloned().ok_or_else(|| {
                            Unknown(format!("`Fn::Select` index {i} is out of range"))
                        }),
                        _ => Err(Unknown("a malformed `Fn::Select`".into())),
                    }
                }
                (name, _) => Err(Unknown(format!(
                    "`{name}` is worked out only at deploy time"
                ))),
            }
        }
        _ => Err(Unknown("not a string".into())),
    }
}

/// The strings of a list value: a literal list (each item a string value) or `Fn::Split`.
fn list(v: &Value, facts: &StackFacts) -> Result<Vec<String>, Unknown> {
    match v {
        Value::Array(items) => items.iter().map(|i| string(i, facts)).collect(),
        Value::Object(m) if m.len() == 1 => match m.iter().next().expect("one key") {
            (k, Value::Array(parts)) if k == "Fn::Split" => match (parts.first(), parts.get(1)) {
                (Some(Value::String(sep)), Some(s)) if !sep.is_empty() => Ok(string(s, facts)?
                    .split(sep.as_str())
                    .map(String::from)
                    .collect()),
                _ => Err(Unknown("a malformed `Fn::Split`".into())),
            },
            (k, _) => Err(Unknown(format!("`{k}` is worked out only at deploy time"))),
        },
        _ => Err(Unknown("not a list".into())),
    }
}

/// `Fn::Sub` of `s` with the variables `vars` (each worked out or not) and otherwise
/// parameters and pseudo parameters. `${!Literal}` stays `${Literal}`.
fn sub(
    s: &str,
    vars: &BTreeMap<String, Result<String, Unknown>>,
    facts: &StackFacts,
) -> Result<String, Unknown> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(Unknown("a `${` in `Fn::Sub` is never closed".into()));
        };
        let name = &after[..end];
        if let Some(literal) = name.strip_prefix('!') {
            out.push_str("${");
            out.push_str(literal);
            out.push('}');
        } else if let Some(v) = vars.get(name) {
            out.push_str(&v.clone()?);
        } else if name.contains('.') && !name.starts_with("AWS::") {
            return Err(Unknown(format!(
                "`${{{name}}}` is a resource attribute, known only at deploy time"
            )));
        } else {
            out.push_str(&facts.reference(name)?);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts() -> StackFacts {
        StackFacts {
            parameters: BTreeMap::from([
                ("ParentVPCStack".to_string(), "prod-vpc".to_string()),
                ("Names".to_string(), "a,b,c".to_string()),
            ]),
            stack_name: "prod-app".into(),
            account: "123456789012".into(),
            region: "cn-north-1".into(),
        }
    }

    #[test]
    fn works_out_the_usual_export_and_import_names() {
        let f = facts();
        let cases = [
            (json!("literal"), "literal"),
            (
                json!({"Fn::Sub": "${ParentVPCStack}-VpcId"}),
                "prod-vpc-VpcId",
            ),
            (
                json!({"Fn::Sub": "${AWS::StackName}-Subnets"}),
                "prod-app-Subnets",
            ),
            (
                json!({"Fn::Sub": ["${Parent}-${AWS::Region}", {"Parent": {"Ref": "ParentVPCStack"}}]}),
                "prod-vpc-cn-north-1",
            ),
            (
                json!({"Fn::Join": [":", [{"Ref": "AWS::StackName"}, "Arn"]]}),
                "prod-app:Arn",
            ),
            (
                json!({"Fn::Join": ["-", [{"Ref": "AWS::Partition"}, {"Ref": "AWS::AccountId"}]]}),
                "aws-cn-123456789012",
            ),
            (
                json!({"Fn::Select": [1, {"Fn::Split": [",", {"Ref": "Names"}]}]}),
                "b",
            ),
            (json!({"Fn::Sub": "${!Literal}-x"}), "${Literal}-x"),
        ];
        for (v, want) in cases {
            assert_eq!(string(&v, &f).as_deref(), Ok(want), "{v}");
        }
    }

    #[test]
    fn says_why_a_value_is_not_known_before_deploying() {
        let f = facts();
        for (v, why) in [
            (json!({"Ref": "Bucket"}), "`Bucket` is a resource"),
            (json!({"Fn::Sub": "${Bucket.Arn}"}), "resource attribute"),
            (json!({"Fn::GetAtt": ["Bucket", "Arn"]}), "`Fn::GetAtt`"),
            (json!({"Ref": "AWS::StackId"}), "once the stack exists"),
            (json!({"Fn::Sub": "${Open"}), "never closed"),
            (json!({"Fn::Select": [5, ["a"]]}), "out of range"),
        ] {
            let e = string(&v, &f).unwrap_err();
            assert!(e.0.contains(why), "{v}: {}", e.0);
        }
    }
}
