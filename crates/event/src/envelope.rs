//! The one event model: the envelope EventBridge itself delivers for CloudTrail.
//!
//! Mapping from a CloudTrail record (AWS EventBridge user guide, "AWS service events delivered
//! via AWS CloudTrail"; EventBridge event reference pages `events-ref-<service>`; CloudTrail
//! user guide, "CloudTrail record contents"):
//!
//! | envelope      | from the record |
//! |---------------|-----------------|
//! | `version`     | always `"0"` |
//! | `id`          | UUID v5 of `eventID` (see [`event_uuid`]); EventBridge's own id is random, ours is deterministic so the same event always gets the same id |
//! | `detail-type` | from `eventType`, see [`detail_type_for`] |
//! | `source`      | `aws.` + `eventSource` without `.amazonaws.com`, see [`source_for`] |
//! | `account`     | `recipientAccountId`, else `userIdentity.accountId` |
//! | `time`        | `eventTime`, printed as `YYYY-MM-DDTHH:MM:SSZ` |
//! | `region`      | `awsRegion` |
//! | `resources`   | `[]`, as EventBridge gives for every CloudTrail event |
//! | `detail`      | the record's own bytes, verbatim |

use std::borrow::Cow;
use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::Provenance;
use crate::known::{self, KNOWN_FIELDS, Known, MetaStrings, Seen, SeenFields};
use crate::probe::{Probe, Screened, Text, first_byte, raw_str};

/// `detail-type` of an API call record.
pub const DETAIL_TYPE_API_CALL: &str = "AWS API Call via CloudTrail";
/// `detail-type` of a console sign-in record.
pub const DETAIL_TYPE_CONSOLE_SIGN_IN: &str = "AWS Console Sign In via CloudTrail";
/// `detail-type` of a service event record.
pub const DETAIL_TYPE_SERVICE_EVENT: &str = "AWS Service Event via CloudTrail";
/// `detail-type` of a console action record.
pub const DETAIL_TYPE_CONSOLE_ACTION: &str = "AWS Console Action via CloudTrail";
/// `detail-type` of a CloudTrail Insights record.
pub const DETAIL_TYPE_INSIGHT: &str = "AWS Insight via CloudTrail";

/// Why one record or envelope could not become an [`Event`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Not well-formed JSON; line and column count from the start of the record text.
    #[error("malformed JSON at line {line}, column {column}: {msg}")]
    MalformedJson {
        /// 1-based line within the record.
        line: u64,
        /// 1-based column within the line.
        column: u64,
        /// What the parser expected.
        msg: String,
    },
    /// The text is not a JSON object.
    #[error("not a JSON object")]
    NotAnObject,
    /// A required field is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field has the wrong type or an unusable value.
    #[error("invalid `{field}`: {msg}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// Nested deeper than the parser accepts.
    #[error("JSON nested too deeply")]
    TooDeep,
}

impl RecordError {
    pub(crate) fn from_json(e: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let msg = e.to_string();
        if msg.starts_with("recursion limit exceeded") {
            return RecordError::TooDeep;
        }
        match e.classify() {
            Category::Data => RecordError::InvalidField {
                field: "record",
                msg: strip_position(&msg),
            },
            _ => RecordError::MalformedJson {
                line: e.line() as u64,
                column: e.column() as u64,
                msg: strip_position(&msg),
            },
        }
    }
}

/// serde_json appends " at line L column C"; position is reported separately.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// The envelope fields every consumer needs without parsing the JSON again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    /// Envelope `id`.
    pub id: String,
    /// Envelope `detail-type`.
    pub detail_type: String,
    /// Envelope `source`, e.g. `aws.ec2`.
    pub source: String,
    /// Envelope `account`.
    pub account: String,
    /// Envelope `region`.
    pub region: String,
    /// Envelope `time`.
    pub time: DateTime<Utc>,
    /// `detail.eventID`, where present.
    pub event_id: Option<String>,
    /// `detail.eventName`, where present.
    pub event_name: Option<String>,
    /// `detail.eventSource`, where present.
    pub event_source: Option<String>,
}

