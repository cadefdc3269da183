//! The entry points: one input in, a stream of [`Item`]s out, with counts that reconcile.
//!
//! Every record the decoder sees ends as exactly one item: an event, an object reference, a
//! digest, or a skip. Failures of the input as a whole are their own skip item.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;
use std::sync::Arc;

use serde_json::value::RawValue;

use crate::capped::{Opened, open};
use crate::config_health::from_config_notification;
use crate::digest::{self, DigestFile};
use crate::envelope::{Header, Preview, RecordError};
use crate::probe::{Probe, first_byte, raw_str};
use crate::skip::{SkipReason, SkipScope, Skipped};
use crate::stream::{
    BUF_SIZE, Input, Pos, Scanned, SkipKind, StreamSink, io_reason, nesting_depth, run,
};
use crate::wrappers::{self, ObjectRef, SnsParts};
use crate::{Event, Limits, Provenance};

/// Wrappers nest at most this deep (SQS → SNS → S3 notification is 3).
const MAX_WRAPPER_DEPTH: u8 = 6;

/// One thing decoded from an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A CloudTrail record (or any EventBridge event) in the EventBridge envelope.
    Event(Event),
    /// A new log file announced by a notification.
    Object(ObjectRef),
    /// A CloudTrail digest file, set aside for the integrity check.
    Digest(DigestFile),
    /// A record or input that did not decode, and why.
    Skipped(Skipped),
}

/// What one call to [`decode`] did.
///
/// Every item handed to the sink is counted once: `events + objects + digests +
/// skipped_records + skipped_inputs` items. `skipped_records` includes `notices` (S3 test
/// events and ignored notifications: no record lost) and `repaired` (structural flaws read
/// past: no record lost); the records actually lost one by one are
/// `skipped_records - notices - repaired`. Inputs cut short add to `skipped_inputs`, with
/// an unknown number of records lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeSummary {
    /// Events delivered.
    pub events: u64,
    /// CloudTrail records decoded but not delivered: the caller's screen declined them
    /// ([`decode_screened`]). Counted here so nothing is lost without a count.
    pub screened: u64,
    /// Object references delivered.
    pub objects: u64,
    /// Digest files delivered.
    pub digests: u64,
    /// Skip items at record level: lost records, notices and repaired flaws.
    pub skipped_records: u64,
    /// Of `skipped_records`: notifications set aside that carry no records (S3 test event,
    /// deleted-object and other ignored notifications).
    pub notices: u64,
    /// Of `skipped_records`: structural flaws read past without losing a record.
    pub repaired: u64,
    /// Whole-input failures (empty, truncated, corrupt, over the cap).
    pub skipped_inputs: u64,
    /// Bytes read from the reader (compressed size for gzip).
    pub bytes_in: u64,
    /// Bytes after decompression (equal to `bytes_in` for plain input).
    pub bytes_decompressed: u64,
}

impl DecodeSummary {
    /// Records (documents, notifications) seen: each became exactly one item.
    pub fn records_seen(&self) -> u64 {
        (self.events + self.screened + self.objects + self.digests + self.skipped_records)
            .saturating_sub(self.repaired)
    }

    /// Records lost one by one (skipped for a reason other than a notice or a repair).
    pub fn records_lost(&self) -> u64 {
        self.skipped_records
            .saturating_sub(self.notices)
            .saturating_sub(self.repaired)
    }

    /// Items handed to the sink.
    pub fn items(&self) -> u64 {
        self.events + self.objects + self.digests + self.skipped_records + self.skipped_inputs
    }

    /// Adds another summary into this one.
    pub fn add(&mut self, o: &DecodeSummary) {
        self.events += o.events;
        self.screened += o.screened;
        self.objects += o.objects;
        self.digests += o.digests;
        self.skipped_records += o.skipped_records;
        self.notices += o.notices;
        self.repaired += o.repaired;
        self.skipped_inputs += o.skipped_inputs;
        self.bytes_in += o.bytes_in;
        self.bytes_decompressed += o.bytes_decompressed;
    }
}

/// Decodes one input (a file's bytes or a message body), gzip or plain, handing each item to
/// `sink` as soon as it is decoded.
pub fn decode(
    reader: impl Read,
    origin: Arc<str>,
    limits: &Limits,
    sink: &mut dyn FnMut(Item),
) -> DecodeSummary {
    decode_inner(reader, origin, None, BUF_SIZE, limits, &mut |_| true, sink)
}

