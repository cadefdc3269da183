//! The `destinations`, `routes` and `outbox` sections of `trailwatch.yaml`, in two stages:
//! raw serde structs (unknown keys rejected, every field documented), then a validated
//! [`NotifyConfig`]. Validation reports every error at once as `origin:line: reason`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;
use trailwatch_alert::{Alert, Severity};
use trailwatch_config::expand_home;

use crate::secret::SecretSource;

// ---------------------------------------------------------------------------------------------
// Raw structs
// ---------------------------------------------------------------------------------------------

/// The notify sections as written. Every key is optional, so the three sections may be
/// parsed together or one at a time (see [`parse_sections`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotifySections {
    /// Named destinations: the name is what routes refer to.
    #[serde(default)]
    pub destinations: BTreeMap<String, Spanned<RawDestination>>,
    /// Routes from alerts to destinations; an alert goes to every destination of every
    /// route that matches it.
    #[serde(default)]
    pub routes: Vec<Spanned<RawRoute>>,
    /// The durable outbox.
    #[serde(default)]
    pub outbox: Option<Spanned<RawOutbox>>,
}

/// One destination, selected by `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RawDestination {
    /// Slack: an incoming webhook or `chat.postMessage` with a bot token.
    Slack(RawSlack),
    /// Email over SMTP.
    Email(RawEmail),
    /// Amazon SNS Publish.
    Sns(RawSns),
    /// PagerDuty Events API v2.
    Pagerduty(RawPagerDuty),
    /// Opsgenie Alerts API.
    Opsgenie(RawOpsgenie),
    /// A generic HTTP webhook with an HMAC signature.
    Webhook(RawWebhook),
    /// One line per alert on standard output.
    Stdout(RawStdout),
    /// One JSON object per line appended to a file.
    Jsonl(RawJsonl),
}

/// Slack. Exactly one of the webhook URL or the bot token must be given.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlack {
    /// Environment variable holding the incoming-webhook URL (the URL contains a token).
    pub webhook_url_env: Option<String>,
    /// File holding the incoming-webhook URL.
    pub webhook_url_file: Option<PathBuf>,
    /// Environment variable holding a bot token (`xoxb-...`) for `chat.postMessage`.
    pub bot_token_env: Option<String>,
    /// File holding a bot token.
    pub bot_token_file: Option<PathBuf>,
    /// Default channel for `chat.postMessage` (id or `#name`); required with a bot token.
    pub channel: Option<String>,
    /// Channel per AWS account id (bot token only); wins over `channel`.
    #[serde(default)]
    pub channel_by_account: BTreeMap<String, String>,
    /// Channel per rule id (bot token only); wins over `channel_by_account`.
    #[serde(default)]
    pub channel_by_rule: BTreeMap<String, String>,
    /// Base URL of the Slack Web API (default `https://slack.com/api`).
    pub api_url: Option<String>,
    /// Messages per second to this destination (default 1, Slack's limit per webhook).
    pub rate_per_second: Option<f64>,
    /// HTTP timeout in seconds (default 10).
    pub timeout_seconds: Option<u64>,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS (required); default port 587.
    Starttls,
    /// TLS from the first byte (SMTPS); default port 465.
    Tls,
    /// No encryption at all: only for a local relay or tests; default port 25.
    None,
}

/// Email over SMTP.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    /// The SMTP server's host name.
    pub smtp_host: String,
    /// The port (default 587 for `starttls`, 465 for `tls`, 25 for `none`).
    pub port: Option<u16>,
    /// `starttls` (default), `tls` or `none`.
    pub tls: Option<TlsMode>,
    /// The sender address, e.g. `trailwatch@example.com` or `Trailwatch <tw@example.com>`.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// The SMTP user name (with `password_env` or `password_file`).
    pub username: Option<String>,
    /// Environment variable holding the SMTP password.
    pub password_env: Option<String>,
    /// File holding the SMTP password.
    pub password_file: Option<PathBuf>,
    /// Messages per second (default: unlimited).
    pub rate_per_second: Option<f64>,
    /// Timeout in seconds for the whole SMTP exchange (default 30).
    pub timeout_seconds: Option<u64>,
}

/// Amazon SNS.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSns {
    /// The topic ARN; a name ending in `.fifo` makes it a FIFO topic.
    pub topic_arn: String,
    /// The region (default: the region in the ARN).
    pub region: Option<String>,
    /// A custom endpoint URL (e.g. a local emulator); default: the AWS endpoint.
    pub endpoint_url: Option<String>,
    /// FIFO topics only: the message group id (default `trailwatch`).
    pub message_group_id: Option<String>,
    /// Environment variable with an access key id (default: the SDK's credential chain).
    pub access_key_id_env: Option<String>,
    /// File with an access key id.
    pub access_key_id_file: Option<PathBuf>,
    /// Environment variable with the secret access key.
    pub secret_access_key_env: Option<String>,
    /// File with the secret access key.
    pub secret_access_key_file: Option<PathBuf>,
    /// Messages per second (default: unlimited).
    pub rate_per_second: Option<f64>,
    /// Timeout in seconds per Publish (default 10).
    pub timeout_seconds: Option<u64>,
}

