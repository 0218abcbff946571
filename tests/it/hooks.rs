//! Hooks: commands apply runs before and after it creates or updates a stack, in a checkout of
//! the commit applied (scripts of the repository with their executable bit), with the stack's
//! facts and outputs in their environment, their output masked; a failing hook fails its stack
//! and nothing of it is changed.

use crate::common;

use common::Repo;
use common::aws::{moto_with_change_set_outputs as moto, unique};
use common::sdk::formwork_on_with;
use common::stacks;

const REGION: &str = "us-east-1";

const TEMPLATE: &str = "\
Parameters:
  Label:
    Type: String
  Password:
    Type: String
    NoEcho: true
Resources:
  Setting:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /hooks/${Label}
      Type: String
      Value: !Ref Label
Outputs:
  SettingName:
    Value: !Ref Setting
";

#[test]
fn hooks_run_around_the_apply_of_their_stack_and_a_failing_one_stops_it() {
    let env = unique("hooks");
    let secret = format!("hook-secret-{env}");
    let secret_path = format!("/{env}/password");
    stacks::put_secure_string(moto(), REGION, &secret_path, &secret);
    let log = std::env::temp_dir().join(format!("{env}.log"));
    let log_text = log.display().to_string();
    let pipeline = format!(
        "\
pipeline: hk
stacks:
  db:
    template: templates/db.yml
    parameters:
      Label: ${{env.name}}-db
      Password: ${{ssm:{secret_path}}}
    hooks:
      before_apply:
        - run: echo \"before $FORMWORK_STACK_NAME $FORMWORK_ACTION ${{env.region}}\" >> \"$HOOK_LOG\"
        - run: ./scripts/check.sh db
      after_apply:
        - run: echo \"after $FORMWORK_OUTPUT_SettingName\" >> \"$HOOK_LOG\"; echo \"the password is $HOOK_SECRET\"
  app:
    template: templates/db.yml
    needs: [db]
    parameters:
      Label: ${{env.name}}-app
      Password: ${{ssm:{secret_path}}}
"
    );
    let env_extra = "\
stacks:
  app:
    hooks:
      before_apply:
        - run: echo \"not today\" >&2; exit 3
";
    let r = Repo::one_pipeline(
        "hk",
        &pipeline,
        &[("db.yml", TEMPLATE)],
        &env,
        REGION,
        env_extra,
    );
    r.write(
        "scripts/check.sh",
        "#!/bin/sh\necho \"checked $1 in $(basename \"$PWD\" | cut -c1-15)\" >> \"$HOOK_LOG\"\n",
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            r.file("scripts/check.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    r.commit("hooks");
    // A file of the work tree that is not committed is not in the checkout hooks run in.
    r.write("scripts/uncommitted.sh", "#!/bin/sh\n");
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 0, "{}", v.all());

    let vars = [
        ("HOOK_LOG", log_text.as_str()),
        ("HOOK_SECRET", secret.as_str()),
    ];
    let plan = formwork_on_with(moto(), r.path(), &vars, &["plan", "--env", &env]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    assert!(!log.exists(), "plans run no hook");
    assert!(
        plan.stdout.contains("hooks apply runs:")
            && plan.stdout.contains("before_apply: ./scripts/check.sh db")
            && plan
                .stdout
                .contains("before_apply: echo \"not today\" >&2; exit 3"),
        "reviewers see the commands: {}",
        plan.stdout
    );
    let applied = formwork_on_with(moto(), r.path(), &vars, &["apply", "--env", &env]);
    assert_eq!(applied.code, 1, "app's hook fails: {}", applied.all());
    let out = applied.all();
    assert!(!out.contains(&secret), "the secret leaked: {out}");
    assert!(
        out.contains(&format!("{env}/db: | the password is ****")),
        "a hook's output is shown, masked: {out}"
    );
    assert!(
        out.contains("before_apply hook 1 (`echo \"not today\" >&2; exit 3`")
            && out.contains("failed with exit code 3; its last output:")
            && out.contains("not today"),
        "why app failed: {out}"
    );
    let written = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines.len(), 3, "{written}");
    assert_eq!(lines[0], format!("before {env}-db create {REGION}"));
    assert!(
        lines[1].starts_with("checked db in formwork-hooks-"),
        "{written}"
    );
    let setting = stacks::output(moto(), REGION, &format!("{env}-db"), "SettingName");
    assert_eq!(
        lines[2],
        format!("after {setting}"),
        "outputs reach after_apply hooks"
    );
    assert!(
        stacks::describe_opt(moto(), REGION, &format!("{env}-app")).is_none_or(|s| s
            .stack_status()
            .is_some_and(|st| st.as_str() == "REVIEW_IN_PROGRESS")),
        "app's change set was not executed"
    );
    let _ = std::fs::remove_file(&log);
}

#[test]
fn bad_hooks_are_reported_where_they_are_written() {
    let pipeline = "\
pipeline: hk
stacks:
  db:
    template: templates/db.yml
    parameters:
      Label: x
      Password: y
    hooks:
      before_apply:
        - run: ./check ${var.Missing}
      after_apply:
        - run: ./smoke
          timeout_seconds: 0
";
    let env_extra = "\
stacks:
  db:
    hooks:
      after_apply:
        - run: ' '
        - {run: ./x, retries: 2}
";
    let r = Repo::one_pipeline(
        "hk",
        pipeline,
        &[("db.yml", TEMPLATE)],
        "dev",
        REGION,
        env_extra,
    );
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 1, "{}", v.all());
    let out = v.all();
    common::assert_reported(
        &out,
        &[
            (
                "unknown field `retries`",
                "environments/dev/environment.yml:9:22",
            ),
            (
                "variable `Missing` is not declared",
                "pipelines/hk/pipeline.yml:10:24",
            ),
        ],
    );
    // With the unknown field gone, the environment's phase replaces the pipeline's: its empty
    // command is reported, the pipeline's timeout no longer applies.
    r.edit("environments/dev/environment.yml", ", retries: 2", "");
    r.commit("fixed");
    let out = r.run(&["validate"]).all();
    assert!(
        out.contains("a hook with an empty command")
            && out.contains("environments/dev/environment.yml:8:16"),
        "{out}"
    );
    assert!(!out.contains("timeout_seconds is 0"), "{out}");
    r.edit(
        "environments/dev/environment.yml",
        "      after_apply:\n        - run: ' '\n        - {run: ./x}\n",
        "      before_apply: []\n",
    );
    r.commit("pipeline's after_apply");
    let out = r.run(&["validate"]).all();
    assert!(
        out.contains("timeout_seconds is 0; a hook may run 1 to 3600 seconds")
            && out.contains("pipelines/hk/pipeline.yml:13:28"),
        "{out}"
    );
}
