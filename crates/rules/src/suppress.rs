//! `suppress`: allow-lists. An event whose principal ARN, account, source IP or user agent
//! is on the rule's lists — or on the config's `trusted` lists, unless the rule opts out
//! with `trusted: false` — raises nothing.

use trailwatch_config::{Cidr, Config, Glob, net};

/// A compiled allow-list.
#[derive(Debug, Clone, Default)]
pub struct Suppress {
    /// Principal ARN patterns.
    pub principals: Vec<Glob>,
    /// Account ids.
    pub accounts: Vec<String>,
    /// Source networks.
    pub cidrs: Vec<Cidr>,
    /// User agent patterns.
    pub user_agents: Vec<Glob>,
}

/// The facts an allow-list looks at, taken from one event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    /// The principal's ARN (`userIdentity.arn`), or, for a role session, also the role ARN.
    pub principal_arns: [Option<&'a str>; 2],
    /// The account.
    pub account: &'a str,
    /// `sourceIPAddress`.
    pub source_ip: Option<&'a str>,
    /// `userAgent`.
    pub user_agent: Option<&'a str>,
}

impl Suppress {
    /// Adds the config's trusted lists.
    pub fn with_trusted(mut self, config: &Config) -> Suppress {
        self.principals
            .extend(config.trusted.principals.iter().cloned());
        self.cidrs.extend(config.trusted.cidrs.iter().copied());
        self.user_agents
            .extend(config.trusted.user_agents.iter().cloned());
        self
    }

    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.principals.is_empty()
            && self.accounts.is_empty()
            && self.cidrs.is_empty()
            && self.user_agents.is_empty()
    }

    /// Which list (if any) suppresses this subject, for explanations.
    pub fn reason(&self, s: &Subject<'_>) -> Option<&'static str> {
        if s.principal_arns
            .iter()
            .flatten()
            .any(|arn| self.principals.iter().any(|g| g.matches(arn)))
        {
            return Some("principal");
        }
        if self.accounts.iter().any(|a| a == s.account) {
            return Some("account");
        }
        if s.source_ip
            .is_some_and(|ip| net::any_contains(&self.cidrs, ip))
        {
            return Some("cidr");
        }
        if s.user_agent
            .is_some_and(|ua| self.user_agents.iter().any(|g| g.matches(ua)))
        {
            return Some("user_agent");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_list_suppresses() {
        let cfg =
            trailwatch_config::parse("t", "trusted:\n  user_agents: ['*Terraform*']\n").unwrap();
        let s = Suppress {
            principals: vec![Glob::new("arn:aws:iam::*:role/ci-*")],
            accounts: vec!["111111111111".into()],
            cidrs: vec!["10.0.0.0/8".parse().unwrap()],
            user_agents: vec![],
        }
        .with_trusted(&cfg);
        let base = Subject {
            principal_arns: [Some("arn:aws:iam::1:user/bob"), None],
            account: "222222222222",
            source_ip: Some("8.8.8.8"),
            user_agent: Some("aws-cli/2"),
        };
        let check = |sub: Subject<'_>, want: Option<&str>| assert_eq!(s.reason(&sub), want);
        check(base, None);
        check(
            Subject {
                principal_arns: [None, Some("arn:aws:iam::1:role/ci-deploy")],
                ..base
            },
            Some("principal"),
        );
        check(
            Subject {
                account: "111111111111",
                ..base
            },
            Some("account"),
        );
        check(
            Subject {
                source_ip: Some("10.9.9.9"),
                ..base
            },
            Some("cidr"),
        );
        check(
            Subject {
                user_agent: Some("Terraform/1.6"),
                ..base
            },
            Some("user_agent"),
        );
    }
}
