//! The event scanner: one pass over the raw bytes, no tree. It follows the
//! path trie key by key, hands the values at pattern fields to a sink with
//! their array trail, and skips everything else with a fast skipper.
//!
//! What it reads it checks strictly (JSON grammar, escapes, depth). Skipped
//! subtrees are only checked for balanced brackets, string termination and
//! depth, which keeps skipping at memchr speed.

use crate::error::{EventError, EventErrorKind};
use crate::json;
use crate::paths::{Paths, ROOT};

/// A scalar found at a pattern field, as byte offsets into the event.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Raw {
    /// String content between the quotes; `escaped` when it has escapes.
    Str {
        start: usize,
        end: usize,
        escaped: bool,
    },
    Num {
        start: usize,
        end: usize,
    },
    Bool(bool),
    Null,
}

/// Receives the values found at pattern fields.
pub(crate) trait Sink {
    /// `trail` lists (array number, element index) from the root down.
    fn value(&mut self, field: u32, raw: Raw, trail: &[(u32, u32)]) -> Result<(), EventError>;
}

/// Reusable buffers for the scanner.
#[derive(Debug, Default, Clone)]
pub(crate) struct Bufs {
    key: Vec<u8>,
    trail: Vec<(u32, u32)>,
}

/// Scans one event.
pub(crate) fn scan<S: Sink>(
    event: &[u8],
    paths: &Paths,
    max_depth: usize,
    bufs: &mut Bufs,
    sink: &mut S,
) -> Result<(), EventError> {
    bufs.trail.clear();
    warm(event);
    let mut s = Scanner {
        b: event,
        i: 0,
        max_depth,
        arrays: 0,
        paths,
        bufs,
        sink,
    };
    s.ws();
    match s.peek() {
        Some(b'{') => {}
        Some(_) => {
            // Valid JSON that is not an object, or garbage: tell them apart.
            s.skip_value(0)?;
            s.ws();
            return Err(if s.i == event.len() {
                EventError::new(EventErrorKind::NotAnObject, 0)
            } else {
                s.err("trailing characters after the JSON value")
            });
        }
        None => return Err(s.err("unexpected end of input")),
    }
    s.value(ROOT, 0)?;
    s.ws();
    if s.i != event.len() {
        return Err(s.err("trailing characters after the JSON value"));
    }
    Ok(())
}

/// Touches one byte per cache line before the scan. The loads are
/// independent, so the CPU overlaps their misses; the scan then finds the
/// event in cache instead of stalling on each line in turn.
#[inline]
fn warm(event: &[u8]) {
    let mut x = 0u8;
    for &c in event.iter().step_by(64) {
        x ^= c;
    }
    std::hint::black_box(x);
}

struct Scanner<'e, 'x, S> {
    b: &'e [u8],
    i: usize,
    max_depth: usize,
    arrays: u32,
    paths: &'x Paths,
    bufs: &'x mut Bufs,
    sink: &'x mut S,
}

