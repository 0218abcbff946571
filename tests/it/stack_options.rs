//! Stack options (`options:`): a service role, notification topics, rollback triggers and what
//! a failed creation leaves travel with the change set; termination protection and the stack
//! policy are compared and set by formwork itself; a stand-in policy covers an update; an
//! update of options alone goes without a change set. Options are written at four levels and
//! the later win field by field.
//!
//! Runs on moto through [`OptionsKeeping`], which keeps the options moto drops (see its
//! module); stack policies are moto's own.

use crate::common;

use common::Repo;
use common::aws::{moto, unique};
use common::cfn_options::OptionsKeeping;
use common::fake_aws::{decoded, form_value};

const REGION: &str = "us-east-1";

const TEMPLATE: &str = "\
Parameters:
  Size:
    Type: String
Resources:
  Setting:
    Type: AWS::SSM::Parameter
    Properties:
      Type: String
      Value: !Ref Size
";

/// A pipeline whose one stack has every option, some from the pipeline's defaults, and an
/// environment that overrides two of them.
fn repo(env: &str) -> Repo {
    let pipeline = "\
pipeline: opts
defaults:
  options:
    service_role: arn:aws:iam::${env.account}:role/cfn-deploy
    on_failure: delete
stacks:
  db:
    template: templates/db.yml
    parameters:
      Size: small
    options:
      termination_protection: true
      stack_policy:
        Statement:
          - Effect: Deny
            Action: Update:Replace
            Principal: '*'
            Resource: LogicalResourceId/Setting
          - Effect: Allow
            Action: Update:*
            Principal: '*'
            Resource: '*'
      stack_policy_during_update:
        Statement:
          - Effect: Allow
            Action: Update:*
            Principal: '*'
            Resource: '*'
      rollback:
        alarms:
          - arn:aws:cloudwatch:${env.region}:${env.account}:alarm:errors
        monitoring_minutes: 5
";
    let env_extra = "\
options:
  notification_arns: [arn:aws:sns:us-east-1:123456789012:stack-events]
stacks:
  db:
    options:
      rollback:
        alarms: [arn:aws:cloudwatch:us-east-1:123456789012:alarm:errors]
        monitoring_minutes: 10
";
    Repo::one_pipeline(
        "opts",
        pipeline,
        &[("db.yml", TEMPLATE)],
        env,
        REGION,
        env_extra,
    )
}

/// The request bodies of `action` received from the `from`-th request on.
fn bodies(layer: &OptionsKeeping, action: &str, from: usize) -> Vec<String> {
    layer
        .fake
        .requests()
        .into_iter()
        .skip(from)
        .filter(|r| r.action.as_deref() == Some(action))
        .map(|r| r.body)
        .collect()
}

