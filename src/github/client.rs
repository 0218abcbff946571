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

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, StatusCode};
use octocrab::Octocrab;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::render::markdown::clip;
use crate::secrets::Masker;

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
    ("GET", "/repos/{owner}/{repo}/installation"),
    ("POST", "/app/installations/{installation_id}/access_tokens"),
];

/// The public GitHub API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// Most comments read from one pull request (100 a page).
const MAX_COMMENT_PAGES: u32 = 30;

/// Most open pull requests listed (100 a page).
const MAX_PULL_PAGES: u32 = 30;

/// What can go wrong talking to GitHub.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub settings: {0}")]
    Config(String),
    #[error("GitHub {endpoint}: {source}")]
    Transport {
        endpoint: String,
        #[source]
        source: octocrab::Error,
    },
    #[error("GitHub {endpoint} answered {status}: {message}")]
    Api {
        endpoint: String,
        status: u16,
        message: String,
    },
    #[error(
        "GitHub {endpoint}: rate limited; the limit resets in {} s, longer than the {} s formwork waits — try again then",
        wait.as_secs(),
        max_wait.as_secs()
    )]
    RateLimited {
        endpoint: String,
        wait: Duration,
        max_wait: Duration,
    },
    #[error("GitHub {endpoint}: unexpected answer: {message}")]
    Decode { endpoint: String, message: String },
}

impl GitHubError {
    /// The HTTP status GitHub answered, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            GitHubError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// `owner/name` of a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoName {
    pub owner: String,
    pub name: String,
}

impl RepoName {
    /// Parses `owner/name`.
    pub fn parse(s: &str) -> Result<RepoName, GitHubError> {
        let ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        match s.trim().split_once('/') {
            Some((o, n)) if ok(o) && ok(n) => Ok(RepoName {
                owner: o.to_string(),
                name: n.to_string(),
            }),
            _ => Err(GitHubError::Config(format!(
                "`{s}` is not a repository name; write it as OWNER/NAME"
            ))),
        }
    }

    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// How formwork authenticates.
#[derive(Clone)]
pub enum Auth {
    /// A token: `GITHUB_TOKEN` in Actions, a personal access token, an installation token.
    Token(String),
    /// A GitHub App: its id and private key (PEM); the installation is looked up from the
    /// repository when not given.
    App {
        app_id: u64,
        private_key_pem: String,
        installation_id: Option<u64>,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Auth::Token(****)"),
            Auth::App {
                app_id,
                installation_id,
                ..
            } => write!(
                f,
                "Auth::App {{ app_id: {app_id}, installation_id: {installation_id:?}, private_key_pem: **** }}"
            ),
        }
    }
}

/// Retrying and waiting.
#[derive(Clone, Debug)]
pub struct Retry {
    /// Attempts per call, the first included.
    pub attempts: u32,
    /// First backoff after a server error; doubled each time, with jitter.
    pub base_delay: Duration,
    /// The longest formwork waits for a rate limit to reset before giving up.
    pub max_wait: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            attempts: 5,
            base_delay: Duration::from_millis(500),
            max_wait: Duration::from_secs(15 * 60),
        }
    }
}

/// Where and how to reach GitHub.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The REST API root: `https://api.github.com`, or `https://HOST/api/v3` for GitHub
    /// Enterprise Server.
    pub api_url: String,
    pub repo: RepoName,
    pub auth: Auth,
    pub retry: Retry,
}

/// A comment on an issue or pull request.
#[derive(Clone, Debug, Deserialize)]
pub struct Comment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub user: Option<User>,
}

/// A GitHub account.
#[derive(Clone, Debug, Deserialize)]
pub struct User {
    pub login: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// The parts of a pull request formwork reads.
#[derive(Clone, Debug, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub state: String,
    #[serde(default)]
    pub merged: Option<bool>,
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
    #[serde(default)]
    pub merged_at: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    pub head: Branch,
    pub base: Branch,
}

/// One side of a pull request.
#[derive(Clone, Debug, Deserialize)]
pub struct Branch {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
    #[serde(default)]
    pub repo: Option<BranchRepo>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct BranchRepo {
    pub full_name: String,
}

/// A user's permission on the repository, highest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    None,
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl Permission {
    fn parse(s: &str) -> Permission {
        match s {
            "admin" => Permission::Admin,
            "maintain" => Permission::Maintain,
            "write" | "push" => Permission::Write,
            "triage" => Permission::Triage,
            "read" | "pull" => Permission::Read,
            _ => Permission::None,
        }
    }

    /// Write, maintain or admin: may run commands that touch AWS.
    pub fn may_deploy(self) -> bool {
        self >= Permission::Write
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::None => "none",
            Permission::Read => "read",
            Permission::Triage => "triage",
            Permission::Write => "write",
            Permission::Maintain => "maintain",
            Permission::Admin => "admin",
        }
    }
}

