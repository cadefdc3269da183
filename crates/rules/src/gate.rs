//! The stateful gate: thresholds and dedup windows, single-threaded, on event time, with
//! state behind a [`StateStore`] and time from an injected [`Clock`].

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use trailwatch_alert::Alert;

use crate::clock::Clock;
use crate::compile::RuleSet;
use crate::evaluate::Candidate;
use crate::state::{Entry, Expiry, StateError, StateStore};
use crate::window::{DedupEntry, DedupSpec, ThresholdOutcome, ThresholdSpec, ThresholdWindow};

/// Counters that reconcile: `admitted == passed + held + folded + late`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateStats {
    /// Candidates admitted.
    pub admitted: u64,
    /// Candidates that became alerts.
    pub passed: u64,
    /// Candidates counted towards a threshold that has not fired.
    pub held: u64,
    /// Candidates folded into a dedup window as repeats.
    pub folded: u64,
    /// Candidates too late for their threshold window.
    pub late: u64,
    /// Repeat summaries emitted when dedup windows closed.
    pub summaries: u64,
}

#[derive(Debug, Clone)]
struct RuleGate {
    id: String,
    threshold: Option<ThresholdSpec>,
    dedup: Option<DedupSpec>,
}

/// Passes candidates through thresholds and dedup.
pub struct Gate {
    rules: Vec<RuleGate>,
    state: Box<dyn StateStore>,
    clock: Arc<dyn Clock>,
    watermark: Option<DateTime<Utc>>,
    stats: GateStats,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").field("stats", &self.stats).finish()
    }
}

/// How far ahead of the clock an event time may be before it is treated as the clock's
/// time (a bogus future timestamp must not expire everyone's windows).
const MAX_FUTURE_SKEW_MINUTES: i64 = 15;

