//! formwork's GitHub client and sticky comments against Prism serving GitHub's official OpenAPI
//! description (every request checked against the schema), with the recording server in front
//! asserting what was sent: every endpoint formwork uses, sticky comments edited in place and
//! split into parts, rate limits and server errors, GitHub App authentication with installation
//! tokens refreshed before they expire, permissions, and secrets scrubbed from every body.

use crate::common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::github::GitHubMock;
use formwork::github::client::{
    Auth, CheckOutput, Conclusion, GitHub, GitHubError, Permission, RepoName, Retry, Settings,
    StatusState,
};
use formwork::github::sticky::{self, Kind, Sticky};
use formwork::secrets::Masker;

const TOKEN: &str = "ghp_testtoken0123456789abcdefghij";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn settings(mock: &GitHubMock, auth: Auth) -> Settings {
    Settings {
        api_url: mock.url.clone(),
        repo: RepoName::parse("octo-org/config").unwrap(),
        auth,
        retry: Retry {
            attempts: 4,
            base_delay: Duration::from_millis(50),
            max_wait: Duration::from_secs(5),
        },
    }
}

fn client(mock: &GitHubMock, rt: &tokio::runtime::Runtime) -> GitHub {
    rt.block_on(GitHub::connect(
        settings(mock, Auth::Token(TOKEN.into())),
        Arc::new(Masker::new()),
    ))
    .unwrap()
}

#[test]
fn every_endpoint_matches_githubs_schema_and_sends_the_token() {
    let mock = GitHubMock::start();
    let rt = rt();
    let gh = client(&mock, &rt);
    mock.set_pull(5, "a".repeat(40).as_str(), "b".repeat(40).as_str(), None);
    mock.set_permission("alice", "maintain");
    let sha = "c".repeat(40);
    rt.block_on(async {
        let c = gh.create_comment(5, "hello").await.unwrap();
        gh.update_comment(c.id, "hello again").await.unwrap();
        assert_eq!(gh.comments(5).await.unwrap().len(), 1);
        gh.react(c.id, "eyes").await.unwrap();
        gh.delete_comment(c.id).await.unwrap();
        gh.set_status(
            &sha,
            StatusState::Pending,
            "formwork/plan",
            "Planning…",
            Some("https://ci.example/run/1"),
        )
        .await
        .unwrap();
        let id = gh
            .start_check_run(&sha, "formwork/plan", "Planning…", None)
            .await
            .unwrap();
        gh.finish_check_run(
            id,
            Conclusion::Success,
            &CheckOutput {
                title: "No changes".into(),
                summary: "## plan".into(),
                text: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(gh.permission("alice").await.unwrap(), Permission::Maintain);
        assert_eq!(gh.permission("mallory").await.unwrap(), Permission::None);
        let pr = gh.pull_request(5).await.unwrap();
        assert_eq!(pr.head.sha, "a".repeat(40));
        assert_eq!(pr.base.git_ref, "main");
        let open = gh.open_pull_requests().await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(
            (open[0].number, open[0].head.sha.as_str()),
            (5, pr.head.sha.as_str())
        );
        assert!(gh.pulls_of_commit(&sha).await.unwrap().is_empty());
        gh.comment_on_commit(&sha, "applied").await.unwrap();
        // Drift issues.
        let issue = gh
            .create_issue(
                "Drift in environment prod",
                "report",
                &["formwork-drift".into()],
            )
            .await
            .unwrap();
        gh.update_issue(issue.number, "Drift in environment prod", "again", true)
            .await
            .unwrap();
        let open = gh.open_issues_labelled("formwork-drift").await.unwrap();
        assert!(open.iter().all(|i| i.number != issue.number), "closed");
        // What apply requirements read.
        assert!(gh.reviews(5).await.unwrap().is_empty());
        assert!(
            !gh.team_member("octo-org", "platform", "alice")
                .await
                .unwrap()
        );
        assert_eq!(gh.behind_by("main", &sha).await.unwrap(), 0);
    });
    mock.assert_no_violations();
    let reqs = mock.requests();
    // Every endpoint formwork lists was called, except the GitHub App ones (next test).
    for (method, path) in formwork::github::client::ENDPOINTS {
        if path.starts_with("/app/") || path.ends_with("/installation") {
            continue;
        }
        let pattern = regex_of(path);
        assert!(
            reqs.iter()
                .any(|r| r.method == *method && pattern.is_match(&r.path)),
            "{method} {path} was not exercised"
        );
    }
    for r in &reqs {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{} {}",
            r.method,
            r.path
        );
    }
    let status = reqs.iter().find(|r| r.path.contains("/statuses/")).unwrap();
    assert_eq!(status.json()["context"], "formwork/plan");
    assert_eq!(status.json()["state"], "pending");
    assert_eq!(status.json()["target_url"], "https://ci.example/run/1");
    let finish = reqs
        .iter()
        .find(|r| r.method == "PATCH" && r.path.contains("/check-runs/"))
        .unwrap();
    assert_eq!(finish.json()["conclusion"], "success");
    assert_eq!(finish.json()["output"]["summary"], "## plan");
}

#[test]
fn open_pull_requests_are_listed_a_page_at_a_time() {
    let mock = GitHubMock::start();
    let rt = rt();
    let gh = client(&mock, &rt);
    let (head, base) = ("a".repeat(40), "b".repeat(40));
    for n in 1..=150 {
        mock.set_pull(n, &head, &base, None);
    }
    mock.set_pull(151, &head, &base, Some(&"c".repeat(40)));
    let open = rt.block_on(gh.open_pull_requests()).unwrap();
    let mut numbers: Vec<u64> = open.iter().map(|p| p.number).collect();
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (1..=150).collect::<Vec<u64>>(),
        "the closed one is left out"
    );
    assert!(open.iter().all(|p| p.state == "open"));
    mock.assert_no_violations();
    let lists: Vec<String> = mock
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/repos/octo-org/config/pulls")
        .map(|r| r.query.clone())
        .collect();
    assert_eq!(
        lists,
        [
            "state=open&per_page=100&page=1",
            "state=open&per_page=100&page=2"
        ]
    );
}

