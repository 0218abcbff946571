//! The GitHub Action (action.yml and scripts/action-run): what it asks docker to do, checked
//! with a stand-in `docker` that records its arguments (no Docker engine runs here) and, for
//! `run`, starts the formwork binary the way the container would — so the whole step, from the
//! action's inputs to the comment on the pull request, runs against Prism (GitHub's OpenAPI
//! description) and a real git repository.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Repo;
use common::github::{GitHubMock, examples_of};
use serde_json::json;

const TOKEN: &str = "ghs_actiontoken_0123456789abcdefXYZ";

/// A stand-in for docker: records every call (one argument per line, calls separated by a
/// line `--`) in `$FAKE_DOCKER_LOG`; `run` then executes `$FAKE_DOCKER_FORMWORK` with the
/// arguments after the image, in the `--workdir`, with only the variables `--env` named.
fn fake_docker(dir: &Path) -> PathBuf {
    let path = dir.join("docker");
    std::fs::write(
        &path,
        r#"#!/usr/bin/env bash
set -euo pipefail
{ printf '%s\n' "$@"; echo --; } >>"$FAKE_DOCKER_LOG"
[[ $1 == run ]] || exit 0
shift
workdir=. names=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --rm) shift ;;
        --user | --volume) shift 2 ;;
        --workdir) workdir=$2; shift 2 ;;
        --env) names+=("$2"); shift 2 ;;
        *) break ;;
    esac
done
shift # the image
envs=(PATH="$PATH" HOME="$HOME")
for n in "${names[@]}"; do envs+=("$n=${!n}"); done
cd "$workdir"
exec env -i "${envs[@]}" "$FAKE_DOCKER_FORMWORK" "$@"
"#,
    )
    .unwrap();
    let mut perm = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&path, perm).unwrap();
    path
}

struct Step {
    code: i32,
    output: String,
    /// Every docker call's arguments.
    calls: Vec<Vec<String>>,
}

fn run_step(
    workspace: &Path,
    event: &serde_json::Value,
    inputs: &[(&str, &str)],
    extra_env: &[(&str, &str)],
) -> Step {
    let scratch = tempfile::tempdir().unwrap();
    let docker = fake_docker(scratch.path());
    let log = scratch.path().join("docker.log");
    let event_dir = scratch.path().join("_github_workflow");
    std::fs::create_dir_all(&event_dir).unwrap();
    let event_path = event_dir.join("event.json");
    std::fs::write(&event_path, event.to_string()).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(root.join("scripts/action-run"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", scratch.path())
        .env("FORMWORK_DOCKER", &docker)
        .env("FAKE_DOCKER_LOG", &log)
        .env("FAKE_DOCKER_FORMWORK", env!("CARGO_BIN_EXE_formwork"))
        .env("FORMWORK_ACTION_DIR", root)
        .env("GITHUB_WORKSPACE", workspace)
        .env("GITHUB_EVENT_PATH", &event_path)
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_REPOSITORY", "octo-org/config")
        .env("GITHUB_RUN_ID", "4242")
        .env("GITHUB_SERVER_URL", "https://github.example");
    for (k, v) in inputs.iter().chain(extra_env) {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let calls = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .split("--\n")
        .filter(|c| !c.is_empty())
        .map(|c| c.lines().map(String::from).collect())
        .collect();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!output.contains(TOKEN), "the token was printed:\n{output}");
    Step {
        code: out.status.code().unwrap_or(-1),
        output,
        calls,
    }
}

#[test]
fn the_step_builds_the_image_and_runs_it_as_the_runner_with_settings_by_name() {
    let ws = tempfile::tempdir().unwrap();
    let event = json!({"zen": "Keep it logically awesome.", "hook_id": 1});
    let s = run_step(
        ws.path(),
        &event,
        &[
            ("FORMWORK_ACTION_COMMAND", "plan"),
            ("FORMWORK_ACTION_ENVIRONMENTS", "staging,production"),
            ("FORMWORK_STORE_INPUT", "dynamodb:formwork-state"),
        ],
        &[
            ("GITHUB_EVENT_NAME", "ping"),
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "not-on-the-command-line"),
        ],
    );
    assert_eq!(s.code, 0, "{}", s.output);
    assert_eq!(s.calls.len(), 2, "{:?}", s.calls);
    let build = &s.calls[0];
    assert_eq!(build[0], "build");
    assert_eq!(build.last().unwrap(), env!("CARGO_MANIFEST_DIR"));
    let run = &s.calls[1];
    assert_eq!(run[0], "run");
    let uid = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap();
    let gid = String::from_utf8(Command::new("id").arg("-g").output().unwrap().stdout).unwrap();
    let user = format!("{}:{}", uid.trim(), gid.trim());
    let after = |flag: &str| -> Vec<&String> {
        run.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| &w[1])
            .collect()
    };
    assert_eq!(after("--user"), vec![&user]);
    let names = after("--env");
    for n in [
        "GITHUB_TOKEN",
        "GITHUB_EVENT_PATH",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        assert!(names.iter().any(|x| *x == n), "{n} not passed: {names:?}");
    }
    // Values never go on docker's command line (other users could read it).
    assert!(
        !run.iter()
            .any(|a| a.contains("not-on-the-command-line") || a.contains(TOKEN))
    );
    let i = run
        .iter()
        .position(|a| a == "formwork-action:local")
        .unwrap();
    assert_eq!(
        &run[i + 1..],
        [
            "github-event",
            "--command",
            "plan",
            "--env",
            "staging,production",
            "--store",
            "dynamodb:formwork-state"
        ]
    );
    assert!(s.output.contains("nothing to do for ping") || s.output.is_empty() || s.code == 0);
}

