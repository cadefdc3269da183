//! The generic webhook against the recording server: signature, headers, template,
//! failures (500, 429 with Retry-After, hang, 404) and recovery.

mod common;

use std::time::{Duration, Instant};

use common::{FAST_OUTBOX, Scratch, alert, drain};
use trailwatch_alert::{Alert, Severity};
use trailwatch_notify::RetrySelector;
use trailwatch_notify::payload::webhook::verify;
use trailwatch_testkit::{Behavior, Recorder};

#[tokio::test(flavor = "multi_thread")]
async fn signed_delivery_arrives_byte_for_byte() {
    let rec = Recorder::start().unwrap();
    let s = Scratch::new();
    let secret = s.secret("hmac", "topsecret");
    let n = s.notifier(&format!(
        "destinations:
  hook: {{ type: webhook, url: '{}', signing_secret_file: '{secret}', headers: {{ X-Team: secops }} }}
routes:
  - {{ to: [hook] }}
{FAST_OUTBOX}",
        rec.url("/in")
    ));
    let a = alert(1, Severity::High);
    assert_eq!(n.enqueue(&a).unwrap(), 1);
    assert_eq!(n.enqueue(&a).unwrap(), 0, "enqueue is idempotent");
    let stats = drain(&n).await;
    assert_eq!(stats.delivered, 1);

    let reqs = rec.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/in");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-team"), Some("secops"));
    // The body is exactly the alert's serde JSON.
    assert_eq!(r.body, serde_json::to_vec(&a).unwrap());
    let back: Alert = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(back, a);
    let delivery = r.header("x-trailwatch-delivery").unwrap();
    assert_eq!(
        delivery,
        trailwatch_notify::outbox::delivery_id("key-1", "hook")
    );
    let ts = r.header("x-trailwatch-timestamp").unwrap();
    let sig = r.header("x-trailwatch-signature").unwrap();
    assert!(sig.starts_with("sha256="), "{sig}");
    assert!(verify(b"topsecret", ts, &r.body, sig));
    assert!(!verify(b"wrong", ts, &r.body, sig));
    let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap();
    assert!((0..60).contains(&age));
}