impl<S: Sink> Scanner<'_, '_, S> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn err(&self, reason: &'static str) -> EventError {
        EventError::new(EventErrorKind::Syntax(reason), self.i)
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if c > b' ' || !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.i += 1;
        }
    }

    #[inline]
    fn expect(&mut self, c: u8, reason: &'static str) -> Result<(), EventError> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(reason))
        }
    }

    /// Finds the end of the string whose content starts at `self.i`;
    /// returns (end, has_escape) and leaves `self.i` past the closing quote.
    #[inline(always)]
    fn string_end(&mut self) -> Result<(usize, bool), EventError> {
        match json::string_end(self.b, self.i) {
            Ok((end, escaped)) => {
                self.i = end + 1;
                Ok((end, escaped))
            }
            Err(_) => {
                self.i = self.b.len();
                Err(self.err("unterminated string"))
            }
        }
    }

    /// Reads a value at trie node `node` (which some pattern path uses).
    fn value(&mut self, node: u32, depth: usize) -> Result<(), EventError> {
        let n = self.paths.node(node);
        match self.peek() {
            Some(b'{') => {
                if !n.has_children() {
                    return self.skip_value(depth);
                }
                if depth >= self.max_depth {
                    return Err(EventError::new(EventErrorKind::TooDeep, self.i));
                }
                self.i += 1;
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return Err(self.err("expected a string key"));
                    }
                    self.i += 1;
                    let start = self.i;
                    let (end, escaped) = self.string_end()?;
                    let child = if escaped {
                        self.bufs.key.clear();
                        json::unescape_into(&self.b[start..end], start, &mut self.bufs.key)
                            .map_err(|e| {
                                EventError::new(EventErrorKind::Syntax(e.reason), e.offset)
                            })?;
                        self.paths.child(node, &self.bufs.key)
                    } else {
                        self.paths.child(node, &self.b[start..end])
                    };
                    self.expect(b':', "expected ':'")?;
                    self.ws();
                    match child {
                        Some(c) => self.value(c, depth + 1)?,
                        None => self.skip_value(depth + 1)?,
                    }
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(self.err("expected ',' or '}'")),
                    }
                }
            }
            Some(b'[') => {
                if depth >= self.max_depth {
                    return Err(EventError::new(EventErrorKind::TooDeep, self.i));
                }
                self.i += 1;
                let id = self.arrays;
                self.arrays = self.arrays.wrapping_add(1);
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(());
                }
                let mut idx = 0u32;
                loop {
                    self.ws();
                    self.bufs.trail.push((id, idx));
                    let r = self.value(node, depth + 1);
                    self.bufs.trail.pop();
                    r?;
                    idx = idx.wrapping_add(1);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            _ if !n.is_field => self.skip_value(depth),
            Some(b'"') => {
                self.i += 1;
                let start = self.i;
                let (end, escaped) = self.string_end()?;
                self.sink.value(
                    node,
                    Raw::Str {
                        start,
                        end,
                        escaped,
                    },
                    &self.bufs.trail,
                )
            }
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                let end = json::number_end(self.b, start).map_err(|off| {
                    EventError::new(EventErrorKind::Syntax("invalid number"), off)
                })?;
                self.i = end;
                self.sink
                    .value(node, Raw::Num { start, end }, &self.bufs.trail)
            }
            Some(b't') => self.literal(b"true", node, Raw::Bool(true)),
            Some(b'f') => self.literal(b"false", node, Raw::Bool(false)),
            Some(b'n') => self.literal(b"null", node, Raw::Null),
            None => Err(self.err("unexpected end of input")),
            Some(_) => Err(self.err("expected a JSON value")),
        }
    }

    fn literal(&mut self, word: &[u8], node: u32, raw: Raw) -> Result<(), EventError> {
        if !self.b[self.i..].starts_with(word) {
            return Err(self.err("invalid literal"));
        }
        self.i += word.len();
        self.sink.value(node, raw, &self.bufs.trail)
    }

    /// Skips one value nobody reads.
    fn skip_value(&mut self, depth: usize) -> Result<(), EventError> {
        match self.peek() {
            Some(b'"') => {
                self.i += 1;
                self.string_end().map(|_| ())
            }
            Some(b'{' | b'[') => self.skip_container(depth),
            Some(b'-' | b'0'..=b'9') => {
                self.i = json::number_end(self.b, self.i).map_err(|off| {
                    EventError::new(EventErrorKind::Syntax("invalid number"), off)
                })?;
                Ok(())
            }
            Some(b't') => self.skip_literal(b"true"),
            Some(b'f') => self.skip_literal(b"false"),
            Some(b'n') => self.skip_literal(b"null"),
            None => Err(self.err("unexpected end of input")),
            Some(_) => Err(self.err("expected a JSON value")),
        }
    }

    fn skip_literal(&mut self, word: &[u8]) -> Result<(), EventError> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }

    /// Skips a container by counting brackets outside strings.
    fn skip_container(&mut self, depth: usize) -> Result<(), EventError> {
        let mut open = 0usize;
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'"' => {
                    self.i += 1;
                    self.string_end()?;
                    continue;
                }
                b'{' | b'[' => {
                    if depth + open >= self.max_depth {
                        return Err(EventError::new(EventErrorKind::TooDeep, self.i));
                    }
                    open += 1;
                }
                b'}' | b']' => {
                    open -= 1;
                    if open == 0 {
                        self.i += 1;
                        return Ok(());
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        Err(self.err("unexpected end of input"))
    }
}
