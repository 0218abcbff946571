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

impl PullRequest {
    /// Whether its head is in another repository than its base (a fork), or in one GitHub no
    /// longer shows (a deleted fork).
    pub fn from_fork(&self) -> bool {
        match (&self.head.repo, &self.base.repo) {
            (Some(h), Some(b)) => !h.full_name.eq_ignore_ascii_case(&b.full_name),
            _ => true,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pull(head: Option<&str>, base: &str) -> PullRequest {
        let branch = |repo: Option<&str>| Branch {
            git_ref: "b".into(),
            sha: "s".into(),
            repo: repo.map(|r| BranchRepo {
                full_name: r.into(),
            }),
        };
        PullRequest {
            number: 1,
            state: "open".into(),
            merged: None,
            merge_commit_sha: None,
            merged_at: None,
            html_url: None,
            head: branch(head),
            base: branch(Some(base)),
            user: None,
            draft: None,
            mergeable: None,
            mergeable_state: None,
        }
    }

    #[test]
    fn a_head_elsewhere_or_gone_is_a_fork() {
        assert!(!pull(Some("acme/infra"), "acme/infra").from_fork());
        assert!(!pull(Some("Acme/Infra"), "acme/infra").from_fork());
        assert!(pull(Some("mallory/infra"), "acme/infra").from_fork());
        assert!(pull(None, "acme/infra").from_fork(), "a deleted fork");
    }
}
