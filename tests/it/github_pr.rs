//! The pull-request flow end to end: `formwork plan --github-pr N` and `formwork apply --github`
//! on a real git repository, against moto server for AWS and Prism (GitHub's official OpenAPI
//! description) behind the recording server for GitHub. The plan comment is posted once and
//! edited on every push, the head commit gets its `formwork/plan` status (or check run), the
//! merge applies exactly the reviewed plan and reports on the pull request and the merge commit,
//! config errors reach the comment with their file and line, and no secret (a NoEcho parameter
//! fed from an SSM SecureString, the GitHub token) is in anything sent to GitHub or printed.
//!
//! moto gives stacks created through change sets no outputs (moto 5.2.5), so the upstream stack
//! is deployed beforehand with CreateStack and the pull request changes the downstream one.

use crate::common;

use common::aws::moto;
use common::github::examples_of;
use common::pr_world::{REGION, REPO, World, comment_event, pull_request_event};
use common::sdk::{self, block};
use serde_json::json;

#[test]
fn a_pull_request_is_planned_in_one_comment_and_applied_on_merge() {
    let w = World::new("ghpr");
    let main = w.repo.head_commit();
    w.repo.branch("change-7");
    w.repo.checkout("change-7");
    w.repo.write(
        &format!("environments/{}/environment.yml", w.env),
        &format!(
            "pipeline: svc\naccount: \"123456789012\"\nregion: {REGION}\nvars:\n  Size: large\n"
        ),
    );
    let c1 = w.repo.commit("bigger app");
    w.mock.set_pull(7, &c1, &main, None);

    let run = w.run(&["plan", "--github-pr", "7"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let comments = w.mock.comments(7);
    assert_eq!(comments.len(), 1);
    let body = &comments[0].body;
    assert!(
        body.starts_with("<!-- formwork:plan scope=* part=1 -->\n"),
        "{body}"
    );
    assert!(
        body.contains(&c1[..7]),
        "the comment names the planned commit: {body}"
    );
    assert!(body.contains("| app |") || body.contains("app"), "{body}");
    assert!(
        body.contains("****"),
        "the secret parameter is shown masked: {body}"
    );
    let statuses = w.statuses(&c1);
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert_eq!(statuses[0].0, "formwork/plan");
    assert_eq!(statuses[0].1, "pending");
    assert_eq!(statuses[1].1, "success");
    assert!(statuses[1].2.contains("to change"), "{statuses:?}");
    assert_eq!(
        statuses[1].3,
        "https://github.example/octo-org/config/actions/runs/777"
    );

    // A second push: the same comment, edited; it now names the new commit.
    w.repo.write(
        &format!("environments/{}/environment.yml", w.env),
        &format!(
            "pipeline: svc\naccount: \"123456789012\"\nregion: {REGION}\nvars:\n  Size: large\nstacks:\n  app:\n    tags:\n      team: platform\n"
        ),
    );
    let c2 = w.repo.commit("tag it");
    w.mock.set_pull(7, &c2, &main, None);
    let run = w.run(&["plan", "--github-pr", "7"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let after = w.mock.comments(7);
    assert_eq!(after.len(), 1, "one comment per pull request");
    assert_eq!(after[0].id, comments[0].id, "edited in place");
    assert!(after[0].body.contains(&c2[..7]));
    assert!(
        !after[0].body.contains(&c1[..7]),
        "the previous plan is gone"
    );
    assert!(
        w.mock
            .requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.path.ends_with(&format!("/comments/{}", after[0].id)))
    );

    // Merge: apply runs exactly the reviewed plan (of c2) and reports on the pull request and
    // the merge commit.
    w.repo.checkout("main");
    let merge = w.repo.merge("change-7", "Merge pull request #7");
    w.mock.set_pull(7, &c2, &main, Some(&merge));
    let run = w.run(&["apply", "--github", "--env", &w.env]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stderr.contains("pull request #7"), "{}", run.stderr);
    let comments = w.mock.comments(7);
    assert_eq!(comments.len(), 2, "plan and apply comments");
    let apply = &comments[1].body;
    assert!(
        apply.starts_with(&format!("<!-- formwork:apply scope={} part=1 -->\n", w.env)),
        "{apply}"
    );
    assert!(apply.contains("applied"), "{apply}");
    let statuses = w.statuses(&merge);
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert_eq!(statuses[0].0, "formwork/apply");
    assert_eq!(statuses[0].1, "pending");
    assert_eq!(statuses[1].1, "success", "{statuses:?}");
    // The stack exists now. (moto makes a second stack of the same name for the second push's
    // CREATE change set, where CloudFormation reuses the REVIEW_IN_PROGRESS one, and answers
    // the name with the first: look among all stacks.)
    let cfn = sdk::cfn(moto(), REGION);
    let statuses: Vec<String> = block(async {
        let mut pages = cfn.describe_stacks().into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            for s in page.unwrap().stacks() {
                if s.stack_name() == Some(format!("{}-app", w.env).as_str()) {
                    out.push(s.stack_status().unwrap().as_str().to_string());
                }
            }
        }
        out
    });
    assert!(
        statuses.contains(&"CREATE_COMPLETE".to_string()),
        "{statuses:?}"
    );
    w.check_requests();
}

#[test]
fn config_errors_reach_the_comment_with_file_and_line() {
    let w = World::new("gherr");
    let main = w.repo.head_commit();
    w.repo.branch("broken");
    w.repo.checkout("broken");
    w.repo.write(
        &format!("environments/{}/environment.yml", w.env),
        &format!(
            "pipeline: svc\naccount: \"123456789012\"\nregion: {REGION}\nvarz:\n  Size: large\n"
        ),
    );
    let head = w.repo.commit("typo");
    w.mock.set_pull(8, &head, &main, None);
    let run = w.run(&["plan", "--github-pr", "8"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let comments = w.mock.comments(8);
    assert_eq!(comments.len(), 1);
    let body = &comments[0].body;
    assert!(body.contains("failed"), "{body}");
    assert!(
        body.contains(&format!("environments/{}/environment.yml:4:1", w.env)),
        "{body}"
    );
    assert!(body.contains("varz") && body.contains("vars"), "{body}");
    let statuses = w.statuses(&head);
    assert_eq!(statuses.last().unwrap().1, "failure", "{statuses:?}");
    w.check_requests();
}

#[test]
fn check_runs_carry_the_plan_and_an_unreviewed_merge_is_refused() {
    let w = World::new("ghchk");
    let main = w.repo.head_commit();
    w.repo.branch("c");
    w.repo.checkout("c");
    w.repo.write(
        &format!("environments/{}/environment.yml", w.env),
        &format!(
            "pipeline: svc\naccount: \"123456789012\"\nregion: {REGION}\nvars:\n  Size: large\n"
        ),
    );
    let head = w.repo.commit("bigger");
    w.mock.set_pull(9, &head, &main, None);
    let run = w.run(&["plan", "--github-pr", "9", "--github-report", "check-run"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let reqs = w.mock.requests();
    let start = reqs
        .iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/check-runs"))
        .expect("a check run is started");
    assert_eq!(start.json()["head_sha"], head);
    assert_eq!(start.json()["status"], "in_progress");
    let done = reqs
        .iter()
        .find(|r| r.method == "PATCH" && r.path.contains("/check-runs/"))
        .expect("the check run is completed");
    assert_eq!(done.json()["conclusion"], "success");
    assert!(
        done.json()["output"]["summary"]
            .as_str()
            .unwrap()
            .contains("## formwork plan")
    );
    assert!(
        w.statuses(&head).is_empty(),
        "check runs instead of statuses"
    );

    // The merge commit came from pull request #10, which was never planned here: refused,
    // and said so on the pull request and the commit.
    w.repo.checkout("main");
    let merge = w.repo.merge("c", "Merge pull request #10");
    w.mock
        .set_pull(10, &head.replace(&head[..4], "ffff"), &main, Some(&merge));
    let run = w.run(&["apply", "--github", "--env", &w.env]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("no plan of environment"),
        "{}",
        run.stderr
    );
    let comments = w.mock.comments(10);
    assert_eq!(comments.len(), 1);
    assert!(comments[0].body.contains("failed"), "{}", comments[0].body);
    let statuses = w.statuses(&merge);
    assert_eq!(statuses.last().unwrap().1, "failure");
    let cfn = sdk::cfn(moto(), REGION);
    // The plan's CREATE change set made the stack, in REVIEW_IN_PROGRESS; nothing ran it.
    let status = block(async {
        cfn.describe_stacks()
            .stack_name(format!("{}-app", w.env))
            .send()
            .await
            .unwrap()
            .stacks()[0]
            .stack_status()
            .unwrap()
            .as_str()
            .to_string()
    });
    assert_eq!(status, "REVIEW_IN_PROGRESS", "nothing was applied");
    w.check_requests();
}

#[test]
fn github_actions_events_plan_pull_requests_and_apply_pushes() {
    let w = World::new("ghev");
    let main = w.repo.head_commit();
    w.repo.branch("ev");
    w.repo.checkout("ev");
    w.repo.write(
        &format!("environments/{}/environment.yml", w.env),
        &format!(
            "pipeline: svc\naccount: \"123456789012\"\nregion: {REGION}\nvars:\n  Size: large\n"
        ),
    );
    let head = w.repo.commit("bigger");
    w.mock.set_pull(21, &head, &main, None);

    // synchronize: planned, one sticky comment.
    let run = w.event(
        "pull_request",
        &pull_request_event("synchronize", 21, &head, &main),
        &[],
    );
    // A plan made and reported: the step succeeds.
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(w.mock.comments(21).len(), 1);
    assert!(
        w.mock.comments(21)[0]
            .body
            .starts_with("<!-- formwork:plan scope=* part=1 -->")
    );

    // A push of the merge to the default branch applies the affected environment.
    w.repo.checkout("main");
    let merge = w.repo.merge("ev", "Merge pull request #21");
    w.mock.set_pull(21, &head, &main, Some(&merge));
    let mut push = examples_of("push")
        .into_iter()
        .find(|e| e["ref"].as_str().unwrap().starts_with("refs/heads/"))
        .unwrap();
    push["ref"] = json!("refs/heads/main");
    push["repository"]["default_branch"] = json!("main");
    push["repository"]["full_name"] = json!(REPO);
    push["before"] = json!(main);
    push["after"] = json!(merge);
    let run = w.event("push", &push, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let apply = w.mock.comments(21);
    assert_eq!(apply.len(), 2, "{apply:?}");
    assert!(apply[1].body.contains("succeeded"), "{}", apply[1].body);

    // A push to another branch does nothing.
    push["ref"] = json!("refs/heads/feature");
    let before = w.mock.requests().len();
    let run = w.event("push", &push, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(w.mock.requests().len(), before);
    w.check_requests();
}

#[test]
fn comment_commands_run_for_writers_only_and_bad_ones_get_help() {
    let w = World::new("ghcmd");
    let main = w.repo.head_commit();
    w.repo.branch("cmd");
    w.repo.checkout("cmd");
    w.repo.write(
        &format!("environments/{}/environment.yml", w.env),
        &format!(
            "pipeline: svc\naccount: \"123456789012\"\nregion: {REGION}\nvars:\n  Size: large\n"
        ),
    );
    let head = w.repo.commit("bigger");
    w.mock.set_pull(31, &head, &main, None);
    w.mock.set_permission("writer", "write");
    w.mock.set_permission("reader", "read");

    // A reader: politely refused, nothing planned.
    let run = w.event(
        "issue_comment",
        &comment_event(31, "reader", "/formwork plan"),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let c = w.mock.comments(31);
    assert_eq!(c.len(), 1);
    assert!(
        c[0].body
            .contains("needs write, maintain or admin permission"),
        "{}",
        c[0].body
    );
    assert!(
        !w.mock
            .requests()
            .iter()
            .any(|r| r.path.contains("/statuses/"))
    );

    // A writer, one environment and one stack: planned into that environment's comment.
    let cmd = format!("/formwork plan -e {} --stack app", w.env);
    let run = w.event("issue_comment", &comment_event(31, "writer", &cmd), &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let c = w.mock.comments(31);
    assert_eq!(c.len(), 2);
    assert!(
        c[1].body
            .starts_with(&format!("<!-- formwork:plan scope={} part=1 -->", w.env)),
        "{}",
        c[1].body
    );
    assert!(w.mock.requests().iter().any(|r| {
        r.path == format!("/repos/{REPO}/issues/comments/{}/reactions", 555_031)
            && r.json()["content"] == "eyes"
    }));

    // Unknown command: the help, with a suggestion.
    let run = w.event(
        "issue_comment",
        &comment_event(31, "writer", "/formwork plna"),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let last = w.mock.comments(31).pop().unwrap();
    assert!(last.body.contains("plan"), "{}", last.body);
    assert!(
        last.body.contains("/formwork help") || last.body.contains("Commands"),
        "{}",
        last.body
    );

    // A command quoted in a reply does not run.
    let before = w.mock.requests().len();
    let run = w.event(
        "issue_comment",
        &comment_event(31, "writer", "> /formwork apply\nwhy would you apply?"),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(w.mock.requests().len(), before);

    // Apply before merge is off unless the workflow turns it on.
    let run = w.event(
        "issue_comment",
        &comment_event(31, "writer", "/formwork apply"),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let last = w.mock.comments(31).pop().unwrap();
    assert!(
        last.body.contains("Applying before merge is off"),
        "{}",
        last.body
    );

    // Turned on: the pull request's reviewed plan is applied at its head.
    let run = w.event(
        "issue_comment",
        &comment_event(31, "writer", "/formwork apply"),
        &["--apply-before-merge"],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let applied = w
        .mock
        .comments(31)
        .into_iter()
        .find(|c| c.body.starts_with("<!-- formwork:apply"))
        .expect("an apply comment");
    assert!(applied.body.contains("succeeded"), "{}", applied.body);

    // Unlock: the claim its plan took is released, recorded, and said on the pull request;
    // a second unlock finds nothing to release.
    let cmd = format!("/formwork unlock -e {}", w.env);
    let run = w.event("issue_comment", &comment_event(31, "writer", &cmd), &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let last = w.mock.comments(31).pop().unwrap();
    assert!(
        last.body
            .contains("unlocked (was held by pull request #31)"),
        "{}",
        last.body
    );
    let run = w.event("issue_comment", &comment_event(31, "writer", &cmd), &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let last = w.mock.comments(31).pop().unwrap();
    assert!(last.body.contains("was not locked"), "{}", last.body);
    w.check_requests();
}
