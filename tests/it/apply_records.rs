//! What an apply records, on moto server: each stack's standing, and the environment's deployed
//! commit only when every stack of it is at that commit.
//!
//! Two independent stacks are applied at a first commit; a second commit changes both; a plan of
//! one of them (`--stack a`), applied, leaves the environment at the first commit, and
//! `formwork status` says which stack stands elsewhere; a plan of the rest, applied, brings the
//! environment to the second commit. A third commit changing only `a`, planned for what it
//! affects and applied, brings the environment along (the untouched `b` counts as at it). And
//! in a store written before stacks were recorded one by one (no stack records, only the
//! environment's deployed commit), the same holds: the untouched stack's config at the deployed
//! commit is compared.

use crate::common;

use common::Repo;
use common::aws::{moto, unique};
use common::sdk::formwork_on;

const TEMPLATE: &str = r#"Parameters:
  Name:
    Type: String
  Value:
    Type: String
Resources:
  P:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Ref Name
      Type: String
      Value: !Ref Value
"#;

const PIPELINE: &str = r#"pipeline: pair
stacks:
  a:
    template: templates/param.yml
    parameters:
      Name: /pair/${env.name}/a
      Value: a-v1
  b:
    template: templates/param.yml
    parameters:
      Name: /pair/${env.name}/b
      Value: b-v1
"#;

fn run(r: &Repo, args: &[&str]) -> common::Run {
    formwork_on(moto(), r.path(), args)
}

fn deployed(r: &Repo, env: &str) -> serde_json::Value {
    let s = run(r, &["status", "--env", env, "--output", "json"]);
    assert_eq!(s.code, 0, "{}", s.all());
    s.json()["environments"][0].clone()
}

#[test]
fn the_environment_advances_only_when_every_stack_is_at_the_commit() {
    let env = unique("pair");
    let r = Repo::one_pipeline(
        "pair",
        PIPELINE,
        &[("param.yml", TEMPLATE)],
        &env,
        "us-east-1",
        "",
    );
    let first = r.head_commit();
    let plan = run(&r, &["plan", "--env", &env]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let applied = run(&r, &["apply", "--env", &env]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert_eq!(deployed(&r, &env)["deployed"]["commit"], first.as_str());

    // Both stacks change; only `a` is planned and applied.
    r.edit("pipelines/pair/pipeline.yml", "a-v1", "a-v2");
    r.edit("pipelines/pair/pipeline.yml", "b-v1", "b-v2");
    let second = r.commit("both change");
    let plan = run(
        &r,
        &["plan", "--env", &env, "--stack", "a", "--base", "HEAD~1"],
    );
    assert_eq!(plan.code, 2, "{}", plan.all());
    let applied = run(&r, &["apply", "--env", &env, "--output", "json"]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert_eq!(applied.json()["behind"], serde_json::json!(["b"]));
    let status = deployed(&r, &env);
    assert_eq!(status["deployed"]["commit"], first.as_str(), "{status:#}");
    let stacks = status["stacks"].as_array().unwrap();
    let at = |stack: &str| {
        stacks
            .iter()
            .find(|s| s["stack"] == stack)
            .map(|s| s["commit"].as_str().unwrap().to_string())
    };
    assert_eq!(at("a").as_deref(), Some(second.as_str()));
    assert_eq!(at("b").as_deref(), Some(first.as_str()));
    let text = run(&r, &["status", "--env", &env]);
    assert!(
        text.stdout
            .contains("partly deployed: 1 of its 2 recorded stacks are at another commit")
            && text.stdout.contains(&format!("    a at {}", &second[..12])),
        "{}",
        text.stdout
    );

    // The rest: the environment is at the second commit.
    let plan = run(&r, &["plan", "--env", &env, "--base", "HEAD~1"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let applied = run(&r, &["apply", "--env", &env]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert_eq!(deployed(&r, &env)["deployed"]["commit"], second.as_str());

    // Only `a` changes: a plan of what the change affects holds `a` alone, and once it is
    // applied the environment is at the third commit, `b` with it.
    r.edit("pipelines/pair/pipeline.yml", "a-v2", "a-v3");
    let third = r.commit("a changes");
    let plan = run(
        &r,
        &[
            "plan", "--env", &env, "--base", "HEAD~1", "--output", "json",
        ],
    );
    assert_eq!(plan.code, 2, "{}", plan.all());
    let units = plan.json()["environments"][0]["units"].clone();
    assert_eq!(units.as_array().unwrap().len(), 1, "{units:#}");
    let applied = run(&r, &["apply", "--env", &env]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    let status = deployed(&r, &env);
    assert_eq!(status["deployed"]["commit"], third.as_str(), "{status:#}");
    assert!(
        status["stacks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["commit"] == third.as_str()),
        "{status:#}"
    );

    // A store from before stacks were recorded one by one: only the environment's commit.
    let db = rusqlite::Connection::open(r.path().join(".formwork/formwork.db")).unwrap();
    db.execute("DELETE FROM stack_deployed", []).unwrap();
    drop(db);
    r.edit("pipelines/pair/pipeline.yml", "a-v3", "a-v4");
    let fourth = r.commit("a changes again");
    let plan = run(&r, &["plan", "--env", &env, "--base", "HEAD~1"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let applied = run(&r, &["apply", "--env", &env]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert_eq!(deployed(&r, &env)["deployed"]["commit"], fourth.as_str());
}

/// The first apply of a new environment, of one stack chosen: the other was left out and does
/// not exist, so the environment has no deployed commit yet.
#[test]
fn a_first_apply_of_a_chosen_stack_leaves_the_environment_undeployed() {
    let env = unique("pair");
    let r = Repo::one_pipeline(
        "pair",
        PIPELINE,
        &[("param.yml", TEMPLATE)],
        &env,
        "us-east-1",
        "",
    );
    let plan = run(&r, &["plan", "--env", &env, "--stack", "a"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let applied = run(&r, &["apply", "--env", &env]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert!(
        applied.stdout.contains("Not every stack of") && applied.stdout.contains("(1 not: b)"),
        "{}",
        applied.stdout
    );
    let status = deployed(&r, &env);
    assert!(status["deployed"].is_null(), "{status:#}");
    assert_eq!(status["stacks"].as_array().unwrap().len(), 1, "{status:#}");
}
