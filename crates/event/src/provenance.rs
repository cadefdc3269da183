//! Where an item came from, so every event and every skip can be traced back to its bytes.

use std::fmt;
use std::sync::Arc;

/// The origin of an event or skip: which input, which record, which byte, which message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Provenance {
    /// The input as named by the caller: a file path, `s3://bucket/key` or a queue name.
    pub origin: Arc<str>,
    /// Index of the record within the input (element of `Records`, array element or document).
    pub record_index: Option<u64>,
    /// Byte offset of the record (or of the failure) in the decompressed input, where known.
    pub byte_offset: Option<u64>,
    /// Queue or topic message id, where known.
    pub message_id: Option<String>,
}

impl Provenance {
    /// A provenance that names only the input.
    pub fn new(origin: Arc<str>) -> Self {
        Provenance {
            origin,
            record_index: None,
            byte_offset: None,
            message_id: None,
        }
    }

    /// The same provenance with a record index.
    pub fn with_record(mut self, index: u64) -> Self {
        self.record_index = Some(index);
        self
    }

    /// The same provenance with a byte offset.
    pub fn with_offset(mut self, offset: u64) -> Self {
        self.byte_offset = Some(offset);
        self
    }

    /// The same provenance with a message id.
    pub fn with_message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }
}

impl fmt::Display for Provenance {
    /// `origin#record=12`, then ` (byte 345, message abc)` for whatever else is known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some(i) = self.record_index {
            write!(f, "#record={i}")?;
        }
        match (self.byte_offset, &self.message_id) {
            (Some(o), Some(m)) => write!(f, " (byte {o}, message {m})"),
            (Some(o), None) => write!(f, " (byte {o})"),
            (None, Some(m)) => write!(f, " (message {m})"),
            (None, None) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(p: Provenance, expect: &str) {
        assert_eq!(p.to_string(), expect);
    }

    #[test]
    fn display() {
        let o: Arc<str> = Arc::from("path/file.json.gz");
        check(Provenance::new(o.clone()), "path/file.json.gz");
        check(
            Provenance::new(o.clone()).with_record(12),
            "path/file.json.gz#record=12",
        );
        check(
            Provenance::new(o.clone()).with_record(0).with_offset(17),
            "path/file.json.gz#record=0 (byte 17)",
        );
        check(
            Provenance::new(o).with_offset(3).with_message_id("m-1"),
            "path/file.json.gz (byte 3, message m-1)",
        );
    }
}
