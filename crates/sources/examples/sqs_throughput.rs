//! Throughput from SQS + S3 (moto server) to the pipeline.
//!
//! ```sh
//! cargo run --release -p trailwatch-sources --example sqs_throughput -- [RECORDS] [PER_FILE] [CONCURRENCY]
//! ```
//!
//! Generates a corpus with `../shared/tools/make-corpus`, starts moto, uploads the files to a
//! bucket whose notifications go to a queue, then times the SQS source from its start until
//! the counting pipeline has every record, and prints records/s and MB/s. Needs the test venv
//! (`scripts/test-deps.sh`).
//!
//! Measured 2026-11-23 on the shared 2-core machine under load (dev profile, dependencies at
//! opt-level 2; moto 5.2.5 is the bottleneck), 50,000 records in 144 files (9.2 MB gzip):
//! concurrency 1: 7,091 records/s; concurrency 4: 12,922 records/s; concurrency 8:
//! 14,934 records/s.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::Credentials;
use trailwatch_event::{Event, Limits};
use trailwatch_sources::config::{AwsSettings, SqsConfig};
use trailwatch_sources::metrics::Metrics;
use trailwatch_sources::sqs::SqsSource;
use trailwatch_sources::sqs_s3::ObjectReader;
use trailwatch_sources::{
    CancellationToken, Deliverer, HandleOutcome, Pipeline, PipelineError, aws,
};

#[derive(Default)]
struct Counting(AtomicU64);

impl Pipeline for Counting {
    fn handle(&self, events: Vec<Event>, _origin: &str) -> Result<HandleOutcome, PipelineError> {
        self.0.fetch_add(events.len() as u64, Ordering::Relaxed);
        Ok(HandleOutcome::default())
    }
}

fn files(dir: &Path, out: &mut Vec<(String, PathBuf)>, base: &Path) {
    for e in std::fs::read_dir(dir).expect("corpus dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            files(&p, out, base);
        } else {
            let key = p
                .strip_prefix(base)
                .expect("under base")
                .to_string_lossy()
                .into_owned();
            out.push((key, p));
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let records = args.first().copied().unwrap_or(50_000);
    let per_file = args.get(1).copied().unwrap_or(500);
    let concurrency = args.get(2).copied().unwrap_or(4) as usize;
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tools/make-corpus");
    let corpus = tempfile::tempdir()?;
    let status = std::process::Command::new(&tool)
        .args([
            "--records",
            &records.to_string(),
            "--per-file",
            &per_file.to_string(),
            "--out",
        ])
        .arg(corpus.path())
        .status()?;
    if !status.success() {
        return Err("make-corpus failed".into());
    }
    let mut list = Vec::new();
    files(corpus.path(), &mut list, corpus.path());
    let bytes: u64 = list
        .iter()
        .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();

    let moto = trailwatch_testkit::MotoServer::start()?;
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto.endpoint_url())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "static"))
        .load()
        .await;
    let settings = AwsSettings {
        endpoint_url: Some(moto.endpoint_url()),
        ..AwsSettings::default()
    };
    let s3 = aws::s3_client(&sdk, &settings);
    let sqs = aws::sqs_client(&sdk);
    let url = sqs
        .create_queue()
        .queue_name("bench")
        .send()
        .await?
        .queue_url
        .unwrap_or_default();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .unwrap_or_default()
        .remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .unwrap_or_default();
    s3.create_bucket().bucket("bench").send().await?;
    use aws_sdk_s3::types::{Event as S3Event, NotificationConfiguration, QueueConfiguration};
    s3.put_bucket_notification_configuration()
        .bucket("bench")
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .queue_arn(arn)
                        .events(S3Event::from("s3:ObjectCreated:*"))
                        .build()?,
                )
                .build(),
        )
        .send()
        .await?;
    for (key, path) in &list {
        s3.put_object()
            .bucket("bench")
            .key(key)
            .body(std::fs::read(path)?.into())
            .send()
            .await?;
    }
    let state_dir = tempfile::tempdir()?;
    let state = Arc::new(Mutex::new(trailwatch_store::SourceState::open(
        state_dir.path().join("s.sqlite"),
    )?));
    let pipeline = Arc::new(Counting::default());
    let deliverer = Deliverer::new(state, pipeline.clone(), Duration::from_secs(400 * 86400));
    let metrics = Metrics::new();
    let mut config = SqsConfig::new("bench", &url);
    config.concurrency = concurrency;
    config.wait_time = Duration::from_secs(1);
    let reader = ObjectReader {
        s3: s3.clone(),
        limits: Limits::default(),
        batch_events: 1000,
    };
    let source = SqsSource::new(config, sqs, reader, deliverer, metrics.source("bench"));
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let run = tokio::spawn(source.run(cancel.clone()));
    while pipeline.0.load(Ordering::Relaxed) < records {
        if started.elapsed() > Duration::from_secs(1800) {
            return Err("timed out".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    cancel.cancel();
    run.await??;
    println!(
        "{records} records in {} files ({:.1} MB gzip), concurrency {concurrency}: {secs:.2} s, {:.0} records/s, {:.2} MB/s (gzip)",
        list.len(),
        bytes as f64 / 1e6,
        records as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}
