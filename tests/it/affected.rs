//! `formwork affected` on real git repositories: what a change reaches, what it does not.

use crate::common;

use common::{Repo, formwork};
use serde_json::Value;

/// The affected units of a JSON report as `environment/stack change` strings.
fn rows(v: &Value) -> Vec<String> {
    v["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            format!(
                "{}/{} {}",
                u["environment"].as_str().unwrap(),
                u["stack"].as_str().unwrap(),
                u["change"].as_str().unwrap()
            )
        })
        .collect()
}

fn affected_json(r: &Repo, base: &str, head: &str) -> (i32, Value) {
    let run = r.run(&[
        "affected", "--base", base, "--head", head, "--output", "json",
    ]);
    (run.code, run.json())
}

/// The value feeds a resource updated in place; the outputs the app takes do not follow it, so
/// the app is not affected.
#[test]
fn one_changed_environment_value_reaches_that_environment_and_no_further_than_it_changes() {
    let r = Repo::shop();
    r.branch("bigger-db");
    r.edit(
        "environments/staging/environment.yml",
        "InstanceClass: db.t3.micro",
        "InstanceClass: db.t3.small",
    );
    r.commit("bigger staging database");
    let run = r.run(&["affected", "--base", "main", "--head", "bigger-db"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let head = r.head_commit();
    let base = r.git.revparse_single("main").unwrap().id().to_string();
    assert_eq!(
        run.stdout,
        format!(
            "\
Stacks affected between main ({}) and bigger-db ({}) (1 path changed):

staging (pipeline shop, account 111111111111, region us-east-1)
  modified   database  staging-database
                         parameter InstanceClass: \"db.t3.micro\" → \"db.t3.small\"

1 stack in 1 environment: 1 modified.
",
            &base[..7],
            &head[..7]
        )
    );
    let (code, v) = affected_json(&r, "main", "bigger-db");
    assert_eq!(code, 2);
    assert_eq!(rows(&v), ["staging/database modified"]);
    assert_eq!(v["environments"], serde_json::json!(["staging"]));
    assert_eq!(
        v["changed_paths"],
        serde_json::json!(["environments/staging/environment.yml"])
    );
}

/// A shared template reaches every environment; each dependant only as far as the outputs it
/// takes may change, and says why.
#[test]
fn a_changed_shared_template_reaches_every_environment_of_the_pipeline() {
    let r = Repo::shop();
    r.edit(
        "pipelines/shop/templates/network.yml",
        "      CidrBlock: !Ref Cidr\n",
        "      CidrBlock: !Ref Cidr\n      EnableDnsHostnames: true\n",
    );
    r.commit("dns hostnames");
    // Updated in place: the VPC keeps its id, nothing downstream is affected.
    let (code, v) = affected_json(&r, "HEAD~1", "HEAD");
    assert_eq!(code, 2);
    assert_eq!(
        rows(&v),
        ["production/network modified", "staging/network modified"]
    );
    // A tenancy change may replace the VPC: its id may change, so the database, which takes
    // it, is affected; the app takes only the database's endpoint and port, which do not
    // follow the VPC.
    r.edit(
        "pipelines/shop/templates/network.yml",
        "      EnableDnsHostnames: true\n",
        "      EnableDnsHostnames: true\n      InstanceTenancy: dedicated\n",
    );
    r.commit("dedicated");
    let (code, v) = affected_json(&r, "HEAD~1", "HEAD");
    assert_eq!(code, 2);
    assert_eq!(
        rows(&v),
        [
            "production/network modified",
            "production/database dependant",
            "staging/network modified",
            "staging/database dependant",
        ]
    );
    assert_eq!(
        v["units"][1]["reasons"],
        serde_json::json!([{"kind": "input", "stack": "network", "output": "VpcId",
                            "reference": "${network.VpcId}", "because": "Vpc may be replaced"}])
    );
    assert_eq!(v["units"][0]["reasons"][0]["kind"], "template");
    assert_eq!(
        v["units"][0]["reasons"][0]["after"],
        "pipelines/shop/templates/network.yml"
    );
}

#[test]
fn reformatting_and_comments_are_not_changes() {
    let r = Repo::shop();
    // Same environment, other layout: flow style, comments, quoting, key order.
    r.write(
        "environments/staging/environment.yml",
        "# staging: the small one\nregion: us-east-1   # Virginia\naccount: '111111111111'\npipeline: \"shop\"\nstacks:\n  app: {parameters: {Replicas: 1}}\n  database:\n    parameters: {InstanceClass: 'db.t3.micro'}\ntags: {environment: staging}\n",
    );
    // Same template, other layout: JSON instead of YAML for the network, long-form intrinsics.
    r.remove("pipelines/shop/templates/network.yml");
    r.write(
        "pipelines/shop/templates/network.yml",
        r#"{"AWSTemplateFormatVersion": "2010-09-09", "Description": "Network for the shop",
 "Parameters": {"EnvironmentName": {"Type": "String"},
   "Cidr": {"Type": "String", "Default": "10.0.0.0/16", "AllowedPattern": "\\d+\\.\\d+\\.\\d+\\.\\d+/\\d+"}},
 "Resources": {"Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": {"Ref": "Cidr"},
   "Tags": [{"Key": "Name", "Value": {"Fn::Sub": "${EnvironmentName}-vpc"}}]}}},
 "Outputs": {"VpcId": {"Value": {"Ref": "Vpc"}}}}
"#,
    );
    r.edit(
        "pipelines/shop/pipeline.yml",
        "description: A small web shop",
        "description: A small web shop   # reviewed 2026",
    );
    r.commit("reformat");
    let run = r.run(&["affected", "--base", "HEAD~1", "--head", "HEAD"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.starts_with("No stacks affected between HEAD~1"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("(3 paths changed)"), "{}", run.stdout);
}

#[test]
fn a_renamed_stack_is_a_removal_and_an_addition() {
    let r = Repo::shop();
    r.edit(
        "pipelines/shop/pipeline.yml",
        "  cdn:\n",
        "  static-content:\n",
    );
    r.commit("rename cdn");
    let run = r.run(&["affected", "--base", "HEAD~1", "--head", "HEAD"]);
    assert_eq!(run.code, 2);
    assert!(run.stdout.contains(
        "  added      static-content  production-static-content\n                               stack `static-content` is new in environment `production`\n"
    ), "{}", run.stdout);
    assert!(run.stdout.contains(
        "  removed    cdn             production-cdn\n                               stack `cdn` is no longer deployed in environment `production` (removed from the pipeline or disabled); the stack is not deleted unless apply is allowed to delete\n"
    ), "{}", run.stdout);
    let (_, v) = affected_json(&r, "HEAD~1", "HEAD");
    assert_eq!(
        rows(&v),
        [
            "production/static-content added",
            "production/cdn removed",
            "staging/static-content added",
            "staging/cdn removed",
        ]
    );
}

#[test]
fn a_changed_stack_name_replaces_the_stack() {
    let r = Repo::shop();
    r.edit(
        "environments/production/environment.yml",
        "stacks:\n",
        "stacks:\n  cdn:\n    stack_name: shop-cdn\n",
    );
    r.commit("name the cdn stack");
    let (_, v) = affected_json(&r, "HEAD~1", "HEAD");
    assert_eq!(rows(&v), ["production/cdn added", "production/cdn removed"]);
    assert_eq!(
        v["units"][0]["reasons"][0]["detail"],
        "replaces production-cdn in 222222222222/eu-west-1"
    );
    assert_eq!(v["units"][0]["stack_name"], "shop-cdn");
}

#[test]
fn disabling_a_stack_or_deleting_an_environment_are_removals() {
    let r = Repo::shop();
    r.edit(
        "environments/staging/environment.yml",
        "stacks:\n",
        "stacks:\n  cdn:\n    enabled: false\n",
    );
    r.remove("environments/production");
    r.commit("drop production, no cdn in staging");
    let (code, v) = affected_json(&r, "HEAD~1", "HEAD");
    assert_eq!(code, 2);
    assert_eq!(
        rows(&v),
        [
            "production/network removed",
            "production/database removed",
            "production/app removed",
            "production/cdn removed",
            "staging/cdn removed",
        ]
    );
    assert_eq!(
        v["units"][0]["reasons"][0]["detail"],
        "environment `production` leaves the config"
    );
}

#[test]
fn a_new_environment_adds_all_its_stacks() {
    let r = Repo::shop();
    r.write(
        "environments/qa/environment.yml",
        &common::STAGING.replace("us-east-1", "us-west-2"),
    );
    r.commit("qa");
    let (_, v) = affected_json(&r, "HEAD~1", "HEAD");
    assert_eq!(
        rows(&v),
        [
            "qa/network added",
            "qa/cdn added",
            "qa/database added",
            "qa/app added",
        ]
    );
}

#[test]
fn variables_tags_and_capabilities_are_part_of_the_desired_state() {
    let r = Repo::shop();
    // A variable default feeds a parameter of every stack; a tag only one environment.
    r.edit(
        "pipelines/shop/pipeline.yml",
        "default: shop",
        "default: store",
    );
    r.edit(
        "environments/staging/environment.yml",
        "environment: staging",
        "environment: stage",
    );
    r.commit("rename");
    let (_, v) = affected_json(&r, "HEAD~1", "HEAD");
    let staging_app = v["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["environment"] == "staging" && u["stack"] == "app")
        .unwrap();
    assert_eq!(staging_app["change"], "modified");
    assert_eq!(
        staging_app["reasons"],
        serde_json::json!([
            {"kind": "parameter", "name": "EnvironmentName", "before": "shop-staging", "after": "store-staging"},
            {"kind": "tag", "key": "environment", "before": "staging", "after": "stage"},
            {"kind": "input", "stack": "database", "output": "Endpoint",
             "reference": "${database.Endpoint}", "because": "parameter EnvironmentName changes"},
        ])
    );
    assert_eq!(v["units"].as_array().unwrap().len(), 8);
}

#[test]
fn no_echo_values_are_masked_in_every_output() {
    let r = Repo::shop();
    r.edit(
        "pipelines/shop/pipeline.yml",
        "Password: ${ssm:/shop/${env.name}/db-password}",
        "Password: correct-horse-battery",
    );
    r.commit("literal password (bad practice, still masked)");
    r.edit(
        "pipelines/shop/pipeline.yml",
        "Password: correct-horse-battery",
        "Password: staple-secret-2026",
    );
    r.commit("rotate");
    for output in ["text", "json"] {
        for (base, head) in [("HEAD~2", "HEAD~1"), ("HEAD~1", "HEAD")] {
            let run = r.run(&[
                "affected", "--base", base, "--head", head, "--output", output,
            ]);
            assert_eq!(run.code, 2, "{}", run.all());
            let all = run.all();
            assert!(!all.contains("correct-horse-battery"), "{all}");
            assert!(!all.contains("staple-secret-2026"), "{all}");
            assert!(all.contains("****"), "{all}");
        }
    }
    let (_, v) = affected_json(&r, "HEAD~2", "HEAD~1");
    let reasons = &v["units"][0]["reasons"];
    assert_eq!(
        reasons,
        &serde_json::json!([{"kind": "parameter", "name": "Password",
            "before": "${ssm:/shop/production/db-password}", "after": "****"}])
    );
}

#[test]
fn works_on_a_bare_clone_and_across_merges() {
    let r = Repo::shop();
    r.branch("feature");
    r.edit(
        "environments/production/environment.yml",
        "Replicas: 3",
        "Replicas: 4",
    );
    r.commit("more replicas");
    r.checkout("main");
    r.edit(
        "environments/staging/environment.yml",
        "Replicas: 1",
        "Replicas: 2",
    );
    r.commit("staging replicas");
    r.merge("feature", "merge feature");

    let bare = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("git")
        .args(["clone", "--bare", "-q"])
        .arg(r.path())
        .arg(bare.path())
        .status()
        .unwrap();
    assert!(status.success());
    // The merge brings the feature's change onto main: first parent to merge.
    let run = formwork(
        bare.path(),
        &[
            "affected", "--base", "main^1", "--head", "main", "--output", "json",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.all());
    assert_eq!(rows(&run.json()), ["production/app modified"]);
    // Everything since the branch point, from the second parent's view.
    let run = formwork(
        bare.path(),
        &[
            "affected", "--base", "main^2", "--head", "main", "--output", "json",
        ],
    );
    assert_eq!(rows(&run.json()), ["staging/app modified"]);
}

#[test]
fn bad_revisions_and_invalid_head_configs_are_errors() {
    let r = Repo::shop();
    let run = r.run(&["affected", "--base", "nope", "--head", "HEAD"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("error: revision `nope` not found"),
        "{}",
        run.stderr
    );

    r.edit(
        "environments/staging/environment.yml",
        "InstanceClass: db.t3.micro",
        "InstanceClass: db.x9.huge",
    );
    r.commit("bad value");
    let run = r.run(&["affected", "--base", "HEAD~1", "--head", "HEAD"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("error: value `db.x9.huge` of parameter `InstanceClass` is not one of its AllowedValues in environment `staging`"), "{}", run.stderr);
    assert!(
        run.stderr.contains("the config at HEAD has errors"),
        "{}",
        run.stderr
    );
    // A broken base is not the change's fault: everything it touches counts as changed.
    r.edit(
        "environments/staging/environment.yml",
        "InstanceClass: db.x9.huge",
        "InstanceClass: db.t3.small",
    );
    r.commit("fix");
    let (code, v) = affected_json(&r, "HEAD~1", "HEAD");
    assert_eq!(code, 2);
    assert_eq!(v["units"][0]["reasons"][0]["kind"], "base_invalid");
    assert_eq!(v["units"].as_array().unwrap().len(), 4);
}

#[test]
fn identical_revisions_affect_nothing() {
    let r = Repo::shop();
    let (code, v) = affected_json(&r, "HEAD", "HEAD");
    assert_eq!(code, 0);
    assert_eq!(v["units"], serde_json::json!([]));
    assert_eq!(v["version"], 1);
}

#[test]
fn the_bundled_example_reacts_to_a_shared_template_change() {
    let r = Repo::new();
    r.copy_from_project("pipelines");
    r.copy_from_project("environments");
    r.commit("placeos");
    r.edit(
        "pipelines/placeos/templates/elasticache.yml",
        "SnapshotRetentionLimit: !If [Replicated, 7, 0]",
        "SnapshotRetentionLimit: !If [Replicated, 14, 0]",
    );
    r.commit("elasticache tweak");
    // An in-place update: the endpoint and port the services take stay.
    let (code, v) = affected_json(&r, "HEAD~1", "HEAD");
    assert_eq!(code, 2);
    assert_eq!(
        rows(&v),
        [
            "production/elasticache modified",
            "staging/elasticache modified"
        ]
    );
    // A new port replaces the replication group: every service taking its endpoint or port is
    // affected, and says why.
    r.edit(
        "pipelines/placeos/templates/elasticache.yml",
        "      Port: 6379",
        "      Port: 6380",
    );
    r.commit("another port");
    let (code, v) = affected_json(&r, "HEAD~1", "HEAD");
    assert_eq!(code, 2);
    assert!(
        v.to_string().contains(
            r#""reference":"${elasticache.PrimaryEndpoint}","because":"ReplicationGroup is replaced""#
        ),
        "{v:#}"
    );
    let rows = rows(&v);
    for env in ["production", "staging"] {
        assert!(
            rows.contains(&format!("{env}/elasticache modified")),
            "{rows:?}"
        );
        for dependant in ["auth", "core", "triggers", "rest-api"] {
            assert!(
                rows.contains(&format!("{env}/{dependant} dependant")),
                "{rows:?}"
            );
        }
        assert!(
            !rows.iter().any(|r| r.starts_with(&format!("{env}/vpc"))),
            "{rows:?}"
        );
    }
}

#[test]
fn a_config_repository_in_a_subdirectory_of_a_monorepo() {
    let r = Repo::new();
    r.write("README.md", "monorepo\n");
    r.write("app/src/main.rs", "fn main() {}\n");
    let sub = Repo::new();
    common::write_shop(&sub);
    for rel in [
        "pipelines/shop/pipeline.yml",
        "pipelines/shop/templates/network.yml",
        "pipelines/shop/templates/database.yml",
        "pipelines/shop/templates/app.yml",
        "pipelines/shop/templates/cdn.json",
        "environments/staging/environment.yml",
        "environments/production/environment.yml",
    ] {
        r.write(&format!("infra/{rel}"), &sub.read(rel));
    }
    r.commit("monorepo");
    r.write("app/src/main.rs", "fn main() { println!(); }\n");
    r.edit(
        "infra/environments/production/environment.yml",
        "Replicas: 3",
        "Replicas: 5",
    );
    r.commit("app change and more replicas");
    let infra = r.file("infra");
    let run = formwork(
        &infra,
        &[
            "affected", "--base", "HEAD~1", "--head", "HEAD", "--output", "json",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.all());
    let v = run.json();
    assert_eq!(rows(&v), ["production/app modified"]);
    assert_eq!(
        v["changed_paths"],
        serde_json::json!(["environments/production/environment.yml"])
    );
    let run = formwork(&infra, &["validate", "--rev", "HEAD"]);
    assert_eq!(run.code, 0, "{}", run.all());
    // From the monorepo's root there is no config repository.
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("holds no pipelines/<name>/pipeline.yml"),
        "{}",
        run.stderr
    );
}

/// The bundled PlaceOS example: a security-group rule edit (both environments) and a log
/// retention change (production). Both update their resources in place, so no output changes
/// and no other stack is touched: an offline plan predicts what CloudFormation's change sets
/// would report — three stack updates, no replacement.
#[test]
fn a_rule_edit_and_a_parameter_change_in_placeos_update_only_their_stacks() {
    let r = Repo::new();
    r.copy_from_project("pipelines");
    r.copy_from_project("environments");
    r.commit("placeos");
    r.edit(
        "pipelines/placeos/templates/security-groups.yml",
        "FromPort: 443, ToPort: 443, CidrIp: 0.0.0.0/0",
        "FromPort: 443, ToPort: 443, CidrIp: 10.0.0.0/8",
    );
    r.edit(
        "environments/production/environment.yml",
        "LogRetentionDays: \"90\"",
        "LogRetentionDays: \"180\"",
    );
    r.commit("https from inside only, longer logs");
    let run = r.run(&["plan", "--offline", "--base", "HEAD~1", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let p = run.json();
    let mut updates = Vec::new();
    let mut replacements = 0;
    for e in p["environments"].as_array().unwrap() {
        for u in e["units"].as_array().unwrap() {
            assert_eq!(u["action"], "update", "{u:#}");
            updates.push(format!(
                "{}/{}",
                e["name"].as_str().unwrap(),
                u["stack"].as_str().unwrap()
            ));
            replacements += u["resources"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["replacement"] == "true")
                .count();
        }
    }
    assert_eq!(
        updates,
        [
            "production/security-groups",
            "production/ecs-cluster",
            "staging/security-groups"
        ]
    );
    assert_eq!(replacements, 0);
}
