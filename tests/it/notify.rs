//! Notifications, end to end: real `formwork apply` runs on moto server tell local receivers
//! (`common::receiver`) that they started and how they ended — on a Slack-shaped webhook, on a
//! signed generic webhook whose signature verifies with the shared secret, and through an SNS
//! topic of moto, which delivers to an `http` subscription (moto's SNS posts every published
//! message to the subscribed URL, as SNS does once a subscription is confirmed; moto confirms
//! at once). Receivers that answer 500, refuse connections or never answer change neither the
//! apply's exit code nor hold it up beyond the bounded attempts. No secret — the SecureString a
//! NoEcho parameter takes, the Slack URL, the signing secret — appears in any output, log or
//! received body. Drift found by `formwork drift` (on the recorded AWS of `drift.rs`) is told
//! too; a bad `notifications:` block is reported by `formwork validate` where it is written.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::common;

use common::Repo;
use common::aws::{Endpoint, moto, unique};
use common::receiver::{Answer, Received, Receiver};
use common::stacks::put_secure_string;

const REGION: &str = "eu-west-1";

/// One stack whose NoEcho parameter comes from an SSM SecureString.
const TEMPLATE: &str = "\
Parameters:
  Token:
    Type: String
    NoEcho: true
Resources:
  Kept:
    Type: AWS::SSM::Parameter
    Properties:
      Type: String
      Value: !Ref Token
";

/// A repository of one environment `env` whose stack takes `${ssm:<token_param>}`, with
/// `notifications` appended to its environment.yml.
fn repo(env: &str, token_param: &str, notifications: &str) -> Repo {
    let pipeline = format!(
        "pipeline: told\nstacks:\n  store:\n    template: templates/store.yml\n    parameters:\n      Token: \"${{ssm:{token_param}}}\"\n"
    );
    Repo::one_pipeline(
        "told",
        &pipeline,
        &[("store.yml", TEMPLATE)],
        env,
        REGION,
        &format!("notifications:\n{notifications}"),
    )
}

