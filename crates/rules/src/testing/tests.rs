//! Tests for the runner, and for rule errors naming file, line and reason.

use super::*;
use crate::Candidate;

const SG_RULE: &str = r#"
id: sg-open
title: Security group opened to the world
severity: high
severity_if:
  - when: "perm.fromPort <= 22 && perm.toPort >= 22"
    severity: critical
match:
  source: [aws.ec2]
  detail:
    eventName: [AuthorizeSecurityGroupIngress]
for_each:
  perm: record.requestParameters.ipPermissions.items
  range: [perm.ipRanges.items, perm.ipv6Ranges.items]
let:
  cidr: "has(range.cidrIp) ? range.cidrIp : range.cidrIpv6"
where: "cidr == '0.0.0.0/0' || cidr == '::/0'"
alert:
  title: "{{ record.requestParameters.groupId }} open to {{ cidr }} on {{ perm.fromPort }}"
  fields:
    cidr: "{{ cidr }}"
tests:
  - name: two ranges of two permissions
    event:
      eventVersion: "1.08"
      eventTime: "2024-07-31T13:06:24Z"
      eventSource: ec2.amazonaws.com
      eventName: AuthorizeSecurityGroupIngress
      awsRegion: eu-west-1
      eventID: 11111111-2222-3333-4444-555555555555
      recipientAccountId: "123456789012"
      sourceIPAddress: 1.2.3.4
      userIdentity: {type: IAMUser, userName: bob, arn: "arn:aws:iam::123456789012:user/bob"}
      requestParameters:
        groupId: sg-1
        ipPermissions:
          items:
            - ipProtocol: tcp
              fromPort: 22
              toPort: 22
              ipRanges: {items: [{cidrIp: 10.0.0.0/8}, {cidrIp: 0.0.0.0/0}]}
              ipv6Ranges: {items: [{cidrIpv6: "::/0"}]}
            - ipProtocol: tcp
              fromPort: 443
              toPort: 443
              ipRanges: {items: [{cidrIp: 0.0.0.0/0}]}
    expect:
      alerts:
        - {severity: critical, fields.cidr: 0.0.0.0/0, title: "sg-1 open to 0.0.0.0/0 on 22", principal.name: bob}
        - {severity: critical, fields.cidr: "::/0"}
        - {severity: high, fields.cidr: 0.0.0.0/0, title_contains: "on 443", body_contains: "Console: https://eu-west-1.console.aws.amazon.com/cloudtrailv2/home?region=eu-west-1#/events/11111111-2222-3333-4444-555555555555"}
  - name: private range only
    event:
      eventTime: "2024-07-31T13:06:24Z"
      eventSource: ec2.amazonaws.com
      eventName: AuthorizeSecurityGroupIngress
      awsRegion: eu-west-1
      recipientAccountId: "123456789012"
      userIdentity: {type: IAMUser, userName: bob}
      requestParameters:
        groupId: sg-1
        ipPermissions: {items: [{fromPort: 22, toPort: 22, ipRanges: {items: [{cidrIp: 10.0.0.0/8}]}}]}
    expect: {count: 0}
"#;

fn src(text: &str) -> Vec<RuleSource> {
    vec![RuleSource::new("t.yaml", text)]
}

#[test]
fn runner_passes_good_rule() {
    let report = run(&src(SG_RULE), &Config::default());
    assert_eq!(report.failed, 0, "{report}");
    assert_eq!(report.passed, 2);
    assert!(report.to_string().ends_with("2 passed, 0 failed"));
}

#[test]
fn runner_reports_failing_case_with_line() {
    let bad = SG_RULE.replace(
        "- {severity: high, fields.cidr",
        "- {severity: low, fields.cidr",
    );
    let report = run(&src(&bad), &Config::default());
    assert_eq!((report.passed, report.failed), (1, 1), "{report}");
    let f = &report.failures[0];
    assert_eq!(f.line, 23);
    assert!(f.reason.contains("severity: expected low, got high"), "{f}");
    assert!(
        report
            .to_string()
            .starts_with("t.yaml:23: rule sg-open: test \"two ranges of two permissions\"")
    );
}

