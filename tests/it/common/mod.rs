//! Test support: real git repositories in temporary directories, a small config repository
//! ("shop") to change, and a runner for the formwork binary.
#![allow(dead_code)]

pub mod aws;
pub mod cfn_options;
pub mod fake_aws;
pub mod github;
pub mod pr_world;
pub mod receiver;
pub mod sceptre;
pub mod sdk;
pub mod stacks;

use std::path::{Path, PathBuf};
use std::process::Command;

use git2::{IndexAddOption, Repository, Signature};
use tempfile::TempDir;

/// A git repository in a temporary directory, with a work tree.
pub struct Repo {
    pub dir: TempDir,
    pub git: Repository,
}

/// What a run of the binary printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout and stderr together, for searching.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs `formwork` with `args` in `dir`, with colour off.
pub fn formwork(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_formwork"))
        .args(args)
        .current_dir(dir)
        .env_remove("FORMWORK_REPO")
        .env("NO_COLOR", "1")
        .output()
        .expect("run formwork");
    Run::from(out)
}

impl Repo {
    /// An empty repository whose branch is `main`.
    pub fn new() -> Repo {
        let dir = tempfile::tempdir().expect("temp dir");
        let git = Repository::init(dir.path()).expect("git init");
        git.set_head("refs/heads/main").expect("set head");
        Repo { dir, git }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.file(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.file(rel)).unwrap()
    }

    /// Replaces `from` by `to` in a file, failing when `from` is not there.
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        self.write(rel, &text.replacen(from, to, 1));
    }

    pub fn remove(&self, rel: &str) {
        let p = self.file(rel);
        if p.is_dir() {
            std::fs::remove_dir_all(p).unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
    }

    pub fn rename(&self, from: &str, to: &str) {
        let t = self.file(to);
        std::fs::create_dir_all(t.parent().unwrap()).unwrap();
        std::fs::rename(self.file(from), t).unwrap();
    }

    /// Copies a directory of this source tree (e.g. the bundled example) into the repository.
    pub fn copy_from_project(&self, rel: &str) {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
        copy_dir(&src, &self.file(rel));
    }

    /// A repository whose first commit holds no config (only a README), so that
    /// `--base HEAD~1` plans everything committed after it from nothing.
    pub fn empty_first() -> Repo {
        let r = Repo::new();
        r.write("README.md", "config\n");
        r.commit("empty");
        r
    }

    /// [`Repo::empty_first`], then a second commit (`message`) with the directories `rels` of
    /// this source tree copied in: a bundled pipeline and its environments, as they are.
    pub fn bundled(rels: &[&str], message: &str) -> Repo {
        let r = Repo::empty_first();
        for rel in rels {
            r.copy_from_project(rel);
        }
        r.commit(message);
        r
    }

    /// A repository whose first commit is empty (see [`Repo::empty_first`]) and whose second
    /// holds pipeline `pipeline` (its `pipeline.yml` and `templates`, by file name) and one
    /// environment `env` of it in account 123456789012 and `region`, with `env_extra` appended
    /// to its `environment.yml`.
    pub fn one_pipeline(
        pipeline: &str,
        pipeline_yml: &str,
        templates: &[(&str, &str)],
        env: &str,
        region: &str,
        env_extra: &str,
    ) -> Repo {
        let r = Repo::empty_first();
        r.write(&format!("pipelines/{pipeline}/pipeline.yml"), pipeline_yml);
        for (name, text) in templates {
            r.write(&format!("pipelines/{pipeline}/templates/{name}"), text);
        }
        r.write(
            &format!("environments/{env}/environment.yml"),
            &format!(
                "pipeline: {pipeline}\naccount: \"123456789012\"\nregion: {region}\n{env_extra}"
            ),
        );
        r.commit(pipeline);
        r
    }

    /// Stages everything (including deletions) and commits on the current branch.
    pub fn commit(&self, message: &str) -> String {
        let mut index = self.git.index().unwrap();
        index
            .add_all(["*"].iter(), IndexAddOption::DEFAULT, None)
            .unwrap();
        index.update_all(["*"].iter(), None).unwrap();
        index.write().unwrap();
        let tree_id = index.write_tree().unwrap();
        let tree = self.git.find_tree(tree_id).unwrap();
        let sig = Signature::now("Test", "test@example.com").unwrap();
        let parent = self.git.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        self.git
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
            .to_string()
    }

    /// Creates a branch at HEAD and switches to it.
    pub fn branch(&self, name: &str) {
        let head = self.git.head().unwrap().peel_to_commit().unwrap();
        self.git.branch(name, &head, false).unwrap();
        self.checkout(name);
    }

    /// Switches the work tree to a branch.
    pub fn checkout(&self, name: &str) {
        self.git.set_head(&format!("refs/heads/{name}")).unwrap();
        self.git
            .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
            .unwrap();
    }

    /// Merges branch `other` into the current branch with a merge commit (no conflicts).
    pub fn merge(&self, other: &str, message: &str) -> String {
        let ours = self.git.head().unwrap().peel_to_commit().unwrap();
        let theirs = self
            .git
            .find_branch(other, git2::BranchType::Local)
            .unwrap()
            .get()
            .peel_to_commit()
            .unwrap();
        let mut index = self.git.merge_commits(&ours, &theirs, None).unwrap();
        assert!(!index.has_conflicts(), "merge conflicts");
        let tree_id = index.write_tree_to(&self.git).unwrap();
        let tree = self.git.find_tree(tree_id).unwrap();
        let sig = Signature::now("Test", "test@example.com").unwrap();
        let id = self
            .git
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &[&ours, &theirs])
            .unwrap();
        self.git
            .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
            .unwrap();
        id.to_string()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        formwork(self.path(), args)
    }

    /// The commit HEAD points at.
    pub fn head_commit(&self) -> String {
        self.git
            .head()
            .unwrap()
            .peel_to_commit()
            .unwrap()
            .id()
            .to_string()
    }

    /// The "shop" config repository, committed on `main`.
    pub fn shop() -> Repo {
        let r = Repo::new();
        write_shop(&r);
        r.commit("shop config");
        r
    }
}

