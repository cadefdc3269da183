//! The rule file schema, stage one: raw serde structs exactly as written. Unknown fields are
//! errors. `docs/rules.md` documents every field; keep the two in step.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

/// A mapping that keeps its keys in file order (later entries may refer to earlier ones).
#[derive(Debug, Clone)]
pub struct OrderedMap<V>(pub Vec<(Spanned<String>, V)>);

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<OrderedMap<V>, M::Error> {
                let mut v = Vec::new();
                while let Some(e) = m.next_entry()? {
                    v.push(e);
                }
                Ok(OrderedMap(v))
            }
        }
        d.deserialize_map(V2(PhantomData))
    }
}

/// One string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single string.
    One(String),
    /// Several strings.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The strings, in order.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// One rule, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Unique id, lowercase words joined by `-`.
    pub id: Spanned<String>,
    /// One-line human title of the rule (not of the alert).
    pub title: String,
    /// What the rule detects and why it matters.
    #[serde(default)]
    pub description: String,
    /// Base severity: info, low, medium, high or critical.
    pub severity: Spanned<String>,
    /// Per-item severity: the first entry whose `when` holds gives the severity.
    #[serde(default)]
    pub severity_if: Vec<RawSeverityIf>,
    /// Free tags, e.g. MITRE ATT&CK technique ids.
    #[serde(default)]
    pub tags: Vec<String>,
    /// A runbook URL.
    #[serde(default)]
    pub runbook: Option<String>,
    /// Whether the rule runs unless the config enables it. Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// EventBridge pattern over the envelope.
    #[serde(rename = "match")]
    pub match_: Spanned<serde_json::Value>,
    /// Named CEL values computed per item, usable in `where`, templates and later lets.
    #[serde(default, rename = "let")]
    pub let_: OrderedMap<Spanned<String>>,
    /// CEL condition that must hold (per item when `for_each` is set).
    #[serde(default, rename = "where")]
    pub where_: Option<Spanned<String>>,
    /// Named paths to lists; the rule runs once per combination of items.
    #[serde(default)]
    pub for_each: OrderedMap<Spanned<OneOrMany>>,
    /// What to do when `for_each` yields no item: `skip` (default) or `once` (evaluate
    /// once with `item` null).
    #[serde(default)]
    pub when_empty: Option<Spanned<String>>,
    /// Allow-lists: events from these never alert.
    #[serde(default)]
    pub suppress: Option<Spanned<RawSuppress>>,
    /// Alert only when `count` matches happen within `window`.
    #[serde(default)]
    pub threshold: Option<Spanned<RawThreshold>>,
    /// One alert per key within `window`; repeats are counted.
    #[serde(default)]
    pub dedup: Option<Spanned<RawDedup>>,
    /// The alert's templates.
    pub alert: Spanned<RawAlert>,
    /// Remediation steps (they run only in the mode the config gives the rule; dry-run by
    /// default).
    #[serde(default)]
    pub remediate: Option<Spanned<RawRemediate>>,
    /// Embedded test cases.
    #[serde(default)]
    pub tests: Vec<Spanned<RawTest>>,
}

/// `remediate:`: a workflow of steps, with catch steps for failures.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRemediate {
    /// The steps, run in order.
    #[serde(default)]
    pub steps: Vec<Spanned<RawStep>>,
    /// Steps that run only when a failing step's `on_error` names them.
    #[serde(default)]
    pub catch: Vec<Spanned<RawStep>>,
}

/// One remediation step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// The step's id (default: the action's name).
    #[serde(default)]
    pub id: Option<String>,
    /// The action (`ec2-revoke-ingress`, ...).
    pub action: Spanned<String>,
    /// Parameters: strings are templates over the alert's variables.
    #[serde(default, rename = "with")]
    pub with_: OrderedMap<serde_json::Value>,
    /// A CEL condition: the step is planned only when it holds.
    #[serde(default)]
    pub when: Option<Spanned<String>>,
    /// Retry policy.
    #[serde(default)]
    pub retry: Option<RawRetry>,
    /// The step (usually in `catch`) to run when this one fails for good.
    #[serde(default)]
    pub on_error: Option<String>,
}

/// A step's retry policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Attempts in all (default 3).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// First delay, doubled each attempt (default 1s).
    #[serde(default)]
    pub backoff: Option<String>,
    /// Error classes that retry (default throttling, server, network).
    #[serde(default)]
    pub retry_on: Option<Vec<String>>,
}

