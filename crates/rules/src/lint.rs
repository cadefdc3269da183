//! `rules lint`: compile errors, plus warnings for rules that would silently never fire
//! (an `eventSource` or `eventName` that is not a real AWS API name) or are untested.

use std::fmt;

use serde_json::Value;
use trailwatch_config::Config;

use crate::RuleSource;
use crate::catalog::Catalog;
use crate::compile::{Rule, RuleSet};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LintLevel {
    /// Worth a look.
    Warning,
    /// The rule cannot load.
    Error,
}

impl fmt::Display for LintLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LintLevel::Warning => "warning",
            LintLevel::Error => "error",
        })
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintFinding {
    /// The rule file.
    pub origin: String,
    /// The line.
    pub line: usize,
    /// The rule's id (empty when unknown).
    pub rule_id: String,
    /// What is wrong.
    pub message: String,
    /// How bad.
    pub level: LintLevel,
}

impl fmt::Display for LintFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}: ", self.origin, self.line, self.level)?;
        } else {
            write!(f, "{}: {}: ", self.origin, self.level)?;
        }
        if !self.rule_id.is_empty() {
            write!(f, "rule {}: ", self.rule_id)?;
        }
        f.write_str(&self.message)
    }
}

/// Lints rule files: every compile error, then per-rule warnings.
pub fn lint(sources: &[RuleSource], config: &Config) -> Vec<LintFinding> {
    let set = match RuleSet::compile(sources, config) {
        Ok(s) => s,
        Err(errs) => {
            return errs
                .0
                .into_iter()
                .map(|e| LintFinding {
                    origin: e.origin.clone(),
                    line: e.pos.line,
                    rule_id: e.rule_id.clone().unwrap_or_default(),
                    message: e.reason.clone(),
                    level: LintLevel::Error,
                })
                .collect();
        }
    };
    let catalog = Catalog::embedded();
    let mut out = Vec::new();
    for rule in set.rules() {
        lint_rule(rule, catalog, &mut out);
    }
    lint_config(&set, config, &mut out);
    out
}

/// Config entries that name no loaded rule do nothing: say so.
fn lint_config(set: &RuleSet, config: &Config, out: &mut Vec<LintFinding>) {
    let r = &config.rules;
    let named = r
        .disable
        .iter()
        .map(|id| ("rules.disable", id))
        .chain(r.enable.iter().map(|id| ("rules.enable", id)))
        .chain(r.severity.keys().map(|id| ("rules.severity", id)));
    for (key, id) in named {
        if set.rule(id).is_none() {
            out.push(LintFinding {
                origin: config.origin.clone(),
                line: 0,
                rule_id: id.clone(),
                message: format!("{key} names {id:?}, which is not a loaded rule"),
                level: LintLevel::Warning,
            });
        }
    }
}

