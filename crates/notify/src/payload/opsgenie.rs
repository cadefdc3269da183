//! Opsgenie Alerts API `POST /v2/alerts` bodies.

use serde_json::{Value, json};
use trailwatch_alert::{Alert, Severity};

use super::{facts, truncate};

/// Severity to Opsgenie priority.
pub fn priority(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "P1",
        Severity::High => "P2",
        Severity::Medium => "P3",
        Severity::Low => "P4",
        Severity::Info => "P5",
    }
}

/// The create-alert body. `alias` is the alert's dedup key: Opsgenie folds a second create
/// with an open alert's alias into that alert.
pub fn create_alert(alert: &Alert, responders: &[String]) -> Value {
    let mut details = serde_json::Map::new();
    for (label, value) in facts(alert) {
        details.insert(label.to_owned(), Value::String(truncate(&value, 8000)));
    }
    details.insert("Rule".into(), Value::String(alert.rule_id.clone()));
    details.insert("Console".into(), Value::String(alert.console_url.clone()));
    let mut tags: Vec<String> = alert.tags.iter().map(|t| truncate(t, 50)).collect();
    tags.push(format!("severity:{}", alert.severity));
    let description = format!("{}\n\n{}", alert.body, alert.console_url);
    json!({
        "message": truncate(&alert.title, 130),
        "alias": truncate(&alert.dedup_key, 512),
        "description": truncate(&description, 15000),
        "responders": responders.iter().map(|t| json!({ "name": t, "type": "team" })).collect::<Vec<_>>(),
        "tags": tags,
        "details": details,
        "entity": truncate(alert.resources.first().map(String::as_str).unwrap_or(""), 512),
        "source": "trailwatch",
        "priority": priority(alert.severity),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample_alert;

    #[test]
    fn create_alert_uses_dedup_key_as_alias() {
        let alert = sample_alert("root-login", Severity::Critical, "alias-7");
        let body = create_alert(&alert, &["secops".to_owned()]);
        assert_eq!(body["alias"], "alias-7");
        assert_eq!(body["priority"], "P1");
        assert_eq!(
            body["responders"][0],
            json!({"name": "secops", "type": "team"})
        );
        assert_eq!(body["entity"], "sg-0123");
        assert!(
            body["tags"]
                .as_array()
                .unwrap()
                .contains(&json!("severity:critical"))
        );
        assert_eq!(priority(Severity::Info), "P5");
    }
}
