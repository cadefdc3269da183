//! The global configuration, `trailwatch.yaml`: account aliases, business hours, required
//! tags, trusted principals/networks/tools, and rule selection.
//!
//! Two stages: [`raw`] serde structs (unknown fields are errors) are turned into a validated
//! [`Config`] by [`parse`], which reports **every** error at once as `origin:line:col: reason`.
//! Sections owned by other crates (`destinations`, `routes`, `outbox`, `sources`,
//! `remediation`, `state`, `metrics`) are kept as [`RawSection`]s — YAML text that parses
//! with its original line numbers — for their owners to deserialize later.
//!
//! Architecture invariant: this crate does no I/O; it parses text it is given.

pub mod error;
pub mod glob;
pub mod net;
pub mod raw;
pub mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chrono::{DateTime, Datelike, NaiveTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::de::DeserializeOwned;

pub use error::{ConfigError, ConfigErrors};
pub use glob::Glob;
pub use net::Cidr;
pub use yaml::Pos;

use raw::{RawBusinessHours, RawRules, RawTrusted};

/// A configured path with `~/x` read as `$HOME/x` (left as it is without `HOME`).
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Top-level sections that belong to other crates: known, kept raw, checked by their owner.
pub const RAW_SECTIONS: &[&str] = &[
    "destinations",
    "routes",
    "outbox",
    "sources",
    "remediation",
    "state",
    "metrics",
];

/// Top-level sections this crate validates.
pub const OWN_SECTIONS: &[&str] = &[
    "accounts",
    "business_hours",
    "required_tags",
    "trusted",
    "rules",
];

/// A top-level section kept as YAML for the crate that owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSection {
    /// The file the section came from.
    pub origin: String,
    /// The section's key, e.g. `destinations`.
    pub key: String,
    /// Where the section's value starts in the file.
    pub pos: Pos,
    /// The section's YAML, padded so that parsing it reports positions in the original file.
    pub text: String,
}

impl RawSection {
    /// Deserializes the section into its owner's type; errors name the file and line.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        yaml::from_str(&self.text).map_err(|e| ConfigError::from_yaml(&self.origin, e))
    }

    /// The 1-based line where the section's value starts.
    pub fn line(&self) -> usize {
        self.pos.line
    }
}

/// Validated business hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    /// Start of the working day (inclusive), local time.
    pub start: NaiveTime,
    /// End of the working day (exclusive), local time. When `end <= start` the working
    /// period crosses midnight.
    pub end: NaiveTime,
    /// Working days.
    pub days: Vec<Weekday>,
    /// The time zone the hours are in.
    pub timezone: Tz,
}

impl Default for BusinessHours {
    fn default() -> Self {
        BusinessHours {
            start: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default(),
            end: NaiveTime::from_hms_opt(18, 0, 0).unwrap_or_default(),
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            timezone: Tz::UTC,
        }
    }
}

impl BusinessHours {
    /// Whether `t` falls inside business hours (on a working day, between start and end,
    /// in the configured time zone).
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let local = t.with_timezone(&self.timezone);
        let time = local.time();
        let time =
            NaiveTime::from_hms_opt(time.hour(), time.minute(), time.second()).unwrap_or(time);
        if self.start < self.end {
            self.days.contains(&local.weekday()) && time >= self.start && time < self.end
        } else if time >= self.start {
            // Overnight shift: the part after start belongs to today.
            self.days.contains(&local.weekday())
        } else if time < self.end {
            // The part before end belongs to the previous day's shift.
            self.days.contains(&local.weekday().pred())
        } else {
            false
        }
    }
}

/// Validated trusted principals, networks and user agents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trusted {
    /// Principal ARN patterns.
    pub principals: Vec<Glob>,
    /// Source networks.
    pub cidrs: Vec<Cidr>,
    /// User agent patterns.
    pub user_agents: Vec<Glob>,
}

