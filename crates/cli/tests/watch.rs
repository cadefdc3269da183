//! `trailwatch watch`: files arriving in a folder, restarts, duplicates.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;

fn stop_logging(event_id: &str, minute: u32) -> String {
    format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/mallory","accountId":"111122223333","userName":"mallory"}},"eventTime":"2026-02-01T10:{minute:02}:00Z","eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","awsRegion":"eu-west-1","sourceIPAddress":"192.0.2.9","userAgent":"aws-cli/2.15","requestParameters":{{"name":"main"}},"responseElements":null,"requestID":"r","eventID":"{event_id}","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}}"#
    )
}

/// Writes a gzip delivery file atomically (temp name, then rename), as sync tools do.
fn deliver(dir: &Path, name: &str, records: &[String]) {
    let folder = dir.join("AWSLogs/111122223333/CloudTrail/eu-west-1/2026/02/01");
    std::fs::create_dir_all(&folder).unwrap();
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(format!(r#"{{"Records":[{}]}}"#, records.join(",")).as_bytes())
        .unwrap();
    let tmp = folder.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, enc.finish().unwrap()).unwrap();
    std::fs::rename(&tmp, folder.join(name)).unwrap();
}

fn watch_once(dir: &Path, state: &Path) -> common::Run {
    common::trailwatch(&[
        "watch",
        "--once",
        "--format",
        "json",
        "--state",
        state.to_str().unwrap(),
        dir.to_str().unwrap(),
    ])
}

fn alert_event_ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn restart_repeats_nothing_and_duplicates_alert_once() {
    let logs = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    deliver(logs.path(), "a.json.gz", &[stop_logging("ev-a", 1)]);
    let first = watch_once(logs.path(), state.path());
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(alert_event_ids(&first.stdout), ["ev-a"]);

    // A restart with nothing new prints nothing.
    let again = watch_once(logs.path(), state.path());
    assert_eq!(again.stdout, "", "{}", again.stderr);

    // A new file that repeats ev-a (CloudTrail does deliver duplicates) and adds ev-b.
    deliver(
        logs.path(),
        "b.json.gz",
        &[stop_logging("ev-a", 1), stop_logging("ev-b", 2)],
    );
    let third = watch_once(logs.path(), state.path());
    assert_eq!(alert_event_ids(&third.stdout), ["ev-b"], "{}", third.stderr);
    assert!(third.stderr.contains("1 duplicate"), "{}", third.stderr);
}

struct Watcher {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: mpsc::Receiver<String>,
}

fn forward_lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Watcher {
    fn start(dir: &Path, state: &Path) -> Watcher {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
            .args(["watch", "--format", "json", "--rescan", "60s", "--state"])
            .arg(state)
            .arg(dir)
            .env("TRAILWATCH_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = forward_lines(child.stdout.take().unwrap());
        let log = forward_lines(child.stderr.take().unwrap());
        Watcher { child, lines, log }
    }

    /// Waits until the watcher logs that it committed a file to its checkpoint.
    fn wait_committed(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains("processed") => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }

    fn next_alert(&self, within: Duration) -> Option<String> {
        self.lines.recv_timeout(within).ok()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn new_files_are_picked_up_as_they_arrive() {
    let logs = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let watcher = Watcher::start(logs.path(), state.path());
    // Give the watcher a moment to install its inotify watch, then deliver.
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    deliver(logs.path(), "live.json.gz", &[stop_logging("ev-live", 3)]);
    let line = watcher
        .next_alert(Duration::from_secs(20))
        .expect("an alert for the new file (the rescan interval is 60 s, so inotify delivered it)");
    assert!(line.contains("ev-live"), "{line}");
    assert!(started.elapsed() < Duration::from_secs(20));
    // Alerts are written before the file is committed (at-least-once): a kill between the
    // two would repeat this file's alerts. Kill only after the commit.
    assert!(watcher.wait_committed(Duration::from_secs(10)));
    drop(watcher);

    // After a kill, a restart does not repeat the file.
    let watcher = Watcher::start(logs.path(), state.path());
    assert_eq!(watcher.next_alert(Duration::from_secs(2)), None);
}

#[test]
fn with_destinations_alerts_go_through_the_outbox_once() {
    let recorder = trailwatch_testkit::Recorder::start().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let config = state.path().join("trailwatch.yaml");
    std::fs::write(
        &config,
        format!(
            "destinations:\n  hook: {{ type: webhook, url: '{}' }}\nroutes:\n  - {{ to: [hook] }}\noutbox: {{ base_delay_ms: 10 }}\n",
            recorder.url("/hook")
        ),
    )
    .unwrap();
    // The destination fails the first attempt: --once still delivers before it exits.
    recorder.push_next(1, trailwatch_testkit::Behavior::Status(503));
    deliver(logs.path(), "a.json.gz", &[stop_logging("ev-a", 1)]);
    let once = |logs: &Path| {
        common::trailwatch(&[
            "watch",
            "--once",
            "--config",
            config.to_str().unwrap(),
            "--state",
            state.path().to_str().unwrap(),
            logs.to_str().unwrap(),
        ])
    };
    let run = once(logs.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "", "alerts go to the destination, not stdout");
    assert!(
        run.stderr.contains("delivered 1 alert(s); 0 dead"),
        "{}",
        run.stderr
    );
    let got = recorder.accepted();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["event_id"], "ev-a");
    assert_eq!(got[0].json()["rule_id"], "cloudtrail-logging-tampered");
    assert!(state.path().join("outbox.sqlite").is_file());

    // The same event again in a new file, and a restart: nothing is sent twice.
    deliver(logs.path(), "b.json.gz", &[stop_logging("ev-a", 1)]);
    let run = once(logs.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("delivered 0 alert(s)"),
        "{}",
        run.stderr
    );
    assert_eq!(recorder.accepted().len(), 1);

    // `alerts dead` finds the same outbox through the same state folder.
    let dead = common::trailwatch(&[
        "alerts",
        "dead",
        "--config",
        config.to_str().unwrap(),
        "--state",
        state.path().to_str().unwrap(),
    ]);
    assert_eq!(dead.code, 0, "{}", dead.stderr);
}

fn console_failure(event_id: &str, minute: u32) -> String {
    format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLE","accountId":"111122223333","userName":"anaya"}},"eventTime":"2026-02-01T09:{minute:02}:00Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.23","userAgent":"Mozilla/5.0","requestParameters":null,"responseElements":{{"ConsoleLogin":"Failure"}},"additionalEventData":{{"MFAUsed":"No"}},"eventID":"{event_id}","readOnly":false,"eventType":"AwsConsoleSignIn","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}}"#
    )
}

#[test]
fn threshold_windows_continue_across_runs() {
    let logs = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    // Three failures now, two more in a later file: five within ten minutes only together.
    let first: Vec<String> = (0..3)
        .map(|i| console_failure(&format!("f{i}"), i))
        .collect();
    deliver(logs.path(), "a.json.gz", &first);
    let run = watch_once(logs.path(), state.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stdout.contains("console-login-failures"),
        "{}",
        run.stdout
    );
    assert!(state.path().join("watch-gate.sqlite").is_file());
    let second: Vec<String> = (3..5)
        .map(|i| console_failure(&format!("f{i}"), i))
        .collect();
    deliver(logs.path(), "b.json.gz", &second);
    let run = watch_once(logs.path(), state.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let fired: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["rule_id"] == "console-login-failures")
        .collect();
    assert_eq!(fired.len(), 1, "{}", run.stdout);
    assert_eq!(fired[0]["event_id"], "f4");
}
