//! Apply requirements end to end: `/formwork apply` on an open pull request and the apply of a
//! merge (`formwork apply --github`), on a real git repository and moto, against the recording
//! GitHub in front of Prism (GitHub's official OpenAPI description, which validates every
//! request, the reviews, team membership and compare calls among them). A refused apply says
//! which requirement failed and touches no stack; the requirements come from the base, so a
//! pull request that removes them is still held to them.

use crate::common;

use common::pr_world::{REGION, World, comment_event};
use common::sdk::{self, block};
use serde_json::json;

/// An environment file with `requirements` under `apply_requirements:`.
fn env_file(size: &str, requirements: &str) -> String {
    format!(
        "pipeline: svc\naccount: \"123456789012\"\nregion: {REGION}\nvars:\n  Size: {size}\n{requirements}"
    )
}

const STRICT: &str = "apply_requirements:
  approved:
    count: 1
    teams: [platform]
    codeowners: true
  mergeable: true
  undiverged: true
";

/// The value of the app's SSM parameter (what the stack deploys), if it is deployed.
fn deployed_value(env: &str) -> Option<String> {
    let ssm = sdk::ssm(common::aws::moto(), REGION);
    block(async {
        ssm.get_parameter()
            .name(format!("/gh/{env}/app"))
            .send()
            .await
            .ok()
            .and_then(|p| p.parameter?.value)
    })
}

fn last_apply_comment(w: &World, n: u64) -> String {
    w.mock
        .comments(n)
        .into_iter()
        .rev()
        .find(|c| c.body.starts_with("<!-- formwork:apply"))
        .map(|c| c.body.replace('\\', ""))
        .expect("an apply comment (Markdown escapes removed)")
}

#[test]
fn an_open_pull_request_is_applied_only_when_its_requirements_are_met() {
    let w = World::new("req");
    let env_path = format!("environments/{}/environment.yml", w.env);
    w.repo.write(&env_path, &env_file("small", STRICT));
    w.repo.write(
        ".github/CODEOWNERS",
        "* @octo-org/docs\nenvironments/ @octo-org/platform\n",
    );
    let main = w.repo.commit("requirements");
    w.repo.branch("grow");
    w.repo.checkout("grow");
    // The pull request also tries to drop the requirements: the base's still hold.
    w.repo.write(&env_path, &env_file("large", ""));
    let head = w.repo.commit("bigger, no requirements");
    w.mock.set_pull(41, &head, &main, None);
    w.mock.patch_pull(
        41,
        json!({"draft": true, "mergeable": true, "mergeable_state": "draft", "user": {"login": "author"}}),
    );
    w.mock.set_behind(&head, 2);
    w.mock.set_permission("writer", "write");
    w.mock.add_member("octo-org/platform", "carol");
    // dave approves but is not in the team; the author's own approval never counts.
    w.mock.add_review(41, "dave", "APPROVED", &head);
    w.mock.add_review(41, "author", "APPROVED", &head);
    let plan = w.event(
        "issue_comment",
        &comment_event(41, "writer", "/formwork plan"),
        &[],
    );
    assert_eq!(plan.code, 0, "{}", plan.all());

    let apply = || {
        let run = w.event(
            "issue_comment",
            &comment_event(41, "writer", "/formwork apply"),
            &["--apply-before-merge"],
        );
        assert_eq!(run.code, 0, "{}", run.all());
        last_apply_comment(&w, 41)
    };
    let refused = apply();
    for said in [
        "apply requirements are not met",
        "`approved`: 1 approving review by members of `platform` needed, 0 counted (none); not counted: @dave, not in those teams",
        &format!("`{env_path}` (owners: @octo-org/platform)"),
        "`mergeable`: it is a draft",
        "`undiverged`: it is 2 commits behind `main`",
    ] {
        assert!(refused.contains(said), "{said:?} not in:\n{refused}");
    }
    assert_eq!(deployed_value(&w.env), None, "nothing was applied");

    // carol (of the team, so a code owner of environments/) approves; it is ready and up to
    // date: applied.
    w.mock.add_review(41, "carol", "APPROVED", &head);
    w.mock
        .patch_pull(41, json!({"draft": false, "mergeable_state": "clean"}));
    w.mock.set_behind(&head, 0);
    let applied = apply();
    assert!(applied.contains("succeeded"), "{applied}");
    assert!(
        deployed_value(&w.env).is_some_and(|v| v.ends_with(":large")),
        "{:?}",
        deployed_value(&w.env)
    );
    let asked = w.mock.requests();
    for path in [
        "/repos/octo-org/config/pulls/41/reviews",
        "/orgs/octo-org/teams/platform/memberships/carol",
        "/orgs/octo-org/teams/platform/memberships/dave",
        &format!("/repos/octo-org/config/compare/main...{head}"),
    ] {
        assert!(asked.iter().any(|r| r.path == path), "{path} not asked");
    }
    w.check_requests();
}

