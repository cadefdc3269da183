//! One borrowed parse of a JSON object that finds out what it is.
//!
//! Each record is parsed once into [`Probe`]: the few CloudTrail header fields as borrowed
//! strings, and every wrapper field as raw JSON to be looked at only when present. Wrapper
//! fields are raw (any JSON type) so that an enriched CloudTrail record carrying, say, a
//! `body` object is not rejected.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::value::RawValue;

/// A JSON string, borrowed from the input unless it had escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text<'a>(pub Cow<'a, str>);

impl Text<'_> {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Everything needed to tell a CloudTrail record from a wrapper, in one pass.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Probe<'a> {
    // CloudTrail record header.
    #[serde(rename = "eventVersion", borrow)]
    pub event_version: Option<Text<'a>>,
    #[serde(rename = "eventID", borrow)]
    pub event_id: Option<Text<'a>>,
    #[serde(rename = "eventTime", borrow)]
    pub event_time: Option<Text<'a>>,
    #[serde(rename = "eventSource", borrow)]
    pub event_source: Option<Text<'a>>,
    #[serde(rename = "eventName", borrow)]
    pub event_name: Option<Text<'a>>,
    #[serde(rename = "eventType", borrow)]
    pub event_type: Option<Text<'a>>,
    #[serde(rename = "awsRegion", borrow)]
    pub aws_region: Option<Text<'a>>,
    #[serde(rename = "recipientAccountId", borrow)]
    pub recipient_account_id: Option<Text<'a>>,
    #[serde(rename = "userIdentity", borrow, default)]
    pub user_identity: UserIdentity<'a>,
    /// Read for the matcher's screen (see [`Screened`]).
    #[serde(rename = "errorCode", borrow, default)]
    pub error_code: Screened<'a>,
    /// Log shippers (logstash) move `eventTime` here.
    #[serde(rename = "@timestamp", borrow)]
    pub at_timestamp: Option<&'a RawValue>,

    // Delivery files and Lambda-style batches.
    #[serde(rename = "Records", borrow)]
    pub records: Option<&'a RawValue>,

    // EventBridge envelope.
    #[serde(rename = "detail-type", borrow)]
    pub detail_type: Option<&'a RawValue>,
    #[serde(borrow)]
    pub detail: Option<&'a RawValue>,
    #[serde(borrow)]
    pub source: Option<&'a RawValue>,

    // S3 event notification record, SQS record, SNS record.
    #[serde(borrow)]
    pub s3: Option<&'a RawValue>,
    #[serde(borrow)]
    pub body: Option<&'a RawValue>,
    #[serde(rename = "messageId", borrow)]
    pub message_id: Option<&'a RawValue>,
    #[serde(rename = "EventSource", borrow)]
    pub sns_event_source: Option<&'a RawValue>,
    #[serde(rename = "Sns", borrow)]
    pub sns: Option<&'a RawValue>,

    // SNS notification (HTTP push, or an SQS body from an SNS subscription).
    #[serde(rename = "Type", borrow)]
    pub sns_type: Option<&'a RawValue>,
    #[serde(rename = "Message", borrow)]
    pub sns_message: Option<&'a RawValue>,
    #[serde(rename = "MessageId", borrow)]
    pub sns_message_id: Option<&'a RawValue>,

    // S3 test event.
    #[serde(rename = "Event", borrow)]
    pub s3_test_event: Option<&'a RawValue>,

    // CloudTrail digest file.
    #[serde(rename = "digestStartTime", borrow)]
    pub digest_start_time: Option<&'a RawValue>,
    #[serde(rename = "logFiles", borrow)]
    pub log_files: Option<&'a RawValue>,

    // AWS Config SNS notification.
    #[serde(rename = "messageType", borrow)]
    pub config_message_type: Option<&'a RawValue>,

    // Splunk HEC-style `{"time":..,"event":{record}}` export lines.
    #[serde(borrow)]
    pub event: Option<&'a RawValue>,
}

impl Probe<'_> {
    /// Whether the object looks like a CloudTrail record at all.
    pub(crate) fn has_cloudtrail_fields(&self) -> bool {
        self.event_version.is_some()
            || self.event_name.is_some()
            || self.event_time.is_some()
            || self.event_id.is_some()
            || self.event_source.is_some()
    }
}

/// Visitor methods that answer `$value` for every JSON scalar but a string (serde forwards
/// the narrower integer and float kinds to these).
macro_rules! non_string_scalars {
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// One field as the matcher's screen needs it: certainly absent, certainly this one
/// string, or something else (a number, null, an object, ...), which screens nothing.
/// Absence is the default: serde fills it in for a missing member. A duplicate member is
/// an error at the record level (serde's "duplicate field"), as for every header field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Screened<'a> {
    #[default]
    Absent,
    Str(Text<'a>),
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for Screened<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Screened<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Screened::Str(Text(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Screened::Str(Text(Cow::Owned(v.to_owned()))))
            }
            non_string_scalars!(Screened::Other);
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Screened::Other)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Screened::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// `userIdentity`, read in the record's one parse: its `type` for the matcher's screen and
/// its `accountId` for records without `recipientAccountId`. Any JSON value is accepted,
/// as before; only an object has members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UserIdentity<'a> {
    /// `userIdentity.type`: absent when `userIdentity` is absent or a scalar (then nothing
    /// sits at that path), unknown for an array or a repeated `type`.
    pub kind: Screened<'a>,
    /// `userIdentity.accountId` when it is a string, given once.
    pub account_id: Option<Text<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for UserIdentity<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UserIdentity<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut ui = UserIdentity::default();
                let (mut kinds, mut accounts) = (0u32, 0u32);
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    match key.as_str() {
                        "type" => {
                            kinds += 1;
                            let v = map.next_value::<Screened<'de>>()?;
                            ui.kind = if kinds == 1 { v } else { Screened::Other };
                        }
                        "accountId" => {
                            accounts += 1;
                            ui.account_id = match map.next_value::<Screened<'de>>()? {
                                Screened::Str(t) if accounts == 1 => Some(t),
                                _ => None,
                            };
                        }
                        _ => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(ui)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(UserIdentity {
                    kind: Screened::Other,
                    account_id: None,
                })
            }
            // (serde forwards borrowed and owned strings here.)
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(UserIdentity::default())
            }
            non_string_scalars!(UserIdentity::default());
        }
        d.deserialize_any(V)
    }
}

/// A raw JSON value read as a string, if it is one.
pub(crate) fn raw_str(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
    let raw = raw?;
    serde_json::from_str::<Text<'_>>(raw.get())
        .ok()
        .map(|t| t.0)
}

/// A JSON object's first non-whitespace byte, to reject arrays and scalars early.
pub(crate) fn first_byte(text: &str) -> Option<u8> {
    text.bytes()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}
