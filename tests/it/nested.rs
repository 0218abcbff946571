//! Nested stacks whose templates live in the config repository, named by a relative
//! `TemplateURL` (as `aws cloudformation package` takes them) or by a published URL that
//! `published_templates:` maps to a directory. The children are part of the parent's desired
//! state: checked with it, uploaded under their content digest to the environment's artifact
//! bucket with the parent's URLs replaced, and a child edit affects the parent.

use crate::common;

use common::aws::{localstack, unique};
use common::sdk::{self, block, formwork_on};
use common::stacks::{ssm_value, states, unit};
use common::{Repo, Run};

const MAIN: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Description: 'A network and the settings that describe it, as two nested stacks'
Parameters:
  ClassB:
    Type: Number
    Default: 30
Resources:
  Network:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: ./nested/network.yml   # kept beside this template
      Parameters:
        EnvironmentName: !Ref AWS::StackName
        ClassB: !Ref ClassB
  Settings:
    Type: 'AWS::CloudFormation::Stack'
    Properties:
      TemplateURL: 'nested/settings.yml'
      Parameters:
        EnvironmentName: !Ref AWS::StackName
        VpcId: !GetAtt Network.Outputs.VpcId
Outputs:
  VpcId:
    Value: !GetAtt Network.Outputs.VpcId
"#;

const NETWORK: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  EnvironmentName:
    Type: String
  ClassB:
    Type: Number
Resources:
  VPC:
    Type: AWS::EC2::VPC
    Properties:
      CidrBlock: !Sub '10.${ClassB}.0.0/16'
      Tags:
        - Key: Name
          Value: !Ref EnvironmentName
Outputs:
  VpcId:
    Value: !Ref VPC
"#;

const SETTINGS: &str = r#"{
  "Parameters": {
    "EnvironmentName": {"Type": "String"},
    "VpcId": {"Type": "String"}
  },
  "Resources": {
    "VpcParameter": {
      "Type": "AWS::SSM::Parameter",
      "Properties": {
        "Name": {"Fn::Sub": "/${EnvironmentName}/vpc"},
        "Type": "String",
        "Value": {"Ref": "VpcId"}
      }
    }
  }
}
"#;

const PIPELINE: &str = "pipeline: sys\nstacks:\n  main:\n    template: templates/main.yml\n";

fn system(env: &str, region: &str, env_extra: &str) -> Repo {
    Repo::one_pipeline(
        "sys",
        PIPELINE,
        &[
            ("main.yml", MAIN),
            ("nested/network.yml", NETWORK),
            ("nested/settings.yml", SETTINGS),
        ],
        env,
        region,
        env_extra,
    )
}

