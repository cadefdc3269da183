//! Everything `trailwatch run` starts from a `sources:` section, in one call.

use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use trailwatch_event::Limits;
use trailwatch_store::SourceState;

use crate::config::SourcesConfig;
use crate::deadman::{AlertSink, Deadman};
use crate::dedup::Deliverer;
use crate::error::SourceError;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::s3_poll::S3Poller;
use crate::sns_http::{SnsEndpoint, bind, serve};
use crate::sqs::SqsSource;
use crate::sqs_s3::ObjectReader;
use crate::{aws, metrics};

/// Runs every configured source until `cancel` fires, then waits for them to finish their
/// in-flight work. The state (dedup ids, checkpoints, deliveries) lives in the SQLite file
/// `state_path`. The SNS endpoint, when configured, also serves `/metrics`. Dead-man alerts go
/// to `alerts`. Returns the first source error, after all sources stopped.
pub async fn run_sources(
    config: &SourcesConfig,
    state_path: &Path,
    pipeline: Arc<dyn Pipeline>,
    alerts: AlertSink,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> Result<(), SourceError> {
    let sdk = aws::load(&config.aws).await;
    run_sources_with_sdk(config, &sdk, state_path, pipeline, alerts, metrics, cancel).await
}

/// [`run_sources`] with an SDK configuration the caller built (tests use static credentials).
pub async fn run_sources_with_sdk(
    config: &SourcesConfig,
    sdk: &aws_config::SdkConfig,
    state_path: &Path,
    pipeline: Arc<dyn Pipeline>,
    alerts: AlertSink,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> Result<(), SourceError> {
    let state = Arc::new(Mutex::new(SourceState::open(state_path)?));
    let deliverer = Deliverer::new(state.clone(), pipeline, config.dedup_horizon);
    let sdk = sdk.clone();
    let s3 = aws::s3_client(&sdk, &config.aws);
    let sqs = aws::sqs_client(&sdk);
    let reader = |batch_events: usize| ObjectReader {
        s3: s3.clone(),
        limits: Limits::default(),
        batch_events,
    };
    let mut tasks: JoinSet<Result<(), SourceError>> = JoinSet::new();
    for q in &config.sqs {
        let source = SqsSource::new(
            q.clone(),
            sqs.clone(),
            reader(q.batch_events),
            deliverer.clone(),
            metrics.source(&q.name),
        );
        tasks.spawn(source.run(cancel.clone()));
    }
    for p in &config.s3_poll {
        let poller = S3Poller::new(
            p.clone(),
            reader(1000),
            deliverer.clone(),
            metrics.source(&p.name),
        )?;
        tasks.spawn(poller.run(cancel.clone()));
    }
    if let Some(sns) = &config.sns_http {
        let endpoint = SnsEndpoint::new(
            sns.clone(),
            deliverer.clone(),
            Some(reader(1000)),
            metrics.source("sns_http"),
        )?;
        let app = endpoint.router().merge(metrics::router(metrics.clone()));
        let listener = bind(sns)?;
        let sns = sns.clone();
        let cancel = cancel.clone();
        tasks.spawn(async move { serve(listener, app, &sns, cancel).await });
    }
    if let Some(d) = &config.deadman {
        let deadman = Deadman::new(state.clone(), d.after);
        let every = d.check_every;
        let cancel = cancel.clone();
        tasks.spawn(async move {
            deadman.run(every, alerts, cancel).await;
            Ok(())
        });
    }
    let mut first_error = None;
    while let Some(done) = tasks.join_next().await {
        let result = done.map_err(|e| SourceError::Task {
            what: "a source".into(),
            message: e.to_string(),
        });
        if let Err(e) | Ok(Err(e)) = result {
            tracing::error!(error = %e, "a source stopped with an error; stopping the others");
            cancel.cancel();
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}
