//! GitHub webhook deliveries: their signatures verified, then the few events formwork acts on
//! read into a small typed model.
//!
//! [`receive`] is the whole job for a daemon's HTTP handler: it checks the
//! `X-Hub-Signature-256` header (HMAC-SHA256 of the raw body with the webhook secret, compared
//! in constant time) before it looks at anything else, then reads the body as the event named by
//! `X-GitHub-Event`. A handler that reads the body as it streams in feeds it to a
//! [`SignatureVerifier`] on the way and finishes with [`receive_verified`]: the same checks, in
//! the same order. formwork acts on pull requests being opened, updated, reopened and closed,
//! on new comments on pull requests (`/formwork …` commands, see [`super::commands`]), on pushes
//! and on pings; every other delivery comes back as [`Event::Ignored`] saying why.
//!
//! GitHub delivers a webhook at least once and redelivers on request, so a receiver drops the
//! deliveries it has already handled: [`DeliveryDedup`] does that for one process.
//!
//! Nothing here logs, and no error or `Debug` output contains the secret or the digest expected
//! for a body.

use std::collections::{HashSet, VecDeque};

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

/// The header that carries the body's signature: `sha256=<64 lowercase hex digits>`.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
/// The header that names the event (`pull_request`, `push`, …).
pub const EVENT_HEADER: &str = "X-GitHub-Event";
/// The header that carries the delivery's unique id (a GUID; the same on a redelivery).
pub const DELIVERY_HEADER: &str = "X-GitHub-Delivery";

/// Why a delivery was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The configured webhook secret is empty: anyone could sign with it.
    #[error("the webhook secret is empty: refusing to verify deliveries with it")]
    EmptySecret,
    /// No `X-Hub-Signature-256` header: the hook has no secret set, or the request is not from
    /// GitHub.
    #[error("the delivery has no X-Hub-Signature-256 header (set a secret on the webhook)")]
    MissingSignature,
    /// The signature header does not start with `sha256=`.
    #[error("the X-Hub-Signature-256 header does not start with `sha256=`")]
    SignaturePrefix,
    /// The digest has characters other than `0-9` and `a-f`.
    #[error("the X-Hub-Signature-256 digest is not lowercase hexadecimal")]
    SignatureNotHex,
    /// The digest is not 64 hex digits (32 bytes) long.
    #[error("the X-Hub-Signature-256 digest has {digits} hex digits instead of 64")]
    SignatureLength {
        /// How many digits it has.
        digits: usize,
    },
    /// The signature is well-formed but is not the body's: another secret, or a changed body.
    #[error(
        "the X-Hub-Signature-256 signature does not match the body (a different secret, or a changed body)"
    )]
    SignatureMismatch,
    /// No `X-GitHub-Event` header.
    #[error("the delivery has no X-GitHub-Event header")]
    MissingEvent,
    /// No `X-GitHub-Delivery` header.
    #[error("the delivery has no X-GitHub-Delivery header")]
    MissingDelivery,
    /// The body is not the JSON the event needs.
    #[error("the `{event}` delivery is not the JSON formwork expects, at {path}: {message}")]
    Payload {
        /// The event name from `X-GitHub-Event`.
        event: String,
        /// Where in the body the problem is, as `$.pull_request.head.sha` (`$` is the top).
        path: String,
        /// serde's description of the problem, cut short when long.
        message: String,
    },
}

impl WebhookError {
    /// Whether the delivery was refused for its signature (or for want of a usable secret),
    /// rather than for its headers or body.
    pub fn is_signature(&self) -> bool {
        matches!(
            self,
            WebhookError::EmptySecret
                | WebhookError::MissingSignature
                | WebhookError::SignaturePrefix
                | WebhookError::SignatureNotHex
                | WebhookError::SignatureLength { .. }
                | WebhookError::SignatureMismatch
        )
    }
}

/// The headers of a delivery that [`receive`] reads. Header names are case-insensitive in
/// HTTP: look them up accordingly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryHeaders<'a> {
    /// `X-GitHub-Event`.
    pub event: Option<&'a str>,
    /// `X-GitHub-Delivery`.
    pub delivery: Option<&'a str>,
    /// `X-Hub-Signature-256`.
    pub signature: Option<&'a str>,
}

impl<'a> DeliveryHeaders<'a> {
    /// Reads the three headers with `get`, which is called with [`EVENT_HEADER`],
    /// [`DELIVERY_HEADER`] and [`SIGNATURE_HEADER`] and must match names case-insensitively.
    pub fn from_lookup(get: impl Fn(&str) -> Option<&'a str>) -> Self {
        DeliveryHeaders {
            event: get(EVENT_HEADER),
            delivery: get(DELIVERY_HEADER),
            signature: get(SIGNATURE_HEADER),
        }
    }
}