/// A file of this source tree (e.g. a bundled environment file), as text.
/// Every action an IAM policy document (`formwork iam-policy`) allows, statement by statement.
/// Asserts that `out` (the output of `formwork validate`) reports each `(what, at)`: the
/// message and the `file:line:col` it points at.
pub fn assert_reported(out: &str, expected: &[(&str, &str)]) {
    for (what, at) in expected {
        assert!(out.contains(what), "{what}: {out}");
        assert!(out.contains(at), "{what} at {at}: {out}");
    }
}

pub fn policy_actions(policy: &serde_json::Value) -> Vec<String> {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

pub fn project_file(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

pub const NETWORK: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Description: Network for the shop
Parameters:
  EnvironmentName:
    Type: String
  Cidr:
    Type: String
    Default: 10.0.0.0/16
    AllowedPattern: '\d+\.\d+\.\d+\.\d+/\d+'
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties:
      CidrBlock: !Ref Cidr
      Tags:
        - Key: Name
          Value: !Sub "${EnvironmentName}-vpc"
Outputs:
  VpcId:
    Value: !Ref Vpc
"#;

pub const DATABASE: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Description: Database for the shop
Parameters:
  EnvironmentName:
    Type: String
  VpcId:
    Type: AWS::EC2::VPC::Id
  InstanceClass:
    Type: String
    AllowedValues: [db.t3.micro, db.t3.small]
  Storage:
    Type: Number
    Default: 20
    MinValue: 20
    MaxValue: 100
  Password:
    Type: String
    NoEcho: true
    MinLength: 8
Resources:
  Group:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: !Sub "${EnvironmentName} database"
      VpcId: !Ref VpcId
  Settings:
    Type: AWS::SSM::Parameter
    Properties:
      Type: String
      Value: !Sub "${InstanceClass}/${Storage}/${Password}"
Outputs:
  Endpoint:
    Value: !Sub "db.${EnvironmentName}.internal"
  Port:
    Value: "5432"
"#;

pub const APP: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Description: The shop application
Parameters:
  EnvironmentName:
    Type: String
  DatabaseUrl:
    Type: String
  Replicas:
    Type: Number
    MinValue: 1
    MaxValue: 10
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: ecs-tasks.amazonaws.com}
            Action: sts:AssumeRole
  Config:
    Type: AWS::SSM::Parameter
    Properties:
      Type: String
      Value: !Sub "${DatabaseUrl} x${Replicas}"
Outputs:
  Url:
    Value: !Sub "https://${EnvironmentName}.shop.example.com"
"#;

pub const CDN: &str = r#"{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Description": "Static content",
  "Parameters": {"EnvironmentName": {"Type": "String"}},
  "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
  "Outputs": {"Domain": {"Value": {"Fn::GetAtt": ["Bucket", "DomainName"]}}}
}
"#;

pub const PIPELINE: &str = r#"pipeline: shop
description: A small web shop
vars:
  Prefix:
    description: Prefix of every resource name
    default: shop
defaults:
  parameters:
    EnvironmentName: ${var.Prefix}-${env.name}
  tags:
    app: shop
stacks:
  network:
    template: templates/network.yml
  database:
    template: templates/database.yml
    parameters:
      VpcId: ${network.VpcId}
      Password: ${ssm:/shop/${env.name}/db-password}
  app:
    template: templates/app.yml
    parameters:
      DatabaseUrl: postgres://${database.Endpoint}:${database.Port}/shop
  cdn:
    template: templates/cdn.json
"#;

pub const STAGING: &str = r#"pipeline: shop
account: "111111111111"
region: us-east-1
tags:
  environment: staging
stacks:
  database:
    parameters:
      InstanceClass: db.t3.micro
  app:
    parameters:
      Replicas: 1
"#;

pub const PRODUCTION: &str = r#"pipeline: shop
account: "222222222222"
region: eu-west-1
tags:
  environment: production
stacks:
  database:
    parameters:
      InstanceClass: db.t3.small
      Storage: 50
  app:
    parameters:
      Replicas: 3
"#;

/// Writes the shop config into a repository's work tree.
pub fn write_shop(r: &Repo) {
    r.write("pipelines/shop/pipeline.yml", PIPELINE);
    r.write("pipelines/shop/templates/network.yml", NETWORK);
    r.write("pipelines/shop/templates/database.yml", DATABASE);
    r.write("pipelines/shop/templates/app.yml", APP);
    r.write("pipelines/shop/templates/cdn.json", CDN);
    r.write("environments/staging/environment.yml", STAGING);
    r.write("environments/production/environment.yml", PRODUCTION);
}

/// Runs `git ARGS` in `dir` (with an author and committer of its own, so that commits work on
/// a machine without a git identity), and fails the test when git does.
pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "formwork tests")
        .env("GIT_AUTHOR_EMAIL", "tests@formwork.invalid")
        .env("GIT_COMMITTER_NAME", "formwork tests")
        .env("GIT_COMMITTER_EMAIL", "tests@formwork.invalid")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
