//! YAML helpers shared by the config and the rule files: located errors, and splitting a
//! document into independently parsed pieces that keep their original line numbers.
//!
//! The trick that keeps line numbers exact: a piece of a document (one top-level section,
//! one rule of a list) is cut out and padded with as many newlines and spaces as came
//! before it, so the parser reports positions in the original file without any arithmetic.

use std::fmt;

use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

/// A position in a text: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A YAML error: a position and a reason without the parser's decorations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// Where the parser stopped (1:1 when it did not say).
    pub pos: Pos,
    /// The reason, e.g. "unknown field `foo`, expected one of ...".
    pub reason: String,
}

impl YamlError {
    /// Converts a serde-saphyr error, keeping its location and a clean message.
    pub fn from_saphyr(err: &serde_saphyr::Error) -> YamlError {
        let pos = err
            .location()
            .map(|l| Pos {
                line: usize::try_from(l.line()).unwrap_or(1).max(1),
                col: usize::try_from(l.column()).unwrap_or(1).max(1),
            })
            .unwrap_or(Pos { line: 1, col: 1 });
        YamlError {
            pos,
            reason: clean_message(&err.without_snippet().to_string()),
        }
    }
}

/// Strips the "error: line N column M: " prefix and the " at line N, column M" suffix that
/// serde-saphyr adds, since callers print the position themselves.
fn clean_message(msg: &str) -> String {
    let mut s = msg.lines().next().unwrap_or("").trim().to_owned();
    if let Some(rest) = s.strip_prefix("error: ") {
        s = rest.to_owned();
    }
    if let Some(idx) = s.find(": ").filter(|_| s.starts_with("line ")) {
        s = s[idx + 2..].to_owned();
    }
    if let Some(idx) = s.rfind(" at line ").filter(|&i| s[i..].contains("column")) {
        s.truncate(idx);
    }
    s
}

/// Parses a whole YAML text into `T`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    serde_saphyr::from_str::<T>(text).map_err(|e| YamlError::from_saphyr(&e))
}

/// One piece of a YAML document, padded so that it parses with its original positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The mapping key this piece is the value of (empty for sequence items and documents).
    pub key: String,
    /// Where the key is (or where the item starts, for sequence items).
    pub key_pos: Pos,
    /// Where the value starts.
    pub pos: Pos,
    /// The padded text: newlines and spaces, then the value's own text.
    pub text: String,
}

impl Piece {
    /// Parses this piece into `T`; errors carry positions in the original text.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, YamlError> {
        from_str(&self.text)
    }

    /// Parses this piece (a mapping) into `T`, whose fields are `fields`. Unknown keys are
    /// reported and blanked out, and the rest is parsed again, so one unknown key does not
    /// hide the other problems. Returns the value (when the rest parsed) and the errors.
    pub fn parse_lenient<T: DeserializeOwned>(
        &self,
        fields: &[&str],
    ) -> (Option<T>, Vec<YamlError>) {
        parse_lenient(&self.text, fields)
    }
}

/// See [`Piece::parse_lenient`].
pub fn parse_lenient<T: DeserializeOwned>(
    text: &str,
    fields: &[&str],
) -> (Option<T>, Vec<YamlError>) {
    let first = match from_str::<T>(text) {
        Ok(v) => return (Some(v), Vec::new()),
        Err(e) => e,
    };
    let Ok(pieces) = split_mapping(text) else {
        return (None, vec![first]);
    };
    let unknown: Vec<usize> = (0..pieces.len())
        .filter(|&i| !fields.contains(&pieces[i].key.as_str()))
        .collect();
    if unknown.is_empty() {
        return (None, vec![first]);
    }
    let mut errors = Vec::new();
    let mut lines: Vec<&str> = text.split('\n').collect();
    for &i in &unknown {
        let p = &pieces[i];
        errors.push(YamlError {
            pos: p.key_pos,
            reason: format!(
                "unknown field `{}`, expected one of {}",
                p.key,
                fields.join(", ")
            ),
        });
        let from = p.key_pos.line.saturating_sub(1);
        let to = pieces
            .get(i + 1)
            .map_or(lines.len(), |n| n.key_pos.line.saturating_sub(1));
        for line in lines.iter_mut().take(to).skip(from) {
            *line = "";
        }
    }
    match from_str::<T>(&lines.join("\n")) {
        Ok(v) => (Some(v), errors),
        Err(e) => {
            errors.push(e);
            (None, errors)
        }
    }
}

/// Byte offsets of the start of each line (index 0 is line 1).
fn line_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            starts.push(i + 1);
        }
    }
    starts
}

/// The byte offset of a 1-based (line, col) position, clamped to the text.
fn offset_of(text: &str, starts: &[usize], pos: Pos) -> usize {
    let Some(&line_start) = starts.get(pos.line.saturating_sub(1)) else {
        return text.len();
    };
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let line = &text[line_start..line_end];
    let col_bytes = line
        .char_indices()
        .nth(pos.col.saturating_sub(1))
        .map_or(line.len(), |(i, _)| i);
    line_start + col_bytes
}