#[tokio::test(flavor = "multi_thread")]
async fn template_renders_json_body() {
    let rec = Recorder::start().unwrap();
    let s = Scratch::new();
    let n = s.notifier(&format!(
        r#"destinations:
  hook:
    type: webhook
    url: '{}'
    template: '{{"text": {{{{ alert.title }}}}, "severity": {{{{ alert.severity }}}}, "id": {{{{ delivery_id }}}}}}'
routes:
  - {{ to: [hook] }}
{FAST_OUTBOX}"#,
        rec.url("/t")
    ));
    let mut a = alert(2, Severity::Low);
    a.title = "Quote \" and <tag>".into();
    n.enqueue(&a).unwrap();
    drain(&n).await;
    let r = &rec.requests()[0];
    let body = r.json();
    assert_eq!(body["text"], "Quote \" and <tag>");
    assert_eq!(body["severity"], "low");
    assert_eq!(body["id"], r.header("x-trailwatch-delivery").unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried_until_it_comes_back() {
    let rec = Recorder::start().unwrap();
    rec.push_next(3, Behavior::Status(503));
    let s = Scratch::new();
    let n = s.notifier(&format!(
        "destinations:\n  hook: {{ type: webhook, url: '{}' }}\nroutes:\n  - {{ to: [hook] }}\n{FAST_OUTBOX}",
        rec.url("/x")
    ));
    n.enqueue(&alert(3, Severity::High)).unwrap();
    let stats = drain(&n).await;
    assert_eq!((stats.delivered, stats.retried, stats.dead), (1, 3, 0));
    let statuses: Vec<u16> = rec.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 503, 200]);
    // Every attempt carries the same delivery id, so the receiver can dedup.
    let ids: std::collections::BTreeSet<_> = rec
        .requests()
        .iter()
        .map(|r| r.header("x-trailwatch-delivery").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_is_honoured() {
    let rec = Recorder::start().unwrap();
    rec.push_next(1, Behavior::RetryAfter(2));
    let s = Scratch::new();
    let n = s.notifier(&format!(
        "destinations:\n  hook: {{ type: webhook, url: '{}' }}\nroutes:\n  - {{ to: [hook] }}\n{FAST_OUTBOX}",
        rec.url("/x")
    ));
    n.enqueue(&alert(4, Severity::High)).unwrap();
    n.enqueue(&alert(5, Severity::High)).unwrap();
    let start = Instant::now();
    let stats = drain(&n).await;
    let elapsed = start.elapsed();
    assert_eq!(stats.delivered, 2);
    // Base delay is 20 ms; only Retry-After explains waiting ~2 s.
    assert!(elapsed >= Duration::from_millis(1900), "{elapsed:?}");
    assert_eq!(rec.requests()[0].status, 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_server_times_out_and_is_retried() {
    let rec = Recorder::start().unwrap();
    rec.push_next(1, Behavior::Hang);
    let s = Scratch::new();
    let n = s.notifier(&format!(
        "destinations:\n  hook: {{ type: webhook, url: '{}', timeout_seconds: 1 }}\nroutes:\n  - {{ to: [hook] }}\n{FAST_OUTBOX}",
        rec.url("/x")
    ));
    n.enqueue(&alert(6, Severity::High)).unwrap();
    let stats = drain(&n).await;
    assert_eq!((stats.delivered, stats.retried), (1, 1));
    assert_eq!(rec.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_errors_go_to_dead_letters_and_retry_resends() {
    let rec = Recorder::start().unwrap();
    rec.set_behavior(Behavior::Status(404));
    let s = Scratch::new();
    let token_url = rec.url("/services/T000/B000/SECRET-TOKEN-XYZ");
    let url_file = s.secret("url", &token_url);
    let n = s.notifier(&format!(
        "destinations:\n  hook: {{ type: webhook, url_file: '{url_file}' }}\nroutes:\n  - {{ to: [hook] }}\n{FAST_OUTBOX}"
    ));
    n.enqueue(&alert(7, Severity::High)).unwrap();
    let stats = drain(&n).await;
    assert_eq!((stats.delivered, stats.dead), (0, 1));
    let dead = n.dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 1, "a 404 is not retried");
    assert!(
        dead[0].last_error.contains("HTTP 404"),
        "{}",
        dead[0].last_error
    );
    assert!(!dead[0].last_error.contains("SECRET-TOKEN"));
    let report = trailwatch_notify::commands::dead(&n).unwrap().to_string();
    assert!(
        report.contains("hook") && report.contains("Alert number 7"),
        "{report}"
    );

    rec.set_behavior(Behavior::Ok);
    let retried = trailwatch_notify::commands::retry(&n, &RetrySelector::All).unwrap();
    assert_eq!(retried.requeued, 1);
    let stats = drain(&n).await;
    assert_eq!(stats.delivered, 1);
    assert!(n.dead_letters().unwrap().is_empty());
    assert_eq!(rec.accepted().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_failures_end_in_dead_letters() {
    let rec = Recorder::start().unwrap();
    rec.set_behavior(Behavior::Status(500));
    let s = Scratch::new();
    let n = s.notifier(&format!(
        "destinations:\n  hook: {{ type: webhook, url: '{}' }}\nroutes:\n  - {{ to: [hook] }}\n{FAST_OUTBOX}",
        rec.url("/x")
    ));
    n.enqueue(&alert(8, Severity::High)).unwrap();
    let stats = drain(&n).await;
    assert_eq!((stats.retried, stats.dead), (4, 1));
    assert_eq!(rec.requests().len(), 5, "max_attempts is 5");
    assert_eq!(n.dead_letters().unwrap()[0].attempts, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn transport_errors_do_not_leak_the_url() {
    // A port nobody listens on.
    let port = trailwatch_testkit::free_port().unwrap();
    let s = Scratch::new();
    let url_file = s.secret(
        "url",
        &format!("http://127.0.0.1:{port}/hooks/SECRET-TOKEN-ABC"),
    );
    let n = s.notifier(&format!(
        "destinations:\n  hook: {{ type: webhook, url_file: '{url_file}' }}\nroutes:\n  - {{ to: [hook] }}\noutbox: {{ base_delay_ms: 5, max_attempts: 2 }}"
    ));
    n.enqueue(&alert(9, Severity::High)).unwrap();
    drain(&n).await;
    let dead = n.dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        !dead[0].last_error.contains("SECRET-TOKEN"),
        "{}",
        dead[0].last_error
    );
    let err = n.send_test("hook").await.unwrap_err().to_string();
    assert!(!err.contains("SECRET-TOKEN"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn send_test_reaches_the_destination_without_the_outbox() {
    let rec = Recorder::start().unwrap();
    let s = Scratch::new();
    let n = s.notifier(&format!(
        "destinations:\n  hook: {{ type: webhook, url: '{}' }}\n",
        rec.url("/x")
    ));
    let report = trailwatch_notify::commands::test(&n, "hook").await.unwrap();
    assert!(
        report
            .to_string()
            .starts_with("sent a test alert to hook (webhook)")
    );
    let body = rec.requests()[0].json();
    assert_eq!(body["rule_id"], "trailwatch-test");
    assert_eq!(n.counts().unwrap(), Default::default());
    assert!(matches!(
        n.send_test("nope").await,
        Err(trailwatch_notify::NotifyError::UnknownDestination(_))
    ));
}
