//! The alert: what a rule produces for one event (or one item of an event) and what
//! every destination delivers. Plain data, shared by `rules`, `notify` and `remediate`,
//! so that those crates agree on one shape without depending on each other.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How urgent an alert is. Ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational: a change worth recording, not worth waking anyone.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical: act now.
    Critical,
}

impl Severity {
    /// All severities, least severe first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The lowercase name used in rule files and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a severity name that is not one of the five.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSeverity(pub String);

impl fmt::Display for UnknownSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown severity {:?}: expected one of info, low, medium, high, critical",
            self.0
        )
    }
}

impl std::error::Error for UnknownSeverity {}

impl FromStr for Severity {
    type Err = UnknownSeverity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|sev| sev.as_str() == s)
            .ok_or_else(|| UnknownSeverity(s.to_owned()))
    }
}

/// Who made the call, as CloudTrail's `userIdentity` tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// `userIdentity.type`: Root, IAMUser, AssumedRole, FederatedUser, AWSService, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The principal's ARN, when CloudTrail gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// A readable name: the IAM user name, the session issuer's name for a role
    /// session (with the session name), the invoking service, or "root".
    pub name: String,
    /// The account the principal belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The access key used, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
}

/// Where the event that raised an alert came from, so a person can find the original bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertOrigin {
    /// A file path, an `s3://bucket/key` URI or a queue name.
    pub source: String,
    /// The record's index inside its file, when it came from a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_index: Option<u64>,
    /// The message id, when it came from a queue or a push.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// One alert: one rule, one event, and (for `for_each` rules) one item of that event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The rule's id, e.g. `ec2-security-group-ingress-open-to-world`.
    pub rule_id: String,
    /// The severity after per-rule and per-item adjustments and config overrides.
    pub severity: Severity,
    /// The rendered one-line title.
    pub title: String,
    /// The rendered body (plain text, may span lines).
    pub body: String,
    /// CloudTrail's `eventID` (or the envelope id for non-CloudTrail events).
    pub event_id: String,
    /// The event's time as the record gives it (RFC 3339).
    pub event_time: String,
    /// `eventSource`, e.g. `ec2.amazonaws.com`.
    pub event_source: String,
    /// `eventName`, e.g. `AuthorizeSecurityGroupIngress`.
    pub event_name: String,
    /// The account the event belongs to.
    pub account: String,
    /// The account's alias from the config, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_alias: Option<String>,
    /// The region.
    pub region: String,
    /// Who did it.
    pub principal: Principal,
    /// `sourceIPAddress` (an IP, or a service name for AWS-internal calls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    /// `userAgent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The target resources (ARNs or ids) the rule identified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// A link that opens the event in the CloudTrail console.
    pub console_url: String,
    /// The rule's tags (e.g. MITRE ATT&CK ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The rule's runbook URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    /// Extra named facts the rule extracted (e.g. `protocol`, `port_range`, `cidr`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    /// The `for_each` item this alert is about, when the rule iterates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<serde_json::Value>,
    /// A stable key for this alert: the same rule, event and item give the same key.
    /// Destinations use it as their idempotency key.
    pub dedup_key: String,
    /// What remediation the rule plans for this alert, and in which mode; `None` when the
    /// rule has no `remediate:` block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<Remediation>,
    /// How many repeats a `dedup` window folded into this alert (0 when none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub repeats: u64,
    /// Where the event came from.
    pub origin: AlertOrigin,
}

/// The remediation a rule plans for one alert: plain data, filled by `rules` (the steps,
/// their parameters and the calls they will make) and the service (mode, job id, approval
/// links), carried out by `remediate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Remediation {
    /// `dry-run` (the default), `approve` or `enforce`.
    pub mode: String,
    /// The job that carries it out, once the service queued it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The steps, in order.
    pub steps: Vec<PlannedStep>,
    /// Steps that run only when a step's `on_error` names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub catch: Vec<PlannedStep>,
    /// Where to approve it (approval mode with an approval endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve_url: Option<String>,
    /// Where to reject it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_url: Option<String>,
    /// Why nothing will run, when something ruled it out (trailwatch's own call, a guard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// One step of a remediation workflow with its parameters resolved for the event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// The step's id within the workflow.
    pub id: String,
    /// The action's name (`ec2-revoke-ingress`, ...).
    pub action: String,
    /// Resolved parameters.
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The AWS calls (or requests) it will make, readable: `ec2:RevokeSecurityGroupIngress ...`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<String>,
    /// The resource it acts on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    /// Retry policy.
    #[serde(default)]
    pub retry: RetrySpec,
    /// The step to run when this one fails for good (`None`: the workflow stops, failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<String>,
    /// Why the step cannot run (parameters that did not resolve); the executor records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
}

/// Per-step retry, as in Step Functions: attempts, backoff, and which error classes retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrySpec {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Delay before the second attempt, in milliseconds; doubled each time, with jitter.
    pub backoff_ms: u64,
    /// Error classes that retry: `throttling`, `server`, `network`; never `access-denied`.
    pub retry_on: Vec<String>,
}

impl Default for RetrySpec {
    fn default() -> Self {
        RetrySpec {
            max_attempts: 3,
            backoff_ms: 1000,
            retry_on: vec!["throttling".into(), "server".into(), "network".into()],
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The CloudTrail console link for one event, by its id, in the event's region
/// (`https://<region>.console.aws.amazon.com/cloudtrailv2/home?region=<region>#/events/<id>`).
/// China and GovCloud regions use their partition's console domain; an empty region falls
/// back to us-east-1, where global services log.
pub fn console_url(region: &str, event_id: &str) -> String {
    let region = if region.is_empty() {
        "us-east-1"
    } else {
        region
    };
    let domain = if region.starts_with("cn-") {
        "console.amazonaws.cn"
    } else if region.starts_with("us-gov-") {
        "console.amazonaws-us-gov.com"
    } else {
        "console.aws.amazon.com"
    };
    let event_id: String = event_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    format!("https://{region}.{domain}/cloudtrailv2/home?region={region}#/events/{event_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_round_trips_and_orders() {
        for sev in Severity::ALL {
            assert_eq!(sev.as_str().parse::<Severity>(), Ok(sev));
        }
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Info < Severity::Low);
        let err = "urgent".parse::<Severity>().unwrap_err();
        assert!(err.to_string().contains("urgent"));
    }

    #[test]
    fn console_url_names_region_and_event() {
        assert_eq!(
            console_url("eu-west-1", "abc-123"),
            "https://eu-west-1.console.aws.amazon.com/cloudtrailv2/home?region=eu-west-1#/events/abc-123"
        );
        assert_eq!(
            console_url("cn-north-1", "e"),
            "https://cn-north-1.console.amazonaws.cn/cloudtrailv2/home?region=cn-north-1#/events/e"
        );
        assert_eq!(
            console_url("us-gov-west-1", "e"),
            "https://us-gov-west-1.console.amazonaws-us-gov.com/cloudtrailv2/home?region=us-gov-west-1#/events/e"
        );
        assert!(console_url("", "e").starts_with("https://us-east-1.console.aws.amazon.com/"));
        // Nothing from the event can break out of the fragment.
        assert!(console_url("eu-west-1", "x\"><script>").ends_with("#/events/xscript"));
    }
}
