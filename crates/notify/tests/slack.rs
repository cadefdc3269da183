//! Slack against the recording server: webhook and chat.postMessage payloads, channel
//! choice, `ok: false` answers, the default 1 message/s rate limit, failure and recovery.

mod common;

use std::time::{Duration, Instant};

use common::{FAST_OUTBOX, Scratch, alert, drain};
use serde_json::json;
use trailwatch_alert::Severity;
use trailwatch_testkit::{Behavior, Recorder};

#[tokio::test(flavor = "multi_thread")]
async fn webhook_payload_is_block_kit_with_colour_and_button() {
    let rec = Recorder::start().unwrap();
    rec.set_ok_response(200, "ok");
    let s = Scratch::new();
    let url = s.secret("slack-url", &rec.url("/services/T1/B2/token"));
    let n = s.notifier(&format!(
        "destinations:\n  sec-slack: {{ type: slack, webhook_url_file: '{url}' }}\nroutes:\n  - {{ to: [sec-slack] }}\n{FAST_OUTBOX}"
    ));
    let mut a = alert(1, Severity::Low);
    a.event_name = "RevokeSecurityGroupIngress".into();
    n.enqueue(&a).unwrap();
    assert_eq!(drain(&n).await.delivered, 1);
    let r = &rec.requests()[0];
    assert_eq!(r.path, "/services/T1/B2/token");
    assert_eq!(r.header("authorization"), None);
    let expected = json!({
        "text": "[LOW] Alert number 1",
        "unfurl_links": false,
        "attachments": [{
            "color": "#d93025",
            "blocks": [
                { "type": "header", "text": { "type": "plain_text", "text": "Alert number 1", "emoji": false } },
                { "type": "section", "text": { "type": "mrkdwn", "text": "alice allowed 0.0.0.0/0 on tcp/22 in sg-0123." } },
                { "type": "section", "fields": [
                    { "type": "mrkdwn", "text": "*Principal*\nalice (IAMUser)" },
                    { "type": "mrkdwn", "text": "*Action*\nec2:RevokeSecurityGroupIngress" },
                    { "type": "mrkdwn", "text": "*Resource*\nsg-0123" },
                    { "type": "mrkdwn", "text": "*Account*\nprod (111122223333)" },
                    { "type": "mrkdwn", "text": "*Region*\neu-west-1" },
                    { "type": "mrkdwn", "text": "*Source IP*\n203.0.113.9" },
                    { "type": "mrkdwn", "text": "*Time*\n2026-11-23T10:00:00Z" },
                ]},
                { "type": "actions", "elements": [{
                    "type": "button", "action_id": "open_console",
                    "text": { "type": "plain_text", "text": "Open in CloudTrail" },
                    "url": a.console_url,
                }]},
                { "type": "context", "elements": [{ "type": "mrkdwn", "text": "LOW · rule `sg-open`" }] },
            ],
        }],
    });
    assert_eq!(r.json(), expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn bot_token_posts_to_the_channel_per_rule_or_account() {
    let rec = Recorder::start().unwrap();
    rec.set_ok_response(200, r#"{"ok":true,"channel":"C1","ts":"1.2"}"#);
    let s = Scratch::new();
    let token = s.secret("bot", "xoxb-test-token");
    let n = s.notifier(&format!(
        "destinations:
  bot:
    type: slack
    bot_token_file: '{token}'
    api_url: '{}'
    channel: '#security'
    channel_by_account: {{ '999988887777': '#sandbox' }}
    channel_by_rule: {{ root-login: '#urgent' }}
    rate_per_second: 100
routes:
  - {{ to: [bot] }}
{FAST_OUTBOX}",
        rec.url("/api")
    ));
    let plain = alert(1, Severity::Medium);
    let mut sandbox = alert(2, Severity::Medium);
    sandbox.account = "999988887777".into();
    let mut root = alert(3, Severity::Critical);
    root.rule_id = "root-login".into();
    root.account = "999988887777".into();
    n.enqueue_batch(&[plain, sandbox, root]).unwrap();
    assert_eq!(drain(&n).await.delivered, 3);
    let reqs = rec.requests();
    assert!(reqs.iter().all(|r| r.path == "/api/chat.postMessage"));
    assert!(
        reqs.iter()
            .all(|r| r.header("authorization") == Some("Bearer xoxb-test-token"))
    );
    let mut channels: Vec<(String, String)> = reqs
        .iter()
        .map(|r| {
            let v = r.json();
            (
                v["text"].as_str().unwrap().to_owned(),
                v["channel"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    channels.sort();
    assert_eq!(
        channels,
        [
            ("[CRITICAL] Alert number 3".to_owned(), "#urgent".to_owned()),
            ("[MEDIUM] Alert number 1".to_owned(), "#security".to_owned()),
            ("[MEDIUM] Alert number 2".to_owned(), "#sandbox".to_owned()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ok_false_is_a_failure() {
    let rec = Recorder::start().unwrap();
    rec.set_ok_response(200, r#"{"ok":false,"error":"channel_not_found"}"#);
    let s = Scratch::new();
    let token = s.secret("bot", "xoxb-1");
    let n = s.notifier(&format!(
        "destinations:\n  bot: {{ type: slack, bot_token_file: '{token}', api_url: '{}', channel: C1 }}\nroutes:\n  - {{ to: [bot] }}\n{FAST_OUTBOX}",
        rec.url("")
    ));
    n.enqueue(&alert(1, Severity::High)).unwrap();
    let stats = drain(&n).await;
    assert_eq!((stats.delivered, stats.dead), (0, 1));
    let dead = n.dead_letters().unwrap();
    assert!(
        dead[0].last_error.contains("channel_not_found"),
        "{}",
        dead[0].last_error
    );
    assert!(!dead[0].last_error.contains("xoxb"));
}

#[tokio::test(flavor = "multi_thread")]
async fn default_rate_limit_is_one_per_second_and_failures_recover() {
    let rec = Recorder::start().unwrap();
    rec.set_ok_response(200, "ok");
    rec.push_next(1, Behavior::Status(500));
    let s = Scratch::new();
    let url = s.secret("slack-url", &rec.url("/services/T/B/x"));
    let n = s.notifier(&format!(
        "destinations:\n  s: {{ type: slack, webhook_url_file: '{url}' }}\nroutes:\n  - {{ to: [s] }}\n{FAST_OUTBOX}"
    ));
    n.enqueue_batch(&[
        alert(1, Severity::High),
        alert(2, Severity::High),
        alert(3, Severity::High),
    ])
    .unwrap();
    let start = Instant::now();
    let stats = drain(&n).await;
    let elapsed = start.elapsed();
    assert_eq!((stats.delivered, stats.retried), (3, 1));
    // Four requests at most one per second: at least three seconds.
    assert_eq!(rec.requests().len(), 4);
    assert!(elapsed >= Duration::from_millis(2900), "{elapsed:?}");
}
