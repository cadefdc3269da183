//! The notifications that announce a new log file: S3 event notifications (direct, through
//! SNS, through SQS, SNS through SQS) and EventBridge "Object Created". They yield bucket+key
//! references, not events.
//!
//! Keys in S3 event notifications are URL-encoded as form data (`+` is a space; the moto
//! emulator also encodes `/` as `%2F`, real S3 leaves it): they are decoded here. EventBridge
//! S3 events carry the key verbatim and are left as they are.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::Provenance;
use crate::probe::{Text, raw_str};
use crate::skip::SkipReason;

/// A new log file to fetch, announced by a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// Bucket name.
    pub bucket: String,
    /// Object key, decoded.
    pub key: String,
    /// Object size in bytes, where announced.
    pub size: Option<u64>,
    /// When the notification says the object was written.
    pub event_time: Option<String>,
    /// Where the notification came from.
    pub provenance: Provenance,
}

impl ObjectRef {
    /// The object as an `s3://bucket/key` URL (the key as is, not re-encoded).
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// Decodes an S3 notification key: percent-decoding plus `+` as space
/// (`application/x-www-form-urlencoded`). `None` if the result is not UTF-8 or an escape
/// is broken.
pub fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if !b.iter().any(|&c| c == b'%' || c == b'+') {
        return Some(s.to_owned());
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                let hi = hex(*b.get(i + 1)?)?;
                let lo = hex(*b.get(i + 2)?)?;
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[derive(Deserialize)]
struct S3Entity<'a> {
    #[serde(borrow)]
    bucket: S3Bucket<'a>,
    #[serde(borrow)]
    object: S3Object<'a>,
}

#[derive(Deserialize)]
struct S3Bucket<'a> {
    #[serde(borrow)]
    name: Text<'a>,
}

#[derive(Deserialize)]
struct S3Object<'a> {
    #[serde(borrow)]
    key: Text<'a>,
    size: Option<u64>,
}

fn bad(field: &'static str, e: impl std::fmt::Display) -> SkipReason {
    SkipReason::InvalidField {
        field,
        msg: e.to_string(),
    }
}

/// One record of an S3 event notification (`eventSource` `aws:s3`).
pub(crate) fn s3_notification_record(
    event_name: Option<&str>,
    event_time: Option<&str>,
    s3: &RawValue,
    provenance: Provenance,
) -> Result<ObjectRef, SkipReason> {
    let name = event_name.ok_or(SkipReason::MissingField("eventName"))?;
    if !name.starts_with("ObjectCreated:") {
        return Err(SkipReason::UnsupportedNotification(format!(
            "S3 {name} notification"
        )));
    }
    let e: S3Entity<'_> = serde_json::from_str(s3.get()).map_err(|e| bad("s3", e))?;
    let key = form_decode(e.object.key.as_str()).ok_or_else(|| {
        bad(
            "s3.object.key",
            format!("bad URL encoding: {:?}", e.object.key.as_str()),
        )
    })?;
    Ok(ObjectRef {
        bucket: e.bucket.name.0.into_owned(),
        key,
        size: e.object.size,
        event_time: event_time.map(str::to_owned),
        provenance,
    })
}

#[derive(Deserialize)]
struct EbS3Envelope<'a> {
    #[serde(rename = "detail-type", borrow)]
    detail_type: Text<'a>,
    #[serde(borrow)]
    time: Option<Text<'a>>,
    #[serde(borrow)]
    detail: EbS3Detail<'a>,
}

#[derive(Deserialize)]
struct EbS3Detail<'a> {
    #[serde(rename = "event-version", borrow)]
    event_version: Option<Text<'a>>,
    #[serde(borrow)]
    bucket: S3Bucket<'a>,
    #[serde(borrow)]
    object: S3Object<'a>,
}

/// An EventBridge event from `aws.s3` about an object. Only "Object Created" names a log file;
/// the rest (deleted, restored, tagged, annotation created, ...) are skipped with a reason.
pub(crate) fn eventbridge_s3(text: &str, provenance: Provenance) -> Result<ObjectRef, SkipReason> {
    let env: EbS3Envelope<'_> = serde_json::from_str(text).map_err(|e| bad("detail", e))?;
    let dt = env.detail_type.as_str();
    if dt != "Object Created" {
        return Err(SkipReason::UnsupportedNotification(format!(
            "S3 EventBridge \"{dt}\" event"
        )));
    }
    // The S3 EventBridge schema is versioned; only major version 1 is understood.
    let version = env.detail.event_version.as_ref().map(Text::as_str);
    if version.and_then(|v| v.split('.').next()) != Some("1") {
        return Err(SkipReason::UnsupportedNotification(format!(
            "S3 EventBridge event-version {}",
            version.unwrap_or("(none)")
        )));
    }
    Ok(ObjectRef {
        bucket: env.detail.bucket.name.0.into_owned(),
        key: env.detail.object.key.0.into_owned(),
        size: env.detail.object.size,
        event_time: env.time.map(|t| t.0.into_owned()),
        provenance,
    })
}

/// The parts of an SNS message that matter: its type, id and body.
pub(crate) struct SnsParts<'a> {
    pub kind: Option<Cow<'a, str>>,
    pub message_id: Option<Cow<'a, str>>,
    /// The `Message` as text: a JSON string's contents, or the raw JSON of an object (as in
    /// the AWS Config documentation's example).
    pub message: Option<Cow<'a, str>>,
}

pub(crate) fn sns_parts<'a>(
    kind: Option<&'a RawValue>,
    message_id: Option<&'a RawValue>,
    message: Option<&'a RawValue>,
) -> SnsParts<'a> {
    let message = message.and_then(|m| match m.get().as_bytes().first() {
        Some(b'"') => raw_str(Some(m)),
        _ => Some(Cow::Borrowed(m.get())),
    });
    SnsParts {
        kind: raw_str(kind),
        message_id: raw_str(message_id),
        message,
    }
}

/// The `Sns` member of an SNS record in a Lambda-style batch.
pub(crate) fn sns_record(sns: &RawValue) -> Result<SnsParts<'_>, SkipReason> {
    #[derive(Deserialize)]
    struct Sns<'a> {
        #[serde(rename = "Type", borrow)]
        kind: Option<&'a RawValue>,
        #[serde(rename = "MessageId", borrow)]
        message_id: Option<&'a RawValue>,
        #[serde(rename = "Message", borrow)]
        message: Option<&'a RawValue>,
    }
    let s: Sns<'_> = serde_json::from_str(sns.get()).map_err(|e| bad("Sns", e))?;
    Ok(sns_parts(s.kind, s.message_id, s.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: Option<&str>) {
        assert_eq!(form_decode(input).as_deref(), expect, "{input}");
    }

    #[test]
    fn form_decoding() {
        check("plain/key.json.gz", Some("plain/key.json.gz"));
        check("my+file%3Da.json.gz", Some("my file=a.json.gz"));
        check(
            "AWSLogs%2F1234%2FCloudTrail%2Fx.json.gz",
            Some("AWSLogs/1234/CloudTrail/x.json.gz"),
        );
        check("caf%C3%A9", Some("café"));
        check("bad%2", None);
        check("bad%zz", None);
        check("%FF", None);
    }
}
