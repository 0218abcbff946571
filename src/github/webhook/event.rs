//! The events formwork acts on, as a small typed model of GitHub's payloads.

use serde::Deserialize;

/// The events formwork acts on, and the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A pull request was opened, updated, reopened or closed.
    PullRequest(PullRequestEvent),
    /// A comment was created on a pull request.
    IssueComment(IssueCommentEvent),
    /// Commits or a tag were pushed, or a ref deleted: any ref (see
    /// [`PushEvent::is_default_branch`]).
    Push(PushEvent),
    /// GitHub's test delivery, sent when a webhook is created.
    Ping(PingEvent),
    /// A delivery formwork does not act on.
    Ignored(Ignored),
}

impl Event {
    /// The repository the event happened in, for the events formwork acts on.
    pub fn repository(&self) -> Option<&Repository> {
        match self {
            Event::PullRequest(p) => Some(&p.repository),
            Event::IssueComment(c) => Some(&c.repository),
            Event::Push(p) => Some(&p.repository),
            Event::Ping(_) | Event::Ignored(_) => None,
        }
    }
}

/// A delivery formwork does not act on, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    /// The event name (`X-GitHub-Event`).
    pub event: String,
    /// The payload's `action`, when it has one.
    pub action: Option<String>,
    /// Why it is ignored, for logs.
    pub reason: &'static str,
}

/// What happened to a pull request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullRequestAction {
    /// `opened`.
    Opened,
    /// `synchronize`: the head branch got new commits (or was force-pushed).
    Synchronize,
    /// `reopened`.
    Reopened,
    /// `closed`, merged or not.
    Closed {
        /// Whether it was merged.
        merged: bool,
        /// The commit the merge made on the base branch (merge, squash or rebase commit); only
        /// when merged. (GitHub fills `merge_commit_sha` with a test-merge commit for open and
        /// unmerged pull requests too; that commit is never on the base branch.)
        merge_commit_sha: Option<String>,
    },
}

/// A `pull_request` delivery formwork acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequestEvent {
    /// What happened.
    pub action: PullRequestAction,
    /// The pull request's number.
    pub number: u64,
    /// Its title.
    pub title: String,
    /// Its author's login.
    pub author: String,
    /// Whether it is a draft.
    pub draft: bool,
    /// The head commit.
    pub head_sha: String,
    /// The head branch name (without `refs/heads/`).
    pub head_ref: String,
    /// The full name (`owner/name`) of the repository the head branch is in; `None` when that
    /// repository was deleted.
    pub head_repo: Option<String>,
    /// Whether the head branch is in another repository than the base (a fork, or a deleted
    /// one): its code was not pushed by someone with write access to the base repository.
    pub from_fork: bool,
    /// The base commit (the base branch's tip when the event happened).
    pub base_sha: String,
    /// The base branch name.
    pub base_ref: String,
    /// The repository (the base's).
    pub repository: Repository,
    /// The GitHub App installation that received the delivery.
    pub installation_id: Option<u64>,
    /// Who caused the event.
    pub sender: String,
}

/// A comment created on a pull request (`issue_comment` with action `created` on an issue that
/// is a pull request).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueCommentEvent {
    /// The comment's id.
    pub comment_id: u64,
    /// The comment's Markdown (read it with [`crate::github::commands::parse_comment`]).
    pub body: String,
    /// The comment author's login.
    pub author: String,
    /// Whether the author is a user, a bot, ….
    pub author_type: AccountType,
    /// The author's relation to the repository, as GitHub reports it.
    pub author_association: AuthorAssociation,
    /// The pull request's number.
    pub pull_request: u64,
    /// The repository.
    pub repository: Repository,
    /// The GitHub App installation that received the delivery.
    pub installation_id: Option<u64>,
    /// Who caused the event.
    pub sender: String,
}

/// What kind of account a login is (`user.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum AccountType {
    /// A person.
    User,
    /// A GitHub App or other bot (formwork itself, Dependabot, …).
    Bot,
    /// An organization.
    Organization,
    /// A type this version of formwork does not know.
    #[serde(other)]
    Other,
}

/// A comment author's relation to the repository (`author_association`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthorAssociation {
    /// Owns the repository.
    Owner,
    /// A member of the organization that owns the repository.
    Member,
    /// Invited to collaborate on the repository.
    Collaborator,
    /// Has had commits merged before.
    Contributor,
    /// First contribution to this repository.
    FirstTimeContributor,
    /// First contribution on GitHub.
    FirstTimer,
    /// A placeholder for an imported user.
    Mannequin,
    /// No relation.
    #[serde(rename = "NONE")]
    NoAssociation,
    /// A value this version of formwork does not know.
    #[serde(other)]
    Other,
}

/// A `push` delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushEvent {
    /// The full ref: `refs/heads/main`, `refs/tags/v1`.
    pub ref_name: String,
    /// The ref's commit before the push (all zeros when it was created).
    pub before: String,
    /// The ref's commit after the push (all zeros when it was deleted).
    pub after: String,
    /// Whether the push created the ref.
    pub created: bool,
    /// Whether the push deleted the ref.
    pub deleted: bool,
    /// Whether it was a force push.
    pub forced: bool,
    /// The id of the newest commit pushed; `None` for a deletion.
    pub head_commit: Option<String>,
    /// The repository.
    pub repository: Repository,
    /// The GitHub App installation that received the delivery.
    pub installation_id: Option<u64>,
}

impl PushEvent {
    /// Whether the push is to the repository's default branch.
    pub fn is_default_branch(&self) -> bool {
        self.branch() == Some(self.repository.default_branch.as_str())
    }

    /// The branch pushed to; `None` for a tag or another kind of ref.
    pub fn branch(&self) -> Option<&str> {
        self.ref_name.strip_prefix("refs/heads/")
    }
}

/// A `ping` delivery: GitHub's check that the webhook works.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PingEvent {
    /// A random GitHub zen line.
    pub zen: String,
    /// The webhook's id (`hook_id`).
    pub hook_id: u64,
    /// The repository's full name, for a repository webhook (organization and App webhooks
    /// have none).
    pub repository: Option<String>,
}

/// What formwork needs of a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    /// The owner's login.
    pub owner: String,
    /// The repository's name.
    pub name: String,
    /// `owner/name`.
    pub full_name: String,
    /// The default branch (`main`).
    pub default_branch: String,
    /// The HTTPS clone URL.
    pub clone_url: String,
    /// Whether it is private.
    pub private: bool,
}
