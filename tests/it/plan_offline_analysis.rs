//! The offline template analysis as a whole: resource changes, security changes and the
//! template diff of one realistic change, and properties of the normalised rendering.

use std::sync::Arc;

use formwork::plan::model::{
    Replacement, RequiresRecreation, ResourceAction, SecurityChangeKind, SecurityKind,
};
use formwork::template::Template;
use formwork::template::diff::resource_changes;
use formwork::template::security::security_changes;
use formwork::template::text_diff::{normalised, template_diff};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn parse(text: &str) -> Template {
    Template::parse(text.as_bytes(), &Arc::from("templates/app.yml"))
        .unwrap_or_else(|e| panic!("{e:?}\n{text}"))
}

const DEPLOYED: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  VpcId: {Type: AWS::EC2::VPC::Id}
  DbPassword: {Type: String, NoEcho: true}
  InstanceClass: {Type: String, Default: db.t3.micro}
Resources:
  WebSg:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: web
      VpcId: !Ref VpcId
      SecurityGroupIngress:
        - {IpProtocol: tcp, FromPort: 443, ToPort: 443, CidrIp: 10.0.0.0/8}
  Db:
    Type: AWS::RDS::DBInstance
    Properties:
      DBInstanceClass: !Ref InstanceClass
      Engine: postgres
      MasterUsername: app
      MasterUserPassword: !Ref DbPassword
      VPCSecurityGroups: [!GetAtt WebSg.GroupId]
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - {Effect: Allow, Principal: {Service: ecs-tasks.amazonaws.com}, Action: sts:AssumeRole}
      Policies:
        - PolicyName: read
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: [s3:GetObject], Resource: "arn:aws:s3:::assets/*"}
"#;

