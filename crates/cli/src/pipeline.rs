//! The live alert pipeline behind `trailwatch run` (and `watch` with destinations):
//! evaluate → gate → durable outbox.
//!
//! Evaluation is pure and runs on all cores; the gate (thresholds, dedup) has one owner, a
//! mutex taken once per batch; the outbox write is one fsynced transaction per batch. A
//! batch is acknowledged (the queue message deleted, the checkpoint moved) only after its
//! alerts are in the outbox, so a crash repeats work, never loses it; the outbox is
//! idempotent on each alert's dedup key, so a repeated batch sends nothing twice.
//!
//! The gate's windows live in a [`crate::gate_state::DurableGateState`] and are committed
//! after the batch's alerts are in the outbox, under the gate's lock, so a restart continues
//! half-full thresholds and open dedup windows without ever being ahead of the outbox.
//!
//! With remediation, each admitted alert's plan is prepared (mode, job id, approval links)
//! before the outbox write, so the delivered alert tells the truth, and its job is stored
//! after the write and before the window commit and the acknowledgement: a crash in between
//! redoes the batch, and the job store, like the outbox, is idempotent.
//!
//! If the outbox (or the window state) cannot be written, the gate has already counted the
//! batch in memory: retrying it in this process would see its own events as repeats and drop
//! their alerts. So that failure is fatal: the pipeline refuses the batch (it stays in its
//! queue) and asks the service to stop; the restarted process reloads the last committed
//! state and redoes the batch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use trailwatch_alert::Alert;
use trailwatch_event::Event;
use trailwatch_notify::Notifier;
use trailwatch_remediate::Remediator;
use trailwatch_rules::{Candidate, EvalScratch, Gate, RuleSet};
use trailwatch_sources::metrics::{Counter, LagHistogram};
use trailwatch_sources::{CancellationToken, HandleOutcome, Pipeline, PipelineError};

/// Counters of the rule stage, rendered on `/metrics` beside the sources' counters.
#[derive(Debug, Default)]
pub struct PipelineMetrics {
    /// Events evaluated against the rules.
    pub events_evaluated: Counter,
    /// Events that matched at least one rule.
    pub events_matched: Counter,
    /// Alerts the gate let through (written to the outbox).
    pub alerts: Counter,
    /// Deliveries those alerts created (one per alert and destination; repeats add none).
    pub deliveries: Counter,
    /// CEL errors while evaluating conditions (the item raised nothing).
    pub cel_errors: Counter,
    /// Lag from an alert's `eventTime` to the moment it was in the outbox.
    pub alert_lag: LagHistogram,
}

impl PipelineMetrics {
    /// Appends the Prometheus text of these counters to `out`.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let counters = [
            (
                "trailwatch_pipeline_events_evaluated_total",
                "Events evaluated against the rules.",
                &self.events_evaluated,
            ),
            (
                "trailwatch_pipeline_events_matched_total",
                "Events that matched at least one rule.",
                &self.events_matched,
            ),
            (
                "trailwatch_alerts_total",
                "Alerts written to the outbox.",
                &self.alerts,
            ),
            (
                "trailwatch_alert_deliveries_total",
                "Outbox deliveries created (one per alert and destination).",
                &self.deliveries,
            ),
            (
                "trailwatch_rule_cel_errors_total",
                "CEL errors while evaluating rule conditions.",
                &self.cel_errors,
            ),
        ];
        for (name, help, counter) in counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", counter.get());
        }
        let lag = "trailwatch_alert_lag_seconds";
        let _ = writeln!(
            out,
            "# HELP {lag} Lag from eventTime to the alert being in the outbox."
        );
        let _ = writeln!(out, "# TYPE {lag} histogram");
        self.alert_lag.render_series(out, lag, "");
    }
}

/// Where admitted alerts' remediation plans go: the job store, and a wake-up for the
/// executor.
pub struct RemediationHook {
    /// The remediator.
    pub remediator: Arc<Remediator>,
    /// Notified when jobs were queued.
    pub wake: Arc<tokio::sync::Notify>,
}

/// Rules, gate and outbox as one [`Pipeline`].
pub struct AlertPipeline {
    ruleset: Arc<RuleSet>,
    gate: Mutex<Gate>,
    notifier: Arc<Notifier>,
    remediation: Option<RemediationHook>,
    metrics: Arc<PipelineMetrics>,
    /// Fired when the outbox fails (see the module docs).
    fatal: CancellationToken,
    failed: AtomicBool,
}

impl AlertPipeline {
    /// A pipeline that evaluates `ruleset`, gates through `gate` and writes to `notifier`'s
    /// outbox; `fatal` is cancelled if the outbox cannot be written.
    pub fn new(
        ruleset: Arc<RuleSet>,
        gate: Gate,
        notifier: Arc<Notifier>,
        metrics: Arc<PipelineMetrics>,
        fatal: CancellationToken,
    ) -> AlertPipeline {
        AlertPipeline {
            ruleset,
            gate: Mutex::new(gate),
            notifier,
            remediation: None,
            metrics,
            fatal,
            failed: AtomicBool::new(false),
        }
    }