/// As [`decode`], asking `screen` about each CloudTrail record before its event is built:
/// a record it declines is counted in [`DecodeSummary::screened`] and never reaches `sink`.
/// For callers that keep only some events (a time filter, a rule set whose screen rules
/// most events out): building an envelope costs more than deciding it is not wanted.
/// EventBridge envelopes and notifications are not screened; they always reach `sink`.
pub fn decode_screened(
    reader: impl Read,
    origin: Arc<str>,
    limits: &Limits,
    screen: &mut dyn FnMut(&Preview<'_>) -> bool,
    sink: &mut dyn FnMut(Item),
) -> DecodeSummary {
    decode_inner(reader, origin, None, BUF_SIZE, limits, screen, sink)
}

/// For a queue or push message body: as [`decode`], with the message id stamped into every
/// item's provenance.
pub fn decode_message(
    body: &[u8],
    origin: Arc<str>,
    message_id: Option<&str>,
    limits: &Limits,
    sink: &mut dyn FnMut(Item),
) -> DecodeSummary {
    // A small body needs no file-sized buffer (gzip bodies may inflate; the buffer is only
    // a window, so a small one still works).
    let size = body.len().saturating_mul(2);
    decode_inner(
        body,
        origin,
        message_id.map(str::to_owned),
        size,
        limits,
        &mut |_| true,
        sink,
    )
}

/// Decodes bytes already in memory and returns the items: the fuzzing and test entry point.
pub fn decode_slice(bytes: &[u8], origin: &str, limits: &Limits) -> (Vec<Item>, DecodeSummary) {
    let mut items = Vec::new();
    let summary = decode(bytes, Arc::from(origin), limits, &mut |i| items.push(i));
    (items, summary)
}

struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

fn decode_inner(
    reader: impl Read,
    origin: Arc<str>,
    message_id: Option<String>,
    buf_size: usize,
    limits: &Limits,
    screen: &mut dyn FnMut(&Preview<'_>) -> bool,
    sink: &mut dyn FnMut(Item),
) -> DecodeSummary {
    let bytes_in = Rc::new(Cell::new(0));
    let bytes_out = Rc::new(Cell::new(0));
    let mut ctx = Ctx {
        origin,
        message_id,
        max_depth: limits.max_depth,
        screen,
        sink,
        summary: DecodeSummary::default(),
    };
    let counted = Counting {
        inner: reader,
        count: bytes_in.clone(),
    };
    match open(counted, limits.max_decompressed_bytes) {
        Ok(Opened::Whole(plain)) => {
            bytes_out.set(plain.len() as u64);
            run(&mut Input::whole(io::empty(), plain), limits, &mut ctx);
        }
        Ok(Opened::Stream(plain)) => {
            let mut input = Input::new(
                Counting {
                    inner: plain,
                    count: bytes_out.clone(),
                },
                buf_size,
            );
            run(&mut input, limits, &mut ctx);
        }
        Err(e) => {
            let p = ctx.prov(None, Some(0));
            ctx.emit(Item::Skipped(Skipped::input(p, io_reason(&e))));
        }
    }
    ctx.summary.bytes_in = bytes_in.get();
    ctx.summary.bytes_decompressed = bytes_out.get();
    ctx.summary
}

struct Ctx<'a> {
    origin: Arc<str>,
    message_id: Option<String>,
    max_depth: usize,
    screen: &'a mut dyn FnMut(&Preview<'_>) -> bool,
    sink: &'a mut dyn FnMut(Item),
    summary: DecodeSummary,
}

impl StreamSink for Ctx<'_> {
    fn value(&mut self, text: &[u8], index: u64, pos: Pos, scanned: Scanned) {
        let prov = self.prov(Some(index), Some(pos.offset));
        match std::str::from_utf8(text) {
            Ok(s) => self.classify(s, prov, Some(pos), 0, scanned.may_alias()),
            Err(e) => {
                let prov = Provenance {
                    byte_offset: Some(pos.offset + e.valid_up_to() as u64),
                    ..prov
                };
                self.skip_record(prov, SkipReason::NotUtf8);
            }
        }
    }

    fn skip(&mut self, index: Option<u64>, pos: Pos, reason: SkipReason, kind: SkipKind) {
        let p = self.prov(index, Some(pos.offset));
        let s = match kind {
            SkipKind::Record => Skipped::record(p, reason),
            SkipKind::Repaired => Skipped::repaired(p, reason),
            SkipKind::Input => Skipped::input(p, reason),
        };
        self.emit(Item::Skipped(s));
    }
}

