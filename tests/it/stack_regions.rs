//! A stack with a region of its own (`region:` on a pipeline stack or an environment's stack),
//! on moto server, which keeps every region apart as AWS does: the stack is created, described,
//! compared and deleted in its region, with the environment's account; its `${ssm:…}` values
//! are read there (the same parameter name holds another value in the environment's region);
//! a stack of the environment's region takes its outputs; the plan names the region; the IAM
//! policy covers it; and `formwork validate` rejects what cannot work across regions.

use crate::common;

use common::Repo;
use common::aws::{moto_with_change_set_outputs as moto, unique};
use common::sdk::formwork_on;
use common::stacks;

const ENV_REGION: &str = "eu-west-1";
const CERT_REGION: &str = "us-east-1";
const EXTRA_REGION: &str = "us-west-2";

const CERT: &str = "\
Parameters:
  Label:
    Type: String
Resources:
  Marker:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /regions/${AWS::StackName}/marker
      Type: String
      Value: !Ref Label
Outputs:
  Label:
    Value: !Ref Label
  Region:
    Value: !Ref AWS::Region
";

const WEB: &str = "\
Parameters:
  CertLabel:
    Type: String
  CertRegion:
    Type: String
  Own:
    Type: String
Resources:
  Holder:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /regions/${AWS::StackName}/holder
      Type: String
      Value: !Sub ${CertLabel} ${CertRegion} ${Own}
";

const EXTRA: &str = "\
Resources:
  Marker:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /regions/${AWS::StackName}/extra
      Type: String
      Value: extra
";

/// A pipeline whose `cert` stack lives in us-east-1 (set by the pipeline) and `extra` in
/// us-west-2 (set by the environment), and whose `web` stack, in the environment's eu-west-1,
/// takes `cert`'s outputs. Both `cert` and `web` read SSM parameter `ssm`.
fn repo(env: &str, ssm: &str) -> Repo {
    let r = Repo::empty_first();
    r.write(
        "pipelines/site/pipeline.yml",
        &format!(
            "pipeline: site\nstacks:\n  cert:\n    template: templates/cert.yml\n    region: {CERT_REGION}\n    parameters:\n      Label: ${{ssm:{ssm}}}\n  web:\n    template: templates/web.yml\n    parameters:\n      CertLabel: ${{cert.Label}}\n      CertRegion: ${{cert.Region}}\n      Own: ${{ssm:{ssm}}}\n  extra:\n    template: templates/extra.yml\n"
        ),
    );
    r.write("pipelines/site/templates/cert.yml", CERT);
    r.write("pipelines/site/templates/web.yml", WEB);
    r.write("pipelines/site/templates/extra.yml", EXTRA);
    r.write(
        &format!("environments/{env}/environment.yml"),
        &format!(
            "pipeline: site\naccount: \"123456789012\"\nregion: {ENV_REGION}\nstacks:\n  extra:\n    region: {EXTRA_REGION}\n"
        ),
    );
    r.commit("a site across regions");
    r
}

