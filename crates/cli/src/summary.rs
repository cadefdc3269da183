//! Counters that reconcile: every record that came in is matched, unmatched, filtered out
//! or skipped, so nothing can go missing without showing up here.

use std::fmt;
use std::time::Duration;

use trailwatch_event::{DecodeSummary, SkipReason, Skipped};

/// What a run saw. Adding two summaries adds their counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Inputs read (files, stdin, messages).
    pub inputs: u64,
    /// Inputs that could not be read at all, or stopped part-way (each also reported).
    pub inputs_skipped: u64,
    /// Files inside folders passed over because their names are not log names.
    pub files_ignored: u64,
    /// Bytes read from inputs.
    pub bytes_in: u64,
    /// Bytes after decompression.
    pub bytes_decompressed: u64,
    /// Records decoded into events plus records skipped: everything that came in.
    pub records_in: u64,
    /// Events that at least one rule's pattern and conditions matched.
    pub matched: u64,
    /// Events no rule matched.
    pub unmatched: u64,
    /// Events left out by --since/--until/--account/--region.
    pub filtered: u64,
    /// Events that matched before (same event id: `watch` keeps the ids of matched events),
    /// not evaluated again.
    pub duplicates: u64,
    /// Records that could not be decoded (each also reported with its position).
    pub records_skipped: u64,
    /// CloudTrail digest files set aside for the integrity check.
    pub digests: u64,
    /// Damage the decoder recovered from without losing a record (reported as warnings).
    pub recovered: u64,
    /// Notifications that point at S3 objects (not followed by a local scan).
    pub object_refs: u64,
    /// Documents that carry no records and were set aside on purpose (S3 test events,
    /// notifications about deleted objects, ...). Reported, but not errors.
    pub notices: u64,
    /// Alerts raised.
    pub alerts: u64,
}

impl Summary {
    /// Adds another summary's counts to this one.
    pub fn add(&mut self, other: &Summary) {
        self.inputs += other.inputs;
        self.inputs_skipped += other.inputs_skipped;
        self.files_ignored += other.files_ignored;
        self.bytes_in += other.bytes_in;
        self.bytes_decompressed += other.bytes_decompressed;
        self.records_in += other.records_in;
        self.matched += other.matched;
        self.unmatched += other.unmatched;
        self.filtered += other.filtered;
        self.duplicates += other.duplicates;
        self.records_skipped += other.records_skipped;
        self.digests += other.digests;
        self.object_refs += other.object_refs;
        self.notices += other.notices;
        self.recovered += other.recovered;
        self.alerts += other.alerts;
    }

    /// The reconciliation invariant: records in = matched + unmatched + filtered +
    /// duplicates + skipped.
    pub fn reconciles(&self) -> bool {
        self.records_in
            == self.matched
                + self.unmatched
                + self.filtered
                + self.duplicates
                + self.records_skipped
    }

    /// Counts one skipped item that lost no record: a notice or a recovered warning.
    pub fn count_lossless_skip(&mut self, skipped: &Skipped) {
        if skipped.records_lost != Some(0) {
            return;
        }
        match skipped.reason {
            SkipReason::S3TestEvent | SkipReason::UnsupportedNotification(_) => self.notices += 1,
            _ => self.recovered += 1,
        }
    }

    /// Fills the decoding counts from one input's [`DecodeSummary`], after its skipped items
    /// went through [`Summary::count_lossless_skip`] (those are not lost records).
    pub fn add_decoded(&mut self, decoded: &DecodeSummary) {
        let lost = decoded
            .skipped_records
            .saturating_sub(self.notices + self.recovered);
        self.bytes_in += decoded.bytes_in;
        self.bytes_decompressed += decoded.bytes_decompressed;
        self.records_in += decoded.events + decoded.screened + lost;
        self.records_skipped += lost;
        self.inputs_skipped += decoded.skipped_inputs.min(1);
    }

    /// Anything skipped, at either level.
    pub fn skipped_anything(&self) -> bool {
        self.inputs_skipped > 0 || self.records_skipped > 0
    }

    /// The summary line with rates over `elapsed`.
    pub fn with_elapsed(&self, elapsed: Duration) -> Timed<'_> {
        Timed {
            summary: self,
            elapsed,
        }
    }
}

/// A summary together with the wall time it took, for display.
pub struct Timed<'a> {
    summary: &'a Summary,
    elapsed: Duration,
}

/// Formats an integer with thousands separators.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self;
        write!(
            f,
            "{} inputs ({} read, {} decompressed), {} skipped",
            thousands(s.inputs),
            megabytes(s.bytes_in),
            megabytes(s.bytes_decompressed),
            thousands(s.inputs_skipped),
        )?;
        if s.files_ignored > 0 {
            write!(f, ", {} non-log files ignored", thousands(s.files_ignored))?;
        }
        write!(
            f,
            "\nrecords: {} in = {} matched + {} unmatched + {} filtered + {} duplicate + {} skipped",
            thousands(s.records_in),
            thousands(s.matched),
            thousands(s.unmatched),
            thousands(s.filtered),
            thousands(s.duplicates),
            thousands(s.records_skipped),
        )?;
        write!(
            f,
            "\nalerts: {}; digest files set aside: {}; S3 notifications seen: {}; notices: {}; recovered: {}",
            thousands(s.alerts),
            thousands(s.digests),
            thousands(s.object_refs),
            thousands(s.notices),
            thousands(s.recovered),
        )?;
        let errors = s.inputs_skipped + s.records_skipped;
        write!(f, "\nerrors: {}", thousands(errors))
    }
}

impl fmt::Display for Timed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.summary)?;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "\ntime: {:.2}s ({} records/s, {:.1} MB/s decompressed)",
            secs,
            thousands((self.summary.records_in as f64 / secs) as u64),
            self.summary.bytes_decompressed as f64 / 1e6 / secs,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn summaries_add_and_reconcile() {
        let mut a = Summary {
            records_in: 10,
            matched: 2,
            unmatched: 6,
            records_skipped: 2,
            ..Summary::default()
        };
        assert!(a.reconciles());
        let b = Summary {
            records_in: 3,
            filtered: 3,
            ..Summary::default()
        };
        a.add(&b);
        assert_eq!(a.records_in, 13);
        assert!(a.reconciles());
        a.unmatched += 1;
        assert!(!a.reconciles());
    }
}
