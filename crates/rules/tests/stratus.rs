//! The built-in pack over the Stratus Red Team detonation logs in ../shared: each attack
//! technique raises the alerts it should (and the techniques no rule covers raise none of
//! the change rules by accident). Skipped when the shared data is absent.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use trailwatch_event::{Event, Provenance};
use trailwatch_rules::{RuleSet, builtin_sources, testing};

fn data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/cloudtrail/stratus-red-team_detonation-logs");
    dir.is_dir().then_some(dir)
}

/// Alerts per rule id for one technique's log file.
fn alerts_for(set: &RuleSet, path: &std::path::Path) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(path).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let records = match value {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(mut o) => match o.remove("Records") {
            Some(serde_json::Value::Array(a)) => a,
            _ => vec![serde_json::Value::Object(o)],
        },
        _ => Vec::new(),
    };
    let origin: Arc<str> = Arc::from(path.display().to_string());
    let mut events: Vec<Event> = records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            Event::from_record(
                &r.to_string(),
                Provenance::new(origin.clone()).with_record(i as u64),
            )
            .ok()
        })
        .collect();
    events.sort_by_key(|e| e.meta().time);
    let mut counts = BTreeMap::new();
    for rule in set.rules() {
        let alerts = testing::run_events(set, &rule.id, &events).unwrap();
        if !alerts.is_empty() {
            counts.insert(rule.id.clone(), alerts.len());
        }
    }
    counts
}

#[test]
fn stratus_techniques_raise_the_expected_alerts() {
    let Some(dir) = data_dir() else {
        eprintln!("skipped: shared Stratus Red Team data not found");
        return;
    };
    // Business hours must not depend on the machine: Berlin office hours.
    let config = trailwatch_config::parse(
        "test",
        "business_hours: {start: '08:00', end: '18:00', days: [mon, tue, wed, thu, fri], timezone: Europe/Berlin}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let set = RuleSet::compile(&builtin_sources(), &config).unwrap_or_else(|e| panic!("{e}"));
    let expected: &[(&str, &[&str])] = &[
        (
            "aws.defense-evasion.cloudtrail-stop",
            &["cloudtrail-logging-tampered"],
        ),
        (
            "aws.defense-evasion.cloudtrail-delete",
            &["cloudtrail-logging-tampered"],
        ),
        (
            "aws.defense-evasion.cloudtrail-event-selectors",
            &["cloudtrail-logging-tampered"],
        ),
        (
            "aws.exfiltration.ec2-security-group-open-port-22-ingress",
            &[
                "ec2-security-group-changed",
                "ec2-security-group-ingress-open-to-world",
            ],
        ),
        (
            "aws.initial-access.console-login-without-mfa",
            &["console-login-without-mfa"],
        ),
        (
            "aws.persistence.iam-create-admin-user",
            &["iam-admin-policy-attached"],
        ),
        (
            "aws.persistence.iam-create-backdoor-role",
            &["iam-admin-policy-attached"],
        ),
        // CreateAccessKey at 20:28 UTC: after hours in Berlin.
        (
            "aws.persistence.iam-backdoor-user",
            &["iam-user-created-outside-business-hours"],
        ),
        (
            "aws.credential-access.ec2-get-password-data",
            &["access-denied-burst"],
        ),
        // No rule in the pack covers these: they must stay quiet.
        ("aws.credential-access.secretsmanager-retrieve-secrets", &[]),
        ("aws.discovery.ec2-download-user-data", &[]),
        ("aws.execution.ec2-launch-unusual-instances", &[]),
    ];
    let mut report = String::new();
    let mut failures = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for path in &files {
        let technique = path.file_stem().unwrap().to_string_lossy().to_string();
        let got = alerts_for(&set, path);
        report.push_str(&format!("{technique}: {got:?}\n"));
        if let Some((_, want)) = expected.iter().find(|(t, _)| *t == technique) {
            let got_ids: Vec<&str> = got.keys().map(String::as_str).collect();
            // Every expected rule fires; for the quiet ones, nothing fires.
            let ok = if want.is_empty() {
                got_ids.is_empty()
            } else {
                want.iter().all(|w| got_ids.contains(w))
            };
            if !ok {
                failures.push(format!("{technique}: want {want:?}, got {got_ids:?}"));
            }
        }
    }
    eprintln!("{report}");
    assert!(failures.is_empty(), "{failures:#?}\n{report}");
    assert_eq!(files.len(), 35, "expected the 35 technique files");
}
