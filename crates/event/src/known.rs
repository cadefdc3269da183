//! Fields the decoder learned with certainty while parsing a record's header.
//!
//! The one parse of each record already reads `eventName`, `eventSource`, `errorCode` and
//! `userIdentity.type`. Handing those to the matcher as certain facts lets it rule out the
//! many events no rule wants without scanning their bytes again. "Certain" is strict: a
//! value is given only when it is the field's one string value at that path in the
//! envelope, and absence only when no value can be there; anything else is unknown.

/// The envelope paths [`crate::Event::known_fields`] reports on, in its order.
pub const KNOWN_FIELDS: [&str; 9] = [
    "source",
    "detail-type",
    "account",
    "region",
    "detail.eventSource",
    "detail.eventName",
    "detail.eventType",
    "detail.errorCode",
    "detail.userIdentity.type",
];

pub use trailwatch_pattern::Known;

/// Where a known field's value is kept, without copying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Seen {
    #[default]
    Unknown,
    Absent,
    /// A byte range of the event's JSON text holding the value verbatim (no escapes).
    Json(u32, u32),
    /// The envelope field of the same name in [`crate::EventMeta`].
    Meta,
}

/// The fields of [`KNOWN_FIELDS`] in order.
pub(crate) type SeenFields = [Seen; KNOWN_FIELDS.len()];

/// Indexes into [`KNOWN_FIELDS`].
pub(crate) const SOURCE: usize = 0;
pub(crate) const DETAIL_TYPE: usize = 1;
pub(crate) const ACCOUNT: usize = 2;
pub(crate) const REGION: usize = 3;
pub(crate) const EVENT_SOURCE: usize = 4;
pub(crate) const EVENT_NAME: usize = 5;
pub(crate) const EVENT_TYPE: usize = 6;
pub(crate) const ERROR_CODE: usize = 7;
pub(crate) const USER_IDENTITY_TYPE: usize = 8;

/// The envelope fields every event of this crate carries as strings.
pub(crate) const ENVELOPE_FROM_META: SeenFields = {
    let mut seen = [Seen::Unknown; KNOWN_FIELDS.len()];
    seen[SOURCE] = Seen::Meta;
    seen[DETAIL_TYPE] = Seen::Meta;
    seen[ACCOUNT] = Seen::Meta;
    seen[REGION] = Seen::Meta;
    seen
};

/// The envelope fields an event keeps as strings ([`Seen::Meta`]).
pub(crate) struct MetaStrings<'a> {
    pub source: &'a str,
    pub detail_type: &'a str,
    pub account: &'a str,
    pub region: &'a str,
}

/// `seen` as [`Known`] values. `text` is the envelope text from byte `text_start` on: the
/// whole envelope of a built event (0), or the record of one not yet built (where `detail`
/// will start). One reading for both, so a preview tells what its event will.
pub(crate) fn resolve<'a>(
    seen: &SeenFields,
    text: &'a str,
    text_start: usize,
    meta: &MetaStrings<'a>,
) -> [Known<'a>; KNOWN_FIELDS.len()] {
    std::array::from_fn(|i| match seen[i] {
        Seen::Unknown => Known::Unknown,
        Seen::Absent => Known::Absent,
        Seen::Json(start, end) => {
            let from = (start as usize).checked_sub(text_start);
            let to = (end as usize).checked_sub(text_start);
            match (from, to) {
                (Some(from), Some(to)) => text.get(from..to).map_or(Known::Unknown, Known::Str),
                _ => Known::Unknown,
            }
        }
        Seen::Meta => Known::Str(match i {
            SOURCE => meta.source,
            DETAIL_TYPE => meta.detail_type,
            ACCOUNT => meta.account,
            REGION => meta.region,
            _ => return Known::Unknown,
        }),
    })
}

/// Where `value`, borrowed from `record`, sits in the envelope text whose `detail` starts at
/// `detail_start`; unknown if it is not a verbatim slice of the record (it had escapes).
pub(crate) fn seen_in_record(record: &str, value: &str, detail_start: usize) -> Seen {
    let base = record.as_ptr() as usize;
    let at = value.as_ptr() as usize;
    let Some(offset) = at.checked_sub(base) else {
        return Seen::Unknown;
    };
    // Inside the record means borrowed from it, so those bytes are the value itself.
    if offset + value.len() > record.len() {
        return Seen::Unknown;
    }
    let start = detail_start + offset;
    match (u32::try_from(start), u32::try_from(start + value.len())) {
        (Ok(s), Ok(e)) => Seen::Json(s, e),
        _ => Seen::Unknown,
    }
}