/// A verified delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// `X-GitHub-Delivery`: unique per delivery, kept on redelivery (see [`DeliveryDedup`]).
    pub id: String,
    /// What happened.
    pub event: Event,
}

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
    /// The comment's Markdown (read it with [`super::commands::parse_comment`]).
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

/// Checks a delivery's `X-Hub-Signature-256` header (`header`) against the HMAC-SHA256 of the
/// raw `body` with `secret`, in constant time. Refuses an empty secret.
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), WebhookError> {
    let mut verifier = SignatureVerifier::new(secret, header)?;
    verifier.update(body);
    verifier.verify(body.len())
}

/// A delivery's signature checked as its body arrives, piece by piece, so that a receiver
/// needs nothing of an unauthenticated body but the piece in hand.
///
/// [`SignatureVerifier::new`] reads the `X-Hub-Signature-256` header before any of the body:
/// a missing or malformed header is refused at once. [`SignatureVerifier::update`] feeds the
/// body's bytes, in order, as they come; [`SignatureVerifier::verify`] compares, in constant
/// time. Its `Debug` output shows neither the secret nor the digest.
pub struct SignatureVerifier {
    mac: Hmac<Sha256>,
    tag: [u8; 32],
    fed: usize,
}

impl std::fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureVerifier")
            .field("fed", &self.fed)
            .finish_non_exhaustive()
    }
}

impl SignatureVerifier {
    /// A check of a body against the signature in `header` (`sha256=<64 lowercase hex
    /// digits>`) with `secret`. Refuses an empty secret, and a missing or malformed header.
    pub fn new(secret: &[u8], header: Option<&str>) -> Result<Self, WebhookError> {
        if secret.is_empty() {
            return Err(WebhookError::EmptySecret);
        }
        let header = header.ok_or(WebhookError::MissingSignature)?;
        let hex = header
            .strip_prefix("sha256=")
            .ok_or(WebhookError::SignaturePrefix)?;
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(WebhookError::SignatureNotHex);
        }
        if hex.len() != 64 {
            return Err(WebhookError::SignatureLength { digits: hex.len() });
        }
        let mut tag = [0u8; 32];
        for (byte, pair) in tag.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            *byte = (nibble(pair[0]) << 4) | nibble(pair[1]);
        }
        let mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| WebhookError::EmptySecret)?;
        Ok(SignatureVerifier { mac, tag, fed: 0 })
    }

    /// Feeds the next bytes of the body.
    pub fn update(&mut self, piece: &[u8]) {
        self.mac.update(piece);
        self.fed = self.fed.saturating_add(piece.len());
    }

    /// Whether the bytes fed are the body that was signed; `len` is the length of the body
    /// the receiver kept, which must be the number of bytes fed.
    pub fn verify(self, len: usize) -> Result<(), WebhookError> {
        if len != self.fed {
            return Err(WebhookError::SignatureMismatch);
        }
        self.mac
            .verify_slice(&self.tag)
            .map_err(|_| WebhookError::SignatureMismatch)
    }
}

/// The value of a lowercase hex digit (checked by the caller).
fn nibble(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        _ => digit - b'a' + 10,
    }
}

/// Verifies a delivery's signature, then reads its event: the signature first, so nothing of
/// an unauthenticated body is parsed; then the `X-GitHub-Event` and `X-GitHub-Delivery`
/// headers; then the body, as the JSON that event has.
pub fn receive(
    secret: &[u8],
    headers: &DeliveryHeaders<'_>,
    body: &[u8],
) -> Result<Delivery, WebhookError> {
    let mut verifier = SignatureVerifier::new(secret, headers.signature)?;
    verifier.update(body);
    receive_verified(verifier, headers, body)
}

/// [`receive`] for a body read piece by piece: `verifier` has been fed every byte of `body`,
/// in order, as it arrived. Finishes the signature check, then reads the event as [`receive`]
/// does.
pub fn receive_verified(
    verifier: SignatureVerifier,
    headers: &DeliveryHeaders<'_>,
    body: &[u8],
) -> Result<Delivery, WebhookError> {
    verifier.verify(body.len())?;
    let event = headers
        .event
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or(WebhookError::MissingEvent)?;
    let id = headers
        .delivery
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .ok_or(WebhookError::MissingDelivery)?;
    let event = read_trusted_event(event, body)?;
    Ok(Delivery {
        id: id.to_string(),
        event,
    })
}

