//! The stateless half of evaluation, on the hot path: one pattern match over the raw bytes
//! for all rules; only matched events are parsed, expanded per item, checked with CEL and
//! rendered into candidate alerts.

use std::cell::OnceCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use cel_interpreter::Value as CelValue;
use cel_interpreter::objects::Key as CelKey;
use chrono::{DateTime, Utc};
use serde_json::Value;
use trailwatch_alert::{Alert, AlertOrigin, Principal, Severity, console_url};
use trailwatch_event::{Event, Preview};

use crate::cel::{to_cel, to_json, to_key_string};
use crate::compile::{RenderKit, Rule, RuleSet};
use crate::for_each::expand;
use crate::suppress::Subject;

/// What templates see: references into the event's facts, serialized straight into
/// template values (no intermediate JSON copy). `record`, `event` and `config` are already
/// template values, built once per event: serializing a template value into a template value
/// passes a handle, so a render does not convert the record again.
#[derive(serde::Serialize)]
struct TemplateContext<'a> {
    record: &'a minijinja::Value,
    event: &'a minijinja::Value,
    item: &'a Value,
    config: &'a minijinja::Value,
    principal: &'a Principal,
    account: &'a str,
    account_alias: Option<&'a str>,
    region: &'a str,
    source_ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    event_time: &'a str,
    event_name: &'a str,
    event_source: &'a str,
    event_id: &'a str,
    console_url: &'a str,
    severity: &'static str,
    rule: RuleInfo<'a>,
    #[serde(flatten)]
    vars: std::collections::BTreeMap<&'a str, &'a Value>,
}

#[derive(serde::Serialize)]
struct RuleInfo<'a> {
    id: &'a str,
    title: &'a str,
    description: &'a str,
}

/// Per-thread scratch space for [`RuleSet::evaluate`]; reuse it across events.
#[derive(Debug, Default)]
pub struct EvalScratch {
    matcher: trailwatch_pattern::Scratch,
    hits: Vec<usize>,
    /// Events whose JSON the matcher rejected.
    pub malformed: u64,
    /// CEL evaluation errors (a missing key in `where` and the like); such items raise nothing.
    pub cel_errors: u64,
    /// The last CEL error, for diagnostics.
    pub last_error: Option<String>,
    /// Events suppressed by an allow-list.
    pub suppressed: u64,
    /// `for_each` items dropped past the per-event cap.
    pub items_dropped: u64,
}

/// An alert that still has to pass the stateful gate (threshold and dedup).
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The alert as it will be sent, rendered now or once the gate passes it.
    pub alert: PendingAlert,
    /// Index of the rule in [`RuleSet::rules`].
    pub rule_index: usize,
    /// The event's time (`eventTime`), used by windows.
    pub time: DateTime<Utc>,
    /// Threshold group keys, one per `group_by` entry.
    pub groups: Vec<String>,
    /// The dedup key, when the rule has `dedup`.
    pub dedup: Option<String>,
}

impl Candidate {
    /// The alert's `event_time` (as the record gives it).
    pub fn event_time(&self) -> &str {
        match &self.alert {
            PendingAlert::Ready(a) => &a.event_time,
            PendingAlert::Deferred(d) => &d.event_time,
        }
    }

    /// The alert's `event_id`.
    pub fn event_id(&self) -> &str {
        match &self.alert {
            PendingAlert::Ready(a) => &a.event_id,
            PendingAlert::Deferred(d) => &d.event_id,
        }
    }

    /// The alert's rule id.
    pub fn rule_id(&self) -> &str {
        match &self.alert {
            PendingAlert::Ready(a) => &a.rule_id,
            PendingAlert::Deferred(d) => d.rules.get(d.rule_index).map_or("", |r| &r.id),
        }
    }

    /// The alert's idempotency key.
    pub fn dedup_key(&self) -> &str {
        match &self.alert {
            PendingAlert::Ready(a) => &a.dedup_key,
            PendingAlert::Deferred(d) => &d.dedup_key,
        }
    }

    /// The alert, rendered if it was not yet.
    pub fn into_alert(self) -> Alert {
        self.alert.into_alert()
    }
}

