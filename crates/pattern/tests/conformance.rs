//! Runs every case of the shared conformance files through the compiled
//! matcher and the reference interpreter (see `cases::check`).

use std::path::PathBuf;

use trailwatch_pattern::cases::{self, Outcome};

/// Cases that cannot pass, by file and line, with the reason. Keep tiny.
const EXCEPTIONS: &[(&str, usize, &str)] = &[];

const FILES: &[&str] = &[
    "patterns-ruler-quamina.jsonl",
    "patterns-ruler-oracle.jsonl",
];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
}

#[test]
fn conformance() {
    let dir = dir();
    if !dir.is_dir() {
        eprintln!(
            "note: {} not found; skipping conformance cases",
            dir.display()
        );
        return;
    }
    let mut failures = Vec::new();
    let (mut passed, mut excepted) = (0, 0);
    for file in FILES {
        let text = std::fs::read_to_string(dir.join(file)).expect("read case file");
        for (i, line) in text.lines().enumerate() {
            let case = match cases::parse_line(i + 1, line) {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(e) => panic!("{file}: {e}"),
            };
            let outcome = cases::check(&case);
            let exception = EXCEPTIONS
                .iter()
                .find(|(f, l, _)| f == file && *l == case.line);
            match (&outcome, exception) {
                (o, None) if o.passed() => passed += 1,
                (Outcome::Fail { .. }, Some(_)) => excepted += 1,
                (o, Some((_, _, why))) => failures.push(format!(
                    "{file}:{}: listed as an exception ({why}) but now {o:?}",
                    case.line
                )),
                (Outcome::Fail { expected, got }, None) => failures.push(format!(
                    "{file}:{}: expected {expected}, got {got}\n  pattern {}\n  {:?}\n  origin {:?}",
                    case.line, case.pattern, case.expect, case.origin
                )),
                (_, None) => unreachable!("passed outcomes are handled above"),
            }
        }
    }
    eprintln!(
        "conformance: {passed} passed, {excepted} documented exceptions, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
