//! S3 notifications that reach the queue wrapped: through SNS (standard envelope and raw
//! delivery) and as EventBridge "Object Created" events, against moto.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use trailwatch_event::Limits;
use trailwatch_sources::config::SqsConfig;
use trailwatch_sources::metrics::Metrics;
use trailwatch_sources::sqs::SqsSource;
use trailwatch_sources::sqs_s3::ObjectReader;
use trailwatch_sources::{CancellationToken, aws};
use trailwatch_testkit::MotoServer;

fn s3_notification(bucket: &str, key: &str) -> String {
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": chrono::Utc::now().to_rfc3339(), "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": key.replace('/', "%2F"), "size": 100}}
    }]})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_notifications_through_sns_wrapped_raw_and_eventbridge() {
    let Some(corpus) = make_corpus(600, 13, &["--accounts", "1"]) else {
        return;
    };
    let files = corpus_files(corpus.path());
    assert!(files.len() >= 3);
    let moto = MotoServer::start().expect("moto server");
    let sdk = sdk(&moto).await;
    let s3 = aws::s3_client(&sdk, &aws_settings(&moto));
    let sqs = aws::sqs_client(&sdk);
    let sns = aws_sdk_sns::Client::new(&sdk);
    let eb = aws_sdk_eventbridge::Client::new(&sdk);
    s3.create_bucket().bucket("wrapped").send().await.unwrap();
    upload(&s3, "wrapped", &files[..3]).await;
    let url = create_queue(&sqs, "wrapped-files").await;
    let arn = queue_arn(&sqs, &url).await;

    // SNS, standard envelope and raw delivery.
    let topic = sns
        .create_topic()
        .name("trail-files")
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&arn)
        .send()
        .await
        .unwrap();
    sns.publish()
        .topic_arn(&topic)
        .message(s3_notification("wrapped", &files[0].0))
        .send()
        .await
        .unwrap();
    let raw_topic = sns
        .create_topic()
        .name("trail-files-raw")
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    sns.subscribe()
        .topic_arn(&raw_topic)
        .protocol("sqs")
        .endpoint(&arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();
    sns.publish()
        .topic_arn(&raw_topic)
        .message(s3_notification("wrapped", &files[1].0))
        .send()
        .await
        .unwrap();

    // EventBridge "Object Created" (S3's EventBridge notifications) to the same queue.
    eb.put_rule()
        .name("s3-object-created")
        .event_pattern(r#"{"source":["aws.s3"],"detail-type":["Object Created"]}"#)
        .send()
        .await
        .unwrap();
    eb.put_targets()
        .rule("s3-object-created")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("q")
                .arn(&arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    // The detail S3 sends to EventBridge (event-version 1.1), as AWS documents it.
    let detail = serde_json::json!({"version": "0", "event-version": "1.1", "bucket": {"name": "wrapped"},
        "object": {"key": files[2].0, "size": 100, "etag": "b1946ac92492d2347c6235b4d2611184",
                   "sequencer": "617f08299329d189"},
        "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012",
        "source-ip-address": "1.2.3.4", "reason": "PutObject"});
    let out = eb
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source("aws.s3")
                .detail_type("Object Created")
                .detail(detail.to_string())
                .resources("arn:aws:s3:::wrapped")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_entry_count(), 0);

    let ids = corpus_ids(&files[..3]);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Arc::new(Recording::default());
    let d = deliverer(&dir.path().join("s.sqlite"), pipeline.clone());
    let metrics = Metrics::new();
    let mut config = SqsConfig::new("wrapped", &url);
    config.wait_time = Duration::from_secs(1);
    let reader = ObjectReader {
        s3: s3.clone(),
        limits: Limits::default(),
        batch_events: 100,
    };
    let source = SqsSource::new(config, sqs.clone(), reader, d, metrics.source("wrapped"));
    let cancel = CancellationToken::new();
    let run = tokio::spawn(source.run(cancel.clone()));
    let ok = wait_until(Duration::from_secs(60), async || {
        pipeline.has_all(&ids) && queue_depth(&sqs, &url).await == 0
    })
    .await;
    cancel.cancel();
    run.await.unwrap().unwrap();
    let m = metrics.source("wrapped");
    assert!(
        ok,
        "{} of {} events; {}",
        pipeline.count(),
        ids.len(),
        metrics.render()
    );
    assert_eq!(
        m.objects_read.get(),
        3,
        "one object per wrapped notification"
    );
    assert_eq!(m.messages_deleted.get(), 3);
    assert_eq!(pipeline.duplicates(), 0);
}
