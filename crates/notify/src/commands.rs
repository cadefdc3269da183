//! `trailwatch alerts dead|retry|test`: one function per subcommand, each returning a value
//! that prints as the command's output (the CLI only parses arguments and prints).

use std::fmt;

use crate::error::NotifyError;
use crate::notifier::Notifier;
use crate::outbox::{DeadLetter, RetrySelector};

/// The output of `trailwatch alerts dead`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadReport {
    /// The dead letters, oldest first.
    pub dead: Vec<DeadLetter>,
}

impl fmt::Display for DeadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dead.is_empty() {
            return writeln!(f, "no dead letters");
        }
        writeln!(
            f,
            "{:>6}  {:<16}  {:>8}  {:<20}  ALERT / LAST ERROR",
            "ID", "DESTINATION", "ATTEMPTS", "FAILED AT"
        )?;
        for d in &self.dead {
            writeln!(
                f,
                "{:>6}  {:<16}  {:>8}  {:<20}  [{}] {}",
                d.id, d.destination, d.attempts, d.failed_at, d.rule_id, d.title
            )?;
            writeln!(
                f,
                "{:>6}  {:<16}  {:>8}  {:<20}  {}",
                "", "", "", "", d.last_error
            )?;
        }
        writeln!(
            f,
            "{} dead letter(s); resend with `trailwatch alerts retry`",
            self.dead.len()
        )
    }
}

/// `trailwatch alerts dead`.
pub fn dead(notifier: &Notifier) -> Result<DeadReport, NotifyError> {
    Ok(DeadReport {
        dead: notifier.dead_letters()?,
    })
}

/// The output of `trailwatch alerts retry`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct RetryReport {
    /// How many dead letters were queued again.
    pub requeued: usize,
}

impl fmt::Display for RetryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} dead letter(s) queued again; the running notifier (or the next run) sends them",
            self.requeued
        )
    }
}

/// `trailwatch alerts retry [--all | --destination NAME | ID...]`.
pub fn retry(notifier: &Notifier, selector: &RetrySelector) -> Result<RetryReport, NotifyError> {
    Ok(RetryReport {
        requeued: notifier.retry_dead(selector)?,
    })
}

/// The output of `trailwatch alerts test DESTINATION`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TestReport {
    /// The destination.
    pub destination: String,
    /// The destination type.
    pub kind: &'static str,
    /// The sample alert's dedup key.
    pub dedup_key: String,
}

impl fmt::Display for TestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sent a test alert to {} ({}), dedup key {}",
            self.destination, self.kind, self.dedup_key
        )
    }
}

/// `trailwatch alerts test DESTINATION`: one attempt, no outbox; the error says why it
/// failed (status, SMTP answer), never the secret.
pub async fn test(notifier: &Notifier, destination: &str) -> Result<TestReport, NotifyError> {
    let alert = notifier.send_test(destination).await?;
    let kind = notifier
        .config()
        .destination(destination)
        .map(|d| d.kind.type_name())
        .unwrap_or("unknown");
    Ok(TestReport {
        destination: destination.to_owned(),
        kind,
        dedup_key: alert.dedup_key,
    })
}
