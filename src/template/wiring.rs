//! What ties a template to other stacks: the exports of its outputs (`Outputs.X.Export.Name`),
//! every `Fn::ImportValue` in its resources and outputs, and the SSM parameters it creates
//! (`AWS::SSM::Parameter` with a `Name`), each with the place it is written and its name as a
//! template value, to be worked out per stack with [`super::evaluate`].

use serde_json::Value;

use super::{Template, to_value};
use crate::diag::Span;
use crate::yaml::{Kind, Node};

/// An output's export.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportDecl {
    /// The output that is exported.
    pub output: String,
    /// The export's name, as written (`Fn::Sub` and the like not worked out).
    pub name: Value,
    /// The condition the output depends on, if any.
    pub condition: Option<String>,
    /// Where the name is written.
    pub span: Span,
}

/// A `Fn::ImportValue`.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportDecl {
    /// The imported name, as written.
    pub name: Value,
    /// Where it is used: `Resources.App` or `Outputs.Url`.
    pub within: String,
    /// Where the `Fn::ImportValue` is written.
    pub span: Span,
}

/// An SSM parameter the template creates under a name it gives.
#[derive(Clone, Debug, PartialEq)]
pub struct SsmParameterDecl {
    /// The resource's logical id.
    pub resource: String,
    /// The parameter's `Name`, as written.
    pub name: Value,
    /// Where the name is written.
    pub span: Span,
}

/// Everything in this module's reading of one template, worked out once.
#[derive(Clone, Debug, Default)]
pub(super) struct Wiring {
    exports: Vec<ExportDecl>,
    imports: Vec<ImportDecl>,
    ssm_parameters: Vec<SsmParameterDecl>,
}

impl Template {
    fn wiring(&self) -> &Wiring {
        self.wiring.get_or_init(|| Wiring {
            exports: self.find_exports(),
            imports: self.find_imports(),
            ssm_parameters: self.find_ssm_parameters(),
        })
    }

    /// The SSM parameters the template creates with a `Name` (without one, CloudFormation
    /// makes up a name no config can know), in order.
    pub fn ssm_parameters(&self) -> &[SsmParameterDecl] {
        &self.wiring().ssm_parameters
    }

    /// The exports of the template's outputs, in order.
    pub fn exports(&self) -> &[ExportDecl] {
        &self.wiring().exports
    }

    /// Every `Fn::ImportValue` in the template's resources and outputs, in order.
    pub fn imports(&self) -> &[ImportDecl] {
        &self.wiring().imports
    }

    fn find_ssm_parameters(&self) -> Vec<SsmParameterDecl> {
        let mut out = Vec::new();
        for (k, v) in self.root.get("Resources").map(Node::entries).unwrap_or(&[]) {
            let (Some(id), Some("AWS::SSM::Parameter")) =
                (k.as_str(), v.get("Type").and_then(Node::as_str))
            else {
                continue;
            };
            let Some(name) = v.get("Properties").and_then(|p| p.get("Name")) else {
                continue;
            };
            if let Ok(value) = to_value(name) {
                out.push(SsmParameterDecl {
                    resource: id.to_string(),
                    name: value,
                    span: name.span,
                });
            }
        }
        out
    }

    fn find_exports(&self) -> Vec<ExportDecl> {
        let mut out = Vec::new();
        for (k, v) in self.root.get("Outputs").map(Node::entries).unwrap_or(&[]) {
            let (Some(output), Some(name)) =
                (k.as_str(), v.get("Export").and_then(|e| e.get("Name")))
            else {
                continue;
            };
            let Ok(value) = to_value(name) else { continue };
            out.push(ExportDecl {
                output: output.to_string(),
                name: value,
                condition: v.get("Condition").and_then(Node::as_str).map(String::from),
                span: name.span,
            });
        }
        out
    }

    fn find_imports(&self) -> Vec<ImportDecl> {
        let mut out = Vec::new();
        for section in ["Resources", "Outputs"] {
            for (k, v) in self.root.get(section).map(Node::entries).unwrap_or(&[]) {
                let within = format!("{section}.{}", k.as_str().unwrap_or_default());
                imports_in(v, &within, &mut out);
            }
        }
        out
    }
}