/// `{owner}`-style parameters as "one path segment".
fn regex_of(path: &str) -> regex::Regex {
    let mut re = String::from("^");
    for part in path.split('/').skip(1) {
        re.push('/');
        if part.starts_with('{') {
            re.push_str("[^/]+");
        } else {
            re.push_str(&regex::escape(part));
        }
    }
    re.push('$');
    regex::Regex::new(&re).unwrap()
}

#[test]
fn sticky_comments_are_edited_in_place_split_and_cleaned_up() {
    let mock = GitHubMock::start();
    let rt = rt();
    let gh = client(&mock, &rt);
    let pr = 12;
    mock.add_comment(pr, "alice", "Looks good to me");
    let plan = Sticky::new(Kind::Plan, &[]);
    // A reply quoting the marker is not ours.
    mock.add_comment(pr, "bob", &format!("> {}\n> old plan", plan.marker(1)));

    let parts = |n: usize, v: &str| -> Vec<String> {
        (1..=n).map(|i| format!("part {i} of {n}, {v}")).collect()
    };
    // First push: two parts, both created.
    let p = rt
        .block_on(sticky::publish(&gh, pr, &plan, &parts(2, "v1")))
        .unwrap();
    assert_eq!((p.created, p.updated, p.deleted), (2, 0, 0));
    let first_ids: Vec<u64> = p.comments.iter().map(|c| c.0).collect();

    // Second push: three parts: two edited in place, one created.
    let p = rt
        .block_on(sticky::publish(&gh, pr, &plan, &parts(3, "v2")))
        .unwrap();
    assert_eq!((p.created, p.updated, p.deleted), (1, 2, 0));
    assert_eq!(
        &p.comments.iter().map(|c| c.0).collect::<Vec<_>>()[..2],
        &first_ids[..]
    );

    // The same again: nothing sent.
    let before = mock.requests().len();
    let p = rt
        .block_on(sticky::publish(&gh, pr, &plan, &parts(3, "v2")))
        .unwrap();
    assert_eq!((p.created, p.updated, p.unchanged), (0, 0, 3));
    assert_eq!(mock.requests().len(), before + 1, "only the listing");

    // Third push: one part; the other two are deleted.
    let p = rt
        .block_on(sticky::publish(&gh, pr, &plan, &parts(1, "v3")))
        .unwrap();
    assert_eq!((p.created, p.updated, p.deleted), (0, 1, 2));

    let now = mock.comments(pr);
    let bodies: Vec<&str> = now.iter().map(|c| c.body.as_str()).collect();
    assert_eq!(now.len(), 3, "{bodies:#?}");
    assert_eq!(bodies[0], "Looks good to me");
    assert!(bodies[1].starts_with("> "));
    assert_eq!(bodies[2], format!("{}\npart 1 of 1, v3", plan.marker(1)));
    assert_eq!(now[2].id, first_ids[0]);

    // Another kind and another scope keep comments of their own.
    let apply = Sticky::new(Kind::Apply, &["prod".to_string()]);
    rt.block_on(sticky::publish(&gh, pr, &apply, &parts(1, "applied")))
        .unwrap();
    let staging = Sticky::new(Kind::Plan, &["staging".to_string()]);
    rt.block_on(sticky::publish(&gh, pr, &staging, &parts(1, "staging")))
        .unwrap();
    assert_eq!(mock.comments(pr).len(), 5);

    // Two runs that raced left a duplicate part: the newer one goes.
    let dup = mock.add_comment(
        pr,
        "formwork[bot]",
        &format!("{}\nduplicate", plan.marker(1)),
    );
    let p = rt
        .block_on(sticky::publish(&gh, pr, &plan, &parts(1, "v4")))
        .unwrap();
    assert_eq!(p.deleted, 1);
    assert!(mock.comments(pr).iter().all(|c| c.id != dup));
    mock.assert_no_violations();
}

