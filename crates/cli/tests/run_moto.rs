//! `trailwatch run` end to end against moto server and a recording webhook: real-shaped
//! CloudTrail files uploaded to S3 and announced through SQS, EventBridge events through SQS,
//! kill -9 at random moments with restarts, SIGTERM, `/metrics`, and `scan s3://`.
//!
//! The expected alerts are what `trailwatch scan` finds in the same files with the same
//! rules and config: the live path must raise exactly those, each delivered under one
//! delivery id however often the service was killed.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::live::*;
use common::trailwatch;
use trailwatch_testkit::aws::{corpus_files, group_ingress, group_with_ingress, upload};
use trailwatch_testkit::free_port;

#[test]
fn sqs_s3_files_raise_the_scan_alerts_and_sigterm_stops_cleanly() {
    let Some(corpus) = corpus(21) else { return };
    let f = Fixture::start();
    let url = announce(&f, corpus.path());
    let port = free_port().unwrap();
    let config = f.config(&sqs_section(&url, 4, 1000), port);
    let expected = expected_alerts(corpus.path(), &config);
    assert!(
        expected.len() >= 10,
        "the corpus should raise alerts: {expected:?}"
    );
    let log = f.path("run.log");
    let service = Service::start(&config, &log);
    service.wait_ready(port, &log);
    let done = wait_for(Duration::from_secs(120), || {
        received(&f.recorder.accepted()).len() >= expected.len() && f.queue_depth(&url) == 0
    });
    assert!(
        done,
        "{} of {} alerts; log:\n{}",
        received(&f.recorder.accepted()).len(),
        expected.len(),
        log_tail(&log)
    );
    // Let the pipeline settle, then check the counters reconcile on /metrics.
    std::thread::sleep(Duration::from_millis(500));
    let text = scrape(port);
    let src = "{source=\"trail-files\"}";
    let received_n = metric(
        &text,
        &format!("trailwatch_source_events_received_total{src}"),
    );
    let processed = metric(
        &text,
        &format!("trailwatch_source_events_processed_total{src}"),
    );
    let skipped = metric(
        &text,
        &format!("trailwatch_source_events_skipped_total{src}"),
    );
    let failed = metric(
        &text,
        &format!("trailwatch_source_events_failed_total{src}"),
    );
    assert_eq!(received_n, 5000, "{text}");
    assert_eq!(received_n, processed + skipped + failed, "{text}");
    assert_eq!(
        metric(&text, "trailwatch_alerts_total"),
        expected.len() as u64,
        "{text}"
    );
    assert_eq!(
        metric(&text, "trailwatch_alert_lag_seconds_count"),
        expected.len() as u64
    );
    assert_eq!(metric(&text, "trailwatch_outbox_dead"), 0, "{text}");

    let code = service.terminate(Duration::from_secs(30));
    assert_eq!(code, Some(0), "log:\n{}", log_tail(&log));
    let got = received(&f.recorder.accepted());
    let keys: BTreeSet<String> = got.keys().cloned().collect();
    assert_eq!(keys, expected);
    assert!(got.values().all(|ids| ids.len() == 1));
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("stopped"), "{}", log_tail(&log));
}

#[test]
fn kill9_at_random_moments_loses_nothing_and_sends_nothing_twice() {
    let Some(corpus) = corpus(22) else { return };
    let f = Fixture::start();
    // A destination that fails a fifth of the time, so kills land during retries too.
    f.recorder.set_seed(7);
    f.recorder
        .set_behavior(trailwatch_testkit::Behavior::Flaky(0.2));
    let url = announce(&f, corpus.path());
    let port = free_port().unwrap();
    // One file at a time in small batches: more moments for a kill to land mid-file.
    let config = f.config(&sqs_section(&url, 1, 20), port);
    let expected = expected_alerts(corpus.path(), &config);
    let log = f.path("run.log");
    let mut rng = fastrand::Rng::with_seed(2026);
    // Ten kills, each at a random moment after the service is up; count those that land
    // while work is still outstanding (files on the queue or alerts not yet delivered).
    let (mut kills, mut mid_work) = (0, 0);
    while kills < 10 {
        let service = Service::start(&config, &log);
        service.wait_ready(port, &log);
        std::thread::sleep(Duration::from_millis(rng.u64(0..900)));
        let outstanding =
            received(&f.recorder.accepted()).len() < expected.len() || f.queue_depth(&url) > 0;
        service.kill9();
        kills += 1;
        mid_work += u32::from(outstanding);
    }
    assert!(
        mid_work >= 5,
        "only {mid_work} of {kills} kills landed mid-work"
    );
    let service = Service::start(&config, &log);
    service.wait_ready(port, &log);
    let done = wait_for(Duration::from_secs(180), || {
        received(&f.recorder.accepted()).len() >= expected.len() && f.queue_depth(&url) == 0
    });
    let got = received(&f.recorder.accepted());
    assert!(
        done,
        "after {kills} kills: {} of {} alerts; log:\n{}",
        got.len(),
        expected.len(),
        log_tail(&log)
    );
    let code = service.terminate(Duration::from_secs(30));
    assert_eq!(code, Some(0), "log:\n{}", log_tail(&log));
    let keys: BTreeSet<String> = got.keys().cloned().collect();
    assert_eq!(keys, expected, "after {kills} kills");
    let repeated: Vec<_> = got.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        repeated.is_empty(),
        "alerts sent under more than one delivery id: {repeated:?}"
    );
    eprintln!(
        "{kills} kills ({mid_work} mid-work); {} alerts; {} accepted POSTs (re-sends carry the same delivery id)",
        keys.len(),
        f.recorder.accepted().len()
    );
}

