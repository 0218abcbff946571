//! Adopting existing resources (`import:`): a stack that names resources to import gets an
//! IMPORT change set with `ResourcesToImport` until it has them, and the plan shows the
//! imports as such. Neither moto nor LocalStack makes IMPORT change sets, so CloudFormation's
//! answers are the shapes the AWS documentation records (`tests/fixtures/aws/`); the test asserts
//! what formwork sent.

use crate::common;

use common::Repo;
use common::fake_aws::{FakeAws, decoded, fixture, form_value};

const TEMPLATE: &str = "\
Resources:
  Logs:
    Type: AWS::S3::Bucket
    DeletionPolicy: Retain
    Properties:
      BucketName: !Sub shop-logs-${AWS::Region}
  Other:
    Type: AWS::SNS::Topic
";

fn repo(env_extra: &str) -> Repo {
    Repo::one_pipeline(
        "shop",
        "pipeline: shop\nstacks:\n  logs:\n    template: templates/logs.yml\n",
        &[("logs.yml", TEMPLATE)],
        "prod",
        "us-east-1",
        env_extra,
    )
}

#[test]
fn a_stack_that_imports_gets_an_import_change_set_shown_as_imports() {
    let r = repo(
        "stacks:\n  logs:\n    import:\n      Logs:\n        BucketName: shop-logs-${env.region}\n",
    );
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 0, "{}", v.all());
    let fake = FakeAws::start();
    fake.respond("GetCallerIdentity", fixture("sts-get-caller-identity.xml"));
    fake.respond_status(
        "DescribeStacks",
        400,
        fixture("error.xml")
            .replace("{{CODE}}", "ValidationError")
            .replace("{{MESSAGE}}", "Stack with id prod-logs does not exist"),
    );
    fake.respond("CreateChangeSet", fixture("create-change-set.xml"));
    fake.respond(
        "DescribeChangeSet",
        fixture("describe-change-set-import.xml")
            .replace("{{STACK}}", "prod-logs")
            .replace("{{NAME}}", "formwork-import")
            .replace("{{LOGICAL_ID}}", "Logs")
            .replace("{{PHYSICAL_ID}}", "shop-logs-us-east-1")
            .replace("{{TYPE}}", "AWS::S3::Bucket"),
    );
    let plan = fake.formwork(r.path(), &["plan", "--no-record", "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let json = plan.json();
    let unit = &json["environments"][0]["units"][0];
    assert_eq!(unit["action"], "create", "{unit:#}");
    assert_eq!(unit["change_set"]["change_set_type"], "IMPORT");
    assert_eq!(unit["resources"][0]["logical_id"], "Logs");
    assert_eq!(unit["resources"][0]["action"], "import");

    let sent: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|q| q.action.as_deref() == Some("CreateChangeSet"))
        .map(|q| q.body)
        .collect();
    assert_eq!(sent.len(), 1);
    let body = &sent[0];
    let value = |k: &str| form_value(body, k).map(|v| decoded(&v));
    assert_eq!(value("ChangeSetType").as_deref(), Some("IMPORT"));
    assert_eq!(
        value("ResourcesToImport.member.1.LogicalResourceId").as_deref(),
        Some("Logs")
    );
    assert_eq!(
        value("ResourcesToImport.member.1.ResourceType").as_deref(),
        Some("AWS::S3::Bucket")
    );
    assert_eq!(
        value("ResourcesToImport.member.1.ResourceIdentifier.entry.1.key").as_deref(),
        Some("BucketName"),
        "{body}"
    );
    assert_eq!(
        value("ResourcesToImport.member.1.ResourceIdentifier.entry.1.value").as_deref(),
        Some("shop-logs-us-east-1")
    );
    assert!(
        form_value(body, "OnStackFailure").is_none(),
        "an import takes no OnStackFailure"
    );

    let text = fake.formwork(r.path(), &["plan", "--no-record"]);
    assert!(
        text.stdout
            .lines()
            .any(|l| l.contains("Logs") && l.contains("AWS::S3::Bucket") && l.contains("import")),
        "{}",
        text.stdout
    );
}

#[test]
fn imports_are_checked_against_the_template() {
    let r = repo(
        "stacks:\n  logs:\n    import:\n      Log:\n        BucketName: x\n      Other:\n        TopicArn: arn:aws:sns:us-east-1:123456789012:t\n",
    );
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 1, "{}", v.all());
    let out = v.all();
    common::assert_reported(
        &out,
        &[
            (
                "stack `logs` imports `Log`, which its template does not declare",
                "environments/prod/environment.yml:7:7",
            ),
            (
                "did you mean `Logs`?",
                "environments/prod/environment.yml:7:7",
            ),
            (
                "`Other` is imported, and CloudFormation imports only resources that have a DeletionPolicy",
                "environments/prod/environment.yml:9:7",
            ),
        ],
    );
}
