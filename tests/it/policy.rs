//! The policy gate: rules in CloudFormation Guard (`policies/*.guard`) evaluated on every planned
//! stack, with the environment's values put in; a failing `block` rule fails the plan and apply
//! refuses it, end to end on a local endpoint; rules are read from the revision a change is
//! planned against; bad rule files and choices are reported where they are written; the rules'
//! own tests run with `formwork policy test`.

use crate::common;

use common::Repo;
use common::aws::{moto_with_change_set_outputs, unique};
use common::sdk::formwork_on;
use common::stacks;

const REGION: &str = "eu-west-1";
const SECRET: &str = "Policy-Secret-7c1d";

/// A security group whose SSH range is a parameter, and a parameter kept secret.
const TEMPLATE: &str = "\
Parameters:
  SshCidr:
    Type: String
  Token:
    Type: String
    NoEcho: true
Resources:
  Sg:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: admin access
      SecurityGroupIngress:
        - IpProtocol: tcp
          FromPort: 22
          ToPort: 22
          CidrIp: !Ref SshCidr
  Token:
    Type: AWS::SSM::Parameter
    Properties:
      Type: String
      Value: !Ref Token
";

/// The line of `FromPort: 22` in [`TEMPLATE`]: the value the failing clause compares.
const FROM_PORT_LINE: u64 = 14;

const NETWORK_RULES: &str = "\
let open_ssh = Resources.*[
    Type == 'AWS::EC2::SecurityGroup'
    Properties.SecurityGroupIngress exists
].Properties.SecurityGroupIngress[ CidrIp == '0.0.0.0/0' ]

rule no_ssh_from_anywhere when %open_ssh !empty {
    %open_ssh {
        FromPort > 22 or ToPort < 22
        <<
            SSH must not be open to the world
        >>
    }
}
";

const TAG_RULES: &str = "\
rule parameters_have_descriptions {
    Parameters.*.Description exists
    <<
        Describe every parameter
    >>
}
";

fn repo(env: &str, cidr: &str) -> Repo {
    let pipeline = format!(
        "pipeline: guarded\nstacks:\n  admin:\n    template: templates/admin.yml\n    parameters:\n      SshCidr: \"{cidr}\"\n      Token: \"{SECRET}\"\n"
    );
    let r = Repo::one_pipeline(
        "guarded",
        &pipeline,
        &[("admin.yml", TEMPLATE)],
        env,
        REGION,
        "",
    );
    r.write("policies/network.guard", NETWORK_RULES);
    r.write("policies/style.guard", TAG_RULES);
    r.write(
        "policies/policies.yml",
        "severity: block\nrules:\n  parameters_have_descriptions: warn\n",
    );
    r.commit("policies");
    r
}

