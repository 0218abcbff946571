//! The bundled `dekart` pipeline (pipelines/dekart, environments/dekart-prod): it validates,
//! an offline plan from nothing lists every stack, and it deploys on moto server with outputs
//! flowing from stack to stack.
//!
//! What moto server (5.2.x) cannot run, and what this test's copy changes for it:
//! - `cognito.yml`: moto has no CloudFormation model for AWS::Cognito::* (nor does it create
//!   user pools from templates), and an output `!GetAtt UserPool.Arn` of such a resource fails
//!   CreateStack with HTTP 500. The copy keeps the template's parameters and outputs, with an SSM
//!   parameter standing in for the pool and stand-in values of the same shape as outputs.
//! - `database.yml`: (1) moto's YAML reader splits `!GetAtt Database.Endpoint.Address` at every
//!   dot ("DBInstance does not support attribute type Endpoint"): the copy writes the same
//!   function in its long form, `Fn::GetAtt: [Database, Endpoint.Address]`, which means the same
//!   to CloudFormation. (2) AWS::SecretsManager::Secret has no moto model: `!Ref MasterSecret`
//!   gives nothing and moto drops the output SecretArn, which iam and service read; the copy
//!   gives the ARN the secret would have, built with `!Sub`.
//! - The HTTPS listener needs a certificate that exists in ACM (moto checks): the test requests
//!   one from moto's ACM API. The hosted zone comes from a stack named `<env>-shared-dns`,
//!   created here with CreateStack, which the environment reads with `${external:…}` as
//!   environments/dekart-prod does from `shared-dns`.
//!
//! As in tests/it/pipeline_ecs_services.rs, stacks created by executing a change set get no Outputs
//! on moto: the stacks other stacks read are created wave by wave with CreateStack, with the
//! template, parameters and tags formwork plans for them (the parameters resolved by formwork
//! from the stacks created before); `formwork apply` creates the two last stacks, dns and
//! service, by executing their change sets.

use crate::common;

use std::collections::BTreeMap;

use aws_sdk_cloudformation::types::{Parameter, Tag};
use common::aws::{moto, unique};
use common::sdk::{self, block, formwork_on};
use common::stacks::{self, created_stacks, form_encode, graph, graph_keys};
use common::{Repo, Run, project_file};

const ENVIRONMENT: &str = "dekart-prod";
const REGION: &str = "us-east-1";
const STACKS: [&str; 9] = [
    "alb",
    "cognito",
    "database",
    "dns",
    "iam",
    "security-groups",
    "service",
    "storage",
    "vpc",
];

fn on_moto(r: &Repo, args: &[&str]) -> Run {
    formwork_on(moto(), r.path(), args)
}

fn outputs(stack: &str) -> BTreeMap<String, String> {
    stacks::outputs(moto(), REGION, stack)
}

fn parameters(stack: &str) -> BTreeMap<String, String> {
    stacks::parameters(moto(), REGION, stack)
}

