//! Crash safety: a worker process delivering 1,000 alerts to two flaky servers (30 % of
//! requests fail) is SIGKILLed at random moments and restarted until it finishes. Every alert
//! must arrive at least once at each destination, and the deduplicating views (the webhook's
//! delivery id, PagerDuty's dedup_key) must show exactly 1,000 distinct alerts.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use trailwatch_testkit::{Behavior, Recorder};

const ALERTS: usize = 1000;

#[test]
fn kill_minus_nine_loses_nothing_and_dedup_views_have_no_duplicates() {
    let hook = Recorder::start().unwrap();
    let pd = Recorder::start().unwrap();
    pd.set_ok_response(202, r#"{"status":"success"}"#);
    hook.set_seed(11);
    pd.set_seed(12);
    hook.set_behavior(Behavior::Flaky(0.3));
    pd.set_behavior(Behavior::Flaky(0.3));

    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox.sqlite");
    let key_file = dir.path().join("routing-key");
    std::fs::write(&key_file, "RK\n").unwrap();
    let worker = env!("CARGO_BIN_EXE_trailwatch-notify-worker");

    let mut rng = fastrand::Rng::with_seed(2026);
    let mut kills = 0;
    let mut finished = false;
    let started = Instant::now();
    for run in 0..300 {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "not done after 4 minutes"
        );
        let mut child = Command::new(worker)
            .arg(&outbox)
            .arg(hook.url(""))
            .arg(pd.url(""))
            .arg(&key_file)
            .arg(ALERTS.to_string())
            .env("RUST_LOG", "off")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill at a random moment in the first 30 runs; after that let it finish.
        let kill_after = Duration::from_millis(rng.u64(5..100));
        let deadline = Instant::now()
            + if run < 30 {
                kill_after
            } else {
                Duration::from_secs(120)
            };
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        match status {
            Some(status) => {
                assert!(status.success(), "worker failed: {status}");
                finished = true;
                break;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
            }
        }
    }
    assert!(finished, "the worker never finished");
    assert!(
        kills >= 5,
        "only {kills} kills: the test did not exercise crashes"
    );

    // Webhook: every alert accepted at least once; its delivery ids are exactly 1,000.
    let mut by_delivery: BTreeMap<String, usize> = BTreeMap::new();
    let mut hook_keys = BTreeSet::new();
    for r in hook.accepted() {
        *by_delivery
            .entry(r.header("x-trailwatch-delivery").unwrap().to_owned())
            .or_default() += 1;
        hook_keys.insert(r.json()["dedup_key"].as_str().unwrap().to_owned());
    }
    let expected: BTreeSet<String> = (0..ALERTS).map(|i| format!("crash-{i}")).collect();
    assert_eq!(hook_keys, expected);
    assert_eq!(by_delivery.len(), ALERTS);

    // PagerDuty view: distinct dedup keys are exactly the 1,000 alerts.
    let mut pd_keys: BTreeMap<String, usize> = BTreeMap::new();
    for r in pd.accepted() {
        *pd_keys
            .entry(r.json()["dedup_key"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(pd_keys.keys().cloned().collect::<BTreeSet<_>>(), expected);

    // Raw duplicates (accepted, then killed before the outbox recorded it) can only come
    // from deliveries in flight at a kill: at most concurrency (8) per kill per destination.
    let hook_dups: usize = by_delivery.values().map(|n| n - 1).sum();
    let pd_dups: usize = pd_keys.values().map(|n| n - 1).sum();
    eprintln!(
        "crash test: {kills} kills, {} webhook requests ({} accepted, {hook_dups} duplicate), {} pagerduty requests ({pd_dups} duplicate), {:?}",
        hook.requests().len(),
        hook.accepted().len(),
        pd.requests().len(),
        started.elapsed()
    );
    assert!(
        hook_dups <= kills * 8,
        "{hook_dups} duplicates for {kills} kills"
    );
    assert!(
        pd_dups <= kills * 8,
        "{pd_dups} duplicates for {kills} kills"
    );

    // The outbox agrees: everything sent, nothing pending or dead.
    let ob = trailwatch_notify::outbox::Outbox::open(&outbox).unwrap();
    let counts = ob.counts().unwrap();
    assert_eq!(
        (counts.sent, counts.pending, counts.dead),
        (2 * ALERTS as u64, 0, 0)
    );
}
