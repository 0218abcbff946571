//! `formwork plan` against moto server: new stacks, updates, stacks with nothing to do, outputs
//! feeding dependants, SSM and SecureString inputs, the artifact-bucket path, throttling, re-runs
//! and clean-up. Each test uses its own environment name, so stack names, SSM paths and buckets
//! do not collide on the shared server.
//!
//! moto differs from CloudFormation in ways these tests respect (measured on moto 5.2.5): stacks created
//! by executing a change set get no outputs (stacks a test needs deployed are created with
//! CreateStack), and DescribeChangeSet gives no Replacement or Details (formwork predicts them;
//! the shapes CloudFormation itself sends are tested in `plan_recorded.rs`).

use crate::common;

use std::collections::BTreeMap;

use aws_sdk_cloudformation::types::{Capability, Parameter, Tag};
use common::aws::{moto, unique};
use common::fake_aws::FakeAws;
use common::sdk::{self, block, formwork_on};
use common::stacks::{self, unit};
use common::{Repo, Run};
use serde_json::Value;

const REGION: &str = "us-east-1";

const PIPELINE: &str = r#"pipeline: svc
vars:
  Size:
    default: small
defaults:
  parameters:
    Env: ${env.name}
stacks:
  net:
    template: templates/net.yml
  app:
    template: templates/app.yml
    parameters:
      NetName: ${net.Name}
      Secret: ${ssm:/svc/${env.name}/secret}
      Size: ${var.Size}
"#;

const NET: &str = r#"Parameters:
  Env:
    Type: String
Resources:
  Net:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /svc/${Env}/net
      Type: String
      Value: net-v1
Outputs:
  Name:
    Value: !Ref Net
"#;

const APP: &str = r#"Parameters:
  Env:
    Type: String
  NetName:
    Type: String
  Secret:
    Type: String
    NoEcho: true
  Size:
    Type: String
    AllowedValues: [small, large]
Resources:
  Config:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /svc/${Env}/app
      Type: String
      Value: !Sub "${NetName}:${Size}"
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: ecs-tasks.amazonaws.com}
            Action: sts:AssumeRole
Outputs:
  ConfigName:
    Value: !Ref Config
"#;

/// A config repository with the `svc` pipeline and one environment named `env`, committed.
fn svc(env: &str, extra_env: &str) -> Repo {
    Repo::one_pipeline(
        "svc",
        PIPELINE,
        &[("net.yml", NET), ("app.yml", APP)],
        env,
        REGION,
        extra_env,
    )
}

fn put_secret(env: &str, value: &str) {
    stacks::put_secure_string(moto(), REGION, &format!("/svc/{env}/secret"), value);
}

/// Deploys a stack the way apply would leave it: template, parameters and formwork's tags.
fn deploy(env: &str, stack: &str, template: &str, params: &[(&str, &str)]) {
    let cfn = sdk::cfn(moto(), REGION);
    block(async {
        let mut req = cfn
            .create_stack()
            .stack_name(format!("{env}-{stack}"))
            .template_body(template)
            .capabilities(Capability::CapabilityIam)
            .tags(Tag::builder().key("formwork:pipeline").value("svc").build())
            .tags(
                Tag::builder()
                    .key("formwork:environment")
                    .value(env)
                    .build(),
            );
        for (k, v) in params {
            req = req.parameters(
                Parameter::builder()
                    .parameter_key(*k)
                    .parameter_value(*v)
                    .build(),
            );
        }
        req.send().await.unwrap();
    });
}

fn plan(r: &Repo, args: &[&str]) -> (Run, Value, BTreeMap<String, usize>) {
    stacks::plan_with_calls(moto(), r, args)
}

fn net_name(env: &str) -> String {
    format!("/svc/{env}/net")
}

