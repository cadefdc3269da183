//! Live-path figures for `trailwatch run` against moto server and a local webhook:
//!
//! 1. throughput: real-shaped CloudTrail gzip files (make-corpus) uploaded to S3, announced
//!    on SQS by moto's bucket notification, read, matched and alerted; records/s from the
//!    moment the service is up until every record is processed and every alert delivered;
//! 2. the EventBridge path: one CloudTrail event at a time through PutEvents → rule → SQS →
//!    trailwatch → webhook; the latency from PutEvents returning to the webhook receiving
//!    the alert;
//! 3. remediation on that path: a security group opened to the world, the CloudTrail event
//!    through PutEvents → SQS → trailwatch run (enforce mode) → RevokeSecurityGroupIngress;
//!    the time from PutEvents returning until DescribeSecurityGroups no longer shows the
//!    open range.
//!
//! `cargo bench -p trailwatch --bench live` (needs ../shared and the test venv from
//! scripts/test-deps.sh). RECORDS (default 20000) and EVENTS (default 40) change the sizes.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::live::*;
use trailwatch_testkit::aws::make_corpus;
use trailwatch_testkit::free_port;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn throughput(records: u64) {
    let Some(corpus) = make_corpus(records, 31, &[]) else {
        return;
    };
    let f = Fixture::start();
    let upload_started = Instant::now();
    let url = announce(&f, corpus.path());
    let upload = upload_started.elapsed();
    let port = free_port().unwrap();
    let config = f.config(&sqs_section(&url, 8, 1000), port);
    let expected = expected_alerts(corpus.path(), &config).len();
    let log = f.path("run.log");
    let service = Service::start(&config, &log);
    service.wait_ready(port, &log);
    let started = Instant::now();
    let processed = |text: &str| {
        metric(
            text,
            "trailwatch_source_events_processed_total{source=\"trail-files\"}",
        )
    };
    let done = wait_for(Duration::from_secs(600), || {
        processed(&scrape(port)) >= records && received(&f.recorder.accepted()).len() >= expected
    });
    let elapsed = started.elapsed();
    assert!(done, "did not finish; log:\n{}", log_tail(&log));
    let text = scrape(port);
    let files = metric(
        &text,
        "trailwatch_source_objects_read_total{source=\"trail-files\"}",
    );
    let bytes = metric(
        &text,
        "trailwatch_source_bytes_read_total{source=\"trail-files\"}",
    );
    let secs = elapsed.as_secs_f64();
    println!(
        "live/sqs_s3: {records} records in {files} files ({:.1} MB gzip), {expected} alerts delivered",
        bytes as f64 / 1e6
    );
    println!(
        "live/sqs_s3: {secs:.2} s from ready to done: {:.0} records/s, {:.1} files/s (concurrency 8; upload took {:.1} s)",
        records as f64 / secs,
        files as f64 / secs,
        upload.as_secs_f64()
    );
    let _ = service.terminate(Duration::from_secs(30));
}

fn eventbridge_latency(events: u64) {
    let Some(shared) = common::shared() else {
        return;
    };
    let f = Fixture::start();
    let url = f.cloudtrail_events_queue("trail-events");
    let eb = aws_sdk_eventbridge::Client::new(&f.sdk);
    let port = free_port().unwrap();
    let config = f.config(
        &format!("  sqs:\n    - {{ name: trail-events, queue_url: '{url}', wait_time: 20s }}\n"),
        port,
    );
    let log = f.path("run.log");
    let service = Service::start(&config, &log);
    service.wait_ready(port, &log);
    let file = shared.join(
        "data/cloudtrail/stratus-red-team_detonation-logs/aws.defense-evasion.cloudtrail-stop.json",
    );
    let records: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let stop = records
        .iter()
        .find(|r| r["eventName"] == "StopLogging")
        .expect("the detonation has StopLogging")
        .clone();
    let mut latencies = Vec::new();
    for i in 0..events {
        let mut record = stop.clone();
        record["eventID"] = serde_json::Value::from(format!("bench-{i:04}-{}", fastrand::u64(..)));
        let before = f.recorder.accepted().len();
        f.runtime.block_on(async {
            eb.put_events()
                .entries(
                    aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                        .source("aws.cloudtrail")
                        .detail_type("AWS API Call via CloudTrail")
                        .detail(record.to_string())
                        .build(),
                )
                .send()
                .await
                .unwrap()
        });
        let sent = Instant::now();
        let mut arrived = None;
        while sent.elapsed() < Duration::from_secs(30) {
            if f.recorder.accepted().len() > before {
                arrived = Some(sent.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        latencies.push(arrived.expect("the alert arrived within 30 s"));
        std::thread::sleep(Duration::from_millis(100));
    }
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "live/eventbridge: {events} events, PutEvents → webhook: p50 {:?}, p90 {:?}, max {:?}, min {:?}",
        pick(0.5),
        pick(0.9),
        latencies[latencies.len() - 1],
        latencies[0]
    );
    let _ = service.terminate(Duration::from_secs(30));
}

fn remediation_latency(events: u64) {
    let f = Fixture::start();
    let url = f.cloudtrail_events_queue("trail-events");
    let eb = aws_sdk_eventbridge::Client::new(&f.sdk);
    let ec2 = aws_sdk_ec2::Client::new(&f.sdk);
    let port = free_port().unwrap();
    let config = f.config(
        &format!("  sqs:\n    - {{ name: trail-events, queue_url: '{url}', wait_time: 20s }}\n"),
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
    let mut latencies = Vec::new();
    for i in 0..events {
        let group = f
            .runtime
            .block_on(trailwatch_testkit::aws::group_with_ingress(
                &ec2,
                &format!("bench-{i}"),
                &[(22, &["0.0.0.0/0"])],
            ));
        let record = serde_json::json!({
            "eventVersion": "1.09",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDAALICE", "accountId": "123456789012",
                "arn": "arn:aws:iam::123456789012:user/alice", "userName": "alice"},
            "eventTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "eventSource": "ec2.amazonaws.com",
            "eventName": "AuthorizeSecurityGroupIngress",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "198.51.100.7",
            "requestParameters": {"groupId": group, "ipPermissions": {"items": [{"ipProtocol": "tcp",
                "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}},
            "eventID": format!("bench-rem-{i:04}-{}", fastrand::u64(..)),
            "eventType": "AwsApiCall",
            "recipientAccountId": "123456789012",
        });
        f.runtime.block_on(async {
            eb.put_events()
                .entries(
                    aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                        .source("aws.ec2")
                        .detail_type("AWS API Call via CloudTrail")
                        .detail(record.to_string())
                        .build(),
                )
                .send()
                .await
                .unwrap()
        });
        let sent = Instant::now();
        let mut revoked = None;
        while sent.elapsed() < Duration::from_secs(30) {
            let now = f
                .runtime
                .block_on(trailwatch_testkit::aws::group_ingress(&ec2, &group));
            if now.is_empty() {
                revoked = Some(sent.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        latencies.push(
            revoked.unwrap_or_else(|| panic!("not revoked within 30 s; log:\n{}", log_tail(&log))),
        );
    }
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "live/remediation: {events} groups, PutEvents → ingress revoked: p50 {:?}, p90 {:?}, max {:?}, min {:?}",
        pick(0.5),
        pick(0.9),
        latencies[latencies.len() - 1],
        latencies[0]
    );
    let _ = service.terminate(Duration::from_secs(30));
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and wants no work.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    throughput(env_or("RECORDS", 20_000));
    eventbridge_latency(env_or("EVENTS", 40));
    remediation_latency(env_or("EVENTS", 40).min(20));
}
