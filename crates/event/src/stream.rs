//! Streaming over the decompressed bytes: delivery files, arrays and JSON Lines, one record
//! at a time, so a 1 GB file never sits whole in memory.
//!
//! A small hand-written scanner finds where each record starts and ends (tracking strings,
//! escapes and bracket nesting) and copies just that record into a reusable buffer; the record
//! is then parsed once, on its own. That keeps memory bounded by the largest record (itself
//! capped), gives every record its byte offset, caps nesting without recursion, and lets one
//! bad record be skipped while the rest of the file is still read.

use std::io::{self, Read};

use crate::Limits;
use crate::capped::{Pooled, is_cap_exceeded};
use crate::skip::SkipReason;

/// Read buffer for files; message bodies get one sized to the body.
pub(crate) const BUF_SIZE: usize = 256 * 1024;
/// Smallest buffer: room to look ahead for the `"Records"` key.
const MIN_BUF: usize = 8 * 1024;

/// A position in the decompressed input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    /// Byte offset from the start.
    pub offset: u64,
    /// 1-based line.
    pub line: u64,
    /// 1-based column (bytes).
    pub column: u64,
}

/// How a skip is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SkipKind {
    /// One record lost.
    Record,
    /// A structural flaw read past, no record lost (a missing comma).
    Repaired,
    /// The rest of the input is lost.
    Input,
}

/// Receives what the scanner finds.
pub(crate) trait StreamSink {
    /// One complete record or top-level document, as bytes.
    fn value(&mut self, text: &[u8], index: u64, pos: Pos, scanned: Scanned);
    /// Something that could not be read.
    fn skip(&mut self, index: Option<u64>, pos: Pos, reason: SkipReason, kind: SkipKind);
}

/// Why scanning a value stopped early.
#[derive(Debug)]
pub(crate) enum ScanFail {
    /// The input ended inside the value.
    Eof(Pos),
    /// Reading failed (gzip cap, corrupt or truncated gzip, I/O).
    Io(io::Error, Pos),
    /// A byte that cannot be there.
    Unexpected { pos: Pos, msg: String },
}

impl ScanFail {
    pub(crate) fn into_skip(self) -> (Pos, SkipReason) {
        match self {
            ScanFail::Eof(pos) => (pos, SkipReason::Truncated),
            ScanFail::Io(e, pos) => (pos, io_reason(&e)),
            ScanFail::Unexpected { pos, msg } => (
                pos,
                SkipReason::MalformedJson {
                    line: pos.line,
                    column: pos.column,
                    msg,
                },
            ),
        }
    }
}

/// Maps a read error to a skip reason.
pub(crate) fn io_reason(e: &io::Error) -> SkipReason {
    if is_cap_exceeded(e) {
        return SkipReason::DecompressedTooLarge;
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => SkipReason::Truncated,
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
            SkipReason::CorruptCompression(e.to_string())
        }
        _ => SkipReason::Io(e.to_string()),
    }
}

/// What [`Input::read_value`] saw.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Scanned {
    /// Longer than the cap: not copied.
    pub oversize: bool,
    /// Nested deeper than the cap: not copied.
    pub too_deep: bool,
    /// Saw `\u` or `"userIdentity.` in the bytes: the value may reach
    /// `userIdentity.type` other than through its `userIdentity` member. Got while framing,
    /// which looks at every quote and backslash anyway.
    may_alias: bool,
    /// A candidate for either was cut by the end of the buffer (or a backslash stood
    /// outside a string), so [`Scanned::may_alias`] cannot tell.
    alias_unsure: bool,
    /// Where the value sits in the input's buffer when it was left there instead of being
    /// copied out ([`Input::read_value_in_place`]); valid until the input reads on.
    in_place: Option<(usize, usize)>,
}

impl Scanned {
    /// The verdict of [`crate::known::may_alias_user_identity_type`] on the value's bytes,
    /// when framing could tell it (exactly, for any value that is JSON).
    pub(crate) fn may_alias(&self) -> Option<bool> {
        (!self.alias_unsure).then_some(self.may_alias)
    }

