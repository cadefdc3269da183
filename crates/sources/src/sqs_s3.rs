//! Reading one CloudTrail log file from S3: GetObject, the body streamed through the event
//! crate's decoder on a blocking thread, events handed to the pipeline in bounded batches.
//!
//! Used by the SQS source (S3 notifications), the SNS endpoint (notifications pushed over
//! HTTP) and the S3 poller. Memory per object is bounded by `batch_events` times the channel
//! depth, whatever the file's size.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_s3::operation::get_object::GetObjectError;
use tokio_util::io::SyncIoBridge;
use trailwatch_event::{Event, Item, Limits, SkipScope, decode};

use crate::dedup::{Deliverer, lock, run_blocking};
use crate::error::{SourceError, sdk_message};
use crate::metrics::SourceMetrics;
use crate::s3_poll::LogKey;

/// Batches in flight between the decoding thread and the pipeline, per object.
const CHANNEL_DEPTH: usize = 2;

/// What reading one object did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObjectReport {
    /// Events decoded.
    pub events: u64,
    /// Events the pipeline took.
    pub processed: u64,
    /// Events dropped as duplicates.
    pub duplicates: u64,
    /// Records the decoder could not use (each logged).
    pub skipped_records: u64,
    /// Compressed bytes read.
    pub bytes: u64,
    /// The file was a digest file (nothing delivered).
    pub digest: bool,
}

/// How to read objects: the S3 client, decoder limits and the batch size.
#[derive(Clone)]
pub struct ObjectReader {
    /// The S3 client.
    pub s3: aws_sdk_s3::Client,
    /// Decoder limits (decompressed size cap, record size cap, depth).
    pub limits: Limits,
    /// Events per pipeline batch.
    pub batch_events: usize,
}

/// A reader that fails once `abort` is set, so the decoder stops early after the pipeline
/// refused a batch.
struct Abortable<R> {
    inner: R,
    abort: Arc<AtomicBool>,
}

impl<R: Read> Read for Abortable<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.abort.load(Ordering::Relaxed) {
            return Err(std::io::Error::other(
                "aborted: the pipeline refused a batch",
            ));
        }
        self.inner.read(buf)
    }
}

