//! The `remediation:` section of `trailwatch.yaml`: modes per rule, approval, guards, the
//! baselines for `ec2-enforce-security-group`, and how to reach AWS.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use trailwatch_actions::Permission;
use trailwatch_config::{ConfigError, RawSection};

/// How a rule's remediation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Plan, log, audit; change nothing (the default for every rule).
    #[default]
    DryRun,
    /// Wait for a person to approve, then run.
    Approve,
    /// Run.
    Enforce,
}

impl Mode {
    /// The name in config and alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::DryRun => "dry-run",
            Mode::Approve => "approve",
            Mode::Enforce => "enforce",
        }
    }
}

/// The section as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemediation {
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    rules: BTreeMap<String, RawRuleMode>,
    #[serde(default)]
    approval: RawApproval,
    #[serde(default)]
    self_principals: Vec<String>,
    #[serde(default)]
    guards: RawGuards,
    #[serde(default)]
    security_groups: BTreeMap<String, Vec<Permission>>,
    #[serde(default)]
    archive: Option<PathBuf>,
    #[serde(default)]
    aws: AwsSettings,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuleMode {
    mode: Mode,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApproval {
    #[serde(default)]
    expires: Option<String>,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    secret_env: Option<String>,
    #[serde(default)]
    listen: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuards {
    #[serde(default)]
    accounts: AllowDeny,
    #[serde(default)]
    resources: AllowDeny,
    #[serde(default)]
    ignore_tag: Option<String>,
    #[serde(default)]
    rate_limit: Option<RawRateLimit>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    max: u32,
    per: String,
}

/// Allow and deny lists of globs (`*` matches any run of characters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowDeny {
    /// When not empty, only these.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Never these.
    #[serde(default)]
    pub deny: Vec<String>,
}

impl AllowDeny {
    /// Why `value` is ruled out, if it is.
    pub fn refuses(&self, value: &str) -> Option<String> {
        if let Some(g) = self.deny.iter().find(|g| glob(g, value)) {
            return Some(format!("{value} is on the deny list ({g})"));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|g| glob(g, value)) {
            return Some(format!("{value} is not on the allow list"));
        }
        None
    }
}

fn glob(pattern: &str, value: &str) -> bool {
    trailwatch_config::Glob::new(pattern).matches(value)
}

/// How remediation reaches AWS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// An endpoint to use instead of AWS's (tests, private endpoints).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// A named profile.
    #[serde(default)]
    pub profile: Option<String>,
    /// A role to assume in the event's account; `{account}` is replaced by its id, e.g.
    /// `arn:aws:iam::{account}:role/trailwatch-remediation`.
    #[serde(default)]
    pub role_arn: Option<String>,
}

/// The validated section.
#[derive(Debug, Clone)]
pub struct RemediationConfig {
    /// The mode for rules not listed in `rules`.
    pub default_mode: Mode,
    /// Modes per rule id.
    pub rule_modes: BTreeMap<String, Mode>,
    /// How long an approval request stays open.
    pub approval_expires: Duration,
    /// Where approve/reject links point (`None`: approve with the CLI only).
    pub approval_base_url: Option<String>,
    /// The environment variable holding the key that signs approval links.
    pub approval_secret_env: Option<String>,
    /// Where `trailwatch run` serves the approval pages the links open (when links are on).
    pub approval_listen: std::net::SocketAddr,
    /// Principals whose events are trailwatch's own (besides the one STS reports).
    pub self_principals: Vec<String>,
    /// Account guard.
    pub accounts: AllowDeny,
    /// Resource-id guard.
    pub resources: AllowDeny,
    /// A tag that exempts a resource (`trailwatch:ignore` by default).
    pub ignore_tag: String,
    /// At most this many runs per rule per window.
    pub rate_limit: Option<(u32, Duration)>,
    /// Required ingress per security group, for `ec2-enforce-security-group`.
    pub security_groups: BTreeMap<String, Vec<Permission>>,
    /// A folder of CloudTrail logs that `iam-summarize-key-activity` reads before trying
    /// LookupEvents.
    pub archive: Option<PathBuf>,
    /// AWS settings.
    pub aws: AwsSettings,
}

/// Where approval pages are served by default: loopback, beside the metrics port.
pub const DEFAULT_APPROVAL_LISTEN: &str = "127.0.0.1:9465";

fn default_listen() -> std::net::SocketAddr {
    DEFAULT_APPROVAL_LISTEN.parse().expect("a valid address")
}

impl Default for RemediationConfig {
    /// No `remediation:` section: every rule dry-run, the default guards.
    fn default() -> RemediationConfig {
        RemediationConfig {
            default_mode: Mode::DryRun,
            rule_modes: BTreeMap::new(),
            approval_expires: DEFAULT_APPROVAL_EXPIRY,
            approval_base_url: None,
            approval_secret_env: None,
            approval_listen: default_listen(),
            self_principals: Vec::new(),
            accounts: AllowDeny::default(),
            resources: AllowDeny::default(),
            ignore_tag: "trailwatch:ignore".into(),
            rate_limit: None,
            security_groups: BTreeMap::new(),
            archive: None,
            aws: AwsSettings::default(),
        }
    }
}

/// The default approval window.
pub const DEFAULT_APPROVAL_EXPIRY: Duration = Duration::from_secs(3600);

