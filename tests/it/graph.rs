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

const VPC_TEMPLATE: &str = r#"Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties:
      CidrBlock: 10.0.0.0/16
Outputs:
  VpcId:
    Value: !Ref Vpc
    Export:
      Name: !Sub '${AWS::StackName}-VpcId'
"#;

const APP_TEMPLATE: &str = r#"Parameters:
  ParentVPCStack:
    Type: String
Resources:
  Group:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: app
      VpcId: !ImportValue
        'Fn::Sub': '${ParentVPCStack}-VpcId'
"#;

/// Pipeline `net` (`pipeline` its pipeline.yml, with a VPC template that exports and an app
/// template that imports) and its environment `staging`.
fn net_repo(pipeline: &str) -> Repo {
    Repo::one_pipeline(
        "net",
        pipeline,
        &[("vpc.yml", VPC_TEMPLATE), ("app.yml", APP_TEMPLATE)],
        "staging",
        "eu-west-1",
        "",
    )
}

/// A stack that imports another's exports by its name takes that name with
/// `${stack.stack_name}`: filled in from the config (a custom `stack_name` included), and an
/// edge of the graph, said to be a stack name.
#[test]
fn a_stack_name_reference_passes_the_name_and_orders_the_stacks() {
    let pipeline = r#"pipeline: net
stacks:
  app:
    template: templates/app.yml
    parameters:
      ParentVPCStack: ${vpc.stack_name}
  vpc:
    template: templates/vpc.yml
    stack_name: network-${env.name}
"#;
    let r = net_repo(pipeline);
    let graph = r.run(&["graph", "--env", "staging", "--output", "json"]);
    assert_eq!(graph.code, 0, "{}", graph.all());
    let g = graph.json();
    assert_eq!(g["waves"], serde_json::json!([["vpc"], ["app"]]), "{g:#}");
    let app = g["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stack"] == "app")
        .unwrap();
    assert_eq!(
        app["depends_on"],
        serde_json::json!([{"stack": "vpc", "outputs": [], "needs": false, "stack_name": true,
            "imports": [{"export": "network-staging-VpcId", "output": "VpcId",
                         "at": "pipelines/net/templates/app.yml:9:14"}],
            "ssm_parameters": []}])
    );
    let text = r.run(&["graph", "--env", "staging"]);
    assert!(
        text.stdout
            .contains("← vpc (stack_name, import network-staging-VpcId)"),
        "{}",
        text.stdout
    );

    let plan = r.run(&["plan", "--offline", "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let p = plan.json();
    let units = p["environments"][0]["units"].as_array().unwrap();
    let app = units.iter().find(|u| u["stack"] == "app").unwrap();
    let param = app["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "ParentVPCStack")
        .unwrap_or_else(|| panic!("{app:#}"));
    assert_eq!(param["after"], "network-staging", "{param:#}");

    // Renaming the upstream stack changes what the importer is given: it is affected.
    r.edit(
        "pipelines/net/pipeline.yml",
        "network-${env.name}",
        "net-${env.name}",
    );
    r.commit("rename the network stack");
    let affected = r.run(&["affected", "--base", "HEAD~1", "--output", "json"]);
    let v = affected.json();
    let mut stacks: Vec<&str> = v["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["stack"].as_str().unwrap())
        .collect();
    stacks.sort();
    stacks.dedup();
    // vpc twice: the stack of the new name created, the old one removed.
    assert_eq!(stacks, ["app", "vpc"], "{}", affected.stdout);
}

/// A mistyped stack in `${stack.stack_name}` is an error at its place, with the nearest name;
/// a tag cannot take a stack name.
#[test]
fn stack_name_references_are_checked() {
    let pipeline = r#"pipeline: net
stacks:
  vpc:
    template: templates/vpc.yml
    tags:
      Network: ${vpc.stack_name}
  app:
    template: templates/app.yml
    parameters:
      ParentVPCStack: ${vcp.stack_name}
"#;
    let r = net_repo(pipeline);
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let all = run.all();
    assert!(
        all.contains(
            "`${vcp.stack_name}` refers to stack `vcp`, which pipeline `net` does not have"
        ),
        "{all}"
    );
    assert!(all.contains("did you mean `vpc`?"), "{all}");
    assert!(all.contains("pipelines/net/pipeline.yml:10:23"), "{all}");
    assert!(
        all.contains("a tag value cannot use stack names (`${vpc.stack_name}`)"),
        "{all}"
    );
}
