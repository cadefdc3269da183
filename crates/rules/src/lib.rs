//! Rules: match, conditions, per-item expansion, state, templates, self-tests.
//!
//! A rule file holds one rule or a list of rules (YAML; `docs/rules.md`). [`RuleSet::compile`]
//! checks every rule and builds one pattern matcher for all of them; [`RuleSet::evaluate`]
//! (pure, `&self`, many threads) turns an event into [`Candidate`] alerts; the
//! single-threaded [`Gate`] applies thresholds and dedup on event time with an injected
//! [`Clock`].
//!
//! Architecture invariant: this crate does no I/O except the test runner reading test
//! event files that rules name.

pub mod catalog;
pub mod cel;
pub mod clock;
pub mod compile;
pub mod error;
pub mod evaluate;
pub mod for_each;
pub mod gate;
pub mod lint;
pub mod schema;
pub mod state;
pub mod suppress;
pub mod templates;
pub mod testing;
pub mod window;

pub use clock::{Clock, ManualClock, SystemClock};
pub use compile::{Rule, RuleSet, TestCase};
pub use error::{RuleError, RuleErrorKind, RuleErrors};
pub use evaluate::{Candidate, EvalScratch};
pub use gate::{Gate, GateStats};
pub use state::{MemoryState, StateStore};

/// One rule file's text and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSource {
    /// A path (or `builtin:<name>` for the embedded pack).
    pub origin: String,
    /// The YAML text.
    pub text: String,
}

impl RuleSource {
    /// A source from an origin and its text.
    pub fn new(origin: impl Into<String>, text: impl Into<String>) -> RuleSource {
        RuleSource {
            origin: origin.into(),
            text: text.into(),
        }
    }
}

macro_rules! builtin {
    ($name:literal) => {
        (
            concat!($name, ".yaml"),
            include_str!(concat!("../builtin/", $name, ".yaml")),
        )
    };
}

/// The built-in rule pack, embedded in the binary.
pub fn builtin_sources() -> Vec<RuleSource> {
    BUILTIN
        .iter()
        .map(|(name, text)| RuleSource::new(format!("builtin:{name}"), *text))
        .collect()
}

/// The built-in pack: (file name, text), one rule per file.
const BUILTIN: &[(&str, &str)] = &[
    builtin!("ec2-security-group-ingress-open-to-world"),
    builtin!("ec2-security-group-changed"),
    builtin!("iam-user-created-outside-business-hours"),
    builtin!("ec2-instance-missing-required-tags"),
    builtin!("s3-object-made-public"),
    builtin!("s3-bucket-made-public"),
    builtin!("cloudtrail-logging-tampered"),
    builtin!("security-monitoring-disabled"),
    builtin!("root-account-used"),
    builtin!("root-access-key-created"),
    builtin!("console-login-without-mfa"),
    builtin!("console-login-failures"),
    builtin!("iam-admin-policy-attached"),
    builtin!("iam-access-key-exposed"),
    builtin!("config-rule-noncompliant"),
    builtin!("access-denied-burst"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The built-in pack passes its own tests with the default config, and every rule has
    /// a positive and a negative case.
    #[test]
    fn builtin_pack_passes_its_tests() {
        let report = testing::run(&builtin_sources(), &trailwatch_config::Config::default());
        assert!(report.ok(), "{report}");
        assert!(
            report.untested.is_empty(),
            "rules without positive and negative tests: {:?}",
            report.untested
        );
        let lint: Vec<String> =
            lint::lint(&builtin_sources(), &trailwatch_config::Config::default())
                .iter()
                .map(ToString::to_string)
                .collect();
        assert!(lint.is_empty(), "{lint:#?}");
    }
}