#[test]
fn a_bad_command_input_stops_with_a_workflow_error() {
    let ws = tempfile::tempdir().unwrap();
    let s = run_step(
        ws.path(),
        &json!({}),
        &[("FORMWORK_ACTION_COMMAND", "destroy")],
        &[("GITHUB_EVENT_NAME", "ping")],
    );
    assert_eq!(s.code, 1);
    assert!(
        s.output.contains("::error::") && s.output.contains("auto, plan, apply or affected"),
        "{}",
        s.output
    );
    assert!(s.calls.is_empty());
}

#[test]
fn a_given_image_is_run_without_building() {
    let ws = tempfile::tempdir().unwrap();
    let s = run_step(
        ws.path(),
        &json!({"zen": "z", "hook_id": 1}),
        &[("FORMWORK_ACTION_IMAGE", "ghcr.io/example/formwork:1.2.3")],
        &[("GITHUB_EVENT_NAME", "ping")],
    );
    assert_eq!(s.code, 0, "{}", s.output);
    assert_eq!(s.calls.len(), 1);
    assert!(s.calls[0].contains(&"ghcr.io/example/formwork:1.2.3".to_string()));
}

/// GitHub's example `synchronize` event, for pull request `n` from a fork (planned offline,
/// without AWS) of octo-org/config.
fn fork_pull_event(n: u64, head: &str, base: &str) -> serde_json::Value {
    let mut event = examples_of("pull_request")
        .into_iter()
        .find(|e| e["action"] == "synchronize")
        .unwrap();
    event["number"] = json!(n);
    event["pull_request"]["number"] = json!(n);
    event["pull_request"]["head"]["sha"] = json!(head);
    event["pull_request"]["base"]["sha"] = json!(base);
    event["repository"]["full_name"] = json!("octo-org/config");
    event["pull_request"]["head"]["repo"]["full_name"] = json!("someone/config-fork");
    event["pull_request"]["head"]["repo"]["id"] = json!(999_999);
    event
}

/// A pull request from a fork of the shop repository that edits one line of a file, opened on
/// the GitHub mock, and the files the step writes its outputs and summary to.
struct ForkPull {
    repo: Repo,
    mock: GitHubMock,
    event: serde_json::Value,
    files: tempfile::TempDir,
}

impl ForkPull {
    fn new(n: u64, file: &str, from: &str, to: &str) -> ForkPull {
        let repo = Repo::shop();
        let base = repo.head_commit();
        repo.branch("change");
        repo.checkout("change");
        repo.edit(file, from, to);
        let head = repo.commit("the change");
        let mock = GitHubMock::start();
        mock.set_pull(n, &head, &base, None);
        ForkPull {
            event: fork_pull_event(n, &head, &base),
            repo,
            mock,
            files: tempfile::tempdir().unwrap(),
        }
    }