#[test]
fn rate_limits_are_waited_out_and_server_errors_retried() {
    let mock = GitHubMock::start();
    let rt = rt();
    let gh = client(&mock, &rt);
    let sha = "d".repeat(40);
    let status = |gh: &GitHub| {
        rt.block_on(gh.set_status(&sha, StatusState::Success, "formwork/plan", "ok", None))
    };

    // Primary limit: remaining 0, reset in a second.
    let reset = (formwork::store::now() / 1000 + 1).to_string();
    mock.fail_next(
        "POST",
        "/repos/octo-org/config/statuses/",
        403,
        &[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset),
        ],
        r#"{"message":"API rate limit exceeded"}"#,
    );
    let t = Instant::now();
    status(&gh).unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );

    // Secondary limit with Retry-After.
    mock.fail_next(
        "POST",
        "/repos/octo-org/config/statuses/",
        429,
        &[("retry-after", "1")],
        r#"{"message":"You have exceeded a secondary rate limit."}"#,
    );
    let t = Instant::now();
    status(&gh).unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );

    // Server errors: retried with backoff.
    for _ in 0..2 {
        mock.fail_next(
            "POST",
            "/repos/octo-org/config/statuses/",
            502,
            &[],
            "bad gateway",
        );
    }
    let n = mock.requests().len();
    status(&gh).unwrap();
    assert_eq!(mock.requests().len(), n + 3);

    // A reset further away than formwork waits: no waiting, a clear error.
    let far = (formwork::store::now() / 1000 + 3600).to_string();
    mock.fail_next(
        "POST",
        "/repos/octo-org/config/statuses/",
        403,
        &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &far)],
        r#"{"message":"API rate limit exceeded"}"#,
    );
    let t = Instant::now();
    let err = status(&gh).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(matches!(err, GitHubError::RateLimited { .. }), "{err}");
    assert!(err.to_string().contains("try again"), "{err}");

    // A plain refusal is not retried.
    mock.fail_next(
        "POST",
        "/repos/octo-org/config/statuses/",
        403,
        &[],
        r#"{"message":"Resource not accessible by integration"}"#,
    );
    let n = mock.requests().len();
    let err = status(&gh).unwrap_err();
    assert_eq!(mock.requests().len(), n + 1);
    assert_eq!(err.status(), Some(403));
    assert!(err.to_string().contains("Resource not accessible"), "{err}");
    mock.assert_no_violations();
}

