//! Slack messages: Block Kit blocks inside one attachment, so the message gets a colour bar.

use serde_json::{Value, json};
use trailwatch_alert::{Alert, Severity};

use super::{facts, is_destructive, truncate};

/// Red: critical/high, or a destructive verb.
pub const RED: &str = "#d93025";
/// Orange: medium.
pub const ORANGE: &str = "#f29900";
/// Blue: low.
pub const BLUE: &str = "#1a73e8";
/// Grey: info.
pub const GREY: &str = "#9aa0a6";

/// The colour bar for an alert.
pub fn color(alert: &Alert) -> &'static str {
    if is_destructive(alert) {
        return RED;
    }
    match alert.severity {
        Severity::Critical | Severity::High => RED,
        Severity::Medium => ORANGE,
        Severity::Low => BLUE,
        Severity::Info => GREY,
    }
}

/// Escapes the three characters Slack's mrkdwn treats as control characters.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The message body. `channel` is set for `chat.postMessage` and omitted for webhooks.
pub fn message(alert: &Alert, channel: Option<&str>) -> Value {
    let fields: Vec<Value> = facts(alert)
        .into_iter()
        .map(|(label, value)| {
            json!({
                "type": "mrkdwn",
                "text": truncate(&format!("*{label}*\n{}", escape(&value)), 2000),
            })
        })
        .collect();
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": truncate(&alert.title, 150), "emoji": false },
    })];
    if !alert.body.trim().is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": truncate(&escape(&alert.body), 3000) },
        }));
    }
    blocks.push(json!({ "type": "section", "fields": fields }));
    blocks.push(json!({
        "type": "actions",
        "elements": [{
            "type": "button",
            "action_id": "open_console",
            "text": { "type": "plain_text", "text": "Open in CloudTrail" },
            "url": alert.console_url,
        }],
    }));
    let mut context = format!(
        "{} · rule `{}`",
        alert.severity.as_str().to_uppercase(),
        escape(&alert.rule_id)
    );
    if alert.repeats > 0 {
        context.push_str(&format!(" · repeated {} more times", alert.repeats));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{ "type": "mrkdwn", "text": context }],
    }));
    let mut msg = json!({
        "text": truncate(&format!("[{}] {}", alert.severity.as_str().to_uppercase(), alert.title), 3000),
        "attachments": [{ "color": color(alert), "blocks": blocks }],
        "unfurl_links": false,
    });
    if let Some(channel) = channel {
        msg["channel"] = Value::String(channel.to_owned());
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample_alert;

    #[test]
    fn message_shape_is_stable() {
        let mut alert = sample_alert("sg-open", Severity::Medium, "key-1");
        alert.body = "Port 22 <open> & more".into();
        let msg = message(&alert, Some("C123"));
        assert_eq!(msg["channel"], "C123");
        assert_eq!(msg["text"], "[MEDIUM] Security group opened to the world");
        let att = &msg["attachments"][0];
        assert_eq!(att["color"], ORANGE);
        let blocks = att["blocks"].as_array().unwrap();
        let kinds: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["header", "section", "section", "actions", "context"]
        );
        assert_eq!(blocks[1]["text"]["text"], "Port 22 &lt;open&gt; &amp; more");
        let fields: Vec<&str> = blocks[2]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "*Principal*\nalice (IAMUser)",
                "*Action*\nec2:AuthorizeSecurityGroupIngress",
                "*Resource*\nsg-0123",
                "*Account*\nprod (111122223333)",
                "*Region*\neu-west-1",
                "*Source IP*\n203.0.113.9",
                "*Time*\n2026-11-23T10:00:00Z",
            ]
        );
        assert_eq!(blocks[3]["elements"][0]["url"], alert.console_url);
        assert!(message(&alert, None).get("channel").is_none());
    }

    #[test]
    fn destructive_verbs_are_red_whatever_the_severity() {
        let mut alert = sample_alert("x", Severity::Info, "k");
        assert_eq!(color(&alert), GREY);
        alert.event_name = "RevokeSecurityGroupIngress".into();
        assert_eq!(color(&alert), RED);
        alert.event_name = "DetachRolePolicy".into();
        assert_eq!(color(&alert), RED);
        alert.event_name = "PutObject".into();
        alert.severity = Severity::Critical;
        assert_eq!(color(&alert), RED);
        alert.severity = Severity::Low;
        assert_eq!(color(&alert), BLUE);
    }

    #[test]
    fn long_titles_are_cut_to_slack_limits() {
        let mut alert = sample_alert("x", Severity::Info, "k");
        alert.title = "é".repeat(400);
        let msg = message(&alert, None);
        let header = msg["attachments"][0]["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap();
        assert_eq!(header.chars().count(), 150);
        assert!(header.ends_with('…'));
    }
}
