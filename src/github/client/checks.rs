//! Commit statuses and check runs.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::transport::Method;
use super::{GitHub, GitHubError, encode};
use crate::render::markdown::clip;

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

impl GitHub {
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
        self.call_empty(Method::Post, &path, Some(body)).await
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
        let c: Created = self.call(Method::Post, &path, Some(body)).await?;
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
        self.call_empty(Method::Patch, &path, Some(body)).await
    }
}
