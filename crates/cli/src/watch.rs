//! `trailwatch watch DIR`: follow a folder as log files arrive.
//!
//! File-system notifications (inotify, through the `notify` crate) trigger a sweep of the
//! folder; a periodic sweep is the safety net for missed notifications. A sweep processes
//! every log file the checkpoint does not list yet. A file is committed to the checkpoint,
//! together with the ids of its events that matched a rule, in one transaction after its
//! alerts were written. So a restart repeats no finished file, and an event CloudTrail
//! delivers twice alerts once. A crash between writing alerts and committing repeats that
//! one file's alerts (at-least-once, never lost).
//!
//! The rule windows (thresholds, dedup) are saved beside the checkpoint
//! (`watch-gate.sqlite`), so `watch --once` from a timer continues them run after run.
//!
//! Remediation plans of admitted alerts are prepared before the alerts are emitted and
//! stored as jobs before the file is committed (see [`crate::pipeline`]); an executor runs
//! them beside the follower, and `--once` runs every runnable job before it delivers and
//! exits. `notify` steps go where alerts go.
//!
//! Without `destinations` in the config, alerts are printed. With them, alerts go to the
//! durable outbox (before the file is committed) and a delivery loop beside the follower
//! sends them; the outbox's idempotency on dedup keys absorbs a repeated file.

use std::collections::HashSet;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use chrono::{DateTime, Utc};
use notify::{RecursiveMode, Watcher};
use trailwatch_alert::Alert;
use trailwatch_event::{Item, Limits, decode_screened};
use trailwatch_notify::Notifier;
use trailwatch_remediate::Remediator;
use trailwatch_rules::{Candidate, Clock, EvalScratch, Gate, RuleSet, SystemClock};
use trailwatch_store::Store;

use crate::gate_state::DurableGateState;
use crate::remediation_cmd::{self, OutboxNotify, PrintNotify};
use trailwatch_sources::CancellationToken;

use crate::cli::{EXIT_OK, Format, WatchArgs};
use crate::inputs::{self, Input};
use crate::output::write_alert;
use crate::state;
use crate::summary::Summary;

/// A file modified this recently that fails to decode may still be being written: it is
/// retried on a later sweep instead of being reported and committed.
const SETTLE_TIME: Duration = Duration::from_secs(10);

/// Where a follower's alerts go.
pub enum AlertOutput<'w> {
    /// Printed in a format.
    Print {
        /// The writer (stdout).
        out: &'w mut dyn Write,
        /// The format.
        format: Format,
    },
    /// Into the durable outbox (fsynced when `emit` returns).
    Outbox(Arc<Notifier>),
}

impl AlertOutput<'_> {
    /// Emits alerts; when this returns Ok they are written (and flushed) or durable.
    pub fn emit(&mut self, alerts: &[Alert]) -> anyhow::Result<()> {
        match self {
            AlertOutput::Print { out, format } => {
                for alert in alerts {
                    write_alert(&mut **out, alert, *format).context("cannot write alert")?;
                }
                out.flush().context("cannot write alerts")
            }
            AlertOutput::Outbox(notifier) => {
                if !alerts.is_empty() {
                    notifier
                        .enqueue_batch(alerts)
                        .context("cannot write alerts to the outbox")?;
                }
                Ok(())
            }
        }
    }
}

/// The follower: rules, gate, checkpoint and output.
pub struct Follower<'a, 'w> {
    ruleset: &'a RuleSet,
    gate: Gate,
    store: Store,
    limits: Limits,
    scratch: EvalScratch,
    output: AlertOutput<'w>,
    remediation: Option<(Arc<Remediator>, Arc<tokio::sync::Notify>)>,
    /// Totals since start.
    pub totals: Summary,
}

fn modified_recently(input: &Input) -> bool {
    let Input::File { modified_ns, .. } = input else {
        return false;
    };
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    now_ns.saturating_sub(*modified_ns) < SETTLE_TIME.as_nanos() as i64
}