#[test]
fn new_stacks_get_create_change_sets_and_their_dependants_wait() {
    let env = unique("new");
    put_secret(&env, "never-print-me-1");
    let r = svc(&env, "");
    let (run, p, _) = plan(&r, &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    let net = unit(&p, "net");
    assert_eq!(net["action"], "create");
    assert_eq!(net["change_set"]["change_set_type"], "CREATE");
    assert_eq!(net["resources"][0]["logical_id"], "Net");
    assert_eq!(net["resources"][0]["action"], "add");
    let app = unit(&p, "app");
    assert_eq!(app["action"], "pending");
    assert_eq!(app["inputs"][0]["reference"], "${net.Name}");
    assert_eq!(app["inputs"][0]["state"], "pending");
    // The change set is there, waiting for review.
    let cfn = sdk::cfn(moto(), REGION);
    let id = net["change_set"]["id"].as_str().unwrap().to_string();
    let status = block(async {
        cfn.describe_change_set()
            .change_set_name(&id)
            .send()
            .await
            .unwrap()
            .status()
            .unwrap()
            .as_str()
            .to_string()
    });
    assert_eq!(status, "CREATE_COMPLETE");
    // The plan is recorded for apply, with the change set and the config hash.
    let shown = formwork_on(
        moto(),
        r.path(),
        &[
            "status",
            "--plan",
            p["id"].as_str().unwrap(),
            "--output",
            "json",
        ],
    );
    assert_eq!(shown.code, 0, "{}", shown.all());
    let rec: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(rec, p);
    assert_eq!(unit(&rec, "net")["config_hash"].as_str().unwrap().len(), 64);
    assert_no_secret_in_store(&r, "never-print-me-1");
}

/// The state store (a SQLite file) holds no trace of the secret.
fn assert_no_secret_in_store(r: &Repo, secret: &str) {
    let mut found = false;
    for entry in std::fs::read_dir(r.file(".formwork")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        found |= bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
    }
    assert!(!found, "the secret is in the state store");
}

#[test]
fn outputs_feed_dependants_and_secrets_never_show() {
    let env = unique("out");
    let secret = "correct-horse-battery-staple-42";
    put_secret(&env, secret);
    deploy(&env, "net", NET, &[("Env", &env)]);
    let r = svc(&env, "");
    let (run, p, calls) = plan(&r, &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert_eq!(unit(&p, "net")["action"], "no_change");
    let app = unit(&p, "app");
    assert_eq!(app["action"], "create", "{app:#}");
    let params: BTreeMap<&str, &Value> = app["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["name"].as_str().unwrap(), x))
        .collect();
    assert_eq!(params["NetName"]["after"], net_name(&env));
    assert_eq!(params["Secret"]["after"], "****");
    assert_eq!(params["Secret"]["secret"], true);
    // What went to CloudFormation is the real value, resolved from the output and from SSM.
    let cfn = sdk::cfn(moto(), REGION);
    let id = app["change_set"]["id"].as_str().unwrap().to_string();
    let sent: BTreeMap<String, String> = block(async {
        cfn.describe_change_set()
            .change_set_name(&id)
            .send()
            .await
            .unwrap()
            .parameters()
            .iter()
            .map(|x| {
                (
                    x.parameter_key().unwrap().to_string(),
                    x.parameter_value().unwrap().to_string(),
                )
            })
            .collect()
    });
    assert_eq!(sent["NetName"], net_name(&env));
    assert_eq!(sent["Size"], "small");
    // SSM was read once, ten names a call at most.
    assert_eq!(calls.get("SSM.GetParameters"), Some(&1));
    // The secret appears in no output: text, Markdown, JSON, logs at the most verbose level, the
    // plan record.
    for output in ["text", "markdown", "json"] {
        let run = formwork_on(moto(), r.path(), &["-vvv", "plan", "--output", output]);
        assert!(!run.all().contains(secret), "{output}: {}", run.all());
        assert!(run.all().contains("****"), "{output}");
    }
    assert_no_secret_in_store(&r, secret);
}

#[test]
fn a_stack_with_nothing_to_do_costs_two_calls_and_no_change_set() {
    let env = unique("same");
    put_secret(&env, "s3cret-value-3");
    deploy(&env, "net", NET, &[("Env", &env)]);
    let r = svc(&env, "");
    let (run, p, calls) = plan(&r, &["--env", &env]);
    assert_eq!(run.code, 2, "{}", run.all()); // app is new
    assert_eq!(unit(&p, "net")["action"], "no_change");
    assert!(unit(&p, "net")["change_set"].is_null());
    // net: DescribeStacks and GetTemplate; app: DescribeStacks (new), CreateChangeSet,
    // DescribeChangeSet. Plus one STS and one SSM call for the environment.
    assert_eq!(calls["CloudFormation.DescribeStacks"], 2, "{calls:?}");
    assert_eq!(calls["CloudFormation.GetTemplate"], 1, "{calls:?}");
    assert_eq!(calls["CloudFormation.CreateChangeSet"], 1, "{calls:?}");
    assert_eq!(calls["STS.GetCallerIdentity"], 1, "{calls:?}");
}

#[test]
fn an_update_shows_changes_and_predicts_replacement_where_moto_is_silent() {
    let env = unique("upd");
    put_secret(&env, "s3cret-value-4");
    deploy(&env, "net", NET, &[("Env", &env)]);
    let r = svc(&env, "");
    // The parameter's Name is create-only (replacement); its Value is not.
    r.write(
        "pipelines/svc/templates/net.yml",
        &NET.replace("/svc/${Env}/net", "/svc/${Env}/network")
            .replace("net-v1", "net-v2"),
    );
    r.commit("rename and revalue");
    let (run, p, _) = plan(&r, &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    let net = unit(&p, "net");
    assert_eq!(net["action"], "update", "{net:#}");
    assert_eq!(net["change_set"]["change_set_type"], "UPDATE");
    let res = &net["resources"][0];
    assert_eq!(res["logical_id"], "Net");
    assert_eq!(res["action"], "modify");
    assert_eq!(res["replacement"], "true");
    assert_eq!(res["replacement_source"], "predicted");
    let names: Vec<&str> = res["details"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert!(
        names.contains(&"Name") && names.contains(&"Value"),
        "{res:#}"
    );
    let diff = net["template_diff"].as_str().unwrap();
    assert!(
        diff.contains("-      Value: net-v1") && diff.contains("+      Value: net-v2"),
        "{diff}"
    );
    // app takes net's output, and net changes in this plan: known after apply.
    let app = unit(&p, "app");
    let input = &app["inputs"][0];
    assert_eq!(input["state"], "known_after_apply");
    assert_eq!(input["current"], net_name(&env));
}

#[test]
fn large_templates_go_through_the_artifact_bucket() {
    let env = unique("big");
    let bucket = unique("artifacts");
    put_secret(&env, "s3cret-value-5");
    let s3 = sdk::s3(moto(), REGION);
    block(async {
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
    });
    let padding: String = (0..1300)
        .map(|i| format!("# padding {i:05} keeps this template over the inline limit\n"))
        .collect();
    let r = svc(&env, &format!("artifact_bucket: {bucket}\n"));
    r.write(
        "pipelines/svc/templates/net.yml",
        &format!("{NET}{padding}"),
    );
    r.commit("big");
    let (run, p, calls) = plan(&r, &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert_eq!(unit(&p, "net")["action"], "create");
    assert_eq!(calls["S3.PutObject"], 1);
    let keys = sdk::bucket_keys(moto(), REGION, &bucket);
    assert_eq!(keys.len(), 1);
    assert!(
        keys[0].starts_with("formwork/templates/") && keys[0].ends_with(".template"),
        "{keys:?}"
    );
}

#[test]
fn throttled_calls_are_retried() {
    let env = unique("thr");
    put_secret(&env, "s3cret-value-6");
    let r = svc(&env, "");
    let fake = FakeAws::start();
    fake.forward_to(&moto().url).throttle_first(4);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_formwork"));
    moto().configure(&mut cmd);
    let out = cmd
        .args(["plan", "--output", "json", "--report-calls"])
        .current_dir(r.path())
        .env("AWS_ENDPOINT_URL", &fake.url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(fake.throttled(), 4);
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(unit(&p, "net")["action"], "create");
}

#[test]
fn re_runs_keep_their_change_set_name_and_older_plans_are_cleaned_up() {
    let env = unique("rerun");
    put_secret(&env, "s3cret-value-7");
    let r = svc(&env, "");
    let (_, first, _) = plan(&r, &["--origin", "pr-7"]);
    let (_, again, _) = plan(&r, &["--origin", "pr-7"]);
    // The same commit and config give the same change set name. (moto accepts a second change
    // set of the same name where CloudFormation answers AlreadyExistsException; that formwork
    // then uses its change set again is tested on LocalStack.)
    let name = unit(&first, "net")["change_set"]["name"].clone();
    assert_eq!(unit(&again, "net")["change_set"]["name"], name);
    // A new commit of the same pull request: its change set replaces the old one.
    r.write(
        "pipelines/svc/templates/net.yml",
        &NET.replace("net-v1", "net-v9"),
    );
    r.commit("next push");
    let (_, next, _) = plan(&r, &["--origin", "pr-7"]);
    let new_name = unit(&next, "net")["change_set"]["name"].clone();
    assert_ne!(new_name, name);
    let cfn = sdk::cfn(moto(), REGION);
    let stack = format!("{env}-net");
    let names: Vec<String> = block(async {
        cfn.list_change_sets()
            .stack_name(&stack)
            .send()
            .await
            .unwrap()
            .summaries()
            .iter()
            .filter(|s| s.stack_name() == Some(stack.as_str()))
            .filter_map(|s| s.change_set_name().map(str::to_string))
            .collect()
    });
    assert_eq!(names, [new_name.as_str().unwrap().to_string()]);
}

#[test]
fn a_missing_ssm_parameter_fails_that_stack_only() {
    let env = unique("nossm");
    deploy(&env, "net", NET, &[("Env", &env)]);
    let r = svc(&env, "");
    let (run, p, _) = plan(&r, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_eq!(unit(&p, "net")["action"], "no_change");
    let app = unit(&p, "app");
    assert_eq!(app["action"], "failed");
    assert_eq!(
        app["message"],
        format!(
            "SSM parameter /svc/{env}/secret does not exist in account 123456789012 region us-east-1"
        )
    );
}

#[test]
fn an_offline_plan_needs_no_aws() {
    let env = unique("off");
    let r = svc(&env, "");
    r.write(
        "pipelines/svc/templates/net.yml",
        &NET.replace("net-v1", "net-v2"),
    );
    r.commit("value");
    // No endpoint at all: any AWS call would fail.
    let run = common::formwork(
        r.path(),
        &[
            "plan",
            "--offline",
            "--base",
            "HEAD~1",
            "--head",
            "HEAD",
            "--output",
            "json",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.all());
    let p: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(p["offline"], true);
    let net = unit(&p, "net");
    assert_eq!(net["action"], "update");
    assert_eq!(net["resources"][0]["details"][0]["name"], "Value");
    assert_eq!(net["resources"][0]["replacement"], "false");
    // The output app takes is the parameter's name, which an update of its value keeps.
    assert_eq!(
        p["environments"][0]["units"].as_array().unwrap().len(),
        1,
        "{p:#}"
    );

    // A new name replaces the parameter: app's input is known only after apply.
    r.write(
        "pipelines/svc/templates/net.yml",
        &NET.replace("net-v1", "net-v2")
            .replace("/svc/${Env}/net", "/svc/${Env}/network"),
    );
    r.commit("name");
    let run = common::formwork(
        r.path(),
        &["plan", "--offline", "--base", "HEAD~1", "--output", "json"],
    );
    assert_eq!(run.code, 2, "{}", run.all());
    let p: Value = serde_json::from_str(&run.stdout).unwrap();
    let app = unit(&p, "app");
    assert_eq!(app["inputs"][0]["state"], "known_after_apply", "{app:#}");
    assert_eq!(app["inputs"][0]["because"], "Net is replaced", "{app:#}");
    assert_eq!(app["reasons"][0]["because"], "Net is replaced", "{app:#}");
}

#[test]
fn ssm_parameters_are_read_ten_names_a_call() {
    let env = unique("many");
    let names: Vec<String> = (1..=12).map(|i| format!("P{i}")).collect();
    let ssm = sdk::ssm(moto(), REGION);
    block(async {
        for (i, n) in names.iter().enumerate() {
            ssm.put_parameter()
                .name(format!("/many/{env}/{n}"))
                .value(format!("value-{i}"))
                .r#type(if i % 2 == 0 {
                    aws_sdk_ssm::types::ParameterType::SecureString
                } else {
                    aws_sdk_ssm::types::ParameterType::String
                })
                .send()
                .await
                .unwrap();
        }
    });
    let r = Repo::new();
    let params: String = names
        .iter()
        .map(|n| format!("      {n}: ${{ssm:/many/${{env.name}}/{n}}}\n"))
        .collect();
    r.write(
        "pipelines/many/pipeline.yml",
        &format!(
            "pipeline: many\nstacks:\n  cfg:\n    template: cfg.yml\n    parameters:\n{params}"
        ),
    );
    let decls: String = names
        .iter()
        .map(|n| format!("  {n}:\n    Type: String\n"))
        .collect();
    r.write(
        "pipelines/many/cfg.yml",
        &format!("Parameters:\n{decls}Resources:\n  Holder:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: !Sub /many/${{P2}}/holder\n      Type: String\n      Value: !Ref P2\n"),
    );
    r.write(
        &format!("environments/{env}/environment.yml"),
        &format!("pipeline: many\naccount: \"123456789012\"\nregion: {REGION}\n"),
    );
    r.commit("many");
    let (run, p, calls) = plan(&r, &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert_eq!(calls["SSM.GetParameters"], 2, "{calls:?}");
    let cfg = unit(&p, "cfg");
    let shown: BTreeMap<&str, &Value> = cfg["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["name"].as_str().unwrap(), &x["after"]))
        .collect();
    assert_eq!(shown["P2"], "value-1"); // a String
    assert_eq!(shown["P1"], "****"); // a SecureString
    assert!(!run.all().contains("value-0"), "{}", run.all());
}

/// Every fifth call throttled (here CloudFormation's and STS's, with the `Throttling` error they
/// send): a chain of twelve stacks, each waiting for the one before, is planned and applied with
/// no failed operation, the SDK's retries with backoff and jitter taking the throttling.
#[test]
fn a_chain_plans_and_applies_with_a_fifth_of_its_calls_throttled() {
    let ep = common::aws::moto_with_change_set_outputs();
    let env = unique("thr20");
    let template = "Parameters:\n  Prev:\n    Type: String\nResources:\n  P:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Value: !Sub '${Prev}+1'\nOutputs:\n  Value:\n    Value: !Sub '${Prev}+1'\n";
    let mut pipeline = String::from(
        "pipeline: chain\nstacks:\n  s0:\n    template: templates/p.yml\n    parameters:\n      Prev: start\n",
    );
    for i in 1..12 {
        pipeline.push_str(&format!(
            "  s{i}:\n    template: templates/p.yml\n    parameters:\n      Prev: ${{s{}.Value}}\n",
            i - 1
        ));
    }
    let r = Repo::one_pipeline("chain", &pipeline, &[("p.yml", template)], &env, REGION, "");
    let fake = FakeAws::start();
    fake.forward_to(&ep.url).throttle_every(5);
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_formwork"));
        ep.configure(&mut cmd);
        let out = cmd
            .args(args)
            .current_dir(r.path())
            .env("AWS_ENDPOINT_URL", &fake.url)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        Run::from(out)
    };
    let plan = run(&["plan", "--env", &env]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let applied = run(&["apply", "--env", &env, "--output", "json"]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    let states = stacks::states(&applied.json());
    assert_eq!(states.len(), 12, "{states:?}");
    assert!(states.values().all(|s| s == "applied"), "{states:?}");
    let requests = fake.requests().len();
    eprintln!("{} of {requests} calls throttled", fake.throttled());
    assert!(
        fake.throttled() * 5 >= requests - 4 && fake.throttled() > 20,
        "{} of {requests} throttled",
        fake.throttled()
    );
    // The last stack got the whole chain's value.
    let again = run(&["plan", "--env", &env]);
    assert_eq!(again.code, 0, "{}", again.all());
}