/// One event in the EventBridge envelope, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    json: String,
    detail: (usize, usize),
    meta: EventMeta,
    provenance: Provenance,
    known: SeenFields,
}

impl Event {
    /// The whole EventBridge envelope as JSON text (detail = original record bytes verbatim).
    /// Fed to the pattern matcher as bytes.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The `detail` member's text: the original record bytes.
    pub fn detail(&self) -> &str {
        self.json.get(self.detail.0..self.detail.1).unwrap_or("")
    }

    /// The envelope fields, already extracted.
    pub fn meta(&self) -> &EventMeta {
        &self.meta
    }

    /// Where the event came from.
    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }

    /// What the decoder knows for certain about the fields of [`KNOWN_FIELDS`], in that
    /// order (for a matcher's screen).
    pub fn known_fields(&self) -> [Known<'_>; KNOWN_FIELDS.len()] {
        let meta = MetaStrings {
            source: &self.meta.source,
            detail_type: &self.meta.detail_type,
            account: &self.meta.account,
            region: &self.meta.region,
        };
        known::resolve(&self.known, &self.json, 0, &meta)
    }

    /// Parses the envelope into a [`serde_json::Value`] (for rules and templates; only worth
    /// doing for matched events).
    pub fn to_value(&self) -> serde_json::Value {
        // The text was produced or validated by this crate, so this does not fail in practice.
        serde_json::from_str(&self.json).unwrap_or(serde_json::Value::Null)
    }

    /// Wraps one CloudTrail record in the EventBridge envelope.
    pub fn from_record(record_json: &str, provenance: Provenance) -> Result<Event, RecordError> {
        if first_byte(record_json) != Some(b'{') {
            return Err(RecordError::NotAnObject);
        }
        let probe: Probe<'_> =
            serde_json::from_str(record_json).map_err(|e| RecordError::from_json(&e))?;
        Event::from_probe(record_json, &probe, provenance, None)
    }

    /// Accepts an EventBridge envelope as it is: the text is kept unchanged.
    pub fn from_envelope(
        envelope_json: &str,
        provenance: Provenance,
    ) -> Result<Event, RecordError> {
        let text = envelope_json.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\r'));
        if first_byte(text) != Some(b'{') {
            return Err(RecordError::NotAnObject);
        }
        let env: EnvelopeProbe<'_> =
            serde_json::from_str(text).map_err(|e| RecordError::from_json(&e))?;
        let detail_type = env
            .detail_type
            .ok_or(RecordError::MissingField("detail-type"))?;
        let source = env.source.ok_or(RecordError::MissingField("source"))?;
        let detail = env.detail.ok_or(RecordError::MissingField("detail"))?;
        let dp: DetailProbe<'_> = if first_byte(detail.get()) == Some(b'{') {
            serde_json::from_str(detail.get()).unwrap_or_default()
        } else {
            DetailProbe::default()
        };
        let time = env
            .time
            .as_ref()
            .and_then(|t| normalise_time(t.as_str()))
            .or_else(|| {
                dp.event_time
                    .as_ref()
                    .and_then(|t| normalise_time(t.as_str()))
            })
            .map(|(t, _)| t)
            .ok_or(RecordError::MissingField("time"))?;
        let start = (detail.get().as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
        // A missing account or region may be a null in the text: not certain either way.
        let mut known = known::ENVELOPE_FROM_META;
        if env.account.is_none() {
            known[known::ACCOUNT] = Seen::Unknown;
        }
        if env.region.is_none() {
            known[known::REGION] = Seen::Unknown;
        }
        let meta = EventMeta {
            id: env.id.map(|t| t.0.into_owned()).unwrap_or_default(),
            detail_type: detail_type.0.into_owned(),
            source: source.0.into_owned(),
            account: env.account.map(|t| t.0.into_owned()).unwrap_or_default(),
            region: env.region.map(|t| t.0.into_owned()).unwrap_or_default(),
            time,
            event_id: dp.event_id.map(|t| t.0.into_owned()),
            event_name: dp.event_name.map(|t| t.0.into_owned()),
            event_source: dp.event_source.map(|t| t.0.into_owned()),
        };
        Ok(Event {
            json: text.to_owned(),
            detail: (start, start + detail.get().len()),
            meta,
            provenance,
            known,
        })
    }

    /// Builds the envelope from an already-parsed header: one parse per record. `may_alias`
    /// is the framing scanner's [`known::may_alias_user_identity_type`] verdict on `record`
    /// when it has one (it sees every escape and string start anyway).
    pub(crate) fn from_probe(
        record: &str,
        p: &Probe<'_>,
        provenance: Provenance,
        may_alias: Option<bool>,
    ) -> Result<Event, RecordError> {
        Ok(Header::from_probe(record, p, may_alias)?.into_event(provenance))
    }

    /// Builds an event from envelope parts produced by this crate (Config SNS notifications).
    pub(crate) fn from_parts(parts: EnvelopeParts<'_>, provenance: Provenance) -> Event {
        let mut json = String::with_capacity(parts.detail.len() + 220);
        json.push_str("{\"version\":\"0\",\"id\":");
        push_json_str(&mut json, &parts.id);
        json.push_str(",\"detail-type\":");
        push_json_str(&mut json, parts.detail_type);
        json.push_str(",\"source\":");
        push_json_str(&mut json, parts.source);
        json.push_str(",\"account\":");
        push_json_str(&mut json, parts.account);
        json.push_str(",\"time\":");
        push_json_str(&mut json, &format_time(&parts.time));
        json.push_str(",\"region\":");
        push_json_str(&mut json, parts.region);
        json.push_str(",\"resources\":[");
        for (i, r) in parts.resources.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            push_json_str(&mut json, r);
        }
        json.push_str("],\"detail\":");
        let start = json.len();
        json.push_str(parts.detail);
        let end = json.len();
        json.push('}');
        Event {
            json,
            detail: (start, end),
            meta: EventMeta {
                id: parts.id,
                detail_type: parts.detail_type.to_owned(),
                source: parts.source.to_owned(),
                account: parts.account.to_owned(),
                region: parts.region.to_owned(),
                time: parts.time,
                event_id: None,
                event_name: None,
                event_source: None,
            },
            provenance,
            known: known::ENVELOPE_FROM_META,
        }
    }
}

