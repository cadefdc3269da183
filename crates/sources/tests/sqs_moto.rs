//! The SQS source against moto server: S3 → SQS notifications for real-shaped CloudTrail
//! files, cancellation and kills at random moments, poison messages, EventBridge → SQS.

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

struct Fixture {
    _moto: MotoServer,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    sdk: aws_config::SdkConfig,
}

async fn fixture() -> (Fixture, aws_sdk_s3::Client) {
    let moto = MotoServer::start().expect("moto server (run scripts/test-deps.sh)");
    let sdk = sdk(&moto).await;
    let s3 = aws::s3_client(&sdk, &aws_settings(&moto));
    let sqs = aws::sqs_client(&sdk);
    let f = Fixture {
        _moto: moto,
        s3: s3.clone(),
        sqs,
        sdk,
    };
    (f, s3)
}

fn queue_config(url: &str) -> SqsConfig {
    let mut c = SqsConfig::new("files", url);
    c.wait_time = Duration::from_secs(1);
    c.visibility_timeout = Duration::from_secs(3);
    c.retry_delay = Duration::from_secs(0);
    c.max_receives = 3;
    c.batch_events = 40;
    c
}

fn source(
    f: &Fixture,
    config: SqsConfig,
    deliverer: Arc<trailwatch_sources::Deliverer>,
    metrics: &Metrics,
) -> SqsSource {
    let reader = ObjectReader {
        s3: f.s3.clone(),
        limits: Limits::default(),
        batch_events: config.batch_events,
    };
    let m = metrics.source(&config.name);
    SqsSource::new(config, f.sqs.clone(), reader, deliverer, m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_notifications_every_record_exactly_once_then_cancel_and_kill_restarts() {
    let Some(corpus) = make_corpus(5000, 7, &[]) else {
        return;
    };
    let files = corpus_files(corpus.path());
    let expected = corpus_ids(&files);
    assert_eq!(expected.len(), 5000);
    let (f, s3) = fixture().await;
    let url = create_queue(&f.sqs, "trail-files").await;
    bucket_with_notification(&s3, &f.sqs, "trail-bucket", &url).await;
    upload(&s3, "trail-bucket", &files).await;

    // Part 1: one clean run to the end.
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Arc::new(Recording::default());
    let d = deliverer(&dir.path().join("state.sqlite"), pipeline.clone());
    let metrics = Metrics::new();
    let cancel = CancellationToken::new();
    let run = tokio::spawn(source(&f, queue_config(&url), d.clone(), &metrics).run(cancel.clone()));
    let all = wait_until(Duration::from_secs(120), async || {
        pipeline.has_all(&expected)
    })
    .await;
    assert!(
        all,
        "only {} of {} events arrived",
        pipeline.count(),
        expected.len()
    );
    let empty = wait_until(Duration::from_secs(30), async || {
        queue_depth(&f.sqs, &url).await == 0
    })
    .await;
    cancel.cancel();
    run.await.unwrap().unwrap();
    assert!(
        empty,
        "queue not empty: {}",
        queue_depth(&f.sqs, &url).await
    );
    assert_eq!(pipeline.count(), expected.len());
    assert_eq!(
        pipeline.duplicates(),
        0,
        "an event reached the pipeline twice"
    );
    let m = metrics.source("files");
    assert_eq!(m.objects_read.get(), files.len() as u64);
    assert_eq!(
        m.messages_skipped.get(),
        1,
        "the s3:TestEvent is skipped and deleted"
    );
    assert_eq!(m.messages_deleted.get(), files.len() as u64 + 1);
    assert!(m.reconciles(), "{}", metrics.render());
    assert_eq!(m.lag.count(), expected.len() as u64);
    let text = metrics.render();
    assert!(
        text.contains("trailwatch_source_events_processed_total{source=\"files\"} 5000"),
        "{text}"
    );

    // Part 2: the same files again (a re-upload notifies again): dedup drops every event.
    upload(&s3, "trail-bucket", &files[..5]).await;
    let cancel = CancellationToken::new();
    let run = tokio::spawn(source(&f, queue_config(&url), d.clone(), &metrics).run(cancel.clone()));
    let drained = wait_until(Duration::from_secs(60), async || {
        m.objects_read.get() == files.len() as u64 + 5 && queue_depth(&f.sqs, &url).await == 0
    })
    .await;
    cancel.cancel();
    run.await.unwrap().unwrap();
    assert!(drained);
    assert_eq!(pipeline.duplicates(), 0);
    assert!(
        m.events_duplicate.get() >= 5 * 60,
        "{}",
        m.events_duplicate.get()
    );

    // Part 3: a fresh state and pipeline; graceful cancels at random moments, then restarts.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite");
    let pipeline = Arc::new(Recording::default());
    pipeline
        .delay_ms
        .store(20, std::sync::atomic::Ordering::SeqCst);
    upload(&s3, "trail-bucket", &files).await;
    let mut rounds = 0;
    while !pipeline.has_all(&expected) && rounds < 60 {
        rounds += 1;
        let metrics = Metrics::new();
        let d = deliverer(&db, pipeline.clone());
        let cancel = CancellationToken::new();
        let run = tokio::spawn(source(&f, queue_config(&url), d, &metrics).run(cancel.clone()));
        tokio::time::sleep(Duration::from_millis(fastrand::u64(100..1500))).await;
        cancel.cancel();
        run.await.unwrap().unwrap();
    }
    assert!(
        pipeline.has_all(&expected),
        "lost events after {rounds} cancel/restart rounds"
    );
    assert_eq!(
        pipeline.duplicates(),
        0,
        "graceful cancel must not repeat events"
    );
    assert!(
        wait_until(Duration::from_secs(10), async || queue_depth(&f.sqs, &url)
            .await
            == 0)
        .await
            || {
                // Messages of the last round that were received but not finished come back.
                let d = deliverer(&db, pipeline.clone());
                let metrics = Metrics::new();
                let cancel = CancellationToken::new();
                let run =
                    tokio::spawn(source(&f, queue_config(&url), d, &metrics).run(cancel.clone()));
                let ok = wait_until(Duration::from_secs(30), async || {
                    queue_depth(&f.sqs, &url).await == 0
                })
                .await;
                cancel.cancel();
                run.await.unwrap().unwrap();
                ok
            }
    );
    assert_eq!(pipeline.duplicates(), 0);

    // Part 4: abrupt kills (the task is aborted mid-flight, as a crash would), then restarts.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite");
    let pipeline = Arc::new(Recording::default());
    pipeline
        .delay_ms
        .store(20, std::sync::atomic::Ordering::SeqCst);
    upload(&s3, "trail-bucket", &files).await;
    let mut kills = 0;
    for _ in 0..4 {
        let metrics = Metrics::new();
        let d = deliverer(&db, pipeline.clone());
        let run =
            tokio::spawn(source(&f, queue_config(&url), d, &metrics).run(CancellationToken::new()));
        tokio::time::sleep(Duration::from_millis(fastrand::u64(200..1500))).await;
        run.abort();
        let _ = run.await;
        kills += 1;
    }
    let d = deliverer(&db, pipeline.clone());
    let metrics = Metrics::new();
    let cancel = CancellationToken::new();
    let run = tokio::spawn(source(&f, queue_config(&url), d, &metrics).run(cancel.clone()));
    let all = wait_until(Duration::from_secs(120), async || {
        pipeline.has_all(&expected) && queue_depth(&f.sqs, &url).await == 0
    })
    .await;
    cancel.cancel();
    run.await.unwrap().unwrap();
    assert!(
        all,
        "after {kills} kills: {} of {} events, queue depth {}",
        pipeline.count(),
        expected.len(),
        queue_depth(&f.sqs, &url).await
    );
    // At least once: a kill between the pipeline and the dedup record can repeat the batches
    // that were in the pipeline at that moment (at most concurrency x batch per kill), never more.
    let bound = kills * 4 * 40;
    assert!(
        pipeline.duplicates() <= bound,
        "{} duplicates > {bound}",
        pipeline.duplicates()
    );
    eprintln!(
        "abrupt kills: {kills}, repeated events: {}",
        pipeline.duplicates()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_retried_then_left_for_redrive() {
    let (f, s3) = fixture().await;
    let url = create_queue(&f.sqs, "poison").await;
    s3.create_bucket()
        .bucket("poison-bucket")
        .send()
        .await
        .unwrap();
    f.sqs
        .send_message()
        .queue_url(&url)
        .message_body("this is not a notification")
        .send()
        .await
        .unwrap();
    let missing = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-01-01T00:00:00.000Z","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"poison-bucket"},"object":{"key":"AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/01/111122223333_CloudTrail_us-east-1_20260101T0000Z_gone.json.gz","size":10}}}]}"#;
    f.sqs
        .send_message()
        .queue_url(&url)
        .message_body(missing)
        .send()
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let pipeline = Arc::new(Recording::default());
    let d = deliverer(&dir.path().join("s.sqlite"), pipeline.clone());
    let metrics = Metrics::new();
    let mut config = queue_config(&url);
    config.name = "poison".into();
    config.visibility_timeout = Duration::from_secs(1);
    let cancel = CancellationToken::new();
    let run = tokio::spawn(source(&f, config, d, &metrics).run(cancel.clone()));
    let m = metrics.source("poison");
    let parked = wait_until(Duration::from_secs(60), async || {
        m.messages_poison.get() >= 2 && m.messages_failed.get() >= 6
    })
    .await;
    cancel.cancel();
    run.await.unwrap().unwrap();
    assert!(parked, "{}", metrics.render());
    // Each was tried max_receives (3) times (later receives are not processed, only
    // logged), and neither was deleted.
    assert_eq!(m.messages_failed.get(), 6, "{}", metrics.render());
    assert_eq!(m.messages_deleted.get(), 0);
    assert_eq!(queue_depth(&f.sqs, &url).await, 2);
    assert_eq!(pipeline.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbridge_events_through_sqs_and_dedup_with_the_s3_file() {
    let Some(corpus) = make_corpus(300, 11, &[]) else {
        return;
    };
    let files = corpus_files(corpus.path());
    let (f, s3) = fixture().await;
    let url = create_queue(&f.sqs, "trail-events").await;
    let arn = queue_arn(&f.sqs, &url).await;
    let eb = aws_sdk_eventbridge::Client::new(&f.sdk);
    eb.put_rule()
        .name("cloudtrail-to-sqs")
        .event_pattern(r#"{"detail-type":["AWS API Call via CloudTrail","AWS Console Sign In via CloudTrail"]}"#)
        .send()
        .await
        .unwrap();
    eb.put_targets()
        .rule("cloudtrail-to-sqs")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("q")
                .arn(arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    // Publish the first file's records as EventBridge would (source aws.<service>).
    let bytes = std::fs::read(&files[0].1).unwrap();
    let (items, _) = trailwatch_event::decode_slice(&bytes, "f", &Limits::default());
    let events: Vec<trailwatch_event::Event> = items
        .into_iter()
        .filter_map(|i| match i {
            trailwatch_event::Item::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    let mut published = Vec::new();
    for chunk in events.chunks(10) {
        let mut req = eb.put_events();
        for e in chunk {
            let m = e.meta();
            req = req.entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source(&m.source)
                    .detail_type(&m.detail_type)
                    .detail(e.detail())
                    .build(),
            );
            published.push(m.event_id.clone().unwrap());
        }
        let out = req.send().await.unwrap();
        assert_eq!(out.failed_entry_count(), 0);
    }
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Arc::new(Recording::default());
    let d = deliverer(&dir.path().join("s.sqlite"), pipeline.clone());
    let metrics = Metrics::new();
    let mut config = queue_config(&url);
    config.name = "events".into();
    let cancel = CancellationToken::new();
    let run = tokio::spawn(source(&f, config.clone(), d.clone(), &metrics).run(cancel.clone()));
    let got = wait_until(Duration::from_secs(60), async || {
        pipeline.has_all(&published)
    })
    .await;
    assert!(
        got,
        "{} of {} EventBridge events",
        pipeline.count(),
        published.len()
    );
    assert!(
        wait_until(Duration::from_secs(20), async || queue_depth(&f.sqs, &url)
            .await
            == 0)
        .await
    );
    cancel.cancel();
    run.await.unwrap().unwrap();
    let m = metrics.source("events");
    assert_eq!(m.messages_deleted.get(), published.len() as u64);

    // Now the S3 file with the same events arrives on the files queue: nothing repeats.
    let files_url = create_queue(&f.sqs, "files2").await;
    bucket_with_notification(&s3, &f.sqs, "trail2", &files_url).await;
    upload(&s3, "trail2", &files[..1]).await;
    let mut config = queue_config(&files_url);
    config.name = "files2".into();
    let cancel = CancellationToken::new();
    let run = tokio::spawn(source(&f, config, d, &metrics).run(cancel.clone()));
    let m2 = metrics.source("files2");
    assert!(
        wait_until(Duration::from_secs(30), async || m2.objects_read.get() == 1
            && queue_depth(&f.sqs, &files_url).await == 0)
        .await
    );
    cancel.cancel();
    run.await.unwrap().unwrap();
    assert_eq!(pipeline.duplicates(), 0);
    assert_eq!(m2.events_duplicate.get(), published.len() as u64);

    // Partial batches: with the pipeline down, events stay queued and are reported; once it
    // is back they arrive.
    pipeline
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let e = &events[0];
    let mut fresh = e
        .json()
        .replace(e.meta().event_id.as_deref().unwrap(), "fresh-event-id-1");
    fresh = fresh.replace(&e.meta().id, "00000000-0000-0000-0000-00000000f00d");
    f.sqs
        .send_message()
        .queue_url(&url)
        .message_body(&fresh)
        .send()
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let mut config = queue_config(&url);
    config.name = "retry".into();
    config.max_receives = 100;
    config.retry_delay = Duration::from_secs(1);
    let run = tokio::spawn(
        source(
            &f,
            config,
            deliverer(&dir.path().join("s.sqlite"), pipeline.clone()),
            &metrics,
        )
        .run(cancel.clone()),
    );
    let m3 = metrics.source("retry");
    assert!(
        wait_until(Duration::from_secs(20), async || m3.messages_failed.get()
            >= 1)
        .await
    );
    assert_eq!(queue_depth(&f.sqs, &url).await, 1);
    pipeline
        .fail
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let arrived = wait_until(Duration::from_secs(20), async || {
        pipeline.has_all(&["fresh-event-id-1".to_owned()])
    })
    .await;
    cancel.cancel();
    run.await.unwrap().unwrap();
    assert!(arrived);
    assert_eq!(queue_depth(&f.sqs, &url).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visibility_is_extended_while_a_slow_file_is_processed() {
    let Some(corpus) = make_corpus(600, 5, &["--accounts", "1"]) else {
        return;
    };
    let files = corpus_files(corpus.path());
    let (f, s3) = fixture().await;
    let url = create_queue(&f.sqs, "slow").await;
    bucket_with_notification(&s3, &f.sqs, "slow-bucket", &url).await;
    upload(&s3, "slow-bucket", &files[..1]).await;
    let ids = corpus_ids(&files[..1]);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Arc::new(Recording::default());
    // 10-event batches at 400 ms each: the file takes several times the 2 s visibility timeout.
    pipeline
        .delay_ms
        .store(400, std::sync::atomic::Ordering::SeqCst);
    let d = deliverer(&dir.path().join("s.sqlite"), pipeline.clone());
    let metrics = Metrics::new();
    let mut config = queue_config(&url);
    config.name = "slow".into();
    config.visibility_timeout = Duration::from_secs(2);
    config.batch_events = 10;
    config.concurrency = 2;
    let cancel = CancellationToken::new();
    let run = tokio::spawn(source(&f, config, d, &metrics).run(cancel.clone()));
    let done = wait_until(Duration::from_secs(60), async || {
        pipeline.has_all(&ids) && queue_depth(&f.sqs, &url).await == 0
    })
    .await;
    cancel.cancel();
    run.await.unwrap().unwrap();
    assert!(done, "{} of {} events", pipeline.count(), ids.len());
    assert!(
        ids.len() >= 40,
        "the file should be slow to process ({} events)",
        ids.len()
    );
    let m = metrics.source("slow");
    // The test event and the file's notification, each received once: no redelivery midway.
    assert_eq!(m.messages_received.get(), 2, "{}", metrics.render());
    assert_eq!(m.objects_read.get(), 1);
    assert_eq!(pipeline.duplicates(), 0);
}
