//! Stage two: raw rules become compiled [`Rule`]s, and all of them one [`RuleSet`] with a
//! single pattern matcher. Every problem in every rule is reported, with file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cel_interpreter::Context;
use serde_saphyr::Spanned;
use trailwatch_alert::Severity;
use trailwatch_config::yaml::{self, Piece, TopKind};
use trailwatch_config::{Cidr, Config, Glob, Pos};
use trailwatch_pattern::{Matcher, Pattern};

use crate::RuleSource;
use crate::cel::{CelExpr, root_context};
use crate::error::{Errs, RuleError, RuleErrorKind, RuleErrors, pos_of};
use crate::for_each::{Binding, Path};
use crate::schema::{RawRule, RawTest, parse_duration, parse_duration_or_zero};
use crate::suppress::Suppress;
use crate::templates::{BASE_VARIABLES, Templates, allowed};
use crate::window::{DedupSpec, ThresholdSpec};

/// Names a rule may not use for `for_each` or `let` bindings: every template variable, plus
/// the alert parts templates fill.
fn is_reserved(name: &str) -> bool {
    BASE_VARIABLES.contains(&name) || ["fields", "resources"].contains(&name)
}

/// Default lateness tolerance for windows.
const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// Unique id.
    pub id: String,
    /// The rule's title.
    pub title: String,
    /// What it detects.
    pub description: String,
    /// Base severity (after the config's override).
    pub severity: Severity,
    /// Tags (MITRE ATT&CK ids and the like).
    pub tags: Vec<String>,
    /// Runbook URL.
    pub runbook: Option<String>,
    /// The file it came from.
    pub origin: String,
    /// The line its `id` is on.
    pub line: usize,
    /// Whether it runs (file flag and config enable/disable applied).
    pub enabled: bool,
    /// The `match` pattern as JSON.
    pub pattern: serde_json::Value,
    /// Where the pattern is.
    pub pattern_pos: Pos,
    pub(crate) severity_if: Vec<(CelExpr, Severity)>,
    pub(crate) severity_override: Option<Severity>,
    pub(crate) lets: Vec<(String, CelExpr)>,
    pub(crate) where_: Option<CelExpr>,
    pub(crate) for_each: Vec<Binding>,
    pub(crate) once_when_empty: bool,
    pub(crate) suppress: Suppress,
    pub(crate) threshold: Option<(ThresholdSpec, Vec<CelExpr>)>,
    pub(crate) dedup: Option<(DedupSpec, Vec<CelExpr>)>,
    pub(crate) fields: Vec<String>,
    pub(crate) resources: usize,
    pub(crate) has_body: bool,
    pub(crate) remediation: Option<crate::remediate::Workflow>,
    /// The `record` members the rule's CEL reads (`None`: the whole record), so a matched
    /// event converts only those; and whether its CEL mentions `event` at all.
    pub(crate) record_members: crate::cel_uses::Members,
    pub(crate) uses_event: bool,
    /// The record members a matched event must parse for this rule: set only for rules
    /// whose alerts render later (stateful), whose CEL reads some members and not `event`,
    /// and whose `for_each` starts at record members. `None`: parse the whole event.
    pub(crate) facts_members: crate::cel_uses::Members,
    /// Embedded test cases.
    pub tests: Vec<TestCase>,
    /// The rule's own YAML, padded to keep line numbers (to recompile it alone).
    pub source: String,
}

/// One embedded test case, kept for the runner.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// Where the case is.
    pub pos: Pos,
    /// The case as written.
    pub raw: RawTest,
}

impl Rule {
    /// Every CEL expression of the rule.
    fn cel_exprs(&self) -> impl Iterator<Item = &CelExpr> {
        self.lets
            .iter()
            .map(|(_, e)| e)
            .chain(&self.where_)
            .chain(self.severity_if.iter().map(|(e, _)| e))
            .chain(self.threshold.iter().flat_map(|(_, g)| g))
            .chain(self.dedup.iter().flat_map(|(_, k)| k))
            .chain(
                self.remediation
                    .iter()
                    .flat_map(|w| w.conditions())
                    .flatten(),
            )
    }