/// A commit status's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusState {
    Pending,
    Success,
    Failure,
    Error,
}

/// A check run's conclusion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Conclusion {
    Success,
    Failure,
    Neutral,
    ActionRequired,
    Cancelled,
}

/// What a check run shows.
#[derive(Clone, Debug, Default)]
pub struct CheckOutput {
    pub title: String,
    /// At most 65,535 characters (GitHub's limit); cut to fit.
    pub summary: String,
    pub text: Option<String>,
}

/// The longest check-run summary or text GitHub takes, in characters.
pub const CHECK_OUTPUT_LIMIT: usize = 65_535;

/// An authenticated GitHub client for one repository.
#[derive(Clone)]
pub struct GitHub {
    octo: Octocrab,
    repo: RepoName,
    retry: Retry,
    masker: Arc<Masker>,
    /// The token, when authenticated with one (a GitHub App's tokens come from octocrab).
    token: Option<String>,
}

impl GitHub {
    /// A client; for a GitHub App without an installation id, looks the installation up.
    pub async fn connect(settings: Settings, masker: Arc<Masker>) -> Result<GitHub, GitHubError> {
        let base = settings.api_url.trim_end_matches('/').to_string();
        let builder = || {
            Octocrab::builder()
                .base_uri(base.as_str())
                .map_err(|e| GitHubError::Config(format!("`{base}` is not a usable API URL: {e}")))
                .map(|b| {
                    b.set_connect_timeout(Some(Duration::from_secs(10)))
                        .set_read_timeout(Some(Duration::from_secs(60)))
                })
        };
        let build_err = |e: octocrab::Error| GitHubError::Config(format!("GitHub client: {e}"));
        let octo = match &settings.auth {
            Auth::Token(token) => {
                masker.add(token);
                builder()?
                    .personal_token(token.clone())
                    .build()
                    .map_err(build_err)?
            }
            Auth::App {
                app_id,
                private_key_pem,
                installation_id,
            } => {
                let key = octocrab::EncodingKey::from_rsa_pem(private_key_pem.as_bytes()).map_err(
                    |e| {
                        GitHubError::Config(format!(
                            "the GitHub App private key is not an RSA key in PEM form: {e}"
                        ))
                    },
                )?;
                let app = builder()?
                    .app((*app_id).into(), key)
                    .build()
                    .map_err(build_err)?;
                let id = match installation_id {
                    Some(id) => *id,
                    None => {
                        let probe = GitHub {
                            octo: app.clone(),
                            repo: settings.repo.clone(),
                            retry: settings.retry.clone(),
                            masker: masker.clone(),
                            token: None,
                        };
                        probe.installation_id().await?
                    }
                };
                app.installation(id.into()).map_err(build_err)?
            }
        };
        let token = match &settings.auth {
            Auth::Token(t) => Some(t.clone()),
            Auth::App { .. } => None,
        };
        Ok(GitHub {
            octo,
            repo: settings.repo,
            retry: settings.retry,
            masker,
            token,
        })
    }

    /// A token for git over HTTPS (fetching the repository): the token formwork was given, or
    /// a GitHub App installation token valid for at least 30 more seconds. Every token handed
    /// out is added to the masker.
    pub async fn git_token(&self) -> Option<String> {
        let t = match &self.token {
            Some(t) => t.clone(),
            None => {
                use octocrab::secrecy::ExposeSecret;
                match self.octo.installation_token().await {
                    Ok(s) => s.expose_secret().to_string(),
                    Err(e) => {
                        tracing::warn!(error = %e, "no installation token for git");
                        return None;
                    }
                }
            }
        };
        self.masker.add(&t);
        Some(t)
    }

    pub fn repo(&self) -> &RepoName {
        &self.repo
    }

    fn repo_path(&self) -> String {
        format!(
            "/repos/{}/{}",
            encode(&self.repo.owner),
            encode(&self.repo.name)
        )
    }

    /// The app installation that covers the repository (GitHub App authentication).
    async fn installation_id(&self) -> Result<u64, GitHubError> {
        #[derive(Deserialize)]
        struct Installation {
            id: u64,
        }
        let path = format!("{}/installation", self.repo_path());
        let i: Installation = self.call("GET", &path, None).await?;
        Ok(i.id)
    }

