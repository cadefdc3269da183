//! PagerDuty and Opsgenie against the recording server.

mod common;

use common::{FAST_OUTBOX, Scratch, alert, drain};
use trailwatch_alert::Severity;
use trailwatch_testkit::{Behavior, Recorder};

#[tokio::test(flavor = "multi_thread")]
async fn pagerduty_trigger_with_dedup_key_survives_a_rate_limit() {
    let rec = Recorder::start().unwrap();
    rec.set_ok_response(
        202,
        r#"{"status":"success","message":"Event processed","dedup_key":"x"}"#,
    );
    rec.push_next(1, Behavior::RetryAfter(1));
    rec.push_next(1, Behavior::Status(502));
    let s = Scratch::new();
    let key = s.secret("pd", "R0UTINGKEY");
    let n = s.notifier(&format!(
        "destinations:
  oncall: {{ type: pagerduty, routing_key_file: '{key}', events_url: '{}', severity_map: {{ medium: error }} }}
routes:
  - {{ min_severity: medium, to: [oncall] }}
{FAST_OUTBOX}",
        rec.url("/v2/enqueue")
    ));
    n.enqueue(&alert(1, Severity::Medium)).unwrap();
    // Below min_severity: not routed to PagerDuty (goes to the implicit stdout).
    assert_eq!(n.enqueue(&alert(2, Severity::Low)).unwrap(), 1);
    let stats = drain(&n).await;
    assert_eq!(stats.delivered, 2);
    let reqs = rec.requests();
    assert_eq!(
        reqs.iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 502, 202]
    );
    let body = reqs[2].json();
    assert_eq!(body["routing_key"], "R0UTINGKEY");
    assert_eq!(body["event_action"], "trigger");
    assert_eq!(body["dedup_key"], "key-1");
    assert_eq!(body["payload"]["severity"], "error");
    assert_eq!(body["payload"]["summary"], "Alert number 1");
    assert_eq!(body["payload"]["source"], "trailwatch");
    assert_eq!(body["payload"]["timestamp"], "2026-11-23T10:00:00Z");
    // All attempts carry the same dedup key: PagerDuty opens one incident.
    assert!(reqs.iter().all(|r| r.json()["dedup_key"] == "key-1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn opsgenie_alert_with_alias_and_geniekey() {
    let rec = Recorder::start().unwrap();
    rec.set_ok_response(
        202,
        r#"{"result":"Request will be processed","took":0.1,"requestId":"r1"}"#,
    );
    rec.push_next(2, Behavior::Status(500));
    let s = Scratch::new();
    let key = s.secret("og", "genie-key-1");
    let n = s.notifier(&format!(
        "destinations:
  og: {{ type: opsgenie, api_key_file: '{key}', api_url: '{}', responders: [secops] }}
routes:
  - {{ tags: [attack.t1562], to: [og] }}
{FAST_OUTBOX}",
        rec.url("")
    ));
    n.enqueue(&alert(5, Severity::High)).unwrap();
    let stats = drain(&n).await;
    assert_eq!((stats.delivered, stats.retried), (1, 2));
    let r = rec.accepted().remove(0);
    assert_eq!(r.path, "/v2/alerts");
    assert_eq!(r.header("authorization"), Some("GenieKey genie-key-1"));
    let body = r.json();
    assert_eq!(body["alias"], "key-5");
    assert_eq!(body["message"], "Alert number 5");
    assert_eq!(body["priority"], "P2");
    assert_eq!(body["responders"][0]["name"], "secops");
    assert_eq!(body["source"], "trailwatch");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_is_retried_then_dead_and_never_shown() {
    let rec = Recorder::start().unwrap();
    let s = Scratch::new();
    let n = s.notifier(&format!(
        "destinations:
  og: {{ type: opsgenie, api_key_file: '{}/missing', api_url: '{}' }}
routes:
  - {{ to: [og] }}
{FAST_OUTBOX}",
        s.dir.path().display(),
        rec.url("")
    ));
    n.enqueue(&alert(1, Severity::High)).unwrap();
    let stats = drain(&n).await;
    assert_eq!(stats.dead, 1);
    assert!(rec.requests().is_empty());
    let dead = n.dead_letters().unwrap();
    assert!(
        dead[0].last_error.contains("cannot read secret file"),
        "{}",
        dead[0].last_error
    );
}
