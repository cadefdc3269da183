//! Guards that need no AWS call: trailwatch's own principal (no self-loops) and the account
//! and resource allow/deny lists.

use trailwatch_alert::Alert;

use crate::config::RemediationConfig;

/// The user agent trailwatch's remediation calls carry (`app/<name>` in CloudTrail's
/// `userAgent`), a second way to recognise its own events.
pub const APP_NAME: &str = "trailwatch-remediation";

/// Who trailwatch is: ARNs (and globs) whose events it never remediates.
#[derive(Debug, Clone, Default)]
pub struct SelfPrincipals {
    arns: Vec<String>,
}

impl SelfPrincipals {
    /// From the ARN STS reported at start-up (if any) and the configured list.
    pub fn new(caller_arn: Option<&str>, configured: &[String]) -> SelfPrincipals {
        let mut arns: Vec<String> = configured.to_vec();
        if let Some(arn) = caller_arn {
            arns.push(arn.to_owned());
            // An assumed-role session's events name the session; the role is who it is.
            if let Some(role) = role_of_session(arn) {
                arns.push(role);
            }
        }
        arns.sort();
        arns.dedup();
        SelfPrincipals { arns }
    }

    /// The ARNs, for logs.
    pub fn arns(&self) -> &[String] {
        &self.arns
    }

    /// Why the alert's event is trailwatch's own, if it is.
    pub fn own_event(&self, alert: &Alert) -> Option<String> {
        if let Some(ua) = &alert.user_agent
            && ua.contains(&format!("app/{APP_NAME}"))
        {
            return Some(format!("the call was trailwatch's own (user agent {ua:?})"));
        }
        let arn = alert.principal.arn.as_deref()?;
        let candidates = [Some(arn.to_owned()), role_of_session(arn)];
        for candidate in candidates.iter().flatten() {
            if let Some(own) = self
                .arns
                .iter()
                .find(|own| trailwatch_config::Glob::new(own).matches(candidate))
            {
                return Some(format!(
                    "the call was trailwatch's own ({candidate} is {own})"
                ));
            }
        }
        None
    }
}

/// `arn:aws:sts::A:assumed-role/R/S` → `arn:aws:iam::A:role/R`.
pub fn role_of_session(arn: &str) -> Option<String> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let partition = parts.next()?;
    let service = parts.next()?;
    let _region = parts.next()?;
    let account = parts.next()?;
    let resource = parts.next()?;
    let role = resource.strip_prefix("assumed-role/")?.split('/').next()?;
    (service == "sts").then(|| format!("arn:{partition}:iam::{account}:role/{role}"))
}

/// Why the account or a resource guard rules out the alert, if one does.
pub fn static_guards(
    config: &RemediationConfig,
    alert: &Alert,
    resources: &[String],
) -> Option<String> {
    if let Some(why) = config.accounts.refuses(&alert.account) {
        return Some(format!("account guard: {why}"));
    }
    for r in resources.iter().filter(|r| !r.is_empty()) {
        for part in r.split(',') {
            if let Some(why) = config.resources.refuses(part) {
                return Some(format!("resource guard: {why}"));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(arn: &str, ua: &str) -> Alert {
        let mut a: Alert = serde_json::from_value(serde_json::json!({
            "rule_id": "r", "severity": "high", "title": "t", "body": "", "event_id": "e1",
            "event_time": "2024-01-01T00:00:00Z", "event_source": "ec2.amazonaws.com",
            "event_name": "X", "account": "111122223333", "region": "us-east-1",
            "principal": {"type": "AssumedRole", "name": "n", "arn": arn}, "console_url": "",
            "dedup_key": "k", "origin": {"source": "t"}
        }))
        .unwrap();
        a.user_agent = Some(ua.to_owned());
        a
    }

    #[test]
    fn own_sessions_roles_and_user_agents_are_recognised() {
        let me = SelfPrincipals::new(
            Some("arn:aws:sts::111122223333:assumed-role/trailwatch/i-0abc"),
            &["arn:aws:iam::*:role/trailwatch-remediation".to_owned()],
        );
        // Another session of the same role (after a restart, a new session name).
        assert!(
            me.own_event(&alert(
                "arn:aws:sts::111122223333:assumed-role/trailwatch/i-0def",
                "aws-sdk-rust"
            ))
            .is_some()
        );
        // The configured cross-account role, in any account.
        assert!(
            me.own_event(&alert(
                "arn:aws:sts::444455556666:assumed-role/trailwatch-remediation/s",
                "x"
            ))
            .is_some()
        );
        assert!(
            me.own_event(&alert("arn:aws:iam::111122223333:user/alice", "aws-cli/2"))
                .is_none()
        );
        assert!(
            me.own_event(&alert(
                "arn:aws:iam::111122223333:user/alice",
                "aws-sdk-rust/1 app/trailwatch-remediation"
            ))
            .is_some()
        );
        assert_eq!(
            role_of_session("arn:aws:sts::1:assumed-role/R/S").as_deref(),
            Some("arn:aws:iam::1:role/R")
        );
        assert_eq!(role_of_session("arn:aws:iam::1:user/u"), None);
    }
}
