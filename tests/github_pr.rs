//! The pull-request flow end to end: `formwork plan --github-pr N` and `formwork apply --github`
//! on a real git repository, against moto server for AWS and Prism (GitHub's official OpenAPI
//! description) behind the recording server for GitHub. The plan comment is posted once and
//! edited on every push, the head commit gets its `formwork/plan` status (or check run), the
//! merge applies exactly the reviewed plan and reports on the pull request and the merge commit,
//! config errors reach the comment with their file and line, and no secret (a NoEcho parameter
//! fed from an SSM SecureString, the GitHub token) is in anything sent to GitHub or printed.
//!
//! moto gives stacks created through change sets no outputs (DESIGN.md), so the upstream stack
//! is deployed beforehand with CreateStack and the pull request changes the downstream one.

mod common;

use std::process::Command;

use aws_sdk_cloudformation::types::{Capability, Parameter};
use common::aws::{moto, unique};
use common::github::{GitHubMock, examples_of};
use common::sdk::{self, block};
use common::{Repo, Run};
use serde_json::{Value, json};

const REGION: &str = "us-east-1";
const TOKEN: &str = "ghs_actionstoken9876543210zyxwvu";
const REPO: &str = "octo-org/config";

const PIPELINE: &str = r#"pipeline: svc
vars:
  Size:
    default: small
defaults:
  parameters:
    Env: ${env.name}
stacks:
  net:
    template: templates/net.yml
  app:
    template: templates/app.yml
    parameters:
      NetName: ${net.Name}
      Secret: ${ssm:/gh/${env.name}/secret}
      Size: ${var.Size}
"#;

const NET: &str = r#"Parameters:
  Env:
    Type: String
Resources:
  Net:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /gh/${Env}/net
      Type: String
      Value: net-v1
Outputs:
  Name:
    Value: !Ref Net
"#;

const APP: &str = r#"Parameters:
  Env:
    Type: String
  NetName:
    Type: String
  Secret:
    Type: String
    NoEcho: true
  Size:
    Type: String
    AllowedValues: [small, large]
Resources:
  Config:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /gh/${Env}/app
      Type: String
      Value: !Sub "${NetName}:${Size}"
Outputs:
  ConfigName:
    Value: !Ref Config
"#;

struct World {
    env: String,
    secret: String,
    repo: Repo,
    data: tempfile::TempDir,
    mock: GitHubMock,
}

impl World {
    /// An environment whose `net` stack is deployed, its config on `main`, a SecureString
    /// secret, and a fresh recording GitHub.
    fn new(tag: &str) -> World {
        let env = unique(tag);
        let secret = format!("sup3r-secret-{env}");
        let ssm = sdk::ssm(moto(), REGION);
        let cfn = sdk::cfn(moto(), REGION);
        block(async {
            ssm.put_parameter()
                .name(format!("/gh/{env}/secret"))
                .value(&secret)
                .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                .overwrite(true)
                .send()
                .await
                .unwrap();
            cfn.create_stack()
                .stack_name(format!("{env}-net"))
                .template_body(NET)
                .parameters(
                    Parameter::builder()
                        .parameter_key("Env")
                        .parameter_value(&env)
                        .build(),
                )
                .capabilities(Capability::CapabilityNamedIam)
                .send()
                .await
                .unwrap();
        });
        let repo = Repo::new();
        repo.write("pipelines/svc/pipeline.yml", PIPELINE);
        repo.write("pipelines/svc/templates/net.yml", NET);
        repo.write("pipelines/svc/templates/app.yml", APP);
        repo.write(
            &format!("environments/{env}/environment.yml"),
            &format!("pipeline: svc\naccount: \"123456789012\"\nregion: {REGION}\n"),
        );
        repo.commit("svc");
        World {
            env,
            secret,
            repo,
            data: tempfile::tempdir().unwrap(),
            mock: GitHubMock::start(),
        }
    }