/// Compiles `text` and checks the errors, as "line:col: reason" substrings in order.
fn check_errors(text: &str, want: &[(usize, &str)]) {
    let errs = RuleSet::compile(&src(text), &Config::default()).expect_err("expected errors");
    let got: Vec<(usize, String)> = errs.0.iter().map(|e| (e.pos.line, e.to_string())).collect();
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for ((line, msg), (wline, wmsg)) in got.iter().zip(want) {
        assert_eq!(line, wline, "{msg}");
        assert!(
            msg.starts_with("t.yaml:") && msg.contains(wmsg),
            "{msg} should contain {wmsg}"
        );
    }
}

const MINI: &str =
    "id: r1\ntitle: T\nseverity: low\nmatch: {source: [aws.ec2]}\nalert: {title: x}\n";

#[test]
fn unknown_field_is_an_error() {
    check_errors(
        &format!("{MINI}colour: red\n"),
        &[(6, "rule r1: unknown field `colour`")],
    );
}

#[test]
fn bad_pattern_is_an_error() {
    check_errors(
        "id: r1\ntitle: T\nseverity: low\nmatch: {source: aws.ec2}\nalert: {title: x}\n",
        &[(4, "rule r1: bad pattern")],
    );
}

#[test]
fn cel_syntax_error_is_an_error() {
    check_errors(
        &format!("{MINI}where: \"record.a ==\"\n"),
        &[(6, "rule r1: CEL syntax error")],
    );
    check_errors(
        &format!("{MINI}where: \"record.a == (1\"\n"),
        &[(6, "CEL syntax error")],
    );
}

#[test]
fn unknown_cel_variable_is_an_error() {
    check_errors(
        &format!("{MINI}where: \"recrod.eventName == 'x'\"\n"),
        &[(6, "rule r1: unknown CEL variable `recrod`")],
    );
}

#[test]
fn unknown_template_variable_is_an_error() {
    check_errors(
        "id: r1\ntitle: T\nseverity: low\nmatch: {source: [aws.ec2]}\nalert:\n  title: \"{{ recrod.eventName }}\"\n",
        &[(6, "rule r1: unknown template variable `recrod`")],
    );
}

#[test]
fn window_without_count_is_an_error() {
    check_errors(
        &format!("{MINI}threshold:\n  window: 10m\n"),
        &[(7, "rule r1: threshold has a window but no count")],
    );
}

#[test]
fn every_rule_error_is_reported() {
    let text = format!(
        "- {}\n- id: r2\n  title: T\n  severity: urgent\n  match: {{source: [aws.ec2]}}\n  alert: {{title: x}}\n- id: r1\n  title: T\n  severity: low\n  match: {{source: [aws.ec2]}}\n  alert: {{title: x}}\n",
        MINI.replace('\n', "\n  ").trim_end()
    );
    check_errors(
        &text,
        &[
            (8, "rule r2: unknown severity"),
            (11, "rule r1: duplicate rule id"),
        ],
    );
}

#[test]
fn yaml_syntax_error_names_line() {
    check_errors("id: r1\ntitle: [unclosed\n", &[(2, "")]);
}

/// Evaluates one record with the built-in pack under `config_yaml` and returns
/// (rule id, severity) of every alert.
fn builtin_alerts(config_yaml: &str, record: serde_json::Value) -> Vec<(String, String)> {
    let config = trailwatch_config::parse("tw.yaml", config_yaml).unwrap_or_else(|e| panic!("{e}"));
    let set =
        RuleSet::compile(&crate::builtin_sources(), &config).unwrap_or_else(|e| panic!("{e}"));
    let event = event_from_value(&record, "test").unwrap();
    let mut scratch = EvalScratch::default();
    let mut out: Vec<(String, String)> = set
        .evaluate(&event, &mut scratch)
        .into_iter()
        .map(|c| {
            let a = c.into_alert();
            (a.rule_id, a.severity.to_string())
        })
        .collect();
    out.sort();
    out
}

