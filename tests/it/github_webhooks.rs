//! Webhook deliveries: signatures, and GitHub's own example payloads (`@octokit/webhooks-examples`,
//! installed by `npm ci --prefix tools/github`) read into formwork's event model.

use crate::common;

use common::github::{examples, examples_of};

use formwork::github::webhook::{
    AccountType, AuthorAssociation, Delivery, DeliveryDedup, DeliveryHeaders, Event, Ignored,
    PullRequestAction, PullRequestEvent, SignatureVerifier, WebhookError, receive,
    receive_verified, verify_signature,
};
use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &[u8] = b"formwork-test-secret-6f1d0c";

/// The events formwork reads; every other one must come out ignored.
const HANDLED: [&str; 4] = ["pull_request", "issue_comment", "push", "ping"];

/// `sha256=<hex>` for `body`, computed here independently of the code under test.
fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Delivers `payload` as event `name`, signed with the test secret.
fn deliver(name: &str, payload: &Value) -> Result<Delivery, WebhookError> {
    let body = serde_json::to_vec(payload).unwrap();
    let signature = sign(SECRET, &body);
    let headers = DeliveryHeaders {
        event: Some(name),
        delivery: Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        signature: Some(&signature),
    };
    receive(SECRET, &headers, &body)
}

fn event(name: &str, payload: &Value) -> Event {
    let delivery = deliver(name, payload)
        .unwrap_or_else(|e| panic!("{name} {:?}: {e}", payload.get("action")));
    assert_eq!(delivery.id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    delivery.event
}

fn pull_request(payload: &Value) -> PullRequestEvent {
    match event("pull_request", payload) {
        Event::PullRequest(pr) => pr,
        other => panic!("expected a pull request event, got {other:?}"),
    }
}

fn ignored(name: &str, payload: &Value) -> Ignored {
    match event(name, payload) {
        Event::Ignored(ignored) => ignored,
        other => panic!("expected {name} to be ignored, got {other:?}"),
    }
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer}"))
}

fn number(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no number at {pointer}"))
}

/// Checks the repository fields against the payload's `repository`.
fn check_repository(repo: &formwork::github::webhook::Repository, payload: &Value) {
    assert_eq!(repo.owner, text(payload, "/repository/owner/login"));
    assert_eq!(repo.name, text(payload, "/repository/name"));
    assert_eq!(repo.full_name, text(payload, "/repository/full_name"));
    assert_eq!(
        repo.default_branch,
        text(payload, "/repository/default_branch")
    );
    assert_eq!(repo.clone_url, text(payload, "/repository/clone_url"));
    assert_eq!(
        repo.private,
        payload["repository"]["private"].as_bool().unwrap()
    );
}

fn installation_id(payload: &Value) -> Option<u64> {
    payload.pointer("/installation/id").and_then(Value::as_u64)
}

#[test]
fn the_examples_are_the_pinned_set() {
    let counts: Vec<(&str, usize)> = HANDLED
        .iter()
        .map(|name| (*name, examples_of(name).len()))
        .collect();
    assert_eq!(
        counts,
        [
            ("pull_request", 29),
            ("issue_comment", 9),
            ("push", 7),
            ("ping", 4)
        ]
    );
    assert_eq!(examples().len(), 58);
}

#[test]
fn every_pull_request_example_is_read_or_ignored_by_its_action() {
    let mut read = Vec::new();
    for payload in examples_of("pull_request") {
        let action = text(&payload, "/action");
        if !matches!(action, "opened" | "synchronize" | "reopened" | "closed") {
            let ig = ignored("pull_request", &payload);
            assert_eq!(ig.event, "pull_request");
            assert_eq!(ig.action.as_deref(), Some(action));
            continue;
        }
        let pr = pull_request(&payload);
        let expected_action = match action {
            "opened" => PullRequestAction::Opened,
            "synchronize" => PullRequestAction::Synchronize,
            "reopened" => PullRequestAction::Reopened,
            _ => PullRequestAction::Closed {
                merged: false,
                merge_commit_sha: None,
            },
        };
        assert_eq!(pr.action, expected_action);
        assert_eq!(pr.number, number(&payload, "/pull_request/number"));
        assert_eq!(pr.number, number(&payload, "/number"));
        assert_eq!(pr.title, text(&payload, "/pull_request/title"));
        assert_eq!(pr.author, text(&payload, "/pull_request/user/login"));
        assert_eq!(pr.head_sha, text(&payload, "/pull_request/head/sha"));
        assert_eq!(pr.head_ref, text(&payload, "/pull_request/head/ref"));
        assert_eq!(
            pr.head_repo.as_deref(),
            Some(text(&payload, "/pull_request/head/repo/full_name"))
        );
        assert_eq!(pr.base_sha, text(&payload, "/pull_request/base/sha"));
        assert_eq!(pr.base_ref, text(&payload, "/pull_request/base/ref"));
        assert_eq!(
            pr.draft,
            payload["pull_request"]["draft"].as_bool().unwrap()
        );
        assert!(
            !pr.from_fork,
            "the examples' head and base are one repository"
        );
        assert_eq!(pr.sender, text(&payload, "/sender/login"));
        assert_eq!(pr.installation_id, installation_id(&payload));
        check_repository(&pr.repository, &payload);
        read.push(action.to_string());
    }
    read.sort();
    assert_eq!(
        read,
        [
            "closed",
            "closed",
            "opened",
            "opened",
            "opened",
            "opened",
            "reopened",
            "reopened",
            "synchronize"
        ]
    );
}

