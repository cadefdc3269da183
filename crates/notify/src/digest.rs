//! Digest mode: low-severity alerts of a route are batched into one message per window.

use trailwatch_alert::{Alert, AlertOrigin, Principal, Severity};

/// The start of the window of `minutes` that contains `now_ms` (windows are aligned to the
/// Unix epoch, so every process agrees on them).
pub fn window_start(now_ms: i64, minutes: u32) -> i64 {
    let len = i64::from(minutes) * 60_000;
    now_ms - now_ms.rem_euclid(len)
}

/// One alert that stands for a batch: the highest severity of its members, a title that
/// counts them, and a body with one line per member.
pub fn combine(destination: &str, window_start_ms: i64, minutes: u32, alerts: &[Alert]) -> Alert {
    let severity = alerts
        .iter()
        .map(|a| a.severity)
        .max()
        .unwrap_or(Severity::Info);
    let start = chrono::DateTime::from_timestamp_millis(window_start_ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    let mut body = String::new();
    for a in alerts {
        body.push_str(&format!(
            "- [{}] {} ({} {} {})\n",
            a.severity, a.title, a.account, a.region, a.event_time
        ));
    }
    let first = alerts.first();
    Alert {
        rule_id: "trailwatch-digest".to_owned(),
        severity,
        title: format!(
            "{} alerts in the {minutes}-minute window from {start}",
            alerts.len()
        ),
        body,
        event_id: String::new(),
        event_time: start.clone(),
        event_source: "trailwatch".to_owned(),
        event_name: "Digest".to_owned(),
        account: first.map(|a| a.account.clone()).unwrap_or_default(),
        account_alias: first.and_then(|a| a.account_alias.clone()),
        region: first.map(|a| a.region.clone()).unwrap_or_default(),
        principal: Principal {
            kind: String::new(),
            arn: None,
            name: "various".to_owned(),
            account_id: None,
            access_key_id: None,
        },
        source_ip: None,
        user_agent: None,
        resources: Vec::new(),
        console_url: first
            .map(|a| {
                format!(
                    "https://{r}.console.aws.amazon.com/cloudtrailv2/home?region={r}#/events",
                    r = a.region
                )
            })
            .unwrap_or_default(),
        tags: Vec::new(),
        runbook: None,
        fields: alerts
            .iter()
            .map(|a| (a.dedup_key.clone(), a.title.clone()))
            .collect(),
        item: None,
        dedup_key: format!("digest:{destination}:{window_start_ms}"),
        remediation: None,
        repeats: 0,
        origin: AlertOrigin {
            source: "digest".to_owned(),
            record_index: None,
            message_id: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample_alert;

    #[test]
    fn windows_are_epoch_aligned() {
        assert_eq!(window_start(0, 15), 0);
        assert_eq!(window_start(899_999, 15), 0);
        assert_eq!(window_start(900_000, 15), 900_000);
        assert_eq!(window_start(1_000_000, 1), 960_000);
    }

    #[test]
    fn combine_counts_and_takes_the_highest_severity() {
        let a = sample_alert("r1", Severity::Low, "k1");
        let b = sample_alert("r2", Severity::Medium, "k2");
        let d = combine("slack", 900_000, 15, &[a, b]);
        assert_eq!(d.severity, Severity::Medium);
        assert_eq!(d.dedup_key, "digest:slack:900000");
        assert_eq!(
            d.title,
            "2 alerts in the 15-minute window from 1970-01-01T00:15:00Z"
        );
        assert_eq!(d.body.lines().count(), 2);
        assert!(
            d.body
                .starts_with("- [low] Security group opened to the world (111122223333 eu-west-1")
        );
    }
}
