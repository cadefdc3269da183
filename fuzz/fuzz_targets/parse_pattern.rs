//! Any text: parsing must not panic, and a valid pattern must compile,
//! match a fixed event and remove cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailwatch_pattern::{Matcher, Pattern};

const EVENT: &[u8] = br#"{"a":"x","b":[1,{"c":null}],"detail":{"eventName":"Get","n":3.5}}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(pattern) = Pattern::parse(text) else {
        return;
    };
    let mut m = Matcher::new();
    m.add(1u8, &pattern);
    let _ = m.matches(EVENT);
    assert!(m.remove(&1));
    assert!(m.is_empty());
});
