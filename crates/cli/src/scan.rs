//! `trailwatch scan`: decode every input on all cores, match, gate, print.
//!
//! Workers decode and evaluate (the pure, parallel part). The calling thread owns the
//! stateful gate (thresholds, dedup) and the output, so alerts come out in one place, and by
//! default in event-time order: windows then see events in the order they happened, and the
//! output is the same on every run.

use std::collections::HashMap;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use crossbeam_channel::{Sender, unbounded};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use trailwatch_alert::Alert;
use trailwatch_event::{Item, Limits, Preview, SkipReason, Skipped, decode_screened};
use trailwatch_rules::{Candidate, Clock, EvalScratch, Gate, MemoryState, RuleSet, SystemClock};

use crate::cli::{EXIT_FAILED_CHECK, EXIT_OK, LimitArgs, ProgressMode, ScanArgs};
use crate::filter::EventFilter;
use crate::inputs::{self, Input};
use crate::output::write_alert;
use crate::s3_inputs::{S3Access, is_s3_url};
use crate::summary::{Summary, thousands};

/// Decoding limits from flags.
pub fn limits(args: &LimitArgs) -> Limits {
    Limits {
        max_decompressed_bytes: args.max_decompressed,
        max_record_bytes: usize::try_from(args.max_record).unwrap_or(usize::MAX),
        ..Limits::default()
    }
}

/// What a worker tells the thread that owns the gate and the output.
enum Report {
    /// An input or record could not be used; print it now.
    Skipped(Skipped),
    /// Rule candidates from one event (only when streaming unordered).
    Candidates(Vec<Candidate>),
    /// One input is finished: its counts, and its candidates when ordered.
    Done {
        counts: Summary,
        candidates: Vec<Candidate>,
    },
}

/// Everything a worker needs, shared read-only.
pub struct ScanContext<'a> {
    /// The compiled rules.
    pub ruleset: &'a RuleSet,
    /// Which events to consider.
    pub filter: &'a EventFilter,
    /// Decoding limits.
    pub limits: &'a Limits,
    /// Send candidates per event instead of per input.
    pub streaming: bool,
    /// Skip messages printed per input before the rest are only counted (0: no limit).
    pub max_skip_messages: u64,
}

/// Decodes and evaluates one input, reporting as it goes.
fn process_input(
    input: &Input,
    ctx: &ScanContext<'_>,
    scratch: &mut EvalScratch,
    tx: &Sender<Report>,
) {
    let origin: Arc<str> = input.origin().into();
    let mut counts = Summary {
        inputs: 1,
        ..Summary::default()
    };
    let reader = match input.open() {
        Ok(reader) => reader,
        Err(err) => {
            eprintln!("trailwatch: skipped {origin}: cannot open: {err}");
            counts.inputs_skipped = 1;
            let _ = tx.send(Report::Done {
                counts,
                candidates: Vec::new(),
            });
            return;
        }
    };
    let mut candidates = Vec::new();
    // Most records are ruled out from their header: count them without building events.
    // (EventBridge envelopes are not screened, so the sink below still filters.)
    let (mut filtered_early, mut unmatched_early) = (0, 0);
    let mut screen = |preview: &Preview<'_>| {
        if !ctx.filter.accepts_preview(preview) {
            filtered_early += 1;
            false
        } else if !ctx.ruleset.may_match_preview(preview) {
            unmatched_early += 1;
            false
        } else {
            true
        }
    };
    let decoded = decode_screened(
        reader,
        origin,
        ctx.limits,
        &mut screen,
        &mut |item| match item {
            Item::Event(event) => {
                if !ctx.filter.accepts(event.meta()) {
                    counts.filtered += 1;
                    return;
                }
                let found = ctx.ruleset.evaluate(&event, scratch);
                if found.is_empty() {
                    counts.unmatched += 1;
                } else {
                    counts.matched += 1;
                    if ctx.streaming {
                        let _ = tx.send(Report::Candidates(found));
                    } else {
                        candidates.extend(found);
                    }
                }
            }
            Item::Skipped(skipped) => {
                counts.count_lossless_skip(&skipped);
                let _ = tx.send(Report::Skipped(skipped));
            }
            Item::Digest(_) => counts.digests += 1,
            Item::Object(_) => counts.object_refs += 1,
        },
    );
    counts.filtered += filtered_early;
    counts.unmatched += unmatched_early;
    counts.add_decoded(&decoded);
    let _ = tx.send(Report::Done { counts, candidates });
}