/// Reads an event payload that reached formwork by a trusted path, with no signature to check:
/// the file GitHub Actions names in `GITHUB_EVENT_PATH`. Webhook deliveries go through
/// [`receive`].
pub fn read_trusted_event(name: &str, body: &[u8]) -> Result<Event, WebhookError> {
    let ignored = |action: Option<String>, reason| {
        Ok(Event::Ignored(Ignored {
            event: name.to_string(),
            action,
            reason,
        }))
    };
    match name {
        "pull_request" => {
            let action: ActionOnly = parse(name, body)?;
            match action.action.as_deref() {
                Some("opened" | "synchronize" | "reopened" | "closed") => {
                    let raw: RawPullRequestEvent = parse(name, body)?;
                    Ok(Event::PullRequest(raw.into_event()))
                }
                _ => ignored(
                    action.action,
                    "formwork acts on pull requests opened, synchronized, reopened and closed",
                ),
            }
        }
        "issue_comment" => {
            let action: ActionOnly = parse(name, body)?;
            if action.action.as_deref() != Some("created") {
                return ignored(
                    action.action,
                    "formwork reads new comments only, not edited or deleted ones",
                );
            }
            let raw: RawIssueCommentEvent = parse(name, body)?;
            if raw.issue.pull_request.is_none() {
                return ignored(
                    action.action,
                    "a comment on an issue, not on a pull request",
                );
            }
            Ok(Event::IssueComment(IssueCommentEvent {
                comment_id: raw.comment.id,
                body: raw.comment.body,
                author: raw.comment.user.login,
                author_type: raw.comment.user.kind,
                author_association: raw.comment.author_association,
                pull_request: raw.issue.number,
                repository: raw.repository.into(),
                installation_id: raw.installation.map(|i| i.id),
                sender: raw.sender.login,
            }))
        }
        "push" => {
            let raw: RawPushEvent = parse(name, body)?;
            Ok(Event::Push(PushEvent {
                ref_name: raw.ref_name,
                before: raw.before,
                after: raw.after,
                created: raw.created.unwrap_or(false),
                deleted: raw.deleted.unwrap_or(false),
                forced: raw.forced.unwrap_or(false),
                head_commit: raw.head_commit.map(|c| c.id),
                repository: raw.repository.into(),
                installation_id: raw.installation.map(|i| i.id),
            }))
        }
        "ping" => {
            let raw: RawPingEvent = parse(name, body)?;
            Ok(Event::Ping(PingEvent {
                zen: raw.zen,
                hook_id: raw.hook_id,
                repository: raw.repository.map(|r| r.full_name),
            }))
        }
        _ => {
            // Best effort: the action is only for logs, and an event formwork ignores need not
            // have any particular shape.
            let action = serde_json::from_slice::<ActionOnly>(body)
                .ok()
                .and_then(|a| a.action);
            ignored(action, "formwork does not act on this event")
        }
    }
}

/// Deserializes `body`, naming the event and the JSON path of the problem on failure.
fn parse<T: DeserializeOwned>(event: &str, body: &[u8]) -> Result<T, WebhookError> {
    serde_json::from_slice(body).map_err(|e| {
        let offset = error_offset(body, e.line(), e.column());
        let container = e.to_string().starts_with("missing field");
        let path = json_path(body, offset, container);
        let mut message = e.to_string();
        if message.chars().count() > 300 {
            message = message.chars().take(300).collect::<String>() + "…";
        }
        WebhookError::Payload {
            event: event.to_string(),
            path,
            message,
        }
    })
}

/// The byte offset serde_json's (1-based line, byte column) points at.
fn error_offset(body: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    if line > 1 {
        let mut newlines = 0;
        for (i, &b) in body.iter().enumerate() {
            if b == b'\n' {
                newlines += 1;
                if newlines == line - 1 {
                    start = i + 1;
                    break;
                }
            }
        }
    }
    (start + column).min(body.len())
}

/// One open container while scanning JSON.
enum Frame {
    Object {
        key: Option<String>,
        /// Whether the current key's `:` was seen (so a value is being read).
        in_value: bool,
    },
    Array {
        index: usize,
    },
}