/// Validated rule selection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesConfig {
    /// Rule ids turned off.
    pub disable: BTreeSet<String>,
    /// Rule ids turned on although their file says `enabled: false`.
    pub enable: BTreeSet<String>,
    /// Severity overrides by rule id, as severity names (checked here, applied by rules).
    pub severity: BTreeMap<String, Severity>,
    /// Extra rule files or directories, as written (relative to the config file).
    pub paths: Vec<String>,
    /// Whether the built-in pack is loaded.
    pub builtin: bool,
}

/// Severities in overrides are the alert's own severity type.
pub use trailwatch_alert::Severity;

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the config came from (a file path, or `<default>`).
    pub origin: String,
    /// Account aliases: 12-digit account id → readable name.
    pub accounts: BTreeMap<String, String>,
    /// Business hours.
    pub business_hours: BusinessHours,
    /// Tag keys every tagged resource must carry.
    pub required_tags: Vec<String>,
    /// Trusted principals, networks and tools.
    pub trusted: Trusted,
    /// Rule selection and overrides.
    pub rules: RulesConfig,
    /// Sections owned by other crates, by key.
    pub raw: BTreeMap<String, RawSection>,
}

impl Default for Config {
    /// The built-in default: no aliases, Monday–Friday 08:00–18:00 UTC, no required tags,
    /// nothing trusted, every rule on.
    fn default() -> Self {
        Config {
            origin: "<default>".to_owned(),
            accounts: BTreeMap::new(),
            business_hours: BusinessHours::default(),
            required_tags: Vec::new(),
            trusted: Trusted::default(),
            rules: RulesConfig {
                builtin: true,
                ..RulesConfig::default()
            },
            raw: BTreeMap::new(),
        }
    }
}

impl Config {
    /// The alias of an account, when configured.
    pub fn account_alias(&self, account: &str) -> Option<&str> {
        self.accounts.get(account).map(String::as_str)
    }

    /// A raw section for its owner, when present.
    pub fn section(&self, key: &str) -> Option<&RawSection> {
        self.raw.get(key)
    }

    /// Whether a rule is on, given its file's `enabled` flag.
    pub fn rule_enabled(&self, id: &str, enabled_in_file: bool) -> bool {
        if self.rules.disable.contains(id) {
            return false;
        }
        enabled_in_file || self.rules.enable.contains(id)
    }
}