impl<'a, 'w> Follower<'a, 'w> {
    /// Opens the checkpoint in `state_dir` and prunes event ids older than the horizon
    /// (measured back from the newest event seen, so old data replays dedup correctly too).
    pub fn open(
        ruleset: &'a RuleSet,
        state_dir: &Path,
        limits: Limits,
        output: AlertOutput<'w>,
        dedup_horizon: Duration,
    ) -> anyhow::Result<Follower<'a, 'w>> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("cannot create state folder {}", state_dir.display()))?;
        let mut store = Store::open(state_dir.join("watch.sqlite"))?;
        if let Some(newest) = store.newest_event_time()? {
            let horizon =
                chrono::Duration::from_std(dedup_horizon).unwrap_or(chrono::Duration::MAX);
            store.prune_seen(newest - horizon)?;
        }
        let gate_path = state_dir.join("watch-gate.sqlite");
        let (windows, unreadable) = DurableGateState::open(&gate_path)?;
        if unreadable > 0 {
            tracing::warn!(count = unreadable, path = %gate_path.display(), "rule windows written by another version were dropped");
        }
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Ok(Follower {
            ruleset,
            gate: Gate::new(ruleset, Box::new(windows), clock),
            store,
            limits,
            scratch: EvalScratch::default(),
            output,
            remediation: None,
            totals: Summary::default(),
        })
    }

    /// Prepares and stores the remediation plans of this follower's alerts; `wake` is
    /// notified when jobs were queued.
    pub fn with_remediation(
        mut self,
        remediator: Arc<Remediator>,
        wake: Arc<tokio::sync::Notify>,
    ) -> Self {
        self.remediation = Some((remediator, wake));
        self
    }

    /// Closes idle windows by the clock, emits the dedup repeat summaries they release, and
    /// saves the windows still open, so the next run (`--once` from a timer, or a restart)
    /// continues them.
    pub fn tick(&mut self) -> anyhow::Result<()> {
        let alerts = self.gate.tick();
        self.output.emit(&alerts)?;
        self.gate.commit()?;
        self.totals.alerts += alerts.len() as u64;
        Ok(())
    }

    /// Processes every log file under `dir` that the checkpoint does not list.
    pub fn sweep(&mut self, dir: &Path) -> anyhow::Result<()> {
        let listing = inputs::list(&[dir.to_path_buf()])?;
        for input in &listing.inputs {
            let stamp = input.stamp().expect("listed inputs are files");
            if self.store.input_done(&stamp)? {
                continue;
            }
            self.process(input)?;
        }
        Ok(())
    }

    fn process(&mut self, input: &Input) -> anyhow::Result<()> {
        let stamp = input.stamp().expect("listed inputs are files");
        let reader = match input.open() {
            Ok(reader) => reader,
            Err(err) => {
                tracing::warn!(file = %stamp.origin, error = %err, "cannot open; will retry");
                return Ok(());
            }
        };
        let mut counts = Summary {
            inputs: 1,
            ..Summary::default()
        };
        let mut events_matched: Vec<(String, DateTime<Utc>)> = Vec::new();
        let mut seen_here: HashSet<String> = HashSet::new();
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut skipped = Vec::new();
        let (ruleset, store, scratch) = (self.ruleset, &self.store, &mut self.scratch);
        let mut store_error = None;
        // Records no rule can match are only counted: no event is built and the seen-event
        // store is not asked (it holds only events that matched).
        let mut unmatched_early = 0;
        let decoded = decode_screened(
            reader,
            stamp.origin.as_str().into(),
            &self.limits,
            &mut |preview| {
                let wanted = ruleset.may_match_preview(preview);
                unmatched_early += u64::from(!wanted);
                wanted
            },
            &mut |item| match item {
                Item::Event(event) => {
                    let meta = event.meta();
                    let id = meta.event_id.clone().unwrap_or_else(|| meta.id.clone());
                    let seen = match store.event_seen(&id) {
                        Ok(seen) => seen || seen_here.contains(&id),
                        Err(err) => {
                            store_error.get_or_insert(err);
                            false
                        }
                    };
                    if seen {
                        counts.duplicates += 1;
                        return;
                    }
                    let found = ruleset.evaluate(&event, scratch);
                    if found.is_empty() {
                        counts.unmatched += 1;
                    } else {
                        counts.matched += 1;
                        seen_here.insert(id.clone());
                        events_matched.push((id, meta.time));
                        candidates.extend(found);
                    }
                }
                Item::Skipped(s) => skipped.push(s),
                Item::Digest(_) => counts.digests += 1,
                Item::Object(_) => counts.object_refs += 1,
            },
        );
        if let Some(err) = store_error {
            return Err(err.into());
        }
        if decoded.skipped_inputs > 0 && modified_recently(input) {
            tracing::info!(file = %stamp.origin, "incomplete and recently modified; will retry");
            return Ok(());
        }
        for s in &skipped {
            eprintln!("{}", crate::scan::skip_message(s));
        }
        for s in &skipped {
            counts.count_lossless_skip(s);
        }
        counts.unmatched += unmatched_early;
        counts.add_decoded(&decoded);
        candidates.sort_by(|a, b| a.event_time().cmp(b.event_time()));
        let mut alerts: Vec<Alert> = Vec::new();
        for candidate in candidates {
            alerts.extend(self.gate.admit(candidate));
        }
        if let Some((remediator, _)) = &self.remediation {
            for alert in &mut alerts {
                remediator.prepare(alert);
            }
        }
        self.output.emit(&alerts)?;
        if let Some((remediator, wake)) = &self.remediation
            && remediator
                .submit(&alerts)
                .context("cannot store remediation jobs")?
                > 0
        {
            wake.notify_one();
        }
        counts.alerts = alerts.len() as u64;
        self.store.commit_input(&stamp, &events_matched)?;
        // After the checkpoint: a crash in between leaves this file's events out of the
        // windows (an undercount), never alerts that were not emitted.
        self.gate.commit()?;
        tracing::info!(
            file = %stamp.origin,
            records = counts.records_in,
            alerts = counts.alerts,
            duplicates = counts.duplicates,
            "processed"
        );
        self.totals.add(&counts);
        Ok(())
    }
}

