//! Gate tests: thresholds, dedup and windows under an injected clock, including
//! out-of-order events, checked against simple models with proptest.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use trailwatch_alert::{Alert, Severity};
use trailwatch_config::Config;

use super::*;
use crate::clock::ManualClock;
use crate::state::MemoryState;
use crate::{Candidate, PendingAlert, RuleSet, RuleSource};

fn t(s: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_722_470_400 + s, 0).unwrap_or_default()
}

fn ruleset(extra: &str) -> RuleSet {
    let text = format!(
        "id: r\ntitle: T\nseverity: low\nmatch: {{source: [aws.ec2]}}\nalert: {{title: x}}\n{extra}"
    );
    RuleSet::compile(&[RuleSource::new("t.yaml", text)], &Config::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn alert(i: usize) -> Alert {
    Alert {
        rule_id: "r".into(),
        severity: Severity::Low,
        title: format!("event {i}"),
        body: String::new(),
        event_id: format!("e{i}"),
        event_time: String::new(),
        event_source: String::new(),
        event_name: String::new(),
        account: String::new(),
        account_alias: None,
        region: String::new(),
        principal: Default::default(),
        source_ip: None,
        user_agent: None,
        resources: Vec::new(),
        console_url: String::new(),
        tags: Vec::new(),
        runbook: None,
        fields: Default::default(),
        item: None,
        dedup_key: format!("r:e{i}"),
        remediation: None,
        repeats: 0,
        origin: Default::default(),
    }
}

fn candidate(i: usize, time: DateTime<Utc>, group: &str) -> Candidate {
    Candidate {
        alert: PendingAlert::Ready(Box::new(alert(i))),
        rule_index: 0,
        time,
        groups: vec![group.to_owned()],
        dedup: Some(group.to_owned()),
    }
}

/// Feeds (seconds, group) pairs with the clock following event time; returns the alerts
/// (including the final flush).
fn feed(set: &RuleSet, events: &[(i64, &str)]) -> (Vec<Alert>, GateStats) {
    let clock = Arc::new(ManualClock::new(t(0)));
    let mut gate = Gate::new(set, Box::new(MemoryState::new()), clock.clone());
    let mut out = Vec::new();
    for (i, (s, g)) in events.iter().enumerate() {
        if t(*s) > clock.now() {
            clock.set(t(*s));
        }
        out.extend(gate.admit(candidate(i, t(*s), g)));
    }
    out.extend(gate.flush());
    (out, gate.stats())
}

/// Reference model for in-order thresholds: fire when the events of the last `window`
/// reach `count`, then start afresh.
fn model_threshold(times: &[i64], count: usize, window: i64) -> usize {
    let mut held: Vec<i64> = Vec::new();
    let mut fired = 0;
    for &x in times {
        held.retain(|h| x - h <= window);
        held.push(x);
        if held.len() >= count {
            fired += 1;
            held.clear();
        }
    }
    fired
}

#[test]
fn threshold_fires_once_per_burst_and_names_the_group() {
    let set = ruleset("threshold: {count: 3, window: 1m}\n");
    let (alerts, stats) = feed(
        &set,
        &[(0, "a"), (10, "b"), (20, "a"), (30, "a"), (40, "b")],
    );
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].fields["threshold_group"], "a");
    assert_eq!(alerts[0].fields["threshold_count"], "3");
    assert_eq!(alerts[0].title, "event 3 (3 in 1m)");
    assert_eq!(
        stats.admitted,
        stats.passed + stats.held + stats.folded + stats.late
    );
}

#[test]
fn dedup_folds_repeats_and_summarises_when_the_window_closes() {
    let set = ruleset("dedup: {window: 10m}\n");
    // Three in the first window, then one after it: the later event closes the window.
    let (alerts, stats) = feed(&set, &[(0, "k"), (60, "k"), (120, "k"), (3600, "k")]);
    let titles: Vec<&str> = alerts.iter().map(|a| a.title.as_str()).collect();
    assert_eq!(
        titles,
        ["event 0", "event 0 (repeated 2 more times)", "event 3"]
    );
    assert_eq!(alerts[1].repeats, 2);
    assert_ne!(alerts[1].dedup_key, alerts[0].dedup_key);
    assert_eq!(stats.folded, 2);
}