impl RemediationConfig {
    /// Parses the section (or gives the defaults when there is none).
    pub fn from_section(section: Option<&RawSection>) -> Result<RemediationConfig, ConfigError> {
        let Some(section) = section else {
            return Ok(RemediationConfig::default());
        };
        let raw: RawRemediation = section.deserialize()?;
        let invalid = |reason: String| ConfigError::new(&section.origin, section.pos, reason);
        let duration = |what: &str, s: &str| {
            humantime::parse_duration(s)
                .map_err(|e| invalid(format!("remediation.{what}: {s:?} is not a duration: {e}")))
        };
        let approval_expires = match &raw.approval.expires {
            Some(s) => duration("approval.expires", s)?,
            None => DEFAULT_APPROVAL_EXPIRY,
        };
        let rate_limit = match &raw.guards.rate_limit {
            Some(r) if r.max == 0 => {
                return Err(invalid(
                    "remediation.guards.rate_limit.max must be at least 1".into(),
                ));
            }
            Some(r) => Some((r.max, duration("guards.rate_limit.per", &r.per)?)),
            None => None,
        };
        for (group, perms) in &raw.security_groups {
            for p in perms {
                p.validate()
                    .map_err(|e| invalid(format!("remediation.security_groups.{group}: {e}")))?;
            }
        }
        if let Some(url) = &raw.approval.base_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(invalid(format!(
                    "remediation.approval.base_url {url:?} is not an http(s) URL"
                )));
            }
            if raw.approval.secret_env.is_none() {
                return Err(invalid(
                    "remediation.approval.base_url needs secret_env: the variable holding the key that signs the links".into(),
                ));
            }
        }
        let approval_listen = match &raw.approval.listen {
            Some(text) => text.parse().map_err(|_| {
                invalid(format!(
                    "remediation.approval.listen {text:?} is not an address like 127.0.0.1:9465"
                ))
            })?,
            None => default_listen(),
        };
        Ok(RemediationConfig {
            default_mode: raw.mode,
            approval_listen,
            rule_modes: raw.rules.into_iter().map(|(k, v)| (k, v.mode)).collect(),
            approval_expires,
            approval_base_url: raw
                .approval
                .base_url
                .map(|u| u.trim_end_matches('/').to_owned()),
            approval_secret_env: raw.approval.secret_env,
            self_principals: raw.self_principals,
            accounts: raw.guards.accounts,
            resources: raw.guards.resources,
            ignore_tag: raw
                .guards
                .ignore_tag
                .unwrap_or_else(|| "trailwatch:ignore".into()),
            rate_limit,
            security_groups: raw
                .security_groups
                .into_iter()
                .map(|(k, v)| (k, v.into_iter().map(Permission::normalised).collect()))
                .collect(),
            // YAML text is UTF-8, so the path converts losslessly.
            archive: raw
                .archive
                .map(|p| trailwatch_config::expand_home(&p.to_string_lossy())),
            aws: raw.aws,
        })
    }

    /// Whether any rule may act (approve or enforce mode).
    pub fn may_act(&self) -> bool {
        self.default_mode != Mode::DryRun || self.rule_modes.values().any(|m| *m != Mode::DryRun)
    }

    /// The mode of a rule.
    pub fn mode_for(&self, rule_id: &str) -> Mode {
        self.rule_modes
            .get(rule_id)
            .copied()
            .unwrap_or(self.default_mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<RemediationConfig, String> {
        let config = trailwatch_config::parse("tw.yaml", yaml).map_err(|e| e.to_string())?;
        RemediationConfig::from_section(config.section("remediation")).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_dry_run() {
        let c = parse("accounts: {}\n").unwrap();
        assert_eq!(c.mode_for("anything"), Mode::DryRun);
        assert_eq!(c.ignore_tag, "trailwatch:ignore");
        assert_eq!(c.approval_expires, DEFAULT_APPROVAL_EXPIRY);
    }

    #[test]
    fn modes_guards_and_baselines() {
        let c = parse(
            "remediation:\n  rules:\n    r1: {mode: enforce}\n    r2: {mode: approve}\n  approval: {expires: 30m}\n  guards:\n    accounts: {deny: ['111*']}\n    rate_limit: {max: 5, per: 1h}\n  security_groups:\n    sg-1: [{protocol: tcp, from_port: 443, to_port: 443, ip_ranges: [0.0.0.0/0]}]\n",
        )
        .unwrap();
        assert_eq!(c.mode_for("r1"), Mode::Enforce);
        assert_eq!(c.mode_for("r2"), Mode::Approve);
        assert_eq!(c.mode_for("r3"), Mode::DryRun);
        assert_eq!(c.approval_expires, Duration::from_secs(1800));
        assert!(c.accounts.refuses("111122223333").is_some());
        assert!(c.accounts.refuses("222233334444").is_none());
        assert_eq!(c.rate_limit, Some((5, Duration::from_secs(3600))));
        assert_eq!(c.security_groups["sg-1"][0].from_port, 443);
    }

    #[test]
    fn bad_sections_name_the_file_and_problem() {
        let err = parse("remediation:\n  mode: yolo\n").unwrap_err();
        assert!(err.contains("tw.yaml") && err.contains("yolo"), "{err}");
        let err =
            parse("remediation:\n  approval: {base_url: 'https://tw.example'}\n").unwrap_err();
        assert!(err.contains("needs secret_env"), "{err}");
        let err = parse("remediation:\n  security_groups: {sg-1: [{protocol: tcp, from_port: 1, to_port: 2, ip_ranges: [nope]}]}\n").unwrap_err();
        assert!(err.contains("sg-1") && err.contains("nope"), "{err}");
    }
}