#[test]
fn the_known_values_of_the_opened_example() {
    let payload = examples_of("pull_request")
        .into_iter()
        .find(|p| p["action"] == "opened" && p.get("installation").is_some())
        .unwrap();
    let pr = pull_request(&payload);
    assert_eq!(pr.number, 2);
    assert_eq!(pr.author, "Codertocat");
    assert_eq!(pr.head_ref, "changes");
    assert_eq!(pr.base_ref, "master");
    assert!(pr.head_sha.starts_with("ec26c3e5"));
    assert_eq!(pr.repository.full_name, "Codertocat/Hello-World");
    assert_eq!(pr.repository.default_branch, "master");
    assert_eq!(pr.installation_id, Some(1));
}

#[test]
fn a_merged_pull_request_carries_its_merge_commit() {
    let mut payload = examples_of("pull_request")
        .into_iter()
        .find(|p| p["action"] == "closed")
        .unwrap();
    payload["pull_request"]["merged"] = json!(true);
    payload["pull_request"]["merge_commit_sha"] = json!("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c");
    let pr = pull_request(&payload);
    assert_eq!(
        pr.action,
        PullRequestAction::Closed {
            merged: true,
            merge_commit_sha: Some("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c".into())
        }
    );
}

#[test]
fn a_pull_request_closed_without_merge_has_no_merge_commit() {
    let payload = examples_of("pull_request")
        .into_iter()
        .find(|p| p["action"] == "closed")
        .unwrap();
    // GitHub's example is unmerged but has a (test-merge) merge_commit_sha: it must not be
    // taken for a commit on the base branch.
    assert_eq!(payload["pull_request"]["merged"], json!(false));
    assert!(payload["pull_request"]["merge_commit_sha"].is_string());
    let pr = pull_request(&payload);
    assert_eq!(
        pr.action,
        PullRequestAction::Closed {
            merged: false,
            merge_commit_sha: None
        }
    );
}

#[test]
fn a_pull_request_from_a_fork_or_a_deleted_repository_is_from_a_fork() {
    let opened = examples_of("pull_request")
        .into_iter()
        .find(|p| p["action"] == "opened")
        .unwrap();

    let mut fork = opened.clone();
    fork["pull_request"]["head"]["repo"]["full_name"] = json!("mallory/Hello-World");
    fork["pull_request"]["head"]["repo"]["id"] = json!(999_999);
    let pr = pull_request(&fork);
    assert!(pr.from_fork);
    assert_eq!(pr.head_repo.as_deref(), Some("mallory/Hello-World"));
    assert_eq!(pr.repository.full_name, "Codertocat/Hello-World");

    let mut renamed_only = opened.clone();
    renamed_only["pull_request"]["head"]["repo"]["full_name"] = json!("mallory/Hello-World");
    assert!(pull_request(&renamed_only).from_fork);

    let mut deleted = opened.clone();
    deleted["pull_request"]["head"]["repo"] = Value::Null;
    let pr = pull_request(&deleted);
    assert!(pr.from_fork);
    assert_eq!(pr.head_repo, None);

    let mut draft = opened;
    draft["pull_request"]["draft"] = json!(true);
    assert!(pull_request(&draft).draft);
}

#[test]
fn every_issue_comment_example_is_on_an_issue_and_ignored() {
    for payload in examples_of("issue_comment") {
        let action = text(&payload, "/action");
        assert!(payload["issue"].get("pull_request").is_none());
        let ig = ignored("issue_comment", &payload);
        assert_eq!(ig.event, "issue_comment");
        assert_eq!(ig.action.as_deref(), Some(action));
        if action == "created" {
            assert!(ig.reason.contains("not on a pull request"), "{}", ig.reason);
        } else {
            assert!(ig.reason.contains("new comments only"), "{}", ig.reason);
        }
    }
}

