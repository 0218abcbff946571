//! Conditions in plans: a resource whose `Condition` is known not to hold for an environment's
//! parameters is not counted as created (offline, and live where formwork's own reading stands
//! in for a change set); one whose condition depends on what is known only at deploy time is
//! shown with the condition it waits on.

use crate::common;

use common::Repo;
use common::aws::{moto, unique};
use common::sdk::formwork_on;
use serde_json::Value;

const QUEUE: &str = r#"Resources:
  Queue:
    Type: AWS::SQS::Queue
Outputs:
  Arn:
    Value: !GetAtt Queue.Arn
"#;

const APP: &str = r#"Parameters:
  Env:
    Type: String
  Replicas:
    Type: Number
    Default: 1
  Upstream:
    Type: String
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  Replicated: !And [!Condition IsProd, !Not [!Equals [!Ref Replicas, 1]]]
  HasUpstream: !Not [!Equals [!Ref Upstream, '']]
Resources:
  Topic:
    Type: AWS::SNS::Topic
  Alarms:
    Type: AWS::SNS::Topic
    Condition: IsProd
  Replica:
    Type: AWS::SNS::Topic
    Condition: Replicated
  Forward:
    Type: AWS::SNS::Topic
    Condition: HasUpstream
"#;

const PIPELINE: &str = r#"pipeline: cond
defaults:
  parameters:
    Env: ${env.name}
stacks:
  queue:
    template: templates/queue.yml
  app:
    template: templates/app.yml
    parameters:
      Upstream: ${queue.Arn}
"#;

fn repo(env: &str, region: &str) -> Repo {
    let r = Repo::one_pipeline(
        "cond",
        PIPELINE,
        &[("queue.yml", QUEUE), ("app.yml", APP)],
        env,
        region,
        "",
    );
    r.write(
        "environments/prod/environment.yml",
        "pipeline: cond\naccount: \"123456789012\"\nregion: eu-west-1\nstacks:\n  app:\n    parameters:\n      Replicas: 3\n",
    );
    r.commit("prod");
    r
}

/// The resources planned for `stack` of `env`: (logical id, action, condition).
fn resources(plan: &Value, env: &str, stack: &str) -> Vec<(String, String, Option<String>)> {
    let e = plan["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == env)
        .unwrap_or_else(|| panic!("{env}: {plan:#}"));
    let u = e["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["stack"] == stack)
        .unwrap_or_else(|| panic!("{stack}: {plan:#}"));
    u["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["logical_id"].as_str().unwrap().to_string(),
                r["action"].as_str().unwrap().to_string(),
                r["condition"].as_str().map(String::from),
            )
        })
        .collect()
}

fn row(id: &str, action: &str, condition: Option<&str>) -> (String, String, Option<String>) {
    (id.into(), action.into(), condition.map(String::from))
}

/// Each environment counts the resources its parameters create; `Forward` depends on an output
/// not known before deploying.
#[test]
fn offline_plans_count_only_resources_whose_conditions_hold() {
    let r = repo("staging", "eu-west-1");
    let run = r.run(&["plan", "--offline", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let p = run.json();
    assert_eq!(
        resources(&p, "staging", "app"),
        [
            row("Forward", "add", Some("HasUpstream")),
            row("Topic", "add", None),
        ]
    );
    assert_eq!(
        resources(&p, "prod", "app"),
        [
            row("Alarms", "add", None),
            row("Forward", "add", Some("HasUpstream")),
            row("Replica", "add", None),
            row("Topic", "add", None),
        ]
    );
    let text = r.run(&["plan", "--offline", "--env", "staging"]);
    assert!(
        text.stdout.contains("only if HasUpstream holds"),
        "{}",
        text.stdout
    );
    let md = r.run(&[
        "plan",
        "--offline",
        "--env",
        "staging",
        "--output",
        "markdown",
    ]);
    assert!(
        md.stdout.contains("only if `HasUpstream` holds"),
        "{}",
        md.stdout
    );

    // Turning replicas off in prod removes exactly the replica.
    r.edit(
        "environments/prod/environment.yml",
        "Replicas: 3",
        "Replicas: 1",
    );
    r.commit("one replica");
    let run = r.run(&[
        "plan",
        "--offline",
        "--base",
        "HEAD~1",
        "--env",
        "prod",
        "--output",
        "json",
    ]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert_eq!(
        resources(&run.json(), "prod", "app"),
        [row("Replica", "remove", None)]
    );
}

/// Live, a stack waiting for its upstream is shown with formwork's own reading: the condition
/// is evaluated with the environment's parameters there too.
#[test]
fn a_pending_stack_counts_only_resources_whose_conditions_hold() {
    let env = unique("moto-cond");
    let r = repo(&env, "us-east-1");
    let run = formwork_on(
        moto(),
        r.path(),
        &["plan", "--env", &env, "--output", "json"],
    );
    assert_eq!(run.code, 2, "{}", run.all());
    let p = run.json();
    assert_eq!(
        resources(&p, &env, "app"),
        [
            row("Forward", "add", Some("HasUpstream")),
            row("Topic", "add", None),
        ],
        "{p:#}"
    );
}

/// An output that exists only under a condition, taken in an environment where the condition is
/// false, is an error at the reference; where it holds, nothing is said beyond the pipeline's
/// warning.
#[test]
fn an_output_whose_condition_is_false_in_an_environment_cannot_be_taken_there() {
    let queue = "Parameters:\n  Env:\n    Type: String\nConditions:\n  IsProd: !Equals [!Ref Env, prod]\nResources:\n  Queue:\n    Type: AWS::SQS::Queue\nOutputs:\n  Arn:\n    Condition: IsProd\n    Value: !GetAtt Queue.Arn\n";
    let app = "Parameters:\n  Upstream:\n    Type: String\nResources:\n  Topic:\n    Type: AWS::SNS::Topic\n";
    let pipeline = "pipeline: cond\nstacks:\n  queue:\n    template: templates/queue.yml\n    parameters:\n      Env: ${env.name}\n  app:\n    template: templates/app.yml\n    parameters:\n      Upstream: ${queue.Arn}\n";
    let r = Repo::one_pipeline(
        "cond",
        pipeline,
        &[("queue.yml", queue), ("app.yml", app)],
        "staging",
        "eu-west-1",
        "",
    );
    r.write(
        "environments/prod/environment.yml",
        "pipeline: cond\naccount: \"123456789012\"\nregion: eu-west-1\n",
    );
    r.commit("prod");
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let all = run.all();
    assert!(
        all.contains("error: stack `app` takes `${queue.Arn}`, but output `Arn` of stack `queue` does not exist in environment `staging`: its condition `IsProd` is false there"),
        "{all}"
    );
    assert!(all.contains("pipelines/cond/pipeline.yml:10:17"), "{all}");
    assert!(!all.contains("in environment `prod`"), "{all}");
}