/// A candidate's alert. Rules with a threshold or dedup window defer rendering to the gate:
/// most of their candidates are only counted or folded there, and rendering is most of
/// what a matched event costs. A deferred alert renders exactly as it would have at once.
// Boxed: an ordered scan holds every candidate until the end, and an inline alert made
// each one 900 bytes (one allocation per candidate costs less than that memory).
#[derive(Debug, Clone)]
pub enum PendingAlert {
    /// Rendered.
    Ready(Box<Alert>),
    /// What rendering needs, kept until the gate passes the candidate.
    Deferred(Box<DeferredAlert>),
}

impl PendingAlert {
    /// The alert, rendering it now if it was deferred.
    pub fn into_alert(self) -> Alert {
        match self {
            PendingAlert::Ready(a) => *a,
            PendingAlert::Deferred(d) => d.render(),
        }
    }
}

/// The inputs of a deferred render: the event and what the rule bound for this item.
#[derive(Clone)]
pub struct DeferredAlert {
    rules: Arc<[Rule]>,
    kit: Arc<RenderKit>,
    rule_index: usize,
    event: Event,
    severity: Severity,
    item: Value,
    vars: Vec<(String, Value)>,
    steps_on: Vec<bool>,
    event_id: String,
    event_time: String,
    dedup_key: String,
}

impl std::fmt::Debug for DeferredAlert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeferredAlert")
            .field("rule_index", &self.rule_index)
            .field("event_id", &self.event_id)
            .field("dedup_key", &self.dedup_key)
            .finish_non_exhaustive()
    }
}

impl DeferredAlert {
    fn render(self) -> Alert {
        // (The index came from these very rules.)
        let rule = &self.rules[self.rule_index];
        let facts = Facts::new(&self.event, None);
        let bound = Bound {
            item: &self.item,
            vars: &self.vars,
            steps_on: &self.steps_on,
            dedup_key: &self.dedup_key,
        };
        self.kit
            .render(rule, &self.event, &facts, self.severity, &bound)
    }
}

/// An alert's idempotency key before repeats within one event are numbered.
fn base_dedup_key(rule_id: &str, event_id: &str, item: &Value) -> String {
    let item_text = if item.is_null() {
        String::new()
    } else {
        item.to_string()
    };
    format!("{rule_id}:{}", fnv64(&[event_id, &item_text]))
}

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Who made the call, from `userIdentity`.
pub fn principal_of(record: &Value) -> Principal {
    let ui = record.get("userIdentity").unwrap_or(&Value::Null);
    let kind = s(ui, "type").unwrap_or_default();
    let arn = s(ui, "arn");
    let issuer = ui
        .pointer("/sessionContext/sessionIssuer/userName")
        .and_then(Value::as_str);
    let session = arn
        .as_deref()
        .and_then(|a| a.rsplit('/').next())
        .filter(|_| kind == "AssumedRole");
    let name = match kind.as_str() {
        "Root" => "root".to_owned(),
        "IAMUser" => s(ui, "userName").unwrap_or_default(),
        "AssumedRole" => match (issuer, session) {
            (Some(i), Some(sn)) => format!("{i}/{sn}"),
            (Some(i), None) => i.to_owned(),
            (None, _) => arn.clone().unwrap_or_default(),
        },
        "AWSService" => s(ui, "invokedBy").unwrap_or_else(|| "AWS service".to_owned()),
        "FederatedUser" => issuer
            .map(str::to_owned)
            .or_else(|| s(ui, "principalId"))
            .unwrap_or_default(),
        _ => s(ui, "userName")
            .or_else(|| issuer.map(str::to_owned))
            .or_else(|| s(ui, "principalId"))
            .or_else(|| {
                record
                    .pointer("/additionalEventData/UserName")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_default(),
    };
    Principal {
        kind,
        arn,
        name,
        account_id: s(ui, "accountId"),
        access_key_id: s(ui, "accessKeyId").filter(|k| !k.is_empty()),
    }
}

/// The envelope as a CEL value, sharing the already converted record as `detail`.
fn envelope_to_cel(envelope: &Value, record_cel: &CelValue) -> CelValue {
    let Value::Object(o) = envelope else {
        return to_cel(envelope);
    };
    let map = o
        .iter()
        .map(|(k, v)| {
            let v = if k == "detail" {
                record_cel.clone()
            } else {
                to_cel(v)
            };
            (
                cel_interpreter::objects::Key::String(std::sync::Arc::new(k.clone())),
                v,
            )
        })
        .collect::<std::collections::HashMap<_, _>>();
    CelValue::Map(cel_interpreter::objects::Map {
        map: std::sync::Arc::new(map),
    })
}

/// FNV-1a 64, for stable short keys.
pub(crate) fn fnv64(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The record members [`Facts::new`] reads (principal, time, account, region, caller).
const FACT_MEMBERS: [&str; 7] = [
    "userIdentity",
    "additionalEventData",
    "eventTime",
    "recipientAccountId",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
];

/// The record with only the members in `keep` or [`FACT_MEMBERS`], the rest skipped
/// unparsed (as a whole parse would, a repeated member keeps its last value). `None` when
/// the text is not an object.
fn partial_record(text: &str, keep: &BTreeSet<String>) -> Option<Value> {
    use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

    /// A key, borrowed unless it had escapes.
    struct Key<'a>(std::borrow::Cow<'a, str>);
    impl<'de> de::Deserialize<'de> for Key<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Key<'de>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a key")
                }
                fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                    Ok(Key(v.into()))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                    Ok(Key(v.to_owned().into()))
                }
            }
            d.deserialize_str(V)
        }
    }

    struct Members<'k>(&'k BTreeSet<String>);
    impl<'de> Visitor<'de> for Members<'_> {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a record object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = serde_json::Map::new();
            while let Some(Key(key)) = map.next_key()? {
                if self.0.contains(key.as_ref()) || FACT_MEMBERS.contains(&key.as_ref()) {
                    out.insert(key.into_owned(), map.next_value()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(Value::Object(out))
        }
    }

    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_map(Members(keep)).ok()
}

