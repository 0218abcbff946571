//! Notifications: telling people and systems that an apply started, succeeded, failed or waits
//! at a gate, and that drift was found — on Slack (an incoming webhook), a generic webhook
//! signed with HMAC-SHA256, or an SNS topic (docs/notifications.md).
//!
//! - [`event`]: what is told, and the versioned JSON body;
//! - [`slack`]: the Slack message; [`webhook`]: the signature and headers of a delivery;
//! - [`http`]: one bounded POST; [`deliver`]: targets made ready (secrets read and masked)
//!   and events sent with retries;
//! - [`targets`]: an environment's targets at a revision; [`drift`]: drift found, told.
//!
//! Targets come from the environment's `notifications:` (at the commit applied, or checked for
//! drift) and from the agent's `formwork-server.yml`, for every environment it works on. A
//! notification never fails what it tells of: every failure is logged (scrubbed) and counted
//! ([`Notifier::counts`]). Every body passes the secrets masker before it leaves.

pub mod deliver;
pub mod drift;
pub mod event;
pub mod http;
pub mod slack;
pub mod targets;
pub mod webhook;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

pub use deliver::Prepared;
pub use event::{DriftCounts, Event, Links, StackOutcome};
pub use targets::Place;

use crate::config::notifications::Notification;

/// Why one delivery failed (logged, never returned to what was notified of).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("the HTTP client could not be made: {0}")]
    Client(String),
    #[error("the request failed: {0}")]
    Request(String),
    #[error("no answer within {0} s")]
    Timeout(f64),
    #[error("the receiver answered HTTP {0}")]
    Status(u16),
    #[error("SNS: {0}")]
    Sns(String),
    #[error("the target is not ready: {0}")]
    NotReady(String),
    #[error("gave up after {attempts} attempts: {last}")]
    GaveUp {
        attempts: u32,
        last: Box<NotifyError>,
    },
}

/// Sends notifications: the agent's own targets (for every environment), one HTTP client for
/// all deliveries, and the count of deliveries. Cheap to clone; clones share all of it.
#[derive(Clone, Default)]
pub struct Notifier {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    server: Vec<Notification>,
    http: OnceLock<Result<http::HttpClient, String>>,
    sent: AtomicU64,
    failed: AtomicU64,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("server_targets", &self.inner.server.len())
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier that also sends every environment's events to `server` (the agent's targets).
    pub fn new(server: Vec<Notification>) -> Notifier {
        Notifier {
            inner: Arc::new(Inner {
                server,
                ..Inner::default()
            }),
        }
    }

    /// The agent's own targets.
    pub fn server_targets(&self) -> &[Notification] {
        &self.inner.server
    }

    /// Deliveries made and deliveries given up on, since the notifier was made.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.inner.sent.load(Ordering::Relaxed),
            self.inner.failed.load(Ordering::Relaxed),
        )
    }

    fn count(&self, ok: bool) {
        let c = if ok {
            &self.inner.sent
        } else {
            &self.inner.failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The HTTP client, made on first use.
    fn http(&self) -> Result<&http::HttpClient, NotifyError> {
        self.inner
            .http
            .get_or_init(|| http::HttpClient::new().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| NotifyError::Client(e.clone()))
    }
}
