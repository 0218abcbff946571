//! A secret passed on through stack outputs stays masked, on moto server (the one whose stacks
//! made by change sets get their outputs, as on AWS):
//!
//! - `db` takes a password from an SSM SecureString into a NoEcho parameter and passes it on in
//!   two outputs (`!Ref Password`, and `!Sub` into a connection string);
//! - `app` takes those outputs as plain parameters (formwork must know they are secret from
//!   `db`'s template) and passes one on again as an output of its own;
//! - `report` takes `app`'s output (secret by the chain: `app`'s parameter came from a secret
//!   output).
//!
//! Planned and applied from nothing; planned and applied again with only `app` changed (so `db`
//! is not planned and its secret not read: only the config tells what is secret); and again with
//! `db` changed too (so `app`'s inputs are known after apply and show the value deployed today):
//! the password appears in no output — plan text, Markdown and JSON, apply text and JSON, status
//! — and neither in the SQLite nor in the DynamoDB store.
//!
//! (moto gives a stack no outputs when several CREATE change sets were made for it before one is
//! executed, as seen here with four plans before the first apply; on AWS they all belong to the
//! one stack. So the first apply follows one plan.)

use crate::common;

use common::aws::{moto_with_change_set_outputs, unique};
use common::sdk::{self, block, formwork_on};
use common::stacks::put_secure_string;
use common::{Repo, Run};

const REGION: &str = "us-east-1";

const PIPELINE: &str = r#"pipeline: vault
stacks:
  db:
    template: templates/db.yml
    parameters:
      Name: /vault/${env.name}/db
      Password: ${ssm:/vault/${env.name}/password}
  app:
    template: templates/app.yml
    parameters:
      Name: /vault/${env.name}/app
      Connection: ${db.Connection}
      Copy: ${db.Echo}
      Size: small
  report:
    template: templates/report.yml
    parameters:
      Name: /vault/${env.name}/report
      Value: ${app.Again}
"#;

const DB: &str = r#"Parameters:
  Name:
    Type: String
  Password:
    Type: String
    NoEcho: true
Resources:
  P:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Ref Name
      Type: String
      Value: db
Outputs:
  Connection:
    Value: !Sub "postgres://admin:${Password}@db.internal:5432/app"
  Echo:
    Value: !Ref Password
  ParamName:
    Value: !Ref P
"#;

const APP: &str = r#"Parameters:
  Name:
    Type: String
  Connection:
    Type: String
  Copy:
    Type: String
  Size:
    Type: String
Resources:
  P:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Ref Name
      Type: String
      Value: !Ref Size
Outputs:
  Again:
    Value: !Ref Copy
"#;

const REPORT: &str = r#"Parameters:
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
      Value: report
"#;

fn run(r: &Repo, args: &[&str]) -> Run {
    formwork_on(moto_with_change_set_outputs(), r.path(), args)
}

/// Fails when `password` is anywhere in what `run` printed.
fn assert_masked(what: &str, run: &Run, password: &str) {
    assert!(
        !run.all().contains(password),
        "{what} printed the password:\n{}",
        run.all()
    );
}

#[test]
fn a_secret_passed_on_through_outputs_is_masked_everywhere() {
    let env = unique("vault");
    let password = format!("Pw-{env}-f00dfeed");
    let table = unique("vaulttable");
    put_secure_string(
        moto_with_change_set_outputs(),
        REGION,
        &format!("/vault/{env}/password"),
        &password,
    );
    let r = Repo::one_pipeline(
        "vault",
        PIPELINE,
        &[("db.yml", DB), ("app.yml", APP), ("report.yml", REPORT)],
        &env,
        REGION,
        "",
    );

    // From nothing: db is created first, then app and report are planned with its outputs.
    let plan = run(&r, &["plan", "--env", &env, "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    assert_masked("plan --output json", &plan, &password);
    let applied = run(&r, &["apply", "--env", &env, "--output", "json"]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert_masked("apply --output json", &applied, &password);
    let json = applied.json();
    assert_eq!(json["run"]["status"], "succeeded", "{json:#}");

    // The outputs really carry the password (the endpoint stored it): only formwork hides it.
    let cfn = sdk::cfn(moto_with_change_set_outputs(), REGION);
    let outputs = block(async {
        cfn.describe_stacks()
            .stack_name(format!("{env}-app"))
            .send()
            .await
            .unwrap()
    });
    let again = outputs.stacks()[0]
        .outputs()
        .iter()
        .find(|o| o.output_key() == Some("Again"))
        .and_then(|o| o.output_value())
        .map(String::from);
    assert_eq!(again.as_deref(), Some(password.as_str()));

    // A change to app only: db is not planned, its secret not read from SSM; the config alone
    // says db's outputs are secret. app's inputs and its parameter diff are masked, and so is
    // report, which takes app's output.
    r.edit("pipelines/vault/pipeline.yml", "Size: small", "Size: large");
    r.commit("bigger app");
    for output in ["text", "markdown", "json"] {
        for store in [None, Some(format!("dynamodb:{table}"))] {
            let mut args = vec!["plan", "--env", &env, "--base", "HEAD~1"];
            args.extend(["--output", output]);
            if let Some(s) = &store {
                args.extend(["--store", s.as_str()]);
            }
            let plan = run(&r, &args);
            assert_eq!(plan.code, 2, "{}", plan.all());
            assert_masked(&format!("plan --output {output}"), &plan, &password);
            if output == "json" {
                let units = plan.json()["environments"][0]["units"].clone();
                let app = units
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|u| u["stack"] == "app")
                    .unwrap_or_else(|| panic!("{units:#}"));
                assert_eq!(app["action"], "update", "{app:#}");
            }
        }
    }
    let applied = run(&r, &["apply", "--env", &env]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert_masked("apply", &applied, &password);

    // db changes too: app's inputs are known after apply, shown with today's value — masked.
    r.edit(
        "pipelines/vault/pipeline.yml",
        "Name: /vault/${env.name}/db",
        "Name: /vault/${env.name}/database",
    );
    r.edit("pipelines/vault/pipeline.yml", "Size: large", "Size: small");
    r.commit("db renamed");
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
            let app = json["environments"][0]["units"]
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u["stack"] == "app")
                .cloned()
                .unwrap_or_else(|| panic!("{json:#}"));
            let inputs = app["inputs"].as_array().unwrap();
            assert!(
                inputs.iter().any(|i| i["reference"] == "${db.Echo}"
                    && i["state"] == "known_after_apply"
                    && i["current"] == "****"),
                "{app:#}"
            );
        }
    }
    let applied = run(&r, &["apply", "--env", &env, "--output", "json"]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert_masked("apply --output json", &applied, &password);
    let status = run(&r, &["status", "--env", &env]);
    assert_masked("status", &status, &password);

    // The stores hold no trace of it.
    let data = r.path().join(".formwork");
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes
                .windows(password.len())
                .any(|w| w == password.as_bytes()),
            "{} holds the password",
            path.display()
        );
    }
    let ddb = aws_sdk_dynamodb::Client::new(&sdk::config(moto_with_change_set_outputs(), REGION));
    let items = block(async { ddb.scan().table_name(&table).send().await.unwrap() });
    assert!(items.count() > 0, "the DynamoDB store holds the plans");
    let dumped = format!("{:?}", items.items());
    assert!(
        !dumped.contains(&password),
        "the DynamoDB store holds the password"
    );
}