#[test]
fn idle_windows_close_by_the_clock() {
    let set = ruleset("dedup: {window: 10m, tolerance: 1m}\n");
    let clock = Arc::new(ManualClock::new(t(0)));
    let mut gate = Gate::new(&set, Box::new(MemoryState::new()), clock.clone());
    assert_eq!(gate.admit(candidate(0, t(0), "k")).len(), 1);
    assert!(gate.admit(candidate(1, t(5), "k")).is_empty());
    // No new events; only wall-clock time passes.
    clock.advance(Duration::minutes(5));
    assert!(gate.tick().is_empty());
    clock.advance(Duration::minutes(10));
    let summaries = gate.tick();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].repeats, 1);
    assert!(gate.flush().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// In order, the gate agrees with the reference model.
    #[test]
    fn threshold_matches_model_in_order(
        mut times in proptest::collection::vec(0i64..3_000, 0..60),
        count in 1usize..6,
        window in 10i64..600,
    ) {
        times.sort_unstable();
        let set = ruleset(&format!("threshold: {{count: {count}, window: {window}s}}\n"));
        let events: Vec<(i64, &str)> = times.iter().map(|s| (*s, "g")).collect();
        let (alerts, stats) = feed(&set, &events);
        prop_assert_eq!(alerts.len(), model_threshold(&times, count, window));
        prop_assert_eq!(stats.admitted, stats.passed + stats.held + stats.folded + stats.late);
    }

    /// Out of order but all within one window: enough events always fire, and never more
    /// often than the events allow.
    #[test]
    fn threshold_tolerates_out_of_order_within_a_window(
        offsets in proptest::collection::vec(0i64..300, 1..40),
        count in 1usize..8,
    ) {
        let set = ruleset(&format!("threshold: {{count: {count}, window: 5m, tolerance: 5m}}\n"));
        let events: Vec<(i64, &str)> = offsets.iter().map(|s| (*s, "g")).collect();
        let (alerts, _) = feed(&set, &events);
        if offsets.len() >= count {
            prop_assert!(!alerts.is_empty());
        } else {
            prop_assert!(alerts.is_empty());
        }
        prop_assert!(alerts.len() <= offsets.len() / count);
    }

    /// Groups never mix: alerts per group equal the model run on that group alone.
    #[test]
    fn threshold_groups_are_independent(
        mut events in proptest::collection::vec((0i64..2_000, prop::bool::ANY), 0..60),
        count in 1usize..5,
    ) {
        events.sort_unstable();
        let set = ruleset(&format!("threshold: {{count: {count}, window: 2m}}\n"));
        let evs: Vec<(i64, &str)> = events.iter().map(|(s, b)| (*s, if *b { "x" } else { "y" })).collect();
        let (alerts, _) = feed(&set, &evs);
        let per = |g: bool| model_threshold(&events.iter().filter(|(_, b)| *b == g).map(|(s, _)| *s).collect::<Vec<_>>(), count, 120);
        prop_assert_eq!(alerts.len(), per(true) + per(false));
    }

    /// Dedup never loses or invents an event: every event is either an alert of its own or
    /// counted once in a repeat summary, whatever the order and the keys.
    #[test]
    fn dedup_conserves_events(
        events in proptest::collection::vec((0i64..20_000, 0u8..3), 0..80),
        window in 60i64..3_600,
        tolerance in 0i64..600,
    ) {
        let set = ruleset(&format!("dedup: {{window: {window}s, tolerance: {tolerance}s}}\n"));
        let keys = ["a", "b", "c"];
        let evs: Vec<(i64, &str)> = events.iter().map(|(s, k)| (*s, keys[usize::from(*k)])).collect();
        let (alerts, stats) = feed(&set, &evs);
        let accounted: u64 = alerts.iter().map(|a| if a.repeats > 0 { a.repeats } else { 1 }).sum();
        prop_assert_eq!(accounted as usize, events.len());
        prop_assert_eq!(stats.admitted, stats.passed + stats.folded);
    }

    /// In order, dedup sends exactly one alert per key per window.
    #[test]
    fn dedup_one_alert_per_window_in_order(
        mut times in proptest::collection::vec(0i64..20_000, 1..60),
        window in 60i64..3_600,
    ) {
        times.sort_unstable();
        let set = ruleset(&format!("dedup: {{window: {window}s, tolerance: 0s}}\n"));
        let evs: Vec<(i64, &str)> = times.iter().map(|s| (*s, "k")).collect();
        let (alerts, _) = feed(&set, &evs);
        // Model: a new window starts at the first event past the previous window's end.
        let mut windows = 0;
        let mut start: Option<i64> = None;
        for &x in &times {
            if start.is_none_or(|s| x > s + window) {
                windows += 1;
                start = Some(x);
            }
        }
        let firsts = alerts.iter().filter(|a| a.repeats == 0).count();
        prop_assert_eq!(firsts, windows);
    }
}