#[test]
fn a_new_comment_on_a_pull_request_is_read() {
    let mut created = 0;
    for mut payload in examples_of("issue_comment") {
        let pr_number = number(&payload, "/issue/number");
        payload["issue"]["pull_request"] = json!({
            "url": format!("https://api.github.com/repos/Codertocat/Hello-World/pulls/{pr_number}"),
            "html_url": format!("https://github.com/Codertocat/Hello-World/pull/{pr_number}"),
            "diff_url": format!("https://github.com/Codertocat/Hello-World/pull/{pr_number}.diff"),
            "patch_url": format!("https://github.com/Codertocat/Hello-World/pull/{pr_number}.patch"),
            "merged_at": null
        });
        let action = text(&payload, "/action");
        if action != "created" {
            assert_eq!(
                ignored("issue_comment", &payload).action.as_deref(),
                Some(action)
            );
            continue;
        }
        created += 1;
        let Event::IssueComment(c) = event("issue_comment", &payload) else {
            panic!("expected a comment");
        };
        assert_eq!(c.comment_id, number(&payload, "/comment/id"));
        assert_eq!(c.body, text(&payload, "/comment/body"));
        assert_eq!(c.author, text(&payload, "/comment/user/login"));
        assert_eq!(c.author_type, AccountType::User);
        assert_eq!(text(&payload, "/comment/user/type"), "User");
        assert_eq!(c.author_association, AuthorAssociation::Owner);
        assert_eq!(text(&payload, "/comment/author_association"), "OWNER");
        assert_eq!(c.pull_request, pr_number);
        assert_eq!(c.sender, text(&payload, "/sender/login"));
        assert_eq!(c.installation_id, installation_id(&payload));
        check_repository(&c.repository, &payload);
    }
    assert_eq!(created, 5);
}

#[test]
fn comment_authors_kinds_and_associations() {
    let mut payload = examples_of("issue_comment")
        .into_iter()
        .find(|p| p["action"] == "created")
        .unwrap();
    payload["issue"]["pull_request"] = json!({"url": "https://api.github.com/x"});
    payload["comment"]["body"] = json!("/formwork plan -e staging");
    payload["comment"]["user"]["login"] = json!("formwork[bot]");
    payload["comment"]["user"]["type"] = json!("Bot");
    payload["comment"]["author_association"] = json!("NONE");
    let Event::IssueComment(c) = event("issue_comment", &payload) else {
        panic!("expected a comment");
    };
    assert_eq!(c.body, "/formwork plan -e staging");
    assert_eq!(c.author, "formwork[bot]");
    assert_eq!(c.author_type, AccountType::Bot);
    assert_eq!(c.author_association, AuthorAssociation::NoAssociation);

    payload["comment"]["author_association"] = json!("FIRST_TIME_CONTRIBUTOR");
    payload["comment"]["user"]["type"] = json!("Enterprise");
    let Event::IssueComment(c) = event("issue_comment", &payload) else {
        panic!("expected a comment");
    };
    assert_eq!(c.author_type, AccountType::Other);
    assert_eq!(
        c.author_association,
        AuthorAssociation::FirstTimeContributor
    );

    // `issue.pull_request: null` is not a pull request.
    payload["issue"]["pull_request"] = Value::Null;
    assert!(matches!(
        event("issue_comment", &payload),
        Event::Ignored(_)
    ));
}

#[test]
fn every_push_example_is_read() {
    let mut default_branch = 0;
    for payload in examples_of("push") {
        let Event::Push(push) = event("push", &payload) else {
            panic!("expected a push");
        };
        let ref_name = text(&payload, "/ref");
        assert_eq!(push.ref_name, ref_name);
        assert_eq!(push.before, text(&payload, "/before"));
        assert_eq!(push.after, text(&payload, "/after"));
        assert_eq!(push.created, payload["created"].as_bool().unwrap());
        assert_eq!(push.deleted, payload["deleted"].as_bool().unwrap());
        assert_eq!(push.forced, payload["forced"].as_bool().unwrap());
        assert_eq!(
            push.head_commit.as_deref(),
            payload.pointer("/head_commit/id").and_then(Value::as_str)
        );
        assert_eq!(push.deleted, push.head_commit.is_none());
        assert_eq!(push.installation_id, installation_id(&payload));
        check_repository(&push.repository, &payload);
        let on_default = ref_name == "refs/heads/master";
        assert_eq!(push.is_default_branch(), on_default, "{ref_name}");
        if ref_name.starts_with("refs/tags/") {
            assert_eq!(push.branch(), None);
        } else {
            assert_eq!(push.branch(), Some("master"));
        }
        default_branch += usize::from(on_default);
    }
    assert_eq!(default_branch, 2);
}

