//! `formwork serve` end to end: the agent as its own process, a bare git repository on disk as
//! the remote, moto server for AWS, and Prism (GitHub's OpenAPI description) behind the
//! recording server for GitHub. Deliveries are GitHub's example payloads, edited to fit, signed
//! with the webhook secret.
//!
//! - a pull request opened → plan comment; merged → applied, apply comment, the status shows
//!   the commit; duplicates and bad signatures are refused and nothing is queued for them;
//! - no webhooks at all → the poller plans the pull request and the reconciler applies the merge;
//! - a pull request opened while the agent is down → planned when it starts, and not again at
//!   the next start;
//! - the agent killed (SIGKILL) mid-apply and started again → the apply completes, with every
//!   change set executed once;
//! - two agents sharing a DynamoDB store (moto) → one apply, not two.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::aws::{moto, unique};
use common::fake_aws::FakeAws;
use common::github::examples_of;
use common::pr_world::{REGION, REPO, TOKEN, World, pull_request_event};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "whsec-0b5e1c7a-serve-tests";

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bare repository holding `main` of the world's config repository.
fn remote(w: &World) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    git(d.path(), &["init", "--bare", "--quiet", "-b", "main"]);
    push(w, d.path(), "main", "refs/heads/main");
    d
}

fn push(w: &World, remote: &Path, from: &str, to: &str) {
    git(
        w.repo.path(),
        &[
            "push",
            "--quiet",
            "--force",
            remote.to_str().unwrap(),
            &format!("{from}:{to}"),
        ],
    );
}

struct Agent {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Agent {
    fn start(w: &World, remote: &Path, data: &Path, store: &str, aws_url: Option<&str>) -> Agent {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = data.join(format!("agent-{port}.log"));
        std::fs::create_dir_all(data).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_formwork"));
        moto().configure(&mut cmd);
        if let Some(u) = aws_url {
            cmd.env("AWS_ENDPOINT_URL", u);
        }
        for v in [
            "FORMWORK_GITHUB_APP_ID",
            "FORMWORK_GITHUB_TOKEN",
            "GITHUB_REPOSITORY",
        ] {
            cmd.env_remove(v);
        }
        let child = cmd
            .arg("--data-dir")
            .arg(data)
            .args(["--store", store, "-v", "serve", "--repository-url"])
            .arg(remote)
            .args(["--github-repo", REPO, "--github-api-url", &w.mock.url])
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--poll-interval",
                "1",
            ])
            .env("FORMWORK_WEBHOOK_SECRET", SECRET)
            .env("GITHUB_TOKEN", TOKEN)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let a = Agent { child, port, log };
        a.wait_for("the agent to be ready", Duration::from_secs(60), || {
            a.get("/readyz").0 == 200
        });
        a
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for(&self, what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
        let start = Instant::now();
        while !ok() {
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {what}; the agent's log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> (u16, String) {
        let Ok(mut c) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return (0, String::new());
        };
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        if c.write_all(req.as_bytes()).is_err() {
            return (0, String::new());
        }
        let mut resp = String::new();
        let _ = c.read_to_string(&mut resp);
        let code = resp
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = resp
            .split_once("\r\n\r\n")
            .map(|x| x.1)
            .unwrap_or("")
            .to_string();
        (code, body)
    }

    fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path, &[], "")
    }

    /// Delivers a webhook, signed with `secret`.
    fn deliver(&self, event: &str, id: &str, payload: &Value, secret: &str) -> (u16, Value) {
        let body = payload.to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        let sig: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let (code, text) = self.request(
            "POST",
            "/webhooks/github",
            &[
                ("Content-Type", "application/json".into()),
                ("X-GitHub-Event", event.into()),
                ("X-GitHub-Delivery", id.into()),
                ("X-Hub-Signature-256", format!("sha256={sig}")),
            ],
            &body,
        );
        (code, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn status(&self) -> Value {
        serde_json::from_str(&self.get("/api/status").1).unwrap_or(Value::Null)
    }

    fn deployed(&self, env: &str) -> Option<String> {
        self.status()["environments"]
            .as_array()?
            .iter()
            .find(|e| e["name"] == env)?["deployed_commit"]
            .as_str()
            .map(String::from)
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM; returns the exit code.
    fn terminate(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn push_event(before: &str, after: &str) -> Value {
    let mut push = examples_of("push")
        .into_iter()
        .find(|e| e["ref"].as_str().unwrap().starts_with("refs/heads/"))
        .unwrap();
    push["ref"] = json!("refs/heads/main");
    push["repository"]["default_branch"] = json!("main");
    push["repository"]["full_name"] = json!(REPO);
    push["before"] = json!(before);
    push["after"] = json!(after);
    push
}

/// A change on a branch for pull request `n`, pushed as GitHub would publish it.
fn open_pull(w: &World, remote: &Path, n: u64, base: &str) -> String {
    w.repo.branch(&format!("change-{n}"));
    w.repo.checkout(&format!("change-{n}"));
    w.repo.write(
        &format!("environments/{}/environment.yml", w.env),
        &format!(
            "pipeline: svc\naccount: \"123456789012\"\nregion: {REGION}\nvars:\n  Size: large\n"
        ),
    );
    let head = w.repo.commit("bigger app");
    push(w, remote, "HEAD", &format!("refs/heads/change-{n}"));
    push(w, remote, "HEAD", &format!("refs/pull/{n}/head"));
    w.mock.set_pull(n, &head, base, None);
    head
}

fn merge_pull(w: &World, remote: &Path, n: u64, head: &str, base: &str) -> String {
    w.repo.checkout("main");
    let m = w
        .repo
        .merge(&format!("change-{n}"), &format!("Merge pull request #{n}"));
    push(w, remote, "main", "refs/heads/main");
    w.mock.set_pull(n, head, base, Some(&m));
    m
}

/// Plans pull request `n` through its webhook, merges it and delivers the push, with every AWS
/// answer then held 300 ms by `proxy`; returns the merge once its first change set has been
/// executed (the apply is under way).
fn merged_and_executing(
    w: &World,
    remote: &Path,
    agent: &Agent,
    proxy: &FakeAws,
    n: u64,
) -> String {
    let base = main_commit(w);
    let head = open_pull(w, remote, n, &base);
    agent.deliver(
        "pull_request",
        &format!("m-{n}-1"),
        &pull_request_event("opened", n, &head, &base),
        SECRET,
    );
    agent.wait_for("the plan comment", Duration::from_secs(60), || {
        has_comment(w, n, "<!-- formwork:plan scope=* part=1 -->")
    });
    proxy.delay(300);
    let merge = merge_pull(w, remote, n, &head, &base);
    agent.deliver(
        "push",
        &format!("m-{n}-2"),
        &push_event(&base, &merge),
        SECRET,
    );
    agent.wait_for(
        "the change set to be executed",
        Duration::from_secs(60),
        || {
            proxy
                .requests()
                .iter()
                .any(|q| q.action.as_deref() == Some("ExecuteChangeSet"))
        },
    );
    merge
}

fn main_commit(w: &World) -> String {
    w.repo.head_commit()
}

fn has_comment(w: &World, n: u64, marker: &str) -> bool {
    w.mock
        .comments(n)
        .iter()
        .any(|c| c.body.starts_with(marker))
}

#[test]
fn a_pull_request_is_planned_on_its_webhook_and_applied_on_merge() {
    let w = World::new("srv");
    let remote = remote(&w);
    let data = tempfile::tempdir().unwrap();
    let agent = Agent::start(&w, remote.path(), data.path(), "sqlite", None);
    assert_eq!(agent.get("/healthz").0, 200);
    let base = main_commit(&w);
    let head = open_pull(&w, remote.path(), 7, &base);

    let (code, answer) = agent.deliver(
        "pull_request",
        "d-1",
        &pull_request_event("opened", 7, &head, &base),
        SECRET,
    );
    assert_eq!(code, 202, "{answer}");
    assert_eq!(answer["queued"], 1);
    agent.wait_for("the plan comment", Duration::from_secs(60), || {
        has_comment(&w, 7, "<!-- formwork:plan scope=* part=1 -->")
    });
    let plan = &w.mock.comments(7)[0].body;
    assert!(plan.contains(&head[..7]), "{plan}");

    // The same delivery again (GitHub redelivers): acknowledged, not queued.
    let (code, answer) = agent.deliver(
        "pull_request",
        "d-1",
        &pull_request_event("opened", 7, &head, &base),
        SECRET,
    );
    assert_eq!((code, answer["duplicate"].clone()), (200, json!(true)));
    // A bad signature: refused, nothing queued.
    let (code, _) = agent.deliver(
        "pull_request",
        "d-x",
        &pull_request_event("opened", 7, &head, &base),
        "wrong-secret",
    );
    assert_eq!(code, 401);

    let merge = merge_pull(&w, remote.path(), 7, &head, &base);
    let mut closed = pull_request_event("closed", 7, &head, &base);
    closed["pull_request"]["merged"] = json!(true);
    closed["pull_request"]["merge_commit_sha"] = json!(merge);
    assert_eq!(agent.deliver("pull_request", "d-2", &closed, SECRET).0, 202);
    assert_eq!(
        agent
            .deliver("push", "d-3", &push_event(&base, &merge), SECRET)
            .0,
        202
    );
    agent.wait_for("the apply", Duration::from_secs(60), || {
        agent.deployed(&w.env).as_deref() == Some(merge.as_str())
    });
    agent.wait_for("the apply comment", Duration::from_secs(30), || {
        has_comment(
            &w,
            7,
            &format!("<!-- formwork:apply scope={} part=1 -->", w.env),
        )
    });
    let status = agent.status();
    let runs = status["recent_runs"].as_array().unwrap();
    assert_eq!(
        runs.len(),
        1,
        "one apply for the merge and its push: {status:#}"
    );
    assert_eq!(runs[0]["status"], "succeeded");

    let (_, metrics) = agent.get("/metrics");
    for line in [
        "formwork_webhook_deliveries_total{outcome=\"accepted\"} 3",
        "formwork_webhook_deliveries_total{outcome=\"duplicate\"} 1",
        "formwork_webhook_deliveries_total{outcome=\"bad_signature\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    assert!(metrics.contains(&format!(
        "formwork_last_apply_age_seconds{{environment=\"{}\"}}",
        w.env
    )));
    let (_, page) = agent.get("/");
    rendered_in_chromium(&agent, &w.env, &merge);
    assert!(
        page.contains(&w.env) && page.contains(&merge[..12]),
        "{page}"
    );

    // The claim of the merged pull request is gone.
    assert!(
        status["environments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["claimed_by"].is_null()),
        "{status:#}"
    );
    // The environment was never applied before: at start, with no reviewed plan of the head,
    // the agent leaves it alone and says nothing on GitHub.
    assert!(
        !w.mock
            .requests()
            .iter()
            .any(|r| r.path.contains(&format!("/commits/{base}/comments"))),
        "a comment on the starting commit"
    );
    let log = agent.log();
    assert!(
        !log.contains(&w.secret) && !log.contains(SECRET) && !log.contains(TOKEN),
        "{log}"
    );
    w.check_requests();
    assert_eq!(agent.terminate(), Some(0));
}

#[test]
fn without_webhooks_the_poller_plans_and_the_reconciler_applies() {
    let w = World::new("srvpoll");
    let remote = remote(&w);
    let data = tempfile::tempdir().unwrap();
    let agent = Agent::start(&w, remote.path(), data.path(), "sqlite", None);
    let base = main_commit(&w);
    let head = open_pull(&w, remote.path(), 8, &base);
    agent.wait_for("the poller's plan", Duration::from_secs(60), || {
        has_comment(&w, 8, "<!-- formwork:plan scope=* part=1 -->")
    });
    let plan = &w.mock.comments(8)[0].body;
    assert!(
        !plan.contains("Offline"),
        "the repository's own branch is planned with AWS: {plan}"
    );
    let merge = merge_pull(&w, remote.path(), 8, &head, &base);
    agent.wait_for("the reconciler's apply", Duration::from_secs(60), || {
        agent.deployed(&w.env).as_deref() == Some(merge.as_str())
    });
    w.check_requests();
}

#[test]
fn a_pull_request_opened_while_the_agent_was_down_is_planned_when_it_starts_and_only_once() {
    let w = World::new("srvdown");
    let remote = remote(&w);
    let data = tempfile::tempdir().unwrap();
    let agent = Agent::start(&w, remote.path(), data.path(), "sqlite", None);
    assert_eq!(agent.terminate(), Some(0));

    // Opened while no agent runs: no webhook reaches it, and nothing is pushed afterwards.
    let base = main_commit(&w);
    let head = open_pull(&w, remote.path(), 61, &base);
    let plan_starts = || {
        w.statuses(&head)
            .iter()
            .filter(|(context, state, ..)| context == "formwork/plan" && state == "pending")
            .count()
    };
    let agent = Agent::start(&w, remote.path(), data.path(), "sqlite", None);
    agent.wait_for("the plan at start", Duration::from_secs(60), || {
        has_comment(&w, 61, "<!-- formwork:plan scope=* part=1 -->")
            && w.statuses(&head)
                .iter()
                .any(|(context, state, ..)| context == "formwork/plan" && state != "pending")
    });
    let comments = w.mock.comments(61);
    assert_eq!(comments.len(), 1);
    let plan = &comments[0].body;
    assert!(
        plan.contains(&head[..7]) && plan.contains("| app |"),
        "{plan}"
    );
    assert!(!plan.contains("Offline"), "planned with AWS: {plan}");
    assert_eq!(plan_starts(), 1);
    assert!(agent.log().contains("open at start"), "{}", agent.log());
    assert_eq!(agent.terminate(), Some(0));

    // Started again: the head has its plan; nothing about the pull request is sent to GitHub.
    let before = w.mock.requests().len();
    let listed = |from: usize| {
        w.mock.requests()[from..]
            .iter()
            .any(|r| r.method == "GET" && r.path == format!("/repos/{REPO}/pulls"))
    };
    let agent = Agent::start(&w, remote.path(), data.path(), "sqlite", None);
    agent.wait_for(
        "the open pull requests to be listed",
        Duration::from_secs(30),
        || listed(before),
    );
    // Long enough for a queued plan to have started (the poll runs every second).
    std::thread::sleep(Duration::from_secs(3));
    let about_61: Vec<String> = w.mock.requests()[before..]
        .iter()
        .filter(|r| {
            r.path.contains("/pulls/61") || r.path.contains("/issues/61/") || r.path.contains(&head)
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(about_61.is_empty(), "planned again: {about_61:#?}");
    assert_eq!(plan_starts(), 1);
    assert_eq!(w.mock.comments(61).len(), 1);
    assert!(!agent.log().contains("open at start"), "{}", agent.log());
    w.check_requests();
    assert_eq!(agent.terminate(), Some(0));
}

#[test]
fn an_agent_killed_mid_apply_finishes_it_after_a_restart_without_running_anything_twice() {
    let w = World::new("srvkill");
    let remote = remote(&w);
    let data = tempfile::tempdir().unwrap();
    // AWS through a proxy that counts calls and holds each answer, so the apply takes a while.
    let proxy = FakeAws::start();
    proxy.forward_to(&moto().url);
    let agent = Agent::start(&w, remote.path(), data.path(), "sqlite", Some(&proxy.url));
    let merge = merged_and_executing(&w, remote.path(), &agent, &proxy, 9);
    let executed = || {
        proxy
            .requests()
            .iter()
            .filter(|q| q.action.as_deref() == Some("ExecuteChangeSet"))
            .count()
    };
    agent.kill(); // SIGKILL, mid-apply: the run is recorded as running.

    proxy.delay(0);
    let agent = Agent::start(&w, remote.path(), data.path(), "sqlite", Some(&proxy.url));
    agent.wait_for("the apply to complete", Duration::from_secs(90), || {
        agent.deployed(&w.env).as_deref() == Some(merge.as_str())
    });
    assert_eq!(executed(), 1, "the change set was executed once");
    let status = agent.status();
    let runs = status["recent_runs"].as_array().unwrap();
    assert!(
        runs.iter().any(|r| r["status"] == "succeeded"),
        "{status:#}"
    );
    assert!(runs.iter().all(|r| r["status"] != "running"), "{status:#}");
}

#[test]
fn two_agents_sharing_a_dynamodb_store_apply_a_merge_once() {
    let w = World::new("srvha");
    let remote = remote(&w);
    let table = unique("formwork-ha");
    let store = format!("dynamodb:{table}");
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Agent::start(&w, remote.path(), d1.path(), &store, None);
    let b = Agent::start(&w, remote.path(), d2.path(), &store, None);
    let base = main_commit(&w);
    let head = open_pull(&w, remote.path(), 11, &base);
    // The delivery reaches one replica; GitHub's redelivery reaches the other: acted on once.
    let event = pull_request_event("opened", 11, &head, &base);
    assert_eq!(a.deliver("pull_request", "h-1", &event, SECRET).0, 202);
    a.wait_for("the plan comment", Duration::from_secs(60), || {
        has_comment(&w, 11, "<!-- formwork:plan scope=* part=1 -->")
    });
    let (code, answer) = b.deliver("pull_request", "h-1", &event, SECRET);
    assert_eq!(
        (code, answer["duplicate"].clone()),
        (200, json!(true)),
        "{answer}"
    );

    // The merge: both replicas hear of it (and both poll): one apply.
    let merge = merge_pull(&w, remote.path(), 11, &head, &base);
    assert_eq!(
        a.deliver("push", "h-2", &push_event(&base, &merge), SECRET)
            .0,
        202
    );
    assert_eq!(
        b.deliver("push", "h-3", &push_event(&base, &merge), SECRET)
            .0,
        202
    );
    a.wait_for("the apply", Duration::from_secs(90), || {
        a.deployed(&w.env).as_deref() == Some(merge.as_str())
            && b.deployed(&w.env).as_deref() == Some(merge.as_str())
    });
    // Let both settle (polls, queued reconciliations), then count.
    std::thread::sleep(Duration::from_secs(3));
    let runs = a.status()["recent_runs"].as_array().unwrap().clone();
    let ours: Vec<&Value> = runs
        .iter()
        .filter(|r| r["environment"] == w.env.as_str())
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "one apply run across both replicas: {runs:#?}"
    );
    w.check_requests();
}

#[test]
fn a_second_pull_request_waits_for_the_claim_and_is_planned_when_the_first_closes() {
    let w = World::new("srvclaim");
    let remote = remote(&w);
    let data = tempfile::tempdir().unwrap();
    let agent = Agent::start(&w, remote.path(), data.path(), "sqlite", None);
    let base = main_commit(&w);
    let a = open_pull(&w, remote.path(), 21, &base);
    agent.deliver(
        "pull_request",
        "c-1",
        &pull_request_event("opened", 21, &a, &base),
        SECRET,
    );
    agent.wait_for("the first plan", Duration::from_secs(60), || {
        has_comment(&w, 21, "<!-- formwork:plan scope=* part=1 -->")
    });
    // A second pull request on the same environment: told who holds it, not planned.
    w.repo.checkout("main");
    let b = open_pull(&w, remote.path(), 22, &base);
    agent.deliver(
        "pull_request",
        "c-2",
        &pull_request_event("opened", 22, &b, &base),
        SECRET,
    );
    agent.wait_for("the waiting note", Duration::from_secs(60), || {
        has_comment(&w, 22, "<!-- formwork:plan scope=* part=1 -->")
    });
    let note = w.mock.comments(22)[0].body.clone();
    assert!(note.contains("locked by pull request #21"), "{note}");
    assert!(
        !note.contains("| app |"),
        "not planned while waiting: {note}"
    );
    let status = agent.status();
    let claimed: Vec<&Value> = status["environments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["claimed_by"] == "pull request #21")
        .collect();
    assert_eq!(claimed.len(), 1, "{status:#}");

    // The first is closed without merging: its claim goes, its change sets are deleted, and
    // the second is planned.
    let cfn = common::sdk::cfn(moto(), REGION);
    let origin_sets = |origin: &str| -> usize {
        common::sdk::block(async {
            cfn.list_change_sets()
                .stack_name(format!("{}-app", w.env))
                .send()
                .await
                .map(|o| {
                    o.summaries()
                        .iter()
                        // moto lists every stack's change sets, whatever StackName says.
                        .filter(|s| {
                            s.stack_name() == Some(format!("{}-app", w.env).as_str())
                                && s.description()
                                    .is_some_and(|d| d.ends_with(&format!("origin {origin}")))
                                && s.execution_status().map(|x| x.as_str())
                                    != Some("EXECUTE_COMPLETE")
                        })
                        .count()
                })
                .unwrap_or(0)
        })
    };
    assert!(origin_sets("pr-21") > 0, "the first plan made a change set");
    let mut closed = pull_request_event("closed", 21, &a, &base);
    closed["pull_request"]["merged"] = json!(false);
    assert_eq!(agent.deliver("pull_request", "c-3", &closed, SECRET).0, 202);
    agent.wait_for("the second plan", Duration::from_secs(60), || {
        w.mock
            .comments(22)
            .first()
            .is_some_and(|c| c.body.contains("| app |"))
    });
    assert_eq!(
        origin_sets("pr-21"),
        0,
        "the closed pull request's change sets are gone; the agent's log:\n{}",
        agent.log()
    );
    let status = agent.status();
    assert!(
        status["environments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["claimed_by"] == "pull request #22"),
        "{status:#}"
    );
    // Its delivery and the poll both saw pull request #21's head: it was planned once.
    let log = agent.log();
    assert_eq!(log.matches("planning pull_request=21 ").count(), 1, "{log}");
    w.check_requests();
}

/// The status page as headless Chromium renders it: the DOM after load holds the environment
/// with its deployed commit and the finished run, and a screenshot is drawn.
fn rendered_in_chromium(agent: &Agent, env: &str, commit: &str) {
    let chromium = std::env::var("FORMWORK_TEST_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let profile = tempfile::tempdir().unwrap();
    let shot = profile.path().join("status.png");
    let url = format!("http://127.0.0.1:{}/", agent.port);
    let run = |extra: &[String]| {
        Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1200,800",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap_or_else(|e| {
                panic!("headless Chromium ({chromium}) does not run: {e}; scripts/test installs Debian's chromium, or set FORMWORK_TEST_CHROMIUM")
            })
    };
    let dom = run(&["--dump-dom".to_string()]);
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    assert!(dom.contains("<table id=\"environments\">"), "{dom}");
    let row = dom
        .split("<tr>")
        .find(|r| r.contains(&format!("<td>{env}</td>")))
        .unwrap_or_else(|| panic!("no row for {env} in {dom}"));
    assert!(row.contains(&commit[..12]), "{row}");
    assert!(dom.contains("class=\"succeeded\""), "{dom}");
    let _ = run(&[format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).expect("Chromium wrote a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5_000,
        "{} bytes",
        png.len()
    );
}

#[test]
fn the_agent_guards_its_door() {
    let w = World::new("srvsec");
    let remote = remote(&w);
    let data = tempfile::tempdir().unwrap();
    // No webhook secret: it refuses to start, and says how to fix it.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_formwork"));
    moto().configure(&mut cmd);
    let out = cmd
        .arg("--data-dir")
        .arg(data.path())
        .args(["serve", "--repository-url"])
        .arg(remote.path())
        .args(["--github-repo", REPO, "--github-api-url", &w.mock.url])
        .env_remove("FORMWORK_WEBHOOK_SECRET")
        .env("GITHUB_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("FORMWORK_WEBHOOK_SECRET") && err.contains("--insecure-no-webhook-secret"),
        "{err}"
    );

    let agent = Agent::start(&w, remote.path(), data.path(), "sqlite", None);
    let base = main_commit(&w);
    let head = open_pull(&w, remote.path(), 31, &base);
    // A delivery about another repository: acknowledged, nothing queued.
    let mut other = pull_request_event("opened", 31, &head, &base);
    other["repository"]["full_name"] = json!("someone-else/config");
    let (code, answer) = agent.deliver("pull_request", "g-1", &other, SECRET);
    assert_eq!(
        (code, answer["queued"].clone()),
        (202, json!(0)),
        "{answer}"
    );
    // A pull request from a fork: planned offline, without AWS.
    let mut fork = pull_request_event("opened", 31, &head, &base);
    fork["pull_request"]["head"]["repo"]["full_name"] = json!("mallory/config");
    fork["pull_request"]["head"]["repo"]["id"] = json!(4_242_424);
    assert_eq!(agent.deliver("pull_request", "g-2", &fork, SECRET).0, 202);
    agent.wait_for("the fork's plan", Duration::from_secs(60), || {
        has_comment(&w, 31, "<!-- formwork:plan scope=* part=1 -->")
    });
    let plan = &w.mock.comments(31)[0].body;
    assert!(plan.contains("Offline"), "{plan}");
    w.check_requests();
}

#[test]
fn pushes_in_quick_succession_leave_the_plan_of_the_newest_head() {
    let w = World::new("srvcoal");
    let remote = remote(&w);
    let data = tempfile::tempdir().unwrap();
    let agent = Agent::start(&w, remote.path(), data.path(), "sqlite", None);
    let base = main_commit(&w);
    let first = open_pull(&w, remote.path(), 41, &base);
    w.repo.write(
        &format!("environments/{}/environment.yml", w.env),
        &format!("pipeline: svc\naccount: \"123456789012\"\nregion: {REGION}\nvars:\n  Size: small\nstacks:\n  app:\n    tags:\n      team: platform\n"),
    );
    let second = w.repo.commit("tagged instead");
    push(&w, remote.path(), "HEAD", "refs/pull/41/head");
    w.mock.set_pull(41, &second, &base, None);
    agent.deliver(
        "pull_request",
        "q-1",
        &pull_request_event("synchronize", 41, &first, &base),
        SECRET,
    );
    agent.deliver(
        "pull_request",
        "q-2",
        &pull_request_event("synchronize", 41, &second, &base),
        SECRET,
    );
    agent.wait_for("the newest head's plan", Duration::from_secs(60), || {
        w.mock
            .comments(41)
            .first()
            .is_some_and(|c| c.body.contains(&second[..7]))
    });
    std::thread::sleep(Duration::from_secs(2));
    let comments = w.mock.comments(41);
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].body.contains(&second[..7]),
        "{}",
        comments[0].body
    );
}

#[test]
fn sigterm_lets_a_running_apply_finish_and_record() {
    let w = World::new("srvterm");
    let remote = remote(&w);
    let data = tempfile::tempdir().unwrap();
    let proxy = FakeAws::start();
    proxy.forward_to(&moto().url);
    let agent = Agent::start(&w, remote.path(), data.path(), "sqlite", Some(&proxy.url));
    let merge = merged_and_executing(&w, remote.path(), &agent, &proxy, 51);
    assert_eq!(agent.terminate(), Some(0));
    // Before anything else runs: the store says the apply finished and the merge is deployed.
    let out = Command::new(env!("CARGO_BIN_EXE_formwork"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["status", "--env", &w.env, "--output", "json"])
        .current_dir(w.repo.path())
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let env = &status["environments"][0];
    assert_eq!(env["deployed"]["commit"], merge.as_str(), "{status:#}");
    assert_eq!(
        env["unfinished_runs"].as_array().map(Vec::len),
        Some(0),
        "{status:#}"
    );
}

/// A commit on the default branch whose environment file is an alias bomb: refused at once,
/// recorded as a failed run of that commit with the error's position on the status, once (also
/// across a restart); the agent keeps serving, and a fix clears the error.
#[test]
fn an_alias_bomb_on_the_default_branch_fails_its_environment_and_the_agent_keeps_serving() {
    let w = World::new("srvbomb");
    let env_file = format!("environments/{}/environment.yml", w.env);
    let good = w.repo.read(&env_file);
    w.repo.write(
        &env_file,
        &format!(
            "{good}tags:\n  big: &s {}\n  a: &a [{}]\n  b: [{}]\n",
            "x".repeat(1_000_000),
            ["*s"; 10].join(", "),
            ["*a"; 10].join(", ")
        ),
    );
    let bomb = w.repo.commit("tags");
    let remote = remote(&w);
    let data = tempfile::tempdir().unwrap();
    let failed_runs = |agent: &Agent| {
        agent.status()["recent_runs"]
            .as_array()
            .map(|runs| {
                runs.iter()
                    .filter(|r| {
                        r["environment"] == w.env.as_str()
                            && r["commit"] == bomb.as_str()
                            && r["status"] == "failed"
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    let config_error = |agent: &Agent| {
        agent.status()["environments"]
            .as_array()
            .and_then(|envs| {
                envs.iter()
                    .find(|e| e["name"] == w.env.as_str())
                    .map(|e| e["config_error"].as_str().unwrap_or("").to_string())
            })
            .unwrap_or_default()
    };
    let agent = Agent::start(&w, remote.path(), data.path(), "sqlite", None);
    agent.wait_for("the failed run", Duration::from_secs(60), || {
        failed_runs(&agent) == 1
    });
    let error = config_error(&agent);
    assert!(
        error.contains(&format!("{env_file}:6:")) && error.contains("expands to more than"),
        "{error}"
    );
    assert_eq!(agent.get("/healthz").0, 200);

    // Started again on the same commit: still serving, the failure not recorded twice.
    agent.kill();
    let agent = Agent::start(&w, remote.path(), data.path(), "sqlite", None);
    agent.wait_for("the reconciliation", Duration::from_secs(60), || {
        agent.log().contains("does not resolve")
    });
    assert_eq!(failed_runs(&agent), 1);
    assert_eq!(agent.get("/healthz").0, 200);

    w.repo.write(&env_file, &good);
    w.repo.commit("fix");
    push(&w, remote.path(), "main", "refs/heads/main");
    agent.wait_for("the fix", Duration::from_secs(60), || {
        config_error(&agent).is_empty() && agent.status()["head"] == main_commit(&w).as_str()
    });
}
