//! Mapping tests: each rule of the record → envelope table.

use super::*;

fn check_detail_type(event_type: Option<&str>, expect: &str) {
    assert_eq!(detail_type_for(event_type), expect, "{event_type:?}");
}

#[test]
fn detail_types_follow_event_type() {
    check_detail_type(Some("AwsApiCall"), "AWS API Call via CloudTrail");
    check_detail_type(
        Some("AwsConsoleSignIn"),
        "AWS Console Sign In via CloudTrail",
    );
    check_detail_type(Some("AwsServiceEvent"), "AWS Service Event via CloudTrail");
    check_detail_type(
        Some("AwsConsoleAction"),
        "AWS Console Action via CloudTrail",
    );
    check_detail_type(Some("AwsCloudTrailInsight"), "AWS Insight via CloudTrail");
    check_detail_type(Some("AwsVpceEvent"), "AWS API Call via CloudTrail");
    check_detail_type(None, "AWS API Call via CloudTrail");
}

#[test]
fn sources_follow_event_source() {
    for (es, expect) in [
        ("ec2.amazonaws.com", "aws.ec2"),
        ("signin.amazonaws.com", "aws.signin"),
        ("cloudtrail-data.amazonaws.com", "aws.cloudtrail-data"),
        ("monitoring.amazonaws.com", "aws.monitoring"),
        (
            "elasticloadbalancing.amazonaws.com",
            "aws.elasticloadbalancing",
        ),
        ("odd.example", "aws.odd"),
    ] {
        assert_eq!(source_for(es), expect, "{es}");
    }
}

#[test]
fn times_print_as_eventbridge_does() {
    for (input, expect) in [
        ("2026-01-01T00:00:00Z", Some("2026-01-01T00:00:00Z")),
        ("2026-01-01T00:00:00.123Z", Some("2026-01-01T00:00:00Z")),
        ("2026-01-01T02:00:00+02:00", Some("2026-01-01T00:00:00Z")),
        ("2026-01-01T00:00:00", Some("2026-01-01T00:00:00Z")),
        ("2026-13-01T00:00:00Z", None),
        ("2026-01-01 00:00:00", None),
        ("", None),
    ] {
        let got = normalise_time(input).map(|(_, s)| s.into_owned());
        assert_eq!(got.as_deref(), expect, "{input}");
    }
}

#[test]
fn ids_are_deterministic_uuids() {
    let a = event_uuid(Some("3fcfb182-98f8-4744-bd45-10a395ab61cb"), "{}");
    assert_eq!(
        a,
        event_uuid(Some("3fcfb182-98f8-4744-bd45-10a395ab61cb"), "{\"x\":1}")
    );
    assert_ne!(a, event_uuid(Some("another"), "{}"));
    assert_eq!(a.len(), 36);
    assert_eq!(&a[14..15], "5", "version 5");
    // Without eventID the record text names the event.
    assert_eq!(event_uuid(None, "{\"a\":1}"), event_uuid(None, "{\"a\":1}"));
    assert_ne!(event_uuid(None, "{\"a\":1}"), event_uuid(None, "{\"a\":2}"));
}

/// The SHA-instruction hasher makes the very ids uuid's own v5 makes (ids are stable
/// across versions: dedup state keys on them).
#[test]
fn ids_are_the_uuid_crates_v5() {
    let ns = Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:trailwatch:cloudtrail:eventID");
    assert_eq!(*EVENT_NAMESPACE, ns);
    let long = "x".repeat(1000);
    for name in [
        "",
        "3fcfb182-98f8-4744-bd45-10a395ab61cb",
        "é\u{1f600}",
        long.as_str(),
    ] {
        let want = Uuid::new_v5(&ns, name.as_bytes()).hyphenated().to_string();
        assert_eq!(event_uuid(Some(name), "{}"), want, "{name:?}");
    }
    let kind = Uuid::new_v5(&ns, b"config");
    assert_eq!(
        derived_uuid("config", "rule/r1"),
        Uuid::new_v5(&kind, b"rule/r1").hyphenated().to_string()
    );
}

#[test]
fn strings_are_escaped_in_the_envelope() {
    let mut s = String::new();
    push_json_str(&mut s, "a\"b\\c\nd\u{1}");
    assert_eq!(s, r#""a\"b\\c\nd\u0001""#);
    let rec = r#"{"eventTime":"2026-01-01T00:00:00Z","eventSource":"x.amazonaws.com","eventName":"N","awsRegion":"r\"1","recipientAccountId":"a\\b"}"#;
    let e = Event::from_record(rec, Provenance::new("t".into())).unwrap();
    let v = e.to_value();
    assert_eq!(v["region"], "r\"1");
    assert_eq!(v["account"], "a\\b");
    assert_eq!(e.detail(), rec);
}

#[test]
fn record_errors() {
    let p = || Provenance::new("t".into());
    assert_eq!(
        Event::from_record("[1]", p()),
        Err(RecordError::NotAnObject)
    );
    assert_eq!(
        Event::from_record(
            r#"{"eventName":"X","eventTime":"2026-01-01T00:00:00Z","awsRegion":"r"}"#,
            p()
        ),
        Err(RecordError::MissingField("eventSource"))
    );
    assert_eq!(
        Event::from_record(
            r#"{"eventName":"X","eventTime":"2026-01-01T00:00:00Z","eventSource":"s.amazonaws.com","awsRegion":"r"}"#,
            p()
        ),
        Err(RecordError::MissingField("recipientAccountId"))
    );
    assert!(matches!(
        Event::from_record(r#"{"eventName":7}"#, p()),
        Err(RecordError::InvalidField { .. })
    ));
    assert!(matches!(
        Event::from_record("{\"eventName\":\n\"X\" x}", p()),
        Err(RecordError::MalformedJson { line: 2, .. })
    ));
    assert_eq!(
        Event::from_envelope(r#"{"source":"aws.x","detail":{}}"#, p()),
        Err(RecordError::MissingField("detail-type"))
    );
}

/// The envelope is allocated once at its final size: a guess that fell short made every
/// record's text be copied again as the header grew past it.
#[test]
fn envelopes_are_sized_exactly() {
    for rec in [
        r#"{"eventTime":"2026-01-01T00:00:00Z","eventSource":"elasticloadbalancing.amazonaws.com","eventName":"N","awsRegion":"ap-southeast-2","recipientAccountId":"123456789012","eventID":"3fcfb182-98f8-4744-bd45-10a395ab61cb"}"#,
        r#"{"eventTime":"2026-01-01T00:00:00.5+02:00","eventSource":"x.amazonaws.com","eventName":"N","awsRegion":"r\"1\n\u0001é","userIdentity":{"accountId":"a\\b"}}"#,
        r#"{"eventType":"AwsCloudTrailInsight","eventTime":"2026-01-01T00:00:00Z","awsRegion":"us-east-1","recipientAccountId":"1"}"#,
    ] {
        let e = Event::from_record(rec, Provenance::new("t".into())).unwrap();
        assert_eq!(e.json().len(), e.json.capacity(), "{rec}");
        serde_json::from_str::<serde_json::Value>(e.json()).unwrap();
    }
}
