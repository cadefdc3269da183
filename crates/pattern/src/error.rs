//! Error types: pattern rejections (AWS wording) and unreadable events.

use thiserror::Error;

/// Why a pattern was rejected: the dot-joined JSON path of the offending
/// field (empty at the top level), the reason worded as AWS/Ruler word it,
/// and, for JSON syntax errors, the byte offset.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}", self.display())]
pub struct PatternError {
    path: String,
    reason: String,
    offset: Option<usize>,
}

impl PatternError {
    pub(crate) fn new(path: &str, reason: impl Into<String>) -> PatternError {
        PatternError {
            path: path.to_owned(),
            reason: reason.into(),
            offset: None,
        }
    }

    pub(crate) fn syntax(offset: usize, reason: &str) -> PatternError {
        PatternError {
            path: String::new(),
            reason: format!("Invalid JSON at byte {offset}: {reason}"),
            offset: Some(offset),
        }
    }

    /// The dot-joined path of the offending field, e.g. `detail.eventName`;
    /// empty when the problem is not inside a field.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The reason, in AWS/Ruler wording, e.g. `Empty arrays are not allowed`.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The byte offset of a JSON syntax error in the pattern text.
    pub fn offset(&self) -> Option<usize> {
        self.offset
    }

    fn display(&self) -> String {
        if self.path.is_empty() {
            self.reason.clone()
        } else {
            format!("{}: {}", self.path, self.reason)
        }
    }
}

/// What was wrong with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventErrorKind {
    /// The bytes are not valid JSON.
    Syntax(&'static str),
    /// Arrays and objects nest deeper than the configured limit.
    TooDeep,
    /// The document is valid JSON but not an object.
    NotAnObject,
    /// Arrays in the event made the array-consistency search exceed its
    /// step budget (only adversarial events do this).
    TooComplex,
}

/// An event that could not be read: invalid JSON, nesting deeper than the
/// depth limit, or not a JSON object. Carries the byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("invalid event at byte {offset}: {}", self.reason())]
pub struct EventError {
    kind: EventErrorKind,
    offset: usize,
}

impl EventError {
    pub(crate) fn new(kind: EventErrorKind, offset: usize) -> EventError {
        EventError { kind, offset }
    }

    /// The kind of problem.
    pub fn kind(&self) -> EventErrorKind {
        self.kind
    }

    /// The byte offset where the problem was found.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// A short description of the problem.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            EventErrorKind::Syntax(r) => r,
            EventErrorKind::TooDeep => "nesting is deeper than the depth limit",
            EventErrorKind::NotAnObject => "an event must be a JSON object",
            EventErrorKind::TooComplex => "array combinations exceed the matching search budget",
        }
    }
}