fn findings(plan: &serde_json::Value) -> Vec<serde_json::Value> {
    plan["environments"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["units"].as_array().cloned().unwrap_or_default())
        .flat_map(|u| u["policy"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[test]
fn a_blocking_rule_fails_the_plan_and_apply_refuses_it_on_a_local_endpoint() {
    let ep = moto_with_change_set_outputs();
    let env = unique("gate");
    let r = repo(&env, "10.0.0.0/8");
    let ruled = r.head_commit();
    let stack = format!("{env}-admin");
    let mut outputs = Vec::new();

    // Within the rules: the warning is shown, nothing is refused.
    let plan = formwork_on(ep, r.path(), &["plan", "--env", &env]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    assert!(
        plan.stdout
            .contains("policy warning: parameters_have_descriptions (policies/style.guard): admin"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("2 warnings, none blocking"),
        "{}",
        plan.stdout
    );
    outputs.push(plan.all());
    let applied = formwork_on(ep, r.path(), &["apply", "--env", &env]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    outputs.push(applied.all());
    assert_eq!(
        stacks::parameters(ep, REGION, &stack)["SshCidr"],
        "10.0.0.0/8"
    );

    // SSH opened to the world through the environment's value of the parameter.
    r.edit(
        "pipelines/guarded/pipeline.yml",
        "SshCidr: \"10.0.0.0/8\"",
        "SshCidr: \"0.0.0.0/0\"",
    );
    r.commit("open ssh");
    let plan = formwork_on(
        ep,
        r.path(),
        &[
            "plan", "--env", &env, "--base", "HEAD~1", "--output", "json",
        ],
    );
    assert_eq!(
        plan.code,
        1,
        "a blocking finding fails the plan: {}",
        plan.all()
    );
    outputs.push(plan.all());
    let json = plan.json();
    let blocking: Vec<_> = findings(&json)
        .into_iter()
        .filter(|f| f["severity"] == "block")
        .collect();
    assert_eq!(blocking.len(), 1, "{blocking:?}");
    let f = &blocking[0];
    assert_eq!(f["rule"], "no_ssh_from_anywhere");
    assert_eq!(f["file"], "policies/network.guard");
    assert_eq!(f["resource"], "Sg");
    assert_eq!(f["template"], "pipelines/guarded/templates/admin.yml");
    assert_eq!(
        f["line"], FROM_PORT_LINE,
        "the line of the value the rule looked at"
    );
    assert_eq!(f["message"], "SSH must not be open to the world");
    assert_eq!(json["policy"]["stacks_checked"], 1);
    assert_eq!(
        json["policy"]["rules_from"].as_str(),
        Some(ruled.as_str()),
        "the rules of the revision planned against"
    );

    let text = formwork_on(ep, r.path(), &["plan", "--env", &env, "--base", "HEAD~1"]);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout.contains(&format!(
            "policy BLOCK: no_ssh_from_anywhere (policies/network.guard): admin on Sg at pipelines/guarded/templates/admin.yml:{FROM_PORT_LINE}:"
        )),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("apply refuses this plan"),
        "{}",
        text.stdout
    );
    outputs.push(text.all());
    let md = formwork_on(
        ep,
        r.path(),
        &[
            "plan", "--env", &env, "--base", "HEAD~1", "--output", "markdown",
        ],
    );
    assert!(
        md.stdout
            .contains("> [!CAUTION]\n> **Policy**: 1 finding of severity `block` fails"),
        "{}",
        md.stdout
    );
    outputs.push(md.all());

    // Apply refuses the reviewed plan; the stack keeps its range.
    let refused = formwork_on(ep, r.path(), &["apply", "--env", &env]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(
        refused.all().contains(
            "admin: policy rule `no_ssh_from_anywhere` (policies/network.guard) fails on Sg"
        ),
        "{}",
        refused.all()
    );
    outputs.push(refused.all());
    assert_eq!(
        stacks::parameters(ep, REGION, &stack)["SshCidr"],
        "10.0.0.0/8",
        "nothing was applied"
    );

    for out in &outputs {
        assert!(!out.contains(SECRET), "the NoEcho value leaked: {out}");
    }
}

#[test]
fn rules_are_read_from_the_revision_a_change_is_planned_against() {
    let env = "dev";
    let r = repo(env, "10.0.0.0/8");
    // One change both opens SSH and drops the rule, and narrows the environment's choice.
    r.edit(
        "pipelines/guarded/pipeline.yml",
        "SshCidr: \"10.0.0.0/8\"",
        "SshCidr: \"0.0.0.0/0\"",
    );
    r.write(
        "policies/network.guard",
        "rule no_ssh_from_anywhere {\n  Resources exists\n}\n",
    );
    let envfile = r.read("environments/dev/environment.yml");
    r.write(
        "environments/dev/environment.yml",
        &format!("{envfile}policies:\n  files: [style.guard]\n"),
    );
    r.commit("open ssh and loosen the rules");
    let plan = r.run(&["plan", "--offline", "--base", "HEAD~1", "--output", "json"]);
    assert_eq!(plan.code, 1, "the base's rules still hold: {}", plan.all());
    let f = findings(&plan.json());
    assert!(
        f.iter()
            .any(|f| f["rule"] == "no_ssh_from_anywhere" && f["severity"] == "block"),
        "{f:?}"
    );

    // Once merged, a plan of the revision is checked against its own rules.
    let plan = r.run(&["plan", "--offline", "--output", "json"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let f = findings(&plan.json());
    assert!(
        f.iter().all(|f| f["rule"] != "no_ssh_from_anywhere"),
        "{f:?}"
    );
    assert!(
        f.iter()
            .any(|f| f["rule"] == "parameters_have_descriptions"),
        "{f:?}"
    );
}

#[test]
fn bad_rules_and_choices_are_reported_where_they_are_written() {
    let r = repo("dev", "10.0.0.0/8");
    r.write(
        "policies/broken.guard",
        "rule fine {\n  Resources exists\n}\nrule broken {\n  Resources.*.Type == \n}\n",
    );
    r.write(
        "policies/policies.yml",
        "severity: block\nrules:\n  parameters_have_description: warn\n",
    );
    let envfile = r.read("environments/dev/environment.yml");
    r.write(
        "environments/dev/environment.yml",
        &format!("{envfile}policies:\n  files: [netwrok.guard]\n  colour: red\n"),
    );
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 1, "{}", v.all());
    let all = v.all();
    for expected in [
        "error: the rule file does not parse: expecting",
        "--> policies/broken.guard:5:",
        "error: no rule file declares a rule `parameters_have_description`",
        "--> policies/policies.yml:3:3",
        "did you mean `parameters_have_descriptions`?",
        "unknown field `colour`",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
    r.edit("environments/dev/environment.yml", "  colour: red\n", "");
    let v = r.run(&["validate"]);
    assert!(
        v.all()
            .contains("error: there is no rule file `netwrok.guard` in policies/"),
        "{}",
        v.all()
    );
    assert!(
        v.all().contains("did you mean `network.guard`?"),
        "{}",
        v.all()
    );
}

#[test]
fn the_rules_own_tests_run_and_a_wrong_expectation_fails() {
    let r = Repo::new();
    r.copy_from_project("policies");
    let run = r.run(&["policy", "test"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("Testing Guard File"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("no_ssh_or_rdp_from_anywhere: Expected = FAIL"),
        "{}",
        run.stdout
    );

    r.edit(
        "policies/tests/network_tests.yaml",
        "no_ssh_or_rdp_from_anywhere: PASS",
        "no_ssh_or_rdp_from_anywhere: FAIL",
    );
    let run = r.run(&["policy", "test"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("a rule test failed"), "{}", run.all());

    let empty = Repo::new();
    let run = empty.run(&["policy", "test"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("there is no directory"),
        "{}",
        run.stderr
    );
}

/// The policy results of an offline plan, kept in the state store of `data`.
/// How many rows of the store's policy results are evaluation results (`true`: a JSON record)
/// or Guard's verdicts on rule files (`false`: empty for a file that parses, else its error).
fn kept(data: &std::path::Path, results: bool) -> i64 {
    let db = rusqlite::Connection::open(data.join("formwork.db")).unwrap();
    let like = if results { "LIKE" } else { "NOT LIKE" };
    db.query_row(
        &format!("SELECT count(*) FROM policy_results WHERE record {like} '{{%'"),
        [],
        |r| r.get(0),
    )
    .unwrap()
}

fn kept_results(data: &std::path::Path) -> i64 {
    kept(data, true)
}

fn kept_verdicts(data: &std::path::Path) -> i64 {
    kept(data, false)
}

#[test]
fn results_kept_are_read_back_as_evaluated_and_a_rule_change_evaluates_again() {
    let r = repo("dev", "0.0.0.0/0");
    let data = tempfile::tempdir().unwrap();
    let dd = data.path().to_str().unwrap();
    let plan = || r.run(&["--data-dir", dd, "plan", "--offline", "--output", "json"]);

    // Nothing kept: evaluated, and kept.
    let cold = plan();
    assert_eq!(cold.code, 1, "{}", cold.all());
    let evaluated = findings(&cold.json());
    assert!(
        evaluated
            .iter()
            .any(|f| f["rule"] == "no_ssh_from_anywhere" && f["line"] == FROM_PORT_LINE),
        "{evaluated:?}"
    );
    assert_eq!(kept_results(data.path()), 1);
    // And that both rule files parse, so that they are not parsed again.
    assert_eq!(kept_verdicts(data.path()), 2);

    // Kept: the same findings, to the line and column, severities included.
    let warm = plan();
    assert_eq!(warm.code, 1, "{}", warm.all());
    assert_eq!(findings(&warm.json()), evaluated);
    assert_eq!(kept_results(data.path()), 1);
    assert_eq!(kept_verdicts(data.path()), 2);

    // What is kept is what the plan reads: a kept record without failures, no findings.
    let db = rusqlite::Connection::open(data.path().join("formwork.db")).unwrap();
    db.execute(
        "UPDATE policy_results SET record = '{\"name\":\"DATA_STDIN[1]\",\"not_compliant\":[]}' WHERE record LIKE '{%'",
        [],
    )
    .unwrap();
    let tampered = plan();
    assert_eq!(tampered.code, 2, "{}", tampered.all());
    assert!(findings(&tampered.json()).is_empty());

    // A changed rule file is another key: evaluated again, with the new rule.
    r.edit(
        "policies/network.guard",
        "SSH must not be open to the world",
        "Close SSH to the world",
    );
    r.commit("reword the rule");
    let changed = plan();
    assert_eq!(changed.code, 1, "{}", changed.all());
    let f = findings(&changed.json());
    assert!(
        f.iter().any(
            |f| f["rule"] == "no_ssh_from_anywhere" && f["message"] == "Close SSH to the world"
        ),
        "{f:?}"
    );
    assert_eq!(kept_results(data.path()), 2);

    // A rule file that does not parse: its verdict is kept too, and the next plan says the same,
    // at the same place.
    r.write(
        "policies/broken.guard",
        "rule broken {\n  Resources.*.Type == \n}\n",
    );
    r.commit("a broken rule");
    for _ in 0..2 {
        let refused = plan();
        assert_eq!(refused.code, 1, "{}", refused.all());
        let all = refused.all();
        assert!(
            all.contains("the rule file does not parse: expecting")
                && all.contains("policies/broken.guard:2:"),
            "{all}"
        );
    }
    assert_eq!(kept_verdicts(data.path()), 4);
    // What is kept is what the plan says: Guard is not asked again.
    let db = rusqlite::Connection::open(data.path().join("formwork.db")).unwrap();
    db.execute(
        "UPDATE policy_results SET record = 'kept verdict at line 1 at column 3, when handling a kept reason, fragment x' WHERE record NOT LIKE '{%' AND record != ''",
        [],
    )
    .unwrap();
    let kept = plan();
    assert_eq!(kept.code, 1, "{}", kept.all());
    assert!(
        kept.all()
            .contains("the rule file does not parse: a kept reason")
            && kept.all().contains("policies/broken.guard:1:3"),
        "{}",
        kept.all()
    );
}
