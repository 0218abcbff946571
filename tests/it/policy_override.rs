//! `/formwork override RULE` end to end, through the Action's step, on a real git repository,
//! moto and the recording GitHub in front of Prism: a blocking policy rule fails a pull
//! request's plan; a writer may not override it, a maintainer may; the override is recorded,
//! the pull request is planned again with the finding marked overridden and its check passing,
//! and `/formwork apply` applies it. A new push is checked against the rule again.

use crate::common;

use common::pr_world::{REGION, World, comment_event};

const RULE: &str = "\
rule app_size_small when Formwork.Stack == 'app' {
    Formwork.Parameters.Size == 'small'
    <<
        a large app needs a capacity review
    >>
}
";

fn env_file(size: &str) -> String {
    format!("pipeline: svc\naccount: \"123456789012\"\nregion: {REGION}\nvars:\n  Size: {size}\n")
}

/// The newest plan comment's body, Markdown escapes removed.
fn plan_comment(w: &World, n: u64) -> String {
    w.mock
        .comments(n)
        .into_iter()
        .rev()
        .find(|c| c.body.starts_with("<!-- formwork:plan"))
        .map(|c| c.body.replace('\\', ""))
        .expect("a plan comment")
}

/// The state of the newest `formwork/plan` status of `sha`.
fn plan_status(w: &World, sha: &str) -> String {
    w.statuses(sha)
        .into_iter()
        .rev()
        .find(|s| s.0 == "formwork/plan")
        .map(|s| s.1)
        .unwrap_or_default()
}

fn last_reply(w: &World, n: u64) -> String {
    w.mock.comments(n).pop().unwrap().body
}

#[test]
fn a_maintainer_overrides_a_blocking_rule_for_one_head_and_it_is_recorded() {
    let w = World::new("povr");
    w.repo.write("policies/size.guard", RULE);
    let main = w.repo.commit("a size rule");
    w.repo.branch("big");
    w.repo.checkout("big");
    let env_path = format!("environments/{}/environment.yml", w.env);
    w.repo.write(&env_path, &env_file("large"));
    let head = w.repo.commit("large");
    w.mock.set_pull(51, &head, &main, None);
    w.mock.set_permission("writer", "write");
    w.mock.set_permission("maint", "maintain");

    // The step fails (exit 1) while a blocking rule fails the plan.
    let said = |who: &str, what: &str, extra: &[&str], code: i32| {
        let run = w.event("issue_comment", &comment_event(51, who, what), extra);
        assert_eq!(run.code, code, "{what}: {}", run.all());
    };
    let say = |who: &str, what: &str, extra: &[&str]| said(who, what, extra, 0);
    said("writer", "/formwork plan", &[], 1);
    let blocked = plan_comment(&w, 51);
    assert!(blocked.contains("⛔ block"), "{blocked}");
    assert_eq!(plan_status(&w, &head), "failure");

    // A writer may not override.
    say("writer", "/formwork override app_size_small", &[]);
    let reply = last_reply(&w, 51);
    assert!(
        reply.contains("needs maintain or admin permission"),
        "{reply}"
    );

    // A rule that blocks nothing: nothing to override, nothing recorded.
    say("maint", "/formwork override no_such_rule", &[]);
    let reply = last_reply(&w, 51);
    assert!(reply.contains("nothing to override"), "{reply}");

    // A maintainer may: recorded, planned again, the check passes.
    say("maint", "/formwork override app_size_small", &[]);
    let replies: Vec<String> = w.mock.comments(51).into_iter().map(|c| c.body).collect();
    assert!(
        replies
            .iter()
            .any(|r| r.contains("Policy rule `app_size_small` overridden by @maint")),
        "{replies:#?}"
    );
    let overridden = plan_comment(&w, 51);
    assert!(
        overridden.contains("block, overridden by @maint (GitHub)"),
        "{overridden}"
    );
    assert_eq!(plan_status(&w, &head), "success");
    let events = common::sdk::block(async {
        use formwork::store::Store;
        let store = formwork::store::open("sqlite", w.data.path())
            .await
            .unwrap();
        store.events(Some(&w.env), 50).await.unwrap()
    });
    assert!(
        events.iter().any(|e| e.kind == "policy_override"
            && e.actor == "@maint (GitHub)"
            && e.detail == format!("rule app_size_small on pull request #51 at commit {head}")),
        "{events:?}"
    );

    // `formwork status` shows it in the environment's audit trail.
    let status = w.run(&["status", "--env", &w.env]);
    assert_eq!(status.code, 0, "{}", status.all());
    assert!(
        status.stdout.contains(&format!(
            "policy_override by @maint (GitHub): rule app_size_small on pull request #51 at commit {head}"
        )),
        "{}",
        status.stdout
    );
    let json = w
        .run(&["status", "--env", &w.env, "--output", "json"])
        .json();
    assert_eq!(
        json["environments"][0]["events"][0]["kind"],
        "policy_override"
    );

    // Applied before merging: the overridden finding no longer refuses it.
    say("writer", "/formwork apply", &["--apply-before-merge"]);
    let applied = w
        .mock
        .comments(51)
        .into_iter()
        .rev()
        .find(|c| c.body.starts_with("<!-- formwork:apply"))
        .expect("an apply comment");
    assert!(applied.body.contains("succeeded"), "{}", applied.body);

    // A new push is checked against the rule again.
    w.repo.write(
        &env_path,
        &format!("{}tags:\n  owner: maint\n", env_file("large")),
    );
    let next = w.repo.commit("large, tagged");
    w.mock.set_pull(51, &next, &main, None);
    said("writer", "/formwork plan", &[], 1);
    assert_eq!(plan_status(&w, &next), "failure");
    assert!(plan_comment(&w, 51).contains("⛔ block"));
    w.check_requests();
}
