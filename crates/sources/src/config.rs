//! The `sources:` section of `trailwatch.yaml`.
//!
//! Two stages: raw serde structs (unknown fields are errors, every field documented), then
//! [`parse_section`] checks values and reports **every** error at once with origin and line.
//!
//! ```yaml
//! sources:
//!   aws: { region: us-east-1 }
//!   dedup_horizon: 24h
//!   sqs:
//!     - name: trail-files
//!       queue_url: https://sqs.us-east-1.amazonaws.com/111122223333/trailwatch-files
//!     - name: trail-events
//!       queue_url: https://sqs.us-east-1.amazonaws.com/111122223333/trailwatch-events
//!   sns_http:
//!     listen: 127.0.0.1:8088
//!     allowed_topics: [arn:aws:sns:us-east-1:111122223333:trailwatch]
//!   s3_poll:
//!     - name: org-trail
//!       url: s3://org-trail-bucket/AWSLogs/o-abc123/
//!       since: 2026-01-01
//!   deadman: { after: 2h }
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

/// AWS client settings shared by every source. Credentials always come from the standard
/// chain (environment, profile, SSO, instance or task role); they are never configured here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// The region for SQS and S3 calls; the standard chain's region when absent.
    #[serde(default)]
    pub region: Option<String>,
    /// An endpoint override (an emulator such as moto, or a VPC endpoint).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Address S3 as `endpoint/bucket/key` instead of `bucket.endpoint/key` (emulators
    /// need it). Defaults to true when `endpoint_url` is set.
    #[serde(default)]
    pub force_path_style: Option<bool>,
    /// A named profile from `~/.aws/config` instead of the default one.
    #[serde(default)]
    pub profile: Option<String>,
}

/// One SQS queue carrying S3 notifications or EventBridge events (or both).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqsConfig {
    /// A name for logs and metrics; unique among sources.
    pub name: String,
    /// The queue URL, e.g. `https://sqs.us-east-1.amazonaws.com/111122223333/trailwatch`.
    pub queue_url: String,
    /// Messages processed at once (each may stream one log file). 1 to 64.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Long-poll wait per receive (at most 20s).
    #[serde(default = "default_wait", deserialize_with = "de_duration")]
    pub wait_time: Duration,
    /// Visibility timeout asked for on receive; extended while a message is still being
    /// processed. 1s to 12h.
    #[serde(default = "default_visibility", deserialize_with = "de_duration")]
    pub visibility_timeout: Duration,
    /// A failing message is tried this many times (by `ApproximateReceiveCount`); after that
    /// it is left alone for the queue's redrive policy to move to the dead-letter queue.
    #[serde(default = "default_max_receives")]
    pub max_receives: u32,
    /// How long a failed message stays invisible before its next try.
    #[serde(default = "default_retry_delay", deserialize_with = "de_duration")]
    pub retry_delay: Duration,
    /// Events handed to the pipeline per batch while streaming a log file (bounds memory).
    #[serde(default = "default_batch_events")]
    pub batch_events: usize,
}

/// The HTTP(S) endpoint SNS subscriptions post to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnsHttpConfig {
    /// Address to listen on. Loopback unless you mean otherwise.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The URL path SNS posts to.
    #[serde(default = "default_path")]
    pub path: String,
    /// Topic ARNs whose messages are accepted and whose subscriptions are confirmed
    /// automatically. Anything else gets 403.
    pub allowed_topics: Vec<String>,
    /// A PEM certificate chain to serve TLS with (omit behind a TLS-terminating proxy).
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key for `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Messages whose `Timestamp` is older than this are rejected as replays.
    #[serde(default = "default_max_age", deserialize_with = "de_duration")]
    pub max_age: Duration,
    /// Testing only: a PEM certificate to verify signatures with instead of downloading
    /// `SigningCertURL` (whose https/host rules still apply).
    #[serde(default)]
    pub trusted_cert_pem: Option<PathBuf>,
}

/// An S3 prefix polled for log files (history, or when no notifications exist).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3PollConfig {
    /// A name for logs and metrics; unique among sources.
    pub name: String,
    /// `s3://bucket/prefix`, usually `s3://bucket/AWSLogs/` or `s3://bucket/AWSLogs/o-xxxx/`.
    pub url: String,
    /// The first day to read (`YYYY-MM-DD` or RFC 3339); today when absent.
    #[serde(default)]
    pub since: Option<String>,
    /// Pause between listings.
    #[serde(default = "default_interval", deserialize_with = "de_duration")]
    pub interval: Duration,
    /// Only these accounts (all when empty).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Only these regions (all when empty).
    #[serde(default)]
    pub regions: Vec<String>,
}