    fn output(&self) -> PathBuf {
        self.files.path().join("output")
    }

    fn summary(&self) -> PathBuf {
        self.files.path().join("summary")
    }

    /// Runs the step on the pull request with the action's `inputs`.
    fn step(&self, inputs: &[(&str, &str)]) -> Step {
        let mut all = vec![("FORMWORK_ACTION_IMAGE", "img")];
        all.extend_from_slice(inputs);
        let state = self.repo.path().join(".state");
        run_step(
            self.repo.path(),
            &self.event,
            &all,
            &[
                ("GITHUB_EVENT_NAME", "pull_request"),
                ("GITHUB_API_URL", &self.mock.url),
                ("FORMWORK_DATA_DIR", state.to_str().unwrap()),
                ("GITHUB_OUTPUT", self.output().to_str().unwrap()),
                ("GITHUB_STEP_SUMMARY", self.summary().to_str().unwrap()),
                ("RUNNER_TEMP", self.files.path().to_str().unwrap()),
            ],
        )
    }
}

#[test]
fn a_pull_request_from_a_fork_is_planned_offline_and_commented_through_the_action() {
    // A config repository whose pull request changes a stack; no AWS at all (a fork's
    // workflow has no credentials): formwork plans offline.
    let pr = ForkPull::new(
        77,
        "environments/staging/environment.yml",
        "db.t3.micro",
        "db.t3.small",
    );
    let s = pr.step(&[]);
    let (mock, files, output, summary) = (&pr.mock, &pr.files, pr.output(), pr.summary());
    // A plan made and reported: the step succeeds.
    assert_eq!(s.code, 0, "{}", s.output);
    // The outputs for later steps, and the plan in the job summary (which a fork's pull
    // request gets even when its token cannot comment).
    let outputs = std::fs::read_to_string(&output).unwrap();
    let md_file = files.path().join("formwork-plan.md");
    assert!(outputs.contains("has-changes=true\n"), "{outputs}");
    assert!(
        outputs.contains("environments=[\"staging\"]\n"),
        "{outputs}"
    );
    assert!(
        outputs.contains(&format!("markdown-file={}\n", md_file.display())),
        "{outputs}"
    );
    assert!(outputs.contains("plan-id="), "{outputs}");
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.contains("database"), "{summary}");
    assert_eq!(
        std::fs::read_to_string(&md_file).unwrap().trim_end(),
        summary.trim_end()
    );
    // Where the container must see them, they are mounted.
    let run = s.calls.iter().find(|c| c[0] == "run").unwrap();
    let volumes: Vec<&String> = run
        .windows(2)
        .filter(|w| w[0] == "--volume")
        .map(|w| &w[1])
        .collect();
    let dir = files.path().display().to_string();
    assert!(
        volumes.iter().any(|v| **v == format!("{dir}:{dir}")),
        "{volumes:?}"
    );
    assert!(s.output.contains("planned offline"), "{}", s.output);
    let comments = mock.comments(77);
    assert_eq!(comments.len(), 1);
    assert!(comments[0].body.contains("Offline"), "{}", comments[0].body);
    assert!(
        comments[0].body.contains("database"),
        "{}",
        comments[0].body
    );
    mock.assert_no_violations();
}

#[test]
fn every_action_input_reaches_the_step() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml")).unwrap();
    let inputs_start = text.find("\ninputs:\n").unwrap();
    let runs_start = text.find("\nruns:\n").unwrap();
    let names: Vec<&str> = text[inputs_start..runs_start]
        .lines()
        .filter_map(|l| l.strip_prefix("  ").and_then(|l| l.strip_suffix(':')))
        .filter(|l| !l.starts_with(' '))
        .collect();
    assert!(names.len() >= 8, "{names:?}");
    for n in names {
        assert!(
            text[runs_start..].contains(&format!("inputs.{n} }}}}")),
            "input {n} is not used by the step"
        );
    }
}