/// Builds the padded piece text for `text[start..end]` starting at `pos`.
fn padded(text: &str, start: usize, end: usize, pos: Pos) -> String {
    let body = text.get(start..end.max(start)).unwrap_or("");
    let mut out = String::with_capacity(pos.line + pos.col + body.len());
    for _ in 1..pos.line {
        out.push('\n');
    }
    for _ in 1..pos.col {
        out.push(' ');
    }
    // An empty (null) value is located at its key's colon: do not parse the colon.
    match body.strip_prefix(':') {
        Some(rest) => {
            out.push(' ');
            out.push_str(rest);
        }
        None => out.push_str(body),
    }
    out
}

fn pos_of(loc: &serde_saphyr::Location) -> Pos {
    Pos {
        line: usize::try_from(loc.line()).unwrap_or(1).max(1),
        col: usize::try_from(loc.column()).unwrap_or(1).max(1),
    }
}

struct Entries(Vec<(Spanned<String>, Spanned<IgnoredAny>)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Entries, M::Error> {
                let mut v = Vec::new();
                while let Some(e) = m.next_entry()? {
                    v.push(e);
                }
                Ok(Entries(v))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Entries, E> {
                Ok(Entries(Vec::new()))
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Entries, E> {
                Ok(Entries(Vec::new()))
            }
        }
        d.deserialize_map(V)
    }
}

struct Items(Vec<Spanned<IgnoredAny>>);

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Items;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut s: S) -> Result<Items, S::Error> {
                let mut v = Vec::new();
                while let Some(e) = s.next_element()? {
                    v.push(e);
                }
                Ok(Items(v))
            }
        }
        d.deserialize_seq(V)
    }
}

/// The end of a piece whose successor starts at `next`: the start of the successor's line,
/// minus trailing lines that only hold a sequence dash (a `-` alone on its line).
fn piece_end(text: &str, starts: &[usize], next_line: usize) -> usize {
    let mut end = starts
        .get(next_line.saturating_sub(1))
        .copied()
        .unwrap_or(text.len());
    // Drop trailing "-" lines that belong to the next item.
    loop {
        let before = &text[..end];
        let trimmed = before.strip_suffix('\n').unwrap_or(before);
        let line_start = trimmed.rfind('\n').map_or(0, |i| i + 1);
        if line_start < end && trimmed[line_start..].trim() == "-" {
            end = line_start;
        } else {
            break;
        }
    }
    end
}

/// Splits a top-level mapping into one piece per key, in order. A document that is empty
/// or null gives no pieces.
pub fn split_mapping(text: &str) -> Result<Vec<Piece>, YamlError> {
    if first_token(text) == Some('{') {
        return split_flow_mapping(text);
    }
    let Entries(entries) = from_str::<Entries>(text)?;
    let starts = line_starts(text);
    let mut out = Vec::with_capacity(entries.len());
    for (i, (key, value)) in entries.iter().enumerate() {
        let key_pos = pos_of(&key.referenced);
        let pos = pos_of(&value.referenced);
        let start = offset_of(text, &starts, pos);
        let end = match entries.get(i + 1) {
            Some((next, _)) => piece_end(text, &starts, pos_of(&next.referenced).line),
            None => text.len(),
        };
        // A value on the key's own line that is empty (null) must not swallow the next key.
        let end = end.max(start);
        out.push(Piece {
            key: key.value.clone(),
            key_pos,
            pos,
            text: padded(text, start, end, pos),
        });
    }
    Ok(out)
}

/// The first character of the first meaningful line.
fn first_token(text: &str) -> Option<char> {
    text.lines()
        .map(str::trim_start)
        .find(|t| !t.is_empty() && !t.starts_with('#') && !t.starts_with("---"))
        .and_then(|t| t.chars().next())
}

struct JsonEntries(Vec<(Spanned<String>, Spanned<serde_json::Value>)>);

