//! Issues: the open ones with a label, opening one, and editing or closing one. formwork keeps
//! one issue per environment about its drift (see [`crate::github::drift_issue`]).

use serde::Deserialize;
use serde_json::json;

use super::transport::Method;
use super::{GitHub, GitHubError, encode};

/// Most pages of open issues with a label read (100 a page).
const MAX_ISSUE_PAGES: u32 = 10;

/// The parts of an issue formwork reads.
#[derive(Clone, Debug, Deserialize)]
pub struct Issue {
    pub number: u64,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    pub state: String,
    #[serde(default)]
    pub html_url: Option<String>,
    /// Set when the "issue" is a pull request (GitHub lists both).
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

impl GitHub {
    /// The open issues (not pull requests) that carry `label`, newest first.
    pub async fn open_issues_labelled(&self, label: &str) -> Result<Vec<Issue>, GitHubError> {
        let path = format!(
            "{}/issues?state=open&labels={}&",
            self.repo_path(),
            encode(label)
        );
        let all: Vec<Issue> = self.get_pages(&path, MAX_ISSUE_PAGES).await?;
        Ok(all
            .into_iter()
            .filter(|i| i.pull_request.is_none())
            .collect())
    }

    /// Opens an issue with `labels` (GitHub creates a label that does not exist yet).
    pub async fn create_issue(
        &self,
        title: &str,
        body: &str,
        labels: &[String],
    ) -> Result<Issue, GitHubError> {
        let path = format!("{}/issues", self.repo_path());
        let body = json!({"title": title, "body": body, "labels": labels});
        self.call(Method::Post, &path, Some(body)).await
    }

    /// Edits an issue's title and body; with `close`, closes it as completed.
    pub async fn update_issue(
        &self,
        number: u64,
        title: &str,
        body: &str,
        close: bool,
    ) -> Result<Issue, GitHubError> {
        let path = format!("{}/issues/{number}", self.repo_path());
        let mut req = json!({"title": title, "body": body});
        if close {
            req["state"] = json!("closed");
            req["state_reason"] = json!("completed");
        }
        self.call(Method::Patch, &path, Some(req)).await
    }
}
