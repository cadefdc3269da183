//! Counters per source, rendered in the Prometheus text format.
//!
//! Reconciliation: for every source, `events_received = events_processed + events_skipped +
//! events_failed` once in-flight work has settled. "Skipped" covers duplicates (dedup) and
//! records the decoder could not use; "failed" covers events whose batch the pipeline refused
//! or whose input failed midway (they come back with the message's redelivery and are counted
//! again as received).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

/// Upper bounds (seconds) of the event-time-to-handling lag histogram.
pub const LAG_BUCKETS: [f64; 11] = [
    1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 10800.0, 43200.0, 86400.0,
];

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The lag from an event's `eventTime` to the moment the pipeline took it.
#[derive(Debug, Default)]
pub struct LagHistogram {
    buckets: [Counter; LAG_BUCKETS.len()],
    count: Counter,
    sum_ms: Counter,
}

impl LagHistogram {
    /// Records one lag (negative lags, from clock skew, count as zero).
    pub fn observe(&self, lag: chrono::TimeDelta) {
        let ms = lag.num_milliseconds().max(0) as u64;
        let secs = ms as f64 / 1000.0;
        for (bound, counter) in LAG_BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                counter.inc();
            }
        }
        self.count.inc();
        self.sum_ms.add(ms);
    }
    /// How many lags were recorded.
    pub fn count(&self) -> u64 {
        self.count.get()
    }

    /// Appends the `_bucket`, `_sum` and `_count` series of `metric` with `labels`
    /// (`key="value",…`, may be empty). The `# HELP`/`# TYPE` lines are the caller's.
    pub fn render_series(&self, out: &mut String, metric: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, counter) in LAG_BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{metric}_bucket{{{labels}{sep}le=\"{bound}\"}} {}",
                counter.get()
            );
        }
        let count = self.count.get();
        let _ = writeln!(out, "{metric}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = |l: &str| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{{{l}}}")
            }
        };
        let _ = writeln!(
            out,
            "{metric}_sum{} {}",
            braces(labels),
            self.sum_ms.get() as f64 / 1000.0
        );
        let _ = writeln!(out, "{metric}_count{} {count}", braces(labels));
    }
}

/// The counters of one source (a queue, the SNS endpoint, a poller).
#[derive(Debug, Default)]
pub struct SourceMetrics {
    /// Records seen in decoded inputs (events plus records the decoder skipped).
    pub events_received: Counter,
    /// Events the pipeline took.
    pub events_processed: Counter,
    /// Duplicates and undecodable records.
    pub events_skipped: Counter,
    /// Events in a batch the pipeline refused or in an input that failed midway.
    pub events_failed: Counter,
    /// Of the skipped events, the duplicates.
    pub events_duplicate: Counter,
    /// Messages (SQS) or requests (SNS) received.
    pub messages_received: Counter,
    /// Messages deleted after full processing.
    pub messages_deleted: Counter,
    /// Messages that carried nothing to process (S3 test events, digest files), deleted.
    pub messages_skipped: Counter,
    /// Messages whose processing failed and that stay in the queue for a retry.
    pub messages_failed: Counter,
    /// Messages past the receive limit, left for the queue's redrive policy.
    pub messages_poison: Counter,
    /// SNS requests rejected (bad signature, unknown topic, replay, ...).
    pub requests_rejected: Counter,
    /// S3 objects read.
    pub objects_read: Counter,
    /// Bytes read from S3 (compressed).
    pub bytes_read: Counter,
    /// Alerts the pipeline reported.
    pub alerts: Counter,
    /// Event-time-to-handling lag.
    pub lag: LagHistogram,
}

impl SourceMetrics {
    /// True when `received = processed + skipped + failed`.
    pub fn reconciles(&self) -> bool {
        self.events_received.get()
            == self.events_processed.get() + self.events_skipped.get() + self.events_failed.get()
    }
}

/// Appends more metrics to the exposition (the binary's own stages).
pub type Collector = Box<dyn Fn(&mut String) + Send + Sync>;

