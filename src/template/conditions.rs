//! A template's `Conditions` evaluated for one stack before it is deployed: `Fn::Equals` of two
//! values worked out with [`super::evaluate`], `Fn::And`, `Fn::Or`, `Fn::Not` and references to
//! other conditions (`{"Condition": name}`). A condition is known to hold or not when the values
//! it compares are known (parameters set in the config or defaulted, pseudo parameters), and
//! unknown otherwise (a parameter fed by another stack's output, a secret, a malformed
//! condition); logic over unknowns is unknown only where the known parts do not decide it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Template;
use super::evaluate::{self, StackFacts};

/// The conditions of one template for one stack: those known to hold or not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conditions {
    known: BTreeMap<String, bool>,
}

impl Conditions {
    /// Nothing known: every condition is unknown.
    pub fn unknown() -> Conditions {
        Conditions::default()
    }

    /// Evaluates every condition of `template` for the stack `facts` describes.
    pub fn of(template: &Template, facts: &StackFacts) -> Conditions {
        if template.root.get("Conditions").is_none() {
            return Conditions::default();
        }
        let defs = template
            .value()
            .get("Conditions")
            .and_then(Value::as_object);
        let mut known = BTreeMap::new();
        if let Some(defs) = defs {
            let mut ev = Evaluator {
                defs,
                facts,
                done: BTreeMap::new(),
                visiting: Vec::new(),
            };
            for name in defs.keys() {
                if let Some(v) = ev.condition(name) {
                    known.insert(name.clone(), v);
                }
            }
        }
        Conditions { known }
    }

    /// Whether condition `name` holds; `None` when it is not known.
    pub fn holds(&self, name: &str) -> Option<bool> {
        self.known.get(name).copied()
    }
}

/// Evaluation of one template's conditions, remembering each result.
struct Evaluator<'a> {
    defs: &'a serde_json::Map<String, Value>,
    facts: &'a StackFacts,
    done: BTreeMap<String, Option<bool>>,
    /// The conditions being evaluated, to stop at a cycle (CloudFormation refuses those).
    visiting: Vec<String>,
}

impl Evaluator<'_> {
    fn condition(&mut self, name: &str) -> Option<bool> {
        if let Some(v) = self.done.get(name) {
            return *v;
        }
        if self.visiting.iter().any(|v| v == name) {
            return None;
        }
        let def = self.defs.get(name)?;
        self.visiting.push(name.to_string());
        let v = self.expr(def);
        self.visiting.pop();
        self.done.insert(name.to_string(), v);
        v
    }

    fn expr(&mut self, v: &Value) -> Option<bool> {
        let m = v.as_object().filter(|m| m.len() == 1)?;
        let (k, arg) = m.iter().next().expect("one key");
        match (k.as_str(), arg) {
            ("Condition", Value::String(name)) => self.condition(name),
            ("Fn::Equals", Value::Array(pair)) if pair.len() == 2 => {
                let a = evaluate::string(&pair[0], self.facts).ok()?;
                let b = evaluate::string(&pair[1], self.facts).ok()?;
                Some(a == b)
            }
            ("Fn::Not", Value::Array(one)) if one.len() == 1 => self.expr(&one[0]).map(|b| !b),
            ("Fn::And", Value::Array(all)) => {
                let values: Vec<Option<bool>> = all.iter().map(|c| self.expr(c)).collect();
                if values.contains(&Some(false)) {
                    Some(false)
                } else if values.iter().all(|v| *v == Some(true)) {
                    Some(true)
                } else {
                    None
                }
            }
            ("Fn::Or", Value::Array(any)) => {
                let values: Vec<Option<bool>> = any.iter().map(|c| self.expr(c)).collect();
                if values.contains(&Some(true)) {
                    Some(true)
                } else if values.iter().all(|v| *v == Some(false)) {
                    Some(false)
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const T: &str = r#"
Parameters:
  Env: {Type: String}
  Replicas: {Type: Number, Default: 1}
  Upstream: {Type: String}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  NotProd: !Not [!Condition IsProd]
  Replicated: !Not [!Equals [!Ref Replicas, 1]]
  ProdAndReplicated: !And [!Condition IsProd, !Condition Replicated]
  ProdOrReplicated: !Or [!Condition IsProd, !Condition Replicated]
  HasUpstream: !Not [!Equals [!Ref Upstream, '']]
  ProdOrUpstream: !Or [!Condition IsProd, !Condition HasUpstream]
  NotProdAndUpstream: !And [!Condition NotProd, !Condition HasUpstream]
  InIreland: !Equals [!Ref 'AWS::Region', eu-west-1]
  Loop: !Not [!Condition Loop]
Resources:
  R: {Type: AWS::SNS::Topic}
"#;

    fn of(env: &str) -> Conditions {
        let t = Template::parse(T.as_bytes(), &Arc::from("t.yml")).unwrap();
        let facts = StackFacts {
            parameters: BTreeMap::from([
                ("Env".to_string(), env.to_string()),
                ("Replicas".to_string(), "1".to_string()),
            ]),
            stack_name: "s".into(),
            account: "123456789012".into(),
            region: "eu-west-1".into(),
        };
        Conditions::of(&t, &facts)
    }

    #[test]
    fn known_values_decide_and_unknown_ones_stay_unknown() {
        let prod = of("prod");
        assert_eq!(prod.holds("IsProd"), Some(true));
        assert_eq!(prod.holds("NotProd"), Some(false));
        assert_eq!(prod.holds("Replicated"), Some(false));
        assert_eq!(prod.holds("ProdAndReplicated"), Some(false));
        assert_eq!(prod.holds("ProdOrReplicated"), Some(true));
        assert_eq!(prod.holds("InIreland"), Some(true));
        // Upstream is not known (fed at deploy time).
        assert_eq!(prod.holds("HasUpstream"), None);
        // …but the known part decides these.
        assert_eq!(prod.holds("ProdOrUpstream"), Some(true));
        assert_eq!(prod.holds("NotProdAndUpstream"), Some(false));
        let dev = of("dev");
        assert_eq!(dev.holds("IsProd"), Some(false));
        assert_eq!(dev.holds("ProdOrUpstream"), None);
        assert_eq!(dev.holds("NotProdAndUpstream"), None);
        assert_eq!(dev.holds("Loop"), None);
        assert_eq!(dev.holds("Missing"), None);
        assert_eq!(Conditions::unknown().holds("IsProd"), None);
    }
}
