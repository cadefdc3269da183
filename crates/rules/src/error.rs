//! Rule errors: each names the file, the line, the rule and the reason.

use std::fmt;

use trailwatch_config::Pos;

/// What kind of problem a rule has (for callers that branch on it; the message says more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleErrorKind {
    /// YAML syntax, unknown field or wrong type.
    Schema,
    /// The `match` pattern is not a valid EventBridge pattern.
    Pattern,
    /// A CEL expression does not parse.
    Cel,
    /// A template does not parse or uses an unknown variable.
    Template,
    /// Anything else that makes the rule unusable (bad severity, window without count, ...).
    Invalid,
    /// Two rules share an id.
    Duplicate,
}

/// One problem with one rule (or one rule file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RuleError {
    /// The rule file.
    pub origin: String,
    /// Where in that file.
    pub pos: Pos,
    /// The rule's id, when known.
    pub rule_id: Option<String>,
    /// The kind of problem.
    pub kind: RuleErrorKind,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.origin, self.pos.line, self.pos.col)?;
        if let Some(id) = &self.rule_id {
            write!(f, "rule {id}: ")?;
        }
        f.write_str(&self.reason)
    }
}

/// Every problem found while compiling rules. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleErrors(pub Vec<RuleError>);

impl RuleErrors {
    /// The errors, by file and line.
    pub fn errors(&self) -> &[RuleError] {
        &self.0
    }
}

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleErrors {}

/// Collects errors for one rule while it compiles.
pub(crate) struct Errs<'a> {
    pub origin: &'a str,
    pub rule_id: Option<String>,
    pub out: &'a mut Vec<RuleError>,
}

impl Errs<'_> {
    pub fn push(&mut self, pos: Pos, kind: RuleErrorKind, reason: impl Into<String>) {
        self.out.push(RuleError {
            origin: self.origin.to_owned(),
            pos,
            rule_id: self.rule_id.clone(),
            kind,
            reason: reason.into(),
        });
    }
}

/// The position of a spanned YAML node.
pub(crate) fn pos_of<T>(s: &serde_saphyr::Spanned<T>) -> Pos {
    Pos {
        line: usize::try_from(s.referenced.line()).unwrap_or(1).max(1),
        col: usize::try_from(s.referenced.column()).unwrap_or(1).max(1),
    }
}
