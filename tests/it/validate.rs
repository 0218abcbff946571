//! `formwork validate` on real files: the bundled example, and the shop config broken in every
//! way the checks know, with the exact messages users see.

use crate::common;

use common::stacks::graph_keys;
use common::{Repo, formwork};

#[test]
fn the_bundled_example_is_valid() {
    let run = formwork(env!("CARGO_MANIFEST_DIR").as_ref(), &["validate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        run.stdout,
        "valid: 5 pipelines, 9 environments, 123 stacks\n"
    );
    assert_eq!(run.stderr, "");
}

/// The environments of the bundled example, sorted.
fn bundled_environments() -> Vec<String> {
    let project = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut envs = Vec::new();
    for e in std::fs::read_dir(project.join("environments")).unwrap() {
        let e = e.unwrap();
        if e.path().join("environment.yml").exists() {
            envs.push(e.file_name().into_string().unwrap());
        }
    }
    envs.sort();
    envs
}

/// Asserts that a plan (JSON) holds every stack of every bundled environment, each to be
/// created, as `formwork graph` has them.
fn assert_everything_created(r: &Repo, plan: &serde_json::Value) {
    let envs = bundled_environments();
    let planned: std::collections::BTreeMap<String, Vec<(String, String)>> = plan["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let mut units: Vec<(String, String)> = e["units"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| {
                    (
                        u["stack"].as_str().unwrap().to_string(),
                        u["action"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            units.sort();
            (e["name"].as_str().unwrap().to_string(), units)
        })
        .collect();
    assert_eq!(
        planned.keys().cloned().collect::<Vec<_>>(),
        envs,
        "environments planned"
    );
    for env in &envs {
        let want: Vec<(String, String)> = graph_keys(r, env)
            .into_iter()
            .map(|k| (k, "create".to_string()))
            .collect();
        assert!(!want.is_empty(), "{env} has no stacks");
        assert_eq!(planned[env], want, "stacks of {env}");
    }
}

/// The issue a new user meets first: an offline plan from an empty revision to the bundled config
/// (no AWS) lists every stack of every environment, each to be created, as `formwork graph` has
/// them.
#[test]
fn an_offline_plan_of_the_bundled_example_from_nothing_lists_every_stack() {
    let r = Repo::bundled(&["pipelines", "environments"], "the bundled example");
    let run = r.run(&[
        "plan",
        "--offline",
        "--base",
        "HEAD~1",
        "--head",
        "HEAD",
        "--output",
        "json",
    ]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert_everything_created(&r, &run.json());
}

/// A repository's first commit has no parent to compare with: without `--base`, an offline plan
/// compares the head with nothing (git's empty tree), and says so; `affected` takes the empty
/// tree as a base too.
#[test]
fn an_offline_plan_without_a_base_plans_the_first_commit_from_nothing() {
    let r = Repo::new();
    r.copy_from_project("pipelines");
    r.copy_from_project("environments");
    r.commit("the first commit");
    let run = r.run(&["plan", "--offline", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let plan = run.json();
    assert_eq!(plan["base"]["rev"], "nothing", "{plan:#}");
    assert_eq!(
        plan["base"]["commit"],
        "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
    );
    assert_everything_created(&r, &plan);

    let text = r.run(&["plan", "--offline"]);
    assert_eq!(text.code, 2, "{}", text.all());
    assert!(
        text.stdout.contains("compared with nothing (4b825dc)"),
        "{}",
        text.stdout
    );

    let affected = r.run(&[
        "affected",
        "--base",
        "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        "--output",
        "json",
    ]);
    assert_eq!(affected.code, 2, "{}", affected.all());
    let v = affected.json();
    assert_eq!(
        v["environments"],
        serde_json::json!(bundled_environments()),
        "{v:#}"
    );
    assert_eq!(v["base"]["rev"], "nothing");
}

/// `--stack` narrows an offline plan as it does a live one, and a stack in no environment is
/// refused.
#[test]
fn an_offline_plan_of_chosen_stacks_holds_only_them() {
    let r = Repo::bundled(&["pipelines/placeos", "environments/staging"], "placeos");
    let plan = |extra: &[&str]| {
        let mut args = vec!["plan", "--offline", "--base", "HEAD~1", "--output", "json"];
        args.extend(extra);
        r.run(&args)
    };
    let run = plan(&["--stack", "vpc", "--stack", "alb"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let json = run.json();
    let stacks: Vec<&str> = json["environments"][0]["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["stack"].as_str().unwrap())
        .collect();
    assert_eq!(stacks, ["vpc", "alb"], "{json:#}");
    let run = plan(&["--stack", "vcp"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("no stack `vcp`"), "{}", run.stderr);
}

#[test]
fn the_shop_is_valid() {
    let r = Repo::shop();
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(run.stdout, "valid: 1 pipeline, 2 environments, 8 stacks\n");
}

#[test]
fn a_cycle_is_reported_with_its_path() {
    let r = Repo::shop();
    r.edit(
        "pipelines/shop/pipeline.yml",
        "  network:\n    template: templates/network.yml\n",
        "  network:\n    template: templates/network.yml\n    needs: [app]\n",
    );
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "\
error: dependency cycle: network → app → database → network
  --> pipelines/shop/pipeline.yml:15:13
   |
15 |     needs: [app]
   |             ^^^ `network` waits for `app` here
   |
   = help: each stack must be deployable after the stacks it takes outputs from or needs; break the cycle by removing one of these references

"
    );
    assert_eq!(
        run.stdout,
        "invalid: 1 error in 1 pipeline, 2 environments, 8 stacks\n"
    );
}

#[test]
fn a_bad_reference_names_the_stack_and_the_output() {
    let r = Repo::shop();
    r.edit(
        "pipelines/shop/pipeline.yml",
        "VpcId: ${network.VpcId}",
        "VpcId: ${netwrok.VpcId}",
    );
    r.edit(
        "pipelines/shop/pipeline.yml",
        "${database.Port}",
        "${database.PortNumber}",
    );
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "\
error: `${netwrok.VpcId}` refers to stack `netwrok`, which pipeline `shop` does not have
  --> pipelines/shop/pipeline.yml:18:14
   |
18 |       VpcId: ${netwrok.VpcId}
   |              ^^^^^^^^^^^^^^^^ did you mean `network`?
   |
   = help: the stacks of pipeline `shop` are: network, database, app, cdn

error: stack `database` has no output `PortNumber` (its template pipelines/shop/templates/database.yml does not declare it)
  --> pipelines/shop/pipeline.yml:23:52
   |
23 |       DatabaseUrl: postgres://${database.Endpoint}:${database.PortNumber}/shop
   |                                                    ^^^^^^^^^^^^^^^^^^^^^^ did you mean `Port`?
   |
   = help: outputs of `database`: Endpoint, Port

"
    );
}

#[test]
fn bad_parameters_are_checked_against_the_template() {
    let r = Repo::shop();
    // A value outside AllowedValues, a number above MaxValue, an unknown parameter, and a
    // required parameter left out.
    r.edit(
        "environments/staging/environment.yml",
        "InstanceClass: db.t3.micro",
        "InstanceClass: db.t3.micra",
    );
    r.edit(
        "environments/production/environment.yml",
        "Storage: 50",
        "Storage: 500",
    );
    r.edit(
        "environments/production/environment.yml",
        "Replicas: 3",
        "Replica: 3",
    );
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "\
error: value `500` of parameter `Storage` is above its MaxValue 100 in environment `production`
  --> environments/production/environment.yml:10:16
   |
10 |       Storage: 500
   |                ^^^

error: stack `app` in environment `production` has no value for parameter `Replicas`, which its template requires (no Default)
  --> environments/production/environment.yml:11:3
   |
11 |   app:
   |   ^^^
   |
   = help: set it under `stacks: {app: {parameters: {Replicas: …}}}` in environments/production/environment.yml or in pipelines/shop/pipeline.yml

error: the template of stack `app` has no parameter `Replica`
  --> environments/production/environment.yml:13:7
   |
13 |       Replica: 3
   |       ^^^^^^^ did you mean `Replicas`?
   |
   = help: its parameters are: EnvironmentName, DatabaseUrl, Replicas

error: value `db.t3.micra` of parameter `InstanceClass` is not one of its AllowedValues in environment `staging`
 --> environments/staging/environment.yml:9:22
  |
9 |       InstanceClass: db.t3.micra
  |                      ^^^^^^^^^^^
  |
  = help: did you mean `db.t3.micro`? allowed values: db.t3.micro, db.t3.small

"
    );
}

#[test]
fn unknown_keys_get_the_nearest_known_one_and_every_error_comes_at_once() {
    let r = Repo::shop();
    r.edit(
        "pipelines/shop/pipeline.yml",
        "  cdn:\n    template:",
        "  cdn:\n    tempalte:",
    );
    r.edit("environments/staging/environment.yml", "region:", "regoin:");
    r.edit("environments/production/environment.yml", "tags:", "tag:");
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1);
    let messages: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:") || l.contains("did you mean"))
        .collect();
    assert_eq!(
        messages,
        [
            "error: unknown field `tag`",
            "  | ^^^ did you mean `tags`?",
            "error: unknown field `regoin`",
            "  | ^^^^^^ did you mean `region`?",
            "error: unknown field `tempalte`",
            "   |     ^^^^^^^^ did you mean `template`?",
        ]
    );
    // The misspelled keys were read as what they most likely mean, so nothing else is blamed.
    assert!(
        run.stdout.starts_with("invalid: 3 errors"),
        "{}",
        run.stdout
    );
}

#[test]
fn yaml_syntax_and_type_errors_have_positions() {
    let r = Repo::shop();
    r.write(
        "environments/staging/environment.yml",
        "pipeline: shop\naccount: \"111111111111\"\nregion: us-east-1\nstacks:\n  app: [oops\n",
    );
    r.edit(
        "environments/production/environment.yml",
        "  app:\n",
        "  app:\n    enabled: perhaps\n",
    );
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("error: YAML syntax error: ")
            && run
                .stderr
                .contains("--> environments/staging/environment.yml:6:1"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "error: expected `true` or `false`, found the string `perhaps`\n  --> environments/production/environment.yml:12:14"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn environment_problems_name_what_exists() {
    let r = Repo::shop();
    r.edit(
        "environments/staging/environment.yml",
        "pipeline: shop",
        "pipeline: shp",
    );
    r.edit(
        "environments/production/environment.yml",
        "  app:\n",
        "  appp:\n    enabled: false\n  app:\n",
    );
    r.edit(
        "environments/production/environment.yml",
        "account: \"222222222222\"",
        "account: 2222",
    );
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1);
    let s = &run.stderr;
    assert!(s.contains("error: environment `staging` uses pipeline `shp`, which does not exist\n --> environments/staging/environment.yml:1:11\n"), "{s}");
    assert!(s.contains("^^^ did you mean `shop`?"), "{s}");
    assert!(s.contains("error: pipeline `shop` has no stack `appp`\n  --> environments/production/environment.yml:11:3"), "{s}");
    assert!(s.contains("error: `2222` is not an AWS account id\n --> environments/production/environment.yml:2:10"), "{s}");
}

#[test]
fn a_reference_to_a_disabled_stack_is_an_error() {
    let r = Repo::shop();
    r.edit(
        "environments/staging/environment.yml",
        "stacks:\n",
        "stacks:\n  network:\n    enabled: false\n",
    );
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains(
        "error: stack `database` takes `${network.VpcId}`, but stack `network` is disabled in environment `staging`"
    ), "{}", run.stderr);
}

#[test]
fn duplicate_stack_names_in_one_account_and_region_are_refused() {
    let r = Repo::shop();
    r.edit(
        "environments/production/environment.yml",
        "account: \"222222222222\"\nregion: eu-west-1",
        "account: \"111111111111\"\nregion: us-east-1",
    );
    r.edit(
        "environments/production/environment.yml",
        "  app:\n",
        "  cdn:\n    stack_name: staging-cdn\n  app:\n",
    );
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains(
        "error: stack name `staging-cdn` in account 111111111111 region us-east-1 is used twice: by `cdn` in environment `staging` and by `cdn` in environment `production`"
    ) || run.stderr.contains(
        "error: stack name `staging-cdn` in account 111111111111 region us-east-1 is used twice: by `cdn` in environment `production` and by `cdn` in environment `staging`"
    ), "{}", run.stderr);
}

#[test]
fn a_large_template_needs_an_artifact_bucket() {
    let r = Repo::shop();
    let padding: String = (0..1200)
        .map(|i| format!("# padding line {i:05} to make the template large\n"))
        .collect();
    r.write(
        "pipelines/shop/templates/cdn.json",
        &format!("{}\n{padding}", common::CDN),
    );
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr
            .contains("over CloudFormation's 51200-byte limit for inline templates"),
        "{}",
        run.stderr
    );
    r.edit(
        "environments/staging/environment.yml",
        "region: us-east-1\n",
        "region: us-east-1\nartifact_bucket: shop-staging-artifacts\n",
    );
    r.edit(
        "environments/production/environment.yml",
        "region: eu-west-1\n",
        "region: eu-west-1\nartifact_bucket: shop-production-artifacts\n",
    );
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.all());
}

#[test]
fn validate_rev_reads_git_objects_not_the_work_tree() {
    let r = Repo::shop();
    r.edit(
        "environments/staging/environment.yml",
        "pipeline: shop",
        "pipeline: nope",
    );
    assert_eq!(r.run(&["validate"]).code, 1);
    let run = r.run(&["validate", "--rev", "main"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let run = r.run(&["validate", "--rev", "no-such-branch"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("error: revision `no-such-branch` not found"),
        "{}",
        run.stderr
    );
}

#[test]
fn json_output_lists_diagnostics_with_positions() {
    let r = Repo::shop();
    r.edit(
        "environments/staging/environment.yml",
        "region: us-east-1",
        "region: Sydney",
    );
    let run = r.run(&["validate", "--output", "json"]);
    assert_eq!(run.code, 1);
    let v = run.json();
    assert_eq!(v["version"], 1);
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"], 1);
    let d = &v["diagnostics"][0];
    assert_eq!(d["severity"], "error");
    assert_eq!(d["message"], "`Sydney` is not an AWS region name");
    assert_eq!(d["file"], "environments/staging/environment.yml");
    assert_eq!(d["line"], 3);
    assert_eq!(d["column"], 9);
    assert_eq!(
        d["help"],
        "write a region such as `us-east-1` or `ap-southeast-2`"
    );
    assert_eq!(v["environments"][0]["name"], "production");
    assert_eq!(v["environments"][0]["stacks"], 4);
}

#[test]
fn secrets_in_no_echo_parameters_are_not_printed_in_errors() {
    let r = Repo::shop();
    r.edit(
        "pipelines/shop/pipeline.yml",
        "Password: ${ssm:/shop/${env.name}/db-password}",
        "Password: hunter2",
    );
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "value **** of parameter `Password` is 7 characters long; its MinLength is 8"
        ),
        "{}",
        run.stderr
    );
    // The quoted source line shows the file as written; the message itself never repeats it.
    for line in run.stderr.lines().filter(|l| l.starts_with("error:")) {
        assert!(!line.contains("hunter2"), "{line}");
    }
    let json = r.run(&["validate", "--output", "json"]);
    assert!(!json.stdout.contains("hunter2"));
}

/// A malformed expression is one error, at the mistake: the parameter it was meant for is not
/// also reported as missing.
#[test]
fn a_malformed_expression_is_one_error_not_two() {
    let r = Repo::shop();
    r.edit(
        "pipelines/shop/pipeline.yml",
        "VpcId: ${network.VpcId}",
        "VpcId: ${network.Vpc_Id}",
    );
    r.edit(
        "pipelines/shop/pipeline.yml",
        "DatabaseUrl: postgres://${database.Endpoint}",
        "DatabaseUrl: postgres://${database Endpoint}",
    );
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stderr.matches("error:").count(), 2, "{}", run.stderr);
    assert!(!run.stderr.contains("has no value"), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "error: `Vpc_Id` is not an output name\n  --> pipelines/shop/pipeline.yml:18:14"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "error: `${database Endpoint}` is not an expression formwork knows\n  --> pipelines/shop/pipeline.yml:23:31"
        ),
        "{}",
        run.stderr
    );
}

/// SSM parameter names follow AWS Systems Manager's rules; each mistake is one error pointing
/// at it. Names filled in from variables are checked once filled.
#[test]
fn ssm_parameter_names_are_checked_by_aws_rules() {
    let path = "Password: ${ssm:/shop/${env.name}/db-password}";
    let cases = [
        (
            "Password: ${ssm:/shop/${env.name}/db password}",
            "an SSM parameter name cannot contain a space",
            "19:43",
        ),
        (
            "Password: ${ssm:/shop/${env.name}/'db-password'}",
            "an SSM parameter name cannot contain a quote (`'`)",
            "19:41",
        ),
        (
            "Password: ${ssm:/shop/../db-password}",
            "`/shop/../db-password` has a level `..`; SSM names are not file paths",
            "19:17",
        ),
        (
            "Password: ${ssm:/shop//db-password}",
            "`/shop//db-password` has an empty level",
            "19:17",
        ),
        (
            "Password: ${ssm:shop/db-password}",
            "`shop/db-password` is a hierarchy that does not begin with `/`; write `/shop/db-password`",
            "19:17",
        ),
        (
            "Password: ${ssm:/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p}",
            "has 16 levels; AWS allows at most 15",
            "19:17",
        ),
        (
            "Password: ${ssm:/shop/db-password:}",
            "`:` may only come once, before a version number or a label",
            "19:17",
        ),
    ];
    for (written, message, at) in cases {
        let r = Repo::shop();
        r.edit("pipelines/shop/pipeline.yml", path, written);
        let run = r.run(&["validate"]);
        assert_eq!(run.code, 1, "{written}: {}", run.all());
        assert_eq!(
            run.stderr.matches("error:").count(),
            1,
            "{written}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(message), "{written}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("--> pipelines/shop/pipeline.yml:{at}")),
            "{written} at {at}: {}",
            run.stderr
        );
    }
    // What AWS accepts is accepted: public parameters, versions, labels, shared ARNs.
    for written in [
        "Password: ${ssm:/aws/service/global-infrastructure/regions/us-east-1/longName}",
        "Password: ${ssm:/shop/${env.name}/db-password:3}",
        "Password: ${ssm:/shop/${env.name}/db-password:Prod_1.x}",
        "Password: ${ssm:db-password}",
        "Password: ${ssm:arn:aws:ssm:us-east-1:111111111111:parameter/shop/db-password}",
    ] {
        let r = Repo::shop();
        r.edit("pipelines/shop/pipeline.yml", path, written);
        let run = r.run(&["validate"]);
        assert_eq!(run.code, 0, "{written}: {}", run.all());
    }
    // A variable that fills a bad name in: reported once filled, with what was filled in.
    let r = Repo::shop();
    r.edit(
        "pipelines/shop/pipeline.yml",
        path,
        "Password: ${ssm:/shop/${var.Team}/db-password}",
    );
    r.edit(
        "pipelines/shop/pipeline.yml",
        "vars:\n",
        "vars:\n  Team:\n    default: core team\n",
    );
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains(
            "the SSM parameter name `/shop/core team/db-password` contains a space (after filling in ${ssm:/shop/${var.Team}/db-password} in environment `"
        ),
        "{}",
        run.stderr
    );
}
