//! The JSONL case format shared by the conformance files and by
//! `trailwatch pattern test --cases FILE`.
//!
//! Each line is `{"pattern":…, "event":…, "match": true|false}` or
//! `{"pattern":…, "error":"…"}`; other fields are ignored except `origin`.
//! `pattern` and `event` are kept as their raw text, so number literals stay
//! as written. A `pattern` or `event` given as a JSON string is taken as the
//! document text itself.

use thiserror::Error;

use crate::json::{self, Json, Spanned};
use crate::{Matcher, Pattern, reference};

/// One case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// 1-based line number in the case file.
    pub line: usize,
    /// The pattern's JSON text.
    pub pattern: String,
    /// What the case expects.
    pub expect: Expect,
    /// Where the case came from (the `origin` field), if given.
    pub origin: Option<String>,
}

/// The expectation of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// The pattern is valid and matches the event (or not).
    Match {
        /// The event's JSON text.
        event: String,
        /// Whether the pattern should match.
        matches: bool,
    },
    /// The pattern is invalid; `message` is the expected reason.
    Error {
        /// The expected rejection message (compared leniently).
        message: String,
    },
}

/// A line that is not a valid case.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {reason}")]
pub struct CaseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with the line.
    pub reason: String,
}

/// The result of checking a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The engine did what the case expects.
    Pass,
    /// The pattern was rejected as expected, with a different message.
    PassMessageDiffers {
        /// The message the case expects.
        expected: String,
        /// The message the engine gave.
        got: String,
    },
    /// The engine did something else.
    Fail {
        /// What the case expects.
        expected: String,
        /// What happened.
        got: String,
    },
}

impl Outcome {
    /// True for both passing outcomes.
    pub fn passed(&self) -> bool {
        !matches!(self, Outcome::Fail { .. })
    }
}

/// Parses one line; `None` for a blank line.
pub fn parse_line(line_no: usize, line: &str) -> Result<Option<Case>, CaseError> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let err = |reason: String| CaseError {
        line: line_no,
        reason,
    };
    let doc = json::parse(line.as_bytes(), 512)
        .map_err(|e| err(format!("invalid JSON at byte {}: {}", e.offset, e.reason)))?;
    let Json::Obj(members) = &doc.value else {
        return Err(err("a case must be a JSON object".into()));
    };
    // Last one wins, as in patterns.
    let field = |name: &str| {
        members
            .iter()
            .rev()
            .find(|(k, _)| &**k == name)
            .map(|(_, v)| v)
    };
    let raw = |v: &Spanned| match &v.value {
        Json::Str(s) => s.to_string(),
        _ => line[v.start..v.end].to_owned(),
    };
    let pattern = field("pattern").ok_or_else(|| err("missing \"pattern\"".into()))?;
    let origin = field("origin").map(raw);
    let expect = match (field("event"), field("match"), field("error")) {
        (_, _, Some(e)) => Expect::Error { message: raw(e) },
        (Some(event), Some(m), None) => match m.value {
            Json::Bool(matches) => Expect::Match {
                event: raw(event),
                matches,
            },
            _ => return Err(err("\"match\" must be true or false".into())),
        },
        _ => {
            return Err(err(
                "a case needs \"event\" and \"match\", or \"error\"".into()
            ));
        }
    };
    Ok(Some(Case {
        line: line_no,
        pattern: raw(pattern),
        expect,
        origin,
    }))
}

/// Checks a case with the compiled matcher and the reference interpreter;
/// both must agree with the expectation.
pub fn check(case: &Case) -> Outcome {
    let parsed = Pattern::parse(&case.pattern);
    match (&case.expect, parsed) {
        (Expect::Error { message }, Err(e)) => {
            let got = e.to_string();
            if got == *message || e.reason() == message || got.contains(message.as_str()) {
                Outcome::Pass
            } else {
                Outcome::PassMessageDiffers {
                    expected: message.clone(),
                    got,
                }
            }
        }
        (Expect::Error { message }, Ok(_)) => Outcome::Fail {
            expected: format!("rejected: {message}"),
            got: "accepted".into(),
        },
        (Expect::Match { .. }, Err(e)) => Outcome::Fail {
            expected: "a valid pattern".into(),
            got: format!("rejected: {e}"),
        },
        (Expect::Match { event, matches }, Ok(p)) => {
            let mut m = Matcher::new();
            m.add(0u8, &p);
            let compiled = m.matches(event.as_bytes()).map(|ids| !ids.is_empty());
            let oracle = reference::matches(&p, event.as_bytes());
            let show = |r: &Result<bool, crate::EventError>| match r {
                Ok(b) => format!("match={b}"),
                Err(e) => e.to_string(),
            };
            if compiled == Ok(*matches) && oracle == Ok(*matches) {
                Outcome::Pass
            } else {
                Outcome::Fail {
                    expected: format!("match={matches}"),
                    got: format!("matcher: {}, reference: {}", show(&compiled), show(&oracle)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        assert_eq!(parse_line(1, "  ").unwrap(), None);
        let c = parse_line(
            2,
            r#"{"pattern":{"a":[3.0e2]},"event":{"a":300},"match":true,"x":1}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.pattern, r#"{"a":[3.0e2]}"#);
        assert_eq!(
            c.expect,
            Expect::Match {
                event: r#"{"a":300}"#.into(),
                matches: true
            }
        );
        assert_eq!(check(&c), Outcome::Pass);
        let e = parse_line(
            3,
            r#"{"pattern":{"a":[]},"error":"Empty arrays are not allowed"}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(check(&e), Outcome::Pass);
        let e = parse_line(4, r#"{"pattern":{"a":[]},"error":"something else"}"#)
            .unwrap()
            .unwrap();
        assert!(matches!(check(&e), Outcome::PassMessageDiffers { .. }));
        let bad = parse_line(5, r#"{"pattern":{"a":["x"]},"error":"nope"}"#)
            .unwrap()
            .unwrap();
        assert!(!check(&bad).passed());
        assert!(parse_line(6, r#"{"event":{}}"#).is_err());
        assert!(parse_line(7, "{").is_err());
    }
}