/// The per-event facts shared by every rule that matched it.
struct Facts {
    /// The envelope, parsed once; the record is its `detail` (parsing the record apart
    /// would parse it twice, since most rules also see `event`).
    envelope: Value,
    /// Built on first use: CEL values once a rule that is not suppressed evaluates, template
    /// values once an alert renders (most matched events fail their rule's `where`).
    record_cel: OnceCell<CelValue>,
    envelope_cel: OnceCell<CelValue>,
    /// `record` and `event` as template values, shared by every render.
    record_tpl: OnceCell<minijinja::Value>,
    envelope_tpl: OnceCell<minijinja::Value>,
    principal: Principal,
    event_id: String,
    event_time: String,
    time: DateTime<Utc>,
    account: String,
    region: String,
    source_ip: Option<String>,
    user_agent: Option<String>,
    event_name: String,
    event_source: String,
    role_arn: Option<String>,
    /// Whether the event is a CloudTrail record (has an eventID the console can open).
    cloudtrail: bool,
}

/// The envelope as a template value, sharing the already converted record as `detail`.
/// Members keep the envelope's own order, as a direct conversion would.
fn envelope_to_template(envelope: &Value, record_tpl: &minijinja::Value) -> minijinja::Value {
    let Value::Object(o) = envelope else {
        return template_value(envelope);
    };
    minijinja::Value::from_pairs(o.iter().map(|(k, v)| {
        let v = if k == "detail" {
            record_tpl.clone()
        } else {
            template_value(v)
        };
        (k.as_str(), v)
    }))
}

fn template_value(v: &impl serde::Serialize) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(v))
}

/// A console link for events that are not CloudTrail records (AWS Config, AWS Health):
/// the page that shows them.
fn service_console_url(envelope: &Value, region: &str) -> String {
    let source = envelope.get("source").and_then(Value::as_str).unwrap_or("");
    match source {
        "aws.health" => {
            "https://health.aws.amazon.com/health/home#/account/dashboard/open-issues".to_owned()
        }
        "aws.config" => {
            let rule = envelope
                .pointer("/detail/configRuleName")
                .and_then(Value::as_str)
                .unwrap_or("");
            format!(
                "https://{region}.console.aws.amazon.com/config/home?region={region}#/rules/details?configRuleName={rule}"
            )
        }
        _ => format!("https://{region}.console.aws.amazon.com/console/home?region={region}"),
    }
}