    /// Works out [`Rule::record_members`] and [`Rule::uses_event`] from the expressions.
    fn note_cel_uses(mut self) -> Rule {
        let mut members = Some(Default::default());
        let mut uses_event = false;
        for e in self.cel_exprs() {
            members = crate::cel_uses::union(members, e.members_read("record"));
            uses_event |= e.mentions("event");
        }
        let mut facts = members
            .clone()
            .filter(|_| self.is_stateful() && !uses_event);
        for path in self.for_each.iter().flat_map(|b| &b.paths) {
            let first = match (path.root.as_str(), path.segments.first()) {
                ("record", Some(first)) => Some([first.clone()].into()),
                ("record" | "event", _) => None,
                // Rooted at an earlier binding, itself rooted at the record.
                _ => Some(Default::default()),
            };
            facts = crate::cel_uses::union(facts, first);
        }
        self.record_members = members;
        self.uses_event = uses_event;
        self.facts_members = facts;
        self
    }

    /// Whether the rule keeps state (a threshold or dedup window) in the gate.
    pub fn is_stateful(&self) -> bool {
        self.threshold.is_some() || self.dedup.is_some()
    }

    /// The threshold settings, when the rule has one.
    pub fn threshold(&self) -> Option<ThresholdSpec> {
        self.threshold.as_ref().map(|(s, _)| *s)
    }

    /// The dedup settings, when the rule has one.
    pub fn dedup(&self) -> Option<DedupSpec> {
        self.dedup.as_ref().map(|(s, _)| *s)
    }

    /// The remediation actions the rule can run (empty without `remediate:`).
    pub fn remediation_actions(
        &self,
    ) -> std::collections::BTreeSet<trailwatch_actions::ActionKind> {
        self.remediation
            .as_ref()
            .map(|w| w.actions())
            .unwrap_or_default()
    }
}

/// Compiled rules and one pattern matcher for all of them. `Send + Sync`: share it.
pub struct RuleSet {
    /// Shared with deferred alerts, which render after the gate has passed them.
    pub(crate) rules: Arc<[Rule]>,
    pub(crate) matcher: Matcher<usize>,
    /// Rules out, from the fields the decoder already knows, events no pattern can match.
    pub(crate) screen: trailwatch_pattern::Screen,
    pub(crate) root: Context<'static>,
    /// What rendering an alert needs besides the rule, shared with deferred alerts.
    pub(crate) kit: Arc<RenderKit>,
}

