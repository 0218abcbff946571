//! `formwork drift` against recorded AWS responses. moto lacks drift detection:
//! DetectStackDrift, DescribeStackDriftDetectionStatus and DescribeStackResourceDrifts are not
//! answered there. The responses the fake serves here (`common::fake_aws`, fixtures in
//! `tests/fixtures/aws/`) are written in the shapes the AWS CloudFormation API Reference
//! documents for those calls and for DescribeStacks; the real AWS SDK parses every one.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use crate::common;

use common::Repo;
use common::fake_aws::{FakeAws, fixture, form_value};

/// The NoEcho database password the config gives, and the one someone set by hand.
pub(crate) const PASSWORD: &str = "s3cr3t-Hunter2-pw";
pub(crate) const ACTUAL_PASSWORD: &str = "rotated-by-hand-77";

/// Three stacks in account 123456789012 (that of the recorded GetCallerIdentity): `app` (a
/// queue, a topic and a database whose password is a NoEcho parameter), `vpc`, and `gone`,
/// which has never been deployed.
pub(crate) fn repo(extra_stacks: usize) -> Repo {
    let r = Repo::new();
    write_stacks(&r, "prod", extra_stacks);
    r.commit("stacks");
    r
}

/// Writes the three stacks' pipeline `p` (and `extra_stacks` more) and environment `env` into
/// `r`.
pub(crate) fn write_stacks(r: &Repo, env: &str, extra_stacks: usize) {
    let mut pipeline = format!(
        "pipeline: p\nstacks:\n  app:\n    template: app.yml\n    parameters:\n      DbPassword: {PASSWORD}\n  vpc:\n    template: vpc.yml\n  gone:\n    template: vpc.yml\n"
    );
    for i in 0..extra_stacks {
        pipeline.push_str(&format!("  s{i}:\n    template: vpc.yml\n"));
    }
    r.write("pipelines/p/pipeline.yml", &pipeline);
    r.write(
        "pipelines/p/app.yml",
        "Parameters:\n  DbPassword:\n    Type: String\n    NoEcho: true\nResources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      DelaySeconds: 0\n  Topic:\n    Type: AWS::SNS::Topic\n  Db:\n    Type: AWS::RDS::DBInstance\n    Properties:\n      DBInstanceClass: db.t3.micro\n      Engine: postgres\n      MasterUsername: admin\n      MasterUserPassword: !Ref DbPassword\n      AllocatedStorage: '20'\n",
    );
    r.write(
        "pipelines/p/vpc.yml",
        "Resources:\n  Vpc:\n    Type: AWS::EC2::VPC\n    Properties:\n      CidrBlock: 10.0.0.0/16\n",
    );
    r.write(
        &format!("environments/{env}/environment.yml"),
        "pipeline: p\naccount: \"123456789012\"\nregion: us-east-1\n",
    );
}

fn drift(fake: &FakeAws, r: &Repo, extra: &[&str]) -> common::Run {
    let mut args = vec!["drift", "--poll-interval-ms", "20", "-v"];
    args.extend(extra);
    fake.formwork(r.path(), &args)
}

/// What one stack's detection ends in.
#[derive(Clone, Copy)]
pub(crate) enum Ends {
    Drifted,
    InSync,
    Failed,
}

