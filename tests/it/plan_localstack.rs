//! `formwork plan` end to end on LocalStack, for what moto cannot show: outputs of a stack
//! created by executing a change set feeding a dependant, Replacement as CloudFormation states
//! it, a stack left in ROLLBACK_COMPLETE, and a change set that CloudFormation finds empty.
//! (Like moto, LocalStack accepts a second change set of a name a stack already has, where
//! CloudFormation answers AlreadyExistsException; how formwork then finds its earlier change set
//! is tested on CloudFormation's recorded answers in `plan_recorded.rs`.)

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Repo;
use common::aws::{localstack, unique};
use common::sdk::{self, block};
use common::stacks::{self, unit};
use serde_json::Value;

const REGION: &str = "us-east-1";

const PIPELINE: &str = r#"pipeline: svc
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
Resources:
  Config:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /svc/${Env}/app
      Type: String
      Value: !Ref NetName
Outputs:
  ConfigName:
    Value: !Ref Config
"#;

fn svc(env: &str) -> Repo {
    let r = Repo::new();
    r.write("pipelines/svc/pipeline.yml", PIPELINE);
    r.write("pipelines/svc/templates/net.yml", NET);
    r.write("pipelines/svc/templates/app.yml", APP);
    r.write(
        &format!("environments/{env}/environment.yml"),
        &format!(
            "pipeline: svc\naccount: \"{}\"\nregion: {REGION}\n",
            localstack().account()
        ),
    );
    r.commit("svc");
    r
}

fn put_secret(env: &str, value: &str) {
    stacks::put_secure_string(localstack(), REGION, &format!("/svc/{env}/secret"), value);
}

fn plan(r: &Repo, args: &[&str]) -> (i32, Value, BTreeMap<String, usize>, String) {
    let (run, json, calls) = stacks::plan_with_calls(localstack(), r, args);
    (run.code, json, calls, run.stderr)
}

