//! The pipeline the sources feed: injected by the binary (rules, gate, outbox) or by a test.

use trailwatch_event::Event;

/// What the pipeline did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandleOutcome {
    /// How many alerts the batch raised (for logs and metrics only).
    pub alerts: u64,
}

/// The pipeline could not take a batch; the source will retry it later (the message stays in
/// its queue, the checkpoint does not move).
#[derive(Debug, Clone, thiserror::Error)]
#[error("pipeline failed: {reason}")]
pub struct PipelineError {
    /// Why.
    pub reason: String,
}

impl PipelineError {
    /// A pipeline error with a reason.
    pub fn new(reason: impl Into<String>) -> PipelineError {
        PipelineError {
            reason: reason.into(),
        }
    }
}

/// Where events go. Synchronous: rule evaluation is pure and CPU-bound; sources call it on a
/// blocking thread (`spawn_blocking`), one batch at a time.
///
/// `origin` names where the batch came from (`s3://bucket/key`, a queue name, `sns:topic`).
pub trait Pipeline: Send + Sync + 'static {
    /// Handles a batch of events, all new (never handed over before, as far as the dedup
    /// store knows). Returning `Ok` means the batch is durably taken care of.
    fn handle(&self, events: Vec<Event>, origin: &str) -> Result<HandleOutcome, PipelineError>;
}
