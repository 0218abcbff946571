//! `formwork import sceptre`: a realistic Sceptre project (two environments, five stacks with
//! `!stack_output` between them, `!ssm`, `!sub`, Jinja, inherited and merged stack_tags,
//! dependencies, a hook and an `on_failure`) converted; the converted repository validates, the
//! report lists the hook and the `on_failure` at their file:line:col; and after `sceptre launch`
//! of the original against moto, `formwork plan` of the converted repository finds nothing to
//! change.

use crate::common;

use std::path::Path;

use common::aws::{moto, unique};
use common::sceptre::{sceptre, sceptre_bin};
use common::sdk::formwork_on;
use common::stacks::put_secure_string;
use common::{Repo, formwork};

const NETWORK: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Prefix:
    Type: String
  Cidr:
    Type: String
Resources:
  Net:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${Prefix}/net"
      Type: String
      Value: !Ref Cidr
Outputs:
  NetName:
    Value: !Ref Net
"#;

const QUEUE: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Prefix:
    Type: String
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${Prefix}-jobs"
Outputs:
  QueueName:
    Value: !GetAtt Queue.QueueName
"#;

const DB: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Prefix:
    Type: String
  NetName:
    Type: String
  Password:
    Type: String
  Size:
    Type: String
Resources:
  Db:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${Prefix}/db"
      Type: String
      Value: !Sub "${NetName}:${Size}:${Password}"
Outputs:
  Endpoint:
    Value: !Ref Db
"#;

const APP: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Prefix:
    Type: String
  Backend:
    Type: String
  Zones:
    Type: CommaDelimitedList
Resources:
  App:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${Prefix}/app"
      Type: String
      Value: !Sub
        - "${Backend} in ${Z}"
        - Z: !Select [0, !Ref Zones]
Outputs:
  Name:
    Value: !Ref App
"#;