/// The same stack, rewritten as JSON (long forms, other key order) and changed: the VPC moves
/// (the security group is replaced, and the database with it), the world may reach port 443,
/// the role may write too.
const PROPOSED: &str = r#"{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Parameters": {
    "InstanceClass": {"Default": "db.t3.micro", "Type": "String"},
    "DbPassword": {"NoEcho": true, "Type": "String"},
    "VpcId": {"Type": "AWS::EC2::VPC::Id"}
  },
  "Resources": {
    "Role": {
      "Type": "AWS::IAM::Role",
      "Properties": {
        "Policies": [{"PolicyName": "read", "PolicyDocument": {"Statement": [
          {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "arn:aws:s3:::assets/*"}
        ]}}],
        "AssumeRolePolicyDocument": {"Statement": [
          {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": ["ecs-tasks.amazonaws.com"]}}
        ]}
      }
    },
    "Db": {
      "Type": "AWS::RDS::DBInstance",
      "Properties": {
        "VPCSecurityGroups": [{"Fn::GetAtt": ["WebSg", "GroupId"]}],
        "MasterUserPassword": {"Ref": "DbPassword"},
        "MasterUsername": "app",
        "Engine": "postgres",
        "DBInstanceClass": {"Ref": "InstanceClass"}
      }
    },
    "WebSg": {
      "Type": "AWS::EC2::SecurityGroup",
      "Properties": {
        "SecurityGroupIngress": [
          {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "10.0.0.0/8"},
          {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"}
        ],
        "VpcId": {"Ref": "VpcId"},
        "GroupDescription": "web"
      }
    }
  }
}"#;

#[test]
fn one_change_seen_three_ways() {
    let (old, new) = (parse(DEPLOYED), parse(PROPOSED));
    let changed = ["VpcId".to_string(), "DbPassword".to_string()];

    let resources = resource_changes(Some(&old), Some(&new), &changed);
    let ids: Vec<_> = resources.iter().map(|r| r.logical_id.as_str()).collect();
    assert_eq!(ids, ["Db", "Role", "WebSg"]);
    assert!(resources.iter().all(|r| r.action == ResourceAction::Modify));

    let sg = &resources[2];
    assert_eq!(sg.replacement, Replacement::True, "{sg:#?}");
    let vpc = sg
        .details
        .iter()
        .find(|d| d.causing_entity.as_deref() == Some("VpcId"))
        .unwrap();
    assert_eq!(vpc.name.as_deref(), Some("VpcId"));
    assert_eq!(vpc.requires_recreation, Some(RequiresRecreation::Always));
    assert!(
        sg.details
            .iter()
            .any(|d| d.name.as_deref() == Some("SecurityGroupIngress[1]"))
    );

    // The database refers to the replaced group (not create-only) and to the secret.
    let db = &resources[0];
    assert_eq!(db.replacement, Replacement::False, "{db:#?}");
    let causes: Vec<_> = db
        .details
        .iter()
        .map(|d| d.causing_entity.as_deref().unwrap())
        .collect();
    assert_eq!(causes, ["DbPassword", "WebSg.GroupId"]);
    assert!(
        db.details
            .iter()
            .all(|d| d.before.is_none() && d.after.is_none())
    );

    let role = &resources[1];
    assert_eq!(role.replacement, Replacement::False);

    let security = security_changes(Some(&old), Some(&new));
    let got: Vec<_> = security
        .iter()
        .map(|s| {
            (
                s.resource.as_str(),
                s.kind,
                s.change,
                s.description.as_str(),
                s.broadens,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "Role",
                SecurityKind::IamStatement,
                SecurityChangeKind::Removed,
                "Allow s3:GetObject on arn:aws:s3:::assets/*",
                false
            ),
            (
                "Role",
                SecurityKind::IamStatement,
                SecurityChangeKind::Added,
                "Allow s3:GetObject,s3:PutObject on arn:aws:s3:::assets/*",
                false
            ),
            (
                "WebSg",
                SecurityKind::SecurityGroupRule,
                SecurityChangeKind::Added,
                "ingress tcp 443 from 0.0.0.0/0",
                true
            ),
        ]
    );

    let diff = template_diff(Some(&old), Some(&new), 2).unwrap();
    let changed_lines: Vec<_> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .collect();
    assert_eq!(
        changed_lines,
        [
            // The template changed here, though the trust policy means the same (the security
            // changes above do not list it).
            "-              Service: ecs-tasks.amazonaws.com",
            "+              Service:",
            "+                - ecs-tasks.amazonaws.com",
            "+                  - s3:PutObject",
            "+        - CidrIp: \"0.0.0.0/0\"",
            "+          FromPort: 443",
            "+          IpProtocol: tcp",
            "+          ToPort: 443",
        ],
        "{diff}"
    );
}

#[test]
fn a_template_rewritten_in_json_is_no_change() {
    let yaml = parse(DEPLOYED);
    let json = serde_json::to_string_pretty(yaml.value()).unwrap();
    let json = parse(&json);
    assert_eq!(template_diff(Some(&yaml), Some(&json), 3), None);
    assert!(resource_changes(Some(&yaml), Some(&json), &[]).is_empty());
    assert!(security_changes(Some(&yaml), Some(&json)).is_empty());
}

/// Strings that are hard to write as YAML scalars.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 ]{0,12}",
        3 => "[a-z0-9 :#'\"!&*|>%@`,\\[\\]{}?.~=+-]{0,16}",
        2 => "[a-z \\n\\t]{0,20}",
        1 => any::<String>(),
        1 => prop::sample::select(vec![
            "true", "No", "null", "~", "-1", "0x1F", "1e3", ".5", "12:30", "2010-09-09", "---",
            "...", "- a", "a: b", "a #b", "a:", " lead", "trail ", "\n", "a\n", "a\n\n", "\na",
            "a\r\nb", "\u{2028}", "\u{85}x", "\u{feff}",
        ])
        .prop_map(str::to_string),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![4 => "[A-Z][A-Za-z0-9]{0,8}", 1 => text().prop_filter("not a merge key", |k| k != "<<")]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner.clone()), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
            (
                prop::sample::select(vec![
                    "Ref",
                    "Fn::Sub",
                    "Fn::Join",
                    "Fn::GetAtt",
                    "Fn::If",
                    "Fn::Base64",
                    "Fn::Select",
                    "Fn::Split",
                    "Fn::ImportValue",
                    "Condition",
                ]),
                inner
            )
                .prop_map(|(k, v)| json!({ k: v })),
            ("[A-Za-z0-9.]{1,6}", "[A-Za-z.]{1,6}")
                .prop_map(|(r, a)| json!({"Fn::GetAtt": [r, a]})),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The rendering reads back as the same document, and renders the same again.
    #[test]
    fn normalised_rendering_reads_back(props in json_value(), meta in json_value()) {
        let doc = json!({
            "Resources": {"R": {"Type": "AWS::S3::Bucket", "Properties": props, "Metadata": meta}},
        });
        let original = parse(&serde_json::to_string(&doc).unwrap());
        let text = normalised(&original);
        let back = Template::parse(text.as_bytes(), &Arc::from("n.yml"))
            .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        prop_assert_eq!(back.value(), original.value(), "{}", text);
        prop_assert_eq!(normalised(&back), text);
    }

    /// Comparing a template with itself finds nothing; with any other, the diff says so.
    #[test]
    fn analysis_of_equal_templates_is_empty(a in json_value(), b in json_value()) {
        let t = |p: &Value| parse(&json!({"Resources": {"R": {"Type": "AWS::EC2::SecurityGroup", "Properties": p}}}).to_string());
        let (ta, tb) = (t(&a), t(&b));
        prop_assert!(resource_changes(Some(&ta), Some(&ta), &[]).is_empty());
        prop_assert!(security_changes(Some(&ta), Some(&ta)).is_empty());
        prop_assert_eq!(template_diff(Some(&ta), Some(&ta), 3), None);
        let differs = ta.value() != tb.value();
        prop_assert_eq!(template_diff(Some(&ta), Some(&tb), 3).is_some(), differs);
        prop_assert_eq!(!resource_changes(Some(&ta), Some(&tb), &[]).is_empty(), differs);
    }
}