#[test]
fn a_child_edit_affects_the_parent_and_says_which_child() {
    let r = system("staging", "eu-west-1", "artifact_bucket: art-bucket\n");
    r.edit(
        "pipelines/sys/templates/nested/network.yml",
        "      CidrBlock",
        "      EnableDnsSupport: true\n      CidrBlock",
    );
    r.commit("dns");
    let run = r.run(&["affected", "--base", "HEAD~1", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let a = run.json();
    let units = a["units"].as_array().unwrap();
    assert_eq!(units.len(), 1, "{a:#}");
    assert_eq!(units[0]["stack"], "main");
    assert_eq!(
        units[0]["reasons"],
        serde_json::json!([{"kind": "nested_template", "resource": "Network",
                            "path": "pipelines/sys/templates/nested/network.yml"}]),
        "{a:#}"
    );
    // A stack taking the parent's output of a nested stack's output is reached too.
    r.write(
        "pipelines/sys/pipeline.yml",
        &format!("{PIPELINE}  reader:\n    template: templates/nested/settings.yml\n    parameters:\n      EnvironmentName: reader\n      VpcId: ${{main.VpcId}}\n"),
    );
    r.commit("a reader");
    r.edit(
        "pipelines/sys/templates/nested/network.yml",
        "EnableDnsSupport: true",
        "EnableDnsSupport: false",
    );
    r.commit("no dns");
    let run = r.run(&["affected", "--base", "HEAD~1", "--output", "json"]);
    let reader = run.json()["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["stack"] == "reader")
        .cloned()
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert_eq!(
        reader["reasons"][0]["because"],
        "Network.Outputs.VpcId may change with the nested stack's update",
        "{reader:#}"
    );
    let text = r.run(&["affected", "--base", "HEAD~1"]);
    assert!(
        text.stdout.contains(
            "nested template pipelines/sys/templates/nested/network.yml (Network) changed"
        ),
        "{}",
        text.stdout
    );

    // A comment in the parent is no change; an edit of the parent itself is.
    r.edit("pipelines/sys/templates/main.yml", "# kept", "# still kept");
    r.commit("comment");
    let run = r.run(&["affected", "--base", "HEAD~1", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    r.edit(
        "pipelines/sys/templates/main.yml",
        "Default: 30",
        "Default: 31",
    );
    r.commit("class b");
    let run = r.run(&["affected", "--base", "HEAD~1", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert_eq!(run.json()["units"][0]["reasons"][0]["kind"], "template");
}

#[test]
fn children_are_checked_against_what_their_parent_passes() {
    let r = system("staging", "eu-west-1", "");
    r.edit(
        "pipelines/sys/templates/main.yml",
        "        ClassB: !Ref ClassB\n",
        "        ClasB: !Ref ClassB\n",
    );
    r.edit(
        "pipelines/sys/templates/main.yml",
        "Outputs:\n",
        "  Missing:\n    Type: AWS::CloudFormation::Stack\n    Properties:\n      TemplateURL: nested/none.yml\n  Outside:\n    Type: AWS::CloudFormation::Stack\n    Properties:\n      TemplateURL: ../../../../etc/passwd\n  Remote:\n    Type: AWS::CloudFormation::Stack\n    Properties:\n      TemplateURL: https://s3.amazonaws.com/other/remote.yml\nOutputs:\n",
    );
    r.commit("broken");
    let run = r.run(&["validate", "--output", "json"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let out = run.all();
    for (text, at) in [
        (
            "nested stack `Network` passes `ClasB`, which pipelines/sys/templates/nested/network.yml does not declare",
            "pipelines/sys/templates/main.yml:14:9",
        ),
        (
            "nested stack `Network` does not pass `ClassB`, which pipelines/sys/templates/nested/network.yml requires",
            "pipelines/sys/templates/main.yml:8:3",
        ),
        (
            "nested template pipelines/sys/templates/nested/none.yml does not exist",
            "pipelines/sys/templates/main.yml:25:20",
        ),
        (
            "nested template `../../../../etc/passwd` leaves the repository",
            "pipelines/sys/templates/main.yml:29:20",
        ),
        (
            "nests templates of the repository, and environment `staging` has no artifact bucket",
            "pipelines/sys/pipeline.yml:4:15",
        ),
    ] {
        let v = run.json();
        let found = v["diagnostics"]
            .as_array()
            .unwrap_or_else(|| panic!("{out}"))
            .iter()
            .find(|d| d["message"].as_str().unwrap_or("").contains(text))
            .unwrap_or_else(|| panic!("no `{text}` in {out}"));
        let loc = format!(
            "{}:{}:{}",
            found["file"].as_str().unwrap(),
            found["line"],
            found["column"]
        );
        assert_eq!(loc, at, "{text}: {found:#}");
    }
    assert!(out.contains("did you mean `ClassB`"), "{out}");
    // A template CloudFormation fetches itself is not formwork's to check.
    assert!(!out.contains("remote.yml"), "{out}");
}

#[test]
fn a_template_that_nests_itself_is_refused() {
    let r = system("staging", "eu-west-1", "artifact_bucket: art-bucket\n");
    r.edit(
        "pipelines/sys/templates/nested/network.yml",
        "Outputs:\n",
        "  Again:\n    Type: AWS::CloudFormation::Stack\n    Properties:\n      TemplateURL: ../main.yml\nOutputs:\n",
    );
    r.commit("loop");
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.all().contains("nested templates form a loop: pipelines/sys/templates/main.yml → pipelines/sys/templates/nested/network.yml → pipelines/sys/templates/main.yml"),
        "{}",
        run.all()
    );
}

/// The children's needs are the parent's: capabilities given in the pipeline must cover an
/// IAM role created two levels down.
#[test]
fn capabilities_cover_what_the_children_create() {
    let r = system("staging", "eu-west-1", "artifact_bucket: art-bucket\n");
    r.edit(
        "pipelines/sys/templates/nested/network.yml",
        "Outputs:\n",
        "  Roles:\n    Type: AWS::CloudFormation::Stack\n    Properties:\n      TemplateURL: roles/role.yml\nOutputs:\n",
    );
    r.write(
        "pipelines/sys/templates/nested/roles/role.yml",
        "Resources:\n  Role:\n    Type: AWS::IAM::Role\n    Properties:\n      AssumeRolePolicyDocument: {}\n",
    );
    r.edit(
        "pipelines/sys/pipeline.yml",
        "templates/main.yml\n",
        "templates/main.yml\n    capabilities: [CAPABILITY_AUTO_EXPAND]\n",
    );
    r.commit("a role");
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.all().contains(
            "stack `main` needs CAPABILITY_IAM: its template creates `Network/Roles/Role`"
        ),
        "{}",
        run.all()
    );
    r.edit(
        "pipelines/sys/pipeline.yml",
        "[CAPABILITY_AUTO_EXPAND]",
        "[CAPABILITY_IAM]",
    );
    r.commit("acknowledged");
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.all());
}

fn run_ls(r: &Repo, args: &[&str]) -> Run {
    formwork_on(localstack(), r.path(), args)
}

fn bucket_keys(region: &str, bucket: &str) -> Vec<String> {
    sdk::bucket_keys(localstack(), region, bucket)
}

/// From nothing on LocalStack: the children are uploaded, the parent is created with their
/// URLs, the nested stacks pass values to each other, and a plan after apply shows no change.
/// Then a child edit plans an update of the parent's nested stack resource.
#[test]
fn nested_stacks_are_packaged_planned_and_applied() {
    let env = unique("ls-nest");
    let region = "eu-west-1";
    let bucket = unique("nest-art");
    block(async {
        sdk::s3(localstack(), region)
            .create_bucket()
            .bucket(&bucket)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    let r = system(&env, region, &format!("artifact_bucket: {bucket}\n"));
    r.edit(
        &format!("environments/{env}/environment.yml"),
        "123456789012",
        localstack().account(),
    );
    r.commit("on localstack");

    let plan = run_ls(&r, &["plan", "--env", &env, "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let p = plan.json();
    assert_eq!(unit(&p, "main")["action"], "create", "{p:#}");
    let keys = bucket_keys(region, &bucket);
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter().all(|k| k.starts_with("formwork/templates/")),
        "{keys:?}"
    );

    let applied = run_ls(&r, &["apply", "--env", &env, "--output", "json"]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert_eq!(states(&applied.json())["main"], "applied");
    let vpc = ssm_value(localstack(), region, &format!("/{env}-main/vpc"));
    assert!(vpc.starts_with("vpc-"), "{vpc}");

    let again = run_ls(&r, &["plan", "--env", &env, "--output", "json"]);
    assert_eq!(again.code, 0, "{}", again.all());

    r.edit(
        "pipelines/sys/templates/nested/network.yml",
        "      CidrBlock",
        "      EnableDnsSupport: true\n      CidrBlock",
    );
    r.commit("dns");
    let plan = run_ls(&r, &["plan", "--env", &env, "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let main = unit(&plan.json(), "main").clone();
    assert_eq!(main["action"], "update", "{main:#}");
    let network = main["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["logical_id"] == "Network")
        .unwrap_or_else(|| panic!("{main:#}"))
        .clone();
    assert_eq!(network["action"], "modify", "{network:#}");
    assert_eq!(bucket_keys(region, &bucket).len(), 3);
    // LocalStack makes no nested change sets: formwork's own reading of the deployed child
    // (read back from the bucket) against the new one says what changes inside.
    let vpc = main["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["logical_id"] == "Network/VPC")
        .unwrap_or_else(|| panic!("{main:#}"));
    assert_eq!(vpc["action"], "modify", "{vpc:#}");
    let diff = main["template_diff"].as_str().unwrap();
    assert!(diff.contains("+++ proposed nested stack Network"), "{diff}");
    assert!(diff.contains("+      EnableDnsSupport: true"), "{diff}");
}

/// Offline, the plan lists the nested stacks' resources and diffs from the two revisions.
#[test]
fn an_offline_plan_shows_what_changes_inside_nested_stacks() {
    let r = system("staging", "eu-west-1", "artifact_bucket: art-bucket\n");
    let new = r.run(&["plan", "--offline", "--base", "HEAD~1", "--output", "json"]);
    assert_eq!(new.code, 2, "{}", new.all());
    let ids: Vec<String> = unit(&new.json(), "main")["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["logical_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        [
            "Network",
            "Settings",
            "Network/VPC",
            "Settings/VpcParameter"
        ],
        "{ids:?}"
    );
    r.edit(
        "pipelines/sys/templates/nested/network.yml",
        "      CidrBlock: !Sub '10.${ClassB}.0.0/16'",
        "      CidrBlock: !Sub '10.${ClassB}.128.0/17'",
    );
    r.commit("smaller");
    let run = r.run(&["plan", "--offline", "--base", "HEAD~1", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let main = unit(&run.json(), "main").clone();
    let changes: Vec<(String, String, String)> = main["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["logical_id"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
                c["replacement"].to_string(),
            )
        })
        .collect();
    assert!(
        changes.contains(&("Network/VPC".into(), "modify".into(), "\"true\"".into())),
        "{changes:?}"
    );
    let diff = main["template_diff"].as_str().unwrap();
    assert!(diff.contains("--- deployed nested stack Network"), "{diff}");

    // A rule open to the internet inside a child is called out like one in the stack's own
    // template, under the nested stack's name.
    r.edit(
        "pipelines/sys/templates/nested/network.yml",
        "Outputs:\n",
        "  Open:\n    Type: AWS::EC2::SecurityGroup\n    Properties:\n      GroupDescription: open\n      VpcId: !Ref VPC\n      SecurityGroupIngress:\n        - {IpProtocol: tcp, FromPort: 22, ToPort: 22, CidrIp: 0.0.0.0/0}\nOutputs:\n",
    );
    r.commit("ssh from anywhere");
    let run = r.run(&["plan", "--offline", "--base", "HEAD~1", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let security = unit(&run.json(), "main")["security"].clone();
    let open = security
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resource"] == "Network/Open")
        .unwrap_or_else(|| panic!("{security:#}"))
        .clone();
    assert_eq!(open["broadens"], true, "{open:#}");
}