fn stop_logging(user_agent: &str) -> serde_json::Value {
    serde_json::json!({
        "eventTime": "2024-07-31T13:06:24Z", "eventSource": "cloudtrail.amazonaws.com",
        "eventName": "StopLogging", "awsRegion": "us-east-1", "recipientAccountId": "123456789012",
        "userAgent": user_agent, "sourceIPAddress": "198.51.100.1",
        "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/terraform-ci/run-1",
            "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::123456789012:role/terraform-ci", "userName": "terraform-ci"}}},
        "requestParameters": {"name": "main"}, "eventID": "e-1"
    })
}

#[test]
fn config_overrides_disables_and_trusts() {
    let check = |cfg: &str, want: &[(&str, &str)]| {
        let got = builtin_alerts(cfg, stop_logging("aws-cli/2"));
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        assert_eq!(got, want, "{cfg}");
    };
    check("", &[("cloudtrail-logging-tampered", "critical")]);
    check(
        "rules:\n  severity: {cloudtrail-logging-tampered: low}\n",
        &[("cloudtrail-logging-tampered", "low")],
    );
    check("rules:\n  disable: [cloudtrail-logging-tampered]\n", &[]);
    // The role ARN of a session is matched, so one pattern covers every session.
    check(
        "trusted:\n  principals: ['arn:aws:iam::*:role/terraform-*']\n",
        &[],
    );
    check("trusted:\n  cidrs: [198.51.100.0/24]\n", &[]);
    check(
        "accounts: {'123456789012': prod}\n",
        &[("cloudtrail-logging-tampered", "critical")],
    );
    let got = builtin_alerts(
        "trusted:\n  user_agents: ['*Terraform*']\n",
        stop_logging("APN/1.0 HashiCorp/1.0 Terraform/1.5.7"),
    );
    assert!(got.is_empty());
}

#[test]
fn test_cases_can_name_event_files() {
    let dir = std::env::temp_dir().join(format!("trailwatch-rules-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let record = stop_logging("aws-cli/2");
    std::fs::write(
        dir.join("stop.json"),
        serde_json::json!({"Records": [record]}).to_string(),
    )
    .unwrap();
    let rule = "id: stop\ntitle: T\nseverity: high\nmatch: {detail: {eventName: [StopLogging]}}\nalert: {title: stopped}\ntests:\n  - name: from a log file\n    file: stop.json\n    expect: {count: 1}\n  - name: missing file\n    file: nope.json\n    expect: {count: 0}\n";
    let path = dir.join("rule.yaml");
    let report = run(
        &[RuleSource::new(path.display().to_string(), rule)],
        &Config::default(),
    );
    assert_eq!((report.passed, report.failed), (1, 1), "{report}");
    assert!(
        report.failures[0].reason.contains("cannot read"),
        "{report}"
    );
    assert_eq!(report.failures[0].line, 10);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn alike_items_keep_distinct_dedup_keys() {
    // The same range in two permissions: two alerts, two keys.
    let record = serde_json::json!({
        "eventTime": "2024-07-31T13:06:24Z", "eventSource": "ec2.amazonaws.com",
        "eventName": "AuthorizeSecurityGroupIngress", "awsRegion": "eu-west-1",
        "recipientAccountId": "123456789012", "eventID": "e-2",
        "userIdentity": {"type": "IAMUser", "userName": "bob"},
        "requestParameters": {"groupId": "sg-1", "ipPermissions": {"items": [
            {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}},
            {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}
        ]}}
    });
    let set = RuleSet::compile(&crate::builtin_sources(), &Config::default()).unwrap();
    let event = event_from_value(&record, "test").unwrap();
    let keys: Vec<String> = set
        .evaluate(&event, &mut EvalScratch::default())
        .into_iter()
        .filter(|c| c.rule_id() == "ec2-security-group-ingress-open-to-world")
        .map(|c| c.dedup_key().to_owned())
        .collect();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1]);
    assert!(keys[1].ends_with("#2"), "{keys:?}");
}

