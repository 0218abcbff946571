//! `${env:ENVIRONMENT.stack.Output}`: a stack of one environment takes an output of a stack of
//! another environment of the same repository, deployed in another region. On moto server (whose
//! change-set stacks get their outputs): the source environment is applied by its own run, the
//! taking environment's plan reads the output with the source environment's session (its
//! region), the value reaches the deployed stack's parameter, a secret output stays masked in
//! everything formwork prints, a changed output is planned again, and a missing source stack or
//! credentials of another account fail the stack with a message naming the environment. And
//! `formwork validate` points at each wrong reference.

use crate::common;

use common::Repo;
use common::aws::{moto_with_change_set_outputs as moto, unique};
use common::sdk::formwork_on;
use common::stacks;

const SOURCE_REGION: &str = "us-east-1";
const TAKER_REGION: &str = "eu-west-1";

const NETWORK: &str = "\
Parameters:
  Label:
    Type: String
  Password:
    Type: String
    NoEcho: true
Resources:
  Marker:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /cross-env/${Label}
      Type: String
      Value: !Ref Label
Outputs:
  Shared:
    Value: !Ref Label
  Token:
    Value: !Ref Password
";

const APP: &str = "\
Parameters:
  Shared:
    Type: String
  Token:
    Type: String
Resources:
  Holder:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /cross-env-app/${Shared}
      Type: String
      Value: !Ref Shared
";

/// A repository with environment `source` (pipeline `net`, in us-east-1) and `taker` (pipeline
/// `app`, in eu-west-1) whose stack `app` takes `vpc`'s outputs from `source`.
fn repo(source: &str, taker: &str, label: &str, password: &str) -> Repo {
    let r = Repo::empty_first();
    r.write(
        "pipelines/net/pipeline.yml",
        "pipeline: net\nstacks:\n  vpc:\n    template: templates/vpc.yml\n",
    );
    r.write("pipelines/net/templates/vpc.yml", NETWORK);
    r.write(
        "pipelines/app/pipeline.yml",
        "pipeline: app\nstacks:\n  app:\n    template: templates/app.yml\n",
    );
    r.write("pipelines/app/templates/app.yml", APP);
    write_source(&r, source, label, password);
    r.write(
        &format!("environments/{taker}/environment.yml"),
        &format!(
            "pipeline: app\naccount: \"123456789012\"\nregion: {TAKER_REGION}\nstacks:\n  app:\n    parameters:\n      Shared: ${{env:{source}.vpc.Shared}}\n      Token: ${{env:{source}.vpc.Token}}\n"
        ),
    );
    r.commit("two environments");
    r
}

fn write_source(r: &Repo, source: &str, label: &str, password: &str) {
    r.write(
        &format!("environments/{source}/environment.yml"),
        &format!(
            "pipeline: net\naccount: \"123456789012\"\nregion: {SOURCE_REGION}\nstacks:\n  vpc:\n    parameters:\n      Label: {label}\n      Password: \"{password}\"\n"
        ),
    );
}