impl<'de> Deserialize<'de> for JsonEntries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonEntries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<JsonEntries, M::Error> {
                let mut v = Vec::new();
                while let Some(e) = m.next_entry()? {
                    v.push(e);
                }
                Ok(JsonEntries(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// A flow-style mapping (`{a: 1, b: [2]}`, or JSON) cannot be cut into text slices; each
/// value is re-emitted as JSON (which is YAML) at its original position instead. Errors
/// inside a value then point at the value's start.
fn split_flow_mapping(text: &str) -> Result<Vec<Piece>, YamlError> {
    let JsonEntries(entries) = from_str::<JsonEntries>(text)?;
    Ok(entries
        .into_iter()
        .map(|(k, v)| {
            let pos = pos_of(&v.referenced);
            let json = serde_json::to_string(&v.value).unwrap_or_default();
            Piece {
                key: k.value,
                key_pos: pos_of(&k.referenced),
                pos,
                text: padded(&json, 0, json.len(), pos),
            }
        })
        .collect())
}

/// Splits a top-level sequence into one piece per item, in order.
pub fn split_sequence(text: &str) -> Result<Vec<Piece>, YamlError> {
    let Items(items) = from_str::<Items>(text)?;
    let starts = line_starts(text);
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let pos = pos_of(&item.referenced);
        let start = offset_of(text, &starts, pos);
        let end = match items.get(i + 1) {
            Some(next) => piece_end(text, &starts, pos_of(&next.referenced).line),
            None => text.len(),
        };
        out.push(Piece {
            key: String::new(),
            key_pos: pos,
            pos,
            text: padded(text, start, end.max(start), pos),
        });
    }
    Ok(out)
}

/// Splits a multi-document stream at `---` lines into documents that keep their line
/// numbers. Documents holding only comments or blanks are dropped.
pub fn split_documents(text: &str) -> Vec<Piece> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut first_line = 1;
    let mut line_no = 0;
    for line in text.split_inclusive('\n') {
        line_no += 1;
        if line.starts_with("---") && line[3..].trim().is_empty() || line.trim_end() == "..." {
            push_doc(&mut docs, &current, first_line);
            first_line = line_no + 1;
            // Pad so the next document's first line keeps its number.
            current = "\n".repeat(line_no);
            continue;
        }
        current.push_str(line);
    }
    push_doc(&mut docs, &current, first_line);
    docs
}

fn push_doc(docs: &mut Vec<Piece>, text: &str, first_line: usize) {
    let has_content = text.lines().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    });
    if has_content {
        let pos = Pos {
            line: first_line,
            col: 1,
        };
        docs.push(Piece {
            key: String::new(),
            key_pos: pos,
            pos,
            text: text.to_owned(),
        });
    }
}

/// What kind of node a YAML text holds at its top level, judged by its first token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopKind {
    /// A sequence (block `- ` or flow `[`).
    Sequence,
    /// Anything else (a mapping, a scalar, or nothing).
    Other,
}

/// Looks at the first meaningful token of a document.
pub fn top_kind(text: &str) -> TopKind {
    for line in text.lines() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with('%') {
            continue;
        }
        if t.starts_with("- ") || t == "-" || t.starts_with('[') {
            return TopKind::Sequence;
        }
        return TopKind::Other;
    }
    TopKind::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: &[(&str, usize, usize)]) {
        let pieces = split_mapping(text).unwrap();
        let got: Vec<(String, usize, usize)> = pieces
            .iter()
            .map(|p| (p.key.clone(), p.pos.line, p.pos.col))
            .collect();
        let want: Vec<(String, usize, usize)> = expect
            .iter()
            .map(|(k, l, c)| ((*k).to_owned(), *l, *c))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn mapping_pieces_keep_positions() {
        let text = "# c\na:\n  x: 1\n  y: 2\nb: [1, 2]\nc:\nd: 3\n";
        check(text, &[("a", 3, 3), ("b", 5, 4), ("c", 6, 2), ("d", 7, 4)]);
        let pieces = split_mapping(text).unwrap();
        // An error inside a piece is reported at its original line.
        let err = pieces[0]
            .parse::<std::collections::BTreeMap<String, bool>>()
            .unwrap_err();
        assert_eq!(err.pos.line, 3);
        let c: Option<u32> = pieces[2].parse().unwrap();
        assert_eq!(c, None);
        let d: u32 = pieces[3].parse().unwrap();
        assert_eq!(d, 3);
    }

    #[test]
    fn sequence_pieces_and_documents() {
        let text = "- id: a\n  n: 1\n-\n  id: b\n- {id: c}\n";
        let items = split_sequence(text).unwrap();
        assert_eq!(items.len(), 3);
        let m: std::collections::BTreeMap<String, String> = items[1].parse().unwrap();
        assert_eq!(m["id"], "b");
        assert_eq!(items[1].pos.line, 4);
        let docs = split_documents("a: 1\n---\n# only a comment\n---\nb: 2\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].pos.line, 5);
        let err = docs[1].parse::<u32>().unwrap_err();
        assert_eq!(err.pos.line, 5);
        assert_eq!(top_kind("# x\n- a\n"), TopKind::Sequence);
        assert_eq!(top_kind("a: 1"), TopKind::Other);
        // Flow-style (and JSON) documents split too.
        let flow = split_mapping("{\"a\": {\"b\": [1, 2]},\n \"c\": 3}").unwrap();
        assert_eq!(flow.len(), 2);
        assert_eq!(flow[1].pos.line, 2);
        let c: u32 = flow[1].parse().unwrap();
        assert_eq!(c, 3);
    }

    #[test]
    fn messages_are_clean() {
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct S {
            a: u32,
        }
        let err = from_str::<S>("a: 1\nzz: 2\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 2, col: 1 });
        assert!(
            err.reason.starts_with("unknown field `zz`"),
            "{}",
            err.reason
        );
    }
}
