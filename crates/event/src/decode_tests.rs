//! Decoder tests: bad input of every kind, and the real samples in `../shared`.

use super::*;
use crate::test_support::{
    assert_reconciles, check, check_with, fixture, gz, render, shared_data, shared_files,
};

const R1: &str = r#"{"eventVersion":"1.08","eventTime":"2026-01-01T00:00:01Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","eventID":"e-1","eventType":"AwsApiCall","recipientAccountId":"111122223333","requestParameters":{"count":1.50e3}}"#;
const R2: &str = r#"{"eventVersion":"1.08","eventTime":"2026-01-01T00:00:02.123Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1","eventID":"e-2","eventType":"AwsApiCall","userIdentity":{"accountId":"444455556666"}}"#;
const R3: &str = r#"{"eventVersion":"1.05","eventTime":"2026-01-01T00:00:03Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-2","eventID":"e-3","eventType":"AwsConsoleSignIn","recipientAccountId":"111122223333"}"#;

fn delivery(records: &[&str]) -> String {
    format!("{{\"Records\":[{}]}}", records.join(","))
}

#[test]
fn delivery_file_plain_and_gzip_give_the_same_events() {
    let file = delivery(&[R1, R2, R3]);
    let expect = "
event t#record=0 (byte 12) | AWS API Call via CloudTrail | aws.ec2 | 111122223333 us-east-1 2026-01-01T00:00:01Z | RunInstances
event t#record=1 (byte 270) | AWS API Call via CloudTrail | aws.iam | 444455556666 us-east-1 2026-01-01T00:00:02Z | CreateUser
event t#record=2 (byte 501) | AWS Console Sign In via CloudTrail | aws.signin | 111122223333 us-east-2 2026-01-01T00:00:03Z | ConsoleLogin";
    let (plain, s1) = check(file.as_bytes(), expect);
    let (zipped, s2) = check(&gz(file.as_bytes()), expect);
    assert_eq!(plain, zipped);
    assert_eq!(s1.bytes_decompressed, s2.bytes_decompressed);
    assert!(s2.bytes_in < s2.bytes_decompressed);
    // detail is the record's own bytes: numbers stay as written.
    let Item::Event(e) = &plain[0] else { panic!() };
    assert_eq!(e.detail(), R1);
    assert!(e.json().contains(r#""count":1.50e3"#));
    assert!(e.json().starts_with(r#"{"version":"0","id":""#));
    assert!(e.json().contains(r#""resources":[],"detail":{"#));
}

#[test]
fn array_single_record_and_json_lines() {
    check(
        format!("[{R1},\n {R3}]").as_bytes(),
        "
event t#record=0 (byte 1) | AWS API Call via CloudTrail | aws.ec2 | 111122223333 us-east-1 2026-01-01T00:00:01Z | RunInstances
event t#record=1 (byte 261) | AWS Console Sign In via CloudTrail | aws.signin | 111122223333 us-east-2 2026-01-01T00:00:03Z | ConsoleLogin",
    );
    check(
        format!("\n  {R3}\n").as_bytes(),
        "event t#record=0 (byte 3) | AWS Console Sign In via CloudTrail | aws.signin | 111122223333 us-east-2 2026-01-01T00:00:03Z | ConsoleLogin",
    );
    check(
        format!("{R1}\n{R2}\nthis is not json {{{{\n{R3}\n").as_bytes(),
        "
event t#record=0 (byte 0) | AWS API Call via CloudTrail | aws.ec2 | 111122223333 us-east-1 2026-01-01T00:00:01Z | RunInstances
event t#record=1 (byte 258) | AWS API Call via CloudTrail | aws.iam | 444455556666 us-east-1 2026-01-01T00:00:02Z | CreateUser
skip t#record=2 (byte 489): malformed JSON at line 3, column 1: expected '{' or '[', found 't'
event t#record=3 (byte 509) | AWS Console Sign In via CloudTrail | aws.signin | 111122223333 us-east-2 2026-01-01T00:00:03Z | ConsoleLogin",
    );
}

#[test]
fn same_event_gets_the_same_envelope_however_it_arrives() {
    let (a, _) = decode_slice(delivery(&[R1]).as_bytes(), "a", &Limits::default());
    let (b, _) = decode_slice(R1.as_bytes(), "b", &Limits::default());
    let env = format!(
        r#"{{"version":"0","id":"x","detail-type":"AWS API Call via CloudTrail","source":"aws.ec2","account":"111122223333","time":"2026-01-01T00:00:01Z","region":"us-east-1","resources":[],"detail":{R1}}}"#
    );
    let (c, _) = decode_slice(env.as_bytes(), "c", &Limits::default());
    let (Item::Event(a), Item::Event(b), Item::Event(c)) = (&a[0], &b[0], &c[0]) else {
        panic!("events expected")
    };
    assert_eq!(a.json(), b.json());
    assert_eq!(a.meta(), b.meta());
    assert_eq!(
        c.json(),
        env,
        "an incoming envelope passes through unchanged"
    );
    let mut cm = c.meta().clone();
    cm.id = a.meta().id.clone();
    assert_eq!(&cm, a.meta());
}

#[test]
fn truncated_gzip_keeps_the_records_before_the_cut() {
    let records: Vec<String> = (0..200)
        .map(|i| {
            R1.replace("e-1", &format!("e-{i}"))
                .replace("\"count\":1.50e3", &format!("\"n\":\"{}\"", "x".repeat(i)))
        })
        .collect();
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let zipped = gz(delivery(&refs).as_bytes());
    let cut = &zipped[..zipped.len() * 2 / 3];
    let (items, s) = decode_slice(cut, "t", &Limits::default());
    assert_reconciles(&items, &s);
    assert!(s.events > 50 && s.events < 200, "{s:?}");
    assert_eq!(s.skipped_inputs, 1);
    let Some(Item::Skipped(last)) = items.last() else {
        panic!()
    };
    assert_eq!(last.reason, SkipReason::Truncated, "{last}");
    assert_eq!(last.records_lost, None);
    assert!(last.provenance.byte_offset.is_some());
    assert!(last.to_string().starts_with("t (byte "), "{last}");
}

#[test]
fn gzip_bomb_is_capped() {
    let mut body = String::from("{\"Records\":[");
    body.push_str(R1);
    body.push(',');
    body.push_str(&" ".repeat(20 << 20));
    body.push_str(R2);
    body.push_str("]}");
    let bomb = gz(body.as_bytes());
    let limits = Limits {
        max_decompressed_bytes: 1 << 20,
        ..Limits::default()
    };
    check_with(
        &bomb,
        &limits,
        "
event t#record=0 (byte 12) | AWS API Call via CloudTrail | aws.ec2 | 111122223333 us-east-1 2026-01-01T00:00:01Z | RunInstances
skip t (byte 1048576): decompressed size exceeds the cap (possible gzip bomb); remaining records unknown",
    );
}

#[test]
fn corrupt_gzip_is_reported() {
    let mut z = gz(delivery(&[R1, R2]).as_bytes());
    let n = z.len();
    for b in &mut z[20..n - 10] {
        *b ^= 0x5a;
    }
    let (items, s) = decode_slice(&z, "t", &Limits::default());
    assert_reconciles(&items, &s);
    assert_eq!(s.skipped_inputs, 1, "{}", render(&items));
}

#[test]
fn bad_input_of_every_kind() {
    // Malformed JSON in a single document.
    check(
        b"{\"eventName\": }",
        "skip t#record=0 (byte 0): malformed JSON at line 1, column 15: expected value",
    );
    // Records not an array.
    check(
        b"{\"Records\": {\"a\": 1}}",
        "skip t (byte 12): `Records` is not an array; remaining records unknown",
    );
    // Records missing a required field are skipped, the rest kept.
    let no_name = R2.replace("\"eventName\":\"CreateUser\",", "");
    let no_time = R3.replace("\"eventTime\":\"2026-01-01T00:00:03Z\",", "");
    check(
        delivery(&[R1, &no_name, &no_time]).as_bytes(),
        "
event t#record=0 (byte 12) | AWS API Call via CloudTrail | aws.ec2 | 111122223333 us-east-1 2026-01-01T00:00:01Z | RunInstances
skip t#record=1 (byte 270): record has no `eventName`
skip t#record=2 (byte 476): record has no `eventTime`",
    );
    // A bad timestamp.
    check(
        R1.replace("2026-01-01T00:00:01Z", "yesterday").as_bytes(),
        r#"skip t#record=0 (byte 0): invalid `eventTime`: not an ISO 8601 UTC time: "yesterday""#,
    );
    // Empty and whitespace-only input.
    check(
        b"",
        "skip t (byte 0): input is empty; remaining records unknown",
    );
    check(
        &gz(b" \n\t "),
        "skip t (byte 4): input is empty; remaining records unknown",
    );
    // Truncated plain JSON.
    check(
        delivery(&[R1, R2]).as_bytes()[..300].as_ref(),
        "
event t#record=0 (byte 12) | AWS API Call via CloudTrail | aws.ec2 | 111122223333 us-east-1 2026-01-01T00:00:01Z | RunInstances
skip t (byte 300): input is cut short (truncated); remaining records unknown",
    );
    // Not CloudTrail at all.
    check(
        b"{\"hello\": \"world\"}",
        "skip t#record=0 (byte 0): not a CloudTrail record or known wrapper",
    );
    check(
        b"[1, \"x\"]",
        "
skip t#record=0 (byte 1): not a CloudTrail record or known wrapper
skip t#record=1 (byte 4): not a CloudTrail record or known wrapper",
    );
}

#[test]
fn deeply_nested_record_is_skipped_and_the_next_kept() {
    let deep = format!(
        "{{\"eventName\":\"X\",\"a\":{}1{}}}",
        "[".repeat(300),
        "]".repeat(300)
    );
    check(
        delivery(&[&deep, R1]).as_bytes(),
        "
skip t#record=0 (byte 12): JSON nested too deeply
event t#record=1 (byte 636) | AWS API Call via CloudTrail | aws.ec2 | 111122223333 us-east-1 2026-01-01T00:00:01Z | RunInstances",
    );
    // The cap holds for records inside a message body too.
    let sqs = serde_json::json!({"Records": [{
        "messageId": "m-1", "eventSource": "aws:sqs", "body": deep,
    }]});
    check(
        sqs.to_string().as_bytes(),
        "skip t#record=0 (byte 12, message m-1): JSON nested too deeply",
    );
}

#[test]
fn oversized_record_is_skipped_and_the_next_kept() {
    let big = R2.replace("CreateUser", &"A".repeat(5000));
    let limits = Limits {
        max_record_bytes: 1000,
        ..Limits::default()
    };
    check_with(
        delivery(&[&big, R1]).as_bytes(),
        &limits,
        "
skip t#record=0 (byte 12): record larger than the size cap
event t#record=1 (byte 5233) | AWS API Call via CloudTrail | aws.ec2 | 111122223333 us-east-1 2026-01-01T00:00:01Z | RunInstances",
    );
}

#[test]
fn non_utf8_byte_is_skipped_with_its_offset() {
    let mut file = delivery(&[R2, R1]).into_bytes();
    let at = file.windows(10).position(|w| w == b"CreateUser").unwrap();
    file[at + 2] = 0xff;
    check(
        &file,
        "
skip t#record=0 (byte 123): not valid UTF-8
event t#record=1 (byte 243) | AWS API Call via CloudTrail | aws.ec2 | 111122223333 us-east-1 2026-01-01T00:00:01Z | RunInstances",
    );
}

#[test]
fn missing_comma_between_records_is_reported_and_read_past() {
    check(
        format!("{{\"Records\":[{R1}\n{R3}]}}").as_bytes(),
        "
event t#record=0 (byte 12) | AWS API Call via CloudTrail | aws.ec2 | 111122223333 us-east-1 2026-01-01T00:00:01Z | RunInstances
skip t (byte 270): malformed JSON at line 2, column 1: expected ',' or ']' before '{'
event t#record=1 (byte 270) | AWS Console Sign In via CloudTrail | aws.signin | 111122223333 us-east-2 2026-01-01T00:00:03Z | ConsoleLogin",
    );
}

#[test]
fn digest_file_is_set_aside() {
    let (items, _) = check(
        &gz(&fixture("cloudtrail-digest.json")),
        "digest t#record=0 (byte 0) | 2026-01-14T10:00:00Z .. 2026-01-14T11:00:00Z | 2 log files",
    );
    let Item::Digest(d) = &items[0] else { panic!() };
    assert_eq!(d.fields.log_files[0].hash_algorithm, "SHA-256");
    assert_eq!(
        d.fields.previous_digest_hash_algorithm.as_deref(),
        Some("SHA-256")
    );
    assert_eq!(
        d.fields.digest_signature_algorithm.as_deref(),
        Some("SHA256withRSA")
    );
}

#[test]
fn insight_record_maps_to_the_insight_detail_type() {
    check(
        &fixture("insight-record.json"),
        "event t#record=0 (byte 0) | AWS Insight via CloudTrail | aws.cloudtrail | 111122223333 us-east-1 2026-01-14T12:01:00Z | -",
    );
}

#[test]
fn config_and_health_events() {
    let (items, _) = check(
        &fixture("eventbridge-config-compliance-change.json"),
        "event t#record=0 (byte 0) | Config Rules Compliance Change | aws.config | 111122223333 eu-west-1 2026-01-14T09:12:44Z | -",
    );
    let Item::Event(from_eb) = &items[0] else {
        panic!()
    };
    check(
        &fixture("eventbridge-health-risk-credentials-exposed.json"),
        "event t#record=0 (byte 0) | AWS Health Event | aws.health | 111122223333 us-east-1 2026-01-14T11:03:27Z | -",
    );
    // Config's SNS notification becomes the same EventBridge shape, same detail.
    let (items, _) = check(
        &fixture("sns-config-compliance-change.json"),
        "event t#record=0 (byte 0, message 5d7c0b2e-91aa-5f3e-b0c4-7e21f9d8a613) | Config Rules Compliance Change | aws.config | 111122223333 eu-west-1 2026-01-14T09:12:44Z | -",
    );
    let Item::Event(from_sns) = &items[0] else {
        panic!()
    };
    let detail = |e: &Event| e.to_value()["detail"].clone();
    assert_eq!(detail(from_sns), detail(from_eb));
    assert_eq!(from_sns.to_value()["resources"], serde_json::json!([]));
    // The same message again gets the same id.
    let (again, _) = decode_slice(
        &fixture("sns-config-compliance-change.json"),
        "u",
        &Limits::default(),
    );
    let Item::Event(again) = &again[0] else {
        panic!()
    };
    assert_eq!(again.meta().id, from_sns.meta().id);
    // Other Config message types are named and skipped.
    check(
        br#"{"messageType":"ConfigurationItemChangeNotification","awsAccountId":"1","awsRegion":"r"}"#,
        "skip t#record=0 (byte 0): ignored notification: AWS Config ConfigurationItemChangeNotification",
    );
}

#[test]
fn message_id_is_stamped_by_decode_message() {
    let mut items = Vec::new();
    let s = decode_message(
        R1.as_bytes(),
        Arc::from("queue-a"),
        Some("m-42"),
        &Limits::default(),
        &mut |i| items.push(i),
    );
    assert_eq!(s.events, 1);
    assert_eq!(
        render(&items).trim(),
        "event queue-a#record=0 (byte 0, message m-42) | AWS API Call via CloudTrail | aws.ec2 | 111122223333 us-east-1 2026-01-01T00:00:01Z | RunInstances"
    );
}

#[test]
fn sns_subscription_confirmation_is_named() {
    check(
        br#"{"Type":"SubscriptionConfirmation","MessageId":"m1","Message":"You have chosen to subscribe","Token":"x"}"#,
        "skip t#record=0 (byte 0): ignored notification: SNS SubscriptionConfirmation",
    );
}

#[test]
fn s3_notification_non_create_events_are_skipped_with_reason() {
    check(
        br#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-01-01T00:00:00.000Z","eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}},
                       {"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-01-01T00:00:00.000Z","eventName":"ObjectCreated:CompleteMultipartUpload","s3":{"bucket":{"name":"b"},"object":{"key":"AWSLogs%2F1%2Fa+b.json.gz","size":10}}}]}"#,
        "
skip t#record=0 (byte 12): ignored notification: S3 ObjectRemoved:Delete notification
object t#record=1 (byte 230) | s3://b/AWSLogs/1/a b.json.gz | size=Some(10)",
    );
}

// ---- real samples from ../shared ----

fn decode_file(path: &std::path::Path) -> (Vec<Item>, DecodeSummary) {
    let bytes = std::fs::read(path).expect("read sample");
    decode_slice(&bytes, &path.display().to_string(), &Limits::default())
}

#[test]
fn invictus_delivery_files_all_decode_and_details_are_verbatim() {
    let Some(files) = shared_files("invictus-ir_aws_dataset/CloudTrail", "json") else {
        return;
    };
    let mut total = DecodeSummary::default();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let (items, s) = decode_slice(&bytes, "f", &Limits::default());
        assert_reconciles(&items, &s);
        for item in &items {
            let Item::Event(e) = item else {
                panic!("{f:?}: {}", render(&items))
            };
            let off = e.provenance().byte_offset.unwrap() as usize;
            assert_eq!(&bytes[off..off + e.detail().len()], e.detail().as_bytes());
        }
        // The same file gzip-compressed gives the same items.
        let (zitems, _) = decode_slice(&gz(&bytes), "f", &Limits::default());
        assert_eq!(items, zitems);
        total.add(&s);
    }
    assert_eq!(files.len(), 55);
    assert_eq!(total.events, 2900);
    assert_eq!(total.records_seen(), 2900);
    assert_eq!(total.skipped_inputs, 0);
}

#[test]
fn stratus_arrays_decode() {
    let Some(files) = shared_files("stratus-red-team_detonation-logs", "json") else {
        return;
    };
    let mut total = DecodeSummary::default();
    for f in &files {
        let (items, s) = decode_file(f);
        assert_reconciles(&items, &s);
        total.add(&s);
    }
    assert_eq!(total.events, 310);
    assert_eq!(total.records_seen(), 310);
}

#[test]
fn cloud_custodian_envelopes_pass_through_and_records_map_like_eventbridge() {
    let Some(files) = shared_files("cloud-custodian_tests-data-cwe", "json") else {
        return;
    };
    let (mut envelopes, mut records) = (0, 0);
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let (items, s) = decode_file(f);
        assert_reconciles(&items, &s);
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        if doc.get("detail").is_none() {
            records += 1;
            continue;
        }
        envelopes += 1;
        let Item::Event(e) = &items[0] else {
            panic!("{f:?}")
        };
        assert_eq!(e.json(), text.trim(), "passed through unchanged");
        // Our mapping of the bare record gives what EventBridge gave.
        let detail = &e.json()[e.detail().as_ptr() as usize - e.json().as_ptr() as usize..]
            [..e.detail().len()];
        let ours = Event::from_record(detail, Provenance::new(Arc::from("x"))).unwrap();
        let (m, theirs) = (ours.meta(), e.meta());
        assert_eq!(
            (&m.detail_type, &m.source, &m.account, &m.region, m.time),
            (
                &theirs.detail_type,
                &theirs.source,
                &theirs.account,
                &theirs.region,
                theirs.time
            ),
            "{f:?}"
        );
    }
    assert_eq!((envelopes, records), (10, 14));
}

#[test]
fn cloud_custodian_record_without_event_time_is_skipped() {
    let Some(dir) = shared_data("cloud-custodian_tests-data-cwe") else {
        return;
    };
    let (items, _) =
        decode_file(&dir.join("event-cloud-trail-bedrock-create-customization-jobs.json"));
    let Item::Skipped(s) = &items[0] else {
        panic!()
    };
    assert_eq!(s.reason, SkipReason::MissingField("eventTime"));
}

#[test]
fn awsdocs_json_lines_map_event_types() {
    let Some(f) = shared_data("awsdocs_aws-cloudtrail-user-guide/doc_examples.jsonl") else {
        return;
    };
    let (items, s) = decode_file(&f);
    assert_reconciles(&items, &s);
    assert_eq!(s.events, 21, "{}", render(&items));
    for item in &items {
        let Item::Event(e) = item else { panic!() };
        let et = e.to_value()["detail"]["eventType"]
            .as_str()
            .map(str::to_owned);
        assert_eq!(
            e.meta().detail_type,
            crate::envelope::detail_type_for(et.as_deref())
        );
    }
    assert!(items.iter().any(|i| matches!(i, Item::Event(e) if e.meta().detail_type == "AWS Console Sign In via CloudTrail")));
}

#[test]
fn otrf_logstash_lines_use_at_timestamp() {
    let Some(f) =
        shared_data("OTRF_Security-Datasets/ec2_proxy_s3_exfiltration_2020-09-14011940.json")
    else {
        return;
    };
    let (items, s) = decode_file(&f);
    assert_reconciles(&items, &s);
    assert_eq!(s.events, 103);
    let Item::Event(e) = &items[0] else { panic!() };
    assert_eq!(e.to_value()["time"], "2020-09-14T00:44:23Z");
}

#[test]
fn zmallen_enriched_records_and_the_malformed_file() {
    let Some(files) = shared_files("zmallen_cloudtrail2sightings", "json") else {
        return;
    };
    let mut total = DecodeSummary::default();
    let mut out = String::new();
    for f in &files {
        let (items, s) = decode_file(f);
        assert_reconciles(&items, &s);
        total.add(&s);
        out.push_str(&render(&items));
    }
    assert_eq!(total.events, 15, "{out}");
    assert_eq!(
        (total.repaired, total.records_lost(), total.skipped_inputs),
        (2, 0, 0),
        "{out}"
    );
    assert!(out.contains(
        "aws.execution.ec2-user-data.json (byte 3327): malformed JSON at line 112, column 1"
    ));
}

#[test]
fn boogy_notification_wrappers() {
    let Some(dir) = shared_data("boogy_cloudtrail-rs_envelope-fixtures") else {
        return;
    };
    let cases: &[(&str, &str)] = &[
        ("eventbridge-object-created.json", "object t#record=0 (byte 0) | s3://amzn-s3-demo-bucket1/example-key | size=Some(5)"),
        ("eventbridge-object-created-plus-key.json", "object t#record=0 (byte 0) | s3://ct-siem-sync/my+file.json.gz | size=Some(4096)"),
        ("eventbridge-object-created-unsupported-version.json", "skip t#record=0 (byte 0): ignored notification: S3 EventBridge event-version 2.0"),
        ("eventbridge-object-deleted.json", "skip t#record=0 (byte 0): ignored notification: S3 EventBridge \"Object Deleted\" event"),
        ("eventbridge-object-restore-completed.json", "skip t#record=0 (byte 0): ignored notification: S3 EventBridge \"Object Restore Completed\" event"),
        ("eventbridge-object-annotation-created.json", "skip t#record=0 (byte 0): ignored notification: S3 EventBridge \"Object Annotation Created\" event"),
        ("s3-event-object-created.json", "object t#record=0 (byte 21) | s3://lambda-artifacts-deafc19498e3f2df/b21b84d653bb07b05b1e6b33684dc11b | size=Some(1305107)"),
        ("s3-event-urlencoded-key.json", "object t#record=0 (byte 21) | s3://ct-siem-sync/my file=a.json.gz | size=Some(4096)"),
        ("s3-test-event.json", "skip t#record=0 (byte 0): S3 test event (sent when notifications are set up)"),
        ("sns-s3-event.json", "object t#record=0 (byte 21, message 95df01b4-ee98-5cb9-9903-4c221d41eb5e) | s3://lambda-artifacts-deafc19498e3f2df/b21b84d653bb07b05b1e6b33684dc11b | size=Some(1305107)"),
        ("sns-s3-test-event.json", "skip t#record=0 (byte 21, message 6f2b2c3b-9c1a-4b8e-9c2a-1e6a2c9b7f31): S3 test event (sent when notifications are set up)"),
        ("sqs-s3-event.json", "object t#record=0 (byte 21, message 059f36b4-87a3-44ab-83d2-661975830a7d) | s3://lambda-artifacts-deafc19498e3f2df/b21b84d653bb07b05b1e6b33684dc11b | size=Some(1305107)"),
        ("sqs-sns-event.json", "object t#record=0 (byte 21, message 2e1424d4-f796-459a-8184-9c92662be6da) | s3://lambda-artifacts-deafc19498e3f2df/b21b84d653bb07b05b1e6b33684dc11b | size=Some(1305107)"),
        ("sqs-batch-partial-garbage.json", "
object t#record=0 (byte 21, message 059f36b4-87a3-44ab-83d2-661975830a7d) | s3://lambda-artifacts-deafc19498e3f2df/b21b84d653bb07b05b1e6b33684dc11b | size=Some(1305107)
skip t#record=1 (byte 1552, message bad00000-0000-0000-0000-000000000002): malformed JSON at line 1, column 2: expected ident
object t#record=2 (byte 2162, message 2e1424d4-f796-459a-8184-9c92662be6da) | s3://ct-siem-sync/second-sibling-object.json.gz | size=Some(1305107)"),
    ];
    for (name, expect) in cases {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        check(&bytes, expect);
        // An SQS message body may be any of these, gzip or not.
        let mut items = Vec::new();
        decode_message(
            &gz(&bytes),
            Arc::from("q"),
            Some("outer"),
            &Limits::default(),
            &mut |i| items.push(i),
        );
        assert_eq!(items.len(), expect.trim().lines().count(), "{name}");
    }
}

proptest::proptest! {
    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
        let (items, s) = decode_slice(&bytes, "p", &Limits::default());
        proptest::prop_assert_eq!(items.len() as u64, s.items());
    }

    #[test]
    fn decode_never_panics_on_mangled_records(
        cut in 0usize..700,
        flip in 0usize..700,
        byte in proptest::num::u8::ANY,
        zip in proptest::bool::ANY,
    ) {
        let mut file = delivery(&[R1, R2, R3]).into_bytes();
        let n = file.len();
        file[flip % n] = byte;
        file.truncate(cut.max(1).min(n));
        let input = if zip { gz(&file) } else { file };
        let limits = Limits { max_record_bytes: 300, max_depth: 4, ..Limits::default() };
        let (items, s) = decode_slice(&input, "p", &limits);
        proptest::prop_assert_eq!(items.len() as u64, s.items());
    }
}

#[test]
fn message_body_decodes_like_a_file_whatever_its_buffer() {
    let records: Vec<String> = (0..300)
        .map(|i| R1.replace("e-1", &format!("e-{i}")))
        .collect();
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let body = delivery(&refs);
    for input in [body.clone().into_bytes(), gz(body.as_bytes())] {
        let (file_items, _) = decode_slice(&input, "t", &Limits::default());
        let mut msg_items = Vec::new();
        let s = decode_message(&input, Arc::from("t"), None, &Limits::default(), &mut |i| {
            msg_items.push(i)
        });
        assert_eq!(s.events, 300);
        assert_eq!(file_items, msg_items);
    }
}

/// Reads `data`, then fails.
struct FailingReader<'a> {
    data: &'a [u8],
}

impl Read for FailingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection reset",
            ));
        }
        let n = buf.len().min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn read_errors_are_reported_with_what_came_before() {
    let file = delivery(&[R1, R2]);
    for cut in [0, 1, 300, file.len()] {
        let mut items = Vec::new();
        let s = decode(
            FailingReader {
                data: &file.as_bytes()[..cut],
            },
            Arc::from("t"),
            &Limits::default(),
            &mut |i| items.push(i),
        );
        assert_reconciles(&items, &s);
        assert_eq!(s.skipped_inputs, 1, "{cut}: {}", render(&items));
        let Some(Item::Skipped(last)) = items.last() else {
            panic!()
        };
        assert_eq!(
            last.reason,
            SkipReason::Io("connection reset".into()),
            "{cut}"
        );
        assert_eq!(
            s.events,
            if cut >= 300 {
                1 + u64::from(cut == file.len())
            } else {
                0
            }
        );
    }
}