/// The dead-man check: alert when an account/region that delivered log files stops.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadmanConfig {
    /// Silence longer than this raises `trailwatch-delivery-stopped`.
    #[serde(default = "default_after", deserialize_with = "de_duration")]
    pub after: Duration,
    /// How often the check runs.
    #[serde(default = "default_check_every", deserialize_with = "de_duration")]
    pub check_every: Duration,
}

impl Default for DeadmanConfig {
    fn default() -> Self {
        DeadmanConfig {
            after: default_after(),
            check_every: default_check_every(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSources {
    /// AWS client settings.
    #[serde(default)]
    aws: AwsSettings,
    /// Dedup horizon.
    #[serde(default)]
    dedup_horizon: Option<Spanned<String>>,
    /// Queues.
    #[serde(default)]
    sqs: Vec<Spanned<SqsConfig>>,
    /// SNS endpoint.
    #[serde(default)]
    sns_http: Option<Spanned<SnsHttpConfig>>,
    /// Pollers.
    #[serde(default)]
    s3_poll: Vec<Spanned<S3PollConfig>>,
    /// Dead-man check.
    #[serde(default)]
    deadman: Option<Spanned<DeadmanConfig>>,
}

/// The validated `sources:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcesConfig {
    /// AWS client settings.
    pub aws: AwsSettings,
    /// How long (in event time) an event id is remembered for dedup. Default 24h.
    pub dedup_horizon: Duration,
    /// Queues to consume.
    pub sqs: Vec<SqsConfig>,
    /// The SNS endpoint, if any.
    pub sns_http: Option<SnsHttpConfig>,
    /// Prefixes to poll.
    pub s3_poll: Vec<S3PollConfig>,
    /// The dead-man check, if enabled.
    pub deadman: Option<DeadmanConfig>,
}

impl Default for SourcesConfig {
    fn default() -> Self {
        SourcesConfig {
            aws: AwsSettings::default(),
            dedup_horizon: Duration::from_secs(24 * 3600),
            sqs: Vec::new(),
            sns_http: None,
            s3_poll: Vec::new(),
            deadman: None,
        }
    }
}

/// One problem in the `sources:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcesConfigError {
    /// The file.
    pub origin: String,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for SourcesConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.origin, line, self.reason),
            None => write!(f, "{}: {}", self.origin, self.reason),
        }
    }
}

impl std::error::Error for SourcesConfigError {}

