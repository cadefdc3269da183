//! The dead-man check: an account/region that used to deliver CloudTrail files and has
//! delivered none for longer than `after` raises one `trailwatch-delivery-stopped` alert
//! (severity high). When files come again the check re-arms, with a log line.
//!
//! Deliveries are recorded in the store by the SQS source and the S3 poller (each log file
//! read), so the check survives restarts. Stopped logging is a classic way to hide an attack
//! (MITRE ATT&CK T1562.008), hence the severity.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;
use trailwatch_alert::{Alert, AlertOrigin, Principal, Severity};
use trailwatch_store::{Delivery, SourceState};

use crate::dedup::{lock, run_blocking};
use crate::error::SourceError;

/// The alert's rule id.
pub const RULE_ID: &str = "trailwatch-delivery-stopped";

/// Where the check's alerts go (the binary forwards them to its destinations).
pub type AlertSink = Arc<dyn Fn(Alert) + Send + Sync>;

/// The check's state: which account/regions are currently alerted.
pub struct Deadman {
    after: TimeDelta,
    state: Arc<Mutex<SourceState>>,
    alerted: Mutex<HashSet<(String, String)>>,
}

fn human(d: TimeDelta) -> String {
    let mins = d.num_minutes().max(0);
    match (mins / 60, mins % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h {m}m"),
    }
}

/// The alert for one silent account/region.
pub fn alert_for(d: &Delivery, now: DateTime<Utc>, after: TimeDelta) -> Alert {
    let silent = now - d.last_at;
    let id = format!(
        "{RULE_ID}:{}:{}:{}",
        d.account,
        d.region,
        d.last_at.format("%Y%m%dT%H%M%SZ")
    );
    let mut fields = BTreeMap::new();
    fields.insert("last_delivery".into(), d.last_at.to_rfc3339());
    fields.insert("last_key".into(), d.last_key.clone());
    fields.insert("silent_for".into(), human(silent));
    fields.insert("threshold".into(), human(after));
    Alert {
        rule_id: RULE_ID.into(),
        severity: Severity::High,
        title: format!(
            "CloudTrail delivery stopped: account {} in {} sent no log file for {}",
            d.account,
            d.region,
            human(silent)
        ),
        body: format!(
            "trailwatch has not seen a CloudTrail log file from account {} in {} since {} \
             (last file: {}). The threshold is {}.\n\nCheck that the trail is still logging \
             (cloudtrail:GetTrailStatus), that nobody ran StopLogging, DeleteTrail or \
             PutEventSelectors, that the bucket policy and KMS key still allow delivery, and \
             that the S3 notification to the queue still exists.",
            d.account,
            d.region,
            d.last_at.to_rfc3339(),
            d.last_key,
            human(after)
        ),
        event_id: id.clone(),
        event_time: now.to_rfc3339(),
        event_source: "trailwatch".into(),
        event_name: "DeliveryStopped".into(),
        account: d.account.clone(),
        account_alias: None,
        region: d.region.clone(),
        principal: Principal {
            kind: "trailwatch".into(),
            arn: None,
            name: "trailwatch dead-man check".into(),
            account_id: None,
            access_key_id: None,
        },
        source_ip: None,
        user_agent: None,
        resources: Vec::new(),
        console_url: format!(
            "https://{r}.console.aws.amazon.com/cloudtrailv2/home?region={r}#/trails",
            r = d.region
        ),
        tags: vec!["T1562.008".into(), "delivery".into()],
        runbook: None,
        fields,
        item: None,
        dedup_key: id,
        remediation: None,
        repeats: 0,
        origin: AlertOrigin {
            source: "trailwatch:deadman".into(),
            record_index: None,
            message_id: None,
        },
    }
}

impl Deadman {
    /// A check over `state` that alerts after `after` of silence.
    pub fn new(state: Arc<Mutex<SourceState>>, after: Duration) -> Deadman {
        Deadman {
            after: TimeDelta::from_std(after).unwrap_or(TimeDelta::hours(2)),
            state,
            alerted: Mutex::new(HashSet::new()),
        }
    }

    /// Checks every known account/region at `now`; returns the alerts to raise (each
    /// silence alerts once until files come again).
    pub async fn check(&self, now: DateTime<Utc>) -> Result<Vec<Alert>, SourceError> {
        let state = self.state.clone();
        let deliveries =
            run_blocking("reading deliveries", move || lock(&state).deliveries()).await??;
        let mut alerted = lock(&self.alerted);
        let mut out = Vec::new();
        for d in deliveries {
            let key = (d.account.clone(), d.region.clone());
            if now - d.last_at > self.after {
                if alerted.insert(key) {
                    tracing::warn!(account = %d.account, region = %d.region, last_delivery = %d.last_at, "CloudTrail delivery stopped");
                    out.push(alert_for(&d, now, self.after));
                }
            } else if alerted.remove(&key) {
                tracing::info!(account = %d.account, region = %d.region, last_delivery = %d.last_at, "CloudTrail delivery resumed");
            }
        }
        Ok(out)
    }

    /// Checks every `every` until `cancel` fires, handing alerts to `sink`.
    pub async fn run(self, every: Duration, sink: AlertSink, cancel: CancellationToken) {
        loop {
            match self.check(Utc::now()).await {
                Ok(alerts) => alerts.into_iter().for_each(|a| sink(a)),
                Err(e) => tracing::warn!(error = %e, "dead-man check failed"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn alerts_once_per_silence_and_rearms() {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(Mutex::new(
            SourceState::open(dir.path().join("s.sqlite")).unwrap(),
        ));
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        lock(&state)
            .record_delivery("111122223333", "eu-west-1", t0, "AWSLogs/k1")
            .unwrap();
        lock(&state)
            .record_delivery(
                "444455556666",
                "us-east-1",
                t0 + TimeDelta::hours(2),
                "AWSLogs/k2",
            )
            .unwrap();
        let dm = Deadman::new(state.clone(), Duration::from_secs(3 * 3600));
        assert!(dm.check(t0 + TimeDelta::hours(2)).await.unwrap().is_empty());
        let alerts = dm.check(t0 + TimeDelta::hours(4)).await.unwrap();
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.rule_id, RULE_ID);
        assert_eq!(a.severity, Severity::High);
        assert_eq!(a.account, "111122223333");
        assert_eq!(a.region, "eu-west-1");
        assert_eq!(a.fields["silent_for"], "4h");
        assert!(a.title.contains("no log file for 4h"), "{}", a.title);
        // Once only.
        assert!(dm.check(t0 + TimeDelta::hours(5)).await.unwrap().is_empty());
        // Files again: re-armed; silence again: a new alert with a new dedup key.
        let t1 = t0 + TimeDelta::hours(6);
        lock(&state)
            .record_delivery("111122223333", "eu-west-1", t1, "AWSLogs/k3")
            .unwrap();
        lock(&state)
            .record_delivery("444455556666", "us-east-1", t1, "AWSLogs/k4")
            .unwrap();
        assert!(dm.check(t1).await.unwrap().is_empty());
        let again = dm.check(t1 + TimeDelta::hours(4)).await.unwrap();
        assert_eq!(again.len(), 2);
        assert_ne!(again[0].dedup_key, a.dedup_key);
    }
}