/// String values a pattern lists for `detail.<field>` (exact strings only; prefixes,
/// wildcards and other operators are not checked).
fn listed(pattern: &Value, field: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(v) = pattern.get("detail").and_then(|d| d.get(field)) {
        collect_strings(v, &mut out);
    }
    if let Some(ors) = pattern.get("$or").and_then(Value::as_array) {
        for alt in ors {
            out.extend(listed(alt, field));
        }
    }
    if let Some(ors) = pattern
        .get("detail")
        .and_then(|d| d.get("$or"))
        .and_then(Value::as_array)
    {
        for alt in ors {
            if let Some(v) = alt.get(field) {
                collect_strings(v, &mut out);
            }
        }
    }
    out
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

fn lint_rule(rule: &Rule, catalog: &Catalog, out: &mut Vec<LintFinding>) {
    let mut warn = |message: String| {
        out.push(LintFinding {
            origin: rule.origin.clone(),
            line: rule.pattern_pos.line,
            rule_id: rule.id.clone(),
            message,
            level: LintLevel::Warning,
        });
    };
    let sources = listed(&rule.pattern, "eventSource");
    let names = listed(&rule.pattern, "eventName");
    for s in &sources {
        if !catalog.has_source(s) {
            let hint = catalog
                .suggest_source(s)
                .map(|h| format!(" (did you mean {h}?)"))
                .unwrap_or_default();
            warn(format!(
                "eventSource {s:?} is not a known AWS event source{hint}; the rule will never match it"
            ));
        }
    }
    let known_sources: Vec<&String> = sources.iter().filter(|s| catalog.has_source(s)).collect();
    for n in &names {
        let ok = if known_sources.is_empty() {
            catalog.any_has_operation(n)
        } else {
            known_sources.iter().any(|s| catalog.has_operation(s, n))
        };
        if !ok {
            let hint = catalog
                .suggest(known_sources.first().map(|s| s.as_str()), n)
                .map(|h| format!(" (did you mean {h}?)"))
                .unwrap_or_else(|| {
                    let elsewhere = catalog.sources_of(n);
                    if elsewhere.is_empty() {
                        String::new()
                    } else {
                        format!(" (it is an operation of {})", elsewhere.join(", "))
                    }
                });
            let scope = if known_sources.is_empty() {
                "any AWS service".to_owned()
            } else {
                known_sources
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            warn(format!(
                "eventName {n:?} is not an operation of {scope}{hint}; the rule will never match it"
            ));
        }
    }
    let positive = rule
        .tests
        .iter()
        .any(|t| t.raw.expect.count.unwrap_or(t.raw.expect.alerts.len()) > 0);
    let negative = rule
        .tests
        .iter()
        .any(|t| t.raw.expect.count.unwrap_or(t.raw.expect.alerts.len()) == 0);
    if !positive {
        warn("no test case expects an alert".into());
    }
    if !negative {
        warn("no test case expects no alert".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, want: &[&str]) {
        let text = format!(
            "id: r1\ntitle: T\nseverity: low\nmatch: {pattern}\nalert: {{title: x}}\ntests:\n  - name: p\n    event: {{eventTime: '2024-01-01T00:00:00Z', recipientAccountId: '1', eventName: X}}\n    expect: {{count: 1}}\n  - name: n\n    event: {{eventTime: '2024-01-01T00:00:00Z', recipientAccountId: '1', eventName: X}}\n    expect: {{count: 0}}\n"
        );
        let got: Vec<String> = lint(&[RuleSource::new("t.yaml", text)], &Config::default())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for (g, w) in got.iter().zip(want) {
            assert!(g.contains(w), "{g} should contain {w}");
        }
    }

    #[test]
    fn unknown_names_are_flagged() {
        check(
            "{detail: {eventSource: [ec2.amazonaws.com], eventName: [AuthorizeSecurityGroupIngress]}}",
            &[],
        );
        check(
            "{detail: {eventSource: [ec2.amazonaws.com], eventName: [AuthorizeSecurityGroupIngres]}}",
            &[
                "t.yaml:4: warning: rule r1: eventName \"AuthorizeSecurityGroupIngres\" is not an operation of ec2.amazonaws.com (did you mean AuthorizeSecurityGroupIngress?)",
            ],
        );
        check(
            "{detail: {eventSource: [ec3.amazonaws.com]}}",
            &["did you mean ec2.amazonaws.com?"],
        );
        check(
            "{detail: {eventSource: [signin.amazonaws.com], eventName: [ConsoleLogin]}}",
            &[],
        );
        check(
            "{detail: {eventName: [StopLoging]}}",
            &["not an operation of any AWS service (did you mean StopLogging?)"],
        );
        check("{source: [aws.ec2]", &["error"]);
    }

    #[test]
    fn config_naming_unknown_rules_is_flagged() {
        let cfg =
            trailwatch_config::parse("tw.yaml", "rules:\n  disable: [no-such-rule]\n").unwrap();
        let findings = lint(&crate::builtin_sources(), &cfg);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(
            findings[0].to_string(),
            "tw.yaml: warning: rule no-such-rule: rules.disable names \"no-such-rule\", which is not a loaded rule"
        );
    }
}
