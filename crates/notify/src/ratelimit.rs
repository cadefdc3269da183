//! Per-destination rate limits: at most `rate` messages per second, evenly spaced (GCRA with a
//! burst of one), so a Slack webhook sees at most one message a second by default.

use std::time::{Duration, Instant};

/// The pure scheduling state, driven by the caller's clock.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    interval: Duration,
    next_free: Option<Instant>,
}

impl RateLimiter {
    /// A limiter for `rate_per_second` (> 0) messages per second.
    pub fn new(rate_per_second: f64) -> RateLimiter {
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / rate_per_second),
            next_free: None,
        }
    }

    /// Reserves the next slot at or after `now`; returns how long to wait before sending.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        let slot = match self.next_free {
            Some(t) if t > now => t,
            _ => now,
        };
        self.next_free = Some(slot + self.interval);
        slot - now
    }
}

/// A [`RateLimiter`] shared by concurrent deliveries to one destination.
#[derive(Debug)]
pub struct SharedRateLimiter(std::sync::Mutex<RateLimiter>);

impl SharedRateLimiter {
    /// See [`RateLimiter::new`].
    pub fn new(rate_per_second: f64) -> SharedRateLimiter {
        SharedRateLimiter(std::sync::Mutex::new(RateLimiter::new(rate_per_second)))
    }

    /// Waits for this caller's slot.
    pub async fn acquire(&self) {
        let wait = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_messages_evenly() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(1.0);
        assert_eq!(rl.reserve(t0), Duration::ZERO);
        assert_eq!(rl.reserve(t0), Duration::from_secs(1));
        assert_eq!(rl.reserve(t0), Duration::from_secs(2));
        // After a quiet period there is no backlog and no burst credit beyond one.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(rl.reserve(later), Duration::ZERO);
        assert_eq!(rl.reserve(later), Duration::from_secs(1));
    }

    #[test]
    fn fractional_rates() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(4.0);
        let waits: Vec<_> = (0..4).map(|_| rl.reserve(t0)).collect();
        assert_eq!(waits, [0, 250, 500, 750].map(Duration::from_millis));
    }

    #[tokio::test]
    async fn shared_limiter_delays_the_second_caller() {
        let rl = SharedRateLimiter::new(10.0);
        let start = Instant::now();
        rl.acquire().await;
        rl.acquire().await;
        rl.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_millis(190),
            "{:?}",
            start.elapsed()
        );
    }
}