/// PagerDuty Events API v2.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPagerDuty {
    /// Environment variable holding the integration's routing key.
    pub routing_key_env: Option<String>,
    /// File holding the routing key.
    pub routing_key_file: Option<PathBuf>,
    /// The enqueue URL (default `https://events.pagerduty.com/v2/enqueue`).
    pub events_url: Option<String>,
    /// `payload.source` (default `trailwatch`).
    pub source: Option<String>,
    /// Overrides of the severity mapping, e.g. `{ medium: error }`; values are PagerDuty's
    /// `critical`, `error`, `warning`, `info`.
    #[serde(default)]
    pub severity_map: BTreeMap<Severity, String>,
    /// Messages per second (default: unlimited).
    pub rate_per_second: Option<f64>,
    /// HTTP timeout in seconds (default 10).
    pub timeout_seconds: Option<u64>,
}

/// Opsgenie Alerts API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOpsgenie {
    /// Environment variable holding the API key (sent as `Authorization: GenieKey ...`).
    pub api_key_env: Option<String>,
    /// File holding the API key.
    pub api_key_file: Option<PathBuf>,
    /// The API base URL (default `https://api.opsgenie.com`; EU: `https://api.eu.opsgenie.com`).
    pub api_url: Option<String>,
    /// Team names added as responders.
    #[serde(default)]
    pub responders: Vec<String>,
    /// Messages per second (default: unlimited).
    pub rate_per_second: Option<f64>,
    /// HTTP timeout in seconds (default 10).
    pub timeout_seconds: Option<u64>,
}

/// A generic webhook.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    /// The URL, when it holds no secret.
    pub url: Option<String>,
    /// Environment variable holding the URL (when it contains a token).
    pub url_env: Option<String>,
    /// File holding the URL.
    pub url_file: Option<PathBuf>,
    /// Extra headers (not secret: they are logged in errors).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A minijinja template producing the JSON body; the alert is `alert`, the delivery id
    /// `delivery_id`. Default: the alert's JSON.
    pub template: Option<String>,
    /// Environment variable holding the HMAC-SHA256 signing secret.
    pub signing_secret_env: Option<String>,
    /// File holding the signing secret.
    pub signing_secret_file: Option<PathBuf>,
    /// The signature header (default `X-Trailwatch-Signature`).
    pub signature_header: Option<String>,
    /// Messages per second (default: unlimited).
    pub rate_per_second: Option<f64>,
    /// HTTP timeout in seconds (default 10).
    pub timeout_seconds: Option<u64>,
}

/// Standard output.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStdout {
    /// `text` (default: one readable line) or `json` (the alert as one JSON line).
    pub format: Option<StdoutFormat>,
}

/// The format of the stdout destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StdoutFormat {
    /// `[severity] rule_id: title (account region)`.
    #[default]
    Text,
    /// The alert's JSON on one line.
    Json,
}

/// A JSON Lines file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJsonl {
    /// The file to append to (created if missing; `~/` is the home directory).
    pub path: String,
}

/// A route: which alerts go where. All given conditions must hold; an omitted one matches
/// everything.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Alerts of at least this severity.
    pub min_severity: Option<Severity>,
    /// Alerts of one of these rule ids.
    pub rules: Option<Vec<String>>,
    /// Alerts carrying at least one of these tags.
    pub tags: Option<Vec<String>>,
    /// Alerts of one of these account ids.
    pub accounts: Option<Vec<String>>,
    /// The destination names.
    pub to: Vec<String>,
    /// Batch matching alerts of at most `digest_max_severity` into one message per this
    /// many minutes.
    pub digest_minutes: Option<u32>,
    /// The highest severity that goes into a digest (default `medium`); more severe alerts
    /// are sent at once.
    pub digest_max_severity: Option<Severity>,
}

/// The outbox.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutbox {
    /// The SQLite file (default `outbox.sqlite` in the state folder).
    pub path: Option<String>,
    /// Attempts per delivery before it goes to the dead-letter list (default 12).
    pub max_attempts: Option<u32>,
    /// The first retry delay in milliseconds (default 1000); doubles each attempt.
    pub base_delay_ms: Option<u64>,
    /// The longest retry delay in seconds (default 600), also the cap for `Retry-After`.
    pub max_delay_seconds: Option<u64>,
    /// Deliveries in flight at once per destination (default 4).
    pub concurrency: Option<usize>,
    /// Hours to keep sent deliveries, which makes enqueue idempotent (default 168).
    pub retain_sent_hours: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// Validated config
// ---------------------------------------------------------------------------------------------

/// The validated notify configuration.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Destinations by name.
    pub destinations: BTreeMap<String, DestinationConfig>,
    /// Routes in file order.
    pub routes: Vec<Route>,
    /// Outbox settings.
    pub outbox: OutboxConfig,
}

/// One validated destination.
#[derive(Debug, Clone)]
pub struct DestinationConfig {
    /// Its name.
    pub name: String,
    /// What kind and its settings.
    pub kind: DestinationKind,
    /// Messages per second, when limited.
    pub rate_per_second: Option<f64>,
    /// Timeout per delivery attempt.
    pub timeout: Duration,
}

/// The kinds of destination with their validated settings.
#[derive(Debug, Clone)]
pub enum DestinationKind {
    /// Slack.
    Slack(SlackConfig),
    /// Email.
    Email(EmailConfig),
    /// SNS.
    Sns(SnsConfig),
    /// PagerDuty.
    PagerDuty(PagerDutyConfig),
    /// Opsgenie.
    Opsgenie(OpsgenieConfig),
    /// Webhook.
    Webhook(WebhookConfig),
    /// Stdout.
    Stdout(StdoutFormat),
    /// JSON Lines file.
    JsonLines(PathBuf),
}

