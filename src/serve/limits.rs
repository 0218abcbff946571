//! What a client can make the agent hold through its HTTP port, for webhook bodies: a body is
//! read only up to GitHub's largest payload ([`MAX_BODY`]), within a budget of memory shared by
//! every body being read at once ([`BodyBudget`]), and within a time ([`BodyReader::read`]).
//! The declared length is checked before anything is read, and each piece is handed on (to the
//! signature check) as it arrives. The connection cap and the header timeout are the server
//! loop's, in [`super::http`]; the settings are [`super::config::HttpConfig`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, HttpBody};
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::config::HttpConfig;

/// GitHub's largest webhook payload: 25 MB, per its webhook documentation, taken as 25 MiB.
pub const MAX_BODY: u64 = 25 * 1024 * 1024;

/// How long a delivery waits for its share of the budget before it is refused as busy.
pub const BUDGET_WAIT: Duration = Duration::from_secs(2);

/// The bytes of the budget one permit stands for.
const PERMIT_BYTES: u64 = 1024;

/// What a body of unknown length (sent chunked) takes from the budget at a time, before the
/// pieces that fill it are read: whenever less than [`HEADROOM`] of its share is left.
const STEP: u64 = 1024 * 1024;

/// The share a chunked body keeps ahead of its next piece: more than the largest piece the HTTP
/// layer hands over at once (about 408 KiB), so a piece is covered before it is read.
const HEADROOM: u64 = 512 * 1024;

/// Why a webhook body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Declared or found larger than [`MAX_BODY`].
    #[error("the body is larger than {MAX_BODY} bytes, GitHub's largest webhook payload")]
    TooLarge,
    /// Its share of the budget could not be had within [`BUDGET_WAIT`].
    #[error("too many webhook bodies are being read at once; try again later")]
    Busy,
    /// The whole body did not arrive in time.
    #[error("the body did not arrive within {} seconds", .0.as_secs())]
    Timeout(Duration),
    /// The connection failed or the body was malformed (cut short, bad chunk framing).
    #[error("the body could not be read: {0}")]
    Read(String),
}

/// The memory that webhook bodies being read may take at once, across all connections: permits
/// of a KiB each, taken before the bytes they stand for are read and given back when the body is
/// dropped.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    permits: Arc<Semaphore>,
    /// How long a body waits for its share.
    wait: Duration,
}

impl BodyBudget {
    /// A budget of `bytes` (rounded up to whole permits; capped at the most one body can take
    /// at once, which the settings' check keeps it under).
    pub fn new(bytes: u64) -> BodyBudget {
        let permits = Self::permits_for(bytes).unwrap_or(u32::MAX);
        BodyBudget {
            permits: Arc::new(Semaphore::new(permits as usize)),
            wait: BUDGET_WAIT,
        }
    }

    /// The permits `bytes` stands for; `None` when more than can be taken at once.
    pub fn permits_for(bytes: u64) -> Option<u32> {
        u32::try_from(bytes.div_ceil(PERMIT_BYTES)).ok()
    }

    /// `bytes` of the budget, waiting at most [`BUDGET_WAIT`] for them.
    async fn take(&self, bytes: u64) -> Result<OwnedSemaphorePermit, BodyError> {
        let n = Self::permits_for(bytes).ok_or(BodyError::TooLarge)?;
        let wait = self.permits.clone().acquire_many_owned(n);
        match tokio::time::timeout(self.wait, wait).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => Err(BodyError::Busy),
        }
    }
}

/// A body read whole, and the share of the budget it holds until it is dropped.
#[derive(Debug)]
pub struct HeldBody {
    /// The body.
    pub bytes: Vec<u8>,
    _share: Option<OwnedSemaphorePermit>,
}

/// Reads webhook bodies within the budget and the time allowed.
#[derive(Clone, Debug)]
pub struct BodyReader {
    budget: BodyBudget,
    timeout: Duration,
}

impl BodyReader {
    /// A reader with the budget and the body timeout of `config`.
    pub fn new(config: &HttpConfig) -> BodyReader {
        BodyReader {
            budget: BodyBudget::new(config.max_body_bytes_in_flight),
            timeout: Duration::from_secs(config.body_read_timeout_seconds),
        }
    }

    /// Refuses a body whose declared length (`Content-Length`) is over [`MAX_BODY`], before
    /// anything of it is read.
    pub fn check_declared(body: &Body) -> Result<(), BodyError> {
        match body.size_hint().exact() {
            Some(n) if n > MAX_BODY => Err(BodyError::TooLarge),
            _ => Ok(()),
        }
    }

