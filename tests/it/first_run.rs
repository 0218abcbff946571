//! What a team meets first: a CI matrix that plans each environment on every pull request, a
//! shallow clone, a runner without AWS credentials. Each gives the behaviour or the one clear
//! message a user expects.

use crate::common;

use common::Repo;
use common::aws::moto;
use common::sdk::formwork_on;

const PIPELINE: &str = "pipeline: app\nstacks:\n  topic:\n    template: templates/topic.yml\n";
const TOPIC: &str = "Parameters:\n  Name:\n    Type: String\n    Default: t\nResources:\n  Topic:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: !Ref Name\n";

/// Two environments, `dev` and `prod`, and a change that touches `prod` only.
fn two_envs() -> Repo {
    let r = Repo::one_pipeline(
        "app",
        PIPELINE,
        &[("topic.yml", TOPIC)],
        "dev",
        "us-east-1",
        "",
    );
    r.write(
        "environments/prod/environment.yml",
        "pipeline: app\naccount: \"123456789012\"\nregion: us-east-1\n",
    );
    r.commit("prod");
    r.write(
        "environments/prod/environment.yml",
        "pipeline: app\naccount: \"123456789012\"\nregion: us-east-1\nstacks:\n  topic:\n    parameters:\n      Name: prod-topic\n",
    );
    r.commit("name the prod topic");
    r
}

/// A matrix leg for an environment the change does not reach has nothing to do: exit 0, as
/// without `--env`, offline and live; an environment that exists at neither revision is an
/// error with a suggestion.
#[test]
fn planning_an_environment_the_change_does_not_reach_is_no_change() {
    let r = two_envs();
    for args in [
        &["plan", "--offline", "--env", "dev", "--base", "HEAD~1"][..],
        &[
            "plan",
            "--offline",
            "--env",
            "dev",
            "--base",
            "HEAD",
            "--head",
            "HEAD",
        ][..],
        &["plan", "--env", "dev", "--base", "HEAD~1"][..],
        &[
            "plan", "--env", "dev", "--base", "HEAD~1", "--output", "json",
        ][..],
    ] {
        let run = formwork_on(moto(), r.path(), args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.all());
        if args.contains(&"json") {
            assert_eq!(
                run.json()["environments"],
                serde_json::json!([]),
                "{}",
                run.stdout
            );
        } else {
            assert!(
                run.stdout.contains("No changes."),
                "{args:?}: {}",
                run.stdout
            );
        }
    }
    let prod = formwork_on(
        moto(),
        r.path(),
        &["plan", "--offline", "--env", "prod", "--base", "HEAD~1"],
    );
    assert_eq!(prod.code, 2, "{}", prod.all());
    let wrong = formwork_on(
        moto(),
        r.path(),
        &["plan", "--offline", "--env", "prd", "--base", "HEAD~1"],
    );
    assert_eq!(wrong.code, 1, "{}", wrong.all());
    assert!(
        wrong
            .stderr
            .contains("environment `prd` is not among those to plan (did you mean `prod`?)"),
        "{}",
        wrong.stderr
    );
}

