//! The local AWS endpoints the integration tests use answer as expected: moto server and
//! LocalStack (see tests/it/common/aws.rs and scripts/emulators).

use crate::common::aws;

use std::collections::HashSet;

const CALLER_IDENTITY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
const LIST_STACKS: &str = "Action=ListStacks&Version=2010-05-15";

fn account_in(body: &str) -> &str {
    body.split_once("<Account>")
        .and_then(|(_, rest)| rest.split_once("</Account>"))
        .map(|(account, _)| account)
        .unwrap_or_else(|| panic!("no <Account> in {body}"))
}

#[test]
fn moto_answers_sts_and_cloudformation() {
    let moto = aws::moto();
    assert!(moto.url.starts_with("http://127.0.0.1:"), "{}", moto.url);
    assert_eq!(moto.get("/moto-api/").status, 200);

    let identity = moto.query("sts", CALLER_IDENTITY);
    assert_eq!(identity.status, 200, "{}", identity.body);
    assert_eq!(account_in(&identity.body), "123456789012");
    assert_eq!(moto.account(), "123456789012");

    let stacks = moto.query("cloudformation", LIST_STACKS);
    assert_eq!(stacks.status, 200, "{}", stacks.body);
    assert!(
        stacks.body.contains("<ListStacksResult>"),
        "{}",
        stacks.body
    );
}

#[test]
fn localstack_answers_sts_and_cloudformation() {
    let localstack = aws::localstack();
    assert!(
        localstack.url.starts_with("http://127.0.0.1:"),
        "{}",
        localstack.url
    );
    let health = localstack.get("/_localstack/health");
    assert_eq!(health.status, 200);
    let health: serde_json::Value = serde_json::from_str(&health.body).unwrap();
    for service in ["cloudformation", "ssm", "s3", "sts", "ec2", "iam"] {
        let state = health["services"][service].as_str().unwrap_or_default();
        assert!(
            state == "available" || state == "running",
            "{service}: {state:?} in {health}"
        );
    }

    let identity = localstack.query("sts", CALLER_IDENTITY);
    assert_eq!(identity.status, 200, "{}", identity.body);
    assert_eq!(account_in(&identity.body), "000000000000");
    assert_eq!(localstack.account(), "000000000000");

    let stacks = localstack.query("cloudformation", LIST_STACKS);
    assert_eq!(stacks.status, 200, "{}", stacks.body);
    assert!(
        stacks.body.contains("<ListStacksResult>"),
        "{}",
        stacks.body
    );
}

#[test]
fn localstack_takes_a_12_digit_access_key_as_the_account() {
    let localstack = aws::localstack();
    let identity = localstack.query_as("111111111111", "sts", CALLER_IDENTITY);
    assert_eq!(identity.status, 200, "{}", identity.body);
    assert_eq!(account_in(&identity.body), "111111111111");
    let env = localstack.env_for_account("111111111111");
    assert!(env.contains(&("AWS_ACCESS_KEY_ID".into(), "111111111111".into())));
}

#[test]
fn endpoint_environment_points_at_the_endpoint_only() {
    let moto = aws::moto();
    let env = moto.env();
    let get = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(get("AWS_ENDPOINT_URL"), Some(moto.url.as_str()));
    assert_eq!(get("AWS_ACCESS_KEY_ID"), Some("testing"));
    assert_eq!(get("AWS_SECRET_ACCESS_KEY"), Some("testing"));
    assert_eq!(get("AWS_EC2_METADATA_DISABLED"), Some("true"));
    assert_eq!(get("AWS_REGION"), None);
    assert!(aws::UNSET.contains(&"AWS_REGION"));
}

#[test]
fn unique_names_differ_and_are_valid_stack_names() {
    let names: Vec<String> = (0..1000).map(|_| aws::unique("formwork-test")).collect();
    assert_eq!(names.iter().collect::<HashSet<_>>().len(), names.len());
    for name in &names {
        assert!(name.len() <= 40, "{name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{name}"
        );
    }
}
