//! The SQS source: receive, process with bounded concurrency, delete only what is done.
//!
//! - At most `concurrency` messages are in flight; each streams at most one object at a time
//!   in bounded batches, so memory is bounded whatever the queue holds.
//! - While a message is being processed its visibility timeout is extended every half
//!   timeout, so a large file is not handed to another consumer midway.
//! - A message is deleted only after every event in it (or in the files it announces)
//!   reached the pipeline. Messages carrying only notices (S3 test events, digest files) are
//!   deleted with a log line.
//! - A failing message becomes visible again after `retry_delay`; from its `max_receives`-th
//!   receive on (`ApproximateReceiveCount`) it is left alone, with an error log, for the
//!   queue's redrive policy to move to the dead-letter queue. Nothing is deleted silently.
//! - On cancellation no new message is received; in-flight messages are finished and deleted
//!   as usual.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use chrono::{DateTime, Utc};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use trailwatch_event::Limits;

use crate::config::SqsConfig;
use crate::dedup::Deliverer;
use crate::error::{SourceError, sdk_message};
use crate::metrics::SourceMetrics;
use crate::sqs_eventbridge::{deliver_events, plan_counted};
use crate::sqs_s3::{ObjectReader, record_delivery};

/// How one message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageOutcome {
    /// Everything reached the pipeline; the message was deleted.
    Done {
        /// Events the pipeline took (duplicates excluded).
        processed: u64,
    },
    /// Only notices (test event, digest); the message was deleted.
    Skipped,
    /// Processing failed; the message stays for a retry.
    Retry,
    /// Past the receive limit; left for the redrive policy.
    Poison,
}

/// One queue.
pub struct SqsSource {
    config: SqsConfig,
    queue_name: String,
    sqs: aws_sdk_sqs::Client,
    reader: ObjectReader,
    deliverer: Arc<Deliverer>,
    metrics: Arc<SourceMetrics>,
    limits: Limits,
}

impl SqsSource {
    /// A source for `config`'s queue; objects are read with `reader`.
    pub fn new(
        config: SqsConfig,
        sqs: aws_sdk_sqs::Client,
        reader: ObjectReader,
        deliverer: Arc<Deliverer>,
        metrics: Arc<SourceMetrics>,
    ) -> SqsSource {
        let queue_name = config
            .queue_url
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(&config.name)
            .to_owned();
        let limits = reader.limits.clone();
        SqsSource {
            config,
            queue_name,
            sqs,
            reader,
            deliverer,
            metrics,
            limits,
        }
    }

    fn sqs_err(&self, operation: &'static str, e: impl std::error::Error) -> SourceError {
        SourceError::Sqs {
            queue: self.config.queue_url.clone(),
            operation,
            message: sdk_message(&e),
        }
    }

    /// Runs until `cancel` fires, then finishes the messages in flight.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), SourceError> {
        let this = Arc::new(self);
        let sem = Arc::new(Semaphore::new(this.config.concurrency));
        let mut tasks: JoinSet<MessageOutcome> = JoinSet::new();
        let mut backoff = Duration::from_millis(200);
        tracing::info!(source = %this.config.name, queue = %this.config.queue_url, "SQS source started");
        loop {
            while let Some(done) = tasks.try_join_next() {
                if let Err(e) = done {
                    tracing::error!(source = %this.config.name, error = %e, "message task panicked; its message stays in the queue");
                }
            }
            let first = tokio::select! {
                p = sem.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = cancel.cancelled() => break,
            };
            let max = (1 + sem.available_permits()).min(10) as i32;
            let received = tokio::select! {
                r = this.receive(max) => r,
                _ = cancel.cancelled() => break,
            };
            let messages = match received {
                Ok(m) => {
                    backoff = Duration::from_millis(200);
                    m
                }
                Err(e) => {
                    tracing::warn!(source = %this.config.name, error = %e, "receive failed; backing off");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = cancel.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            let mut first = Some(first);
            for msg in messages {
                let permit = match first.take() {
                    Some(p) => p,
                    None => match sem.clone().acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                tasks.spawn(this.clone().handle(msg, permit));
            }
        }
        tracing::info!(source = %this.config.name, in_flight = tasks.len(), "SQS source stopping; finishing messages in flight");
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(source = %this.config.name, error = %e, "message task panicked; its message stays in the queue");
            }
        }
        Ok(())
    }