/// `trailwatch watch`.
pub fn run(args: WatchArgs) -> anyhow::Result<u8> {
    let (config, ruleset) = crate::ruleset::load(&args.rules)?;
    let dir = args.dir.clone();
    if !dir.is_dir() {
        anyhow::bail!("{} is not a folder", dir.display());
    }
    let notify = crate::alerts_cmd::notify_config_of(&config)?;
    let remediation = remediation_cmd::config_of(&config)?;
    let state_dir = state::state_dir(args.state.as_deref(), &config)?;
    let limits = crate::scan::limits(&args.limits);
    // Not locked for the whole run: remediation's `notify` steps print from the executor.
    let mut out = BufWriter::new(io::stdout());
    // Delivery and remediation run beside the follower on this runtime.
    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    let stop = CancellationToken::new();
    let delivery = if notify.destinations.is_empty() {
        None
    } else {
        let path = notify.outbox.path_in(&state_dir);
        let notifier = Arc::new(
            Notifier::open(notify, &path)
                .with_context(|| format!("cannot open the outbox {}", path.display()))?,
        );
        if !args.once {
            let n = notifier.clone();
            runtime.spawn(async move { n.run(std::future::pending::<()>()).await });
        }
        Some(notifier)
    };
    let steps_notify: Arc<dyn trailwatch_remediate::Notifier> = match &delivery {
        Some(notifier) => Arc::new(OutboxNotify(notifier.clone())),
        None => Arc::new(PrintNotify(args.format)),
    };
    let remediator =
        runtime.block_on(remediation_cmd::open(remediation, &state_dir, steps_notify))?;
    let wake = Arc::new(tokio::sync::Notify::new());
    let executor = (!args.once).then(|| {
        runtime.spawn(remediation_cmd::executor(
            remediator.clone(),
            wake.clone(),
            stop.clone(),
        ))
    });
    let output = match &delivery {
        Some(notifier) => AlertOutput::Outbox(notifier.clone()),
        None => AlertOutput::Print {
            out: &mut out,
            format: args.format,
        },
    };
    let mut follower = Follower::open(&ruleset, &state_dir, limits, output, args.dedup_horizon)?
        .with_remediation(remediator.clone(), wake);

    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = tx.send(event);
    })
    .context("cannot start the file watcher")?;
    if !args.once {
        watcher
            .watch(&dir, RecursiveMode::Recursive)
            .with_context(|| format!("cannot watch {}", dir.display()))?;
    }
    loop {
        follower.sweep(&dir)?;
        follower.tick()?;
        if args.once {
            break;
        }
        // Wait for a change (or the safety-net interval), then let a burst settle.
        let deadline = Instant::now() + args.rescan;
        match rx.recv_timeout(args.rescan) {
            Ok(Err(err)) => tracing::warn!(error = %err, "file watcher error; sweeping"),
            Ok(Ok(_)) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => anyhow::bail!("file watcher stopped"),
        }
        let settle = Instant::now() + Duration::from_millis(300);
        while let Ok(_event) = rx.recv_timeout(settle.saturating_duration_since(Instant::now())) {
            if Instant::now() >= deadline {
                break;
            }
        }
    }
    let totals = follower.totals;
    drop(follower);
    stop.cancel();
    if let Some(executor) = executor {
        let _ = runtime.block_on(executor);
    }
    // --once: run the jobs this pass queued (their notifications join the outbox), then
    // deliver.
    let ran = runtime
        .block_on(remediator.run_until_idle())
        .context("remediation failed")?;
    for (job, status) in &ran {
        eprintln!("trailwatch: remediation {job}: {}", status.as_str());
    }
    out.flush().context("cannot write alerts")?;
    if let Some(notifier) = delivery {
        // Deliver what this pass enqueued (retries included) before exiting.
        let stats = runtime
            .block_on(notifier.run_until_idle())
            .context("delivery failed")?;
        eprintln!(
            "trailwatch: delivered {} alert(s); {} dead",
            stats.delivered, stats.dead
        );
    }
    eprintln!("{totals}");
    Ok(EXIT_OK)
}
