//! Routing, digests, the JSON Lines destination and the outbox across reopenings.

mod common;

use common::{Scratch, alert, drain};
use trailwatch_alert::{Alert, Severity};

#[tokio::test(flavor = "multi_thread")]
async fn jsonl_file_gets_one_line_per_alert_and_survives_reopening() {
    let s = Scratch::new();
    let file = s.dir.path().join("out/alerts.jsonl");
    let yaml = format!(
        "destinations:\n  file: {{ type: jsonl, path: '{}' }}\nroutes:\n  - {{ to: [file] }}\n",
        file.display()
    );
    {
        let n = s.notifier(&yaml);
        n.enqueue_batch(&[alert(1, Severity::Low), alert(2, Severity::High)])
            .unwrap();
        // Dropped before delivering: the alerts wait in the outbox.
    }
    let n = s.notifier(&yaml);
    // Re-processing the same events enqueues nothing new.
    assert_eq!(n.enqueue(&alert(1, Severity::Low)).unwrap(), 0);
    assert_eq!(drain(&n).await.delivered, 2);
    let lines: Vec<Alert> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].dedup_key, "key-1");
    assert_eq!(lines[1].dedup_key, "key-2");
    assert_eq!(n.counts().unwrap().sent, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_routes_hold_low_alerts_and_send_high_ones_now() {
    let s = Scratch::new();
    let file = s.dir.path().join("alerts.jsonl");
    let n = s.notifier(&format!(
        "destinations:
  file: {{ type: jsonl, path: '{}' }}
routes:
  - {{ rules: [sg-open], to: [file], digest_minutes: 15, digest_max_severity: low }}
",
        file.display()
    ));
    n.enqueue_batch(&[
        alert(1, Severity::Low),
        alert(2, Severity::Info),
        alert(3, Severity::High),
    ])
    .unwrap();
    let counts = n.counts().unwrap();
    assert_eq!((counts.digest, counts.pending), (2, 1));
    assert_eq!(drain(&n).await.delivered, 1);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 1);
    assert!(text.contains("\"key-3\""));
    assert_eq!(n.counts().unwrap().digest, 2, "the window has not closed");
}

#[tokio::test(flavor = "multi_thread")]
async fn destinations_removed_from_the_config_become_dead_letters() {
    let s = Scratch::new();
    let file = s.dir.path().join("a.jsonl");
    {
        let n = s.notifier(&format!(
            "destinations:\n  old: {{ type: jsonl, path: '{}' }}\nroutes:\n  - {{ to: [old] }}\n",
            file.display()
        ));
        n.enqueue(&alert(1, Severity::High)).unwrap();
    }
    let n = s.notifier("destinations: {}\n");
    let dead = n.dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error, "destination old is not configured");
    assert_eq!(drain(&n).await.delivered, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn run_stops_on_shutdown_and_delivers_what_arrives_meanwhile() {
    let s = Scratch::new();
    let file = s.dir.path().join("live.jsonl");
    let n = std::sync::Arc::new(s.notifier(&format!(
        "destinations:\n  file: {{ type: jsonl, path: '{}' }}\nroutes:\n  - {{ to: [file] }}\n",
        file.display()
    )));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = {
        let n = n.clone();
        tokio::spawn(async move {
            n.run(async {
                let _ = stop_rx.await;
            })
            .await
        })
    };
    n.enqueue(&alert(1, Severity::High)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while n.counts().unwrap().sent < 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop_tx.send(()).unwrap();
    let stats = worker.await.unwrap().unwrap();
    assert_eq!(stats.delivered, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_digest_window_is_delivered_as_one_alert() {
    use trailwatch_notify::outbox::{Schedule, now_ms};
    let s = Scratch::new();
    let file = s.dir.path().join("digest.jsonl");
    let n = s.notifier(&format!(
        "destinations:\n  file: {{ type: jsonl, path: '{}' }}\n",
        file.display()
    ));
    // Three alerts batched into a 15-minute window that closed a minute ago.
    let start = now_ms() - 16 * 60_000;
    let schedule = Schedule::Digest {
        start_ms: start,
        len_ms: 15 * 60_000,
    };
    let alerts = [
        alert(1, Severity::Low),
        alert(2, Severity::Medium),
        alert(3, Severity::Info),
    ];
    let items: Vec<_> = alerts
        .iter()
        .map(|a| (a, vec![("file".to_owned(), schedule)]))
        .collect();
    assert_eq!(n.outbox().enqueue(&items).unwrap(), 3);
    assert_eq!(drain(&n).await.delivered, 1);
    let lines: Vec<Alert> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    let digest = &lines[0];
    assert_eq!(digest.rule_id, "trailwatch-digest");
    assert_eq!(digest.severity, Severity::Medium);
    assert!(
        digest.title.starts_with("3 alerts in the 15-minute window"),
        "{}",
        digest.title
    );
    assert_eq!(digest.body.lines().count(), 3);
    assert_eq!(digest.dedup_key, format!("digest:file:{start}"));
    let counts = n.counts().unwrap();
    assert_eq!((counts.digested, counts.sent, counts.digest), (3, 1, 0));
}