#[test]
fn validates_and_an_offline_plan_from_nothing_lists_every_stack() {
    let r = Repo::bundled(
        &["pipelines/dekart", &format!("environments/{ENVIRONMENT}")],
        "dekart",
    );
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(v.stdout.contains("1 environment, 9 stacks"), "{}", v.all());

    let plan = r.run(&["plan", "--offline", "--base", "HEAD~1", "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let plan = plan.json();
    let envs = plan["environments"].as_array().unwrap();
    assert_eq!(envs.len(), 1, "{plan:#}");
    assert_eq!(envs[0]["name"], ENVIRONMENT);
    let keys = created_stacks(&plan, ENVIRONMENT);
    assert_eq!(keys, STACKS);
    assert_eq!(keys, graph_keys(&r, ENVIRONMENT));
    let g = graph(&r, ENVIRONMENT);
    let waves = &g["waves"];
    assert_eq!(waves.as_array().unwrap().len(), 5, "{waves}");
    assert_eq!(waves[4], serde_json::json!(["service"]), "{waves}");
}

/// The cognito template's parameters, with stand-ins for what moto cannot create (module doc).
fn cognito_for_moto(original: &str) -> String {
    let head = &original[..original.find("\nResources:").unwrap()];
    format!(
        r"{head}
Resources:
  UserPool:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /${{EnvironmentName}}/dekart/user-pool
      Type: String
      Value: !Sub '${{DomainPrefix}} https://${{DnsName}}/oauth2/idpresponse'
Outputs:
  UserPoolArn:
    Value: !Sub 'arn:${{AWS::Partition}}:cognito-idp:${{AWS::Region}}:${{AWS::AccountId}}:userpool/${{AWS::Region}}_standin'
  UserPoolId:
    Value: !Sub '${{AWS::Region}}_standin'
  UserPoolClientId:
    Value: 1example23456789client
  UserPoolDomain:
    Value: !Ref DomainPrefix
"
    )
}

/// The database template as moto can run it (module doc).
fn database_for_moto(original: &str) -> String {
    let mut text = original.to_string();
    for attr in ["Address", "Port"] {
        let short = format!("Value: !GetAtt Database.Endpoint.{attr}");
        assert!(text.contains(&short), "{short}");
        text = text.replace(
            &short,
            &format!("Value:\n      Fn::GetAtt: [Database, Endpoint.{attr}]"),
        );
    }
    let secret = "Value: !Ref MasterSecret";
    assert!(text.contains(secret));
    text.replace(
        secret,
        "Value: !Sub 'arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${EnvironmentName}/dekart/database-AbCdEf'",
    )
}

/// The bundled pipeline with one environment named `env`: dekart-prod's values, in moto's
/// account (moto answers 123456789012 for any credentials) and region, without a role, its own
/// host name and shared DNS stack.
fn on_moto_repo(env: &str) -> Repo {
    let r = Repo::empty_first();
    r.copy_from_project("pipelines/dekart");
    let cognito = "pipelines/dekart/templates/cognito.yml";
    r.write(cognito, &cognito_for_moto(&r.read(cognito)));
    let database = "pipelines/dekart/templates/database.yml";
    r.write(database, &database_for_moto(&r.read(database)));
    let prod = project_file(&format!("environments/{ENVIRONMENT}/environment.yml"));
    let mut text = String::new();
    for line in prod.lines() {
        if line.starts_with("role_arn:") {
            continue;
        } else if line.starts_with("account:") {
            text.push_str(&format!("account: \"{}\"\n", moto().account()));
        } else if line.starts_with("region:") {
            text.push_str(&format!("region: {REGION}\n"));
        } else if line.starts_with("  DnsName:") {
            text.push_str(&format!("  DnsName: maps.{env}.example.com\n"));
        } else if line.starts_with("  AuthDomainPrefix:") {
            text.push_str(&format!("  AuthDomainPrefix: {env}\n"));
        } else {
            text.push_str(&line.replace(
                "${external:shared-dns.",
                &format!("${{external:{env}-shared-dns."),
            ));
            text.push('\n');
        }
    }
    assert!(
        text.contains(&format!("{env}-shared-dns.HostedZoneId")),
        "{text}"
    );
    r.write(&format!("environments/{env}/environment.yml"), &text);
    r.commit("dekart on moto");
    r
}

/// An ACM certificate in moto (query APIs take a dummy signature; ACM speaks JSON).
fn certificate(domain: &str) -> String {
    let auth = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/acm/aws4_request, \
                SignedHeaders=content-type;host;x-amz-date, Signature=00";
    let body = format!(r#"{{"DomainName":"{domain}","ValidationMethod":"DNS"}}"#);
    let resp = common::aws::http(
        &moto().url,
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", "CertificateManager.RequestCertificate"),
            ("X-Amz-Date", "20260101T000000Z"),
            ("Authorization", auth),
        ],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.body);
    let v: serde_json::Value = serde_json::from_str(&resp.body).unwrap();
    v["CertificateArn"].as_str().unwrap().to_string()
}

/// The account's shared DNS, deployed outside the pipeline: a hosted zone and the certificate.
const SHARED_DNS: &str = r"Parameters:
  ZoneName:
    Type: String
  CertificateArn:
    Type: String
Resources:
  Zone:
    Type: AWS::Route53::HostedZone
    Properties:
      Name: !Ref ZoneName
Outputs:
  HostedZoneId:
    Value: !Ref Zone
  CertificateArn:
    Value: !Ref CertificateArn
";

fn shared_dns(env: &str) -> String {
    let name = format!("{env}-shared-dns");
    let cert = certificate(&format!("*.{env}.example.com"));
    let cfn = sdk::cfn(moto(), REGION);
    let param = |k: &str, v: &str| {
        Parameter::builder()
            .parameter_key(k)
            .parameter_value(v)
            .build()
    };
    block(async {
        cfn.create_stack()
            .stack_name(&name)
            .template_body(SHARED_DNS)
            .parameters(param("ZoneName", &format!("{env}.example.com")))
            .parameters(param("CertificateArn", &cert))
            .send()
            .await
            .unwrap();
    });
    name
}

/// The tags formwork puts on a stack of the test environment: the pipeline's, the stack's, the
/// environment's (environments/dekart-prod), and which pipeline and environment it is.
fn tags(env: &str, key: &str) -> Vec<Tag> {
    let layer = match key {
        "vpc" | "security-groups" | "alb" | "dns" => "network",
        "storage" | "database" => "data",
        "iam" | "cognito" => "security",
        _ => "app",
    };
    [
        ("app", "dekart"),
        ("layer", layer),
        ("team", "analytics"),
        ("environment", "production"),
        ("cost-centre", "analytics"),
        ("formwork:pipeline", "dekart"),
        ("formwork:environment", env),
    ]
    .into_iter()
    .map(|(k, v)| Tag::builder().key(k).value(v).build())
    .collect()
}

/// Creates the stacks `keys` with CreateStack, as formwork plans them now (see the module doc).
fn create_as_planned(r: &Repo, env: &str, keys: &[&str]) {
    stacks::create_as_planned(
        moto(),
        REGION,
        r,
        env,
        keys,
        |key| format!("pipelines/dekart/templates/{key}.yml"),
        |key| tags(env, key),
    );
}

#[test]
fn applies_on_moto_with_outputs_flowing_from_stack_to_stack() {
    let env = unique("dk");
    let r = on_moto_repo(&env);
    let shared = shared_dns(&env);
    let stack = |key: &str| format!("{env}-{key}");

    create_as_planned(&r, &env, &["vpc", "storage", "cognito"]);
    create_as_planned(&r, &env, &["security-groups"]);
    create_as_planned(&r, &env, &["database", "alb"]);
    create_as_planned(&r, &env, &["iam"]);
    let vpc = outputs(&stack("vpc"));
    let sg = outputs(&stack("security-groups"));
    let db = outputs(&stack("database"));
    let alb = outputs(&stack("alb"));
    let iam = outputs(&stack("iam"));
    let storage = outputs(&stack("storage"));
    assert_eq!(parameters(&stack("security-groups"))["VpcId"], vpc["VpcId"]);
    assert_eq!(
        parameters(&stack("database"))["DatabaseSecurityGroupId"],
        sg["DatabaseSecurityGroupId"]
    );
    assert_eq!(db["Port"], "5432");
    let alb_params = parameters(&stack("alb"));
    assert_eq!(
        alb_params["CertificateArn"],
        outputs(&shared)["CertificateArn"],
        "read from the shared DNS stack"
    );
    assert_eq!(
        alb_params["UserPoolDomain"],
        outputs(&stack("cognito"))["UserPoolDomain"]
    );
    assert_eq!(
        parameters(&stack("iam"))["ResultsBucketArn"],
        storage["BucketArn"]
    );

    // The plan reviewed and applied: the two stacks nothing reads from. (The stacks above are
    // left out of it: stock moto's DescribeStacks prints a List<…> parameter as a Python list,
    // `['subnet-…', 'subnet-…']`, so formwork would see those parameters as changed.)
    let plan = on_moto(
        &r,
        &[
            "plan", "--env", &env, "--stack", "dns", "--stack", "service", "--output", "json",
        ],
    );
    assert_eq!(plan.code, 2, "{}", plan.all());
    let plan = plan.json();
    for unit in plan["environments"][0]["units"].as_array().unwrap() {
        assert_eq!(unit["action"], "create", "{unit:#}");
        for input in unit["inputs"].as_array().unwrap() {
            assert!(
                input["current"].as_str().is_some_and(|v| !v.is_empty()),
                "{unit:#}"
            );
        }
    }
    let applied = on_moto(&r, &["apply", "--env", &env, "--output", "json"]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert_eq!(applied.json()["run"]["status"], "succeeded");

    let service = parameters(&stack("service"));
    assert_eq!(service["DatabaseHost"], db["Endpoint"]);
    assert_eq!(service["DatabasePort"], "5432");
    assert_eq!(service["DatabaseSecretArn"], db["SecretArn"]);
    assert_eq!(service["TargetGroupArn"], alb["TargetGroupArn"]);
    assert_eq!(service["ExecutionRoleArn"], iam["ExecutionRoleArn"]);
    assert_eq!(service["TaskRoleArn"], iam["TaskRoleArn"]);
    assert_eq!(service["ResultsBucketName"], storage["BucketName"]);
    assert_eq!(service["TaskSecurityGroupId"], sg["TaskSecurityGroupId"]);
    assert_eq!(service["SettingsPath"], format!("/dekart/{env}"));
    assert!(stacks::physical_id(moto(), REGION, &stack("service"), "Service").ends_with("/dekart"));

    let dns = parameters(&stack("dns"));
    assert_eq!(dns["HostedZoneId"], outputs(&shared)["HostedZoneId"]);
    assert_eq!(dns["LoadBalancerDnsName"], alb["LoadBalancerDnsName"]);
    assert_eq!(
        stacks::physical_id(moto(), REGION, &stack("dns"), "Record"),
        format!("maps.{env}.example.com")
    );

    // Behind the HTTPS listener: sign-in with the pool's client, then the task's target group.
    let rules = moto().query(
        "elasticloadbalancing",
        &format!(
            "Action=DescribeRules&Version=2015-12-01&ListenerArn={}",
            form_encode(&alb["HttpsListenerArn"])
        ),
    );
    assert_eq!(rules.status, 200, "{}", rules.body);
    for part in [
        "<Type>authenticate-cognito</Type>".to_string(),
        format!("<member>maps.{env}.example.com</member>"),
        format!("<TargetGroupArn>{}</TargetGroupArn>", alb["TargetGroupArn"]),
    ] {
        assert!(rules.body.contains(&part), "{part}: {}", rules.body);
    }
}
