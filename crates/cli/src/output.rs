//! Printing alerts: a readable block per alert, or one JSON object per line.

use std::io::{self, Write};

use trailwatch_alert::Alert;

use crate::cli::Format;

/// Writes one alert in the chosen format.
pub fn write_alert(out: &mut dyn Write, alert: &Alert, format: Format) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer(&mut *out, alert)?;
            out.write_all(b"\n")
        }
        Format::Text => write_text(out, alert),
    }
}

fn write_text(out: &mut dyn Write, a: &Alert) -> io::Result<()> {
    writeln!(
        out,
        "[{}] {}  ({})",
        a.severity.as_str().to_ascii_uppercase(),
        a.title,
        a.rule_id
    )?;
    let who = match &a.principal.arn {
        Some(arn) => format!("{} {} ({arn})", a.principal.kind, a.principal.name),
        None => format!("{} {}", a.principal.kind, a.principal.name),
    };
    writeln!(out, "  who:      {who}")?;
    writeln!(out, "  did:      {} {}", a.event_source, a.event_name)?;
    if !a.resources.is_empty() {
        writeln!(out, "  target:   {}", a.resources.join(", "))?;
    }
    let account = match &a.account_alias {
        Some(alias) => format!("{} ({alias})", a.account),
        None => a.account.clone(),
    };
    writeln!(out, "  where:    account {account}, {}", a.region)?;
    match (&a.source_ip, &a.user_agent) {
        (Some(ip), Some(ua)) => writeln!(out, "  from:     {ip} via {ua}")?,
        (Some(ip), None) => writeln!(out, "  from:     {ip}")?,
        (None, Some(ua)) => writeln!(out, "  from:     {ua}")?,
        (None, None) => {}
    }
    writeln!(out, "  when:     {}", a.event_time)?;
    if !a.fields.is_empty() {
        let fields: Vec<String> = a.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        writeln!(out, "  details:  {}", fields.join("  "))?;
    }
    if a.repeats > 0 {
        writeln!(
            out,
            "  repeats:  {} more within the dedup window",
            a.repeats
        )?;
    }
    writeln!(out, "  event:    {}", a.event_id)?;
    writeln!(out, "  console:  {}", a.console_url)?;
    if let Some(runbook) = &a.runbook {
        writeln!(out, "  runbook:  {runbook}")?;
    }
    let mut origin = a.origin.source.clone();
    if let Some(i) = a.origin.record_index {
        origin.push_str(&format!("#record={i}"));
    }
    writeln!(out, "  source:   {origin}")?;
    for line in a.body.lines().filter(|l| !l.trim().is_empty()) {
        writeln!(out, "  | {line}")?;
    }
    writeln!(out)
}
