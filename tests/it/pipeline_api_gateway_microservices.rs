//! The bundled example pipeline `api-gateway-microservices` (pipelines/api-gateway-microservices/,
//! environments/apigw-staging and apigw-production): both environments validate, an offline plan
//! from an empty revision lists every stack of both, and production applies on moto server from
//! nothing, outputs flowing from stack to stack, stopping at the `push-images` gate until
//! `formwork continue`.
//!
//! moto server gives stacks created by executing a change set no Outputs, so on stock moto no
//! output could flow from one stack to the next. The apply test runs its own moto server through
//! tools/bench/moto_apply.py: moto 5.2.5 with the stack's output map built after a change set is
//! executed, as CloudFormation does (and List<…> parameters shown comma-joined, as AWS shows them).
//!
//! moto cannot run some of what the templates hold, where AWS can. The test copy of the example
//! changes exactly these, and nothing else (see README.md of the pipeline for the measurements):
//! - network: `Fn::Cidr` is not implemented (a 500 on DescribeStacks): the four subnet blocks are
//!   written out as CloudFormation computes them for 10.80.0.0/16;
//! - database: moto's YAML loader splits `!GetAtt Database.Endpoint.Address` at every dot and
//!   fails on the attribute `Endpoint`: the outputs use the long form `Fn::GetAtt: [Database,
//!   Endpoint.Address]`;
//! - cognito: moto has no CloudFormation model of Cognito, so `!GetAtt UserPool.Arn` fails: the
//!   output is a stand-in ARN built with `!Sub`;
//! - alb, service: `LoadBalancerFullName` and `TargetGroupFullName` are not implemented (the
//!   output would be the unevaluated `Fn::GetAtt`, or every output of the stack vanishes): they
//!   are cut out of the ARN with `Fn::Split`/`Fn::Select`, which gives the same value on AWS;
//! - nlb: moto creates every load balancer of a template as an application load balancer and
//!   refuses its TCP listener: the listener speaks HTTP;
//! - api: API Gateway stages are not modelled (`${Stage}` in a `!Sub` stays literal): the
//!   outputs use the stage name parameter, the same value on AWS;
//! - waf: WAFv2 is not modelled, so `!GetAtt WebAcl.Arn` fails: a stand-in ARN built with `!Sub`.

use crate::common;

use std::collections::BTreeMap;

use common::aws::{moto_with_change_set_outputs, unique};
use common::sdk::formwork_on;
use common::stacks::{self, created_stacks, form_encode, planned_parameter, states};
use common::{Repo, Run, project_file};

const PIPELINE: &str = "pipelines/api-gateway-microservices";
const TEMPLATES: &str = "pipelines/api-gateway-microservices/templates";
const REGION: &str = "eu-west-1";
const PASSWORD: &str = "Moto-Only-Passw0rd-4-Postgres";

/// Every stack of the pipeline; production enables the optional `waf`, staging does not.
const STAGING_STACKS: [&str; 14] = [
    "alarms",
    "alb",
    "api",
    "cluster",
    "cognito",
    "database",
    "ecr-orders",
    "ecr-users",
    "network",
    "nlb",
    "security-groups",
    "service-orders",
    "service-users",
    "storage",
];

fn production_stacks() -> Vec<&'static str> {
    let mut all: Vec<&str> = STAGING_STACKS.to_vec();
    all.push("waf");
    all.sort();
    all
}