#[test]
fn a_stack_in_a_region_of_its_own_is_planned_applied_and_deleted_there() {
    let env = unique("rgn");
    let ssm = format!("/regions/{env}/label");
    // The same name in two regions: two parameters, each stack reading its own region's.
    let cert_label = format!("certificate-{env}");
    let web_label = format!("website-{env}");
    stacks::put_secure_string(moto(), CERT_REGION, &ssm, &cert_label);
    stacks::put_secure_string(moto(), ENV_REGION, &ssm, &web_label);
    let r = repo(&env, &ssm);
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 0, "{}", v.all());

    // The plan says where each stack goes; `web` waits for `cert` across the regions.
    let json = formwork_on(
        moto(),
        r.path(),
        &["plan", "--env", &env, "--output", "json"],
    );
    assert_eq!(json.code, 2, "{}", json.all());
    let planned = json.json();
    let units = stacks::env_units(&planned, &env);
    let region_of = |stack: &str| {
        units.iter().find(|u| u["stack"] == stack).unwrap()["region"]
            .as_str()
            .map(str::to_string)
    };
    assert_eq!(
        region_of("cert").as_deref(),
        Some(CERT_REGION),
        "{planned:#}"
    );
    assert_eq!(region_of("extra").as_deref(), Some(EXTRA_REGION));
    assert_eq!(
        region_of("web"),
        None,
        "the environment's region is not repeated"
    );
    // SecureStrings read in either region stay masked. (One plan before the apply: moto makes
    // a second stack of the same name for a second CREATE change set.)
    let out = json.all();
    assert!(
        !out.contains(&cert_label) && !out.contains(&web_label),
        "{out}"
    );

    let applied = formwork_on(moto(), r.path(), &["apply", "--env", &env]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    // Each stack is in its region and in no other.
    let cert = format!("{env}-cert");
    let web = format!("{env}-web");
    let extra = format!("{env}-extra");
    assert!(stacks::describe_opt(moto(), CERT_REGION, &cert).is_some());
    assert!(stacks::describe_opt(moto(), ENV_REGION, &cert).is_none());
    assert!(stacks::describe_opt(moto(), EXTRA_REGION, &extra).is_some());
    assert!(stacks::describe_opt(moto(), ENV_REGION, &extra).is_none());
    assert_eq!(
        stacks::output(moto(), CERT_REGION, &cert, "Region"),
        CERT_REGION
    );
    assert_eq!(
        stacks::ssm_value(moto(), CERT_REGION, &format!("/regions/{cert}/marker")),
        cert_label,
        "cert read the parameter of its own region"
    );
    // web, in the environment's region, took cert's outputs and its own region's parameter.
    assert_eq!(
        stacks::ssm_value(moto(), ENV_REGION, &format!("/regions/{web}/holder")),
        format!("{cert_label} {CERT_REGION} {web_label}")
    );

    // Nothing changed: every stack is compared where it lives.
    let again = formwork_on(moto(), r.path(), &["plan", "--env", &env, "--refresh"]);
    assert_eq!(again.code, 0, "{}", again.all());

    // The IAM policy names each stack in its region, and the parameters read in each.
    let iam = r.run(&["iam-policy", "--env", &env, "--apply"]);
    assert_eq!(iam.code, 0, "{}", iam.all());
    for arn in [
        format!("arn:aws:cloudformation:{CERT_REGION}:123456789012:stack/{cert}/*"),
        format!("arn:aws:cloudformation:{EXTRA_REGION}:123456789012:stack/{extra}/*"),
        format!("arn:aws:cloudformation:{ENV_REGION}:123456789012:stack/{web}/*"),
        format!("arn:aws:cloudformation:{CERT_REGION}:123456789012:changeSet/formwork-*/*"),
        format!(
            "arn:aws:ssm:{CERT_REGION}:123456789012:parameter/{}",
            ssm.trim_start_matches('/')
        ),
        format!(
            "arn:aws:ssm:{ENV_REGION}:123456789012:parameter/{}",
            ssm.trim_start_matches('/')
        ),
    ] {
        assert!(iam.stdout.contains(&arn), "{arn}:\n{}", iam.stdout);
    }

    // A stack of another region that leaves the config is deleted in its region.
    r.write(
        "pipelines/site/pipeline.yml",
        &r.read("pipelines/site/pipeline.yml")
            .replace("  extra:\n    template: templates/extra.yml\n", ""),
    );
    r.write(
        &format!("environments/{env}/environment.yml"),
        &format!("pipeline: site\naccount: \"123456789012\"\nregion: {ENV_REGION}\n"),
    );
    r.commit("drop extra");
    let removal = formwork_on(
        moto(),
        r.path(),
        &[
            "plan", "--env", &env, "--base", "HEAD~1", "--head", "HEAD", "--output", "json",
        ],
    );
    assert_eq!(removal.code, 2, "{}", removal.all());
    let planned = removal.json();
    let gone = stacks::unit(&planned, "extra");
    assert_eq!(gone["action"], "remove", "{planned:#}");
    assert_eq!(gone["region"], EXTRA_REGION);
    let text = formwork_on(
        moto(),
        r.path(),
        &["plan", "--env", &env, "--base", "HEAD~1", "--head", "HEAD"],
    );
    assert!(
        text.stdout.contains(&format!(
            "extra ({extra} in {EXTRA_REGION}) is no longer in the config"
        )),
        "{}",
        text.stdout
    );
    let deleted = formwork_on(
        moto(),
        r.path(),
        &["apply", "--env", &env, "--allow-delete"],
    );
    assert_eq!(deleted.code, 0, "{}", deleted.all());
    assert!(stacks::describe_opt(moto(), EXTRA_REGION, &extra).is_none());
    assert!(stacks::describe_opt(moto(), CERT_REGION, &cert).is_some());
}

#[test]
fn validate_rejects_what_cannot_work_across_regions() {
    let r = Repo::empty_first();
    r.write(
        "pipelines/p/pipeline.yml",
        "pipeline: p\nstacks:\n  exporter:\n    template: exporter.yml\n    region: us-east-1\n  importer:\n    template: importer.yml\n  twin:\n    template: exporter.yml\n    stack_name: shared-name\n  other:\n    template: importer.yml\n    stack_name: shared-name\n    region: Mars-1\n",
    );
    r.write(
        "pipelines/p/exporter.yml",
        "Resources:\n  T:\n    Type: AWS::SNS::Topic\nOutputs:\n  Arn:\n    Value: !Ref T\n    Export:\n      Name: !Sub ${AWS::StackName}-arn\n",
    );
    r.write(
        "pipelines/p/importer.yml",
        "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !ImportValue e-exporter-arn\n",
    );
    r.write(
        "environments/e/environment.yml",
        "pipeline: p\naccount: \"123456789012\"\nregion: eu-west-1\nstacks:\n  twin:\n    region: us-west-2\n",
    );
    r.commit("regions done wrong");
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 1, "{}", v.all());
    common::assert_reported(
        &v.all(),
        &[
            (
                "`Mars-1` is not an AWS region name",
                "pipelines/p/pipeline.yml:14:13",
            ),
            (
                "stack `importer` (region eu-west-1) imports `e-exporter-arn`, which stack `exporter` exports in region us-east-1",
                "pipelines/p/importer.yml:5:18",
            ),
            (
                "stack name `shared-name` is used by `other` in region eu-west-1 and by `twin` in region us-west-2",
                "pipelines/p/pipeline.yml:13:17",
            ),
        ],
    );
}
