//! The test runner: runs every rule's embedded `tests` through the same path production
//! uses (pattern match, `where`, `for_each`, suppress, templates, then the gate), and
//! compares what comes out with what each case expects.
//!
//! `trailwatch rules test` prints [`TestReport`]; the built-in pack runs as a cargo test.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use trailwatch_alert::Alert;
use trailwatch_config::Config;
use trailwatch_event::{Event, Provenance};

use crate::RuleSource;
use crate::clock::{Clock, ManualClock};
use crate::compile::{Rule, RuleSet, TestCase};
use crate::evaluate::EvalScratch;
use crate::gate::Gate;
use crate::state::MemoryState;

/// One failed case (or a rule set that did not compile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFailure {
    /// The rule file.
    pub origin: String,
    /// The line of the case.
    pub line: usize,
    /// The rule's id (empty when the set did not compile).
    pub rule_id: String,
    /// The case's name.
    pub case: String,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for TestFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rule_id.is_empty() {
            write!(f, "{}:{}: {}", self.origin, self.line, self.reason)
        } else {
            write!(
                f,
                "{}:{}: rule {}: test {:?}: {}",
                self.origin, self.line, self.rule_id, self.case, self.reason
            )
        }
    }
}

/// The outcome of a test run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestReport {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed (plus one per compile error).
    pub failed: usize,
    /// Cases of disabled rules, not run.
    pub skipped: usize,
    /// Every failure, in file order.
    pub failures: Vec<TestFailure>,
    /// Rules that have no positive case or no negative case (for lint).
    pub untested: Vec<String>,
}

impl TestReport {
    /// Whether nothing failed.
    pub fn ok(&self) -> bool {
        self.failed == 0
    }
}

impl fmt::Display for TestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for failure in &self.failures {
            writeln!(f, "{failure}")?;
        }
        write!(f, "{} passed, {} failed", self.passed, self.failed)?;
        if self.skipped > 0 {
            write!(f, ", {} skipped", self.skipped)?;
        }
        Ok(())
    }
}

/// Runs every test case of every rule in `sources` with `config` (or the case's own
/// `config`).
pub fn run(sources: &[RuleSource], config: &Config) -> TestReport {
    let mut report = TestReport::default();
    let set = match RuleSet::compile(sources, config) {
        Ok(s) => s,
        Err(errs) => {
            for e in errs.0 {
                report.failed += 1;
                report.failures.push(TestFailure {
                    origin: e.origin.clone(),
                    line: e.pos.line,
                    rule_id: String::new(),
                    case: String::new(),
                    reason: e.to_string(),
                });
            }
            return report;
        }
    };
    for rule in set.rules() {
        if !rule.enabled {
            report.skipped += rule.tests.len();
            continue;
        }
        let (mut pos, mut neg) = (false, false);
        for case in &rule.tests {
            let expected = case
                .raw
                .expect
                .count
                .unwrap_or(case.raw.expect.alerts.len());
            if expected > 0 {
                pos = true;
            } else {
                neg = true;
            }
            match run_case(&set, rule, case) {
                Ok(()) => report.passed += 1,
                Err(reason) => {
                    report.failed += 1;
                    report.failures.push(TestFailure {
                        origin: rule.origin.clone(),
                        line: case.pos.line,
                        rule_id: rule.id.clone(),
                        case: case.raw.name.clone(),
                        reason,
                    });
                }
            }
        }
        if !(pos && neg) {
            report.untested.push(rule.id.clone());
        }
    }
    report
}

/// Runs one case; `Err` says why it failed.
pub fn run_case(set: &RuleSet, rule: &Rule, case: &TestCase) -> Result<(), String> {
    let alerts = alerts_for_case(set, rule, case)?;
    check_expectations(&alerts, case)
}

/// The alerts `rule` raises for the case's events (after the gate and a final flush).
pub fn alerts_for_case(set: &RuleSet, rule: &Rule, case: &TestCase) -> Result<Vec<Alert>, String> {
    let owned;
    let set = match &case.raw.config {
        None => set,
        Some(cfg) => {
            let text = serde_json::to_string(cfg).map_err(|e| e.to_string())?;
            let config = trailwatch_config::parse(
                &format!("{}:{} (test config)", rule.origin, case.pos.line),
                &text,
            )
            .map_err(|e| format!("bad test config: {e}"))?;
            owned = RuleSet::compile(
                &[RuleSource::new(rule.origin.clone(), rule.source.clone())],
                &config,
            )
            .map_err(|e| format!("rule does not compile with the test config: {e}"))?;
            &owned
        }
    };
    let events = case_events(rule, case)?;
    run_events(set, &rule.id, &events)
}

