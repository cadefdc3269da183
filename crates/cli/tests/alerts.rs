//! `trailwatch alerts test | dead | retry` against a real local HTTP server.

mod common;

use std::time::Duration;

use common::trailwatch;
use trailwatch_testkit::{Behavior, Recorder};

fn config(dir: &std::path::Path, url: &str) -> String {
    let path = dir.join("trailwatch.yaml");
    std::fs::write(
        &path,
        format!(
            "accounts: {{ \"111122223333\": acme-prod }}\n\
             destinations:\n  hook: {{ type: webhook, url: '{url}' }}\n\
             routes:\n  - {{ to: [hook] }}\n\
             outbox: {{ path: '{}', base_delay_ms: 5, max_attempts: 2 }}\n",
            dir.join("outbox.sqlite").display()
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn test_alert_reaches_the_destination() {
    let recorder = Recorder::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &recorder.url("/hook"));
    let run = trailwatch(&["alerts", "test", "hook", "--config", &cfg]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let got = recorder.wait_for_accepted(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert!(got[0].header("X-Trailwatch-Delivery").is_some());
    assert!(
        got[0].json().get("rule_id").is_some(),
        "{:?}",
        got[0].json()
    );
}

#[test]
fn failed_test_alert_exits_non_zero_and_unknown_destination_is_named() {
    let recorder = Recorder::start().unwrap();
    recorder.set_behavior(Behavior::Status(500));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &recorder.url("/hook"));
    let run = trailwatch(&["alerts", "test", "hook", "--config", &cfg]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("hook"), "{}", run.stderr);
    let run = trailwatch(&["alerts", "test", "nope", "--config", &cfg]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("nope"), "{}", run.stderr);
}

#[test]
fn dead_lists_nothing_on_a_fresh_outbox_and_retry_is_harmless() {
    let recorder = Recorder::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &recorder.url("/hook"));
    let run = trailwatch(&["alerts", "dead", "--format", "json", "--config", &cfg]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(report["dead"].as_array().map(Vec::len), Some(0), "{report}");
    let run = trailwatch(&["alerts", "retry", "--config", &cfg]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
