//! Variables whose values are expressions read when planning (`DbName: ${db.Name}`,
//! `Password: ${ssm:/…}`): the stacks whose parameters use them take the dependency (graph,
//! order, plan and apply on moto server), the value arrives, a SecureString stays masked, a
//! changed value affects the stacks that use it, and `formwork validate` reports their
//! mistakes where they were written — a reference in the variable's value, a cycle between
//! variables, and such a variable used where only text known from the config may go.

use crate::common;

use common::aws::{moto_with_change_set_outputs, unique};
use common::sdk::formwork_on;
use common::stacks::{put_secure_string, ssm_value};
use common::{Repo, Run};
use serde_json::{Value, json};

const REGION: &str = "us-east-1";

const PARAM_TEMPLATE: &str = r#"Parameters:
  Name:
    Type: String
  Value:
    Type: String
    Default: v1
Resources:
  P:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Ref Name
      Type: String
      Value: !Ref Value
Outputs:
  Name:
    Value: !Ref P
"#;

const PIPELINE: &str = r#"pipeline: vx
vars:
  Prefix:
    default: /vx/${env.name}
  DbName:
    description: The name of db's parameter, known once db is deployed
    default: ${db.Name}
  Unused:
    default: ${ssm:/vx/nowhere}
stacks:
  db:
    template: templates/param.yml
    parameters:
      Name: ${var.Prefix}/db
      Value: db-value
  app:
    template: templates/param.yml
    parameters:
      Name: ${var.Prefix}/app
      Value: app-${var.DbName}
  web:
    template: templates/param.yml
    parameters:
      Name: ${var.Prefix}/web
      Value: ${var.DbName}
    tags:
      team: ${var.Prefix}
"#;

fn repo(pipeline: &str, env: &str, env_extra: &str) -> Repo {
    Repo::one_pipeline(
        "vx",
        pipeline,
        &[("param.yml", PARAM_TEMPLATE)],
        env,
        REGION,
        env_extra,
    )
}

fn run(r: &Repo, args: &[&str]) -> Run {
    formwork_on(moto_with_change_set_outputs(), r.path(), args)
}

fn unit<'a>(plan: &'a Value, stack: &str) -> &'a Value {
    plan["environments"][0]["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["stack"] == stack)
        .unwrap_or_else(|| panic!("{stack}: {plan:#}"))
}

#[test]
fn a_variable_holding_an_output_orders_the_stacks_that_use_it_and_its_value_arrives() {
    let env = unique("vx");
    let r = repo(PIPELINE, &env, "");
    let valid = r.run(&["validate"]);
    assert_eq!(valid.code, 0, "{}", valid.all());

    // Both users of the variable depend on db, as if they had written `${db.Name}`.
    let graph = r.run(&["graph", "--env", &env, "--output", "json"]);
    assert_eq!(graph.code, 0, "{}", graph.all());
    let g = graph.json();
    assert_eq!(g["waves"], json!([["db"], ["app", "web"]]), "{g:#}");
    for user in ["app", "web"] {
        let s = g["stacks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stack"] == user)
            .unwrap();
        assert_eq!(s["depends_on"][0]["stack"], "db", "{s:#}");
        assert_eq!(s["depends_on"][0]["outputs"], json!(["Name"]), "{s:#}");
    }
    let text = r.run(&["graph", "--env", &env]);
    assert_eq!(
        text.stdout.matches("← db (Name)").count(),
        2,
        "{}",
        text.stdout
    );

    // Planned once from nothing (db first; the others wait for its output), then applied.
    let plan = run(&r, &["plan", "--env", &env, "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let applied = run(&r, &["apply", "--env", &env, "--output", "json"]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert_eq!(
        applied.json()["run"]["status"],
        "succeeded",
        "{}",
        applied.all()
    );
    let ep = moto_with_change_set_outputs();
    let db_name = format!("/vx/{env}/db");
    assert_eq!(
        ssm_value(ep, REGION, &format!("/vx/{env}/app")),
        format!("app-{db_name}")
    );
    assert_eq!(ssm_value(ep, REGION, &format!("/vx/{env}/web")), db_name);

    // Nothing changed: nothing to do.
    let again = run(&r, &["plan", "--env", &env]);
    assert_eq!(again.code, 0, "{}", again.all());
}