fn option_names(unit: &serde_json::Value) -> Vec<String> {
    unit["options"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| o["option"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn stack_options_are_planned_applied_and_kept() {
    let env = unique("opts");
    let stack = format!("{env}-db");
    let r = repo(&env);
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 0, "{}", v.all());
    let layer = OptionsKeeping::start(&moto().url, REGION);

    // A new stack: every option set is in the plan, and those of the change set are sent.
    let plan = layer
        .fake
        .formwork(r.path(), &["plan", "--env", &env, "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let json = plan.json();
    let unit = &json["environments"][0]["units"][0];
    assert_eq!(unit["action"], "create");
    assert_eq!(
        option_names(unit),
        [
            "service_role",
            "termination_protection",
            "stack_policy",
            "notification_arns",
            "rollback",
            "on_failure"
        ]
    );
    let create = bodies(&layer, "CreateChangeSet", 0);
    let body = create.last().expect("a change set was made");
    let value = |k: &str| form_value(body, k).map(|v| decoded(&v));
    assert_eq!(
        value("RoleARN").as_deref(),
        Some("arn:aws:iam::123456789012:role/cfn-deploy"),
        "the pipeline's default, with the account filled in"
    );
    assert_eq!(
        value("NotificationARNs.member.1").as_deref(),
        Some("arn:aws:sns:us-east-1:123456789012:stack-events"),
        "the environment's"
    );
    assert_eq!(
        value("RollbackConfiguration.MonitoringTimeInMinutes").as_deref(),
        Some("10"),
        "the environment's setting for the stack wins"
    );
    assert_eq!(
        value("RollbackConfiguration.RollbackTriggers.member.1.Arn").as_deref(),
        Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:errors")
    );
    assert_eq!(value("OnStackFailure").as_deref(), Some("DELETE"));
    // (One plan only before the stack exists: moto makes a second stack for a second change
    // set that creates it.)

    // Apply: the change set, then protection and policy set by formwork.
    let from = layer.fake.requests().len();
    let applied = layer.fake.formwork(r.path(), &["apply", "--env", &env]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    let actions = layer.actions_since(from);
    let executed = actions
        .iter()
        .position(|a| a == "ExecuteChangeSet")
        .unwrap();
    let protected = actions
        .iter()
        .position(|a| a == "UpdateTerminationProtection")
        .unwrap_or_else(|| panic!("{actions:?}"));
    let policy = actions.iter().position(|a| a == "SetStackPolicy").unwrap();
    assert!(executed < protected && executed < policy, "{actions:?}");
    assert!(
        !actions[..executed].contains(&"SetStackPolicy".to_string()),
        "no stand-in policy for a creation: {actions:?}"
    );
    assert!(layer.kept(&stack).protected);
    let set = bodies(&layer, "SetStackPolicy", from);
    assert!(
        decoded(&form_value(&set[0], "StackPolicyBody").unwrap())
            .contains("LogicalResourceId/Setting"),
        "{set:?}"
    );

    // Nothing left to do: by the record, and with every stack read again.
    for args in [
        vec!["plan", "--env", &env],
        vec!["plan", "--env", &env, "--refresh"],
    ] {
        let again = layer.fake.formwork(r.path(), &args);
        assert_eq!(again.code, 0, "{args:?}: {}", again.all());
    }

    // An update that changes a parameter and turns protection off: the stand-in policy covers
    // the change set's execution, the stack policy is set back after it.
    r.edit("pipelines/opts/pipeline.yml", "Size: small", "Size: large");
    r.edit(
        &format!("environments/{env}/environment.yml"),
        "  db:\n    options:\n",
        "  db:\n    options:\n      termination_protection: false\n",
    );
    r.commit("bigger, unprotected");
    let plan = layer
        .fake
        .formwork(r.path(), &["plan", "--env", &env, "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let unit = plan.json()["environments"][0]["units"][0].clone();
    assert_eq!(unit["action"], "update");
    assert_eq!(option_names(&unit), ["termination_protection"], "{unit:#}");
    assert_eq!(unit["options"][0]["before"], "true");
    assert_eq!(unit["options"][0]["after"], "false");
    let text = layer.fake.formwork(r.path(), &["plan", "--env", &env]);
    assert!(
        text.stdout.contains("stack options:")
            && text.stdout.contains(
                "termination_protection  true → false  (set by formwork after the change set)"
            ),
        "{}",
        text.stdout
    );
    let from = layer.fake.requests().len();
    let applied = layer.fake.formwork(r.path(), &["apply", "--env", &env]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    let actions = layer.actions_since(from);
    let executed = actions
        .iter()
        .position(|a| a == "ExecuteChangeSet")
        .unwrap();
    let policies: Vec<usize> = actions
        .iter()
        .enumerate()
        .filter(|(_, a)| *a == "SetStackPolicy")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(policies.len(), 2, "{actions:?}");
    assert!(
        policies[0] < executed && executed < policies[1],
        "{actions:?}"
    );
    let set = bodies(&layer, "SetStackPolicy", from);
    assert!(
        !decoded(&set[0]).contains("Deny"),
        "the stand-in: {}",
        set[0]
    );
    assert!(decoded(&set[1]).contains("Deny"), "set back: {}", set[1]);
    assert!(!layer.kept(&stack).protected);

    // Options alone: no change set, an update that keeps template and parameter values.
    r.edit(
        &format!("environments/{env}/environment.yml"),
        "stack-events]",
        "stack-events, arn:aws:sns:us-east-1:123456789012:audit]",
    );
    r.commit("a second topic");
    let plan = layer
        .fake
        .formwork(r.path(), &["plan", "--env", &env, "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let unit = plan.json()["environments"][0]["units"][0].clone();
    assert_eq!(unit["action"], "update");
    assert!(unit["change_set"].is_null(), "{unit:#}");
    assert_eq!(option_names(&unit), ["notification_arns"]);
    let text = layer.fake.formwork(r.path(), &["plan", "--env", &env]);
    assert!(
        text.stdout.contains("stack options only"),
        "{}",
        text.stdout
    );
    let from = layer.fake.requests().len();
    let applied = layer.fake.formwork(r.path(), &["apply", "--env", &env]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    let update = bodies(&layer, "UpdateStack", from);
    assert_eq!(update.len(), 1, "{:?}", layer.actions_since(from));
    assert_eq!(
        form_value(&update[0], "UsePreviousTemplate").as_deref(),
        Some("true")
    );
    assert_eq!(
        form_value(&update[0], "Parameters.member.1.UsePreviousValue").as_deref(),
        Some("true")
    );
    assert!(bodies(&layer, "ExecuteChangeSet", from).is_empty());
    assert_eq!(
        layer.kept(&stack).topics.unwrap(),
        [
            "arn:aws:sns:us-east-1:123456789012:audit",
            "arn:aws:sns:us-east-1:123456789012:stack-events"
        ]
    );
    let again = layer
        .fake
        .formwork(r.path(), &["plan", "--env", &env, "--refresh"]);
    assert_eq!(again.code, 0, "{}", again.all());

    // A protected stack that leaves the config is not planned for deletion: CloudFormation
    // would refuse it.
    r.edit(
        &format!("environments/{env}/environment.yml"),
        "      termination_protection: false\n",
        "      termination_protection: true\n",
    );
    r.commit("protected again");
    let applied = layer
        .fake
        .formwork(r.path(), &["apply", "--env", &env, "--replan"]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert!(layer.kept(&stack).protected);
    r.edit(
        &format!("environments/{env}/environment.yml"),
        "  db:\n    options:\n",
        "  db:\n    enabled: false\n    options:\n",
    );
    r.commit("db leaves");
    let plan = layer.fake.formwork(
        r.path(),
        &[
            "plan", "--env", &env, "--base", "HEAD~1", "--output", "json",
        ],
    );
    let unit = plan.json()["environments"][0]["units"][0].clone();
    assert_eq!(unit["action"], "blocked", "{}", plan.all());
    assert!(
        unit["message"]
            .as_str()
            .unwrap()
            .contains("has termination protection"),
        "{unit:#}"
    );
}

#[test]
fn bad_options_are_reported_where_they_are_written() {
    let pipeline = "\
pipeline: opts
stacks:
  db:
    template: templates/db.yml
    parameters:
      Size: small
    options:
      service_role: arn:aws:iam::123456789012:user/deployer
      stack_policy_during_update:
        Statement:
          - {Effect: Allow, Action: 'Update:*', Principal: '*', Resource: '*'}
      rollback:
        alarms: [not-an-arn]
        monitoring_minutes: 200
      notification_arns: [a, b, c, d, e, f]
  cache:
    template: templates/db.yml
    parameters:
      Size: small
    options:
      stack_policy_during_update: {Statement: {Effect: Allow, Action: 'Update:*', Principal: '*', Resource: '*'}}
";
    let env_extra = "\
stacks:
  db:
    options:
      stack_policy: {Statements: []}
      on_failure: explode
";
    let r = Repo::one_pipeline(
        "opts",
        pipeline,
        &[("db.yml", TEMPLATE)],
        "dev",
        REGION,
        env_extra,
    );
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 1, "{}", v.all());
    let out = v.all();
    common::assert_reported(
        &out,
        &[
            (
                "`arn:aws:iam::123456789012:user/deployer` is not the ARN of an IAM role",
                "pipelines/opts/pipeline.yml:8:21",
            ),
            (
                "`not-an-arn` is not the ARN of a CloudWatch alarm",
                "pipelines/opts/pipeline.yml:13:18",
            ),
            (
                "monitoring_minutes is 200; CloudFormation allows 0 to 180",
                "pipelines/opts/pipeline.yml:14:29",
            ),
            (
                "6 notification topics given; CloudFormation takes at most 5",
                "pipelines/opts/pipeline.yml:15:42",
            ),
            (
                "stack `cache` has `stack_policy_during_update` but no `stack_policy`",
                "pipelines/opts/pipeline.yml:21:35",
            ),
            (
                "unknown value `explode`",
                "environments/dev/environment.yml:8:19",
            ),
            (
                "`stack_policy` is not a stack policy: it has no `Statement`",
                "environments/dev/environment.yml:7:21",
            ),
        ],
    );
}
