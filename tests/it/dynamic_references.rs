//! CloudFormation dynamic references (`{{resolve:ssm:…}}`, `{{resolve:ssm-secure:…}}`,
//! `{{resolve:secretsmanager:…}}`) are CloudFormation's to resolve: formwork passes them
//! through untouched, in templates and in parameter values, and never reads what they name.
//!
//! moto (5.x) does not resolve dynamic references: it deploys them as written. So the test
//! checks what formwork sent — the template CloudFormation holds (GetTemplate) and the
//! parameter value of the stack — rather than a resolved value; in AWS the copy would hold the
//! source's value.

use crate::common;

use common::Repo;
use common::aws::{moto, unique};
use common::sdk::{self, block, formwork_on};
use common::stacks;

const REGION: &str = "us-east-1";

const TEMPLATE: &str = "\
Parameters:
  Label:
    Type: String
  Reference:
    Type: String
Resources:
  Copy:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /dynref/${Label}/copy
      Type: String
      Value: '{{resolve:ssm:/dynref/source}}'
  Passed:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /dynref/${Label}/passed
      Type: String
      Value: !Ref Reference
";

#[test]
fn dynamic_references_reach_cloudformation_untouched() {
    let env = unique("dynref");
    let reference = "{{resolve:secretsmanager:prod/db:SecretString:password}}";
    let pipeline = format!(
        "pipeline: dyn\nstacks:\n  copy:\n    template: templates/copy.yml\n    parameters:\n      Label: ${{env.name}}\n      Reference: \"{reference}\"\n"
    );
    let r = Repo::one_pipeline(
        "dyn",
        &pipeline,
        &[("copy.yml", TEMPLATE)],
        &env,
        REGION,
        "",
    );
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 0, "{}", v.all());

    let plan = formwork_on(
        moto(),
        r.path(),
        &["plan", "--env", &env, "--output", "json"],
    );
    assert_eq!(plan.code, 2, "{}", plan.all());
    let json = plan.json();
    let unit = &json["environments"][0]["units"][0];
    let param = unit["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Reference")
        .unwrap_or_else(|| panic!("{unit:#}"));
    assert_eq!(param["after"], reference, "shown as written: {param:#}");
    assert_eq!(param["secret"], false, "a reference is not itself a secret");

    let applied = formwork_on(moto(), r.path(), &["apply", "--env", &env]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    let stack = format!("{env}-copy");
    assert_eq!(
        stacks::parameters(moto(), REGION, &stack)["Reference"],
        reference
    );
    let cfn = sdk::cfn(moto(), REGION);
    let held = block(async {
        cfn.get_template()
            .stack_name(&stack)
            .send()
            .await
            .unwrap()
            .template_body
            .unwrap_or_default()
    });
    assert!(
        held.contains("'{{resolve:ssm:/dynref/source}}'"),
        "the template as written: {held}"
    );
}