/// All sources' counters, by source name, plus any collectors the binary added.
#[derive(Default)]
pub struct Metrics {
    sources: Mutex<BTreeMap<String, Arc<SourceMetrics>>>,
    collectors: Mutex<Vec<Collector>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

/// A counter's name suffix, help text and accessor.
type CounterDef = (&'static str, &'static str, fn(&SourceMetrics) -> &Counter);

const COUNTERS: &[CounterDef] = &[
    (
        "events_received_total",
        "Records seen in decoded inputs.",
        |m| &m.events_received,
    ),
    ("events_processed_total", "Events the pipeline took.", |m| {
        &m.events_processed
    }),
    (
        "events_skipped_total",
        "Duplicates and undecodable records.",
        |m| &m.events_skipped,
    ),
    (
        "events_failed_total",
        "Events whose batch or input failed (retried later).",
        |m| &m.events_failed,
    ),
    (
        "events_duplicate_total",
        "Skipped events that were duplicates.",
        |m| &m.events_duplicate,
    ),
    (
        "messages_received_total",
        "Messages or requests received.",
        |m| &m.messages_received,
    ),
    (
        "messages_deleted_total",
        "Messages deleted after full processing.",
        |m| &m.messages_deleted,
    ),
    (
        "messages_skipped_total",
        "Messages with nothing to process (test events, digests), deleted.",
        |m| &m.messages_skipped,
    ),
    (
        "messages_failed_total",
        "Messages whose processing failed, left for a retry.",
        |m| &m.messages_failed,
    ),
    (
        "messages_poison_total",
        "Messages past the receive limit, left for the redrive policy.",
        |m| &m.messages_poison,
    ),
    (
        "requests_rejected_total",
        "SNS requests rejected with 403.",
        |m| &m.requests_rejected,
    ),
    ("objects_read_total", "S3 objects read.", |m| {
        &m.objects_read
    }),
    ("bytes_read_total", "Bytes read from S3.", |m| &m.bytes_read),
    ("alerts_total", "Alerts the pipeline reported.", |m| {
        &m.alerts
    }),
];

impl Metrics {
    /// A new, empty registry.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// The counters of the source called `name` (created on first use).
    pub fn source(&self, name: &str) -> Arc<SourceMetrics> {
        let mut map = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_owned()).or_default().clone()
    }

    /// Adds a collector whose text is appended to every exposition.
    pub fn add_collector(&self, collect: Collector) {
        self.collectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(collect);
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let map = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (suffix, help, get) in COUNTERS {
            let _ = writeln!(out, "# HELP trailwatch_source_{suffix} {help}");
            let _ = writeln!(out, "# TYPE trailwatch_source_{suffix} counter");
            for (name, m) in map.iter() {
                let _ = writeln!(
                    out,
                    "trailwatch_source_{suffix}{{source=\"{}\"}} {}",
                    escape(name),
                    get(m).get()
                );
            }
        }
        let metric = "trailwatch_source_event_lag_seconds";
        let _ = writeln!(
            out,
            "# HELP {metric} Lag from eventTime to the pipeline taking the event."
        );
        let _ = writeln!(out, "# TYPE {metric} histogram");
        for (name, m) in map.iter() {
            m.lag
                .render_series(&mut out, metric, &format!("source=\"{}\"", escape(name)));
        }
        drop(map);
        let collectors = self.collectors.lock().unwrap_or_else(|p| p.into_inner());
        for collect in collectors.iter() {
            collect(&mut out);
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `GET /metrics` alone on `listener` (plain HTTP, bind it to loopback or a
/// scraping network) until `cancel` fires.
pub async fn serve(
    listener: std::net::TcpListener,
    metrics: Arc<Metrics>,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<(), crate::SourceError> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| crate::SourceError::Io { what, source }
    };
    listener
        .set_nonblocking(true)
        .map_err(io("setting the metrics listener non-blocking"))?;
    let listener =
        tokio::net::TcpListener::from_std(listener).map_err(io("registering the listener"))?;
    axum::serve(listener, router(metrics))
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
        .map_err(io("serving /metrics"))
}

/// A router serving `GET /metrics` from `metrics`, to mount wherever the binary likes.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    metrics.render(),
                )
                    .into_response()
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_lag_histogram() {
        let metrics = Metrics::new();
        let m = metrics.source("queue \"a\"");
        m.events_received.add(3);
        m.events_processed.add(2);
        m.events_skipped.add(1);
        m.lag.observe(chrono::TimeDelta::seconds(10));
        m.lag.observe(chrono::TimeDelta::seconds(-3));
        assert!(m.reconciles());
        let text = metrics.render();
        assert!(
            text.contains("trailwatch_source_events_received_total{source=\"queue \\\"a\\\"\"} 3")
        );
        assert!(text.contains("# TYPE trailwatch_source_event_lag_seconds histogram"));
        assert!(text.contains("le=\"1\"} 1"), "{text}");
        assert!(text.contains("le=\"15\"} 2"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 2"), "{text}");
        assert!(
            text.contains("trailwatch_source_event_lag_seconds_sum{source=\"queue \\\"a\\\"\"} 10")
        );
        m.events_received.inc();
        assert!(!m.reconciles());
    }

    #[test]
    fn collectors_append_and_unlabelled_series_have_no_braces() {
        let metrics = Metrics::new();
        let lag = Arc::new(LagHistogram::default());
        lag.observe(chrono::TimeDelta::milliseconds(2500));
        let held = lag.clone();
        metrics.add_collector(Box::new(move |out| {
            held.render_series(out, "extra_lag_seconds", "");
        }));
        let text = metrics.render();
        assert!(
            text.contains("extra_lag_seconds_bucket{le=\"5\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("extra_lag_seconds_bucket{le=\"1\"} 0"),
            "{text}"
        );
        assert!(text.contains("extra_lag_seconds_sum 2.5\n"), "{text}");
        assert!(text.contains("extra_lag_seconds_count 1\n"), "{text}");
    }
}
