//! Pull requests: one by number, the open ones, and those a commit belongs to.

use serde::Deserialize;

use super::transport::Method;
use super::{GitHub, GitHubError, encode};

/// Most open pull requests listed (100 a page).
const MAX_PULL_PAGES: u32 = 30;

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
    /// The author.
    #[serde(default)]
    pub user: Option<super::User>,
    #[serde(default)]
    pub draft: Option<bool>,
    /// Whether it merges without conflicts; `null` while GitHub is still working it out (only
    /// in the answer for one pull request).
    #[serde(default)]
    pub mergeable: Option<bool>,
    /// GitHub's summary: `clean`, `unstable`, `has_hooks`, `behind`, `blocked`, `dirty`,
    /// `draft` or `unknown` (only in the answer for one pull request).
    #[serde(default)]
    pub mergeable_state: Option<String>,
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

impl GitHub {
    pub async fn pull_request(&self, number: u64) -> Result<PullRequest, GitHubError> {
        let path = format!("{}/pulls/{number}", self.repo_path());
        self.call(Method::Get, &path, None).await
    }

    /// The repository's open pull requests, newest first (at most 3,000).
    pub async fn open_pull_requests(&self) -> Result<Vec<PullRequest>, GitHubError> {
        let path = format!("{}/pulls?state=open&", self.repo_path());
        self.get_pages(&path, MAX_PULL_PAGES).await
    }

    /// The pull requests a commit belongs to (for a merge commit: the merged one).
    pub async fn pulls_of_commit(&self, sha: &str) -> Result<Vec<PullRequest>, GitHubError> {
        let path = format!("{}/commits/{}/pulls", self.repo_path(), encode(sha));
        self.call(Method::Get, &path, None).await
    }
}
