//! Tests for config parsing and validation.

use super::*;

/// Parses `text` and compares the error list (as "line:col: reason" prefixes) with `want`.
fn check_errors(text: &str, want: &[&str]) {
    let errs = parse("t.yaml", text).expect_err("expected errors");
    let got: Vec<String> = errs.0.iter().map(|e| e.to_string()).collect();
    assert_eq!(got.len(), want.len(), "got {got:#?}");
    for (g, w) in got.iter().zip(want) {
        assert!(g.starts_with(w), "got {g:?}, want prefix {w:?}");
    }
}

#[test]
fn full_example_parses() {
    let text = include_str!("../examples/trailwatch.yaml");
    let c = parse("trailwatch.yaml", text).unwrap();
    assert_eq!(c.account_alias("123456789012"), Some("prod"));
    assert_eq!(c.business_hours.timezone, chrono_tz::Europe::Berlin);
    assert_eq!(c.required_tags, vec!["Owner", "CostCenter"]);
    assert!(c.trusted.principals[0].matches("arn:aws:iam::123456789012:role/terraform-ci"));
    assert!(net::any_contains(&c.trusted.cidrs, "10.2.3.4"));
    assert!(!c.rule_enabled("console-login-failures", true));
    assert_eq!(c.rules.severity["root-account-used"], Severity::Critical);
    let dest = c.section("destinations").unwrap();
    // A raw section parses with its original line numbers.
    let v: serde_json::Value = dest.deserialize().unwrap();
    assert!(v.get("slack").is_some());
    assert_eq!(
        dest.line(),
        text.lines()
            .position(|l| l.starts_with("destinations:"))
            .unwrap()
            + 2
    );
    let err = dest
        .deserialize::<std::collections::BTreeMap<String, u32>>()
        .unwrap_err();
    assert_eq!(err.origin, "trailwatch.yaml");
    assert!(err.pos.line >= dest.line());
}

#[test]
fn empty_config_is_default() {
    let c = parse("t.yaml", "# nothing\n").unwrap();
    assert_eq!(c.business_hours, BusinessHours::default());
    assert!(c.rules.builtin);
}

#[test]
fn every_error_is_reported_with_its_line() {
    check_errors(
        "accounts:\n  '12345': short\nbusiness_hours:\n  start: '25:00'\n  timezone: Mars/Olympus\nbogus: 1\ntrusted:\n  cidrs: [10.0.0.0/99]\nrules:\n  severity:\n    x: urgent\n",
        &[
            "t.yaml:2:4: account id \"12345\"",
            "t.yaml:4:3: business_hours.start",
            "t.yaml:5:3: business_hours.timezone",
            "t.yaml:6:1: unknown top-level key `bogus`",
            "t.yaml:8:11: trusted.cidrs",
            "t.yaml:11:5: rules.severity.x",
        ],
    );
}

#[test]
fn unknown_fields_are_errors_in_each_section() {
    check_errors(
        "trusted:\n  principal: [x]\nrules:\n  disabled: [a]\n",
        &[
            "t.yaml:2:3: unknown field `principal`",
            "t.yaml:4:3: unknown field `disabled`",
        ],
    );
}

#[test]
fn business_hours_in_time_zone() {
    let c = parse(
        "t.yaml",
        "business_hours:\n  start: '09:00'\n  end: '17:00'\n  days: [mon, tue, wed, thu, fri]\n  timezone: Europe/Berlin\n",
    )
    .unwrap();
    let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    let bh = &c.business_hours;
    // 2024-07-31 is a Wednesday; Berlin is UTC+2 in summer.
    assert!(bh.contains(t("2024-07-31T07:00:00Z")));
    assert!(!bh.contains(t("2024-07-31T06:59:00Z")));
    assert!(!bh.contains(t("2024-07-31T15:00:00Z")));
    assert!(!bh.contains(t("2024-08-03T10:00:00Z"))); // Saturday
    let night = parse(
        "t.yaml",
        "business_hours:\n  start: '22:00'\n  end: '06:00'\n  days: [mon]\n",
    )
    .unwrap();
    assert!(night.business_hours.contains(t("2024-07-29T23:00:00Z"))); // Mon 23:00
    assert!(night.business_hours.contains(t("2024-07-30T05:00:00Z"))); // Tue 05:00, Monday's shift
    assert!(!night.business_hours.contains(t("2024-07-30T23:00:00Z")));
}

#[test]
fn syntax_error_has_position() {
    check_errors("accounts: [\n", &["t.yaml:"]);
}

#[test]
fn empty_working_week_is_an_error() {
    check_errors(
        "business_hours:\n  days: []\n",
        &["t.yaml:2:3: business_hours.days is empty"],
    );
}

#[test]
fn unknown_field_does_not_hide_the_sections_other_errors() {
    check_errors(
        "business_hours:\n  start: '7'\n  tz: UTC\n  end: '99:00'\ntrusted:\n  cidr: [x]\n  cidrs: [nope]\n",
        &[
            "t.yaml:2:3: business_hours.start",
            "t.yaml:3:3: unknown field `tz`, expected one of start, end, days, timezone",
            "t.yaml:4:3: business_hours.end",
            "t.yaml:6:3: unknown field `cidr`",
            "t.yaml:7:11: trusted.cidrs",
        ],
    );
}

/// The field lists used for lenient parsing match the serde structs.
#[test]
fn field_lists_match_the_structs() {
    fn fields_of<T: serde::de::DeserializeOwned>() -> String {
        let err = yaml::from_str::<T>("zzz_unknown: 1\n")
            .err()
            .map(|e| e.reason)
            .unwrap_or_default();
        err.split("expected one of ")
            .nth(1)
            .unwrap_or("")
            .replace('`', "")
    }
    assert_eq!(
        fields_of::<raw::RawBusinessHours>(),
        raw::BUSINESS_HOURS_FIELDS.join(", ")
    );
    assert_eq!(
        fields_of::<raw::RawTrusted>(),
        raw::TRUSTED_FIELDS.join(", ")
    );
    assert_eq!(fields_of::<raw::RawRules>(), raw::RULES_FIELDS.join(", "));
}