impl DestinationKind {
    /// The `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            DestinationKind::Slack(_) => "slack",
            DestinationKind::Email(_) => "email",
            DestinationKind::Sns(_) => "sns",
            DestinationKind::PagerDuty(_) => "pagerduty",
            DestinationKind::Opsgenie(_) => "opsgenie",
            DestinationKind::Webhook(_) => "webhook",
            DestinationKind::Stdout(_) => "stdout",
            DestinationKind::JsonLines(_) => "jsonl",
        }
    }
}

/// How Slack is reached.
#[derive(Debug, Clone)]
pub enum SlackAuth {
    /// An incoming webhook URL (a secret).
    Webhook(SecretSource),
    /// A bot token for `chat.postMessage`.
    BotToken {
        /// The token.
        token: SecretSource,
        /// The Web API base URL.
        api_url: String,
    },
}

/// Slack settings.
#[derive(Debug, Clone)]
pub struct SlackConfig {
    /// Webhook or bot token.
    pub auth: SlackAuth,
    /// Default channel.
    pub channel: Option<String>,
    /// Channel per account.
    pub channel_by_account: BTreeMap<String, String>,
    /// Channel per rule.
    pub channel_by_rule: BTreeMap<String, String>,
}

impl SlackConfig {
    /// The channel for an alert: per rule, else per account, else the default.
    pub fn channel_for(&self, alert: &Alert) -> Option<&str> {
        self.channel_by_rule
            .get(&alert.rule_id)
            .or_else(|| self.channel_by_account.get(&alert.account))
            .or(self.channel.as_ref())
            .map(String::as_str)
    }
}

/// Email settings.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    /// SMTP host.
    pub smtp_host: String,
    /// SMTP port.
    pub port: u16,
    /// TLS mode.
    pub tls: TlsMode,
    /// Sender.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// User name and password source, when authenticating.
    pub credentials: Option<(String, SecretSource)>,
}

/// SNS settings.
#[derive(Debug, Clone)]
pub struct SnsConfig {
    /// Topic ARN.
    pub topic_arn: String,
    /// Region.
    pub region: Option<String>,
    /// Endpoint override.
    pub endpoint_url: Option<String>,
    /// Whether the topic is FIFO (its name ends in `.fifo`).
    pub fifo: bool,
    /// Message group id for FIFO topics.
    pub message_group_id: String,
    /// Static credentials (access key id, secret key), else the SDK's chain.
    pub credentials: Option<(SecretSource, SecretSource)>,
}

/// PagerDuty settings.
#[derive(Debug, Clone)]
pub struct PagerDutyConfig {
    /// Routing key.
    pub routing_key: SecretSource,
    /// Enqueue URL.
    pub events_url: String,
    /// `payload.source`.
    pub source: String,
    /// Severity overrides.
    pub severity_map: BTreeMap<Severity, String>,
}

/// Opsgenie settings.
#[derive(Debug, Clone)]
pub struct OpsgenieConfig {
    /// API key.
    pub api_key: SecretSource,
    /// API base URL.
    pub api_url: String,
    /// Team responders.
    pub responders: Vec<String>,
}

/// The webhook URL: inline or secret.
#[derive(Debug, Clone)]
pub enum WebhookUrl {
    /// Written in the config.
    Plain(String),
    /// From an environment variable or file.
    Secret(SecretSource),
}

/// Webhook settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// URL.
    pub url: WebhookUrl,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
    /// Body template (minijinja source), default the alert JSON.
    pub template: Option<String>,
    /// HMAC signing secret.
    pub signing_secret: Option<SecretSource>,
    /// Signature header name.
    pub signature_header: String,
}

/// A validated route.
#[derive(Debug, Clone)]
pub struct Route {
    /// Minimum severity.
    pub min_severity: Option<Severity>,
    /// Rule ids.
    pub rules: Option<BTreeSet<String>>,
    /// Tags.
    pub tags: Option<BTreeSet<String>>,
    /// Accounts.
    pub accounts: Option<BTreeSet<String>>,
    /// Destination names.
    pub to: Vec<String>,
    /// Digest window, when batching.
    pub digest: Option<Digest>,
}

/// Digest settings of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    /// Window length in minutes.
    pub minutes: u32,
    /// Highest severity batched.
    pub max_severity: Severity,
}

impl Route {
    /// Whether the route applies to an alert.
    pub fn matches(&self, alert: &Alert) -> bool {
        self.min_severity.is_none_or(|min| alert.severity >= min)
            && self
                .rules
                .as_ref()
                .is_none_or(|r| r.contains(&alert.rule_id))
            && self
                .tags
                .as_ref()
                .is_none_or(|t| alert.tags.iter().any(|tag| t.contains(tag)))
            && self
                .accounts
                .as_ref()
                .is_none_or(|a| a.contains(&alert.account))
    }
}

/// Outbox settings.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// The SQLite file the config names; `None` means `outbox.sqlite` in the state folder
    /// (see [`OutboxConfig::path_in`]).
    pub path: Option<PathBuf>,
    /// Attempts before dead-lettering.
    pub max_attempts: u32,
    /// First retry delay.
    pub base_delay: Duration,
    /// Longest retry delay.
    pub max_delay: Duration,
    /// In-flight deliveries per destination.
    pub concurrency: usize,
    /// How long sent deliveries are kept.
    pub retain_sent: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            path: None,
            max_attempts: 12,
            base_delay: Duration::from_millis(1000),
            max_delay: Duration::from_secs(600),
            concurrency: 4,
            retain_sent: Duration::from_secs(168 * 3600),
        }
    }
}