impl Gate {
    /// A gate for the rules of `ruleset`.
    pub fn new(ruleset: &RuleSet, state: Box<dyn StateStore>, clock: Arc<dyn Clock>) -> Gate {
        Gate {
            rules: ruleset
                .rules()
                .iter()
                .map(|r| RuleGate {
                    id: r.id.clone(),
                    threshold: r.threshold(),
                    dedup: r.dedup(),
                })
                .collect(),
            state,
            clock,
            watermark: None,
            stats: GateStats::default(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> GateStats {
        self.stats
    }

    /// The newest event time seen.
    pub fn watermark(&self) -> Option<DateTime<Utc>> {
        self.watermark
    }

    /// Admits one candidate; returns the alerts to send now (none, the candidate's alert,
    /// and/or summaries of dedup windows that closed).
    pub fn admit(&mut self, mut candidate: Candidate) -> Vec<Alert> {
        self.stats.admitted += 1;
        let now = self.clock.now();
        let time = candidate
            .time
            .min(now + Duration::minutes(MAX_FUTURE_SKEW_MINUTES));
        let watermark = self.watermark.map_or(time, |w| w.max(time));
        self.watermark = Some(watermark);
        let mut out = self.expire(watermark, now);
        let Some(rule) = self.rules.get(candidate.rule_index).cloned() else {
            self.stats.passed += 1;
            out.push(candidate.into_alert());
            return out;
        };
        // What a fired threshold adds to the alert; the alert is rendered only once the
        // candidate is known to pass.
        let mut fired_threshold: Option<(u64, String, Duration)> = None;
        if let Some(spec) = rule.threshold {
            let mut fired: Option<(u64, String)> = None;
            let mut late = false;
            for (gi, group) in candidate.groups.iter().enumerate() {
                let key = format!("t\u{1f}{}\u{1f}{gi}\u{1f}{group}", rule.id);
                let mut w = match self.state.get(&key) {
                    Some(Entry::Threshold(w)) => w,
                    _ => ThresholdWindow::default(),
                };
                match w.observe(&spec, time, watermark) {
                    ThresholdOutcome::Fired(n) => {
                        if fired.is_none() {
                            fired = Some((n, group.clone()));
                        }
                    }
                    ThresholdOutcome::Late => late = true,
                    ThresholdOutcome::Counted(_) => {}
                }
                match w.expires(&spec) {
                    Some(exp) => self.state.put(
                        &key,
                        Entry::Threshold(w),
                        Expiry {
                            event_time: exp,
                            wall: now + spec.window + spec.tolerance,
                        },
                    ),
                    None => {
                        self.state.remove(&key);
                    }
                }
            }
            match fired {
                Some((n, group)) => fired_threshold = Some((n, group, spec.window)),
                None => {
                    if late {
                        self.stats.late += 1;
                    } else {
                        self.stats.held += 1;
                    }
                    return out;
                }
            }
        }
        let dedup = rule
            .dedup
            .zip(candidate.dedup.take())
            .map(|(spec, key)| (spec, format!("d\u{1f}{}\u{1f}{key}", rule.id)));
        if let Some((spec, skey)) = &dedup {
            match self.state.get(skey) {
                Some(Entry::Dedup(mut e)) if e.covers(spec, time) => {
                    e.repeats += 1;
                    e.last_time = e.last_time.max(time);
                    let exp = e.expires(spec);
                    self.state.put(
                        skey,
                        Entry::Dedup(e),
                        Expiry {
                            event_time: exp,
                            wall: now + spec.window + spec.tolerance,
                        },
                    );
                    self.stats.folded += 1;
                    return out;
                }
                Some(Entry::Dedup(old)) if old.repeats > 0 => {
                    self.stats.summaries += 1;
                    out.push(old.summary());
                }
                _ => {}
            }
        }
        // The candidate passes: only now is its alert rendered.
        let mut alert = candidate.into_alert();
        if let Some((n, group, window)) = fired_threshold {
            alert.title = format!("{} ({n} in {})", alert.title, format_duration(window));
            alert.fields.insert("threshold_count".into(), n.to_string());
            alert.fields.insert("threshold_group".into(), group);
            alert
                .fields
                .insert("threshold_window".into(), format_duration(window));
        }
        if let Some((spec, skey)) = dedup {
            let e = DedupEntry {
                first: alert.clone(),
                first_time: time,
                last_time: time,
                repeats: 0,
            };
            let exp = e.expires(&spec);
            self.state.put(
                &skey,
                Entry::Dedup(Box::new(e)),
                Expiry {
                    event_time: exp,
                    wall: now + spec.window + spec.tolerance,
                },
            );
        }
        self.stats.passed += 1;
        out.push(alert);
        out
    }

    /// Closes windows that ended (by event time or by the clock) and returns the repeat
    /// summaries of closed dedup windows. Call it periodically when input is idle.
    pub fn tick(&mut self) -> Vec<Alert> {
        let now = self.clock.now();
        let watermark = self.watermark.unwrap_or(now);
        self.expire(watermark, now)
    }

    fn expire(&mut self, watermark: DateTime<Utc>, now: DateTime<Utc>) -> Vec<Alert> {
        let expired = self.state.take_expired(watermark, now);
        self.summaries(expired)
    }

    fn summaries(&mut self, entries: Vec<(String, Entry)>) -> Vec<Alert> {
        let mut out = Vec::new();
        for (_, e) in entries {
            if let Entry::Dedup(d) = e
                && d.repeats > 0
            {
                self.stats.summaries += 1;
                out.push(d.summary());
            }
        }
        out
    }

    /// Makes the window state durable up to here (see [`StateStore::commit`]). Call it after
    /// the alerts this state produced are themselves durable: a crash in between redoes the
    /// work from the older state, which counts every event once.
    pub fn commit(&mut self) -> Result<(), StateError> {
        self.state.commit()
    }

    /// End of input: closes every window and returns pending repeat summaries.
    pub fn flush(&mut self) -> Vec<Alert> {
        let all = self.state.drain();
        self.summaries(all)
    }
}

fn format_duration(d: Duration) -> String {
    let s = d.num_seconds();
    if s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests;