/// Runs formwork on `ep` in `dir` with extra variables.
fn formwork_with(ep: &Endpoint, dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> common::Run {
    common::sdk::formwork_on_with(ep, dir, vars, args)
}

fn hmac_hex(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Asserts no secret is in any of `texts`.
fn assert_secret_free(secrets: &[&str], texts: &[String]) {
    for s in secrets {
        for t in texts {
            assert!(!t.contains(s), "the secret {s:?} leaked into:\n{t}");
        }
    }
}

/// What a receiver got besides where it was sent (the request path of a Slack webhook is the
/// secret URL itself).
fn everything(r: &Received) -> String {
    format!("{:?} {}", r.headers, r.body)
}

#[test]
fn an_apply_tells_slack_and_a_signed_webhook_and_keeps_secrets_out() {
    let ep = moto();
    let env = unique("told");
    let token = format!("NoEcho-Token-{}", unique("t"));
    let signing = format!("Signing-Secret-{}", unique("s"));
    let token_param = format!("/{env}/token");
    let secret_param = format!("/{env}/hook-secret");
    put_secure_string(ep, REGION, &token_param, &token);
    put_secure_string(ep, REGION, &secret_param, &signing);
    let slack = Receiver::start(Answer::Status(200));
    let hook = Receiver::start(Answer::Status(200));
    // The Slack URL is a secret: its path stands for the token of a real incoming webhook.
    let slack_token = format!("T000/B000/{}", unique("xoxb"));
    let slack_url = format!("{}/services/{slack_token}", slack.url);
    let r = repo(
        &env,
        &token_param,
        &format!(
            "  - name: team\n    slack:\n      url_from_env: TEAM_SLACK_URL\n  - webhook:\n      url: {}/formwork\n      secret_from_ssm: {secret_param}\n",
            hook.url
        ),
    );
    let commit = r.head_commit();
    let vars = [("TEAM_SLACK_URL", slack_url.as_str())];
    let applied = formwork_with(
        ep,
        r.path(),
        &vars,
        &["apply", "--env", &env, "--base", "HEAD~1", "-v"],
    );
    assert_eq!(applied.code, 0, "{}", applied.all());

    let slack_got = slack.wait_for(2, Duration::from_secs(10));
    assert_eq!(slack_got.len(), 2, "{slack_got:?}");
    assert!(slack_got.iter().all(|m| m.method == "POST"));
    assert!(
        slack_got
            .iter()
            .all(|m| m.path == format!("/services/{slack_token}"))
    );
    let texts: Vec<String> = slack_got
        .iter()
        .map(|m| m.json()["text"].as_str().unwrap().to_string())
        .collect();
    let short = &commit[..12];
    assert_eq!(texts[0], format!("formwork: {env}: applying {short}"));
    assert_eq!(
        texts[1],
        format!("formwork: {env}: applied {short} (1 stack changed, 0 unchanged)")
    );
    assert!(slack_got[1].json()["blocks"].as_array().unwrap().len() >= 2);

    let hook_got = hook.wait_for(2, Duration::from_secs(10));
    assert_eq!(hook_got.len(), 2, "{hook_got:?}");
    let events: Vec<&str> = hook_got
        .iter()
        .map(|m| m.header("X-Formwork-Event").unwrap())
        .collect();
    assert_eq!(events, ["apply_started", "apply_succeeded"]);
    for m in &hook_got {
        // The signature verifies with the shared secret, over the raw body.
        assert_eq!(
            m.header("X-Formwork-Signature-256").unwrap(),
            format!("sha256={}", hmac_hex(&signing, &m.body))
        );
        assert_ne!(
            m.header("X-Formwork-Signature-256").unwrap(),
            format!("sha256={}", hmac_hex("another secret", &m.body))
        );
        let b = m.json();
        assert_eq!(b["version"], 1);
        assert_eq!(b["event"], m.header("X-Formwork-Event").unwrap());
        assert_eq!(b["delivery"], m.header("X-Formwork-Delivery").unwrap());
        assert_eq!(
            b["timestamp"].to_string(),
            m.header("X-Formwork-Timestamp").unwrap()
        );
        assert_eq!(b["environment"], env.as_str());
        assert_eq!(b["commit"], commit.as_str());
        assert_eq!(b["account"], "123456789012");
        assert_eq!(b["region"], REGION);
        assert_eq!(m.header("content-type"), Some("application/json"));
    }
    assert_ne!(
        hook_got[0].header("X-Formwork-Delivery"),
        hook_got[1].header("X-Formwork-Delivery")
    );
    let done = hook_got[1].json();
    assert_eq!(done["stacks"][0]["stack"], "store");
    assert_eq!(done["stacks"][0]["state"], "applied");
    assert!(done["run_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(done["plan_id"].as_str().is_some_and(|r| !r.is_empty()));

    let mut outputs = vec![applied.all()];
    outputs.extend(slack_got.iter().chain(&hook_got).map(everything));
    assert_secret_free(&[&token, &signing, &slack_token], &outputs);
    assert!(
        applied.stderr.contains("notification sent"),
        "{}",
        applied.stderr
    );
}

#[test]
fn a_failing_apply_sends_apply_failed() {
    let ep = moto();
    let env = unique("fails");
    let token_param = format!("/{env}/token");
    put_secure_string(ep, REGION, &token_param, "Token-Value-Failing-1");
    let hook = Receiver::start(Answer::Status(204));
    let r = repo(
        &env,
        &token_param,
        "  - webhook:\n      url_from_env: HOOK_URL\n      secret_from_env: HOOK_SECRET\n    on: [apply_failed]\n",
    );
    let url = format!("{}/in", hook.url);
    let vars = [
        ("HOOK_URL", url.as_str()),
        ("HOOK_SECRET", "Env-Hook-Secret-9"),
    ];
    // No such plan is recorded: the apply stops before it starts, and fails. The plan asked
    // for is named by the signing secret, so that the message told carries a secret: it
    // reaches neither the receiver nor the terminal.
    let applied = formwork_with(
        ep,
        r.path(),
        &vars,
        &["apply", "--env", &env, "--plan", "Env-Hook-Secret-9"],
    );
    assert_eq!(applied.code, 1, "{}", applied.all());
    let got = hook.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "only the events it is for: {got:?}");
    let b = got[0].json();
    assert_eq!(b["event"], "apply_failed");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("no plan **** is recorded"),
        "{b}"
    );
    assert!(
        applied.stderr.contains("error: no plan **** is recorded"),
        "{}",
        applied.stderr
    );
    assert_eq!(
        got[0].header("X-Formwork-Signature-256").unwrap(),
        format!("sha256={}", hmac_hex("Env-Hook-Secret-9", &got[0].body))
    );
    assert_secret_free(
        &["Env-Hook-Secret-9", "Token-Value-Failing-1"],
        &[applied.all(), everything(&got[0])],
    );
}

#[test]
fn receivers_that_fail_refuse_or_hang_never_fail_the_apply() {
    let ep = moto();
    let env = unique("deaf");
    let token_param = format!("/{env}/token");
    put_secure_string(ep, REGION, &token_param, "Token-Value-Deaf-2");
    let broken = Receiver::start(Answer::Status(500));
    let hanging = Receiver::start(Answer::Hang);
    let refusing = Receiver::refusing_url();
    let target = |name: &str, url: &str| {
        format!(
            "  - name: {name}\n    webhook:\n      url: {url}/x\n      secret_from_env: DEAF_SECRET\n    timeout_seconds: 1\n"
        )
    };
    let notifications = [
        target("broken", &broken.url),
        target("hanging", &hanging.url),
        target("refusing", &refusing),
        // A variable that is not set: the target cannot be made ready.
        "  - name: unset\n    slack:\n      url_from_env: NOT_SET_ANYWHERE_42\n".to_string(),
    ]
    .concat();
    let r = repo(&env, &token_param, &notifications);
    let vars = [("DEAF_SECRET", "Deaf-Signing-Secret-3")];
    let started = Instant::now();
    let applied = formwork_with(
        ep,
        r.path(),
        &vars,
        &["apply", "--env", &env, "--base", "HEAD~1"],
    );
    let took = started.elapsed();
    assert_eq!(applied.code, 0, "{}", applied.all());
    // Three attempts of one second at most, with two waits (0.5 s and 1 s, and jitter), for
    // the start (beside the apply) and the end: far less than this, whatever the apply takes.
    assert!(took < Duration::from_secs(60), "took {took:?}");
    let got = broken.received();
    assert_eq!(
        got.len(),
        6,
        "three attempts for each of two events: {got:?}"
    );
    assert_eq!(
        got[0].header("X-Formwork-Delivery"),
        got[2].header("X-Formwork-Delivery"),
        "one delivery's attempts share its id"
    );
    assert_eq!(hanging.received().len(), 6);
    for name in ["broken", "hanging", "refusing", "unset"] {
        assert!(
            applied
                .stderr
                .lines()
                .any(|l| l.contains("notification not delivered") && l.contains(name)),
            "{name}: {}",
            applied.stderr
        );
    }
    assert!(applied.stderr.contains("HTTP 500"), "{}", applied.stderr);
    assert!(
        applied.stderr.contains("NOT_SET_ANYWHERE_42 is not set"),
        "{}",
        applied.stderr
    );
    let mut outputs = vec![applied.all()];
    outputs.extend(got.iter().map(everything));
    assert_secret_free(&["Deaf-Signing-Secret-3", "Token-Value-Deaf-2"], &outputs);
}

#[test]
fn an_sns_topic_is_published_to_with_the_environments_session() {
    let ep = moto();
    let env = unique("sns");
    let token_param = format!("/{env}/token");
    put_secure_string(ep, REGION, &token_param, "Token-Value-Sns-4");
    let topic = ep.query_in(
        REGION,
        "sns",
        &format!("Action=CreateTopic&Name={env}&Version=2010-03-31"),
    );
    assert_eq!(topic.status, 200, "{}", topic.body);
    let arn = between(&topic.body, "<TopicArn>", "</TopicArn>");
    let subscriber = Receiver::start(Answer::Status(200));
    let endpoint = format!("{}/sns", subscriber.url);
    let sub = ep.query_in(
        REGION,
        "sns",
        &format!(
            "Action=Subscribe&TopicArn={}&Protocol=http&Endpoint={}&Version=2010-03-31",
            common::stacks::form_encode(&arn),
            common::stacks::form_encode(&endpoint)
        ),
    );
    assert_eq!(sub.status, 200, "{}", sub.body);
    let r = repo(
        &env,
        &token_param,
        &format!("  - sns:\n      topic_arn: {arn}\n    on: [apply_succeeded]\n"),
    );
    let applied = formwork_with(
        ep,
        r.path(),
        &[],
        &["apply", "--env", &env, "--base", "HEAD~1"],
    );
    assert_eq!(applied.code, 0, "{}", applied.all());
    let got = subscriber.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "{got:?}");
    let n = got[0].json();
    assert_eq!(n["Type"], "Notification");
    assert_eq!(n["TopicArn"], arn.as_str());
    assert_eq!(
        n["Subject"],
        format!(
            "formwork: {env}: applied {} (1 stack changed, 0 unchanged)",
            &r.head_commit()[..12]
        )
    );
    let body: serde_json::Value = serde_json::from_str(n["Message"].as_str().unwrap()).unwrap();
    assert_eq!(body["version"], 1);
    assert_eq!(body["event"], "apply_succeeded");
    assert_eq!(body["environment"], env.as_str());
    assert_eq!(body["stacks"][0]["state"], "applied");
    assert_secret_free(
        &["Token-Value-Sns-4"],
        &[applied.all(), everything(&got[0])],
    );

    // The apply role may publish to the topic.
    let policy = formwork_with(ep, r.path(), &[], &["iam-policy", "--apply", "--env", &env]);
    assert_eq!(policy.code, 0, "{}", policy.all());
    let p = policy.json();
    let statement = p["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "Notifications")
        .unwrap_or_else(|| panic!("{p:#}"));
    assert_eq!(statement["Action"], serde_json::json!(["sns:Publish"]));
    assert_eq!(statement["Resource"], serde_json::json!([arn]));
}

fn between(text: &str, start: &str, end: &str) -> String {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {text}"))
        + start.len();
    let to = text[from..].find(end).unwrap() + from;
    text[from..to].to_string()
}

#[test]
fn drift_found_is_told() {
    let (fake, _) = crate::drift::fake_cloudformation(
        |name| {
            if name == "prod-app" {
                crate::drift::Ends::Drifted
            } else {
                crate::drift::Ends::InSync
            }
        },
        1,
    );
    let r = crate::drift::repo(0);
    let hook = Receiver::start(Answer::Status(200));
    let env_file = "environments/prod/environment.yml";
    let text = r.read(env_file);
    r.write(
        env_file,
        &format!(
            "{text}notifications:\n  - webhook:\n      url: {}/drift\n      secret_from_env: DRIFT_SECRET\n    on: [drift]\n",
            hook.url
        ),
    );
    r.commit("notify of drift");
    // As `FakeAws::formwork` runs it, with the signing secret's variable.
    let run = common::Run::from(
        Command::new(env!("CARGO_BIN_EXE_formwork"))
            .args(["drift", "--poll-interval-ms", "20", "-v"])
            .current_dir(r.path())
            .env("AWS_ENDPOINT_URL", &fake.url)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("DRIFT_SECRET", "Drift-Signing-Secret-5")
            .env("NO_COLOR", "1")
            .env_remove("FORMWORK_LOG")
            .env_remove("FORMWORK_REPO")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 2, "{}", run.all());
    let got = hook.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "{got:?}");
    let b = got[0].json();
    assert_eq!(b["event"], "drift");
    assert_eq!(b["environment"], "prod");
    assert_eq!(b["commit"], r.head_commit());
    assert_eq!(b["drift"]["drifted"], 1);
    assert_eq!(b["drift"]["drifted_stacks"], serde_json::json!(["app"]));
    assert_eq!(b["drift"]["in_sync"], 1);
    assert_eq!(b["drift"]["not_deployed"], 1);
    assert_eq!(b["summary"], "prod: 1 stack of 3 drifted (app)");
    assert_secret_free(
        &[
            "Drift-Signing-Secret-5",
            crate::drift::PASSWORD,
            crate::drift::ACTUAL_PASSWORD,
        ],
        &[run.all(), everything(&got[0])],
    );
}

#[test]
fn validate_reports_a_bad_notifications_block_where_it_is_written() {
    let r = Repo::one_pipeline(
        "told",
        "pipeline: told\nstacks:\n  store:\n    template: templates/store.yml\n    parameters:\n      Token: x\n",
        &[("store.yml", TEMPLATE)],
        "prod",
        REGION,
        "notifications:\n  - slack:\n      url: https://hooks.slack.com/services/T/B/literal\n  - sns:\n      topic_arn: arn:aws:sns:eu-west-1:123456789012:t\n    on: [apply_finished]\n",
    );
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 1, "{}", v.all());
    let all = v.all();
    assert!(
        all.contains("environments/prod/environment.yml:6:7"),
        "the literal URL, where it is written: {all}"
    );
    assert!(all.contains("unknown field `url`"), "{all}");
    assert!(all.contains("url_from_env"), "the keys to use: {all}");
    assert!(
        all.contains("environments/prod/environment.yml:9:10"),
        "the unknown event: {all}"
    );
    assert!(all.contains("apply_finished"), "{all}");
}