    /// Reads `body` into memory, handing each piece to `on_piece` as it arrives. A body of
    /// declared length takes that much of the budget before its first byte is read; a chunked
    /// one takes it a MiB at a time ahead of its pieces (its buffer grows with its share) and is
    /// cut off past [`MAX_BODY`]. The time allowed runs once the declared length's share is
    /// had.
    pub async fn read(
        &self,
        body: Body,
        mut on_piece: impl FnMut(&[u8]),
    ) -> Result<HeldBody, BodyError> {
        Self::check_declared(&body)?;
        let declared = body.size_hint().exact();
        let limit = declared.unwrap_or(MAX_BODY);
        let mut share: Option<OwnedSemaphorePermit> = None;
        // The bytes the share covers; the body's buffer never holds more.
        let mut reserved = 0;
        if let Some(n) = declared.filter(|n| *n > 0) {
            share = Some(self.budget.take(n).await?);
            reserved = n;
        }
        let mut bytes = Vec::with_capacity(to_usize(reserved)?);
        let mut pieces = body.into_data_stream();
        let read = async {
            loop {
                let have = bytes.len() as u64;
                if declared.is_none() && reserved - have < HEADROOM && reserved < limit {
                    let more = STEP.min(limit - reserved);
                    self.grow(&mut share, more).await?;
                    reserved += more;
                    bytes.reserve_exact(to_usize(reserved)? - bytes.len());
                }
                let Some(piece) = pieces.next().await else {
                    return Ok(());
                };
                let piece = piece.map_err(|e| BodyError::Read(e.to_string()))?;
                let need = have + piece.len() as u64;
                if need > limit {
                    return Err(BodyError::TooLarge);
                }
                if need > reserved {
                    self.grow(&mut share, need - reserved).await?;
                    reserved = need;
                    bytes.reserve_exact(to_usize(reserved)? - bytes.len());
                }
                on_piece(&piece);
                bytes.extend_from_slice(&piece);
            }
        };
        match tokio::time::timeout(self.timeout, read).await {
            Ok(Ok(())) => Ok(HeldBody {
                bytes,
                _share: share,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(BodyError::Timeout(self.timeout)),
        }
    }

    /// Adds `bytes` of the budget to `share`.
    async fn grow(
        &self,
        share: &mut Option<OwnedSemaphorePermit>,
        bytes: u64,
    ) -> Result<(), BodyError> {
        let more = self.budget.take(bytes).await?;
        match share {
            Some(s) => s.merge(more),
            None => *share = Some(more),
        }
        Ok(())
    }
}

/// Has the allocator give blocks of 256 KiB and more back to the system as soon as they are
/// freed, so that the budget bounds the memory webhook bodies keep, not only the memory they
/// use: glibc's allocator otherwise raises that threshold (up to 32 MiB) as large blocks are
/// freed, and then keeps freed bodies in the heap of the thread that read them, out of reach of
/// the other threads' next bodies.
pub fn give_large_blocks_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes a tunable of the allocator; it takes no pointers and may
        // be called at any time.
        let done = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024) };
        if done != 1 {
            tracing::debug!("the allocator's mmap threshold could not be set");
        }
    }
}