#[test]
fn eventbridge_events_through_sqs_alert() {
    let Some(shared) = common::shared() else {
        return;
    };
    let f = Fixture::start();
    let url = f.cloudtrail_events_queue("trail-events");
    let eb = aws_sdk_eventbridge::Client::new(&f.sdk);
    let port = free_port().unwrap();
    let config = f.config(
        &format!("  sqs:\n    - {{ name: trail-events, queue_url: '{url}', wait_time: 1s }}\n"),
        port,
    );
    let log = f.path("run.log");
    let service = Service::start(&config, &log);
    service.wait_ready(port, &log);
    // The Stratus "CloudTrail stopped" detonation, published as EventBridge delivers it.
    let file = shared.join(
        "data/cloudtrail/stratus-red-team_detonation-logs/aws.defense-evasion.cloudtrail-stop.json",
    );
    let records: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let stop = records
        .iter()
        .find(|r| r["eventName"] == "StopLogging")
        .expect("the detonation has StopLogging");
    f.runtime.block_on(async {
        let out = eb
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source("aws.cloudtrail")
                    .detail_type("AWS API Call via CloudTrail")
                    .detail(stop.to_string())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(out.failed_entry_count(), 0);
    });
    let arrived = wait_for(Duration::from_secs(60), || {
        !f.recorder.accepted().is_empty()
    });
    assert!(arrived, "log:\n{}", log_tail(&log));
    let alert = f.recorder.accepted()[0].json();
    assert_eq!(alert["event_name"], "StopLogging");
    assert_eq!(alert["event_id"], stop["eventID"]);
    assert!(
        alert["console_url"]
            .as_str()
            .unwrap()
            .contains("cloudtrailv2"),
        "{alert}"
    );
    assert_eq!(service.terminate(Duration::from_secs(30)), Some(0));
}

