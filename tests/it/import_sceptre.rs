//! `formwork import sceptre`: a realistic Sceptre project (two environments, five stacks with
//! `!stack_output` between them, `!ssm`, `!sub`, Jinja, inherited and merged stack_tags,
//! dependencies, a hook, and stack options: a service role, a stack policy file, notification
//! topics, `protect`, `on_failure`, `disable_rollback`) converted; the options land in the
//! pipeline or the environments, the converted repository validates, the report lists what
//! still cannot be mapped at its file:line:col; and after `sceptre launch` and `sceptre
//! set-policy` of the original against moto, `formwork plan` of the converted repository finds
//! nothing to change, stack policy and service role included. moto fails a creation whose
//! notification topic does not exist, and Sceptre refuses to launch a protected stack, so that
//! project has neither.

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

/// A stack policy as a Sceptre project keeps it for `sceptre set-policy`.
const POLICY: &str = r#"{
  "Statement": [
    {"Effect": "Allow", "Action": "Update:*", "Principal": "*", "Resource": "*"},
    {"Effect": "Deny", "Action": ["Update:Replace", "Update:Delete"], "Principal": "*",
     "Resource": "LogicalResourceId/Db"}
  ]
}
"#;

const SERVICE_ROLE: &str = "arn:aws:iam::123456789012:role/cfn-deploy";

