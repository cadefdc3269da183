//! `trailwatch pattern test | check | match`.

use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use trailwatch_event::{Item, decode};
use trailwatch_pattern::cases::{self, Outcome};
use trailwatch_pattern::{Matcher, Pattern};

use crate::cli::{EXIT_FAILED_CHECK, EXIT_OK, PatternCommand};
use crate::inputs;

/// Runs one `pattern` subcommand.
pub fn run(cmd: PatternCommand) -> anyhow::Result<u8> {
    match cmd {
        PatternCommand::Test { cases } => test(&cases),
        PatternCommand::Check { file } => check(&file),
        PatternCommand::Match {
            pattern,
            events,
            limits,
        } => match_events(&pattern, &events, &crate::scan::limits(&limits)),
    }
}

fn test(path: &Path) -> anyhow::Result<u8> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read cases {}", path.display()))?;
    let (mut passed, mut failed) = (0u64, 0u64);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line_no = index + 1;
        let line = line.with_context(|| format!("{}:{line_no}: cannot read", path.display()))?;
        let case = match cases::parse_line(line_no, &line) {
            Ok(Some(case)) => case,
            Ok(None) => continue,
            Err(err) => {
                failed += 1;
                writeln!(
                    out,
                    "FAIL {}:{line_no}: bad case line: {err}",
                    path.display()
                )?;
                continue;
            }
        };
        match cases::check(&case) {
            Outcome::Pass | Outcome::PassMessageDiffers { .. } => passed += 1,
            Outcome::Fail { expected, got } => {
                failed += 1;
                writeln!(
                    out,
                    "FAIL {}:{line_no}: expected {expected}, got {got}\n     pattern: {}",
                    path.display(),
                    case.pattern
                )?;
            }
        }
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    out.flush()?;
    Ok(if failed == 0 {
        EXIT_OK
    } else {
        EXIT_FAILED_CHECK
    })
}

fn read_pattern(path: &Path) -> anyhow::Result<Result<Pattern, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read pattern {}", path.display()))?;
    Ok(Pattern::parse(&text).map_err(|err| format!("{}: {err}", path.display())))
}

fn check(path: &Path) -> anyhow::Result<u8> {
    match read_pattern(path)? {
        Ok(_) => {
            println!("{}: valid", path.display());
            Ok(EXIT_OK)
        }
        Err(message) => {
            eprintln!("{message}");
            Ok(EXIT_FAILED_CHECK)
        }
    }
}

fn match_events(
    pattern_path: &Path,
    events: &[std::path::PathBuf],
    limits: &trailwatch_event::Limits,
) -> anyhow::Result<u8> {
    let pattern = read_pattern(pattern_path)?.map_err(anyhow::Error::msg)?;
    let mut matcher = Matcher::new();
    matcher.add(0u32, &pattern);
    let stdin_only = [std::path::PathBuf::from("-")];
    let listing = inputs::list(if events.is_empty() {
        &stdin_only
    } else {
        events
    })?;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let (mut seen, mut matched) = (0u64, 0u64);
    let mut write_error = None;
    for input in &listing.inputs {
        let reader = input
            .open()
            .with_context(|| format!("cannot read {}", input.origin()))?;
        decode(
            reader,
            input.origin().into(),
            limits,
            &mut |item| match item {
                Item::Event(event) => {
                    seen += 1;
                    match matcher.matches(event.json().as_bytes()) {
                        Ok(ids) if !ids.is_empty() => {
                            matched += 1;
                            if let Err(err) = writeln!(out, "{}", event.json()) {
                                write_error.get_or_insert(err);
                            }
                        }
                        Ok(_) => {}
                        Err(err) => eprintln!("trailwatch: {}: {err}", event.provenance()),
                    }
                }
                Item::Skipped(skipped) => eprintln!("{}", crate::scan::skip_message(&skipped)),
                Item::Digest(_) | Item::Object(_) => {}
            },
        );
    }
    if let Some(err) = write_error {
        return Err(err).context("cannot write events");
    }
    out.flush()?;
    eprintln!("{matched} of {seen} events matched");
    Ok(EXIT_OK)
}
