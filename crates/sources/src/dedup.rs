//! Dedup by CloudTrail `eventID`, then delivery to the pipeline.
//!
//! The same event can arrive twice: CloudTrail itself delivers at least once, and the fast
//! EventBridge path and the S3 log file carry the same events by design. [`Deliverer`] keeps
//! the ids it handed to the pipeline in the store (`delivered_events`), forgets them once their
//! event time is older than the horizon, and drops repeats.
//!
//! Batches go through one at a time (an async lock), so two workers holding the same event can
//! never both see it as new. Order of effects: filter → pipeline → record ids. A crash between
//! the last two repeats the batch on redelivery (at least once), it never loses it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use trailwatch_event::Event;
use trailwatch_store::SourceState;

use crate::error::SourceError;
use crate::metrics::SourceMetrics;
use crate::pipeline::Pipeline;

/// How often old ids are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// What one delivery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Events the pipeline took.
    pub processed: u64,
    /// Events dropped as already delivered (or repeated inside the batch).
    pub duplicates: u64,
    /// Alerts the pipeline reported.
    pub alerts: u64,
}

/// Shared by every source of a process: the dedup store and the pipeline.
pub struct Deliverer {
    state: Arc<Mutex<SourceState>>,
    pipeline: Arc<dyn Pipeline>,
    horizon: TimeDelta,
    gate: tokio::sync::Mutex<Instant>,
}

impl Deliverer {
    /// A deliverer over `state` that remembers ids for `horizon` of event time.
    pub fn new(
        state: Arc<Mutex<SourceState>>,
        pipeline: Arc<dyn Pipeline>,
        horizon: Duration,
    ) -> Arc<Deliverer> {
        Arc::new(Deliverer {
            state,
            pipeline,
            horizon: TimeDelta::from_std(horizon).unwrap_or(TimeDelta::days(1)),
            gate: tokio::sync::Mutex::new(Instant::now()),
        })
    }

    /// The shared state store.
    pub fn state(&self) -> &Arc<Mutex<SourceState>> {
        &self.state
    }

    /// Hands the new events of `events` to the pipeline and records their ids. Counts every
    /// event in `metrics` as processed, skipped (duplicate) or failed.
    pub async fn deliver(
        &self,
        events: Vec<Event>,
        origin: &str,
        message_id: Option<&str>,
        metrics: &SourceMetrics,
    ) -> Result<Delivered, SourceError> {
        if events.is_empty() {
            return Ok(Delivered::default());
        }
        let mut last_prune = self.gate.lock().await;
        let total = events.len() as u64;
        let ids: Vec<String> = events
            .iter()
            .filter_map(|e| e.meta().event_id.clone())
            .collect();
        let state = self.state.clone();
        let seen = run_blocking("dedup lookup", move || {
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let flags = lock(&state).delivered(&refs)?;
            Ok::<_, SourceError>(
                ids.into_iter()
                    .zip(flags)
                    .filter(|(_, seen)| *seen)
                    .map(|(id, _)| id)
                    .collect::<HashSet<String>>(),
            )
        })
        .await??;
        let mut in_batch = HashSet::new();
        let fresh: Vec<Event> = events
            .into_iter()
            .filter(|e| match &e.meta().event_id {
                Some(id) => !seen.contains(id) && in_batch.insert(id.clone()),
                None => true,
            })
            .collect();
        let duplicates = total - fresh.len() as u64;
        metrics.events_skipped.add(duplicates);
        metrics.events_duplicate.add(duplicates);
        if duplicates > 0 {
            tracing::debug!(
                origin,
                message_id,
                duplicates,
                "dropped events already delivered"
            );
        }
        if fresh.is_empty() {
            return Ok(Delivered {
                processed: 0,
                duplicates,
                alerts: 0,
            });
        }
        let n = fresh.len() as u64;
        let marks: Vec<(String, DateTime<Utc>)> = fresh
            .iter()
            .filter_map(|e| e.meta().event_id.clone().map(|id| (id, e.meta().time)))
            .collect();
        let times: Vec<DateTime<Utc>> = fresh.iter().map(|e| e.meta().time).collect();
        let pipeline = self.pipeline.clone();
        let origin_owned = origin.to_owned();
        let handled =
            run_blocking("pipeline", move || pipeline.handle(fresh, &origin_owned)).await?;
        let outcome = match handled {
            Ok(outcome) => outcome,
            Err(source) => {
                metrics.events_failed.add(n);
                return Err(SourceError::Pipeline {
                    origin: origin.to_owned(),
                    message_id: message_id.map(str::to_owned),
                    source,
                });
            }
        };
        let now = Utc::now();
        for t in &times {
            metrics.lag.observe(now - *t);
        }
        let state = self.state.clone();
        let prune_due = last_prune.elapsed() >= PRUNE_EVERY;
        let cutoff = now - self.horizon;
        let recorded = run_blocking("dedup record", move || {
            let mut st = lock(&state);
            st.mark_delivered(&marks)?;
            if prune_due {
                st.prune_delivered(cutoff)?;
            }
            Ok::<_, SourceError>(())
        })
        .await?;
        if let Err(e) = recorded {
            // The pipeline has the events; count them as processed, but the message will be
            // retried (at least once), and the pipeline may see them again.
            metrics.events_processed.add(n);
            return Err(e);
        }
        if prune_due {
            *last_prune = Instant::now();
        }
        metrics.events_processed.add(n);
        metrics.alerts.add(outcome.alerts);
        Ok(Delivered {
            processed: n,
            duplicates,
            alerts: outcome.alerts,
        })
    }
}