    /// Every comment of an issue or pull request, oldest first.
    pub async fn comments(&self, number: u64) -> Result<Vec<Comment>, GitHubError> {
        let path = format!("{}/issues/{number}/comments?", self.repo_path());
        self.get_pages(&path, MAX_COMMENT_PAGES).await
    }

    /// Every item of a listing, 100 a page, up to `max_pages` pages. `path` ends in `?` or `&`.
    async fn get_pages<T: DeserializeOwned>(
        &self,
        path: &str,
        max_pages: u32,
    ) -> Result<Vec<T>, GitHubError> {
        let mut all = Vec::new();
        for page in 1..=max_pages {
            let batch: Vec<T> = self
                .call("GET", &format!("{path}per_page=100&page={page}"), None)
                .await?;
            let n = batch.len();
            all.extend(batch);
            if n < 100 {
                break;
            }
        }
        Ok(all)
    }

    pub async fn create_comment(&self, number: u64, body: &str) -> Result<Comment, GitHubError> {
        let path = format!("{}/issues/{number}/comments", self.repo_path());
        self.call("POST", &path, Some(json!({ "body": body })))
            .await
    }

    pub async fn update_comment(&self, id: u64, body: &str) -> Result<Comment, GitHubError> {
        let path = format!("{}/issues/comments/{id}", self.repo_path());
        self.call("PATCH", &path, Some(json!({ "body": body })))
            .await
    }

    pub async fn delete_comment(&self, id: u64) -> Result<(), GitHubError> {
        let path = format!("{}/issues/comments/{id}", self.repo_path());
        self.call_empty("DELETE", &path, None).await
    }

    /// Reacts to a comment (`eyes` when a command is taken up, `confused` when it is refused).
    pub async fn react(&self, comment_id: u64, content: &str) -> Result<(), GitHubError> {
        let path = format!(
            "{}/issues/comments/{comment_id}/reactions",
            self.repo_path()
        );
        self.call_empty("POST", &path, Some(json!({ "content": content })))
            .await
    }

    /// Sets a commit status (`context` such as `formwork/plan`); the description is cut to
    /// GitHub's 140 characters.
    pub async fn set_status(
        &self,
        sha: &str,
        state: StatusState,
        context: &str,
        description: &str,
        target_url: Option<&str>,
    ) -> Result<(), GitHubError> {
        let path = format!("{}/statuses/{}", self.repo_path(), encode(sha));
        let mut body = json!({
            "state": state,
            "context": context,
            "description": clip(description, 140),
        });
        if let Some(u) = target_url {
            body["target_url"] = json!(u);
        }
        self.call_empty("POST", &path, Some(body)).await
    }

    /// Starts a check run, `in_progress`; returns its id.
    pub async fn start_check_run(
        &self,
        sha: &str,
        name: &str,
        title: &str,
        details_url: Option<&str>,
    ) -> Result<u64, GitHubError> {
        #[derive(Deserialize)]
        struct Created {
            id: u64,
        }
        let path = format!("{}/check-runs", self.repo_path());
        let mut body = json!({
            "name": name,
            "head_sha": sha,
            "status": "in_progress",
            "output": { "title": title, "summary": "Running." },
        });
        if let Some(u) = details_url {
            body["details_url"] = json!(u);
        }
        let c: Created = self.call("POST", &path, Some(body)).await?;
        Ok(c.id)
    }

    /// Completes a check run with its conclusion and output.
    pub async fn finish_check_run(
        &self,
        id: u64,
        conclusion: Conclusion,
        output: &CheckOutput,
    ) -> Result<(), GitHubError> {
        let path = format!("{}/check-runs/{id}", self.repo_path());
        let mut out = json!({
            "title": clip(&output.title, 255),
            "summary": clip(&output.summary, CHECK_OUTPUT_LIMIT),
        });
        if let Some(t) = &output.text {
            out["text"] = json!(clip(t, CHECK_OUTPUT_LIMIT));
        }
        let body = json!({
            "status": "completed",
            "conclusion": conclusion,
            "output": out,
        });
        self.call_empty("PATCH", &path, Some(body)).await
    }

    /// A user's permission on the repository (`role_name` where GitHub gives it, which tells
    /// maintain and triage apart, else `permission`).
    pub async fn permission(&self, user: &str) -> Result<Permission, GitHubError> {
        #[derive(Deserialize)]
        struct P {
            permission: String,
            #[serde(default)]
            role_name: Option<String>,
        }
        let path = format!(
            "{}/collaborators/{}/permission",
            self.repo_path(),
            encode(user)
        );
        match self.call::<P>("GET", &path, None).await {
            Ok(p) => Ok(Permission::parse(
                p.role_name.as_deref().unwrap_or(&p.permission),
            )),
            // Not a collaborator.
            Err(GitHubError::Api { status: 404, .. }) => Ok(Permission::None),
            Err(e) => Err(e),
        }
    }