/// The `Fn::ImportValue` calls (`!ImportValue x` or `Fn::ImportValue: x`) inside `n`.
fn imports_in(n: &Node, within: &str, out: &mut Vec<ImportDecl>) {
    if n.tag.as_deref() == Some("!ImportValue") {
        if let Ok(Value::Object(m)) = to_value(n)
            && let Some(name) = m.get("Fn::ImportValue")
        {
            out.push(ImportDecl {
                name: name.clone(),
                within: within.to_string(),
                span: n.span,
            });
        }
        return;
    }
    match &n.kind {
        Kind::Scalar(_) => {}
        Kind::Seq(items) => items.iter().for_each(|i| imports_in(i, within, out)),
        Kind::Map(pairs) => {
            if let [(k, v)] = pairs.as_slice()
                && k.as_str() == Some("Fn::ImportValue")
            {
                if let Ok(name) = to_value(v) {
                    out.push(ImportDecl {
                        name,
                        within: within.to_string(),
                        span: k.span,
                    });
                }
                return;
            }
            pairs.iter().for_each(|(_, v)| imports_in(v, within, out));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    const T: &str = r#"
Parameters:
  ParentVPCStack: {Type: String}
Conditions:
  HasName: !Equals [a, a]
Resources:
  Sg:
    Type: AWS::EC2::SecurityGroup
    Properties:
      VpcId: !ImportValue
        Fn::Sub: '${ParentVPCStack}-VpcId'
      Tags:
        - Key: subnets
          Value: {"Fn::Join": [",", [{"Fn::ImportValue": {"Fn::Sub": "${ParentVPCStack}-SubnetA"}}, "x"]]}
Outputs:
  SgId:
    Value: !Ref Sg
    Export:
      Name: !Sub '${AWS::StackName}-SgId'
  Named:
    Condition: HasName
    Value: !ImportValue shared-name
    Export: {Name: literal-export}
"#;

    #[test]
    fn finds_exports_and_imports_with_their_places() {
        let t = Template::parse(T.as_bytes(), &Arc::from("t.yml")).unwrap();
        let exports = t.exports();
        assert_eq!(exports.len(), 2);
        assert_eq!(exports[0].output, "SgId");
        assert_eq!(
            exports[0].name,
            json!({"Fn::Sub": "${AWS::StackName}-SgId"})
        );
        assert_eq!(exports[0].span.start.line, 19);
        assert_eq!(exports[1].condition.as_deref(), Some("HasName"));
        assert_eq!(exports[1].name, json!("literal-export"));
        assert!(t.ssm_parameters().is_empty());
        let with_ssm = T.replace(
            "Outputs:\n",
            "  Url:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: !Sub /app/${ParentVPCStack}/url\n      Type: String\n      Value: x\n  Unnamed:\n    Type: AWS::SSM::Parameter\n    Properties: {Type: String, Value: y}\nOutputs:\n",
        );
        let t2 = Template::parse(with_ssm.as_bytes(), &Arc::from("t.yml")).unwrap();
        let ssm = t2.ssm_parameters();
        assert_eq!(ssm.len(), 1, "{ssm:?}");
        assert_eq!(ssm[0].resource, "Url");
        assert_eq!(
            ssm[0].name,
            json!({"Fn::Sub": "/app/${ParentVPCStack}/url"})
        );

        let imports = t.imports();
        let names: Vec<(&str, &Value, u32)> = imports
            .iter()
            .map(|i| (i.within.as_str(), &i.name, i.span.start.line))
            .collect();
        assert_eq!(
            names,
            [
                (
                    "Resources.Sg",
                    &json!({"Fn::Sub": "${ParentVPCStack}-VpcId"}),
                    10
                ),
                (
                    "Resources.Sg",
                    &json!({"Fn::Sub": "${ParentVPCStack}-SubnetA"}),
                    14
                ),
                ("Outputs.Named", &json!("shared-name"), 22),
            ]
        );
    }
}