/// A CloudFormation whose stacks are those of `repo` but `…-gone`; each detection is in
/// progress at its first `polls_in_progress` polls, then ends as `ends` says of its stack.
/// Returns the most detections that were in flight at once (started and not yet seen ended).
pub(crate) fn fake_cloudformation(
    ends: impl Fn(&str) -> Ends + Send + Sync + 'static,
    polls_in_progress: usize,
) -> (FakeAws, Arc<Mutex<usize>>) {
    let fake = FakeAws::start();
    fake.respond("GetCallerIdentity", fixture("sts-get-caller-identity.xml"));
    fake.respond_with("DescribeStacks", |body| {
        let name = form_value(body, "StackName").unwrap_or_default();
        if name.ends_with("-gone") {
            return (
                400,
                fixture("error.xml")
                    .replace("{{CODE}}", "ValidationError")
                    .replace(
                        "{{MESSAGE}}",
                        &format!("Stack with id {name} does not exist"),
                    ),
            );
        }
        (
            200,
            fixture("describe-stacks.xml")
                .replace("{{NAME}}", &name)
                .replace("{{STATUS}}", "UPDATE_COMPLETE")
                .replace("{{REASON}}", ""),
        )
    });
    let in_flight: Arc<Mutex<(BTreeSet<String>, usize)>> = Arc::default();
    let most = Arc::new(Mutex::new(0));
    {
        let (in_flight, most) = (in_flight.clone(), most.clone());
        fake.respond_with("DetectStackDrift", move |body| {
            let name = form_value(body, "StackName").unwrap();
            let id = format!("detection-{name}");
            let mut f = in_flight.lock().unwrap();
            f.0.insert(id.clone());
            let mut m = most.lock().unwrap();
            *m = (*m).max(f.0.len());
            (
                200,
                fixture("detect-stack-drift.xml").replace("{{ID}}", &id),
            )
        });
    }
    let polls: Mutex<HashMap<String, usize>> = Mutex::default();
    fake.respond_with("DescribeStackDriftDetectionStatus", move |body| {
        let id = form_value(body, "StackDriftDetectionId").unwrap();
        let name = id.trim_start_matches("detection-").to_string();
        let n = {
            let mut p = polls.lock().unwrap();
            let n = p.entry(id.clone()).or_default();
            *n += 1;
            *n
        };
        let file = if n <= polls_in_progress {
            fixture("describe-stack-drift-detection-status-in-progress.xml")
        } else {
            in_flight.lock().unwrap().0.remove(&id);
            match ends(&name) {
                Ends::Drifted => fixture("describe-stack-drift-detection-status-complete.xml")
                    .replace("{{DRIFT_STATUS}}", "DRIFTED")
                    .replace("{{COUNT}}", "3"),
                Ends::InSync => fixture("describe-stack-drift-detection-status-complete.xml")
                    .replace("{{DRIFT_STATUS}}", "IN_SYNC")
                    .replace("{{COUNT}}", "0"),
                Ends::Failed => fixture("describe-stack-drift-detection-status-failed.xml")
                    .replace("{{DRIFT_STATUS}}", "IN_SYNC")
                    .replace(
                        "{{REASON}}",
                        // CloudFormation names the resource; the secret stands for anything
                        // sensitive a message may carry.
                        &format!("Failed to detect drift on resource [Vpc]: Internal Failure near {PASSWORD}"),
                    ),
            }
        };
        (200, file.replace("{{NAME}}", &name).replace("{{ID}}", &id))
    });
    fake.respond_with("DescribeStackResourceDrifts", |body| {
        let name = form_value(body, "StackName").unwrap();
        let page = if form_value(body, "NextToken").is_some() {
            fixture("describe-stack-resource-drifts-page-2.xml")
        } else {
            fixture("describe-stack-resource-drifts-page-1.xml")
                .replace("{{NEXT_TOKEN}}", "page-2-of-drifts")
        };
        (
            200,
            page.replace("{{NAME}}", &name)
                .replace("{{PASSWORD}}", PASSWORD)
                .replace("{{ACTUAL_PASSWORD}}", ACTUAL_PASSWORD),
        )
    });
    (fake, most)
}

fn actions(fake: &FakeAws, action: &str) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.action.as_deref() == Some(action))
        .map(|r| r.body)
        .collect()
}

fn assert_no_secret(run: &common::Run) {
    for secret in [PASSWORD, ACTUAL_PASSWORD] {
        assert!(
            !run.all().contains(secret),
            "{secret} was printed:\n{}",
            run.all()
        );
    }
}

