//! The bundled `ecs-services` pipeline (pipelines/ecs-services, environments/ecs-services-dev
//! and -prod): it validates, an offline plan from nothing lists every stack of both
//! environments, and it deploys on moto server with outputs flowing from stack to stack.
//!
//! moto runs every template of this pipeline unchanged (VPC with NAT gateway, ALB with its
//! listener, Fargate cluster, target groups, path rules, services). One gap of moto shapes the
//! apply test: a stack created by executing a change set gets no Outputs there (a known gap of moto 5.2), so a
//! chain of stacks cannot be applied by change sets alone. The stacks whose outputs other stacks
//! read (vpc, ecs-cluster, alb) are therefore created wave by wave with CreateStack, with exactly
//! the template, parameters and tags formwork plans for them — the parameters resolved by
//! formwork from the outputs of the stacks created before. `formwork apply` then finds them
//! unchanged and creates the two services by executing their change sets.

use crate::common;

use std::collections::BTreeMap;

use aws_sdk_cloudformation::types::Tag;
use common::aws::{moto, unique};
use common::sdk::formwork_on;
use common::stacks::{self, created_stacks, form_encode, graph, graph_keys};
use common::{Repo, Run, project_file};

const ENVIRONMENTS: [&str; 2] = ["ecs-services-dev", "ecs-services-prod"];
const REGION: &str = "us-east-1";

