//! A screen: rule an event out from a few field values known before it is scanned.
//!
//! A decoder that has already parsed an event's header knows some of its fields exactly
//! (say `detail.eventName`). Most patterns require one of those fields to hold a value from
//! a short list, so most events cannot match any pattern and need not be scanned at all.
//! A [`Screen`] keeps, per pattern branch, only the required slots on the known fields: a
//! relaxation of the branch, so "no branch passes the screen" implies "no pattern matches".

use crate::eval::{self, Val};
use crate::index::Value;
use crate::pattern::Cond;

/// What the caller knows about one screened field of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Known<'a> {
    /// Nothing certain (not looked at, a non-string value, a possible duplicate): never
    /// rules anything out.
    #[default]
    Unknown,
    /// The field is certainly absent from the event.
    Absent,
    /// The field's only value is this string (unescaped).
    Str(&'a str),
}

/// The required slots of one branch that fall on screened fields.
#[derive(Debug, Clone)]
struct ScreenBranch {
    /// (index into the screen's fields, the slot's conditions: one must hold).
    checks: Vec<(usize, Vec<Cond>)>,
}

/// A necessary condition for any of a matcher's patterns to match, over a fixed list of
/// fields. Built by [`crate::Matcher::screen`]; it describes the matcher as it was then.
#[derive(Debug, Clone)]
pub struct Screen {
    fields: Vec<Box<str>>,
    branches: Vec<ScreenBranch>,
    /// Some branch has no required slot on a screened field: every event may match.
    open: bool,
}

impl Screen {
    pub(crate) fn new(fields: &[&str]) -> Screen {
        Screen {
            fields: fields.iter().map(|&f| f.into()).collect(),
            branches: Vec::new(),
            open: false,
        }
    }

    /// Adds one branch, given its slots as (path, required, conditions).
    pub(crate) fn add_branch<'a>(
        &mut self,
        slots: impl IntoIterator<Item = (&'a str, bool, &'a [Cond])>,
    ) {
        let checks: Vec<(usize, Vec<Cond>)> = slots
            .into_iter()
            .filter(|&(_, required, _)| required)
            .filter_map(|(path, _, conds)| {
                let field = self.fields.iter().position(|f| &**f == path)?;
                Some((field, conds.to_vec()))
            })
            .collect();
        if checks.is_empty() {
            self.open = true;
        }
        self.branches.push(ScreenBranch { checks });
    }

    /// The screened fields, in the order [`Screen::may_match`] takes their values.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|f| &**f)
    }

    /// False only when no pattern can match an event whose screened fields are as
    /// `known` says (one entry per field, in [`Screen::fields`] order; missing entries
    /// count as unknown). True means the event must be matched in full.
    pub fn may_match(&self, known: &[Known<'_>]) -> bool {
        if self.open {
            return true;
        }
        self.branches.iter().any(|b| {
            b.checks.iter().all(|(field, conds)| {
                match known.get(*field).copied().unwrap_or_default() {
                    Known::Unknown => true,
                    Known::Absent => false,
                    Known::Str(s) => {
                        let val = Val {
                            v: Value::Str(s.as_bytes()),
                            exact: None,
                        };
                        conds.iter().any(|c| eval::cond_matches(c, &val))
                    }
                }
            })
        })
    }

    /// True when the screen can never rule an event out (some pattern has no required
    /// field among the screened ones).
    pub fn is_open(&self) -> bool {
        self.open
    }
}

#[cfg(test)]
mod tests {
    use super::Known::{Absent, Str, Unknown};
    use crate::{Matcher, Pattern};

    fn matcher(patterns: &[&str]) -> Matcher<usize> {
        let mut m = Matcher::new();
        for (i, p) in patterns.iter().enumerate() {
            m.add(i, &Pattern::parse(p).expect("valid pattern"));
        }
        m
    }

    const FIELDS: &[&str] = &["source", "detail.eventName", "detail.errorCode"];

    #[test]
    fn rules_out_events_no_branch_admits() {
        let m = matcher(&[
            r#"{"detail":{"eventName":["CreateUser","CreateAccessKey"],"errorCode":[{"exists":false}]}}"#,
            r#"{"source":["aws.health"],"detail":{"eventTypeCode":["X"]}}"#,
            r#"{"detail":{"errorCode":[{"prefix":"AccessDenied"}]}}"#,
        ]);
        let s = m.screen(FIELDS);
        assert!(!s.is_open());
        // eventName fits the first pattern: must be scanned.
        assert!(s.may_match(&[Str("aws.iam"), Str("CreateUser"), Absent]));
        // Nothing fits: an ordinary read call without an error.
        assert!(!s.may_match(&[Str("aws.ec2"), Str("DescribeInstances"), Absent]));
        // An error code the third pattern wants.
        assert!(s.may_match(&[
            Str("aws.ec2"),
            Str("DescribeInstances"),
            Str("AccessDeniedException")
        ]));
        // Unknown never rules out.
        assert!(s.may_match(&[Str("aws.ec2"), Unknown, Absent]));
        assert!(s.may_match(&[Unknown, Str("DescribeInstances"), Absent]));
        // Fewer values than fields: the rest are unknown.
        assert!(s.may_match(&[Str("aws.ec2")]));
    }

    #[test]
    fn a_pattern_without_a_required_screened_field_opens_the_screen() {
        // `exists: false` and unscreened fields give the screen nothing to test.
        let m = matcher(&[
            r#"{"detail":{"eventName":["CreateUser"]}}"#,
            r#"{"detail":{"errorCode":[{"exists":false}],"sourceIPAddress":["1.2.3.4"]}}"#,
        ]);
        let s = m.screen(FIELDS);
        assert!(s.is_open());
        assert!(s.may_match(&[Str("aws.ec2"), Str("DescribeInstances"), Absent]));
    }

    #[test]
    fn every_operator_is_judged_as_the_matcher_judges_it() {
        let m = matcher(&[
            r#"{"detail":{"eventName":[{"anything-but":["GetObject"]}]}}"#,
            r#"{"detail":{"eventName":[{"wildcard":"Delete*Bucket"}]}}"#,
            r#"{"detail":{"eventName":[{"equals-ignore-case":"stoplogging"}]}}"#,
            r#"{"detail":{"eventName":[{"exists":true}]}}"#,
        ]);
        let s = m.screen(FIELDS);
        for name in ["PutObject", "DeleteMyBucket", "StopLogging", "GetObject"] {
            let event = format!(r#"{{"source":"aws.s3","detail":{{"eventName":"{name}"}}}}"#);
            let matched = !m.matches(event.as_bytes()).expect("valid event").is_empty();
            assert!(
                matched,
                "{name}: the exists pattern matches every named event"
            );
            assert!(s.may_match(&[Str("aws.s3"), Str(name), Absent]), "{name}");
        }
        // No eventName at all: only `exists: true` could have admitted it, and it needs one.
        assert!(!s.may_match(&[Str("aws.s3"), Absent, Absent]));
    }
}
