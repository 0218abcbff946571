//! What a template value refers to: `Ref`, `Fn::GetAtt`, the variables of `Fn::Sub` and the
//! conditions of `Fn::If`, found anywhere inside the value.

use serde_json::Value;

/// Something a value refers to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reference {
    /// `Ref` or `${Name}`: a parameter, a resource or a pseudo parameter.
    Ref(String),
    /// `Fn::GetAtt` or `${Res.Attr}`.
    GetAtt(String, String),
    /// `Fn::If` on a condition, or `{"Condition": …}` in a condition.
    Condition(String),
}

/// Every reference anywhere inside a value, in order of appearance.
pub fn references(v: &Value, out: &mut Vec<Reference>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| references(i, out)),
        Value::Object(m) => {
            if m.len() == 1 {
                let (k, arg) = m.iter().next().expect("one key");
                match (k.as_str(), arg) {
                    ("Ref", Value::String(name)) => return out.push(Reference::Ref(name.clone())),
                    ("Condition", Value::String(name)) => {
                        return out.push(Reference::Condition(name.clone()));
                    }
                    ("Fn::GetAtt", Value::String(s)) => {
                        let (res, attr) = s.split_once('.').unwrap_or((s, ""));
                        return out.push(Reference::GetAtt(res.into(), attr.into()));
                    }
                    ("Fn::GetAtt", Value::Array(parts)) => {
                        if let Some(Value::String(res)) = parts.first() {
                            let attr = match parts.get(1) {
                                Some(Value::String(a)) => a.clone(),
                                _ => String::new(),
                            };
                            out.push(Reference::GetAtt(res.clone(), attr));
                        }
                        parts.iter().skip(1).for_each(|p| references(p, out));
                        return;
                    }
                    ("Fn::Sub", Value::String(s)) => return sub_references(s, &[], out),
                    ("Fn::Sub", Value::Array(parts)) => {
                        let vars = parts.get(1).and_then(Value::as_object);
                        let names: Vec<&str> = vars
                            .map(|m| m.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        if let Some(Value::String(s)) = parts.first() {
                            sub_references(s, &names, out);
                        }
                        if let Some(vars) = vars {
                            vars.values().for_each(|x| references(x, out));
                        }
                        return;
                    }
                    ("Fn::If", Value::Array(parts)) => {
                        if let Some(Value::String(c)) = parts.first() {
                            out.push(Reference::Condition(c.clone()));
                        }
                        parts.iter().skip(1).for_each(|p| references(p, out));
                        return;
                    }
                    _ => {}
                }
            }
            m.values().for_each(|x| references(x, out));
        }
        _ => {}
    }
}

/// The variables of a `Fn::Sub` string, less those named in `local` (its own variable map).
/// `${!Literal}` is not a variable.
pub fn sub_references(s: &str, local: &[&str], out: &mut Vec<Reference>) {
    for name in sub_variables(s) {
        if local.contains(&name) {
            continue;
        }
        out.push(match name.split_once('.') {
            Some((res, attr)) => Reference::GetAtt(res.to_string(), attr.to_string()),
            None => Reference::Ref(name.to_string()),
        });
    }
}

/// The `${…}` variable names of a `Fn::Sub` string, trimmed, without `${!…}` literals.
pub fn sub_variables(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        if !name.starts_with('!') {
            out.push(name.trim());
        }
        rest = &after[end + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_variables_skip_literals() {
        assert_eq!(
            sub_variables("${A}-${!B}-${ C.Arn }-${AWS::Region}"),
            ["A", "C.Arn", "AWS::Region"]
        );
    }

    #[test]
    fn finds_references_in_every_intrinsic() {
        let v: Value = serde_json::json!({
            "Fn::Join": ["", [
                {"Ref": "A"},
                {"Fn::Sub": ["${B}-${x}", {"x": {"Fn::GetAtt": ["R", "Arn"]}}]},
                {"Fn::If": ["C", {"Ref": "D"}, "e"]}
            ]]
        });
        let mut out = Vec::new();
        references(&v, &mut out);
        assert_eq!(
            out,
            [
                Reference::Ref("A".into()),
                Reference::Ref("B".into()),
                Reference::GetAtt("R".into(), "Arn".into()),
                Reference::Condition("C".into()),
                Reference::Ref("D".into()),
            ]
        );
    }
}