impl OutboxConfig {
    /// The outbox file: the configured path, or `outbox.sqlite` in `state_dir`.
    pub fn path_in(&self, state_dir: &Path) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| state_dir.join("outbox.sqlite"))
    }
}

impl Default for NotifyConfig {
    /// The embedded default: alerts go to standard output.
    fn default() -> Self {
        NotifyConfig {
            destinations: BTreeMap::new(),
            routes: Vec::new(),
            outbox: OutboxConfig::default(),
        }
    }
}

/// The name of the implicit destination that takes alerts no route matches.
pub const DEFAULT_DESTINATION: &str = "stdout";

impl NotifyConfig {
    /// The destinations an alert goes to, each with its digest setting (`None`: send now).
    /// When no route matches, the alert goes to [`DEFAULT_DESTINATION`] so that nothing is
    /// dropped silently.
    pub fn route(&self, alert: &Alert) -> Vec<(String, Option<Digest>)> {
        let mut out: BTreeMap<String, Option<Digest>> = BTreeMap::new();
        for route in self.routes.iter().filter(|r| r.matches(alert)) {
            let digest = route.digest.filter(|d| alert.severity <= d.max_severity);
            for name in &route.to {
                match out.get(name) {
                    // An immediate route wins over a digest one.
                    Some(None) => {}
                    Some(Some(_)) if digest.is_none() => {
                        out.insert(name.clone(), None);
                    }
                    Some(Some(_)) => {}
                    None => {
                        out.insert(name.clone(), digest);
                    }
                }
            }
        }
        if out.is_empty() {
            out.insert(DEFAULT_DESTINATION.to_owned(), None);
        }
        out.into_iter().collect()
    }

    /// The destination by name, including the implicit `stdout`.
    pub fn destination(&self, name: &str) -> Option<DestinationConfig> {
        self.destinations.get(name).cloned().or_else(|| {
            (name == DEFAULT_DESTINATION).then(|| DestinationConfig {
                name: DEFAULT_DESTINATION.to_owned(),
                kind: DestinationKind::Stdout(StdoutFormat::Text),
                rate_per_second: None,
                timeout: Duration::from_secs(10),
            })
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------------------------

/// One configuration error, located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfigError {
    /// The file (or other origin) name.
    pub origin: String,
    /// The 1-based line in that file, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for NotifyConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.origin, line, self.reason),
            None => write!(f, "{}: {}", self.origin, self.reason),
        }
    }
}

impl std::error::Error for NotifyConfigError {}

/// Parses and validates the notify sections. `yaml` is a mapping with any of the keys
/// `destinations`, `routes`, `outbox`; `first_line` is the 1-based line of `origin` where
/// `yaml` starts, so errors name the line in the real file.
pub fn parse_section(
    origin: &str,
    yaml: &str,
    first_line: usize,
) -> Result<NotifyConfig, Vec<NotifyConfigError>> {
    parse_sections(&[(origin, yaml, first_line)])
}

/// Like [`parse_section`] for sections given separately (e.g. each with its own start line),
/// validated together so routes can name destinations from another snippet.
pub fn parse_sections(
    parts: &[(&str, &str, usize)],
) -> Result<NotifyConfig, Vec<NotifyConfigError>> {
    let texts: Vec<SectionText<'_>> = parts
        .iter()
        .map(|&(origin, yaml, first_line)| SectionText {
            key: None,
            origin,
            yaml,
            first_line,
        })
        .collect();
    parse_texts(&texts)
}

/// One piece of YAML for [`parse_texts`].
#[derive(Debug, Clone, Copy)]
pub struct SectionText<'a> {
    /// `None` when `yaml` is a mapping with any of the keys `destinations`, `routes`,
    /// `outbox`; `Some(key)` when `yaml` is the value of that one key.
    pub key: Option<&'a str>,
    /// The file name (or other origin) for error messages.
    pub origin: &'a str,
    /// The YAML text.
    pub yaml: &'a str,
    /// The 1-based line of `origin` where `yaml` starts.
    pub first_line: usize,
}

fn parse_yaml<T: serde::de::DeserializeOwned + Default>(
    yaml: &str,
) -> Result<T, (Option<u64>, String)> {
    if yaml.trim().is_empty() {
        return Ok(T::default());
    }
    serde_saphyr::from_str(yaml).map_err(|e| {
        (
            e.location().map(|l| l.line()),
            first_line_of(&e.to_string()),
        )
    })
}