/// The templates and what they see beside the event: account aliases and `config`.
pub(crate) struct RenderKit {
    pub(crate) templates: Templates,
    pub(crate) accounts: BTreeMap<String, String>,
    /// `config` for templates, converted once.
    pub(crate) config_tpl: minijinja::Value,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field(
                "rules",
                &self.rules.iter().map(|r| &r.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn severity(s: &Spanned<String>, errs: &mut Errs<'_>) -> Severity {
    match s.value.parse::<Severity>() {
        Ok(sev) => sev,
        Err(e) => {
            errs.push(pos_of(s), RuleErrorKind::Invalid, e.to_string());
            Severity::Info
        }
    }
}

pub(crate) fn cel(s: &Spanned<String>, errs: &mut Errs<'_>) -> Option<CelExpr> {
    match CelExpr::compile(&s.value, pos_of(s)) {
        Ok(e) => Some(e),
        Err(reason) => {
            errs.push(pos_of(s), RuleErrorKind::Cel, reason);
            None
        }
    }
}

fn cel_list(exprs: &[String], pos: Pos, what: &str, errs: &mut Errs<'_>) -> Vec<CelExpr> {
    let mut out = Vec::new();
    for e in exprs {
        match CelExpr::compile(e, pos) {
            Ok(c) => out.push(c),
            Err(reason) => errs.push(pos, RuleErrorKind::Cel, format!("{what}: {reason}")),
        }
    }
    out
}

/// Finds the `id:` value in a rule's text, for errors in rules that did not parse.
fn sniff_id(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let t = l.trim_start().trim_start_matches("- ");
        let v = t.strip_prefix("id:")?.trim().trim_matches(['"', '\'']);
        (!v.is_empty()).then(|| v.to_owned())
    })
}

/// The top-level fields of a rule (keep in step with [`RawRule`]).
pub(crate) const RULE_FIELDS: &[&str] = &[
    "id",
    "title",
    "description",
    "severity",
    "severity_if",
    "tags",
    "runbook",
    "enabled",
    "match",
    "let",
    "where",
    "for_each",
    "when_empty",
    "suppress",
    "threshold",
    "dedup",
    "alert",
    "remediate",
    "tests",
];

/// Parses one rule. Unknown top-level fields are reported and blanked out, and the rest is
/// parsed again, so that they do not hide the rule's other errors.
fn parse_rule(text: &str, origin: &str, errors: &mut Vec<RuleError>) -> Option<RawRule> {
    let (raw, errs) = yaml::parse_lenient::<RawRule>(text, RULE_FIELDS);
    errors.extend(errs.into_iter().map(|e| RuleError {
        origin: origin.to_owned(),
        pos: e.pos,
        rule_id: sniff_id(text),
        kind: RuleErrorKind::Schema,
        reason: e.reason,
    }));
    raw
}

/// Splits one source into rule pieces (one per rule), reporting YAML syntax errors.
pub(crate) fn rule_pieces(src: &RuleSource, out: &mut Vec<RuleError>) -> Vec<Piece> {
    let mut pieces = Vec::new();
    for doc in yaml::split_documents(&src.text) {
        if yaml::top_kind(&doc.text) == TopKind::Sequence {
            match yaml::split_sequence(&doc.text) {
                Ok(items) => pieces.extend(items),
                Err(e) => out.push(RuleError {
                    origin: src.origin.clone(),
                    pos: e.pos,
                    rule_id: None,
                    kind: RuleErrorKind::Schema,
                    reason: e.reason,
                }),
            }
        } else {
            pieces.push(doc);
        }
    }
    pieces
}

impl RuleSet {
    /// Compiles every rule of every source. All problems are reported together.
    pub fn compile(sources: &[RuleSource], config: &Config) -> Result<RuleSet, RuleErrors> {
        let mut errors = Vec::new();
        let mut rules: Vec<Rule> = Vec::new();
        let mut templates = Templates::default();
        let mut seen: BTreeMap<String, (String, usize)> = BTreeMap::new();
        for src in sources {
            for piece in rule_pieces(src, &mut errors) {
                let raw: RawRule = match parse_rule(&piece.text, &src.origin, &mut errors) {
                    Some(r) => r,
                    None => continue,
                };
                let id = raw.id.value.clone();
                let mut errs = Errs {
                    origin: &src.origin,
                    rule_id: Some(id.clone()),
                    out: &mut errors,
                };
                if let Some((o, l)) = seen.get(&id) {
                    errs.push(
                        pos_of(&raw.id),
                        RuleErrorKind::Duplicate,
                        format!("duplicate rule id (first defined at {o}:{l})"),
                    );
                    continue;
                }
                seen.insert(id.clone(), (src.origin.clone(), pos_of(&raw.id).line));
                if let Some(rule) =
                    compile_rule(raw, &piece.text, config, &mut templates, &mut errs)
                {
                    rules.push(rule);
                }
            }
        }
        let mut matcher = Matcher::new();
        for (i, rule) in rules.iter().enumerate() {
            if !rule.enabled {
                continue;
            }
            // The pattern was parsed once already in compile_rule; parse errors are there.
            if let Ok(p) = Pattern::parse(&rule.pattern.to_string()) {
                matcher.add(i, &p);
            }
        }
        if !errors.is_empty() {
            errors.sort_by(|a, b| (&a.origin, a.pos).cmp(&(&b.origin, b.pos)));
            return Err(RuleErrors(errors));
        }
        let screen = matcher.screen(&trailwatch_event::KNOWN_FIELDS);
        Ok(RuleSet {
            rules: rules.into(),
            matcher,
            screen,
            root: root_context(config),
            kit: Arc::new(RenderKit {
                templates,
                accounts: config.accounts.clone(),
                config_tpl: minijinja::Value::from(minijinja::value::Serde(
                    crate::cel::config_json(config),
                )),
            }),
        })
    }

    /// The compiled rules (enabled or not), in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// A rule by id.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

fn compile_rule(
    raw: RawRule,
    source: &str,
    config: &Config,
    templates: &mut Templates,
    errs: &mut Errs<'_>,
) -> Option<Rule> {
    let before = errs.out.len();
    let id = raw.id.value.clone();
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        errs.push(
            pos_of(&raw.id),
            RuleErrorKind::Invalid,
            "id must be lowercase letters, digits and `-`",
        );
    }
    let base = severity(&raw.severity, errs);
    let severity_if: Vec<(CelExpr, Severity)> = raw
        .severity_if
        .iter()
        .filter_map(|s| {
            let sev = severity(&s.severity, errs);
            cel(&s.when, errs).map(|c| (c, sev))
        })
        .collect();

    // match
    let pattern_pos = pos_of(&raw.match_);
    if !raw.match_.value.is_object() {
        errs.push(
            pattern_pos,
            RuleErrorKind::Pattern,
            "match must be a mapping (an EventBridge pattern)",
        );
    } else if let Err(e) = Pattern::parse(&raw.match_.value.to_string()) {
        errs.push(
            pattern_pos,
            RuleErrorKind::Pattern,
            format!("bad pattern: {e}"),
        );
    }

