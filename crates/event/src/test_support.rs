//! Helpers shared by the unit tests: the shared data folder, gzip, and a one-line rendering
//! of items for `check()`-style comparisons.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use crate::{DecodeSummary, Item, Limits, decode_slice};

/// `../shared` beside the repository, or `None` (with a note) when it is absent.
pub(crate) fn shared_data(rel: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/cloudtrail")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("note: {} is absent; test skipped", p.display());
        None
    }
}

/// A fixture written for this crate.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Files of a shared folder with the given extension, sorted.
pub(crate) fn shared_files(rel: &str, ext: &str) -> Option<Vec<PathBuf>> {
    let dir = shared_data(rel)?;
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    Some(v)
}

pub(crate) fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip in memory");
    e.finish().expect("gzip in memory")
}

/// One line per item: what it is and the fields that matter.
pub(crate) fn render(items: &[Item]) -> String {
    let mut out = String::new();
    for item in items {
        match item {
            Item::Event(e) => {
                let m = e.meta();
                let _ = writeln!(
                    out,
                    "event {} | {} | {} | {} {} {} | {}",
                    e.provenance(),
                    m.detail_type,
                    m.source,
                    m.account,
                    m.region,
                    crate::envelope::format_time(&m.time),
                    m.event_name.as_deref().unwrap_or("-"),
                );
            }
            Item::Object(o) => {
                let _ = writeln!(
                    out,
                    "object {} | {} | size={:?}",
                    o.provenance,
                    o.url(),
                    o.size
                );
            }
            Item::Digest(d) => {
                let _ = writeln!(
                    out,
                    "digest {} | {} .. {} | {} log files",
                    d.provenance,
                    d.fields.digest_start_time,
                    d.fields.digest_end_time,
                    d.fields.log_files.len()
                );
            }
            Item::Skipped(s) => {
                let _ = writeln!(out, "skip {s}");
            }
        }
    }
    out
}

/// Decodes `input` (origin `t`) and compares the rendered items with `expect`; checks that
/// the counts reconcile.
pub(crate) fn check_with(
    input: &[u8],
    limits: &Limits,
    expect: &str,
) -> (Vec<Item>, DecodeSummary) {
    let (items, summary) = decode_slice(input, "t", limits);
    let got = render(&items);
    assert_eq!(got.trim(), expect.trim(), "\n--- got ---\n{got}");
    assert_reconciles(&items, &summary);
    (items, summary)
}

pub(crate) fn check(input: &[u8], expect: &str) -> (Vec<Item>, DecodeSummary) {
    check_with(input, &Limits::default(), expect)
}

pub(crate) fn assert_reconciles(items: &[Item], s: &DecodeSummary) {
    assert_eq!(items.len() as u64, s.items());
    assert_eq!(s.items(), s.records_seen() + s.repaired + s.skipped_inputs);
    for item in items {
        if let Item::Event(e) = item {
            let v: serde_json::Value = serde_json::from_str(e.json()).expect("envelope is JSON");
            assert!(v.get("detail").is_some());
        }
    }
}
