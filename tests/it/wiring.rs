//! Stacks wired to each other in the template rather than in the config, in the style of the
//! public template collections.
//!
//! Exports: each template takes its parent stack's *name* as a parameter (`ParentVPCStack`) and
//! imports by name (`!ImportValue !Sub '${ParentVPCStack}-VPC'`, `Fn::Join`), with no
//! `${stack.Output}` in the config at all. formwork works out every export and import for each
//! environment: they order the stacks, carry `affected` from an exporter to its importers, and
//! an import that nothing provides is an error at the line of the import. On LocalStack the
//! chain is planned from nothing (importers pending until their exporter exists) and applied in
//! order.
//!
//! SSM parameters: a stack creates `/app/<env>/db-url` and another reads it with `${ssm:…}`;
//! the reader waits for the creator. And `needs:` on a new stack.

use crate::common;

use common::aws::{localstack, unique};
use common::sdk::formwork_on;
use common::stacks::{ssm_value, states, unit};
use common::{Repo, Run};
use serde_json::{Value, json};

const VPC: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Description: 'VPC: one network, its id and CIDR block exported for the stacks built on it'
Parameters:
  ClassB:
    Description: 'Class B of the VPC (10.XXX.0.0/16)'
    Type: Number
    Default: 20
Resources:
  VPC:
    Type: 'AWS::EC2::VPC'
    Properties:
      CidrBlock: !Sub '10.${ClassB}.0.0/16'
Outputs:
  StackName:
    Value: !Sub '${AWS::StackName}'
  VPC:
    Description: 'VPC.'
    Value: !Ref VPC
    Export:
      Name: !Sub '${AWS::StackName}-VPC'
  ClassB:
    Value: !Ref ClassB
    Export:
      Name: !Join ['-', [!Ref 'AWS::StackName', 'ClassB']]
"#;

const CLIENT_SG: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Description: 'Security group for clients of the VPC'
Parameters:
  ParentVPCStack:
    Description: 'Stack name of parent VPC stack.'
    Type: String
Resources:
  ClientSecurityGroup:
    Type: 'AWS::EC2::SecurityGroup'
    Properties:
      GroupDescription: !Ref 'AWS::StackName'
      VpcId: {'Fn::ImportValue': !Sub '${ParentVPCStack}-VPC'}
Outputs:
  ClientSecurityGroup:
    Value: !Ref ClientSecurityGroup
    Export:
      Name: !Sub '${AWS::StackName}-ClientSecurityGroup'
"#;

const APP: &str = r#"{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Description": "App settings built from what the network stacks export",
  "Parameters": {
    "ParentVPCStack": {"Type": "String"},
    "ParentClientStack": {"Type": "String"}
  },
  "Resources": {
    "Settings": {
      "Type": "AWS::SSM::Parameter",
      "Properties": {
        "Name": {"Fn::Sub": "/${AWS::StackName}/network"},
        "Type": "String",
        "Value": {"Fn::Join": [",", [
          {"Fn::ImportValue": {"Fn::Join": ["-", [{"Ref": "ParentVPCStack"}, "ClassB"]]}},
          {"Fn::ImportValue": {"Fn::Sub": "${ParentClientStack}-ClientSecurityGroup"}}
        ]]}
      }
    }
  }
}
"#;

/// Listed importers first: the order comes from the imports alone.
const PIPELINE: &str = r#"pipeline: net
stacks:
  app:
    template: templates/app.json
    parameters:
      ParentVPCStack: ${env.name}-vpc
      ParentClientStack: ${env.name}-client-sg
  client-sg:
    template: templates/client-sg.yml
    parameters:
      ParentVPCStack: ${env.name}-vpc
  vpc:
    template: templates/vpc.yml
"#;

const TEMPLATES: &[(&str, &str)] = &[
    ("vpc.yml", VPC),
    ("client-sg.yml", CLIENT_SG),
    ("app.json", APP),
];

fn net(env_extra: &str) -> Repo {
    Repo::one_pipeline(
        "net",
        PIPELINE,
        TEMPLATES,
        "staging",
        "eu-west-1",
        env_extra,
    )
}