    // for_each bindings and lets
    let mut names: Vec<String> = Vec::new();
    let bind = |name: &Spanned<String>, errs: &mut Errs<'_>, names: &mut Vec<String>| {
        let n = &name.value;
        let ok_ident = n
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok_ident {
            errs.push(
                pos_of(name),
                RuleErrorKind::Invalid,
                format!("{n:?} is not a valid variable name"),
            );
        } else if is_reserved(n) || names.contains(n) {
            errs.push(
                pos_of(name),
                RuleErrorKind::Invalid,
                format!("variable name `{n}` is reserved or already used"),
            );
        }
        names.push(n.clone());
    };
    let mut for_each = Vec::new();
    for (name, paths) in &raw.for_each.0 {
        bind(name, errs, &mut names);
        let mut compiled = Vec::new();
        for p in paths.value.clone().into_vec() {
            match Path::parse(&p) {
                Ok(path) => {
                    let root_ok = path.root == "record"
                        || path.root == "event"
                        || names[..names.len() - 1].contains(&path.root);
                    if !root_ok {
                        errs.push(pos_of(paths), RuleErrorKind::Invalid, format!("for_each path {p:?} must start at record, event or an earlier binding"));
                    }
                    compiled.push(path);
                }
                Err(reason) => errs.push(pos_of(paths), RuleErrorKind::Invalid, reason),
            }
        }
        for_each.push(Binding {
            name: name.value.clone(),
            paths: compiled,
        });
    }
    let mut lets = Vec::new();
    for (name, expr) in &raw.let_.0 {
        bind(name, errs, &mut names);
        if let Some(c) = cel(expr, errs) {
            lets.push((name.value.clone(), c));
        }
    }
    let where_ = raw.where_.as_ref().and_then(|w| cel(w, errs));
    let once_when_empty = match raw.when_empty.as_ref().map(|w| (w, w.value.as_str())) {
        None | Some((_, "skip")) => false,
        Some((_, "once")) => true,
        Some((w, other)) => {
            errs.push(
                pos_of(w),
                RuleErrorKind::Invalid,
                format!("when_empty must be skip or once, not {other:?}"),
            );
            false
        }
    };

    // suppress
    let mut suppress = Suppress::default();
    let mut use_trusted = true;
    if let Some(s) = &raw.suppress {
        let p = pos_of(s);
        suppress.principals = s.value.principals.iter().map(|g| Glob::new(g)).collect();
        suppress.user_agents = s.value.user_agents.iter().map(|g| Glob::new(g)).collect();
        suppress.accounts = s.value.accounts.clone();
        for c in &s.value.cidrs {
            match c.parse::<Cidr>() {
                Ok(c) => suppress.cidrs.push(c),
                Err(e) => errs.push(p, RuleErrorKind::Invalid, format!("suppress.cidrs: {e}")),
            }
        }
        use_trusted = s.value.trusted.unwrap_or(true);
    }
    if use_trusted {
        suppress = suppress.with_trusted(config);
    }