#[test]
fn both_environments_validate_and_an_offline_plan_lists_every_stack() {
    let r = Repo::bundled(
        &[
            PIPELINE,
            "environments/apigw-staging",
            "environments/apigw-production",
        ],
        "api-gateway-microservices",
    );

    let v = r.run(&["validate"]);
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(!v.stderr.contains("error"), "{}", v.stderr);

    // The order: network first, the services after the gate's ECR repositories, the WAF after the
    // API stage it protects.
    let g = r.run(&["graph", "--env", "apigw-production"]);
    assert_eq!(g.code, 0, "{}", g.all());
    let pos = |k: &str| {
        g.stdout
            .find(&format!("  {k} "))
            .unwrap_or_else(|| panic!("{k} in {}", g.stdout))
    };
    assert!(pos("network") < pos("security-groups"), "{}", g.stdout);
    assert!(
        pos("alb") < pos("nlb") && pos("nlb") < pos("api"),
        "{}",
        g.stdout
    );
    assert!(pos("ecr-orders") < pos("service-orders"), "{}", g.stdout);
    assert!(pos("database") < pos("service-users"), "{}", g.stdout);
    assert!(
        pos("api") < pos("waf") && pos("api") < pos("alarms"),
        "{}",
        g.stdout
    );

    let plan = r.run(&["plan", "--offline", "--base", "HEAD~1", "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let plan = plan.json();
    let mut seen = BTreeMap::new();
    for env in plan["environments"].as_array().unwrap() {
        let name = env["name"].as_str().unwrap().to_string();
        for u in env["units"].as_array().unwrap() {
            assert_eq!(
                u["stack_name"].as_str().unwrap(),
                format!("{name}-{}", u["stack"].as_str().unwrap())
            );
        }
        let stacks = created_stacks(&plan, &name);
        seen.insert(name, stacks);
    }
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        ["apigw-production", "apigw-staging"],
        "{plan:#}"
    );
    assert_eq!(seen["apigw-staging"], STAGING_STACKS, "{plan:#}");
    assert_eq!(seen["apigw-production"], production_stacks(), "{plan:#}");

    // Sizes differ per environment, and each service instance gets its own image and path rule.
    let param = |env: &str, stack: &str, name: &str| planned_parameter(&plan, env, stack, name);
    assert_eq!(
        param("apigw-staging", "database", "InstanceClass"),
        "db.t4g.micro"
    );
    assert_eq!(
        param("apigw-production", "database", "InstanceClass"),
        "db.m6g.large"
    );
    assert_eq!(param("apigw-production", "database", "MultiAZ"), "true");
    assert_eq!(param("apigw-staging", "service-orders", "MaxCount"), "2");
    assert_eq!(
        param("apigw-production", "service-orders", "MaxCount"),
        "12"
    );
    assert_eq!(
        param("apigw-production", "service-users", "RulePriority"),
        "20"
    );
    assert_eq!(
        param("apigw-production", "service-users", "ServiceName"),
        "users"
    );
}

// ------------------------------------------------------------------ moto

/// The example with one environment named `env`, a copy of production in moto's account, and
/// the templates changed as the module doc says.
fn production_on_moto(env: &str) -> Repo {
    let r = Repo::empty_first();
    r.copy_from_project(PIPELINE);
    let prod = project_file("environments/apigw-production/environment.yml");
    let mut file = String::new();
    for line in prod.lines() {
        if line.starts_with("role_arn:") {
            continue;
        }
        if line.starts_with("account:") {
            // moto answers this account for any credentials.
            file.push_str("account: \"123456789012\"\n");
            continue;
        }
        file.push_str(line);
        file.push('\n');
    }
    assert!(file.contains(&format!("region: {REGION}\n")), "{file}");
    r.write(&format!("environments/{env}/environment.yml"), &file);

    let t = |name: &str| format!("{TEMPLATES}/{name}");
    let blocks = [
        "10.80.0.0/20",
        "10.80.16.0/20",
        "10.80.32.0/20",
        "10.80.48.0/20",
    ];
    assert!(file.contains("VpcCidr: 10.80.0.0/16"), "{file}");
    for (i, block) in blocks.iter().enumerate() {
        r.edit(
            &t("network.yml"),
            &format!("!Select [{i}, !Cidr [!Ref VpcCidr, 4, 12]]"),
            block,
        );
    }
    for attr in ["Address", "Port"] {
        r.edit(
            &t("database.yml"),
            &format!("!GetAtt Database.Endpoint.{attr}"),
            &format!("{{'Fn::GetAtt': [Database, Endpoint.{attr}]}}"),
        );
    }
    r.edit(
        &t("cognito.yml"),
        "!GetAtt UserPool.Arn",
        "!Sub 'arn:${AWS::Partition}:cognito-idp:${AWS::Region}:${AWS::AccountId}:userpool/${AWS::Region}_standin'",
    );
    r.edit(
        &t("alb.yml"),
        "!GetAtt LoadBalancer.LoadBalancerFullName",
        "!Select [1, !Split ['loadbalancer/', !Ref LoadBalancer]]",
    );
    r.edit(
        &t("service.yml"),
        "!GetAtt TargetGroup.TargetGroupFullName",
        "!Select [5, !Split [':', !Ref TargetGroup]]",
    );
    r.edit(
        &t("nlb.yml"),
        "      Protocol: TCP\n      DefaultActions:",
        "      Protocol: HTTP\n      DefaultActions:",
    );
    r.edit(&t("api.yml"), "/stages/${Stage}'", "/stages/${StageName}'");
    r.edit(
        &t("api.yml"),
        ".amazonaws.com/${Stage}'",
        ".amazonaws.com/${StageName}'",
    );
    for _ in 0..2 {
        r.edit(
            &t("waf.yml"),
            "!GetAtt WebAcl.Arn",
            "!Sub 'arn:${AWS::Partition}:wafv2:${AWS::Region}:${AWS::AccountId}:regional/webacl/${EnvironmentName}-api/standin'",
        );
    }
    r.commit("api-gateway-microservices for moto");
    r
}

fn run(r: &Repo, args: &[&str]) -> Run {
    formwork_on(moto_with_change_set_outputs(), r.path(), args)
}

/// Outputs and parameters of a deployed stack.
struct Deployed {
    outputs: BTreeMap<String, String>,
    parameters: BTreeMap<String, String>,
}

fn deployed(stack: &str) -> Deployed {
    let s = stacks::describe(moto_with_change_set_outputs(), REGION, stack);
    Deployed {
        outputs: stacks::outputs_of(&s),
        parameters: stacks::parameters_of(&s),
    }
}

#[test]
fn production_applies_on_moto_with_outputs_flowing_from_stack_to_stack() {
    let env = unique("apigw");
    let r = production_on_moto(&env);
    stacks::put_secure_string(
        moto_with_change_set_outputs(),
        REGION,
        &format!("/apigw/{env}/db-master-password"),
        PASSWORD,
    );

    let plan = run(&r, &["plan", "--env", &env]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    assert!(
        !plan.all().contains(PASSWORD),
        "the NoEcho password is masked"
    );

    // First apply: everything but the services, which wait for their images.
    let first = run(&r, &["apply", "--env", &env, "--output", "json"]);
    assert_eq!(first.code, 3, "stops at the gate: {}", first.all());
    let report = first.json();
    let s = states(&report);
    assert_eq!(
        s.keys().map(String::as_str).collect::<Vec<_>>(),
        production_stacks(),
        "{report:#}"
    );
    for (stack, state) in &s {
        let want = if stack.starts_with("service-") {
            "waiting"
        } else {
            "applied"
        };
        assert_eq!(state, want, "{stack}: {report:#}");
    }
    assert!(!first.all().contains(PASSWORD));

    let cont = run(&r, &["continue", "push-images", "--env", &env]);
    assert_eq!(cont.code, 0, "{}", cont.all());
    let second = run(&r, &["apply", "--env", &env, "--output", "json"]);
    assert_eq!(second.code, 0, "{}", second.all());
    let report = second.json();
    assert_eq!(report["run"]["status"], "succeeded", "{report:#}");
    assert!(
        states(&report).values().all(|s| s == "applied"),
        "{report:#}"
    );

    // Outputs became the parameters of the stacks after them.
    let stack = |key: &str| deployed(&format!("{env}-{key}"));
    let network = stack("network");
    let sgs = stack("security-groups");
    let database = stack("database");
    let alb = stack("alb");
    let nlb = stack("nlb");
    let api = stack("api");
    let out = |d: &Deployed, k: &str| -> String {
        let v = d.outputs.get(k).cloned().unwrap_or_default();
        assert!(
            !v.is_empty() && !v.contains("Fn::") && !v.contains("${"),
            "output {k} = {v:?}"
        );
        v
    };
    assert!(out(&network, "VpcId").starts_with("vpc-"));
    assert_eq!(sgs.parameters["VpcId"], out(&network, "VpcId"));
    assert_eq!(sgs.parameters["VpcCidr"], "10.80.0.0/16");
    assert_eq!(
        stack("database").parameters["PrivateSubnetIds"],
        out(&network, "PrivateSubnetIds")
    );
    assert_eq!(nlb.parameters["AlbArn"], out(&alb, "LoadBalancerArn"));
    assert_eq!(api.parameters["NlbArn"], out(&nlb, "LoadBalancerArn"));
    assert_eq!(api.parameters["NlbDnsName"], out(&nlb, "DnsName"));
    assert_eq!(
        api.parameters["UserPoolArn"],
        out(&stack("cognito"), "UserPoolArn")
    );
    let stage_arn = out(&api, "StageArn");
    assert_eq!(
        stage_arn,
        format!(
            "arn:aws:apigateway:{REGION}::/restapis/{}/stages/v1",
            out(&api, "RestApiId")
        )
    );
    assert_eq!(stack("waf").parameters["StageArn"], stage_arn);
    let alarms = stack("alarms");
    assert_eq!(alarms.parameters["ApiName"], format!("{env}-api"));
    assert_eq!(
        alarms.parameters["AlbFullName"],
        out(&alb, "LoadBalancerFullName")
    );
    assert!(alarms.parameters["AlbFullName"].starts_with(&format!("app/{env}-alb/")));
    assert_eq!(
        alarms.parameters["DbInstanceId"],
        out(&database, "InstanceId")
    );
    for (service, tag, priority) in [("orders", "2.7.3", "10"), ("users", "1.13.2", "20")] {
        let svc = stack(&format!("service-{service}"));
        let ecr = stack(&format!("ecr-{service}"));
        assert_eq!(
            svc.parameters["Image"],
            format!("{}:{tag}", out(&ecr, "RepositoryUri"))
        );
        assert_eq!(
            out(&ecr, "RepositoryUri"),
            format!("123456789012.dkr.ecr.{REGION}.amazonaws.com/{env}/{service}")
        );
        assert_eq!(svc.parameters["RulePriority"], priority);
        assert_eq!(svc.parameters["ListenerArn"], out(&alb, "ListenerArn"));
        assert_eq!(svc.parameters["DatabaseHost"], out(&database, "Endpoint"));
        assert_eq!(svc.parameters["DatabasePort"], out(&database, "Port"));
        assert_eq!(
            svc.parameters["UploadsBucket"],
            out(&stack("storage"), "BucketName")
        );
        assert_eq!(out(&svc, "ServiceName"), service);
        assert!(out(&svc, "TargetGroupFullName").starts_with("targetgroup/"));
    }

    // The path rules the service stacks added are on the ALB's listener.
    // (A query request signed for the region, with a dummy signature: moto routes by the
    // credential scope and checks no signature.)
    let rules = moto_with_change_set_outputs().query_in(
        REGION,
        "elasticloadbalancing",
        &format!(
            "Action=DescribeRules&Version=2015-12-01&ListenerArn={}",
            form_encode(&out(&alb, "ListenerArn"))
        ),
    );
    assert_eq!(rules.status, 200, "{}", rules.body);
    for path in ["/orders/*", "/users/*"] {
        assert!(rules.body.contains(path), "{path}: {}", rules.body);
    }
}
