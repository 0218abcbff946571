//! A plan judging stacks unchanged from what formwork last saw of them: after an apply, a plan
//! of stacks still as applied makes one listing of the account and no call per stack; a stack
//! changed outside formwork, or whose desired state changed, is read and planned as before.

use crate::common;

use std::collections::BTreeMap;

use common::Repo;
use common::aws::{moto_with_change_set_outputs, unique};
use common::sdk::{self, block, formwork_on};
use common::stacks::{self, unit};
use serde_json::Value;

const REGION: &str = "eu-west-1";

const TEMPLATE: &str = "Parameters:\n  Prev:\n    Type: String\nResources:\n  P:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Value: !Sub '${Prev}+1'\nOutputs:\n  Value:\n    Value: !Sub '${Prev}+1'\n";

/// Six stacks: a chain of three, and three on their own.
fn repo(env: &str) -> Repo {
    let mut pipeline = String::from("pipeline: six\nstacks:\n");
    for (key, prev) in [
        ("a", "start"),
        ("b", "${a.Value}"),
        ("c", "${b.Value}"),
        ("d", "d"),
        ("e", "e"),
        ("f", "f"),
    ] {
        pipeline.push_str(&format!(
            "  {key}:\n    template: templates/p.yml\n    parameters:\n      Prev: \"{prev}\"\n"
        ));
    }
    Repo::one_pipeline("six", &pipeline, &[("p.yml", TEMPLATE)], env, REGION, "")
}

fn evidence(plan: &Value) -> BTreeMap<String, String> {
    plan["environments"][0]["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let by = match (&u["action"], &u["unchanged_by"]["by"]) {
                (a, Value::String(by)) if a == "no_change" => by.clone(),
                (a, _) => a.as_str().unwrap().to_string(),
            };
            (u["stack"].as_str().unwrap().to_string(), by)
        })
        .collect()
}

fn cfn_calls(calls: &BTreeMap<String, usize>) -> BTreeMap<String, usize> {
    calls
        .iter()
        .filter(|(k, _)| k.starts_with("CloudFormation."))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

#[test]
fn stacks_as_applied_cost_one_listing_and_a_stack_changed_elsewhere_is_planned() {
    let ep = moto_with_change_set_outputs();
    let env = unique("seen");
    let r = repo(&env);
    let applied = formwork_on(ep, r.path(), &["apply", "--env", &env, "--base", "HEAD"]);
    // No base to compare: plan and apply every stack.
    let applied = if applied.code == 0 {
        applied
    } else {
        let plan = formwork_on(ep, r.path(), &["plan", "--env", &env]);
        assert_eq!(plan.code, 2, "{}", plan.all());
        formwork_on(ep, r.path(), &["apply", "--env", &env])
    };
    assert_eq!(applied.code, 0, "{}", applied.all());

    // Every stack as applied: judged by its record; one DescribeStacks lists them all.
    let (run, plan, calls) = stacks::plan_with_calls(ep, &r, &["--env", &env]);
    assert_eq!(run.code, 0, "{}", run.all());
    let by = evidence(&plan);
    assert_eq!(by.len(), 6, "{by:?}");
    assert!(by.values().all(|b| b == "record"), "{by:?}");
    assert_eq!(
        cfn_calls(&calls),
        BTreeMap::from([("CloudFormation.DescribeStacks".to_string(), 1)]),
        "{calls:?}"
    );
    let text = formwork_on(ep, r.path(), &["plan", "--env", &env]);
    assert_eq!(text.code, 0, "{}", text.all());
    assert!(
        text.stdout.contains("no changes: as last seen "),
        "{}",
        text.stdout
    );

    // e changed outside formwork (its parameter set by hand): its record no longer holds, so it
    // is read and planned back to the config's value. The others stay judged by record.
    let cfn = sdk::cfn(ep, REGION);
    block(async {
        cfn.update_stack()
            .stack_name(format!("{env}-e"))
            .use_previous_template(true)
            .parameters(
                aws_sdk_cloudformation::types::Parameter::builder()
                    .parameter_key("Prev")
                    .parameter_value("set-by-hand")
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    assert_eq!(
        stacks::parameter(ep, REGION, &format!("{env}-e"), "Prev"),
        "set-by-hand"
    );
    let (run, plan, calls) = stacks::plan_with_calls(ep, &r, &["--env", &env]);
    assert_eq!(run.code, 2, "{}", run.all());
    let by = evidence(&plan);
    assert_eq!(by["e"], "update", "{plan:#}");
    for k in ["a", "b", "c", "d", "f"] {
        assert_eq!(by[k], "record", "{k}: {by:?}");
    }
    assert_eq!(calls["CloudFormation.CreateChangeSet"], 1, "{calls:?}");
    assert!(unit(&plan, "e")["change_set"]["id"].is_string(), "{plan:#}");

    // A change of config reaches d alone; the rest are judged by record.
    r.write(
        "pipelines/six/pipeline.yml",
        &std::fs::read_to_string(r.path().join("pipelines/six/pipeline.yml"))
            .unwrap()
            .replace("Prev: \"d\"", "Prev: \"d2\""),
    );
    r.commit("d2");
    let (run, plan, _) = stacks::plan_with_calls(ep, &r, &["--env", &env]);
    assert_eq!(run.code, 2, "{}", run.all());
    let by = evidence(&plan);
    assert_eq!(by["d"], "update", "{by:?}");
    for k in ["a", "b", "c", "f"] {
        assert_eq!(by[k], "record", "{k}: {by:?}");
    }

    // --refresh reads every stack again.
    let (run, plan, calls) = stacks::plan_with_calls(ep, &r, &["--env", &env, "--refresh"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let by = evidence(&plan);
    assert!(!by.values().any(|b| b == "record"), "{by:?}");
    assert!(calls["CloudFormation.CreateChangeSet"] >= 6, "{calls:?}");
}

#[test]
fn environments_sharing_an_account_read_their_ssm_parameters_together() {
    let ep = moto_with_change_set_outputs();
    let first = unique("ssm1");
    let second = unique("ssm2");
    let pipeline = "pipeline: one\nstacks:\n  a:\n    template: templates/p.yml\n    parameters:\n      Prev: ${ssm:/formwork-test/${env.name}/prev}\n";
    let r = Repo::one_pipeline("one", pipeline, &[("p.yml", TEMPLATE)], &first, REGION, "");
    r.write(
        &format!("environments/{second}/environment.yml"),
        &format!("pipeline: one\naccount: \"123456789012\"\nregion: {REGION}\n"),
    );
    r.commit("second");
    for env in [&first, &second] {
        stacks::put_secure_string(ep, REGION, &format!("/formwork-test/{env}/prev"), env);
    }
    let (run, plan, calls) = stacks::plan_with_calls(ep, &r, &["--env", &first, "--env", &second]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert_eq!(plan["environments"].as_array().unwrap().len(), 2);
    // Both environments' parameters in one batch of ten.
    assert_eq!(calls["SSM.GetParameters"], 1, "{calls:?}");
    for (i, env) in [&first, &second].into_iter().enumerate() {
        let unit = &plan["environments"][i]["units"][0];
        assert_eq!(plan["environments"][i]["name"], env.as_str());
        assert_eq!(unit["action"], "create", "{unit:#}");
    }
}
