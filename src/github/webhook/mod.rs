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
//!
//! The parts, a module each: `signature` (the HMAC check), `delivery` (headers, and receiving
//! a delivery), `event` (the model), `decode` (a payload read into the model, with the JSON
//! path of what is wrong: `json_path`), `payload` (GitHub's payloads as sent), `dedup`
//! (redeliveries) and `error` (why a delivery was refused).

mod decode;
mod dedup;
mod delivery;
mod error;
mod event;
mod json_path;
mod payload;
mod signature;

pub use decode::read_trusted_event;
pub use dedup::DeliveryDedup;
pub use delivery::{
    DELIVERY_HEADER, Delivery, DeliveryHeaders, EVENT_HEADER, SIGNATURE_HEADER, receive,
    receive_verified,
};
pub use error::WebhookError;
pub use event::{
    AccountType, AuthorAssociation, Event, Ignored, IssueCommentEvent, PingEvent,
    PullRequestAction, PullRequestEvent, PushEvent, Repository,
};
pub use signature::{SignatureVerifier, verify_signature};