    /// Stores and runs the remediation plans of admitted alerts.
    pub fn with_remediation(mut self, hook: RemediationHook) -> AlertPipeline {
        self.remediation = Some(hook);
        self
    }

    /// Evaluates events on all cores; candidates come back in event-time order, so windows
    /// see a batch in the order it happened.
    pub fn evaluate(&self, events: &[Event]) -> Vec<Candidate> {
        let ruleset = &self.ruleset;
        let per_event: Vec<(Vec<Candidate>, u64)> = events
            .par_iter()
            .map_init(EvalScratch::default, |scratch, event| {
                let before = scratch.cel_errors;
                let found = ruleset.evaluate(event, scratch);
                (found, scratch.cel_errors - before)
            })
            .collect();
        self.metrics.events_evaluated.add(events.len() as u64);
        let mut candidates = Vec::new();
        for (found, cel_errors) in per_event {
            self.metrics.cel_errors.add(cel_errors);
            if !found.is_empty() {
                self.metrics.events_matched.inc();
            }
            candidates.extend(found);
        }
        candidates.sort_by(|a, b| {
            (a.time, a.event_id(), a.dedup_key()).cmp(&(b.time, b.event_id(), b.dedup_key()))
        });
        candidates
    }

    /// Passes candidates through the gate, writes the alerts to the outbox, then commits the
    /// gate's window state: in that order and under the gate's lock, so state on disk never
    /// runs ahead of the alerts it produced (a crash in between redoes the batch from the
    /// older state and the outbox absorbs the repeat).
    pub fn admit_and_write(&self, candidates: Vec<Candidate>) -> Result<u64, PipelineError> {
        let mut gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        let mut alerts: Vec<Alert> = candidates.into_iter().flat_map(|c| gate.admit(c)).collect();
        if let Some(hook) = &self.remediation {
            for alert in &mut alerts {
                hook.remediator.prepare(alert);
            }
        }
        let written = self.write(&alerts)?;
        self.submit(&alerts)?;
        self.commit(&mut gate)?;
        Ok(written)
    }

    /// Stores the jobs of the alerts' plans (idempotent) and wakes the executor. A failure
    /// is fatal for the same reason an outbox failure is.
    fn submit(&self, alerts: &[Alert]) -> Result<(), PipelineError> {
        let Some(hook) = &self.remediation else {
            return Ok(());
        };
        match hook.remediator.submit(alerts) {
            Ok(0) => Ok(()),
            Ok(_) => {
                hook.wake.notify_one();
                Ok(())
            }
            Err(err) => {
                self.failed.store(true, Ordering::SeqCst);
                tracing::error!(error = %err, "cannot store remediation jobs; stopping");
                self.fatal.cancel();
                Err(PipelineError::new(format!(
                    "cannot store remediation jobs: {err}"
                )))
            }
        }
    }

    /// Closes idle windows by the clock (dedup repeat summaries) and writes what they release.
    pub fn tick(&self) -> Result<u64, PipelineError> {
        let mut gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        let alerts = gate.tick();
        let written = self.write(&alerts)?;
        self.commit(&mut gate)?;
        Ok(written)
    }

    fn commit(&self, gate: &mut Gate) -> Result<(), PipelineError> {
        gate.commit().map_err(|err| {
            self.failed.store(true, Ordering::SeqCst);
            tracing::error!(error = %err, "cannot save the rule windows; stopping");
            self.fatal.cancel();
            PipelineError::new(err.to_string())
        })
    }

    /// Writes alerts to the outbox (durable when this returns). A failure stops the service.
    pub fn write(&self, alerts: &[Alert]) -> Result<u64, PipelineError> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(PipelineError::new(
                "the outbox failed earlier; stopping so a restart can redo the work",
            ));
        }
        if alerts.is_empty() {
            return Ok(0);
        }
        match self.notifier.enqueue_batch(alerts) {
            Ok(deliveries) => {
                let now = Utc::now();
                self.metrics.alerts.add(alerts.len() as u64);
                self.metrics.deliveries.add(deliveries as u64);
                for alert in alerts {
                    if let Ok(t) = DateTime::parse_from_rfc3339(&alert.event_time) {
                        self.metrics.alert_lag.observe(now - t.with_timezone(&Utc));
                    }
                }
                Ok(alerts.len() as u64)
            }
            Err(err) => {
                self.failed.store(true, Ordering::SeqCst);
                tracing::error!(error = %err, "cannot write alerts to the outbox; stopping");
                self.fatal.cancel();
                Err(PipelineError::new(format!(
                    "cannot write to the outbox: {err}"
                )))
            }
        }
    }
}

impl Pipeline for AlertPipeline {
    fn handle(&self, events: Vec<Event>, origin: &str) -> Result<HandleOutcome, PipelineError> {
        let candidates = self.evaluate(&events);
        let written = self.admit_and_write(candidates)?;
        if written > 0 {
            tracing::info!(
                origin,
                events = events.len(),
                alerts = written,
                "alerts raised"
            );
        }
        Ok(HandleOutcome { alerts: written })
    }
}