impl Facts {
    /// The facts of `event`. With `keep`, the envelope holds only `detail`, and `detail`
    /// only the members in `keep` and the ones the facts themselves read
    /// ([`FACT_MEMBERS`]).
    fn new(event: &Event, keep: Option<&BTreeSet<String>>) -> Facts {
        let envelope = match keep.and_then(|keep| partial_record(event.detail(), keep)) {
            Some(record) => Value::Object([("detail".to_owned(), record)].into_iter().collect()),
            None => event.to_value(),
        };
        let record = envelope.get("detail").unwrap_or(&Value::Null);
        let meta = event.meta();
        let principal = principal_of(record);
        let event_time = s(record, "eventTime")
            .unwrap_or_else(|| meta.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let time = DateTime::parse_from_rfc3339(&event_time)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(meta.time);
        let account = s(record, "recipientAccountId")
            .or_else(|| Some(meta.account.clone()).filter(|a| !a.is_empty()))
            .or_else(|| principal.account_id.clone())
            .unwrap_or_default();
        Facts {
            record_cel: OnceCell::new(),
            envelope_cel: OnceCell::new(),
            record_tpl: OnceCell::new(),
            envelope_tpl: OnceCell::new(),
            event_id: meta.event_id.clone().unwrap_or_else(|| meta.id.clone()),
            region: s(record, "awsRegion").unwrap_or_else(|| meta.region.clone()),
            source_ip: s(record, "sourceIPAddress"),
            user_agent: s(record, "userAgent"),
            event_name: meta
                .event_name
                .clone()
                .unwrap_or_else(|| meta.detail_type.clone()),
            event_source: meta
                .event_source
                .clone()
                .unwrap_or_else(|| meta.source.clone()),
            role_arn: record
                .pointer("/userIdentity/sessionContext/sessionIssuer/arn")
                .and_then(Value::as_str)
                .map(str::to_owned),
            cloudtrail: meta.event_id.is_some(),
            principal,
            event_time,
            time,
            account,
            envelope,
        }
    }

    /// The record (`record` in rules and templates).
    fn record(&self) -> &Value {
        self.envelope.get("detail").unwrap_or(&Value::Null)
    }

    fn record_cel(&self) -> &CelValue {
        self.record_cel.get_or_init(|| to_cel(self.record()))
    }

    /// `record` as a CEL value with just `members` (all of it for `None`). A rule's CEL
    /// reads nothing else (see `cel_uses`), and most read one or two members: converting
    /// only those is most of the saving on events whose rule only counts them.
    fn record_cel_reading(&self, members: Option<&BTreeSet<String>>) -> CelValue {
        let (Some(members), Value::Object(record), None) =
            (members, self.record(), self.record_cel.get())
        else {
            return self.record_cel().clone();
        };
        let map: HashMap<CelKey, CelValue> = members
            .iter()
            .filter_map(|name| {
                let value = record.get(name)?;
                Some((CelKey::String(Arc::new(name.clone())), to_cel(value)))
            })
            .collect();
        CelValue::Map(cel_interpreter::objects::Map { map: Arc::new(map) })
    }

    fn envelope_cel(&self) -> &CelValue {
        self.envelope_cel
            .get_or_init(|| envelope_to_cel(&self.envelope, self.record_cel()))
    }

    fn record_tpl(&self) -> &minijinja::Value {
        self.record_tpl
            .get_or_init(|| template_value(self.record()))
    }

    fn envelope_tpl(&self) -> &minijinja::Value {
        self.envelope_tpl
            .get_or_init(|| envelope_to_template(&self.envelope, self.record_tpl()))
    }
}

/// What one item of a rule bound: the `for_each` item, the variables (`for_each` names and
/// lets), which remediation steps passed their `when`, and the item's dedup key.
#[derive(Clone, Copy)]
struct Bound<'a> {
    item: &'a Value,
    vars: &'a [(String, Value)],
    steps_on: &'a [bool],
    /// The alert's idempotency key, numbered when alike items of one event repeat it.
    dedup_key: &'a str,
}

impl RuleSet {
    /// Matches one event against every rule and returns the candidate alerts. Pure and
    /// `&self`: call it from many threads, each with its own scratch.
    pub fn evaluate(&self, event: &Event, scratch: &mut EvalScratch) -> Vec<Candidate> {
        if !self.may_match(event) {
            return Vec::new();
        }
        let mut hits = std::mem::take(&mut scratch.hits);
        if self
            .matcher
            .matches_with(event.json().as_bytes(), &mut scratch.matcher, &mut hits)
            .is_err()
        {
            scratch.malformed += 1;
            scratch.hits = hits;
            return Vec::new();
        }
        if hits.is_empty() {
            scratch.hits = hits;
            return Vec::new();
        }
        hits.sort_unstable();
        // Parse only what the matched rules read, when every one of them says what that is.
        let keep = hits.iter().try_fold(BTreeSet::new(), |keep, &i| {
            crate::cel_uses::union(Some(keep), self.rules.get(i)?.facts_members.clone())
        });
        let facts = Facts::new(event, keep.as_ref());
        let mut out = Vec::new();
        for &i in &hits {
            if let Some(rule) = self.rules.get(i) {
                self.evaluate_rule(i, rule, event, &facts, scratch, &mut out);
            }
        }
        scratch.hits = hits;
        out
    }

