//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use trailwatch_alert::{Alert, Severity};
use trailwatch_notify::{Notifier, NotifyConfig, parse_section, sample_alert};

/// A temporary directory with an outbox path and secret files.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox.sqlite")
    }

    /// Writes a secret file and returns its path as a string for YAML.
    pub fn secret(&self, name: &str, value: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        path.display().to_string()
    }

    pub fn config(&self, yaml: &str) -> NotifyConfig {
        parse_section("test.yaml", yaml, 1).unwrap_or_else(|errors| {
            panic!(
                "config errors: {}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })
    }

    pub fn notifier(&self, yaml: &str) -> Notifier {
        Notifier::open(self.config(yaml), &self.outbox()).unwrap()
    }
}

/// Fast retries for tests.
pub const FAST_OUTBOX: &str =
    "outbox: { base_delay_ms: 20, max_delay_seconds: 2, max_attempts: 5 }";

pub fn alert(n: usize, severity: Severity) -> Alert {
    let mut a = sample_alert("sg-open", severity, &format!("key-{n}"));
    a.title = format!("Alert number {n}");
    a
}

/// Runs the notifier until idle with a hard timeout.
pub async fn drain(notifier: &Notifier) -> trailwatch_notify::RunStats {
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        notifier.run_until_idle(),
    )
    .await
    .expect("run_until_idle did not finish in 60 s")
    .unwrap()
}