#[test]
fn an_output_of_another_environment_reaches_a_parameter_read_with_its_session() {
    let source = unique("xsrc");
    let taker = unique("xtkr");
    let label = format!("shared-{source}");
    let password = format!("pw-{source}-S3cret");
    let r = repo(&source, &taker, &label, &password);
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 0, "{}", v.all());

    // The taking environment does not wait for the other one: its graph has no such edge.
    let g = stacks::graph(&r, &taker);
    assert!(!g.to_string().contains("vpc"), "{g:#}");

    // The source stack does not exist yet: the stack fails, saying which and what to do.
    let early = formwork_on(moto(), r.path(), &["plan", "--env", &taker]);
    assert_eq!(early.code, 1, "{}", early.all());
    let says = format!(
        "stack {source}-vpc of environment `{source}` (account 123456789012 region {SOURCE_REGION}) does not exist yet; apply environment `{source}` first"
    );
    assert!(early.all().contains(&says), "{says}:\n{}", early.all());

    // The source environment is applied by its own run (one plan before the apply: moto makes
    // a second stack of the same name for a second CREATE change set).
    let plan = formwork_on(moto(), r.path(), &["plan", "--env", &source]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let applied = formwork_on(moto(), r.path(), &["apply", "--env", &source]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    let outputs = stacks::outputs(moto(), SOURCE_REGION, &format!("{source}-vpc"));
    assert_eq!(outputs.get("Shared"), Some(&label), "{outputs:?}");

    // The taking environment reads it from the other region.
    let json = formwork_on(
        moto(),
        r.path(),
        &["plan", "--env", &taker, "--output", "json"],
    );
    assert_eq!(json.code, 2, "{}", json.all());
    let planned = json.json();
    assert_eq!(
        stacks::planned_parameter(&planned, &taker, "app", "Shared"),
        label
    );
    assert_eq!(
        stacks::planned_parameter(&planned, &taker, "app", "Token"),
        "****"
    );
    let applied = formwork_on(moto(), r.path(), &["apply", "--env", &taker]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    let deployed = stacks::parameters(moto(), TAKER_REGION, &format!("{taker}-app"));
    assert_eq!(deployed.get("Shared"), Some(&label), "{deployed:?}");
    assert_eq!(deployed.get("Token"), Some(&password), "{deployed:?}");

    // Nothing to do while the output stays what it is.
    let again = formwork_on(moto(), r.path(), &["plan", "--env", &taker]);
    assert_eq!(again.code, 0, "{}", again.all());

    // The output changes when the other environment is applied again: planned here too,
    // though nothing in this environment's config changed.
    let label2 = format!("moved-{source}");
    write_source(&r, &source, &label2, &password);
    r.commit("the network moves");
    let plan = formwork_on(moto(), r.path(), &["plan", "--env", &source]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let applied_source = formwork_on(moto(), r.path(), &["apply", "--env", &source]);
    assert_eq!(applied_source.code, 0, "{}", applied_source.all());
    let changed = formwork_on(
        moto(),
        r.path(),
        &["plan", "--env", &taker, "--output", "json"],
    );
    assert_eq!(changed.code, 2, "{}", changed.all());
    assert_eq!(
        stacks::planned_parameter(&changed.json(), &taker, "app", "Shared"),
        label2
    );

    for run in [&early, &json, &applied, &again, &changed] {
        assert!(
            !run.all().contains(&password),
            "the secret output is shown:\n{}",
            run.all()
        );
    }

    // The plan role of the taking environment may read the other environment's stack.
    let policy = r.run(&["iam-policy", "--plan", "--env", &taker]);
    assert_eq!(policy.code, 0, "{}", policy.all());
    let doc: serde_json::Value = policy.json();
    let read = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "OtherEnvironmentsOutputs")
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(
        read["Resource"],
        serde_json::json!([format!(
            "arn:aws:cloudformation:{SOURCE_REGION}:123456789012:stack/{source}-vpc/*"
        )])
    );
    assert_eq!(
        read["Action"],
        serde_json::json!(["cloudformation:DescribeStacks"])
    );

    // The account guard is the other environment's: credentials of another account fail the
    // stack that reads it, naming that environment.
    r.edit(
        &format!("environments/{source}/environment.yml"),
        "account: \"123456789012\"",
        "account: \"210987654321\"",
    );
    r.commit("the network is elsewhere");
    let guarded = formwork_on(moto(), r.path(), &["plan", "--env", &taker]);
    assert_eq!(guarded.code, 1, "{}", guarded.all());
    let says =
        format!("environment `{source}` deploys to account 210987654321; refusing to touch it");
    assert!(guarded.all().contains(&says), "{says}:\n{}", guarded.all());
}

#[test]
fn validate_points_at_each_wrong_reference_to_another_environment() {
    let r = repo("shared-network", "prod", "net", "pw-123456789");
    r.write(
        "pipelines/net/pipeline.yml",
        "pipeline: net\nstacks:\n  vpc:\n    template: templates/vpc.yml\n  extra:\n    template: templates/vpc.yml\n    enabled: false\n",
    );
    r.write(
        "environments/prod/environment.yml",
        "pipeline: app\naccount: \"123456789012\"\nregion: eu-west-1\nstacks:\n  app:\n    parameters:\n      Shared: ${env:shared-netwrk.vpc.Shared}\n      Token: ${env:shared-network.vpc.Tokn}\n    tags:\n      net: ${env:shared-network.vpc.Shared}\n",
    );
    r.write(
        "pipelines/app/pipeline.yml",
        "pipeline: app\nstacks:\n  app:\n    template: templates/app.yml\n    parameters:\n      Shared: ${env:shared-network.vcp.Shared}\n      Token: ${env:prod.app.Token}\n",
    );
    r.commit("wrong references");
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 1, "{}", v.all());
    let out = v.all();
    for (at, says) in [
        (
            "environments/prod/environment.yml:7:15",
            "`${env:shared-netwrk.vpc.Shared}` refers to environment `shared-netwrk`, which does not exist",
        ),
        (
            "environments/prod/environment.yml:7:15",
            "did you mean `shared-network`?",
        ),
        (
            "environments/prod/environment.yml:8:14",
            "stack `vpc` of environment `shared-network` has no output `Tokn` (its template pipelines/net/templates/vpc.yml does not declare it)",
        ),
        (
            "environments/prod/environment.yml:8:14",
            "did you mean `Token`?",
        ),
        (
            "environments/prod/environment.yml:10:12",
            "a tag value cannot use outputs of other environments",
        ),
    ] {
        assert!(out.contains(at), "{at}:\n{out}");
        assert!(out.contains(says), "{says}:\n{out}");
    }
    // The environment's parameters win over the pipeline's, so the pipeline's are not taken in
    // `prod`: make them the only ones.
    r.write(
        "environments/prod/environment.yml",
        "pipeline: app\naccount: \"123456789012\"\nregion: eu-west-1\n",
    );
    r.write(
        "pipelines/app/pipeline.yml",
        "pipeline: app\nstacks:\n  app:\n    template: templates/app.yml\n    parameters:\n      Shared: ${env:shared-network.vcp.Shared}\n      Token: ${env:prod.app.Token}\n  other:\n    template: templates/app.yml\n    parameters:\n      Shared: ${env:shared-network.extra.Shared}\n      Token: ${env:shared-network.vpc.Token}\n",
    );
    r.commit("more wrong references");
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 1, "{}", v.all());
    let out = v.all();
    for (at, says) in [
        (
            "pipelines/app/pipeline.yml:6:15",
            "`${env:shared-network.vcp.Shared}`: environment `shared-network` deploys no stack `vcp`",
        ),
        ("pipelines/app/pipeline.yml:6:15", "did you mean `vpc`?"),
        (
            "pipelines/app/pipeline.yml:7:14",
            "`${env:prod.app.Token}` names environment `prod` itself",
        ),
        (
            "pipelines/app/pipeline.yml:11:15",
            "environment `shared-network` deploys no stack `extra`",
        ),
    ] {
        assert!(out.contains(at), "{at}:\n{out}");
        assert!(out.contains(says), "{says}:\n{out}");
    }
    assert!(
        out.contains("must be enabled in environments/shared-network/environment.yml"),
        "{out}"
    );
    assert!(
        out.contains("take an output of a stack of the same environment with `${app.Token}`"),
        "{out}"
    );
}

#[test]
fn a_change_of_the_other_environment_affects_only_it() {
    let r = repo("shared-network", "prod", "net", "pw-123456789");
    write_source(&r, "shared-network", "moved", "pw-123456789");
    r.commit("the network moves");
    let a = r.run(&["affected", "--base", "HEAD~1", "--output", "json"]);
    assert_eq!(a.code, 2, "{}", a.all());
    let report = a.json();
    assert_eq!(
        report["environments"],
        serde_json::json!(["shared-network"]),
        "{report:#}"
    );
    // A head that does not validate in the other environment is an error of the environment
    // taking its output too, at the reference.
    r.edit(
        "environments/prod/environment.yml",
        "${env:shared-network.vpc.Token}",
        "${env:shared-network.vpc.Tokn}",
    );
    r.commit("a misspelt output");
    let a = r.run(&["affected", "--base", "HEAD~1"]);
    assert_eq!(a.code, 1, "{}", a.all());
    assert!(
        a.all().contains("environments/prod/environment.yml:8:14"),
        "{}",
        a.all()
    );
}
