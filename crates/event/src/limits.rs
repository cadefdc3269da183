//! Resource caps that keep hostile or broken input from exhausting memory.

/// Caps applied while decoding one input.
///
/// Every cap turns into a [`crate::SkipReason`] when hit, never a panic or an unbounded allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest number of bytes a single input may decompress to (gzip bombs). Default 1 GiB.
    pub max_decompressed_bytes: u64,
    /// Largest single record or document kept in memory. Default 8 MiB.
    pub max_record_bytes: usize,
    /// Deepest JSON nesting accepted inside one record. Default 128 (serde_json's own limit).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_decompressed_bytes: 1 << 30,
            max_record_bytes: 8 << 20,
            max_depth: 128,
        }
    }
}
