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
//! - two agents sharing a DynamoDB store (moto) → one apply, not two;
//! - the HTTP port's limits: 60 wrongly signed or unsigned 20 MB posts at once → 401 or 503,
//!   and the agent's peak memory stays within its body budget; a body over 25 MiB → 413 (from
//!   the headers alone when declared), with or without a webhook secret; slow headers, a slow
//!   body and an idle kept-alive connection → cut off at their timeouts; connections over the
//!   cap → served once one closes.

use crate::common;
use common::git;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::aws::{moto, unique};
use common::fake_aws::FakeAws;
use common::github::examples_of;
use common::pr_world::{REGION, REPO, TOKEN, World, comment_event, pull_request_event};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "whsec-0b5e1c7a-serve-tests";

/// A bare repository holding `main` of the world's config repository.
pub(crate) fn remote(w: &World) -> tempfile::TempDir {
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

pub(crate) struct Agent {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Agent {
    fn start(w: &World, remote: &Path, data: &Path, store: &str, aws_url: Option<&str>) -> Agent {
        let global = |cmd: &mut Command| {
            cmd.env("FORMWORK_WEBHOOK_SECRET", SECRET)
                .args(["--store", store]);
            if let Some(u) = aws_url {
                cmd.env("AWS_ENDPOINT_URL", u);
            }
        };
        Agent::spawn(w, remote, data, global, &[])
    }

    /// An agent with the SQLite store and `settings` (YAML) in its settings file; without the
    /// webhook secret (`--insecure-no-webhook-secret`) unless `signed`.
    pub(crate) fn start_with(
        w: &World,
        remote: &Path,
        data: &Path,
        settings: &str,
        signed: bool,
    ) -> Agent {
        Agent::start_configured(w, remote, data, settings, signed, None, &[])
    }

    /// [`Agent::start_with`], with AWS at `aws_url` when given and the environment variables
    /// `vars`.
    pub(crate) fn start_configured(
        w: &World,
        remote: &Path,
        data: &Path,
        settings: &str,
        signed: bool,
        aws_url: Option<&str>,
        vars: &[(&str, &str)],
    ) -> Agent {
        let file = data.join(format!("formwork-server-{}.yml", unique("settings")));
        std::fs::create_dir_all(data).unwrap();
        std::fs::write(
            &file,
            format!("repository:\n  url: unused\ngithub:\n  repository: {REPO}\n{settings}"),
        )
        .unwrap();
        let global = |cmd: &mut Command| {
            cmd.env("FORMWORK_SERVER_CONFIG", &file);
            if let Some(u) = aws_url {
                cmd.env("AWS_ENDPOINT_URL", u);
            }
            cmd.envs(vars.iter().copied());
            if signed {
                cmd.env("FORMWORK_WEBHOOK_SECRET", SECRET);
            } else {
                cmd.env_remove("FORMWORK_WEBHOOK_SECRET");
            }
        };
        let flags: &[&str] = if signed {
            &[]
        } else {
            &["--insecure-no-webhook-secret"]
        };
        Agent::spawn(w, remote, data, global, flags)
    }

    /// Starts `formwork serve` on a free port, with what `global` adds before `serve` and
    /// `flags` after it (polling every second unless `flags` set `--poll-interval`), and waits
    /// until it is ready.
    fn spawn(
        w: &World,
        remote: &Path,
        data: &Path,
        global: impl FnOnce(&mut Command),
        flags: &[&str],
    ) -> Agent {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = data.join(format!("agent-{port}.log"));
        std::fs::create_dir_all(data).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_formwork"));
        moto().configure(&mut cmd);
        for v in [
            "FORMWORK_GITHUB_APP_ID",
            "FORMWORK_GITHUB_TOKEN",
            "GITHUB_REPOSITORY",
        ] {
            cmd.env_remove(v);
        }
        cmd.arg("--data-dir").arg(data);
        global(&mut cmd);
        cmd.args(["-v", "serve", "--repository-url"])
            .arg(remote)
            .args(["--github-repo", REPO, "--github-api-url", &w.mock.url])
            .args(["--listen", &format!("127.0.0.1:{port}")]);
        if !flags.contains(&"--poll-interval") {
            cmd.args(["--poll-interval", "1"]);
        }
        cmd.args(flags);
        let child = cmd
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

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn wait_for(&self, what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
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

    pub(crate) fn request(
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

    /// The agent's peak resident set so far (`VmHWM`), in bytes.
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmHWM in {status}"));
        kib * 1024
    }

    /// How many deliveries `/metrics` counts with `outcome`.
    fn deliveries(&self, outcome: &str) -> u64 {
        let metrics = self.get("/metrics").1;
        let line = format!("formwork_webhook_deliveries_total{{outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .map_or(0, |n| n.parse().unwrap())
    }

    pub(crate) fn get(&self, path: &str) -> (u16, String) {
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

    pub(crate) fn kill(mut self) {
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

/// The status code of an HTTP response's first line (0 when there is none).
fn status_of(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Reads from `c` up to the end of a response's head (and perhaps some of its body), or until
/// the connection closes or the read times out.
fn read_head(c: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Reads one whole response (with a Content-Length) from a kept-alive connection: its status
/// and body; `None` when the connection closes or the read times out first.
fn read_response(c: &mut TcpStream) -> Option<(u16, String)> {
    let head = read_head(c);
    let (head, start) = head.split_once("\r\n\r\n")?;
    let length: usize = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })?;
    let mut body = start.as_bytes().to_vec();
    let mut rest = vec![0u8; length.checked_sub(body.len())?];
    c.read_exact(&mut rest).ok()?;
    body.extend_from_slice(&rest);
    Some((status_of(head), String::from_utf8(body).ok()?))
}

/// A GET of `/healthz` that keeps the connection open.
const HEALTHZ_KEEP_ALIVE: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// Posts `body` to the webhook endpoint on a connection of its own, with `headers`, declared
/// with Content-Length or sent chunked. The answer is read while the body is still being sent
/// (the agent may answer before it reads the body, and close): the head of the answer, empty
/// when the connection closed without one.
fn post_body(port: u16, headers: &[(&str, String)], body: &[u8], chunked: bool) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(300))).unwrap();
    let mut reader = c.try_clone().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap();
    let answer = std::thread::spawn(move || read_head(&mut reader));
    let mut req =
        String::from("POST /webhooks/github HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if chunked {
        req.push_str("Transfer-Encoding: chunked\r\n");
    } else {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    // Stops at the first failed write: the agent answered and closed.
    let _ = (|| -> std::io::Result<()> {
        c.write_all(req.as_bytes())?;
        for piece in body.chunks(64 * 1024) {
            if chunked {
                c.write_all(format!("{:x}\r\n", piece.len()).as_bytes())?;
                c.write_all(piece)?;
                c.write_all(b"\r\n")?;
            } else {
                c.write_all(piece)?;
            }
        }
        if chunked {
            c.write_all(b"0\r\n\r\n")?;
        }
        Ok(())
    })();
    answer.join().unwrap()
}

/// Headers of a delivery signed with a well-formed signature that is not the body's.
fn wrongly_signed(id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-GitHub-Event", "push".to_string()),
        ("X-GitHub-Delivery", id.to_string()),
        ("X-Hub-Signature-256", format!("sha256={}", "0".repeat(64))),
    ]
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
    // Counted once the apply has returned, a moment after its comment.
    let age = format!(
        "formwork_last_apply_age_seconds{{environment=\"{}\"}}",
        w.env
    );
    agent.wait_for("the apply's age metric", Duration::from_secs(30), || {
        agent.get("/metrics").1.contains(&age)
    });
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
    // The operator's first line, and log lines without terminal colours (NO_COLOR, a file).
    let log = agent.log();
    assert!(
        log.contains(&format!(
            "formwork serve: listening on http://127.0.0.1:{}/ (webhooks: POST /webhooks/github, health: /healthz, status: /), repository {REPO}",
            agent.port
        )),
        "{log}"
    );
    assert!(log.contains(" INFO "), "{log}");
    assert!(!log.contains('\u{1b}'), "{log}");
}

/// `--log-format json` writes one JSON object per log line, for log collectors.
#[test]
fn logs_can_be_json_lines() {
    let w = World::new("srvjson");
    let remote = remote(&w);
    let data = tempfile::tempdir().unwrap();
    let global = |cmd: &mut Command| {
        cmd.env("FORMWORK_WEBHOOK_SECRET", SECRET)
            .args(["--log-format", "json"]);
    };
    let agent = Agent::spawn(&w, remote.path(), data.path(), global, &[]);
    let base = main_commit(&w);
    open_pull(&w, remote.path(), 3, &base);
    agent.wait_for("the poller's plan", Duration::from_secs(60), || {
        has_comment(&w, 3, "<!-- formwork:plan scope=* part=1 -->")
    });
    let log = agent.log();
    let mut objects = 0;
    for line in log.lines().filter(|l| !l.starts_with("formwork serve: ")) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["level"].is_string() && v["fields"]["message"].is_string(),
            "{line}"
        );
        objects += 1;
    }
    assert!(objects > 0, "{log}");
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
    assert!(
        agent.log().contains("open, with no plan of its head"),
        "{}",
        agent.log()
    );
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

#[test]
fn large_unsigned_deliveries_are_refused_in_bounded_memory() {
    let w = World::new("srvbig");
    let remote = remote(&w);
    let data = tempfile::tempdir().unwrap();
    let agent = Agent::start(&w, remote.path(), data.path(), "sqlite", None);
    let idle = agent.peak_rss();
    // 60 posts of 20 MB at once, a well-formed but wrong signature on most, none on a quarter;
    // one in ten sent chunked.
    let body: Arc<Vec<u8>> = Arc::new(vec![b' '; 20_000_000]);
    let posts: Vec<_> = (0..60)
        .map(|i| {
            let (body, port) = (body.clone(), agent.port);
            std::thread::spawn(move || {
                let mut headers = wrongly_signed(&format!("big-{i}"));
                if i % 4 == 3 {
                    headers.pop();
                }
                post_body(port, &headers, &body, i % 10 == 0)
            })
        })
        .collect();
    let answers: Vec<String> = posts.into_iter().map(|p| p.join().unwrap()).collect();
    let peak = agent.peak_rss();
    let codes: Vec<u16> = answers.iter().map(|a| status_of(a)).collect();
    eprintln!(
        "the agent's peak RSS: {} MiB idle, {} MiB after the posts; answers {codes:?}",
        idle >> 20,
        peak >> 20
    );
    assert!(codes.iter().all(|c| matches!(c, 401 | 503)), "{answers:#?}");
    for busy in answers.iter().filter(|a| status_of(a) == 503) {
        assert!(
            busy.to_ascii_lowercase().contains("\r\nretry-after: 5\r\n"),
            "{busy}"
        );
    }
    let count = |code| codes.iter().filter(|c| **c == code).count() as u64;
    assert_eq!(agent.deliveries("bad_signature"), count(401));
    assert_eq!(agent.deliveries("busy"), count(503));
    // Bodies take at most the budget (64 MiB by default); the margin is for the rest of what
    // 60 connections at once use.
    let bound = idle + (64 << 20) + (40 << 20);
    assert!(
        peak < bound,
        "peak RSS {} MiB, over {} MiB (idle {} MiB)",
        peak >> 20,
        bound >> 20,
        idle >> 20
    );
    assert_eq!(agent.get("/healthz"), (200, "ok\n".to_string()));
    let ping = examples_of("ping").into_iter().next().unwrap();
    assert_eq!(agent.deliver("ping", "big-ok", &ping, SECRET).0, 202);
}

#[test]
fn a_body_over_the_maximum_is_refused_signed_or_not() {
    let w = World::new("srvmax");
    let remote = remote(&w);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let signed = Agent::start(&w, remote.path(), d1.path(), "sqlite", None);
    let unsigned = Agent::start_with(&w, remote.path(), d2.path(), "", false);
    for agent in [&signed, &unsigned] {
        // Declared over 25 MiB: answered from the headers alone, no byte of the body sent.
        let mut c = TcpStream::connect(("127.0.0.1", agent.port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut req = String::from(
            "POST /webhooks/github HTTP/1.1\r\nHost: localhost\r\nContent-Length: 26214401\r\n",
        );
        for (k, v) in wrongly_signed("max-1") {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        c.write_all(format!("{req}\r\n").as_bytes()).unwrap();
        let answer = read_head(&mut c);
        assert_eq!(status_of(&answer), 413, "{answer}");
        // Sent chunked: cut off once past the maximum.
        let body = vec![b' '; 26 << 20];
        let answer = post_body(agent.port, &wrongly_signed("max-2"), &body, true);
        assert_eq!(status_of(&answer), 413, "{answer}");
        assert_eq!(agent.deliveries("too_large"), 2);
    }
    // Without a secret, a delivery within the limits is still read.
    let ping = examples_of("ping").into_iter().next().unwrap();
    let (code, answer) = unsigned.request(
        "POST",
        "/webhooks/github",
        &[
            ("X-GitHub-Event", "ping".into()),
            ("X-GitHub-Delivery", "max-3".into()),
        ],
        &ping.to_string(),
    );
    assert_eq!(code, 202, "{answer}");
}

/// The settings of the agents that cut slow clients off quickly.
const SHORT_TIMEOUTS: &str =
    "http:\n  header_read_timeout_seconds: 2\n  body_read_timeout_seconds: 2\n";

/// How long after a timeout the agent may take to act on it, on a loaded machine.
const MARGIN: Duration = Duration::from_secs(10);

#[test]
fn slow_clients_are_cut_off() {
    let w = World::new("srvslow");
    let remote = remote(&w);
    let data = tempfile::tempdir().unwrap();
    let agent = Agent::start_with(&w, remote.path(), data.path(), SHORT_TIMEOUTS, true);
    let timeout = Duration::from_secs(2);

    // Headers a byte at a time, every 300 ms: closed 2 s after the connection opened.
    let start = Instant::now();
    let mut c = TcpStream::connect(("127.0.0.1", agent.port)).unwrap();
    let mut reader = c.try_clone().unwrap();
    reader.set_read_timeout(Some(timeout + MARGIN)).unwrap();
    let closed = std::thread::spawn(move || {
        let answer = read_head(&mut reader);
        (start.elapsed(), answer)
    });
    for b in b"POST /webhooks/github HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}" {
        if closed.is_finished() || c.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let (after, answer) = closed.join().unwrap();
    assert!(
        after >= timeout && after < timeout + MARGIN,
        "closed after {after:?}: {answer:?}"
    );
    assert!(!answer.starts_with("HTTP/1.1 2"), "{answer}");

    // A body a byte at a time, every 300 ms, after prompt headers: 408, 2 s after they came.
    let mut c = TcpStream::connect(("127.0.0.1", agent.port)).unwrap();
    let mut reader = c.try_clone().unwrap();
    reader.set_read_timeout(Some(timeout + MARGIN)).unwrap();
    let mut req = String::from(
        "POST /webhooks/github HTTP/1.1\r\nHost: localhost\r\nContent-Length: 200\r\n",
    );
    for (k, v) in wrongly_signed("slow-1") {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    c.write_all(format!("{req}\r\n").as_bytes()).unwrap();
    let start = Instant::now();
    let answered = std::thread::spawn(move || {
        let answer = read_head(&mut reader);
        (start.elapsed(), answer)
    });
    for _ in 0..200 {
        if answered.is_finished() || c.write_all(b" ").is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let (after, answer) = answered.join().unwrap();
    assert_eq!(status_of(&answer), 408, "{answer}");
    assert!(after < timeout + MARGIN, "answered after {after:?}");
    assert_eq!(agent.deliveries("timeout"), 1);

    // A kept-alive connection (answered twice) left idle is closed too.
    let mut c = TcpStream::connect(("127.0.0.1", agent.port)).unwrap();
    c.set_read_timeout(Some(timeout + MARGIN)).unwrap();
    for _ in 0..2 {
        c.write_all(HEALTHZ_KEEP_ALIVE).unwrap();
        assert_eq!(read_response(&mut c), Some((200, "ok\n".to_string())));
    }
    let idle = Instant::now();
    let mut rest = Vec::new();
    let closed = c.read_to_end(&mut rest);
    assert!(
        matches!(closed, Ok(0)) && idle.elapsed() < timeout + MARGIN,
        "{closed:?} after {:?}",
        idle.elapsed()
    );
    assert_eq!(agent.get("/healthz"), (200, "ok\n".to_string()));
}

#[test]
fn connections_over_the_cap_wait_until_one_closes() {
    let w = World::new("srvcap");
    let remote = remote(&w);
    let data = tempfile::tempdir().unwrap();
    let settings = "http:\n  max_connections: 8\n  header_read_timeout_seconds: 600\n";
    let agent = Agent::start_with(&w, remote.path(), data.path(), settings, true);
    // Eight kept-alive connections, each answered once: all eight are the agent's.
    let mut open: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut c = TcpStream::connect(("127.0.0.1", agent.port)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            c.write_all(HEALTHZ_KEEP_ALIVE).unwrap();
            assert_eq!(read_response(&mut c), Some((200, "ok\n".to_string())));
            c
        })
        .collect();
    // A ninth is not served while they are open…
    let mut ninth = TcpStream::connect(("127.0.0.1", agent.port)).unwrap();
    ninth.write_all(HEALTHZ_KEEP_ALIVE).unwrap();
    ninth
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut byte = [0u8; 1];
    let early = ninth.read(&mut byte);
    assert!(
        early.as_ref().is_err_and(|e| matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )),
        "{early:?}"
    );
    // …and is once one of them closes.
    drop(open.pop());
    ninth
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(read_response(&mut ninth), Some((200, "ok\n".to_string())));
    assert!(
        agent.log().contains("every connection is in use"),
        "{}",
        agent.log()
    );
    drop(ninth);
    drop(open);
    agent.wait_for("the agent to answer again", Duration::from_secs(60), || {
        agent.get("/healthz").0 == 200
    });
}

/// What formwork wrote to GitHub in `requests`, in order, made comparable between two worlds:
/// comment texts (new or edited), reactions and commit statuses, with the environment's name,
/// commit ids, plan and run ids, ARN ids and times replaced by placeholders.
fn writes(w: &World, requests: &[common::github::Recorded]) -> Vec<String> {
    let sha = regex::Regex::new(r"\b[0-9a-f]{7,40}\b").unwrap();
    let ids = regex::Regex::new(r"\br?\d{8}-\d{6}-").unwrap();
    let time = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z").unwrap();
    // The ids in stack and change set ARNs (in console links).
    let uuid =
        regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap();
    let clean = |t: &str| {
        let t = t.replace(&w.env, "ENV");
        let t = uuid.replace_all(&t, "UUID");
        let t = time.replace_all(&t, "TIME");
        let t = ids.replace_all(&t, "ID-");
        sha.replace_all(&t, "SHA").into_owned()
    };
    requests
        .iter()
        .filter_map(|r| {
            let j = r.json();
            let what = match (r.method.as_str(), r.path.as_str()) {
                ("POST", p) if p.ends_with("/reactions") => {
                    format!("reaction {}", j["content"].as_str().unwrap_or_default())
                }
                ("POST" | "PATCH", p) if p.contains("/comments") => {
                    format!("comment {}", j["body"].as_str().unwrap_or_default())
                }
                ("POST", p) if p.contains("/statuses/") => format!(
                    "status {} {}",
                    j["context"].as_str().unwrap_or_default(),
                    j["state"].as_str().unwrap_or_default()
                ),
                ("DELETE", _) => "delete".to_string(),
                _ => return None,
            };
            Some(clean(&what))
        })
        .collect()
}

/// The same events, in the same order, given to the GitHub Action's step (`formwork
/// github-event`) in one world and to the agent's webhook in another world alike: the same work
/// is done and the same things are said on GitHub, comment commands included (help, a
/// malformed command, a reader refused, a plan of one environment, apply before merge when it is
/// off, unlock), from the pull request's opening to its merge.
#[test]
fn the_action_and_the_agent_answer_the_same_events_alike() {
    let step = World::new("doorstep");
    let daemon = World::new("doorsrv");
    let (step_remote, daemon_remote) = (remote(&step), remote(&daemon));
    let data = tempfile::tempdir().unwrap();
    // Polling off: only the deliveries below may make the agent act, as only they make the
    // Action's step act (a poll could plan the pull request before its "opened" is delivered).
    let agent = Agent::spawn(
        &daemon,
        daemon_remote.path(),
        data.path(),
        |cmd| {
            cmd.env("FORMWORK_WEBHOOK_SECRET", SECRET)
                .args(["--store", "sqlite"]);
        },
        &["--poll-interval", "0"],
    );
    let mut heads = Vec::new();
    for (w, remote) in [(&step, &step_remote), (&daemon, &daemon_remote)] {
        w.mock.set_permission("writer", "write");
        w.mock.set_permission("reader", "read");
        let base = main_commit(w);
        let head = open_pull(w, remote.path(), 41, &base);
        heads.push((base, head));
    }
    let mut deliveries = 0;
    // Runs one event through both doors; returns what each wrote.
    let mut both = |name: &str, payload: &dyn Fn(&World, &str, &str) -> Value| {
        let mut seen: Vec<Vec<String>> = Vec::new();
        for (i, w) in [&step, &daemon].into_iter().enumerate() {
            let (base, head) = &heads[i];
            let before = w.mock.requests().len();
            let event = payload(w, base, head);
            if i == 0 {
                let run = w.event(name, &event, &[]);
                assert_eq!(run.code, 0, "{}", run.all());
            } else {
                deliveries += 1;
                let (code, answer) =
                    agent.deliver(name, &format!("door-{deliveries}"), &event, SECRET);
                assert_eq!(code, 202, "{answer}");
                let want = seen[0].len();
                agent.wait_for("the agent's answer", Duration::from_secs(60), || {
                    let status = agent.status();
                    writes(w, &w.mock.requests()[before..]).len() >= want
                        && status["queue_depth"] == 0
                        && status["jobs_running"] == 0
                });
            }
            seen.push(writes(w, &w.mock.requests()[before..]));
        }
        assert_eq!(seen[0], seen[1], "the doors answered {name} differently");
        seen.remove(0)
    };

    let opened = both("pull_request", &|_, base, head| {
        pull_request_event("opened", 41, head, base)
    });
    assert!(
        opened
            .iter()
            .any(|w| w.starts_with("comment <!-- formwork:plan scope=* part=1 -->")),
        "{opened:#?}"
    );
    let comment = |body: &'static str, login: &'static str| {
        move |w: &World, _: &str, _: &str| comment_event(41, login, &body.replace("ENV", &w.env))
    };
    let help = both("issue_comment", &comment("/formwork help", "writer"));
    assert!(help[0].contains("/formwork plan"), "{help:#?}");
    let bad = both("issue_comment", &comment("/formwork plna", "writer"));
    assert_eq!(bad[0], "reaction confused", "{bad:#?}");
    let refused = both("issue_comment", &comment("/formwork plan", "reader"));
    assert!(
        refused[1].contains("needs write, maintain or admin permission"),
        "{refused:#?}"
    );
    let planned = both("issue_comment", &comment("/formwork plan -e ENV", "writer"));
    assert_eq!(planned[0], "reaction eyes", "{planned:#?}");
    assert!(
        planned
            .iter()
            .any(|w| w.starts_with("comment <!-- formwork:plan scope=ENV part=1 -->")),
        "{planned:#?}"
    );
    let off = both("issue_comment", &comment("/formwork apply", "writer"));
    assert!(off[1].contains("Applying before merge is off"), "{off:#?}");
    let unlocked = both(
        "issue_comment",
        &comment("/formwork unlock -e ENV", "writer"),
    );
    assert!(
        unlocked[1].contains("- `ENV`: unlocked (was held by pull request #41)"),
        "{unlocked:#?}"
    );

    // The merge, pushed: the environment is brought to it, and the pull request told.
    let mut merges = Vec::new();
    for (w, remote) in [(&step, &step_remote), (&daemon, &daemon_remote)] {
        let i = merges.len();
        merges.push(merge_pull(w, remote.path(), 41, &heads[i].1, &heads[i].0));
    }
    let applied = both("push", &|w, base, _| {
        let merge = main_commit(w);
        push_event(base, &merge)
    });
    assert!(
        applied
            .iter()
            .any(|w| w.starts_with("comment <!-- formwork:apply scope=ENV")),
        "{applied:#?}"
    );
    assert_eq!(
        agent.deployed(&daemon.env).as_deref(),
        Some(merges[1].as_str())
    );
    step.check_requests();
    daemon.check_requests();
}
