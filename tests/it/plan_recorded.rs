//! Plans against responses recorded in the AWS documentation, for what the local endpoints
//! cannot produce: change sets with Replacement and Details, stacks in rollback and busy states,
//! an account that is not the environment's. The real AWS SDK parses every response.

use crate::common;

use aws_sdk_cloudformation::config::{BehaviorVersion, Credentials, Region};
use common::Repo;
use common::fake_aws::{FakeAws, fixture};
use formwork::aws::{Cfn, Limit};
use formwork::plan::live::merge_changes;
use formwork::plan::model::{Replacement, ReplacementSource, RequiresRecreation, ResourceAction};
use formwork::secrets::Masker;

fn cfn_client(url: &str) -> Cfn {
    let conf = aws_sdk_cloudformation::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .build();
    Cfn::new(
        aws_sdk_cloudformation::Client::from_conf(conf),
        Limit::new(4),
    )
}

#[tokio::test]
async fn a_recorded_replacement_change_set_reads_into_the_plan_model() {
    let fake = FakeAws::start();
    fake.respond(
        "DescribeChangeSet",
        fixture("describe-change-set-replacement.xml"),
    );
    let info = cfn_client(&fake.url)
        .describe_change_set("SampleChangeSet-multiple")
        .await
        .unwrap();
    assert_eq!(info.status, "CREATE_COMPLETE");
    assert_eq!(info.execution_status.as_deref(), Some("AVAILABLE"));
    assert_eq!(info.parameters["InstanceType"], "t2.small");
    assert_eq!(info.changes.len(), 1);
    let masker = Masker::new();
    // The change set says Replacement itself: formwork's prediction is not used.
    let changes = merge_changes(&info.changes, &[], &masker);
    let c = &changes[0];
    assert_eq!(c.logical_id, "MyEC2Instance");
    assert_eq!(c.physical_id.as_deref(), Some("i-7bef86f8"));
    assert_eq!(c.action, ResourceAction::Modify);
    assert_eq!(c.replacement, Replacement::True);
    assert_eq!(c.replacement_source, ReplacementSource::Cloudformation);
    assert_eq!(c.scope, ["Tags", "Properties"]);
    assert_eq!(c.details.len(), 6);
    let key_name = c
        .details
        .iter()
        .find(|d| d.causing_entity.as_deref() == Some("KeyPairName"))
        .unwrap();
    assert_eq!(key_name.attribute, "Properties");
    assert_eq!(key_name.name.as_deref(), Some("KeyName"));
    assert_eq!(
        key_name.requires_recreation,
        Some(RequiresRecreation::Always)
    );
    assert_eq!(key_name.evaluation.as_deref(), Some("Static"));
    assert_eq!(
        key_name.change_source.as_deref(),
        Some("ParameterReference")
    );
    // What was asked for: the change set, with property values.
    let sent = fake.requests();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].body.contains("IncludePropertyValues=true"),
        "{}",
        sent[0].body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_in_flight_are_bounded() {
    let fake = FakeAws::start();
    fake.delay(100).respond(
        "DescribeStacks",
        fixture("describe-stacks.xml")
            .replace("{{NAME}}", "s")
            .replace("{{STATUS}}", "CREATE_COMPLETE")
            .replace("{{REASON}}", ""),
    );
    let cfn = cfn_client(&fake.url);
    let conf = aws_sdk_cloudformation::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&fake.url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .build();
    let limited = Cfn::new(
        aws_sdk_cloudformation::Client::from_conf(conf),
        Limit::new(2),
    );
    let calls = (0..8).map(|i| {
        let c = limited.clone();
        async move { c.describe_stack(&format!("s{i}")).await.unwrap() }
    });
    futures::future::join_all(calls).await;
    assert_eq!(fake.max_in_flight(), 2);
    // Unbounded (4 permits here), more go at once.
    let calls = (0..8).map(|i| {
        let c = cfn.clone();
        async move { c.describe_stack(&format!("s{i}")).await.unwrap() }
    });
    futures::future::join_all(calls).await;
    assert!(fake.max_in_flight() > 2);
}

/// A config repository with one stack in account 123456789012 (the account of the recorded
/// GetCallerIdentity response).
fn one_stack_repo(account: &str) -> Repo {
    let r = Repo::new();
    r.write(
        "pipelines/p/pipeline.yml",
        "pipeline: p\nstacks:\n  web:\n    template: web.yml\n",
    );
    r.write(
        "pipelines/p/web.yml",
        "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n",
    );
    r.write(
        "environments/prod/environment.yml",
        &format!("pipeline: p\naccount: \"{account}\"\nregion: us-east-1\n"),
    );
    r.commit("one stack");
    r
}

