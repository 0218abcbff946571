//! A delivery's `X-Hub-Signature-256` checked against the HMAC-SHA256 of its body, in
//! constant time, whole or as the body streams in.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::WebhookError;

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
