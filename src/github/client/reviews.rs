//! What apply requirements read of a pull request beyond itself: its reviews, whether a user
//! belongs to a team, and how far its head is behind its base branch.

use serde::Deserialize;

use super::comments::User;
use super::transport::Method;
use super::{GitHub, GitHubError, encode};

/// Most review pages read (100 a page).
const MAX_REVIEW_PAGES: u32 = 10;

/// One review of a pull request, as GitHub lists them (oldest first).
#[derive(Clone, Debug, Deserialize)]
pub struct Review {
    /// `null` for a deleted ("ghost") user.
    #[serde(default)]
    pub user: Option<User>,
    /// `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`, `DISMISSED` or `PENDING`.
    pub state: String,
    /// The commit the review was made on.
    #[serde(default)]
    pub commit_id: Option<String>,
}

impl GitHub {
    /// Every review of pull request `number`, oldest first.
    pub async fn reviews(&self, number: u64) -> Result<Vec<Review>, GitHubError> {
        let path = format!("{}/pulls/{number}/reviews?", self.repo_path());
        self.get_pages(&path, MAX_REVIEW_PAGES).await
    }

    /// Whether `user` is an active member of team `slug` of organization `org` (a pending
    /// invitation is not membership).
    pub async fn team_member(
        &self,
        org: &str,
        slug: &str,
        user: &str,
    ) -> Result<bool, GitHubError> {
        #[derive(Deserialize)]
        struct Membership {
            state: String,
        }
        let path = format!(
            "/orgs/{}/teams/{}/memberships/{}",
            encode(org),
            encode(slug),
            encode(user)
        );
        match self.call::<Membership>(Method::Get, &path, None).await {
            Ok(m) => Ok(m.state == "active"),
            Err(GitHubError::Api { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// How many commits of `base` (a branch) `head` (a commit) does not contain.
    pub async fn behind_by(&self, base: &str, head: &str) -> Result<u64, GitHubError> {
        #[derive(Deserialize)]
        struct Comparison {
            behind_by: u64,
        }
        // One commit a page: only the counts are read.
        let path = format!(
            "{}/compare/{}...{}?per_page=1",
            self.repo_path(),
            encode(base),
            encode(head)
        );
        Ok(self
            .call::<Comparison>(Method::Get, &path, None)
            .await?
            .behind_by)
    }
}