fn plan_against(fake: &FakeAws, r: &Repo, extra: &[&str]) -> common::Run {
    let mut args = vec!["plan", "--no-record", "--report-calls"];
    args.extend(extra);
    fake.formwork(r.path(), &args)
}

#[test]
fn stacks_in_rollback_or_busy_states_are_blocked_with_a_way_out() {
    for (status, expect) in [
        (
            "ROLLBACK_COMPLETE",
            "aws cloudformation delete-stack --stack-name prod-web",
        ),
        (
            "UPDATE_ROLLBACK_FAILED",
            "aws cloudformation continue-update-rollback --stack-name prod-web",
        ),
        (
            "UPDATE_IN_PROGRESS",
            "is busy (UPDATE_IN_PROGRESS); wait until the running operation finishes",
        ),
        ("DELETE_FAILED", "a deletion failed"),
    ] {
        let fake = FakeAws::start();
        fake.respond("GetCallerIdentity", fixture("sts-get-caller-identity.xml"));
        fake.respond(
            "DescribeStacks",
            fixture("describe-stacks.xml")
                .replace("{{NAME}}", "prod-web")
                .replace("{{STATUS}}", status)
                .replace("{{REASON}}", "The following resource(s) failed"),
        );
        let r = one_stack_repo("123456789012");
        let run = plan_against(&fake, &r, &["--output", "json"]);
        assert_eq!(run.code, 1, "{status}: {}", run.all());
        let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let unit = &plan["environments"][0]["units"][0];
        assert_eq!(unit["action"], "blocked", "{status}");
        assert_eq!(unit["stack_status"], status);
        let message = unit["message"].as_str().unwrap();
        assert!(message.contains(expect), "{status}: {message}");
        // Nothing was attempted on a blocked stack.
        let actions: Vec<String> = fake
            .requests()
            .into_iter()
            .filter_map(|q| q.action)
            .collect();
        assert_eq!(actions, ["GetCallerIdentity", "DescribeStacks"], "{status}");
    }
}

#[test]
fn the_account_guard_stops_before_any_other_call() {
    let fake = FakeAws::start();
    fake.respond("GetCallerIdentity", fixture("sts-get-caller-identity.xml"));
    let r = one_stack_repo("111111111111");
    let run = plan_against(&fake, &r, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains(
            "the AWS credentials belong to account 123456789012, but environment `prod` deploys to account 111111111111; refusing to touch it"
        ),
        "{}",
        run.stderr
    );
    let actions: Vec<String> = fake
        .requests()
        .into_iter()
        .filter_map(|q| q.action)
        .collect();
    assert_eq!(actions, ["GetCallerIdentity"]);
    assert!(run.stdout.is_empty());
}

/// XML-escapes text for a recorded response.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn error(code: &str, message: &str) -> (u16, String) {
    (
        400,
        fixture("error.xml")
            .replace("{{CODE}}", code)
            .replace("{{MESSAGE}}", message),
    )
}

/// The stack of the AWS documentation's change set examples: an EC2 instance with three
/// parameters, as a formwork config whose values are `instance_type` and the documented others.
fn sample_repo(instance_type: &str) -> Repo {
    let r = Repo::new();
    r.write(
        "pipelines/p/pipeline.yml",
        &format!(
            "pipeline: p\nstacks:\n  web:\n    template: instance.yml\n    stack_name: SampleStack\n    parameters:\n      Purpose: production\n      KeyPairName: MyNewKeyName\n      InstanceType: {instance_type}\n"
        ),
    );
    r.write(
        "pipelines/p/instance.yml",
        "Parameters:\n  Purpose:\n    Type: String\n    AllowedValues: [testing, production]\n  KeyPairName:\n    Type: AWS::EC2::KeyPair::KeyName\n  InstanceType:\n    Type: String\n    AllowedValues: [t2.micro, t2.small, t2.medium]\nResources:\n  MyEC2Instance:\n    Type: AWS::EC2::Instance\n    Properties:\n      KeyName: !Ref KeyPairName\n      InstanceType: !Ref InstanceType\n      ImageId: ami-8fcee4e5\n      Tags:\n        - Key: Purpose\n          Value: !Ref Purpose\n",
    );
    r.write(
        "environments/prod/environment.yml",
        "pipeline: p\naccount: \"123456789012\"\nregion: us-east-1\n",
    );
    r.commit("sample");
    r
}