/// Inputs to [`Event::from_parts`].
pub(crate) struct EnvelopeParts<'a> {
    pub id: String,
    pub detail_type: &'a str,
    pub source: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    pub time: DateTime<Utc>,
    pub resources: Vec<String>,
    pub detail: &'a str,
}

#[derive(Default, Deserialize)]
struct EnvelopeProbe<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(rename = "detail-type", borrow)]
    detail_type: Option<Text<'a>>,
    #[serde(borrow)]
    source: Option<Text<'a>>,
    #[serde(borrow)]
    account: Option<Text<'a>>,
    #[serde(borrow)]
    time: Option<Text<'a>>,
    #[serde(borrow)]
    region: Option<Text<'a>>,
    #[serde(borrow)]
    detail: Option<&'a RawValue>,
}

#[derive(Default, Deserialize)]
struct DetailProbe<'a> {
    #[serde(rename = "eventID", borrow)]
    event_id: Option<Text<'a>>,
    #[serde(rename = "eventName", borrow)]
    event_name: Option<Text<'a>>,
    #[serde(rename = "eventSource", borrow)]
    event_source: Option<Text<'a>>,
    #[serde(rename = "eventTime", borrow)]
    event_time: Option<Text<'a>>,
}

/// A screened field's place in the envelope text.
fn screened(value: &Screened<'_>, at: &impl Fn(&str) -> Seen) -> Seen {
    match value {
        Screened::Absent => Seen::Absent,
        Screened::Str(t) => at(t.as_str()),
        Screened::Other => Seen::Unknown,
    }
}