/// `severity_if` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSeverityIf {
    /// CEL condition.
    pub when: Spanned<String>,
    /// Severity when it holds.
    pub severity: Spanned<String>,
}

/// `suppress:` block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSuppress {
    /// Principal ARN wildcard patterns.
    #[serde(default)]
    pub principals: Vec<String>,
    /// Account ids.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Source networks.
    #[serde(default)]
    pub cidrs: Vec<String>,
    /// User agent wildcard patterns.
    #[serde(default)]
    pub user_agents: Vec<String>,
    /// Whether the config's `trusted` lists also apply. Default true.
    #[serde(default)]
    pub trusted: Option<bool>,
}

/// `threshold:` block.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThreshold {
    /// How many matches make an alert.
    pub count: Option<u64>,
    /// The window, e.g. `10m`.
    pub window: Option<String>,
    /// CEL expressions; each is an independent grouping key.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// How late an event may arrive and still count, e.g. `5m`. Default `5m`.
    #[serde(default)]
    pub tolerance: Option<String>,
}

/// `dedup:` block.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDedup {
    /// CEL expressions joined into the key.
    pub key: Option<OneOrMany>,
    /// The window, e.g. `1h`.
    pub window: Option<String>,
    /// How late an event may arrive and still fold into its window. Default `5m`.
    #[serde(default)]
    pub tolerance: Option<String>,
}

/// `alert:` block.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlert {
    /// Title template (one line).
    pub title: Spanned<String>,
    /// Body template; a standard body is used when omitted.
    #[serde(default)]
    pub body: Option<Spanned<String>>,
    /// Extra named facts, as templates.
    #[serde(default)]
    pub fields: OrderedMap<Spanned<String>>,
    /// Target resources, as templates (empty results are dropped).
    #[serde(default)]
    pub resources: Vec<Spanned<String>>,
}

/// One embedded test case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTest {
    /// What the case shows.
    pub name: String,
    /// One event: a CloudTrail record or an EventBridge envelope.
    #[serde(default)]
    pub event: Option<serde_json::Value>,
    /// Several events, fed in order (for thresholds and dedup).
    #[serde(default)]
    pub events: Option<Vec<serde_json::Value>>,
    /// A file with one event, a list, or a `{"Records": [...]}` log file, relative to the
    /// rule file.
    #[serde(default)]
    pub file: Option<String>,
    /// Config overrides for this case (the same keys as trailwatch.yaml's own sections).
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// What must come out.
    pub expect: RawExpect,
}

/// Expected alerts of a test case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    /// How many alerts this rule raises (default: the number of `alerts` listed).
    #[serde(default)]
    pub count: Option<usize>,
    /// Expected fields of each alert, in order: dotted paths into the alert's JSON
    /// (`severity`, `fields.cidr`, `principal.name`), or `title_contains`/`body_contains`.
    #[serde(default)]
    pub alerts: Vec<BTreeMap<String, serde_json::Value>>,
}

/// Parses a positive duration like `500ms`, `90s`, `10m`, `1h`, `2d` or `1h30m`.
pub fn parse_duration(s: &str) -> Option<chrono::Duration> {
    parse_duration_or_zero(s).filter(|d| *d > chrono::Duration::zero())
}

/// Parses a duration that may be zero (`0s`), for tolerances.
pub fn parse_duration_or_zero(s: &str) -> Option<chrono::Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total_ms: i64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms_per_unit = match &rest[..unit] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        rest = &rest[unit..];
        total_ms = total_ms.checked_add(n.checked_mul(ms_per_unit)?)?;
    }
    Some(chrono::Duration::milliseconds(total_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let check = |s: &str, want: Option<i64>| {
            assert_eq!(parse_duration(s).map(|d| d.num_seconds()), want, "{s}");
        };
        check("90s", Some(90));
        assert_eq!(
            parse_duration("100ms").map(|d| d.num_milliseconds()),
            Some(100)
        );
        assert_eq!(
            parse_duration("1s500ms").map(|d| d.num_milliseconds()),
            Some(1500)
        );
        check("5", None);
        check("5x", None);
        check("10m", Some(600));
        check("1h30m", Some(5400));
        check("2d", Some(172_800));
        check("10", None);
        check("x", None);
        check("0s", None);
        assert_eq!(parse_duration_or_zero("0s"), Some(chrono::Duration::zero()));
    }
}