/// The stderr line for a skipped item: a note for documents that carry no records (an S3
/// test event), a warning for damage the decoder recovered from without losing a record,
/// and a skip otherwise.
pub fn skip_message(skipped: &Skipped) -> String {
    match (&skipped.reason, skipped.records_lost) {
        (SkipReason::S3TestEvent | SkipReason::UnsupportedNotification(_), _) => {
            format!("trailwatch: note: set aside {skipped}")
        }
        (_, Some(0)) => format!("trailwatch: warning: recovered from {skipped}; no record lost"),
        _ => format!("trailwatch: skipped {skipped}"),
    }
}

/// The order in which candidates are admitted: the way events happened, with stable
/// tie-breaks (equal keys keep their arrival order). Candidates stay where they are (they
/// are large); only their positions are sorted.
fn candidate_order(chunks: &[Vec<Option<Candidate>>]) -> Vec<(u32, u32)> {
    let key = |&(c, i): &(u32, u32)| {
        let a = chunks[c as usize][i as usize]
            .as_ref()
            .expect("every candidate is still pending");
        (a.event_time(), a.event_id(), a.rule_id(), a.dedup_key())
    };
    let mut order: Vec<(u32, u32)> = chunks
        .iter()
        .enumerate()
        .flat_map(|(c, chunk)| (0..chunk.len()).map(move |i| (c as u32, i as u32)))
        .collect();
    order.sort_by(|a, b| key(a).cmp(&key(b)));
    order
}

fn progress_bar(mode: ProgressMode, total_inputs: u64) -> ProgressBar {
    let show = match mode {
        ProgressMode::Always => true,
        ProgressMode::Never => false,
        ProgressMode::Auto => io::stderr().is_terminal(),
    };
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total_inputs), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} files  {msg}  [{elapsed_precise}]")
            .expect("static template is valid"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Runs a scan over `inputs` on `threads` workers. Alerts go to `emit` (in event-time
/// order unless `ordered` is false), skipped items are printed on stderr, and the totals
/// come back.
#[allow(clippy::too_many_arguments)]
pub fn scan_inputs(
    inputs: &[Input],
    ctx: &ScanContext<'_>,
    gate: &mut Gate,
    threads: usize,
    progress: &ProgressBar,
    emit: &mut (dyn FnMut(&Alert) -> io::Result<()> + Send),
) -> anyhow::Result<Summary> {
    let mut order: Vec<&Input> = inputs.iter().collect();
    // Big files first, so one large file does not finish alone at the end.
    order.sort_by_key(|input| std::cmp::Reverse(input.size()));
    let (tx, rx) = unbounded::<Report>();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("scan-{i}"))
        .build()
        .context("cannot start worker threads")?;
    let mut totals = Summary::default();
    // Candidates per input, in arrival order, until all are in.
    let mut pending: Vec<Vec<Option<Candidate>>> = Vec::new();
    let mut pending_count: u64 = 0;
    let mut skips_per_input: HashMap<Arc<str>, u64> = HashMap::new();
    let started = Instant::now();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        scope.spawn(move || {
            pool.install(|| {
                order
                    .par_iter()
                    .for_each_init(EvalScratch::default, |scratch, input| {
                        process_input(input, ctx, scratch, &tx)
                    })
            })
        });
        for report in rx {
            match report {
                Report::Skipped(skipped) => {
                    let shown = skips_per_input
                        .entry(skipped.provenance.origin.clone())
                        .or_default();
                    *shown += 1;
                    if ctx.max_skip_messages == 0 || *shown <= ctx.max_skip_messages {
                        progress.suspend(|| eprintln!("{}", skip_message(&skipped)));
                    }
                }
                Report::Candidates(found) => {
                    for candidate in found {
                        for alert in gate.admit(candidate) {
                            totals.alerts += 1;
                            progress
                                .suspend(|| emit(&alert))
                                .context("cannot write alert")?;
                        }
                    }
                }
                Report::Done { counts, candidates } => {
                    totals.add(&counts);
                    pending_count += candidates.len() as u64;
                    if !candidates.is_empty() {
                        pending.push(candidates.into_iter().map(Some).collect());
                    }
                    progress.inc(1);
                    let secs = started.elapsed().as_secs_f64().max(1e-3);
                    progress.set_message(format!(
                        "{} records  {} alerts  {} records/s",
                        thousands(totals.records_in),
                        thousands(totals.alerts + pending_count),
                        thousands((totals.records_in as f64 / secs) as u64)
                    ));
                }
            }
        }
        Ok(())
    })?;
    if ctx.max_skip_messages > 0 {
        let mut flooded: Vec<_> = skips_per_input
            .into_iter()
            .filter(|(_, n)| *n > ctx.max_skip_messages)
            .collect();
        flooded.sort();
        for (origin, n) in flooded {
            eprintln!(
                "trailwatch: {origin}: {} more skip messages not shown (--max-skip-messages 0 shows all)",
                n - ctx.max_skip_messages
            );
        }
    }
    // The gate is serial and the other core is idle by now: printing (and freeing) the
    // alerts happens beside it.
    let (alerts_tx, alerts_rx) = crossbeam_channel::bounded::<Alert>(256);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let printer = scope.spawn(move || -> io::Result<()> {
            for alert in alerts_rx {
                emit(&alert)?;
            }
            Ok(())
        });
        // A send fails only once the printer stopped on a write error: then stop too, and
        // report that error.
        'admit: {
            for (c, i) in candidate_order(&pending) {
                let Some(candidate) = pending[c as usize][i as usize].take() else {
                    continue;
                };
                for alert in gate.admit(candidate) {
                    totals.alerts += 1;
                    if alerts_tx.send(alert).is_err() {
                        break 'admit;
                    }
                }
            }
            for alert in gate.flush() {
                totals.alerts += 1;
                if alerts_tx.send(alert).is_err() {
                    break 'admit;
                }
            }
        }
        drop(alerts_tx);
        let printed = printer.join().expect("the alert printer does not panic");
        printed.context("cannot write alert")?;
        Ok(())
    })?;
    progress.finish_and_clear();
    Ok(totals)
}

