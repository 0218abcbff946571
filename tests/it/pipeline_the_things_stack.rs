//! The bundled example pipeline `the-things-stack` with its environments `tts-main` (main
//! cluster, own Identity Server) and `tts-secondary` (secondary cluster, the main cluster's
//! Identity Server read with `${external:…}`):
//!
//! - it validates, and an offline plan from an empty revision lists every stack of both;
//! - the main cluster is applied from nothing, the VPC template read from a versioned S3 URL,
//!   outputs flowing from stack to stack, stopping at both gates until `formwork continue`;
//!   then the secondary cluster, whose Identity Server address comes from the main cluster's
//!   deployed stack.
//!
//! The apply runs on LocalStack, not moto server. Measured with moto 5.2.5: a stack created by
//! executing a CREATE change set keeps the empty template moto gives it at CreateChangeSet
//! (`template={}`), so it never has Outputs; every stack of this pipeline after the first wave
//! takes outputs, so on moto the apply cannot get past wave one (CreateStack does give outputs,
//! and is how the moto column of the README's coverage table was measured). LocalStack gives
//! change-set stacks their outputs and deploys the types it lacks (RDS, ElastiCache, ECS,
//! ELBv2, Cloud Map) as placeholders.
//!
//! LocalStack, as the test harness starts it, cannot create some of what the bundled templates
//! hold, where AWS can. The test copy changes exactly these, and nothing else:
//! - the NAT gateway of `1-1-vpc` fails on its address's allocation id (`'unknown'`): the
//!   private subnets route through the internet gateway instead;
//! - SNS and CloudWatch are not among its services: `1-3-opsgenie` and `5-6-ecs-monitoring`
//!   keep their parameters and outputs, with an SSM parameter standing in for the topic and
//!   the alarms.

use crate::common;

use common::aws::{localstack, unique};
use common::sdk::{self, block, formwork_on};
use common::stacks::{self, created_stacks, planned_parameter};
use common::{Repo, Run, project_file};
use serde_json::Value;

const REGION: &str = "us-east-1";
const PIPELINE_DIR: &str = "pipelines/the-things-stack";
const VERSION: &str = "3.31.0";

const MAIN_STACKS: &[&str] = &[
    "1-1-vpc",
    "1-2-bastion",
    "1-3-opsgenie",
    "2-1-db-aurora-master",
    "2-2-db-aurora-replica-1",
    "2-2-db-aurora-replica-2",
    "2-3-db-redis-cache",
    "2-3-db-redis-general",
    "2-4a-is-s3",
    "2-4b-routing-s3",
    "2-5-db-timescale",
    "3-1-security-group-rules",
    "3-2-load-balancer-rules",
    "4-1-secrets",
    "4-2a-configuration",
    "4-2b-configuration-rate-limiting",
    "5-1-ecs-cluster",
    "5-2-ecs-ops",
    "5-3a-ecs-is-service",
    "5-4-ecs-services",
    "5-6-ecs-monitoring",
    "5-7-ecs-proxy",
];

const SECONDARY_STACKS: &[&str] = &[
    "1-1-vpc",
    "1-3-opsgenie",
    "2-1-db-aurora-master",
    "2-2-db-aurora-replica-1",
    "2-3-db-redis-general",
    "2-4b-routing-s3",
    "3-1-security-group-rules",
    "3-2-load-balancer-rules",
    "4-1-secrets",
    "4-2a-configuration",
    "4-2b-configuration-rate-limiting",
    "5-1-ecs-cluster",
    "5-2-ecs-ops",
    "5-3b-ecs-external-is-proxy",
    "5-4-ecs-services",
    "5-6-ecs-monitoring",
    "5-7-ecs-proxy",
];