    // threshold and dedup
    let tolerance = |t: &Option<String>, p: Pos, errs: &mut Errs<'_>| match t {
        None => chrono::Duration::seconds(DEFAULT_TOLERANCE_SECS),
        Some(s) => parse_duration_or_zero(s).unwrap_or_else(|| {
            errs.push(
                p,
                RuleErrorKind::Invalid,
                format!("tolerance {s:?} is not a duration like 30s, 5m, 1h"),
            );
            chrono::Duration::zero()
        }),
    };
    let mut threshold = None;
    if let Some(t) = &raw.threshold {
        let p = pos_of(t);
        let window = t.value.window.as_deref().map(|w| (w, parse_duration(w)));
        match (t.value.count, window) {
            (None, Some(_)) => errs.push(
                p,
                RuleErrorKind::Invalid,
                "threshold has a window but no count",
            ),
            (Some(_), None) => errs.push(
                p,
                RuleErrorKind::Invalid,
                "threshold has a count but no window",
            ),
            (None, None) => errs.push(
                p,
                RuleErrorKind::Invalid,
                "threshold needs count and window",
            ),
            (Some(0), _) => errs.push(
                p,
                RuleErrorKind::Invalid,
                "threshold count must be at least 1",
            ),
            (Some(_), Some((w, None))) => errs.push(
                p,
                RuleErrorKind::Invalid,
                format!("threshold window {w:?} is not a duration like 30s, 5m, 1h"),
            ),
            (Some(count), Some((_, Some(window)))) => {
                let tol = tolerance(&t.value.tolerance, p, errs);
                let groups = cel_list(&t.value.group_by, p, "threshold.group_by", errs);
                threshold = Some((
                    ThresholdSpec {
                        count,
                        window,
                        tolerance: tol,
                    },
                    groups,
                ));
            }
        }
    }
    let mut dedup = None;
    if let Some(d) = &raw.dedup {
        let p = pos_of(d);
        match d.value.window.as_deref().map(|w| (w, parse_duration(w))) {
            None => errs.push(p, RuleErrorKind::Invalid, "dedup needs a window"),
            Some((w, None)) => errs.push(
                p,
                RuleErrorKind::Invalid,
                format!("dedup window {w:?} is not a duration like 30s, 5m, 1h"),
            ),
            Some((_, Some(window))) => {
                let tol = tolerance(&d.value.tolerance, p, errs);
                let keys = d
                    .value
                    .key
                    .clone()
                    .map(|k| k.into_vec())
                    .unwrap_or_default();
                let keys = cel_list(&keys, p, "dedup.key", errs);
                dedup = Some((
                    DedupSpec {
                        window,
                        tolerance: tol,
                    },
                    keys,
                ));
            }
        }
    }

    // templates
    let early = allowed(&names, false);
    let late = allowed(&names, true);
    let mut add =
        |name: String, s: &Spanned<String>, allowed: &BTreeSet<String>, errs: &mut Errs<'_>| {
            if let Err(reason) = templates.add(&name, &s.value, allowed) {
                errs.push(pos_of(s), RuleErrorKind::Template, reason);
            }
        };
    let mut fields = Vec::new();
    for (k, v) in &raw.alert.value.fields.0 {
        add(format!("{id}#field#{}", k.value), v, &early, errs);
        fields.push(k.value.clone());
    }
    for (i, r) in raw.alert.value.resources.iter().enumerate() {
        add(format!("{id}#resource#{i}"), r, &early, errs);
    }
    add(format!("{id}#title"), &raw.alert.value.title, &late, errs);
    if let Some(b) = &raw.alert.value.body {
        add(format!("{id}#body"), b, &late, errs);
    }
    let remediation = raw
        .remediate
        .as_ref()
        .and_then(|r| crate::remediate::compile(&id, r, &early, templates, errs));

    // CEL variables: a misspelt name would make every evaluation fail, and the rule would
    // silently never fire; reject it at load like template variables.
    let mut known: Vec<&str> = vec!["record", "event", "item", "config"];
    known.extend(names.iter().map(String::as_str));
    let mut exprs: Vec<&CelExpr> = Vec::new();
    exprs.extend(severity_if.iter().map(|(c, _)| c));
    exprs.extend(lets.iter().map(|(_, c)| c));
    exprs.extend(where_.iter());
    exprs.extend(threshold.iter().flat_map(|(_, g)| g.iter()));
    exprs.extend(dedup.iter().flat_map(|(_, k)| k.iter()));
    exprs.extend(remediation.iter().flat_map(|w| w.conditions().flatten()));
    for e in exprs {
        let unknown = e.unknown_variables(&known);
        if !unknown.is_empty() {
            errs.push(
                e.pos,
                RuleErrorKind::Cel,
                format!(
                    "unknown CEL variable{} {} in {:?} (known: {})",
                    if unknown.len() > 1 { "s" } else { "" },
                    unknown
                        .iter()
                        .map(|u| format!("`{u}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    e.source,
                    known.join(", ")
                ),
            );
        }
    }

    if errs.out.len() > before {
        return None;
    }
    let enabled = config.rule_enabled(&id, raw.enabled.unwrap_or(true));
    let severity_override = config.rules.severity.get(&id).copied();
    Some(
        Rule {
            id,
            title: raw.title,
            description: raw.description,
            severity: severity_override.unwrap_or(base),
            tags: raw.tags,
            runbook: raw.runbook,
            origin: errs.origin.to_owned(),
            line: pos_of(&raw.id).line,
            enabled,
            pattern: raw.match_.value,
            pattern_pos,
            severity_if,
            severity_override,
            lets,
            where_,
            for_each,
            once_when_empty,
            suppress,
            threshold,
            dedup,
            fields,
            resources: raw.alert.value.resources.len(),
            has_body: raw.alert.value.body.is_some(),
            remediation,
            record_members: None,
            uses_event: true,
            facts_members: None,
            tests: raw
                .tests
                .into_iter()
                .map(|t| TestCase {
                    pos: pos_of(&t),
                    raw: t.value,
                })
                .collect(),
            source: source.to_owned(),
        }
        .note_cel_uses(),
    )
}