// ---- screening before the event is built ----

/// A preview, owned, in the form a built event reports the same fields.
fn owned_preview(p: &Preview<'_>) -> (String, String, String, Vec<String>) {
    let known = p.known.iter().map(|k| format!("{k:?}")).collect();
    (
        p.time.to_rfc3339(),
        p.account.into(),
        p.region.into(),
        known,
    )
}

fn owned_event_view(e: &Event) -> (String, String, String, Vec<String>) {
    let m = e.meta();
    let known = e.known_fields().iter().map(|k| format!("{k:?}")).collect();
    (
        m.time.to_rfc3339(),
        m.account.clone(),
        m.region.clone(),
        known,
    )
}

/// Decodes `bytes` with a screen that keeps every record, checking that each preview says
/// what the built event then says; returns how many previews there were.
fn previews_match_events(bytes: &[u8]) -> usize {
    let mut previews = Vec::new();
    let mut events = Vec::new();
    let s = decode_screened(
        bytes,
        Arc::from("t"),
        &Limits::default(),
        &mut |p| {
            previews.push(owned_preview(p));
            true
        },
        &mut |item| {
            if let Item::Event(e) = item {
                events.push(e);
            }
        },
    );
    assert_eq!(s.screened, 0);
    let built: Vec<_> = events.iter().map(owned_event_view).collect();
    assert_eq!(previews, built);
    previews.len()
}

