//! Stage one: the raw serde structs of `trailwatch.yaml`, exactly as written. Every struct
//! denies unknown fields; every field is documented (docs/config.md mirrors these comments).

use std::collections::BTreeMap;

use serde::Deserialize;

/// `business_hours:` — when changes are expected. Rules ask `in_business_hours(t)`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBusinessHours {
    /// Start of the working day, `HH:MM` (24-hour clock), inclusive. Default `08:00`.
    pub start: Option<String>,
    /// End of the working day, `HH:MM`, exclusive. Default `18:00`.
    pub end: Option<String>,
    /// Working days: `mon`..`sun` (or full English names). Default Monday to Friday.
    pub days: Option<Vec<String>>,
    /// IANA time zone name, e.g. `Europe/Berlin`. Default `UTC`.
    pub timezone: Option<String>,
}

/// `trusted:` — principals, networks and tools whose actions rules ignore by default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrusted {
    /// Principal ARN patterns; `*` matches any run of characters, `?` one character.
    #[serde(default)]
    pub principals: Vec<String>,
    /// Source networks in CIDR notation (IPv4 or IPv6); a bare address means one host.
    #[serde(default)]
    pub cidrs: Vec<String>,
    /// User agent patterns with `*` and `?` wildcards, e.g. `*Terraform*`.
    #[serde(default)]
    pub user_agents: Vec<String>,
}

/// `rules:` — which rules run, at what severity, and where extra rule files live.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRules {
    /// Rule ids to turn off (built-in or from files).
    #[serde(default)]
    pub disable: Vec<String>,
    /// Rule ids to turn on that their file marks `enabled: false`.
    #[serde(default)]
    pub enable: Vec<String>,
    /// Severity overrides: rule id → info, low, medium, high or critical.
    #[serde(default)]
    pub severity: BTreeMap<String, String>,
    /// Extra rule files or directories (relative to the config file), loaded after the
    /// built-in pack.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Whether the built-in pack is loaded at all. Default true.
    pub builtin: Option<bool>,
}

/// The fields of [`RawBusinessHours`] (for reporting unknown ones without hiding others).
pub const BUSINESS_HOURS_FIELDS: &[&str] = &["start", "end", "days", "timezone"];
/// The fields of [`RawTrusted`].
pub const TRUSTED_FIELDS: &[&str] = &["principals", "cidrs", "user_agents"];
/// The fields of [`RawRules`].
pub const RULES_FIELDS: &[&str] = &["disable", "enable", "severity", "paths", "builtin"];