/// The most general entry point: sections given as whole mappings or as single values (as a
/// config loader that keeps each section's value text with its start line would hand them
/// over), validated together.
pub fn parse_texts(parts: &[SectionText<'_>]) -> Result<NotifyConfig, Vec<NotifyConfigError>> {
    let mut errors = Vec::new();
    let mut v = Validator {
        errors: &mut errors,
        config: NotifyConfig::default(),
        route_refs: Vec::new(),
    };
    for part in parts {
        let (origin, first_line) = (part.origin, part.first_line);
        let at = |line: u64| first_line + (line.max(1) as usize) - 1;
        let parsed: Result<RawNotifySections, _> = match part.key {
            None => parse_yaml(part.yaml),
            Some("destinations") => parse_yaml(part.yaml).map(|destinations| RawNotifySections {
                destinations,
                ..RawNotifySections::default()
            }),
            Some("routes") => parse_yaml(part.yaml).map(|routes| RawNotifySections {
                routes,
                ..RawNotifySections::default()
            }),
            Some("outbox") => parse_yaml::<Option<Spanned<RawOutbox>>>(part.yaml).map(|outbox| {
                RawNotifySections {
                    outbox,
                    ..RawNotifySections::default()
                }
            }),
            Some(other) => Err((
                None,
                format!("unknown section {other:?}: expected destinations, routes or outbox"),
            )),
        };
        let raw = match parsed {
            Ok(raw) => raw,
            Err((line, reason)) => {
                v.errors.push(NotifyConfigError {
                    origin: origin.to_owned(),
                    line: Some(line.map(at).unwrap_or(first_line)),
                    reason,
                });
                continue;
            }
        };
        for (name, dest) in raw.destinations {
            let line = at(dest.referenced.line());
            v.destination(origin, line, name, dest.value);
        }
        for route in raw.routes {
            let line = at(route.referenced.line());
            v.route(origin, line, route.value);
        }
        if let Some(outbox) = raw.outbox {
            let line = at(outbox.referenced.line());
            v.outbox(origin, line, outbox.value);
        }
    }
    let Validator {
        config, route_refs, ..
    } = v;
    for (origin, line, name) in route_refs {
        if config.destination(&name).is_none() {
            errors.push(NotifyConfigError {
                origin,
                line: Some(line),
                reason: format!("route names unknown destination {name:?}"),
            });
        }
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

fn first_line_of(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim().to_owned()
}

struct Validator<'a> {
    errors: &'a mut Vec<NotifyConfigError>,
    config: NotifyConfig,
    route_refs: Vec<(String, usize, String)>,
}

impl Validator<'_> {
    fn err(&mut self, origin: &str, line: usize, reason: impl Into<String>) {
        self.errors.push(NotifyConfigError {
            origin: origin.to_owned(),
            line: Some(line),
            reason: reason.into(),
        });
    }

    /// Exactly one of `{field}_env` / `{field}_file` (or none when optional).
    #[allow(clippy::too_many_arguments)] // one call site per secret field; a struct would only rename them
    fn secret(
        &mut self,
        origin: &str,
        line: usize,
        ctx: &str,
        field: &str,
        env: Option<String>,
        file: Option<PathBuf>,
        required: bool,
    ) -> Option<SecretSource> {
        match (env, file) {
            (Some(_), Some(_)) => {
                self.err(
                    origin,
                    line,
                    format!("{ctx}: give only one of {field}_env and {field}_file"),
                );
                None
            }
            (Some(e), None) if e.is_empty() => {
                self.err(origin, line, format!("{ctx}: {field}_env is empty"));
                None
            }
            (Some(e), None) => Some(SecretSource::Env(e)),
            (None, Some(f)) => Some(SecretSource::File(expand_home(&f.to_string_lossy()))),
            (None, None) => {
                if required {
                    self.err(
                        origin,
                        line,
                        format!("{ctx}: {field}_env or {field}_file is required (secrets are never inline)"),
                    );
                }
                None
            }
        }
    }

    fn rate(&mut self, origin: &str, line: usize, ctx: &str, rate: Option<f64>) -> Option<f64> {
        match rate {
            Some(r) if !(r.is_finite() && r > 0.0) => {
                self.err(
                    origin,
                    line,
                    format!("{ctx}: rate_per_second must be a positive number, got {r}"),
                );
                None
            }
            other => other,
        }
    }

    fn url(&mut self, origin: &str, line: usize, ctx: &str, url: &str) {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            self.err(
                origin,
                line,
                format!("{ctx}: {url:?} is not an http(s) URL"),
            );
        }
    }

    fn destination(&mut self, origin: &str, line: usize, name: String, raw: RawDestination) {
        let ctx = format!("destination {name:?}");
        if name.is_empty() || name.contains(char::is_whitespace) {
            self.err(
                origin,
                line,
                format!("{ctx}: names must be non-empty without spaces"),
            );
        }
        let timeout =
            |t: Option<u64>, default: u64| Duration::from_secs(t.unwrap_or(default).max(1));
        let (kind, rate, timeout) = match raw {
            RawDestination::Slack(s) => {
                let webhook = self.secret(
                    origin,
                    line,
                    &ctx,
                    "webhook_url",
                    s.webhook_url_env,
                    s.webhook_url_file,
                    false,
                );
                let token = self.secret(
                    origin,
                    line,
                    &ctx,
                    "bot_token",
                    s.bot_token_env,
                    s.bot_token_file,
                    false,
                );
                let api_url = s
                    .api_url
                    .unwrap_or_else(|| "https://slack.com/api".to_owned());
                self.url(origin, line, &ctx, &api_url);
                let auth = match (webhook, token) {
                    (Some(w), None) => {
                        if !s.channel_by_account.is_empty() || !s.channel_by_rule.is_empty() {
                            self.err(origin, line, format!("{ctx}: channel_by_account and channel_by_rule need bot_token_env/bot_token_file (an incoming webhook posts to one channel)"));
                        }
                        Some(SlackAuth::Webhook(w))
                    }
                    (None, Some(token)) => {
                        if s.channel.is_none() {
                            self.err(
                                origin,
                                line,
                                format!("{ctx}: a bot token needs a default channel"),
                            );
                        }
                        Some(SlackAuth::BotToken {
                            token,
                            api_url: api_url.trim_end_matches('/').to_owned(),
                        })
                    }
                    (Some(_), Some(_)) => {
                        self.err(
                            origin,
                            line,
                            format!("{ctx}: give either a webhook URL or a bot token, not both"),
                        );
                        None
                    }
                    (None, None) => {
                        self.err(origin, line, format!("{ctx}: needs webhook_url_env/webhook_url_file or bot_token_env/bot_token_file"));
                        None
                    }
                };
                let rate = self.rate(origin, line, &ctx, s.rate_per_second.or(Some(1.0)));
                (
                    auth.map(|auth| {
                        DestinationKind::Slack(SlackConfig {
                            auth,
                            channel: s.channel,
                            channel_by_account: s.channel_by_account,
                            channel_by_rule: s.channel_by_rule,
                        })
                    }),
                    rate,
                    timeout(s.timeout_seconds, 10),
                )
            }
            RawDestination::Email(e) => {
                let password = self.secret(
                    origin,
                    line,
                    &ctx,
                    "password",
                    e.password_env,
                    e.password_file,
                    false,
                );
                let credentials = match (e.username, password) {
                    (Some(u), Some(p)) => Some((u, p)),
                    (None, None) => None,
                    _ => {
                        self.err(
                            origin,
                            line,
                            format!("{ctx}: username and password_env/password_file go together"),
                        );
                        None
                    }
                };
                let tls = e.tls.unwrap_or(TlsMode::Starttls);
                let port = e.port.unwrap_or(match tls {
                    TlsMode::Starttls => 587,
                    TlsMode::Tls => 465,
                    TlsMode::None => 25,
                });
                if e.from.parse::<lettre::message::Mailbox>().is_err() {
                    self.err(
                        origin,
                        line,
                        format!("{ctx}: from {:?} is not an email address", e.from),
                    );
                }
                if e.to.is_empty() {
                    self.err(
                        origin,
                        line,
                        format!("{ctx}: to needs at least one address"),
                    );
                }
                for to in &e.to {
                    if to.parse::<lettre::message::Mailbox>().is_err() {
                        self.err(
                            origin,
                            line,
                            format!("{ctx}: to {to:?} is not an email address"),
                        );
                    }
                }
                let rate = self.rate(origin, line, &ctx, e.rate_per_second);
                (
                    Some(DestinationKind::Email(EmailConfig {
                        smtp_host: e.smtp_host,
                        port,
                        tls,
                        from: e.from,
                        to: e.to,
                        credentials,
                    })),
                    rate,
                    timeout(e.timeout_seconds, 30),
                )
            }
            RawDestination::Sns(s) => {
                let key_id = self.secret(
                    origin,
                    line,
                    &ctx,
                    "access_key_id",
                    s.access_key_id_env,
                    s.access_key_id_file,
                    false,
                );
                let secret_key = self.secret(
                    origin,
                    line,
                    &ctx,
                    "secret_access_key",
                    s.secret_access_key_env,
                    s.secret_access_key_file,
                    false,
                );
                let credentials = match (key_id, secret_key) {
                    (Some(a), Some(b)) => Some((a, b)),
                    (None, None) => None,
                    _ => {
                        self.err(
                            origin,
                            line,
                            format!("{ctx}: access_key_id and secret_access_key go together"),
                        );
                        None
                    }
                };
                let parts: Vec<&str> = s.topic_arn.split(':').collect();
                if parts.len() != 6 || parts[0] != "arn" || parts[2] != "sns" {
                    self.err(
                        origin,
                        line,
                        format!("{ctx}: {:?} is not an SNS topic ARN", s.topic_arn),
                    );
                }
                let region = s.region.or_else(|| {
                    parts
                        .get(3)
                        .filter(|r| !r.is_empty())
                        .map(|r| (*r).to_owned())
                });
                if let Some(url) = &s.endpoint_url {
                    self.url(origin, line, &ctx, url);
                }
                let rate = self.rate(origin, line, &ctx, s.rate_per_second);
                (
                    Some(DestinationKind::Sns(SnsConfig {
                        fifo: s.topic_arn.ends_with(".fifo"),
                        topic_arn: s.topic_arn,
                        region,
                        endpoint_url: s.endpoint_url,
                        message_group_id: s
                            .message_group_id
                            .unwrap_or_else(|| "trailwatch".to_owned()),
                        credentials,
                    })),
                    rate,
                    timeout(s.timeout_seconds, 10),
                )
            }
            RawDestination::Pagerduty(p) => {
                let key = self.secret(
                    origin,
                    line,
                    &ctx,
                    "routing_key",
                    p.routing_key_env,
                    p.routing_key_file,
                    true,
                );
                let events_url = p
                    .events_url
                    .unwrap_or_else(|| "https://events.pagerduty.com/v2/enqueue".to_owned());
                self.url(origin, line, &ctx, &events_url);
                for (sev, pd) in &p.severity_map {
                    if !["critical", "error", "warning", "info"].contains(&pd.as_str()) {
                        self.err(origin, line, format!("{ctx}: severity_map.{sev}: {pd:?} is not one of critical, error, warning, info"));
                    }
                }
                let rate = self.rate(origin, line, &ctx, p.rate_per_second);
                (
                    key.map(|routing_key| {
                        DestinationKind::PagerDuty(PagerDutyConfig {
                            routing_key,
                            events_url,
                            source: p.source.unwrap_or_else(|| "trailwatch".to_owned()),
                            severity_map: p.severity_map,
                        })
                    }),
                    rate,
                    timeout(p.timeout_seconds, 10),
                )
            }
            RawDestination::Opsgenie(o) => {
                let key = self.secret(
                    origin,
                    line,
                    &ctx,
                    "api_key",
                    o.api_key_env,
                    o.api_key_file,
                    true,
                );
                let api_url = o
                    .api_url
                    .unwrap_or_else(|| "https://api.opsgenie.com".to_owned());
                self.url(origin, line, &ctx, &api_url);
                let rate = self.rate(origin, line, &ctx, o.rate_per_second);
                (
                    key.map(|api_key| {
                        DestinationKind::Opsgenie(OpsgenieConfig {
                            api_key,
                            api_url: api_url.trim_end_matches('/').to_owned(),
                            responders: o.responders,
                        })
                    }),
                    rate,
                    timeout(o.timeout_seconds, 10),
                )
            }
            RawDestination::Webhook(w) => {
                let secret_url =
                    self.secret(origin, line, &ctx, "url", w.url_env, w.url_file, false);
                let url = match (w.url, secret_url) {
                    (Some(u), None) => {
                        self.url(origin, line, &ctx, &u);
                        Some(WebhookUrl::Plain(u))
                    }
                    (None, Some(s)) => Some(WebhookUrl::Secret(s)),
                    _ => {
                        self.err(
                            origin,
                            line,
                            format!("{ctx}: give exactly one of url, url_env, url_file"),
                        );
                        None
                    }
                };
                if let Some(Err(e)) = w
                    .template
                    .as_deref()
                    .map(crate::payload::webhook::compile_check)
                {
                    self.err(origin, line, format!("{ctx}: template: {e}"));
                }
                for name in w.headers.keys() {
                    if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        self.err(
                            origin,
                            line,
                            format!("{ctx}: {name:?} is not a valid header name"),
                        );
                    }
                }
                let signing_secret = self.secret(
                    origin,
                    line,
                    &ctx,
                    "signing_secret",
                    w.signing_secret_env,
                    w.signing_secret_file,
                    false,
                );
                let rate = self.rate(origin, line, &ctx, w.rate_per_second);
                (
                    url.map(|url| {
                        DestinationKind::Webhook(WebhookConfig {
                            url,
                            headers: w.headers,
                            template: w.template,
                            signing_secret,
                            signature_header: w
                                .signature_header
                                .unwrap_or_else(|| "X-Trailwatch-Signature".to_owned()),
                        })
                    }),
                    rate,
                    timeout(w.timeout_seconds, 10),
                )
            }
            RawDestination::Stdout(s) => (
                Some(DestinationKind::Stdout(s.format.unwrap_or_default())),
                None,
                Duration::from_secs(10),
            ),
            RawDestination::Jsonl(j) => {
                if j.path.is_empty() {
                    self.err(origin, line, format!("{ctx}: path is empty"));
                }
                (
                    Some(DestinationKind::JsonLines(expand_home(&j.path))),
                    None,
                    Duration::from_secs(10),
                )
            }
        };
        if let Some(kind) = kind {
            self.config.destinations.insert(
                name.clone(),
                DestinationConfig {
                    name,
                    kind,
                    rate_per_second: rate,
                    timeout,
                },
            );
        }
    }

    fn route(&mut self, origin: &str, line: usize, raw: RawRoute) {
        if raw.to.is_empty() {
            self.err(origin, line, "route: to needs at least one destination");
        }
        for name in &raw.to {
            self.route_refs
                .push((origin.to_owned(), line, name.clone()));
        }
        let digest = match (raw.digest_minutes, raw.digest_max_severity) {
            (Some(m), _) if m == 0 || m > 1440 => {
                self.err(
                    origin,
                    line,
                    format!("route: digest_minutes must be 1..=1440, got {m}"),
                );
                None
            }
            (Some(minutes), max) => Some(Digest {
                minutes,
                max_severity: max.unwrap_or(Severity::Medium),
            }),
            (None, Some(_)) => {
                self.err(
                    origin,
                    line,
                    "route: digest_max_severity needs digest_minutes",
                );
                None
            }
            (None, None) => None,
        };
        let set = |v: Option<Vec<String>>| v.map(|v| v.into_iter().collect::<BTreeSet<_>>());
        self.config.routes.push(Route {
            min_severity: raw.min_severity,
            rules: set(raw.rules),
            tags: set(raw.tags),
            accounts: set(raw.accounts),
            to: raw.to,
            digest,
        });
    }

    fn outbox(&mut self, origin: &str, line: usize, raw: RawOutbox) {
        let d = OutboxConfig::default();
        if raw.max_attempts == Some(0) {
            self.err(origin, line, "outbox: max_attempts must be at least 1");
        }
        if raw.concurrency == Some(0) {
            self.err(origin, line, "outbox: concurrency must be at least 1");
        }
        self.config.outbox = OutboxConfig {
            path: raw.path.map(|p| expand_home(&p)).or(d.path),
            max_attempts: raw.max_attempts.unwrap_or(d.max_attempts).max(1),
            base_delay: raw
                .base_delay_ms
                .map(Duration::from_millis)
                .unwrap_or(d.base_delay),
            max_delay: raw
                .max_delay_seconds
                .map(Duration::from_secs)
                .unwrap_or(d.max_delay),
            concurrency: raw.concurrency.unwrap_or(d.concurrency).max(1),
            retain_sent: raw
                .retain_sent_hours
                .map(|h| Duration::from_secs(h * 3600))
                .unwrap_or(d.retain_sent),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "destinations:
  sec-slack: { type: slack, webhook_url_env: SLACK_WEBHOOK_URL, rate_per_second: 1 }
  oncall:    { type: pagerduty, routing_key_env: PD_ROUTING_KEY }
  mail:      { type: email, smtp_host: smtp.example.com, port: 587, tls: starttls, from: trailwatch@example.com, to: [sec@example.com], username: tw, password_file: /run/secrets/smtp }
routes:
  - { min_severity: high, to: [oncall, sec-slack] }
  - { rules: [ec2-security-group-changed], to: [sec-slack], digest_minutes: 15 }
outbox: { path: /tmp/outbox.sqlite, max_attempts: 12 }
";

    fn alert(rule: &str, severity: Severity) -> Alert {
        crate::sample_alert(rule, severity, "k1")
    }

    #[test]
    fn parses_the_issue_example() {
        let config = parse_section("trailwatch.yaml", EXAMPLE, 10).unwrap();
        assert_eq!(config.destinations.len(), 3);
        assert_eq!(config.destinations["sec-slack"].rate_per_second, Some(1.0));
        assert!(matches!(
            config.destinations["mail"].kind,
            DestinationKind::Email(EmailConfig {
                port: 587,
                tls: TlsMode::Starttls,
                ..
            })
        ));
        assert_eq!(config.outbox.max_attempts, 12);
        assert_eq!(
            config.outbox.path,
            Some(PathBuf::from("/tmp/outbox.sqlite"))
        );
        assert_eq!(
            config.outbox.path_in(Path::new("/state")),
            PathBuf::from("/tmp/outbox.sqlite")
        );
        assert_eq!(
            NotifyConfig::default().outbox.path_in(Path::new("/state")),
            PathBuf::from("/state/outbox.sqlite")
        );
        assert_eq!(config.routes.len(), 2);

        let high = alert("iam-root-login", Severity::High);
        assert_eq!(
            config.route(&high),
            vec![("oncall".to_owned(), None), ("sec-slack".to_owned(), None)]
        );
        let low_sg = alert("ec2-security-group-changed", Severity::Low);
        assert_eq!(
            config.route(&low_sg),
            vec![(
                "sec-slack".to_owned(),
                Some(Digest {
                    minutes: 15,
                    max_severity: Severity::Medium
                })
            )]
        );
        // A high SG alert matches both routes: the immediate one wins.
        let high_sg = alert("ec2-security-group-changed", Severity::High);
        assert_eq!(config.route(&high_sg).len(), 2);
        assert!(config.route(&high_sg).iter().all(|(_, d)| d.is_none()));
        // Nothing matches: the implicit stdout destination.
        let info = alert("other", Severity::Info);
        assert_eq!(config.route(&info), vec![("stdout".to_owned(), None)]);
    }

    #[test]
    fn reports_all_errors_with_file_lines() {
        let yaml = "destinations:
  a: { type: slack }
  b: { type: pagerduty, routing_key: inline-secret }
  c: { type: webhook, url: ftp://x, rate_per_second: 0 }
routes:
  - { to: [nope] }
";
        let errors = parse_section("tw.yaml", yaml, 20).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        // The unknown field `routing_key` is a parse error: serde stops there.
        assert!(
            text.iter()
                .any(|e| e.starts_with("tw.yaml:") && e.contains("routing_key")),
            "{text:?}"
        );
        let yaml = "destinations:
  a: { type: slack }
  c: { type: webhook, url: ftp://x, rate_per_second: 0 }
routes:
  - { to: [nope] }
";
        let errors = parse_section("tw.yaml", yaml, 20).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 4, "{text:?}");
        assert!(text[0].starts_with("tw.yaml:21: destination \"a\": needs webhook_url_env"));
        assert!(text[1].starts_with("tw.yaml:22:") && text[1].contains("not an http(s) URL"));
        assert!(text[2].starts_with("tw.yaml:22:") && text[2].contains("rate_per_second"));
        assert_eq!(
            text[3],
            "tw.yaml:24: route names unknown destination \"nope\""
        );
    }

    #[test]
    fn sections_can_be_given_separately() {
        let config = parse_sections(&[
            (
                "tw.yaml",
                "destinations:\n  hook: { type: webhook, url: 'http://127.0.0.1:9/x' }\n",
                3,
            ),
            ("tw.yaml", "routes:\n  - { to: [hook] }\n", 40),
        ])
        .unwrap();
        assert_eq!(config.routes[0].to, vec!["hook".to_owned()]);
        let config = parse_texts(&[
            SectionText {
                key: Some("destinations"),
                origin: "tw.yaml",
                yaml: "hook: { type: stdout, format: json }\n",
                first_line: 3,
            },
            SectionText {
                key: Some("routes"),
                origin: "tw.yaml",
                yaml: "- { to: [hook] }\n",
                first_line: 9,
            },
            SectionText {
                key: Some("outbox"),
                origin: "tw.yaml",
                yaml: "{ max_attempts: 3 }",
                first_line: 12,
            },
        ])
        .unwrap();
        assert_eq!(config.outbox.max_attempts, 3);
        assert!(matches!(
            config.destinations["hook"].kind,
            DestinationKind::Stdout(StdoutFormat::Json)
        ));
        let err = parse_texts(&[SectionText {
            key: Some("routes"),
            origin: "tw.yaml",
            yaml: "- { to: [hook] }\n- { to: [nope] }\n",
            first_line: 9,
        }])
        .unwrap_err();
        assert_eq!(err.len(), 2);
        assert_eq!(
            err[1].to_string(),
            "tw.yaml:10: route names unknown destination \"nope\""
        );
        let err = parse_sections(&[("tw.yaml", "routes:\n  - { to: [hook], colour: red }\n", 40)])
            .unwrap_err();
        assert_eq!(err[0].line, Some(41), "{err:?}");
    }
}