    /// The screen's verdict: false when no pattern can match this event, judged from the
    /// fields its decoder already read, so its bytes need not be scanned.
    fn may_match(&self, event: &Event) -> bool {
        self.screen.may_match(&event.known_fields())
    }

    /// The same verdict before the event is built, from a decoder's [`Preview`]: false
    /// means [`RuleSet::evaluate`] would find nothing, so the event need not be built.
    pub fn may_match_preview(&self, preview: &Preview<'_>) -> bool {
        self.screen.may_match(&preview.known)
    }

    fn evaluate_rule(
        &self,
        index: usize,
        rule: &Rule,
        event: &Event,
        f: &Facts,
        scratch: &mut EvalScratch,
        out: &mut Vec<Candidate>,
    ) {
        let subject = Subject {
            principal_arns: [f.principal.arn.as_deref(), f.role_arn.as_deref()],
            account: &f.account,
            source_ip: f.source_ip.as_deref(),
            user_agent: f.user_agent.as_deref(),
        };
        if !rule.suppress.is_empty() && rule.suppress.reason(&subject).is_some() {
            scratch.suppressed += 1;
            return;
        }
        let (mut combos, dropped) = if rule.for_each.is_empty() {
            (vec![Vec::new()], 0)
        } else {
            expand(
                &rule.for_each,
                &[("record", f.record()), ("event", &f.envelope)],
            )
        };
        if combos.is_empty() && rule.once_when_empty {
            // `when_empty: once`: evaluate once with every binding null.
            combos.push(
                rule.for_each
                    .iter()
                    .map(|b| (b.name.clone(), Value::Null))
                    .collect(),
            );
        }
        scratch.items_dropped += dropped as u64;
        let mut keys_seen: Vec<String> = Vec::new();
        let record_cel = f.record_cel_reading(rule.record_members.as_ref());
        for combo in combos {
            let mut ctx = self.root.new_inner_scope();
            ctx.add_variable_from_value("record", record_cel.clone());
            if rule.uses_event {
                ctx.add_variable_from_value("event", f.envelope_cel().clone());
            }
            let item = combo.last().map(|(_, v)| v.clone()).unwrap_or(Value::Null);
            // (With `when_empty: once` every binding is null.)
            ctx.add_variable_from_value("item", to_cel(&item));
            let mut vars: Vec<(String, Value)> = Vec::new();
            for (name, v) in &combo {
                ctx.add_variable_from_value(name.clone(), to_cel(v));
                vars.push((name.clone(), v.clone()));
            }
            let mut failed = None;
            for (name, expr) in &rule.lets {
                match expr.eval(&ctx) {
                    Ok(v) => {
                        vars.push((name.clone(), to_json(&v)));
                        ctx.add_variable_from_value(name.clone(), v);
                    }
                    Err(e) => {
                        failed = Some(format!("rule {}: let {name}: {e}", rule.id));
                        break;
                    }
                }
            }
            if let Some(e) = failed {
                scratch.cel_errors += 1;
                scratch.last_error = Some(e);
                continue;
            }
            if let Some(w) = &rule.where_ {
                match w.eval_bool(&ctx) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        scratch.cel_errors += 1;
                        scratch.last_error = Some(format!("rule {}: where: {e}", rule.id));
                        continue;
                    }
                }
            }
            let mut severity = rule.severity;
            if rule.severity_override.is_none() {
                for (cond, sev) in &rule.severity_if {
                    if cond.eval_bool(&ctx).unwrap_or(false) {
                        severity = *sev;
                        break;
                    }
                }
            }
            let eval_keys = |exprs: &[crate::cel::CelExpr]| -> Vec<String> {
                exprs
                    .iter()
                    .map(|e| e.eval(&ctx).map(|v| to_key_string(&v)).unwrap_or_default())
                    .collect()
            };
            let groups = match &rule.threshold {
                Some((_, g)) if g.is_empty() => vec![String::new()],
                Some((_, g)) => eval_keys(g),
                None => Vec::new(),
            };
            let dedup = rule.dedup.as_ref().map(|(_, k)| {
                if k.is_empty() {
                    String::new()
                } else {
                    eval_keys(k).join("|")
                }
            });
            let steps_on: Vec<bool> = rule
                .remediation
                .iter()
                .flat_map(|w| w.conditions())
                .map(|when| when.is_none_or(|c| c.eval_bool(&ctx).unwrap_or(false)))
                .collect();
            // Two items of one event can look alike (the same range in two permissions):
            // number repeats so every alert keeps its own idempotency key.
            let base = base_dedup_key(&rule.id, &f.event_id, &item);
            let mut dedup_key = base.clone();
            let mut n = 1;
            while keys_seen.contains(&dedup_key) {
                n += 1;
                dedup_key = format!("{base}#{n}");
            }
            keys_seen.push(dedup_key.clone());
            let alert = if rule.is_stateful() {
                PendingAlert::Deferred(Box::new(DeferredAlert {
                    rules: self.rules.clone(),
                    kit: self.kit.clone(),
                    rule_index: index,
                    event: event.clone(),
                    severity,
                    item,
                    vars,
                    steps_on,
                    event_id: f.event_id.clone(),
                    event_time: f.event_time.clone(),
                    dedup_key,
                }))
            } else {
                let bound = Bound {
                    item: &item,
                    vars: &vars,
                    steps_on: &steps_on,
                    dedup_key: &dedup_key,
                };
                PendingAlert::Ready(Box::new(self.kit.render(rule, event, f, severity, &bound)))
            };
            out.push(Candidate {
                alert,
                rule_index: index,
                time: f.time,
                groups,
                dedup,
            });
        }
    }
}

