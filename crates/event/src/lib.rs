//! CloudTrail events in the EventBridge envelope, and the decoders that produce them.
//!
//! Every input — a CloudTrail delivery file (`{"Records":[...]}`, gzip or plain), a JSON array
//! of records, a single record, JSON Lines, an EventBridge envelope, or a notification
//! announcing a new log file — is decoded into a stream of [`Item`]s:
//!
//! - [`Item::Event`]: an [`Event`] in the envelope EventBridge itself delivers for CloudTrail,
//!   with the original record bytes as `detail`, so one EventBridge pattern means the same
//!   thing however the event arrived (see [`envelope`] for the mapping and its sources);
//! - [`Item::Object`]: an [`ObjectRef`], a log file to fetch (S3, SNS, SQS, EventBridge
//!   notifications);
//! - [`Item::Digest`]: a [`DigestFile`], set aside for the integrity check;
//! - [`Item::Skipped`]: a [`Skipped`] record or input, with origin, position and reason.
//!
//! # Decisions worth knowing
//!
//! - **Envelope id.** EventBridge gives each event a random id; here it is a UUID v5 of the
//!   record's `eventID` ([`envelope::event_uuid`]), so the same event always gets the same
//!   id, however and however often it arrives (useful for de-duplication).
//! - **Sign-in detail-type.** The EventBridge user guide spells it "AWS Console Signin via
//!   CloudTrail" in one list, while delivered events and the brief use "AWS Console Sign In
//!   via CloudTrail"; the latter is used.
//! - **`@timestamp`.** Log shippers (logstash, as in the OTRF dataset) move `eventTime` to
//!   `@timestamp`; when `eventTime` is absent, `@timestamp` gives the envelope time. `detail`
//!   stays verbatim either way.
//! - **Exports.** A Splunk HEC-style line `{"time":..,"event":{record}}` is unwrapped.
//! - **Repairs.** A missing comma between two records of a `Records` array is reported (a
//!   record-level skip with no record lost, counted in [`DecodeSummary::repaired`]) and
//!   decoding reads on; any other structural damage ends the input with a skip.
//! - **Counting.** Every record, element or document seen becomes exactly one item; see
//!   [`DecodeSummary`] for how the counts reconcile.
//!
//! # Code map
//!
//! | file | concept |
//! |------|---------|
//! | `envelope.rs` | [`Event`], [`EventMeta`]: the record → EventBridge envelope mapping |
//! | `capped.rs` | [`capped::gzip`], [`capped::maybe_gzip`]: the size-capped gzip readers (libdeflate whole-buffer for small single-member files, flate2 streaming otherwise), the only decompression site |
//! | `stream.rs` | streaming over delivery files, arrays and JSON Lines; record framing |
//! | `probe.rs` | the one borrowed parse that tells what a JSON object is |
//! | `known.rs` | [`KNOWN_FIELDS`], [`Known`]: header fields the parse learned for certain, for a matcher's screen |
//! | `wrappers.rs` | S3 / SNS / SQS / EventBridge notifications → [`ObjectRef`] |
//! | `digest.rs` | CloudTrail digest files → [`DigestFile`] |
//! | `config_health.rs` | AWS Config and AWS Health events |
//! | `skip.rs` | [`Skipped`], [`SkipReason`] |
//! | `decode.rs` | [`decode`], [`decode_message`], [`decode_slice`], [`DecodeSummary`] |
//!
//! Architecture invariant: this crate does no file or network I/O. Decoders read from a
//! caller-provided [`std::io::Read`] or byte slice; decompression goes only through the
//! size-capped reader in [`capped`].
//!
//! ```
//! use std::sync::Arc;
//! use trailwatch_event::{decode, Item, Limits};
//!
//! let file = br#"{"Records":[{"eventVersion":"1.08","eventTime":"2026-01-01T00:00:00Z",
//!   "eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1",
//!   "eventID":"a1","eventType":"AwsApiCall","recipientAccountId":"111122223333"}]}"#;
//! let mut events = Vec::new();
//! let summary = decode(&file[..], Arc::from("example.json"), &Limits::default(), &mut |item| {
//!     if let Item::Event(e) = item { events.push(e) }
//! });
//! assert_eq!(summary.events, 1);
//! assert_eq!(events[0].meta().source, "aws.ec2");
//! assert_eq!(events[0].meta().detail_type, "AWS API Call via CloudTrail");
//! ```

pub mod capped;
pub mod config_health;
mod decode;
pub mod digest;
pub mod envelope;
mod known;
mod limits;
mod probe;
mod provenance;
mod skip;
mod stream;
pub mod wrappers;

#[cfg(test)]
mod test_support;

pub use decode::{DecodeSummary, Item, decode, decode_message, decode_screened, decode_slice};
pub use digest::{DigestFields, DigestFile, DigestLogFile};
pub use envelope::{Event, EventMeta, Preview, RecordError};
pub use known::{KNOWN_FIELDS, Known};
pub use limits::Limits;
pub use provenance::Provenance;
pub use skip::{SkipReason, SkipScope, Skipped};
pub use wrappers::ObjectRef;