/// Seed 004's fast path: a security group opened to the world, the API call delivered by
/// EventBridge through SQS, and `trailwatch run` revoking exactly that permission.
#[test]
fn run_revokes_an_open_ingress_that_eventbridge_delivers() {
    let f = Fixture::start();
    let ec2 = aws_sdk_ec2::Client::new(&f.sdk);
    let eb = aws_sdk_eventbridge::Client::new(&f.sdk);
    let url = f.cloudtrail_events_queue("trail-events");
    let group = f.runtime.block_on(group_with_ingress(
        &ec2,
        "web",
        &[(22, &["0.0.0.0/0", "10.0.0.0/8"])],
    ));
    let port = free_port().unwrap();
    let config = f.config(
        &format!("  sqs:\n    - {{ name: trail-events, queue_url: '{url}', wait_time: 1s }}\n"),
        port,
    );
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "remediation:\n  rules:\n    ec2-security-group-ingress-open-to-world: {{ mode: enforce }}\n  aws: {{ endpoint_url: '{}' }}\n",
        f.moto.endpoint_url()
    ));
    std::fs::write(&config, text).unwrap();
    let log = f.path("run.log");
    let service = Service::start(&config, &log);
    service.wait_ready(port, &log);
    let record = serde_json::json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAALICE", "accountId": "123456789012",
            "arn": "arn:aws:iam::123456789012:user/alice", "accessKeyId": "AKIAALICE", "userName": "alice"},
        "eventTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "eventSource": "ec2.amazonaws.com",
        "eventName": "AuthorizeSecurityGroupIngress",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"groupId": group, "ipPermissions": {"items": [{"ipProtocol": "tcp",
            "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}, {"cidrIp": "10.0.0.0/8"}]}}]}},
        "responseElements": {"_return": true},
        "eventID": "7c0ffee0-0000-4000-8000-000000000022",
        "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012",
    });
    f.runtime.block_on(async {
        let out = eb
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source("aws.ec2")
                    .detail_type("AWS API Call via CloudTrail")
                    .detail(record.to_string())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(out.failed_entry_count(), 0);
    });
    let ingress = || f.runtime.block_on(group_ingress(&ec2, &group));
    let revoked = wait_for(Duration::from_secs(60), || {
        ingress() == ["tcp/22 10.0.0.0/8"]
    });
    assert!(revoked, "{:?}; log:\n{}", ingress(), log_tail(&log));
    let open_alert = || {
        f.recorder
            .accepted()
            .iter()
            .map(|r| r.json())
            .find(|a| a["rule_id"] == "ec2-security-group-ingress-open-to-world")
    };
    let arrived = wait_for(Duration::from_secs(30), || open_alert().is_some());
    assert!(arrived, "log:\n{}", log_tail(&log));
    let alert = open_alert().unwrap();
    assert_eq!(alert["remediation"]["mode"], "enforce", "{alert}");
    assert_eq!(service.terminate(Duration::from_secs(30)), Some(0));
    let state = f.path("state");
    let list = trailwatch_env(
        &[
            "remediation",
            "list",
            "--state",
            state.to_str().unwrap(),
            "--format",
            "json",
        ],
        &f,
    );
    assert_eq!(list.code, 0, "{}", list.stderr);
    let job: serde_json::Value = serde_json::from_str(list.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(job["status"], "succeeded", "{job}");
    // The service knew who it was (moto's caller) before it acted.
    let whole = std::fs::read_to_string(&log).unwrap();
    assert!(
        whole.contains("arn:aws:sts::123456789012:user/moto"),
        "{whole}"
    );
}

#[test]
fn scan_s3_reads_the_same_alerts_as_a_local_scan() {
    let Some(corpus) = corpus(23) else { return };
    let f = Fixture::start();
    f.runtime.block_on(async {
        f.s3.create_bucket().bucket("history").send().await.unwrap();
        upload(&f.s3, "history", &corpus_files(corpus.path())).await;
    });
    let config = f.config("", free_port().unwrap());
    let cfg = config.display().to_string();
    let local = trailwatch(&[
        "scan",
        "--format",
        "json",
        "--config",
        &cfg,
        &corpus.path().display().to_string(),
    ]);
    let remote = trailwatch_env(
        &[
            "scan",
            "--format",
            "json",
            "--config",
            &cfg,
            "s3://history/AWSLogs/",
        ],
        &f,
    );
    assert_eq!(remote.code, 0, "{}", remote.stderr);
    // The same alerts in the same order; only where each came from differs.
    let without_origin = |out: &str| -> Vec<serde_json::Value> {
        out.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                let origin = v.as_object_mut().unwrap().remove("origin").unwrap();
                let source = origin["source"].as_str().unwrap();
                assert!(
                    !source.contains(".tmp") || source.starts_with('/'),
                    "{source}"
                );
                v
            })
            .collect()
    };
    let remote_alerts = without_origin(&remote.stdout);
    assert!(!remote_alerts.is_empty());
    assert_eq!(remote_alerts, without_origin(&local.stdout));
    assert!(remote.stdout.contains("\"source\":\"s3://history/AWSLogs/"));
    assert!(
        remote.stderr.contains("records: 5,000 in"),
        "{}",
        remote.stderr
    );
}

#[test]
fn run_rejects_a_config_without_sources_and_names_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("trailwatch.yaml");
    std::fs::write(
        &cfg,
        "accounts: {}\nmetrics: { listen: nowhere }\ndestinations:\n  hook: { type: webhook }\n",
    )
    .unwrap();
    let run = trailwatch(&["run", "--config", &cfg.display().to_string()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("no `sources:` section"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nowhere"), "{}", run.stderr);
    assert!(run.stderr.contains("hook"), "{}", run.stderr);
    let run = trailwatch(&["run"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--config"), "{}", run.stderr);
}

/// `trailwatch ARGS` with static credentials for moto.
fn trailwatch_env(args: &[&str], _f: &Fixture) -> common::Run {
    common::trailwatch_with_env(
        args,
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    )
}