    pub async fn pull_request(&self, number: u64) -> Result<PullRequest, GitHubError> {
        let path = format!("{}/pulls/{number}", self.repo_path());
        self.call("GET", &path, None).await
    }

    /// The repository's open pull requests, newest first (at most 3,000).
    pub async fn open_pull_requests(&self) -> Result<Vec<PullRequest>, GitHubError> {
        let path = format!("{}/pulls?state=open&", self.repo_path());
        self.get_pages(&path, MAX_PULL_PAGES).await
    }

    /// The pull requests a commit belongs to (for a merge commit: the merged one).
    pub async fn pulls_of_commit(&self, sha: &str) -> Result<Vec<PullRequest>, GitHubError> {
        let path = format!("{}/commits/{}/pulls", self.repo_path(), encode(sha));
        self.call("GET", &path, None).await
    }

    /// A comment on a commit (apply results of a push that no pull request brought).
    pub async fn comment_on_commit(&self, sha: &str, body: &str) -> Result<(), GitHubError> {
        let path = format!("{}/commits/{}/comments", self.repo_path(), encode(sha));
        self.call_empty("POST", &path, Some(json!({ "body": body })))
            .await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, GitHubError> {
        let text = self.send(method, path, body).await?;
        serde_json::from_str(&text).map_err(|e| GitHubError::Decode {
            endpoint: endpoint_name(method, path),
            message: e.to_string(),
        })
    }

    async fn call_empty(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(), GitHubError> {
        self.send(method, path, body).await.map(|_| ())
    }

    /// Sends one request (retrying as the module says) and returns the body of a 2xx answer.
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<String, GitHubError> {
        let endpoint = endpoint_name(method, path);
        // Whatever built the body, no secret leaves.
        let body = body.map(|b| self.masker.scrub_json(&b));
        let mut server_errors = 0u32;
        let mut secondary_waits = 0u32;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let sent = match method {
                "GET" => self.octo._get(path).await,
                "POST" => self.octo._post(path, body.as_ref()).await,
                "PATCH" => self.octo._patch(path, body.as_ref()).await,
                "DELETE" => self.octo._delete(path, body.as_ref()).await,
                _ => unreachable!("formwork calls GitHub with GET, POST, PATCH and DELETE only"),
            };
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    server_errors += 1;
                    if attempt >= self.retry.attempts {
                        return Err(GitHubError::Transport {
                            endpoint,
                            source: e,
                        });
                    }
                    let d = backoff(self.retry.base_delay, server_errors);
                    tracing::warn!(%endpoint, error = %e, wait_ms = d.as_millis() as u64, "GitHub: retrying after a transport error");
                    tokio::time::sleep(d).await;
                    continue;
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            let text =
                self.octo
                    .body_to_string(response)
                    .await
                    .map_err(|e| GitHubError::Transport {
                        endpoint: endpoint.clone(),
                        source: e,
                    })?;
            if status.is_success() {
                return Ok(text);
            }
            let wait = match classify(status, &headers, &text, now_epoch()) {
                Verdict::Fail => None,
                Verdict::RateLimited(w) => Some(w),
                Verdict::SecondaryLimit => {
                    secondary_waits += 1;
                    Some(Duration::from_secs(60) * 2u32.pow(secondary_waits.min(4) - 1))
                }
                Verdict::ServerError => {
                    server_errors += 1;
                    Some(backoff(self.retry.base_delay, server_errors))
                }
            };
            match wait {
                Some(w) if attempt < self.retry.attempts => {
                    if w > self.retry.max_wait {
                        return Err(GitHubError::RateLimited {
                            endpoint,
                            wait: w,
                            max_wait: self.retry.max_wait,
                        });
                    }
                    tracing::warn!(%endpoint, status = status.as_u16(), wait_ms = w.as_millis() as u64, "GitHub: waiting before trying again");
                    tokio::time::sleep(w).await;
                }
                _ => {
                    return Err(GitHubError::Api {
                        endpoint,
                        status: status.as_u16(),
                        message: self.masker.scrub(&error_message(&text)),
                    });
                }
            }
        }
    }
}

/// What to do with a non-2xx answer.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Fail,
    /// Wait this long (primary rate limit reset, or `retry-after`).
    RateLimited(Duration),
    /// A secondary rate limit without a time given: wait a minute, then longer.
    SecondaryLimit,
    ServerError,
}