/// Parses and checks the value of the `sources:` key.
///
/// `yaml` is the section's text; `first_line` is the file line its first line sits on (pass
/// 1 for a `RawSection` from `trailwatch-config`, whose text is padded to original lines).
pub fn parse_section(
    origin: &str,
    yaml: &str,
    first_line: usize,
) -> Result<SourcesConfig, Vec<SourcesConfigError>> {
    let at = |line: u64| first_line + (line.max(1) as usize) - 1;
    let err = |line: Option<usize>, reason: String| SourcesConfigError {
        origin: origin.to_owned(),
        line,
        reason,
    };
    let raw: RawSources = if yaml.trim().is_empty() {
        RawSources::default()
    } else {
        match serde_saphyr::from_str(yaml) {
            Ok(raw) => raw,
            Err(e) => {
                let line = e.location().map(|l| at(l.line()));
                let reason = e
                    .without_snippet()
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                return Err(vec![err(line, reason)]);
            }
        }
    };
    let mut errors = Vec::new();
    let mut config = SourcesConfig {
        aws: raw.aws,
        ..SourcesConfig::default()
    };
    if let Some(h) = raw.dedup_horizon {
        match parse_duration(&h.value) {
            Ok(d) if d >= Duration::from_secs(60) => config.dedup_horizon = d,
            Ok(_) => errors.push(err(
                Some(at(h.referenced.line())),
                "dedup_horizon must be at least 1m".into(),
            )),
            Err(e) => errors.push(err(Some(at(h.referenced.line())), e)),
        }
    }
    let mut names = BTreeSet::new();
    for q in raw.sqs {
        let line = Some(at(q.referenced.line()));
        let q = q.value;
        check_name(&q.name, &mut names, |r| errors.push(err(line, r)));
        if !(q.queue_url.starts_with("https://") || q.queue_url.starts_with("http://")) {
            errors.push(err(
                line,
                format!(
                    "sqs {}: queue_url must be an http(s) URL, got {:?}",
                    q.name, q.queue_url
                ),
            ));
        }
        if !(1..=64).contains(&q.concurrency) {
            errors.push(err(
                line,
                format!("sqs {}: concurrency must be 1 to 64", q.name),
            ));
        }
        if q.wait_time > Duration::from_secs(20) {
            errors.push(err(
                line,
                format!("sqs {}: wait_time is at most 20s", q.name),
            ));
        }
        if q.visibility_timeout < Duration::from_secs(1)
            || q.visibility_timeout > Duration::from_secs(12 * 3600)
        {
            errors.push(err(
                line,
                format!("sqs {}: visibility_timeout must be 1s to 12h", q.name),
            ));
        }
        if q.max_receives == 0 {
            errors.push(err(
                line,
                format!("sqs {}: max_receives must be at least 1", q.name),
            ));
        }
        if q.batch_events == 0 {
            errors.push(err(
                line,
                format!("sqs {}: batch_events must be at least 1", q.name),
            ));
        }
        config.sqs.push(q);
    }
    if let Some(s) = raw.sns_http {
        let line = Some(at(s.referenced.line()));
        let s = s.value;
        if s.allowed_topics.is_empty() {
            errors.push(err(
                line,
                "sns_http: allowed_topics must name at least one topic ARN".into(),
            ));
        }
        for t in &s.allowed_topics {
            if crate::sns_verify::topic_region(t).is_none() {
                errors.push(err(
                    line,
                    format!("sns_http: {t:?} is not an SNS topic ARN"),
                ));
            }
        }
        if s.tls_cert.is_some() != s.tls_key.is_some() {
            errors.push(err(
                line,
                "sns_http: tls_cert and tls_key go together".into(),
            ));
        }
        if !s.path.starts_with('/') {
            errors.push(err(line, "sns_http: path must start with '/'".into()));
        }
        config.sns_http = Some(s);
    }
    for p in raw.s3_poll {
        let line = Some(at(p.referenced.line()));
        let p = p.value;
        check_name(&p.name, &mut names, |r| errors.push(err(line, r)));
        if let Err(e) = crate::s3_poll::S3Location::parse(&p.url) {
            errors.push(err(line, format!("s3_poll {}: {e}", p.name)));
        }
        if let Some(since) = &p.since
            && parse_since(since).is_none()
        {
            errors.push(err(
                line,
                format!(
                    "s3_poll {}: since {since:?} is neither YYYY-MM-DD nor RFC 3339",
                    p.name
                ),
            ));
        }
        config.s3_poll.push(p);
    }
    config.deadman = raw.deadman.map(|d| d.value);
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

fn check_name(name: &str, names: &mut BTreeSet<String>, mut report: impl FnMut(String)) {
    if name.trim().is_empty() {
        report("a source needs a non-empty name".into());
    } else if !names.insert(name.to_owned()) {
        report(format!("source name {name:?} is used twice"));
    }
}

/// Parses `since`: a date (midnight UTC) or an RFC 3339 time.
pub fn parse_since(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses a duration: a number with a unit `ms`, `s`, `m`, `h` or `d` (`90s`, `15m`, `2h`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("duration {text:?} needs a unit (ms, s, m, h, d)"))?;
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("duration {text:?} must start with a whole number"))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => {
            return Err(format!(
                "duration {text:?}: unknown unit {unit:?} (ms, s, m, h, d)"
            ));
        }
    };
    Ok(Duration::from_secs(secs))
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