#[test]
fn a_push_to_another_branch_is_read_but_not_the_default_branch() {
    let mut payload = examples_of("push")
        .into_iter()
        .find(|p| p["ref"] == "refs/heads/master")
        .unwrap();
    payload["ref"] = json!("refs/heads/feature/bigger-db");
    let Event::Push(push) = event("push", &payload) else {
        panic!("expected a push");
    };
    assert!(!push.is_default_branch());
    assert_eq!(push.branch(), Some("feature/bigger-db"));

    payload["ref"] = json!("refs/heads/main");
    payload["repository"]["default_branch"] = json!("main");
    payload["forced"] = json!(true);
    let Event::Push(push) = event("push", &payload) else {
        panic!("expected a push");
    };
    assert!(push.is_default_branch());
    assert!(push.forced);

    // A tag named like the default branch is not the branch.
    payload["ref"] = json!("refs/tags/main");
    let Event::Push(push) = event("push", &payload) else {
        panic!("expected a push");
    };
    assert!(!push.is_default_branch());
}

#[test]
fn every_ping_example_is_read() {
    for payload in examples_of("ping") {
        let Event::Ping(ping) = event("ping", &payload) else {
            panic!("expected a ping");
        };
        assert_eq!(ping.zen, text(&payload, "/zen"));
        assert_eq!(ping.hook_id, number(&payload, "/hook_id"));
        assert_eq!(
            ping.repository.as_deref(),
            payload
                .pointer("/repository/full_name")
                .and_then(Value::as_str)
        );
    }
}

#[test]
fn every_example_of_every_other_event_is_ignored() {
    let mut seen = 0;
    for (name, payloads) in examples() {
        if HANDLED.contains(&name.as_str()) {
            continue;
        }
        for payload in payloads {
            let ig = ignored(name, payload);
            assert_eq!(&ig.event, name);
            assert_eq!(
                ig.action.as_deref(),
                payload.get("action").and_then(Value::as_str),
                "{name}"
            );
            seen += 1;
        }
    }
    assert_eq!(
        seen,
        examples().iter().map(|(_, e)| e.len()).sum::<usize>() - 49
    );
}

