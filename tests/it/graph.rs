//! `formwork graph`: dependency waves of an environment, as text, JSON and DOT.

use crate::common;

use common::{Repo, formwork};

fn project() -> &'static std::path::Path {
    env!("CARGO_MANIFEST_DIR").as_ref()
}

#[test]
fn placeos_deploys_in_its_documented_order() {
    let run = formwork(
        project(),
        &["graph", "--env", "production", "--output", "json"],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let v = run.json();
    let waves: Vec<Vec<String>> = serde_json::from_value(v["waves"].clone()).unwrap();
    let position = |s: &str| waves.iter().position(|w| w.iter().any(|x| x == s)).unwrap();
    // Every stack comes after the stacks whose outputs it takes.
    for (later, earlier) in [
        ("security-groups", "vpc"),
        ("elasticache", "security-groups"),
        ("auth", "elasticache"),
        ("rubber-soul", "elasticsearch"),
        ("init", "alb"),
        ("init", "rest-api"),
        ("rethinkdb", "efs"),
        ("rest-api", "core"),
    ] {
        assert!(
            position(later) > position(earlier),
            "{later} before {earlier}: {waves:?}"
        );
    }
    assert_eq!(waves[0], ["vpc"]);
    assert_eq!(waves.last().unwrap(), &["init"]);
    assert_eq!(waves.iter().map(Vec::len).sum::<usize>(), 18);
    let auth = v["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stack"] == "auth")
        .unwrap();
    assert_eq!(auth["stack_name"], "production-auth");
    let elasticache = auth["depends_on"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["stack"] == "elasticache")
        .unwrap();
    assert_eq!(
        elasticache["outputs"],
        serde_json::json!(["Port", "PrimaryEndpoint"])
    );
    let etcd = auth["depends_on"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["stack"] == "etcd")
        .unwrap();
    assert_eq!(etcd["needs"], true);
}

#[test]
fn text_and_dot_forms() {
    let r = Repo::shop();
    let run = r.run(&["graph", "--env", "staging"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        run.stdout,
        "\
staging: pipeline shop, account 111111111111, region us-east-1: 4 stacks in 3 waves

wave 1
  network   staging-network
  cdn       staging-cdn

wave 2
  database  staging-database  ← network (VpcId)

wave 3
  app       staging-app       ← database (Endpoint, Port)
"
    );
    let run = r.run(&["graph", "--env", "staging", "--output", "dot"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.starts_with("digraph \"staging\" {"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("  \"database\" -> \"app\" [label=\"Endpoint\\nPort\"];"),
        "{}",
        run.stdout
    );
}

#[test]
fn unknown_environments_and_broken_ones_exit_with_1() {
    let r = Repo::shop();
    let run = r.run(&["graph", "--env", "stagin"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("there is no environment `stagin` (did you mean `staging`?)"),
        "{}",
        run.stderr
    );
    r.edit(
        "pipelines/shop/pipeline.yml",
        "  cdn:\n    template: templates/cdn.json\n",
        "  cdn:\n    template: templates/cdn.json\n    needs: [cdn]\n",
    );
    let run = r.run(&["graph", "--env", "staging"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("error: stack `cdn` needs itself"),
        "{}",
        run.stderr
    );
    let run = r.run(&["graph", "--env", "staging", "--rev", "HEAD"]);
    assert_eq!(run.code, 0, "{}", run.all());
}