    /// Notes the bytes after a `"`: whether they start `userIdentity.`. Runs for every
    /// quote, so the common case (another first byte) is one comparison, inline.
    #[inline(always)]
    fn after_quote(&mut self, rest: &[u8]) {
        if matches!(rest.first(), Some(b'u') | None) {
            self.after_quote_u(rest);
        }
    }

    #[inline(never)]
    fn after_quote_u(&mut self, rest: &[u8]) {
        const USER_IDENTITY_DOT: &[u8] = b"userIdentity.";
        if rest.len() >= USER_IDENTITY_DOT.len() {
            self.may_alias |= rest.starts_with(USER_IDENTITY_DOT);
        } else {
            self.alias_unsure |= USER_IDENTITY_DOT.starts_with(rest);
        }
    }

    /// Notes the byte after an escaped backslash: `\\u` holds `\u` too.
    fn after_backslash(&mut self, rest: &[u8]) {
        match rest.first() {
            Some(&b) => self.may_alias |= b == b'u',
            None => self.alias_unsure = true,
        }
    }
}

/// The deepest bracket nesting in a JSON text (strings skipped), for texts that did not come
/// through the scanner (message bodies inside strings).
pub(crate) fn nesting_depth(text: &[u8]) -> usize {
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0usize);
    while i < text.len() {
        match text[i] {
            b'"' => {
                i += 1;
                while let Some(p) = memchr::memchr2(b'"', b'\\', &text[i..]) {
                    i += p;
                    if text[i] == b'"' {
                        break;
                    }
                    i += 2;
                }
            }
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    max
}

/// The first `"` or `\\` in `s`, eight bytes at a time: CloudTrail strings are short, and
/// this beats a library call per string (inline: it runs once per string).
#[inline(always)]
fn find_quote_or_backslash(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
    let mut i = 0;
    while i + 8 <= s.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[i..i + 8]);
        let v = u64::from_le_bytes(w);
        let m = has_zero(v ^ (LO * u64::from(b'"'))) | has_zero(v ^ (LO * u64::from(b'\\')));
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    s[i..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\')
        .map(|p| i + p)
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// A buffered reader that knows its position and can look ahead.
pub(crate) struct Input<R> {
    inner: R,
    buf: Pooled,
    start: usize,
    end: usize,
    offset: u64,
    line: u64,
    line_start: u64,
    eof: bool,
    error: Option<io::Error>,
}

impl<R: Read> Input<R> {
    /// A reader with a buffer of about `size` bytes (at least 8 KiB).
    pub(crate) fn new(inner: R, size: usize) -> Self {
        Input {
            inner,
            buf: Pooled::sized(size.clamp(MIN_BUF, BUF_SIZE)),
            start: 0,
            end: 0,
            offset: 0,
            line: 1,
            line_start: 0,
            eof: false,
            error: None,
        }
    }

    /// Reads `bytes` in place: the whole input, already in memory (nothing is read from
    /// `inner`).
    pub(crate) fn whole(inner: R, bytes: Pooled) -> Self {
        Input {
            inner,
            start: 0,
            end: bytes.len(),
            buf: bytes,
            offset: 0,
            line: 1,
            line_start: 0,
            eof: true,
            error: None,
        }
    }

    pub(crate) fn pos(&self) -> Pos {
        Pos {
            offset: self.offset,
            line: self.line,
            column: self.offset - self.line_start + 1,
        }
    }

    /// The read error that ended the input, if one did.
    pub(crate) fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    /// Reads more bytes; false at end of input (or when the buffer is full).
    fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start == 0 {
                return false;
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return false;
                }
                Ok(n) => {
                    self.end += n;
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e);
                    self.eof = true;
                    return false;
                }
            }
        }
    }

    /// Moves past `n` buffered bytes, keeping line and column.
    fn advance(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        let seg = &self.buf[self.start..self.start + n];
        if let Some(last) = memchr::memrchr(b'\n', seg) {
            self.line += memchr::memchr_iter(b'\n', seg).count() as u64;
            self.line_start = self.offset + last as u64 + 1;
        }
        self.start += n;
        self.offset += n as u64;
    }

    fn peek(&mut self) -> Option<u8> {
        if self.start == self.end && !self.fill() {
            return None;
        }
        Some(self.buf[self.start])
    }

    /// Up to `n` bytes of look-ahead (fewer at end of input).
    fn peek_n(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.buf.len());
        while self.end - self.start < n && self.fill() {}
        &self.buf[self.start..self.end]
    }

    /// Skips whitespace; the next byte, not consumed.
    pub(crate) fn skip_ws(&mut self) -> Option<u8> {
        loop {
            let avail = &self.buf[self.start..self.end];
            match avail.iter().position(|&b| !is_ws(b)) {
                Some(i) => {
                    self.advance(i);
                    return Some(self.buf[self.start]);
                }
                None => {
                    let n = avail.len();
                    self.advance(n);
                    if !self.fill() {
                        return None;
                    }
                }
            }
        }
    }

    /// Skips to just after the next newline (to resynchronise on JSON Lines).
    fn skip_line(&mut self) {
        loop {
            let avail = &self.buf[self.start..self.end];
            match memchr::memchr(b'\n', avail) {
                Some(i) => {
                    self.advance(i + 1);
                    return;
                }
                None => {
                    let n = avail.len();
                    self.advance(n);
                    if !self.fill() {
                        return;
                    }
                }
            }
        }
    }

    fn fail_eof(&mut self) -> ScanFail {
        let pos = self.pos();
        match self.error.take() {
            Some(e) => ScanFail::Io(e, pos),
            None => ScanFail::Eof(pos),
        }
    }

    /// Reads one JSON value starting at the next byte, copying it into `out` unless it is
    /// longer than `cap` or nested deeper than `max_depth` (it is then read to its end but
    /// not kept). Grammar inside the value is left to the parser; brackets must balance.
    pub(crate) fn read_value(
        &mut self,
        out: &mut Vec<u8>,
        cap: usize,
        max_depth: usize,
    ) -> Result<Scanned, ScanFail> {
        self.read_value_impl(out, cap, max_depth, false)
    }

    /// As [`Input::read_value`], but a value that lies whole in the buffer is left there
    /// (see [`Input::value_text`]): most records do, and copying each one out was a pass
    /// over every byte.
    pub(crate) fn read_value_in_place(
        &mut self,
        out: &mut Vec<u8>,
        cap: usize,
        max_depth: usize,
    ) -> Result<Scanned, ScanFail> {
        self.read_value_impl(out, cap, max_depth, true)
    }

    /// The text of the value `seen` describes: in the buffer, or copied into `out`.
    pub(crate) fn value_text<'a>(&'a self, out: &'a [u8], seen: &Scanned) -> &'a [u8] {
        match seen.in_place {
            Some((from, to)) => &self.buf[from..to],
            None => out,
        }
    }

    fn read_value_impl(
        &mut self,
        out: &mut Vec<u8>,
        cap: usize,
        max_depth: usize,
        in_place: bool,
    ) -> Result<Scanned, ScanFail> {
        let Some(first) = self.peek() else {
            return Err(self.fail_eof());
        };
        let mut seen = Scanned::default();
        if !matches!(first, b'{' | b'[' | b'"') {
            return self.read_scalar(out, cap, seen);
        }
        // Closing brackets expected, innermost last; not pushed past max_depth.
        let mut stack: Vec<u8> = Vec::new();
        let mut depth: usize = 0;
        let mut in_string = false;
        let mut escaped = false;
        loop {
            if self.start == self.end && !self.fill() {
                return Err(self.fail_eof());
            }
            let chunk = &self.buf[self.start..self.end];
            let mut i = 0;
            let mut done = false;
            let mut bad: Option<(usize, String)> = None;
            while i < chunk.len() {
                if escaped {
                    escaped = false;
                    match chunk[i] {
                        b'u' => seen.may_alias = true,
                        b'"' => seen.after_quote(&chunk[i + 1..]),
                        b'\\' => seen.after_backslash(&chunk[i + 1..]),
                        _ => {}
                    }
                    i += 1;
                    continue;
                }
                if in_string {
                    match find_quote_or_backslash(&chunk[i..]) {
                        None => {
                            i = chunk.len();
                        }
                        Some(p) => {
                            i += p;
                            if chunk[i] == b'\\' {
                                escaped = true;
                            } else {
                                // (No check after a closing quote: in JSON a `u` never
                                // follows one, and texts that are not JSON are rejected.)
                                in_string = false;
                                if depth == 0 {
                                    i += 1;
                                    done = true;
                                    break;
                                }
                            }
                            i += 1;
                        }
                    }
                    continue;
                }
                match chunk[i] {
                    b'"' => {
                        in_string = true;
                        seen.after_quote(&chunk[i + 1..]);
                    }
                    // Not JSON; the parser rejects it. Leave the verdict to a text search.
                    b'\\' => seen.alias_unsure = true,
                    c @ (b'{' | b'[') => {
                        depth += 1;
                        if depth > max_depth {
                            seen.too_deep = true;
                        } else {
                            stack.push(if c == b'{' { b'}' } else { b']' });
                        }
                    }
                    c @ (b'}' | b']') => {
                        if depth == 0 {
                            bad = Some((i, format!("unexpected '{}'", c as char)));
                            break;
                        }
                        if depth <= max_depth && stack.pop() != Some(c) {
                            bad = Some((i, format!("mismatched '{}'", c as char)));
                            break;
                        }
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            done = true;
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            let keep = bad.as_ref().map_or(i, |(at, _)| *at);
            if !seen.oversize && !seen.too_deep {
                if out.len() + keep > cap {
                    seen.oversize = true;
                    out.clear();
                } else if in_place && done && out.is_empty() {
                    // Begun and ended in this chunk: `advance` below does not move bytes.
                    seen.in_place = Some((self.start, self.start + keep));
                } else {
                    out.extend_from_slice(&chunk[..keep]);
                }
            } else if !out.is_empty() {
                out.clear();
            }
            self.advance(keep);
            if let Some((_, msg)) = bad {
                return Err(ScanFail::Unexpected {
                    pos: self.pos(),
                    msg,
                });
            }
            if done {
                return Ok(seen);
            }
        }
    }

    /// A number, `true`, `false` or `null` (or a run of garbage, left to the parser).
    fn read_scalar(
        &mut self,
        out: &mut Vec<u8>,
        cap: usize,
        mut seen: Scanned,
    ) -> Result<Scanned, ScanFail> {
        let mut len = 0usize;
        loop {
            if self.start == self.end && !self.fill() {
                if let Some(e) = self.error.take() {
                    return Err(ScanFail::Io(e, self.pos()));
                }
                break;
            }
            let chunk = &self.buf[self.start..self.end];
            let n = chunk
                .iter()
                .position(|&b| is_ws(b) || matches!(b, b',' | b']' | b'}' | b'[' | b'{' | b'"'))
                .unwrap_or(chunk.len());
            if !seen.oversize {
                if out.len() + n > cap {
                    seen.oversize = true;
                    out.clear();
                } else {
                    out.extend_from_slice(&chunk[..n]);
                }
            }
            len += n;
            let stop = n < chunk.len();
            self.advance(n);
            if stop {
                break;
            }
        }
        if len == 0 {
            let pos = self.pos();
            let c = self.peek().map_or(String::from("end of input"), |b| {
                format!("'{}'", b.escape_ascii())
            });
            return Err(ScanFail::Unexpected {
                pos,
                msg: format!("expected a value, found {c}"),
            });
        }
        Ok(seen)
    }

    /// Whether the object starting here opens with the key `"Records"`.
    fn starts_with_records_key(&mut self) -> bool {
        let head = self.peek_n(4096);
        let mut i = 1; // past '{'
        while i < head.len() && is_ws(head[i]) {
            i += 1;
        }
        head[i.min(head.len())..].starts_with(b"\"Records\"")
    }
}

/// Decodes a whole input: any number of top-level values (one document, a delivery file,
/// an array, JSON Lines). Records inside `Records` or a top-level array are streamed.
pub(crate) fn run<R: Read>(input: &mut Input<R>, limits: &Limits, sink: &mut dyn StreamSink) {
    let mut buf: Vec<u8> = Vec::new();
    let mut index: u64 = 0;
    let mut seen_any = false;
    if input.peek_n(3).starts_with(&[0xEF, 0xBB, 0xBF]) {
        input.advance(3);
    }
    while let Some(b) = input.skip_ws() {
        seen_any = true;
        let pos = input.pos();
        let result = match b {
            b'[' => {
                input.advance(1);
                stream_array(input, limits, sink, &mut buf, &mut index)
            }
            b'{' if input.starts_with_records_key() => {
                stream_records_object(input, limits, sink, &mut buf, &mut index)
            }
            b'{' => {
                buf.clear();
                match input.read_value(&mut buf, limits.max_record_bytes, limits.max_depth) {
                    Ok(s) => {
                        deliver(sink, &buf, s, index, pos);
                        index += 1;
                        Ok(())
                    }
                    Err(f) => Err(f),
                }
            }
            other => {
                // Not JSON we can use: report and resynchronise on the next line.
                sink.skip(
                    Some(index),
                    pos,
                    SkipReason::MalformedJson {
                        line: pos.line,
                        column: pos.column,
                        msg: format!("expected '{{' or '[', found '{}'", other.escape_ascii()),
                    },
                    SkipKind::Record,
                );
                index += 1;
                input.skip_line();
                Ok(())
            }
        };
        if let Err(fail) = result {
            let (pos, reason) = fail.into_skip();
            sink.skip(None, pos, reason, SkipKind::Input);
            return;
        }
    }
    let pos = input.pos();
    if let Some(e) = input.take_error() {
        // Every value was complete but the stream failed after it (gzip trailer, cap).
        sink.skip(None, pos, io_reason(&e), SkipKind::Input);
    } else if !seen_any {
        sink.skip(None, pos, SkipReason::Empty, SkipKind::Input);
    }
}

fn deliver(sink: &mut dyn StreamSink, buf: &[u8], s: Scanned, index: u64, pos: Pos) {
    if s.oversize {
        sink.skip(
            Some(index),
            pos,
            SkipReason::RecordTooLarge,
            SkipKind::Record,
        );
    } else if s.too_deep {
        sink.skip(Some(index), pos, SkipReason::TooDeep, SkipKind::Record);
    } else {
        sink.value(buf, index, pos, s);
    }
}

/// `{"Records": [ ... ], ...}`, the cursor on `{`.
fn stream_records_object<R: Read>(
    input: &mut Input<R>,
    limits: &Limits,
    sink: &mut dyn StreamSink,
    buf: &mut Vec<u8>,
    index: &mut u64,
) -> Result<(), ScanFail> {
    input.advance(1);
    input.skip_ws();
    input.advance("\"Records\"".len());
    expect(input, b':')?;
    match input.skip_ws() {
        Some(b'[') => {
            input.advance(1);
            stream_array(input, limits, sink, buf, index)?;
        }
        Some(_) => {
            let pos = input.pos();
            buf.clear();
            input.read_value(buf, 0, usize::MAX)?;
            sink.skip(None, pos, SkipReason::RecordsNotArray, SkipKind::Input);
        }
        None => return Err(input.fail_eof()),
    }
    // Other members after Records carry no records: read past them.
    loop {
        match input.skip_ws() {
            Some(b',') => {
                input.advance(1);
                input.skip_ws();
                buf.clear();
                input.read_value(buf, 0, usize::MAX)?;
                expect(input, b':')?;
                input.skip_ws();
                input.read_value(buf, 0, usize::MAX)?;
            }
            Some(b'}') => {
                input.advance(1);
                return Ok(());
            }
            Some(c) => {
                return Err(ScanFail::Unexpected {
                    pos: input.pos(),
                    msg: format!("expected ',' or '}}', found '{}'", c.escape_ascii()),
                });
            }
            None => return Err(input.fail_eof()),
        }
    }
}

fn expect<R: Read>(input: &mut Input<R>, want: u8) -> Result<(), ScanFail> {
    match input.skip_ws() {
        Some(c) if c == want => {
            input.advance(1);
            Ok(())
        }
        Some(c) => Err(ScanFail::Unexpected {
            pos: input.pos(),
            msg: format!("expected '{}', found '{}'", want as char, c.escape_ascii()),
        }),
        None => Err(input.fail_eof()),
    }
}

/// Array elements, the cursor just past `[`.
fn stream_array<R: Read>(
    input: &mut Input<R>,
    limits: &Limits,
    sink: &mut dyn StreamSink,
    buf: &mut Vec<u8>,
    index: &mut u64,
) -> Result<(), ScanFail> {
    match input.skip_ws() {
        Some(b']') => {
            input.advance(1);
            return Ok(());
        }
        Some(_) => {}
        None => return Err(input.fail_eof()),
    }
    loop {
        if input.skip_ws().is_none() {
            return Err(input.fail_eof());
        }
        let pos = input.pos();
        buf.clear();
        let s = input.read_value_in_place(buf, limits.max_record_bytes, limits.max_depth)?;
        deliver(sink, input.value_text(buf, &s), s, *index, pos);
        *index += 1;
        match input.skip_ws() {
            Some(b',') => {
                input.advance(1);
                if input.skip_ws() == Some(b']') {
                    let pos = input.pos();
                    sink.skip(
                        None,
                        pos,
                        trailing("trailing comma before ']'", pos),
                        SkipKind::Repaired,
                    );
                    input.advance(1);
                    return Ok(());
                }
            }
            Some(b']') => {
                input.advance(1);
                return Ok(());
            }
            Some(b'{') => {
                // A missing comma between two records: say so, and read on.
                let pos = input.pos();
                sink.skip(
                    None,
                    pos,
                    trailing("expected ',' or ']' before '{'", pos),
                    SkipKind::Repaired,
                );
            }
            Some(c) => {
                return Err(ScanFail::Unexpected {
                    pos: input.pos(),
                    msg: format!("expected ',' or ']', found '{}'", c.escape_ascii()),
                });
            }
            None => return Err(input.fail_eof()),
        }
    }
}

fn trailing(msg: &str, pos: Pos) -> SkipReason {
    SkipReason::MalformedJson {
        line: pos.line,
        column: pos.column,
        msg: msg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_or_backslash_search_agrees_with_a_plain_scan() {
        let base = br#"abcdefgh"ijklmnop\qrstuvwx"yz"#;
        for start in 0..base.len() {
            for end in start..=base.len() {
                let s = &base[start..end];
                let plain = s.iter().position(|&b| b == b'"' || b == b'\\');
                assert_eq!(find_quote_or_backslash(s), plain, "{start}..{end}");
            }
        }
        let mut all = [0u8; 256];
        for (i, b) in all.iter_mut().enumerate() {
            *b = i as u8;
        }
        for i in 0..256 {
            let plain = all[i..].iter().position(|&b| b == b'"' || b == b'\\');
            assert_eq!(find_quote_or_backslash(&all[i..]), plain);
        }
    }

    /// Hands out at most `step` bytes per read, to cut values at every position.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    /// Framing's alias verdict is the text search's, exactly, wherever reads cut the value;
    /// when a cut hides the answer it says so instead of guessing.
    #[test]
    fn framing_tells_aliases_as_the_text_search_does() {
        let texts: &[&[u8]] = &[
            br#"{"userIdentity":{"type":"Root"},"eventName":"x"}"#,
            br#"{"userIdentity.type":"Root"}"#,
            br#"{"a":"userIdentity.type"}"#,
            br#"{"a":"\"userIdentity.type"}"#,
            br#"{"a":"\\u0041"}"#,
            br#"{"a":"\u0041"}"#,
            br#"{"a":"\\\"","userIdentity":1}"#,
            br#"{"a":"x\\","b":"u"}"#,
            br#"{"a":"userIdentity","b":"userIdentityX"}"#,
            br#"{"userIdentit":{"y.type":1}}"#,
            br#"["userIdentity.",{"b":"\n\t\\"}]"#,
        ];
        for text in texts {
            let want = crate::known::may_alias_user_identity_type(
                std::str::from_utf8(text).expect("utf-8"),
            );
            for step in (1..=text.len()).rev() {
                let mut input = Input::new(Trickle { bytes: text, step }, 0);
                let mut out = Vec::new();
                let scanned = input.read_value(&mut out, usize::MAX, 64).expect("frames");
                assert_eq!(out, *text);
                let got = scanned.may_alias();
                if step == text.len() {
                    assert_eq!(got, Some(want), "{}", text.escape_ascii());
                } else if let Some(got) = got {
                    assert_eq!(got, want, "{} cut every {step}", text.escape_ascii());
                }
            }
        }
    }

    /// A value read in place is the same text a copying read gives, wherever reads cut the
    /// input; values that fit one read are left in the buffer, the others copied.
    #[test]
    fn values_read_in_place_are_the_values_copied() {
        let text: &[u8] = br#"{"a":"x\\"} [1,{"b":"}"}] "s" {"userIdentity.type":"Root"}"#;
        let values = |step: usize| {
            let mut input = Input::new(Trickle { bytes: text, step }, 0);
            let (mut found, mut in_place) = (Vec::new(), 0);
            while input.skip_ws().is_some() {
                let mut out = Vec::new();
                let scanned = input
                    .read_value_in_place(&mut out, usize::MAX, 64)
                    .unwrap_or_else(|e| panic!("cut every {step}, after {found:?}: {e:?}"));
                in_place += usize::from(scanned.in_place.is_some());
                found.push((
                    input.value_text(&out, &scanned).to_vec(),
                    scanned.may_alias(),
                ));
            }
            (found, in_place)
        };
        let (whole, in_place) = values(text.len());
        assert_eq!(whole.len(), 4);
        assert_eq!(in_place, 4, "each value lies whole in the one read");
        for step in 1..text.len() {
            let (cut, in_place) = values(step);
            if step < 8 {
                assert!(
                    in_place < 4,
                    "values cut by reads are copied (every {step})"
                );
            }
            let texts =
                |v: &[(Vec<u8>, Option<bool>)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
            assert_eq!(texts(&cut), texts(&whole), "cut every {step}");
        }
    }

    proptest::proptest! {
        /// The same over generated JSON objects whose keys and strings are built from the
        /// pieces that matter (quotes, backslashes, `u`, the dotted key).
        #[test]
        fn framing_alias_verdict_holds_on_generated_json(
            members in proptest::collection::vec(
                (
                    proptest::collection::vec(0usize..8, 0..5),
                    proptest::collection::vec(0usize..8, 0..5),
                    proptest::bool::ANY,
                ),
                0..6,
            ),
            step in 1usize..40,
        ) {
            const PIECES: [&str; 8] =
                ["userIdentity.", "userIdentity", "u", "\\\\", "\\\"", "\\u0041", "type", "x"];
            let text = |ix: &[usize]| ix.iter().map(|&i| PIECES[i]).collect::<String>();
            let body: Vec<String> = members
                .iter()
                .map(|(k, v, nested)| {
                    let value = if *nested {
                        format!("{{\"{}\":[\"{}\"]}}", text(v), text(k))
                    } else {
                        format!("\"{}\"", text(v))
                    };
                    format!("\"{}\":{value}", text(k))
                })
                .collect();
            let json = format!("{{{}}}", body.join(","));
            proptest::prop_assume!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
            let want = crate::known::may_alias_user_identity_type(&json);
            let mut input = Input::new(Trickle { bytes: json.as_bytes(), step }, 0);
            let mut out = Vec::new();
            let scanned = input.read_value(&mut out, usize::MAX, 64).expect("frames");
            if let Some(got) = scanned.may_alias() {
                proptest::prop_assert_eq!(got, want, "{}", json);
            }
        }
    }

    #[test]
    fn nesting_depth_skips_strings() {
        assert_eq!(nesting_depth(br#"{"a":[1,{"b":"[[[{{"}]}"#), 3);
        assert_eq!(nesting_depth(br#""\"[""#), 0);
        assert_eq!(nesting_depth(b"[[[]]]"), 3);
    }
}