/// A CloudFormation that already has a change set of the name formwork derives, as a re-run of
/// the same commit finds it.
fn fake_with_existing_change_set() -> FakeAws {
    let fake = FakeAws::start();
    fake.respond("GetCallerIdentity", fixture("sts-get-caller-identity.xml"));
    fake.respond(
        "DescribeStacks",
        fixture("describe-stacks.xml")
            .replace("{{NAME}}", "SampleStack")
            .replace("{{STATUS}}", "UPDATE_COMPLETE")
            .replace("{{REASON}}", ""),
    );
    fake.respond(
        "GetTemplate",
        fixture("get-template.xml").replace(
            "{{BODY}}",
            &xml("Resources:\n  MyEC2Instance:\n    Type: AWS::EC2::Instance\n    Properties:\n      ImageId: ami-8fcee4e5\n"),
        ),
    );
    fake.respond("ListChangeSets", fixture("list-change-sets-empty.xml"));
    fake.respond("DeleteChangeSet", fixture("delete-change-set.xml"));
    fake.respond("DescribeStackEvents", fixture("describe-stack-events.xml"));
    fake
}

#[test]
fn a_re_run_uses_its_change_set_again_when_made_with_the_same_inputs() {
    let fake = fake_with_existing_change_set();
    fake.respond_seq(
        "CreateChangeSet",
        vec![error(
            "AlreadyExistsException",
            "ChangeSet formwork-x already exists and cannot be created again",
        )],
    );
    fake.respond(
        "DescribeChangeSet",
        fixture("describe-change-set-replacement.xml"),
    );
    let r = sample_repo("t2.small");
    let run = plan_against(&fake, &r, &["--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let unit = &plan["environments"][0]["units"][0];
    assert_eq!(unit["action"], "update");
    assert_eq!(
        unit["change_set"]["id"],
        "arn:aws:cloudformation:us-east-1:123456789012:changeSet/SampleChangeSet-multiple/1a2345b6-0000-00a0-a123-00abc0abc000"
    );
    assert_eq!(unit["resources"][0]["replacement"], "true");
    assert_eq!(unit["resources"][0]["replacement_source"], "cloudformation");
    // The stack's newest event when the change set was made: apply refuses it after any other
    // operation on the stack.
    assert_eq!(unit["last_event"], "Event-1-Id");
    let actions: Vec<String> = fake
        .requests()
        .into_iter()
        .filter_map(|q| q.action)
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "CreateChangeSet").count(),
        1,
        "{actions:?}"
    );
    assert!(
        !actions.contains(&"DeleteChangeSet".to_string()),
        "{actions:?}"
    );
}

