//! `${secretsmanager:NAME}` and `${secretsmanager:NAME:KEY}` on moto server: a parameter takes
//! a secret of AWS Secrets Manager (whole, or one key of its JSON), read at plan time with the
//! environment's credentials; the value reaches CloudFormation and nothing formwork prints; a
//! missing secret, a missing key and a secret that is not JSON are errors saying which; the
//! plan role's policy allows reading exactly those secrets; a secret name in a tag is refused
//! where it is written. The parameters are not NoEcho, so that the deployed value can be read
//! back: formwork masks a secret's value whether or not the template hides it.

use crate::common;

use common::Repo;
use common::aws::{moto_with_change_set_outputs as moto, unique};
use common::sdk::{self, block, formwork_on};
use common::stacks;

const REGION: &str = "us-east-1";

const TEMPLATE: &str = "\
Parameters:
  Label:
    Type: String
  Password:
    Type: String
  Token:
    Type: String
Resources:
  Holder:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /secrets-test/${Label}
      Type: String
      Value: holder
";

fn pipeline(password: &str, token: &str) -> String {
    format!(
        "pipeline: sec\nstacks:\n  app:\n    template: templates/app.yml\n    parameters:\n      Label: ${{env.name}}\n      Password: \"{password}\"\n      Token: \"{token}\"\n"
    )
}

#[test]
fn a_secret_or_one_key_of_it_becomes_a_parameter_and_is_never_shown() {
    let env = unique("secrets");
    let (db, api) = (format!("{env}/db"), format!("{env}/api-token"));
    let password = format!("pw-{env}-Sup3r");
    let token = format!("tok-{env}-0a9b8c");
    let sm = sdk::secrets_manager(moto(), REGION);
    block(async {
        sm.create_secret()
            .name(&db)
            .secret_string(format!(
                r#"{{"username":"app","password":"{password}","port":5432}}"#
            ))
            .send()
            .await
            .unwrap();
        sm.create_secret()
            .name(&api)
            .secret_string(&token)
            .send()
            .await
            .unwrap();
    });
    let r = Repo::one_pipeline(
        "sec",
        &pipeline(
            "${secretsmanager:${env.name}/db:password}",
            "${secretsmanager:${env.name}/api-token}",
        ),
        &[("app.yml", TEMPLATE)],
        &env,
        REGION,
        "",
    );
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 0, "{}", v.all());

    // (One plan before the apply: moto makes a second stack of the same name for a second
    // CREATE change set, where CloudFormation reuses the first.)
    let json = formwork_on(
        moto(),
        r.path(),
        &["plan", "--env", &env, "--output", "json"],
    );
    assert_eq!(json.code, 2, "{}", json.all());
    let applied = formwork_on(moto(), r.path(), &["apply", "--env", &env]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    let deployed = stacks::parameters(moto(), REGION, &format!("{env}-app"));
    assert_eq!(deployed.get("Password"), Some(&password), "{deployed:?}");
    assert_eq!(deployed.get("Token"), Some(&token), "{deployed:?}");
    // Read again and compared: nothing to change.
    let plan = formwork_on(moto(), r.path(), &["plan", "--env", &env, "--refresh"]);
    assert_eq!(plan.code, 0, "{}", plan.all());
    for run in [&plan, &json, &applied] {
        for secret in [&password, &token] {
            assert!(
                !run.all().contains(secret.as_str()),
                "{secret} shown:\n{}",
                run.all()
            );
        }
    }
    assert!(json.stdout.contains("****"), "{}", json.stdout);

    // The plan role may read these two secrets, and no other.
    let policy = r.run(&["iam-policy", "--plan"]);
    assert_eq!(policy.code, 0, "{}", policy.all());
    let doc: serde_json::Value = policy.json();
    let read = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "ReadSecrets")
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(
        read["Resource"],
        serde_json::json!([
            format!("arn:aws:secretsmanager:{REGION}:123456789012:secret:{api}-??????"),
            format!("arn:aws:secretsmanager:{REGION}:123456789012:secret:{db}-??????"),
        ])
    );

    // What cannot be read is said precisely.
    for (password, says) in [
        (
            "${secretsmanager:${env.name}/missing}".to_string(),
            format!("there is no secret `{env}/missing`"),
        ),
        (
            "${secretsmanager:${env.name}/db:pin}".to_string(),
            format!("secret `{env}/db` has no key `pin`"),
        ),
        (
            "${secretsmanager:${env.name}/api-token:password}".to_string(),
            format!("secret `{env}/api-token` is not a JSON object"),
        ),
    ] {
        r.write(
            "pipelines/sec/pipeline.yml",
            &pipeline(&password, "${secretsmanager:${env.name}/api-token}"),
        );
        r.commit("another secret");
        let plan = formwork_on(moto(), r.path(), &["plan", "--env", &env]);
        assert_eq!(plan.code, 1, "{}", plan.all());
        assert!(plan.all().contains(&says), "{says}:\n{}", plan.all());
        assert!(!plan.all().contains(&token), "{}", plan.all());
    }

    // A secret is a parameter's value only: a tag may not take one.
    r.write(
        "pipelines/sec/pipeline.yml",
        &format!(
            "{}    tags:\n      owner: ${{secretsmanager:team}}\n",
            pipeline("x", "y")
        ),
    );
    let v = r.run(&["validate"]);
    assert_eq!(v.code, 1, "{}", v.all());
    assert!(
        v.all().contains("a tag value cannot use secrets"),
        "{}",
        v.all()
    );
    assert!(
        v.all().contains("pipelines/sec/pipeline.yml:10:14"),
        "{}",
        v.all()
    );
}