/// Whether a record could reach `detail.userIdentity.type` other than through its
/// `userIdentity` member: a top-level key such as `"userIdentity.type"` (paths are
/// dot-joined), possibly spelled with `\u` escapes. Conservative: any `\u` escape or any
/// `"userIdentity.` in the text counts.
pub(crate) fn may_alias_user_identity_type(record: &str) -> bool {
    let bytes = record.as_bytes();
    memchr::memmem::find(bytes, b"\\u").is_some()
        || memchr::memmem::find(bytes, b"\"userIdentity.").is_some()
}

#[cfg(test)]
mod tests {
    use super::Known::{Absent, Str, Unknown};
    use super::{KNOWN_FIELDS, Known};
    use crate::{Event, Provenance};

    fn known(record: &str) -> [Known<'static>; KNOWN_FIELDS.len()] {
        let event = Event::from_record(record, Provenance::new("test".into()))
            .unwrap_or_else(|e| panic!("{record}: {e}"));
        // Leak for 'static: a handful of tiny test events.
        let event: &'static Event = Box::leak(Box::new(event));
        event.known_fields()
    }

    const BASE: &str = r#""eventVersion":"1.08","eventTime":"2024-01-02T03:04:05Z","awsRegion":"eu-west-1","recipientAccountId":"111122223333","eventID":"e1","eventType":"AwsApiCall""#;

    /// An S3 GetObject record with `members` (JSON object members) added.
    fn get_object_with(members: &str) -> [Known<'static>; KNOWN_FIELDS.len()] {
        known(&format!(
            r#"{{{BASE},"eventSource":"s3.amazonaws.com","eventName":"GetObject",{members}}}"#
        ))
    }

    #[test]
    fn a_plain_record_reports_every_field() {
        let k = known(&format!(
            r#"{{{BASE},"eventSource":"iam.amazonaws.com","eventName":"CreateUser","userIdentity":{{"type":"IAMUser","accountId":"111122223333"}}}}"#
        ));
        assert_eq!(
            k,
            [
                Str("aws.iam"),
                Str("AWS API Call via CloudTrail"),
                Str("111122223333"),
                Str("eu-west-1"),
                Str("iam.amazonaws.com"),
                Str("CreateUser"),
                Str("AwsApiCall"),
                Absent,
                Str("IAMUser"),
            ]
        );
    }

    #[test]
    fn error_code_is_known_only_as_a_string_or_when_absent() {
        let with = |v: &str| get_object_with(&format!(r#""errorCode":{v}"#))[super::ERROR_CODE];
        assert_eq!(with(r#""AccessDenied""#), Str("AccessDenied"));
        assert_eq!(with("null"), Unknown);
        assert_eq!(with("42"), Unknown);
        assert_eq!(with(r#"["AccessDenied"]"#), Unknown);
        // Escapes: the matcher would unescape; the screen does not guess.
        assert_eq!(with(r#""Access\u0044enied""#), Unknown);
    }

    #[test]
    fn user_identity_type_is_unknown_wherever_it_could_be_another_value() {
        let with = |ui: &str| {
            get_object_with(&format!(r#""userIdentity":{ui}"#))[super::USER_IDENTITY_TYPE]
        };
        assert_eq!(with(r#"{"type":"Root"}"#), Str("Root"));
        assert_eq!(with(r#"{"accountId":"1"}"#), Absent);
        assert_eq!(with(r#""text""#), Absent);
        assert_eq!(with("null"), Absent);
        // An array of objects: every element's `type` is at that path.
        assert_eq!(with(r#"[{"type":"Root"},{"type":"IAMUser"}]"#), Unknown);
        // A repeated member: both values are at that path.
        assert_eq!(with(r#"{"type":"Root","type":"IAMUser"}"#), Unknown);
        // A dotted key reaches the same path from outside `userIdentity`.
        let aliased =
            get_object_with(r#""userIdentity":{"type":"Root"},"userIdentity.type":"IAMUser""#);
        assert_eq!(aliased[super::USER_IDENTITY_TYPE], Unknown);
    }

    #[test]
    fn escaped_header_values_are_unknown() {
        let k = known(&format!(
            r#"{{{BASE},"eventSource":"s3.amazonaws.com","eventName":"Get\u004fbject"}}"#
        ));
        assert_eq!(k[super::EVENT_NAME], Unknown);
        assert_eq!(k[super::EVENT_SOURCE], Str("s3.amazonaws.com"));
    }

    #[test]
    fn a_passed_through_envelope_reports_only_its_own_fields() {
        let event = Event::from_envelope(
            r#"{"version":"0","id":"x","detail-type":"AWS Health Event","source":"aws.health","account":"1","time":"2024-01-02T03:04:05Z","region":null,"detail":{"eventName":"X"}}"#,
            Provenance::new("test".into()),
        )
        .expect("valid envelope");
        let k = event.known_fields();
        assert_eq!(
            &k[..4],
            &[
                Str("aws.health"),
                Str("AWS Health Event"),
                Str("1"),
                Unknown
            ]
        );
        assert!(k[4..].iter().all(|k| *k == Unknown), "{k:?}");
    }
}
