//! `trailwatch pattern test | check | match`.

mod common;

use common::{shared, trailwatch};

#[test]
fn conformance_files_pass_through_the_cli() {
    let Some(shared) = shared() else { return };
    for (file, count) in [
        ("patterns-ruler-quamina.jsonl", 1480),
        ("patterns-ruler-oracle.jsonl", 51),
    ] {
        let path = shared.join("conformance").join(file);
        let run = trailwatch(&["pattern", "test", "--cases", path.to_str().unwrap()]);
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        assert_eq!(
            run.stdout.lines().last(),
            Some(format!("{count} passed, 0 failed").as_str()),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn failing_cases_are_listed_and_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases.jsonl");
    std::fs::write(
        &cases,
        concat!(
            r#"{"pattern":{"a":[300]},"event":{"a":3.0e2},"match":true}"#,
            "\n\n",
            r#"{"pattern":{"a":["x"]},"event":{"a":"y"},"match":true,"note":"wrong on purpose"}"#,
            "\n",
            r#"{"pattern":{"a":[]},"error":"Empty arrays are not allowed"}"#,
            "\n",
            r#"{"pattern":{"a":"x"},"error":"must be an object or an array"}"#,
            "\n",
        ),
    )
    .unwrap();
    let run = trailwatch(&["pattern", "test", "--cases", cases.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("cases.jsonl:3"), "{}", run.stdout);
    assert_eq!(run.stdout.lines().last(), Some("3 passed, 1 failed"));
}

#[test]
fn check_accepts_good_and_rejects_bad_patterns_with_path_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        r#"{"source":["aws.ec2"],"detail":{"sourceIPAddress":[{"cidr":"10.0.0.0/8"}]}}"#,
    )
    .unwrap();
    let run = trailwatch(&["pattern", "check", good.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"detail":{"eventName":[]}}"#).unwrap();
    let run = trailwatch(&["pattern", "check", bad.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("bad.json"), "{}", run.stderr);
    assert!(run.stderr.contains("detail.eventName"), "{}", run.stderr);
    assert!(
        run.stderr.contains("Empty arrays are not allowed"),
        "{}",
        run.stderr
    );
}

#[test]
fn match_prints_the_matching_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    let pattern = dir.path().join("p.json");
    std::fs::write(
        &pattern,
        r#"{"source":["aws.signin"],"detail-type":["AWS Console Sign In via CloudTrail"],"detail":{"responseElements":{"ConsoleLogin":["Failure"]}}}"#,
    )
    .unwrap();
    let run = trailwatch(&["pattern", "match", pattern.to_str().unwrap(), "examples"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The demo day has five failed sign-ins for dave and four for bob.
    assert_eq!(run.stdout.lines().count(), 9, "{}", run.stdout);
    for line in run.stdout.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(event["detail"]["eventName"], "ConsoleLogin");
    }
    assert!(run.stderr.contains("9 of "), "{}", run.stderr);
}