/// `trailwatch scan`.
pub fn run(args: ScanArgs) -> anyhow::Result<u8> {
    let (urls, paths): (Vec<_>, Vec<_>) = args.paths.iter().cloned().partition(|p| is_s3_url(p));
    // Walking the folders (a stat per file) and compiling the rules are independent.
    let (loaded, listed) = std::thread::scope(|scope| {
        let lister = scope.spawn(|| inputs::list(&paths));
        let loaded = crate::ruleset::load(&args.rules);
        (
            loaded,
            lister.join().expect("listing inputs does not panic"),
        )
    });
    // Bad rules are reported first, as before.
    let (config, ruleset) = loaded?;
    let mut listing = listed?;
    let filter = EventFilter::new(&args.filter, Utc::now());
    let limits = limits(&args.limits);
    if !urls.is_empty() {
        let s3 = S3Access::new(&config, &limits)?;
        for url in &urls {
            let url = url.to_string_lossy();
            let objects = s3.list(&url, &filter, filter.since(), filter.until())?;
            listing.inputs.extend(objects.into_iter().map(Input::S3));
        }
    }
    let ctx = ScanContext {
        ruleset: &ruleset,
        filter: &filter,
        limits: &limits,
        streaming: args.unordered,
        max_skip_messages: args.max_skip_messages,
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut gate = Gate::new(&ruleset, Box::new(MemoryState::default()), clock);
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let progress = progress_bar(args.progress, listing.inputs.len() as u64);
    // Not locked: alerts are printed from the thread beside the gate.
    let mut out = BufWriter::with_capacity(64 * 1024, io::stdout());
    let started = Instant::now();
    let mut emit = |alert: &Alert| write_alert(&mut out, alert, args.format);
    let mut summary = scan_inputs(
        &listing.inputs,
        &ctx,
        &mut gate,
        threads,
        &progress,
        &mut emit,
    )?;
    out.flush().context("cannot write alerts")?;
    summary.files_ignored = listing.ignored.len() as u64;
    eprintln!("{}", summary.with_elapsed(started.elapsed()));
    debug_assert!(
        summary.reconciles(),
        "summary does not reconcile: {summary:?}"
    );
    if args.strict && summary.skipped_anything() {
        return Ok(EXIT_FAILED_CHECK);
    }
    Ok(EXIT_OK)
}