    async fn receive(&self, max: i32) -> Result<Vec<Message>, SourceError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.config.queue_url)
            .max_number_of_messages(max)
            .wait_time_seconds(self.config.wait_time.as_secs() as i32)
            .visibility_timeout(self.config.visibility_timeout.as_secs().max(1) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| self.sqs_err("ReceiveMessage", e))?;
        Ok(out.messages.unwrap_or_default())
    }

    /// Processes one received message to its end (delete, retry or poison).
    pub async fn handle(
        self: Arc<Self>,
        msg: Message,
        _permit: OwnedSemaphorePermit,
    ) -> MessageOutcome {
        let id = msg.message_id().unwrap_or("").to_owned();
        let Some(receipt) = msg.receipt_handle().map(str::to_owned) else {
            tracing::error!(source = %self.config.name, message_id = %id, "message without a receipt handle");
            return MessageOutcome::Retry;
        };
        let receives: u32 = msg
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        self.metrics.messages_received.inc();
        if receives > self.config.max_receives {
            self.metrics.messages_poison.inc();
            tracing::error!(source = %self.config.name, queue = %self.config.queue_url, message_id = %id, receives, max_receives = self.config.max_receives,
                "poison message past its receive limit: not processed, not deleted; left for the queue's redrive policy (dead-letter queue)");
            return MessageOutcome::Poison;
        }
        // The extender stops when processing ends, and also when this task is dropped midway
        // (the guard cancels it), so an abandoned message becomes visible again.
        let stop_extending = CancellationToken::new();
        let guard = stop_extending.clone().drop_guard();
        let extender = tokio::spawn(self.clone().extend_visibility(
            receipt.clone(),
            id.clone(),
            stop_extending,
        ));
        let result = self.process(msg.body().unwrap_or("").as_bytes(), &id).await;
        drop(guard);
        let _ = extender.await;
        match result {
            Ok(outcome) => {
                match self
                    .sqs
                    .delete_message()
                    .queue_url(&self.config.queue_url)
                    .receipt_handle(&receipt)
                    .send()
                    .await
                {
                    Ok(_) => self.metrics.messages_deleted.inc(),
                    Err(e) => {
                        // Processed but not deleted: it comes back, and dedup drops its events.
                        tracing::warn!(source = %self.config.name, message_id = %id, error = %self.sqs_err("DeleteMessage", e), "delete failed; the message will be redelivered and deduplicated");
                    }
                }
                if outcome == MessageOutcome::Skipped {
                    self.metrics.messages_skipped.inc();
                }
                outcome
            }
            Err(e) if receives >= self.config.max_receives => {
                self.metrics.messages_failed.inc();
                self.metrics.messages_poison.inc();
                tracing::error!(source = %self.config.name, queue = %self.config.queue_url, message_id = %id, receives, error = %e,
                    "message failed on its last allowed receive: not deleted; left for the queue's redrive policy (dead-letter queue)");
                MessageOutcome::Poison
            }
            Err(e) => {
                self.metrics.messages_failed.inc();
                tracing::warn!(source = %self.config.name, message_id = %id, receives, max_receives = self.config.max_receives, error = %e, "message failed; it will be retried");
                let delay = self.config.retry_delay.as_secs().min(43_200) as i32;
                if let Err(e) = self
                    .sqs
                    .change_message_visibility()
                    .queue_url(&self.config.queue_url)
                    .receipt_handle(&receipt)
                    .visibility_timeout(delay)
                    .send()
                    .await
                {
                    tracing::warn!(source = %self.config.name, message_id = %id, error = %self.sqs_err("ChangeMessageVisibility", e), "could not set the retry delay");
                }
                MessageOutcome::Retry
            }
        }
    }

    async fn extend_visibility(
        self: Arc<Self>,
        receipt: String,
        id: String,
        stop: CancellationToken,
    ) {
        let timeout = self.config.visibility_timeout.max(Duration::from_secs(1));
        let every = (timeout / 2).max(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            match self
                .sqs
                .change_message_visibility()
                .queue_url(&self.config.queue_url)
                .receipt_handle(&receipt)
                .visibility_timeout(timeout.as_secs().max(1) as i32)
                .send()
                .await
            {
                Ok(_) => {
                    tracing::debug!(source = %self.config.name, message_id = %id, "visibility extended")
                }
                Err(e) => {
                    tracing::warn!(source = %self.config.name, message_id = %id, error = %self.sqs_err("ChangeMessageVisibility", e), "could not extend visibility")
                }
            }
        }
    }

    async fn process(&self, body: &[u8], id: &str) -> Result<MessageOutcome, SourceError> {
        let origin = format!("sqs:{}", self.queue_name);
        let m = &self.metrics;
        let mut plan = plan_counted(
            body.to_vec(),
            &origin,
            id,
            &self.limits,
            m,
            "decoding a message",
        )
        .await?;
        if plan.only_notices() {
            tracing::info!(source = %self.config.name, message_id = %id, notices = ?plan.notices, "message carries nothing to process; deleting it");
            return Ok(MessageOutcome::Skipped);
        }
        let mut processed = deliver_events(
            std::mem::take(&mut plan.events),
            &origin,
            Some(id),
            &self.deliverer,
            m,
        )
        .await?;
        for obj in &plan.objects {
            let report = self
                .reader
                .read(&obj.bucket, &obj.key, Some(id), &self.deliverer, m)
                .await?;
            processed += report.processed;
            let at = obj
                .event_time
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(Utc::now);
            record_delivery(&self.deliverer, &obj.key, at).await?;
        }
        if let Some(reason) = plan.failure {
            return Err(SourceError::Undecodable {
                origin,
                message_id: Some(id.to_owned()),
                reason,
            });
        }
        Ok(MessageOutcome::Done { processed })
    }
}