#[test]
fn drifted_resources_are_reported_with_their_differences_and_exit_2() {
    let (fake, _) = fake_cloudformation(
        |name| {
            if name == "prod-app" {
                Ends::Drifted
            } else {
                Ends::InSync
            }
        },
        1,
    );
    let r = repo(0);
    let run = drift(&fake, &r, &["--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert_no_secret(&run);
    let v = run.json();
    assert_eq!(v["version"], 1);
    assert_eq!(v["revision"], r.head_commit());
    let env = &v["environments"][0];
    assert_eq!(env["name"], "prod");
    let stacks = env["stacks"].as_array().unwrap();
    let by_key = |k: &str| stacks.iter().find(|s| s["stack"] == k).unwrap();
    assert_eq!(by_key("vpc")["status"], "in_sync");
    assert_eq!(by_key("gone")["status"], "not_deployed");
    let app = by_key("app");
    assert_eq!(app["status"], "drifted", "{app}");
    assert_eq!(app["stack_name"], "prod-app");
    assert_eq!(app["detection_id"], "detection-prod-app");
    assert_eq!(app["checked_at"], "2024-05-02T09:15:11.344Z");
    let resources = app["resources"].as_array().unwrap();
    let ids: Vec<&str> = resources
        .iter()
        .map(|r| r["logical_id"].as_str().unwrap())
        .collect();
    // Both pages.
    assert_eq!(ids, ["Queue", "Topic", "Db"]);
    let queue = &resources[0];
    assert_eq!(queue["resource_type"], "AWS::SQS::Queue");
    assert_eq!(
        queue["physical_id"],
        "https://sqs.us-east-1.amazonaws.com/123456789012/prod-app-Queue-1EXAMPLE"
    );
    assert_eq!(queue["status"], "modified");
    assert_eq!(
        queue["differences"][0],
        serde_json::json!({"path": "/DelaySeconds", "expected": "0", "actual": "120",
            "difference_type": "not_equal", "masked": false})
    );
    assert_eq!(
        queue["differences"][1]["path"],
        "/RedrivePolicy/maxReceiveCount"
    );
    assert_eq!(resources[1]["status"], "deleted");
    assert_eq!(resources[1]["differences"], serde_json::json!([]));
    let db = &resources[2]["differences"];
    assert_eq!(db[0]["actual"], "db.t3.small");
    assert_eq!(
        db[1],
        serde_json::json!({"path": "/MasterUserPassword", "expected": "****", "actual": "****",
            "difference_type": "not_equal", "masked": true})
    );

    // What was asked: drift of the deployed stacks only; the modified and deleted resources of
    // the drifted one, page by page.
    let detected: Vec<String> = actions(&fake, "DetectStackDrift")
        .iter()
        .map(|b| form_value(b, "StackName").unwrap())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(detected, ["prod-app", "prod-vpc"]);
    let drifts = actions(&fake, "DescribeStackResourceDrifts");
    assert_eq!(drifts.len(), 2, "{drifts:?}");
    for body in &drifts {
        assert!(body.contains("StackName=prod-app"), "{body}");
        assert!(
            body.contains("StackResourceDriftStatusFilters.member.1=MODIFIED")
                && body.contains("StackResourceDriftStatusFilters.member.2=DELETED"),
            "{body}"
        );
    }
    assert!(
        drifts[1].contains("NextToken=page-2-of-drifts"),
        "{}",
        drifts[1]
    );
    // The plan role's policy allows every call made.
    let policy = r.run(&["iam-policy", "--plan"]);
    assert_eq!(policy.code, 0, "{}", policy.all());
    let allowed = common::policy_actions(&policy.json());
    for op in fake.requests().into_iter().filter_map(|q| q.action) {
        let service = if op == "GetCallerIdentity" {
            "sts"
        } else {
            "cloudformation"
        };
        let action = format!("{service}:{op}");
        assert!(allowed.contains(&action), "{action}: {allowed:?}");
    }

    // Text and Markdown say the same, without the secret either.
    let run = drift(&fake, &r, &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert_no_secret(&run);
    for line in [
        "app (prod-app): drifted, 3 resources",
        "Queue (AWS::SQS::Queue, https://sqs.us-east-1.amazonaws.com/123456789012/prod-app-Queue-1EXAMPLE): modified",
        "/DelaySeconds: expected 0, actual 120 (not_equal)",
        "/RedrivePolicy/maxReceiveCount: expected 5, actual 10 (not_equal)",
        "Topic (AWS::SNS::Topic, arn:aws:sns:us-east-1:123456789012:prod-app-Topic-2EXAMPLE): deleted",
        "/MasterUserPassword: expected ****, actual **** (not_equal)",
        "vpc (prod-vpc): in sync",
        "gone (prod-gone): not deployed",
        "1 of 3 stacks drifted (1 in sync, 1 not deployed)",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
    let run = drift(&fake, &r, &["--output", "markdown", "--env", "prod"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert_no_secret(&run);
    assert!(run.stdout.contains("#### `prod-app`"), "{}", run.stdout);
    assert!(
        run.stdout.contains(
            "| `Queue` | `AWS::SQS::Queue` | `https://sqs.us-east-1.amazonaws.com/123456789012/prod-app-Queue-1EXAMPLE` | modified | `/DelaySeconds` | `0` | `120` | not\\_equal |"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("| `/MasterUserPassword` | `****` | `****` |"),
        "{}",
        run.stdout
    );
}

#[test]
fn stacks_in_sync_exit_0() {
    let (fake, _) = fake_cloudformation(|_| Ends::InSync, 2);
    let r = repo(0);
    let run = drift(&fake, &r, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout
            .contains("0 of 3 stacks drifted (2 in sync, 1 not deployed)"),
        "{}",
        run.stdout
    );
    assert!(actions(&fake, "DescribeStackResourceDrifts").is_empty());
    // Each detection was polled until it ended: twice in progress, then complete.
    assert_eq!(actions(&fake, "DescribeStackDriftDetectionStatus").len(), 6);
}

/// A stack with a region of its own is checked there: every call about it is signed for its
/// region, every call about the others for the environment's.
#[test]
fn a_stack_of_its_own_region_is_checked_there() {
    let (fake, _) = fake_cloudformation(|_| Ends::InSync, 1);
    let r = Repo::new();
    write_stacks(&r, "prod", 0);
    r.write(
        "environments/prod/environment.yml",
        "pipeline: p\naccount: \"123456789012\"\nregion: us-east-1\nstacks:\n  vpc:\n    region: ap-southeast-2\n",
    );
    r.commit("vpc elsewhere");
    let run = drift(&fake, &r, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let detections: Vec<(String, Option<String>)> = fake
        .requests()
        .into_iter()
        .filter(|q| q.action.as_deref() == Some("DetectStackDrift"))
        .map(|q| {
            (
                form_value(&q.body, "StackName").unwrap_or_default(),
                q.region,
            )
        })
        .collect();
    assert_eq!(detections.len(), 2, "{detections:?}");
    for (stack, region) in detections {
        let want = if stack == "prod-vpc" {
            "ap-southeast-2"
        } else {
            "us-east-1"
        };
        assert_eq!(region.as_deref(), Some(want), "{stack}");
    }
}

/// DETECTION_FAILED makes the stack `failed`, with CloudFormation's reason, and the run exit 1:
/// the report is printed whole, but "nothing drifted" cannot be said of it.
#[test]
fn a_failed_detection_is_reported_with_its_reason_and_exit_1() {
    let (fake, _) = fake_cloudformation(
        |name| {
            if name == "prod-vpc" {
                Ends::Failed
            } else {
                Ends::InSync
            }
        },
        1,
    );
    let r = repo(0);
    let run = drift(&fake, &r, &["--output", "json"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_no_secret(&run);
    let v = run.json();
    let vpc = v["environments"][0]["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stack"] == "vpc")
        .unwrap()
        .clone();
    assert_eq!(vpc["status"], "failed");
    assert_eq!(
        vpc["reason"],
        "Failed to detect drift on resource [Vpc]: Internal Failure near ****"
    );
    let run = drift(&fake, &r, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout.contains(
            "vpc (prod-vpc): failed: Failed to detect drift on resource [Vpc]: Internal Failure near ****"
        ),
        "{}",
        run.stdout
    );
    assert_no_secret(&run);
}

#[test]
fn no_more_detections_than_the_concurrency_are_in_flight() {
    let (fake, most) = fake_cloudformation(|_| Ends::InSync, 3);
    // 2 + 6 deployed stacks.
    let r = repo(6);
    let run = drift(&fake, &r, &["--concurrency", "2", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(actions(&fake, "DetectStackDrift").len(), 8);
    assert_eq!(*most.lock().unwrap(), 2);
    // Unbounded enough, they overlap more.
    let (fake, most) = fake_cloudformation(|_| Ends::InSync, 3);
    let run = drift(&fake, &r, &["--concurrency", "8", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(*most.lock().unwrap() > 2);
}

/// A detection that does not end within the time allowed leaves its stack `failed`, saying so;
/// the poll waits double from the first one up to the longest.
#[tokio::test]
async fn a_detection_that_does_not_end_in_time_fails_its_stack() {
    use aws_sdk_cloudformation::config::{BehaviorVersion, Credentials, Region};
    use formwork::drift::DriftOptions;
    use formwork::drift::detect::detect_stack;
    use std::time::Duration;

    let (fake, _) = fake_cloudformation(|_| Ends::InSync, usize::MAX);
    let r = repo(0);
    let envs = formwork::workflow::environments_at(&r.git, "", "HEAD").unwrap();
    let unit = &envs[0].units["vpc"];
    let conf = aws_sdk_cloudformation::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&fake.url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .build();
    let cfn = formwork::aws::Cfn::new(
        aws_sdk_cloudformation::Client::from_conf(conf),
        formwork::aws::Limit::new(4),
    );
    let opts = DriftOptions {
        concurrency: 1,
        timeout: Duration::from_millis(700),
        first_poll: Duration::from_millis(50),
        max_poll: Duration::from_millis(200),
    };
    let slots = tokio::sync::Semaphore::new(1);
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let masker = formwork::secrets::Masker::new();
    let s = detect_stack(&cfn, unit, &masker, &opts, &slots, deadline).await;
    assert_eq!(s.status, formwork::drift::DriftState::Failed);
    let reason = s.reason.unwrap();
    assert!(
        reason.contains("drift detection detection-prod-vpc did not finish within"),
        "{reason}"
    );
    // 50, 100, 200, 200, 150 (what was left): five polls, not one per millisecond.
    let polls = actions(&fake, "DescribeStackDriftDetectionStatus").len();
    assert!((4..=6).contains(&polls), "{polls} polls");
}

/// An environment whose config does not resolve is reported as not checked (exit 1); the
/// others are checked all the same.
#[test]
fn an_environment_that_does_not_resolve_does_not_stop_the_others() {
    let (fake, _) = fake_cloudformation(|_| Ends::InSync, 1);
    let r = repo(0);
    r.write(
        "environments/broken/environment.yml",
        "pipeline: nope\naccount: \"123456789012\"\nregion: us-east-1\n",
    );
    r.commit("a broken environment");
    let run = drift(&fake, &r, &["--output", "json"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let v = run.json();
    let envs = v["environments"].as_array().unwrap();
    assert_eq!(envs.len(), 2, "{v:#}");
    assert_eq!(envs[0]["name"], "broken");
    assert!(
        envs[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("its config does not resolve at HEAD: "),
        "{v:#}"
    );
    assert_eq!(envs[1]["name"], "prod");
    assert_eq!(envs[1]["stacks"][1]["status"], "in_sync");
}
