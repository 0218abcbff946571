//! Receiving a delivery: its signature first, then the headers that name the event and the
//! delivery, then its body read as that event.

use super::{Event, SignatureVerifier, WebhookError, read_trusted_event};

/// The header that carries the body's signature: `sha256=<64 lowercase hex digits>`.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
/// The header that names the event (`pull_request`, `push`, …).
pub const EVENT_HEADER: &str = "X-GitHub-Event";
/// The header that carries the delivery's unique id (a GUID; the same on a redelivery).
pub const DELIVERY_HEADER: &str = "X-GitHub-Delivery";

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
    /// `X-GitHub-Delivery`: unique per delivery, kept on redelivery (see [`DeliveryDedup`](super::DeliveryDedup)).
    pub id: String,
    /// What happened.
    pub event: Event,
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
