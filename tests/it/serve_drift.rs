//! `formwork serve`'s scheduled drift checks end to end: the agent as its own process, checking
//! every two seconds against recorded AWS responses (moto has no drift detection; see
//! `drift.rs` for the recorded shapes), keeping one GitHub issue for the environment on the
//! recording GitHub in front of Prism: opened on drift, updated while it lasts, closed when a
//! check finds every stack in sync; the drift told to the agent's notification target; the
//! numbers in `/metrics`, the checks in the audit trail, no secret in any issue, notification or
//! log, and no early check after a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common;
use crate::drift::{ACTUAL_PASSWORD, Ends, PASSWORD, fake_cloudformation, write_stacks};
use crate::serve::{Agent, remote};

use common::pr_world::{REPO, World};
use common::receiver::{Answer, Receiver};
use serde_json::Value;

/// The agent's webhook signing secret.
const HOOK_SECRET: &str = "Agent-Hook-Secret-31";

fn metric(agent: &Agent, line: &str) -> Option<f64> {
    agent
        .get("/metrics")
        .1
        .lines()
        .find_map(|l| l.strip_prefix(line))
        .and_then(|v| v.trim().parse().ok())
}

fn drift_issue(w: &World) -> Option<Value> {
    let mark = format!("<!-- formwork:drift environment={} -->", w.env);
    w.mock
        .issues()
        .into_iter()
        .find(|i| i["body"].as_str().is_some_and(|b| b.contains(&mark)))
}

fn detections(fake: &common::fake_aws::FakeAws) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.action.as_deref() == Some("DetectStackDrift"))
        .count()
}

#[test]
fn the_agent_keeps_one_drift_issue_per_environment_and_counts_drift() {
    let w = World::new("sdrift");
    // The environment of the drift tests' three stacks (`app` with a NoEcho password).
    std::fs::remove_dir_all(w.repo.path().join("environments")).unwrap();
    write_stacks(&w.repo, &w.env, 0);
    w.repo.commit("the drift tests' stacks");
    let remote = remote(&w);
    let data = tempfile::tempdir().unwrap();
    let drifted = Arc::new(AtomicBool::new(true));
    let (fake, _) = {
        let drifted = drifted.clone();
        let app = format!("{}-app", w.env);
        fake_cloudformation(
            move |name| match name == app && drifted.load(Ordering::SeqCst) {
                true => Ends::Drifted,
                false => Ends::InSync,
            },
            0,
        )
    };
    // The agent's own notification target hears of the drift.
    let hook = Receiver::start(Answer::Status(200));
    let settings = format!(
        "drift:\n  interval_seconds: 2\n  concurrency: 2\nnotifications:\n  - webhook:\n      url: {}/drift\n      secret_from_env: AGENT_HOOK_SECRET\n    on: [drift]\n",
        hook.url
    );
    let vars = [("AGENT_HOOK_SECRET", HOOK_SECRET)];
    let agent = Agent::start_configured(
        &w,
        remote.path(),
        data.path(),
        &settings,
        true,
        Some(&fake.url),
        &vars,
    );

    // Opened on drift, with the differences and without the password.
    agent.wait_for("the drift issue", Duration::from_secs(60), || {
        drift_issue(&w).is_some()
    });
    let issue = drift_issue(&w).unwrap();
    let number = issue["number"].as_u64().unwrap();
    assert_eq!(issue["title"], format!("Drift in environment {}", w.env));
    assert_eq!(issue["labels"][0]["name"], "formwork-drift");
    let body = issue["body"].as_str().unwrap();
    for said in [
        format!("{}-app", w.env),
        "DelaySeconds".to_string(),
        "closes itself".into(),
    ] {
        assert!(body.contains(&said), "{said} not in:\n{body}");
    }
    let drifted_line = format!("formwork_drifted_stacks{{environment=\"{}\"}} ", w.env);
    agent.wait_for("the drift metrics", Duration::from_secs(30), || {
        metric(&agent, &drifted_line) == Some(1.0)
    });

    let told = hook.wait_for(1, Duration::from_secs(30));
    let b = told[0].json();
    assert_eq!(told[0].header("x-formwork-event"), Some("drift"));
    assert_eq!(b["environment"], w.env);
    assert_eq!(b["drift"]["drifted_stacks"], serde_json::json!(["app"]));

    // Drift that lasts updates the same issue; no second one is opened.
    let patched = |w: &World| {
        w.mock
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path == format!("/repos/{REPO}/issues/{number}"))
            .count()
    };
    agent.wait_for("the issue updated", Duration::from_secs(60), || {
        patched(&w) >= 1
    });
    let created = |w: &World| {
        w.mock
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == format!("/repos/{REPO}/issues"))
            .count()
    };
    assert_eq!(created(&w), 1);

    // In sync again: closed, and the gauge back to 0.
    drifted.store(false, Ordering::SeqCst);
    agent.wait_for("the issue closed", Duration::from_secs(60), || {
        drift_issue(&w).is_some_and(|i| i["state"] == "closed")
    });
    let closed = drift_issue(&w).unwrap();
    assert_eq!(closed["state_reason"], "completed");
    assert!(closed["body"].as_str().unwrap().contains("in sync again"));
    agent.wait_for("the gauge at 0", Duration::from_secs(30), || {
        metric(&agent, &drifted_line) == Some(0.0)
    });
    let checks = format!(
        "formwork_drift_checks_total{{environment=\"{}\",result=\"in_sync\"}} ",
        w.env
    );
    assert!(metric(&agent, &checks).is_some_and(|n| n >= 1.0));
    assert_eq!(created(&w), 1, "closing opens nothing");

    // Every check is in the audit trail, with what it did to the issue.
    let events = common::sdk::block(async {
        use formwork::store::Store;
        let store = formwork::store::open("sqlite", data.path()).await.unwrap();
        store.events(Some(&w.env), 100).await.unwrap()
    });
    let kinds: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "drift_checked")
        .map(|e| e.detail.as_str())
        .collect();
    assert!(
        kinds.iter().any(|d| d.contains(&format!(
            "drifted, 1 stack(s) drifted; opened issue #{number}"
        ))),
        "{kinds:?}"
    );
    assert!(
        kinds.iter().any(|d| d.contains(&format!(
            "in_sync, 0 stack(s) drifted; closed issue #{number}"
        ))),
        "{kinds:?}"
    );

    // No secret anywhere: not in any request to GitHub, not in the log.
    let log = agent.log();
    agent.kill();
    for secret in [PASSWORD, ACTUAL_PASSWORD, HOOK_SECRET] {
        assert!(!log.contains(secret), "{secret} in the agent's log");
        for r in w.mock.requests() {
            assert!(
                !r.body.contains(secret),
                "{secret} sent to GitHub: {}",
                r.body
            );
        }
        for r in hook.received() {
            assert!(
                !r.body.contains(secret),
                "{secret} in a notification: {}",
                r.body
            );
        }
    }
    w.mock.assert_no_violations();

    // Started again with a six-hour interval: the last check is remembered, none runs now.
    let before = detections(&fake);
    let settings = "drift:\n  interval_seconds: 21600\n";
    let agent = Agent::start_configured(
        &w,
        remote.path(),
        data.path(),
        settings,
        true,
        Some(&fake.url),
        &[],
    );
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        detections(&fake),
        before,
        "no check before the interval is up"
    );
    agent.kill();
}