/// The `depends_on` entry of `stack` in a `graph --output json` for the stack `on`.
fn depends_on<'a>(graph: &'a Value, stack: &str, on: &str) -> &'a Value {
    let s = graph["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stack"] == stack)
        .unwrap_or_else(|| panic!("{graph:#}"));
    s["depends_on"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["stack"] == on)
        .unwrap_or_else(|| panic!("{stack} on {on}: {graph:#}"))
}

#[test]
fn imports_order_the_stacks_and_graph_says_where_each_came_from() {
    let r = net("");
    let run = r.run(&["graph", "--env", "staging", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let g = run.json();
    assert_eq!(
        g["waves"],
        json!([["vpc"], ["client-sg"], ["app"]]),
        "{g:#}"
    );
    assert_eq!(
        depends_on(&g, "client-sg", "vpc"),
        &json!({"stack": "vpc", "outputs": [], "needs": false, "stack_name": false,
                "imports": [{"export": "staging-vpc-VPC", "output": "VPC",
                             "at": "pipelines/net/templates/client-sg.yml:12:15"}],
                "ssm_parameters": []})
    );
    assert_eq!(
        depends_on(&g, "app", "vpc")["imports"],
        json!([{"export": "staging-vpc-ClassB", "output": "ClassB",
                "at": "pipelines/net/templates/app.json:15:12"}])
    );
    assert_eq!(
        depends_on(&g, "app", "client-sg")["imports"][0]["export"],
        "staging-client-sg-ClientSecurityGroup"
    );
    let text = r.run(&["graph", "--env", "staging"]);
    assert!(
        text.stdout.contains(
            "← client-sg (import staging-client-sg-ClientSecurityGroup), vpc (import staging-vpc-ClassB)"
        ),
        "{}",
        text.stdout
    );
    let dot = r.run(&["graph", "--env", "staging", "--output", "dot"]);
    assert!(
        dot.stdout
            .contains("\"vpc\" -> \"client-sg\" [label=\"import staging-vpc-VPC\"];"),
        "{}",
        dot.stdout
    );
}

/// The importers of an edited exporter are affected, and say through which export.
#[test]
fn a_change_to_an_exporter_affects_its_importers() {
    let r = net("");
    r.edit(
        "pipelines/net/templates/vpc.yml",
        "Default: 20",
        "Default: 21",
    );
    r.commit("another class B");
    let run = r.run(&["affected", "--base", "HEAD~1", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let v = run.json();
    let rows: Vec<(String, String, String)> = v["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["stack"].as_str().unwrap().to_string(),
                u["change"].as_str().unwrap().to_string(),
                u["reasons"].to_string(),
            )
        })
        .collect();
    let stacks: Vec<(&str, &str)> = rows
        .iter()
        .map(|(s, c, _)| (s.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        stacks,
        [
            ("vpc", "modified"),
            ("client-sg", "dependant"),
            ("app", "dependant")
        ],
        "{}",
        run.stdout
    );
    assert!(
        rows[1].2.contains("Fn::ImportValue staging-vpc-VPC"),
        "{}",
        rows[1].2
    );
    // app imports from both: both reasons are given.
    assert!(
        rows[2].2.contains("Fn::ImportValue staging-vpc-ClassB")
            && rows[2]
                .2
                .contains("Fn::ImportValue staging-client-sg-ClientSecurityGroup"),
        "{}",
        rows[2].2
    );
}

/// A mistyped parent stack name is an error at the import, in the template, with the export
/// meant; declaring the name external (a stack deployed some other way) accepts it.
#[test]
fn an_import_nothing_exports_is_an_error_at_the_import() {
    let r = net("stacks:\n  client-sg:\n    parameters:\n      ParentVPCStack: staging-vcp\n");
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let all = run.all();
    assert!(
        all.contains(
            "error: stack `client-sg` imports `staging-vcp-VPC`, which no stack of environment `staging` exports"
        ),
        "{all}"
    );
    assert!(
        all.contains("pipelines/net/templates/client-sg.yml:12:15"),
        "{all}"
    );
    assert!(all.contains("did you mean `staging-vpc-VPC`?"), "{all}");
    assert!(all.contains("external_exports:"), "{all}");
    let plan = r.run(&["plan", "--offline"]);
    assert_eq!(plan.code, 1, "{}", plan.all());

    r.edit(
        "environments/staging/environment.yml",
        "stacks:",
        "external_exports: ['staging-vcp-*']\nstacks:",
    );
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.all());
}

/// Switching the exporter off while its importers stay is refused before anything is deleted.
#[test]
fn an_exporter_cannot_leave_while_a_stack_imports_from_it() {
    let r = net("stacks:\n  vpc:\n    enabled: false\n");
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let all = run.all();
    for import in [
        "stack `client-sg` imports `staging-vpc-VPC`",
        "stack `app` imports `staging-vpc-ClassB`",
    ] {
        assert!(all.contains(import), "{import}: {all}");
    }
    let plan = r.run(&["plan", "--offline"]);
    assert_eq!(plan.code, 1, "{}", plan.all());
}

/// Two stacks exporting one name, and a stack importing its own export, are errors.
#[test]
fn duplicate_exports_and_imports_of_ones_own_export_are_errors() {
    let one = "Resources:\n  P:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Value: !ImportValue shared-name\nOutputs:\n  Name:\n    Value: !Ref P\n    Export:\n      Name: shared-name\n";
    let pipeline = "pipeline: dup\nstacks:\n  first:\n    template: templates/one.yml\n  second:\n    template: templates/one.yml\n";
    let r = Repo::one_pipeline(
        "dup",
        pipeline,
        &[("one.yml", one)],
        "staging",
        "eu-west-1",
        "",
    );
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let all = run.all();
    assert!(
        all.contains(
            "error: stacks `first` and `second` both export `shared-name` in environment `staging`"
        ),
        "{all}"
    );
    assert!(
        all.contains("the first is output `Name` at pipelines/dup/templates/one.yml:11:13"),
        "{all}"
    );
    assert!(
        all.contains(
            "stack `first` imports `shared-name`, which it exports itself (output `Name`)"
        ),
        "{all}"
    );
}

/// A name worked out only at deploy time (a resource attribute) is left to CloudFormation.
#[test]
fn imports_known_only_at_deploy_time_are_not_judged() {
    let r = net("");
    r.edit(
        "pipelines/net/templates/client-sg.yml",
        "!Sub '${ParentVPCStack}-VPC'",
        "!Sub '${ParentVPCStack}-${ClientSecurityGroup.GroupId}'",
    );
    let run = r.run(&["graph", "--env", "staging", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        run.json()["waves"],
        json!([["client-sg", "vpc"], ["app"]]),
        "{}",
        run.stdout
    );
}

/// [`Repo::one_pipeline`] with its environment in LocalStack's account.
fn on_localstack(
    pipeline: &str,
    pipeline_yml: &str,
    templates: &[(&str, &str)],
    env: &str,
    region: &str,
) -> Repo {
    let r = Repo::one_pipeline(pipeline, pipeline_yml, templates, env, region, "");
    r.edit(
        &format!("environments/{env}/environment.yml"),
        "123456789012",
        localstack().account(),
    );
    r.commit("on localstack");
    r
}

fn run_ls(r: &Repo, args: &[&str]) -> Run {
    formwork_on(localstack(), r.path(), args)
}

/// From nothing: the VPC is created, the stacks importing from it wait (a change set for them
/// would fail on the missing exports), apply goes in import order and the imported values
/// arrive. Then a new export and its first importer in one change: the importer waits for the
/// exporter's update.
#[test]
fn a_chain_wired_by_imports_is_planned_and_applied_in_order() {
    let env = unique("ls-imp");
    let region = "eu-west-1";
    let r = on_localstack("net", PIPELINE, TEMPLATES, &env, region);
    let plan = run_ls(&r, &["plan", "--env", &env, "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let p = plan.json();
    assert_eq!(unit(&p, "vpc")["action"], "create", "{p:#}");
    for (stack, waits) in [
        (
            "client-sg",
            format!("waits for `vpc` to be created and export `{env}-vpc-VPC`"),
        ),
        (
            "app",
            "waits for `client-sg` to be created and export".to_string(),
        ),
    ] {
        let u = unit(&p, stack);
        assert_eq!(u["action"], "pending", "{u:#}");
        assert!(u["message"].as_str().unwrap().contains(&waits), "{u:#}");
    }

    let applied = run_ls(&r, &["apply", "--env", &env, "--output", "json"]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    let s = states(&applied.json());
    assert!(s.values().all(|v| v == "applied"), "{s:?}");
    let settings = ssm_value(localstack(), region, &format!("/{env}-app/network"));
    assert!(settings.starts_with("20,sg-"), "{settings}");
    let again = run_ls(&r, &["plan", "--env", &env]);
    assert_eq!(again.code, 0, "{}", again.all());

    // A new export, imported in the same change.
    r.edit(
        "pipelines/net/templates/vpc.yml",
        "Outputs:\n",
        "Outputs:\n  Cidr:\n    Value: !GetAtt VPC.CidrBlock\n    Export:\n      Name: !Sub '${AWS::StackName}-Cidr'\n",
    );
    r.edit(
        "pipelines/net/templates/client-sg.yml",
        "      VpcId:",
        "      Tags:\n        - Key: cidr\n          Value: !ImportValue {'Fn::Sub': '${ParentVPCStack}-Cidr'}\n      VpcId:",
    );
    r.commit("export the CIDR block");
    let plan = run_ls(&r, &["plan", "--env", &env, "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let p = plan.json();
    assert_eq!(unit(&p, "vpc")["action"], "update", "{p:#}");
    let sg = unit(&p, "client-sg");
    assert_eq!(sg["action"], "pending", "{sg:#}");
    assert!(
        sg["message"].as_str().unwrap().contains(&format!(
            "waits for `vpc` to be updated and export `{env}-vpc-Cidr`"
        )),
        "{sg:#}"
    );
    let applied = run_ls(&r, &["apply", "--env", &env, "--output", "json"]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    let s = states(&applied.json());
    assert_eq!(s["vpc"], "applied", "{s:?}");
    assert_eq!(s["client-sg"], "applied", "{s:?}");
}

/// A stack that `needs:` another, new one (whose exports it reads some other way, such as a
/// stack name passed as a literal) waits for it as an importer does.
#[test]
fn a_stack_that_needs_a_new_stack_waits_for_it() {
    let env = unique("moto-needs");
    let param = "Parameters:\n  Value:\n    Type: String\nResources:\n  P:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Value: !Ref Value\n";
    let pipeline = "pipeline: needs\nstacks:\n  first:\n    template: templates/p.yml\n    parameters:\n      Value: one\n  second:\n    template: templates/p.yml\n    needs: [first]\n    parameters:\n      Value: two\n";
    let r = Repo::one_pipeline(
        "needs",
        pipeline,
        &[("p.yml", param)],
        &env,
        "us-east-1",
        "",
    );
    let plan = formwork_on(
        common::aws::moto(),
        r.path(),
        &["plan", "--env", &env, "--output", "json"],
    );
    assert_eq!(plan.code, 2, "{}", plan.all());
    let p = plan.json();
    assert_eq!(unit(&p, "first")["action"], "create", "{p:#}");
    let second = unit(&p, "second");
    assert_eq!(second["action"], "pending", "{second:#}");
    assert_eq!(
        second["message"],
        "waits for `first` (needs) to be created; planned again when applied"
    );
    assert_eq!(second["change_set"], Value::Null, "{second:#}");
}

const DB: &str = r#"Parameters:
  Env:
    Type: String
  Host:
    Type: String
    Default: db-1.internal
Resources:
  Url:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub '/app/${Env}/db-url'
      Type: String
      Value: !Sub 'postgres://${Host}:5432/app'
"#;

const WEB: &str = r#"Parameters:
  Env:
    Type: String
  DatabaseUrl:
    Type: String
Resources:
  Settings:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub '/app/${Env}/web-settings'
      Type: String
      Value: !Sub 'db=${DatabaseUrl}'
"#;

const SSM_PIPELINE: &str = r#"pipeline: app
defaults:
  parameters:
    Env: ${env.name}
stacks:
  web:
    template: templates/web.yml
    parameters:
      DatabaseUrl: ${ssm:/app/${env.name}/db-url}
  db:
    template: templates/db.yml
"#;

/// An SSM parameter one stack creates and another reads orders them, shows in the graph, and
/// carries `affected`.
#[test]
fn an_ssm_parameter_created_by_one_stack_and_read_by_another_orders_them() {
    let r = Repo::one_pipeline(
        "app",
        SSM_PIPELINE,
        &[("db.yml", DB), ("web.yml", WEB)],
        "staging",
        "eu-west-1",
        "",
    );
    let run = r.run(&["graph", "--env", "staging", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let g = run.json();
    assert_eq!(g["waves"], json!([["db"], ["web"]]), "{g:#}");
    assert_eq!(
        depends_on(&g, "web", "db")["ssm_parameters"],
        json!(["/app/staging/db-url"])
    );
    let text = r.run(&["graph", "--env", "staging"]);
    assert!(
        text.stdout.contains("← db (ssm /app/staging/db-url)"),
        "{}",
        text.stdout
    );
    r.edit(
        "pipelines/app/templates/db.yml",
        "db-1.internal",
        "db-2.internal",
    );
    r.commit("another host");
    let run = r.run(&["affected", "--base", "HEAD~1", "--output", "json"]);
    let v = run.json();
    let web = v["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["stack"] == "web")
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(web["change"], "dependant");
    assert!(
        web["reasons"]
            .to_string()
            .contains("${ssm:/app/staging/db-url}"),
        "{web:#}"
    );
}

/// Two stacks creating one SSM parameter, or a stack reading its own, are errors.
#[test]
fn ssm_parameters_created_twice_or_read_by_their_creator_are_errors() {
    let pipeline = "pipeline: app\ndefaults:\n  parameters:\n    Env: ${env.name}\nstacks:\n  db:\n    template: templates/db.yml\n  db2:\n    template: templates/db.yml\n  web:\n    template: templates/web.yml\n    parameters:\n      DatabaseUrl: ${ssm:/app/${env.name}/web-settings}\n";
    let r = Repo::one_pipeline(
        "app",
        pipeline,
        &[("db.yml", DB), ("web.yml", WEB)],
        "staging",
        "eu-west-1",
        "",
    );
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let all = run.all();
    assert!(
        all.contains("error: stacks `db` and `db2` both create SSM parameter /app/staging/db-url in environment `staging`"),
        "{all}"
    );
    assert!(
        all.contains("pipelines/app/templates/db.yml:11:13"),
        "{all}"
    );
    assert!(
        all.contains("stack `web` reads SSM parameter /app/staging/web-settings, which it creates itself (resource `Settings`)"),
        "{all}"
    );
    assert!(all.contains("pipelines/app/pipeline.yml:13:20"), "{all}");
}

/// On a new environment the reader waits for the creator (reading the parameter up front would
/// fail); apply passes the value created. A later change to the value is known after apply and
/// reaches the reader.
#[test]
fn a_reader_of_an_ssm_parameter_the_pipeline_creates_waits_for_it() {
    let env = unique("ls-ssm");
    let region = "eu-west-1";
    let r = on_localstack(
        "app",
        SSM_PIPELINE,
        &[("db.yml", DB), ("web.yml", WEB)],
        &env,
        region,
    );
    let plan = run_ls(&r, &["plan", "--env", &env, "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let p = plan.json();
    assert_eq!(unit(&p, "db")["action"], "create", "{p:#}");
    let web = unit(&p, "web");
    assert_eq!(web["action"], "pending", "{web:#}");
    assert_eq!(
        web["message"],
        format!(
            "waits for `db` to be created (for ${{ssm:/app/{env}/db-url}}); planned again when applied"
        )
    );

    let applied = run_ls(&r, &["apply", "--env", &env, "--output", "json"]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    let s = states(&applied.json());
    assert!(s.values().all(|v| v == "applied"), "{s:?}");
    let read = |name: String| ssm_value(localstack(), region, &name);
    assert_eq!(
        read(format!("/app/{env}/web-settings")),
        "db=postgres://db-1.internal:5432/app"
    );

    r.edit(
        "pipelines/app/templates/db.yml",
        "db-1.internal",
        "db-2.internal",
    );
    r.commit("another host");
    let plan = run_ls(&r, &["plan", "--env", &env, "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let p = plan.json();
    assert_eq!(unit(&p, "db")["action"], "update", "{p:#}");
    let inputs = &unit(&p, "web")["inputs"];
    assert_eq!(
        inputs[0]["reference"],
        format!("${{ssm:/app/{env}/db-url}}"),
        "{p:#}"
    );
    assert_eq!(inputs[0]["from_stack"], "db", "{inputs:#}");
    let applied = run_ls(&r, &["apply", "--env", &env, "--output", "json"]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert_eq!(
        read(format!("/app/{env}/web-settings")),
        "db=postgres://db-2.internal:5432/app"
    );
}