/// The Sceptre project, project_code `pc`: groups dev (us-east-1) and prod (eu-west-1).
///
/// Stack options: every stack has the same CloudFormation service role (config.yaml); both db
/// stacks name the stack policy file, prod's app deletes a failed creation and dev's queue
/// keeps one (`disable_rollback`). With `extra`, each group has its own notification topic,
/// and what Sceptre cannot launch or formwork cannot map is added: prod's network is protected
/// and has a stack_timeout, dev's network takes its service role from a stack output, prod's
/// queue names a policy file that does not exist.
///
/// The group stack_tags carry formwork's two ownership tags, as the migration guide's step
/// "tag the stacks as formwork's from Sceptre" has them added before the switch: the stacks
/// Sceptre deploys then carry what formwork puts on its own (the import leaves them out).
fn write_project(dir: &Path, pc: &str, extra: bool) {
    // moto publishes a stack's events to its topics, and fails a creation whose topic does not
    // exist: the topics come with `extra` only.
    let topic = |region: &str, env: &str| {
        if extra {
            format!("notifications:\n  - arn:aws:sns:{region}:123456789012:{env}-events\n")
        } else {
            String::new()
        }
    };
    let files: Vec<(String, String)> = vec![
        ("policies/db.json".into(), POLICY.into()),
        ("templates/network.yaml".into(), NETWORK.into()),
        ("templates/queue.yaml".into(), QUEUE.into()),
        ("templates/data/db.yaml".into(), DB.into()),
        ("templates/app.yaml".into(), APP.into()),
        (
            "config/config.yaml".into(),
            format!(
                "project_code: {pc}\nregion: us-east-1\ncloudformation_service_role: {SERVICE_ROLE}\n"
            ),
        ),
        (
            "config/dev/config.yaml".into(),
            format!(
                "prefix: {pc}-dev\n{}stack_tags:\n  team: web\n  stage: dev\n  \
                 formwork:pipeline: shop\n  formwork:environment: dev\n",
                topic("us-east-1", "dev")
            ),
        ),
        (
            "config/prod/config.yaml".into(),
            format!(
                "region: eu-west-1\nprefix: {pc}-prod\n{}stack_tags:\n  team: web\n  stage: prod\n  \
                 formwork:pipeline: shop\n  formwork:environment: prod\n",
                topic("eu-west-1", "prod")
            ),
        ),
    ];
    let mut files = files;
    for (env, cidr, app_extra, queue_extra, net_extra) in [
        (
            "dev",
            "10.0.0.0/16",
            "hooks:\n  after_create:\n    - !cmd \"echo created ${HOME}\"\n  before_delete:\n    - !cmd \"echo bye\"\n",
            "disable_rollback: true\n",
            "cloudformation_service_role: !stack_output dev/queue.yaml::QueueName\n",
        ),
        (
            "prod",
            "10.1.0.0/16",
            "on_failure: DELETE\n",
            "stack_policy: policies/missing.json\n",
            "protect: true\nstack_timeout: 30\n",
        ),
    ] {
        let (queue_extra, net_extra) = match (extra, env) {
            (true, _) => (queue_extra, net_extra),
            (false, "dev") => (queue_extra, ""),
            // A stack in another region than the rest of its group.
            (false, _) => ("region: us-west-2\n", ""),
        };
        files.push((
            format!("config/{env}/network.yaml"),
            format!(
                "template_path: network.yaml\nparameters:\n  Prefix: \"{{{{ stack_group_config.prefix }}}}\"\n  Cidr: {cidr}\n{net_extra}"
            ),
        ));
        files.push((
            format!("config/{env}/queue.yaml"),
            format!("template:\n  type: file\n  path: queue.yaml\nparameters:\n  Prefix: \"{{{{ stack_group_config.prefix }}}}\"\n{queue_extra}"),
        ));
        files.push((
            format!("config/{env}/data/db.yaml"),
            format!(
                "template_path: data/db.yaml\nparameters:\n  Prefix: \"{{{{ stack_group_config.prefix }}}}\"\n  \
                 NetName: !stack_output {env}/network.yaml::NetName\n  Password: !ssm /{pc}/{env}/db-password\n  \
                 Size: small\nstack_policy: ./policies/db.json\n"
            ),
        ));
        files.push((
            format!("config/{env}/app.yaml"),
            format!(
                "template_path: app.yaml\ndependencies:\n  - {env}/queue.yaml\nstack_tags_inheritance: merge\n\
                 stack_tags:\n  tier: app\nparameters:\n  Prefix: \"{{{{ stack_group_config.prefix }}}}\"\n  \
                 Backend: !sub\n    - \"{{db}} via {{net}}\"\n    - db: !stack_output {env}/data/db.yaml::Endpoint\n      \
                 net: !stack_output {env}/network.yaml::NetName\n  Zones:\n    - a\n    - b\n{app_extra}"
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
    write_project(project.path(), "shopx", true);
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
    // The stack options and the create hook are mapped; what still is not: the delete hook, a
    // service role from a stack
    // output, stack_timeout, a stack policy file that does not exist.
    assert_eq!(
        items,
        [
            "config/dev/app.yaml:20:7 hook",
            "config/dev/network.yaml:5:30 stack-field",
            "config/prod/network.yaml:6:16 stack-field",
            "config/prod/queue.yaml:6:15 stack-field",
        ],
        "{doc:#}"
    );
    let messages: Vec<&str> = doc["unmapped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["message"].as_str().unwrap())
        .collect();
    assert!(messages[1].contains("service role"), "{doc:#}");
    assert!(messages[2].contains("stack_timeout"), "{doc:#}");
    assert!(messages[3].contains("policies/missing.json"), "{doc:#}");
    for field in [
        "cloudformation_service_role`",
        "`protect`",
        "`notifications`",
        "`on_failure`",
        "`disable_rollback`",
        "`stack_policy`",
    ] {
        assert!(
            !messages.iter().any(|m| m.contains(field)),
            "{field}: {doc:#}"
        );
    }
    // What differs from Sceptre is noted, at the field.
    let notes = doc["notes"].to_string();
    assert!(
        notes.contains(
            "config/prod/network.yaml:5:10: `protect: true` became `termination_protection: true`"
        ),
        "{notes}"
    );
    assert!(
        notes.contains(
            "config/dev/queue.yaml:6:19: `disable_rollback: true` became `on_failure: do_nothing`"
        ),
        "{notes}"
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

    // Stack options: what every environment gives a stack alike in the pipeline (the service
    // role, the stack policy read from its JSON file), the rest per environment.
    assert!(
        pipeline.contains(
            "    options:\n      service_role: \"arn:aws:iam::123456789012:role/cfn-deploy\"\n      \
             stack_policy:\n        Statement:\n          - Effect: Allow\n            Action: \"Update:*\"\n"
        ),
        "{pipeline}"
    );
    assert!(
        pipeline.contains("            Action:\n              - \"Update:Replace\"\n              - \"Update:Delete\"\n"),
        "{pipeline}"
    );
    // dev's network takes its role from a stack output (reported): no role in the pipeline.
    assert!(
        pipeline.contains("  network:\n    template: templates/network.yaml\n    tags:\n      team: web\n    stack_name:"),
        "{pipeline}"
    );
    assert!(
        prod.contains(
            "  app:\n    parameters:\n      Prefix: shopx-prod\n    tags:\n      stage: prod\n    options:\n      \
             notification_arns:\n        - \"arn:aws:sns:eu-west-1:123456789012:prod-events\"\n      on_failure: delete\n"
        ),
        "{prod}"
    );
    assert!(
        prod.contains(
            "      service_role: \"arn:aws:iam::123456789012:role/cfn-deploy\"\n      termination_protection: true\n"
        ),
        "{prod}"
    );
    let dev = repo.read("environments/dev/environment.yml");
    assert!(
        dev.contains(
            "    hooks:\n      after_apply:\n        - run: \"if [ \\\"$FORMWORK_ACTION\\\" = create ]; then echo created $${HOME}; fi\"\n"
        ),
        "the create hook, in dev alone, for creations alone, its shell variable kept: {dev}"
    );
    assert!(
        !repo.read("pipelines/shop/pipeline.yml").contains("hooks:"),
        "no environment but dev has hooks"
    );
    assert!(
        dev.contains("        - \"arn:aws:sns:us-east-1:123456789012:dev-events\"\n      on_failure: do_nothing\n"),
        "{dev}"
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
        forced.stderr.contains("config/dev/app.yaml:20:7: hook:"),
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
    write_project(project.path(), &pc, false);
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
        // The stack policy, as a Sceptre project sets it: with `sceptre set-policy`.
        let stack = format!("{group}/data/db.yaml");
        let run = sceptre(
            ep,
            project.path(),
            &["set-policy", &stack, "policies/db.json"],
        );
        assert_eq!(run.code, 0, "set-policy {stack}:\n{}", run.all());
    }

    let repo = Repo::new();
    let run = import(project.path(), repo.path(), &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    let pipeline = repo.read("pipelines/shop/pipeline.yml");
    assert!(pipeline.contains("      stack_policy:\n"), "{pipeline}");
    // The queue of prod keeps its region; the environment has its other stacks' region.
    let prod = repo.read("environments/prod/environment.yml");
    assert!(prod.contains("region: eu-west-1\n"), "{prod}");
    assert!(prod.contains("    region: us-west-2\n"), "{prod}");
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
