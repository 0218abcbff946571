//! What can go wrong talking to GitHub, as one error type.

use std::time::Duration;

/// What can go wrong talking to GitHub.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub settings: {0}")]
    Config(String),
    #[error("GitHub {endpoint}: {source}")]
    Transport {
        endpoint: String,
        #[source]
        source: octocrab::Error,
    },
    #[error("GitHub {endpoint} answered {status}: {message}")]
    Api {
        endpoint: String,
        status: u16,
        message: String,
    },
    #[error(
        "GitHub {endpoint}: rate limited; the limit resets in {} s, longer than the {} s formwork waits — try again then",
        wait.as_secs(),
        max_wait.as_secs()
    )]
    RateLimited {
        endpoint: String,
        wait: Duration,
        max_wait: Duration,
    },
    #[error("GitHub {endpoint}: unexpected answer: {message}")]
    Decode { endpoint: String, message: String },
}

impl GitHubError {
    /// The HTTP status GitHub answered, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            GitHubError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}
