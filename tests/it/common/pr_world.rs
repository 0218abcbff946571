//! A world for pull-request tests: an environment of a two-stack pipeline (`net` deployed
//! beforehand with CreateStack, since moto gives stacks made through change sets no outputs;
//! `app` with a NoEcho parameter fed from an SSM SecureString) on moto, its config repository,
//! and a fresh recording GitHub; plus GitHub's example event payloads edited to fit it.
#![allow(dead_code)]

use std::process::Command;

use aws_sdk_cloudformation::types::{Capability, Parameter};
use serde_json::{Value, json};

use super::aws::{moto, unique};
use super::github::{GitHubMock, examples_of};
use super::sdk::{self, block};
use super::{Repo, Run};

pub const REGION: &str = "us-east-1";
pub const TOKEN: &str = "ghs_actionstoken9876543210zyxwvu";
pub const REPO: &str = "octo-org/config";

pub const PIPELINE: &str = r#"pipeline: svc
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

pub const NET: &str = r#"Parameters:
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

pub const APP: &str = r#"Parameters:
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

pub struct World {
    pub env: String,
    pub secret: String,
    pub repo: Repo,
    pub data: tempfile::TempDir,
    pub mock: GitHubMock,
}

impl World {
    /// An environment whose `net` stack is deployed, its config on `main`, a SecureString
    /// secret, and a fresh recording GitHub.
    pub fn new(tag: &str) -> World {
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
    pub fn run(&self, args: &[&str]) -> Run {
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
        let run = Run::from(out);
        assert!(
            !run.all().contains(&self.secret),
            "secret printed:\n{}",
            run.all()
        );
        assert!(!run.all().contains(TOKEN), "token printed:\n{}", run.all());
        run
    }

    /// Runs `formwork github-event` on a payload, as the GitHub Action does.
    pub fn event(&self, name: &str, payload: &Value, extra: &[&str]) -> Run {
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
    pub fn check_requests(&self) {
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
    pub fn statuses(&self, sha: &str) -> Vec<(String, String, String, String)> {
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

/// A real `pull_request` example payload, edited to be pull request `number` of the test
/// repository with these commits.
pub fn pull_request_event(action: &str, number: u64, head: &str, base: &str) -> Value {
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
pub fn comment_event(number: u64, login: &str, body: &str) -> Value {
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
    v["repository"]["full_name"] = json!(REPO);
    v
}
