//! Alert delivery for trailwatch.
//!
//! Every alert goes first to a durable SQLite outbox ([`outbox`]), one row per
//! (alert, destination), and leaves it only when the destination accepted it. A delivery loop
//! ([`Notifier::run`] / [`Notifier::run_until_idle`]) sends due rows with per-destination
//! concurrency and rate limits, retries with exponential backoff and jitter (honouring
//! `Retry-After`), and moves deliveries that keep failing to a dead-letter list.
//!
//! Destinations: Slack (webhook or `chat.postMessage`), email (SMTP), Amazon SNS, PagerDuty
//! Events v2, Opsgenie, a generic signed webhook, stdout and a JSON Lines file.
//!
//! Code map:
//! - [`config`]: the `destinations`, `routes` and `outbox` sections: raw serde structs, then
//!   validation that reports every error as `file:line: reason`.
//! - [`payload`]: pure payload builders (Slack blocks, PagerDuty events, MIME parts, HMAC).
//! - [`outbox`]: the SQLite outbox and its state machine.
//! - [`sender`]: the only module that does network I/O.
//! - [`notifier`]: routing, the delivery loop, dead letters and `send_test`.
//! - [`commands`]: printable results for `trailwatch alerts dead|retry|test`.
//!
//! Architecture Invariant: secrets are only held in [`Secret`], whose `Debug`/`Display`
//! redact; errors and logs never contain a URL that came from a secret.

pub mod backoff;
pub mod commands;
pub mod config;
pub mod digest;
pub mod error;
pub mod notifier;
pub mod outbox;
pub mod payload;
pub mod ratelimit;
pub mod secret;
pub mod sender;

pub use config::{
    NotifyConfig, NotifyConfigError, SectionText, parse_section, parse_sections, parse_texts,
};
pub use error::{DeliveryError, NotifyError};
pub use notifier::{Notifier, RunStats};
pub use outbox::{DeadLetter, OutboxCounts, RetrySelector};
pub use secret::{Secret, SecretSource};

use trailwatch_alert::{Alert, AlertOrigin, Principal, Severity};

/// A realistic sample alert (an SSH port opened to the world), used by `send_test` and by
/// tests. `dedup_key` makes it unique.
pub fn sample_alert(rule_id: &str, severity: Severity, dedup_key: &str) -> Alert {
    let event_id = "3f6b2c1e-8d7a-4b7e-9c1d-0a2b3c4d5e6f";
    Alert {
        rule_id: rule_id.to_owned(),
        severity,
        title: "Security group opened to the world".to_owned(),
        body: "alice allowed 0.0.0.0/0 on tcp/22 in sg-0123.".to_owned(),
        event_id: event_id.to_owned(),
        event_time: "2026-11-23T10:00:00Z".to_owned(),
        event_source: "ec2.amazonaws.com".to_owned(),
        event_name: "AuthorizeSecurityGroupIngress".to_owned(),
        account: "111122223333".to_owned(),
        account_alias: Some("prod".to_owned()),
        region: "eu-west-1".to_owned(),
        principal: Principal {
            kind: "IAMUser".to_owned(),
            arn: Some("arn:aws:iam::111122223333:user/alice".to_owned()),
            name: "alice".to_owned(),
            account_id: Some("111122223333".to_owned()),
            access_key_id: Some("AKIAEXAMPLE".to_owned()),
        },
        source_ip: Some("203.0.113.9".to_owned()),
        user_agent: Some("aws-cli/2.15.0".to_owned()),
        resources: vec!["sg-0123".to_owned()],
        console_url: trailwatch_alert::console_url("eu-west-1", event_id),
        tags: vec!["attack.t1562".to_owned()],
        runbook: None,
        fields: [
            ("cidr".to_owned(), "0.0.0.0/0".to_owned()),
            ("port_range".to_owned(), "22".to_owned()),
        ]
        .into_iter()
        .collect(),
        item: None,
        dedup_key: dedup_key.to_owned(),
        remediation: None,
        repeats: 0,
        origin: AlertOrigin {
            source: "sample".to_owned(),
            record_index: None,
            message_id: None,
        },
    }
}
