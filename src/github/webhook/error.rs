//! Why a delivery was refused, as one error type.

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