/// A throwaway RSA key for the GitHub App tests.
fn rsa_key() -> String {
    let out = Command::new("openssl")
        .args(["genrsa", "2048"])
        .output()
        .expect("openssl makes the test's RSA key");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_github_app_finds_its_installation_and_refreshes_tokens_before_they_expire() {
    let mock = GitHubMock::start();
    let rt = rt();
    let key = rsa_key();
    let gh = rt
        .block_on(GitHub::connect(
            settings(
                &mock,
                Auth::App {
                    app_id: 4242,
                    private_key_pem: key.clone(),
                    installation_id: None,
                },
            ),
            Arc::new(Masker::new()),
        ))
        .unwrap();
    rt.block_on(async {
        gh.create_comment(1, "one").await.unwrap();
        gh.create_comment(1, "two").await.unwrap();
    });
    let reqs = mock.requests();
    let install = reqs
        .iter()
        .find(|r| r.path == "/repos/octo-org/config/installation")
        .expect("the installation is looked up");
    // The app authenticates as itself with a JWT (three base64url parts) ...
    let jwt = install.authorization.as_deref().unwrap();
    assert!(
        jwt.starts_with("Bearer ey") && jwt.matches('.').count() == 2,
        "{jwt}"
    );
    let minted: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.ends_with("/access_tokens"))
        .collect();
    // ... then mints one installation token, valid for an hour, used for both calls.
    assert_eq!(minted.len(), 1);
    assert!(
        minted[0]
            .authorization
            .as_deref()
            .unwrap()
            .starts_with("Bearer ey")
    );
    let comments: Vec<_> = reqs
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/comments"))
        .collect();
    assert_eq!(comments.len(), 2);
    for c in comments {
        assert_eq!(c.authorization.as_deref(), Some("Bearer ghs_minted_1"));
    }

    // Tokens that expire within half a minute are replaced before use.
    mock.set_token_ttl(10);
    let gh = rt
        .block_on(GitHub::connect(
            settings(
                &mock,
                Auth::App {
                    app_id: 4242,
                    private_key_pem: key,
                    installation_id: Some(99),
                },
            ),
            Arc::new(Masker::new()),
        ))
        .unwrap();
    let before = mock.tokens_minted();
    rt.block_on(async {
        gh.create_comment(1, "three").await.unwrap();
        gh.create_comment(1, "four").await.unwrap();
    });
    assert_eq!(mock.tokens_minted(), before + 2);
    assert!(
        mock.requests()
            .iter()
            .any(|r| r.path == "/app/installations/99/access_tokens")
    );
    mock.assert_no_violations();
}

#[test]
fn a_bad_app_key_is_a_clear_error() {
    let mock = GitHubMock::start();
    let err = rt()
        .block_on(GitHub::connect(
            settings(
                &mock,
                Auth::App {
                    app_id: 1,
                    private_key_pem: "not a key".into(),
                    installation_id: Some(1),
                },
            ),
            Arc::new(Masker::new()),
        ))
        .err()
        .unwrap();
    assert!(err.to_string().contains("private key"), "{err}");
    assert!(mock.requests().is_empty());
}

#[test]
fn secrets_never_leave_in_a_request_body() {
    let mock = GitHubMock::start();
    let rt = rt();
    let masker = Arc::new(Masker::new());
    masker.add("hunter2-is-my-password");
    let gh = rt
        .block_on(GitHub::connect(
            settings(&mock, Auth::Token(TOKEN.into())),
            masker,
        ))
        .unwrap();
    rt.block_on(async {
        gh.create_comment(3, "the password is hunter2-is-my-password, and the token ghp_testtoken0123456789abcdefghij")
            .await
            .unwrap();
        gh.set_status(
            &"e".repeat(40),
            StatusState::Failure,
            "formwork/plan",
            "failed: hunter2-is-my-password",
            None,
        )
        .await
        .unwrap();
    });
    for r in mock.requests() {
        assert!(!r.body.contains("hunter2-is-my-password"), "{}", r.body);
        assert!(!r.body.contains(TOKEN), "{}", r.body);
    }
    assert!(mock.comments(3)[0].body.contains("****"));
    mock.assert_no_violations();
}

#[test]
fn the_contract_check_catches_a_request_githubs_schema_rejects() {
    use std::io::{Read, Write};
    let mock = GitHubMock::start();
    let body = r#"{"state":"bogus","context":"formwork/plan"}"#;
    let mut conn = std::net::TcpStream::connect(mock.url.trim_start_matches("http://")).unwrap();
    write!(
        conn,
        "POST /repos/o/r/statuses/abc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    let v = mock.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("state"), "{v:?}");
}