impl ObjectReader {
    /// Opens `s3://bucket/key` as a streaming body. A missing object (or bucket) is
    /// [`SourceError::ObjectMissing`].
    pub async fn open(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(aws_sdk_s3::primitives::ByteStream, Option<u64>), SourceError> {
        match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(out) => Ok((
                out.body,
                out.content_length.and_then(|n| u64::try_from(n).ok()),
            )),
            Err(e) => {
                let missing = matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_)))
                    || e.raw_response().map(|r| r.status().as_u16()) == Some(404);
                if missing {
                    Err(SourceError::ObjectMissing {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                    })
                } else {
                    Err(SourceError::GetObject {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                        message: sdk_message(&e),
                    })
                }
            }
        }
    }

    /// Streams `s3://bucket/key` through the decoder and delivers its events. Fails (after
    /// delivering what came before) when the object is missing, truncated or corrupt, or when
    /// the pipeline refuses a batch.
    pub async fn read(
        &self,
        bucket: &str,
        key: &str,
        message_id: Option<&str>,
        deliverer: &Deliverer,
        metrics: &SourceMetrics,
    ) -> Result<ObjectReport, SourceError> {
        let origin = format!("s3://{bucket}/{key}");
        if LogKey::parse(key).is_some_and(|k| k.digest) {
            tracing::info!(%origin, "skipping a CloudTrail digest file");
            return Ok(ObjectReport {
                digest: true,
                ..ObjectReport::default()
            });
        }
        let (body, size) = self.open(bucket, key).await?;
        metrics.objects_read.inc();
        let reader = blocking_read(body, tokio::runtime::Handle::current());
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Event>>(CHANNEL_DEPTH);
        let abort = Arc::new(AtomicBool::new(false));
        let abort_reader = abort.clone();
        let limits = self.limits.clone();
        let batch = self.batch_events.max(1);
        let origin_arc: Arc<str> = Arc::from(origin.as_str());
        // Spawned now (not lazily), so decoding runs while this task drains the channel.
        let decoding = tokio::task::spawn_blocking(move || {
            let reader = Abortable {
                inner: reader,
                abort: abort_reader,
            };
            let mut chunk = Vec::with_capacity(batch);
            let mut skipped = 0u64;
            let mut failure: Option<String> = None;
            let mut digest = false;
            let summary = decode(reader, origin_arc, &limits, &mut |item| match item {
                Item::Event(e) => {
                    chunk.push(e);
                    if chunk.len() >= batch {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(batch));
                        let _ = tx.blocking_send(full);
                    }
                }
                Item::Skipped(s) => match s.scope {
                    SkipScope::Record => {
                        skipped += 1;
                        tracing::warn!(skip = %s, "skipped a record");
                    }
                    SkipScope::Input => failure = Some(s.to_string()),
                },
                Item::Digest(_) => digest = true,
                Item::Object(o) => {
                    tracing::warn!(object = %o.url(), "a log file announced another object; ignored");
                }
            });
            if !chunk.is_empty() {
                let _ = tx.blocking_send(chunk);
            }
            (summary.bytes_in, skipped, failure, digest)
        });
        let mut report = ObjectReport::default();
        let mut delivery_error = None;
        while let Some(chunk) = rx.recv().await {
            let n = chunk.len() as u64;
            report.events += n;
            metrics.events_received.add(n);
            if delivery_error.is_some() {
                metrics.events_failed.add(n);
                continue;
            }
            match deliverer.deliver(chunk, &origin, message_id, metrics).await {
                Ok(d) => {
                    report.processed += d.processed;
                    report.duplicates += d.duplicates;
                }
                Err(e) => {
                    abort.store(true, Ordering::Relaxed);
                    delivery_error = Some(e);
                }
            }
        }
        let (bytes, skipped, failure, digest) = decoding.await.map_err(|e| SourceError::Task {
            what: format!("decoding {origin}"),
            message: e.to_string(),
        })?;
        report.bytes = size.unwrap_or(bytes);
        report.skipped_records = skipped;
        report.digest = digest;
        metrics.bytes_read.add(report.bytes);
        metrics.events_received.add(skipped);
        metrics.events_skipped.add(skipped);
        if let Some(e) = delivery_error {
            return Err(e);
        }
        if let Some(reason) = failure {
            return Err(SourceError::Undecodable {
                origin,
                message_id: message_id.map(str::to_owned),
                reason,
            });
        }
        Ok(report)
    }
}

/// Notes for the dead-man check that `key`'s account/region delivered a log file at `at`
/// (nothing for keys outside CloudTrail's layout, or digest files).
pub async fn record_delivery(
    deliverer: &Deliverer,
    key: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), SourceError> {
    let Some(k) = LogKey::parse(key).filter(|k| !k.digest) else {
        return Ok(());
    };
    let state = deliverer.state().clone();
    let key = key.to_owned();
    run_blocking("recording a delivery", move || {
        lock(&state).record_delivery(&k.account, &k.region, at, &key)
    })
    .await??;
    Ok(())
}

/// A blocking [`Read`] over an object body from [`ObjectReader::open`], for the event crate's
/// decoder on a blocking thread (`spawn_blocking`, or any thread that is not a runtime
/// worker): what `trailwatch scan s3://…` uses with [`crate::s3_poll::scan_objects`].
pub fn blocking_read(
    body: aws_sdk_s3::primitives::ByteStream,
    handle: tokio::runtime::Handle,
) -> impl Read + Send + 'static {
    SyncIoBridge::new_with_handle(body.into_async_read(), handle)
}
