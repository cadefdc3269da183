//! Why a record or a whole input was not turned into an event.
//!
//! Bad input never stops a run and never passes silently: each failure becomes a [`Skipped`]
//! item naming the origin, the position and the reason.

use std::fmt;

use crate::Provenance;

/// Why something was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The JSON is not well formed. `line` and `column` are 1-based and count from the start
    /// of the decompressed input.
    MalformedJson {
        /// Line of the error.
        line: u64,
        /// Column of the error.
        column: u64,
        /// What the parser expected.
        msg: String,
    },
    /// A string is not valid UTF-8.
    NotUtf8,
    /// JSON nested deeper than [`crate::Limits::max_depth`].
    TooDeep,
    /// One record or document larger than [`crate::Limits::max_record_bytes`].
    RecordTooLarge,
    /// A field every record must have is absent.
    MissingField(&'static str),
    /// A field is present but unusable (wrong type, bad timestamp).
    InvalidField {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        msg: String,
    },
    /// `Records` is present but is not an array.
    RecordsNotArray,
    /// The input ends in the middle of a value (cut-off download, truncated gzip).
    Truncated,
    /// The input decompresses to more than [`crate::Limits::max_decompressed_bytes`].
    DecompressedTooLarge,
    /// The compressed stream is corrupt (bad deflate data, bad checksum).
    CorruptCompression(String),
    /// Reading the input failed.
    Io(String),
    /// The input holds nothing but whitespace.
    Empty,
    /// Well-formed JSON that is none of the shapes this crate knows.
    NotCloudTrail,
    /// The S3 test event sent when a bucket notification is configured.
    S3TestEvent,
    /// A notification this crate recognises but does not act on (deleted objects, restores,
    /// subscription confirmations, ...). The string says which.
    UnsupportedNotification(String),
    /// Wrappers nested deeper than this crate follows (a message inside a message inside ...).
    WrappersTooDeep,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::MalformedJson { line, column, msg } => {
                write!(f, "malformed JSON at line {line}, column {column}: {msg}")
            }
            SkipReason::NotUtf8 => f.write_str("not valid UTF-8"),
            SkipReason::TooDeep => f.write_str("JSON nested too deeply"),
            SkipReason::RecordTooLarge => f.write_str("record larger than the size cap"),
            SkipReason::MissingField(name) => write!(f, "record has no `{name}`"),
            SkipReason::InvalidField { field, msg } => write!(f, "invalid `{field}`: {msg}"),
            SkipReason::RecordsNotArray => f.write_str("`Records` is not an array"),
            SkipReason::Truncated => f.write_str("input is cut short (truncated)"),
            SkipReason::DecompressedTooLarge => {
                f.write_str("decompressed size exceeds the cap (possible gzip bomb)")
            }
            SkipReason::CorruptCompression(msg) => write!(f, "corrupt gzip data: {msg}"),
            SkipReason::Io(msg) => write!(f, "read error: {msg}"),
            SkipReason::Empty => f.write_str("input is empty"),
            SkipReason::NotCloudTrail => f.write_str("not a CloudTrail record or known wrapper"),
            SkipReason::S3TestEvent => {
                f.write_str("S3 test event (sent when notifications are set up)")
            }
            SkipReason::UnsupportedNotification(what) => write!(f, "ignored notification: {what}"),
            SkipReason::WrappersTooDeep => f.write_str("notification wrappers nested too deeply"),
        }
    }
}

/// Whether a skip concerns one record or the rest of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipScope {
    /// One record, element or document (or a flaw read past); decoding went on with the
    /// next one.
    Record,
    /// The input as a whole (empty, truncated, corrupt, over the cap); whatever came before
    /// the failure was still delivered.
    Input,
}

/// A record or input that did not become an event, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Where: origin, record index, byte offset, message id.
    pub provenance: Provenance,
    /// Why.
    pub reason: SkipReason,
    /// How many records are known to be lost with it, if that can be told. `None` for an
    /// input cut short, where the number of records never seen is unknown.
    pub records_lost: Option<u64>,
    /// One record or the rest of the input.
    pub scope: SkipScope,
}

impl Skipped {
    /// A skipped record (one record lost).
    pub fn record(provenance: Provenance, reason: SkipReason) -> Self {
        Skipped {
            provenance,
            reason,
            records_lost: Some(1),
            scope: SkipScope::Record,
        }
    }

    /// A skipped notification that carries no records (S3 test event, deleted-object
    /// notice): counted as a record seen, nothing is lost.
    pub fn notice(provenance: Provenance, reason: SkipReason) -> Self {
        Skipped {
            provenance,
            reason,
            records_lost: Some(0),
            scope: SkipScope::Record,
        }
    }

    /// A flaw in the input's structure that decoding read past (a missing comma between
    /// records): reported, no record lost.
    pub fn repaired(provenance: Provenance, reason: SkipReason) -> Self {
        Skipped {
            provenance,
            reason,
            records_lost: Some(0),
            scope: SkipScope::Record,
        }
    }

    /// A failure of the input as a whole; how many records went with it is unknown.
    pub fn input(provenance: Provenance, reason: SkipReason) -> Self {
        Skipped {
            provenance,
            reason,
            records_lost: None,
            scope: SkipScope::Input,
        }
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.provenance, self.reason)?;
        match (self.scope, self.records_lost) {
            (SkipScope::Input, None) => f.write_str("; remaining records unknown"),
            (_, Some(n)) if n > 1 => write!(f, "; {n} records lost"),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn check(s: Skipped, expect: &str) {
        assert_eq!(s.to_string(), expect);
    }

    #[test]
    fn display_names_origin_position_and_reason() {
        let p = Provenance::new(Arc::from("f.json.gz"));
        check(
            Skipped::record(
                p.clone().with_record(3).with_offset(99),
                SkipReason::MissingField("eventTime"),
            ),
            "f.json.gz#record=3 (byte 99): record has no `eventTime`",
        );
        check(
            Skipped::input(p.with_offset(1024), SkipReason::Truncated),
            "f.json.gz (byte 1024): input is cut short (truncated); remaining records unknown",
        );
    }
}
