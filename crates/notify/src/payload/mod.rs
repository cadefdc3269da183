//! Payload building: pure functions from an [`Alert`] to the bytes
//! each destination receives. No I/O, so every shape is unit-tested here.

pub mod email;
pub mod opsgenie;
pub mod pagerduty;
pub mod slack;
pub mod sns;
pub mod webhook;

use trailwatch_alert::Alert;

/// Truncates to at most `max` characters (not bytes), ending with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The action as people say it: `ec2.amazonaws.com:AuthorizeSecurityGroupIngress`.
pub fn action(alert: &Alert) -> String {
    let service = alert
        .event_source
        .strip_suffix(".amazonaws.com")
        .unwrap_or(&alert.event_source);
    format!("{service}:{}", alert.event_name)
}

/// The account as people say it: `alias (123456789012)` or the id.
pub fn account_label(alert: &Alert) -> String {
    match &alert.account_alias {
        Some(alias) => format!("{alias} ({})", alert.account),
        None => alert.account.clone(),
    }
}

/// The principal as people say it: the name, with the type.
pub fn principal_label(alert: &Alert) -> String {
    if alert.principal.kind.is_empty() {
        alert.principal.name.clone()
    } else {
        format!("{} ({})", alert.principal.name, alert.principal.kind)
    }
}

/// Whether the event destroys or removes access (Delete*, Detach*, Revoke*, ...), which is
/// shown in red whatever the severity.
pub fn is_destructive(alert: &Alert) -> bool {
    [
        "Delete",
        "Detach",
        "Revoke",
        "Remove",
        "Disable",
        "Stop",
        "Terminate",
    ]
    .iter()
    .any(|verb| alert.event_name.starts_with(verb))
}

/// The facts every human-readable payload shows, in order: (label, value).
pub fn facts(alert: &Alert) -> Vec<(&'static str, String)> {
    vec![
        ("Principal", principal_label(alert)),
        ("Action", action(alert)),
        (
            "Resource",
            if alert.resources.is_empty() {
                "-".to_owned()
            } else {
                alert.resources.join(", ")
            },
        ),
        ("Account", account_label(alert)),
        ("Region", alert.region.clone()),
        (
            "Source IP",
            alert.source_ip.clone().unwrap_or_else(|| "-".to_owned()),
        ),
        ("Time", alert.event_time.clone()),
    ]
}