/// actions/checkout fetches one commit unless told otherwise: the revision to compare with is
/// missing, and the message says so once, with the fix.
#[test]
fn a_shallow_clone_says_to_fetch_the_history() {
    let r = two_envs();
    let shallow = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("git")
        .args(["clone", "-q", "--depth", "1"])
        .arg(format!("file://{}", r.path().display()))
        .arg(shallow.path())
        .status()
        .unwrap();
    assert!(status.success());
    let run = common::formwork(shallow.path(), &["plan", "--offline", "--base", "HEAD~1"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let expected = "error: revision `HEAD~1` not found in the repository; this is a shallow clone, which holds only the newest commits: fetch the history (`fetch-depth: 0` for actions/checkout, or `git fetch --unshallow`)";
    assert!(run.stderr.contains(expected), "{}", run.stderr);
    assert_eq!(run.stderr.matches("not found").count(), 1, "{}", run.stderr);
    assert!(!run.stderr.contains("class="), "{}", run.stderr);

    let run = common::formwork(r.path(), &["plan", "--offline", "--base", "origin/main"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("error: revision `origin/main` not found in the repository; check the name, and fetch it first if it is a branch of the remote (`git fetch origin`)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("class="), "{}", run.stderr);
}

/// A runner without AWS credentials gets one line saying where formwork looked and what to
/// set, not the SDK's debug structures.
#[test]
fn missing_credentials_are_one_clear_message() {
    let r = two_envs();
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_formwork"))
        .args(["plan", "--env", "prod"])
        .current_dir(r.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: no AWS credentials found (looked in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the profile in ~/.aws (AWS_PROFILE), a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE), the ECS container and EC2 instance metadata); in GitHub Actions, run aws-actions/configure-aws-credentials with `role-to-assume` before formwork"),
        "{stderr}"
    );
    assert!(stderr.len() < 1000, "{} bytes: {stderr}", stderr.len());
    assert!(!stderr.contains("ProviderAttempt"), "{stderr}");
}

/// `formwork iam-policy`: the plan role's policy allows every call a plan makes (counted on
/// moto with --report-calls) and no execution; the apply role's adds executing and deleting;
/// both are scoped to the config's stacks.
#[test]
fn the_iam_policies_cover_every_call_and_no_more() {
    let r = two_envs();
    let plan_policy = r.run(&["iam-policy", "--plan", "--env", "prod"]);
    assert_eq!(plan_policy.code, 0, "{}", plan_policy.all());
    let p = plan_policy.json();
    let actions = common::policy_actions(&p);
    let stacks = &p["Statement"][0];
    assert_eq!(stacks["Sid"], "Stacks");
    assert!(
        stacks["Resource"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(
                "arn:aws:cloudformation:us-east-1:123456789012:stack/prod-topic/*"
            )),
        "{p:#}"
    );
    assert!(!actions.contains(&"cloudformation:ExecuteChangeSet".to_string()));

    let (run, _, calls) = common::stacks::plan_with_calls(moto(), &r, &["--env", "prod"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(!calls.is_empty());
    for call in calls.keys() {
        let (service, op) = call.split_once('.').unwrap();
        let action = format!("{}:{op}", service.to_lowercase());
        assert!(
            actions.contains(&action),
            "{action} is not allowed: {actions:?}"
        );
    }

    let apply = r.run(&["iam-policy", "--apply", "--store", "dynamodb:state"]);
    assert_eq!(apply.code, 0, "{}", apply.all());
    let text = apply.stdout;
    for needed in [
        "cloudformation:ExecuteChangeSet",
        "cloudformation:DeleteStack",
        "arn:aws:dynamodb:*:*:table/state",
        "stack/dev-topic/*",
    ] {
        assert!(text.contains(needed), "{needed}: {text}");
    }
    // A usage error exits 1, like every error (2 means changes).
    let neither = r.run(&["iam-policy"]);
    assert_eq!(neither.code, 1, "{}", neither.all());
    assert!(neither.stderr.contains("--plan"), "{}", neither.stderr);
}

/// `formwork init` starts a repository that validates, plans and applies as it is; its
/// workflows are YAML; running it again keeps every file.
#[test]
fn init_starts_a_repository_that_validates_plans_and_applies() {
    let dir = tempfile::tempdir().unwrap();
    // Stock moto gives stacks made by change sets no outputs; this one does, as AWS.
    let ep = common::aws::moto_with_change_set_outputs();
    let env = common::aws::unique("sandbox");
    let init = common::formwork(dir.path(), &["init", "--env", &env]);
    assert_eq!(init.code, 0, "{}", init.all());
    for f in [
        "pipelines/app/pipeline.yml".to_string(),
        format!("environments/{env}/environment.yml"),
        "schemas/pipeline.schema.json".to_string(),
        "schemas/policies.schema.json".to_string(),
        ".github/workflows/formwork-plan.yml".to_string(),
        ".github/workflows/formwork-apply.yml".to_string(),
    ] {
        let text =
            std::fs::read_to_string(dir.path().join(&f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        formwork::yaml::parse(&text).unwrap_or_else(|e| panic!("{f}: {e:?}"));
    }
    // The schema line the files start with points at a folder the repository has.
    let env_file = std::fs::read_to_string(
        dir.path()
            .join(format!("environments/{env}/environment.yml")),
    )
    .unwrap();
    assert!(
        env_file
            .starts_with("# yaml-language-server: $schema=../../schemas/environment.schema.json\n")
    );
    assert!(
        std::fs::read_to_string(dir.path().join(".gitignore"))
            .unwrap()
            .contains(".formwork/\n")
    );
    common::git(dir.path(), &["init", "-q"]);
    common::git(dir.path(), &["add", "-A"]);
    common::git(dir.path(), &["commit", "-qm", "init"]);
    let v = common::formwork(dir.path(), &["validate"]);
    assert_eq!(v.code, 0, "{}", v.all());
    let plan = formwork_on(ep, dir.path(), &["plan", "--env", &env]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let apply = formwork_on(ep, dir.path(), &["apply", "--env", &env]);
    assert_eq!(apply.code, 0, "{}", apply.all());
    let again = formwork_on(ep, dir.path(), &["plan", "--env", &env]);
    assert_eq!(again.code, 0, "{}", again.all());

    let twice = common::formwork(dir.path(), &["init", "--env", &env]);
    assert_eq!(twice.code, 0, "{}", twice.all());
    assert!(
        twice.stderr.contains("0 files written, 10 kept"),
        "{}",
        twice.stderr
    );
    let bad = common::formwork(dir.path(), &["init", "--account", "12345"]);
    assert_eq!(bad.code, 1, "{}", bad.all());
    assert!(
        bad.stderr
            .contains("`12345` is not an AWS account id: give the 12 digits with --account"),
        "{}",
        bad.stderr
    );
}

/// Shell completions and manual pages come from the same definitions as the command line.
#[test]
fn completions_and_manual_pages_are_generated() {
    let dir = tempfile::tempdir().unwrap();
    let bash = common::formwork(dir.path(), &["completions", "bash"]);
    assert_eq!(bash.code, 0, "{}", bash.all());
    assert!(bash.stdout.contains("iam-policy") && bash.stdout.contains("--offline"));
    let script = dir.path().join("formwork.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(syntax.success());
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let run = common::formwork(dir.path(), &["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.all());
        assert!(run.stdout.contains("formwork"), "{shell}");
    }
    let man = common::formwork(dir.path(), &["man", "--dir", "man"]);
    assert_eq!(man.code, 0, "{}", man.all());
    let page = std::fs::read_to_string(dir.path().join("man/formwork-plan.1")).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("offline"), "{page}");
    assert!(dir.path().join("man/formwork.1").exists());
}

/// A stack may be called `ssm` (Sceptre projects often have one): `${ssm.Output}` is its
/// output and `${ssm:/path}` still a parameter; `env` and `var` stay reserved.
#[test]
fn a_stack_called_ssm_is_a_stack() {
    let pipeline = "pipeline: app\nstacks:\n  ssm:\n    template: templates/topic.yml\n  topic:\n    template: templates/topic.yml\n    parameters:\n      Name: ${ssm.TopicName}\n      Other: ${ssm:/app/${env.name}/other}\n";
    let topic = "Parameters:\n  Name:\n    Type: String\n    Default: t\n  Other:\n    Type: String\n    Default: o\nResources:\n  Topic:\n    Type: AWS::SNS::Topic\nOutputs:\n  TopicName:\n    Value: !GetAtt Topic.TopicName\n";
    let r = Repo::one_pipeline(
        "app",
        pipeline,
        &[("topic.yml", topic)],
        "dev",
        "us-east-1",
        "",
    );
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 0, "{}", v.all());
    let g = r.run(&["graph", "--env", "dev", "--output", "json"]);
    assert_eq!(g.code, 0, "{}", g.all());
    assert_eq!(g.json()["waves"], serde_json::json!([["ssm"], ["topic"]]));
    r.edit("pipelines/app/pipeline.yml", "  ssm:\n", "  env:\n");
    r.edit(
        "pipelines/app/pipeline.yml",
        "${ssm.TopicName}",
        "${env.name}",
    );
    r.commit("env");
    let bad = r.run(&["validate"]);
    assert_eq!(bad.code, 1, "{}", bad.all());
    assert!(
        bad.stderr.contains("error: `env` cannot be a stack key"),
        "{}",
        bad.stderr
    );
}
