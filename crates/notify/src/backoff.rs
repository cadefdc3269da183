//! Retry timing: exponential backoff with jitter, and `Retry-After` parsing.

use std::time::{Duration, SystemTime};

/// Exponential backoff: the n-th retry waits about `base * 2^(n-1)`, capped at `max`, with
/// "equal jitter" (half fixed, half random) so that many failed deliveries do not retry in
/// lockstep but none retries much sooner than planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub base: Duration,
    /// The longest delay (also caps `Retry-After`).
    pub max: Duration,
}

impl Backoff {
    /// The delay before the next attempt after `failures` failed attempts (1 after the
    /// first failure). `retry_after`, when the destination sent one, wins (capped at `max`).
    pub fn delay(
        &self,
        failures: u32,
        retry_after: Option<Duration>,
        rng: &mut fastrand::Rng,
    ) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max);
        }
        let shift = failures.saturating_sub(1).min(30);
        let exp = self
            .base
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max)
            .min(self.max);
        let half = exp / 2;
        let jitter_ms = rng.u64(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter_ms)
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const B: Backoff = Backoff {
        base: Duration::from_millis(1000),
        max: Duration::from_secs(600),
    };

    #[test]
    fn grows_exponentially_within_jitter_bounds() {
        let mut rng = fastrand::Rng::with_seed(1);
        for (failures, full_ms) in [
            (1u32, 1000u64),
            (2, 2000),
            (3, 4000),
            (10, 512_000),
            (11, 600_000),
            (40, 600_000),
        ] {
            for _ in 0..50 {
                let d = B.delay(failures, None, &mut rng).as_millis() as u64;
                assert!(d >= full_ms / 2 && d <= full_ms, "failures {failures}: {d}");
            }
        }
    }

    #[test]
    fn retry_after_wins_and_is_capped() {
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(
            B.delay(1, Some(Duration::from_secs(30)), &mut rng),
            Duration::from_secs(30)
        );
        assert_eq!(
            B.delay(1, Some(Duration::from_secs(9999)), &mut rng),
            Duration::from_secs(600)
        );
    }

    #[test]
    fn parses_both_retry_after_forms() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    proptest! {
        #[test]
        fn never_exceeds_max_nor_undercuts_half(failures in 0u32..100, seed in any::<u64>(), base_ms in 1u64..10_000, max_s in 1u64..3600) {
            let b = Backoff { base: Duration::from_millis(base_ms), max: Duration::from_secs(max_s) };
            let d = b.delay(failures, None, &mut fastrand::Rng::with_seed(seed));
            prop_assert!(d <= b.max);
            prop_assert!(d >= b.base.min(b.max) / 2);
        }
    }
}
