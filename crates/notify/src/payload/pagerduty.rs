//! PagerDuty Events API v2 `trigger` events.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use trailwatch_alert::{Alert, Severity};

use super::{facts, truncate};

/// The default mapping to PagerDuty's four severities.
pub fn default_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "info",
    }
}

/// The event body. `dedup_key` is the alert's, so a resend after a crash updates the same
/// PagerDuty alert instead of opening a second one.
pub fn event(
    alert: &Alert,
    routing_key: &str,
    source: &str,
    overrides: &BTreeMap<Severity, String>,
) -> Value {
    let severity = overrides
        .get(&alert.severity)
        .map(String::as_str)
        .unwrap_or_else(|| default_severity(alert.severity));
    let mut details = serde_json::Map::new();
    for (label, value) in facts(alert) {
        details.insert(label.to_owned(), Value::String(value));
    }
    details.insert("rule_id".into(), Value::String(alert.rule_id.clone()));
    details.insert("event_id".into(), Value::String(alert.event_id.clone()));
    details.insert("body".into(), Value::String(alert.body.clone()));
    for (k, v) in &alert.fields {
        details.insert(k.clone(), Value::String(v.clone()));
    }
    let mut links = vec![json!({ "href": alert.console_url, "text": "Open in CloudTrail" })];
    if let Some(runbook) = &alert.runbook {
        links.push(json!({ "href": runbook, "text": "Runbook" }));
    }
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": truncate(&alert.dedup_key, 255),
        "payload": {
            "summary": truncate(&alert.title, 1024),
            "source": source,
            "severity": severity,
            "timestamp": alert.event_time,
            "component": alert.event_source,
            "group": alert.account,
            "class": alert.rule_id,
            "custom_details": details,
        },
        "links": links,
        "client": "trailwatch",
        "client_url": alert.console_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample_alert;

    #[test]
    fn trigger_carries_dedup_key_and_mapped_severity() {
        let alert = sample_alert("root-login", Severity::High, "dedup-42");
        let ev = event(&alert, "RK", "trailwatch", &BTreeMap::new());
        assert_eq!(ev["event_action"], "trigger");
        assert_eq!(ev["routing_key"], "RK");
        assert_eq!(ev["dedup_key"], "dedup-42");
        assert_eq!(ev["payload"]["severity"], "error");
        assert_eq!(ev["payload"]["class"], "root-login");
        assert_eq!(ev["payload"]["custom_details"]["Region"], "eu-west-1");
        assert_eq!(ev["links"][0]["href"], alert.console_url);
        let overrides = BTreeMap::from([(Severity::High, "critical".to_owned())]);
        assert_eq!(
            event(&alert, "RK", "s", &overrides)["payload"]["severity"],
            "critical"
        );
        assert_eq!(default_severity(Severity::Info), "info");
        assert_eq!(default_severity(Severity::Medium), "warning");
    }
}
