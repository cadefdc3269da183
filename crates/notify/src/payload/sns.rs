//! SNS Publish: the message, subject, filtering attributes and FIFO deduplication id.

use trailwatch_alert::Alert;

/// The message: the alert's JSON, so subscribers can parse it.
pub fn message(alert: &Alert) -> Result<String, String> {
    serde_json::to_string(alert).map_err(|e| e.to_string())
}

/// The subject (used by email subscriptions): printable ASCII, one line, at most 100
/// characters, as SNS requires.
pub fn subject(alert: &Alert) -> String {
    let raw = format!(
        "[{}] {}",
        alert.severity.as_str().to_uppercase(),
        alert.title
    );
    let ascii: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    ascii.chars().take(100).collect()
}

/// String message attributes for subscription filter policies.
pub fn attributes(alert: &Alert) -> Vec<(&'static str, String)> {
    vec![
        ("severity", alert.severity.as_str().to_owned()),
        ("rule_id", alert.rule_id.clone()),
        ("account", alert.account.clone()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample_alert;
    use trailwatch_alert::Severity;

    #[test]
    fn subject_is_ascii_and_short() {
        let mut alert = sample_alert("r", Severity::Critical, "k");
        alert.title = format!("Zugriff geändert\n{}", "x".repeat(200));
        let s = subject(&alert);
        assert!(s.starts_with("[CRITICAL] Zugriff ge?ndert?xxx"));
        assert_eq!(s.len(), 100);
        assert_eq!(
            attributes(&alert),
            vec![
                ("severity", "critical".to_owned()),
                ("rule_id", "r".to_owned()),
                ("account", "111122223333".to_owned())
            ]
        );
    }
}