    /// Runs formwork as a GitHub Actions step would: token, repository and API URL from the
    /// environment, AWS on moto.
    fn run(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_formwork"));
        moto().configure(&mut cmd);
        for v in [
            "FORMWORK_GITHUB_TOKEN",
            "FORMWORK_GITHUB_APP_ID",
            "FORMWORK_GITHUB_REPORT",
            "FORMWORK_GITHUB_MAX_PARTS",
            "FORMWORK_GITHUB_TARGET_URL",
            "GITHUB_RUN_ATTEMPT",
            "FORMWORK_STORE",
            "FORMWORK_REPO",
        ] {
            cmd.env_remove(v);
        }
        let out = cmd
            .arg("--data-dir")
            .arg(self.data.path())
            .args(args)
            .current_dir(self.repo.path())
            .env("NO_COLOR", "1")
            .env("GITHUB_TOKEN", TOKEN)
            .env("GITHUB_REPOSITORY", REPO)
            .env("GITHUB_API_URL", &self.mock.url)
            .env("GITHUB_SERVER_URL", "https://github.example")
            .env("GITHUB_RUN_ID", "777")
            .output()
            .unwrap();
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            !run.all().contains(&self.secret),
            "secret printed:\n{}",
            run.all()
        );
        assert!(!run.all().contains(TOKEN), "token printed:\n{}", run.all());
        run
    }

    /// Runs `formwork github-event` on a payload, as the GitHub Action does.
    fn event(&self, name: &str, payload: &Value, extra: &[&str]) -> Run {
        let path = self.data.path().join(format!("{name}.json"));
        std::fs::write(&path, payload.to_string()).unwrap();
        let mut args = vec![
            "github-event",
            "--event-name",
            name,
            "--event-path",
            path.to_str().unwrap(),
        ];
        args.extend(extra);
        self.run(&args)
    }

    /// Nothing formwork sent to GitHub holds a secret, and all of it matched GitHub's schema.
    fn check_requests(&self) {
        for r in self.mock.requests() {
            assert!(
                !r.body.contains(&self.secret),
                "secret sent to GitHub: {}",
                r.body
            );
            assert!(!r.body.contains(TOKEN), "token sent in a body: {}", r.body);
            assert_eq!(
                r.authorization.as_deref(),
                Some(format!("Bearer {TOKEN}").as_str())
            );
        }
        self.mock.assert_no_violations();
    }

    /// The statuses set on `sha`: (context, state, description, target URL).
    fn statuses(&self, sha: &str) -> Vec<(String, String, String, String)> {
        self.mock
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == format!("/repos/{REPO}/statuses/{sha}"))
            .map(|r| {
                let j = r.json();
                let s = |k: &str| j[k].as_str().unwrap_or_default().to_string();
                (s("context"), s("state"), s("description"), s("target_url"))
            })
            .collect()
    }
}

