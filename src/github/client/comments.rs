//! Comments on pull requests and commits, and reactions to comments.

use serde::Deserialize;
use serde_json::json;

use super::transport::Method;
use super::{GitHub, GitHubError, encode};

/// Most comments read from one pull request (100 a page).
const MAX_COMMENT_PAGES: u32 = 30;

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

impl GitHub {
    /// Every comment of an issue or pull request, oldest first.
    pub async fn comments(&self, number: u64) -> Result<Vec<Comment>, GitHubError> {
        let path = format!("{}/issues/{number}/comments?", self.repo_path());
        self.get_pages(&path, MAX_COMMENT_PAGES).await
    }

    pub async fn create_comment(&self, number: u64, body: &str) -> Result<Comment, GitHubError> {
        let path = format!("{}/issues/{number}/comments", self.repo_path());
        self.call(Method::Post, &path, Some(json!({ "body": body })))
            .await
    }

    pub async fn update_comment(&self, id: u64, body: &str) -> Result<Comment, GitHubError> {
        let path = format!("{}/issues/comments/{id}", self.repo_path());
        self.call(Method::Patch, &path, Some(json!({ "body": body })))
            .await
    }

    pub async fn delete_comment(&self, id: u64) -> Result<(), GitHubError> {
        let path = format!("{}/issues/comments/{id}", self.repo_path());
        self.call_empty(Method::Delete, &path, None).await
    }

    /// Reacts to a comment (`eyes` when a command is taken up, `confused` when it is refused).
    pub async fn react(&self, comment_id: u64, content: &str) -> Result<(), GitHubError> {
        let path = format!(
            "{}/issues/comments/{comment_id}/reactions",
            self.repo_path()
        );
        self.call_empty(Method::Post, &path, Some(json!({ "content": content })))
            .await
    }

    /// A comment on a commit (apply results of a push that no pull request brought).
    pub async fn comment_on_commit(&self, sha: &str, body: &str) -> Result<(), GitHubError> {
        let path = format!("{}/commits/{}/comments", self.repo_path(), encode(sha));
        self.call_empty(Method::Post, &path, Some(json!({ "body": body })))
            .await
    }
}