/// The Sceptre project, project_code `pc`: groups dev (us-east-1) and prod (eu-west-1).
///
/// The group stack_tags carry formwork's two ownership tags, as the migration guide's step
/// "tag the stacks as formwork's from Sceptre" has them added before the switch: the stacks
/// Sceptre deploys then carry what formwork puts on its own (the import leaves them out).
fn write_project(dir: &Path, pc: &str) {
    let files: Vec<(String, String)> = vec![
        ("templates/network.yaml".into(), NETWORK.into()),
        ("templates/queue.yaml".into(), QUEUE.into()),
        ("templates/data/db.yaml".into(), DB.into()),
        ("templates/app.yaml".into(), APP.into()),
        (
            "config/config.yaml".into(),
            format!("project_code: {pc}\nregion: us-east-1\n"),
        ),
        (
            "config/dev/config.yaml".into(),
            format!(
                "prefix: {pc}-dev\nstack_tags:\n  team: web\n  stage: dev\n  \
                 formwork:pipeline: shop\n  formwork:environment: dev\n"
            ),
        ),
        (
            "config/prod/config.yaml".into(),
            format!(
                "region: eu-west-1\nprefix: {pc}-prod\nstack_tags:\n  team: web\n  stage: prod\n  \
                 formwork:pipeline: shop\n  formwork:environment: prod\n"
            ),
        ),
    ];
    let mut files = files;
    for (env, cidr, extra) in [
        (
            "dev",
            "10.0.0.0/16",
            "hooks:\n  after_create:\n    - !cmd \"echo created\"\n",
        ),
        ("prod", "10.1.0.0/16", "on_failure: DELETE\n"),
    ] {
        files.push((
            format!("config/{env}/network.yaml"),
            format!(
                "template_path: network.yaml\nparameters:\n  Prefix: \"{{{{ stack_group_config.prefix }}}}\"\n  Cidr: {cidr}\n"
            ),
        ));
        files.push((
            format!("config/{env}/queue.yaml"),
            "template:\n  type: file\n  path: queue.yaml\nparameters:\n  Prefix: \"{{ stack_group_config.prefix }}\"\n".into(),
        ));
        files.push((
            format!("config/{env}/data/db.yaml"),
            format!(
                "template_path: data/db.yaml\nparameters:\n  Prefix: \"{{{{ stack_group_config.prefix }}}}\"\n  \
                 NetName: !stack_output {env}/network.yaml::NetName\n  Password: !ssm /{pc}/{env}/db-password\n  \
                 Size: small\n"
            ),
        ));
        files.push((
            format!("config/{env}/app.yaml"),
            format!(
                "template_path: app.yaml\ndependencies:\n  - {env}/queue.yaml\nstack_tags_inheritance: merge\n\
                 stack_tags:\n  tier: app\nparameters:\n  Prefix: \"{{{{ stack_group_config.prefix }}}}\"\n  \
                 Backend: !sub\n    - \"{{db}} via {{net}}\"\n    - db: !stack_output {env}/data/db.yaml::Endpoint\n      \
                 net: !stack_output {env}/network.yaml::NetName\n  Zones:\n    - a\n    - b\n{extra}"
            ),
        ));
    }
    for (rel, text) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

fn import(project: &Path, out: &Path, extra: &[&str]) -> common::Run {
    let mut args = vec![
        "import",
        "sceptre",
        project.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--pipeline",
        "shop",
        "--account",
        "123456789012",
    ];
    args.extend_from_slice(extra);
    formwork(out, &args)
}

#[test]
fn a_sceptre_project_converts_validates_and_reports_what_it_could_not_map() {
    let project = tempfile::tempdir().unwrap();
    write_project(project.path(), "shopx");
    let repo = Repo::new();
    let run = import(project.path(), repo.path(), &["--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let doc = run.json();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["environments"], serde_json::json!(["dev", "prod"]));
    let items: Vec<String> = doc["unmapped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}:{}:{} {}",
                i["file"].as_str().unwrap(),
                i["line"],
                i["column"],
                i["kind"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        items,
        [
            "config/dev/app.yaml:18:7 hook",
            "config/prod/app.yaml:16:13 stack-field"
        ],
        "{doc:#}"
    );
    assert!(
        doc["unmapped"][1]["message"]
            .as_str()
            .unwrap()
            .contains("on_failure")
    );

    let pipeline = repo.read("pipelines/shop/pipeline.yml");
    for want in [
        "  data-db:\n    template: templates/data/db.yaml\n",
        "NetName: \"${network.NetName}\"",
        "Backend: \"${data-db.Endpoint} via ${network.NetName}\"",
        "needs:\n      - queue\n",
        "stack_name: \"shopx-${env.name}-data-db\"",
        "Zones:\n        - a\n        - b\n",
        "tier: app",
    ] {
        assert!(pipeline.contains(want), "{want}\n---\n{pipeline}");
    }
    assert!(!pipeline.contains("formwork:"), "{pipeline}");
    let prod = repo.read("environments/prod/environment.yml");
    assert!(prod.contains("region: eu-west-1"), "{prod}");
    assert!(prod.contains("Cidr: \"10.1.0.0/16\""), "{prod}");
    assert!(
        prod.contains("Password: \"${ssm:/shopx/prod/db-password}\""),
        "{prod}"
    );
    assert_eq!(
        std::fs::read_to_string(repo.file("pipelines/shop/templates/data/db.yaml")).unwrap(),
        DB
    );

    let v = formwork(repo.path(), &["validate"]);
    assert_eq!(v.code, 0, "{}\n{pipeline}\n{prod}", v.all());

    // A second import refuses to overwrite, and --force does.
    let again = import(project.path(), repo.path(), &[]);
    assert_eq!(again.code, 1, "{}", again.all());
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    let forced = import(project.path(), repo.path(), &["--force"]);
    assert_eq!(forced.code, 2, "{}", forced.all());
    assert!(
        forced.stderr.contains("config/dev/app.yaml:18:7: hook:"),
        "{}",
        forced.stderr
    );
}

#[test]
fn planning_the_converted_project_after_sceptre_launch_shows_no_changes() {
    let sceptre_exe = sceptre_bin();
    let ep = moto();
    let pc = unique("sc");
    let project = tempfile::tempdir().unwrap();
    write_project(project.path(), &pc);
    for (env, region) in [("dev", "us-east-1"), ("prod", "eu-west-1")] {
        put_secure_string(
            ep,
            region,
            &format!("/{pc}/{env}/db-password"),
            &format!("pw-{env}"),
        );
    }
    for group in ["dev", "prod"] {
        let run = sceptre(ep, project.path(), &["launch", "-y", group]);
        assert_eq!(
            run.code,
            0,
            "{} launch {group}:\n{}",
            sceptre_exe.display(),
            run.all()
        );
    }

    let repo = Repo::new();
    let run = import(project.path(), repo.path(), &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    repo.commit("imported from Sceptre");
    let plan = formwork_on(ep, repo.path(), &["plan", "--output", "json"]);
    assert_eq!(
        plan.code,
        0,
        "{}\n{}",
        plan.all(),
        repo.read("pipelines/shop/pipeline.yml")
    );
    // Every stack of both environments was planned, and each has nothing to do.
    let mut actions = Vec::new();
    collect_actions(&plan.json(), &mut actions);
    assert_eq!(actions.len(), 8, "{}", plan.stdout);
    assert!(actions.iter().all(|a| a == "no_change"), "{actions:?}");
}

fn collect_actions(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let (Some(a), Some(_)) = (
                m.get("action").and_then(|a| a.as_str()),
                m.get("stack_name"),
            ) {
                out.push(a.to_string());
            }
            m.values().for_each(|x| collect_actions(x, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|x| collect_actions(x, out)),
        _ => {}
    }
}