/// Executes a change set and waits until its stack settles; returns the stack's status.
fn execute(change_set: &str, stack: &str) -> String {
    let cfn = sdk::cfn(localstack(), REGION);
    block(async {
        cfn.execute_change_set()
            .change_set_name(change_set)
            .send()
            .await
            .unwrap();
        for _ in 0..120 {
            let status = cfn
                .describe_stacks()
                .stack_name(stack)
                .send()
                .await
                .unwrap()
                .stacks()[0]
                .stack_status()
                .unwrap()
                .as_str()
                .to_string();
            if !status.ends_with("_IN_PROGRESS") {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("{stack} did not settle");
    })
}

#[test]
fn outputs_of_a_stack_created_by_a_change_set_feed_its_dependant() {
    let env = unique("ls-out");
    put_secret(&env, "localstack-secret-value-1");
    let r = svc(&env);
    let (code, first, _, stderr) = plan(&r, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(unit(&first, "app")["action"], "pending");
    let id = unit(&first, "net")["change_set"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(execute(&id, &format!("{env}-net")), "CREATE_COMPLETE");

    let (code, second, _, stderr) = plan(&r, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(unit(&second, "net")["action"], "no_change");
    let app = unit(&second, "app");
    assert_eq!(app["action"], "create", "{app:#}");
    let net_name = app["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "NetName")
        .unwrap()["after"]
        .clone();
    assert_eq!(net_name, format!("/svc/{env}/net"));
    assert!(!second.to_string().contains("localstack-secret-value-1"));
}

#[test]
fn replacement_comes_from_the_change_set_where_cloudformation_states_it() {
    let env = unique("ls-rep");
    put_secret(&env, "localstack-secret-value-2");
    let r = svc(&env);
    let (_, first, _, _) = plan(&r, &["--env", &env]);
    let id = unit(&first, "net")["change_set"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(execute(&id, &format!("{env}-net")), "CREATE_COMPLETE");
    // The parameter's Name is create-only.
    r.write(
        "pipelines/svc/templates/net.yml",
        &NET.replace("/svc/${Env}/net", "/svc/${Env}/network"),
    );
    r.commit("rename");
    let (code, p, _, stderr) = plan(&r, &[]);
    assert_eq!(code, 2, "{stderr}");
    let net = unit(&p, "net");
    assert_eq!(net["action"], "update", "{net:#}");
    let res = &net["resources"][0];
    assert_eq!(res["logical_id"], "Net");
    assert_eq!(res["replacement"], "true", "{res:#}");
    assert_eq!(res["replacement_source"], "cloudformation", "{res:#}");
}

#[test]
fn a_stack_whose_creation_rolled_back_is_blocked_with_what_to_do() {
    let env = unique("ls-rb");
    let r = Repo::new();
    r.write(
        "pipelines/bad/pipeline.yml",
        "pipeline: bad\nstacks:\n  store:\n    template: store.yml\n",
    );
    // An S3 bucket name with capitals and underscores: S3 refuses it, the creation fails and
    // rolls back.
    r.write(
        "pipelines/bad/store.yml",
        "Resources:\n  Store:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: Not_A_Valid_Bucket_Name\n",
    );
    r.write(
        &format!("environments/{env}/environment.yml"),
        &format!(
            "pipeline: bad\naccount: \"{}\"\nregion: {REGION}\n",
            localstack().account()
        ),
    );
    r.commit("bad bucket");
    let (_, first, _, stderr) = plan(&r, &[]);
    let id = unit(&first, "store")["change_set"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{first:#} {stderr}"))
        .to_string();
    let status = execute(&id, &format!("{env}-store"));
    assert_eq!(status, "ROLLBACK_COMPLETE");
    let (code, p, calls, _) = plan(&r, &[]);
    assert_eq!(code, 1);
    let store = unit(&p, "store");
    assert_eq!(store["action"], "blocked");
    assert_eq!(store["stack_status"], "ROLLBACK_COMPLETE");
    assert!(
        store["message"]
            .as_str()
            .unwrap()
            .contains(&format!("delete-stack --stack-name {env}-store")),
        "{store:#}"
    );
    assert!(
        !calls.contains_key("CloudFormation.CreateChangeSet"),
        "{calls:?}"
    );
}

#[test]
fn an_empty_change_set_means_no_changes_and_is_deleted() {
    let env = unique("ls-empty");
    put_secret(&env, "localstack-secret-value-4");
    let r = svc(&env);
    let (_, first, _, _) = plan(&r, &[]);
    let id = unit(&first, "net")["change_set"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    execute(&id, &format!("{env}-net"));
    let (_, second, _, _) = plan(&r, &[]);
    let id = unit(&second, "app")["change_set"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(execute(&id, &format!("{env}-app")), "CREATE_COMPLETE");
    // app takes a secret, so it cannot be compared with what is deployed: CloudFormation is
    // asked, finds nothing to do, and the empty change set is deleted.
    let (code, third, calls, stderr) = plan(&r, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(unit(&third, "app")["action"], "no_change");
    assert!(unit(&third, "app")["change_set"].is_null());
    assert_eq!(calls["CloudFormation.DeleteChangeSet"], 1, "{calls:?}");
    assert_eq!(unit(&third, "app")["unchanged_by"]["by"], "change_set");
    // net was compared by the second plan, which recorded it: it is judged by that record now.
    assert_eq!(unit(&third, "net")["unchanged_by"]["by"], "record");
    // net DescribeStacks; app DescribeStacks, CreateChangeSet, DescribeChangeSet (until
    // created) and DeleteChangeSet.
    let cfn_calls = |calls: &BTreeMap<String, usize>| -> usize {
        calls
            .iter()
            .filter(|(k, _)| k.starts_with("CloudFormation."))
            .map(|(_, v)| v)
            .sum()
    };
    let polls = calls["CloudFormation.DescribeChangeSet"];
    assert_eq!(cfn_calls(&calls) - (polls - 1), 5, "{calls:?}");
    // The empty change set was recorded too: with its secret, app is now judged unchanged with
    // one DescribeStacks, like net.
    let (code, fourth, calls, stderr) = plan(&r, &[]);
    assert_eq!(code, 0, "{stderr}");
    for stack in ["net", "app"] {
        assert_eq!(unit(&fourth, stack)["action"], "no_change");
        assert_eq!(
            unit(&fourth, stack)["unchanged_by"]["by"],
            "record",
            "{fourth:#}"
        );
    }
    assert_eq!(cfn_calls(&calls), 2, "{calls:?}");
    assert_eq!(calls["CloudFormation.DescribeStacks"], 2, "{calls:?}");
    // --refresh asks CloudFormation again about both.
    let (code, fifth, calls, stderr) = plan(&r, &["--refresh"]);
    assert_eq!(code, 0, "{stderr}");
    for stack in ["net", "app"] {
        assert_eq!(
            unit(&fifth, stack)["unchanged_by"]["by"],
            "change_set",
            "{fifth:#}"
        );
    }
    assert_eq!(calls["CloudFormation.CreateChangeSet"], 2, "{calls:?}");
}
