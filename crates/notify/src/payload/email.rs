//! Email: a multipart/alternative message with a plain-text and an HTML part.

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use trailwatch_alert::Alert;

use super::facts;

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The subject: `[SEVERITY] title`.
pub fn subject(alert: &Alert) -> String {
    format!(
        "[{}] {}",
        alert.severity.as_str().to_uppercase(),
        alert.title.replace(['\r', '\n'], " ")
    )
}

/// The plain-text part.
pub fn plain_text(alert: &Alert) -> String {
    let mut out = format!("{}\n\n", alert.title);
    if !alert.body.trim().is_empty() {
        out.push_str(alert.body.trim_end());
        out.push_str("\n\n");
    }
    for (label, value) in facts(alert) {
        out.push_str(&format!("{label}: {value}\n"));
    }
    out.push_str(&format!("Rule: {}\n", alert.rule_id));
    out.push_str(&format!("Severity: {}\n\n", alert.severity));
    out.push_str(&format!("Open in CloudTrail: {}\n", alert.console_url));
    if let Some(runbook) = &alert.runbook {
        out.push_str(&format!("Runbook: {runbook}\n"));
    }
    out
}

/// The HTML part: every value from the alert is escaped.
pub fn html(alert: &Alert) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html><body>\n");
    out.push_str(&format!("<h2>{}</h2>\n", escape_html(&alert.title)));
    if !alert.body.trim().is_empty() {
        let body = escape_html(alert.body.trim_end()).replace('\n', "<br>\n");
        out.push_str(&format!("<p>{body}</p>\n"));
    }
    out.push_str("<table>\n");
    for (label, value) in facts(alert) {
        out.push_str(&format!(
            "<tr><th align=\"left\">{label}</th><td>{}</td></tr>\n",
            escape_html(&value)
        ));
    }
    out.push_str(&format!(
        "<tr><th align=\"left\">Rule</th><td>{}</td></tr>\n<tr><th align=\"left\">Severity</th><td>{}</td></tr>\n</table>\n",
        escape_html(&alert.rule_id),
        alert.severity
    ));
    out.push_str(&format!(
        "<p><a href=\"{}\">Open in CloudTrail</a></p>\n",
        escape_html(&alert.console_url)
    ));
    if let Some(runbook) = &alert.runbook {
        out.push_str(&format!(
            "<p><a href=\"{}\">Runbook</a></p>\n",
            escape_html(runbook)
        ));
    }
    out.push_str("</body></html>\n");
    out
}

/// The whole message. The Message-ID is derived from the delivery id, so a resend after a
/// crash carries the same id and mail clients thread or drop the duplicate.
pub fn message(
    alert: &Alert,
    from: &str,
    to: &[String],
    delivery_id: &str,
) -> Result<Message, String> {
    let from: Mailbox = from.parse().map_err(|e| format!("from {from:?}: {e}"))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(subject(alert))
        .message_id(Some(format!("<{delivery_id}@trailwatch>")));
    for rcpt in to {
        builder = builder.to(rcpt.parse().map_err(|e| format!("to {rcpt:?}: {e}"))?);
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            plain_text(alert),
            html(alert),
        ))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample_alert;
    use trailwatch_alert::Severity;

    #[test]
    fn html_escapes_everything_from_the_alert() {
        let mut alert = sample_alert("r<1>", Severity::High, "k");
        alert.title = "<script>alert('x')</script> & co".into();
        alert.body = "line1\n\"quoted\"".into();
        let html = html(&alert);
        assert!(html.contains("<h2>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co</h2>"));
        assert!(html.contains("<p>line1<br>\n&quot;quoted&quot;</p>"));
        assert!(html.contains("<td>r&lt;1&gt;</td>"));
        assert!(!html.contains("<script>"));
        let text = plain_text(&alert);
        assert!(text.starts_with("<script>alert('x')</script> & co\n\nline1\n\"quoted\"\n\n"));
        assert!(text.contains("Principal: alice (IAMUser)\n"));
        assert_eq!(subject(&alert), "[HIGH] <script>alert('x')</script> & co");
    }

    #[test]
    fn message_is_multipart_alternative() {
        let alert = sample_alert("r", Severity::Low, "k");
        let msg = message(&alert, "tw@example.com", &["a@example.com".into()], "d42").unwrap();
        let text = String::from_utf8(msg.formatted()).unwrap();
        assert!(text.contains("Message-ID: <d42@trailwatch>"), "{text}");
        assert!(text.contains("multipart/alternative"));
        assert!(text.contains("Content-Type: text/plain; charset=utf-8"));
        assert!(text.contains("Content-Type: text/html; charset=utf-8"));
        assert!(message(&alert, "not an address", &[], "d").is_err());
    }
}