impl RenderKit {
    fn render(
        &self,
        rule: &Rule,
        event: &Event,
        f: &Facts,
        severity: Severity,
        bound: &Bound<'_>,
    ) -> trailwatch_alert::Alert {
        let Bound {
            item,
            vars,
            steps_on,
            dedup_key,
        } = *bound;
        let alias = self.accounts.get(&f.account).cloned();
        let url = if f.cloudtrail {
            console_url(&f.region, &f.event_id)
        } else {
            service_console_url(&f.envelope, &f.region)
        };
        let ctx = TemplateContext {
            record: f.record_tpl(),
            event: f.envelope_tpl(),
            item,
            config: &self.config_tpl,
            principal: &f.principal,
            account: &f.account,
            account_alias: alias.as_deref(),
            region: &f.region,
            source_ip: f.source_ip.as_deref(),
            user_agent: f.user_agent.as_deref(),
            event_time: &f.event_time,
            event_name: &f.event_name,
            event_source: &f.event_source,
            event_id: &f.event_id,
            console_url: &url,
            severity: severity.as_str(),
            rule: RuleInfo {
                id: &rule.id,
                title: &rule.title,
                description: &rule.description,
            },
            vars: vars.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        };
        let early = minijinja::Value::from(minijinja::value::Serde(&ctx));
        let mut fields = std::collections::BTreeMap::new();
        for name in &rule.fields {
            let v = self
                .templates
                .render(&format!("{}#field#{name}", rule.id), &early);
            fields.insert(name.clone(), v);
        }
        let resources: Vec<String> = (0..rule.resources)
            .map(|i| {
                self.templates
                    .render(&format!("{}#resource#{i}", rule.id), &early)
            })
            .filter(|r| !r.trim().is_empty())
            .collect();
        let remediation = rule
            .remediation
            .as_ref()
            .and_then(|w| w.plan(&self.templates, &early, steps_on));
        let late = minijinja::value::merge_maps([
            minijinja::context! { fields => &fields, resources => &resources },
            early,
        ]);
        let title = self.templates.render(&format!("{}#title", rule.id), &late);
        let facts = self.templates.facts(&late);
        let body = if rule.has_body {
            let b = self.templates.render(&format!("{}#body", rule.id), &late);
            format!("{}\n\n{facts}", b.trim_end())
        } else {
            facts
        };
        let item_opt = (!item.is_null()).then(|| item.clone());
        let prov = event.provenance();
        Alert {
            rule_id: rule.id.clone(),
            severity,
            title: title.lines().next().unwrap_or("").trim().to_owned(),
            body,
            event_id: f.event_id.clone(),
            event_time: f.event_time.clone(),
            event_source: f.event_source.clone(),
            event_name: f.event_name.clone(),
            account: f.account.clone(),
            account_alias: alias,
            region: f.region.clone(),
            principal: f.principal.clone(),
            source_ip: f.source_ip.clone(),
            user_agent: f.user_agent.clone(),
            resources,
            console_url: url,
            tags: rule.tags.clone(),
            runbook: rule.runbook.clone(),
            fields,
            item: item_opt,
            dedup_key: dedup_key.to_owned(),
            remediation,
            repeats: 0,
            origin: AlertOrigin {
                source: prov.origin.to_string(),
                record_index: prov.record_index,
                message_id: prov.message_id.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every file under `dir`, recursively, sorted.
    fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                files_under(&p, out);
            } else {
                out.push(p);
            }
        }
    }