/// Locks a std mutex, recovering from poisoning (the store's own transactions keep it sound).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` on a blocking thread, turning a panic into a [`SourceError::Task`].
pub(crate) async fn run_blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SourceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SourceError::Task {
            what: what.to_owned(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{HandleOutcome, PipelineError};
    use std::sync::atomic::{AtomicBool, Ordering};
    use trailwatch_event::Provenance;

    #[derive(Default)]
    struct Recording {
        ids: Mutex<Vec<String>>,
        fail: AtomicBool,
    }

    impl Pipeline for Recording {
        fn handle(
            &self,
            events: Vec<Event>,
            _origin: &str,
        ) -> Result<HandleOutcome, PipelineError> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(PipelineError::new("down"));
            }
            let mut ids = lock(&self.ids);
            for e in &events {
                ids.push(e.meta().event_id.clone().unwrap_or_default());
            }
            Ok(HandleOutcome { alerts: 1 })
        }
    }

    fn event(id: &str) -> Event {
        let rec = format!(
            r#"{{"eventVersion":"1.08","eventTime":"2026-01-01T00:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","eventID":"{id}","eventType":"AwsApiCall","recipientAccountId":"111122223333"}}"#
        );
        Event::from_record(&rec, Provenance::new(Arc::from("test"))).unwrap()
    }

    #[tokio::test]
    async fn drops_repeats_across_batches_and_inside_one() {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(Mutex::new(
            SourceState::open(dir.path().join("s.sqlite")).unwrap(),
        ));
        let pipeline = Arc::new(Recording::default());
        let d = Deliverer::new(state, pipeline.clone(), Duration::from_secs(86400));
        let m = SourceMetrics::default();
        m.events_received.add(5);
        let r = d
            .deliver(vec![event("a"), event("b"), event("a")], "o", None, &m)
            .await
            .unwrap();
        assert_eq!((r.processed, r.duplicates), (2, 1));
        let r = d
            .deliver(vec![event("b"), event("c")], "o", None, &m)
            .await
            .unwrap();
        assert_eq!((r.processed, r.duplicates), (1, 1));
        assert_eq!(*lock(&pipeline.ids), ["a", "b", "c"]);
        assert!(m.reconciles());
    }

    #[tokio::test]
    async fn a_failed_batch_is_not_recorded_and_is_retried() {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(Mutex::new(
            SourceState::open(dir.path().join("s.sqlite")).unwrap(),
        ));
        let pipeline = Arc::new(Recording::default());
        let d = Deliverer::new(state, pipeline.clone(), Duration::from_secs(86400));
        let m = SourceMetrics::default();
        pipeline.fail.store(true, Ordering::SeqCst);
        let err = d
            .deliver(vec![event("a")], "s3://b/k", Some("m-1"), &m)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("s3://b/k (message m-1)"), "{err}");
        assert_eq!(m.events_failed.get(), 1);
        pipeline.fail.store(false, Ordering::SeqCst);
        let r = d.deliver(vec![event("a")], "o", None, &m).await.unwrap();
        assert_eq!(r.processed, 1);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// Batches with repeats inside and across them, the pipeline failing at random: every
        /// id reaches the pipeline exactly once when failed batches are retried, and the
        /// counters reconcile.
        #[test]
        fn every_id_once_whatever_the_repeats_and_failures(
            batches in proptest::collection::vec(
                (proptest::collection::vec(0u8..40, 1..12), proptest::bool::weighted(0.3)),
                1..25,
            )
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let state = Arc::new(Mutex::new(SourceState::open(dir.path().join("s.sqlite")).unwrap()));
                let pipeline = Arc::new(Recording::default());
                let d = Deliverer::new(state, pipeline.clone(), Duration::from_secs(86400));
                let m = SourceMetrics::default();
                let mut expected = std::collections::BTreeSet::new();
                for (ids, fail_first) in &batches {
                    let make = || ids.iter().map(|i| event(&format!("id-{i}"))).collect::<Vec<_>>();
                    expected.extend(ids.iter().map(|i| format!("id-{i}")));
                    m.events_received.add(ids.len() as u64);
                    if *fail_first {
                        pipeline.fail.store(true, Ordering::SeqCst);
                        assert!(d.deliver(make(), "o", None, &m).await.is_err()
                            || ids.iter().all(|i| lock(&pipeline.ids).contains(&format!("id-{i}"))));
                        pipeline.fail.store(false, Ordering::SeqCst);
                        m.events_received.add(ids.len() as u64);
                    }
                    d.deliver(make(), "o", None, &m).await.unwrap();
                }
                let got = lock(&pipeline.ids).clone();
                let unique: std::collections::BTreeSet<String> = got.iter().cloned().collect();
                assert_eq!(got.len(), unique.len(), "an id reached the pipeline twice");
                assert_eq!(unique, expected);
                assert!(m.reconciles());
            });
        }
    }
}