fn classify(status: StatusCode, headers: &HeaderMap, body: &str, now: u64) -> Verdict {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS {
        if let Some(secs) = header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
            return Verdict::RateLimited(Duration::from_secs(secs));
        }
        if header("x-ratelimit-remaining") == Some("0")
            && let Some(reset) = header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok())
        {
            // One second more: the reset time is whole seconds.
            return Verdict::RateLimited(Duration::from_secs(reset.saturating_sub(now) + 1));
        }
        let lower = body.to_ascii_lowercase();
        if status == StatusCode::TOO_MANY_REQUESTS
            || lower.contains("secondary rate limit")
            || lower.contains("abuse")
        {
            return Verdict::SecondaryLimit;
        }
        return Verdict::Fail;
    }
    if status.is_server_error() {
        return Verdict::ServerError;
    }
    Verdict::Fail
}

fn backoff(base: Duration, n: u32) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(10)));
    let capped = exp.min(Duration::from_secs(30));
    // Full jitter between half and all of it.
    let ms = capped.as_millis() as u64;
    Duration::from_millis(ms / 2 + rand::random_range(0..=ms / 2))
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// GitHub's `message` from an error body, else the body's start.
fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(String::from))
        .unwrap_or_else(|| clip(body.trim(), 300))
}

/// `METHOD /path` without the query, for messages.
fn endpoint_name(method: &str, path: &str) -> String {
    let p = path.split('?').next().unwrap_or(path);
    format!("{method} {p}")
}

/// Percent-encodes one path segment.
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn primary_rate_limit_waits_until_the_reset() {
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1000"),
        ]);
        assert_eq!(
            classify(StatusCode::FORBIDDEN, &h, "{}", 990),
            Verdict::RateLimited(Duration::from_secs(11))
        );
        // A reset in the past: one second.
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &h, "{}", 2000),
            Verdict::RateLimited(Duration::from_secs(1))
        );
    }

    #[test]
    fn retry_after_wins_and_secondary_limits_without_it_wait() {
        let h = headers(&[("retry-after", "7"), ("x-ratelimit-remaining", "0")]);
        assert_eq!(
            classify(StatusCode::FORBIDDEN, &h, "{}", 0),
            Verdict::RateLimited(Duration::from_secs(7))
        );
        let body = r#"{"message":"You have exceeded a secondary rate limit."}"#;
        assert_eq!(
            classify(StatusCode::FORBIDDEN, &HeaderMap::new(), body, 0),
            Verdict::SecondaryLimit
        );
    }

    #[test]
    fn other_answers_fail_or_retry() {
        let none = HeaderMap::new();
        let forbidden = r#"{"message":"Resource not accessible by integration"}"#;
        assert_eq!(
            classify(StatusCode::FORBIDDEN, &none, forbidden, 0),
            Verdict::Fail
        );
        assert_eq!(
            classify(StatusCode::NOT_FOUND, &none, "{}", 0),
            Verdict::Fail
        );
        assert_eq!(
            classify(StatusCode::BAD_GATEWAY, &none, "", 0),
            Verdict::ServerError
        );
        assert_eq!(
            classify(StatusCode::UNPROCESSABLE_ENTITY, &none, "{}", 0),
            Verdict::Fail
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Duration::from_millis(100);
        for n in 1..20 {
            let d = backoff(b, n);
            let full = (b * 2u32.pow((n - 1).min(10))).min(Duration::from_secs(30));
            assert!(d >= full / 2 && d <= full, "{n}: {d:?} vs {full:?}");
        }
    }

    #[test]
    fn repository_names_and_path_segments() {
        assert_eq!(
            RepoName::parse("octo-org/my.repo").unwrap().full_name(),
            "octo-org/my.repo"
        );
        for bad in ["", "a", "a/", "/b", "a/b/c", "a b/c"] {
            assert!(RepoName::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
        assert_eq!(encode("dependabot[bot]"), "dependabot%5Bbot%5D");
    }

    #[test]
    fn permissions_order_and_legacy_names() {
        assert!(Permission::parse("maintain").may_deploy());
        assert!(Permission::parse("push").may_deploy());
        assert!(!Permission::parse("triage").may_deploy());
        assert!(!Permission::parse("read").may_deploy());
        assert!(!Permission::parse("none").may_deploy());
        assert!(!Permission::parse("something new").may_deploy());
    }

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