#[test]
fn a_body_that_is_not_the_events_json_is_an_error_naming_event_and_path() {
    let opened = examples_of("pull_request")
        .into_iter()
        .find(|p| p["action"] == "opened")
        .unwrap();

    let mut bad = opened.clone();
    bad["pull_request"]["head"]["sha"] = Value::Null;
    match deliver("pull_request", &bad) {
        Err(WebhookError::Payload {
            event,
            path,
            message,
        }) => {
            assert_eq!(event, "pull_request");
            assert_eq!(path, "$.pull_request.head.sha");
            assert!(message.contains("invalid type: null"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    let mut bad = opened.clone();
    bad.as_object_mut().unwrap().remove("repository");
    let err = deliver("pull_request", &bad).unwrap_err();
    assert!(
        matches!(&err, WebhookError::Payload { path, message, .. } if path == "$" && message.contains("missing field `repository`")),
        "{err:?}"
    );
    let shown = err.to_string();
    assert!(
        shown.contains("`pull_request`") && shown.contains("repository"),
        "{shown}"
    );

    let mut bad = opened.clone();
    bad["pull_request"]["base"]
        .as_object_mut()
        .unwrap()
        .remove("ref");
    let err = deliver("pull_request", &bad).unwrap_err();
    assert!(
        matches!(&err, WebhookError::Payload { path, .. } if path == "$.pull_request.base"),
        "{err:?}"
    );

    let mut bad = examples_of("push").remove(0);
    bad["ref"] = json!(7);
    let err = deliver("push", &bad).unwrap_err();
    assert!(
        matches!(&err, WebhookError::Payload { event, path, .. } if event == "push" && path == "$.ref"),
        "{err:?}"
    );

    // Not JSON at all, properly signed.
    let body = b"{\"action\": \"opened\", ";
    let signature = sign(SECRET, body);
    let headers = DeliveryHeaders {
        event: Some("ping"),
        delivery: Some("d"),
        signature: Some(&signature),
    };
    assert!(matches!(
        receive(SECRET, &headers, body),
        Err(WebhookError::Payload { ref event, .. }) if event == "ping"
    ));
    // An event formwork ignores needs no particular body.
    let headers = DeliveryHeaders {
        event: Some("star"),
        ..headers
    };
    let delivery = receive(SECRET, &headers, body).unwrap();
    assert_eq!(
        delivery.event,
        Event::Ignored(Ignored {
            event: "star".into(),
            action: None,
            reason: "formwork does not act on this event"
        })
    );
}

#[test]
fn event_and_delivery_headers_are_required_after_the_signature() {
    let body = br#"{"zen": "Keep it logically awesome.", "hook_id": 1}"#;
    let signature = sign(SECRET, body);
    let good = DeliveryHeaders {
        event: Some("ping"),
        delivery: Some("1"),
        signature: Some(&signature),
    };
    assert!(matches!(
        receive(SECRET, &good, body).unwrap().event,
        Event::Ping(ref p) if p.hook_id == 1 && p.repository.is_none()
    ));
    let no_event = DeliveryHeaders {
        event: None,
        ..good
    };
    assert_eq!(
        receive(SECRET, &no_event, body),
        Err(WebhookError::MissingEvent)
    );
    let blank_event = DeliveryHeaders {
        event: Some(" "),
        ..good
    };
    assert_eq!(
        receive(SECRET, &blank_event, body),
        Err(WebhookError::MissingEvent)
    );
    let no_delivery = DeliveryHeaders {
        delivery: None,
        ..good
    };
    assert_eq!(
        receive(SECRET, &no_delivery, body),
        Err(WebhookError::MissingDelivery)
    );
    // Unsigned requests learn nothing else.
    let nothing = DeliveryHeaders::default();
    assert_eq!(
        receive(SECRET, &nothing, body),
        Err(WebhookError::MissingSignature)
    );
    let forged = DeliveryHeaders {
        signature: Some(&sign(b"another secret", body)),
        event: None,
        delivery: None,
    };
    assert_eq!(
        receive(SECRET, &forged, body),
        Err(WebhookError::SignatureMismatch)
    );
}

#[test]
fn headers_can_be_read_through_a_lookup() {
    let pairs = [
        ("x-github-event", "push"),
        ("x-github-delivery", "abc"),
        ("x-hub-signature-256", "sha256=00"),
    ];
    let headers = DeliveryHeaders::from_lookup(|name| {
        pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    });
    assert_eq!(
        headers,
        DeliveryHeaders {
            event: Some("push"),
            delivery: Some("abc"),
            signature: Some("sha256=00")
        }
    );
}

#[test]
fn githubs_documented_signature_verifies() {
    // From GitHub's "Validating webhook deliveries".
    let secret = b"It's a Secret to Everybody";
    let body = b"Hello, World!";
    let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(verify_signature(secret, body, Some(header)), Ok(()));
    assert_eq!(sign(secret, body), header);
}

#[test]
fn signatures_are_checked_strictly() {
    let body = serde_json::to_vec(&examples_of("push")[0]).unwrap();
    let good = sign(SECRET, &body);
    let hex = good.strip_prefix("sha256=").unwrap();
    assert_eq!(verify_signature(SECRET, &body, Some(&good)), Ok(()));

    for at in [0, body.len() / 2, body.len() - 1] {
        let mut changed = body.clone();
        changed[at] ^= 0x01;
        assert_eq!(
            verify_signature(SECRET, &changed, Some(&good)),
            Err(WebhookError::SignatureMismatch),
            "byte {at}"
        );
    }
    let mut longer = body.clone();
    longer.push(b' ');
    assert_eq!(
        verify_signature(SECRET, &longer, Some(&good)),
        Err(WebhookError::SignatureMismatch)
    );
    let mut other_digest = hex.as_bytes().to_vec();
    other_digest[63] = if other_digest[63] == b'0' { b'1' } else { b'0' };
    let other = format!("sha256={}", String::from_utf8(other_digest).unwrap());
    assert_eq!(
        verify_signature(SECRET, &body, Some(&other)),
        Err(WebhookError::SignatureMismatch)
    );
    assert_eq!(
        verify_signature(b"wrong", &body, Some(&good)),
        Err(WebhookError::SignatureMismatch)
    );

    let cases: Vec<(String, WebhookError)> = vec![
        (format!("sha1={hex}"), WebhookError::SignaturePrefix),
        (format!("SHA256={hex}"), WebhookError::SignaturePrefix),
        (hex.to_string(), WebhookError::SignaturePrefix),
        (format!(" sha256={hex}"), WebhookError::SignaturePrefix),
        (
            format!("sha256={}", hex.to_ascii_uppercase()),
            WebhookError::SignatureNotHex,
        ),
        (format!("sha256={hex} "), WebhookError::SignatureNotHex),
        (
            format!("sha256={}", "g".repeat(64)),
            WebhookError::SignatureNotHex,
        ),
        (
            format!("sha256={}", &hex[..62]),
            WebhookError::SignatureLength { digits: 62 },
        ),
        (
            format!("sha256={}", &hex[..63]),
            WebhookError::SignatureLength { digits: 63 },
        ),
        (
            format!("sha256={hex}0"),
            WebhookError::SignatureLength { digits: 65 },
        ),
        (
            format!("sha256={hex}{hex}"),
            WebhookError::SignatureLength { digits: 128 },
        ),
        (
            "sha256=".into(),
            WebhookError::SignatureLength { digits: 0 },
        ),
    ];
    for (header, expected) in cases {
        assert_eq!(
            verify_signature(SECRET, &body, Some(&header)),
            Err(expected),
            "{header}"
        );
    }
    assert_eq!(
        verify_signature(SECRET, &body, None),
        Err(WebhookError::MissingSignature)
    );
    assert_eq!(
        verify_signature(b"", &body, Some(&sign(b"", &body))),
        Err(WebhookError::EmptySecret)
    );
    assert_eq!(
        verify_signature(b"", &body, None),
        Err(WebhookError::EmptySecret)
    );
    // An empty body is a body like any other.
    assert_eq!(
        verify_signature(SECRET, b"", Some(&sign(SECRET, b""))),
        Ok(())
    );
}

/// [`receive`] over `body` fed to a [`SignatureVerifier`] in pieces of `piece` bytes.
fn receive_in_pieces(
    secret: &[u8],
    headers: &DeliveryHeaders<'_>,
    body: &[u8],
    piece: usize,
) -> Result<Delivery, WebhookError> {
    let mut verifier = SignatureVerifier::new(secret, headers.signature)?;
    for p in body.chunks(piece) {
        verifier.update(p);
    }
    receive_verified(verifier, headers, body)
}

#[test]
fn a_body_verified_as_it_arrives_reads_as_the_whole_body_does() {
    let mut checked = 0;
    for (name, payloads) in examples() {
        for payload in payloads {
            let body = serde_json::to_vec(payload).unwrap();
            let good = sign(SECRET, &body);
            let wrong = sign(b"another secret", &body);
            let mut changed = body.clone();
            let middle = changed.len() / 2;
            changed[middle] ^= 0x01;
            for (signature, body, verifies) in [
                (&good, &body, true),
                (&wrong, &body, false),
                (&good, &changed, false),
            ] {
                let headers = DeliveryHeaders {
                    event: Some(name),
                    delivery: Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
                    signature: Some(signature),
                };
                let whole = receive(SECRET, &headers, body);
                assert_eq!(
                    whole.is_ok(),
                    verifies,
                    "{name} {:?}: {whole:?}",
                    payload.get("action")
                );
                for piece in [1, 7, 4096, body.len().max(1)] {
                    assert_eq!(
                        receive_in_pieces(SECRET, &headers, body, piece),
                        whole,
                        "{name}, pieces of {piece}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert_eq!(
        checked,
        3 * examples().iter().map(|(_, e)| e.len()).sum::<usize>()
    );

    // GitHub's documented example, fed a byte at a time and in two uneven pieces.
    let secret = b"It's a Secret to Everybody";
    let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let mut verifier = SignatureVerifier::new(secret, Some(header)).unwrap();
    for b in b"Hello, World!" {
        verifier.update(&[*b]);
    }
    assert_eq!(verifier.verify(13), Ok(()));
    let mut verifier = SignatureVerifier::new(secret, Some(header)).unwrap();
    verifier.update(b"Hello,");
    verifier.update(b" World!");
    assert_eq!(verifier.verify(13), Ok(()));
    // A body kept that is not the one fed does not verify.
    let mut verifier = SignatureVerifier::new(secret, Some(header)).unwrap();
    verifier.update(b"Hello, World!");
    assert_eq!(verifier.verify(12), Err(WebhookError::SignatureMismatch));
    let mut verifier = SignatureVerifier::new(secret, Some(header)).unwrap();
    verifier.update(b"Hello, World");
    assert_eq!(verifier.verify(12), Err(WebhookError::SignatureMismatch));
}

#[test]
fn a_verifier_refuses_a_bad_header_before_any_body() {
    assert_eq!(
        SignatureVerifier::new(SECRET, None).unwrap_err(),
        WebhookError::MissingSignature
    );
    assert_eq!(
        SignatureVerifier::new(b"", Some(&sign(b"", b""))).unwrap_err(),
        WebhookError::EmptySecret
    );
    assert_eq!(
        SignatureVerifier::new(SECRET, Some("sha1=00")).unwrap_err(),
        WebhookError::SignaturePrefix
    );
    assert_eq!(
        SignatureVerifier::new(SECRET, Some("sha256=0")).unwrap_err(),
        WebhookError::SignatureLength { digits: 1 }
    );
    let good = sign(SECRET, b"{}");
    let verifier = SignatureVerifier::new(SECRET, Some(&good)).unwrap();
    let shown = format!("{verifier:?}");
    assert!(
        !shown.contains(good.strip_prefix("sha256=").unwrap()),
        "{shown}"
    );
    assert!(
        !shown.contains(std::str::from_utf8(SECRET).unwrap()),
        "{shown}"
    );
}

#[test]
fn errors_never_show_the_secret_or_the_expected_digest() {
    let body = b"{\"zen\": \"x\", \"hook_id\": 1}";
    let expected = sign(SECRET, body);
    let expected_hex = expected.strip_prefix("sha256=").unwrap();
    let secret = std::str::from_utf8(SECRET).unwrap();
    let attempts = [
        Some(sign(b"other", body)),
        Some(format!("sha1={expected_hex}")),
        Some("sha256=abc".to_string()),
        Some("sha256=XYZ".to_string()),
        None,
    ];
    for signature in attempts {
        let headers = DeliveryHeaders {
            event: Some("ping"),
            delivery: Some("1"),
            signature: signature.as_deref(),
        };
        let err = receive(SECRET, &headers, body).unwrap_err();
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains(secret), "{shown}");
            assert!(!shown.contains(expected_hex), "{shown}");
        }
    }
}

#[test]
fn redeliveries_are_recognised_until_forgotten() {
    let mut dedup = DeliveryDedup::new(3);
    for id in ["a", "b", "c"] {
        assert!(dedup.first_time(id));
    }
    assert!(!dedup.first_time("a"));
    assert!(!dedup.first_time("c"));
    assert!(dedup.first_time("d")); // forgets "a", the oldest
    assert!(dedup.first_time("a")); // forgets "b"
    assert!(!dedup.first_time("c"));
    assert!(!dedup.first_time("d"));
    assert!(dedup.first_time("b"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_wrong_secret_never_verifies(
        secret in proptest::collection::vec(any::<u8>(), 1..80),
        other in proptest::collection::vec(any::<u8>(), 1..80),
        body in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        prop_assume!(secret != other);
        let signature = sign(&secret, &body);
        prop_assert_eq!(verify_signature(&secret, &body, Some(&signature)), Ok(()));
        prop_assert_eq!(
            verify_signature(&other, &body, Some(&signature)),
            Err(WebhookError::SignatureMismatch)
        );
    }

    #[test]
    fn random_headers_never_panic_and_never_verify(
        header in "\\PC{0,80}|sha256=[0-9a-fA-F]{0,70}",
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        prop_assume!(header != sign(SECRET, &body));
        prop_assert!(verify_signature(SECRET, &body, Some(&header)).is_err());
    }

    #[test]
    fn signed_random_bodies_never_panic(
        event in prop_oneof![
            Just("pull_request".to_string()),
            Just("issue_comment".to_string()),
            Just("push".to_string()),
            Just("ping".to_string()),
            Just("star".to_string()),
            "[a-z_]{1,20}",
        ],
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            "\\{(\"(action|ref|zen|hook_id|repository|pull_request|issue|comment)\": ?(\"opened\"|\"created\"|1|null|\\{\\}|\\[\\]|\"x\"), ?){0,6}\\}"
                .prop_map(String::into_bytes),
        ],
    ) {
        let signature = sign(SECRET, &body);
        let headers = DeliveryHeaders {
            event: Some(&event),
            delivery: Some("id"),
            signature: Some(&signature),
        };
        match receive(SECRET, &headers, &body) {
            Ok(delivery) => prop_assert_eq!(delivery.id, "id"),
            Err(WebhookError::Payload { event: e, path, .. }) => {
                prop_assert_eq!(e, event);
                prop_assert!(path.starts_with('$'));
            }
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }

    #[test]
    fn edited_real_payloads_never_panic(
        which in 0usize..49,
        pointer in prop_oneof![
            Just("/action"), Just("/pull_request/head"), Just("/pull_request/head/repo"),
            Just("/pull_request/merged"), Just("/issue/pull_request"), Just("/comment/user/type"),
            Just("/repository/owner"), Just("/installation"), Just("/ref"), Just("/hook_id"),
        ],
        value in prop_oneof![
            Just(Value::Null), Just(json!(1)), Just(json!("x")), Just(json!({})), Just(json!([])),
            Just(json!(true)), Just(json!(-1)), Just(json!(1.5)),
        ],
    ) {
        let all: Vec<(&str, Value)> = HANDLED
            .iter()
            .flat_map(|name| examples_of(name).into_iter().map(move |p| (*name, p)))
            .collect();
        let (name, mut payload) = all[which % all.len()].clone();
        if let Some(slot) = payload.pointer_mut(pointer) {
            *slot = value;
        }
        match deliver(name, &payload) {
            Ok(_) => {}
            Err(WebhookError::Payload { event, path, .. }) => {
                prop_assert_eq!(event, name);
                let parent = pointer.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
                let expected = format!("${}", pointer.replace('/', "."));
                let parent = format!("${}", parent.replace('/', "."));
                prop_assert!(path == expected || path == parent || path.starts_with(&expected),
                    "{} vs {}", path, expected);
            }
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }
}

/// Every key path of `v` (`/pull_request/head/sha`), objects only.
fn key_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    if let Value::Object(map) = v {
        for (key, child) in map {
            let path = format!("{prefix}/{key}");
            out.push(path.clone());
            key_paths(child, &path, out);
        }
    }
}

#[test]
fn only_the_fields_formwork_reads_are_required() {
    // What each event needs, as JSON pointers; a delivery missing any other key of GitHub's
    // example (hundreds of them) must still be read, so that GitHub dropping or renaming a field
    // formwork never reads cannot stop plans.
    const REPOSITORY: [&str; 7] = [
        "/repository",
        "/repository/name",
        "/repository/full_name",
        "/repository/owner",
        "/repository/owner/login",
        "/repository/clone_url",
        "/repository/default_branch",
    ];
    let needed: [(&str, &str, &[&str], &[&str]); 4] = [
        (
            "pull_request",
            "opened",
            &[
                "/pull_request",
                "/pull_request/number",
                "/pull_request/title",
                "/pull_request/user",
                "/pull_request/user/login",
                "/pull_request/head",
                "/pull_request/head/ref",
                "/pull_request/head/sha",
                "/pull_request/head/repo/full_name",
                "/pull_request/base",
                "/pull_request/base/ref",
                "/pull_request/base/sha",
                "/pull_request/base/repo/full_name",
                "/sender",
                "/sender/login",
            ],
            &REPOSITORY,
        ),
        (
            "issue_comment",
            "created",
            &[
                "/issue",
                "/issue/number",
                "/comment",
                "/comment/id",
                "/comment/user",
                "/comment/user/login",
                "/comment/author_association",
                "/comment/body",
                "/sender",
                "/sender/login",
            ],
            &REPOSITORY,
        ),
        (
            "push",
            "",
            &["/ref", "/before", "/after", "/head_commit/id"],
            &REPOSITORY,
        ),
        (
            "ping",
            "",
            &["/zen", "/hook_id", "/repository/full_name"],
            &[],
        ),
    ];
    for (name, action, own, repository) in needed {
        let needed = [own, repository].concat();
        let example = examples_of(name)
            .into_iter()
            .find(|e| action.is_empty() || e["action"] == action)
            .unwrap();
        let mut paths = Vec::new();
        key_paths(&example, "", &mut paths);
        assert!(paths.len() > 100, "{name}: {} keys", paths.len());
        for path in &paths {
            let (parent, key) = path.rsplit_once('/').unwrap();
            let mut without = example.clone();
            without
                .pointer_mut(parent)
                .and_then(Value::as_object_mut)
                .unwrap()
                .remove(key);
            let read = deliver(name, &without);
            if needed.contains(&path.as_str()) {
                match read {
                    Err(WebhookError::Payload {
                        path: at, message, ..
                    }) => {
                        let shown = format!("{at}: {message}");
                        assert!(shown.contains(key), "{name} without {path}: {shown}");
                    }
                    other => panic!("{name} without {path} was not refused: {other:?}"),
                }
            } else {
                assert!(read.is_ok(), "{name} without {path}: {:?}", read.err());
            }
        }
    }
}

#[test]
fn an_action_github_adds_later_is_ignored_not_refused() {
    for (name, example_action) in [("pull_request", "opened"), ("issue_comment", "created")] {
        let mut payload = examples_of(name)
            .into_iter()
            .find(|e| e["action"] == example_action)
            .unwrap();
        payload["action"] = json!("stacked_and_sorted");
        let ignored = ignored(name, &payload);
        assert_eq!(ignored.action.as_deref(), Some("stacked_and_sorted"));
    }
}