#[test]
fn validates_and_an_offline_plan_from_nothing_lists_every_stack() {
    let r = Repo::bundled(
        &[
            "pipelines/ecs-services",
            "environments/ecs-services-dev",
            "environments/ecs-services-prod",
        ],
        "ecs-services",
    );
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(
        v.stdout.contains("2 environments, 10 stacks"),
        "{}",
        v.all()
    );

    let plan = r.run(&["plan", "--offline", "--base", "HEAD~1", "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let plan = plan.json();
    let envs = plan["environments"].as_array().unwrap();
    assert_eq!(envs.len(), 2, "{plan:#}");
    for env in ENVIRONMENTS {
        let keys = created_stacks(&plan, env);
        assert_eq!(
            keys,
            [
                "alb",
                "ecs-cluster",
                "service-product",
                "service-user",
                "vpc"
            ]
        );
        assert_eq!(keys, graph_keys(&r, env));
    }
    // The services wait for the network, the load balancer and the cluster.
    let g = graph(&r, "ecs-services-prod");
    let waves = &g["waves"];
    assert_eq!(
        waves[0],
        serde_json::json!(["vpc", "ecs-cluster"]),
        "{waves}"
    );
    assert_eq!(waves[1], serde_json::json!(["alb"]), "{waves}");
    assert_eq!(
        waves[2],
        serde_json::json!(["service-product", "service-user"]),
        "{waves}"
    );
}

fn on_moto(r: &Repo, args: &[&str]) -> Run {
    formwork_on(moto(), r.path(), args)
}

/// The bundled pipeline with one environment named `env`: the dev environment's values, in
/// moto's account (moto answers 123456789012 for any credentials) and region, without a role.
fn on_moto_repo(env: &str) -> Repo {
    let r = Repo::empty_first();
    r.copy_from_project("pipelines/ecs-services");
    let dev = project_file("environments/ecs-services-dev/environment.yml");
    let mut text = String::new();
    for line in dev.lines() {
        if line.starts_with("role_arn:") {
            continue;
        } else if line.starts_with("account:") {
            text.push_str(&format!("account: \"{}\"\n", moto().account()));
        } else if line.starts_with("region:") {
            text.push_str(&format!("region: {REGION}\n"));
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    r.write(&format!("environments/{env}/environment.yml"), &text);
    r.commit("ecs-services on moto");
    r
}

/// The tags formwork puts on a stack of the test environment: the pipeline's, the stack's, the
/// environment's (environments/ecs-services-dev), and which pipeline and environment it is.
fn tags(env: &str, key: &str) -> Vec<Tag> {
    let layer = match key {
        "vpc" | "alb" => "network",
        "ecs-cluster" => "compute",
        _ => "services",
    };
    [
        ("app", "ecs-services"),
        ("layer", layer),
        ("team", "commerce"),
        ("environment", "dev"),
        ("cost-centre", "engineering"),
        ("formwork:pipeline", "ecs-services"),
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
        |key| {
            format!(
                "pipelines/ecs-services/templates/{}.yml",
                if key.starts_with("service-") {
                    "service"
                } else {
                    key
                }
            )
        },
        |key| tags(env, key),
    );
}

fn outputs(stack: &str) -> BTreeMap<String, String> {
    stacks::outputs(moto(), REGION, stack)
}

fn parameters(stack: &str) -> BTreeMap<String, String> {
    stacks::parameters(moto(), REGION, stack)
}

#[test]
fn applies_on_moto_with_outputs_flowing_from_stack_to_stack() {
    let env = unique("ecs");
    let r = on_moto_repo(&env);
    let stack = |key: &str| format!("{env}-{key}");

    create_as_planned(&r, &env, &["vpc", "ecs-cluster"]);
    create_as_planned(&r, &env, &["alb"]);
    // The load balancer took the VPC stack's outputs.
    let vpc = outputs(&stack("vpc"));
    let alb_params = parameters(&stack("alb"));
    assert_eq!(alb_params["VpcId"], vpc["VpcId"]);
    assert_eq!(alb_params["VpcCidr"], "10.50.0.0/16");

    // The plan reviewed and applied: the two services. (The stacks above are left out of it:
    // stock moto's DescribeStacks prints a List<…> parameter as a Python list,
    // `['subnet-…', 'subnet-…']`, so formwork would see alb's PublicSubnetIds as changed.)
    let plan = on_moto(
        &r,
        &[
            "plan",
            "--env",
            &env,
            "--stack",
            "service-product",
            "--stack",
            "service-user",
            "--output",
            "json",
        ],
    );
    assert_eq!(plan.code, 2, "{}", plan.all());
    let plan = plan.json();
    for unit in plan["environments"][0]["units"].as_array().unwrap() {
        assert_eq!(unit["action"], "create", "{unit:#}");
        // Every input is read from a deployed stack's outputs.
        for input in unit["inputs"].as_array().unwrap() {
            assert!(
                input["current"].as_str().is_some_and(|v| !v.is_empty()),
                "{unit:#}"
            );
        }
    }

    let applied = on_moto(&r, &["apply", "--env", &env, "--output", "json"]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    let report = applied.json();
    assert_eq!(report["run"]["status"], "succeeded", "{report:#}");
    for key in ["service-product", "service-user"] {
        let s = stacks::describe(moto(), REGION, &stack(key));
        assert_eq!(
            s.stack_status().map(|s| s.as_str()),
            Some("CREATE_COMPLETE"),
            "{key}"
        );
        // Outputs of three stacks met in each service's parameters.
        let p = parameters(&stack(key));
        let alb = outputs(&stack("alb"));
        let cluster = outputs(&stack("ecs-cluster"));
        assert_eq!(p["ListenerArn"], alb["HttpListenerArn"]);
        assert_eq!(
            p["LoadBalancerSecurityGroupId"],
            alb["LoadBalancerSecurityGroupId"]
        );
        assert_eq!(p["ClusterName"], cluster["ClusterName"]);
        assert_eq!(p["ExecutionRoleArn"], cluster["ExecutionRoleArn"]);
        assert_eq!(p["VpcId"], vpc["VpcId"]);
    }

    // The listener of the alb stack now routes both paths, each to its service's target group.
    let listener = outputs(&stack("alb"))["HttpListenerArn"].clone();
    let rules = moto().query(
        "elasticloadbalancing",
        &format!(
            "Action=DescribeRules&Version=2015-12-01&ListenerArn={}",
            form_encode(&listener)
        ),
    );
    assert_eq!(rules.status, 200, "{}", rules.body);
    for (service, priority) in [("product", "10"), ("user", "20")] {
        // Created by a change set: no outputs on moto, but its resources are there.
        let tg = stacks::physical_id(
            moto(),
            REGION,
            &stack(&format!("service-{service}")),
            "TargetGroup",
        );
        let body = &rules.body;
        let path = format!("<member>/{service}-svc*</member>");
        let at = body
            .find(&path)
            .unwrap_or_else(|| panic!("no rule for {path}: {body}"));
        // The rule's priority comes before its conditions, its action after them.
        let before = &body[..at];
        let priority_at = before.rfind("<Priority>").unwrap() + "<Priority>".len();
        assert!(
            before[priority_at..].starts_with(&format!("{priority}</Priority>")),
            "{body}"
        );
        let after = &body[at..];
        let tg_at = after.find("<TargetGroupArn>").unwrap() + "<TargetGroupArn>".len();
        assert!(
            after[tg_at..].starts_with(&format!("{tg}</TargetGroupArn>")),
            "{body}"
        );
    }
}