    /// Every event decoded from `../shared/data/cloudtrail`; `None` (and a note) when that
    /// folder is absent, as in a plain clone.
    fn shared_events() -> Option<Vec<Event>> {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/cloudtrail");
        if !dir.is_dir() {
            eprintln!("skipped: {} is absent", dir.display());
            return None;
        }
        let mut files = Vec::new();
        files_under(&dir, &mut files);
        let limits = trailwatch_event::Limits::default();
        let mut events = Vec::new();
        for file in &files {
            let bytes = std::fs::read(file).expect("readable");
            let (items, _) =
                trailwatch_event::decode_slice(&bytes, &file.display().to_string(), &limits);
            events.extend(items.into_iter().filter_map(|item| match item {
                trailwatch_event::Item::Event(event) => Some(event),
                _ => None,
            }));
        }
        Some(events)
    }

    /// The screen is only a shortcut: over every real event in ../shared, an event it rules
    /// out matches no pattern of the built-in pack. It must also rule out most of them, or it
    /// is not worth having.
    #[test]
    fn the_screen_never_rules_out_a_matching_event() {
        let Some(shared) = shared_events() else {
            return;
        };
        let config = trailwatch_config::Config::default();
        let set = RuleSet::compile(&crate::builtin_sources(), &config).expect("built-in pack");
        assert!(
            !set.screen.is_open(),
            "every built-in rule names its events"
        );
        let (mut events, mut ruled_out, mut matched) = (0u64, 0u64, 0u64);
        for event in &shared {
            events += 1;
            let hits = set
                .matcher
                .matches(event.json().as_bytes())
                .unwrap_or_default();
            if !hits.is_empty() {
                matched += 1;
            }
            if !set.may_match(event) {
                ruled_out += 1;
                assert!(
                    hits.is_empty(),
                    "{}: ruled out, yet rules {hits:?} match",
                    event.provenance()
                );
            }
        }
        eprintln!("{events} events, {matched} matched, {ruled_out} ruled out by the screen");
        assert!(events > 1000, "the shared data holds thousands of events");
        assert!(matched > 0);
        assert!(
            ruled_out * 2 > events,
            "the screen rules out only {ruled_out} of {events}"
        );
    }

    #[test]
    fn ruleset_is_send_and_sync() {
        fn is<T: Send + Sync>() {}
        is::<RuleSet>();
    }

    #[test]
    fn principals() {
        let check = |ui: Value, want: &str| {
            assert_eq!(principal_of(&json!({"userIdentity": ui})).name, want);
        };
        check(
            json!({"type": "Root", "arn": "arn:aws:iam::1:root"}),
            "root",
        );
        check(json!({"type": "IAMUser", "userName": "bob"}), "bob");
        check(
            json!({"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/Admin/alice",
                   "sessionContext": {"sessionIssuer": {"userName": "Admin"}}}),
            "Admin/alice",
        );
        check(
            json!({"type": "AWSService", "invokedBy": "config.amazonaws.com"}),
            "config.amazonaws.com",
        );
    }

