//! The pipeline features real deployments need: stacks deployed several times (`instances`,
//! `count`), alternatives (`choice`), and gates — checked by `formwork validate`, written out in
//! `formwork graph`, and a gate stopping `formwork apply` on moto server until
//! `formwork continue`.

use crate::common;

use common::aws::{moto, unique};
use common::sdk::formwork_on;
use common::{Repo, Run};
use serde_json::Value;

const PARAM_TEMPLATE: &str = r#"Parameters:
  Name:
    Type: String
  Value:
    Type: String
    Default: v1
Resources:
  P:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Ref Name
      Type: String
      Value: !Ref Value
Outputs:
  Name:
    Value: !Ref P
"#;

fn repo(pipeline: &str, env_name: &str, env_extra: &str) -> Repo {
    Repo::one_pipeline(
        "sys",
        pipeline,
        &[("param.yml", PARAM_TEMPLATE)],
        env_name,
        "us-east-1",
        env_extra,
    )
}

fn graph(r: &Repo, env: &str) -> Value {
    let run = r.run(&["graph", "--env", env, "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    run.json()
}

fn stack_keys(g: &Value) -> Vec<String> {
    let mut keys: Vec<String> = g["stacks"]
        .as_array()
        .unwrap_or_else(|| panic!("{g:#}"))
        .iter()
        .map(|s| s["stack"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys
}

const INSTANCES: &str = r#"pipeline: sys
stacks:
  redis:
    template: templates/param.yml
    parameters:
      Name: /sys/${env.name}/redis-${instance}
    instances:
      general:
        parameters:
          Value: general
      cache:
        enabled: false
  replica:
    template: templates/param.yml
    count: 3
    parameters:
      Name: /sys/${env.name}/replica-${instance}
      Value: ${redis-general.Name}
"#;

#[test]
fn instances_and_counts_become_stacks_of_their_own() {
    let r = repo(
        INSTANCES,
        "prod",
        "stacks:\n  redis-cache:\n    enabled: true\n  replica-3:\n    enabled: false\n",
    );
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 0, "{}", v.all());
    let g = graph(&r, "prod");
    assert_eq!(
        stack_keys(&g),
        ["redis-cache", "redis-general", "replica-1", "replica-2"]
    );
    // The replicas read the general instance's output: they come after it.
    let g_text = r.run(&["graph", "--env", "prod"]).stdout;
    let pos = |k: &str| g_text.find(k).unwrap_or_else(|| panic!("{k} in {g_text}"));
    assert!(pos("redis-general") < pos("replica-1"), "{g_text}");
    // `${instance}` is filled in: parameters differ per instance, and an instance's own
    // parameters win. (An offline plan from the empty first commit lists every stack.)
    let plan = r.run(&["plan", "--offline", "--base", "HEAD~1", "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let plan = plan.json();
    let param = |stack: &str, name: &str| -> String {
        let u = plan["environments"][0]["units"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["stack"] == stack)
            .unwrap_or_else(|| panic!("{stack}: {plan:#}"));
        u["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["after"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    assert_eq!(param("redis-cache", "Name"), "/sys/prod/redis-cache");
    assert_eq!(param("redis-general", "Value"), "general");
    assert_eq!(param("replica-2", "Name"), "/sys/prod/replica-2");
}

#[test]
fn mistakes_in_instances_name_the_line() {
    let bad = INSTANCES.replace(
        "    count: 3\n",
        "    count: 3\n    instances:\n      x: {}\n",
    );
    let r = repo(&bad, "prod", "");
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 1);
    assert!(
        v.stderr.contains("has both `instances` and `count`"),
        "{}",
        v.stderr
    );
    assert!(
        v.stderr.contains("pipelines/sys/pipeline.yml:"),
        "{}",
        v.stderr
    );

    // A reference to an instance the environment switches off.
    let r = repo(
        INSTANCES,
        "prod",
        "stacks:\n  redis-general:\n    enabled: false\n",
    );
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 1, "{}", v.all());
    assert!(
        v.stderr.contains("redis-general") && v.stderr.contains("disabled"),
        "{}",
        v.stderr
    );

    // An override of the stack's own key, not an instance's: suggests the instances.
    let r = repo(INSTANCES, "prod", "stacks:\n  redis:\n    enabled: false\n");
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 1);
    assert!(
        v.stderr.contains("has no stack `redis`") && v.stderr.contains("redis-general"),
        "{}",
        v.stderr
    );
}

const CHOICE: &str = r#"pipeline: sys
stacks:
  is-service:
    template: templates/param.yml
    choice: identity-server
    parameters:
      Name: /sys/${env.name}/is
  is-proxy:
    template: templates/param.yml
    choice: identity-server
    enabled: false
    parameters:
      Name: /sys/${env.name}/is-proxy
"#;

#[test]
fn a_choice_takes_exactly_one_stack() {
    let r = repo(CHOICE, "main-cluster", "");
    assert_eq!(r.run(&["validate"]).code, 0);
    assert_eq!(stack_keys(&graph(&r, "main-cluster")), ["is-service"]);

    let r = repo(
        CHOICE,
        "secondary",
        "stacks:\n  is-proxy:\n    enabled: true\n",
    );
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 1);
    assert!(
        v.stderr
            .contains("enables 2 stacks of choice `identity-server` (is-service, is-proxy)"),
        "{}",
        v.stderr
    );
    assert!(
        v.stderr
            .contains("environments/secondary/environment.yml:1:"),
        "{}",
        v.stderr
    );

    let r = repo(
        CHOICE,
        "none",
        "stacks:\n  is-service:\n    enabled: false\n",
    );
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 1);
    assert!(
        v.stderr
            .contains("enables none of the stacks of choice `identity-server`"),
        "{}",
        v.stderr
    );
}

const GATED: &str = r#"pipeline: sys
stacks:
  bucket:
    template: templates/param.yml
    parameters:
      Name: /sys/${env.name}/bucket
  service:
    template: templates/param.yml
    parameters:
      Name: /sys/${env.name}/service
gates:
  upload-config:
    message: upload config.yml to the routing bucket
    after: [bucket]
    before: [service]
"#;

#[test]
fn gates_are_checked_and_take_their_place_in_the_order() {
    let r = repo(
        &GATED.replace("before: [service]", "before: [servce]"),
        "prod",
        "",
    );
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 1);
    assert!(
        v.stderr.contains("gate `upload-config` names `servce`")
            && v.stderr.contains("did you mean `service`?"),
        "{}",
        v.stderr
    );
    let r = repo(GATED, "prod", "");
    assert_eq!(r.run(&["validate"]).code, 0);
    let g = r.run(&["graph", "--env", "prod"]).stdout;
    assert!(
        g.find("bucket").unwrap() < g.find("service").unwrap(),
        "{g}"
    );
}

fn on_moto(r: &Repo, args: &[&str]) -> Run {
    formwork_on(moto(), r.path(), args)
}

#[test]
fn apply_stops_at_a_gate_and_goes_on_after_continue() {
    let env = unique("gate");
    let r = repo(GATED, &env, "");
    assert_eq!(on_moto(&r, &["plan", "--env", &env]).code, 2);

    let first = on_moto(&r, &["apply", "--env", &env, "--output", "json"]);
    assert_eq!(first.code, 3, "stopped at the gate: {}", first.all());
    let report = first.json();
    assert_eq!(report["run"]["status"], "waiting");
    let units = report["units"].as_array().unwrap();
    let state = |k: &str| {
        units
            .iter()
            .find(|u| u["stack"] == k)
            .unwrap_or_else(|| panic!("{k}: {report:#}"))
            .clone()
    };
    assert_eq!(state("bucket")["state"], "applied");
    assert_eq!(state("service")["state"], "waiting");
    let msg = state("service")["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("upload config.yml to the routing bucket")
            && msg.contains(&format!("formwork continue upload-config --env {env}")),
        "{msg}"
    );
    // Nothing is deployed yet.
    let status = on_moto(&r, &["status", "--env", &env, "--output", "json"]).json();
    assert!(
        status["environments"][0]["deployed"].is_null(),
        "{status:#}"
    );

    // The wrong gate name: refused, with the right one suggested.
    let wrong = on_moto(&r, &["continue", "upload-conf", "--env", &env]);
    assert_eq!(wrong.code, 1);
    assert!(
        wrong.stderr.contains("did you mean `upload-config`?"),
        "{}",
        wrong.stderr
    );

    let cont = on_moto(&r, &["continue", "upload-config", "--env", &env]);
    assert_eq!(cont.code, 0, "{}", cont.all());
    let second = on_moto(&r, &["apply", "--env", &env, "--output", "json"]);
    assert_eq!(second.code, 0, "{}", second.all());
    let report = second.json();
    assert_eq!(report["run"]["status"], "succeeded");
    let units = report["units"].as_array().unwrap();
    let bucket = units.iter().find(|u| u["stack"] == "bucket").unwrap();
    assert!(
        bucket["message"]
            .as_str()
            .unwrap_or_default()
            .contains("applied by run"),
        "not applied twice: {report:#}"
    );
    let service = units.iter().find(|u| u["stack"] == "service").unwrap();
    assert_eq!(service["state"], "applied");
    let status = on_moto(&r, &["status", "--env", &env, "--output", "json"]).json();
    assert_eq!(
        status["environments"][0]["deployed"]["commit"],
        r.head_commit().as_str(),
        "{status:#}"
    );
}

#[test]
fn outputs_of_stacks_outside_the_environment_are_read_at_plan_time() {
    let env = unique("ext");
    let shared = format!("{env}-shared-network");
    // A stack deployed by something else (here: CreateStack), with an output.
    let cfn = common::sdk::cfn(moto(), "us-east-1");
    common::sdk::block(async {
        cfn.create_stack()
            .stack_name(&shared)
            .template_body(PARAM_TEMPLATE)
            .parameters(
                aws_sdk_cloudformation::types::Parameter::builder()
                    .parameter_key("Name")
                    .parameter_value(format!("/shared/{env}/vpc"))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    let pipeline = format!(
        "pipeline: sys\nstacks:\n  app:\n    template: templates/param.yml\n    parameters:\n      Name: /sys/${{env.name}}/app\n      Value: ${{external:{shared}.Name}}\n"
    );
    let r = repo(&pipeline, &env, "");
    assert_eq!(r.run(&["validate"]).code, 0);
    let run = on_moto(&r, &["plan", "--env", &env, "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let plan = run.json();
    let unit = &plan["environments"][0]["units"][0];
    let value = unit["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Value")
        .unwrap()["after"]
        .clone();
    assert_eq!(value, format!("/shared/{env}/vpc").as_str(), "{unit:#}");

    // The name may be made of the environment's facts and variables.
    let composed = pipeline
        .replace(&shared, "${env.name}-shared-${var.Net}")
        .replace(
            "pipeline: sys\n",
            "pipeline: sys\nvars:\n  Net:\n    default: network\n",
        );
    let r = repo(&composed, &env, "");
    assert_eq!(r.run(&["validate"]).code, 0);
    let run = on_moto(&r, &["plan", "--env", &env, "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stdout.contains(&format!("/shared/{env}/vpc")),
        "{}",
        run.stdout
    );
    // … and a variable it names must exist.
    let r = repo(&composed.replace("${var.Net}", "${var.Nett}"), &env, "");
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 1, "{}", v.all());
    assert!(v.stderr.contains("Nett"), "{}", v.stderr);

    // A stack that does not exist: that stack's plan fails, saying so.
    let missing = pipeline.replace(&shared, &format!("{env}-nowhere"));
    let r = repo(&missing, &env, "");
    let run = on_moto(&r, &["plan", "--env", &env, "--output", "json"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout.contains("there is no stack") && run.stdout.contains("nowhere"),
        "{}",
        run.stdout
    );

    // Not in a stack name.
    let bad = pipeline.replace(
        "    parameters:",
        &format!("    stack_name: x-${{external:{shared}.Name}}\n    parameters:"),
    );
    let r = repo(&bad, &env, "");
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 1);
    assert!(
        v.stderr.contains("cannot use outputs of other stacks"),
        "{}",
        v.stderr
    );
}

#[test]
fn a_versioned_template_url_is_read_from_s3_for_the_diff_and_an_upgrade_is_one_line() {
    let env = unique("ver");
    let bucket = format!("{env}-templates");
    let s3 = common::sdk::s3(moto(), "us-east-1");
    let v2 = PARAM_TEMPLATE.replace("Default: v1", "Default: v2");
    common::sdk::block(async {
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        for (version, body) in [("1.0.0", PARAM_TEMPLATE.to_string()), ("1.1.0", v2.clone())] {
            s3.put_object()
                .bucket(&bucket)
                .key(format!("{version}/param.gen.template"))
                .body(body.into_bytes().into())
                .send()
                .await
                .unwrap();
        }
    });
    let pipeline = format!(
        "pipeline: sys\nvars:\n  version:\n    default: 1.0.0\ndefaults:\n  parameters:\n    Team: core\nstacks:\n  app:\n    template: https://{bucket}.s3.amazonaws.com/${{var.version}}/param.gen.template\n    parameters:\n      Name: /sys/${{env.name}}/app\n"
    );
    let r = repo(&pipeline, &env, "");
    let first = on_moto(&r, &["plan", "--env", &env, "--output", "json"]);
    assert_eq!(first.code, 2, "{}", first.all());
    // The template read from S3 declares no `Team`: the default is not passed to it.
    let names: Vec<String> = first.json()["environments"][0]["units"][0]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&"Name".to_string()) && !names.contains(&"Team".to_string()),
        "{names:?}"
    );
    let applied = on_moto(&r, &["apply", "--env", &env]);
    assert_eq!(applied.code, 0, "{}", applied.all());

    // The upgrade: one line in the environment.
    r.write(
        &format!("environments/{env}/environment.yml"),
        "pipeline: sys\naccount: \"123456789012\"\nregion: us-east-1\nvars:\n  version: 1.1.0\n",
    );
    r.commit("upgrade to 1.1.0");
    let affected = r.run(&["affected", "--base", "HEAD~1", "--output", "json"]);
    assert_eq!(affected.code, 2, "{}", affected.all());
    assert!(affected.stdout.contains("\"app\""), "{}", affected.stdout);
    let run = on_moto(
        &r,
        &[
            "plan", "--env", &env, "--base", "HEAD~1", "--output", "json",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.all());
    let plan = run.json();
    let unit = &plan["environments"][0]["units"][0];
    assert_eq!(unit["action"], "update", "{unit:#}");
    let diff = unit["template_diff"].as_str().unwrap_or_default();
    assert!(
        diff.contains("-    Default: v1") && diff.contains("+    Default: v2"),
        "the template read from S3 is diffed: {unit:#}"
    );
}

/// The stack names of an environment's graph, by stack key.
fn stack_names(g: &Value) -> Vec<(String, String)> {
    let mut names: Vec<(String, String)> = g["stacks"]
        .as_array()
        .unwrap_or_else(|| panic!("{g:#}"))
        .iter()
        .map(|s| {
            (
                s["stack"].as_str().unwrap().to_string(),
                s["stack_name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    names.sort();
    names
}

#[test]
fn a_pipeline_names_its_stacks_by_a_pattern_of_its_own() {
    let pipeline = r#"pipeline: sys
vars:
  Project:
    default: shop
defaults:
  stack_name: ${var.Project}-${env.name}-${stack}
stacks:
  vpc:
    template: templates/param.yml
    parameters:
      Name: /sys/${env.name}/vpc
  app:
    template: templates/param.yml
    parameters:
      Name: /sys/${env.name}/app
      Value: ${vpc.stack_name}
  db:
    template: templates/param.yml
    stack_name: legacy-database
    parameters:
      Name: /sys/${env.name}/db
  worker:
    template: templates/param.yml
    count: 2
    parameters:
      Name: /sys/${env.name}/worker-${instance}
"#;
    let r = repo(
        pipeline,
        "prod",
        "stacks:\n  app:\n    stack_name: prod-frontend\n",
    );
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 0, "{}", v.all());
    // The pattern names each stack that names none itself (instances by their key); a stack's
    // own name and the environment's win.
    assert_eq!(
        stack_names(&graph(&r, "prod")),
        [
            ("app".to_string(), "prod-frontend".to_string()),
            ("db".into(), "legacy-database".into()),
            ("vpc".into(), "shop-prod-vpc".into()),
            ("worker-1".into(), "shop-prod-worker-1".into()),
            ("worker-2".into(), "shop-prod-worker-2".into()),
        ]
    );
    // Another stack's name, through the pattern, is what an expression gives.
    let plan = r.run(&["plan", "--offline", "--base", "HEAD~1", "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    assert!(
        plan.stdout.contains("\"after\": \"shop-prod-vpc\""),
        "{}",
        plan.stdout
    );

    // A pattern without `${stack}`, or with a reference it may not use, is refused where it
    // is written.
    for (pattern, says, col) in [
        ("shop-${env.name}", "does not use `${stack}`", 15),
        ("shop-${stack}-${vpc.VpcId}", "vpc.VpcId", 15),
        (
            "${stack}_${env.name}",
            "not a valid CloudFormation stack name",
            15,
        ),
    ] {
        let r = repo(
            &pipeline.replace("${var.Project}-${env.name}-${stack}", pattern),
            "prod",
            "",
        );
        let v = r.run(&["validate"]);
        assert_eq!(v.code, 1, "{pattern}: {}", v.all());
        assert!(v.all().contains(says), "{pattern}: {}", v.all());
        assert!(
            v.all()
                .contains(&format!("pipelines/sys/pipeline.yml:6:{col}")),
            "{pattern}: {}",
            v.all()
        );
    }
}