/// A pull request whose config does not validate: the step fails, and each error is an
/// annotation on its file and line of the diff.
#[test]
fn config_errors_fail_the_step_and_become_annotations() {
    let pr = ForkPull::new(
        78,
        "environments/staging/environment.yml",
        "region:",
        "regoin: us-east-1\nregion:",
    );
    let s = pr.step(&[]);
    let (mock, output) = (&pr.mock, pr.output());
    assert_eq!(s.code, 1, "{}", s.output);
    let line = s
        .output
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("{}", s.output));
    assert!(
        line.starts_with("::error title=formwork,file=environments/staging/environment.yml,line="),
        "{line}"
    );
    assert!(line.contains("regoin"), "{line}");
    let outputs = std::fs::read_to_string(&output).unwrap();
    assert!(outputs.contains("has-changes=false\n"), "{outputs}");
    // The pull request is told too.
    assert_eq!(mock.comments(78).len(), 1);
    mock.assert_no_violations();
}

/// A matrix leg for an environment the pull request does not touch has nothing to do: the
/// step passes and says so in its outputs.
#[test]
fn a_matrix_leg_for_an_untouched_environment_passes() {
    let pr = ForkPull::new(
        79,
        "environments/staging/environment.yml",
        "db.t3.micro",
        "db.t3.small",
    );
    let s = pr.step(&[("FORMWORK_ACTION_ENVIRONMENTS", "production")]);
    let (mock, output) = (&pr.mock, pr.output());
    assert_eq!(s.code, 0, "{}", s.output);
    let outputs = std::fs::read_to_string(&output).unwrap();
    assert!(outputs.contains("has-changes=false\n"), "{outputs}");
    assert!(outputs.contains("environments=[]\n"), "{outputs}");
    mock.assert_no_violations();
}

/// `command: affected` on GitHub's example push event: the environments the push changes, as
/// the output a matrix of apply jobs is built from; nothing asked of GitHub or AWS.
#[test]
fn the_affected_command_gives_the_environments_a_push_changes() {
    let repo = Repo::shop();
    let before = repo.head_commit();
    repo.edit(
        "environments/staging/environment.yml",
        "db.t3.micro",
        "db.t3.small",
    );
    let after = repo.commit("bigger staging database");
    let mut event = examples_of("push").into_iter().next().unwrap();
    event["before"] = json!(before);
    event["after"] = json!(after);
    event["created"] = json!(false);
    event["deleted"] = json!(false);
    let files = tempfile::tempdir().unwrap();
    let output = files.path().join("output");
    let s = run_step(
        repo.path(),
        &event,
        &[
            ("FORMWORK_ACTION_IMAGE", "img"),
            ("FORMWORK_ACTION_COMMAND", "affected"),
        ],
        &[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_API_URL", "http://127.0.0.1:9"),
            ("GITHUB_OUTPUT", output.to_str().unwrap()),
        ],
    );
    assert_eq!(s.code, 0, "{}", s.output);
    assert_eq!(
        std::fs::read_to_string(&output).unwrap(),
        "environments=[\"staging\"]\n"
    );
}

/// The action and the example workflows are YAML a strict parser reads, and the workflows
/// behave: only `/formwork` comments start work and nothing cancels a comment's run; the apply
/// matrix is built from the environments a push changes.
#[test]
fn the_action_and_the_example_workflows_read_and_behave() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |rel: &str| {
        let text = std::fs::read_to_string(root.join(rel)).unwrap();
        formwork::yaml::parse(&text).unwrap_or_else(|e| panic!("{rel}: {e:?}"));
        text
    };
    let action = read("action.yml");
    for output in ["has-changes", "plan-id", "environments", "markdown-file"] {
        assert!(
            action.contains(&format!("  {output}:\n"))
                && action.contains(&format!("steps.formwork.outputs.{output} }}}}")),
            "output {output}"
        );
    }
    let plan = read(".github/workflows/formwork-plan.yml");
    assert!(
        !plan.contains("\nconcurrency:"),
        "no workflow-level concurrency"
    );
    assert!(
        plan.contains("cancel-in-progress: ${{ github.event_name == 'pull_request' }}"),
        "{plan}"
    );
    assert!(
        plan.contains("format('formwork-comment-{0}', github.run_id)"),
        "{plan}"
    );
    let apply = read(".github/workflows/formwork-apply.yml");
    assert!(
        apply.contains("environment: ${{ fromJSON(needs.affected.outputs.environments) }}"),
        "{apply}"
    );
    assert!(apply.contains("command: affected"), "{apply}");
    assert!(apply.contains("cancel-in-progress: false"), "{apply}");
}