#[test]
fn a_re_run_with_other_inputs_replaces_its_change_set() {
    let fake = fake_with_existing_change_set();
    fake.respond_seq(
        "CreateChangeSet",
        vec![
            error(
                "AlreadyExistsException",
                "ChangeSet formwork-x already exists and cannot be created again",
            ),
            (200, fixture("create-change-set.xml")),
        ],
    );
    fake.respond_seq(
        "DescribeChangeSet",
        vec![
            (200, fixture("describe-change-set-replacement.xml")),
            error("ChangeSetNotFound", "ChangeSet [formwork-x] does not exist"),
            (200, fixture("describe-change-set-replacement.xml")),
        ],
    );
    // InstanceType differs from what the existing change set was made with.
    let r = sample_repo("t2.medium");
    let run = plan_against(&fake, &r, &["--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let actions: Vec<String> = fake
        .requests()
        .into_iter()
        .filter_map(|q| q.action)
        .collect();
    assert_eq!(
        actions,
        [
            "GetCallerIdentity",
            "DescribeStacks",
            "GetTemplate",
            "CreateChangeSet",
            "DescribeChangeSet",
            "DeleteChangeSet",
            "DescribeChangeSet",
            "CreateChangeSet",
            "DescribeChangeSet",
            "DescribeStackEvents",
            "ListChangeSets",
        ]
    );
    let create = fake
        .requests()
        .into_iter()
        .rfind(|q| q.action.as_deref() == Some("CreateChangeSet"))
        .unwrap();
    assert!(
        create.body.contains("ParameterValue=t2.medium"),
        "{}",
        create.body
    );
    assert!(
        create.body.contains("ChangeSetType=UPDATE"),
        "{}",
        create.body
    );
}

/// With IncludeNestedStacks, CloudFormation makes a change set per nested stack and names it
/// on the nested stack's resource change (the local endpoints do not): formwork asks for them
/// and shows the nested stacks' changes under the nested stack's logical id.
#[tokio::test]
async fn nested_change_sets_are_asked_for_and_read_into_the_plan() {
    let fake = FakeAws::start();
    fake.respond("CreateChangeSet", fixture("create-change-set.xml"));
    fake.respond_seq(
        "DescribeChangeSet",
        vec![
            (200, fixture("describe-change-set-nested-root.xml")),
            (200, fixture("describe-change-set-nested-child.xml")),
        ],
    );
    let cfn = cfn_client(&fake.url);
    let (id, _) = cfn
        .create_change_set(&formwork::aws::cfn::ChangeSetRequest {
            stack_name: "prod-main".into(),
            change_set_name: "formwork-root".into(),
            create: false,
            template: formwork::aws::cfn::TemplateSource::Url(
                "https://b.s3.us-east-1.amazonaws.com/formwork/templates/x.template".into(),
            ),
            parameters: vec![],
            capabilities: vec![],
            tags: vec![],
            description: "d".into(),
            include_nested: true,
            role_arn: None,
            notification_arns: None,
            rollback: None,
            on_failure: None,
            imports: vec![],
        })
        .await
        .unwrap();
    let info = cfn
        .wait_change_set(&id, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let ids: Vec<&str> = info.changes.iter().map(|c| c.logical_id.as_str()).collect();
    assert_eq!(ids, ["Network", "Network/VPC"]);
    assert!(
        info.changes[0]
            .nested_change_set
            .as_deref()
            .unwrap()
            .contains("formwork-root-Network-1ABC")
    );
    let changes = merge_changes(&info.changes, &[], &Masker::new());
    let vpc = changes
        .iter()
        .find(|c| c.logical_id == "Network/VPC")
        .unwrap();
    assert_eq!(vpc.replacement, Replacement::True);
    let sent = fake.requests();
    let create = sent
        .iter()
        .find(|r| r.action.as_deref() == Some("CreateChangeSet"))
        .unwrap();
    assert!(
        create.body.contains("IncludeNestedStacks=true"),
        "{}",
        create.body
    );
    let described: Vec<&str> = sent
        .iter()
        .filter(|r| r.action.as_deref() == Some("DescribeChangeSet"))
        .map(|r| r.body.as_str())
        .collect();
    assert_eq!(described.len(), 2);
    assert!(
        described[1].contains("formwork-root-Network-1ABC"),
        "{}",
        described[1]
    );
}

/// One stack of `describe-stacks.xml`, named and with a status.
fn listed_stack(name: &str, status: &str) -> String {
    fixture("describe-stacks.xml")
        .replace("{{NAME}}", name)
        .replace("{{STATUS}}", status)
        .replace("{{REASON}}", "")
}

#[tokio::test]
async fn a_listing_of_the_stacks_follows_every_page_and_leaves_deleted_stacks_out() {
    // DescribeStacks without a stack name answers page by page with a NextToken (moto answers
    // in one page, so the pages are served here). A deleted stack may be listed; it is none.
    let first = listed_stack("prod-vpc", "UPDATE_COMPLETE").replace(
        "</Stacks>",
        "</Stacks>\n    <NextToken>page-2-token</NextToken>",
    );
    let second = listed_stack("prod-app", "CREATE_COMPLETE").replace(
        "</Stacks>",
        &format!(
            "{}</Stacks>",
            listed_stack("prod-old", "DELETE_COMPLETE")
                .split("<member>")
                .nth(1)
                .map(|m| format!("<member>{}", m.split("</Stacks>").next().unwrap()))
                .unwrap()
        ),
    );
    let fake = FakeAws::start();
    fake.respond_seq("DescribeStacks", vec![(200, first), (200, second)]);
    let stacks = cfn_client(&fake.url).list_stacks().await.unwrap();
    let names: Vec<&str> = stacks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["prod-vpc", "prod-app"]);
    assert_eq!(stacks[0].status, "UPDATE_COMPLETE");
    assert_eq!(
        stacks[1].outputs["StartPage"],
        "http://my-load-balancer.amazonaws.com:80/index.html"
    );
    assert_eq!(
        stacks[0].last_updated.as_deref(),
        Some("2010-07-27T22:28:28Z")
    );
    let sent: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.action.as_deref() == Some("DescribeStacks"))
        .map(|r| r.body)
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        !sent[0].contains("StackName") && !sent[0].contains("NextToken"),
        "{}",
        sent[0]
    );
    assert!(sent[1].contains("NextToken=page-2-token"), "{}", sent[1]);
}