fn keys(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn the_bundled_pipeline_validates_and_an_offline_plan_lists_every_stack() {
    let r = Repo::bundled(
        &[
            PIPELINE_DIR,
            "environments/tts-main",
            "environments/tts-secondary",
            "policies",
        ],
        "the-things-stack",
    );
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(
        v.stdout
            .contains("valid: 1 pipeline, 2 environments, 39 stacks"),
        "{}",
        v.all()
    );

    let plan = r.run(&["plan", "--offline", "--base", "HEAD~1", "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let plan = plan.json();
    assert_eq!(created_stacks(&plan, "tts-main"), keys(MAIN_STACKS));
    assert_eq!(
        created_stacks(&plan, "tts-secondary"),
        keys(SECONDARY_STACKS)
    );

    // Instances and counts are filled in, and the choice picks one Identity Server per cluster.
    let param = |env: &str, stack: &str, name: &str| planned_parameter(&plan, env, stack, name);
    assert_eq!(param("tts-main", "2-3-db-redis-cache", "Name"), "cache");
    assert_eq!(
        param("tts-main", "2-2-db-aurora-replica-2", "ReplicaIndex"),
        "2"
    );
    assert_eq!(param("tts-main", "5-4-ecs-services", "ImageTag"), VERSION);

    // The bundled policy rules (of the head: planned without a base, as the first commit has
    // none): the blob bucket serving public files is the one finding, and tts-main makes it a
    // warning; nothing blocks.
    let run = r.run(&["plan", "--offline", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let plan = run.json();
    let findings: Vec<(String, String, String, String)> = plan["environments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| {
            e["units"].as_array().unwrap().iter().flat_map(move |u| {
                u["policy"].as_array().into_iter().flatten().map(move |f| {
                    (
                        e["name"].as_str().unwrap().to_string(),
                        u["stack"].as_str().unwrap().to_string(),
                        f["rule"].as_str().unwrap().to_string(),
                        f["severity"].as_str().unwrap().to_string(),
                    )
                })
            })
        })
        .collect();
    assert!(!findings.is_empty());
    for f in &findings {
        assert_eq!(
            (f.0.as_str(), f.1.as_str(), f.2.as_str(), f.3.as_str()),
            ("tts-main", "2-4a-is-s3", "s3_public_access_blocked", "warn")
        );
    }
    assert_eq!(plan["policy"]["stacks_checked"], 39);
}

// ---------------------------------------------------------------------------- apply

/// An SSM parameter standing in for what LocalStack cannot create, recording the inputs.
fn stand_in(template: &str, value: &str, outputs: &str) -> String {
    let head = &template[..template
        .find("\nResources:")
        .unwrap_or_else(|| panic!("no Resources in {template}"))];
    format!(
        "{head}\nResources:\n  StandIn:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: !Sub /stand-in/${{AWS::StackName}}\n      Type: String\n      Value: !Sub '{value}'\nOutputs:\n{outputs}"
    )
}

/// The VPC template as published, without the NAT gateway (see the module doc).
fn vpc_template_for_localstack() -> String {
    let text = project_file(&format!("{PIPELINE_DIR}/templates/1-1-vpc.gen.template"));
    let kept: Vec<&str> = text
        .split("\n\n")
        .filter(|b| {
            let b = b.trim_start();
            !(b.starts_with("NatAddress:") || b.starts_with("NatGateway:"))
        })
        .collect();
    let text = kept.join("\n\n").replace(
        "NatGatewayId: !Ref NatGateway",
        "GatewayId: !Ref InternetGateway",
    );
    assert!(!text.contains("NatGateway"), "{text}");
    text
}

/// The environment file of the bundled `name`, renamed for this run: LocalStack's account, no
/// role to assume, its own template bucket, and `main` where it names the main cluster.
fn environment_for(name: &str, template_bucket: &str, main: &str) -> String {
    let mut out = String::new();
    for line in project_file(&format!("environments/{name}/environment.yml")).lines() {
        if line.starts_with("role_arn:") {
            continue;
        }
        if line.starts_with("account:") {
            out.push_str(&format!("account: \"{}\"\n", localstack().account()));
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.starts_with("  version:") {
            out.push_str(&format!("  TemplateBucket: {template_bucket}\n"));
        }
    }
    assert!(out.contains("TemplateBucket"), "{out}");
    out.replace("MainCluster: tts-main", &format!("MainCluster: {main}"))
}

struct World {
    repo: Repo,
    main: String,
    secondary: String,
}

fn world() -> World {
    let id = unique("tts");
    let (main, secondary) = (format!("{id}-main"), format!("{id}-2nd"));
    let bucket = format!("{id}-templates");
    let r = Repo::new();
    r.copy_from_project(PIPELINE_DIR);
    let t = format!("{PIPELINE_DIR}/templates");
    let opsgenie = r.read(&format!("{t}/1-3-opsgenie.yml"));
    r.write(
        &format!("{t}/1-3-opsgenie.yml"),
        &stand_in(
            &opsgenie,
            "${OpsgenieRegion} ${OpsgenieApiKey}",
            "  AlarmTopicArn:\n    Value: !Sub arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:${EnvironmentName}-alarms\n",
        ),
    );
    let monitoring = r.read(&format!("{t}/5-6-ecs-monitoring.yml"));
    r.write(
        &format!("{t}/5-6-ecs-monitoring.yml"),
        &stand_in(
            &monitoring,
            "${ClusterName}/${StackServiceName} ${LoadBalancerFullName} -> ${AlarmTopicArn} cpu>${CpuThresholdPercent} 5xx>${Http5xxPerMinute}",
            "  AlarmNames:\n    Value: !Sub ${EnvironmentName}-stack-cpu,${EnvironmentName}-stack-memory,${EnvironmentName}-alb-5xx\n",
        ),
    );
    r.write(
        &format!("environments/{main}/environment.yml"),
        &environment_for("tts-main", &bucket, &main),
    );
    r.write(
        &format!("environments/{secondary}/environment.yml"),
        &environment_for("tts-secondary", &bucket, &main),
    );
    r.commit("the-things-stack for LocalStack");

    // The published template, and the secrets the environments read from SSM.
    let s3 = sdk::s3(localstack(), REGION);
    block(async {
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        s3.put_object()
            .bucket(&bucket)
            .key(format!("the-things-stack/{VERSION}/1-1-vpc.gen.template"))
            .body(vpc_template_for_localstack().into_bytes().into())
            .send()
            .await
            .unwrap();
    });
    for env in [&main, &secondary] {
        for (name, value) in [
            ("database-password", "Aurora-Passw0rd-for-tests"),
            ("opsgenie-api-key", "0psgenie-api-key-for-tests"),
        ] {
            stacks::put_secure_string(
                localstack(),
                REGION,
                &format!("/the-things-stack/{env}/{name}"),
                value,
            );
        }
    }
    World {
        repo: r,
        main,
        secondary,
    }
}

fn run(r: &Repo, args: &[&str]) -> Run {
    formwork_on(localstack(), r.path(), args)
}

fn state<'a>(report: &'a Value, stack: &str) -> &'a Value {
    report["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["stack"] == stack)
        .unwrap_or_else(|| panic!("{stack}: {report:#}"))
}

fn output(stack: &str, key: &str) -> String {
    stacks::output(localstack(), REGION, stack, key)
}

fn parameter(stack: &str, key: &str) -> String {
    stacks::parameter(localstack(), REGION, stack, key)
}

/// Applies `env` until it waits at `gate`, checks what waits, passes the gate.
fn apply_to_gate(r: &Repo, env: &str, gate: &str, waiting: &[&str]) -> Value {
    let applied = run(r, &["apply", "--env", env, "--output", "json"]);
    assert_eq!(applied.code, 3, "stops at {gate}: {}", applied.all());
    let report = applied.json();
    assert_eq!(report["run"]["status"], "waiting", "{report:#}");
    for stack in waiting {
        assert_eq!(state(&report, stack)["state"], "waiting", "{report:#}");
    }
    let msg = state(&report, waiting[0])["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains(&format!("formwork continue {gate} --env {env}")),
        "{msg}"
    );
    let cont = run(r, &["continue", gate, "--env", env]);
    assert_eq!(cont.code, 0, "{}", cont.all());
    report
}

#[test]
fn the_main_cluster_applies_through_both_gates_then_the_secondary_reads_its_identity_server() {
    let w = world();
    let (r, main, secondary) = (&w.repo, w.main.as_str(), w.secondary.as_str());
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 0, "{}", v.all());

    // The main cluster from nothing. The VPC template is read from the versioned URL.
    let plan = run(r, &["plan", "--env", main, "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let plan = plan.json();
    let units = plan["environments"][0]["units"].as_array().unwrap();
    assert_eq!(units.len(), MAIN_STACKS.len(), "{plan:#}");
    let vpc = units.iter().find(|u| u["stack"] == "1-1-vpc").unwrap();
    assert_eq!(vpc["action"], "create", "{vpc:#}");
    assert!(
        vpc["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["resource_type"] == "AWS::EC2::VPC"),
        "the template at the URL was read: {vpc:#}"
    );
    // The secret is masked.
    let secrets = units.iter().find(|u| u["stack"] == "4-1-secrets").unwrap();
    assert!(
        !secrets.to_string().contains("Aurora-Passw0rd"),
        "{secrets:#}"
    );

    // The Identity Server waits for its database migration, and what needs it waits too.
    let first = apply_to_gate(
        r,
        main,
        "migrate-is-database",
        &["5-3a-ecs-is-service", "5-4-ecs-services", "5-7-ecs-proxy"],
    );
    for stack in [
        "1-1-vpc",
        "2-2-db-aurora-replica-2",
        "4-1-secrets",
        "5-2-ecs-ops",
    ] {
        assert_eq!(state(&first, stack)["state"], "applied", "{first:#}");
    }
    // The services wait for the configuration file in the routing bucket.
    apply_to_gate(
        r,
        main,
        "upload-config",
        &["5-4-ecs-services", "5-7-ecs-proxy"],
    );
    let last = run(r, &["apply", "--env", main, "--output", "json"]);
    assert_eq!(last.code, 0, "{}", last.all());
    let last = last.json();
    assert_eq!(last["run"]["status"], "succeeded", "{last:#}");
    for stack in ["5-4-ecs-services", "5-6-ecs-monitoring", "5-7-ecs-proxy"] {
        assert_eq!(state(&last, stack)["state"], "applied", "{last:#}");
    }

    // Outputs flowed from stack to stack.
    let stack = |k: &str| format!("{main}-{k}");
    assert_eq!(
        parameter(&stack("3-1-security-group-rules"), "VpcId"),
        output(&stack("1-1-vpc"), "VpcId")
    );
    assert_eq!(
        parameter(&stack("3-1-security-group-rules"), "BastionSecurityGroupId"),
        output(&stack("1-2-bastion"), "BastionSecurityGroupId")
    );
    assert_eq!(
        parameter(&stack("4-2a-configuration"), "RoutingBucketName"),
        format!("{main}-routing-{}", localstack().account())
    );
    assert_eq!(
        parameter(&stack("5-4-ecs-services"), "ConfigPath"),
        format!("/the-things-stack/{main}/config")
    );
    assert_eq!(
        parameter(&stack("5-2-ecs-ops"), "ExecutionRoleArn"),
        output(&stack("5-1-ecs-cluster"), "ExecutionRoleArn")
    );
    assert_eq!(
        output(&stack("5-3a-ecs-is-service"), "IdentityServerAddress"),
        "nam1.cloud.example.com"
    );

    // The secondary cluster: no Identity Server of its own; the main cluster's address comes
    // from its deployed stack. No migration gate (5-3a is not there), the upload gate is.
    let plan = run(r, &["plan", "--env", secondary]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    apply_to_gate(
        r,
        secondary,
        "upload-config",
        &["5-4-ecs-services", "5-7-ecs-proxy"],
    );
    let done = run(r, &["apply", "--env", secondary, "--output", "json"]);
    assert_eq!(done.code, 0, "{}", done.all());
    assert_eq!(done.json()["run"]["status"], "succeeded");
    let stack = |k: &str| format!("{secondary}-{k}");
    assert_eq!(
        parameter(
            &stack("5-3b-ecs-external-is-proxy"),
            "ExternalIdentityServerAddress"
        ),
        "nam1.cloud.example.com"
    );
    assert_eq!(
        parameter(&stack("4-2a-configuration"), "IdentityServerAddress"),
        "nam1.cloud.example.com"
    );
    assert_eq!(
        parameter(&stack("5-1-ecs-cluster"), "VpcId"),
        output(&stack("1-1-vpc"), "VpcId")
    );
    assert_ne!(
        output(&stack("1-1-vpc"), "VpcId"),
        output(&format!("{main}-1-1-vpc"), "VpcId")
    );
}