/// The release artifacts of one target, packed by scripts/release-artifacts from the binary
/// under test (the release workflow runs the same script after building): a tarball whose
/// binary runs, and a SHA-256 file `sha256sum --check` accepts.
fn release_artifacts(out: &Path, triple: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(root.join("scripts/release-artifacts"))
        .args(["--target", triple, "--out"])
        .arg(out)
        .args(["--binary", env!("CARGO_BIN_EXE_formwork")])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn release_artifacts_are_packed_with_their_checksum_and_run() {
    let out = tempfile::tempdir().unwrap();
    release_artifacts(out.path(), "x86_64-unknown-linux-musl");
    let check = Command::new("sha256sum")
        .args([
            "--check",
            "formwork-x86_64-unknown-linux-musl.tar.gz.sha256",
        ])
        .current_dir(out.path())
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    let unpacked = tempfile::tempdir().unwrap();
    let tar = Command::new("tar")
        .arg("-xzf")
        .arg(out.path().join("formwork-x86_64-unknown-linux-musl.tar.gz"))
        .arg("-C")
        .arg(unpacked.path())
        .status()
        .unwrap();
    assert!(tar.success());
    let version = Command::new(unpacked.path().join("formwork"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("formwork {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(unpacked.path().join("README.md").exists());
}

/// At a version tag, the step downloads that release's binary, checks its SHA-256 and runs it
/// without docker; a binary that does not match its sum is not run.
#[test]
fn a_released_version_runs_its_checked_binary_without_docker() {
    let releases = tempfile::tempdir().unwrap();
    let version = releases.path().join("v9.9.9");
    std::fs::create_dir_all(&version).unwrap();
    release_artifacts(&version, "x86_64-unknown-linux-musl");
    let ws = tempfile::tempdir().unwrap();
    let runner_temp = tempfile::tempdir().unwrap();
    let url = format!("file://{}", releases.path().display());
    let step = |extra: &[(&str, &str)]| {
        let mut env = vec![
            ("GITHUB_EVENT_NAME", "ping"),
            ("FORMWORK_ACTION_REF", "v9.9.9"),
            ("FORMWORK_RELEASE_URL", url.as_str()),
            ("RUNNER_OS", "Linux"),
            ("RUNNER_ARCH", "X64"),
            ("RUNNER_TEMP", runner_temp.path().to_str().unwrap()),
        ];
        env.extend_from_slice(extra);
        run_step(ws.path(), &json!({"zen": "z", "hook_id": 1}), &[], &env)
    };
    let s = step(&[]);
    assert_eq!(s.code, 0, "{}", s.output);
    assert!(s.calls.is_empty(), "docker was called: {:?}", s.calls);
    assert!(s.output.contains("nothing to do"), "{}", s.output);

    // A tampered download: refused before it runs.
    let tarball = version.join("formwork-x86_64-unknown-linux-musl.tar.gz");
    let mut bytes = std::fs::read(&tarball).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&tarball, bytes).unwrap();
    let bad = step(&[]);
    assert_eq!(bad.code, 1, "{}", bad.output);
    assert!(
        bad.output
            .contains("::error::formwork: formwork-x86_64-unknown-linux-musl.tar.gz from file://")
            && bad
                .output
                .contains("does not match its SHA-256; not running it"),
        "{}",
        bad.output
    );
    assert!(!bad.output.contains("nothing to do"), "{}", bad.output);

    // A runner with no released binary is told what to do.
    let odd = step(&[("RUNNER_OS", "Windows")]);
    assert_eq!(odd.code, 1, "{}", odd.output);
    assert!(
        odd.output.contains("no released binary for Windows/X64"),
        "{}",
        odd.output
    );
}