/// The envelope `detail-type` for a CloudTrail `eventType`.
///
/// `AwsApiCall`, and records without `eventType` (written before eventVersion 1.02), are API
/// calls. `AwsVpceEvent` (network activity) has no documented EventBridge detail-type; it is
/// an API call made through a VPC endpoint and is mapped to the API-call type.
pub fn detail_type_for(event_type: Option<&str>) -> &'static str {
    match event_type {
        Some("AwsConsoleSignIn") => DETAIL_TYPE_CONSOLE_SIGN_IN,
        Some("AwsServiceEvent") => DETAIL_TYPE_SERVICE_EVENT,
        Some("AwsConsoleAction") => DETAIL_TYPE_CONSOLE_ACTION,
        Some("AwsCloudTrailInsight") => DETAIL_TYPE_INSIGHT,
        _ => DETAIL_TYPE_API_CALL,
    }
}

/// The envelope `source` for a CloudTrail `eventSource`: `ec2.amazonaws.com` → `aws.ec2`,
/// `cloudtrail-data.amazonaws.com` → `aws.cloudtrail-data`, `monitoring.amazonaws.com` →
/// `aws.monitoring` (as the EventBridge event reference lists it).
pub fn source_for(event_source: &str) -> String {
    let service = match event_source.strip_suffix(".amazonaws.com") {
        Some(s) => s,
        None => event_source.split('.').next().unwrap_or(event_source),
    };
    let mut s = String::with_capacity(4 + service.len());
    s.push_str("aws.");
    s.push_str(service);
    s
}

static EVENT_NAMESPACE: LazyLock<Uuid> =
    LazyLock::new(|| uuid_v5(&Uuid::NAMESPACE_URL, b"urn:trailwatch:cloudtrail:eventID"));

/// A name-based UUID v5 (SHA-1 of namespace and name), as `Uuid::new_v5` makes it.
fn uuid_v5(namespace: &Uuid, name: &[u8]) -> Uuid {
    use sha1::Digest;
    let mut hasher = sha1::Sha1::new();
    hasher.update(namespace.as_bytes());
    hasher.update(name);
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

/// The lowercase hyphenated form, without the formatting machinery.
fn hyphenated(id: Uuid) -> String {
    let mut buf = Uuid::encode_buffer();
    id.hyphenated().encode_lower(&mut buf).to_owned()
}

/// The deterministic envelope id: UUID v5 (SHA-1) of `eventID` in a trailwatch namespace, or
/// of the whole record text when it has no `eventID`. The same event always gets the same id,
/// however it arrives.
pub fn event_uuid(event_id: Option<&str>, record: &str) -> String {
    let name = event_id.unwrap_or(record);
    hyphenated(uuid_v5(&EVENT_NAMESPACE, name.as_bytes()))
}

/// A UUID v5 for envelopes this crate makes from non-CloudTrail notifications.
pub(crate) fn derived_uuid(kind: &str, name: &str) -> String {
    let ns = uuid_v5(&EVENT_NAMESPACE, kind.as_bytes());
    hyphenated(uuid_v5(&ns, name.as_bytes()))
}

/// Parses an ISO 8601 time and gives it back as EventBridge prints it
/// (`2026-01-01T00:00:00Z`, whole seconds, UTC). Borrowed when already in that form.
pub fn normalise_time(s: &str) -> Option<(DateTime<Utc>, Cow<'_, str>)> {
    let b = s.as_bytes();
    if b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
    {
        let n = |r: std::ops::Range<usize>| -> Option<u32> {
            let mut v = 0u32;
            for &c in &b[r] {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + u32::from(c - b'0');
            }
            Some(v)
        };
        let date = NaiveDate::from_ymd_opt(n(0..4)? as i32, n(5..7)?, n(8..10)?)?;
        let dt = date.and_hms_opt(n(11..13)?, n(14..16)?, n(17..19)?)?;
        return Some((dt.and_utc(), Cow::Borrowed(s)));
    }
    let dt = match DateTime::parse_from_rfc3339(s) {
        Ok(d) => d.with_timezone(&Utc),
        Err(_) => NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()?
            .and_utc(),
    };
    Some((dt, Cow::Owned(format_time(&dt))))
}

/// EventBridge's time format.
pub(crate) fn format_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A record's envelope fields before the envelope is built: what a caller needs to decide
/// whether an event is worth building at all (see [`crate::decode_screened`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview<'a> {
    /// Envelope `time`.
    pub time: DateTime<Utc>,
    /// Envelope `account`.
    pub account: &'a str,
    /// Envelope `region`.
    pub region: &'a str,
    /// The fields of [`KNOWN_FIELDS`] exactly as the built event's
    /// [`Event::known_fields`] would report them.
    pub known: [Known<'a>; KNOWN_FIELDS.len()],
}

/// A CloudTrail record checked and mapped to its envelope fields, with the envelope not yet
/// written: building it (the id's hash, a copy of the record, the owned fields) is most of
/// what an event costs, and most events are only screened out.
pub(crate) struct Header<'p> {
    /// The record text, without surrounding whitespace.
    record: &'p str,
    time: DateTime<Utc>,
    time_text: Cow<'p, str>,
    source: Cow<'p, str>,
    account: &'p str,
    region: &'p str,
    detail_type: &'static str,
    event_id: Option<&'p str>,
    event_name: Option<&'p str>,
    event_source: Option<&'p str>,
    /// Where `detail` will start in the envelope text.
    detail_start: usize,
    /// Known fields, with ranges into the envelope text to be.
    known: SeenFields,
}

