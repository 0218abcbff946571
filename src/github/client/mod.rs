//! GitHub's REST API, as formwork uses it: the few endpoints it calls ([`ENDPOINTS`]), over
//! octocrab's authenticated HTTP client (a token, or a GitHub App whose installation tokens
//! octocrab mints and refreshes before they expire), with formwork's own handling of rate
//! limits and server errors.
//!
//! Every request body passes through the secret masker before it leaves, whatever built it.
//! Rate limits (per GitHub's REST documentation, "Rate limits for the REST API"): a 403 or 429
//! with `x-ratelimit-remaining: 0` waits until `x-ratelimit-reset`; one with `retry-after`
//! waits that many seconds; a secondary limit without either waits a minute, then longer.
//! 5xx answers and transport errors are retried with jittered exponential backoff. A wait
//! longer than [`Retry::max_wait`] is not made: the call fails and says when to try again.
//!
//! The calls are grouped by what they touch, a module each: `pulls`, `comments` (and
//! reactions), `checks` (commit statuses and check runs), `permissions`, `reviews` (with team
//! membership and how far a branch is behind) and `issues`. `connection`
//! authenticates, `transport` sends, `retry` decides when to try again and how long to wait,
//! `settings` says where and how to reach GitHub, `error` says what went wrong.

mod checks;
mod comments;
mod connection;
mod error;
mod issues;
mod permissions;
mod pulls;
mod retry;
mod reviews;
mod settings;
mod transport;

pub use checks::{CHECK_OUTPUT_LIMIT, CheckOutput, Conclusion, StatusState};
pub use comments::{Comment, User};
pub use connection::GitHub;
use connection::encode;
pub use error::GitHubError;
pub use issues::Issue;
pub use permissions::Permission;
pub use pulls::{Branch, BranchRepo, PullRequest};
pub use reviews::Review;
pub use settings::{Auth, RepoName, Retry, Settings};

/// Every endpoint formwork calls, as `(METHOD, PATH)` in GitHub's OpenAPI description. The
/// contract tests serve exactly these (tools/github/endpoints.txt must list the same).
pub const ENDPOINTS: &[(&str, &str)] = &[
    (
        "GET",
        "/repos/{owner}/{repo}/issues/{issue_number}/comments",
    ),
    (
        "POST",
        "/repos/{owner}/{repo}/issues/{issue_number}/comments",
    ),
    (
        "PATCH",
        "/repos/{owner}/{repo}/issues/comments/{comment_id}",
    ),
    (
        "DELETE",
        "/repos/{owner}/{repo}/issues/comments/{comment_id}",
    ),
    (
        "POST",
        "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
    ),
    ("POST", "/repos/{owner}/{repo}/statuses/{sha}"),
    ("POST", "/repos/{owner}/{repo}/check-runs"),
    ("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
    (
        "GET",
        "/repos/{owner}/{repo}/collaborators/{username}/permission",
    ),
    ("GET", "/repos/{owner}/{repo}/pulls"),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    ("GET", "/repos/{owner}/{repo}/commits/{commit_sha}/pulls"),
    (
        "POST",
        "/repos/{owner}/{repo}/commits/{commit_sha}/comments",
    ),
    ("GET", "/repos/{owner}/{repo}/issues"),
    ("POST", "/repos/{owner}/{repo}/issues"),
    ("PATCH", "/repos/{owner}/{repo}/issues/{issue_number}"),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews"),
    (
        "GET",
        "/orgs/{org}/teams/{team_slug}/memberships/{username}",
    ),
    ("GET", "/repos/{owner}/{repo}/compare/{basehead}"),
    ("GET", "/repos/{owner}/{repo}/installation"),
    ("POST", "/app/installations/{installation_id}/access_tokens"),
];

/// The public GitHub API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_match_the_contract_list() {
        let listed = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/github/endpoints.txt"),
        )
        .unwrap();
        let listed: Vec<(String, String)> = listed
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (m, p) = l.split_once(' ').unwrap();
                (m.to_string(), p.trim().to_string())
            })
            .collect();
        let ours: Vec<(String, String)> = ENDPOINTS
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(listed, ours);
    }
}