/// `n` as a length in memory (always so for lengths up to [`MAX_BODY`]).
fn to_usize(n: u64) -> Result<usize, BodyError> {
    usize::try_from(n).map_err(|_| BodyError::TooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader whose bodies wait for the budget a short while.
    fn reader(budget: u64, timeout: Duration) -> BodyReader {
        BodyReader {
            budget: BodyBudget {
                wait: Duration::from_millis(50),
                ..BodyBudget::new(budget)
            },
            timeout,
        }
    }

    /// A body sent in `pieces`, with no declared length (as a chunked body arrives).
    fn chunked(pieces: Vec<Vec<u8>>) -> Body {
        let stream = futures::stream::iter(
            pieces
                .into_iter()
                .map(|p| Ok::<_, std::io::Error>(axum::body::Bytes::from(p))),
        );
        Body::from_stream(stream)
    }

    #[tokio::test]
    async fn a_body_is_read_whole_and_fed_piece_by_piece() {
        let r = reader(MAX_BODY, Duration::from_secs(5));
        let mut fed = Vec::new();
        let body = r
            .read(Body::from("hello, world"), |p| fed.extend_from_slice(p))
            .await
            .unwrap();
        assert_eq!(body.bytes, b"hello, world");
        assert_eq!(fed, b"hello, world");
        let mut fed = Vec::new();
        let body = r
            .read(chunked(vec![b"ab".to_vec(), b"cd".to_vec()]), |p| {
                fed.extend_from_slice(p)
            })
            .await
            .unwrap();
        assert_eq!(
            (body.bytes.as_slice(), fed.as_slice()),
            (&b"abcd"[..], &b"abcd"[..])
        );
        assert_eq!(body.bytes.capacity() as u64, STEP);
        // Many small pieces take no more of the budget than their bytes, the headroom and a
        // step.
        let r = reader(MAX_BODY, Duration::from_secs(5));
        let pieces = vec![vec![b' '; 1000]; 3000];
        let body = r.read(chunked(pieces), |_| {}).await.unwrap();
        assert_eq!(body.bytes.len(), 3_000_000);
        assert!(body.bytes.capacity() as u64 <= 3_000_000 + HEADROOM + STEP);
        let held = u64::from(BodyBudget::permits_for(MAX_BODY).unwrap())
            - r.budget.permits.available_permits() as u64;
        assert!(
            held * PERMIT_BYTES <= 3_000_000 + HEADROOM + STEP,
            "{held} KiB"
        );
    }

    #[tokio::test]
    async fn a_body_larger_than_the_maximum_is_cut_off() {
        let r = reader(2 * MAX_BODY, Duration::from_secs(5));
        let piece = vec![b' '; 1024 * 1024];
        let pieces = vec![piece; 26];
        let mut fed = 0;
        let e = r
            .read(chunked(pieces), |p| fed += p.len())
            .await
            .unwrap_err();
        assert!(matches!(e, BodyError::TooLarge), "{e}");
        assert_eq!(fed as u64, MAX_BODY);
        // A declared length over the maximum is refused before anything is read.
        let big = Body::from(vec![b' '; MAX_BODY as usize + 1]);
        assert!(matches!(
            BodyReader::check_declared(&big),
            Err(BodyError::TooLarge)
        ));
        let e = r.read(big, |_| panic!("read")).await.unwrap_err();
        assert!(matches!(e, BodyError::TooLarge), "{e}");
    }

    #[tokio::test]
    async fn bodies_wait_for_the_budget_then_are_refused_and_give_it_back_when_dropped() {
        let r = reader(MAX_BODY, Duration::from_secs(5));
        let first = r
            .read(Body::from(vec![b' '; MAX_BODY as usize - 1024]), |_| {})
            .await
            .unwrap();
        // One KiB is left: a body of two waits, then is refused; one of one fits.
        let e = r
            .read(Body::from(vec![b' '; 2048]), |_| panic!("read"))
            .await
            .unwrap_err();
        assert!(matches!(e, BodyError::Busy), "{e}");
        let e = r
            .read(chunked(vec![vec![b' '; 10]]), |_| panic!("read"))
            .await
            .unwrap_err();
        assert!(matches!(e, BodyError::Busy), "{e}");
        let small = r.read(Body::from(vec![b' '; 1000]), |_| {}).await.unwrap();
        drop((first, small));
        let again = r.read(Body::from(vec![b' '; 2048]), |_| {}).await.unwrap();
        assert_eq!(again.bytes.len(), 2048);
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_in_time_is_refused() {
        let r = reader(MAX_BODY, Duration::from_millis(100));
        let stalled =
            futures::stream::iter([Ok::<_, std::io::Error>(axum::body::Bytes::from("{"))])
                .chain(futures::stream::pending());
        let e = r
            .read(Body::from_stream(stalled), |_| {})
            .await
            .unwrap_err();
        assert!(matches!(e, BodyError::Timeout(_)), "{e}");
        let r = reader(MAX_BODY, Duration::from_secs(3));
        assert_eq!(
            BodyError::Timeout(r.timeout).to_string(),
            "the body did not arrive within 3 seconds"
        );
    }

    #[test]
    fn permits_are_kibibytes_rounded_up() {
        assert_eq!(BodyBudget::permits_for(0), Some(0));
        assert_eq!(BodyBudget::permits_for(1), Some(1));
        assert_eq!(BodyBudget::permits_for(1024), Some(1));
        assert_eq!(BodyBudget::permits_for(1025), Some(2));
        assert_eq!(BodyBudget::permits_for(MAX_BODY), Some(25 * 1024));
        assert_eq!(BodyBudget::permits_for(u64::MAX), None);
    }
}