#[test]
fn a_changed_variable_value_affects_the_stacks_that_use_it() {
    let r = repo(PIPELINE, "dev", "");
    r.edit(
        "pipelines/vx/pipeline.yml",
        "default: ${db.Name}",
        "default: ${db.Name}-v2",
    );
    r.commit("DbName changes");
    let plan = r.run(&["plan", "--offline", "--base", "HEAD~1", "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let plan = plan.json();
    let stacks: Vec<&str> = plan["environments"][0]["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["stack"].as_str().unwrap())
        .collect();
    assert_eq!(stacks, ["app", "web"], "{plan:#}");
    let value = unit(&plan, "web")["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Value")
        .cloned()
        .unwrap_or_else(|| panic!("{plan:#}"));
    assert!(value.to_string().contains("${db.Name}-v2"), "{value:#}");
}

const SECRET_PIPELINE: &str = r#"pipeline: vx
vars:
  Password:
    default: ${ssm:/vx/${env.name}/password}
  Prefix:
    default: /vx/${env.name}
stacks:
  db:
    template: templates/param.yml
    parameters:
      Name: ${var.Prefix}/db
      Value: pw-${var.Password}
"#;

fn assert_masked(what: &str, run: &Run, password: &str) {
    assert!(
        !run.all().contains(password),
        "{what} printed the password:\n{}",
        run.all()
    );
}

#[test]
fn a_secure_string_taken_through_a_variable_stays_masked() {
    let env = unique("vxs");
    let password = format!("Pw-{env}-c0ffee");
    let ep = moto_with_change_set_outputs();
    put_secure_string(ep, REGION, &format!("/vx/{env}/password"), &password);
    let r = repo(SECRET_PIPELINE, &env, "");
    // Created from one plan (moto keeps one CREATE change set per stack), then applied.
    let plan = run(&r, &["plan", "--env", &env, "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    assert_masked("plan --output json", &plan, &password);
    let applied = run(&r, &["apply", "--env", &env, "--output", "json"]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert_masked("apply", &applied, &password);
    // The value arrived (only formwork hides it).
    assert_eq!(
        ssm_value(ep, REGION, &format!("/vx/{env}/db")),
        format!("pw-{password}")
    );
    // An update: the parameter's diff and inputs are masked in every form.
    r.edit(
        "pipelines/vx/pipeline.yml",
        "Value: pw-${var.Password}",
        "Value: pw2-${var.Password}",
    );
    r.commit("another prefix");
    for output in ["text", "markdown", "json"] {
        let plan = run(
            &r,
            &[
                "plan", "--env", &env, "--base", "HEAD~1", "--output", output,
            ],
        );
        assert_eq!(plan.code, 2, "{}", plan.all());
        assert_masked(&format!("plan --output {output}"), &plan, &password);
        if output == "json" {
            let json = plan.json();
            let db = unit(&json, "db");
            assert_eq!(db["action"], "update", "{db:#}");
            assert!(db.to_string().contains("****"), "{db:#}");
        }
    }
    let applied = run(&r, &["apply", "--env", &env]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert_masked("apply", &applied, &password);
    assert_eq!(
        ssm_value(ep, REGION, &format!("/vx/{env}/db")),
        format!("pw2-{password}")
    );
    let status = run(&r, &["status", "--env", &env]);
    assert_masked("status", &status, &password);
}

/// Runs `validate` and returns its one error, failing unless there is exactly one.
fn one_error(r: &Repo) -> Value {
    let run = r.run(&["validate", "--output", "json"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let v = run.json();
    assert_eq!(v["errors"], 1, "{v:#}");
    v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["severity"] == "error")
        .cloned()
        .unwrap()
}

fn at(d: &Value) -> String {
    format!(
        "{}:{}:{}",
        d["file"].as_str().unwrap(),
        d["line"],
        d["column"]
    )
}

#[test]
fn a_variable_read_when_planning_cannot_go_where_only_text_may() {
    let r = repo(
        &PIPELINE.replace("team: ${var.Prefix}", "team: ${var.DbName}"),
        "dev",
        "",
    );
    let d = one_error(&r);
    assert_eq!(at(&d), "pipelines/vx/pipeline.yml:27:13", "{d:#}");
    let message = d["message"].as_str().unwrap();
    assert!(
        message.contains("a tag value cannot use variable `DbName`")
            && message.contains("`${db.Name}` (set at pipelines/vx/pipeline.yml:7:14)"),
        "{d:#}"
    );
    assert!(d["help"].as_str().unwrap().contains("parameters"), "{d:#}");

    // An environment's text value for it makes it fine there.
    let r = repo(
        &PIPELINE.replace("team: ${var.Prefix}", "team: ${var.DbName}"),
        "dev",
        "vars:\n  DbName: fixed\n",
    );
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.all());

    // In a stack name, and set by the environment.
    let r = repo(
        &PIPELINE.replace(
            "    tags:\n      team: ${var.Prefix}\n",
            "    stack_name: web-${var.Prefix}\n",
        ),
        "dev",
        "vars:\n  Prefix: ${ssm:/vx/prefix}\n",
    );
    let d = one_error(&r);
    assert_eq!(at(&d), "pipelines/vx/pipeline.yml:26:21", "{d:#}");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("(set at environments/dev/environment.yml:5:11)"),
        "{d:#}"
    );
}

#[test]
fn references_in_variable_values_are_checked_where_they_are_written() {
    // A misspelt output, in a variable no environment uses with it: reported in its value.
    let r = repo(
        &PIPELINE.replace("default: ${db.Name}", "default: ${db.Nmae}"),
        "dev",
        "",
    );
    let d = one_error(&r);
    assert_eq!(at(&d), "pipelines/vx/pipeline.yml:7:14", "{d:#}");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("has no output `Nmae`"),
        "{d:#}"
    );
    assert_eq!(d["label"], "did you mean `Name`?", "{d:#}");

    // A stack that is not there.
    let r = repo(
        &PIPELINE.replace("default: ${db.Name}", "default: x-${dbx.Name}"),
        "dev",
        "",
    );
    let d = one_error(&r);
    assert_eq!(at(&d), "pipelines/vx/pipeline.yml:7:16", "{d:#}");

    // The output of a stack disabled where a stack that uses it is deployed.
    let r = repo(PIPELINE, "dev", "stacks:\n  db:\n    enabled: false\n");
    let run = r.run(&["validate", "--output", "json"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let v = run.json();
    let messages: Vec<String> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| format!("{} {}", at(d), d["message"].as_str().unwrap()))
        .collect();
    assert!(
        messages.contains(&"pipelines/vx/pipeline.yml:7:14 stack `app` takes `${db.Name}` through variable `DbName`, but stack `db` is disabled in environment `dev`".to_string()),
        "{messages:#?}"
    );

    // A stack that takes its own output through a variable.
    let r = repo(
        &PIPELINE.replace("Value: db-value", "Value: ${var.DbName}"),
        "dev",
        "",
    );
    let d = one_error(&r);
    assert_eq!(at(&d), "pipelines/vx/pipeline.yml:7:14", "{d:#}");
    assert_eq!(
        d["message"],
        "stack `db` takes its own output `${db.Name}` through variable `DbName`"
    );

    // A variable whose value is read when planning, inside an SSM path.
    let r = repo(
        &PIPELINE.replace("Value: db-value", "Value: ${ssm:/x/${var.DbName}}"),
        "dev",
        "",
    );
    let d = one_error(&r);
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("cannot use variable `DbName`"),
        "{d:#}"
    );
}

#[test]
fn variables_that_use_each_other_in_a_cycle_are_an_error() {
    let pipeline = PIPELINE.replace(
        "  Unused:\n    default: ${ssm:/vx/nowhere}\n",
        "  A:\n    default: a-${var.B}\n  B:\n    default: ${var.Prefix}-${var.A}\n",
    );
    let r = repo(&pipeline, "dev", "");
    let d = one_error(&r);
    assert_eq!(
        d["message"],
        "variables use each other's values in a cycle: `A` → `B` → `A`"
    );
    assert_eq!(at(&d), "pipelines/vx/pipeline.yml:11:28", "{d:#}");

    // Closed by an environment's value: reported there.
    let pipeline = PIPELINE.replace(
        "  Unused:\n    default: ${ssm:/vx/nowhere}\n",
        "  A:\n    default: a-${var.B}\n  B:\n    default: b\n",
    );
    let r = repo(&pipeline, "dev", "vars:\n  B: ${var.A}\n");
    let d = one_error(&r);
    assert_eq!(at(&d), "environments/dev/environment.yml:5:6", "{d:#}");
}
