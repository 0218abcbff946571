//! When to try a request again, and how long to wait first: rate limits (primary and
//! secondary), server errors and transport errors, as the module `client` describes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, StatusCode};

/// What to do with a non-2xx answer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Fail,
    /// Wait this long (primary rate limit reset, or `retry-after`).
    RateLimited(Duration),
    /// A secondary rate limit without a time given: wait a minute, then longer.
    SecondaryLimit,
    ServerError,
}

/// Reads a non-2xx answer: its status, its rate-limit headers and, for a 403, whether its body
/// speaks of a secondary limit; `now` is the time in seconds since the Unix epoch.
pub(super) fn classify(status: StatusCode, headers: &HeaderMap, body: &str, now: u64) -> Verdict {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS {
        if let Some(secs) = header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
            return Verdict::RateLimited(Duration::from_secs(secs));
        }
        if header("x-ratelimit-remaining") == Some("0")
            && let Some(reset) = header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok())
        {
            // One second more: the reset time is whole seconds.
            return Verdict::RateLimited(Duration::from_secs(reset.saturating_sub(now) + 1));
        }
        let lower = body.to_ascii_lowercase();
        if status == StatusCode::TOO_MANY_REQUESTS
            || lower.contains("secondary rate limit")
            || lower.contains("abuse")
        {
            return Verdict::SecondaryLimit;
        }
        return Verdict::Fail;
    }
    if status.is_server_error() {
        return Verdict::ServerError;
    }
    Verdict::Fail
}

/// The wait before the `n`-th retry after a server or transport error: `base` doubled each
/// time, capped at 30 s, with jitter.
pub(super) fn backoff(base: Duration, n: u32) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(10)));
    let capped = exp.min(Duration::from_secs(30));
    // Full jitter between half and all of it.
    let ms = capped.as_millis() as u64;
    Duration::from_millis(ms / 2 + rand::random_range(0..=ms / 2))
}

/// Seconds since the Unix epoch (0 when the clock is before it).
pub(super) fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The wait after the `n`-th secondary rate limit without a time given (`n` from 1): a minute,
/// doubled each time up to eight.
pub(super) fn secondary_limit_wait(n: u32) -> Duration {
    Duration::from_secs(60) * 2u32.pow(n.clamp(1, 4) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn primary_rate_limit_waits_until_the_reset() {
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1000"),
        ]);
        assert_eq!(
            classify(StatusCode::FORBIDDEN, &h, "{}", 990),
            Verdict::RateLimited(Duration::from_secs(11))
        );
        // A reset in the past: one second.
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &h, "{}", 2000),
            Verdict::RateLimited(Duration::from_secs(1))
        );
    }

    #[test]
    fn retry_after_wins_and_secondary_limits_without_it_wait() {
        let h = headers(&[("retry-after", "7"), ("x-ratelimit-remaining", "0")]);
        assert_eq!(
            classify(StatusCode::FORBIDDEN, &h, "{}", 0),
            Verdict::RateLimited(Duration::from_secs(7))
        );
        let body = r#"{"message":"You have exceeded a secondary rate limit."}"#;
        assert_eq!(
            classify(StatusCode::FORBIDDEN, &HeaderMap::new(), body, 0),
            Verdict::SecondaryLimit
        );
    }

    #[test]
    fn other_answers_fail_or_retry() {
        let none = HeaderMap::new();
        let forbidden = r#"{"message":"Resource not accessible by integration"}"#;
        assert_eq!(
            classify(StatusCode::FORBIDDEN, &none, forbidden, 0),
            Verdict::Fail
        );
        assert_eq!(
            classify(StatusCode::NOT_FOUND, &none, "{}", 0),
            Verdict::Fail
        );
        assert_eq!(
            classify(StatusCode::BAD_GATEWAY, &none, "", 0),
            Verdict::ServerError
        );
        assert_eq!(
            classify(StatusCode::UNPROCESSABLE_ENTITY, &none, "{}", 0),
            Verdict::Fail
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Duration::from_millis(100);
        for n in 1..20 {
            let d = backoff(b, n);
            let full = (b * 2u32.pow((n - 1).min(10))).min(Duration::from_secs(30));
            assert!(d >= full / 2 && d <= full, "{n}: {d:?} vs {full:?}");
        }
    }

    #[test]
    fn secondary_limits_wait_a_minute_then_longer() {
        let minutes = |n| secondary_limit_wait(n).as_secs() / 60;
        assert_eq!([1, 2, 3, 4, 5, 40].map(minutes), [1, 2, 4, 8, 8, 8]);
        assert_eq!(minutes(0), 1);
    }
}