/// The JSON path (`$.a.b[2].c`) of the value being read at byte `offset` of `body`. With
/// `container`, the path of the object being read instead of its current member (serde reports
/// a missing field at the end of the object that lacks it).
fn json_path(body: &[u8], offset: usize, container: bool) -> String {
    let mut stack: Vec<Frame> = Vec::new();
    let end = offset.min(body.len());
    let mut i = 0;
    while i < end {
        match body[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < body.len() && body[i] != b'"' {
                    i += if body[i] == b'\\' { 2 } else { 1 };
                }
                if i >= end {
                    break;
                }
                if let Some(Frame::Object {
                    key,
                    in_value: false,
                }) = stack.last_mut()
                {
                    *key = serde_json::from_slice::<String>(&body[start..=i]).ok();
                }
            }
            b':' => {
                if let Some(Frame::Object { in_value, .. }) = stack.last_mut() {
                    *in_value = true;
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key, in_value }) => {
                    *key = None;
                    *in_value = false;
                }
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            b'{' => stack.push(Frame::Object {
                key: None,
                in_value: false,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            _ => {}
        }
        i += 1;
    }
    // serde reports a missing field once it has read the `}` of the object that lacks it, or
    // while looking at that `}`: the path is then the object's own.
    let closed = body[..end]
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'}');
    if container
        && !closed
        && let Some(Frame::Object { key, .. }) = stack.last_mut()
    {
        *key = None;
    }
    let mut path = String::from("$");
    for frame in &stack {
        match frame {
            Frame::Object { key: Some(key), .. } => {
                if !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    path.push('.');
                    path.push_str(key);
                } else {
                    path.push_str(&format!("[{}]", serde_json::Value::from(key.as_str())));
                }
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// A bounded, in-memory record of the delivery ids seen, to drop redeliveries: when full, the
/// oldest id is forgotten first. It is per process: a daemon running several replicas behind
/// one webhook must record delivery ids in the shared, durable state store instead.
#[derive(Debug)]
pub struct DeliveryDedup {
    capacity: usize,
    order: VecDeque<String>,
    seen: HashSet<String>,
}

impl DeliveryDedup {
    /// A record of at most `capacity` ids (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        DeliveryDedup {
            capacity,
            order: VecDeque::with_capacity(capacity.min(4096)),
            seen: HashSet::with_capacity(capacity.min(4096)),
        }
    }

    /// Records `id`; whether it had not been seen (among the ids still remembered).
    pub fn first_time(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.order.push_back(id.to_string());
        self.seen.insert(id.to_string());
        true
    }
}

// The payloads as GitHub sends them: only the fields formwork reads (serde ignores the rest).

#[derive(Deserialize)]
struct ActionOnly {
    #[serde(default)]
    action: Option<String>,
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
struct RawPullRequestEvent {
    action: String,
    pull_request: RawPullRequest,
    repository: RawRepository,
    #[serde(default)]
    installation: Option<RawInstallation>,
    sender: RawUser,
}

impl RawPullRequestEvent {
    fn into_event(self) -> PullRequestEvent {
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
struct RawIssueCommentEvent {
    comment: RawComment,
    issue: RawIssue,
    repository: RawRepository,
    #[serde(default)]
    installation: Option<RawInstallation>,
    sender: RawUser,
}

#[derive(Deserialize)]
struct RawCommit {
    id: String,
}

#[derive(Deserialize)]
struct RawPushEvent {
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

#[derive(Deserialize)]
struct RawPingEvent {
    zen: String,
    hook_id: u64,
    #[serde(default)]
    repository: Option<RawRepoRef>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of<T: DeserializeOwned>(body: &str) -> String {
        match parse::<T>("test", body.as_bytes()) {
            Err(WebhookError::Payload { path, .. }) => path,
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("parsed"),
        }
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        a: Vec<Inner>,
        b: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        x: String,
        y: Option<u64>,
    }

    #[test]
    fn error_paths_name_the_member() {
        let inner = r#"{"x": "1", "y": 2}"#;
        assert_eq!(
            path_of::<Outer>(&format!(
                r#"{{"a": [{inner}, {{"x": null}}], "b": {inner}}}"#
            )),
            "$.a[1].x"
        );
        assert_eq!(
            path_of::<Outer>(
                "{\n  \"a\": [],\n  \"b\": {\n    \"x\": \"1\",\n    \"y\": \"two\"\n  }\n}"
            ),
            "$.b.y"
        );
        assert_eq!(path_of::<Outer>(r#"{"a": [], "b": {"y": 1}}"#), "$.b");
        assert_eq!(
            path_of::<Outer>(r#"{"a": [], "b": {"y": 1, "x": 7}}"#),
            "$.b.x"
        );
        assert_eq!(path_of::<Outer>(r#"{"a": []}"#), "$");
        assert_eq!(path_of::<Outer>(r#"{"a": [], "b": {"x": "1"}, "#), "$");
        assert_eq!(
            path_of::<Outer>(r#"{"a": [], "b": {"x": "1", "y": -1}}"#),
            "$.b.y"
        );
        assert_eq!(
            path_of::<Outer>(r#"{"a": [], "b": {"x\"q": 1, "x": 2}}"#),
            "$.b.x"
        );
        assert_eq!(path_of::<Outer>("not json"), "$");
    }

    #[test]
    fn dedup_forgets_the_oldest_first() {
        let mut d = DeliveryDedup::new(2);
        assert!(d.first_time("a"));
        assert!(d.first_time("b"));
        assert!(!d.first_time("a"));
        assert!(d.first_time("c"));
        assert!(d.first_time("a"));
        assert!(!d.first_time("c"));
        let mut one = DeliveryDedup::new(0);
        assert!(one.first_time("a"));
        assert!(!one.first_time("a"));
    }
}
