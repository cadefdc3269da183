//! Pattern and event bytes separated by the first NUL: the compiled matcher
//! must agree with the reference interpreter whenever the reference can read
//! the event (the matcher may accept more: it does not validate skipped
//! subtrees fully, and gives up with `TooComplex` on adversarial arrays),
//! and must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailwatch_pattern::{EventErrorKind, Matcher, Pattern, Scratch, reference};

fuzz_target!(|data: &[u8]| {
    let Some(split) = data.iter().position(|&b| b == 0) else {
        return;
    };
    let (pattern, event) = (&data[..split], &data[split + 1..]);
    let Ok(text) = std::str::from_utf8(pattern) else {
        return;
    };
    let Ok(pattern) = Pattern::parse(text) else {
        return;
    };
    let mut m = Matcher::new();
    m.add(7u8, &pattern);
    // A second, unrelated pattern exercises shared paths and removal.
    if let Ok(other) = Pattern::parse(r#"{"a":["x"],"b":{"c":[{"exists":false}]}}"#) {
        m.add(9u8, &other);
        m.remove(&9);
    }
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    let got = m
        .matches_with(event, &mut scratch, &mut out)
        .map(|()| out.contains(&7));
    if got.is_err_and(|e| e.kind() == EventErrorKind::TooComplex) {
        return;
    }
    if let Ok(expected) = reference::matches(&pattern, event) {
        assert_eq!(got, Ok(expected), "matcher and reference disagree");
    }
});