/// Feeds events through evaluate and a fresh gate and returns the alerts of `rule_id`.
pub fn run_events(set: &RuleSet, rule_id: &str, events: &[Event]) -> Result<Vec<Alert>, String> {
    let first = events.first().map(|e| e.meta().time).unwrap_or_default();
    let clock = Arc::new(ManualClock::new(first));
    let mut gate = Gate::new(set, Box::new(MemoryState::new()), clock.clone());
    let mut scratch = EvalScratch::default();
    let mut out = Vec::new();
    for ev in events {
        if ev.meta().time > clock.now() {
            clock.set(ev.meta().time);
        }
        for c in set.evaluate(ev, &mut scratch) {
            if c.rule_id() == rule_id {
                out.extend(gate.admit(c));
            }
        }
    }
    out.extend(gate.flush());
    Ok(out)
}

/// Turns one JSON value (record or envelope) into an event.
pub fn event_from_value(v: &Value, origin: &str) -> Result<Event, String> {
    let text = v.to_string();
    let prov = Provenance::new(Arc::from(origin));
    let is_envelope = v.get("detail-type").is_some() && v.get("detail").is_some();
    let r = if is_envelope {
        Event::from_envelope(&text, prov)
    } else {
        Event::from_record(&text, prov)
    };
    r.map_err(|e| format!("bad test event: {e}"))
}

fn case_events(rule: &Rule, case: &TestCase) -> Result<Vec<Event>, String> {
    let origin = format!("{}:{}", rule.origin, case.pos.line);
    let mut values: Vec<Value> = Vec::new();
    if let Some(e) = &case.raw.event {
        values.push(e.clone());
    }
    if let Some(es) = &case.raw.events {
        values.extend(es.iter().cloned());
    }
    if let Some(file) = &case.raw.file {
        values.extend(read_event_file(&rule.origin, file)?);
    }
    if values.is_empty() {
        return Err("the case has no event, events or file".into());
    }
    values
        .iter()
        .map(|v| event_from_value(v, &origin))
        .collect()
}

/// Reads a test event file next to the rule file: one event, a list, or `{"Records": []}`.
fn read_event_file(rule_origin: &str, file: &str) -> Result<Vec<Value>, String> {
    if rule_origin.starts_with("builtin:") {
        return Err("built-in rules cannot reference files".into());
    }
    let base = std::path::Path::new(rule_origin)
        .parent()
        .unwrap_or_else(|| std::path::Path::new("."));
    let path = base.join(file);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(match v {
        Value::Array(a) => a,
        Value::Object(ref o) if o.get("Records").is_some_and(Value::is_array) => o
            .get("Records")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        other => vec![other],
    })
}

/// Reads a dotted path out of an alert's JSON form.
fn alert_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    // Field names may contain dots only under `fields`; try the rest whole first.
    if let Some(rest) = path.strip_prefix("fields.") {
        return cur.get("fields")?.get(rest);
    }
    for seg in path.split('.') {
        cur = match cur {
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            other => other.get(seg)?,
        };
    }
    Some(cur)
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Compares alerts with the case's expectations.
pub fn check_expectations(alerts: &[Alert], case: &TestCase) -> Result<(), String> {
    let expect = &case.raw.expect;
    let want = expect.count.unwrap_or(expect.alerts.len());
    let summary = || {
        alerts
            .iter()
            .map(|a| format!("[{}] {}", a.severity, a.title))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if alerts.len() != want {
        return Err(format!(
            "expected {want} alert(s), got {}: {}",
            alerts.len(),
            summary()
        ));
    }
    for (i, (alert, fields)) in alerts.iter().zip(&expect.alerts).enumerate() {
        let json = serde_json::to_value(alert).map_err(|e| e.to_string())?;
        for (path, wanted) in fields {
            let (path, contains) = match path.strip_suffix("_contains") {
                Some(p) => (p, true),
                None => (path.as_str(), false),
            };
            let got = alert_path(&json, path);
            let ok = match (got, contains) {
                (Some(g), true) => show(g).contains(&show(wanted)),
                (Some(g), false) => g == wanted || show(g) == show(wanted),
                (None, _) => wanted.is_null(),
            };
            if !ok {
                return Err(format!(
                    "alert {}: {path}{}: expected {}, got {}",
                    i + 1,
                    if contains { " (contains)" } else { "" },
                    show(wanted),
                    got.map_or("nothing".to_owned(), show)
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
