//! Shared helpers for the integration tests: moto clients, a recording pipeline, the corpus.
//!
//! testkit provides `MotoServer`; the AWS-side fixtures (bucket + notification + queue) and
//! the corpus upload are here because they are specific to the sources.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;
use trailwatch_event::Event;
use trailwatch_sources::{HandleOutcome, Pipeline, PipelineError};
use trailwatch_testkit::MotoServer;

/// The SDK configuration for a moto server (static test credentials, us-east-1).
pub async fn sdk(moto: &MotoServer) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto.endpoint_url())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "static"))
        .load()
        .await
}

/// The settings the sources use for moto (path-style S3).
pub fn aws_settings(moto: &MotoServer) -> trailwatch_sources::config::AwsSettings {
    trailwatch_sources::config::AwsSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(moto.endpoint_url()),
        force_path_style: Some(true),
        profile: None,
    }
}

/// Records every event id handed over; can be told to fail or to be slow.
#[derive(Default)]
pub struct Recording {
    pub ids: Mutex<HashMap<String, u64>>,
    pub batches: AtomicU64,
    pub fail: AtomicBool,
    pub delay_ms: AtomicU64,
}

impl Recording {
    pub fn count(&self) -> usize {
        self.ids.lock().unwrap().len()
    }
    pub fn duplicates(&self) -> u64 {
        self.ids.lock().unwrap().values().map(|n| n - 1).sum()
    }
    pub fn has_all(&self, expected: &[String]) -> bool {
        let ids = self.ids.lock().unwrap();
        expected.iter().all(|id| ids.contains_key(id))
    }
}

impl Pipeline for Recording {
    fn handle(&self, events: Vec<Event>, _origin: &str) -> Result<HandleOutcome, PipelineError> {
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(PipelineError::new("test pipeline told to fail"));
        }
        self.batches.fetch_add(1, Ordering::SeqCst);
        let mut ids = self.ids.lock().unwrap();
        for e in events {
            *ids.entry(e.meta().event_id.clone().expect("event id"))
                .or_default() += 1;
        }
        Ok(HandleOutcome::default())
    }
}

/// A corpus from `../shared/tools/make-corpus` (100 records per file, plus `extra` flags), or
/// `None` with a printed note when the shared folder is absent.
pub fn make_corpus(records: u64, seed: u64, extra: &[&str]) -> Option<tempfile::TempDir> {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tools/make-corpus");
    if !tool.exists() {
        eprintln!(
            "note: {} is absent; skipping this test's corpus part",
            tool.display()
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&tool)
        .args([
            "--records",
            &records.to_string(),
            "--per-file",
            "100",
            "--seed",
            &seed.to_string(),
        ])
        .args(extra)
        .arg("--out")
        .arg(dir.path())
        .output()
        .expect("running make-corpus");
    assert!(
        out.status.success(),
        "make-corpus failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(dir)
}

/// Every `.json.gz` under `dir`, as (key relative to dir, path), sorted.
pub fn corpus_files(dir: &Path) -> Vec<(String, PathBuf)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if path.to_string_lossy().ends_with(".json.gz") {
                let key = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((key, path));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The event ids in a set of corpus files.
pub fn corpus_ids(files: &[(String, PathBuf)]) -> Vec<String> {
    let mut ids = Vec::new();
    for (_, path) in files {
        let bytes = std::fs::read(path).unwrap();
        let (items, _) =
            trailwatch_event::decode_slice(&bytes, "corpus", &trailwatch_event::Limits::default());
        for item in items {
            if let trailwatch_event::Item::Event(e) = item {
                ids.push(e.meta().event_id.clone().unwrap());
            }
        }
    }
    ids
}

/// Uploads files under their keys.
pub async fn upload(s3: &aws_sdk_s3::Client, bucket: &str, files: &[(String, PathBuf)]) {
    for (key, path) in files {
        let body = aws_sdk_s3::primitives::ByteStream::from(std::fs::read(path).unwrap());
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(body)
            .send()
            .await
            .unwrap();
    }
}

/// Creates a queue (with a dead-letter queue when `dlq_after` is set) and returns its URL.
pub async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

/// The queue's ARN.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    attrs.attributes.unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone()
}

/// Visible + in-flight messages.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let n = |k: A| {
        attrs
            .get(&k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    n(A::ApproximateNumberOfMessages) + n(A::ApproximateNumberOfMessagesNotVisible)
}

/// A bucket whose ObjectCreated notifications go to the queue.
pub async fn bucket_with_notification(
    s3: &aws_sdk_s3::Client,
    sqs: &aws_sdk_sqs::Client,
    bucket: &str,
    queue_url: &str,
) {
    use aws_sdk_s3::types::{Event as S3Event, NotificationConfiguration, QueueConfiguration};
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let arn = queue_arn(sqs, queue_url).await;
    let conf = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .queue_arn(arn)
                .events(S3Event::from("s3:ObjectCreated:*"))
                .build()
                .unwrap(),
        )
        .build();
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(conf)
        .send()
        .await
        .unwrap();
}

/// Polls `cond` every 100 ms until it holds or `timeout` passes; returns whether it held.
pub async fn wait_until(timeout: Duration, mut cond: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A deliverer over a fresh state file in `dir`.
pub fn deliverer(db: &Path, pipeline: Arc<Recording>) -> Arc<trailwatch_sources::Deliverer> {
    let state = Arc::new(Mutex::new(trailwatch_store::SourceState::open(db).unwrap()));
    trailwatch_sources::Deliverer::new(state, pipeline, Duration::from_secs(400 * 86400))
}