#[test]
fn previews_tell_what_the_built_event_tells() {
    // Escapes keep a value out of the known fields: they are not verbatim slices.
    let escaped = r#"{"eventTime":"2026-01-01T00:00:04Z","eventSource":"s3.amazonaws.com","eventName":"Put\u004fbject","awsRegion":"eu-west-1","eventID":"e-4","errorCode":"AccessDenied","userIdentity":{"type":"IAMUser"},"recipientAccountId":"111122223333"}"#;
    let file = delivery(&[R1, R2, R3, escaped]);
    assert_eq!(previews_match_events(file.as_bytes()), 4);
}

#[test]
fn previews_of_real_records_tell_what_their_events_tell() {
    let Some(files) = shared_files("invictus-ir_aws_dataset/CloudTrail", "json") else {
        return;
    };
    let n: usize = files
        .iter()
        .map(|f| previews_match_events(&std::fs::read(f).unwrap()))
        .sum();
    assert_eq!(n, 2900);
}

#[test]
fn declined_records_are_counted_not_delivered() {
    let file = gz(delivery(&[R1, R2, "{\"eventName\":\"X\"}", R3]).as_bytes());
    let mut delivered = Vec::new();
    let s = decode_screened(
        &file[..],
        Arc::from("t"),
        &Limits::default(),
        &mut |p| p.known[crate::known::EVENT_NAME] != crate::Known::Str("CreateUser"),
        &mut |item| delivered.push(item),
    );
    assert_eq!(s.screened, 1);
    assert_eq!(s.events, 2);
    // The record without eventTime is skipped, not screened: the screen sees only
    // records that would have become events.
    assert_eq!(s.skipped_records, 1);
    assert_eq!(s.records_seen(), 4);
    assert_eq!(s.items(), delivered.len() as u64);
    let (all, unscreened) = decode_slice(&file, "t", &Limits::default());
    assert_eq!(unscreened.records_seen(), s.records_seen());
    let names: Vec<_> = delivered
        .iter()
        .filter_map(|i| match i {
            Item::Event(e) => e.meta().event_name.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["RunInstances", "ConsoleLogin"]);
    assert_eq!(all.len(), delivered.len() + 1);
}
