//! `trailwatch run` end to end against moto server and a recording webhook: real-shaped
//! CloudTrail files uploaded to S3 and announced through SQS, EventBridge events through SQS,
//! kill -9 at random moments with restarts, SIGTERM, `/metrics`, and `scan s3://`.
//!
//! The expected alerts are what `trailwatch scan` finds in the same files with the same
//! rules and config: the live path must raise exactly those, each delivered under one
//! delivery id however often the service was killed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{repo_root, trailwatch};
use trailwatch_sources::aws as sources_aws;
use trailwatch_sources::config::AwsSettings;
use trailwatch_testkit::aws::{
    bucket_with_notification, corpus_files, create_queue, make_corpus, queue_arn, queue_depth, sdk,
    upload,
};
use trailwatch_testkit::{MotoServer, RecordedRequest, Recorder, free_port};

/// Rules with windows (thresholds, dedup) depend on the order events arrive in, which the
/// live path does not fix; the comparison with `scan` uses the stateless rules.
const STATEFUL_RULES: &str =
    "[access-denied-burst, config-rule-noncompliant, console-login-failures, root-account-used]";

struct Fixture {
    moto: MotoServer,
    recorder: Recorder,
    dir: tempfile::TempDir,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    sdk: aws_config::SdkConfig,
    runtime: tokio::runtime::Runtime,
}

impl Fixture {
    fn start() -> Fixture {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let moto = MotoServer::start().expect("moto server (run scripts/test-deps.sh)");
        let sdk = runtime.block_on(sdk(&moto));
        let s3 = sources_aws::s3_client(&sdk, &settings(&moto));
        let sqs = sources_aws::sqs_client(&sdk);
        Fixture {
            moto,
            recorder: Recorder::start().unwrap(),
            dir: tempfile::tempdir().unwrap(),
            s3,
            sqs,
            sdk,
            runtime,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `trailwatch.yaml` with `sources` (YAML under the `sources:` key) and a webhook
    /// destination for every alert; returns its path.
    fn config(&self, sources: &str, metrics_port: u16) -> PathBuf {
        let text = format!(
            "accounts: {{ \"111122223333\": acme-prod }}\n\
             rules:\n  disable: {STATEFUL_RULES}\n\
             sources:\n  aws: {{ region: us-east-1, endpoint_url: '{endpoint}' }}\n{sources}\
             destinations:\n  hook: {{ type: webhook, url: '{hook}' }}\n\
             routes:\n  - {{ to: [hook] }}\n\
             outbox: {{ base_delay_ms: 50, max_delay_seconds: 2 }}\n\
             metrics: {{ listen: '127.0.0.1:{metrics_port}' }}\n\
             state: {{ dir: '{state}' }}\n",
            endpoint = self.moto.endpoint_url(),
            hook = self.recorder.url("/hook"),
            state = self.path("state").display(),
        );
        let path = self.path("trailwatch.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn queue_depth(&self, url: &str) -> u64 {
        self.runtime.block_on(queue_depth(&self.sqs, url))
    }
}

fn settings(moto: &MotoServer) -> AwsSettings {
    AwsSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(moto.endpoint_url()),
        force_path_style: Some(true),
        profile: None,
    }
}

/// A running `trailwatch run`, its stderr appended to a log file.
struct Service {
    child: Child,
}

impl Service {
    fn start(config: &Path, log: &Path) -> Service {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
            .args(["run", "--config"])
            .arg(config)
            .current_dir(repo_root())
            .env_remove("TRAILWATCH_STATE")
            .env("TRAILWATCH_LOG", "info")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("trailwatch run starts");
        Service { child }
    }

    /// Waits until `/metrics` answers on `port`: the signal handler and sources are up.
    fn wait_ready(&self, port: u16, log: &Path) {
        let up = wait_for(Duration::from_secs(60), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(
            up,
            "trailwatch run did not come up; log:\n{}",
            log_tail(log)
        );
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit code (None if it did not stop within `timeout`).
    fn terminate(mut self, timeout: Duration) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        None
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Dedup keys of the alerts `trailwatch scan` finds in `dir` with `config`.
fn expected_alerts(dir: &Path, config: &Path) -> BTreeSet<String> {
    let run = trailwatch(&[
        "scan",
        "--format",
        "json",
        "--config",
        &config.display().to_string(),
        &dir.display().to_string(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["dedup_key"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Accepted webhook requests: dedup key → the delivery ids it arrived under.
fn received(requests: &[RecordedRequest]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in requests {
        let key = r.json()["dedup_key"].as_str().unwrap().to_owned();
        let id = r.header("X-Trailwatch-Delivery").unwrap().to_owned();
        out.entry(key).or_default().insert(id);
    }
    out
}

fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    cond()
}

fn scrape(port: u16) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    use std::io::Write;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// The corpus: 50 real-shaped gzip delivery files, or `None` without `../shared`.
fn corpus(seed: u64) -> Option<tempfile::TempDir> {
    make_corpus(5000, seed, &[])
}

/// Bucket + queue + notification, files uploaded (so moto announces each on the queue).
fn announce(f: &Fixture, corpus: &Path) -> String {
    f.runtime.block_on(async {
        let url = create_queue(&f.sqs, "trail-files").await;
        bucket_with_notification(&f.s3, &f.sqs, "org-trail", &url).await;
        upload(&f.s3, "org-trail", &corpus_files(corpus)).await;
        url
    })
}

fn sqs_section(url: &str, concurrency: u32, batch_events: u32) -> String {
    format!(
        "  sqs:\n    - {{ name: trail-files, queue_url: '{url}', wait_time: 1s, visibility_timeout: 4s, retry_delay: 1s, concurrency: {concurrency}, batch_events: {batch_events} }}\n"
    )
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

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
    let (url, arn) = f.runtime.block_on(async {
        let url = create_queue(&f.sqs, "trail-events").await;
        let arn = queue_arn(&f.sqs, &url).await;
        (url, arn)
    });
    let eb = aws_sdk_eventbridge::Client::new(&f.sdk);
    f.runtime.block_on(async {
        eb.put_rule()
            .name("cloudtrail-to-sqs")
            .event_pattern(r#"{"detail-type":["AWS API Call via CloudTrail"]}"#)
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
    });
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
