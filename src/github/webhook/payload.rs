//! The payloads as GitHub sends them (only the fields formwork reads; serde ignores the rest),
//! and their conversion into the event model.
//!
//! These are formwork's own rather than octocrab's webhook event models: those read GitHub's
//! example payloads too, but need about a third of every key (148 of the 430 of an `opened`
//! pull request, where formwork reads 22) and refuse an `action` they do not list, so a field
//! GitHub drops or an action it adds would refuse deliveries formwork has no use for. The
//! test `only_the_fields_formwork_reads_are_required` pins the fields needed here.

use serde::Deserialize;

use super::{
    AccountType, AuthorAssociation, IssueCommentEvent, PingEvent, PullRequestAction,
    PullRequestEvent, PushEvent, Repository,
};

/// Any payload's `action`, read before the rest to tell which events formwork acts on.
#[derive(Deserialize)]
pub(super) struct ActionOnly {
    #[serde(default)]
    pub(super) action: Option<String>,
}

#[derive(Deserialize)]
struct RawUser {
    login: String,
    #[serde(rename = "type", default = "unknown_type")]
    kind: AccountType,
}

fn unknown_type() -> AccountType {
    AccountType::Other
}

#[derive(Deserialize)]
struct RawInstallation {
    id: u64,
}

#[derive(Deserialize)]
struct RawRepository {
    name: String,
    full_name: String,
    owner: RawUser,
    default_branch: String,
    clone_url: String,
    #[serde(default)]
    private: Option<bool>,
}

impl From<RawRepository> for Repository {
    fn from(r: RawRepository) -> Self {
        Repository {
            owner: r.owner.login,
            name: r.name,
            full_name: r.full_name,
            default_branch: r.default_branch,
            clone_url: r.clone_url,
            private: r.private.unwrap_or(false),
        }
    }
}

#[derive(Deserialize)]
struct RawRepoRef {
    #[serde(default)]
    id: Option<u64>,
    full_name: String,
}

#[derive(Deserialize)]
struct RawRef {
    sha: String,
    #[serde(rename = "ref")]
    ref_name: String,
    repo: Option<RawRepoRef>,
}

#[derive(Deserialize)]
struct RawPullRequest {
    number: u64,
    title: String,
    user: RawUser,
    head: RawRef,
    base: RawRef,
    #[serde(default)]
    draft: Option<bool>,
    #[serde(default)]
    merged: Option<bool>,
    #[serde(default)]
    merge_commit_sha: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawPullRequestEvent {
    action: String,
    pull_request: RawPullRequest,
    repository: RawRepository,
    #[serde(default)]
    installation: Option<RawInstallation>,
    sender: RawUser,
}

impl RawPullRequestEvent {
    pub(super) fn into_event(self) -> PullRequestEvent {
        let pr = self.pull_request;
        let merged = pr.merged.unwrap_or(false);
        let action = match self.action.as_str() {
            "opened" => PullRequestAction::Opened,
            "synchronize" => PullRequestAction::Synchronize,
            "reopened" => PullRequestAction::Reopened,
            _ => PullRequestAction::Closed {
                merged,
                merge_commit_sha: if merged { pr.merge_commit_sha } else { None },
            },
        };
        let from_fork = match (&pr.head.repo, &pr.base.repo) {
            (None, _) => true,
            (Some(head), Some(base)) => {
                !head.full_name.eq_ignore_ascii_case(&base.full_name)
                    || matches!((head.id, base.id), (Some(h), Some(b)) if h != b)
            }
            // No base repository in the payload: compare with the event's repository.
            (Some(head), None) => !head
                .full_name
                .eq_ignore_ascii_case(&self.repository.full_name),
        };
        PullRequestEvent {
            action,
            number: pr.number,
            title: pr.title,
            author: pr.user.login,
            draft: pr.draft.unwrap_or(false),
            head_sha: pr.head.sha,
            head_ref: pr.head.ref_name,
            head_repo: pr.head.repo.map(|r| r.full_name),
            from_fork,
            base_sha: pr.base.sha,
            base_ref: pr.base.ref_name,
            repository: self.repository.into(),
            installation_id: self.installation.map(|i| i.id),
            sender: self.sender.login,
        }
    }
}

#[derive(Deserialize)]
struct RawComment {
    id: u64,
    body: String,
    user: RawUser,
    author_association: AuthorAssociation,
}

#[derive(Deserialize)]
struct RawIssue {
    number: u64,
    #[serde(default)]
    pull_request: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
pub(super) struct RawIssueCommentEvent {
    comment: RawComment,
    issue: RawIssue,
    repository: RawRepository,
    #[serde(default)]
    installation: Option<RawInstallation>,
    sender: RawUser,
}

impl RawIssueCommentEvent {
    /// Whether the comment is on a pull request (GitHub calls pull requests issues too).
    pub(super) fn is_on_pull_request(&self) -> bool {
        self.issue.pull_request.is_some()
    }

    pub(super) fn into_event(self) -> IssueCommentEvent {
        IssueCommentEvent {
            comment_id: self.comment.id,
            body: self.comment.body,
            author: self.comment.user.login,
            author_type: self.comment.user.kind,
            author_association: self.comment.author_association,
            pull_request: self.issue.number,
            repository: self.repository.into(),
            installation_id: self.installation.map(|i| i.id),
            sender: self.sender.login,
        }
    }
}

#[derive(Deserialize)]
struct RawCommit {
    id: String,
}

#[derive(Deserialize)]
pub(super) struct RawPushEvent {
    #[serde(rename = "ref")]
    ref_name: String,
    before: String,
    after: String,
    #[serde(default)]
    created: Option<bool>,
    #[serde(default)]
    deleted: Option<bool>,
    #[serde(default)]
    forced: Option<bool>,
    #[serde(default)]
    head_commit: Option<RawCommit>,
    repository: RawRepository,
    #[serde(default)]
    installation: Option<RawInstallation>,
}

impl RawPushEvent {
    pub(super) fn into_event(self) -> PushEvent {
        PushEvent {
            ref_name: self.ref_name,
            before: self.before,
            after: self.after,
            created: self.created.unwrap_or(false),
            deleted: self.deleted.unwrap_or(false),
            forced: self.forced.unwrap_or(false),
            head_commit: self.head_commit.map(|c| c.id),
            repository: self.repository.into(),
            installation_id: self.installation.map(|i| i.id),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct RawPingEvent {
    zen: String,
    hook_id: u64,
    #[serde(default)]
    repository: Option<RawRepoRef>,
}

impl RawPingEvent {
    pub(super) fn into_event(self) -> PingEvent {
        PingEvent {
            zen: self.zen,
            hook_id: self.hook_id,
            repository: self.repository.map(|r| r.full_name),
        }
    }
}