impl<'p> Header<'p> {
    /// Checks the record's required fields and maps them, as [`Event::from_probe`] does.
    pub(crate) fn from_probe(
        record: &'p str,
        p: &'p Probe<'_>,
        may_alias: Option<bool>,
    ) -> Result<Header<'p>, RecordError> {
        let record = record.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\r'));
        let event_type = p.event_type.as_ref().map(Text::as_str);
        let insight = event_type == Some("AwsCloudTrailInsight");
        // Insights records carry eventName/eventSource inside insightDetails only.
        if !insight && p.event_name.is_none() {
            return Err(RecordError::MissingField("eventName"));
        }
        let (time, time_text) = match &p.event_time {
            Some(t) => normalise_time(t.as_str()).ok_or_else(|| RecordError::InvalidField {
                field: "eventTime",
                msg: format!("not an ISO 8601 UTC time: {:?}", t.as_str()),
            })?,
            None => raw_str(p.at_timestamp)
                .and_then(|t| normalise_time(&t).map(|(d, s)| (d, Cow::Owned(s.into_owned()))))
                .ok_or(RecordError::MissingField("eventTime"))?,
        };
        let source = if insight {
            Cow::Borrowed("aws.cloudtrail")
        } else {
            let es = p
                .event_source
                .as_ref()
                .ok_or(RecordError::MissingField("eventSource"))?;
            Cow::Owned(source_for(es.as_str()))
        };
        let region = p
            .aws_region
            .as_ref()
            .ok_or(RecordError::MissingField("awsRegion"))?
            .as_str();
        let account = match &p.recipient_account_id {
            Some(a) => a.as_str(),
            None => p
                .user_identity
                .account_id
                .as_ref()
                .map(Text::as_str)
                .ok_or(RecordError::MissingField("recipientAccountId"))?,
        };
        let detail_type = detail_type_for(event_type);
        // The id is always a hyphenated UUID, so `detail`'s place is known before it is.
        let detail_start = ENVELOPE_PUNCTUATION
            + UUID_LEN
            + detail_type.len()
            + json_str_len(&source)
            + json_str_len(account)
            + json_str_len(&time_text)
            + json_str_len(region);