#[test]
fn a_pull_request_is_planned_in_one_comment_and_applied_on_merge() {
    let w = World::new("ghpr");
    let main = w
        .repo
        .git
        .head()
        .unwrap()
        .peel_to_commit()
        .unwrap()
        .id()
        .to_string();
    w.repo.branch("change-7");
    w.repo.checkout("change-7");
    w.repo.write(
        &format!("environments/{}/environment.yml", w.env),
        &format!(
            "pipeline: svc\naccount: \"123456789012\"\nregion: {REGION}\nvars:\n  Size: large\n"
        ),
    );
    let c1 = w.repo.commit("bigger app");
    w.mock.set_pull(7, &c1, &main, None);

    let run = w.run(&["plan", "--github-pr", "7"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let comments = w.mock.comments(7);
    assert_eq!(comments.len(), 1);
    let body = &comments[0].body;
    assert!(
        body.starts_with("<!-- formwork:plan scope=* part=1 -->\n"),
        "{body}"
    );
    assert!(
        body.contains(&c1[..7]),
        "the comment names the planned commit: {body}"
    );
    assert!(body.contains("| app |") || body.contains("app"), "{body}");
    assert!(
        body.contains("****"),
        "the secret parameter is shown masked: {body}"
    );
    let statuses = w.statuses(&c1);
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert_eq!(statuses[0].0, "formwork/plan");
    assert_eq!(statuses[0].1, "pending");
    assert_eq!(statuses[1].1, "success");
    assert!(statuses[1].2.contains("to change"), "{statuses:?}");
    assert_eq!(
        statuses[1].3,
        "https://github.example/octo-org/config/actions/runs/777"
    );

    // A second push: the same comment, edited; it now names the new commit.
    w.repo.write(
        &format!("environments/{}/environment.yml", w.env),
        &format!(
            "pipeline: svc\naccount: \"123456789012\"\nregion: {REGION}\nvars:\n  Size: large\nstacks:\n  app:\n    tags:\n      team: platform\n"
        ),
    );
    let c2 = w.repo.commit("tag it");
    w.mock.set_pull(7, &c2, &main, None);
    let run = w.run(&["plan", "--github-pr", "7"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let after = w.mock.comments(7);
    assert_eq!(after.len(), 1, "one comment per pull request");
    assert_eq!(after[0].id, comments[0].id, "edited in place");
    assert!(after[0].body.contains(&c2[..7]));
    assert!(
        !after[0].body.contains(&c1[..7]),
        "the previous plan is gone"
    );
    assert!(
        w.mock
            .requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.path.ends_with(&format!("/comments/{}", after[0].id)))
    );

    // Merge: apply runs exactly the reviewed plan (of c2) and reports on the pull request and
    // the merge commit.
    w.repo.checkout("main");
    let merge = w.repo.merge("change-7", "Merge pull request #7");
    w.mock.set_pull(7, &c2, &main, Some(&merge));
    let run = w.run(&["apply", "--github", "--env", &w.env]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stderr.contains("pull request #7"), "{}", run.stderr);
    let comments = w.mock.comments(7);
    assert_eq!(comments.len(), 2, "plan and apply comments");
    let apply = &comments[1].body;
    assert!(
        apply.starts_with(&format!("<!-- formwork:apply scope={} part=1 -->\n", w.env)),
        "{apply}"
    );
    assert!(apply.contains("applied"), "{apply}");
    let statuses = w.statuses(&merge);
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert_eq!(statuses[0].0, "formwork/apply");
    assert_eq!(statuses[0].1, "pending");
    assert_eq!(statuses[1].1, "success", "{statuses:?}");
    // The stack exists now. (moto makes a second stack of the same name for the second push's
    // CREATE change set, where CloudFormation reuses the REVIEW_IN_PROGRESS one, and answers
    // the name with the first: look among all stacks.)
    let cfn = sdk::cfn(moto(), REGION);
    let statuses: Vec<String> = block(async {
        let mut pages = cfn.describe_stacks().into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            for s in page.unwrap().stacks() {
                if s.stack_name() == Some(format!("{}-app", w.env).as_str()) {
                    out.push(s.stack_status().unwrap().as_str().to_string());
                }
            }
        }
        out
    });
    assert!(
        statuses.contains(&"CREATE_COMPLETE".to_string()),
        "{statuses:?}"
    );
    w.check_requests();
}

#[test]
fn config_errors_reach_the_comment_with_file_and_line() {
    let w = World::new("gherr");
    let main = w
        .repo
        .git
        .head()
        .unwrap()
        .peel_to_commit()
        .unwrap()
        .id()
        .to_string();
    w.repo.branch("broken");
    w.repo.checkout("broken");
    w.repo.write(
        &format!("environments/{}/environment.yml", w.env),
        &format!(
            "pipeline: svc\naccount: \"123456789012\"\nregion: {REGION}\nvarz:\n  Size: large\n"
        ),
    );
    let head = w.repo.commit("typo");
    w.mock.set_pull(8, &head, &main, None);
    let run = w.run(&["plan", "--github-pr", "8"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let comments = w.mock.comments(8);
    assert_eq!(comments.len(), 1);
    let body = &comments[0].body;
    assert!(body.contains("failed"), "{body}");
    assert!(
        body.contains(&format!("environments/{}/environment.yml:4:1", w.env)),
        "{body}"
    );
    assert!(body.contains("varz") && body.contains("vars"), "{body}");
    let statuses = w.statuses(&head);
    assert_eq!(statuses.last().unwrap().1, "failure", "{statuses:?}");
    w.check_requests();
}

#[test]
fn check_runs_carry_the_plan_and_an_unreviewed_merge_is_refused() {
    let w = World::new("ghchk");
    let main = w
        .repo
        .git
        .head()
        .unwrap()
        .peel_to_commit()
        .unwrap()
        .id()
        .to_string();
    w.repo.branch("c");
    w.repo.checkout("c");
    w.repo.write(
        &format!("environments/{}/environment.yml", w.env),
        &format!(
            "pipeline: svc\naccount: \"123456789012\"\nregion: {REGION}\nvars:\n  Size: large\n"
        ),
    );
    let head = w.repo.commit("bigger");
    w.mock.set_pull(9, &head, &main, None);
    let run = w.run(&["plan", "--github-pr", "9", "--github-report", "check-run"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let reqs = w.mock.requests();
    let start = reqs
        .iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/check-runs"))
        .expect("a check run is started");
    assert_eq!(start.json()["head_sha"], head);
    assert_eq!(start.json()["status"], "in_progress");
    let done = reqs
        .iter()
        .find(|r| r.method == "PATCH" && r.path.contains("/check-runs/"))
        .expect("the check run is completed");
    assert_eq!(done.json()["conclusion"], "success");
    assert!(
        done.json()["output"]["summary"]
            .as_str()
            .unwrap()
            .contains("## formwork plan")
    );
    assert!(
        w.statuses(&head).is_empty(),
        "check runs instead of statuses"
    );

    // The merge commit came from pull request #10, which was never planned here: refused,
    // and said so on the pull request and the commit.
    w.repo.checkout("main");
    let merge = w.repo.merge("c", "Merge pull request #10");
    w.mock
        .set_pull(10, &head.replace(&head[..4], "ffff"), &main, Some(&merge));
    let run = w.run(&["apply", "--github", "--env", &w.env]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("no plan of environment"),
        "{}",
        run.stderr
    );
    let comments = w.mock.comments(10);
    assert_eq!(comments.len(), 1);
    assert!(comments[0].body.contains("failed"), "{}", comments[0].body);
    let statuses = w.statuses(&merge);
    assert_eq!(statuses.last().unwrap().1, "failure");
    let cfn = sdk::cfn(moto(), REGION);
    // The plan's CREATE change set made the stack, in REVIEW_IN_PROGRESS; nothing ran it.
    let status = block(async {
        cfn.describe_stacks()
            .stack_name(format!("{}-app", w.env))
            .send()
            .await
            .unwrap()
            .stacks()[0]
            .stack_status()
            .unwrap()
            .as_str()
            .to_string()
    });
    assert_eq!(status, "REVIEW_IN_PROGRESS", "nothing was applied");
    w.check_requests();
}

/// A real `pull_request` example payload, edited to be pull request `number` of the test
/// repository with these commits.
fn pull_request_event(action: &str, number: u64, head: &str, base: &str) -> Value {
    let mut v = examples_of("pull_request")
        .into_iter()
        .find(|e| e["action"] == action)
        .unwrap();
    v["number"] = json!(number);
    v["pull_request"]["number"] = json!(number);
    v["pull_request"]["head"]["sha"] = json!(head);
    v["pull_request"]["base"]["sha"] = json!(base);
    v["repository"]["full_name"] = json!(REPO);
    v
}

/// A real `issue_comment` example, edited: `login` comments `body` on pull request `number`.
fn comment_event(number: u64, login: &str, body: &str) -> Value {
    let mut v = examples_of("issue_comment")
        .into_iter()
        .find(|e| e["action"] == "created")
        .unwrap();
    v["issue"]["number"] = json!(number);
    v["issue"]["pull_request"] = json!({
        "url": format!("https://api.github.com/repos/{REPO}/pulls/{number}"),
    });
    v["comment"]["body"] = json!(body);
    v["comment"]["id"] = json!(555_000 + number);
    v["comment"]["user"]["login"] = json!(login);
    v["sender"]["login"] = json!(login);
    v
}

#[test]
fn github_actions_events_plan_pull_requests_and_apply_pushes() {
    let w = World::new("ghev");
    let main = w
        .repo
        .git
        .head()
        .unwrap()
        .peel_to_commit()
        .unwrap()
        .id()
        .to_string();
    w.repo.branch("ev");
    w.repo.checkout("ev");
    w.repo.write(
        &format!("environments/{}/environment.yml", w.env),
        &format!(
            "pipeline: svc\naccount: \"123456789012\"\nregion: {REGION}\nvars:\n  Size: large\n"
        ),
    );
    let head = w.repo.commit("bigger");
    w.mock.set_pull(21, &head, &main, None);

    // synchronize: planned, one sticky comment.
    let run = w.event(
        "pull_request",
        &pull_request_event("synchronize", 21, &head, &main),
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.all());
    assert_eq!(w.mock.comments(21).len(), 1);
    assert!(
        w.mock.comments(21)[0]
            .body
            .starts_with("<!-- formwork:plan scope=* part=1 -->")
    );

    // A push of the merge to the default branch applies the affected environment.
    w.repo.checkout("main");
    let merge = w.repo.merge("ev", "Merge pull request #21");
    w.mock.set_pull(21, &head, &main, Some(&merge));
    let mut push = examples_of("push")
        .into_iter()
        .find(|e| e["ref"].as_str().unwrap().starts_with("refs/heads/"))
        .unwrap();
    push["ref"] = json!("refs/heads/main");
    push["repository"]["default_branch"] = json!("main");
    push["before"] = json!(main);
    push["after"] = json!(merge);
    let run = w.event("push", &push, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let apply = w.mock.comments(21);
    assert_eq!(apply.len(), 2, "{apply:?}");
    assert!(apply[1].body.contains("succeeded"), "{}", apply[1].body);

    // A push to another branch does nothing.
    push["ref"] = json!("refs/heads/feature");
    let before = w.mock.requests().len();
    let run = w.event("push", &push, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(w.mock.requests().len(), before);
    w.check_requests();
}

#[test]
fn comment_commands_run_for_writers_only_and_bad_ones_get_help() {
    let w = World::new("ghcmd");
    let main = w
        .repo
        .git
        .head()
        .unwrap()
        .peel_to_commit()
        .unwrap()
        .id()
        .to_string();
    w.repo.branch("cmd");
    w.repo.checkout("cmd");
    w.repo.write(
        &format!("environments/{}/environment.yml", w.env),
        &format!(
            "pipeline: svc\naccount: \"123456789012\"\nregion: {REGION}\nvars:\n  Size: large\n"
        ),
    );
    let head = w.repo.commit("bigger");
    w.mock.set_pull(31, &head, &main, None);
    w.mock.set_permission("writer", "write");
    w.mock.set_permission("reader", "read");

    // A reader: politely refused, nothing planned.
    let run = w.event(
        "issue_comment",
        &comment_event(31, "reader", "/formwork plan"),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let c = w.mock.comments(31);
    assert_eq!(c.len(), 1);
    assert!(
        c[0].body
            .contains("needs write, maintain or admin permission"),
        "{}",
        c[0].body
    );
    assert!(
        !w.mock
            .requests()
            .iter()
            .any(|r| r.path.contains("/statuses/"))
    );

    // A writer, one environment and one stack: planned into that environment's comment.
    let cmd = format!("/formwork plan -e {} --stack app", w.env);
    let run = w.event("issue_comment", &comment_event(31, "writer", &cmd), &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    let c = w.mock.comments(31);
    assert_eq!(c.len(), 2);
    assert!(
        c[1].body
            .starts_with(&format!("<!-- formwork:plan scope={} part=1 -->", w.env)),
        "{}",
        c[1].body
    );
    assert!(w.mock.requests().iter().any(|r| {
        r.path == format!("/repos/{REPO}/issues/comments/{}/reactions", 555_031)
            && r.json()["content"] == "eyes"
    }));

    // Unknown command: the help, with a suggestion.
    let run = w.event(
        "issue_comment",
        &comment_event(31, "writer", "/formwork plna"),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let last = w.mock.comments(31).pop().unwrap();
    assert!(last.body.contains("plan"), "{}", last.body);
    assert!(
        last.body.contains("/formwork help") || last.body.contains("Commands"),
        "{}",
        last.body
    );

    // A command quoted in a reply does not run.
    let before = w.mock.requests().len();
    let run = w.event(
        "issue_comment",
        &comment_event(31, "writer", "> /formwork apply\nwhy would you apply?"),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(w.mock.requests().len(), before);

    // Apply before merge is off unless the workflow turns it on.
    let run = w.event(
        "issue_comment",
        &comment_event(31, "writer", "/formwork apply"),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let last = w.mock.comments(31).pop().unwrap();
    assert!(
        last.body.contains("Applying before merge is off"),
        "{}",
        last.body
    );

    // Turned on: the pull request's reviewed plan is applied at its head.
    let run = w.event(
        "issue_comment",
        &comment_event(31, "writer", "/formwork apply"),
        &["--apply-before-merge"],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let applied = w
        .mock
        .comments(31)
        .into_iter()
        .find(|c| c.body.starts_with("<!-- formwork:apply"))
        .expect("an apply comment");
    assert!(applied.body.contains("succeeded"), "{}", applied.body);

    // Unlock: recorded, and said on the pull request.
    let cmd = format!("/formwork unlock -e {}", w.env);
    let run = w.event("issue_comment", &comment_event(31, "writer", &cmd), &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let last = w.mock.comments(31).pop().unwrap();
    assert!(last.body.contains("was not locked"), "{}", last.body);
    w.check_requests();
}