fn default_concurrency() -> usize {
    4
}
fn default_wait() -> Duration {
    Duration::from_secs(20)
}
fn default_visibility() -> Duration {
    Duration::from_secs(300)
}
fn default_max_receives() -> u32 {
    5
}
fn default_retry_delay() -> Duration {
    Duration::from_secs(30)
}
fn default_batch_events() -> usize {
    1000
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8088))
}
fn default_path() -> String {
    "/sns".into()
}
fn default_max_age() -> Duration {
    Duration::from_secs(3600)
}
fn default_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_after() -> Duration {
    Duration::from_secs(2 * 3600)
}
fn default_check_every() -> Duration {
    Duration::from_secs(300)
}

impl SqsConfig {
    /// A queue with default settings (handy for tests and for the CLI's flags).
    pub fn new(name: impl Into<String>, queue_url: impl Into<String>) -> SqsConfig {
        SqsConfig {
            name: name.into(),
            queue_url: queue_url.into(),
            concurrency: default_concurrency(),
            wait_time: default_wait(),
            visibility_timeout: default_visibility(),
            max_receives: default_max_receives(),
            retry_delay: default_retry_delay(),
            batch_events: default_batch_events(),
        }
    }
}

impl SnsHttpConfig {
    /// An endpoint on the default loopback address accepting `topics`.
    pub fn new(topics: Vec<String>) -> SnsHttpConfig {
        SnsHttpConfig {
            listen: default_listen(),
            path: default_path(),
            allowed_topics: topics,
            tls_cert: None,
            tls_key: None,
            max_age: default_max_age(),
            trusted_cert_pem: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_section_parses_with_defaults() {
        let yaml = "\
aws: { region: eu-west-1, endpoint_url: 'http://127.0.0.1:5000' }
dedup_horizon: 6h
sqs:
  - name: files
    queue_url: https://sqs.eu-west-1.amazonaws.com/111122223333/files
    concurrency: 8
sns_http:
  allowed_topics: [arn:aws:sns:eu-west-1:111122223333:trail]
s3_poll:
  - name: org
    url: s3://bucket/AWSLogs/o-abc/
    since: 2026-01-01
deadman: { after: 3h }
";
        let c = parse_section("trailwatch.yaml", yaml, 1).unwrap();
        assert_eq!(c.dedup_horizon, Duration::from_secs(6 * 3600));
        assert_eq!(c.sqs[0].concurrency, 8);
        assert_eq!(c.sqs[0].visibility_timeout, Duration::from_secs(300));
        let sns = c.sns_http.unwrap();
        assert_eq!(sns.listen.to_string(), "127.0.0.1:8088");
        assert_eq!(c.s3_poll[0].since.as_deref(), Some("2026-01-01"));
        assert_eq!(c.deadman.unwrap().after, Duration::from_secs(3 * 3600));
        assert_eq!(c.aws.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn unknown_field_is_an_error_with_a_line() {
        let yaml = "sqs:\n  - name: a\n    queue_url: https://x\n    colour: red\n";
        let errs = parse_section("t.yaml", yaml, 10).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].reason.contains("colour"), "{:?}", errs[0]);
        assert_eq!(errs[0].line, Some(13));
    }

    #[test]
    fn every_value_error_is_reported_at_once() {
        let yaml = "\
sqs:
  - name: a
    queue_url: sqs-a
    concurrency: 0
  - name: a
    queue_url: https://x
    wait_time: 30s
sns_http:
  allowed_topics: [not-an-arn]
  tls_cert: /x.pem
s3_poll:
  - name: p
    url: http://bucket
    since: yesterday
";
        let errs = parse_section("t.yaml", yaml, 1).unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        let all = text.join("\n");
        for needle in [
            "t.yaml:2: sqs a: queue_url",
            "t.yaml:2: sqs a: concurrency",
            "t.yaml:5: source name \"a\" is used twice",
            "t.yaml:5: sqs a: wait_time",
            "not an SNS topic ARN",
            "tls_cert and tls_key go together",
            "s3_poll p:",
            "since \"yesterday\"",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in\n{all}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5w").is_err());
        assert!(parse_since("2026-01-01").is_some());
        assert!(parse_since("2026-01-01T10:00:00Z").is_some());
    }
}
