//! Replays inputs the fuzzers found (`tests/regressions/`). Each file is in
//! the `match_event` target's format: pattern bytes, a NUL, event bytes (a
//! file without a NUL is a pattern alone). Every input must finish quickly
//! without panicking, and the matcher must agree with the reference.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use trailwatch_pattern::{Matcher, Pattern, reference};

#[test]
fn replay_fuzz_regressions() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("regressions dir") {
        let path = entry.expect("dir entry").path();
        let data = std::fs::read(&path).expect("read regression");
        let (pattern, event) = match data.iter().position(|&b| b == 0) {
            Some(i) => (&data[..i], Some(&data[i + 1..])),
            None => (&data[..], None),
        };
        let start = Instant::now();
        let parsed = std::str::from_utf8(pattern).ok().map(Pattern::parse);
        if let (Some(Ok(p)), Some(event)) = (parsed, event) {
            let mut m = Matcher::new();
            m.add(0u8, &p);
            let got = m.matches(event).map(|ids| !ids.is_empty());
            if let Ok(expected) = reference::matches(&p, event) {
                assert_eq!(got, Ok(expected), "{}", path.display());
            }
        }
        // Generous even for a debug build; the bug was a multi-second hang.
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{} is slow",
            path.display()
        );
        n += 1;
    }
    assert!(n > 0, "no regression inputs found");
}
