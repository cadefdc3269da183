//! The S3 poller against moto: discovery of accounts/regions in the org layout, the date
//! skip, and resuming from the per-prefix checkpoint after a restart.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use trailwatch_event::Limits;
use trailwatch_sources::config::{S3PollConfig, parse_since};
use trailwatch_sources::metrics::Metrics;
use trailwatch_sources::s3_poll::{S3Location, S3Poller, discover, scan_objects};
use trailwatch_sources::sqs_s3::ObjectReader;
use trailwatch_sources::{CancellationToken, aws};
use trailwatch_testkit::MotoServer;

fn poll_config(since: &str) -> S3PollConfig {
    S3PollConfig {
        name: "org".into(),
        url: "s3://org-trail/AWSLogs/o-exampleorg1/".into(),
        since: Some(since.into()),
        interval: Duration::from_secs(60),
        accounts: Vec::new(),
        regions: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poller_discovers_reads_in_order_and_resumes_from_its_checkpoint() {
    let Some(first) = make_corpus(
        2000,
        3,
        &[
            "--accounts",
            "2",
            "--start",
            "2026-01-01T23:45:00",
            "--days",
            "0.02",
        ],
    ) else {
        return;
    };
    let Some(second) = make_corpus(
        600,
        4,
        &["--accounts", "2", "--start", "2026-01-03T00:00:00"],
    ) else {
        return;
    };
    let first_files = corpus_files(first.path());
    let second_files = corpus_files(second.path());
    let moto = MotoServer::start().expect("moto server");
    let sdk = sdk(&moto).await;
    let s3 = aws::s3_client(&sdk, &aws_settings(&moto));
    s3.create_bucket().bucket("org-trail").send().await.unwrap();
    upload(&s3, "org-trail", &first_files).await;
    // A digest file and an unrelated object: neither is read as a log file.
    let digest_key = first_files[0]
        .0
        .replace("/CloudTrail/", "/CloudTrail-Digest/");
    s3.put_object()
        .bucket("org-trail")
        .key(&digest_key)
        .body(b"{}".to_vec().into())
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket("org-trail")
        .key("AWSLogs/o-exampleorg1/README")
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap();

    let loc = S3Location::parse("s3://org-trail/AWSLogs/o-exampleorg1/").unwrap();
    let prefixes = discover(&s3, &loc).await.unwrap();
    let mut expected_prefixes: Vec<String> = first_files
        .iter()
        .map(|(k, _)| {
            trailwatch_sources::s3_poll::LogKey::parse(k)
                .unwrap()
                .prefix
        })
        .collect();
    expected_prefixes.sort();
    expected_prefixes.dedup();
    let found: Vec<String> = prefixes.iter().map(|p| p.prefix.clone()).collect();
    assert_eq!(found, expected_prefixes);
    // Discovery also works from the bucket root.
    let from_root = discover(&s3, &S3Location::parse("s3://org-trail").unwrap())
        .await
        .unwrap();
    assert_eq!(from_root.len(), prefixes.len());

    // scan_objects: the date skip. Only files of 2026-01-02 and later.
    let since_2nd = parse_since("2026-01-02").unwrap();
    let scanned = scan_objects(&s3, &loc, since_2nd, None).await.unwrap();
    let want = first_files
        .iter()
        .filter(|(k, _)| !k.contains("/2026/01/01/"))
        .count();
    assert_eq!(scanned.len(), want);
    assert!(
        want > 0 && want < first_files.len(),
        "the corpus should span the 1st and 2nd"
    );

    // First pass reads everything, in key order per prefix.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite");
    let pipeline = Arc::new(Recording::default());
    let metrics = Metrics::new();
    let reader = ObjectReader {
        s3: s3.clone(),
        limits: Limits::default(),
        batch_events: 500,
    };
    {
        let d = deliverer(&db, pipeline.clone());
        let poller = S3Poller::new(
            poll_config("2026-01-01"),
            reader.clone(),
            d,
            metrics.source("org"),
        )
        .unwrap();
        let report = poller.poll_once(&CancellationToken::new()).await.unwrap();
        assert_eq!(report.objects, first_files.len() as u64);
        assert_eq!(report.failed, 0);
    }
    let ids = corpus_ids(&first_files);
    assert!(pipeline.has_all(&ids));
    assert_eq!(pipeline.count(), ids.len());

    // Restart (new state handle on the same file), add newer files: only those are read.
    upload(&s3, "org-trail", &second_files).await;
    let metrics2 = Metrics::new();
    {
        let d = deliverer(&db, pipeline.clone());
        let poller = S3Poller::new(
            poll_config("2026-01-01"),
            reader.clone(),
            d,
            metrics2.source("org"),
        )
        .unwrap();
        let report = poller.poll_once(&CancellationToken::new()).await.unwrap();
        assert_eq!(
            report.objects,
            second_files.len() as u64,
            "only the new files are read"
        );
        let report = poller.poll_once(&CancellationToken::new()).await.unwrap();
        assert_eq!(report.objects, 0, "nothing new: nothing read");
    }
    let m2 = metrics2.source("org");
    assert_eq!(m2.objects_read.get(), second_files.len() as u64);
    assert_eq!(m2.events_duplicate.get(), 0);
    let all_ids = [ids, corpus_ids(&second_files)].concat();
    assert!(pipeline.has_all(&all_ids));
    assert_eq!(pipeline.duplicates(), 0);

    // Cancelled midway, a pass stops between objects; the next one carries on from there.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite");
    let pipeline = Arc::new(Recording::default());
    let cancel = CancellationToken::new();
    let d = deliverer(&db, pipeline.clone());
    let poller = S3Poller::new(
        poll_config("2026-01-01"),
        reader.clone(),
        d,
        metrics.source("p3"),
    )
    .unwrap();
    let c2 = cancel.clone();
    let p2 = pipeline.clone();
    tokio::spawn(async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while p2.count() <= 500 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c2.cancel();
    });
    let partial = poller.poll_once(&cancel).await.unwrap();
    let total = (first_files.len() + second_files.len()) as u64;
    assert!(partial.objects < total, "cancel should stop the pass early");
    let d = deliverer(&db, pipeline.clone());
    let poller = S3Poller::new(poll_config("2026-01-01"), reader, d, metrics.source("p4")).unwrap();
    let rest = poller.poll_once(&CancellationToken::new()).await.unwrap();
    assert_eq!(partial.objects + rest.objects, total);
    assert!(pipeline.has_all(&all_ids));
    assert_eq!(pipeline.duplicates(), 0);

    // The dead-man state was fed with each account/region's newest file.
    let mut all_prefixes: Vec<String> = first_files
        .iter()
        .chain(&second_files)
        .map(|(k, _)| {
            trailwatch_sources::s3_poll::LogKey::parse(k)
                .unwrap()
                .prefix
        })
        .collect();
    all_prefixes.sort();
    all_prefixes.dedup();
    let st = trailwatch_store::SourceState::open(&db).unwrap();
    assert_eq!(st.deliveries().unwrap().len(), all_prefixes.len());
    let cps = st.checkpoints().unwrap();
    assert_eq!(cps.len(), all_prefixes.len());
    for ((prefix, last), want) in cps.iter().zip(&all_prefixes) {
        assert!(prefix.ends_with(want.as_str()));
        let newest = first_files
            .iter()
            .chain(&second_files)
            .map(|(k, _)| k)
            .filter(|k| k.starts_with(want.as_str()))
            .max()
            .unwrap();
        assert_eq!(
            last, newest,
            "the checkpoint is the newest key of its prefix"
        );
    }
}
