//! `trailwatch run` against moto and a recording webhook: the fixture, the service process,
//! and what the tests and the live benchmark read back.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use trailwatch_sources::aws as sources_aws;
use trailwatch_sources::config::AwsSettings;
use trailwatch_testkit::aws::{
    bucket_with_notification, corpus_files, create_queue, make_corpus, queue_arn, queue_depth, sdk,
    upload,
};
use trailwatch_testkit::{MotoServer, RecordedRequest, Recorder};

use super::{repo_root, trailwatch};

/// Rules with windows (thresholds, dedup) depend on the order events arrive in, which the
/// live path does not fix; the comparison with `scan` uses the stateless rules.
pub const STATEFUL_RULES: &str =
    "[access-denied-burst, config-rule-noncompliant, console-login-failures, root-account-used]";

pub struct Fixture {
    pub moto: MotoServer,
    pub recorder: Recorder,
    pub dir: tempfile::TempDir,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sdk: aws_config::SdkConfig,
    pub runtime: tokio::runtime::Runtime,
}

impl Fixture {
    pub fn start() -> Fixture {
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

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `trailwatch.yaml` with `sources` (YAML under the `sources:` key) and a webhook
    /// destination for every alert; returns its path.
    pub fn config(&self, sources: &str, metrics_port: u16) -> PathBuf {
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

    /// A queue that an EventBridge rule fills with every "AWS API Call via CloudTrail"
    /// event; returns its URL.
    pub fn cloudtrail_events_queue(&self, name: &str) -> String {
        self.runtime.block_on(async {
            let url = create_queue(&self.sqs, name).await;
            let arn = queue_arn(&self.sqs, &url).await;
            let eb = aws_sdk_eventbridge::Client::new(&self.sdk);
            eb.put_rule()
                .name(format!("{name}-rule"))
                .event_pattern(r#"{"detail-type":["AWS API Call via CloudTrail"]}"#)
                .send()
                .await
                .unwrap();
            eb.put_targets()
                .rule(format!("{name}-rule"))
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
            url
        })
    }

    pub fn queue_depth(&self, url: &str) -> u64 {
        self.runtime.block_on(queue_depth(&self.sqs, url))
    }
}

pub fn settings(moto: &MotoServer) -> AwsSettings {
    AwsSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(moto.endpoint_url()),
        force_path_style: Some(true),
        profile: None,
    }
}

/// A running `trailwatch run`, its stderr appended to a log file.
pub struct Service {
    child: Child,
}

impl Service {
    pub fn start(config: &Path, log: &Path) -> Service {
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
    pub fn wait_ready(&self, port: u16, log: &Path) {
        let up = wait_for(Duration::from_secs(60), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(
            up,
            "trailwatch run did not come up; log:\n{}",
            log_tail(log)
        );
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit code (None if it did not stop within `timeout`).
    pub fn terminate(mut self, timeout: Duration) -> Option<i32> {
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
pub fn expected_alerts(dir: &Path, config: &Path) -> BTreeSet<String> {
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
pub fn received(requests: &[RecordedRequest]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in requests {
        let key = r.json()["dedup_key"].as_str().unwrap().to_owned();
        let id = r.header("X-Trailwatch-Delivery").unwrap().to_owned();
        out.entry(key).or_default().insert(id);
    }
    out
}

pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    cond()
}

pub fn scrape(port: u16) -> String {
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

pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// The corpus: 50 real-shaped gzip delivery files, or `None` without `../shared`.
pub fn corpus(seed: u64) -> Option<tempfile::TempDir> {
    make_corpus(5000, seed, &[])
}

/// Bucket + queue + notification, files uploaded (so moto announces each on the queue).
pub fn announce(f: &Fixture, corpus: &Path) -> String {
    f.runtime.block_on(async {
        let url = create_queue(&f.sqs, "trail-files").await;
        bucket_with_notification(&f.s3, &f.sqs, "org-trail", &url).await;
        upload(&f.s3, "org-trail", &corpus_files(corpus)).await;
        url
    })
}

pub fn sqs_section(url: &str, concurrency: u32, batch_events: u32) -> String {
    format!(
        "  sqs:\n    - {{ name: trail-files, queue_url: '{url}', wait_time: 1s, visibility_timeout: 4s, retry_delay: 1s, concurrency: {concurrency}, batch_events: {batch_events} }}\n"
    )
}

pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
