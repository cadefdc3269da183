//! Window arithmetic for thresholds and dedup, on event time. Pure functions over the
//! state values; the [`crate::gate::Gate`] loads and stores them through a
//! [`crate::state::StateStore`].
//!
//! Events may arrive out of order. A threshold counts an event if some window of length
//! `window` holding it holds `count` events; events older than the newest event seen minus
//! `window + tolerance` are too late and are dropped (and counted as late).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Threshold settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThresholdSpec {
    /// Events needed.
    pub count: u64,
    /// Window length.
    pub window: Duration,
    /// Allowed lateness.
    pub tolerance: Duration,
}

/// Dedup settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupSpec {
    /// Window length, from the first alert.
    pub window: Duration,
    /// Allowed lateness.
    pub tolerance: Duration,
}

/// The events of one threshold group, sorted by event time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThresholdWindow {
    /// Event times, sorted.
    pub times: Vec<DateTime<Utc>>,
}

/// What a threshold did with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdOutcome {
    /// Counted; not (yet) enough.
    Counted(u64),
    /// Enough: the window held this many events. The group starts afresh.
    Fired(u64),
    /// Too late to count.
    Late,
}

impl ThresholdWindow {
    /// Adds an event at `t` given the newest event time seen so far (`watermark`).
    pub fn observe(
        &mut self,
        spec: &ThresholdSpec,
        t: DateTime<Utc>,
        watermark: DateTime<Utc>,
    ) -> ThresholdOutcome {
        let horizon = watermark - spec.window - spec.tolerance;
        if t < horizon {
            return ThresholdOutcome::Late;
        }
        self.times.retain(|x| *x >= horizon);
        let idx = self.times.partition_point(|x| *x <= t);
        self.times.insert(idx, t);
        // The largest number of events in any window [s, s + window] that contains t.
        let lo = self.times.partition_point(|x| *x < t - spec.window);
        let hi = self.times.partition_point(|x| *x <= t + spec.window);
        let slice = &self.times[lo..hi];
        let mut best = 0usize;
        let mut j = 0usize;
        for i in 0..slice.len() {
            if j < i {
                j = i;
            }
            while j + 1 < slice.len() && slice[j + 1] - slice[i] <= spec.window {
                j += 1;
            }
            // Only windows that contain t count.
            if slice[i] <= t && slice[j] >= t {
                best = best.max(j - i + 1);
            }
        }
        let best = best as u64;
        if best >= spec.count {
            self.times.clear();
            ThresholdOutcome::Fired(best)
        } else {
            ThresholdOutcome::Counted(best)
        }
    }

    /// When this group can be forgotten, in event time.
    pub fn expires(&self, spec: &ThresholdSpec) -> Option<DateTime<Utc>> {
        self.times.last().map(|t| *t + spec.window + spec.tolerance)
    }
}

/// One dedup key's window: the alert that was sent and how many repeats were folded in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DedupEntry {
    /// The alert that was sent for the first event.
    pub first: trailwatch_alert::Alert,
    /// Event time of the first event.
    pub first_time: DateTime<Utc>,
    /// Event time of the newest repeat.
    pub last_time: DateTime<Utc>,
    /// Repeats folded in so far.
    pub repeats: u64,
}

impl DedupEntry {
    /// Whether an event at `t` falls in this entry's window.
    pub fn covers(&self, spec: &DedupSpec, t: DateTime<Utc>) -> bool {
        t >= self.first_time - spec.tolerance && t <= self.first_time + spec.window
    }

    /// When this window can be closed, in event time.
    pub fn expires(&self, spec: &DedupSpec) -> DateTime<Utc> {
        self.first_time + spec.window + spec.tolerance
    }

    /// The summary alert for a closed window with repeats.
    pub fn summary(&self) -> trailwatch_alert::Alert {
        let mut a = self.first.clone();
        // The first alert's plan already ran (or was refused); a repeat notice acts on nothing.
        a.remediation = None;
        a.repeats = self.repeats;
        a.title = format!("{} (repeated {} more times)", a.title, self.repeats);
        a.dedup_key = format!("{}#repeats@{}", a.dedup_key, self.first_time.to_rfc3339());
        a.fields
            .insert("last_seen".to_owned(), self.last_time.to_rfc3339());
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000 + s, 0).unwrap_or_default()
    }

    /// Feeds event times (seconds) in order; returns the outcome letters.
    fn check(count: u64, window: i64, times: &[i64], want: &str) {
        let spec = ThresholdSpec {
            count,
            window: Duration::seconds(window),
            tolerance: Duration::seconds(60),
        };
        let mut w = ThresholdWindow::default();
        let mut mark = t(i64::MIN / 4_000_000_000);
        let mut got = String::new();
        for &s in times {
            mark = mark.max(t(s));
            got.push(match w.observe(&spec, t(s), mark) {
                ThresholdOutcome::Counted(_) => '.',
                ThresholdOutcome::Fired(_) => '!',
                ThresholdOutcome::Late => 'L',
            });
        }
        assert_eq!(got, want, "{times:?}");
    }

    #[test]
    fn thresholds() {
        check(3, 60, &[0, 10, 20], "..!");
        check(3, 60, &[0, 10, 100], "...");
        check(3, 60, &[0, 10, 20, 30, 40, 50], "..!..!");
        // Out of order within the window still counts.
        check(3, 60, &[20, 0, 10], "..!");
        // Far too late is dropped.
        check(2, 60, &[1000, 0], ".L");
        check(1, 60, &[5], "!");
    }
}