#[test]
fn unknown_fields_do_not_hide_other_errors() {
    check_errors(
        "id: bad\ntitle: T\nseverity: low\nmatch: {detail: {eventName: [X]}}\nwhere: \"recrod.x == 1\"\nthreshold: {window: 5m}\nalert: {title: \"{{ nope }}\"}\ncolour:\n  - red\n  - blue\nshade: dark\n",
        &[
            (5, "rule bad: unknown CEL variable `recrod`"),
            (6, "rule bad: threshold has a window but no count"),
            (7, "rule bad: unknown template variable `nope`"),
            (8, "rule bad: unknown field `colour`"),
            (11, "rule bad: unknown field `shade`"),
        ],
    );
}

/// RULE_FIELDS matches the serde struct (the lenient parser relies on it).
#[test]
fn rule_field_list_matches_the_struct() {
    let err = trailwatch_config::yaml::from_str::<crate::schema::RawRule>("zzz_unknown: 1\n")
        .err()
        .map(|e| e.reason)
        .unwrap_or_default();
    let listed = err
        .split("expected one of ")
        .nth(1)
        .unwrap_or("")
        .replace('`', "");
    assert_eq!(listed, crate::compile::RULE_FIELDS.join(", "));
}

#[test]
fn remediate_blocks_are_checked_at_load() {
    let text = format!(
        "{MINI}remediate:\n  steps:\n    - action: ec2-nuke-account\n    - action: s3-block-public-access\n      with: {{bucket: b, acl: private}}\n    - action: ec2-tag-resource\n      with: {{resource_ids: i-1}}\n    - action: iam-deactivate-access-key\n      retry: {{retry_on: [access-denied], backoff: soon}}\n      on_error: nowhere\n      when: \"recrod.x == 1\"\n"
    );
    check_errors(
        &text,
        &[
            (
                8,
                "unknown action \"ec2-nuke-account\"; known: ec2-revoke-ingress",
            ),
            (
                9,
                "action s3-block-public-access has no parameter \"acl\"; it takes: bucket",
            ),
            (11, "action ec2-tag-resource needs `with: {tags: ...}`"),
            (13, "retry.backoff \"soon\" is not a duration"),
            (13, "retry.retry_on: access-denied never retries"),
            (
                13,
                "step \"iam-deactivate-access-key\": on_error names \"nowhere\"",
            ),
            (16, "unknown CEL variable `recrod`"),
        ],
    );
}

#[test]
fn remediation_plans_start_dry_run_and_name_missing_params() {
    let text = format!(
        "{MINI}remediate:\n  steps:\n    - action: s3-make-object-private\n    - id: second\n      action: s3-block-public-access\n      when: \"record.eventName == 'PutBucketAcl'\"\n"
    );
    let set = RuleSet::compile(&src(&text), &Config::default()).unwrap();
    let record = serde_json::json!({
        "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances", "eventTime": "2024-01-01T00:00:00Z",
        "eventID": "e1", "awsRegion": "us-east-1", "recipientAccountId": "1",
        "requestParameters": {"bucketName": "b"}
    });
    let event = event_from_value(&record, "test").unwrap();
    let alerts: Vec<_> = set
        .evaluate(&event, &mut EvalScratch::default())
        .into_iter()
        .map(Candidate::into_alert)
        .collect();
    let plan = alerts[0].remediation.as_ref().expect("a plan");
    assert_eq!(plan.mode, "dry-run");
    assert_eq!(
        plan.steps.len(),
        1,
        "the `when` of the second step is false"
    );
    assert_eq!(
        plan.steps[0].invalid.as_deref(),
        Some("action s3-make-object-private: parameter key is empty")
    );
    assert_eq!(plan.steps[0].params["bucket"], "b");
}