        let mut known = known::ENVELOPE_FROM_META;
        let at = |value: &str| known::seen_in_record(record, value, detail_start);
        let text = |t: &Option<Text<'_>>| t.as_ref().map_or(Seen::Unknown, |t| at(t.as_str()));
        known[known::EVENT_SOURCE] = text(&p.event_source);
        known[known::EVENT_NAME] = text(&p.event_name);
        known[known::EVENT_TYPE] = text(&p.event_type);
        known[known::ERROR_CODE] = screened(&p.error_code, &at);
        let may_alias = may_alias.unwrap_or_else(|| known::may_alias_user_identity_type(record));
        known[known::USER_IDENTITY_TYPE] = if may_alias {
            Seen::Unknown
        } else {
            screened(&p.user_identity.kind, &at)
        };
        Ok(Header {
            record,
            time,
            time_text,
            source,
            account,
            region,
            detail_type,
            event_id: p.event_id.as_ref().map(Text::as_str),
            event_name: p.event_name.as_ref().map(Text::as_str),
            event_source: p.event_source.as_ref().map(Text::as_str),
            detail_start,
            known,
        })
    }

    /// The fields a caller screens on, borrowed.
    pub(crate) fn preview(&self) -> Preview<'_> {
        let meta = MetaStrings {
            source: &self.source,
            detail_type: self.detail_type,
            account: self.account,
            region: self.region,
        };
        Preview {
            time: self.time,
            account: self.account,
            region: self.region,
            known: known::resolve(&self.known, self.record, self.detail_start, &meta),
        }
    }

    /// Writes the envelope: sized once, since growing past a guess copied every record.
    pub(crate) fn into_event(self, provenance: Provenance) -> Event {
        let id = event_uuid(self.event_id, self.record);
        let mut json = String::with_capacity(self.detail_start + self.record.len() + 1);
        json.push_str("{\"version\":\"0\",\"id\":\"");
        json.push_str(&id);
        json.push_str("\",\"detail-type\":\"");
        json.push_str(self.detail_type);
        json.push_str("\",\"source\":");
        push_json_str(&mut json, &self.source);
        json.push_str(",\"account\":");
        push_json_str(&mut json, self.account);
        json.push_str(",\"time\":");
        push_json_str(&mut json, &self.time_text);
        json.push_str(",\"region\":");
        push_json_str(&mut json, self.region);
        json.push_str(",\"resources\":[],\"detail\":");
        debug_assert_eq!(json.len(), self.detail_start, "header size computed apart");
        let start = json.len();
        json.push_str(self.record);
        let end = json.len();
        json.push('}');
        let meta = EventMeta {
            id,
            detail_type: self.detail_type.to_owned(),
            source: self.source.into_owned(),
            account: self.account.to_owned(),
            region: self.region.to_owned(),
            time: self.time,
            event_id: self.event_id.map(str::to_owned),
            event_name: self.event_name.map(str::to_owned),
            event_source: self.event_source.map(str::to_owned),
        };
        Event {
            json,
            detail: (start, end),
            meta,
            provenance,
            known: self.known,
        }
    }
}

/// The length of a hyphenated UUID, as [`event_uuid`] writes it.
const UUID_LEN: usize = 36;

/// The bytes of [`Event::from_probe`]'s header that are not its values (the quotes of
/// `source`, `account`, `time` and `region` are counted by [`json_str_len`]).
const ENVELOPE_PUNCTUATION: usize = r#"{"version":"0","id":"","detail-type":"","source":,"account":,"time":,"region":,"resources":[],"detail":"#.len();

/// The length [`push_json_str`] writes for `s`, quotes included.
fn json_str_len(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum::<usize>()
}

/// Appends `s` as a JSON string literal.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push_str(s);
    } else {
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                }
                c => out.push(c),
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