impl Ctx<'_> {
    fn prov(&self, index: Option<u64>, offset: Option<u64>) -> Provenance {
        Provenance {
            origin: self.origin.clone(),
            record_index: index,
            byte_offset: offset,
            message_id: self.message_id.clone(),
        }
    }

    fn emit(&mut self, item: Item) {
        let s = &mut self.summary;
        match &item {
            Item::Event(_) => s.events += 1,
            Item::Object(_) => s.objects += 1,
            Item::Digest(_) => s.digests += 1,
            Item::Skipped(k) => match (k.scope, k.records_lost) {
                (SkipScope::Input, _) => s.skipped_inputs += 1,
                (SkipScope::Record, Some(0)) => {
                    s.skipped_records += 1;
                    match k.reason {
                        SkipReason::S3TestEvent | SkipReason::UnsupportedNotification(_) => {
                            s.notices += 1
                        }
                        _ => s.repaired += 1,
                    }
                }
                (SkipScope::Record, _) => s.skipped_records += 1,
            },
        }
        (self.sink)(item);
    }

    fn skip_record(&mut self, prov: Provenance, reason: SkipReason) {
        let s = match reason {
            SkipReason::S3TestEvent | SkipReason::UnsupportedNotification(_) => {
                Skipped::notice(prov, reason)
            }
            r => Skipped::record(prov, r),
        };
        self.emit(Item::Skipped(s));
    }

    /// A record's error, with its position made absolute where the record's position is known.
    fn record_error(&mut self, prov: Provenance, e: RecordError, pos: Option<Pos>) {
        let reason = match e {
            RecordError::MalformedJson { line, column, msg } => {
                let (line, column) = match pos {
                    Some(p) if line <= 1 => (p.line, p.column + column.saturating_sub(1)),
                    Some(p) => (p.line + line - 1, column),
                    None => (line, column),
                };
                SkipReason::MalformedJson { line, column, msg }
            }
            RecordError::NotAnObject => SkipReason::NotCloudTrail,
            RecordError::MissingField(f) => SkipReason::MissingField(f),
            RecordError::InvalidField { field, msg } => SkipReason::InvalidField { field, msg },
            RecordError::TooDeep => SkipReason::TooDeep,
        };
        self.skip_record(prov, reason);
    }

    /// Works out what one JSON text is and emits it.
    /// `may_alias` is the scanner's verdict on this very text, when it scanned it (see
    /// [`Scanned::may_alias`]); texts from inside wrappers are checked afresh.
    fn classify(
        &mut self,
        text: &str,
        prov: Provenance,
        pos: Option<Pos>,
        depth: u8,
        may_alias: Option<bool>,
    ) {
        if depth > MAX_WRAPPER_DEPTH {
            return self.skip_record(prov, SkipReason::WrappersTooDeep);
        }
        // Texts from inside a wrapper did not pass the scanner's depth cap.
        if depth > 0 && nesting_depth(text.as_bytes()) > self.max_depth {
            return self.skip_record(prov, SkipReason::TooDeep);
        }
        match first_byte(text) {
            Some(b'{') => {}
            Some(b'[') => return self.classify_array(text, prov, pos, depth),
            _ => {
                // Scalars, or garbage such as an SQS body that is not JSON.
                return match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                    Err(e) => self.record_error(prov, RecordError::from_json(&e), pos),
                    Ok(_) => self.skip_record(prov, SkipReason::NotCloudTrail),
                };
            }
        }
        let probe: Probe<'_> = match serde_json::from_str(text) {
            Ok(p) => p,
            Err(e) => return self.record_error(prov, RecordError::from_json(&e), pos),
        };

        // An EventBridge envelope: passed through, except S3 object notifications.
        if let (Some(dt), Some(_)) = (probe.detail_type, probe.detail) {
            let source = raw_str(probe.source);
            let dt = raw_str(Some(dt));
            if source.as_deref() == Some("aws.s3")
                && dt.as_deref().is_some_and(|d| d.starts_with("Object "))
            {
                return match wrappers::eventbridge_s3(text, prov.clone()) {
                    Ok(o) => self.emit(Item::Object(o)),
                    Err(r) => self.skip_record(prov, r),
                };
            }
            return match Event::from_envelope(text, prov.clone()) {
                Ok(e) => self.emit(Item::Event(e)),
                Err(e) => self.record_error(prov, e, pos),
            };
        }
        // An SNS notification (HTTP push, or the body of an SQS message from SNS).
        if probe.sns_type.is_some() && probe.sns_message.is_some() {
            let parts =
                wrappers::sns_parts(probe.sns_type, probe.sns_message_id, probe.sns_message);
            return self.sns(parts, prov, depth);
        }
        let event_source = probe.event_source.as_ref().map(|t| t.as_str());
        // An SNS record in a Lambda-style batch.
        if let (Some("aws:sns"), Some(sns)) =
            (raw_str(probe.sns_event_source).as_deref(), probe.sns)
        {
            return match wrappers::sns_record(sns) {
                Ok(parts) => self.sns(parts, prov, depth),
                Err(r) => self.skip_record(prov, r),
            };
        }
        // An SQS record: the body is a whole message of its own.
        if let (Some("aws:sqs"), Some(body)) = (event_source, probe.body) {
            let mut prov = prov;
            if let Some(id) = raw_str(probe.message_id) {
                prov.message_id = Some(id.into_owned());
            }
            return match raw_str(Some(body)) {
                Some(b) => self.classify(&b, prov, None, depth + 1, None),
                None => self.skip_record(
                    prov,
                    SkipReason::InvalidField {
                        field: "body",
                        msg: "not a string".into(),
                    },
                ),
            };
        }
        // An S3 event notification record.
        if let (Some("aws:s3"), Some(s3)) = (event_source, probe.s3) {
            let name = probe.event_name.as_ref().map(|t| t.as_str());
            let time = probe.event_time.as_ref().map(|t| t.as_str());
            return match wrappers::s3_notification_record(name, time, s3, prov.clone()) {
                Ok(o) => self.emit(Item::Object(o)),
                Err(r) => self.skip_record(prov, r),
            };
        }
        // A document holding Records that was not streamed (a message body, or Records not
        // the first member).
        if let Some(records) = probe.records {
            return self.classify_records(records, prov, depth);
        }
        if raw_str(probe.s3_test_event).as_deref() == Some("s3:TestEvent") {
            return self.skip_record(prov, SkipReason::S3TestEvent);
        }
        if probe.digest_start_time.is_some() && probe.log_files.is_some() {
            return match digest::parse(text, prov.clone()) {
                Ok(d) => self.emit(Item::Digest(d)),
                Err(r) => self.skip_record(prov, r),
            };
        }
        if probe.config_message_type.is_some() {
            return match from_config_notification(text, prov.clone()) {
                Ok(e) => self.emit(Item::Event(e)),
                Err(r) => self.skip_record(prov, r),
            };
        }
        if probe.has_cloudtrail_fields() {
            return match Header::from_probe(text, &probe, may_alias) {
                Ok(h) if (self.screen)(&h.preview()) => self.emit(Item::Event(h.into_event(prov))),
                Ok(_) => self.summary.screened += 1,
                Err(e) => self.record_error(prov, e, pos),
            };
        }
        // Splunk HEC-style export: {"time": .., "event": {record}}.
        match probe.event {
            Some(ev) if first_byte(ev.get()) == Some(b'{') => {
                self.classify(ev.get(), prov, None, depth + 1, None)
            }
            _ => self.skip_record(prov, SkipReason::NotCloudTrail),
        }
    }

    fn sns(&mut self, parts: SnsParts<'_>, mut prov: Provenance, depth: u8) {
        let kind = parts.kind.as_deref().unwrap_or("Notification");
        if kind != "Notification" {
            return self.skip_record(
                prov,
                SkipReason::UnsupportedNotification(format!("SNS {kind}")),
            );
        }
        // The queue's message id, if any, is what a consumer acknowledges: keep it.
        if prov.message_id.is_none() {
            prov.message_id = parts.message_id.map(|m| m.into_owned());
        }
        match parts.message {
            Some(m) => self.classify(&m, prov, None, depth + 1, None),
            None => self.skip_record(prov, SkipReason::MissingField("Message")),
        }
    }

    fn classify_records(&mut self, records: &RawValue, prov: Provenance, depth: u8) {
        if first_byte(records.get()) != Some(b'[') {
            return self.skip_record(prov, SkipReason::RecordsNotArray);
        }
        self.classify_array(records.get(), prov, None, depth)
    }

    fn classify_array(&mut self, text: &str, prov: Provenance, pos: Option<Pos>, depth: u8) {
        match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(elements) => {
                for el in elements {
                    self.classify(el.get(), prov.clone(), None, depth + 1, None);
                }
            }
            Err(e) => self.record_error(prov, RecordError::from_json(&e), pos),
        }
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
