//! `run_sources` from a parsed `sources:` section, as `trailwatch run` will call it: an SQS
//! queue fed by S3 notifications, plus the dead-man check, against moto.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use trailwatch_sources::metrics::Metrics;
use trailwatch_sources::{CancellationToken, aws, parse_section, run_sources_with_sdk};
use trailwatch_testkit::MotoServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sources_from_yaml_delivers_and_the_deadman_fires() {
    let Some(corpus) = make_corpus(300, 9, &["--accounts", "1"]) else {
        return;
    };
    let files = corpus_files(corpus.path());
    let ids = corpus_ids(&files);
    let moto = MotoServer::start().expect("moto server");
    let sdk = sdk(&moto).await;
    let s3 = aws::s3_client(&sdk, &aws_settings(&moto));
    let sqs = aws::sqs_client(&sdk);
    let url = create_queue(&sqs, "run-files").await;
    bucket_with_notification(&s3, &sqs, "run-bucket", &url).await;
    upload(&s3, "run-bucket", &files).await;

    let yaml = format!(
        "aws:\n  region: us-east-1\n  endpoint_url: {}\ndedup_horizon: 9000h\nsqs:\n  - name: files\n    queue_url: {url}\n    wait_time: 1s\ndeadman:\n  after: 2s\n  check_every: 250ms\n",
        moto.endpoint_url()
    );
    let config = parse_section("trailwatch.yaml", &yaml, 1).expect("valid section");
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Arc::new(Recording::default());
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let alerts = alerts.clone();
        Arc::new(move |a: trailwatch_alert::Alert| alerts.lock().unwrap().push(a))
    };
    let metrics = Metrics::new();
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let (pipeline, metrics, cancel) = (pipeline.clone(), metrics.clone(), cancel.clone());
        let db = dir.path().join("state.sqlite");
        async move { run_sources_with_sdk(&config, &sdk, &db, pipeline, sink, metrics, cancel).await }
    });
    assert!(wait_until(Duration::from_secs(60), async || pipeline.has_all(&ids)).await);
    // Every region of the account delivered once; after 2 s of silence each alerts, once.
    let regions: std::collections::BTreeSet<String> = files
        .iter()
        .map(|(k, _)| {
            trailwatch_sources::s3_poll::LogKey::parse(k)
                .unwrap()
                .region
        })
        .collect();
    let fired = wait_until(Duration::from_secs(20), async || {
        alerts.lock().unwrap().len() >= regions.len()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    cancel.cancel();
    run.await.unwrap().unwrap();
    assert!(
        fired,
        "{} alerts for {} regions",
        alerts.lock().unwrap().len(),
        regions.len()
    );
    let alerts = alerts.lock().unwrap().clone();
    assert_eq!(
        alerts.len(),
        regions.len(),
        "one alert per silent account/region"
    );
    assert!(
        alerts
            .iter()
            .all(|a| a.rule_id == "trailwatch-delivery-stopped"
                && a.severity == trailwatch_alert::Severity::High)
    );
    let got: std::collections::BTreeSet<String> = alerts.iter().map(|a| a.region.clone()).collect();
    assert_eq!(got, regions);
    assert_eq!(pipeline.duplicates(), 0);
    assert!(metrics.source("files").reconciles());
    assert_eq!(queue_depth(&sqs, &url).await, 0);
}
