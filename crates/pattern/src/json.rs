//! A small, strict JSON parser that keeps number literals as written and
//! records byte spans. Patterns and case files are small, so a tree is fine
//! here; the matcher's hot path never builds one (see `scan`).

use memchr::memchr2;

/// A parsed JSON value. Object members keep their order and duplicates;
/// callers decide what duplicates mean.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// The number literal exactly as written.
    Num(Box<str>),
    Str(Box<str>),
    Arr(Vec<Spanned>),
    Obj(Vec<(Box<str>, Spanned)>),
}

/// A value with its byte range in the source text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spanned {
    pub(crate) value: Json,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// A JSON syntax error at a byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) offset: usize,
    pub(crate) reason: &'static str,
}

pub(crate) const TOO_DEEP: &str = "nesting is deeper than the depth limit";

/// Parses one complete JSON document (surrounding whitespace allowed).
pub(crate) fn parse(text: &[u8], max_depth: usize) -> Result<Spanned, SyntaxError> {
    let mut p = Parser {
        b: text,
        i: 0,
        max_depth,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(p.err("trailing characters after the JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
    max_depth: usize,
}

impl Parser<'_> {
    fn err(&self, reason: &'static str) -> SyntaxError {
        SyntaxError {
            offset: self.i,
            reason,
        }
    }

    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    fn lit(&mut self, word: &[u8], v: Json) -> Result<Json, SyntaxError> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Spanned, SyntaxError> {
        let start = self.i;
        let value = match self.b.get(self.i) {
            None => return Err(self.err("unexpected end of input")),
            Some(b'n') => self.lit(b"null", Json::Null)?,
            Some(b't') => self.lit(b"true", Json::Bool(true))?,
            Some(b'f') => self.lit(b"false", Json::Bool(false))?,
            Some(b'"') => Json::Str(self.string()?.into()),
            Some(b'-' | b'0'..=b'9') => {
                let end = number_end(self.b, self.i).map_err(|off| SyntaxError {
                    offset: off,
                    reason: "invalid number",
                })?;
                let text = std::str::from_utf8(&self.b[self.i..end])
                    .map_err(|_| self.err("invalid number"))?;
                self.i = end;
                Json::Num(text.into())
            }
            Some(b'[') => {
                if depth >= self.max_depth {
                    return Err(self.err(TOO_DEEP));
                }
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("expected ',' or ']'")),
                        }
                    }
                }
                Json::Arr(items)
            }
            Some(b'{') => {
                if depth >= self.max_depth {
                    return Err(self.err(TOO_DEEP));
                }
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        if self.b.get(self.i) != Some(&b'"') {
                            return Err(self.err("expected a string key"));
                        }
                        let key = self.string()?;
                        self.ws();
                        if self.b.get(self.i) != Some(&b':') {
                            return Err(self.err("expected ':'"));
                        }
                        self.i += 1;
                        self.ws();
                        let v = self.value(depth + 1)?;
                        members.push((key.into(), v));
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("expected ',' or '}'")),
                        }
                    }
                }
                Json::Obj(members)
            }
            Some(_) => return Err(self.err("expected a JSON value")),
        };
        Ok(Spanned {
            value,
            start,
            end: self.i,
        })
    }

    /// Parses a string starting at the opening quote.
    fn string(&mut self) -> Result<String, SyntaxError> {
        let open = self.i;
        let (close, _) = string_end(self.b, open + 1).map_err(|off| SyntaxError {
            offset: off,
            reason: "unterminated string",
        })?;
        let mut out = Vec::new();
        unescape_into(&self.b[open + 1..close], open + 1, &mut out)?;
        self.i = close + 1;
        String::from_utf8(out).map_err(|e| SyntaxError {
            offset: open + 1 + e.utf8_error().valid_up_to(),
            reason: "invalid UTF-8 in string",
        })
    }
}

/// Finds the closing quote of a string whose content starts at `i`:
/// (its offset, whether the string has escapes). `Err(len)` when the
/// string is unterminated.
#[inline(always)]
pub(crate) fn string_end(b: &[u8], mut i: usize) -> Result<(usize, bool), usize> {
    let mut escaped = false;
    loop {
        match find_quote_or_backslash(b, i) {
            None => return Err(b.len()),
            Some(j) if b[j] == b'"' => return Ok((j, escaped)),
            Some(j) => {
                escaped = true;
                i = j + 2;
                if i > b.len() {
                    return Err(b.len());
                }
            }
        }
    }
}

/// The first `"` or `\\` at or after `j`. Most JSON strings are short, so
/// the first 64 bytes are checked eight at a time in a register (SWAR);
/// longer strings go to memchr's vectorised search.
#[inline(always)]
fn find_quote_or_backslash(b: &[u8], mut j: usize) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let stop = b.len().min(j + 64);
    while j + 8 <= stop {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[j..j + 8]);
        let w = u64::from_le_bytes(w);
        let q = w ^ (LO * u64::from(b'"'));
        let s = w ^ (LO * u64::from(b'\\'));
        // A zero byte in q or s marks a hit; the lowest flag is exact.
        let t = (q.wrapping_sub(LO) & !q | s.wrapping_sub(LO) & !s) & HI;
        if t != 0 {
            return Some(j + (t.trailing_zeros() / 8) as usize);
        }
        j += 8;
    }
    memchr2(b'"', b'\\', b.get(j..)?).map(|off| j + off)
}