/// Parses and validates a config file. `origin` names the file in error messages.
pub fn parse(origin: &str, text: &str) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let mut config = Config {
        origin: origin.to_owned(),
        ..Config::default()
    };
    let pieces = match yaml::split_mapping(text) {
        Ok(p) => p,
        Err(e) => return Err(ConfigErrors(vec![ConfigError::from_yaml(origin, e)])),
    };
    let mut seen = BTreeSet::new();
    for piece in pieces {
        let key = piece.key.as_str();
        if !seen.insert(piece.key.clone()) {
            errors.push(ConfigError::new(
                origin,
                piece.key_pos,
                format!("duplicate top-level key `{key}`"),
            ));
            continue;
        }
        match key {
            "accounts" => match piece.parse::<Option<BTreeMap<String, String>>>() {
                Ok(map) => validate_accounts(
                    origin,
                    &piece,
                    map.unwrap_or_default(),
                    &mut config,
                    &mut errors,
                ),
                Err(e) => errors.push(ConfigError::from_yaml(origin, e)),
            },
            "business_hours" => {
                let (raw, errs) =
                    piece.parse_lenient::<Option<RawBusinessHours>>(raw::BUSINESS_HOURS_FIELDS);
                errors.extend(errs.into_iter().map(|e| ConfigError::from_yaml(origin, e)));
                if let Some(raw) = raw
                    && let Some(bh) =
                        validate_hours(origin, &piece, raw.unwrap_or_default(), &mut errors)
                {
                    config.business_hours = bh;
                }
            }
            "required_tags" => match piece.parse::<Option<Vec<String>>>() {
                Ok(tags) => {
                    for t in tags.unwrap_or_default() {
                        if t.trim().is_empty() {
                            errors.push(ConfigError::new(
                                origin,
                                piece.pos,
                                "empty tag key in required_tags",
                            ));
                        } else {
                            config.required_tags.push(t);
                        }
                    }
                }
                Err(e) => errors.push(ConfigError::from_yaml(origin, e)),
            },
            "trusted" => {
                let (raw, errs) = piece.parse_lenient::<Option<RawTrusted>>(raw::TRUSTED_FIELDS);
                errors.extend(errs.into_iter().map(|e| ConfigError::from_yaml(origin, e)));
                if let Some(raw) = raw {
                    config.trusted =
                        validate_trusted(origin, &piece, raw.unwrap_or_default(), &mut errors);
                }
            }
            "rules" => {
                let (raw, errs) = piece.parse_lenient::<Option<RawRules>>(raw::RULES_FIELDS);
                errors.extend(errs.into_iter().map(|e| ConfigError::from_yaml(origin, e)));
                if let Some(raw) = raw {
                    config.rules =
                        validate_rules(origin, &piece, raw.unwrap_or_default(), &mut errors);
                }
            }
            k if RAW_SECTIONS.contains(&k) => {
                config.raw.insert(
                    piece.key.clone(),
                    RawSection {
                        origin: origin.to_owned(),
                        key: piece.key.clone(),
                        pos: piece.pos,
                        text: piece.text.clone(),
                    },
                );
            }
            other => errors.push(ConfigError::new(
                origin,
                piece.key_pos,
                format!(
                    "unknown top-level key `{other}`, expected one of {}",
                    OWN_SECTIONS
                        .iter()
                        .chain(RAW_SECTIONS)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        errors.sort_by_key(|e| e.pos);
        Err(ConfigErrors(errors))
    }
}

fn validate_accounts(
    origin: &str,
    piece: &yaml::Piece,
    map: BTreeMap<String, String>,
    config: &mut Config,
    errors: &mut Vec<ConfigError>,
) {
    for (id, alias) in map {
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
            errors.push(ConfigError::new(
                origin,
                find_pos(&piece.text, &id).unwrap_or(piece.pos),
                format!("account id {id:?} is not 12 digits (quote ids that start with 0)"),
            ));
            continue;
        }
        config.accounts.insert(id, alias);
    }
}

/// Finds the first position of `needle` in a padded piece text (for pointing at one entry).
fn find_pos(text: &str, needle: &str) -> Option<Pos> {
    if needle.is_empty() {
        return None;
    }
    for (i, line) in text.lines().enumerate() {
        if let Some(col) = line.find(needle) {
            return Some(Pos {
                line: i + 1,
                col: line[..col].chars().count() + 1,
            });
        }
    }
    None
}

fn parse_hhmm(s: &str) -> Option<NaiveTime> {
    let (h, m) = s.trim().split_once(':')?;
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    if h == 24 && m == 0 {
        return NaiveTime::from_hms_opt(23, 59, 59);
    }
    NaiveTime::from_hms_opt(h, m, 0)
}

fn parse_day(s: &str) -> Option<Weekday> {
    let l = s.trim().to_ascii_lowercase();
    let d = match l.get(..3)? {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    };
    // Accept "mon" and "monday" but not "monkey".
    let full = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    (l.len() == 3 || full.contains(&l.as_str())).then_some(d)
}

fn validate_hours(
    origin: &str,
    piece: &yaml::Piece,
    raw: RawBusinessHours,
    errors: &mut Vec<ConfigError>,
) -> Option<BusinessHours> {
    let mut bh = BusinessHours::default();
    let before = errors.len();
    let at = |field: &str, value: &str| {
        find_pos(&piece.text, &format!("{field}:"))
            .or_else(|| find_pos(&piece.text, value))
            .unwrap_or(piece.pos)
    };
    if let Some(s) = &raw.start {
        match parse_hhmm(s) {
            Some(t) => bh.start = t,
            None => errors.push(ConfigError::new(
                origin,
                at("start", s),
                format!("business_hours.start {s:?} is not HH:MM"),
            )),
        }
    }
    if let Some(s) = &raw.end {
        match parse_hhmm(s) {
            Some(t) => bh.end = t,
            None => errors.push(ConfigError::new(
                origin,
                at("end", s),
                format!("business_hours.end {s:?} is not HH:MM"),
            )),
        }
    }
    if let Some(days) = &raw.days {
        let mut out = Vec::new();
        for d in days {
            match parse_day(d) {
                Some(w) => {
                    if !out.contains(&w) {
                        out.push(w);
                    }
                }
                None => errors.push(ConfigError::new(
                    origin,
                    at("days", d),
                    format!("business_hours.days: {d:?} is not a weekday (mon..sun)"),
                )),
            }
        }
        if out.is_empty() && errors.len() == before {
            errors.push(ConfigError::new(
                origin,
                at("days", ""),
                "business_hours.days is empty: every moment would be outside business hours",
            ));
        }
        bh.days = out;
    }
    if let Some(tz) = &raw.timezone {
        match tz.parse::<Tz>() {
            Ok(z) => bh.timezone = z,
            Err(_) => errors.push(ConfigError::new(origin, at("timezone", tz), format!("business_hours.timezone {tz:?} is not an IANA time zone name (e.g. Europe/Berlin)"))),
        }
    }
    if bh.start == bh.end && errors.len() == before {
        errors.push(ConfigError::new(
            origin,
            piece.pos,
            "business_hours: start and end are equal",
        ));
    }
    (errors.len() == before).then_some(bh)
}

fn validate_trusted(
    origin: &str,
    piece: &yaml::Piece,
    raw: RawTrusted,
    errors: &mut Vec<ConfigError>,
) -> Trusted {
    let mut t = Trusted::default();
    for p in &raw.principals {
        if p.trim().is_empty() {
            errors.push(ConfigError::new(
                origin,
                piece.pos,
                "trusted.principals: empty pattern",
            ));
        } else {
            t.principals.push(Glob::new(p));
        }
    }
    for c in &raw.cidrs {
        match c.parse::<Cidr>() {
            Ok(c) => t.cidrs.push(c),
            Err(e) => errors.push(ConfigError::new(
                origin,
                find_pos(&piece.text, c).unwrap_or(piece.pos),
                format!("trusted.cidrs: {e}"),
            )),
        }
    }
    for u in &raw.user_agents {
        if u.trim().is_empty() {
            errors.push(ConfigError::new(
                origin,
                piece.pos,
                "trusted.user_agents: empty pattern",
            ));
        } else {
            t.user_agents.push(Glob::new(u));
        }
    }
    t
}

fn validate_rules(
    origin: &str,
    piece: &yaml::Piece,
    raw: RawRules,
    errors: &mut Vec<ConfigError>,
) -> RulesConfig {
    let mut r = RulesConfig {
        disable: raw.disable.into_iter().collect(),
        enable: raw.enable.into_iter().collect(),
        severity: BTreeMap::new(),
        paths: raw.paths,
        builtin: raw.builtin.unwrap_or(true),
    };
    for id in r.disable.intersection(&r.enable) {
        errors.push(ConfigError::new(
            origin,
            find_pos(&piece.text, id).unwrap_or(piece.pos),
            format!("rule {id:?} is both enabled and disabled"),
        ));
    }
    for (id, sev) in raw.severity {
        match sev.parse::<Severity>().ok() {
            Some(s) => {
                r.severity.insert(id, s);
            }
            None => errors.push(ConfigError::new(
                origin,
                find_pos(&piece.text, &format!("{id}:")).unwrap_or(piece.pos),
                format!("rules.severity.{id}: unknown severity {sev:?}, expected one of info, low, medium, high, critical"),
            )),
        }
    }
    r
}

#[cfg(test)]
mod tests;
