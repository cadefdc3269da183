//! What a queue or push message holds, sorted: EventBridge events to deliver, S3 objects to
//! read, notices to skip (S3 test events, digest files, deleted-object notices), and whether
//! the body could be decoded at all.
//!
//! EventBridge rules that target SQS put one event per message, so a receive batch is a batch
//! of events; each message is deleted only when its events reached the pipeline, and a failed
//! one is reported by message and event id and left in the queue (partial-batch semantics).

use std::sync::Arc;

use trailwatch_event::{Event, Item, Limits, ObjectRef, SkipReason, SkipScope, decode_message};

use crate::dedup::{Deliverer, run_blocking};
use crate::error::SourceError;
use crate::metrics::SourceMetrics;

/// A decoded message, sorted by what to do with each part.
#[derive(Debug, Default)]
pub struct MessagePlan {
    /// CloudTrail events carried in the body (EventBridge envelopes, SNS-wrapped records).
    pub events: Vec<Event>,
    /// Log files the body announces.
    pub objects: Vec<ObjectRef>,
    /// Notices skipped on purpose (S3 test event, digest file, ...), for the log.
    pub notices: Vec<String>,
    /// Records in the body that could not be used.
    pub skipped_records: u64,
    /// Why the body as a whole could not be decoded, if it could not.
    pub failure: Option<String>,
}

impl MessagePlan {
    /// True when the message carries nothing to deliver and nothing failed: delete it.
    pub fn only_notices(&self) -> bool {
        self.events.is_empty() && self.objects.is_empty() && self.failure.is_none()
    }
}

/// Decodes a message body on a blocking thread and counts its records in `metrics`: the
/// step every message source (SQS, the SNS endpoint) starts with.
pub(crate) async fn plan_counted(
    body: impl AsRef<[u8]> + Send + 'static,
    origin: &str,
    message_id: &str,
    limits: &Limits,
    metrics: &SourceMetrics,
    what: &'static str,
) -> Result<MessagePlan, SourceError> {
    let (origin, message_id, limits) = (origin.to_owned(), message_id.to_owned(), limits.clone());
    let plan = run_blocking(what, move || {
        plan(body.as_ref(), &origin, Some(&message_id), &limits)
    })
    .await?;
    metrics
        .events_received
        .add(plan.events.len() as u64 + plan.skipped_records);
    metrics.events_skipped.add(plan.skipped_records);
    Ok(plan)
}

/// Decodes a message body (SQS or SNS) into a [`MessagePlan`].
pub fn plan(body: &[u8], origin: &str, message_id: Option<&str>, limits: &Limits) -> MessagePlan {
    let mut plan = MessagePlan::default();
    decode_message(
        body,
        Arc::from(origin),
        message_id,
        limits,
        &mut |item| match item {
            Item::Event(e) => plan.events.push(e),
            Item::Object(o) => {
                if crate::s3_poll::LogKey::parse(&o.key).is_some_and(|k| k.digest) {
                    plan.notices.push(format!("digest file {}", o.url()));
                } else {
                    plan.objects.push(o);
                }
            }
            Item::Digest(_) => plan.notices.push("digest file".into()),
            Item::Skipped(s) => match (&s.reason, s.scope) {
                (SkipReason::S3TestEvent | SkipReason::UnsupportedNotification(_), _) => {
                    plan.notices.push(s.reason.to_string());
                }
                (_, SkipScope::Record) => {
                    plan.skipped_records += 1;
                    tracing::warn!(origin, message_id, reason = %s.reason, "skipped a record in a message");
                }
                (_, SkipScope::Input) => plan.failure = Some(s.reason.to_string()),
            },
        },
    );
    if plan.events.is_empty()
        && plan.objects.is_empty()
        && plan.failure.is_none()
        && (plan.skipped_records > 0 || plan.notices.is_empty())
    {
        // Nothing usable and nothing deliberately skipped: undecodable, not a notice.
        plan.failure = Some(format!(
            "nothing to process: {} unusable record(s), no event, no log file",
            plan.skipped_records
        ));
    }
    plan
}

/// Delivers a message's events; on failure, reports every event id it carried.
pub async fn deliver_events(
    events: Vec<Event>,
    origin: &str,
    message_id: Option<&str>,
    deliverer: &Deliverer,
    metrics: &SourceMetrics,
) -> Result<u64, SourceError> {
    if events.is_empty() {
        return Ok(0);
    }
    let ids: Vec<String> = events
        .iter()
        .map(|e| {
            e.meta()
                .event_id
                .clone()
                .unwrap_or_else(|| e.meta().id.clone())
        })
        .collect();
    match deliverer.deliver(events, origin, message_id, metrics).await {
        Ok(d) => Ok(d.processed),
        Err(e) => {
            for id in &ids {
                tracing::warn!(origin, message_id, event_id = %id, error = %e, "event not delivered; its message stays in the queue");
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENVELOPE: &str = r#"{"version":"0","id":"6f0b1a1e-0000-0000-0000-000000000001","detail-type":"AWS API Call via CloudTrail","source":"aws.ec2","account":"111122223333","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":{"eventVersion":"1.08","eventTime":"2026-01-01T00:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","eventID":"ev-1","eventType":"AwsApiCall","recipientAccountId":"111122223333"}}"#;

    #[test]
    fn sorts_events_objects_and_notices() {
        let p = plan(ENVELOPE.as_bytes(), "q", Some("m1"), &Limits::default());
        assert_eq!(p.events.len(), 1);
        assert_eq!(p.events[0].meta().event_id.as_deref(), Some("ev-1"));
        assert!(!p.only_notices());

        let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-01-01T00:00:00Z","Bucket":"b","RequestId":"r","HostId":"h"}"#;
        let p = plan(test_event.as_bytes(), "q", Some("m2"), &Limits::default());
        assert!(p.only_notices(), "{p:?}");
        assert_eq!(p.notices.len(), 1);

        let s3 = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-01-01T00:00:00Z","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"AWSLogs%2F111122223333%2FCloudTrail%2Fus-east-1%2F2026%2F01%2F01%2Ff.json.gz","size":10}}}]}"#;
        let p = plan(s3.as_bytes(), "q", Some("m3"), &Limits::default());
        assert_eq!(p.objects.len(), 1, "{p:?}");
        assert_eq!(
            p.objects[0].key,
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/01/f.json.gz"
        );

        let digest = s3.replace("CloudTrail%2F", "CloudTrail-Digest%2F");
        let p = plan(digest.as_bytes(), "q", Some("m4"), &Limits::default());
        assert!(p.only_notices(), "{p:?}");

        let p = plan(b"{not json", "q", Some("m5"), &Limits::default());
        assert!(p.failure.is_some(), "{p:?}");
        let p = plan(
            b"this is not a notification",
            "q",
            Some("m6"),
            &Limits::default(),
        );
        assert!(p.failure.is_some() && !p.only_notices(), "{p:?}");
    }
}