/// Returns the end of the number literal starting at `i`, checking JSON's
/// number grammar; on error, the offset of the offending byte.
pub(crate) fn number_end(b: &[u8], mut i: usize) -> Result<usize, usize> {
    let digits = |b: &[u8], mut i: usize| {
        let s = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i, i - s)
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(b, i).0,
        _ => return Err(i),
    }
    if b.get(i) == Some(&b'.') {
        let (j, n) = digits(b, i + 1);
        if n == 0 {
            return Err(j);
        }
        i = j;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let (j, n) = digits(b, i);
        if n == 0 {
            return Err(j);
        }
        i = j;
    }
    Ok(i)
}

/// Decodes the raw content of a JSON string (between the quotes) into
/// `out`. `base` is the content's offset, for error positions. Raw control
/// characters are rejected, as JSON requires.
pub(crate) fn unescape_into(raw: &[u8], base: usize, out: &mut Vec<u8>) -> Result<(), SyntaxError> {
    let err = |at: usize, reason| SyntaxError {
        offset: base + at,
        reason,
    };
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c < 0x20 {
            return Err(err(i, "control character in string"));
        }
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let Some(&e) = raw.get(i + 1) else {
            return Err(err(i, "invalid escape"));
        };
        i += 2;
        let decoded = match e {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hi = hex4(raw, i).ok_or_else(|| err(i, "invalid \\u escape"))?;
                i += 4;
                let cp = if (0xD800..0xDC00).contains(&hi) {
                    if raw.get(i) != Some(&b'\\') || raw.get(i + 1) != Some(&b'u') {
                        return Err(err(i, "unpaired surrogate in \\u escape"));
                    }
                    let lo = hex4(raw, i + 2).ok_or_else(|| err(i, "invalid \\u escape"))?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(err(i, "unpaired surrogate in \\u escape"));
                    }
                    i += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else if (0xDC00..0xE000).contains(&hi) {
                    return Err(err(i, "unpaired surrogate in \\u escape"));
                } else {
                    hi
                };
                let ch = char::from_u32(cp).ok_or_else(|| err(i, "invalid \\u escape"))?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            _ => return Err(err(i - 1, "invalid escape")),
        };
        out.push(decoded);
    }
    Ok(())
}

fn hex4(raw: &[u8], i: usize) -> Option<u32> {
    let s = raw.get(i..i + 4)?;
    let mut v = 0u32;
    for &c in s {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: Result<&str, usize>) {
        let got = parse(text.as_bytes(), 64);
        match (got, expect) {
            (Ok(v), Ok(debug)) => assert_eq!(format!("{:?}", v.value), debug, "{text}"),
            (Err(e), Err(off)) => assert_eq!(e.offset, off, "{text}: {e:?}"),
            (got, expect) => panic!("{text}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn parses_and_rejects() {
        check("3.0e2", Ok("Num(\"3.0e2\")"));
        check(" null ", Ok("Null"));
        check(r#""a\u00e9\ud83d\ude00""#, Ok("Str(\"aé😀\")"));
        check("[1,]", Err(3));
        check("01", Err(1));
        check("1.", Err(2));
        check("{\"a\" 1}", Err(5));
        check("\"\\x\"", Err(2));
        check("\"\\ud800\"", Err(7));
        check("[[[", Err(3));
        check("tru", Err(0));
        check("{} x", Err(3));
    }

    #[test]
    fn finds_first_quote_or_backslash() {
        for (text, from, expect) in [
            (&b"abc\"def"[..], 0, Some(3)),
            (b"abcdefgh\\ijk\"", 0, Some(8)),
            (b"abcdefghijklmnopqrstuvwxyz0123456789\"", 0, Some(36)),
            (b"\"", 0, Some(0)),
            (b"abc", 0, None),
            (b"a\"b\"", 2, Some(3)),
            (b"", 0, None),
        ] {
            assert_eq!(
                find_quote_or_backslash(text, from),
                expect,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
        // Every position and length against the obvious answer.
        let hay: Vec<u8> = (0..80u8)
            .map(|i| if i % 23 == 22 { b'"' } else { b'a' + i % 26 })
            .collect();
        for j in 0..hay.len() {
            let naive = hay[j..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\')
                .map(|p| p + j);
            assert_eq!(find_quote_or_backslash(&hay, j), naive, "from {j}");
        }
    }

    #[test]
    fn depth_limit() {
        let deep = "[".repeat(65) + &"]".repeat(65);
        assert_eq!(parse(deep.as_bytes(), 64).unwrap_err().reason, TOO_DEEP);
        let ok = "[".repeat(64) + &"]".repeat(64);
        assert!(parse(ok.as_bytes(), 64).is_ok());
    }
}