    /// A stateful rule's alerts render only when the gate passes them. They must come out
    /// exactly as the same rule without state renders them at once: items, lets,
    /// `severity_if`, fields, resources, the remediation plan and numbered dedup keys.
    #[test]
    fn a_deferred_alert_renders_as_it_would_at_once() {
        let id = "ec2-security-group-ingress-open-to-world";
        let source = crate::builtin_sources()
            .into_iter()
            .find(|s| s.origin == format!("builtin:{id}.yaml"))
            .expect("built-in rule");
        let stateful = crate::RuleSource::new(
            "stateful.yaml",
            format!(
                "{}\ndedup:\n  key: [record.eventID]\n  window: 1h\n",
                source.text
            ),
        );
        let config = trailwatch_config::Config::default();
        let at_once = RuleSet::compile(&[source], &config).expect("rule compiles");
        let deferred = RuleSet::compile(&[stateful], &config).expect("rule compiles");
        let open = json!({"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
            "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0", "description": "ssh"}]},
            "ipv6Ranges": {"items": [{"cidrIpv6": "::/0"}]}});
        let record = json!({
            "eventVersion": "1.08", "eventTime": "2024-03-04T05:06:07Z",
            "eventSource": "ec2.amazonaws.com", "eventName": "AuthorizeSecurityGroupIngress",
            "awsRegion": "eu-west-1", "recipientAccountId": "123456789012",
            "eventID": "0f0e0d0c-0000-4000-8000-000000000001", "eventType": "AwsApiCall",
            "sourceIPAddress": "203.0.113.9", "userAgent": "aws-cli/2",
            "userIdentity": {"type": "IAMUser", "userName": "bob", "accountId": "123456789012",
                "arn": "arn:aws:iam::123456789012:user/bob"},
            // The same permission twice: alike items get numbered keys.
            "requestParameters": {"groupId": "sg-1", "ipPermissions": {"items": [open, open]}}
        });
        let event = crate::testing::event_from_value(&record, "t.json").expect("event");
        let mut scratch = EvalScratch::default();
        let now: Vec<Alert> = at_once
            .evaluate(&event, &mut scratch)
            .into_iter()
            .map(|c| match c.alert {
                PendingAlert::Ready(a) => *a,
                PendingAlert::Deferred(_) => panic!("a rule without state renders at once"),
            })
            .collect();
        let later: Vec<Candidate> = deferred.evaluate(&event, &mut scratch);
        assert_eq!(now.len(), 4, "two permissions, two ranges each");
        assert_eq!(later.len(), now.len());
        for (c, a) in later.into_iter().zip(&now) {
            assert!(matches!(c.alert, PendingAlert::Deferred(_)));
            assert_eq!(
                (c.event_time(), c.event_id(), c.rule_id(), c.dedup_key()),
                (&*a.event_time, &*a.event_id, &*a.rule_id, &*a.dedup_key)
            );
            assert_eq!(&c.into_alert(), a);
        }
        assert!(now.iter().any(|a| a.dedup_key.ends_with("#2")));
        assert!(now.iter().all(|a| a.remediation.is_some()));
    }

    /// Reading only the record members a rule's CEL names (and parsing only those, for
    /// stateful rules) gives the very candidates that the whole record gives: over every
    /// real event in ../shared, with the built-in pack.
    #[test]
    fn converting_only_the_members_read_changes_no_outcome() {
        let Some(shared) = shared_events() else {
            return;
        };
        let config = trailwatch_config::Config::default();
        let projected = RuleSet::compile(&crate::builtin_sources(), &config).expect("pack");
        assert!(
            projected.rules.iter().any(|r| r.record_members.is_some()),
            "some built-in rule reads only some members"
        );
        let burst = projected
            .rule("access-denied-burst")
            .expect("built-in rule");
        assert!(burst.facts_members.is_some(), "a threshold on userIdentity");
        let mut whole = RuleSet::compile(&crate::builtin_sources(), &config).expect("pack");
        for rule in Arc::get_mut(&mut whole.rules).expect("not shared yet") {
            rule.record_members = None;
            rule.uses_event = true;
            rule.facts_members = None;
        }
        let mut scratch = EvalScratch::default();
        let mut candidates = 0;
        for event in &shared {
            let outcome = |set: &RuleSet, scratch: &mut EvalScratch| {
                set.evaluate(event, scratch)
                    .into_iter()
                    .map(|c| (c.groups.clone(), c.dedup.clone(), c.into_alert()))
                    .collect::<Vec<_>>()
            };
            let a = outcome(&projected, &mut scratch);
            assert_eq!(a, outcome(&whole, &mut scratch), "{}", event.provenance());
            candidates += a.len();
        }
        assert!(candidates > 50, "only {candidates} candidates");
    }
}
