//! Live ingestion of CloudTrail from AWS, for `trailwatch run` and `trailwatch scan s3://…`.
//!
//! Sources (several can run at once, each on a [`CancellationToken`]):
//!
//! - [`sqs::SqsSource`]: one SQS queue. Bodies are S3 `ObjectCreated` notifications (direct,
//!   through SNS raw or wrapped, or EventBridge "Object Created"), in which case the announced
//!   log file is streamed from S3 ([`sqs_s3`]), or EventBridge envelopes of CloudTrail events
//!   ([`sqs_eventbridge`]). A message is deleted only after everything in it reached the
//!   pipeline; a poison message is retried up to a limit and then left for the queue's
//!   redrive policy.
//! - [`sns_http`]: an HTTP(S) endpoint for SNS subscriptions; every message's signature is
//!   verified ([`sns_verify`]) before anything else happens.
//! - [`s3_poll::S3Poller`]: lists an org-trail prefix for history or when no notifications
//!   exist, with a checkpoint per account/region in the store.
//! - [`deadman::Deadman`]: raises an alert when an account/region stops delivering.
//!
//! Every event goes through [`dedup::Deliverer`], which drops event ids already handed to the
//! pipeline (persisted, within a horizon), then calls the injected [`Pipeline`] on a blocking
//! thread, then records the ids. Delivery is at least once: a crash between the pipeline and
//! the record can repeat a batch, never lose one.
//!
//! Counters reconcile: `received = processed + skipped + failed` ([`metrics`]).
//!
//! Architecture Invariant: this crate knows nothing about rules or destinations; the pipeline
//! is a trait object the binary supplies.

pub mod aws;
pub mod config;
pub mod deadman;
pub mod dedup;
pub mod error;
pub mod metrics;
pub mod pipeline;
pub mod run;
pub mod s3_poll;
pub mod sns_http;
pub mod sns_verify;
pub mod sqs;
pub mod sqs_eventbridge;
pub mod sqs_s3;

pub use config::{SourcesConfig, SourcesConfigError, parse_section};
pub use dedup::Deliverer;
pub use error::SourceError;
pub use metrics::Metrics;
pub use pipeline::{HandleOutcome, Pipeline, PipelineError};
pub use run::{run_sources, run_sources_with_sdk};
pub use tokio_util::sync::CancellationToken;