#[test]
fn a_merge_without_an_approval_is_not_applied() {
    let w = World::new("reqm");
    let env_path = format!("environments/{}/environment.yml", w.env);
    let approved = "apply_requirements:\n  approved:\n    dismiss_stale: true\n";
    w.repo.write(&env_path, &env_file("small", approved));
    let main = w.repo.commit("requirements");
    w.repo.branch("grow");
    w.repo.checkout("grow");
    w.repo.write(&env_path, &env_file("large", approved));
    let first = w.repo.commit("bigger");
    w.repo.write(
        &env_path,
        &env_file("large", &format!("{approved}tags:\n  team: a\n")),
    );
    let head = w.repo.commit("tagged");
    w.mock.set_pull(42, &head, &main, None);
    let plan = w.run(&["plan", "--github-pr", "42"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    // An approval of the first commit only, stale once the second was pushed.
    w.mock.add_review(42, "carol", "APPROVED", &first);

    w.repo.checkout("main");
    let merge = w.repo.merge("grow", "Merge pull request #42");
    w.mock.set_pull(42, &head, &main, Some(&merge));
    let run = w.run(&["apply", "--github", "--env", &w.env]);
    assert_eq!(run.code, 1, "{}", run.all());
    let refused = last_apply_comment(&w, 42);
    assert!(
        refused.contains(&format!(
            "`approved`: 1 approving review of its head commit {} needed, 0 counted (none)",
            &head[..7]
        )),
        "{refused}"
    );
    assert!(
        !refused.contains("`mergeable`") && !refused.contains("`undiverged`"),
        "only `approved` is judged after merging: {refused}"
    );
    assert_eq!(deployed_value(&w.env), None);
    let events = block(async {
        use formwork::store::Store;
        let store = formwork::store::open("sqlite", w.data.path())
            .await
            .unwrap();
        store.events(Some(&w.env), 10).await.unwrap()
    });
    assert!(
        events.iter().any(|e| e.kind == "apply_requirements_unmet"
            && e.detail.contains("(pull request #42): approved")),
        "the refusal is in the audit trail: {events:?}"
    );

    // Approved at the head: the merge is applied.
    w.mock.add_review(42, "erin", "APPROVED", &head);
    let run = w.run(&["apply", "--github", "--env", &w.env]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(deployed_value(&w.env).is_some_and(|v| v.ends_with(":large")));
    w.check_requests();
}

#[test]
fn bad_requirements_are_reported_where_they_are_written() {
    let repo = common::Repo::new();
    repo.write(
        "pipelines/p/pipeline.yml",
        "pipeline: p\nstacks:\n  s:\n    template: t.yml\n",
    );
    repo.write(
        "pipelines/p/t.yml",
        "Resources:\n  T:\n    Type: AWS::SNS::Topic\n",
    );
    repo.write(
        "environments/e/environment.yml",
        "pipeline: p\naccount: \"123456789012\"\nregion: us-east-1\napply_requirements:\n  approved:\n    count: 0\n    teams: [\"not a team\"]\n  mergable: true\n",
    );
    let run = common::formwork(repo.path(), &["validate"]);
    assert_eq!(run.code, 1, "{}", run.all());
    for said in [
        "environments/e/environment.yml:6:12",
        "`count: 0` asks for no approval",
        "environments/e/environment.yml:7:13",
        "`not a team` is not a GitHub team",
        "environments/e/environment.yml:8:3",
        "unknown field `mergable`",
        "did you mean `mergeable`?",
    ] {
        assert!(run.all().contains(said), "{said:?} not in:\n{}", run.all());
    }
}

#[test]
fn an_environment_new_in_the_change_brings_its_own_requirements() {
    let w = World::new("reqn");
    let main = w.repo.head_commit();
    w.repo.branch("new-env");
    w.repo.checkout("new-env");
    let env = format!("{}-new", w.env);
    let ssm = sdk::ssm(common::aws::moto(), REGION);
    block(async {
        ssm.put_parameter()
            .name(format!("/gh/{env}/secret"))
            .value("new-env-secret-value")
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    });
    w.repo.write(
        &format!("environments/{env}/environment.yml"),
        &env_file("small", "apply_requirements:\n  approved:\n    count: 2\n"),
    );
    let head = w.repo.commit("a new environment");
    w.mock.set_pull(43, &head, &main, None);
    let plan = w.run(&["plan", "--github-pr", "43"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    w.mock.add_review(43, "carol", "APPROVED", &head);

    w.repo.checkout("main");
    let merge = w.repo.merge("new-env", "Merge pull request #43");
    w.mock.set_pull(43, &head, &main, Some(&merge));
    let run = w.run(&["apply", "--github", "--env", &env]);
    assert_eq!(run.code, 1, "{}", run.all());
    let refused = last_apply_comment(&w, 43);
    assert!(
        refused.contains("`approved`: 2 approving reviews needed, 1 counted (@carol)"),
        "{refused}"
    );
    w.check_requests();
}
