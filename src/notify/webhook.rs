//! The generic webhook target: the headers of a delivery and its signature, the way GitHub
//! signs its webhooks — `X-Formwork-Signature-256: sha256=<hex HMAC-SHA256 of the raw body,
//! keyed with the shared secret>` — with the event, a delivery id and a timestamp, which the
//! signed body repeats so that a receiver can reject replays (docs/notifications.md).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Formwork-Signature-256";
/// The header naming the event (`apply_failed` …).
pub const EVENT_HEADER: &str = "X-Formwork-Event";
/// The header carrying the delivery's id: the same on every attempt of one delivery.
pub const DELIVERY_HEADER: &str = "X-Formwork-Delivery";
/// The header carrying when the delivery was made, in seconds since the Unix epoch.
pub const TIMESTAMP_HEADER: &str = "X-Formwork-Timestamp";

/// `sha256=<64 lowercase hex digits>`: the HMAC-SHA256 of `body` keyed with `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length (RFC 2104).
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A new delivery id: 32 random hex digits.
pub fn delivery_id() -> String {
    rand::random::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The headers of one delivery of `body`.
pub fn headers(
    secret: &[u8],
    body: &[u8],
    event: &str,
    delivery: &str,
    timestamp: u64,
) -> Vec<(&'static str, String)> {
    vec![
        (EVENT_HEADER, event.to_string()),
        (DELIVERY_HEADER, delivery.to_string()),
        (TIMESTAMP_HEADER, timestamp.to_string()),
        (SIGNATURE_HEADER, signature(secret, body)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_github() {
        // The example of GitHub's "Validating webhook deliveries".
        assert_eq!(
            signature(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        // Formwork's own check of GitHub's deliveries accepts it.
        let body = br#"{"event":"apply_failed"}"#;
        let sig = signature(b"s3cret", body);
        crate::github::webhook::verify_signature(b"s3cret", body, Some(&sig)).unwrap();
        assert!(crate::github::webhook::verify_signature(b"other", body, Some(&sig)).is_err());
    }

    #[test]
    fn deliveries_have_their_own_ids_and_headers() {
        let (a, b) = (delivery_id(), delivery_id());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        let h = headers(b"k", b"{}", "drift", &a, 1_767_225_600);
        let names: Vec<&str> = h.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                EVENT_HEADER,
                DELIVERY_HEADER,
                TIMESTAMP_HEADER,
                SIGNATURE_HEADER
            ]
        );
        assert_eq!(h[0].1, "drift");
        assert_eq!(h[2].1, "1767225600");
        assert!(h[3].1.starts_with("sha256="));
    }
}
